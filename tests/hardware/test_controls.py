"""The gpiozero controls against gpiozero's mock pin factory."""

import threading
import time

import pytest
from gpiozero.pins.mock import MockFactory

from hardware.controls import BEEPS, StationControls, StationLight


@pytest.fixture
def factory():
    f = MockFactory()
    yield f
    f.close()


def test_button_press_and_hold_call_back(factory):
    pressed, held = threading.Event(), threading.Event()
    with StationControls(on_press=pressed.set, on_hold=held.set, hold_s=0.1, pin_factory=factory) as controls:
        pin = factory.pin(16)
        assert not controls.button.is_pressed
        pin.drive_low()  # the button connects the GPIO to GND
        assert pressed.wait(1.0)
        assert held.wait(1.0)
        pin.drive_high()
        assert not controls.button.is_pressed


def test_led_states(factory):
    with StationControls(pin_factory=factory) as controls:
        led_pin = factory.pin(12)
        controls.show(StationLight.RUNNING)
        assert led_pin.state
        controls.show(StationLight.OFF)
        assert not led_pin.state
        controls.show(StationLight.FAULT)  # 0.1 s on, 0.1 s off
        deadline = time.monotonic() + 1.0
        seen = set()
        while time.monotonic() < deadline and len(seen) < 2:
            seen.add(bool(led_pin.state))
            time.sleep(0.01)
        assert seen == {True, False}, "the fault light must blink"
        controls.show(StationLight.OFF)


def test_beep_pattern(factory):
    with StationControls(pin_factory=factory) as controls:
        buzzer_pin = factory.pin(13)
        buzzer_pin.clear_states()
        controls.beep("start")  # two short beeps
        on_s, off_s, count = BEEPS["start"]
        time.sleep(count * (on_s + off_s) + 0.3)  # let the background beeps finish
        on_edges = [s.state for s in buzzer_pin.states].count(True)
        assert on_edges == count
        assert not buzzer_pin.state


def test_bad_arguments_are_named(factory):
    with pytest.raises(ValueError, match="three different GPIOs"):
        StationControls(button_gpio=5, led_gpio=5, buzzer_gpio=6, pin_factory=factory)
    with StationControls(pin_factory=factory) as controls, pytest.raises(ValueError, match="unknown beep 'boop'"):
        controls.beep("boop")
