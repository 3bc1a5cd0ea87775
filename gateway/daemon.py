"""The gateway daemon: the only privileged process (CAP_NET_ADMIN).

Run as ``python -m gateway.daemon [--config PATH]`` (systemd: hotspot-gateway.service).
It refuses to start on a bad config (one line per problem, exit 2), announces itself
with a heartbeat key in Redis, serves commands from the ``hs:commands`` stream and
stops cleanly on SIGTERM/SIGINT, leaving the kernel's enforcement in place so nobody
is cut off and nobody gets in while it is down.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from types import FrameType

import redis

from gateway import __version__, commands, keys
from gateway import config as config_mod
from gateway.logs import get_logger, setup_logging
from gateway.store import connect
from gateway.upkeep import Upkeep

__all__ = ["Daemon", "main"]

log = get_logger("gateway")


class Daemon:
    """The loop: wait for commands (or the reconcile interval), act, repeat until stopped."""

    def __init__(self, config: config_mod.Config):
        self.config = config
        self.redis = connect(config)
        self.stopping = False
        self.started_at = time.time()
        self.last_command_id = "$"
        self.upkeep = Upkeep(config, self.redis)  # session log, /metrics, reloads
        self.reload_requested = False

    def request_reload(self, _signum: int, _frame: FrameType | None) -> None:
        self.reload_requested = True

    def reload(self) -> dict:
        """Re-read the config; a bad file is refused and the running config stays."""
        result = self.upkeep.reload(self.config)
        self.config = result.config
        return result.reply()

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        log.info("gateway_stopping", signal=signal.Signals(signum).name)
        self.stopping = True

    def heartbeat(self) -> None:
        info = {"pid": os.getpid(), "version": __version__, "started_at": self.started_at, "at": time.time()}
        ttl = max(10, 3 * self.config.gateway.reconcile_interval)
        self.redis.set(keys.GATEWAY_HEARTBEAT, json.dumps(info), ex=ttl)

    def handle(self, command: commands.Command) -> dict:
        """Act on one command and return the reply for its requester."""
        log.info("command_received", op=command.op, request_id=command.id)
        if command.op == "reload":
            return self.reload()
        return {"ok": False, "op": command.op, "error": "not implemented yet"}

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; return the process exit code."""
        log.info("gateway_started", version=__version__, config=str(self.config.path), pid=os.getpid())
        interval = self.config.gateway.reconcile_interval
        backoff = 0.5
        self.upkeep.start()
        while not self.stopping:
            try:
                if self.reload_requested:
                    self.reload_requested = False
                    self.reload()
                self.heartbeat()
                block_ms = int(min(interval, 1.0) * 1000)  # wake at least every second to see SIGTERM
                for command in commands.read_commands(self.redis, self.last_command_id, block_ms):
                    self.last_command_id = command.stream_id
                    commands.reply(self.redis, command.id, self.handle(command))
                self.upkeep.after_pass(time.time())
                backoff = 0.5
            except redis.RedisError as err:
                # Redis down: the kernel keeps enforcing what it has; retry with backoff
                log.warning("redis_unavailable", error=str(err), retry_in=backoff)
                time.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
        self.upkeep.stop()
        try:
            self.redis.delete(keys.GATEWAY_HEARTBEAT)
        except redis.RedisError:
            pass
        log.info("gateway_stopped")
        return 0


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
