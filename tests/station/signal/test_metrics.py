"""COP metrics (station.signal.metrics): closed forms, a slow loop implementation, limits, the BDS trials."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from station.core.cop import centre_of_pressure
from station.signal.metrics import (
    COP_KEYS,
    cop_metrics,
    ellipse95_area_mm2,
    mean_velocity_mm_s,
    path_length_mm,
    prediction_ellipse_area_mm2,
    range_mm,
    rms_mm,
)
from tests.paths import BDS_DIR

SEED = 20261121


# -- an independent, loop-based implementation of the contract's formulas ------------------------


def f_quantile_2_m(p: float, m: int) -> float:
    """p-quantile of F(2, m) in closed form: the CDF is 1 - (1 + 2x/m)^(-m/2)."""
    return (m / 2) * ((1 - p) ** (-2 / m) - 1)


def slow_metrics(xs: list[float], ys: list[float], fs_hz: float) -> dict[str, float]:
    n = len(xs)
    mx = sum(xs) / n
    my = sum(ys) / n
    x = [v - mx for v in xs]
    y = [v - my for v in ys]
    path = 0.0
    for i in range(1, n):
        path += math.sqrt((x[i] - x[i - 1]) ** 2 + (y[i] - y[i - 1]) ** 2)
    sxx = syy = sxy = 0.0
    for a, b in zip(x, y):
        sxx += a * a
        syy += b * b
        sxy += a * b
    cxx, cyy, cxy = sxx / (n - 1), syy / (n - 1), sxy / (n - 1)
    half_trace = (cxx + cyy) / 2
    root = math.sqrt(((cxx - cyy) / 2) ** 2 + cxy**2)
    l1, l2 = half_trace + root, max(half_trace - root, 0.0)
    f = f_quantile_2_m(0.95, n - 2)
    area = math.pi * math.sqrt(l1 * l2) * f * 2 * (n - 1) * (n + 1) / (n * (n - 2))
    return {
        "path_length_mm": path,
        "mean_velocity_mm_s": path / (n / fs_hz),
        "ml_range_mm": max(x) - min(x),
        "ap_range_mm": max(y) - min(y),
        "ml_rms_mm": math.sqrt(sxx / n),
        "ap_rms_mm": math.sqrt(syy / n),
        "ellipse95_area_mm2": area,
    }


def random_walk_cop(n: int, *, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Seeded sway-like COP (mm): a correlated random walk around an offset."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, [0.15, 0.25], size=(n, 2))
    steps[:, 1] += 0.5 * steps[:, 0]  # correlated axes: a tilted ellipse
    xy = np.cumsum(steps, axis=0) + [12.0, -35.0]
    return xy[:, 0], xy[:, 1]


# -- closed forms ----------------------------------------------------------------------------


def test_f_quantile_closed_form_matches_scipy():
    for m in (1, 2, 5, 38, 998, 5998):
        assert_allclose(stats.f.ppf(0.95, 2, m), f_quantile_2_m(0.95, m), rtol=1e-10)


@pytest.mark.parametrize("n", [8, 40, 1000])
def test_circle_path_rms_range(n):
    r = 7.5
    theta = 2 * np.pi * np.arange(n) / n  # n points evenly on a full turn
    x, y = 3.0 + r * np.cos(theta), -2.0 + r * np.sin(theta)
    # n - 1 chords of a regular n-gon inscribed in the circle
    assert_allclose(path_length_mm(x, y), (n - 1) * 2 * r * math.sin(math.pi / n), rtol=1e-12)
    assert_allclose(mean_velocity_mm_s(x, y, fs_hz=80.0), (n - 1) * 2 * r * math.sin(math.pi / n) / (n / 80.0),
                    rtol=1e-12)
    # mean-removed: sum cos^2 = sum sin^2 = n/2 for n >= 3
    assert_allclose(rms_mm(x), r / math.sqrt(2), rtol=1e-12)
    assert_allclose(rms_mm(y), r / math.sqrt(2), rtol=1e-12)
    # n divisible by 4: the points include 0, 90, 180 and 270 degrees
    assert_allclose(range_mm(x), 2 * r, rtol=1e-12)
    assert_allclose(range_mm(y), 2 * r, rtol=1e-12)


@pytest.mark.parametrize("n", [12, 400])
def test_ellipse_points_area(n):
    a, b = 9.0, 4.0
    theta = 2 * np.pi * np.arange(n) / n
    x, y = a * np.cos(theta), b * np.sin(theta)
    # sample covariance (n - 1 divisor): diag(a^2/2, b^2/2) * n / (n - 1)
    l1, l2 = a * a / 2 * n / (n - 1), b * b / 2 * n / (n - 1)
    expected = math.pi * math.sqrt(l1 * l2) * f_quantile_2_m(0.95, n - 2) * 2 * (n - 1) * (n + 1) / (n * (n - 2))
    assert_allclose(ellipse95_area_mm2(x, y), expected, rtol=1e-10)
    assert_allclose(rms_mm(x), a / math.sqrt(2), rtol=1e-12)
    assert_allclose(rms_mm(y), b / math.sqrt(2), rtol=1e-12)


@pytest.mark.parametrize("n", [3, 10, 2500])
def test_known_covariance_area(n):
    """Data whitened to an exact sample covariance: the area follows from det(cov) alone."""
    rng = np.random.default_rng(SEED + n)
    z = rng.normal(size=(n, 2))
    z -= z.mean(axis=0)
    if n == 3:  # two free dimensions only: make the two columns orthogonal by hand
        z = np.array([[1.0, 0.0], [-0.5, math.sqrt(3) / 2], [-0.5, -math.sqrt(3) / 2]])
    chol = np.linalg.cholesky(np.cov(z.T, ddof=1))
    white = z @ np.linalg.inv(chol).T  # sample covariance exactly I
    cov = np.array([[16.0, 6.0], [6.0, 9.0]])  # det 108
    xy = white @ np.linalg.cholesky(cov).T + [40.0, 25.0]
    assert_allclose(np.cov(xy.T, ddof=1), cov, rtol=1e-10, atol=1e-10)
    expected = math.pi * math.sqrt(108.0) * stats.f.ppf(0.95, 2, n - 2) * 2 * (n - 1) * (n + 1) / (n * (n - 2))
    assert_allclose(ellipse95_area_mm2(xy[:, 0], xy[:, 1]), expected, rtol=1e-9)


def test_prediction_ellipse_other_probability():
    x, y = random_walk_cop(500)
    a50 = prediction_ellipse_area_mm2(x, y, probability=0.5)
    a95 = ellipse95_area_mm2(x, y)
    # same ellipse shape: the areas scale with the F quantiles
    assert_allclose(a95 / a50, f_quantile_2_m(0.95, 498) / f_quantile_2_m(0.5, 498), rtol=1e-10)


def test_constant_cop_gives_zeros():
    x = np.full(200, 12.5)
    y = np.full(200, -3.0)
    m = cop_metrics(x, y, fs_hz=80.0)
    assert m == {k: 0.0 for k in COP_KEYS}


def test_cop_on_a_line_has_zero_area():
    t = np.linspace(0, 1, 300)
    x, y = 5 * np.sin(7 * t), 10 * np.sin(7 * t)  # exactly collinear
    assert ellipse95_area_mm2(x, y) == pytest.approx(0.0, abs=1e-9)
    assert path_length_mm(x, y) > 0


# -- slow implementation and invariances ----------------------------------------------------------


@pytest.mark.parametrize("n,fs_hz", [(3, 10.0), (97, 80.0), (4800, 80.0), (6000, 100.0)])
def test_matches_slow_loop_implementation(n, fs_hz):
    x, y = random_walk_cop(n, seed=SEED + n)
    fast = cop_metrics(x, y, fs_hz=fs_hz)
    slow = slow_metrics(x.tolist(), y.tolist(), fs_hz)
    assert list(fast) == list(COP_KEYS)
    for key in COP_KEYS:
        assert isinstance(fast[key], float)
        assert_allclose(fast[key], slow[key], rtol=1e-9, atol=1e-12, err_msg=key)


def test_single_metric_functions_agree_with_cop_metrics():
    x, y = random_walk_cop(1000)
    m = cop_metrics(x, y, fs_hz=80.0)
    assert_allclose(m["path_length_mm"], path_length_mm(x, y), rtol=1e-12)
    assert_allclose(m["mean_velocity_mm_s"], mean_velocity_mm_s(x, y, fs_hz=80.0), rtol=1e-12)
    assert_allclose(m["ml_range_mm"], range_mm(x), rtol=1e-12)
    assert_allclose(m["ap_rms_mm"], rms_mm(y), rtol=1e-12)
    assert_allclose(m["ellipse95_area_mm2"], ellipse95_area_mm2(x, y), rtol=1e-10)


def test_translation_and_rotation_invariance():
    x, y = random_walk_cop(2000)
    base = cop_metrics(x, y, fs_hz=80.0)
    shifted = cop_metrics(x + 150.0, y - 80.0, fs_hz=80.0)
    for key in COP_KEYS:
        assert_allclose(shifted[key], base[key], rtol=1e-9, err_msg=key)
    c, s = math.cos(0.7), math.sin(0.7)
    xr, yr = c * x - s * y, s * x + c * y
    assert_allclose(path_length_mm(xr, yr), base["path_length_mm"], rtol=1e-12)
    assert_allclose(ellipse95_area_mm2(xr, yr), base["ellipse95_area_mm2"], rtol=1e-9)


def test_scaling():
    x, y = random_walk_cop(500)
    base = cop_metrics(x, y, fs_hz=80.0)
    scaled = cop_metrics(3 * x, 3 * y, fs_hz=80.0)
    assert_allclose(scaled["path_length_mm"], 3 * base["path_length_mm"], rtol=1e-12)
    assert_allclose(scaled["ml_rms_mm"], 3 * base["ml_rms_mm"], rtol=1e-12)
    assert_allclose(scaled["ellipse95_area_mm2"], 9 * base["ellipse95_area_mm2"], rtol=1e-10)
    # doubling the rate of the same samples halves the duration: velocity doubles
    assert_allclose(mean_velocity_mm_s(x, y, fs_hz=160.0), 2 * base["mean_velocity_mm_s"], rtol=1e-12)


# -- limits and bad arguments ---------------------------------------------------------------------


def test_smallest_inputs():
    assert path_length_mm([0.0, 3.0], [0.0, 4.0]) == 5.0
    assert mean_velocity_mm_s([0.0, 3.0], [0.0, 4.0], fs_hz=10.0) == 25.0  # 5 mm / (2 / 10 s)
    assert range_mm([4.0]) == 0.0
    assert rms_mm([4.0]) == 0.0
    # n = 3: F(0.95; 2, 1) = 199.5, factor 2*2*4/(3*1) = 16/3
    x, y = [1.0, -0.5, -0.5], [0.0, math.sqrt(3) / 2, -math.sqrt(3) / 2]  # covariance 0.75 * I
    assert_allclose(ellipse95_area_mm2(x, y), math.pi * 0.75 * 199.5 * 16 / 3, rtol=1e-10)


@pytest.mark.parametrize(
    "call,word",
    [
        (lambda: path_length_mm([1.0], [1.0]), "cop_ml_mm"),
        (lambda: path_length_mm([1.0, 2.0], [1.0, 2.0, 3.0]), "same length"),
        (lambda: path_length_mm([[1.0, 2.0]], [1.0, 2.0]), "one-dimensional"),
        (lambda: path_length_mm([1.0, np.nan], [1.0, 2.0]), "cop_ml_mm"),
        (lambda: path_length_mm([1.0, 2.0], [1.0, np.inf]), "cop_ap_mm"),
        (lambda: ellipse95_area_mm2([1.0, 2.0], [1.0, 2.0]), "at least 3"),
        (lambda: mean_velocity_mm_s([1.0, 2.0], [1.0, 2.0], fs_hz=0.0), "fs_hz"),
        (lambda: mean_velocity_mm_s([1.0, 2.0], [1.0, 2.0], fs_hz=float("nan")), "fs_hz"),
        (lambda: cop_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], fs_hz=-80.0), "fs_hz"),
        (lambda: range_mm([]), "cop_mm"),
        (lambda: rms_mm([np.nan]), "cop_mm"),
        (lambda: prediction_ellipse_area_mm2([1.0, 2.0, 3.0], [3.0, 1.0, 2.0], probability=1.0), "probability"),
    ],
)
def test_bad_arguments_are_named(call, word):
    with pytest.raises(ValueError, match=word):
        call()


def test_numeric_parameters_are_keyword_only():
    with pytest.raises(TypeError):
        mean_velocity_mm_s([1.0, 2.0], [1.0, 2.0], 80.0)  # type: ignore[misc]
    with pytest.raises(TypeError):
        cop_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], 80.0)  # type: ignore[misc]


# -- the published values of the four BDS trials --------------------------------------------------


def _load_bds(trial: str) -> tuple[np.ndarray, np.ndarray, float]:
    lines = (BDS_DIR / f"{trial}.csv").read_text(encoding="utf-8").splitlines()
    rows = [line for line in lines if line.strip() and not line.startswith("#")][1:]  # past the header
    data = np.loadtxt(rows, delimiter=",")
    _, x, y = centre_of_pressure(data[:, 1:5], ml_mm=400.0, ap_mm=300.0)
    return x, y, 100.0


@pytest.mark.parametrize("trial", ["BDS00001", "BDS00004", "BDS00007", "BDS00010"])
def test_bds_published_values(trial):
    reference = json.loads((BDS_DIR / "reference.json").read_text(encoding="utf-8"))[trial]
    x, y, fs_hz = _load_bds(trial)
    m = cop_metrics(x, y, fs_hz=fs_hz)
    assert_allclose(m["ellipse95_area_mm2"], reference["ellipse95_area_mm2"], rtol=0.005)
    assert_allclose(m["mean_velocity_mm_s"], reference["mean_velocity_mm_s"], rtol=0.005)
