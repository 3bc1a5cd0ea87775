"""Plumbing every page shares: one Redis pool per worker, language choice, CSRF, headers, error pages.

- :func:`get_redis` returns the worker's Redis client (one connection pool per process, on the app).
- Catalogs: visitor pages read only ``messages``; desk requests (``/desk``) read ``desk``
  over ``messages`` (:data:`DESK_DOMAIN`), so a desk word never reaches a visitor's page.
- Language: ``?lang=xx`` (remembered in a cookie), else the cookie, else the browser's
  ``Accept-Language``, else the config's default (Bahasa Indonesia).
- Every response carries security headers; errors render a plain page in the visitor's
  language (never a traceback); Redis being down gives a friendly 503 "try again".
"""

from __future__ import annotations

from pathlib import Path

import redis
from flask import Flask, Response, current_app, render_template, request, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_babel import Babel, Domain, get_locale, gettext
from flask_wtf.csrf import CSRFError, CSRFProtect
from itsdangerous import URLSafeTimedSerializer
from werkzeug.exceptions import HTTPException

from gateway.config import Config
from gateway.logs import get_logger
from gateway.model.store import connect

__all__ = ["DESK_DOMAIN", "csrf", "get_redis", "hotspot", "init_app", "LANG_COOKIE", "secret_form_url"]

LANG_COOKIE = "lang"
csrf = CSRFProtect()
babel = Babel()
log = get_logger("portal")
_TRANSLATIONS = str(Path(__file__).resolve().parent / "translations")
# the desk's strings over the shared ones (error pages); the later catalog wins a merge
DESK_DOMAIN = Domain(translation_directories=[_TRANSLATIONS, _TRANSLATIONS], domain="messages;desk")


def hotspot() -> Config:
    """Return the hotspot config of the running app."""
    return current_app.config["HOTSPOT"]


def get_redis() -> redis.Redis:
    """Return the app's Redis client: one connection pool per worker process, shared by its requests.

    A client per request opened a new connection for every page and login (connect, the
    client's handshake, and redis-py reading its own package metadata each time): about a
    millisecond of CPU and three round trips per request, paid 40 times when a class logs
    in at once (issue 16). Pooled connections go back to the pool after each command; a
    pool notices a fork and starts afresh in the child.
    """
    config = hotspot()
    # long enough for a login to wait for the gateway's ack (BLPOP) on a pooled connection
    timeout = max(3.0, config.gateway.ack_timeout + 2)
    clients = current_app.extensions.setdefault("hotspot_redis", {})
    client = clients.get((config.redis_url, timeout))
    if client is None:
        client = clients[(config.redis_url, timeout)] = connect(config, timeout=timeout)
    return client


def select_locale() -> str:
    """Return the language for this request (see the module docstring for the order)."""
    languages = hotspot().portal.languages
    wanted = request.args.get("lang") or request.cookies.get(LANG_COOKIE)
    if wanted in languages:
        return wanted
    return request.accept_languages.best_match(languages) or hotspot().portal.default_language


def _pick_catalog() -> None:
    """Make the desk's catalog the default for a desk request (the visitor's stays otherwise)."""
    if request.path == "/desk" or request.path.startswith("/desk/"):
        DESK_DOMAIN.as_default()


def _remember_language(response: Response) -> Response:
    wanted = request.args.get("lang")
    if wanted in hotspot().portal.languages and request.cookies.get(LANG_COOKIE) != wanted:
        response.set_cookie(
            LANG_COOKIE, wanted, max_age=365 * 86400, httponly=True, samesite="Lax", secure=request.is_secure
        )
    return response


def _security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault(
        "Content-Security-Policy",
        # everything is served by the portal itself; no external requests at all
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    )
    if request.path.startswith("/desk") or request.method != "GET":
        headers.setdefault("Cache-Control", "no-store")
    return response


def secret_form_url(endpoint: str, **values: str) -> str:
    """Return where a form carrying a secret (the voucher code) posts to.

    Its own path, except on a page served over plain HTTP when the portal has a
    certificate and an ``https://`` ``portal.url``: then the HTTPS portal, so the code
    never travels in clear even if the page itself came over HTTP (issue 16, item 9).
    """
    path = url_for(endpoint, **values)
    portal = hotspot().portal
    if portal.tls and portal.url.startswith("https://") and not request.is_secure:
        return portal.url.rstrip("/") + path
    return path


def _error_page(status: int, message: str) -> tuple[str, int]:
    return render_template("error.html", status=status, message=message), status


def _messages() -> dict[int, str]:
    return {
        400: gettext("The request was not understood. Please go back and try again."),
        403: gettext("You are not allowed to open this page."),
        404: gettext("This page does not exist."),
        405: gettext("This page cannot be used that way."),
        413: gettext("What you sent is too large."),
        429: gettext("Too many attempts. Please wait a moment and try again."),
        500: gettext("Something went wrong on our side. Please try again."),
        503: gettext("The hotspot is busy starting up. Please try again in a moment."),
    }


class _Sessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signing serializer built once per secret.

    Flask builds a new one for every request, cookie or not; every probe paid for it.
    """

    _built: dict[tuple, URLSafeTimedSerializer | None] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        secrets = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        if secrets not in self._built:
            self._built[secrets] = super().get_signing_serializer(app)
        return self._built[secrets]


def init_app(app: Flask) -> None:
    """Attach the shared plumbing to ``app``."""
    app.session_interface = _Sessions()
    babel.init_app(app, locale_selector=select_locale)
    csrf.init_app(app)
    app.before_request(_pick_catalog)
    app.after_request(_security_headers)
    app.after_request(_remember_language)

    @app.context_processor
    def _inject() -> dict:
        config = hotspot()
        return {
            "hotspot": config, "library": config.library, "lang": str(get_locale()),
            "secret_form_url": secret_form_url,
        }  # fmt: skip

    @app.errorhandler(CSRFError)
    def _csrf_error(_err: CSRFError):
        return _error_page(400, gettext("This form has expired. Please reload the page and try again."))

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        return _error_page(err.code or 500, _messages().get(err.code or 500, err.description or ""))

    @app.errorhandler(redis.RedisError)
    def _redis_down(err: redis.RedisError):
        log.warning("redis_unavailable", error=str(err), path=request.path)
        if request.path == "/desk" or request.path.startswith("/desk/"):
            # staff get what is wrong and what to do, not the visitors' "getting ready"
            return render_template("desk/unavailable.html"), 503, {"Retry-After": "5"}
        page, status = _error_page(503, _messages()[503])
        return page, status, {"Retry-After": "5"}

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        if isinstance(err, HTTPException):
            return _http_error(err)
        log.exception("request_failed", path=request.path, method=request.method)
        return _error_page(500, _messages()[500])
