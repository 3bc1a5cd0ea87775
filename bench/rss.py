"""Memory of the hotspot's processes on an idle router with 50 phones online (issue 14; target < 200 MB).

Builds its own lab (prefix ``hs-bp-``, 50 phones), logs all 50 in the way the portal does
(:func:`gateway.lab.probe.admit`: session in Redis, the gateway's ack), has every phone fetch
the portal's page and a page of the lab's internet once (so the portal's workers have served
real requests and each phone is checked online), lets the router settle, then reads the memory
of the router's own processes: the gateway daemon, the portal (gunicorn master, workers and
the TLS server if any), Redis and the router's dnsmasq. They are found only through the PIDs
the lab recorded when it started them (``.lab/<prefix>/run/*.pid``) and their descendants; the
lab's "internet" side (upstream web server, iperf3, the upstream DNS) and the phones' DHCP
clients are not the router and are left out. Nothing is signalled but by ``Lab.down``.

RSS counts each process's resident pages, shared ones (the gunicorn workers' pages shared with
their master after fork, libpython) once per process; PSS (``/proc/PID/smaps_rollup``) divides
each shared page among the processes sharing it, so the PSS total is what the router's memory
actually holds for them. Both are printed, per process and in total.

``--tls`` also starts a second portal with its TLS listener on (a self-signed certificate, ports
18081/18444, served a few pages from the router itself) and prints the totals with it in place
of the plain one: with TLS, the portal's one gunicorn server has a second listener.

Run: ``sudo .venv/bin/python -m bench.rss [--prefix hs-bp-] [--phones 50] [--settle 10] [--tls] [--keep]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from bench._common import Unmeasurable, budget, guarded, redis_for, target
from gateway.lab.lab import NOBODY, Lab, Proc
from gateway.lab.probe import admit, fetch, online_from
from gateway.lab.tls import self_signed
from gateway.lab.topology import LAN_ROUTER, LabSpec

ROUTER_PROCESSES = ("gateway", "portal", "redis", "dnsmasq")  # the lab's names for the router's own
TARGET_MB = 200
WAIT = budget(0.2)  # for one authorize ack: milliseconds on a quiet machine


def _ppid_map() -> dict[int, int]:
    """Return every live PID's parent PID (read from /proc, nothing touched)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def _tree(root: int, parents: dict[int, int]) -> list[int]:
    """Return ``root`` and all its descendants, root first."""
    found, frontier = [root], [root]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier and pid not in found]
        found += sorted(children)
        frontier = children
    return found


def _memory_kib(pid: int) -> dict:
    """Return the command name, RSS and PSS (KiB; PSS None when smaps_rollup is missing) of ``pid``."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in status if ":" in line)
    rss = int(fields.get("VmRSS", "0 kB").split()[0])
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        pss = next(int(line.split()[1]) for line in rollup if line.startswith("Pss:"))
    except (OSError, StopIteration):
        pss = None
    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    return {"pid": pid, "name": fields["Name"].strip(), "cmd": cmd[:90], "rss_kib": rss, "pss_kib": pss}


def router_memory(lab: Lab, names: tuple[str, ...] = ROUTER_PROCESSES) -> list[dict]:
    """Return one row per process of the router's hotspot (recorded PIDs and their descendants)."""
    parents = _ppid_map()
    rows = []
    for name in names:
        pid = lab.pid(name)
        if pid is None or not lab.is_running(name):
            raise Unmeasurable(f"the lab's {name} is not running")
        for member in _tree(pid, parents):
            try:
                rows.append({"role": name, **_memory_kib(member)})
            except (OSError, KeyError):
                continue  # exited between the scan and the read (a worker recycled)
    return rows


def start_tls_portal(lab: Lab) -> None:
    """Start a second portal with TLS on (self-signed certificate; HTTP 18081, TLS 18444), as the lab
    process "portal-tls", and have both its listeners serve a few pages (from the router itself)."""
    folder = lab.dir / "tls-bench"
    cert, key = self_signed(folder)
    https = f"https://{LAN_ROUTER}:18444"
    text = lab.config_path.read_text().replace(
        f'url = "http://{LAN_ROUTER}:8080"',
        f'url = "{https}"\nport = 18081\ntls_port = 18444\ntls_cert = "{cert}"\ntls_key = "{key}"',
    )
    config_path = folder / "hotspot.toml"
    config_path.write_text(text)
    config_path.chmod(0o644)
    lab.start(
        Proc(
            "portal-tls", lab.spec.gw,
            ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--inh-caps=-all", "--",
             lab.python, "-m", "portal", "--config", str(config_path)],
            env={"PYTHONUNBUFFERED": "1"},
            ready=lambda: lab._http_ok(lab.spec.gw, f"http://{LAN_ROUTER}:18081/healthz"),
            ready_timeout=budget(2),
        )
    )  # fmt: skip
    deadline = time.monotonic() + budget(2)
    served = 0
    while served < 8:  # a few pages on each listener, so every worker has likely served one
        if time.monotonic() > deadline:
            raise Unmeasurable(f"the TLS portal served {served} of 8 pages within {budget(2):.0f} s")
        url = f"{https}/" if served % 2 else f"http://{LAN_ROUTER}:18081/"
        got = lab.exec(lab.spec.gw, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5",
                       "--cacert", str(cert), url, timeout=15).stdout  # fmt: skip
        served += got.strip() in ("200", "302", "308")
        time.sleep(0.1)


def log_everyone_in(lab: Lab, phones: int) -> dict:
    """Admit every phone, have each fetch the portal and the internet once; return the counts."""
    r = redis_for(lab.config(), WAIT)
    admitted = 0
    for i in range(1, phones + 1):
        _session, ack = admit(r, lab, i, timeout=WAIT)
        if not ack or not ack.get("ok"):
            raise Unmeasurable(f"phone {i} not admitted within {WAIT:.0f} s: {ack}")
        admitted += 1
    portal = lab.config().portal.url + "/"
    served = sum(
        fetch(lab, lab.spec.client(i), portal, timeout=10).status in (200, 302) for i in range(1, phones + 1)
    )
    online = sum(online_from(lab, i) for i in range(1, phones + 1))
    return {"admitted": admitted, "portal_pages_served": served, "online": online}


def report(rows: list[dict]) -> dict:
    """Print one line per process and the totals; return the totals."""
    has_pss = all(row["pss_kib"] is not None for row in rows)
    for row in rows:
        pss = f"{row['pss_kib'] / 1024:6.1f}" if row["pss_kib"] is not None else "   n/a"
        print(f"rss: {row['role']:<8} pid {row['pid']:>7} {row['name']:<15} "
              f"RSS {row['rss_kib'] / 1024:6.1f} MiB  PSS {pss} MiB  {row['cmd']}")  # fmt: skip
    rss = sum(row["rss_kib"] for row in rows) / 1024
    pss = sum(row["pss_kib"] for row in rows) / 1024 if has_pss else None
    per_role = {}
    for role in dict.fromkeys(row["role"] for row in rows):
        mine = [row for row in rows if row["role"] == role]
        per_role[role] = {
            "processes": len(mine),
            "rss_mib": round(sum(x["rss_kib"] for x in mine) / 1024, 1),
            "pss_mib": round(sum(x["pss_kib"] for x in mine) / 1024, 1) if has_pss else None,
        }
    print(f"rss: total {len(rows)} processes: RSS {rss:.1f} MiB, "
          f"PSS {'n/a' if pss is None else f'{pss:.1f} MiB'} (target < {TARGET_MB} MB)")  # fmt: skip
    pss_mib = None if pss is None else round(pss, 1)
    return {"processes": len(rows), "rss_mib": round(rss, 1), "pss_mib": pss_mib, "per_role": per_role}


def main(argv: list[str] | None = None) -> int:
    """Build the lab, log the phones in, settle, measure, print; 0, or 2 if it could not measure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="hs-bp-")
    parser.add_argument("--phones", type=int, default=50)
    parser.add_argument("--settle", type=float, default=10.0, help="seconds idle before reading memory")
    parser.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    parser.add_argument(
        "--tls",
        action="store_true",
        help="also measure a portal with its TLS listener on, in place of the plain one",
    )
    args = parser.parse_args(argv)
    lab = Lab(LabSpec(prefix=args.prefix, clients=args.phones))
    results: dict = {}

    def run() -> None:
        with target("building the lab"):
            started = time.monotonic()
            lab.up()
            results["lab_up_s"] = round(time.monotonic() - started, 1)
        with target("logging the phones in"):
            results["phones"] = log_everyone_in(lab, args.phones)
        if results["phones"]["online"] < args.phones:
            raise Unmeasurable(f"only {results['phones']['online']} of {args.phones} phones online")
        if args.tls:
            with target("starting a portal with TLS"):
                start_tls_portal(lab)
        time.sleep(args.settle)  # idle: the gateway's periodic passes run, no traffic
        results["rows"] = router_memory(lab)
        if args.tls:
            results["tls_rows"] = router_memory(lab, ("gateway", "portal-tls", "redis", "dnsmasq"))

    lab.down(wipe=True)
    try:
        ok = guarded("bench.rss", run)
    finally:
        if not args.keep:
            lab.down(wipe=True)
    if not ok:
        return 2
    print(f"rss: lab up in {results['lab_up_s']} s; phones {json.dumps(results['phones'])}")
    totals = report(results["rows"])
    print(json.dumps(totals, indent=2))
    if args.tls:
        print("rss: the same router with the portal's TLS listener on (portal-tls in place of portal):")
        print(json.dumps(report(results["tls_rows"]), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
