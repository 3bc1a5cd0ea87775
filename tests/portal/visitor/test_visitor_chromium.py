"""The visitor pages in a real browser (headless Chromium) at phone widths.

The server and browser fixtures are the desk's (``tests/portal/desk/test_desk_chromium.py``):
the portal on 127.0.0.1, Debian's Chromium through its chromedriver.
"""

from __future__ import annotations

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
