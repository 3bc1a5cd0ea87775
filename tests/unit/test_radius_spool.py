"""The accounting outbox on a real Redis: each session event queued exactly once, interims in order."""

from __future__ import annotations

from gateway.model.sessions import end_session, new_session, start_session
from gateway.radius.accounting import INTERIMS, OUTBOX, SPOOLED, spool


def _statuses(r) -> list[tuple[str, str]]:
    return [(f["status"], f["sid"]) for _, f in r.xrange(OUTBOX)]


def test_spool_queues_each_event_once_and_interims_only_for_started_sessions(r):
    r.set(SPOOLED, "0-0")
    a = new_session(mac="02:00:00:00:01:01", ip="10.42.0.100", kind="admin", plan="p", now=1000.0,
                    expires_at=9000.0, down=1, up=1)  # fmt: skip
    start_session(r, a, 1000.0)
    assert spool(r, 1001.0, interim_interval=60) == 1
    assert spool(r, 1002.0, interim_interval=60) == 0  # nothing new: nothing queued twice
    assert spool(r, 1061.0, interim_interval=60) == 1  # due: one Interim-Update
    b = new_session(mac="02:00:00:00:01:02", ip="10.42.0.101", kind="admin", plan="p", now=1062.0,
                    expires_at=9000.0, down=1, up=1)  # fmt: skip
    start_session(r, b, 1062.0)
    end_session(r, a.sid, "logout", 1070.0)
    spool(r, 1200.0, interim_interval=60)
    assert _statuses(r) == [
        ("Start", a.sid), ("Interim-Update", a.sid), ("Start", b.sid), ("Stop", a.sid),
        ("Interim-Update", b.sid),
    ]  # fmt: skip
    assert r.hkeys(INTERIMS) == [b.sid]
    stop = [f for _, f in r.xrange(OUTBOX) if f["status"] == "Stop"][0]
    assert (stop["reason"], stop["duration"], stop["time"]) == ("logout", "70.0", "1070.0")


def test_switching_radius_on_accounts_from_now_not_the_whole_history(r):
    old = new_session(mac="02:00:00:00:01:03", ip="10.42.0.102", kind="admin", plan="p", now=1.0,
                      expires_at=9.0, down=1, up=1)  # fmt: skip
    start_session(r, old, 1.0)
    assert spool(r, 2.0, interim_interval=60) == 0
    assert r.xlen(OUTBOX) == 0


def test_survey_counts_are_queued_as_snapshots_only_when_they_change(r):
    from gateway.model import keys, survey
    from gateway.radius.accounting import spool_survey

    now = 1_764_000_000.0  # a fixed moment; days in Asia/Jakarta
    day = survey.day_of(now, "Asia/Jakarta").isoformat()
    r.hset(keys.survey_day(day), "reading", 4)  # counted before the survey had several questions
    for i, answers in enumerate(
        ({"purpose": "study", "gender": "female"}, {"purpose": "study"}, {"age": "16_30"})
    ):
        survey.record(r, answers, sid=f"s{i}", now=now, timezone="Asia/Jakarta", ttl=600)
    assert spool_survey(r, now, timezone="Asia/Jakarta") == 4
    assert spool_survey(r, now + 60, timezone="Asia/Jakarta") == 0  # nothing changed, nothing queued
    survey.record(r, {"purpose": "study"}, sid="s9", now=now, timezone="Asia/Jakarta", ttl=600)
    assert spool_survey(r, now + 120, timezone="Asia/Jakarta") == 1
    records = [f for _, f in r.xrange(OUTBOX)]
    assert sorted((f["question"], f["answer"], f["count"]) for f in records[:4]) == [
        ("age", "16_30", "1"),
        ("gender", "female", "1"),
        ("purpose", "reading", "4"),
        ("purpose", "study", "2"),
    ]
    assert (records[4]["question"], records[4]["answer"], records[4]["count"]) == ("purpose", "study", "3")
    assert records[4]["sid"] == f"survey-{day}-purpose-study"
    assert all(set(f) == {"status", "sid", "time", "day", "question", "answer", "count"} for f in records)
