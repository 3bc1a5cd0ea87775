"""The gateway daemon: the only privileged process (CAP_NET_ADMIN).

Run as ``python -m gateway.daemon [--config PATH]`` (systemd: hotspot-gateway.service).
It refuses to start on a bad config (one line per problem, exit 2), installs its
nftables table at once (even before Redis answers: after a reboot nobody may get in),
then loops: a reconcile pass every ``gateway.reconcile_interval`` (sooner when a session
is about to end), and in between the commands of the ``hs:commands`` stream, each
answered on its ack key as soon as it is applied (``authorize`` commands that arrived
together are applied together: :mod:`gateway.daemon.batch`; an ``authorize`` is answered
once the device's traffic can flow, and the rest of the login follows the reply).
SIGTERM/SIGINT stop it cleanly and leave the kernel's enforcement in place, so nobody is
cut off and nobody gets in while it is down. See ``docs/gateway.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from types import FrameType

import redis

from gateway import __version__
from gateway import config as config_mod
from gateway.daemon.batch import runs
from gateway.daemon.clock import ClockWatch
from gateway.daemon.handlers import CommandHandlers
from gateway.daemon.reconcile import PassHook, PassResult, build_reconciler
from gateway.daemon.upkeep import Upkeep
from gateway.firewall.monitor import TableWatch
from gateway.logs import get_logger, setup_logging
from gateway.model import commands, keys
from gateway.model.store import connect
from gateway.radius.accounting import AccountingHook
from gateway.radius.dynauth import DynAuthServer

__all__ = ["Daemon", "main"]

log = get_logger("gateway")

MAX_BACKOFF = 2.0  # seconds between retries while Redis is away: logins resume soon after it returns
WAKE_EVERY = 0.2  # longest wait for commands before looking at the table watch and signals
DRAIN_ROUNDS = 4  # reads of waiting commands before a due pass (bounded: a flood cannot hold passes off)
Handler = Callable[[commands.Command], dict]


class Daemon(CommandHandlers):
    """The loop: passes on a timer, commands in between, until SIGTERM."""

    def __init__(self, config: config_mod.Config):
        self.config = config
        self.redis = connect(config)
        self.stopping = False
        self.started_at = time.time()
        self.cursor = ""  # stream id of the last command handled
        # kernel components (nftables, tc shaping) are listed in gateway.daemon.reconcile.build_reconciler
        self.reconciler = build_reconciler(config, self.redis)
        self.enforcer = self.reconciler.enforcer
        # non-kernel work after each pass (session log, metrics) plugs in here: see docs/gateway.md
        self.upkeep = Upkeep(config, self.redis)  # session log, /metrics, reloads (docs/operations.md)
        self.hooks: list[PassHook] = [self.upkeep]
        # a clock behind or jumping (no NTP yet after a power cut): docs/fleet-ops.md#clock
        self.clock = ClockWatch(self.redis, slack=max(10.0, 3 * config.gateway.reconcile_interval))
        if config.radius is not None:  # accounting to HQ, queued while it is away (docs/fleet.md)
            self.hooks.append(AccountingHook(config, self.redis))
            if config.radius.dynauth_listen:  # Disconnect/CoA from HQ (RFC 5176)
                self.hooks.append(DynAuthServer(config, self.redis, on_change=self.wake))
        self.reload_requested = False  # SIGHUP
        self.hooks_started = False  # run() starts the hooks; one added by a reload then starts at once
        self.handlers: dict[str, Handler] = {
            "authorize": self.authorize,
            "deauthorize": self.deauthorize,
            "reconcile": self.reconcile_now,
            "doctor": self.doctor,
            "resolve": self.resolve,
            "present": self.present,
            "ping": self.ping,
            "reload": self.reload,
        }
        self.watch: TableWatch | None = None  # started in run(): hand edits of the table
        self.last_pass: PassResult | None = None
        self.next_pass = 0.0  # time.monotonic() of the next pass

    def apply_config(self, config: config_mod.Config) -> None:
        """Run with a reloaded config from now on (the table is replaced at once if its rules change)."""
        self.config = config
        self.reconciler.configure(config)
        self._configure_radius(config)
        self.next_pass = 0.0

    def _configure_radius(self, config: config_mod.Config) -> None:
        """Apply a reloaded ``[radius]`` to accounting and Disconnect/CoA without a restart.

        Accounting keeps its thread and its outbox (Redis): the sender takes the new servers,
        secret, timeouts and NAS settings from its next round. The Disconnect/CoA listener is
        replaced when its settings or the secret changed (a moment without a listener; HQ
        retries). Sessions are untouched: nobody is logged out, no queued record is lost.
        """
        accounting = next((h for h in self.hooks if isinstance(h, AccountingHook)), None)
        dynauth = next((h for h in self.hooks if isinstance(h, DynAuthServer)), None)
        radius = config.radius
        if radius is None:
            for hook in (accounting, dynauth):
                if hook is not None:
                    hook.stop()
                    self.hooks.remove(hook)
            if accounting or dynauth:
                log.info("radius_reloaded", accounting=False, dynauth=False)
            return
        if accounting is None:
            self._add_hook(AccountingHook(config, self.redis))
        else:
            accounting.configure(config)
        if dynauth is not None and (not radius.dynauth_listen or dynauth.outdated(config)):
            dynauth.stop()
            self.hooks.remove(dynauth)
            dynauth = None
        if dynauth is None and radius.dynauth_listen:
            self._add_hook(DynAuthServer(config, self.redis, on_change=self.wake))
        log.info("radius_reloaded", servers=[str(s.host) for s in radius.servers],
                 dynauth=radius.dynauth_listen or "off")  # fmt: skip

    def _add_hook(self, hook: PassHook) -> None:
        self.hooks.append(hook)
        if self.hooks_started:
            hook.start()

    def reload(self, _command: commands.Command | None = None) -> dict:
        """Re-read the config file; a bad file is refused and the running config stays."""
        result = self.upkeep.reload(self.config)
        if result.ok:
            self.apply_config(result.config)
        return result.reply()

    def wake(self) -> None:
        """Run a pass at once (another thread changed sessions, e.g. HQ's Disconnect-Request)."""
        self.next_pass = 0.0

    def request_reload(self, _signum: int, _frame: FrameType | None) -> None:
        self.reload_requested = True

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        log.info("gateway_stopping", signal=signal.Signals(signum).name)
        self.stopping = True

    # -- the loop ------------------------------------------------------------------------

    def next_pass_at(self) -> float:
        """Return the wall-clock time of the next planned pass."""
        return time.time() + max(0.0, self.next_pass - time.monotonic())

    def run_pass(self) -> PassResult:
        """Run one reconcile pass, publish it, and plan the next."""
        try:
            self.clock.check()  # a jump moves the sessions' times before the pass judges them
        except redis.RedisError:
            pass  # the pass below reports Redis being down
        result = self.reconciler.run_pass()
        self.last_pass = result
        period = min(self.config.gateway.reconcile_interval, self.config.gateway.accounting_interval)
        wait = period
        if result.next_expiry is not None:
            wait = min(wait, max(0.05, result.next_expiry - time.time() + 0.05))
        self.next_pass = time.monotonic() + wait
        # one line per pass; passes that changed nothing are debug so journald keeps what matters
        busy = result.failed or result.drift() or result.ended or result.moved
        level = "warning" if result.failed else "info" if busy else "debug"
        getattr(log, level)("reconcile_done", **result.summary())
        self.heartbeat()
        for hook in self.hooks:
            hook.after_pass(
                result.at, duration=result.duration, drift=result.drift(), failed=bool(result.failed)
            )
        return result

    def heartbeat(self) -> None:
        info = {
            "pid": os.getpid(), "version": __version__, "started_at": self.started_at, "at": time.time(),
            "pass": self.last_pass.summary() if self.last_pass else None,
            **self.upkeep.state(),  # the session log's health (hotspotctl status warns)
            "clock": self.clock.state(),
        }  # fmt: skip
        ttl = commands.heartbeat_ttl(self.config.gateway.reconcile_interval)
        self.redis.set(keys.GATEWAY_HEARTBEAT, json.dumps(info), ex=ttl)

    def start_cursor(self) -> str:
        """Return where to resume the command stream: after the last command handled, but
        no further back than a requester could still be waiting (``commands.REPLY_TTL``)."""
        floor = f"{int((time.time() - commands.REPLY_TTL) * 1000)}-0"
        saved = self.redis.get(keys.GATEWAY_CURSOR) or "0-0"
        return max(saved, floor, key=_stream_id)

    def serve_commands(self, block_ms: int | None) -> int:
        """Handle the commands that arrive within ``block_ms`` (None: those waiting now); return how many."""
        batch = commands.read_commands(self.redis, self.cursor, block_ms)
        if len(batch) > 1:  # arrived together (e.g. a class logging in): see gateway.daemon.batch
            ops = Counter(command.op for command in batch)
            log.info("commands_batch", n=len(batch), ops=dict(sorted(ops.items())))
        for run in runs(batch):
            results = self.handle_run(run)
            commands.reply_many(self.redis, [(c.id, r) for c, r in zip(run, results, strict=True)],
                                now=time.time())  # fmt: skip
            # the logins' rest (the line's split, pins, lease files): after their replies, before
            # the next run and the next read, so an authorize then a deauthorize ends logged out
            self.run_deferred()
        if batch:
            # after the whole batch (runs may be reordered): a failure midway replays it, and
            # every command is idempotent
            self.cursor = batch[-1].stream_id
            self.redis.set(keys.GATEWAY_CURSOR, self.cursor)
        return len(batch)

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; return the process exit code."""
        log.info("gateway_started", version=__version__, config=str(self.config.path), pid=os.getpid())
        try:
            self.enforcer.ensure_ruleset()  # before Redis: a rebooted router must not stand open
        except Exception:
            log.exception("ruleset_not_loaded")
        self.watch = TableWatch(self.config.network.netns)
        for hook in self.hooks:
            hook.start()
        self.hooks_started = True
        backoff = 0.25
        while not self.stopping:
            try:
                if self.reload_requested:
                    self.reload_requested = False
                    self.reload()
                if not self.cursor:
                    self.cursor = self.start_cursor()
                if self.watch.changed.is_set():
                    self.watch.changed.clear()  # someone edited our table: heal it now
                    self.next_pass = 0.0
                if time.monotonic() >= self.next_pass:
                    # commands already waiting go first: each has a requester (a phone's login)
                    # waiting on it, and a pass with many online takes tens of milliseconds;
                    # not before the first pass after a start, which heals the kernel first
                    for _ in range(DRAIN_ROUNDS if self.last_pass is not None else 0):
                        if not self.serve_commands(None):
                            break
                    self.run_pass()
                wait = self.next_pass - time.monotonic()
                # block for commands until the next pass; wake often enough to see a hand
                # edit of the table (TableWatch) and SIGTERM
                self.serve_commands(int(min(max(wait, 0.001), WAKE_EVERY) * 1000))
                backoff = 0.25
            except redis.RedisError as err:
                # Redis away: the kernel keeps enforcing what it has; retry soon
                log.warning("redis_unavailable", error=str(err), retry_in=backoff)
                self._after_failure(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
            except Exception:
                log.exception("pass_failed", retry_in=backoff)  # keep the last applied state
                self._after_failure(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
        for hook in self.hooks:
            hook.stop()
        self.reconciler.close()
        self.watch.close()
        try:
            self.redis.delete(keys.GATEWAY_HEARTBEAT)
        except redis.RedisError:
            pass
        log.info("gateway_stopped", left_in_kernel="table inet hotspot and its elements")
        return 0

    def _after_failure(self, backoff: float) -> None:
        for hook in self.hooks:
            hook.after_pass(time.time(), duration=0.0, drift={}, failed=True)
        time.sleep(backoff)
        self.next_pass = 0.0


def _stream_id(text: str) -> tuple[int, int]:
    ms, _, seq = text.partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        return 0, 0


def main(argv: list[str] | None = None) -> int:
    """Start the gateway daemon; exit 2 with one line per problem on a bad config."""
    parser = argparse.ArgumentParser(prog="hotspot-gateway", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", help="config file (default: $HOTSPOT_CONFIG or /etc/hotspot/hotspot.toml)"
    )
    parser.add_argument("--log-level", default=os.environ.get("HOTSPOT_LOG_LEVEL", "info"))
    args = parser.parse_args(argv)
    try:
        config = config_mod.load(args.config)
    except config_mod.ConfigError as err:
        print("\n".join(err.lines()), file=sys.stderr)
        print("gateway not started: fix the config and start it again", file=sys.stderr)
        return 2
    setup_logging(args.log_level)
    daemon = Daemon(config)
    signal.signal(signal.SIGTERM, daemon.stop)
    signal.signal(signal.SIGINT, daemon.stop)
    signal.signal(signal.SIGHUP, daemon.request_reload)
    return daemon.run()


if __name__ == "__main__":
    sys.exit(main())
