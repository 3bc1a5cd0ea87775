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

from gateway.lab.probe import online_from
from gateway.lab.topology import LAN_ROUTER, UPSTREAM_IP
from gateway.model.vouchers import issue_batch

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
        assert token, "the victim gets the splash during the attack"
        status, location, _ = _curl(lab, victim, "--data", f"code={voucher.code}&token={token.group(1)}",
                                    f"{PORTAL}/login")  # fmt: skip
        logged_in = status == 303 and "/online" in location
        assert attack.poll() is None, "the attack still runs while the victim is served"
    finally:
        out, _ = attack.communicate(timeout=60)
        attacker_stats = json.loads(out.strip().splitlines()[-1]) if out.strip() else None
    assert got == {"probe": 6, "splash": 6}, f"served during the attack: {got} of 6 each"
    assert logged_in, f"the victim's login answered {status} {location}"
    assert online_from(lab, 2)
    assert attacker_stats is not None
    assert attacker_stats["max_open"] <= 16, (
        f"nftables caps one device's portal connections: {attacker_stats}"
    )
    assert attacker_stats["refused"] > 0, attacker_stats
