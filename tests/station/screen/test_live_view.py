"""The patient screen, headless (SDL dummy driver): draws, steers the simulated person, saves screenshots."""

import pygame
import pytest

from calibration.model import simulator_calibration
from station.core.config import ScreenSettings
from station.core.geometry import PlateGeometry
from station.live.pipeline import LiveStation
from station.screen.app import ScreenApp
from station.screen.live_view import LiveMode
from station.signal.forces import ForcePipeline
from tests.doubles import ListFeed
from tests.station.live.test_pipeline import frames


@pytest.fixture
def screen():
    apps = []

    def make(feed):
        live = LiveStation(feed, ForcePipeline(simulator_calibration(), PlateGeometry()))
        app = ScreenApp(live, geometry=PlateGeometry(), settings=ScreenSettings(fullscreen=False, width=1280,
                                                                                height=720))
        app.open()
        apps.append(app)
        return app, live

    yield make
    for app in apps:
        app.close()


def pixel_at_mm(app, x_mm, y_mm):
    pv = app.mode.plate_view(app.surface)
    return app.surface.get_at(pv.to_px(x_mm, y_mm))[:3]


def test_live_screen_draws_the_cop_where_it_is(screen, artifacts):
    app, live = screen(ListFeed())
    for raw in frames(120, fz_n=720.0, x_mm=-60.0, y_mm=30.0):
        live.ingest(raw)
    app.tick()
    app.screenshot(artifacts / "screen-live-standing.png")
    assert pixel_at_mm(app, -60.0, 30.0) == (255, 122, 41)  # the COP dot's colour
    assert app.frames_drawn == 1


def test_empty_plate_screen(screen, artifacts):
    app, _ = screen(ListFeed())
    app.tick()
    app.screenshot(artifacts / "screen-live-empty.png")
    assert pixel_at_mm(app, 0, 0) != (255, 122, 41)


def test_the_empty_plate_is_drawn_once_then_only_when_something_changes(screen, monkeypatch):
    """Idle on the live view: nothing moves while the plate is empty, so nothing is drawn again until the
    status line changes or someone steps on; then every frame is drawn (the cursor moves)."""
    app, live = screen(ListFeed())
    draws = []
    original = app.mode.draw
    monkeypatch.setattr(app.mode, "draw", lambda surface: (draws.append(1), original(surface)))
    for _ in range(5):
        app.tick()
    assert len(draws) == 1
    app.mode._status_cache = (app.mode._status_cache[0], {**app.mode._status_cache[1], "dropped_frames": 3})
    app.tick()
    app.tick()
    assert len(draws) == 2  # the status line changed
    for raw in frames(40, fz_n=720.0, x_mm=-60.0, y_mm=30.0):
        live.ingest(raw)
    for _ in range(3):
        app.tick()
    assert len(draws) == 5 and pixel_at_mm(app, -60.0, 30.0) == (255, 122, 41)


def test_a_still_screen_ticks_slower_until_something_changes(screen):
    from station.screen.app import IDLE_AFTER_S, IDLE_FPS

    app, live = screen(ListFeed())
    fps = app.settings.fps
    for _ in range(int(IDLE_AFTER_S * fps) + 1):  # the empty plate: nothing to draw after the first frame
        app.tick()
    assert app.frame_rate() == IDLE_FPS < fps
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_LEFT, mod=0))  # a key (a touch): at once
    app.tick()
    assert app.frame_rate() == fps
    for _ in range(int(IDLE_AFTER_S * fps) + 1):
        app.tick()
    assert app.frame_rate() == IDLE_FPS
    for raw in frames(20, fz_n=720.0):  # someone steps on: the cursor moves, every frame is drawn
        live.ingest(raw)
    app.tick()
    assert app.frame_rate() == fps


def test_real_plate_screen_shows_warnings(screen, artifacts, monkeypatch):
    """A real plate with only the built-in calibration: the screen says, in the warning colour at the top,
    that the plate is not calibrated, and says what to do."""
    from station.screen import live_view, view

    drawn = []
    original = live_view.widgets.text

    def recording_text(surface, message, pos, **kw):
        drawn.append((message, pos, kw.get("colour")))
        return original(surface, message, pos, **kw)

    monkeypatch.setattr(live_view.widgets, "text", recording_text)
    app, live = screen(ListFeed(kind="hx711-lgpio", description="HX711 plate, shared clock (lgpio)"))
    for raw in frames(60):
        live.ingest(raw)
    app.tick()
    app.screenshot(artifacts / "screen-live-uncalibrated.png")
    warnings = [(message, pos) for message, pos, colour in drawn if colour == view.WARN]
    assert [m for m, _ in warnings] == ["The plate is not calibrated: run 'balance-station calibrate'."]
    (_, (x, y)), = warnings
    assert x == app.surface.get_width() // 2 and y < app.surface.get_height() // 10  # centred, at the top
    band = [app.surface.get_at((px, py))[:3] for px in range(0, app.surface.get_width(), 2)
            for py in range(y, y + 30, 2)]
    assert view.WARN in band  # and it is really on the screen


def test_arrow_keys_and_mouse_steer_the_simulated_person(screen):
    app, live = screen(ListFeed())
    app.tick()
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_RIGHT, mod=0))
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_UP, mod=0))
    app.tick()
    assert live.feed.commands[-2:] == [("lean_to", {"x_mm": 10.0, "y_mm": 0.0}), ("lean_to", {"x_mm": 10.0,
                                                                                              "y_mm": 10.0})]
    pv = app.mode.plate_view(app.surface)
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, button=1, pos=pv.to_px(-80.0, 40.0)))
    app.tick()
    name, params = live.feed.commands[-1]
    assert name == "lean_to" and params == pytest.approx({"x_mm": -80.0, "y_mm": 40.0}, abs=2.0)
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_SPACE, mod=0))
    app.tick()
    assert live.feed.commands[-1] == ("behaviour", {"name": "step_off"})


def test_real_plate_ignores_steering(screen):
    app, live = screen(ListFeed(kind="hx711-lgpio"))
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_RIGHT, mod=0))
    app.tick()
    assert live.feed.commands == []


def test_ctrl_q_quits(screen):
    app, _ = screen(ListFeed())
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_q, mod=pygame.KMOD_CTRL))
    app.tick()
    assert app.quit_requested


def test_plate_view_round_trip():
    view_ = LiveMode(None, PlateGeometry()).plate_view(pygame.Surface((1280, 720)))
    assert view_.to_mm(view_.to_px(123.0, -45.0)) == pytest.approx((123.0, -45.0), abs=1.0)


def test_menus_and_games_share_one_typeface():
    """One face for the whole patient screen, with a real bold where the system has one (DejaVu Sans on
    Raspberry Pi OS), not pygame's bundled font smeared bold ('SIMULAT ED PLAT E')."""
    import pygame

    from station.screen import widgets

    pygame.font.init()
    assert widgets.face(30, True) is widgets.face(30, True)
    # the menus' layout sizes are 1.45 times the type size
    assert widgets.menu_size(44) == round(44 / widgets.BUNDLED_SCALE)
    path = widgets._face_path(True)
    if path is not None:  # a TrueType bold face: no synthetic bold on top of it
        assert "bold" in path.lower()


def test_one_toolkit_draws_the_words_of_every_screen():
    """The text, banner, pill, button, wrap and paragraph of every screen are the ones of
    :mod:`station.screen.widgets`: no screen module defines its own."""
    import inspect

    from station.screen import app, calibration, flow, game, live_view, menu, view, widgets

    helpers = {"font", "face", "rendered", "text", "banner", "pill", "button", "wrap", "balanced", "paragraph",
               "fit_size", "fit_lines", "disc", "ring", "tick_mark", "box"}
    for module in (app, calibration, flow, game, live_view, menu, view):
        own = {name for name, f in inspect.getmembers(module, inspect.isfunction) if f.__module__ == module.__name__}
        assert not own & helpers, (module.__name__, own & helpers)
    assert game.text is widgets.text and menu.pill is widgets.pill


def test_a_big_panel_is_drawn_at_720_lines_and_scaled_by_sdl():
    """A 1920x1080 panel gets a 1280x720 picture (SDL scales it up; with the dummy driver the window is just
    the drawn size); smaller screens are drawn at their own size."""
    from station.screen.window import logical_size, open_display

    assert logical_size((1920, 1080)) == (1280, 720)
    assert logical_size((2560, 1440)) == (1280, 720)
    assert logical_size((1920, 1200)) == (1152, 720)
    assert logical_size((1280, 720)) == (1280, 720)
    assert logical_size((800, 480)) == (800, 480)
    surface = open_display(ScreenSettings(fullscreen=False, width=1920, height=1080))
    try:
        assert surface.get_size() == (1280, 720)
    finally:
        pygame.display.quit()
