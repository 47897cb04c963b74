"""The patient's home programme on the therapist's pages: the card on the patient page, the form, set and clear."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.webui.helpers import add_patient, close_app, csrf, login, make_app


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no csrf_token field in the page"
    return m.group(1)


@pytest.fixture
def app(tmp_path):
    app, db = make_app(tmp_path)
    add_patient(db, "P-001", birth_year=1960)
    yield app
    close_app(app)


@pytest.fixture
def client(app):
    with TestClient(app, base_url="http://localhost") as c:
        c.api_token = login(c)
        yield c


def blank_rows(n: int = 6) -> dict[str, list[str]]:
    return {"drill": [""] * n, "amount": [""] * n, "unit": ["rounds"] * n, "side": [""] * n,
            "feedback": ["continuous"] * n, "level": [""] * n, "params": [""] * n}


def form_with(token: str, rows: list[dict[str, str]], name: str = "week 2") -> dict:
    data = blank_rows()
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[key][i] = value
    return {"csrf_token": token, "name": name, "level_bounds": "", **data}


def test_patient_page_without_a_programme(client):
    html = client.get("/patients/P-001").text
    assert 'id="programme"' in html and "Home programme" in html
    assert "No programme set." in html
    assert 'href="/patients/P-001/programme"' in html


def test_programme_form_is_empty_with_six_labelled_rows(client):
    r = client.get("/patients/P-001/programme")
    assert r.status_code == 200
    html = r.text
    assert len(re.findall(r'<fieldset class="prog-row"', html)) == 6
    for field in ("drill", "amount", "unit", "side", "feedback", "level"):
        for i in range(6):
            assert f'<label for="{field}-{i}">' in html and f'id="{field}-{i}"' in html
    assert "Reach (limits of stability)" in html and "Single-leg hold" in html
    assert 'id="clear-programme"' not in html  # nothing to clear
    assert client.get("/patients/NOPE-9/programme").status_code == 404


def test_a_programme_with_a_pelvis_drill(client):
    form = client.get("/patients/P-001/programme").text
    assert re.search(r'<option value="hip-dip" *>Hip dip \(pelvis sensor\)</option>', form)
    assert re.search(r'<option value="level-pelvis-hold" *>Level-pelvis hold \(pelvis sensor\)</option>', form)
    token = csrf_of(form)
    r = client.post("/patients/P-001/programme", data=form_with(token, [
        {"drill": "hip-dip", "amount": "3", "unit": "rounds", "side": "left"}]), follow_redirects=False)
    assert r.status_code == 303, r.text
    items = client.get("/api/v1/patients/P-001/programme").json()["items"]
    assert items == [{"drill": "hip-dip", "rounds": 3, "stance_side": "left", "params": {}, "feedback": "continuous"}]
    card = client.get("/patients/P-001").text
    assert "Hip dip (pelvis sensor)" in card and "3 rounds" in card
    # without a side: said on the form, nothing stored
    r = client.post("/patients/P-001/programme", data=form_with(csrf_of(form), [
        {"drill": "level-pelvis-hold", "amount": "2", "unit": "minutes"}]))
    assert r.status_code == 422 and "stance_side is required for the level-pelvis-hold drill" in r.text
    assert client.get("/api/v1/patients/P-001/programme").json()["items"][0]["drill"] == "hip-dip"


def test_set_a_programme_then_see_it(client):
    token = csrf_of(client.get("/patients/P-001/programme").text)
    data = form_with(token, [
        {"drill": "reach", "amount": "2", "unit": "rounds", "feedback": "intermittent", "level": "3"},
        {},  # an empty row between is left out
        {"drill": "symmetry", "amount": "1.5", "unit": "minutes", "side": "left"},
        {"drill": "single-leg-hold", "amount": "3", "side": "right", "feedback": "summary"},
    ])
    r = client.post("/patients/P-001/programme", data=data, follow_redirects=False)
    assert r.status_code == 303, r.text
    assert r.headers["location"].startswith("/patients/P-001")

    stored = client.get("/api/v1/patients/P-001/programme").json()
    assert stored["name"] == "week 2"
    items = stored["items"]
    assert [it["drill"] for it in items] == ["reach", "symmetry", "single-leg-hold"]
    assert items[0]["rounds"] == 2 and items[0]["feedback"] == "intermittent" and items[0]["level"] == 3
    assert items[1]["duration_s"] == 90.0 and items[1]["stance_side"] == "left" and "rounds" not in items[1]
    assert items[2]["rounds"] == 3 and items[2]["stance_side"] == "right" and items[2]["feedback"] == "summary"

    html = client.get("/patients/P-001").text
    assert "No programme set." not in html and "week 2" in html
    card = html[html.index('id="programme"'):html.index('id="latest-h"')]
    assert "Reach (limits of stability)" in card and "2 rounds" in card
    assert "Weight-shift symmetry" in card and "1.5 min" in card
    assert "Single-leg hold" in card and "3 rounds" in card and "summary" in card

    # the form shows the programme again, and can be cleared
    form = client.get("/patients/P-001/programme").text
    assert 'value="week 2"' in form and 'id="clear-programme"' in form
    assert re.search(r'id="drill-2" name="drill">.*?<option value="single-leg-hold" selected>', form, re.S)
    assert re.search(r'id="unit-1" name="unit">.*?<option value="minutes" selected>', form, re.S)
    assert 'id="amount-1" name="amount" value="1.5"' in form


def test_saving_the_form_keeps_settings_set_through_the_api(client):
    programme = {"name": "api", "level_bounds": [2, 6],
                 "items": [{"drill": "symmetry", "duration_s": 60, "params": {"tolerance_pct": 8}}]}
    r = client.put("/api/v1/patients/P-001/programme", json=programme, headers=csrf(client.api_token))
    assert r.status_code == 200, r.text
    assert "tolerance pct 8" in client.get("/patients/P-001").text
    form = client.get("/patients/P-001/programme").text
    rows = re.findall(r'name="params" value="([^"]*)"', form)
    bounds = re.search(r'name="level_bounds" value="([^"]*)"', form).group(1)
    data = form_with(csrf_of(form), [{"drill": "symmetry", "amount": "2", "unit": "minutes",
                                      "params": rows[0].replace("&#34;", '"')}], name="api")
    data["level_bounds"] = bounds
    assert client.post("/patients/P-001/programme", data=data, follow_redirects=False).status_code == 303
    stored = client.get("/api/v1/patients/P-001/programme").json()
    assert stored["level_bounds"] == [2, 6]
    assert stored["items"][0]["duration_s"] == 120.0 and stored["items"][0]["params"]["tolerance_pct"] == 8


def test_an_invalid_programme_is_shown_again_with_the_message(client):
    token = csrf_of(client.get("/patients/P-001/programme").text)
    data = form_with(token, [{"drill": "reach", "amount": "4"},
                             {"drill": "single-leg-hold", "amount": "3", "feedback": "intermittent", "level": "5"}],
                     name="too hard")
    r = client.post("/patients/P-001/programme", data=data)
    assert r.status_code == 422
    html = r.text
    error = re.search(r'<p class="error" role="alert" id="form-error">(.*?)</p>', html, re.S).group(1)
    assert "stance_side" in error and "Row 2" in error
    # what was entered is kept
    assert 'value="too hard"' in html
    assert re.search(r'id="drill-1" name="drill">.*?<option value="single-leg-hold" selected>', html, re.S)
    assert 'id="amount-1" name="amount" value="3"' in html and 'id="level-1" name="level" value="5"' in html
    assert re.search(r'id="feedback-1" name="feedback">.*?<option value="intermittent" selected>', html, re.S)
    assert client.get("/api/v1/patients/P-001/programme").json() is None  # nothing stored


@pytest.mark.parametrize("row, words", [
    ({"drill": "reach", "amount": "2.5"}, "whole number"),
    ({"drill": "reach", "amount": "500"}, "rounds"),
    ({"drill": "rhythm", "amount": "300", "unit": "minutes"}, "duration_s"),
    ({"drill": "limits", "level": "11"}, "level"),
    ({"drill": "limits", "feedback": "loud"}, "feedback"),
    ({"drill": "skiing"}, "drill"),
    ({"amount": "3"}, "choose a drill"),
])
def test_bad_rows_name_the_problem(client, row, words):
    token = csrf_of(client.get("/patients/P-001/programme").text)
    r = client.post("/patients/P-001/programme", data=form_with(token, [row]))
    assert r.status_code == 422
    assert words in re.search(r'id="form-error">(.*?)</p>', r.text, re.S).group(1)


def test_a_programme_without_drills_is_refused(client):
    token = csrf_of(client.get("/patients/P-001/programme").text)
    r = client.post("/patients/P-001/programme", data=form_with(token, []))
    assert r.status_code == 422 and "at least one drill" in r.text


def test_the_form_needs_the_csrf_token(client):
    data = form_with("", [{"drill": "reach", "amount": "2"}])
    del data["csrf_token"]
    r = client.post("/patients/P-001/programme", data=data, follow_redirects=False)
    assert r.status_code == 403
    r = client.post("/patients/P-001/programme", data={**data, "csrf_token": "wrong"}, follow_redirects=False)
    assert r.status_code == 403
    assert client.get("/api/v1/patients/P-001/programme").json() is None


def test_the_programme_pages_need_a_login(app):
    with TestClient(app, base_url="http://localhost") as c:
        r = c.get("/patients/P-001/programme", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
        r = c.post("/patients/P-001/programme", data=form_with("x", [{"drill": "reach"}]), follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_clear_the_programme(client):
    r = client.put("/api/v1/patients/P-001/programme", json={"items": [{"drill": "limits"}]},
                   headers=csrf(client.api_token))
    assert r.status_code == 200
    html = client.get("/patients/P-001").text
    assert "No programme set." not in html and "drill&#39;s default" in html
    form = client.get("/patients/P-001/programme").text
    assert 'id="clear-programme"' in form
    r = client.post("/patients/P-001/programme", data={"csrf_token": csrf_of(form), "action": "clear"},
                    follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/api/v1/patients/P-001/programme").json() is None
    assert "No programme set." in client.get("/patients/P-001").text
