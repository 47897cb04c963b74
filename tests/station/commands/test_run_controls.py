"""The start button starts and aborts the tests; the LED follows the station's state."""

import time

import pytest
from gpiozero.pins.mock import MockFactory

from calibration.model import simulator_calibration
from hardware.controls import StationLight
from hardware.sim.plate import SimulatedPlate
from station.clinic.controller import TrialController
from station.clinic.visit import Visit
from station.commands.run import start_controls
from station.core.config import load_settings
from station.core.geometry import PlateGeometry
from station.live.pipeline import LiveStation
from station.signal.forces import ForcePipeline
from station.storage import open_database
from station.storage.trials import list_trials
from tests.doubles import ListFeed, SimFeed


@pytest.fixture
def factory():
    f = MockFactory()
    yield f
    f.close()


def test_controls_disabled_by_default(factory):
    live = LiveStation(ListFeed(), ForcePipeline(simulator_calibration(), PlateGeometry()))
    assert start_controls(load_settings(), live, pin_factory=factory) is None


def _press(factory, settings) -> None:
    button = factory.pin(settings.controls.button_gpio)
    button.drive_low()
    button.drive_high()
    time.sleep(0.1)  # past the button's debounce time


def _wait(condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_button_starts_the_next_test_and_aborts_it(tmp_path, factory):
    settings = load_settings(data_dir=tmp_path, controls={"enabled": True})
    live = LiveStation(SimFeed(SimulatedPlate(seed=3, realtime=False), speed=2.0),
                       ForcePipeline(simulator_calibration(), PlateGeometry()))
    live.start()
    db = open_database(data_dir=tmp_path)
    controller = TrialController(live, db, geometry=PlateGeometry(), simulated_patient="healthy")
    visit = Visit(controller, db)
    buttons = start_controls(settings, live, pin_factory=factory, visit=visit)
    try:
        assert buttons is not None and buttons.controls.light is StationLight.IDLE
        _press(factory, settings)  # nobody chosen: nothing starts
        assert not controller.running
        visit.create("P-0099")
        visit.plan_single_leg("right")
        _press(factory, settings)
        _wait(lambda: controller.running)
        buttons.update()
        assert buttons.controls.light is StationLight.RUNNING
        assert controller.snapshot().stance_side == "right"
        _press(factory, settings)
        _wait(lambda: not controller.running)
        buttons.update()
        assert buttons.controls.light is StationLight.IDLE
        with db.sessions() as session:
            (trial,) = list_trials(session, "P-0099")
            assert trial.state.value == "aborted" and "start button" in trial.state_detail
        assert visit.next_side() == "right"  # an aborted leg is repeated
        live.feed.error = "hx711-lgpio: cell fl did not answer"
        buttons.update()
        assert buttons.controls.light is StationLight.FAULT
    finally:
        buttons.close()
        controller.close()
        live.stop()
        db.close()
