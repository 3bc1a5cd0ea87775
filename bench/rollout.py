"""The fleet's numbers: the Debian package (build time, size, installed size, what weighs most)
and the Ansible rollout's own cost.

``.venv/bin/python -m bench.rollout [--build]``. Needs no lab. ``--build`` runs ``make deb``
into a temporary folder and times it (about 2 minutes on the shared CI box); without it the
newest ``dist/*.deb`` is measured (built if there is none). The rollout part runs the real
playbook on the program inventory's libraries over a local connection with each config in a
temporary folder (render, ``hotspotctl config check``, place, a no-op reload; no package, no
systemd): Ansible's own time per batch, which the SSH lab test's number adds the network to.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    work = Path(tempfile.mkdtemp(prefix="hs-bench-deb-"))
    try:
        newest = sorted((ROOT / "dist").glob("perpuseru-hotspot_*.deb"), key=lambda p: p.stat().st_mtime)
        if "--build" in argv or not newest:
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
