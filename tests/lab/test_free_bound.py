"""Free time multiplied by MAC rotation (issue 16, item 5), performed in the lab.

One phone makes up 8 MAC addresses (macvlan interfaces, each with its own address and
routing), starts a free session from each through the portal's own "free" button, and
downloads on all 8 at once with iperf3, while a paying phone downloads too. All free
sessions share one class, so the 8 together get no more than the free cap
(``portal.free_share`` of the uplink), where before each got the free plan's own cap
(8 x 1 Mbit/s in the lab), and the paying phone keeps its plan's rate.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from gateway.lab.fakes import Fake, add_fakes, remove_fakes
from gateway.lab.probe import admit
from gateway.lab.topology import IPERF_PORTS, LAN_ROUTER, UPSTREAM_IP
from gateway.model.sessions import online_sessions
from gateway.shaping.plan import FRAME_OVERHEAD

pytestmark = pytest.mark.lab

PORTAL = f"http://{LAN_ROUTER}:8080"
FAKES = 8
SECONDS = 8


@pytest.fixture
def fake_macs(lab, gw):
    """Phone 5 with 8 made-up MAC addresses; the free counters cleared around the test."""
    ns = lab.spec.client(5)

    def clear() -> None:
        for key in gw.scan_iter("hs:free:*"):
            gw.delete(key)

    clear()
    fakes = add_fakes(lab, ns, FAKES, first_ip=230, prefix="fr")
    yield ns, fakes
    remove_fakes(lab, ns, fakes)
    clear()


def _free_login(lab, ns: str, fake: Fake) -> int:
    page = lab.exec(ns, "curl", "-s", "-m", "5", "--interface", fake.name, f"{PORTAL}/", timeout=15).stdout
    token = page.split('name="token" value="', 1)[1].split('"', 1)[0]
    out = lab.exec(ns, "curl", "-s", "-m", "8", "-o", "/dev/null", "-w", "%{http_code}",
                   "--interface", fake.name, "--data", f"token={token}", f"{PORTAL}/free",
                   timeout=15).stdout  # fmt: skip
    return int(out or 0)


def test_eight_made_up_macs_share_the_free_cap(lab, gw, fake_macs):
    (ns, fakes), config = fake_macs, lab.config()
    statuses = [_free_login(lab, ns, fake) for fake in fakes]
    assert statuses == [303] * FAKES, "each made-up MAC gets a free session (per-MAC limits alone)"
    free = [s for s in online_sessions(gw) if s.kind == "free"]
    assert len(free) == FAKES
    # a paying phone downloads at the same time (its plan: 4 Mbit/s)
    # phone 4: the lab's last phone is the desk PC, left to the desk tests
    paying_ns = lab.spec.client(4)
    _session, ack = admit(gw, lab, 4, down=4_000_000)
    assert ack and ack["ok"]
    argv = ["iperf3", "-c", UPSTREAM_IP, "-t", str(SECONDS), "-R", "-J", "--connect-timeout", "3000"]
    flows = [(ns, fake.ip, port) for fake, port in zip(fakes, IPERF_PORTS, strict=False)]
    flows.append((paying_ns, "", IPERF_PORTS[FAKES]))
    procs = [
        subprocess.Popen(
            ["ip", "netns", "exec", where, *argv, "-p", str(port), *(["-B", ip] if ip else [])],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for where, ip, port in flows
    ]
    rates = []
    for proc in procs:
        out, _err = proc.communicate(timeout=SECONDS + 30)
        report = json.loads(out)
        assert "error" not in report, report.get("error")
        # the receiver's goodput after the first 2 s (slow start)
        kept = [i["sum"]["bits_per_second"] for i in report["intervals"] if i["sum"]["start"] >= 1.95]
        rates.append(sum(kept) / len(kept))
    total, paying = sum(rates[:FAKES]), rates[FAKES]
    uplink_shaped = config.uplink.down * config.uplink.headroom
    free_cap = config.portal.free_share * uplink_shaped / FRAME_OVERHEAD  # goodput
    plan_cap = config.plans[config.portal.free_plan].down
    print(
        f"8 free sessions: {total / 1e6:.2f} Mbit/s, free cap {free_cap / 1e6:.2f}, paying {paying / 1e6:.2f}"
    )
    assert total <= free_cap * 1.10, (
        f"8 free sessions took {total / 1e6:.2f} Mbit/s, cap {free_cap / 1e6:.2f}"
    )
    assert FAKES * plan_cap > 2 * free_cap, "the test means something: 8 plan caps are far above the free cap"
    assert total >= free_cap * 0.5, f"the free sessions do get their share: {total / 1e6:.2f} Mbit/s"
    assert paying >= 0.8 * 4_000_000, f"the paying phone keeps its plan's rate: {paying / 1e6:.2f} Mbit/s"
