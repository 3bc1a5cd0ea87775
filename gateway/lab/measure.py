"""Measure the lab's shaping: iperf3 goodput between phones and the upstream, ping, fairness.

Every tool runs inside a lab namespace (``ip netns exec``), bounded in time: iperf3
with ``-t``/``-O`` and a connect timeout, ping with a count, and every process with
a subprocess timeout. Several iperf3 clients run at once, each against its own
server port on the upstream (the lab runs ``iperf3 -s`` on 5201-5210), so clients
really compete for the line.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.lab.topology import IPERF_PORTS, UPSTREAM_IP

__all__ = ["Flow", "ServerBusy", "download_intervals", "iperf_many", "jain", "percentile", "ping_rtts"]


@dataclass(frozen=True)
class Flow:
    """One iperf3 test: from phone namespace ``ns`` to the upstream on ``port``."""

    ns: str
    port: int
    download: bool  # True: the upstream sends (-R), as when a phone watches a video


def _iperf_argv(flow: Flow, seconds: int, omit: int, server: str) -> list[str]:
    # no -O: iperf3 misplaces bytes across the omit boundary (a high omitted second, then
    # a low first measured one); the first seconds are left out in _goodput instead
    argv = [
        "ip", "netns", "exec", flow.ns, "iperf3", "-c", server, "-p", str(flow.port),
        "-t", str(seconds + omit), "-J", "--connect-timeout", "3000",
    ]  # fmt: skip
    return [*argv, "-R"] if flow.download else [*argv, "--get-server-output"]


# "[  5]   1.00-2.00   sec  82.0 KBytes   672 Kbits/sec" in the server's text log
_INTERVAL = re.compile(
    r"^\[\s*\d+\]\s+([0-9.]+)-([0-9.]+)\s+sec\s+[0-9.]+ \w?Bytes\s+([0-9.]+) ([KMG]?)bits/sec\s*$"
)
_UNIT = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9}


def _receiver_intervals(report: dict, download: bool) -> list[tuple[float, float, float]]:
    """Return the receiver's (start, end, bits/s) intervals of one iperf3 test."""
    if download:  # the phone received: its own report
        return [
            (i["sum"]["start"], i["sum"]["end"], i["sum"]["bits_per_second"]) for i in report["intervals"]
        ]
    found = []  # the upstream received: its log comes back with --get-server-output
    for line in report.get("server_output_text", "").splitlines():
        m = _INTERVAL.match(line)
        if m:
            start, end, rate, unit = m.groups()
            found.append((float(start), float(end), float(rate) * _UNIT[unit]))
    return found


def _goodput(report: dict, download: bool, seconds: int, omit: int) -> float:
    """Return the receiver's TCP goodput (bits/s) from second ``omit`` to ``omit + seconds``.

    Only the receiver's view counts (the sender's socket buffer makes its own numbers
    bursty); the first ``omit`` seconds are TCP's slow start, and what arrives after the
    sender stopped is its buffer draining.
    """
    if "error" in report:
        raise RuntimeError(f"iperf3: {report['error']}")
    kept = [
        (end - start, rate)
        for start, end, rate in _receiver_intervals(report, download)
        if start >= omit - 0.05 and end <= omit + seconds + 0.05
    ]
    elapsed = sum(length for length, _rate in kept)
    if elapsed < seconds / 2:
        raise RuntimeError(f"iperf3 measured only {elapsed:.1f}s of {seconds}s")
    return sum(length * rate for length, rate in kept) / elapsed


class ServerBusy(RuntimeError):
    """An iperf3 server was still finishing a test (it serves one at a time)."""


def _reports(argvs: Sequence[list[str]], timeout: float) -> list[dict]:
    """Run iperf3 commands at the same time; return their JSON reports, in order."""
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    procs = [subprocess.Popen(argv, **pipes) for argv in argvs]
    reports = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            try:
                report = json.loads(out)
            except ValueError as exc:
                raise RuntimeError(f"iperf3 gave no result: {err.strip() or out[:200]}") from exc
            if "busy" in report.get("error", ""):
                raise ServerBusy(report["error"])
            reports.append(report)
    finally:
        for proc in procs:  # the ones not read yet when another failed
            if proc.poll() is None:
                proc.kill()
            proc.communicate()  # reaps it and closes its pipes
    return reports


def _run(argvs: Sequence[list[str]], timeout: float, attempts: int = 10) -> list[dict]:
    for attempt in range(attempts):
        try:
            return _reports(argvs, timeout)
        except ServerBusy:
            if attempt == attempts - 1:
                raise
            time.sleep(1.0)  # the server is still closing the previous test
    raise AssertionError("unreachable")


def iperf_many(
    flows: Sequence[Flow], seconds: int = 8, omit: int = 2, server: str = UPSTREAM_IP
) -> list[float]:
    """Run ``flows`` at the same time; return each one's goodput (bits/s), in order.

    ``omit`` seconds of TCP slow start are left out of the result. ``server`` is the
    upstream address to test against (the walled-garden one is another). A server still
    busy with the previous test is waited for (a few times, a second each).
    """
    ports = [f.port for f in flows]
    if len(set(ports)) != len(ports) or not set(ports) <= set(IPERF_PORTS):
        raise ValueError(f"each flow needs its own server port in {IPERF_PORTS[0]}..{IPERF_PORTS[-1]}")
    reports = _run([_iperf_argv(f, seconds, omit, server) for f in flows], seconds + omit + 20)
    return [_goodput(r, f.download, seconds, omit) for r, f in zip(reports, flows, strict=True)]


def download_intervals(flow: Flow, seconds: int, server: str = UPSTREAM_IP) -> list[float]:
    """Return the per-second rates (bits/s) a phone received during one download."""
    [report] = _run([_iperf_argv(flow, seconds, 0, server)], seconds + 20)
    if "error" in report:
        raise RuntimeError(f"iperf3: {report['error']}")
    return [i["sum"]["bits_per_second"] for i in report["intervals"]]


_RTT = re.compile(r"time=([0-9.]+) ms")


def ping_rtts(ns: str, count: int = 20, interval: float = 0.2, target: str = UPSTREAM_IP) -> list[float]:
    """Return the round-trip times (ms) of ``count`` pings from ``ns`` (lost ones left out)."""
    result = subprocess.run(
        ["ip", "netns", "exec", ns, "busybox", "ping", "-c", str(count), "-W", "2", "-i", str(interval),
         target],
        capture_output=True, text=True, timeout=count * interval + 15,
    )  # fmt: skip
    return [float(m) for m in _RTT.findall(result.stdout)]


def jain(values: Sequence[float]) -> float:
    """Return Jain's fairness index: 1.0 when all are equal, 1/n when one takes all."""
    if not values or not any(values):
        return 0.0
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values))


def percentile(values: Sequence[float], pct: float) -> float:
    """Return the ``pct`` percentile of ``values`` (nearest rank)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]
