"""Serve the portal with gunicorn: ``python -m portal [--config PATH]``.

Binds where the config says (``portal.address:port``, plus ``tls_port`` when a
certificate is configured). The lab and hotspot-portal.service both start it this way,
as an unprivileged user.
"""

from __future__ import annotations

import argparse
import os
import sys

from gunicorn.app.base import BaseApplication

from gateway import config as config_mod


class _Server(BaseApplication):
    def __init__(self, options: dict):
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from portal import create_app

        return create_app()


def gunicorn_options(config: config_mod.Config) -> dict:
    """Return gunicorn settings for ``config``: bind addresses, workers, logging."""
    portal = config.portal
    options = {
        "bind": [f"{portal.address}:{portal.port}"],
        "workers": 2,
        "worker_class": "gthread",
        "threads": 8,
        "timeout": 30,
        "graceful_timeout": 10,
        "accesslog": "-",
        "errorlog": "-",
        "proc_name": "hotspot-portal",
        "forwarded_allow_ips": "",
        # no runtime control socket: nothing on the router should reconfigure the portal
        "control_socket_disable": True,
    }
    return options


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hotspot-portal", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", help="config file (default: $HOTSPOT_CONFIG or /etc/hotspot/hotspot.toml)"
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
    _Server(gunicorn_options(config)).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
