"""Resampling of irregularly timed samples onto a uniform grid (DESIGN.md section 4).

Recordings carry a time stamp per sample; the four HX711 chips run on their own
oscillators, so the spacing is not exactly ``1 / sample_rate_hz``. The metrics of
DESIGN.md section 5 assume uniform sampling, so the analysis first puts the
samples on the nominal grid.

References
----------
.. [1] Duarte M, Freitas SMSF (2010) Revision of posturography based on force
   plate for balance evaluation. Rev Bras Fisioter 14:183-192.
"""

from __future__ import annotations

import math

import numpy as np

from station.signal.checks import check_fs_hz

__all__ = ["resample_uniform", "uniform_grid_s"]

#: A grid point may lie this fraction of a period past the last time stamp
#: (rounding of time stamps written with a few decimals).
_END_TOLERANCE = 1e-6


def uniform_grid_s(*, start_s: float, end_s: float, fs_hz: float) -> np.ndarray:
    """Times ``start_s + k / fs_hz`` for k = 0, 1, ... up to ``end_s``.

    Parameters
    ----------
    start_s, end_s : float
        First and last time in s, ``end_s >= start_s``.
    fs_hz : float
        Grid rate in Hz.

    Returns
    -------
    ndarray
        ``floor((end_s - start_s) fs_hz + 1e-6) + 1`` times in s. The tolerance
        of a millionth of a period keeps a last time stamp written as 59.99 s on
        a 100 Hz grid that starts at 0.
    """
    fs_hz = check_fs_hz(fs_hz)
    if not (math.isfinite(start_s) and math.isfinite(end_s)):
        raise ValueError(f"start_s and end_s must be finite, got {start_s!r} and {end_s!r}")
    if end_s < start_s:
        raise ValueError(f"end_s ({end_s!r}) must not be before start_s ({start_s!r})")
    n = int(math.floor((end_s - start_s) * fs_hz + _END_TOLERANCE)) + 1
    return start_s + np.arange(n) / fs_hz


def resample_uniform(t_s: np.ndarray, values: np.ndarray, *, fs_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation of time-stamped samples onto a uniform grid.

    Parameters
    ----------
    t_s : array_like, shape (n,)
        Time of each sample in s, finite and strictly increasing, n >= 2.
    values : array_like, shape (n,) or (n, ...)
        Finite samples; time runs along the first axis (for example forces in N,
        shape (n, 4)).
    fs_hz : float
        Rate of the output grid in Hz (the recording's nominal rate).

    Returns
    -------
    t_uniform_s : ndarray, shape (m,)
        ``t_s[0] + k / fs_hz`` for k = 0 .. m-1, the last one not after
        ``t_s[-1]`` (see :func:`uniform_grid_s`).
    values_uniform : ndarray, shape (m, ...)
        Values linearly interpolated at those times, float64.

    Notes
    -----
    Where the input is already on the grid, the output reproduces it (up to
    the rounding of the time stamps). Linear interpolation attenuates a sine of
    frequency f sampled at irregular intervals of at most h by at most
    ``(pi f h)^2 / 2`` relative to its amplitude; for postural sway (below
    about 2 Hz) at 80 Hz that is below 0.4 %. No anti-alias filtering is done:
    use it to correct timing, not to decimate.

    References
    ----------
    .. [1] Duarte M, Freitas SMSF (2010) Revision of posturography based on
       force plate for balance evaluation. Rev Bras Fisioter 14:183-192
       (DESIGN.md section 7).

    Examples
    --------
    >>> t, v = resample_uniform([0.0, 0.011, 0.019, 0.03], [0.0, 1.1, 1.9, 3.0], fs_hz=100)
    >>> t.round(3).tolist(), v.round(6).tolist()
    ([0.0, 0.01, 0.02, 0.03], [0.0, 1.0, 2.0, 3.0])
    """
    fs_hz = check_fs_hz(fs_hz)
    t = np.asarray(t_s, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if t.ndim != 1:
        raise ValueError(f"t_s must be one-dimensional, got shape {t.shape}")
    if t.size < 2:
        raise ValueError(f"t_s must hold at least 2 samples, got {t.size}")
    if v.ndim == 0 or v.shape[0] != t.size:
        raise ValueError(f"values must have {t.size} samples along axis 0 (as t_s), got shape {v.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError(f"t_s must be finite; sample {int(np.argmax(~np.isfinite(t)))} is not")
    dt = np.diff(t)
    if not np.all(dt > 0):
        i = int(np.argmax(~(dt > 0)))
        raise ValueError(f"t_s must be strictly increasing; t_s[{i + 1}] = {t[i + 1]!r} follows t_s[{i}] = {t[i]!r}")
    finite = np.isfinite(v).reshape(t.size, -1).all(axis=1)
    if not finite.all():
        raise ValueError(f"values must be finite; sample {int(np.argmax(~finite))} is not")

    tu = uniform_grid_s(start_s=float(t[0]), end_s=float(t[-1]), fs_hz=fs_hz)
    # index of the interval [t[i], t[i+1]] holding each grid point
    i = np.clip(np.searchsorted(t, tu, side="right") - 1, 0, t.size - 2)
    w = np.clip((tu - t[i]) / dt[i], 0.0, 1.0)
    w = w.reshape((-1,) + (1,) * (v.ndim - 1))
    vu = v[i] * (1.0 - w) + v[i + 1] * w
    return tu, vu
