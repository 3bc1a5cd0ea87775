"""The audit trail: who did what to vouchers, clients, plans and accounts, and when.

Each entry is one record on the ``hs:audit`` stream: ``time``, ``actor`` (a desk
account, or ``cli:<unix user>`` for ``hotspotctl``), ``action`` (snake_case, e.g.
``voucher_revoke``) and the ids it concerns (voucher id, batch id, session id,
account name). A voucher's **code is never written here** (nor in the logs): the
code is what lets someone online, the id is what names it in records.

Entries are queued on the same MULTI pipeline as the change they describe where
there is one, so a change and its record land together or not at all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import redis

from gateway.model import keys

__all__ = ["AuditEntry", "record", "recent"]

AUDIT_MAXLEN = 100_000  # about a year of a busy library's desk work


@dataclass(frozen=True)
class AuditEntry:
    """One thing someone did: when, who, what, and the ids and details it concerns."""

    time: float
    actor: str
    action: str
    details: dict[str, str] = field(default_factory=dict)
    id: str = ""


def record(
    r: redis.Redis | redis.client.Pipeline,
    actor: str,
    action: str,
    *,
    now: float | None = None,
    **details: Any,
) -> None:
    """Append an entry (on ``r``, or queued on a MULTI pipeline); the caller logs once it landed.

    ``details`` are ids and small values (never a voucher code or a patron's name).
    """
    when = time.time() if now is None else now
    fields = {"time": repr(round(when, 3)), "actor": actor, "action": action}
    fields.update({k: str(v) for k, v in details.items()})
    r.xadd(keys.AUDIT, fields, maxlen=AUDIT_MAXLEN, approximate=True)


def recent(
    r: redis.Redis, *, limit: int = 100, actor: str | None = None, target: str | None = None
) -> list[AuditEntry]:
    """Return up to ``limit`` entries, newest first, optionally only ``actor``'s or about ``target``.

    ``target`` matches any detail value exactly (a voucher id, a batch id, an account).
    """
    found: list[AuditEntry] = []
    last = "+"
    while len(found) < limit:
        chunk = r.xrevrange(keys.AUDIT, max=last, count=500)
        if not chunk:
            break
        for entry_id, data in chunk:
            if entry_id == last:
                continue
            data = dict(data)
            entry = AuditEntry(
                time=float(data.pop("time", 0) or 0),
                actor=data.pop("actor", ""),
                action=data.pop("action", ""),
                details=data,
                id=entry_id,
            )
            if actor is not None and entry.actor != actor:
                continue
            if target is not None and target not in entry.details.values():
                continue
            found.append(entry)
            if len(found) >= limit:
                break
        last = chunk[-1][0]
        if len(chunk) < 500:
            break
    return found
