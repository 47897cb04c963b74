"""Drawing helpers for the patient screen: colours, fonts, and the plate seen from above.

Only drawing lives here: no state of the station, no input.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

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


#: the station's one typeface, for menus and games alike, best first: DejaVu Sans (standard on Raspberry
#: Pi OS) and Liberation Sans have real bold faces; pygame's bundled font made bold by smearing has odd
#: letter spacing ("SIMULAT ED PLAT E"), so it is only the last resort
FACES = ("dejavusans", "liberationsans", "freesans", "arial")
#: pygame's bundled font is drawn this much smaller than a TrueType face of the same size
BUNDLED_SCALE = 1.45


@lru_cache(maxsize=4)
def _face_path(bold: bool) -> str | None:
    for name in FACES:
        try:
            path = pygame.font.match_font(name, bold=bold)
        except Exception:  # noqa: BLE001 - no fontconfig: use the bundled font
            return None
        if path:
            return path
    return None


@lru_cache(maxsize=64)
def face(size_px: int, bold: bool = False) -> pygame.font.Font:
    """The station's typeface at ``size_px`` (about the height of a capital plus descender), bold or not."""
    if not pygame.font.get_init():
        pygame.font.init()
    path = _face_path(bold)
    if path is not None:
        try:
            return pygame.font.Font(path, size_px)
        except (OSError, pygame.error):
            pass
    f = pygame.font.Font(None, round(size_px * BUNDLED_SCALE))
    f.set_bold(bold)
    return f


def font(size_px: int, bold: bool = False) -> pygame.font.Font:
    """The same typeface as :func:`face`, sized as the menus were laid out (pygame's bundled font's sizes)."""
    return face(max(6, round(size_px / BUNDLED_SCALE)), bold)


@lru_cache(maxsize=512)
def rendered(message: str, size_px: int, colour: tuple[int, int, int], bold: bool = False) -> pygame.Surface:
    """``message`` rendered in :func:`font` (cached: do not draw on the surface returned)."""
    return font(size_px, bold).render(message, True, colour)


def text(surface: pygame.Surface, message: str, pos: tuple[int, int], *, size_px: int,
         colour: tuple[int, int, int] = TEXT, anchor: str = "topleft", bold: bool = False) -> pygame.Rect:
    """Draw ``message`` with its ``anchor`` point (a pygame.Rect attribute name) at ``pos``; the rendering is
    cached (the screens draw the same words 60 times a second)."""
    image = rendered(message, size_px, tuple(colour), bold)
    rect = image.get_rect(**{anchor: pos})
    surface.blit(image, rect)
    return rect


@lru_cache(maxsize=32)
def _banner_panel(size: tuple[int, int], radius: int) -> pygame.Surface:
    panel = pygame.Surface(size, pygame.SRCALPHA)
    pygame.draw.rect(panel, (*BACKGROUND, 225), panel.get_rect(), border_radius=radius)
    return panel


def banner(surface: pygame.Surface, message: str, centre: tuple[int, int], *, size_px: int,
           colour: tuple[int, int, int] = TEXT) -> pygame.Rect:
    """Large text on a dark, slightly transparent panel, legible over any drawing."""
    image = rendered(message, size_px, tuple(colour), True)
    rect = image.get_rect(center=centre).inflate(size_px, size_px // 2)
    surface.blit(_banner_panel(rect.size, size_px // 3), rect)
    surface.blit(image, image.get_rect(center=centre))
    return rect


def pill(surface: pygame.Surface, message: str, pos: tuple[int, int], *, size_px: int,
         fg: tuple[int, int, int], bg: tuple[int, int, int]) -> pygame.Rect:
    image = rendered(message, size_px, tuple(fg), True)
    pad = size_px // 3
    rect = image.get_rect(topleft=(pos[0] + pad, pos[1] + pad // 2)).inflate(2 * pad, pad)
    rect.topleft = pos
    pygame.draw.rect(surface, bg, rect, border_radius=rect.height // 2)
    surface.blit(image, image.get_rect(center=rect.center))
    return rect


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


def button(surface: pygame.Surface, rect: pygame.Rect, label: str, *, selected: bool, size_px: int,
           sub: str = "") -> None:
    """A big menu button: filled in the accent colour when selected, outlined otherwise."""
    radius = max(8, rect.height // 4)
    if selected:
        pygame.draw.rect(surface, ACCENT, rect, border_radius=radius)
        pygame.draw.rect(surface, TEXT, rect, width=max(3, rect.height // 20), border_radius=radius)
    else:
        pygame.draw.rect(surface, PANEL, rect, border_radius=radius)
        pygame.draw.rect(surface, PLATE_EDGE, rect, width=2, border_radius=radius)
    colour = BACKGROUND if selected else TEXT
    if sub:
        text(surface, label, (rect.centerx, rect.centery - size_px // 8), size_px=size_px, colour=colour,
             anchor="midbottom", bold=True)
        text(surface, sub, (rect.centerx, rect.centery + size_px // 8), size_px=max(14, size_px * 2 // 3),
             colour=colour if selected else MUTED, anchor="midtop")
    else:
        text(surface, label, rect.center, size_px=size_px, colour=colour, anchor="center", bold=True)


def wrap(message: str, *, size_px: int, width_px: int, bold: bool = False,
         face: Callable[[int, bool], pygame.font.Font] | None = None) -> list[str]:
    """``message`` broken into lines no wider than ``width_px`` (a word longer than that stands alone).

    Newlines start new lines. ``face(size_px, bold)`` gives the font (default :func:`font`).
    """
    f = (face or font)(size_px, bold)
    lines: list[str] = []
    for paragraph in message.split("\n"):
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}".strip()
            if line and f.size(candidate)[0] > width_px:
                lines.append(line)
                line = word
            else:
                line = candidate
        if line or not lines:
            lines.append(line)
    return lines


def paragraph(surface: pygame.Surface, message: str, centre_top: tuple[int, int], *, size_px: int, width_px: int,
              colour: tuple[int, int, int] = TEXT, bold: bool = False) -> int:
    """Centred, wrapped text from ``centre_top`` down; returns the y below the last line."""
    x, y = centre_top
    for line in wrap(message, size_px=size_px, width_px=width_px, bold=bold):
        rect = text(surface, line, (x, y), size_px=size_px, colour=colour, anchor="midtop", bold=bold)
        y = rect.bottom + size_px // 6
    return y
