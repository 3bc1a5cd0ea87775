"""The portal under attack and under a class: issue 16's portal benchmarks, in the lab.

``sudo .venv/bin/python -m bench.portal_load [--duration 10] [--concurrency 8] [--class-size 40]
[--class-runs 1] [--class-only]``

- **probe redirects/s** and **splash pages/s** a good phone (not logged in) gets, first
  alone, then while a bad phone holds 64 slow connections to the portal
  (``bench/_slowloris.py``: headers trickled, never finished). Probes go to the lab's
  internet address and the gateway's nftables redirect them to the portal, as a phone's
  OS probe is. Measured with wrk when it is installed (new connection per request, as
  the portal closes after each redirect), else with ``bench/_httpload.py``. Targets:
  >= 1,000 redirects/s unattacked, >= 50 % of that under attack.
- the **not-logged-in tc classes** are read before and after the probe load: the portal's
  answers must not be in ``1:2`` on the LAN side (they go to the LAN class ``1:3``), and
  the probes themselves go to ``1:e`` on the upload side, not the small ``1:2``.
- **a class of 40 phones** (made-up devices in one phone namespace, ``gateway/lab/fakes.py``)
  post their voucher codes within the same second (each at a random moment of one
  second: the issue's words), and, harder, all at the same instant (a barrier: every
  post in the same millisecond); all must be online, and the target is p95 form POST ->
  first page from the internet < 100 ms.

Builds its own lab (prefix ``hs-bl-``, or ``--prefix``) with 3 phones and removes it
afterwards unless it was already up. Prints a table and the JSON of every number.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.portal import PROBE_HOST, _load, _log_everyone_out, _percentiles
from gateway.lab.fakes import add_fakes, remove_fakes
from gateway.lab.lab import Lab
from gateway.lab.netns import lab_namespaces, spec_from_existing
from gateway.lab.topology import UPSTREAM_IP, LabSpec
from gateway.model.store import connect
from gateway.model.vouchers import issue_batch
from gateway.names import ifb_name

__all__ = ["main", "run"]

HERE = Path(__file__).resolve().parent
_WRK_RPS = re.compile(r"Requests/sec:\s+([0-9.]+)")
_WRK_P50 = re.compile(r"^\s+50%\s+([0-9.]+)(us|ms|s)\s*$", re.M)
_WRK_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk(lab: Lab, ns: str, url: str, host: str, args: argparse.Namespace) -> dict:
    argv = ["wrk", "-t", "2", "-c", str(args.concurrency), "-d", f"{args.duration:.0f}s", "--latency",
            "-H", "Connection: close"]  # fmt: skip
    if host:
        argv += ["-H", f"Host: {host}"]
    out = lab.exec(ns, *argv, url, timeout=args.duration + 30).stdout
    rps = _WRK_RPS.search(out)
    p50 = _WRK_P50.search(out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "tool": "wrk",
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50_ms": round(float(p50.group(1)) * _WRK_UNIT[p50.group(2)], 2) if p50 else None,
        "errors": sum(int(x) for x in errors.groups()) if errors else 0,
    }


def _measure(lab: Lab, ns: str, url: str, host: str, args: argparse.Namespace) -> dict:
    if shutil.which("wrk"):
        return _wrk(lab, ns, url, host, args)
    result = _load(lab, [ns], url, host, args)
    return {"tool": "_httpload", **{k: result[k] for k in ("rps", "p50_ms", "p95_ms", "errors")}}


_TC_SENT = re.compile(r"Sent (\d+) bytes (\d+) pkt \(dropped (\d+), overlimits (\d+)")


def _unauth_class(lab: Lab) -> dict:
    """Return the not-logged-in classes' counters: 1:2 download (LAN) and upload (IFB), 1:e upload."""
    counters = {}
    for side, device, classid in (("down", "lan0", "1:2"), ("up", ifb_name("lan0"), "1:2"),
                                  ("up_web", ifb_name("lan0"), "1:e")):  # fmt: skip
        out = lab.exec(lab.spec.gw, "tc", "-s", "class", "show", "dev", device, "classid", classid).stdout
        m = _TC_SENT.search(out)
        if m:
            for name, value in zip(("bytes", "packets", "drops", "overlimits"), m.groups(), strict=True):
                counters[f"{side}_{name}"] = int(value)
    return counters


def _under_attack(lab: Lab, good: str, bad: str, portal: str, args: argparse.Namespace) -> dict:
    probe = f"http://{UPSTREAM_IP}/generate_204"
    results: dict = {}
    # reference: the same redirect asked at the portal's own address (no DNAT, no shaping)
    results["probe_direct"] = _measure(lab, good, f"{portal}/generate_204", PROBE_HOST, args)
    before = _unauth_class(lab)
    results["probe"] = _measure(lab, good, probe, PROBE_HOST, args)
    after = _unauth_class(lab)
    results["unauth_class_during_probes"] = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    results["splash"] = _measure(lab, good, f"{portal}/", "", args)
    attack = subprocess.Popen(
        ["ip", "netns", "exec", bad, lab.python, str(HERE / "_slowloris.py"), "--host", UPSTREAM_IP,
         "--port", "80", "--connections", "64", "--duration", str(2 * args.duration + 10)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(3)
        results["probe_attacked"] = _measure(lab, good, probe, PROBE_HOST, args)
        results["splash_attacked"] = _measure(lab, good, f"{portal}/", "", args)
    finally:
        attack.terminate()
        out, _ = attack.communicate(timeout=30)
    results["attacker"] = json.loads(out.strip().splitlines()[-1]) if out.strip() else None
    for kind in ("probe", "splash"):
        clean = results[kind]["rps"]
        results[f"{kind}_ratio"] = round(results[f"{kind}_attacked"]["rps"] / clean, 2) if clean else None
    return results


SPREADS = {"one_second": 1.0, "same_instant": 0.0}  # how the class's posts are spread (seconds)


def _class_login(lab: Lab, ns: str, size: int, runs: int = 1) -> dict:
    """Log a class of ``size`` made-up devices in, ``runs`` times for each way of spreading
    their posts (:data:`SPREADS`), everyone logged out and the kernel cleaned up in between."""
    config = lab.config()
    r = connect(config)
    fakes = add_fakes(lab, ns, size, first_ip=201, prefix="cl", mac_byte=0xC1)
    results: dict = {"devices": size}
    try:
        for n in range(runs):
            for name, spread in SPREADS.items():
                _log_everyone_out(lab)
                time.sleep(2.5)  # the pass after the logouts removes their kernel state (lab: every 2 s)
                vouchers = issue_batch(r, config.plans["harian"], size, now=time.time(), issued_by="bench")
                argv = [lab.python, str(HERE / "_class_login.py"), "--portal", config.portal.url,
                        "--spread", str(spread), "--seed", str(n + 1)]  # fmt: skip
                for fake, voucher in zip(fakes, vouchers, strict=True):
                    argv += ["--device", f"{fake.ip}={voucher.code}"]
                out = lab.exec(ns, *argv, timeout=120, check=True).stdout
                got = json.loads(out.strip().splitlines()[-1])
                devices = got["devices"]
                online = [d["online_ms"] for d in devices if d["online_ms"] is not None]
                results.setdefault(name, []).append({
                    "spread_s": spread,
                    "client_cpu_s": got.get("client_cpu_s"),
                    "answered_303": sum(d["status"] == 303 for d in devices),
                    "online": len(online),
                    "login": _percentiles([d["login_ms"] for d in devices if d["status"] == 303]),
                    "post_to_online": _percentiles(online),
                })  # fmt: skip
    finally:
        remove_fakes(lab, ns, fakes)
    return results


def run(args: argparse.Namespace) -> dict:
    """Run the measurements on a lab that is up; return the numbers."""
    lab = args.lab
    good, bad, classroom = lab.spec.client_namespaces[:3]
    portal = lab.config().portal.url
    _log_everyone_out(lab)
    results = {"concurrency": args.concurrency, "duration_s": args.duration}
    if not args.class_only:
        results.update(_under_attack(lab, good, bad, portal, args))
    results["class"] = _class_login(lab, classroom, args.class_size, args.class_runs)
    _log_everyone_out(lab)
    return results


def _print(results: dict) -> None:
    if "probe" in results:
        print(f"probe at the portal's own address (reference, not DNAT-ed): "
              f"{results['probe_direct']['rps']:.1f}/s")  # fmt: skip
        for kind in ("probe", "splash"):
            clean, attacked = results[kind], results[f"{kind}_attacked"]
            print(f"{kind:7s} {clean['rps']:8.1f}/s alone, {attacked['rps']:8.1f}/s with 64 slow connections "
                  f"from another phone (x{results[f'{kind}_ratio']}), tool {clean['tool']}")  # fmt: skip
        print(f"not-logged-in class 1:2 during the probe load: {results['unauth_class_during_probes']}")
        print(f"attacker: {results['attacker']}")
    cls = results["class"]
    for name in SPREADS:
        for run in cls[name]:
            print(f"class of {cls['devices']}, posts {name.replace('_', ' ')} ({run['spread_s']} s): "
                  f"{run['answered_303']} answered, {run['online']} online; login {run['login']}; "
                  f"POST -> online {run['post_to_online']}")  # fmt: skip
    print(json.dumps(results, indent=1, default=str))


def _portal_workers(lab: Lab, workers: int) -> None:
    """Run the lab's portal with ``workers`` gunicorn workers (until the next ``lab up``)."""
    text = re.sub(r"\n\[portal\]\n(workers = \d+\n)?", "\n[portal]\n", lab.config_path.read_text(), count=1)
    lab.config_path.write_text(text.replace("\n[portal]\n", f"\n[portal]\nworkers = {workers}\n", 1))
    lab.restart("portal")
    url = f"http://{lab.config().portal.address}:{lab.config().portal.port}/healthz"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        ask = lab.exec(lab.spec.client(1), "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "1",
                       url)  # fmt: skip
        if ask.stdout.strip() == "200":
            return
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    """Build (or reuse) a lab, measure, print, tear down what was built."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="hs-bl-")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--class-size", type=int, default=40)
    parser.add_argument("--class-runs", type=int, default=1, help="runs of each class spread")
    parser.add_argument("--class-only", action="store_true", help="skip the redirect/attack measurements")
    parser.add_argument("--workers", type=int, default=0,
                        help="portal.workers for this run (default: the lab config's, 1)")  # fmt: skip
    args = parser.parse_args(argv)
    args.class_size = max(1, min(args.class_size, 50))
    existed = bool(lab_namespaces(args.prefix))
    spec = spec_from_existing(args.prefix) if existed else LabSpec(prefix=args.prefix, clients=3)
    lab = args.lab = Lab(spec)
    try:
        lab.up()
        if args.workers:
            _portal_workers(lab, args.workers)
        print(f"portal workers: {lab.config().portal.workers}")
        _print(run(args))
    finally:
        if not existed:
            lab.down(wipe=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
