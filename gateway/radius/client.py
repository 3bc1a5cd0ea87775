"""Talk to HQ: Access-Request and Accounting-Request with failover, through pyrad.

Servers are tried in ``radius.servers`` order; each gets ``radius.retries`` tries of
``radius.timeout`` seconds, so a request gives up after at most ``Radius.auth_bound``
seconds (checked at config load to be at most 10 s). pyrad checks every reply's Response
Authenticator and Message-Authenticator against the shared secret and ignores anything
else (a spoofed or garbled reply is dropped as if lost); we also require the
Message-Authenticator on Access-Accept/Reject (BlastRADIUS, CVE-2024-3596) and only
read replies from the server's own address and port (a connected UDP socket).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from pyrad import packet
from pyrad.client import Client, Timeout
from pyrad.dictionary import Dictionary

from gateway.config import Radius, RadiusServer
from gateway.logs import get_logger
from gateway.radius.attributes import dictionary_path

__all__ = ["RadiusClient", "RadiusReply", "RadiusUnavailable", "load_dictionary", "read_secret"]

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

    def _SendPacket(self, pkt, port):  # noqa: N802 (pyrad's name)
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
            return RadiusReply(reply.code == packet.AccessAccept, _by_name(reply), str(server.host))
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


def _by_name(reply: packet.Packet) -> dict[str, list]:
    """Return the reply's attributes by dictionary name (unknown ones by number, as text)."""
    found: dict[str, list] = {}
    for key in reply.keys():
        name = key if isinstance(key, str) else str(key)
        try:
            found[name] = list(reply[key])
        except (KeyError, TypeError, ValueError):
            found[name] = []
    return found
