"""Faults of a router left alone (issue 14), performed for real in the lab: the log partition
fills up, and the clock is far off after a power cut (no NTP yet), then jumps back.

The full disk is a 64 KiB tmpfs mounted as the session-log directory in the gateway's own
mount namespace (``unshare -m``): it exists only for that process and vanishes with it, and
the test reaches it through ``/proc/PID/root``. The wrong clock is libfaketime (Debian's
``faketime``) preloaded into the gateway alone, reading its time from a file the test
rewrites; the machine's clock is never touched.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.cli.access import NOT_SYNCHRONISED
from gateway.daemon.sessionlog import SessionLog
from gateway.lab.lab import Proc
from gateway.lab.probe import admit, online_from, wait_for
from gateway.model import commands, keys
from gateway.model.sessions import end_session, get_session, new_session, start_session
from gateway.model.vouchers import get_voucher, issue_batch

pytestmark = pytest.mark.lab


def ctl(lab, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "hotspotctl"), "--config", str(lab.config_path), *args],
        capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})},
    )  # fmt: skip


def metric(lab, name: str) -> float:
    text = lab.exec(lab.spec.gw, "curl", "-s", "-m", "3", "http://127.0.0.1:9110/metrics", check=True).stdout
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name)]
    return sum(values)


def warnings_of(status: subprocess.CompletedProcess) -> list[dict]:
    """Return ``hotspotctl status --json``'s warnings, but the kernel's "not synchronised" (true of
    this development machine, which runs no NTP client)."""
    found = json.loads(status.stdout)["warnings"]
    return [w for w in found if not w["message"].startswith(NOT_SYNCHRONISED)]


def heartbeat(r) -> dict:
    return json.loads(r.get(keys.GATEWAY_HEARTBEAT) or "{}")


def start_gateway(lab, argv_prefix: list[str], config_path: Path, env: dict | None = None) -> int:
    """Replace the lab's gateway by one started as ``argv_prefix + python -m gateway.daemon``
    (same name, so ``lab.stop("gateway")`` and the fixtures know it); return its PID once its
    own heartbeat is in Redis."""
    r = commands_redis(lab)
    lab.stop("gateway")
    r.delete(keys.GATEWAY_HEARTBEAT)
    proc = Proc(
        "gateway", lab.spec.gw,
        [*argv_prefix, lab.python, "-m", "gateway.daemon", "--config", str(config_path)],
        env={"HOTSPOT_CONFIG": str(config_path), "PYTHONUNBUFFERED": "1", **(env or {})},
        ready=lambda: r.exists(keys.GATEWAY_HEARTBEAT), ready_timeout=30,
    )  # fmt: skip
    return lab.start(proc)


def restore_gateway(lab, sig: int = signal.SIGTERM) -> None:
    """Stop the test's gateway and start the lab's own again, ready only once its own heartbeat is
    in Redis (a stale one would let the fixtures think it is not up yet and start a second)."""
    lab.stop("gateway", sig)
    commands_redis(lab).delete(keys.GATEWAY_HEARTBEAT)
    lab.start("gateway")


def stream_end(r) -> str:
    """Return the id of the last session record in Redis ("0-0" if none)."""
    info = r.xinfo_stream(keys.EVENTS) if r.exists(keys.EVENTS) else {}
    return str(info.get("last-generated-id", "0-0"))


def commands_redis(lab):
    from gateway.model.store import connect

    return connect(lab.config())


def session_log_in(path: Path, lab) -> list[dict]:
    config = lab.config()
    return list(SessionLog(path, library=config.library.id, timezone=config.library.timezone).records())


def test_a_full_log_partition_keeps_the_router_serving_and_loses_no_record(lab, gw):
    r = gw
    folder = lab.dir / "full-log"  # the mount point; the tmpfs over it is the gateway's alone
    folder.mkdir(exist_ok=True)
    config_path = lab.dir / "full-log.toml"
    config_path.write_text(
        lab.config_path.read_text().replace(f'log_dir = "{lab.dir}/log"', f'log_dir = "{folder}"')
    )
    config_path.chmod(0o644)
    start_id = stream_end(r)  # the tmpfs log starts where the stream is now
    script = (
        f'mount -t tmpfs -o size=64k,mode=0755 hs-full-log "{folder}" && '
        f'printf "%s\\n" "{start_id}" > "{folder}/sessions.position" && exec "$@"'
    )
    gateway_log = lab.log_dir / "gateway.log"
    offset = gateway_log.stat().st_size if gateway_log.exists() else 0

    def log_text() -> str:  # this test's gateway's lines only
        with gateway_log.open(encoding="utf-8", errors="replace") as handle:
            handle.seek(offset)
            return handle.read()

    try:
        pid = start_gateway(lab, ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"],
                            config_path)  # fmt: skip
        disk = Path(f"/proc/{pid}/root{folder}")  # the tmpfs, as the gateway sees it
        assert (disk / "sessions.position").exists(), "the small filesystem is mounted for the gateway"
        errors_before = metric(lab, "hotspot_session_log_write_errors_total")

        # fill it: only the gateway's writes will find no room
        with (disk / "filler").open("wb", buffering=0) as filler, pytest.raises(OSError) as full:
            for _ in range(1024):
                filler.write(b"\0" * 4096)
        assert full.value.errno == errno.ENOSPC

        # logins and traffic go on; the session records cannot reach the disk
        one, ack = admit(r, lab, 1)
        assert ack and ack["ok"] and online_from(lab, 1), "a phone logs in on a full disk"
        two, ack = admit(r, lab, 2)
        assert ack and ack["ok"] and online_from(lab, 2)
        kicked = ctl(lab, "kick", lab.client_mac(1))
        assert kicked.returncode == 0, kicked.stderr
        assert not online_from(lab, 1) and online_from(lab, 2)
        wait_for(lambda: metric(lab, "hotspot_session_log_write_errors_total") > errors_before,
                 what="the write-error metric to count", timeout=15)  # fmt: skip
        waiting = [entry_id for entry_id, _ in r.xrange(keys.EVENTS, f"({start_id}", "+")]
        assert len(waiting) >= 3, "start, start, end wait in Redis"
        on_disk = session_log_in(disk, lab)
        assert not on_disk or {rec["id"] for rec in on_disk} < set(waiting)
        wait_for(
            lambda: not heartbeat(r).get("session_log", {}).get("ok", True), what="the heartbeat to say it"
        )
        status = ctl(lab, "status")
        assert status.returncode == 0, "serving: a warning, not a failure"
        assert "session log" in status.stdout and "No space left on device" in status.stdout, status.stdout
        as_json = json.loads(ctl(lab, "status", "--json").stdout)
        assert [w["what"] for w in warnings_of(ctl(lab, "status", "--json"))] == ["session log"]
        assert as_json["gateway"]["session_log"]["waiting"] >= 3
        log = log_text()
        assert '"event": "session_log_write_failed"' in log and "No space left on device" in log

        # space comes back: the backlog is written, once, in order, and the warning goes away
        (disk / "filler").unlink()
        wait_for(
            lambda: len(session_log_in(disk, lab)) >= len(waiting), timeout=15, what="the backlog on disk"
        )
        records = session_log_in(disk, lab)
        assert [rec["id"] for rec in records] == [
            entry_id for entry_id, _ in r.xrange(keys.EVENTS, f"({start_id}", "+")
        ], "every record once, in stream order"
        ends = [rec for rec in records if rec["event"] == "end"]
        assert [(rec["sid"], rec["reason"]) for rec in ends] == [(one.sid, "kicked")]
        assert any(rec["sid"] == two.sid and rec["event"] == "start" for rec in records)
        for path in disk.glob("sessions-*.jsonl"):
            assert path.read_bytes().endswith(b"\n"), "no torn line left by the full disk"
        wait_for(lambda: heartbeat(r).get("session_log", {}).get("ok"), what="the heartbeat to recover")
        assert warnings_of(ctl(lab, "status", "--json")) == []
        assert '"event": "session_log_write_recovered"' in log_text()
        assert "Traceback" not in log_text()
    finally:
        restore_gateway(lab)  # its mount namespace, and the tmpfs, go with it; the lab's own catches up
        config_path.unlink(missing_ok=True)


LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
BOOT = 1_577_836_800  # 2020-01-01 00:00 UTC: where a router without a clock battery may wake up
YEAR = 365 * 86400


def faked_clock(offset_file: Path) -> dict:
    """Return the environment that runs a process on the clock ``offset_file`` says (libfaketime)."""
    if not LIBFAKETIME.exists():
        pytest.fail("libfaketime is missing: apt-get install faketime (it is in .ci/run and the Makefile)")
    return {
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME_TIMESTAMP_FILE": str(offset_file),
        "FAKETIME_CACHE_DURATION": "1",  # re-read the file every second
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",  # the clock that cannot jump stays true
        # the kernel's NTP state is the host's and knows nothing of this clock: the router's is
        # "not synchronised" until NTP answers (gateway.daemon.clock.kernel_synchronised)
        "HOTSPOT_CLOCK_SYNCHRONISED": "0",
    }


def test_a_clock_years_behind_then_ntp_keeps_sessions_vouchers_and_records_right(lab, gw):
    """The gateway runs at 2020-01-01 (libfaketime: its own clock only, from a file the test
    rewrites; monotonic time stays real), then NTP sets it: a jump of ~7 years forward."""
    r = gw
    config = lab.config()
    offset_file = lab.dir / "faketime-offset"
    offset = int(BOOT - time.time())
    offset_file.write_text(f"{offset:+d}\n")
    faked = faked_clock(offset_file)

    def faked_ctl(*args: str) -> subprocess.CompletedProcess:  # hotspotctl on the router's (wrong) clock
        return ctl(lab, *args, env=faked)

    start_id = stream_end(r)
    gateway_log = lab.log_dir / "gateway.log"
    offset_at = gateway_log.stat().st_size if gateway_log.exists() else 0
    try:
        # phone 1 is online when the power goes (the gateway is killed), with an hour left
        before, ack = admit(r, lab, 1, minutes=60)
        assert ack and ack["ok"]
        lab.stop("gateway", signal.SIGKILL)
        start_gateway(lab, [], lab.config_path, env=faked)  # the router comes back in 2020
        assert online_from(lab, 1), "the session from before the power cut is still online"
        moved = get_session(r, before.sid)
        fake_now = time.time() + offset
        assert 55 * 60 < moved.seconds_left(fake_now) <= 60 * 60, "moved onto the wrong clock, time left kept"
        status = faked_ctl("status", "--json")
        assert status.returncode == 0, status.stderr
        warnings = warnings_of(status)
        assert [w["what"] for w in warnings] == ["clock"] and "earlier than" in warnings[0]["message"]

        # under the wrong clock: phone 2 logs in, the desk issues a voucher
        fake_now = time.time() + offset
        during = new_session(
            mac=lab.client_mac(2), ip=lab.client_ip(lab.spec.client(2)) or "", kind="admin", plan="harian",
            now=fake_now, expires_at=fake_now + 3600, down=4_000_000, up=2_000_000,
        )  # fmt: skip
        start_session(r, during, fake_now)
        ack = commands.request(r, "authorize", 5, sid=during.sid)
        assert ack and ack["ok"] and online_from(lab, 2)
        [voucher] = issue_batch(r, config.plans["harian"], 1, now=fake_now, issued_by="desk")
        time.sleep(2)

        # NTP answers: the clock jumps forward by ~7 years
        offset_file.write_text("+0\n")
        wait_for(lambda: heartbeat(r).get("clock", {}).get("jumped"), timeout=15, what="the jump seen")
        now = time.time()
        assert online_from(lab, 1) and online_from(lab, 2), "nobody is cut off by the jump"
        for session, left in ((before, 60 * 60), (during, 3600)):
            current = get_session(r, session.sid)
            assert current.state == "online", "not expired by the jump"
            assert left - 10 * 60 < current.seconds_left(now) <= left, "not endless either"
        fresh = get_voucher(r, voucher.code)
        assert fresh.state(now, config.plans["harian"]) == "unused", "the voucher issued in 2020 is valid"
        assert 29 * 86400 < fresh.valid_until - now <= 30 * 86400
        warnings = warnings_of(ctl(lab, "status", "--json"))
        assert [w["what"] for w in warnings] == ["clock"] and "jumped by" in warnings[0]["message"]

        # the sessions end: their records say how long they lasted, not years
        for i in (1, 2):
            kicked = ctl(lab, "kick", lab.client_mac(i))
            assert kicked.returncode == 0, kicked.stderr
        records = _records_once_in_order(r, config, start_id)
        ends = {rec["sid"]: rec for rec in records if rec["event"] == "end"}
        assert set(ends) == {before.sid, during.sid}
        assert ends[during.sid]["duration"] < 5 * 60
        assert ends[before.sid]["duration"] < 10 * 60, "the hours the router was off are not counted either"
        log = gateway_log.read_text()[offset_at:]
        assert '"event": "clock_behind"' in log and '"event": "clock_jumped"' in log
        assert "Traceback" not in log
    finally:
        # SIGKILL: libfaketime's sleep() can fail (EINVAL) in the gateway's clean shutdown, an
        # artefact of the preload that would leave a traceback in the lab's gateway log
        restore_gateway(lab, signal.SIGKILL)
        offset_file.unlink(missing_ok=True)


def test_a_clock_a_year_ahead_then_ntp_deletes_nothing_and_keeps_durations_sane(lab, gw):
    """The gateway wakes up a year on (libfaketime), then NTP brings the clock back. A clock ahead
    cannot be told from a long power cut: the session from before ends as expired, but its
    record ends at its expiry; session logs within retention stay; what was started meanwhile
    is moved back with the clock."""
    r = gw
    config = lab.config()
    offset_file = lab.dir / "faketime-offset"
    offset_file.write_text(f"{YEAR:+d}\n")
    faked = faked_clock(offset_file)
    old_day = (datetime.now(ZoneInfo(config.library.timezone)) - timedelta(days=200)).date()
    old_file = lab.log_dir / f"sessions-{old_day.isoformat()}.jsonl"  # within the 365 days kept
    old_file.write_text(json.dumps({"id": "1-0", "event": "start", "ts": 1.0}) + "\n")
    start_id = stream_end(r)
    try:
        before, ack = admit(r, lab, 1, minutes=60)
        assert ack and ack["ok"]
        lab.stop("gateway", signal.SIGKILL)  # the power cut
        start_gateway(lab, [], lab.config_path, env=faked)  # back, a year ahead
        wait_for(lambda: get_session(r, before.sid).state == "ended", what="the old session to end")
        assert not online_from(lab, 1)
        assert old_file.exists(), "a clock ahead does not make the library's records old"

        fake_now = time.time() + YEAR
        during = new_session(
            mac=lab.client_mac(2), ip=lab.client_ip(lab.spec.client(2)) or "", kind="admin", plan="harian",
            now=fake_now, expires_at=fake_now + 3600, down=4_000_000, up=2_000_000,
        )  # fmt: skip
        start_session(r, during, fake_now)
        # no "authorize" command: the lab's Redis keeps the true time, so its stream ids are a year
        # behind this gateway's command cursor (on a router Redis shares the wrong clock); the
        # reconcile pass applies the session anyway (level-triggered)
        wait_for(lambda: online_from(lab, 2), timeout=15, what="phone 2 online")
        time.sleep(2)
        offset_file.write_text("+0\n")  # NTP: the clock goes back a year
        wait_for(lambda: heartbeat(r).get("clock", {}).get("jumped"), timeout=15, what="the jump seen")
        current = get_session(r, during.sid)
        assert current.state == "online" and 50 * 60 < current.seconds_left(time.time()) <= 3600
        assert online_from(lab, 2), "nobody is cut off by the jump"
        warnings = warnings_of(ctl(lab, "status", "--json"))
        assert any("jumped by" in w["message"] and "back" in w["message"] for w in warnings)
        end_session(r, during.sid, "logout", time.time())  # as the portal's logout does
        wait_for(lambda: not online_from(lab, 2), timeout=15, what="phone 2 cut off")

        records = _records_once_in_order(r, config, start_id)
        ends = {rec["sid"]: rec for rec in records if rec["event"] == "end"}
        assert ends[before.sid]["reason"] == "expired" and ends[before.sid]["duration"] <= 3600, (
            "ended at its expiry, not a year later"
        )
        assert ends[during.sid]["duration"] < 5 * 60
    finally:
        restore_gateway(lab, signal.SIGKILL)  # SIGKILL: see the test above
        offset_file.unlink(missing_ok=True)
        old_file.unlink(missing_ok=True)


def _records_once_in_order(r, config, start_id: str) -> list[dict]:
    """Wait until the session log on disk holds every event after ``start_id``; return them,
    checked to be there once each and in the stream's order."""
    stream = [entry_id for entry_id, _ in r.xrange(keys.EVENTS, f"({start_id}", "+")]
    wanted = set(stream)

    def on_disk() -> list[dict]:
        return [rec for rec in SessionLog.from_config(config).records() if rec["id"] in wanted]

    wait_for(lambda: len(on_disk()) == len(stream), timeout=15, what="the records on disk")
    records = on_disk()
    assert [rec["id"] for rec in records] == stream, "each record once, in order"
    return records
