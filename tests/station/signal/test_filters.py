"""Low-pass filters (station.signal.filters): zero-phase for analysis, causal for the live display."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import signal

from station.signal.filters import CausalLowpass, lowpass_zero_phase, min_samples_zero_phase

SEED = 20261121


# -- an independent, loop-based forward-backward filter --------------------------------------------


def slow_sos_steady_state(sos: np.ndarray) -> list[tuple[float, float]]:
    """Direct form II transposed state of each section for a unit step held forever."""
    states = []
    gain_in = 1.0
    for b0, b1, b2, a0, a1, a2 in sos:
        assert a0 == 1.0
        g = (b0 + b1 + b2) / (1 + a1 + a2)
        # o = b0 u + z1 = g u;  z2 = b2 u - a2 o
        states.append(((g - b0) * gain_in, (b2 - a2 * g) * gain_in))
        gain_in *= g
    return states


def slow_sosfilt(sos: np.ndarray, x: list[float], x0: float) -> list[float]:
    """Cascade of biquads, one sample at a time, started in steady state for the value ``x0``."""
    y = list(x)
    for (b0, b1, b2, _, a1, a2), (s1, s2) in zip(sos, slow_sos_steady_state(sos)):
        z1, z2 = s1 * x0, s2 * x0
        out = []
        for v in y:
            o = b0 * v + z1
            z1 = b1 * v - a1 * o + z2
            z2 = b2 * v - a2 * o
            out.append(o)
        y = out  # (the states above already carry the gains of the sections before)
    return y


def slow_zero_phase(x: list[float], *, fs_hz: float, cutoff_hz: float, order: int = 4) -> list[float]:
    """The documented recipe: odd padding of max(default, ceil(3 fs / fc)) samples, forward, backward."""
    sos = signal.butter(order, cutoff_hz, fs=fs_hz, output="sos")
    n = len(x)
    padlen = min(max(3 * (2 * len(sos) + 1), math.ceil(3 * fs_hz / cutoff_hz)), n - 1)
    head = [2 * x[0] - x[k] for k in range(padlen, 0, -1)]
    tail = [2 * x[-1] - x[n - 1 - k] for k in range(1, padlen + 1)]
    ext = head + list(x) + tail
    fwd = slow_sosfilt(sos, ext, ext[0])
    bwd = slow_sosfilt(sos, fwd[::-1], fwd[-1])[::-1]
    return bwd[padlen : padlen + n]


def sine(f_hz: float, fs_hz: float, n: int, phase: float = 0.0) -> np.ndarray:
    return np.sin(2 * np.pi * f_hz * np.arange(n) / fs_hz + phase)


# -- zero-phase low-pass ------------------------------------------------------------------------


def test_dc_passes_exactly():
    x = np.full(500, 537.25)
    assert_allclose(lowpass_zero_phase(x, fs_hz=100.0, cutoff_hz=10.0), x, rtol=1e-12)
    x2 = np.column_stack([np.full(300, -12.0), np.full(300, 0.0), np.full(300, 1e4)])
    assert_allclose(lowpass_zero_phase(x2, fs_hz=80.0, cutoff_hz=10.0), x2, rtol=1e-12, atol=1e-12)


def test_ramp_passes_with_odd_padding():
    """Odd (point-reflection) padding keeps a straight line straight, ends included.

    Only the start-up of the padded part differs (the filter starts in steady
    state for a constant, not a ramp); it has decayed to below 1e-4 mm of a
    55 mm ramp where the data begin, and to rounding a few dozen samples in.
    """
    x = np.linspace(-20.0, 35.0, 800)
    y = lowpass_zero_phase(x, fs_hz=80.0, cutoff_hz=10.0)
    assert_allclose(y, x, atol=1e-4)
    assert_allclose(y[40:-40], x[40:-40], atol=1e-9)


@pytest.mark.parametrize("fs_hz,cutoff_hz,f_hz", [(100.0, 10.0, 30.0), (80.0, 10.0, 30.0), (1000.0, 10.0, 30.0)])
def test_attenuation_is_the_squared_butterworth_gain(fs_hz, cutoff_hz, f_hz):
    n = int(20 * fs_hz)
    y = lowpass_zero_phase(sine(f_hz, fs_hz, n), fs_hz=fs_hz, cutoff_hz=cutoff_hz)
    middle = y[n // 4 : 3 * n // 4]  # 10 s: a whole number of 30 Hz periods at these rates
    amplitude = math.sqrt(2 * np.mean(middle**2))
    _, h = signal.sosfreqz(signal.butter(4, cutoff_hz, fs=fs_hz, output="sos"), worN=[f_hz], fs=fs_hz)
    expected = abs(h[0]) ** 2
    assert amplitude == pytest.approx(expected, rel=1e-3)
    assert amplitude < 2e-4  # 30 Hz: below -74 dB at 80, 100 and 1000 Hz


def test_passband_and_cutoff_gain():
    fs_hz, n = 100.0, 4000
    slow = sine(1.0, fs_hz, n)
    y = lowpass_zero_phase(slow, fs_hz=fs_hz, cutoff_hz=10.0)
    assert_allclose(y[100:-100], slow[100:-100], atol=1e-6)
    assert_allclose(y, slow, atol=1e-3)  # the ends: odd padding does not continue the curvature
    at_cutoff = lowpass_zero_phase(sine(10.0, fs_hz, n, 0.3), fs_hz=fs_hz, cutoff_hz=10.0)
    # -3 dB single pass, so -6 dB (gain 0.5) forward and backward
    assert np.max(np.abs(at_cutoff[1000:3000])) == pytest.approx(0.5, abs=2e-3)


def test_zero_phase_has_no_lag():
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=4000)
    y = lowpass_zero_phase(x, fs_hz=100.0, cutoff_hz=5.0)
    lags = np.arange(-50, 51)
    xc = [np.dot(y[200 + k : 3800 + k], x[200:3800]) for k in lags]
    assert lags[int(np.argmax(xc))] == 0
    # and a sine keeps its phase: filtered minus input is tiny everywhere, not a shifted copy
    s = sine(0.8, 100.0, 4000, 1.1)
    assert np.max(np.abs(lowpass_zero_phase(s, fs_hz=100.0, cutoff_hz=5.0) - s)[100:-100]) < 1e-5


@pytest.mark.parametrize("n,fs_hz,cutoff_hz", [(16, 100.0, 10.0), (40, 80.0, 10.0), (700, 100.0, 10.0), (300, 100.0,
                                                                                                         1.0)])
def test_matches_slow_loop_implementation(n, fs_hz, cutoff_hz):
    rng = np.random.default_rng(SEED + n)
    x = np.cumsum(rng.normal(size=n)) + 50.0
    fast = lowpass_zero_phase(x, fs_hz=fs_hz, cutoff_hz=cutoff_hz)
    slow = slow_zero_phase(x.tolist(), fs_hz=fs_hz, cutoff_hz=cutoff_hz)
    assert_allclose(fast, slow, rtol=1e-10, atol=1e-9)


def test_axis_and_columns():
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(500, 3))
    y = lowpass_zero_phase(x, fs_hz=80.0, cutoff_hz=10.0)
    for j in range(3):
        assert_allclose(y[:, j], lowpass_zero_phase(x[:, j], fs_hz=80.0, cutoff_hz=10.0), rtol=1e-12, atol=1e-14)
    assert_allclose(lowpass_zero_phase(x.T, fs_hz=80.0, cutoff_hz=10.0, axis=1), y.T, rtol=1e-12, atol=1e-14)
    assert_allclose(lowpass_zero_phase(x.T, fs_hz=80.0, cutoff_hz=10.0, axis=-1), y.T, rtol=1e-12, atol=1e-14)


def test_shortest_signal():
    need = min_samples_zero_phase(order=4)
    assert need == 16
    y = lowpass_zero_phase(np.arange(need, dtype=float), fs_hz=100.0, cutoff_hz=10.0)
    assert y.shape == (need,)
    with pytest.raises(ValueError, match=r"too short.*15 samples.*at least 16"):
        lowpass_zero_phase(np.arange(need - 1, dtype=float), fs_hz=100.0, cutoff_hz=10.0)
    assert min_samples_zero_phase(order=2) == 10


@pytest.mark.parametrize(
    "kwargs,word",
    [
        ({"fs_hz": 100.0, "cutoff_hz": 50.0}, "cutoff_hz"),
        ({"fs_hz": 100.0, "cutoff_hz": 60.0}, "cutoff_hz"),
        ({"fs_hz": 100.0, "cutoff_hz": 0.0}, "cutoff_hz"),
        ({"fs_hz": 100.0, "cutoff_hz": float("nan")}, "cutoff_hz"),
        ({"fs_hz": 0.0, "cutoff_hz": 10.0}, "fs_hz"),
        ({"fs_hz": float("inf"), "cutoff_hz": 10.0}, "fs_hz"),
        ({"fs_hz": 100.0, "cutoff_hz": 10.0, "order": 0}, "order"),
        ({"fs_hz": 100.0, "cutoff_hz": 10.0, "order": 2.5}, "order"),
        ({"fs_hz": 100.0, "cutoff_hz": 10.0, "axis": 2}, "axis"),
    ],
)
def test_bad_arguments_are_named(kwargs, word):
    with pytest.raises(ValueError, match=word):
        lowpass_zero_phase(np.zeros((100, 2)), **kwargs)


def test_non_finite_signal_is_refused():
    x = np.zeros(100)
    x[37] = np.nan
    with pytest.raises(ValueError, match="sample 37"):
        lowpass_zero_phase(x, fs_hz=100.0, cutoff_hz=10.0)
    with pytest.raises(ValueError, match="at least one dimension"):
        lowpass_zero_phase(np.float64(1.0), fs_hz=100.0, cutoff_hz=10.0)


def test_parameters_are_keyword_only():
    with pytest.raises(TypeError):
        lowpass_zero_phase(np.zeros(100), 100.0, 10.0)  # type: ignore[misc]


# -- causal streaming low-pass ---------------------------------------------------------------------


def test_causal_starts_at_the_input_and_holds_dc():
    lp = CausalLowpass()  # 2nd order, 8 Hz, 80 Hz
    frame = np.array([702.5, 12.25, -31.0])
    for _ in range(200):
        assert_allclose(lp.update(frame), frame, rtol=1e-12)
    assert lp.n_channels == 3


def test_causal_matches_slow_loop_implementation():
    rng = np.random.default_rng(SEED)
    x = np.cumsum(rng.normal(size=(400, 2)), axis=0) + [700.0, 15.0]
    lp = CausalLowpass(fs_hz=80.0, cutoff_hz=8.0, order=2)
    fast = np.array([lp.update(row) for row in x])
    sos = signal.butter(2, 8.0, fs=80.0, output="sos")
    for j in range(2):
        slow = slow_sosfilt(sos, x[:, j].tolist(), x[0, j])
        assert_allclose(fast[:, j], slow, rtol=1e-12, atol=1e-9)
    # the block helper is the same loop
    assert_allclose(CausalLowpass().filter_block(x), fast, rtol=0, atol=0)


def test_causal_single_channel_and_scalar():
    lp = CausalLowpass()
    out = lp.update(5.0)
    assert out.shape == () and float(out) == pytest.approx(5.0, rel=1e-12)
    assert lp.update(np.array([5.0])).shape == (1,)  # still one channel


def test_causal_attenuates_30_hz():
    lp = CausalLowpass(fs_hz=80.0, cutoff_hz=8.0)
    y = lp.filter_block(sine(30.0, 80.0, 800))
    _, h = signal.sosfreqz(signal.butter(2, 8.0, fs=80.0, output="sos"), worN=[30.0], fs=80.0)
    assert np.max(np.abs(y[400:])) == pytest.approx(abs(h[0]), rel=0.02)
    assert np.max(np.abs(y[400:])) < 0.03


def test_causal_group_delay_at_default_settings():
    lp = CausalLowpass()
    # the figures the class documents
    assert lp.group_delay_s() == pytest.approx(0.0272, abs=1e-4)
    assert lp.group_delay_s(freq_hz=1.0) == pytest.approx(0.0276, abs=1e-4)
    assert lp.group_delay_s(freq_hz=2.0) == pytest.approx(0.0289, abs=1e-4)
    # measured: a slow sine comes out late by the group delay
    fs_hz, f_hz = 80.0, 0.25
    n = int(40 * fs_hz)  # 10 periods
    t = np.arange(n) / fs_hz
    y = lp.filter_block(np.sin(2 * np.pi * f_hz * t))
    seg = slice(int(8 * fs_hz), n)  # after any start-up effect, an integer number of periods
    phase = np.angle(np.sum(y[seg] * np.exp(-2j * np.pi * f_hz * t[seg])))
    phase_in = np.angle(np.sum(np.sin(2 * np.pi * f_hz * t[seg]) * np.exp(-2j * np.pi * f_hz * t[seg])))
    delay_s = (phase_in - phase) / (2 * np.pi * f_hz)
    assert delay_s == pytest.approx(lp.group_delay_s(), rel=0.01)


def test_causal_lags_while_zero_phase_does_not():
    rng = np.random.default_rng(SEED)
    x = signal.sosfiltfilt(signal.butter(2, 3.0, fs=80.0, output="sos"), rng.normal(size=4000))  # smooth sway
    y = CausalLowpass().filter_block(x)
    lags = np.arange(-20, 21)
    xc = [np.dot(y[100 + k : 3900 + k], x[100:3900]) for k in lags]
    assert lags[int(np.argmax(xc))] == 2  # about 2.2 samples late


def test_nan_resets_the_channel():
    lp = CausalLowpass()
    for _ in range(50):
        lp.update([700.0, 10.0])
    lp.update([700.0, 30.0])  # a step: the output is now between 10 and 30
    out = lp.update([np.nan, np.nan])
    assert np.all(np.isnan(out))
    # nobody on the plate, then someone steps on: no transient from the old state
    assert_allclose(lp.update([650.0, -5.0]), [650.0, -5.0], rtol=1e-12)


def test_nan_on_one_channel_leaves_the_others_alone():
    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(120, 2)) + [700.0, 0.0]
    x_gap = x.copy()
    x_gap[40:60, 1] = np.nan  # COP undefined, Fz still there
    alone = CausalLowpass().filter_block(x[:, 0])
    both = CausalLowpass().filter_block(x_gap)
    assert_allclose(both[:, 0], alone, rtol=1e-12)
    assert np.all(np.isnan(both[40:60, 1]))
    # the channel restarts at its first finite value, then runs as a fresh filter
    fresh = CausalLowpass().filter_block(x[60:, 1])
    assert_allclose(both[60:, 1], fresh, rtol=1e-12, atol=1e-12)


def test_reset_and_channel_count():
    lp = CausalLowpass()
    lp.update([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="started with 3"):
        lp.update([1.0, 2.0])
    lp.reset()
    assert lp.n_channels is None
    assert_allclose(lp.update([1.0, 2.0]), [1.0, 2.0])
    with pytest.raises(ValueError, match="shape"):
        lp.update(np.zeros((2, 2)))


@pytest.mark.parametrize(
    "kwargs,word",
    [({"cutoff_hz": 40.0}, "cutoff_hz"), ({"fs_hz": -1.0}, "fs_hz"), ({"order": 0}, "order")],
)
def test_causal_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        CausalLowpass(**kwargs)
    with pytest.raises(ValueError, match="freq_hz"):
        CausalLowpass().group_delay_s(freq_hz=50.0)
