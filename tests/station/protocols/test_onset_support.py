"""The weight-transfer fit (station/protocols/onset.py) and the hand-support detector
(station/protocols/support.py), against closed forms, seeded noise and limit cases."""

from __future__ import annotations

import numpy as np
import pytest

from station.protocols.onset import fit_transfer
from station.protocols.support import FLOOR_PCT, K_SIGMA, detect_support


def cosine_transfer(t: np.ndarray, *, start_s: float, duration_s: float, a: float, b: float) -> np.ndarray:
    u = np.clip((t - start_s) / duration_s, 0.0, 1.0)
    return a + (b - a) * (0.5 - 0.5 * np.cos(np.pi * u))


@pytest.mark.parametrize("fs", [10.0, 80.0, 100.0, 1000.0])
@pytest.mark.parametrize("duration", [0.5, 1.0, 1.5])
def test_a_clean_cosine_transfer_is_fitted_exactly(fs, duration):
    t = np.arange(0.0, 6.0, 1.0 / fs)
    z = cosine_transfer(t, start_s=2.0, duration_s=duration, a=3.0, b=105.0)
    cross = 2.0 + 0.7 * duration  # inside the transfer
    fit = fit_transfer(t_s=t, toward_mm=z, cross_s=cross)
    assert fit.end_s == pytest.approx(2.0 + duration, abs=0.02)
    assert fit.start_s == pytest.approx(2.0, abs=0.02)
    assert fit.before_mm == pytest.approx(3.0, abs=0.5) and fit.after_mm == pytest.approx(105.0, abs=0.5)
    assert fit.rms_residual_mm < 0.5


def test_the_fit_is_unbiased_under_seeded_sway():
    rng = np.random.default_rng(11)
    fs = 100.0
    t = np.arange(0.0, 6.0, 1.0 / fs)
    errors = []
    for _ in range(40):
        z = cosine_transfer(t, start_s=2.0, duration_s=1.0, a=0.0, b=100.0)
        # sway: a sum of slow sinusoids of random phase, about 4 mm RMS
        for f in (0.5, 0.9, 1.3):
            z = z + 3.3 * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
        errors.append(fit_transfer(t_s=t, toward_mm=z, cross_s=2.8).end_s - 3.0)
    assert abs(np.mean(errors)) < 0.03 and np.max(np.abs(errors)) < 0.15


def test_fit_transfer_refuses_what_it_cannot_fit():
    t = np.arange(0.0, 1.0, 0.2)
    with pytest.raises(ValueError, match="t_s"):
        fit_transfer(t_s=t, toward_mm=t, cross_s=0.5)
    t = np.arange(0.0, 4.0, 0.01)
    with pytest.raises(ValueError, match="cross_s"):
        fit_transfer(t_s=t, toward_mm=t, cross_s=9.0)


# -- hand support -----------------------------------------------------------------------------------------


def trial(*, fs: float = 100.0, seconds: float = 30.0, bw: float = 700.0, sd_pct: float = 0.0, seed: int = 0,
          supports: tuple[tuple[float, float, float], ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Fz of a hold: the body weight, low-passed noise of ``sd_pct`` % BW, step supports (start, length, % BW)."""
    from scipy import signal

    rng = np.random.default_rng(seed)
    t = np.arange(0.0, seconds, 1.0 / fs)
    noise = signal.sosfiltfilt(signal.butter(2, 3.0 / (fs / 2), output="sos"), rng.standard_normal(t.size))
    noise = noise / noise.std() if sd_pct else noise * 0
    fz = bw * (1.0 + sd_pct / 100.0 * noise)
    for start, length, pct in supports:
        fz[(t >= start) & (t < start + length)] -= pct / 100.0 * bw
    return t, fz


def test_a_steady_load_has_no_support_and_the_floor_as_its_limit():
    t, fz = trial()
    found = detect_support(t_s=t, fz_n=fz, body_weight_n=700.0, fs_hz=100.0)
    assert found.runs == () and found.detection_limit_pct_bw == pytest.approx(FLOOR_PCT)


def test_a_step_support_is_found_with_its_times_and_mean():
    t, fz = trial(supports=((10.0, 4.0, 3.0),))
    found = detect_support(t_s=t, fz_n=fz, body_weight_n=700.0, fs_hz=100.0)
    (run,) = found.runs
    assert run.start_s == pytest.approx(10.0, abs=0.1) and run.end_s == pytest.approx(14.0, abs=0.1)
    assert run.mean_pct_bw == pytest.approx(3.0, abs=0.15)


def test_the_limit_follows_the_patients_fluctuation_and_noise_alone_is_no_support():
    limits = []
    for sd in (0.5, 1.0, 2.0):
        false = 0
        for seed in range(10):
            t, fz = trial(sd_pct=sd, seed=seed)
            found = detect_support(t_s=t, fz_n=fz, body_weight_n=700.0, fs_hz=100.0)
            false += sum(r.duration_s for r in found.runs) >= 0.5
            limits.append((sd, found.detection_limit_pct_bw))
        assert false == 0, sd
    by_sd = {sd: np.median([lim for s, lim in limits if s == sd]) for sd in (0.5, 1.0, 2.0)}
    assert by_sd[0.5] < by_sd[1.0] < by_sd[2.0]
    # the limit is K_SIGMA spreads of a 1 s mean of the fluctuation: about K * sd * 0.55 for this band
    assert by_sd[2.0] == pytest.approx(K_SIGMA * 2.0 * 0.4, rel=0.5)


def test_support_above_the_limit_is_found_in_a_fluctuating_patient_and_below_it_is_not():
    t, fz = trial(sd_pct=1.0, seed=3, supports=((5.0, 6.0, 4.0), (18.0, 6.0, 0.4)))
    found = detect_support(t_s=t, fz_n=fz, body_weight_n=700.0, fs_hz=100.0)
    assert len(found.runs) == 1 and found.runs[0].start_s == pytest.approx(5.0, abs=0.3)
    assert found.runs[0].mean_pct_bw == pytest.approx(4.0, abs=0.5)


def test_masked_samples_are_never_support():
    t, fz = trial(supports=((10.0, 4.0, 20.0),))
    mask = ~((t >= 9.5) & (t < 14.5))
    assert detect_support(t_s=t, fz_n=fz, body_weight_n=700.0, fs_hz=100.0, mask=mask).runs == ()


def test_too_short_a_window_has_no_limit_and_bad_arguments_are_named():
    t, fz = trial(seconds=1.0)
    assert detect_support(t_s=t, fz_n=fz, body_weight_n=700.0, fs_hz=100.0).detection_limit_pct_bw is None
    with pytest.raises(ValueError, match="body_weight_n"):
        detect_support(t_s=t, fz_n=fz, body_weight_n=0.0, fs_hz=100.0)
    with pytest.raises(ValueError, match="fs_hz"):
        detect_support(t_s=t, fz_n=fz, body_weight_n=700.0, fs_hz=float("nan"))
    with pytest.raises(ValueError, match="shape"):
        detect_support(t_s=t, fz_n=fz[:-1], body_weight_n=700.0, fs_hz=100.0)
