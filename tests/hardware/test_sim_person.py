"""The simulated person: sway statistics, behaviours, scenarios and ground truth (pure model, no plate)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import welch

from hardware.sim.person import BEHAVIOURS, SimPerson
from station.core.cop import GRAVITY_M_S2
from station.core.geometry import PlateGeometry

RATE_HZ = 80.0


def make_person(seed: int = 0, **kwargs) -> SimPerson:
    return SimPerson(rng=np.random.default_rng(seed), rate_hz=RATE_HZ, **kwargs)


def arrays(samples):
    t = np.array([s.t_s for s in samples])
    fz = np.array([s.fz_n for s in samples])
    x = np.array([s.cop_ml_mm for s in samples])
    y = np.array([s.cop_ap_mm for s in samples])
    return t, fz, x, y


def sway_stats(x_mm: np.ndarray, y_mm: np.ndarray, *, rate_hz: float) -> dict[str, float]:
    """RMS (mean removed), mean velocity and share of power below 1 Hz, as the analysis defines them."""
    x = x_mm - x_mm.mean()
    y = y_mm - y_mm.mean()
    path_mm = np.sum(np.hypot(np.diff(x), np.diff(y)))
    f, px = welch(x, fs=rate_hz, nperseg=1024)
    _, py = welch(y, fs=rate_hz, nperseg=1024)
    return {
        "ml_rms_mm": float(np.sqrt(np.mean(x**2))),
        "ap_rms_mm": float(np.sqrt(np.mean(y**2))),
        "velocity_mm_s": float(path_mm / (len(x) / rate_hz)),
        "below_1hz": float((px[f < 1].sum() + py[f < 1].sum()) / (px.sum() + py.sum())),
    }


def quiet_stats(seed: int, *, duration_s: float = 30.0, behaviour: str = "quiet", **params) -> dict[str, float]:
    person = make_person(seed)
    person.behave(behaviour, **params)
    person.run(duration_s=3.0)  # settle (single-leg transition, drift)
    _, _, x, y = arrays(person.run(duration_s=duration_s))
    return sway_stats(x, y, rate_hz=RATE_HZ)


# -- sway ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_quiet_stance_sway_is_realistic(seed):
    s = quiet_stats(seed)
    assert 2.0 <= s["ml_rms_mm"] <= 5.0
    assert 3.0 <= s["ap_rms_mm"] <= 7.0
    assert 5.0 <= s["velocity_mm_s"] <= 15.0
    assert s["below_1hz"] >= 0.9


def test_sway_is_not_white_noise():
    person = make_person(5)
    person.behave("quiet")
    _, _, x, _ = arrays(person.run(duration_s=20.0))
    x = x - x.mean()
    lag1 = np.corrcoef(x[:-1], x[1:])[0, 1]
    assert lag1 > 0.99


def test_single_leg_sways_more_and_faster_and_weak_abductors_more_still():
    seeds = range(3)
    quiet = [quiet_stats(s) for s in seeds]
    single = [quiet_stats(s, behaviour="single_leg", stance_side="left") for s in seeds]
    weak = [quiet_stats(s, behaviour="single_leg", stance_side="left", skill="weak_abductors") for s in seeds]

    def mean(stats, key):
        return float(np.mean([d[key] for d in stats]))

    assert mean(single, "ml_rms_mm") >= 4.0
    assert mean(single, "ml_rms_mm") > 1.5 * mean(quiet, "ml_rms_mm")
    assert mean(single, "velocity_mm_s") > 2.0 * mean(quiet, "velocity_mm_s")
    assert mean(weak, "ml_rms_mm") > 1.4 * mean(single, "ml_rms_mm")
    assert mean(weak, "velocity_mm_s") > mean(single, "velocity_mm_s")


def test_weak_abductors_skill_of_the_person_applies_to_single_leg_stance():
    person = make_person(1, skill="weak_abductors")
    person.behave("single_leg", stance_side="right")
    person.run(duration_s=2.0)
    _, _, x, _ = arrays(person.run(duration_s=20.0))
    # lateral (positive x for the right foot) compensation over the stance foot
    assert np.mean(x) - person.geometry.right_foot_x_mm > 4.0
    assert np.std(x) > 5.0


def test_vertical_force_is_body_weight_with_small_fluctuation():
    person = make_person(2, mass_kg=80.0)
    person.behave("quiet")
    _, fz, _, _ = arrays(person.run(duration_s=30.0))
    bw = 80.0 * GRAVITY_M_S2
    rel = fz / bw - 1.0
    assert abs(rel.mean()) < 0.002
    assert 0.001 < rel.std() < 0.006
    assert np.max(np.abs(rel)) < 0.02


# -- behaviours ---------------------------------------------------------------------


def test_starts_empty():
    s = make_person().step()
    assert s.fz_n == 0.0 and not s.on_plate
    assert math.isnan(s.cop_ml_mm) and math.isnan(s.cop_ap_mm)
    assert s.behaviour == "empty" and s.stance == "none"


def test_step_on_ramps_from_zero_to_body_weight_one_foot_then_the_other():
    person = make_person(3)
    person.run(duration_s=0.5)
    person.behave("step_on", ramp_s=0.45, first_foot="left")
    t, fz, x, _ = arrays(person.run(duration_s=3.0))
    bw = person.body_weight_n
    assert fz[0] == pytest.approx(0.0, abs=1e-9)
    assert np.all(np.diff(fz[t < t[0] + 0.45]) > -0.01 * bw)  # rising (bar the 1 % fluctuation)
    t10 = t[np.argmax(fz > 0.1 * bw)] - t[0]
    t90 = t[np.argmax(fz > 0.9 * bw)] - t[0]
    assert 0.1 <= t90 - t10 <= 0.6
    assert np.mean(fz[t > t[0] + 1.0]) == pytest.approx(bw, rel=0.005)
    # the first foot (left) takes the load first, then the COP moves to the middle
    early = (fz > 0.05 * bw) & (t < t[0] + 0.12)
    assert np.all(x[early] < person.geometry.left_foot_x_mm + 25)
    assert abs(np.mean(x[t > t[0] + 1.0])) < 10
    names = [e.name for e in person.events]
    assert names == ["step_on", "on_plate"]
    assert person.events[1].t_s == pytest.approx(0.5 + 0.45, abs=1.5 / RATE_HZ)
    assert person.behaviour == "quiet" and person.stance == "both"


@pytest.mark.parametrize("side", ["left", "right"])
def test_single_leg_puts_the_cop_under_the_stance_foot(side):
    person = make_person(4)
    person.behave("quiet")
    person.run(duration_s=2.0)
    t0 = person.t_s
    person.behave("single_leg", stance_side=side, transition_s=0.3)
    t, _, x, _ = arrays(person.run(duration_s=6.0))
    foot_x = person.geometry.left_foot_x_mm if side == "left" else person.geometry.right_foot_x_mm
    held = t > t0 + 0.5
    assert abs(np.mean(x[held]) - foot_x) < 15
    # the move takes ~0.3 s: halfway across at about 0.15 s, not before 0.05 s, done by 0.45 s
    crossed = t[np.argmax(np.abs(x - foot_x) < abs(foot_x) / 2)] - t0
    assert 0.05 < crossed < 0.3
    lifted = [e for e in person.events if e.name == "foot_lifted"]
    assert len(lifted) == 1 and lifted[0].params == {"stance_side": side}
    assert lifted[0].t_s == pytest.approx(t0 + 0.3, abs=1.5 / RATE_HZ)
    assert person.stance == side and person.behaviour == "single_leg"


def single_leg_person(seed: int = 6, side: str = "left") -> SimPerson:
    person = make_person(seed)
    person.behave("quiet")
    person.behave("single_leg", stance_side=side)
    person.run(duration_s=2.0)
    return person


def test_touchdown_on_the_plate_moves_the_cop_toward_the_other_footprint_for_its_duration():
    person = single_leg_person()
    t0 = person.t_s
    person.behave("touchdown", where="plate", duration_s=0.4, share_pct=40)
    t, fz, x, _ = arrays(person.run(duration_s=1.5))
    stance_x, other_x = person.geometry.left_foot_x_mm, person.geometry.right_foot_x_mm
    during = (t > t0 + 0.06) & (t < t0 + 0.34)
    after = t > t0 + 0.5
    assert np.all(x[during] > stance_x + 0.3 * (other_x - stance_x))  # 40 % of 200 mm = 80 mm toward the right
    assert np.all(np.abs(x[after] - stance_x) < 35)
    assert np.all(np.abs(fz / person.body_weight_n - 1) < 0.02)  # the weight stays on the plate
    labels = {s.touchdown for s in person.run(duration_s=0.1)}
    assert labels == {""}
    ev = [(e.name, round(e.t_s - t0, 3)) for e in person.events if e.name.startswith("touchdown")]
    assert ev[0] == ("touchdown", 0.0)
    assert ev[1][0] == "touchdown_end" and ev[1][1] == pytest.approx(0.4, abs=1.5 / RATE_HZ)


def test_touchdown_on_the_floor_drops_fz_and_keeps_the_cop_at_the_stance_foot():
    person = single_leg_person(side="right")
    t0 = person.t_s
    person.behave("touchdown", where="floor", duration_s=0.6, share_pct=30)
    samples = person.run(duration_s=1.5)
    t, fz, x, _ = arrays(samples)
    bw = person.body_weight_n
    during = (t > t0 + 0.06) & (t < t0 + 0.54)
    assert np.all(fz[during] < 0.75 * bw)
    assert np.mean(fz[during]) == pytest.approx(0.70 * bw, rel=0.02)
    assert np.all(fz[t > t0 + 0.7] > 0.97 * bw)
    assert np.all(np.abs(x - person.geometry.right_foot_x_mm) < 35)
    assert {s.touchdown for s, keep in zip(samples, during) if keep} == {"floor"}


def test_touchdown_in_two_foot_stance_is_ignored():
    person = make_person()
    person.behave("quiet")
    person.behave("touchdown")
    assert person.events[-1].name == "ignored"
    assert {s.touchdown for s in person.run(duration_s=0.5)} == {""}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hand_support_lowers_fz_by_the_given_share_without_a_cop_jump(seed):
    person = single_leg_person(seed=seed)
    bw = person.body_weight_n
    t0 = person.t_s
    person.behave("hand_support", pct_bw=5.0, duration_s=5.0)
    t, fz, x, _ = arrays(person.run(duration_s=6.0))
    plateau = (t > t0 + 0.4) & (t < t0 + 4.9)
    drop_pct = 100 * (1 - np.mean(fz[plateau]) / bw)
    assert drop_pct == pytest.approx(5.0, abs=0.5)
    assert np.mean(fz[t > t0 + 5.4]) == pytest.approx(bw, rel=0.005)
    assert np.max(np.abs(np.diff(x))) < 2.0  # no COP jump, just sway
    assert [e.name for e in person.events][-2:] == ["hand_support", "support_end"]


def test_hand_support_without_duration_lasts_until_set_to_zero():
    person = single_leg_person()
    person.behave("hand_support", pct_bw=10.0)
    _, fz, _, _ = arrays(person.run(duration_s=3.0))
    assert np.mean(fz[-80:]) < 0.93 * person.body_weight_n
    person.behave("hand_support", pct_bw=0.0)
    _, fz, _, _ = arrays(person.run(duration_s=1.0))
    assert np.mean(fz[-20:]) > 0.98 * person.body_weight_n


def test_lean_approaches_the_commanded_point_smoothly():
    person = make_person(7)
    person.behave("quiet")
    person.run(duration_s=1.0)
    t0 = person.t_s
    person.behave("lean", x_mm=60.0, y_mm=40.0)
    t, _, x, y = arrays(person.run(duration_s=8.0))
    late = t > t0 + 2.5
    assert np.hypot(np.mean(x[late]) - 60, np.mean(y[late]) - 40) < 8.0
    # smooth: halfway there after roughly a third of a second, not in one jump
    assert np.max(np.hypot(np.diff(x), np.diff(y))) < 3.0
    mid = (t > t0 + 0.3) & (t < t0 + 0.5)
    assert 10 < np.mean(x[mid]) < 55
    assert person.behaviour == "lean"


def test_lean_target_is_clipped_to_the_reachable_area():
    person = make_person()
    person.behave("quiet")
    person.lean_to(x_mm=900.0, y_mm=-900.0)
    s = person.step()
    x0, x1, y0, y1 = person.reach_mm
    assert (s.target_ml_mm, s.target_ap_mm) == (x1, y0)
    assert x0 < 0 < x1 and y0 < 0 < y1
    assert x1 <= 0.45 * person.geometry.ml_mm


def test_step_off_returns_fz_to_zero():
    person = make_person(8)
    person.behave("quiet")
    person.run(duration_s=1.0)
    t0 = person.t_s
    person.behave("step_off", ramp_s=0.5)
    samples = person.run(duration_s=1.5)
    t, fz, x, _ = arrays(samples)
    assert fz[0] > 0.95 * person.body_weight_n
    assert np.all(fz[t >= t0 + 0.5] == 0.0)
    assert np.all(np.isnan(x[t >= t0 + 0.5]))
    assert not samples[-1].on_plate and samples[-1].behaviour == "empty"
    assert [e.name for e in person.events][-2:] == ["step_off", "off_plate"]


def test_static_load_is_exact_and_does_not_sway():
    person = make_person()
    person.behave("static_load", mass_kg=60.0, x_mm=-150.0, y_mm=100.0)
    _, fz, x, y = arrays(person.run(duration_s=2.0))
    assert np.all(fz == 60.0 * GRAVITY_M_S2)
    assert np.all(x == -150.0) and np.all(y == 100.0)
    person.behave("static_load", mass_kg=0.0)
    assert person.step().fz_n == 0.0


def test_person_behaviour_changes_mass():
    person = make_person()
    person.behave("quiet")
    person.behave("person", mass_kg=90.0)
    _, fz, _, _ = arrays(person.run(duration_s=5.0))
    assert np.mean(fz) == pytest.approx(90.0 * GRAVITY_M_S2, rel=0.005)


# -- scenario and ground truth ---------------------------------------------------------

BRIEF_SCENARIO = [
    {"t_s": 1.0, "behaviour": "step_on"},
    {"t_s": 6.5, "behaviour": "single_leg", "stance_side": "right"},  # lift the left foot
    {"t_s": 12.3, "behaviour": "touchdown", "where": "plate", "duration_s": 0.4},
    {"t_s": 20.0, "behaviour": "hand_support", "pct_bw": 5, "duration_s": 5},
    {"t_s": 36.0, "behaviour": "step_off"},
]


def test_scenario_runs_its_steps_at_their_times_and_labels_the_truth():
    person = make_person(9)
    person.set_scenario(BRIEF_SCENARIO)
    samples = person.run(duration_s=38.0)
    t, fz, x, _ = arrays(samples)
    by_name = {}
    for e in person.events:
        by_name.setdefault(e.name, e.t_s)
    dt = 1 / RATE_HZ
    assert by_name["step_on"] == pytest.approx(1.0, abs=dt)
    assert by_name["on_plate"] == pytest.approx(1.45, abs=dt)
    assert by_name["single_leg"] == pytest.approx(6.5, abs=dt)
    assert by_name["foot_lifted"] == pytest.approx(6.8, abs=dt)
    assert by_name["touchdown"] == pytest.approx(12.3, abs=dt)
    assert by_name["touchdown_end"] == pytest.approx(12.7, abs=dt)
    assert by_name["hand_support"] == pytest.approx(20.0, abs=dt)
    assert by_name["support_end"] == pytest.approx(25.0, abs=dt)
    assert by_name["step_off"] == pytest.approx(36.0, abs=dt)
    assert by_name["off_plate"] == pytest.approx(36.45, abs=dt)

    def label(at_s):
        s = samples[int(round(at_s * RATE_HZ))]
        return s.behaviour, s.stance, s.touchdown, s.support_n > 0

    assert label(0.5) == ("empty", "none", "", False)
    assert label(3.0) == ("quiet", "both", "", False)
    assert label(10.0) == ("single_leg", "right", "", False)
    assert label(12.5) == ("single_leg", "right", "plate", False)
    assert label(22.0) == ("single_leg", "right", "", True)
    assert label(37.0) == ("empty", "none", "", False)
    # the COP follows: centre, right foot, toward the left during the touchdown
    assert abs(np.nanmean(x[(t > 3) & (t < 6)])) < 10
    assert abs(np.mean(x[(t > 8) & (t < 12)]) - 100) < 15
    assert np.mean(x[(t > 12.4) & (t < 12.6)]) < 60
    assert fz[-1] == 0.0


def test_scenario_times_count_from_when_it_is_given_and_it_replaces_pending_steps():
    person = make_person()
    person.run(duration_s=2.0)
    person.set_scenario([{"t_s": 1.0, "behaviour": "quiet"}, {"t_s": 5.0, "behaviour": "step_off"}])
    person.set_scenario([{"t_s": 0.5, "behaviour": "static_load", "mass_kg": 20}])
    person.run(duration_s=8.0)
    names = [(e.name, e.t_s) for e in person.events]
    assert names[-1][0] == "static_load" and names[-1][1] == pytest.approx(2.5, abs=1 / RATE_HZ)
    assert "quiet" not in [n for n, _ in names] and person.pending_steps == 0


def test_same_seed_same_person_and_different_seed_different():
    def trace(seed):
        person = make_person(seed)
        person.set_scenario(BRIEF_SCENARIO[:3])
        return [(s.fz_n, s.cop_ml_mm, s.cop_ap_mm) for s in person.run(duration_s=14.0)]

    a, b, c = trace(11), trace(11), trace(12)
    assert np.array_equal(np.array(a), np.array(b), equal_nan=True)
    assert not np.array_equal(np.array(a), np.array(c), equal_nan=True)


def test_events_are_plain_data():
    person = make_person()
    person.behave("single_leg", stance_side="left")
    person.run(duration_s=0.5)
    docs = [e.to_dict() for e in person.events]
    assert docs[0] == {"t_s": 0.0, "name": "single_leg",
                       "params": {"stance_side": "left", "transition_s": 0.3, "skill": None}}
    assert docs[1] == {"t_s": 0.0, "name": "on_plate", "params": {}}
    assert docs[2]["name"] == "foot_lifted"


def test_feet_follow_the_geometry():
    person = make_person(geometry=PlateGeometry(ml_mm=500.0, ap_mm=300.0, feet_ml_mm=300.0))
    person.behave("single_leg", stance_side="left", transition_s=0.0)
    person.run(duration_s=1.0)
    _, _, x, _ = arrays(person.run(duration_s=5.0))
    assert abs(np.mean(x) + 150.0) < 15


# -- errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("jump", {}, "behaviour must be one of"),
        ("single_leg", {}, "missing parameter 'stance_side'"),
        ("single_leg", {"stance_side": "middle"}, "stance_side must be one of"),
        ("single_leg", {"stance_side": "left", "side": "left"}, "unknown parameter 'side'"),
        ("touchdown", {"duration_s": -1}, "duration_s must be between"),
        ("touchdown", {"where": "table"}, "where must be one of"),
        ("hand_support", {"pct_bw": "5"}, "pct_bw must be a number"),
        ("lean", {"x_mm": True, "y_mm": 0}, "x_mm must be a number"),
        ("static_load", {"mass_kg": 20, "x_mm": 250}, "x_mm must lie between the cells"),
        ("static_load", {"mass_kg": 20, "y_mm": -151}, "y_mm must lie between the cells"),
    ],
)
def test_bad_behaviours_are_refused_naming_the_argument(name, params, message):
    person = make_person()
    with pytest.raises(ValueError, match=message):
        person.behave(name, **params)


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ({"t_s": 1, "behaviour": "quiet"}, "steps must be a list"),
        ([{"behaviour": "quiet"}], "scenario step 0 must have 't_s'"),
        ([{"t_s": 1, "behaviour": "quiet"}, {"t_s": -1, "behaviour": "quiet"}], "scenario step 1: t_s"),
        ([{"t_s": 1, "behaviour": "touchdown", "share": 3}], "scenario step 0: touchdown: unknown parameter 'share'"),
        (["quiet"], "scenario step 0 must be a dict"),
    ],
)
def test_bad_scenarios_are_refused_naming_the_step(steps, message):
    with pytest.raises(ValueError, match=message):
        make_person().set_scenario(steps)


def test_constructor_checks_its_arguments():
    with pytest.raises(TypeError, match="rng"):
        SimPerson(rng=0)
    with pytest.raises(ValueError, match="mass_kg"):
        make_person(mass_kg=5)
    with pytest.raises(ValueError, match="skill"):
        make_person(skill="clumsy")
    with pytest.raises(ValueError, match="rate_hz"):
        SimPerson(rng=np.random.default_rng(0), rate_hz=0)


def test_every_behaviour_runs_from_every_posture():
    """No behaviour crashes whatever the person is doing (each with its required parameters)."""
    required = {
        "lean": {"x_mm": 30.0, "y_mm": -20.0},
        "single_leg": {"stance_side": "left"},
        "hand_support": {"pct_bw": 8.0},
        "static_load": {"mass_kg": 40.0},
    }
    for first in BEHAVIOURS:
        for second in BEHAVIOURS:
            person = make_person()
            person.behave("quiet")
            person.behave(first, **required.get(first, {}))
            person.run(duration_s=0.2)
            person.behave(second, **required.get(second, {}))
            for s in person.run(duration_s=0.8):
                assert s.fz_n >= 0.0 and math.isfinite(s.fz_n)
                assert s.on_plate == (s.fz_n > 0)
                assert math.isfinite(s.cop_ml_mm) == (s.fz_n > 0)
