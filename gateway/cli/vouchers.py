"""``hotspotctl voucher`` and ``hotspotctl plan``: issue, list, revoke, extend, export; plan switches.

The same domain functions as the librarian desk (:mod:`gateway.model.vouchers`,
:mod:`gateway.model.voucher_admin`, :mod:`gateway.model.plans`); every change is recorded in the
audit trail as ``cli:<unix user>``.
"""

from __future__ import annotations

import csv
import getpass
import os
import sys
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import click

from gateway.cli import EXIT_FAILED, EXIT_USAGE, Context, fail, pass_ctx, print_json
from gateway.cli.complete import complete_code, complete_plan
from gateway.cli.tables import Column, print_table
from gateway.model import audit
from gateway.model.clock import not_after_records
from gateway.model.plans import PlanUnavailable, disabled_plans, set_available
from gateway.model.voucher_admin import (
    code_for_id,
    extend_voucher,
    list_vouchers,
    purge_vouchers,
    revoke_batch,
    revoke_voucher,
    voucher_sessions,
)
from gateway.model.vouchers import (
    MAX_BATCH,
    STATES,
    Voucher,
    VoucherNotFound,
    VoucherRevoked,
    format_code,
    get_voucher,
    is_code,
    issue_batch,
    normalize_code,
)
from gateway.units import format_duration, format_rate, format_size, parse_duration, parse_size

__all__ = ["COMMANDS", "actor", "local_time"]


def actor() -> str:
    """Return who is running the CLI, for the audit trail: ``cli:<unix user>``."""
    return f"cli:{os.environ.get('SUDO_USER') or getpass.getuser()}"


def local_time(ts: float, tz: str) -> str:
    """Return ``ts`` as ``YYYY-MM-DD HH:MM`` in the library's zone ("" for 0)."""
    return datetime.fromtimestamp(ts, ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M") if ts else ""


class _Unit(click.ParamType):
    def __init__(self, name: str, parse):
        self.name = name
        self._parse = parse

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            return self._parse(value)
        except ValueError as err:
            self.fail(str(err), param, ctx)


EXPORT_FIELDS = [
    "code", "id", "plan", "state", "batch", "note", "issued_at", "issued_by", "valid_until",
    "first_used_at", "expires_at", "bytes_used", "revoked_at", "revoked_by", "online",
]  # fmt: skip
DURATION = _Unit("duration", parse_duration)
SIZE = _Unit("size", parse_size)


def _voucher_dict(v: Voucher, state: str, tz: str, online: int | None = None) -> dict:
    out = {
        "code": format_code(v.code), "id": v.id, "plan": v.plan, "state": state, "batch": v.batch,
        "note": v.note, "issued_at": local_time(v.issued_at, tz), "issued_by": v.issued_by,
        "valid_until": local_time(v.valid_until, tz), "first_used_at": local_time(v.first_used_at, tz),
        "expires_at": local_time(v.expires_at, tz), "bytes_used": v.bytes_used,
        "revoked_at": local_time(v.revoked_at, tz), "revoked_by": v.revoked_by,
    }  # fmt: skip
    if online is not None:
        out["online"] = online
    return out


def _lookup(ctx: Context, code: str) -> Voucher:
    """Return the voucher with this code, or with this public id (the one every log prints)."""
    normalized = normalize_code(code)
    voucher = get_voucher(ctx.redis, normalized) if is_code(normalized) else None
    if voucher is None:
        by_id = code_for_id(ctx.redis, code.strip())
        voucher = get_voucher(ctx.redis, by_id) if by_id else None
    if voucher is None:
        fail(f"no voucher with code or id {code!r}")
    return voucher


@click.group("voucher")
def voucher_group() -> None:
    """Issue, list, revoke, extend and export vouchers."""


@voucher_group.command("issue")
@click.option("--plan", "plan_name", required=True, shell_complete=complete_plan,
              help="Plan name from [plans] in the config.")  # fmt: skip
@click.option("--count", type=click.IntRange(1, MAX_BATCH), required=True, help=f"How many (1-{MAX_BATCH}).")
@click.option("--note", default="", help='A note for the batch, e.g. "kelas komputer Selasa".')
@click.option("--json", "as_json", is_flag=True, help="Print the batch as JSON.")
@pass_ctx
def issue(ctx: Context, plan_name: str, count: int, note: str, as_json: bool) -> None:
    """Issue a batch of vouchers (all or none) and print their codes."""
    config, r = ctx.config, ctx.redis
    plan = config.plans.get(plan_name)
    if plan is None:
        fail(f'no plan named "{plan_name}" (plans: {", ".join(config.plans)})', EXIT_USAGE)
    try:
        vouchers = issue_batch(r, plan, count, now=time.time(), issued_by=actor(), note=note)
    except PlanUnavailable as err:
        fail(f"{err}; switch it on with `hotspotctl plan enable {plan_name}`")
    except ValueError as err:
        fail(str(err), EXIT_USAGE)
    tz = config.library.timezone
    if as_json:
        print_json({"batch": vouchers[0].batch, "plan": plan.name, "note": vouchers[0].note,
                    "vouchers": [_voucher_dict(v, "unused", tz) for v in vouchers]})  # fmt: skip
        return
    print_table(
        [Column("code", key=True), Column("plan", key=True), Column("valid until")],
        [(format_code(v.code), v.plan, local_time(v.valid_until, tz)) for v in vouchers],
        title=f"batch {vouchers[0].batch}: {count} x {plan.label_for('en')}",
    )


@voucher_group.command("list")
@click.option("--state", type=click.Choice(STATES), help="Only vouchers in this state.")
@click.option("--plan", "plan_name", shell_complete=complete_plan, help="Only this plan's vouchers.")
@click.option("--batch", help="Only this batch's vouchers.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def list_cmd(ctx: Context, state, plan_name, batch, limit: int, as_json: bool) -> None:
    """List vouchers, newest first, with their state now."""
    rows, more = list_vouchers(
        ctx.redis, ctx.config.plans, now=time.time(), state=state, plan=plan_name, batch=batch, limit=limit
    )
    tz = ctx.config.library.timezone
    if as_json:
        print_json([_voucher_dict(row.voucher, row.state, tz, row.online) for row in rows])
        return
    columns = [
        Column("code", key=True), Column("plan", key=True), Column("state"), Column("online", drop=3),
        Column("issued", drop=5), Column("by", drop=4), Column("note", drop=2), Column("ends", drop=1),
    ]  # fmt: skip
    table_rows = []
    for row in rows:
        v = row.voucher
        ends = local_time(v.expires_at or v.valid_until, tz)
        table_rows.append((format_code(v.code), v.plan, row.state, str(row.online or ""),
                           local_time(v.issued_at, tz), v.issued_by, v.note, ends))  # fmt: skip
    print_table(columns, table_rows)
    if more:
        click.echo(f"(more than {limit}; use --limit or a filter)", err=True)


@voucher_group.command("show")
@click.argument("code", shell_complete=complete_code)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def show(ctx: Context, code: str, as_json: bool) -> None:
    """Show one voucher: its state, devices online and what was done with it."""
    v = _lookup(ctx, code)
    tz = ctx.config.library.timezone
    state = v.state(time.time(), ctx.config.plans.get(v.plan))
    online = voucher_sessions(ctx.redis, v)
    data = _voucher_dict(v, state, tz, len(online))
    history = [{"time": local_time(e.time, tz), "actor": e.actor, "action": e.action}
               for e in audit.recent(ctx.redis, target=v.id, limit=50)]  # fmt: skip
    if as_json:
        print_json({**data, "history": history})
        return
    for key, value in data.items():
        click.echo(f"{key:>14}: {value}")
    for entry in history:
        click.echo(f"{'':>14}  {entry['time']} {entry['actor']}: {entry['action']}")


@voucher_group.command("revoke")
@click.argument("code", required=False, shell_complete=complete_code)
@click.option("--batch", help="Revoke every still-usable voucher of this batch instead.")
@pass_ctx
def revoke(ctx: Context, code: str | None, batch: str | None) -> None:
    """Revoke a voucher (or a batch): it stops working and its devices are logged out."""
    if bool(code) == bool(batch):
        fail("give a CODE or --batch ID", EXIT_USAGE)
    now = time.time()
    if batch:
        try:
            revoked, ended = revoke_batch(ctx.redis, batch, ctx.config.plans, actor=actor(), now=now)
        except VoucherNotFound:
            fail(f"no batch {batch!r}")
        result = {"batch": batch, "revoked": revoked, "sessions_ended": ended}
    else:
        try:
            voucher, sessions = revoke_voucher(ctx.redis, code, actor=actor(), now=now)
        except VoucherNotFound:
            fail(f"no voucher {code!r}")
        except VoucherRevoked:
            fail("that voucher was already revoked")
        result = {"code": format_code(voucher.code), "id": voucher.id, "sessions_ended": len(sessions)}
    click.echo(", ".join(f"{k} {v}" for k, v in result.items()))


@voucher_group.command("extend")
@click.argument("code", shell_complete=complete_code)
@click.option("--time", "seconds", type=DURATION, default=0, help='Time to add, e.g. "30m" or "1d".')
@click.option("--data", type=SIZE, default=0, help='Data to add to its quota, e.g. "200MB".')
@pass_ctx
def extend(ctx: Context, code: str, seconds: int, data: int) -> None:
    """Give a voucher more time (from its end, or from now if used up) or more data."""
    try:
        v = extend_voucher(ctx.redis, code, ctx.config.plans, seconds=seconds, data=data,
                           actor=actor(), now=time.time())  # fmt: skip
    except VoucherNotFound:
        fail(f"no voucher {code!r}")
    except VoucherRevoked:
        fail("that voucher is revoked; issue a new one")
    except ValueError as err:
        fail(str(err), EXIT_USAGE)
    tz = ctx.config.library.timezone
    ends = local_time(v.expires_at, tz) or "-"
    click.echo(f"{format_code(v.code)}: valid until {local_time(v.valid_until, tz)}, ends {ends}")


@voucher_group.command("export")
@click.option("--csv", "as_csv", is_flag=True, default=True, help="CSV on stdout (the default).")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of CSV.")
@click.option("--state", type=click.Choice(STATES))
@click.option("--plan", "plan_name", shell_complete=complete_plan)
@click.option("--batch")
@pass_ctx
def export(ctx: Context, as_csv: bool, as_json: bool, state, plan_name, batch) -> None:
    """Write every voucher (codes included) as CSV or JSON, e.g. to print elsewhere."""
    rows, _ = list_vouchers(ctx.redis, ctx.config.plans, now=time.time(), state=state, plan=plan_name,
                            batch=batch, limit=10**9)  # fmt: skip
    tz = ctx.config.library.timezone
    data = [_voucher_dict(row.voucher, row.state, tz, row.online) for row in rows]
    if as_json:
        print_json(data)
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: _cell(v) for k, v in row.items()} for row in data)


def _cell(value: object) -> object:
    """Keep a spreadsheet from reading a note like ``=HYPERLINK(...)`` as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@voucher_group.command("purge")
@click.option("--older-than", "older_than", type=DURATION, required=True, help='e.g. "180d".')
@pass_ctx
def purge(ctx: Context, older_than: int) -> None:
    """Delete vouchers used up, expired or revoked before --older-than ago (reports keep their counts).

    "Ago" counts from now, or from a day after the newest session record if that is earlier
    (a clock far ahead after a power cut must not make recent vouchers look old)."""
    now = time.time()
    reference = not_after_records(ctx.redis, now)
    if reference < now:
        stamp = datetime.fromtimestamp(reference, ZoneInfo(ctx.config.library.timezone))
        click.echo(
            f"counting from {stamp:%Y-%m-%d %H:%M} (a day after the newest session record), not now", err=True
        )
    removed = purge_vouchers(ctx.redis, ctx.config.plans, older_than=older_than, actor=actor(), now=reference)
    click.echo(f"{removed} vouchers removed")


@click.group("plan")
def plan_group() -> None:
    """List plans; switch one off or on for new vouchers (admins)."""


@plan_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_ctx
def plan_list(ctx: Context, as_json: bool) -> None:
    """List the config's plans and whether new vouchers may be issued on them."""
    off = disabled_plans(ctx.redis)
    rows = [
        {"name": p.name, "label": p.label_for("id"), "duration": format_duration(p.duration),
         "validity": format_duration(p.validity), "quota": format_size(p.quota) if p.quota else "",
         "down": format_rate(p.down), "up": format_rate(p.up), "weight": p.weight,
         "max_devices": p.max_devices, "multi_day": p.multi_day, "available": p.name not in off}
        for p in ctx.config.plans.values()
    ]  # fmt: skip
    if as_json:
        print_json(rows)
        return
    # the name is what `plan enable/disable` and `voucher issue --plan` need: never cut
    drops = {"label": 3, "validity": 5, "weight": 6, "max_devices": 4, "multi_day": 7}
    columns = [
        Column(name.replace("_", " "), key=name == "name", drop=drops.get(name, 0))
        for name in (rows[0] if rows else ["name"])
    ]
    print_table(columns, [[_plain(v) for v in row.values()] for row in rows])


def _plain(value: object) -> str:
    """Return a table cell as people write it: yes/no, not Python's True/False."""
    return ("yes" if value else "no") if isinstance(value, bool) else str(value)


def _switch(ctx: Context, name: str, on: bool) -> None:
    if name not in ctx.config.plans:  # a typo is bad usage, as in `voucher issue --plan`
        fail(f'no plan named "{name}" (plans: {", ".join(ctx.config.plans)})', EXIT_USAGE)
    try:
        changed = set_available(ctx.redis, ctx.config.plans, name, on, actor=actor(), now=time.time())
    except PlanUnavailable as err:
        fail(str(err), EXIT_FAILED)
    state = "on" if on else "off"
    click.echo(f"plan {name} switched {state}" if changed else f"plan {name} was already {state}")


@plan_group.command("enable")
@click.argument("name", shell_complete=complete_plan)
@pass_ctx
def plan_enable(ctx: Context, name: str) -> None:
    """Allow new vouchers on plan NAME again."""
    _switch(ctx, name, True)


@plan_group.command("disable")
@click.argument("name", shell_complete=complete_plan)
@pass_ctx
def plan_disable(ctx: Context, name: str) -> None:
    """Stop new vouchers on plan NAME (vouchers already issued keep working)."""
    _switch(ctx, name, False)


COMMANDS = [voucher_group, plan_group]
