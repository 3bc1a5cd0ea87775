"""The desk with a certificate configured: HTTPS only, Secure cookie, HSTS (issue 16, item 9)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.portal.desk.conftest import Desk, make_accounts


class HttpsClient(FlaskClient):
    """A test client whose requests arrive over HTTPS (as gunicorn's TLS listener passes them)."""

    def open(self, *args, **kwargs):
        kwargs.setdefault("base_url", "https://10.42.0.1:8443")
        return super().open(*args, **kwargs)


@pytest.fixture
def tls_app(hotspot_config, r):
    from portal import create_app

    portal = replace(hotspot_config.portal, tls_cert=Path("/x/cert.pem"), tls_key=Path("/x/key.pem"))
    return create_app({"HOTSPOT": replace(hotspot_config, portal=portal), "TESTING": True})


def test_desk_over_plain_http_is_sent_to_https(tls_app, r):
    client = tls_app.test_client()
    response = client.get("/desk/login?next=/desk/vouchers", headers={"Host": "10.42.0.1:8080"})
    portal = tls_app.config["HOTSPOT"].portal
    assert response.status_code == 308
    assert (
        response.headers["Location"]
        == f"https://{portal.address}:{portal.tls_port}/desk/login?next=/desk/vouchers"
    )


@pytest.mark.parametrize(("lang", "text"), [("id", "koneksi aman"), ("en", "secure connection")])
def test_a_password_posted_over_plain_http_is_refused(tls_app, r, lang, text):
    make_accounts(r)
    client = tls_app.test_client()
    response = client.post(f"/desk/login?lang={lang}", data={"name": "admin", "password": "rahasia-admin"})
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert text in page and "https://" in page
    assert "Set-Cookie" not in response.headers or "session=" not in response.headers["Set-Cookie"]


def test_desk_over_https_has_hsts_and_a_secure_cookie(tls_app, r):
    make_accounts(r)
    tls_app.test_client_class = HttpsClient
    desk = Desk(tls_app.test_client())
    page = desk.client.get("/desk/login")
    assert page.status_code == 200
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000"
    response = desk.login("admin")
    assert response.status_code == 302
    cookies = [v for k, v in response.headers.items() if k == "Set-Cookie" and v.startswith("session=")]
    assert cookies and all("Secure" in c and "HttpOnly" in c for c in cookies)


def test_without_a_certificate_the_desk_stays_on_http(desk):
    page = desk.client.get("/desk/login")
    assert page.status_code == 200 and "Strict-Transport-Security" not in page.headers
