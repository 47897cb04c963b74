"""Difficulty levels: the level -> parameter tables and the adaptive rule.

Every drill has levels 1 (easiest) to :data:`MAX_LEVEL`. A level fixes the
drill's difficulty parameters by linear interpolation between the values at
level 1 and at :data:`MAX_LEVEL` (:data:`LEVEL_TABLES`); a therapist's own
parameters override the table. Between rounds, an adaptive drill moves one
level up after a round with at least ``raise_at_pct`` (80 %) success and one
level down after a round below ``lower_below_pct`` (50 %), always within the
bounds the therapist set (:func:`next_level`). Keeping success between these
is the "challenge point" of motor learning [1]_.

References
----------
.. [1] Guadagnoli MA, Lee TD (2004) Challenge point: a framework for
   conceptualizing the effects of various practice conditions in motor
   learning. J Mot Behav 36(2):212-224.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["MIN_LEVEL", "MAX_LEVEL", "LEVEL_TABLES", "level_params", "next_level", "check_level", "check_bounds"]

MIN_LEVEL = 1
MAX_LEVEL = 10

#: drill -> parameter -> (value at level 1, value at MAX_LEVEL); linear in between
LEVEL_TABLES: dict[str, dict[str, tuple[float, float]]] = {
    # target distance in % of the limit in its direction, target radius, hold time inside the target
    "reach": {"distance_pct": (40.0, 85.0), "radius_mm": (30.0, 12.0), "hold_s": (0.5, 2.0)},
    # lean hold time per direction of the calibration (not adaptive in practice)
    "limits": {"lean_s": (4.0, 4.0)},
    # shift of the target split onto the affected side, tolerance, time per target split
    "symmetry": {"shift_pct": (10.0, 25.0), "tolerance_pct": (10.0, 4.0), "segment_s": (10.0, 20.0)},
    # amplitude in % of the limit along the axis, period of the slowest of the three tempos
    "rhythm": {"amplitude_pct": (40.0, 80.0), "slow_period_s": (4.0, 2.4)},
    # zone half width (medio-lateral) and half height (antero-posterior), hold time per round
    "single-leg-hold": {"half_width_mm": (35.0, 15.0), "half_height_mm": (60.0, 30.0), "hold_s": (10.0, 30.0)},
    # the dip that counts (the lifted side's drop, deg), the band of "back to level" (deg)
    "hip-dip": {"min_depth_deg": (2.0, 5.0), "return_deg": (1.5, 0.75)},
    # the hold's box and time (wider box: the pelvis is the task), the pelvis's tolerance (deg; the
    # Trendelenburg sign's 2 degrees at level 1)
    "level-pelvis-hold": {"half_width_mm": (45.0, 25.0), "half_height_mm": (70.0, 40.0), "hold_s": (10.0, 30.0),
                          "tolerance_deg": (2.0, 0.75)},
}


def check_level(level: object, *, name: str = "level") -> int:
    if isinstance(level, bool) or not isinstance(level, int) or not MIN_LEVEL <= level <= MAX_LEVEL:
        raise ValueError(f"{name} must be an integer from {MIN_LEVEL} to {MAX_LEVEL}, got {level!r}")
    return level


def check_bounds(bounds: object, *, name: str = "bounds") -> tuple[int, int]:
    if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise ValueError(f"{name} must be a pair (lowest, highest level), got {bounds!r}")
    lo = check_level(bounds[0], name=f"{name}[0]")
    hi = check_level(bounds[1], name=f"{name}[1]")
    if lo > hi:
        raise ValueError(f"{name} must have lowest <= highest, got {bounds!r}")
    return lo, hi


def level_params(drill: str, level: int) -> dict[str, float]:
    """The difficulty parameters of ``drill`` at ``level``.

    >>> level_params("reach", 1)["distance_pct"]
    40.0
    """
    if drill not in LEVEL_TABLES:
        raise ValueError(f"drill must be one of {list(LEVEL_TABLES)}, got {drill!r}")
    check_level(level)
    f = (level - MIN_LEVEL) / (MAX_LEVEL - MIN_LEVEL)
    return {k: round(a + f * (b - a), 3) for k, (a, b) in LEVEL_TABLES[drill].items()}


def next_level(*, level: int, success_pct: float, bounds: tuple[int, int] = (MIN_LEVEL, MAX_LEVEL),
               raise_at_pct: float = 80.0, lower_below_pct: float = 50.0) -> int:
    """The level of the next round after a round with ``success_pct`` % success.

    One level up at ``success_pct >= raise_at_pct``, one down below
    ``lower_below_pct``, else unchanged; clipped to ``bounds``. A NaN success
    (nothing to judge) keeps the level.
    """
    check_level(level)
    lo, hi = check_bounds(bounds)
    if isinstance(success_pct, bool) or not isinstance(success_pct, (int, float)):
        raise ValueError(f"success_pct must be a number (0 to 100), got {success_pct!r}")
    for name, v in (("raise_at_pct", raise_at_pct), ("lower_below_pct", lower_below_pct)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 100:
            raise ValueError(f"{name} must be a percentage from 0 to 100, got {v!r}")
    if lower_below_pct > raise_at_pct:
        raise ValueError(f"lower_below_pct ({lower_below_pct}) must not exceed raise_at_pct ({raise_at_pct})")
    new = level
    if not math.isnan(success_pct):
        if success_pct >= raise_at_pct:
            new = level + 1
        elif success_pct < lower_below_pct:
            new = level - 1
    return min(max(new, lo), hi)


def success_from_metrics(metrics: Mapping[str, Any]) -> float:
    """The success of a round or drill from its metrics (key ``success_pct``), nan when missing."""
    v = metrics.get("success_pct")
    return math.nan if v is None else float(v)
