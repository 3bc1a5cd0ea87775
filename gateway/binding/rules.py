"""The pure rules of session binding: who may move a session, which IPv6 addresses it may use.

Inputs are observations (sessions, dnsmasq's leases, the neighbour table's addresses per
MAC, what the router's own probes heard back); outputs are decisions. Nothing here reads
the kernel or the clock.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from gateway.model.record import Session
from gateway.neighbours import usable_ip6

__all__ = [
    "MAX_IP6",
    "MAX_PROBES",
    "RETRY_AFTER",
    "VERIFIED_FOR",
    "Ip6Plan",
    "decide_moves",
    "leased_to_others",
    "plan_ip6",
    "plan_move_candidates",
]

MAX_IP6 = 4  # IPv6 addresses authorized per device (phones use one or two privacy addresses)
MAX_PROBES = 32  # probes sent per pass at most: a flood of forged entries cannot stall the loop
VERIFIED_FOR = 600.0  # seconds an answered probe counts before the address is probed again
RETRY_AFTER = 30.0  # seconds before an unanswered address (or a refused move) is tried again


def plan_move_candidates(
    sessions: Sequence[Session],
    leases: Mapping[str, str],
    lan: ipaddress.IPv4Network,
    router: ipaddress.IPv4Address,
) -> dict[str, str]:
    """Return ``{sid: lease IPv4}`` for sessions whose MAC now holds a lease on another address.

    These are only candidates: the move also needs the old address to have gone quiet
    (:func:`decide_moves`). An address another online session uses is never a candidate.
    """
    taken = {s.ip for s in sessions}
    out: dict[str, str] = {}
    for session in sessions:
        ip = leases.get(session.mac.lower())
        if ip is None or ip == session.ip or ip in taken:
            continue
        address = ipaddress.IPv4Address(ip)
        if address in lan and address != router:
            out[session.sid] = ip
    return out


def leased_to_others(sessions: Sequence[Session], leases: Mapping[str, str]) -> set[str]:
    """Return the sids whose address dnsmasq now leases to another MAC (their device has left it).

    dnsmasq never leases an address that another client holds, so this is evidence the
    session's device gave the address up; its neighbour entry must not stay pinned to it.
    """
    holder = {ip: mac for mac, ip in leases.items()}
    return {s.sid for s in sessions if holder.get(s.ip, s.mac.lower()) != s.mac.lower()}


def decide_moves(
    sessions: Sequence[Session],
    candidates: Mapping[str, str],
    answered: Iterable[tuple[str, str]],
) -> tuple[dict[str, str], dict[str, str]]:
    """Split ``candidates`` into (moves, refused) by whether the old address still answers.

    ``answered`` holds ``(ip, mac)`` pairs whose ARP probe got a reply from that MAC. A
    device still answering at its session's address has not moved, whatever a lease or a
    neighbour entry says: its session stays.
    """
    heard = set(answered)
    by_sid = {s.sid: s for s in sessions}
    moves: dict[str, str] = {}
    refused: dict[str, str] = {}
    for sid, ip in candidates.items():
        session = by_sid.get(sid)
        if session is None:
            continue
        if (session.ip, session.mac.lower()) in heard:
            refused[sid] = ip
        else:
            moves[sid] = ip
    return moves, refused


@dataclass
class Ip6Plan:
    """Which IPv6 addresses each MAC may use now, and which to probe this pass."""

    authorized: dict[str, set[str]] = field(default_factory=dict)  # mac -> addresses
    probe: list[tuple[str, str]] = field(default_factory=list)  # (ip6, mac)


def plan_ip6(
    sessions: Sequence[Session],
    seen: Mapping[str, Iterable[str]],
    verified: Mapping[tuple[str, str], float],
    failed: Mapping[tuple[str, str], float],
    now: float,
) -> Ip6Plan:
    """Return the IPv6 addresses to authorize and the ones to probe.

    ``seen`` is the neighbour table's addresses per MAC (candidates only: anyone can plant
    an entry); ``verified`` maps ``(mac, ip6)`` to the time its probe was answered, ``failed``
    to the time its probe went unanswered. An address is authorized while its answer is
    younger than :data:`VERIFIED_FOR`, for at most :data:`MAX_IP6` addresses per MAC (the most
    recently verified); it is probed when it has no fresh answer and did not fail in the last
    :data:`RETRY_AFTER` seconds, at most :data:`MAX_PROBES` per pass.
    """
    plan = Ip6Plan()
    for mac in sorted({s.mac.lower() for s in sessions}):
        addresses = sorted({a for a in (usable_ip6(x) for x in seen.get(mac, ())) if a})
        fresh = [a for a in addresses if now - verified.get((mac, a), -1e18) < VERIFIED_FOR]
        fresh.sort(key=lambda a: -verified[(mac, a)])
        if fresh:
            plan.authorized[mac] = set(fresh[:MAX_IP6])
        for a in addresses:
            if a in fresh or now - failed.get((mac, a), -1e18) < RETRY_AFTER:
                continue
            if len(plan.probe) < MAX_PROBES:
                plan.probe.append((a, mac))
    return plan
