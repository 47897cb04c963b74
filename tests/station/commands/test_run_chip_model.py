"""`balance-station --plate chip-model` as a process: the real HX711 backend clocks four chip models in the
acquisition process; the status, a single-leg test through the API, and chip faults as the Pi would show them."""

from __future__ import annotations

import signal
import time

import pytest

from tests.station.commands.test_run_process import children_of, start_station, wait_for_frames
from tests.station.station_client import StationClient

pytestmark = pytest.mark.slow


def stop(proc) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except Exception:  # noqa: BLE001 - never leave it running
            proc.kill()
            proc.wait()
    return proc.stderr.read()


def status_after(client: StationClient, seconds: float) -> dict:
    time.sleep(seconds)
    return client.get("/api/v1/status")


def test_status_at_80_frames_per_second_and_a_single_leg_test_runs_through(tmp_path):
    proc, base = start_station(tmp_path, "--plate", "chip-model", "--no-screen")
    try:
        wait_for_frames(proc, base)
        client = StationClient(base).login()
        assert children_of(proc.pid), "the acquisition runs in its own process"
        status = status_after(client, 5.5)  # the rate is over the last 400 frames: all of them from now on
        print(f"\nstatus a few seconds in: {status['sample_rate_hz']} frames/s, {status['frames']} frames, "
              f"dropped {status['dropped_frames']}, discarded reads {status['discarded_reads']}")
        assert status["plate_source"] == "chip-model" and status["synthetic"] is True
        assert "4 bit-level HX711 models" in status["plate_description"]
        assert status["sample_rate_hz"] >= 79.5
        assert status["faults"] == 0 and status["last_fault"] == "" and status["discarded_reads"] == 0
        assert status["warnings"] == []
        assert status["occupied"] and status["body_weight_kg"] == pytest.approx(70, abs=3)
        assert status["calibration_source"] == "builtin:simulator"

        client.post("/api/v1/patients", {"code": "CHIP-1"})
        trial_id = client.post("/api/v1/tests", {"patient": "CHIP-1", "protocol": "single-leg",
                                                 "stance_side": "right"})["trial_id"]
        deadline = time.monotonic() + 90
        states = set()
        while True:
            current = client.get("/api/v1/tests/current")
            states.add(current["state"])
            trial = client.get(f"/api/v1/trials/{trial_id}")
            if trial["state"] != "running":
                break
            assert time.monotonic() < deadline, current
            time.sleep(0.5)
        status = client.get("/api/v1/status")
    finally:
        err = stop(proc)
    print(f"trial {trial_id}: {trial['state']}, states seen {sorted(states)}; "
          f"status at its end: {status['sample_rate_hz']} frames/s, faults {status['faults']}")
    assert trial["state"] == "complete", trial
    assert "hold" in states
    metrics = trial["metrics"]
    assert metrics["completed"] is True and metrics["hold_time_s"] == pytest.approx(30.0, abs=0.1)
    assert metrics["stance_side"] == "right"
    assert status["faults"] == 0 and status["sample_rate_hz"] >= 79.5
    assert "plate: HX711 chip model: HX711 plate, 4 boards on a shared clock (lgpio" in err
    assert "(as asked with --plate chip-model)" in err
    assert "simulated patient: healthy" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("fault", "expected"), [
    ("fr:stuck_low", "HX711 DOUT stays low after the read on cell fr (DOUT GPIO 27)"),
    ("bl:unplugged", "HX711 not ready within 0.50 s: cell bl (DOUT GPIO 22)"),
])
def test_a_chip_fault_shows_on_the_status_as_on_the_pi(tmp_path, fault, expected):
    env = {"BALANCE_STATION_SIMULATOR__CHIP_FAULT": fault, "BALANCE_STATION_SIMULATOR__CHIP_FAULT_AFTER_S": "4"}
    proc, base = start_station(tmp_path, "--plate", "chip-model", "--no-screen", env_extra=env)
    try:
        wait_for_frames(proc, base)
        client = StationClient(base).login()
        deadline = time.monotonic() + 30
        while (status := client.get("/api/v1/status"))["faults"] < 2:
            assert time.monotonic() < deadline, status
            time.sleep(0.3)
        page = client._opener.open(base + "/", timeout=5).read().decode()
    finally:
        err = stop(proc)
    print(f"\n{fault}: faults {status['faults']}, last fault: {status['last_fault']}")
    assert status["last_fault"].startswith(expected)
    assert status["acquiring"] is True  # the acquisition goes on retrying, as with a real board
    assert expected in page
    assert f"fault {fault} from 4 s" in status["plate_description"]
    assert expected in err  # the station's log, as on the Pi's journal


def test_long_clock_pulses_show_as_discarded_reads_and_a_lower_rate(tmp_path):
    env = {"BALANCE_STATION_SIMULATOR__CHIP_FAULT": "fl:power_down",
           "BALANCE_STATION_SIMULATOR__CHIP_FAULT_AFTER_S": "0"}
    proc, base = start_station(tmp_path, "--plate", "chip-model", "--no-screen", env_extra=env)
    try:
        wait_for_frames(proc, base)
        client = StationClient(base).login()
        before = client.get("/api/v1/status")
        after = status_after(client, 6.0)
    finally:
        stop(proc)
    print(f"\npower_down: {after['sample_rate_hz']} frames/s, discarded reads {before['discarded_reads']} -> "
          f"{after['discarded_reads']}, dropped frames {after['dropped_frames']}")
    assert after["discarded_reads"] - before["discarded_reads"] >= 8  # one every 0.5 s
    assert after["dropped_frames"] >= after["discarded_reads"]  # each costs the frames of a reset
    assert after["sample_rate_hz"] < 79.0
    assert after["faults"] == 0  # discarded, never delivered: no fault


def test_the_hx711_tables_backend_is_the_one_that_runs(tmp_path):
    config = tmp_path / "station.toml"
    config.write_text('[hx711]\nbackend = "rpigpio"\nsck_gpios = [5, 6, 19, 26]\n', encoding="utf-8")
    proc, base = start_station(tmp_path, "--plate", "chip-model", "--config", str(config), "--no-screen")
    try:
        wait_for_frames(proc, base)
        status = status_after(StationClient(base).login(), 5.5)
    finally:
        err = stop(proc)
    print(f"\nrpigpio: {status['sample_rate_hz']} frames/s, dropped {status['dropped_frames']}")
    assert "4 boards with a clock each (hx711 package on RPi.GPIO)" in status["plate_description"]
    assert status["sample_rate_hz"] >= 79.5 and status["faults"] == 0 and status["discarded_reads"] == 0
    assert "hx711 package on RPi.GPIO" in err
