"""The HQ page: the program's central reach report for its staff (Telkom, Coca-Cola Foundation
Indonesia), a Flask app that runs AT HQ, next to PostgreSQL (never on a library router).

- :mod:`~hqweb.settings`: from the environment (``HOTSPOT_HQ_DB`` ...).
- :mod:`~hqweb.staff`: its own staff accounts (a file of argon2 hashes, ``hotspotctl hq account``).
- :mod:`~hqweb.limits`: the wrong-password limit (one worker process: exact).
- :mod:`~hqweb.views`: sign in/out, the report page (per month or day, by library, district or
  province) and its CSV, through :func:`gateway.hq.reach.run_report` (``psql``).

Run by ``hotspotctl hq web`` (gunicorn, ``hqweb:create_app()``), at a real HQ from the
``hotspot-hq-web`` systemd unit (docs/fleet.md, "The HQ page").

May import: flask and its extensions, :mod:`gateway.hq`, the ground floor and the pure
:mod:`portal.formats`; never Redis or a router wing (HQ has none; an import-linter contract).
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask

__all__ = ["create_app"]

HERE = Path(__file__).resolve().parent
# the desk's look: its stylesheet is served from the portal's static folder (a file, not an import)
DESK_STATIC = HERE.parent / "portal" / "static"


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the HQ page app. ``test_config`` may carry ``HQ`` (a Settings) and Flask keys;
    otherwise the settings come from the environment."""
    from hqweb import views  # the blueprint's routes import this package's settings
    from hqweb.settings import Settings

    settings = (test_config or {}).get("HQ") or Settings.from_env()
    app = Flask(__name__, static_folder=str(DESK_STATIC), static_url_path="/static")
    app.config.from_mapping(
        HQ=settings,
        SECRET_KEY=_secret_key(settings.secret_file),
        SESSION_COOKIE_NAME="hq_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours),
        MAX_CONTENT_LENGTH=64 * 1024,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the signed-in session
    )
    if test_config:
        app.config.update({k: v for k, v in test_config.items() if k != "HQ"})
    views.init_app(app)
    return app


def _secret_key(path: Path) -> bytes:
    """Return the cookie-signing key kept in ``path``, making it (0600) on first start."""
    try:
        key = path.read_bytes().strip()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key + b"\n")
    return key
