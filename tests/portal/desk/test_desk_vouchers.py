"""Issuing, printing, listing, revoking and extending vouchers at the desk (Flask client, real Redis)."""

from __future__ import annotations

import re
import time

import pytest

from gateway.model import keys
from gateway.model.plans import set_available
from gateway.model.sessions import get_session, online_sessions
from gateway.model.vouchers import format_code, get_voucher, redeem

CODE = re.compile(r'<div class="code">([0-9A-Z]{4}-[0-9A-Z]{4})</div>')


@pytest.fixture
def siti(desk):
    desk.login("siti")
    return desk


def _issue(desk, **form):
    page = desk.client.get("/desk/issue").get_data(as_text=True)
    request_id = re.search(r'name="request_id" value="([^"]+)"', page).group(1)
    data = {
        "plan": "harian",
        "count": "10",
        "note": "kelas komputer Selasa",
        "request_id": request_id,
        **form,
    }
    return desk.post("/desk/issue", data), data


def test_issue_ten_and_print_the_sheet(siti, r, hotspot_config):
    response, _ = _issue(siti)
    assert response.status_code == 302
    batch_url = response.headers["Location"]
    assert re.fullmatch(r"/desk/batches/[0-9a-f]{8}", batch_url)
    page = siti.text(batch_url)
    assert "10 voucher dibuat." in page and "kelas komputer Selasa" in page
    sheet = siti.text(batch_url + "/print")
    codes = CODE.findall(sheet)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert sheet.count('src="data:image/svg+xml') == 20, "two QR codes per card (Wi-Fi, code), inline"
    assert sheet.count('<section class="page">') == 1
    assert "Sambungkan ke Wi-Fi “Perpus Sukabumi” (atau pindai QR 1)." in sheet, "which network to join"
    assert "jika tidak, buka http://wifi.perpus" in sheet, "works when the sign-in page does not open"
    assert hotspot_config.library.name in sheet
    assert "Telkom Indonesia" in sheet and "Coca-Cola Foundation Indonesia" in sheet and "PerpuSeru" in sheet
    assert "Harian (2 jam)" in sheet
    english = siti.text(batch_url + "/print?cards=en")
    assert "Join the Wi-Fi “Perpus Sukabumi” (or scan QR 1)." in english and "Daily (2 hours)" in english
    stored = {format_code(c) for c in r.zrange(keys.VOUCHERS, 0, -1)}
    assert stored == set(codes)


def test_qr_opens_the_portal_login_with_the_code(siti, hotspot_config):
    import segno  # noqa: F401  (the helper the sheet uses)

    from portal.desk.render import card_url

    assert card_url(hotspot_config.portal.url, "ABCD-EFGH") == "http://10.42.0.1:8080/?code=ABCD-EFGH"


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"count": "0"}, "angka 1 sampai 1000"),
        ({"count": "100000"}, "angka 1 sampai 1000"),
        ({"count": "-3"}, "angka 1 sampai 1000"),
        ({"count": "sepuluh"}, "angka 1 sampai 1000"),
        ({"count": "9" * 5000}, "angka 1 sampai 1000"),
        ({"plan": "tidak-ada"}, "Pilih paket."),
        ({"note": "x" * 500}, "Catatan terlalu panjang"),
        ({"request_id": ""}, "Formulir tidak lengkap"),
        ({"request_id": "<script>"}, "Formulir tidak lengkap"),
    ],
)
def test_bad_issue_forms_issue_nothing(siti, r, form, message):
    response, _ = _issue(siti, **form)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert r.zcard(keys.VOUCHERS) == 0 and r.zcard(keys.BATCHES) == 0


def test_a_form_sent_twice_issues_one_batch(siti, r):
    first, data = _issue(siti)
    again = siti.post("/desk/issue", data)
    assert again.status_code == 302 and again.headers["Location"] == first.headers["Location"]
    assert r.zcard(keys.BATCHES) == 1 and r.zcard(keys.VOUCHERS) == 10
    assert "Formulir ini sudah dikirim" in siti.text(again.headers["Location"])


def test_switched_off_plan_cannot_be_issued(siti, r, hotspot_config):
    set_available(r, hotspot_config.plans, "harian", False, actor="admin", now=time.time())
    assert 'value="harian"' not in siti.text("/desk/issue")
    response, _ = _issue(siti)
    assert response.status_code == 400 and "Paket ini sedang dimatikan" in response.get_data(as_text=True)
    assert r.zcard(keys.VOUCHERS) == 0


def _batch(siti, r, count="3"):
    response, _ = _issue(siti, count=count)
    batch_id = response.headers["Location"].rsplit("/", 1)[1]
    codes = r.lrange(keys.batch_codes(batch_id), 0, -1)
    return batch_id, [get_voucher(r, c) for c in codes]


def test_list_filter_find_and_no_codes_in_urls(siti, r, hotspot_config):
    batch_id, vouchers = _batch(siti, r)
    now = time.time()
    redeem(
        r, vouchers[0].code, mac="02:00:00:00:01:01", ip="10.42.0.101", plans=hotspot_config.plans, now=now
    )
    page = siti.text("/desk/vouchers")
    assert all(v.display_code in page for v in vouchers)
    in_use = siti.text("/desk/vouchers?state=in_use")
    assert vouchers[0].display_code in in_use and vouchers[1].display_code not in in_use
    assert vouchers[0].display_code in siti.text(f"/desk/vouchers?batch={batch_id}&plan=harian")
    for bad in ("?state=bogus", "?plan=nope", "?batch=../../x", "?page=-1", "?page=99999999"):
        assert siti.client.get("/desk/vouchers" + bad).status_code == 400
    found = siti.post("/desk/vouchers/find", {"code": vouchers[1].display_code.lower().replace("-", " ")})
    assert found.headers["Location"] == f"/desk/vouchers/{vouchers[1].id}"
    assert vouchers[1].code not in found.headers["Location"]
    missing = siti.post("/desk/vouchers/find", {"code": "ZZZZ-ZZZZ"})
    assert missing.headers["Location"] == "/desk/vouchers"
    assert siti.client.get("/desk/vouchers/ffffffffff").status_code == 404
    assert siti.client.get("/desk/batches/zzzz").status_code == 404


def test_revoke_ends_the_session_and_extend_adds_time(siti, r, hotspot_config):
    _batch_id, vouchers = _batch(siti, r)
    now = time.time()
    session = redeem(r, vouchers[0].code, mac="02:00:00:00:01:01", ip="10.42.0.101",
                     plans=hotspot_config.plans, now=now)  # fmt: skip
    page = siti.text(f"/desk/vouchers/{vouchers[0].id}")
    assert "02:00:00:00:01:01" in page and "sedang dipakai" in page
    extended = siti.post(f"/desk/vouchers/{vouchers[0].id}/extend", {"time": "1h"})
    assert extended.status_code == 302
    assert get_session(r, session.sid).expires_at == pytest.approx(session.expires_at + 3600, abs=1)
    assert siti.post(f"/desk/vouchers/{vouchers[0].id}/extend", {"time": "99d"}).status_code == 400
    assert siti.post(f"/desk/vouchers/{vouchers[0].id}/extend", {"data": "500MB"}).status_code == 302
    assert get_voucher(r, vouchers[0].code).quota_extra == 0, "no quota plan: nothing added"

    page = siti.text(f"/desk/vouchers/{vouchers[0].id}")
    assert 'name="confirm" value="yes" required' in page and '<button class="danger">Cabut</button>' in page
    unticked = siti.post(f"/desk/vouchers/{vouchers[0].id}/revoke")
    assert "Centang kotaknya" in siti.text(unticked.headers["Location"]), "irreversible: asks first"
    assert get_session(r, session.sid).state == "online" and get_voucher(r, vouchers[0].code).revoked_at == 0
    response = siti.post(f"/desk/vouchers/{vouchers[0].id}/revoke", {"confirm": "yes"})
    assert response.status_code == 302
    assert get_session(r, session.sid).end_reason == "revoked" and online_sessions(r) == []
    again = siti.post(f"/desk/vouchers/{vouchers[0].id}/revoke", {"confirm": "yes"})
    assert "Voucher ini sudah dicabut." in siti.text(again.headers["Location"])
    history = siti.text(f"/desk/vouchers/{vouchers[0].id}")
    assert "Mencabut voucher" in history and "Memperpanjang voucher: tambah 1 jam" in history
    assert "siti" in history


def test_revoke_a_whole_batch_needs_the_tick(siti, r):
    batch_id, vouchers = _batch(siti, r)
    siti.post(f"/desk/batches/{batch_id}/revoke")
    assert get_voucher(r, vouchers[0].code).revoked_at == 0
    siti.post(f"/desk/batches/{batch_id}/revoke", {"confirm": "yes"})
    assert all(get_voucher(r, v.code).revoked_at for v in vouchers)
    assert "Tidak ada kartu untuk dicetak" in siti.text(f"/desk/batches/{batch_id}/print")


def test_a_sheet_without_a_network_name_has_one_qr_per_card(siti, app, hotspot_config):
    from dataclasses import replace

    app.config["HOTSPOT"] = replace(hotspot_config, library=replace(hotspot_config.library, wifi_name=""))
    response, _ = _issue(siti)
    sheet = siti.text(response.headers["Location"] + "/print")
    assert sheet.count('src="data:image/svg+xml') == 10 and "Sambungkan ke Wi-Fi perpustakaan." in sheet


def test_wifi_join_text_escapes_the_name():
    from portal.desk.render import wifi_join_text

    assert wifi_join_text("Perpus Sukabumi") == "WIFI:S:Perpus Sukabumi;T:nopass;;"
    assert wifi_join_text('a;b\\c:d,"e') == 'WIFI:S:a\\;b\\\\c\\:d\\,\\"e;T:nopass;;'


def test_reprint_one_card_and_choose_the_paper(siti, r):
    batch_id, vouchers = _batch(siti, r)
    page = siti.text(f"/desk/vouchers/{vouchers[0].id}")
    assert f'action="/desk/vouchers/{vouchers[0].id}/print"' in page and "Cetak ulang kartu ini" in page
    one = siti.text(f"/desk/vouchers/{vouchers[0].id}/print")
    assert CODE.findall(one) == [format_code(vouchers[0].code)], "just that card"
    slip = siti.text(f"/desk/vouchers/{vouchers[0].id}/print?layout=slip")
    assert 'class="slip"' in slip and "sheet-slip.css" in slip and "printer struk 80 mm" in slip
    assert 'name="layout"' in siti.text(f"/desk/batches/{batch_id}")
    whole = siti.text(f"/desk/batches/{batch_id}/print?layout=slip")
    assert whole.count('<section class="page">') == len(vouchers), "one card per slip"
    assert siti.text(f"/desk/batches/{batch_id}/print?layout=bogus").count('<section class="page">') == 1
    siti.post(f"/desk/vouchers/{vouchers[0].id}/revoke", {"confirm": "yes"})
    assert CODE.findall(siti.text(f"/desk/vouchers/{vouchers[0].id}/print")) == [], (
        "a revoked card is not printed"
    )
