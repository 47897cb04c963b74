"""Scoring of the single-leg test (every contract field), left/right comparison, session summary.

The trials here are exact synthetic recordings (known onset, touchdowns as
steps, hand support as a step of Fz): the values can be checked to the sample.
"""

from __future__ import annotations

import numpy as np
import pytest

from station.core.cop import centre_of_pressure, split_load
from station.core.recording import Recording
from station.protocols.support import FLOOR_PCT
from station.scoring.analyze import AnalysisError, analyze_recording
from station.scoring.scores import (
    ASYMMETRY_FLAG_PCT,
    compare_sides,
    score_single_leg_recording,
    session_summary,
)
from station.signal.metrics import COP_KEYS, cop_metrics
from tests.station.single_leg_trials import GEOMETRY, synthetic_trial

CONTRACT_FIELDS = ["protocol", "stance_side", "sample_rate_hz", "duration_s", "n_samples", "body_weight_n",
                   "onset_s", "hold_time_s", "completed", "touchdowns", "support", "ml_offset_mm", "cop"]


def score(rec: Recording, side: str = "left", lowpass_hz: float | None = None) -> dict:
    return analyze_recording(rec, protocol="single-leg", stance_side=side, lowpass_hz=lowpass_hz)


# -- the contract's fields ------------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["left", "right"])
def test_every_contract_field_with_known_values(side):
    rec, onset = synthetic_trial(stance_side=side, plate=((10.0, 0.5, 40.0),), floor=((20.0, 0.6, 30.0),),
                                 support=((14.0, 3.0, 5.0),), lateral_mm=6.0)
    out = score(rec, side)
    for key in CONTRACT_FIELDS:
        assert key in out, key
    assert list(out)[:2] == ["protocol", "stance_side"]
    assert out["protocol"] == "single-leg" and out["stance_side"] == side
    assert out["sample_rate_hz"] == 80.0 and out["n_samples"] == rec.n_samples
    assert out["duration_s"] == pytest.approx(rec.n_samples / 80.0)
    assert out["body_weight_n"] == pytest.approx(700.0, rel=2e-3)
    assert out["onset_s"] == pytest.approx(onset, abs=0.1)
    assert out["hold_time_s"] == pytest.approx(10.0, abs=0.1)
    assert out["completed"] is False
    tds = out["touchdowns"]
    assert [td["where"] for td in tds] == ["plate", "floor"]
    assert tds[0]["t_s"] == pytest.approx(onset + 10.0, abs=0.02)
    assert tds[0]["duration_s"] == pytest.approx(0.5, abs=0.03)
    assert tds[1]["t_s"] == pytest.approx(onset + 20.0, abs=0.02)
    assert tds[1]["duration_s"] == pytest.approx(0.6, abs=0.03)
    sup = out["support"]
    assert sup["time_s"] == pytest.approx(3.0, abs=0.15)  # a sudden step: its ends are found within 0.1 s
    assert sup["mean_pct_bw"] == pytest.approx(5.0, abs=0.2)
    assert 5.0 - 0.2 <= sup["peak_pct_bw"] <= 5.0 + 0.4
    assert len(sup["episodes"]) == 1 and sup["episodes"][0]["t_s"] == pytest.approx(onset + 14.0, abs=0.1)
    assert out["ml_offset_mm"] == pytest.approx(6.0, abs=0.5)  # lateral = positive, either side
    assert set(out["cop"]) == set(COP_KEYS)
    assert out["hold_s"] == 30.0 and out["end_on_failure"] is False and out["end_reason"] == "hold time reached"
    assert out["warnings"] == [] and out["lowpass_hz"] is None and "norm" not in out


def test_cop_metrics_are_those_of_the_hold_window():
    rec, _ = synthetic_trial(plate=((12.0, 0.4, 50.0),))
    out = score(rec)
    t = rec.t_s
    _, x, y = centre_of_pressure(rec.forces_n, ml_mm=400.0, ap_mm=300.0)
    m = (t >= out["onset_s"] - 1e-9) & (t < out["onset_s"] + out["hold_time_s"] - 1e-9)
    expected = cop_metrics(x[m], y[m], fs_hz=80.0)
    for key in COP_KEYS:
        assert out["cop"][key] == pytest.approx(expected[key], rel=1e-9), key


def test_medial_offset_is_negative_and_drift_is_its_slope():
    rec, onset = synthetic_trial(stance_side="right", lateral_mm=-8.0)
    out = score(rec, "right")
    assert out["ml_offset_mm"] == pytest.approx(-8.0, abs=0.5)
    assert out["completed"] is True and out["hold_time_s"] == 30.0
    # a lateral drift of 0.5 mm/s over the hold (the left foot: lateral is -x)
    rec, onset = synthetic_trial(stance_side="left", lateral_mm=2.0)
    fz, x, y = centre_of_pressure(rec.forces_n, ml_mm=400.0, ap_mm=300.0)
    x = x - np.clip(rec.t_s - onset, 0, None) * 0.5
    drifting = Recording(t_s=rec.t_s, forces_n=split_load(fz, x, y, ml_mm=400.0, ap_mm=300.0), sample_rate_hz=80.0,
                         geometry=GEOMETRY)
    out = score(drifting)
    assert out["ml_offset_drift_mm_s"] == pytest.approx(0.5, abs=0.05)
    assert out["ml_offset_mm"] == pytest.approx(2.0 + 0.5 * 15.0, abs=1.0)


def test_no_support_reports_zeros():
    out = score(synthetic_trial()[0])
    sup = out["support"]
    assert {k: sup[k] for k in ("mean_pct_bw", "peak_pct_bw", "time_s", "episodes")} == {
        "mean_pct_bw": 0.0, "peak_pct_bw": 0.0, "time_s": 0.0, "episodes": []}
    assert sup["detection_limit_pct_bw"] == pytest.approx(FLOOR_PCT)  # a steady synthetic load: the floor
    assert out["touchdowns"] == [] and out["completed"] is True


def test_the_lowpass_changes_the_measures_not_the_detection():
    rec, _ = synthetic_trial(plate=((8.0, 0.5, 40.0),), support=((15.0, 2.0, 4.0),))
    raw, smooth = score(rec, lowpass_hz=None), score(rec, lowpass_hz=10.0)
    for key in ("onset_s", "hold_time_s", "completed", "touchdowns"):
        assert raw[key] == smooth[key]
    assert raw["support"]["time_s"] == smooth["support"]["time_s"]
    # the synthetic sway lies below 2 Hz: the 10 Hz low-pass barely changes it, but it is applied
    assert smooth["cop"] != raw["cop"]
    assert smooth["cop"]["path_length_mm"] == pytest.approx(raw["cop"]["path_length_mm"], rel=0.02)
    assert smooth["lowpass_hz"] == 10.0
    # white noise (HX711-like, on the forces) is what it removes
    noisy = Recording(t_s=rec.t_s, forces_n=rec.forces_n + np.random.default_rng(5).normal(0, 2.0, rec.forces_n.shape),
                      sample_rate_hz=80.0, geometry=GEOMETRY)
    raw, smooth = score(noisy, lowpass_hz=None), score(noisy, lowpass_hz=10.0)
    assert smooth["cop"]["path_length_mm"] < 0.8 * raw["cop"]["path_length_mm"]


def test_a_recording_that_stops_early_is_scored_with_a_warning():
    rec, onset = synthetic_trial(after_s=12.0)
    out = score(rec)
    assert out["completed"] is False
    assert out["hold_time_s"] == pytest.approx(rec.t_s[-1] - out["onset_s"], abs=1e-6)
    assert out["end_reason"].startswith("the frames ended")
    assert any("the recording ends" in w for w in out["warnings"])


def test_age_in_the_metadata_brings_the_norm():
    rec, _ = synthetic_trial(metadata={"age_years": "72"})
    norm = score(rec)["norm"]
    assert norm["age_group"] == "70-79" and norm["norm_hold_s"] == 21.0 and "Springer" in norm["source"]
    bad, _ = synthetic_trial(metadata={"age_years": "old"}, name="age.csv")
    with pytest.raises(AnalysisError, match="age.csv: metadata age_years 'old' is not a number"):
        score(bad)


# -- stance side and refusals ------------------------------------------------------------------------------


def test_stance_side_from_the_metadata():
    rec, _ = synthetic_trial(stance_side="right", metadata={"stance_side": "right"})
    out = analyze_recording(rec, protocol="single-leg", stance_side=None)
    assert out["stance_side"] == "right" and out["onset_s"] is not None
    rec, _ = synthetic_trial(name="noside.csv")
    with pytest.raises(AnalysisError, match=r"^noside\.csv: the single-leg test needs the stance leg: give "
                                            r"--stance-side left or right \(the recording does not say\)$"):
        analyze_recording(rec, protocol="single-leg")


def test_side_given_against_the_metadata_is_warned():
    rec, _ = synthetic_trial(stance_side="left", metadata={"stance_side": "right"})
    out = score(rec, "left")
    assert "the recording says stance_side right; scored as left as asked" in out["warnings"]


def test_a_lift_on_the_wrong_side_is_refused():
    rec, _ = synthetic_trial(stance_side="left", name="wrong.csv")
    with pytest.raises(AnalysisError) as info:
        score(rec, "right")
    message = str(info.value)
    assert message.startswith("wrong.csv: cannot score the single-leg test: the patient stood on the left leg")
    assert "not on the right leg as asked" in message and "\n" not in message


def test_quiet_stance_only_has_no_lift():
    rec, _ = synthetic_trial(quiet_s=30.0, after_s=0.0, transition_s=0.0125, name="quiet.csv")
    rec = Recording(t_s=rec.t_s[:2000], forces_n=rec.forces_n[:2000], sample_rate_hz=80.0, geometry=GEOMETRY,
                    name="quiet.csv")
    with pytest.raises(AnalysisError, match=r"^quiet\.csv: cannot score the single-leg test: no lift-off of the "
                                            r"right foot \(single-leg stance on the left leg\) after the baseline$"):
        score(rec)


def test_nobody_on_the_plate_is_refused():
    rec, _ = synthetic_trial(body_weight_n=5.0, name="empty.csv")
    with pytest.raises(AnalysisError, match=r"^empty\.csv: cannot score the single-leg test: no body-weight "
                                            r"baseline .*Nobody on the plate"):
        score(rec)


def test_lift_before_any_baseline_is_refused():
    rec, _ = synthetic_trial(quiet_s=1.5, name="early.csv")
    with pytest.raises(AnalysisError, match=r"no body-weight baseline \(3 s of quiet two-foot stance before the "
                                            r"lift\): The weight is under the left footprint only"):
        score(rec)


def test_runner_settings_come_from_the_metadata():
    meta = {"single_leg.end_on_failure": "true"}
    rec, onset = synthetic_trial(plate=((6.0, 0.5, 40.0),), floor=((15.0, 0.5, 30.0),), metadata=meta)
    out = score(rec)
    assert out["end_on_failure"] is True and out["end_reason"] == "first failure (end on failure)"
    assert len(out["touchdowns"]) == 1 and out["touchdowns"][0]["duration_s"] is None
    assert out["hold_time_s"] == pytest.approx(6.0, abs=0.1)
    bad, _ = synthetic_trial(metadata={"single_leg.hold_s": "forever"}, name="bad.csv")
    with pytest.raises(AnalysisError, match=r"^bad\.csv: metadata single_leg\.hold_s: expected a number"):
        score(bad)


def test_score_single_leg_recording_is_the_analyze_scorer():
    rec, _ = synthetic_trial(support=((5.0, 2.0, 3.0),))
    direct = score_single_leg_recording(rec, stance_side="left", lowpass_hz=10.0)
    assert {"protocol": "single-leg", "stance_side": "left", **direct} == analyze_recording(
        rec, protocol="single-leg", stance_side="left")


# -- left and right ----------------------------------------------------------------------------------------


def result(side: str, hold: float, velocity: float | None, **more) -> dict:
    return {"protocol": "single-leg", "stance_side": side, "hold_time_s": hold, "completed": hold >= 30.0,
            "touchdowns": [], "support": {"time_s": 0.0}, "ml_offset_mm": 2.0,
            "cop": {"mean_velocity_mm_s": velocity}, **more}


def test_symmetry_index_and_difference():
    c = compare_sides(result("left", 30.0, 20.0), result("right", 21.0, 26.0))
    hold, sway = c["hold_time"], c["sway_velocity"]
    assert hold == {"left_s": 30.0, "right_s": 21.0, "worse_side": "right", "symmetry_index": pytest.approx(0.7),
                    "difference_pct": pytest.approx(30.0), "flagged": True}
    assert sway["worse_side"] == "right" and sway["symmetry_index"] == pytest.approx(1.3)
    assert sway["difference_pct"] == pytest.approx(30.0) and sway["flagged"] is True
    assert c["flagged"] is True and c["flag_pct"] == ASYMMETRY_FLAG_PCT == 16.0


def test_the_16_percent_flag_boundary():
    at = compare_sides(result("left", 25.0, 20.0), result("right", 21.0, 20.0))  # 16.0 % shorter on the right
    assert at["hold_time"]["difference_pct"] == pytest.approx(16.0) and at["hold_time"]["flagged"] is True
    below = compare_sides(result("left", 25.0, 20.0), result("right", 21.1, 20.0))
    assert below["hold_time"]["flagged"] is False and below["flagged"] is False
    sway = compare_sides(result("left", 30.0, 25.0), result("right", 30.0, 29.0))  # 16 % faster on the right
    assert sway["sway_velocity"]["worse_side"] == "right" and sway["sway_velocity"]["flagged"] is True
    assert sway["hold_time"]["worse_side"] is None and sway["hold_time"]["symmetry_index"] == 1.0


def test_comparison_with_unknowns_and_zeros():
    c = compare_sides(result("left", 0.0, None), result("right", 0.0, 30.0))
    assert c["hold_time"]["symmetry_index"] == 1.0 and c["hold_time"]["difference_pct"] == 0.0
    assert c["sway_velocity"]["symmetry_index"] is None and c["flagged"] is False
    c = compare_sides(result("left", 0.0, 10.0), result("right", 5.0, 10.0))
    assert c["hold_time"]["worse_side"] == "left" and c["hold_time"]["symmetry_index"] == 0.0
    assert c["hold_time"]["difference_pct"] == 100.0


def test_session_summary_takes_the_best_trial_per_side():
    trials = [result("left", 12.0, 30.0), result("left", 30.0, 28.0), result("left", 30.0, 22.0),
              result("right", 18.0, 35.0), result("right", 9.0, 40.0)]
    s = session_summary(trials, age_years=66)
    assert s["trials"] == {"left": 3, "right": 2}
    assert s["best"]["left"]["index"] == 2 and s["best"]["left"]["mean_velocity_mm_s"] == 22.0
    assert s["best"]["right"]["index"] == 3 and s["best"]["right"]["hold_time_s"] == 18.0
    assert s["comparison"]["hold_time"]["worse_side"] == "right"
    assert s["comparison"]["hold_time"]["symmetry_index"] == pytest.approx(0.6)
    assert s["norm"]["age_group"] == "60-69" and s["norm"]["expected_to_complete"] is True
    one = session_summary(trials[:2])
    assert one["best"]["right"] is None and one["comparison"] is None and one["norm"] is None


def test_a_touchdown_at_once_gives_a_short_hold_and_json_ready_output():
    import json

    rec, onset = synthetic_trial(floor=((0.05, 0.3, 40.0),))
    out = score(rec, lowpass_hz=10.0)
    assert out["hold_time_s"] < 0.2 and out["touchdowns"][0]["where"] == "floor" and out["completed"] is False
    # a few samples or none: measured unfiltered, or null when fewer than 3
    assert all(v is None or isinstance(v, float) for v in out["cop"].values())
    text = json.dumps(out, allow_nan=False)
    assert "NaN" not in text
