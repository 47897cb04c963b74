"""The single-leg test on the patient screen, headless: the whole flow, a screenshot of every screen.

The station's parts are real (live station, trial controller, SQLite, the
screen's modes in an SDL dummy window); the plate is the simulated one, run
faster than real time, and the simulated patient performs the test.
"""

from __future__ import annotations

import time

import numpy as np
import pygame
import pytest

from calibration.model import simulator_calibration
from hardware.sim.plate import SimulatedPlate
from station.clinic.controller import TrialController
from station.clinic.visit import Visit
from station.core.config import ScreenSettings
from station.core.geometry import PlateGeometry
from station.live.pipeline import LiveStation
from station.screen.app import ScreenApp
from station.screen.flow import HomeMode, NewPatientMode, PatientMode, ResultMode, SideMode, TrialMode
from station.signal.forces import ForcePipeline
from station.storage import open_database
from station.storage.patients import create_patient
from station.storage.trials import list_trials
from tests.doubles import SimFeed

GEOMETRY = PlateGeometry()


@pytest.fixture
def station(tmp_path):
    """make(profile, seed, size) -> (app, controller, db); everything stopped at the end."""
    made = []

    def make(profile: str = "healthy", seed: int = 5, size: tuple[int, int] = (1280, 720), speed: float = 12.0,
             pelvis=None):
        db = open_database(data_dir=tmp_path / f"data-{len(made)}")
        with db.sessions() as session:
            create_patient(session, "P-0007", birth_year=1961, affected_side="right")
            session.commit()
        live = LiveStation(SimFeed(SimulatedPlate(seed=seed, realtime=False), speed=speed),
                           ForcePipeline(simulator_calibration(), GEOMETRY))
        live.start()
        controller = TrialController(live, db, geometry=GEOMETRY, simulated_patient=profile,
                                     rng=np.random.default_rng(seed), pelvis=pelvis)
        visit = Visit(controller, db)
        app = ScreenApp(live, geometry=GEOMETRY, visit=visit,
                        settings=ScreenSettings(fullscreen=False, width=size[0], height=size[1], fps=120))
        app.open()
        made.append((app, controller, live, db))
        return app, controller, db

    yield make
    for app, controller, live, db in made:
        controller.close()
        app.close()
        live.stop()
        db.close()


def key(app: ScreenApp, k: int, text: str = "") -> None:
    pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=k, mod=0, unicode=text, scancode=0))
    app.tick()


def type_text(app: ScreenApp, text: str) -> None:
    for ch in text:
        key(app, pygame.key.key_code(ch.lower()) if ch.isalnum() else pygame.K_MINUS, ch)


def tick_until(app: ScreenApp, condition, *, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out on the {type(app.mode).__name__} screen"
        app.tick()


def state(app: ScreenApp) -> str:
    return app.ctx.controller.snapshot().state


def test_the_whole_single_leg_flow_on_the_screen(station, artifacts):
    app, controller, db = station("weak_abductors", seed=8)
    app.tick()
    assert isinstance(app.mode, HomeMode)
    app.screenshot(artifacts / "flow-1-home.png")

    key(app, pygame.K_RETURN)
    assert isinstance(app.mode, PatientMode)
    app.screenshot(artifacts / "flow-2-patients.png")

    key(app, pygame.K_RETURN)  # "+ New patient"
    assert isinstance(app.mode, NewPatientMode)
    type_text(app, "Knee 1")  # a space is refused by the code's rules: the screen says so
    key(app, pygame.K_TAB)
    type_text(app, "1950")
    key(app, pygame.K_RETURN)
    assert isinstance(app.mode, NewPatientMode) and "may hold only" in app.mode.message
    app.screenshot(artifacts / "flow-3-new-patient-refused.png")
    key(app, pygame.K_TAB)
    for _ in range(6):
        key(app, pygame.K_BACKSPACE)
    type_text(app, "K-12")
    app.screenshot(artifacts / "flow-3-new-patient.png")
    key(app, pygame.K_RETURN)
    assert isinstance(app.mode, SideMode)
    assert app.ctx.visit.patient.code == "K-12" and app.ctx.visit.patient.age_years is not None
    app.screenshot(artifacts / "flow-4-side.png")

    key(app, pygame.K_RETURN)  # left leg first
    assert isinstance(app.mode, TrialMode)
    tick_until(app, lambda: state(app) == "baseline" or state(app) == "countdown")
    app.screenshot(artifacts / "flow-5-baseline.png")
    tick_until(app, lambda: state(app) == "countdown")
    app.screenshot(artifacts / "flow-6-countdown.png")
    tick_until(app, lambda: state(app) == "await_lift")
    app.screenshot(artifacts / "flow-7-lift.png")
    tick_until(app, lambda: state(app) == "hold")
    app.screenshot(artifacts / "flow-8-hold.png")
    tick_until(app, lambda: "touchdown" in app.cues_played)  # the weak patient puts the foot down
    app.tick()
    app.screenshot(artifacts / "flow-9-touchdown.png")
    centre = app.surface.get_at((5, app.surface.get_height() // 2))[:3]
    assert centre == (255, 96, 96), "the red touchdown frame is drawn"
    tick_until(app, lambda: isinstance(app.mode, ResultMode), timeout_s=60)
    app.tick()
    app.screenshot(artifacts / "flow-10-result-left.png")
    result = app.mode.snapshot.result
    assert result["stance_side"] == "left" and result["completed"] is False
    assert app.cues_played.count("countdown") == 3 and "go" in app.cues_played

    key(app, pygame.K_RETURN)  # "Next: right leg"
    assert isinstance(app.mode, TrialMode)
    tick_until(app, lambda: isinstance(app.mode, ResultMode), timeout_s=60)
    app.tick()
    app.screenshot(artifacts / "flow-11-result-right.png")
    summary = app.ctx.visit.summary()
    assert summary["comparison"] is not None and summary["complete"]
    assert [label for label, _ in app.mode.items()] == ["Finish"]
    key(app, pygame.K_RETURN)
    assert isinstance(app.mode, HomeMode)

    with db.sessions() as session:
        trials = list_trials(session, "K-12")
        assert sorted((t.stance_side.value, t.state.value) for t in trials) == [("left", "complete"),
                                                                              ("right", "complete")]


def test_the_start_button_starts_the_next_leg_and_aborts(station, artifacts):
    app, controller, db = station("healthy", seed=9, speed=4.0)
    app.tick()
    assert app.ctx.visit.press() == "nothing"  # no patient chosen: nothing to start
    app.press()  # on a menu the button selects: the single-leg test
    app.tick()
    assert isinstance(app.mode, PatientMode) and not controller.running
    key(app, pygame.K_DOWN)  # the existing patient
    app.press()  # the button selects
    app.tick()
    assert isinstance(app.mode, SideMode)
    key(app, pygame.K_DOWN)
    app.press()  # right leg first: the test starts
    app.tick()
    assert isinstance(app.mode, TrialMode) and controller.running
    assert controller.snapshot().stance_side == "right"
    app.press()  # and the button aborts it
    tick_until(app, lambda: isinstance(app.mode, ResultMode))
    app.tick()
    app.screenshot(artifacts / "flow-aborted.png")
    assert app.mode.snapshot.outcome == "aborted"
    assert [label for label, _ in app.mode.items()][0] == "Repeat: right leg"
    with db.sessions() as session:
        (trial,) = list_trials(session, "P-0007")
        assert trial.state.value == "aborted" and "start button" in trial.state_detail


def test_a_test_started_elsewhere_is_shown(station, artifacts):
    """A test started from the web page (here: straight on the controller) takes over the screen."""
    app, controller, _ = station("healthy", seed=10, size=(800, 480))
    app.tick()
    app.screenshot(artifacts / "flow-small-home.png")
    controller.start(patient_code="P-0007", protocol="single-leg", stance_side="left")
    app.tick()
    assert isinstance(app.mode, TrialMode) and app.ctx.visit.patient.code == "P-0007"
    tick_until(app, lambda: state(app) == "hold")
    for _ in range(30):
        app.tick()
    app.screenshot(artifacts / "flow-small-hold.png")
    tick_until(app, lambda: isinstance(app.mode, ResultMode), timeout_s=60)
    app.tick()
    app.screenshot(artifacts / "flow-small-result.png")
    assert app.mode.snapshot.result["completed"] is True
    assert [label for label, _ in app.mode.items()][0] == "Next: right leg"


def test_games_for_a_patient_follow_the_programme_and_are_stored(station, artifacts):
    from station.clinic.controller import TrialBusy
    from station.screen.game import GameMode
    from station.screen.menu import DrillMenuMode
    from station.storage.patients import update_patient

    app, controller, db = station("healthy", seed=12, speed=25.0)
    with db.sessions() as session:
        update_patient(session, "P-0007", programme={"name": "week 1", "items": [
            {"drill": "symmetry", "rounds": 1, "stance_side": "right"}, {"drill": "reach", "rounds": 1}]})
    app.tick()
    key(app, pygame.K_DOWN)
    key(app, pygame.K_RETURN)  # Balance games
    key(app, pygame.K_DOWN)
    key(app, pygame.K_DOWN)  # past "+ New patient" and "Play without saving"
    key(app, pygame.K_RETURN)
    assert isinstance(app.mode, DrillMenuMode) and app.mode.title == "Games for P-0007"
    assert [i.title for i in app.mode.items[:2]] == ["1. Weight shift", "2. Reach"]
    app.tick()
    app.screenshot(artifacts / "flow-games-menu.png")
    key(app, pygame.K_RETURN)  # the programme's first drill
    assert isinstance(app.mode, GameMode) and app.mode.drill.name == "symmetry"
    with pytest.raises(TrialBusy, match="game"):  # the web page cannot start a test meanwhile
        controller.start(patient_code="P-0007", protocol="single-leg", stance_side="left")
    tick_until(app, lambda: app.mode.over, timeout_s=60)
    app.screenshot(artifacts / "flow-games-done.png")
    key(app, pygame.K_RETURN)  # "Menu"
    assert isinstance(app.mode, DrillMenuMode)
    with db.sessions() as session:
        (trial,) = list_trials(session, "P-0007")
        assert trial.protocol == "drill-symmetry" and trial.state.value == "complete"
        assert trial.stance_side.value == "right" and trial.metrics["rounds_completed"] == 1
        assert trial.n_frames > 100
    assert app.ctx.visit.last_level("symmetry") == trial.metrics["level"]  # the next game starts there
    controller.start(patient_code="P-0007", protocol="single-leg", stance_side="left")  # the plate is free again
    controller.abort()


def test_a_drill_started_from_the_web_page_is_played_on_the_screen(station, artifacts):
    from station.screen.game import GameMode

    app, controller, db = station("healthy", seed=13, speed=25.0)
    app.tick()
    trial_id = controller.start(patient_code="P-0007", protocol="drill:reach", params={"rounds": 1})
    app.tick()
    assert isinstance(app.mode, GameMode) and app.mode.drill.name == "reach"
    tick_until(app, lambda: app.mode.view.state == "running")
    tick_until(app, lambda: app.mode.cues["hit"] >= 2, timeout_s=60)  # the controller's drill, heard here
    app.screenshot(artifacts / "flow-web-drill.png")
    tick_until(app, lambda: app.mode.over, timeout_s=60)
    assert controller.wait(5.0)
    key(app, pygame.K_RETURN)  # "Menu": back to the start screen
    assert isinstance(app.mode, HomeMode)
    with db.sessions() as session:
        (trial,) = list_trials(session, "P-0007")
        assert trial.id == trial_id and trial.state.value == "complete" and trial.metrics["hits"] >= 2


def test_a_game_cut_short_by_the_station_stopping_is_not_stored_as_stopped_on_the_screen(station):
    from station.screen.game import GameMode

    app, controller, db = station("healthy", seed=14, speed=25.0)
    app.tick()
    key(app, pygame.K_DOWN)
    key(app, pygame.K_RETURN)  # Balance games
    key(app, pygame.K_DOWN)
    key(app, pygame.K_DOWN)  # past "+ New patient" and "Play without saving"
    key(app, pygame.K_RETURN)  # P-0007
    key(app, pygame.K_RETURN)  # the first game
    assert isinstance(app.mode, GameMode)
    for _ in range(30):
        app.tick()
    app.close("the station was stopped (Ctrl-C)")  # what the runner does on Ctrl-C
    with db.sessions() as session:
        (trial,) = list_trials(session, "P-0007")
    assert trial.state.value == "aborted"
    assert trial.state_detail == "the station was stopped (Ctrl-C)"


def test_new_patient_from_the_games_goes_back_to_the_games_and_home_has_no_badge(station, artifacts):
    from station.screen.flow import GamesPatientMode

    app, controller, db = station("healthy", seed=15)
    app.tick()
    key(app, pygame.K_DOWN)
    key(app, pygame.K_RETURN)  # Balance games
    assert isinstance(app.mode, GamesPatientMode)
    app.screenshot(artifacts / "flow-games-who.png")
    # codes only: no age, affected side or last visit for whoever stands on the plate
    assert app.mode.items()[2] == ("P-0007", "")
    key(app, pygame.K_RETURN)  # "+ New patient"
    assert isinstance(app.mode, NewPatientMode)
    key(app, pygame.K_ESCAPE)
    assert isinstance(app.mode, GamesPatientMode), "Esc goes back to the games' choice, not the test's"
    key(app, pygame.K_DOWN)
    key(app, pygame.K_DOWN)
    key(app, pygame.K_RETURN)  # P-0007 plays
    assert app.ctx.visit.patient.code == "P-0007"
    key(app, pygame.K_ESCAPE)  # the games' menu -> back
    for _ in range(3):
        if isinstance(app.mode, HomeMode):
            break
        key(app, pygame.K_ESCAPE)
    assert isinstance(app.mode, HomeMode)
    app.tick()
    app.screenshot(artifacts / "flow-home-after-games.png")
    # no badge of the last patient on the start screen: its top-left corner is the background
    assert app.surface.get_at((40, 30))[:3] == app.surface.get_at((5, 5))[:3]


def test_the_start_screen_forgets_the_patient_after_finish(station):
    app, controller, db = station("healthy", seed=16)
    app.tick()
    key(app, pygame.K_RETURN)  # single-leg test
    key(app, pygame.K_DOWN)
    key(app, pygame.K_RETURN)  # P-0007
    assert isinstance(app.mode, SideMode)
    key(app, pygame.K_ESCAPE)  # back to the patients
    key(app, pygame.K_ESCAPE)  # home
    assert isinstance(app.mode, HomeMode)
    assert app.ctx.visit.patient is None


def test_the_start_screen_is_drawn_again_only_when_it_changes(station, monkeypatch):
    """The start screen stands for hours: the loop draws it once and again only when it changes (a key)."""
    app, _, _ = station()
    drawn = []
    flip = pygame.display.flip
    monkeypatch.setattr(pygame.display, "flip", lambda: (drawn.append(app.mode.selected), flip()))
    for _ in range(5):
        app.tick()
    assert drawn == [0]
    before = pygame.surfarray.array3d(app.surface)
    key(app, pygame.K_DOWN)
    assert drawn == [0, 1]
    assert (pygame.surfarray.array3d(app.surface) != before).any()
    app.tick()
    assert drawn == [0, 1] and app.frames_drawn == 7


def test_the_patient_screen_says_when_trials_wait_to_upload(station):
    """While the clinic database is unreachable the screen's status says so (the station's spool)."""

    class Spool:
        online = True

        def status(self):
            return {"online": self.online, "waiting_trials": 2,
                    "message": "offline: 2 trials waiting to upload" if self.online is False else ""}

    app, controller, _ = station()
    controller.spool = Spool()
    app.tick()
    assert app.storage_line() == ""
    controller.spool.online = False
    app._storage_cache = None  # (looked at every 2 s)
    app.tick()
    assert app.storage_line() == "offline: 2 trials waiting to upload"


def test_the_pelvis_gauge_shows_the_drop_during_the_hold(station, artifacts):
    """Issue 14: with the (simulated) pelvis sensor, the hold screen shows the lifted side's drop."""
    from hardware.sim.pelvis import SimulatedPelvis
    from station.screen.flow import pelvis_gauge_text

    app, controller, db = station("weak_abductors", seed=8, pelvis=SimulatedPelvis())
    app.tick()
    app.ctx.visit.choose("P-0007")
    app.ctx.visit.plan_single_leg("left")
    app.ctx.visit.start_next()  # as the start button does; the screen follows the running test
    tick_until(app, lambda: isinstance(app.mode, TrialMode))
    tick_until(app, lambda: state(app) == "hold")
    tick_until(app, lambda: (app.ctx.controller.snapshot().status.hold_elapsed_s or 0) > 4.0)
    app.tick()
    pelvis = app.mode.snapshot.pelvis
    assert pelvis.drop_deg is not None and pelvis.drop_deg > 2.0, pelvis
    app.screenshot(artifacts / "flow-pelvis-gauge.png")
    assert pelvis_gauge_text(4.2, "right", 2.0) == ("Pelvis: right side 4° low", "bad")
    assert pelvis_gauge_text(-1.2, "right", 2.0)[1] == "good"
    assert pelvis_gauge_text(0.1, "left", 2.0) == ("Pelvis level", "good")
    controller.abort("test over")
    controller.wait(10.0)


def test_with_the_pelvis_sensor_the_games_menu_offers_the_pelvis_drills_and_they_are_played(station, artifacts):
    """Issue 14: the patient's own menu offers hip dip and the level-pelvis hold when a pelvis sensor is worn
    (only then); the game is fed the sensor's angle, and a played game is stored as a trial of the patient."""
    from hardware.sim.pelvis import SimulatedPelvis
    from station.screen.flow import GamesMenu
    from station.screen.game import GameMode
    from station.screen.menu import DrillMenuMode

    app, controller, db = station("healthy", seed=12, speed=25.0)
    app.ctx.visit.choose("P-0007")
    plain = GamesMenu(app.ctx)
    assert not {"hip-dip", "level-pelvis-hold"} & {i.drill for i in plain.items}  # no sensor: not offered

    app, controller, db = station("healthy", seed=12, speed=25.0, pelvis=SimulatedPelvis())
    app.tick()
    app.ctx.visit.choose("P-0007")
    menu = GamesMenu(app.ctx)
    app.switch(menu)
    app.tick()
    assert isinstance(app.mode, DrillMenuMode)
    titles = [i.title for i in menu.items]
    assert "Hip dip, left leg" in titles and "Level pelvis, right leg" in titles
    app.screenshot(artifacts / "flow-games-menu-pelvis.png")
    game = menu.start(titles.index("Hip dip, left leg"))
    assert isinstance(app.mode, GameMode) and app.mode.drill.name == "hip-dip"
    tick_until(app, lambda: app.mode.view.state == "running", timeout_s=60)
    tick_until(app, lambda: app.mode.cues["hit"] >= 2, timeout_s=90)  # two dips counted, seen by the sensor
    app.screenshot(artifacts / "flow-hip-dip.png")
    assert game.drill.name == "hip-dip" and game.drill.pelvis is not None  # fed the station's sensor
