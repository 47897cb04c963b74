"""The biofeedback game on the patient screen, headless (SDL dummy driver).

Each drill is played for a round by the simulated person on an in-process
simulated plate (fast: plate time, not wall time) through GameMode, at
1280x720 and at 800x480 (the Pi's 7-inch touch screen); screenshots go to
test-artifacts/game-<drill>-<moment>-<size>.png.
"""

import math
import os
import threading
import time
from pathlib import Path

import numpy as np
import pygame
import pytest

from calibration.model import simulator_calibration
from hardware.sim.plate import SimulatedPlate
from station.commands.drill import InProcessFeed
from station.core.config import ScreenSettings
from station.core.geometry import PlateGeometry
from station.drills import DRILLS, make_drill
from station.drills.autoplay import AutoPlayer
from station.drills.view import DrillView, Metronome, ShareBars, SummaryLine, Zone
from station.live.pipeline import LiveStation
from station.screen import game as game_module
from station.screen.app import ScreenApp
from station.screen.game import ACTIVE, CURSOR, GOOD, GameMode, Layout, format_clock
from station.screen.menu import DrillMenuMode, available_items, drill_menu_factory, show_drill_menu
from station.screen.sounds import VOLUMES, Sounds, synthesize
from station.signal.forces import ForcePipeline
from tests.doubles import ListFeed
from tests.station.live.test_pipeline import frames

GEOMETRY = PlateGeometry()
SIZES = [(1280, 720), (800, 480)]
FPS = 60


@pytest.fixture
def display():
    """A display surface of the asked size (dummy driver); closed after the test."""
    pygame.display.init()
    pygame.font.init()

    def make(size):
        return pygame.display.set_mode(size)

    yield make
    pygame.display.quit()


class Sim:
    """A simulated person on an in-process plate, a live station fed by hand, and the game on top."""

    def __init__(self, drill_name, *, skill="good", seed=1, feedback="continuous", side=None, sounds=None,
                 level=None):
        self.plate = SimulatedPlate(geometry=GEOMETRY, seed=seed, realtime=False)
        self.feed = InProcessFeed(self.plate)
        self.live = LiveStation(self.feed, ForcePipeline(simulator_calibration(), GEOMETRY))
        if drill_name == "single-leg-hold" and side is None:
            side = "left"
        self.drill = make_drill(drill_name, geometry=GEOMETRY, rng=np.random.default_rng(seed), feedback=feedback,
                                stance_side=side, level=level)
        player = AutoPlayer(skill=skill, rng=np.random.default_rng(seed + 100), geometry=GEOMETRY)
        self.exits = []
        self.mode = GameMode(self.live, GEOMETRY, self.drill, sounds=sounds or Sounds(), player=player,
                             on_exit=self.exits.append)
        self.k = 0

    @property
    def t_s(self):
        return self.k / FPS

    def step(self, n=1):
        """n screen frames: the plate's frames up to the frame's time, then the game's update."""
        for _ in range(n):
            self.k += 1
            for raw in self.feed.until(self.t_s):
                self.live.ingest(raw)
            self.mode.update()

    def run_until(self, predicate, *, max_s=240.0):
        while not predicate(self.mode.view):
            assert self.t_s < max_s, f"not reached in {max_s} s of plate time (state {self.mode.view.state})"
            self.step()


def shot(surface, artifacts, name):
    pygame.image.save(surface, str(artifacts / name))


# -- a round of each drill, with screenshots ----------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("drill_name", DRILLS)
def test_a_round_of_each_drill(drill_name, size, display, artifacts):
    surface = display(size)
    sim = Sim(drill_name)
    tag = f"{size[0]}x{size[1]}"
    # well into the first round: the drill's shapes and the cursor are on the screen
    sim.run_until(lambda v: v.state == "running")
    sim.run_until(lambda v: v.state != "running" or v.elapsed_s > 8.0)
    assert sim.mode.view.state == "running"
    sim.mode.draw(surface)
    shot(surface, artifacts, f"game-{drill_name}-running-{tag}.png")
    assert sim.mode.drawn_sample is not None
    # the end of the round: the summary card
    sim.run_until(lambda v: v.state in ("round_summary", "done"))
    sim.mode.draw(surface)
    shot(surface, artifacts, f"game-{drill_name}-summary-{tag}.png")
    view = sim.mode.view
    assert view.summary, "the round summary lists the round's results"
    assert sim.mode.cursor_px is None  # the card covers the game, no cursor on it
    assert sim.mode.cues["round_end"] >= 1
    assert sim.mode.sounds.played["round_end"] == sim.mode.cues["round_end"]
    # the whole card is on the screen, its buttons reachable by touch
    if view.state == "done":
        assert sim.mode._buttons and all(surface.get_rect().contains(r) for r, _ in sim.mode._buttons)


def test_cursor_is_drawn_where_the_newest_frame_is(display):
    surface = display((1280, 720))
    sim = Sim("reach")
    sim.run_until(lambda v: v.state == "running")
    sim.step(30)
    # a frame that arrives after the game's update is still the one the cursor shows
    raw = frames(1, fz_n=700.0, x_mm=-80.0, y_mm=60.0, start=10**6)[0]
    raw = type(raw)(seq=raw.seq, t_s=sim.t_s + 0.001, counts=raw.counts)
    sample_frame = sim.live.ingest(raw)
    sim.mode.draw(surface)
    pv = sim.mode.plate_view(surface)
    expected = pv.to_px(sample_frame.cop_ml_mm, sample_frame.cop_ap_mm)
    assert sim.mode.cursor_px == expected
    assert sim.mode.drawn_sample.frame is sample_frame
    assert surface.get_at(expected)[:3] == CURSOR
    # unfiltered: no display low-pass between the plate and the cursor
    assert sample_frame.cop_ml_mm == pytest.approx(-80.0, abs=0.5)


class ArrivingFeed(ListFeed):
    """A feed whose next frame arrives at a given time (``time.monotonic``), as through the acquisition's pipe."""

    def __init__(self):
        super().__init__()
        self.next_frame = None
        self.arrives_s = math.inf

    def frames(self, *, timeout_s=0.1, max_frames=10_000):
        if not self.pending and self.next_frame is not None:
            wait_s = self.arrives_s - time.monotonic()
            if wait_s <= timeout_s:
                time.sleep(max(0.0, wait_s))
                self.pending, self.next_frame = [self.next_frame], None
        return super().frames(timeout_s=0.0, max_frames=max_frames)


def stamped(seq, t_s, *, x_mm):
    raw = frames(1, fz_n=700.0, x_mm=x_mm, y_mm=0.0, start=seq)[0]
    return type(raw)(seq=seq, t_s=t_s, counts=raw.counts)


def test_late_latching_waits_for_a_frame_about_to_arrive():
    feed = ArrivingFeed()
    live = LiveStation(feed, ForcePipeline(simulator_calibration(), GEOMETRY))
    mode = GameMode(live, GEOMETRY, StillDrill(HAND_MADE["bars"]), sounds=Sounds(enabled=False))
    mode._period_s = 0.2  # a slow plate, so that the test does not depend on the machine's speed
    mode.fresh_wait_s = 0.3
    # the newest frame was stamped 0.17 s ago: the next one is due in 0.03 s, and arrives then
    now = time.monotonic()
    feed.pending = [stamped(400, now - 0.17, x_mm=40.0)]
    feed.next_frame, feed.arrives_s = stamped(401, now + 0.03, x_mm=50.0), now + 0.03
    mode.fresh_wait_s = 0.0
    live.pump()  # as the screen's frame starts (ScreenApp.tick)
    mode.update()  # the frame just in, no waiting
    assert mode.frames_fed == 1
    mode.fresh_wait_s = 0.3
    t0 = time.monotonic()
    mode.update()
    waited = time.monotonic() - t0
    assert mode.frames_fed == 2 and 0.02 < waited < 0.25
    assert live.latest().frame.seq == 401
    # the newest frame is fresh (the next one is a whole period away): no wait
    t0 = time.monotonic()
    mode.update()
    assert time.monotonic() - t0 < 0.05 and mode.frames_fed == 2
    # a replayed recording's stamps (seconds from its start) are never due soon: no wait either
    feed.pending = [stamped(402, 12.5, x_mm=50.0)]
    live.pump()
    mode.update()
    t0 = time.monotonic()
    mode.update()
    assert time.monotonic() - t0 < 0.05 and mode.frames_fed == 3


def test_cursor_hidden_when_the_view_says_so(display, artifacts):
    surface = display((1280, 720))
    sim = Sim("reach", feedback="summary")
    sim.run_until(lambda v: v.state == "running")
    sim.step(60)
    assert not sim.mode.view.cursor_visible
    sim.mode.draw(surface)
    shot(surface, artifacts, "game-reach-hidden-cursor-1280x720.png")
    assert sim.mode.cursor_px is None and sim.mode.drawn_sample is None
    sample = sim.live.latest()
    where = sim.mode.plate_view(surface).to_px(sample.frame.cop_ml_mm, sample.frame.cop_ap_mm)
    assert surface.get_at(where)[:3] != CURSOR


def test_a_target_turns_green_when_hit(display, artifacts):
    surface = display((1280, 720))
    sim = Sim("reach", seed=4, level=8)  # targets far out and small: the cursor can be away from them
    sim.run_until(lambda v: v.state == "running")
    pv = sim.mode.plate_view(surface)
    lay = sim.mode.layout(surface)

    def far_from_cursor(t):
        sample = sim.live.latest()
        cx, cy = pv.to_px(sample.frame.cop_ml_mm, sample.frame.cop_ap_mm)
        tx, ty = pv.to_px(t.x_mm, t.y_mm)
        r = round(t.radius_mm * pv.scale_px_per_mm)
        reach = r + sim.mode._cursor_radius(lay) * 3 // 2 + 4  # the cursor with its rims, and a margin
        return (cx - tx) ** 2 + (cy - ty) ** 2 > reach ** 2

    # a target away from the centre, active, the cursor not on it yet
    def outer_active(v):
        return [i for i, t in enumerate(v.targets) if t.state == "active" and np.hypot(t.x_mm, t.y_mm) > 20]

    sim.run_until(lambda v: bool(outer_active(v)) and far_from_cursor(v.targets[outer_active(v)[0]]))
    index = outer_active(sim.mode.view)[0]
    target = sim.mode.view.targets[index]
    centre = pv.to_px(target.x_mm, target.y_mm)
    r = round(target.radius_mm * pv.scale_px_per_mm)
    edge = max(3, r // 9)
    ring_top = (centre[0], centre[1] - r + (edge + 2) // 2)
    sim.mode.draw(surface)
    shot(surface, artifacts, "game-reach-target-active-1280x720.png")
    assert surface.get_at(ring_top)[:3] == ACTIVE
    # hit, then the cursor leaves it: a green disc with a tick
    hits = sim.mode.cues["hit"]
    sim.run_until(lambda v: v.targets[index].state == "hit" if len(v.targets) > index else False)
    assert sim.mode.cues["hit"] == hits + 1
    sim.run_until(lambda v: len(v.targets) > index and far_from_cursor(v.targets[index]))
    sim.mode.draw(surface)
    shot(surface, artifacts, "game-reach-target-hit-1280x720.png")
    rh = max(12, round(r * 0.6))
    inside = (centre[0] - round(0.35 * rh), centre[1] - round(0.35 * rh))
    assert surface.get_at(inside)[:3] == GOOD
    assert surface.get_at(ring_top)[:3] != ACTIVE


def test_cues_are_counted_and_sounded():
    sounds = Sounds(enabled=False)  # silent, still counting
    sim = Sim("reach", sounds=sounds)
    sim.run_until(lambda v: v.state == "done")
    assert sim.mode.cues["hit"] == 8  # the good player reaches all eight targets
    assert sim.mode.cues["streak"] >= 1 and sim.mode.cues["round_end"] == 1
    assert sounds.played == sim.mode.cues
    assert not sounds.available


def test_lost_balance_gets_its_gentle_cue():
    sim = Sim("single-leg-hold", skill="poor", seed=1)
    sim.run_until(lambda v: v.state == "done")
    assert sim.mode.cues["lost_balance"] >= 1
    assert sim.mode.sounds.played["lost_balance"] == sim.mode.cues["lost_balance"]


def test_rhythm_beats_are_clicked():
    sim = Sim("rhythm")
    sim.run_until(lambda v: v.state == "round_summary")
    assert sim.mode.cues["beat"] >= 5


def test_streak_flash_and_message(display, artifacts):
    surface = display((1280, 720))
    sim = Sim("reach")
    sim.run_until(lambda v: sim.mode.cues["streak"] >= 1)
    sim.mode.draw(surface)
    shot(surface, artifacts, "game-reach-streak-1280x720.png")
    lay = sim.mode.layout(surface)
    assert sim.mode._t_s < sim.mode._flash_until
    # the streak box is lit in the panel (left of where the panel's text starts)
    x = lay.panel.left + lay.pad // 2 + 2
    lit = [y for y in range(lay.panel.top, lay.panel.bottom) if surface.get_at((x, y))[:3] == ACTIVE]
    assert len(lit) > lay.big
    # and it goes out
    sim.step(FPS)
    sim.mode.draw(surface)
    assert not [y for y in range(lay.panel.top, lay.panel.bottom) if surface.get_at((x, y))[:3] == ACTIVE]


# -- drawing of every part of a view, from hand-made views ---------------------------------------------------


class StillDrill:
    """A drill that always shows the same view."""

    def __init__(self, view):
        self._view = view
        self.finished = view.state in ("done", "aborted")
        self.aborted = None

    def update(self, frame):
        return []

    def view(self):
        return self._view

    def abort(self, reason):
        self.aborted = reason
        self.finished = True


def still(view, *, cop=(-40.0, -50.0)):
    live = LiveStation(ListFeed(), ForcePipeline(simulator_calibration(), GEOMETRY))
    for raw in frames(20, fz_n=700.0, x_mm=cop[0], y_mm=cop[1]):
        live.ingest(raw)
    exits = []
    mode = GameMode(live, GEOMETRY, StillDrill(view), sounds=Sounds(enabled=False), on_exit=exits.append)
    return mode, live, exits


HAND_MADE = {
    "zone-outside": DrillView("single-leg-hold", "Single-leg hold", "Stand on your left leg", "running", 8.0, 30.0,
                              zone=Zone(-100.0, 0.0, 35.0, 60.0, inside=False), score=20),
    "bars": DrillView("symmetry", "Weight shift", "Put 60 % of your weight on your left foot", "running", 12.0,
                      45.0, bars=ShareBars(56.0, 60.0, 5.0, True), score=120, streak=3, best_streak=3),
    "metronome": DrillView("rhythm", "Rhythmic shift", "Sway in time with the ring", "running", 30.0, 60.0,
                           metronome=Metronome("ap", 30.0, 50.0, 2.0, 0.3), feedback="intermittent",
                           cursor_visible=False),
    "long-summary": DrillView("reach", "Reach", "", "done", 60.0, 60.0, score=12345, best_streak=7,
                              summary=tuple(SummaryLine(f"Line number {i}", f"{i * 11} units", i % 2 == 0)
                                            for i in range(12))),
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", list(HAND_MADE))
def test_hand_made_views_fit_the_screen(name, size, display, artifacts):
    surface = display(size)
    mode, _, _ = still(HAND_MADE[name])
    mode.draw(surface)
    shot(surface, artifacts, f"game-view-{name}-{size[0]}x{size[1]}.png")
    lay = mode.layout(surface)
    assert lay.plate.right < lay.panel.left and surface.get_rect().contains(lay.panel)


def test_zone_colour_says_inside_or_outside(display):
    surface = display((1280, 720))
    for inside, colour in ((True, GOOD), (False, game_module.AMBER)):
        view = DrillView("single-leg-hold", "Hold", "Hold", "running", 1.0, 30.0,
                         zone=Zone(-100.0, 0.0, 35.0, 60.0, inside=inside))
        mode, _, _ = still(view, cop=(100.0, 0.0))
        mode.draw(surface)
        pv = mode.plate_view(surface)
        left, top = pv.to_px(-135.0, 60.0)
        assert surface.get_at((left + 2, top + 40))[:3] == colour


def test_layout_scales_with_the_screen():
    small, large = Layout.for_size((800, 480)), Layout.for_size((1280, 720))
    assert small.big >= 26 and large.big > small.big
    assert large.huge >= 100  # the score, readable from 2 m
    assert format_clock(61.2) == "1:02" and format_clock(-3) == "0:00"


# -- input: keyboard, the button, touch ------------------------------------------------------------------------


def key(k):
    return pygame.event.Event(pygame.KEYDOWN, key=k, mod=0)


def test_escape_leaves_and_aborts(display):
    display((800, 480))
    mode, live, exits = still(HAND_MADE["bars"])
    mode.handle_event(key(pygame.K_ESCAPE))
    assert exits == [mode] and mode.drill.aborted and mode.closed
    assert mode.sub not in live._subs


def test_button_press_from_another_thread_selects(display):
    surface = display((800, 480))
    mode, _, exits = still(HAND_MADE["long-summary"])
    mode.draw(surface)
    t = threading.Thread(target=mode.press)
    t.start()
    t.join()
    assert exits == []  # acted on at the next frame, on the screen's thread
    mode.update()
    assert exits == [mode]


def test_touch_the_stop_button(display):
    surface = display((800, 480))
    mode, _, exits = still(HAND_MADE["bars"])
    mode.draw(surface)
    (rect, action), = mode._buttons
    assert action == "menu"
    # SDL's mouse event made from a tap is ignored (the tap counts once) ...
    mode.handle_event(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1, pos=rect.center, touch=True))
    assert exits == []
    # ... the finger is what counts
    w, h = surface.get_size()
    mode.handle_event(pygame.event.Event(pygame.FINGERDOWN, x=rect.centerx / w, y=rect.centery / h, touch_id=0,
                                         finger_id=0, dx=0.0, dy=0.0, pressure=1.0))
    assert exits == [mode]


def test_arrows_steer_the_simulated_person_without_autoplay(display):
    display((800, 480))
    mode, live, _ = still(HAND_MADE["bars"])
    mode.handle_event(key(pygame.K_LEFT))
    mode.handle_event(key(pygame.K_UP))
    assert live.feed.commands[-2:] == [("lean_to", {"x_mm": -10.0, "y_mm": 0.0}),
                                       ("lean_to", {"x_mm": -10.0, "y_mm": 10.0})]
    real, real_live, _ = still(HAND_MADE["bars"])
    real_live.feed.info["kind"] = "hx711-lgpio"
    real.handle_event(key(pygame.K_LEFT))
    assert real_live.feed.commands == []


def test_enter_on_the_final_card_goes_back(display):
    surface = display((1280, 720))
    mode, _, exits = still(HAND_MADE["long-summary"])
    mode.draw(surface)
    mode.handle_event(key(pygame.K_SPACE))
    assert exits == [mode]


# -- the menu ----------------------------------------------------------------------------------------------


@pytest.fixture
def menu_app():
    apps = []

    def make(size, feed=None):
        live = LiveStation(feed or ListFeed(), ForcePipeline(simulator_calibration(), GEOMETRY))
        app = ScreenApp(live, geometry=GEOMETRY, settings=ScreenSettings(fullscreen=False, width=size[0],
                                                                          height=size[1], fps=240))
        app.open()
        apps.append(app)
        return app, live

    yield make
    for app in apps:
        app.close()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_menu_keyboard_and_back(size, menu_app, artifacts):
    app, live = menu_app(size)
    home = app.mode
    menu = show_drill_menu(app, GEOMETRY, seed=3, autoplay_skill="good", sounds=Sounds(enabled=False))
    app.tick()
    app.screenshot(artifacts / f"game-menu-{size[0]}x{size[1]}.png")
    pygame.event.post(key(pygame.K_RIGHT))
    pygame.event.post(key(pygame.K_RETURN))
    app.tick()
    assert isinstance(app.mode, GameMode) and app.mode.drill.name == menu.items[1].drill
    assert app.mode.player is not None  # simulated plate: the simulated person plays
    game = app.mode
    for raw in frames(5, fz_n=700.0):
        live.ingest(raw)
    app.tick()
    assert game.frames_fed == 5
    pygame.event.post(key(pygame.K_ESCAPE))
    app.tick()
    assert app.mode is menu and game.closed and game.drill.finished
    pygame.event.post(key(pygame.K_ESCAPE))
    app.tick()
    assert app.mode is home


def test_menu_touch_and_the_button(menu_app):
    app, _ = menu_app((800, 480))
    menu = show_drill_menu(app, GEOMETRY, sounds=Sounds(enabled=False))
    app.tick()
    w, h = app.surface.get_size()
    tile = menu._tiles[-1]
    pygame.event.post(pygame.event.Event(pygame.FINGERDOWN, x=tile.centerx / w, y=tile.centery / h, touch_id=0,
                                         finger_id=0, dx=0.0, dy=0.0, pressure=1.0))
    app.tick()
    assert isinstance(app.mode, GameMode) and app.mode.drill.name == menu.items[-1].drill
    assert app.mode.drill.stance_side == menu.items[-1].stance_side
    app.mode.leave()
    assert app.mode is menu
    menu.hold()
    menu.hold()
    menu.update()
    assert menu.selected == (len(menu.items) - 1 + 2) % len(menu.items)
    menu.press()
    app.tick()
    assert isinstance(app.mode, GameMode) and app.mode.drill.name == menu.items[menu.selected].drill


def test_menu_factory_for_the_flow(menu_app):
    app, _ = menu_app((800, 480))
    shown = app.mode
    make = drill_menu_factory(app, sounds=Sounds(enabled=False))
    menu = make()
    assert menu.home is shown and menu.geometry == GEOMETRY
    game = menu.start(0)
    assert app.mode is game
    pygame.event.post(key(pygame.K_ESCAPE))
    app.tick()
    assert app.mode is menu


def test_real_plate_menu_has_no_autoplay(menu_app):
    app, _ = menu_app((800, 480), ListFeed(kind="hx711-lgpio"))
    menu = show_drill_menu(app, GEOMETRY, autoplay_skill="good", sounds=Sounds(enabled=False))
    game = menu.start(0)
    assert game.player is None


def test_menu_lists_the_engines_drills():
    items = available_items()
    assert {item.drill for item in items} == set(DRILLS)
    assert [i.stance_side for i in items if i.drill == "single-leg-hold"] in ([], ["left", "right"])
    assert DrillMenuMode.__init__  # the class is importable without a display


# -- sounds ----------------------------------------------------------------------------------------------------


def test_sounds_are_short_soft_tones():
    waves = synthesize(22050)
    assert set(waves) == set(VOLUMES)
    for cue, wave in waves.items():
        assert 0.01 < len(wave) / 22050 < 1.0, cue
        assert np.max(np.abs(wave)) <= VOLUMES[cue] + 1e-9
    assert np.max(np.abs(waves["lost_balance"])) < np.max(np.abs(waves["hit"]))  # the gentle one is softer


def test_sounds_play_through_the_mixer_when_there_is_one():
    sounds = Sounds()
    for cue in ("hit", "beat", None, "unknown"):
        sounds.play(cue)
    assert sounds.played == {"hit": 1, "beat": 1}
    if sounds.available:  # SDL_AUDIODRIVER=dummy opens a mixer that plays into nothing
        assert pygame.mixer.get_init()
    else:
        assert sounds.reason


def test_no_sound_card_prints_no_alsa_lines(tmp_path):
    """Without a sound card the mixer fails quietly: ALSA's eight C-library lines stay off the console."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "SDL_AUDIODRIVER"}
    code = ("import sys; from station.screen.sounds import Sounds; s = Sounds(); "
            "print('available', s.available); print('stderr works', file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60,
                          cwd=Path(__file__).resolve().parents[3])
    assert proc.returncode == 0, proc.stderr
    assert "ALSA" not in proc.stderr and "snd_" not in proc.stderr, proc.stderr
    assert "stderr works" in proc.stderr  # the console's stderr is given back


def test_the_hold_drill_says_whole_seconds():
    """'Hold it! 14.444 seconds.' is not how a person counts: the instruction and the card round it."""
    plate = SimulatedPlate(geometry=GEOMETRY, seed=3, realtime=False)
    feed = InProcessFeed(plate)
    live = LiveStation(feed, ForcePipeline(simulator_calibration(), GEOMETRY))
    drill = make_drill("single-leg-hold", geometry=GEOMETRY, rng=np.random.default_rng(3), stance_side="left",
                       params={"hold_s": 14.444})
    mode = GameMode(live, GEOMETRY, drill, sounds=Sounds(enabled=False),
                    player=AutoPlayer(skill="good", rng=np.random.default_rng(4), geometry=GEOMETRY))
    said = set()
    k = 0
    while mode.view.state not in ("round_summary", "done") and k < FPS * 240:
        k += 1
        for raw in feed.until(k / FPS):
            live.ingest(raw)
        mode.update()
        said.add(mode.view.instruction)
    assert "Hold it! 14 seconds." in said
    assert not any("14.4" in s for s in said)
    card = [f"{line.label}: {line.value}" for line in game_module.patient_summary(mode.view)]
    assert any(line.startswith("Time in the box: ") and line.endswith(" of 14 s") for line in card), card
    mode.close()


def test_the_patient_card_leaves_the_clinical_measures_to_the_therapist(display, artifacts):
    display((1280, 720))
    sim = Sim("reach")
    sim.run_until(lambda v: v.state == "done")
    labels = [line.label for line in game_module.patient_summary(sim.mode.view)]
    assert labels[0] == "Targets hit" and "Level reached" in labels and "Best streak" in labels
    for clinical in ("Reaction time", "Directional control", "Maximum reach"):
        assert clinical not in labels
    assert [line.label for line in sim.mode.view.summary][:2] == ["Targets hit", "Reaction time"]  # still stored


def test_the_reach_feedback_takes_the_instruction_line_not_the_plate(display, artifacts):
    """'You reached the ... target!' replaces the top line for a moment (no contradicting 'Come back to the
    middle' above it), and no banner covers the plate."""
    surface = display((1280, 720))
    sim = Sim("reach")
    sim.run_until(lambda v: sim.mode.cues["hit"] >= 1)
    sim.step()
    lay = sim.mode.layout(surface)
    sim.mode.draw(surface)
    shot(surface, artifacts, "game-reach-target-feedback-1280x720.png")
    message, colour = sim.mode._active_toast()
    assert message.startswith("You reached the ") and colour == GOOD
    # the feedback is drawn in the header, in green; the plate's lower part is not covered by a dark panel
    header = [surface.get_at((x, y))[:3] for x in range(lay.header.left, lay.header.right, 3)
              for y in range(lay.header.top, lay.header.bottom, 3)]
    assert GOOD in header
    bottom = pygame.Rect(lay.plate.left, lay.plate.bottom - lay.big * 2, lay.plate.width, lay.big * 2)
    sim.mode._toast = None
    sim.mode.draw(surface)
    without = [surface.get_at((x, y))[:3] for x in range(bottom.left, bottom.right, 7)
               for y in range(bottom.top, bottom.bottom, 7)]
    sim.mode._toast = (message, colour, sim.mode._t_s + 1.0)
    sim.mode.draw(surface)
    with_toast = [surface.get_at((x, y))[:3] for x in range(bottom.left, bottom.right, 7)
                  for y in range(bottom.top, bottom.bottom, 7)]
    assert with_toast == without


# -- drawing only what changed -------------------------------------------------------------------------------


@pytest.mark.parametrize("drill_name", DRILLS)
def test_drawing_only_what_changed_gives_the_whole_picture(drill_name, display):
    """Frame after frame the game redraws only what changed (the header, the panel, the moving cursor...);
    at any moment the screen must be exactly what a whole redraw on a clean surface gives."""
    size = (800, 480)
    surface = display(size)
    sim = Sim(drill_name, seed=3)
    checked = 0
    states = set()
    while sim.t_s < 25.0 and not sim.mode.over:
        sim.step()
        sim.mode.draw(surface)  # every screen frame, as the screen loop does
        if sim.k % 37 == 0:
            shown = pygame.surfarray.array3d(surface)
            cursor, buttons = sim.mode.cursor_px, list(sim.mode._buttons)
            sim.mode.invalidate()
            clean = pygame.Surface(size).convert()
            sim.mode.draw(clean)
            assert sim.mode.cursor_px == cursor and sim.mode._buttons == buttons
            whole = pygame.surfarray.array3d(clean)
            differ = int((shown != whole).any(axis=2).sum())
            assert differ == 0, f"{differ} pixels differ at {sim.t_s:.2f} s ({sim.mode.view.state})"
            sim.mode.invalidate()
            sim.mode.draw(surface)
            checked += 1
            states.add(sim.mode.view.state)
    assert checked >= 20 and "running" in states


def test_a_mode_drawn_in_between_makes_the_game_redraw_all(display):
    """The screen loop tells a game it comes back to (another screen drew over it) to redraw everything."""
    surface = display((800, 480))
    sim = Sim("reach")
    app = ScreenApp(sim.live, geometry=GEOMETRY, settings=ScreenSettings(fullscreen=False, width=800, height=480))
    app.surface = surface
    app.mode = sim.mode
    app.tick()
    other = type("Other", (), {"update": lambda self: None, "handle_event": lambda self, e: None,
                               "draw": lambda self, s: s.fill((255, 0, 255))})()
    app.mode = other
    app.tick()
    app.mode = sim.mode
    app.tick()
    assert (255, 0, 255) not in {tuple(c[:3]) for c in (surface.get_at((x, 5)) for x in range(0, 800, 50))}
