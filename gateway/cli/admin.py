"""Admin commands about the installation itself: ``config check``, ``self-check``, ``version``."""

from __future__ import annotations

import importlib
import pkgutil

import click

from gateway import __version__
from gateway import config as config_mod
from gateway.cli import EXIT_USAGE, Context, pass_ctx, print_json

__all__ = ["COMMANDS"]


@click.group("config")
def config_group() -> None:
    """Check the configuration file."""


@config_group.command("check")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
def config_check(ctx: Context, path: str | None, as_json: bool) -> None:
    """Validate the config with the daemons' own loader: one line per problem."""
    target = path or str(ctx.resolve_config_path())
    try:
        config = config_mod.load(target)
    except config_mod.ConfigError as err:
        if as_json:
            print_json(
                {
                    "ok": False,
                    "path": target,
                    "problems": [{"key": p.key, "message": p.message} for p in err.problems],
                }
            )
        else:
            for line in err.lines():
                click.echo(line, err=True)
        raise SystemExit(EXIT_USAGE) from None
    if as_json:
        print_json({"ok": True, "path": target, "plans": sorted(config.plans)})
    else:
        click.echo(f"{target}: OK ({len(config.plans)} plans: {', '.join(sorted(config.plans))})")


@click.command("version")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def version(as_json: bool) -> None:
    """Print the installed version."""
    if as_json:
        print_json({"name": "perpuseru-hotspot", "version": __version__})
        return
    click.echo(f"perpuseru-hotspot {__version__}")


# Every module of these packages must import; gateway.lab does not ship (the Debian package
# deletes it) and __main__ modules run their program when imported.
CHECKED_PACKAGES = ("gateway", "portal")
SKIPPED = ("gateway.lab",)
# loaded by name at run time, so no import of ours names them: the portal's gunicorn worker
# class ("gevent", portal/__main__.py), whose module needs `packaging` (a package once lacked it)
LOADED_BY_NAME = ("gunicorn.workers.ggevent",)


def import_everything() -> tuple[int, list[str]]:
    """Import every module of the program; return how many imported and one line per failure."""
    count, failures = 0, []
    for top in CHECKED_PACKAGES:
        package = importlib.import_module(top)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{top}."):
            name = info.name
            if name.rsplit(".", 1)[-1] == "__main__" or any(
                name == s or name.startswith(s + ".") for s in SKIPPED
            ):
                continue
            try:
                importlib.import_module(name)
            except Exception as err:  # noqa: BLE001 (any error is the finding: report it, go on)
                failures.append(f"{name}: {type(err).__name__}: {err}")
            else:
                count += 1
    for name in LOADED_BY_NAME:
        try:
            importlib.import_module(name)
        except Exception as err:  # noqa: BLE001 (as above)
            failures.append(f"{name}: {type(err).__name__}: {err}")
        else:
            count += 1
    return count, failures


@click.command("self-check")
@pass_ctx
def self_check(ctx: Context) -> None:
    """Check an installed version before it runs: its loader accepts the config, its modules import.

    The Debian package's postinst runs it after an install or upgrade and restarts the
    gateway and portal only if it passes (docs/fleet-ops.md).
    """
    target = str(ctx.resolve_config_path())
    problems = []
    try:
        config_mod.load(target)
    except config_mod.ConfigError as err:
        problems += [f"config: {line}" for line in err.lines()]
    count, failures = import_everything()
    problems += [f"module {line}" for line in failures]
    if problems:
        for line in problems:
            click.echo(f"self-check: {line}", err=True)
        click.echo(f"perpuseru-hotspot {__version__}: self-check FAILED ({len(problems)} problems)", err=True)
        raise SystemExit(1)
    click.echo(f"perpuseru-hotspot {__version__}: self-check OK ({target}, {count} modules import)")


COMMANDS = [config_group, self_check, version]
