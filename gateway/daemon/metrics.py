"""Prometheus ``/metrics`` for the gateway: how a central team watches ~110 libraries.

Served by the gateway daemon on ``metrics.listen`` (default ``127.0.0.1:9110``): the
admin side only. The config refuses the LAN address, and the firewall keeps every
router port but DHCP, DNS and the portal closed to visitors. Series (all ``hotspot_``):

=========================================  =======  ==============================================
series                                     type     source
=========================================  =======  ==============================================
clients_online{plan}                       gauge    ``hs:sessions:online`` (read at scrape)
logins_total{result=ok|failed|rate_limited} counter  ``hs:counters`` (written by the portal)
free_logins_total, gateway_ack_timeouts_total counter  ``hs:counters``; any other field: <field>_total
client_bytes_total{direction=down|up}      counter  session byte counters, summed over sessions
redis_up, redis_ping_seconds               gauge    a PING at scrape
reconcile_duration_seconds                 histo    the daemon, once per pass
reconcile_errors_total                     counter  the daemon: passes that failed
drift_corrections_total{kind}              counter  the daemon: kernel changes no command asked for
shaping_drops_total{direction}             counter  the root HTB qdiscs' drop counts (read at scrape)
session_log_records_total, _lag            c / g    the session-log writer
session_log_write_errors_total             counter  the writer: passes whose write to disk failed
uplink_rate_bits_per_second{direction}     gauge    the config's uplink line rate (down/up)
certificate_expiry_timestamp_seconds{cert} gauge    notAfter of the portal's TLS certificate
config_reloads_total{result=ok|rejected}   counter  ``hotspotctl reload`` / SIGHUP
dhcp_leases, dhcp_pool_size                gauge    dnsmasq's lease file (read every 30 s); alert when
                                                    leases > (1 - dhcp.pool_low) x pool_size (DHCP starvation)
gateway_info{version,library_id}           info
=========================================  =======  ==============================================

While Redis is down, only ``redis_up 0`` and the daemon's own series are reported.
"""

from __future__ import annotations

import re
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import redis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import start_http_server

from gateway import __version__
from gateway.logs import get_logger
from gateway.model import keys
from gateway.radius.accounting import OUTBOX

__all__ = ["GatewayMetrics", "certificate_not_after", "parse_listen"]

log = get_logger("metrics")

# hs:counters fields with a series of their own; other fields become hotspot_<field>_total
LOGIN_RESULTS = {"logins_ok": "ok", "logins_failed": "failed", "logins_rate_limited": "rate_limited"}


def parse_listen(listen: str) -> tuple[str, int]:
    """Return (host, port) from ``"127.0.0.1:9110"`` or ``"[::1]:9110"``."""
    match = re.match(r"^\[?([^\]]*)\]?:(\d+)$", listen.strip())
    if not match:
        raise ValueError(f'"{listen}" is not host:port (e.g. "127.0.0.1:9110")')
    return match.group(1), int(match.group(2))


class _ByteTotals:
    """Monotonic byte totals from per-session counters that come and go.

    Sessions online at the first scrape are the baseline (not counted), so a restarted
    gateway starts its counters from zero, which Prometheus reads as a counter reset.
    A session that ends is counted up to its final bytes, read from its ended hash.
    """

    def __init__(self) -> None:
        self.seen: dict[str, tuple[int, int]] = {}
        self.totals = [0, 0]  # down, up
        self.started = False

    def update(self, r: redis.Redis, sessions: dict[str, dict[str, str]]) -> None:
        gone = [sid for sid in self.seen if sid not in sessions]
        finals = {}
        if gone:
            with r.pipeline(transaction=False) as pipe:
                for sid in gone:
                    pipe.hmget(keys.session(sid), "bytes_down", "bytes_up")
                for sid, values in zip(gone, pipe.execute(), strict=True):
                    if values and values[0] is not None:
                        finals[sid] = {"bytes_down": values[0], "bytes_up": values[1]}
        for sid, data in [*sessions.items(), *finals.items()]:
            now = (_int(data.get("bytes_down")), _int(data.get("bytes_up")))
            before = self.seen.get(sid, (0, 0) if self.started else now)
            for i in (0, 1):
                self.totals[i] += max(0, now[i] - before[i])
            self.seen[sid] = now
        for sid in gone:
            self.seen.pop(sid, None)
        self.started = True


class _Monotonic:
    """Counters fed with kernel totals that can fall (a qdisc replaced): only rises are counted.

    The first total seen for a key is the baseline, as for :class:`_ByteTotals`.
    """

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}
        self.totals: dict[str, int] = {}

    def update(self, key: str, kernel_total: int) -> None:
        before = self.seen.get(key, kernel_total)
        self.totals[key] = self.totals.get(key, 0) + max(0, kernel_total - before)
        self.seen[key] = kernel_total


class _RedisCollector:
    """Reads the Redis-held values (and the shaper's drops) at scrape time."""

    def __init__(self, connect, shaping_drops=None):
        self.connect = connect
        self.read_drops = shaping_drops
        self.bytes = _ByteTotals()
        self.drops = _Monotonic()
        self.lock = threading.Lock()

    def describe(self) -> list:
        return []  # unchecked: the series depend on what Redis holds

    def collect(self) -> Iterator:
        yield self._drops()
        up = GaugeMetricFamily("hotspot_redis_up", "Whether the gateway reaches Redis (1) or not (0)")
        ping = GaugeMetricFamily("hotspot_redis_ping_seconds", "Round trip of a Redis PING at scrape")
        with self.lock:
            try:
                r = self.connect()
                started = time.perf_counter()
                r.ping()
                elapsed = time.perf_counter() - started
                families = list(self._from_redis(r))
            except redis.RedisError as err:
                log.warning("metrics_redis_unavailable", error=str(err))
                up.add_metric([], 0)
                yield up
                return
        up.add_metric([], 1)
        ping.add_metric([], elapsed)
        yield up
        yield ping
        yield from families

    def _drops(self) -> CounterMetricFamily:
        with self.lock:
            if self.read_drops is not None:
                try:
                    for direction, total in self.read_drops().items():
                        self.drops.update(direction, total)
                except Exception as err:  # noqa: BLE001 - a metric must never break a scrape
                    log.warning("metrics_shaping_drops_unreadable", error=str(err))
            family = CounterMetricFamily(
                "hotspot_shaping_drops", "Packets the shaper's queues dropped", labels=["direction"]
            )
            for direction in ("down", "up"):
                family.add_metric([direction], self.drops.totals.get(direction, 0))
        return family

    def _from_redis(self, r: redis.Redis) -> Iterator:
        sids = sorted(r.smembers(keys.ONLINE))
        sessions: dict[str, dict[str, str]] = {}
        if sids:
            with r.pipeline(transaction=False) as pipe:
                for sid in sids:
                    pipe.hmget(keys.session(sid), "plan", "bytes_down", "bytes_up", "state")
                for sid, (plan, down, up, state) in zip(sids, pipe.execute(), strict=True):
                    if state in (None, "online"):
                        sessions[sid] = {"plan": plan or "", "bytes_down": down, "bytes_up": up}
        online = GaugeMetricFamily("hotspot_clients_online", "Clients online now, by plan", labels=["plan"])
        by_plan: dict[str, int] = {}
        for data in sessions.values():
            by_plan[data["plan"]] = by_plan.get(data["plan"], 0) + 1
        for plan, count in sorted(by_plan.items()):
            online.add_metric([plan], count)
        if not by_plan:
            online.add_metric([""], 0)
        yield online

        self.bytes.update(r, sessions)
        traffic = CounterMetricFamily(
            "hotspot_client_bytes", "Bytes clients moved since the gateway started", labels=["direction"]
        )
        traffic.add_metric(["down"], self.bytes.totals[0])
        traffic.add_metric(["up"], self.bytes.totals[1])
        yield traffic

        # accounting records waiting for HQ (store and forward): grows while HQ is unreachable
        yield GaugeMetricFamily(
            "hotspot_radius_queue_length", "RADIUS accounting records waiting for HQ", value=r.xlen(OUTBOX)
        )

        counters = r.hgetall(keys.COUNTERS)
        logins = CounterMetricFamily("hotspot_logins", "Portal logins by result", labels=["result"])
        for field, result in LOGIN_RESULTS.items():
            logins.add_metric([result], _int(counters.get(field)))
        yield logins
        for field, value in sorted(counters.items()):
            if field in LOGIN_RESULTS or not re.match(r"^[a-z_][a-z0-9_]*$", field):
                continue
            yield CounterMetricFamily(f"hotspot_{field}", f"hs:counters {field}", value=_int(value))


def certificate_not_after(path: Path) -> float:
    """Return the notAfter of the first certificate in the PEM file ``path`` (a Unix time)."""
    # the standard library's own PEM decoder (private, stable since 3.3): no dependency for a date
    decoded = ssl._ssl._test_decode_cert(str(path))
    return ssl.cert_time_to_seconds(decoded["notAfter"])


class _CertificateCollector:
    """``hotspot_certificate_expiry_timestamp_seconds{cert}``, read at scrape (cached by mtime)."""

    def __init__(self) -> None:
        self.paths: dict[str, Path] = {}
        self.cache: dict[str, tuple[float, float]] = {}

    def describe(self) -> list:
        return []

    def collect(self) -> Iterator:
        family = GaugeMetricFamily(
            "hotspot_certificate_expiry_timestamp_seconds",
            "When a certificate the router serves expires (Unix time)",
            labels=["cert"],
        )
        for name, path in sorted(self.paths.items()):
            try:
                mtime = Path(path).stat().st_mtime
                cached = self.cache.get(str(path))
                if cached is None or cached[0] != mtime:
                    cached = (mtime, certificate_not_after(Path(path)))
                    self.cache[str(path)] = cached
            except (OSError, ssl.SSLError, ValueError, KeyError):
                continue  # unreadable: no series, the portal's own start reports it
            family.add_metric([name], cached[1])
        yield family


class GatewayMetrics:
    """The gateway's registry: Redis-fed series read at scrape, and what the daemon reports."""

    def __init__(self, connect, *, library: str = "", shaping_drops=None):
        """``connect()`` returns a Redis client; ``shaping_drops()`` the kernel's drop totals by
        direction (both called at each scrape)."""
        self.registry = CollectorRegistry()
        reg = self.registry
        self.reconcile_seconds = Histogram(
            "hotspot_reconcile_duration_seconds", "Time of one reconcile pass", registry=reg,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )  # fmt: skip
        self.reconcile_errors = Counter(
            "hotspot_reconcile_errors", "Reconcile passes that failed", registry=reg
        )
        self.drift = Counter(
            "hotspot_drift_corrections",
            "Kernel changes a periodic pass made that no command asked for (drift healed)",
            ["kind"],
            registry=reg,
        )
        self.dhcp_leases = Gauge(
            "hotspot_dhcp_leases", "Unexpired DHCP leases in the pool (dnsmasq's lease file)", registry=reg
        )
        self.dhcp_pool_size = Gauge("hotspot_dhcp_pool_size", "Addresses in the DHCP range", registry=reg)
        self.session_log_records = Counter(
            "hotspot_session_log_records", "Session-log records written to disk", registry=reg
        )
        self.session_log_lag = Gauge(
            "hotspot_session_log_lag", "Session records in Redis not on disk yet", registry=reg
        )
        self.session_log_write_errors = Counter(
            "hotspot_session_log_write_errors",
            "Passes whose session-log write to disk failed (disk full, unwritable)",
            registry=reg,
        )
        self.uplink_rate = Gauge(
            "hotspot_uplink_rate_bits_per_second",
            "The uplink's line rate from the config (uplink.down / uplink.up)",
            ["direction"],
            registry=reg,
        )
        self.certificates = _CertificateCollector()
        reg.register(self.certificates)
        self.config_reloads = Counter(
            "hotspot_config_reloads", "Config reloads by result", ["result"], registry=reg
        )
        for result in ("ok", "rejected"):
            self.config_reloads.labels(result)
        self.info = Info("hotspot_gateway", "The running gateway", registry=reg)
        self.info.info({"version": __version__, "library_id": library})
        self.collector = _RedisCollector(connect, shaping_drops)
        reg.register(self.collector)
        self.server = None

    def observe_pass(
        self, seconds: float, *, drift: dict[str, int] | None = None, failed: bool = False
    ) -> None:
        """Record one reconcile pass: its duration, drift it healed (by kind), whether it failed."""
        self.reconcile_seconds.observe(seconds)
        if failed:
            self.reconcile_errors.inc()
        for kind, count in (drift or {}).items():
            if count > 0:
                self.drift.labels(kind).inc(count)

    def set_config(self, config) -> None:
        """Report what the config says that alerts compare against: the uplink, the certificates."""
        self.uplink_rate.labels("down").set(config.uplink.down)
        self.uplink_rate.labels("up").set(config.uplink.up)
        self.certificates.paths = {"portal": config.portal.tls_cert} if config.portal.tls_cert else {}

    def set_shaping_drops(self, direction: str, kernel_total: int) -> None:
        """Report the shaper's drop total now (from whoever read it); only increases are counted.

        A qdisc replaced starts again from zero; the counter does not.
        """
        with self.collector.lock:
            self.collector.drops.update(direction, kernel_total)

    def serve(self, listen: str) -> tuple[str, int] | None:
        """Serve /metrics on ``listen`` in a thread; return the bound (host, port), None if off."""
        if not listen:
            return None
        host, port = parse_listen(listen)
        try:
            self.server, _thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as err:
            # metrics are for watching; never a reason for the firewall not to run
            log.error("metrics_not_served", listen=listen, error=str(err))
            return None
        bound = self.server.server_address[:2]
        log.info("metrics_serving", listen=f"{bound[0]}:{bound[1]}")
        return bound[0], bound[1]

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def _int(value) -> int:
    try:
        return int(float(value or 0))
    except (TypeError, ValueError):
        return 0
