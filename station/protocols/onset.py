"""The onset of single-leg stance: the end of the weight transfer, when the lifted foot carries nothing.

A plate under both feet cannot weigh one foot, but it sees the weight move:
with both feet down, the COP is the load-weighted mean of the two feet's
COPs, so while the lifted foot's load fades the COP travels from the two-foot
position to the stance foot. The transfer ends when that load reaches zero,
and that is the onset of single-leg stance.

Its last few percent are invisible: when the lifted foot still carries 1 % of
the body weight the COP is 2 mm from its single-leg position, well inside the
single-leg sway (3.5-12 mm RMS). Taking the first time the COP comes "close
enough" to its final position therefore always finds the onset early, the
more so the slower and smoother the end of the transfer (issue 10: 0.02-0.44 s
early). Instead, :func:`fit_transfer` fits the whole transfer, whose middle
part is far above the sway, with a cosine profile that starts and ends with
zero slope::

    z(t) = a + (b - a) * S((t - t0) / T),   S(u) = (1 - cos(pi u)) / 2  (0 <= u <= 1),

``z`` the COP's coordinate toward the stance foot, ``a`` and ``b`` the levels
before and after, ``t0`` the start and ``T`` the duration. The onset is
``t0 + T``. The fit is least squares, first on a grid (``t0`` every 20 ms,
``T`` every 30 ms; ``a`` and ``b`` solved linearly for each), then refined.
A free asymmetry parameter was tried and rejected: on the simulated population
it fitted the single-leg sway into a long tail and doubled the worst errors.

What it cannot tell apart: profiles that differ only in how the last few
percent fade. A transfer that slows into a long tail (the population's
``ease_out`` profile) is found early by about 0.2 s; symmetric profiles
(cosine, smoothstep) without bias. ``docs/validation.md`` gives the
distribution on the simulated population.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize

__all__ = ["TransferFit", "fit_transfer"]

_T_MIN_S = 0.15
#: the fit works on block means at about this rate, in Hz
_FIT_RATE_HZ = 50.0
_T_MAX_S = 3.0


@dataclass(frozen=True, slots=True)
class TransferFit:
    """A fitted weight transfer (times in s, levels in mm toward the stance foot)."""

    start_s: float
    end_s: float
    before_mm: float
    after_mm: float
    rms_residual_mm: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def _profile(u: np.ndarray) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(u, 0.0, 1.0))


def _solve_levels(z: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares ``z ~ a + c s`` for each row of ``s``; returns a, c and the sum of squares."""
    s_mean = s.mean(axis=-1)
    z_mean = z.mean()
    sc = s - s_mean[..., None]
    var = np.einsum("...i,...i->...", sc, sc)
    cov = sc @ (z - z_mean)
    c = np.where(var > 1e-12, cov / np.where(var > 1e-12, var, 1.0), 0.0)
    a = z_mean - c * s_mean
    zz = float(np.dot(z - z_mean, z - z_mean))
    sse = zz - c * cov
    return a, c, sse


def fit_transfer(*, t_s: np.ndarray, toward_mm: np.ndarray, cross_s: float) -> TransferFit:
    """Fit the weight transfer onto the stance foot (module notes).

    Parameters
    ----------
    t_s : ndarray
        Sample times in s, increasing, covering the transfer with some quiet
        stance before it and about a second of single-leg stance after it.
    toward_mm : ndarray
        The medio-lateral COP, in mm, signed positive toward the stance foot.
    cross_s : float
        A time inside the transfer (where the weight on the stance foot
        crossed the lift threshold), in s.

    Returns
    -------
    TransferFit
        Start, end (the onset), levels and the RMS residual.

    Raises
    ------
    ValueError
        Fewer than 10 finite samples, or ``cross_s`` outside the samples.
    """
    t = np.asarray(t_s, dtype=float)
    z = np.asarray(toward_mm, dtype=float)
    ok = np.isfinite(t) & np.isfinite(z)
    t, z = t[ok], z[ok]
    if t.size < 10:
        raise ValueError(f"t_s: need at least 10 finite samples around the transfer, got {t.size}")
    if not (t[0] <= cross_s <= t[-1]):
        raise ValueError(f"cross_s: {cross_s:g} s is outside the samples ({t[0]:g} to {t[-1]:g} s)")
    # the transfer lies below a few Hz: block means at about 50 Hz keep it and bound the work at any rate
    rate = (t.size - 1) / max(t[-1] - t[0], 1e-9)
    k = int(math.ceil(rate / _FIT_RATE_HZ))
    if k > 1:
        n = t.size // k * k
        t = t[:n].reshape(-1, k).mean(axis=1)
        z = z[:n].reshape(-1, k).mean(axis=1)
    t_rel = t - cross_s
    span_before = -t_rel[0]
    span_after = t_rel[-1]
    # grid: the start lies before the crossing, the end after it
    starts = np.arange(-min(span_before, _T_MAX_S), 0.0 + 1e-9, 0.02)
    durations = np.arange(_T_MIN_S, _T_MAX_S + 1e-9, 0.03)
    s0, d0 = np.meshgrid(starts, durations, indexing="ij")
    keep = (s0 + d0 >= 0.0) & (s0 + d0 <= span_after)
    s0, d0 = s0[keep], d0[keep]
    u = (t_rel[None, :] - s0[:, None]) / d0[:, None]
    _, c, sse = _solve_levels(z, _profile(u))
    sse = np.where(c > 0, sse, np.inf)  # the COP must move toward the stance foot
    i = int(np.argmin(sse))
    start0, dur0 = float(s0[i]), float(d0[i])

    def residual(p: np.ndarray) -> np.ndarray:
        s = _profile((t_rel - p[0]) / p[1])
        a, c, _ = _solve_levels(z, s[None, :])
        return z - a[0] - c[0] * s

    lo = [-span_before, _T_MIN_S]
    hi = [1e-9, _T_MAX_S]
    x0 = np.clip([start0, dur0], np.add(lo, 1e-6), np.subtract(hi, 1e-6))
    start, dur = start0, dur0
    try:
        sol = optimize.least_squares(residual, x0, bounds=(lo, hi), x_scale=[0.1, 0.1], max_nfev=100)
        if 0.0 <= sol.x[0] + sol.x[1] <= span_after:
            start, dur = float(sol.x[0]), float(sol.x[1])
    except (ValueError, np.linalg.LinAlgError):  # pragma: no cover - degenerate data keep the grid's answer
        pass
    s = _profile((t_rel - start) / dur)
    a, c, sse = _solve_levels(z, s[None, :])
    return TransferFit(start_s=cross_s + start, end_s=cross_s + start + dur, before_mm=float(a[0]),
                       after_mm=float(a[0] + c[0]), rms_residual_mm=float(math.sqrt(max(sse[0], 0.0) / t.size)))
