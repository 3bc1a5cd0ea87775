"""Reports as CSV for the program's partners: one row per hour (a day) or per day (a month).

The first column names the library (``library.id``) so files from many libraries can be
stacked in one spreadsheet; the last row is the whole period. Data is in megabytes
(10^6 bytes), time online in hours, both with two decimals. Unique devices of the
total row are counted over the whole period (a phone seen on three days counts once),
so they are not the sum of the rows above.

``excel=True`` writes the same table for a spreadsheet opened by a double click on a PC set
to Indonesian: a UTF-8 byte-order mark (so Excel reads UTF-8), ``;`` between fields and
decimal commas (Excel with Indonesian regional settings expects both), and the total
after an empty line, labelled, so it is not one more data row in a sort, a filter or a
sum. The default (``,``, decimal points, total as the last row) stays the program's
machine format, which ``hotspotctl report --csv`` and the central team read.

The survey's answers follow, one column per question and answer, ``survey:<question>:<answer>``
(e.g. ``survey:age:16_30``): the config's questions in its order, then answers to
questions since dropped. An hour has no survey numbers (the counts are per day), so a
day's hourly rows leave them empty.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from gateway.model.reports import DayReport, MonthReport, Period, Totals

__all__ = ["BOM", "COLUMNS", "TOTAL_LABEL", "columns", "day_csv", "month_csv", "row", "survey_columns"]

COLUMNS = [
    "library", "period", "sessions", "voucher_sessions", "free_sessions", "unique_devices",
    "hours_online", "data_down_mb", "data_up_mb", "vouchers_issued", "vouchers_used",
]  # fmt: skip


def survey_columns(total: Totals) -> list[tuple[str, str]]:
    """Return the (question, answer) pairs of a report, from its total (which lists them all)."""
    return [(q, a) for q, answers in total.survey.items() for a in answers]


def columns(survey: Sequence[tuple[str, str]]) -> list[str]:
    """Return the header: :data:`COLUMNS`, then ``survey:<question>:<answer>`` per survey answer."""
    return COLUMNS + [f"survey:{q}:{a}" for q, a in survey]


def row(
    library: str, period: str, t: Totals, survey: Sequence[tuple[str, str]] = (), *, counts: bool = True
) -> list[str]:
    """Return one CSV row of totals ``t`` and the ``survey`` answers' counts (empty if not ``counts``)."""
    values = [
        library, period, t.sessions, t.sessions_voucher, t.sessions_free, t.devices,
        f"{t.hours:.2f}", f"{t.bytes_down / 1e6:.2f}", f"{t.bytes_up / 1e6:.2f}",
        t.vouchers_issued, t.vouchers_used,
    ]  # fmt: skip
    values += [t.survey.get(q, {}).get(a, 0) if counts else "" for q, a in survey]
    return [str(v) for v in values]


BOM = "\ufeff"
TOTAL_LABEL = "TOTAL"  # the excel form's total row, below an empty line


def _comma(values: list[str]) -> list[str]:
    """Decimal commas for a spreadsheet set to Indonesian ("1.50" -> "1,50")."""
    return [v.replace(".", ",") if v.replace(".", "", 1).isdigit() else v for v in values]


def _write(
    library: str, rows: list[Period], total_label: str, total: Totals, hourly: bool, excel: bool = False
) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", delimiter=";" if excel else ",")
    fix = _comma if excel else list
    survey = survey_columns(total)
    writer.writerow(columns(survey))
    for period in rows:
        writer.writerow(fix(row(library, period.label, period.totals, survey, counts=not hourly)))
    if excel:
        writer.writerow([])
        writer.writerow(fix(row(TOTAL_LABEL, total_label, total, survey)))
        return BOM + out.getvalue()
    writer.writerow(row(library, total_label, total, survey))
    return out.getvalue()


def day_csv(report: DayReport, library: str, *, excel: bool = False) -> str:
    """Return the day's report as CSV: one row per local hour, then the day."""
    day = report.day.isoformat()
    hours = [Period(f"{day} {p.label}", p.start, p.totals) for p in report.hours]
    return _write(library, hours, day, report.totals, hourly=True, excel=excel)


def month_csv(report: MonthReport, library: str, *, excel: bool = False) -> str:
    """Return the month's report as CSV: one row per day, then the month."""
    return _write(library, report.days, report.month, report.totals, hourly=False, excel=excel)
