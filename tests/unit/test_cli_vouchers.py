"""``hotspotctl voucher|plan|librarian|report|audit`` against a real Redis: output, JSON, exit codes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli import cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def run(redis_url, r, tmp_path):
    text = (ROOT / "docs" / "hotspot.example.toml").read_text()
    text = text.replace('url = "redis://127.0.0.1:6379/0"', f'url = "{redis_url}"')
    config = tmp_path / "hotspot.toml"
    config.write_text(text)

    def invoke(*args: str, input: str | None = None):
        return CliRunner().invoke(cli, ["--config", str(config), *args], input=input)

    return invoke


def test_issue_list_show_revoke_export(run):
    result = run("voucher", "issue", "--plan", "harian", "--count", "3", "--note", "kelas Selasa", "--json")
    assert result.exit_code == 0, result.output
    batch = json.loads(result.output)
    codes = [v["code"] for v in batch["vouchers"]]
    assert len(codes) == 3 and all(len(c) == 9 and c[4] == "-" for c in codes)
    assert batch["vouchers"][0]["issued_by"].startswith("cli:")

    listed = json.loads(run("voucher", "list", "--json").output)
    assert {v["code"] for v in listed} == set(codes) and {v["state"] for v in listed} == {"unused"}
    assert "harian" in run("voucher", "list").output

    result = run("voucher", "revoke", codes[0].lower())
    assert result.exit_code == 0 and "sessions_ended 0" in result.output
    again = run("voucher", "revoke", codes[0])
    assert again.exit_code == 1 and "already revoked" in again.output
    shown = json.loads(run("voucher", "show", codes[0], "--json").output)
    assert shown["state"] == "revoked" and [h["action"] for h in shown["history"]] == ["voucher_revoke"]

    result = run("voucher", "extend", codes[1], "--time", "1d")
    assert result.exit_code == 0 and codes[1] in result.output, result.output

    exported = list(csv.DictReader(io.StringIO(run("voucher", "export", "--csv").output)))
    assert {row["code"] for row in exported} == set(codes)
    assert {row["state"] for row in exported} == {"unused", "revoked"}
    assert len(json.loads(run("voucher", "list", "--state", "revoked", "--json").output)) == 1

    actions = [e["action"] for e in json.loads(run("audit", "--json").output)]
    assert actions == ["voucher_extend", "voucher_revoke", "voucher_issue"]
    assert not any(code.replace("-", "") in run("audit", "--json").output for code in codes)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["voucher", "issue", "--plan", "nope", "--count", "1"], 2, 'no plan named "nope"'),
        (["voucher", "issue", "--plan", "harian", "--count", "0"], 2, "0"),
        (["voucher", "issue", "--plan", "harian", "--count", "100000"], 2, "100000"),
        (["voucher", "issue", "--plan", "harian", "--count", "1", "--note", "x" * 500], 2, "note"),
        (["voucher", "revoke", "ZZZZ-ZZZZ"], 1, "no voucher"),
        (["voucher", "revoke"], 2, "give a CODE or --batch"),
        (["voucher", "extend", "ZZZZ-ZZZZ", "--time", "1 hour"], 2, "not a duration"),
        (["report", "--month", "2026-13"], 2, "not a month"),
        (["report", "--day", "yesterday"], 2, "not a day"),
        (["plan", "disable", "nope"], 2, 'no plan named "nope"'),  # bad usage, as voucher issue
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(run, r, args, code, message):
    result = run(*args)
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output
    assert r.dbsize() == 0


def test_export_defuses_spreadsheet_formulas(run):
    run("voucher", "issue", "--plan", "harian", "--count", "1", "--note", '=HYPERLINK("x")')
    [row] = list(csv.DictReader(io.StringIO(run("voucher", "export").output)))
    assert row["note"] == '\'=HYPERLINK("x")'


def test_switched_off_plan(run):
    assert "switched off" in run("plan", "disable", "kelas").output
    result = run("voucher", "issue", "--plan", "kelas", "--count", "1")
    assert result.exit_code == 1 and "plan enable kelas" in result.output
    plans = {p["name"]: p["available"] for p in json.loads(run("plan", "list", "--json").output)}
    assert plans == {"harian": True, "kelas": False, "gratis": True}
    run("plan", "enable", "kelas")
    assert run("voucher", "issue", "--plan", "kelas", "--count", "1").exit_code == 0


def test_librarian_accounts(run):
    result = run("librarian", "add", "admin", "--role", "admin", "--password-stdin", input="rahasia-admin\n")
    assert result.exit_code == 0, result.output
    result = run("librarian", "add", "siti", input="rahasia-siti\nrahasia-siti\n")  # prompted twice
    assert result.exit_code == 0, result.output
    assert run("librarian", "add", "siti", "--password-stdin", input="rahasia-2\n").exit_code == 1
    assert run("librarian", "add", "Bad Name", "--password-stdin", input="rahasia-2\n").exit_code == 2
    assert run("librarian", "add", "budi", "--password-stdin", input="short\n").exit_code == 2
    accounts = json.loads(run("librarian", "list", "--json").output)
    assert [(a["name"], a["role"]) for a in accounts] == [("admin", "admin"), ("siti", "librarian")]
    assert run("librarian", "passwd", "siti", "--password-stdin", input="baru-rahasia\n").exit_code == 0
    assert run("librarian", "passwd", "nobody", "--password-stdin", input="baru-rahasia\n").exit_code == 1
    last = run("librarian", "remove", "admin", "--yes")
    assert last.exit_code == 1 and "last admin" in last.output
    assert run("librarian", "remove", "siti", "--yes").exit_code == 0


def test_report_month_csv_and_json(run):
    run("voucher", "issue", "--plan", "harian", "--count", "2")
    result = run("report", "--csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.output)))
    assert rows[0][:3] == ["library", "period", "sessions"] and rows[-1][0] == "sukabumi"
    assert rows[-1][rows[0].index("vouchers_issued")] == "2"
    data = json.loads(run("report", "--month", "2026-11", "--json").output)
    assert data["period"] == "2026-11" and len(data["rows"]) == 30
    assert run("report", "--day", "2026-11-03").exit_code == 0


def test_report_json_and_csv_have_every_survey_question(run, r):
    from gateway.model import keys

    # one day's answers: the first survey's purpose-only field, then today's question:answer fields
    r.hset(
        keys.survey_day("2026-11-03"),
        mapping={"study": 2, "purpose:study": 1, "gender:female": 4, "age:16_30": 3},
    )
    data = json.loads(run("report", "--month", "2026-11", "--json").output)
    survey = data["totals"]["survey"]
    assert set(survey) == {"purpose", "age", "gender", "business"}
    assert survey["purpose"]["study"] == 3 and survey["gender"] == {"female": 4, "male": 0, "unsaid": 0}
    assert survey["age"]["16_30"] == 3 and survey["business"] == {"yes": 0, "no": 0}
    assert (
        data["rows"][2]["survey"]["gender"]["female"] == 4
        and data["rows"][3]["survey"]["gender"]["female"] == 0
    )
    rows = list(csv.reader(io.StringIO(run("report", "--month", "2026-11", "--csv").output)))
    assert rows[-1][rows[0].index("survey:gender:female")] == "4"
    assert rows[-1][rows[0].index("survey:business:no")] == "0"
    table = run("report", "--month", "2026-11").output
    assert "survey gender: female 4, male 0, unsaid 0" in table
