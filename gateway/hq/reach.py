"""Central reach reports: sessions, devices, hours and data from ``radacct``, per library,
district or province, per day or month.

:func:`reach_sql` builds the query (pure; the grouping and period come from fixed tables,
the dates and time zone travel as psql variables, never spliced into the text) and
:func:`run_report` runs it with ``psql --csv`` against HQ's database. Devices are counted
by Calling-Station-Id, which routers send as a per-library keyed hash by default, so HQ
counts devices without ever holding a MAC (see docs/fleet.md, Privacy).
"""

from __future__ import annotations

import csv
import io
import subprocess
from datetime import date

__all__ = [
    "COLUMNS",
    "GROUPS",
    "PERIODS",
    "KINDS",
    "SURVEY_COLUMNS",
    "VOUCHER_COLUMNS",
    "ReportError",
    "parse_rows",
    "reach_sql",
    "run_report",
    "survey_sql",
    "vouchers_sql",
]

GROUPS = {
    "library": "r.realm",
    "district": "l.district",
    "province": "l.province",
}
PERIODS = ("day", "month")
COLUMNS = ("period", "group", "sessions", "devices", "hours", "bytes", "central_accounts", "voucher_sessions")
_INTS = ("sessions", "devices", "bytes", "central_accounts", "voucher_sessions")
KINDS = ("reach", "vouchers", "survey", "libraries")
LIBRARIES_SQL = "SELECT id, name, district, province FROM library ORDER BY id;"
# a local voucher's session: the router sends User-Name "voucher:<voucher id>" (docs/fleet.md)
_VOUCHER = "r.username LIKE 'voucher:%' AND r.acctauthentic = 'Local'"


class ReportError(Exception):
    """The report could not be made (psql missing, database unreachable, bad query)."""


def _grouping(by: str, per: str) -> tuple[str, str]:
    """Return the SQL column grouped ``by`` and the period's ``to_char`` format; ValueError if
    either is not one of :data:`GROUPS` / :data:`PERIODS` (they are spliced into the query)."""
    if by not in GROUPS:
        raise ValueError(f"by must be one of {', '.join(GROUPS)}, got {by!r}")
    if per not in PERIODS:
        raise ValueError(f"per must be one of {', '.join(PERIODS)}, got {per!r}")
    return GROUPS[by], "YYYY-MM-DD" if per == "day" else "YYYY-MM"


def reach_sql(by: str, per: str) -> str:
    """Return the report query grouped ``by`` library/district/province ``per`` day/month.

    psql variables: ``since`` and ``until`` (dates, until exclusive) and ``tz`` (the
    program's time zone, for day and month boundaries).
    """
    group, fmt = _grouping(by, per)
    return f"""
SELECT to_char(date_trunc('{per}', r.acctstarttime AT TIME ZONE :'tz'), '{fmt}') AS period,
       COALESCE(NULLIF({group}, ''), '(unknown)') AS "group",
       count(*) AS sessions,
       count(DISTINCT NULLIF(r.callingstationid, '')) AS devices,
       round(COALESCE(sum(r.acctsessiontime), 0) / 3600.0, 2) AS hours,
       COALESCE(sum(r.acctinputoctets + r.acctoutputoctets), 0) AS bytes,
       count(DISTINCT r.username) FILTER (WHERE r.acctauthentic = 'RADIUS') AS central_accounts,
       count(*) FILTER (WHERE {_VOUCHER}) AS voucher_sessions
FROM radacct r
LEFT JOIN library l ON l.id = r.realm
WHERE r.acctstarttime >= (:'since'::date)::timestamp AT TIME ZONE :'tz'
  AND r.acctstarttime < (:'until'::date)::timestamp AT TIME ZONE :'tz'
GROUP BY 1, 2
ORDER BY 1, 2;
"""


SURVEY_COLUMNS = ("period", "group", "question", "answer", "count")
VOUCHER_COLUMNS = ("period", "group", "plan", "sessions", "vouchers")


def _class_text(column: str) -> str:
    """Return SQL for ``column`` (radacct.class) as text: FreeRADIUS writes an octets attribute as
    "0x<hex>" (decoded here); anything else is taken as it is."""
    return (
        f"CASE WHEN {column} ~ '^0x([0-9a-fA-F]{{2}})+$' "
        f"THEN encode(decode(substr({column}, 3), 'hex'), 'escape') ELSE COALESCE({column}, '') END"
    )


def vouchers_sql(by: str, per: str) -> str:
    """Return the query of local vouchers used: sessions and distinct vouchers per plan.

    A session is a local voucher's by its User-Name (``voucher:<voucher id>``); its plan is
    the Class the router sent (``voucher:<plan>``, in ``radacct.class``), "(unknown)" for
    records from routers that did not send one. The rows are grouped by the raw class first
    and the few groups decoded after (a voucher keeps one plan, so its class is one value).
    Same psql variables as :func:`reach_sql`.
    """
    group, fmt = _grouping(by, per)
    return f"""
SELECT v.period, v."group",
       COALESCE(NULLIF(substring({_class_text("v.class")} from '^voucher:(.*)$'), ''), '(unknown)') AS plan,
       sum(v.sessions) AS sessions, sum(v.vouchers) AS vouchers
FROM (
  SELECT to_char(date_trunc('{per}', r.acctstarttime AT TIME ZONE :'tz'), '{fmt}') AS period,
         COALESCE(NULLIF({group}, ''), '(unknown)') AS "group", r.class,
         count(*) AS sessions, count(DISTINCT r.username) AS vouchers
  FROM radacct r
  LEFT JOIN library l ON l.id = r.realm
  WHERE r.acctstarttime >= (:'since'::date)::timestamp AT TIME ZONE :'tz'
    AND r.acctstarttime < (:'until'::date)::timestamp AT TIME ZONE :'tz'
    AND {_VOUCHER}
  GROUP BY 1, 2, 3
) v
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3;
"""


def survey_sql(by: str, per: str) -> str:
    """Return the survey query: answers counted per period, group, question and answer.

    The counts are the libraries' anonymous day totals (``survey_count``); the same psql
    variables as :func:`reach_sql` (``tz`` is not needed: a count's day is the library's).
    """
    group, fmt = _grouping(by, per)
    group = "s.library" if by == "library" else group
    return f"""
SELECT to_char(date_trunc('{per}', s.day), '{fmt}') AS period,
       COALESCE(NULLIF({group}, ''), '(unknown)') AS "group",
       s.question, s.answer, sum(s.n) AS count
FROM survey_count s
LEFT JOIN library l ON l.id = s.library
WHERE s.day >= :'since'::date AND s.day < :'until'::date
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4;
"""


def parse_rows(text: str) -> list[dict]:
    """Return psql's CSV output as rows with numbers as numbers."""
    rows = []
    for raw in csv.DictReader(io.StringIO(text)):
        row: dict = {key: raw.get(key, "") for key in COLUMNS}
        for key in _INTS:
            row[key] = int(row[key] or 0)
        row["hours"] = float(row["hours"] or 0)
        rows.append(row)
    return rows


def run_report(
    conninfo: str, since: date, until: date, *, by: str = "library", per: str = "month",
    tz: str = "Asia/Jakarta", psql: str = "psql", timeout: float = 120, kind: str = "reach",
) -> list[dict]:  # fmt: skip
    """Run the report (``kind`` "reach", "vouchers" or "survey"; "libraries": the library
    metadata, for names) against HQ's database (``conninfo``, libpq syntax); return its rows."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    sql = (
        LIBRARIES_SQL
        if kind == "libraries"
        else {"reach": reach_sql, "vouchers": vouchers_sql, "survey": survey_sql}[kind](by, per)
    )
    argv = [
        psql, "-X", "-q", "--csv", "-v", "ON_ERROR_STOP=1",
        "-v", f"since={since.isoformat()}", "-v", f"until={until.isoformat()}", "-v", f"tz={tz}",
        "-d", conninfo, "-f", "-",
    ]  # fmt: skip
    try:
        result = subprocess.run(argv, input=sql, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise ReportError(f"{psql}: not installed (Debian: postgresql-client)") from None
    except subprocess.TimeoutExpired:
        raise ReportError(f"the report took longer than {timeout:.0f}s") from None
    if result.returncode != 0:
        raise ReportError(result.stderr.strip() or f"psql exited with {result.returncode}")
    if kind == "libraries":
        return list(csv.DictReader(io.StringIO(result.stdout)))
    if kind == "survey":
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        return [{**row, "count": int(row["count"] or 0)} for row in rows]
    if kind == "vouchers":
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        return [{**row, **{k: int(row[k] or 0) for k in ("sessions", "vouchers")}} for row in rows]
    return parse_rows(result.stdout)
