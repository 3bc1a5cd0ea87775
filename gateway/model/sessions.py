"""Sessions: who should be online, until when, with which caps. Stored in Redis.

A session is created by the portal (voucher or free login) or by an admin
(``hotspotctl auth``) and ended by the gateway (expiry, idle, quota), the visitor
(logout), a librarian (kick) or a revoked voucher. Creating and ending are atomic
and each appends a record to the ``hs:events`` stream, from which the gateway writes
the durable session log. The kernel is never touched here: the gateway's reconcile
loop makes nftables and tc follow ``hs:sessions:online``.

Times are Unix epoch seconds (float), rates bits/s, sizes bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import redis

from gateway.model import keys, reports
from gateway.model.record import END_REASONS, Session, encode, new_session, normalize_mac

__all__ = [
    "END_REASONS",
    "Session",
    "add_late_usage",
    "end_session",
    "get_session",
    "get_sessions",
    "new_session",
    "normalize_mac",
    "online_sessions",
    "queue_start",
    "session_for_mac",
    "start_session",
    "update_usage",
]

EVENTS_MAXLEN = 200_000  # the stream is a buffer for live readers; the JSONL file is the record


def queue_start(pipe: redis.client.Pipeline, session: Session) -> None:
    """Queue the writes that make ``session`` online on a MULTI pipeline (caller executes)."""
    pipe.hset(keys.session(session.sid), mapping=session.to_redis())
    pipe.sadd(keys.ONLINE, session.sid)
    pipe.set(keys.session_by_mac(session.mac), session.sid)
    pipe.xadd(keys.EVENTS, session.record("start"), maxlen=EVENTS_MAXLEN, approximate=True)


def start_session(r: redis.Redis, session: Session, now: float) -> Session:
    """Make ``session`` the device's online session, ending any other one it had ("replaced")."""
    previous = session_for_mac(r, session.mac)
    if previous is not None and previous.sid != session.sid:
        end_session(r, previous.sid, "replaced", now)
    with r.pipeline(transaction=True) as pipe:
        queue_start(pipe, session)
        pipe.execute()
    return session


def get_session(r: redis.Redis, sid: str) -> Session | None:
    """Return the session ``sid`` (online or ended), or None."""
    data = r.hgetall(keys.session(sid))
    return Session.from_redis(_str_dict(data)) if data else None


def get_sessions(r: redis.Redis, sids: Sequence[str]) -> list[Session | None]:
    """Return the sessions ``sids`` in order (None for one that does not exist), in one round trip."""
    with r.pipeline(transaction=False) as pipe:
        for sid in sids:
            pipe.hgetall(keys.session(sid))
        found = pipe.execute()
    return [Session.from_redis(_str_dict(data)) if data else None for data in found]


def session_for_mac(r: redis.Redis, mac: str) -> Session | None:
    """Return the online session of the device ``mac``, or None."""
    sid = r.get(keys.session_by_mac(normalize_mac(mac)))
    if not sid:
        return None
    session = get_session(r, _str(sid))
    return session if session is not None and session.state == "online" else None


def online_sessions(r: redis.Redis) -> list[Session]:
    """Return every online session (the gateway's desired state), oldest first."""
    sids = sorted(_str(s) for s in r.smembers(keys.ONLINE))
    if not sids:
        return []
    found = get_sessions(r, sids)
    return sorted((s for s in found if s and s.state == "online"), key=lambda s: (s.started_at, s.sid))


def end_session(
    r: redis.Redis,
    sid: str,
    reason: str,
    now: float,
    *,
    bytes_up: int | None = None,
    bytes_down: int | None = None,
) -> Session | None:
    """End session ``sid`` with ``reason``; return it ended, or None if it was not online.

    Atomic (WATCH/MULTI): of two callers ending the same session at once, one wins and
    only one "end" record is written. The same transaction adds the session to the
    report counters and its bytes to its voucher's use (quota across the voucher's sessions).
    """
    if reason not in END_REASONS:
        raise ValueError(f"unknown end reason {reason!r}")
    key = keys.session(sid)
    salt = reports.report_salt(r)

    def end(pipe: redis.client.Pipeline) -> Session | None:
        data = pipe.hgetall(key)
        if not data:
            return None
        session = Session.from_redis(_str_dict(data))
        if session.state != "online":
            return None
        changes: dict[str, Any] = {"state": "ended", "ended_at": now, "end_reason": reason}
        if bytes_up is not None:
            changes["bytes_up"] = max(bytes_up, session.bytes_up)
        if bytes_down is not None:
            changes["bytes_down"] = max(bytes_down, session.bytes_down)
        ended = replace(session, **changes)
        by_mac = pipe.get(keys.session_by_mac(session.mac))
        code = pipe.get(keys.voucher_by_id(session.voucher_id)) if session.voucher_id else None
        pipe.multi()
        pipe.hset(key, mapping=ended.to_redis())
        pipe.srem(keys.ONLINE, sid)
        if by_mac is not None and _str(by_mac) == sid:
            pipe.delete(keys.session_by_mac(session.mac))
        pipe.xadd(keys.EVENTS, ended.record("end"), maxlen=EVENTS_MAXLEN, approximate=True)
        reports.queue_session_end(pipe, ended, salt)
        if code is not None:
            pipe.hincrby(keys.voucher(_str(code)), "bytes_used", ended.bytes_up + ended.bytes_down)
        return ended

    return r.transaction(end, key, value_from_callable=True)


def add_late_usage(r: redis.Redis, sid: str, up: int, down: int) -> Session | None:
    """Add bytes counted after session ``sid`` ended to its record and its voucher's use.

    For a session ended while the gateway could not count (it was down, or the end came
    from the portal or desk before the gateway cut the device off): the gateway reads the
    last counters when it deletes the elements. Returns the updated session, or None if it
    is not an ended session (or there is nothing to add).
    """
    up, down = max(0, up), max(0, down)
    if not up and not down:
        return None
    key = keys.session(sid)

    def add(pipe: redis.client.Pipeline) -> Session | None:
        data = pipe.hgetall(key)
        if not data:
            return None
        session = Session.from_redis(_str_dict(data))
        if session.state != "ended":
            return None
        code = pipe.get(keys.voucher_by_id(session.voucher_id)) if session.voucher_id else None
        pipe.multi()
        pipe.hincrby(key, "bytes_up", max(0, up))
        pipe.hincrby(key, "bytes_down", max(0, down))
        if code is not None:
            pipe.hincrby(keys.voucher(_str(code)), "bytes_used", max(0, up) + max(0, down))
        return replace(
            session, bytes_up=session.bytes_up + max(0, up), bytes_down=session.bytes_down + max(0, down)
        )

    return r.transaction(add, key, value_from_callable=True)


def update_usage(r: redis.Redis, usage: dict[str, tuple[int, int, float]]) -> None:
    """Write accounted bytes: ``{sid: (bytes_up, bytes_down, last_active)}`` for online sessions."""
    with r.pipeline(transaction=False) as pipe:
        for sid, (up, down, active) in usage.items():
            pipe.hset(
                keys.session(sid),
                mapping={"bytes_up": up, "bytes_down": down, "last_active": encode(active)},
            )
        pipe.execute()


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _str_dict(data: dict) -> dict[str, str]:
    return {_str(k): _str(v) for k, v in data.items()}
