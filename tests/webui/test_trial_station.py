"""Every trial says which station recorded it: the API, the trial page, the scores CSV, the recording file.

Run on SQLite and on PostgreSQL (tests/webui/conftest.py), with two stations writing into one database.
"""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from station.storage.db import open_database
from station.storage.exports import TRIAL_COLUMNS
from tests.webui.helpers import add_recorded_trial, login, make_settings, seed_trials
from webui.app import create_app


@pytest.fixture
def env(tmp_path):
    """The app of station ``room-a``, and the same database opened by a second station, ``room-b``."""
    settings = make_settings(tmp_path).model_copy(update={"station_id": "room-a"})
    db_a = open_database(settings.database_url, data_dir=settings.data_dir, station_id=settings.station_id)
    db_b = open_database(settings.database_url, data_dir=settings.data_dir, station_id="room-b")
    app = create_app(settings, None, db=db_a)
    try:
        with TestClient(app, base_url="http://localhost") as client:
            login(client)
            yield client, db_a, db_b
    finally:
        db_a.close()
        db_b.close()


def test_the_station_id_setting_defaults_and_is_checked(tmp_path):
    import socket

    from station.core.config import load_settings
    from station.core.errors import UserError

    # the machine's host name (its first label), so that stations sharing a database differ without a setting
    assert load_settings(data_dir=tmp_path).station_id == socket.gethostname().split(".")[0][:64]
    assert load_settings(data_dir=tmp_path, station_id="room-a").station_id == "room-a"
    with pytest.raises(UserError, match="station_id"):
        load_settings(data_dir=tmp_path, station_id="x" * 65)


def test_each_trial_carries_the_station_that_recorded_it(env):
    client, db_a, db_b = env
    assert (db_a.station_id, db_b.station_id) == ("room-a", "room-b")
    a = add_recorded_trial(db_a, "P-001", n_frames=100)
    b = add_recorded_trial(db_b, "P-001", n_frames=100, side="right")
    (old,) = seed_trials(db_a, "P-001", 1)  # stored without a station (as before schema version 3)
    assert client.get(f"/api/v1/trials/{a}").json()["station_id"] == "room-a"
    assert client.get(f"/api/v1/trials/{b}").json()["station_id"] == "room-b"
    assert client.get(f"/api/v1/trials/{old}").json()["station_id"] is None
    listed = {t["trial_id"]: t["station_id"] for t in client.get("/api/v1/trials").json()}
    assert listed == {a: "room-a", b: "room-b", old: None}
    # the fields the contract had before are all still there
    one = client.get(f"/api/v1/trials/{b}").json()
    assert {"trial_id", "patient", "session_id", "protocol", "stance_side", "state", "state_detail", "started_at",
            "ended_at", "duration_s", "n_frames", "frames_dropped", "sample_rate_hz", "plate_source", "grade",
            "notes", "settings", "metrics", "calibration"} < set(one)


def test_the_trial_page_names_the_station(env):
    client, _, db_b = env
    b = add_recorded_trial(db_b, "P-001", n_frames=100)
    page = client.get(f"/trials/{b}")
    assert page.status_code == 200
    assert '<dt>Station</dt><dd id="trial-station">room-b</dd>' in page.text
    (old,) = seed_trials(db_b, "P-002", 1)
    assert '<dd id="trial-station">–</dd>' in client.get(f"/trials/{old}").text


def test_the_scores_csv_has_a_station_column(env):
    client, db_a, db_b = env
    a = add_recorded_trial(db_a, "P-001", n_frames=100)
    b = add_recorded_trial(db_b, "P-001", n_frames=100)
    (old,) = seed_trials(db_a, "P-001", 1)
    assert TRIAL_COLUMNS[-2:] == ("plate_source", "station_id")
    text = client.get("/api/v1/export/scores.csv").text
    assert text.splitlines()[0].split(",")[:len(TRIAL_COLUMNS)] == list(TRIAL_COLUMNS)
    rows = {int(r["trial_id"]): r["station_id"] for r in csv.DictReader(io.StringIO(text))}
    assert rows == {a: "room-a", b: "room-b", old: ""}


def test_the_recording_file_names_the_station(env):
    client, db_a, db_b = env
    b = add_recorded_trial(db_b, "P-001", n_frames=100)
    text = client.get(f"/api/v1/trials/{b}/recording.csv").text
    assert "# station_id: room-b\n" in text
    (old,) = seed_trials(db_a, "P-001", 1)
    assert client.get(f"/api/v1/trials/{old}/recording.csv").status_code != 200  # no frames: no file, as before


def test_the_station_page_lists_every_station_that_used_the_database(env):
    import datetime as dt
    import re

    from station import __version__
    from station.storage.stations import station_activity

    client, db_a, db_b = env

    def listed():
        page = client.get("/").text
        return [(sid, int(n), "(this station)" in name, name)
                for sid, name,
                n in re.findall(r'<tr data-station="([^"]*)"><td>(.*?)</td>\s*<td class="num">(\d+)</td>',
                                               page)]

    # both stations started on the database (room-b last), no trial yet
    assert [row[:3] for row in listed()] == [("room-b", 0, False), ("room-a", 0, True)]
    for _ in range(2):
        add_recorded_trial(db_b, "P-001", n_frames=100)
    add_recorded_trial(db_a, "P-002", n_frames=100)
    seed_trials(db_a, "P-003", 3)  # from before stations were recorded (2024)
    with db_a.sessions() as s:
        stations = station_activity(s)
    assert [(st["station_id"], st["trials"], st["running"]) for st in stations] == [
        ("room-a", 1, 0), ("room-b", 2, 0), (None, 3, 0)]  # the last in contact first; unknown last
    now = dt.datetime.now(dt.UTC)
    for st in stations[:2]:
        assert now - dt.timedelta(minutes=1) < st["last_contact_at"] <= now
        assert st["plate_source"] == "simulated" and st["first_trial_at"] <= st["last_trial_at"]
        assert st["software_version"] == __version__
    assert stations[2]["last_contact_at"] < now - dt.timedelta(days=300) and stations[2]["software_version"] is None
    rows = listed()
    assert [row[:3] for row in rows] == [("room-a", 1, True), ("room-b", 2, False), ("", 3, False)]
    assert "not recorded" in rows[2][3]
    assert f"<td>{__version__}</td>" in client.get("/").text


def test_the_heartbeat_keeps_the_last_contact_true_and_notes_the_web_address(env):
    import datetime as dt
    import time

    from station.storage.heartbeat import Heartbeat
    from station.storage.stations import station_activity, touch_station

    client, db_a, _ = env
    long_ago = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    with db_a.write() as s:  # as if room-a had been quiet since new year
        touch_station(s, "room-a", now=long_ago)

    def room_a():
        with db_a.sessions() as s:
            return next(st for st in station_activity(s) if st["station_id"] == "room-a")

    assert room_a()["last_contact_at"] == long_ago and room_a()["web_url"] is None
    beat = Heartbeat(db_a, "room-a", web_url="https://station-room-a.local", every_s=0.05).start()
    try:
        assert beat.beats == 1  # the first at once
        deadline = time.monotonic() + 5
        while beat.beats < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert beat.beats >= 3 and beat.failures == 0
    finally:
        beat.stop()
    st = room_a()
    assert dt.datetime.now(dt.UTC) - st["last_contact_at"] < dt.timedelta(seconds=10)
    assert st["web_url"] == "https://station-room-a.local"
    with db_a.write() as s:  # a trial's start does not know the address: the noted one stays
        touch_station(s, "room-a")
    assert room_a()["web_url"] == "https://station-room-a.local"
    assert "https://station-room-a.local" in client.get("/").text


def test_a_heartbeat_on_a_database_that_refuses_warns_once_and_keeps_trying(tmp_path, caplog):
    from station.storage.db import open_database
    from station.storage.heartbeat import Heartbeat

    db = open_database(data_dir=tmp_path / "data")
    db.engine.dispose()
    (tmp_path / "data" / "station.db").unlink()
    (tmp_path / "data" / "station.db").mkdir()  # a folder where the file was: every write fails
    try:
        beat = Heartbeat(db, "room-a", every_s=60)
        assert not beat.beat() and not beat.beat()
        assert beat.failures == 2 and beat.beats == 0
        assert sum("cannot note station room-a's contact" in r.getMessage() for r in caplog.records) == 1
    finally:
        db.close()


def test_the_web_address_of_a_station(monkeypatch):
    from station.core.config import WebSettings

    assert WebSettings().station_url() == "http://127.0.0.1:8000"
    assert WebSettings(host="0.0.0.0", port=8080, public_url="https://room-a.local/").station_url() == \
        "https://room-a.local"
    monkeypatch.setattr("socket.getfqdn", lambda: "pi-room-b.clinic.lan")
    assert WebSettings(host="0.0.0.0", port=8080).station_url() == "http://pi-room-b.clinic.lan:8080"
    assert WebSettings(host="::1").station_url() == "http://[::1]:8000"
    with pytest.raises(ValueError):
        WebSettings(public_url="station-room-a.local")  # no scheme
