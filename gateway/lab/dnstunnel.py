"""A DNS-tunnel endpoint and client for the lab: what a visitor who wants free internet runs.

Server (``python -m gateway.lab.dnstunnel serve``, in the upstream namespace on
``127.0.0.1:5300``; the lab's upstream DNS forwards ``tunnel.test`` to it): answers every
TXT query with :data:`TXT_BYTES` bytes of TXT strings, as a tunnel's downstream would.

Client (``python -m gateway.lab.dnstunnel pull SERVER SECONDS PARALLEL``, in a phone): sends
TXT queries for fresh names (so no cache answers them) from ``PARALLEL`` threads for
``SECONDS`` and prints JSON: queries sent, answers and UDP payload bytes received. Bounded in
time and in count (at most :data:`MAX_QUERIES` per thread).
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import threading
import time

__all__ = ["answer", "query"]

TXT_BYTES = 1000  # per answer: four TXT strings of 250 bytes (fits a 1232-byte EDNS answer)
MAX_QUERIES = 20_000  # per client thread: the loop is bounded in count as well as time
TYPE_TXT = 16


def query(name: str, qid: int, qtype: int = TYPE_TXT) -> bytes:
    """Return a DNS query for ``name`` (recursion desired, EDNS 1232 bytes)."""
    header = struct.pack(">HHHHHH", qid & 0xFFFF, 0x0100, 1, 0, 0, 1)
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    opt = b"\0" + struct.pack(">HHIH", 41, 1232, 0, 0)
    return header + labels + struct.pack(">HH", qtype, 1) + opt


def answer(packet: bytes) -> bytes | None:
    """Return the tunnel's answer to ``packet``: TXT payload for TXT, nothing for anything else."""
    if len(packet) < 12:
        return None
    qid, _flags, qdcount = struct.unpack(">HHH", packet[:6])
    if qdcount != 1:
        return None
    end = 12
    while end < len(packet) and packet[end]:
        end += packet[end] + 1
    question = packet[12 : end + 5]
    qtype = struct.unpack(">H", packet[end + 1 : end + 3])[0] if end + 3 <= len(packet) else 0
    records = b""
    count = 0
    if qtype == TYPE_TXT:
        chunk = b"x" * 249
        rdata = b"".join(bytes([len(chunk)]) + chunk for _ in range(TXT_BYTES // 250))
        records = b"\xc0\x0c" + struct.pack(">HHIH", TYPE_TXT, 1, 0, len(rdata)) + rdata
        count = 1
    header = struct.pack(">HHHHHH", qid, 0x8180, 1, count, 0, 0)
    return header + question + records


def serve(host: str = "127.0.0.1", port: int = 5300, seconds: float = 3600.0) -> None:
    """Answer TXT queries on ``host:port`` for at most ``seconds``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, port))
    sock.settimeout(1.0)
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            packet, peer = sock.recvfrom(4096)
        except TimeoutError:
            continue
        reply = answer(packet)
        if reply:
            sock.sendto(reply, peer)


def pull(server: str, seconds: float, parallel: int, domain: str = "tunnel.test") -> dict[str, int]:
    """Pull TXT answers through ``server`` from ``parallel`` threads; return the totals."""
    totals = {"sent": 0, "answers": 0, "bytes": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker(n: int) -> None:
        sock = socket.socket(socket.AF_INET6 if ":" in server else socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(0.2)
        sent = answers = got = 0
        for i in range(MAX_QUERIES):
            if time.monotonic() >= deadline:
                break
            name = f"{os.urandom(6).hex()}-{n}-{i}.{domain}"
            sock.sendto(query(name, i), (server, 53))
            sent += 1
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            answers += 1
            got += len(data)
        sock.close()
        with lock:
            totals["sent"] += sent
            totals["answers"] += answers
            totals["bytes"] += got

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(parallel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 5)
    return totals


def main(argv: list[str]) -> None:
    """``serve [SECONDS]`` or ``pull SERVER SECONDS PARALLEL``."""
    if argv[:1] == ["serve"]:
        serve(seconds=float(argv[1]) if len(argv) > 1 else 3600.0)
    elif argv[:1] == ["pull"] and len(argv) == 4:
        print(json.dumps(pull(argv[1], float(argv[2]), int(argv[3]))))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
