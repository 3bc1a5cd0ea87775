"""A class of phones logging in within the same second, run INSIDE one lab phone namespace.

``python bench/_class_login.py --portal http://10.42.0.1:8080 --device 10.42.0.201=ABCD-EFGH ...``

Each ``--device`` is a made-up device's address (see ``gateway/lab/fakes.py``) and its
voucher code. Every device first loads the splash (for its form token); then all start
together (a barrier) and each posts its code ``--spread`` seconds or less later (a random
offset, the same for a given ``--seed``; 0, the default: all at the same instant), and
records, from its own post, when the portal answered (``login_ms``, after the gateway's
ack) and when its first page from the internet arrived (``online_ms``, at most 10 s).
Prints one JSON line with every device's numbers.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import re
import threading
import time
from urllib.parse import urlencode, urlsplit

MARKER = b"PerpuSeru lab upstream"
MAX_DEVICES = 64


def _request(ip: str, host: str, port: int, method: str, path: str, body: str = "", host_header: str = ""):
    conn = http.client.HTTPConnection(host, port, timeout=5, source_address=(ip, 0))
    try:
        headers = {"Host": host_header or f"{host}:{port}", "Connection": "close", "Accept": "text/html"}
        if body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body or None, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def main() -> None:
    """Log every device in at once; print the JSON numbers."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--portal", required=True)
    parser.add_argument("--device", action="append", default=[], help="ADDRESS=CODE")
    parser.add_argument("--upstream", default="192.0.2.1")
    parser.add_argument("--spread", type=float, default=0.0, help="seconds over which the posts spread")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    portal = urlsplit(args.portal)
    host, port = portal.hostname, portal.port or 80
    devices = [d.split("=", 1) for d in args.device[:MAX_DEVICES]]
    tokens = {}
    for ip, _code in devices:
        page = _request(ip, host, port, "GET", "/")[1]
        tokens[ip] = re.search(rb'name="token" value="([^"]+)"', page).group(1).decode()
    barrier = threading.Barrier(len(devices))
    rng = random.Random(args.seed)
    offsets = {ip: rng.uniform(0, max(0.0, args.spread)) for ip, _code in devices}
    results: list[dict] = []

    def one(ip: str, code: str) -> None:
        body = urlencode({"code": code, "token": tokens[ip]})
        barrier.wait(timeout=30)
        if offsets[ip]:
            time.sleep(offsets[ip])
        started = time.perf_counter()
        try:
            status, _ = _request(ip, host, port, "POST", "/login", body)
        except OSError:
            status = 0
        login_ms = (time.perf_counter() - started) * 1000
        online_ms = None
        while time.perf_counter() - started < 10:
            try:
                _, page = _request(ip, args.upstream, 80, "GET", "/", host_header="example.com")
            except OSError:
                time.sleep(0.01)
                continue
            if MARKER in page:
                online_ms = (time.perf_counter() - started) * 1000
                break
        results.append({"ip": ip, "status": status, "login_ms": round(login_ms, 1),
                        "online_ms": round(online_ms, 1) if online_ms else None})  # fmt: skip

    threads = [threading.Thread(target=one, args=(ip, code)) for ip, code in devices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    print(json.dumps({"devices": results}), flush=True)


if __name__ == "__main__":
    main()
