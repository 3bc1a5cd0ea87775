"""``hotspotctl hq``: the program's side, run at HQ (next to FreeRADIUS and PostgreSQL)."""

from __future__ import annotations

import csv
import re
import sys
from datetime import date, timedelta

import click
from rich.console import Console
from rich.table import Table

from gateway.cli import EXIT_UNAVAILABLE, EXIT_USAGE, fail, print_json
from gateway.hq.reach import (
    COLUMNS,
    GROUPS,
    PERIODS,
    SURVEY_COLUMNS,
    VOUCHER_COLUMNS,
    ReportError,
    run_report,
)
from gateway.units import format_size

__all__ = ["COMMANDS"]

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def _period(month: str | None, day: str | None) -> tuple[date, date]:
    if month and day:
        fail("give --month or --day, not both", EXIT_USAGE)
    if day:
        try:
            start = date.fromisoformat(day)
        except ValueError:
            fail(f'--day: "{day}" is not a day like 2026-11-03', EXIT_USAGE)
        return start, start + timedelta(days=1)
    if month:
        match = _MONTH.match(month)
        if not match or not 1 <= int(match.group(2)) <= 12:
            fail(f'--month: "{month}" is not a month like 2026-11', EXIT_USAGE)
        start = date(int(match.group(1)), int(match.group(2)), 1)
    else:
        start = date.today().replace(day=1)
    following = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start, following


@click.group("hq")
def hq_group() -> None:
    """The program's headquarters: reach reports from the central RADIUS database."""


@hq_group.command("report")
@click.option(
    "--db",
    envvar="HOTSPOT_HQ_DB",
    required=True,
    help='HQ\'s database, a libpq conninfo such as "host=/run/postgresql dbname=radius" ($HOTSPOT_HQ_DB).',
)
@click.option("--month", help="A month, YYYY-MM (default: this month).")
@click.option("--day", help="A single day, YYYY-MM-DD.")
@click.option("--by", type=click.Choice(list(GROUPS)), default="library", show_default=True)
@click.option("--per", type=click.Choice(list(PERIODS)), default="month", show_default=True)
@click.option("--timezone", default="Asia/Jakarta", show_default=True, help="Where days begin.")
@click.option("--survey", is_flag=True, help="The survey's answers instead (anonymous day counts).")
@click.option("--vouchers", is_flag=True, help="Local vouchers used instead: sessions and vouchers per plan.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV on stdout.")
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
def hq_report(
    db: str, month: str | None, day: str | None, by: str, per: str, timezone: str, survey: bool,
    vouchers: bool, as_csv: bool, as_json: bool,
) -> None:  # fmt: skip
    """Sessions, unique devices, hours online, data, central accounts and sessions on local vouchers
    per library, district or province (or with --survey: the survey's answers; with --vouchers:
    local vouchers used per plan)."""
    since, until = _period(month, day)
    if survey and vouchers:
        fail("give --survey or --vouchers, not both", EXIT_USAGE)
    kind = "survey" if survey else "vouchers" if vouchers else "reach"
    try:
        rows = run_report(db, since, until, by=by, per=per, tz=timezone, kind=kind)
    except ReportError as err:
        fail(f"cannot make the report: {err}", EXIT_UNAVAILABLE)
    if survey and not (as_json or as_csv):
        table = Table("period", by, "question", "answer", "count")
        for row in rows:
            table.add_row(row["period"], row["group"], row["question"], row["answer"], str(row["count"]))
        Console().print(table)
        return
    if vouchers and not (as_json or as_csv):
        table = Table("period", by, "plan", "sessions", "vouchers")
        for row in rows:
            table.add_row(
                row["period"], row["group"], row["plan"], str(row["sessions"]), str(row["vouchers"])
            )
        Console().print(table)
        return
    if as_json:
        print_json(
            {"since": since.isoformat(), "until": until.isoformat(), "by": by, "per": per, "rows": rows}
        )
        return
    if as_csv:
        writer = csv.DictWriter(
            sys.stdout,
            fieldnames=list({"survey": SURVEY_COLUMNS, "vouchers": VOUCHER_COLUMNS}.get(kind, COLUMNS)),
            lineterminator="\n",
        )
        writer.writeheader()
        writer.writerows(rows)
        return
    table = Table(
        "period", by, "sessions", "devices", "hours", "data", "central accounts", "voucher sessions"
    )  # fmt: skip
    for row in rows:
        table.add_row(
            row["period"], row["group"], str(row["sessions"]), str(row["devices"]), f"{row['hours']:.1f}",
            format_size(row["bytes"]), str(row["central_accounts"]), str(row["voucher_sessions"]),
        )  # fmt: skip
    Console().print(table)


COMMANDS = [hq_group]
