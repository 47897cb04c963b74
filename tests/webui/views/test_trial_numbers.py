"""Every number says what it covers: the sway window beside the whole recording, the trial's quality
concerns, the support detection limit; no window and no ellipse for an aborted trial; the report's left
and right statokinesigrams on one scale; the PDF says when the plate was simulated, on every page, and
carries the charts of the HTML report.

Metrics with and without the fields ``cop_window``, ``quality`` and ``support.detection_limit_pct_bw``
(older stored trials have none of them): see :mod:`tests.webui.trial_numbers_data`. The PDF's pages are
rendered with ``pdftoppm`` into ``test-artifacts/pdf-report-*.png`` for a person to look at.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from station.storage.trials import TrialWriter
from station.storage.visits import open_visit
from tests.station.single_leg_trials import synthetic_trial
from tests.webui.helpers import close_app, login, make_app
from tests.webui.trial_numbers_data import DETECTION_LIMIT, QUALITY, scored_metrics, seed_visit
from webui.views import pages_data as pd
from webui.views.report import SIMULATED_BAND

NS = "{http://www.w3.org/2000/svg}"


def svgs(html: str) -> list[ET.Element]:
    found = re.findall(r"<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart.*?</svg>", html, flags=re.S)
    return [ET.fromstring(s) for s in found]


def by_class(root: ET.Element, cls: str) -> list[ET.Element]:
    return [e for e in root.iter() if cls in (e.get("class") or "").split()]


def texts(root: ET.Element) -> str:
    return " ".join("".join(e.itertext()) for e in root.iter(f"{NS}text"))


# -- what the numbers cover, from the metrics ---------------------------------------------------------------


NEW = {"protocol": "single-leg", "sample_rate_hz": 80.0, "duration_s": 37.6, "n_samples": 3008, "onset_s": 5.3,
       "hold_time_s": 30.0, "cop_window": {"start_s": 5.3, "duration_s": 30.0, "n_samples": 2400},
       "cop": {"mean_velocity_mm_s": 12.0, "ellipse95_area_mm2": 150.0},
       "support": {"time_s": 0.0, "mean_pct_bw": 0.0, "peak_pct_bw": 0.4, "detection_limit_pct_bw": 1.2},
       "quality": []}


def test_the_stored_window_is_named_with_its_duration_and_samples():
    w = pd.cop_window(NEW)
    assert (w.start_s, w.duration_s, w.n_samples, w.source) == (5.3, 30.0, 2400, "stored")
    assert w.text() == "the hold window, 5.30 s to 35.30 s (30.0 s, 2400 samples)"
    assert w.note() == ""
    assert pd.recording_text(NEW) == "37.6 s, 3008 samples at 80 Hz"


def test_an_older_trial_falls_back_to_lift_off_and_hold_time():
    old = {k: v for k, v in NEW.items() if k not in ("cop_window", "quality")}
    w = pd.cop_window(old)
    assert (w.start_s, w.duration_s, w.n_samples, w.source) == (5.3, 30.0, 2400, "estimated")
    assert "about 2400 samples" in w.text() and "estimated" in w.note()
    # no hold time either: the window is unknown, not made up
    assert pd.cop_window({**old, "hold_time_s": None}) is None


def test_an_unscored_trial_has_no_window():
    assert pd.cop_window(None) is None and pd.cop_window({}) is None
    assert pd.cop_window({"onset_s": 5.0, "hold_time_s": 3.0, "cop": None}) is None
    assert pd.cop_window({"onset_s": 5.0, "hold_time_s": 3.0, "cop": {"mean_velocity_mm_s": None}}) is None
    n = pd.trial_numbers(None, "single-leg")
    assert not n["scored"] and n["window_text"] == "" and n["groups"] == []


def test_quiet_stance_covers_the_whole_recording():
    qs = {"protocol": "quiet-stance", "duration_s": 30.0, "n_samples": 2400, "sample_rate_hz": 80.0,
          "cop": {"mean_velocity_mm_s": 8.0}}
    w = pd.cop_window(qs, protocol="quiet-stance")
    assert w.source == "whole" and w.text() == "the whole recording (30.0 s, 2400 samples)"


def test_measures_are_grouped_by_what_they_cover():
    groups = {g["id"]: g for g in pd.metric_groups(NEW)}
    assert groups["sway"]["title"] == "Sway measures, over the hold window, 5.30 s to 35.30 s (30.0 s, 2400 samples)"
    assert groups["recording"]["title"] == "The whole recording: 37.6 s, 3008 samples at 80 Hz"
    sway_keys = [r["key"] for r in groups["sway"]["rows"]]
    assert "cop.mean_velocity_mm_s" in sway_keys and "cop_window.n_samples" in sway_keys
    rec_keys = [r["key"] for r in groups["recording"]["rows"]]
    assert rec_keys[:2] == ["duration_s", "n_samples"] and "cop.mean_velocity_mm_s" not in rec_keys
    labels = [r["label"] for r in pd.metric_rows(NEW)]
    assert "Analysed duration" not in labels and "Samples analysed" not in labels
    assert "Whole recording, duration" in labels and "Sway window, samples" in labels


def test_support_line_with_its_detection_limit():
    assert pd.support_text(NEW) == "Hand support: none detected (detection limit 1.2 % BW)"
    supported = {"support": {"time_s": 3.0, "mean_pct_bw": 5.04, "peak_pct_bw": 7.1, "detection_limit_pct_bw": 1.2}}
    assert pd.support_text(supported) == "Hand support: 3.0 s, mean 5.0 % BW, peak 7.1 % BW (detection limit 1.2 % BW)"
    unknown = {"support": {"time_s": 0.0, "detection_limit_pct_bw": None}}
    assert pd.support_text(unknown) == "Hand support: none detected (detection limit not known for this trial)"
    older = {"support": {"time_s": 0.0, "mean_pct_bw": 0.0}}
    assert "detection limit not recorded" in pd.support_text(older)
    assert pd.support_text({}) == "" and pd.support_text(None) == ""


def test_quality_concerns_empty_absent_and_listed():
    assert pd.quality_concerns(NEW) == []
    assert pd.quality_concerns({}) is None  # an older trial: not judged, which is not "no concern"
    listed = pd.quality_concerns({"quality": QUALITY})
    assert [q["name"] for q in listed] == ["drift_during_hold", "support_near_limit"]
    assert listed[0]["label"] == "drift during hold" and listed[0]["message"] == QUALITY[0]["message"]
    assert pd.quality_concerns({"quality": ["a plain message"]})[0]["message"] == "a plain message"


# -- the charts of a trial ---------------------------------------------------------------------------------


def test_an_unscored_trial_draws_no_window_no_ellipse_no_enlargement():
    rec, _ = synthetic_trial(stance_side="left", after_s=2.0, transition_s=0.8)
    tc = pd.trial_charts(rec, None, protocol="single-leg", stance_side="left")
    assert tc.statokinesigram_zoom == "" and tc.window is None
    root = ET.fromstring(tc.statokinesigram)
    assert not by_class(root, "ellipse95") and not by_class(root, "cop-mean") and not by_class(root, "cop-trace")
    assert by_class(root, "cop-trace-unscored")
    words = texts(root)
    assert "not scored" in words and "ellipse" not in words and "analysed window" not in words
    for chart in (tc.force, tc.cop):
        assert "lift-off" not in chart and "end of hold" not in chart


def test_the_drawn_window_is_the_stored_one():
    rec, _ = synthetic_trial(stance_side="right", sway_mm=3.0)
    metrics = scored_metrics(rec, "right", style="new")
    tc = pd.trial_charts(rec, metrics, protocol="single-leg", stance_side="right")
    w = metrics["cop_window"]
    assert tc.window.n_samples == w["n_samples"]
    for svg in (tc.statokinesigram, tc.statokinesigram_zoom):
        words = texts(ET.fromstring(svg))
        assert f"95 % ellipse, {metrics['cop']['ellipse95_area_mm2']:.0f} mm²" in words
        assert f"COP, hold window: {w['duration_s']:.1f} s, {w['n_samples']} samples" in words


def test_report_statokinesigrams_share_one_scale():
    class T:  # the parts of a stored trial the report uses
        def __init__(self, id_, side, rec, metrics):
            self.id, self.protocol, self.metrics = id_, "single-leg", metrics
            self.rec = rec

    pairs = {}
    for k, (side, sway) in enumerate((("left", 1.0), ("right", 12.0))):
        rec, _ = synthetic_trial(stance_side=side, sway_mm=sway)
        pairs[side] = (T(k + 1, side, rec, scored_metrics(rec, side, style="new")), rec)
    out = pd.report_statokinesigrams(pairs, width=380)
    frames, factors = [], []
    for side in ("left", "right"):
        root = ET.fromstring(out[side]["svg"])
        frames.append(root.find(f"{NS}desc").text.split("Enlarged:")[1])
        factors.append(texts(root).split("Enlarged ")[1].split(" ")[0])
        assert root.find(f"{NS}title").text.startswith(f"{side.capitalize()} leg")
        assert root.get("width") == "380"
    assert frames[0] == frames[1] and factors[0] == factors[1]
    # the scale is the larger sway's: the small one is not blown up to look as large
    alone = pd.report_statokinesigrams({"left": pairs["left"]}, width=380)
    assert ET.fromstring(alone["left"]["svg"]).find(f"{NS}desc").text.split("Enlarged:")[1] != frames[0]


# -- the pages ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("numbers")
    app, db = make_app(tmp)
    new = seed_visit(db, "N-001", style="new")
    old = seed_visit(db, "O-001", style="old", aborted=False)
    calm = seed_visit(db, "C-001", style="new", aborted=False, quality=[])
    yield app, db, new, old, calm
    close_app(app)


@pytest.fixture
def client(stored):
    with TestClient(stored[0], base_url="http://localhost") as c:
        login(c)
        yield c


def test_trial_page_names_the_window_beside_the_recording(client, stored):
    _, _, new, _, _ = stored
    html = client.get(f"/trials/{new['right']}").text
    metrics = client.get(f"/api/v1/trials/{new['right']}").json()["metrics"]
    w = metrics["cop_window"]
    m = re.search(r'<dd id="sway-window">([^<]+)</dd>', html)
    assert m and f"({w['duration_s']:.1f} s, {w['n_samples']} samples)" in m.group(1)
    assert m.group(1).startswith(f"the hold window, {w['start_s']:.2f} s to")
    whole = f"{metrics['duration_s']:.1f} s, {metrics['n_samples']} samples"
    assert f'<dd id="recording-covered">{whole} at 80 Hz</dd>' in html
    assert "Sway measures, over the hold window" in html and f"The whole recording: {whole}" in html
    assert "Analysed duration" not in html and "Samples analysed" not in html
    # the quality concerns, a calm list; the support line with its limit
    assert 'id="quality"' in html and html.count('<li data-name="') == 2 and "drifted by 9 N" in html
    sup = metrics["support"]
    assert (f'id="support-line">Hand support: {sup["time_s"]:.1f} s, mean {sup["mean_pct_bw"]:.1f} % BW, '
            f'peak {sup["peak_pct_bw"]:.1f} % BW (detection limit 1.2 % BW).</p>') in html
    assert 'id="window-note"' not in html and 'id="quality-unknown"' not in html


def test_no_concern_shows_nothing(client, stored):
    calm = stored[4]
    html = client.get(f"/trials/{calm['left']}").text
    assert 'id="quality"' not in html and 'id="quality-unknown"' not in html
    assert f"detection limit {DETECTION_LIMIT:.1f} % BW" in html


def test_an_older_trial_page_says_what_is_estimated_or_unknown(client, stored):
    old = stored[3]
    html = client.get(f"/trials/{old['right']}").text
    assert re.search(r'<dd id="sway-window">the hold window, [\d.]+ s to [\d.]+ s '
                     r'\(\d+\.\d s, about \d+ samples\)</dd>', html)
    assert 'id="window-note"' in html and 'id="quality-unknown"' in html and 'id="quality"' not in html
    assert "detection limit not recorded" in html
    assert "Sway window, samples (estimated)" in html


def test_an_aborted_trial_page_draws_no_window_and_no_ellipse(client, stored):
    new = stored[2]
    html = client.get(f"/trials/{new['aborted']}").text
    assert "ellipse95" not in html and "cop-mean" not in html
    assert "No sway window to enlarge" in html and "none: the trial is not scored (aborted)" in html
    charts = svgs(html)
    for chart in charts:
        assert "ellipse" not in texts(chart) and "analysed window" not in texts(chart)
    assert len(charts) == 3  # the plate view, force and COP; no enlarged view
    assert by_class(charts[0], "cop-trace-unscored") and not by_class(charts[0], "cop-trace")


def test_report_html_says_simulated_and_what_each_trial_covers(client, stored):
    new = stored[2]
    html = client.get(f"/sessions/{new['visit']}/report").text
    assert 'id="synthetic"' in html and "simulated plate" in html
    table = html[html.index('id="report-windows"'):]
    table = table[:table.index("</table>")]
    assert table.split("<tbody>")[1].count("<tr>") == 3
    assert "The hold window" in table and "not scored (aborted)" in table
    assert "detection limit 1.2 % BW" in table and "drifted by 9 N" in table
    sk = [e for e in svgs(html) if "statokinesigram" in (e.get("class") or "")]
    assert len(sk) == 2
    assert sk[0].find(f"{NS}desc").text.split("Enlarged:")[1] == sk[1].find(f"{NS}desc").text.split("Enlarged:")[1]
    assert "Left and right are drawn on the same scale" in html


# -- the PDF ---------------------------------------------------------------------------------------------


def pdf_strings(pdf: bytes) -> str:
    """The text the PDF shows (its content streams' strings), without a PDF library."""
    out = []
    # the stream's end of line before "endstream" is left on the data: a compressed stream may itself end in
    # a byte 0x0D, which a pattern "\r?\nendstream" would take away (the text then seemed missing, depending on
    # what was compressed: the time printed in the report); the decompressor stops at the stream's own end
    for m in re.finditer(rb"stream\r?\n(.*?)endstream", pdf, flags=re.S):
        data = m.group(1)
        try:
            data = zlib.decompressobj().decompress(data)
        except zlib.error:
            pass
        out += [s.decode("latin-1") for s in re.findall(rb"\(((?:\\.|[^\\)])*)\)\s*Tj", data)]
    return " ".join(s.replace("\\(", "(").replace("\\)", ")").replace("\\\\", "\\") for s in out)


def _report_pdf(client, visit_id: int) -> bytes:
    r = client.get(f"/sessions/{visit_id}/report.pdf")
    assert r.status_code == 200 and r.content.startswith(b"%PDF-")
    return r.content


def test_pdf_says_simulated_and_carries_the_numbers_and_charts(client, stored):
    new = stored[2]
    text = pdf_strings(_report_pdf(client, new["visit"]))
    assert SIMULATED_BAND in text and "come from the simulated plate" in text
    assert "What each trial's numbers cover" in text and "Sway measures cover the hold window" in text
    metrics = client.get(f"/api/v1/trials/{new['left']}").json()["metrics"]
    assert f"Whole recording: {metrics['duration_s']:.1f} s, {metrics['n_samples']} samples at 80 Hz" in text
    assert "detection limit 1.2 % BW" in text and "Points to check" in text and "Not scored" in text
    for title in ("Single-leg hold time, best trial per visit", "COP mean velocity over the hold, best trial per visit",
                  "Left leg: COP over the hold window", "Right leg: COP over the hold window",
                  "Left and right are drawn on the same scale"):
        assert title in text, title


def test_pdf_of_a_measured_visit_has_no_simulated_band(client, stored):
    _, db, *_ = stored
    rec, _ = synthetic_trial(stance_side="left")
    with db.sessions() as s:
        visit_id = open_visit(s, "O-001").id
    writer = TrialWriter.start(db.sessions, session_id=visit_id, protocol="single-leg", stance_side="left",
                               sample_rate_hz=80.0, geometry=rec.geometry, plate_source="hx711", time_origin_s=0.0)
    writer.add_many((float(t), f) for t, f in zip(rec.t_s, rec.forces_n))
    writer.finish("complete", scored_metrics(rec, "left", style="old"))
    text = pdf_strings(_report_pdf(client, visit_id))
    assert "SIMULATED" not in text and "simulated plate" not in text
    assert "Left leg: COP over the hold window" in text
    html = client.get(f"/sessions/{visit_id}/report").text
    assert 'id="synthetic"' not in html


def _ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} is missing (Debian: apt-get install poppler-utils; ./quickstart test installs it)"
        if _ci():
            pytest.fail(f"CI: {message}", pytrace=False)
        pytest.skip(message)
    return path


def test_pdf_every_page_says_simulated_and_is_rendered_for_a_person(client, stored, artifacts, tmp_path):
    """Each page's own text has the band; the pages are saved as PNG (pdftoppm) to be looked at."""
    pdftotext, pdftoppm = _need("pdftotext"), _need("pdftoppm")
    new = stored[2]
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(_report_pdf(client, new["visit"]))
    (artifacts / "pdf-report.pdf").write_bytes(pdf.read_bytes())
    info = subprocess.run([shutil.which("pdfinfo") or "pdfinfo", str(pdf)], capture_output=True, text=True)
    pages = int(re.search(r"Pages:\s+(\d+)", info.stdout).group(1))
    assert pages >= 2
    for page in range(1, pages + 1):
        text = subprocess.run([pdftotext, "-f", str(page), "-l", str(page), "-layout", str(pdf), "-"],
                              capture_output=True, text=True, check=True).stdout
        assert SIMULATED_BAND in text, f"page {page} does not say the plate was simulated"
    for old in artifacts.glob("pdf-report-*.png"):
        old.unlink()
    subprocess.run([pdftoppm, "-png", "-r", "80", str(pdf), str(artifacts / "pdf-report")], check=True)
    pngs = sorted(Path(artifacts).glob("pdf-report-*.png"))
    assert len(pngs) == pages
    # in black and white: render grey, and the band's text is still there (its contrast survives)
    subprocess.run([pdftoppm, "-png", "-gray", "-r", "80", "-f", "1", "-l", "1", str(pdf),
                    str(artifacts / "pdf-report-gray")], check=True)


def test_a_drill_in_the_report_is_not_called_unscored(client, stored):
    _, db, *_ = stored
    import datetime as dt

    from tests.station.single_leg_trials import GEOMETRY

    with db.sessions() as s:
        visit_id = open_visit(s, "C-001", started_at=dt.datetime.now(dt.UTC)).id
    writer = TrialWriter.start(db.sessions, session_id=visit_id, protocol="drill-reach", sample_rate_hz=80.0,
                               geometry=GEOMETRY, plate_source="simulated")
    writer.add_many([(0.0, (175.0,) * 4), (0.0125, (175.0,) * 4), (0.025, (175.0,) * 4)])
    writer.finish("complete", {"drill": "reach", "score": 12, "success_pct": 80.0, "level": 2})
    html = client.get(f"/sessions/{visit_id}/report").text
    table = html[html.index('id="report-windows"'):]
    assert "a drill: no sway measures" in table and "not scored" not in table and "not judged" not in table
    text = pdf_strings(_report_pdf(client, visit_id))
    assert "A drill: no sway measures." in text and "Not scored" not in text
    page = client.get(f"/trials/{writer.trial_id}").text
    assert 'id="sway-window"' not in page and "Drill score" in page


def test_a_complete_trial_without_sway_measures_is_not_called_aborted(client, stored):
    from tests.webui.helpers import add_recorded_trial

    _, db, *_ = stored
    trial_id = add_recorded_trial(db, "C-001", n_frames=400, metrics={
        "protocol": "single-leg", "hold_time_s": 0.0, "onset_s": None, "cop": None, "completed": False,
        "duration_s": 5.0, "n_samples": 400, "sample_rate_hz": 80.0})
    html = client.get(f"/trials/{trial_id}").text
    assert "none: this trial has no hold to measure" in html and "this trial has no sway measures" in html
    assert "ellipse95" not in html and "not scored" not in html.lower()
    assert "COP, whole recording (no sway measures)" in html
