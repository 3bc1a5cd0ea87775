"""Gateway benchmarks in the lab: login latency, forwarding with 10,000 entries, restore time.

``sudo .venv/bin/python -m bench.gateway [--prefix hs-b-] [--logins 200] [--crowd 1000]
[--entries 10000]`` (smaller ``--crowd``/``--entries`` for a quick check)

Builds its own lab (removed afterwards) and prints, each measured side by side in one run:

1. login -> first forwarded packet: a phone sends a UDP datagram every 0.5 ms to the
   upstream; the clock starts when the "portal" writes the session to Redis and sends
   ``authorize``, and stops when the first datagram reaches the upstream (p50/p95/max);
2. the cost of the 1000th login vs the 1st (ack round trip and first packet, with 0 and
   with 1000 other clients authorized);
3. TCP throughput through the router with 10,000 authorized entries vs only the phone's,
   interleaved rounds A-B-B-A (iperf3, 4 s each);
4. time to restore 1000 sessions: kill -9 of the gateway, then the table deleted as by a
   reboot, until the kernel enforces all of them again;
5. how long a hand-flushed table stays open (the daemon's table watch heals it).

Every wait is sized from its work (:func:`bench._common.budget`: a pass over 10,000
sessions may take many seconds on a busy machine); a target that still cannot be
measured is reported in one line (``NOT MEASURED: ...``) and the other half runs on.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import sys
import threading
import time

from bench._common import Unmeasurable, ask, budget, guarded, redis_for, target, wait_until
from gateway.firewall.nft import Nft
from gateway.firewall.ruleset import TABLE
from gateway.lab.lab import Lab
from gateway.lab.topology import UPSTREAM_IP, LabSpec
from gateway.model import keys
from gateway.model.sessions import end_session, new_session, online_sessions, queue_start, start_session
from gateway.nsenter import in_netns

PORT = 9990
PASS_PER_SESSION = 0.00015  # s of a reconcile pass per online session, quiet machine (1.5 s for 10,000)
FIRST_PACKET = budget(0.1)  # the phone sends every 0.5 ms: a datagram comes at once when it is let through


def pass_wait(sessions: int) -> float:
    """Return how long to wait for the gateway's answer with ``sessions`` online (it may be mid-pass)."""
    return budget(sessions * PASS_PER_SESSION)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


class FirstPacket:
    """A phone sending every 0.5 ms and an upstream socket noting when datagrams arrive."""

    def __init__(self, lab: Lab, index: int):
        with in_netns(lab.spec.client(index)):
            self.tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with in_netns(lab.spec.up):
            self.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.rx.bind(("0.0.0.0", PORT))  # noqa: S104 (inside the lab's upstream namespace)
        self.rx.settimeout(FIRST_PACKET)
        self.running = True
        self.thread = threading.Thread(target=self._send, daemon=True)
        self.thread.start()

    def _send(self) -> None:
        while self.running:
            try:
                self.tx.sendto(b"x", (UPSTREAM_IP, PORT))
            except OSError:
                pass
            time.sleep(0.0005)

    def drain(self) -> None:
        self.rx.setblocking(False)
        try:
            while True:
                self.rx.recv(64)
        except BlockingIOError:
            pass
        finally:
            self.rx.settimeout(FIRST_PACKET)

    def first_after(self) -> float:
        """Return time.monotonic() when the next datagram arrives."""
        try:
            self.rx.recv(64)
        except TimeoutError as err:
            raise Unmeasurable(f"no datagram reached the upstream within {FIRST_PACKET:.0f} s") from err
        return time.monotonic()

    def close(self) -> None:
        self.running = False
        self.thread.join(1)
        self.tx.close()
        self.rx.close()


def login_once(r, lab: Lab, fp: FirstPacket, ip: str, online: int = 0) -> tuple[float, float]:
    """Log phone 1 in (``online`` others are); return ms until the ack and until the first datagram."""
    time.sleep(0.01)
    fp.drain()
    now = time.time()
    t0 = time.monotonic()
    session = new_session(mac=lab.client_mac(1), ip=ip, kind="admin", plan="", now=now,
                          expires_at=now + 3600, down=1, up=1)  # fmt: skip
    start_session(r, session, now)
    ask(r, "authorize", pass_wait(online), "a login", sid=session.sid)
    t_ack = time.monotonic()
    t_first = fp.first_after()
    ask(r, "deauthorize", pass_wait(online), "a logout", sid=session.sid, reason="kicked")
    return (t_ack - t0) * 1000, (max(t_first, t0) - t0) * 1000


def fake_sessions(r, count: int, start: int = 0) -> list[str]:
    """Put ``count`` online sessions of made-up devices in Redis (no command); return their sids."""
    now = time.time()
    sids = []
    with r.pipeline(transaction=False) as pipe:
        for n in range(start, start + count):
            s = new_session(
                mac=f"02:10:{n >> 16 & 255:02x}:{n >> 8 & 255:02x}:{n & 255:02x}:01",
                ip=f"172.16.{n >> 8 & 255}.{n & 255}", kind="admin", plan="", now=now,
                expires_at=now + 7200, down=1, up=1,
            )  # fmt: skip
            queue_start(pipe, s)
            sids.append(s.sid)
        pipe.execute()
    return sids


def authorize_each(r, sids: list[str]) -> list[float]:
    out = []
    for n, sid in enumerate(sids):
        t0 = time.monotonic()
        ask(r, "authorize", pass_wait(n), f"authorize {n + 1} of {len(sids)}", sid=sid)
        out.append((time.monotonic() - t0) * 1000)
    return out


def clear(r) -> None:
    online = online_sessions(r)
    for s in online:
        end_session(r, s.sid, "kicked", time.time())
    ask(r, "reconcile", pass_wait(len(online)), "ending every session")


def iperf(lab: Lab, seconds: int = 4) -> float:
    out = lab.exec(lab.spec.client(1), "iperf3", "-c", UPSTREAM_IP, "-p", "5201", "-t", str(seconds), "-J",
                   timeout=seconds + budget(2.0), check=True)  # fmt: skip
    return json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9


def elements(nft: Nft, name: str = "auth4") -> int:
    listing = nft.list_json(f"set {TABLE} {name}") or {}
    for item in listing.get("nftables", []):
        if "set" in item:
            return len(item["set"].get("elem", []))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Build the lab, measure, tear it down; return 0, or 2 if a target could not be measured."""
    parser = argparse.ArgumentParser(description="gateway benchmarks")
    parser.add_argument("--prefix", default="hs-b-")
    parser.add_argument("--logins", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--crowd", type=int, default=1000, help="others online in [2] and restored in [4]")
    parser.add_argument("--entries", type=int, default=10_000, help="authorized entries in [3]")
    parser.add_argument("--only", choices=["logins", "forwarding"], help="run one half only")
    args = parser.parse_args(argv)
    # forwarding is measured here, not shaping: a line the shaper never limits
    lab = Lab(LabSpec(prefix=args.prefix, clients=2, uplink="100gbit"))
    lab.down(wipe=True)
    try:
        ok = guarded("bench.gateway", lambda: _up(lab)) and run(lab, args)
    finally:
        lab.down(wipe=True)
    return 0 if ok else 2


def _up(lab: Lab) -> None:
    with target("building the lab"):
        lab.up()


def run(lab: Lab, args: argparse.Namespace) -> bool:
    """Measure both halves (or ``--only`` one) on a lab that is up; return whether all were measured."""
    # the longest wait: a pass over everything the bench puts online
    r = redis_for(lab.config(), pass_wait(args.entries + 2 * args.crowd))
    ip = lab.client_ip(lab.spec.client(1))
    print(f"load average before: {os.getloadavg()}", flush=True)
    ok = True
    if args.only != "forwarding":
        ok &= guarded("bench.gateway [1, 2, 4, 5]", lambda: logins(lab, r, ip, args))
    if args.only != "logins":
        ok &= guarded("bench.gateway [3]", lambda: forwarding(lab, r, ip, args))
    print(f"load average after: {os.getloadavg()}", flush=True)
    return ok


def logins(lab: Lab, r, ip: str, args: argparse.Namespace) -> None:
    with target("logins"):
        _logins(lab, r, ip, args)


def _logins(lab: Lab, r, ip: str, args: argparse.Namespace) -> None:
    crowd = args.crowd
    fp = FirstPacket(lab, 1)
    try:
        # 1. login -> first forwarded packet
        for _ in range(5):
            login_once(r, lab, fp, ip)  # warm up
        acks, firsts = zip(*(login_once(r, lab, fp, ip) for _ in range(args.logins)), strict=True)
        print(
            f"[1] login -> first forwarded packet, {args.logins} logins: p50 {pct(firsts, 50):.2f} ms, "
            f"p95 {pct(firsts, 95):.2f} ms, max {max(firsts):.2f} ms "
            f"(ack alone: p50 {pct(acks, 50):.2f} ms, p95 {pct(acks, 95):.2f} ms)",
            flush=True,
        )

        # 2. the 1000th login vs the 1st
        sids = fake_sessions(r, crowd)
        costs = authorize_each(r, sids)
        first10, last10 = statistics.median(costs[:10]), statistics.median(costs[-10:])
        ask(r, "reconcile", pass_wait(crowd), f"a pass with {crowd} online")
        with_1000 = [login_once(r, lab, fp, ip, crowd) for _ in range(100)]
        ack_1000 = statistics.median(a for a, _ in with_1000)
        p50_1000 = statistics.median(f for _, f in with_1000)
        base = pct(firsts, 50)
        print(
            f"[2] authorize ack alone: logins 1-10 median {first10:.2f} ms, logins {crowd - 9}-{crowd} "
            f"median {last10:.2f} ms -> ratio {last10 / first10:.2f}; full login (session write + ack) "
            f"with {crowd} online p50 {ack_1000:.2f} ms vs {pct(acks, 50):.2f} ms with none -> ratio "
            f"{ack_1000 / pct(acks, 50):.2f}; first packet p50 {p50_1000:.2f} ms vs {base:.2f} ms -> ratio "
            f"{p50_1000 / base:.2f}",
            flush=True,
        )

        # 4. restore 1000 sessions after kill -9 + "reboot"
        nft = Nft(lab.spec.gw)
        restore = budget(1.0 + crowd * PASS_PER_SESSION)  # the daemon's start-up, then one pass
        for label, reboot in (("kill -9, table kept", False), ("kill -9 + table deleted (reboot)", True)):
            lab.stop("gateway", signal.SIGKILL)
            if reboot:
                lab.exec(lab.spec.gw, "nft", "delete", "table", "inet", "hotspot", check=True)
            t0 = time.monotonic()
            pid = lab.start("gateway")
            wait_until(lambda: elements(nft) >= crowd, restore, f"[4] restoring {crowd} sessions ({label})")
            enforced = time.monotonic() - t0
            info = wait_until(
                lambda pid=pid: _heartbeat_after_pass(r, pid), restore, f"[4] the first full pass ({label})"
            )
            checked = time.monotonic() - t0
            print(
                f"[4] restore {crowd} sessions ({label}): process start -> all {crowd} enforced "
                f"{enforced:.2f} s, -> first full pass done {checked:.2f} s "
                f"(the pass itself {info['pass']['duration_ms']} ms)",
                flush=True,
            )

        # 5. a hand flush of the table, healed by the table watch (nft monitor)
        heals = []
        for _ in range(5):
            time.sleep(0.3)
            nft.apply("flush table inet hotspot")
            t0 = time.monotonic()
            wait_until(lambda: rules(nft, "from_lan"), budget(0.5), "[5] healing a flushed table", every=1e-3)
            heals.append((time.monotonic() - t0) * 1000)
        print(
            f"[5] hand 'nft flush table' with {crowd} online, healed after: median "
            f"{statistics.median(heals):.0f} ms, max {max(heals):.0f} ms",
            flush=True,
        )
    finally:
        fp.close()


def _heartbeat_after_pass(r, pid: int) -> dict | None:
    """Return the heartbeat of gateway ``pid`` once it has finished a full pass, else None."""
    info = json.loads(r.get(keys.GATEWAY_HEARTBEAT) or "{}")
    return info if info.get("pid") == pid and info.get("pass") else None


def rules(nft: Nft, chain: str) -> int:
    listing = nft.list_json(f"chain {TABLE} {chain}") or {}
    return sum(1 for item in listing.get("nftables", []) if "rule" in item)


def forwarding(lab: Lab, r, ip: str, args: argparse.Namespace) -> None:
    with target(f"[3] forwarding with {args.entries:,} entries"):
        _forwarding(lab, r, ip, args)


def _forwarding(lab: Lab, r, ip: str, args: argparse.Namespace) -> None:
    # 3. forwarding with 10,000 entries vs only the phone's
    entries = args.entries
    clear(r)
    now = time.time()
    me = new_session(
        mac=lab.client_mac(1), ip=ip, kind="admin", plan="", now=now, expires_at=now + 7200, down=0, up=0
    )  # fmt: skip  (no cap: the whole, here unlimited, line)
    start_session(r, me, now)
    ask(r, "authorize", pass_wait(1), "authorizing the phone", sid=me.sid)
    few, many = [], []
    for _ in range(args.rounds):  # A B B A in each round, so a drifting machine favours neither
        few.append(iperf(lab))
        fake = fake_sessions(r, entries, start=2000)
        t0 = time.monotonic()
        ask(r, "reconcile", pass_wait(entries), f"a pass adding {entries:,} sessions")
        added = time.monotonic() - t0
        many += [iperf(lab), iperf(lab)]
        for sid in fake:
            end_session(r, sid, "kicked", time.time())
        ask(r, "reconcile", pass_wait(entries), f"a pass ending {entries:,} sessions")
        few.append(iperf(lab))
    ratio = statistics.mean(many) / statistics.mean(few)
    print(
        f"[3] TCP forwarding, {args.rounds} rounds A-B-B-A: 1 entry {statistics.mean(few):.2f} Gbit/s "
        f"({', '.join(f'{x:.2f}' for x in few)}), {entries + 1:,} entries {statistics.mean(many):.2f} Gbit/s "
        f"({', '.join(f'{x:.2f}' for x in many)}) -> ratio {ratio:.3f}; "
        f"one pass adding {entries:,} sessions {added:.2f} s",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
