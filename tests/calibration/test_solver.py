"""The calibration solver: tare, placements, per-cell gains and the 3x4 matrix.

Closed-form cases use exact synthetic counts (a rigid plate shares a load as
:func:`station.core.cop.split_load`); the acceptance drives the real simulated plate.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from calibration.model import simulator_calibration
from calibration.solver import (
    DEFAULT_MAX_CONDITION,
    CalibrationInputError,
    GainFit,
    MatrixFit,
    Placement,
    fit_gains,
    fit_matrix,
    force_of_mass_n,
    tare_offsets,
    verify,
)
from hardware.sim.plate import SimulatedPlate
from station.core.cop import split_load
from station.core.errors import UserError
from station.core.frames import HX711_MAX_CODE
from station.core.geometry import PlateGeometry

GEO = PlateGeometry()
CAL = simulator_calibration()
GAINS = np.array([0.00023, 0.00021, 0.00025, 0.00022])  # N per count
OFFSETS = np.array([72150.0, -51820.0, 88410.0, 160230.0])  # counts

#: centre, four quadrants, four corner regions (cells at x = +-200, y = +-150)
FIT_POSITIONS = [(0.0, 0.0), (100.0, 75.0), (-100.0, 75.0), (100.0, -75.0), (-100.0, -75.0),
                 (170.0, 125.0), (-170.0, 125.0), (170.0, -125.0), (-170.0, -125.0)]
GRID_3X3 = [(x, y) for x in (-150.0, 0.0, 150.0) for y in (-100.0, 0.0, 100.0)]


def exact_counts(mass_kg, x_mm, y_mm, *, gains=GAINS, offsets=OFFSETS, geometry=GEO, crosstalk=None):
    """Noise-free mean counts of a rigid plate under a mass; ``crosstalk`` (4x4) mixes the cell loads."""
    f = split_load(force_of_mass_n(mass_kg), x_mm, y_mm, ml_mm=geometry.ml_mm, ap_mm=geometry.ap_mm)
    if crosstalk is not None:
        f = (np.eye(4) + crosstalk) @ f
    return f / gains + offsets


def exact_placements(layout, masses=(20.0, 60.0), **kwargs):
    return [Placement(mass_kg=m, x_mm=x, y_mm=y, mean_counts=exact_counts(m, x, y, **kwargs))
            for m in masses for x, y in layout]


# -- force of a mass ------------------------------------------------------------------------


def test_force_of_mass_uses_standard_gravity():
    assert force_of_mass_n(1.0) == 9.80665
    assert force_of_mass_n(0.0) == 0.0
    assert_allclose(force_of_mass_n([10.0, 20.0]), [98.0665, 196.133], rtol=1e-15)
    for bad in (-1.0, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="mass_kg"):
            force_of_mass_n(bad)


# -- tare ---------------------------------------------------------------------------------------


def noisy_frames(offsets, n, *, seed=0, noise_counts=40.0):
    return offsets + np.random.default_rng(seed).standard_normal((n, 4)) * noise_counts


def test_tare_is_the_per_cell_median_of_a_stable_period():
    counts = noisy_frames(OFFSETS, 2000, seed=1)
    result = tare_offsets(counts)
    assert_allclose(result.offsets_counts, np.median(counts, axis=0), rtol=0, atol=0)
    assert_allclose(result.offsets_counts, OFFSETS, rtol=0, atol=6.0)  # 40 rms * 1.25 / sqrt(2000) ~ 1.1
    # the robust frame-to-frame noise of white Gaussian noise estimates its std (MAD: ~4 % s.e. here)
    assert_allclose(result.std_counts, 40.0, rtol=0.15)
    assert result.n_frames == 2000
    assert result.shift_counts is None
    assert result.to_dict()["n_frames"] == 2000


def test_tare_of_the_simulated_empty_plate_ignores_glitches():
    plate = SimulatedPlate(seed=5, realtime=False, start="empty", glitch_rate=0.05)
    counts = np.array([plate.read().counts for _ in range(400)])
    assert plate.injected_glitches >= 5
    result = tare_offsets(counts)
    assert_allclose(result.offsets_counts, CAL.offsets_counts, rtol=0, atol=10.0)


def test_tare_refuses_a_moving_load_naming_a_cell():
    plate = SimulatedPlate(seed=2, realtime=False, start="quiet")  # a person swaying on the plate
    counts = np.array([plate.read().counts for _ in range(240)])
    with pytest.raises(CalibrationInputError,
                       match=r"tare refused: cell (fl|fr|bl|br) (is not steady|moved by)") as info:
        tare_offsets(counts)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, UserError) and isinstance(info.value, ValueError)


def test_tare_refuses_a_drift_naming_the_cell():
    counts = noisy_frames(OFFSETS, 240, seed=3)
    counts[:, 2] += np.linspace(0.0, 2000.0, 240)  # bl creeps by 2000 counts
    with pytest.raises(CalibrationInputError,
                       match=r"tare refused: cell bl moved by 1\d\d\d counts during the reading \(limit 300\)"):
        tare_offsets(counts)
    counts[:, 2] = OFFSETS[2]
    counts[120:, 0] += 1000.0  # a step on fl
    with pytest.raises(CalibrationInputError, match=r"cell fl moved by 10\d\d counts"):
        tare_offsets(counts)


def test_tare_refuses_a_loaded_plate_against_the_reference():
    gains = GAINS
    plate = SimulatedPlate(seed=4, realtime=False, start="empty", true_offsets_counts=OFFSETS.tolist(),
                           true_gains_n_per_count=gains.tolist())
    plate.command("behaviour", behaviour="static_load", mass_kg=5.0, x_mm=50.0, y_mm=-30.0)
    counts = np.array([plate.read().counts for _ in range(200)])[2:]
    tare_offsets(counts)  # steady, so without a reference it cannot tell
    with pytest.raises(CalibrationInputError, match=r"the plate seems loaded: .*about 5\.0 kg, limit 2\.0 kg"):
        tare_offsets(counts, reference_offsets=OFFSETS, reference_gains_n_per_count=gains)
    with pytest.raises(CalibrationInputError, match="the plate seems loaded"):
        tare_offsets(counts, reference_offsets=OFFSETS)  # nominal gain: about 5 kg too
    # a threshold above the load's counts lets it through (and reports the shift)
    result = tare_offsets(counts, reference_offsets=OFFSETS, loaded_threshold_counts=1e6)
    shift = np.asarray(result.shift_counts)
    assert_allclose(np.sum(np.abs(shift * gains)), force_of_mass_n(5.0), rtol=0.01)


def test_tare_accepts_a_small_drift_of_the_zero():
    counts = noisy_frames(OFFSETS + 300.0, 240, seed=6)
    result = tare_offsets(counts, reference_offsets=OFFSETS)
    assert_allclose(result.shift_counts, 300.0, atol=10.0)


def test_tare_checks_its_arguments():
    with pytest.raises(CalibrationInputError, match="at least 20 readings"):
        tare_offsets(noisy_frames(OFFSETS, 5))
    with pytest.raises(ValueError, match=r"counts must have shape \(n, 4\)"):
        tare_offsets(np.zeros((50, 3)))
    with pytest.raises(ValueError, match="counts must be finite"):
        tare_offsets(np.full((50, 4), np.nan))
    with pytest.raises(ValueError, match="max_std_counts"):
        tare_offsets(noisy_frames(OFFSETS, 50), max_std_counts=0)
    with pytest.raises(ValueError, match="reference_offsets"):
        tare_offsets(noisy_frames(OFFSETS, 50), reference_offsets=[1.0, 2.0])
    saturated = noisy_frames(OFFSETS, 50)
    saturated[:, 1] = HX711_MAX_CODE
    with pytest.raises(CalibrationInputError, match="cell fr reads the HX711 saturation code"):
        tare_offsets(saturated)


# -- placements -----------------------------------------------------------------------------------


def test_placement_from_frames_leaves_glitches_out():
    counts = noisy_frames(exact_counts(20.0, 0.0, 0.0), 160, seed=7)
    clean_mean = counts.mean(axis=0)
    counts[10, 3] += 2**21  # one bit error
    p = Placement.from_frames(counts, mass_kg=20.0, x_mm=0.0, y_mm=0.0)
    assert p.n_frames == 159 and p.rejected_frames == 1
    assert_allclose(p.mean_counts, np.delete(counts, 10, axis=0).mean(axis=0), rtol=0, atol=1e-6)
    assert_allclose(p.mean_counts, clean_mean, rtol=0, atol=10.0)
    assert p.force_n == force_of_mass_n(20.0)
    assert Placement.from_dict(p.to_dict()) == p


def test_placement_from_frames_refuses_an_unsteady_mass():
    counts = noisy_frames(exact_counts(20.0, 0.0, 0.0), 160, seed=8)
    counts[:, 1] += 3000.0 * np.sin(np.arange(160) / 5.0)  # still swinging
    with pytest.raises(CalibrationInputError,
                       match=r"placement 20 kg at \(0, 0\) mm: cell fr (is not steady|moved by)"):
        Placement.from_frames(counts, mass_kg=20.0, x_mm=0.0, y_mm=0.0)


def test_placement_checks_its_fields():
    with pytest.raises(ValueError, match="mean_counts"):
        Placement(mass_kg=1.0, x_mm=0.0, y_mm=0.0, mean_counts=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="x_mm"):
        Placement(mass_kg=1.0, x_mm=float("nan"), y_mm=0.0, mean_counts=(1.0, 2.0, 3.0, 4.0))
    with pytest.raises(ValueError, match="n_frames"):
        Placement(mass_kg=1.0, x_mm=0.0, y_mm=0.0, mean_counts=(1.0, 2.0, 3.0, 4.0), n_frames=0)
    with pytest.raises(ValueError, match="missing key 'mean_counts'"):
        Placement.from_dict({"mass_kg": 1.0, "x_mm": 0.0, "y_mm": 0.0})


# -- per-cell gains: closed form ---------------------------------------------------------------------


def test_exact_counts_give_exact_gains():
    fit = fit_gains(exact_placements(FIT_POSITIONS), offsets_counts=OFFSETS, geometry=GEO)
    assert isinstance(fit, GainFit)
    assert_allclose(fit.gains_n_per_count, GAINS, rtol=1e-12)
    assert fit.rank == 4
    assert 1.0 <= fit.condition < 2.0
    assert fit.max_residual_cop_mm < 1e-9
    assert fit.max_residual_force_pct < 1e-9
    assert_allclose(fit.residual_moment_nmm, 0.0, atol=1e-8)
    assert fit.n_placements == 18
    assert fit.to_dict()["method"] == "per-cell gains"


def test_one_mass_at_the_centre_by_hand():
    # 10 kg at the centre: each cell carries F/4; a second mass at the front right corner cell
    # (x = ml/2, y = ap/2) loads fr alone. Gains 0.0002 N per count, offsets 0.
    f = force_of_mass_n(10.0)
    g = 0.0002
    centre = Placement(mass_kg=10.0, x_mm=0.0, y_mm=0.0, mean_counts=(f / 4 / g,) * 4)
    corner = Placement(mass_kg=10.0, x_mm=200.0, y_mm=150.0, mean_counts=(0.0, f / g, 0.0, 0.0))
    fit = fit_gains([centre, corner], offsets_counts=(0.0, 0.0, 0.0, 0.0), geometry=GEO)
    assert_allclose(fit.gains_n_per_count, g, rtol=1e-12)


def test_a_cell_wired_reversed_gets_a_negative_gain():
    gains = GAINS * np.array([1.0, 1.0, -1.0, 1.0])
    fit = fit_gains(exact_placements(FIT_POSITIONS, gains=gains), offsets_counts=OFFSETS, geometry=GEO)
    assert_allclose(fit.gains_n_per_count, gains, rtol=1e-12)


def test_placements_on_one_line_still_give_the_gains():
    line = [(-150.0, 0.0), (0.0, 0.0), (150.0, 0.0)]
    fit = fit_gains(exact_placements(line), offsets_counts=OFFSETS, geometry=GEO)
    assert_allclose(fit.gains_n_per_count, GAINS, rtol=1e-12)
    assert fit.condition < 5


def slow_normal_equations_gains(placements, offsets, ml_mm, ap_mm):
    """Independent slow implementation: accumulate the 4x4 normal equations equation by equation
    (force, Mx / (ml/2), My / (ap/2)) and solve them by Gaussian elimination with partial pivoting."""
    xs = [-ml_mm / 2, ml_mm / 2, -ml_mm / 2, ml_mm / 2]
    ys = [ap_mm / 2, ap_mm / 2, -ap_mm / 2, -ap_mm / 2]
    n = [[0.0] * 4 for _ in range(4)]
    r = [0.0] * 4
    for p in placements:
        c = [p.mean_counts[i] - offsets[i] for i in range(4)]
        force = p.mass_kg * 9.80665
        equations = [
            ([c[i] for i in range(4)], force),
            ([c[i] * xs[i] / (ml_mm / 2) for i in range(4)], force * p.x_mm / (ml_mm / 2)),
            ([c[i] * ys[i] / (ap_mm / 2) for i in range(4)], force * p.y_mm / (ap_mm / 2)),
        ]
        for row, rhs in equations:
            for i in range(4):
                r[i] += row[i] * rhs
                for j in range(4):
                    n[i][j] += row[i] * row[j]
    a = [n[i][:] + [r[i]] for i in range(4)]
    for k in range(4):
        pivot = max(range(k, 4), key=lambda i: abs(a[i][k]))
        a[k], a[pivot] = a[pivot], a[k]
        for i in range(k + 1, 4):
            factor = a[i][k] / a[k][k]
            for j in range(k, 5):
                a[i][j] -= factor * a[k][j]
    g = [0.0] * 4
    for i in reversed(range(4)):
        g[i] = (a[i][4] - sum(a[i][j] * g[j] for j in range(i + 1, 4))) / a[i][i]
    return g


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lstsq_agrees_with_a_slow_normal_equations_loop(seed):
    rng = np.random.default_rng(seed)
    gains = GAINS * rng.uniform(0.9, 1.1, 4)
    placements = []
    for _ in range(12):
        m, x, y = rng.uniform(5, 80), rng.uniform(-190, 190), rng.uniform(-140, 140)
        counts = exact_counts(m, x, y, gains=gains) + rng.normal(0, 200.0, 4)  # noisy: residuals are not 0
        placements.append(Placement(mass_kg=m, x_mm=x, y_mm=y, mean_counts=counts))
    fit = fit_gains(placements, offsets_counts=OFFSETS, geometry=GEO)
    slow = slow_normal_equations_gains(placements, OFFSETS, GEO.ml_mm, GEO.ap_mm)
    assert_allclose(fit.gains_n_per_count, slow, rtol=1e-9)
    assert fit.max_residual_cop_mm > 1e-3  # the noise left residuals


def test_residuals_are_fitted_minus_true():
    placements = exact_placements(FIT_POSITIONS)
    bad = placements[5]  # told 60 kg... (x, y) but really 1 % heavier
    counts = exact_counts(bad.mass_kg * 1.01, bad.x_mm, bad.y_mm)
    placements[5] = Placement(mass_kg=bad.mass_kg, x_mm=bad.x_mm, y_mm=bad.y_mm, mean_counts=counts)
    fit = fit_gains(placements, offsets_counts=OFFSETS, geometry=GEO)
    forces = (np.array([p.mean_counts for p in placements]) - OFFSETS) * fit.gains_n_per_count
    true = np.array([p.force_n for p in placements])
    assert_allclose(fit.residual_force_n, forces.sum(axis=1) - true, rtol=1e-9, atol=1e-9)
    assert np.argmax(np.abs(fit.residual_force_n)) == 5
    x = GEO.ml_mm / 2 * ((forces[:, 1] + forces[:, 3]) - (forces[:, 0] + forces[:, 2])) / forces.sum(axis=1)
    assert_allclose(fit.residual_x_mm, x - [p.x_mm for p in placements], atol=1e-9)


# -- per-cell gains: refusals ----------------------------------------------------------------------------


def test_refuses_too_few_placements():
    with pytest.raises(CalibrationInputError, match="gain fit: needs at least 2 placements of known masses, got 1"):
        fit_gains(exact_placements([(0.0, 0.0)], masses=(20.0,)), offsets_counts=OFFSETS, geometry=GEO)


def test_refuses_all_placements_at_the_centre():
    placements = exact_placements([(0.0, 0.0)], masses=(10.0, 20.0, 40.0, 60.0))
    with pytest.raises(CalibrationInputError,
                       match=r"all 4 placements are at one point \(about \(0, 0\) mm\): the four cells cannot be told"):
        fit_gains(placements, offsets_counts=OFFSETS, geometry=GEO)


def test_refuses_placements_too_close_together():
    near = [(-8.0, 0.0), (8.0, 0.0), (0.0, 8.0)]
    with pytest.raises(CalibrationInputError, match=r"too close together .*condition number .*limit 20"):
        fit_gains(exact_placements(near), offsets_counts=OFFSETS, geometry=GEO)
    fit = fit_gains(exact_placements(near), offsets_counts=OFFSETS, geometry=GEO, max_condition=1e3)
    assert fit.condition > DEFAULT_MAX_CONDITION
    assert_allclose(fit.gains_n_per_count, GAINS, rtol=1e-9)  # exact data: still right


@pytest.mark.parametrize("mass_kg", [0.0, -5.0])
def test_refuses_a_mass_that_is_not_positive(mass_kg):
    placements = exact_placements(FIT_POSITIONS)
    placements[3] = Placement(mass_kg=mass_kg, x_mm=100.0, y_mm=-75.0, mean_counts=placements[3].mean_counts)
    with pytest.raises(CalibrationInputError,
                       match=r"placement 4 \(.* kg at \(100, -75\) mm\): the mass must be positive"):
        fit_gains(placements, offsets_counts=OFFSETS, geometry=GEO)


def test_refuses_a_dead_cell_naming_it():
    placements = [Placement(mass_kg=p.mass_kg, x_mm=p.x_mm, y_mm=p.y_mm,
                            mean_counts=(*p.mean_counts[:3], OFFSETS[3] + 3.0))
                  for p in exact_placements(FIT_POSITIONS)]
    with pytest.raises(CalibrationInputError,
                       match="cell br reads \\(almost\\) nothing under any of the 18 placements"):
        fit_gains(placements, offsets_counts=OFFSETS, geometry=GEO)
    with pytest.raises(CalibrationInputError, match="cell br reads"):
        fit_matrix(placements, offsets_counts=OFFSETS, geometry=GEO)


def test_refuses_a_gain_of_the_wrong_sign():
    # the middle placement was really at the opposite corner from the one written down
    placements = exact_placements([(0.0, 0.0), (-150.0, 100.0)], masses=(20.0,))
    wrong = Placement(mass_kg=20.0, x_mm=150.0, y_mm=100.0, mean_counts=exact_counts(20.0, -150.0, -100.0))
    with pytest.raises(CalibrationInputError,
                       match=r"cell bl comes out with a gain of the wrong sign "
                             r".*a mass or a position is probably wrong"):
        fit_gains([placements[0], wrong, placements[1]], offsets_counts=OFFSETS, geometry=GEO)


def test_refuses_a_saturated_placement():
    placements = exact_placements(FIT_POSITIONS)
    counts = list(placements[0].mean_counts)
    counts[2] = HX711_MAX_CODE
    placements[0] = Placement(mass_kg=20.0, x_mm=0.0, y_mm=0.0, mean_counts=counts)
    with pytest.raises(CalibrationInputError, match=r"placement 1 \(20 kg at \(0, 0\) mm\): cell bl is saturated"):
        fit_gains(placements, offsets_counts=OFFSETS, geometry=GEO)


def test_fit_checks_its_arguments():
    placements = exact_placements(FIT_POSITIONS)
    with pytest.raises(ValueError, match="offsets_counts"):
        fit_gains(placements, offsets_counts=(0.0, 0.0), geometry=GEO)
    with pytest.raises(ValueError, match="geometry must be a PlateGeometry"):
        fit_gains(placements, offsets_counts=OFFSETS, geometry=(400, 300))
    with pytest.raises(ValueError, match=r"placements\[1\] must be a Placement"):
        fit_gains([placements[0], {"mass_kg": 1}], offsets_counts=OFFSETS, geometry=GEO)
    with pytest.raises(ValueError, match="max_condition"):
        fit_gains(placements, offsets_counts=OFFSETS, geometry=GEO, max_condition=-1)


# -- matrix ------------------------------------------------------------------------------------------------

CROSSTALK = np.array([  # row i: the share of each cell's load that cell i also reads
    [0.0, 0.03, 0.0, 0.0],
    [0.0, 0.0, 0.0, -0.02],
    [0.015, 0.0, 0.0, 0.0],
    [0.0, 0.0, 0.025, 0.0],
])


def test_matrix_of_exact_counts_is_exact():
    fit = fit_matrix(exact_placements(FIT_POSITIONS), offsets_counts=OFFSETS, geometry=GEO)
    assert isinstance(fit, MatrixFit)
    hx, hy = GEO.ml_mm / 2, GEO.ap_mm / 2
    expected = np.array([[1, 1, 1, 1], [-hx, hx, -hx, hx], [hy, hy, -hy, -hy]]) * GAINS
    assert_allclose(fit.matrix, expected, rtol=1e-10, atol=1e-14)
    assert fit.rank == 4 and fit.condition < 3
    assert fit.max_residual_cop_mm < 1e-9
    assert fit.to_dict()["method"] == "3x4 matrix"


def test_matrix_absorbs_crosstalk_that_the_per_cell_fit_cannot():
    placements = exact_placements(FIT_POSITIONS, crosstalk=CROSSTALK)
    gains = fit_gains(placements, offsets_counts=OFFSETS, geometry=GEO)
    matrix = fit_matrix(placements, offsets_counts=OFFSETS, geometry=GEO)
    assert gains.max_residual_cop_mm > 1.0  # the per-cell model cannot express it
    assert matrix.max_residual_cop_mm < 1e-9 and matrix.max_residual_force_pct < 1e-9
    # the exact answer: [Fz, Mx, My] = W (I + X)^-1 diag(1/g)^-1 c
    hx, hy = GEO.ml_mm / 2, GEO.ap_mm / 2
    w = np.array([[1, 1, 1, 1], [-hx, hx, -hx, hx], [hy, hy, -hy, -hy]])
    assert_allclose(matrix.matrix, w @ np.linalg.inv(np.eye(4) + CROSSTALK) @ np.diag(GAINS), rtol=1e-9, atol=1e-14)
    # and on fresh placements the matrix calibration verifies where the per-cell one fails
    fresh = exact_placements(GRID_3X3, crosstalk=CROSSTALK)
    assert verify(gains.to_calibration(matrix_fit=matrix), fresh, geometry=GEO).max_cop_error_mm < 1e-9
    per_cell = verify(gains.to_calibration(), fresh, geometry=GEO)
    assert not per_cell.passed and per_cell.max_cop_error_mm > 1.0


def test_matrix_refuses_fewer_than_six_placements():
    with pytest.raises(CalibrationInputError, match="matrix fit: needs at least 6 placements of known masses, got 5"):
        fit_matrix(exact_placements(FIT_POSITIONS[:5], masses=(20.0,)), offsets_counts=OFFSETS, geometry=GEO)


def test_matrix_refuses_placements_on_one_line():
    diagonal = [(-150.0, -100.0), (-75.0, -50.0), (0.0, 0.0), (75.0, 50.0), (150.0, 100.0), (30.0, 20.0)]
    with pytest.raises(CalibrationInputError, match="matrix fit: all 6 placements lie on one line"):
        fit_matrix(exact_placements(diagonal, masses=(20.0,)), offsets_counts=OFFSETS, geometry=GEO)
    with pytest.raises(CalibrationInputError, match="all 6 placements are at one point"):
        fit_matrix(exact_placements([(0.0, 0.0)], masses=(5.0, 10.0, 20.0, 30.0, 40.0, 60.0)),
                   offsets_counts=OFFSETS, geometry=GEO)


def test_matrix_refuses_readings_that_do_not_span_the_cells():
    # off a line by more than the tolerance, but the readings (1, u, v, uv) are still nearly dependent
    # five on the x axis span only (1, u); one more off it adds a third dimension, not the fourth (uv)
    near_line = [(-150.0, 0.0), (-75.0, 0.0), (0.0, 0.0), (75.0, 0.0), (150.0, 0.0), (0.0, 10.0)]
    with pytest.raises(CalibrationInputError, match="matrix fit: the placements' readings span only 3 of 4"):
        fit_matrix(exact_placements(near_line, masses=(20.0,)), offsets_counts=OFFSETS, geometry=GEO)
    huddle = [(-12.0, -10.0), (12.0, -10.0), (-12.0, 10.0), (12.0, 10.0), (0.0, 0.0), (6.0, -3.0)]
    with pytest.raises(CalibrationInputError, match=r"matrix fit: the placements are too close together .*limit 20"):
        fit_matrix(exact_placements(huddle, masses=(20.0,)), offsets_counts=OFFSETS, geometry=GEO)


# -- acceptance (the issue): the real simulated plate ----------------------------------------------------------


def read_counts(plate, n):
    return np.array([plate.read().counts for _ in range(n)])


def measure(plate, positions, masses, *, settle_frames=5, frames=160, position_error_mm=0.0, rng=None):
    """Put each mass at each position (really at a slightly different one if ``position_error_mm``)."""
    out = []
    for m in masses:
        for x, y in positions:
            dx, dy = (rng.uniform(-position_error_mm, position_error_mm, 2) if position_error_mm else (0.0, 0.0))
            plate.command("behaviour", behaviour="static_load", mass_kg=m, x_mm=x + dx, y_mm=y + dy)
            read_counts(plate, settle_frames)
            out.append(Placement.from_frames(read_counts(plate, frames), mass_kg=m, x_mm=x, y_mm=y))
            plate.command("behaviour", behaviour="empty")
            read_counts(plate, settle_frames)
    return out


def simulated_calibration_session(seed, *, fit_masses=(20.0, 60.0), position_error_mm=0.0):
    """Tare, fit (gains and matrix) and verify on a simulated plate with random true gains and offsets."""
    rng = np.random.default_rng(seed)
    true_gains = np.asarray(CAL.gains_n_per_count) * rng.uniform(0.9, 1.1, 4)
    true_offsets = np.asarray(CAL.offsets_counts) + rng.uniform(-300_000, 300_000, 4)
    plate = SimulatedPlate(seed=seed, realtime=False, start="empty", true_offsets_counts=true_offsets.tolist(),
                           true_gains_n_per_count=true_gains.tolist())  # default noise and glitches
    tare = tare_offsets(read_counts(plate, 240))
    fit_set = measure(plate, FIT_POSITIONS, fit_masses, position_error_mm=position_error_mm, rng=rng)
    gains = fit_gains(fit_set, offsets_counts=tare.offsets_counts, geometry=GEO)
    matrix = fit_matrix(fit_set, offsets_counts=tare.offsets_counts, geometry=GEO)
    fresh = measure(plate, GRID_3X3, (20.0, 60.0))  # new readings, not those fitted
    return {
        "true_gains": true_gains, "true_offsets": true_offsets, "tare": tare, "gains": gains, "matrix": matrix,
        "verify_gains": verify(gains.to_calibration(), fresh, geometry=GEO),
        "verify_matrix": verify(gains.to_calibration(matrix_fit=matrix), fresh, geometry=GEO),
        "glitches": plate.injected_glitches,
    }


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_acceptance_simulated_plate_gains_within_0_2_pct_and_verification_within_1_mm(seed):
    s = simulated_calibration_session(seed)
    assert_allclose(s["tare"].offsets_counts, s["true_offsets"], rtol=0, atol=10.0)
    gain_error_pct = 100 * np.abs(np.asarray(s["gains"].gains_n_per_count) / s["true_gains"] - 1)
    assert gain_error_pct.max() <= 0.2
    for key in ("verify_gains", "verify_matrix"):
        v = s[key]
        assert len(v.rows) == 18
        assert v.passed, v.summary()
        assert v.max_cop_error_mm <= 1.0
        assert v.max_force_error_pct <= 0.5
    # the plate threw glitches at us; they did not matter
    assert s["glitches"] >= 1


def test_acceptance_with_10_and_40_kg_fit_masses():
    s = simulated_calibration_session(21, fit_masses=(10.0, 40.0))
    assert np.max(np.abs(np.asarray(s["gains"].gains_n_per_count) / s["true_gains"] - 1)) <= 0.002
    assert s["verify_gains"].passed and s["verify_matrix"].passed


def test_masses_placed_a_few_millimetres_off_their_marks_still_verify():
    # a technician puts each fit mass within +-3 mm of its mark; least squares averages it out
    # (for the per-cell gains: the 12-unknown matrix is more sensitive, about 1.7 mm here)
    s = simulated_calibration_session(31, position_error_mm=3.0)
    assert s["verify_gains"].max_cop_error_mm <= 1.0
    assert s["verify_gains"].passed
