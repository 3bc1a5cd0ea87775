"""The visitor's pages: the splash (login), the online page, the status page, branding files.

GET views only; the forms post to :mod:`portal.login`. Every page is built for the
OS's captive-portal mini-browser (see ``docs/portal.md``): one self-contained
response (styles and drawn marks inlined), no JavaScript at all, readable at 360 px,
never cached (it carries the device's form token), in Bahasa Indonesia unless the
visitor picks English.

- ``/``        the splash; a device that is online is sent to ``/status``.
               ``/?code=ABCD-EFGH`` (the QR code on a printed voucher) fills the field in.
- ``/online``  "you are online", shown only once the gateway has acked the login;
               the optional survey (each question one tap, each its own little form, so
               every tap counts at once; the page comes back with the questions left),
               and a link on to the page first asked for.
- ``/status``  time and data left, speed cap, log out (a stable URL to come back to; a free
               session's logout asks first, ``?confirm=logout``, as it ends the day's free time); it
               never reloads by itself (WCAG 2.2.1): a refresh button updates it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import (
    Blueprint,
    Response,
    abort,
    make_response,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import get_locale, gettext

from gateway.model import survey
from gateway.model.free import free_left
from gateway.model.sessions import Session
from portal import branding, formats
from portal.authorize import confirm_online
from portal.survey_text import asked
from portal.visitor import client_mac, current_session, form_token, next_url, now
from portal.web import get_redis, hotspot

__all__ = [
    "MAX_CODE",
    "bp",
    "lang_args",
    "no_store",
    "render_splash",
    "render_wait",
    "session_facts",
    "status_urls",
    "visitor_page",
]

bp = Blueprint("splash", __name__)

MAX_CODE = 64  # longer than any code typed with spaces and dashes; anything longer is not one


def lang_args() -> dict[str, str]:
    """Return the URL arguments that keep the visitor's language (cookies may not survive)."""
    return {"lang": str(get_locale())}


def no_store(response: Response) -> Response:
    """Mark ``response`` uncacheable: it holds a per-device token or per-session facts."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _text_for(texts: dict[str, str], lang: str) -> str:
    return texts.get(lang) or next((t for t in texts.values() if t), "")


def visitor_page(template: str, status: int = 200, **context) -> Response:
    """Render a visitor page (``templates/splash/``) with the co-branded header, uncacheable."""
    config = hotspot()
    lang = str(get_locale())
    page = render_template(
        template,
        marks=branding.marks(config.library.branding_dir, config.library.name),
        hours=_text_for(dict(config.library.opening_hours), lang),
        **context,
    )
    return no_store(make_response(page, status))


def status_urls() -> dict[str, str]:
    """Return where a visitor comes back to: the short name's status page, and the raw address
    (for phones whose DNS does not ask the router, e.g. Android's Private DNS)."""
    portal = hotspot().portal
    short, raw = portal.short_url + "/status", portal.url + "/status"
    return {"status_url": short, "raw_status_url": raw if raw != short else ""}


def render_splash(
    *, code: str = "", message: str | None = None, kind: str = "error", status: int = 200
) -> Response:
    """Return the splash page, with ``message`` shown above the form when given."""
    config = hotspot()
    lang = str(get_locale())
    free = None
    if config.portal.free_plan:
        plan = config.plans[config.portal.free_plan]
        mac = client_mac()
        per_day = config.portal.free_per_day
        left = per_day
        if mac is not None:
            left = free_left(get_redis(), mac, per_day=per_day, now=now(), timezone=config.library.timezone)
        free = {"label": plan.label_for(lang), "left": left, "per_day": per_day}
    return visitor_page(
        "splash/index.html",
        status,
        code="".join(ch for ch in code if ch.isprintable())[:MAX_CODE],
        message=message,
        kind=kind,
        token=form_token(),
        free=free,
        terms=_text_for(dict(config.library.terms), lang),
        # the questions ride along with the login, folded away (see templates/splash/index.html)
        questions=asked(config.portal.survey.asked),
        **status_urls(),
    )


def render_wait() -> Response:
    """Return the "almost there" page: the code is accepted, the gateway has not acked yet."""
    target = url_for("splash.online", **lang_args())
    return visitor_page("splash/wait.html", 202, target=target)


def _duration_text(seconds: float) -> str:
    minutes = int(seconds) // 60
    if minutes < 1:
        return gettext("less than a minute")
    hours, minutes = divmod(minutes, 60)
    if hours:
        return gettext("%(hours)d h %(minutes)d min", hours=hours, minutes=minutes)
    return gettext("%(minutes)d min", minutes=minutes)


def session_facts(session: Session) -> dict[str, str | None]:
    """Return what the visitor is told about ``session``, formatted in their language."""
    config = hotspot()
    fmt = formats.here()
    at = now()
    plan = config.plans.get(session.plan)
    ends = datetime.fromtimestamp(session.expires_at, UTC)
    left = session.seconds_left(at)
    bytes_left = session.bytes_left()
    return {
        "plan": plan.label_for(str(get_locale())) if plan else _other_plan(session),
        "now": fmt.clock(at),
        "time_left": _duration_text(left),
        "until": fmt.clock(ends) if left < 20 * 3600 else fmt.day_and_clock(ends),
        "data_left": fmt.size(bytes_left) if bytes_left is not None else None,
        "used": fmt.size(session.bytes_up + session.bytes_down),
        "down": fmt.rate(session.down),
        "up": fmt.rate(session.up),
        "message": session.message or None,
    }


def _other_plan(session: Session) -> str:
    """Return the label of a session without a local plan (a central account's)."""
    if session.kind == "central":
        return gettext("Program account")
    return session.plan


@bp.get("/")
def index():
    """Show the splash, or send a device that is online to its status page."""
    if current_session() is not None:
        return redirect(url_for("splash.status", **lang_args()))
    message, kind = None, "error"
    bye = request.args.get("bye")
    if bye == "2":
        message = gettext(
            "Your logout is recorded, but the router has not confirmed it yet: this device may "
            "stay connected for a while. Please ask at the desk if that matters to you."
        )
        kind = "error"
    elif bye == "free":
        message = gettext("You are logged out. Today's free time on this device has ended.")
        kind = "ok"
    elif bye:
        message = gettext(
            "You are logged out. You can log in again with the same code while it is still valid."
        )
        kind = "ok"
    return render_splash(code=request.args.get("code", ""), message=message, kind=kind)


@bp.get("/online")
def online():
    """Say "you are online" once the gateway has applied the session (else wait and retry)."""
    session = current_session()
    if session is None:
        return redirect(url_for("splash.index", **lang_args()))
    r = get_redis()
    config = hotspot()
    # no move from here: a GET proves nothing a MAC clone could not (only a voucher login moves)
    if not confirm_online(r, session, timeout=config.gateway.ack_timeout):
        return render_wait()
    done = survey.answered(r, session.sid) if config.portal.survey.asked else frozenset()
    return visitor_page(
        "splash/online.html",
        facts=session_facts(session),
        next_url=next_url(),
        questions=asked(config.portal.survey.asked, done),
        thanks=bool(done) and request.args.get("thanks") == "1",
        token=form_token(),
        **status_urls(),
    )


@bp.get("/status")
def status():
    """Show time and data left, the speed cap and a logout button."""
    session = current_session()
    if session is None:
        return redirect(url_for("splash.index", **lang_args()))
    return visitor_page(
        "splash/status.html",
        facts=session_facts(session),
        free=session.kind == "free",  # logging out throws the day's free time away: ask first
        confirm=request.args.get("confirm") == "logout",
        token=form_token(),
        **status_urls(),
    )


@bp.get("/branding/<name>")
def branding_file(name: str):
    """Serve a library's replacement mark from ``library.branding_dir``."""
    stem, _, ext = name.rpartition(".")
    path = branding.replacement(hotspot().library.branding_dir, stem) if ext in branding.TYPES else None
    if path is None or path.name != name:
        abort(404)
    response = send_file(path, mimetype=branding.TYPES[ext], max_age=3600)
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response
