"""The calibration and its file: per-cell gains, the optional 3x4 matrix, placements and verification."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import pytest
from numpy.testing import assert_allclose

from calibration.model import (
    FORMAT_VERSION,
    Calibration,
    CalibrationError,
    format_json,
    simulator_calibration,
)
from calibration.solver import Placement, force_of_mass_n, verify
from station.core.cop import centre_of_pressure, split_load
from station.core.geometry import PlateGeometry

GEO = PlateGeometry()
WHEN = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)
GAINS = np.array([0.00023, 0.00021, 0.00025, 0.00022])
OFFSETS = np.array([72150.0, -51820.0, 88410.0, 160230.0])
HX, HY = GEO.ml_mm / 2, GEO.ap_mm / 2
W = np.array([[1.0, 1.0, 1.0, 1.0], [-HX, HX, -HX, HX], [HY, HY, -HY, -HY]])  # forces -> [Fz, Mx, My]
CROSSTALK = np.array([[0.0, 0.03, 0.0, 0.0], [0.0, 0.0, 0.0, -0.02], [0.015, 0.0, 0.0, 0.0], [0.0, 0.0, 0.025, 0.0]])
#: a matrix with crosstalk: [Fz, Mx, My] = W (I + X)^-1 diag(g) c
MATRIX = W @ np.linalg.inv(np.eye(4) + CROSSTALK) @ np.diag(GAINS)


def per_cell(**kwargs) -> Calibration:
    return Calibration(offsets_counts=tuple(OFFSETS), gains_n_per_count=tuple(GAINS), created_at=WHEN, **kwargs)


def with_matrix(**kwargs) -> Calibration:
    return per_cell(matrix=MATRIX.tolist(), **kwargs)


def random_loads(n, seed, *, inside=True):
    rng = np.random.default_rng(seed)
    lim = 0.5 if inside else 0.9
    fz = rng.uniform(50, 1500, n)
    x = rng.uniform(-lim, lim, n) * GEO.ml_mm
    y = rng.uniform(-lim, lim, n) * GEO.ap_mm
    return fz, x, y


# -- per-cell (unchanged behaviour) ------------------------------------------------------------


def test_per_cell_conversion_is_unchanged():
    cal = per_cell()
    counts = OFFSETS + np.array([[1000.0, 2000.0, 3000.0, 4000.0], [0.0, 0.0, 0.0, 0.0]])
    assert_allclose(cal.to_forces(counts), (counts - OFFSETS) * GAINS, rtol=1e-15)
    assert_allclose(cal.to_counts(cal.to_forces(counts)), counts, rtol=1e-12)
    assert cal.matrix is None and cal.placements == () and cal.verification is None


def test_the_builtin_simulator_calibration_still_loads():
    cal = simulator_calibration()
    assert cal.is_builtin and cal.source == "builtin:simulator"
    assert cal.backend == "simulated" and cal.matrix is None
    assert cal.to_dict()["version"] == 1


def test_a_file_without_a_matrix_is_written_as_version_1(tmp_path):
    cal = per_cell(station_id="clinic-1", backend="hx711-lgpio", note="n")
    path = tmp_path / "calibration.json"
    cal.save(path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["version"] == 1
    assert "matrix" not in doc and "placements" not in doc and "verification" not in doc
    back = Calibration.load(path)
    assert back.offsets_counts == cal.offsets_counts and back.gains_n_per_count == cal.gains_n_per_count
    assert (back.station_id, back.backend, back.note, back.created_at) == ("clinic-1", "hx711-lgpio", "n", WHEN)


def test_a_version_1_file_of_the_old_writer_still_reads(tmp_path):
    doc = per_cell().to_dict()
    doc["future_key"] = {"kept": True}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")  # as version 1 wrote it
    back = Calibration.load(path)
    assert back.extra == {"future_key": {"kept": True}}
    assert back.to_dict()["future_key"] == {"kept": True}


def test_newer_versions_are_refused():
    doc = with_matrix().to_dict()
    assert doc["version"] == FORMAT_VERSION == 2
    doc["version"] = 3
    with pytest.raises(CalibrationError, match="version 3 is newer than this program reads"):
        Calibration.from_dict(doc, source="x.json")


# -- the matrix ---------------------------------------------------------------------------------


def test_matrix_forces_give_exactly_the_matrix_fz_and_cop():
    cal = with_matrix()
    rng = np.random.default_rng(1)
    counts = OFFSETS + rng.uniform(0, 2e6, (200, 4))
    q = (counts - OFFSETS) @ MATRIX.T
    forces = cal.to_forces(counts)
    fz, x, y = centre_of_pressure(forces, ml_mm=GEO.ml_mm, ap_mm=GEO.ap_mm, min_fz_n=0.0)
    assert_allclose(fz, q[:, 0], rtol=1e-12)
    assert_allclose(x, q[:, 1] / q[:, 0], rtol=1e-9, atol=1e-9)
    assert_allclose(y, q[:, 2] / q[:, 0], rtol=1e-9, atol=1e-9)


def test_matrix_forces_are_split_load_for_a_cop_between_the_cells():
    cal = with_matrix()
    fz, x, y = random_loads(300, 2)
    counts = cal.to_counts(split_load(fz, x, y, ml_mm=GEO.ml_mm, ap_mm=GEO.ap_mm))
    q = (counts - OFFSETS) @ MATRIX.T
    expected = split_load(q[:, 0], q[:, 1] / q[:, 0], q[:, 2] / q[:, 0], ml_mm=GEO.ml_mm, ap_mm=GEO.ap_mm)
    assert_allclose(cal.to_forces(counts), expected, rtol=1e-9, atol=1e-9)


def test_to_counts_inverts_to_forces_for_bilinear_loads():
    cal = with_matrix()
    fz, x, y = random_loads(300, 3)
    forces = split_load(fz, x, y, ml_mm=GEO.ml_mm, ap_mm=GEO.ap_mm)
    assert_allclose(cal.to_forces(cal.to_counts(forces)), forces, rtol=1e-9, atol=1e-8)
    assert_allclose(cal.to_forces(cal.to_counts(forces[0])), forces[0], rtol=1e-9, atol=1e-8)  # one frame


def test_to_counts_keeps_fz_and_cop_of_any_load():
    cal = with_matrix()
    rng = np.random.default_rng(4)
    forces = rng.uniform(0, 400, (100, 4))  # twisted: not a rigid plate's split
    back = cal.to_forces(cal.to_counts(forces))
    a = centre_of_pressure(forces, ml_mm=GEO.ml_mm, ap_mm=GEO.ap_mm, min_fz_n=0.0)
    b = centre_of_pressure(back, ml_mm=GEO.ml_mm, ap_mm=GEO.ap_mm, min_fz_n=0.0)
    for u, v in zip(a, b):
        assert_allclose(v, u, rtol=1e-9, atol=1e-8)


def test_a_cop_outside_the_cells_keeps_fz_and_cop_and_bounds_the_twist():
    cal = with_matrix()
    fz, x, y = random_loads(200, 5, inside=False)
    forces = split_load(fz, x, y, ml_mm=GEO.ml_mm, ap_mm=GEO.ap_mm)
    back = cal.to_forces(cal.to_counts(forces))
    got = centre_of_pressure(back, ml_mm=GEO.ml_mm, ap_mm=GEO.ap_mm, min_fz_n=0.0)
    assert_allclose(got[0], fz, rtol=1e-9)
    assert_allclose(got[1], x, rtol=1e-9, atol=1e-8)
    assert_allclose(got[2], y, rtol=1e-9, atol=1e-8)
    twist = back[:, 0] - back[:, 1] - back[:, 2] + back[:, 3]
    assert np.all(np.abs(twist) <= np.abs(fz) * (1 + 1e-12))


def test_an_empty_plate_with_a_matrix_reads_finite_small_forces():
    cal = with_matrix()
    rng = np.random.default_rng(6)
    counts = OFFSETS + rng.normal(0, 40.0, (1000, 4))
    counts[0] = OFFSETS  # exactly zero
    forces = cal.to_forces(counts)
    assert np.all(np.isfinite(forces))
    assert_allclose(forces[0], 0.0, atol=0.0)
    assert np.max(np.abs(forces)) < 0.1  # 40 counts ~ 0.01 N per cell; no blow-up near Fz = 0


def test_a_matrix_without_crosstalk_equals_the_per_cell_gains_for_rigid_loads():
    cal = per_cell(matrix=(W @ np.diag(GAINS)).tolist())
    fz, x, y = random_loads(100, 7)
    counts = per_cell().to_counts(split_load(fz, x, y, ml_mm=GEO.ml_mm, ap_mm=GEO.ap_mm))
    assert_allclose(cal.to_forces(counts), per_cell().to_forces(counts), rtol=1e-9, atol=1e-9)


def test_bad_matrices_are_refused():
    with pytest.raises(CalibrationError, match="matrix must be 3 rows of 4 finite numbers"):
        per_cell(matrix=[[1.0, 2.0, 3.0, 4.0]])
    with pytest.raises(CalibrationError, match="matrix must be 3 rows of 4 finite numbers"):
        per_cell(matrix=[[1.0, 2.0, 3.0, float("nan")]] * 3)
    with pytest.raises(CalibrationError, match="matrix must have rank 3"):
        per_cell(matrix=[[1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0], [0.0, 1.0, 0.0, 1.0]])
    with pytest.raises(CalibrationError, match="plate_ml_mm must be a positive distance"):
        per_cell(plate_ml_mm=0.0)


def test_replace_keeps_the_matrix():
    cal = with_matrix()
    rezeroed = dataclasses.replace(cal, offsets_counts=tuple(OFFSETS + 10.0))
    assert rezeroed.matrix == cal.matrix


# -- the file with matrix, placements and verification ---------------------------------------------------


def fitted_placements():
    out = []
    for m, x, y in [(20.0, 0.0, 0.0), (20.0, 170.0, 125.0), (60.0, -170.0, -125.0)]:
        f = split_load(force_of_mass_n(m), x, y, ml_mm=GEO.ml_mm, ap_mm=GEO.ap_mm)
        c = np.linalg.pinv(MATRIX) @ (W @ f) + OFFSETS
        out.append(Placement(mass_kg=m, x_mm=x, y_mm=y, mean_counts=c, std_counts=(40.0, 41.0, 39.5, 40.2),
                             n_frames=160, rejected_frames=1))
    return out


def test_file_round_trip_with_matrix_placements_and_verification(tmp_path):
    placements = fitted_placements()
    cal = with_matrix(station_id="clinic-1", backend="hx711-lgpio", placements=placements)
    v = verify(cal, placements, geometry=GEO)
    assert v.passed
    cal = dataclasses.replace(cal, verification=v)  # a Verification object is stored as its report
    assert cal.verification == v.to_report()
    assert cal.placements == tuple(p.to_dict() for p in placements)

    path = tmp_path / "calibration.json"
    cal.save(path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["version"] == 2
    assert doc["matrix_rows"] == ["fz_n", "mx_nmm", "my_nmm"]
    back = Calibration.load(path)
    assert back.matrix == cal.matrix  # exact: JSON writes floats in full
    assert back.placements == cal.placements
    assert back.verification == cal.verification
    assert back.extra == {}
    assert [Placement.from_dict(p) for p in back.placements] == placements
    counts = np.array([p.mean_counts for p in placements])
    assert_allclose(back.to_forces(counts), cal.to_forces(counts), rtol=0, atol=0)
    assert back.to_dict() == cal.to_dict()


def test_the_file_is_readable_by_a_person(tmp_path):
    placements = fitted_placements()
    cal = with_matrix(placements=placements)
    cal = dataclasses.replace(cal, verification=verify(cal, placements, geometry=GEO))
    path = tmp_path / "calibration.json"
    cal.save(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "{" and lines[-1] == "}"
    assert sum(line.strip().startswith('"offsets_counts": [') and line.endswith("],") for line in lines) == 1
    matrix_at = lines.index('  "matrix": [')
    assert all(lines[matrix_at + i].strip().startswith("[") for i in (1, 2, 3))  # one row a line
    assert sum('"mean_counts": [' in line for line in lines) == 3  # one placement a line
    assert max(len(line) for line in lines) < 400


@pytest.mark.parametrize("doc", [
    {"a": 1, "b": [1, 2.5, None, "x"], "c": {"d": [[1, 2], [3, 4]], "e": []}, "f": {}},
    [{"k": 1, "l": [1, 2]}, {"k": {"nested": True}}],
    [],
    "text",
])
def test_format_json_is_json(doc):
    assert json.loads(format_json(doc)) == doc


def test_bad_placements_and_verification_are_refused():
    with pytest.raises(CalibrationError, match="each placement must be a dict or a Placement"):
        per_cell(placements=[1, 2])
    with pytest.raises(CalibrationError, match="verification must be a dict or a Verification"):
        per_cell(verification=[1])
    with pytest.raises(CalibrationError, match="plain data"):
        per_cell(verification={"when": WHEN})
    doc = with_matrix().to_dict()
    doc["matrix_rows"] = ["my_nmm", "mx_nmm", "fz_n"]
    with pytest.raises(CalibrationError, match="x.json: matrix_rows must be"):
        Calibration.from_dict(doc, source="x.json")
    doc = with_matrix().to_dict()
    doc["matrix"] = [[1, 2]]
    with pytest.raises(CalibrationError, match="x.json: matrix must be 3 rows of 4"):
        Calibration.from_dict(doc, source="x.json")
