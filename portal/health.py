"""``/healthz``: is the portal process up and can it reach Redis?"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """Return 200 with ``{"portal": "ok", "redis": "ok"|"down"}``; Redis down is reported, not fatal."""
    import redis

    from gateway.model.store import connect

    state = "ok"
    try:
        connect(current_app.config["HOTSPOT"], timeout=1).ping()
    except redis.RedisError:
        state = "down"
    return jsonify(portal="ok", redis=state)
