"""The reconcile loop's pass: desired state in Redis -> plans -> kernel, then accounting and ends.

Level-triggered: every pass starts again from the full state (online sessions in Redis,
the kernel read back), so a missed command, a restart, a hand-edited table or a Redis
restart all heal at the next pass. Commands only make things happen sooner, through
the components' fast paths.

Plugging in (see ``docs/gateway.md``, "Components and hooks"):

- a **component** owns a piece of kernel state (nftables here; tc shaping next) and
  implements :class:`Component`;
- a **hook** does non-kernel work after each pass (session log, metrics) and implements
  :class:`PassHook`.

A login's fast path does before the reply only what lets the device's own traffic flow
(the firewall's elements, its own tc class): the rest (the split of the line among
everyone, the neighbour pin, the online-lease file) is queued and done by
:meth:`Reconciler.run_deferred`, which the daemon calls right after the reply, before it
reads the next commands. Every fast path and every pass runs what is still queued first,
so each starts from the kernel the last one left (a pass could drop it as superseded,
since it plans everything from Redis and the kernel, but the shaper's book counts on it
being sent, and it is a few objects: running it keeps one rule for everyone).

:func:`build_reconciler` is the one place components are listed (the daemon and
``hotspotctl doctor --repair`` both use it); hooks are listed in the daemon.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

import redis

from gateway.binding.guard import SessionBinder
from gateway.binding.pins import NeighbourPins
from gateway.config import Config
from gateway.daemon.dhcp_hosts import DhcpHosts
from gateway.daemon.lifecycle import account, plan_ends
from gateway.firewall.enforce import NftEnforcer
from gateway.logs import get_logger
from gateway.model import keys
from gateway.model.sessions import (
    Session,
    add_late_usage,
    end_session,
    get_session,
    online_sessions,
    update_usage,
)
from gateway.model.vouchers import quota_overruns
from gateway.neighbour_reader import NeighbourReader
from gateway.shaping.shaper import Shaper

__all__ = ["Component", "PassHook", "PassResult", "Reconciler", "build_reconciler"]

log = get_logger("reconcile")


@runtime_checkable
class Component(Protocol):
    """A piece of kernel state that follows the online sessions (nftables, tc, ...).

    - ``reconcile``: level-triggered. Read the kernel, diff against what ``sessions``
      need, apply the difference (one transaction where the kernel allows), and return
      counts such as ``{"added": 1, "removed": 0, "unchanged": 12}``. ``sessions`` are
      the online sessions whose time is not up, oldest first. Must be idempotent:
      a second call with the same input changes nothing.
    - ``login`` / ``logout``: fast paths for one session, called by the command handler
      (authorize/deauthorize) and for sessions the pass ends. No full read; the next
      pass checks their work. Must be idempotent (a replayed command is harmless).
    - ``login_many`` (optional): the logins of commands that arrived together, in one
      kernel transaction; returns ``{sid: why}`` for the sessions it could not let in
      (the others are in). A component without it gets ``login`` once per session.
    - ``after_reply`` (optional, default False): its ``login`` does not decide whether the
      device's traffic flows (a neighbour pin, a lease file), so it runs right after the
      reply (:meth:`Reconciler.run_deferred`); its failure is logged and brings the next
      pass now, but the reply can no longer name it in ``warnings``.
    - ``settle()`` (optional): what ``login``/``login_many`` left for after the reply (the
      shaper's split of the line among everyone), run then like an ``after_reply`` login.
    - ``close``: release handles on shutdown. Kernel state must stay in place.

    Raise on failure: the loop logs it and carries on with the other components.
    """

    name: str

    def reconcile(self, sessions: Sequence[Session], now: float) -> dict[str, int]: ...

    def login(self, session: Session, now: float) -> None: ...

    def logout(self, session: Session, now: float) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class PassHook(Protocol):
    """Non-kernel work that runs with the loop (session-log writer, metrics).

    ``start`` once before the first pass, ``after_pass`` after every pass (also failed
    ones; ``drift`` counts kernel changes the pass made that no command asked for, keyed
    ``<component>_<count>``), ``stop`` on shutdown. A hook must not raise: enforcement
    never waits on a full disk or a metrics port.
    """

    def start(self) -> None: ...

    def after_pass(self, now: float, *, duration: float, drift: dict[str, int], failed: bool) -> object: ...

    def stop(self) -> None: ...


@dataclass
class PassResult:
    """What one pass saw and did."""

    at: float
    duration: float = 0.0
    online: int = 0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    ended: list[tuple[str, str]] = field(default_factory=list)  # (sid, reason)
    moved: dict[str, str] = field(default_factory=dict)  # sid -> new IP
    failed: list[str] = field(default_factory=list)  # names of steps that raised
    next_expiry: float | None = None

    def drift(self) -> dict[str, int]:
        """Return the kernel changes this pass made, as ``{"nft_added": 2, ...}``."""
        out = {}
        for name, counts in self.counts.items():
            for key, value in counts.items():
                if key not in ("unchanged", "invalid") and value:
                    out[f"{name}_{key}"] = value
        return out

    def summary(self) -> dict:
        """Return the pass as a small dict for the heartbeat and the log line."""
        return {
            "at": round(self.at, 3),
            "duration_ms": round(self.duration * 1000, 1),
            "online": self.online,
            "counts": self.counts,
            "ended": len(self.ended),
            "moved": len(self.moved),
            "failed": self.failed,
        }


class Reconciler:
    """Runs passes and fast paths over the components, with accounting and session ends."""

    def __init__(
        self,
        config: Config,
        r: redis.Redis,
        enforcer: NftEnforcer,
        components: Sequence[Component] = (),
        neighbours: NeighbourReader | None = None,
        binder: SessionBinder | None = None,
    ):
        self.config = config
        self.redis = r
        self.enforcer = enforcer
        self.components: list[Component] = [enforcer, *components]
        self.neighbours = neighbours
        self.binder = binder
        # what the fast paths left for after the reply, in order: (component name, job);
        # a job returns False or raises when it failed (logged)
        self.deferred: list[tuple[str, Callable[[], object]]] = []
        self.deferred_failed: list[str] = []  # failures since run_deferred() last reported them

    def configure(self, config: Config) -> None:
        """Take a reloaded config; components with a ``configure(config)`` method get it too."""
        self.config = config
        if self.binder is not None:
            self.binder.configure(config)
        for component in self.components:
            configure = getattr(component, "configure", None)
            if configure is not None:
                configure(config)

    def close(self) -> None:
        """Release the components' and the neighbour reader's handles; kernel state stays."""
        for component in self.components:
            component.close()
        if self.neighbours is not None:
            self.neighbours.close()

    # -- fast paths ----------------------------------------------------------------------

    def login(self, session: Session, now: float) -> list[str]:
        """Run every component's login for ``session``; return the names that failed before the reply
        (see :meth:`login_many`)."""
        return self.login_many([session], now)[session.sid]

    def login_many(self, sessions: Sequence[Session], now: float) -> dict[str, list[str]]:
        """Let all ``sessions`` in at once; return ``{sid: names of the components that failed}``.

        A component with ``login_many`` gets them in one call (one nftables transaction, one
        netlink batch); the others get ``login`` once per session. A component that fails
        for some sessions fails for those alone; one that raises fails for all of them (the
        next pass heals it). A sid given twice counts once, with its last session.

        Only what lets the devices' traffic flow runs now: the logins of ``after_reply``
        components and every ``settle`` are queued for :meth:`run_deferred` (right after the
        reply), so their failures are not in what this returns.
        """
        self._run_pending()  # the last logins' rest first: every fast path starts from what it left
        unique = list({session.sid: session for session in sessions}.values())
        failed: dict[str, list[str]] = {session.sid: [] for session in unique}
        for component in self.components:
            if getattr(component, "after_reply", False):
                self.deferred.append((component.name, self._login_job(component, unique, now)))
                continue
            for sid in self._logins(component, unique, now):
                failed[sid].append(component.name)
            settle = getattr(component, "settle", None)
            if settle is not None:
                self.deferred.append((component.name, settle))
        return failed

    def _logins(self, component: Component, sessions: list[Session], now: float) -> list[str]:
        """Run ``component``'s logins for ``sessions``; return the sids it failed for (logged)."""
        many = getattr(component, "login_many", None)
        if many is None or len(sessions) == 1:
            out = []
            for session in sessions:
                try:
                    component.login(session, now)
                except Exception:
                    log.exception("login_failed", component=component.name, sid=session.sid)
                    out.append(session.sid)
            return out
        try:
            refused = many(sessions, now)
        except Exception:
            log.exception("login_failed", component=component.name, sessions=len(sessions))
            return [session.sid for session in sessions]
        wanted = {session.sid for session in sessions}
        for sid, why in refused.items():
            if sid in wanted:
                log.warning("login_refused", component=component.name, sid=sid, error=why)
        return [sid for sid in refused if sid in wanted]

    def _login_job(self, component: Component, sessions: list[Session], now: float) -> Callable[[], bool]:
        def job() -> bool:
            return not self._logins(component, sessions, now)

        return job

    def run_deferred(self) -> list[str]:
        """Do what the fast paths left for after the reply, in order; return the names of the
        components that failed since the last call (each logged; the next pass heals them)."""
        self._run_pending()
        failed, self.deferred_failed = self.deferred_failed, []
        return failed

    def _run_pending(self) -> None:
        while self.deferred:
            name, job = self.deferred.pop(0)
            try:
                ok = job() is not False
            except Exception:
                log.exception("deferred_failed", component=name)
                ok = False
            if not ok:
                self.deferred_failed.append(name)

    def logout(self, session: Session, now: float) -> list[str]:
        """Run every component's logout for ``session``; return the names that failed."""
        self._run_pending()
        return self._each("logout", session, now)

    def finish(self, session: Session, reason: str, now: float) -> tuple[Session | None, list[str]]:
        """Cut ``session`` off, account its last bytes, and end it with ``reason``.

        The firewall's logout returns the counters it read in the same call that deleted
        the elements; what they grew since the last pass is added before the session ends,
        so its record and its voucher's use include every byte (issue 16, item 10).
        Returns the ended session (None if it was no longer online) and the components
        that failed.
        """
        self._run_pending()  # a login's rest (a pin, its share) must not come back after the cut
        failed, final = [], {}
        for component in self.components:
            try:
                got = component.logout(session, now)
            except Exception:
                log.exception("logout_failed", component=component.name, sid=session.sid)
                failed.append(component.name)
                continue
            if component is self.enforcer and got:
                final = got
        current = get_session(self.redis, session.sid) or session
        up, down = current.bytes_up, current.bytes_down
        if final:
            stored = self.redis.hget(keys.GATEWAY_ACCT, session.sid)
            totals, _ = account(current, final, _load_baseline(stored), now)
            up, down = totals.bytes_up, totals.bytes_down
        self.redis.hdel(keys.GATEWAY_ACCT, session.sid)
        if current.state != "online":  # ended elsewhere first (portal without an ack, desk, revoke)
            add_late_usage(self.redis, session.sid, up - current.bytes_up, down - current.bytes_down)
            return None, failed
        # an expired session ended at its expiry (the kernel's timeout cut it then), even when the
        # pass comes later, or the clock jumped ahead: its record never says it lasted longer
        at = min(now, max(current.expires_at, current.started_at)) if reason == "expired" else now
        ended = end_session(self.redis, session.sid, reason, at, bytes_up=up, bytes_down=down)
        return ended, failed

    def _each(self, op: str, session: Session, now: float) -> list[str]:
        failed = []
        for component in self.components:
            try:
                getattr(component, op)(session, now)
            except Exception:
                log.exception(f"{op}_failed", component=component.name, sid=session.sid)
                failed.append(component.name)
        return failed

    # -- the pass ------------------------------------------------------------------------

    def run_pass(self, now: float | None = None) -> PassResult:
        """Make the kernel follow Redis once; raise only if Redis cannot be read."""
        started = time.monotonic()
        self._run_pending()  # the fast paths' rest first (module docstring); this pass heals its failures
        self.deferred_failed = []
        now = time.time() if now is None else now
        result = PassResult(at=now)
        sessions = online_sessions(self.redis)
        sessions = self._follow_moves(sessions, result, now)
        live = [s for s in sessions if s.expires_at > now]
        for component in self.components:
            try:
                result.counts[component.name] = component.reconcile(live, now)
            except Exception:
                log.exception("reconcile_failed", component=component.name)
                result.failed.append(component.name)
        if "nft" not in result.failed:
            sessions = self._account(sessions, now)
        self._end(sessions, now, result)
        self._remember_ruleset()
        result.online = len(sessions) - len(result.ended)
        future = [s.expires_at for s in sessions if s.expires_at > now]
        result.next_expiry = min(future) if future else None
        result.duration = time.monotonic() - started
        return result

    def _follow_moves(self, sessions: list[Session], result: PassResult, now: float) -> list[Session]:
        """Move sessions whose device provably renewed to a new address; pick their IPv6 addresses.

        The neighbour table only names candidates (anyone can plant an entry in it): the
        binder moves a session on dnsmasq's lease plus a silent old address, and authorizes
        an IPv6 address once the device answered the router's own solicitation for it
        (``docs/security.md``). Without a binder nothing moves and no IPv6 is authorized.
        """
        if self.neighbours is None or self.binder is None:
            return sessions
        try:
            table = self.neighbours.read()
        except Exception:
            log.exception("neighbours_unreadable")
            result.failed.append("neighbours")
            return sessions
        self.binder.saw(set(table.mac_by_ip))
        try:
            result.moved = self.binder.moves(sessions, now)
            ip6 = self.binder.ip6(sessions, table.ip6_by_mac, now)
        except Exception:
            log.exception("binding_failed")
            result.failed.append("binding")
            result.moved, ip6 = {}, {}
        # the enforcer and the doctor plan IPv6 elements from this table: only verified addresses
        self.enforcer.neighbours = replace(table, ip6_by_mac=ip6)
        if not result.moved:
            return sessions
        with self.redis.pipeline(transaction=False) as pipe:
            for sid, ip in result.moved.items():
                pipe.hset(keys.session(sid), "ip", ip)
            pipe.execute()
        out = []
        for session in sessions:
            if session.sid in result.moved:
                log.info("client_moved", sid=session.sid, mac=session.mac, old_ip=session.ip,
                         new_ip=result.moved[session.sid])  # fmt: skip
                session = replace(session, ip=result.moved[session.sid])
            out.append(session)
        return out

    def _account(self, sessions: list[Session], now: float) -> list[Session]:
        """Add what the kernel counted since the last pass to each session; return them updated."""
        counters = self.enforcer.counters()
        stored = self.redis.hgetall(keys.GATEWAY_ACCT)
        usage, baselines, out = {}, {}, []
        for session in sessions:
            elements = counters.get(session.sid, {})
            baseline = _load_baseline(stored.get(session.sid))
            totals, new_baseline = account(session, elements, baseline, now)
            if totals.changed:
                usage[session.sid] = (totals.bytes_up, totals.bytes_down, totals.last_active)
                session = replace(
                    session, bytes_up=totals.bytes_up, bytes_down=totals.bytes_down,
                    last_active=totals.last_active,
                )  # fmt: skip
            if new_baseline != baseline:
                baselines[session.sid] = json.dumps(sorted(new_baseline.items()))
            out.append(session)
        online = {s.sid for s in sessions}
        gone = set(stored) - online
        self._account_late(counters, stored, online, now)
        with self.redis.pipeline(transaction=False) as pipe:
            if baselines:
                pipe.hset(keys.GATEWAY_ACCT, mapping=baselines)
            if gone:
                pipe.hdel(keys.GATEWAY_ACCT, *gone)
            pipe.execute()
        if usage:
            update_usage(self.redis, usage)
        return out

    def _account_late(
        self, counters: dict[str, dict], stored: dict[str, str], online: set[str], now: float
    ) -> None:
        """Count the last bytes of sessions that ended without the gateway (e.g. while it was down).

        Their elements were still in the table this pass read (and the pass just deleted
        them): what the counters grew since the last pass goes to the ended session's record
        and its voucher's use.
        """
        for sid, elements in counters.items():
            if sid in online:
                continue
            session = get_session(self.redis, sid)
            if session is None or session.state != "ended":
                continue
            totals, _ = account(replace(session, bytes_up=0, bytes_down=0), elements,
                                _load_baseline(stored.get(sid)), now)  # fmt: skip
            if add_late_usage(self.redis, sid, totals.bytes_up, totals.bytes_down):
                log.info("late_usage", sid=sid, bytes_up=totals.bytes_up, bytes_down=totals.bytes_down)

    def _end(self, sessions: list[Session], now: float, result: PassResult) -> None:
        ends = plan_ends(sessions, now, self.config.gateway.idle_timeout)
        # a voucher's quota is shared by its devices: each session alone may stay under
        # the quota left when it started while together they pass it
        ending = {session.sid for session, _ in ends}
        others = [s for s in sessions if s.sid not in ending]
        shared = set(quota_overruns(self.redis, self.config.plans, others))
        ends += [(session, "quota") for session in sessions if session.sid in shared]
        for session, reason in ends:
            ended, _failed = self.finish(session, reason, now)
            if ended is not None:
                result.ended.append((session.sid, reason))
                log.info("session_ended", sid=session.sid, mac=session.mac, reason=reason,
                         bytes_up=ended.bytes_up, bytes_down=ended.bytes_down)  # fmt: skip

    def _remember_ruleset(self) -> None:
        """Publish the loaded table's fingerprint so ``hotspotctl doctor`` can check it without us."""
        expected = self.enforcer.expected
        if expected and expected != getattr(self, "_published", ""):
            self.redis.set(keys.GATEWAY_RULESET, json.dumps({"fingerprint": expected, "at": time.time()}))
            self._published = expected


def _load_baseline(text: str | None) -> dict[str, tuple[int, int]]:
    if not text:
        return {}
    try:
        return {name: (int(b), int(p)) for name, (b, p) in json.loads(text)}
    except (ValueError, TypeError):
        return {}


def build_reconciler(config: Config, r: redis.Redis) -> Reconciler:
    """Return the reconciler with every component: the one place where components plug in."""
    neighbours = NeighbourReader(config.network.netns, config.network.lan_interface)
    enforcer = NftEnforcer(config)
    binder = SessionBinder(config)
    # kernel state besides nftables: tc classes, dnsmasq's long leases for devices that logged
    # in, and neighbour entries pinned to the sessions' MACs
    components: list[Component] = [Shaper(config, r), DhcpHosts(config), NeighbourPins(config, binder)]
    return Reconciler(config, r, enforcer, components, neighbours, binder)
