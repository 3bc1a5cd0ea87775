"""The gateway's session binder: applies :mod:`gateway.binding.rules` pass after pass.

Keeps what the probes found between passes (verified IPv6 addresses, unanswered ones,
refused moves), reads dnsmasq's lease file, and runs the probes. Used by the reconcile
loop (:meth:`gateway.daemon.reconcile.Reconciler.run_pass`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gateway.binding import rules
from gateway.binding.leases import read_leases
from gateway.binding.probe import Prober
from gateway.config import Config
from gateway.logs import get_logger
from gateway.model.record import Session
from gateway.neighbour_reader import router_ip6

__all__ = ["SessionBinder"]

log = get_logger("binding")


class SessionBinder:
    """Decides moves and IPv6 addresses with evidence the device itself gave."""

    def __init__(self, config: Config, prober: Prober | None = None):
        self.config = config
        self._prober = prober
        self.verified: dict[tuple[str, str], float] = {}  # (mac, ip6) -> when it answered
        self.failed: dict[tuple[str, str], float] = {}  # (mac, ip6) -> when it did not
        self.refused: dict[tuple[str, str], float] = {}  # (sid, ip) -> when the move was refused
        self.authorized: dict[str, set[str]] = {}  # the last pass's IPv6 addresses per MAC
        self.left: set[str] = set()  # sids whose address is now leased to another MAC: not pinned
        self.present: set[str] | None = None  # addresses in the neighbour table (None: not read)

    def configure(self, config: Config) -> None:
        """Take a reloaded config (a new interface or address gets a new prober)."""
        if config.network != self.config.network:
            self._prober = None
        self.config = config

    @property
    def prober(self) -> Prober:
        if self._prober is None:
            net = self.config.network
            v6 = router_ip6(net.netns, net.lan_interface)
            self._prober = Prober(net.netns, net.lan_interface, str(net.router_ip), v6)
        return self._prober

    def saw(self, addresses: set[str]) -> None:
        """Take the addresses the neighbour table holds this pass (devices that are there)."""
        self.present = addresses

    def moves(self, sessions: Sequence[Session], now: float) -> dict[str, str]:
        """Return ``{sid: new IPv4}`` for sessions whose device provably moved to a new lease."""
        leases = read_leases(self.config.dhcp.lease_file, now)
        self.left = rules.leased_to_others(sessions, leases or {})
        if not leases:
            return {}
        net = self.config.network
        candidates = rules.plan_move_candidates(sessions, leases, net.lan_network, net.router_ip)
        candidates = {
            sid: ip for sid, ip in candidates.items()
            if now - self.refused.get((sid, ip), -1e18) >= rules.RETRY_AFTER
        }  # fmt: skip
        if not candidates:
            return {}
        # at most MAX_PROBES per pass: the rest wait for the next pass (never moved unprobed)
        candidates = dict(sorted(candidates.items())[: rules.MAX_PROBES])
        by_sid = {s.sid: s for s in sessions}
        olds = [(by_sid[sid].ip, by_sid[sid].mac.lower()) for sid in candidates]
        try:
            answered = self.prober.answered(arp=olds)
        except OSError as err:  # no evidence that the old address is gone: nobody moves
            log.warning("probe_failed", kind="arp", error=str(err))
            return {}
        moves, refused = rules.decide_moves(sessions, candidates, answered)
        for sid, ip in refused.items():
            self.refused[(sid, ip)] = now
            session = by_sid[sid]
            log.warning("move_refused", sid=sid, mac=session.mac, ip=session.ip, lease_ip=ip,
                        why="the device still answers at its session's address")  # fmt: skip
        self.refused = {k: t for k, t in self.refused.items() if now - t < rules.RETRY_AFTER}
        return moves

    def still_there(self, session: Session) -> bool:
        """Return whether ``session``'s device still answers at its address (ARP, from its MAC).

        A probe that cannot run counts as "still there": no evidence, no move.
        """
        try:
            return bool(self.prober.answered(arp=[(session.ip, session.mac.lower())]))
        except OSError as err:
            log.warning("probe_failed", kind="arp", error=str(err))
            return True

    def ip6(
        self, sessions: Sequence[Session], seen: Mapping[str, set[str]], now: float
    ) -> dict[str, set[str]]:
        """Return ``{mac: IPv6 addresses}`` the online devices answered for (probing new ones)."""
        plan = rules.plan_ip6(sessions, seen, self.verified, self.failed, now)
        if plan.probe:
            try:
                answered = self.prober.answered(ns=plan.probe)
            except OSError as err:
                log.warning("probe_failed", kind="ns", error=str(err))
                answered = set()
            for ip, mac in plan.probe:
                if (ip, mac) in answered:
                    self.verified[(mac, ip)] = now
                    self.failed.pop((mac, ip), None)
                else:
                    self.failed[(mac, ip)] = now
                    self.verified.pop((mac, ip), None)
            plan = rules.plan_ip6(sessions, seen, self.verified, self.failed, now)
        macs = {s.mac.lower() for s in sessions}
        self.verified = {k: t for k, t in self.verified.items() if k[0] in macs}
        self.failed = {k: t for k, t in self.failed.items() if k[0] in macs and now - t < rules.RETRY_AFTER}
        self.authorized = plan.authorized
        return plan.authorized
