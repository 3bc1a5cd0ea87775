"""Helpers the benchmarks share: a private redis-server and a median timer."""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["median_ms", "start_redis"]


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    """Start a throwaway redis-server on a unix socket in ``folder``; return it and its URL."""
    sock = folder / "redis.sock"
    proc = subprocess.Popen(
        ["redis-server", "--port", "0", "--unixsocket", str(sock), "--dir", str(folder), "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while not sock.exists() and time.monotonic() < deadline:
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
