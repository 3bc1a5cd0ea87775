"""Connect to Redis, the single source of truth, from the config's URL."""

from __future__ import annotations

import redis

from gateway.config import Config

__all__ = ["connect"]


def connect(config: Config | str, *, timeout: float = 5.0) -> redis.Redis:
    """Return a Redis client (str replies) for ``config.redis_url`` or a URL.

    Blocking commands (BLPOP, XREAD BLOCK) must block for less than ``timeout``.
    """
    url = config if isinstance(config, str) else config.redis_url
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=timeout,
        socket_connect_timeout=min(timeout, 2.0),
        health_check_interval=30,
    )
