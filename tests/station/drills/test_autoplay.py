"""End to end: the simulated plate, the force pipeline and the AutoPlayer play every drill.

A good player must score better than a poor one on every drill, for each of two seeds, and the
same seed must give the same result.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from station.drills.autoplay import AutoPlayer
from station.drills.view import DrillView, Metronome, Target
from tests.station.drills.scripted import play_simulated

CASES = [("reach", None), ("limits", None), ("symmetry", "left"), ("rhythm", None), ("single-leg-hold", "right")]


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("name, side", CASES)
def test_good_scores_better_than_poor(name, side, seed):
    good = play_simulated(name, "good", seed=seed, stance_side=side)
    poor = play_simulated(name, "poor", seed=seed, stance_side=side)
    assert good.state == "done" and poor.state == "done"
    g, p = good.metrics(), poor.metrics()
    json.dumps(g, allow_nan=False)
    assert g["score"] > p["score"]
    if name == "reach":
        assert g["directional_control_pct"] > p["directional_control_pct"]
        assert g["reaction_time_s"] < p["reaction_time_s"]
        assert g["movement_velocity_mm_s"] > p["movement_velocity_mm_s"]
        assert g["hits"] == g["targets_shown"] == 8
        assert p["misses"] >= 1  # a poor player really misses targets, not only slowly
    elif name == "limits":
        assert g["forward_mm"] > p["forward_mm"] and g["left_mm"] > p["left_mm"]
    elif name == "symmetry":
        assert g["mean_abs_error_pct"] < p["mean_abs_error_pct"]
        assert g["time_within_tolerance_pct"] >= p["time_within_tolerance_pct"]
    elif name == "rhythm":
        assert g["abs_tempo_error_pct"] < 5.0 < p["abs_tempo_error_pct"]
        assert g["off_axis_pct"] < p["off_axis_pct"]
    else:
        assert g["time_in_zone_pct"] > p["time_in_zone_pct"] and g["zone_exits"] < p["zone_exits"]


def test_the_same_seed_plays_the_same_game():
    a = play_simulated("reach", "average", seed=7).metrics()
    b = play_simulated("reach", "average", seed=7).metrics()
    assert a == b


def test_autoplayer_commands():
    player = AutoPlayer(skill="good", rng=np.random.default_rng(0))
    view = DrillView(drill="reach", title="Reach", instruction="", state="running", elapsed_s=1.0, duration_s=10.0,
                     targets=(Target(0.0, 50.0, 20.0, "active"),))
    assert player.commands(view, t_s=1.0, cop_ml_mm=0.0, cop_ap_mm=0.0) == []  # reacting takes time
    later = player.commands(view, t_s=2.0, cop_ml_mm=0.0, cop_ap_mm=0.0)
    assert later and later[0][0] == "behaviour" and later[0][1]["name"] == "lean"
    met = DrillView(drill="rhythm", title="", instruction="", state="running", elapsed_s=0.5, duration_s=10.0,
                    metronome=Metronome(axis="ml", pace_mm=30.0, amplitude_mm=30.0, period_s=2.0, phase=0.25))
    (cmd, params), = player.commands(met, t_s=3.0, cop_ml_mm=0.0, cop_ap_mm=0.0)
    assert cmd == "behaviour" and params["x_mm"] > 20.0
    with pytest.raises(ValueError, match="skill"):
        AutoPlayer(skill="expert", rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="rng"):
        AutoPlayer(skill="good", rng=None)  # type: ignore[arg-type]
