"""The architecture contracts (``[tool.importlinter]`` in pyproject.toml) hold, and would catch a break.

``make test`` runs these, so a change that lets the portal reach a kernel wing, or a
planner reach an applier or Redis, fails the suite, not only ``make lint``. The planted
violations run lint-imports on a copy of the tree, which shows the contracts are live
(a contract that cannot fail proves nothing).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONTRACTS = {
    c["id"]: c
    for c in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
}


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    # grimp finds the packages through sys.path: the copy's folder first, ahead of the editable install
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=root, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_contracts_are_kept():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("path", "line", "contract"),
    [
        ("gateway/model/keys.py", "import pyroute2", "model"),
        ("portal/visitor.py", "from gateway.firewall import enforce", "portal"),
        ("gateway/firewall/doctor.py", "from gateway.firewall.enforce import NftEnforcer", "planners"),
        ("gateway/shaping/diff.py", "import redis", "planners"),
        ("gateway/daemon/loop.py", "import nftables", "nftables"),
        ("gateway/daemon/metrics.py", "from pyroute2 import IPRoute", "pyroute2"),
        ("gateway/model/plans.py", "from gateway.daemon import loop", "layers"),
        ("gateway/units.py", "from gateway.model import sessions", "ground-floor"),
        ("gateway/ops/dnsmasq.py", "import structlog", "ops"),
        ("gateway/cli/access.py", "from gateway.lab import lab", "lab"),
        ("hqweb/views.py", "from gateway.model import keys", "hqweb"),
        ("hqweb/staff.py", "from portal.web import get_redis", "hqweb"),
        ("portal/visitor.py", "import hqweb.views", "portal"),
        ("gateway/daemon/loop.py", "import hqweb", "hqweb-protected"),
    ],
)
def test_a_planted_violation_breaks_its_contract(tmp_path, path, line, contract):
    for name in ("gateway", "portal", "hqweb"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    planted = tmp_path / path
    planted.write_text(planted.read_text() + f"\n{line}  # planted\n")

    result = _lint_imports(tmp_path)

    assert result.returncode != 0, result.stdout
    assert f"{CONTRACTS[contract]['name']} BROKEN" in result.stdout, result.stdout


def test_every_wing_and_ground_floor_module_is_placed():
    """A new wing or ground-floor module must be named in the contracts (else the portal could reach it)."""
    forbidden_to_portal = set(CONTRACTS["portal"]["forbidden_modules"])
    ground_floor = set(CONTRACTS["ground-floor"]["source_modules"])
    for entry in sorted((ROOT / "gateway").iterdir()):
        if entry.name.startswith("_") or entry.name == "__pycache__":
            continue
        if entry.is_dir() and (entry / "__init__.py").exists():
            name = f"gateway.{entry.name}"
            # gateway.radius: the portal checks central codes with its login (contract "radius-portal")
            assert name in forbidden_to_portal | ground_floor | {"gateway.model", "gateway.radius"}, (
                f"{name}: add it to the portal contract's forbidden_modules (or say why the portal may)"
            )
        elif entry.suffix == ".py":
            name = f"gateway.{entry.stem}"
            assert name in ground_floor, f"{name}: a ground-floor module must be in the ground-floor contract"


@pytest.mark.parametrize(
    "module",
    [
        "gateway.firewall.doctor",
        "gateway.firewall.plan",
        "gateway.shaping.plan",
        "gateway.neighbours",
        "gateway.daemon.batch",
    ],
)
def test_planners_load_no_redis_or_kernel_library(module):
    code = (
        f"import sys, {module}; "
        "print(' '.join(m for m in ('redis', 'pyroute2', 'nftables', 'gateway.firewall.enforce') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "", f"{module} loads {result.stdout.strip()}"
