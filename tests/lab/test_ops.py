"""Running on a router, in the lab: the durable session log across kill -9, /metrics on the
admin side only, reload without dropping anyone, Redis going away and coming back."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway import commands, keys
from gateway.sessionlog import SessionLog
from gateway.sessions import end_session, new_session, start_session
from gateway.store import connect

pytestmark = pytest.mark.lab


def wait_for(check, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def on_disk(lab) -> list[dict]:
    return list(SessionLog.from_config(lab.config()).records())


def a_session(i: int, now: float, mac_base: int = 0x80):
    # MACs no lab phone uses: these sessions are records only, not kernel state
    return new_session(
        mac=f"02:00:00:00:{mac_base:02x}:{i % 256:02x}", ip=f"10.42.0.{(i % 50) + 200}", kind="admin",
        plan="harian", now=now, expires_at=now + 3600, down=1_000_000, up=500_000, voucher_id=f"L{i}",
    )  # fmt: skip


def metrics_text(lab) -> str:
    return lab.exec(lab.spec.gw, "curl", "-s", "-m", "3", "http://127.0.0.1:9110/metrics", check=True).stdout


def test_kill_9_mid_session_loses_no_session_record(lab):
    r = connect(lab.config())
    now = time.time()
    online = start_session(r, a_session(1, now), now)
    wait_for(lambda: any(rec["sid"] == online.sid for rec in on_disk(lab)), what="the start record on disk")

    # SIGKILL while a burst of sessions starts and ends, and while one session is online
    burst = subprocess.Popen(
        [sys.executable, "-c", BURST, lab.config().redis_url], stdout=subprocess.DEVNULL
    )  # fmt: skip
    try:
        time.sleep(0.3)
        lab.stop("gateway", signal.SIGKILL)
    finally:
        burst.wait(30)
    # while the gateway is down, the online session ends and another starts
    end_session(r, online.sid, "kicked", time.time())
    later = start_session(r, a_session(2, now), time.time())
    lab.start("gateway")

    stream_ids = [entry_id for entry_id, _ in r.xrange(keys.EVENTS)]
    wait_for(lambda: len(on_disk(lab)) >= len(stream_ids), what="the gateway to catch up")
    records = on_disk(lab)
    assert [rec["id"] for rec in records] == stream_ids  # every record, once, in order
    ends = {rec["sid"]: rec for rec in records if rec["event"] == "end"}
    assert ends[online.sid]["reason"] == "kicked" and ends[online.sid]["library"] == "lab"
    assert any(rec["sid"] == later.sid and rec["event"] == "start" for rec in records)
    log = (lab.log_dir / "gateway.log").read_text()
    assert "Traceback" not in log


BURST = """
import sys, time
from gateway.sessions import new_session, start_session, end_session
from gateway.store import connect
r = connect(sys.argv[1])
deadline = time.monotonic() + 1.0
i = 0
while time.monotonic() < deadline:
    now = time.time()
    s = new_session(mac=f"02:00:00:00:81:{i % 256:02x}", ip="10.42.0.250", kind="admin", plan="harian",
                    now=now, expires_at=now + 60, down=1000000, up=500000)
    start_session(r, s, now)
    end_session(r, s.sid, "logout", time.time())
    i += 1
"""


def test_metrics_on_the_admin_side_only(lab):
    text = metrics_text(lab)
    for series in (
        "hotspot_redis_up 1.0", "hotspot_clients_online", "hotspot_logins_total",
        "hotspot_client_bytes_total", "hotspot_reconcile_duration_seconds", "hotspot_session_log_lag",
        "hotspot_config_reloads_total", 'hotspot_gateway_info{library_id="lab"',
    ):  # fmt: skip
        assert series in text, series
    # a phone cannot reach it
    phone = lab.exec(lab.spec.client(1), "curl", "-s", "-m", "2", "-o", "/dev/null", "-w", "%{http_code}",
                     "http://10.42.0.1:9110/metrics")  # fmt: skip
    assert phone.stdout.strip() == "000"


def ctl(lab, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "hotspotctl"), "--config", str(lab.config_path), *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_reload_applies_a_good_file_and_refuses_a_bad_one(lab):
    original = lab.config_path.read_text()
    pid = lab.pid("gateway")
    r = connect(lab.config())
    try:
        lab.config_path.write_text(original.replace('duration = "2h"', 'duration = "90m"'))
        result = ctl(lab, "reload", "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        reply = json.loads(result.stdout)
        assert reply["gateway"]["ok"] and reply["gateway"]["changed"] == ["plans"]

        lab.config_path.write_text(original.replace('down = "4mbit"', 'down = "4 megs"'))
        result = ctl(lab, "reload")
        assert result.returncode == 2
        assert 'plans.harian.down: "4 megs" is not a rate' in result.stderr
        # the gateway refuses it as well when asked directly (e.g. SIGHUP after a bad edit)
        reply = commands.request(r, "reload", 5)
        assert reply["ok"] is False and "plans.harian.down" in reply["problems"][0]
        assert "config_rejected" in (lab.log_dir / "gateway.log").read_text()
        assert lab.pid("gateway") == pid and lab.is_running("gateway")
        assert 'hotspot_config_reloads_total{result="rejected"} 1.0' in metrics_text(lab)
    finally:
        lab.config_path.write_text(original)
        commands.request(r, "reload", 5)


def test_redis_down_then_back(lab):
    r = connect(lab.config())
    gateway_pid = lab.pid("gateway")
    lab.stop("redis")
    try:
        time.sleep(3)
        assert lab.pid("gateway") == gateway_pid and lab.is_running("gateway")
        assert "hotspot_redis_up 0.0" in metrics_text(lab)
        health = lab.exec(lab.spec.gw, "curl", "-s", "-m", "3", "http://10.42.0.1:8080/healthz").stdout
        assert json.loads(health)["redis"] == "down"
    finally:
        lab.start("redis")
    wait_for(lambda: r.exists(keys.GATEWAY_HEARTBEAT), what="the gateway's heartbeat after Redis is back")
    now = time.time()
    s = start_session(r, a_session(3, now, mac_base=0x82), now)
    wait_for(lambda: any(rec["sid"] == s.sid for rec in on_disk(lab)), what="a new record on disk")
    assert "hotspot_redis_up 1.0" in metrics_text(lab)
