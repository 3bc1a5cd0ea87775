"""A bounded HTTP load generator, run INSIDE a lab phone namespace by the benchmarks.

``python bench/_httpload.py --url http://192.0.2.1/generate_204 --host connectivitycheck.gstatic.com
--duration 20 --concurrency 4`` opens a new TCP connection per request (as an OS probe
or a first page load does), sends one GET and reads the whole answer. It stops at
``--duration`` seconds or ``--max-requests``, whichever comes first, and prints one
JSON line: requests, errors, status counts, requests/s and latency percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from urllib.parse import urlsplit

__all__ = ["main"]


async def _one(host_ip: str, port: int, request: bytes, timeout: float) -> tuple[int, float]:
    started = time.perf_counter()
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host_ip, port), timeout)
    try:
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout)  # the server closes: Connection: close
    finally:
        writer.close()
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, (time.perf_counter() - started) * 1000


async def _run(args: argparse.Namespace) -> dict:
    url = urlsplit(args.url)
    host = args.host or url.netloc
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: hotspot-bench\r\n"
        f"Accept: text/html\r\nConnection: close\r\n\r\n"
    ).encode()
    deadline = time.monotonic() + args.duration
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors = 0
    budget = [args.max_requests]

    async def worker() -> None:
        nonlocal errors
        while time.monotonic() < deadline and budget[0] > 0:
            budget[0] -= 1
            try:
                status, ms = await _one(url.hostname, url.port or 80, request, args.timeout)
            except (OSError, TimeoutError, ValueError, IndexError):
                errors += 1
                continue
            latencies.append(ms)
            statuses[str(status)] = statuses.get(str(status), 0) + 1

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    elapsed = time.monotonic() - started
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 2) if latencies else 0.0

    return {
        "requests": len(latencies),
        "errors": errors,
        "statuses": statuses,
        "seconds": round(elapsed, 3),
        "rps": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "mean_ms": round(statistics.fmean(latencies), 2) if latencies else 0.0,
    }


def main(argv: list[str] | None = None) -> None:
    """Run the load and print the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--host", default="", help="Host header (default: the URL's)")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args(argv)
    if not (0 < args.duration <= 120 and 1 <= args.concurrency <= 64):
        parser.error("duration must be 0-120 s and concurrency 1-64 (bounded load)")
    print(json.dumps(asyncio.run(_run(args))), flush=True)


if __name__ == "__main__":
    main()
