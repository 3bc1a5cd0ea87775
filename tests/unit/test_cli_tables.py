"""``hotspotctl`` tables in an 80-column window: identifiers (codes, MACs, IPs, plan names,
accounts) are printed whole; less useful columns are left out instead, and the CLI says so."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli import cli
from gateway.cli.tables import Column, fit_table
from gateway.model.sessions import new_session, start_session
from gateway.model.vouchers import format_code

ROOT = Path(__file__).resolve().parents[2]
LONG_PLAN = "kelas-komputer-sore"


@pytest.fixture
def run(redis_url, r, tmp_path):
    text = (ROOT / "docs" / "hotspot.example.toml").read_text()
    text = text.replace('url = "redis://127.0.0.1:6379/0"', f'url = "{redis_url}"')
    text += f'\n[plans.{LONG_PLAN}]\nlabel = "Kelas komputer sore"\nduration = "3h"\n'
    text += 'down = "2mbit"\nup = "1mbit"\n'
    config = tmp_path / "hotspot.toml"
    config.write_text(text)

    def invoke(*args: str, columns: int = 80):
        return CliRunner().invoke(cli, ["--config", str(config), *args], env={"COLUMNS": str(columns)})

    return invoke


def _issue(run, plan: str, note: str = "") -> list[str]:
    import json

    result = run("voucher", "issue", "--plan", plan, "--count", "3", "--note", note, "--json")
    assert result.exit_code == 0, result.output
    return [v["code"] for v in json.loads(result.output)["vouchers"]]


def test_voucher_list_at_80_columns_keeps_codes_and_plans_whole(run):
    codes = _issue(run, LONG_PLAN, note="kelas komputer untuk ibu-ibu PKK hari Selasa sore")
    result = run("voucher", "list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, result.stdout
    for code in codes:
        assert code in result.stdout, f"{code} cut:\n{result.stdout}"
    assert all(LONG_PLAN in line for line in lines if any(c in line for c in codes)), result.stdout
    assert "…" not in result.stdout
    issued = run("voucher", "issue", "--plan", LONG_PLAN, "--count", "2")
    assert len(re.findall(r"[0-9A-Z]{4}-[0-9A-Z]{4}", issued.stdout)) == 2 and "…" not in issued.stdout


def test_clients_at_80_columns_keep_mac_ip_and_plan_whole(run, r):
    now = time.time()
    macs = [f"02:00:00:00:0a:{i:02x}" for i in range(3)]
    for i, mac in enumerate(macs):
        s = new_session(mac=mac, ip=f"10.42.0.{150 + i}", kind="voucher", plan=LONG_PLAN, now=now,
                        expires_at=now + 3600, down=2_000_000, up=1_000_000)  # fmt: skip
        start_session(r, s, now)
    result = run("clients")
    assert result.exit_code == 0, result.output
    assert max(len(line) for line in result.stdout.splitlines()) <= 80, result.stdout
    for i, mac in enumerate(macs):
        line = next(line for line in result.stdout.splitlines() if mac in line)
        assert f"10.42.0.{150 + i}" in line and LONG_PLAN in line, result.stdout
    assert "…" not in result.stdout
    assert "left out to fit 80 columns" in result.stderr
    wide = run("clients", columns=200)
    assert "left out" not in wide.stderr and "idle" in wide.stdout


def test_fit_table_leaves_out_the_least_useful_column_first():
    columns = [Column("code", key=True), Column("note", drop=1), Column("by", drop=2), Column("issued")]
    rows = [(format_code("QBAZ8XYZ"), "a long note " * 5, "cli:someone-long", "2027-01-15 06:34")]
    table, left_out = fit_table(columns, rows, 30)
    assert left_out == ["note", "by"] and [c.header for c in table.columns] == ["code", "issued"]
    assert fit_table(columns, rows, 200)[1] == []


def test_clients_show_the_librarys_clock_not_the_machines(run, r, monkeypatch):
    """``clients`` used the machine's zone while everything else uses library.timezone."""
    monkeypatch.setenv("TZ", "America/Sao_Paulo")
    time.tzset()
    try:
        started = 1_800_000_000.0 - 3600  # 14:00 in Jakarta, 04:00 in São Paulo
        s = new_session(mac="02:00:00:00:0b:01", ip="10.42.0.160", kind="voucher", plan="harian",
                        now=started, expires_at=time.time() + 3600, down=1, up=1)  # fmt: skip
        start_session(r, s, started)
        result = run("clients", columns=200)
        line = next(line for line in result.stdout.splitlines() if "02:00:00:00:0b:01" in line)
        assert "14:00" in line and "04:00" not in line, line
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
