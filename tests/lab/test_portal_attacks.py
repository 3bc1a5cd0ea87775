"""Attacks on the portal from a visitor's phone (issue 16, items 2 and 8), performed in the lab.

- slow clients: one phone holds 64 slow connections (headers trickled, never finished)
  while another phone fetches its probe redirect, the splash, and logs in;
- voucher guessing: a success does not reset the counter, parallel guesses are bounded,
  and fresh MAC+IP pairs do not get a fresh budget (the library-wide bound).

Each test counts what got through; none asserts a timing.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from gateway.lab.fakes import add_fakes, remove_fakes
from gateway.lab.probe import online_from
from gateway.lab.topology import LAN_ROUTER, UPSTREAM_IP
from gateway.model import keys
from gateway.model.vouchers import issue_batch
from gateway.names import ifb_name

pytestmark = pytest.mark.lab

BENCH = Path(__file__).resolve().parents[2] / "bench"
PORTAL = f"http://{LAN_ROUTER}:8080"


def _curl(lab, ns: str, *args: str) -> tuple[int, str, str]:
    """Return (status, Location header, body) of one curl from ``ns`` (status 0 when it failed)."""
    result = lab.exec(ns, "curl", "-s", "-m", "5", "-D", "-", *args, timeout=15)
    head, _, body = result.stdout.replace("\r\n", "\n").partition("\n\n")
    lines = head.splitlines()
    if result.returncode != 0 or not lines:
        return 0, "", ""
    location = next((line.split(": ", 1)[1] for line in lines if line.lower().startswith("location: ")), "")
    return int(lines[0].split()[1]), location, body


def _attack(lab, ns: str, *, connections: int, duration: float) -> subprocess.Popen:
    argv = [lab.python, str(BENCH / "_slowloris.py"), "--host", UPSTREAM_IP, "--port", "80",
            "--connections", str(connections), "--duration", str(duration)]  # fmt: skip
    return subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=subprocess.PIPE, text=True)


def test_one_phone_with_64_slow_connections_does_not_take_the_portal_down(lab, gw):
    attacker, victim = lab.spec.client(1), lab.spec.client(2)
    config = lab.config()
    voucher = issue_batch(gw, config.plans["harian"], 1, now=time.time(), issued_by="test")[0]
    attack = _attack(lab, attacker, connections=64, duration=20)
    try:
        time.sleep(3)  # the attacker holds its connections before the victim arrives
        got = {"probe": 0, "splash": 0}
        for _ in range(6):
            status, location, _ = _curl(
                lab, victim, "-H", "Host: connectivitycheck.gstatic.com", f"http://{UPSTREAM_IP}/generate_204"
            )
            got["probe"] += status == 302 and location.startswith(PORTAL)
            status, _, page = _curl(lab, victim, f"{PORTAL}/")
            got["splash"] += status == 200 and 'name="token"' in page
            time.sleep(0.5)
        status, _, page = _curl(lab, victim, f"{PORTAL}/")
        token = re.search(r'name="token" value="([^"]+)"', page)
        status, location = 0, ""
        if token:  # else the splash did not come: no login either
            status, location, _ = _curl(lab, victim, "--data", f"code={voucher.code}&token={token.group(1)}",
                                        f"{PORTAL}/login")  # fmt: skip
        logged_in = status == 303 and "/online" in location
        attack_ran_throughout = attack.poll() is None
    finally:
        out, _ = attack.communicate(timeout=60)
        attacker_stats = json.loads(out.strip().splitlines()[-1]) if out.strip() else None
    print(f"served during the attack: {got} of 6 each, login {status}, attacker {attacker_stats}")
    assert got == {"probe": 6, "splash": 6}, f"served during the attack: {got} of 6 each"
    assert logged_in, f"the victim's login answered {status} {location}"
    assert online_from(lab, 2)
    assert attacker_stats is not None and attack_ran_throughout, "the victim was served while the attack ran"
    assert attacker_stats["max_open"] <= 16, (
        f"nftables caps one device's portal connections: {attacker_stats}"
    )
    assert attacker_stats["refused"] > 0, attacker_stats
    assert attacker_stats["closed_by_server"] > 0, (
        f"the header timeout closes slow connections: {attacker_stats}"
    )


_TC_SENT = re.compile(r"Sent (\d+) bytes (\d+) pkt")


def _class_packets(lab, device: str, classid: str) -> int:
    """Return the packets class ``classid`` on ``device`` has sent (0 when there is no such class)."""
    out = lab.exec(lab.spec.gw, "tc", "-s", "class", "show", "dev", device, "classid", classid).stdout
    found = _TC_SENT.search(out)
    return int(found.group(2)) if found else 0


def test_portal_answers_are_not_shaped_in_the_not_logged_in_class(lab, gw):
    # issue 16: the DNAT-ed 302s went through class 1:2 (ceil 10 % of the line) and were dropped
    ns, ifb = lab.spec.client(4), ifb_name("lan0")
    before = {
        "down_unauth": _class_packets(lab, "lan0", "1:2"),
        "up_unauth": _class_packets(lab, ifb, "1:2"),
        "up_web": _class_packets(lab, ifb, "1:e"),
    }
    redirects = 0
    for _ in range(20):
        status, location, _ = _curl(
            lab, ns, "-H", "Host: connectivitycheck.gstatic.com", f"http://{UPSTREAM_IP}/generate_204"
        )
        redirects += status == 302 and location.startswith(PORTAL)
    after = {
        "down_unauth": _class_packets(lab, "lan0", "1:2"),
        "up_unauth": _class_packets(lab, ifb, "1:2"),
        "up_web": _class_packets(lab, ifb, "1:e"),
    }
    moved = {k: after[k] - before[k] for k in before}
    assert redirects == 20
    # the phone's own ARP/DNS may add a packet or two to 1:2; 20 redirects are ~200 packets
    assert moved["down_unauth"] <= 5 and moved["up_unauth"] <= 5, moved
    assert moved["up_web"] >= 20 * 4, moved


# Runs inside a phone namespace: wrong voucher codes sent as the splash form does.
# argv: portal-ip rounds parallel [source-ip ...]: with source addresses (made-up devices,
# gateway/lab/fakes.py), ``rounds`` x ``parallel`` guesses are sent from each in turn.
GUESSER = r"""
import http.client, json, re, sys
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode
portal, rounds, parallel, sources = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]

def req(method, path, body="", source=""):
    bind = (source, 0) if source else None
    conn = http.client.HTTPConnection(portal, 8080, timeout=10, source_address=bind)
    try:
        headers = {"Connection": "close"}
        if body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body or None, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode()
    except OSError:
        return 0, ""
    finally:
        conn.close()

def guesses(n, source=""):
    page = req("GET", "/", source=source)[1] + req("GET", "/status", source=source)[1]
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    body = urlencode({"code": "ZZZZ-ZZZZ", "token": token})
    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(lambda _: req("POST", "/login", body, source)[0], range(n)))

statuses = []
for source in sources or [""]:
    statuses += guesses(rounds * parallel, source)
print(json.dumps(statuses))
"""


def _guess(lab, ns: str, rounds: int, parallel: int, *sources: str) -> list[int]:
    out = lab.exec(ns, lab.python, "-c", GUESSER, LAN_ROUTER, str(rounds), str(parallel), *sources,
                   timeout=180, check=True).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def no_limits(gw):
    """Rate-limit state of the lab cleared before and after the test."""
    for key in gw.scan_iter("hs:rl:*"):
        gw.delete(key)
    yield gw
    for key in gw.scan_iter("hs:rl:*"):
        gw.delete(key)


def _evaluated(r) -> int:
    """Wrong codes the portal has looked up so far (its ``logins_failed`` counter)."""
    return int(r.hget(keys.COUNTERS, "logins_failed") or 0)


def test_parallel_wrong_codes_get_only_the_budget_evaluated(lab, no_limits):
    before = _evaluated(no_limits)
    statuses = _guess(lab, lab.spec.client(3), 4, 16)  # 64 guesses, 16 at a time
    evaluated = _evaluated(no_limits) - before
    assert evaluated <= lab.config().portal.max_failures, f"{evaluated} of 64 parallel guesses evaluated"
    assert statuses.count(429) >= 64 - 5 - statuses.count(0)


def test_a_valid_code_between_guesses_does_not_reset_the_budget(lab, no_limits):
    ns, config = lab.spec.client(3), lab.config()
    voucher = issue_batch(no_limits, config.plans["harian"], 1, now=time.time(), issued_by="test")[0]
    before = _evaluated(no_limits)
    for _ in range(8):
        _guess(lab, ns, 1, 1)
        page = _curl(lab, ns, f"{PORTAL}/")[2] + _curl(lab, ns, f"{PORTAL}/status")[2]
        token = re.search(r'name="token" value="([^"]+)"', page).group(1)
        _curl(lab, ns, "--data", f"code={voucher.code}&token={token}", f"{PORTAL}/login")
    evaluated = _evaluated(no_limits) - before
    assert evaluated == config.portal.max_failures, f"{evaluated} of 8 wrong codes evaluated"


def test_fresh_macs_and_addresses_share_the_library_wide_bound(lab, no_limits):
    ns = lab.spec.client(lab.spec.clients)
    # 12 made-up devices (MAC and address of their own), 5 guesses each: 60 guesses
    fakes = add_fakes(lab, ns, 12, first_ip=200, prefix="gs", mac_byte=0x7E)
    started, before = time.time(), _evaluated(no_limits)
    try:
        statuses = _guess(lab, ns, 5, 1, *(fake.ip for fake in fakes))
    finally:
        remove_fakes(lab, ns, fakes)
    minutes = int(time.time() // 60) - int(started // 60) + 1
    bound = lab.config().portal.max_failures_per_minute * minutes
    evaluated = _evaluated(no_limits) - before
    assert len(statuses) == 60
    assert evaluated <= bound, (
        f"{evaluated} of 60 guesses from 12 fresh MAC+IP pairs evaluated (bound {bound})"
    )
    assert evaluated < 60 - 12, "without the library-wide bound all 60 would be evaluated"
