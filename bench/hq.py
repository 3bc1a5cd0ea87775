"""HQ at fleet scale: the central month report over a synthetic year, and the accounting drain
from several routers at once.

``sudo .venv/bin/python -m bench.hq [--prefix hs-bq-] [--rows 5000000] [--senders 1,4,8]``
builds its own lab with HQ (``hotspotctl lab up --hq``), measures, and removes it.

1. Report: ``radacct`` is filled inside HQ's PostgreSQL with ``INSERT ... SELECT`` from
   ``generate_series`` (110 libraries with metadata rows, a year of sessions in opening
   hours, hashed Calling-Station-Ids, octets, session times, a fifth central accounts), in
   chunks and within ``--budget`` seconds; at each size in ``--sizes`` reached, the reach
   report of one month is timed by library, district and province through
   :func:`gateway.hq.reach.run_report` (psql, the CLI's path), ``--runs`` times, median.
2. Drain: ``--senders`` (a list, each count in turn) router-like processes in the router's
   namespace, each with its own outbox of 50 sessions (Start, ``--interims`` Interim-Updates,
   Stop, queued in time order as an outage leaves them) and the gateway's own Sender (32 in
   flight, one per session), start together; HQ's records/s is all records over the wall
   time from the first start to the last end, and ``radacct`` must hold every session once.
   The full outage (110 routers x 50 sessions x (1440 interims + 2)) is extrapolated from
   that rate, not measured.

One line per figure; a ``NOT MEASURED: reason`` line for what could not be measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from datetime import date

from gateway.hq import reach
from gateway.hq.reach import ReportError, reach_sql, run_report
from gateway.lab.lab import Lab
from gateway.lab.netns import LabError
from gateway.lab.topology import LabSpec
from gateway.model.store import connect

LIBRARIES = 110
SESSIONS = 50  # per router, as in the issue
FULL_OUTAGE = LIBRARIES * SESSIONS * (1440 + 2)  # 60-s interims for 24 h, plus Start and Stop
YEAR_START = "2025-12-01"  # the synthetic year: 2025-12-01 .. 2026-12-01, Asia/Jakarta
MONTH = (date(2026, 6, 1), date(2026, 7, 1))
CHUNK = 250_000

# The libraries: 110 in 22 districts in 6 provinces.
_LIBRARIES_SQL = f"""
INSERT INTO library (id, name, district, province)
SELECT 'lib-' || lpad(i::text, 3, '0'), 'Perpustakaan ' || i, 'district-' || (i % 22), 'province-' || (i % 6)
FROM generate_series(0, {LIBRARIES - 1}) i
ON CONFLICT (id) DO NOTHING
"""

# Rows ``first`` .. ``last`` of the synthetic year: a day of the year, a start in opening hours
# (08-17 local), 1 min - 2 h online, a device among ~3,000 per library (keyed-hash-like ids),
# every fifth session a central account, the others library vouchers of three plans (with the
# Class a router sends). Days are spread evenly, libraries round-robin.
_FILL_SQL = """
INSERT INTO radacct (acctsessionid, acctuniqueid, username, realm, nasipaddress, acctstarttime,
                     acctupdatetime, acctstoptime, acctsessiontime, acctauthentic,
                     acctinputoctets, acctoutputoctets, callingstationid, acctterminatecause, class)
SELECT 'syn-' || g, md5('syn-' || g), u.username, 'lib-' || lpad((g % {libs})::text, 3, '0'),
       '10.250.0.1', s.t, s.t + s.secs * interval '1 second', s.t + s.secs * interval '1 second',
       s.secs, u.auth, (random() * 5e7)::bigint, (random() * 3e8)::bigint,
       left(md5((g % {libs}) || '-' || (hashint4(g) % 3000)), 16), 'User-Request', u.class
FROM generate_series({first}, {last}) g,
LATERAL (SELECT (timestamp '{start}' + ({day}) * interval '1 day'
                 + (8 * 3600 + random() * 9 * 3600) * interval '1 second') AT TIME ZONE 'Asia/Jakarta' AS t,
                (60 + random() * 7140)::bigint AS secs) s,
LATERAL (SELECT CASE WHEN g % 5 = 0 THEN 'M' || (hashint4(g) % 20000) ELSE 'voucher:v' || g END AS username,
                CASE WHEN g % 5 = 0 THEN 'RADIUS' ELSE 'Local' END AS auth,
                -- the Class a router sends for a voucher session, as FreeRADIUS writes an octets value
                CASE WHEN g % 5 = 0 THEN NULL ELSE '0x' || encode(convert_to('voucher:'
                    || (ARRAY['harian', 'mingguan', 'jam'])[1 + g % 3], 'UTF8'), 'hex') END AS class) u
"""

_SENDER = """
import json, sys, time
import gateway.radius.accounting as acc
from gateway.config import load
from gateway.model.store import connect
config = load(sys.argv[1]); k = int(sys.argv[2]); sessions = int(sys.argv[3]); interims = int(sys.argv[4])
acc.OUTBOX = f"hs:bench:outbox:{k}"  # this router's own outbox (the Sender reads the module's key)
r = connect(config); r.delete(acc.OUTBOX)
now = time.time(); tag = f"bq{int(now)}-{k}-"; pipe = r.pipeline(); n = 0
def fields(s, i):
    return {"sid": f"{tag}{s:03d}", "time": repr(now - 86400 + 60 * i), "kind": "voucher", "voucher_id": "v",
            "mac": f"02:00:00:{k:02x}:00:{s:02x}", "ip": f"10.42.{k}.{s + 10}", "bytes_up": str(1000 * i),
            "bytes_down": str(9000 * i), "duration": f"{60.0 * i:.1f}", "reason": "logout"}
for i in range(interims + 2):  # in time order, as the outage left them: every session's record of minute i
    status = "Start" if i == 0 else "Stop" if i == interims + 1 else "Interim-Update"
    for s in range(sessions):
        pipe.xadd(acc.OUTBOX, acc.outbox_record(status, fields(s, i))); n += 1
pipe.execute(); r.incr("hs:bench:ready")
deadline = time.monotonic() + 300
while not r.exists("hs:bench:go") and time.monotonic() < deadline:
    time.sleep(0.01)
sender = acc.Sender(r, config); started = time.time(); cpu = time.process_time()
while r.xlen(acc.OUTBOX) and time.monotonic() < deadline:
    sender.send_pending()
print(json.dumps({"records": n, "sent": sender.sent, "start": started, "end": time.time(), "tag": tag,
                  "cpu": time.process_time() - cpu}))
"""


# the day of row g: "cycled" goes round the year every 110 x 365 rows, so a month's rows lie on
# every page of the table (the worst case); "ordered" fills the year in time order, as a real
# radacct grows (a month's rows sit together), and is complete only at the last size
_DAYS = {"cycled": "(g / {libs}) % 365", "ordered": "least(364, g * 365 / {rows})"}


def _fill(lab: Lab, first: int, last: int, layout: str, rows: int) -> None:
    day = _DAYS[layout].format(libs=LIBRARIES, rows=rows)
    sql = _FILL_SQL.format(libs=LIBRARIES, first=first, last=last, start=YEAR_START, day=day)
    _psql(lab, sql, timeout=900)


def _psql(lab: Lab, sql: str, timeout: float) -> str:
    hq = lab.hq
    assert hq is not None  # the lab is built with hq=True
    argv = ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", hq.conninfo, "-c", sql]
    return lab.exec(hq.ns, *argv, timeout=timeout, check=True).stdout


# the month report as it was before it counted voucher sessions (for the side-by-side ratio)
_VOUCHER_COLUMN = f",\n       count(*) FILTER (WHERE {reach._VOUCHER}) AS voucher_sessions"


def _time_sql(lab: Lab, sql: str) -> float:
    """Run ``sql`` at HQ with the month's psql variables as run_report does; return the seconds."""
    hq = lab.hq
    assert hq is not None  # the lab is built with hq=True
    argv = [
        "psql", "-X", "-q", "--csv", "-v", "ON_ERROR_STOP=1", "-v", f"since={MONTH[0].isoformat()}",
        "-v", f"until={MONTH[1].isoformat()}", "-v", "tz=Asia/Jakarta", "-d", hq.conninfo, "-f", "-",
    ]  # fmt: skip
    started = time.monotonic()
    subprocess.run(argv, input=sql, capture_output=True, text=True, timeout=300, check=True)
    return time.monotonic() - started


def _time_reports(lab: Lab, runs: int) -> dict[str, float]:
    hq = lab.hq
    assert hq is not None  # the lab is built with hq=True
    medians = {}
    for by in ("library", "district", "province"):
        before = reach_sql(by, "month").replace(_VOUCHER_COLUMN, "")
        assert before != reach_sql(by, "month"), "the voucher column moved: update _VOUCHER_COLUMN"
        seconds, without, vouchers = [], [], []
        for _ in range(runs):  # interleaved, so load on the shared machine hits all three alike
            started = time.monotonic()
            rows = run_report(hq.conninfo, *MONTH, by=by, per="month", timeout=300)
            seconds.append(time.monotonic() - started)
            without.append(_time_sql(lab, before))
            started = time.monotonic()
            plans = run_report(hq.conninfo, *MONTH, by=by, per="month", timeout=300, kind="vouchers")
            vouchers.append(time.monotonic() - started)
        medians[by] = statistics.median(seconds)
        print(f"report {by:8s} {MONTH[0]:%Y-%m}: median {medians[by]:.3f} s of {runs} "
              f"(min {min(seconds):.3f}, max {max(seconds):.3f}), {len(rows)} rows, "
              f"{sum(row['sessions'] for row in rows):,} sessions, "
              f"{sum(row['voucher_sessions'] for row in rows):,} on vouchers", flush=True)  # fmt: skip
        print(f"report {by:8s} without the voucher column: median {statistics.median(without):.3f} s "
              f"(with/without {medians[by] / statistics.median(without):.2f}); vouchers per plan: median "
              f"{statistics.median(vouchers):.3f} s, {len(plans)} rows", flush=True)  # fmt: skip
    return medians


def report(lab: Lab, rows: int, sizes: list[int], runs: int, budget: float, layout: str = "cycled") -> dict:
    """Fill ``radacct`` up to ``rows`` (within ``budget`` s) and time the month report at each size."""
    _psql(lab, _LIBRARIES_SQL, timeout=60)
    result: dict = {}
    filled, started = 0, time.monotonic()
    for size in sorted(s for s in sizes if s <= rows):
        while filled < size:
            if time.monotonic() - started > budget:
                print(f"NOT MEASURED: report at {size:,} rows: filling stopped at {filled:,} "
                      f"after the {budget:.0f}-s budget", flush=True)  # fmt: skip
                return result
            step = min(CHUNK, size - filled)
            t0 = time.monotonic()
            _fill(lab, filled, filled + step - 1, layout, rows)
            filled += step
            print(f"filled {filled:,} rows ({step / (time.monotonic() - t0):,.0f} rows/s)", flush=True)
        _psql(lab, "ANALYZE radacct", timeout=300)
        plan = _psql(lab, "EXPLAIN (COSTS OFF) " + _plain_month_sql(), timeout=60)
        scans = [line.strip(" ->") for line in plan.splitlines() if "Scan" in line or "Workers" in line]
        print(f"plan at {size:,} rows: {' / '.join(scans)}", flush=True)
        try:
            result[size] = _time_reports(lab, runs)
        except ReportError as err:
            print(f"NOT MEASURED: report at {size:,} rows: {err}", flush=True)
            return result
    return result


def _plain_month_sql() -> str:
    """The report query of the month by library with the psql variables filled in (for EXPLAIN)."""
    sql = reach_sql("library", "month")
    values = {"since": MONTH[0].isoformat(), "until": MONTH[1].isoformat(), "tz": "Asia/Jakarta"}
    for name, value in values.items():
        sql = sql.replace(f":'{name}'", f"'{value}'")
    return sql.strip().rstrip(";")


def _hq_cpu(lab: Lab) -> float:
    """Return the CPU seconds used so far by the processes in HQ's namespace (FreeRADIUS, PostgreSQL)."""
    hq = lab.hq
    assert hq is not None  # the lab is built with hq=True
    pids = subprocess.run(["ip", "netns", "pids", hq.ns], capture_output=True, text=True, timeout=10).stdout
    total = 0
    for pid in pids.split():
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def drain(lab: Lab, senders: int, interims: int) -> dict:
    """Drain ``senders`` routers' outboxes at once; return records/s at HQ and the radacct check."""
    config = lab.config()
    r = connect(config)
    r.delete("hs:bench:ready", "hs:bench:go")
    lab.stop("gateway")  # its own sender must not share the work
    argv = [lab.python, "-c", _SENDER, str(lab.config_path)]
    procs = [
        subprocess.Popen(
            ["ip", "netns", "exec", lab.spec.gw, *argv, str(k), str(SESSIONS), str(interims)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for k in range(senders)
    ]
    try:
        deadline = time.monotonic() + 300
        while int(r.get("hs:bench:ready") or 0) < senders and time.monotonic() < deadline:
            if any(p.poll() is not None for p in procs):
                break
            time.sleep(0.05)
        hq_cpu = _hq_cpu(lab)
        r.set("hs:bench:go", "1")
        outs = [p.communicate(timeout=400) for p in procs]
        hq_cpu = _hq_cpu(lab) - hq_cpu
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()  # our own child, by its handle
    results = []
    for p, (out, err) in zip(procs, outs, strict=True):
        if p.returncode != 0 or not out.strip():
            raise LabError(f"a sender failed: {err.strip()[-500:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    records = sum(x["records"] for x in results)
    sent = sum(x["sent"] for x in results)
    seconds = max(x["end"] for x in results) - min(x["start"] for x in results)
    tags = " OR ".join(f"acctsessionid LIKE '{x['tag']}%'" for x in results)
    query = f"SELECT count(*), count(DISTINCT acctsessionid), count(acctstoptime) FROM radacct WHERE {tags}"
    counts = _psql(lab, query, timeout=60).strip().split("|")
    per_router = [x["records"] / (x["end"] - x["start"]) for x in results]
    return {
        "senders": senders,
        "records": records,
        "sent": sent,
        "seconds": seconds,
        "rate": records / seconds,
        "per_router_rate": statistics.median(per_router),
        "sender_cpu": sum(x["cpu"] for x in results),
        "hq_cpu": hq_cpu,
        "rows": int(counts[0]),
        "distinct": int(counts[1]),
        "stopped": int(counts[2]),
        "expected": senders * SESSIONS,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.hq")
    parser.add_argument("--prefix", default="hs-bq-")
    parser.add_argument("--rows", type=int, default=5_000_000, help="synthetic radacct rows at most")
    parser.add_argument("--sizes", default="1000000,5000000", help="sizes at which the report is timed")
    parser.add_argument("--budget", type=float, default=900, help="seconds at most for filling radacct")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--layout", choices=sorted(_DAYS), default="cycled",
                        help="where a month's rows lie in the table (see _DAYS)")  # fmt: skip
    parser.add_argument("--senders", default="1,4,8", help="router counts to drain from at once, in turn")
    parser.add_argument("--interims", type=int, default=40, help="Interim-Updates per session in the outbox")
    parser.add_argument("--skip", choices=("report", "drain"), action="append", default=[])
    args = parser.parse_args(argv)
    missing = 0
    lab = Lab(LabSpec(prefix=args.prefix, clients=1, hq=True))
    lab.down(wipe=True)
    try:
        lab.up()
        for senders in [int(n) for n in args.senders.split(",") if n] if "drain" not in args.skip else []:
            try:
                d = drain(lab, senders, args.interims)
            except (LabError, OSError, ValueError) as err:
                print(f"NOT MEASURED: drain with {senders} routers: {err}")
                missing += 1
                continue
            print(f"drain {d['senders']} routers x {SESSIONS} sessions x {args.interims + 2} records: "
                  f"{d['records']:,} records in {d['seconds']:.2f} s = {d['rate']:,.0f} records/s at HQ "
                  f"(median per router {d['per_router_rate']:,.0f}/s; the senders' own CPU "
                  f"{d['sender_cpu']:.2f} s of {2 * d['seconds']:.2f} core-s)", flush=True)  # fmt: skip
            print(f"drain radacct: {d['rows']} rows, {d['distinct']} sessions, {d['stopped']} stopped, "
                  f"expected {d['expected']} (sent {d['sent']:,} of {d['records']:,})")  # fmt: skip
            print(f"drain HQ CPU (FreeRADIUS + PostgreSQL) {d['hq_cpu']:.2f} s, "
                  f"{d['records']:,} records = "
                  f"{d['records'] / max(d['hq_cpu'], 0.01):,.0f} records per HQ CPU-second")  # fmt: skip
            print(f"drain extrapolated (not measured): 110 x 50 x 1442 = {FULL_OUTAGE:,} records "
                  f"at {d['rate']:,.0f}/s = {FULL_OUTAGE / d['rate'] / 60:.0f} min", flush=True)  # fmt: skip
        if "report" not in args.skip:
            sizes = [int(s) for s in args.sizes.split(",") if s]
            if args.layout == "ordered":
                sizes = [args.rows]  # the year is complete only at the end
            print(f"report layout: {args.layout}", flush=True)
            done = report(lab, args.rows, sizes, args.runs, args.budget, args.layout)
            missing += sum(1 for s in sizes if s <= args.rows and s not in done)
            for size, medians in done.items():
                worst = max(medians.values())
                print(f"report at {size:,} rows: worst median {worst:.3f} s (target < 2 s: "
                      f"{'yes' if worst < 2 else 'no'})")  # fmt: skip
    finally:
        lab.down(wipe=True)
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main())
