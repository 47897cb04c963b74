"""The single-leg test runner: states, refusals, events, abort and repeat, the live path = analyze.

Frames come from exact synthetic recordings (tests.station.single_leg_trials)
and from the simulated plate in fast mode; time is always the frames' own.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from calibration.model import simulator_calibration
from hardware.sim.plate import SimulatedPlate
from station.clinic.live_trial import LiveTrial
from station.clinic.single_leg_pair import SingleLegSession
from station.core.frames import ForceFrame
from station.core.recording import read_recording
from station.live.pipeline import LiveStation
from station.protocols.baseline import BaselineConfig
from station.protocols.events import (
    Aborted,
    BaselineDone,
    Countdown,
    Finished,
    Instruction,
    LiftOff,
    ProtocolEvent,
    StateChanged,
    SupportEnd,
    SupportStart,
    TouchdownEnd,
    TouchdownStart,
    WrongSide,
)
from station.protocols.single_leg import SingleLegConfig, SingleLegRunner, State
from station.protocols.trial import TrialCapture, frames_from_recording, frames_from_rows
from station.scoring.analyze import analyze_file, score_capture
from station.signal.forces import ForcePipeline
from tests.doubles import ListFeed
from tests.station.single_leg_trials import GEOMETRY, synthetic_trial


def run(runner: SingleLegRunner, frames) -> list[ProtocolEvent]:
    events: list[ProtocolEvent] = []
    for frame in frames:
        events += runner.update(frame)
        if runner.finished:
            break
    events += runner.finish()
    return events


def of(events, cls):
    return [e for e in events if isinstance(e, cls)]


def constant_frames(*, fz_n: float, x_mm: float, duration_s: float, fs_hz: float = 80.0, t0_s: float = 0.0,
                    wobble_n: float = 0.0):
    from station.core.cop import split_load

    t = t0_s + np.arange(int(duration_s * fs_hz)) / fs_hz
    fz = fz_n + wobble_n * np.sin(2 * np.pi * 1.5 * t)
    return list(frames_from_rows(t, split_load(fz, np.full_like(t, x_mm), np.zeros_like(t), ml_mm=400.0, ap_mm=300.0),
                                 geometry=GEOMETRY))


# -- the states, in order ------------------------------------------------------------------------------


def test_a_clean_hold_goes_through_every_state():
    rec, onset = synthetic_trial(stance_side="right", quiet_s=7.0)
    runner = SingleLegRunner(stance_side="right", geometry=GEOMETRY)
    events = run(runner, frames_from_recording(rec))
    states = [e.state for e in of(events, StateChanged)]
    assert states == ["baseline", "countdown", "await_lift", "hold", "done"]
    assert runner.state is State.DONE and runner.finished
    (base,) = of(events, BaselineDone)
    assert base.body_weight_n == pytest.approx(700.0, rel=3e-3)
    assert base.end_s - base.start_s == pytest.approx(3.0, abs=0.02)
    assert [c.remaining_s for c in of(events, Countdown)] == [3, 2, 1]
    assert [i.code for i in of(events, Instruction)] == ["baseline", "get_ready", "lift", "hold"]
    (lift,) = of(events, LiftOff)
    assert lift.t_s == pytest.approx(onset, abs=0.1) and lift.stance_side == "right"
    # the onset is placed once the whole transfer can be seen: 1.5 s after the threshold crossing
    assert 1.3 <= lift.detected_s - lift.t_s <= 1.9
    (fin,) = of(events, Finished)
    assert fin.completed and fin.hold_time_s == 30.0 and fin.reason == "hold time reached"
    assert fin.t_s == pytest.approx(lift.t_s + 30.0)
    out = runner.outcome()
    assert out.completed and out.hold_time_s == 30.0 and out.touchdowns == () and out.supports == ()
    assert runner.events == events[: len(runner.events)]
    # frames after the end are ignored
    assert runner.update(ForceFrame(0, 99.0, (175.0,) * 4, 700.0, -100.0, 0.0)) == []


def test_a_lift_during_the_countdown_is_accepted():
    rec, onset = synthetic_trial(quiet_s=4.5)  # baseline done at 3 s, lift at 4.5 s: before "lift now"
    runner = SingleLegRunner(stance_side="left", geometry=GEOMETRY)
    events = run(runner, frames_from_recording(rec))
    # the lift is taken (not refused) and dated when it happened, during the countdown
    assert [e.state for e in of(events, StateChanged)] == ["baseline", "countdown", "await_lift", "hold", "done"]
    assert of(events, LiftOff)[0].t_s < 6.0
    assert of(events, LiftOff)[0].t_s == pytest.approx(onset, abs=0.1) and runner.outcome().completed


def test_events_are_plain_json_ready_dataclasses():
    rec, _ = synthetic_trial(plate=((5.0, 0.5, 40.0),), support=((10.0, 2.0, 5.0),))
    events = run(SingleLegRunner(stance_side="left", geometry=GEOMETRY), frames_from_recording(rec))
    kinds = {e.kind for e in events}
    assert {"state", "instruction", "baseline_done", "countdown", "lift_off", "touchdown", "touchdown_end",
            "support", "support_end", "finished"} <= kinds
    for e in events:
        assert dataclasses.is_dataclass(e)
        d = e.to_dict()
        assert d["kind"] == e.kind and d["t_s"] == e.t_s and isinstance(d["message"], str) and d["message"]
        json.dumps(d, allow_nan=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        events[0].t_s = 1.0  # type: ignore[misc]


def test_status_for_the_screen():
    rec, onset = synthetic_trial()
    runner = SingleLegRunner(stance_side="left", geometry=GEOMETRY)
    frames = list(frames_from_recording(rec))
    seen = {}
    for frame in frames:
        runner.update(frame)
        seen.setdefault(runner.state.value, runner.status())
        if frame.t_s >= onset + 10.0:
            break
    assert seen["baseline"]["body_weight_n"] is None and seen["baseline"]["message"].startswith("Stand still")
    assert seen["countdown"]["countdown_remaining_s"] == 3
    status = runner.status()
    assert status["state"] == "hold" and status["hold_elapsed_s"] == pytest.approx(10.0, abs=0.1)
    assert status["touchdowns"] == 0 and status["supported_now"] is False and status["hold_s"] == 30.0
    json.dumps(status)


# -- refusals ------------------------------------------------------------------------------------------------


def instructions(events):
    return [e.code for e in of(events, Instruction)]


def test_nobody_on_the_plate_is_refused():
    runner = SingleLegRunner(stance_side="left", geometry=GEOMETRY)
    events = []
    for f in constant_frames(fz_n=3.0, x_mm=0.0, duration_s=10.0):
        events += runner.update(f)
    assert runner.state is State.WAITING and instructions(events) == ["nobody"]
    assert runner.message.startswith("Nobody on the plate")
    events = runner.finish()
    assert runner.state is State.ABORTED and "no body-weight baseline" in of(events, Aborted)[0].reason


@pytest.mark.parametrize(
    "fz_n,x_mm,code,words",
    [
        (120.0, 0.0, "partial_load", "only 12.2 kg on the plate"),
        (700.0, -95.0, "one_foot", "under the left footprint only"),
        (700.0, 90.0, "one_foot", "under the right footprint only"),
    ],
)
def test_partial_loads_are_refused(fz_n, x_mm, code, words):
    runner = SingleLegRunner(stance_side="left", geometry=GEOMETRY)
    events = []
    for f in constant_frames(fz_n=fz_n, x_mm=x_mm, duration_s=8.0):
        events += runner.update(f)
    assert runner.state is State.WAITING and instructions(events) == [code]
    assert words in runner.message
    assert not of(events, BaselineDone)


def test_a_known_mass_catches_a_foot_off_the_plate():
    config = SingleLegConfig(baseline=BaselineConfig(expected_mass_kg=70.0))
    runner = SingleLegRunner(stance_side="left", geometry=GEOMETRY, config=config)
    events = []
    for f in constant_frames(fz_n=50 * 9.80665, x_mm=0.0, duration_s=6.0):
        events += runner.update(f)
    assert runner.state is State.WAITING and instructions(events)[-1] == "partial_load"
    assert "50.0 kg on the plate but the patient weighs 70.0 kg" in runner.message
    # the whole patient steps on: accepted
    for f in constant_frames(fz_n=70 * 9.80665, x_mm=0.0, duration_s=4.0, t0_s=6.0):
        events += runner.update(f)
    assert runner.state is State.COUNTDOWN and of(events, BaselineDone)


def test_an_unsteady_load_waits():
    runner = SingleLegRunner(stance_side="left", geometry=GEOMETRY)
    events = []
    for f in constant_frames(fz_n=700.0, x_mm=0.0, duration_s=8.0, wobble_n=40.0):  # +-5.7 %: bouncing
        events += runner.update(f)
    assert runner.state is State.WAITING and instructions(events) == ["baseline", "unsteady"]
    assert "the force varies by" in runner.message


def test_baseline_length_is_configurable_from_3_to_5_s():
    for baseline_s in (3.0, 5.0):
        config = SingleLegConfig(baseline=BaselineConfig(baseline_s=baseline_s))
        runner = SingleLegRunner(stance_side="left", geometry=GEOMETRY, config=config)
        events = run(runner, constant_frames(fz_n=700.0, x_mm=0.0, duration_s=7.0))
        (base,) = of(events, BaselineDone)
        assert base.end_s - base.start_s == pytest.approx(baseline_s, abs=0.02)
    for bad in (2.5, 5.5):
        with pytest.raises(ValueError, match="baseline_s must be a number between 3 and 5"):
            BaselineConfig(baseline_s=bad)


def test_a_lift_on_the_wrong_side_is_refused_then_the_right_one_accepted():
    rec, onset = synthetic_trial(stance_side="left", quiet_s=9.0, wrong_side=(4.0, 2.0))
    runner = SingleLegRunner(stance_side="left", geometry=GEOMETRY)
    events = run(runner, frames_from_recording(rec))
    (wrong,) = of(events, WrongSide)
    assert wrong.stance_side == "right" and wrong.expected == "left" and wrong.t_s == pytest.approx(4.2, abs=0.15)
    assert "put_down" in instructions(events)
    (lift,) = of(events, LiftOff)
    assert lift.t_s == pytest.approx(onset, abs=0.1)
    out = runner.outcome()
    assert out.completed and out.wrong_side_s == (wrong.t_s,)


def test_the_plate_emptied_before_the_lift_starts_again():
    frames = constant_frames(fz_n=700.0, x_mm=0.0, duration_s=4.0)
    frames += constant_frames(fz_n=0.0, x_mm=0.0, duration_s=2.0, t0_s=4.0)
    frames += constant_frames(fz_n=650.0, x_mm=0.0, duration_s=4.0, t0_s=6.0)
    runner = SingleLegRunner(stance_side="left", geometry=GEOMETRY)
    events = []
    for f in frames:
        events += runner.update(f)
    assert [e.state for e in of(events, StateChanged)] == ["baseline", "countdown", "waiting", "baseline",
                                                           "countdown"]
    assert [b.body_weight_n for b in of(events, BaselineDone)] == pytest.approx([700.0, 650.0])


def test_frames_out_of_time_order_are_skipped():
    frames = constant_frames(fz_n=700.0, x_mm=0.0, duration_s=4.0)
    runner = SingleLegRunner(stance_side="left", geometry=GEOMETRY)
    for f in frames[:100]:
        runner.update(f)
    runner.update(frames[50])
    runner.update(frames[99])
    bad = ForceFrame(0, math.nan, (175.0,) * 4, 700.0, 0.0, 0.0)
    runner.update(bad)
    assert runner.skipped_frames == 3


# -- the hold: failures, support, end on failure, stepping off, abort --------------------------------------


def test_touchdowns_and_support_are_events_with_their_start_times():
    rec, onset = synthetic_trial(plate=((6.0, 0.5, 40.0),), floor=((18.0, 0.8, 30.0),), support=((10.0, 3.0, 5.0),))
    runner = SingleLegRunner(stance_side="left", geometry=GEOMETRY)
    events = run(runner, frames_from_recording(rec))
    starts, ends = of(events, TouchdownStart), of(events, TouchdownEnd)
    assert [s.where for s in starts] == ["plate", "floor"]
    assert [s.t_s - onset for s in starts] == pytest.approx([6.0, 18.0], abs=0.02)  # a frame or so
    assert [round(e.duration_s, 2) for e in ends] == pytest.approx([0.5, 0.8], abs=0.03)
    for s in starts:
        assert 0.0 <= s.detected_s - s.t_s <= 0.1  # found within a few frames
    (sup,), (sup_end,) = of(events, SupportStart), of(events, SupportEnd)
    assert sup.t_s == pytest.approx(onset + 10.0, abs=0.02) and sup.pct_bw == pytest.approx(5.0, abs=0.3)
    assert sup.detected_s - sup.t_s == pytest.approx(0.5, abs=0.02)
    assert sup_end.duration_s == pytest.approx(3.0, abs=0.03) and sup_end.mean_pct_bw == pytest.approx(5.0, abs=0.3)
    (fin,) = of(events, Finished)
    assert not fin.completed and fin.hold_time_s == pytest.approx(6.0, abs=0.1)
    assert fin.reason == "hold time reached"  # the test ran on to 30 s: the default


def test_end_on_failure_stops_at_the_first_touchdown():
    rec, onset = synthetic_trial(floor=((7.0, 1.0, 40.0),), plate=((15.0, 0.5, 40.0),))
    runner = SingleLegRunner(stance_side="left", geometry=GEOMETRY, config=SingleLegConfig(end_on_failure=True))
    events = run(runner, frames_from_recording(rec))
    (fin,) = of(events, Finished)
    assert fin.reason == "first failure (end on failure)" and not fin.completed
    assert fin.hold_time_s == pytest.approx(7.0, abs=0.1)
    assert fin.t_s == pytest.approx(onset + 7.0, abs=0.1)  # ended as soon as it was found
    (td,) = runner.outcome().touchdowns
    assert td.where == "floor" and td.end_s is None and td.duration_s is None


def test_stepping_off_ends_the_test():
    rec, onset = synthetic_trial(floor=((9.0, 30.0, 100.0),))  # the whole weight off the plate
    runner = SingleLegRunner(stance_side="left", geometry=GEOMETRY)
    events = run(runner, frames_from_recording(rec))
    (fin,) = of(events, Finished)
    assert fin.reason == "stepped off the plate" and fin.hold_time_s == pytest.approx(9.0, abs=0.1)
    assert fin.t_s == pytest.approx(onset + 9.5, abs=0.05)
    (td,) = runner.outcome().touchdowns
    assert td.where == "floor" and td.end_s is None


def test_abort_and_repeat():
    rec, onset = synthetic_trial()
    frames = list(frames_from_recording(rec))
    runner = SingleLegRunner(stance_side="left", geometry=GEOMETRY)
    for f in frames:
        runner.update(f)
        if f.t_s > onset + 5.0:
            break
    assert runner.state is State.HOLD
    events = runner.abort("the patient felt dizzy")
    assert runner.state is State.ABORTED and runner.finished
    (ab,) = of(events, Aborted)
    assert ab.reason == "the patient felt dizzy" and ab.t_s == pytest.approx(onset + 5.0, abs=0.02)
    assert runner.abort() == [] and runner.update(frames[-1]) == []
    assert runner.outcome().state == "aborted" and not runner.outcome().completed
    # repeat: a new runner on the same frames
    again = SingleLegRunner(stance_side="left", geometry=GEOMETRY)
    run(again, frames)
    assert again.outcome().completed


# -- settings -----------------------------------------------------------------------------------------------


def test_settings_are_keyword_only_and_checked():
    with pytest.raises(TypeError):
        SingleLegConfig(30.0)  # type: ignore[misc]
    with pytest.raises(ValueError, match="plate_touchdown_mm must be a number between 5 and 500, got 0"):
        SingleLegConfig(plate_touchdown_mm=0)
    with pytest.raises(ValueError, match="end_on_failure must be True or False"):
        SingleLegConfig(end_on_failure="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stance_side must be 'left' or 'right'"):
        SingleLegRunner(stance_side="both")


def test_settings_round_trip_through_the_recording_metadata():
    config = SingleLegConfig(hold_s=20.0, end_on_failure=True, plate_touchdown_mm=35.5,
                             baseline=BaselineConfig(baseline_s=4.0, expected_mass_kg=71.3))
    meta = config.to_metadata()
    assert meta["single_leg.hold_s"] == "20.0" and meta["single_leg.end_on_failure"] == "true"
    assert meta["single_leg.baseline_s"] == "4.0" and meta["single_leg.expected_mass_kg"] == "71.3"
    assert SingleLegConfig.from_metadata(meta) == config
    assert SingleLegConfig.from_metadata({}) == SingleLegConfig()
    runner = SingleLegRunner(stance_side="right", config=config)
    assert runner.metadata()["protocol"] == "single-leg" and runner.metadata()["stance_side"] == "right"


# -- left and right in one session -----------------------------------------------------------------------------


def test_a_session_alternates_legs_and_repeats_aborted_trials():
    session = SingleLegSession(geometry=GEOMETRY, trials_per_side=2, age_years=45)
    order = []
    fake = {"protocol": "single-leg", "hold_time_s": 30.0, "completed": True, "touchdowns": [],
            "support": {"time_s": 0.0}, "cop": {"mean_velocity_mm_s": 20.0}, "ml_offset_mm": 1.0}
    aborted_once = False
    while not session.done:
        runner = session.new_runner()
        order.append(runner.stance_side)
        if runner.stance_side == "right" and not aborted_once:
            session.record_aborted("right", "lost balance stepping on")
            aborted_once = True
            continue
        session.record({**fake, "stance_side": runner.stance_side,
                        "hold_time_s": 30.0 if runner.stance_side == "left" else 22.0})
    assert order == ["left", "right", "right", "left", "right"]
    summary = session.summary()
    assert summary["trials"] == {"left": 2, "right": 2} and summary["complete"] is True
    assert summary["aborted"] == [{"stance_side": "right", "reason": "lost balance stepping on"}]
    assert summary["comparison"]["hold_time"]["flagged"] is True  # 22 vs 30 s: 26.7 %
    assert summary["norm"]["norm_hold_s"] == 41.0
    with pytest.raises(ValueError, match="the session is complete"):
        session.new_runner()


def test_a_leg_is_given_up_after_repeated_aborts():
    session = SingleLegSession(sides=("right",), max_aborts_per_side=2)
    session.record_aborted("right", "pain")
    assert session.next_side() == "right"
    session.record_aborted("right", "pain")
    assert session.done and session.summary()["given_up"] == ["right"] and session.summary()["complete"] is False


# -- live = analyze ----------------------------------------------------------------------------------------------


def simulated_raw_frames(*, seed: int, rate_hz: float, side: str, scenario_extra=()) -> list:
    plate = SimulatedPlate(realtime=False, seed=seed, rate_hz=rate_hz, start="quiet", duration_s=42.0,
                           skill="weak_abductors", scenario=[
                               {"t_s": 5.0, "behaviour": "single_leg", "stance_side": side},
                               {"t_s": 14.0, "behaviour": "touchdown", "where": "plate", "duration_s": 0.5},
                               {"t_s": 19.0, "behaviour": "hand_support", "pct_bw": 4.0, "duration_s": 3.0},
                               {"t_s": 27.0, "behaviour": "touchdown", "where": "floor", "duration_s": 0.6},
                               *scenario_extra])
    return list(plate)


@pytest.mark.parametrize("side,rate_hz", [("left", 80.0), ("right", 100.0)])
def test_the_live_runner_and_analyze_give_identical_results(tmp_path, side, rate_hz):
    raws = simulated_raw_frames(seed=11, rate_hz=rate_hz, side=side)
    feed = ListFeed(nominal_rate_hz=rate_hz)
    live = LiveStation(feed, ForcePipeline(simulator_calibration(), GEOMETRY), auto_rezero=False)
    path = tmp_path / "trial.csv"
    trial = LiveTrial(live, SingleLegRunner(stance_side=side, geometry=GEOMETRY), geometry=GEOMETRY,
                      metadata={"patient": "P001"}, target=path)
    assert live.trial_running
    live_events = []
    for i in range(0, len(raws), 7):  # the pump delivers a few frames at a time
        for raw in raws[i:i + 7]:
            live.ingest(raw)
        live_events += trial.poll(timeout_s=0.0)
        if trial.finished:
            break
    assert trial.finished and not live.trial_running and trial.overflowed == 0
    result = trial.result()
    assert result["completed"] is False and [t["where"] for t in result["touchdowns"]] == ["plate", "floor"]
    assert result["support"]["time_s"] > 2.5

    # the file holds exactly the frames the runner saw
    rec = read_recording(path)
    mem = trial.capture.recording()
    assert np.array_equal(rec.t_s, mem.t_s) and np.array_equal(rec.forces_n, mem.forces_n)
    assert rec.metadata["protocol"] == "single-leg" and rec.metadata["stance_side"] == side
    assert rec.metadata["patient"] == "P001"

    analyzed = analyze_file(path, protocol="single-leg", stance_side=side)
    assert analyzed == result
    assert json.dumps(analyzed, allow_nan=False) == json.dumps(result, allow_nan=False)
    # and a fresh runner fed the file's frames emits the live events, one for one
    replay = SingleLegRunner(stance_side=side, geometry=GEOMETRY)
    replay_events = run(replay, frames_from_recording(rec))
    assert [e.to_dict() for e in replay_events if e.kind != "aborted"] == [e.to_dict() for e in live_events]


def test_live_and_analyze_agree_with_end_on_failure(tmp_path):
    raws = simulated_raw_frames(seed=5, rate_hz=80.0, side="left")
    pipeline = ForcePipeline(simulator_calibration(), GEOMETRY)
    path = tmp_path / "eof.csv"
    runner = SingleLegRunner(stance_side="left", geometry=GEOMETRY, config=SingleLegConfig(end_on_failure=True))
    capture = TrialCapture(runner, geometry=GEOMETRY, sample_rate_hz=80.0, target=path)
    for raw in raws:
        capture.push(pipeline.process(raw))
        if capture.finished:
            break
    result = score_capture(capture)
    assert result["end_reason"] == "first failure (end on failure)" and len(result["touchdowns"]) == 1
    assert result["duration_s"] < 20.0  # the recording stopped with the test
    assert analyze_file(path, protocol="single-leg", stance_side="left") == result


def test_live_results_need_a_finished_trial():
    capture = TrialCapture(SingleLegRunner(stance_side="left"), geometry=GEOMETRY, sample_rate_hz=80.0)
    for f in constant_frames(fz_n=700.0, x_mm=0.0, duration_s=2.0):
        capture.push(f)
    with pytest.raises(ValueError, match="still running"):
        score_capture(capture)
    capture.abort("operator")
    with pytest.raises(ValueError, match=r"aborted \(operator\): nothing to score"):
        score_capture(capture)
    assert capture.n_rows == 160


def test_while_the_transfer_is_fitted_the_screen_already_counts_the_hold():
    rec, onset = synthetic_trial(stance_side="left", quiet_s=7.0)
    runner = SingleLegRunner(stance_side="left", geometry=GEOMETRY)
    seen = []
    for frame in frames_from_recording(rec):
        runner.update(frame)
        status = runner.status()
        if status["state"] == "await_lift" and status["hold_elapsed_s"] is not None:
            seen.append((frame.t_s, status["hold_elapsed_s"], status["message"]))
        if runner.state is State.HOLD:
            break
    # from the confirmed lift (0.5 s after the crossing) to the placed onset (1.5 s after it) the timer
    # runs and the message says to hold
    assert seen and seen[-1][0] - seen[0][0] >= 0.95
    assert all("hold still" in m for *_, m in seen)
    assert seen[-1][1] == pytest.approx(seen[-1][0] - seen[0][0] + seen[0][1], abs=0.05)
    assert runner.status()["hold_elapsed_s"] == pytest.approx(runner.status()["t_s"] - runner.onset_s)
