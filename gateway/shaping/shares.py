"""The shaper's arithmetic: weighted fair shares of the line, and slots for tc handles.

Pure functions, no kernel, no Redis (see :mod:`gateway.shaping.plan` for how they are used).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from gateway.shaping.model import MAX_SLOT

__all__ = ["MIN_CLIENT_RATE", "Water", "assign_slots", "bytes_rate", "fair_shares", "split"]

MIN_CLIENT_RATE = 8_000  # HTB needs some guarantee; below this the sum may exceed the line


def bytes_rate(bits: float) -> int:
    """Return ``bits``/s rounded down to whole bytes per second (what HTB stores), in bits."""
    return max(8, int(bits) // 8 * 8)


@dataclass(frozen=True)
class Water:
    """What a fair split leaves behind, so one more client can be given its share in O(1).

    ``capped`` is the sum of the rates of the clients held at their caps, ``weight`` the
    sum of the weights of the others, who share ``pool - capped`` by weight.
    """

    pool: float
    capped: float
    weight: float

    def admit(self, weight: float, cap: int) -> tuple[int, Water]:
        """Return the share of one more client (``weight``, ``cap``) and the water after it.

        The others keep theirs: with many online each moves by about 1/n, less than the
        applier's tolerance, and the next full split puts everyone right.
        """
        free = max(0.0, self.pool - self.capped)
        offered = free * weight / (self.weight + weight)
        if cap <= offered:
            return max(MIN_CLIENT_RATE, bytes_rate(cap)), replace(self, capped=self.capped + cap)
        return max(MIN_CLIENT_RATE, bytes_rate(offered)), replace(self, weight=self.weight + weight)

    def release(self, weight: float, cap: int, rate: int) -> Water:
        """Return the water once a client that had ``rate`` (of ``cap``) has gone."""
        if rate >= cap:
            return replace(self, capped=max(0.0, self.capped - cap))
        return replace(self, weight=max(0.0, self.weight - weight))


def split(demands: Sequence[tuple[float, int]], pool: int) -> tuple[list[int], Water]:
    """Return each client's guaranteed rate, the weighted max-min fair split of ``pool``,
    and the :class:`Water` it leaves.

    ``demands`` are ``(weight, cap)`` pairs. A client never gets more than its cap;
    what a capped client leaves is split among the others by weight (water filling).
    Rates are whole bytes per second, at least :data:`MIN_CLIENT_RATE`.
    """
    shares: list[float] = [0.0] * len(demands)
    remaining = float(pool)
    # the clients whose cap is smallest relative to their weight are capped first
    order = sorted(range(len(demands)), key=lambda i: demands[i][1] / demands[i][0])
    open_weight = sum(w for w, _cap in demands)
    for pos, i in enumerate(order):
        weight, cap = demands[i]
        level = remaining / open_weight if open_weight > 0 else 0.0
        if cap <= level * weight:
            shares[i] = cap
            remaining -= cap
            open_weight -= weight
            continue
        for j in order[pos:]:
            shares[j] = level * demands[j][0]
        break
    rates = [max(MIN_CLIENT_RATE, bytes_rate(s)) if s else MIN_CLIENT_RATE for s in shares]
    return rates, Water(float(pool), pool - remaining, open_weight)


def fair_shares(demands: Sequence[tuple[float, int]], pool: int) -> list[int]:
    """Return each client's guaranteed rate (:func:`split` without the water)."""
    return split(demands, pool)[0]


def assign_slots(
    current: Mapping[str, int], order: Iterable[str], reserved: Iterable[int] = ()
) -> dict[str, int]:
    """Return the slot changes that give every session in ``order`` a unique slot.

    ``current`` maps session id -> slot (0 = none). A session keeps its slot unless an
    earlier session in ``order`` (oldest first) holds the same one; the others get
    the lowest numbers that are neither taken nor ``reserved`` (slots whose class is
    still in the kernel, so a new session never inherits a class's byte counters).
    When all :data:`~gateway.shaping.model.MAX_SLOT` are taken, the newest sessions get
    none (their traffic stays in the default class) rather than failing the rest.
    """
    taken: set[int] = set()
    blocked = set(reserved)
    needs: list[str] = []
    for sid in order:
        slot = current.get(sid, 0)
        if 1 <= slot <= MAX_SLOT and slot not in taken:
            taken.add(slot)
        else:
            needs.append(sid)
    changes: dict[str, int] = {}
    candidate = 1
    for sid in needs:
        while candidate in taken or candidate in blocked:
            candidate += 1
        if candidate > MAX_SLOT:
            candidate = 0  # none left
        elif candidate:
            taken.add(candidate)
        if candidate or current.get(sid, 0):
            changes[sid] = candidate
    return changes
