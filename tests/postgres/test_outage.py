"""A station keeps testing while the clinic database is unreachable, and uploads its trials once it answers.

On the real PostgreSQL server (tests/postgres/server.py): each station reaches its scratch database
through a TCP proxy (tests/postgres/proxy.py) that the test cuts and restores, as a clinic network
goes down and comes back. The shared server itself is never stopped.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from calibration.model import simulator_calibration
from hardware.sim.plate import SimulatedPlate
from station.clinic.controller import TrialController
from station.core.geometry import PlateGeometry
from station.live.pipeline import LiveStation
from station.signal.forces import ForcePipeline
from station.storage.db import open_database
from station.storage.patients import create_patient
from station.storage.spool import Spool, SpoolUploader, offline_message
from station.storage.trials import get_trial, trial_recording
from tests.doubles import SimFeed
from tests.postgres.proxy import PgProxy
from tests.postgres.server import rows, scratch_database
from tests.webui.helpers import PASSWORD, add_user, csrf, make_settings
from webui.app import create_app

GEOMETRY = PlateGeometry()


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch):
    from argon2 import PasswordHasher

    import station.storage.accounts

    monkeypatch.setattr(station.storage.accounts, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024,
                                                                           parallelism=1))


@pytest.fixture
def server():
    """(the scratch database's own URL, a proxy in front of the server)."""
    with scratch_database("outage") as url:
        proxy = PgProxy(url)
        try:
            yield url, proxy
        finally:
            proxy.close()


class Station:
    """One station: its database (through the proxy), its spool, the uploader, and (with ``live``) a plate,
    the trial controller and the web app."""

    def __init__(self, url, proxy, data_dir, station_id, *, live=False, seed=11):
        self.settings = make_settings(data_dir).model_copy(update={"station_id": station_id})
        self.db = open_database(proxy.url(url), station_id=station_id, allow_unreachable=True)
        self.spool = Spool.open(self.settings.data_dir, station_id=station_id)
        self.spool.recover_interrupted()
        self.uploader = SpoolUploader(self.db, self.spool)
        self.live = self.controller = self.app = None
        if live:
            plate = SimulatedPlate(seed=seed, realtime=False)
            self.live = LiveStation(SimFeed(plate, speed=25.0), ForcePipeline(simulator_calibration(), GEOMETRY))
            self.live.start()
            self.controller = TrialController(self.live, self.db, geometry=GEOMETRY, simulated_patient="healthy",
                                              rng=np.random.default_rng(seed), spool=self.spool)
            self.app = create_app(self.settings, self.live, db=self.db, trials=self.controller, spool=self.spool)

    def close(self):
        if self.controller is not None:
            self.controller.close()
        if self.live is not None:
            self.live.stop()
        self.spool.close()
        self.db.close()


def record_offline(spool, code, n_frames, *, side="left", finish=True, station_id=None):
    """A trial written into the spool as the controller writes it (0.5 s blocks); its writer."""
    clock = [0.0]
    w = spool.start_trial(patient_code=code, protocol="single-leg", stance_side=side, sample_rate_hz=80,
                          geometry=GEOMETRY, time_origin_s=0.0, clock=lambda: clock[0], station_id=station_id)
    for i in range(n_frames):
        clock[0] = i / 80
        w.add((i / 80, [100.0 + i % 7, 101.0, 102.0, 103.0 + i % 3], i % 2))
    if finish:
        w.finish("complete", {"hold_time_s": 30.0, "completed": True})
    return w


def wait_for(predicate, timeout_s=60.0, what="the condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# -- the acceptance test: a test started through the API while the database is unreachable -----------------


def test_a_test_started_offline_by_a_logged_in_therapist_runs_and_is_uploaded_once(server, tmp_path):
    url, proxy = server
    station = Station(url, proxy, tmp_path / "a", "room-a", live=True)
    try:
        with station.db.sessions() as s:
            create_patient(s, "P-001", birth_year=1970)
        add_user(station.db, "therapist", PASSWORD)
        assert station.uploader.check() is not None  # online: ids reserved, patients copied
        assert station.spool.free_ids() > 0
        with TestClient(station.app, base_url="http://localhost") as client:
            r = client.post("/api/v1/login", json={"username": "therapist", "password": PASSWORD})
            assert r.status_code == 200, r.text
            token = r.json()["csrf_token"]

            proxy.cut()  # the clinic network goes down
            assert station.uploader.check() is None and station.spool.online is False
            # the therapist, logged in before, still uses the station's API and page
            assert client.get("/api/v1/me").status_code == 200
            r = client.post("/api/v1/tests", json={"patient": "P-001", "protocol": "single-leg",
                                                   "stance_side": "left"}, headers=csrf(token))
            assert r.status_code == 201, r.text
            trial_id = r.json()["trial_id"]
            snap = wait_for(lambda: (s := client.get("/api/v1/tests/current").json())["running"] is False and s,
                            what="the end of the trial")
            assert snap["trial_id"] == trial_id and snap["outcome"] == "complete" and snap["offline"] is True, snap
            assert snap["stored"] is True and snap["result"]["completed"] is True
            spooled = station.spool.trial(trial_id)
            assert spooled["state"] == "complete" and spooled["n_frames"] > 30 * 80

            # the status API, the station page say it
            status = client.get("/api/v1/status").json()
            assert status["storage"]["message"] == offline_message(1) == "offline: 1 trial waiting to upload"
            assert status["storage"]["online"] is False and status["storage"]["waiting_trials"] == 1
            assert "offline: 1 trial waiting to upload" in status["warnings"]
            page = client.get("/")
            assert page.status_code == 200 and "offline: 1 trial waiting to upload" in page.text

            proxy.restore()  # the database answers again
            report = station.uploader.check()
            assert report is not None and report.trials == [trial_id] and report.error == ""
            status = client.get("/api/v1/status").json()
            assert status["storage"]["online"] is True and status["storage"]["waiting_trials"] == 0
            # the trial, by its id, through the API
            one = client.get(f"/api/v1/trials/{trial_id}").json()
            assert one["state"] == "complete" and one["station_id"] == "room-a"
    finally:
        station.close()
    # in the database: exactly once, complete, every frame, its station and the id the therapist saw
    assert rows(url, "SELECT id, state, station_id, n_frames FROM trials") == [
        (trial_id, "complete", "room-a", spooled["n_frames"])]
    assert rows(url, "SELECT SUM(n_frames), COUNT(*), COUNT(DISTINCT upload_key) FROM frame_blocks") == [
        (spooled["n_frames"], rows(url, "SELECT COUNT(*) FROM frame_blocks")[0][0],
         rows(url, "SELECT COUNT(*) FROM frame_blocks")[0][0])]
    db = open_database(url)
    try:
        with db.sessions() as s:
            trial = get_trial(s, trial_id)
            assert trial.metrics["completed"] is True and trial.session.patient.code == "P-001"
            rec = trial_recording(s, trial_id)
            assert rec.n_samples == spooled["n_frames"] and np.all(np.diff(rec.t_s) > 0)
    finally:
        db.close()
    # the id was reserved for room-a while the database answered
    assert rows(url, f"SELECT station_id FROM trial_id_reservations WHERE trial_id = {trial_id}") == [("room-a",)]


def test_a_new_login_needs_the_database_and_a_logout_offline_ends_the_session_there_later(server, tmp_path):
    url, proxy = server
    station = Station(url, proxy, tmp_path / "a", "room-a", live=True)
    try:
        add_user(station.db, "therapist", PASSWORD)
        add_user(station.db, "other", PASSWORD)
        with TestClient(station.app, base_url="http://localhost") as client, \
                TestClient(station.app, base_url="http://localhost") as late:
            assert late.post("/api/v1/login", json={"username": "other", "password": PASSWORD}).status_code == 200
            token = client.post("/api/v1/login", json={"username": "therapist", "password": PASSWORD}
                                ).json()["csrf_token"]
            assert rows(url, "SELECT COUNT(*) FROM web_sessions") == [(2,)]
            # a session ended in the database (by an administrator, another station) is not kept for an outage
            engine = create_engine(url)
            with engine.begin() as c:
                c.execute(text("DELETE FROM web_sessions WHERE user_id = (SELECT id FROM users "
                               "WHERE username = 'other')"))
            engine.dispose()
            assert late.get("/api/v1/me").status_code == 401
            proxy.cut()
            assert station.uploader.check() is None
            assert client.get("/api/v1/me").json()["username"] == "therapist"
            assert late.get("/api/v1/me").status_code == 401  # no session: not let in
            r = late.post("/api/v1/login", json={"username": "other", "password": PASSWORD})
            assert r.status_code == 503  # a new login needs the database
            # a new patient made offline is kept on the station
            r = client.post("/api/v1/patients", json={"code": "P-901", "birth_year": 1980}, headers=csrf(token))
            assert r.status_code == 201 and r.json()["offline"] is True, r.text
            assert client.post("/api/v1/logout", headers=csrf(token)).status_code in (200, 204)
            assert client.get("/api/v1/me").status_code == 401
            proxy.restore()
            assert station.uploader.check().patients == 1
    finally:
        station.close()
    assert rows(url, "SELECT COUNT(*) FROM web_sessions") == [(0,)]  # the logout reached the database
    assert rows(url, "SELECT code, birth_year FROM patients WHERE upload_key IS NOT NULL") == [("P-901", 1980)]


def test_a_trial_running_when_the_database_goes_away_is_finished_in_the_spool(server, tmp_path):
    """The database stops answering in the middle of a trial started online: the spool takes the rest (the
    frames not stored yet and those to come) and the upload completes the trial, same id, every frame."""
    url, proxy = server
    station = Station(url, proxy, tmp_path / "a", "room-a", live=True)
    try:
        with station.db.sessions() as s:
            create_patient(s, "P-001", birth_year=1970)
        station.uploader.check()
        controller = station.controller
        trial_id = controller.start(patient_code="P-001", protocol="single-leg", stance_side="right")
        wait_for(lambda: controller._writer.frames_written >= 160, what="frames stored online")
        proxy.cut()
        assert controller.wait(60.0)
        snap = controller.snapshot()
        assert snap.outcome == "complete" and snap.stored is True and snap.offline is True, snap
        spooled = station.spool.trial(trial_id)
        assert spooled["adopted"] and spooled["state"] == "complete"
        online_frames = rows(url, f"SELECT n_frames FROM trials WHERE id = {trial_id}")[0][0]
        assert online_frames >= 160
        proxy.restore()
        assert station.uploader.check().trials == [trial_id]
        assert station.uploader.check().trials == []  # once
    finally:
        station.close()
    ((state, n_frames, station_id),) = rows(url, f"SELECT state, n_frames, station_id FROM trials "
                                                 f"WHERE id = {trial_id}")
    assert (state, station_id) == ("complete", "room-a")
    assert n_frames == online_frames + spooled["n_frames"]
    assert rows(url, "SELECT COUNT(*) FROM trials") == [(1,)]
    db = open_database(url)
    try:
        with db.sessions() as s:
            rec = trial_recording(s, trial_id)  # every block there, in order (a gap would be refused)
            assert rec.n_samples == n_frames and np.all(np.diff(rec.t_s) > 0) and rec.t_s[-1] > 30.0
            assert np.max(np.diff(rec.t_s)) < 0.05  # no frame lost at the hand-over (80 Hz)
            assert get_trial(s, trial_id).metrics["completed"] is True
    finally:
        db.close()


def test_the_patient_screen_flow_works_from_the_spool_while_offline(server, tmp_path):
    """The screen's visit (choose or add a patient, their programme and levels) works on the station's copies
    while the database is unreachable, and a patient added there is uploaded with their test."""
    from station.clinic.visit import Visit

    url, proxy = server
    station = Station(url, proxy, tmp_path / "a", "room-a", live=True)
    try:
        with station.db.sessions() as s:
            create_patient(s, "P-001", birth_year=1970)
        station.uploader.check()
        visit = Visit(station.controller, station.db)
        proxy.cut()
        assert station.uploader.check() is None
        assert [p.code for p in visit.recent_patients()] == ["P-001"]
        assert visit.choose("p-001").code == "P-001"
        assert visit.create("P-902", birth_year=1985).code == "P-902"
        assert [p.code for p in visit.recent_patients()] == ["P-001", "P-902"]
        assert visit.programme() is None and visit.last_level("reach") is None
        trial_id = station.controller.start(patient_code="P-902", protocol="quiet-stance",
                                            params={"duration_s": 5})
        assert station.controller.wait(60.0)
        assert station.controller.snapshot().outcome == "complete"
        proxy.restore()
        report = station.uploader.check()
        assert report.patients == 1 and report.trials == [trial_id]
    finally:
        station.close()
    assert rows(url, "SELECT t.id, p.code, p.birth_year FROM trials t JOIN sessions s ON s.id = t.session_id "
                     "JOIN patients p ON p.id = s.patient_id") == [(trial_id, "P-902", 1985)]


# -- a restart in between ---------------------------------------------------------------------------------


def test_a_restart_while_offline_loses_nothing_and_keeps_the_order(server, tmp_path):
    url, proxy = server
    data = tmp_path / "a"
    station = Station(url, proxy, data, "room-a")
    with station.db.sessions() as s:
        create_patient(s, "P-001")
    station.uploader.check()
    proxy.cut()
    assert station.uploader.check() is None
    first = record_offline(station.spool, "P-001", 400)
    station.spool.add_patient("P-002", birth_year=1990)
    second = record_offline(station.spool, "P-002", 300, side="right")
    third = record_offline(station.spool, "P-001", 123, finish=False)  # the station stops during this one
    assert station.spool.waiting() == 3
    station.close()  # the station stops (power cut: what was committed is on disk)

    station = Station(url, proxy, data, "room-a")  # ...and starts again, still offline
    try:
        assert station.db.schema_pending
        assert station.spool.waiting() == 3
        assert station.spool.trial(third.trial_id)["state"] == "incomplete"
        assert station.uploader.check() is None and station.spool.status()["message"] == offline_message(3)
        proxy.restore()
        report = station.uploader.check()
        assert report.trials == [first.trial_id, second.trial_id, third.trial_id]  # in the order they were made
        assert report.patients == 1 and report.error == ""
    finally:
        station.close()
    assert first.trial_id < second.trial_id < third.trial_id
    assert rows(url, "SELECT t.id, t.state, t.n_frames, p.code FROM trials t JOIN sessions s ON s.id = t.session_id "
                     "JOIN patients p ON p.id = s.patient_id ORDER BY t.id") == [
        (first.trial_id, "complete", 400, "P-001"), (second.trial_id, "complete", 300, "P-002"),
        (third.trial_id, "incomplete", third.frames_written, "P-001")]
    assert third.frames_written >= 80  # what was committed before the stop is kept
    assert rows(url, "SELECT trial_id, SUM(n_frames) FROM frame_blocks GROUP BY trial_id ORDER BY trial_id") == [
        (first.trial_id, 400), (second.trial_id, 300), (third.trial_id, third.frames_written)]


# -- idempotency ------------------------------------------------------------------------------------------


def test_uploading_twice_is_uploading_once(server, tmp_path):
    url, proxy = server
    station = Station(url, proxy, tmp_path / "a", "room-a")
    try:
        with station.db.sessions() as s:
            create_patient(s, "P-001")
        station.uploader.check()
        proxy.cut()
        w = record_offline(station.spool, "P-001", 500)
        proxy.restore()
        snapshot = {"trials": "SELECT id, state, n_frames, upload_key FROM trials",
                    "blocks": "SELECT trial_id, block_index, n_frames, upload_key FROM frame_blocks "
                              "ORDER BY block_index",
                    "visits": "SELECT id FROM sessions"}
        first = station.spool.upload(station.db)
        assert first.trials == [w.trial_id] and first.blocks == 13  # 500 frames at 80 Hz, a block per 0.5 s
        after_one = {k: rows(url, q) for k, q in snapshot.items()}
        # the upload committed, but the station died before the spool noted it: the spool still has it all
        spooled_blocks = rows(url, "SELECT trial_id, block_index, first_t_s, last_t_s, n_frames, encoding, payload, "
                                   "written_at, upload_key FROM frame_blocks ORDER BY block_index")
        from sqlalchemy import insert, update

        from station.storage.spool import _BLOCKS, _TRIALS

        with station.spool.engine.begin() as c:
            c.execute(update(_TRIALS).values(uploaded_at=None))
            c.execute(insert(_BLOCKS), [dict(zip(("trial_id", "block_index", "first_t_s", "last_t_s", "n_frames",
                                                  "encoding", "payload", "written_at", "upload_key"), r))
                                        for r in spooled_blocks])
        assert station.spool.waiting() == 1
        second = station.spool.upload(station.db)
        assert second.trials == [w.trial_id] and second.blocks == 0 and second.error == ""
        assert {k: rows(url, q) for k, q in snapshot.items()} == after_one
        third = station.spool.upload(station.db)  # nothing left
        assert third.trials == [] and station.spool.waiting() == 0
    finally:
        station.close()
    assert rows(url, "SELECT COUNT(*) FROM trials") == [(1,)]


def test_a_trial_id_reserved_by_one_station_is_never_given_to_another(server, tmp_path):
    url, proxy = server
    a = Station(url, proxy, tmp_path / "a", "room-a")
    b = Station(url, proxy, tmp_path / "b", "room-b")
    try:
        with a.db.sessions() as s:
            create_patient(s, "P-001")
        a.uploader.check()
        b.uploader.check()
        from station.storage.trials import TrialWriter
        from station.storage.visits import open_visit

        with b.db.sessions() as s:
            visit = open_visit(s, "P-001")
        online = TrialWriter.start(b.db.sessions, session_id=visit.id, protocol="free", sample_rate_hz=80,
                                   geometry=GEOMETRY)
        online.add_many((i / 80, [1.0, 2.0, 3.0, 4.0]) for i in range(5))
        online.finish()
        reserved = {r[0] for r in rows(url, "SELECT trial_id FROM trial_id_reservations")}
        assert online.trial_id not in reserved and len(reserved) == 2 * a.spool.free_ids()
        proxy.cut()
        wa = record_offline(a.spool, "P-001", 100)
        wb = record_offline(b.spool, "P-001", 100)
        proxy.restore()
        assert a.uploader.check().trials == [wa.trial_id]
        assert b.uploader.check().trials == [wb.trial_id]
    finally:
        a.close()
        b.close()
    assert rows(url, "SELECT id, station_id FROM trials ORDER BY id") == sorted(
        [(online.trial_id, "room-b"), (wa.trial_id, "room-a"), (wb.trial_id, "room-b")])


# -- the same new patient code in two rooms -------------------------------------------------------------------


def test_the_same_new_patient_code_in_two_rooms_is_kept_apart_and_said(server, tmp_path):
    url, proxy = server
    a = Station(url, proxy, tmp_path / "a", "room-a")
    b = Station(url, proxy, tmp_path / "b", "room-b", live=True)
    try:
        add_user(b.db, "therapist", PASSWORD)
        a.uploader.check()
        b.uploader.check()
        proxy.cut()
        a.spool.add_patient("P-100", birth_year=1950)
        b.spool.add_patient("p-100", birth_year=1990)  # another person, the same code (any case)
        wa = record_offline(a.spool, "P-100", 100)
        wb = record_offline(b.spool, "p-100", 100)
        proxy.restore()
        ra = a.uploader.check()  # room-a reaches the database first: it keeps the code
        rb = b.uploader.check()
        assert ra.conflicts == [] and len(rb.conflicts) == 1
        assert "patient code p-100 was also made elsewhere" in rb.conflicts[0]
        assert "stored as p-100-room-b" in rb.conflicts[0]
        # shown to the therapist: the station's status (API and page)
        notices = b.spool.status()["notices"]
        assert notices and "p-100-room-b" in notices[0]["message"]
        with TestClient(b.app, base_url="http://localhost") as client:
            client.post("/api/v1/login", json={"username": "therapist", "password": PASSWORD})
            assert "p-100-room-b" in client.get("/api/v1/status").json()["storage"]["notices"][0]["message"]
            assert "p-100-room-b" in client.get("/").text
    finally:
        a.close()
        b.close()
    assert rows(url, "SELECT t.id, p.code, p.birth_year FROM trials t JOIN sessions s ON s.id = t.session_id "
                     "JOIN patients p ON p.id = s.patient_id ORDER BY t.id") == sorted(
        [(wa.trial_id, "P-100", 1950), (wb.trial_id, "p-100-room-b", 1990)])
    assert rows(url, "SELECT action FROM audit_log WHERE action = 'upload_conflict'") == [("upload_conflict",)]
