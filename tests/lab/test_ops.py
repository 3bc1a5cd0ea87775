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

from gateway.daemon.sessionlog import SessionLog
from gateway.lab.probe import admit, fetch, online_from, wait_for
from gateway.model import commands, keys
from gateway.model.sessions import new_session, start_session
from gateway.model.store import connect

pytestmark = pytest.mark.lab


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


def test_kill_9_mid_session_loses_no_session_record(lab, gw):
    r = gw
    now = time.time()
    online, ack = admit(r, lab, 1)  # a real phone, online through the firewall
    assert ack and ack["ok"] and online_from(lab, 1)
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
    assert online_from(lab, 1), "the phone stays online while the gateway is down"
    # while the gateway is down, the admin kicks the phone and another session starts
    kicked = ctl(lab, "kick", lab.client_mac(1))
    assert kicked.returncode == 0, kicked.stderr
    later = start_session(r, a_session(2, now), time.time())
    lab.start("gateway")
    wait_for(lambda: not online_from(lab, 1), what="the kicked phone to be cut off")

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
from gateway.model.sessions import new_session, start_session, end_session
from gateway.model.store import connect
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


def test_redis_down_keeps_clients_online_then_reconciles(lab, gw):
    r = gw
    steady, ack = admit(r, lab, 1)
    assert ack and ack["ok"]
    short, ack = admit(r, lab, 3, minutes=0.1)  # 6 s: its time runs out while Redis is away
    assert ack and ack["ok"]
    assert online_from(lab, 1) and online_from(lab, 3) and not online_from(lab, 2)
    gateway_pid = lab.pid("gateway")
    lab.stop("redis")
    try:
        outage_end = time.monotonic() + 8  # four reconcile intervals of the lab
        while time.monotonic() < outage_end:
            assert online_from(lab, 1), "an authorized phone was cut off while Redis was down"
            assert not online_from(lab, 2), "an unauthorized phone got through while Redis was down"
            time.sleep(1)
        assert lab.pid("gateway") == gateway_pid and lab.is_running("gateway")
        assert "hotspot_redis_up 0.0" in metrics_text(lab)
        health = lab.exec(lab.spec.gw, "curl", "-s", "-m", "3", "http://10.42.0.1:8080/healthz").stdout
        assert json.loads(health)["redis"] == "down"
        status = ctl(lab, "status", "--json")
        assert status.returncode == 3
        assert json.loads(status.stdout)["redis"]["state"] == "down"
        assert json.loads(status.stdout)["portal"]["state"] == "ok"
        # a phone opening the portal gets the friendly page, in Bahasa Indonesia
        page = fetch(lab, lab.spec.client(2), "http://10.42.0.1:8080/")
        assert page.status == 503 and "Silakan coba lagi sebentar lagi" in page.body
    finally:
        lab.start("redis")
    # back: the gateway reconciles (the expired session ends and is cut off), logins work again
    wait_for(lambda: r.exists(keys.GATEWAY_HEARTBEAT), what="the gateway's heartbeat after Redis is back")
    wait_for(lambda: not online_from(lab, 3), what="the expired phone to be cut off")
    _, ack = admit(r, lab, 2)
    assert ack and ack["ok"] and online_from(lab, 2) and online_from(lab, 1)
    ends = wait_for(
        lambda: [rec for rec in on_disk(lab) if rec["sid"] == short.sid and rec["event"] == "end"],
        what="the expired session's end record on disk",
    )
    assert ends[0]["reason"] == "expired" and len(ends) == 1
    assert "hotspot_redis_up 1.0" in metrics_text(lab)
    assert steady.sid in {rec["sid"] for rec in on_disk(lab)}


def test_the_gateway_needs_only_cap_net_admin(lab, gw):
    """Run the gateway as hotspot-gateway.service does: a system user, CAP_NET_ADMIN, nothing else."""
    import os

    nobody = 65534
    log_dir = lab.dir / "unprivileged-log"
    log_dir.mkdir(exist_ok=True)
    os.chown(log_dir, nobody, nobody)
    config_path = lab.dir / "unprivileged.toml"
    config = lab.config()
    config_path.write_text(
        lab.config_path.read_text().replace(f'log_dir = "{config.paths.log_dir}"', f'log_dir = "{log_dir}"')
    )
    config_path.chmod(0o644)
    r = gw
    lab.stop("gateway")
    out = (lab.log_dir / "gateway-unprivileged.log").open("w")
    proc = subprocess.Popen(
        ["ip", "netns", "exec", lab.spec.gw, "setpriv", f"--reuid={nobody}", f"--regid={nobody}",
         "--clear-groups", "--inh-caps=-all,+net_admin", "--ambient-caps=-all,+net_admin",
         "--bounding-set=-all,+net_admin", "--", sys.executable, "-m", "gateway.daemon",
         "--config", str(config_path)],
        stdout=out, stderr=subprocess.STDOUT, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                                                  "PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    try:
        wait_for(lambda: r.exists(keys.GATEWAY_HEARTBEAT), what="the unprivileged gateway's heartbeat")
        status = Path(f"/proc/{proc.pid}/status").read_text()
        assert f"Uid:\t{nobody}" in status
        assert "CapEff:\t0000000000001000" in status  # CAP_NET_ADMIN (bit 12) and nothing else
        phone, ack = admit(r, lab, 1)
        assert ack and ack["ok"], ack
        assert online_from(lab, 1) and not online_from(lab, 2)
        lab.exec(lab.spec.gw, "nft", "flush", "table", "inet", "hotspot", check=True)
        # a flushed table lets nobody through (fail closed) until it heals: wait for both sides
        wait_for(lambda: not online_from(lab, 2) and online_from(lab, 1), what="the flushed table to heal")
        wait_for(lambda: list(log_dir.glob("sessions-*.jsonl")), what="the session log written as that user")
        assert "hotspot_redis_up 1.0" in metrics_text(lab)
    finally:
        proc.terminate()
        proc.wait(20)
        out.close()
        lab.start("gateway")
    log = (lab.log_dir / "gateway-unprivileged.log").read_text()
    assert "Traceback" not in log and '"level": "error"' not in log, log[-2000:]


PORTAL = "http://10.42.0.1:8080"


def portal_post(lab, ns: str, page_path: str, action: str, data: str) -> int:
    """Open ``page_path`` on the portal as phone ``ns``, then post ``data`` and its form token."""
    import re

    page = fetch(lab, ns, PORTAL + page_path)
    token = re.search(r'name="token" value="([^"]+)"', page.body).group(1)
    out = lab.exec(ns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5",
                   "-d", f"{data}&token={token}", PORTAL + action)  # fmt: skip
    return int(out.stdout.strip() or 0)


def series(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def test_a_portal_visit_shows_in_metrics_sessions_and_logs(lab, gw):
    from gateway.model.vouchers import issue_batch

    config = lab.config()
    r = gw
    [voucher] = issue_batch(r, config.plans["harian"], 1, now=time.time(), issued_by="test_ops")
    ns, mac = lab.spec.client(4), lab.client_mac(4)
    before = metrics_text(lab)
    assert portal_post(lab, ns, "/", "/login", "code=ZZZZ-ZZZZ") != 303  # a wrong code
    assert portal_post(lab, ns, "/", "/login", f"code={voucher.code}") == 303
    assert online_from(lab, 4)
    assert portal_post(lab, ns, "/status", "/logout", "x=1") == 303
    wait_for(lambda: not online_from(lab, 4), what="the phone to be behind the portal after logout")

    after = metrics_text(lab)
    for result, more in (("ok", 1), ("failed", 1)):
        name = f'hotspot_logins_total{{result="{result}"}}'
        assert series(after, name) == series(before, name) + more, name
    end = wait_for(
        lambda: [rec for rec in on_disk(lab) if rec["voucher_id"] == voucher.id and rec["event"] == "end"],
        what="the end record on disk",
    )[-1]
    assert (end["mac"], end["plan"], end["kind"], end["reason"], end["library"]) == (
        mac, "harian", "voucher", "logout", "lab",
    )  # fmt: skip
    rows = json.loads(ctl(lab, "sessions", "--since", "1h", "--mac", mac, "--json").stdout)
    assert rows[-1]["sid"] == end["sid"] and rows[-1]["reason"] == "logout" and rows[-1]["ended_at"]
    logs = ctl(lab, "logs", "-n", "50").stdout
    assert voucher.id in logs and voucher.code not in logs  # ids, never codes


def test_shaping_drops_are_read_from_the_kernel():
    """Two namespaces of our own, HTB with a 2-packet queue on one end, a burst of UDP across."""
    import os

    from gateway.shaping.dump import read_shaping_drops

    base = os.environ.get("HOTSPOT_TEST_PREFIX", "hs-t-")
    a, b = f"{base}qa", f"{base}qb"

    def sh(*argv, ns=None):
        cmd = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
        subprocess.run(cmd, check=True, capture_output=True, timeout=30)

    try:
        sh("ip", "netns", "add", a)
        sh("ip", "netns", "add", b)
        sh("ip", "link", "add", "q0", "type", "veth", "peer", "name", "q1", "netns", b, ns=a)
        sh("ip", "addr", "add", "10.77.0.1/24", "dev", "q0", ns=a)
        sh("ip", "addr", "add", "10.77.0.2/24", "dev", "q1", ns=b)
        sh("ip", "link", "set", "q0", "up", ns=a)
        sh("ip", "link", "set", "q1", "up", ns=b)
        sh("tc", "qdisc", "add", "dev", "q0", "root", "handle", "1:", "htb", "default", "1", ns=a)
        sh("tc", "class", "add", "dev", "q0", "parent", "1:", "classid", "1:1", "htb", "rate", "1mbit", ns=a)
        sh("tc", "qdisc", "add", "dev", "q0", "parent", "1:1", "pfifo", "limit", "2", ns=a)
        assert read_shaping_drops(a, "q0") == {"down": 0}
        sh(sys.executable, "-c", BLAST, ns=a)
        drops = read_shaping_drops(a, "q0")
        assert drops["down"] > 100, drops
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


BLAST = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(500):
    s.sendto(b"x" * 1200, ("10.77.0.2", 9))
"""
