"""GET/POST /api/v1/patients, GET/PATCH /api/v1/patients/{code}: logged in, on a real database."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from tests.webui.helpers import csrf, login, make_app, seed_trials


@pytest.fixture
def api(tmp_path):
    """(client, csrf headers, db), logged in."""
    app, db = make_app(tmp_path)
    with TestClient(app, base_url="http://localhost") as client:
        yield client, csrf(login(client)), db
    db.close()


def test_create_list_get(api):
    client, h, _ = api
    assert client.get("/api/v1/patients").json() == []
    r = client.post("/api/v1/patients", headers=h, json={
        "code": " P-001 ", "birth_year": 1956, "sex": "female", "height_cm": 162.5, "affected_side": "left",
        "notes": "hip replacement 2024"})
    assert r.status_code == 201
    body = r.json()
    assert body["code"] == "P-001" and body["birth_year"] == 1956 and body["sex"] == "female"
    assert body["height_cm"] == 162.5 and body["affected_side"] == "left" and body["n_trials"] == 0
    assert body["programme"] is None and dt.datetime.fromisoformat(body["created_at"])
    client.post("/api/v1/patients", headers=h, json={"code": "A-7"})
    assert [p["code"] for p in client.get("/api/v1/patients").json()] == ["A-7", "P-001"]
    assert client.get("/api/v1/patients/p-001").json()["code"] == "P-001"  # codes ignore case


def test_the_trial_count_and_last_trial(api):
    client, _, db = api
    seed_trials(db, "P-001", 3)
    (p,) = client.get("/api/v1/patients").json()
    assert p["n_trials"] == 3 and p["last_trial_at"].startswith("2024-01-01T10:00:00")
    assert client.get("/api/v1/patients/P-001").json()["n_trials"] == 3


def test_a_taken_code_is_409(api):
    client, h, _ = api
    assert client.post("/api/v1/patients", headers=h, json={"code": "P-001"}).status_code == 201
    r = client.post("/api/v1/patients", headers=h, json={"code": "p-001"})
    assert r.status_code == 409 and "already taken" in r.json()["detail"]


@pytest.mark.parametrize(("code", "message"), [
    ("John", "has no digit"),
    ("Anna Smith 1", "may hold only letters, digits"),
    ("P", "at least 2 characters"),
    ("P" * 33 + "1", "at most 32 characters"),
    ("", "at least 2 characters"),
    ("Jörg-1", "may hold only"),
])
def test_a_bad_code_is_422_with_the_reason(api, code, message):
    client, h, _ = api
    r = client.post("/api/v1/patients", headers=h, json={"code": code})
    assert r.status_code == 422
    assert message in str(r.json()["detail"])


@pytest.mark.parametrize("path", ["/api/v1/patients/John", "/api/v1/patients/x%20y1", "/api/v1/patients/P"])
def test_a_bad_code_in_the_url_is_422(api, path):
    client, h, _ = api
    assert client.get(path).status_code == 422
    assert client.patch(path, headers=h, json={"notes": "x"}).status_code == 422


@pytest.mark.parametrize("body", [
    {"code": "P-002", "birth_year": 1850},
    {"code": "P-002", "birth_year": dt.date.today().year + 1},
    {"code": "P-002", "birth_year": "nineteen"},
    {"code": "P-002", "height_cm": 20},
    {"code": "P-002", "sex": "unknown"},
    {"code": "P-002", "affected_side": "middle"},
    {"code": "P-002", "name": "Anna Smith"},  # no such field: the station stores no names
    {"birth_year": 1950},
    [],
])
def test_bad_fields_are_422(api, body):
    client, h, _ = api
    r = client.post("/api/v1/patients", headers=h, json=body)
    assert r.status_code == 422, r.text
    assert client.get("/api/v1/patients").json() == []


def test_update_some_fields_and_clear_others(api):
    client, h, _ = api
    client.post("/api/v1/patients", headers=h, json={"code": "P-001", "birth_year": 1950, "sex": "male",
                                                       "notes": "first"})
    r = client.patch("/api/v1/patients/P-001", headers=h, json={"height_cm": 180, "sex": None, "notes": "second"})
    assert r.status_code == 200
    body = r.json()
    assert (body["birth_year"], body["sex"], body["height_cm"], body["notes"]) == (1950, None, 180.0, "second")
    assert client.get("/api/v1/patients/P-001").json()["height_cm"] == 180.0


@pytest.mark.parametrize("body", [{"code": "P-009"}, {"birth_year": 1800}, {"height_cm": "tall"},
                                  {"programme": {"x": 1}}])
def test_bad_updates_are_422_and_change_nothing(api, body):
    client, h, _ = api
    client.post("/api/v1/patients", headers=h, json={"code": "P-001", "birth_year": 1950})
    assert client.patch("/api/v1/patients/P-001", headers=h, json=body).status_code == 422
    assert client.get("/api/v1/patients/P-001").json()["birth_year"] == 1950


def test_unknown_patient_is_404(api):
    client, h, _ = api
    assert client.get("/api/v1/patients/P-404").status_code == 404
    r = client.patch("/api/v1/patients/P-404", headers=h, json={"notes": "x"})
    assert r.status_code == 404 and "no patient with code 'P-404'" in r.json()["detail"]


def test_malformed_json_is_422(api):
    client, h, _ = api
    r = client.post("/api/v1/patients", headers={**h, "content-type": "application/json"}, content=b'{"code": ')
    assert r.status_code == 422


def test_the_therapist_sets_a_home_programme(api):
    client, h, _ = api
    client.post("/api/v1/patients", headers=h, json={"code": "P-002"})
    assert client.get("/api/v1/patients/P-002/programme").json() is None
    programme = {"name": "week 2", "items": [{"drill": "reach", "rounds": 2, "feedback": "intermittent"},
                                             {"drill": "single-leg-hold", "rounds": 3, "stance_side": "right"}]}
    r = client.put("/api/v1/patients/P-002/programme", headers=h, json=programme)
    assert r.status_code == 200, r.text
    stored = client.get("/api/v1/patients/P-002/programme").json()
    assert [i["drill"] for i in stored["items"]] == ["reach", "single-leg-hold"]
    assert client.get("/api/v1/patients/P-002").json()["programme"] == stored

    bad = client.put("/api/v1/patients/P-002/programme", headers=h,
                     json={"items": [{"drill": "single-leg-hold", "rounds": 3}]})
    assert bad.status_code == 422 and "stance_side" in bad.text
    assert client.put("/api/v1/patients/P-002/programme", json=programme).status_code == 403  # no CSRF token
    assert client.put("/api/v1/patients/NOPE-9/programme", headers=h, json=programme).status_code == 404
