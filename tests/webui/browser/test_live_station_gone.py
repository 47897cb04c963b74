"""In Chromium, on the real station: a wrong link gets a page with a way back; and when the station stops
in the middle of a test, the live page does not look healthy (no green result, no stale force, no start).

Screenshots: ``test-artifacts/web-error-404*.png``, ``web-live-stopped*.png``.
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.webui.browser.harness import PASSWORD, USERNAME, make_driver, require_browser, run_station
from tests.webui.browser.test_therapist_flow import screenshot, wait

PATIENT = "GONE-01"


@pytest.fixture
def env(tmp_path):
    require_browser()
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with run_station(tmp_path) as station:
        driver = make_driver(downloads)
        try:
            yield station, driver
        finally:
            driver.quit()


def _log_in_and_add_the_patient(driver, base: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(base + "/patients")
    driver.find_element(By.ID, "username").send_keys(USERNAME)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "password").submit()
    wait(driver, lambda d: d.current_url.rstrip("/").endswith("/patients"), timeout_s=10, what="the patients page")
    driver.find_element(By.ID, "code").send_keys(PATIENT)
    driver.find_element(By.ID, "add-button").click()
    wait(driver, lambda d: d.current_url.endswith(f"/patients/{PATIENT}"), timeout_s=10, what="the patient's page")


def test_error_pages_and_the_live_page_when_the_station_stops_mid_test(env, artifacts):
    from selenium.webdriver.common.by import By

    station, driver = env
    base = station.base_url
    _log_in_and_add_the_patient(driver, base)

    # a wrong link: a page with a way back, not raw JSON
    for path, name in (("/patients/NOPE-404", "patient"), ("/trials/9999", "trial")):
        for width, suffix in ((1280, ""), (768, "-tablet")):
            driver.get(base + path)
            assert driver.find_element(By.ID, "error-title").text == "Not found"
            assert '{"detail"' not in driver.page_source
            screenshot(driver, artifacts / f"web-error-404-{name}{suffix}.png", width=width)
        back = driver.find_element(By.ID, "error-back")
        assert back.get_attribute("href").endswith("/patients")
        back.click()
        wait(driver, lambda d: d.current_url.rstrip("/").endswith("/patients"), timeout_s=10, what="the way back")

    # a single-leg test, and the station stops while the patient holds
    driver.get(base + f"/live?patient={PATIENT}")
    wait(driver, lambda d: d.find_element(By.ID, "fz_n").text not in ("–", ""), timeout_s=15, what="live force")
    assert not driver.find_element(By.ID, "offline").is_displayed()
    driver.find_element(By.ID, "side-left").click()
    driver.find_element(By.ID, "start-button").click()
    wait(driver, lambda d: d.find_element(By.ID, "abort-button").is_enabled(), timeout_s=15, what="the test to start")
    time.sleep(1.0)
    station.process.send_signal(signal.SIGTERM)
    assert station.process.wait(20) == 0

    wait(driver, lambda d: d.find_element(By.ID, "offline").is_displayed(), timeout_s=10, what="the offline banner")
    time.sleep(1.5)  # a few reconnection attempts later, still the same
    banner = driver.find_element(By.ID, "offline").text
    assert "The station is not answering" in banner and "nothing below is live" in banner
    assert driver.find_element(By.ID, "fz_n").text == "–"  # no stale force
    assert driver.find_element(By.ID, "cop").get_attribute("visibility") == "hidden"
    assert not driver.find_element(By.ID, "start-button").is_enabled()
    assert not driver.find_element(By.ID, "abort-button").is_enabled()
    box = driver.find_element(By.ID, "result")
    if box.is_displayed():  # the stopped test's last word reached the page before the station went
        assert "stopped" in box.get_attribute("class").split()
        assert driver.find_element(By.ID, "result-title").text.startswith("Test stopped")
        assert "the station was stopped" in driver.find_element(By.ID, "result-note").text
        assert not driver.find_element(By.ID, "other-side").is_displayed()
        assert not driver.find_element(By.ID, "result-table").is_displayed()  # no empty measures table
    assert "Finished" not in driver.find_element(By.TAG_NAME, "body").text
    screenshot(driver, artifacts / "web-live-stopped.png", width=1280)
    screenshot(driver, artifacts / "web-live-stopped-tablet.png", width=768)
