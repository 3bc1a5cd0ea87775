"""A session is bound to the MAC and address of its login (issue 16, items 3, 4 and 13).

The neighbour table the portal reads can be poisoned ("my address is at your MAC") and a
MAC can be cloned; neither may give another device the victim's session, its logout, or
its "continue" link. A logout the gateway did not confirm is not called done.
"""

from __future__ import annotations

from gateway.model import keys
from gateway.model.sessions import get_session, session_for_mac

from .conftest import PHONE2_IP, PHONE_IP, PHONE_MAC, fresh_token, login
from .test_login import voucher  # noqa: F401 (fixture)


def test_a_request_from_another_address_with_the_victims_mac_is_not_the_victim(
    app,
    phone,
    phone2,
    neighbours,
    r,
    gateway,
    voucher,  # noqa: F811
):
    login(phone, voucher.code)
    session = session_for_mac(r, PHONE_MAC)
    neighbours[PHONE2_IP] = PHONE_MAC  # a clone, or phone2 planted "10.42.0.101 is at <victim MAC>"
    before = len(gateway.received)
    assert phone2.get("/online").headers["Location"].startswith("/?"), "not its session: the splash"
    assert all("ip" not in c.fields for c in gateway.received[before:]), "nothing asked to move"
    assert phone2.get("/status").status_code == 302
    token = fresh_token(phone2)
    assert phone2.post("/logout", data={"token": token}).status_code == 303
    now = get_session(r, session.sid)
    assert now.state == "online" and now.ip == PHONE_IP, "the victim keeps its session, where it was"
    gateway.present = True  # the victim answers at its address
    free = phone2.post("/free", data={"token": fresh_token(phone2)})
    assert free.status_code == 409
    assert all("ip" not in c.fields for c in gateway.received[before:]), "a free login moves nothing"
    assert get_session(r, session.sid).ip == PHONE_IP


def test_a_continue_link_planted_by_another_device_is_not_shown(
    phone,
    phone2,
    neighbours,
    r,
    gateway,
    voucher,  # noqa: F811
):
    neighbours[PHONE2_IP] = PHONE_MAC  # phone2 poisoned the table with the victim's MAC
    phone2.get("/login-here", headers={"Host": "phish.example", "Accept": "text/html"})
    neighbours[PHONE2_IP] = "02:00:00:00:01:02"
    phone.get("/artikel/2", headers={"Host": "example.com", "Accept": "text/html"})
    login(phone, voucher.code)
    page = phone.get("/online").get_data(as_text=True)
    assert "phish.example" not in page and 'href="http://example.com/artikel/2"' in page
    assert r.get(keys.portal_next(f"{PHONE_MAC}@{PHONE2_IP}")) == "http://phish.example/login-here"


def test_a_logout_the_gateway_does_not_confirm_says_so(phone, r, gateway, voucher):  # noqa: F811
    login(phone, voucher.code)
    session = session_for_mac(r, PHONE_MAC)
    gateway.silent = True
    response = phone.post("/logout?lang=en", data={"token": fresh_token(phone)})
    assert response.status_code == 303 and "bye=2" in response.headers["Location"]
    assert get_session(r, session.sid).state == "ended", "ended in our records all the same"
    page = phone.get(response.headers["Location"]).get_data(as_text=True)
    assert "has not confirmed it yet" in page and "You are logged out." not in page
    indonesian = phone.get("/?bye=2&lang=id").get_data(as_text=True)
    assert "belum" in indonesian


def test_a_voucher_login_from_a_clone_does_not_move_or_replace_a_live_session(
    app,
    phone,
    phone2,
    neighbours,
    r,
    gateway,
    voucher,  # noqa: F811
):
    login(phone, voucher.code)
    session = session_for_mac(r, PHONE_MAC)
    neighbours[PHONE2_IP] = PHONE_MAC
    gateway.present = True  # the victim still answers at its address
    before = len(gateway.received)
    response = login(phone2, voucher.code)
    assert response.status_code == 409 and "IP" in response.get_data(as_text=True)
    assert [c.op for c in gateway.received[before:]] == ["present"]
    assert session_for_mac(r, PHONE_MAC).sid == session.sid and get_session(r, session.sid).ip == PHONE_IP
    gateway.present = False  # the phone itself, after a new lease: the old address went quiet
    assert login(phone2, voucher.code).status_code == 303
    assert gateway.received[-1].fields == {"sid": session.sid, "ip": PHONE2_IP}


def test_a_free_session_follows_its_device_once_the_old_address_is_silent(phone, neighbours, r, gateway, app):
    assert phone.post("/free", data={"token": fresh_token(phone)}).status_code == 303
    session = session_for_mac(r, PHONE_MAC)
    neighbours["10.42.0.150"] = PHONE_MAC  # the phone, on a new lease
    moved = app.test_client()
    moved.environ_base["REMOTE_ADDR"] = "10.42.0.150"
    gateway.present = False
    assert moved.post("/free", data={"token": fresh_token(moved)}).status_code == 303
    assert gateway.received[-1].fields == {"sid": session.sid, "ip": "10.42.0.150"}
    assert session_for_mac(r, PHONE_MAC).sid == session.sid, "the same session, not a second free one"
