"""A class of phones logging in within the same second, run INSIDE one lab phone namespace.

``python bench/_class_login.py --portal http://10.42.0.1:8080 --device 10.42.0.201=ABCD-EFGH ...``

Each ``--device`` is a made-up device's address (see ``gateway/lab/fakes.py``) and its
voucher code. Every device first loads the splash (for its form token); then all start
together and each posts its code ``--spread`` seconds or less later (a random offset, the
same for a given ``--seed``; 0, the default: all at the same instant), and records, from
its own post, when the portal answered (``login_ms``, after the gateway's ack) and when
its first page from the internet arrived (``online_ms``, at most 10 s). Prints one JSON
line with every device's numbers, and the CPU seconds this generator used while the
class logged in (``client_cpu_s``).

One thread, one asyncio loop, requests written as bytes: the 40 "phones" share the lab's
2 CPUs with the router, so the generator must take as little of them as it can (real
phones bring their own). A thread per phone with ``http.client`` took ~1 ms of CPU a
phone, a quarter of what the portal needs for a login.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import resource
import time
from urllib.parse import urlencode, urlsplit

MARKER = b"PerpuSeru lab upstream"
MAX_DEVICES = 64
TIMEOUT = 5.0  # one request
ONLINE_WITHIN = 10.0  # seconds a device keeps trying its first page from the internet


async def _http(ip: str, host: str, port: int, request: bytes) -> tuple[int, bytes]:
    """Send ``request`` (a whole HTTP/1.1 request, ``Connection: close``) from ``ip``;
    return (status, body)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, local_addr=(ip, 0)), TIMEOUT)
    try:
        writer.write(request)
        raw = await asyncio.wait_for(reader.read(), TIMEOUT)  # to EOF: the server closes
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, body


def _get(host_header: str, path: str = "/") -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nAccept: text/html\r\n"
            "Connection: close\r\n\r\n").encode()  # fmt: skip


def _post(host_header: str, path: str, form: dict[str, str]) -> bytes:
    body = urlencode(form).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: {host_header}\r\nAccept: text/html\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body  # fmt: skip


async def _device(ip: str, post: bytes, start: float, offset: float, args: argparse.Namespace) -> dict:
    await asyncio.sleep(max(0.0, start + offset - time.perf_counter()))
    started = time.perf_counter()
    try:
        status, _ = await _http(ip, args.host, args.port, post)
    except (TimeoutError, OSError):
        status = 0
    login_ms = (time.perf_counter() - started) * 1000
    online_ms = None
    first_page = _get("example.com")
    while time.perf_counter() - started < ONLINE_WITHIN:
        try:
            _, page = await _http(ip, args.upstream, 80, first_page)
        except (TimeoutError, OSError):
            await asyncio.sleep(0.01)
            continue
        if MARKER in page:
            online_ms = (time.perf_counter() - started) * 1000
            break
    return {"ip": ip, "status": status, "login_ms": round(login_ms, 1),
            "online_ms": round(online_ms, 1) if online_ms else None}  # fmt: skip


async def _class(args: argparse.Namespace, devices: list[tuple[str, str]]) -> dict:
    host_header = f"{args.host}:{args.port}"
    tokens = {}
    for ip, _code in devices:  # one after another: the splash loads are not what is measured
        _, page = await _http(ip, args.host, args.port, _get(host_header))
        tokens[ip] = re.search(rb'name="token" value="([^"]+)"', page).group(1).decode()
    posts = {ip: _post(host_header, "/login", {"code": code, "token": tokens[ip]}) for ip, code in devices}
    rng = random.Random(args.seed)
    offsets = {ip: rng.uniform(0, max(0.0, args.spread)) for ip, _code in devices}
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter() + 0.05
    results = await asyncio.gather(*(_device(ip, posts[ip], start, offsets[ip], args) for ip, _ in devices))
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"devices": list(results), "client_cpu_s": round(cpu, 3)}


def main() -> None:
    """Log every device in; print the JSON numbers."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--portal", required=True)
    parser.add_argument("--device", action="append", default=[], help="ADDRESS=CODE")
    parser.add_argument("--upstream", default="192.0.2.1")
    parser.add_argument("--spread", type=float, default=0.0, help="seconds over which the posts spread")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    portal = urlsplit(args.portal)
    args.host, args.port = portal.hostname, portal.port or 80
    devices = [tuple(d.split("=", 1)) for d in args.device[:MAX_DEVICES]]
    print(json.dumps(asyncio.run(_class(args, devices))), flush=True)


if __name__ == "__main__":
    main()
