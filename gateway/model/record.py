"""The session record, pure: what a session is, how it is written to Redis and the session log.

:class:`Session` (a frozen record), :func:`new_session`, :func:`normalize_mac`, the end
reasons and the string encoding of its fields. Nothing here talks to Redis or the kernel,
so the planners (:mod:`gateway.firewall.plan`, :mod:`gateway.firewall.doctor`), the
neighbour table and the appliers can use sessions without loading the redis client;
:mod:`gateway.model.sessions` stores them and re-exports these names.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import asdict, dataclass, fields
from typing import Any

__all__ = ["END_REASONS", "Session", "decode", "encode", "new_session", "normalize_mac"]

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
        return {k: encode(v) for k, v in asdict(self).items()}

    @classmethod
    def from_redis(cls, data: dict[str, str]) -> Session:
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in data:
                values[f.name] = decode(f.type, data[f.name])
        return cls(**values)

    def record(self, event: str) -> dict[str, str]:
        """Return the session-log record for ``event`` ("start" or "end") as stream fields."""
        end = self.ended_at if event == "end" else self.started_at
        return {
            "event": event,
            "time": encode(end),
            "sid": self.sid,
            "kind": self.kind,
            "plan": self.plan,
            "voucher_id": self.voucher_id,
            "mac": self.mac,
            "ip": self.ip,
            "started_at": encode(self.started_at),
            "bytes_up": str(self.bytes_up),
            "bytes_down": str(self.bytes_down),
            "duration": encode(round(end - self.started_at, 3)),
            "reason": self.end_reason,
        }


def encode(value: Any) -> str:
    """Return ``value`` as the string Redis and the session log hold (floats to the millisecond)."""
    if isinstance(value, float):
        return repr(round(value, 3))
    return str(value)


def decode(kind: Any, text: str) -> Any:
    """Return ``text`` read back as the field type ``kind`` (``"int"``, ``"float"`` or a string)."""
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
