"""Talk to HQ: Access-Request and Accounting-Request with failover, through pyrad.

Servers are tried in ``radius.servers`` order; each gets ``radius.retries`` tries of
``radius.timeout`` seconds, so a request gives up after at most ``Radius.auth_bound``
seconds (checked at config load to be at most 10 s). pyrad checks every reply's Response
Authenticator and Message-Authenticator against the shared secret and ignores anything
else (a spoofed or garbled reply is dropped as if lost), and we only read replies from the
server's own address and port (a connected UDP socket). Every Access-Request carries a
Message-Authenticator, and one in a reply is always checked; it is not *required* in
replies because FreeRADIUS before 3.2.5 (Debian 12 has 3.2.1) does not send one
(BlastRADIUS, CVE-2024-3596: with a newer HQ, set ``enforce_ma`` in :meth:`_client`).
"""

from __future__ import annotations

import select
import socket
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from pyrad import packet
from pyrad.client import Client, Timeout
from pyrad.dictionary import Dictionary

from gateway.config import Radius, RadiusServer
from gateway.logs import get_logger
from gateway.radius.attributes import dictionary_path

__all__ = [
    "RadiusClient",
    "RadiusReply",
    "RadiusUnavailable",
    "attributes_by_name",
    "load_dictionary",
    "read_secret",
]

log = get_logger("radius")


class RadiusUnavailable(Exception):
    """No server answered (validly) within the bound."""


@dataclass(frozen=True)
class RadiusReply:
    """A verified reply: accepted or not, and its attributes by name (values as lists)."""

    accepted: bool
    attributes: Mapping[str, list]
    server: str


@cache
def load_dictionary() -> Dictionary:
    """Return the shipped dictionary (parsed once per process)."""
    return Dictionary(dictionary_path())


def read_secret(radius: Radius) -> bytes:
    """Return the shared secret from ``radius.secret_file`` (first line, stripped)."""
    text = radius.secret_file.read_text(encoding="utf-8").strip()
    if not text:
        raise ValueError(f"{radius.secret_file}: the RADIUS secret is empty")
    return text.encode()


class _ConnectedClient(Client):
    """A pyrad client whose socket is connected to the server: the kernel drops datagrams
    from any other address or port before pyrad sees them."""

    def __init__(self, server: RadiusServer, **kwargs: Any):
        super().__init__(str(server.host), authport=server.auth_port, acctport=server.acct_port, **kwargs)
        self._connected_to: int | None = None

    def _SendPacket(self, pkt, port):
        self._SocketOpen()
        if self._connected_to != port:
            self._socket.connect((self.server, port))
            self._connected_to = port
        return super()._SendPacket(pkt, port)


class RadiusClient:
    """Sends requests to HQ for one router (``config.radius``)."""

    def __init__(self, radius: Radius, secret: bytes | None = None):
        self.radius = radius
        self.secret = secret if secret is not None else read_secret(radius)
        self.dictionary = load_dictionary()

    def _client(self, server: RadiusServer) -> _ConnectedClient:
        return _ConnectedClient(
            server,
            secret=self.secret,
            dict=self.dictionary,
            retries=self.radius.retries,
            timeout=self.radius.timeout,
            enforce_ma=False,
        )

    def _common(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {"NAS-Identifier": self.radius.nas_identifier}
        if self.radius.nas_ip is not None:
            attrs["NAS-IP-Address"] = str(self.radius.nas_ip)
        return attrs

    def authenticate(self, user: str, password: str, **attributes: Any) -> RadiusReply:
        """Send an Access-Request (PAP) and return the verified reply; raise :class:`RadiusUnavailable`."""
        for server in self.radius.servers:
            client = self._client(server)
            try:
                pkt = client.CreateAuthPacket(code=packet.AccessRequest)
                pkt["User-Name"] = user
                pkt["User-Password"] = pkt.PwCrypt(password)
                pkt["Service-Type"] = "Login-User"
                pkt["NAS-Port-Type"] = "Wireless-802.11"
                for name, value in {**self._common(), **attributes}.items():
                    pkt[name] = value
                reply = client.SendPacket(pkt)
            except (Timeout, OSError) as err:
                log.warning(
                    "radius_no_answer", server=str(server.host), kind="auth", error=type(err).__name__
                )
                continue
            finally:
                client._CloseSocket()
            return RadiusReply(reply.code == packet.AccessAccept, attributes_by_name(reply), str(server.host))
        raise RadiusUnavailable(f"no RADIUS server answered within {self.radius.auth_bound:g}s")

    def account(self, attributes: Mapping[str, Any]) -> str:
        """Send one Accounting-Request; return the server that answered; raise :class:`RadiusUnavailable`."""
        for server in self.radius.servers:
            client = self._client(server)
            try:
                pkt = client.CreateAcctPacket()
                for name, value in {**self._common(), **attributes}.items():
                    pkt[name] = value
                reply = client.SendPacket(pkt)
            except (Timeout, OSError) as err:
                log.debug("radius_no_answer", server=str(server.host), kind="acct", error=type(err).__name__)
                continue
            finally:
                client._CloseSocket()
            if reply.code == packet.AccountingResponse:
                return str(server.host)
        raise RadiusUnavailable("no RADIUS server acknowledged the accounting record")

    def account_many(self, items: Sequence[tuple[str, Mapping[str, Any]]], window: int = 32) -> list[str]:
        """Send Accounting-Requests with up to ``window`` in flight; return the keys HQ acknowledged.

        ``items`` are (key, attributes). Each request gets ``radius.retries`` tries of
        ``radius.timeout``; replies are matched by Identifier and verified like pyrad's
        (Response Authenticator, Message-Authenticator if present) on a socket connected to
        the server. Servers are tried in order until one acknowledges something; raise
        :class:`RadiusUnavailable` when none does.
        """
        if not items:
            return []
        for server in self.radius.servers:
            try:
                acked = self._account_window(server, items, max(1, min(window, 200)))
            except OSError as err:
                log.debug("radius_no_answer", server=str(server.host), kind="acct", error=str(err))
                continue
            if acked:
                return acked
        raise RadiusUnavailable("no RADIUS server acknowledged the accounting records")

    def _account_window(
        self, server: RadiusServer, items: Sequence[tuple[str, Mapping[str, Any]]], window: int
    ) -> list[str]:
        common = self._common()
        queue = deque(items)
        inflight: dict[int, list[Any]] = {}  # id -> [key, packet, raw, deadline, tries]
        acked: list[str] = []
        next_id = packet.CreateID()
        giving_up = False
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect((str(server.host), server.acct_port))  # the kernel drops other senders
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            while inflight or (queue and not giving_up):
                while queue and not giving_up and len(inflight) < window:
                    while next_id in inflight:
                        next_id = (next_id + 1) % 256
                    key, attrs = queue.popleft()
                    pkt = packet.AcctPacket(id=next_id, secret=self.secret, dict=self.dictionary)
                    for name, value in {**common, **attrs}.items():
                        pkt[name] = value
                    raw = pkt.RequestPacket()
                    sock.send(raw)
                    inflight[next_id] = [key, pkt, raw, time.monotonic() + self.radius.timeout, 1]
                    next_id = (next_id + 1) % 256
                wait = min(entry[3] for entry in inflight.values()) - time.monotonic()
                if poller.poll(max(0, wait) * 1000):
                    data = sock.recv(4096)
                    entry = inflight.get(data[1]) if len(data) >= 20 else None
                    if entry is not None:
                        try:
                            reply = entry[1].CreateReply(packet=data)
                            valid = (
                                entry[1].VerifyReply(reply, data) and reply.code == packet.AccountingResponse
                            )
                        except Exception:  # noqa: BLE001 - untrusted bytes: a reply that does not decode is no reply
                            valid = False
                        if valid:
                            acked.append(entry[0])
                            del inflight[data[1]]
                now = time.monotonic()
                for ident, entry in list(inflight.items()):
                    if now < entry[3]:
                        continue
                    if entry[4] < self.radius.retries:
                        sock.send(entry[2])
                        entry[3], entry[4] = now + self.radius.timeout, entry[4] + 1
                    else:
                        del inflight[ident]
                        giving_up = True  # HQ stopped answering: send nothing new, wait for the rest
        return acked


def attributes_by_name(pkt: packet.Packet) -> dict[str, list]:
    """Return a packet's attributes by dictionary name (unknown ones by number, as text)."""
    found: dict[str, list] = {}
    for key in pkt.keys():
        name = key if isinstance(key, str) else str(key)
        try:
            found[name] = list(pkt[key])
        except (KeyError, TypeError, ValueError):
            found[name] = []
    return found
