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

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any
from zoneinfo import ZoneInfo

import redis
from redis.exceptions import NoScriptError

from gateway.config import Plan
from gateway.days import end_of_day
from gateway.logs import get_logger
from gateway.model import audit, keys, reports
from gateway.model.plans import PlanUnavailable
from gateway.model.sessions import (
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
    "MAX_BATCH",
    "MAX_NOTE",
    "STATES",
    "Batch",
    "DuplicateRequest",
    "Voucher",
    "VoucherDeviceLimit",
    "VoucherError",
    "VoucherExhausted",
    "VoucherExpired",
    "VoucherNotFound",
    "VoucherRevoked",
    "clean_note",
    "format_code",
    "generate_code",
    "get_voucher",
    "is_code",
    "issue_batch",
    "normalize_code",
    "quota_overruns",
    "redeem",
]

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 8
MAX_BATCH = 1000  # vouchers in one batch: 100 printed A4 pages
MAX_NOTE = 120
REQUEST_TTL = 86400  # how long a form's request id is remembered against double submits
# a voucher's state, in the order a librarian thinks of them
STATES = ("unused", "in_use", "used_up", "expired", "revoked")
_TYPO = str.maketrans({"O": "0", "I": "1", "L": "1"})
log = get_logger("vouchers")


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


class DuplicateRequest(Exception):
    """This form was already sent: ``batch_id`` is what it issued the first time."""

    def __init__(self, batch_id: str):
        super().__init__(f"already issued as batch {batch_id}")
        self.batch_id = batch_id


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


def is_code(code: str) -> bool:
    """Return whether ``code`` (normalized) has the shape of a voucher code."""
    return len(code) == CODE_LENGTH and all(ch in ALPHABET for ch in code)


def clean_note(text: str) -> str:
    """Return a batch note fit to store and print: one line, no control characters, trimmed.

    Raises ValueError when it is longer than ``MAX_NOTE`` characters.
    """
    note = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    if len(note) > MAX_NOTE:
        raise ValueError(f"the note is {len(note)} characters long; at most {MAX_NOTE}")
    return note


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
    quota_extra: int = 0  # bytes a librarian added to the plan's quota

    def quota(self, plan: Plan | None) -> int:
        """Return the voucher's data quota in bytes (0 = none): its plan's plus any added."""
        if plan is None or not plan.quota:
            return 0
        return plan.quota + self.quota_extra

    def state(self, now: float, plan: Plan | None) -> str:
        """Return one of :data:`STATES` at ``now`` (``plan`` for its quota; online use not counted)."""
        if self.revoked_at:
            return "revoked"
        if not self.first_used_at:
            return "unused" if now < self.valid_until else "expired"
        quota = self.quota(plan)
        if now >= self.expires_at or (quota and self.bytes_used >= quota):
            return "used_up"
        return "in_use"

    @property
    def display_code(self) -> str:
        return format_code(self.code)

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


@dataclass(frozen=True)
class Batch:
    """A batch of vouchers issued together (one print sheet)."""

    id: str
    plan: str
    count: int
    note: str
    issued_at: float
    issued_by: str

    @classmethod
    def from_redis(cls, data: Mapping[str, str]) -> Batch:
        return cls(
            id=data["id"], plan=data["plan"], count=int(data["count"]), note=data.get("note", ""),
            issued_at=float(data["issued_at"]), issued_by=data.get("issued_by", ""),
        )  # fmt: skip


def issue_batch(
    r: redis.Redis,
    plan: Plan,
    count: int,
    *,
    now: float,
    issued_by: str,
    note: str = "",
    request_id: str = "",
) -> list[Voucher]:
    """Create ``count`` vouchers of ``plan`` as one batch, in one transaction (all or none).

    Raises ValueError (count, note), :class:`gateway.model.plans.PlanUnavailable` (switched
    off), or :class:`DuplicateRequest` when ``request_id`` (a form's one-time id) was
    already used: a form sent twice issues one batch.
    """
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_BATCH:
        raise ValueError(f"the number of vouchers must be 1 to {MAX_BATCH}")
    note = clean_note(note)
    if r.sismember(keys.PLANS_DISABLED, plan.name):
        raise PlanUnavailable(plan.name, exists=True)
    request_key = keys.batch_request(request_id) if request_id else None
    while True:
        batch = Batch(secrets.token_hex(4), plan.name, count, note, now, issued_by)
        codes = {generate_code() for _ in range(count)}
        if len(codes) < count:
            continue
        vouchers = [
            Voucher(
                id=secrets.token_hex(5),
                code=code,
                plan=plan.name,
                batch=batch.id,
                note=note,
                issued_at=now,
                issued_by=issued_by,
                valid_until=now + plan.validity,
            )  # fmt: skip
            for code in sorted(codes)
        ]
        try:
            with r.pipeline(transaction=True) as pipe:
                fresh = [keys.batch(batch.id)]
                fresh += [k for v in vouchers for k in (keys.voucher(v.code), keys.voucher_by_id(v.id))]
                pipe.watch(*fresh, *([request_key] if request_key else []))
                if request_key and (done := pipe.get(request_key)):
                    pipe.unwatch()
                    raise DuplicateRequest(done)
                if pipe.exists(*fresh):
                    pipe.unwatch()
                    continue  # a code or id collision (one in 1e12): draw again
                pipe.multi()
                for v in vouchers:
                    pipe.hset(keys.voucher(v.code), mapping=v.to_redis())
                    pipe.set(keys.voucher_by_id(v.id), v.code)
                    pipe.zadd(keys.VOUCHERS, {v.code: now})
                pipe.hset(keys.batch(batch.id), mapping={k: str(v) for k, v in asdict(batch).items()})
                pipe.rpush(keys.batch_codes(batch.id), *[v.code for v in vouchers])
                pipe.zadd(keys.BATCHES, {batch.id: now})
                if request_key:
                    pipe.set(request_key, batch.id, ex=REQUEST_TTL)
                reports.queue_counter(pipe, "vouchers_issued", now, count)
                audit.record(
                    pipe, issued_by, "voucher_issue", now=now, batch=batch.id, plan=plan.name, count=count
                )
                pipe.execute()
        except redis.WatchError:
            continue
        log.info("voucher_issue", actor=issued_by, batch=batch.id, plan=plan.name, count=count)
        return vouchers


# -- redeeming -----------------------------------------------------------------------

_LOOK_UP = object()  # redeem's default ``existing``: read the device's session in Redis

# a voucher and its devices, read together (one round trip on the connection that WATCHes them)
_READ = "return {redis.call('HGETALL', KEYS[1]), redis.call('SMEMBERS', KEYS[2])}"
_READ_SHA = hashlib.sha1(_READ.encode(), usedforsecurity=False).hexdigest()  # Redis names scripts so


def _read_voucher(pipe: redis.client.Pipeline, vkey: str, dkey: str) -> tuple[dict[str, str], set[str]]:
    """Return the voucher hash at ``vkey`` and the device set at ``dkey`` in one round trip.

    ``pipe`` is watching both keys (:meth:`redis.Redis.transaction`), so the script runs at
    once on the watching connection, as HGETALL and SMEMBERS would; by digest, and sent
    whole only the first time this Redis sees it. (Not through a redis-py ``Script`` as the
    rate limit's are, ``gateway.model.ratelimit._run``: on a pipeline it would add a
    SCRIPT EXISTS round trip to the EXEC.)
    """
    try:
        flat, members = pipe.evalsha(_READ_SHA, 2, vkey, dkey)
    except NoScriptError:
        flat, members = pipe.eval(_READ, 2, vkey, dkey)
    return dict(zip(flat[::2], flat[1::2], strict=True)), set(members)


def redeem(
    r: redis.Redis,
    code_text: str,
    *,
    mac: str,
    ip: str,
    plans: Mapping[str, Plan],
    now: float,
    timezone: str = "Asia/Jakarta",
    existing: Session | None | object = _LOOK_UP,
) -> Session:
    """Check the voucher typed as ``code_text`` and start the device's session with it.

    Raises a :class:`VoucherError` subclass when it cannot be used. A device that is
    already online with this voucher gets its session back (logging in twice is fine).
    ``existing``: the device's online session (or None) when the caller has just read it
    (:func:`~gateway.model.sessions.session_for_mac`); by default it is read here.
    """
    code = normalize_code(code_text)
    if not is_code(code):
        raise VoucherNotFound(code_text)
    mac = normalize_mac(mac)
    if not isinstance(existing, Session | None):
        existing = session_for_mac(r, mac)
    if existing is not None and existing.kind == "voucher":
        voucher = get_voucher(r, code)
        if voucher is not None and existing.voucher_id == voucher.id:
            return existing
    tz = ZoneInfo(timezone)
    vkey, dkey = keys.voucher(code), keys.voucher_devices(code)

    def attempt(pipe: redis.client.Pipeline) -> Session:
        data, devices = _read_voucher(pipe, vkey, dkey)
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
                expires = min(expires, end_of_day(now, tz))
        else:
            first_used, expires = voucher.first_used_at, voucher.expires_at
            if now >= expires:
                raise VoucherExpired(expires)
        quota_left = 0
        if voucher.quota(plan):
            quota_left = voucher.quota(plan) - voucher.bytes_used
            if quota_left <= 0:
                raise VoucherExhausted(voucher.id)
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
        if not voucher.first_used_at:
            reports.queue_counter(pipe, "vouchers_used", now)
        return session

    session = r.transaction(attempt, vkey, dkey, value_from_callable=True)
    if existing is not None:
        # only now, so a wrong code never logs an online visitor out
        end_session(r, existing.sid, "replaced", now)
    return session


# -- quota across a voucher's devices ------------------------------------------------


def quota_overruns(r: redis.Redis, plans: Mapping[str, Plan], online: list[Session]) -> list[str]:
    """Return the sids of online sessions whose voucher's quota is used up across all its devices.

    Each session is given the quota left when it started; with several devices online
    at once, their sum can pass the voucher's quota. The gateway's accounting pass calls
    this after writing bytes, and ends these sessions with reason "quota".
    """
    by_voucher: dict[str, list[Session]] = {}
    for session in online:
        if session.voucher_id and session.quota:
            by_voucher.setdefault(session.voucher_id, []).append(session)
    over: list[str] = []
    for voucher_id, sessions in by_voucher.items():
        if len(sessions) < 2:
            continue  # one device: its own session quota already covers it
        code = r.get(keys.voucher_by_id(voucher_id))
        voucher = get_voucher(r, code) if code else None
        if voucher is None:
            continue
        quota = voucher.quota(plans.get(voucher.plan))
        live = sum(s.bytes_up + s.bytes_down for s in sessions)
        if quota and voucher.bytes_used + live >= quota:
            over += [s.sid for s in sessions]
    return over
