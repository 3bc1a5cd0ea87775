"""`hotspotctl sessions` and `hotspotctl logs` read what the session-log writer wrote."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import datetime, timedelta

from click.testing import CliRunner

from gateway.cli import cli
from gateway.daemon.sessionlog import SessionLog, SessionLogWriter
from gateway.model.sessions import end_session, new_session, start_session


def run(config_path, *args):
    return CliRunner().invoke(cli, ["--config", str(config_path), *args], catch_exceptions=False)


def visit(r, i, now, minutes=None):
    s = new_session(
        mac=f"02:00:00:00:01:{i:02x}", ip=f"10.42.0.{100 + i}", kind="voucher", plan="harian",
        now=now + i, expires_at=now + 7200, down=4_000_000, up=2_000_000, voucher_id=f"V{i}",
    )  # fmt: skip
    start_session(r, s, now)
    if minutes is not None:
        r.hset(f"hs:session:{s.sid}", mapping={"bytes_up": 1000 * i, "bytes_down": 5000 * i})
        end_session(r, s.sid, "logout", now + 60 * minutes)
    return s


def test_sessions_json_csv_and_table(r, config, config_path):
    now = time.time() - 3600  # every session started and ended in the last hour
    visit(r, 1, now, minutes=30)
    visit(r, 2, now, minutes=5)
    ongoing = visit(r, 3, now)
    SessionLogWriter(r, SessionLog.from_config(config)).pump(now)

    result = run(config_path, "sessions", "--since", "2h", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [row["voucher_id"] for row in rows] == ["V1", "V2", "V3"]
    assert rows[0]["duration"] == 1799.0 and rows[0]["bytes_down"] == 5000 and rows[0]["reason"] == "logout"
    assert rows[2]["sid"] == ongoing.sid and rows[2]["ended_at"] == ""
    assert {row["library"] for row in rows} == {"sukabumi"}

    result = run(config_path, "sessions", "--since", "3h", "--csv")
    parsed = list(csv.DictReader(io.StringIO(result.output)))
    assert [row["mac"] for row in parsed] == ["02:00:00:00:01:01", "02:00:00:00:01:02", "02:00:00:00:01:03"]

    result = run(config_path, "sessions", "--since", "2h", "--mac", "02-00-00-00-01-02")
    assert result.exit_code == 0 and "V2" in result.output and "V1" not in result.output

    tomorrow = (datetime.now() + timedelta(days=2)).date().isoformat()  # whatever the zone
    result = run(config_path, "sessions", "--since", tomorrow, "--until", f"{tomorrow} 23:00", "--json")
    assert json.loads(result.output) == []


def test_sessions_rejects_bad_times_with_one_line(config_path):
    result = run(config_path, "sessions", "--since", "last tuesday")
    assert result.exit_code == 2 and "is not a time" in result.output
    result = run(config_path, "sessions", "--since", "today", "--until", "yesterday")
    assert result.exit_code == 2 and "is not after" in result.output


def test_logs_tail_and_json(r, config, config_path):
    now = time.time()
    for i in range(1, 4):
        visit(r, i, now, minutes=1)
    SessionLogWriter(r, SessionLog.from_config(config)).pump(now)
    result = run(config_path, "logs", "-n", "2", "--json")
    records = [json.loads(line) for line in result.output.splitlines()]
    assert [(rec["event"], rec["voucher_id"]) for rec in records] == [("start", "V3"), ("end", "V3")]
    result = run(config_path, "logs", "-n", "1")
    assert "end" in result.output and "logout" in result.output and "02:00:00:00:01:03" in result.output


def test_logs_follow_prints_new_records_as_they_happen(r, config_path):
    import select
    import subprocess
    import sys
    from pathlib import Path

    ctl = Path(sys.executable).parent / "hotspotctl"
    proc = subprocess.Popen(
        [ctl, "--config", config_path, "logs", "-f", "-n", "0", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # it reads new records only (from "$"): wait until it blocks on the stream, however slow
        # the machine is to start it, before writing one
        deadline = time.monotonic() + 60
        # ("b" in flags: blocked right now; "cmd" alone is the last command, also between calls)
        while not any(
            c.get("cmd", "").startswith("xread") and "b" in c.get("flags", "") for c in r.client_list()
        ):
            assert proc.poll() is None and time.monotonic() < deadline, "logs -f never waited on the stream"
            time.sleep(0.05)
        s = visit(r, 4, time.time())
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "logs -f printed nothing within 30 s of the record"
        line = proc.stdout.readline()
        record = json.loads(line)
        assert (record["event"], record["sid"], record["library"]) == ("start", s.sid, "sukabumi")
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


def test_sessions_include_records_not_on_disk_yet(r, config, config_path):
    now = time.time() - 600
    visit(r, 1, now, minutes=1)
    SessionLogWriter(r, SessionLog.from_config(config)).pump(now)
    visit(r, 2, now, minutes=2)  # the gateway has not copied these yet
    rows = json.loads(run(config_path, "sessions", "--since", "1h", "--json").output)
    assert [(row["voucher_id"], row["reason"]) for row in rows] == [("V1", "logout"), ("V2", "logout")]


def test_errors_are_one_line_with_a_meaningful_exit_code(config_path):
    import subprocess
    import sys
    from pathlib import Path

    ctl = str(Path(sys.executable).parent / "hotspotctl")
    for args, code in (
        (["sessions", "--mac", "nope"], 2),
        (["nonsense"], 2),
        (["sessions", "--since", "today", "--until", "yesterday"], 2),
    ):
        result = subprocess.run([ctl, "--config", config_path, *args], capture_output=True, text=True)
        assert result.returncode == code, (args, result.stderr)
        assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("hotspotctl: "), (
            result.stderr
        )
    broken = config_path.with_name("broken.toml")
    broken.write_text("[library]\nid = 'x'\n")
    result = subprocess.run([ctl, "--config", broken, "sessions"], capture_output=True, text=True)
    assert result.returncode == 2 and all(
        line.startswith(f"{broken}: ") for line in result.stderr.splitlines()
    )
