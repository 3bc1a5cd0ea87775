"""Time voucher logins end to end from INSIDE a lab phone namespace (used by bench.portal).

``python bench/_login_timing.py --portal http://10.42.0.1:8080 --code ABCD-EFGH --rounds 20``
loads the splash once (for the device's form token), then per round: posts the code
(like the form), records when the portal answers (``login_ms``: it answers only after
the gateway's ack), then fetches a page from the internet until the upstream answers
(``online_ms``: form post to first page through the router), then logs out.
Prints one JSON line with every round's numbers; a request with no answer within
``--timeout`` seconds (a busy machine) counts as status "timeout", not a crash.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import time
from urllib.parse import urlencode, urlsplit

MARKER = b"PerpuSeru lab upstream"


TIMEOUT = 30.0  # seconds for one request; --timeout sets it


def _request(host: str, port: int, method: str, path: str, *, host_header: str = "", body: str = ""):
    conn = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
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
    global TIMEOUT  # one setting for every request of this short script
    parser = argparse.ArgumentParser()
    parser.add_argument("--portal", required=True)
    parser.add_argument("--code", required=True)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--upstream", default="192.0.2.1")
    parser.add_argument("--timeout", type=float, default=TIMEOUT)
    args = parser.parse_args()
    TIMEOUT = args.timeout
    portal = urlsplit(args.portal)
    ip, port = portal.hostname, portal.port or 80
    _, page = _request(ip, port, "GET", "/")
    token = re.search(rb'name="token" value="([^"]+)"', page)
    if token is None:  # already online (a previous run): log out with the status page's token
        _, page = _request(ip, port, "GET", "/status")
        token = re.search(rb'name="token" value="([^"]+)"', page)
    token = token.group(1).decode()
    _request(ip, port, "POST", "/logout", body=urlencode({"token": token}))
    rounds = []
    for _ in range(max(1, min(args.rounds, 200))):
        time.sleep(0.3)
        started = time.perf_counter()
        try:
            form = urlencode({"code": args.code, "token": token})
            status, _ = _request(ip, port, "POST", "/login", body=form)
        except TimeoutError:
            status = "timeout"
        login_ms = (time.perf_counter() - started) * 1000
        online_ms = None
        while status != "timeout" and time.perf_counter() - started < TIMEOUT:
            try:
                _, body = _request(args.upstream, 80, "GET", "/", host_header="example.com")
            except OSError:
                continue
            if MARKER in body:
                online_ms = (time.perf_counter() - started) * 1000
                break
        rounds.append({"status": status, "login_ms": round(login_ms, 2),
                       "online_ms": round(online_ms, 2) if online_ms else None})  # fmt: skip
        try:
            _request(ip, port, "POST", "/logout", body=urlencode({"token": token}))
        except TimeoutError:
            pass  # the next login replaces the session anyway
    print(json.dumps({"rounds": rounds}), flush=True)


if __name__ == "__main__":
    main()
