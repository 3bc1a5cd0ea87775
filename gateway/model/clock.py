"""A wall clock far off: what the router can tell about it, and moving times written under it.

A router without a battery-backed clock boots after a power cut at some old time (or,
with a bad one, ahead), runs on it until NTP answers, and then the clock jumps. Every
time in Redis is wall-clock epoch seconds, so on a jump of ``J`` seconds the times that
were written under the old clock are moved by ``J`` (:func:`shift_times`): online
sessions keep what was left of their time and their elapsed duration (their end record
says how long they really lasted), vouchers issued or first used under the old clock
keep their validity. Records already in the session log are not rewritten (they are the
library's record of what the router believed; their ``id``, Redis's own clock, never
runs backwards and keeps their order).

What can be known for sure is only that the clock is *behind*: earlier than this
program's build (:func:`build_time`) or than the last session record in Redis (Redis
keeps stream ids growing even when the clock goes back). A clock ahead cannot be told
from a long power cut; it shows when NTP brings it back (a jump). See docs/fleet-ops.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import redis

from gateway.model import keys
from gateway.model.record import Session, encode

__all__ = ["JUMP", "build_time", "floor", "is_new", "last_record_time", "not_after_records", "shift_times"]

JUMP = 60.0  # seconds the wall clock may move against the monotonic one between two looks: more is a jump
_SESSION_TIMES = ("started_at", "expires_at", "last_active")


def build_time() -> float:
    """Return when this program was built (epoch seconds): its files' time, kept by dpkg."""
    return Path(__file__).stat().st_mtime


def last_record_time(r: redis.Redis) -> float:
    """Return the time of the newest session record in Redis (0.0 if none)."""
    try:
        info = r.xinfo_stream(keys.EVENTS)
    except redis.ResponseError:
        return 0.0
    last = info.get("last-generated-id") or "0-0"
    last = last.decode() if isinstance(last, bytes) else str(last)
    return int(last.split("-", 1)[0]) / 1000


def not_after_records(r: redis.Redis, now: float, grace: float = 86400.0) -> float:
    """Return ``now``, but no later than a day after the newest session record, for deleting old data.

    A clock far ahead (before NTP) must not make recent vouchers look old enough to purge;
    a library closed for weeks only keeps them a little longer.
    """
    last = last_record_time(r)
    return min(now, last + grace) if last else now


def floor(r: redis.Redis, *, records: bool = True) -> tuple[float, str]:
    """Return the earliest time the clock can plausibly show, and what sets it (the session
    records only if ``records``)."""
    built, last = build_time(), last_record_time(r) if records else 0.0
    return (last, "the last session record") if last > built else (built, "this program's build")


def is_new(started_at: float, now: float, old_now: float, slack: float) -> bool:
    """Whether a time was written under the new clock: near ``now``, far from the old clock's ``old_now``."""
    return abs(started_at - now) <= slack < abs(started_at - old_now)


def shift_times(
    r: redis.Redis,
    sessions: Iterable[Session],
    jump: float,
    *,
    now: float,
    issued_since: float | None,
    slack: float,
) -> dict[str, int]:
    """Move the times written under the old clock by ``jump`` seconds; return what moved.

    ``now`` is the new clock's reading, ``now - jump`` the old clock's. Moved: the online
    ``sessions`` (started, expiry, last activity), except one started under the new clock
    within ``slack`` seconds, and with each its voucher's first use and end of time; and,
    unless ``issued_since`` is None, the validity of the vouchers issued since then (old
    clock). One transaction per session or voucher.
    """
    old_now = now - jump
    moved = {"sessions": 0, "vouchers": 0}
    used: set[str] = set()
    for session in sessions:
        if is_new(session.started_at, now, old_now, slack):
            continue
        key = keys.session(session.sid)
        with r.pipeline(transaction=True) as pipe:
            for name in _SESSION_TIMES:
                if getattr(session, name):
                    pipe.hincrbyfloat(key, name, jump)
            pipe.execute()
        moved["sessions"] += 1
        if session.voucher_id:
            code = r.get(keys.voucher_by_id(session.voucher_id))
            if code:
                used.add(_text(code))
    issued: set[str] = set()
    if issued_since is not None:
        issued = {_text(c) for c in r.zrangebyscore(keys.VOUCHERS, issued_since - slack, old_now + slack)}
    for code in sorted(used | issued):
        moved["vouchers"] += _shift_voucher(r, code, jump, use=code in used, issue=code in issued)
    return moved


def _shift_voucher(r: redis.Redis, code: str, jump: float, *, use: bool, issue: bool) -> int:
    """Move a voucher's first use and end of time (``use``), its issue and validity (``issue``)."""
    key = keys.voucher(code)
    times = r.hmget(key, "issued_at", "valid_until", "first_used_at", "expires_at")
    issued, valid_until, first_used, expires = (float(t or 0) for t in times)
    changes = {}
    if issue and issued:
        changes.update(issued_at=issued + jump, valid_until=valid_until + jump)
    if use and first_used:
        changes.update(first_used_at=first_used + jump, expires_at=expires + jump)
    if not changes:
        return 0
    with r.pipeline(transaction=True) as pipe:
        pipe.hset(key, mapping={k: encode(v) for k, v in changes.items()})
        if "issued_at" in changes:
            pipe.zadd(keys.VOUCHERS, {code: changes["issued_at"]})
        pipe.execute()
    return 1


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
