"""The office's pages (``create_app(office=True)``, what ``balance-station serve`` runs), without a station process:
which stations can be chosen, and what the page says when a station cannot be reached.
(tests/station/commands/test_serve.py starts a test on a real station process.)"""

from __future__ import annotations

import datetime as dt
import socket

import pytest
from fastapi.testclient import TestClient

from station.storage.db import open_database
from station.storage.stations import touch_station
from tests.webui.helpers import add_patient, login, make_settings
from webui.app import create_app


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nobody listens there once closed


@pytest.fixture
def office(tmp_path):
    settings = make_settings(tmp_path)
    db = open_database(settings.database_url, data_dir=settings.data_dir)  # no station id: the office
    dead = f"http://127.0.0.1:{closed_port()}"
    with db.write() as s:
        touch_station(s, "room-a", web_url=dead)
        touch_station(s, "room-old")  # an older program: no web address
        touch_station(s, "room-c", web_url="https://room-c.local", now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    add_patient(db, "P-001")
    app = create_app(settings, None, db=db, office=True)
    try:
        with TestClient(app, base_url="http://localhost") as client:
            token = login(client)
            yield client, token, dead
    finally:
        db.close()


def test_the_office_live_page_offers_the_stations_that_said_where_they_answer(office):
    client, _, dead = office
    page = client.get("/live").text
    assert '<option value="room-a" selected>room-a</option>' in page  # in contact: chosen first
    assert '<option value="room-c" >room-c (no contact)</option>' in page
    assert '<option value="room-old"' not in page  # no address: cannot be started from here
    assert '<tr data-station="room-old">' in page and f'href="{dead}/live"' in page
    home = client.get("/").text
    assert 'id="office"' in home and "(this station)" not in home
    assert "room-old" in home and "https://room-c.local" in home


def test_a_station_without_an_address_or_that_does_not_answer_is_said_so(office):
    client, token, dead = office
    fields = {"patient": "P-001", "protocol": "single-leg", "stance_side": "left", "csrf_token": token}
    r = client.post("/live/start", data={**fields, "station": "room-old"}, headers={"Accept": "application/json"})
    assert r.status_code == 409 and "has not said where its web page answers" in r.json()["detail"]
    r = client.post("/live/start", data={**fields, "station": "room-a"}, headers={"Accept": "application/json"})
    assert r.status_code == 502 and f"does not answer at {dead}" in r.json()["detail"]
    r = client.post("/live/start", data={**fields, "station": "room-a"}, headers={"Accept": "text/html"})
    assert r.status_code == 502 and "Station room-a: the station does not answer" in r.text  # a page for a browser
    assert "The station did not answer" in r.text
    r = client.post("/live/start", data={**fields, "station": "room-a", "csrf_token": "wrong"})
    assert r.status_code == 403  # the office checks its own form's token before calling anyone


def test_a_station_keeps_its_own_live_page(tmp_path):
    settings = make_settings(tmp_path).model_copy(update={"station_id": "room-a"})
    db = open_database(settings.database_url, data_dir=settings.data_dir, station_id=settings.station_id)
    try:
        with TestClient(create_app(settings, None, db=db), base_url="http://localhost") as client:
            login(client)
            page = client.get("/live").text
            assert "The plate is not running" in page and 'name="station"' not in page
            assert "(this station)" in client.get("/").text
    finally:
        db.close()
