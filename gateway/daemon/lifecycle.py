"""Accounting and the end of sessions: pure functions of sessions, counters and ``now``.

Bytes come from the per-element counters of the session's set elements (``auth*``:
upload, ``down*``: download). Kernel counters restart from zero whenever an element is
created again (a reboot, a hand flush, a client that moved to a new IP), so the gateway
keeps, per session, the counter values it last saw (the *baseline*, in Redis) and adds
only what grew since; a counter below its baseline was reset and counts from zero.

A session ends when its time is up (``expired``), its quota is used (``quota``) or it
sent and received nothing for ``gateway.idle_timeout`` (``idle``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.firewall.plan import DOWNLOAD_SETS, Element, Present
from gateway.model.record import Session

__all__ = ["Baseline", "Usage", "account", "plan_ends"]

# element ("set|key") -> (bytes, packets) as last seen in the kernel
Baseline = dict[str, tuple[int, int]]


@dataclass(frozen=True)
class Usage:
    """A session's totals after a pass, and whether they changed."""

    bytes_up: int
    bytes_down: int
    last_active: float
    changed: bool


def _name(element: Element) -> str:
    return f"{element.set}|{element.text()}"


def account(
    session: Session,
    elements: Mapping[Element, Present],
    baseline: Mapping[str, tuple[int, int]],
    now: float,
) -> tuple[Usage, Baseline]:
    """Return ``session``'s new totals from its elements' counters, and the new baseline."""
    up, down, moved = session.bytes_up, session.bytes_down, False
    new_baseline: Baseline = {}
    for element, present in elements.items():
        name = _name(element)
        seen_bytes, seen_packets = baseline.get(name, (0, 0))
        if present.bytes >= seen_bytes and present.packets >= seen_packets:
            grew_bytes, grew_packets = present.bytes - seen_bytes, present.packets - seen_packets
        else:  # the element was created again: its counter started over
            grew_bytes, grew_packets = present.bytes, present.packets
        if element.set in DOWNLOAD_SETS:
            down += grew_bytes
        else:
            up += grew_bytes
        moved = moved or grew_packets > 0
        new_baseline[name] = (present.bytes, present.packets)
    last_active = now if moved else max(session.last_active, session.started_at)
    changed = (up, down) != (session.bytes_up, session.bytes_down) or moved
    return Usage(up, down, last_active, changed), new_baseline


def plan_ends(sessions: Sequence[Session], now: float, idle_timeout: float) -> list[tuple[Session, str]]:
    """Return the sessions that must end now, each with its reason."""
    ends = []
    for session in sessions:
        active = max(session.last_active, session.started_at)
        if now >= session.expires_at:
            ends.append((session, "expired"))
        elif session.quota and session.bytes_up + session.bytes_down >= session.quota:
            ends.append((session, "quota"))
        elif (session.idle_timeout or idle_timeout) and now - active >= (
            session.idle_timeout or idle_timeout
        ):
            ends.append((session, "idle"))
    return ends
