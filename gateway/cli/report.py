"""``hotspotctl report``: the program's day or month report as a table, CSV or JSON.

``hotspotctl report --month 2026-11 --csv > sukabumi-2026-11.csv`` writes what the desk's
"download CSV" gives: one row per day, then the month. Days are the library's local days.
``--json`` gives the survey's answers as ``{"survey": {question: {answer: count}}}``.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import date, datetime
from zoneinfo import ZoneInfo

import click
from rich.console import Console
from rich.table import Table

from gateway.cli import EXIT_USAGE, Context, fail, pass_ctx, print_json
from gateway.days import month_of
from gateway.model.report_csv import day_csv, month_csv
from gateway.model.reports import Period, Totals, day_report, month_report
from gateway.model.sessions import online_sessions
from gateway.units import format_size

__all__ = ["COMMANDS"]


def _totals_dict(t: Totals) -> dict:
    out = {k: v for k, v in asdict(t).items() if k != "survey"}
    out["hours"] = round(t.hours, 2)
    out["survey"] = {question: dict(answers) for question, answers in t.survey.items()}
    return out


def _parse_month(text: str) -> tuple[int, int]:
    first = month_of(text)
    if first is None:
        fail(f'--month: "{text}" is not a month like 2026-11', EXIT_USAGE)
    return first.year, first.month


def _parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f'--day: "{text}" is not a day like 2026-11-03', EXIT_USAGE)
        raise  # unreachable: fail exits


@click.command("report")
@click.option("--month", help="A month, YYYY-MM (default: this month).")
@click.option("--day", help="A single day, YYYY-MM-DD, one row per hour.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV on stdout (for spreadsheets).")
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
@pass_ctx
def report(ctx: Context, month: str | None, day: str | None, as_csv: bool, as_json: bool) -> None:
    """Report sessions, unique devices, hours online, data, vouchers and survey answers."""
    if month and day:
        fail("give --month or --day, not both", EXIT_USAGE)
    if as_csv and as_json:
        fail("give --csv or --json, not both", EXIT_USAGE)
    config, r = ctx.config, ctx.redis
    tz = ZoneInfo(config.library.timezone)
    now = time.time()
    online = online_sessions(r)
    questions = config.portal.survey.questions  # listed even when switched off: older answers count
    if day:
        result = day_report(r, _parse_day(day), tz, now=now, online=online, questions=questions)
        rows, label, csv_text = result.hours, result.day.isoformat(), None
        if as_csv:
            csv_text = day_csv(result, config.library.id)
    else:
        today = datetime.fromtimestamp(now, tz)
        year, number = _parse_month(month) if month else (today.year, today.month)
        result = month_report(r, year, number, tz, now=now, online=online, questions=questions)
        rows, label, csv_text = result.days, result.month, None
        if as_csv:
            csv_text = month_csv(result, config.library.id)
    if csv_text is not None:
        click.echo(csv_text, nl=False)
        return
    if as_json:
        print_json({"library": config.library.id, "period": label, "totals": _totals_dict(result.totals),
                    "rows": [{"period": p.label, **_totals_dict(p.totals)} for p in rows]})  # fmt: skip
        return
    _table(label, rows, result.totals)


def _table(label: str, rows: list[Period], totals: Totals) -> None:
    table = Table(title=f"{label}: {totals.sessions} sessions, {totals.devices} devices")
    for column in ("period", "sessions", "devices", "hours", "down", "up", "issued", "used"):
        table.add_column(column, justify="left" if column == "period" else "right")

    def cells(name: str, t: Totals) -> list[str]:
        return [name, str(t.sessions), str(t.devices), f"{t.hours:.1f}", format_size(t.bytes_down),
                format_size(t.bytes_up), str(t.vouchers_issued), str(t.vouchers_used)]  # fmt: skip

    for period in rows:
        table.add_row(*cells(period.label, period.totals))
    table.add_row(*cells("total", totals), style="bold")
    Console().print(table)
    for question, answers in totals.survey.items():
        if any(answers.values()):
            click.echo(f"survey {question}: " + ", ".join(f"{k} {v}" for k, v in answers.items()))


COMMANDS = [report]
