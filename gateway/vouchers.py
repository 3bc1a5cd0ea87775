"""Vouchers: codes a librarian hands out, redeemed at the portal for a session.

Codes use Crockford's base-32 alphabet (digits and capitals without I, L, O, U), so
nothing on a printed card can be misread: a visitor may type ``o`` for ``0`` or
``i``/``l`` for ``1``, in any case, with spaces or dashes, and it still matches
(:func:`normalize_code`). Eight characters give 32**8 = 1.1e12 codes; the arithmetic
of guessing them against the portal's rate limit is in ``docs/vouchers.md``.

A voucher's plan decides its time (counted from first use), devices, caps and quota.
Redeeming checks and updates the voucher and starts the session in one Redis
transaction, so two phones racing for the last device slot cannot both win.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import redis

from gateway import keys
from gateway.config import Plan
from gateway.sessions import (
    Session,
    end_session,
    new_session,
    normalize_mac,
    queue_start,
    session_for_mac,
)

__all__ = [
    "ALPHABET",
    "CODE_LENGTH",
    "Voucher",
    "VoucherDeviceLimit",
    "VoucherError",
    "VoucherExhausted",
    "VoucherExpired",
    "VoucherNotFound",
    "VoucherRevoked",
    "format_code",
    "generate_code",
    "get_voucher",
    "issue_batch",
    "normalize_code",
    "redeem",
]

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 8
_TYPO = str.maketrans({"O": "0", "I": "1", "L": "1"})


# -- errors: each carries what the visitor's message needs ---------------------------


class VoucherError(Exception):
    """The voucher cannot be used; subclasses say why."""


class VoucherNotFound(VoucherError):
    """No voucher has this code (or the text is not a code at all)."""


class VoucherRevoked(VoucherError):
    """A librarian revoked the voucher."""


class VoucherExpired(VoucherError):
    """The voucher's validity or its time ran out at ``expired_at`` (epoch seconds)."""

    def __init__(self, expired_at: float):
        super().__init__(f"expired at {expired_at:.0f}")
        self.expired_at = expired_at


class VoucherExhausted(VoucherError):
    """The voucher's data quota is used up."""


class VoucherDeviceLimit(VoucherError):
    """The voucher is already online on ``max_devices`` other devices."""

    def __init__(self, max_devices: int):
        super().__init__(f"already used on {max_devices} device(s)")
        self.max_devices = max_devices


# -- codes ---------------------------------------------------------------------------


def normalize_code(text: str) -> str:
    """Return the canonical code for what a visitor typed (case, spaces, dashes, O/I/L forgiven)."""
    kept = "".join(ch for ch in text.upper() if ch.isalnum())
    return kept.translate(_TYPO)


def generate_code() -> str:
    """Return a new random code (cryptographically random, ``CODE_LENGTH`` characters)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def format_code(code: str) -> str:
    """Return ``code`` grouped in fours for print and screen: ``ABCD-EFGH``."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def _is_code(code: str) -> bool:
    return len(code) == CODE_LENGTH and all(ch in ALPHABET for ch in code)


# -- the voucher record --------------------------------------------------------------


@dataclass(frozen=True)
class Voucher:
    """One voucher as stored in ``hs:voucher:<code>``."""

    id: str  # public id for logs and reports; the code itself is never logged
    code: str
    plan: str
    batch: str
    note: str
    issued_at: float
    issued_by: str
    valid_until: float  # an unused voucher expires then
    first_used_at: float = 0.0
    expires_at: float = 0.0  # set at first use: end of its time
    bytes_used: int = 0  # by its ended sessions (quota accounting)
    revoked_at: float = 0.0
    revoked_by: str = ""

    def to_redis(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_redis(cls, data: Mapping[str, str]) -> Voucher:
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in data:
                raw = data[f.name]
                values[f.name] = (
                    float(raw or 0) if f.type == "float" else int(float(raw or 0)) if f.type == "int" else raw
                )
        return cls(**values)


def get_voucher(r: redis.Redis, code: str) -> Voucher | None:
    """Return the voucher with ``code`` (normalized first), or None."""
    data = r.hgetall(keys.voucher(normalize_code(code)))
    return Voucher.from_redis(data) if data else None


def issue_batch(
    r: redis.Redis,
    plan: Plan,
    count: int,
    *,
    now: float,
    issued_by: str,
    note: str = "",
) -> list[Voucher]:
    """Create ``count`` vouchers of ``plan`` in one transaction (all or none) and return them."""
    if not 1 <= count <= 1000:
        raise ValueError("count must be 1 to 1000")
    batch = secrets.token_hex(4)
    while True:
        codes = {generate_code() for _ in range(count)}
        if len(codes) < count:
            continue
        vouchers = [
            Voucher(
                id=secrets.token_hex(5),
                code=code,
                plan=plan.name,
                batch=batch,
                note=note,
                issued_at=now,
                issued_by=issued_by,
                valid_until=now + plan.validity,
            )
            for code in sorted(codes)
        ]
        try:
            with r.pipeline(transaction=True) as pipe:
                watched = [keys.voucher(v.code) for v in vouchers]
                pipe.watch(*watched)
                if any(pipe.exists(k) for k in watched):
                    pipe.unwatch()
                    continue  # a collision in 1e12: draw again
                pipe.multi()
                for v in vouchers:
                    pipe.hset(keys.voucher(v.code), mapping=v.to_redis())
                    pipe.set(keys.voucher_by_id(v.id), v.code)
                    pipe.zadd(keys.VOUCHERS, {v.code: now})
                pipe.execute()
            return vouchers
        except redis.WatchError:
            continue


# -- redeeming -----------------------------------------------------------------------


def _end_of_day(ts: float, tz: ZoneInfo) -> float:
    day = datetime.fromtimestamp(ts, tz).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


def redeem(
    r: redis.Redis,
    code_text: str,
    *,
    mac: str,
    ip: str,
    plans: Mapping[str, Plan],
    now: float,
    timezone: str = "Asia/Jakarta",
) -> Session:
    """Check the voucher typed as ``code_text`` and start the device's session with it.

    Raises a :class:`VoucherError` subclass when it cannot be used. A device that is
    already online with this voucher gets its session back (logging in twice is fine).
    """
    code = normalize_code(code_text)
    if not _is_code(code):
        raise VoucherNotFound(code_text)
    mac = normalize_mac(mac)
    existing = session_for_mac(r, mac)
    if existing is not None and existing.kind == "voucher":
        voucher = get_voucher(r, code)
        if voucher is not None and existing.voucher_id == voucher.id:
            return existing
    tz = ZoneInfo(timezone)
    vkey, dkey = keys.voucher(code), keys.voucher_devices(code)

    def attempt(pipe: redis.client.Pipeline) -> Session:
        data = pipe.hgetall(vkey)
        if not data:
            raise VoucherNotFound(code_text)
        voucher = Voucher.from_redis(data)
        plan = plans.get(voucher.plan)
        if plan is None:
            raise VoucherNotFound(code_text)  # its plan was removed from the config
        if voucher.revoked_at:
            raise VoucherRevoked(voucher.id)
        if not voucher.first_used_at:
            if now >= voucher.valid_until:
                raise VoucherExpired(voucher.valid_until)
            first_used, expires = now, now + plan.duration
            if not plan.multi_day:
                expires = min(expires, _end_of_day(now, tz))
        else:
            first_used, expires = voucher.first_used_at, voucher.expires_at
            if now >= expires:
                raise VoucherExpired(expires)
        quota_left = 0
        if plan.quota:
            quota_left = plan.quota - voucher.bytes_used
            if quota_left <= 0:
                raise VoucherExhausted(voucher.id)
        devices = pipe.smembers(dkey)
        online_elsewhere = 0
        for other in devices:
            if other == mac:
                continue
            other_session = session_for_mac(pipe, other)
            if other_session is not None and other_session.voucher_id == voucher.id:
                online_elsewhere += 1
        if online_elsewhere >= plan.max_devices:
            raise VoucherDeviceLimit(plan.max_devices)
        session = new_session(
            mac=mac, ip=ip, kind="voucher", plan=plan.name, now=now, expires_at=expires,
            down=plan.down, up=plan.up, weight=plan.weight, quota=quota_left, voucher_id=voucher.id,
        )  # fmt: skip
        pipe.multi()
        pipe.hset(vkey, mapping={"first_used_at": str(first_used), "expires_at": str(expires)})
        pipe.sadd(dkey, session.mac)
        queue_start(pipe, session)
        return session

    session = r.transaction(attempt, vkey, dkey, value_from_callable=True)
    if existing is not None:
        # only now, so a wrong code never logs an online visitor out
        end_session(r, existing.sid, "replaced", now)
    return session
