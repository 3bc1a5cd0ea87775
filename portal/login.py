"""The visitor's forms: voucher login, free mode, logout, the survey answer.

Each view follows the same steps: find the device (its MAC; no MAC, no login),
check the form's device-bound token (:mod:`portal.visitor`; Flask-WTF's cookie-bound
CSRF is switched off here because mini-browsers drop cookies), check the rate limit,
call domain code (``gateway.model.vouchers``, ``gateway.model.free``, ``gateway.model.survey``;
a code that is no local voucher goes to HQ through ``gateway.radius.login`` when the
config has ``[radius]``), then
ask the gateway to apply the change and redirect (303) to a GET page, so the
mini-browser makes the full navigation after which the OS re-probes and sees it is
online. Failures re-render the splash with a message in the visitor's language.
Voucher codes are never logged; the voucher's public id is.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask_babel import gettext, ngettext

from gateway.logs import get_logger
from gateway.model import commands, ratelimit, survey
from gateway.model.free import FreeHourFull, FreeLimitReached, start_free_session
from gateway.model.sessions import Session, end_session
from gateway.model.vouchers import (
    VoucherDeviceLimit,
    VoucherError,
    VoucherExhausted,
    VoucherExpired,
    VoucherNotFound,
    VoucherRevoked,
    redeem,
)
from gateway.radius.login import CentralRefused, CentralUnavailable, central_login
from portal.authorize import confirm_online, count, release
from portal.probes import forget_offline
from portal.splash import MAX_CODE, lang_args, render_splash, render_wait
from portal.visitor import client_ip, client_mac, current_session, mac_session, next_url, now, token_ok
from portal.web import csrf, get_redis, hotspot

__all__ = ["bp", "voucher_message"]

bp = Blueprint("login", __name__)
csrf.exempt(bp)  # device-bound tokens instead: see portal.visitor
log = get_logger("portal")


def _limit() -> ratelimit.Limit:
    portal = hotspot().portal
    return ratelimit.Limit(
        "voucher", max_failures=portal.max_failures, lockout=portal.lockout,
        per_minute=portal.max_failures_per_minute,
    )  # fmt: skip


def voucher_message(err: VoucherError) -> str:
    """Return what the visitor is told when their code cannot be used."""
    if isinstance(err, VoucherRevoked):
        return gettext("This voucher has been cancelled. Please ask at the desk.")
    if isinstance(err, VoucherExpired):
        return gettext("This voucher has expired. Please ask at the desk for a new one.")
    if isinstance(err, VoucherExhausted):
        return gettext("This voucher's data is used up. Please ask at the desk for a new one.")
    if isinstance(err, VoucherDeviceLimit):
        return ngettext(
            "This voucher is already in use on %(num)d other device. "
            "Log out there first, or ask at the desk.",
            "This voucher is already in use on %(num)d other devices. "
            "Log out there first, or ask at the desk.",
            err.max_devices,
        )
    return gettext("We could not find that code. Check it on your voucher and try again.")


def _wait_message(seconds: int, library_wide: bool = False) -> str:
    if library_wide:
        return ngettext(
            "Too many wrong codes have been typed here in the last minute. "
            "Please wait %(num)d second and try again.",
            "Too many wrong codes have been typed here in the last minute. "
            "Please wait %(num)d seconds and try again.",
            seconds,
        )
    return ngettext(
        "Too many wrong codes. Please wait %(num)d second and try again.",
        "Too many wrong codes. Please wait %(num)d seconds and try again.",
        seconds,
    )


def _not_on_lan() -> Response:
    log.info("login_refused", reason="no_mac", ip=client_ip())
    message = gettext(
        "Your device does not seem to be connected to the library Wi-Fi. "
        "Connect to it and open this page again."
    )
    page = render_template("error.html", status=400, message=message)
    return Response(page, 400, mimetype="text/html")


def _stale_form(code: str = "") -> Response:
    message = gettext("This page was open for a long time. Please press the button again.")
    return render_splash(code=code, message=message, status=400)


def _count_answers(session: Session) -> list[str]:
    """Count the visitor's optional, anonymous survey answers in the form (``q_<question>``
    fields; unknown questions and answers are ignored); return the questions counted."""
    config = hotspot()
    answers = survey.pick(request.form, config.portal.survey.asked)
    if not answers:
        return []
    at = now()
    return survey.record(
        get_redis(), answers, sid=session.sid, now=at,
        timezone=config.library.timezone, ttl=int(session.seconds_left(at)),
    )  # fmt: skip


def _online(session: Session, *, move: bool = False, fresh: bool = False) -> Response:
    """Ask the gateway to apply ``session``; go on to the online page once it has.

    ``fresh``: the session was started by this request (never acked yet).
    ``move``: a session bound to another address follows the device here. Only after the
    gateway's probe found that address silent (:func:`_online_elsewhere`): a MAC still
    answering there is another device (a clone, a planted neighbour entry) and keeps
    its session (``docs/security.md``).
    """
    config = hotspot()
    forget_offline()  # this device's next request on an old connection must find it online
    # the questions on the login form: Android closes its sign-in window too soon for the
    # online page's survey, so answers may come with the login (never needed)
    _count_answers(session)
    ip = client_ip() if move else ""
    if confirm_online(get_redis(), session, timeout=config.gateway.ack_timeout, ip=ip, fresh=fresh):
        return redirect(url_for("splash.online", **lang_args()), 303)
    return render_wait()


def _elsewhere(mac: str, ip: str, code: str = "") -> Response:
    log.info("login_refused", reason="mac_online_elsewhere", mac=mac, ip=ip)
    message = gettext(
        "This device's address (MAC) is already online at another IP address on this network. "
        "Turn Wi-Fi off and on again, or ask at the desk."
    )
    return render_splash(code=code[:MAX_CODE], message=message, status=409)


def _online_elsewhere(mac: str, ip: str, timeout: float) -> bool:
    """Return whether ``mac`` has a session bound to another address whose device still answers there.

    A voucher login from a new address moves (or, with another code, replaces) the MAC's
    session. A phone that renewed its lease has left the old address; a clone or a
    visitor that planted "my address is at your MAC" has not, so the gateway's probe
    tells them apart. No answer from the gateway: no evidence, no login here.
    """
    existing = mac_session()
    if existing is None or existing.ip == ip:
        return False
    reply = commands.request(get_redis(), "present", timeout, sid=existing.sid)
    return reply is None or bool(reply.get("present", True))


@bp.post("/login")
def login():
    """Log the device in with the voucher code typed in the form."""
    mac = client_mac()
    if mac is None:
        return _not_on_lan()
    code = request.form.get("code", "").strip()
    if not token_ok(request.form.get("token", "")):
        return _stale_form(code)
    if not code:
        return render_splash(message=gettext("Please type the code printed on your voucher."), status=400)
    r, ip, limit = get_redis(), client_ip(), _limit()
    whos, at = (f"mac:{mac}", f"ip:{ip}"), now()
    # one atomic step: refuses while locked, else counts this attempt as a failure until it succeeds
    wait, library_wide = ratelimit.acquire(r, limit, whos, at)
    if wait:
        count(r, "logins_rate_limited")
        log.info("login_rate_limited", mac=mac, ip=ip, wait=wait, library_wide=library_wide)
        response = render_splash(code=code, message=_wait_message(wait, library_wide), status=429)
        response.headers["Retry-After"] = str(wait)
        return response
    config = hotspot()
    if _online_elsewhere(mac, ip, config.gateway.ack_timeout):
        return _elsewhere(mac, ip, code)
    try:
        if len(code) > MAX_CODE:
            raise VoucherNotFound("(too long)")
        try:
            session = redeem(
                r, code, mac=mac, ip=ip, plans=config.plans, now=at, timezone=config.library.timezone,
                existing=mac_session(),  # read once: _online_elsewhere above looked it up
            )  # fmt: skip
        except VoucherNotFound:
            if config.radius is None:
                raise
            session = central_login(r, config, code, mac=mac, ip=ip, now=now())
    except CentralUnavailable:
        # HQ is unreachable: not the visitor's mistake, so this attempt is given back, not a failure
        ratelimit.settle(r, limit, whos, at, ok=True)
        count(r, "logins_central_unavailable")
        message = gettext(
            "We cannot check this code with the program's central office right now. "
            "Library vouchers still work. Please try again later or ask at the desk."
        )
        return render_splash(code=code[:MAX_CODE], message=message, status=503)
    except (VoucherError, CentralRefused) as err:
        wait = ratelimit.settle(r, limit, whos, at, ok=False, counter="logins_failed")
        log.info("login_failed", mac=mac, ip=ip, reason=type(err).__name__, locked_for=wait)
        if wait:
            message = _wait_message(wait)
        elif isinstance(err, CentralRefused):
            message = err.message or voucher_message(VoucherNotFound(""))
        else:
            message = voucher_message(err)
        return render_splash(code=code[:MAX_CODE], message=message, status=429 if wait else 400)
    # gives back this attempt only: a right code never clears earlier wrong ones
    ratelimit.settle(r, limit, whos, at, ok=True, counter="logins_ok")
    log.info("login_ok", mac=mac, ip=ip, sid=session.sid, voucher_id=session.voucher_id, plan=session.plan)
    # a session this login started has never been acked: no need to ask Redis whether it was
    return _online(session, move=True, fresh=session.started_at == at)


@bp.post("/free")
def free():
    """Start the device's free session (where the library offers one)."""
    config = hotspot()
    if not config.portal.free_plan:
        abort(404)
    mac = client_mac()
    if mac is None:
        return _not_on_lan()
    if not token_ok(request.form.get("token", "")):
        return _stale_form()
    r, ip = get_redis(), client_ip()
    if _online_elsewhere(mac, ip, config.gateway.ack_timeout):
        return _elsewhere(mac, ip)
    try:
        session = start_free_session(
            r, config.plans[config.portal.free_plan], mac=mac, ip=ip,
            per_day=config.portal.free_per_day, now=now(), timezone=config.library.timezone,
            per_hour=config.portal.free_per_hour,
        )  # fmt: skip
    except FreeHourFull as err:
        count(r, "free_logins_refused_hour")
        log.info("free_login_refused", mac=mac, reason="library_hourly_limit")
        message = ngettext(
            "The free sessions for this hour are all taken. Please try again in %(num)d minute, "
            "or ask at the desk for a voucher.",
            "The free sessions for this hour are all taken. Please try again in %(num)d minutes, "
            "or ask at the desk for a voucher.",
            max(1, err.retry_after // 60),
        )
        response = render_splash(message=message, status=429)
        response.headers["Retry-After"] = str(err.retry_after)
        return response
    except FreeLimitReached:
        log.info("free_login_refused", mac=mac, reason="daily_limit")
        message = gettext(
            "You have used today's free time on this device. Please ask at the desk for a voucher."
        )
        return render_splash(message=message, status=429)
    if session.kind == "free":
        count(r, "free_logins")
    log.info("free_login", mac=mac, ip=ip, sid=session.sid, plan=session.plan)
    # a session bound elsewhere whose device no longer answers there (checked above) follows it
    return _online(session, move=session.ip != ip)


@bp.post("/logout")
def logout():
    """End the device's session ("logout") and ask the gateway to close it."""
    mac = client_mac()
    if mac is None:
        return _not_on_lan()
    if not token_ok(request.form.get("token", "")):
        abort(400)
    session = current_session()
    bye: int | str = 1
    if session is not None:
        bye = "free" if session.kind == "free" else 1  # a free session has no code to log in again with
        r = get_redis()
        # the gateway ends the session as it cuts it off, counting its last bytes (item 10)
        if release(r, session, timeout=hotspot().gateway.ack_timeout):
            log.info("logout", mac=mac, sid=session.sid)
        else:
            # the gateway is down or slow: end it in our records and say that the router has
            # not cut the device off yet (it does when it runs again; the kernel's own timeout
            # ends it at the latest when the session would have ended)
            end_session(r, session.sid, "logout", now())
            log.warning("logout_unconfirmed", mac=mac, sid=session.sid)
            bye = 2
    return redirect(url_for("splash.index", bye=bye, **lang_args()), 303)


@bp.post("/survey")
def survey_answer():
    """Count the visitor's (anonymous) answer; back to the questions left, else on to the page
    first asked for."""
    session = current_session()
    if session is not None and token_ok(request.form.get("token", "")):
        counted = _count_answers(session)
        done = survey.answered(get_redis(), session.sid) if counted else frozenset()
        if counted and any(q.id not in done for q in hotspot().portal.survey.asked):
            return redirect(url_for("splash.online", thanks=1, **lang_args()) + "#survey", 303)
    return redirect(next_url() or url_for("splash.status", **lang_args()), 303)
