"""``hotspotctl reload``: re-read the config in the running daemons without dropping anyone."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import click

from gateway import config as config_mod
from gateway.cli import EXIT_FAILED, EXIT_UNAVAILABLE, EXIT_USAGE, Context, pass_ctx, print_json
from gateway.model import commands

__all__ = ["COMMANDS"]


@click.command("reload")
@click.option(
    "--timeout", default=5.0, show_default=True, type=click.FloatRange(0.1, 60), help="Seconds to wait."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
def reload(ctx: Context, timeout: float, as_json: bool) -> None:
    """Re-read the config in the running gateway and portal; nobody is logged out.

    The file is checked first with the daemons' loader: a file with any problem is refused
    (exit 2) and the running config stays in force. Keys bound at start (redis.url,
    metrics.listen, paths.*) need a restart; the reply names them.
    """
    path = ctx.resolve_config_path()
    try:
        config_mod.load(path)
    except config_mod.ConfigError as err:
        if as_json:
            print_json({"ok": False, "gateway": None, "portal": None, "problems": err.lines()})
        else:
            for line in err.lines():
                click.echo(line, err=True)
            click.echo("hotspotctl: config refused; the running config stays in force", err=True)
        raise SystemExit(EXIT_USAGE) from None
    reply = commands.request(ctx.redis, "reload", timeout)
    if reply is None:
        message = f"the gateway did not answer within {timeout:g}s; is it running? (hotspotctl status)"
        if as_json:
            print_json({"ok": False, "gateway": None, "portal": None, "error": message})
            raise SystemExit(EXIT_UNAVAILABLE)
        click.echo(f"hotspotctl: {message}", err=True)
        raise SystemExit(EXIT_UNAVAILABLE)
    portal = _reload_portal() if reply.get("ok") else "not reloaded"
    ok = bool(reply.get("ok")) and not portal.startswith("reload failed")
    if as_json:
        print_json({"ok": ok, "gateway": reply, "portal": portal})
    else:
        if reply.get("ok"):
            changed = ", ".join(reply.get("changed") or []) or "nothing"
            click.echo(f"gateway: reloaded (changed: {changed})")
            for key in reply.get("restart_needed") or []:
                click.echo(f"gateway: {key} changed; it takes effect after systemctl restart hotspot-gateway")
        else:
            for line in reply.get("problems") or [reply.get("error", "refused")]:
                click.echo(line, err=True)
            click.echo("hotspotctl: the gateway refused the config; the running one stays in force", err=True)
        click.echo(f"portal: {portal}")
    if not reply.get("ok"):
        raise SystemExit(EXIT_USAGE if reply.get("problems") else EXIT_FAILED)
    if not ok:
        raise SystemExit(EXIT_FAILED)


def _reload_portal() -> str:
    """Reload the portal through systemd (its ExecReload checks the file, then HUPs gunicorn)."""
    if not Path("/run/systemd/system").exists() or shutil.which("systemctl") is None:
        return "not running under systemd; restart it to apply"
    active = subprocess.run(
        ["systemctl", "is-active", "--quiet", "hotspot-portal.service"], capture_output=True
    ).returncode
    if active != 0:
        return "not running"
    result = subprocess.run(["systemctl", "reload", "hotspot-portal.service"], capture_output=True, text=True)
    return "reloaded" if result.returncode == 0 else f"reload failed: {result.stderr.strip()}"


COMMANDS = [reload]
