"""The drills by name, and :func:`make_drill`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from station.core.geometry import PlateGeometry
from station.drills.base import Drill
from station.drills.hold import SingleLegHoldDrill
from station.drills.limits import LimitsDrill
from station.drills.reach import ReachDrill
from station.drills.rhythm import RhythmDrill
from station.drills.stability import Limits
from station.drills.symmetry import SymmetryDrill

__all__ = ["ALIASES", "DRILLS", "DRILL_CLASSES", "canonical_name", "drill_class", "make_drill"]

DRILL_CLASSES: dict[str, type[Drill]] = {}


def _register(cls: type[Drill]) -> None:
    DRILL_CLASSES[cls.name] = cls


for _cls in (ReachDrill, LimitsDrill, SymmetryDrill, RhythmDrill, SingleLegHoldDrill):
    _register(_cls)

#: the drill names, in the order of the issue ("limits" is the maximal-lean calibration)
DRILLS: tuple[str, ...] = tuple(n for n in ("reach", "limits", "symmetry", "rhythm", "single-leg-hold")
                                if n in DRILL_CLASSES)


#: short names (the command line's ``hold``, DESIGN.md section 5) -> the drills' own names
ALIASES: dict[str, str] = {"hold": "single-leg-hold"}


def canonical_name(name: str) -> str:
    """The drill's own name for ``name`` (an alias such as ``hold`` or the name itself)."""
    return ALIASES.get(name, name)


def drill_class(name: str) -> type[Drill]:
    name = canonical_name(name)
    if name not in DRILL_CLASSES:
        raise ValueError(f"name must be one of {list(DRILLS)}, got {name!r}")
    return DRILL_CLASSES[name]


def make_drill(name: str, *, geometry: PlateGeometry, rng: np.random.Generator,
               params: Mapping[str, Any] | None = None, feedback: str = "continuous",
               stance_side: str | None = None, limits: Limits | None = None, level: int | None = None) -> Drill:
    """Build a drill by name.

    Raises
    ------
    ValueError
        Naming the bad argument (``name``, ``geometry``, ``rng``, ``params[...]``,
        ``feedback``, ``stance_side``, ``limits`` or ``level``).
    """
    return drill_class(name)(geometry=geometry, rng=rng, params=params, feedback=feedback,
                             stance_side=stance_side, limits=limits, level=level)
