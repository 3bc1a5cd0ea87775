"""The gateway daemon's command handlers: what each command of the ``hs:commands`` stream
does (``authorize``, ``deauthorize``, ``present``, ``reconcile``, ``doctor``, ``resolve``,
``ping``), and how a run of commands that arrived together is handled
(:func:`gateway.daemon.batch.runs`).

:class:`CommandHandlers` is a part of :class:`gateway.daemon.loop.Daemon`, kept in a file of
its own so the loop stays readable: it uses the daemon's ``redis``, ``reconciler``,
``enforcer``, ``next_pass`` and ``run_pass``/``next_pass_at``. See docs/gateway.md.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import redis

from gateway import __version__
from gateway.firewall.doctor import diagnose
from gateway.firewall.enforce import read_kernel
from gateway.firewall.plan import session_elements
from gateway.logs import get_logger
from gateway.model import commands, keys
from gateway.model.sessions import (
    END_REASONS,
    Session,
    get_session,
    get_sessions,
    normalize_mac,
    online_sessions,
)

if TYPE_CHECKING:
    from gateway.daemon.reconcile import Reconciler
    from gateway.firewall.enforce import NftEnforcer

__all__ = ["CommandHandlers"]

log = get_logger("gateway")


class CommandHandlers:
    """The daemon's answers to commands (mixed into :class:`gateway.daemon.loop.Daemon`)."""

    redis: redis.Redis
    reconciler: Reconciler
    enforcer: NftEnforcer
    next_pass: float
    # and, from the loop: run_pass() -> PassResult, next_pass_at() -> float

    def handle(self, command: commands.Command) -> dict:
        """Act on one command and return the reply for its requester."""
        handler = self.handlers.get(command.op)
        if handler is None:
            return {"ok": False, "op": command.op, "error": f"unknown command {command.op!r}"}
        started = time.monotonic()
        try:
            result = handler(command)
        except redis.RedisError:
            raise
        except Exception as err:  # one bad command must not stop the loop
            log.exception("command_failed", op=command.op, request_id=command.id)
            result = {"ok": False, "error": f"{type(err).__name__}: {err}"}
        log.info("command_done", op=command.op, request_id=command.id, ok=result.get("ok"),
                 ms=round((time.monotonic() - started) * 1000, 2))  # fmt: skip
        return {"op": command.op, **result}

    def handle_run(self, run: list[commands.Command]) -> list[dict]:
        """Act on a run of commands (:func:`gateway.daemon.batch.runs`); return one reply each.

        A run of ``authorize`` commands is applied together (:meth:`authorize_many`); if that
        fails as a whole, each command is handled alone, so one bad command cannot fail the others.
        """
        if len(run) == 1 or run[0].op != "authorize":
            return [self.handle(command) for command in run]
        started = time.monotonic()
        try:
            results = self.authorize_many(run)
        except redis.RedisError:
            raise
        except Exception:
            log.exception("command_batch_failed", op="authorize", n=len(run), then="one by one")
            return [self.handle(command) for command in run]
        ms = round((time.monotonic() - started) * 1000, 2)
        for command, result in zip(run, results, strict=True):
            log.info("command_done", op=command.op, request_id=command.id, ok=result.get("ok"), ms=ms,
                     batch=len(run))  # fmt: skip
        return [{"op": command.op, **result} for command, result in zip(run, results, strict=True)]

    def authorize(self, command: commands.Command) -> dict:
        """Let the online session ``sid`` through now (fast path); the next pass checks it.

        An ``ip`` field moves the session to that address first (a device that logged in
        again from a new lease gets its session back there). The reply comes once the
        device's traffic can flow (:meth:`authorize_many`); the rest follows it.
        """
        return self.authorize_many([command])[0]

    def authorize_many(self, run: list[commands.Command]) -> list[dict]:
        """Authorize every command of ``run`` (all ``authorize``); return one reply each, in order.

        Each command is checked alone (no such session, not online, a refused move, a bad
        MAC or IP: that command's reply says so); the sessions that pass are let through
        together, in one firewall transaction and one tc batch
        (:meth:`~gateway.daemon.reconcile.Reconciler.login_many`).

        Before the replies only what lets the devices' traffic flow is done: their nftables
        elements, their own tc classes (within what the line has free), their slots in
        Redis. The split of the line among everyone, the neighbour pins and the online-lease
        files follow right after the replies (:meth:`run_deferred`), so a reply's
        ``warnings`` name only failures of the first part.
        """
        now = time.time()
        replies: list[dict] = []
        ready: list[tuple[int, Session]] = []
        found = get_sessions(self.redis, [command.fields.get("sid", "") for command in run])  # one round trip
        for i, (command, session) in enumerate(zip(run, found, strict=True)):
            try:
                checked = self._authorize_check(command, session, now)
            except redis.RedisError:
                raise
            except Exception as err:  # one bad command must not fail the others
                log.exception("command_failed", op=command.op, request_id=command.id)
                checked = {"ok": False, "error": f"{type(err).__name__}: {err}"}
            if isinstance(checked, Session):
                ready.append((i, checked))
                checked = {}
            replies.append(checked)
        failed = self.reconciler.login_many([session for _, session in ready], now) if ready else {}
        for i, session in ready:
            replies[i] = self._authorized(session, failed.get(session.sid, []))
        return replies

    def _authorize_check(
        self, command: commands.Command, session: Session | None, now: float
    ) -> Session | dict:
        """Return the session ``command`` lets through (moved if it asks), or the reply refusing it.

        ``session`` is the one ``command`` names, as just read from Redis (None: none).
        """
        if session is None:
            return {"ok": False, "error": "no such session"}
        if session.state != "online" or session.expires_at <= now:
            return {"ok": False, "error": "session is not online", "state": session.state}
        moved = command.fields.get("ip", session.ip) != session.ip
        if moved:
            # the device came back from another address (a new lease) and logged in again;
            # if its MAC still answers at the old one, this is another device (a clone, or a
            # planted neighbour entry): the session stays where it is (docs/security.md)
            if self._still_there(session):
                log.warning("move_refused", sid=session.sid, mac=session.mac, ip=session.ip,
                            asked=command.fields["ip"], why="the device still answers there")  # fmt: skip
                return {"ok": False, "error": "the device still answers at the session's address",
                        "present": True, "sid": session.sid}  # fmt: skip
            session = replace(session, ip=command.fields["ip"])
        try:
            session_elements(session)
        except ValueError as err:
            return {"ok": False, "error": f"session has a bad MAC or IP: {err}", "sid": session.sid}
        if moved:
            self.redis.hset(keys.session(session.sid), "ip", session.ip)
        return session

    def _authorized(self, session: Session, failed: list[str]) -> dict:
        """Return the reply for ``session`` once the components tried it (``failed``: who could not).

        ``warnings`` lists the components that failed before the reply; those that act after
        it (the split of the line, pins, lease files) cannot be in it: their failures are
        logged and bring the next pass now (:meth:`run_deferred`).
        """
        if self.enforcer.name in failed:
            return {"ok": False, "error": "the firewall could not be updated; retrying", "sid": session.sid}
        if session.expires_at < self.next_pass_at():
            self.next_pass = time.monotonic()  # ends before the next pass: plan it
        return {"ok": True, "sid": session.sid, "mac": session.mac, "ip": session.ip,
                "expires_at": session.expires_at, "warnings": failed}  # fmt: skip

    def run_deferred(self) -> None:
        """Do what the last run's logins left for after the reply (the split of the line among
        everyone, neighbour pins, online-lease files); if any of it failed, the next pass
        comes now and heals it, as after a failed fast path."""
        if self.reconciler.run_deferred():
            self.next_pass = time.monotonic()

    def deauthorize(self, command: commands.Command) -> dict:
        """End session ``sid`` (if still online) with ``reason`` (default logout) and cut it off now."""
        sid = command.fields.get("sid", "")
        reason = command.fields.get("reason", "logout")
        if reason not in END_REASONS:
            return {"ok": False, "error": f"unknown reason {reason!r} (one of {', '.join(END_REASONS)})"}
        session = get_session(self.redis, sid)
        if session is None:
            return {"ok": False, "error": "no such session"}
        # cut off, count the last bytes, end: one step (item 10). A session already ended
        # (the portal gave up waiting for this command's ack) still gets the bytes its
        # elements counted since the last pass (late usage), as a pass would have added them
        ended, failed = self.reconciler.finish(session, reason, time.time())
        if self.enforcer.name in failed:
            self.next_pass = time.monotonic()
            return {"ok": False, "error": "the firewall could not be updated; retrying", "sid": sid}
        return {"ok": True, "sid": sid, "ended": ended is not None,
                "reason": ended.end_reason if ended else session.end_reason}  # fmt: skip

    def _still_there(self, session: Session) -> bool:
        binder = self.reconciler.binder
        return binder is not None and binder.still_there(session)

    def present(self, command: commands.Command) -> dict:
        """Say whether online session ``sid``'s device still answers at its address (ARP probe).

        The portal asks before a voucher login from another address with the same MAC
        would replace or move the session: a live device keeps it.
        """
        session = get_session(self.redis, command.fields.get("sid", ""))
        if session is None or session.state != "online":
            return {"ok": True, "present": False}
        return {"ok": True, "present": self._still_there(session), "sid": session.sid}

    def reconcile_now(self, _command: commands.Command) -> dict:
        """Run a pass now and return what it did (``hotspotctl doctor --repair``)."""
        result = self.run_pass()
        return {"ok": not result.failed, **result.summary()}

    def doctor(self, _command: commands.Command) -> dict:
        """Return the difference between Redis and the kernel, changing nothing."""
        report = diagnose(
            online_sessions(self.redis), read_kernel(self.enforcer.nft), self.enforcer.expected,
            time.time(), self.enforcer.neighbours, self.enforcer.guard_ok(),
        )  # fmt: skip
        return {"ok": True, "report": report, "source": "gateway"}

    def resolve(self, command: commands.Command) -> dict:
        """Return the MAC at ``ip`` or the IPv4 of ``mac``, from the neighbour table."""
        table = self.reconciler.neighbours.read() if self.reconciler.neighbours else None
        if table is None:
            return {"ok": False, "error": "no neighbour table"}
        if "ip" in command.fields:
            mac = table.mac_at(command.fields["ip"])
            return {"ok": mac is not None, "ip": command.fields["ip"], "mac": mac}
        try:
            mac = normalize_mac(command.fields.get("mac", ""))
        except ValueError as err:
            return {"ok": False, "error": str(err)}
        ips = table.ip4_of(mac)
        return {"ok": bool(ips), "mac": mac, "ip": ips[0] if ips else None}

    def ping(self, _command: commands.Command) -> dict:
        return {"ok": True, "pid": os.getpid(), "version": __version__}
