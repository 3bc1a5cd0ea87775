"""Per-session byte accounting from the tc class counters, current rates, and quota ends.

Each client class counts the Ethernet frames it sent: the LAN tree counts the
download, the IFB tree the upload. A session remembers on its Redis hash the counter
values it was last accounted at (``tc_mark_down``/``tc_mark_up``) and when
(``acct_at``); each accounting pass adds what the counters grew since, so a gateway
restart neither loses nor double-counts. A counter below its mark means the class
was created again (reboot, a deleted qdisc): it is counted from zero.

A new session's slot is never one whose class is still in the kernel (see
:func:`gateway.tc_plan.assign_slots`'s ``reserved``), so its class starts at zero
and its marks start at zero too.

Bytes are whole frames as the shaper counts them: about 4.6 % more than the data a
speed test shows (see ``docs/shaping.md``). Quotas count the same bytes.

:func:`account` is pure; :func:`write_usage` stores its result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import redis

from gateway import keys
from gateway.sessions import Session

__all__ = [
    "FIELDS",
    "Marks",
    "Usage",
    "account",
    "over_quota",
    "read_marks",
    "reset_marks",
    "write_usage",
]

# Fields the shaper keeps on a session's hash beside the Session dataclass's own.
MARK_DOWN = "tc_mark_down"
MARK_UP = "tc_mark_up"
ACCT_AT = "acct_at"
RATE_DOWN = "rate_down"
RATE_UP = "rate_up"
FIELDS = (MARK_DOWN, MARK_UP, ACCT_AT, RATE_DOWN, RATE_UP)

MIN_RATE_INTERVAL = 0.5  # seconds; shorter gaps give noisy rates and are not used for them


@dataclass(frozen=True)
class Marks:
    """The counters a session was last accounted at, and when (0 = never)."""

    down: int = 0
    up: int = 0
    at: float = 0.0


@dataclass(frozen=True)
class Usage:
    """One session's accounting result: totals, new marks, current rates (bits/s)."""

    sid: str
    bytes_down: int
    bytes_up: int
    mark_down: int
    mark_up: int
    at: float
    rate_down: float | None
    rate_up: float | None

    @property
    def total(self) -> int:
        return self.bytes_down + self.bytes_up


def _grown(counter: int, mark: int) -> int:
    return counter - mark if counter >= mark else counter


def account(
    sessions: Iterable[Session],
    counters: Mapping[int, tuple[int, int]],
    marks: Mapping[str, Marks],
    now: float,
) -> list[Usage]:
    """Return the usage of every session whose class the kernel counted (pure).

    ``counters`` maps slot -> (download bytes, upload bytes) as read from the kernel;
    ``marks`` maps session id -> :class:`Marks`. Sessions without a slot or a class
    are left out (nothing was counted for them yet).
    """
    found = []
    for s in sessions:
        if not s.slot or s.slot not in counters:
            continue
        down, up = counters[s.slot]
        mark = marks.get(s.sid, Marks())
        grew_down, grew_up = _grown(down, mark.down), _grown(up, mark.up)
        elapsed = now - mark.at
        rates = (None, None)
        if mark.at and elapsed >= MIN_RATE_INTERVAL:
            rates = (grew_down * 8 / elapsed, grew_up * 8 / elapsed)
        found.append(
            Usage(
                sid=s.sid,
                bytes_down=s.bytes_down + grew_down,
                bytes_up=s.bytes_up + grew_up,
                mark_down=down,
                mark_up=up,
                at=now,
                rate_down=rates[0],
                rate_up=rates[1],
            )
        )
    return found


def over_quota(session: Session, usage: Usage) -> bool:
    """Return whether ``usage`` uses up ``session``'s data quota (False without a quota)."""
    return bool(session.quota) and usage.total >= session.quota


def read_marks(r: redis.Redis, sids: Iterable[str]) -> dict[str, Marks]:
    """Return the accounting marks stored on each session's hash."""
    sids = list(sids)
    with r.pipeline(transaction=False) as pipe:
        for sid in sids:
            pipe.hmget(keys.session(sid), [MARK_DOWN, MARK_UP, ACCT_AT])
        rows = pipe.execute()
    marks = {}
    for sid, (down, up, at) in zip(sids, rows, strict=True):
        marks[sid] = Marks(int(float(down or 0)), int(float(up or 0)), float(at or 0))
    return marks


# HSET only a session that still exists: accounting must never resurrect a deleted hash.
_HSET_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HSET', KEYS[1], unpack(ARGV))
end
return -1
"""


def write_usage(r: redis.Redis, usages: Iterable[Usage]) -> None:
    """Store totals, marks and rates of each session (one round trip)."""
    script = r.register_script(_HSET_IF_EXISTS)
    with r.pipeline(transaction=False) as pipe:
        for u in usages:
            fields = {
                "bytes_down": u.bytes_down,
                "bytes_up": u.bytes_up,
                MARK_DOWN: u.mark_down,
                MARK_UP: u.mark_up,
                ACCT_AT: repr(round(u.at, 3)),
            }
            if u.rate_down is not None and u.rate_up is not None:
                fields[RATE_DOWN] = round(u.rate_down)
                fields[RATE_UP] = round(u.rate_up)
            args = [str(x) for pair in fields.items() for x in pair]
            script(keys=[keys.session(u.sid)], args=args, client=pipe)
        pipe.execute()


def reset_marks(pipe: redis.client.Pipeline, sid: str, now: float) -> None:
    """Queue the marks of a session that just got a fresh class (counters start at zero)."""
    pipe.hset(keys.session(sid), mapping={MARK_DOWN: 0, MARK_UP: 0, ACCT_AT: repr(round(now, 3))})
