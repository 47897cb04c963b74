"""The pelvis drills (issue 14, item 5): hip dip and raise, the level-pelvis hold.

Closed-form pelvis traces fed with the frames (repetitions, range, control, the
missing sensor, both sides, the faded feedback), the simulated pelvis's
voluntary moves, the simulated patient good against poor, and the command's JSON.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pytest

from hardware.sim.pelvis import SimulatedPelvis
from station.commands.cli import main
from station.drills import make_drill
from station.drills.autoplay import AutoPlayer
from station.drills.catalogue import ALL_DRILLS, DRILLS, PELVIS_DRILLS, needs_pelvis
from station.drills.pelvis import (
    BAR_PCT_PER_DEG,
    PelvisFed,
    bars_target_drop_deg,
    excursion_ratio,
    lifted_drop_deg,
    pelvis_bars,
)
from tests.station.drills.scripted import BODY_N, GEOMETRY, Frame

FS = 100.0
LEVEL_DEG = 1.3  # the pelvis's obliquity on both feet (a belt a little askew): every drop is measured from it


@dataclass(frozen=True)
class PelvisFrame:
    """A recording's row: the frame carries its pelvis angle."""

    t_s: float
    fz_n: float
    cop_ml_mm: float
    cop_ap_mm: float
    pelvis_obliquity_deg: float


def dips(depth: float, *, t0: float = 4.0, n: int = 20, back: float = 0.0, wobble: float = 0.0):
    """The free side's drop: level until ``t0``, then ``n`` cycles of 3 s: 0.5 s level, 1 s down to ``depth``
    (a half cosine), 1 s back up to ``back``, 0.5 s still; ``wobble`` adds a bump on the way up."""
    def drop(t: float) -> float:
        if t < t0:
            return 0.0
        k, u = divmod(t - t0, 3.0)
        if k >= n:
            return back
        if u < 0.5:
            return 0.0 if k == 0 else back
        if u < 1.5:
            start = 0.0 if k == 0 else back
            return start + (depth - start) * (1 - math.cos(math.pi * (u - 0.5))) / 2
        if u < 2.5:
            v = u - 1.5
            bump = wobble * math.sin(math.pi * (v - 0.3) / 0.3) if 0.3 <= v < 0.6 else 0.0
            return back + (depth - back) * (1 + math.cos(math.pi * v)) / 2 + bump
        return back
    return drop


def play(drill, drop, *, side: str = "left", level: float = LEVEL_DEG, max_s: float = 120.0, by_argument=False,
         pelvis=True, gap=None):
    """Feed the drill: both feet at the centre until 3 s, then the COP over the ``side`` foot; the pelvis's
    obliquity from the drop of the free side (standing on the left, the right side drops: the obliquity falls)."""
    foot = GEOMETRY.left_foot_x_mm if side == "left" else GEOMETRY.right_foot_x_mm
    events = []
    for k in range(int(max_s * FS)):
        t = k / FS
        x = 0.0 if t < 3.0 else foot
        d = drop(t)
        obliquity = level - d if side == "left" else level + d
        if gap is not None and gap[0] <= t < gap[1]:
            obliquity = math.nan
        if not pelvis:
            events += drill.update(Frame(t, BODY_N, x, 0.0))
        elif by_argument:
            events += drill.update(Frame(t, BODY_N, x, 0.0), obliquity)
        else:
            events += drill.update(PelvisFrame(t, BODY_N, x, 0.0, obliquity))
        if drill.finished:
            break
    return events


def hip_dip(side: str = "left", **params):
    return make_drill("hip-dip", geometry=GEOMETRY, rng=np.random.default_rng(0), stance_side=side, level=1,
                      params={"rounds": 1, **params})


def return_time(depth: float, return_deg: float) -> float:
    """From the deepest point of a half-cosine rise (1 s) to ``return_deg``."""
    return math.acos(2 * return_deg / depth - 1) / math.pi


# -- hip dip and raise -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("by_argument", [False, True])
def test_hip_dips_are_counted_with_their_range_and_control(side, by_argument):
    drill = hip_dip(side, reps=5)
    events = play(drill, dips(4.0), side=side, by_argument=by_argument)
    m = drill.metrics()
    assert m["state"] == "done" and m["rounds"][0]["end_reason"] == "all repetitions done"
    assert m["reps_done"] == 5 and m["missed_shallow"] == 0 and m["missed_no_return"] == 0
    assert m["success_pct"] == 100.0
    # range: the deepest smoothed drop (a 0.15 s mean takes 0.5 % off a half-cosine's peak)
    assert m["dip_mean_deg"] == pytest.approx(4.0, abs=0.05) and m["dip_max_deg"] == pytest.approx(4.0, abs=0.05)
    # control: from the deepest point back to within return_deg (1.5 at level 1) of level
    assert m["return_mean_s"] == pytest.approx(return_time(4.0, 1.5), abs=0.03)
    assert m["excursion_ratio_mean"] == pytest.approx(1.0, abs=0.02)  # one smooth move down, one up
    assert m["rounds"][0]["pelvis_level_deg"] == pytest.approx(LEVEL_DEG)
    hits = [e for e in events if e.kind == "hit"]
    assert len(hits) == 5 and all(e.cue == "hit" for e in hits)
    assert m["score"] == sum(5 + min(k, 5) for k in range(5))
    # each repetition: counted on the way up, 3 s apart
    assert np.diff([e.t_s for e in hits]) == pytest.approx(3.0, abs=0.02)


def test_a_wobbly_return_scores_worse_control():
    clean, wobbly = hip_dip(reps=3), hip_dip(reps=3)
    play(clean, dips(4.0))
    play(wobbly, dips(4.0, wobble=1.5))  # on the way up, the pelvis sinks back before it rises again
    assert wobbly.metrics()["reps_done"] == 3
    assert clean.metrics()["excursion_ratio_mean"] < 1.01 < 1.08 < wobbly.metrics()["excursion_ratio_mean"]


def test_excursion_ratio_closed_form():
    assert excursion_ratio(np.array([0.0, 2.0, 4.0, 3.0, 1.0])) == pytest.approx(1.0)
    # down 4, up 2, down 2, up 4: 12 of movement for 8 needed
    assert excursion_ratio(np.array([0.0, 4.0, 2.0, 4.0, 0.0])) == pytest.approx(1.5)
    assert math.isnan(excursion_ratio(np.array([1.0]))) and math.isnan(excursion_ratio(np.array([0.0, 0.0])))


def test_a_dip_short_of_the_depth_is_a_miss():
    drill = hip_dip(reps=5, dip_timeout_s=2.0, max_set_s=20.0)
    events = play(drill, dips(1.8))  # min_depth_deg is 2 at level 1
    m = drill.metrics()
    assert m["state"] == "done" and m["rounds"][0]["end_reason"] == "set time reached"
    assert m["reps_done"] == 0 and m["missed_shallow"] >= 4 and m["success_pct"] == 0.0
    assert m["dip_mean_deg"] is None and m["return_mean_s"] is None
    assert any(e.kind == "miss" and "deep" in e.message for e in events)


def test_a_dip_not_back_to_level_is_a_miss_and_blocks_the_next():
    drill = hip_dip(reps=5, return_timeout_s=2.0, max_set_s=20.0)
    play(drill, dips(4.0, n=1, back=2.5))  # back to 2.5 degrees below level only (return_deg: 1.5)
    m = drill.metrics()
    assert m["reps_done"] == 0 and m["missed_no_return"] == 1 and m["missed_shallow"] == 0
    assert drill.metrics()["rounds"][0]["end_reason"] == "set time reached"


def test_the_hysteresis_counts_one_repetition_per_dip():
    # a dip that hovers around the depth threshold (2 +- 0.3) and the level threshold counts once
    def drop(t):
        if t < 4.0 or t > 12.0:
            return 0.0
        return 2.0 + 0.3 * math.sin(2 * math.pi * 2.0 * t) if t < 8.0 else 1.0 - 0.2 * math.sin(2 * math.pi * t)
    drill = hip_dip(reps=5, max_set_s=20.0, return_timeout_s=30.0, dip_timeout_s=30.0)
    play(drill, drop)
    assert drill.metrics()["reps_done"] == 1


def test_the_free_side_rising_is_no_dip():
    # standing on the right leg, the left side must drop: the obliquity rises. Here it falls: the left side rises.
    drill = hip_dip("right", reps=3, max_set_s=15.0)
    play(drill, lambda t: -dips(4.0)(t), side="right")
    assert drill.metrics()["reps_done"] == 0


def test_a_gap_in_the_pelvis_is_counted_and_judged_on_neither_side():
    drill = hip_dip(reps=3)
    play(drill, dips(4.0), gap=(4.2, 4.7))  # in the still part of the first cycle
    m = drill.metrics()
    assert m["reps_done"] == 3 and m["pelvis_gap_s"] == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("name", ["hip-dip", "level-pelvis-hold"])
def test_without_the_pelvis_sensor_the_drill_does_not_start(name):
    with pytest.raises(ValueError, match="needs the pelvis sensor"):
        make_drill(name, geometry=GEOMETRY, rng=np.random.default_rng(0), stance_side="left", pelvis_sensor=False)
    # a sensor not known to be missing (a recording): no angle while the patient stands ready -> not started
    drill = make_drill(name, geometry=GEOMETRY, rng=np.random.default_rng(0), stance_side="left")
    events = play(drill, dips(4.0), pelvis=False)
    assert drill.state == "aborted" and "pelvis sensor" in drill.end_reason
    assert drill.metrics()["rounds_completed"] == 0
    assert events[-1].kind == "aborted" and "pelvis sensor" in events[-1].message
    assert events[-1].t_s == pytest.approx(2.0)  # at the end of the ready phase
    drill = make_drill(name, geometry=GEOMETRY, rng=np.random.default_rng(0), stance_side="left")
    play(drill, dips(4.0), gap=(0.0, 3.0))  # NaN all through the ready phase: the same
    assert drill.state == "aborted"


def test_the_catalogue_says_which_drills_need_the_sensor():
    assert PELVIS_DRILLS == ("hip-dip", "level-pelvis-hold") and ALL_DRILLS == DRILLS + PELVIS_DRILLS
    assert all(needs_pelvis(n) for n in PELVIS_DRILLS) and not any(needs_pelvis(n) for n in DRILLS)
    # the other drills ignore the pelvis and do not mind its absence
    make_drill("reach", geometry=GEOMETRY, rng=np.random.default_rng(0), pelvis_sensor=False)


@pytest.mark.parametrize(("params", "match"), [
    ({"reps": 0}, r"params\['reps'\]"),
    ({"min_depth_deg": 1.0, "return_deg": 1.0}, "must be below"),
    ({"return_deg": 3.0}, "must be below"),  # above level 1's min_depth_deg (2)
    ({"smooth_s": -1}, r"params\['smooth_s'\]"),
    ({"dip_timeout_s": "5"}, "must be a number"),
])
def test_hip_dip_parameters_are_checked(params, match):
    with pytest.raises(ValueError, match=match):
        hip_dip(**params)


def test_hip_dip_thresholds_are_checked_at_every_level_it_may_reach():
    # return_deg 2.2 is below the depth from level 3 up, but an adaptive drill may go down to level 1 (2 degrees)
    with pytest.raises(ValueError, match="must be below"):
        make_drill("hip-dip", geometry=GEOMETRY, rng=np.random.default_rng(0), stance_side="left", level=3,
                   params={"return_deg": 2.2})
    make_drill("hip-dip", geometry=GEOMETRY, rng=np.random.default_rng(0), stance_side="left", level=3,
               params={"return_deg": 2.2, "level_bounds": [3, 10]})


def test_hip_dip_defaults_three_sets_of_fifteen():
    drill = make_drill("hip-dip", geometry=GEOMETRY, rng=np.random.default_rng(0), stance_side="left")
    assert drill.params["rounds"] == 3 and drill.params["reps"] == 15
    with pytest.raises(ValueError, match="stance_side"):
        make_drill("hip-dip", geometry=GEOMETRY, rng=np.random.default_rng(0))


def test_hip_dip_view_uses_the_bars_and_the_zone():
    drill = hip_dip(reps=5)
    seen = []

    def on(t):
        v = drill.view()
        seen.append((t, v))

    drop = dips(4.0)
    for k in range(int(12 * FS)):
        t = k / FS
        x = 0.0 if t < 3.0 else GEOMETRY.left_foot_x_mm
        drill.update(Frame(t, BODY_N, x, 0.0), LEVEL_DEG - drop(t))
        on(t)
    running = [v for t, v in seen if v.state == "running"]
    assert all(v.bars is not None and v.zone is not None for v in running)
    targets = {round(bars_target_drop_deg(v.bars, "left"), 3) for v in running}
    assert targets == {0.0, 3.0}  # level, then the dip's depth (min_depth_deg + 1)
    deepest = max(v.bars.left_pct for v in running)  # the right (free) side's bar is 100 - left
    assert 100 - deepest == pytest.approx(50 - BAR_PCT_PER_DEG * 4.0, abs=0.3)


def test_pelvis_bars_and_the_drop():
    assert lifted_drop_deg(-2.0, level_deg=1.0, stance_side="left") == 3.0
    assert lifted_drop_deg(4.0, level_deg=1.0, stance_side="right") == 3.0
    with pytest.raises(ValueError):
        lifted_drop_deg(0.0, level_deg=0.0, stance_side="both")
    for side in ("left", "right"):
        b = pelvis_bars(drop_deg=2.0, target_drop_deg=3.0, tolerance_deg=1.0, stance_side=side, within=False)
        free = b.left_pct if side == "right" else 100 - b.left_pct
        assert free == 40.0 and b.tolerance_pct == 5.0
        assert bars_target_drop_deg(b, side) == pytest.approx(3.0)
    level = pelvis_bars(drop_deg=math.nan, target_drop_deg=0.0, tolerance_deg=1.0, stance_side="left", within=False)
    assert level.left_pct == 50.0 and level.target_left_pct == 50.0


def test_pelvis_fed_gives_the_sensor_value_with_each_frame():
    class Lookup:
        def at(self, t):
            return math.nan if t > 5.0 else LEVEL_DEG - dips(4.0)(t)

        def ready(self, t):
            return t <= 5.0

        def latest(self):
            return 0.5

    drill = PelvisFed(hip_dip(reps=5), Lookup())
    for k in range(int(6 * FS)):
        t = k / FS
        drill.update(Frame(t, BODY_N, 0.0 if t < 3.0 else GEOMETRY.left_foot_x_mm, 0.0))
    assert drill.state == "running" and drill.name == "hip-dip"
    assert drill.pelvis_deg == 0.5  # the sample not there yet: the newest one


# -- the level-pelvis hold -----------------------------------------------------------------------------------------


def level_hold(feedback="continuous", side="left", **params):
    return make_drill("level-pelvis-hold", geometry=GEOMETRY, rng=np.random.default_rng(0), stance_side=side,
                      level=1, feedback=feedback, params={"rounds": 1, **params})


@pytest.mark.parametrize("side", ["left", "right"])
def test_level_pelvis_hold_scores_the_time_within_the_tolerance(side):
    drill = level_hold(side=side)  # hold 10 s, tolerance 2 degrees at level 1
    # level on both feet (the ready phase), then the free side 0.5 degrees low, 3 degrees from 6 s to 9 s
    play(drill, lambda t: 0.0 if t < 3.0 else 3.0 if 6.0 <= t < 9.0 else 0.5, side=side)
    m = drill.metrics()
    r = m["rounds"][0]
    assert m["state"] == "done" and r["hold_s"] == 10.0 and r["tolerance_deg"] == 2.0
    # the hold runs from 3 s (the COP in the box) to 13 s; the smoothed drop is out for 3 s
    assert r["pelvis_within_s"] == pytest.approx(7.0, abs=0.1)
    assert r["pelvis_within_pct"] == pytest.approx(70.0, abs=1.0) and r["success_pct"] == r["pelvis_within_pct"]
    assert r["pelvis_exits"] == 1 and r["pelvis_longest_within_s"] == pytest.approx(4.0, abs=0.1)
    assert r["drop_max_deg"] == pytest.approx(3.0, abs=0.01)
    assert r["drop_mean_deg"] == pytest.approx(0.5 + 0.3 * 2.5, abs=0.05)
    assert r["time_in_zone_pct"] == pytest.approx(100.0)  # the box's measures are kept
    assert m["score"] == 7  # no 5 s level stretch: only the time within, in tenths


def test_level_pelvis_hold_hits_count_the_pelvis_and_respect_the_faded_feedback():
    for feedback in ("continuous", "intermittent", "summary"):
        drill = level_hold(feedback)
        views = []
        events = []
        for k in range(int(20 * FS)):
            t = k / FS
            events += drill.update(PelvisFrame(t, BODY_N, 0.0 if t < 3.0 else GEOMETRY.left_foot_x_mm, 0.0,
                                               LEVEL_DEG))
            views.append(drill.view())
            if drill.finished:
                break
        hits = [e for e in events if e.kind == "hit"]
        assert len(hits) == 1  # 5 s level in the 10 s hold (the round ends at 10)
        assert drill.metrics()["rounds"][0]["pelvis_within_pct"] == pytest.approx(100.0, abs=0.5)
        running = [v for v in views if v.state == "running"]
        assert all(v.bars is not None and v.bars.within for v in running[20:])
        shown = {v.cursor_visible for v in running}
        assert shown == {"continuous": {True}, "intermittent": {True, False}, "summary": {False}}[feedback]
        assert (hits[0].cue is None) == (feedback == "summary")  # knowledge of results only after the round


# -- the simulated pelvis and the simulated patient -------------------------------------------------------------


def test_simulated_pelvis_moves_on_command():
    from hardware.sim.population import draw_pelvis

    pelvis = SimulatedPelvis(traits=draw_pelvis(np.random.default_rng(1), condition="weak_abductors",
                                                compensates=False))
    with pytest.raises(ValueError, match="single_leg"):
        pelvis.command("drop_to", at_s=0.0, drop_deg=3.0)
    pelvis.command("single_leg", at_s=1.0, stance_side="left", transition_s=0.3)
    own = pelvis.drop_deg(5.0)
    assert own > 2.0  # weak abductors: the free side drops
    pelvis.command("drop_to", at_s=5.0, drop_deg=0.0, ramp_s=1.0)  # lifted back to level
    pelvis.command("drop_to", at_s=8.0, drop_deg=4.0, ramp_s=1.0)
    assert pelvis.drop_deg(5.0) == pytest.approx(own)
    assert pelvis.drop_deg(5.5) == pytest.approx(own / 2)  # half way along the S-curve
    assert pelvis.drop_deg(7.0) == pytest.approx(0.0)
    assert pelvis.drop_deg(10.0) == pytest.approx(4.0)
    with pytest.raises(ValueError):
        pelvis.command("drop_to", at_s=10.0, drop_deg=math.nan)
    pelvis.command("single_leg", at_s=20.0, stance_side="left")  # a new stance forgets the moves
    assert pelvis.drop_deg(40.0) > 2.0


def test_the_player_moves_the_pelvis_to_the_target_shown():
    drill = hip_dip(reps=5)
    player = AutoPlayer(skill="good", rng=np.random.default_rng(1), geometry=GEOMETRY)
    commands = []
    for k in range(int(8 * FS)):
        t = k / FS
        drill.update(Frame(t, BODY_N, 0.0 if t < 3.0 else GEOMETRY.left_foot_x_mm, 0.0), LEVEL_DEG)
        commands += player.commands(drill.view(), t_s=t, cop_ml_mm=0.0, cop_ap_mm=0.0)
    pelvis = [p for name, p in commands if name == "pelvis"]
    assert pelvis[0]["command"] == "single_leg" and pelvis[0]["stance_side"] == "left"
    drops = [p["drop_deg"] for p in pelvis if p["command"] == "drop_to"]
    assert drops and 3.0 * 1.05 <= drops[-1] <= 3.0 * 1.35  # the dip shown (3 degrees), a little deeper


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.count("\n") == 1
    return json.loads(out)


def test_autoplay_hip_dip_good_against_poor(capsys):
    good, poor = ([run_cli(capsys, "drill", "hip-dip", "--plate", "simulated", "--autoplay", "--duration-s", "30",
                           "--json", "--seed", str(seed), "--skill", skill, "--rounds", "1")
                   for seed in (3, 4, 5)] for skill in ("good", "poor"))
    for r in good:
        assert r["reps_done"] == 15 and r["missed_shallow"] + r["missed_no_return"] == 0 and r["success_pct"] == 100
        assert r["autoplay"]["pelvis"] == {"sensor": "simulated", "strategy": "rise"}
        assert 3.0 <= r["dip_mean_deg"] <= 5.0 and r["return_mean_s"] < 1.0
    for r in poor:
        assert r["missed_shallow"] + r["missed_no_return"] >= 3 and r["success_pct"] < 80
        assert r["autoplay"]["pelvis"]["strategy"] == "drop"
    assert np.mean([r["success_pct"] for r in poor]) < 70
    assert np.mean([r["dip_mean_deg"] for r in poor]) < np.mean([r["dip_mean_deg"] for r in good])
    assert np.mean([r["return_mean_s"] for r in poor]) > np.mean([r["return_mean_s"] for r in good])


def test_autoplay_level_pelvis_hold_good_against_poor(capsys):
    good, poor = ([run_cli(capsys, "drill", "level-pelvis-hold", "--plate", "simulated", "--autoplay",
                           "--duration-s", "20", "--json", "--seed", str(seed), "--skill", skill)
                   for seed in (3, 4, 5)] for skill in ("good", "poor"))
    assert all(r["pelvis_within_pct"] >= 95 for r in good)
    assert np.mean([r["pelvis_within_pct"] for r in poor]) < 80
    assert np.mean([r["drop_mean_deg"] for r in poor]) > 1.0 > np.mean([r["drop_mean_deg"] for r in good])


def test_the_command_plays_a_pelvis_drill_and_prints_its_json(capsys):
    argv = ("drill", "hip-dip", "--plate", "simulated", "--autoplay", "--duration-s", "10", "--json", "--seed", "8",
            "--side", "right", "--rounds", "1")
    r = run_cli(capsys, *argv)
    assert r["drill"] == "hip-dip" and r["state"] == "done" and r["stance_side"] == "right"
    for key in ("reps_done", "reps_target", "missed_shallow", "missed_no_return", "dip_mean_deg", "dip_max_deg",
                "return_mean_s", "excursion_ratio_mean", "pelvis_gap_s", "score", "success_pct", "rounds"):
        assert key in r, key
    assert r["reps_target"] == 15 and len(r["rounds"][0]["reps"]) == r["reps_done"]
    assert set(r["autoplay"]) >= {"skill", "seed", "realtime", "plate_time_s", "wall_time_s", "frames", "cues",
                                  "pelvis"}
    again = run_cli(capsys, *argv)
    for x in (r, again):
        del x["autoplay"]["wall_time_s"]
    assert again == r
    # the other drills' output has no pelvis
    other = run_cli(capsys, "drill", "hold", "--plate", "simulated", "--autoplay", "--duration-s", "5", "--json",
                    "--seed", "1", "--rounds", "1")
    assert "pelvis" not in other["autoplay"]
