"""The package installed for real: dpkg in a fresh Debian 12 chroot (mmdebstrap).

The lab routers share the development machine's filesystem, so the package cannot be
installed there; a chroot made with mmdebstrap (minbase plus the package's dependencies,
from the machine's apt sources) is a real Debian root where dpkg runs the maintainer scripts
as on a router, only without systemd (the scripts skip systemctl then). Install, reinstall
(the upgrade path), an install killed half-way and recovered, remove (config, state and
session logs kept; drop-ins undone), purge (config and state gone, session logs kept).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1800),  # the package build and the Debian root: minutes each
    pytest.mark.skipif(os.geteuid() != 0, reason="dpkg in a chroot needs root"),
    pytest.mark.skipif(shutil.which("mmdebstrap") is None, reason="mmdebstrap missing (apt-get install it)"),
    pytest.mark.skipif(
        shutil.which("dpkg-buildpackage") is None or shutil.which("dh") is None,
        reason="dpkg-buildpackage or debhelper missing (apt-get install debhelper dpkg-dev fakeroot)",
    ),
]


@pytest.fixture(scope="module")
def chroot(tmp_path_factory, built, debian_root_tar):
    """A Debian 12 minbase root with the package's dependencies, and the .deb copied in."""
    root = tmp_path_factory.mktemp("chroot") / "root"
    root.mkdir()
    subprocess.run(["tar", "-C", str(root), "-xf", str(debian_root_tar)], check=True, timeout=300)
    shutil.copyfile(built["deb"], root / "tmp" / built["deb"].name)
    yield root, f"/tmp/{built['deb'].name}"
    shutil.rmtree(root, ignore_errors=True)


def inside(root: Path, *argv: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8"}
    argv_in = ["chroot", str(root), *argv]
    return subprocess.run(argv_in, capture_output=True, text=True, env=env, timeout=timeout)


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_install_upgrade_interrupt_remove_purge(chroot):
    root, deb = chroot
    # -- install: users, config, state, drop-ins, byte-compiled venv, a working hotspotctl
    out = ok(inside(root, "dpkg", "-i", deb)).stdout
    assert "PerpuSeru Hotspot is configured" in out and "dpkg-reconfigure perpuseru-hotspot" in out
    passwd = (root / "etc/passwd").read_text()
    assert "\nhotspot:" in passwd and "\nhotspot-gw:" in passwd
    config = root / "etc/hotspot/hotspot.toml"
    assert config.stat().st_mode & 0o777 == 0o640
    assert 'url = "unix:///run/redis/redis-server.sock"' in config.read_text()
    for path in ("var/lib/hotspot/secret_key", "etc/dnsmasq.d/hotspot.conf", "etc/redis/hotspot.conf",
                 "etc/sysctl.d/60-hotspot.conf"):  # fmt: skip
        assert (root / path).exists(), path
    assert "include /etc/redis/hotspot.conf" in (root / "etc/redis/redis.conf").read_text()
    assert list((root / "opt/perpuseru-hotspot/lib").glob("python3*/site-packages/gateway/__pycache__/*.pyc"))
    assert "OK" in ok(inside(root, "hotspotctl", "config", "check")).stdout
    assert "0.1" in ok(inside(root, "hotspotctl", "--version")).stdout
    ok(inside(root, "dnsmasq", "--test", "--conf-file=/etc/dnsmasq.d/hotspot.conf"))

    # -- the library's edits and records survive an upgrade (same version again: dpkg's upgrade path)
    config.write_text(config.read_text().replace('id = "sukabumi"', 'id = "garut"'))
    record = root / "var/log/hotspot/sessions-2026-12-01.jsonl"
    record.write_text('{"event": "end", "sid": "s1"}\n')
    ok(inside(root, "dpkg", "-i", deb))
    assert 'id = "garut"' in config.read_text() and record.exists()

    # -- a post-install check that fails (a broken config on the router): a clear message, dpkg
    # leaves the package half-configured (the running services are not restarted), the config is
    # not touched; once fixed, `dpkg --configure -a` finishes
    good = config.read_text()
    config.write_text(good.replace('down = "10mbit"', 'down = "fast"', 1))
    failed = inside(root, "dpkg", "-i", deb)
    assert failed.returncode != 0
    assert 'uplink.down: "fast" is not a rate' in failed.stderr, failed.stderr[-2000:]
    assert "fix the config (hotspotctl config check)" in failed.stderr
    assert "half-configured" in inside(root, "dpkg-query", "-W", "-f=${Status}", "perpuseru-hotspot").stdout
    assert 'down = "fast"' in config.read_text() and record.exists()
    config.write_text(good)
    ok(inside(root, "dpkg", "--configure", "-a"))

    # -- an install killed half-way is recovered by dpkg, the router keeps its config
    proc = subprocess.Popen(["chroot", str(root), "dpkg", "-i", deb], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    time.sleep(1.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    inside(root, "dpkg", "--configure", "-a")  # what the admin runs after an interrupted dpkg
    ok(inside(root, "dpkg", "-i", deb))
    assert ok(inside(root, "dpkg-query", "-W", "-f=${Status}", "perpuseru-hotspot")).stdout == (
        "install ok installed"
    )
    assert 'id = "garut"' in config.read_text()
    ok(inside(root, "hotspotctl", "config", "check"))

    # -- remove: the drop-ins go, config, state and session logs stay, no venv left behind
    ok(inside(root, "dpkg", "-r", "perpuseru-hotspot"))
    assert not (root / "opt/perpuseru-hotspot").exists(), "prerm removed the .pyc files dpkg did not ship"
    for path in ("etc/dnsmasq.d/hotspot.conf", "etc/redis/hotspot.conf", "etc/sysctl.d/60-hotspot.conf"):
        assert not (root / path).exists(), path
    assert "hotspot.conf" not in (root / "etc/redis/redis.conf").read_text()
    assert config.exists() and (root / "var/lib/hotspot/secret_key").exists() and record.exists()

    # -- purge: config and state gone, the session logs never
    out = ok(inside(root, "dpkg", "-P", "perpuseru-hotspot")).stdout
    assert "session logs stay" in out
    assert not (root / "etc/hotspot").exists() and not (root / "var/lib/hotspot").exists()
    assert record.read_text() == '{"event": "end", "sid": "s1"}\n'
