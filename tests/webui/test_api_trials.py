"""Trials (list, one, grade, recording) and live tests (start, watch, abort) through the JSON API."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from fastapi.testclient import TestClient

from station.core.recording import read_recording
from tests.webui.helpers import FakeTrials, add_patient, add_recorded_trial, csrf, login, make_app, seed_trials
from webui.deps import get_trials


@pytest.fixture
def env(tmp_path):
    """(client, csrf headers, db, fake controller), logged in."""
    trials = FakeTrials()
    app, db = make_app(tmp_path, trials=trials)
    with TestClient(app, base_url="http://localhost") as client:
        yield client, csrf(login(client)), db, trials
    db.close()


def test_list_a_patients_trials_with_state_and_metrics(env):
    client, _, db, _ = env
    seed_trials(db, "P-001", 4)
    seed_trials(db, "P-002", 2)
    running = add_recorded_trial(db, "P-001", state="running")
    r = client.get("/api/v1/trials", params={"patient": "P-001"})
    assert r.status_code == 200
    trials = r.json()
    assert [t["patient"] for t in trials] == ["P-001"] * 5
    assert [t["state"] for t in trials] == ["complete"] * 4 + ["running"]
    assert trials[-1]["trial_id"] == running
    first = trials[0]
    assert first["protocol"] == "single-leg" and first["stance_side"] == "left" and first["grade"] == "not_assessed"
    assert 4 <= first["metrics"]["hold_time_s"] <= 30 and "path_length_mm" in first["metrics"]["cop"]
    assert dt.datetime.fromisoformat(first["started_at"]) == dt.datetime(2024, 1, 1, 8, tzinfo=dt.UTC)
    assert len(client.get("/api/v1/trials").json()) == 7
    assert [t["state"] for t in client.get("/api/v1/trials", params={"state": "running"}).json()] == ["running"]


def test_trials_between_dates(env):
    client, _, db, _ = env
    seed_trials(db, "P-001", 10, every_s=86400, start=dt.datetime(2024, 3, 1, 12, tzinfo=dt.UTC))
    get = lambda **p: [t["started_at"][:10] for t in client.get("/api/v1/trials",  # noqa: E731
                                                                  params={"patient": "P-001", **p}).json()]
    assert get(**{"from": "2024-03-04", "to": "2024-03-06"}) == ["2024-03-04", "2024-03-05", "2024-03-06"]
    assert get(**{"from": "2024-03-09"}) == ["2024-03-09", "2024-03-10"]
    assert get(to="2024-03-01") == ["2024-03-01"]
    assert get(**{"from": "2024-03-06", "to": "2024-03-04"}) == []  # an empty range
    assert get(**{"from": "0001-01-01", "to": "9999-12-31"}) == get()
    for bad in ({"from": "yesterday"}, {"to": "2024-13-01"}, {"state": "done"}, {"patient": "John"}):
        assert client.get("/api/v1/trials", params=bad).status_code == 422, bad


def test_unknown_patient_is_404(env):
    client, *_ = env
    r = client.get("/api/v1/trials", params={"patient": "P-404"})
    assert r.status_code == 404 and "P-404" in r.json()["detail"]


def test_one_trial(env):
    client, _, db, _ = env
    (tid,) = seed_trials(db, "P-001", 1)
    body = client.get(f"/api/v1/trials/{tid}").json()
    assert body["trial_id"] == tid and body["metrics"]["protocol"] == "single-leg"
    assert client.get("/api/v1/trials/999").status_code == 404
    for bad in ("abc", "0", "-1", "99999999999999999999999"):
        assert client.get(f"/api/v1/trials/{bad}").status_code == 422, bad


def test_grade_and_notes(env):
    client, h, db, _ = env
    (tid,) = seed_trials(db, "P-001", 1)
    r = client.patch(f"/api/v1/trials/{tid}", headers=h, json={"grade": "positive", "notes": "pelvis dropped at 12 s"})
    assert r.status_code == 200 and (r.json()["grade"], r.json()["notes"]) == ("positive", "pelvis dropped at 12 s")
    r = client.patch(f"/api/v1/trials/{tid}", headers=h, json={"notes": "only notes"})
    assert (r.json()["grade"], r.json()["notes"]) == ("positive", "only notes")
    r = client.patch(f"/api/v1/trials/{tid}", headers=h, json={"grade": "compensated"})
    assert (r.json()["grade"], r.json()["notes"]) == ("compensated", "only notes")
    for bad in ({"grade": "maybe"}, {"grade": None, "extra": 1}, {"notes": 5}, [1]):
        assert client.patch(f"/api/v1/trials/{tid}", headers=h, json=bad).status_code == 422, bad
    assert client.patch("/api/v1/trials/999", headers=h, json={"grade": "negative"}).status_code == 404
    assert client.get(f"/api/v1/trials/{tid}").json()["grade"] == "compensated"


def test_the_recording_file(env, tmp_path):
    client, _, db, _ = env
    tid = add_recorded_trial(db, "P-001", n_frames=240)
    r = client.get(f"/api/v1/trials/{tid}/recording.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert f'filename="P-001-trial-{tid}.csv"' in r.headers["content-disposition"]
    assert r.text.startswith("# balance-station recording v1\n")
    path = tmp_path / "got.csv"
    path.write_text(r.text)
    rec = read_recording(path)
    assert rec.sample_rate_hz == 80 and len(rec.t_s) == 240
    assert np.allclose(rec.forces_n[:3, 0], [170.0, 171.0, 172.0])
    assert rec.metadata["patient"] == "P-001" and rec.metadata["stance_side"] == "left"


def test_a_trial_without_frames_has_no_recording(env):
    client, _, db, _ = env
    (tid,) = seed_trials(db, "P-001", 1)
    r = client.get(f"/api/v1/trials/{tid}/recording.csv")
    assert r.status_code == 409 and "too few" in r.json()["detail"]
    assert client.get("/api/v1/trials/999/recording.csv").status_code == 404


# -- live tests ---------------------------------------------------------------------------------------


def test_start_watch_abort(env):
    client, h, db, trials = env
    add_patient(db, "P-001")
    assert client.get("/api/v1/tests/current").json()["running"] is False
    r = client.post("/api/v1/tests", headers=h, json={"patient": "P-001", "protocol": "single-leg",
                                                      "stance_side": "right"})
    assert r.status_code == 201 and r.json() == {"trial_id": 42}
    assert trials.started == [{"patient_code": "P-001", "protocol": "single-leg", "stance_side": "right",
                               "params": None}]
    now = client.get("/api/v1/tests/current").json()
    assert now["running"] is True and now["trial_id"] == 42 and now["patient"] == "P-001"
    assert now["events"] == [{"kind": "onset", "t_s": 3.1, "message": "single-leg stance"}]
    assert now["offline"] is True and now["status"] == {}  # the controller's fields beyond the model pass through
    r = client.post("/api/v1/tests", headers=h, json={"patient": "P-001", "protocol": "single-leg",
                                                      "stance_side": "left"})
    assert r.status_code == 409 and "already running" in r.json()["detail"]
    assert client.post("/api/v1/tests/current/abort", headers=h).json() == {"aborted": True}
    assert trials.aborted == ["aborted from the web page by therapist"]
    assert client.post("/api/v1/tests/current/abort", headers=h).json() == {"aborted": False}


@pytest.mark.parametrize(("body", "status"), [
    ({"patient": "P-404", "protocol": "single-leg", "stance_side": "left"}, 404),
    ({"patient": "P-001", "protocol": "hopscotch", "stance_side": "left"}, 422),
    ({"patient": "P-001", "protocol": "single-leg"}, 422),
    ({"patient": "P-001", "protocol": "single-leg", "stance_side": "up"}, 422),
    ({"patient": "John", "protocol": "single-leg", "stance_side": "left"}, 422),
    ({"protocol": "single-leg"}, 422),
])
def test_bad_starts(env, body, status):
    client, h, _, trials = env
    r = client.post("/api/v1/tests", headers=h, json=body)
    assert r.status_code == status, r.text
    assert trials.started == []


def test_drills_and_params_reach_the_controller(env):
    client, h, _, trials = env
    r = client.post("/api/v1/tests", headers=h, json={"patient": "P-001", "protocol": "drill:reach",
                                                      "params": {"duration_s": 60}})
    assert r.status_code == 201
    assert trials.started[0]["protocol"] == "drill:reach" and trials.started[0]["params"] == {"duration_s": 60}


def test_without_a_controller_it_is_503(tmp_path):
    app, db = make_app(tmp_path)
    try:
        with TestClient(app, base_url="http://localhost") as client:
            h = csrf(login(client))
            assert client.get("/api/v1/tests/current").status_code == 503
            assert client.post("/api/v1/tests", headers=h, json={"patient": "P-001", "protocol": "quiet-stance"}
                               ).status_code == 503
    finally:
        db.close()


def test_the_controller_dependency_can_be_overridden(tmp_path):
    app, db = make_app(tmp_path)
    other = FakeTrials()
    app.dependency_overrides[get_trials] = lambda: other
    try:
        with TestClient(app, base_url="http://localhost") as client:
            login(client)
            assert client.get("/api/v1/tests/current").json()["state"] == "idle"
    finally:
        db.close()
