"""The dashboard (online clients, kick, extend), reports (pages and CSV) and the admin pages."""

from __future__ import annotations

import csv
import io
import re
import time
from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.model import audit, keys
from gateway.model.sessions import end_session, get_session, online_sessions, start_session, update_usage
from gateway.model.vouchers import issue_batch, redeem


@pytest.fixture
def online(r, hotspot_config):
    """One visitor online with a voucher, with some usage and a current rate."""
    now = time.time()
    [voucher] = issue_batch(r, hotspot_config.plans["harian"], 1, now=now, issued_by="siti", note="meja 3")
    session = redeem(r, voucher.code, mac="02:00:00:00:01:07", ip="10.42.0.107", plans=hotspot_config.plans,
                     now=now, timezone=hotspot_config.library.timezone)  # fmt: skip
    update_usage(r, {session.sid: (2_000_000, 45_000_000, now)})
    r.hset(keys.session(session.sid), mapping={"rate_down": 3_500_000, "rate_up": 250_000})
    return session


def test_dashboard_shows_who_is_online_with_usage(desk, online):
    desk.login("siti")
    page = desk.text("/desk/")
    assert "02:00:00:00:01:07" in page and "10.42.0.107" in page and "meja 3" in page
    assert "45 MB" in page and "2 MB" in page and "3,5 Mbps" in page
    assert '<meta http-equiv="refresh"' not in page and 'data-refresh="15"' in page, "no blind reload"
    assert "<svg" in page and 'class="bar"' in page, "the day's chart, inline"
    assert "http" not in page.split("<svg", 1)[1].split("</svg>", 1)[0].replace(
        "http://www.w3.org/2000/svg", ""
    )


def test_kick_and_extend_from_the_dashboard(desk, r, online):
    desk.login("siti")
    assert desk.post(f"/desk/clients/{online.sid}/extend", {"minutes": "30"}).status_code == 302
    assert get_session(r, online.sid).expires_at == pytest.approx(online.expires_at + 1800, abs=1)
    assert desk.post(f"/desk/clients/{online.sid}/extend", {"minutes": "9999"}).status_code == 302
    assert get_session(r, online.sid).expires_at == pytest.approx(online.expires_at + 1800, abs=1)
    response = desk.post(f"/desk/clients/{online.sid}/kick")
    assert response.status_code == 302 and online_sessions(r) == []
    assert get_session(r, online.sid).end_reason == "kicked"
    assert [f["op"] for _, f in r.xrange(keys.COMMANDS)] == ["authorize", "deauthorize"]
    again = desk.post(f"/desk/clients/{online.sid}/kick")
    assert "Pengguna ini sudah tidak daring." in desk.text(again.headers["Location"])
    assert desk.post("/desk/clients/nosuchsid/kick").status_code == 302


def test_throttle_and_unthrottle_from_the_dashboard(desk, r, online):
    desk.login("siti")
    assert "maks. 1 Mbps" in desk.text("/desk/") and "kecepatan paket" not in desk.text("/desk/")
    response = desk.post(f"/desk/clients/{online.sid}/limit", {"rates": "1mbit/512kbit"})
    assert "Kecepatan dibatasi 1 Mbps unduh, 512 kbps unggah." in desk.text(response.headers["Location"])
    limited = get_session(r, online.sid)
    assert (limited.down, limited.up) == (1_000_000, 512_000)
    page = desk.text("/desk/")
    assert "dibatasi 1 Mbps" in page and "kecepatan paket" in page
    ops = [f for _, f in r.xrange(keys.COMMANDS)]
    assert ops[-1]["op"] == "reconcile", "the gateway is asked to apply it at once"
    assert [e.action for e in audit.recent(r, actor="siti")][0] == "client_limit"
    for bad in ("100gbit/1gbit", "", "1mbit"):  # only the offered limits
        assert desk.post(f"/desk/clients/{online.sid}/limit", {"rates": bad}).status_code == 302
        assert get_session(r, online.sid).down == 1_000_000, bad
    desk.post(f"/desk/clients/{online.sid}/limit", {"rates": "plan"})
    back = get_session(r, online.sid)
    assert (back.down, back.up) == (online.down, online.up)
    again = desk.post(f"/desk/clients/{online.sid}/limit", {"rates": "plan"})
    assert "Pengguna ini tidak sedang dibatasi." in desk.text(again.headers["Location"])
    for rates in ("1mbit/512kbit", "plan"):
        gone = desk.post("/desk/clients/nosuchsid/limit", {"rates": rates})
        assert "Pengguna ini sudah tidak daring." in desk.text(gone.headers["Location"]), rates


def test_day_and_month_reports_and_csv(desk, r, online, hotspot_config):
    desk.login("siti")
    end_session(r, online.sid, "logout", time.time())
    tz = ZoneInfo(hotspot_config.library.timezone)
    today = datetime.now(tz).date()
    page = desk.text(f"/desk/reports/day?day={today.isoformat()}")
    assert "<svg" in page and "Unduh untuk Excel" in page
    response = desk.client.get(f"/desk/reports/day.csv?day={today.isoformat()}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert f'filename="sukabumi-{today.isoformat()}.csv"' in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[-1][1] == today.isoformat() and rows[-1][2] == "1" and rows[-1][5] == "1"
    assert "02:00:00:00:01:07" not in response.get_data(as_text=True)
    month = today.strftime("%Y-%m")
    assert month in desk.text(f"/desk/reports/month?month={month}")
    response = desk.client.get(f"/desk/reports/month.csv?month={month}")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[-1][1] == month and rows[-1][2] == "1" and rows[-1][COLS_ISSUED] == "1"
    for bad in ("day?day=2026-02-30", "day?day=yesterday", "month?month=2026-13", "month.csv?month=x",
                "day.csv?day=1900-01-01"):  # fmt: skip
        assert desk.client.get(f"/desk/reports/{bad}").status_code == 400, bad


COLS_ISSUED = 9


def test_admin_manages_accounts(desk, r):
    desk.login("admin")
    page = desk.text("/desk/accounts")
    assert "siti" in page and "admin" in page
    desk.post(
        "/desk/accounts", {"action": "add", "name": "budi", "password": "rahasia-budi", "role": "librarian"}
    )
    assert r.hget(keys.account("budi"), "role") == "librarian"
    bad = desk.post("/desk/accounts", {"action": "add", "name": "budi", "password": "rahasia-budi",
                                       "role": "librarian"})  # fmt: skip
    assert "Sudah ada akun dengan nama ini." in desk.text(bad.headers["Location"])
    weak = desk.post("/desk/accounts", {"action": "add", "name": "ani", "password": "123", "role": "admin"})
    assert "minimal 8 karakter" in desk.text(weak.headers["Location"]) and not r.exists(keys.account("ani"))
    desk.post("/desk/accounts", {"action": "role", "name": "budi", "role": "admin"})
    assert r.hget(keys.account("budi"), "role") == "admin"
    desk.post("/desk/accounts", {"action": "passwd", "name": "budi", "password": "baru-budi-1"})
    own = desk.post("/desk/accounts", {"action": "remove", "name": "admin"})
    assert "tidak bisa menghapus akun Anda sendiri" in desk.text(own.headers["Location"])
    unticked = desk.post("/desk/accounts", {"action": "remove", "name": "budi"})
    assert "Centang kotaknya" in desk.text(unticked.headers["Location"]) and r.exists(keys.account("budi"))
    page = desk.text("/desk/accounts")
    assert 'name="confirm" value="yes" required' in page and 'class="small danger"' in page
    desk.post("/desk/accounts", {"action": "remove", "name": "budi", "confirm": "yes"})
    assert not r.exists(keys.account("budi"))
    bogus = desk.post("/desk/accounts", {"action": "explode", "name": "siti"})
    assert "Formulir tidak lengkap" in desk.text(bogus.headers["Location"])
    activity = desk.text("/desk/activity")
    assert "Membuat akun budi" in activity and "Menghapus akun budi" in activity


def test_admin_switches_plans(desk, r):
    desk.login("admin")
    assert "Harian (2 jam)" in desk.text("/desk/plans")
    desk.post("/desk/plans", {"plan": "kelas", "available": "no"})
    assert r.smembers(keys.PLANS_DISABLED) == {"kelas"}
    desk.post("/desk/plans", {"plan": "kelas", "available": "yes"})
    assert not r.smembers(keys.PLANS_DISABLED)
    bad = desk.post("/desk/plans", {"plan": "nope", "available": "no"})
    assert "Paket ini tidak ada." in desk.text(bad.headers["Location"])
    assert desk.post("/desk/plans", {"plan": "kelas", "available": "maybe"}).status_code == 302
    assert not r.smembers(keys.PLANS_DISABLED)


def test_english_desk(desk):
    desk.login("siti")
    page = desk.text("/desk/?lang=en")
    assert "Online now" in page and "Issue vouchers" in page


def test_a_kick_while_the_gateway_is_down_says_so(desk, r, online):
    # no heartbeat: the gateway is not running, so the device is not cut off yet (issue 16, item 13)
    desk.login("siti")
    response = desk.post(f"/desk/clients/{online.sid}/kick")
    assert get_session(r, online.sid).end_reason == "kicked"
    assert "router tidak berjalan" in desk.text(response.headers["Location"])
    other = replace(online, sid="b" * 16, mac="02:00:00:00:01:0b")
    start_session(r, other, other.started_at)
    r.set(keys.GATEWAY_HEARTBEAT, "{}", ex=30)
    response = desk.post(f"/desk/clients/{other.sid}/kick")
    page = desk.text(response.headers["Location"])
    assert "router tidak berjalan" not in page


def test_staff_read_plain_words_not_internal_names(desk, r, online):
    """The activity log, a voucher's history and the plans page speak Indonesian: no
    ``voucher_issue``, ``down=512000 sid=...`` or ``30d0h``."""
    desk.login("admin")
    desk.post(f"/desk/clients/{online.sid}/limit", {"rates": "512kbit/256kbit"})
    desk.post(f"/desk/clients/{online.sid}/extend", {"minutes": "30"})
    desk.post("/desk/plans", {"plan": "kelas", "available": "no"})
    page = desk.text("/desk/activity")
    for internal in ("voucher_issue", "client_limit", "plan_disable", "sid=", "down=", online.sid):
        assert internal not in page, internal
    assert "Membuat 1 voucher (paket harian)" in page and "Mematikan paket kelas" in page
    assert "Membatasi perangkat menjadi 512 kbps unduh, 256 kbps unggah" in page
    assert "Memperpanjang voucher: tambah 30 menit" in page
    history = desk.text(f"/desk/vouchers/{online.voucher_id}")
    assert "voucher_issue" not in history and "Nomor di catatan" in history
    plans = desk.text("/desk/plans")
    assert "30 hari" in plans and "2 jam" in plans and "30d" not in plans and "0h" not in plans
    dashboard = desk.text("/desk/")
    assert online.voucher_id not in dashboard.replace(f"/desk/vouchers/{online.voucher_id}", ""), "no raw ids"


def test_dashboard_names_phones_by_their_dhcp_host_name(desk, online, app, hotspot_config, tmp_path):
    from dataclasses import replace

    leases = tmp_path / "dnsmasq.leases"
    leases.write_text(f"1800007200 {online.mac} {online.ip} Galaxy-A14 *\n")
    app.config["HOTSPOT"] = replace(hotspot_config, dhcp=replace(hotspot_config.dhcp, lease_file=leases))
    desk.login("siti")
    page = desk.text("/desk/")
    assert '<span class="host">Galaxy-A14</span>' in page and online.mac in page
    assert "Galaxy-A14" in desk.text(f"/desk/vouchers/{online.voucher_id}")


def test_month_report_has_a_chart_and_no_days_to_come(desk, online, hotspot_config):
    desk.login("siti")
    tz = ZoneInfo(hotspot_config.library.timezone)
    today = datetime.now(tz).date()
    page = desk.text(f"/desk/reports/month?month={today:%Y-%m}")
    assert '<figure class="chart"><svg' in page
    listed = re.findall(r"/desk/reports/day\?day=(\d{4}-\d{2}-\d{2})", page)
    assert listed and max(listed) == today.isoformat(), "days still to come are not listed"
    nxt = (today.replace(day=1) + timedelta(days=32)).strftime("%Y-%m")
    future = desk.text(f"/desk/reports/month?month={nxt}")
    assert "Bulan ini belum dimulai." in future and "<svg" not in future
    excel = desk.client.get(f"/desk/reports/month.csv?month={today:%Y-%m}&excel=1")
    assert excel.data.startswith("\ufeff".encode()) and b";" in excel.data
    assert "-excel.csv" in excel.headers["Content-Disposition"]


def test_staff_are_told_when_redis_is_down(hotspot_config):
    """Not the visitors' "getting ready" text: what is wrong and what to do."""
    from dataclasses import replace

    from portal import create_app

    dead = replace(hotspot_config, redis_url="unix:///nonexistent/redis.sock")
    client = create_app({"HOTSPOT": dead, "TESTING": True, "WTF_CSRF_ENABLED": False}).test_client()
    assert client.get("/desk/login").status_code == 200, "the form itself needs no Redis"
    response = client.post("/desk/login", data={"name": "siti", "password": "rahasia-siti"})
    page = response.get_data(as_text=True)
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert "Basis data hotspot tidak menjawab" in page and "nyalakan ulang router" in page
    assert "systemctl status redis-server" in page
    assert "sedang bersiap" not in page.lower(), "not the visitors' text"


def test_staff_are_told_when_the_gateway_is_down(desk, r):
    desk.login("siti")
    page = desk.text("/desk/")
    assert 'id="gateway-down"' in page and "Gateway tidak berjalan" in page, "no heartbeat: say so"
    r.set(keys.GATEWAY_HEARTBEAT, '{"pid": 1}', ex=30)
    assert 'id="gateway-down"' not in desk.text("/desk/")


def test_help_page(desk):
    desk.login("siti")
    page = desk.text("/desk/help")
    assert "Halaman masuk tidak terbuka di ponsel" in page and "http://wifi.perpus" in page
    assert "DNS Pribadi" in page and "Perpus Sukabumi" in page and 'href="/desk/help"' in page


def test_reports_show_every_survey_question(desk, r, hotspot_config):
    """The desk's reach numbers: each question with its answers, counts and shares, in Indonesian
    (English on request); the CSV has a column per question and answer."""
    desk.login("siti")
    tz = ZoneInfo(hotspot_config.library.timezone)
    today = datetime.now(tz).date()
    r.hset(keys.survey_day(today.isoformat()), mapping={
        "reading": 1, "purpose:reading": 1, "purpose:work": 2, "gender:female": 3, "gender:male": 1,
        "age:16_30": 2, "business:yes": 1, "heard:poster": 5,
    })  # fmt: skip
    page = re.sub(r"\s+", " ", desk.text(f"/desk/reports/day?day={today.isoformat()}"))
    assert "Jawaban survei (anonim)" in page
    questions = ("Apa keperluan Anda ke perpustakaan hari ini?", "Berapa usia Anda?",
                 "Anda perempuan atau laki-laki?", "Apakah Anda menjalankan usaha kecil (UMKM)?")  # fmt: skip
    for text in questions:
        assert f"<caption>{text}" in page, text
    assert '<td>Perempuan</td><td class="num">3</td><td class="num">75%</td>' in page
    assert '<td>Membaca santai (buku, berita)</td><td class="num">2</td><td class="num">50%</td>' in page
    assert '<td>16 sampai 30 tahun</td><td class="num">2</td><td class="num">100%</td>' in page
    assert "<caption>heard" in page and '<td>poster</td><td class="num">5</td>' in page, "a dropped question"
    month = desk.text(f"/desk/reports/month?month={today:%Y-%m}&lang=en")
    assert "<caption>How old are you?" in month and "Survey answers (anonymous)" in month
    response = desk.client.get(f"/desk/reports/month.csv?month={today:%Y-%m}")
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    header = rows[0]
    assert (
        header.index("survey:purpose:study")
        < header.index("survey:age:under_16")
        < header.index("survey:heard:poster")
    )
    assert (
        rows[-1][header.index("survey:gender:female")] == "3"
        and rows[-1][header.index("survey:purpose:reading")] == "2"
    )
