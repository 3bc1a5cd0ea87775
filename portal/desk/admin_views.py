"""Admin pages of the desk: accounts, which plans may be issued, and the activity log.

Librarians get 403 here (:func:`portal.desk.auth.admin_required`). Every change is
recorded in the audit trail with the admin's name.
"""

from __future__ import annotations

import time

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from gateway.model import accounts, audit
from gateway.model.plans import PlanUnavailable, disabled_plans, set_available
from portal.desk import bp
from portal.desk.auth import actor, admin_required
from portal.web import get_redis, hotspot

__all__ = ["accounts_page", "activity", "plans_page"]


def _account_message(err: accounts.AccountError) -> str:
    if isinstance(err, accounts.AccountNotFound):
        return _("There is no such account.")
    if isinstance(err, accounts.LastAdmin):
        return _("This is the last admin account; make another admin first.")
    if isinstance(err, accounts.AccountConflict):
        return _("There is already an account with this name.")
    return _(
        "Account names are 2-32 lowercase letters, digits, '.', '-' or '_'; passwords need at least "
        "%(n)d characters and must not be the name.",
        n=accounts.MIN_PASSWORD,
    )


@bp.route("/accounts", methods=("GET", "POST"))
@admin_required
def accounts_page():
    """List accounts; add one, change a role, set a password, remove one."""
    r = get_redis()
    if request.method == "POST":
        action = request.form.get("action", "")
        name = request.form.get("name", "").strip().lower()[:64]
        now = time.time()
        try:
            if action == "add":
                accounts.create_account(r, name, request.form.get("password", ""),
                                        request.form.get("role", ""), actor=actor(), now=now)  # fmt: skip
                flash(_("Account %(name)s created.", name=name), "ok")
            elif action == "role":
                accounts.change_role(r, name, request.form.get("role", ""), actor=actor(), now=now)
                flash(_("Role of %(name)s changed.", name=name), "ok")
            elif action == "passwd":
                accounts.set_password(r, name, request.form.get("password", ""), actor=actor(), now=now)
                flash(_("Password of %(name)s set.", name=name), "ok")
            elif action == "remove" and name == actor():
                flash(_("You cannot remove your own account."), "error")
            elif action == "remove" and request.form.get("confirm") != "yes":
                flash(_("Tick the box to confirm removing %(name)s.", name=name), "error")
            elif action == "remove":
                accounts.remove_account(r, name, actor=actor(), now=now)
                flash(_("Account %(name)s removed.", name=name), "ok")
            else:
                flash(_("The form was incomplete. Please try again."), "error")
        except accounts.AccountError as err:
            flash(_account_message(err), "error")
        return redirect(url_for("desk.accounts_page"))
    return render_template("desk/accounts.html", accounts=accounts.list_accounts(r), roles=accounts.ROLES,
                           min_password=accounts.MIN_PASSWORD)  # fmt: skip


@bp.route("/plans", methods=("GET", "POST"))
@admin_required
def plans_page():
    """Show the config's plans; switch one off or on for new vouchers."""
    r = get_redis()
    config = hotspot()
    if request.method == "POST":
        name = request.form.get("plan", "")
        wanted = request.form.get("available")
        try:
            if wanted not in ("yes", "no"):
                raise PlanUnavailable(name, exists=name in config.plans)
            set_available(r, config.plans, name, wanted == "yes", actor=actor(), now=time.time())
        except PlanUnavailable:
            flash(_("There is no such plan."), "error")
        else:
            flash(_("Plan %(name)s updated.", name=name), "ok")
        return redirect(url_for("desk.plans_page"))
    return render_template("desk/plans.html", plans=config.plans.values(), off=disabled_plans(r))


@bp.get("/activity")
@admin_required
def activity():
    """The audit trail: who did what, newest first."""
    who = request.args.get("actor") or None
    entries = audit.recent(get_redis(), limit=200, actor=who[:64] if who else None)
    return render_template("desk/activity.html", entries=entries, who=who)
