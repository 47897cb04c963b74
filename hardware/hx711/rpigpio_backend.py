"""Four HX711 boards, each on its own clock line, read with the ``hx711`` package (kind ``"hx711-rpigpio"``).

The fallback backend, for a Raspberry Pi where lgpio is not available: the
``hx711`` package (PyPI 1.1.2.3) on RPi.GPIO, which does not work on the Pi 5.
Wiring (docs/hardware.md): each board has its own ``PD_SCK`` and ``DOUT``
GPIO. Prefer :mod:`hardware.hx711.lgpio_backend` wherever lgpio runs.

The package's own code does the bit-banging (``HX711._read``), but its
defects (DESIGN.md section 8) are worked around:

* ``get_raw_data`` has no timeout and loops forever on an unplugged board; it
  also drops genuine 0 and -1 readings (``data not in [False, -1]``) and
  needs at least 2 reads per call. It is never called (the board class here
  makes calling it an error); each reading is one ``_read()`` and a failure is
  recognised with ``result is False``.
* ``_set_channel_gain`` calls ``get_raw_data`` after a slow gain pulse: it is
  replaced by a version that only sends the pulses; slow pulses are caught by
  the timing below.
* ``_read`` polls readiness with 10 ms sleeps: the plate checks ``DOUT``
  itself with short polling (``poll_interval_s``) and calls ``_read`` only on
  a ready board, so that loop is never entered.
* The constructor does two reads and two 0.5 s sleeps per board, and reads
  unplugged boards: ``_apply_setting`` is replaced by one that waits for the
  board at most ``ready_timeout_s`` (once) and then the settling time.
* ``_read`` returns False for the saturation codes; the plate recovers the
  code from the bits it saw and delivers it flagged SATURATED.

The package's functions run with ``GPIO`` bound to a tap in front of
RPi.GPIO, which times every clock-high phase on the injected clock and keeps
the data bits, and with ``time`` bound to the injected clock. (They are the
package's own code objects with other globals: the package module itself is
not modified.) A reading with a clock-high phase over ``max_high_us`` is
discarded (``stats.dropped``). If the phase may have gone past the chip's
60 us power-down time (or the package gave up in the middle of the read),
that board is also reset (clock held high past the power-down time, then
low), and its first reading after the settling time is thrown away too.

The boards are not synchronised: each is read as soon as it is ready and
time-stamped (``monotonic()`` when its read started). A frame is assembled
when all four have a fresh reading; its ``t_s`` is the mean of the four
time stamps, and ``last_skew_s`` / ``max_skew_s`` give how far apart they
were (up to about one conversion period, 12.5 ms at 80 SPS, plus the read
times).
"""

from __future__ import annotations

import importlib
import time
import types
from collections.abc import Sequence
from typing import Any

from hardware.base import PlateSource, SourceFault
from hardware.hx711.datasheet import POWER_DOWN_AFTER_NS
from hardware.hx711.lgpio_backend import RESET_HIGH_S, STUCK_LOW_READS, check_gpios, check_timing
from station.core.frames import CELLS, HX711_MAX_CODE, HX711_MIN_CODE, FrameFlag, RawFrame, decode_twos_complement_24

__all__ = ["PerBoardHX711Plate"]

_SATURATION_WORDS = (HX711_MAX_CODE, HX711_MIN_CODE & 0xFFFFFF)
_INSTALL_HINT = ("pip install 'balance-station[pi]' (the hx711 package and RPi.GPIO; RPi.GPIO does not work on "
                 "a Raspberry Pi 5: use backend = \"lgpio\" there)")


class _GpioTap:
    """Stands for RPi.GPIO inside the hx711 package's code: forwards every call,
    times the clock-high phases and keeps the data bits of the current read."""

    def __init__(self, gpio: Any, perf_counter_ns: Any) -> None:
        self._gpio = gpio
        self._perf_ns = perf_counter_ns
        self._high_since: dict[int, int] = {}
        self.begin()

    def begin(self) -> None:
        """Start a new read: clear the pulse count, the longest high phase and the bits."""
        self.rises = 0
        self.longest_high_ns = 0
        self.bits: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._gpio, name)

    def output(self, channel: int, value: Any) -> None:
        if value:
            t0 = self._perf_ns()
            self._gpio.output(channel, value)
            if channel not in self._high_since:
                self._high_since[channel] = t0
                self.rises += 1
        else:
            self._gpio.output(channel, value)
            t0 = self._high_since.pop(channel, None)
            if t0 is not None:
                high_ns = self._perf_ns() - t0
                if high_ns > self.longest_high_ns:
                    self.longest_high_ns = high_ns

    def input(self, channel: int) -> int:
        level = self._gpio.input(channel)
        if self.rises:
            self.bits.append(level)
        return level


class _TimeShim:
    """Stands for the time module inside the hx711 package's code."""

    def __init__(self, clock: Any) -> None:
        self._clock = clock
        #: sleeps made by the package's code (its 10 ms readiness loop must never run)
        self.sleeps = 0

    def perf_counter(self) -> float:
        return self._clock.perf_counter()

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self._clock.sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._clock, name)


def _board_class(package: types.ModuleType, *, tap: _GpioTap, time_shim: _TimeShim,
                 plate: PerBoardHX711Plate) -> type:
    """The package's HX711 class with its functions bound to the tap and the clock, defects patched."""
    namespace = dict(vars(package))
    namespace["GPIO"] = tap
    namespace["time"] = time_shim

    def rebind(func: types.FunctionType) -> types.FunctionType:
        new = types.FunctionType(func.__code__, namespace, func.__name__, func.__defaults__, func.__closure__)
        new.__kwdefaults__ = func.__kwdefaults__
        new.__doc__, new.__qualname__ = func.__doc__, func.__qualname__
        return new

    base = package.HX711
    rebound = type(base.__name__, (base,), {
        name: rebind(obj) for name, obj in vars(base).items() if isinstance(obj, types.FunctionType)
    })

    class PlateHX711(rebound):  # type: ignore[misc, valid-type]
        """One board of the plate: the package's code, minus the calls that can hang or drop data."""

        def _set_channel_gain(self, num: int) -> bool:
            if not 1 <= num <= 3:
                raise AttributeError('"num" has to be in the range of 1 to 3')
            for _ in range(num):
                tap.output(self._pd_sck, True)
                tap.output(self._pd_sck, False)
            return True

        def _apply_setting(self) -> bool:
            plate._apply_setting(self)
            return True

        def get_raw_data(self, times: int = 5) -> list[int]:
            raise RuntimeError("hx711 get_raw_data has no timeout and drops 0 and -1 readings: "
                               "the plate reads each board with _read() after its own readiness check")

    return PlateHX711


class PerBoardHX711Plate(PlateSource):
    """Four HX711 boards with a PD_SCK line each, read with the ``hx711`` package on RPi.GPIO.

    Parameters
    ----------
    sck_gpios : sequence of 4 int, default (5, 6, 19, 26)
        BCM numbers of the PD_SCK lines of ``fl, fr, bl, br``.
    data_gpios : sequence of 4 int, default (17, 27, 22, 23)
        BCM numbers of the DOUT lines of ``fl, fr, bl, br``.
    max_high_us : float, default 50
        A reading with a clock-high phase longer than this is discarded.
    ready_timeout_s : float, default 0.5
        Boards without a fresh reading within this raise :class:`SourceFault`
        (at most 1 s).
    clock : object, optional
        Provides ``monotonic()``, ``perf_counter()``, ``perf_counter_ns()``
        and ``sleep(s)``; the :mod:`time` module by default.
    poll_interval_s : float, default 0.0005
        Sleep between two rounds of readiness checks.
    settle_s : float, default 0.05
        Wait after a reset or a gain change (50 ms at 80 SPS).
    """

    kind = "hx711-rpigpio"
    nominal_rate_hz = 80.0

    def __init__(
        self,
        *,
        sck_gpios: Sequence[int] = (5, 6, 19, 26),
        data_gpios: Sequence[int] = (17, 27, 22, 23),
        max_high_us: float = 50.0,
        ready_timeout_s: float = 0.5,
        clock: Any = None,
        poll_interval_s: float = 0.0005,
        settle_s: float = 0.05,
    ) -> None:
        super().__init__()
        sck = tuple(sck_gpios)
        if len(sck) != 4 or len(set(sck)) != 4:
            raise ValueError(f"sck_gpios must be 4 different GPIO numbers (fl, fr, bl, br), got {list(sck)}")
        self.data_gpios = check_gpios(data_gpios=data_gpios, sck_gpios=sck, shared_sck=False)
        self.sck_gpios = sck
        check_timing(max_high_us=max_high_us, ready_timeout_s=ready_timeout_s,
                     poll_interval_s=poll_interval_s, settle_s=settle_s)
        self.max_high_us = float(max_high_us)
        self.ready_timeout_s = float(ready_timeout_s)
        self.poll_interval_s = float(poll_interval_s)
        self.settle_s = float(settle_s)
        self.clock = clock if clock is not None else time
        self._max_high_ns = round(self.max_high_us * 1000)
        self._gpio: Any = None
        self._tap: _GpioTap | None = None
        self._time_shim: _TimeShim | None = None
        self._boards: list[Any] = []
        self._seq = 0
        self._settle_until: list[float | None] = [None] * 4
        self._warmup = [False] * 4
        self._fresh: list[tuple[float, int, bool] | None] = [None] * 4
        self._low_after_read = [0, 0, 0, 0]
        self._silent: set[int] = set()
        #: time between the first and the last board reading of the last frame, and the largest so far
        self.last_skew_s = 0.0
        self.max_skew_s = 0.0
        #: readings thrown away after a reset (first reading after settling)
        self.flushed = 0
        #: resets of single boards or all (at open, after each discarded reading)
        self.resets = 0
        #: longest clock-high phase seen, in ns
        self.longest_high_ns = 0
        #: board readings taken (each one _read() of the package)
        self.board_reads = 0

    # ------------------------------------------------------------ life cycle

    @property
    def package_sleeps(self) -> int:
        """Sleeps made inside the hx711 package's code (its 10 ms readiness loop never runs)."""
        return self._time_shim.sleeps if self._time_shim is not None else 0

    def open(self) -> None:
        if self._boards:
            return
        try:
            gpio = importlib.import_module("RPi.GPIO")
            package = importlib.import_module("hx711")
        except (ImportError, RuntimeError) as exc:
            raise self._fault(f"the hx711-rpigpio backend cannot start: {exc}: {_INSTALL_HINT}") from exc
        self._gpio = gpio
        self._silent = set()
        self._low_after_read = [0, 0, 0, 0]
        self._tap = _GpioTap(gpio, self.clock.perf_counter_ns)
        self._time_shim = _TimeShim(self.clock)
        board_class = _board_class(package, tap=self._tap, time_shim=self._time_shim, plate=self)
        try:
            gpio.setwarnings(False)
            for cell, dout, sck in zip(CELLS, self.data_gpios, self.sck_gpios):
                try:
                    self._boards.append(board_class(dout, sck))
                except (RuntimeError, ValueError) as exc:
                    raise self._fault(f"cannot set up HX711 cell {cell} (DOUT GPIO {dout}, PD_SCK GPIO {sck}): "
                                      f"{exc}") from exc
            self._reset_boards(range(4))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if not self._boards and self._gpio is None:
            return
        gpio = self._gpio
        self._boards = []
        self._gpio = None
        try:
            for sck in self.sck_gpios:
                gpio.output(sck, 0)  # low: the chips stay powered up
        except (RuntimeError, ValueError):
            pass
        try:
            gpio.cleanup([*self.sck_gpios, *self.data_gpios])
        except (RuntimeError, ValueError):
            pass

    def describe(self) -> str:
        wiring = ", ".join(f"{cell} SCK {sck}/DOUT {dout}"
                           for cell, sck, dout in zip(CELLS, self.sck_gpios, self.data_gpios))
        return f"HX711 plate, 4 boards with a clock each (hx711 package on RPi.GPIO): GPIO {wiring}"

    # ------------------------------------------------------------------ read

    def read(self, timeout_s: float = 1.0) -> RawFrame:
        if not self._boards:
            raise SourceFault(f"{self.kind}: read() before open()")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
        clock, gpio = self.clock, self._gpio
        budget_s = min(timeout_s, self.ready_timeout_s)
        deadline = clock.monotonic() + budget_s
        fresh, settle_until = self._fresh, self._settle_until
        discarded = 0
        while True:
            now = clock.monotonic()
            for i, dout in enumerate(self.data_gpios):
                until = settle_until[i]
                if until is not None:
                    if now < until:
                        continue
                    settle_until[i] = None
                if gpio.input(dout):
                    continue
                reading = self._read_board(i)
                if reading is None:
                    self.stats.dropped += 1
                    discarded += 1
                    tap = self._tap
                    if tap.longest_high_ns > POWER_DOWN_AFTER_NS or tap.rises != 25:
                        self._reset_boards((i,))
                elif self._warmup[i]:
                    self._warmup[i] = False
                    self.flushed += 1
                else:
                    fresh[i] = reading
            if None not in fresh:
                return self._frame()
            now = clock.monotonic()
            if now >= deadline:
                missing = [i for i in range(4) if fresh[i] is None]
                self._fresh = fresh = [None] * 4
                raise self._fault(self._not_ready_message(missing, budget_s=budget_s, discarded=discarded))
            clock.sleep(min(self.poll_interval_s, deadline - now))

    # --------------------------------------------------------------- helpers

    def _fault(self, message: str) -> SourceFault:
        self.stats.faults += 1
        self.stats.last_fault = message
        return SourceFault(message)

    def _not_ready_message(self, missing: list[int], *, budget_s: float, discarded: int) -> str:
        names = ", ".join(f"{CELLS[i]} (DOUT GPIO {self.data_gpios[i]}, PD_SCK GPIO {self.sck_gpios[i]})"
                          for i in missing)
        message = (f"HX711 not ready within {budget_s:.2f} s: cell {names}: board unplugged, without power, "
                   "or a wire broken")
        if discarded:
            message += (f"; {discarded} reading(s) were discarded meanwhile for clock-high phases over "
                        f"{self.max_high_us:g} us")
        return message

    def _wait_board(self, dout: int, *, timeout_s: float) -> bool:
        clock, gpio = self.clock, self._gpio
        deadline = clock.monotonic() + timeout_s
        while gpio.input(dout):
            now = clock.monotonic()
            if now >= deadline:
                return False
            clock.sleep(min(self.poll_interval_s, deadline - now))
        return True

    def _apply_setting(self, board: Any) -> None:
        """The package's gain/channel setting, bounded: one read if the board answers, then settle."""
        gpio = self._gpio
        gpio.setup(board._dout, gpio.IN, pull_up_down=gpio.PUD_UP)  # an unplugged DOUT reads "not ready"
        if board._dout in self._silent:
            return
        if self._wait_board(board._dout, timeout_s=self.ready_timeout_s):
            board._read()
            self.clock.sleep(self.settle_s)
        else:
            self._silent.add(board._dout)

    def _reset_boards(self, indices: Any) -> None:
        """Power boards down and up again: a known state, gain A/128, settling from now."""
        indices = list(indices)
        gpio, clock = self._gpio, self.clock
        for i in indices:
            gpio.output(self.sck_gpios[i], 1)
        clock.sleep(RESET_HIGH_S)
        for i in indices:
            gpio.output(self.sck_gpios[i], 0)
        until = clock.monotonic() + self.settle_s
        for i in indices:
            self._settle_until[i] = until
            self._warmup[i] = True
            self._fresh[i] = None
        self.resets += 1

    def _read_board(self, i: int) -> tuple[float, int, bool] | None:
        """One reading of board ``i`` (ready): (t_s, counts, saturated), or None when it must be discarded."""
        board, tap = self._boards[i], self._tap
        tap.begin()
        t_s = self.clock.monotonic()
        result = board._read()
        self.board_reads += 1
        if tap.longest_high_ns > self.longest_high_ns:
            self.longest_high_ns = tap.longest_high_ns
        if tap.longest_high_ns > self._max_high_ns or tap.rises != 25 or len(tap.bits) < 24:
            return None
        word = 0
        for bit in tap.bits[:24]:
            word = (word << 1) | (bit & 1)
        saturated = word in _SATURATION_WORDS
        if result is False:
            if not saturated:
                return None
        elif result != decode_twos_complement_24(word):
            return None
        # DOUT must be high again after the 25th pulse
        if self._gpio.input(self.data_gpios[i]):
            self._low_after_read[i] = 0
        else:
            self._low_after_read[i] += 1
            if self._low_after_read[i] >= STUCK_LOW_READS:
                raise self._fault(f"HX711 DOUT stays low after the read on cell {CELLS[i]} "
                                  f"(DOUT GPIO {self.data_gpios[i]}): a short to ground, or a board without power?")
        return t_s, decode_twos_complement_24(word), saturated

    def _frame(self) -> RawFrame:
        readings = self._fresh
        self._fresh = [None] * 4
        times = [r[0] for r in readings]
        self.last_skew_s = max(times) - min(times)
        self.max_skew_s = max(self.max_skew_s, self.last_skew_s)
        saturated = tuple(cell for cell, r in zip(CELLS, readings) if r[2])
        stuck = tuple(cell for i, cell in enumerate(CELLS) if self._low_after_read[i])
        flags = FrameFlag.NONE
        if saturated:
            flags |= FrameFlag.SATURATED
        if stuck:
            flags |= FrameFlag.GLITCH
        if flags:
            self.stats.glitches += 1
        seq = self._seq
        self._seq += 1
        self.stats.frames += 1
        return RawFrame(
            seq=seq,
            t_s=sum(times) / 4,
            counts=tuple(float(r[1]) for r in readings),
            flags=flags,
            fault_cells=tuple(cell for cell in CELLS if cell in saturated or cell in stuck),
        )
