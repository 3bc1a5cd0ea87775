"""``hotspotctl``: the admin's command line (over SSH on the router, or against the lab).

Exit codes: 0 done; 1 the thing asked about is not there or the action failed;
2 bad usage or a bad config; 3 a service it needs (Redis, the gateway) is down.
Errors are one plain line on stderr. Every listing takes ``--json`` for scripts.
"""

from __future__ import annotations

import importlib.util
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

__all__ = ["Context", "cli", "main", "pass_ctx", "fail", "print_json"]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3


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
        """Return --config, else $HOTSPOT_CONFIG, else /etc/hotspot/hotspot.toml, else the lab's."""
        if self.config_path:
            return Path(self.config_path)
        path = config_mod.config_path()
        if path == config_mod.DEFAULT_PATH and not path.exists() and _HAVE_LAB:
            from gateway.lab.lab import default_lab_dir

            lab_config = default_lab_dir("hs-") / "hotspot.toml"
            if lab_config.exists():
                click.echo(f"(no {path}; using the lab's {lab_config})", err=True)
                return lab_config
        return path

    @property
    def redis(self) -> redis.Redis:
        if self._redis is None:
            from gateway.model.store import connect

            self._redis = connect(self.config)
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


# The lab (gateway/lab) is dev only: the Debian package leaves it out, and so the `lab` commands
_HAVE_LAB = importlib.util.find_spec("gateway.lab") is not None


def _register() -> None:
    from gateway.cli import access, accounts, admin, ops, report, sessionlog, shaping, vouchers

    modules = [admin, access, shaping, vouchers, accounts, report, sessionlog, ops]
    if _HAVE_LAB:
        from gateway.cli import lab

        modules.insert(1, lab)
    for module in modules:
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
