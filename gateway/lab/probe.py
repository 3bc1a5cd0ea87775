"""What a lab phone can reach: helpers for tests, benchmarks and the demo.

Every probe runs inside a lab namespace (``lab.exec``); nothing is sent from the root
namespace. :func:`admit` logs a phone in the way the portal does: it writes the session
to Redis and asks the gateway to apply it, waiting for the ack.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from gateway.lab.lab import Lab
from gateway.lab.topology import UPSTREAM_IP
from gateway.lab.upstream import UPSTREAM_MARKER
from gateway.model import commands
from gateway.model.sessions import Session, end_session, new_session, online_sessions, start_session

__all__ = ["Fetched", "admit", "everyone_out", "fetch", "online_from", "udp_arrives", "wait_for"]


@dataclass(frozen=True)
class Fetched:
    """One HTTP attempt from a phone: curl's exit code, the status and the body."""

    rc: int
    status: int
    body: str

    @property
    def upstream(self) -> bool:
        """Whether the answer came from the lab's internet (not the portal, not an error)."""
        return self.rc == 0 and UPSTREAM_MARKER in self.body


def fetch(lab: Lab, ns: str, url: str, *, timeout: float = 3.0, extra: tuple[str, ...] = ()) -> Fetched:
    """Return what ``curl url`` gets inside namespace ``ns``."""
    result = lab.exec(
        ns, "curl", "-s", "-g", "-m", str(timeout), "-w", "\n%{http_code}", *extra, url, timeout=timeout + 5
    )
    body, _, status = result.stdout.rpartition("\n")
    return Fetched(result.returncode, int(status) if status.isdigit() else 0, body)


def online_from(lab: Lab, index: int) -> bool:
    """Return whether phone ``index`` reaches the upstream web server (is online)."""
    return fetch(lab, lab.spec.client(index), f"http://{UPSTREAM_IP}/").upstream


def admit(
    r: redis.Redis,
    lab: Lab,
    index: int,
    *,
    minutes: float = 60,
    ip: str | None = None,
    timeout: float = 5.0,
    **changes: Any,
) -> tuple[Session, dict | None]:
    """Log phone ``index`` in as the portal would; return its session and the gateway's ack."""
    now = time.time()
    fields = {"plan": "harian", "down": 4_000_000, "up": 2_000_000, **changes}  # the caps may be changed
    session = new_session(
        mac=lab.client_mac(index), ip=ip or lab.client_ip(lab.spec.client(index)) or "", kind="admin",
        now=now, expires_at=now + minutes * 60, **fields,
    )  # fmt: skip
    start_session(r, session, now)
    return session, commands.request(r, "authorize", timeout, sid=session.sid)


def everyone_out(lab: Lab, r: redis.Redis, timeout: float = 10.0) -> None:
    """Bring the lab's Redis and gateway back if a test stopped them, end every session, apply
    (waiting up to ``timeout`` s for the gateway's pass)."""
    for name in ("redis", "gateway"):
        if not lab.is_running(name):
            lab.start(name)
    for session in online_sessions(r):
        end_session(r, session.sid, "kicked", time.time())
    reply = commands.request(r, "reconcile", timeout)
    if not reply or not reply.get("ok"):
        raise AssertionError(f"the gateway did not reconcile: {reply}")


_UDP_LISTEN = """
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2]))); s.settimeout(float(sys.argv[3]))
print("ready", flush=True)
got = 0
try:
    while True:
        s.recvfrom(2048); got += 1
except TimeoutError:
    pass
print(got)
"""

_UDP_SEND = """
import socket, sys, time
dst, port, src = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET6 if ":" in dst else socket.AF_INET, socket.SOCK_DGRAM)
if src:
    s.bind((src, 0))
for _ in range(5):
    try:
        s.sendto(b"escape?", (dst, port))
    except OSError:
        pass
    time.sleep(0.05)
"""


def udp_arrives(lab: Lab, ns: str, dst: str = UPSTREAM_IP, *, port: int = 9999, src: str = "") -> int:
    """Send 5 UDP datagrams from ``ns`` (optionally from address ``src``) to ``dst`` in the
    upstream namespace; return how many arrived there."""
    bind = "::" if ":" in dst else "0.0.0.0"  # noqa: S104 (inside the lab's upstream namespace)
    listener = subprocess.Popen(
        ["ip", "netns", "exec", lab.spec.up, sys.executable, "-c", _UDP_LISTEN, bind, str(port), "1.0"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        listener.stdout.readline()  # type: ignore[union-attr]  # "ready"
        lab.exec(ns, sys.executable, "-c", _UDP_SEND, dst, str(port), src, check=True)
        out, _ = listener.communicate(timeout=10)
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()
    return int(out.strip() or 0)


def wait_for(
    check: Callable[[], Any], timeout: float = 10.0, what: str = "condition", every: float = 0.1
) -> Any:
    """Return ``check()``'s first truthy value; raise AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)
