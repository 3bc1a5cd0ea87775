"""Program staff's browser for the HQ page: headless Chromium driven by selenium, run INSIDE the
lab's HQ namespace (the page listens on that namespace's loopback).

Usage (from a test): ``lab.exec(hq_ns, python, this_file, input=json.dumps(plan))`` with the
plan ``{"base": url, "name": ..., "password": ..., "pages": [[path, width], ...],
"csv": path, "shots": folder, "user_data_dir": path}``. It signs in through the form, opens
each page at its width (360 = a phone, 800 = a tablet, 1280 = a desk PC), runs axe-core on
it, measures whether the page scrolls sideways, saves a screenshot, and fetches the CSV with
the signed-in cookie. Prints one JSON object.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

AXE = Path(__file__).resolve().parents[1] / "vendor" / "axe.min.js"  # axe-core from npm, tests only


def _driver(user_data_dir: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={user_data_dir}", "--window-size=1280,900",
    ):  # fmt: skip
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": "id,en"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


def _axe(driver) -> list[str]:
    driver.execute_script(AXE.read_text() + "\nreturn true;")
    return list(
        driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations.map("
            "v => v.impact + ' ' + v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))));"
        )
    )


def _width(driver, width: int) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600},
    )


def run(plan: dict) -> dict:
    from selenium.webdriver.common.by import By

    driver = _driver(plan["user_data_dir"])
    result: dict = {"pages": []}
    try:
        driver.get(plan["base"] + "/")
        result["login_title"] = driver.title
        result["login_axe"] = _axe(driver)
        driver.find_element(By.NAME, "name").send_keys(plan["name"])
        driver.find_element(By.NAME, "password").send_keys(plan["password"])
        driver.find_element(By.CSS_SELECTOR, "form.stack button").click()
        result["after_login"] = driver.current_url
        for index, (path, width) in enumerate(plan["pages"]):
            _width(driver, width)
            driver.get(plan["base"] + path)
            shot = str(Path(plan["shots"]) / f"hq-{index}-{width}.png")
            driver.save_screenshot(shot)
            result["pages"].append({
                "path": path, "width": width, "title": driver.title, "url": driver.current_url,
                "text": driver.find_element(By.TAG_NAME, "body").text,
                "scroll_width": driver.execute_script("return document.documentElement.scrollWidth"),
                "axe": _axe(driver), "shot": shot,
            })  # fmt: skip
        result["csv"] = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0], {credentials: 'same-origin'})"
            ".then(r => r.text()).then(done, e => done(String(e)));",
            plan["base"] + plan["csv"],
        )
        result["ok"] = True
    except Exception as err:  # reported to the test as data
        result.update(ok=False, error=f"{type(err).__name__}: {err}", url=driver.current_url)
        result["text"] = driver.find_element(By.TAG_NAME, "body").text[:2000]
    finally:
        driver.quit()
    return result


if __name__ == "__main__":
    print(json.dumps(run(json.load(sys.stdin))))
