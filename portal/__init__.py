"""The visitor portal and librarian desk: a Flask app, unprivileged, served by gunicorn.

It writes sessions to Redis and asks the gateway (over Redis) to apply them; it never
touches nftables or tc. Shared plumbing lives here and in :mod:`portal.web`:
languages (Bahasa Indonesia by default, English), CSRF, security headers, error pages
that never show a traceback, and a friendly page while Redis is down.
"""

from __future__ import annotations

import secrets
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
        MAX_CONTENT_LENGTH=16 * 1024,  # visitor and desk forms are small; anything bigger is abuse
        SESSION_COOKIE_HTTPONLY=True,
        # the session cookie is the desk's sign-in: with a certificate the desk is HTTPS only
        SESSION_COOKIE_SECURE=hotspot.portal.tls,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the signed session cookie
        # over HTTPS flask-wtf would also demand a same-host Referer, which our
        # Referrer-Policy: no-referrer never lets a browser send: the desk's sign-in failed
        # over HTTPS. The token and the SameSite=Lax cookie are the CSRF protection.
        WTF_CSRF_SSL_STRICT=False,
        # the visitor's catalog; desk requests switch to the desk's (see portal.web.DESK_DOMAIN)
        BABEL_TRANSLATION_DIRECTORIES="translations",
        BABEL_DOMAIN="messages",
        BABEL_DEFAULT_LOCALE=hotspot.portal.default_language,
        BABEL_DEFAULT_TIMEZONE=hotspot.library.timezone,
    )
    if test_config:
        app.config.update(test_config)

    # deliberate: importing one portal module (portal.neighbours, the tests') must not load every page
    from portal import api, desk, health, login, probes, splash, web

    web.init_app(app)
    app.register_blueprint(health.bp)
    # the visitor portal: probes first, so every request for another host becomes a redirect
    for blueprint in (probes.bp, splash.bp, login.bp, api.bp):
        app.register_blueprint(blueprint)
    desk.init_app(app)
    return app


def _read_secret(hotspot: config_mod.Config) -> str:
    try:
        return hotspot.portal.secret_key_file.read_text().strip()
    except OSError:
        # no key file (a unit test): cookies then last only as long as this process
        return secrets.token_hex(32)
