"""The daemon's upkeep hooks: session log each pass, /metrics served, reloads, failures contained."""

from __future__ import annotations

import ipaddress
import time
import urllib.request

from structlog.testing import capture_logs

from gateway.daemon.upkeep import Upkeep
from gateway.model.sessions import end_session, new_session, start_session
from gateway.model.store import connect


def visit(r, i, now):
    s = new_session(
        mac=f"02:00:00:00:01:{i:02x}", ip=f"10.42.0.{100 + i}", kind="free", plan="harian",
        now=now, expires_at=now + 600, down=1_000_000, up=500_000,
    )  # fmt: skip
    return start_session(r, s, now)


def test_each_pass_copies_the_session_log_and_feeds_metrics(config, r):
    upkeep = Upkeep(config, connect(config))
    upkeep.start()
    try:
        now = time.time()
        s = visit(r, 1, now)
        assert upkeep.after_pass(now, duration=0.003, drift={"nft": 1}) == 1
        end_session(r, s.sid, "idle", now + 5)
        assert upkeep.after_pass(now, duration=0.002) == 1
        files = list(config.paths.log_dir.glob("sessions-*.jsonl"))
        assert len(files) == 1 and len(files[0].read_text().splitlines()) == 2
        host, port = upkeep.metrics.server.server_address[:2]
        body = urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5).read().decode()
        assert "hotspot_session_log_records_total 2.0" in body
        assert "hotspot_session_log_lag 0.0" in body
        assert 'hotspot_drift_corrections_total{kind="nft"} 1.0' in body
        assert "hotspot_reconcile_duration_seconds_count 2.0" in body
    finally:
        upkeep.stop()


def test_an_unwritable_log_is_logged_once_and_never_raised(config, r):
    config.paths.log_dir.parent.mkdir(parents=True, exist_ok=True)
    config.paths.log_dir.write_text("a file where the folder should be")
    upkeep = Upkeep(config, connect(config))
    now = time.time()
    visit(r, 1, now)
    with capture_logs() as logs:
        assert upkeep.after_pass(now) == 0
        assert upkeep.after_pass(now) == 0
    assert [e["event"] for e in logs].count("session_log_write_failed") == 1
    config.paths.log_dir.unlink()
    with capture_logs() as logs:
        assert upkeep.after_pass(now) == 1  # caught up once the disk is back
    assert "session_log_write_recovered" in [e["event"] for e in logs]


def test_reload_good_then_bad(config, config_path, r):
    upkeep = Upkeep(config, connect(config))
    config_path.write_text(
        config_path.read_text().replace("[paths]", "[session_log]\nretention_days = 30\n\n[paths]")
    )
    with capture_logs() as logs:
        result = upkeep.reload(config)
    assert result.ok and result.changed == ["session_log"]
    assert upkeep.writer.log.retention_days == 30
    assert logs[-1]["event"] == "config_reloaded"

    config_path.write_text(config_path.read_text().replace("retention_days = 30", "retention_days = -1"))
    with capture_logs() as logs:
        bad = upkeep.reload(result.config)
    assert not bad.ok and bad.config is result.config
    assert logs[-1]["event"] == "config_rejected"
    assert "session_log.retention_days: -1 is out of range" in logs[-1]["problems"][0]
    assert upkeep.metrics.config_reloads.labels("rejected")._value.get() == 1


def test_the_dhcp_pool_is_measured_and_a_low_pool_is_warned_once(config, r, tmp_path):
    from dataclasses import replace

    now = time.time()
    leases = tmp_path / "dnsmasq.leases"
    start = int(config.dhcp.range_start)
    size = config.dhcp.pool_size
    lines = [
        f"{int(now) + 600} 02:00:00:00:09:{i % 256:02x} {ipaddress.IPv4Address(start + i)} * *"
        for i in range(size - 1)
    ]
    lines.append(f"{int(now) - 5} 02:00:00:00:0a:01 {ipaddress.IPv4Address(start + size - 1)} * *")  # expired
    lines.append(f"{int(now) + 600} 02:00:00:00:0a:02 10.42.0.5 * *")  # outside the range
    leases.write_text("\n".join(lines) + "\n")
    upkeep = Upkeep(replace(config, dhcp=replace(config.dhcp, lease_file=leases)), connect(config))
    with capture_logs() as logs:
        assert upkeep.check_pool(now) == size - 1
        assert upkeep.check_pool(now + 1) == size - 1
    assert [e["event"] for e in logs] == ["dhcp_pool_low"], "warned once, not every pass"
    assert upkeep.metrics.dhcp_leases._value.get() == size - 1
    assert upkeep.metrics.dhcp_pool_size._value.get() == size
    leases.write_text("")
    with capture_logs() as logs:
        assert upkeep.check_pool(now + 2) == 0
    assert [e["event"] for e in logs] == ["dhcp_pool_recovered"]
