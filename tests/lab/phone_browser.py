"""A phone's browser for lab tests: headless Chromium driven by selenium, run INSIDE a phone namespace.

Usage (from a test): ``lab.exec(ns, python, this_file, input=json.dumps(plan))`` where the
plan is ``{"start": url, "steps": [...], "accept_language": "id-ID,id", "user_data_dir": path}``.
Steps, in order:

- ``["shot", path]``           save a screenshot (phone viewport) to ``path``
- ``["lang", "en"]``           tap the language link
- ``["type_code", code]``      type the code into the voucher field and press Connect
- ``["wait_text", text, s]``   wait up to ``s`` seconds until the page contains ``text``
- ``["click_text", text]``     tap the link or button whose text contains ``text``
- ``["get", url]``             open ``url``
- ``["resources"]``            record every resource the page loaded (for "no external requests")

Prints one JSON object: each step's URL, title and elapsed time, or the error.
"""

from __future__ import annotations

import json
import sys
import time


def _driver(user_data_dir: str, accept_language: str):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--disable-features=HttpsUpgrades,HttpsFirstBalancedModeAutoEnable",
        f"--user-data-dir={user_data_dir}", "--window-size=360,740",
    ):  # fmt: skip
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": accept_language})
    options.add_experimental_option(
        "mobileEmulation",
        {
            "deviceMetrics": {"width": 360, "height": 740, "pixelRatio": 2.0},
            "userAgent": "Mozilla/5.0 (Linux; Android 13; SM-A145F) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
        },
    )
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(20)
    return driver


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def run(plan: dict) -> dict:
    from selenium.webdriver.common.by import By

    driver = _driver(plan["user_data_dir"], plan.get("accept_language", "id-ID,id"))
    started = time.monotonic()
    log: list[dict] = []
    result: dict = {"steps": log}
    try:
        driver.get(plan["start"])
        log.append({"step": "start", "url": driver.current_url, "title": driver.title})
        for step in plan["steps"]:
            kind = step[0]
            if kind == "shot":
                driver.save_screenshot(step[1])
            elif kind == "lang":
                driver.find_element(By.CSS_SELECTOR, f'a[hreflang="{step[1]}"]').click()
            elif kind == "type_code":
                field = driver.find_element(By.ID, "code")
                field.clear()
                field.send_keys(step[1])
                field.submit()
            elif kind == "wait_text":
                if not _wait(lambda s=step: s[1] in driver.page_source, step[2]):
                    raise RuntimeError(f"text {step[1]!r} not on {driver.current_url} after {step[2]}s")
            elif kind == "click_text":
                xpath = f'//*[self::a or self::button][contains(normalize-space(.), "{step[1]}")]'
                driver.find_element(By.XPATH, xpath).click()
            elif kind == "get":
                driver.get(step[1])
            elif kind == "resources":
                result["resources"] = driver.execute_script(
                    "return performance.getEntriesByType('resource').map(e => e.name)"
                )
                result["document_bytes"] = driver.execute_script(
                    "const n = performance.getEntriesByType('navigation')[0]; return n ? n.transferSize : -1"
                )
            log.append(
                {"step": kind, "url": driver.current_url, "title": driver.title,
                 "t": round(time.monotonic() - started, 3)}
            )  # fmt: skip
        result["ok"] = True
        result["text"] = driver.find_element(By.TAG_NAME, "body").text[:2000]
    except Exception as err:  # reported to the test as data
        result.update(ok=False, error=f"{type(err).__name__}: {err}", url=driver.current_url)
        result["text"] = driver.find_element(By.TAG_NAME, "body").text[:2000] if driver else ""
    finally:
        driver.quit()
    return result


if __name__ == "__main__":
    print(json.dumps(run(json.load(sys.stdin))))
