"""The patient screen's one toolkit: the typeface, text, banners, pills, buttons, wrapped text, fitting, shapes.

Every screen (the clinic flow, the drill menu, the live view, calibration, the games) draws its words and
controls with these. One argument order everywhere: the surface, the message or label, where (a point or a
rect), then keyword-only size, colours, anchor and state. One meaning of ``size_px``: the type size of
:func:`face` in pixels (about the height of a capital plus descender).

The menus' layouts (:mod:`station.screen.flow`, :mod:`~station.screen.live_view`,
:mod:`~station.screen.calibration`) step their lines in units 1.45 times the type size (they were drawn in
pygame's bundled font, that much smaller than a TrueType face of the same size): :func:`menu_size` turns such
a layout size into the type size. Only drawing lives here: no state of the station, no input.
"""

from __future__ import annotations

import math
from functools import lru_cache

import pygame

from station.screen.view import ACCENT, BACKGROUND, MUTED, PANEL, PLATE_EDGE, TEXT

Colour = tuple[int, int, int]

#: the station's one typeface, for menus and games alike, best first: DejaVu Sans (standard on Raspberry
#: Pi OS) and Liberation Sans have real bold faces; pygame's bundled font made bold by smearing has odd
#: letter spacing ("SIMULAT ED PLAT E"), so it is only the last resort
FACES = ("dejavusans", "liberationsans", "freesans", "arial")
#: pygame's bundled font is drawn this much smaller than a TrueType face of the same size; the menus' layout
#: units (:func:`menu_size`) are this much bigger than the type size
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


def menu_size(layout_px: int) -> int:
    """The type size for a menu layout's text size ``layout_px`` (the flow's, live view's and calibration's
    layouts step their lines in units :data:`BUNDLED_SCALE` times the type size)."""
    return max(6, round(layout_px / BUNDLED_SCALE))


@lru_cache(maxsize=1024)  # the menus' and the games' words (two caches of 512 before)
def rendered(message: str, size_px: int, colour: Colour, bold: bool = False) -> pygame.Surface:
    """``message`` rendered in :func:`face` (cached: do not draw on the surface returned)."""
    return face(size_px, bold).render(message, True, colour)


# -- text --------------------------------------------------------------------------------------------------


def text(surface: pygame.Surface, message: str, pos: tuple[int, int], *, size_px: int, colour: Colour = TEXT,
         anchor: str = "topleft", bold: bool = False) -> pygame.Rect:
    """Draw ``message`` with its ``anchor`` point (a pygame.Rect attribute name) at ``pos``; the rendering is
    cached (the screens draw the same words 60 times a second)."""
    image = rendered(message, size_px, tuple(colour), bold)
    rect = image.get_rect(**{anchor: pos})
    surface.blit(image, rect)
    return rect


def banner(surface: pygame.Surface, message: str, centre: tuple[int, int], *, size_px: int,
           colour: Colour = TEXT, pad_px: int | None = None) -> pygame.Rect:
    """Large bold text on a dark, slightly transparent panel, legible over any drawing. The panel reaches
    ``pad_px`` (default: the type size) beyond the words at each side, half that above and below."""
    pad = size_px if pad_px is None else pad_px
    image = rendered(message, size_px, tuple(colour), True)
    rect = image.get_rect(center=centre).inflate(pad, pad // 2)
    surface.blit(box(rect.size, BACKGROUND, alpha=225, radius=pad // 3), rect)
    surface.blit(image, image.get_rect(center=centre))
    return rect


def pill(surface: pygame.Surface, message: str, pos: tuple[int, int], *, size_px: int, fg: Colour, bg: Colour,
         anchor: str = "topleft", pad_px: int | None = None) -> pygame.Rect:
    """A short bold label on a rounded background, placed by its ``anchor`` at ``pos``; ``pad_px`` (default a
    third of the type size, at least 4) around the words at the sides, half that above and below."""
    image = rendered(message, size_px, tuple(fg), True)
    pad = max(4, size_px // 3) if pad_px is None else pad_px
    rect = image.get_rect().inflate(2 * pad, pad)
    setattr(rect, anchor, pos)
    pygame.draw.rect(surface, bg, rect, border_radius=rect.height // 2)
    surface.blit(image, image.get_rect(center=rect.center))
    return rect


def button(surface: pygame.Surface, label: str, rect: pygame.Rect, *, size_px: int, selected: bool,
           colour: Colour = ACCENT, sub: str = "", sub_size_px: int | None = None, gap_px: int | None = None,
           shape: str = "card") -> pygame.Rect:
    """A big button, filled in ``colour`` when ``selected``.

    ``shape`` "card" (the menus): a rounded rectangle, outlined in white when selected, in the plate's edge
    colour otherwise. "pill" (the games): fully rounded, outlined and lettered in ``colour`` when not selected.
    An optional ``sub`` line (type size ``sub_size_px``, default two thirds of ``size_px``) goes under the
    label, the two ``gap_px`` (default a fifth of ``size_px``) above and below the button's middle.
    """
    if shape == "pill":
        radius = rect.height // 2
        if selected:
            pygame.draw.rect(surface, colour, rect, border_radius=radius)
        else:
            pygame.draw.rect(surface, PANEL, rect, border_radius=radius)
            pygame.draw.rect(surface, colour, rect, width=max(3, rect.height // 14), border_radius=radius)
        ink = BACKGROUND if selected else colour
        sub_ink = ink
    else:
        radius = max(8, rect.height // 4)
        if selected:
            pygame.draw.rect(surface, colour, rect, border_radius=radius)
            pygame.draw.rect(surface, TEXT, rect, width=max(3, rect.height // 20), border_radius=radius)
        else:
            pygame.draw.rect(surface, PANEL, rect, border_radius=radius)
            pygame.draw.rect(surface, PLATE_EDGE, rect, width=2, border_radius=radius)
        ink = BACKGROUND if selected else TEXT
        sub_ink = BACKGROUND if selected else MUTED
    if sub:
        gap = size_px // 5 if gap_px is None else gap_px
        text(surface, label, (rect.centerx, rect.centery - gap), size_px=size_px, colour=ink, anchor="midbottom",
             bold=True)
        text(surface, sub, (rect.centerx, rect.centery + gap), colour=sub_ink, anchor="midtop",
             size_px=max(6, size_px * 2 // 3) if sub_size_px is None else sub_size_px)
    else:
        text(surface, label, rect.center, size_px=size_px, colour=ink, anchor="center", bold=True)
    return rect


# -- wrapped and fitted text ---------------------------------------------------------------------------------


def wrap(message: str, *, size_px: int, width_px: int, bold: bool = False) -> list[str]:
    """``message`` broken into lines no wider than ``width_px`` (a word longer than that stands alone).
    Newlines start new lines."""
    f = face(size_px, bold)
    lines: list[str] = []
    for part in message.split("\n"):
        line = ""
        for word in part.split():
            candidate = f"{line} {word}".strip()
            if line and f.size(candidate)[0] > width_px:
                lines.append(line)
                line = word
            else:
                line = candidate
        if line or not lines:
            lines.append(line)
    return lines


def balanced(message: str, *, size_px: int, width_px: int, bold: bool = False) -> list[str]:
    """Like :func:`wrap`, but two lines are made about equally long (no lone word on the second line)."""
    lines = wrap(message, size_px=size_px, width_px=width_px, bold=bold)
    if len(lines) != 2:
        return lines
    f = face(size_px, bold)
    words = message.split()
    best = lines
    best_w = max(f.size(line)[0] for line in lines)
    for i in range(1, len(words)):
        a, b = " ".join(words[:i]), " ".join(words[i:])
        w = max(f.size(a)[0], f.size(b)[0])
        if w < best_w:
            best, best_w = [a, b], w
    return best


def paragraph(surface: pygame.Surface, message: str, pos: tuple[int, int], *, size_px: int, width_px: int,
              colour: Colour = TEXT, anchor: str = "midtop", bold: bool = False, gap_px: int | None = None) -> int:
    """Wrapped text from ``pos`` down, each line placed by its ``anchor`` ("midtop": centred on ``pos``;
    "topleft": from it), ``gap_px`` (default a quarter of ``size_px``) between the lines; returns the y below
    the last line."""
    gap = size_px // 4 if gap_px is None else gap_px
    x, y = pos
    for line in wrap(message, size_px=size_px, width_px=width_px, bold=bold):
        rect = text(surface, line, (x, y), size_px=size_px, colour=colour, anchor=anchor, bold=bold)
        y = rect.bottom + gap
    return y


def fit_size(message: str, *, size_px: int, width_px: int, bold: bool = False, min_px: int = 12) -> int:
    """The largest size up to ``size_px`` at which ``message`` fits in ``width_px``."""
    size = size_px
    while size > min_px and face(size, bold).size(message)[0] > width_px:
        size = max(min_px, int(size * 0.92))
    return size


@lru_cache(maxsize=64)
def fit_lines(message: str, *, size_px: int, min_px: int, width_px: int, height_px: int, max_lines: int = 2,
              bold: bool = False) -> tuple[int, tuple[str, ...]]:
    """The largest size from ``size_px`` down to ``min_px`` at which ``message`` fits in the box, and its lines."""
    size = size_px
    while True:
        lines = balanced(message, size_px=size, width_px=width_px, bold=bold)
        fits = len(lines) <= max_lines and len(lines) * face(size, bold).get_linesize() <= height_px
        if fits or size <= min_px:
            return size, tuple(lines[:max_lines])
        size = max(min_px, int(size * 0.92))


# -- shapes --------------------------------------------------------------------------------------------------


@lru_cache(maxsize=128)
def _disc(radius: int, colour: Colour, alpha: int) -> pygame.Surface:
    s = pygame.Surface((2 * radius + 2, 2 * radius + 2), pygame.SRCALPHA)
    pygame.draw.circle(s, (*colour, alpha), (radius + 1, radius + 1), radius)
    return s


@lru_cache(maxsize=128)
def box(size: tuple[int, int], colour: Colour, *, alpha: int, radius: int = 0) -> pygame.Surface:
    """A see-through rounded rectangle of ``size`` to blit (cached: do not draw on it)."""
    s = pygame.Surface(size, pygame.SRCALPHA)
    pygame.draw.rect(s, (*colour, alpha), s.get_rect(), border_radius=radius)
    return s


def disc(surface: pygame.Surface, colour: Colour, centre: tuple[int, int], radius: int, *, alpha: int = 255) -> None:
    """A filled circle, see-through below ``alpha`` 255."""
    if alpha >= 255:
        pygame.draw.circle(surface, colour, centre, radius)
    else:
        surface.blit(_disc(radius, colour, alpha), (centre[0] - radius - 1, centre[1] - radius - 1))


def ring(surface: pygame.Surface, colour: Colour, centre: tuple[int, int], r_outer: float, r_inner: float, *,
         fraction: float = 1.0, start: float = -math.pi / 2) -> pygame.Rect:
    """A thick ring, or the part of it from ``start`` (12 o'clock) clockwise over ``fraction`` of a turn;
    returns where it was drawn."""
    fraction = max(0.0, min(1.0, fraction))
    if fraction <= 0 or r_outer <= r_inner:
        return pygame.Rect(centre, (0, 0))
    if fraction >= 1.0:
        return pygame.draw.circle(surface, colour, centre, round(r_outer), width=max(1, round(r_outer - r_inner)))
    n = max(8, int(72 * fraction))
    cx, cy = centre
    angles = [start + 2 * math.pi * fraction * i / n for i in range(n + 1)]
    outer = [(cx + r_outer * math.cos(a), cy + r_outer * math.sin(a)) for a in angles]
    inner = [(cx + r_inner * math.cos(a), cy + r_inner * math.sin(a)) for a in reversed(angles)]
    return pygame.draw.polygon(surface, colour, outer + inner)


def tick_mark(surface: pygame.Surface, colour: Colour, centre: tuple[int, int], size: int) -> None:
    """A check mark about ``size`` pixels across."""
    cx, cy = centre
    pts = [(cx - size * 0.5, cy + size * 0.02), (cx - size * 0.12, cy + size * 0.4),
           (cx + size * 0.55, cy - size * 0.4)]
    pygame.draw.lines(surface, colour, False, pts, max(3, size // 5))
