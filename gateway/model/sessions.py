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

import re
import secrets
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import redis

from gateway.model import keys, reports

__all__ = [
    "END_REASONS",
    "Session",
    "end_session",
    "get_session",
    "new_session",
    "normalize_mac",
    "online_sessions",
    "queue_start",
    "session_for_mac",
    "start_session",
    "update_usage",
]

# Why a session ended. Logged, reported and shown to the visitor.
END_REASONS = (
    "logout",   # the visitor pressed "log out"
    "expired",  # its time ran out
    "idle",     # no traffic for gateway.idle_timeout
    "quota",    # its data quota is used up
    "kicked",   # a librarian or admin ended it
    "revoked",  # its voucher was revoked
    "replaced", # the same device logged in again with another voucher
    "admin",    # the program's headquarters ended it (RADIUS Disconnect-Request)
)  # fmt: skip

EVENTS_MAXLEN = 200_000  # the stream is a buffer for live readers; the JSONL file is the record

_MAC = re.compile(r"^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$")


def normalize_mac(mac: str) -> str:
    """Return ``mac`` as lowercase ``aa:bb:cc:dd:ee:ff``; raise ValueError if it is not a MAC."""
    text = mac.strip().lower()
    if not _MAC.match(text):
        raise ValueError(f'"{mac}" is not a MAC address (e.g. "02:00:00:00:01:01")')
    digits = re.sub(r"[:-]", "", text)
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


@dataclass(frozen=True)
class Session:
    """One device's session. ``down``/``up`` are the caps in force (plan or a live limit)."""

    sid: str
    mac: str
    ip: str
    kind: str  # "voucher", "free" or "admin"
    plan: str
    voucher_id: str  # "" when not from a voucher
    started_at: float
    expires_at: float
    down: int
    up: int
    weight: float
    quota: int = 0  # bytes up+down allowed, 0 = no quota
    bytes_up: int = 0
    bytes_down: int = 0
    last_active: float = 0.0
    state: str = "online"  # "online" or "ended"
    ended_at: float = 0.0
    end_reason: str = ""
    slot: int = 0  # the gateway's tc class number, 0 = not assigned yet
    idle_timeout: int = 0  # seconds; 0 = gateway.idle_timeout (HQ's Idle-Timeout sets it)
    message: str = ""  # shown to the visitor once online (HQ's Reply-Message)
    user: str = ""  # a central session's RADIUS User-Name, for its accounting (not in the session log)

    def seconds_left(self, now: float) -> float:
        return max(0.0, self.expires_at - now)

    def bytes_left(self) -> int | None:
        """Return the quota left in bytes, or None when the session has no quota."""
        if not self.quota:
            return None
        return max(0, self.quota - self.bytes_up - self.bytes_down)

    def to_redis(self) -> dict[str, str]:
        return {k: _encode(v) for k, v in asdict(self).items()}

    @classmethod
    def from_redis(cls, data: dict[str, str]) -> Session:
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in data:
                values[f.name] = _decode(f.type, data[f.name])
        return cls(**values)

    def record(self, event: str) -> dict[str, str]:
        """Return the session-log record for ``event`` ("start" or "end") as stream fields."""
        end = self.ended_at if event == "end" else self.started_at
        return {
            "event": event,
            "time": _encode(end),
            "sid": self.sid,
            "kind": self.kind,
            "plan": self.plan,
            "voucher_id": self.voucher_id,
            "mac": self.mac,
            "ip": self.ip,
            "started_at": _encode(self.started_at),
            "bytes_up": str(self.bytes_up),
            "bytes_down": str(self.bytes_down),
            "duration": _encode(round(end - self.started_at, 3)),
            "reason": self.end_reason,
        }


def _encode(value: Any) -> str:
    if isinstance(value, float):
        return repr(round(value, 3))
    return str(value)


def _decode(kind: Any, text: str) -> Any:
    kind = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    if kind == "int":
        return int(float(text or 0))
    if kind == "float":
        return float(text or 0)
    return text


def new_session(
    *,
    mac: str,
    ip: str,
    kind: str,
    plan: str,
    now: float,
    expires_at: float,
    down: int,
    up: int,
    weight: float = 1.0,
    quota: int | None = None,
    voucher_id: str = "",
) -> Session:
    """Return a new online session (pure: nothing is written)."""
    return Session(
        sid=secrets.token_hex(8),
        mac=normalize_mac(mac),
        ip=ip,
        kind=kind,
        plan=plan,
        voucher_id=voucher_id,
        started_at=now,
        expires_at=expires_at,
        down=down,
        up=up,
        weight=weight,
        quota=quota or 0,
        last_active=now,
    )


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
    with r.pipeline(transaction=False) as pipe:
        for sid in sids:
            pipe.hgetall(keys.session(sid))
        rows = pipe.execute()
    found = [Session.from_redis(_str_dict(row)) for row in rows if row]
    return sorted((s for s in found if s.state == "online"), key=lambda s: (s.started_at, s.sid))


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


def update_usage(r: redis.Redis, usage: dict[str, tuple[int, int, float]]) -> None:
    """Write accounted bytes: ``{sid: (bytes_up, bytes_down, last_active)}`` for online sessions."""
    with r.pipeline(transaction=False) as pipe:
        for sid, (up, down, active) in usage.items():
            pipe.hset(
                keys.session(sid),
                mapping={"bytes_up": up, "bytes_down": down, "last_active": _encode(active)},
            )
        pipe.execute()


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _str_dict(data: dict) -> dict[str, str]:
    return {_str(k): _str(v) for k, v in data.items()}
