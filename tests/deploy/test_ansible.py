"""The fleet rollout (deploy/ansible) run by real ansible-playbook.

Syntax and inventory checks, then the playbook itself against three libraries of the real
inventory with a local connection, each with its config under a temporary folder: the
templates render, `hotspotctl config check` validates each file before it is put in place,
a bad value in one library's inventory leaves that library untouched while the others go
on, `--check --diff` shows a change without making it, and a library that fails its health
check stops the batches after it. The package, systemd and the real health check are the
router's (tags package, services; the health command is a stand-in that runs
`hotspotctl config check` and answers like `hotspotctl status --json`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = ROOT / "deploy" / "ansible"
BIN = Path(sys.executable).parent
PLAYBOOK = BIN / "ansible-playbook"
HOSTS = ("sukabumi", "garut", "desa-karangsari")
HOST = "{{ inventory_hostname }}"

pytestmark = pytest.mark.skipif(
    not PLAYBOOK.exists(), reason="ansible-core missing (pip install -e '.[test]')"
)


def run(argv: list[str], *, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    full_env = {
        **os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": "/tmp/hs-ansible-local", "ANSIBLE_HOME": "/tmp/hs-ansible-home",
        **(env or {}),
    }  # fmt: skip
    return subprocess.run(argv, cwd=ANSIBLE, capture_output=True, text=True, env=full_env, timeout=timeout)


def test_syntax_check():
    for playbook in ("site.yml", "hq.yml"):
        result = run([str(PLAYBOOK), "--syntax-check", playbook])
        assert result.returncode == 0, result.stdout + result.stderr


def test_inventory_lists_every_library_with_what_the_template_needs():
    result = run([str(BIN / "ansible-inventory"), "--list"])
    assert result.returncode == 0, result.stderr
    inventory = json.loads(result.stdout)
    hostvars = inventory["_meta"]["hostvars"]
    libraries = set()
    for group in inventory["libraries"]["children"]:
        libraries |= set(inventory[group]["hosts"])
    assert libraries == set(hostvars) and len(libraries) >= 4
    ids = [hostvars[h]["library"]["id"] for h in libraries]
    assert len(ids) == len(set(ids)), "library ids are unique"
    catalogue = hostvars["sukabumi"]["hotspot_plan_catalogue"]
    for host in libraries:
        v = hostvars[host]
        for key in ("id", "name", "location", "district", "province"):
            assert v["library"].get(key), (host, key)
        assert {"lan_interface", "wan_interface", "lan_address"} <= set(v["network"]), host
        assert v["uplink"]["down"] and v["uplink"]["up"], host
        assert v["plans"] and set(v["plans"]) <= set(catalogue), host


@pytest.fixture
def fleet(tmp_path):
    """A local inventory of three real libraries, each rendered into tmp_path/<host>/."""
    for host in HOSTS:
        (tmp_path / host).mkdir()
        # `config check` is the real one; `status --json` answers healthy unless <host>/unhealthy exists
        stub = tmp_path / host / "hotspotctl"
        stub.write_text(
            "#!/bin/sh\n"
            'if [ "$1" = status ]; then\n'
            f'  if [ -e "{tmp_path / host}/unhealthy" ]; then\n'
            '    echo \'{"gateway": {"state": "down"}, "portal": {"state": "ok"}, '
            '"redis": {"state": "ok"}}\'\n'
            "    exit 3\n"
            "  fi\n"
            '  echo \'{"gateway": {"state": "ok"}, "portal": {"state": "ok"}, '
            '"redis": {"state": "ok"}}\'\n'
            "  exit 0\n"
            "fi\n"
            f'exec "{BIN / "hotspotctl"}" "$@"\n'
        )
        stub.chmod(0o755)
    shutil.copytree(ANSIBLE / "inventory", tmp_path / "inventory")
    inventory = {
        "all": {
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
                "ansible_become": False,
                "hotspot_ctl": f"{tmp_path}/{{{{ inventory_hostname }}}}/hotspotctl",
                "hotspot_config_path": f"{tmp_path}/{{{{ inventory_hostname }}}}/hotspot.toml",
                "hotspot_config_owner": "root",
                "hotspot_config_group": "root",
                "hotspot_configure_command": "true",
                "hotspot_reload_command": f"sh -c 'echo reload >> {tmp_path}/{HOST}/reloads'",
                "hotspot_health_retries": 2,
                "hotspot_health_delay": 1,
            }
        }
    }  # fmt: skip
    (tmp_path / "local.yml").write_text(yaml.safe_dump(inventory))
    return tmp_path


def playbook(fleet: Path, *extra: str) -> subprocess.CompletedProcess:
    """Run site.yml on the three libraries of the fleet fixture's inventory copy."""
    hosts = json.dumps({"hotspot_hosts": ":".join(HOSTS)})
    argv = [str(PLAYBOOK), "-i", str(fleet / "inventory" / "hosts.yml"), "-i", str(fleet / "local.yml"),
            "site.yml", "--skip-tags", "package,services", "-e", hosts, *extra]  # fmt: skip
    return run(argv)


def set_inventory(fleet: Path, host: str, key: str, value) -> None:
    """Change one library's value in the inventory copy, e.g. ("garut", "uplink.down", "fast")."""
    path = fleet / "inventory" / "hosts.yml"
    inventory = yaml.safe_load(path.read_text())
    for group in inventory["all"]["children"].values():
        if group and host in (group.get("hosts") or {}):
            target = group["hosts"][host]
            *parents, last = key.split(".")
            for part in parents:
                target = target[part]
            target[last] = value
    path.write_text(yaml.safe_dump(inventory, allow_unicode=True))


def check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([BIN / "hotspotctl", "config", "check", path], capture_output=True, text=True)


def test_rollout_renders_validates_and_leaves_a_bad_library_untouched(fleet):
    # garut already runs a good config; its inventory now carries a bad uplink value
    garut_before = (ROOT / "docs" / "hotspot.example.toml").read_text().replace("sukabumi", "garut")
    (fleet / "garut" / "hotspot.toml").write_text(garut_before)
    set_inventory(fleet, "garut", "uplink.down", "fast")
    result = playbook(fleet, "-e", json.dumps({"hotspot_serial": [3]}))
    out = result.stdout + result.stderr
    assert result.returncode == 2, out  # the final report fails the run...
    assert "config refused by hotspotctl config check, left unchanged: garut" in out, out
    assert "uplink.down" in out, "the refusal says which key is wrong"
    # ...the bad library changed nothing and was not reloaded
    assert (fleet / "garut" / "hotspot.toml").read_text() == garut_before
    assert not (fleet / "garut" / "reloads").exists()
    # ...and the others got their config, checked, and one reload each
    for host in ("sukabumi", "desa-karangsari"):
        config = fleet / host / "hotspot.toml"
        assert check(config).returncode == 0, check(config).stderr
        assert f'id = "{host}"' in config.read_text()
        assert (fleet / host / "reloads").read_text() == "reload\n"
    assert 'quota = "200MB"' in (fleet / "desa-karangsari" / "hotspot.toml").read_text()
    assert not list(fleet.glob("*/hotspot.toml.ansible-check")), "scratch files removed"

    # run again with garut fixed: it gets its config; the others change nothing (idempotent)
    set_inventory(fleet, "garut", "uplink.down", "20mbit")
    again = playbook(fleet, "-e", json.dumps({"hotspot_serial": [3]}))
    assert again.returncode == 0, again.stdout + again.stderr
    assert 'down = "20mbit"' in (fleet / "garut" / "hotspot.toml").read_text()
    for host in ("sukabumi", "desa-karangsari"):
        assert (fleet / host / "reloads").read_text() == "reload\n", host
    assert _recap(again.stdout)["sukabumi"]["changed"] == 0

    # --check --diff: shows the change, makes none
    set_inventory(fleet, "sukabumi", "uplink.down", "30mbit")
    before = (fleet / "sukabumi" / "hotspot.toml").read_text()
    dry = playbook(fleet, "--check", "--diff")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert '-down = "10mbit"' in dry.stdout and '+down = "30mbit"' in dry.stdout, dry.stdout
    assert (fleet / "sukabumi" / "hotspot.toml").read_text() == before
    assert (fleet / "sukabumi" / "reloads").read_text() == "reload\n"


def test_a_library_failing_its_health_check_stops_the_rollout(fleet):
    # batches of 1: sukabumi, then garut (unhealthy after its change), then desa-karangsari
    (fleet / "garut" / "unhealthy").touch()
    result = playbook(fleet, "-e", json.dumps({"hotspot_serial": [1]}))
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    recap = _recap(result.stdout)
    assert recap["sukabumi"]["failed"] == 0 and (fleet / "sukabumi" / "hotspot.toml").exists()
    assert recap["garut"]["failed"] == 1, recap
    assert "desa-karangsari" not in recap, "no batch starts after a failed health check"
    assert not (fleet / "desa-karangsari" / "hotspot.toml").exists()


def _recap(stdout: str) -> dict[str, dict[str, int]]:
    """Parse PLAY RECAP lines: {host: {"ok": n, "changed": n, "failed": n, ...}}."""
    recap = {}
    for line in stdout[stdout.rfind("PLAY RECAP") :].splitlines()[1:]:
        if ":" not in line:
            continue
        host, _, counts = line.partition(":")
        recap[host.strip()] = {k: int(v) for k, v in (c.split("=") for c in counts.split())}
    return recap


def test_hq_prometheus_targets_from_the_inventory(tmp_path):
    result = run([str(PLAYBOOK), "hq.yml", "-e", f"prometheus_targets_dir={tmp_path / 'targets'}"])
    assert result.returncode == 0, result.stdout + result.stderr
    found = {}
    for path in sorted((tmp_path / "targets").glob("*.yml")):
        for group in yaml.safe_load(path.read_text()):
            for target in group["targets"]:
                found[(path.name.split("-", 1)[0], group["labels"]["library"])] = (target, group["labels"])
    target, labels = found[("hotspot", "sukabumi")]
    assert target == "10.8.0.23:9110" and labels["province"] == "Jawa Barat" and labels["district"]
    assert found[("node", "tbm-pelita")][0] == "10.8.2.3:9100"
    assert len({lib for _job, lib in found}) >= 4 and {job for job, _lib in found} == {"hotspot", "node"}
    promtool = shutil.which("promtool")
    if promtool:  # Prometheus itself accepts the files
        config = tmp_path / "prometheus.yml"
        config.write_text(yaml.safe_dump({"scrape_configs": [
            {"job_name": job, "file_sd_configs": [{"files": [str(tmp_path / "targets" / f"{job}-*.yml")]}]}
            for job in ("hotspot", "node")
        ]}))  # fmt: skip
        check = subprocess.run([promtool, "check", "config", config], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
