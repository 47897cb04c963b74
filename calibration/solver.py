"""The calibration solver: tare, gains from known masses, the crosstalk matrix, verification.

Pure numpy, independent of the hardware: everything here takes counts that were
already read (arrays of shape ``(n, 4)`` in the cell order ``fl, fr, bl, br``)
and the nominal masses and positions the technician used.

The model
---------
With ``c = counts - offsets_counts`` the per-cell calibration is
``f_i = g_i * c_i`` (N). A mass ``m`` placed at ``(x, y)`` loads the plate with
``F = m * 9.80665`` N, and the four cell forces satisfy three equations
(DESIGN.md section 3; cells at ``x_i = +-ml/2``, ``y_i = +-ap/2``)::

    sum_i g_i c_i       = F          (total force)
    sum_i g_i c_i x_i   = F x        (first moment along x, "Mx", N mm)
    sum_i g_i c_i y_i   = F y        (first moment along y, "My", N mm)

so that ``x = Mx / Fz`` and ``y = My / Fz`` are the COP formula of DESIGN.md.
(``Mx`` and ``My`` are named after the COP coordinate they give, not by the
right-hand rule: ``Mx`` is a moment *about the y axis*.)

:func:`fit_gains` solves the four gains by linear least squares over all the
placements' equations. :func:`fit_matrix` fits instead a full 3x4 matrix ``M``
with ``[Fz, Mx, My] = M @ c``, which also absorbs crosstalk between the cells
(a cell that feels part of its neighbour's load, a plate top that is not
perfectly rigid); it needs at least 6 placements spread over the plate.
:func:`verify` checks a calibration on placements (fresh ones, not those used
to fit) and says whether the COP and force errors are within the limits.

Errors the technician can fix (an unsteady tare, a loaded plate, placements
that do not determine the gains) raise :class:`CalibrationInputError` with a
one-line message; wrong argument types and shapes (programming errors) raise
``ValueError`` naming the argument.

References
----------
.. [1] Hall MG, Fleming HE, Dolan MJ, Millbank SFD, Paul JP (1996) Static in
   situ calibration of force plates. J Biomech 29:659-665.
.. [2] Bobbert MF, Schamhardt HC (1990) Accuracy of determining the point of
   force application with piezoelectric force plates. J Biomech 23:705-710.
.. [3] Golub GH, Van Loan CF (2013) Matrix Computations, 4th ed., Johns Hopkins
   University Press, chapter 5 (least squares, condition).
.. [4] Rousseeuw PJ, Croux C (1993) Alternatives to the median absolute
   deviation. J Am Stat Assoc 88:1273-1283 (MAD as a robust scale).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from station.core.cop import GRAVITY_M_S2, centre_of_pressure
from station.core.errors import UserError
from station.core.frames import CELLS, HX711_MAX_CODE, HX711_MIN_CODE
from station.core.geometry import PlateGeometry

if TYPE_CHECKING:  # pragma: no cover
    from calibration.model import Calibration

__all__ = [
    "CalibrationInputError", "TareResult", "tare_offsets", "Placement", "force_of_mass_n",
    "GainFit", "MatrixFit", "fit_gains", "fit_matrix", "VerificationRow", "Verification", "verify",
]

#: Robust standard deviation of a cell's readings above which a period is unstable, in counts
#: (the HX711 reads about 40 counts rms at 80 SPS; DESIGN.md section 8).
DEFAULT_MAX_STD_COUNTS = 200.0
#: Largest spread of the medians of four consecutive blocks of a period (drift), in counts.
DEFAULT_MAX_SPAN_COUNTS = 300.0
#: Fewest frames a tare or a placement is taken from (a quarter second at 80 SPS).
DEFAULT_MIN_FRAMES = 20
#: A tare whose zero moved from the reference by the weight of this mass or more means a loaded plate.
DEFAULT_LOADED_KG = 2.0
#: N per count of a nominal cell (100 kg, 2 mV/V, 5 V, HX711 gain 128): converts counts to kg
#: in messages when no reference gains are given.
NOMINAL_GAIN_N_PER_COUNT = 0.00023
#: Largest condition number of a fit's (column-scaled) design matrix that is accepted.
DEFAULT_MAX_CONDITION = 20.0
#: Fewest placements of the matrix fit.
MATRIX_MIN_PLACEMENTS = 6
#: Default verification limits (the issue's goal).
DEFAULT_MAX_COP_ERROR_MM = 1.0
DEFAULT_MAX_FORCE_ERROR_PCT = 0.5

# sign of each cell's x and y (fl, fr, bl, br), DESIGN.md section 3
_SX = np.array([-1.0, 1.0, -1.0, 1.0])
_SY = np.array([1.0, 1.0, -1.0, -1.0])
_MAD_TO_STD = 1.4826


class CalibrationInputError(UserError, ValueError):
    """The readings or placements cannot give a calibration; the message says why and what to do.

    One line, meant for the technician (``str(error)`` is the whole message).
    It is a :class:`~station.core.errors.UserError` (shown without a traceback) and
    a ``ValueError``.
    """


# -- small checks ------------------------------------------------------------------------


def _finite_number(name: str, value: Any, *, positive: bool = False, allow_zero: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and not (v > 0 or (allow_zero and v == 0)):
        raise ValueError(f"{name} must be {'non-negative' if allow_zero else 'positive'}, got {value!r}")
    return v


def _four(name: str, values: Any) -> np.ndarray:
    try:
        a = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be 4 numbers (fl, fr, bl, br), got {values!r}") from None
    if a.shape != (4,) or not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be 4 finite numbers (fl, fr, bl, br), got {values!r}")
    return a


def _frames(name: str, counts: Any) -> np.ndarray:
    try:
        a = np.asarray(counts, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of counts of shape (n, 4)") from None
    if a.ndim != 2 or a.shape[1] != 4:
        raise ValueError(f"{name} must have shape (n, 4) (fl, fr, bl, br), got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite")
    return a


def _geometry(geometry: Any) -> PlateGeometry:
    if not isinstance(geometry, PlateGeometry):
        raise ValueError(f"geometry must be a PlateGeometry, got {geometry!r}")
    return geometry


def _robust_std(counts: np.ndarray) -> np.ndarray:
    """Per-cell robust standard deviation about the median (1.4826 MAD, [4]); the std for Gaussian noise."""
    med = np.median(counts, axis=0)
    return _MAD_TO_STD * np.median(np.abs(counts - med), axis=0)


def _robust_noise(counts: np.ndarray) -> np.ndarray:
    """Per-cell frame-to-frame noise (1.4826 MAD of the differences / sqrt 2, [4]), in counts rms.

    The std for white Gaussian noise; blind to slow drift and to single-frame
    glitches, which :func:`_block_span` and the median handle.
    """
    d = np.diff(counts, axis=0)
    return _MAD_TO_STD * np.median(np.abs(d - np.median(d, axis=0)), axis=0) / math.sqrt(2.0)


def _block_span(counts: np.ndarray, blocks: int = 4) -> np.ndarray:
    """Per-cell spread (max - min) of the medians of ``blocks`` consecutive blocks: slow drift or a step."""
    meds = np.array([np.median(b, axis=0) for b in np.array_split(counts, blocks)])
    return meds.max(axis=0) - meds.min(axis=0)


def _check_stable(counts: np.ndarray, *, what: str, max_std_counts: float, max_span_counts: float,
                  advice: str) -> tuple[np.ndarray, np.ndarray]:
    std = _robust_noise(counts)
    span = _block_span(counts)
    for i, cell in enumerate(CELLS):
        if std[i] > max_std_counts:
            raise CalibrationInputError(
                f"{what}: cell {cell} is not steady (noise {std[i]:.0f} counts rms, limit {max_std_counts:.0f}): "
                f"{advice}")
    for i, cell in enumerate(CELLS):
        if span[i] > max_span_counts:
            raise CalibrationInputError(
                f"{what}: cell {cell} moved by {span[i]:.0f} counts during the reading "
                f"(limit {max_span_counts:.0f}): {advice}")
    return std, span


def _check_saturation(counts: np.ndarray, *, what: str) -> None:
    for i, cell in enumerate(CELLS):
        if np.any(counts[:, i] >= HX711_MAX_CODE) or np.any(counts[:, i] <= HX711_MIN_CODE):
            share = float(np.mean((counts[:, i] >= HX711_MAX_CODE) | (counts[:, i] <= HX711_MIN_CODE)))
            if share > 0.1:
                raise CalibrationInputError(
                    f"{what}: cell {cell} reads the HX711 saturation code: check its wiring and its load")


# -- tare ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TareResult:
    """The zero of each cell from an unloaded, stable period.

    Attributes
    ----------
    offsets_counts : tuple of 4 float
        Per-cell median of the period, in counts.
    std_counts : tuple of 4 float
        Per-cell robust frame-to-frame noise (1.4826 MAD of the differences
        over sqrt 2), in counts rms.
    span_counts : tuple of 4 float
        Per-cell drift during the period (spread of the medians of 4 blocks), in counts.
    n_frames : int
        Frames the tare was taken from.
    shift_counts : tuple of 4 float or None
        ``offsets_counts - reference_offsets`` when a reference was given.
    """

    offsets_counts: tuple[float, float, float, float]
    std_counts: tuple[float, float, float, float]
    span_counts: tuple[float, float, float, float]
    n_frames: int
    shift_counts: tuple[float, float, float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able values."""
        return {
            "offsets_counts": list(self.offsets_counts), "std_counts": list(self.std_counts),
            "span_counts": list(self.span_counts), "n_frames": self.n_frames,
            "shift_counts": None if self.shift_counts is None else list(self.shift_counts),
        }


def _tuple4(a: np.ndarray) -> tuple[float, float, float, float]:
    return (float(a[0]), float(a[1]), float(a[2]), float(a[3]))


def tare_offsets(
    counts: Any,
    *,
    max_std_counts: float = DEFAULT_MAX_STD_COUNTS,
    max_span_counts: float = DEFAULT_MAX_SPAN_COUNTS,
    reference_offsets: Sequence[float] | None = None,
    loaded_threshold_counts: float | None = None,
    reference_gains_n_per_count: Sequence[float] | None = None,
    min_frames: int = DEFAULT_MIN_FRAMES,
) -> TareResult:
    """Zero offset of each cell from a stable period with the plate empty.

    Parameters
    ----------
    counts : array_like, shape (n, 4)
        Raw readings of ``fl, fr, bl, br`` while the plate is empty, in counts.
    max_std_counts : float
        Largest frame-to-frame noise of a cell (robust, in counts rms); above
        it the plate is not still (someone touching it, a vibrating floor).
    max_span_counts : float
        Largest movement of a cell's reading during the period (spread of the
        medians of four consecutive blocks: drift, a step, a slow sway), in counts.
    reference_offsets : sequence of 4 float, optional
        The offsets of a previous calibration, in counts. When given, a zero
        that moved by more than ``loaded_threshold_counts`` in total means the
        plate is loaded, and the tare is refused.
    loaded_threshold_counts : float, optional
        Largest accepted ``sum_i |offset_i - reference_i|``, in counts. Default:
        the weight of :data:`DEFAULT_LOADED_KG` (2 kg) at the mean
        ``|reference_gains_n_per_count|`` (or at :data:`NOMINAL_GAIN_N_PER_COUNT`).
    reference_gains_n_per_count : sequence of 4 float, optional
        Gains of the reference calibration, N per count: sets the default
        threshold and turns counts into kg in the message.
    min_frames : int
        Fewest frames accepted.

    Returns
    -------
    TareResult
        Offsets (per-cell medians), noise, drift and the shift from the reference.

    Raises
    ------
    CalibrationInputError
        Too few frames, a saturated cell, a cell that is not steady or drifts
        (the message names it), or a loaded plate.
    ValueError
        Naming a bad argument.

    Notes
    -----
    Medians and the median absolute deviation make the tare immune to the
    HX711's rare single-frame bit errors [4]_. A load of ``F`` newtons anywhere
    between the cells raises ``sum_i |g_i| |delta_i|`` by exactly ``F``, so the
    total shift in counts measures the load wherever it stands.

    References
    ----------
    .. [4] Rousseeuw PJ, Croux C (1993) Alternatives to the median absolute
       deviation. J Am Stat Assoc 88:1273-1283.
    """
    c = _frames("counts", counts)
    max_std_counts = _finite_number("max_std_counts", max_std_counts, positive=True, allow_zero=False)
    max_span_counts = _finite_number("max_span_counts", max_span_counts, positive=True, allow_zero=False)
    if isinstance(min_frames, bool) or not isinstance(min_frames, (int, np.integer)) or min_frames < 4:
        raise ValueError(f"min_frames must be an integer of at least 4, got {min_frames!r}")
    ref = None if reference_offsets is None else _four("reference_offsets", reference_offsets)
    ref_gains = None
    if reference_gains_n_per_count is not None:
        ref_gains = _four("reference_gains_n_per_count", reference_gains_n_per_count)
        if np.any(ref_gains == 0):
            raise ValueError(f"reference_gains_n_per_count must not contain 0, got {reference_gains_n_per_count!r}")
    mean_gain = float(np.mean(np.abs(ref_gains))) if ref_gains is not None else NOMINAL_GAIN_N_PER_COUNT
    if loaded_threshold_counts is None:
        threshold = DEFAULT_LOADED_KG * GRAVITY_M_S2 / mean_gain
    else:
        threshold = _finite_number("loaded_threshold_counts", loaded_threshold_counts, positive=True, allow_zero=False)

    if len(c) < min_frames:
        raise CalibrationInputError(f"tare: needs at least {min_frames} readings with the plate empty, got {len(c)}")
    _check_saturation(c, what="tare")
    std, span = _check_stable(c, what="tare refused", max_std_counts=max_std_counts, max_span_counts=max_span_counts,
                              advice="keep the plate empty and still, and tare again")
    offsets = np.median(c, axis=0)
    shift = None
    if ref is not None:
        shift = offsets - ref
        total = float(np.sum(np.abs(shift)))
        if total > threshold:
            # a load between the cells moves sum_i |delta_i| |g_i| by its weight exactly
            load_n = float(np.sum(np.abs(shift * ref_gains))) if ref_gains is not None else total * mean_gain
            kg = load_n / GRAVITY_M_S2
            limit_kg = threshold * mean_gain / GRAVITY_M_S2
            raise CalibrationInputError(
                f"tare refused: the plate seems loaded: its zero moved {total:.0f} counts from the reference "
                f"(about {kg:.1f} kg, limit {limit_kg:.1f} kg): clear the plate and tare again")
    return TareResult(_tuple4(offsets), _tuple4(std), _tuple4(span), int(len(c)),
                      None if shift is None else _tuple4(shift))


# -- placements ------------------------------------------------------------------------------


def force_of_mass_n(mass_kg: Any) -> Any:
    """Weight of a mass in standard gravity.

    Parameters
    ----------
    mass_kg : float or array_like
        Mass in kg (non-negative, finite).

    Returns
    -------
    float or ndarray
        ``mass_kg * 9.80665``, in N.

    References
    ----------
    .. [1] BIPM (2019) The International System of Units, 9th ed. (standard
       acceleration of gravity, 9.80665 m/s^2).
    """
    m = np.asarray(mass_kg, dtype=np.float64) if not isinstance(mass_kg, bool) else None
    if m is None or not np.all(np.isfinite(m)) or np.any(m < 0):
        raise ValueError(f"mass_kg must be finite and non-negative, got {mass_kg!r}")
    out = m * GRAVITY_M_S2
    return float(out) if out.ndim == 0 else out


@dataclass(frozen=True)
class Placement:
    """A known mass at a known position and what the cells read under it.

    Parameters
    ----------
    mass_kg : float
        The mass placed, in kg (its weight is :func:`force_of_mass_n`).
    x_mm, y_mm : float
        Where its centre of mass stands, in the plate frame, in mm.
    mean_counts : sequence of 4 float
        Mean raw reading of ``fl, fr, bl, br`` under the mass, in counts
        (NOT tared: the fit subtracts the offsets).
    std_counts : sequence of 4 float
        Per-cell noise of the readings, in counts rms (informative).
    n_frames : int
        Frames averaged.
    rejected_frames : int
        Frames left out as glitches (see :meth:`from_frames`).
    """

    mass_kg: float
    x_mm: float
    y_mm: float
    mean_counts: tuple[float, float, float, float]
    std_counts: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    n_frames: int = 1
    rejected_frames: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "mass_kg", _finite_number("mass_kg", self.mass_kg))
        object.__setattr__(self, "x_mm", _finite_number("x_mm", self.x_mm))
        object.__setattr__(self, "y_mm", _finite_number("y_mm", self.y_mm))
        object.__setattr__(self, "mean_counts", _tuple4(_four("mean_counts", self.mean_counts)))
        std = _four("std_counts", self.std_counts)
        if np.any(std < 0):
            raise ValueError(f"std_counts must not be negative, got {self.std_counts!r}")
        object.__setattr__(self, "std_counts", _tuple4(std))
        for name in ("n_frames", "rejected_frames"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (1 if name == "n_frames" else 0):
                raise ValueError(f"{name} must be an integer >= {1 if name == 'n_frames' else 0}, got {v!r}")
            object.__setattr__(self, name, int(v))

    @property
    def force_n(self) -> float:
        """The mass's weight, in N."""
        return float(force_of_mass_n(self.mass_kg))

    @classmethod
    def from_frames(
        cls,
        counts: Any,
        *,
        mass_kg: float,
        x_mm: float,
        y_mm: float,
        max_std_counts: float = DEFAULT_MAX_STD_COUNTS,
        max_span_counts: float = DEFAULT_MAX_SPAN_COUNTS,
        min_frames: int = DEFAULT_MIN_FRAMES,
        glitch_counts: float = 5000.0,
    ) -> Placement:
        """A placement from the raw frames read while the mass stood still.

        Parameters
        ----------
        counts : array_like, shape (n, 4)
            Raw readings, in counts.
        mass_kg, x_mm, y_mm : float
            The mass (kg) and its position (mm).
        max_std_counts, max_span_counts : float
            Stability limits, as in :func:`tare_offsets`.
        min_frames : int
            Fewest frames accepted (after glitches are left out).
        glitch_counts : float
            A frame where a cell is further than this from the cell's median
            (and further than 10 robust standard deviations) is a glitch and
            is left out of the mean, in counts.

        Returns
        -------
        Placement
            Mean and standard deviation of the kept frames.

        Raises
        ------
        CalibrationInputError
            Too few frames, a saturated cell, or readings that are not steady
            (naming the cell).
        """
        c = _frames("counts", counts)
        glitch_counts = _finite_number("glitch_counts", glitch_counts, positive=True, allow_zero=False)
        what = f"placement {mass_kg:g} kg at ({x_mm:g}, {y_mm:g}) mm"
        if len(c) < min_frames:
            raise CalibrationInputError(f"{what}: needs at least {min_frames} readings, got {len(c)}")
        _check_saturation(c, what=what)
        _check_stable(c, what=what, max_std_counts=max_std_counts, max_span_counts=max_span_counts,
                      advice="let the mass settle, keep hands off the plate, and read again")
        limit = np.maximum(glitch_counts, 10.0 * _robust_std(c))
        keep = np.all(np.abs(c - np.median(c, axis=0)) <= limit, axis=1)
        kept = c[keep]
        if len(kept) < min_frames:
            raise CalibrationInputError(f"{what}: only {len(kept)} of {len(c)} readings are free of glitches")
        std = kept.std(axis=0, ddof=1) if len(kept) > 1 else np.zeros(4)
        return cls(mass_kg=mass_kg, x_mm=x_mm, y_mm=y_mm, mean_counts=_tuple4(kept.mean(axis=0)),
                   std_counts=_tuple4(std), n_frames=int(len(kept)), rejected_frames=int(len(c) - len(kept)))

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able values (as stored in the calibration file)."""
        return {"mass_kg": self.mass_kg, "x_mm": self.x_mm, "y_mm": self.y_mm,
                "mean_counts": list(self.mean_counts), "std_counts": list(self.std_counts),
                "n_frames": self.n_frames, "rejected_frames": self.rejected_frames}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Placement:
        """Inverse of :meth:`to_dict` (missing ``std_counts``, ``n_frames``, ``rejected_frames`` take defaults)."""
        if not isinstance(doc, dict):
            raise ValueError(f"a placement must be a dict, got {doc!r}")
        try:
            return cls(mass_kg=doc["mass_kg"], x_mm=doc["x_mm"], y_mm=doc["y_mm"], mean_counts=doc["mean_counts"],
                       std_counts=doc.get("std_counts", (0.0, 0.0, 0.0, 0.0)), n_frames=doc.get("n_frames", 1),
                       rejected_frames=doc.get("rejected_frames", 0))
        except KeyError as exc:
            raise ValueError(f"placement: missing key {exc.args[0]!r}") from None


def _placements(placements: Any) -> tuple[Placement, ...]:
    if isinstance(placements, (str, bytes)) or not isinstance(placements, Sequence):
        raise ValueError(f"placements must be a sequence of Placement, got {type(placements).__name__}")
    for i, p in enumerate(placements):
        if not isinstance(p, Placement):
            raise ValueError(f"placements[{i}] must be a Placement, got {type(p).__name__}")
    return tuple(placements)


def _label(i: int, p: Placement) -> str:
    return f"placement {i + 1} ({p.mass_kg:g} kg at ({p.x_mm:g}, {p.y_mm:g}) mm)"


def _check_masses(placements: tuple[Placement, ...]) -> None:
    for i, p in enumerate(placements):
        if not p.mass_kg > 0:
            raise CalibrationInputError(f"{_label(i, p)}: the mass must be positive")
        for j, cell in enumerate(CELLS):
            if p.mean_counts[j] >= HX711_MAX_CODE or p.mean_counts[j] <= HX711_MIN_CODE:
                raise CalibrationInputError(f"{_label(i, p)}: cell {cell} is saturated")


def _spread_mm(placements: tuple[Placement, ...]) -> tuple[float, float]:
    """Largest distance of a position from the positions' centroid, and from their best line (mm)."""
    xy = np.array([[p.x_mm, p.y_mm] for p in placements])
    d = xy - xy.mean(axis=0)
    radius = float(np.max(np.hypot(d[:, 0], d[:, 1])))
    if len(xy) < 3 or radius == 0:
        return radius, 0.0
    _, _, vt = np.linalg.svd(d, full_matrices=False)
    normal = vt[-1]  # the direction of least spread
    return radius, float(np.max(np.abs(d @ normal)))


def _check_cells_read(placements: tuple[Placement, ...], c: np.ndarray) -> None:
    peak = np.max(np.abs(c), axis=0)
    for j, cell in enumerate(CELLS):
        if peak[j] <= 0.01 * peak.max():
            raise CalibrationInputError(
                f"cell {cell} reads (almost) nothing under any of the {len(placements)} placements "
                f"(at most {peak[j]:.0f} counts from its zero): check its wiring and that it carries the plate")


def _check_signs(placements: tuple[Placement, ...], c: np.ndarray, force_per_count: np.ndarray, what: str) -> None:
    """Each cell's force must rise with the load: the fitted force per count must have the sign of its response."""
    response = np.sum(c, axis=0)  # counts move one way under load: up, or down for a cell wired reversed
    for j, cell in enumerate(CELLS):
        if not force_per_count[j] * response[j] > 0:
            raise CalibrationInputError(
                f"{what}: cell {cell} comes out with a gain of the wrong sign ({force_per_count[j]:.4g} N per count "
                f"while its counts move by {response[j]:+.0f} under load): a mass or a position is probably wrong")


def _condition(a: np.ndarray) -> tuple[int, float, np.ndarray]:
    """Rank, condition number (2-norm, columns scaled to unit length) and singular values of ``a``."""
    norms = np.linalg.norm(a, axis=0)
    scaled = a / np.where(norms > 0, norms, 1.0)
    s = np.linalg.svd(scaled, compute_uv=False)
    tol = s.max() * max(scaled.shape) * np.finfo(np.float64).eps
    rank = int(np.sum(s > tol))
    cond = float(s.max() / s.min()) if s.min() > tol else math.inf
    return rank, cond, s


def _tared(placements: tuple[Placement, ...], offsets: np.ndarray) -> np.ndarray:
    return np.array([p.mean_counts for p in placements]) - offsets


def _targets(placements: tuple[Placement, ...]) -> np.ndarray:
    """``[F, F x, F y]`` of each placement, shape (P, 3), N and N mm."""
    f = np.array([p.force_n for p in placements])
    return np.stack([f, f * np.array([p.x_mm for p in placements]), f * np.array([p.y_mm for p in placements])],
                    axis=1)


# -- fits ------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Fit:
    """What both fits report. Residuals are fitted minus true, one per placement."""

    offsets_counts: tuple[float, float, float, float]
    placements: tuple[Placement, ...]
    residual_force_n: np.ndarray
    residual_moment_nmm: np.ndarray
    residual_x_mm: np.ndarray
    residual_y_mm: np.ndarray
    rank: int
    condition: float
    plate_ml_mm: float
    plate_ap_mm: float

    @property
    def n_placements(self) -> int:
        return len(self.placements)

    @property
    def residual_cop_mm(self) -> np.ndarray:
        """Distance between the fitted and the true COP of each placement, in mm."""
        return np.hypot(self.residual_x_mm, self.residual_y_mm)

    @property
    def residual_force_pct(self) -> np.ndarray:
        """Fitted minus true force, in % of the true force."""
        return 100.0 * self.residual_force_n / np.array([p.force_n for p in self.placements])

    @property
    def max_residual_cop_mm(self) -> float:
        return float(np.max(self.residual_cop_mm))

    @property
    def rms_residual_cop_mm(self) -> float:
        return float(np.sqrt(np.mean(self.residual_cop_mm ** 2)))

    @property
    def max_residual_force_pct(self) -> float:
        return float(np.max(np.abs(self.residual_force_pct)))

    def _common_dict(self) -> dict[str, Any]:
        return {
            "n_placements": self.n_placements, "rank": self.rank,
            "condition": self.condition if math.isfinite(self.condition) else None,
            "max_residual_cop_mm": self.max_residual_cop_mm, "rms_residual_cop_mm": self.rms_residual_cop_mm,
            "max_residual_force_pct": self.max_residual_force_pct,
            "residuals": [
                {"mass_kg": p.mass_kg, "x_mm": p.x_mm, "y_mm": p.y_mm, "force_n": float(self.residual_force_n[i]),
                 "force_pct": float(self.residual_force_pct[i]), "mx_nmm": float(self.residual_moment_nmm[i, 0]),
                 "my_nmm": float(self.residual_moment_nmm[i, 1]), "x_mm_error": float(self.residual_x_mm[i]),
                 "y_mm_error": float(self.residual_y_mm[i])}
                for i, p in enumerate(self.placements)
            ],
        }


def _residuals(predicted: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
    """Residual arrays from predicted and true ``[Fz, Mx, My]`` (P, 3)."""
    fz = predicted[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(fz > 0, predicted[:, 1] / fz, np.nan)
        y = np.where(fz > 0, predicted[:, 2] / fz, np.nan)
    return {
        "residual_force_n": fz - targets[:, 0],
        "residual_moment_nmm": predicted[:, 1:] - targets[:, 1:],
        "residual_x_mm": x - targets[:, 1] / targets[:, 0],
        "residual_y_mm": y - targets[:, 2] / targets[:, 0],
    }


@dataclass(frozen=True, eq=False)
class GainFit(_Fit):
    """The result of :func:`fit_gains`.

    Attributes
    ----------
    gains_n_per_count : tuple of 4 float
        Fitted N per count of ``fl, fr, bl, br``.
    offsets_counts : tuple of 4 float
        The offsets the fit used.
    placements : tuple of Placement
        The placements fitted.
    residual_force_n : ndarray (P,)
        Fitted minus true total force of each placement, N.
    residual_moment_nmm : ndarray (P, 2)
        Fitted minus true ``Mx = Fz x`` and ``My = Fz y``, N mm.
    residual_x_mm, residual_y_mm : ndarray (P,)
        Fitted minus true COP, mm (see also ``residual_cop_mm``, ``residual_force_pct``).
    rank : int
        Rank of the design matrix (4 for a determined fit).
    condition : float
        2-norm condition number of the design matrix with its columns scaled
        to unit length (errors in the readings are amplified by up to this).
    plate_ml_mm, plate_ap_mm : float
        Cell spacing of the fit.
    """

    gains_n_per_count: tuple[float, float, float, float]

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able summary (gains, rank, condition, residuals)."""
        return {"method": "per-cell gains", "gains_n_per_count": list(self.gains_n_per_count), **self._common_dict()}

    def to_calibration(self, *, matrix_fit: MatrixFit | None = None, created_at: dt.datetime | None = None,
                       **fields: Any) -> Calibration:
        """A :class:`~calibration.model.Calibration` of these gains (and of ``matrix_fit``'s matrix if given).

        The plate spacing and the placements come from the fit; ``fields``
        are passed on (``station_id``, ``backend``, ``note``, ``verification``...).
        ``created_at`` defaults to now (UTC).
        """
        from calibration.model import Calibration  # model does not import the solver

        if matrix_fit is not None:
            if not isinstance(matrix_fit, MatrixFit):
                raise ValueError(f"matrix_fit must be a MatrixFit, got {type(matrix_fit).__name__}")
            if not np.allclose(matrix_fit.offsets_counts, self.offsets_counts, rtol=0, atol=1e-9):
                raise ValueError("matrix_fit was fitted with other offsets than this fit")
        fields.setdefault("placements", [p.to_dict() for p in self.placements])
        return Calibration(
            offsets_counts=self.offsets_counts, gains_n_per_count=self.gains_n_per_count,
            created_at=created_at or dt.datetime.now(dt.UTC),
            plate_ml_mm=self.plate_ml_mm, plate_ap_mm=self.plate_ap_mm,
            matrix=None if matrix_fit is None else matrix_fit.matrix_tuple(), **fields)


@dataclass(frozen=True, eq=False)
class MatrixFit(_Fit):
    """The result of :func:`fit_matrix`: as :class:`GainFit`, with ``matrix`` instead of gains.

    Attributes
    ----------
    matrix : ndarray (3, 4)
        ``[Fz (N), Mx (N mm), My (N mm)] = matrix @ (counts - offsets_counts)``.
    """

    matrix: np.ndarray

    def matrix_tuple(self) -> tuple[tuple[float, ...], ...]:
        return tuple(tuple(float(v) for v in row) for row in self.matrix)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-able summary (matrix, rank, condition, residuals)."""
        return {"method": "3x4 matrix", "matrix": [list(r) for r in self.matrix_tuple()], **self._common_dict()}


def _prepare(placements: Any, offsets_counts: Any, geometry: Any, max_condition: float,
             *, min_placements: int, what: str) -> tuple[tuple[Placement, ...], np.ndarray, PlateGeometry, np.ndarray]:
    ps = _placements(placements)
    offsets = _four("offsets_counts", offsets_counts)
    geo = _geometry(geometry)
    _finite_number("max_condition", max_condition, positive=True, allow_zero=False)
    if len(ps) < min_placements:
        raise CalibrationInputError(
            f"{what}: needs at least {min_placements} placements of known masses, got {len(ps)}")
    _check_masses(ps)
    radius, off_line = _spread_mm(ps)
    tol = 0.02 * min(geo.ml_mm, geo.ap_mm)
    if radius <= tol:
        p = ps[0]
        raise CalibrationInputError(
            f"{what}: all {len(ps)} placements are at one point (about ({p.x_mm:g}, {p.y_mm:g}) mm): the four cells "
            "cannot be told apart; place the masses at the centre, in the quadrants and near the corners")
    c = _tared(ps, offsets)
    _check_cells_read(ps, c)
    return ps, offsets, geo, c


def fit_gains(
    placements: Sequence[Placement],
    *,
    offsets_counts: Sequence[float],
    geometry: PlateGeometry,
    max_condition: float = DEFAULT_MAX_CONDITION,
) -> GainFit:
    """Per-cell gains from known masses at known positions, by linear least squares.

    Parameters
    ----------
    placements : sequence of Placement
        Known masses at known positions with the mean counts under them
        (at least 2, at 2 or more positions).
    offsets_counts : sequence of 4 float
        The tare (empty-plate reading of each cell), in counts.
    geometry : PlateGeometry
        Cell spacing ``ml_mm``, ``ap_mm``.
    max_condition : float
        Largest accepted condition number of the (column-scaled) design matrix.

    Returns
    -------
    GainFit
        Gains (N per count), residuals per placement, rank and condition.

    Raises
    ------
    CalibrationInputError
        With an explanation, when the placements cannot determine the gains:
        fewer than 2; a mass that is not positive; a saturated cell; all at
        one point (the plate's twist, and so the four gains, is then not
        determined: rank 3); a cell that reads nothing under every placement
        (named); a condition number above ``max_condition`` (positions too
        close together); a gain whose sign is opposite to its cell's response
        (a load would then pull that cell's force down; usually a wrong mass
        or position).
    ValueError
        Naming a bad argument.

    Notes
    -----
    With ``c = counts - offsets``, each placement of weight ``F`` at ``(x, y)``
    gives three equations in the gains ``g``::

        sum_i g_i c_i = F,   sum_i g_i c_i sx_i = F x / (ml/2),   sum_i g_i c_i sy_i = F y / (ap/2)

    where ``sx_i, sy_i = +-1`` are the signs of the cells' positions: the
    moment equations ``sum g_i c_i x_i = F x`` divided by the half spacings, so
    that every equation is in N and the readings' noise (a fixed number of
    counts) weighs alike in all of them. The ``3P x 4`` system is solved by
    ``numpy.linalg.lstsq`` [3]_.

    Placements on a single line are *accepted* here: for a rigid plate
    (load shared bilinearly, as :func:`station.core.cop.split_load`), two distinct
    positions already determine the four gains, and the condition number
    guards against positions that are too close. The matrix fit, which has
    more unknowns, refuses a line.

    References
    ----------
    .. [1] Hall MG et al. (1996) Static in situ calibration of force plates.
       J Biomech 29:659-665.
    .. [3] Golub GH, Van Loan CF (2013) Matrix Computations, 4th ed., section 5.3.
    """
    ps, offsets, geo, c = _prepare(placements, offsets_counts, geometry, max_condition, min_placements=2,
                                   what="gain fit")
    a, b = _design(ps, c, geo)
    rank, cond, _ = _condition(a)
    if rank < 4:
        raise CalibrationInputError(
            f"gain fit: the {len(ps)} placements determine only {rank} of the 4 gains: place masses at more "
            "positions spread over the plate")
    if cond > max_condition:
        raise CalibrationInputError(
            f"gain fit: the placements are too close together to separate the cells (condition number {cond:.3g}, "
            f"limit {max_condition:.3g}): spread them over the plate, out to the corners")
    gains = np.linalg.lstsq(a, b, rcond=None)[0]
    _check_signs(ps, c, gains, "gain fit")
    forces = c * gains
    predicted = np.stack([forces.sum(axis=1), forces @ (_SX * geo.ml_mm / 2), forces @ (_SY * geo.ap_mm / 2)], axis=1)
    return GainFit(offsets_counts=_tuple4(offsets), placements=ps, rank=rank, condition=cond,
                   plate_ml_mm=geo.ml_mm, plate_ap_mm=geo.ap_mm, gains_n_per_count=_tuple4(gains),
                   **_residuals(predicted, _targets(ps)))


def _design(ps: tuple[Placement, ...], c: np.ndarray, geo: PlateGeometry) -> tuple[np.ndarray, np.ndarray]:
    """The scaled ``3P x 4`` design matrix and right-hand side of :func:`fit_gains` (rows in N)."""
    t = _targets(ps)
    a = np.empty((3 * len(ps), 4))
    a[0::3] = c
    a[1::3] = c * _SX
    a[2::3] = c * _SY
    b = np.empty(3 * len(ps))
    b[0::3] = t[:, 0]
    b[1::3] = t[:, 1] / (geo.ml_mm / 2)
    b[2::3] = t[:, 2] / (geo.ap_mm / 2)
    return a, b


def fit_matrix(
    placements: Sequence[Placement],
    *,
    offsets_counts: Sequence[float],
    geometry: PlateGeometry,
    max_condition: float = DEFAULT_MAX_CONDITION,
) -> MatrixFit:
    """Full 3x4 calibration matrix ``[Fz, Mx, My] = M @ (counts - offsets)``, by least squares.

    Parameters
    ----------
    placements : sequence of Placement
        At least 6 known masses at positions spread over the plate (not all
        on one line).
    offsets_counts : sequence of 4 float
        The tare, in counts.
    geometry : PlateGeometry
        Cell spacing (sets the plate-size tolerance of the spread checks).
    max_condition : float
        Largest accepted condition number of the (column-scaled) ``P x 4``
        matrix of tared counts.

    Returns
    -------
    MatrixFit
        ``matrix`` (3x4; rows ``Fz`` in N, ``Mx = Fz x`` and ``My = Fz y`` in
        N mm, per count), residuals, rank and condition.

    Raises
    ------
    CalibrationInputError
        Fewer than 6 placements; a mass that is not positive; a saturated
        cell; all at one point or all on one line (the count vectors then
        span at most 3 of the 4 dimensions and the matrix's response to the
        missing one, the plate's twist, is undetermined); a cell that reads
        nothing (named); a condition number above ``max_condition``; a
        force row whose entry has the wrong sign for its cell.
    ValueError
        Naming a bad argument.

    Notes
    -----
    Each row of ``M`` is an independent linear least-squares problem
    ``C m = t`` over the placements (``C`` is ``P x 4``, ``t`` the true
    ``F``, ``F x`` or ``F y``). Twelve unknowns against ``3P`` equations;
    with 6 or more placements every row has at least 2 redundant equations,
    so the residuals mean something. Unlike the per-cell gains, the matrix
    absorbs linear crosstalk (a cell that reads part of its neighbour's
    load) [1]_ [2]_. With three times the unknowns it is also more sensitive
    to masses put down off their marks: in the simulator, fit masses placed
    within +-3 mm of their marks gave a worst verification COP error of about
    0.6 mm with the per-cell gains and 1.7 mm with the matrix. Prefer the
    matrix only where the verification on fresh placements shows it better
    (a plate with real crosstalk).

    References
    ----------
    .. [1] Hall MG et al. (1996) Static in situ calibration of force plates.
       J Biomech 29:659-665.
    .. [2] Bobbert MF, Schamhardt HC (1990) Accuracy of determining the point
       of force application with piezoelectric force plates. J Biomech 23:705-710.
    """
    ps, offsets, geo, c = _prepare(placements, offsets_counts, geometry, max_condition,
                                   min_placements=MATRIX_MIN_PLACEMENTS, what="matrix fit")
    _, off_line = _spread_mm(ps)
    if off_line <= 0.02 * min(geo.ml_mm, geo.ap_mm):
        raise CalibrationInputError(
            f"matrix fit: all {len(ps)} placements lie on one line: the plate's twist is not determined; "
            "add placements off that line (quadrants and corners)")
    rank, cond, _ = _condition(c)
    if rank < 4:
        raise CalibrationInputError(
            f"matrix fit: the placements' readings span only {rank} of 4 dimensions: spread the masses over "
            "the plate (centre, quadrants, corners)")
    if cond > max_condition:
        raise CalibrationInputError(
            f"matrix fit: the placements are too close together to separate the cells (condition number "
            f"{cond:.3g}, limit {max_condition:.3g}): spread them over the plate, out to the corners")
    t = _targets(ps)
    m = np.linalg.lstsq(c, t, rcond=None)[0].T  # (3, 4)
    _check_signs(ps, c, m[0], "matrix fit")
    return MatrixFit(offsets_counts=_tuple4(offsets), placements=ps, rank=rank, condition=cond,
                     plate_ml_mm=geo.ml_mm, plate_ap_mm=geo.ap_mm, matrix=m, **_residuals(c @ m.T, t))


# -- verification ------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerificationRow:
    """One verification placement: the truth, the measurement and the errors.

    ``cop_error_mm`` is the distance between measured and true COP;
    ``force_error_pct`` is signed (measured minus true, % of true). Both are
    NaN when the measured force is not positive (no COP).
    """

    mass_kg: float
    x_mm: float
    y_mm: float
    fz_true_n: float
    fz_n: float
    measured_x_mm: float
    measured_y_mm: float
    cop_error_mm: float
    force_error_pct: float

    def to_dict(self) -> dict[str, Any]:
        return {k: _json_number(getattr(self, k)) for k in self.__dataclass_fields__}


def _json_number(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


@dataclass(frozen=True)
class Verification:
    """The result of :func:`verify`.

    Attributes
    ----------
    rows : tuple of VerificationRow
    max_cop_error_mm, rms_cop_error_mm : float
        Largest and RMS COP error over the rows, mm (inf if a row has no COP).
    max_force_error_pct, rms_force_error_pct : float
        Largest and RMS absolute force error, % (inf if a row has no force).
    max_cop_error_limit_mm, max_force_error_limit_pct : float
        The limits checked.
    passed : bool
        Both maxima within their limits.
    """

    rows: tuple[VerificationRow, ...]
    max_cop_error_mm: float
    rms_cop_error_mm: float
    max_force_error_pct: float
    rms_force_error_pct: float
    max_cop_error_limit_mm: float
    max_force_error_limit_pct: float
    passed: bool

    @property
    def failed_rows(self) -> tuple[VerificationRow, ...]:
        """Rows beyond a limit (or without a measurement)."""
        return tuple(r for r in self.rows
                     if not (r.cop_error_mm <= self.max_cop_error_limit_mm
                             and abs(r.force_error_pct) <= self.max_force_error_limit_pct))

    def summary(self) -> str:
        """One line for the technician."""
        verdict = "PASSED" if self.passed else "FAILED"
        return (f"verification {verdict}: COP error max {self.max_cop_error_mm:.2f} mm, RMS "
                f"{self.rms_cop_error_mm:.2f} mm (limit {self.max_cop_error_limit_mm:g} mm); force error max "
                f"{self.max_force_error_pct:.2f} % (limit {self.max_force_error_limit_pct:g} %) "
                f"over {len(self.rows)} placements")

    def to_report(self) -> dict[str, Any]:
        """A JSON-able dict: the figures, the limits, ``passed`` and the rows (NaN and inf become None)."""
        return {
            "passed": bool(self.passed),
            "max_cop_error_mm": _json_number(self.max_cop_error_mm),
            "rms_cop_error_mm": _json_number(self.rms_cop_error_mm),
            "max_force_error_pct": _json_number(self.max_force_error_pct),
            "rms_force_error_pct": _json_number(self.rms_force_error_pct),
            "max_cop_error_limit_mm": self.max_cop_error_limit_mm,
            "max_force_error_limit_pct": self.max_force_error_limit_pct,
            "n_placements": len(self.rows),
            "rows": [r.to_dict() for r in self.rows],
        }


def verify(
    calibration: Calibration,
    placements: Sequence[Placement],
    *,
    geometry: PlateGeometry,
    max_cop_error_mm: float = DEFAULT_MAX_COP_ERROR_MM,
    max_force_error_pct: float = DEFAULT_MAX_FORCE_ERROR_PCT,
) -> Verification:
    """COP and force error of a calibration at known placements, against limits.

    Parameters
    ----------
    calibration : Calibration
        The calibration to check (its matrix, if it has one, is used).
    placements : sequence of Placement
        Known masses at known positions, read with the plate as it is now;
        fresh ones, not those the calibration was fitted on.
    geometry : PlateGeometry
        The plate's cell spacing; must be the calibration's.
    max_cop_error_mm : float
        Largest accepted distance between measured and true COP, mm.
    max_force_error_pct : float
        Largest accepted force error, % of the true weight.

    Returns
    -------
    Verification
        Per-placement rows, maximum and RMS errors, ``passed``.

    Raises
    ------
    CalibrationInputError
        No placements, a mass that is not positive, or a geometry other
        than the calibration's.
    ValueError
        Naming a bad argument.

    Notes
    -----
    The measured forces are ``calibration.to_forces(mean_counts)`` and the COP
    is :func:`station.core.cop.centre_of_pressure`, as the station computes them
    (with no occupancy threshold: every verification mass is on the plate).
    The COP error is Euclidean, ``hypot(x - x_true, y - y_true)``.

    References
    ----------
    .. [1] Hall MG et al. (1996) Static in situ calibration of force plates.
       J Biomech 29:659-665.
    """
    from calibration.model import Calibration  # model does not import the solver

    if not isinstance(calibration, Calibration):
        raise ValueError(f"calibration must be a Calibration, got {type(calibration).__name__}")
    ps = _placements(placements)
    geo = _geometry(geometry)
    lim_cop = _finite_number("max_cop_error_mm", max_cop_error_mm, positive=True, allow_zero=False)
    lim_f = _finite_number("max_force_error_pct", max_force_error_pct, positive=True, allow_zero=False)
    if not ps:
        raise CalibrationInputError("verification: needs at least one placement of a known mass")
    for i, p in enumerate(ps):
        if not p.mass_kg > 0:
            raise CalibrationInputError(f"{_label(i, p)}: the mass must be positive")
    if not (math.isclose(calibration.plate_ml_mm, geo.ml_mm, rel_tol=1e-9)
            and math.isclose(calibration.plate_ap_mm, geo.ap_mm, rel_tol=1e-9)):
        raise CalibrationInputError(
            f"verification: the calibration was made for cells {calibration.plate_ml_mm:g} x "
            f"{calibration.plate_ap_mm:g} mm apart, the plate is set to {geo.ml_mm:g} x {geo.ap_mm:g} mm")
    forces = calibration.to_forces(np.array([p.mean_counts for p in ps]))
    fz, x, y = centre_of_pressure(forces, ml_mm=geo.ml_mm, ap_mm=geo.ap_mm, min_fz_n=0.0)
    rows = []
    for i, p in enumerate(ps):
        true_n = p.force_n
        ok = fz[i] > 0
        cop_err = math.hypot(x[i] - p.x_mm, y[i] - p.y_mm) if ok else math.nan
        f_err = 100.0 * (fz[i] - true_n) / true_n if ok else math.nan
        rows.append(VerificationRow(p.mass_kg, p.x_mm, p.y_mm, true_n, float(fz[i]), float(x[i]) if ok else math.nan,
                                    float(y[i]) if ok else math.nan, cop_err, f_err))
    cop = np.array([r.cop_error_mm for r in rows])
    ferr = np.abs(np.array([r.force_error_pct for r in rows]))
    cop = np.where(np.isnan(cop), np.inf, cop)
    ferr = np.where(np.isnan(ferr), np.inf, ferr)
    max_cop, max_f = float(cop.max()), float(ferr.max())
    return Verification(
        rows=tuple(rows), max_cop_error_mm=max_cop, rms_cop_error_mm=float(np.sqrt(np.mean(cop ** 2))),
        max_force_error_pct=max_f, rms_force_error_pct=float(np.sqrt(np.mean(ferr ** 2))),
        max_cop_error_limit_mm=lim_cop, max_force_error_limit_pct=lim_f,
        passed=bool(max_cop <= lim_cop and max_f <= lim_f))
