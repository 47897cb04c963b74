"""The reach drill driven by scripted straight-line COP paths, its metrics checked by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from station.drills import Limits, make_drill
from tests.station.drills.scripted import GEOMETRY, Path, run, snap

LIMITS = Limits(forward_mm=100.0, backward_mm=80.0, left_mm=80.0, right_mm=80.0)
PARAMS = {"directions_deg": [0, 90], "order": "fixed", "ready_s": 1.0, "settle_s": 0.5, "delay_min_s": 1.0,
          "delay_max_s": 1.0, "distance_pct": 50.0, "radius_mm": 10.0, "hold_s": 0.5, "timeout_s": 5.0,
          "adaptive": False, "summary_s": 1.0}


def make(**over):
    params = {**PARAMS, **over.pop("params", {})}
    return make_drill("reach", geometry=GEOMETRY, rng=np.random.default_rng(0), params=params, limits=LIMITS,
                      **over)


class Patient:
    """Moves straight to each target ``rt_s`` after it appears, at ``speed``; back to the centre after a hit.

    ``off_deg``: the first move heads this far clockwise of the target and stops at the point level with
    the target along its axis, pauses ``pause_s``, then goes on to the target.
    """

    def __init__(self, drill, *, rt_s=0.4, speed=100.0, off_deg=0.0, pause_s=0.4, reach=True):
        self.drill, self.rt_s, self.speed, self.off_deg, self.pause_s, self.reach = drill, rt_s, speed, off_deg, \
            pause_s, reach
        self.path = Path()

    def on_events(self, events, t):
        for ev in events:
            if ev.kind == "target":
                tg = next(tg for tg in self.drill.view().targets if tg.state == "active")
                t0 = snap(ev.t_s + self.rt_s)
                if not self.reach:
                    continue
                if self.off_deg:
                    d = math.hypot(tg.x_mm, tg.y_mm)
                    a = math.atan2(tg.x_mm, tg.y_mm) + math.radians(self.off_deg)
                    along = d  # level with the target along its axis
                    r = along / math.cos(math.radians(self.off_deg))
                    t1 = self.path.move(t0, (r * math.sin(a), r * math.cos(a)), self.speed)
                    self.path.move(snap(t1 + self.pause_s), (tg.x_mm, tg.y_mm), self.speed)
                else:
                    self.path.move(t0, (tg.x_mm, tg.y_mm), self.speed)
            elif ev.kind in ("hit", "miss"):
                self.path.move(snap(ev.t_s + 0.2), (0.0, 0.0), self.speed)


def test_straight_moves_hit_every_target_with_hand_computed_metrics():
    drill = make()
    pat = Patient(drill, rt_s=0.4, speed=100.0)
    events = run(drill, pat.path.at, on_events=pat.on_events)
    assert drill.state == "done"
    m = drill.metrics()
    assert [t["direction"] for t in m["targets"]] == ["forward", "right"]
    fwd, right = m["targets"]
    # targets at 50 % of the limits: (0, 50) and (40, 0)
    assert (fwd["target_ml_mm"], fwd["target_ap_mm"]) == pytest.approx((0.0, 50.0))
    assert (right["target_ml_mm"], right["target_ap_mm"]) == pytest.approx((40.0, 0.0))
    for tg, dist in ((fwd, 50.0), (right, 40.0)):
        assert tg["hit"] is True
        assert tg["reaction_time_s"] == pytest.approx(0.4, abs=1e-9)  # exactly the scripted onset
        assert tg["movement_velocity_mm_s"] == pytest.approx(100.0, rel=1e-6)
        assert tg["directional_control_pct"] == pytest.approx(100.0, abs=2.0)
        assert tg["endpoint_excursion_pct"] == pytest.approx(50.0, abs=1e-6)
        assert tg["max_excursion_pct"] == pytest.approx(50.0, abs=1e-6)
        # inside the 10 mm circle once 10 mm short of it: (dist - 10) / 100 s after the onset
        assert tg["time_to_reach_s"] == pytest.approx(0.4 + (dist - 10.0) / 100.0, abs=0.011)
        assert tg["time_to_hold_s"] == pytest.approx(tg["time_to_reach_s"] + 0.5, abs=0.011)
    assert m["hits"] == 2 and m["success_pct"] == 100.0 and m["best_streak"] == 2
    assert m["reaction_time_s"] == pytest.approx(0.4, abs=1e-9)
    assert m["score"] > 20
    assert [e.cue for e in events if e.kind == "hit"] == ["hit", "hit"]
    json.dumps(m, allow_nan=False)  # JSON-ready


def test_a_first_move_45_degrees_off_axis_gives_directional_control_near_zero():
    # the primary movement heads 45 deg clockwise of each target: equal on- and off-axis movement
    drill = make()
    pat = Patient(drill, rt_s=0.5, speed=100.0, off_deg=45.0)
    run(drill, pat.path.at, on_events=pat.on_events)
    m = drill.metrics()
    for tg in m["targets"]:
        assert tg["directional_control_pct"] == pytest.approx(0.0, abs=2.0)
        assert tg["reaction_time_s"] == pytest.approx(0.5, abs=1e-9)
        # the primary endpoint is level with the target along its axis: 50 % of the limit
        assert tg["endpoint_excursion_pct"] == pytest.approx(50.0, abs=1e-6)
        assert tg["hit"] is True
    straight = make()
    pat2 = Patient(straight, rt_s=0.5)
    run(straight, pat2.path.at, on_events=pat2.on_events)
    assert straight.metrics()["directional_control_pct"] > m["directional_control_pct"] + 90


def test_no_move_misses_after_the_timeout():
    drill = make()
    pat = Patient(drill, reach=False)
    events = run(drill, pat.path.at, on_events=pat.on_events)
    m = drill.metrics()
    assert m["hits"] == 0 and m["misses"] == 2 and m["success_pct"] == 0.0
    for tg in m["targets"]:
        assert tg["hit"] is False and tg["reaction_time_s"] is None and tg["time_to_hold_s"] is None
    shown = [e.t_s for e in events if e.kind == "target"]
    missed = [e.t_s for e in events if e.kind == "miss"]
    assert [b - a for a, b in zip(shown, missed)] == pytest.approx([5.0, 5.0], abs=0.011)
    assert m["score"] == 0


def test_states_and_view():
    drill = make()
    assert drill.state == "waiting" and drill.view().state == "waiting"
    pat = Patient(drill)
    seen = set()

    def watch(events, t):
        pat.on_events(events, t)
        v = drill.view()
        seen.add(v.state)
        if v.state == "running":
            assert v.rounds == 1 and v.round_index == 0 and v.cursor_visible
            assert all(tg.radius_mm > 0 for tg in v.targets)

    run(drill, pat.path.at, on_events=watch)
    assert {"ready", "running", "done"} <= seen
    v = drill.view()
    assert v.state == "done" and v.summary and v.summary[0].label == "Targets hit"


def test_random_order_comes_from_the_generator():
    def order(seed):
        d = make_drill("reach", geometry=GEOMETRY, rng=np.random.default_rng(seed), params={"ready_s": 0.5})
        run(d, lambda t: (0.0, 0.0), max_s=3.0)
        return [tg.x_mm for tg in d.view().targets]

    assert order(1) == order(1)
    assert order(1) != order(2)


def test_waits_for_the_patient_and_for_steady_occupancy():
    drill = make()
    # nobody on the plate for 3 s: NaN COP and no force
    run(drill, lambda t: (math.nan, math.nan), max_s=3.0, fz=lambda t: 0.0)
    assert drill.state == "waiting"
    assert drill.view().targets == ()
