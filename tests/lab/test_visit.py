"""A visit end to end in the lab: the gateway's nftables, the portal, the lab's internet.

- curl from phone namespaces emulates each OS's probe before login (302 to the splash)
  and after it (the real answer from the upstream, so the OS closes its window);
- headless Chromium in a phone namespace goes from ``http://example.com/`` to online by
  typing a voucher, in Indonesian and in English, and saves the screenshots the docs use.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from gateway.lab.upstream import APPLE_SUCCESS, FIREFOX_CANONICAL, UPSTREAM_MARKER
from gateway.model import commands, survey
from gateway.model.sessions import end_session, session_for_mac
from gateway.model.store import connect
from gateway.model.vouchers import format_code, issue_batch

pytestmark = pytest.mark.lab

HERE = Path(__file__).parent
# Screenshots go to tests/artifacts (not tracked); HOTSPOT_UPDATE_SCREENSHOTS=1 refreshes
# the ones the README shows in docs/img.
DOCS_IMG = (
    HERE.parents[1] / "docs" / "img"
    if os.environ.get("HOTSPOT_UPDATE_SCREENSHOTS") == "1"
    else HERE.parent / "artifacts"
)
PORTAL = "http://10.42.0.1:8080"

# (OS, user agent, probe URL, the real answer's status and body)
PROBES = [
    ("android", "Dalvik/2.1.0 (Linux; U; Android 13; SM-A145F)",
     "http://connectivitycheck.gstatic.com/generate_204", 204, ""),
    ("android-fallback", "Dalvik/2.1.0 (Linux; U; Android 13; SM-A145F)",
     "http://www.google.com/gen_204", 204, ""),
    ("chromeos", "Mozilla/5.0 (X11; CrOS x86_64 15633.69.0)",
     "http://clients3.google.com/generate_204", 204, ""),
    ("ios", "CaptiveNetworkSupport-443.0.2 wispr", "http://captive.apple.com/hotspot-detect.html",
     200, APPLE_SUCCESS),
    ("macos", "CaptiveNetworkSupport-481.0.2 wispr", "http://captive.apple.com/hotspot-detect.html",
     200, APPLE_SUCCESS),
    ("windows", "Microsoft NCSI",
     "http://www.msftconnecttest.com/connecttest.txt", 200, "Microsoft Connect Test"),
    ("firefox", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
     "http://detectportal.firefox.com/canonical.html", 200, FIREFOX_CANONICAL + "\n"),
]  # fmt: skip
IDS = [p[0] for p in PROBES]


def _curl(lab, ns: str, url: str, *args: str) -> tuple[int, str, str, dict]:
    """Return (status, Location, body, headers) of one request from ``ns`` (no redirects followed)."""
    out = lab.exec(ns, "curl", "-s", "-i", "-m", "5", *args, url, timeout=15).stdout
    head, _, body = out.replace("\r\n", "\n").partition("\n\n")
    lines = head.splitlines()
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:] if ": " in line)}
    status = int(lines[0].split()[1]) if lines else 0
    return status, headers.get("location", ""), body, headers


def _login_with_curl(lab, ns: str, code: str) -> int:
    page = _curl(lab, ns, f"{PORTAL}/")[2]
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    return _curl(lab, ns, f"{PORTAL}/login", "-d", f"code={code}&token={token}")[0]


def _log_out(lab, mac: str) -> None:
    config = lab.config()
    r = connect(config)
    session = session_for_mac(r, mac)
    if session is not None:
        end_session(r, session.sid, "logout", time.time())
        commands.request(r, "deauthorize", config.gateway.ack_timeout, sid=session.sid)


@pytest.fixture(scope="module")
def vouchers(lab):
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    config = lab.config()
    return issue_batch(connect(config), config.plans["harian"], 4, now=time.time(), issued_by="test_visit")


@pytest.fixture
def fresh_phone(lab):
    """Return phone ``index``'s (namespace, MAC), logged out now and again after the test."""
    used = []

    def make(index: int) -> tuple[str, str]:
        used.append(lab.client_mac(index))
        _log_out(lab, used[-1])
        return lab.spec.client(index), used[-1]

    yield make
    for mac in used:
        _log_out(lab, mac)


@pytest.fixture(scope="module")
def online_phone(lab, vouchers):
    """Phone 3, logged in with a voucher through the portal (as curl would)."""
    ns, mac = lab.spec.client(3), lab.client_mac(3)
    _log_out(lab, mac)
    assert _login_with_curl(lab, ns, vouchers[0].code) == 303
    yield ns
    _log_out(lab, mac)


@pytest.mark.parametrize(("os_name", "agent", "url", "status", "body"), PROBES, ids=IDS)
def test_probe_before_login_is_redirected_to_the_splash(lab, os_name, agent, url, status, body):
    ns = lab.spec.client(4)
    _log_out(lab, lab.client_mac(4))
    got, location, _, headers = _curl(lab, ns, url, "-A", agent)
    assert got == 302 and location == f"{PORTAL}/", os_name
    assert "no-store" in headers["cache-control"] and headers["connection"] == "close"
    assert _curl(lab, ns, location)[0] == 200, "the splash itself is reachable before login"
    assert _curl(lab, ns, "https://example.com/")[0] == 0, "HTTPS fails fast (reset) before login"


@pytest.mark.parametrize(("os_name", "agent", "url", "status", "body"), PROBES, ids=IDS)
def test_probe_after_login_gets_the_real_answer(lab, online_phone, os_name, agent, url, status, body):
    got, _, text, _ = _curl(lab, online_phone, url, "-A", agent)
    assert (got, text) == (status, body), os_name


def test_the_short_name_reaches_the_portal_before_and_after_login(lab, online_phone):
    """http://wifi.perpus (portal.local_name): the router's dnsmasq answers the name with its own
    address and the firewall sends port 80 there to the portal, for phones online or not."""
    config = lab.config()
    assert config.portal.local_name == "wifi.perpus"
    status, _, body, _ = _curl(lab, online_phone, "http://wifi.perpus/status")
    assert status == 200 and "Sisa waktu" in body and "http://wifi.perpus/status" in body
    ns = lab.spec.client(4)
    _log_out(lab, lab.client_mac(4))
    status, _, body, _ = _curl(lab, ns, "http://wifi.perpus/?lang=id")
    assert status == 200 and "Kode voucher" in body, "the splash itself, not a redirect"


def test_logout_puts_the_phone_behind_the_portal_again(lab, online_phone):
    page = _curl(lab, online_phone, f"{PORTAL}/status")[2]
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)
    status, location, _, _ = _curl(lab, online_phone, f"{PORTAL}/logout", "-d", f"token={token}")
    assert status == 303 and location.startswith("/?bye=1")
    got, location, _, _ = _curl(lab, online_phone, "http://connectivitycheck.gstatic.com/generate_204")
    assert got == 302 and location == f"{PORTAL}/"


def _browse(lab, ns: str, plan: dict) -> dict:
    plan = {"user_data_dir": str(lab.dir / f"chromium-{ns}-{time.monotonic_ns()}"), **plan}
    result = lab.exec(ns, lab.python, str(HERE / "phone_browser.py"), input=json.dumps(plan), timeout=180)
    assert result.stdout.strip(), result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _check(outcome: dict) -> None:
    assert outcome["ok"], f"{outcome.get('error', '')[:600]} at {outcome.get('url')}\n{outcome.get('text')}"


def test_browser_visit_in_indonesian(lab, vouchers, fresh_phone):
    ns, mac = fresh_phone(5)
    code = format_code(vouchers[1].code).lower()
    outcome = _browse(lab, ns, {
        "start": "http://example.com/",
        "accept_language": "id-ID,id;q=0.9",
        "steps": [
            ["wait_text", "Kode voucher", 10],
            ["shot", str(DOCS_IMG / "splash-id.png")],
            ["resources"],
            ["type_code", code],
            ["wait_text", "Anda sudah terhubung", 10],
            ["shot", str(DOCS_IMG / "online-id.png")],
            ["click_text", "Lanjut ke halaman yang Anda buka"],
            ["wait_text", UPSTREAM_MARKER, 10],
        ],
    })  # fmt: skip
    _check(outcome)
    urls = [step["url"] for step in outcome["steps"]]
    assert urls[0] == f"{PORTAL}/", "http://example.com/ landed on the splash"
    assert urls[5].startswith(f"{PORTAL}/online"), "online after typing the voucher"
    assert urls[-1] == "http://example.com/", "then on to the page first asked for"
    assert outcome["resources"] == [], "the splash loads nothing else at all"
    assert "host example.com" in outcome["text"]
    assert session_for_mac(connect(lab.config()), mac).voucher_id == vouchers[1].id


def test_browser_visit_in_english_with_survey_status_and_logout(lab, vouchers, fresh_phone):
    ns, _ = fresh_phone(6)
    outcome = _browse(lab, ns, {
        "start": "http://neverssl.example/welcome",
        "accept_language": "en-US,en;q=0.9",
        "steps": [
            ["wait_text", "Voucher code", 10],
            ["shot", str(DOCS_IMG / "splash-en.png")],
            ["type_code", vouchers[2].code],
            ["wait_text", "You are online", 10],
            ["click_text", "Leisure reading"],
            ["wait_text", "Thank you, your answer is counted.", 10],
            ["click_text", "Skip the questions"],
            ["wait_text", UPSTREAM_MARKER, 10],
            ["get", f"{PORTAL}/status"],
            ["wait_text", "Time left", 10],
            ["shot", str(DOCS_IMG / "status-en.png")],
            ["click_text", "Log out"],
            ["wait_text", "You are logged out", 10],
            ["get", "http://example.com/"],
            ["wait_text", "Voucher code", 10],
        ],
    })  # fmt: skip
    _check(outcome)
    urls = [step["url"] for step in outcome["steps"]]
    assert urls[4].startswith(f"{PORTAL}/online")
    assert urls[6].startswith(f"{PORTAL}/online?thanks=1"), "one tap counts; the questions left come back"
    assert urls[8] == "http://neverssl.example/welcome", "skipping the rest continues to the page"
    assert urls[-1] == f"{PORTAL}/", "after logout the internet sends it back to the splash"
    today = survey.day_of(time.time(), lab.config().library.timezone)
    assert survey.totals(connect(lab.config()), today, today)["purpose"]["reading"] >= 1
