"""The visitor portal and librarian desk: a Flask app, unprivileged, served by gunicorn.

It writes sessions to Redis and asks the gateway (over Redis) to apply them; it never
touches nftables or tc.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from gateway import config as config_mod

__all__ = ["create_app"]


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the portal app. ``test_config`` may carry ``HOTSPOT`` (a Config) and Flask keys."""
    app = Flask(__name__)
    if test_config and "HOTSPOT" in test_config:
        hotspot = test_config["HOTSPOT"]
    else:
        hotspot = config_mod.load()
    app.config.from_mapping(
        HOTSPOT=hotspot,
        SECRET_KEY=_read_secret(hotspot),
        MAX_CONTENT_LENGTH=16 * 1024,
    )
    if test_config:
        app.config.update(test_config)

    from portal import health

    app.register_blueprint(health.bp)
    return app


def _read_secret(hotspot: config_mod.Config) -> str:
    try:
        return hotspot.portal.secret_key_file.read_text().strip()
    except OSError:
        # no key file yet (e.g. a unit test): sessions then last only as long as this process
        import secrets

        return secrets.token_hex(32)
