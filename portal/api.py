"""The captive-portal API (RFC 8908), announced to phones by DHCP option 114 (RFC 8910).

``GET /api/captive`` answers for the device that asks (found by its address), as
``application/captive+json`` with ``Cache-Control: private``.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response

from portal.probes import splash_url
from portal.visitor import current_session, now

__all__ = ["bp"]

bp = Blueprint("api", __name__)

MEDIA_TYPE = "application/captive+json"


@bp.get("/api/captive")
def captive() -> Response:
    """Return the RFC 8908 state of the requesting device.

    Implemented fields:

    - ``captive``: true until the device has an online session.
    - ``user-portal-url``: the splash (which shows the status page once online).
    - ``seconds-remaining``: the session's time left (online only).
    - ``bytes-remaining``: the data left, for plans with a quota (online only).
    - ``can-extend-session``: false; a new voucher starts a new session instead.

    Not implemented: ``venue-info-url`` (the library has no venue page of its own).

    RFC 8908 requires the API on HTTPS with a certificate the phone trusts; over
    plain HTTP (the lab) phones ignore option 114 and fall back to the probes.
    """
    session = current_session()
    data: dict[str, object] = {"captive": session is None, "user-portal-url": splash_url()}
    if session is not None:
        data["seconds-remaining"] = int(session.seconds_left(now()))
        bytes_left = session.bytes_left()
        if bytes_left is not None:
            data["bytes-remaining"] = bytes_left
    data["can-extend-session"] = False
    response = Response(json.dumps(data), mimetype=MEDIA_TYPE)
    response.headers["Cache-Control"] = "private"
    return response
