"""`balance-station analyze FILE --protocol single-leg` run as a real program, on simulated trials.

The recordings are written with :class:`station.core.recording.RecordingWriter`
from the simulated plate's force frames (as the station records them), so the
command reads what a live trial leaves on disk.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from calibration.model import simulator_calibration
from hardware.sim.plate import SimulatedPlate
from station.core.recording import RecordingWriter
from station.protocols.single_leg import SingleLegRunner
from station.protocols.trial import TrialCapture
from station.scoring.analyze import score_capture
from station.signal.forces import ForcePipeline
from tests.station.commands.test_analyze import COMMAND, assert_one_line_error
from tests.station.single_leg_trials import GEOMETRY

SCENARIO = [
    {"t_s": 5.0, "behaviour": "single_leg", "stance_side": "right", "transition_s": 0.3},
    {"t_s": 12.0, "behaviour": "touchdown", "where": "floor", "duration_s": 0.5, "share_pct": 35},
    {"t_s": 16.0, "behaviour": "hand_support", "pct_bw": 6.0, "duration_s": 3.0},
    {"t_s": 24.0, "behaviour": "touchdown", "where": "plate", "duration_s": 0.4, "share_pct": 45},
]


def run(*args) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, "analyze", *map(str, args)], capture_output=True, text=True, timeout=120,
                          check=False)


def write_simulated(path, *, rate_hz: float = 80.0, metadata=None, scenario=SCENARIO, jitter_s: float = 0.0):
    """Every frame of a simulated trial through the force pipeline, written as the station records them."""
    plate = SimulatedPlate(realtime=False, seed=42, rate_hz=rate_hz, start="quiet", duration_s=40.0,
                           scenario=scenario, jitter_s=0.001)
    pipeline = ForcePipeline(simulator_calibration(), GEOMETRY)
    rng = np.random.default_rng(1)
    with RecordingWriter(path, sample_rate_hz=rate_hz, geometry=GEOMETRY, metadata=metadata or {},
                         extra_columns=("flags",)) as writer:
        t0 = None
        for raw in plate:
            frame = pipeline.process(raw)
            t0 = frame.t_s if t0 is None else t0
            t = frame.t_s - t0 + (rng.uniform(-jitter_s, jitter_s) if jitter_s and frame.t_s > t0 else 0.0)
            writer.write_frame(t, frame.forces_n, flags=int(frame.flags))
    return plate


def test_single_leg_json(tmp_path):
    path = tmp_path / "right.csv"
    plate = write_simulated(path, metadata={"protocol": "single-leg", "stance_side": "right", "age_years": 64})
    proc = run(path, "--protocol", "single-leg", "--stance-side", "right", "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and proc.stdout.count("\n") == 1 and "NaN" not in proc.stdout
    out = json.loads(proc.stdout)
    assert list(out)[:2] == ["protocol", "stance_side"]
    assert out["protocol"] == "single-leg" and out["stance_side"] == "right"
    lifted = [e.t_s for e in plate.person.events if e.name == "foot_lifted"][0]
    assert out["onset_s"] == pytest.approx(lifted, abs=0.25)
    assert out["hold_time_s"] == pytest.approx(12.0 - lifted, abs=0.3)
    assert out["completed"] is False
    assert [t["where"] for t in out["touchdowns"]] == ["floor", "plate"]
    assert out["touchdowns"][0]["t_s"] == pytest.approx(12.0, abs=0.15)
    assert out["touchdowns"][0]["duration_s"] == pytest.approx(0.5, abs=0.1)
    assert out["support"]["time_s"] == pytest.approx(3.3, abs=0.5)
    assert out["support"]["mean_pct_bw"] == pytest.approx(5.5, abs=1.0)
    assert out["support"]["peak_pct_bw"] >= out["support"]["mean_pct_bw"]
    assert set(out["cop"]) == {"path_length_mm", "mean_velocity_mm_s", "ml_range_mm", "ap_range_mm", "ml_rms_mm",
                               "ap_rms_mm", "ellipse95_area_mm2"}
    assert all(isinstance(v, float) for v in out["cop"].values())
    assert 0.0 < out["ml_offset_mm"] < 6.0  # the simulator's normal person: about 2 mm lateral
    assert out["body_weight_n"] == pytest.approx(70 * 9.80665, rel=0.01)
    assert out["lowpass_hz"] == 10.0 and out["n_samples"] == pytest.approx(40 * 80, abs=5)
    assert out["norm"]["age_group"] == "60-69" and "Springer" in out["norm"]["source"]


def test_side_from_the_recording_and_lowpass_off(tmp_path):
    path = tmp_path / "meta.csv"
    write_simulated(path, rate_hz=100.0, metadata={"stance_side": "right"}, jitter_s=0.003)
    proc = run(path, "--protocol", "single-leg", "--lowpass-hz", "off", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["stance_side"] == "right" and out["lowpass_hz"] is None and out["sample_rate_hz"] == 100.0
    assert [t["where"] for t in out["touchdowns"]] == ["floor", "plate"]


def test_the_file_gives_what_the_live_test_gave(tmp_path):
    path = tmp_path / "live.csv"
    plate = SimulatedPlate(realtime=False, seed=42, rate_hz=80.0, start="quiet", duration_s=40.0, scenario=SCENARIO)
    pipeline = ForcePipeline(simulator_calibration(), GEOMETRY)
    capture = TrialCapture(SingleLegRunner(stance_side="right", geometry=GEOMETRY), geometry=GEOMETRY,
                           sample_rate_hz=80.0, target=path)
    for raw in plate:
        capture.push(pipeline.process(raw))
        if capture.finished:
            break
    live = score_capture(capture)
    proc = run(path, "--protocol", "single-leg", "--stance-side", "right", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == live


def test_wrong_side_is_one_line(tmp_path):
    path = tmp_path / "wrong.csv"
    write_simulated(path)
    assert_one_line_error(run(path, "--protocol", "single-leg", "--stance-side", "left", "--json"),
                          str(path), "the patient stood on the right leg", "not on the left leg as asked")


def test_missing_side_is_one_line(tmp_path):
    path = tmp_path / "noside.csv"
    write_simulated(path)
    assert_one_line_error(run(path, "--protocol", "single-leg", "--json"),
                          str(path), "give --stance-side left or right")
