"""The body-weight baseline: a few seconds of quiet two-foot stance, refused on an empty or partly loaded plate.

Both protocol runners start with it: the single-leg test needs the body
weight to express hand support and a touchdown off the plate in % of it; the
quiet-stance test needs the patient standing still on both feet before it
records. It is a pure state machine over (t, Fz, COP x) samples, like the
runners that use it.

Rules (defaults of :class:`BaselineConfig`)
-------------------------------------------
Each frame must show

- somebody on the plate: Fz at least the occupancy threshold (100 N, the
  station's threshold, DESIGN.md section 3), else ``nobody``;
- a plausible whole person: Fz at least ``min_body_mass_kg`` (20 kg) of
  weight, else ``partial_load`` (one foot on the plate, the other on the
  floor; a bag; a child leaning on it);
- two feet on the plate: the weight under each footprint, by the lever rule
  ``left_pct = 100 (feet_ml/2 - x) / feet_ml`` (DESIGN.md section 3), at least
  ``min_foot_share_pct`` (15 %), else ``one_foot``. Asymmetric stance (70/30,
  common with a painful hip) passes; one foot off the plate does not.

A frame that fails restarts the window. The baseline is done when the window
spans ``baseline_s`` (3 to 5 s) and Fz is steady over it: its standard
deviation is at most ``max_fz_cv_pct`` (2 %) of its median (quiet stance
varies by about 0.4 %; stepping on, shifting or bouncing by 5-20 %), else
``unsteady`` and the window slides on. When the patient's mass is known
(``expected_mass_kg``), the median must also lie within
``mass_tolerance_pct`` (10 %) of it, else ``partial_load``: a hand on the
wall or a foot off the plate takes more than that.

The body weight is the median Fz over the window (DESIGN.md section 5:
"median Fz over the quiet bipedal part").
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass

import numpy as np

from station.core.cop import DEFAULT_OCCUPANCY_N, GRAVITY_M_S2
from station.core.geometry import PlateGeometry

__all__ = ["BaselineConfig", "BaselineDetector", "BaselineResult", "foot_share_pct"]


def foot_share_pct(cop_ml_mm: float, *, side: str, geometry: PlateGeometry) -> float:
    """Share of the weight on the ``side`` foot by the lever rule, in % (DESIGN.md section 3).

    ``left_pct = 100 (feet_ml/2 - x) / feet_ml``; the right share is ``100 - left_pct``.
    Beyond 100 % the COP lies outside the stance footprint centre, laterally.
    """
    left = 100.0 * (geometry.feet_ml_mm / 2 - cop_ml_mm) / geometry.feet_ml_mm
    return left if side == "left" else 100.0 - left


def _check(name: str, value: float, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (lo <= value <= hi):
        raise ValueError(f"{name} must be a number between {lo:g} and {hi:g}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class BaselineConfig:
    """How the baseline is taken (see the module notes for why these values).

    Parameters
    ----------
    baseline_s : float
        Length of the quiet two-foot window, 3 to 5 s.
    max_fz_cv_pct : float
        Largest standard deviation of Fz over the window, in % of its median.
    min_foot_share_pct : float
        Smallest share of the weight under each footprint, in %.
    min_body_mass_kg : float
        Smallest load taken for a whole person, in kg.
    expected_mass_kg : float or None
        The patient's known mass; None skips that check.
    mass_tolerance_pct : float
        Largest difference between the measured and the known mass, in %.
    occupancy_n : float
        Below this Fz nobody is on the plate, in N.
    """

    baseline_s: float = 3.0
    max_fz_cv_pct: float = 2.0
    min_foot_share_pct: float = 15.0
    min_body_mass_kg: float = 20.0
    expected_mass_kg: float | None = None
    mass_tolerance_pct: float = 10.0
    occupancy_n: float = DEFAULT_OCCUPANCY_N

    def __post_init__(self) -> None:
        _check("baseline_s", self.baseline_s, 3.0, 5.0)
        _check("max_fz_cv_pct", self.max_fz_cv_pct, 0.1, 50.0)
        _check("min_foot_share_pct", self.min_foot_share_pct, 0.0, 45.0)
        _check("min_body_mass_kg", self.min_body_mass_kg, 0.0, 300.0)
        if self.expected_mass_kg is not None:
            _check("expected_mass_kg", self.expected_mass_kg, 10.0, 300.0)
        _check("mass_tolerance_pct", self.mass_tolerance_pct, 1.0, 100.0)
        _check("occupancy_n", self.occupancy_n, 1.0, 2000.0)


@dataclass(frozen=True, slots=True)
class BaselineResult:
    """A finished baseline: the body weight (median Fz, N) over ``start_s``..``end_s``."""

    body_weight_n: float
    start_s: float
    end_s: float
    fz_cv_pct: float


class BaselineDetector:
    """Finds the first window of quiet two-foot stance; says what is wrong meanwhile.

    Feed it with :meth:`push`; :attr:`problem` is ``(code, message)`` while the
    frames are refused (``None`` while they are fine), and :meth:`push` returns
    the :class:`BaselineResult` once the window is complete.
    """

    def __init__(self, config: BaselineConfig, geometry: PlateGeometry) -> None:
        self.config = config
        self.geometry = geometry
        self._t: collections.deque[float] = collections.deque()
        self._fz: collections.deque[float] = collections.deque()
        self.problem: tuple[str, str] | None = (
            "nobody", "Nobody on the plate: step on with both feet on the footprints.")
        self._window_problem = False  # the problem came from the whole window (unsteady, wrong mass)

    def reset(self) -> None:
        self._t.clear()
        self._fz.clear()

    @property
    def collected_s(self) -> float:
        """How much of the window is filled, in s."""
        return self._t[-1] - self._t[0] if len(self._t) > 1 else 0.0

    def _frame_problem(self, fz_n: float, cop_ml_mm: float) -> tuple[str, str] | None:
        c = self.config
        if not fz_n >= c.occupancy_n or not math.isfinite(cop_ml_mm):
            return "nobody", "Nobody on the plate: step on with both feet on the footprints."
        kg = fz_n / GRAVITY_M_S2
        if kg < c.min_body_mass_kg:
            return ("partial_load", f"Partial load: only {kg:.1f} kg on the plate (a whole person weighs at least "
                    f"{c.min_body_mass_kg:g} kg): stand on the plate with both feet.")
        for side, other in (("left", "right"), ("right", "left")):
            if foot_share_pct(cop_ml_mm, side=side, geometry=self.geometry) < c.min_foot_share_pct:
                return ("one_foot", f"The weight is under the {other} footprint only: stand on both footprints, "
                        "weight on both feet.")
        return None

    def push(self, t_s: float, fz_n: float, cop_ml_mm: float) -> BaselineResult | None:
        """Add one frame; return the baseline when it is complete, else None."""
        c = self.config
        problem = self._frame_problem(fz_n, cop_ml_mm)
        if problem is not None:
            self.problem, self._window_problem = problem, False
            self.reset()
            return None
        self._t.append(t_s)
        self._fz.append(fz_n)
        span = self._t[-1] - self._t[0]
        if span < c.baseline_s:
            if not self._window_problem:
                self.problem = None
            return None
        while len(self._t) > 2 and self._t[-1] - self._t[1] >= c.baseline_s:
            self._t.popleft()
            self._fz.popleft()
        fz = np.fromiter(self._fz, dtype=np.float64, count=len(self._fz))
        median = float(np.median(fz))
        cv = 100.0 * float(np.std(fz)) / median
        if cv > c.max_fz_cv_pct:
            self._window_problem = True
            self.problem = ("unsteady", f"Stand still on both feet: the force varies by {cv:.1f} % "
                            f"(at most {c.max_fz_cv_pct:g} % for the baseline).")
            return None
        if c.expected_mass_kg is not None:
            kg = median / GRAVITY_M_S2
            if abs(kg / c.expected_mass_kg - 1.0) * 100.0 > c.mass_tolerance_pct:
                self._window_problem = True
                self.problem = ("partial_load", f"Partial load: {kg:.1f} kg on the plate but the patient weighs "
                                f"{c.expected_mass_kg:.1f} kg: both feet on the plate, hands free.")
                return None
        self.problem, self._window_problem = None, False
        return BaselineResult(body_weight_n=median, start_s=self._t[0], end_s=self._t[-1], fz_cv_pct=cv)
