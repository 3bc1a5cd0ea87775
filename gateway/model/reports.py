"""Reports for the program: sessions, unique devices, hours online, data, vouchers, survey.

Where the numbers come from (see ``docs/desk.md``, "Reports"):

- **Per-UTC-hour aggregates** in Redis (``hs:report:h:<YYYYMMDDHH>``, a hash of
  counters), updated by :func:`queue_session_end` inside :func:`gateway.model.sessions.end_session`'s
  transaction, so every ended session is counted exactly once, even if the gateway and
  a librarian end it at the same moment. A session counts as one session in the hour it
  started; its time online and its bytes are spread over the hours it spanned, in
  proportion. Vouchers issued and first used are counted in the transactions that issue
  and redeem them. Redis persists these (AOF) and they are small (a few hundred bytes an
  hour), so they are kept for good; the session log files stay the detailed record.
- **Unique devices** in a HyperLogLog per hour (``hs:report:dev:<hour>``) of a keyed hash
  of the device's MAC (HMAC-SHA256 with a random key made once, ``hs:report:salt``). A day
  or a month is the union of its hours (exact up to ~0.8 %). Reports never contain a MAC.
- Sessions still **online** are added on read, computed the same way up to ``now``.
- **Survey answers** are the portal's anonymous per-day counts (:mod:`gateway.model.survey`).

Days follow the library's time zone: a local day is the 24 UTC hours from its midnight.
That is exact for zones a whole number of hours from UTC (all of Indonesia: WIB, WITA,
WIT); elsewhere day boundaries are rounded down to the hour.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import redis

from gateway.config import SurveyQuestion
from gateway.model import keys, survey

__all__ = [
    "COUNTERS",
    "DayReport",
    "MonthReport",
    "Period",
    "Totals",
    "day_report",
    "device_hash",
    "hour_id",
    "local_day_hours",
    "month_report",
    "queue_counter",
    "queue_session_end",
    "report_salt",
    "session_contributions",
    "survey_counts",
]

HOUR = 3600
# counters kept per hour; "sessions_<kind>" for the session kinds of gateway.model.sessions
COUNTERS = (
    "sessions", "sessions_voucher", "sessions_free", "sessions_admin",
    "seconds", "bytes_up", "bytes_down", "vouchers_issued", "vouchers_used",
)  # fmt: skip


# -- writing (inside other modules' transactions) ------------------------------------


def hour_id(ts: float) -> str:
    """Return the UTC hour holding ``ts`` as ``YYYYMMDDHH``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%d%H")


def _hour_start(ts: float) -> float:
    return math.floor(ts / HOUR) * HOUR


def session_contributions(
    kind: str, started_at: float, ended_at: float, bytes_up: int, bytes_down: int
) -> dict[str, dict[str, int]]:
    """Return ``{hour id: {counter: amount}}`` for one session (pure).

    The session counts once in its start hour; seconds and bytes are spread over the
    hours it spanned in proportion, rounded so the parts add up exactly to the whole.
    """
    ended_at = max(ended_at, started_at)
    first = hour_id(started_at)
    out: dict[str, dict[str, int]] = {first: {"sessions": 1}}
    kind_counter = f"sessions_{kind}"
    if kind_counter in COUNTERS:
        out[first][kind_counter] = 1
    span = ended_at - started_at
    totals = {"seconds": round(span), "bytes_up": max(0, bytes_up), "bytes_down": max(0, bytes_down)}
    if span <= 0:
        for name, amount in totals.items():
            if amount:
                out[first][name] = amount
        return out

    def share(name: str, t: float) -> int:
        # cumulative share at time t: parts computed this way always add up to the total
        if t >= ended_at:
            return totals[name]
        return round(totals[name] * (t - started_at) / span)

    t = started_at
    while t < ended_at:
        nxt = min(_hour_start(t) + HOUR, ended_at)
        bucket = out.setdefault(hour_id(t), {})
        for name in totals:
            amount = share(name, nxt) - share(name, t)
            if amount:
                bucket[name] = bucket.get(name, 0) + amount
        t = nxt
    return out


def report_salt(r: redis.Redis) -> bytes:
    """Return the key for device hashes, making it (once, race-free) if there is none."""
    salt = r.get(keys.REPORT_SALT)
    if salt is None:
        r.set(keys.REPORT_SALT, secrets.token_hex(32), nx=True)
        salt = r.get(keys.REPORT_SALT)
    return salt.encode() if isinstance(salt, str) else salt


def device_hash(salt: bytes, mac: str) -> str:
    """Return the report's name for device ``mac``: a keyed hash, not reversible to the MAC."""
    return hmac.new(salt, mac.encode(), hashlib.sha256).hexdigest()[:20]


def queue_session_end(pipe: redis.client.Pipeline, session, salt: bytes) -> None:
    """Queue the report counters of an ended ``session`` on a MULTI pipeline (caller executes)."""
    parts = session_contributions(
        session.kind, session.started_at, session.ended_at, session.bytes_up, session.bytes_down
    )
    for hour, counters in parts.items():
        for name, amount in counters.items():
            pipe.hincrby(keys.report_hour(hour), name, amount)
    pipe.pfadd(keys.report_devices(hour_id(session.started_at)), device_hash(salt, session.mac))


def queue_counter(pipe: redis.client.Pipeline | redis.Redis, name: str, now: float, amount: int = 1) -> None:
    """Queue ``amount`` onto counter ``name`` (e.g. "vouchers_issued") of the hour holding ``now``."""
    if name not in COUNTERS:
        raise ValueError(f"unknown report counter {name!r}")
    pipe.hincrby(keys.report_hour(hour_id(now)), name, amount)


# -- reading -------------------------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    """What happened in a period. ``devices`` is unique devices; ``survey`` is the survey's answers,
    ``{question: {answer: count}}`` (:mod:`.survey`)."""

    sessions: int = 0
    sessions_voucher: int = 0
    sessions_free: int = 0
    sessions_admin: int = 0
    seconds: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    vouchers_issued: int = 0
    vouchers_used: int = 0
    devices: int = 0
    survey: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    @property
    def hours(self) -> float:
        return self.seconds / HOUR

    @property
    def bytes_total(self) -> int:
        return self.bytes_up + self.bytes_down


@dataclass(frozen=True)
class Period:
    """One row of a report: a label (an hour "14:00" or a day "2026-11-03") and its totals."""

    label: str
    start: float
    totals: Totals


@dataclass(frozen=True)
class DayReport:
    day: date
    totals: Totals
    hours: list[Period]  # 24 rows (23 or 25 on a daylight-saving change)


@dataclass(frozen=True)
class MonthReport:
    month: str  # "YYYY-MM"
    totals: Totals
    days: list[Period]


def local_day_hours(day: date, tz: ZoneInfo) -> list[float]:
    """Return the UTC hour starts that make up the local ``day`` in ``tz``."""
    start = datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).timestamp()
    first = _hour_start(start)
    return [first + i * HOUR for i in range(round((end - first) / HOUR))]


def survey_counts(
    r: redis.Redis, days: Iterable[date], questions: Iterable[SurveyQuestion] = ()
) -> list[survey.Counts]:
    """Return the survey answers of each of the consecutive ``days`` (:func:`.survey.counts`)."""
    days = list(days)
    if not days:
        return []
    found = survey.counts(r, days[0], days[-1], questions)
    return [found[day] for day in days]


def _live_parts(online: Iterable, now: float) -> dict[str, dict[str, int]]:
    merged: dict[str, dict[str, int]] = {}
    for s in online:
        for hour, counters in session_contributions(
            s.kind, s.started_at, now, s.bytes_up, s.bytes_down
        ).items():
            bucket = merged.setdefault(hour, {})
            for name, amount in counters.items():
                bucket[name] = bucket.get(name, 0) + amount
    return merged


def _sum(rows: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total = dict.fromkeys(COUNTERS, 0)
    for row in rows:
        for name in COUNTERS:
            total[name] += int(row.get(name, 0) or 0)
    return total


def _devices(r: redis.Redis, groups: list[list[str]], live: Mapping[str, set[str]]) -> list[int]:
    """Return unique devices for each group of hour ids (union of stored HLLs and live hashes)."""
    token = secrets.token_hex(6)
    positions = []
    with r.pipeline(transaction=True) as pipe:
        for i, hours in enumerate(groups):
            tmp = f"hs:report:tmp:{token}:{i}"
            pipe.pfmerge(tmp, *[keys.report_devices(h) for h in hours])
            extra = set().union(*(live.get(h, set()) for h in hours))
            if extra:
                pipe.pfadd(tmp, *sorted(extra))
            positions.append(len(pipe))
            pipe.pfcount(tmp)
            pipe.delete(tmp)
        results = pipe.execute()
    return [int(results[pos]) for pos in positions]


def _collect(
    r: redis.Redis,
    groups: list[list[str]],
    online: list,
    now: float,
    salt: bytes,
) -> list[Totals]:
    """Return the totals of each group of hour ids, with the online sessions added."""
    all_hours = sorted({h for g in groups for h in g})
    with r.pipeline(transaction=False) as pipe:
        for h in all_hours:
            pipe.hgetall(keys.report_hour(h))
        stored = dict(zip(all_hours, pipe.execute(), strict=True))
    live = _live_parts(online, now)
    live_devices: dict[str, set[str]] = {}
    for s in online:
        live_devices.setdefault(hour_id(s.started_at), set()).add(device_hash(salt, s.mac))
    devices = _devices(r, groups, live_devices)
    out = []
    for hours, count in zip(groups, devices, strict=True):
        sums = _sum([stored.get(h) or {} for h in hours] + [live.get(h, {}) for h in hours])
        out.append(Totals(**sums, devices=count))
    return out


def _with_survey(totals: Totals, survey: Mapping[str, Mapping[str, int]]) -> Totals:
    values = {f.name: getattr(totals, f.name) for f in fields(Totals)}
    values["survey"] = dict(survey)
    return Totals(**values)


def day_report(
    r: redis.Redis, day: date, tz: ZoneInfo, *, now: float, online: list | None = None,
    questions: Iterable[SurveyQuestion] = (),
) -> DayReport:  # fmt: skip
    """Return the report of local ``day``: totals and one row per hour (``online``: live sessions;
    ``questions``: the survey's, listed with zeros when nobody answered)."""
    starts = local_day_hours(day, tz)
    groups = [[hour_id(s)] for s in starts] + [[hour_id(s) for s in starts]]
    salt = report_salt(r)
    results = _collect(r, groups, online or [], now, salt)
    [answers] = survey_counts(r, [day], questions)
    rows = [
        Period(datetime.fromtimestamp(s, tz).strftime("%H:00"), s, t)
        for s, t in zip(starts, results[:-1], strict=True)
    ]
    return DayReport(day=day, totals=_with_survey(results[-1], answers), hours=rows)


def month_report(
    r: redis.Redis, year: int, month: int, tz: ZoneInfo, *, now: float, online: list | None = None,
    questions: Iterable[SurveyQuestion] = (),
) -> MonthReport:  # fmt: skip
    """Return the report of ``year``-``month`` (local days): totals and one row per day
    (``questions``: the survey's, listed with zeros when nobody answered)."""
    first = date(year, month, 1)
    days = [first + timedelta(days=i) for i in range(31) if (first + timedelta(days=i)).month == month]
    day_hours = [[hour_id(s) for s in local_day_hours(d, tz)] for d in days]
    groups = [*day_hours, [h for hours in day_hours for h in hours]]
    salt = report_salt(r)
    results = _collect(r, groups, online or [], now, salt)
    questions = list(questions)
    surveys = survey_counts(r, days, questions)
    rows = [
        Period(d.isoformat(), datetime(d.year, d.month, d.day, tzinfo=tz).timestamp(), _with_survey(t, s))
        for d, t, s in zip(days, results[:-1], surveys, strict=True)
    ]
    month_survey = survey.counts_sum(surveys, questions)
    return MonthReport(
        month=f"{year:04d}-{month:02d}", totals=_with_survey(results[-1], month_survey), days=rows
    )
