"""The fail-closed guard: policy-routing rules that route nothing from the LAN unless our table saw it.

Table ``inet hotspot`` marks every packet arriving on the LAN (chain ``lan_ingress``, bit
:data:`~gateway.names.GUARD_MARK`). These rules, for IPv4 and IPv6, do the rest:

- pref :data:`~gateway.names.GUARD_PREF`: ``iif <lan> fwmark MARK/MARK lookup main``;
- pref ``GUARD_PREF + 1``: ``iif <lan> blackhole``.

The router's own addresses are found in the ``local`` table (pref 0) first, so DHCP, DNS
and the portal still answer; only *forwarding* needs the mark. Rules live in the routing
policy database, not in nftables: ``nft delete table inet hotspot``, a flushed chain or
``nft flush ruleset`` (even with the gateway dead) leave them in place, and the LAN is cut
off instead of opened. The gateway adds them before its first ruleset load and never
removes them (``hotspotctl`` and docs/security.md say how to, by hand).

:func:`wanted_rules` is pure; :class:`Guard` is the thin applier (pyroute2).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from pyroute2 import IPRoute

from gateway.logs import get_logger
from gateway.names import GUARD_MARK, GUARD_PREF
from gateway.nsenter import in_netns

__all__ = ["Guard", "GuardRule", "wanted_rules"]

log = get_logger("guard")

MAIN_TABLE = 254
FR_ACT_TO_TBL = 1
FR_ACT_BLACKHOLE = 6


@dataclass(frozen=True, order=True)
class GuardRule:
    """One policy-routing rule as the kernel reports it."""

    family: int
    priority: int
    action: int
    iifname: str
    fwmark: int = 0
    fwmask: int = 0
    table: int = 0


def wanted_rules(lan_interface: str) -> set[GuardRule]:
    """Return the guard rules for ``lan_interface``, IPv4 and IPv6."""
    out = set()
    for family in (socket.AF_INET, socket.AF_INET6):
        out.add(
            GuardRule(family, GUARD_PREF, FR_ACT_TO_TBL, lan_interface, GUARD_MARK, GUARD_MARK, MAIN_TABLE)
        )
        out.add(GuardRule(family, GUARD_PREF + 1, FR_ACT_BLACKHOLE, lan_interface))
    return out


class Guard:
    """Keeps the guard rules in network namespace ``netns`` ("" = this one)."""

    def __init__(self, lan_interface: str, netns: str = ""):
        self.lan = lan_interface
        self.netns = netns
        self._ipr: IPRoute | None = None  # one netlink socket for the daemon's life (~7 ms to open)

    def _route(self) -> IPRoute:
        if self._ipr is None:
            with in_netns(self.netns):
                self._ipr = IPRoute()
        return self._ipr

    def close(self) -> None:
        """Release the netlink socket; the rules stay in the kernel."""
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None

    def present(self) -> set[GuardRule]:
        """Return the rules the kernel has at the guard's two priorities."""
        ipr = self._route()
        found = set()
        for family in (socket.AF_INET, socket.AF_INET6):
            for msg in ipr.get_rules(family=family):
                prio = msg.get_attr("FRA_PRIORITY")
                if prio not in (GUARD_PREF, GUARD_PREF + 1):
                    continue
                found.add(
                    GuardRule(
                        family, prio, msg["action"], msg.get_attr("FRA_IIFNAME") or "",
                        msg.get_attr("FRA_FWMARK") or 0, msg.get_attr("FRA_FWMASK") or 0,
                        msg.get_attr("FRA_TABLE") or msg["table"],
                    )
                )  # fmt: skip
        return found

    def ensure(self) -> int:
        """Add missing guard rules and remove strangers at their priorities; return changes made."""
        want, have = wanted_rules(self.lan), self.present()
        if want == have:
            return 0
        ipr = self._route()
        for rule in sorted(have - want):
            ipr.rule("del", family=rule.family, priority=rule.priority)
        # by priority: the pass rule is in place before the blackhole
        for rule in sorted(want - have, key=lambda r: r.priority):
            kwargs = {"family": rule.family, "priority": rule.priority, "iifname": rule.iifname}
            if rule.action == FR_ACT_TO_TBL:
                kwargs.update(
                    fwmark=rule.fwmark, fwmask=rule.fwmask, table=rule.table, action="FR_ACT_TO_TBL"
                )
            else:
                kwargs.update(action="FR_ACT_BLACKHOLE")
            ipr.rule("add", **kwargs)
        changes = len(have - want) + len(want - have)
        log.info("guard_rules_set", changes=changes, lan=self.lan)
        return changes
