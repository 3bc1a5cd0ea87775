"""The desk's door: sign in, expiry, the wrong-password limit, CSRF, roles."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import pytest

from gateway.model import keys
from gateway.model.accounts import change_role

NOW = 1_800_000_000.0


def test_signed_out_goes_to_login_in_indonesian(desk):
    response = desk.client.get("/desk/vouchers?state=unused")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/desk/login?next=")
    page = desk.text("/desk/login")
    assert '<html lang="id">' in page and "Masuk ke meja pustakawan" in page
    assert "Sign in to the librarian desk" in desk.text("/desk/login?lang=en")


def test_login_lands_on_the_page_asked_for_and_logout_ends_it(desk, r):
    response = desk.login("siti", next="/desk/vouchers?state=unused")
    assert response.status_code == 302 and response.headers["Location"] == "/desk/vouchers?state=unused"
    assert "Voucher" in desk.text("/desk/")
    assert r.hget(keys.account("siti"), "last_login") != "0"
    token = desk.token("/desk/")
    desk.client.post("/desk/logout", data={"csrf_token": token})
    assert desk.client.get("/desk/").status_code == 302
    assert not list(r.scan_iter("hs:desk:session:*"))


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/desk", "/desk\\..\\x", "javascript:x"]
)
def test_no_open_redirect_after_login(desk, target):
    response = desk.login("siti", next=target)
    assert response.status_code == 302 and response.headers["Location"] == "/desk/"


def test_wrong_password_then_lockout_even_for_the_right_one(desk, hotspot_config):
    limit = hotspot_config.desk.max_failures
    for _ in range(limit - 1):
        response = desk.login("siti", "wrong-password")
        assert response.status_code == 200 and "Nama akun atau kata sandi salah." in response.get_data(
            as_text=True
        )
    response = desk.login("siti", "wrong-password")
    assert response.status_code == 429
    response = desk.login("siti")  # right password, but locked
    assert response.status_code == 429 and "Terlalu banyak" in response.get_data(as_text=True)
    assert desk.client.get("/desk/").status_code == 302


def test_unknown_account_and_empty_fields(desk):
    assert "Nama akun atau kata sandi salah." in desk.login("nobody", "whatever-1").get_data(as_text=True)
    assert "Isi nama akun dan kata sandi." in desk.login("", "").get_data(as_text=True)
    assert desk.login("x" * 10_000, "y").status_code in (200, 413)


def test_forms_without_csrf_token_are_refused_and_change_nothing(desk, r):
    response = desk.client.post("/desk/login", data={"name": "siti", "password": "rahasia-siti"})
    assert response.status_code == 400 and "Formulir ini sudah kedaluwarsa" in response.get_data(as_text=True)
    desk.login("siti")
    response = desk.client.post(
        "/desk/issue", data={"plan": "harian", "count": "5", "request_id": "abcdefgh12"}
    )
    assert response.status_code == 400
    assert r.zcard(keys.VOUCHERS) == 0
    response = desk.client.post(
        "/desk/issue",
        data={"plan": "harian", "count": "5", "request_id": "abcdefgh12", "csrf_token": "forged"},
    )
    assert response.status_code == 400 and r.zcard(keys.VOUCHERS) == 0


def test_an_expired_desk_login_changes_nothing(desk, r):
    desk.login("siti")
    token = desk.token("/desk/issue")
    for key in r.scan_iter("hs:desk:session:*"):
        r.hset(key, "expires_at", "1000")  # long past
    response = desk.client.post(
        "/desk/issue", data={"plan": "harian", "count": "5", "request_id": "abcdefgh12", "csrf_token": token}
    )
    assert response.status_code == 302 and response.headers["Location"] == "/desk/login"
    assert r.zcard(keys.VOUCHERS) == 0
    assert "Sesi Anda sudah berakhir" in desk.text("/desk/login")


@pytest.mark.parametrize("path", ["/desk/accounts", "/desk/plans", "/desk/activity"])
def test_librarians_cannot_open_admin_pages(desk, path):
    desk.login("siti")
    response = desk.client.get(path)
    assert response.status_code == 403 and "Halaman ini hanya untuk admin." in response.get_data(as_text=True)


def test_librarian_cannot_post_admin_forms(desk, r):
    desk.login("siti")
    assert desk.post("/desk/plans", {"plan": "harian", "available": "no"}).status_code == 403
    assert not r.exists(keys.PLANS_DISABLED)
    response = desk.post("/desk/accounts", {"action": "add", "name": "budi", "password": "rahasia-budi",
                                            "role": "admin"})  # fmt: skip
    assert response.status_code == 403 and not r.exists(keys.account("budi"))


def test_a_role_change_counts_at_once(desk, r):
    desk.login("admin")
    assert desk.client.get("/desk/accounts").status_code == 200
    change_role(r, "siti", "admin", actor="test", now=NOW)
    change_role(r, "admin", "librarian", actor="test", now=NOW)
    assert desk.client.get("/desk/accounts").status_code == 302, "a role change ends the account's logins"


def test_own_password_change(desk):
    desk.login("siti")
    bad = desk.post("/desk/account", {"current": "wrong", "new": "baru-rahasia", "again": "baru-rahasia"},
                    token_from="/desk/account")  # fmt: skip
    assert "Kata sandi Anda sekarang salah." in bad.get_data(as_text=True)
    form = {"current": "rahasia-siti", "new": "baru-rahasia", "again": "baru-rahasia"}
    ok = desk.post("/desk/account", form, token_from="/desk/account")
    assert ok.status_code == 302
    assert desk.login("siti", "baru-rahasia").headers["Location"] == "/desk/"


def test_desk_networks_hide_the_desk_from_other_devices(hotspot_config, r):
    from dataclasses import replace

    from portal import create_app

    desk_only = replace(
        hotspot_config, desk=replace(hotspot_config.desk, networks=(ip_network("10.42.0.10/32"),))
    )
    client = create_app({"HOTSPOT": desk_only, "TESTING": True}).test_client()
    refused = client.get("/desk/login", environ_base={"REMOTE_ADDR": "10.42.0.77"})
    assert refused.status_code == 403, "a visitor's phone does not get the desk"
    body = refused.get_data(as_text=True)
    assert "10.42.0.77" in body and "desk.networks" in body and 'name="password"' not in body
    page = client.get("/desk/login", environ_base={"REMOTE_ADDR": "10.42.0.10"})
    assert page.status_code == 200


def test_the_desk_defaults_to_the_admin_side_only(tmp_path):
    """Without desk.networks, only network.admin_networks and the router itself see the desk."""
    from gateway.config import load

    path = tmp_path / "hotspot.toml"
    path.write_text(
        '[library]\nid = "lab"\nname = "Lab"\n[network]\nlan_interface = "lan0"\n'
        'wan_interface = "wan0"\nlan_address = "10.42.0.1/24"\nadmin_networks = ["192.168.7.0/24"]\n'
        '[uplink]\ndown = "10mbit"\nup = "10mbit"\n[portal]\nurl = "http://10.42.0.1:8080"\n'
    )
    networks = load(path).desk.networks
    assert ip_network("192.168.7.0/24") in networks and ip_network("127.0.0.0/8") in networks
    assert not any(ip_address("10.42.0.150") in n for n in networks), "a phone on the LAN is not in"


def test_a_right_password_does_not_clear_earlier_wrong_ones(desk, hotspot_config):
    # issue 16: the same atomic limit as voucher codes; a success gives back only its own try
    limit = hotspot_config.desk.max_failures
    for _ in range(limit - 1):
        assert desk.login("siti", "wrong-password").status_code == 200
    assert desk.login("siti").status_code == 302
    desk.client.post("/desk/logout", data={"csrf_token": desk.token("/desk/")})
    assert desk.login("siti", "wrong-password").status_code == 429, "the last wrong one locks"
