"""Centre of pressure from the four corner forces (DESIGN.md section 3)."""

from __future__ import annotations

import math

import numpy as np

#: Below this total vertical force nobody is on the plate and the COP is undefined.
DEFAULT_OCCUPANCY_N = 100.0

GRAVITY_M_S2 = 9.80665


def centre_of_pressure(
    forces_n: np.ndarray, *, ml_mm: float, ap_mm: float, min_fz_n: float = DEFAULT_OCCUPANCY_N
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Total vertical force and centre of pressure.

    Parameters
    ----------
    forces_n : array_like, shape (4,) or (n, 4)
        Vertical force on ``fl, fr, bl, br``, in N.
    ml_mm, ap_mm : float
        Distances between cell centres, medio-lateral and antero-posterior, in mm.
    min_fz_n : float
        Occupancy threshold in N: where Fz is below it the COP is NaN.

    Returns
    -------
    fz_n, cop_ml_mm, cop_ap_mm : ndarray
        Total force (N) and COP (mm), x positive to the patient's right, y
        positive forward. Scalars come back as 0-d arrays.

    Notes
    -----
    ``x = (ml/2) ((fr + br) - (fl + bl)) / Fz`` and
    ``y = (ap/2) ((fl + fr) - (bl + br)) / Fz``.
    """
    if not ml_mm > 0:
        raise ValueError(f"ml_mm must be positive, got {ml_mm!r}")
    if not ap_mm > 0:
        raise ValueError(f"ap_mm must be positive, got {ap_mm!r}")
    f = np.asarray(forces_n, dtype=np.float64)
    if f.shape[-1] != 4:
        raise ValueError(f"forces_n must have 4 columns (fl, fr, bl, br), got shape {f.shape}")
    fl, fr, bl, br = f[..., 0], f[..., 1], f[..., 2], f[..., 3]
    fz = fl + fr + bl + br
    occupied = fz >= min_fz_n
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(occupied, (ml_mm / 2) * ((fr + br) - (fl + bl)) / fz, np.nan)
        y = np.where(occupied, (ap_mm / 2) * ((fl + fr) - (bl + br)) / fz, np.nan)
    return fz, x, y


def centre_of_pressure_one(
    forces_n: tuple[float, float, float, float], *, ml_mm: float, ap_mm: float, min_fz_n: float = DEFAULT_OCCUPANCY_N
) -> tuple[float, float, float]:
    """:func:`centre_of_pressure` of one frame, in plain floats: the live path's per-frame version.

    The same formula and the same order of operations, so the same values to the last bit, at a
    tenth of the cost of numpy on four numbers (the frame pump runs it 80 times a second).
    ``ml_mm`` and ``ap_mm`` are taken as valid (a :class:`~station.core.geometry.PlateGeometry`'s).
    """
    fl, fr, bl, br = forces_n
    fz = fl + fr + bl + br
    if not fz >= min_fz_n:
        return fz, math.nan, math.nan
    return fz, (ml_mm / 2) * ((fr + br) - (fl + bl)) / fz, (ap_mm / 2) * ((fl + fr) - (bl + br)) / fz


def split_load(
    fz_n: float | np.ndarray, cop_ml_mm: float | np.ndarray, cop_ap_mm: float | np.ndarray, *, ml_mm: float,
    ap_mm: float
) -> np.ndarray:
    """Corner forces of a load ``fz_n`` whose centre of pressure is at (x, y).

    The inverse of :func:`centre_of_pressure` for a rigid plate on four cells:
    the load is shared bilinearly, which satisfies the force and both moment
    equations exactly (the fourth degree of freedom, the plate's twist, is zero).

    Returns
    -------
    ndarray, shape (..., 4)
        Forces on ``fl, fr, bl, br`` in N.
    """
    u = np.asarray(cop_ml_mm, dtype=np.float64) / ml_mm  # -0.5 .. 0.5 inside the cells
    v = np.asarray(cop_ap_mm, dtype=np.float64) / ap_mm
    fz = np.asarray(fz_n, dtype=np.float64)
    left, right = 0.5 - u, 0.5 + u
    back, front = 0.5 - v, 0.5 + v
    return np.stack([fz * left * front, fz * right * front, fz * left * back, fz * right * back], axis=-1)
