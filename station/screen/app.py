"""The patient screen: a pygame window (full screen on the Pi) showing the live plate.

Screens are mode classes: each reads input events and draws; all state lives
in the station (:class:`station.live.pipeline.LiveStation`). The loop runs on the main
thread, as SDL wants, at a fixed frame rate, and reads the newest live sample
on every frame, so the cursor is at most one screen frame behind the plate.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Callable

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # keep the journal to the station's own lines

import pygame  # noqa: E402

from station.clinic.visit import Visit
from station.core.config import ScreenSettings
from station.core.geometry import PlateGeometry
from station.live.pipeline import LiveStation
from station.screen import view, widgets
from station.screen.flow import ControlledDrill, FlowContext, HomeMode, TrialMode
from station.screen.game import GameMode
from station.screen.live_view import LiveMode
from station.screen.widgets import menu_size
from station.screen.window import Buzzer, Mode, SoundPlayer, Window

log = logging.getLogger(__name__)


#: the flow's cues -> (game sound, buzzer beep)
CUES: dict[str, tuple[str | None, str | None]] = {
    "countdown": ("beat", "countdown"),
    "go": ("hit", "go"),
    "touchdown": ("lost_balance", "alert"),
    "finished": ("round_end", "success"),
}


#: how often the screen looks at the spool's status, in s
STORAGE_PERIOD_S = 2.0
#: a screen whose picture has not changed for this long (s) ticks at :data:`IDLE_FPS` until something changes
IDLE_AFTER_S = 1.0
#: the frame rate of a still screen (a menu nobody touches, the empty plate): a touch is answered within 50 ms
IDLE_FPS = 20

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
                 visit: Visit | None = None, controls: Buzzer | None = None, sounds: SoundPlayer | None = None,
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
        self._storage_cache: tuple[float, str] | None = None
        self._shown_key: object = None
        self._still_ticks = 0  # screen frames in a row with nothing drawn
        self.ctx = None
        if visit is not None:

            self.ctx = FlowContext(live=live, visit=visit, geometry=geometry, switch=self.switch, cue=self.cue,
                                   clock=clock, sounds=sounds, extra_menu=list(extra_menu or []))
            self.mode: Mode = HomeMode(self.ctx)
        else:
            self.mode = LiveMode(live, geometry)

    def use_sounds(self, sounds: SoundPlayer) -> None:
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
            self.sounds.play(sound)
        if self.controls is not None and beep is not None:
            try:
                self.controls.beep(beep)
            except Exception:  # noqa: BLE001 - a buzzer fault must not stop the test
                log.exception("buzzer")

    def _follow_trials(self) -> None:
        """A test or a drill the screen did not start (the web page, the button): show it."""

        if (self.ctx is None or not self.ctx.controller.running or isinstance(self.mode, TrialMode)
                or getattr(self.mode, "controlled", False)):
            return  # (no snapshot taken on the idle screen's frames)
        snap = self.ctx.controller.snapshot()
        if not snap.running or snap.trial_id in self._followed:
            return
        if snap.protocol in ("single-leg", "quiet-stance"):
            self._followed.add(snap.trial_id)
            self.ctx.visit.adopt(snap)
            self.switch(TrialMode(self.ctx))
        elif str(snap.protocol or "").startswith("drill-"):
            runner = self.ctx.controller.current_drill()
            if runner is None:
                return

            self._followed.add(snap.trial_id)
            self.ctx.visit.adopt(snap)
            game = GameMode(self.live, self.geometry, ControlledDrill(self.ctx.controller, runner),
                            sounds=self.sounds, on_exit=lambda _game: self.ctx.go_home())
            game.controlled = True
            self.switch(game)

    def tick(self) -> None:
        """One screen frame: handle input, draw, flip, wait for the next frame."""
        assert self.surface is not None, "open() first"
        pump = getattr(self.live, "pump", None)
        if callable(pump):  # the frames that arrived since the last screen frame (station.live.pipeline)
            pump()
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
        storage = self.storage_line()
        if key is not None:
            key = (key, storage)
        if key is None or key != self._shown_key:
            self.mode.draw(self.surface)
            if storage:
                w, h = self.surface.get_size()
                widgets.text(self.surface, storage, (w - w // 40, h - h // 40), size_px=menu_size(max(14, h // 36)),
                             colour=view.WARN, anchor="bottomright", bold=True)
            pygame.display.flip()
            self._still_ticks = 0
        else:
            self._still_ticks += 1
        self._shown_key = key
        self.frames_drawn += 1
        self._clock.tick(self.frame_rate())

    def frame_rate(self) -> int:
        """The settings' rate, or :data:`IDLE_FPS` once the picture has not changed for :data:`IDLE_AFTER_S`
        (events, frames and trials are then looked at 20 times a second: fewer wake-ups on a still screen)."""
        fps = self.settings.fps
        if self._still_ticks >= IDLE_AFTER_S * fps:
            return min(fps, IDLE_FPS)
        return fps

    def storage_line(self) -> str:
        """"offline: N trials waiting to upload" while the database is unreachable (the station's spool,
        :mod:`station.storage.spool`), else ""; looked at every :data:`STORAGE_PERIOD_S`."""
        spool = getattr(getattr(self.visit, "controller", None), "spool", None)
        if spool is None:
            return ""
        now = time.monotonic()
        if self._storage_cache is None or now - self._storage_cache[0] >= STORAGE_PERIOD_S:
            try:
                status = spool.status()
                line = status["message"] if status["online"] is False else ""
            except Exception:  # the screen must never stop for a status line
                log.exception("cannot read the spool's status")
                line = ""
            self._storage_cache = (now, line)
        return self._storage_cache[1]

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
