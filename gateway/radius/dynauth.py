"""Dynamic Authorization (RFC 5176): HQ ends or throttles a session on the router.

A UDP listener on ``radius.dynauth_listen`` (the WAN address, port 3799) run by the
gateway daemon in a thread. A request is believed only when all of these hold, else it
is logged and dropped without an answer (an answer would help an attacker probe):

- it comes from one of ``radius.dynauth_clients`` (default: the RADIUS servers);
- it is a Disconnect-Request or CoA-Request of at most 4096 bytes that decodes;
- its Request Authenticator is right for the shared secret (RFC 5176 3.3);
- it carries a Message-Authenticator, and that is right too;
- an Event-Timestamp, when present, is within 5 minutes (a replayed old request is refused).

Then the session is found by Acct-Session-Id (our session id), Calling-Station-Id (what
accounting sent for the device) or Framed-IP-Address; a NAS-Identifier that is not ours
gets a NAK (Error-Cause 403), an unknown session a NAK (503). A Disconnect-Request ends
the session with reason ``admin`` (session log, accounting Stop with Admin-Reset); a
CoA-Request with WISPr-Bandwidth-Max-Down/Up (within the same bounds as an Access-Accept)
sets a live limit (:mod:`gateway.model.limits`). Every answer carries a Message-Authenticator.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from pyrad import packet

from gateway.config import Config
from gateway.logs import get_logger
from gateway.model import audit
from gateway.model.limits import NotOnline, set_limit
from gateway.model.sessions import Session, end_session, get_session, online_sessions
from gateway.radius.attributes import RATE_BOUNDS, device_id
from gateway.radius.client import attributes_by_name, load_dictionary, read_secret
from gateway.radius.login import device_key

__all__ = ["MAX_PACKET", "DynAuthServer"]

MAX_PACKET = 4096
MAX_SKEW = 300  # seconds an Event-Timestamp may be off
IDENTIFIERS = {
    "NAS-Identifier", "NAS-IP-Address", "Acct-Session-Id", "Calling-Station-Id", "Framed-IP-Address",
    "User-Name", "Event-Timestamp", "Message-Authenticator", "Proxy-State",
}  # fmt: skip
RATES = ("WISPr-Bandwidth-Max-Down", "WISPr-Bandwidth-Max-Up")

log = get_logger("dynauth")


class DynAuthServer:
    """Answers Disconnect-Request and CoA-Request from HQ (see the module doc)."""

    def __init__(
        self,
        config: Config,
        r: redis.Redis,
        *,
        secret: bytes | None = None,
        on_change: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ):
        if config.radius is None:
            raise ValueError("the config has no [radius] section")
        self.radius = config.radius
        self.redis = r
        self.config = config
        # read in start() when not given: a missing file must not stop the daemon (enforcement)
        self.secret = secret if secret is not None else b""
        self.key = b""
        self.dictionary = load_dictionary()
        self.on_change = on_change
        self.clock = clock
        self.allowed = {str(a) for a in self.radius.dynauth_clients}
        self.sock: socket.socket | None = None
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    # -- one datagram ---------------------------------------------------------------------

    def handle(self, data: bytes, source: str) -> bytes | None:
        """Return the answer to one datagram from ``source`` (an IP), or None to drop it."""
        if not self.secret:
            return None  # not started (no secret): believe nothing
        if source not in self.allowed:
            log.warning("dynauth_refused", source=source, reason="not_a_configured_client")
            return None
        if not 20 <= len(data) <= MAX_PACKET:
            log.warning("dynauth_refused", source=source, reason="bad_size", size=len(data))
            return None
        try:
            request = packet.CoAPacket(packet=data, secret=self.secret, dict=self.dictionary)
        except Exception as err:  # noqa: BLE001 - any decoding failure of untrusted bytes: drop, never crash
            log.warning(
                "dynauth_refused", source=source, reason="malformed", error=f"{type(err).__name__}: {err}"
            )
            return None
        if request.code not in (packet.DisconnectRequest, packet.CoARequest):
            log.warning("dynauth_refused", source=source, reason="not_a_request", code=request.code)
            return None
        if not request.VerifyCoARequest():
            log.warning("dynauth_refused", source=source, reason="bad_authenticator")
            return None
        if "Message-Authenticator" not in request:
            log.warning("dynauth_refused", source=source, reason="no_message_authenticator")
            return None
        try:
            valid = request.verify_message_authenticator()
        except Exception:  # noqa: BLE001 - untrusted bytes: a check that cannot run is a failed check
            valid = False
        if not valid:
            log.warning("dynauth_refused", source=source, reason="bad_message_authenticator")
            return None
        attrs = attributes_by_name(request)
        now = self.clock()
        stamp = _first(attrs, "Event-Timestamp")
        if stamp is not None and abs(now - _epoch(stamp)) > MAX_SKEW:
            log.warning("dynauth_refused", source=source, reason="stale_event_timestamp")
            return None
        disconnect = request.code == packet.DisconnectRequest
        kind = "disconnect" if disconnect else "coa"
        nas = _first(attrs, "NAS-Identifier")
        if nas is not None and nas != self.radius.nas_identifier:
            return self._nak(request, "NAS-Identification-Mismatch", kind, source)
        session = self._find(attrs)
        if session is None:
            return self._nak(request, "Session-Context-Not-Found", kind, source)
        if disconnect:
            end_session(self.redis, session.sid, "admin", now)
            audit.record(self.redis, f"radius:{source}", "client_disconnect", now=now, sid=session.sid)
            log.info("dynauth_disconnect", source=source, sid=session.sid)
            self.on_change()
            return self._ack(request)
        unknown = set(attrs) - IDENTIFIERS - set(RATES)
        if unknown:
            return self._nak(request, "Unsupported-Attribute", kind, source)
        rates = [_first(attrs, name) for name in RATES]
        if all(rate is None for rate in rates):
            return self._nak(request, "Missing-Attribute", kind, source)
        if any(
            rate is not None and not (isinstance(rate, int) and RATE_BOUNDS[0] <= rate <= RATE_BOUNDS[1])
            for rate in rates
        ):
            return self._nak(request, "Invalid-Request", kind, source)
        down = rates[0] if rates[0] is not None else session.down
        up = rates[1] if rates[1] is not None else session.up
        try:
            set_limit(self.redis, session.sid, down, up)
        except NotOnline:
            return self._nak(request, "Session-Context-Not-Found", kind, source)
        audit.record(
            self.redis, f"radius:{source}", "client_limit", now=now, sid=session.sid, down=down, up=up
        )
        log.info("dynauth_coa", source=source, sid=session.sid, down=down, up=up)
        self.on_change()
        return self._ack(request)

    def _find(self, attrs: dict[str, list]) -> Session | None:
        sid = _first(attrs, "Acct-Session-Id")
        if sid is not None:
            session = get_session(self.redis, str(sid))
            return session if session is not None and session.state == "online" else None
        station, ip = _first(attrs, "Calling-Station-Id"), _first(attrs, "Framed-IP-Address")
        if station is None and ip is None:
            return None
        for session in online_sessions(self.redis):
            if (
                station is not None
                and device_id(session.mac, mode=self.radius.device_id, key=self.key) != station
            ):
                continue
            if ip is not None and session.ip != str(ip):
                continue
            return session
        return None

    def _ack(self, request: packet.CoAPacket) -> bytes:
        reply = request.CreateReply()
        reply.add_message_authenticator()
        return reply.ReplyPacket()

    def _nak(self, request: packet.CoAPacket, cause: str, kind: str, source: str) -> bytes:
        log.info("dynauth_nak", source=source, kind=kind, cause=cause)
        reply = request.CreateReply()
        reply.code = packet.DisconnectNAK if request.code == packet.DisconnectRequest else packet.CoANAK
        reply["Error-Cause"] = cause
        reply.add_message_authenticator()
        return reply.ReplyPacket()

    # -- the listener ---------------------------------------------------------------------

    def start(self) -> None:
        """Bind ``radius.dynauth_listen`` and serve in a thread (a pass hook: never raises)."""
        host, _, port = self.radius.dynauth_listen.rpartition(":")
        try:
            if not self.secret:
                self.secret = read_secret(self.radius)
            self.key = device_key(self.config)
        except (OSError, ValueError) as err:
            log.error("dynauth_not_listening", listen=self.radius.dynauth_listen, error=str(err))
            return
        try:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((host.strip("[]"), int(port)))
        except OSError as err:
            log.error("dynauth_not_listening", listen=self.radius.dynauth_listen, error=str(err))
            return
        self.sock.settimeout(0.5)
        self.thread = threading.Thread(target=self._serve, name="radius-dynauth", daemon=True)
        self.thread.start()
        log.info("dynauth_listening", listen=self.radius.dynauth_listen, clients=sorted(self.allowed))

    def after_pass(self, now: float, *, duration: float, drift: dict[str, int], failed: bool) -> object:
        return None  # the listener runs on its own thread

    def outdated(self, config: Config) -> bool:
        """Return whether ``config`` (a reload) asks for another listener: other ``[radius]``
        settings, a changed secret file, or this one never started listening."""
        if config.radius != self.radius or self.sock is None:
            return True
        try:
            return read_secret(config.radius) != self.secret
        except (OSError, ValueError):
            return True

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(5)
        if self.sock is not None:
            self.sock.close()

    def _serve(self) -> None:
        assert self.sock is not None  # noqa: S101 (set by start)
        while not self.stopping.is_set():
            try:
                data, (source, port) = self.sock.recvfrom(MAX_PACKET + 1)
            except TimeoutError:
                continue
            except OSError as err:
                log.warning("dynauth_socket_error", error=str(err))
                self.stopping.wait(0.5)
                continue
            try:
                answer = self.handle(data, source)
                if answer is not None:
                    self.sock.sendto(answer, (source, port))
            except Exception:  # one bad request must never stop the listener
                log.exception("dynauth_failed", source=source)


def _first(attrs: dict[str, list], name: str) -> Any:
    values = attrs.get(name) or []
    return values[0] if values else None


def _epoch(value: Any) -> float:
    if hasattr(value, "timestamp"):
        return float(value.timestamp())
    return float(value)
