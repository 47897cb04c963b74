"""`balance-station` as a process on a clinic PostgreSQL database: restarted while the database does not
answer, it starts all the same, the therapist logged in before the restart runs a test through the API,
and the trial is uploaded, once, with its id, when the database answers again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error

import pytest

from station.storage.accounts import create_user
from station.storage.db import open_database
from station.storage.patients import create_patient
from tests.postgres.proxy import PgProxy
from tests.postgres.server import rows, scratch_database
from tests.station.commands.test_run_process import free_port
from tests.station.station_client import PASSWORD, USERNAME, StationClient


def start(data_dir, port, database_url):
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy",
           "BALANCE_STATION_DATABASE_URL": database_url, "BALANCE_STATION_STATION_ID": "room-a"}
    return subprocess.Popen([sys.executable, "-m", "station.commands.cli", "--data-dir", str(data_dir),
                             "--port", str(port), "--plate", "simulated", "--no-screen"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return out, err


def until(proc, predicate, what, timeout_s=60.0):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the station exited early: {proc.stderr.read()}")
        try:
            value = predicate()
            if value:
                return value
        except (OSError, urllib.error.URLError, KeyError) as exc:
            last = exc
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what} ({last})")


def test_a_station_restarted_during_an_outage_keeps_testing_and_uploads_afterwards(tmp_path):
    with scratch_database("outage_proc") as url:
        proxy = PgProxy(url)
        data = tmp_path / "data"
        port = free_port()
        try:
            db = open_database(url)
            with db.sessions() as s:
                create_user(s, USERNAME, PASSWORD)
                create_patient(s, "P-001", birth_year=1960)
            db.close()

            proc = start(data, port, proxy.url(url))  # online: the login, the reserved ids, the patient list
            try:
                client = until(proc, lambda: StationClient(f"http://127.0.0.1:{port}").login(), "the login")
                until(proc, lambda: client.get("/api/v1/status")["storage"]["free_trial_ids"] > 0,
                      "the reserved trial ids")
            finally:
                stop(proc)

            proxy.cut()  # the clinic network goes down, and the station restarts meanwhile
            proc = start(data, port, proxy.url(url))
            try:
                status = until(proc, lambda: (s := client.get("/api/v1/status"))["storage"]["online"] is False and s,
                               "the offline status")  # the login made before the restart still works
                assert status["storage"]["message"] == "offline: 0 trials waiting to upload"
                started = client.post("/api/v1/tests", {"patient": "P-001", "protocol": "quiet-stance",
                                                        "params": {"duration_s": 5}})
                trial_id = started["trial_id"]
                snap = until(proc, lambda: (s := client.get("/api/v1/tests/current"))["running"] is False and s,
                             "the end of the test", timeout_s=90)
                assert snap["trial_id"] == trial_id and snap["outcome"] == "complete" and snap["offline"], snap
                assert client.get("/api/v1/status")["storage"]["message"] == "offline: 1 trial waiting to upload"

                proxy.restore()
                until(proc, lambda: client.get("/api/v1/status")["storage"]["waiting_trials"] == 0, "the upload")
                trial = client.get(f"/api/v1/trials/{trial_id}")
                assert trial["state"] == "complete" and trial["station_id"] == "room-a"
            finally:
                out, err = stop(proc)
            assert "does not answer" in out + err
        finally:
            proxy.close()
        ((n_trials, state, n_frames, blocks),) = rows(
            url, "SELECT COUNT(*), MIN(t.state), MIN(t.n_frames), (SELECT SUM(n_frames) FROM frame_blocks) "
                 f"FROM trials t WHERE t.id = {trial_id}")
        assert (n_trials, state) == (1, "complete") and n_frames == blocks and n_frames > 5 * 80
        assert rows(url, "SELECT COUNT(*) FROM trials") == [(1,)]
