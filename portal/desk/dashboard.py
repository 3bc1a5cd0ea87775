"""The desk's front page: who is online now, today's numbers and usage chart; kick or extend a client.

Bytes and current speed come from the gateway's accounting, which writes them into
each online session every few seconds; the page refreshes itself (no script needed).
"""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

import redis
from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from gateway import keys
from gateway.reports import day_report
from gateway.sessions import Session, online_sessions
from gateway.voucher_admin import extend_client, kick_client
from gateway.vouchers import VoucherRevoked
from portal.desk import bp
from portal.desk.auth import actor, login_required
from portal.desk.render import usage_chart
from portal.web import get_redis, hotspot

__all__ = ["EXTEND_CHOICES", "dashboard"]

EXTEND_CHOICES = (15, 30, 60, 120)  # minutes a librarian can add to a client with one click
REFRESH_SECONDS = 15
# optional fields the gateway's accounting may keep in a session: current rate in bit/s
RATE_FIELDS = ("rate_down", "rate_up")


def _extras(r: redis.Redis, online: list[Session]) -> tuple[dict[str, tuple[float, float]], dict[str, str]]:
    """Return each session's current (down, up) rate and its voucher's batch note."""
    with r.pipeline(transaction=False) as pipe:
        for s in online:
            pipe.hmget(keys.session(s.sid), *RATE_FIELDS)
        rows = pipe.execute()
    rates = {s.sid: (float(row[0] or 0), float(row[1] or 0)) for s, row in zip(online, rows, strict=True)}
    with_voucher = [s for s in online if s.voucher_id]
    with r.pipeline(transaction=False) as pipe:
        for s in with_voucher:
            pipe.get(keys.voucher_by_id(s.voucher_id))
        codes = pipe.execute()
    with r.pipeline(transaction=False) as pipe:
        for code in codes:
            pipe.hget(keys.voucher(code or "-"), "note")
        notes = {s.sid: note or "" for s, note in zip(with_voucher, pipe.execute(), strict=True)}
    return rates, notes


@bp.get("/")
@login_required
def dashboard():
    """Show clients online now (device, plan, time and data left, speed) and today's totals."""
    r = get_redis()
    config = hotspot()
    now = time.time()
    tz = ZoneInfo(config.library.timezone)
    online = online_sessions(r)
    rates, notes = _extras(r, online)
    today = day_report(r, datetime.fromtimestamp(now, tz).date(), tz, now=now, online=online)
    chart = usage_chart(
        [h.label for h in today.hours],
        [h.totals.bytes_total for h in today.hours],
        [h.totals.seconds / 3600 if h.start <= now else None for h in today.hours],
        title=_("Today's use by hour"),
        data_label=_("data"),
        devices_label=_("devices online (average)"),
    )
    return render_template(
        "desk/dashboard.html", online=online, rates=rates, notes=notes, today=today, chart=chart,
        now=now, extend_choices=EXTEND_CHOICES, refresh=REFRESH_SECONDS, plans=config.plans,
    )  # fmt: skip


@bp.post("/clients/<sid>/kick")
@login_required
def kick(sid: str):
    """Log a client out now (reason "kicked")."""
    try:
        kick_client(get_redis(), sid, actor=actor(), now=time.time())
    except LookupError:
        flash(_("This client is no longer online."), "error")
    else:
        flash(_("The client was logged out."), "ok")
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
