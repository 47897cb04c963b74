"""make_drill and the Drill API, faded feedback, progression and programmes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from station.drills import DRILLS, Limits, cursor_visible, level_params, make_drill, next_level
from station.drills.programme import Programme
from station.drills.view import DrillView
from tests.station.drills.scripted import GEOMETRY, Frame, Path, run, snap


def rng():
    return np.random.default_rng(0)


# -- make_drill -----------------------------------------------------------------------------------------


def test_drills_and_make_drill():
    assert DRILLS == ("reach", "limits", "symmetry", "rhythm", "single-leg-hold")
    for name in DRILLS:
        d = make_drill(name, geometry=GEOMETRY, rng=rng(), stance_side="left")
        assert d.name == name and d.finished is False
        v = d.view()
        assert isinstance(v, DrillView) and v.drill == name and v.state == "waiting"
        meta = d.metadata()
        assert meta["drill"] == name and all(isinstance(v, str) for v in meta.values())
        assert json.loads(meta["drill.params"]) == {}
        m = d.metrics()
        assert m["score"] == 0 and m["level"] == 1
        json.dumps(m, allow_nan=False)


@pytest.mark.parametrize("kwargs, name", [
    ({"name": "dance"}, "name"),
    ({"feedback": "sometimes"}, "feedback"),
    ({"stance_side": "middle"}, "stance_side"),
    ({"level": 11}, "level"),
    ({"level": 0}, "level"),
    ({"params": {"radius": 5}}, "radius"),
    ({"params": {"radius_mm": -5}}, "radius_mm"),
    ({"params": {"rounds": 0}}, "rounds"),
    ({"params": {"level_bounds": [5, 2]}}, "level_bounds"),
    ({"limits": {"forward_mm": 100}}, "limits"),
    ({"rng": 42}, "rng"),
    ({"geometry": None}, "geometry"),
    ({"params": {"delay_min_s": 2.0, "delay_max_s": 1.0}}, "delay_max_s"),
])
def test_make_drill_names_the_bad_argument(kwargs, name):
    args = {"name": "reach", "geometry": GEOMETRY, "rng": rng(), **kwargs}
    drill_name = args.pop("name")
    with pytest.raises(ValueError, match=name):
        make_drill(drill_name, **args)


def test_metadata_records_the_settings():
    lim = Limits(forward_mm=90, backward_mm=60, left_mm=70, right_mm=70)
    d = make_drill("reach", geometry=GEOMETRY, rng=rng(), params={"radius_mm": 15.0}, feedback="intermittent",
                   limits=lim, level=3)
    meta = d.metadata()
    assert meta["drill.feedback"] == "intermittent" and meta["drill.level"] == "3"
    assert json.loads(meta["drill.params"]) == {"radius_mm": 15.0}
    assert Limits.from_dict(json.loads(meta["drill.limits"])) == lim
    resolved = json.loads(meta["drill.resolved_params"])
    assert resolved["radius_mm"] == 15.0 and resolved["distance_pct"] == level_params("reach", 3)["distance_pct"]


def test_abort_keeps_the_rounds_done():
    d = make_drill("symmetry", geometry=GEOMETRY, rng=rng(), params={"ready_s": 0.5, "segment_s": 2.0, "rounds": 3,
                                                                       "summary_s": 0.5})
    run(d, lambda t: (0.0, 0.0), max_s=8.0)  # round 1: 0.5 s ready + 3 splits of 2 s
    events = d.abort("the patient is tired")
    assert d.finished and d.state == "aborted" and events[-1].kind == "aborted"
    m = d.metrics()
    assert m["state"] == "aborted" and m["end_reason"] == "the patient is tired" and m["rounds_completed"] >= 1
    assert d.abort() == [] and d.update(type("F", (), {"t_s": 99.0, "fz_n": 700.0, "cop_ml_mm": 0.0,
                                                       "cop_ap_mm": 0.0})()) == []


def test_frames_out_of_order_are_skipped():
    d = make_drill("reach", geometry=GEOMETRY, rng=rng())
    run(d, lambda t: (0.0, 0.0), max_s=1.0)
    assert d.update(Frame(0.5, 700.0, 0.0, 0.0)) == []
    assert d.skipped_frames == 1


def test_stepping_off_during_a_round_is_lost_balance_and_ends_it():
    d = make_drill("symmetry", geometry=GEOMETRY, rng=rng(), params={"ready_s": 0.5, "segment_s": 5.0, "rounds": 2})
    events = run(d, lambda t: (0.0, 0.0), max_s=2.0)
    for k in range(200, 300):  # then nobody on the plate for 1 s
        events += d.update(Frame(k / 100, 0.0, float("nan"), float("nan")))
    assert any(e.cue == "lost_balance" for e in events)
    assert d.state in ("round_summary", "waiting")
    assert d.metrics()["rounds"][0]["end_reason"] == "stepped off the plate"


# -- faded feedback ----------------------------------------------------------------------------------------


def test_cursor_visibility_schedule():
    # intermittent: 1 s of every 3 s from the start of the round
    sched = [cursor_visible(mode="intermittent", running=True, elapsed_s=e) for e in (0.0, 0.5, 0.99, 1.0, 2.9,
                                                                                      3.0, 3.5, 4.2)]
    assert sched == [True, True, True, False, False, True, True, False]
    assert cursor_visible(mode="intermittent", running=True, elapsed_s=2.5, on_s=2.0, period_s=4.0) is False
    assert all(cursor_visible(mode="continuous", running=True, elapsed_s=e) for e in (0, 1.5, 7))
    assert not any(cursor_visible(mode="summary", running=True, elapsed_s=e) for e in (0, 1.5, 7))
    # outside a round the cursor is always shown
    assert cursor_visible(mode="summary", running=False, elapsed_s=5.0)
    with pytest.raises(ValueError, match="mode"):
        cursor_visible(mode="faded", running=True, elapsed_s=0.0)
    with pytest.raises(ValueError, match="on_s"):
        cursor_visible(mode="intermittent", running=True, elapsed_s=0.0, on_s=5.0, period_s=3.0)


def test_drill_views_follow_the_feedback_mode():
    seen = {}
    for mode in ("continuous", "intermittent", "summary"):
        d = make_drill("symmetry", geometry=GEOMETRY, rng=rng(), feedback=mode,
                       params={"ready_s": 1.0, "segment_s": 10.0, "targets_left_pct": [50]})
        vis = []
        events = []
        for k in range(0, 1000):
            t = k / 100
            events += d.update(Frame(t, 700.0, 0.0, 0.0))
            v = d.view()
            if v.state == "running":
                vis.append((round(v.elapsed_s, 2), v.cursor_visible))
            else:
                assert v.cursor_visible
        seen[mode] = (vis, events)
    assert all(v for _, v in seen["continuous"][0])
    assert not any(v for _, v in seen["summary"][0])
    inter = dict(seen["intermittent"][0])
    assert inter[0.5] and not inter[1.5] and not inter[2.5] and inter[3.5] and not inter[4.5]
    # summary mode: the hit has no sound during the round (knowledge of results afterwards)
    hits = [e for e in seen["summary"][1] if e.kind == "hit"]
    assert hits and all(e.cue is None for e in hits)
    assert all(e.cue == "hit" for e in seen["continuous"][1] if e.kind == "hit")


# -- progression ---------------------------------------------------------------------------------------------


def test_next_level_up_down_and_bounds():
    assert next_level(level=3, success_pct=80.0) == 4
    assert next_level(level=3, success_pct=79.9) == 3
    assert next_level(level=3, success_pct=50.0) == 3
    assert next_level(level=3, success_pct=49.9) == 2
    assert next_level(level=1, success_pct=0.0) == 1
    assert next_level(level=10, success_pct=100.0) == 10
    assert next_level(level=4, success_pct=100.0, bounds=(2, 4)) == 4
    assert next_level(level=2, success_pct=0.0, bounds=(2, 4)) == 2
    assert next_level(level=3, success_pct=float("nan")) == 3
    for kwargs, name in (({"level": 0, "success_pct": 50}, "level"), ({"level": 2, "success_pct": "x"}, "success_pct"),
                         ({"level": 2, "success_pct": 50, "bounds": (3, 1)}, "bounds")):
        with pytest.raises(ValueError, match=name):
            next_level(**kwargs)


def test_level_tables():
    assert level_params("reach", 1) == {"distance_pct": 40.0, "radius_mm": 30.0, "hold_s": 0.5}
    assert level_params("reach", 10) == {"distance_pct": 85.0, "radius_mm": 12.0, "hold_s": 2.0}
    assert level_params("reach", 4)["distance_pct"] == pytest.approx(55.0)
    hard = level_params("single-leg-hold", 10)
    assert hard["half_width_mm"] < level_params("single-leg-hold", 1)["half_width_mm"] and hard["hold_s"] == 30.0
    assert level_params("rhythm", 10)["slow_period_s"] < level_params("rhythm", 1)["slow_period_s"]
    with pytest.raises(ValueError, match="drill"):
        level_params("juggling", 1)


def test_an_adaptive_drill_raises_its_level_after_a_good_round_within_bounds():
    params = {"directions_deg": [0, 90], "order": "fixed", "ready_s": 0.5, "delay_min_s": 0.5, "delay_max_s": 0.5,
              "rounds": 3, "summary_s": 0.5, "level_bounds": [1, 2]}
    d = make_drill("reach", geometry=GEOMETRY, rng=rng(), params=params)
    path = Path()

    def on_events(events, t):
        for e in events:
            if e.kind == "target":
                tg = next(tg for tg in d.view().targets if tg.state == "active")
                path.move(snap(e.t_s + 0.3), (tg.x_mm, tg.y_mm), 150.0)
            elif e.kind in ("hit", "miss"):
                path.move(snap(e.t_s + 0.1), (0.0, 0.0), 150.0)

    events = run(d, path.at, on_events=on_events)
    m = d.metrics()
    assert [r["level"] for r in m["rounds"]] == [1, 2, 2]  # up after 100 %, then held by the bound
    assert [e.message for e in events if e.kind == "level"] == ["Level up: 2."]
    assert m["rounds"][1]["targets"][0]["distance_pct"] == level_params("reach", 2)["distance_pct"]


def test_a_poor_round_lowers_the_level():
    d = make_drill("symmetry", geometry=GEOMETRY, rng=rng(), level=5,
                   params={"ready_s": 0.5, "segment_s": 2.0, "rounds": 2, "summary_s": 0.5, "targets_left_pct": [80]})
    run(d, lambda t: (0.0, 0.0), max_s=20.0)  # stays at 50/50: never within tolerance of 80/20
    assert [r["level"] for r in d.metrics()["rounds"]] == [5, 4]


# -- programmes -------------------------------------------------------------------------------------------


PROGRAMME = {
    "name": "week 2", "level_bounds": [1, 6],
    "items": [
        {"drill": "limits"},
        {"drill": "reach", "rounds": 2, "feedback": "intermittent"},
        {"drill": "symmetry", "duration_s": 60, "stance_side": "left", "params": {"tolerance_pct": 8}},
        {"drill": "single-leg-hold", "rounds": 3, "stance_side": "right", "level": 2},
    ],
}


def test_programme_round_trip_and_drills():
    p = Programme.from_dict(PROGRAMME)
    assert Programme.from_dict(p.to_dict()) == p
    assert [it.drill for it in p.items] == ["limits", "reach", "symmetry", "single-leg-hold"]
    d = p.make_drill(3, geometry=GEOMETRY, rng=rng())
    assert d.name == "single-leg-hold" and d.stance_side == "right" and d.level == 2 and d.params["rounds"] == 3
    s = p.make_drill(2, geometry=GEOMETRY, rng=rng(), level=9)
    assert s.level == 6  # clipped to the programme's bounds
    assert s.params["duration_s"] == 60 and s.params["tolerance_pct"] == 8
    assert p.make_drill(1, geometry=GEOMETRY, rng=rng()).feedback == "intermittent"


@pytest.mark.parametrize("change, message", [
    (lambda d: d["items"].append({"drill": "juggling"}), r"items\[4\]\.drill"),
    (lambda d: d["items"][1].update(duration_s=30), r"items\[1\]: give duration_s or rounds"),
    (lambda d: d["items"][3].pop("stance_side"), r"items\[3\]\.stance_side is required"),
    (lambda d: d["items"][2]["params"].update(radius=3), r"items\[2\]\.params: unknown parameter 'radius'"),
    (lambda d: d["items"][2]["params"].update(tolerance_pct=-3), r"items\[2\]\.params\['tolerance_pct'\]"),
    (lambda d: d["items"][0].update(feedback="loud"), r"items\[0\]\.feedback"),
    (lambda d: d["items"][0].update(level=12), r"items\[0\]\.level"),
    (lambda d: d["items"][0].update(rounds=0), r"items\[0\]\.rounds"),
    (lambda d: d["items"][0].update(colour="red"), r"items\[0\]: unknown key 'colour'"),
    (lambda d: d.update(items=[]), "items must be a non-empty list"),
    (lambda d: d.update(level_bounds=[4, 2]), "level_bounds"),
    (lambda d: d.update(owner="x"), "unknown key 'owner'"),
])
def test_programme_validation_errors(change, message):
    d = json.loads(json.dumps(PROGRAMME))
    change(d)
    with pytest.raises(ValueError, match=message):
        Programme.from_dict(d)


def test_a_time_limited_drill_runs_rounds_until_the_time_is_up():
    d = make_drill("symmetry", geometry=GEOMETRY, rng=rng(),
                   params={"duration_s": 5.0, "ready_s": 0.5, "segment_s": 2.0, "summary_s": 0.5,
                           "targets_left_pct": [50], "adaptive": False})
    run(d, lambda t: (0.0, 0.0), max_s=30.0)
    # rounds of 2 s: the drill stops after the round in which 5 s of running is reached (the third)
    assert d.state == "done" and d.metrics()["rounds_completed"] == 3


def test_a_programme_takes_the_short_name_hold():
    from station.drills.programme import Programme

    prog = Programme.from_dict({"items": [{"drill": "hold", "stance_side": "left", "rounds": 2}]})
    assert prog.items[0].drill == "single-leg-hold"


def test_a_programme_holds_the_pelvis_drills_on_one_leg():
    from station.drills.programme import Programme
    from station.screen.menu import programme_items

    prog = {"items": [{"drill": "reach", "rounds": 2},
                      {"drill": "hip-dip", "stance_side": "right", "rounds": 3},
                      {"drill": "level-pelvis-hold", "stance_side": "left", "duration_s": 120}]}
    assert [i.drill for i in Programme.from_dict(prog).items] == ["reach", "hip-dip", "level-pelvis-hold"]
    with pytest.raises(ValueError, match=r"items\[0\]\.stance_side is required for the hip-dip drill"):
        Programme.from_dict({"items": [{"drill": "hip-dip", "rounds": 3}]})
    # the patient's menu: the pelvis drills only on a station with the sensor, numbered as shown
    with_sensor = programme_items(prog, pelvis=True)
    assert [(t.drill, t.title, t.stance_side) for t in with_sensor] == [
        ("reach", "1. Reach", None), ("hip-dip", "2. Hip dip, right leg", "right"),
        ("level-pelvis-hold", "3. Level pelvis, left leg", "left")]
    # a tile names its own side (the single-leg hold has a tile for each)
    hold = programme_items({"items": [{"drill": "single-leg-hold", "stance_side": "left", "rounds": 1}]})
    assert [t.title for t in hold] == ["1. Hold on left leg"]
    assert "3 rounds, right leg" in with_sensor[1].blurb and "2 min, left leg" in with_sensor[2].blurb
    assert [(t.drill, t.title) for t in programme_items(prog)] == [("reach", "1. Reach")]


def test_the_stored_level_is_the_level_played():
    import numpy as np

    from station.core.geometry import PlateGeometry
    from station.drills import make_drill

    drill = make_drill("reach", geometry=PlateGeometry(), rng=np.random.default_rng(0), level=8,
                       params={"level_bounds": [1, 6]})
    assert drill.level == 6 and drill.metadata()["drill.level"] == "6" and drill.metrics()["start_level"] == 6
