"""Runtime dependencies are only what the router runs: scapy is a test tool (lab traffic)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_scapy_is_a_test_dependency_only():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = [d.split(">")[0].split("=")[0].strip() for d in project["dependencies"]]
    assert "scapy" not in runtime, "nothing on the router uses scapy"
    assert any(d.startswith("scapy") for d in project["optional-dependencies"]["test"])
    sources = [p for tree in ("gateway", "portal") for p in (ROOT / tree).rglob("*.py")]
    users = [p for p in sources if "scapy" in _imports(p)]
    assert users == [], f"runtime code imports scapy: {users}"


def test_redis_commands_go_through_hiredis(redis_url):
    """hiredis is a runtime dependency for one job: redis-py packs and parses with it."""
    from gateway.model.store import connect

    r = connect(redis_url)
    r.ping()
    connection = r.connection_pool.get_connection()
    try:
        assert type(connection._command_packer).__name__ == "HiredisRespSerializer"
        assert "Hiredis" in type(connection._parser).__name__
    finally:
        r.connection_pool.release(connection)
