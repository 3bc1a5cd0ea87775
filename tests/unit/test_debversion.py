"""`make deb DEB_VERSION=X`: the build copy says X in gateway.__version__ and debian/changelog."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from gateway.ops.debversion import main, set_version

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def tree(tmp_path) -> Path:
    (tmp_path / "gateway").mkdir()
    (tmp_path / "debian").mkdir()
    shutil.copyfile(ROOT / "gateway/__init__.py", tmp_path / "gateway/__init__.py")
    shutil.copyfile(ROOT / "debian/changelog", tmp_path / "debian/changelog")
    return tmp_path


def test_sets_both_versions(tree):
    set_version(tree, "0.1.0+upgrade1", when=1_800_000_000)
    assert '\n__version__ = "0.1.0+upgrade1"\n' in (tree / "gateway/__init__.py").read_text()
    changelog = (tree / "debian/changelog").read_text()
    assert changelog.startswith("perpuseru-hotspot (0.1.0+upgrade1) bookworm; urgency=medium\n")
    assert " -- PerpuSeru Hotspot team <hotspot@perpuseru.id>  Fri, 15 Jan 2027 08:00:00 +0000\n" in changelog
    assert (ROOT / "debian/changelog").read_text() in changelog, "the old entries stay below"
    if shutil.which("dpkg-parsechangelog"):
        parsed = subprocess.run(["dpkg-parsechangelog", "-l", tree / "debian/changelog", "-SVersion"],
                                capture_output=True, text=True, check=True)  # fmt: skip
        assert parsed.stdout.strip() == "0.1.0+upgrade1"


@pytest.mark.parametrize("bad", ["0.2.0~rc1", "v1", "1.0-2", "", "1..2"])
def test_refuses_what_python_or_debian_would_read_otherwise(tree, bad, monkeypatch, capsys):
    monkeypatch.chdir(tree)
    assert main([bad]) == 2
    assert "DEB_VERSION" in capsys.readouterr().err
    assert (tree / "debian/changelog").read_text() == (ROOT / "debian/changelog").read_text()
