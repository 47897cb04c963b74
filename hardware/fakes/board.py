"""A fake Raspberry Pi header with HX711 chip models wired to its GPIO lines.

The board is the wiring between the host side (what the fake ``lgpio`` and
``RPi.GPIO`` modules do to a GPIO number) and the chip side
(:class:`hardware.hx711.chip.HX711Chip` pins). A ``PD_SCK`` line may go to
several chips (the shared-clock plate) or to one (a clock per board); each
``DOUT`` line comes from one chip. Lines with nothing on them read their pull
(or ``floating_level`` when there is none).

For tests it can also inject a stall: the clock jumps while a line is high,
as when the kernel deschedules the process in the middle of a clock pulse.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from hardware.hx711.chip import HX711Chip
from station.core.frames import CELLS

__all__ = [
    "Board",
    "HEADER_PIN_BY_GPIO",
    "GPIO_BY_HEADER_PIN",
    "DEFAULT_SCK_GPIO",
    "DEFAULT_SCK_GPIOS",
    "DEFAULT_DATA_GPIOS",
    "DEFAULT_SPREAD",
]

#: 40-pin header: BCM GPIO number -> physical pin number (all Raspberry Pi models with 40 pins).
HEADER_PIN_BY_GPIO: dict[int, int] = {
    2: 3, 3: 5, 4: 7, 14: 8, 15: 10, 17: 11, 18: 12, 27: 13, 22: 15, 23: 16, 24: 18,
    10: 19, 9: 21, 25: 22, 11: 23, 8: 24, 7: 26, 0: 27, 1: 28, 5: 29, 6: 31, 12: 32,
    13: 33, 19: 35, 16: 36, 26: 37, 20: 38, 21: 40,
}
GPIO_BY_HEADER_PIN: dict[int, int] = {pin: gpio for gpio, pin in HEADER_PIN_BY_GPIO.items()}

#: the wiring of docs/hardware.md
DEFAULT_SCK_GPIO = 5
DEFAULT_SCK_GPIOS = (5, 6, 19, 26)
DEFAULT_DATA_GPIOS = (17, 27, 22, 23)

#: per-cell oscillator error and phase, so that four chips drift apart as real ones do
DEFAULT_SPREAD: dict[str, dict[str, float]] = {
    "fl": {"tolerance_ppm": 35.0, "phase_s": 0.0011},
    "fr": {"tolerance_ppm": -60.0, "phase_s": 0.0043},
    "bl": {"tolerance_ppm": 80.0, "phase_s": 0.0078},
    "br": {"tolerance_ppm": -20.0, "phase_s": 0.0102},
}

_PULLS = ("off", "up", "down")


class _Stall:
    __slots__ = ("gpio", "rises_left", "ns")

    def __init__(self, gpio: int, rises_left: int, ns: int) -> None:
        self.gpio, self.rises_left, self.ns = gpio, rises_left, ns


class Board:
    """GPIO lines of a fake Pi, with HX711 chips on some of them.

    Parameters
    ----------
    clock : VirtualClock or RealClock
        The clock shared by the chips, the fake modules and (in tests) the backend.
    gpiochip : int, default 0
        The gpiochip number the fake ``lgpio`` accepts.
    floating_level : int, default 0
        What an input with no chip and no pull reads (a floating line; low is
        the worst case for an HX711 host, which takes it for "data ready").
    """

    def __init__(self, *, clock: Any, gpiochip: int = 0, floating_level: int = 0) -> None:
        self.clock = clock
        self.gpiochip = gpiochip
        self.floating_level = 1 if floating_level else 0
        #: chips by name, in the order they were added
        self.chips: dict[str, HX711Chip] = {}
        self._chips_on_sck: dict[int, list[HX711Chip]] = {}
        self._chip_on_dout: dict[int, HX711Chip] = {}
        self._driven: dict[int, int] = {}
        self._pull: dict[int, str] = {}
        self._stalls: list[_Stall] = []
        #: when True, time spent inside the chip models is added to chip_ns
        self.profile = False
        self.chip_ns = 0

    # ------------------------------------------------------------- wiring

    def add_chip(self, *, sck_gpio: int, dout_gpio: int, name: str, **chip_options: Any) -> HX711Chip:
        """Make an :class:`HX711Chip` on the board's clock and wire it."""
        chip = HX711Chip(now_ns=self.clock.now_ns, name=name, **chip_options)
        self.attach(chip, sck_gpio=sck_gpio, dout_gpio=dout_gpio)
        return chip

    def attach(self, chip: HX711Chip, *, sck_gpio: int, dout_gpio: int) -> None:
        """Wire ``chip``'s PD_SCK to ``sck_gpio`` and its DOUT to ``dout_gpio``."""
        if chip.name in self.chips:
            raise ValueError(f"chip name {chip.name!r} is already on the board")
        if dout_gpio in self._chip_on_dout:
            raise ValueError(f"dout_gpio {dout_gpio}: already wired to chip {self._chip_on_dout[dout_gpio].name!r}")
        if dout_gpio in self._chips_on_sck or sck_gpio in self._chip_on_dout:
            raise ValueError(f"GPIO {dout_gpio if dout_gpio in self._chips_on_sck else sck_gpio} "
                             "cannot be both a PD_SCK and a DOUT line")
        if sck_gpio == dout_gpio:
            raise ValueError(f"sck_gpio and dout_gpio must differ, both are {sck_gpio}")
        self.chips[chip.name] = chip
        self._chips_on_sck.setdefault(sck_gpio, []).append(chip)
        self._chip_on_dout[dout_gpio] = chip
        if self._driven.get(sck_gpio):
            chip.set_sck(1)

    def chip_on_dout(self, gpio: int) -> HX711Chip | None:
        return self._chip_on_dout.get(gpio)

    def chips_on_sck(self, gpio: int) -> list[HX711Chip]:
        return list(self._chips_on_sck.get(gpio, ()))

    # ------------------------------------------------------------ host side

    def drive(self, gpio: int, level: int) -> None:
        """The host drives ``gpio`` as an output at ``level``."""
        level = 1 if level else 0
        previous = self._driven.get(gpio)
        self._driven[gpio] = level
        if previous == level:
            return
        chips = self._chips_on_sck.get(gpio)
        if chips:
            if self.profile:
                t0 = time.perf_counter_ns()
                for chip in chips:
                    chip.set_sck(level)
                self.chip_ns += time.perf_counter_ns() - t0
            else:
                for chip in chips:
                    chip.set_sck(level)
        if level and self._stalls:
            self._maybe_stall(gpio)

    def release(self, gpio: int) -> None:
        """The host stops driving ``gpio`` (it becomes an input). PD_SCK inputs keep their last level."""
        self._driven.pop(gpio, None)

    def level(self, gpio: int) -> int:
        """What the host reads on ``gpio``."""
        driven = self._driven.get(gpio)
        if driven is not None:
            return driven
        chip = self._chip_on_dout.get(gpio)
        if chip is not None:
            if self.profile:
                t0 = time.perf_counter_ns()
                level = chip.dout()
                self.chip_ns += time.perf_counter_ns() - t0
                return level
            return chip.dout()
        pull = self._pull.get(gpio, "off")
        return 1 if pull == "up" else 0 if pull == "down" else self.floating_level

    def set_pull(self, gpio: int, pull: str) -> None:
        """Set the internal pull of ``gpio``: ``"up"``, ``"down"`` or ``"off"``."""
        if pull not in _PULLS:
            raise ValueError(f"pull must be one of {_PULLS}, got {pull!r}")
        self._pull[gpio] = pull

    def pull(self, gpio: int) -> str:
        return self._pull.get(gpio, "off")

    # ---------------------------------------------------------------- faults

    def arm_stall(self, *, gpio: int, stall_us: float, after_rises: int = 0) -> None:
        """Make the clock jump ``stall_us`` right after a rising edge on ``gpio``.

        ``after_rises`` rising edges pass untouched first; the next one stalls.
        """
        if stall_us <= 0:
            raise ValueError(f"stall_us must be > 0, got {stall_us!r}")
        if after_rises < 0:
            raise ValueError(f"after_rises must be >= 0, got {after_rises!r}")
        self._stalls.append(_Stall(gpio, after_rises, round(stall_us * 1000)))

    def _maybe_stall(self, gpio: int) -> None:
        for stall in list(self._stalls):
            if stall.gpio != gpio:
                continue
            if stall.rises_left:
                stall.rises_left -= 1
            else:
                self._stalls.remove(stall)
                self.clock.stall(ns=stall.ns)

    # ------------------------------------------------------------- factories

    @classmethod
    def shared_clock(
        cls,
        *,
        clock: Any,
        sck_gpio: int = DEFAULT_SCK_GPIO,
        data_gpios: Sequence[int] = DEFAULT_DATA_GPIOS,
        values: Sequence[Any] = (0, 0, 0, 0),
        spread: bool = True,
        cells: Mapping[str, Mapping[str, Any]] | None = None,
        gpiochip: int = 0,
        **chip_options: Any,
    ) -> Board:
        """Four chips (``fl, fr, bl, br``) on one PD_SCK line, each on its own DOUT.

        ``values`` are the four inputs (counts or functions of time),
        ``spread`` gives the chips the oscillator errors and phases of
        :data:`DEFAULT_SPREAD`, ``cells`` overrides options per cell (e.g.
        ``{"fr": {"unplugged": True}}``) and ``chip_options`` go to every chip.
        """
        return cls._four(clock=clock, sck_gpios=(sck_gpio,) * 4, data_gpios=data_gpios, values=values,
                         spread=spread, cells=cells, gpiochip=gpiochip, chip_options=chip_options)

    @classmethod
    def per_board_clock(
        cls,
        *,
        clock: Any,
        sck_gpios: Sequence[int] = DEFAULT_SCK_GPIOS,
        data_gpios: Sequence[int] = DEFAULT_DATA_GPIOS,
        values: Sequence[Any] = (0, 0, 0, 0),
        spread: bool = True,
        cells: Mapping[str, Mapping[str, Any]] | None = None,
        gpiochip: int = 0,
        **chip_options: Any,
    ) -> Board:
        """Four chips, each with its own PD_SCK and DOUT line (options as :meth:`shared_clock`)."""
        return cls._four(clock=clock, sck_gpios=sck_gpios, data_gpios=data_gpios, values=values,
                         spread=spread, cells=cells, gpiochip=gpiochip, chip_options=chip_options)

    @classmethod
    def _four(cls, *, clock: Any, sck_gpios: Sequence[int], data_gpios: Sequence[int], values: Sequence[Any],
              spread: bool, cells: Mapping[str, Mapping[str, Any]] | None, gpiochip: int,
              chip_options: Mapping[str, Any]) -> Board:
        for name, seq in (("sck_gpios", sck_gpios), ("data_gpios", data_gpios), ("values", values)):
            if len(seq) != 4:
                raise ValueError(f"{name} must have 4 entries (fl, fr, bl, br), got {len(seq)}")
        unknown = set(cells or ()) - set(CELLS)
        if unknown:
            raise ValueError(f"cells: unknown cell name(s) {sorted(unknown)}, expected some of {CELLS}")
        board = cls(clock=clock, gpiochip=gpiochip)
        for i, cell in enumerate(CELLS):
            options: dict[str, Any] = {"value": values[i]}
            if spread:
                options.update(DEFAULT_SPREAD[cell])
            options.update(chip_options)
            # a different noise sequence per chip, from one seed
            options["seed"] = int(chip_options.get("seed", 0)) * 4 + i
            options.update((cells or {}).get(cell, {}))
            board.add_chip(sck_gpio=sck_gpios[i], dout_gpio=data_gpios[i], name=cell, **options)
        return board
