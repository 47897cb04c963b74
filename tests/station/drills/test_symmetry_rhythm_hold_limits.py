"""Symmetry, rhythm, single-leg hold and limits driven by scripted frames; metrics checked by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from station.drills import Limits, make_drill
from tests.station.drills.scripted import GEOMETRY, Path, run, snap

FS = 10.0  # a coarse grid keeps the hand computations simple


def x_for_left_share(left_pct: float) -> float:
    """COP x that puts ``left_pct`` % on the left foot (DESIGN.md 3: left = 100 (100 - x) / 200)."""
    return GEOMETRY.feet_ml_mm / 2 - left_pct / 100.0 * GEOMETRY.feet_ml_mm


# -- symmetry ---------------------------------------------------------------------------------------


def test_symmetry_time_within_tolerance_on_a_scripted_share_trace():
    drill = make_drill("symmetry", geometry=GEOMETRY, rng=np.random.default_rng(0), stance_side="left",
                       params={"targets_left_pct": [50, 60], "segment_s": 4.0, "tolerance_pct": 5.0,
                               "ready_s": 1.0, "hit_hold_s": 1.0})
    start = {}

    def on_events(events, t):
        for e in events:
            if e.message == "ready -> running":
                start["t0"] = e.t_s

    def share(t):
        if "t0" not in start:
            return 50.0
        e = t - start["t0"]
        # segment 1 (target 50): 50 for 2 s, then 58 (8 off, outside 5) for 2 s
        # segment 2 (target 60): 60 for 3 s, then 70 for 1 s
        return 50.0 if e < 2 - 1e-9 else 58.0 if e < 4 - 1e-9 else 60.0 if e < 7 - 1e-9 else 70.0

    events = run(drill, lambda t: (x_for_left_share(share(t)), 0.0), fs_hz=FS, on_events=on_events)
    assert drill.state == "done"
    m = drill.metrics()
    s1, s2 = m["segments"]
    assert s1["target_left_pct"] == 50 and s2["target_left_pct"] == 60
    assert s1["time_within_tolerance_s"] == pytest.approx(2.0, abs=1e-6)
    assert s1["time_within_tolerance_pct"] == pytest.approx(50.0, abs=1e-4)
    assert s1["mean_abs_error_pct"] == pytest.approx(4.0)       # half the samples 0 off, half 8 off
    assert s1["mean_error_pct"] == pytest.approx(4.0)
    assert s1["rms_error_pct"] == pytest.approx(math.sqrt(32.0))
    assert s1["time_to_within_s"] == pytest.approx(0.0)
    assert s1["error_trace_pct"] == pytest.approx([0, 0, 8, 8])
    assert s2["time_within_tolerance_s"] == pytest.approx(3.0, abs=1e-6)
    assert s2["time_within_tolerance_pct"] == pytest.approx(75.0, abs=1e-4)
    assert s2["mean_left_pct"] == pytest.approx(62.5)
    assert m["time_within_tolerance_s"] == pytest.approx(5.0, abs=1e-6)
    assert m["success_pct"] == 100.0  # both segments at least 50 % within
    assert [e.cue for e in events if e.kind == "hit"] == ["hit", "hit"]
    json.dumps(m, allow_nan=False)


def test_symmetry_default_targets_follow_the_affected_side_and_bars():
    d = make_drill("symmetry", geometry=GEOMETRY, rng=np.random.default_rng(0), stance_side="right", level=1)
    assert d.targets() == [50.0, 40.0]  # 60/40 onto the right leg
    assert make_drill("symmetry", geometry=GEOMETRY, rng=np.random.default_rng(0)).targets() == [50.0, 60.0, 40.0]
    run(d, lambda t: (x_for_left_share(45.0), 0.0), fs_hz=FS, max_s=3.0)
    bars = d.view().bars
    assert bars is not None and bars.left_pct == pytest.approx(45.0)
    assert bars.target_left_pct == 50.0 and bars.within == (abs(45.0 - 50.0) <= bars.tolerance_pct)


# -- rhythm ----------------------------------------------------------------------------------------


def rhythm_drill(**params):
    return make_drill("rhythm", geometry=GEOMETRY, rng=np.random.default_rng(0),
                      limits=Limits(forward_mm=100, backward_mm=80, left_mm=80, right_mm=90),
                      params={"periods_s": [2.0], "cycles": 6, "rounds": 1, "amplitude_pct": 50.0, "ready_s": 1.0,
                              **params})


def sway(drill, *, period_s, amp_mm, off_mm=0.0):
    start = {}

    def on_events(events, t):
        for e in events:
            if e.message == "ready -> running":
                start["t0"] = e.t_s

    def pos(t):
        if "t0" not in start:
            return (0.0, 0.0)
        s = math.sin(2 * math.pi * (t - start["t0"]) / period_s)
        return (amp_mm * s, off_mm * s)

    return run(drill, pos, fs_hz=100.0, on_events=on_events)


def test_rhythm_in_time_gives_no_tempo_error_and_a_beat_at_each_turn():
    drill = rhythm_drill()
    assert drill.amplitude_mm() == pytest.approx(40.0)  # 50 % of the smaller side limit (80 mm)
    events = sway(drill, period_s=2.0, amp_mm=40.0)
    m = drill.metrics()
    r = m["rounds"][0]
    assert r["tempo_error_pct"] == pytest.approx(0.0, abs=0.1)
    assert r["amplitude_pct"] == pytest.approx(100.0, abs=1.0)
    assert r["off_axis_pct"] == pytest.approx(0.0, abs=1e-9)
    assert r["consistency_pct"] == pytest.approx(100.0, abs=1.0)
    assert r["tracking_rms_mm"] == pytest.approx(0.0, abs=1e-9)
    assert r["good_cycles"] == 5 and r["success_pct"] == 100.0
    assert sum(1 for e in events if e.cue == "beat") == 12  # two turns per cycle, 6 cycles


def test_rhythm_10_percent_slow_gives_plus_10_percent_tempo_error_and_off_axis_ratio():
    drill = rhythm_drill()
    # a sine at 2.2 s against the 2.0 s metronome, with a 10 mm in-phase wobble across the axis
    sway(drill, period_s=2.2, amp_mm=40.0, off_mm=10.0)
    r = drill.metrics()["rounds"][0]
    assert r["measured_period_s"] == pytest.approx(2.2, abs=0.005)
    assert r["tempo_error_pct"] == pytest.approx(10.0, abs=0.25)
    # straight-line sway: across / along path = 10 / 40
    assert r["off_axis_pct"] == pytest.approx(25.0, abs=1e-6)
    assert r["amplitude_pct"] == pytest.approx(100.0, abs=3.0)


def test_rhythm_three_speeds_and_the_metronome_view():
    drill = make_drill("rhythm", geometry=GEOMETRY, rng=np.random.default_rng(0), params={"ready_s": 0.5})
    periods = []
    for i in range(3):
        drill.round_index = i
        periods.append(drill.period_s())
    drill.round_index = 0
    assert periods == pytest.approx([4.0, 2.8, 2.0])  # level 1: slow 4 s, x 0.7, x 0.5
    run(drill, lambda t: (0.0, 0.0), max_s=1.5)
    met = drill.view().metronome
    assert met is not None and met.axis == "ml" and met.period_s == pytest.approx(4.0)
    assert met.pace_mm == pytest.approx(drill.centre_ml_mm + met.amplitude_mm * math.sin(2 * math.pi * met.phase))


# -- single-leg hold --------------------------------------------------------------------------------


def hold_drill(**params):
    return make_drill("single-leg-hold", geometry=GEOMETRY, rng=np.random.default_rng(0), stance_side="left",
                      params={"hold_s": 10.0, "rounds": 1, "ready_s": 1.0, "half_width_mm": 35.0,
                              "half_height_mm": 60.0, **params})


def test_hold_time_in_zone_on_a_scripted_excursion():
    drill = hold_drill()
    path = Path()

    def on_events(events, t):
        for e in events:
            if e.message == "ready -> running":
                t0 = e.t_s
                path.jump(snap(t0 + 0.1, FS), (-100.0, 0.0))        # onto the left foot: in the zone at t0 + 0.1
                path.jump(snap(t0 + 4.1, FS), (-50.0, 0.0))         # 15 mm outside the zone ...
                path.jump(snap(t0 + 5.6, FS), (-100.0, 0.0))        # ... for 1.5 s

    events = run(drill, path.at, fs_hz=FS, on_events=on_events)
    r = drill.metrics()["rounds"][0]
    assert r["time_in_zone_s"] == pytest.approx(8.5, abs=1e-6)
    assert r["time_in_zone_pct"] == pytest.approx(85.0, abs=1e-4)
    assert r["zone_exits"] == 1 and r["lost_balance_count"] == 0  # 15 mm out is within the 30 mm margin
    assert r["longest_in_zone_s"] == pytest.approx(4.5, abs=1e-6)  # t0 + 5.6 to the end at t0 + 10.1
    assert r["time_to_start_s"] == pytest.approx(0.1, abs=1e-9)
    # x: 85 samples at -100, 15 at -50 -> mean -92.5, RMS about it 50 sqrt(0.15 * 0.85)
    assert r["sway_ml_rms_mm"] == pytest.approx(50 * math.sqrt(0.15 * 0.85))
    assert r["mean_offset_ml_mm"] == pytest.approx(-7.5)  # medial of the footprint centre
    assert r["sway_ap_rms_mm"] == 0.0
    assert r["success_pct"] == pytest.approx(85.0, abs=1e-4)
    assert not any(e.cue == "lost_balance" for e in events)


def test_hold_lost_balance_beyond_the_margin_and_on_a_force_drop():
    drill = hold_drill()
    path = Path()
    t0s = []

    def on_events(events, t):
        for e in events:
            if e.message == "ready -> running":
                t0s.append(e.t_s)
                path.jump(snap(e.t_s + 0.1, FS), (-100.0, 0.0))
                path.jump(snap(e.t_s + 3.0, FS), (-20.0, 0.0))      # 45 mm beyond the zone: lost
                path.jump(snap(e.t_s + 3.5, FS), (-100.0, 0.0))

    def fz(t):  # the other foot put down off the plate: Fz drops by 30 % from t0 + 6 to t0 + 6.5
        return 490.0 if t0s and 6.0 <= t - t0s[0] < 6.5 else 700.0

    events = run(drill, path.at, fs_hz=FS, on_events=on_events, fz=fz)
    assert [e.t_s - t0s[0] for e in events if e.cue == "lost_balance"] == pytest.approx([3.0, 6.0], abs=1e-6)
    assert drill.metrics()["rounds"][0]["lost_balance_count"] == 2


def test_hold_needs_a_stance_side_and_shows_the_zone_over_it():
    with pytest.raises(ValueError, match="stance_side"):
        make_drill("single-leg-hold", geometry=GEOMETRY, rng=np.random.default_rng(0))
    d = hold_drill()
    run(d, lambda t: (0.0, 0.0), fs_hz=FS, max_s=0.5)
    z = d.view().zone
    assert z is not None and (z.x_mm, z.half_width_mm) == (-100.0, 35.0)


# -- limits -----------------------------------------------------------------------------------------


def test_limits_measures_the_held_lean_each_way():
    drill = make_drill("limits", geometry=GEOMETRY, rng=np.random.default_rng(0),
                       params={"ready_s": 1.0, "lean_s": 3.0})
    path = Path()
    lean = {"forward": (0.0, 120.0), "right": (90.0, 0.0), "backward": (0.0, -60.0), "left": (-80.0, 0.0)}

    def on_events(events, t):
        for e in events:
            if e.kind == "target":
                way = e.message.split()[1].rstrip(".")
                path.move(snap(e.t_s + 0.3), lean[way], 300.0)
            elif e.kind == "hit":
                path.move(snap(e.t_s + 0.1), (0.0, 0.0), 300.0)

    run(drill, path.at, on_events=on_events)
    m = drill.metrics()
    assert drill.state == "done"
    assert (m["forward_mm"], m["right_mm"], m["backward_mm"], m["left_mm"]) == pytest.approx((120, 90, 60, 80))
    lim = drill.measured_limits()
    assert (lim.forward_mm, lim.backward_mm, lim.left_mm, lim.right_mm) == pytest.approx((120, 60, 80, 90))
    assert m["score"] == round((120 + 90 + 60 + 80) / 4)
    json.dumps(m, allow_nan=False)


def test_limits_interpolate_between_the_axes_and_round_trip():
    lim = Limits(forward_mm=100, backward_mm=50, left_mm=80, right_mm=60)
    assert lim.limit_mm(0) == pytest.approx(100) and lim.limit_mm(90) == pytest.approx(60)
    assert lim.limit_mm(180) == pytest.approx(50) and lim.limit_mm(270) == pytest.approx(80)
    # on the ellipse of the forward-right quadrant: 1 / sqrt(0.5 / 60^2 + 0.5 / 100^2)
    assert lim.limit_mm(45) == pytest.approx(1 / math.sqrt(0.5 / 3600 + 0.5 / 10000))
    assert Limits.from_dict(lim.to_dict()) == lim
    with pytest.raises(ValueError, match="left_mm"):
        Limits(forward_mm=100, backward_mm=50, left_mm=-1, right_mm=60)
    with pytest.raises(ValueError, match="right_mm"):
        Limits.from_dict({"forward_mm": 1e2, "backward_mm": 50, "left_mm": 80})
