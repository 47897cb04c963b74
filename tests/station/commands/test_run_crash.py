"""Kill -9 of the whole station in the middle of a test: after a restart the trial is there, incomplete,
with its frames up to the last second."""

from __future__ import annotations

import os
import signal
import time

import numpy as np

from station.storage import open_database
from station.storage.trials import get_trial, trial_recording
from tests.station.commands.test_run_process import alive, children_of, start_station, wait_for_frames
from tests.station.station_client import StationClient


def test_kill_9_mid_trial_keeps_the_trial_incomplete_with_its_frames(tmp_path):
    data = tmp_path / "data"
    proc, base = start_station(tmp_path, "--plate", "simulated", "--no-screen")
    try:
        wait_for_frames(proc, base)
        client = StationClient(base).login()
        client.post("/api/v1/patients", {"code": "CRASH-1"})
        trial_id = client.post("/api/v1/tests", {"patient": "CRASH-1", "protocol": "single-leg",
                                                 "stance_side": "left"})["trial_id"]
        deadline = time.monotonic() + 40
        while True:  # into the hold, and a few seconds of it
            current = client.get("/api/v1/tests/current")
            if current["state"] == "hold" and current["elapsed_s"] > 9.0:
                break
            assert time.monotonic() < deadline, current
            time.sleep(0.2)
        kids = children_of(proc.pid)
        # the newest frame the test had taken, on the trial's clock (the recording's t_s)
        elapsed_at_kill_s = client.get("/api/v1/tests/current")["status"]["t_s"]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 10  # the acquisition process dies with its parent
    while [k for k in kids if alive(k)] and time.monotonic() < deadline:
        time.sleep(0.05)
    left = {k: open(f"/proc/{k}/cmdline", "rb").read().replace(b"\0", b" ")[:150] for k in kids if alive(k)}
    assert not left, f"processes left behind: {left}"

    with open_database(data_dir=data) as db, db.sessions() as session:  # as the crash left it
        assert get_trial(session, trial_id).state.value == "running"

    proc, base = start_station(tmp_path, "--plate", "simulated", "--no-screen")
    try:
        wait_for_frames(proc, base)
        trial = StationClient(base).login().get(f"/api/v1/trials/{trial_id}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    err = proc.stderr.read()
    assert f"kept as incomplete: [{trial_id}]" in err
    assert trial["state"] == "incomplete"

    with open_database(data_dir=data) as db, db.sessions() as session:
        rec = trial_recording(session, trial_id)
    stored_s = float(rec.t_s[-1])
    lost_s = elapsed_at_kill_s - stored_s
    print(f"\nkilled {elapsed_at_kill_s:.2f} s into the trial; frames stored up to {stored_s:.2f} s "
          f"({rec.n_samples} frames): {lost_s:.2f} s lost")
    assert lost_s < 1.0
    steps = np.diff(rec.t_s)
    assert steps.min() > 0 and steps.max() < 0.1, "no gap in the stored frames"
    assert rec.metadata["protocol"] == "single-leg" and rec.metadata["patient"] == "CRASH-1"
