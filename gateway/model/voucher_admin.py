"""What staff do with vouchers and the clients using them: list, revoke, extend, kick.

Every action is recorded in the audit trail with who did it (:mod:`gateway.model.audit`) and
logged by voucher id, never by code. Actions that change who is online end or change
sessions in Redis first (the source of truth) and then tell the gateway, which would
otherwise pick the change up at its next reconcile pass anyway:
``deauthorize sid=..`` for an ended session, ``authorize sid=..`` for a session whose end
time or quota changed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

import redis

from gateway.config import Plan
from gateway.logs import get_logger
from gateway.model import audit, commands, keys
from gateway.model.sessions import Session, end_session, get_session, online_sessions, session_for_mac
from gateway.model.vouchers import (
    STATES,
    Batch,
    Voucher,
    VoucherNotFound,
    VoucherRevoked,
    get_voucher,
    is_code,
    normalize_code,
)

__all__ = [
    "MAX_EXTEND",
    "VoucherRow",
    "code_for_id",
    "extend_client",
    "extend_voucher",
    "get_batch",
    "kick_client",
    "list_batches",
    "list_vouchers",
    "purge_vouchers",
    "revoke_batch",
    "revoke_voucher",
    "voucher_sessions",
]

MAX_EXTEND = 30 * 86400  # the most time one "extend" may add
log = get_logger("vouchers")


@dataclass(frozen=True)
class VoucherRow:
    """A voucher as the list shows it: its state now and how many devices are online with it."""

    voucher: Voucher
    state: str
    online: int


# -- reading -------------------------------------------------------------------------


def _require(r: redis.Redis, code: str) -> Voucher:
    normalized = normalize_code(code)
    voucher = get_voucher(r, normalized) if is_code(normalized) else None
    if voucher is None:
        raise VoucherNotFound(code)
    return voucher


def code_for_id(r: redis.Redis, voucher_id: str) -> str | None:
    """Return the code of the voucher with public id ``voucher_id`` (pages use ids, never codes)."""
    if not (voucher_id.isalnum() and len(voucher_id) <= 32):
        return None
    return r.get(keys.voucher_by_id(voucher_id))


def voucher_sessions(r: redis.Redis, voucher: Voucher) -> list[Session]:
    """Return the online sessions using ``voucher`` (one per device)."""
    found = []
    for mac in sorted(r.smembers(keys.voucher_devices(voucher.code))):
        session = session_for_mac(r, mac)
        if session is not None and session.voucher_id == voucher.id:
            found.append(session)
    return found


def _iter_vouchers(r: redis.Redis, batch: str | None, chunk: int = 200) -> Iterator[Voucher]:
    """Yield vouchers newest first (or a batch's in print order), reading in pipelined chunks."""
    if batch is not None:
        codes: list[str] | None = r.lrange(keys.batch_codes(batch), 0, -1)
    else:
        codes = None
    start = 0
    while True:
        if codes is not None:
            part = codes[start : start + chunk]
        else:
            part = r.zrevrange(keys.VOUCHERS, start, start + chunk - 1)
        if not part:
            return
        with r.pipeline(transaction=False) as pipe:
            for code in part:
                pipe.hgetall(keys.voucher(code))
            rows = pipe.execute()
        for row in rows:
            if row:
                yield Voucher.from_redis(row)
        start += chunk


def list_vouchers(
    r: redis.Redis,
    plans: Mapping[str, Plan],
    *,
    now: float,
    state: str | None = None,
    plan: str | None = None,
    batch: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[VoucherRow], bool]:
    """Return up to ``limit`` vouchers (newest first) matching the filters, and whether more follow."""
    if state is not None and state not in STATES:
        raise ValueError(f"unknown state {state!r}; one of {', '.join(STATES)}")
    online: dict[str, int] = {}
    for session in online_sessions(r):
        if session.voucher_id:
            online[session.voucher_id] = online.get(session.voucher_id, 0) + 1
    rows: list[VoucherRow] = []
    skipped = 0
    for voucher in _iter_vouchers(r, batch):
        if plan is not None and voucher.plan != plan:
            continue
        row_state = voucher.state(now, plans.get(voucher.plan))
        if state is not None and row_state != state:
            continue
        if skipped < offset:
            skipped += 1
            continue
        if len(rows) == limit:
            return rows, True
        rows.append(VoucherRow(voucher, row_state, online.get(voucher.id, 0)))
    return rows, False


def get_batch(r: redis.Redis, batch_id: str) -> tuple[Batch, list[Voucher]] | None:
    """Return a batch and its vouchers in print order, or None."""
    data = r.hgetall(keys.batch(batch_id))
    if not data:
        return None
    return Batch.from_redis(data), list(_iter_vouchers(r, batch_id))


def list_batches(r: redis.Redis, *, limit: int = 20) -> list[Batch]:
    """Return the newest ``limit`` batches."""
    ids = r.zrevrange(keys.BATCHES, 0, limit - 1)
    with r.pipeline(transaction=False) as pipe:
        for batch_id in ids:
            pipe.hgetall(keys.batch(batch_id))
        rows = pipe.execute()
    return [Batch.from_redis(row) for row in rows if row]


def _finished_at(voucher: Voucher, state: str) -> float:
    """Return when a voucher that can no longer be used stopped being usable (0 = still usable)."""
    return {"revoked": voucher.revoked_at, "expired": voucher.valid_until, "used_up": voucher.expires_at}.get(
        state, 0.0
    )


def purge_vouchers(
    r: redis.Redis, plans: Mapping[str, Plan], *, older_than: int, actor: str, now: float
) -> int:
    """Delete vouchers that stopped being usable more than ``older_than`` seconds ago; return how many.

    Only used-up, expired and revoked ones go; report counters and the audit trail keep
    their numbers and ids. Keeps the list (and Redis) from growing for years.
    """
    removed = 0
    for voucher in list(_iter_vouchers(r, None)):
        if not 0 < _finished_at(voucher, voucher.state(now, plans.get(voucher.plan))) <= now - older_than:
            continue
        vkey = keys.voucher(voucher.code)

        def attempt(pipe: redis.client.Pipeline, v: Voucher = voucher, vkey: str = vkey) -> bool:
            current = Voucher.from_redis(pipe.hgetall(vkey))  # an extend may just have revived it
            if not 0 < _finished_at(current, current.state(now, plans.get(v.plan))) <= now - older_than:
                return False
            pipe.multi()
            pipe.delete(vkey, keys.voucher_devices(v.code), keys.voucher_by_id(v.id))
            pipe.zrem(keys.VOUCHERS, v.code)
            pipe.lrem(keys.batch_codes(v.batch), 1, v.code)
            return True

        if r.transaction(attempt, vkey, value_from_callable=True):
            removed += 1
            if not r.exists(keys.batch_codes(voucher.batch)):  # its last voucher: the batch goes too
                r.delete(keys.batch(voucher.batch))
                r.zrem(keys.BATCHES, voucher.batch)
    if removed:
        audit.record(r, actor, "voucher_purge", now=now, count=removed, older_than=older_than)
        log.info("voucher_purge", actor=actor, count=removed, older_than=older_than)
    return removed


# -- revoking ------------------------------------------------------------------------


def _end_sessions(r: redis.Redis, sessions: list[Session], reason: str, now: float) -> list[Session]:
    ended = []
    for session in sessions:
        done = end_session(r, session.sid, reason, now)
        if done is not None:
            commands.send(r, "deauthorize", sid=done.sid, reason=reason)
            ended.append(done)
    return ended


def revoke_voucher(r: redis.Redis, code: str, *, actor: str, now: float) -> tuple[Voucher, list[Session]]:
    """Revoke a voucher and end its online sessions ("revoked"); return it and the ended sessions.

    Raises :class:`VoucherNotFound`, or :class:`VoucherRevoked` if it already was (nothing changes).
    """
    voucher = _require(r, code)
    vkey = keys.voucher(voucher.code)

    def attempt(pipe: redis.client.Pipeline) -> Voucher:
        current = Voucher.from_redis(pipe.hgetall(vkey))
        if current.revoked_at:
            raise VoucherRevoked(current.id)
        pipe.multi()
        pipe.hset(vkey, mapping={"revoked_at": str(now), "revoked_by": actor})
        audit.record(pipe, actor, "voucher_revoke", now=now, voucher_id=current.id, batch=current.batch)
        return replace(current, revoked_at=now, revoked_by=actor)

    revoked = r.transaction(attempt, vkey, value_from_callable=True)
    # after the mark: a redeem racing with us either saw it, or its session is found here
    ended = _end_sessions(r, voucher_sessions(r, revoked), "revoked", now)
    log.info("voucher_revoke", actor=actor, voucher_id=revoked.id, sessions_ended=len(ended))
    return revoked, ended


def revoke_batch(
    r: redis.Redis, batch_id: str, plans: Mapping[str, Plan], *, actor: str, now: float
) -> tuple[int, int]:
    """Revoke every voucher of a batch that can still be used; return (revoked, sessions ended)."""
    found = get_batch(r, batch_id)
    if found is None:
        raise VoucherNotFound(batch_id)
    revoked = ended = 0
    for voucher in found[1]:
        if voucher.state(now, plans.get(voucher.plan)) in ("unused", "in_use"):
            try:
                _, sessions = revoke_voucher(r, voucher.code, actor=actor, now=now)
            except VoucherRevoked:
                continue
            revoked += 1
            ended += len(sessions)
    return revoked, ended


# -- extending -----------------------------------------------------------------------


def _check_amount(seconds: int, data: int) -> None:
    if seconds < 0 or data < 0 or (seconds == 0 and data == 0):
        raise ValueError("give more time or more data to add")
    if seconds > MAX_EXTEND:
        raise ValueError(f"at most {MAX_EXTEND // 86400} days can be added at once")


def extend_voucher(
    r: redis.Redis,
    code: str,
    plans: Mapping[str, Plan],
    *,
    seconds: int = 0,
    data: int = 0,
    actor: str,
    now: float,
) -> Voucher:
    """Give a voucher more time (and/or data); return it updated.

    Unused: its validity window is extended. Used: its end moves ``seconds`` past the
    later of its end and ``now`` (so a used-up voucher gets that much time from now),
    and its online sessions follow. ``data`` bytes are added to its quota (plans with a
    quota only). Raises :class:`VoucherNotFound`, :class:`VoucherRevoked`, ValueError.
    """
    _check_amount(seconds, data)
    voucher = _require(r, code)
    plan = plans.get(voucher.plan)
    if data and (plan is None or not plan.quota):
        raise ValueError("this voucher's plan has no data quota; only time can be added")
    vkey = keys.voucher(voucher.code)

    def attempt(pipe: redis.client.Pipeline) -> Voucher:
        current = Voucher.from_redis(pipe.hgetall(vkey))
        if current.revoked_at:
            raise VoucherRevoked(current.id)
        changes: dict[str, float | int] = {}
        if seconds and not current.first_used_at:
            changes["valid_until"] = max(current.valid_until, now) + seconds
        elif seconds:
            changes["expires_at"] = max(current.expires_at, now) + seconds
        if data:
            changes["quota_extra"] = current.quota_extra + data
        pipe.multi()
        pipe.hset(vkey, mapping={k: str(v) for k, v in changes.items()})
        audit.record(
            pipe, actor, "voucher_extend", now=now, voucher_id=current.id, seconds=seconds, bytes=data
        )
        return replace(current, **changes)

    extended = r.transaction(attempt, vkey, value_from_callable=True)
    for session in voucher_sessions(r, extended):
        quota = session.quota + data if session.quota else 0
        _update_session(r, session, extended.expires_at or session.expires_at, quota)
    log.info("voucher_extend", actor=actor, voucher_id=extended.id, seconds=seconds, bytes=data)
    return extended


def _update_session(r: redis.Redis, session: Session, expires_at: float, quota: int) -> None:
    key = keys.session(session.sid)

    def attempt(pipe: redis.client.Pipeline) -> bool:
        if pipe.hget(key, "state") != "online":
            return False  # it ended meanwhile: nothing to extend
        pipe.multi()
        pipe.hset(key, mapping={"expires_at": repr(round(expires_at, 3)), "quota": str(quota)})
        return True

    if r.transaction(attempt, key, value_from_callable=True):
        commands.send(r, "authorize", sid=session.sid)


# -- clients -------------------------------------------------------------------------


def _online(r: redis.Redis, sid: str) -> Session:
    session = get_session(r, sid) if sid.isalnum() else None
    if session is None or session.state != "online":
        raise LookupError("this client is no longer online")
    return session


def kick_client(r: redis.Redis, sid: str, *, actor: str, now: float) -> Session:
    """End an online session ("kicked") and tell the gateway; raise LookupError if it is not online."""
    session = _online(r, sid)
    ended = _end_sessions(r, [session], "kicked", now)
    if not ended:
        raise LookupError("this client is no longer online")
    audit.record(r, actor, "client_kick", now=now, sid=sid, voucher_id=session.voucher_id)
    log.info("client_kick", actor=actor, sid=sid, voucher_id=session.voucher_id)
    return ended[0]


def extend_client(
    r: redis.Redis, sid: str, plans: Mapping[str, Plan], *, seconds: int, actor: str, now: float
) -> Session:
    """Give an online client more time: its voucher's (so every device of it) or, without one, its own."""
    session = _online(r, sid)
    if session.voucher_id:
        code = r.get(keys.voucher_by_id(session.voucher_id))
        if code:
            extend_voucher(r, code, plans, seconds=seconds, actor=actor, now=now)
            return get_session(r, sid) or session
    _check_amount(seconds, 0)
    _update_session(r, session, max(session.expires_at, now) + seconds, session.quota)
    audit.record(r, actor, "client_extend", now=now, sid=sid, seconds=seconds)
    log.info("client_extend", actor=actor, sid=sid, seconds=seconds)
    return get_session(r, sid) or session
