"""Reports over a seeded month of sessions on a real Redis, and the pure hour split."""

from __future__ import annotations

import csv
import io
import random
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.config import Plan
from gateway.config.survey import default_survey
from gateway.model import keys
from gateway.model.report_csv import COLUMNS, day_csv, month_csv
from gateway.model.reports import day_report, hour_id, local_day_hours, month_report, session_contributions
from gateway.model.sessions import end_session, new_session, online_sessions, start_session
from gateway.model.vouchers import issue_batch, redeem

WIB = ZoneInfo("Asia/Jakarta")
QUESTIONS = default_survey().questions
HOUR = 3600
PLAN = Plan(name="harian", label={"id": "Harian"}, duration=2 * HOUR, validity=30 * 86400, quota=None,
            down=4_000_000, up=2_000_000, weight=1.0, max_devices=1, multi_day=False)  # fmt: skip


def wib(y, m, d, hh=0, mm=0):
    return datetime(y, m, d, hh, mm, tzinfo=WIB).timestamp()


def test_hour_split_adds_up_exactly():
    start = wib(2026, 11, 3, 13, 30) + 0.4
    parts = session_contributions("voucher", start, start + 2 * HOUR + 15 * 60, 1001, 7_777_777)
    assert list(parts) == [hour_id(start), hour_id(start + HOUR), hour_id(start + 2 * HOUR)]
    assert parts[hour_id(start)]["sessions"] == 1 and parts[hour_id(start)]["sessions_voucher"] == 1
    assert sum(p.get("seconds", 0) for p in parts.values()) == 2 * HOUR + 15 * 60
    assert parts[hour_id(start)]["seconds"] == 30 * 60
    assert sum(p.get("bytes_up", 0) for p in parts.values()) == 1001
    assert sum(p.get("bytes_down", 0) for p in parts.values()) == 7_777_777
    assert "sessions" not in parts[hour_id(start + HOUR)]
    zero = session_contributions("free", start, start, 5, 0)
    assert zero == {hour_id(start): {"sessions": 1, "sessions_free": 1, "bytes_up": 5}}


def test_a_local_day_is_24_utc_hours_from_local_midnight():
    hours = local_day_hours(date(2026, 11, 3), WIB)
    assert len(hours) == 24 and hours[0] == wib(2026, 11, 3) and hour_id(hours[0]) == "2026110217"
    assert len(local_day_hours(date(2026, 3, 8), ZoneInfo("America/New_York"))) == 23


def _session(mac, start, kind="voucher"):
    return new_session(mac=mac, ip="10.42.0.100", kind=kind, plan="harian", now=start,
                       expires_at=start + 2 * HOUR, down=1, up=1)  # fmt: skip


@pytest.fixture
def seeded_month(r):
    """November 2026 at a library: sessions every day from 20 phones, vouchers, survey answers."""
    rng = random.Random(7)
    expect = {"sessions": 0, "free": 0, "seconds": 0, "down": 0, "up": 0, "macs": set(), "per_day": {}}
    for day in range(1, 31):
        n = 3 + day % 5
        day_sessions = 0
        for k in range(n):
            start = wib(2026, 11, day, 8 + k, rng.randrange(60))
            length = rng.randrange(10 * 60, 90 * 60)
            down, up = rng.randrange(10**8), rng.randrange(10**7)
            device = f"02:00:00:00:02:{rng.randrange(20):02x}"
            kind = "free" if k == 0 else "voucher"
            s = start_session(r, _session(device, start, kind), start)
            end_session(r, s.sid, "logout", start + length, bytes_up=up, bytes_down=down)
            expect["sessions"] += 1
            expect["free"] += kind == "free"
            expect["seconds"] += length
            expect["down"] += down
            expect["up"] += up
            expect["macs"].add(device)
            day_sessions += 1
        expect["per_day"][day] = day_sessions
        # purpose as the one-question survey stored it, the other questions as they are stored now
        r.hset(keys.survey_day(f"2026-11-{day:02d}"), mapping={"study": 2, "work": 1, "reading": day % 2})
        r.hset(keys.survey_day(f"2026-11-{day:02d}"), mapping={"purpose:study": 1, "gender:female": 2})
    # vouchers: 10 issued on the 3rd, 4 of them used on the 4th (a session each)
    vouchers = issue_batch(r, PLAN, 10, now=wib(2026, 11, 3, 9), issued_by="siti")
    for i, v in enumerate(vouchers[:4]):
        t = wib(2026, 11, 4, 10 + i)
        s = redeem(r, v.code, mac=f"02:00:00:00:03:{i:02x}", ip="10.42.0.150", plans={"harian": PLAN}, now=t)
        end_session(r, s.sid, "expired", t + HOUR, bytes_down=1000)
        expect["sessions"] += 1
        expect["seconds"] += HOUR
        expect["down"] += 1000
        expect["macs"].add(f"02:00:00:00:03:{i:02x}")
        expect["per_day"][4] += 1
    return expect


def test_month_report_over_a_seeded_month(r, seeded_month):
    e = seeded_month
    report = month_report(r, 2026, 11, WIB, now=wib(2026, 12, 5), questions=QUESTIONS)
    t = report.totals
    assert len(report.days) == 30 and report.days[0].label == "2026-11-01"
    assert t.sessions == e["sessions"] and t.sessions_free == e["free"]
    assert t.seconds == e["seconds"] and t.bytes_down == e["down"] and t.bytes_up == e["up"]
    assert abs(t.devices - len(e["macs"])) <= 1, "HyperLogLog is exact at this size, give or take one"
    assert t.vouchers_issued == 10 and t.vouchers_used == 4
    assert t.survey["purpose"] == {"study": 90, "work": 30, "school": 0, "reading": 15, "other": 0}
    assert t.survey["gender"] == {"female": 60, "male": 0, "unsaid": 0}
    assert t.survey["age"] == dict.fromkeys(("under_16", "16_30", "31_45", "46_59", "60_plus"), 0)
    assert list(t.survey) == ["purpose", "age", "gender", "business"]
    assert report.days[0].totals.survey["purpose"]["reading"] == 1
    assert [d.totals.sessions for d in report.days] == [e["per_day"][d] for d in range(1, 31)]
    assert sum(d.totals.devices for d in report.days) > t.devices, "a month's devices are a union"
    assert report.days[2].totals.vouchers_issued == 10 and report.days[3].totals.vouchers_used == 4

    rows = list(csv.reader(io.StringIO(month_csv(report, "lab"))))
    assert rows[0][: len(COLUMNS)] == COLUMNS and len(rows) == 32
    assert rows[0][len(COLUMNS) :][:3] == [
        "survey:purpose:study",
        "survey:purpose:work",
        "survey:purpose:school",
    ]
    assert len(rows[0]) == len(COLUMNS) + 5 + 5 + 3 + 2, "every answer of every question"
    assert rows[-1][rows[0].index("survey:gender:female")] == "60"
    assert rows[1][rows[0].index("survey:purpose:study")] == "3"
    assert rows[-1][:3] == ["lab", "2026-11", str(e["sessions"])]
    assert float(rows[-1][COLUMNS.index("hours_online")]) == pytest.approx(e["seconds"] / HOUR, abs=0.01)
    assert "02:00:00" not in month_csv(report, "lab"), "never a MAC in a report"


def test_day_report_has_hours_and_nothing_of_other_days(r, seeded_month):
    report = day_report(r, date(2026, 11, 4), WIB, now=wib(2026, 12, 5), questions=QUESTIONS)
    assert len(report.hours) == 24 and report.hours[8].label == "08:00"
    assert report.totals.sessions == seeded_month["per_day"][4]
    assert sum(h.totals.sessions for h in report.hours) == report.totals.sessions
    assert report.totals.vouchers_used == 4
    rows = list(csv.reader(io.StringIO(day_csv(report, "lab"))))
    assert len(rows) == 1 + 24 + 1 and rows[9][1] == "2026-11-04 08:00" and rows[-1][1] == "2026-11-04"
    study = rows[0].index("survey:purpose:study")
    assert rows[9][study] == "" and rows[-1][study] == "3"


def test_a_session_over_midnight_is_split_between_days(r):
    start = wib(2026, 11, 30, 23, 30)
    s = start_session(r, _session("02:00:00:00:02:01", start), start)
    end_session(r, s.sid, "logout", start + HOUR, bytes_down=600)
    nov = month_report(r, 2026, 11, WIB, now=start + 2 * HOUR).totals
    dec = month_report(r, 2026, 12, WIB, now=start + 2 * HOUR).totals
    assert (nov.sessions, nov.seconds, nov.bytes_down) == (1, 1800, 300)
    assert (dec.sessions, dec.seconds, dec.bytes_down, dec.devices) == (0, 1800, 300, 0)


def test_online_sessions_count_live_and_once(r):
    start = wib(2026, 11, 10, 9)
    s = start_session(r, _session("02:00:00:00:02:01", start), start)
    r.hset(keys.session(s.sid), mapping={"bytes_down": 5000})
    now = start + 1800
    live = day_report(r, date(2026, 11, 10), WIB, now=now, online=online_sessions(r)).totals
    assert (live.sessions, live.seconds, live.bytes_down, live.devices) == (1, 1800, 5000, 1)
    end_session(r, s.sid, "logout", now)
    after = day_report(r, date(2026, 11, 10), WIB, now=now, online=online_sessions(r)).totals
    assert (after.sessions, after.seconds, after.bytes_down, after.devices) == (1, 1800, 5000, 1)


def test_excel_csv_for_indonesian_regional_settings(r, seeded_month):
    """Opened by a double click on a PC set to Indonesian: BOM, ';', decimal commas, and the
    total below an empty line (not one more data row)."""
    report = month_report(r, 2026, 11, WIB, now=wib(2026, 12, 5), questions=QUESTIONS)
    text = month_csv(report, "lab", excel=True)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:]), delimiter=";"))
    assert rows[0][: len(COLUMNS)] == COLUMNS and len(rows) == 1 + 30 + 2
    assert rows[-2] == [] and rows[-1][:2] == ["TOTAL", "2026-11"]
    hours = rows[-1][COLUMNS.index("hours_online")]
    assert "," in hours and "." not in hours, hours
    assert all(row[0] == "lab" for row in rows[1:31]), "data rows only above the empty line"
    assert month_csv(report, "lab") == month_csv(report, "lab", excel=False), "the program's format stays"
