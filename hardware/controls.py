"""The station's physical controls on gpiozero: start/stop button, status LED, buzzer.

The devices ask a pin factory for their pins, so tests pass gpiozero's
``MockFactory`` and the same code runs without a Pi. (gpiozero is too slow to
clock an HX711; it is the right tool for these.)

Wiring (docs/hardware.md): button between its GPIO and GND (internal pull-up),
LED through 330 ohm, active buzzer through an NPN transistor.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from gpiozero import LED, Button, Buzzer
from gpiozero.pins import Factory


class StationLight(enum.Enum):
    """What the status LED says."""

    OFF = "off"
    IDLE = "idle"          # short flash every 2 s: the station is on, nothing running
    RUNNING = "running"    # steady: a trial or recording is running
    FAULT = "fault"        # fast blink: the plate does not answer, or another fault


#: LED blink timings (on_s, off_s) per state; None = steady
_LIGHT_PATTERNS: dict[StationLight, tuple[float, float] | None] = {
    StationLight.IDLE: (0.1, 1.9),
    StationLight.RUNNING: None,
    StationLight.FAULT: (0.1, 0.1),
}

#: buzzer patterns: (on_s, off_s, count)
BEEPS: dict[str, tuple[float, float, int]] = {
    "countdown": (0.08, 0.0, 1),
    "go": (0.35, 0.0, 1),
    "start": (0.08, 0.08, 2),
    "stop": (0.25, 0.0, 1),
    "success": (0.08, 0.06, 3),
    "alert": (0.5, 0.2, 2),
}


class StationControls:
    """Start/stop button, status LED and buzzer.

    Parameters
    ----------
    button_gpio, led_gpio, buzzer_gpio : int
        BCM GPIO numbers.
    on_press : callable, optional
        Called (in gpiozero's thread) when the button is pressed: start or stop.
    on_hold : callable, optional
        Called when the button is held for ``hold_s`` seconds: abort.
    pin_factory : gpiozero.pins.Factory, optional
        Where the pins come from; gpiozero's default (lgpio on a Pi) when omitted.
    """

    def __init__(
        self,
        *,
        button_gpio: int = 16,
        led_gpio: int = 12,
        buzzer_gpio: int = 13,
        on_press: Callable[[], None] | None = None,
        on_hold: Callable[[], None] | None = None,
        hold_s: float = 2.0,
        pin_factory: Factory | None = None,
    ) -> None:
        pins = {"button_gpio": button_gpio, "led_gpio": led_gpio, "buzzer_gpio": buzzer_gpio}
        if len(set(pins.values())) != 3:
            raise ValueError(f"the button, LED and buzzer need three different GPIOs, got {pins}")
        self.button = Button(button_gpio, pull_up=True, bounce_time=0.05, hold_time=hold_s, pin_factory=pin_factory)
        self.led = LED(led_gpio, pin_factory=pin_factory)
        self.buzzer = Buzzer(buzzer_gpio, pin_factory=pin_factory)
        self.light = StationLight.OFF
        if on_press is not None:
            self.button.when_pressed = lambda: on_press()
        if on_hold is not None:
            self.button.when_held = lambda: on_hold()

    def show(self, light: StationLight) -> None:
        """Set the status LED's pattern."""
        self.light = light
        if light is StationLight.OFF:
            self.led.off()
            return
        pattern = _LIGHT_PATTERNS[light]
        if pattern is None:
            self.led.on()
        else:
            self.led.blink(on_time=pattern[0], off_time=pattern[1], background=True)

    def beep(self, name: str) -> None:
        """Sound one of :data:`BEEPS` in the background."""
        try:
            on_s, off_s, count = BEEPS[name]
        except KeyError:
            raise ValueError(f"unknown beep {name!r}; known: {', '.join(BEEPS)}") from None
        self.buzzer.beep(on_time=on_s, off_time=off_s or on_s, n=count, background=True)

    def close(self) -> None:
        for device in (self.button, self.led, self.buzzer):
            device.close()

    def __enter__(self) -> StationControls:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
