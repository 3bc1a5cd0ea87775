"""Accounting to the real FreeRADIUS + PostgreSQL at the lab's HQ, through a day-long outage and a
router power cut: ``radacct`` must match the router's session log exactly."""

from __future__ import annotations

import signal
import time

import pytest

from gateway.daemon.sessionlog import SessionLog
from gateway.lab.probe import admit, wait_for
from gateway.model import keys, survey
from gateway.model.sessions import end_session, new_session, start_session
from gateway.radius.accounting import OUTBOX

pytestmark = pytest.mark.lab

REASONS = ("logout", "expired", "idle", "quota", "kicked", "replaced")
CAUSES = {
    "logout": "User-Request", "expired": "Session-Timeout", "idle": "Idle-Timeout",
    "quota": "Session-Timeout", "kicked": "Admin-Reset", "replaced": "NAS-Request",
}  # fmt: skip


def _rows(hq, sids: list[str]) -> dict[str, tuple]:
    wanted = ",".join(f"'{sid}'" for sid in sids)
    out = hq.sql(
        "SELECT acctsessionid, acctinputoctets, acctoutputoctets, acctsessiontime, acctterminatecause, "
        "extract(epoch FROM acctstarttime)::bigint, extract(epoch FROM acctstoptime)::bigint, realm "
        f"FROM radacct WHERE acctsessionid IN ({wanted}) ORDER BY acctsessionid"
    )
    rows = [line.split("|") for line in out.splitlines() if line]
    assert len(rows) == len({row[0] for row in rows}), "a session doubled in radacct"
    return {row[0]: tuple(row[1:]) for row in rows}


def test_a_live_session_is_accounted_start_interim_stop(hq_lab, gw):
    session, ack = admit(gw, hq_lab, 1)
    assert ack and ack["ok"]
    hq = hq_lab.hq
    wait_for(lambda: _rows(hq, [session.sid]), 15, "the Start at HQ")
    interval = hq_lab.config().radius.interim_interval
    gw.hset(keys.session(session.sid), mapping={"bytes_up": 1234, "bytes_down": 56789})
    # an Interim-Update carries the counters while the session runs
    wait_for(lambda: _rows(hq, [session.sid])[session.sid][1] == "56789", interval + 15, "an Interim-Update")
    end_session(gw, session.sid, "logout", time.time())
    wait_for(lambda: _rows(hq, [session.sid])[session.sid][3] == "User-Request", 15, "the Stop")
    row = _rows(hq, [session.sid])[session.sid]
    assert row[6] == "lab"  # the library, as HQ knows its client


def test_hq_down_for_a_day_and_a_power_cut_lose_and_double_nothing(hq_lab, gw):
    r, hq = gw, hq_lab.hq
    wait_for(lambda: r.xlen(OUTBOX) == 0, 30, "the outbox to be empty before the outage")
    hq_lab.stop("freeradius")
    try:
        hq_lab.stop("gateway", signal.SIGKILL)
        # a simulated day while HQ is away: one session an hour, each with its own end reason
        day = time.time() - 86400
        sids = []
        for i in range(24):
            t0 = day + i * 3600
            session = new_session(
                mac=f"02:00:00:00:99:{i:02x}", ip=f"10.42.0.{120 + i}", kind="admin", plan="harian",
                now=t0, expires_at=t0 + 3600, down=4_000_000, up=2_000_000,
            )  # fmt: skip
            start_session(r, session, t0)
            down = 5 * 2**32 + 12345 if i == 7 else 1_000_000 * i + 17  # one past 4 GiB: Gigawords
            r.hset(keys.session(session.sid), mapping={"bytes_up": 1000 * i + 3, "bytes_down": down})
            end_session(r, session.sid, REASONS[i % len(REASONS)], t0 + 600 + i)
            sids.append(session.sid)
        hq_lab.start("gateway")  # spools the day; HQ does not answer, so everything waits
        wait_for(lambda: r.xlen(OUTBOX) >= 48, 30, "the day's Start and Stop records in the outbox")
        hq_lab.stop("gateway", signal.SIGKILL)  # the power cut, with every record still waiting
        assert r.xlen(OUTBOX) >= 48
        assert not _rows(hq, sids)
        hq_lab.start("gateway")
    finally:
        hq_lab.start("freeradius")
    wait_for(lambda: r.xlen(OUTBOX) == 0, 90, "the outbox to drain once HQ is back")
    rows = _rows(hq, sids)
    session_log = SessionLog.from_config(hq_lab.config())
    ends = wait_for(
        lambda: (
            found
            if len(
                found := {
                    rec["sid"]: rec
                    for rec in session_log.records()
                    if rec["sid"] in sids and rec["event"] == "end"
                }
            )
            == 24
            else None
        ),
        20,
        "the session log",
    )
    assert set(rows) == set(ends)  # every session, once
    for sid, rec in ends.items():
        up, down, seconds, cause, start, stop, realm = rows[sid]
        assert (int(up), int(down)) == (rec["bytes_up"], rec["bytes_down"]), sid
        assert int(seconds) == round(rec["duration"])
        assert cause == CAUSES[rec["reason"]]
        assert abs(int(stop) - rec["ts"]) <= 1  # booked when it happened (Event-Timestamp), not when sent
        assert abs(int(start) - (rec["ts"] - rec["duration"])) <= 1
        assert realm == "lab"
    assert sum(int(row[1]) for row in rows.values()) == sum(rec["bytes_down"] for rec in ends.values())


def test_restarts_mid_replay_lose_and_double_nothing(hq_lab, gw):
    """PostgreSQL, FreeRADIUS and the router restart while a backlog replays: radacct ends up exact."""
    r, hq = gw, hq_lab.hq
    wait_for(lambda: r.xlen(OUTBOX) == 0, 30, "the outbox to be empty first")
    hq_lab.stop("freeradius")
    try:
        hq_lab.stop("gateway", signal.SIGKILL)
        start = time.time() - 3 * 3600
        sids = []
        for i in range(400):
            t0 = start + i * 20
            session = new_session(
                mac=f"02:00:00:01:{i // 256:02x}:{i % 256:02x}", ip=f"10.42.1.{i % 250 + 1}", kind="admin",
                plan="harian", now=t0, expires_at=t0 + 3600, down=4_000_000, up=2_000_000,
            )  # fmt: skip
            start_session(r, session, t0)
            r.hset(keys.session(session.sid), mapping={"bytes_up": 7 * i, "bytes_down": 1_000_003 * i})
            end_session(r, session.sid, "logout", t0 + 15)
            sids.append(session.sid)
        hq_lab.start("gateway")
        wait_for(lambda: r.xlen(OUTBOX) >= 800, 30, "the backlog in the outbox")
    finally:
        hq_lab.start("freeradius")
    wait_for(lambda: r.xlen(OUTBOX) < 700, 60, "the replay to begin")
    hq_lab.stop("postgres", signal.SIGINT)  # fast shutdown: FreeRADIUS loses its database
    hq_lab.start("postgres")
    wait_for(lambda: r.xlen(OUTBOX) < 500, 90, "the replay to go on")
    hq_lab.restart("freeradius")
    wait_for(lambda: r.xlen(OUTBOX) < 300, 90, "the replay to go on")
    hq_lab.stop("gateway", signal.SIGKILL)  # and the router loses power mid-replay
    hq_lab.start("gateway")
    wait_for(lambda: r.xlen(OUTBOX) == 0, 120, "the outbox to drain")
    rows = _rows(hq, sids)
    assert len(rows) == 400
    for i, sid in enumerate(sids):
        up, down, seconds, cause, *_ = rows[sid]
        assert (int(up), int(down), int(seconds), cause) == (7 * i, 1_000_003 * i, 15, "User-Request"), sid


def test_survey_counts_reach_hq_through_an_outage_and_a_power_cut(hq_lab, gw):
    r, hq = gw, hq_lab.hq
    tz = hq_lab.config().library.timezone
    now = time.time()
    today = survey.day_of(now, tz)
    for i, purpose in enumerate(("study", "study", "work")):
        survey.record(r, purpose, sid=f"survey-test-{now}-{i}", now=now, timezone=tz, ttl=600)
    hq_lab.stop("freeradius")
    try:
        hq_lab.restart("gateway", signal.SIGKILL)  # the restarted gateway queues the counts at once
        wait_for(
            lambda: any(f.get("status") == "Survey" for _, f in r.xrange(OUTBOX)), 20, "survey counts queued"
        )
        hq_lab.stop("gateway", signal.SIGKILL)
        survey.record(r, "study", sid=f"survey-test-{now}-x", now=now, timezone=tz, ttl=600)
        hq_lab.start("gateway")
    finally:
        hq_lab.start("freeradius")
    wanted = {k: v for k, v in survey.counts(r, today, today)[today].items() if v}

    def at_hq() -> dict[str, int]:
        out = hq.sql(
            f"SELECT answer, n FROM survey_count WHERE library = 'lab' AND day = '{today.isoformat()}'"
        )
        return {a: int(n) for a, n in (line.split("|") for line in out.splitlines() if line)}

    wait_for(lambda: r.xlen(OUTBOX) == 0 and at_hq() == wanted, 60, f"HQ's counts to be {wanted}")
    assert wanted["study"] >= 3 and wanted["work"] >= 1
    # and the survey never made a session at HQ
    assert hq.sql("SELECT count(*) FROM radacct WHERE acctsessionid LIKE 'survey-%'").strip() == "0"
