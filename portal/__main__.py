"""Serve the portal with gunicorn: ``python -m portal [--config PATH] [--listen all|http|tls]``.

Binds where the config says: ``portal.address:port`` over plain HTTP, and, when
``portal.tls_cert``/``tls_key`` are set, ``portal.address:tls_port`` over TLS. Both
listeners belong to one gunicorn server (one master, ``portal.workers`` workers):
gunicorn itself would put TLS on every socket of a server, so :class:`PortalWorker`
wraps only the connections accepted on the TLS port, and :class:`TlsScheme` tells the
app which requests came over TLS. One server instead of a second one for TLS saves a
master and its workers (~100 MiB, docs/benchmarks.md). ``--listen http`` or ``tls``
serves that listener only. The lab and hotspot-portal.service start the portal as an
unprivileged user.

The access log leaves out query strings: ``/?code=ABCD-EFGH`` (a voucher's QR code)
must never be logged.

Workers: gunicorn's ``gevent`` worker. The portal faces phones directly (no buffering
proxy in front), so a slow client must not hold a worker or a thread: gthread hands a
connection to a thread as soon as its first byte arrives and the thread then blocks until
the headers are complete, so 16 phones' worth of trickled headers (2 workers x 8 threads)
stopped every other phone (issue 16). With gevent each connection is a greenlet, up to
:data:`WORKER_CONNECTIONS` per worker, and a request's headers must arrive within
:data:`HEADER_TIMEOUT` seconds (gunicorn's keepalive timeout bounds each header read; the
TLS handshake gets the same bound). nftables also caps the connections one device may
hold to the portal (``firewall_rules/``). gevent is gunicorn's own documented choice for
clients that may be slow, and is in both PyPI and Debian (python3-gevent). One worker
(the default) holds the router's memory under its target; ``portal.workers = 2`` adds a
second CPU core for busy sign-in peaks.
"""

from __future__ import annotations

import argparse
import os
import sys

from gunicorn.app.base import BaseApplication
from gunicorn.workers.ggevent import GeventWorker

from gateway import config as config_mod

ACCESS_LOG_FORMAT = '%(h)s "%(m)s %({host}i)s%(U)s" %(s)s %(b)s %(M)sms'
WORKER_CONNECTIONS = 1000  # open connections per worker; each costs a greenlet, a few KB
HEADER_TIMEOUT = 5  # seconds for a request's headers (and between kept-alive requests)


class CloseWhenAsked:
    """WSGI middleware: make gunicorn close the connection when a response says ``Connection: close``.

    gunicorn drops hop-by-hop headers set by the app, so the portal's probe redirects
    (see :mod:`portal.probes`) would otherwise leave a kept-alive connection that the
    firewall had redirected to the portal before login.
    """

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        def start(status, headers, exc_info=None):
            if any(k.lower() == "connection" and v.lower() == "close" for k, v in headers):
                force_close = getattr(getattr(start_response, "__self__", None), "force_close", None)
                if callable(force_close):
                    force_close()
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


class TlsScheme:
    """WSGI middleware: mark requests that came in on the TLS listener as ``https``.

    gunicorn derives ``wsgi.url_scheme`` from its own TLS settings, which :class:`PortalWorker`
    leaves off; ``SERVER_PORT`` is the port of the listener that accepted the connection.
    """

    def __init__(self, app, tls_port: int):
        self.app = app
        self.tls_port = str(tls_port)

    def __call__(self, environ, start_response):
        environ["wsgi.url_scheme"] = "https" if environ.get("SERVER_PORT") == self.tls_port else "http"
        return self.app(environ, start_response)


class PortalWorker(GeventWorker):
    """gunicorn's gevent worker, with TLS on the connections of one listener only (``tls_port``).

    Set by :func:`main` in the master before the workers fork: ``tls_port`` and the PEM files.
    Each worker loads the certificate when it starts, so a reload (HUP) picks up a renewed one.
    """

    tls_port: int | None = None
    tls_files: tuple[str, str] | None = None
    tls_context = None

    def load_wsgi(self) -> None:
        super().load_wsgi()
        if self.tls_files is not None:
            # deliberate: gevent's ssl (cooperative sockets), and only in workers that serve TLS
            from gevent import ssl as gevent_ssl

            context = gevent_ssl.create_default_context(gevent_ssl.Purpose.CLIENT_AUTH)
            try:
                context.load_cert_chain(*self.tls_files)
            except OSError as err:  # missing, unreadable or mismatched: HTTP stays up, TLS is refused
                self.log.error("portal TLS certificate not loaded (%s): %s; TLS connections are refused",
                               ", ".join(self.tls_files), err)  # fmt: skip
                return
            self.tls_context = context

    def handle(self, listener, client, addr) -> None:
        if self.tls_port is not None and listener.getsockname()[1] == self.tls_port:
            if self.tls_context is None:  # the certificate did not load: never plain HTTP here
                client.close()
                return
            client.settimeout(HEADER_TIMEOUT)  # a handshake that trickles is dropped like slow headers
            try:
                client = self.tls_context.wrap_socket(client, server_side=True)
            except OSError as err:  # ssl.SSLError and timeouts are OSErrors
                self.log.debug("TLS handshake with %s failed: %s", addr, err)
                client.close()
                return
        super().handle(listener, client, addr)


class _Server(BaseApplication):
    def __init__(self, options: dict, tls_port: int | None = None):
        self.options = options
        self.tls_port = tls_port
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        # deliberate: gunicorn calls this to build the app; `python -m portal --help` does not need Flask
        from portal import create_app

        app = create_app()
        app.wsgi_app = CloseWhenAsked(app.wsgi_app)
        if self.tls_port is not None:
            app.wsgi_app = TlsScheme(app.wsgi_app, self.tls_port)
        return app


def tls_configured(config: config_mod.Config) -> bool:
    """Return whether the config asks for the TLS listener."""
    return config.portal.tls


def gunicorn_options(config: config_mod.Config, *, listen: str = "all") -> dict:
    """Return gunicorn settings for ``config``: the HTTP listener, and the TLS one if configured
    (``listen="all"``), or only one of them (``"http"``, ``"tls"``)."""
    portal = config.portal
    bind = []
    if listen in ("all", "http"):
        bind.append(f"{portal.address}:{portal.port}")
    if listen == "tls" or (listen == "all" and portal.tls):
        bind.append(f"{portal.address}:{portal.tls_port}")
    return {
        "bind": bind,
        "workers": portal.workers,
        "worker_class": PortalWorker,
        "worker_connections": WORKER_CONNECTIONS,
        "keepalive": HEADER_TIMEOUT,
        "timeout": 30,
        "graceful_timeout": 10,
        "accesslog": "-",
        "access_log_format": ACCESS_LOG_FORMAT,
        "errorlog": "-",
        "proc_name": "hotspot-portal",
        "forwarded_allow_ips": "",
        # never sendfile(): it would bypass TLS on the TLS listener (gunicorn does not know it is one)
        "sendfile": False,
        # no runtime control socket: nothing on the router should reconfigure the portal
        "control_socket_disable": True,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hotspot-portal", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", help="config file (default: $HOTSPOT_CONFIG or /etc/hotspot/hotspot.toml)"
    )
    parser.add_argument(
        "--listen",
        choices=("all", "http", "tls"),
        default="all",
        help="all: HTTP, and TLS when a certificate is configured (default); http or tls: that one only",
    )
    args = parser.parse_args(argv)
    if args.config:
        os.environ["HOTSPOT_CONFIG"] = args.config
    try:
        config = config_mod.load(args.config)
    except config_mod.ConfigError as err:
        print("\n".join(err.lines()), file=sys.stderr)
        print("portal not started: fix the config and start it again", file=sys.stderr)
        return 2
    if args.listen == "tls" and not tls_configured(config):
        print("portal: --listen tls needs portal.tls_cert and portal.tls_key", file=sys.stderr)
        return 2
    tls_port = None
    if args.listen != "http" and tls_configured(config):
        tls_port = config.portal.tls_port
        PortalWorker.tls_port = tls_port
        PortalWorker.tls_files = (str(config.portal.tls_cert), str(config.portal.tls_key))
    _Server(gunicorn_options(config, listen=args.listen), tls_port).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
