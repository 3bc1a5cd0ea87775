"""What vouchers, reports and the librarian desk cost (no lab: a private Redis, the Flask app in-process).

``.venv/bin/python -m bench.desk`` prints, each measured in this one run:

- issuing a batch of 10 and of 1,000 vouchers (one transaction each), per voucher;
- redeeming a voucher with 100 vs 20,000 vouchers stored (ratio: the 20,000th costs no more);
- ending a session, with its report counters and voucher quota in the same transaction,
  next to starting one;
- a month report over 9,000 seeded sessions (30 days x 300) with 100 online, and a day report;
- the voucher list: the newest 50 of 20,000, and a filter that must scan them all;
- a desk sign-in (argon2id verify) and the dashboard page with 100 clients online.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from bench._common import budget, guarded, median_ms, redis_for, start_redis, target
from gateway import config as config_mod
from gateway.model.accounts import authenticate, create_account
from gateway.model.reports import day_report, month_report
from gateway.model.sessions import end_session, new_session, online_sessions, start_session
from gateway.model.voucher_admin import list_vouchers
from gateway.model.vouchers import issue_batch, redeem

ROOT = Path(__file__).resolve().parents[1]
WIB = ZoneInfo("Asia/Jakarta")


def _config(url: str, folder: Path) -> config_mod.Config:
    text = (ROOT / "docs" / "hotspot.example.toml").read_text()
    text = text.replace('url = "redis://127.0.0.1:6379/0"', f'url = "{url}"')
    text = text.replace('state_dir = "/var/lib/hotspot"', f'state_dir = "{folder}/state"')
    return config_mod.loads(text, folder / "hotspot.toml")


def _redeem_cost(r, plans, count: int) -> float:
    vouchers = issue_batch(r, plans["harian"], count, now=time.time(), issued_by="bench")
    times = []
    for i, v in enumerate(vouchers[:80]):
        started = time.perf_counter()
        redeem(r, v.code, mac=f"02:00:00:01:{i // 256:02x}:{i % 256:02x}", ip="10.42.0.100", plans=plans,
               now=time.time())  # fmt: skip
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times[20:])  # the first ones warm up connections and caches


def _measure() -> None:
    """Measure vouchers, reports and the desk against a private Redis, and print each number."""
    folder = Path(tempfile.mkdtemp(prefix="hs-bench-desk-"))
    proc, url = start_redis(folder)
    try:
        r = redis_for(url, budget(2.0))  # the longest round trip: a month report over 9,000 sessions
        config = _config(url, folder)
        plans = config.plans
        t10 = median_ms(lambda: issue_batch(r, plans["harian"], 10, now=time.time(), issued_by="b"))
        print(f"issue 10:    {t10:.1f} ms")
        t1000 = median_ms(lambda: issue_batch(r, plans["harian"], 1000, now=time.time(), issued_by="b"))
        print(f"issue 1000:  {t1000:.1f} ms ({t1000 / 1000 * 1000:.0f} us per voucher)")

        r.flushall()
        few = _redeem_cost(r, plans, 100)
        r.flushall()
        for _ in range(20):
            issue_batch(r, plans["harian"], 1000, now=time.time(), issued_by="b")
        many = _redeem_cost(r, plans, 100)
        print(f"redeem p50: {few:.2f} ms with 100 vouchers, {many:.2f} ms with 20,100 (x{many / few:.2f})")

        online = online_sessions(r)
        starts, ends = [], []
        for i in range(200):
            s = new_session(mac=f"02:00:00:02:00:{i % 256:02x}", ip="10.42.0.150", kind="free", plan="gratis",
                            now=time.time(), expires_at=time.time() + 60, down=1, up=1)  # fmt: skip
            started = time.perf_counter()
            start_session(r, s, time.time())
            starts.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            end_session(r, s.sid, "logout", time.time() + 90, bytes_up=1000, bytes_down=10**6)
            ends.append((time.perf_counter() - started) * 1000)
        s_ms, e_ms = statistics.median(starts), statistics.median(ends)
        print(f"start_session p50 {s_ms:.2f} ms, end_session (with report counters) p50 {e_ms:.2f} ms")

        r.flushall()
        base = datetime_wib(2026, 11, 1)
        for day in range(30):
            for k in range(300):
                t = base + day * 86400 + 8 * 3600 + k * 100
                mac = f"02:00:00:03:{k // 256:02x}:{k % 256:02x}"
                s = new_session(mac=mac, ip="10.42.0.150", kind="voucher", plan="harian", now=t,
                                expires_at=t + 3600, down=1, up=1)  # fmt: skip
                start_session(r, s, t)
                end_session(r, s.sid, "logout", t + 1800, bytes_up=10**6, bytes_down=5 * 10**7)
        issue_batch(r, plans["kelas"], 100, now=time.time(), issued_by="b")
        for i, v in enumerate(list_vouchers(r, plans, now=time.time(), limit=100)[0]):
            mac = f"02:00:00:04:00:{i:02x}"
            redeem(r, v.voucher.code, mac=mac, ip="10.42.0.160", plans=plans, now=time.time())
        online = online_sessions(r)
        month_ms = median_ms(lambda: month_report(r, 2026, 11, WIB, now=time.time(), online=online), 5)
        day_ms = median_ms(lambda: day_report(r, date(2026, 11, 15), WIB, now=time.time(), online=online), 20)
        print(f"month report (9,000 sessions, {len(online)} online): {month_ms:.1f} ms; day {day_ms:.1f} ms")

        r.flushall()
        for _ in range(20):
            issue_batch(r, plans["harian"], 1000, now=time.time(), issued_by="b")
        newest = median_ms(lambda: list_vouchers(r, plans, now=time.time(), limit=50), 20)
        scan = median_ms(lambda: list_vouchers(r, plans, now=time.time(), state="revoked", limit=50), 5)
        print(f"voucher list: newest 50 of 20,000 {newest:.1f} ms; filter scanning all 20,000 {scan:.0f} ms")

        create_account(r, "siti", "rahasia-siti", "librarian", actor="bench", now=time.time())
        login = median_ms(lambda: authenticate(r, "siti", "rahasia-siti"), 10)
        print(f"desk sign-in (argon2id verify): {login:.0f} ms")

        r.flushall()
        from portal import create_app

        create_account(r, "siti", "rahasia-siti", "librarian", actor="bench", now=time.time())
        vouchers = issue_batch(r, plans["kelas"], 100, now=time.time(), issued_by="b")
        for i, v in enumerate(vouchers):
            redeem(r, v.code, mac=f"02:00:00:05:00:{i:02x}", ip="10.42.0.170", plans=plans, now=time.time())
        app = create_app({"HOTSPOT": config, "TESTING": True, "WTF_CSRF_ENABLED": False})
        client = app.test_client()
        client.post("/desk/login", data={"name": "siti", "password": "rahasia-siti"})
        assert client.get("/desk/").status_code == 200
        page = median_ms(lambda: client.get("/desk/"), 20)
        print(f"dashboard with 100 clients online: {page:.1f} ms per page")
    finally:
        proc.terminate()
        proc.wait(budget(0.5))
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Measure and print; return 0, or 2 if the machine could not be measured."""

    def run() -> None:
        with target("bench.desk"):
            _measure()

    return 0 if guarded("bench.desk", run) else 2


def datetime_wib(y: int, m: int, d: int) -> float:
    from datetime import datetime

    return datetime(y, m, d, tzinfo=WIB).timestamp()


if __name__ == "__main__":
    raise SystemExit(main())
