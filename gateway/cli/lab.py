"""``hotspotctl lab``: the network-namespace lab that stands in for a library.

The lab (:mod:`gateway.lab`) is a development tool: it is left out of the installed
package, so on a router ``hotspotctl lab ...`` says so and exits 2. It is imported only
when a ``lab`` command runs.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from gateway.cli import EXIT_FAILED, EXIT_USAGE, fail, print_json

__all__ = ["COMMANDS"]

prefix_option = click.option(
    "--prefix",
    default=lambda: os.environ.get("HOTSPOT_LAB_PREFIX", "hs-"),
    show_default="hs- ($HOTSPOT_LAB_PREFIX)",
    help='Namespace prefix, e.g. "hs-t-" for a second lab beside the first.',
)


NOT_INSTALLED = (
    "the lab is a development tool and is not installed here (routers get the gateway only); "
    "run it from a git checkout: make venv && .venv/bin/hotspotctl lab up"
)


def _lab_package() -> tuple[Any, Any, Any]:
    """Return the lab's ``lab``, ``netns`` and ``topology`` modules; fail on a router (no lab)."""
    try:
        # deliberate: the lab is development-only and absent from installed routers
        from gateway.lab import lab, netns, topology
    except ModuleNotFoundError as err:
        if not (err.name or "").startswith("gateway.lab"):
            raise
        fail(NOT_INSTALLED, EXIT_USAGE)
    return lab, netns, topology


def _lab(prefix: str, clients: int | None = None, hq: bool = False, join: str = "", site: int = 0) -> Any:
    """Return the :class:`gateway.lab.lab.Lab` with ``prefix`` (the existing one, if it is up)."""
    lab_mod, netns, topology = _lab_package()
    try:
        if clients is None:
            existing = netns.spec_from_existing(prefix)
            spec = existing or topology.LabSpec(prefix=prefix)
        else:
            spec = topology.LabSpec(prefix=prefix, clients=clients, hq=hq, hq_of=join, site=site)
    except ValueError as err:
        fail(str(err), 2)
    return lab_mod.Lab(spec)


def _lab_error() -> type[Exception]:
    return _lab_package()[0].LabError


@click.group("lab")
def lab_group() -> None:
    """Build, inspect and remove the lab (network namespaces; needs root)."""


@lab_group.command("up")
@click.option("--clients", default=2, show_default=True, type=click.IntRange(1, 60), help="How many phones.")
@click.option(
    "--hq", is_flag=True, help="Also run the program's headquarters (FreeRADIUS + PostgreSQL) in <prefix>hq."
)
@click.option("--join", default="", metavar="PREFIX", help="Join the HQ of the lab with this prefix.")
@click.option(
    "--site", default=1, show_default=True, type=click.IntRange(1, 50), help="With --join: link number."
)
@prefix_option
def lab_up(clients: int, hq: bool, join: str, site: int, prefix: str) -> None:
    """Bring the lab up (idempotent: repairs what is missing, keeps what runs)."""
    lab = _lab(prefix, clients, hq, join, site if join else 0)
    try:
        lab.up(say=lambda line: click.echo(f"  {line}"))
    except _lab_error() as err:
        fail(str(err), EXIT_FAILED)
    status = lab.status()
    for ns, ip in status["clients"].items():
        click.echo(f"  {ns}: {ip or 'no DHCP lease yet'}")
    click.echo(f"lab up. Config: {lab.config_path}")


@lab_group.command("down")
@click.option("--wipe", is_flag=True, help="Also delete the lab's state (Redis data, logs).")
@prefix_option
def lab_down(wipe: bool, prefix: str) -> None:
    """Stop the lab's processes and delete its namespaces (state is kept unless --wipe)."""
    lab = _lab(prefix)
    try:
        lab.down(wipe=wipe, say=lambda line: click.echo(f"  {line}"))
    except _lab_error() as err:
        fail(str(err), EXIT_FAILED)
    click.echo("lab down.")


@lab_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@prefix_option
def lab_status(as_json: bool, prefix: str) -> None:
    """Show the lab's namespaces, processes and phones."""
    lab = _lab(prefix)
    status = lab.status()
    if as_json:
        print_json(status)
        return
    console = Console()
    if not status["namespaces"]:
        console.print(f"no lab with prefix {prefix!r} is up (hotspotctl lab up)")
        sys.exit(EXIT_FAILED)
    console.print(f"lab [bold]{prefix}[/] in {status['lab_dir']}")
    table = Table("process", "pid", "state")
    for name, proc in status["processes"].items():
        table.add_row(name, str(proc["pid"]), "[green]running[/]" if proc["running"] else "[red]stopped[/]")
    console.print(table)
    phones = Table("phone", "address")
    for ns, ip in status["clients"].items():
        phones.add_row(ns, ip or "-")
    console.print(phones)


@lab_group.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("host")
@click.argument("argv", nargs=-1, type=click.UNPROCESSED, required=True)
@prefix_option
def lab_exec(host: str, argv: tuple[str, ...], prefix: str) -> None:
    """Run a command on a lab host: gw, up, ap, hq or c1..cN (e.g. `lab exec c1 curl -sI example.com`)."""
    ns = host if host.startswith(prefix) else f"{prefix}{host}"
    os.execvp("ip", ["ip", "netns", "exec", ns, *argv])


COMMANDS = [lab_group]
