"""Requests for other hosts (OS probes, any page) are redirected to the splash, uncached."""

from __future__ import annotations

import pytest

from gateway.model import keys

from .conftest import PHONE_IP, PHONE_MAC

PORTAL = "http://10.42.0.1:8080/"
NEXT_KEY = keys.portal_next(f"{PHONE_MAC}@{PHONE_IP}")

PROBES = [
    ("connectivitycheck.gstatic.com", "/generate_204"),  # Android, ChromeOS
    ("clients3.google.com", "/generate_204"),
    ("www.google.com", "/gen_204"),
    ("captive.apple.com", "/hotspot-detect.html"),  # iOS, macOS
    ("www.apple.com", "/library/test/success.html"),
    ("www.msftconnecttest.com", "/connecttest.txt"),  # Windows
    ("detectportal.firefox.com", "/canonical.html"),  # Firefox
    ("nmcheck.gnome.org", "/check_network_status.txt"),  # GNOME
]


@pytest.mark.parametrize(("host", "path"), PROBES)
def test_every_probe_is_redirected_to_the_splash(phone, r, host, path):
    response = phone.get(path, headers={"Host": host, "User-Agent": "CaptiveNetworkSupport-355 wispr"})
    assert response.status_code == 302
    assert response.headers["Location"] == PORTAL
    assert "no-store" in response.headers["Cache-Control"]
    assert response.headers["Expires"] == "0"
    assert response.headers["Connection"] == "close"
    assert PORTAL in response.get_data(as_text=True)
    assert r.get(NEXT_KEY) is None, "a probe is not a page to continue to"


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
@pytest.mark.parametrize("path", ["/", "/login", "/desk/", "/api/captive", "/a/b/../c?x=%ff", "/%00"])
def test_any_method_and_path_on_another_host_is_redirected(phone, method, path):
    response = phone.open(path, method=method, headers={"Host": "example.com"})
    assert response.status_code == 302
    assert response.headers["Location"] == PORTAL


@pytest.mark.parametrize(
    "host", ["", "bad host", "a\tb", "x" * 300, "[::1", "例え.jp", "..", "10.42.0.1:99999"]
)
def test_odd_host_headers_are_redirected_not_errors(phone, host):
    response = phone.get("/", headers={"Host": host})
    assert response.status_code == 302


@pytest.mark.parametrize(
    "host", ["10.42.0.1:8080", "10.42.0.1", "10.42.0.1:80", "10.42.0.1:8443", "localhost"]
)
def test_the_portals_own_addresses_are_served(phone, host):
    response = phone.get("/", headers={"Host": host})
    assert response.status_code == 200
    assert "Perpustakaan Daerah Kabupaten Sukabumi" in response.get_data(as_text=True)


def test_the_page_first_asked_for_is_remembered_server_side(phone, r):
    response = phone.get(
        "/berita/hari-ini?q=perpustakaan", headers={"Host": "example.com", "Accept": "text/html,*/*"}
    )
    assert response.status_code == 302 and response.headers["Location"] == PORTAL, "no URL in the redirect"
    assert r.get(NEXT_KEY) == "http://example.com/berita/hari-ini?q=perpustakaan"
    assert 0 < r.ttl(NEXT_KEY) <= 1800
    # a picture or script on that page (not a navigation) does not replace it
    phone.get("/logo.png", headers={"Host": "cdn.example.com", "Accept": "image/webp,*/*"})
    phone.get("/app.js", headers={"Host": "cdn.example.com", "Sec-Fetch-Dest": "script"})
    assert r.get(NEXT_KEY).startswith("http://example.com/berita")
    # a new page does
    phone.get("/", headers={"Host": "news.example.org", "Sec-Fetch-Dest": "document"})
    assert r.get(NEXT_KEY) == "http://news.example.org/"


def test_redirects_need_no_redis(hotspot_config, neighbours):
    from dataclasses import replace

    from portal import create_app

    dead = replace(hotspot_config, redis_url="unix:///nonexistent/redis.sock")
    app = create_app({"HOTSPOT": dead, "TESTING": True, "MAC_LOOKUP": neighbours.get})
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "10.42.0.100"
    probe = client.get("/generate_204", headers={"Host": "connectivitycheck.gstatic.com"})
    assert probe.status_code == 302
    page = client.get("/", headers={"Host": "example.com", "Accept": "text/html"})
    assert page.status_code == 302, "remembering the page fails quietly; the redirect still happens"
    assert client.get("/").status_code == 503
