"""The durable session log, on real Redis and real files: order, exactly once, rotation, retention."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.daemon.sessionlog import SessionLog, SessionLogWriter, to_record
from gateway.days import day_of
from gateway.model import keys
from gateway.model.sessions import end_session, new_session, start_session

JAKARTA = ZoneInfo("Asia/Jakarta")


def lines(folder):
    out = []
    for path in sorted(folder.glob("sessions-*.jsonl")):
        out += [json.loads(line) for line in path.read_text().splitlines()]
    return out


def a_session(i: int, now: float):
    return new_session(
        mac=f"02:00:00:00:01:{i:02x}", ip=f"10.42.0.{100 + i}", kind="voucher", plan="harian",
        now=now, expires_at=now + 7200, down=4_000_000, up=2_000_000, voucher_id=f"V{i:04d}",
    )  # fmt: skip


@pytest.fixture
def slog(tmp_path):
    return SessionLog(tmp_path / "log", library="sukabumi", timezone="Asia/Jakarta", retention_days=365)


def test_start_and_end_records_carry_what_the_issue_lists(r, slog):
    now = time.time()
    session = start_session(r, a_session(1, now), now)
    r.hset(keys.session(session.sid), mapping={"bytes_up": 1234, "bytes_down": 56789})
    end_session(r, session.sid, "logout", now + 61.5)
    writer = SessionLogWriter(r, slog)
    assert writer.pump(now) == 2
    start, end = lines(slog.directory)
    assert (start["event"], end["event"]) == ("start", "end")
    for record in (start, end):
        assert record["library"] == "sukabumi"
        assert record["voucher_id"] == "V0001" and record["plan"] == "harian"
        assert record["mac"] == "02:00:00:00:01:01" and record["ip"] == "10.42.0.101"
        assert record["sid"] == session.sid and record["kind"] == "voucher"
        assert record["time"].endswith("+07:00")  # the library's zone
    assert (end["bytes_up"], end["bytes_down"], end["duration"], end["reason"]) == (
        1234,
        56789,
        61.5,
        "logout",
    )
    assert end["ts"] == pytest.approx(now + 61.5, abs=0.01)
    assert (start["reason"], start["duration"]) == ("", 0.0)
    assert writer.pump(now) == 0 and writer.lag() == 0


def test_a_restarted_writer_neither_loses_nor_repeats(r, slog):
    now = time.time()
    sessions = [start_session(r, a_session(i, now), now) for i in range(5)]
    SessionLogWriter(r, slog).pump(now)
    for s in sessions[:3]:
        end_session(r, s.sid, "expired", now + 10)
    # a new process (after a restart) finds its place on disk
    assert SessionLogWriter(r, slog).pump(now) == 3
    assert SessionLogWriter(r, slog).pump(now) == 0
    ids = [rec["id"] for rec in lines(slog.directory)]
    assert len(ids) == len(set(ids)) == 8
    assert ids == [entry_id for entry_id, _ in r.xrange(keys.EVENTS)]


def test_a_torn_last_line_is_cut_and_written_again(r, slog):
    now = time.time()
    for i in range(3):
        start_session(r, a_session(i, now), now)
    writer = SessionLogWriter(r, slog)
    writer.pump(now)
    path = next(slog.directory.glob("sessions-*.jsonl"))
    whole = path.read_bytes()
    last_line = whole.splitlines(keepends=True)[-1]
    # as if the process died (kill -9, power cut) half-way through writing the last record
    path.write_bytes(whole[: -len(last_line)] + last_line[:40])
    assert SessionLogWriter(r, slog).pump(now) == 1
    assert path.read_bytes() == whole


def test_files_rotate_at_the_librarys_midnight(r, slog):
    # entries added at 23:59:59.5 and 00:00:00.5 Jakarta time (16:59:59.5 UTC)
    before = datetime(2026, 11, 24, 23, 59, 59, 500000, JAKARTA)
    after = datetime(2026, 11, 25, 0, 0, 0, 500000, JAKARTA)
    for moment in (before, after):
        ms = int(moment.timestamp() * 1000)
        r.xadd(keys.EVENTS, {"event": "start", "time": str(moment.timestamp()), "sid": "x"}, id=f"{ms}-0")
    SessionLogWriter(r, slog).pump(after.timestamp())
    names = sorted(p.name for p in slog.directory.glob("sessions-*.jsonl"))
    assert names == ["sessions-2026-11-24.jsonl", "sessions-2026-11-25.jsonl"]
    assert day_of(before.timestamp(), "UTC") == date(2026, 11, 24)


def test_retention_deletes_old_days_only(r, slog):
    slog.directory.mkdir(parents=True)
    for day in ("2025-11-23", "2025-11-24", "2025-11-25", "2026-11-24"):
        (slog.directory / f"sessions-{day}.jsonl").write_text("")
    (slog.directory / "gateway.log").write_text("not ours")
    removed = slog.prune(date(2026, 11, 24))
    assert sorted(p.name for p in removed) == ["sessions-2025-11-23.jsonl"]
    assert (slog.directory / "gateway.log").exists()


def test_the_position_survives_retention_deleting_every_file(r, slog):
    now = time.time()
    start_session(r, a_session(1, now), now)
    SessionLogWriter(r, slog).pump(now)
    for _day, path in slog.files():
        path.unlink()
    assert SessionLogWriter(r, slog).pump(now) == 0  # the old record is not logged twice


def test_to_record_passes_unknown_fields_through():
    record = to_record(
        "1764003600000-0", {"event": "start", "time": "1764003600", "ip6": "fd00::5"}, "lab", JAKARTA
    )
    assert record == {
        "id": "1764003600000-0", "library": "lab", "event": "start",
        "time": "2025-11-25T00:00:00+07:00", "ts": 1764003600.0, "ip6": "fd00::5",
    }  # fmt: skip


WRITER = textwrap.dedent(
    """
    import sys, time
    from gateway.model.store import connect
    from gateway.daemon.sessionlog import SessionLog, SessionLogWriter
    r = connect(sys.argv[1])
    writer = SessionLogWriter(r, SessionLog(sys.argv[2], library="lab"), batch=7)
    print("ready", flush=True)
    while True:
        writer.pump(time.time())
    """
)


def test_kill_9_of_the_writer_loses_and_repeats_nothing(r, redis_url, slog):
    """A real process copying a busy stream is killed with SIGKILL three times."""
    now = time.time()
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    added = 0
    for _round in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, redis_url, str(slog.directory)],
            stdout=subprocess.PIPE, env=env, text=True,
        )  # fmt: skip
        try:
            assert proc.stdout.readline().strip() == "ready"
            deadline = time.monotonic() + 0.3
            while time.monotonic() < deadline:  # events keep coming while it writes
                for i in range(20):
                    s = start_session(r, a_session(i, now), now)
                    end_session(r, s.sid, "logout", now)
                    added += 2
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            proc.stdout.close()
    SessionLogWriter(r, slog).pump(now)
    ids = [rec["id"] for rec in lines(slog.directory)]
    assert len(ids) == len(set(ids))
    assert ids == [entry_id for entry_id, _ in r.xrange(keys.EVENTS, count=added + 10)]
    assert len(ids) >= added


def test_a_full_disk_loses_and_doubles_nothing(r, slog, monkeypatch):
    """ENOSPC part-way through a write, then at fsync: each file is cut back, records wait in Redis.

    (The disk filling up for real, on a small filesystem under the running gateway, is
    tests/lab/test_faults.py; here the failures are injected at exact points.)"""
    now = time.time()
    writer = SessionLogWriter(r, slog)
    start_session(r, a_session(0, now), now)
    assert writer.pump(now) == 1
    path = next(slog.directory.glob("sessions-*.jsonl"))
    before = path.read_bytes()
    for i in range(1, 6):
        start_session(r, a_session(i, now), now)
    real_write, real_fsync = os.write, os.fsync
    budget = {"bytes": 300}

    def short_write(fd, data):  # the disk takes 300 bytes, then says it is full
        if budget["bytes"] <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        taken = real_write(fd, bytes(data[: budget["bytes"]]))
        budget["bytes"] -= taken
        return taken

    monkeypatch.setattr(os, "write", short_write)
    with pytest.raises(OSError) as failed:
        writer.pump(now)
    assert failed.value.errno == errno.ENOSPC
    assert path.read_bytes() == before, "no half record left behind"
    monkeypatch.setattr(os, "write", real_write)

    def full_at_fsync(fd):  # delayed allocation: the write was accepted, the flush is refused
        if os.fstat(fd).st_size > len(before):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_at_fsync)
    with pytest.raises(OSError):
        writer.pump(now)
    assert path.read_bytes() == before
    assert r.xlen(keys.EVENTS) == 6, "the records wait in Redis"
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert writer.pump(now) == 5  # space is back: the backlog goes to disk once
    ids = [rec["id"] for rec in lines(slog.directory)]
    assert ids == [entry_id for entry_id, _ in r.xrange(keys.EVENTS)] and len(ids) == 6


def test_a_full_disk_after_the_first_day_keeps_that_day(r, slog, monkeypatch):
    """A batch over two days: the first day's file is written, the second fails; nothing doubles."""
    midnight = datetime(2026, 11, 25, tzinfo=JAKARTA).timestamp()
    for offset in (-2.0, -1.0, 1.0):
        ms = int((midnight + offset) * 1000)
        r.xadd(keys.EVENTS, {"event": "start", "sid": f"s{ms}", "time": str(midnight + offset)}, id=f"{ms}-0")
    real_open = os.open

    def second_day_full(path, flags, mode=0o777):
        if str(path).endswith("2026-11-25.jsonl"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, flags, mode)

    monkeypatch.setattr(os, "open", second_day_full)
    writer = SessionLogWriter(r, slog)
    with pytest.raises(OSError) as failed:
        writer.pump(midnight)
    assert getattr(failed.value, "written", None) == 2
    monkeypatch.setattr(os, "open", real_open)
    assert writer.pump(midnight) == 1
    ids = [rec["id"] for rec in lines(slog.directory)]
    assert ids == [entry_id for entry_id, _ in r.xrange(keys.EVENTS)] and len(ids) == 3


def test_a_clock_far_ahead_does_not_make_the_records_old(r, slog):
    """The router wakes up a year on (no NTP yet): nothing within retention of the newest record goes."""
    slog.directory.mkdir(parents=True)
    for day in ("2025-11-23", "2025-12-24", "2026-11-24"):
        (slog.directory / f"sessions-{day}.jsonl").write_text("")
    assert [p.name for p in slog.prune(date(2027, 11, 25))] == ["sessions-2025-11-23.jsonl"]
    assert [d.isoformat() for d, _ in slog.files()] == ["2025-12-24", "2026-11-24"]
