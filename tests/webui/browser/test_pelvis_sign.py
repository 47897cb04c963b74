"""Issue 14 in headless Chromium: a simulated single-leg test with weak hip abductors and the simulated pelvis
sensor shows a positive Trendelenburg sign on the trial page, beside the clinician's grade, with the pelvis
angle plotted against time.

The real station runs on the simulated plate with ``[simulator] patient = "weak_abductors"`` and
``[pelvis] sensor = "simulated"``; the test is started from the live page. Screenshots:
``test-artifacts/web-pelvis-trial.png`` (the whole trial page) and ``web-pelvis-chart.png`` (the chart).
"""

from __future__ import annotations

import time

import pytest

from tests.webui.browser.harness import PASSWORD, USERNAME, make_driver, require_browser, run_station
from tests.webui.browser.test_therapist_flow import run_single_leg, screenshot, wait

PATIENT = "BT-0014"


@pytest.fixture(scope="module")
def weak_station(tmp_path_factory):
    require_browser()
    tmp = tmp_path_factory.mktemp("browser-pelvis")
    downloads = tmp / "downloads"
    downloads.mkdir()
    with run_station(tmp, patient="weak_abductors", pelvis=True, speed=4.0) as station:
        driver = make_driver(downloads)
        try:
            yield station, driver
        finally:
            driver.quit()


def test_weak_abductors_show_a_positive_sign_with_the_pelvis_plot(weak_station, artifacts):
    from selenium.webdriver.common.by import By

    station, driver = weak_station
    base = station.base_url
    driver.get(base + "/patients")
    driver.find_element(By.ID, "username").send_keys(USERNAME)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "password").submit()
    wait(driver, lambda d: d.current_url.rstrip("/").endswith("/patients"), timeout_s=10, what="the patients page")
    driver.find_element(By.ID, "code").send_keys(PATIENT)
    driver.find_element(By.ID, "birth_year").send_keys("1950")
    driver.find_element(By.ID, "add-button").click()
    wait(driver, lambda d: d.current_url.endswith(f"/patients/{PATIENT}"), timeout_s=10, what="the patient's page")
    driver.find_element(By.ID, "start-test").click()
    wait(driver, lambda d: d.find_element(By.ID, "stream-state").text == "live", timeout_s=10, what="the stream")
    wait(driver, lambda d: d.find_element(By.ID, "fz_n").text not in ("–", ""), timeout_s=10, what="live force")
    trial_id, _ = run_single_leg(driver, "left", artifacts, previous_trial=None)

    driver.get(f"{base}/trials/{trial_id}")
    sign = driver.find_element(By.ID, "pelvis-sign")
    assert sign.get_attribute("data-sign") == "positive", sign.text
    assert "Trendelenburg sign positive" in sign.text
    # beside the clinician's grade: in the same card as the grade form
    assert driver.find_element(By.ID, "grade").find_element(By.ID, "pelvis-sign") is not None
    chart = driver.find_element(By.ID, "chart-pelvis")
    svg = chart.find_element(By.TAG_NAME, "svg")
    assert "drop of the lifted (right) side" in svg.get_attribute("innerHTML")
    assert len(svg.find_elements(By.CSS_SELECTOR, "polyline.series")) >= 1
    assert svg.size["height"] > 150
    measures = driver.find_element(By.ID, "metrics").text
    assert "Trendelenburg sign, measured" in measures and "positive" in measures
    screenshot(driver, artifacts / "web-pelvis-trial.png")
    driver.execute_script("arguments[0].scrollIntoView()", chart)
    time.sleep(0.2)
    chart.screenshot(str(artifacts / "web-pelvis-chart.png"))

    # the patient's page: the sign beside the grade in the trial list, and in the left/right table
    driver.get(f"{base}/patients/{PATIENT}")
    body = driver.find_element(By.TAG_NAME, "body").text
    assert "sensor: positive" in body
    screenshot(driver, artifacts / "web-pelvis-patient.png")
