"""The request/ack protocol between the portal (or CLI) and the gateway, over Redis.

A requester appends a command to the ``hs:commands`` stream and waits (bounded) on its
own ack key; the gateway reads the stream, acts, and pushes one JSON reply to that key.
Commands only make the gateway act sooner: the state they refer to (sessions) is
already in Redis, so a lost command heals at the next reconcile pass and replaying
one is harmless (every op is idempotent).
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis

from gateway.model import keys

__all__ = [
    "Command",
    "heartbeat_ttl",
    "live_gateway",
    "read_commands",
    "reply",
    "reply_many",
    "request",
    "send",
    "wait_reply",
]

STREAM_MAXLEN = 10_000
REPLY_TTL = 30  # seconds an unread reply stays
ACKED_MIN, ACKED_MAX = 60, 3600  # seconds an applied session stays marked acked (reply_many)


@dataclass(frozen=True)
class Command:
    """One request: ``op`` (e.g. "authorize") with string fields, ``id`` for the reply."""

    id: str
    op: str
    fields: dict[str, str] = field(default_factory=dict)
    stream_id: str = ""


def send(r: redis.Redis, op: str, **fields: Any) -> str:
    """Append command ``op`` to the stream and return its request id (do not wait)."""
    request_id = secrets.token_hex(8)
    r.xadd(keys.COMMANDS, _payload(request_id, op, fields), maxlen=STREAM_MAXLEN, approximate=True)
    return request_id


def wait_reply(r: redis.Redis, request_id: str, timeout: float) -> dict | None:
    """Return the gateway's reply to ``request_id``, or None if none came within ``timeout`` s."""
    return _decode_reply(r.blpop([keys.ack(request_id)], timeout=timeout))


def _payload(request_id: str, op: str, fields: dict[str, Any]) -> dict[str, str]:
    return {"id": request_id, "op": op, **{k: str(v) for k, v in fields.items()}}


def _decode_reply(item: Any) -> dict | None:
    if item is None:
        return None
    raw = item[1]
    return json.loads(raw.decode() if isinstance(raw, bytes) else raw)


def request(r: redis.Redis, op: str, timeout: float, **fields: Any) -> dict | None:
    """Send ``op`` and wait for the reply; None means the gateway did not answer in time.

    The command and the wait for its reply go in one round trip (a pipeline: Redis adds
    the command, then blocks on the ack key until the gateway pushes the reply), so a
    login costs the portal one round trip to the gateway, not two.
    """
    request_id = secrets.token_hex(8)
    with r.pipeline(transaction=False) as pipe:
        pipe.xadd(keys.COMMANDS, _payload(request_id, op, fields), maxlen=STREAM_MAXLEN, approximate=True)
        pipe.blpop([keys.ack(request_id)], timeout=timeout)
        _added, item = pipe.execute()
    return _decode_reply(item)


def heartbeat_ttl(reconcile_interval: float) -> int:
    """Return how long the gateway's heartbeat is fresh: three passes, at least 10 s.

    The gateway rewrites it after every pass with this expiry; one older than this is stale.
    """
    return max(10, math.ceil(3 * reconcile_interval))


def live_gateway(r: redis.Redis, now: float, reconcile_interval: float) -> dict | None:
    """Return the running gateway's heartbeat, or None when it is absent or stale (the gateway is down).

    A gateway that beats is alive even when it is slow to answer a command: only a missing
    or stale heartbeat lets a tool act on the kernel in its place.
    """
    raw = r.get(keys.GATEWAY_HEARTBEAT)
    try:
        info = json.loads(raw) if raw else None
        at = float(info["at"]) if isinstance(info, dict) else None
    except (ValueError, KeyError, TypeError):
        return None
    if at is None or now - at > heartbeat_ttl(reconcile_interval):
        return None
    return info


def read_commands(r: redis.Redis, last_id: str, block_ms: int | None, count: int = 500) -> list[Command]:
    """Return commands after stream id ``last_id``, blocking up to ``block_ms`` for the first
    (None: do not block, return what is there)."""
    found = r.xread({keys.COMMANDS: last_id}, count=count, block=block_ms)
    commands = []
    for _stream, entries in found or []:
        for stream_id, data in entries:
            data = {_s(k): _s(v) for k, v in data.items()}
            commands.append(
                Command(
                    id=data.pop("id", ""),
                    op=data.pop("op", ""),
                    fields=data,
                    stream_id=_s(stream_id),
                )
            )
    return commands


def reply(r: redis.Redis, request_id: str, result: dict) -> None:
    """Push the JSON ``result`` to the requester of ``request_id``."""
    if not request_id:
        return
    key = keys.ack(request_id)
    with r.pipeline(transaction=True) as pipe:
        pipe.rpush(key, json.dumps(result))
        pipe.expire(key, REPLY_TTL)
        pipe.execute()


def reply_many(r: redis.Redis, replies: Sequence[tuple[str, dict]], *, now: float = 0.0) -> None:
    """Push each ``(request_id, result)`` to its requester, all in one round trip to Redis.

    A successful ``authorize`` (a result with ``op``, ``ok``, ``sid`` and ``expires_at``)
    also marks its session acked (``keys.portal_acked``, for :data:`ACKED_MAX` seconds at
    most, and never past the session's end as of ``now``), in the same transaction: the
    portal's online page then knows it is applied without asking again, and the portal's
    login does not spend a round trip writing it.
    """
    replies = [(request_id, result) for request_id, result in replies if request_id]
    if not replies:
        return
    with r.pipeline(transaction=True) as pipe:
        for request_id, result in replies:
            if result.get("op") == "authorize" and result.get("ok") and result.get("sid"):
                ttl = int(min(ACKED_MAX, max(ACKED_MIN, float(result.get("expires_at", 0)) - now)))
                pipe.set(keys.portal_acked(result["sid"]), "1", ex=ttl)
            key = keys.ack(request_id)
            pipe.rpush(key, json.dumps(result))
            pipe.expire(key, REPLY_TTL)
        pipe.execute()


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
