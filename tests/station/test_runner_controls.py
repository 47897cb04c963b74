"""The start/stop button records the plate; the LED follows the station's state."""

import time

import pytest
from gpiozero.pins.mock import MockFactory

from calibration.model import simulator_calibration
from hardware.controls import StationLight
from station.config import load_settings
from station.forces import ForcePipeline
from station.geometry import PlateGeometry
from station.live import LiveStation
from station.recording import read_recording
from station.runner import start_controls
from tests.doubles import ListFeed
from tests.station.test_live import frames


@pytest.fixture
def factory():
    f = MockFactory()
    yield f
    f.close()


def test_controls_disabled_by_default(factory):
    live = LiveStation(ListFeed(), ForcePipeline(simulator_calibration(), PlateGeometry()))
    assert start_controls(load_settings(), live, pin_factory=factory) is None


def test_button_starts_and_stops_a_recording(tmp_path, factory):
    settings = load_settings(data_dir=tmp_path, controls={"enabled": True})
    live = LiveStation(ListFeed(), ForcePipeline(simulator_calibration(), PlateGeometry()))
    buttons = start_controls(settings, live, pin_factory=factory)
    assert buttons is not None and buttons.controls.light is StationLight.IDLE
    button = factory.pin(settings.controls.button_gpio)
    button.drive_low()
    button.drive_high()
    deadline = time.monotonic() + 2
    while buttons.recorder is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert buttons.controls.light is StationLight.RUNNING
    for raw in frames(160):
        live.ingest(raw)
    time.sleep(0.1)  # past the button's debounce time
    button.drive_low()
    button.drive_high()
    while buttons.recorder is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert buttons.controls.light is StationLight.IDLE
    [saved] = (tmp_path / "recordings").glob("plate-*.csv")
    assert read_recording(saved).n_samples == 160
    live.feed.error = "hx711-lgpio: cell fl did not answer"
    buttons.update()
    assert buttons.controls.light is StationLight.FAULT
    buttons.close()
