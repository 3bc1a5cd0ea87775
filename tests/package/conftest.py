"""Built once per test session: the package (`make deb`), its next version (`make deb
DEB_VERSION=...`, for the upgrade tests) and a Debian 12 root (mmdebstrap, as a tarball that
each test module unpacks in ~5 s)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gateway import __version__
from gateway.lab.routeroot import make_base_tarball

ROOT = Path(__file__).resolve().parents[2]

needs_debhelper = pytest.mark.skipif(
    shutil.which("dpkg-buildpackage") is None or shutil.which("dh") is None,
    reason="dpkg-buildpackage or debhelper missing (apt-get install debhelper dpkg-dev fakeroot)",
)


NEXT_VERSION = f"{__version__}+upgrade1"  # N+1 of the upgrade tests: Debian and PEP 440 sort it after N


def make_deb(work: Path, version: str = "") -> Path:
    """`make deb` (as ``version`` if given) into ``work``; return the .deb.

    ``$HOTSPOT_TEST_DEB_DIR``: a folder of .debs already built from this tree (``make deb
    DIST=...``, with and without ``DEB_VERSION``) to use instead, while working on these tests.
    """
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    name = f"perpuseru-hotspot_{version or __version__}_{arch}.deb"
    ready = Path(os.environ.get("HOTSPOT_TEST_DEB_DIR", "/nonexistent")) / name
    if ready.exists():
        (work / "dist").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ready, work / "dist" / name)
        return work / "dist" / name
    result = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "deb", f"DEB_BUILD={work / 'build'}", f"DIST={work / 'dist'}",
         *([f"DEB_VERSION={version}"] if version else [])],
        capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return work / "dist" / name


@pytest.fixture(scope="session")
def built_next(tmp_path_factory) -> Path:
    """The same tree built as the next version (`make deb DEB_VERSION=<version>+upgrade1`)."""
    deb = make_deb(tmp_path_factory.mktemp("deb-next"), NEXT_VERSION)
    assert deb.exists(), sorted(p.name for p in deb.parent.iterdir())
    return deb


@pytest.fixture(scope="session")
def debian_root_tar(tmp_path_factory) -> Path:
    """A Debian 12 minbase root with the package's dependencies, as a tarball (mmdebstrap, ~1 min).

    ``$HOTSPOT_TEST_DEBIAN_ROOT`` names a tarball to reuse instead (it is made there if missing),
    e.g. across runs while working on these tests.
    """
    if os.geteuid() != 0:
        pytest.skip("mmdebstrap --mode=root and chroot need root")
    if shutil.which("mmdebstrap") is None:
        pytest.skip("mmdebstrap missing (apt-get install it)")
    cached = os.environ.get("HOTSPOT_TEST_DEBIAN_ROOT")
    tarball = Path(cached) if cached else tmp_path_factory.mktemp("debian-root") / "bookworm.tar"
    if not tarball.exists():
        result = make_base_tarball(tarball)
        if result.returncode != 0:
            pytest.skip(f"mmdebstrap could not build a Debian root (no apt mirror?): {result.stderr[-500:]}")
    return tarball


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> dict:
    """Run `make deb` into a temporary folder; return the .deb, its listing and its unpacked tree."""
    work = tmp_path_factory.mktemp("deb")
    deb = make_deb(work)
    assert deb.exists(), sorted(p.name for p in (work / "dist").iterdir())
    listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True, check=True).stdout
    unpacked = work / "root"
    subprocess.run(["dpkg-deb", "-x", deb, unpacked], check=True)
    control = work / "control"
    subprocess.run(["dpkg-deb", "-e", deb, control], check=True)
    paths = {re.sub(r"^\./", "", line.split()[5]) for line in listing.splitlines()}
    return {"deb": deb, "paths": paths, "root": unpacked, "control": control, "build": work / "build"}
