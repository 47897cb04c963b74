"""Resampling onto the nominal grid (station.signal.resample)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from station.signal.resample import resample_uniform, uniform_grid_s

SEED = 20261121


def slow_resample(t: list[float], v: list[float], grid: list[float]) -> list[float]:
    """Linear interpolation by scanning for each grid time's interval, one at a time."""
    out = []
    for tg in grid:
        k = 0
        while k < len(t) - 2 and t[k + 1] <= tg:
            k += 1
        w = min(max((tg - t[k]) / (t[k + 1] - t[k]), 0.0), 1.0)
        out.append(v[k] * (1 - w) + v[k + 1] * w)
    return out


def jittered_times(n: int, fs_hz: float, *, jitter_s: float, seed: int = SEED) -> np.ndarray:
    """Nominal times plus uniform jitter, as four free-running HX711s produce."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fs_hz + rng.uniform(-jitter_s, jitter_s, size=n)
    t[0] = 0.0
    assert np.all(np.diff(t) > 0)
    return t


def test_irregular_timestamps_reproduce_a_slow_sine():
    fs_hz, f_hz, amp_mm = 80.0, 0.5, 10.0
    t = jittered_times(2400, fs_hz, jitter_s=0.003)  # +-3 ms on a 12.5 ms period
    tu, vu = resample_uniform(t, amp_mm * np.sin(2 * np.pi * f_hz * t), fs_hz=fs_hz)
    h = float(np.max(np.diff(t)))
    # linear interpolation error bound: (pi f h)^2 / 2 times the amplitude
    bound = amp_mm * (math.pi * f_hz * h) ** 2 / 2
    assert bound < 0.005  # mm: the stated tolerance
    err = np.abs(vu - amp_mm * np.sin(2 * np.pi * f_hz * tu))
    assert np.max(err) <= bound
    assert_allclose(np.diff(tu), 1 / fs_hz, rtol=1e-9)


def test_uniform_input_comes_back_unchanged():
    t = np.round(np.arange(6000) * 0.01, 3)  # as written in the BDS files, 59.99 s last
    rng = np.random.default_rng(SEED)
    v = rng.normal(size=(6000, 4)) + 170.0
    tu, vu = resample_uniform(t, v, fs_hz=100.0)
    assert tu.size == 6000
    assert_allclose(tu, t, atol=1e-12)
    assert_allclose(vu, v, rtol=1e-12)


def test_linear_signal_is_exact():
    t = jittered_times(500, 100.0, jitter_s=0.004)
    tu, vu = resample_uniform(t, 3.0 * t - 7.0, fs_hz=100.0)
    assert_allclose(vu, 3.0 * tu - 7.0, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fs_hz", [10.0, 80.0, 1000.0])
def test_matches_slow_loop_implementation(fs_hz):
    rng = np.random.default_rng(SEED + int(fs_hz))
    t = np.cumsum(rng.uniform(0.2, 1.8, size=300)) / fs_hz + 5.0  # rate wanders: 0.2 to 1.8 periods
    v = np.cumsum(rng.normal(size=300))
    tu, vu = resample_uniform(t, v, fs_hz=fs_hz)
    assert tu[0] == t[0]
    assert tu[-1] <= t[-1] + 1e-6 / fs_hz and tu[-1] + 1 / fs_hz > t[-1]
    assert_allclose(vu, slow_resample(t.tolist(), v.tolist(), tu.tolist()), rtol=1e-12, atol=1e-12)


def test_columns_are_interpolated_independently():
    t = jittered_times(200, 80.0, jitter_s=0.004)
    v = np.column_stack([np.sin(t), np.cos(3 * t), t**2, -t])
    tu, vu = resample_uniform(t, v, fs_hz=80.0)
    assert vu.shape == (tu.size, 4)
    for j in range(4):
        assert_allclose(vu[:, j], np.interp(tu, t, v[:, j]), rtol=1e-12, atol=1e-14)


def test_grid_length_and_limits():
    assert uniform_grid_s(start_s=0.0, end_s=59.99, fs_hz=100.0).size == 6000
    assert uniform_grid_s(start_s=0.0, end_s=0.0, fs_hz=80.0).tolist() == [0.0]
    assert uniform_grid_s(start_s=1.0, end_s=1.0124, fs_hz=80.0).tolist() == [1.0]
    assert uniform_grid_s(start_s=1.0, end_s=1.0125, fs_hz=80.0).size == 2
    # two samples only: the shortest accepted input
    tu, vu = resample_uniform([0.0, 0.025], [1.0, 3.0], fs_hz=80.0)
    assert_allclose(tu, [0.0, 0.0125, 0.025])
    assert_allclose(vu, [1.0, 2.0, 3.0])


@pytest.mark.parametrize(
    "t,v,fs_hz,word",
    [
        ([0.0, 0.1, 0.1, 0.2], [1.0, 2.0, 3.0, 4.0], 10.0, "strictly increasing"),
        ([0.0, 0.2, 0.1], [1.0, 2.0, 3.0], 10.0, r"t_s\[2\]"),
        ([0.0, np.nan, 0.2], [1.0, 2.0, 3.0], 10.0, "t_s must be finite"),
        ([0.0], [1.0], 10.0, "at least 2"),
        ([[0.0, 0.1]], [1.0, 2.0], 10.0, "one-dimensional"),
        ([0.0, 0.1, 0.2], [1.0, 2.0], 10.0, "values must have 3"),
        ([0.0, 0.1, 0.2], [1.0, np.inf, 2.0], 10.0, "values must be finite; sample 1"),
        ([0.0, 0.1, 0.2], [1.0, 2.0, 3.0], 0.0, "fs_hz"),
        ([0.0, 0.1, 0.2], [1.0, 2.0, 3.0], float("nan"), "fs_hz"),
    ],
)
def test_bad_input_is_named(t, v, fs_hz, word):
    with pytest.raises(ValueError, match=word):
        resample_uniform(t, v, fs_hz=fs_hz)


def test_fs_is_keyword_only():
    with pytest.raises(TypeError):
        resample_uniform([0.0, 1.0], [0.0, 1.0], 10.0)  # type: ignore[misc]
