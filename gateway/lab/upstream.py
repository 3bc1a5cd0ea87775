"""The lab's "internet": answers the OS connectivity probes exactly as the real hosts do.

Runs in ``hs-up`` (``python -m gateway.lab.upstream``). The lab's DNS answers every
name with this host's address, so the Host header says which site a phone meant.
Anything that is not a probe gets a small page saying it came from the upstream,
which is how tests and the demo tell "online" from "sent to the portal".
"""

from __future__ import annotations

import argparse
import html
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["PROBES", "UPSTREAM_MARKER", "probe_answer", "main"]

UPSTREAM_MARKER = "PerpuSeru lab upstream"

APPLE_SUCCESS = "<HTML><HEAD><TITLE>Success</TITLE></HEAD><BODY>Success</BODY></HTML>"
FIREFOX_CANONICAL = (
    '<meta http-equiv="refresh" content="0;url=https://support.mozilla.org/kb/captive-portal"/>'
)

# (host, path) -> (status, content type, body): what the real probe servers answer.
PROBES: dict[tuple[str, str], tuple[int, str, str]] = {
    ("connectivitycheck.gstatic.com", "/generate_204"): (204, "", ""),
    ("connectivitycheck.android.com", "/generate_204"): (204, "", ""),
    ("clients3.google.com", "/generate_204"): (204, "", ""),
    ("clients1.google.com", "/generate_204"): (204, "", ""),
    ("www.google.com", "/gen_204"): (204, "", ""),
    ("www.gstatic.com", "/generate_204"): (204, "", ""),
    ("captive.apple.com", "/hotspot-detect.html"): (200, "text/html", APPLE_SUCCESS),
    ("captive.apple.com", "/"): (200, "text/html", APPLE_SUCCESS),
    ("www.apple.com", "/library/test/success.html"): (200, "text/html", APPLE_SUCCESS),
    ("www.msftconnecttest.com", "/connecttest.txt"): (200, "text/plain", "Microsoft Connect Test"),
    ("www.msftncsi.com", "/ncsi.txt"): (200, "text/plain", "Microsoft NCSI"),
    ("detectportal.firefox.com", "/canonical.html"): (200, "text/html", FIREFOX_CANONICAL + "\n"),
    ("detectportal.firefox.com", "/success.txt"): (200, "text/plain", "success\n"),
    ("nmcheck.gnome.org", "/check_network_status.txt"): (200, "text/plain", "NetworkManager is online\n"),
}


def probe_answer(host: str, path: str) -> tuple[int, str, str] | None:
    """Return the real probe server's (status, content type, body) for ``host`` and ``path``."""
    host = host.split(":", 1)[0].lower().rstrip(".")
    return PROBES.get((host, path.split("?", 1)[0]))


class _Handler(BaseHTTPRequestHandler):
    server_version = "lab-upstream"
    sys_version = ""

    def do_GET(self) -> None:  # http.server's naming
        host = self.headers.get("Host", "")
        answer = probe_answer(host, self.path)
        if answer is None:
            body = (
                "<!doctype html><meta charset=utf-8><title>Upstream</title>"
                f"<h1>{UPSTREAM_MARKER}</h1><p>You reached the internet: "
                f"host {html.escape(host)}, path {html.escape(self.path)}, "
                f"seen from {html.escape(self.client_address[0])}.</p>"
            )
            answer = (200, "text/html; charset=utf-8", body)
        status, ctype, text = answer
        data = text.encode()
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_HEAD = do_GET

    def do_POST(self) -> None:
        length = min(int(self.headers.get("Content-Length") or 0), 1 << 20)
        self.rfile.read(length)
        self.do_GET()

    def log_message(self, format: str, *args: object) -> None:
        sys.stdout.write(f"{self.client_address[0]} {format % args}\n")
        sys.stdout.flush()


class _DualStackServer(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True
    # socketserver's default backlog is 5: a class of 40 phones opening their first page in
    # the same millisecond overflowed it, and the dropped SYNs cost those phones a 1 s
    # retransmit, which the class benchmark charged to the gateway. The internet's servers
    # do not refuse a burst of 40, so the lab's stand-in must not either.
    request_queue_size = 1024

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def main(argv: list[str] | None = None) -> None:
    """Serve the probes on every address of this namespace (v4 and v6)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=80)
    args = parser.parse_args(argv)
    server = _DualStackServer(("::", args.port), _Handler)
    print(f"upstream listening on port {args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
