"""The biofeedback game on the patient screen: one drill, drawn large, with the COP as the cursor.

:class:`GameMode` is a screen mode (:class:`station.screen.window.Mode`): it
reads input, feeds the drill every force frame and draws the drill's
:class:`~station.drills.view.DrillView`. All game state (targets, score,
streaks, rounds, timing) lives in the drill (:mod:`station.drills`), which is
pure and driven by the frames' own timestamps; this module only draws.

Cursor latency
--------------
The cursor is drawn from the NEWEST frame the live station has
(:meth:`LiveStation.latest`), read after everything else is drawn, just before
the flip, and unfiltered: the plate's COP noise is a few hundredths of a
millimetre, so a smoothing filter (the display's 8 Hz low-pass delays it by
about 27 ms) would only add lag. The cursor therefore trails the plate by the
age of the newest frame (at most one frame interval, 12.5 ms at 80 Hz) plus
the drawing time after the read; and when the next frame is due within a
few ms, the update waits for it (late latching), so that the age of the
frame drawn stays below about 9 ms. :attr:`GameMode.drawn_sample` is the live
sample the last cursor was drawn from (its ``received_s`` is the frame's
arrival in this process), for latency measurements.

Input
-----
Keyboard: Enter or Space selects (continue, back to the menu when done), the
arrow keys move between the buttons of the summary card, Esc leaves the game.
On a simulated plate with nobody playing for it (no autoplay), the arrow keys
lean the simulated person during the game, for a demonstration by hand.
A physical button (gpiozero) calls :meth:`GameMode.press` (from any thread):
it selects, like Enter. A touch screen: tap the on-screen buttons (FINGERDOWN;
mouse clicks work the same, a mouse is never needed).
"""

from __future__ import annotations

import collections
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import pygame  # noqa: E402

from station.core.geometry import PlateGeometry  # noqa: E402
from station.drills.base import MAX_ROUNDS  # noqa: E402  (the most rounds a drill plays: a timed drill asks for that many)
from station.drills.view import DrillView, Metronome, ShareBars, SummaryLine, Target, Zone  # noqa: E402
from station.screen import view  # noqa: E402
from station.screen.sounds import Sounds  # noqa: E402
from station.screen.widgets import (  # noqa: E402
    banner,
    box,
    button,
    disc,
    face,
    fit_lines,
    fit_size,
    ring,
    text,
    tick_mark,
)
from station.screen.window import Mode  # noqa: E402

# -- colours (on view.BACKGROUND; all pass 4.5:1 contrast for the text ones) -------------------------------
GOOD = (96, 214, 132)
AMBER = (255, 170, 50)
ACTIVE = (255, 214, 64)
PENDING = (150, 170, 190)
MISSED = (84, 100, 122)
PACER = (120, 200, 255)
CURSOR = view.COP
CURSOR_RIM = (255, 255, 255)
SHADE = (6, 12, 22)

#: how long a message from the drill stays on the screen, and a streak flash, in s of plate time
TOAST_S = 1.8
FLASH_S = 0.9
BURST_S = 0.5
#: late latching (see GameMode._fresh_frames): the longest wait for a plate frame about to arrive, in s
FRESH_WAIT_S = 0.004
#: event cues shown as a message (the beat is only heard)
TOAST_CUES = {"hit": GOOD, "miss": AMBER, "lost_balance": AMBER, "streak": ACTIVE, "round_end": view.TEXT}

def format_clock(seconds: float) -> str:
    s = max(0, math.ceil(seconds - 1e-9))
    return f"{s // 60}:{s % 60:02d}"


def round_label(v: DrillView, *, of: str = "/") -> str:
    """"2/3"; just "2" for a drill that plays rounds until its time is up (as many as it may)."""
    current = min(v.round_index + 1, v.rounds)
    return f"{current}" if v.rounds >= MAX_ROUNDS else f"{current}{of}{v.rounds}"


def event_pos(event: pygame.event.Event, size: tuple[int, int]) -> tuple[int, int] | None:
    """Where a tap or a click landed, in pixels; None for other events.

    A finger gives normalised coordinates; SDL also turns each tap into a mouse
    click (``event.touch`` set), which is ignored so that a tap counts once.
    """
    if event.type == pygame.FINGERDOWN:
        return (round(event.x * size[0]), round(event.y * size[1]))
    if event.type == pygame.MOUSEBUTTONDOWN and getattr(event, "button", 1) == 1 and not getattr(event, "touch", False):
        return tuple(event.pos)
    return None


SELECT_KEYS = (pygame.K_RETURN, pygame.K_KP_ENTER, pygame.K_SPACE)
#: arrow key -> lean step (x, y) for steering the simulated person by hand
STEER_KEYS = {pygame.K_LEFT: (-1, 0), pygame.K_RIGHT: (1, 0), pygame.K_UP: (0, 1), pygame.K_DOWN: (0, -1)}
STEER_STEP_MM = 10.0
BACK_KEYS = (pygame.K_ESCAPE, pygame.K_BACKSPACE)


# -- what the patient is told at the end ---------------------------------------------------------------

#: the drills' summary lines a patient reads (plain counts and seconds); the clinical measures (reaction
#: time, directional control, tempo error, sway size, limits in mm...) are on the therapist's page
PATIENT_SUMMARY = ("Targets hit", "Time in the box", "Left the box", "Good cycles", "Time on target")


def patient_summary(v: DrillView) -> list[SummaryLine]:
    """The end-of-round card for the patient: what they did, the best streak, the level reached."""
    lines = [line for line in v.summary if line.label in PATIENT_SUMMARY]
    if v.best_streak >= 2:
        lines.append(SummaryLine("Best streak", f"{v.best_streak} in a row", True))
    lines.append(SummaryLine("Level reached", str(v.level)))
    return lines


# -- layout -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Where things go on a screen of ``size``; fonts scale with the height (readable from 2 m)."""

    size: tuple[int, int]
    header: pygame.Rect
    plate: pygame.Rect
    panel: pygame.Rect
    bars: pygame.Rect | None
    pad: int
    huge: int
    big: int
    mid: int
    small: int

    @classmethod
    def for_size(cls, size: tuple[int, int], *, with_bars: bool = False) -> Layout:
        w, h = size
        pad = max(8, w // 64)
        panel_w = int(w * 0.27)
        panel = pygame.Rect(w - pad - panel_w, pad, panel_w, h - 2 * pad)
        left_w = panel.left - 2 * pad
        header = pygame.Rect(pad, pad, left_w, int(h * 0.19))
        body = pygame.Rect(pad, header.bottom + pad // 2, left_w, h - header.bottom - pad - pad // 2)
        bars = None
        if with_bars:
            plate_w = int(body.width * 0.58)
            bars = pygame.Rect(body.left + plate_w + pad, body.top, body.width - plate_w - pad, body.height)
            body = pygame.Rect(body.left, body.top, plate_w, body.height)
        return cls(size=size, header=header, plate=body, panel=panel, bars=bars, pad=pad,
                   huge=max(36, h // 7), big=max(26, h // 13), mid=max(18, h // 22), small=max(14, h // 32))


# -- the mode ---------------------------------------------------------------------------------------------


class GameMode(Mode):
    """One drill on the patient screen.

    Parameters
    ----------
    live : LiveStation
        Where the frames come from (``latest()``, ``subscribe()``, ``command()``, ``synthetic``);
        a live station fed by hand (``ingest``) works the same.
    geometry : PlateGeometry
        The plate, for drawing it and placing things on it.
    drill : object
        A drill from :func:`station.drills.make_drill`: ``update(frame)``, ``view()``,
        ``finished``, ``abort(reason)``.
    sounds : Sounds, optional
        The cues' sounds (default: a new :class:`Sounds`; silent without a sound card).
    player : object, optional
        An :class:`station.drills.autoplay.AutoPlayer`: the simulated person plays
        (its commands go to ``live.command``). Only for a simulated plate.
    on_exit : callable, optional
        Called with this mode when the patient leaves the game (Esc, or select
        once it is over): typically switches the screen back to the menu.
    on_again : callable, optional
        Called with this mode for "Play again" on the final card (a new drill of the same kind).
    subscribe_maxlen : int
        Frames the game's subscription keeps if the screen stalls (about a minute at 80 Hz).
    fresh_wait_s : float
        Late latching: wait up to this long in :meth:`update` for a plate frame about to arrive, so
        that the cursor is drawn from a fresh frame (0 turns it off).
    """

    def __init__(self, live: Any, geometry: PlateGeometry, drill: Any, *, sounds: Sounds | None = None,
                 player: Any = None, on_exit: Callable[[GameMode], None] | None = None,
                 on_again: Callable[[GameMode], None] | None = None, subscribe_maxlen: int = 80 * 60,
                 fresh_wait_s: float = FRESH_WAIT_S) -> None:
        self.live = live
        self.geometry = geometry
        self.drill = drill
        self.sounds = sounds if sounds is not None else Sounds()
        self.player = player
        self.on_exit = on_exit
        self.on_again = on_again
        self.fresh_wait_s = fresh_wait_s
        feed_info = getattr(getattr(live, "feed", None), "info", None) or {}
        self._period_s = 1.0 / float(feed_info.get("nominal_rate_hz") or 80.0)
        self.sub = live.subscribe(maxlen=subscribe_maxlen)
        self.view: DrillView = drill.view()
        self.events: collections.deque[Any] = collections.deque(maxlen=200)
        self.cues: collections.Counter[str] = collections.Counter()
        self.frames_fed = 0
        self.closed = False
        #: the live sample the last cursor was drawn from (None when no cursor was drawn)
        self.drawn_sample: Any = None
        self.cursor_px: tuple[int, int] | None = None
        self._presses: collections.deque[str] = collections.deque()
        self._lean_mm = (0.0, 0.0)  # where the arrow keys lean the simulated person
        self._t_s = 0.0                    # plate time of the newest frame fed
        self._last_cop: tuple[float, float] = (math.nan, math.nan)
        self._toast: tuple[str, tuple[int, int, int], float] | None = None
        self._flash_until = -math.inf
        self._bursts: list[tuple[float, float, float, float]] = []  # x_mm, y_mm, radius_mm, t0
        self._focus = 0
        self._buttons: list[tuple[pygame.Rect, str]] = []
        self._layout: Layout | None = None
        self._plate_view: view.PlateView | None = None
        self._static: tuple[tuple[int, int], bool, pygame.Surface] | None = None
        #: the picture without the moving things, the keys of what it shows, the surface it was last put on,
        #: where the moving things were drawn, and the buttons it has (see :meth:`draw`)
        self._scene: pygame.Surface | None = None
        self._scene_keys: tuple[tuple, tuple, tuple] | None = None
        self._shown_on: pygame.Surface | None = None
        self._moving: list[pygame.Rect] = []
        self._buttons_kept: list[tuple[pygame.Rect, str]] = []
        self._trial_started = False
        if hasattr(live, "trial_started"):
            live.trial_started()  # no automatic re-zero while a drill runs
            self._trial_started = True

    # -- life cycle ---------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop listening to the plate (the mode is being left). Idempotent."""
        if self.closed:
            return
        self.closed = True
        self.live.unsubscribe(self.sub)
        if self._trial_started:
            self.live.trial_ended()

    @property
    def over(self) -> bool:
        return self.view.state in ("done", "aborted")

    # -- input --------------------------------------------------------------------------------------------
    def press(self) -> None:
        """The physical button was pressed: select (thread-safe; acted on at the next frame)."""
        self._presses.append("select")

    def handle_event(self, event: pygame.event.Event) -> None:
        if event.type == pygame.KEYDOWN:
            if event.key in SELECT_KEYS:
                self._select()
            elif event.key in BACK_KEYS:
                self.leave()
            elif event.key in STEER_KEYS and self._steerable():
                dx, dy = STEER_KEYS[event.key]
                self._steer(self._lean_mm[0] + dx * STEER_STEP_MM, self._lean_mm[1] + dy * STEER_STEP_MM)
            elif event.key in (pygame.K_LEFT, pygame.K_UP):
                self._focus -= 1
            elif event.key in (pygame.K_RIGHT, pygame.K_DOWN, pygame.K_TAB):
                self._focus += 1
            return
        pos = event_pos(event, self._layout.size if self._layout else (1, 1))
        if pos is not None:
            for rect, action in self._buttons:
                if rect.collidepoint(pos):
                    self._act(action)
                    break

    def _steerable(self) -> bool:
        """On a simulated plate with nobody playing for it, the arrow keys lean the simulated person
        (a demonstration by hand); never on a real plate, nor on the cards (there they move the focus)."""
        return (self.player is None and bool(getattr(self.live, "synthetic", False))
                and self.view.state in ("waiting", "ready", "running"))

    def _steer(self, x_mm: float, y_mm: float) -> None:
        half_ml, half_ap = self.geometry.ml_mm / 2, self.geometry.ap_mm / 2
        self._lean_mm = (max(-half_ml, min(half_ml, x_mm)), max(-half_ap, min(half_ap, y_mm)))
        self.live.command("lean_to", x_mm=self._lean_mm[0], y_mm=self._lean_mm[1])

    def _actions(self) -> list[tuple[str, str]]:
        """The buttons of the screen now, as (action, label)."""
        if self.over:
            actions = [("menu", "Menu")]
            if self.on_again is not None:
                actions.append(("again", "Play again"))
            return actions
        if self.view.state == "round_summary" and hasattr(self.drill, "next_round"):
            return [("next", "Next round"), ("menu", "Stop")]
        return [("menu", "Stop")]

    def _select(self) -> None:
        """Enter, Space or the button: the focused button of the card; nothing while a round runs, nor on a
        summary that moves on by itself (a press meant for "next" must not stop the drill)."""
        if self.over or (self.view.state == "round_summary" and hasattr(self.drill, "next_round")):
            actions = self._actions()
            self._act(actions[self._focus % len(actions)][0])

    def _act(self, action: str) -> None:
        if action == "menu":
            self.leave()
        elif action == "again" and self.on_again is not None:
            self.close()
            self.on_again(self)
        elif action == "next" and hasattr(self.drill, "next_round"):
            self.drill.next_round()
            self.view = self.drill.view()

    def leave(self, reason: str = "stopped on the screen") -> None:
        """Leave the game: a drill still running is aborted (stored with ``reason``), then :attr:`on_exit` is called."""
        if not self.drill.finished:
            self.drill.abort(reason)
            self.view = self.drill.view()
        self.close()
        if self.on_exit is not None:
            self.on_exit(self)

    # -- the frame's work ---------------------------------------------------------------------------------
    def update(self) -> None:
        """Feed the drill every frame that arrived since the last screen frame; play the cues."""
        while self._presses:
            self._presses.popleft()
            self._select()
        if self.closed:
            return
        frames = self.sub.get_all()
        frames += self._fresh_frames()
        self.feed(frames)
        if self.player is not None and not self.drill.finished:
            for name, params in self.player.commands(self.view, t_s=self._t_s, cop_ml_mm=self._last_cop[0],
                                                     cop_ap_mm=self._last_cop[1]):
                self.live.command(name, **params)

    def _fresh_frames(self) -> list[Any]:
        """Late latching: when the next plate frame is due within ``fresh_wait_s``, wait for it.

        The cursor shows the newest frame; without this its age when drawn is
        anything up to a whole plate period (12.5 ms at 80 Hz). Waiting a few
        ms for a frame about to arrive bounds the age at about ``period -
        fresh_wait_s``; the screen's clock absorbs the wait in its own sleep, so
        the frame rate is unchanged. When the next frame is due comes from the
        newest frame's own time stamp: the live sources stamp their frames on
        this computer's monotonic clock, in the acquisition process (a replayed
        recording does not: its stamps are never "due soon", so it never waits).
        """
        if self.fresh_wait_s <= 0:
            return []
        sample = self.live.latest()
        if sample is None:
            return []
        due_in = sample.frame.t_s + self._period_s - time.monotonic()
        if not 0 < due_in <= self.fresh_wait_s:
            return []  # fresh enough, or the plate is late (stalled, ended): do not wait
        wait_s = min(due_in + 0.002, self.fresh_wait_s + 0.001)
        pump = getattr(self.live, "pump", None)
        if callable(pump):  # the screen pumps the frames itself (station.live.pipeline): wait for the pipe
            pump(timeout_s=wait_s)
            return self.sub.get_all()
        return self.sub.get_all(timeout_s=wait_s)

    def feed(self, frames: list[Any]) -> None:
        """Hand ``frames`` (force frames, oldest first) to the drill; refresh the view."""
        if not frames:
            return
        before = self.view
        for frame in frames:
            for event in self.drill.update(frame):
                self._on_event(event)
        last = frames[-1]
        self._t_s = last.t_s
        self._last_cop = (last.cop_ml_mm, last.cop_ap_mm)
        self.frames_fed += len(frames)
        self.view = self.drill.view()
        self._note_hits(before, self.view)

    def _on_event(self, event: Any) -> None:
        self.events.append(event)
        cue = getattr(event, "cue", None)
        if cue:
            self.cues[cue] += 1
            self.sounds.play(cue)
        if cue == "streak":
            self._flash_until = event.t_s + FLASH_S
        message = getattr(event, "message", "")
        if message and cue in TOAST_CUES:
            self._toast = (message, TOAST_CUES[cue], event.t_s + TOAST_S)

    def _note_hits(self, before: DrillView, after: DrillView) -> None:
        """A target that has just been hit gets a short burst of light."""
        if len(before.targets) != len(after.targets):
            return
        for old, new in zip(before.targets, after.targets):
            if new.state == "hit" and old.state != "hit":
                self._bursts.append((new.x_mm, new.y_mm, new.radius_mm, self._t_s))

    # -- drawing ------------------------------------------------------------------------------------------
    def layout(self, surface: pygame.Surface) -> Layout:
        with_bars = self.view.bars is not None
        size = surface.get_size()
        if self._layout is None or self._layout.size != size or (self._layout.bars is not None) != with_bars:
            self._layout = Layout.for_size(size, with_bars=with_bars)
            self._plate_view = view.PlateView(self.geometry, self._layout.plate, margin_mm=30.0)
            self._static = None
            self._scene_keys = None
        return self._layout

    def plate_view(self, surface: pygame.Surface) -> view.PlateView:
        self.layout(surface)
        assert self._plate_view is not None
        return self._plate_view

    def _static_layer(self, surface: pygame.Surface, lay: Layout, pv: view.PlateView) -> pygame.Surface:
        """Background, panel and plate: drawn once per screen size, then blitted."""
        key = (lay.size, lay.bars is not None)
        if self._static is not None and self._static[:2] == key:
            return self._static[2]
        layer = pygame.Surface(lay.size)
        if pygame.display.get_surface() is not None:
            layer = layer.convert()
        layer.fill(view.BACKGROUND)
        pv.draw_plate(layer)
        # dim the plate a little: the targets and the cursor are what the eye should find
        layer.blit(box(lay.plate.size, view.BACKGROUND, alpha=120, radius=0), lay.plate.topleft)
        pygame.draw.rect(layer, view.PANEL, lay.panel, border_radius=max(10, lay.pad))
        if lay.bars is not None:
            pygame.draw.rect(layer, view.PANEL, lay.bars, border_radius=max(10, lay.pad))
        self._static = (*key, layer)
        return layer

    def invalidate(self) -> None:
        """Something else drew on the screen: the next :meth:`draw` redraws all of it."""
        self._shown_on = None

    def _keys(self, lay: Layout, v: DrillView) -> tuple[tuple, tuple, tuple]:
        """What the header, the panel and the rest of the picture show now (a change of one redraws it).

        The things that move every frame (the cursor, the hold ring, the bursts of a hit, the metronome's
        pacer) are not in the keys: they are drawn over the picture every frame (:meth:`_draw_moving`).
        """
        card = self._card(v)
        toast = self._active_toast()
        message, colour = (toast if toast is not None and not card else (v.instruction, view.TEXT))
        header = (message, colour)
        flash = self._t_s < self._flash_until
        bar_px = -1
        if v.duration_s > 0:
            inner_w = lay.panel.inflate(-2 * lay.pad, -2 * lay.pad).width
            bar_px = round(inner_w * max(0.0, min(1.0, v.elapsed_s / v.duration_s)))
        panel = (v.score, v.streak, v.best_streak, v.level, round_label(v), format_clock(v.duration_s - v.elapsed_s),
                 bar_px, flash, v.feedback, v.cursor_visible, v.state in ("round_summary", "done", "aborted"))
        live = v.cursor_visible or v.state != "running"
        bars = None
        if v.bars is not None and lay.bars is not None:
            b = v.bars
            height = (lay.bars.bottom - lay.big - 2 * lay.pad) - (lay.bars.top + lay.mid + 2 * lay.pad)
            shown = tuple((f"{pct:.0f}", round(height * max(0.0, min(100.0, pct)) / 100))
                          for pct in (b.left_pct, 100.0 - b.left_pct))  # as _draw_bars draws them
            bars = (shown, b.target_left_pct, b.tolerance_pct, b.within)
        rest = (card, v.state, v.title, live, v.zone, None if v.metronome is None else
                (v.metronome.axis, v.metronome.amplitude_mm),
                tuple((t.x_mm, t.y_mm, t.radius_mm, t.state) for t in v.targets), bars)
        if card:
            actions = self._actions()
            rest += (v.score, v.round_index, v.rounds, v.summary, v.best_streak, v.level, tuple(actions),
                     self._focus % len(actions), tuple(self._bursts), self._t_s if self._bursts else None)
        return header, panel, rest

    def draw(self, surface: pygame.Surface) -> None:
        """Draw the game. What has not changed since the last frame is not drawn again: the picture without
        the moving things is kept (redrawn in parts: the header, the panel, or all of it, when what they
        show changes); each frame puts back the picture where the moving things were and draws them anew."""
        lay = self.layout(surface)
        pv = self.plate_view(surface)
        v = self.view
        static = self._static_layer(surface, lay, pv)
        header_key, panel_key, rest_key = self._keys(lay, v)
        scene = self._scene
        fresh = (self._shown_on is not surface or scene is None or scene.get_size() != lay.size
                 or self._scene_keys is None)
        if scene is None or scene.get_size() != lay.size:
            scene = pygame.Surface(lay.size)
            if pygame.display.get_surface() is not None:
                scene = scene.convert()
            self._scene = scene
        old = self._scene_keys or (None, None, None)
        if fresh or rest_key != old[2]:
            scene.blit(static, (0, 0))
            self._buttons = []
            self._draw_scene(scene, lay, pv, v)
            self._buttons_kept = list(self._buttons)
            surface.blit(scene, (0, 0))
            self._moving = []
        else:
            for key, old_key, rect, draw in ((header_key, old[0], lay.header, self._draw_header),
                                             (panel_key, old[1], lay.panel, self._draw_panel)):
                if key != old_key:
                    scene.blit(static, rect, rect)
                    scene.set_clip(rect)
                    self._buttons = []
                    draw(scene, lay, v)
                    scene.set_clip(None)
                    if draw == self._draw_panel:
                        self._buttons_kept = list(self._buttons)
                    surface.blit(scene, rect, rect)
            for rect in self._moving:  # put the picture back where the moving things were
                surface.blit(scene, rect, rect)
        self._buttons = list(self._buttons_kept)
        self._scene_keys = (header_key, panel_key, rest_key)
        self._shown_on = surface
        self._moving = [r for r in self._draw_moving(surface, lay, pv, v) if r.width and r.height]

    def _draw_scene(self, surface: pygame.Surface, lay: Layout, pv: view.PlateView, v: DrillView) -> None:
        """Everything but the moving things (see :meth:`_draw_moving`), on the static layer."""
        self._draw_header(surface, lay, v)
        live = v.cursor_visible or v.state != "running"  # faded feedback hides what gives the COP away
        if v.zone is not None:
            self._draw_zone(surface, pv, lay, v.zone, live=live)
        if v.metronome is not None:
            self._draw_metronome_track(surface, pv, v.metronome)
        for target in v.targets:
            self._draw_target(surface, pv, lay, target)
        card = self._card(v)
        if card:
            self._draw_bursts(surface, pv)
        if v.bars is not None and lay.bars is not None:
            self._draw_bars(surface, lay, v.bars, live=live)
        self._draw_panel(surface, lay, v)
        if not card:
            self._draw_messages(surface, lay, v)
        if card:
            self._draw_card(surface, lay, v)

    def _draw_moving(self, surface: pygame.Surface, lay: Layout, pv: view.PlateView,
                     v: DrillView) -> list[pygame.Rect]:
        """The pacer, the bursts, the cursor (the newest frame, read as late as possible) and the hold ring,
        over the picture; returns where they were drawn."""
        self.drawn_sample = None
        self.cursor_px = None
        if self._card(v):
            return []
        rects: list[pygame.Rect] = []
        if v.metronome is not None:
            rects += self._draw_pacer(surface, pv, lay, v.metronome)
        rects += self._draw_bursts(surface, pv)
        if v.cursor_visible:
            rects += self._draw_cursor(surface, pv, lay)
        rects += self._draw_hold_rings(surface, pv, lay, v)
        return rects

    def _draw_header(self, surface: pygame.Surface, lay: Layout, v: DrillView) -> None:
        x, y = lay.header.left, lay.header.top
        title = v.title
        if getattr(self.live, "synthetic", False):
            title += "   ·   simulated plate" + ("   ·   autoplay" if self.player is not None else "")
        r = text(surface, title, (x, y), size_px=lay.small, colour=view.MUTED, bold=True)
        y = r.bottom + lay.pad // 3
        # one message at a time, in one place: a moment's feedback ("You reached the target!") takes the
        # instruction's line for a moment, in its colour, then the instruction comes back; nothing covers the plate
        message, colour = v.instruction, view.TEXT
        toast = self._active_toast()
        if toast is not None and not self._card(v):
            message, colour = toast
        size, lines = fit_lines(message, size_px=lay.big, min_px=lay.mid, width_px=lay.header.width,
                                height_px=lay.header.bottom - y, max_lines=2, bold=True)
        step = face(size, True).get_linesize()
        for line in lines:
            text(surface, line, (x, y), size_px=size, bold=True, colour=colour)
            y += step

    @staticmethod
    def _card(v: DrillView) -> bool:
        return v.state in ("round_summary", "done", "aborted")

    def _active_toast(self) -> tuple[str, tuple[int, int, int]] | None:
        """The feedback shown now, (message, colour), or None once its moment has passed."""
        if self._toast is None:
            return None
        message, colour, until = self._toast
        if self._t_s >= until:
            self._toast = None
            return None
        return message, colour

    def _draw_target(self, surface: pygame.Surface, pv: view.PlateView, lay: Layout, t: Target) -> None:
        s = pv.scale_px_per_mm
        centre = pv.to_px(t.x_mm, t.y_mm)
        r = max(14, round(t.radius_mm * s))
        edge = max(3, r // 9)
        if t.state == "active":
            disc(surface, ACTIVE, centre, r, alpha=190)
            pygame.draw.circle(surface, ACTIVE, centre, r, width=edge + 2)
        elif t.state == "hit":
            rh = max(12, round(r * 0.6))
            pygame.draw.circle(surface, GOOD, centre, rh)
            tick_mark(surface, view.BACKGROUND, centre, rh)
        elif t.state == "missed":
            d = max(6, round(r * 0.3))
            pygame.draw.line(surface, MISSED, (centre[0] - d, centre[1] - d), (centre[0] + d, centre[1] + d), edge)
            pygame.draw.line(surface, MISSED, (centre[0] - d, centre[1] + d), (centre[0] + d, centre[1] - d), edge)
        else:  # pending: a faint mark where it will come
            pygame.draw.circle(surface, MISSED, centre, max(5, r // 4))

    def _draw_hold_rings(self, surface: pygame.Surface, pv: view.PlateView, lay: Layout,
                         v: DrillView) -> list[pygame.Rect]:
        """The hold progress of the active target: a green ring filling clockwise, outside the cursor
        (drawn after it: the cursor sits in the target while the ring fills)."""
        s = pv.scale_px_per_mm
        cr = self._cursor_radius(lay)
        outer_cursor = cr + max(3, cr // 4) + 2
        rects = []
        for t in v.targets:
            if t.state == "active" and t.hold_progress > 0:
                r = max(14, round(t.radius_mm * s))
                inner = max(r + max(3, r // 9) + 1, outer_cursor + 2)
                rects.append(ring(surface, GOOD, pv.to_px(t.x_mm, t.y_mm), inner + max(6, r // 4), inner,
                                  fraction=t.hold_progress))
        return rects

    def _draw_bursts(self, surface: pygame.Surface, pv: view.PlateView) -> list[pygame.Rect]:
        s = pv.scale_px_per_mm
        alive = []
        rects = []
        for x_mm, y_mm, r_mm, t0 in self._bursts:
            age = self._t_s - t0
            if age < BURST_S:
                alive.append((x_mm, y_mm, r_mm, t0))
                r = round(r_mm * s * (1.0 + 0.8 * age / BURST_S))
                rects.append(pygame.draw.circle(surface, GOOD, pv.to_px(x_mm, y_mm), r,
                                                width=max(2, round(6 * (1 - age / BURST_S)))))
        self._bursts = alive
        return rects

    def _draw_zone(self, surface: pygame.Surface, pv: view.PlateView, lay: Layout, z: Zone,
                   *, live: bool = True) -> None:
        """The box; ``live`` False (faded feedback, the dot hidden) draws it without saying in or out."""
        left, top = pv.to_px(z.x_mm - z.half_width_mm, z.y_mm + z.half_height_mm)
        right, bottom = pv.to_px(z.x_mm + z.half_width_mm, z.y_mm - z.half_height_mm)
        rect = pygame.Rect(left, top, right - left, bottom - top)
        colour = (GOOD if z.inside else AMBER) if live else PENDING
        radius = max(6, min(rect.size) // 8)
        surface.blit(box(rect.size, colour, alpha=60, radius=radius), rect.topleft)
        pygame.draw.rect(surface, colour, rect, width=max(4, lay.pad // 3), border_radius=radius)
        label = ("in the box" if z.inside else "back to the box") if live else "keep still in the box"
        size = fit_size(label, size_px=lay.mid, width_px=lay.plate.width // 2, bold=True)
        if rect.height > 3 * size:
            text(surface, label, (rect.centerx, rect.top + lay.pad // 2), size_px=size, colour=colour,
                 anchor="midtop", bold=True)
        else:
            text(surface, label, (rect.centerx, rect.top - lay.pad // 3), size_px=size, colour=colour,
                 anchor="midbottom", bold=True)

    def _draw_metronome_track(self, surface: pygame.Surface, pv: view.PlateView, m: Metronome) -> None:
        """The metronome's track (its pacer moves: :meth:`_draw_pacer`)."""
        s = pv.scale_px_per_mm
        if m.axis == "ml":
            a, b = pv.to_px(-m.amplitude_mm, 0.0), pv.to_px(m.amplitude_mm, 0.0)
        else:
            a, b = pv.to_px(0.0, -m.amplitude_mm), pv.to_px(0.0, m.amplitude_mm)
        width = max(6, round(10 * s))
        pygame.draw.line(surface, MISSED, a, b, width)
        for end in (a, b):
            pygame.draw.circle(surface, PENDING, end, width)

    def _draw_pacer(self, surface: pygame.Surface, pv: view.PlateView, lay: Layout, m: Metronome) -> list[pygame.Rect]:
        here = pv.to_px(m.pace_mm, 0.0) if m.axis == "ml" else pv.to_px(0.0, m.pace_mm)
        r = self._cursor_radius(lay) * 2
        disc(surface, PACER, here, r, alpha=60)
        return [pygame.draw.circle(surface, PACER, here, r, width=max(4, r // 6)).inflate(2, 2)]

    def _draw_bars(self, surface: pygame.Surface, lay: Layout, b: ShareBars, *, live: bool = True) -> None:
        """The two bars; ``live`` False (faded feedback) shows the targets but not the share now."""
        area = lay.bars
        assert area is not None
        label_h = lay.mid + lay.pad
        top = area.top + label_h + lay.pad
        bottom = area.bottom - lay.big - 2 * lay.pad
        height = bottom - top
        bar_w = area.width // 3
        colour = GOOD if b.within else AMBER
        for i, (side, pct, target) in enumerate((("Left", b.left_pct, b.target_left_pct),
                                                 ("Right", 100.0 - b.left_pct, 100.0 - b.target_left_pct))):
            cx = area.left + area.width // 4 + i * area.width // 2
            frame = pygame.Rect(cx - bar_w // 2, top, bar_w, height)
            pygame.draw.rect(surface, view.PLATE, frame, border_radius=lay.pad // 2)
            # tolerance band and target line
            hi = top + round(height * (1 - min(100.0, target + b.tolerance_pct) / 100))
            lo = top + round(height * (1 - max(0.0, target - b.tolerance_pct) / 100))
            band = pygame.Rect(frame.left, hi, bar_w, max(2, lo - hi))
            surface.blit(box(band.size, GOOD, alpha=70, radius=0), band.topleft)
            fill_h = round(height * max(0.0, min(100.0, pct)) / 100) if live else 0
            fill = pygame.Rect(frame.left + bar_w // 6, bottom - fill_h, bar_w - bar_w // 3, fill_h)
            if fill_h > 0:
                pygame.draw.rect(surface, colour, fill, border_radius=lay.pad // 3)
            ty = top + round(height * (1 - target / 100))
            pygame.draw.line(surface, view.TEXT, (frame.left - lay.pad // 2, ty), (frame.right + lay.pad // 2, ty),
                             max(3, lay.pad // 4))
            text(surface, side, (cx, area.top + lay.pad), size_px=lay.mid, colour=view.MUTED, anchor="midtop",
                 bold=True)
            text(surface, f"{pct:.0f}%" if live else "?", (cx, bottom + lay.pad), size_px=lay.big,
                 colour=colour if live else view.MUTED, anchor="midtop", bold=True)

    def _draw_panel(self, surface: pygame.Surface, lay: Layout, v: DrillView) -> None:
        """Score, streak, level and round, time left; blocks spread over the panel's height."""
        inner = lay.panel.inflate(-2 * lay.pad, -2 * lay.pad)
        x = inner.left
        small_h, big_h, huge_h = (face(n, True).get_linesize() for n in (lay.small, lay.big, lay.huge))
        stop_h = max(44, int(lay.mid * 2.2))
        bar_h = max(8, lay.pad // 2)
        blocks = [small_h + huge_h, small_h + big_h, small_h + big_h, small_h + big_h + bar_h + lay.pad // 2]
        note = ""
        if v.feedback != "continuous" or not v.cursor_visible:
            note = "dot hidden: feel it" if not v.cursor_visible else f"feedback: {v.feedback}"
            blocks.append(small_h)
        room = inner.height - stop_h - sum(blocks)
        gap = max(lay.pad // 2, room // len(blocks))
        y = inner.top

        text(surface, "SCORE", (x, y), size_px=lay.small, colour=view.MUTED, bold=True)
        score = f"{v.score}"
        text(surface, score, (x, y + small_h - lay.huge // 12), bold=True,
             size_px=fit_size(score, size_px=lay.huge, width_px=inner.width, bold=True))
        y += blocks[0] + gap

        # streak, flashing on a streak bonus
        flash = self._t_s < self._flash_until
        if flash:
            box = pygame.Rect(x - lay.pad // 2, y - lay.pad // 3, inner.width + lay.pad, blocks[1] + lay.pad // 2)
            pygame.draw.rect(surface, ACTIVE, box, border_radius=lay.pad)
        fg = view.BACKGROUND if flash else view.MUTED
        text(surface, "STREAK", (x, y), size_px=lay.small, colour=fg, bold=True)
        text(surface, f"best {v.best_streak}", (inner.right, y), size_px=lay.small, colour=fg, anchor="topright")
        colour = view.BACKGROUND if flash else (ACTIVE if v.streak >= 3 else view.TEXT)
        text(surface, f"x{v.streak}", (x, y + small_h), size_px=lay.big, colour=colour, bold=True)
        y += blocks[1] + gap

        # level and round, side by side
        half = inner.width // 2
        text(surface, "LEVEL", (x, y), size_px=lay.small, colour=view.MUTED, bold=True)
        text(surface, f"{v.level}", (x, y + small_h), size_px=lay.big, bold=True)
        text(surface, "ROUND", (x + half, y), size_px=lay.small, colour=view.MUTED, bold=True)
        text(surface, round_label(v), (x + half, y + small_h), size_px=lay.big, bold=True)
        y += blocks[2] + gap

        # time left
        text(surface, "TIME LEFT", (x, y), size_px=lay.small, colour=view.MUTED, bold=True)
        text(surface, format_clock(v.duration_s - v.elapsed_s), (x, y + small_h), size_px=lay.big, bold=True)
        bar = pygame.Rect(x, y + small_h + big_h + lay.pad // 4, inner.width, bar_h)
        pygame.draw.rect(surface, view.PLATE, bar, border_radius=bar.height // 2)
        if v.duration_s > 0:
            done = max(0.0, min(1.0, v.elapsed_s / v.duration_s))
            if done > 0:
                pygame.draw.rect(surface, PACER, (bar.left, bar.top, max(bar.height, round(bar.width * done)),
                                                  bar.height), border_radius=bar.height // 2)
        y += blocks[3] + gap

        if note:
            text(surface, note, (x, y), size_px=fit_size(note, size_px=lay.small, width_px=inner.width, bold=True),
                 colour=PACER, bold=True)

        # a touch button to stop (Esc on the keyboard)
        if v.state not in ("round_summary", "done", "aborted"):
            rect = pygame.Rect(0, 0, inner.width, stop_h)
            rect.midbottom = (inner.centerx, inner.bottom)
            button(surface, "Stop", rect, size_px=lay.mid, selected=False, colour=view.MUTED, shape="pill")
            self._buttons.append((rect, "menu"))

    def _draw_messages(self, surface: pygame.Surface, lay: Layout, v: DrillView) -> None:
        centre = (lay.plate.centerx, lay.plate.centery)
        if v.state == "waiting":
            banner(surface, "Step onto the plate", centre, size_px=lay.big)
        elif v.state == "ready":
            banner(surface, "Get ready", centre, size_px=lay.big, colour=ACTIVE)

    def _cursor_radius(self, lay: Layout) -> int:
        """Big (a 30th of the screen's height), but smaller than the drill's targets, so that the dot can
        be seen inside one (the COP, the dot's centre, must be in the target)."""
        base = max(14, lay.size[1] // 30)
        if not self.view.targets or self._plate_view is None:
            return base
        s = self._plate_view.scale_px_per_mm
        smallest = min(max(14, round(t.radius_mm * s)) for t in self.view.targets)
        return max(10, min(base, round(0.75 * smallest)))

    def _draw_cursor(self, surface: pygame.Surface, pv: view.PlateView, lay: Layout) -> list[pygame.Rect]:
        sample = self.live.latest()
        if sample is None or not sample.frame.occupied:
            return []
        x, y = pv.to_px(sample.frame.cop_ml_mm, sample.frame.cop_ap_mm)
        area = lay.plate
        x, y = max(area.left, min(area.right, x)), max(area.top, min(area.bottom, y))
        r = self._cursor_radius(lay)
        drawn = pygame.draw.circle(surface, SHADE, (x, y), r + max(3, r // 4) + 2)
        pygame.draw.circle(surface, CURSOR_RIM, (x, y), r + max(3, r // 4))
        pygame.draw.circle(surface, CURSOR, (x, y), r)
        self.drawn_sample = sample
        self.cursor_px = (x, y)
        return [drawn]

    def _draw_card(self, surface: pygame.Surface, lay: Layout, v: DrillView) -> None:
        w, h = lay.size
        surface.blit(box(lay.size, SHADE, alpha=170, radius=0), (0, 0))
        card = pygame.Rect(0, 0, int(w * 0.66), int(h * 0.84))
        card.center = (w // 2, h // 2)
        pygame.draw.rect(surface, view.PANEL, card, border_radius=lay.pad)
        pygame.draw.rect(surface, view.PLATE_EDGE, card, width=2, border_radius=lay.pad)
        inner = card.inflate(-4 * lay.pad, -2 * lay.pad)
        x, y = inner.left, inner.top
        if v.state == "round_summary":
            title = f"Round {round_label(v, of=' of ')}"
        elif v.state == "aborted":
            title = "Stopped"
        else:
            title = "Well done!"
        r = text(surface, v.title, (x, y), size_px=lay.small, colour=view.MUTED, bold=True)
        y = r.bottom
        score = f"{v.score}"
        score_r = text(surface, score, (inner.right, y), size_px=lay.big, colour=ACTIVE, anchor="topright", bold=True)
        title_size = fit_size(title, size_px=lay.big, width_px=score_r.left - x - lay.pad, bold=True)
        text(surface, title, (x, y + (lay.big - title_size) // 2), size_px=title_size, bold=True)
        y = score_r.bottom + lay.pad // 2
        pygame.draw.line(surface, view.PLATE_EDGE, (x, y), (inner.right, y), 2)
        y += lay.pad
        buttons_h = max(48, int(lay.mid * 2.2))
        lines = patient_summary(v)
        room = inner.bottom - buttons_h - lay.pad - y
        size = max(lay.mid, int(lay.big * 0.8))
        while size > lay.small and len(lines) * int(size * 1.35) > room:
            size -= 1
        step = int(size * 1.35)
        for line in lines[: max(0, room // step)]:
            colour = view.TEXT if line.good is None else (GOOD if line.good else AMBER)
            label_w = face(size).size(line.label)[0]
            vs = fit_size(line.value, size_px=size, width_px=inner.width - label_w - lay.pad * 2, bold=True)
            text(surface, line.label, (x, y), size_px=size, colour=view.MUTED)
            text(surface, line.value, (inner.right, y + (size - vs) // 2), size_px=vs, colour=colour,
                 anchor="topright", bold=True)
            y += step
        if v.state == "round_summary" and not hasattr(self.drill, "next_round"):
            # the drill moves on by itself: say so, and offer only a way out (touch; Esc on the keyboard)
            rect = pygame.Rect(0, 0, int(inner.width * 0.3), buttons_h)
            rect.bottomright = inner.bottomright
            button(surface, "Stop", rect, size_px=lay.mid, selected=False, colour=view.MUTED, shape="pill")
            self._buttons.append((rect, "menu"))
            note = "The next round starts in a moment"
            text(surface, note, (inner.left, rect.centery), bold=True, colour=view.MUTED, anchor="midleft",
                 size_px=fit_size(note, size_px=lay.mid, width_px=rect.left - inner.left - lay.pad, bold=True))
            return
        actions = self._actions()
        gap = lay.pad
        bw = min(int(inner.width * 0.45), (inner.width - gap * (len(actions) - 1)) // len(actions))
        total = bw * len(actions) + gap * (len(actions) - 1)
        bx = card.centerx - total // 2
        focus = self._focus % len(actions)
        for i, (action, label) in enumerate(actions):
            rect = pygame.Rect(bx + i * (bw + gap), inner.bottom - buttons_h, bw, buttons_h)
            button(surface, label, rect, size_px=lay.mid, selected=i == focus, colour=ACTIVE, shape="pill")
            self._buttons.append((rect, action))
