"""`make install` / `make uninstall` round-trip into a temporary root (DESTDIR).

The install is real apart from the steps that change the running system (apt, users,
systemctl, sysctl): a venv is created and the package installed into it, the units,
config, dnsmasq and Redis drop-ins are written, and each is checked by the tool that
will read it on a router (systemd-analyze, the venv's hotspotctl, dnsmasq --test,
redis-server).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.install.test_units import offline_root, verify

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"
KEPT = {"etc/hotspot/hotspot.toml", "var/lib/hotspot/secret_key"}

pytestmark = pytest.mark.skipif(not Path(SYSTEM_PYTHON).exists(), reason="no Debian python3")


def make(target: str, destdir: Path, *extra: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["make", "-s", "-C", str(ROOT), target, f"DESTDIR={destdir}", *extra],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def tree(root: Path) -> set[str]:
    """Return every file and link under ``root`` (relative), the venv excluded."""
    found = set()
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("opt/perpuseru-hotspot/"):
            continue
        if path.is_file() or path.is_symlink():
            found.add(rel)
    return found


@pytest.fixture
def destdir(tmp_path):
    root = tmp_path / "router"
    (root / "etc/redis").mkdir(parents=True)
    shutil.copyfile(ROOT / "tests/install/redis.conf", root / "etc/redis/redis.conf")
    return root


def test_install_then_uninstall_round_trip(destdir, tmp_path):
    redis_conf_before = (destdir / "etc/redis/redis.conf").read_text()
    out = make("install", destdir).stdout
    assert "Next steps:" in out and "systemctl enable --now hotspot-gateway hotspot-portal" in out
    installed = tree(destdir)
    for path in (
        "etc/hotspot/hotspot.toml", "etc/hotspot/hotspot.toml.example",
        "etc/systemd/system/hotspot-gateway.service", "etc/systemd/system/hotspot-portal.service",
        "etc/dnsmasq.d/hotspot.conf", "etc/redis/hotspot.conf", "etc/sysctl.d/60-hotspot.conf",
        "etc/bash_completion.d/hotspotctl", "usr/local/bin/hotspotctl", "var/lib/hotspot/secret_key",
    ):  # fmt: skip
        assert path in installed, path
    assert (destdir / "var/log/hotspot").is_dir() and (destdir / "etc/hotspot/branding").is_dir()
    config = destdir / "etc/hotspot/hotspot.toml"
    assert config.stat().st_mode & 0o777 == 0o640
    assert 'url = "unix:///run/redis/redis-server.sock"' in config.read_text()
    assert (destdir / "var/lib/hotspot/secret_key").stat().st_mode & 0o777 == 0o640
    assert (destdir / "etc/redis/redis.conf").read_text().endswith("include /etc/redis/hotspot.conf\n")

    # the staged scripts name the router's path, not the staging folder (issue 14)
    ctl = destdir / "opt/perpuseru-hotspot/bin/hotspotctl"
    assert ctl.read_text().splitlines()[0] == "#!/opt/perpuseru-hotspot/bin/python"
    staged = [p for p in (destdir / "opt/perpuseru-hotspot/bin").iterdir()
              if p.is_file() and not p.is_symlink() and str(destdir).encode() in p.read_bytes()]  # fmt: skip
    assert not staged, staged
    assert str(destdir) not in (destdir / "opt/perpuseru-hotspot/pyvenv.cfg").read_text()

    # the venv works: its hotspotctl checks the installed config with the daemons' loader
    # (through its python: the script's first line names /opt/perpuseru-hotspot, not here)
    python = destdir / "opt/perpuseru-hotspot/bin/python"
    check = subprocess.run(
        [python, "-c", "from gateway.cli import main; main()", "--config", config, "config", "check"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert check.returncode == 0 and "OK" in check.stdout, check.stderr
    for module in ("gateway.daemon", "portal"):
        helped = subprocess.run([python, "-m", module, "--help"], capture_output=True, text=True)
        assert helped.returncode == 0, helped.stderr

    # the lab does not ship to routers: not in the venv, its command says so, and a missing
    # /etc/hotspot/hotspot.toml is reported (exit 2), never replaced by a lab config
    site = subprocess.run(
        [python, "-c", "import gateway, pathlib; print(pathlib.Path(gateway.__file__).parent)"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    ).stdout.strip()  # fmt: skip
    assert site.startswith(str(destdir)) and (Path(site) / "firewall/rules/hotspot.nft").exists()
    assert not (Path(site) / "lab").exists()
    # staged, the script's first line names the router's venv: run it with the staged python
    lab = subprocess.run([python, ctl, "lab", "status"], capture_output=True, text=True, cwd=tmp_path)
    assert lab.returncode == 2 and "the lab is a development tool" in lab.stderr, lab.stderr
    assert "Traceback" not in lab.stderr
    env = {"PATH": "/usr/bin:/bin"}  # no $HOTSPOT_CONFIG
    if Path("/etc/hotspot/hotspot.toml").exists():  # a machine with a real install: use a missing path
        env["HOTSPOT_CONFIG"] = str(tmp_path / "missing.toml")
    missing = subprocess.run([python, ctl, "status"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert missing.returncode == 2 and "no config at" in missing.stderr, missing.stderr
    assert "Traceback" not in missing.stderr and "lab" not in missing.stderr.split(";")[0]

    # the installed units verify, with their ExecStart in the installed venv
    # (the venv's python links to /usr/bin/python3, which --root would look up inside the root)
    root = offline_root(tmp_path, unit_dir=destdir / "etc/systemd/system")
    for name in ("python", "hotspotctl"):
        shutil.copyfile(
            destdir / "opt/perpuseru-hotspot/bin" / name, root / "opt/perpuseru-hotspot/bin" / name
        )
    result = verify(root)
    assert result.returncode == 0 and not result.stderr, result.stderr

    # dnsmasq accepts the drop-in
    dns = subprocess.run(
        ["dnsmasq", "--test", f"--conf-file={destdir / 'etc/dnsmasq.d/hotspot.conf'}"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert dns.returncode == 0, dns.stderr
    assert (
        'dhcp-option=114,"http://10.42.0.1:8080/api/captive"'
        in (destdir / "etc/dnsmasq.d/hotspot.conf").read_text()
    )

    # a second install keeps the admin's edits and changes nothing else
    config.write_text(config.read_text().replace('id = "sukabumi"', 'id = "garut"'))
    make("install", destdir)
    assert 'id = "garut"' in config.read_text()
    assert tree(destdir) == installed

    out = make("uninstall", destdir).stdout
    assert "Left in place" in out and "session logs" in out
    assert tree(destdir) == KEPT | {"etc/redis/redis.conf"}
    assert (destdir / "var/log/hotspot").is_dir()
    assert (destdir / "etc/redis/redis.conf").read_text() == redis_conf_before
    assert not (destdir / "opt/perpuseru-hotspot").exists()

    make("uninstall", destdir, "PURGE=1")
    assert tree(destdir) == {"etc/redis/redis.conf"}
    assert (destdir / "var/log/hotspot").is_dir() and not (destdir / "etc/hotspot").exists()


def test_redis_dropin_gives_a_socket_and_aof(tmp_path):
    from gateway.ops.install import REDIS_DROPIN

    (tmp_path / "hotspot.conf").write_text(REDIS_DROPIN)
    sock = tmp_path / "redis.sock"
    proc = subprocess.Popen(
        ["redis-server", str(tmp_path / "hotspot.conf"), "--dir", str(tmp_path),
         "--unixsocket", str(sock), "--daemonize", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        import redis

        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        client = redis.Redis(unix_socket_path=str(sock), decode_responses=True)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
        assert client.config_get("port") == {"port": "0"}
        assert client.config_get("unixsocketperm") == {"unixsocketperm": "770"}
    finally:
        proc.terminate()
        proc.wait(10)


def test_package_configure_and_unconfigure(destdir):
    """What the Debian package's postinst (configure) and prerm (unconfigure) run, staged."""
    import sys

    def action(*argv: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "gateway.ops.install", *argv, "--destdir", str(destdir)],
            capture_output=True, text=True, cwd=ROOT, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    example = ROOT / "docs" / "hotspot.example.toml"
    out = action("configure", "--example", str(example)).stdout
    assert "dpkg-reconfigure perpuseru-hotspot" in out and "make install" not in out
    installed = tree(destdir)
    for path in (
        "etc/hotspot/hotspot.toml", "etc/hotspot/hotspot.toml.example", "etc/dnsmasq.d/hotspot.conf",
        "etc/redis/hotspot.conf", "etc/sysctl.d/60-hotspot.conf", "var/lib/hotspot/secret_key",
    ):  # fmt: skip
        assert path in installed, path
    # the package ships the units, the command and the completion: configure writes none of them
    assert not [p for p in installed if p.startswith(("etc/systemd", "usr/", "etc/bash_completion"))]
    assert not (destdir / "opt").exists()
    config = destdir / "etc/hotspot/hotspot.toml"
    config.write_text(config.read_text().replace('id = "sukabumi"', 'id = "garut"'))
    action("configure", "--example", str(example))  # an upgrade keeps the config
    assert 'id = "garut"' in config.read_text()

    action("unconfigure")
    left = tree(destdir)
    assert left == KEPT | {"etc/redis/redis.conf"}, left
    assert "include /etc/redis/hotspot.conf" not in (destdir / "etc/redis/redis.conf").read_text()
