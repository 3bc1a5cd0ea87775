"""Cost of the shaper with 1000 clients: setup time, one change, forwarding throughput.

Builds three bare namespaces (``<prefix>kc`` phone, ``<prefix>kr`` router, ``<prefix>ku``
upstream) joined by veth pairs, with a /16 LAN so 1000 clients fit (four to a hash
bucket, the real phone last in its bucket), and measures, side by side in one run:

- the time of the applier's first pass for 1000 clients (classes, leaves and u32
  hash-table filters in both directions), and of a pass that changes one client;
- the kernel call for that one change alone;
- TCP download throughput to the phone with 1000 classes vs with only its own,
  alternating rounds (caps of 30 Gbit/s, far above the ~20 Gbit/s veth carries here, so
  the cost per packet shows and not the cap).

Run: ``sudo .venv/bin/python -m bench.shaping_cost [--prefix hs-sb-] [--rounds 5]``. Waits are
sized from the work (:mod:`bench._common`); what cannot be measured is said in one line.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench._common import budget, guarded, redis_for, start_redis, target
from gateway import config as config_mod
from gateway.lab.topology import lab_config_text
from gateway.model.sessions import get_session, new_session, online_sessions, start_session
from gateway.shaping.apply import TcApplier
from gateway.shaping.model import TcChange
from gateway.shaping.plan import ShapingSettings, plan_tc
from gateway.shaping.shaper import Shaper

MBIT = 1_000_000
PHONE_IP = "10.43.3.233"  # bucket 233 holds three synthetic clients before it
PHONE_SLOT = 1000
UNLIMITED = 30_000 * MBIT  # HTB rates are 32-bit bytes/s here (< 34 Gbit/s); far above what veth carries


@dataclass(frozen=True)
class Client:
    slot: int
    ip: str
    down: int
    up: int
    weight: float = 1.0

    @property
    def mac(self) -> str:
        return f"02:00:00:00:{self.slot >> 8:02x}:{self.slot & 0xFF:02x}"


def _run(*argv: str, check: bool = True, timeout: float = budget(0.5)) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=timeout)


def build(prefix: str) -> tuple[str, str, str]:
    """Create phone, router and upstream namespaces; return their names."""
    phone, router, upstream = f"{prefix}kc", f"{prefix}kr", f"{prefix}ku"
    teardown(prefix)
    for ns in (phone, router, upstream):
        _run("ip", "netns", "add", ns)
        _run("ip", "-n", ns, "link", "set", "lo", "up")
    for dev, peer_ns in (("lan0", phone), ("wan0", upstream)):
        _run("ip", "link", "add", dev, "netns", router, "type", "veth", "peer", "name", "eth0",
             "netns", peer_ns)  # fmt: skip
    for ns, dev, cidr in (
        (router, "lan0", "10.43.0.1/16"),
        (router, "wan0", "192.0.2.2/24"),
        (phone, "eth0", f"{PHONE_IP}/16"),
        (upstream, "eth0", "192.0.2.1/24"),
    ):
        _run("ip", "-n", ns, "addr", "add", cidr, "dev", dev)
        _run("ip", "-n", ns, "link", "set", dev, "up")
    _run("ip", "-n", phone, "route", "add", "default", "via", "10.43.0.1")
    _run("ip", "-n", upstream, "route", "add", "10.43.0.0/16", "via", "192.0.2.2")
    _run("ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    return phone, router, upstream


def teardown(prefix: str) -> None:
    for name in ("kc", "kr", "ku"):
        _run("ip", "netns", "del", f"{prefix}{name}", check=False)


def clients(count: int) -> list[Client]:
    """Return ``count`` clients: synthetic ones across the /16, the phone last."""
    net = ipaddress.IPv4Network("10.43.0.0/16")
    synthetic = [
        Client(slot, str(net.network_address + 1 + slot), UNLIMITED, UNLIMITED) for slot in range(1, count)
    ]
    return [*synthetic, Client(PHONE_SLOT, PHONE_IP, UNLIMITED, UNLIMITED)]


def settings(uplink: int) -> ShapingSettings:
    return ShapingSettings(
        lan_interface="lan0",
        ifb_interface="ifb-lan0",
        router_ip=ipaddress.IPv4Address("10.43.0.1"),
        lan_network=ipaddress.IPv4Network("10.43.0.0/16"),
        uplink_down=uplink,
        uplink_up=uplink,
        headroom=1.0,
    )


def throughput(phone: str, seconds: int) -> float:
    """Return one TCP download's throughput (bits/s), upstream -> phone through the router."""
    out = _run(
        "ip", "netns", "exec", phone, "iperf3", "-c", "192.0.2.1", "-p", "5299", "-R", "-t", str(seconds),
        "-J", "--connect-timeout", "3000", timeout=seconds + budget(2.0),
    ).stdout  # fmt: skip
    return float(json.loads(out)["end"]["sum_received"]["bits_per_second"])


def _config(router: str, redis_url: str, folder: Path):
    """The lab's config, for the bench's router (a /16 LAN) and a private Redis."""
    text = lab_config_text(folder)
    text = text.replace('netns = "hs-gw"', f'netns = "{router}"').replace("10.42.0.1/24", "10.43.0.1/16")
    text = text.replace('range_start = "10.42.0.100"', 'range_start = "10.43.0.100"')
    text = text.replace('range_end = "10.42.0.199"', 'range_end = "10.43.250.199"')
    text = text.replace('admin_networks = ["10.42.0.0/28"]', "admin_networks = []")
    text = text.replace('ip = "10.42.0.10"', 'ip = "10.43.0.10"')  # the desk PC's reservation
    text = text.replace(f'url = "unix://{folder}/redis.sock"', f'url = "{redis_url}"')
    return config_mod.loads(text, folder / "hotspot.toml")


def login_cost(router: str, count: int, logins: int = 30) -> dict:
    """Return the median time of the shaper's login fast path with 1 and ``count`` online."""
    folder = Path(tempfile.mkdtemp(prefix="hs-bench-"))
    redis_proc, url = start_redis(folder)
    try:
        r = redis_for(url, budget(count * 0.001))  # a pass writes a slot per session
        shaper = Shaper(_config(router, url, folder), r)
        out = {}
        try:
            for online in (1, count):
                r.flushall()
                now = time.time()
                caps = {"kind": "admin", "plan": "", "now": now, "expires_at": now + 3600, "down": 4 * MBIT,
                        "up": 2 * MBIT}  # fmt: skip
                for c in clients(online):
                    start_session(r, new_session(mac=c.mac, ip=c.ip, **caps), now)
                shaper.reconcile(online_sessions(r), now)
                times = []
                for n in range(logins):
                    s = new_session(mac=f"02:00:00:01:00:{n:02x}", ip=f"10.43.250.{n + 1}", **caps)
                    start_session(r, s, now)
                    started = time.perf_counter()
                    shaper.login(s, now)
                    shaper.settle()  # the split the daemon sends right after the reply: the whole login
                    times.append(time.perf_counter() - started)
                    shaper.logout(get_session(r, s.sid), now)
                out[f"login_ms_with_{online}"] = statistics.median(times) * 1000
        finally:
            shaper.close()
        return out
    finally:
        redis_proc.terminate()
        redis_proc.wait(budget(0.5))
        shutil.rmtree(folder, ignore_errors=True)


def measure(prefix: str, count: int, rounds: int, seconds: int) -> dict:
    phone, router, upstream = build(prefix)
    server = subprocess.Popen(
        ["ip", "netns", "exec", upstream, "iperf3", "-s", "-p", "5299"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    results: dict = {"clients": count}
    try:
        time.sleep(0.5)
        with TcApplier(router, "lan0", "ifb-lan0") as applier:
            many = clients(count)
            fast = settings(UNLIMITED)
            started = time.perf_counter()
            first = applier.apply(plan_tc(fast, many))
            results["setup_s"] = time.perf_counter() - started
            results["setup_objects"] = first.added
            started = time.perf_counter()
            assert applier.apply(plan_tc(fast, many)).unchanged
            results["noop_pass_s"] = time.perf_counter() - started

            changed = [*many[:-1], Client(PHONE_SLOT, PHONE_IP, 5 * MBIT, 5 * MBIT)]
            started = time.perf_counter()
            result = applier.apply(plan_tc(fast, changed))
            results["change_pass_s"] = time.perf_counter() - started
            results["change_pass_changes"] = result.changed
            tree = plan_tc(fast, many).down
            phone_class = next(c for c in tree.classes if c.handle == 0x10000 | (0x10 + PHONE_SLOT))
            change = [TcChange("change", "lan0", phone_class)]
            calls = []
            for _ in range(50):  # as the fast paths send: queue the book's changes, one batch
                started = time.perf_counter()
                applier.queue(change)
                applier.commit()
                calls.append(time.perf_counter() - started)
            results["change_call_ms_median"] = statistics.median(calls) * 1000
            results["change_call_ms_max"] = max(calls) * 1000

            results.update(login_cost(router, count))
            many_plan, one_plan = plan_tc(fast, many), plan_tc(fast, many[-1:])
            with_many, with_one = [], []
            for _ in range(rounds):
                applier.apply(many_plan)
                with_many.append(throughput(phone, seconds))
                applier.apply(one_plan)
                with_one.append(throughput(phone, seconds))
            results["tcp_1000_gbit"] = [round(x / 1e9, 2) for x in with_many]
            results["tcp_1_gbit"] = [round(x / 1e9, 2) for x in with_one]
            results["tcp_ratio_median"] = statistics.median(
                m / o for m, o in zip(with_many, with_one, strict=True)
            )
    finally:
        server.terminate()
        server.wait(budget(0.5))
        teardown(prefix)
    return results


def main(argv: list[str] | None = None) -> int:
    """Measure and print; return 0, or 2 if the machine could not be measured."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="hs-sb-")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args(argv)
    found: dict = {}

    def run() -> None:
        with target(f"the shaper with {args.clients} clients"):
            found.update(measure(args.prefix, args.clients, args.rounds, args.seconds))

    if not guarded("bench.shaping_cost", run):
        return 2
    results = found
    print(json.dumps(results, indent=2))
    print(
        f"setup {results['clients']} clients: {results['setup_s']:.2f} s (target < 2 s); "
        f"one change: call {results['change_call_ms_median']:.2f} ms median (target < 5 ms), "
        f"whole pass {results['change_pass_s'] * 1000:.0f} ms (a pass with nothing to do "
        f"{results['noop_pass_s'] * 1000:.0f} ms); login fast path "
        f"{results['login_ms_with_1']:.2f} ms with 1 online, "
        f"{results[f'login_ms_with_{args.clients}']:.2f} ms with {args.clients}; "
        f"TCP with 1000 classes / with 1: {results['tcp_ratio_median']:.3f} (target >= 0.95)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
