"""``hotspotctl``: the admin's command line (over SSH on the router, or against the lab).

Exit codes: 0 done; 1 the thing asked about is not there or the action failed;
2 bad usage or a bad config; 3 a service it needs (Redis, the gateway) is down.
Errors are one plain line on stderr. Every listing takes ``--json`` for scripts; its table
fits the terminal without ever cutting an identifier (:mod:`gateway.cli.tables`).

One module per group of commands, each listing its click commands in ``COMMANDS``:

- :mod:`~gateway.cli.access`: ``status``, ``clients``, ``auth``, ``kick``, ``doctor``
- :mod:`~gateway.cli.shaping`: ``limit``, ``top``
- :mod:`~gateway.cli.vouchers`: ``voucher``, ``plan``
- :mod:`~gateway.cli.accounts`: ``librarian``, ``audit``
- :mod:`~gateway.cli.report`: ``report``
- :mod:`~gateway.cli.sessionlog`: ``sessions``, ``logs``
- :mod:`~gateway.cli.ops`: ``reload``
- :mod:`~gateway.cli.admin`: ``config check``, ``self-check``, ``version``
- :mod:`~gateway.cli.manpages`: hotspotctl(8) and hotspot.toml(5) generated from this command
  tree and the config example (run by ``make deb``)
- :mod:`~gateway.cli.tables`: tables that fit 80 columns without cutting an identifier
- :mod:`~gateway.cli.lab`: ``lab`` (imports the lab only when run; absent on routers)

It talks to the gateway through Redis; only when the gateway is down (no fresh heartbeat)
does it read or write the kernel itself, importing the kernel wings lazily (as root).
May import: every wing (the top layer). Imported by: nothing (the ``hotspotctl`` script).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import redis
import structlog

from gateway import __version__
from gateway import config as config_mod
from gateway.logs import warnings_to_stderr
from gateway.model.store import connect

__all__ = ["Context", "cli", "main", "pass_ctx", "fail", "print_json"]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
REDIS_TIMEOUT = 15.0  # seconds: above the longest wait for the gateway's reply


class Context:
    """What commands share: the config path, and the config and Redis handle, loaded lazily."""

    def __init__(self, config_path: str | None):
        self.config_path = config_path
        self._config: config_mod.Config | None = None
        self._redis: redis.Redis | None = None

    @property
    def config(self) -> config_mod.Config:
        if self._config is None:
            try:
                self._config = config_mod.load(self.resolve_config_path())
            except config_mod.ConfigError as err:
                for line in err.lines():
                    click.echo(line, err=True)
                sys.exit(EXIT_USAGE)
        return self._config

    def resolve_config_path(self) -> Path:
        """Return --config, else $HOTSPOT_CONFIG, else /etc/hotspot/hotspot.toml.

        There is no other fallback: on a router a missing file is an install problem to
        report (exit 2), never a reason to pick up some other config.
        """
        if self.config_path:
            return Path(self.config_path)
        path = config_mod.config_path()  # --config already took $HOTSPOT_CONFIG: this is the default
        if not path.exists():
            fail(
                f"no config at {path} (make install writes one); pass --config PATH or set $HOTSPOT_CONFIG "
                "(the lab's: hotspotctl lab up prints it)",
                EXIT_USAGE,
            )
        return path

    @property
    def redis(self) -> redis.Redis:
        if self._redis is None:
            # replies block longer than the default 5 s (doctor waits up to 10 s for a pass);
            # a Redis that is down still fails within the 2 s connect timeout
            self._redis = connect(self.config, timeout=REDIS_TIMEOUT)
            try:
                self._redis.ping()
            except redis.RedisError as err:
                fail(f"cannot reach Redis at {self.config.redis_url}: {err}", EXIT_UNAVAILABLE)
        return self._redis

    def close(self) -> None:
        """Close the Redis connection, if one was made."""
        if self._redis is not None:
            self._redis.close()
            self._redis = None


pass_ctx = click.make_pass_decorator(Context)


def fail(message: str, code: int = EXIT_FAILED) -> None:
    """Print ``message`` as one line on stderr and exit with ``code``."""
    click.echo(f"hotspotctl: {message}", err=True)
    sys.exit(code)


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON (for ``--json``)."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    envvar="HOTSPOT_CONFIG",
    metavar="PATH",
    help="Config file [default: $HOTSPOT_CONFIG, else /etc/hotspot/hotspot.toml].",
)
@click.version_option(__version__, "--version", prog_name="hotspotctl")
@click.pass_context
def cli(click_ctx: click.Context, config_path: str | None) -> None:
    """Run the PerpuSeru library hotspot: clients, vouchers, logs, the lab."""
    click_ctx.obj = Context(config_path)
    click_ctx.call_on_close(click_ctx.obj.close)
    # Results go to stdout (tables, --json, --csv): the domain's log lines must not mix in.
    # Put back when the command ends, so a process that runs commands (tests) keeps its own.
    previous = warnings_to_stderr()
    click_ctx.call_on_close(lambda: structlog.configure(**previous))


def _register() -> None:
    # deliberate: the command modules import this package (Context, fail), so they load after it
    from gateway.cli import access, accounts, admin, hq, lab, ops, report, sessionlog, shaping, vouchers

    for module in (admin, lab, access, shaping, vouchers, accounts, report, sessionlog, ops, hq):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    """Console-script entry point: errors, bad usage included, are one line on stderr."""
    try:
        cli.main(prog_name="hotspotctl", standalone_mode=False)
    except click.UsageError as err:
        where = f" (see {err.ctx.command_path} --help)" if err.ctx else ""
        fail(f"{err.format_message()}{where}", EXIT_USAGE)
    except click.ClickException as err:
        fail(err.format_message(), err.exit_code)
    except click.Abort:
        fail("interrupted", 130)
    except redis.RedisError as err:
        fail(f"Redis: {err}", EXIT_UNAVAILABLE)
