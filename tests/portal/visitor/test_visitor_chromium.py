"""The visitor pages in a real browser (headless Chromium) at phone widths.

The server and browser fixtures are the desk's (``tests/portal/desk/test_desk_chromium.py``):
the portal on 127.0.0.1, Debian's Chromium through its chromedriver.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

# the desk's Chromium fixtures, shared by name (hence the F811 notes on the tests' arguments)
from tests.portal.desk.test_desk_chromium import browser, pytestmark, server  # noqa: F401

WIDTHS = (320, 360, 390)


def _at_width(driver, width: int) -> None:
    metrics = {"width": width, "height": 780, "deviceScaleFactor": 1, "mobile": True}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)


# each drawn text's box (user units) against its SVG's viewBox: drawn text must not be cut off
_MARK_OVERFLOW = """
const out = [];
for (const svg of document.querySelectorAll('.marks svg')) {
  const vb = svg.viewBox.baseVal;
  for (const t of svg.querySelectorAll('text')) {
    const b = t.getBBox();
    if (b.x < vb.x - 0.5 || b.x + b.width > vb.x + vb.width + 0.5 || b.y < vb.y - 0.5
        || b.y + b.height > vb.y + vb.height + 0.5) {
      const box = [b.x, b.y, b.width, b.height].map(Math.round).join(',');
      out.push(svg.getAttribute('aria-label') + ': ' + t.textContent + ' ' + box);
    }
  }
  const r = svg.getBoundingClientRect();
  if (r.right > document.documentElement.clientWidth + 0.5) {
    out.push('off-screen: ' + svg.getAttribute('aria-label'));
  }
}
return out;
"""


@pytest.mark.parametrize("width", WIDTHS)
def test_marks_fit_at_phone_widths(server, browser, artifacts, width):  # noqa: F811
    base, _config = server
    _at_width(browser, width)
    browser.get(base + "/?lang=id")
    assert browser.execute_script(_MARK_OVERFLOW) == []
    assert browser.execute_script("return document.documentElement.scrollWidth") <= width
    browser.save_screenshot(str(artifacts / f"visitor-splash-{width}.png"))


AXE = Path(__file__).resolve().parents[2] / "vendor" / "axe.min.js"  # axe-core 4.14.1 from npm, tests only


def axe_violations(driver) -> list[str]:
    """Run axe-core on the loaded page as a browser extension would (outside the page's CSP)."""
    driver.execute_script(AXE.read_text() + "\nreturn true;")
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations.map("
        "v => v.impact + ' ' + v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))));"
    )
    return list(result)


def test_axe_finds_nothing_on_the_splash(server, browser):  # noqa: F811
    base, _config = server
    _at_width(browser, 360)
    for lang in ("id", "en"):
        browser.get(f"{base}/?lang={lang}")
        assert axe_violations(browser) == [], lang


@pytest.fixture
def phone_server(hotspot_config, r, gateway):
    """The portal for a browser that is a phone on the LAN: 127.0.0.1 resolves to PHONE_MAC."""
    import threading
    from dataclasses import replace

    from werkzeug.serving import make_server

    from portal import create_app

    from .conftest import PHONE_MAC

    holder: dict = {}
    httpd = make_server("127.0.0.1", 0, lambda environ, start: holder["app"](environ, start), threaded=True)
    base = f"http://127.0.0.1:{httpd.server_port}"
    config = replace(hotspot_config, portal=replace(hotspot_config.portal, port=httpd.server_port, url=base))
    holder["app"] = create_app(
        {"HOTSPOT": config, "TESTING": True, "MAC_LOOKUP": {"127.0.0.1": PHONE_MAC}.get}
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield base, config
    httpd.shutdown()
    thread.join(5)


def test_axe_finds_nothing_on_the_visitor_path(phone_server, browser, r):  # noqa: F811
    """Splash, online page (with the survey), status page and a free session's logout question."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    from gateway.model.vouchers import issue_batch

    base, config = phone_server
    _at_width(browser, 360)
    [voucher] = issue_batch(r, config.plans["harian"], 1, now=time.time(), issued_by="test")
    browser.get(f"{base}/?lang=id")
    found = {"splash": axe_violations(browser)}
    browser.find_element(By.ID, "code").send_keys(voucher.code)
    browser.find_element(By.CSS_SELECTOR, 'form button[type="submit"]').click()
    # the click returns before the form's navigation ends (a loaded CI machine showed it)
    WebDriverWait(browser, 15).until(EC.url_contains("/online"), browser.current_url)
    found["online"] = axe_violations(browser)
    browser.get(f"{base}/status?lang=id")
    found["status"] = axe_violations(browser)
    assert found == {"splash": [], "online": [], "status": []}


# every survey answer button: its size, and whether it sticks out of the page
_ANSWER_BOXES = """
return [...document.querySelectorAll('#survey button')].map(b => {
  const r = b.getBoundingClientRect();
  const inside = r.right <= document.documentElement.clientWidth;
  return [b.textContent.trim(), Math.round(r.width), Math.round(r.height), inside];
});
"""


def test_survey_one_tap_each_at_320px_and_accessible(phone_server, browser, r, artifacts):  # noqa: F811
    """The four questions on the online page at 320 px: nothing wider than the screen, every
    answer a target of at least 44x44 px, axe finds nothing before and after a tap; each tap
    counts at once; the splash's folded questions open and are accessible too."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    from gateway.model import survey
    from gateway.model.vouchers import issue_batch

    base, config = phone_server
    _at_width(browser, 320)
    browser.get(f"{base}/?lang=id")
    browser.find_element(By.CSS_SELECTOR, "details.survey summary").click()
    assert browser.find_element(By.CSS_SELECTOR, "details.survey").get_attribute("open") is not None
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 320
    assert axe_violations(browser) == [], "the splash with its questions unfolded"
    [voucher] = issue_batch(r, config.plans["harian"], 1, now=time.time(), issued_by="test")
    browser.find_element(By.ID, "code").send_keys(voucher.code)
    browser.find_element(By.CSS_SELECTOR, "form > button[type=submit]").click()
    WebDriverWait(browser, 15).until(EC.url_contains("/online"), browser.current_url)
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 320
    boxes = browser.execute_script(_ANSWER_BOXES)
    assert len(boxes) == 5 + 5 + 3 + 2, boxes
    assert all(w >= 44 and h >= 44 and inside for _t, w, h, inside in boxes), boxes
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.execute_cdp_cmd(  # the whole page in one picture, for people to look at
        "Emulation.setDeviceMetricsOverride",
        {"width": 320, "height": height, "deviceScaleFactor": 1, "mobile": True},
    )
    browser.save_screenshot(str(artifacts / "visitor-survey-320.png"))
    _at_width(browser, 320)
    assert axe_violations(browser) == [], "the online page with the questions"
    for answer in ("Perempuan", "16 sampai 30 tahun", "Ya"):
        button = browser.find_element(
            By.XPATH, f"//section[@id='survey']//button[normalize-space()='{answer}']"
        )
        button.click()
        # from the second tap on, the URL already says thanks=1: wait for the new page first
        WebDriverWait(browser, 15).until(EC.staleness_of(button), "the page after the tap")
        WebDriverWait(browser, 15).until(EC.url_contains("thanks=1"), browser.current_url)
        assert "Terima kasih" in browser.find_element(By.ID, "survey").text
    assert axe_violations(browser) == [], "after a tap: thanks, and the question left"
    assert len(browser.execute_script(_ANSWER_BOXES)) == 5, "only purpose is left"
    browser.find_element(By.XPATH, "//section[@id='survey']//button[normalize-space()='Lainnya']").click()
    WebDriverWait(browser, 15).until(EC.url_contains("/status"), browser.current_url)
    day = datetime.now(ZoneInfo(config.library.timezone)).date()
    assert survey.counts(r, day, day)[day] == {
        "gender": {"female": 1},
        "age": {"16_30": 1},
        "business": {"yes": 1},
        "purpose": {"other": 1},
    }
