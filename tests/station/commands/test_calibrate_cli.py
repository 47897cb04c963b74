"""`balance-station calibrate` run as a real program (DESIGN.md section 5): the acceptance run and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from calibration.model import Calibration

_SCRIPT = Path(sys.executable).with_name("balance-station")
#: The installed console script when there is one, else the module (the same main()).
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "station.commands.cli"]


def run(*args: str | Path, seed: int = 20261121) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, BALANCE_STATION_SIMULATOR__SEED=str(seed))
    return subprocess.run([*COMMAND, "calibrate", *map(str, args)], capture_output=True, text=True, timeout=120,
                          check=False, env=env, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("seed", [20261121, 7])
def test_acceptance_unattended_run_writes_the_calibration_and_a_passing_report(tmp_path, seed):
    report = tmp_path / "r.json"
    done = run("--plate", "simulated", "--yes", "--report", report, "--data-dir", tmp_path, seed=seed)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    doc = json.loads(report.read_text())
    assert doc["passed"] is True
    assert doc["max_cop_error_mm"] <= 1.0
    assert 0 <= doc["rms_cop_error_mm"] <= doc["max_cop_error_mm"]
    assert 0 <= doc["max_force_error_pct"] <= 0.5
    calibration = Calibration.load(tmp_path / "calibration.json")
    assert calibration.verification["passed"] is True
    assert f"calibration saved: {tmp_path / 'calibration.json'}" in done.stdout
    # the simulated plate's cells are not the built-in calibration's: the run says so
    assert "its cells' gains differ from the built-in calibration" in done.stderr


def test_output_option_and_points(tmp_path):
    out = tmp_path / "my-calibration.json"
    done = run("--plate", "simulated", "--yes", "--points", "5", "--masses", "20,60", "--output", out,
               "--data-dir", tmp_path / "data")
    assert done.returncode == 0, done.stderr
    assert Calibration.load(out).extra["procedure"]["masses_kg"] == [20.0, 60.0]
    assert not (tmp_path / "data" / "calibration.json").exists()


BAD_INPUT = {
    "wrong-point": "the mass is at x = ",
    "not-placed": "nothing on the plate: it reads 0 kg, the 20 kg mass was expected on P1",
    "moving": "the load did not come to rest within 10 s",
    "dead-cell": "cell br does not respond to the load",
    "saturated": "cell fr saturates (reads the HX711's full-scale code)",
    "wrong-mass": "the 20 kg mass was expected",
}


@pytest.mark.parametrize("fault", list(BAD_INPUT))
def test_each_bad_input_is_named_repeated_and_nothing_is_written(fault, tmp_path):
    report = tmp_path / "r.json"
    done = run("--plate", "simulated", "--yes", "--sim-fault", fault, "--report", report, "--data-dir", tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    # each try gets the message, then the step is asked again
    problems = [line for line in done.stdout.splitlines() if "PROBLEM: " in line]
    assert len(problems) == 3 and all(BAD_INPUT[fault] in line for line in problems)
    assert done.stdout.count("try again (") == 2
    # one line on stderr names the problem; no calibration file
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("balance-station: calibration stopped: ") and BAD_INPUT[fault] in last
    assert last.endswith("nothing was saved")
    assert not (tmp_path / "calibration.json").exists()
    assert not list(tmp_path.glob("calibration.json*"))
    assert json.loads(report.read_text())["passed"] is False


@pytest.mark.parametrize("argv, message", [
    (["--masses", "0,20"], "balance-station: mass 0 kg: a calibration mass must be more than 0 kg"),
    (["--masses", "-20,40"], "balance-station: mass -20 kg: a calibration mass must be more than 0 kg"),
    (["--masses=-10,40", "--unit", "lb"], "balance-station: mass -10 lb: a calibration mass must be more than 0 lb"),
    (["--masses", "20,x"], "balance-station: mass 'x' is not a number"),
    (["--points", "4"], "balance-station calibrate: argument --points: invalid choice: 4"),
])
def test_bad_masses_are_refused_before_anything_runs(argv, message, tmp_path):
    done = run("--plate", "simulated", "--yes", *argv, "--data-dir", tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(message) and len(done.stderr.strip().splitlines()) == 1
    assert done.stdout == ""
    assert not (tmp_path / "calibration.json").exists()
