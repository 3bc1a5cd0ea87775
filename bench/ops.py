"""What the gateway's upkeep costs: the session-log writer and a /metrics scrape.

Needs no lab (Redis on a private socket, files in a temporary folder):
``.venv/bin/python -m bench.ops``. Prints:

- the writer catching up on 20,000 records (10,000 sessions): records per second, with an
  fsync per batch of 1,000;
- one idle pass (nothing new in the stream): the cost the daemon pays every second;
- a /metrics scrape with 1,000 clients online, and its ratio to one with none.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from prometheus_client import generate_latest

from bench._common import budget, guarded, median_ms, redis_for, start_redis, target
from gateway.daemon.metrics import GatewayMetrics
from gateway.daemon.sessionlog import SessionLog, SessionLogWriter
from gateway.model import keys


def _measure() -> None:
    """Measure the session-log writer and a scrape against a private Redis, and print each number."""
    folder = Path(tempfile.mkdtemp(prefix="hs-bench-ops-"))
    proc, url = start_redis(folder)
    try:
        r = redis_for(url, budget(1.0))  # the longest round trip: 20,000 XADDs in one pipeline
        now = time.time()
        with r.pipeline(transaction=False) as pipe:
            for i in range(10_000):
                for event in ("start", "end"):
                    pipe.xadd(keys.EVENTS, {
                        "event": event, "time": str(now + i), "sid": f"{i:016x}", "kind": "voucher",
                        "plan": "harian", "voucher_id": f"V{i}", "mac": "02:00:00:00:01:01",
                        "ip": "10.42.0.101", "started_at": str(now + i), "bytes_up": "123456",
                        "bytes_down": "9876543", "duration": "3600.0",
                        "reason": "expired" if event == "end" else "",
                    })  # fmt: skip
            pipe.execute()
        writer = SessionLogWriter(r, SessionLog(folder / "log", library="bench"))
        started = time.perf_counter()
        written = writer.pump(time.time(), max_batches=100)
        elapsed = time.perf_counter() - started
        print(f"session log: {written} records in {elapsed:.2f} s = {written / elapsed:,.0f} records/s "
              f"(fsync per batch of {writer.batch})")  # fmt: skip
        idle = median_ms(lambda: (writer.pump(time.time()), writer.lag()), 200)
        print(f"session log: idle pass (pump + lag, nothing new) median {idle:.3f} ms")

        metrics = GatewayMetrics(lambda: r)
        empty = median_ms(lambda: generate_latest(metrics.registry), 50)
        with r.pipeline(transaction=False) as pipe:
            for i in range(1000):
                pipe.hset(
                    keys.session(f"s{i:05d}"),
                    mapping={
                        "plan": "harian",
                        "bytes_down": i * 1000,
                        "bytes_up": i * 100,
                        "state": "online",
                    },
                )
                pipe.sadd(keys.ONLINE, f"s{i:05d}")
            pipe.execute()
        full = median_ms(lambda: generate_latest(metrics.registry), 50)
        print(f"metrics: scrape with 0 clients {empty:.2f} ms, with 1000 clients {full:.2f} ms "
              f"(ratio {full / empty:.1f}x)")  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(budget(0.5))
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Measure and print; return 0, or 2 if the machine could not be measured."""

    def run() -> None:
        with target("bench.ops"):
            _measure()

    return 0 if guarded("bench.ops", run) else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
