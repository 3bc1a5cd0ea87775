"""The rollout over real SSH: Debian's sshd in the lab router, ansible-playbook from "HQ".

sshd (openssh-server, keys generated for the test, password logins off) listens on the
router's WAN address inside its namespace; ansible-playbook runs inside the lab's upstream
namespace, so every packet stays in the lab. Three inventory libraries reach that router:
``lab`` is its live config (rendered from the inventory, checked, put in place, the gateway
and portal reloaded with SIGHUP, health-checked with the real `hotspotctl status --json`);
``lab-b`` and ``lab-c`` render to scratch folders on it (same router, so they share its health
check). Phones online stay online with the same session all along. The package tasks are
skipped: in the lab the router's filesystem is the development machine's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import yaml

from gateway.lab.probe import admit, online_from
from gateway.lab.topology import WAN_ROUTER
from gateway.model.sessions import get_session

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = ROOT / "deploy" / "ansible"
BIN = Path(sys.executable).parent
SSH_PORT = 2222
UNREACHABLE = "192.0.2.99"  # in the lab's upstream network, but nobody has it

pytestmark = [
    pytest.mark.lab,
    pytest.mark.slow,
    pytest.mark.skipif(not (BIN / "ansible-playbook").exists(), reason="ansible-core missing"),
    pytest.mark.skipif(not Path("/usr/sbin/sshd").exists(), reason="openssh-server missing"),
]


@pytest.fixture
def sshd(lab, tmp_path):
    """Run sshd in the router's namespace on its WAN address; yield the key and known_hosts."""
    keys = tmp_path / "ssh"
    keys.mkdir()
    for name in ("host_key", "id_ed25519"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", keys / name], check=True)
    shutil.copyfile(keys / "id_ed25519.pub", keys / "authorized_keys")
    host_pub = (keys / "host_key.pub").read_text().split()
    (keys / "known_hosts").write_text(f"[{WAN_ROUTER}]:{SSH_PORT} {host_pub[0]} {host_pub[1]}\n")
    config = keys / "sshd_config"
    config.write_text(
        f"Port {SSH_PORT}\nListenAddress {WAN_ROUTER}\nHostKey {keys / 'host_key'}\n"
        f"AuthorizedKeysFile {keys / 'authorized_keys'}\nPidFile {keys / 'sshd.pid'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "UsePAM no\nStrictModes no\nSubsystem sftp /usr/lib/openssh/sftp-server\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation folder (Debian's path)
    log = (tmp_path / "sshd.log").open("w")
    proc = subprocess.Popen(
        ["ip", "netns", "exec", lab.spec.gw, "/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while b"listening" not in (tmp_path / "sshd.log").read_bytes().lower():
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "sshd.log").read_text()
            time.sleep(0.1)
        yield keys
    finally:
        proc.terminate()  # ours, by PID
        proc.wait(10)
        log.close()


def lab_inventory(lab, tmp_path: Path, keys: Path) -> Path:
    """An inventory whose library "lab" renders the lab router's own config (read from it)."""
    live = tomllib.loads(lab.config_path.read_text())
    portal = {k: v for k, v in live["portal"].items() if k != "free_plan"}
    lab_vars = {
        "library": live["library"], "network": live["network"], "dhcp": live["dhcp"],
        "uplink": live["uplink"], "portal": portal, "free_plan": live["portal"].get("free_plan", ""),
        "gateway": {**live["gateway"], "idle_timeout": "20m"},  # the change this rollout brings
        "hotspot_redis_url": live["redis"]["url"], "hotspot_state_dir": live["paths"]["state_dir"],
        "hotspot_log_dir": live["paths"]["log_dir"], "hotspot_metrics_listen": live["metrics"]["listen"],
        "hotspot_walled_garden_hosts": live["walled_garden"]["hosts"],
        "plans": list(live["plans"]), "hotspot_plan_catalogue": live["plans"],
    }  # fmt: skip
    pidfiles = lab.run_dir
    hosts = {
        "lab": {
            **lab_vars,
            "ansible_host": WAN_ROUTER,
            "hotspot_config_path": str(lab.config_path),
            # the lab's portal runs as nobody:nogroup (on a router: group hotspot, as the default)
            "hotspot_config_group": "nogroup",
            "hotspot_reload_command": f"sh -c 'kill -HUP $(head -n1 {pidfiles}/gateway.pid) "
            f"$(head -n1 {pidfiles}/portal.pid)'",
        },
    }
    for name in ("lab-b", "lab-c"):
        (tmp_path / name).mkdir()
        hosts[name] = {
            **lab_vars,
            "ansible_host": WAN_ROUTER,
            "library": {**live["library"], "id": name},
            "hotspot_config_path": str(tmp_path / name / "hotspot.toml"),
            "hotspot_reload_command": "true",
        }
    # a library whose router does not answer (nothing in the lab has this address)
    hosts["lab-gone"] = {
        **hosts["lab-c"],
        "ansible_host": UNREACHABLE,
        "library": {**live["library"], "id": "gone"},
    }
    inventory = {
        "all": {
            "children": {"libraries": {"hosts": hosts}},
            "vars": {
                "ansible_port": SSH_PORT, "ansible_user": "root",
                "ansible_ssh_private_key_file": str(keys / "id_ed25519"),
                "ansible_ssh_common_args": f"-o UserKnownHostsFile={keys / 'known_hosts'}",
                "ansible_python_interpreter": sys.executable,
                "ansible_become": False,
                "hotspot_ctl": str(BIN / "hotspotctl"),
                "hotspot_health_config": str(lab.config_path),
                "hotspot_config_owner": "root", "hotspot_config_group": "root",
                "hotspot_configure_command": "true",
                "hotspot_plan_catalogue": live["plans"],
            },
        }
    }  # fmt: skip
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory, allow_unicode=True))
    return path


def test_rollout_over_ssh_to_the_lab_router_keeps_phones_online(lab, gw, sshd, tmp_path):
    original = lab.config_path.read_text()
    sessions = []
    for i in (1, 2):
        session, ack = admit(gw, lab, i)
        assert ack and ack["ok"], ack
        sessions.append(session)
    inventory = lab_inventory(lab, tmp_path, sshd)
    env = {
        **os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"), "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
    }  # fmt: skip
    serial = json.dumps({"hotspot_serial": [1, 2]})
    argv = ["ip", "netns", "exec", lab.spec.up, str(BIN / "ansible-playbook"), "-i", str(inventory),
            "site.yml", "--skip-tags", "package,services", "-e", serial]  # fmt: skip
    gateway_log = lab.log_dir / "gateway.log"
    log_before = gateway_log.read_text() if gateway_log.exists() else ""
    try:
        started = time.monotonic()
        result = subprocess.run(argv, cwd=ANSIBLE, env=env, capture_output=True, text=True, timeout=600)
        took = time.monotonic() - started
        out = result.stdout + result.stderr
        # the last batch's router does not answer: reported, the run fails, the others are done
        recap = out.split("PLAY RECAP")[-1]
        assert result.returncode != 0 and "lab-gone" in recap and "unreachable=1" in recap, out
        for line in recap.splitlines():
            if line.startswith(("lab ", "lab-b", "lab-c")):
                assert "failed=0" in line and "unreachable=0" in line, line
        print(f"\nrollout over SSH to 3 lab libraries + 1 unreachable (serial 1, 2): {took:.1f}s")
        (ROOT / "tests" / "artifacts").mkdir(exist_ok=True)
        (ROOT / "tests" / "artifacts" / "ansible-ssh-rollout.txt").write_text(f"{took:.1f}s\n{out}")
        # the live config was rendered from the inventory, checked and reloaded, not restarted
        live = tomllib.loads(lab.config_path.read_text())
        assert live["gateway"]["idle_timeout"] == "20m" and live["library"]["id"] == "lab"
        assert (
            "Ansible managed" in lab.config_path.read_text()
            or "deploy/ansible" in lab.config_path.read_text()
        )
        deadline = time.monotonic() + 10
        while "config_reloaded" not in gateway_log.read_text()[len(log_before) :]:
            assert time.monotonic() < deadline, "the gateway reloaded its config"
            time.sleep(0.2)
        for name in ("lab-b", "lab-c"):
            assert f'id = "{name}"' in (tmp_path / name / "hotspot.toml").read_text()
        # nobody was logged out: same sessions, still online
        for i, session in zip((1, 2), sessions, strict=True):
            assert online_from(lab, i), f"phone {i} still online"
            assert get_session(gw, session.sid).end_reason in (None, ""), session.sid
        # idempotent over SSH too: a second run changes nothing and reloads nothing
        again = subprocess.run([*argv, "-l", "all:!lab-gone"], cwd=ANSIBLE, env=env, capture_output=True,
                               text=True, timeout=600)  # fmt: skip
        assert again.returncode == 0, again.stdout + again.stderr
        assert "changed=0" in again.stdout.split("PLAY RECAP")[-1].splitlines()[1], again.stdout
    finally:
        lab.config_path.write_text(original)
        subprocess.run(["kill", "-HUP", str(lab.pid("gateway")), str(lab.pid("portal"))], check=False)
