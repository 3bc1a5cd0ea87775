"""What the gateway daemon does besides enforcing: the session log, /metrics, config reloads.

Plugged into the daemon's loop as hooks: :meth:`Upkeep.start` once, :meth:`Upkeep.after_pass`
after every reconcile pass (with what the pass measured), :meth:`Upkeep.reload` on SIGHUP
or the ``reload`` command, :meth:`Upkeep.stop` on the way out. None of it may stop the
firewall from being enforced: a full disk or a busy metrics port is logged and counted,
never raised into the loop.
"""

from __future__ import annotations

from dataclasses import replace

import redis

from gateway.config import Config
from gateway.daemon.metrics import GatewayMetrics
from gateway.daemon.reload import ReloadResult, reload_config
from gateway.daemon.sessionlog import SessionLog, SessionLogWriter
from gateway.logs import get_logger
from gateway.model import keys
from gateway.ops.dnsmasq import leases_in_pool
from gateway.shaping.dump import read_shaping_drops

__all__ = ["Upkeep"]

log = get_logger("gateway")

POOL_CHECK_EVERY = 30.0  # seconds between reads of dnsmasq's lease file


class Upkeep:
    """The session-log writer, the metrics registry and its server, and reloads, for one daemon."""

    def __init__(self, config: Config, r: redis.Redis):
        self.config = config
        self.redis = r
        self.writer = SessionLogWriter(r, SessionLog.from_config(config))
        self.metrics = GatewayMetrics(
            lambda: self.redis,
            library=config.library.id,
            shaping_drops=lambda: read_shaping_drops(
                self.config.network.netns, self.config.network.lan_interface
            ),
        )
        self.metrics.set_config(config)
        self.log_error: str | None = None  # why the last write of the session log failed
        self.log_failing_since = 0.0
        self.log_lag = 0  # session records in Redis not on disk yet
        self.pool_checked = 0.0
        self.pool_low = False

    def start(self) -> None:
        """Serve /metrics (if ``metrics.listen`` is set)."""
        self.metrics.serve(self.config.metrics.listen)

    def after_pass(
        self,
        now: float,
        *,
        duration: float | None = None,
        drift: dict[str, int] | None = None,
        failed: bool = False,
        shaping_drops: dict[str, int] | None = None,
    ) -> int:
        """Record the pass in the metrics and copy new session records to disk; return how many."""
        if duration is not None and not (failed and duration == 0):
            self.metrics.observe_pass(duration, drift=drift, failed=failed)
        elif failed:
            self.metrics.reconcile_errors.inc()  # the loop failed before a pass could run
        for direction, total in (shaping_drops or {}).items():
            self.metrics.set_shaping_drops(direction, total)
        if now - self.pool_checked >= POOL_CHECK_EVERY:
            self.pool_checked = now
            self.check_pool(now)
        try:
            written = self.writer.pump(now)
            self.metrics.session_log_records.inc(written)
            self.log_lag = self.writer.lag()
            self.metrics.session_log_lag.set(self.log_lag)
        except redis.RedisError:
            return 0  # the daemon reports Redis being down; the records wait in the stream
        except OSError as err:
            # disk full or unwritable: records wait in Redis, the lag metric grows, enforcement goes on
            self.metrics.session_log_write_errors.inc()
            self.metrics.session_log_records.inc(getattr(err, "written", 0))  # days written before it
            self._set_lag()
            if self.log_error is None:
                log.error(
                    "session_log_write_failed", error=str(err), directory=str(self.writer.log.directory),
                    waiting=self.log_lag, hint="records wait in Redis; free space, see docs/fleet-ops.md",
                )  # fmt: skip
                self.log_failing_since = now
            self.log_error = str(err)
            return 0
        if self.log_error is not None:
            failing_for = round(now - self.log_failing_since)
            log.info("session_log_write_recovered", written=written, failing_for=failing_for)
            self.log_error = None
        return written

    @property
    def log_failing(self) -> bool:
        """Whether the last attempt to write the session log failed."""
        return self.log_error is not None

    def _set_lag(self) -> None:
        try:
            self.log_lag = self.writer.lag() if self.writer.position is not None else self._stream_lag()
        except redis.RedisError:
            return
        self.metrics.session_log_lag.set(self.log_lag)

    def _stream_lag(self) -> int:
        # the writer forgot its position after the failure: count after the last record on disk
        try:
            position = self.writer.log.last_id()
        except OSError:
            return self.log_lag
        return len(self.redis.xrange(keys.EVENTS, f"({position}", "+", count=10_000))

    def state(self) -> dict:
        """Return what ``hotspotctl status`` should know: the session log's health (for the heartbeat)."""
        session_log = {"ok": self.log_error is None, "waiting": self.log_lag}
        if self.log_error is not None:
            session_log.update(error=self.log_error, failing_since=self.log_failing_since)
        return {"session_log": session_log}

    def reload(self, current: Config) -> ReloadResult:
        """Re-read the config file; return the result (``result.config`` is the one to run)."""
        result = reload_config(current)
        self.metrics.config_reloads.labels("ok" if result.ok else "rejected").inc()
        if not result.ok:
            log.error("config_rejected", problems=result.problems, path=str(current.path))
            return result
        log.info(
            "config_reloaded", changed=result.changed, restart_needed=result.restart_needed,
            path=str(current.path),
        )  # fmt: skip
        self.config = result.config
        self.metrics.set_config(result.config)
        fresh = SessionLog.from_config(result.config)
        self.writer.log = replace(self.writer.log, library=fresh.library, timezone=fresh.timezone,
                                  retention_days=fresh.retention_days)  # fmt: skip
        self.writer.last_pruned = None  # apply a new retention today
        return result

    def stop(self) -> None:
        """Stop serving /metrics."""
        self.metrics.close()

    def check_pool(self, now: float) -> int | None:
        """Read dnsmasq's leases into the pool metrics; warn once when the pool runs low."""
        dhcp = self.config.dhcp
        try:
            text = dhcp.lease_file.read_text(errors="replace")
        except OSError:
            return None  # no lease file yet (no lease given), or dnsmasq keeps it elsewhere
        used, size = leases_in_pool(text, dhcp.range_start, dhcp.range_end, now), dhcp.pool_size
        self.metrics.dhcp_leases.set(used)
        self.metrics.dhcp_pool_size.set(size)
        low = size - used < dhcp.pool_low * size
        if low and not self.pool_low:
            log.warning("dhcp_pool_low", leases=used, pool_size=size, hint="starvation? docs/security.md")
        elif self.pool_low and not low:
            log.info("dhcp_pool_recovered", leases=used, pool_size=size)
        self.pool_low = low
        return used
