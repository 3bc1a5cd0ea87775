"""Live throttling: change one online session's caps without a reconnect.

A session's ``down``/``up`` are the caps in force. :func:`set_limit` replaces them and
keeps the plan's own caps on the session's hash (``plan_down``/``plan_up``) so that
:func:`clear_limit` can give them back. Both only write Redis: the gateway's next
reconcile pass (run at once when it gets a command) changes the client's classes,
and since the limit lives on the session it survives a gateway restart.

Used by ``hotspotctl limit`` and by the librarian's desk.
"""

from __future__ import annotations

from dataclasses import replace

import redis

from gateway.logs import get_logger
from gateway.model import audit, keys
from gateway.model.sessions import Session, get_session
from gateway.units import parse_rate

__all__ = [
    "MIN_LIMIT",
    "LimitError",
    "NotOnline",
    "clear_limit",
    "is_limited",
    "limit_client",
    "parse_limit",
    "set_limit",
]

log = get_logger("limits")

PLAN_DOWN = "plan_down"
PLAN_UP = "plan_up"


class LimitError(Exception):
    """The limit cannot be set: no such online session, or nothing to undo."""


class NotOnline(LimitError):
    """No online session has that id (it ended, or never was)."""


MIN_LIMIT = 32_000  # bits/s: below this not even a page of text loads (and "8bit" is a typo)


def parse_limit(text: str) -> tuple[int, int]:
    """Return ``(down, up)`` bits/s from ``"1mbit/512kbit"`` (or one rate for both ways)."""
    parts = [p.strip() for p in text.split("/")]
    if len(parts) > 2 or not all(parts):
        raise ValueError(f'"{text}" is not DOWN/UP; use e.g. "1mbit/512kbit"')
    down = parse_rate(parts[0])
    up = parse_rate(parts[-1])
    for rate in (down, up):
        if rate < MIN_LIMIT:
            raise ValueError(f'"{text}": {rate} bit/s is too slow to use; the least is "32kbit"')
    return down, up


def is_limited(r: redis.Redis, sid: str) -> bool:
    """Return whether session ``sid`` runs under a live limit."""
    return bool(r.hexists(keys.session(sid), PLAN_DOWN))


def _update(r: redis.Redis, sid: str, change) -> Session:
    key = keys.session(sid)

    def work(pipe: redis.client.Pipeline) -> Session:
        session = get_session(pipe, sid)
        if session is None or session.state != "online":
            raise NotOnline(f"session {sid} is not online")
        saved = pipe.hmget(key, [PLAN_DOWN, PLAN_UP])
        pipe.multi()
        return change(pipe, session, saved)

    return r.transaction(work, key, value_from_callable=True)


def set_limit(r: redis.Redis, sid: str, down: int, up: int) -> Session:
    """Cap online session ``sid`` at ``down``/``up`` bits/s; return it as changed."""
    if down <= 0 or up <= 0:
        raise ValueError("rates must be more than zero")

    def change(pipe, session: Session, saved) -> Session:
        if saved[0] is None:  # first limit: remember the plan's caps
            pipe.hset(keys.session(sid), mapping={PLAN_DOWN: session.down, PLAN_UP: session.up})
        pipe.hset(keys.session(sid), mapping={"down": down, "up": up})
        return replace(session, down=down, up=up)

    return _update(r, sid, change)


def clear_limit(r: redis.Redis, sid: str) -> Session:
    """Give online session ``sid`` its plan's caps back; return it as changed."""

    def change(pipe, session: Session, saved) -> Session:
        if saved[0] is None:
            raise LimitError("this session has no live limit")
        down, up = int(float(saved[0])), int(float(saved[1] or saved[0]))
        pipe.hset(keys.session(sid), mapping={"down": down, "up": up})
        pipe.hdel(keys.session(sid), PLAN_DOWN, PLAN_UP)
        return replace(session, down=down, up=up)

    return _update(r, sid, change)


def limit_client(
    r: redis.Redis, sid: str, rates: tuple[int, int] | None, *, actor: str, now: float
) -> Session:
    """Set (``rates`` = (down, up)) or clear (None) session ``sid``'s live limit, recorded with who did it.

    Only Redis changes: the caller asks the gateway for a pass (a ``reconcile`` command).
    """
    session = clear_limit(r, sid) if rates is None else set_limit(r, sid, *rates)
    change = {"reset": 1} if rates is None else {"down": rates[0], "up": rates[1]}
    audit.record(r, actor, "client_limit", now=now, sid=sid, **change)
    log.info("client_limit", actor=actor, sid=sid, **change)
    return session
