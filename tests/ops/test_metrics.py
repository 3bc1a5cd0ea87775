"""/metrics: the series the issue lists, fed from real Redis and from the daemon, over HTTP."""

from __future__ import annotations

import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from gateway.daemon.metrics import GatewayMetrics
from gateway.model import keys
from gateway.model.sessions import end_session, new_session, start_session
from gateway.model.store import connect


def samples(metrics: GatewayMetrics) -> dict[tuple, float]:
    from prometheus_client import generate_latest

    out = {}
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def visit(r, i, plan="harian"):
    now = time.time()
    s = new_session(
        mac=f"02:00:00:00:01:{i:02x}", ip=f"10.42.0.{100 + i}", kind="voucher", plan=plan,
        now=now, expires_at=now + 600, down=4_000_000, up=2_000_000,
    )  # fmt: skip
    return start_session(r, s, now)


def test_series_from_redis(r, redis_url):
    metrics = GatewayMetrics(lambda: connect(redis_url), library="sukabumi")
    a = visit(r, 1)
    r.hset(keys.session(a.sid), mapping={"bytes_down": 1000, "bytes_up": 100})
    visit(r, 2, plan="gratis")
    r.hset(
        keys.COUNTERS,
        mapping={"logins_ok": 7, "logins_failed": 3, "logins_rate_limited": 1, "free_logins": 2},
    )
    first = samples(metrics)
    assert first[("hotspot_redis_up", ())] == 1
    assert first[("hotspot_clients_online", (("plan", "harian"),))] == 1
    assert first[("hotspot_clients_online", (("plan", "gratis"),))] == 1
    assert first[("hotspot_logins_total", (("result", "ok"),))] == 7
    assert first[("hotspot_logins_total", (("result", "failed"),))] == 3
    assert first[("hotspot_logins_total", (("result", "rate_limited"),))] == 1
    assert first[("hotspot_free_logins_total", ())] == 2
    assert first[("hotspot_gateway_info", (("library_id", "sukabumi"), ("version", "0.1.0")))] == 1
    # the sessions online at the first scrape are the baseline
    assert first[("hotspot_client_bytes_total", (("direction", "down"),))] == 0

    r.hset(keys.session(a.sid), mapping={"bytes_down": 5000, "bytes_up": 300})
    c = visit(r, 3)
    r.hset(keys.session(c.sid), mapping={"bytes_down": 20, "bytes_up": 2})
    second = samples(metrics)
    assert second[("hotspot_client_bytes_total", (("direction", "down"),))] == 4000 + 20
    assert second[("hotspot_client_bytes_total", (("direction", "up"),))] == 200 + 2

    # a session that ends is counted up to its final bytes, and the total never falls
    end_session(r, a.sid, "logout", time.time(), bytes_down=6000, bytes_up=400)
    third = samples(metrics)
    assert third[("hotspot_client_bytes_total", (("direction", "down"),))] == 5000 + 20
    assert third[("hotspot_clients_online", (("plan", "harian"),))] == 1


def test_series_from_the_daemon(redis_url):
    metrics = GatewayMetrics(lambda: connect(redis_url))
    metrics.observe_pass(0.004, drift={"nft": 2, "tc": 0})
    metrics.observe_pass(0.2, failed=True)
    metrics.set_shaping_drops("down", 10)  # the first value is the baseline
    metrics.set_shaping_drops("down", 25)
    metrics.set_shaping_drops("down", 5)  # a class went away: not a negative count
    metrics.set_shaping_drops("down", 7)
    metrics.config_reloads.labels("rejected").inc()
    got = samples(metrics)
    assert got[("hotspot_reconcile_duration_seconds_count", ())] == 2
    assert got[("hotspot_reconcile_errors_total", ())] == 1
    assert got[("hotspot_drift_corrections_total", (("kind", "nft"),))] == 2
    assert got[("hotspot_shaping_drops_total", (("direction", "down"),))] == 15 + 2
    assert got[("hotspot_config_reloads_total", (("result", "rejected"),))] == 1
    assert got[("hotspot_config_reloads_total", (("result", "ok"),))] == 0


def test_redis_down_is_a_series_not_an_error(tmp_path):
    metrics = GatewayMetrics(lambda: connect(f"unix://{tmp_path}/nothing.sock", timeout=0.5))
    got = samples(metrics)
    assert got[("hotspot_redis_up", ())] == 0
    assert ("hotspot_reconcile_errors_total", ()) in got


def test_served_over_http_on_loopback(redis_url):
    metrics = GatewayMetrics(lambda: connect(redis_url))
    host, port = metrics.serve("127.0.0.1:0")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            body = response.read().decode()
        assert "hotspot_redis_up 1.0" in body and "hotspot_clients_online" in body
        # a second server on the same port fails softly (the gateway runs on without metrics)
        assert GatewayMetrics(lambda: connect(redis_url)).serve(f"127.0.0.1:{port}") is None
    finally:
        metrics.close()


def test_the_shipped_dashboard_and_alerts_use_only_series_we_serve(r, redis_url):
    import json
    import re
    from pathlib import Path

    from prometheus_client import generate_latest

    docs = Path(__file__).resolve().parents[2] / "docs" / "monitoring"
    metrics = GatewayMetrics(lambda: connect(redis_url))
    r.hset(keys.COUNTERS, mapping={"logins_ok": 1, "free_logins": 1, "gateway_ack_timeouts": 1})
    metrics.observe_pass(0.01, drift={"nft": 1})
    metrics.set_shaping_drops("down", 1)
    metrics.set_config(served_config())
    served = set(re.findall(r"^(hotspot_\w+)", generate_latest(metrics.registry).decode(), re.M))
    exprs = []
    for name in ("grafana-dashboard.json", "grafana-fleet.json"):
        dashboard = json.loads((docs / name).read_text())
        exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs.append((docs / "hotspot-alerts.yml").read_text())
    used = {name for expr in exprs for name in re.findall(r"\b(hotspot_\w+)", expr)}
    assert used and used <= served | PENDING_SERIES, used - served - PENDING_SERIES


# Series the alerts and the fleet dashboard name that other work adds (docs/monitoring/hotspot-alerts.yml)
PENDING_SERIES = {"hotspot_radius_queue_length", "hotspot_dhcp_leases_free"}


def served_config():
    """The example config with a portal certificate, so every config-fed series is served."""
    import dataclasses
    import subprocess
    import tempfile
    from pathlib import Path

    from gateway import config as config_mod

    folder = Path(tempfile.mkdtemp(prefix="hs-cert-"))
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", folder / "key.pem",
         "-out", folder / "cert.pem", "-days", "30", "-subj", "/CN=portal.perpuseru.test"],
        check=True, capture_output=True,
    )  # fmt: skip
    config = config_mod.load(Path(__file__).resolve().parents[2] / "docs" / "hotspot.example.toml")
    portal = dataclasses.replace(config.portal, tls_cert=folder / "cert.pem")
    return dataclasses.replace(config, portal=portal)


def test_config_fed_series_uplink_certificate_and_write_errors(redis_url):
    metrics = GatewayMetrics(lambda: connect(redis_url))
    config = served_config()
    metrics.set_config(config)
    metrics.session_log_write_errors.inc()
    got = samples(metrics)
    assert got[("hotspot_uplink_rate_bits_per_second", (("direction", "down"),))] == config.uplink.down
    assert got[("hotspot_uplink_rate_bits_per_second", (("direction", "up"),))] == config.uplink.up
    expiry = got[("hotspot_certificate_expiry_timestamp_seconds", (("cert", "portal"),))]
    assert 29 * 86400 < expiry - time.time() <= 30 * 86400
    assert got[("hotspot_session_log_write_errors_total", ())] == 1
