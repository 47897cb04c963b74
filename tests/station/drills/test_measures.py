"""The drill metrics against hand-computed and closed-form values, limit cases and bad arguments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from station.drills import measures as m

FS = 100.0


def straight_move(*, rest_s: float, direction_deg: float, distance_mm: float, speed_mm_s: float,
                  total_s: float = 3.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rest at the origin until ``rest_s`` (a sample time), then a straight move at constant speed, then rest."""
    t = np.arange(int(total_s * FS)) / FS
    ux, uy = m.unit_vector(direction_deg=direction_deg)
    r = np.clip((t - rest_s) * speed_mm_s, 0.0, distance_mm)
    return t, ux * r, uy * r


def test_unit_vector_is_exact_on_the_axes():
    assert m.unit_vector(direction_deg=0) == (0.0, 1.0)
    assert m.unit_vector(direction_deg=90) == (1.0, 0.0)
    assert m.unit_vector(direction_deg=180) == (0.0, -1.0)
    assert m.unit_vector(direction_deg=270) == (-1.0, 0.0)
    ux, uy = m.unit_vector(direction_deg=45)
    assert ux == pytest.approx(math.sqrt(0.5)) and uy == pytest.approx(math.sqrt(0.5))


def test_straight_move_to_the_target():
    # rest 0.5 s, then 80 mm forward at 100 mm/s (0.8 s), then still; limit 100 mm forward
    t, x, y = straight_move(rest_s=0.5, direction_deg=0, distance_mm=80.0, speed_mm_s=100.0)
    out = m.reach_measures(t_s=t, cop_ml_mm=x, cop_ap_mm=y, direction_deg=0, limit_mm=100.0)
    assert out["reaction_time_s"] == pytest.approx(0.5, abs=1e-9)       # exactly the scripted onset
    assert out["movement_velocity_mm_s"] == pytest.approx(100.0, rel=1e-9)  # 0.9 * 80 mm / 0.72 s
    assert out["directional_control_pct"] == pytest.approx(100.0, abs=1e-9)
    assert out["endpoint_excursion_pct"] == pytest.approx(80.0, abs=1e-9)
    assert out["max_excursion_pct"] == pytest.approx(80.0, abs=1e-9)
    assert (out["endpoint_ml_mm"], out["endpoint_ap_mm"]) == pytest.approx((0.0, 80.0))


@pytest.mark.parametrize("direction_deg", [45.0, 90.0, 135.0, 225.0, 315.0])
def test_straight_move_any_direction_gives_full_directional_control(direction_deg):
    t, x, y = straight_move(rest_s=0.3, direction_deg=direction_deg, distance_mm=60.0, speed_mm_s=80.0)
    out = m.reach_measures(t_s=t, cop_ml_mm=x, cop_ap_mm=y, direction_deg=direction_deg, limit_mm=120.0)
    assert out["directional_control_pct"] == pytest.approx(100.0, abs=1e-6)
    assert out["reaction_time_s"] == pytest.approx(0.3, abs=1e-9)
    assert out["endpoint_excursion_pct"] == pytest.approx(50.0, abs=1e-6)


def test_move_45_degrees_off_axis_gives_zero_directional_control():
    # the target is forward (0 deg); the COP goes straight at 45 deg: on-axis and off-axis
    # movement are equal (d / sqrt 2 each), so (on - off) / on = 0 %
    t, x, y = straight_move(rest_s=0.4, direction_deg=45, distance_mm=70.0, speed_mm_s=100.0)
    on, off = m.axis_path_lengths_mm(cop_ml_mm=x, cop_ap_mm=y, direction_deg=0)
    assert on == pytest.approx(70.0 / math.sqrt(2)) and off == pytest.approx(on)
    out = m.reach_measures(t_s=t, cop_ml_mm=x, cop_ap_mm=y, direction_deg=0, limit_mm=100.0)
    assert out["directional_control_pct"] == pytest.approx(0.0, abs=1e-6)
    assert out["endpoint_excursion_pct"] == pytest.approx(70.0 / math.sqrt(2), abs=1e-6)
    assert out["reaction_time_s"] == pytest.approx(0.4, abs=1e-9)


def test_directional_control_of_an_l_shaped_path():
    # 60 mm forward, then 20 mm to the right: on 60, off 20 -> (60 - 20) / 60 = 66.7 %
    x = np.concatenate([np.zeros(61), np.arange(1, 21, dtype=float)])
    y = np.concatenate([np.arange(61, dtype=float), np.full(20, 60.0)])
    assert m.directional_control_pct(cop_ml_mm=x, cop_ap_mm=y, direction_deg=0) == pytest.approx(200 / 3)
    # moving more off-axis than on-axis gives a negative value
    assert m.directional_control_pct(cop_ml_mm=y, cop_ap_mm=x, direction_deg=0) < 0


def test_slow_drift_before_the_move_is_not_movement():
    # drift toward the target at 5 mm/s (below the 20 mm/s onset speed), then move at 100 mm/s from 1.0 s
    t = np.arange(300) / FS
    drift = 5.0 * np.minimum(t, 1.0)
    y = drift + np.clip((t - 1.0) * 100.0, 0.0, 60.0)
    x = np.zeros_like(t)
    out = m.reach_measures(t_s=t, cop_ml_mm=x, cop_ap_mm=y, direction_deg=0, limit_mm=100.0)
    assert out["reaction_time_s"] == pytest.approx(1.0, abs=1e-9)


def test_a_move_away_first_starts_at_the_trough():
    # 1 s still, 0.3 s backward at 50 mm/s (15 mm away from the target), then forward at 100 mm/s
    t = np.arange(400) / FS
    y = np.where(t < 1.0, 0.0, np.where(t < 1.3, -50.0 * (t - 1.0), -15.0 + 100.0 * (t - 1.3)))
    y = np.minimum(y, 50.0)
    onset = m.movement_onset_index(t_s=t, along_mm=y, threshold_mm=10.0)
    assert t[onset] == pytest.approx(1.3, abs=1e-9)


def test_no_movement():
    t = np.arange(200) / FS
    still = np.zeros_like(t)
    out = m.reach_measures(t_s=t, cop_ml_mm=still, cop_ap_mm=still, direction_deg=90, limit_mm=100.0)
    assert math.isnan(out["reaction_time_s"]) and math.isnan(out["directional_control_pct"])
    assert out["max_excursion_pct"] == 0.0
    assert m.movement_onset_index(t_s=t, along_mm=still) is None
    assert math.isnan(m.reaction_time_s(t_s=t, onset_index=None))


def test_noisy_straight_move_seeded():
    # seeded Gaussian noise of 0.05 mm on each axis: directional control stays above 90 %,
    # the reaction time within 0.03 s, the velocity within 5 %
    rng = np.random.default_rng(20260405)
    t, x, y = straight_move(rest_s=0.5, direction_deg=90, distance_mm=80.0, speed_mm_s=100.0)
    x = x + rng.normal(0, 0.05, x.size)
    y = y + rng.normal(0, 0.05, y.size)
    out = m.reach_measures(t_s=t, cop_ml_mm=x, cop_ap_mm=y, direction_deg=90, limit_mm=100.0)
    assert out["directional_control_pct"] > 90.0
    assert out["reaction_time_s"] == pytest.approx(0.5, abs=0.03)
    assert out["movement_velocity_mm_s"] == pytest.approx(100.0, rel=0.05)


def test_primary_end_is_where_the_first_move_stops():
    # forward 40 mm, a 0.5 s pause, then 20 mm more: the primary endpoint is at 40 mm
    t = np.arange(300) / FS
    y = np.clip(100.0 * (t - 0.2), 0, 40) + np.clip(100.0 * (t - 1.1), 0, 20)
    x = np.zeros_like(t)
    out = m.reach_measures(t_s=t, cop_ml_mm=x, cop_ap_mm=y, direction_deg=0, limit_mm=80.0)
    assert out["endpoint_excursion_pct"] == pytest.approx(50.0)
    assert out["max_excursion_pct"] == pytest.approx(75.0)


def test_time_within_tolerance_sample_and_hold():
    t = np.arange(10.0)  # 1 Hz
    share = np.array([50, 52, 58, 61, 45, 49, 50, 70, 50, 50], dtype=float)
    # within 5 of 50: samples 0, 1, 4, 5, 6, 8, 9 -> 7 samples of 1 s (the last held to end_s = 10)
    assert m.time_within_tolerance_s(t_s=t, value=share, target=50, tolerance=5, end_s=10.0) == 7.0
    assert m.time_within_tolerance_s(t_s=t, value=share, target=50, tolerance=5) == 6.0  # last counts nothing
    # exactly 50 at samples 0, 6, 8, 9; the last one counts nothing without end_s
    assert m.time_within_tolerance_s(t_s=t, value=share, target=50, tolerance=0) == 3.0


def test_time_in_zone():
    t = np.arange(0, 10, 0.5)
    x = np.where((t >= 3) & (t < 4.5), 30.0, 0.0)  # out of the +-20 mm zone for 1.5 s
    y = np.zeros_like(t)
    got = m.time_in_zone_s(t_s=t, cop_ml_mm=x, cop_ap_mm=y, zone_ml_mm=0, zone_ap_mm=0, half_width_mm=20,
                           half_height_mm=20, end_s=10.0)
    assert got == pytest.approx(8.5)


def test_rhythm_measures_of_a_sine():
    t = np.arange(0, 12, 0.01)
    s = 30.0 * np.sin(2 * np.pi * t / 2.0)
    crossings = m.upward_crossings_s(t_s=t, signal_mm=s, hysteresis_mm=7.5)
    assert crossings == pytest.approx([2.0, 4.0, 6.0, 8.0, 10.0], abs=1e-6)
    periods = np.diff(crossings)
    assert m.tempo_error_pct(periods_s=periods, target_period_s=2.0) == pytest.approx(0.0, abs=1e-4)
    assert m.tempo_error_pct(periods_s=[2.2, 2.2], target_period_s=2.0) == pytest.approx(10.0)
    amps = m.half_cycle_amplitudes_mm(t_s=t, signal_mm=s, hysteresis_mm=7.5)
    assert amps.size == 10 and amps == pytest.approx(30.0, abs=0.01)
    assert m.coefficient_of_variation_pct(values=[1.0, 2.0, 3.0]) == pytest.approx(50.0)
    assert math.isnan(m.coefficient_of_variation_pct(values=[1.0]))
    assert math.isnan(m.tempo_error_pct(periods_s=[], target_period_s=2.0))


def test_sway_measures():
    t = np.arange(5) * 0.1
    x = np.array([0.0, 3.0, 3.0, 3.0, 3.0])
    y = np.array([0.0, 4.0, 4.0, 4.0, 4.0])
    assert m.mean_speed_mm_s(t_s=t, cop_ml_mm=x, cop_ap_mm=y) == pytest.approx(5.0 / 0.4)
    assert m.rms_about_mean_mm(cop_mm=[1.0, -1.0, 1.0, -1.0]) == pytest.approx(1.0)


@pytest.mark.parametrize("call, name", [
    (lambda: m.reach_measures(t_s=[0, 1], cop_ml_mm=[0, 0], cop_ap_mm=[0, 0], direction_deg=0, limit_mm=-1),
     "limit_mm"),
    (lambda: m.movement_onset_index(t_s=[0, 0], along_mm=[0, 1]), "t_s"),
    (lambda: m.movement_onset_index(t_s=[0, 1], along_mm=[0, 1], threshold_mm=0), "threshold_mm"),
    (lambda: m.directional_control_pct(cop_ml_mm=[0, 1], cop_ap_mm=[0], direction_deg=0), "cop_ap_mm"),
    (lambda: m.directional_control_pct(cop_ml_mm=[0, np.nan], cop_ap_mm=[0, 1], direction_deg=0), "cop_ml_mm"),
    (lambda: m.unit_vector(direction_deg="north"), "direction_deg"),
    (lambda: m.time_within_tolerance_s(t_s=[0, 1], value=[50, 50], target=50, tolerance=-1), "tolerance"),
    (lambda: m.time_within_s(t_s=[0, 1], inside=[True], end_s=None), "inside"),
    (lambda: m.tempo_error_pct(periods_s=[2.0], target_period_s=0), "target_period_s"),
    (lambda: m.primary_end_index(t_s=[0, 1], cop_ml_mm=[0, 1], cop_ap_mm=[0, 1], onset_index=5), "onset_index"),
    (lambda: m.time_in_zone_s(t_s=[0, 1], cop_ml_mm=[0, 0], cop_ap_mm=[0, 0], zone_ml_mm=0, zone_ap_mm=0,
                              half_width_mm=0, half_height_mm=5), "half_width_mm"),
])
def test_bad_arguments_are_named(call, name):
    with pytest.raises(ValueError, match=name):
        call()
