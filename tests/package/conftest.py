"""The package built once per test session (`make deb` into a temporary folder)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway import __version__

ROOT = Path(__file__).resolve().parents[2]

needs_debhelper = pytest.mark.skipif(
    shutil.which("dpkg-buildpackage") is None or shutil.which("dh") is None,
    reason="dpkg-buildpackage or debhelper missing (apt-get install debhelper dpkg-dev fakeroot)",
)


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> dict:
    """Run `make deb` into a temporary folder; return the .deb, its listing and its unpacked tree."""
    work = tmp_path_factory.mktemp("deb")
    result = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "deb", f"DEB_BUILD={work / 'build'}", f"DIST={work / 'dist'}"],
        capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    deb = work / "dist" / f"perpuseru-hotspot_{__version__}_{arch}.deb"
    assert deb.exists(), sorted(p.name for p in (work / "dist").iterdir())
    listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True, check=True).stdout
    unpacked = work / "root"
    subprocess.run(["dpkg-deb", "-x", deb, unpacked], check=True)
    control = work / "control"
    subprocess.run(["dpkg-deb", "-e", deb, control], check=True)
    paths = {re.sub(r"^\./", "", line.split()[5]) for line in listing.splitlines()}
    return {"deb": deb, "paths": paths, "root": unpacked, "control": control, "build": work / "build"}
