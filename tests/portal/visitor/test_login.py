"""Voucher login, free mode, the online and status pages, logout, the survey, RFC 8908."""

from __future__ import annotations

import json
import time
from datetime import date
from types import SimpleNamespace

import pytest
from structlog.testing import capture_logs

from gateway.model import keys, survey
from gateway.model.sessions import get_session, session_for_mac
from gateway.model.vouchers import format_code, issue_batch

from .conftest import NOW, PHONE2_MAC, PHONE_IP, PHONE_MAC, fresh_token, login


@pytest.fixture
def voucher(app, r):
    plan = app.config["HOTSPOT"].plans["harian"]
    return issue_batch(r, plan, 1, now=NOW - 3600, issued_by="test")[0]


def test_voucher_login_goes_online_after_the_gateways_ack(phone, r, gateway, voucher):
    with capture_logs() as logs:
        response = login(phone, format_code(voucher.code))
    assert response.status_code == 303
    assert response.headers["Location"] == "/online?lang=id"
    session = session_for_mac(r, PHONE_MAC)
    assert session is not None and session.voucher_id == voucher.id and session.ip == PHONE_IP
    assert ("authorize", session.sid) in gateway.ops()
    assert r.hget(keys.COUNTERS, "logins_ok") == "1"
    assert voucher.code not in json.dumps(logs, default=str), "the code is never logged"
    assert [e for e in logs if e["event"] == "login_ok"][0]["voucher_id"] == voucher.id

    page = phone.get("/online").get_data(as_text=True)
    assert "Anda sudah terhubung" in page
    assert "Sisa waktu: 2 jam 0 menit (sampai 17.00)" in page
    assert "http://10.42.0.1:8080/status" in page
    # coming back to the portal while online shows the status page
    assert phone.get("/").headers["Location"] == "/status?lang=id"


@pytest.mark.parametrize("typed", ["{code}", "{lower}", " {spaced} ", "{dashed}", "{look_alike}"])
def test_codes_are_forgiving(phone, r, gateway, app, typed):
    plan = app.config["HOTSPOT"].plans["harian"]
    voucher = issue_batch(r, plan, 1, now=NOW, issued_by="test")[0]
    code = voucher.code
    text = typed.format(
        code=code,
        lower=code.lower(),
        spaced=" ".join(code),
        dashed=format_code(code),
        look_alike=code.replace("0", "O").replace("1", "l"),
    )
    assert login(phone, text).status_code == 303


def test_wrong_codes_get_a_clear_message_then_a_wait(phone, r, gateway, voucher):
    response = login(phone, "ZZZZ-ZZZZ")
    assert response.status_code == 400
    assert "Kode tidak ditemukan" in response.get_data(as_text=True)
    assert 'value="ZZZZ-ZZZZ"' in response.get_data(as_text=True), "what was typed stays in the field"
    for _ in range(3):
        login(phone, "ZZZZ-ZZZZ")
    response = login(phone, "ZZZZ-ZZZZ", **{"Accept-Language": "en"})
    assert response.status_code == 429
    assert "Too many wrong codes. Please wait 60 seconds" in response.get_data(as_text=True)
    # locked: even the right code waits, and the IP is locked too
    response = login(phone, voucher.code)
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 50
    assert session_for_mac(r, PHONE_MAC) is None
    assert r.hget(keys.COUNTERS, "logins_failed") == "5"
    assert r.hget(keys.COUNTERS, "logins_rate_limited") == "1"
    assert r.ttl(f"hs:rl:voucher:ip:{PHONE_IP}:locked") > 0


def test_a_success_does_not_clear_earlier_mistakes(phone, r, gateway, voucher):
    # issue 16: typing one's own valid code between guesses bought a fresh budget
    for _ in range(3):
        login(phone, "ZZZZ-ZZZZ")
    assert login(phone, voucher.code).status_code == 303
    assert r.get(f"hs:rl:voucher:mac:{PHONE_MAC}:fails") == "3"
    statuses = [login(phone, "ZZZZ-ZZZZ").status_code for _ in range(4)]
    assert statuses == [400, 429, 429, 429], "the 5th wrong code locks, the success notwithstanding"


@pytest.mark.parametrize(
    ("setup", "indonesian", "english"),
    [
        ("revoke", "sudah dibatalkan", "has been cancelled"),
        ("expire", "sudah kedaluwarsa", "has expired"),
        ("use_up", "sudah habis", "data is used up"),
        ("other_device", "sedang dipakai di 1 perangkat lain", "already in use on 1 other device."),
    ],
)
def test_unusable_vouchers_say_why_in_both_languages(
    app, phone, phone2, r, gateway, setup, indonesian, english
):
    config = app.config["HOTSPOT"]
    plan = config.plans["gratis" if setup == "use_up" else "harian"]
    voucher = issue_batch(r, plan, 1, now=NOW - 3600, issued_by="test")[0]
    key = keys.voucher(voucher.code)
    if setup == "revoke":
        r.hset(key, "revoked_at", NOW - 10)
    elif setup == "expire":
        r.hset(key, "valid_until", NOW - 10)
    elif setup == "use_up":
        r.hset(key, mapping={"bytes_used": plan.quota, "first_used_at": NOW - 60, "expires_at": NOW + 600})
    else:
        assert login(phone2, voucher.code).status_code == 303
    response = login(phone, voucher.code)
    assert response.status_code == 400 and indonesian in response.get_data(as_text=True)
    response = phone.post("/login?lang=en", data={"code": voucher.code, "token": fresh_token(phone)})
    assert english in response.get_data(as_text=True)


def test_form_token_is_bound_to_the_device(phone, phone2, r, gateway, voucher):
    stolen = fresh_token(phone2)
    response = phone.post("/login", data={"code": voucher.code, "token": stolen})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "terbuka terlalu lama" in page and f'value="{voucher.code}"' in page
    assert session_for_mac(r, PHONE_MAC) is None
    assert phone.post("/login", data={"code": voucher.code}).status_code == 400, "no token at all"


def test_form_token_expires(phone, monkeypatch, gateway, voucher):
    import itsdangerous.timed

    token = fresh_token(phone)
    later = time.time() + 13 * 3600
    monkeypatch.setattr(itsdangerous.timed, "time", SimpleNamespace(time=lambda: later))
    assert phone.post("/login", data={"code": voucher.code, "token": token}).status_code == 400


def test_a_device_off_the_lan_cannot_log_in(stranger, r, voucher):
    response = stranger.post("/login", data={"code": voucher.code, "token": fresh_token(stranger)})
    assert response.status_code == 400
    assert "belum tersambung ke Wi-Fi perpustakaan" in response.get_data(as_text=True)
    assert not r.exists(keys.ONLINE)


def test_empty_code(phone):
    response = phone.post("/login", data={"code": "  ", "token": fresh_token(phone)})
    assert response.status_code == 400 and "ketik kode" in response.get_data(as_text=True)


def test_no_ack_shows_almost_there_then_online(phone, r, gateway, voucher):
    gateway.silent = True
    response = login(phone, voucher.code)
    assert response.status_code == 202
    page = response.get_data(as_text=True)
    assert 'http-equiv="refresh" content="0;url=/online?lang=id"' in page
    assert "terhubung" not in page.split("<main>")[1].split("</header>")[1].lower().replace("tersambung", "")
    assert r.hget(keys.COUNTERS, "gateway_ack_timeouts") == "1"
    assert session_for_mac(r, PHONE_MAC) is not None, "the session waits in Redis for the gateway"
    assert phone.get("/online").status_code == 202, "still no ack: still waiting"
    gateway.silent = False
    assert "Anda sudah terhubung" in phone.get("/online").get_data(as_text=True)
    ops = [op for op, _ in gateway.ops()]
    assert ops.count("authorize") == 3
    phone.get("/online")
    assert [op for op, _ in gateway.ops()].count("authorize") == 3, "an acked session is not asked again"


def test_continue_to_the_page_first_asked_for_and_survey(phone, r, gateway, voucher):
    phone.get("/artikel/1", headers={"Host": "example.com", "Accept": "text/html"})
    login(phone, voucher.code)
    page = phone.get("/online").get_data(as_text=True)
    assert 'href="http://example.com/artikel/1"' in page
    for label in ("Belajar", "Pekerjaan atau usaha", "Tugas sekolah", "Membaca", "Lainnya"):
        assert label in page
    for label in (
        "Berapa usia Anda?",
        "16 sampai 30",
        "Perempuan",
        "Laki-laki",
        "usaha kecil",
        "Ya",
        "Tidak",
    ):
        assert label in page, label
    assert page.count('action="/survey?lang=id"') == 4, "one little form per question: one tap sends"
    day = date(2027, 1, 15)
    # one tap: counted at once, the page comes back with the questions left
    response = phone.post("/survey", data={"q_purpose": "school", "token": fresh_token(phone)})
    assert response.status_code == 303 and response.headers["Location"] == "/online?thanks=1&lang=id#survey"
    assert survey.counts(r, day, day)[day] == {"purpose": {"school": 1}}
    page = phone.get("/online?thanks=1&lang=id").get_data(as_text=True)
    assert "Terima kasih" in page and "Tugas sekolah" not in page and "Berapa usia Anda?" in page
    assert 'href="http://example.com/artikel/1">Lewati pertanyaan' in page, "skipping goes on to the page"
    phone.post("/survey", data={"q_age": "16_30", "token": fresh_token(phone)})
    phone.post("/survey", data={"q_gender": "female", "token": fresh_token(phone)})
    response = phone.post("/survey", data={"q_business": "yes", "token": fresh_token(phone)})
    assert response.status_code == 303 and response.headers["Location"] == "http://example.com/artikel/1"
    assert survey.counts(r, day, day)[day] == {
        "purpose": {"school": 1},
        "age": {"16_30": 1},
        "gender": {"female": 1},
        "business": {"yes": 1},
    }
    stored = {k: r.type(k) for k in r.keys("hs:survey:*")}
    assert all(PHONE_MAC not in k for k in stored), "answers are anonymous"
    assert set(r.hgetall(keys.survey_day(day.isoformat()))) == {
        "purpose:school",
        "age:16_30",
        "gender:female",
        "business:yes",
    }, "only counts per day, question and answer"
    # one answer per question and session; the questions are not asked again
    response = phone.post("/survey", data={"q_purpose": "study", "token": fresh_token(phone)})
    assert response.headers["Location"] == "http://example.com/artikel/1"
    assert survey.totals(r, day, day)["purpose"] == {"school": 1}
    page = phone.get("/online").get_data(as_text=True)
    assert "Belajar" not in page and 'action="/survey' not in page


def test_survey_ignores_bad_answers_and_can_be_switched_off(app, phone, r, gateway, voucher):
    from dataclasses import replace

    login(phone, voucher.code)
    bad = {"q_purpose": "gaming", "q_colour": "red", "purpose": "study", "q_age": "16_30:x"}
    response = phone.post("/survey", data={**bad, "token": fresh_token(phone)})
    assert response.status_code == 303 and response.headers["Location"] == "/status?lang=id"
    assert r.keys("hs:survey:2*") == []
    response = phone.post("/survey", data={"q_age": "16_30", "token": "forged"})
    assert response.status_code == 303 and r.keys("hs:survey:2*") == [], (
        "a form without our token counts nothing"
    )
    config = app.config["HOTSPOT"]
    off = replace(config.portal.survey, enabled=False)
    app.config["HOTSPOT"] = replace(config, portal=replace(config.portal, survey=off))
    page = phone.get("/online").get_data(as_text=True)
    assert "Belajar" not in page and 'action="/survey' not in page
    phone.post("/survey", data={"q_age": "16_30", "token": fresh_token(phone)})
    assert r.keys("hs:survey:2*") == [], "switched off: nothing counted"


def test_a_librarys_own_question_in_both_languages(app, phone, r, gateway, voucher):
    from dataclasses import replace

    from gateway.config import Survey, SurveyOption, SurveyQuestion
    from gateway.config.survey import default_survey

    heard = SurveyQuestion(
        "heard", {"id": "Dari mana Anda tahu layanan ini?", "en": "How did you hear of this service?"},
        (SurveyOption("friend", {"id": "Dari teman", "en": "From a friend"}),
         SurveyOption("poster", {"id": "Poster", "en": "A poster"})),
    )  # fmt: skip
    config = app.config["HOTSPOT"]
    own = Survey(True, (default_survey().questions[2], heard))
    app.config["HOTSPOT"] = replace(config, portal=replace(config.portal, survey=own))
    login(phone, voucher.code)
    page = phone.get("/online?lang=id").get_data(as_text=True)
    assert "Dari mana Anda tahu layanan ini?" in page and "Dari teman" in page and "Perempuan" in page
    assert "Belajar" not in page, "only the configured questions"
    english = phone.get("/online?lang=en").get_data(as_text=True)
    assert (
        "How did you hear of this service?" in english and "From a friend" in english and "A woman" in english
    )
    phone.post("/survey", data={"q_heard": "poster", "token": fresh_token(phone)})
    day = date(2027, 1, 15)
    assert survey.counts(r, day, day, own.questions)[day]["heard"] == {"friend": 0, "poster": 1}


def test_status_page_and_logout(phone, r, gateway, voucher, clock):
    login(phone, voucher.code)
    session = session_for_mac(r, PHONE_MAC)
    r.hset(keys.session(session.sid), mapping={"bytes_down": 12_000_000, "bytes_up": 300_000})
    clock.now += 1500
    page = phone.get("/status?lang=en").get_data(as_text=True)
    assert "1 h 35 min" in page and "until 17:00" in page
    assert "No limit" in page and "12.3 MB" in page
    assert "up to 4 Mbit/s down, 2 Mbit/s up" in page
    assert "Daily (2 hours)" in page
    assert 'http-equiv="refresh"' not in page, "no timed reload (WCAG 2.2.1): the visitor refreshes"
    assert '<a class="button" href="/status?lang=en">Refresh</a>' in page and "As of 15:25." in page
    response = phone.post("/logout", data={"token": fresh_token(phone)})
    assert response.status_code == 303 and response.headers["Location"] == "/?bye=1&lang=en", "kept"
    ended = get_session(r, session.sid)
    assert ended.state == "ended" and ended.end_reason == "logout"
    assert ("deauthorize", session.sid) in gateway.ops()
    page = phone.get("/?bye=1&lang=id").get_data(as_text=True)
    assert "Anda sudah keluar" in page
    # the same code logs in again while it is valid
    assert login(phone, voucher.code).status_code == 303


def test_logout_needs_the_devices_token(phone, phone2, r, gateway, voucher):
    login(phone, voucher.code)
    assert phone.post("/logout", data={"token": fresh_token(phone2)}).status_code == 400
    assert session_for_mac(r, PHONE_MAC) is not None


def test_free_mode_once_a_day_per_device(phone, phone2, r, gateway, clock):
    response = phone.post("/free", data={"token": fresh_token(phone)})
    assert response.status_code == 303
    session = session_for_mac(r, PHONE_MAC)
    assert session.kind == "free" and session.plan == "gratis" and session.quota == 200_000_000
    assert session.expires_at == NOW + 1800
    assert r.hget(keys.COUNTERS, "free_logins") == "1"
    assert phone.post("/free", data={"token": fresh_token(phone)}).status_code == 303, "online: kept"
    phone.post("/logout", data={"token": fresh_token(phone)})
    response = phone.post("/free", data={"token": fresh_token(phone)})
    assert response.status_code == 429
    assert "sudah memakai waktu gratis hari ini" in response.get_data(as_text=True)
    assert "sudah memakai waktu gratis hari ini" in phone.get("/").get_data(as_text=True), "no button"
    assert phone2.post("/free", data={"token": fresh_token(phone2)}).status_code == 303, "per device"
    clock.now += 12 * 3600  # the next day in Jakarta
    assert phone.post("/free", data={"token": fresh_token(phone)}).status_code == 303
    assert session_for_mac(r, PHONE2_MAC).kind == "free"


def test_captive_portal_api(phone, stranger, r, gateway, voucher, clock):
    response = phone.get("/api/captive")
    assert response.mimetype == "application/captive+json"
    assert response.headers["Cache-Control"] == "private"
    assert json.loads(response.data) == {
        "captive": True,
        "user-portal-url": "http://10.42.0.1:8080/",
        "can-extend-session": False,
    }
    phone.post("/free", data={"token": fresh_token(phone)})
    clock.now += 100
    data = json.loads(phone.get("/api/captive").data)
    assert data["captive"] is False
    assert data["seconds-remaining"] == 1700
    assert data["bytes-remaining"] == 200_000_000
    assert json.loads(stranger.get("/api/captive").data)["captive"] is True
    phone.post("/logout", data={"token": fresh_token(phone)})
    login(phone, voucher.code)
    assert "bytes-remaining" not in json.loads(phone.get("/api/captive").data), "no quota, no field"


def test_a_connection_opened_before_login_is_retried_not_sent_to_the_splash(phone, r, gateway, voucher):
    login(phone, voucher.code)
    headers = {"Host": "example.com", "Accept": "text/html"}
    response = phone.get("/artikel?id=3", headers=headers)
    assert response.status_code == 307, "online and acked: the browser should retry on a new connection"
    assert response.headers["Location"] == "http://example.com/artikel?id=3"
    assert response.headers["Connection"] == "close"
    for _ in range(4):
        assert phone.get("/artikel?id=3", headers=headers).status_code == 307
    response = phone.get("/artikel?id=3", headers=headers)
    assert response.status_code == 302 and response.headers["Location"] == "http://10.42.0.1:8080/", (
        "a firewall that does not let it out cannot make a redirect loop"
    )


def test_a_device_found_offline_is_not_asked_again_for_a_second(phone, r, gateway, voucher, monkeypatch):
    import portal.probes as probes
    from gateway.model.sessions import end_session, new_session, start_session

    headers = {"Host": "example.com", "Accept": "text/html"}
    assert phone.get("/artikel?id=3", headers=headers).status_code == 302  # not online: remembered
    # a login elsewhere (the desk's CLI, another worker): this worker learns it within OFFLINE_FOR
    session = new_session(mac=PHONE_MAC, ip=PHONE_IP, kind="admin", plan="", now=time.time(),
                          expires_at=time.time() + 3600, down=1, up=1)  # fmt: skip
    start_session(r, session, time.time())
    r.set(keys.portal_acked(session.sid), "1", ex=60)
    assert phone.get("/artikel?id=3", headers=headers).status_code == 302
    later = time.monotonic() + probes.OFFLINE_FOR + 0.1
    monkeypatch.setattr(probes.time, "monotonic", lambda: later)
    assert phone.get("/artikel?id=3", headers=headers).status_code == 307
    # a login through this worker: at once
    r.delete(keys.portal_retry(PHONE_MAC))
    probes.forget_offline()
    end_session(r, session.sid, "logout", time.time())
    assert phone.get("/artikel?id=3", headers=headers).status_code == 302  # remembered again
    login(phone, voucher.code)
    assert phone.get("/artikel?id=3", headers=headers).status_code == 307


def test_no_retry_before_the_gateway_acked(phone, gateway, voucher):
    gateway.silent = True
    assert login(phone, voucher.code).status_code == 202
    response = phone.get("/", headers={"Host": "example.com"})
    assert response.status_code == 302 and response.headers["Location"] == "http://10.42.0.1:8080/"


def test_logging_in_again_from_a_new_lease_moves_the_session(app, phone, neighbours, r, gateway, voucher):
    login(phone, voucher.code)
    session = session_for_mac(r, PHONE_MAC)
    neighbours["10.42.0.150"] = PHONE_MAC  # the same phone, a new DHCP lease
    moved = app.test_client()
    moved.environ_base["REMOTE_ADDR"] = "10.42.0.150"
    assert login(moved, voucher.code).status_code == 303
    last = [c for c in gateway.received if c.op == "authorize"][-1]
    assert last.fields == {"sid": session.sid, "ip": "10.42.0.150"}, "the gateway moves it to the new address"
    assert session_for_mac(r, PHONE_MAC).sid == session.sid, "the same session"


def test_free_sessions_per_hour_are_bounded_for_the_whole_library(app, phone, r, gateway, clock):
    # issue 16: made-up MACs each got a free session; the hour's bound holds whatever the MAC
    hour = int(NOW // 3600)
    r.set(keys.free_hour(hour), app.config["HOTSPOT"].portal.free_per_hour)
    response = phone.post("/free", data={"token": fresh_token(phone)})
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
    assert "Sesi gratis untuk jam ini sudah habis" in response.get_data(as_text=True)
    english = phone.post("/free?lang=en", data={"token": fresh_token(phone)}).get_data(as_text=True)
    assert "The free sessions for this hour are all taken" in english
    assert session_for_mac(r, PHONE_MAC) is None
    assert r.hget(keys.COUNTERS, "free_logins_refused_hour") == "2"


def test_free_session_logout_asks_first_and_says_no_code(phone, r, gateway):
    """A free session has no code to log in again with, and logging out ends the day's free time."""
    phone.post("/free", data={"token": fresh_token(phone)})
    page = phone.get("/status?lang=id").get_data(as_text=True)
    assert 'href="/status?confirm=logout&amp;lang=id"' in page, "the first tap only asks"
    assert 'action="/logout' not in page
    page = phone.get("/status?confirm=logout&lang=id").get_data(as_text=True)
    assert "Waktu gratis hari ini" in page and "Ya, keluar" in page and "Tetap terhubung" in page
    assert session_for_mac(r, PHONE_MAC) is not None, "asking ends nothing"
    response = phone.post("/logout?lang=id", data={"token": fresh_token(phone)})
    assert response.headers["Location"] == "/?bye=free&lang=id"
    page = phone.get(response.headers["Location"]).get_data(as_text=True)
    assert "kode yang sama" not in page, "there was no code"
    assert "Waktu gratis hari ini untuk perangkat ini sudah berakhir" in page
    assert session_for_mac(r, PHONE_MAC) is None


def test_voucher_logout_needs_no_confirmation(phone, r, gateway, voucher):
    login(phone, voucher.code)
    page = phone.get("/status?lang=id").get_data(as_text=True)
    assert 'action="/logout?lang=id"' in page and "confirm=logout" not in page


def test_status_page_writes_indonesian_numbers(phone, r, gateway, voucher):
    login(phone, voucher.code)
    sid = session_for_mac(r, PHONE_MAC).sid
    r.hset(keys.session(sid), mapping={"bytes_down": 12_000_000, "bytes_up": 300_000})
    page = phone.get("/status?lang=id").get_data(as_text=True)
    assert "12,3 MB" in page and "sampai 17.00" in page and "hingga 4 Mbps" in page, "Babel's id conventions"


def test_the_short_name_is_printed_and_served(phone, r, gateway, voucher):
    """http://wifi.perpus (portal.local_name) is on the splash, online and status pages, and the
    portal answers it as itself (not as a foreign host to redirect)."""
    for page in (phone.get("/?lang=id"), phone.get("/?lang=id", headers={"Host": "wifi.perpus"})):
        assert page.status_code == 200
        assert "buka http://wifi.perpus/status di browser Anda" in page.get_data(as_text=True)
        assert "(atau http://10.42.0.1:8080/status)" in page.get_data(as_text=True)
    login(phone, voucher.code)
    for path in ("/online?lang=id", "/status?lang=id"):
        page = phone.get(path, headers={"Host": "wifi.perpus"})
        assert page.status_code == 200 and "http://wifi.perpus/status" in page.get_data(as_text=True), path


def test_one_tap_survey_on_the_login_form(app, phone, phone2, stranger, r, gateway, voucher):
    """Android closes its sign-in window as soon as the network works, before the online page's
    questions are seen: the same questions are on the login form (folded away, so the Connect
    button stays in sight), optional, counted with the login."""
    from dataclasses import replace

    page = phone.get("/?lang=id").get_data(as_text=True)
    form = page.split('action="/login?lang=id"')[1].split("</form>")[0]
    assert 'type="radio" name="q_purpose" value="school"' in form and "Tugas sekolah atau kuliah" in form
    assert 'type="radio" name="q_age" value="16_30"' in form and 'name="q_business" value="no"' in form
    assert form.index("<details") < form.index('<button type="submit">'), "the button right below, folded"
    assert 'formaction="/free?lang=id"' in form, "the free button sends the answers too"
    day = date(2027, 1, 15)
    form = {"code": voucher.code, "token": fresh_token(phone), "q_purpose": "school", "q_gender": "unsaid"}
    response = phone.post("/login", data=form)
    assert response.status_code == 303
    assert survey.totals(r, day, day) == {"purpose": {"school": 1}, "gender": {"unsaid": 1}}
    page = phone.get("/online").get_data(as_text=True)
    assert "Tugas sekolah" not in page and "Perempuan" not in page, "not asked twice"
    assert "Berapa usia Anda?" in page, "the questions not answered yet are"
    # a bad answer never blocks the login; the free button carries the answers as well
    response = phone2.post("/free", data={"token": fresh_token(phone2), "q_purpose": "gaming", "code": ""})
    assert response.status_code == 303 and session_for_mac(r, PHONE2_MAC) is not None
    assert survey.totals(r, day, day) == {"purpose": {"school": 1}, "gender": {"unsaid": 1}}
    config = app.config["HOTSPOT"]
    off = replace(config.portal.survey, enabled=False)
    app.config["HOTSPOT"] = replace(config, portal=replace(config.portal, survey=off))
    page = stranger.get("/?lang=id")
    assert page.status_code == 200 and 'name="q_' not in page.get_data(as_text=True)
