"""Which MAC is at which IP on the LAN: the rule and the table (pure).

The kernel's neighbour table (ARP and NDP) is read by :mod:`gateway.neighbour_reader`
(pyroute2, the gateway and the portal's IPv6 lookups) and by the portal from
``/proc/net/arp`` (:func:`parse_arp_table`, IPv4, no capability needed). Both go by
one rule, :func:`usable`: a MAC is "at" an IP when the kernel has heard from it there
(reachable, stale, delay, probe) or was told so (permanent).

Entries being resolved (incomplete) or failed have no MAC. NOARP entries are refused
too: the kernel makes them for addresses that are never resolved on the wire
(multicast and broadcast, or a device without ARP), and their link-layer address is
computed from the IP address (``33:33:...`` for IPv6 multicast), not heard from a
device, so no client can be at one. ``/proc/net/arp`` skips NOARP entries for the same
reason, so the portal's IPv4 path always followed this rule; the gateway used to accept
NOARP and now refuses it like the portal.

The table gives candidates, never proof: the session binder (:mod:`gateway.binding`)
moves a session or authorizes an IPv6 address only on evidence the device itself gave
(dnsmasq's lease, an answer to the router's own probe). The CLI resolves
``hotspotctl auth IP`` / ``kick IP`` to a device with it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from gateway.model.record import normalize_mac

__all__ = ["NeighbourTable", "USABLE_STATES", "parse_arp_table", "usable", "usable_ip6"]

# neighbour states (linux/neighbour.h) whose link-layer address a device is at:
# NUD_REACHABLE, NUD_STALE, NUD_DELAY, NUD_PROBE, NUD_PERMANENT (not NUD_NOARP, see above)
USABLE_STATES = 0x02 | 0x04 | 0x08 | 0x10 | 0x80
ZERO_MAC = "00:00:00:00:00:00"
_ATF_COM = 0x2  # /proc/net/arp: the entry is complete (the kernel's rendering of USABLE_STATES)


def usable(state: int, mac: str | None) -> bool:
    """Return whether a neighbour entry in ``state`` with link-layer address ``mac`` places a device."""
    return bool(state & USABLE_STATES) and bool(mac) and mac.lower() != ZERO_MAC


def parse_arp_table(text: str) -> dict[tuple[str, str], str]:
    """Return ``{(ip, device): mac}`` for the complete entries of a ``/proc/net/arp`` text.

    The kernel lists no NOARP entry there and flags as complete exactly the states
    :func:`usable` accepts, so the flag stands for the state.
    """
    table = {}
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 6:
            continue
        ip, _hwtype, flags, mac, _mask, device = fields[:6]
        try:
            state = USABLE_STATES if int(flags, 16) & _ATF_COM else 0
        except ValueError:
            continue
        if usable(state, mac):
            table[(ip, device)] = mac.lower()
    return table


@dataclass
class NeighbourTable:
    """The LAN's neighbours: ``ip -> mac`` and, per MAC, its IPv4 and IPv6 addresses."""

    mac_by_ip: dict[str, str] = field(default_factory=dict)
    ip4_by_mac: dict[str, set[str]] = field(default_factory=dict)
    ip6_by_mac: dict[str, set[str]] = field(default_factory=dict)
    heard: dict[str, float] = field(default_factory=dict)  # ip -> seconds since last heard from

    @classmethod
    def from_entries(cls, entries: Iterable[tuple[str, str] | tuple[str, str, float]]) -> NeighbourTable:
        """Return the table for ``(ip, mac[, seconds since heard])`` entries (bad ones are skipped)."""
        table = cls()
        for ip_text, mac_text, *age in entries:
            try:
                ip = ipaddress.ip_address(ip_text)
                mac = normalize_mac(mac_text)
            except ValueError:
                continue
            if mac == ZERO_MAC:
                continue
            table.mac_by_ip[str(ip)] = mac
            table.heard[str(ip)] = float(age[0]) if age else 0.0
            into = table.ip4_by_mac if ip.version == 4 else table.ip6_by_mac
            into.setdefault(mac, set()).add(str(ip))
        return table

    def mac_at(self, ip: str) -> str | None:
        """Return the MAC seen at ``ip``, or None."""
        try:
            return self.mac_by_ip.get(str(ipaddress.ip_address(ip)))
        except ValueError:
            return None

    def ip4_of(self, mac: str) -> list[str]:
        """Return the IPv4 addresses ``mac`` is seen at, most recently heard first."""
        found = self.ip4_by_mac.get(mac, ())
        return sorted(found, key=lambda ip: (self.heard.get(ip, 0.0), ipaddress.IPv4Address(ip)))


def usable_ip6(text: str) -> str | None:
    """Return ``text`` compressed if it is an IPv6 address a device may be authorized for.

    Global and unique-local unicast only: never link-local, multicast, unspecified, loopback
    or IPv4-mapped. The firewall's planner and the session binder share this one rule.
    """
    try:
        ip = ipaddress.IPv6Address(text)
    except ValueError:
        return None
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_loopback or ip.ipv4_mapped:
        return None
    return str(ip)
