"""The fleet's numbers: the Debian package (build time, size, installed size, what weighs most)
and the Ansible rollout's own cost.

``.venv/bin/python -m bench.rollout [--build]``. Needs no lab. ``--build`` runs ``make deb``
into a temporary folder and times it (about 2 minutes on the shared CI box); without it the
newest ``dist/*.deb`` is measured (built if there is none). The rollout part runs the real
playbook on the program inventory's libraries over a local connection with each config in a
temporary folder (render, ``hotspotctl config check``, place, a no-op reload; no package, no
systemd): Ansible's own time per batch, which the SSH lab test's number adds the network to.

``--upgrade`` (root; ``sudo .venv/bin/python -m bench.rollout --upgrade [--phones 10]
[--prefix hs-bu-] [--debs DIR] [--root-tar PATH]``) measures the traffic interruption of one
router during an upgrade: version N of the package (``make deb``) installed in a Debian root
in a lab router's namespace (:mod:`gateway.lab.routeroot`, as ``tests/package/test_upgrade_lab.py``
does), ``--phones`` phones logged in and one more not, every phone sending a UDP datagram each
20 ms to the lab's internet, then ``dpkg -i`` N+1 (``make deb DEB_VERSION=<N>+upgrade1``).
Printed: dpkg's time, datagrams lost per online phone, datagrams through for the phone not
logged in, and how long the gateway and the portal were down during their restart (from their
own logs). ``--debs`` takes both .debs from a folder, ``--root-tar`` reuses an mmdebstrap tarball
(made there if missing); otherwise both are built into a temporary folder (~4 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
ANSIBLE = ROOT / "deploy" / "ansible"
BIN = Path(sys.executable).parent


def build(out: Path) -> tuple[Path, float]:
    started = time.monotonic()
    subprocess.run(
        ["make", "-s", "-C", str(ROOT), "deb", f"DEB_BUILD={out / 'build'}", f"DIST={out / 'dist'}"],
        check=True, capture_output=True,
    )  # fmt: skip
    return next((out / "dist").glob("*.deb")), time.monotonic() - started


def package(deb: Path) -> None:
    size = deb.stat().st_size
    installed_kib = int(
        subprocess.run(["dpkg-deb", "-f", deb, "Installed-Size"], capture_output=True, text=True).stdout
    )
    listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True).stdout.splitlines()
    print(f"package: {deb.name}: {size / 1e6:.1f} MB, installed {installed_kib / 1024:.0f} MiB, "
          f"{len(listing)} entries")  # fmt: skip
    weights: dict[str, int] = {}
    for line in listing:
        parts = line.split()
        path = parts[5]
        if "/site-packages/" in path:
            top = path.split("/site-packages/", 1)[1].split("/", 1)[0]
            weights[top] = weights.get(top, 0) + int(parts[2])
    heaviest = sorted(weights.items(), key=lambda kv: -kv[1])[:6]
    print("package: heaviest libraries: " + ", ".join(f"{n} {b / 1e6:.1f} MB" for n, b in heaviest))


def rollout() -> None:
    work = Path(tempfile.mkdtemp(prefix="hs-bench-fleet-"))
    try:
        shutil.copytree(ANSIBLE / "inventory", work / "inventory")
        hosts = json.loads(
            subprocess.run(
                [BIN / "ansible-inventory", "-i", work / "inventory" / "hosts.yml", "--list"],
                capture_output=True, text=True, check=True,
            ).stdout
        )["_meta"]["hostvars"]  # fmt: skip
        for host in hosts:
            (work / host).mkdir()
        host_dir = "{{ inventory_hostname }}"
        (work / "local.yml").write_text(yaml.safe_dump({"all": {"vars": {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "ansible_become": False, "hotspot_ctl": str(BIN / "hotspotctl"),
            "hotspot_config_path": f"{work}/{host_dir}/hotspot.toml",
            "hotspot_config_owner": "root", "hotspot_config_group": "root",
            "hotspot_configure_command": "true", "hotspot_reload_command": "true",
        }}}))  # fmt: skip
        env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"),
            "ANSIBLE_HOME": str(work / "home"),
        }
        for label, serial in (("all at once", [len(hosts)]), ("one at a time", [1])):
            started = time.monotonic()
            subprocess.run(
                [BIN / "ansible-playbook", "-i", work / "inventory" / "hosts.yml", "-i", work / "local.yml",
                 "site.yml", "--skip-tags", "package,services,health",
                 "-e", json.dumps({"hotspot_serial": serial})],
                cwd=ANSIBLE, env=env, check=True, capture_output=True,
            )  # fmt: skip
            took = time.monotonic() - started
            print(f"rollout (local, config only): {len(hosts)} libraries {label}: {took:.1f} s "
                  f"({took / (len(hosts) if serial == [1] else 1):.1f} s per batch)")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


def upgrade(work: Path, args: argparse.Namespace) -> dict:
    """dpkg -i N+1 on a lab router running N with ``args.phones`` phones online; return what was counted."""
    # deliberate: the lab and the router root are only needed here (root, the lab's tools)
    from gateway import __version__
    from gateway.lab.lab import Lab
    from gateway.lab.probe import admit
    from gateway.lab.routeroot import RouterRoot, make_base_tarball, udp_streams
    from gateway.lab.topology import LabSpec

    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    versions = (__version__, f"{__version__}+upgrade1")
    debs = [Path(args.debs or work / "dist") / f"perpuseru-hotspot_{v}_{arch}.deb" for v in versions]
    for deb, version in zip(debs, versions, strict=True):
        if not deb.exists():
            started = time.monotonic()
            subprocess.run(
                ["make", "-s", "-C", str(ROOT), "deb", f"DEB_BUILD={work / 'build'}", f"DIST={deb.parent}",
                 *([f"DEB_VERSION={version}"] if version != __version__ else [])],
                check=True, capture_output=True,
            )  # fmt: skip
            print(f"upgrade: built {deb.name} in {time.monotonic() - started:.0f} s", flush=True)
    tarball = Path(args.root_tar or work / "bookworm.tar")
    if not tarball.exists():
        made = make_base_tarball(tarball)
        if made.returncode != 0:
            raise SystemExit(f"mmdebstrap failed: {made.stderr[-500:]}")
    lab = Lab(LabSpec(prefix=args.prefix, clients=args.phones + 1))
    lab.down(wipe=True)
    lab.up()
    root = None
    try:
        lab.stop("portal")
        lab.stop("gateway")
        root = RouterRoot.unpack(tarball, work / "root", lab.spec.gw)
        n, n1 = root.copy_in(debs[0]), root.copy_in(debs[1])
        root.run("dpkg", "-i", n, check=True)
        root.write_config(lab)
        root.start_services()
        r = root.redis()
        for i in range(1, args.phones + 1):
            _, ack = admit(r, lab, i)
            if not ack or not ack.get("ok"):
                raise SystemExit(f"phone {i} was not logged in: {ack}")
        offline = args.phones + 1
        with udp_streams(lab, list(range(1, args.phones + 2))) as streams:
            started = time.monotonic()
            result = root.run("dpkg", "-i", n1)
            took = time.monotonic() - started
        if result.returncode != 0:
            raise SystemExit(f"dpkg -i N+1 failed: {result.stderr[-2000:]}")
        lost = {i: streams.lost(f"phone{i}") for i in range(1, args.phones + 1)}
        return {
            "phones": args.phones,
            "dpkg_s": round(took, 1),
            "sent_per_phone": min(streams.sent[f"phone{i}"] for i in lost),
            "lost_max": max(lost.values()),
            "lost_total": sum(lost.values()),
            "through_unauthorized": streams.received.get(f"phone{offline}", 0),
            "gateway_down_s": _gateway_gap(root.root / "var/log/lab-units/hotspot-gateway.service.log"),
            "portal_down_s": _portal_gap(root.root / "var/log/lab-units/hotspot-portal.service.log"),
        }
    finally:
        if root is not None:
            root.destroy()
        lab.down(wipe=True)


def _gateway_gap(log: Path) -> float | None:
    """Seconds from the old gateway's SIGTERM to the new one's ruleset loaded (its JSON log)."""
    stopping = loaded = None
    for line in log.read_text().splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        when = datetime.fromisoformat(event.get("timestamp", "1970-01-01T00:00:00").replace("Z", "+00:00"))
        if event.get("event") == "gateway_stopping":
            stopping, loaded = when, None
        elif event.get("event") == "ruleset_loaded" and stopping and loaded is None:
            loaded = when
    return round((loaded - stopping).total_seconds(), 2) if stopping and loaded else None


def _portal_gap(log: Path) -> float | None:
    """Seconds (to the second: gunicorn's log) from the old portal's SIGTERM to the new one listening."""
    stamp = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) [+-]\d{4}\] \[\d+\] \[INFO\] (.*)$")
    term = listening = None
    for line in log.read_text().splitlines():
        found = stamp.match(line)
        if not found:
            continue
        when = datetime.fromisoformat(found.group(1))
        if found.group(2).startswith("Handling signal: term"):
            term, listening = when, None
        elif found.group(2).startswith("Listening at") and term and listening is None:
            listening = when
    return (listening - term).total_seconds() if term and listening else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rollout", description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="store_true", help="time `make deb` (else the newest dist/*.deb)")
    parser.add_argument("--upgrade", action="store_true", help="only the upgrade with phones online (root)")
    parser.add_argument("--phones", type=int, default=10)
    parser.add_argument("--prefix", default="hs-bu-")
    parser.add_argument("--debs", help="a folder holding the N and N+1 .debs (else built)")
    parser.add_argument("--root-tar", help="an mmdebstrap tarball to reuse (made there if missing)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.upgrade:
        work = Path(tempfile.mkdtemp(prefix="hs-bench-upgrade-"))
        try:
            got = upgrade(work, args)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(
            f"upgrade: dpkg -i N -> N+1 with {got['phones']} phones online took {got['dpkg_s']} s; "
            f"datagrams lost per online phone: max {got['lost_max']} (total {got['lost_total']}, "
            f"{got['sent_per_phone']}+ sent each); "
            f"unauthorized datagrams through: {got['through_unauthorized']}; "
            f"gateway down {got['gateway_down_s']} s (SIGTERM to the new ruleset), portal down "
            f"{got['portal_down_s']} s (to the second)"
        )  # fmt: skip
        return 0 if got["lost_max"] == 0 and got["through_unauthorized"] == 0 else 1
    work = Path(tempfile.mkdtemp(prefix="hs-bench-deb-"))
    try:
        newest = sorted((ROOT / "dist").glob("perpuseru-hotspot_*.deb"), key=lambda p: p.stat().st_mtime)
        if args.build or not newest:
            deb, took = build(work)
            print(f"package: make deb took {took:.0f} s")
        else:
            deb = newest[-1]
        package(deb)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if (BIN / "ansible-playbook").exists():
        rollout()
    return 0


if __name__ == "__main__":
    sys.exit(main())
