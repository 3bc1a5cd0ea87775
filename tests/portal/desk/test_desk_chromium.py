"""The desk in a real browser: headless Chromium signs in, issues 10 vouchers and prints the sheet.

The portal app is served by werkzeug on 127.0.0.1 (loopback, root namespace, a test
config and the test Redis); Chromium is Debian's, driven by its chromedriver through
selenium, with a fresh profile and background networking off. The test saves
screenshots (and the sheet as PDF) under ``tests/artifacts/`` and decodes every QR code
on the printed sheet with zbarimg, so a card that would not scan fails the test.
``HOTSPOT_UPDATE_SCREENSHOTS=1`` also refreshes the pictures ``docs/`` shows (docs/img).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from gateway.model import keys, survey
from gateway.model.sessions import end_session, new_session, start_session, update_usage
from gateway.model.vouchers import format_code, issue_batch, redeem

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
DOCS_IMG = Path(__file__).resolve().parents[3] / "docs" / "img"
pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()), reason="needs chromium and chromium-driver"
)
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,900",
)  # fmt: skip


@pytest.fixture
def server(hotspot_config, r):
    """Serve the portal app on 127.0.0.1 (an ephemeral port) for the browser; yield (base URL, config).

    The app's config names that address as the portal's own (``portal.url``), as on a
    router, so the portal treats the browser's requests as requests for itself.
    """
    from portal import create_app

    holder: dict = {}
    httpd = make_server("127.0.0.1", 0, lambda environ, start: holder["app"](environ, start), threaded=True)
    base = f"http://127.0.0.1:{httpd.server_port}"
    portal = replace(hotspot_config.portal, port=httpd.server_port, url=base)
    config = replace(hotspot_config, portal=portal)
    holder["app"] = create_app({"HOTSPOT": config, "TESTING": True})
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield base, config
    httpd.shutdown()
    thread.join(5)


@pytest.fixture
def browser(monkeypatch):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # never let selenium look for drivers online
    profile = tempfile.mkdtemp(prefix="hs-desk-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": "id,en"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _seed_today(r, plans):
    """A morning of use (ended sessions) and three visitors online now, for a realistic dashboard."""
    now = time.time()
    for i in range(14):
        start = now - 7 * 3600 + i * 1500
        s = new_session(mac=f"02:00:00:00:05:{i:02x}", ip=f"10.42.0.{120 + i}", kind="voucher", plan="harian",
                        now=start, expires_at=start + 7200, down=1, up=1)  # fmt: skip
        start_session(r, s, start)
        end_session(r, s.sid, "logout", start + 2400 + 300 * (i % 4), bytes_up=3_000_000 * (i % 5 + 1),
                    bytes_down=40_000_000 * (i % 6 + 1))  # fmt: skip
        # the morning's visitors answered some of the survey's questions (anonymous day counts)
        given = {
            "purpose": ("study", "work", "school", "reading")[i % 4],
            "gender": ("female", "male")[i % 3 == 0],
        }
        if i % 2:
            given["age"] = ("16_30", "31_45", "under_16")[i % 3]
        if i % 3 == 1:
            given["business"] = ("yes", "no")[i % 2]
        survey.record(r, given, sid=s.sid, now=now, timezone="Asia/Jakarta", ttl=600)
    vouchers = issue_batch(r, plans["kelas"], 3, now=now - 3600, issued_by="siti", note="kelas komputer")
    for i, v in enumerate(vouchers):
        s = redeem(r, v.code, mac=f"02:00:00:00:01:{i + 1:02x}", ip=f"10.42.0.{101 + i}", plans=plans,
                   now=now - 1800 + i * 400)  # fmt: skip
        update_usage(r, {s.sid: (1_500_000 * (i + 1), 28_000_000 * (i + 2), now)})
        r.hset(keys.session(s.sid), mapping={"rate_down": 1_200_000 * (i + 1), "rate_up": 180_000 * (i + 1)})
    # a running gateway (its heartbeat), so the pictures show a normal day, not the outage banner
    r.set(keys.GATEWAY_HEARTBEAT, "{}", ex=600)


def _sign_in(browser, server: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(server + "/desk/")
    assert "/desk/login" in browser.current_url
    browser.find_element(By.NAME, "name").send_keys("siti")
    browser.find_element(By.NAME, "password").send_keys("rahasia-siti")
    browser.find_element(By.CSS_SELECTOR, "form.stack button").click()
    WebDriverWait(browser, 10).until(EC.url_to_be(server + "/desk/"))


def _click_and_wait(browser, css: str, url_pattern: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    browser.find_element(By.CSS_SELECTOR, css).click()
    WebDriverWait(browser, 10).until(EC.url_matches(url_pattern))


def _screenshot(browser, artifacts: Path, name: str) -> Path:
    """Save a screenshot in tests/artifacts (and in docs/img with HOTSPOT_UPDATE_SCREENSHOTS=1)."""
    path = artifacts / name
    browser.save_screenshot(str(path))
    if os.environ.get("HOTSPOT_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(path, DOCS_IMG / name)
    return path


def _pdf(browser) -> bytes:
    """Print the page as Chromium prints it (CSS page size and margins, backgrounds on)."""
    options = {"printBackground": True, "preferCSSPageSize": True}
    return base64.b64decode(browser.execute_cdp_cmd("Page.printToPDF", options)["data"])


def _page_count(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page[^s]", pdf))


def test_librarian_issues_ten_and_prints_them(server, browser, desk, r, artifacts):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    server, hotspot_config = server
    _seed_today(r, hotspot_config.plans)
    _sign_in(browser, server)
    assert "02:00:00:00:01:01" in browser.page_source and "<svg" in browser.page_source
    _screenshot(browser, artifacts, "desk-dashboard.png")
    browser.get(server + "/desk/reports/day")
    assert "Unduh untuk Excel" in browser.page_source
    _screenshot(browser, artifacts, "desk-report.png")
    survey = browser.find_element(By.CSS_SELECTOR, ".survey-tables")
    assert "Perempuan" in survey.text and "Berapa usia Anda?" in survey.text
    browser.execute_script("arguments[0].scrollIntoView()", survey.find_element(By.XPATH, "preceding::h2[1]"))
    _screenshot(browser, artifacts, "desk-report-survey.png")

    browser.get(server + "/desk/issue")
    Select(browser.find_element(By.NAME, "plan")).select_by_value("harian")
    count = browser.find_element(By.NAME, "count")
    count.clear()
    count.send_keys("10")
    browser.find_element(By.NAME, "note").send_keys("kelas komputer Selasa")
    _click_and_wait(browser, "form.stack button", r"/desk/batches/[0-9a-f]{8}$")
    assert "10 voucher dibuat." in browser.page_source
    _screenshot(browser, artifacts, "desk-batch.png")

    _click_and_wait(browser, ".actions form button", r"/print\?cards=id&layout=a4$")  # "Cetak kartu"
    batch_id = browser.current_url.split("/batches/")[1].split("/")[0]
    codes = [format_code(c) for c in r.lrange(keys.batch_codes(batch_id), 0, -1)]
    cards = browser.find_elements(By.CSS_SELECTOR, "article.card")
    assert len(cards) == 10
    assert [c.find_element(By.CSS_SELECTOR, ".code").text for c in cards] == codes
    # each card keeps its size and place: 95 x 55 mm at 96 dpi, two columns, five rows
    boxes = [(round(c.rect["x"]), round(c.rect["y"]), c.rect["width"], c.rect["height"]) for c in cards]
    assert all(abs(w - 95 / 25.4 * 96) < 3 and abs(h - 55 / 25.4 * 96) < 3 for _, _, w, h in boxes), boxes
    assert len({x for x, *_ in boxes}) == 2 and len({y for _, y, *_ in boxes}) == 5
    assert all(
        browser.execute_script(
            "return arguments[0].scrollWidth <= arguments[0].clientWidth + 1",
            c.find_element(By.CSS_SELECTOR, ".code"),
        )
        for c in cards
    ), "codes fit their cards"
    fits = "return arguments[0].scrollHeight <= arguments[0].clientHeight + 1"
    assert all(browser.execute_script(fits, c) for c in cards), "the steps and marks fit the card"
    first = cards[0].text
    assert "Perpus Sukabumi" in first and "http://wifi.perpus" in first, "which Wi-Fi, and where to go"

    # as printed: print media, an A4 page at 96 dpi rendered at 2x
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    a4 = {"width": 794, "height": 1123, "deviceScaleFactor": 2, "mobile": False}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", a4)
    sheet_png = artifacts / "desk-sheet-2x.png"
    browser.save_screenshot(str(sheet_png))
    pdf = _pdf(browser)
    (artifacts / "desk-sheet.pdf").write_bytes(pdf)
    assert pdf.startswith(b"%PDF") and _page_count(pdf) == 1, "10 cards on one A4 page"

    assert shutil.which("zbarimg"), "zbar-tools is missing: make deps"
    found = subprocess.run(["zbarimg", "--raw", "-q", str(sheet_png)], capture_output=True, text=True).stdout
    urls = sorted(line for line in found.splitlines() if line)
    join = f"WIFI:S:{hotspot_config.library.wifi_name};T:nopass;;"
    wanted = sorted([f"{hotspot_config.portal.url}/?code={c}" for c in codes] + [join] * 10)
    assert urls == wanted, "both QR codes on every card scan: join the Wi-Fi, then the card's code"

    # the page as printed, with the sheet's 10 mm margins, for people to look at
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**a4, "deviceScaleFactor": 1})
    browser.execute_script("document.body.style.padding = '10mm'")
    _screenshot(browser, artifacts, "desk-sheet.png")


def test_eleven_cards_take_two_pages(server, browser, desk, r):
    server, hotspot_config = server
    vouchers = issue_batch(r, hotspot_config.plans["harian"], 11, now=time.time(), issued_by="siti")
    _sign_in(browser, server)
    browser.get(f"{server}/desk/batches/{vouchers[0].batch}/print")
    assert _page_count(_pdf(browser)) == 2


def test_dashboard_never_reloads_under_a_librarians_hands(server, browser, desk, r):
    """The 15-s refresh used to reset what the librarian had picked ("+120 menit" became +15):
    the page now reloads only while no form is being used."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    server, hotspot_config = server
    _seed_today(r, hotspot_config.plans)
    _sign_in(browser, server)
    assert not browser.find_elements(By.CSS_SELECTOR, 'meta[http-equiv="refresh"]')
    browser.execute_script("window.untouched = 1")
    assert browser.execute_script("return window.hotspotDeskRefresh()") is True, "idle: it reloads"
    time.sleep(1)
    assert browser.execute_script("return window.untouched === undefined"), "the page was reloaded"

    extend = Select(browser.find_element(By.CSS_SELECTOR, 'select[name="minutes"]'))
    extend.select_by_value("120")
    browser.execute_script("window.untouched = 1; document.activeElement.blur()")
    assert browser.execute_script("return window.hotspotDeskRefresh()") is False, "a form is in use"
    time.sleep(1)
    assert browser.execute_script("return window.untouched") == 1
    assert (
        Select(
            browser.find_element(By.CSS_SELECTOR, 'select[name="minutes"]')
        ).first_selected_option.get_attribute("value")
        == "120"
    ), "the librarian's choice is kept"


DESK_WIDTHS = (360, 800, 1280)
# every control must be on screen: nothing wider than the window, nothing cut off at its right edge
_OFF_SCREEN = """
const page = document.documentElement;
const width = page.clientWidth;
const out = [];
if (page.scrollWidth > width + 1) out.push('page scrolls sideways: ' + page.scrollWidth);
const controls = 'main button, main select, main input:not([type=hidden]), main a.button';
for (const el of document.querySelectorAll(controls)) {
  if (el.closest('table:not(.cards)')) continue;  // wide data tables scroll inside their own box
  const r = el.getBoundingClientRect();
  if (r.width && (r.left < -1 || r.right > width + 1)) {
    out.push(el.outerHTML.slice(0, 80) + ' at ' + Math.round(r.right));
  }
}
for (const svg of document.querySelectorAll('svg.chart')) {  // axis labels inside the drawing
  const vb = svg.viewBox.baseVal;
  for (const t of svg.querySelectorAll('text')) {
    const b = t.getBBox();
    if (b.x < -0.5 || b.x + b.width > vb.width + 0.5) out.push('chart label cut: ' + t.textContent);
  }
}
return out;
"""


@pytest.mark.parametrize("width", DESK_WIDTHS)
def test_every_desk_page_is_usable_at_phone_tablet_and_pc_widths(server, browser, desk, r, artifacts, width):
    server, hotspot_config = server
    _seed_today(r, hotspot_config.plans)
    vouchers = issue_batch(
        r, hotspot_config.plans["harian"], 3, now=time.time(), issued_by="admin", note="uji"
    )
    desk.login("admin")  # the Flask client's account; the browser signs in as admin too
    browser.get(server + "/desk/")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    browser.find_element(By.NAME, "name").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys("rahasia-admin")
    browser.find_element(By.CSS_SELECTOR, "form.stack button").click()
    WebDriverWait(browser, 10).until(EC.url_to_be(server + "/desk/"))
    metrics = {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    pages = ["/desk/", "/desk/issue", "/desk/vouchers", f"/desk/vouchers/{vouchers[0].id}",
             f"/desk/batches/{vouchers[0].batch}", "/desk/reports/day", "/desk/reports/month",
             "/desk/accounts", "/desk/plans", "/desk/activity", "/desk/account"]  # fmt: skip
    problems = {}
    for path in pages:
        browser.get(server + path)
        found = browser.execute_script(_OFF_SCREEN)
        if found:
            problems[path] = found
    browser.get(server + "/desk/")
    browser.save_screenshot(str(artifacts / f"desk-dashboard-{width}.png"))
    assert problems == {}


def test_reprint_one_card_on_a_receipt_slip(server, browser, desk, r, artifacts):
    """A visitor lost their card: the voucher's page reprints just that one, here on an 80 mm
    receipt printer's slip; the printed slip is one page and both its QR codes scan."""
    server, hotspot_config = server
    vouchers = issue_batch(r, hotspot_config.plans["harian"], 3, now=time.time(), issued_by="siti")
    _sign_in(browser, server)
    browser.get(f"{server}/desk/vouchers/{vouchers[1].id}/print?layout=slip")
    from selenium.webdriver.common.by import By

    cards = browser.find_elements(By.CSS_SELECTOR, "article.card")
    assert [c.find_element(By.CSS_SELECTOR, ".code").text for c in cards] == [format_code(vouchers[1].code)]
    pdf = _pdf(browser)
    (artifacts / "desk-slip.pdf").write_bytes(pdf)
    assert _page_count(pdf) == 1
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    slip = {"width": 302, "height": 416, "deviceScaleFactor": 3, "mobile": False}  # 80 x 110 mm at 96 dpi
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", slip)
    png = artifacts / "desk-slip-3x.png"
    browser.save_screenshot(str(png))
    fits = "return arguments[0].scrollHeight <= arguments[0].clientHeight + 1"
    assert browser.execute_script(fits, cards[0]), "the card's text fits the slip"
    found = subprocess.run(
        ["zbarimg", "--raw", "-q", str(png)], capture_output=True, text=True
    ).stdout.splitlines()
    assert sorted(found) == sorted([f"{hotspot_config.portal.url}/?code={format_code(vouchers[1].code)}",
                                    f"WIFI:S:{hotspot_config.library.wifi_name};T:nopass;;"])  # fmt: skip


def test_axe_on_the_desk(server, browser, desk, r):
    """axe-core (vendored from npm in tests/vendor) on every desk page a librarian uses."""
    from tests.portal.visitor.test_visitor_chromium import axe_violations

    server, hotspot_config = server
    _seed_today(r, hotspot_config.plans)
    vouchers = issue_batch(r, hotspot_config.plans["harian"], 2, now=time.time(), issued_by="siti")
    _sign_in(browser, server)
    found = {}
    for path in ("/desk/", "/desk/issue", "/desk/vouchers", f"/desk/vouchers/{vouchers[0].id}",
                 f"/desk/batches/{vouchers[0].batch}", "/desk/reports/day", "/desk/reports/month",
                 "/desk/help", "/desk/account"):  # fmt: skip
        browser.get(server + path)
        found[path] = axe_violations(browser)
    # the admin's pages, signed in as admin
    from selenium.webdriver.common.by import By

    browser.find_element(By.CSS_SELECTOR, "form.who button").click()
    browser.get(server + "/desk/login")
    browser.find_element(By.NAME, "name").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys("rahasia-admin")
    browser.find_element(By.CSS_SELECTOR, "form.stack button").click()
    for path in ("/desk/accounts", "/desk/plans", "/desk/activity"):
        browser.get(server + path)
        assert "/desk/login" not in browser.current_url
        found[path] = axe_violations(browser)
    assert {path: v for path, v in found.items() if v} == {}
