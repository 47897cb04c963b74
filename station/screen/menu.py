"""The drill menu on the patient screen: big tiles, chosen with the arrow keys, a button or a tap.

:class:`DrillMenuMode` lists the drills (the single-leg hold twice: on the
left leg and on the right); choosing one starts it in a
:class:`~station.screen.game.GameMode`, and leaving the game comes back here.
Modes are switched through a ``switch(mode)`` callable: with
:class:`station.screen.app.ScreenApp`, ``switch = lambda m: setattr(app, "mode", m)``
(see :func:`show_drill_menu`).

Input: arrows move, Enter or Space plays, Esc goes back to ``home`` (the live
view). A physical button: :meth:`DrillMenuMode.press` plays the highlighted
drill, :meth:`DrillMenuMode.hold` (a long press) highlights the next one. A
touch screen: tap a tile.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pygame

from station.core.geometry import PlateGeometry
from station.screen import view
from station.screen.game import (
    ACTIVE,
    BACK_KEYS,
    GOOD,
    MISSED,
    PACER,
    PENDING,
    SELECT_KEYS,
    GameMode,
    event_pos,
)
from station.screen.sounds import Sounds
from station.screen.widgets import balanced, face, fit_lines, pill, text
from station.screen.window import Mode


@dataclass(frozen=True)
class MenuItem:
    """One tile: which drill, how it is started, what it says."""

    drill: str
    title: str
    blurb: str
    stance_side: str | None = None
    #: a programme's item: the drill's parameters, feedback and starting level (None: the menu's)
    params: Any = None
    feedback: str | None = None
    level: int | None = None


def programme_items(programme: Any, *, pelvis: bool = False) -> list[MenuItem]:
    """The tiles of a therapist's programme (:class:`station.drills.programme.Programme` as a dict),
    in its order, each with its own parameters; an invalid programme gives no tiles. The pelvis
    sensor's drills are left out on a station without the sensor (``pelvis`` False): they cannot run
    there (the web page says they need it)."""
    from station.drills.catalogue import PELVIS_DRILLS
    from station.drills.programme import Programme

    try:
        prog = Programme.from_dict(programme)
    except (TypeError, ValueError):
        return []
    # the tile's title for the drill on that side ("Hold on left leg"), else the drill's first one
    titles: dict[tuple[str, str | None], str] = {}
    for tile in ITEMS:
        titles.setdefault((tile.drill, tile.stance_side), tile.title)
        titles.setdefault((tile.drill, None), tile.title)
    out = []
    items = [item for item in prog.items if pelvis or item.drill not in PELVIS_DRILLS]
    for k, item in enumerate(items, start=1):
        amount = (f"{item.rounds} round{'s' if item.rounds != 1 else ''}" if item.rounds is not None
                  else f"{item.duration_s / 60:g} min" if item.duration_s is not None else "")
        side = f", {item.stance_side} leg" if item.stance_side else ""
        title = titles.get((item.drill, item.stance_side)) or titles.get((item.drill, None), item.drill)
        out.append(MenuItem(item.drill, f"{k}. {title}", f"Your programme: {amount}{side}".rstrip(": "),
                            stance_side=item.stance_side, params=item.drill_params(level_bounds=prog.level_bounds),
                            feedback=item.feedback, level=item.level))
    return out


#: the tiles, in order (only the drills the engine has are shown); titles as the drills' own (the game's header)
ITEMS: tuple[MenuItem, ...] = (
    MenuItem("reach", "Reach", "Lean to each target and hold it"),
    MenuItem("limits", "Limits of stability", "Lean as far as you safely can, each way"),
    MenuItem("symmetry", "Weight shift", "Share your weight between your feet"),
    MenuItem("rhythm", "Rhythmic shift", "Sway in time with the moving ring"),
    MenuItem("single-leg-hold", "Hold on left leg", "Keep the dot in the box, standing on one leg", "left"),
    MenuItem("single-leg-hold", "Hold on right leg", "Keep the dot in the box, standing on one leg", "right"),
    # with the pelvis sensor only (docs/drills.md)
    MenuItem("hip-dip", "Hip dip, left leg", "Let the free hip drop, lift it back", "left"),
    MenuItem("hip-dip", "Hip dip, right leg", "Let the free hip drop, lift it back", "right"),
    MenuItem("level-pelvis-hold", "Level pelvis, left leg", "Stand on one leg, keep your hips level", "left"),
    MenuItem("level-pelvis-hold", "Level pelvis, right leg", "Stand on one leg, keep your hips level", "right"),
)


def available_items(names: tuple[str, ...] | None = None, *, pelvis: bool = False) -> list[MenuItem]:
    """The tiles of the drills the engine offers (``station.drills.DRILLS``, and with ``pelvis`` the
    pelvis sensor's drills too), or of ``names``."""
    if names is None:
        from station.drills import DRILLS
        from station.drills.catalogue import PELVIS_DRILLS

        names = DRILLS + (PELVIS_DRILLS if pelvis else ())
    return [item for item in ITEMS if item.drill in names]


class DrillMenuMode(Mode):
    """The menu of drills.

    Parameters
    ----------
    live : LiveStation
        The live station the games read.
    geometry : PlateGeometry
        The plate.
    switch : callable
        ``switch(mode)`` shows another mode (the game, or ``home``).
    home : Mode, optional
        Where Esc goes (the live view); without it Esc does nothing.
    sounds : Sounds, optional
        Shared by the games (opened once).
    seed : int, optional
        Seed of the drills' random generator (None: a fresh one for each game).
    autoplay_skill : str, optional
        ``"good"``, ``"average"`` or ``"poor"``: the simulated person plays (simulated plate only).
    feedback, level : optional
        Passed to :func:`station.drills.make_drill`.
    pelvis : optional
        The pelvis sensor (:class:`station.protocols.trial.PelvisLookup`): the pelvis drills are fed its
        angle, and on the simulated plate the simulated player moves the simulated one.
    """

    def __init__(self, live: Any, geometry: PlateGeometry, *, switch: Callable[[Mode], None],
                 home: Mode | None = None, sounds: Sounds | None = None, seed: int | None = None,
                 autoplay_skill: str | None = None, feedback: str = "continuous", level: int | None = None,
                 items: list[MenuItem] | None = None, title: str = "Choose a game", limits: Any = None,
                 recorder: Callable[[Any], Any] | None = None,
                 level_for: Callable[[str], int | None] | None = None, pelvis: Any = None) -> None:
        self.live = live
        self.pelvis = pelvis
        self.geometry = geometry
        self.switch = switch
        self.home = home
        self.sounds = sounds if sounds is not None else Sounds()
        self.seed = seed
        self.autoplay_skill = autoplay_skill
        self.feedback = feedback
        self.level = level
        self.items = items if items is not None else available_items()
        self.title = title
        self.limits = limits
        #: ``recorder(drill)`` when a game starts, returning a handle whose ``finish(drill)`` is called
        #: when the game is left (the station stores each game as a trial of the patient)
        self.recorder = recorder
        #: ``level_for(drill)``: the level to start a drill at when neither the tile nor the menu sets one
        #: (the station: the level the patient reached last time)
        self.level_for = level_for
        self._recording: Any = None
        self.selected = 0
        self.game: GameMode | None = None
        self._presses: collections.deque[str] = collections.deque()
        self._tiles: list[pygame.Rect] = []
        self._size = (1, 1)

    # -- input --------------------------------------------------------------------------------------------
    def press(self) -> None:
        """The physical button: play the highlighted drill (thread-safe)."""
        self._presses.append("select")

    def hold(self) -> None:
        """A long press of the physical button: highlight the next drill (thread-safe)."""
        self._presses.append("next")

    def columns(self) -> int:
        n = len(self.items)
        return 4 if n > 9 else 3 if n > 4 else 2

    def handle_event(self, event: pygame.event.Event) -> None:
        n, cols = len(self.items), self.columns()
        if event.type == pygame.KEYDOWN:
            moves = {pygame.K_LEFT: -1, pygame.K_RIGHT: 1, pygame.K_UP: -cols, pygame.K_DOWN: cols}
            if event.key in moves:
                self.selected = (self.selected + moves[event.key]) % n
            elif event.key == pygame.K_TAB:
                self.selected = (self.selected + 1) % n
            elif event.key in SELECT_KEYS:
                self.start(self.selected)
            elif event.key in BACK_KEYS and self.home is not None:
                self.switch(self.home)
            return
        pos = event_pos(event, self._size)
        if pos is not None:
            for i, rect in enumerate(self._tiles):
                if rect.collidepoint(pos):
                    self.selected = i
                    self.start(i)
                    break

    def update(self) -> None:
        while self._presses:
            if self._presses.popleft() == "next":
                self.selected = (self.selected + 1) % len(self.items)
            else:
                self.start(self.selected)

    # -- games --------------------------------------------------------------------------------------------
    def make_game(self, index: int) -> GameMode:
        """A new game of the tile ``index`` (a fresh drill, a fresh subscription)."""
        from station.drills import make_drill
        from station.drills.catalogue import needs_pelvis

        item = self.items[index]
        rng = np.random.default_rng(self.seed)
        drill = make_drill(item.drill, geometry=self.geometry, rng=rng, params=item.params,
                           feedback=item.feedback or self.feedback, stance_side=item.stance_side,
                           level=self._level(item), limits=self.limits,
                           pelvis_sensor=True if self.pelvis is not None else None)
        fed_pelvis = self.pelvis is not None and needs_pelvis(item.drill)
        if fed_pelvis:
            from station.drills.pelvis import PelvisFed

            drill = PelvisFed(drill, self.pelvis)
        player = None
        if self.autoplay_skill and getattr(self.live, "synthetic", False):
            from station.drills.autoplay import AutoPlayer, PelvisPlayer

            player = AutoPlayer(skill=self.autoplay_skill, rng=np.random.default_rng(rng.integers(2**32)),
                                geometry=self.geometry)
            if fed_pelvis and getattr(self.pelvis, "synthetic", False):
                player = PelvisPlayer(player, self.pelvis)
        return GameMode(self.live, self.geometry, drill, sounds=self.sounds, player=player,
                        on_exit=self._back, on_again=lambda game: self._again(game, index))

    def _level(self, item: MenuItem) -> int | None:
        if item.level is not None:
            return item.level
        if self.level is None and self.level_for is not None:
            return self.level_for(item.drill)
        return self.level

    def start(self, index: int) -> GameMode:
        self.selected = index
        self.game = self.make_game(index)
        if self.recorder is not None:
            self._recording = self.recorder(self.game.drill)
        self.switch(self.game)
        return self.game

    def _finish_recording(self, game: GameMode) -> None:
        recording, self._recording = self._recording, None
        if recording is not None:
            if not game.drill.finished:
                game.drill.abort("stopped on the screen")
            recording.finish(game.drill)

    def _again(self, game: GameMode, index: int) -> None:
        self._finish_recording(game)
        self.start(index)

    def _back(self, game: GameMode) -> None:
        game.close()
        self._finish_recording(game)
        self.game = None
        self.switch(self)

    # -- drawing ------------------------------------------------------------------------------------------
    def draw(self, surface: pygame.Surface) -> None:
        w, h = self._size = surface.get_size()
        surface.fill(view.BACKGROUND)
        pad = max(8, w // 64)
        big, mid, small = max(26, h // 12), max(18, h // 22), max(14, h // 34)
        r = text(surface, self.title, (pad * 2, pad), size_px=big, bold=True)
        hint = "Arrows to choose  ·  Enter or the button to play" + ("  ·  Esc to go back" if self.home else "")
        text(surface, hint, (pad * 2, h - pad), size_px=small, colour=view.MUTED, anchor="bottomleft")
        if getattr(self.live, "synthetic", False):
            label = "SIMULATED PLATE" + (f"  ·  AUTOPLAY ({self.autoplay_skill})" if self.autoplay_skill else "")
            pill(surface, label, (w - pad * 2, r.centery), size_px=small, fg=view.BACKGROUND, bg=view.SYNTHETIC,
                 anchor="midright")
        cols = self.columns()
        rows = math.ceil(len(self.items) / cols)
        grid = pygame.Rect(pad * 2, r.bottom + pad, w - pad * 4, h - r.bottom - 2 * pad - small - pad)
        tw = (grid.width - (cols - 1) * pad) // cols
        th = (grid.height - (rows - 1) * pad) // rows
        self._tiles = []
        for i, item in enumerate(self.items):
            rect = pygame.Rect(grid.left + (i % cols) * (tw + pad), grid.top + (i // cols) * (th + pad), tw, th)
            self._tiles.append(rect)
            self._draw_tile(surface, rect, item, selected=i == self.selected, mid=mid, small=small, pad=pad)

    def _draw_tile(self, surface: pygame.Surface, rect: pygame.Rect, item: MenuItem, *, selected: bool, mid: int,
                   small: int, pad: int) -> None:
        radius = max(10, pad)
        pygame.draw.rect(surface, view.PLATE if selected else view.PANEL, rect, border_radius=radius)
        if selected:
            pygame.draw.rect(surface, ACTIVE, rect, width=max(4, pad // 2), border_radius=radius)
        inner = rect.inflate(-2 * pad, -2 * pad)
        # the words first: the title's line and one line of the blurb always fit; the icon takes what is left
        words_h = face(mid, True).get_linesize() + face(max(12, small - 4)).get_linesize() + pad // 2
        icon_h = max(0, min(int(inner.height * 0.46), inner.height - words_h))
        icon = pygame.Rect(inner.left, inner.top, inner.width, icon_h)
        draw_icon(surface, item, icon, bright=selected)
        y = icon.bottom + pad // 2
        size, lines = fit_lines(item.title, size_px=mid, min_px=small, width_px=inner.width,
                                height_px=int(mid * 1.3), max_lines=1, bold=True)
        text(surface, lines[0] if lines else item.title, (inner.centerx, y), size_px=size, bold=True,
             colour=ACTIVE if selected else view.TEXT, anchor="midtop")
        y += face(size, True).get_linesize()
        room_px = inner.bottom + pad // 2 - y
        size, lines = fit_lines(item.blurb, size_px=small, min_px=max(12, small - 4), width_px=inner.width,
                                height_px=room_px, max_lines=2)
        whole = len(balanced(item.blurb, size_px=size, width_px=inner.width)) <= len(lines)
        if not whole or len(lines) * face(size).get_linesize() > room_px:
            return  # a small tile (many drills, a small panel): the title alone, never half a sentence
        for line in lines:
            text(surface, line, (inner.centerx, y), size_px=size, colour=view.MUTED, anchor="midtop")
            y += face(size).get_linesize()


def draw_icon(surface: pygame.Surface, item: MenuItem, box: pygame.Rect, *, bright: bool) -> None:
    """A small picture of the drill, drawn with shapes."""
    cx, cy = box.center
    r = min(box.width, box.height) // 2
    line = PENDING if not bright else view.TEXT
    width = max(2, r // 12)
    if item.drill == "reach":
        for k, (dx, dy) in enumerate(((0, -0.62), (0.6, 0.1), (-0.55, 0.35))):
            colour = ACTIVE if k == 0 else (GOOD if k == 1 else line)
            centre = (cx + round(dx * r * 1.4), cy + round(dy * r))
            if k == 1:
                pygame.draw.circle(surface, colour, centre, r // 4)
            else:
                pygame.draw.circle(surface, colour, centre, r // 4, width=width + 1)
        pygame.draw.circle(surface, view.COP, (cx, cy), r // 6)
    elif item.drill == "limits":
        for k in range(8):
            a = k * math.pi / 4
            end = (cx + round(math.sin(a) * r * 0.85), cy - round(math.cos(a) * r * 0.85))
            pygame.draw.line(surface, line, (cx, cy), end, width)
            pygame.draw.circle(surface, ACTIVE if k == 1 else line, end, max(4, r // 8))
        pygame.draw.circle(surface, view.COP, (cx, cy), r // 6)
    elif item.drill == "symmetry":
        bw, bh = r // 2, int(r * 1.6)
        for k, fill in enumerate((0.55, 0.45)):
            x = cx - r // 2 - bw // 2 + k * r
            frame = pygame.Rect(x, cy - bh // 2, bw, bh)
            pygame.draw.rect(surface, view.PLATE if bright else MISSED, frame, border_radius=4)
            f = round(bh * fill)
            pygame.draw.rect(surface, GOOD, (x + 3, frame.bottom - f, bw - 6, f), border_radius=3)
        pygame.draw.line(surface, view.TEXT, (cx - r, cy), (cx + r, cy), width)
    elif item.drill == "rhythm":
        pts = [(cx - r * 1.3 + i * r * 2.6 / 40, cy + math.sin(i / 40 * 2 * math.pi) * r * 0.5) for i in range(41)]
        pygame.draw.lines(surface, line, False, pts, width)
        pygame.draw.circle(surface, PACER, (cx + r // 2, cy - r // 2), r // 3, width=width + 1)
        pygame.draw.circle(surface, view.COP, (cx + r // 2, cy - r // 2), r // 7)
    else:  # single-leg hold
        left = item.stance_side == "left"
        for k in (0, 1):
            stance = (k == 0) == left
            foot = pygame.Rect(0, 0, int(r * 0.55), int(r * 1.6))
            foot.center = (cx - int(r * 0.45) + k * int(r * 0.9), cy)
            pygame.draw.ellipse(surface, line if stance else MISSED, foot, width=width)
            if stance:
                zone = foot.inflate(-foot.width // 4, -foot.height // 2)
                pygame.draw.rect(surface, GOOD, zone, width=width + 1, border_radius=4)
                pygame.draw.circle(surface, view.COP, zone.center, r // 7)


def show_drill_menu(app: Any, geometry: PlateGeometry | None = None, **options: Any) -> DrillMenuMode:
    """Put the drill menu on a :class:`~station.screen.app.ScreenApp`; Esc returns to the mode it showed.

    ``options`` go to :class:`DrillMenuMode` (``seed``, ``autoplay_skill``, ``feedback``, ``level``,
    ``sounds``; the app's own ``sounds`` by default).
    """
    menu = drill_menu_factory(app, geometry, **options)()
    _switcher(app)(menu)
    return menu


def drill_menu_factory(app: Any, geometry: PlateGeometry | None = None, **options: Any) -> Callable[[], Mode]:
    """A factory of the drill menu for ``app``, e.g. for the flow's ``extra_menu`` entries
    (``("Balance games", "reach, weight shift, rhythm, hold", drill_menu_factory(app))``). The mode
    shown when the factory is called is where Esc goes back to."""
    def make() -> DrillMenuMode:
        opts = dict(options)
        if opts.get("sounds") is None and getattr(app, "sounds", None) is not None:
            opts["sounds"] = app.sounds
        return DrillMenuMode(app.live, geometry or app.geometry, switch=_switcher(app), home=app.mode, **opts)

    return make


def _switcher(app: Any) -> Callable[[Mode], None]:
    switch = getattr(app, "switch", None)
    if callable(switch):
        return switch

    def assign(mode: Mode) -> None:
        app.mode = mode

    return assign
