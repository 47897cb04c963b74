"""Centre-of-pressure sway metrics (DESIGN.md section 5, ``cop.*`` of the ``analyze`` output).

Every function takes the COP in mm, in the plate frame (x medio-lateral, y
antero-posterior), sampled uniformly; the sampling rate ``fs_hz`` is passed
where a metric needs it. The contract computes the metrics on the
mean-removed COP: path length, ranges and the ellipse do not depend on the mean,
the RMS is defined about it, and :func:`cop_metrics` removes it first.

References
----------
.. [1] Prieto TE, Myklebust JB, Hoffmann RG, Lovett EG, Myklebust BM (1996)
   Measures of postural steadiness: differences between healthy young and
   elderly adults. IEEE Trans Biomed Eng 43:956-966.
.. [2] Duarte M, Freitas SMSF (2010) Revision of posturography based on force
   plate for balance evaluation. Rev Bras Fisioter 14:183-192.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from station.signal.checks import check_fs_hz

__all__ = [
    "path_length_mm",
    "mean_velocity_mm_s",
    "range_mm",
    "rms_mm",
    "prediction_ellipse_area_mm2",
    "ellipse95_area_mm2",
    "cop_metrics",
    "COP_KEYS",
]

#: Keys of the ``cop`` block of the ``analyze`` output, in output order (contract).
COP_KEYS = (
    "path_length_mm",
    "mean_velocity_mm_s",
    "ml_range_mm",
    "ap_range_mm",
    "ml_rms_mm",
    "ap_rms_mm",
    "ellipse95_area_mm2",
)


def _as_series(x: np.ndarray, name: str, *, min_n: int) -> np.ndarray:
    """``x`` as a finite 1-D float64 array of at least ``min_n`` samples; the message names ``name``."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    if a.size < min_n:
        raise ValueError(f"{name} must hold at least {min_n} samples, got {a.size}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite; sample {int(np.argmax(~np.isfinite(a)))} is not (NaN or inf)")
    return a


def _as_pair(cop_ml_mm: np.ndarray, cop_ap_mm: np.ndarray, *, min_n: int) -> tuple[np.ndarray, np.ndarray]:
    x = _as_series(cop_ml_mm, "cop_ml_mm", min_n=min_n)
    y = _as_series(cop_ap_mm, "cop_ap_mm", min_n=min_n)
    if x.size != y.size:
        raise ValueError(f"cop_ml_mm and cop_ap_mm must have the same length, got {x.size} and {y.size}")
    return x, y


def path_length_mm(cop_ml_mm: np.ndarray, cop_ap_mm: np.ndarray) -> float:
    """Total COP excursion: the sum of distances between successive samples.

    Parameters
    ----------
    cop_ml_mm, cop_ap_mm : array_like, shape (n,)
        COP in mm, n >= 2.

    Returns
    -------
    float
        ``sum_i sqrt((x[i+1] - x[i])^2 + (y[i+1] - y[i])^2)``, in mm.

    References
    ----------
    .. [1] Prieto TE et al. (1996) IEEE Trans Biomed Eng 43:956-966, "total
       excursions" (DESIGN.md section 7).
    """
    x, y = _as_pair(cop_ml_mm, cop_ap_mm, min_n=2)
    return float(np.sum(np.hypot(np.diff(x), np.diff(y))))


def mean_velocity_mm_s(cop_ml_mm: np.ndarray, cop_ap_mm: np.ndarray, *, fs_hz: float) -> float:
    """Mean COP velocity: path length / (n / fs_hz).

    Parameters
    ----------
    cop_ml_mm, cop_ap_mm : array_like, shape (n,)
        COP in mm, n >= 2.
    fs_hz : float
        Sampling rate in Hz.

    Returns
    -------
    float
        In mm/s. The duration is ``n / fs_hz`` (not ``(n - 1) / fs_hz``),
        exactly as DESIGN.md section 5 and the published BDS values define it.

    References
    ----------
    .. [1] Prieto TE et al. (1996) IEEE Trans Biomed Eng 43:956-966, "mean
       velocity" (DESIGN.md section 7).
    .. [2] Duarte M, Freitas SMSF (2010) Rev Bras Fisioter 14:183-192.
    """
    fs_hz = check_fs_hz(fs_hz)
    x, y = _as_pair(cop_ml_mm, cop_ap_mm, min_n=2)
    return path_length_mm(x, y) / (x.size / fs_hz)


def range_mm(cop_mm: np.ndarray) -> float:
    """Peak-to-peak excursion along one axis: ``max - min``, in mm.

    Parameters
    ----------
    cop_mm : array_like, shape (n,)
        One COP coordinate in mm, n >= 1.

    References
    ----------
    .. [1] Prieto TE et al. (1996) IEEE Trans Biomed Eng 43:956-966, "range"
       (DESIGN.md section 7).
    """
    a = _as_series(cop_mm, "cop_mm", min_n=1)
    return float(np.max(a) - np.min(a))


def rms_mm(cop_mm: np.ndarray) -> float:
    """Root mean square of the mean-removed COP along one axis, in mm.

    Parameters
    ----------
    cop_mm : array_like, shape (n,)
        One COP coordinate in mm, n >= 1.

    Returns
    -------
    float
        ``sqrt(mean((c - mean(c))^2))``: the divisor is n, as in Prieto et
        al.'s RMS distance (the population standard deviation).

    References
    ----------
    .. [1] Prieto TE et al. (1996) IEEE Trans Biomed Eng 43:956-966, "RMS
       distance" (DESIGN.md section 7).
    """
    a = _as_series(cop_mm, "cop_mm", min_n=1)
    d = a - np.mean(a)
    return float(np.sqrt(np.mean(d * d)))


def prediction_ellipse_area_mm2(cop_ml_mm: np.ndarray, cop_ap_mm: np.ndarray, *, probability: float) -> float:
    """Area of the prediction ellipse holding a new COP sample with ``probability``.

    Parameters
    ----------
    cop_ml_mm, cop_ap_mm : array_like, shape (n,)
        COP in mm, n >= 3.
    probability : float
        Coverage, strictly between 0 and 1 (0.95 for the contract's metric).

    Returns
    -------
    float
        ``pi * sqrt(l1 * l2) * F(p; 2, n-2) * 2 (n-1)(n+1) / (n (n-2))`` in mm^2,
        where ``l1, l2`` are the eigenvalues of the sample covariance matrix of
        (x, y) with divisor n - 1 and ``F(p; 2, n-2)`` is the p-quantile of the
        F distribution with 2 and n - 2 degrees of freedom
        (``scipy.stats.f.ppf``). Zero when the COP does not move, or moves
        along a line.

    Notes
    -----
    ``sqrt(l1 l2)`` is the square root of the covariance determinant; it is
    computed from the eigenvalues, clipped at zero against rounding, as the
    contract states it. This is the *prediction* ellipse (where the next
    sample falls), not the confidence ellipse of the mean: Duarte & Freitas
    (2010) recommend it; the area ``2 pi F sqrt(det)`` given by Prieto et al.
    (1996) is its large-n limit.

    References
    ----------
    .. [1] Duarte M, Freitas SMSF (2010) Revision of posturography based on
       force plate for balance evaluation. Rev Bras Fisioter 14:183-192
       (DESIGN.md section 7).
    .. [2] Prieto TE et al. (1996) IEEE Trans Biomed Eng 43:956-966, "95 %
       confidence ellipse area" (DESIGN.md section 7).
    """
    if not (isinstance(probability, (int, float, np.floating)) and 0 < probability < 1):
        raise ValueError(f"probability must be strictly between 0 and 1, got {probability!r}")
    x, y = _as_pair(cop_ml_mm, cop_ap_mm, min_n=3)
    n = x.size
    cov = np.cov(np.vstack([x - x.mean(), y - y.mean()]), ddof=1)
    l1, l2 = np.clip(np.linalg.eigvalsh(cov), 0.0, None)
    f_quantile = float(stats.f.ppf(probability, 2, n - 2))
    return float(np.pi * math.sqrt(l1 * l2) * f_quantile * 2 * (n - 1) * (n + 1) / (n * (n - 2)))


def ellipse95_area_mm2(cop_ml_mm: np.ndarray, cop_ap_mm: np.ndarray) -> float:
    """Area of the 95 % prediction ellipse of the COP, in mm^2 (DESIGN.md section 5).

    Parameters
    ----------
    cop_ml_mm, cop_ap_mm : array_like, shape (n,)
        COP in mm, n >= 3.

    See Also
    --------
    prediction_ellipse_area_mm2 : the formula, for any coverage.

    References
    ----------
    .. [1] Duarte M, Freitas SMSF (2010) Rev Bras Fisioter 14:183-192
       (DESIGN.md section 7).
    """
    return prediction_ellipse_area_mm2(cop_ml_mm, cop_ap_mm, probability=0.95)


def cop_metrics(cop_ml_mm: np.ndarray, cop_ap_mm: np.ndarray, *, fs_hz: float) -> dict[str, float]:
    """The ``cop`` block of the ``analyze`` output (DESIGN.md section 5).

    Parameters
    ----------
    cop_ml_mm, cop_ap_mm : array_like, shape (n,)
        COP in mm over the analysed window, sampled uniformly at ``fs_hz``,
        n >= 3.
    fs_hz : float
        Sampling rate in Hz.

    Returns
    -------
    dict
        ``path_length_mm``, ``mean_velocity_mm_s``, ``ml_range_mm``,
        ``ap_range_mm``, ``ml_rms_mm``, ``ap_rms_mm``, ``ellipse95_area_mm2``
        (the contract's names, in :data:`COP_KEYS` order), as Python floats.
        The mean of each axis is removed first, as the contract says.

    References
    ----------
    .. [1] Prieto TE et al. (1996) IEEE Trans Biomed Eng 43:956-966.
    .. [2] Duarte M, Freitas SMSF (2010) Rev Bras Fisioter 14:183-192.
    """
    fs_hz = check_fs_hz(fs_hz)
    x, y = _as_pair(cop_ml_mm, cop_ap_mm, min_n=3)
    x = x - x.mean()
    y = y - y.mean()
    path = path_length_mm(x, y)
    return {
        "path_length_mm": path,
        "mean_velocity_mm_s": path / (x.size / fs_hz),
        "ml_range_mm": range_mm(x),
        "ap_range_mm": range_mm(y),
        "ml_rms_mm": rms_mm(x),
        "ap_rms_mm": rms_mm(y),
        "ellipse95_area_mm2": ellipse95_area_mm2(x, y),
    }
