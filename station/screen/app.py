"""The patient screen: a pygame window (full screen on the Pi) showing the live plate.

Screens are mode classes: each reads input events and draws; all state lives
in the station (:class:`station.live.pipeline.LiveStation`). The loop runs on the main
thread, as SDL wants, at a fixed frame rate, and reads the newest live sample
on every frame, so the cursor is at most one screen frame behind the plate.
"""

from __future__ import annotations

import collections
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # keep the journal to the station's own lines

import pygame  # noqa: E402

from station.core.config import ScreenSettings
from station.core.cop import GRAVITY_M_S2
from station.core.geometry import PlateGeometry
from station.live.pipeline import LiveStation
from station.screen import view

log = logging.getLogger(__name__)

#: how far one press of an arrow key moves the simulated person's lean target
STEER_STEP_MM = 10.0
#: how often the status line is refreshed, in s
STATUS_PERIOD_S = 0.5


class ScreenUnavailable(RuntimeError):
    """No display could be opened (no monitor, no desktop, no KMS/DRM device)."""


#: the screens are drawn at most this many lines high; a bigger panel (1920x1080) gets the picture scaled by
#: SDL (pygame's SCALED: a texture the GPU stretches on the Pi), so the drawing costs what it costs at 720 lines
LOGICAL_HEIGHT = 720
#: video drivers that show nothing (tests, benchmarks): no window to scale up to
VIRTUAL_DRIVERS = ("dummy", "offscreen")


def logical_size(panel: tuple[int, int]) -> tuple[int, int]:
    """The size the screens are drawn at for a panel of ``panel`` pixels: the panel itself up to 720 lines,
    else the panel's shape 720 lines high."""
    w, h = panel
    if h <= LOGICAL_HEIGHT:
        return (w, h)
    return (max(1, round(w * LOGICAL_HEIGHT / h)), LOGICAL_HEIGHT)


def open_display(settings: ScreenSettings) -> pygame.Surface:
    """Open the window or the full screen. Raises :class:`ScreenUnavailable` with SDL's reason.

    The surface returned is at most :data:`LOGICAL_HEIGHT` lines high: on a bigger full screen SDL stretches it
    over the panel (SCALED; a texture the GPU scales); with a video driver that shows nothing the window is just
    the drawn size.
    """
    driver = os.environ.get("SDL_VIDEODRIVER", "")
    if not driver and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        if not any(Path("/dev/dri").glob("card*")):
            raise ScreenUnavailable("no desktop (DISPLAY/WAYLAND_DISPLAY unset) and no KMS/DRM device in /dev/dri")
        os.environ["SDL_VIDEODRIVER"] = "kmsdrm"
    virtual = os.environ.get("SDL_VIDEODRIVER", driver) in VIRTUAL_DRIVERS
    try:
        pygame.display.init()
        pygame.font.init()
        if settings.fullscreen and not virtual:
            panel = pygame.display.get_desktop_sizes()[0]
            size = logical_size(panel)
            if size == panel:
                surface = pygame.display.set_mode((0, 0), pygame.FULLSCREEN)
            else:  # SDL stretches the picture over the whole panel, smoothly (linear filtering, on the GPU)
                os.environ.setdefault("PYGAME_FORCE_SCALE", "photo")
                surface = pygame.display.set_mode(size, pygame.FULLSCREEN | pygame.SCALED)
            pygame.mouse.set_visible(False)
        else:
            panel = (settings.width, settings.height)
            size = logical_size(panel)
            if size == panel or virtual:
                surface = pygame.display.set_mode(size)
            else:  # a window on a desktop: pygame scales it by the largest whole factor that fits
                surface = pygame.display.set_mode(size, pygame.SCALED)
    except pygame.error as exc:
        pygame.display.quit()
        raise ScreenUnavailable(f"SDL could not open a display: {exc}") from None
    pygame.display.set_caption("Balance station")
    return surface


class Mode:
    """One screen. Subclasses handle input and draw; they keep no station state of their own."""

    def handle_event(self, event: pygame.event.Event) -> None:  # noqa: B027 - optional
        pass

    def update(self) -> None:  # noqa: B027 - optional, called once per screen frame
        pass

    def draw(self, surface: pygame.Surface) -> None:
        raise NotImplementedError


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
        view.text(layer, "Body weight", (panel.centerx, panel.top + h // 30), size_px=mid,
                  colour=view.MUTED, anchor="midtop")
        view.text(layer, "Balance station", (w // 40, h // 40), size_px=mid, colour=view.MUTED)
        if self.live.synthetic:
            view.pill(layer, "SIMULATED PLATE", (w // 40, h // 40 + mid + 6), size_px=small,
                      fg=view.BACKGROUND, bg=view.SYNTHETIC)
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
            view.text(surface, f"{kg:.1f} kg", (panel.centerx, panel.top + h // 30 + mid + 4), size_px=big,
                      anchor="midtop", bold=True)
            self._draw_share(surface, panel, self.geometry.left_share_pct(sample.cop_ml_mm), mid)
            if not math.isnan(sample.cop_ml_mm):
                pv.draw_cop(surface, sample.cop_ml_mm, sample.cop_ap_mm, self.live.trail())
        else:
            view.text(surface, "–", (panel.centerx, panel.top + h // 30 + mid + 4), size_px=big, anchor="midtop")
            view.banner(surface, "Step onto the plate", pv.area.center, size_px=big)

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
            view.text(surface, f"{label} {pct:.0f}%", (frame.centerx, frame.bottom + 6), size_px=size_px,
                      anchor="midtop", bold=True)

    def _status(self) -> dict:
        """The station's status, refreshed twice a second (it is text for people, not the cursor)."""
        now = time.monotonic()
        if self._status_cache is None or now - self._status_cache[0] >= STATUS_PERIOD_S:
            self._status_cache = (now, self.live.status())
        return self._status_cache[1]

    def _draw_status(self, surface: pygame.Surface, size_px: int) -> None:
        w, h = surface.get_size()
        status = self._status()
        rate = status["sample_rate_hz"]
        parts = [
            status["plate_description"] or status["plate_source"],
            f"{rate:.1f} Hz" if rate else "– Hz",
            f"dropped {status['dropped_frames']}",
            f"glitches {status['glitch_frames']}",
            f"calibration {status['calibration_date'][:10]}" if status["calibration_date"]
            else ("built-in calibration" if status["synthetic"] else "not calibrated"),
        ]
        view.text(surface, "   ·   ".join(parts), (w // 40, h - h // 40), size_px=size_px,
                  colour=view.MUTED, anchor="bottomleft")
        for i, warning in enumerate(status["warnings"][:2]):
            view.text(surface, warning, (w // 2, h // 40 + i * (size_px + 6)), size_px=size_px,
                      colour=view.WARN, anchor="midtop", bold=True)


class Window:
    """The display surface shared by the station's screen loops: open, screenshot, close."""

    def __init__(self, settings: ScreenSettings) -> None:
        self.settings = settings
        self.surface: pygame.Surface | None = None
        self.frames_drawn = 0
        self.quit_requested = False

    def open(self) -> None:
        self.surface = open_display(self.settings)

    def screenshot(self, path: Path) -> None:
        assert self.surface is not None, "open() first"
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        pygame.image.save(self.surface, str(path))

    def close(self) -> None:
        pygame.display.quit()


#: the flow's cues -> (game sound, buzzer beep)
CUES: dict[str, tuple[str | None, str | None]] = {
    "countdown": ("beat", "countdown"),
    "go": ("hit", "go"),
    "touchdown": ("lost_balance", "alert"),
    "finished": ("round_end", "success"),
}


class ScreenApp(Window):
    """The screen loop: input, update, draw, at a fixed frame rate.

    With a ``visit`` (:class:`station.clinic.visit.Visit`) the screen runs the
    clinic's flow (choose the patient, the leg, the test, the result; see
    :mod:`station.screen.flow`) and follows any test the controller runs, even
    one started from the web page; without one it shows the live plate.
    ``controls`` (:class:`hardware.controls.StationControls`) sound the
    buzzer with the screen's cues; :meth:`press` is the start button.
    """

    def __init__(self, live: LiveStation, *, geometry: PlateGeometry, settings: ScreenSettings,
                 visit: object | None = None, controls: object | None = None, sounds: object | None = None,
                 extra_menu: list | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(settings)
        self.live = live
        self.geometry = geometry
        self.visit = visit
        self.controls = controls
        self.sounds = sounds
        self.cues_played: list[str] = []
        self._presses: collections.deque[float] = collections.deque()
        self._followed: set[int] = set()
        self._clock = pygame.time.Clock()
        self._drawn_mode: Mode | None = None
        self._shown_key: object = None
        self.ctx = None
        if visit is not None:
            from station.screen.flow import FlowContext, HomeMode

            self.ctx = FlowContext(live=live, visit=visit, geometry=geometry, switch=self.switch, cue=self.cue,
                                   clock=clock, sounds=sounds, extra_menu=list(extra_menu or []))
            self.mode: Mode = HomeMode(self.ctx)
        else:
            self.mode = LiveMode(live, geometry)

    def use_sounds(self, sounds: object) -> None:
        """Play the screen's cues (and the games') through ``sounds``."""
        self.sounds = sounds
        if self.ctx is not None:
            self.ctx.sounds = sounds

    def switch(self, mode: Mode) -> None:
        """Show another screen."""
        self.mode = mode

    def press(self) -> None:
        """The start button was pressed (any thread): handled at the next screen frame."""
        self._presses.append(time.monotonic())

    def cue(self, name: str) -> None:
        """A sound for the patient: the screen's speaker when there is one, and the buzzer."""
        self.cues_played.append(name)
        sound, beep = CUES.get(name, (None, None))
        if self.sounds is not None and sound is not None:
            self.sounds.play(sound)  # type: ignore[attr-defined]
        if self.controls is not None and beep is not None:
            try:
                self.controls.beep(beep)  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 - a buzzer fault must not stop the test
                log.exception("buzzer")

    def _follow_trials(self) -> None:
        """A test or a drill the screen did not start (the web page, the button): show it."""
        from station.screen.flow import ControlledDrill, TrialMode

        if (self.ctx is None or not self.ctx.controller.running or isinstance(self.mode, TrialMode)
                or getattr(self.mode, "controlled", False)):
            return  # (no snapshot taken on the idle screen's frames)
        snap = self.ctx.controller.snapshot()
        if not snap["running"] or snap["trial_id"] in self._followed:
            return
        if snap.get("protocol") in ("single-leg", "quiet-stance"):
            self._followed.add(snap["trial_id"])
            self.ctx.visit.adopt(snap)
            self.switch(TrialMode(self.ctx))
        elif str(snap.get("protocol", "")).startswith("drill-"):
            runner = self.ctx.controller.current_drill()
            if runner is None:
                return
            from station.screen.game import GameMode

            self._followed.add(snap["trial_id"])
            self.ctx.visit.adopt(snap)
            game = GameMode(self.live, self.geometry, ControlledDrill(self.ctx.controller, runner),
                            sounds=self.sounds, on_exit=lambda _game: self.ctx.go_home())
            game.controlled = True
            self.switch(game)

    def tick(self) -> None:
        """One screen frame: handle input, draw, flip, wait for the next frame."""
        assert self.surface is not None, "open() first"
        for event in pygame.event.get():
            self._shown_key = None  # (an exposed window, a key, a touch: draw the next frame)
            if event.type == pygame.QUIT:
                self.quit_requested = True
            elif event.type == pygame.KEYDOWN and event.key == pygame.K_q and event.mod & pygame.KMOD_CTRL:
                self.quit_requested = True
            else:
                self.mode.handle_event(event)
        while self._presses:
            self._presses.popleft()
            if hasattr(self.mode, "press"):
                self.mode.press()
            elif self.ctx is not None:
                self.ctx.press()
        self._follow_trials()
        self.mode.update()
        if self.mode is not self._drawn_mode:  # a mode that redraws only what changed must start afresh
            invalidate = getattr(self.mode, "invalidate", None)
            if callable(invalidate):
                invalidate()
            self._drawn_mode = self.mode
            self._shown_key = None
        # a screen that says what it shows (a menu) is drawn only when that changes; the picture stays up
        frame_key = getattr(self.mode, "frame_key", None)
        key = frame_key(self.surface) if callable(frame_key) else None
        if key is None or key != self._shown_key:
            self.mode.draw(self.surface)
            pygame.display.flip()
        self._shown_key = key
        self.frames_drawn += 1
        self._clock.tick(self.settings.fps)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set() and not self.quit_requested:
            self.tick()

    def close(self, reason: str = "the station was stopped") -> None:
        """Leave a game still being played (stored as stopped, with ``reason``: the station's stop, not
        the patient's), then close the display."""
        leave = getattr(self.mode, "leave", None)
        if callable(leave) and not getattr(self.mode, "closed", True):
            try:
                leave(reason)
            except Exception:  # noqa: BLE001 - closing must go on
                log.exception("leaving the game at close")
        super().close()
