"""A fake ``RPi.GPIO`` module on a :class:`~hardware.fakes.board.Board`.

The part of RPi.GPIO 0.7 the ``hx711`` package and the per-board backend use,
with the real constants and the real errors for the usual mistakes:

* ``setmode(BCM | BOARD)``, ``getmode()``, ``setwarnings(flag)``;
* ``setup(channel, direction, pull_up_down=PUD_OFF, initial=-1)``, with
  ``channel`` an int or a list/tuple of ints;
* ``output(channel, value)``, ``input(channel)`` (returns 0 or 1);
* ``cleanup(channel=None)``;
* constants ``BCM`` 11, ``BOARD`` 10, ``OUT`` 0, ``IN`` 1, ``HIGH`` 1,
  ``LOW`` 0, ``PUD_OFF`` 20, ``PUD_DOWN`` 21, ``PUD_UP`` 22, ``RISING`` 31,
  ``FALLING`` 32, ``BOTH`` 33.

Every call that touches a line costs ``clock.gpio_call()`` and is counted in
``module.calls``.
"""

from __future__ import annotations

import types
import warnings
from collections import Counter
from collections.abc import Iterable
from typing import Any

from hardware.fakes.board import GPIO_BY_HEADER_PIN, Board

__all__ = ["make_rpi_gpio"]

VERSION = "0.7.1"
BOARD = 10
BCM = 11
OUT = 0
IN = 1
LOW = 0
HIGH = 1
PUD_OFF = 20
PUD_DOWN = 21
PUD_UP = 22
RISING = 31
FALLING = 32
BOTH = 33
UNKNOWN = -1
RPI_REVISION = 3
RPI_INFO = {"P1_REVISION": 3, "REVISION": "c03111", "TYPE": "Pi 4 Model B", "MANUFACTURER": "Sony",
            "PROCESSOR": "BCM2711", "RAM": "4G"}

_PULL_NAME = {PUD_OFF: "off", PUD_UP: "up", PUD_DOWN: "down"}
_MAX_BCM = 53


class _FakeRPiGPIO:
    def __init__(self, board: Board) -> None:
        self.board = board
        self.calls: Counter[str] = Counter()
        self.mode: int | None = None
        self.warnings = True
        #: BCM number -> direction, for the channels set up here
        self.directions: dict[int, int] = {}

    def _enter(self, name: str) -> None:
        self.calls[name] += 1
        self.board.clock.gpio_call()

    def _bcm(self, channel: Any) -> int:
        if self.mode is None:
            raise RuntimeError("Please set pin numbering mode using GPIO.setmode(GPIO.BOARD) or GPIO.setmode(GPIO.BCM)")
        if not isinstance(channel, int):
            raise ValueError("Channel must be an integer or list/tuple of integers")
        if self.mode == BOARD:
            if channel not in GPIO_BY_HEADER_PIN:
                raise ValueError("The channel sent is invalid on a Raspberry Pi")
            return GPIO_BY_HEADER_PIN[channel]
        if not 0 <= channel <= _MAX_BCM:
            raise ValueError("The channel sent is invalid on a Raspberry Pi")
        return channel

    @staticmethod
    def _channels(channel: Any) -> list[Any]:
        return list(channel) if isinstance(channel, (list, tuple)) else [channel]

    # ------------------------------------------------------------- API

    def setmode(self, mode: int) -> None:
        if mode not in (BCM, BOARD):
            raise ValueError("An invalid mode was passed to setmode()")
        if self.mode is not None and self.mode != mode:
            raise ValueError("A different mode has already been set!")
        self.mode = mode

    def getmode(self) -> int | None:
        return self.mode

    def setwarnings(self, flag: bool) -> None:
        self.warnings = bool(flag)

    def setup(self, channel: Any, direction: int, pull_up_down: int = PUD_OFF, initial: int = -1) -> None:
        if direction not in (IN, OUT):
            raise ValueError("An invalid direction was passed to setup()")
        if direction == OUT and pull_up_down != PUD_OFF:
            raise ValueError("pull_up_down parameter is not valid for outputs")
        if pull_up_down not in _PULL_NAME:
            raise ValueError("Invalid value for pull_up_down - should be either PUD_OFF, PUD_UP or PUD_DOWN")
        for ch in self._channels(channel):
            gpio = self._bcm(ch)
            self._enter("setup")
            if direction == OUT:
                if initial != -1:
                    level = 1 if initial else 0
                else:
                    level = self.board.level(gpio) if self.directions.get(gpio) == OUT else 0
                self.board.drive(gpio, level)
            else:
                self.board.release(gpio)
                self.board.set_pull(gpio, _PULL_NAME[pull_up_down])
            self.directions[gpio] = direction

    def output(self, channel: Any, value: Any) -> None:
        channels = self._channels(channel)
        values = list(value) if isinstance(value, (list, tuple)) else [value] * len(channels)
        if len(values) != len(channels):
            raise RuntimeError("Number of channels != number of values")
        for ch, val in zip(channels, values):
            gpio = self._bcm(ch)
            self._enter("output")
            if self.directions.get(gpio) != OUT:
                raise RuntimeError("The GPIO channel has not been set up as an OUTPUT")
            self.board.drive(gpio, 1 if val else 0)

    def input(self, channel: int) -> int:
        gpio = self._bcm(channel)
        self._enter("input")
        if gpio not in self.directions:
            raise RuntimeError("You must setup() the GPIO channel first")
        return self.board.level(gpio)

    def cleanup(self, channel: Any = None) -> None:
        if channel is None:
            targets: Iterable[int] = list(self.directions)
        else:
            targets = [self._bcm(ch) for ch in self._channels(channel)]
        cleaned = False
        for gpio in targets:
            if gpio in self.directions:
                self._enter("cleanup")
                self.board.release(gpio)
                self.board.set_pull(gpio, "off")
                del self.directions[gpio]
                cleaned = True
        if not cleaned and self.warnings:
            warnings.warn("No channels have been set up yet - nothing to clean up!  "
                          "Try cleaning up at the end of your program instead!", RuntimeWarning, stacklevel=2)
        if not self.directions:
            self.mode = None

    def gpio_function(self, channel: int) -> int:
        gpio = self._bcm(channel)
        return self.directions.get(gpio, IN)


def make_rpi_gpio(board: Board) -> tuple[types.ModuleType, types.ModuleType]:
    """A new fake ``RPi`` package and its ``RPi.GPIO`` module, wired to ``board``.

    Returns ``(rpi, gpio)``; ``gpio.calls`` counts the calls, ``gpio.fake`` is the state.
    """
    gpio = types.ModuleType("RPi.GPIO", "Fake RPi.GPIO module on a hardware.fakes board (for tests).")
    fake = _FakeRPiGPIO(board)
    for name, value in list(globals().items()):
        if name.isupper() and not name.startswith("_"):
            setattr(gpio, name, value)
    for name in ("setmode", "getmode", "setwarnings", "setup", "output", "input", "cleanup", "gpio_function"):
        setattr(gpio, name, getattr(fake, name))
    gpio.calls = fake.calls
    gpio.fake = fake
    gpio.board = board
    rpi = types.ModuleType("RPi", "Fake RPi package (for tests).")
    rpi.__path__ = []  # a package, so that "import RPi.GPIO" works
    rpi.GPIO = gpio
    return rpi, gpio
