"""Nothing lost on restart: SIGTERM, kill -9, Redis restart, a hand-flushed table, a reboot.

Each test ends with exactly the sessions of Redis enforced: the online phones reach the
upstream, the others reach only the portal, and ``doctor`` finds no difference.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from gateway.lab.probe import admit, online_from, wait_for
from gateway.lab.topology import UPSTREAM_IP
from gateway.model import commands
from gateway.model.sessions import end_session, new_session, start_session

pytestmark = pytest.mark.lab


def nft(lab, *argv):
    return lab.exec(lab.spec.gw, "nft", *argv, check=True)


def assert_enforced(lab, online, offline):
    for i in online:
        assert online_from(lab, i), f"phone {i} should be online"
    for i in offline:
        assert not online_from(lab, i), f"phone {i} should be behind the portal"


def converged(lab, r, online, offline, timeout=10.0):
    """Wait until doctor finds nothing to fix, then check from the phones themselves."""
    wait_for(lambda: (commands.request(r, "doctor", 3) or {}).get("report", {}).get("ok"), timeout=timeout,
             what="doctor to find no difference")  # fmt: skip
    assert_enforced(lab, online, offline)


def test_sigterm_leaves_enforcement_in_place(lab, gw):
    _, ack = admit(gw, lab, 1)
    assert ack["ok"]
    lab.stop("gateway", signal.SIGTERM)
    assert nft(lab, "list", "set", "inet", "hotspot", "auth4").stdout.count(lab.client_mac(1)) == 1
    assert_enforced(lab, online=[1], offline=[2])  # while it is down
    lab.start("gateway")
    converged(lab, gw, online=[1], offline=[2])


def test_kill_9_then_changes_while_down_then_commands_answered(lab, gw):
    s1, _ = admit(gw, lab, 1)
    s2, _ = admit(gw, lab, 2)
    lab.stop("gateway", signal.SIGKILL)
    assert_enforced(lab, online=[1, 2], offline=[3])
    # while it is down: phone 2 is kicked in Redis, phone 3 logs in and waits for its ack
    end_session(gw, s2.sid, "kicked", time.time())
    now = time.time()
    s3 = new_session(mac=lab.client_mac(3), ip=lab.client_ip(lab.spec.client(3)), kind="admin", plan="",
                     now=now, expires_at=now + 600, down=1, up=1)  # fmt: skip
    start_session(gw, s3, now)
    request_id = commands.send(gw, "authorize", sid=s3.sid)
    lab.start("gateway")
    reply = commands.wait_reply(gw, request_id, 10)
    assert reply and reply["ok"] and reply["sid"] == s3.sid, "answered after the restart"
    converged(lab, gw, online=[1, 3], offline=[2, 4])


def test_redis_restart_loses_nobody(lab, gw):
    admit(gw, lab, 1)
    lab.restart("redis")
    assert_enforced(lab, online=[1], offline=[2])
    _, ack = wait_for(lambda: (res := admit(gw, lab, 2, timeout=2))[1] and res, timeout=15,
                      what="a login to be acknowledged after Redis came back")  # fmt: skip
    assert ack["ok"]
    converged(lab, gw, online=[1, 2], offline=[3])
    log = (lab.log_dir / "gateway.log").read_text()
    assert "redis_unavailable" in log and "Traceback" not in log


@pytest.mark.parametrize("damage", ["flush table", "delete table", "delete element"])
def test_hand_edits_heal(lab, gw, damage):
    s1, _ = admit(gw, lab, 1)
    if damage == "delete element":
        nft(lab, "delete", "element", "inet", "hotspot", "auth4", f"{{ {s1.mac} . {s1.ip} }}")
    else:
        nft(lab, *damage.split(), "inet", "hotspot")
    converged(lab, gw, online=[1], offline=[2])


def test_reboot_converges(lab, gw):
    admit(gw, lab, 1)
    admit(gw, lab, 2)
    lab.stop("gateway", signal.SIGKILL)
    nft(lab, "delete", "table", "inet", "hotspot")  # what a reboot leaves: no table at all
    lab.start("gateway")
    converged(lab, gw, online=[1, 2], offline=[3])


def test_restart_with_a_changed_ruleset_drops_no_packet(lab, gw):
    admit(gw, lab, 1)
    # an "old version" of the ruleset: one more rule than this version has
    nft(lab, "add", "rule", "inet", "hotspot", "from_lan", "meta", "nfproto", "ipv4", "counter")
    counts = _arrivals(lab, (1, 2), 160, lambda: lab.restart("gateway"))  # SIGTERM, start: replaced at once
    # the source is masqueraded on the way out, so each datagram says who sent it
    assert counts == {"phone1": 160}, f"phone 1 loses nothing, phone 2 gets nothing through: {counts}"
    assert nft(lab, "list", "chain", "inet", "hotspot", "from_lan").stdout.count("counter") == 0, "replaced"
    converged(lab, gw, online=[1], offline=[2])


def test_a_flushed_table_lets_nobody_in_while_it_heals(lab, gw):
    admit(gw, lab, 1)
    counts = _arrivals(lab, (1, 2), 160, lambda: nft(lab, "flush", "table", "inet", "hotspot"))
    # the forward chain keeps its drop policy when its rules are flushed: fail closed
    assert "phone2" not in counts, f"phone 2 got through the flushed table: {counts}"
    assert counts.get("phone1", 0) >= 100, f"phone 1 is back once the table healed: {counts}"
    converged(lab, gw, online=[1], offline=[2])


def _arrivals(lab, phones, count, action):
    """Phones send ``count`` UDP datagrams each, 25 ms apart, to the upstream; ``action()`` runs
    0.8 s in. Return how many of each phone's arrived (its source is masqueraded on the way
    out, so each datagram says who sent it)."""
    listener = subprocess.Popen(
        ["ip", "netns", "exec", lab.spec.up, sys.executable, "-c", COUNT_BY_SENDER, "9995", "5"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    senders = []
    try:
        listener.stdout.readline()
        for i in phones:
            senders.append(subprocess.Popen(
                ["ip", "netns", "exec", lab.spec.client(i), sys.executable, "-c", SEND_STEADILY, UPSTREAM_IP,
                 "9995", str(count), f"phone{i}"], stdout=subprocess.DEVNULL,
            ))  # fmt: skip
        time.sleep(0.8)
        action()
        for sender in senders:
            sender.wait(20)
        return json.loads(listener.communicate(timeout=20)[0])
    finally:
        for proc in (listener, *senders):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


COUNT_BY_SENDER = """
import json, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", int(sys.argv[1])))
s.settimeout(float(sys.argv[2])); counts = {}
print("ready", flush=True)
try:
    while True:
        data, _ = s.recvfrom(2048); counts[data.decode()] = counts.get(data.decode(), 0) + 1
except TimeoutError:
    pass
print(json.dumps(counts))
"""

SEND_STEADILY = """
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[3])):
    try:
        s.sendto(sys.argv[4].encode(), (sys.argv[1], int(sys.argv[2])))
    except OSError:
        pass
    time.sleep(0.025)
"""
