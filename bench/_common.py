"""Helpers the benchmarks share: a private redis-server, a median timer, and waits sized from the work.

The machine the benchmarks run on is shared: a pass that takes 1.5 s on a quiet machine
can take ten times that while others' test suites run. So no bench waits a fixed few
seconds for work that grows with its size: :func:`budget` turns what the work costs on a
quiet machine into how long to wait for it, and Redis clients get a socket timeout
longer than the longest wait (:func:`redis_for`). When a target still cannot be
measured, the bench raises :class:`Unmeasurable` naming it, and :func:`guarded` prints one
clear line (with the load average) instead of a traceback and carries on with the next.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from gateway.lab.netns import LabError
from gateway.model import commands
from gateway.model.store import connect

__all__ = [
    "SLOW_MACHINE",
    "Unmeasurable",
    "ask",
    "budget",
    "guarded",
    "median_ms",
    "redis_for",
    "start_redis",
    "target",
    "wait_until",
]

# How much slower than a quiet run the shared machine may be before a bench gives up on a
# target (seen: a 10,000-session pass 1.5 s quiet, over 5 s with eight suites beside it).
SLOW_MACHINE = 30
MIN_WAIT = 30.0  # seconds: never wait less than this for anything that involves the gateway


class Unmeasurable(Exception):
    """A target this run could not measure (the machine too slow, a part not answering)."""


def budget(quiet_seconds: float, floor: float = MIN_WAIT) -> float:
    """Return how long to wait for work that takes ``quiet_seconds`` on a quiet machine."""
    return max(floor, quiet_seconds * SLOW_MACHINE)


def redis_for(config_or_url, longest_wait: float) -> redis.Redis:
    """Return a Redis client whose socket timeout outlasts ``longest_wait`` (a BLPOP, a big pipeline).

    The library's default (5 s) is for the daemons; a bench that waits 60 s for a reply
    needs a client that does not give up first.
    """
    return connect(config_or_url, timeout=longest_wait + 10)


def ask(r: redis.Redis, op: str, timeout: float, what: str, **fields) -> dict:
    """Send ``op`` to the gateway and return its reply; raise :class:`Unmeasurable` on none or a failure."""
    reply = commands.request(r, op, timeout, **fields)
    if reply is None:
        raise Unmeasurable(f"{what}: the gateway did not answer {op!r} within {timeout:.3g} s")
    if not reply.get("ok", False):
        raise Unmeasurable(f"{what}: the gateway answered {op!r} with {reply}")
    return reply


def wait_until(check: Callable[[], object], timeout: float, what: str, every: float = 0.005):
    """Return ``check()``'s first truthy value; raise :class:`Unmeasurable` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise Unmeasurable(f"{what}: not done within {timeout:.3g} s")
        time.sleep(every)


@contextmanager
def target(what: str) -> Iterator[None]:
    """Turn a timeout or a missing answer while measuring ``what`` into :class:`Unmeasurable`."""
    try:
        yield
    except Unmeasurable:
        raise
    except LabError as err:
        raise Unmeasurable(f"{what}: {err}") from err
    except (redis.TimeoutError, redis.ConnectionError) as err:
        raise Unmeasurable(f"{what}: Redis did not answer in time ({err})") from err
    except subprocess.TimeoutExpired as err:
        raise Unmeasurable(f"{what}: {' '.join(map(str, err.cmd))} took over {err.timeout:.0f} s") from err
    except TimeoutError as err:  # socket.timeout too
        raise Unmeasurable(f"{what}: timed out ({err or 'no answer'})") from err


def guarded(bench: str, measure: Callable[[], object]) -> bool:
    """Run ``measure``; if a target cannot be measured, say so in one line and return False."""
    try:
        measure()
    except Unmeasurable as err:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(
            f"{bench}: NOT MEASURED: {err} (load average {load}; the machine is too busy or a part "
            "is not answering: rerun on a quieter machine)",
            file=sys.stderr,
            flush=True,
        )
        return False
    return True


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    """Start a throwaway redis-server on a unix socket in ``folder``; return it and its URL."""
    sock = folder / "redis.sock"
    proc = subprocess.Popen(
        ["redis-server", "--port", "0", "--unixsocket", str(sock), "--dir", str(folder), "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + budget(0.5)
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise Unmeasurable(f"redis-server did not open {sock} (exit code {proc.returncode})")
        time.sleep(0.02)
    return proc, f"unix://{sock}"


def median_ms(fn: Callable[[], object], runs: int = 1) -> float:
    """Return the median wall time of ``runs`` calls of ``fn``, in milliseconds."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)
