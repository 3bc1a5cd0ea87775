"""The HQ page's routes and plumbing: sign in/out, the report, its CSV, language, CSRF, headers.

- Language: ``?lang=id|en`` (remembered in a cookie), else the cookie, else the browser's
  ``Accept-Language``, else Bahasa Indonesia. Strings in the ``hq`` catalog
  (``hqweb/translations``, ``make translations``).
- Signing in: a staff account's name and password (:mod:`hqweb.staff`); a wrong password is
  limited per name and per address (:mod:`hqweb.limits`). The sign-in lives in the signed
  session cookie (HttpOnly, SameSite=Lax, Secure unless the page runs as plain HTTP on
  loopback) with the account's hash fingerprint and the time, checked on every request: a
  removed account, a new password or ``session_hours`` later, it is over.
- Every form carries a CSRF token (flask-wtf); every answer the portal's security headers.
- Bad input (a month like "2026-13", ``by=foo``) is a page saying what is wrong (400), the
  database unreachable a page saying so (503); never a traceback.
"""

from __future__ import annotations

import csv
import functools
import io
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from babel.dates import format_skeleton
from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import Babel, get_locale
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from gateway.days import month_of, next_month
from gateway.hq.reach import COLUMNS, GROUPS, SURVEY_COLUMNS, VOUCHER_COLUMNS, ReportError, run_report
from gateway.logs import get_logger
from hqweb import HERE
from hqweb.limits import LoginLimiter
from hqweb.settings import LANGUAGES, Settings
from hqweb.staff import MAX_PASSWORD, StaffFile
from portal.formats import decimal, size

__all__ = ["bp", "init_app"]

bp = Blueprint("hq", __name__, template_folder="templates")
csrf = CSRFProtect()
log = get_logger("hq-web")
LANG_COOKIE = "lang"
SESSION_KEY = "hq_staff"
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
KIND_COLUMNS = {"reach": COLUMNS, "vouchers": VOUCHER_COLUMNS, "survey": SURVEY_COLUMNS}


def settings() -> Settings:
    return current_app.config["HQ"]


def select_locale() -> str:
    """Return the page's language (see the module doc for the order)."""
    wanted = request.args.get("lang") or request.cookies.get(LANG_COOKIE)
    if wanted in LANGUAGES:
        return wanted
    return request.accept_languages.best_match(LANGUAGES) or LANGUAGES[0]


# -- formats (Indonesian conventions through Babel, as the desk: portal.formats) -------------


class Formatter:
    """Numbers, sizes and periods in the page's language (a template's ``fmt``)."""

    def __init__(self, locale: str):
        self.locale = locale

    def number(self, value: float) -> str:
        return decimal(value, self.locale)

    def hours(self, value: float) -> str:
        return decimal(value, self.locale, "#,##0.0")

    def size(self, value: float) -> str:
        return size(value, self.locale)

    def period(self, label: str) -> str:
        """``"2026-11"`` -> "November 2026"; ``"2026-11-03"`` -> "3 Nov 2026" (id) / "Nov 3, 2026"."""
        try:
            if _DAY.match(label):
                return format_skeleton("yMMMd", date.fromisoformat(label), locale=self.locale)
            if first := month_of(label):
                return format_skeleton("yMMMM", first, locale=self.locale)
        except ValueError:
            pass
        return label


# -- signing in ------------------------------------------------------------------------------


def _staff() -> StaffFile:
    return StaffFile(settings().staff_file)


def _limiter() -> LoginLimiter:
    return current_app.extensions["hq_limiter"]


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Let only signed-in staff in; others go to the sign-in page (and nothing happens)."""

    @functools.wraps(view)
    def wrapped(**kwargs: Any) -> Any:
        if g.get("staff") is None:
            if session.get(SESSION_KEY):
                flash(_("Your sign-in has ended. Please sign in again."), "error")
                session.pop(SESSION_KEY, None)
            return redirect(url_for("hq.login", next=request.full_path.rstrip("?")))
        return view(**kwargs)

    return wrapped


def _load_staff() -> None:
    g.staff = None
    held = session.get(SESSION_KEY)
    if not isinstance(held, dict):
        return
    name, tag, at = held.get("name"), held.get("fp"), held.get("at")
    if not isinstance(name, str) or not isinstance(at, (int, float)):
        return
    if time.time() - at > settings().session_hours * 3600:
        return
    if tag and _staff().fingerprint(name) == tag:
        g.staff = name


def _safe_next(target: str | None) -> str:
    # a path on this page only: never an open redirect
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("hq.report")


@bp.route("/login", methods=("GET", "POST"))
def login():
    """Show the sign-in form; sign in with name and password."""
    if request.method == "GET":
        if g.staff is not None:
            return redirect(url_for("hq.report"))
        return render_template("hq/login.html", next=request.args.get("next", ""))
    name = request.form.get("name", "").strip().lower()[:64]
    password = request.form.get("password", "")[: MAX_PASSWORD + 1]
    keys = [f"name:{name}", f"addr:{request.remote_addr}"]
    now = time.time()
    status = 200
    if not name or not password:
        error = _("Enter your account name and password.")
    elif wait := _limiter().wait(keys, now):
        error, status = _("Too many wrong passwords. Try again in %(seconds)d seconds.", seconds=wait), 429
    elif _staff().verify(name, password):
        _limiter().succeeded(keys)
        session.clear()
        session.permanent = True
        session[SESSION_KEY] = {"name": name, "fp": _staff().fingerprint(name), "at": int(now)}
        log.info("hq_login", account=name, addr=request.remote_addr)
        return redirect(_safe_next(request.form.get("next")))
    else:
        locked = _limiter().failed(keys, now)
        log.info("hq_login_failed", account=name if name in _staff().load() else "(unknown)",
                 addr=request.remote_addr)  # fmt: skip
        error = _("Wrong account name or password.")
        if locked:
            error = _("Too many wrong passwords. Try again in %(seconds)d seconds.", seconds=locked)
            status = 429
    flash(error, "error")
    return render_template("hq/login.html", next=request.form.get("next", ""), name=name), status


@bp.post("/logout")
def logout():
    """Sign out."""
    session.pop(SESSION_KEY, None)
    flash(_("You are signed out."), "ok")
    return redirect(url_for("hq.login"))


# -- the report ------------------------------------------------------------------------------


class BadQuery(ValueError):
    """A report parameter that makes no sense (the message is for the reader)."""


def _this_month() -> date:
    return datetime.now(ZoneInfo(settings().timezone)).date().replace(day=1)


def report_query(args: Any) -> dict[str, Any]:
    """Return the report's period and grouping from the query string; raise :class:`BadQuery`."""
    by = args.get("by", "library")
    if by not in GROUPS:
        raise BadQuery(_("Group by library, district or province."))
    month_text, day_text = args.get("month", "").strip(), args.get("day", "").strip()
    if day_text:
        try:
            day = date.fromisoformat(day_text) if _DAY.match(day_text) else None
        except ValueError:
            day = None
        if day is None:
            raise BadQuery(_('"%(day)s" is not a day like 2026-11-03.', day=day_text[:20]))
        return {"by": by, "per": "day", "since": day, "until": day + timedelta(days=1), "day": day,
                "month": day.replace(day=1)}  # fmt: skip
    if month_text:
        start = month_of(month_text)
        if start is None:
            raise BadQuery(_('"%(month)s" is not a month like 2026-11.', month=month_text[:20]))
    else:
        start = _this_month()
    per = args.get("per", "month")
    if per not in ("month", "day"):
        raise BadQuery(_("Show per month or per day."))
    return {"by": by, "per": per, "since": start, "until": next_month(start), "day": None, "month": start}


def _run(query: dict[str, Any], kind: str, hq: Settings | None = None) -> list[dict]:
    """Run report ``kind`` (``hq``: the settings, given when called outside the request's thread)."""
    hq = hq or settings()
    return run_report(
        hq.db, query["since"], query["until"], by=query["by"], per=query["per"],
        tz=hq.timezone, kind=kind, timeout=60,
    )  # fmt: skip


def _totals(rows: list[dict]) -> dict[str, Any]:
    total: dict[str, Any] = {k: sum(row[k] for row in rows) for k in ("sessions", "hours", "bytes")}
    total["voucher_sessions"] = sum(row["voucher_sessions"] for row in rows)
    # devices are per-library hashes, so groups of one period add up; across periods they would not
    one_period = len({row["period"] for row in rows}) <= 1
    total["devices"] = sum(row["devices"] for row in rows) if one_period else None
    return total


@bp.get("/")
@login_required
def report():
    """The reach report: sessions, devices, hours, data, central accounts, vouchers, survey."""
    try:
        query = report_query(request.args)
    except BadQuery as err:
        return render_template("hq/error.html", message=str(err), back=url_for("hq.report")), 400
    # the queries at once (one psql process each): the page waits for the slowest, not the sum
    kinds = ("reach", "vouchers", "survey", "libraries")
    with ThreadPoolExecutor(max_workers=len(kinds)) as pool:
        found = {kind: pool.submit(_run, query, kind, settings()) for kind in kinds}
        rows, vouchers, answers, libraries = (found[kind].result() for kind in kinds)
    # a library's name beside its id (the report groups by the id HQ knows it by)
    names = (
        {row["id"]: row["name"] for row in libraries if row.get("name")} if query["by"] == "library" else {}
    )
    survey: dict[str, list[dict]] = {}
    for row in answers:
        survey.setdefault(row["question"], []).append(row)
    month = query["month"]
    return render_template(
        "hq/report.html", q=query, rows=rows, total=_totals(rows), vouchers=vouchers, survey=survey,
        names=names,
        prev=(month - timedelta(days=1)).replace(day=1).strftime("%Y-%m"),
        next=next_month(month).strftime("%Y-%m"), month=month.strftime("%Y-%m"), tz=settings().timezone,
    )  # fmt: skip


def _cell(value: Any) -> Any:
    # a cell a spreadsheet would run as a formula ("=HYPERLINK(...)" as a library's name) is quoted
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@bp.get("/report.csv")
@login_required
def report_csv():
    """The same report as CSV (``kind`` reach, vouchers or survey; the CLI's columns)."""
    kind = request.args.get("kind", "reach")
    if kind not in KIND_COLUMNS:
        return render_template("hq/error.html", message=_("No such report."), back=url_for("hq.report")), 400
    try:
        query = report_query(request.args)
    except BadQuery as err:
        return render_template("hq/error.html", message=str(err), back=url_for("hq.report")), 400
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=list(KIND_COLUMNS[kind]), lineterminator="\r\n", extrasaction="ignore"
    )
    writer.writeheader()
    for row in _run(query, kind):
        writer.writerow({k: _cell(v) for k, v in row.items()})
    period = query["day"].isoformat() if query["day"] else query["month"].strftime("%Y-%m")
    name = f"perpuseru-{kind}-{period}-{query['by']}-{query['per']}.csv"
    return Response(
        out.getvalue(), mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )  # fmt: skip


# -- plumbing --------------------------------------------------------------------------------


def _security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    )
    if settings().secure_cookies:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if request.endpoint != "static":
        headers.setdefault("Cache-Control", "no-store")
    wanted = request.args.get("lang")
    if wanted in LANGUAGES and request.cookies.get(LANG_COOKIE) != wanted:
        response.set_cookie(
            LANG_COOKIE, wanted, max_age=365 * 86400, httponly=True, samesite="Lax",
            secure=settings().secure_cookies,
        )  # fmt: skip
    return response


def _lang_url(code: str) -> str:
    """Return this page's address in language ``code`` (its other parameters kept)."""
    args = request.args.to_dict()
    args["lang"] = code
    return "?" + urlencode(args)


def _messages() -> dict[int, str]:
    return {
        400: _("The request was not understood. Please go back and try again."),
        404: _("This page does not exist."),
        405: _("This page cannot be used that way."),
        413: _("What you sent is too large."),
        500: _("Something went wrong on our side. Please try again."),
    }


def init_app(app: Flask) -> None:
    """Attach the routes and plumbing to ``app``."""
    hq = app.config["HQ"]
    Babel(
        app, locale_selector=select_locale, default_domain="hq",
        default_translation_directories=str(HERE / "translations"),
    )  # fmt: skip
    csrf.init_app(app)
    app.extensions["hq_limiter"] = LoginLimiter(hq.max_failures, hq.window, hq.lockout)
    app.register_blueprint(bp)
    app.before_request(_load_staff)
    app.after_request(_security_headers)

    @app.context_processor
    def _inject() -> dict:
        lang = str(get_locale())
        return {
            "lang": lang, "languages": LANGUAGES, "staff": g.get("staff"), "fmt": Formatter(lang),
            "lang_url": _lang_url,
        }  # fmt: skip

    @app.errorhandler(CSRFError)
    def _csrf_error(_err: CSRFError):
        message = _("This form has expired. Please go back, reload the page and try again.")
        return render_template("hq/error.html", message=message, back=url_for("hq.login")), 400

    @app.errorhandler(ReportError)
    def _no_database(err: ReportError):
        log.error("hq_report_failed", error=str(err))
        message = _(
            "The report cannot be made right now: HQ's database does not answer. Please try again later."
        )
        return render_template("hq/error.html", message=message, back=url_for("hq.report")), 503

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        message = _messages().get(err.code or 500, _messages()[400])
        return render_template("hq/error.html", message=message, back=url_for("hq.report")), err.code

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        log.exception("hq_web_error", error=str(err))
        return render_template("hq/error.html", message=_messages()[500], back=url_for("hq.report")), 500
