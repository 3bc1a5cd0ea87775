"""Ask the gateway to apply or remove a session, and wait (bounded) for its ack.

The session itself is already in Redis when these run, so a lost command heals at
the gateway's next reconcile pass; the ack is what lets the portal say "you are
online" truthfully. The gateway remembers an acked session for a while
(``hs:portal:acked:<sid>``, written with its reply) so reloading the online page does
not ask again.
"""

from __future__ import annotations

import redis

from gateway.logs import get_logger
from gateway.model import commands, keys
from gateway.model.sessions import Session

__all__ = ["confirm_online", "count", "release"]

log = get_logger("portal")


def count(r: redis.Redis, name: str) -> None:
    """Add one to the metrics counter ``name`` (see ``keys.COUNTERS``)."""
    r.hincrby(keys.COUNTERS, name, 1)


def confirm_online(
    r: redis.Redis, session: Session, *, timeout: float, ip: str = "", fresh: bool = False
) -> bool:
    """Return True once the gateway has applied ``session``; False if it did not ack in time.

    ``ip`` is the address the device asks from; when it is not the session's (the device
    came back with a new lease and logged in again), the gateway moves the session there.
    ``fresh``: the caller just started ``session``, so it cannot have been acked yet.
    The gateway marks an applied session acked itself, in the same Redis transaction as
    its reply (``gateway.model.commands.reply_many``).
    """
    moved = bool(ip) and ip != session.ip
    if not moved and not fresh and r.exists(keys.portal_acked(session.sid)):
        return True
    fields = {"sid": session.sid, **({"ip": ip} if moved else {})}
    reply = commands.request(r, "authorize", timeout, **fields)
    if reply is None:
        count(r, "gateway_ack_timeouts")
        log.warning("gateway_ack_timeout", op="authorize", sid=session.sid, mac=session.mac, timeout=timeout)
        return False
    if not reply.get("ok"):
        log.warning("gateway_refused", op="authorize", sid=session.sid, error=reply.get("error", ""))
        return False
    return True


def release(r: redis.Redis, session: Session, *, timeout: float) -> bool:
    """Ask the gateway to end ``session`` and cut it off; return whether it acked.

    The gateway reads the session's counters in the same nft call that deletes its
    elements and ends it with those bytes. Without an ack the caller ends it in Redis.
    """
    r.delete(keys.portal_acked(session.sid))
    reply = commands.request(r, "deauthorize", timeout, sid=session.sid)
    if reply is None:
        count(r, "gateway_ack_timeouts")
        log.warning(
            "gateway_ack_timeout", op="deauthorize", sid=session.sid, mac=session.mac, timeout=timeout
        )
        return False
    return bool(reply.get("ok"))
