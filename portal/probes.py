"""Detection probes and every other request for a site that is not the portal.

Before login the gateway's nftables redirect a phone's TCP/80 to the portal, so the
portal receives requests for *other* hosts: the OS's connectivity probe
(``connectivitycheck.gstatic.com/generate_204``, ``captive.apple.com/hotspot-detect.html``,
``www.msftconnecttest.com/connecttest.txt``, ``detectportal.firefox.com/canonical.html``...)
and whatever page the visitor opened. Each one, whatever its method and path, gets a
``302`` to the splash, marked uncacheable, on a connection that is then closed (so a
kept-alive connection that was redirected before login is never reused after it).
A page the visitor opened (a GET navigation, not a probe) is remembered so the online
page can continue there. A device that is already online and still arrives here came
on a connection opened before its login; it is sent back to the same URL (307) so the
browser retries on a new connection.

After login the gateway stops redirecting and the same probes reach the real hosts,
which is how the OS sees it is online and closes its sign-in window.
"""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import redis
from flask import Blueprint, Response, current_app, request
from markupsafe import escape

from gateway.logs import get_logger
from gateway.model import keys
from portal.visitor import client_ip, current_session, remember_next
from portal.web import get_redis, hotspot

__all__ = ["OFFLINE_FOR", "PROBE_HOSTS", "PROBE_PATHS", "bp", "forget_offline", "is_probe", "own_hosts"]

bp = Blueprint("probes", __name__)
log = get_logger("portal")

# Hosts that exist only to be probed (captive-behavior's list, DESIGN.md and the OS sources).
PROBE_HOSTS = frozenset({
    "connectivitycheck.gstatic.com", "connectivitycheck.android.com", "clients1.google.com",
    "clients3.google.com", "clients4.google.com", "android.clients.google.com",
    "captive.apple.com", "www.appleiphonecell.com", "www.airport.us", "www.ibook.info",
    "www.itools.info", "www.thinkdifferent.us", "www.msftconnecttest.com", "www.msftncsi.com",
    "msftncsi.com", "detectportal.firefox.com", "nmcheck.gnome.org", "network-test.debian.org",
    "connectivity-check.ubuntu.com", "d2uzsrnmmf6tds.cloudfront.net",
})  # fmt: skip
# Probe paths on hosts that also serve real pages (www.google.com, www.apple.com, ...).
PROBE_PATHS = frozenset({
    "/generate_204", "/gen_204", "/hotspot-detect.html", "/library/test/success.html",
    "/connecttest.txt", "/ncsi.txt", "/success.txt", "/canonical.html",
    "/kindle-wifi/wifistub.html", "/kindle-wifi/wifiredirect.html",
})  # fmt: skip
_HOST = re.compile(r"^[A-Za-z0-9.-]{1,253}(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")
_NO_STORE = "no-cache, no-store, must-revalidate, max-age=0"
STALE_RETRIES = 5


def is_probe(host: str, path: str) -> bool:
    """Return whether a request for ``host`` and ``path`` is an OS connectivity probe."""
    return host.split(":", 1)[0].lower().rstrip(".") in PROBE_HOSTS or path in PROBE_PATHS


def own_hosts() -> frozenset[str]:
    """Return the Host header values that address the portal itself (not to be redirected)."""
    cached = current_app.extensions.get("portal_own_hosts")
    if cached is None:
        portal = hotspot().portal
        url = urlsplit(portal.url)
        names = {url.netloc, url.hostname or "", str(portal.address), "localhost", "127.0.0.1"}
        names.add(portal.local_name)  # "" when off: dropped below
        ports = {80, portal.port, portal.tls_port}  # 80: http://<local_name> reaches the portal
        cached = frozenset(
            {n.lower() for n in names if n} | {f"{n}:{p}".lower() for n in names if n for p in ports}
        )
        current_app.extensions["portal_own_hosts"] = cached
    return cached


def _is_navigation() -> bool:
    if request.method != "GET":
        return False
    dest = request.headers.get("Sec-Fetch-Dest")
    if dest is not None:
        return dest == "document"
    return "text/html" in request.headers.get("Accept", "")


def splash_url() -> str:
    """Return the absolute URL of the splash page (where probes are sent)."""
    return hotspot().portal.url + "/"


def _redirect(target: str, status: int) -> Response:
    link = escape(target)
    body = f'<!doctype html><meta charset="utf-8"><title>Wi-Fi</title><a href="{link}">{link}</a>\n'
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Location"] = target
    response.headers["Cache-Control"] = _NO_STORE
    response.headers["Pragma"] = "no-cache"
    response.headers["Expires"] = "0"
    # honoured under gunicorn by portal.__main__ (see there): no reuse after login
    response.headers["Connection"] = "close"
    return response


# Addresses found without an online session, with when that answer expires (time.monotonic()).
# A device that is not logged in sends its probes and its apps' requests here in bursts
# (one phone: hundreds a second); each asked Redis whether it had come online meanwhile,
# which was half of a redirect's cost. A login in this worker forgets the lot
# (forget_offline); one elsewhere (another worker, the desk's CLI) is seen within
# OFFLINE_FOR seconds, during which a connection opened before that login gets the splash
# once more instead of the retry (docs/portal.md).
OFFLINE_FOR = 1.0
_OFFLINE_MAX = 4096  # addresses remembered at most (a flood of made-up ones empties it)
_offline: dict[str, float] = {}


def forget_offline() -> None:
    """Forget every "not online" answer (a device of this worker just logged in)."""
    _offline.clear()


def _known_offline(ip: str) -> bool:
    expires = _offline.get(ip)
    return expires is not None and time.monotonic() < expires


def _remember_offline(ip: str) -> None:
    if ip:
        if len(_offline) >= _OFFLINE_MAX:
            _offline.clear()
        _offline[ip] = time.monotonic() + OFFLINE_FOR


def _on_a_stale_connection() -> bool:
    """Return whether an online device reached the portal on a connection opened before login.

    The firewall only sends devices that are not online here, but conntrack keeps a
    connection's NAT for its life: a browser that opened (or preconnected) a socket to a
    site before login and reuses it afterwards still reaches the portal. Such a request
    is sent back to its own URL on a closed connection, so the browser retries on a new
    one, which goes out. Only for sessions the gateway has acked, and at most
    ``STALE_RETRIES`` times in 30 s, so a firewall that does not let the device out
    cannot make a redirect loop.
    """
    try:
        ip = client_ip()  # not the MAC: that costs a read of the neighbour table
        if _known_offline(ip):
            return False
        session = current_session()
        if session is None:
            _remember_offline(ip)
            return False
        r = get_redis()
        if not r.exists(keys.portal_acked(session.sid)):
            return False
        retry_key = keys.portal_retry(session.mac)
        with r.pipeline(transaction=True) as pipe:
            pipe.incr(retry_key)
            pipe.expire(retry_key, 30, nx=True)
            retries, _ = pipe.execute()
    except redis.RedisError:
        return False
    return int(retries) <= STALE_RETRIES


@bp.before_app_request
def redirect_foreign_hosts() -> Response | None:
    """Answer any request for another host with a 302 to the splash (see the module docstring)."""
    host = request.host.lower().rstrip(".")
    if host in own_hosts():
        return None
    valid_host = bool(_HOST.match(host))
    if valid_host and _on_a_stale_connection():
        log.info("stale_connection_retried", host=host, ip=request.remote_addr)
        return _redirect(request.url, 307)
    if valid_host and _is_navigation() and not is_probe(host, request.path):
        try:
            remember_next(request.url)
        except redis.RedisError as err:  # the redirect matters more than the memory
            log.warning("redis_unavailable", error=str(err), path="(next page)")
    return _redirect(splash_url(), 302)
