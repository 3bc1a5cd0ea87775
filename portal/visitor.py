"""The visitor behind the current request: their device, session, form tokens and next page.

- The device is found by the request's source address (gunicorn trusts no proxy
  headers) and the router's neighbour table (:mod:`portal.neighbours`).
- Forms carry a **device-bound token** instead of a cookie-bound one: captive-portal
  mini-browsers may drop cookies (none survive the window closing, some keep none at
  all), so the token is signed with the portal's secret and names the device (a hash
  of its MAC). A page elsewhere cannot read it, and a token of another device does not
  fit this one. See ``docs/portal.md``, "CSRF without cookies".
- The device's online session is the one its MAC holds **at the address the request
  came from**: a session is bound to the MAC and IPv4 of its login, and a request from
  another address (a MAC clone, or a visitor that planted "my address is at your MAC"
  in the router's neighbour table) is not that device. See ``docs/security.md``.
- The page a visitor first asked for is kept in Redis by MAC *and* IP for 30 minutes,
  never in a URL, so it appears in no log, history or Referer, and another device
  cannot plant it for this one (``docs/security.md``, item 4).
"""

from __future__ import annotations

import hashlib
import time

from flask import current_app, g, request
from itsdangerous import BadData, URLSafeTimedSerializer

from gateway.model import keys
from gateway.model.sessions import Session, session_for_mac
from portal import neighbours
from portal.web import get_redis, hotspot

__all__ = [
    "NEXT_TTL",
    "TOKEN_MAX_AGE",
    "client_ip",
    "client_mac",
    "current_session",
    "form_token",
    "forget_session_cache",
    "mac_session",
    "next_url",
    "now",
    "remember_next",
    "token_ok",
]

NEXT_TTL = 30 * 60
TOKEN_MAX_AGE = 12 * 3600  # a splash left open while the visitor walks to the desk still works
MAX_URL = 2048


def now() -> float:
    """Return the current time (epoch seconds); tests may set ``CLOCK`` in the app config."""
    return current_app.config.get("CLOCK", time.time)()


def client_ip() -> str:
    """Return the address the request came from."""
    return request.remote_addr or ""


def client_mac() -> str | None:
    """Return the MAC of the requesting device on the LAN, or None (not on the LAN)."""
    if "client_mac" not in g:
        lookup = current_app.config.get("MAC_LOOKUP")
        ip = client_ip()
        if lookup is not None:
            g.client_mac = lookup(ip)
        else:
            g.client_mac = neighbours.mac_for_ip(ip, hotspot().network.lan_interface)
    return g.client_mac


def current_session() -> Session | None:
    """Return the requesting device's online session (its MAC's, bound to this IP), or None."""
    if "visitor_session" not in g:
        mac = client_mac()
        session = session_for_mac(get_redis(), mac) if mac else None
        g.visitor_session = session if session is not None and session.ip == _ipv4(client_ip()) else None
    return g.visitor_session


def mac_session() -> Session | None:
    """Return the online session of the requesting MAC, whatever address it was bound to.

    Only for a voucher login, whose code proves the right to the session wherever it is.
    Read once per request (the login checks it, then hands it to the voucher's redeem).
    """
    if "mac_session" not in g:
        mac = client_mac()
        g.mac_session = session_for_mac(get_redis(), mac) if mac else None
    return g.mac_session


def _ipv4(ip: str) -> str:
    return ip.removeprefix("::ffff:") if ip.startswith("::ffff:") and "." in ip else ip


def forget_session_cache() -> None:
    """Drop the cached sessions (after logging in or out within the request)."""
    g.pop("visitor_session", None)
    g.pop("mac_session", None)


def _device_id() -> str:
    who = client_mac() or f"ip:{client_ip()}"
    return hashlib.sha256(who.encode()).hexdigest()[:16]


def _serializer() -> URLSafeTimedSerializer:
    secret = current_app.config["SECRET_KEY"]
    built = _SERIALIZERS.get(secret)
    if built is None:  # once per secret, not per form (it is stateless)
        built = _SERIALIZERS[secret] = URLSafeTimedSerializer(secret, salt="portal-form")
    return built


_SERIALIZERS: dict[str | bytes, URLSafeTimedSerializer] = {}


def form_token() -> str:
    """Return a token for this device's forms (valid ``TOKEN_MAX_AGE`` seconds)."""
    return _serializer().dumps(_device_id())


def token_ok(token: str) -> bool:
    """Return whether ``token`` was issued by this portal to this device and is recent."""
    if not token or len(token) > 200:
        return False
    try:
        return _serializer().loads(token, max_age=TOKEN_MAX_AGE) == _device_id()
    except BadData:
        return False


def _next_key() -> str | None:
    mac = client_mac()
    return keys.portal_next(f"{mac}@{_ipv4(client_ip())}") if mac else None


def remember_next(url: str) -> None:
    """Keep ``url`` (an http(s) URL the device asked for) as where to go after login."""
    key = _next_key()
    if key and len(url) <= MAX_URL and url.startswith(("http://", "https://")):
        get_redis().set(key, url, ex=NEXT_TTL)


def next_url() -> str | None:
    """Return the page this device (this MAC at this address) asked for before login, if any."""
    key = _next_key()
    if not key:
        return None
    url = get_redis().get(key)
    return url if url and url.startswith(("http://", "https://")) else None
