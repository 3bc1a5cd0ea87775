"""Vouchers at the desk: issue a batch, print its cards, list and find vouchers, revoke, extend.

Codes never appear in a URL (they would end up in access logs and browser history):
pages name vouchers by their public id, and "find a code" is a POST form.
"""

from __future__ import annotations

import re
import secrets
import time

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _

from gateway.model import audit
from gateway.model.plans import PlanUnavailable, available_plans
from gateway.model.voucher_admin import (
    code_for_id,
    extend_voucher,
    get_batch,
    list_batches,
    list_vouchers,
    revoke_batch,
    revoke_voucher,
    voucher_sessions,
)
from gateway.model.vouchers import (
    MAX_BATCH,
    MAX_NOTE,
    STATES,
    DuplicateRequest,
    VoucherNotFound,
    VoucherRevoked,
    get_voucher,
    issue_batch,
    normalize_code,
)
from gateway.units import parse_duration, parse_size
from portal import branding
from portal.desk import bp
from portal.desk.auth import actor, login_required
from portal.desk.dashboard import host_names
from portal.desk.render import card_qr, card_url, wifi_join_text
from portal.web import get_redis, hotspot

__all__ = ["EXTEND_DATA", "EXTEND_TIME", "PAGE_SIZE"]

PAGE_SIZE = 50
EXTEND_TIME = ("30m", "1h", "2h", "1d", "7d")
EXTEND_DATA = ("100MB", "500MB", "1GB")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_BATCH_ID = re.compile(r"^[0-9a-f]{8}$")


def _batch_or_404(batch_id: str):
    found = get_batch(get_redis(), batch_id) if _BATCH_ID.match(batch_id) else None
    if found is None:
        abort(404)
    return found


def _voucher_or_404(voucher_id: str):
    r = get_redis()
    code = code_for_id(r, voucher_id)
    voucher = get_voucher(r, code) if code else None
    if voucher is None:
        abort(404)
    return voucher


# -- issuing and printing ------------------------------------------------------------


@bp.route("/issue", methods=("GET", "POST"))
@login_required
def issue():
    """Issue a batch: plan, count, note. A form sent twice issues once."""
    r = get_redis()
    config = hotspot()
    plans = available_plans(r, config.plans)
    form = {"plan": plans[0].name if plans else "", "count": "10", "note": ""}
    status = 200
    if request.method == "POST":
        form = {k: request.form.get(k, "").strip() for k in ("plan", "count", "note")}
        request_id = request.form.get("request_id", "")
        plan = config.plans.get(form["plan"])
        count = int(form["count"]) if form["count"].isdigit() and len(form["count"]) < 7 else None
        error = None
        if not _REQUEST_ID.match(request_id):
            error = _("The form was incomplete. Please try again.")
        elif plan is None:
            error = _("Choose a plan.")
        elif count is None or not 1 <= count <= MAX_BATCH:
            error = _("Enter how many vouchers: a number from 1 to %(max)d.", max=MAX_BATCH)
        elif len(form["note"]) > MAX_NOTE:
            error = _("The note is too long (at most %(max)d characters).", max=MAX_NOTE)
        if error is None:
            try:
                vouchers = issue_batch(r, plan, count, now=time.time(), issued_by=actor(), note=form["note"],
                                       request_id=request_id)  # fmt: skip
            except DuplicateRequest as dup:
                flash(_("This form was already sent; here is the batch it issued."), "ok")
                return redirect(url_for("desk.batch", batch_id=dup.batch_id))
            except PlanUnavailable:
                error = _("This plan is switched off. Choose another one.")
            except ValueError:
                error = _("The note is too long (at most %(max)d characters).", max=MAX_NOTE)
            else:
                flash(_("%(count)d vouchers issued.", count=len(vouchers)), "ok")
                return redirect(url_for("desk.batch", batch_id=vouchers[0].batch))
        flash(error, "error")
        status = 400
    return render_template(
        "desk/issue.html", plans=plans, form=form, request_id=secrets.token_urlsafe(16), max_batch=MAX_BATCH,
        max_note=MAX_NOTE, batches=list_batches(r, limit=10),
    ), status  # fmt: skip


@bp.get("/batches/<batch_id>")
@login_required
def batch(batch_id: str):
    """Show a batch: its vouchers, their state, and the way to the print sheet."""
    info, vouchers = _batch_or_404(batch_id)
    now = time.time()
    plans = hotspot().plans
    rows = [(v, v.state(now, plans.get(v.plan))) for v in vouchers]
    return render_template("desk/batch.html", batch=info, rows=rows, plan=plans.get(info.plan))


LAYOUTS = {"a4": 10, "slip": 1}  # cards per printed page: an A4 grid, or one per receipt-printer slip


@bp.get("/batches/<batch_id>/print")
@login_required
def sheet(batch_id: str):
    """The printable cards for a batch's vouchers that still work (``?layout=a4|slip``)."""
    info, vouchers = _batch_or_404(batch_id)
    plan = hotspot().plans.get(info.plan)
    now = time.time()
    return _print_cards(info, [v for v in vouchers if v.state(now, plan) in ("unused", "in_use")])


@bp.get("/vouchers/<voucher_id>/print")
@login_required
def reprint(voucher_id: str):
    """Reprint one voucher's card (a visitor lost theirs), on A4 or a receipt slip."""
    v = _voucher_or_404(voucher_id)
    info, _vouchers = _batch_or_404(v.batch)
    state = v.state(time.time(), hotspot().plans.get(v.plan))
    return _print_cards(info, [v] if state in ("unused", "in_use") else [])


def _print_cards(info, usable: list) -> str:
    """Render the cards of ``usable`` vouchers of batch ``info`` in the asked language and layout."""
    config = hotspot()
    plan = config.plans.get(info.plan)
    layout = request.args.get("layout", "a4")
    if layout not in LAYOUTS:
        layout = "a4"
    language = request.args.get("cards", "id")
    if language not in config.portal.languages:
        language = config.portal.default_language
    cards = []
    for v in usable:
        url = card_url(config.portal.url, v.display_code)
        cards.append({"code": v.display_code, "qr": card_qr(url), "valid_until": v.valid_until})
    label = plan.label_for(language) if plan else info.plan
    marks = {m.name: m for m in branding.marks(config.library.branding_dir, config.library.name)}
    ssid = config.library.wifi_name
    with force_locale(language):
        return render_template(
            "desk/sheet.html", batch=info, cards=cards, card_lang=language, plan_label=label, marks=marks,
            wifi_name=ssid, wifi_qr=card_qr(wifi_join_text(ssid)) if ssid else None,
            short_url=config.portal.short_url, layout=layout, per_page=LAYOUTS[layout],
        )  # fmt: skip


@bp.post("/batches/<batch_id>/revoke")
@login_required
def revoke_whole_batch(batch_id: str):
    """Revoke every voucher of a batch that still works (a lost or stolen sheet)."""
    info, _vouchers = _batch_or_404(batch_id)
    if request.form.get("confirm") != "yes":
        flash(_("Tick the box to confirm revoking the whole batch."), "error")
        return redirect(url_for("desk.batch", batch_id=info.id))
    revoked, ended = revoke_batch(get_redis(), info.id, hotspot().plans, actor=actor(), now=time.time())
    message = _("%(revoked)d vouchers revoked, %(ended)d devices logged out.", revoked=revoked, ended=ended)
    flash(message, "ok")
    return redirect(url_for("desk.batch", batch_id=info.id))


# -- the list ------------------------------------------------------------------------


@bp.get("/vouchers")
@login_required
def vouchers():
    """List vouchers, newest first, filtered by state, plan or batch."""
    config = hotspot()
    state = request.args.get("state") or None
    plan = request.args.get("plan") or None
    batch_id = request.args.get("batch") or None
    page = request.args.get("page", 1, type=int) or 1
    if state not in (None, *STATES) or plan not in (None, *config.plans) or page < 1 or page > 10_000:
        abort(400)
    if batch_id is not None and not _BATCH_ID.match(batch_id):
        abort(400)
    rows, more = list_vouchers(get_redis(), config.plans, now=time.time(), state=state, plan=plan,
                               batch=batch_id, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)  # fmt: skip
    return render_template(
        "desk/vouchers.html", rows=rows, more=more, page=page, states=STATES, state=state, plan=plan,
        batch_id=batch_id, plans=config.plans,
    )  # fmt: skip


@bp.post("/vouchers/find")
@login_required
def find():
    """Open the voucher whose code a librarian typed (forgiving like the portal's login)."""
    code = normalize_code(request.form.get("code", "")[:64])
    voucher = get_voucher(get_redis(), code) if code else None
    if voucher is None:
        flash(_("No voucher has this code."), "error")
        return redirect(url_for("desk.vouchers"))
    return redirect(url_for("desk.voucher", voucher_id=voucher.id))


@bp.get("/vouchers/<voucher_id>")
@login_required
def voucher(voucher_id: str):
    """One voucher: state, devices online, history, and its actions."""
    v = _voucher_or_404(voucher_id)
    r = get_redis()
    plan = hotspot().plans.get(v.plan)
    return render_template(
        "desk/voucher.html", v=v, plan=plan, state=v.state(time.time(), plan),
        sessions=voucher_sessions(r, v), history=audit.recent(r, target=v.id, limit=50),
        host_names=host_names(), extend_time=EXTEND_TIME,
        extend_data=EXTEND_DATA if plan and plan.quota else (),
    )  # fmt: skip


@bp.post("/vouchers/<voucher_id>/revoke")
@login_required
def revoke(voucher_id: str):
    """Revoke a voucher; its devices are logged out. Irreversible: the form's tick confirms it."""
    v = _voucher_or_404(voucher_id)
    if request.form.get("confirm") != "yes":
        flash(_("Tick the box to confirm revoking this voucher."), "error")
        return redirect(url_for("desk.voucher", voucher_id=v.id))
    try:
        _revoked, ended = revoke_voucher(get_redis(), v.code, actor=actor(), now=time.time())
    except VoucherRevoked:
        flash(_("This voucher was already revoked."), "error")
    except VoucherNotFound:
        abort(404)
    else:
        flash(_("Voucher revoked; %(ended)d devices logged out.", ended=len(ended)), "ok")
    return redirect(url_for("desk.voucher", voucher_id=v.id))


@bp.post("/vouchers/<voucher_id>/extend")
@login_required
def extend_one(voucher_id: str):
    """Give a voucher more time or data (fixed choices)."""
    v = _voucher_or_404(voucher_id)
    time_choice, data_choice = request.form.get("time", ""), request.form.get("data", "")
    if time_choice not in ("", *EXTEND_TIME) or data_choice not in ("", *EXTEND_DATA):
        abort(400)
    seconds = parse_duration(time_choice) if time_choice else 0
    data = parse_size(data_choice) if data_choice else 0
    try:
        extend_voucher(get_redis(), v.code, hotspot().plans, seconds=seconds, data=data, actor=actor(),
                       now=time.time())  # fmt: skip
    except VoucherRevoked:
        flash(_("This voucher was revoked; it cannot be extended."), "error")
    except ValueError:
        flash(_("Choose more time, or more data for a plan with a data quota."), "error")
    else:
        flash(_("Voucher extended."), "ok")
    return redirect(url_for("desk.voucher", voucher_id=v.id))
