"""The audit trail in plain words for staff: "Membuat 10 voucher (paket harian)", not
``voucher_issue batch=3f2a... count=10``.

Each action the model records (``gateway.model.audit``) gets one sentence in the desk's
language, with links to the voucher or batch it concerns instead of their raw ids. An
action this module does not know yet is shown as recorded, so nothing is ever hidden.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import url_for
from flask_babel import gettext as _
from markupsafe import Markup, escape

from gateway.model.audit import AuditEntry
from portal.desk.render import Formatter

__all__ = ["describe"]


def _int(details: dict[str, str], key: str) -> int:
    try:
        return int(float(details.get(key, 0) or 0))
    except ValueError:
        return 0


def _links(details: dict[str, str]) -> Markup:
    parts = []
    if details.get("batch"):
        href = url_for("desk.batch", batch_id=details["batch"])
        parts.append(Markup('<a href="{}">{}</a>').format(href, _("the batch")))
    if details.get("voucher_id"):
        href = url_for("desk.voucher", voucher_id=details["voucher_id"])
        parts.append(Markup('<a href="{}">{}</a>').format(href, _("the voucher")))
    return Markup(" · ").join(parts) if parts else Markup("")


def _texts(d: dict[str, str], fmt: Formatter) -> dict[str, Callable[[], str]]:
    role = {"admin": _("admin"), "librarian": _("librarian")}.get(d.get("role", ""), d.get("role", ""))
    extra = []
    if _int(d, "seconds"):
        extra.append(fmt.duration(_int(d, "seconds")))
    if _int(d, "bytes"):
        extra.append(fmt.size(_int(d, "bytes")))
    return {
        "voucher_issue": lambda: _("Issued %(count)d vouchers (plan %(plan)s)", count=_int(d, "count"),
                                   plan=d.get("plan", "")),
        "voucher_revoke": lambda: _("Revoked a voucher"),
        "voucher_extend": lambda: _("Extended a voucher: %(what)s more", what=" + ".join(extra) or "–"),
        "voucher_purge": lambda: _("Deleted %(count)d old vouchers", count=_int(d, "count")),
        "client_kick": lambda: _("Disconnected a device"),
        "client_extend": lambda: _("Gave a device %(time)s more", time=fmt.duration(_int(d, "seconds"))),
        "client_limit": lambda: (
            _("Gave a device its plan's speed back") if d.get("reset")
            else _("Limited a device to %(down)s down, %(up)s up", down=fmt.rate(_int(d, "down")),
                   up=fmt.rate(_int(d, "up")))
        ),
        "plan_enable": lambda: _("Switched plan %(plan)s on", plan=d.get("plan", "")),
        "plan_disable": lambda: _("Switched plan %(plan)s off", plan=d.get("plan", "")),
        "account_add": lambda: _("Created account %(name)s (%(role)s)", name=d.get("account", ""), role=role),
        "account_passwd": lambda: _("Set the password of %(name)s", name=d.get("account", "")),
        "account_role": lambda: _("Made %(name)s %(role)s", name=d.get("account", ""), role=role),
        "account_remove": lambda: _("Removed account %(name)s", name=d.get("account", "")),
    }  # fmt: skip


def describe(entry: AuditEntry, fmt: Formatter) -> Markup:
    """Return what ``entry`` did, in a sentence, with links to what it concerns."""
    text = _texts(entry.details, fmt).get(entry.action)
    if text is None:  # an action recorded by a newer model: shown as it is
        raw = " ".join(f"{k}={v}" for k, v in sorted(entry.details.items()))
        return escape(f"{entry.action} {raw}".strip())
    links = _links(entry.details)
    return escape(text()) + (Markup(" · ") + links if links else Markup(""))
