"""A patient's programme: which drills, how long, which side, what feedback, set by the therapist.

As plain data (JSON), a programme is::

    {"name": "week 2", "level_bounds": [1, 6],
     "items": [
        {"drill": "limits"},
        {"drill": "reach", "rounds": 2, "feedback": "intermittent"},
        {"drill": "symmetry", "duration_s": 60, "stance_side": "left", "params": {"tolerance_pct": 8}},
        {"drill": "single-leg-hold", "rounds": 3, "stance_side": "right", "level": 2}]}

Each item names a drill and may give ``duration_s`` or ``rounds`` (not
both), ``stance_side`` (required for ``single-leg-hold``), ``params`` (the
drill's own, checked), ``feedback`` and a starting ``level``. The programme's
``level_bounds`` apply to every item that does not set its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from station.core.geometry import PlateGeometry
from station.drills.base import Drill, json_ready
from station.drills.catalogue import ALL_DRILLS, PELVIS_DRILLS, canonical_name, drill_class
from station.drills.feedback import check_feedback
from station.drills.params import integer, number
from station.drills.progression import MAX_LEVEL, MIN_LEVEL, check_bounds, check_level
from station.drills.stability import Limits

__all__ = ["Programme", "ProgrammeItem"]

_ITEM_KEYS = ("drill", "duration_s", "rounds", "stance_side", "params", "feedback", "level")
_KEYS = ("name", "level_bounds", "items")


@dataclass(frozen=True)
class ProgrammeItem:
    """One drill of a programme (see the module notes)."""

    drill: str
    duration_s: float | None = None
    rounds: int | None = None
    stance_side: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    feedback: str = "continuous"
    level: int | None = None

    def drill_params(self, *, level_bounds: tuple[int, int] | None = None) -> dict[str, Any]:
        """The drill's parameters, with ``rounds``, ``duration_s`` and the programme's level bounds."""
        out = dict(self.params)
        if self.rounds is not None:
            out["rounds"] = self.rounds
        if self.duration_s is not None:
            out["duration_s"] = self.duration_s  # without rounds, the drill runs rounds until the time is up
        if level_bounds is not None:
            out.setdefault("level_bounds", list(level_bounds))
        return out

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"drill": self.drill}
        for key in ("duration_s", "rounds", "stance_side", "level"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        d["params"] = json_ready(dict(self.params))
        d["feedback"] = self.feedback
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, where: str = "item") -> ProgrammeItem:
        if not isinstance(d, Mapping):
            raise ValueError(f"{where} must be a dict with at least 'drill', got {d!r}")
        unknown = sorted(set(d) - set(_ITEM_KEYS))
        if unknown:
            raise ValueError(f"{where}: unknown key {unknown[0]!r} (takes {list(_ITEM_KEYS)})")
        if "drill" not in d:
            raise ValueError(f"{where}: missing 'drill' (one of {list(ALL_DRILLS)})")
        name = canonical_name(d["drill"]) if isinstance(d["drill"], str) else d["drill"]
        if name not in ALL_DRILLS:
            raise ValueError(f"{where}.drill must be one of {list(ALL_DRILLS)}, got {name!r}")
        duration = d.get("duration_s")
        rounds = d.get("rounds")
        if duration is not None and rounds is not None:
            raise ValueError(f"{where}: give duration_s or rounds, not both")
        if duration is not None:
            duration = number(1.0, 7200.0)(f"{where}.duration_s", duration)
        if rounds is not None:
            rounds = integer(1, 50)(f"{where}.rounds", rounds)
        side = d.get("stance_side")
        if side not in (None, "left", "right"):
            raise ValueError(f"{where}.stance_side must be 'left', 'right' or absent, got {side!r}")
        if (name == "single-leg-hold" or name in PELVIS_DRILLS) and side is None:
            what = "the single-leg hold" if name == "single-leg-hold" else f"the {name} drill (on one leg)"
            raise ValueError(f"{where}.stance_side is required for {what} ('left' or 'right')")
        feedback = d.get("feedback", "continuous")
        try:
            check_feedback(feedback)
        except ValueError as e:
            raise ValueError(f"{where}.{e}") from None
        level = d.get("level")
        if level is not None:
            check_level(level, name=f"{where}.level")
        params = d.get("params", {}) or {}
        if not isinstance(params, Mapping):
            raise ValueError(f"{where}.params must be a dict, got {params!r}")
        for key in ("rounds", "duration_s"):
            if key in params:
                raise ValueError(f"{where}.params: give {key!r} as the item's own key, not in params")
        try:
            checked = drill_class(name).check_params(params)
        except ValueError as e:
            raise ValueError(f"{where}.{e}") from None
        return cls(drill=name, duration_s=duration, rounds=rounds, stance_side=side, params=checked,
                   feedback=feedback, level=level)


@dataclass(frozen=True)
class Programme:
    """The drills a therapist set for a patient, in order."""

    items: tuple[ProgrammeItem, ...]
    name: str = ""
    level_bounds: tuple[int, int] = (MIN_LEVEL, MAX_LEVEL)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "level_bounds": list(self.level_bounds),
                "items": [item.to_dict() for item in self.items]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Programme:
        """Build and check a programme from plain data.

        Raises
        ------
        ValueError
            Naming the bad key, item (``items[2].drill ...``) or value.
        """
        if not isinstance(d, Mapping):
            raise ValueError(f"programme must be a dict with 'items', got {d!r}")
        unknown = sorted(set(d) - set(_KEYS))
        if unknown:
            raise ValueError(f"programme: unknown key {unknown[0]!r} (takes {list(_KEYS)})")
        name = d.get("name", "")
        if not isinstance(name, str):
            raise ValueError(f"name must be text, got {name!r}")
        bounds = check_bounds(d.get("level_bounds", (MIN_LEVEL, MAX_LEVEL)), name="level_bounds")
        items = d.get("items")
        if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, (list, tuple)) or not items:
            raise ValueError(f"items must be a non-empty list of drills, got {items!r}")
        return cls(items=tuple(ProgrammeItem.from_dict(it, where=f"items[{i}]") for i, it in enumerate(items)),
                   name=name, level_bounds=bounds)

    def make_drill(self, index: int, *, geometry: PlateGeometry, rng: np.random.Generator,
                   limits: Limits | None = None, level: int | None = None) -> Drill:
        """Build item ``index``'s drill; ``level`` (e.g. the patient's last level) overrides the item's."""
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self.items):
            raise ValueError(f"index must be 0 to {len(self.items) - 1}, got {index!r}")
        item = self.items[index]
        start = level if level is not None else item.level
        if start is not None:
            lo, hi = self.level_bounds
            start = min(max(check_level(start), lo), hi)
        return drill_class(item.drill)(geometry=geometry, rng=rng,
                                       params=item.drill_params(level_bounds=self.level_bounds),
                                       feedback=item.feedback, stance_side=item.stance_side, limits=limits,
                                       level=start)
