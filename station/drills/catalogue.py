"""The drills by name, and :func:`make_drill`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from station.core.geometry import PlateGeometry
from station.drills.base import Drill
from station.drills.hold import SingleLegHoldDrill
from station.drills.limits import LimitsDrill
from station.drills.pelvis import HipDipDrill, LevelPelvisHoldDrill
from station.drills.reach import ReachDrill
from station.drills.rhythm import RhythmDrill
from station.drills.stability import Limits
from station.drills.symmetry import SymmetryDrill

__all__ = ["ALIASES", "ALL_DRILLS", "DRILLS", "DRILL_CLASSES", "PELVIS_DRILLS", "canonical_name", "drill_class",
           "make_drill", "needs_pelvis"]

DRILL_CLASSES: dict[str, type[Drill]] = {}


def _register(cls: type[Drill]) -> None:
    DRILL_CLASSES[cls.name] = cls


for _cls in (ReachDrill, LimitsDrill, SymmetryDrill, RhythmDrill, SingleLegHoldDrill, HipDipDrill,
             LevelPelvisHoldDrill):
    _register(_cls)

#: the drill names, in the order of the issue ("limits" is the maximal-lean calibration): the plate's drills
#: (the patient screen's menu has a tile for each)
DRILLS: tuple[str, ...] = tuple(n for n in ("reach", "limits", "symmetry", "rhythm", "single-leg-hold")
                                if n in DRILL_CLASSES)
#: the drills that need the pelvis sensor too (issue 14): the command line, the station's trials
PELVIS_DRILLS: tuple[str, ...] = tuple(n for n in ("hip-dip", "level-pelvis-hold") if n in DRILL_CLASSES)
#: every drill
ALL_DRILLS: tuple[str, ...] = DRILLS + PELVIS_DRILLS


#: short names (the command line's ``hold``, DESIGN.md section 5) -> the drills' own names
ALIASES: dict[str, str] = {"hold": "single-leg-hold"}


def canonical_name(name: str) -> str:
    """The drill's own name for ``name`` (an alias such as ``hold`` or the name itself)."""
    return ALIASES.get(name, name)


def drill_class(name: str) -> type[Drill]:
    name = canonical_name(name)
    if name not in DRILL_CLASSES:
        raise ValueError(f"name must be one of {list(ALL_DRILLS)}, got {name!r}")
    return DRILL_CLASSES[name]


def needs_pelvis(name: str) -> bool:
    """Whether the drill ``name`` needs the pelvis sensor (a menu can say so)."""
    return bool(drill_class(name).needs_pelvis)


def make_drill(name: str, *, geometry: PlateGeometry, rng: np.random.Generator,
               params: Mapping[str, Any] | None = None, feedback: str = "continuous",
               stance_side: str | None = None, limits: Limits | None = None, level: int | None = None,
               pelvis_sensor: bool | None = None) -> Drill:
    """Build a drill by name (``pelvis_sensor``: whether a pelvis sensor is worn; None: not known).

    Raises
    ------
    ValueError
        Naming the bad argument (``name``, ``geometry``, ``rng``, ``params[...]``,
        ``feedback``, ``stance_side``, ``limits``, ``level`` or ``pelvis_sensor``: a drill
        that needs the pelvis sensor without one).
    """
    return drill_class(name)(geometry=geometry, rng=rng, params=params, feedback=feedback,
                             stance_side=stance_side, limits=limits, level=level, pelvis_sensor=pelvis_sensor)
