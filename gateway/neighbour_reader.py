"""Read the kernel's neighbour table with pyroute2: the one reader outside the shaping wing.

:class:`NeighbourReader` keeps one netlink socket in the router's namespace (~1 ms for
the whole LAN) for the gateway's reconcile pass and ``hotspotctl auth/kick IP``;
:func:`mac_for_ip6` is the portal's one-shot IPv6 lookup (an unprivileged dump in its
own namespace). Both keep only the entries :func:`gateway.neighbours.usable` accepts.
Reading neighbours needs no capability; nothing here writes to the kernel.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

from pyroute2 import IPRoute

from gateway.neighbours import NeighbourTable, usable
from gateway.nsenter import in_netns

__all__ = ["NeighbourReader", "mac_for_ip6", "router_ip6", "usable_entries"]


def usable_entries(ipr, index: int, family: int, **match) -> Iterator[tuple[str, str, float]]:
    """Yield ``(ip, mac, seconds since heard)`` for the usable neighbours of link ``index``."""
    for msg in ipr.get_neighbours(family=family, ifindex=index, **match):
        dst, mac = msg.get_attr("NDA_DST"), msg.get_attr("NDA_LLADDR")
        if not dst or not usable(msg["state"], mac):
            continue
        info = msg.get_attr("NDA_CACHEINFO") or {}
        # ages are in 1/100 s: the last confirmation or update, whichever is newer
        heard = min(info.get("ndm_confirmed", 0), info.get("ndm_updated", 0)) / 100
        yield dst, mac.lower(), heard


class NeighbourReader:
    """Reads the neighbour table of ``ifname`` in ``netns`` with one long-lived netlink socket."""

    def __init__(self, netns: str, ifname: str):
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
            entries.extend(usable_entries(self.ipr, found[0], family))
        self.table = NeighbourTable.from_entries(entries)
        return self.table

    def close(self) -> None:
        """Close the netlink socket."""
        self.ipr.close()


def mac_for_ip6(ip: str, interface: str) -> str | None:
    """Return the MAC at IPv6 address ``ip`` on ``interface`` (this namespace), or None."""
    with IPRoute() as ipr:
        index = ipr.link_lookup(ifname=interface)
        if not index:
            return None
        for _dst, mac, _heard in usable_entries(ipr, index[0], socket.AF_INET6, dst=ip):
            return mac
    return None


def router_ip6(netns: str, ifname: str) -> str | None:
    """Return the router's IPv6 address on ``ifname`` to probe from (link-local first), or None."""
    with in_netns(netns):
        ipr = IPRoute()
    try:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            return None
        addresses = [m.get_attr("IFA_ADDRESS") for m in ipr.get_addr(family=socket.AF_INET6, index=found[0])]
    finally:
        ipr.close()
    addresses = [a for a in addresses if a]
    addresses.sort(key=lambda a: not a.lower().startswith("fe80:"))
    return addresses[0] if addresses else None
