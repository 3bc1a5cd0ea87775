"""Portal benchmarks in the lab: probe redirects/s, splash pages/s, login latency end to end.

``sudo .venv/bin/python -m bench.portal [--duration 20] [--phones 4] [--rounds 20]``

- **probe redirects**: every phone (not logged in) sends Android's probe
  ``http://connectivitycheck.gstatic.com/generate_204`` (to the lab's internet address)
  on a new connection each time, ``--concurrency`` at once, for ``--duration`` s; the
  gateway's nftables redirect it to the portal, which answers 302. Without the gateway's
  firewall in the lab, the probe is sent to the portal's port with the probe's Host
  header instead (the result says which).
- **splash**: the same load on ``GET /`` of the portal (the full page, ~6 KB).
- **login**: per phone, ``--rounds`` times: post a voucher code, time the portal's answer
  (it answers after the gateway's ack) and the first page from the internet, log out.

Builds its own lab (prefix ``hs-bp-``, or ``--prefix``) and removes it afterwards unless
it was already up. Prints a table and the JSON of every number. Waits are sized from the
work (:mod:`bench._common`); what cannot be measured is said in one line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench._common import Unmeasurable, budget, guarded, redis_for, target
from gateway.lab.lab import Lab
from gateway.lab.netns import lab_namespaces, spec_from_existing
from gateway.lab.topology import UPSTREAM_IP, LabSpec
from gateway.model.sessions import end_session, online_sessions
from gateway.model.vouchers import issue_batch

__all__ = ["main", "run"]

HERE = Path(__file__).resolve().parent
PROBE_HOST = "connectivitycheck.gstatic.com"
LOGIN_WAIT = budget(0.2)  # one login's answer (the portal waits for the gateway's ack)


def _parallel(lab: Lab, phones: list[str], argv: list[str], timeout: float) -> list[dict]:
    """Run ``argv`` in every phone namespace at once; return each one's JSON output."""
    procs = [
        subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=subprocess.PIPE, text=True)
        for ns in phones
    ]
    results = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=timeout)
            lines = out.strip().splitlines()
            if not lines:
                raise Unmeasurable(f"{' '.join(argv[:2])} printed no result (exit code {proc.returncode})")
            results.append(json.loads(lines[-1]))
    finally:
        for proc in procs:  # the ones not read when another failed or timed out
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return results


def _load(lab: Lab, phones: list[str], url: str, host: str, args: argparse.Namespace) -> dict:
    argv = [lab.python, str(HERE / "_httpload.py"), "--url", url, "--duration", str(args.duration),
            "--concurrency", str(args.concurrency)]  # fmt: skip
    if host:
        argv += ["--host", host]
    runs = _parallel(lab, phones, argv, timeout=args.duration + 30)
    return {
        "rps": round(sum(r["rps"] for r in runs), 1),
        "requests": sum(r["requests"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
        "p50_ms": round(statistics.median(r["p50_ms"] for r in runs), 2),
        "p95_ms": round(max(r["p95_ms"] for r in runs), 2),
        "statuses": {
            k: sum(r["statuses"].get(k, 0) for r in runs) for k in {k for r in runs for k in r["statuses"]}
        },
        "per_phone": runs,
    }


def _probe_path(lab: Lab, phone: str, portal: str) -> tuple[str, str, str]:
    """Return (url, host header, how) for probes: through the firewall if it redirects them."""
    out = lab.exec(phone, "curl", "-s", "-o", "/dev/null", "-m", "3", "-w", "%{http_code} %{redirect_url}",
                   "-H", f"Host: {PROBE_HOST}", f"http://{UPSTREAM_IP}/generate_204").stdout  # fmt: skip
    if out.startswith("302 ") and portal in out:
        return f"http://{UPSTREAM_IP}/generate_204", PROBE_HOST, "redirected by the gateway's nftables"
    return f"{portal}/generate_204", PROBE_HOST, "sent to the portal port directly (no gateway redirect)"


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    values = sorted(values)
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values), 1),
        "p95_ms": round(values[min(len(values) - 1, int(0.95 * len(values)))], 1),
        "max_ms": round(values[-1], 1),
    }


def _logins(lab: Lab, phones: list[str], args: argparse.Namespace) -> dict:
    config = lab.config()
    r = redis_for(config, LOGIN_WAIT)
    vouchers = issue_batch(r, config.plans["harian"], len(phones), now=time.time(), issued_by="bench")
    portal = config.portal.url
    results = []
    for ns, voucher in zip(phones, vouchers, strict=True):  # one phone at a time: latency, not load
        argv = [lab.python, str(HERE / "_login_timing.py"), "--portal", portal, "--code", voucher.code,
                "--rounds", str(args.rounds), "--timeout", str(LOGIN_WAIT)]  # fmt: skip
        # each round: a login, the first page, a logout, each waited for up to LOGIN_WAIT
        results += _parallel(lab, [ns], argv, timeout=args.rounds * 3 * LOGIN_WAIT + 30)[0]["rounds"]
    acked = [x["login_ms"] for x in results if x["status"] == 303]
    online = [x["online_ms"] for x in results if x["online_ms"] is not None]
    return {
        "rounds": len(results),
        "acked": len(acked),
        "login": _percentiles(acked),
        "online": _percentiles(online),
        "statuses": sorted({x["status"] for x in results}, key=str),  # 303, or "timeout"
    }


def _log_everyone_out(lab: Lab) -> None:
    r = redis_for(lab.config(), LOGIN_WAIT)
    for session in online_sessions(r):
        end_session(r, session.sid, "kicked", time.time())


def run(args: argparse.Namespace) -> dict:
    """Run the three measurements on a lab that is up; return the numbers."""
    lab = args.lab
    phones = lab.spec.client_namespaces[: args.phones]
    portal = lab.config().portal.url
    _log_everyone_out(lab)
    url, host, how = _probe_path(lab, phones[0], portal)
    results = {"phones": len(phones), "concurrency_per_phone": args.concurrency, "duration_s": args.duration}
    with target("probe redirects"):
        results["probe"] = {"how": how, **_load(lab, phones, url, host, args)}
    with target("splash pages"):
        results["splash"] = _load(lab, phones, f"{portal}/", "", args)
    with target("logins"):
        results["login"] = _logins(lab, phones, args)
    return results


def _print(results: dict) -> None:
    probe, splash, login = results["probe"], results["splash"], results["login"]
    print(f"phones {results['phones']} x {results['concurrency_per_phone']} connections, "
          f"{results['duration_s']:.0f} s each (new TCP connection per request)")  # fmt: skip
    print(f"probe redirects: {probe['rps']:8.1f} /s  p50 {probe['p50_ms']} ms  p95 {probe['p95_ms']} ms  "
          f"errors {probe['errors']}  ({probe['how']})")  # fmt: skip
    print(f"splash pages:    {splash['rps']:8.1f} /s  p50 {splash['p50_ms']} ms  p95 {splash['p95_ms']} ms  "
          f"errors {splash['errors']}")  # fmt: skip
    print(f"login (POST -> 'online' answer, after the gateway's ack): {login['login']}")
    print(f"login (POST -> first page from the internet):            {login['online']}")
    print(json.dumps(results, indent=1, default=str))


def main(argv: list[str] | None = None) -> int:
    """Build (or reuse) a lab, measure, print, tear down what was built."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="hs-bp-")
    parser.add_argument("--phones", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)
    existed = bool(lab_namespaces(args.prefix))
    spec = spec_from_existing(args.prefix) if existed else LabSpec(prefix=args.prefix, clients=args.phones)
    lab = args.lab = Lab(spec)

    def measure() -> None:
        with target("building the lab"):
            lab.up()
        _print(run(args))

    try:
        ok = guarded("bench.portal", measure)
    finally:
        if not existed:
            lab.down(wipe=True)
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
