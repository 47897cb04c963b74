"""Issue 14 on the pages: a trial recorded with the pelvis sensor shows the pelvis against time and the measured
sign beside the clinician's grade; the left/right table, the scores CSV and the PDF report carry it; a trial
without the sensor shows none of it."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from station.core.recording import PELVIS_COLUMN
from station.scoring.analyze import analyze_recording
from station.storage.patients import create_patient
from station.storage.trials import TrialWriter
from station.storage.visits import open_visit
from tests.station.protocols.test_pelvis import with_pelvis
from tests.station.single_leg_trials import GEOMETRY, synthetic_trial
from tests.webui.helpers import close_app, login, make_app
from tests.webui.views.test_trial_numbers import pdf_strings, svgs, texts
from webui.views import pages_data as pd


def _store(db, visit_id: int, side: str, *, kind: str | None) -> int:
    rec, onset = synthetic_trial(stance_side=side)
    if kind is not None:
        rec, _ = with_pelvis(rec, onset, stance_side=side, kind=kind)
    metrics = analyze_recording(rec, protocol="single-leg", stance_side=side)
    writer = TrialWriter.start(db.sessions, session_id=visit_id, protocol="single-leg", stance_side=side,
                               sample_rate_hz=rec.sample_rate_hz, geometry=GEOMETRY, plate_source="simulated")
    pelvis = rec.extra.get(PELVIS_COLUMN)
    for i in range(rec.n_samples):
        writer.add((float(rec.t_s[i]), rec.forces_n[i]), pelvis_deg=None if pelvis is None else float(pelvis[i]))
    writer.finish("complete", metrics)
    return writer.trial_id


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    app, db = make_app(tmp_path_factory.mktemp("pelvis-pages"))
    with db.sessions() as s:
        create_patient(s, "PV-001", birth_year=1955)
        s.commit()
    with db.sessions() as s:
        visit_id = open_visit(s, "PV-001").id
    ids = {"visit": visit_id, "left": _store(db, visit_id, "left", kind="fatiguing_drop"),
           "right": _store(db, visit_id, "right", kind="rise"), "plain": _store(db, visit_id, "left", kind=None)}
    yield app, ids
    close_app(app)


@pytest.fixture
def client(stored):
    with TestClient(stored[0], base_url="http://localhost") as c:
        login(c)
        yield c


def test_the_trial_page_plots_the_pelvis_and_shows_the_sign_beside_the_grade(client, stored):
    _, ids = stored
    html = client.get(f"/trials/{ids['left']}").text
    assert 'id="chart-pelvis"' in html
    grade = html[html.index('id="grade"'):]
    assert 'id="pelvis-sign"' in grade and 'data-sign="positive"' in grade
    assert "Trendelenburg sign positive" in grade
    chart = next(s for s in svgs(html) if "lifted side's drop" in texts(s))
    words = texts(chart)
    assert "drop of the lifted (right) side" in words and "sign threshold 2°" in words and "lift-off" in words
    # the healthy side: the lifted side rises, the sign is negative
    right = client.get(f"/trials/{ids['right']}").text
    assert 'data-sign="negative"' in right and "drop of the lifted (left) side" in right


def test_a_trial_without_the_sensor_has_no_pelvis_chart_and_says_so(client, stored):
    _, ids = stored
    html = client.get(f"/trials/{ids['plain']}").text
    assert 'id="chart-pelvis"' not in html
    assert "No pelvis sensor in this trial" in html


def test_the_recording_csv_carries_the_column(client, stored):
    _, ids = stored
    text = client.get(f"/api/v1/trials/{ids['left']}/recording.csv").text
    header = next(line for line in text.splitlines() if not line.startswith("#"))
    assert header.split(",")[-1] == PELVIS_COLUMN
    plain = client.get(f"/api/v1/trials/{ids['plain']}/recording.csv").text
    assert PELVIS_COLUMN not in plain


def test_the_scores_csv_has_the_pelvis_columns(client, stored):
    _, ids = stored
    rows = {int(r["trial_id"]): r for r in csv.DictReader(io.StringIO(
        client.get("/api/v1/export/scores.csv", params={"patient": "PV-001"}).text))}
    assert rows[ids["left"]]["pelvis.sign"] == "positive"
    assert float(rows[ids["left"]]["pelvis.drop_max_deg"]) > 2.0
    assert rows[ids["right"]]["pelvis.sign"] == "negative"
    assert rows[ids["plain"]]["pelvis.sign"] == ""


def test_the_left_right_table_and_the_report_carry_the_sign(client, stored):
    _, ids = stored
    page = client.get("/patients/PV-001").text
    assert "Trendelenburg sign (pelvis sensor)" in page and "sensor: positive" in page
    pdf = client.get(f"/sessions/{ids['visit']}/report.pdf")
    assert pdf.status_code == 200
    text = pdf_strings(pdf.content)
    assert "Grade / sensor" in text and "not assessed / positive" in text
    assert "Pelvis sensor: Trendelenburg sign positive" in text
    assert "Trendelenburg sign (pelvis sensor)" in text
    assert "Pelvis: the lifted side's drop, best trial of each side" in text
    html = client.get(f"/sessions/{ids['visit']}/report").text
    assert 'id="report-pelvis"' in html and "standing on the right leg: drop of the left side (negative)" in html


def test_the_report_pdf_is_rendered_for_a_person(client, stored, artifacts, tmp_path):
    import shutil
    import subprocess

    _, ids = stored
    pdftoppm = shutil.which("pdftoppm")
    if pdftoppm is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(client.get(f"/sessions/{ids['visit']}/report.pdf").content)
    for old in artifacts.glob("pdf-pelvis-report-*.png"):
        old.unlink()
    subprocess.run([pdftoppm, "-png", "-r", "70", str(pdf), str(artifacts / "pdf-pelvis-report")], check=True)
    assert list(artifacts.glob("pdf-pelvis-report-*.png"))


def test_the_comparison_rows_leave_the_pelvis_out_without_the_sensor():
    summary = {"best": {"left": {"hold_time_s": 30.0, "pelvis_sign": None}, "right": None}, "comparison": None}
    assert all("pelvis" not in r["label"].lower() for r in pd.comparison_rows(summary))
    summary["best"]["left"]["pelvis_sign"] = "negative"
    assert any(r["left"] == "negative" for r in pd.comparison_rows(summary))
    assert pd.pelvis_view({"pelvis": None}) is None
    view = pd.pelvis_view({"pelvis": {"sign": "negative", "drop_max_deg": 0.4, "drop_mean_deg": 0.1,
                                      "compensated": True, "threshold_deg": 2.0}})
    assert view["compensated"] and "trunk lean" in view["text"] and not view["positive"]


def test_the_status_says_which_pelvis_sensor_and_its_state(tmp_path):
    from calibration.model import simulator_calibration
    from hardware.sim.pelvis import SimulatedPelvis
    from station.core.geometry import PlateGeometry
    from station.live.pipeline import LiveStation
    from station.signal.forces import ForcePipeline
    from tests.doubles import ListFeed
    from tests.station.live.test_pipeline import frames
    from tests.webui.helpers import FakeTrials

    live = LiveStation(ListFeed(), ForcePipeline(simulator_calibration(), PlateGeometry()))
    for raw in frames(20):
        live.ingest(raw)
    trials = FakeTrials()
    app, _ = make_app(tmp_path, live=live, trials=trials)
    try:
        with TestClient(app, base_url="http://localhost") as c:
            login(c)
            assert c.get("/api/v1/status").json()["pelvis"] is None
            trials.pelvis = SimulatedPelvis()
            trials.pelvis.at(1.0)
            pelvis = c.get("/api/v1/status").json()["pelvis"]
            assert pelvis["sensor"] == "simulated" and pelvis["fault"] is None
            assert isinstance(pelvis["obliquity_deg"], float)
    finally:
        close_app(app)
