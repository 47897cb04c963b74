"""Plate geometry (DESIGN.md section 3)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PlateGeometry:
    """Where the cells and the footprints are, in the plate frame.

    Parameters
    ----------
    ml_mm : float
        Medio-lateral distance between cell centres (left cells to right cells).
    ap_mm : float
        Antero-posterior distance between cell centres (back cells to front cells).
    feet_ml_mm : float
        Distance between the centres of the two footprints marked on the plate.
    """

    ml_mm: float = 400.0
    ap_mm: float = 300.0
    feet_ml_mm: float = 200.0

    def __post_init__(self) -> None:
        for name in ("ml_mm", "ap_mm", "feet_ml_mm"):
            value = getattr(self, name)
            if not (value > 0 and value < 5000):
                raise ValueError(f"{name} must be a distance in mm between 0 and 5000, got {value!r}")
        if self.feet_ml_mm > self.ml_mm:
            raise ValueError(
                f"feet_ml_mm ({self.feet_ml_mm}) must not exceed the cell spacing ml_mm ({self.ml_mm})"
            )

    @property
    def left_foot_x_mm(self) -> float:
        return -self.feet_ml_mm / 2

    @property
    def right_foot_x_mm(self) -> float:
        return self.feet_ml_mm / 2

    def left_share_pct(self, cop_ml_mm: float) -> float:
        """Share of body weight on the left foot in two-foot stance, 0..100 (DESIGN.md section 3):
        ``100 (feet_ml/2 - x) / feet_ml``, clipped to the feet."""
        pct = 100.0 * (self.feet_ml_mm / 2 - cop_ml_mm) / self.feet_ml_mm
        return max(0.0, min(100.0, pct))

    def cell_positions_mm(self) -> tuple[tuple[float, float], ...]:
        """(x, y) of ``fl, fr, bl, br``."""
        hx, hy = self.ml_mm / 2, self.ap_mm / 2
        return ((-hx, hy), (hx, hy), (-hx, -hy), (hx, -hy))
