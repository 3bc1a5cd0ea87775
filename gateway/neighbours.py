"""Which MAC is at which IP on the LAN: the kernel's neighbour table (ARP and NDP).

Read with pyroute2 (~1 ms for the whole LAN). The gateway uses it to

- follow a client that renews to a new IPv4 address (its session keeps going),
- authorize the IPv6 addresses an online phone uses (``auth6``), and
- resolve ``hotspotctl auth IP`` / ``kick IP`` to a device.

Entries that are only being resolved or have failed are ignored: a MAC is "at" an IP
when the kernel has heard from it there (reachable, stale, delay, probe) or was told so
(permanent). Planning from a table is pure (:func:`plan_moves`).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from gateway.model.sessions import Session, normalize_mac
from gateway.nsenter import in_netns

__all__ = ["NeighbourReader", "NeighbourTable", "plan_moves"]

# NUD_REACHABLE, NUD_STALE, NUD_DELAY, NUD_PROBE, NUD_NOARP, NUD_PERMANENT
_VALID_STATES = 0x02 | 0x04 | 0x08 | 0x10 | 0x40 | 0x80
# a device still heard at its session's address moves only if its new one is fresher by this much
MOVE_MARGIN = 30.0


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
            if mac == "00:00:00:00:00:00":
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


def plan_moves(
    sessions: Sequence[Session],
    table: NeighbourTable,
    lan: ipaddress.IPv4Network,
    router: ipaddress.IPv4Address,
) -> dict[str, str]:
    """Return ``{sid: new IPv4}`` for sessions whose device now uses another LAN address.

    A device that renewed to a new lease keeps its session: it moves to the LAN address its
    MAC was heard at most recently, once its session's address no longer shows its MAC
    (taken over, or gone from the table) or was last heard :data:`MOVE_MARGIN` seconds
    before the new one (the old entry lingers as "stale" for a minute or so). An address
    another device took over never moves anyone to it.
    """
    moves: dict[str, str] = {}
    for session in sessions:
        mac = session.mac.lower()
        candidates = [
            ip for ip in table.ip4_of(mac)
            if ip != session.ip and ipaddress.IPv4Address(ip) in lan and ipaddress.IPv4Address(ip) != router
        ]  # fmt: skip
        if not candidates:
            continue
        best = candidates[0]
        still_here = table.mac_at(session.ip) == mac
        if not still_here or table.heard.get(session.ip, 0.0) - table.heard[best] > MOVE_MARGIN:
            moves[session.sid] = best
    return moves


class NeighbourReader:
    """Reads the neighbour table of ``ifname`` in ``netns`` with one long-lived netlink socket."""

    def __init__(self, netns: str, ifname: str):
        from pyroute2 import IPRoute

        with in_netns(netns):
            self.ipr = IPRoute()
        self.ifname = ifname
        self.table = NeighbourTable()

    def read(self) -> NeighbourTable:
        """Return (and keep as ``.table``) the current neighbours of the LAN interface."""
        found = self.ipr.link_lookup(ifname=self.ifname)
        if not found:
            self.table = NeighbourTable()
            return self.table
        entries = []
        for family in (socket.AF_INET, socket.AF_INET6):
            for msg in self.ipr.get_neighbours(family=family, ifindex=found[0]):
                if not msg["state"] & _VALID_STATES:
                    continue
                dst, mac = msg.get_attr("NDA_DST"), msg.get_attr("NDA_LLADDR")
                info = msg.get_attr("NDA_CACHEINFO") or {}
                # ages are in 1/100 s: the last confirmation or update, whichever is newer
                heard = min(info.get("ndm_confirmed", 0), info.get("ndm_updated", 0)) / 100
                if dst and mac:
                    entries.append((dst, mac, heard))
        self.table = NeighbourTable.from_entries(entries)
        return self.table

    def close(self) -> None:
        self.ipr.close()
