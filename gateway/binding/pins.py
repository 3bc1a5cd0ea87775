"""Pin the router's neighbour entries of online devices to the MAC they logged in with.

The kernel believes an ARP reply or NA that says "address X is at MAC M" and then sends
X's traffic to M: one forged packet from any visitor cuts an online phone off its
downloads for half a minute (or hands them to the visitor). For each online session whose
device is there (its address is in the neighbour table) the gateway therefore keeps a
*permanent* entry ``session IP -> session MAC`` (and one per verified IPv6 address),
which no ARP or NDP packet can change. Entries carry our own
protocol number (:data:`PROTOCOL`), so entries someone else made are never touched.

A component of the reconcile loop (``name = "pins"``): level-triggered like the others.
A login pins right after the requester has its answer (``after_reply``: the pin guards
the device's traffic, it does not let it through).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping, Sequence

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from gateway.binding.guard import SessionBinder
from gateway.config import Config
from gateway.logs import get_logger
from gateway.model.record import Session
from gateway.nsenter import in_netns

__all__ = ["PROTOCOL", "NeighbourPins", "plan_pins"]

log = get_logger("pins")

PROTOCOL = 0x68  # NDA_PROTOCOL of our entries ("h"otspot); the kernel keeps it, others ignore it
NUD_PERMANENT = 0x80
HEAL_EVERY = 60.0  # seconds between reads of the kernel's table (entries removed by hand come back)


def plan_pins(
    sessions: Sequence[Session], ip6_by_mac: Mapping[str, set[str]] | None = None
) -> dict[str, str]:
    """Return ``{ip: mac}`` entries to pin for ``sessions`` (pure). One IP, one MAC: newest wins."""
    pins: dict[str, str] = {}
    for session in sorted(sessions, key=lambda s: (s.started_at, s.sid)):
        mac = session.mac.lower()
        try:
            pins[str(ipaddress.IPv4Address(session.ip))] = mac
        except ValueError:
            continue
        for ip6 in sorted((ip6_by_mac or {}).get(mac, ())):
            pins[ip6] = mac
    return pins


class NeighbourPins:
    """Keeps a permanent neighbour entry per online session (and verified IPv6 address).

    Remembers what it pinned, and reads the kernel's table back (a full neighbour dump,
    ~0.2 ms per entry in pyroute2) only at start and every :data:`HEAL_EVERY` seconds, to
    heal entries someone removed by hand.
    """

    name = "pins"
    after_reply = True  # a login's pin guards the device's traffic, it does not let it through

    def __init__(self, config: Config, binder: SessionBinder | None = None):
        self.config = config
        self.binder = binder  # its verified IPv6 addresses are pinned too
        self.index: int | None = None
        self.pinned: dict[str, str] | None = None  # ip -> mac we pinned; None: read the kernel
        self.read_at = 0.0
        with in_netns(config.network.netns):
            self.ipr = IPRoute()

    def configure(self, config: Config) -> None:
        if config.network != self.config.network:
            self.index, self.pinned = None, None
        self.config = config

    def _index(self) -> int | None:
        if self.index is None:
            found = self.ipr.link_lookup(ifname=self.config.network.lan_interface)
            self.index = found[0] if found else None
        return self.index

    def _ours(self, index: int) -> dict[str, str]:
        out = {}
        for family in (socket.AF_INET, socket.AF_INET6):
            for msg in self.ipr.get_neighbours(family=family, ifindex=index):
                if msg["state"] & NUD_PERMANENT and msg.get_attr("NDA_PROTOCOL") == PROTOCOL:
                    dst, mac = msg.get_attr("NDA_DST"), msg.get_attr("NDA_LLADDR")
                    if dst and mac:
                        out[str(ipaddress.ip_address(dst))] = mac.lower()
        return out

    def _pin(self, index: int, ip: str, mac: str) -> None:
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        self.ipr.neigh("replace", dst=ip, lladdr=mac, ifindex=index, family=family,
                       state=NUD_PERMANENT, NDA_PROTOCOL=PROTOCOL)  # fmt: skip
        if self.pinned is not None:
            self.pinned[ip] = mac

    def _unpin(self, index: int, ip: str) -> None:
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        try:
            self.ipr.neigh("del", dst=ip, ifindex=index, family=family)
        except NetlinkError as err:  # already gone: the wanted state
            log.debug("unpin_missing", ip=ip, error=str(err))
        if self.pinned is not None:
            self.pinned.pop(ip, None)

    def reconcile(self, sessions: Sequence[Session], now: float) -> dict[str, int]:
        """Make our permanent entries match the online sessions; return counts."""
        index = self._index()
        if index is None:
            self.pinned = None
            return {"added": 0, "removed": 0, "unchanged": 0}
        binder = self.binder
        ip6 = binder.authorized if binder is not None else {}
        left = binder.left if binder is not None else set()
        present = binder.present if binder is not None else None
        # pin devices that are there (their address is in the table: an entry made permanent
        # costs nothing more), never a session whose address dnsmasq gave to another device
        pinned = self.pinned or {}
        sessions = [
            s for s in sessions
            if s.sid not in left and (present is None or s.ip in present or s.ip in pinned)
        ]  # fmt: skip
        want = plan_pins(sessions, ip6)
        if self.pinned is None or now - self.read_at >= HEAL_EVERY:
            self.pinned, self.read_at = self._ours(index), now
        have = dict(self.pinned)
        added = removed = 0
        for ip, mac in want.items():
            if have.get(ip) != mac:
                self._pin(index, ip, mac)
                added += 1
        for ip in set(have) - set(want):
            self._unpin(index, ip)
            removed += 1
        return {"added": added, "removed": removed, "unchanged": len(want) - added}

    def login(self, session: Session, now: float) -> None:
        """Pin the session's IPv4 entry at once if the router has one (the device is there)."""
        index = self._index()
        if index is None:
            return
        for ip, mac in plan_pins([session]).items():
            family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            try:  # "change" replaces an existing entry and creates none: one netlink call
                self.ipr.neigh("change", dst=ip, lladdr=mac, ifindex=index, family=family,
                               state=NUD_PERMANENT, NDA_PROTOCOL=PROTOCOL)  # fmt: skip
            except NetlinkError:  # no entry: nobody there yet (the pass pins it once there is)
                continue
            if self.pinned is not None:
                self.pinned[ip] = mac

    def logout(self, session: Session, now: float) -> None:
        """Drop the session's pins (its IPv4 one and those of its MAC we know of)."""
        index = self._index()
        if index is None:
            return
        known = self.pinned or {}
        mine = {ip for ip, mac in known.items() if mac == session.mac.lower()}
        mine |= {ip for ip, mac in plan_pins([session]).items() if known.get(ip, mac) == mac}
        for ip in mine:
            self._unpin(index, ip)

    def close(self) -> None:
        self.ipr.close()
