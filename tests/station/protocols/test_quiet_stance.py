"""The quiet two-foot stance test runner: conditions, the 30 s window, refusals, scoring."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.model import simulator_calibration
from hardware.sim.plate import SimulatedPlate
from station.protocols.events import Aborted, Finished, StateChanged
from station.protocols.quiet_stance import QuietStanceConfig, QuietStanceRunner, QuietState
from station.protocols.trial import TrialCapture, frames_from_recording
from station.scoring.analyze import analyze_file, score_capture, score_runner
from station.signal.forces import ForcePipeline
from tests.station.single_leg_trials import GEOMETRY, synthetic_trial


def simulated_capture(*, scenario=(), duration_s=45.0, config=None, target=None, seed=3):
    plate = SimulatedPlate(realtime=False, seed=seed, rate_hz=80.0, start="quiet", duration_s=duration_s,
                           scenario=list(scenario))
    pipeline = ForcePipeline(simulator_calibration(), GEOMETRY)
    runner = QuietStanceRunner(geometry=GEOMETRY, config=config or QuietStanceConfig(eyes="closed", surface="foam"))
    capture = TrialCapture(runner, geometry=GEOMETRY, sample_rate_hz=80.0, target=target)
    events = []
    for raw in plate:
        events += capture.push(pipeline.process(raw))
        if capture.finished:
            break
    events += runner.finish()
    return capture, events


def test_thirty_seconds_with_conditions(tmp_path):
    path = tmp_path / "quiet.csv"
    capture, events = simulated_capture(target=path)
    runner = capture.runner
    assert runner.state is QuietState.DONE
    assert [e.state for e in events if isinstance(e, StateChanged)] == ["baseline", "countdown", "recording", "done"]
    (fin,) = [e for e in events if isinstance(e, Finished)]
    assert fin.completed and fin.hold_time_s is None and "eyes closed, foam surface" in fin.message
    out = runner.outcome()
    assert out.end_s - out.start_s == 30.0 and out.conditions == {"eyes": "closed", "surface": "foam"}
    # only the 30 s window is recorded, counted from 0
    rec = capture.recording()
    assert rec.t_s[0] == 0.0 and rec.t_s[-1] == pytest.approx(30.0, abs=0.02)
    assert rec.n_samples == pytest.approx(2400, abs=4)
    result = score_runner(capture.runner, capture.finished_recording(), lowpass_hz=10.0)
    assert result["protocol"] == "quiet-stance" and result["conditions"] == {"eyes": "closed", "surface": "foam"}
    assert result["duration_s"] == pytest.approx(30.0, abs=0.05) and result["warnings"] == []
    assert 500 < result["body_weight_n"] < 800 and result["cop"]["mean_velocity_mm_s"] > 0
    # the file scores the same with analyze (which has no conditions to add)
    analyzed = analyze_file(path, protocol="quiet-stance")
    assert {k: v for k, v in result.items() if k != "conditions"} == analyzed
    meta = rec.metadata
    assert meta["protocol"] == "quiet-stance" and meta["eyes"] == "closed" and meta["surface"] == "foam"
    assert QuietStanceConfig.from_metadata(meta) == runner.config


def test_stepping_off_aborts():
    capture, events = simulated_capture(scenario=[{"t_s": 20.0, "behaviour": "step_off"}])
    assert capture.runner.state is QuietState.ABORTED
    (ab,) = [e for e in events if isinstance(e, Aborted)]
    assert "stepped off the plate" in ab.reason
    with pytest.raises(ValueError, match="aborted"):
        score_capture(capture)


def test_a_step_aborts():
    rec, onset = synthetic_trial(quiet_s=12.0)  # a lift 6 s into the recording (baseline 3 s, countdown 3 s)
    runner = QuietStanceRunner(geometry=GEOMETRY)
    for frame in frames_from_recording(rec):
        runner.update(frame)
        if runner.finished:
            break
    assert runner.state is QuietState.ABORTED
    assert "lost two-foot stance (a step or a foot lifted) 6." in runner.end_reason


def test_refusals_and_finish():
    runner = QuietStanceRunner(geometry=GEOMETRY)
    rec, _ = synthetic_trial(body_weight_n=150.0)  # 15.3 kg: a partial load
    for frame in list(frames_from_recording(rec))[:400]:
        runner.update(frame)
    assert runner.state is QuietState.WAITING and "Partial load" in runner.message
    runner.finish()
    assert runner.state is QuietState.ABORTED and runner.end_reason.startswith("no body-weight baseline")


def test_conditions_are_checked():
    with pytest.raises(ValueError, match="eyes must be 'open' or 'closed'"):
        QuietStanceConfig(eyes="half")
    with pytest.raises(ValueError, match="surface must be 'firm' or 'foam'"):
        QuietStanceConfig(surface="sand")
    assert QuietStanceRunner().metadata()["eyes"] == "open"
    assert np.isclose(QuietStanceConfig().duration_s, 30.0)
