"""``/healthz``: is the portal process up and can it reach Redis?"""

from __future__ import annotations

import redis
from flask import Blueprint, current_app, jsonify

from gateway.model.store import connect

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """Return 200 with ``{"portal": "ok", "redis": "ok"|"down"}``; Redis down is reported, not fatal."""
    state = "ok"
    try:
        connect(current_app.config["HOTSPOT"], timeout=1).ping()
    except redis.RedisError:
        state = "down"
    return jsonify(portal="ok", redis=state)
