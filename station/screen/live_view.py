"""The live view: the plate outline, the two footprints, the live COP and the body weight."""

from __future__ import annotations

import logging
import math
import os
import time

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # keep the journal to the station's own lines

import pygame  # noqa: E402

from station.core.cop import GRAVITY_M_S2
from station.core.geometry import PlateGeometry
from station.live.pipeline import LiveStation
from station.screen import view, widgets
from station.screen.widgets import menu_size
from station.screen.window import Mode

log = logging.getLogger(__name__)

#: how far one press of an arrow key moves the simulated person's lean target
STEER_STEP_MM = 10.0
#: how often the status line is refreshed, in s
STATUS_PERIOD_S = 0.5


class LiveMode(Mode):
    """The plate outline, the two footprints, the live COP and the body weight.

    On the simulated plate, the arrow keys and the mouse steer the simulated
    person (for demonstrations), and Space steps them on or off the plate.
    """

    def __init__(self, live: LiveStation, geometry: PlateGeometry) -> None:
        self.live = live
        self.geometry = geometry
        self._view: view.PlateView | None = None
        self._target_mm = [0.0, 0.0]
        self._dragging = False
        self._on_plate = True
        self._status_cache: tuple[float, dict] | None = None
        self._static: tuple[tuple, pygame.Surface] | None = None

    def plate_view(self, surface: pygame.Surface) -> view.PlateView:
        w, h = surface.get_size()
        area = pygame.Rect(0, 0, int(w * 0.66), int(h * 0.78))
        area.center = (w // 2 - int(w * 0.1), h // 2 + int(h * 0.04))
        if self._view is None or self._view.area != area:
            self._view = view.PlateView(self.geometry, area)
        return self._view

    # -- input ------------------------------------------------------------------------
    def handle_event(self, event: pygame.event.Event) -> None:
        if not self.live.synthetic:
            return
        if event.type == pygame.KEYDOWN:
            steps = {pygame.K_LEFT: (-1, 0), pygame.K_RIGHT: (1, 0), pygame.K_UP: (0, 1), pygame.K_DOWN: (0, -1)}
            if event.key in steps:
                dx, dy = steps[event.key]
                self._steer(self._target_mm[0] + dx * STEER_STEP_MM, self._target_mm[1] + dy * STEER_STEP_MM)
            elif event.key == pygame.K_SPACE:
                self._on_plate = not self._on_plate
                self.live.command("behaviour", name="step_on" if self._on_plate else "step_off")
            elif event.key in (pygame.K_HOME, pygame.K_c):
                self._steer(0.0, 0.0)
        elif event.type == pygame.MOUSEBUTTONDOWN and event.button == 1 and self._view is not None:
            self._dragging = True
            self._steer(*self._view.to_mm(event.pos))
        elif event.type == pygame.MOUSEBUTTONUP and event.button == 1:
            self._dragging = False
        elif event.type == pygame.MOUSEMOTION and self._dragging and self._view is not None:
            self._steer(*self._view.to_mm(event.pos))

    def _steer(self, x_mm: float, y_mm: float) -> None:
        half_ml, half_ap = self.geometry.ml_mm / 2, self.geometry.ap_mm / 2
        self._target_mm = [max(-half_ml, min(half_ml, x_mm)), max(-half_ap, min(half_ap, y_mm))]
        self.live.command("lean_to", x_mm=self._target_mm[0], y_mm=self._target_mm[1])

    # -- drawing ----------------------------------------------------------------------
    def _static_layer(self, surface: pygame.Surface, pv: view.PlateView, panel: pygame.Rect,
                      mid: int, small: int) -> pygame.Surface:
        """What does not move (background, plate, feet, the panel and its label, the title): drawn once per
        screen size, then blitted."""
        key = (surface.get_size(), bool(self.live.synthetic))
        if self._static is not None and self._static[0] == key:
            return self._static[1]
        w, h = surface.get_size()
        layer = pygame.Surface((w, h))
        if pygame.display.get_surface() is not None:
            layer = layer.convert()
        layer.fill(view.BACKGROUND)
        pv.draw_plate(layer)
        pygame.draw.rect(layer, view.PANEL, panel, border_radius=16)
        widgets.text(layer, "Body weight", (panel.centerx, panel.top + h // 30), size_px=menu_size(mid),
                     colour=view.MUTED, anchor="midtop")
        widgets.text(layer, "Balance station", (w // 40, h // 40), size_px=menu_size(mid), colour=view.MUTED)
        if self.live.synthetic:
            widgets.pill(layer, "SIMULATED PLATE", (w // 40, h // 40 + mid + 6), size_px=menu_size(small),
                         pad_px=small // 3, fg=view.BACKGROUND, bg=view.SYNTHETIC)
        self._static = (key, layer)
        return layer

    def draw(self, surface: pygame.Surface) -> None:
        w, h = surface.get_size()
        pv = self.plate_view(surface)
        sample = self.live.latest()
        big, mid, small = max(28, h // 9), max(20, h // 18), max(16, h // 32)
        panel = pygame.Rect(int(w * 0.74), int(h * 0.16), int(w * 0.24), int(h * 0.64))
        surface.blit(self._static_layer(surface, pv, panel, mid, small), (0, 0))

        # right-hand panel: body weight and share on each foot
        if sample is not None and sample.occupied:
            kg = sample.body_weight_n / GRAVITY_M_S2
            widgets.text(surface, f"{kg:.1f} kg", (panel.centerx, panel.top + h // 30 + mid + 4),
                         size_px=menu_size(big), anchor="midtop", bold=True)
            self._draw_share(surface, panel, self.geometry.left_share_pct(sample.cop_ml_mm), mid)
            if not math.isnan(sample.cop_ml_mm):
                pv.draw_cop(surface, sample.cop_ml_mm, sample.cop_ap_mm, self.live.trail())
        else:
            widgets.text(surface, "–", (panel.centerx, panel.top + h // 30 + mid + 4), size_px=menu_size(big),
                         anchor="midtop")
            widgets.banner(surface, "Step onto the plate", pv.area.center, size_px=menu_size(big), pad_px=big)

        self._draw_status(surface, small)

    def _draw_share(self, surface: pygame.Surface, panel: pygame.Rect, left_pct: float, size_px: int) -> None:
        """Two bars: share of weight on the left and on the right foot (two-foot stance)."""
        top = panel.top + panel.height // 2
        bar_h = panel.height // 3
        bar_w = panel.width // 5
        for i, (label, pct) in enumerate((("L", left_pct), ("R", 100 - left_pct))):
            x = panel.left + panel.width // 4 + i * panel.width // 2 - bar_w // 2
            frame = pygame.Rect(x, top, bar_w, bar_h)
            pygame.draw.rect(surface, view.PLATE, frame, border_radius=6)
            fill = pygame.Rect(x, top + round(bar_h * (1 - pct / 100)), bar_w, round(bar_h * pct / 100))
            pygame.draw.rect(surface, view.COP_TRAIL, fill, border_radius=6)
            widgets.text(surface, f"{label} {pct:.0f}%", (frame.centerx, frame.bottom + 6), size_px=menu_size(size_px),
                         anchor="midtop", bold=True)

    def _status(self) -> dict:
        """The station's status, refreshed twice a second (it is text for people, not the cursor)."""
        now = time.monotonic()
        if self._status_cache is None or now - self._status_cache[0] >= STATUS_PERIOD_S:
            self._status_cache = (now, self.live.status())
        return self._status_cache[1]

    def frame_key(self, surface: pygame.Surface) -> tuple | None:
        """What the picture shows while the plate is empty (then it changes only with the status line), so
        :class:`~station.screen.app.ScreenApp` draws it only when that changes; ``None`` (draw every frame)
        while someone stands on the plate."""
        sample = self.live.latest()
        if sample is not None and sample.occupied:
            return None
        status = self._status()
        return (surface.get_size(), bool(self.live.synthetic), self._status_line(status),
                tuple(status["warnings"][:2]))

    @staticmethod
    def _status_line(status: dict) -> str:
        rate = status["sample_rate_hz"]
        parts = [
            status["plate_description"] or status["plate_source"],
            f"{rate:.1f} Hz" if rate else "– Hz",
            f"dropped {status['dropped_frames']}",
            f"glitches {status['glitch_frames']}",
            f"calibration {status['calibration_date'][:10]}" if status["calibration_date"]
            else ("built-in calibration" if status["synthetic"] else "not calibrated"),
        ]
        return "   ·   ".join(parts)

    def _draw_status(self, surface: pygame.Surface, size_px: int) -> None:
        w, h = surface.get_size()
        status = self._status()
        widgets.text(surface, self._status_line(status), (w // 40, h - h // 40), size_px=menu_size(size_px),
                     colour=view.MUTED, anchor="bottomleft")
        for i, warning in enumerate(status["warnings"][:2]):
            widgets.text(surface, warning, (w // 2, h // 40 + i * (size_px + 6)), size_px=menu_size(size_px),
                         colour=view.WARN, anchor="midtop", bold=True)
