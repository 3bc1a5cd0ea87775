"""``hotspotctl`` as an admin types it: plain values, checked rates, no silent replacement,
public ids accepted, consistent exit codes, names checked before passwords, shell completion."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli import cli
from gateway.model.sessions import new_session, session_for_mac, start_session

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config_file(redis_url, r, tmp_path) -> Path:
    text = (ROOT / "docs" / "hotspot.example.toml").read_text()
    text = text.replace('url = "redis://127.0.0.1:6379/0"', f'url = "{redis_url}"')
    path = tmp_path / "hotspot.toml"
    path.write_text(text)
    return path


@pytest.fixture
def run(config_file):
    def invoke(*args: str, input: str | None = None):
        return CliRunner().invoke(
            cli, ["--config", str(config_file), *args], input=input, env={"COLUMNS": "200"}
        )

    return invoke


def _online(r, mac: str, ip: str, plan: str = "harian", minutes: int = 60):
    now = time.time()
    s = new_session(mac=mac, ip=ip, kind="voucher", plan=plan, now=now, expires_at=now + minutes * 60,
                    down=4_000_000, up=2_000_000)  # fmt: skip
    return start_session(r, s, now)


def test_plan_list_prints_plain_values(run):
    out = run("plan", "list").stdout
    assert "False" not in out and "True" not in out and "0h" not in out, out
    line = next(line for line in out.splitlines() if "harian" in line)
    assert "2h" in line and "30d" in line and "yes" in line and "no" in line, line
    assert json.loads(run("plan", "list", "--json").stdout)[0]["available"] is True, "JSON keeps booleans"


@pytest.mark.parametrize(("rates", "message"), [("100gbit", "more than the uplink"), ("8bit", "too slow")])
def test_limit_refuses_rates_that_make_no_sense(run, r, rates, message):
    session = _online(r, "02:00:00:00:0c:01", "10.42.0.170")
    result = run("limit", session.mac, rates)
    assert result.exit_code == 2 and message in result.stderr + result.stdout, result.output
    assert session_for_mac(r, session.mac).down == 4_000_000, "nothing changed"


def test_auth_does_not_silently_replace_a_session(run, r, monkeypatch):
    session = _online(r, "02:00:00:00:0c:02", "10.42.0.171")
    monkeypatch.setattr("gateway.cli.access._resolve", lambda ctx, mac, ip: (session.mac, session.ip))
    result = run("auth", session.mac, "--minutes", "5")
    assert result.exit_code == 1 and "already online" in result.stderr and "--replace" in result.stderr
    assert session_for_mac(r, session.mac).sid == session.sid, "the 1-hour session is kept"
    result = run("auth", session.mac, "--minutes", "5", "--replace")
    assert (
        session_for_mac(r, session.mac).sid != session.sid and session_for_mac(r, session.mac).kind == "admin"
    )


def test_voucher_show_takes_the_public_id(run):
    issued = json.loads(run("voucher", "issue", "--plan", "harian", "--count", "1", "--json").stdout)
    voucher = issued["vouchers"][0]
    by_id = run("voucher", "show", voucher["id"], "--json")
    assert by_id.exit_code == 0, by_id.output
    assert json.loads(by_id.stdout)["code"] == voucher["code"]
    assert run("voucher", "show", "nope").exit_code == 1


def test_unknown_plan_is_bad_usage_everywhere(run):
    for args in (("plan", "disable", "nope"), ("plan", "enable", "nope"),
                 ("voucher", "issue", "--plan", "nope", "--count", "1")):  # fmt: skip
        result = run(*args)
        assert result.exit_code == 2 and 'no plan named "nope"' in result.stderr, (args, result.output)


def test_librarian_add_checks_the_name_before_asking_for_a_password(run):
    result = run("librarian", "add", "Bad Name!", input="")
    assert result.exit_code == 2 and "account names are" in result.stderr
    assert "assword" not in result.stdout, "no password prompt for a name that cannot be used"
    assert run("librarian", "add", "siti", "--password-stdin", input="rahasia-siti\n").exit_code == 0
    again = run("librarian", "add", "siti", input="")
    assert again.exit_code == 1 and "already exists" in again.stderr and "assword" not in again.stdout


def _complete(config_file: Path, line: str) -> list[str]:
    words = line.split(" ")
    env = {"_HOTSPOTCTL_COMPLETE": "bash_complete", "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}
    result = CliRunner().invoke(cli, [], env=env, prog_name="hotspotctl")
    return [item.split(",", 1)[1] for item in result.output.splitlines() if "," in item]


def test_shell_completion_of_plans_macs_and_codes(run, r, config_file):
    c = f"hotspotctl --config {config_file}"
    assert _complete(config_file, f"{c} plan disable ") == ["harian", "kelas", "gratis"]
    assert _complete(config_file, f"{c} voucher issue --plan ke") == ["kelas"]
    _online(r, "02:00:00:00:0c:03", "10.42.0.172")
    assert _complete(config_file, f"{c} kick 02:00:00:00:0c") == ["02:00:00:00:0c:03"]
    assert _complete(config_file, f"{c} limit ") == ["02:00:00:00:0c:03"]
    codes = [
        v["code"]
        for v in json.loads(run("voucher", "issue", "--plan", "harian", "--count", "2", "--json").stdout)[
            "vouchers"
        ]
    ]
    assert sorted(_complete(config_file, f"{c} voucher show ")) == sorted(codes)
    assert _complete(config_file, f"{c} voucher revoke {codes[0][:3].lower()}") == [codes[0]]
