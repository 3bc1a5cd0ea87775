"""Central logins: a code that is not a local voucher is asked about at HQ.

The code is sent as both User-Name and User-Password (PAP) of an Access-Request: central
vouchers and member accounts are one code each, typed into the same field as a local
voucher (HQ keeps ``Cleartext-Password = code`` in ``radcheck``). An Access-Accept's
attributes become the session (:func:`gateway.radius.attributes.grant_from_reply`); the
session's kind is ``central`` and its plan ``central``.

The portal calls :func:`central_login` after :func:`gateway.model.vouchers.redeem` found
no local voucher, so local vouchers never wait for HQ.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace

import redis

from gateway.config import Config
from gateway.logs import get_logger
from gateway.model.sessions import Session, new_session, start_session
from gateway.radius.attributes import AbsurdReply, device_id, grant_from_reply
from gateway.radius.client import RadiusClient, RadiusUnavailable

__all__ = [
    "CENTRAL",
    "CentralError",
    "CentralRefused",
    "CentralUnavailable",
    "central_login",
    "device_key",
    "user_for",
]

CENTRAL = "central"
log = get_logger("radius")


class CentralError(Exception):
    """A central code could not be used."""


class CentralRefused(CentralError):
    """HQ said no (Access-Reject), or its Access-Accept was absurd; ``message`` is HQ's Reply-Message."""

    def __init__(self, message: str = ""):
        self.message = message
        super().__init__(message or "refused")


class CentralUnavailable(CentralError):
    """HQ did not answer within the bound."""


def device_key(config: Config) -> bytes:
    """Return the library's key for device hashes (derived from the portal's secret key)."""
    secret = config.portal.secret_key_file.read_bytes().strip()
    return hmac.new(secret, b"hotspot radius device key", hashlib.sha256).digest()


def user_for(code: str, key: bytes) -> str:
    """Return the public id of a central code on this router (never the code itself)."""
    return "c-" + hmac.new(key, b"central-code:" + code.encode(), hashlib.sha256).hexdigest()[:10]


def central_login(
    r: redis.Redis,
    config: Config,
    code: str,
    *,
    mac: str,
    ip: str,
    now: float,
    client: RadiusClient | None = None,
) -> Session:
    """Ask HQ about ``code`` and start the device's session with what it grants."""
    radius = config.radius
    if radius is None:
        raise CentralRefused()
    key = device_key(config)
    try:
        client = client or RadiusClient(radius)
        reply = client.authenticate(
            code, code,
            **{"Calling-Station-Id": device_id(mac, mode=radius.device_id, key=key),
               "Called-Station-Id": radius.nas_identifier, "Framed-IP-Address": ip},
        )  # fmt: skip
    except (RadiusUnavailable, OSError, ValueError) as err:
        log.warning("central_login_unavailable", mac=mac, error=str(err))
        raise CentralUnavailable(str(err)) from err
    message = (reply.attributes.get("Reply-Message") or [""])[0]
    if not reply.accepted:
        log.info("central_login_rejected", mac=mac, server=reply.server)
        raise CentralRefused(message if isinstance(message, str) else "")
    try:
        grant = grant_from_reply(reply.attributes)
    except AbsurdReply as err:
        log.warning(
            "central_reply_absurd",
            mac=mac,
            server=reply.server,
            attribute=err.attribute,
            value=str(err.value),
        )
        raise CentralRefused() from err
    session = new_session(
        mac=mac, ip=ip, kind=CENTRAL, plan=CENTRAL, now=now, expires_at=now + grant.session_timeout,
        down=grant.down, up=grant.up, quota=grant.quota, voucher_id=user_for(code, key),
    )  # fmt: skip
    session = replace(session, idle_timeout=grant.idle_timeout, message=grant.message, user=code)
    start_session(r, session, now)
    log.info("central_login_ok", mac=mac, sid=session.sid, user=session.voucher_id, server=reply.server)
    return session
