"""The desk's front page: who is online now, today's numbers and usage chart; kick, extend or
throttle a client.

Bytes and current speed come from the gateway's accounting, which writes them into
each online session every few seconds; the page refreshes itself (no script needed).
"""

from __future__ import annotations

import time
from zoneinfo import ZoneInfo

import redis
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from gateway.days import day_of
from gateway.model import commands, keys
from gateway.model.leases import HostNames
from gateway.model.limits import PLAN_DOWN, LimitError, NotOnline, limit_client, parse_limit
from gateway.model.reports import day_report
from gateway.model.sessions import Session, online_sessions
from gateway.model.voucher_admin import extend_client, kick_client
from gateway.model.vouchers import VoucherRevoked
from portal.desk import bp
from portal.desk.auth import actor, desk_formatter, login_required
from portal.desk.render import usage_chart
from portal.web import get_redis, hotspot

__all__ = ["EXTEND_CHOICES", "LIMIT_CHOICES", "dashboard"]

EXTEND_CHOICES = (15, 30, 60, 120)  # minutes a librarian can add to a client with one click
# speed limits a librarian can put on one client (goodput, down/up), e.g. a phone that
# hogs the line for updates; "plan" gives the plan's caps back
LIMIT_CHOICES = ("256kbit/128kbit", "512kbit/256kbit", "1mbit/512kbit", "2mbit/1mbit")
REFRESH_SECONDS = 15
# optional fields the gateway's accounting may keep in a session: current rate in bit/s
RATE_FIELDS = ("rate_down", "rate_up")


def _extras(
    r: redis.Redis, online: list[Session]
) -> tuple[dict[str, tuple[float, float]], dict[str, str], set[str]]:
    """Return each session's current (down, up) rate, its voucher's batch note, and who is throttled."""
    with r.pipeline(transaction=False) as pipe:
        for s in online:
            pipe.hmget(keys.session(s.sid), *RATE_FIELDS, PLAN_DOWN)
        rows = pipe.execute()
    rates = {s.sid: (float(row[0] or 0), float(row[1] or 0)) for s, row in zip(online, rows, strict=True)}
    limited = {s.sid for s, row in zip(online, rows, strict=True) if row[2] is not None}
    with_voucher = [s for s in online if s.voucher_id]
    with r.pipeline(transaction=False) as pipe:
        for s in with_voucher:
            pipe.get(keys.voucher_by_id(s.voucher_id))
        codes = pipe.execute()
    with r.pipeline(transaction=False) as pipe:
        for code in codes:
            pipe.hget(keys.voucher(code or "-"), "note")
        notes = {s.sid: note or "" for s, note in zip(with_voucher, pipe.execute(), strict=True)}
    return rates, notes, limited


@bp.get("/")
@login_required
def dashboard():
    """Show clients online now (device, plan, time and data left, speed) and today's totals."""
    r = get_redis()
    config = hotspot()
    now = time.time()
    tz = ZoneInfo(config.library.timezone)
    online = online_sessions(r)
    rates, notes, limited = _extras(r, online)
    today = day_report(r, day_of(now, tz), tz, now=now, online=online)
    chart = usage_chart(
        [h.label for h in today.hours],
        [h.totals.bytes_total for h in today.hours],
        [h.totals.seconds / 3600 if h.start <= now else None for h in today.hours],
        title=_("Today's use by hour"),
        data_label=_("data"),
        devices_label=_("devices online (average)"),
        size_text=desk_formatter().size,
    )
    return render_template(
        "desk/dashboard.html", online=online, rates=rates, notes=notes, limited=limited, today=today,
        chart=chart, now=now, extend_choices=EXTEND_CHOICES, limit_choices=_limit_choices(),
        refresh=REFRESH_SECONDS, plans=config.plans, host_names=host_names(),
    )  # fmt: skip


def host_names() -> dict[str, str]:
    """Return ``{mac: DHCP host name}`` from dnsmasq's lease file (read again only when it changed)."""
    path = hotspot().dhcp.lease_file
    reader = current_app.extensions.get("desk_host_names")
    if reader is None or reader.path != path:
        reader = current_app.extensions["desk_host_names"] = HostNames(path)
    return reader.get()


@bp.post("/clients/<sid>/kick")
@login_required
def kick(sid: str):
    """Log a client out now (reason "kicked")."""
    r = get_redis()
    try:
        kick_client(r, sid, actor=actor(), now=time.time())
    except LookupError:
        flash(_("This client is no longer online."), "error")
    else:
        if r.exists(keys.GATEWAY_HEARTBEAT):
            flash(_("The client was logged out."), "ok")
        else:  # the gateway cuts it off when it runs again: say so (issue 16, item 13)
            flash(
                _(
                    "The client is logged out in our records, but the router is not running: the "
                    "device stays connected until it runs again (or use hotspotctl kick on the router)."
                ),
                "error",
            )
    return redirect(url_for("desk.dashboard"))


@bp.post("/clients/<sid>/extend")
@login_required
def extend(sid: str):
    """Give a client (and every device on its voucher) more minutes."""
    minutes = request.form.get("minutes", type=int)
    if minutes not in EXTEND_CHOICES:
        flash(_("Choose how many minutes to add."), "error")
        return redirect(url_for("desk.dashboard"))
    try:
        extend_client(get_redis(), sid, hotspot().plans, seconds=minutes * 60, actor=actor(), now=time.time())
    except LookupError:
        flash(_("This client is no longer online."), "error")
    except VoucherRevoked:
        flash(_("This voucher was revoked; it cannot be extended."), "error")
    else:
        flash(_("%(minutes)d minutes added.", minutes=minutes), "ok")
    return redirect(url_for("desk.dashboard"))


def _limit_choices() -> list[tuple[str, str]]:
    """Return (form value, label) of the speed limits on offer, e.g. ("1mbit/512kbit", "1 Mbit/s")."""
    return [(choice, desk_formatter().rate(parse_limit(choice)[0])) for choice in LIMIT_CHOICES]


@bp.post("/clients/<sid>/limit")
@login_required
def limit(sid: str):
    """Throttle a client to one of :data:`LIMIT_CHOICES` now, or ("plan") give its plan's caps back."""
    choice = request.form.get("rates", "")
    if choice != "plan" and choice not in LIMIT_CHOICES:
        flash(_("Choose a speed limit."), "error")
        return redirect(url_for("desk.dashboard"))
    r = get_redis()
    rates = None if choice == "plan" else parse_limit(choice)
    try:
        session = limit_client(r, sid, rates, actor=actor(), now=time.time())
    except NotOnline:
        flash(_("This client is no longer online."), "error")
        return redirect(url_for("desk.dashboard"))
    except LimitError:
        flash(_("This client has no speed limit."), "error")
        return redirect(url_for("desk.dashboard"))
    commands.send(r, "reconcile", sid=sid)  # the gateway changes the client's classes at once
    if rates is None:
        flash(_("The plan's speed is back."), "ok")
    else:
        flash(_("Speed limited to %(down)s down, %(up)s up.", down=desk_formatter().rate(session.down),
                up=desk_formatter().rate(session.up)), "ok")  # fmt: skip
    return redirect(url_for("desk.dashboard"))
