"""The librarian desk at ``/desk``: sign in, issue and print vouchers, see who is online, reports.

One blueprint; its views live in the modules below, its templates in
``templates/desk/``, its strings in the Babel catalog ``desk`` (Bahasa Indonesia by
default, English one click away, like the visitor portal).

- :mod:`portal.desk.tls`: HTTPS only (redirect, refusal, HSTS) once a certificate is configured
- :mod:`portal.desk.auth`: sign in/out, desk logins, roles (``login_required``, ``admin_required``)
- :mod:`portal.desk.dashboard`: who is online, today's numbers and chart; kick / extend a client
- :mod:`portal.desk.voucher_views`: issue a batch, the printable card sheet, the voucher list
- :mod:`portal.desk.report_views`: the day and month reports, as pages and CSV
- :mod:`portal.desk.admin_views`: accounts, plans' availability, the activity log (admins)
- :mod:`portal.desk.help_views`: a short help page (issuing, printing, a phone without the pop-up)
- :mod:`portal.desk.render`: formatting, the usage chart (inline SVG) and QR codes (segno)
"""

from __future__ import annotations

from flask import Blueprint, Flask

__all__ = ["bp", "init_app"]

bp = Blueprint("desk", __name__, url_prefix="/desk")


def init_app(app: Flask) -> None:
    """Register the desk blueprint (with every view module) on ``app``."""
    # deliberate: the view modules import ``bp`` from here, so they load once it exists
    from portal.desk import (  # noqa: F401
        admin_views,
        auth,
        dashboard,
        help_views,
        report_views,
        tls,
        voucher_views,
    )

    app.register_blueprint(bp)
    # HTTPS-only must answer before CSRF (an app-level check that runs before blueprints')
    app.before_request_funcs.setdefault(None, []).insert(0, tls.https_only)
