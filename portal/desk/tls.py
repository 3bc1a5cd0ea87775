"""The desk over HTTPS only, once the router has a certificate (issue 16, item 9).

On the open library Wi-Fi anyone can read plain HTTP, and an ARP man-in-the-middle
can read it from every phone: desk passwords and session cookies must not travel in
clear. With ``portal.tls_cert``/``tls_key`` set:

- a desk page asked for over plain HTTP is redirected (308) to the same path on the
  HTTPS listener, at the configured address (never the request's Host header, so the
  redirect cannot be pointed elsewhere); a form posted over plain HTTP is refused with
  a clear page, so a password typed there is not used;
- desk answers over HTTPS carry ``Strict-Transport-Security``: the desk PC's browser then
  never tries plain HTTP to the router again;
- the signed session cookie is ``Secure`` (``portal.create_app``), so it is never sent
  over plain HTTP either.

Without a certificate nothing changes: the desk is served over HTTP as before.
"""

from __future__ import annotations

from flask import Response, redirect, render_template, request
from flask_babel import gettext as _

from portal.desk import bp
from portal.web import DESK_DOMAIN, hotspot

__all__ = ["HSTS", "https_base", "https_only"]

HSTS = "max-age=31536000"  # one year; no includeSubDomains: the router has no subdomains of ours


def https_base() -> str:
    """Return the HTTPS origin of the portal (``portal.url`` if it is https, else address and TLS port)."""
    portal = hotspot().portal
    if portal.url.startswith("https://"):
        return portal.url.rstrip("/")
    return f"https://{portal.address}:{portal.tls_port}"


def https_only() -> Response | tuple[str, int] | None:
    """Send a desk request over plain HTTP to HTTPS (GET) or refuse it (a form); see the module doc.

    Registered by :func:`portal.desk.init_app` as the app's FIRST before-request function:
    it must answer before CSRF checking, which would refuse a plain-HTTP form unclearly.
    """
    if not request.path.startswith("/desk") or not hotspot().portal.tls or request.is_secure:
        return None
    if request.method in ("GET", "HEAD"):
        return redirect(https_base() + request.full_path.rstrip("?"), 308)
    DESK_DOMAIN.as_default()  # this runs before the app's catalog choice: the desk's words
    message = _(
        "The desk only works over a secure connection. Open %(url)s and sign in there.",
        url=https_base() + "/desk/",
    )
    return render_template("desk/error.html", message=message), 403


@bp.after_request
def _hsts(response: Response) -> Response:
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response
