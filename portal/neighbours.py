"""Find a visitor's MAC address from the IP address their request came from.

The portal runs unprivileged in the router's network namespace, so it reads the
kernel's neighbour table without any capability: ``/proc/net/arp`` for IPv4 and an
(unprivileged) netlink dump through pyroute2 for IPv6. A phone that just opened a TCP
connection to the portal is always in the table: the router had to resolve it to
answer. Only entries on the LAN interface count, so a request from elsewhere (the WAN
side, the router itself) has no MAC and cannot log in.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

__all__ = ["ARP_TABLE", "mac_for_ip", "parse_arp_table"]

ARP_TABLE = Path("/proc/net/arp")
_ATF_COM = 0x2  # the entry is complete (the kernel has the MAC)
_ZERO_MAC = "00:00:00:00:00:00"
# neighbour states without a usable MAC (linux/neighbour.h): NUD_INCOMPLETE, NUD_FAILED, NUD_NOARP
_NUD_UNUSABLE = 0x01 | 0x20 | 0x40


def parse_arp_table(text: str) -> dict[tuple[str, str], str]:
    """Return ``{(ip, device): mac}`` for the complete entries of a ``/proc/net/arp`` text."""
    table = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 6:
            continue
        ip, _hwtype, flags, mac, _mask, device = fields[:6]
        try:
            complete = int(flags, 16) & _ATF_COM
        except ValueError:
            continue
        if complete and mac != _ZERO_MAC:
            table[(ip, device)] = mac.lower()
    return table


def _unmapped(ip: str) -> str | None:
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return None
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(addr)


def _mac_for_ipv6(ip: str, interface: str) -> str | None:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=interface)
        if not index:
            return None
        for entry in ipr.get_neighbours(family=socket.AF_INET6, dst=ip, ifindex=index[0]):
            mac = entry.get_attr("NDA_LLADDR")
            if mac and not entry["state"] & _NUD_UNUSABLE and mac != _ZERO_MAC:
                return mac.lower()
    return None


def mac_for_ip(ip: str, interface: str, *, arp_table: Path = ARP_TABLE) -> str | None:
    """Return the MAC of the LAN neighbour with address ``ip``, or None if it has none."""
    address = _unmapped(ip)
    if address is None:
        return None
    if ":" in address:
        try:
            return _mac_for_ipv6(address, interface)
        except OSError:
            return None
    try:
        text = arp_table.read_text()
    except OSError:
        return None
    return parse_arp_table(text).get((address, interface))
