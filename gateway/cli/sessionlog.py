"""``hotspotctl sessions`` (export the session log) and ``hotspotctl logs`` (read and follow it)."""

from __future__ import annotations

import csv
import json
import re
import sys
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import click
import redis
from rich import box
from rich.console import Console

from gateway.cli import EXIT_USAGE, Context, fail, pass_ctx, print_json
from gateway.cli.tables import Column, print_table
from gateway.daemon.sessionlog import SessionLog, to_record
from gateway.model import keys
from gateway.model.sessions import normalize_mac
from gateway.model.store import connect
from gateway.units import format_duration, format_size, parse_duration

__all__ = ["COMMANDS", "When", "merge_sessions"]

COLUMNS = (
    "started_at", "ended_at", "duration", "library", "kind", "plan", "voucher_id",
    "mac", "ip", "bytes_down", "bytes_up", "reason", "sid",
)  # fmt: skip


class When(click.ParamType):
    """A moment: ``2026-11-24``, ``2026-11-24 14:30``, ``today``, ``yesterday`` or ``2h``/``7d`` ago.

    Converted to a function of the library's time zone, which is known only once the
    config is loaded.
    """

    name = "when"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None):
        if callable(value):
            return value
        text = str(value).strip().lower()
        if text in ("today", "yesterday"):
            back = 0 if text == "today" else 1

            def midnight(tz: ZoneInfo, now: datetime) -> datetime:
                day = now.astimezone(tz).date() - timedelta(days=back)
                return datetime(day.year, day.month, day.day, tzinfo=tz)

            return midnight
        if re.match(r"^\d+[smhdw]", text):
            try:
                seconds = parse_duration(text)
            except ValueError as err:
                self.fail(str(err), param, ctx)
            return lambda tz, now: now - timedelta(seconds=seconds)
        try:
            moment = datetime.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(
                f'"{value}" is not a time; use e.g. 2026-11-24, "2026-11-24 14:30", today, yesterday or 7d',
                param,
                ctx,
            )
        return lambda tz, now: moment if moment.tzinfo else moment.replace(tzinfo=tz)


def merge_sessions(records) -> list[dict]:
    """Return one row per session from start/end records (ongoing ones have no ``ended_at``)."""
    rows: dict[str, dict] = {}
    for rec in records:
        row = rows.setdefault(rec.get("sid", rec.get("id")), {c: "" for c in COLUMNS})
        for key in ("library", "kind", "plan", "voucher_id", "mac", "ip", "sid"):
            row[key] = rec.get(key, row[key]) or row[key]
        if rec.get("event") == "start":
            row["started_at"] = row["started_at"] or rec.get("time", "")
        elif rec.get("event") == "end":
            row.update(
                started_at=rec.get("started_at", row["started_at"]),
                ended_at=rec.get("time", ""),
                duration=rec.get("duration", 0),
                bytes_up=rec.get("bytes_up", 0),
                bytes_down=rec.get("bytes_down", 0),
                reason=rec.get("reason", ""),
            )
    return sorted(rows.values(), key=lambda row: (row["started_at"], row["sid"]))


@click.command("sessions")
@click.option("--since", type=When(), default="today", show_default=True, help="From this moment.")
@click.option("--until", type=When(), default=None, help="Up to this moment [default: now].")
@click.option("--mac", default=None, help="Only this device.")
@click.option("--voucher", "voucher_id", default=None, help="Only sessions of this voucher id.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (a header line, then one line a session).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@pass_ctx
def sessions(ctx: Context, since, until, mac, voucher_id, as_csv: bool, as_json: bool) -> None:
    """Export sessions from the session log: one row per session started or ended in the range.

    Times are the library's (library.timezone). Examples: `sessions --since yesterday --until today
    --csv > kemarin.csv`, `sessions --since 2026-11-01 --until 2026-12-01 --json`.
    """
    if as_csv and as_json:
        raise click.UsageError("give --csv or --json, not both")
    config = ctx.config
    session_log = SessionLog.from_config(config)
    now = datetime.now(session_log.tz)
    low = since(session_log.tz, now)
    high = until(session_log.tz, now) if until else now + timedelta(seconds=1)
    if high <= low:
        fail(f"--until ({high.isoformat()}) is not after --since ({low.isoformat()})", EXIT_USAGE)
    records = list(session_log.records(low, high))
    records += _not_on_disk_yet(config, session_log, low, high)
    rows = merge_sessions(records)
    if mac:
        try:
            wanted = normalize_mac(mac)
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--mac") from None
        rows = [row for row in rows if row["mac"] == wanted]
    if voucher_id:
        rows = [row for row in rows if row["voucher_id"] == voucher_id]
    if as_json:
        print_json(rows)
    elif as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        columns = [
            Column("started"), Column("ended"), Column("time", drop=2), Column("plan", key=True),
            Column("voucher", key=True), Column("mac", key=True), Column("ip", key=True),
            Column("down", drop=3), Column("up", drop=4), Column("end", drop=1),
        ]  # fmt: skip
        table_rows = [
            (
                _short(row["started_at"])[5:16], _short(row["ended_at"])[5:16] or "online",
                format_duration(float(row["duration"] or 0)) if row["ended_at"] else "",
                row["plan"], row["voucher_id"], row["mac"], row["ip"],
                format_size(int(row["bytes_down"] or 0)), format_size(int(row["bytes_up"] or 0)),
                row["reason"],
            )
            for row in rows
        ]  # fmt: skip
        # piped (to less, a file): do not squeeze the table into 80 columns
        console = Console(width=None if sys.stdout.isatty() else 160)
        print_table(columns, table_rows, console=console, box=box.SIMPLE_HEAD)
        console.print(
            f"{len(rows)} sessions from {low:%Y-%m-%d %H:%M} to {high:%Y-%m-%d %H:%M} ({config.library.id})"
        )


@click.command("logs")
@click.option(
    "-n", "--lines", "count", default=20, show_default=True, type=click.IntRange(0), help="How many."
)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new records as they happen (Ctrl-C stops).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines (one record a line).")
@pass_ctx
def logs(ctx: Context, count: int, follow: bool, as_json: bool) -> None:
    """Show the last session-log records (start and end of sessions); -f follows them live.

    The daemons' own logs are in the journal: `journalctl -u hotspot-gateway -f`.
    """
    config = ctx.config
    session_log = SessionLog.from_config(config)
    recent = _last_records(session_log, count) if count else []
    for record in recent:
        _print_record(record, as_json)
    if not follow:
        return
    r = ctx.redis
    position = recent[-1]["id"] if recent else "$"
    if recent:
        # what is in the stream but not on disk yet (the gateway writes every pass)
        newer = r.xrange(keys.EVENTS, f"({position}", "+")
        for entry_id, fields in newer:
            _print_record(to_record(entry_id, fields, config.library.id, session_log.tz), as_json)
            position = entry_id
    try:
        while True:
            found = r.xread({keys.EVENTS: position}, count=100, block=1000)
            for _stream, entries in found or []:
                for entry_id, fields in entries:
                    _print_record(to_record(entry_id, fields, config.library.id, session_log.tz), as_json)
                    position = entry_id
    except KeyboardInterrupt:
        return


def _last_records(session_log: SessionLog, count: int) -> list[dict]:
    found: list[dict] = []
    for _day, path in reversed(session_log.files()):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        batch = []
        for line in lines[-count:]:
            if line.endswith("\n"):
                try:
                    batch.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        found = batch + found
        if len(found) >= count:
            break
    return found[-count:]


def _print_record(record: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(record, ensure_ascii=False))
        return
    when = _short(record.get("time", ""))
    base = f"{when}  {record.get('event', '?'):5}  {record.get('mac', ''):17}  {record.get('ip', ''):15}"
    base += f"  {record.get('plan', '')}  {record.get('voucher_id', '') or '-'}"
    if record.get("event") == "end":
        base += (
            f"  {format_duration(float(record.get('duration', 0)))}"
            f"  down {format_size(int(record.get('bytes_down', 0)))}"
            f"  up {format_size(int(record.get('bytes_up', 0)))}  {record.get('reason', '')}"
        )
    click.echo(base)
    sys.stdout.flush()


def _not_on_disk_yet(config, session_log: SessionLog, low: datetime, high: datetime) -> list[dict]:
    """Return the records in Redis the gateway has not written to disk yet (it does every pass).

    So an export is exact up to now. Without Redis, the files are all there is.
    """
    files = session_log.files()
    on_disk = _last_records(session_log, 1) if files else []
    after = f"({on_disk[-1]['id']}" if on_disk else "-"
    try:
        entries = connect(config, timeout=2).xrange(keys.EVENTS, after, "+")
    except redis.RedisError:
        return []
    records = (to_record(i, f, config.library.id, session_log.tz) for i, f in entries)
    return [rec for rec in records if low.timestamp() <= rec.get("ts", 0) < high.timestamp()]


def _short(iso: str) -> str:
    return iso[:19].replace("T", " ") if iso else ""


@click.command("prune-logs")
@pass_ctx
def prune_logs(ctx: Context) -> None:
    """Delete session-log files older than session_log.retention_days (the daily timer runs this).

    The gateway prunes once a day while it runs; this covers a router whose gateway is stopped.
    """
    session_log = SessionLog.from_config(ctx.config)
    today = datetime.now(ZoneInfo(ctx.config.library.timezone)).date()
    removed = session_log.prune(today)
    click.echo(f"{len(removed)} session-log files older than {session_log.retention_days} days removed")


COMMANDS = [sessions, logs, prune_logs]
