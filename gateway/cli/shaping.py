"""``hotspotctl limit`` (throttle one client live) and ``hotspotctl top`` (live rates)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import click
import redis
from rich.console import Console
from rich.live import Live
from rich.table import Table

from gateway.cli import EXIT_FAILED, EXIT_UNAVAILABLE, EXIT_USAGE, Context, fail, pass_ctx, print_json
from gateway.cli.access import _find_online, _target
from gateway.cli.complete import complete_online
from gateway.cli.vouchers import actor
from gateway.model import commands, keys, limits
from gateway.model.sessions import Session, online_sessions
from gateway.shaping import rates
from gateway.units import format_rate, format_size

__all__ = ["COMMANDS"]


class RatesParam(click.ParamType):
    """Download/upload caps: ``1mbit/512kbit`` (or one rate for both)."""

    name = "DOWN/UP"

    def convert(self, value, param, ctx):
        try:
            return limits.parse_limit(value)
        except ValueError as err:
            self.fail(str(err), param, ctx)


@click.command("limit")
@click.argument("client", shell_complete=complete_online)
@click.argument("rates", type=RatesParam(), required=False)
@click.option("--reset", is_flag=True, help="Give the client its plan's caps back.")
@pass_ctx
def limit(ctx: Context, client: str, rates: tuple[int, int] | None, reset: bool) -> None:
    """Throttle (or un-throttle) one online client now, without a reconnect.

    CLIENT is its MAC or its IP; RATES is DOWN/UP as in the config, e.g.
    `hotspotctl limit 02:00:00:00:01:01 1mbit/512kbit`; `--reset` restores the plan's
    caps. The limit stays until the session ends, across gateway restarts.
    """
    if (rates is None) == (not reset):
        raise click.UsageError("give RATES (e.g. 1mbit/512kbit) or --reset, not both")
    uplink = ctx.config.uplink
    if rates is not None and (rates[0] > uplink.down or rates[1] > uplink.up):
        asked = f"{format_rate(rates[0])}/{format_rate(rates[1])}"
        line = f"{format_rate(uplink.down)}/{format_rate(uplink.up)}"
        fail(f"{asked} is more than the uplink ({line}): it would limit nothing", EXIT_USAGE)
    r = ctx.redis
    session = _find_online(ctx, *_target(client))
    if session is None:
        fail(f"{client}: no client online with that address")
    try:
        change = None if reset else rates
        session = limits.limit_client(r, session.sid, change, actor=actor(), now=time.time())
    except limits.LimitError as err:
        fail(str(err))
    caps = f"{format_rate(session.down)} down / {format_rate(session.up)} up"
    reply = commands.request(r, "reconcile", ctx.config.gateway.ack_timeout, sid=session.sid)
    if reply is None:
        click.echo(f"{session.mac}: saved {caps}; the gateway did not answer, it applies it when it runs")
        raise SystemExit(EXIT_UNAVAILABLE)
    click.echo(f"{session.mac} ({session.ip}): {caps}" + (" (plan caps)" if reset else ""))


@dataclass(frozen=True)
class Row:
    session: Session
    rate_down: float | None
    rate_up: float | None
    limited: bool


def _kernel_counters(ctx: Context) -> dict[int, tuple[int, int]] | None:
    """Return slot -> (down, up) bytes from the kernel, or None if they cannot be read here."""
    if os.geteuid() != 0:
        return None
    # deliberate: pyroute2 costs ~160 ms at start-up and is needed only as root, for live counters
    from gateway.shaping.apply import read_counters

    return read_counters(ctx.config)


def _sample(ctx: Context, interval: float) -> list[Row]:
    """Return one row per online client with its rates over the next ``interval`` seconds."""
    r = ctx.redis
    started = time.monotonic()
    before = _kernel_counters(ctx)
    time.sleep(interval)
    after = _kernel_counters(ctx) if before is not None else None
    elapsed = max(time.monotonic() - started, 1e-3)
    sessions = online_sessions(r)
    with r.pipeline(transaction=False) as pipe:
        for s in sessions:
            pipe.hmget(keys.session(s.sid), [rates.RATE_DOWN, rates.RATE_UP, limits.PLAN_DOWN])
        extras = pipe.execute()
    rows = []
    for s, (rate_down, rate_up, plan_down) in zip(sessions, extras, strict=True):
        if before is not None and after is not None and s.slot in before and s.slot in after:
            (down0, up0), (down1, up1) = before[s.slot], after[s.slot]
            now = (max(0.0, (down1 - down0) * 8 / elapsed), max(0.0, (up1 - up0) * 8 / elapsed))
        else:  # the gateway's last pass
            now = (float(rate_down) if rate_down else None, float(rate_up) if rate_up else None)
        rows.append(Row(s, now[0], now[1], plan_down is not None))
    rows.sort(key=lambda row: -((row.rate_down or 0) + (row.rate_up or 0)))
    return rows


def _rate(value: float | None, cap: int) -> str:
    now = "-" if value is None else format_rate(value)
    return f"{now} / {format_rate(cap)}"


def _table(ctx: Context, rows: list[Row]) -> Table:
    uplink = ctx.config.uplink
    total_down = sum(row.rate_down or 0 for row in rows)
    total_up = sum(row.rate_up or 0 for row in rows)
    table = Table(
        title=f"{len(rows)} online · down {format_rate(total_down)} of {format_rate(uplink.down)}"
        f" · up {format_rate(total_up)} of {format_rate(uplink.up)}",
        title_justify="left",
    )
    for column in ("MAC", "IP", "plan", "down now / cap", "up now / cap", "used", "quota left"):
        table.add_column(column, justify="right" if "/" in column or column == "used" else "left")
    for row in rows:
        s = row.session
        left = s.bytes_left()
        table.add_row(
            s.mac,
            s.ip,
            s.plan + (" [yellow](limited)[/]" if row.limited else ""),
            _rate(row.rate_down, s.down),
            _rate(row.rate_up, s.up),
            format_size(s.bytes_down + s.bytes_up),
            "-" if left is None else format_size(left),
        )
    return table


@click.command("top")
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(0.2, 60), help="Seconds.")
@click.option("--once", is_flag=True, help="Print one sample and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print one sample as JSON and exit.")
@pass_ctx
def top(ctx: Context, interval: float, once: bool, as_json: bool) -> None:
    """Show every online client's current download and upload rate, refreshing.

    Rates come from the kernel's counters when run as root on the router, else from
    the gateway's last pass. Ctrl-C quits.
    """
    if as_json:
        rows = _sample(ctx, interval)
        print_json(
            [
                {
                    "mac": row.session.mac, "ip": row.session.ip, "plan": row.session.plan,
                    "rate_down": row.rate_down, "rate_up": row.rate_up, "cap_down": row.session.down,
                    "cap_up": row.session.up, "bytes_down": row.session.bytes_down,
                    "bytes_up": row.session.bytes_up, "limited": row.limited,
                }
                for row in rows
            ]
        )  # fmt: skip
        return
    console = Console()
    if once:
        console.print(_table(ctx, _sample(ctx, interval)))
        return
    try:
        with Live(_table(ctx, []), console=console, auto_refresh=False) as live:
            while True:
                live.update(_table(ctx, _sample(ctx, interval)), refresh=True)
    except KeyboardInterrupt:
        pass
    except redis.RedisError as err:
        fail(f"Redis: {err}", EXIT_FAILED)


COMMANDS = [limit, top]
