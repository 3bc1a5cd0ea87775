"""Serve the portal with gunicorn: ``python -m portal [--config PATH] [--listen all|http|tls]``.

Binds where the config says: ``portal.address:port`` over plain HTTP, and, when
``portal.tls_cert``/``tls_key`` are set, ``portal.address:tls_port`` over TLS. gunicorn
applies TLS to all of a server's sockets, so the TLS listener is a second gunicorn
server: ``--listen all`` (the default) starts it as a child process that follows the
first (reloads on HUP, stops with it, dies with it). The lab and
hotspot-portal.service both start the portal this way, as an unprivileged user.

The access log leaves out query strings: ``/?code=ABCD-EFGH`` (a voucher's QR code)
must never be logged.

Workers: gunicorn's ``gevent`` worker. The portal faces phones directly (no buffering
proxy in front), so a slow client must not hold a worker or a thread: gthread hands a
connection to a thread as soon as its first byte arrives and the thread then blocks until
the headers are complete, so 16 phones' worth of trickled headers (2 workers x 8 threads)
stopped every other phone (issue 16). With gevent each connection is a greenlet, up to
:data:`WORKER_CONNECTIONS` per worker, and a request's headers must arrive within
:data:`HEADER_TIMEOUT` seconds (gunicorn's keepalive timeout bounds each header read).
nftables also caps the connections one device may hold to the portal (``firewall_rules/``).
gevent is gunicorn's own documented choice for clients that may be slow, and is in both
PyPI and Debian (python3-gevent).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys

from gunicorn.app.base import BaseApplication

from gateway import config as config_mod

ACCESS_LOG_FORMAT = '%(h)s "%(m)s %({host}i)s%(U)s" %(s)s %(b)s %(M)sms'
WORKERS = 2
WORKER_CONNECTIONS = 500  # open connections per worker; each costs a greenlet, a few KB
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


class _Server(BaseApplication):
    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        # deliberate: gunicorn calls this to build the app; `python -m portal --help` does not need Flask
        from portal import create_app

        app = create_app()
        app.wsgi_app = CloseWhenAsked(app.wsgi_app)
        return app


def tls_configured(config: config_mod.Config) -> bool:
    """Return whether the config asks for the TLS listener."""
    return config.portal.tls


def gunicorn_options(config: config_mod.Config, *, tls: bool = False) -> dict:
    """Return gunicorn settings for ``config``'s plain HTTP listener, or its TLS one."""
    portal = config.portal
    options = {
        "bind": [f"{portal.address}:{portal.tls_port if tls else portal.port}"],
        "workers": WORKERS,
        "worker_class": "gevent",
        "worker_connections": WORKER_CONNECTIONS,
        "keepalive": HEADER_TIMEOUT,
        "timeout": 30,
        "graceful_timeout": 10,
        "accesslog": "-",
        "access_log_format": ACCESS_LOG_FORMAT,
        "errorlog": "-",
        "proc_name": "hotspot-portal-tls" if tls else "hotspot-portal",
        "forwarded_allow_ips": "",
        # no runtime control socket: nothing on the router should reconfigure the portal
        "control_socket_disable": True,
    }
    if tls:
        options.update(certfile=str(portal.tls_cert), keyfile=str(portal.tls_key))
    return options


def _die_with_parent() -> None:
    # Linux prctl(PR_SET_PDEATHSIG, SIGTERM): the TLS server stops if the main one is killed
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def _with_tls_child(options: dict, argv: list[str]) -> dict:
    """Start the TLS server as a child process; return ``options`` with hooks that follow it."""
    child = subprocess.Popen(
        [sys.executable, "-m", "portal", *argv, "--listen", "tls"], preexec_fn=_die_with_parent
    )

    def on_reload(_arbiter) -> None:
        child.send_signal(signal.SIGHUP)

    def on_exit(_arbiter) -> None:
        child.terminate()
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()

    return {**options, "on_reload": on_reload, "on_exit": on_exit}


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
    if args.listen == "tls":
        if not tls_configured(config):
            print("portal: --listen tls needs portal.tls_cert and portal.tls_key", file=sys.stderr)
            return 2
        _Server(gunicorn_options(config, tls=True)).run()
        return 0
    options = gunicorn_options(config)
    if args.listen == "all" and tls_configured(config):
        options = _with_tls_child(options, ["--config", str(config.path)])
    _Server(options).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
