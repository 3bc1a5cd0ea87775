"""Admin commands about the installation itself: ``config check``, ``version``."""

from __future__ import annotations

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


COMMANDS = [config_group, version]
