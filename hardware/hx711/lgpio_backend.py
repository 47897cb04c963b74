"""Four HX711 boards on one shared clock line, read with lgpio (kind ``"hx711-lgpio"``).

Wiring (docs/hardware.md): one ``PD_SCK`` GPIO goes to all four boards, each
board's ``DOUT`` has its own GPIO (cell order ``fl, fr, bl, br``). Works on the
Raspberry Pi 4 and 5 (lgpio talks to the kernel's gpiochip device).

One frame is one pass over the four chips at once:

1. wait until all four ``DOUT`` lines are low (a conversion is ready on
   every chip), polling them with one ``group_read`` every
   ``poll_interval_s`` (0.5 ms), for at most ``ready_timeout_s``; a board
   that stays high is reported by cell and GPIO in a :class:`SourceFault`;
2. 24 clock pulses; on each, while the clock is high, *one* ``group_read``
   samples the four data lines, so the four bits of a pulse are
   simultaneous; a 25th pulse selects channel A, gain 128 for the next
   conversion and sends ``DOUT`` high again;
3. every clock-high phase is timed (``perf_counter_ns`` of the clock, from
   before the rising write to after the falling write, so the figure is an
   upper bound). If one ran longer than ``max_high_us`` (50 us: the chip
   powers down after 60 us, and a read interrupted that way is garbage),
   the frame is discarded and counted in ``stats.dropped``, never delivered.
   If the phase stayed within the chip's 60 us, the chips are still awake:
   the 25 pulses are completed and the next conversion gives the next frame.
   If it may have gone past 60 us, the read is abandoned and the chips are
   reset together (clock held high past the power-down time, then low), so
   that all four are in a known state whatever happened; the next frame is
   taken only after the settling time, and a result that a chip offered
   during settling is flushed. A discard thus costs one frame, or about five
   after a reset.

The four chips sample on their own oscillators: the shared clock makes the
*reads* simultaneous, not the conversions. Each frame carries the newest
result of every chip, so the four samples of a frame are up to one
conversion period (12.5 ms at 80 SPS) apart and up to one period old;
``t_s`` is the clock's ``monotonic()`` when the read started. The frame rate
follows the slowest chip (80 SPS nominal, RATE pin high).

Saturation codes (``0x7FFFFF``, ``0x800000``) are delivered with
:attr:`FrameFlag.SATURATED` and the cells named in ``fault_cells``. A data
line that is still low right after the 25th pulse (a short to ground) gives
:attr:`FrameFlag.GLITCH` frames and, the third time in a row, a
:class:`SourceFault`.

The ``gpiochip`` is 0 on the Raspberry Pi 4, and on the Pi 5 with kernels from
6.6.45 on; on a Pi 5 with an older kernel the header GPIOs are on gpiochip 4.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from hardware.base import PlateSource, SourceFault
from hardware.hx711.datasheet import POWER_DOWN_AFTER_NS, POWER_DOWN_AFTER_US
from station.core.frames import (
    CELLS,
    HX711_MAX_CODE,
    HX711_MIN_CODE,
    FrameFlag,
    RawFrame,
    decode_twos_complement_24,
)

__all__ = ["SharedClockHX711Plate"]

#: how long the clock is held high to power the chips down on purpose: twice the datasheet's limit
RESET_HIGH_S = 120e-6
#: data line still low after the 25th pulse this many reads in a row: a fault
STUCK_LOW_READS = 3

_SATURATION_WORDS = (HX711_MAX_CODE, HX711_MIN_CODE & 0xFFFFFF)
_INSTALL_HINT = "pip install lgpio (or the station's 'pi' extra: pip install 'balance-station[pi]')"


def check_gpios(*, data_gpios: Sequence[int], sck_gpios: Sequence[int], shared_sck: bool) -> tuple[int, ...]:
    """Validate four data GPIOs against the clock GPIO(s); return the data GPIOs as a tuple."""
    data = tuple(data_gpios)
    if len(data) != 4 or len(set(data)) != 4:
        raise ValueError(f"data_gpios must be 4 different GPIO numbers (fl, fr, bl, br), got {list(data)}")
    for gpio in (*data, *sck_gpios):
        if not isinstance(gpio, int) or isinstance(gpio, bool) or not 0 <= gpio <= 53:
            raise ValueError(f"GPIO numbers must be integers from 0 to 53, got {gpio!r}")
    clash = set(data) & set(sck_gpios)
    if clash:
        name = "sck_gpio" if shared_sck else "sck_gpios"
        raise ValueError(f"{name} and data_gpios share GPIO {sorted(clash)}: a line is either PD_SCK or DOUT")
    return data


def check_timing(*, max_high_us: float, ready_timeout_s: float, poll_interval_s: float, settle_s: float) -> None:
    """Validate the timing parameters shared by the HX711 backends."""
    if not 0 < max_high_us < POWER_DOWN_AFTER_US:
        raise ValueError(f"max_high_us must be above 0 and below the chip's {POWER_DOWN_AFTER_US} us power-down time, "
                         f"got {max_high_us!r}")
    if not 0 < ready_timeout_s <= 1.0:
        raise ValueError(f"ready_timeout_s must be above 0 and at most 1 s, got {ready_timeout_s!r}")
    if not 0 < poll_interval_s <= 0.01:
        raise ValueError(f"poll_interval_s must be above 0 and at most 0.01 s, got {poll_interval_s!r}")
    if not 0 <= settle_s <= 0.5:
        raise ValueError(f"settle_s must be from 0 to 0.5 s, got {settle_s!r}")


class SharedClockHX711Plate(PlateSource):
    """Four HX711 boards on one PD_SCK line, read simultaneously through lgpio.

    Parameters
    ----------
    gpiochip : int, default 0
        The gpiochip device (``/dev/gpiochipN``). 0 on a Pi 4 and on a Pi 5
        with a recent kernel; 4 on a Pi 5 with a kernel before 6.6.45.
    sck_gpio : int, default 5
        BCM number of the shared PD_SCK line.
    data_gpios : sequence of 4 int, default (17, 27, 22, 23)
        BCM numbers of the DOUT lines of ``fl, fr, bl, br``.
    max_high_us : float, default 50
        A clock-high phase longer than this discards the frame (below the
        chip's 60 us power-down time).
    ready_timeout_s : float, default 0.5
        Boards not ready within this raise :class:`SourceFault` (at most 1 s).
    clock : object, optional
        Provides ``monotonic()``, ``perf_counter_ns()`` and ``sleep(s)``;
        the :mod:`time` module by default, a virtual clock in tests.
    lgpio : module, optional
        The lgpio module; imported in :meth:`open` when omitted.
    poll_interval_s : float, default 0.0005
        Sleep between two readiness checks.
    settle_s : float, default 0.05
        Wait after a reset before data counts again (50 ms at 80 SPS).
    """

    kind = "hx711-lgpio"
    nominal_rate_hz = 80.0

    def __init__(
        self,
        *,
        gpiochip: int = 0,
        sck_gpio: int = 5,
        data_gpios: Sequence[int] = (17, 27, 22, 23),
        max_high_us: float = 50.0,
        ready_timeout_s: float = 0.5,
        clock: Any = None,
        lgpio: Any = None,
        poll_interval_s: float = 0.0005,
        settle_s: float = 0.05,
    ) -> None:
        super().__init__()
        if not isinstance(gpiochip, int) or gpiochip < 0:
            raise ValueError(f"gpiochip must be a gpiochip number >= 0, got {gpiochip!r}")
        self.data_gpios = check_gpios(data_gpios=data_gpios, sck_gpios=(sck_gpio,), shared_sck=True)
        check_timing(max_high_us=max_high_us, ready_timeout_s=ready_timeout_s,
                     poll_interval_s=poll_interval_s, settle_s=settle_s)
        self.gpiochip = gpiochip
        self.sck_gpio = sck_gpio
        self.max_high_us = float(max_high_us)
        self.ready_timeout_s = float(ready_timeout_s)
        self.poll_interval_s = float(poll_interval_s)
        self.settle_s = float(settle_s)
        self.clock = clock if clock is not None else time
        self._lg_given = lgpio
        self._lg: Any = None
        self._handle: int | None = None
        self._max_high_ns = round(self.max_high_us * 1000)
        self._seq = 0
        self._settle_until: float | None = None
        self._low_after_read = [0, 0, 0, 0]
        #: longest clock-high phase seen, in ns (discarded ones included)
        self.longest_high_ns = 0
        #: resets done (at open and after each discarded frame)
        self.resets = 0
        #: frames read and thrown away after a reset because a chip offered a result while settling
        self.flushed = 0

    # ------------------------------------------------------------ life cycle

    def open(self) -> None:
        if self._handle is not None:
            return
        lg = self._lg_given if self._lg_given is not None else _import_lgpio()
        try:
            handle = lg.gpiochip_open(self.gpiochip)
        except lg.error as exc:
            raise self._fault(
                f"cannot open /dev/gpiochip{self.gpiochip}: {exc} (a Pi 5 with a kernel before 6.6.45 "
                "needs gpiochip = 4; the user needs access to /dev/gpiochip*, e.g. the gpio group)") from None
        if handle < 0:
            raise self._fault(f"cannot open /dev/gpiochip{self.gpiochip}: {lg.error_text(handle)}")
        self._lg, self._handle = lg, handle
        self._low_after_read = [0, 0, 0, 0]
        pull_up = getattr(lg, "SET_BIAS_PULL_UP", getattr(lg, "SET_PULL_UP", 0))
        try:
            self._claim(lambda: lg.gpio_claim_output(handle, self.sck_gpio, 0), f"PD_SCK GPIO {self.sck_gpio}")
            # pull-ups: a data line with no board on it reads high ("not ready"), never a fake "ready"
            self._claim(lambda: lg.group_claim_input(handle, list(self.data_gpios), pull_up),
                        "DOUT GPIOs " + ", ".join(f"{c} {g}" for c, g in zip(CELLS, self.data_gpios)))
            self._reset()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self._handle is None:
            return
        lg, handle = self._lg, self._handle
        self._handle = None
        for action in (lambda: lg.gpio_write(handle, self.sck_gpio, 0),  # low: the chips stay powered up
                       lambda: lg.group_free(handle, self.data_gpios[0]),
                       lambda: lg.gpio_free(handle, self.sck_gpio),
                       lambda: lg.gpiochip_close(handle)):
            try:
                action()
            except lg.error:
                pass

    def describe(self) -> str:
        dout = ", ".join(f"{cell} {gpio}" for cell, gpio in zip(CELLS, self.data_gpios))
        return (f"HX711 plate, 4 boards on a shared clock (lgpio, gpiochip{self.gpiochip}): "
                f"PD_SCK GPIO {self.sck_gpio}, DOUT GPIO {dout}")

    # ------------------------------------------------------------------ read

    def read(self, timeout_s: float = 1.0) -> RawFrame:
        if self._handle is None:
            raise SourceFault(f"{self.kind}: read() before open()")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
        clock = self.clock
        deadline = clock.monotonic() + timeout_s
        discarded = 0
        while True:
            flush = self._settle(deadline, discarded=discarded) if self._settle_until is not None else False
            now = clock.monotonic()
            ready_deadline = min(deadline, now + self.ready_timeout_s)
            self._wait_ready(ready_deadline, budget_s=ready_deadline - now, discarded=discarded)
            t_s = clock.monotonic()
            masks, after, longest_ns = self._shift_in()
            if longest_ns > self._max_high_ns:
                self.stats.dropped += 1
                discarded += 1
                if longest_ns > POWER_DOWN_AFTER_NS:
                    self._reset()
                continue
            if flush:
                self.flushed += 1
                continue
            return self._frame(t_s, masks, after)

    # --------------------------------------------------------------- helpers

    def _fault(self, message: str) -> SourceFault:
        self.stats.faults += 1
        self.stats.last_fault = message
        return SourceFault(message)

    def _claim(self, action: Any, what: str) -> None:
        lg = self._lg
        try:
            code = action()
        except lg.error as exc:
            raise self._fault(f"cannot claim {what} on gpiochip{self.gpiochip}: {exc} "
                              "(in use by another program, or the wrong gpiochip?)") from None
        if isinstance(code, int) and code < 0:
            raise self._fault(f"cannot claim {what} on gpiochip{self.gpiochip}: {lg.error_text(code)}")

    def _reset(self) -> None:
        """Power the chips down and up again: a known state, gain A/128, settling from now."""
        lg, handle, clock = self._lg, self._handle, self.clock
        lg.gpio_write(handle, self.sck_gpio, 1)
        clock.sleep(RESET_HIGH_S)
        lg.gpio_write(handle, self.sck_gpio, 0)
        self._settle_until = clock.monotonic() + self.settle_s
        self.resets += 1

    def _settle(self, deadline: float, *, discarded: int) -> bool:
        """Wait out the settling time; True when a chip offered a result meanwhile (to be flushed)."""
        lg, handle, leader, clock = self._lg, self._handle, self.data_gpios[0], self.clock
        end = self._settle_until
        if end > deadline:
            clock.sleep(max(0.0, deadline - clock.monotonic()))
            raise self._fault(f"no HX711 frame within the time asked: the boards settle for {self.settle_s:.3f} s "
                              f"after a reset ({discarded} frame(s) discarded in this read for clock-high phases "
                              f"over {self.max_high_us:g} us)")
        self._settle_until = None
        now = clock.monotonic()
        if now >= end:
            # nobody watched the lines while they settled: a result offered now may predate the end
            return now < end + 1.0 / self.nominal_rate_hz
        early = 0
        while (now := clock.monotonic()) < end:
            early |= ~lg.group_read(handle, leader)[1] & 0xF
            clock.sleep(min(self.poll_interval_s, end - now))
        return bool(early)

    def _wait_ready(self, deadline: float, *, budget_s: float, discarded: int) -> None:
        lg, handle, leader, clock = self._lg, self._handle, self.data_gpios[0], self.clock
        poll_s = self.poll_interval_s
        while True:
            count, levels = lg.group_read(handle, leader)
            if count < 0:
                raise self._fault(f"group_read of the DOUT GPIOs failed: {lg.error_text(count)}")
            if not levels & 0xF:
                return
            now = clock.monotonic()
            if now >= deadline:
                raise self._fault(self._not_ready_message(levels, budget_s=budget_s, discarded=discarded))
            clock.sleep(min(poll_s, deadline - now))

    def _not_ready_message(self, levels: int, *, budget_s: float, discarded: int) -> str:
        late = [(cell, gpio) for i, (cell, gpio) in enumerate(zip(CELLS, self.data_gpios)) if levels >> i & 1]
        names = ", ".join(f"{cell} (DOUT GPIO {gpio})" for cell, gpio in late)
        if len(late) == 4:
            hint = (f"check the shared PD_SCK wire (GPIO {self.sck_gpio}), the boards' power and that "
                    "RATE is high (80 SPS)")
        else:
            hint = "board unplugged, without power, or its DOUT wire broken"
        message = f"HX711 not ready within {budget_s:.2f} s: cell {names}: {hint}"
        if discarded:
            message += (f"; {discarded} frame(s) were discarded meanwhile for clock-high phases over "
                        f"{self.max_high_us:g} us")
        return message

    def _shift_in(self) -> tuple[list[int], int, int]:
        """Clock one read: the 24 level masks, the levels after the 25th pulse and the longest high phase in ns.

        The pulses stop at once when a high phase may have gone past the chip's
        power-down time (the read is garbage and the chips need a reset anyway).
        """
        lg, handle, sck, leader = self._lg, self._handle, self.sck_gpio, self.data_gpios[0]
        write, group_read, perf_ns = lg.gpio_write, lg.group_read, self.clock.perf_counter_ns
        power_down_ns, longest = POWER_DOWN_AFTER_NS, 0
        masks = []
        for _ in range(24):
            t0 = perf_ns()
            write(handle, sck, 1)
            levels = group_read(handle, leader)[1]
            write(handle, sck, 0)
            high_ns = perf_ns() - t0
            if high_ns > longest:
                longest = high_ns
                if high_ns > power_down_ns:
                    break
            masks.append(levels)
        else:
            t0 = perf_ns()
            write(handle, sck, 1)
            write(handle, sck, 0)
            high_ns = perf_ns() - t0
            if high_ns > longest:
                longest = high_ns
        if longest > self.longest_high_ns:
            self.longest_high_ns = longest
        after = group_read(handle, leader)[1] if longest <= power_down_ns else 0xF
        return masks, after, longest

    def _frame(self, t_s: float, masks: list[int], after: int) -> RawFrame:
        w0 = w1 = w2 = w3 = 0
        for levels in masks:
            w0 = (w0 << 1) | (levels & 1)
            w1 = (w1 << 1) | (levels >> 1 & 1)
            w2 = (w2 << 1) | (levels >> 2 & 1)
            w3 = (w3 << 1) | (levels >> 3 & 1)
        words = (w0, w1, w2, w3)
        flags = FrameFlag.NONE
        saturated = tuple(cell for cell, word in zip(CELLS, words) if word in _SATURATION_WORDS)
        if saturated:
            flags |= FrameFlag.SATURATED
        stuck = []
        for i, cell in enumerate(CELLS):
            if after >> i & 1:
                self._low_after_read[i] = 0
            else:
                self._low_after_read[i] += 1
                stuck.append(cell)
        if stuck:
            flags |= FrameFlag.GLITCH
            worst = [cell for i, cell in enumerate(CELLS) if self._low_after_read[i] >= STUCK_LOW_READS]
            if worst:
                names = ", ".join(f"{cell} (DOUT GPIO {self.data_gpios[CELLS.index(cell)]})" for cell in worst)
                raise self._fault(f"HX711 DOUT stays low after the read on cell {names}: "
                                  "a short to ground, or a board without power?")
        fault_cells = tuple(cell for cell in CELLS if cell in saturated or cell in stuck)
        if flags:
            self.stats.glitches += 1
        seq = self._seq
        self._seq += 1
        self.stats.frames += 1
        return RawFrame(
            seq=seq,
            t_s=t_s,
            counts=tuple(float(decode_twos_complement_24(word)) for word in words),
            flags=flags,
            fault_cells=fault_cells,
        )


def _import_lgpio() -> Any:
    try:
        import lgpio
    except ImportError as exc:
        raise SourceFault(f"the lgpio module is not installed: {_INSTALL_HINT}") from exc
    return lgpio
