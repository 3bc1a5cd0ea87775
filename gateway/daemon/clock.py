"""The gateway's watch on the wall clock: a clock behind at start, and jumps (NTP after a power cut).

:meth:`ClockWatch.check` runs before every reconcile pass. It compares how far the wall
clock moved with how far the monotonic clock did; when they differ by more than
:data:`gateway.model.clock.JUMP` the wall clock jumped, and the times written under the
old clock are moved with it (:func:`gateway.model.clock.shift_times`). At start, a clock
earlier than the build or the last session record is certainly behind (a router without a
clock battery after a power cut): the sessions that were online before are moved back
onto it, so they neither last until the clock catches up nor lose the time the router
was off; when NTP then jumps the clock forward, everything written meanwhile moves with
it. :meth:`ClockWatch.state` goes into the heartbeat for ``hotspotctl status``.
"""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime

import redis

from gateway.logs import get_logger
from gateway.model.clock import JUMP, floor, shift_times
from gateway.model.sessions import online_sessions

__all__ = ["ClockWatch", "kernel_synchronised"]

log = get_logger("gateway")

RECENT = 3600.0  # seconds a jump stays in the heartbeat (status mentions it)
_TIME_ERROR = 5  # adjtimex(2): the clock is not synchronised
_STA_UNSYNC = 0x40


class _Timex(ctypes.Structure):
    # struct timex (adjtimex(2)); only status is read, the tail is padding
    _fields_ = [("modes", ctypes.c_uint), ("_longs", ctypes.c_long * 4), ("status", ctypes.c_int),
                ("_rest", ctypes.c_long * 32)]  # fmt: skip


def kernel_synchronised() -> bool | None:
    """Return whether the kernel says an NTP client keeps the clock synchronised (None: cannot tell).

    ``HOTSPOT_CLOCK_SYNCHRONISED=0`` or ``1`` in the environment answers instead: in a container
    the kernel's answer is the host's, and a process run under libfaketime (the lab's clock
    tests) has a clock the kernel knows nothing about.
    """
    override = os.environ.get("HOTSPOT_CLOCK_SYNCHRONISED", "")
    if override in ("0", "1"):
        return override == "1"
    try:
        timex = _Timex()
        state = ctypes.CDLL(None, use_errno=True).adjtimex(ctypes.byref(timex))  # modes 0: read only
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != _TIME_ERROR and not timex.status & _STA_UNSYNC


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


class ClockWatch:
    """Finds a clock behind at start and jumps while running; moves sessions and vouchers with it."""

    def __init__(
        self,
        r: redis.Redis,
        *,
        slack: float,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        synchronised: Callable[[], bool | None] = lambda: kernel_synchronised(),
    ):
        self.redis = r
        self.slack = slack  # a session started this close to a jump may be under the new clock
        self.wall, self.mono, self.synchronised = wall, mono, synchronised
        self.ref: tuple[float, float] | None = None  # (wall, monotonic) at the last look
        self.since = wall()  # when (this clock) the gateway started trusting it
        self.problem: str | None = None
        self.jumped: tuple[float, float] | None = None  # (seconds, at) of the last jump
        self.records_untrusted = False  # records were written while the clock was ahead

    def check(self) -> float | None:
        """Look at the clock (before a pass); return the jump handled, if any."""
        wall, mono = self.wall(), self.mono()
        jump = None
        if self.ref is None:
            self._check_at_start(wall)  # raises (Redis down): tried again at the next pass
            self.ref = (wall, mono)
        else:
            moved = (wall - self.ref[0]) - (mono - self.ref[1])
            self.ref = (wall, mono)  # first: Redis failing half-way must not move anything twice
            if abs(moved) > JUMP:
                jump = moved
                self._follow(moved, wall)
        self._update_problem(wall)
        return jump

    def _floor(self) -> tuple[float, str]:
        """Return the earliest plausible time and what sets it. Records later than a clock that
        NTP keeps synchronised were written while it was ahead: then only the build counts."""
        return floor(self.redis, records=not (self.records_untrusted or self.synchronised()))

    def _check_at_start(self, wall: float) -> None:
        earliest, what = self._floor()
        if wall >= earliest - JUMP or self.synchronised():
            return  # plausible, or NTP vouches for it (then the status still warns if it is wrong)
        behind = wall - earliest  # negative: at least this far behind
        # only sessions from the future are from before: a restart must not move the others again
        before = [s for s in online_sessions(self.redis) if s.started_at > wall + self.slack]
        moved = shift_times(self.redis, before, behind, now=wall, issued_since=None, slack=self.slack)
        log.warning(
            "clock_behind", now=_iso(wall), earliest=_iso(earliest), because=what, moved=moved,
            hint="no NTP yet? the sessions online before were moved onto this clock, and move again with it",
        )  # fmt: skip

    def _follow(self, jump: float, wall: float) -> None:
        moved = shift_times(
            self.redis, online_sessions(self.redis), jump, now=wall, issued_since=self.since, slack=self.slack
        )
        log.warning(
            "clock_jumped", seconds=round(jump, 1), now=_iso(wall), old=_iso(wall - jump), moved=moved
        )
        self.jumped = (jump, wall)
        self.since = wall
        if jump < 0:
            self.records_untrusted = True  # the records written before carry times from ahead

    def _update_problem(self, wall: float) -> None:
        earliest, what = self._floor()
        if wall < earliest - JUMP:
            self._set_problem(
                f"the clock ({_iso(wall)}) is earlier than {what} ({_iso(earliest)}): not set yet "
                "(no NTP after a power cut?); times are kept consistent and move when it is set"
            )
        else:
            self._set_problem(None)

    def _set_problem(self, problem: str | None) -> None:
        if problem is None and self.problem is not None:
            log.info("clock_plausible_again")
        self.problem = problem

    def state(self) -> dict:
        """Return the clock's state for the heartbeat."""
        now = self.wall()
        clock: dict = {"ok": self.problem is None, "synchronised": self.synchronised()}
        if self.problem:
            clock["problem"] = self.problem
        if self.jumped and now - self.jumped[1] < RECENT:
            clock.update(jumped=round(self.jumped[0], 1), jumped_at=self.jumped[1])
        return clock
