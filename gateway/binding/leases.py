"""Read dnsmasq's lease file: which IPv4 address each MAC holds a lease on.

The file has one lease per line, ``<expiry epoch> <mac> <ip> <hostname> <client-id>``
(``0`` expiry: infinite); a ``duid`` line starts the DHCPv6 part, which we skip.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from gateway.model.record import normalize_mac

__all__ = ["parse_leases", "read_leases"]


def parse_leases(text: str, now: float) -> dict[str, str]:
    """Return ``{mac: ipv4}`` for the unexpired IPv4 leases in a dnsmasq lease file's text.

    A MAC may hold two leases (another client id); the one that runs longest is its newest.
    """
    leases: dict[str, str] = {}
    ends: dict[str, float] = {}
    for line in text.splitlines():
        fields = line.split()
        if fields[:1] == ["duid"]:
            break
        if len(fields) < 3:
            continue
        try:
            expiry = int(fields[0])
            mac = normalize_mac(fields[1])
            ip = ipaddress.IPv4Address(fields[2])
        except ValueError:
            continue
        end = float("inf") if expiry == 0 else float(expiry)
        if end > now and end > ends.get(mac, -1.0):
            leases[mac], ends[mac] = str(ip), end
    return leases


def read_leases(path: Path, now: float) -> dict[str, str] | None:
    """Return the leases in ``path``, or None when it cannot be read (no evidence: nobody moves)."""
    try:
        return parse_leases(path.read_text(errors="replace"), now)
    except OSError:
        return None
