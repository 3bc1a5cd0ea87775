"""Find a visitor's MAC address from the IP address their request came from.

The portal runs unprivileged in the router's network namespace, so it reads the
kernel's neighbour table without any capability: ``/proc/net/arp`` for IPv4 and an
(unprivileged) netlink dump for IPv6 (:func:`gateway.neighbour_reader.mac_for_ip6`),
both by the gateway's own rule (:func:`gateway.neighbours.usable`). A phone that just
opened a TCP connection to the portal is always in the table: the router had to
resolve it to answer. Only entries on the LAN interface count, so a request from
elsewhere (the WAN side, the router itself) has no MAC and cannot log in.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from gateway.neighbours import parse_arp_table

__all__ = ["ARP_TABLE", "mac_for_ip", "parse_arp_table"]

ARP_TABLE = Path("/proc/net/arp")


def _unmapped(ip: str) -> str | None:
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return None
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(addr)


def mac_for_ip(ip: str, interface: str, *, arp_table: Path = ARP_TABLE) -> str | None:
    """Return the MAC of the LAN neighbour with address ``ip``, or None if it has none."""
    address = _unmapped(ip)
    if address is None:
        return None
    if ":" in address:
        # deliberate: pyroute2 costs each portal worker ~10 MiB; only IPv6 visitors need it
        from gateway.neighbour_reader import mac_for_ip6

        try:
            return mac_for_ip6(address, interface)
        except OSError:
            return None
    try:
        text = arp_table.read_text()
    except OSError:
        return None
    return parse_arp_table(text).get((address, interface))
