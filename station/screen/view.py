"""Drawing helpers for the patient screen: the palette and the plate seen from above (the words and the
controls are in :mod:`station.screen.widgets`).

Only drawing lives here: no state of the station, no input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pygame

from station.core.geometry import PlateGeometry

# High-contrast palette, readable from 2 m.
BACKGROUND = (14, 27, 44)
PANEL = (28, 45, 68)
PLATE = (46, 66, 92)
PLATE_EDGE = (120, 144, 170)
CELL = (150, 170, 190)
FOOT = (235, 241, 247)
FOOT_FILL = (58, 82, 112)
TEXT = (245, 248, 252)
MUTED = (170, 186, 204)
COP = (255, 122, 41)
COP_TRAIL = (255, 170, 110)
WARN = (255, 205, 70)
SYNTHETIC = (120, 190, 255)


@dataclass(frozen=True)
class PlateView:
    """Maps plate millimetres (x right, y forward) to screen pixels (y down) inside ``area``."""

    geometry: PlateGeometry
    area: pygame.Rect
    margin_mm: float = 40.0

    @property
    def scale_px_per_mm(self) -> float:
        w_mm = self.geometry.ml_mm + 2 * self.margin_mm
        h_mm = self.geometry.ap_mm + 2 * self.margin_mm
        return min(self.area.width / w_mm, self.area.height / h_mm)

    def to_px(self, x_mm: float, y_mm: float) -> tuple[int, int]:
        s = self.scale_px_per_mm
        return (round(self.area.centerx + x_mm * s), round(self.area.centery - y_mm * s))

    def to_mm(self, px: tuple[int, int]) -> tuple[float, float]:
        s = self.scale_px_per_mm
        return ((px[0] - self.area.centerx) / s, (self.area.centery - px[1]) / s)

    def draw_plate(self, surface: pygame.Surface) -> None:
        g, s = self.geometry, self.scale_px_per_mm
        w = round((g.ml_mm + 2 * self.margin_mm) * s)
        h = round((g.ap_mm + 2 * self.margin_mm) * s)
        rect = pygame.Rect(0, 0, w, h)
        rect.center = self.area.center
        pygame.draw.rect(surface, PLATE, rect, border_radius=max(6, w // 30))
        pygame.draw.rect(surface, PLATE_EDGE, rect, width=max(2, w // 200), border_radius=max(6, w // 30))
        for x_mm, y_mm in g.cell_positions_mm():
            pygame.draw.circle(surface, CELL, self.to_px(x_mm, y_mm), max(4, round(12 * s)))
        for x_mm in (g.left_foot_x_mm, g.right_foot_x_mm):
            self.draw_foot(surface, x_mm, left=x_mm < 0)

    def draw_foot(self, surface: pygame.Surface, x_mm: float, *, left: bool) -> None:
        """A footprint of about 250 x 95 mm, toes forward, scaled to fit between the cells."""
        s = self.scale_px_per_mm
        length_mm = min(250.0, self.geometry.ap_mm * 0.9)
        width_mm = min(95.0, self.geometry.feet_ml_mm * 0.8)
        sole = pygame.Rect(0, 0, round(width_mm * s), round(length_mm * 0.78 * s))
        sole.center = self.to_px(x_mm, -length_mm * 0.08)
        pygame.draw.ellipse(surface, FOOT_FILL, sole)
        pygame.draw.ellipse(surface, FOOT, sole, width=max(2, round(3 * s)))
        # five toes along an arc, big toe on the inside
        toe_y_mm = length_mm * 0.335
        inside = 1 if left else -1  # the big toe points toward the body's midline
        for i, (dx, r) in enumerate([(0.32, 0.17), (0.08, 0.12), (-0.12, 0.11), (-0.29, 0.1), (-0.44, 0.085)]):
            cx = x_mm + inside * dx * width_mm
            cy = toe_y_mm - (i * 0.045) * length_mm
            pygame.draw.circle(surface, FOOT, self.to_px(cx, cy), max(2, round(r * width_mm * s)),
                               width=max(1, round(2.5 * s)))

    def draw_cop(self, surface: pygame.Surface, x_mm: float, y_mm: float,
                 trail: list[tuple[float, float]] | None = None) -> None:
        s = self.scale_px_per_mm
        if trail:  # (to_px inlined: a few hundred points a frame)
            cx, cy = self.area.centerx, self.area.centery
            points = [(round(cx + x * s), round(cy - y * s)) for x, y in trail
                      if not (math.isnan(x) or math.isnan(y))]
            if len(points) > 1:
                pygame.draw.lines(surface, COP_TRAIL, False, points, max(2, round(3 * s)))
        centre = self.to_px(x_mm, y_mm)
        radius = max(10, round(16 * s))
        pygame.draw.circle(surface, (255, 255, 255), centre, radius + max(2, radius // 4))
        pygame.draw.circle(surface, COP, centre, radius)


# -- menus ---------------------------------------------------------------------------------------

ACCENT = (64, 156, 255)
GOOD = (90, 210, 130)
BAD = (255, 96, 96)
