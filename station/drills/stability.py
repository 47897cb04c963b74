"""A patient's limits of stability: how far the COP can lean from the centre of the stance."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from station.drills.measures import unit_vector

__all__ = ["Limits", "DIRECTIONS", "direction_name"]

#: the eight reach directions, compass degrees (0 forward, 90 right) -> name
DIRECTIONS: dict[float, str] = {
    0.0: "forward", 45.0: "forward-right", 90.0: "right", 135.0: "backward-right",
    180.0: "backward", 225.0: "backward-left", 270.0: "left", 315.0: "forward-left",
}


def direction_name(direction_deg: float) -> str:
    d = float(direction_deg) % 360.0
    return DIRECTIONS.get(d, f"{d:g} deg")


@dataclass(frozen=True, slots=True)
class Limits:
    """How far the patient can move the COP from the centre of the stance, each way, in mm (all positive).

    Measured by the ``limits`` drill (a short maximal lean each way) or set by
    the therapist. Between the axes the limit is interpolated on an ellipse
    per quadrant (:meth:`limit_mm`).
    """

    forward_mm: float
    backward_mm: float
    left_mm: float
    right_mm: float

    def __post_init__(self) -> None:
        for name in ("forward_mm", "backward_mm", "left_mm", "right_mm"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and 5.0 <= v <= 500.0):
                raise ValueError(f"{name} must be a distance in mm from 5 to 500, got {v!r}")

    @classmethod
    def default(cls) -> Limits:
        """Typical limits of an adult standing on the marked footprints, for when none were measured."""
        return cls(forward_mm=110.0, backward_mm=70.0, left_mm=100.0, right_mm=100.0)

    def limit_mm(self, direction_deg: float) -> float:
        """The limit in a compass direction: ``1 / sqrt((ux/Lx)^2 + (uy/Ly)^2)``, ``Lx``, ``Ly`` of its quadrant."""
        ux, uy = unit_vector(direction_deg=direction_deg)
        lx = self.right_mm if ux >= 0 else self.left_mm
        ly = self.forward_mm if uy >= 0 else self.backward_mm
        return 1.0 / math.sqrt((ux / lx) ** 2 + (uy / ly) ** 2)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Limits:
        if not isinstance(d, Mapping):
            raise ValueError(f"limits must be a dict with forward_mm, backward_mm, left_mm, right_mm, got {d!r}")
        keys = ("forward_mm", "backward_mm", "left_mm", "right_mm")
        missing = [k for k in keys if k not in d]
        extra = sorted(set(d) - set(keys))
        if missing:
            raise ValueError(f"limits: missing {missing[0]!r}")
        if extra:
            raise ValueError(f"limits: unknown key {extra[0]!r} (takes {list(keys)})")
        return cls(**{k: d[k] for k in keys})
