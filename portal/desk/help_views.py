"""The desk's short help page: issuing and printing, helping a visitor whose sign-in page
does not open, and what the warnings about the router mean."""

from __future__ import annotations

from flask import render_template

from portal.desk import bp
from portal.desk.auth import login_required
from portal.web import hotspot

__all__ = ["help_page"]


@bp.get("/help")
@login_required
def help_page():
    """How to issue, print, and help a visitor who cannot get the pop-up."""
    config = hotspot()
    return render_template(
        "desk/help.html", short_url=config.portal.short_url, raw_url=config.portal.url,
        wifi_name=config.library.wifi_name,
    )  # fmt: skip
