"""Every `hotspotctl` command that lists something answers `--json` in the lab, with JSON.

The commands are found by walking the click tree, so a new listing command is covered
as soon as it is registered; the ones the admin CLI must have (issue 8) are named too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from gateway.cli import cli

pytestmark = pytest.mark.lab

# the listings issue 8 asks for; each must exist and take --json
REQUIRED = [
    ("status",), ("clients",), ("top",), ("voucher", "list"), ("librarian", "list"), ("sessions",),
    ("report",), ("doctor",), ("config", "check"), ("logs",), ("version",), ("reload",),
]  # fmt: skip
# extra arguments some commands need to print once and return
EXTRA = {
    ("lab", "status"): ["--prefix", "{prefix}"],
    ("logs",): ["-n", "5"],
    ("sessions",): ["--since", "1d"],
}
JSON_LINES = {("logs",)}  # one JSON object per line


def json_commands(group: click.Group = cli, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Return the paths of every command with a --json option and nothing required (commands
    that act on something, like `kick MAC` or `voucher issue --plan P --count N`, are
    exercised by their own tests)."""
    found = []
    for name, command in sorted(group.commands.items()):
        here = (*path, name)
        if isinstance(command, click.Group):
            found += json_commands(command, here)
        elif any("--json" in getattr(p, "opts", []) for p in command.params) and not any(
            p.required for p in command.params
        ):
            found.append(here)
    return found


def ctl(lab, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "hotspotctl"), "--config", str(lab.config_path), *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize("path", REQUIRED, ids=" ".join)
def test_the_required_listings_take_json(path):
    assert path in json_commands(), f"hotspotctl {' '.join(path)} has no --json"


@pytest.mark.parametrize("path", json_commands(), ids=" ".join)
def test_listing_prints_json(lab, path):
    extra = [arg.format(prefix=lab.spec.prefix) for arg in EXTRA.get(path, [])]
    result = ctl(lab, *path, *extra, "--json")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    if path in JSON_LINES:
        [json.loads(line) for line in result.stdout.splitlines()]
    else:
        json.loads(result.stdout)
