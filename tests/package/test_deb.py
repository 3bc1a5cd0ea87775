"""`make deb` builds the Debian package; lintian, dpkg-deb and the tools that read its parts check it.

The build is real (debhelper, a venv built with pip, ~2 minutes on the shared CI box), done
once per session into a temporary folder. Skipped with the reason when Debian's build tools
are missing (`make deps` installs them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway import __version__

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "opt/perpuseru-hotspot"
UNITS = (
    "hotspot-gateway.service", "hotspot-portal.service", "hotspot-upkeep.service", "hotspot-upkeep.timer",
)  # fmt: skip

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1200),  # the package build (shared fixture) takes minutes
    pytest.mark.skipif(
        shutil.which("dpkg-buildpackage") is None or shutil.which("dh") is None,
        reason="dpkg-buildpackage or debhelper missing (apt-get install debhelper dpkg-dev fakeroot)",
    ),
]


def test_changelog_version_is_the_program_version():
    first = (ROOT / "debian/changelog").read_text().splitlines()[0]
    assert first.startswith(f"perpuseru-hotspot ({__version__}) "), first


@pytest.mark.skipif(shutil.which("lintian") is None, reason="lintian missing (apt-get install lintian)")
def test_lintian_is_clean(built):
    result = subprocess.run(
        ["lintian", "--fail-on", "error,warning", "-I", str(built["deb"])],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    tags = [line for line in result.stdout.splitlines() if re.match(r"^[EWI]: ", line)]
    assert result.returncode == 0 and not tags, "\n".join(tags) or result.stderr


def test_contents(built):
    paths = built["paths"]
    for unit in UNITS:
        assert f"lib/systemd/system/{unit}" in paths, unit
    for page in ("usr/share/man/man8/hotspotctl.8.gz", "usr/share/man/man5/hotspot.toml.5.gz"):
        assert page in paths, page
    for path in (
        "usr/share/bash-completion/completions/hotspotctl", "usr/sbin/hotspotctl",
        "usr/share/perpuseru-hotspot/hotspot.example.toml", f"{PREFIX}/bin/hotspotctl",
    ):  # fmt: skip
        assert path in paths, path
    assert {
        "usr/share/doc/perpuseru-hotspot/fleet-ops.md",
        "usr/share/doc/perpuseru-hotspot/fleet-ops.md.gz",
    } & paths
    # the lab is for development only; no .pyc (postinst compiles them), no pip on a router
    assert not [p for p in paths if "/gateway/lab" in p]
    assert not [p for p in paths if "__pycache__" in p or p.endswith(".pyc")]
    assert not [p for p in paths if "/site-packages/pip/" in p]
    assert any(p.endswith("/site-packages/portal/templates/") or "/portal/templates/" in p for p in paths)


def test_no_build_folder_in_any_file(built):
    """The staged-install bug: no script's first line (no file at all) names the build folder."""
    root: Path = built["root"]
    ctl = root / PREFIX / "bin/hotspotctl"
    assert ctl.read_text().splitlines()[0] == f"#!/{PREFIX}/bin/python"
    needle = str(built["build"]).encode()
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if needle in data or (data.startswith(b"#!") and b"/debian/" in data.split(b"\n", 1)[0]):
                found.append(str(path.relative_to(root)))
    assert not found, found
    assert (root / PREFIX / "bin/python").resolve().as_posix().startswith("/usr/bin/python3")


def test_depends(built):
    fields = subprocess.run(
        ["dpkg-deb", "-f", str(built["deb"]), "Depends"], capture_output=True, text=True, check=True
    ).stdout
    for package in ("nftables", "redis-server", "dnsmasq-base", "iproute2", "python3.11"):
        assert re.search(rf"(^|[ ,]){re.escape(package)}([ ,(]|$)", fields), (package, fields)


def test_man_pages_render_without_warnings(built):
    if shutil.which("groff") is None:
        pytest.skip("groff missing (apt-get install groff-base)")
    for page, words in (
        ("usr/share/man/man8/hotspotctl.8.gz", ("voucher issue", "--plan", "EXIT STATUS", "prune-logs")),
        ("usr/share/man/man5/hotspot.toml.5.gz", ("[network]", "lan_interface", "retention_days")),
    ):
        source = subprocess.run(["zcat", built["root"] / page], capture_output=True, check=True).stdout
        env = {**os.environ, "LC_ALL": "C.UTF-8"}
        out = subprocess.run(["groff", "-man", "-Tutf8", "-ww"], input=source, capture_output=True, env=env)
        assert out.returncode == 0 and not out.stderr, out.stderr.decode()
        text = re.sub(r".\x08", "", out.stdout.decode())
        text = text.replace("\u2010", "-").replace("\u2212", "-")
        for word in words:
            assert word in text, (page, word)


def test_units_verify(built, tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("no systemd-analyze")
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    for unit in UNITS:
        shutil.copyfile(built["root"] / "lib/systemd/system" / unit, root / "etc/systemd/system" / unit)
    bindir = root / PREFIX / "bin"
    bindir.mkdir(parents=True)
    for name in ("python", "hotspotctl"):
        (bindir / name).write_text("#!/bin/sh\n")
        (bindir / name).chmod(0o755)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", f"--root={root}",
         *(f"/etc/systemd/system/{unit}" for unit in UNITS)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0 and not result.stderr, result.stderr


def test_maintainer_scripts(built):
    control: Path = built["control"]
    for name in ("postinst", "prerm", "postrm"):
        script = control / name
        assert script.exists(), name
        assert subprocess.run(["sh", "-n", script]).returncode == 0, name
    postinst = (control / "postinst").read_text()
    assert "gateway.ops.install configure" in postinst and "compileall" in postinst
    # gateway and portal are not started on a fresh install; on upgrade they keep running
    # through the unpack (no stop in preinst/prerm) and postinst try-restarts them once its
    # post-install check passed (tests/package/test_upgrade_lab.py runs it)
    assert "deb-systemd-invoke" in postinst and "hotspot-upkeep.timer" in postinst
    check, restart = postinst.index("self-check"), postinst.index("try-restart hotspot-gateway.service")
    assert check < restart, "the check comes before the restart"
    for name in ("preinst", "prerm"):
        script = control / name
        text = script.read_text() if script.exists() else ""
        assert "stop 'hotspot-gateway.service'" not in text, f"{name} stops the gateway on upgrade"
    postrm = (control / "postrm").read_text()
    purge = postrm[postrm.index("purge)") :]
    assert "rm -rf /etc/hotspot" in purge and "/var/log/hotspot" not in purge.split("echo")[0]


def test_installed_hotspotctl_runs_without_the_lab(built, tmp_path):
    """The packaged venv, unpacked here, runs `hotspotctl config check` with no gateway/lab."""
    python = built["root"] / PREFIX / "bin/python"
    result = subprocess.run(
        [python, "-c", "from gateway.cli import main; main()", "--config",
         str(ROOT / "docs/hotspot.example.toml"), "config", "check"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr
    commands = subprocess.run(
        [python, "-c", "from gateway.cli import main; main()", "--help"], capture_output=True, text=True,
        cwd=tmp_path,
    )  # fmt: skip
    assert commands.returncode == 0 and "prune-logs" in commands.stdout
    lab = subprocess.run(
        [python, "-c", "from gateway.cli import main; main()", "lab", "status"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert lab.returncode == 2 and "the lab is a development tool" in lab.stderr, lab.stderr
    # Babel keeps only the portal's languages: dates and numbers still format in both
    babel = subprocess.run(
        [python, "-c", "from babel.dates import format_date; from datetime import date; "
         "print(format_date(date(2026, 12, 1), 'full', locale='id'), '|', "
         "format_date(date(2026, 12, 1), 'full', locale='en_US'))"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert babel.returncode == 0, babel.stderr
    assert "Desember" in babel.stdout and "December" in babel.stdout, babel.stdout
    locale_data = next((built["root"] / PREFIX / "lib").glob("python3*/site-packages/babel/locale-data"))
    assert not (locale_data / "fr.dat").exists() and (locale_data / "id.dat").exists()
