"""Signing in to the desk: accounts with argon2 hashes, logins that expire, a wrong-password limit.

- ``/desk/login``: name and password. Wrong passwords are limited per account and per
  address (``[desk] max_failures``, ``lockout``; the wait doubles on each lockout), and a
  locked account answers the same whether the password was right or not.
- A login lasts ``desk.session_lifetime``; its token sits in the signed session cookie.
  Every request reloads the account, so a removed account or a changed role counts at once.
- ``login_required`` sends a signed-out (or expired) librarian to the login page and
  changes nothing; ``admin_required`` answers 403 for librarians.
- Every form on the desk carries a CSRF token (the portal's CSRFProtect).
- With ``[desk] networks`` set, the desk answers only devices in those networks (404 to others).
"""

from __future__ import annotations

import functools
import ipaddress
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from flask import abort, flash, g, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import gettext as _

from gateway.logs import get_logger
from gateway.model import accounts, keys, ratelimit
from portal.desk import bp
from portal.desk.activity_text import describe
from portal.desk.render import Formatter
from portal.web import get_redis, hotspot

__all__ = ["actor", "admin_required", "desk_formatter", "login_required"]

SESSION_KEY = "desk_login"
log = get_logger("desk")


def _limit() -> ratelimit.Limit:
    desk = hotspot().desk
    return ratelimit.Limit("desk", max_failures=desk.max_failures, window=900, lockout=desk.lockout)


def actor() -> str:
    """Return the signed-in account's name (who did it, for the audit trail)."""
    return g.desk.account.name


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Let only signed-in librarians (and admins) in; others go to the login page."""

    @functools.wraps(view)
    def wrapped(**kwargs: Any) -> Any:
        if g.get("desk") is None:
            if session.get(SESSION_KEY):
                flash(_("Your session has ended. Please sign in again."), "error")
                session.pop(SESSION_KEY, None)
            target = request.full_path.rstrip("?") if request.method == "GET" else None
            return redirect(url_for("desk.login", next=target) if target else url_for("desk.login"))
        return view(**kwargs)

    return wrapped


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Let only admins in (librarians get 403); implies :func:`login_required`."""

    @functools.wraps(view)
    def wrapped(**kwargs: Any) -> Any:
        if not g.desk.account.is_admin:
            abort(403)
        return view(**kwargs)

    return login_required(wrapped)


def _from_allowed_network() -> bool:
    networks = hotspot().desk.networks
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    return any(address in network for network in networks)


@bp.before_request
def _load_login() -> Any:
    if not _from_allowed_network():
        # desk.networks (default: the admin side only); a clear page, not a bare error
        g.desk = None
        page = render_template("desk/refused.html", address=request.remote_addr or "?")
        return page, 403  # type: ignore[return-value]  # Flask takes a response from before_request
    token = session.get(SESSION_KEY)
    g.desk = accounts.login_account(get_redis(), token, now=time.time()) if isinstance(token, str) else None


@bp.context_processor
def _desk_globals() -> dict:
    return {
        "desk": g.get("desk"),
        "fmt": desk_formatter(),
        "describe": describe,
        "gateway_down": _gateway_down(),
    }


def _gateway_down() -> bool:
    """Whether signed-in staff should be told the gateway is not running (no heartbeat in Redis)."""
    if g.get("desk") is None:
        return False
    return not get_redis().exists(keys.GATEWAY_HEARTBEAT)


def desk_formatter() -> Formatter:
    """Return the formats for this desk request: the library's time zone, the page's language."""
    return Formatter(ZoneInfo(hotspot().library.timezone), str(get_locale()))


@bp.errorhandler(403)
def _forbidden(_err: Exception):
    return render_template("desk/error.html", message=_("This page is for admins only.")), 403


def _safe_next(target: str | None) -> str:
    # only a path inside the desk: never an open redirect to another site
    if target and target.startswith("/desk") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("desk.dashboard")


@bp.route("/login", methods=("GET", "POST"))
def login():
    """Show the sign-in form; sign in with name and password."""
    r = get_redis()
    if request.method == "GET":
        if g.desk is not None:
            return redirect(url_for("desk.dashboard"))
        return render_template("desk/login.html", next=request.args.get("next", ""))
    name = request.form.get("name", "").strip().lower()[:64]
    password = request.form.get("password", "")[: accounts.MAX_PASSWORD + 1]
    limit = _limit()
    keys = [f"account:{name}", f"addr:{request.remote_addr}"]
    error, status = None, 200
    if not name or not password:
        error = _("Enter your account name and password.")
    # reserve the attempt atomically (argon2 is slow: check-then-record let parallel guesses
    # through); a right password gives back its own reservation only (issue 16)
    elif wait := ratelimit.acquire(r, limit, keys, at := time.time())[0]:
        error, status = _("Too many wrong passwords. Try again in %(seconds)d seconds.", seconds=wait), 429
    else:
        account = accounts.authenticate(r, name, password)
        if account is None:
            wait = ratelimit.settle(r, limit, keys, at, ok=False)
            shown = name if accounts.get_account(r, name) else "(unknown)"  # never echo a mistyped password
            log.info("desk_login_failed", account=shown, addr=request.remote_addr)
            error = _("Wrong account name or password.")
            if wait:
                error, status = (
                    _("Too many wrong passwords. Try again in %(seconds)d seconds.", seconds=wait),
                    429,
                )
        else:
            ratelimit.settle(r, limit, keys, at, ok=True)
            token = accounts.open_login(r, account, lifetime=hotspot().desk.session_lifetime, now=time.time())
            old = session.get(SESSION_KEY)
            if isinstance(old, str):
                accounts.close_login(r, old)
            session[SESSION_KEY] = token
            log.info("desk_login", account=account.name, role=account.role)
            return redirect(_safe_next(request.form.get("next")))
    flash(error, "error")
    return render_template("desk/login.html", next=request.form.get("next", ""), name=name), status


@bp.post("/logout")
def logout():
    """Sign out: end this desk login."""
    token = session.pop(SESSION_KEY, None)
    if isinstance(token, str):
        accounts.close_login(get_redis(), token)
    flash(_("You are signed out."), "ok")
    return redirect(url_for("desk.login"))


@bp.route("/account", methods=("GET", "POST"))
@login_required
def account():
    """Change one's own password (the old one is asked again)."""
    if request.method == "POST":
        r = get_redis()
        name = actor()
        current = request.form.get("current", "")[: accounts.MAX_PASSWORD + 1]
        new, again = request.form.get("new", ""), request.form.get("again", "")
        error = None
        if accounts.authenticate(r, name, current) is None:
            error = _("Your current password is not right.")
        elif new != again:
            error = _("The two new passwords are not the same.")
        else:
            try:
                accounts.set_password(r, name, new, actor=name, now=time.time())
            except accounts.AccountError:
                error = _("The new password needs at least %(n)d characters and must not be your name.",
                          n=accounts.MIN_PASSWORD)  # fmt: skip
        if error is None:
            session.pop(SESSION_KEY, None)
            flash(_("Password changed. Please sign in with the new one."), "ok")
            return redirect(url_for("desk.login"))
        flash(error, "error")
    return render_template("desk/account.html")
