"""`balance-station serve`: the office computer's pages on the clinic database, starting a test on a station.

A real station runs as a process on the simulated plate (as in test_run_process.py) and `serve` as another,
on one database: a SQLite file, or a scratch database on the test PostgreSQL server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from station.storage.stations import station_activity
from tests.postgres.server import BACKENDS, backend_url
from tests.station.commands.test_run_process import free_port, start_station, wait_for_frames
from tests.station.station_client import StationClient


class Browser(StationClient):
    """The serve's pages as a browser gets them (HTML), and its forms posted the way a page's script does."""

    def page(self, path: str) -> str:
        with self._opener.open(self.base + path, timeout=5) as r:
            return r.read().decode()

    def form(self, path: str, fields: dict[str, str]) -> tuple[int, dict]:
        data = urllib.parse.urlencode({**fields, "csrf_token": self.csrf}).encode()
        request = urllib.request.Request(self.base + path, data=data, method="POST",
                                         headers={"Accept": "application/json"})
        try:
            with self._opener.open(request, timeout=10) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as exc:
            return exc.code, json.load(exc)


def start_serve(tmp_path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "station.commands.cli", "serve", "--data-dir", str(tmp_path / "office"),
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **env})
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"serve exited early: {proc.stderr.read()}")
        try:
            with urllib.request.urlopen(base + "/api/v1/health", timeout=1) as r:
                if r.status == 200:
                    return proc, base
        except OSError:
            time.sleep(0.2)
    pytest.fail("serve did not answer in time")


def stop(proc: subprocess.Popen) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
    return code, proc.stderr.read()


@pytest.mark.parametrize("backend", BACKENDS)
def test_serve_lists_the_stations_and_starts_a_test_on_one_through_its_api(tmp_path, monkeypatch, backend):
    from station.storage.db import open_database
    from webui.remote import call_station

    with backend_url(backend, tmp_path / "clinic") as url:
        monkeypatch.setenv("BALANCE_STATION_DATABASE_URL", url)  # the station, its user command and serve
        station, station_base = start_station(tmp_path, "--plate", "simulated", "--no-screen",
                                              env_extra={"BALANCE_STATION_STATION_ID": "room-a"})
        office = None
        try:
            wait_for_frames(station, station_base)
            office, base = start_serve(tmp_path, {})
            browser = Browser(base).login()  # the account made for the station: one clinic database

            # the pages answer; the station page and the live page list the station, its contact and address
            home = browser.page("/")
            assert 'id="office"' in home and '<tr data-station="room-a">' in home
            assert station_base in home  # its web address, noted with its contact
            assert "No patients yet" in browser.page("/live")
            browser.post("/api/v1/patients", {"code": "P-001"})
            live = browser.page("/live")
            assert '<option value="room-a"' in live and f'href="{station_base}/live"' in live
            for path in ("/patients", "/api/v1/trials"):
                assert browser._opener.open(base + path, timeout=5).status == 200
            with open_database(url) as db, db.sessions() as s:
                (room_a,) = [st for st in station_activity(s) if st["station_id"] == "room-a"]
            assert room_a["web_url"] == station_base and room_a["software_version"]
            assert room_a["last_contact_at"] is not None

            # a test started on the office page runs on the station's plate
            status, body = browser.form("/live/start", {"station": "room-a", "patient": "P-001",
                                                        "protocol": "single-leg", "stance_side": "left"})
            assert status == 201, body
            trial_id = body["trial_id"]
            on_station = StationClient(station_base).login().get("/api/v1/tests/current")
            assert on_station["trial_id"] == trial_id and on_station["patient"] == "P-001"
            assert browser.get("/live/stations/room-a/current")["trial_id"] == trial_id  # through the office
            followed = browser.page(f"/live?station=room-a&patient=P-001&started={trial_id}")  # where a form lands
            assert f'data-station="room-a" data-trial="{trial_id}"' in followed and "/static/office.js" in followed
            assert browser.get(f"/api/v1/trials/{trial_id}")["state"] == "running"  # the one database

            # the station's own answers come back: a test is already running there
            status, body = browser.form("/live/start", {"station": "room-a", "patient": "P-001",
                                                        "protocol": "single-leg", "stance_side": "right"})
            assert status == 409 and body["detail"]
            # the station checks the login itself: a session it does not know is refused there
            refused = call_station(station_base, "POST", "/api/v1/tests", session_token="not-a-session",
                                   csrf_token="x", body={"patient": "P-001", "protocol": "quiet-stance"})
            assert refused.status == 401
            status, body = browser.form("/live/start", {"station": "room-z", "patient": "P-001"})
            assert status == 404 and "room-z" in body["detail"]

            status, body = browser.form("/live/abort", {"station": "room-a"})
            assert status == 200 and body == {"aborted": True}
            deadline = time.monotonic() + 10
            while browser.get(f"/api/v1/trials/{trial_id}")["state"] == "running" and time.monotonic() < deadline:
                time.sleep(0.2)
            assert browser.get(f"/api/v1/trials/{trial_id}")["state"] == "aborted"
        finally:
            station_code, station_err = stop(station)
            office_code, office_err = (0, "") if office is None else stop(office)
        print(office_err)
        assert station_code == 0 and "Traceback" not in station_err
        assert "station id: room-a" in station_err
        assert office_code == 0 and "Traceback" not in office_err
        assert "serve: the clinic database" in office_err
        with open_database(url) as db, db.sessions() as s:
            ids = [st["station_id"] for st in station_activity(s)]
        assert ids == ["room-a"]  # the office is not a station


def test_serve_on_a_busy_port_says_so_in_one_line(tmp_path):
    import socket

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "station.commands.cli", "serve", "--data-dir", str(tmp_path),
                               "--port", str(port)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"cannot serve the web page on 127.0.0.1:{port}: address already in use" in done.stderr
    assert "Traceback" not in done.stderr
