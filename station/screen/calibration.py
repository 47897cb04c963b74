"""The calibration on the patient screen: the plate with its marked points, the target, progress and messages.

Drawing and input only: the state is the procedure's
(:class:`calibration.procedure.CalibrationProcedure`), which the wizard's loop
hands to :meth:`CalibrationScreen.tick` every turn. Enter or Space on the
screen confirms a step (like Enter on the terminal); Ctrl-Q or closing the
window stops the calibration.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pygame

from station.core.config import ScreenSettings
from station.core.geometry import PlateGeometry
from station.screen import view, widgets
from station.screen.widgets import menu_size
from station.screen.window import Mode, ScreenUnavailable, Window

TARGET = (255, 205, 70)
DONE = (110, 210, 140)
PROBLEM = (255, 110, 100)
POINT = (190, 205, 222)


class CalibrationMode(Mode):
    """Draws one calibration procedure: plate, marked points, target, live load, progress, messages."""

    def __init__(self, geometry: PlateGeometry, *, synthetic: bool = False) -> None:
        self.geometry = geometry
        self.synthetic = synthetic
        self.proc: Any = None
        self._view: view.PlateView | None = None

    def plate_view(self, surface: pygame.Surface) -> view.PlateView:
        w, h = surface.get_size()
        area = pygame.Rect(0, 0, int(w * 0.6), int(h * 0.78))
        area.center = (int(w * 0.33), h // 2 + int(h * 0.04))
        if self._view is None or self._view.area != area:
            self._view = view.PlateView(self.geometry, area)
        return self._view

    def draw(self, surface: pygame.Surface) -> None:
        w, h = surface.get_size()
        surface.fill(view.BACKGROUND)
        mid, small = max(20, h // 20), max(15, h // 36)
        widgets.text(surface, "Calibration", (w // 40, h // 40), size_px=menu_size(mid), colour=view.MUTED)
        if self.synthetic:
            widgets.pill(surface, "SIMULATED PLATE", (w // 40, h // 40 + mid + 6), size_px=menu_size(small),
                         pad_px=small // 3, fg=view.BACKGROUND, bg=view.SYNTHETIC)
        pv = self.plate_view(surface)
        self._draw_plate(surface, pv)
        proc = self.proc
        if proc is None:
            return
        self._draw_points(surface, pv, proc, small)
        fz, (x, y) = proc.live_fz_n, proc.live_cop_mm
        if not (math.isnan(x) or math.isnan(y)) and fz > 0:
            pv.draw_cop(surface, x, y)
        self._draw_panel(surface, proc)

    # -- parts ------------------------------------------------------------------------------------
    def _draw_plate(self, surface: pygame.Surface, pv: view.PlateView) -> None:
        g, s = self.geometry, pv.scale_px_per_mm
        rect = pygame.Rect(0, 0, round((g.ml_mm + 2 * pv.margin_mm) * s), round((g.ap_mm + 2 * pv.margin_mm) * s))
        rect.center = pv.area.center
        pygame.draw.rect(surface, view.PLATE, rect, border_radius=max(6, rect.width // 30))
        pygame.draw.rect(surface, view.PLATE_EDGE, rect, width=max(2, rect.width // 200),
                         border_radius=max(6, rect.width // 30))
        size = max(14, surface.get_height() // 40)
        for (cx, cy), name in zip(g.cell_positions_mm(), ("fl", "fr", "bl", "br")):
            centre = pv.to_px(cx, cy)
            pygame.draw.circle(surface, view.CELL, centre, max(4, round(12 * s)))
            widgets.text(surface, name, (centre[0], centre[1] + max(6, round(16 * s))), size_px=menu_size(size),
                         colour=view.MUTED, anchor="midtop")
        front = pv.to_px(0, g.ap_mm / 2 + pv.margin_mm)
        widgets.text(surface, "front (screen side)", (front[0], front[1] - 4), size_px=menu_size(size),
                     colour=view.MUTED, anchor="midbottom")

    def _draw_points(self, surface: pygame.Surface, pv: view.PlateView, proc: Any, size_px: int) -> None:
        s = pv.scale_px_per_mm
        done = {t.point.name for i, t in enumerate((*proc.plan.fit, *proc.plan.verify))
                if i + 1 < proc.step.index or (proc.finished and proc.result is not None)}
        target = proc.target
        for p in proc.plan.points:
            centre = pv.to_px(p.x_mm, p.y_mm)
            colour = DONE if p.name in done else POINT
            arm = max(5, round(9 * s))
            pygame.draw.line(surface, colour, (centre[0] - arm, centre[1]), (centre[0] + arm, centre[1]), 2)
            pygame.draw.line(surface, colour, (centre[0], centre[1] - arm), (centre[0], centre[1] + arm), 2)
            widgets.text(surface, p.name, (centre[0] + arm + 3, centre[1] - arm - 2), size_px=menu_size(size_px),
                         colour=colour, anchor="bottomleft")
        if target is not None:
            centre = pv.to_px(target.point.x_mm, target.point.y_mm)
            radius = max(14, round(28 * s))
            pygame.draw.circle(surface, TARGET, centre, radius, width=max(3, radius // 6))
            if proc.state.value == "measuring":
                rect = pygame.Rect(0, 0, 2 * radius + 14, 2 * radius + 14)
                rect.center = centre
                end = math.pi / 2 + 2 * math.pi * max(proc.progress, 0.001)
                pygame.draw.arc(surface, DONE if proc.steady else PROBLEM, rect, math.pi / 2, end, 6)
            # the ring covers the point's own label: name the target again, outside the ring
            widgets.text(surface, target.point.name, (centre[0] + radius + 10, centre[1] - radius - 4),
                         size_px=menu_size(size_px), colour=TARGET, anchor="bottomleft", bold=True)

    def _draw_panel(self, surface: pygame.Surface, proc: Any) -> None:
        w, h = surface.get_size()
        panel = pygame.Rect(int(w * 0.64), int(h * 0.12), int(w * 0.34), int(h * 0.8))
        pygame.draw.rect(surface, view.PANEL, panel, border_radius=16)
        pad = max(10, w // 80)
        x, y = panel.left + pad, panel.top + pad
        width = panel.width - 2 * pad
        mid, small, big = max(20, h // 24), max(15, h // 36), max(28, h // 12)
        widgets.text(surface, f"Step {proc.step_number} of {proc.n_steps}", (x, y), size_px=menu_size(small),
                     colour=view.MUTED)
        y += small + 8
        target = proc.target
        if target is not None:
            widgets.text(surface, proc.plan.mass_text(target.mass_kg), (x, y), size_px=menu_size(big), bold=True,
                         colour=TARGET)
            widgets.text(surface, f"on {target.point.name}", (x + width, y + big - mid), size_px=menu_size(mid),
                         colour=TARGET, anchor="topright", bold=True)
            y += big + 8
        for line in widgets.wrap(proc.instruction, size_px=menu_size(mid), width_px=width):
            widgets.text(surface, line, (x, y), size_px=menu_size(mid))
            y += mid + 2
        y += 10
        if proc.finished:
            self._draw_end(surface, proc, x, y, width)
            return
        # progress of the measurement and steadiness of the load
        bar = pygame.Rect(x, y, width, max(14, h // 40))
        pygame.draw.rect(surface, view.PLATE, bar, border_radius=bar.height // 2)
        measuring = proc.state.value == "measuring"
        if measuring and proc.progress > 0:
            fill = bar.copy()
            fill.width = max(bar.height, round(bar.width * proc.progress))
            pygame.draw.rect(surface, DONE if proc.steady else PROBLEM, fill, border_radius=bar.height // 2)
        y = bar.bottom + 6
        if measuring:
            std = proc.stability_std_n
            status = ("measuring..." if std is None else
                      f"{'steady' if proc.steady else 'moving'}: {std:.2f} N (steady below {proc.stable_std_n:g} N)")
            widgets.text(surface, status, (x, y), size_px=menu_size(small), colour=DONE if proc.steady else PROBLEM)
        elif proc.awaiting_confirmation:
            widgets.text(surface, "press Enter when done", (x, y), size_px=menu_size(small), colour=view.MUTED)
        y += small + 14
        # overall progress
        overall = pygame.Rect(x, y, width, 6)
        pygame.draw.rect(surface, view.PLATE, overall)
        pygame.draw.rect(surface, view.MUTED, (x, y, round(width * proc.overall_progress), 6))
        y += 20
        if proc.messages:
            for line in widgets.wrap(proc.messages[-1], size_px=menu_size(small), width_px=width)[:8]:
                widgets.text(surface, line, (x, y), size_px=menu_size(small), colour=PROBLEM)
                y += small + 2

    def _draw_end(self, surface: pygame.Surface, proc: Any, x: int, y: int, width: int) -> None:
        h = surface.get_height()
        mid, small = max(20, h // 24), max(15, h // 36)
        if proc.result is not None:
            v = proc.result.verification
            colour = DONE if v.passed else PROBLEM
            for line in widgets.wrap(f"COP error {v.max_cop_error_mm:.2f} mm at most, force error "
                                     f"{v.max_force_error_pct:.2f} % at most", size_px=menu_size(mid), width_px=width,
                                     bold=True):
                widgets.text(surface, line, (x, y), size_px=menu_size(mid), colour=colour, bold=True)
                y += mid + 2
            y += 8
            for row, target in zip(v.rows, proc.plan.verify):
                widgets.text(surface, f"{target.point.name}  {proc.plan.mass_text(row.mass_kg):>7}   "
                             f"{row.cop_error_mm:.2f} mm   {row.force_error_pct:+.2f} %",
                             (x, y), size_px=menu_size(small), colour=view.MUTED)
                y += small + 4
            for warning in proc.result.warnings[:2]:
                for line in widgets.wrap(warning, size_px=menu_size(small), width_px=width)[:4]:
                    widgets.text(surface, line, (x, y), size_px=menu_size(small), colour=view.WARN)
                    y += small + 2


class CalibrationScreen(Window):
    """The window (or full screen) and its loop turn; the wizard calls :meth:`tick` with the procedure."""

    def __init__(self, settings: ScreenSettings, *, geometry: PlateGeometry, synthetic: bool = False) -> None:
        super().__init__(settings)
        self.mode = CalibrationMode(geometry, synthetic=synthetic)
        self.confirm_requested = False
        self._last_draw_s = -math.inf

    def tick(self, proc: Any) -> None:
        """Read input; draw ``proc`` and flip, at most ``settings.fps`` times a second."""
        assert self.surface is not None, "open() first"
        self.confirm_requested = False
        for event in pygame.event.get():
            if event.type == pygame.QUIT:
                self.quit_requested = True
            elif event.type == pygame.KEYDOWN:
                if event.key == pygame.K_q and event.mod & pygame.KMOD_CTRL:
                    self.quit_requested = True
                elif event.key in (pygame.K_RETURN, pygame.K_KP_ENTER, pygame.K_SPACE):
                    self.confirm_requested = True
        now = time.monotonic()
        if now - self._last_draw_s >= 1.0 / self.settings.fps or proc.finished:
            self._last_draw_s = now
            self.draw(proc)

    def draw(self, proc: Any) -> None:
        """Draw ``proc`` now and flip."""
        assert self.surface is not None, "open() first"
        self.mode.proc = proc
        self.mode.draw(self.surface)
        pygame.display.flip()
        self.frames_drawn += 1


def open_calibration_screen(settings: ScreenSettings, *, geometry: PlateGeometry,
                            synthetic: bool = False) -> tuple[CalibrationScreen | None, str]:
    """The calibration screen, open; or None and why there is no display."""
    screen = CalibrationScreen(settings, geometry=geometry, synthetic=synthetic)
    try:
        screen.open()
    except ScreenUnavailable as exc:
        return None, str(exc)
    return screen, ""
