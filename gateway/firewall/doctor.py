"""``doctor``: how the kernel differs from what Redis says should be enforced (pure).

Used by the gateway's ``doctor`` command and by ``hotspotctl doctor`` itself when the
gateway is down (it then reads the kernel through ``network.netns``). The report is
plain data, ready for JSON.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.firewall.plan import Element, KernelView, Want, diff_elements, plan_elements
from gateway.model.record import Session
from gateway.neighbours import NeighbourTable

__all__ = ["diagnose"]


def _row(element: Element, sid: str) -> dict:
    return {"set": element.set, "element": element.text(), "sid": sid}


def diagnose(
    sessions: Sequence[Session],
    view: KernelView,
    expected: str,
    now: float,
    neighbours: NeighbourTable | None = None,
    guard: bool | None = None,
) -> dict:
    """Return the differences between online ``sessions`` and the kernel ``view``.

    ``expected`` is the fingerprint of the table as the gateway loaded it ("" = unknown).
    ``guard`` says whether the fail-closed routing rules are in place (None = not read).
    ``ok`` is true when the table is the gateway's, every element is as planned and the
    guard is not known to be missing.
    """
    live = [s for s in sessions if s.expires_at > now]
    wanted, invalid = plan_elements(live, now, neighbours.ip6_by_mac if neighbours else None)
    present = view.accounted()
    diff = diff_elements(wanted, present)
    if not view.exists:
        table = "missing"
    elif not expected:
        table = "unknown"
    else:
        table = "ok" if view.fingerprint == expected else "changed"

    def rows(items: list[tuple[Element, Want]]) -> list[dict]:
        return [_row(e, w.sid) for e, w in items]

    report = {
        "table": table,
        "online": len(live),
        "time_up_not_ended": len(sessions) - len(live),
        "elements": len(present),
        "missing": rows(diff.add),
        "wrong_session": rows(diff.replace),
        "timeout_off": rows(diff.refresh),
        "extra": [_row(e, present[e].comment) for e in diff.remove],
        "invalid_sessions": invalid,
        "guard": {None: "unknown", True: "ok", False: "missing"}[guard],
    }
    report["ok"] = (
        table in ("ok", "unknown") and not (diff.add or diff.replace or diff.remove) and guard is not False
    )
    return report
