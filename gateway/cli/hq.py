"""``hotspotctl hq``: the program's side, run at HQ (next to FreeRADIUS and PostgreSQL).

- ``hq report``: the reach report (table, ``--csv``, ``--json``; ``--survey``, ``--vouchers``).
- ``hq web``: the HQ page (:mod:`hqweb`) under gunicorn; the ``hotspot-hq-web`` unit runs it.
- ``hq account add|remove|list``: the HQ page's staff accounts (argon2 hashes in a file).
"""

from __future__ import annotations

import csv
import os
import sys
from datetime import date, timedelta

import click
from rich.console import Console
from rich.table import Table

from gateway.cli import EXIT_FAILED, EXIT_UNAVAILABLE, EXIT_USAGE, fail, print_json
from gateway.days import month_of, next_month
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
        start = month_of(month)
        if start is None:
            fail(f'--month: "{month}" is not a month like 2026-11', EXIT_USAGE)
    else:
        start = date.today().replace(day=1)
    return start, next_month(start)


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


STAFF_FILE = "/etc/hotspot-hq/staff"
staff_option = click.option(
    "--staff-file", envvar="HOTSPOT_HQ_STAFF", default=STAFF_FILE, show_default=True, type=click.Path(),
    help="The HQ page's staff accounts ($HOTSPOT_HQ_STAFF).",
)  # fmt: skip


@hq_group.command("web")
@click.option("--db", envvar="HOTSPOT_HQ_DB", required=True, help="HQ's database, libpq conninfo.")
@click.option("--bind", default="127.0.0.1:8090", show_default=True, help="Address:port to serve on.")
@staff_option
@click.option(
    "--secret-file", envvar="HOTSPOT_HQ_SECRET_FILE", default="/var/lib/hotspot-hq/secret", show_default=True,
    type=click.Path(), help="The cookie-signing key (made on first start).",
)  # fmt: skip
@click.option("--timezone", envvar="HOTSPOT_HQ_TIMEZONE", default="Asia/Jakarta", show_default=True)
@click.option("--certfile", type=click.Path(exists=True, dir_okay=False), help="TLS certificate (PEM).")
@click.option("--keyfile", type=click.Path(exists=True, dir_okay=False), help="TLS key (PEM).")
@click.option(
    "--insecure-cookies", is_flag=True,
    help="Let the sign-in cookie travel over plain HTTP (a lab or a loopback test only).",
)  # fmt: skip
def hq_web(
    db: str, bind: str, staff_file: str, secret_file: str, timezone: str, certfile: str | None,
    keyfile: str | None, insecure_cookies: bool,
) -> None:  # fmt: skip
    """Serve the HQ page (the reach report for the program's staff) with gunicorn.

    One worker process with threads: the wrong-password limit is counted in that process.
    Serve it with TLS (--certfile/--keyfile, or behind a TLS proxy on loopback); sign-in
    cookies are Secure unless --insecure-cookies.
    """
    if bool(certfile) != bool(keyfile):
        fail("give --certfile and --keyfile together", EXIT_USAGE)
    env = {
        **os.environ,
        "HOTSPOT_HQ_DB": db, "HOTSPOT_HQ_STAFF": staff_file, "HOTSPOT_HQ_SECRET_FILE": secret_file,
        "HOTSPOT_HQ_TIMEZONE": timezone, "HOTSPOT_HQ_SECURE_COOKIES": "0" if insecure_cookies else "1",
    }  # fmt: skip
    try:
        from hqweb.settings import Settings  # the HQ page's own check, before gunicorn starts

        Settings.from_env(env)
    except ValueError as err:
        fail(str(err), EXIT_USAGE)
    argv = [
        sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "8", "--bind", bind,
        "--timeout", "90", "--graceful-timeout", "10", "--access-logfile", "-",
        "--forwarded-allow-ips", "127.0.0.1",
    ]  # fmt: skip
    if certfile and keyfile:
        argv += ["--certfile", certfile, "--keyfile", keyfile]
    argv.append("hqweb:create_app()")
    os.execve(sys.executable, argv, env)  # noqa: S606  # the unit's main process becomes gunicorn itself


@hq_group.group("account")
def hq_account() -> None:
    """The HQ page's staff accounts (program staff: Telkom, Coca-Cola Foundation Indonesia)."""


def _staff(path: str):
    from hqweb.staff import StaffFile  # the HQ page's accounts: loaded only by these commands

    return StaffFile(path)


@hq_account.command("add")
@click.argument("name")
@staff_option
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
def hq_account_add(name: str, staff_file: str, password_stdin: bool) -> None:
    """Add a staff account NAME, or set its password (ends its sign-ins)."""
    from hqweb.staff import StaffError

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(f"Password for {name}", hide_input=True, confirmation_prompt=True)
    try:
        new = _staff(staff_file).add(name.strip().lower(), password)
    except StaffError as err:
        fail(str(err), EXIT_USAGE)
    except OSError as err:
        fail(f"{staff_file}: {err.strerror}", EXIT_FAILED)
    click.echo(f"{'added' if new else 'password changed for'} {name.strip().lower()}")


@hq_account.command("remove")
@click.argument("name")
@staff_option
def hq_account_remove(name: str, staff_file: str) -> None:
    """Remove the staff account NAME (its sign-ins end at once)."""
    try:
        removed = _staff(staff_file).remove(name.strip().lower())
    except OSError as err:
        fail(f"{staff_file}: {err.strerror}", EXIT_FAILED)
    if not removed:
        fail(f"no staff account {name}", EXIT_FAILED)
    click.echo(f"removed {name}")


@hq_account.command("list")
@staff_option
@click.option("--json", "as_json", is_flag=True)
def hq_account_list(staff_file: str, as_json: bool) -> None:
    """List the staff accounts."""
    names = _staff(staff_file).names()
    if as_json:
        print_json({"accounts": names})
        return
    for name in names:
        click.echo(name)


COMMANDS = [hq_group]
