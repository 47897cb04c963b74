"""The therapist's pages on a real app and database: patients, patient, trial, report (HTML and PDF), live, station."""

from __future__ import annotations

import datetime as dt
import json
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from station.clinic.snapshot import SingleLegStatus, TrialSnapshot
from station.scoring.scores import score_single_leg_recording
from station.storage.db import Database
from station.storage.patients import create_patient
from station.storage.trials import TrialWriter
from station.storage.visits import open_visit
from tests.station.single_leg_trials import GEOMETRY, synthetic_trial
from tests.webui.helpers import close_app, login, make_app

SVG_NS = "{http://www.w3.org/2000/svg}"


# -- data ------------------------------------------------------------------------------------------------


def store_single_leg(db: Database, visit_id: int, side: str, *, started_at: dt.datetime, lateral_mm: float = 3.0,
                     sway_mm: float = 2.0, plate: tuple = (), floor: tuple = (), support: tuple = (),
                     notes: str = "", age_years: float | None = None) -> int:
    """A scored single-leg trial with a synthetic recording, stored as the station stores a live one."""
    metadata = {"stance_side": side}
    if age_years is not None:
        metadata["age_years"] = f"{age_years:g}"
    rec, _onset = synthetic_trial(stance_side=side, lateral_mm=lateral_mm, sway_mm=sway_mm, plate=plate, floor=floor,
                                  support=support, metadata=metadata)
    metrics = {"protocol": "single-leg", **score_single_leg_recording(rec, stance_side=side, lowpass_hz=10.0)}
    writer = TrialWriter.start(db.sessions, session_id=visit_id, protocol="single-leg", stance_side=side,
                               sample_rate_hz=rec.sample_rate_hz, geometry=rec.geometry, plate_source="simulated",
                               started_at=started_at, notes=notes, time_origin_s=0.0)
    writer.add_many((float(t), f) for t, f in zip(rec.t_s, rec.forces_n))
    writer.finish("complete", metrics, detail="hold time reached")
    return writer.trial_id


def seed_patient(db: Database, code: str = "P-001", *, birth_year: int | None = 1960, visits: int = 2) -> list[int]:
    """A patient with ``visits`` visits, each a left and a right trial (the right one worse); the trials' ids."""
    ids = []
    now = dt.datetime.now(dt.UTC)
    with db.sessions() as s:
        create_patient(s, code, birth_year=birth_year, sex="female", affected_side="right")
    for k in range(visits):
        day = now - dt.timedelta(days=7 * (visits - 1 - k), minutes=30)
        with db.sessions() as s:
            visit_id = open_visit(s, code, started_at=day, clinician="therapist").id
        ids.append(store_single_leg(db, visit_id, "left", started_at=day + dt.timedelta(minutes=1)))
        ids.append(store_single_leg(db, visit_id, "right", started_at=day + dt.timedelta(minutes=3),
                                    sway_mm=4.0, plate=((12.0 - 3 * k, 0.6, 50.0),), support=((20.0, 3.0, 5.0),),
                                    notes="hip dropped"))
    return ids


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """One database for the read-only page tests: P-001 with two visits, P-002 with none."""
    tmp = tmp_path_factory.mktemp("pages")
    app, db = make_app(tmp)
    ids = seed_patient(db, "P-001")
    with db.sessions() as s:
        create_patient(s, "P-002")
    yield app, ids
    close_app(app)


@pytest.fixture
def client(stored):
    app, _ = stored
    with TestClient(app, base_url="http://localhost") as c:
        login(c)
        yield c


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF field"
    return m.group(1)


def svgs(html: str) -> list[ET.Element]:
    """Every inline chart of a page, parsed as XML (a broken SVG fails here)."""
    found = re.findall(r"<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart.*?</svg>", html, flags=re.S)
    return [ET.fromstring(s) for s in found]


# -- login -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/patients", "/patients/P-001", "/live", "/", "/trials/1", "/sessions/1/report"])
def test_pages_need_a_login(stored, path):
    app, _ = stored
    with TestClient(app, base_url="http://localhost") as c:
        r = c.get(path, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


def test_a_form_without_the_csrf_token_is_refused(client):
    r = client.post("/patients", data={"code": "P-777"}, follow_redirects=False)
    assert r.status_code == 403


# -- patients ----------------------------------------------------------------------------------------------


def test_patients_list_and_search(client):
    r = client.get("/patients")
    assert r.status_code == 200
    assert "P-001" in r.text and "P-002" in r.text and 'href="/patients/P-001"' in r.text
    r = client.get("/patients", params={"q": "002"})
    assert "P-002" in r.text and 'href="/patients/P-001"' not in r.text
    r = client.get("/patients", params={"q": "p-00"})  # case does not matter
    assert 'href="/patients/P-001"' in r.text and 'href="/patients/P-002"' in r.text
    r = client.get("/patients", params={"q": "_"})  # a LIKE wildcard is taken literally
    assert "No patient code contains" in r.text


def test_add_a_patient_then_edit_it(tmp_path):
    app, db = make_app(tmp_path)
    try:
        with TestClient(app, base_url="http://localhost") as c:
            login(c)
            token = csrf_of(c.get("/patients").text)
            r = c.post("/patients", data={"csrf_token": token, "code": "K-17", "birth_year": "1950", "sex": "male",
                                          "height_cm": "172.5", "affected_side": "left", "notes": "THA left"},
                       follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"] == "/patients/K-17"
            page = c.get("/patients/K-17").text
            assert "Patient K-17" in page and "THA left" in page and "No single-leg test yet" in page
            # a taken code, a name, a bad year: the form comes back with the message and the values
            r = c.post("/patients", data={"csrf_token": token, "code": "k-17"})
            assert r.status_code == 409 and "already taken" in r.text
            r = c.post("/patients", data={"csrf_token": token, "code": "Smith"})
            assert r.status_code == 422 and "never a name" in r.text and 'value="Smith"' in r.text
            r = c.post("/patients", data={"csrf_token": token, "code": "K-18", "birth_year": "18xx"})
            assert r.status_code == 422 and "whole number" in r.text
            # edit
            form = c.get("/patients/K-17/edit").text
            assert 'value="1950"' in form and "THA left" in form
            r = c.post("/patients/K-17/edit", data={"csrf_token": token, "birth_year": "1951", "sex": "male",
                                                    "height_cm": "", "affected_side": "both", "notes": "both hips"},
                       follow_redirects=False)
            assert r.status_code == 303
            page = c.get("/patients/K-17").text
            assert "both hips" in page and "born 1951" in page
            r = c.post("/patients/K-17/edit", data={"csrf_token": token, "birth_year": "1850"})
            assert r.status_code == 422 and "1850" in r.text
            assert c.get("/patients/NOPE-1").status_code == 404
    finally:
        close_app(app)


def test_patient_page_trends_comparison_and_norm(client):
    r = client.get("/patients/P-001")
    assert r.status_code == 200
    html = r.text
    # the latest comparison: the right leg is worse and flagged
    assert 'id="symmetry-flag"' in html and "Asymmetry flagged" in html and "worse on the right" in html
    assert "Symmetry index" in html and "Hold time" in html
    # the norm (born 1960: 60-69 or 70-79 depending on the year)
    assert "Springer" in html and 'id="norm"' in html
    charts = svgs(html)
    assert len(charts) >= 2
    hold = charts[0]
    assert "hold time" in hold.find(f"{SVG_NS}title").text.lower()
    assert hold.findall(f".//{SVG_NS}*[@class='reference']"), "no norm line"
    markers = hold.findall(f".//{SVG_NS}*[@class='marker']")
    assert len(markers) == 4  # two visits, two sides
    # visits, latest first, with their trials and a report link
    assert html.count('class="card visit"') == 2
    assert "/sessions/" in html and "/trials/" in html
    assert "/api/v1/export/scores.csv?patient=P-001" in html


def test_patient_code_in_any_case_redirects_to_the_code(client):
    r = client.get("/patients/p-001", follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/patients/P-001"


def test_patient_without_age_has_no_norm_line(client):
    html = client.get("/patients/P-002").text
    assert "year of birth is not known" in html
    assert not svgs(html)[0].findall(f".//{SVG_NS}*[@class='reference']")


# -- trial ---------------------------------------------------------------------------------------------------


def test_trial_page_charts_metrics_and_downloads(client, stored):
    _, ids = stored
    right = ids[1]
    r = client.get(f"/trials/{right}")
    assert r.status_code == 200
    html = r.text
    charts = svgs(html)
    assert len(charts) == 4
    sk = charts[0]
    assert sk.findall(f".//{SVG_NS}path[@class='ellipse95']")
    assert len(sk.findall(f".//{SVG_NS}path")) >= 3
    assert any("footprint" in (p.get("class") or "") for p in sk.iter(f"{SVG_NS}path"))
    force = charts[2]
    assert force.findall(f".//{SVG_NS}rect[@class='band band-touchdown']"), "touchdown not marked"
    assert force.findall(f".//{SVG_NS}rect[@class='band band-support']"), "support not marked"
    assert "lift-off" in ET.tostring(force, encoding="unicode")
    # every metric with its unit
    for label, unit in (("Hold time", "s"), ("COP mean velocity", "mm/s"), ("95 % prediction ellipse area", "mm²"),
                        ("Hand support, mean", "% BW"), ("COP path length", "mm")):
        assert re.search(re.escape(label) + r".*?</th>\s*<td class=\"num\"><strong>[^<]+</strong></td><td>"
                         + re.escape(unit) + "</td>", html, flags=re.S), label
    assert 'id="touchdowns"' in html and "on the plate" in html
    assert f'href="/api/v1/trials/{right}/recording.csv"' in html
    assert "hip dropped" in html


def test_trial_ellipse_is_the_metric(client, stored):
    _, ids = stored
    html = client.get(f"/trials/{ids[0]}").text
    api = client.get(f"/api/v1/trials/{ids[0]}").json()
    area = api["metrics"]["cop"]["ellipse95_area_mm2"]
    assert f"95 % ellipse, {area:.0f} mm²" in html


def test_grade_and_notes(tmp_path):
    app, db = make_app(tmp_path)
    try:
        ids = seed_patient(db, "G-001", visits=1)
        with TestClient(app, base_url="http://localhost") as c:
            login(c)
            page = c.get(f"/trials/{ids[0]}").text
            token = csrf_of(page)
            r = c.post(f"/trials/{ids[0]}/grade", data={"csrf_token": token, "grade": "positive",
                                                       "notes": "pelvis dropped at 12 s"}, follow_redirects=False)
            assert r.status_code == 303
            page = c.get(r.headers["location"]).text
            assert 'value="positive" checked' in page and "pelvis dropped at 12 s" in page and "Saved." in page
            r = c.post(f"/trials/{ids[0]}/grade", data={"csrf_token": token, "grade": "maybe"})
            assert r.status_code == 422 and "not one of" in r.text
            assert c.get("/trials/999999").status_code == 404
    finally:
        close_app(app)


# -- report ------------------------------------------------------------------------------------------------------


def _visit_ids(client) -> list[int]:
    html = client.get("/patients/P-001").text
    return sorted({int(v) for v in re.findall(r"/sessions/(\d+)/report", html)})


def test_report_html(client):
    visit = _visit_ids(client)[-1]
    r = client.get(f"/sessions/{visit}/report")
    assert r.status_code == 200
    html = r.text
    assert "Single-leg stance report" in html and "P-001" in html
    assert 'id="comparison"' in html and "Asymmetry flagged" in html and "Springer" in html
    assert "hip dropped" in html  # the trial's notes
    assert "@media print" in client.get("/static/station.css").text
    charts = svgs(html)
    assert len(charts) == 4  # hold and sway trends, best left and right statokinesigrams
    assert all(c.find(f"{SVG_NS}title") is not None for c in charts)


def test_report_notes_and_pdf(tmp_path):
    app, db = make_app(tmp_path)
    try:
        seed_patient(db, "R-001", visits=1)
        with TestClient(app, base_url="http://localhost") as c:
            login(c)
            html = c.get("/patients/R-001").text
            visit = int(re.search(r"/sessions/(\d+)/report", html).group(1))
            token = csrf_of(c.get(f"/sessions/{visit}/report").text)
            r = c.post(f"/sessions/{visit}/notes", data={"csrf_token": token, "notes": "Right Trendelenburg ≥ 16 %"},
                       follow_redirects=False)
            assert r.status_code == 303
            assert "Right Trendelenburg ≥ 16 %" in c.get(f"/sessions/{visit}/report").text
            r = c.get(f"/sessions/{visit}/report.pdf")
            assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
            assert r.content.startswith(b"%PDF-") and len(r.content) > 3000
            assert "R-001" in r.headers["content-disposition"]
            assert c.get("/sessions/999999/report").status_code == 404
    finally:
        close_app(app)


# -- live ----------------------------------------------------------------------------------------------------


class FakeController:
    """The live-trial controller's surface the pages use."""

    def __init__(self) -> None:
        self.started: list[dict[str, Any]] = []
        self.snap = TrialSnapshot()

    def start(self, *, patient_code, protocol, stance_side=None, params=None):
        from station.clinic.controller import TrialBusy
        from station.storage.values import NotFound

        if self.snap.running:
            raise TrialBusy("trial 7 is running: abort it or wait for its end")
        if patient_code != "P-001":
            raise NotFound(f"no patient with code {patient_code!r}")
        if protocol == "single-leg" and stance_side not in ("left", "right"):
            raise ValueError("stance_side must be 'left' or 'right' for the single-leg test")
        self.started.append({"patient": patient_code, "protocol": protocol, "stance_side": stance_side})
        status = SingleLegStatus(protocol="single-leg", stance_side="left", state="hold", message="Hold", t_s=12.0,
                                 body_weight_n=700.0, baseline_collected_s=None, countdown_remaining_s=None,
                                 onset_s=6.0, hold_elapsed_s=6.0, hold_s=30.0, touchdowns=0, touchdown_now=None,
                                 supported_now=False)
        self.snap = replace(self.snap, running=True, trial_id=7, patient=patient_code, protocol=protocol,
                            stance_side=stance_side, state="holding", instruction="Hold", elapsed_s=12.0,
                            event_count=2, events=({"kind": "instruction", "t_s": 0.0, "message": "Stand still"},
                                                   {"kind": "onset", "t_s": 6.0, "message": "Lift-off"}),
                            status=status)
        return 7

    def abort(self, reason="aborted by the operator"):
        was = self.snap.running
        self.snap = replace(self.snap, running=False, state="aborted", outcome="aborted")
        return was

    def snapshot(self):
        return self.snap


@pytest.fixture
def live_app(tmp_path):
    from calibration.model import simulator_calibration
    from station.core.geometry import PlateGeometry
    from station.live.pipeline import LiveStation
    from station.signal.forces import ForcePipeline
    from tests.doubles import ListFeed
    from tests.station.live.test_pipeline import frames

    station = LiveStation(ListFeed(), ForcePipeline(simulator_calibration(), PlateGeometry()))
    for raw in frames(100, x_mm=-40.0, y_mm=15.0):
        station.ingest(raw)
    controller = FakeController()
    app, db = make_app(tmp_path, live=station, trials=controller)
    with db.sessions() as s:
        create_patient(s, "P-001")
    yield app, controller
    close_app(app)


def test_live_page_start_stream_abort(live_app):
    app, controller = live_app
    with TestClient(app, base_url="http://localhost") as c:
        login(c)
        html = c.get("/live", params={"patient": "P-001"}).text
        assert 'id="start-form"' in html and '<option value="P-001" selected>' in html
        assert "/static/live.js" in html and c.get("/static/live.js").status_code == 200
        token = csrf_of(html)
        # start, as the page's script does it (fetch, JSON answer)
        r = c.post("/live/start", data={"csrf_token": token, "patient": "P-001", "protocol": "single-leg",
                                        "stance_side": "left"}, headers={"Accept": "application/json"})
        assert r.status_code == 201 and r.json() == {"trial_id": 7}
        assert controller.started == [{"patient": "P-001", "protocol": "single-leg", "stance_side": "left"}]
        r = c.post("/live/start", data={"csrf_token": token, "patient": "P-001", "stance_side": "right"},
                   headers={"Accept": "application/json"})
        assert r.status_code == 409 and "running" in r.json()["detail"]
        # the stream: COP, force and the trial
        with c.stream("GET", "/live/stream", params={"limit": 3}) as s:
            assert s.headers["content-type"].startswith("text/event-stream")
            body = "".join(s.iter_text())
        messages = [json.loads(line[5:]) for line in body.splitlines() if line.startswith("data:")]
        assert len(messages) == 3
        first = messages[0]
        assert first["fz_n"] == pytest.approx(700.0, abs=1) and first["occupied"] is True
        assert first["cop_ml_mm"] == pytest.approx(-40.0, abs=1) and first["cop_ap_mm"] == pytest.approx(15.0, abs=1)
        assert first["trial"]["running"] and first["trial"]["state"] == "holding"
        assert [e["message"] for e in first["trial"]["events"]] == ["Stand still", "Lift-off"]
        assert messages[1]["trial"]["events"] == []  # each event is sent once
        assert first["trial"]["status"]["hold_elapsed_s"] == 6.0
        assert 'value="drill:reach"' in html  # the drills are offered too
        # abort: a plain form post redirects back
        r = c.post("/live/abort", data={"csrf_token": token}, follow_redirects=False)
        assert r.status_code == 303 and not controller.snap.running
        # errors of the form post
        r = c.post("/live/start", data={"csrf_token": token, "patient": "NOPE-1", "stance_side": "left"},
                   headers={"Accept": "application/json"})
        assert r.status_code == 404
        r = c.post("/live/start", data={"csrf_token": token, "patient": "P-001", "stance_side": "up"},
                   headers={"Accept": "application/json"})
        assert r.status_code == 422
        # a drill without a side: the form's side is not passed on; a plain form post goes back to the live page
        r = c.post("/live/start", data={"csrf_token": token, "patient": "P-001", "protocol": "drill:reach",
                                        "stance_side": "left"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/live?patient=P-001"
        assert controller.started[-1] == {"patient": "P-001", "protocol": "drill:reach", "stance_side": None}


def test_live_page_without_a_plate(client):
    html = client.get("/live").text
    assert "The plate is not running" in html and 'id="start-button" disabled' in html
    token = csrf_of(html)
    r = client.post("/live/start", data={"csrf_token": token, "patient": "P-001", "stance_side": "left"},
                    headers={"Accept": "application/json"})
    assert r.status_code == 503


def test_station_page(live_app):
    app, _ = live_app
    with TestClient(app, base_url="http://localhost") as c:
        login(c)
        html = c.get("/").text
    for text in ("Simulated plate", "Dropped frames", "Sample rate", "Calibration", "Zero drift", "Free disk space",
                 "Database"):
        assert text in html, text
    # the simulator's built-in calibration was never made on a date: no made-up date or age
    assert "built into the simulator (no date)" in html and 'id="calibration_age_days"' not in html


def test_station_page_without_a_plate(client):
    html = client.get("/").text
    assert html.count("The plate is not running") == 1 and "Free disk space" in html


def test_drill_scores_trend(tmp_path):
    app, db = make_app(tmp_path)
    try:
        seed_patient(db, "D-001", visits=1)
        now = dt.datetime.now(dt.UTC)
        with db.sessions() as s:
            visit_id = open_visit(s, "D-001", started_at=now - dt.timedelta(days=2)).id
        for k, score in enumerate((12, 18, 25)):
            writer = TrialWriter.start(db.sessions, session_id=visit_id, protocol="drill-reach",
                                       sample_rate_hz=80.0, geometry=GEOMETRY, plate_source="simulated",
                                       started_at=now - dt.timedelta(days=2 - k, hours=1))
            writer.add_many([(0.0, (175.0,) * 4), (0.0125, (175.0,) * 4), (0.025, (175.0,) * 4)])
            writer.finish("complete", {"drill": "reach", "score": score, "success_pct": 80.0, "level": 2,
                                       "rounds_completed": 3})
        with TestClient(app, base_url="http://localhost") as c:
            login(c)
            html = c.get("/patients/D-001").text
            assert 'id="chart-drills"' in html
            drills = [e for e in svgs(html) if "Drill scores" in e.find(f"{SVG_NS}title").text][0]
            assert len(drills.findall(f".//{SVG_NS}*[@class='marker']")) == 3
            trial = re.search(r'<td>drill-reach.*?href="/trials/(\d+)"', html, flags=re.S).group(1)
            page = c.get(f"/trials/{trial}").text
            assert "Drill score" in page and "points" in page
    finally:
        close_app(app)


def test_the_live_page_offers_the_pelvis_drills_with_a_side_and_says_they_need_the_sensor():
    from webui.routes.pages import live_protocols

    tests = {t["value"]: t for t in live_protocols()}
    for name in ("hip-dip", "level-pelvis-hold"):
        entry = tests[f"drill:{name}"]
        assert entry["sided"] is True and "needs the pelvis sensor" in entry["label"]
    assert "pelvis" not in tests["drill:reach"]["label"] and tests["drill:reach"]["sided"] is False
