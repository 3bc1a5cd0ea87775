"""Shaping in the lab: real gateway, real kernel, iperf3 between the phones and the upstream.

Uplink 10mbit/10mbit with headroom 0.95 (the lab config). Measurements are TCP goodput
seen by the receiver over 6 s after 2 s of slow start; clients that compete run at the
same time, each against its own iperf3 server port. Tolerances are the issue's: +-10 %
for one client against its plan, Jain >= 0.95 for four.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gateway.lab.lab import LabError
from gateway.lab.measure import Flow, download_intervals, iperf_many, jain
from gateway.lab.probe import admit, online_from, wait_for
from gateway.lab.topology import UPSTREAM_IP, UPSTREAM_WALLED_IP
from gateway.model import commands, keys
from gateway.model.sessions import get_session
from gateway.model.vouchers import issue_batch, redeem
from gateway.shaping import rates
from gateway.shaping.apply import read_counters
from gateway.shaping.model import client_class

pytestmark = [pytest.mark.lab, pytest.mark.slow]

MBIT = 1_000_000
SECONDS, OMIT = 6, 2


def _online(gw, lab, index, down, up, **kw):
    session, ack = admit(gw, lab, index, down=down, up=up, **kw)
    assert ack and ack["ok"] and not ack["warnings"], ack
    session = get_session(gw, session.sid)
    assert session.slot, "the shaper gave it a slot in the authorize fast path"
    return session


def _flow(lab, index, port, download=True):
    return Flow(lab.spec.client(index), port, download)


def _within(value, target, tolerance=0.10):
    return abs(value - target) <= tolerance * target


def test_one_client_gets_its_plan_both_ways(lab, gw):
    _online(gw, lab, 1, down=2 * MBIT, up=1 * MBIT)
    [down] = iperf_many([_flow(lab, 1, 5201)], SECONDS, OMIT)
    [up] = iperf_many([_flow(lab, 1, 5202, download=False)], SECONDS, OMIT)
    assert _within(down, 2 * MBIT), down
    assert _within(up, 1 * MBIT), up


def test_four_share_the_line_and_the_last_one_borrows_what_the_others_leave(lab, gw):
    sessions = [_online(gw, lab, i, down=10 * MBIT, up=10 * MBIT) for i in (1, 2, 3)]
    last = _online(gw, lab, 4, down=6 * MBIT, up=3 * MBIT)
    got = iperf_many([_flow(lab, i, 5200 + i) for i in (1, 2, 3, 4)], SECONDS, OMIT)
    assert jain(got) >= 0.95, got
    line = 10 * MBIT * 0.95 * 1448 / 1514  # the shaped uplink, as TCP goodput
    assert sum(got) >= 0.85 * line, got
    assert all(_within(g, sum(got) / 4, 0.15) for g in got), got
    # the three stop: the fourth rises to its own cap (once the upstream's send buffers for
    # the three, which outlast their tests by seconds, have drained through their classes)
    _wait_quiet(lab.config(), [s.slot for s in sessions])
    [alone] = iperf_many([_flow(lab, 4, 5205)], SECONDS, OMIT)
    assert _within(alone, 6 * MBIT), alone
    assert alone > 2 * max(got)
    assert {s.slot for s in sessions} | {last.slot} == {1, 2, 3, 4}


def _class_rate(config, slot, seconds):
    """Return the download rate (frame bits/s) the kernel sent to ``slot`` over ``seconds``."""
    first, started = read_counters(config)[slot][0], time.monotonic()
    time.sleep(seconds)
    return (read_counters(config)[slot][0] - first) * 8 / (time.monotonic() - started)


def _wait_quiet(config, slots, timeout=15.0):
    """Wait until the clients in ``slots`` receive nothing any more."""

    def sent():
        counters = read_counters(config)
        return [counters[slot][0] for slot in slots]

    last = sent()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = sent()
        if now == last:
            return
        last = now
    raise AssertionError(f"slots {slots} still busy after {timeout:.0f}s")


def test_a_live_throttle_takes_effect_within_seconds_and_survives_a_restart(lab, gw):
    config = lab.config()
    session = _online(gw, lab, 1, down=4 * MBIT, up=2 * MBIT)
    hotspotctl = [str(Path(sys.executable).parent / "hotspotctl"), "--config", str(lab.config_path)]
    flow = threading.Thread(target=download_intervals, args=(_flow(lab, 1, 5206), 14))
    flow.start()
    try:
        wait_for(lambda: read_counters(config)[session.slot][0] > 200_000, timeout=10)  # iperf3 runs
        # rates as the class sends them: frames, so caps x 1514/1448
        assert _within(_class_rate(config, session.slot, 2), 4.18 * MBIT, 0.15)
        limited = subprocess.run([*hotspotctl, "limit", session.mac, "1mbit/512kbit"], capture_output=True,
                                 text=True, timeout=30)  # fmt: skip
        assert limited.returncode == 0, limited.stderr
        time.sleep(1.5)  # what was queued at the old rate drains
        assert _within(_class_rate(config, session.slot, 3), 1.045 * MBIT, 0.15)
    finally:
        flow.join(30)

    # in Redis, so a restarted gateway keeps it
    lab.restart("gateway", signal.SIGKILL)
    wait_for(lambda: commands.request(gw, "ping", 1), timeout=10)
    commands.request(gw, "reconcile", 10)
    state = get_session(gw, session.sid)
    assert (state.down, state.up) == (1 * MBIT, 512_000)
    [down] = iperf_many([_flow(lab, 1, 5207)], 4, OMIT)
    assert _within(down, 1 * MBIT), down
    reset = subprocess.run([*hotspotctl, "limit", session.mac, "--reset"], capture_output=True, text=True,
                           timeout=30)  # fmt: skip
    assert reset.returncode == 0, reset.stderr
    assert get_session(gw, session.sid).down == 4 * MBIT


def test_quota_ends_the_session_and_its_classes(lab, gw):
    session = _online(gw, lab, 2, down=4 * MBIT, up=2 * MBIT, quota=1_500_000)
    classes = read_counters(lab.config())
    assert session.slot in classes
    # ~4 Mbit/s for up to 8 s is far more than 1.5 MB: the gateway cuts it on the way. Port
    # 5210 is used by no other test: its server hangs on the connection cut mid-test (as
    # does 5209, which test_gateway_access cuts the same way)
    _cut_download(lab, _flow(lab, 2, 5210))
    ended = _ended(gw, session.sid)
    assert ended.end_reason == "quota"
    assert ended.bytes_down + ended.bytes_up >= 1_500_000
    assert not online_from(lab, 2)
    assert session.slot not in (read_counters(lab.config()) or {})


def test_restart_and_a_hand_deleted_qdisc_converge_without_dropping_anyone(lab, gw):
    for i in (1, 2, 3):
        _online(gw, lab, i, down=4 * MBIT, up=2 * MBIT)
    config = lab.config()
    before = read_counters(config)
    assert set(before) == {1, 2, 3}
    lab.restart("gateway", signal.SIGKILL)
    wait_for(lambda: commands.request(gw, "ping", 1), timeout=10)
    reply = commands.request(gw, "reconcile", 10)
    counts = reply["counts"]["tc"] if "counts" in reply else reply["summary"]["counts"]["tc"]
    assert counts["added"] == counts["removed"] == 0, counts
    assert set(read_counters(config)) == {1, 2, 3}

    lab.exec(lab.spec.gw, "tc", "qdisc", "del", "dev", "lan0", "root", check=True)
    assert all(online_from(lab, i) for i in (1, 2, 3)), "unshaped, still online"
    commands.request(gw, "reconcile", 10)
    assert set(read_counters(config)) == {1, 2, 3}
    shown = lab.exec(lab.spec.gw, "tc", "class", "show", "dev", "lan0").stdout
    assert f"class htb 1:{client_class(3) & 0xFFFF:x} parent 1:1" in shown


def test_unauthorized_walled_garden_traffic_stays_in_its_small_class(lab, gw):
    ns = lab.spec.client(5)
    lab.exec(ns, "getent", "ahostsv4", "perpuseru.id", check=True)  # dnsmasq opens its address
    [got] = iperf_many([Flow(ns, 5203, True)], 4, OMIT, server=UPSTREAM_WALLED_IP)
    assert got <= 10 * MBIT * 0.95 * 0.10 * 1.1, got  # capped at 10 % of the shaped line


def test_top_and_clients_show_live_rates(lab, gw):
    session = _online(gw, lab, 3, down=4 * MBIT, up=2 * MBIT)
    hotspotctl = [str(Path(sys.executable).parent / "hotspotctl"), "--config", str(lab.config_path)]
    iperf = ["iperf3", "-c", UPSTREAM_IP, "-p", "5204", "-R", "-t", "6"]
    flow = subprocess.Popen(
        ["ip", "netns", "exec", lab.spec.client(3), *iperf],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(2.5)
        top = subprocess.run(
            [*hotspotctl, "top", "--json", "--interval", "1"], capture_output=True, text=True, timeout=30
        )
        assert top.returncode == 0, top.stderr
        [row] = json.loads(top.stdout)
        # a one-second sample of a TCP flow is lumpy: this checks the rate is live, not its accuracy
        assert row["mac"] == session.mac and 2 * MBIT < row["rate_down"] < 5 * MBIT, row
        time.sleep(2.5)  # a pass has stored the rate
        stored = rates.read_rates(gw, [session.sid])[session.sid]
        assert stored[0] > 2 * MBIT
        clients = subprocess.run([*hotspotctl, "clients"], capture_output=True, text=True, timeout=30,
                                 env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})  # fmt: skip
        assert "Mbit/s" in clients.stdout, clients.stdout
    finally:
        flow.kill()
        flow.wait()


def test_a_voucher_quota_is_shared_by_the_devices_online_with_it(lab, gw):
    """Two phones on one voucher (plan "rombongan": 2 devices, a data quota) with 3 MB left:
    each session may use 3 MB, but together they may not. The gateway ends both, reason quota."""
    config = lab.config()
    now = time.time()
    [voucher] = issue_batch(gw, config.plans["rombongan"], 1, now=now, issued_by="test")
    gw.hset(keys.voucher(voucher.code), "bytes_used", config.plans["rombongan"].quota - 3_000_000)
    sessions = []
    for index in (3, 4):
        ip = lab.client_ip(lab.spec.client(index))
        session = redeem(gw, voucher.code, mac=lab.client_mac(index), ip=ip, plans=config.plans, now=now)
        assert session.quota == 3_000_000, "each session alone may use what is left"
        ack = commands.request(gw, "authorize", 5, sid=session.sid)
        assert ack and ack["ok"], ack
        sessions.append(session)
    # ~2 Mbit/s each for up to 8 s: ~2 MB each, under each session's own 3 MB, over 3 MB together.
    # Ports 5211 and 5212 serve no other test (a server hangs on a connection cut mid-test).
    flows = [_flow(lab, i, 5208 + i) for i in (3, 4)]
    threads = [threading.Thread(target=_cut_download, args=(lab, flow)) for flow in flows]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ended = [_ended(gw, s.sid) for s in sessions]
    assert [e.end_reason for e in ended] == ["quota", "quota"]
    assert all(e.bytes_up + e.bytes_down < 3_000_000 for e in ended), "neither used its own quota"
    assert sum(e.bytes_up + e.bytes_down for e in ended) >= 3_000_000
    assert not online_from(lab, 3) and not online_from(lab, 4)


def _ended(gw, sid):
    return wait_for(lambda: get_session(gw, sid).state == "ended" and get_session(gw, sid), timeout=10)


def _cut_download(lab, flow):
    try:
        lab.exec(flow.ns, "iperf3", "-c", UPSTREAM_IP, "-p", str(flow.port), "-R", "-t", "8", timeout=12)
    except LabError:
        pass  # cut on the way, iperf3 waits for the results it will never get
