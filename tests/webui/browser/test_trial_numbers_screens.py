"""What a trial's numbers cover, as a therapist sees it in Chromium: screenshots, and what must not be drawn.

A real app (uvicorn in a thread) on a database with a visit of trials stored with the new fields
(``cop_window``, ``quality``, ``support.detection_limit_pct_bw``), an aborted trial, and a visit stored
before those fields existed. Each page is saved at 1280 and 768 px (``test-artifacts/web-numbers-*.png``)
and the report as printed; the checks run on the drawn page (sizes, what is visible).

Run alone: ``.venv/bin/python -m pytest tests/webui/browser/test_trial_numbers_screens.py -q``.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.webui.browser.harness import free_port, make_driver, require_browser
from tests.webui.browser.test_therapist_flow import screenshot, wait
from tests.webui.helpers import PASSWORD, add_user, close_app, make_app
from tests.webui.trial_numbers_data import seed_visit


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    require_browser()
    import uvicorn

    tmp = tmp_path_factory.mktemp("numbers-browser")
    app, db = make_app(tmp)
    new = seed_visit(db, "N-001", style="new")
    old = seed_visit(db, "O-001", style="old", aborted=False)
    add_user(db, "therapist", PASSWORD)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the app did not start"
        time.sleep(0.05)
    downloads = tmp / "downloads"
    downloads.mkdir()
    driver = make_driver(downloads)
    try:
        base = f"http://127.0.0.1:{port}"
        driver.get(base + "/login")
        driver.find_element("id", "username").send_keys("therapist")
        driver.find_element("id", "password").send_keys(PASSWORD)
        driver.find_element("id", "password").submit()
        wait(driver, lambda d: "/login" not in d.current_url, timeout_s=10, what="the login")
        yield base, driver, new, old
    finally:
        driver.quit()
        server.should_exit = True
        thread.join(10)
        close_app(app)


def _both_widths(driver, url: str, artifacts, name: str) -> None:
    for width, suffix in ((1280, ""), (768, "-tablet")):
        driver.get(url)
        wait(driver, lambda d: d.execute_script("return document.readyState") == "complete", timeout_s=10, what=name)
        screenshot(driver, artifacts / f"web-numbers-{name}{suffix}.png", width=width)
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, f"{name} at {width} px is wider than the window by {overflow} px"


def test_scored_trial_names_its_sway_window(served, artifacts):
    base, driver, new, _ = served
    _both_widths(driver, f"{base}/trials/{new['right']}", artifacts, "trial")
    body = driver.find_element("tag name", "body").text
    assert "Sway measures cover" in body and "the hold window" in body and "samples" in body
    assert "Whole recording analysed" in body
    assert "Points to check in this trial" in body and "drifted by 9 N" in body
    assert "detection limit 1.2 % BW" in body
    # the enlarged view is really enlarged: its frame spans a few cm of the plate, and it is drawn large
    drawn = driver.execute_script("""
        const z = document.querySelector("#chart-statokinesigram-zoom svg.chart");
        const box = z.getBoundingClientRect();
        return {w: box.width, h: box.height, desc: z.querySelector("desc").textContent,
                plate: z.querySelectorAll("rect.plate").length, locator: z.querySelectorAll(".plate-locator").length,
                ellipse: z.querySelector("path.ellipse95").getBBox().width};""")
    assert drawn["w"] > 300 and drawn["plate"] == 0 and drawn["locator"] == 1, drawn
    assert drawn["ellipse"] > 60, drawn  # the ellipse fills a good part of the enlarged view


def test_aborted_trial_draws_no_window_and_no_ellipse(served, artifacts):
    base, driver, new, _ = served
    _both_widths(driver, f"{base}/trials/{new['aborted']}", artifacts, "trial-aborted")
    found = driver.execute_script("""
        return {ellipses: document.querySelectorAll("path.ellipse95").length,
                means: document.querySelectorAll("path.cop-mean").length,
                windowTrace: document.querySelectorAll("polyline.cop-trace").length,
                unscored: document.querySelectorAll("polyline.cop-trace-unscored").length,
                svgText: Array.from(document.querySelectorAll("svg text")).map(t => t.textContent).join(" | ")};""")
    assert found["ellipses"] == 0 and found["means"] == 0 and found["windowTrace"] == 0, found
    assert found["unscored"] >= 1, found
    assert "ellipse" not in found["svgText"] and "analysed window" not in found["svgText"], found["svgText"]
    body = driver.find_element("tag name", "body").text
    assert "No sway window to enlarge" in body and "Not scored" in body


def test_old_trial_says_what_it_can(served, artifacts):
    base, driver, _, old = served
    _both_widths(driver, f"{base}/trials/{old['right']}", artifacts, "trial-old")
    body = driver.find_element("tag name", "body").text
    assert "scored before the station stored the window" in body
    assert "detection limit not recorded" in body
    assert "quality of this trial was not judged" in body


def test_report_screens_and_print(served, artifacts):
    base, driver, new, _ = served
    url = f"{base}/sessions/{new['visit']}/report"
    _both_widths(driver, url, artifacts, "report")
    body = driver.find_element("tag name", "body").text
    assert "Simulated plate" in body and "What each trial's numbers cover" in body
    sizes = driver.execute_script("""
        return Array.from(document.querySelectorAll(".sk-pair svg.chart"))
          .map(s => s.querySelector("desc").textContent);""")
    assert len(sizes) == 2
    frame = [d.split("Enlarged:")[1] for d in sizes]
    assert frame[0] == frame[1], frame  # one scale for both sides
    driver.get(url)
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        screenshot(driver, artifacts / "web-numbers-report-print.png", width=794)
        assert driver.find_element("id", "synthetic").is_displayed()
    finally:
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})


def test_empty_trend_charts_show_no_made_up_scale(served, artifacts):
    """A patient with no test yet: the trend charts say so, with no 0 to 1 scale on their axis."""
    base, driver, _, _ = served

    driver.get(f"{base}/patients")
    driver.find_element("id", "code").send_keys("E-001")
    driver.find_element("id", "add-button").click()
    wait(driver, lambda d: d.current_url.endswith("/patients/E-001"), timeout_s=10, what="the new patient's page")
    screenshot(driver, artifacts / "web-numbers-patient-empty.png", width=1280)
    labels = driver.execute_script("""
        return Array.from(document.querySelectorAll("svg.trend-chart text")).map(t => t.textContent);""")
    assert "no data yet" in labels
    assert not {"0.0", "0.2", "0.5", "0.8", "1.0"} & set(labels), labels
