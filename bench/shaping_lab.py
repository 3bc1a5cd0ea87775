"""Shaping in the lab: accuracy, latency under load, fairness (real gateway, iperf3, ping).

Builds its own lab (prefix ``hs-sb-``, 9 phones; uplink 10mbit/10mbit, headroom 0.95)
and measures, in one run:

- accuracy: TCP goodput of one phone against its cap, 1/2/4 Mbit/s down and
  0.5/1/2 up (plan rates mean goodput; see docs/shaping.md);
- latency under load: ping RTT of an idle phone (p50/p95) alone, then while four
  phones saturate the line both ways; the added p95 is the difference;
- fairness: Jain's index for 2, 4 and 8 phones downloading at once (caps above their
  share, so the share is what limits them), and how much of the line they fill.

Run: ``sudo .venv/bin/python -m bench.shaping_lab [--prefix hs-sb-] [--keep]``. Waits for the
gateway are sized from the work (:mod:`bench._common`); what cannot be measured is said in
one line.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

from bench._common import Unmeasurable, budget, guarded, redis_for, target
from gateway.lab.lab import Lab
from gateway.lab.measure import Flow, iperf_many, jain, percentile, ping_rtts
from gateway.lab.probe import admit
from gateway.lab.probe import everyone_out as _everyone_out
from gateway.lab.topology import LabSpec

MBIT = 1_000_000
LINE_GOODPUT = 10 * MBIT * 0.95 * 1448 / 1514  # the shaped uplink as TCP goodput
WAIT = budget(0.2)  # for the gateway's answer: a pass over 9 phones takes milliseconds, quiet


def _admit(r, lab, index, down, up):
    _session, ack = admit(r, lab, index, down=down, up=up, timeout=WAIT)
    if not ack or not ack.get("ok"):
        raise Unmeasurable(f"phone {index} not admitted within {WAIT:.0f} s: {ack}")


def everyone_out(lab, r) -> None:
    try:
        _everyone_out(lab, r, timeout=WAIT)
    except AssertionError as err:  # the lab helper's way of saying the gateway did not answer
        raise Unmeasurable(str(err)) from err


def accuracy(lab, r, seconds) -> list[dict]:
    rows = []
    for down, up in ((1 * MBIT, 512_000), (2 * MBIT, 1 * MBIT), (4 * MBIT, 2 * MBIT)):
        everyone_out(lab, r)
        _admit(r, lab, 1, down, up)
        [got_down] = iperf_many([Flow(lab.spec.client(1), 5201, True)], seconds)
        [got_up] = iperf_many([Flow(lab.spec.client(1), 5201, False)], seconds)
        rows.append({"cap_down": down, "down": got_down, "cap_up": up, "up": got_up})
    return rows


def latency(lab, r, seconds) -> dict:
    everyone_out(lab, r)
    for i in (1, 2, 3, 4, 9):
        _admit(r, lab, i, 10 * MBIT, 10 * MBIT)
    idle_ns = lab.spec.client(9)
    idle = ping_rtts(idle_ns, count=40, interval=0.1)
    flows = [Flow(lab.spec.client(i), 5200 + i, True) for i in (1, 2, 3, 4)]
    flows += [Flow(lab.spec.client(i), 5204 + i, False) for i in (1, 2, 3, 4)]
    done = {}
    load = threading.Thread(target=lambda: done.update(got=iperf_many(flows, seconds)))
    load.start()
    time.sleep(3)  # past slow start
    busy = {}  # a saturating phone's own ping waits behind its own download, in its own queue
    own = threading.Thread(
        target=lambda: busy.update(rtts=ping_rtts(lab.spec.client(1), count=40, interval=0.1))
    )
    own.start()
    loaded = ping_rtts(idle_ns, count=40, interval=0.1)
    own.join()
    load.join()
    return {
        "idle_p50_ms": percentile(idle, 50), "idle_p95_ms": percentile(idle, 95),
        "loaded_p50_ms": percentile(loaded, 50), "loaded_p95_ms": percentile(loaded, 95),
        "added_p95_ms": percentile(loaded, 95) - percentile(idle, 95),
        "busy_own_p50_ms": percentile(busy["rtts"], 50), "busy_own_p95_ms": percentile(busy["rtts"], 95),
        "lost": 80 - len(idle) - len(loaded),
        "load_down": sum(done["got"][:4]), "load_up": sum(done["got"][4:]),
    }  # fmt: skip


def fairness(lab, r, seconds) -> list[dict]:
    rows = []
    for n in (2, 4, 8):
        everyone_out(lab, r)
        for i in range(1, n + 1):
            _admit(r, lab, i, 10 * MBIT, 10 * MBIT)
        got = iperf_many([Flow(lab.spec.client(i), 5200 + i, True) for i in range(1, n + 1)], seconds)
        rows.append({"clients": n, "jain": jain(got), "each": got, "fill": sum(got) / LINE_GOODPUT})
    return rows


def report(results: dict) -> None:
    """Print one line per measurement, next to its target."""
    for row in results["accuracy"]:
        print(
            f"accuracy: {row['cap_down'] / MBIT:g} Mbit/s down -> {row['down'] / row['cap_down']:.3f}, "
            f"{row['cap_up'] / MBIT:g} Mbit/s up -> {row['up'] / row['cap_up']:.3f} (target 0.95-1.05)"
        )
    lat = results["latency"]
    print(
        f"latency: idle phone p95 {lat['idle_p95_ms']:.2f} ms alone, {lat['loaded_p95_ms']:.2f} ms "
        f"while four saturate both ways: added {lat['added_p95_ms']:.2f} ms (target < 10 ms); "
        f"a saturating phone's own ping p50 {lat['busy_own_p50_ms']:.1f} ms, "
        f"p95 {lat['busy_own_p95_ms']:.1f} ms"
    )
    for row in results["fairness"]:
        low, high = min(row["each"]) / MBIT, max(row["each"]) / MBIT
        print(
            f"fairness: {row['clients']} clients Jain {row['jain']:.4f} (target >= 0.98), "
            f"line filled {row['fill']:.2f}, each {low:.2f}-{high:.2f} Mbit/s"
        )


def main(argv: list[str] | None = None) -> int:
    """Build the lab, measure, print; return 0, or 2 if a target could not be measured."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="hs-sb-")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    args = parser.parse_args(argv)
    lab = Lab(LabSpec(prefix=args.prefix, clients=9))
    results: dict = {}

    def run() -> None:
        with target("building the lab"):
            lab.up()
        r = redis_for(lab.config(), WAIT)
        for name, part in (("accuracy", accuracy), ("latency", latency), ("fairness", fairness)):
            with target(name):
                results[name] = part(lab, r, args.seconds)
        with target("ending the sessions"):
            everyone_out(lab, r)

    lab.down(wipe=True)
    try:
        ok = guarded("bench.shaping_lab", run)
    finally:
        if not args.keep:
            lab.down(wipe=True)
    if not ok:
        return 2
    print(json.dumps(results, indent=2))
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
