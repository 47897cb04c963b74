"""Verification of a calibration on known placements: errors, limits, the report."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from calibration.model import Calibration
from calibration.solver import (
    CalibrationInputError,
    Placement,
    Verification,
    fit_gains,
    force_of_mass_n,
    verify,
)
from station.core.cop import split_load
from station.core.geometry import PlateGeometry

GEO = PlateGeometry()
GAINS = np.array([0.00023, 0.00021, 0.00025, 0.00022])
OFFSETS = np.array([72150.0, -51820.0, 88410.0, 160230.0])
WHEN = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)
TRUE = Calibration(offsets_counts=tuple(OFFSETS), gains_n_per_count=tuple(GAINS), created_at=WHEN)
GRID_3X3 = [(x, y) for x in (-150.0, 0.0, 150.0) for y in (-100.0, 0.0, 100.0)]


def placement(mass_kg, x_mm, y_mm, *, gains=GAINS):
    f = split_load(force_of_mass_n(mass_kg), x_mm, y_mm, ml_mm=GEO.ml_mm, ap_mm=GEO.ap_mm)
    return Placement(mass_kg=mass_kg, x_mm=x_mm, y_mm=y_mm, mean_counts=f / gains + OFFSETS)


def grid(masses=(20.0, 60.0)):
    return [placement(m, x, y) for m in masses for x, y in GRID_3X3]


def test_the_true_calibration_verifies_with_no_error():
    v = verify(TRUE, grid(), geometry=GEO)
    assert isinstance(v, Verification)
    assert v.passed
    assert len(v.rows) == 18
    assert v.max_cop_error_mm < 1e-9 and v.rms_cop_error_mm < 1e-9
    assert v.max_force_error_pct < 1e-9
    row = v.rows[4]  # 20 kg at the centre
    assert (row.mass_kg, row.x_mm, row.y_mm) == (20.0, 0.0, 0.0)
    assert row.fz_true_n == force_of_mass_n(20.0)
    assert_allclose([row.fz_n, row.measured_x_mm, row.measured_y_mm], [force_of_mass_n(20.0), 0.0, 0.0],
                    atol=1e-9)
    assert v.failed_rows == ()
    assert v.summary().startswith("verification PASSED: COP error max 0.00 mm")


def test_one_gain_2_pct_high_gives_the_closed_form_errors():
    # 20 kg at the centre: each cell truly carries F/4; fr reads 2 % high, so
    # Fz = F * 4.02 / 4 (+0.5 %), x = (ml/2) * 0.02 / 4.02, y = (ap/2) * 0.02 / 4.02.
    gains = GAINS * np.array([1.0, 1.02, 1.0, 1.0])
    cal = dataclasses.replace(TRUE, gains_n_per_count=tuple(gains))
    v = verify(cal, [placement(20.0, 0.0, 0.0)], geometry=GEO)
    row = v.rows[0]
    assert row.force_error_pct == pytest.approx(0.5, rel=1e-9)
    assert row.measured_x_mm == pytest.approx(200.0 * 0.02 / 4.02, rel=1e-9)
    assert row.measured_y_mm == pytest.approx(150.0 * 0.02 / 4.02, rel=1e-9)
    assert row.cop_error_mm == pytest.approx(math.hypot(200.0, 150.0) * 0.02 / 4.02, rel=1e-9)  # 1.244 mm
    assert not v.passed  # 1.24 mm > 1 mm (and 0.5 % is at the force limit)
    assert v.failed_rows == v.rows


def test_max_and_rms_against_an_independent_loop():
    rng = np.random.default_rng(3)
    cal = dataclasses.replace(TRUE, gains_n_per_count=tuple(GAINS * rng.uniform(0.995, 1.005, 4)))
    placements = grid()
    v = verify(cal, placements, geometry=GEO)
    cop, force = [], []
    for p in placements:
        f = [(p.mean_counts[i] - cal.offsets_counts[i]) * cal.gains_n_per_count[i] for i in range(4)]
        fz = sum(f)
        x = 200.0 * ((f[1] + f[3]) - (f[0] + f[2])) / fz
        y = 150.0 * ((f[0] + f[1]) - (f[2] + f[3])) / fz
        cop.append(math.hypot(x - p.x_mm, y - p.y_mm))
        force.append(100.0 * (fz / (p.mass_kg * 9.80665) - 1.0))
    assert v.max_cop_error_mm == pytest.approx(max(cop), rel=1e-9)
    assert v.rms_cop_error_mm == pytest.approx(math.sqrt(sum(c * c for c in cop) / len(cop)), rel=1e-9)
    assert v.max_force_error_pct == pytest.approx(max(abs(f) for f in force), rel=1e-9)
    assert_allclose([r.force_error_pct for r in v.rows], force, rtol=1e-9)  # signed


def test_limits_are_configurable():
    gains = GAINS * np.array([1.0, 1.004, 1.0, 1.0])  # about 0.25 mm and 0.1 %
    cal = dataclasses.replace(TRUE, gains_n_per_count=tuple(gains))
    assert verify(cal, grid(), geometry=GEO).passed
    strict = verify(cal, grid(), geometry=GEO, max_cop_error_mm=0.1, max_force_error_pct=0.5)
    assert not strict.passed
    assert 0 < len(strict.failed_rows) <= 18
    assert strict.max_cop_error_limit_mm == 0.1
    assert not verify(cal, grid(), geometry=GEO, max_cop_error_mm=5.0, max_force_error_pct=0.01).passed
    with pytest.raises(ValueError, match="max_cop_error_mm"):
        verify(cal, grid(), geometry=GEO, max_cop_error_mm=0.0)
    with pytest.raises(ValueError, match="max_force_error_pct"):
        verify(cal, grid(), geometry=GEO, max_force_error_pct=float("nan"))


def test_report_is_json_with_the_figures_limits_and_rows():
    v = verify(TRUE, grid(), geometry=GEO)
    report = v.to_report()
    text = json.dumps(report, allow_nan=False)
    back = json.loads(text)
    for key in ("max_cop_error_mm", "rms_cop_error_mm", "max_force_error_pct", "passed",
                "max_cop_error_limit_mm", "max_force_error_limit_pct", "rows"):
        assert key in back
    assert back["passed"] is True
    assert back["max_cop_error_limit_mm"] == 1.0 and back["max_force_error_limit_pct"] == 0.5
    assert len(back["rows"]) == 18
    assert set(back["rows"][0]) == {"mass_kg", "x_mm", "y_mm", "fz_true_n", "fz_n", "measured_x_mm",
                                    "measured_y_mm", "cop_error_mm", "force_error_pct"}


def test_a_calibration_that_reads_no_force_fails_and_still_reports():
    cal = dataclasses.replace(TRUE, gains_n_per_count=tuple(-GAINS))  # every cell reversed: Fz < 0
    v = verify(cal, grid(masses=(20.0,)), geometry=GEO)
    assert not v.passed
    assert v.max_cop_error_mm == math.inf
    report = v.to_report()
    json.dumps(report, allow_nan=False)
    assert report["max_cop_error_mm"] is None
    assert report["rows"][0]["cop_error_mm"] is None


def test_refusals():
    with pytest.raises(CalibrationInputError, match="verification: needs at least one placement"):
        verify(TRUE, [], geometry=GEO)
    zero = Placement(mass_kg=0.0, x_mm=0.0, y_mm=0.0, mean_counts=OFFSETS)
    with pytest.raises(CalibrationInputError, match=r"placement 2 \(0 kg at \(0, 0\) mm\): the mass must be positive"):
        verify(TRUE, [placement(20.0, 0.0, 0.0), zero], geometry=GEO)
    with pytest.raises(CalibrationInputError, match="calibration was made for cells 400 x 300 mm apart, the plate "
                                                   "is set to 420 x 300 mm"):
        verify(TRUE, grid(), geometry=PlateGeometry(ml_mm=420.0))
    with pytest.raises(ValueError, match="calibration must be a Calibration"):
        verify({"gains": 1}, grid(), geometry=GEO)


def test_fitted_on_some_placements_verified_on_fresh_ones():
    rng = np.random.default_rng(8)
    fit_set = []
    for m in (20.0, 60.0):
        for x, y in [(0.0, 0.0), (170.0, 125.0), (-170.0, 125.0), (170.0, -125.0), (-170.0, -125.0)]:
            p = placement(m, x, y)
            fit_set.append(dataclasses.replace(p, mean_counts=np.asarray(p.mean_counts) + rng.normal(0, 5.0, 4)))
    fit = fit_gains(fit_set, offsets_counts=OFFSETS, geometry=GEO)
    v = verify(fit.to_calibration(created_at=WHEN), grid(), geometry=GEO)
    assert v.passed
    assert v.max_cop_error_mm < 0.05
