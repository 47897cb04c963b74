"""A bit-level model of one HX711 24-bit load-cell ADC, for tests and benchmarks.

The model is a small state machine driven by two things only: edges on its
``PD_SCK`` input (:meth:`HX711Chip.set_sck`) and the time read from an
injected clock (``now_ns``). Its ``DOUT`` output is sampled with
:meth:`HX711Chip.dout`. Nothing runs in the background: whenever the chip is
touched it first catches up with the clock (conversions that completed,
a power-down that happened while ``PD_SCK`` stayed high), so a virtual clock
gives exactly repeatable runs and a real clock gives a real-time chip.

Behaviour (HX711 datasheet, Avia Semiconductor, and DESIGN.md section 8):

* ``DOUT`` is high while no conversion is ready and goes low when one is.
* The 24-bit two's complement result is shifted out MSB first, one bit per
  ``PD_SCK`` rising edge; a bit is valid from shortly after the rising edge,
  while ``PD_SCK`` is high and after the falling edge, until the next rising
  edge.
* The 25th pulse pulls ``DOUT`` high again until the next conversion; the
  number of pulses in the read selects the input and gain of the *next*
  conversion: 25 = channel A, gain 128; 26 = channel B, gain 32;
  27 = channel A, gain 64. A change of channel or gain restarts the
  conversions: the next result is ready after the settling time.
* Conversions complete every ``1 / rate_hz`` seconds (80 with RATE high, 10
  with RATE low), on the chip's own oscillator: ``tolerance_ppm`` makes it
  run fast (positive) or slow, ``phase_s`` places its first conversion, so
  several chips drift apart as real ones do.
* A result that is not read is overwritten by the next one.
* ``PD_SCK`` high for more than 60 us powers the chip down: ``DOUT`` goes
  high, so the rest of an interrupted read shifts in 1s (garbage). ``PD_SCK``
  low again powers it up with a reset: gain back to A/128, first result ready
  only after the settling time (50 ms at 80 SPS, 400 ms at 10 SPS).
* An input beyond full scale gives the saturation codes ``0x7FFFFF`` and
  ``0x800000``.

Modelling choices where the datasheet says nothing:

* ``DOUT`` stays high during the settling time (no unsettled results are
  offered);
* a conversion that completes while a read is in progress (after the first
  and before the 25th pulse) is lost (counted in ``lost_during_read``);
* pulses while no result is ready are ignored (``stray_pulses``), and pulses
  after the 27th of a read change nothing (the datasheet only says that
  fewer than 25 or more than 27 pulses in a conversion period cause a serial
  communication error).

The converted value is the input (counts at channel A, gain 128: a constant
or a function of time in seconds), halved at gain 64, plus optional seeded
Gaussian noise (40 counts rms by default, DESIGN.md section 8). Channel B has
its own input, in counts at gain 32.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from hardware.hx711.datasheet import CODE_MAX, CODE_MIN, GAIN_BY_PULSES, POWER_DOWN_AFTER_NS, SETTLING_S

__all__ = ["HX711Chip", "ChipCounters", "POWER_DOWN_AFTER_NS", "SETTLING_S", "GAIN_BY_PULSES"]

_MAX_CODE = CODE_MAX
_MIN_CODE = CODE_MIN

Input = float | int | Callable[[float], float]


@dataclass(slots=True)
class ChipCounters:
    """What happened inside one chip, for tests to look at."""

    #: conversions completed (results produced, read or not)
    conversions: int = 0
    #: results replaced by a newer one before they were read
    overwritten: int = 0
    #: results lost because they completed during a read
    lost_during_read: int = 0
    #: reads that got to the 25th pulse
    reads_completed: int = 0
    #: reads cut short by a power-down
    reads_aborted: int = 0
    power_downs: int = 0
    power_ups: int = 0
    #: changes of channel or gain (each forces settling)
    gain_changes: int = 0
    #: PD_SCK rising edges in total
    pulses: int = 0
    #: rising edges while no result was ready (ignored)
    stray_pulses: int = 0


class HX711Chip:
    """One HX711: ``PD_SCK`` in, ``DOUT`` out, conversions on its own oscillator.

    Parameters
    ----------
    now_ns : callable
        The clock, in integer nanoseconds (``time.monotonic_ns`` or a
        virtual clock's ``now_ns``).
    value : float or callable, default 0
        The input in counts at channel A, gain 128: a constant, or a function
        of time in seconds (on ``now_ns``) evaluated at each conversion.
    value_b : float or callable, default 0
        The channel B input, in counts at gain 32.
    rate_hz : {80, 10}
        The RATE pin: high gives 80 samples/s, low 10.
    tolerance_ppm : float, default 0
        Oscillator error: positive runs fast (shorter conversion period).
    phase_s : float, default 0
        When the first conversion completes after construction, in seconds,
        between 0 and one period.
    noise : bool, default False
        Add seeded Gaussian noise to each conversion.
    noise_rms_counts : float, default 40
        Noise level when ``noise`` is on.
    seed : int, default 0
        Seed of the noise generator.
    unplugged : bool, default False
        No chip on the line: ``DOUT`` reads high (the pull-up) whatever happens.
    stuck_low : bool, default False
        ``DOUT`` shorted to ground: it reads low whatever happens.
    name : str, default "hx711"
        Used in ``repr`` and messages.
    """

    def __init__(
        self,
        *,
        now_ns: Callable[[], int],
        value: Input = 0,
        value_b: Input = 0,
        rate_hz: float = 80.0,
        tolerance_ppm: float = 0.0,
        phase_s: float = 0.0,
        noise: bool = False,
        noise_rms_counts: float = 40.0,
        seed: int = 0,
        unplugged: bool = False,
        stuck_low: bool = False,
        name: str = "hx711",
    ) -> None:
        if float(rate_hz) not in SETTLING_S:
            raise ValueError(f"rate_hz must be 80 (RATE high) or 10 (RATE low), got {rate_hz!r}")
        if not -100_000 < tolerance_ppm < 100_000:
            raise ValueError(f"tolerance_ppm must be within +-100000 ppm, got {tolerance_ppm!r}")
        if noise_rms_counts < 0:
            raise ValueError(f"noise_rms_counts must be >= 0, got {noise_rms_counts!r}")
        if unplugged and stuck_low:
            raise ValueError("unplugged and stuck_low exclude each other: choose one")
        self.name = name
        self.rate_hz = float(rate_hz)
        self.period_ns = 1e9 / self.rate_hz / (1.0 + tolerance_ppm * 1e-6)
        if not 0 <= phase_s < self.period_ns / 1e9:
            raise ValueError(f"phase_s must be in [0, {self.period_ns / 1e9:.6f}) s (one period), got {phase_s!r}")
        # the settling time is counted in oscillator cycles too
        self.settling_ns = round(SETTLING_S[self.rate_hz] * 1e9 / (1.0 + tolerance_ppm * 1e-6))
        self._now_ns = now_ns
        self.value: Input = value
        self.value_b: Input = value_b
        self.noise = noise
        self.noise_rms_counts = float(noise_rms_counts)
        self._rng = random.Random(seed)
        self.unplugged = unplugged
        self.stuck_low = stuck_low
        self.counters = ChipCounters()

        self.channel = "A"
        self.gain = 128
        self._sck = 0
        self._t_rise_ns = 0
        self._powered = True
        self._ready = False
        self._word = 0xFFFFFF
        #: pulses in the current read: 0 = none yet, 1..24 = shifting, >= 25 = finishing
        self._pulses = 0
        self._t_select_ns = 0
        self._origin_ns = now_ns() + round(phase_s * 1e9)
        self._index = 0
        self._next_conv_ns = self._origin_ns

    # ------------------------------------------------------------------ pins

    def set_sck(self, level: int) -> None:
        """Drive ``PD_SCK``; edges are acted upon, a repeated level is ignored."""
        level = 1 if level else 0
        if level == self._sck:
            return
        now = self._now_ns()
        self._catch_up(now)
        self._sck = level
        if level:
            self._rising(now)
        else:
            self._falling(now)

    def dout(self) -> int:
        """Sample ``DOUT`` now (0 or 1)."""
        if self.unplugged:
            return 1
        if self.stuck_low:
            return 0
        self._catch_up(self._now_ns())
        if not self._powered:
            return 1
        pulses = self._pulses
        if pulses == 0:
            return 0 if self._ready else 1
        if pulses <= 24:
            return (self._word >> (24 - pulses)) & 1
        return 1

    # ----------------------------------------------------------- inspection

    @property
    def powered(self) -> bool:
        """False while the chip is powered down (``PD_SCK`` held high)."""
        self._catch_up(self._now_ns())
        return self._powered

    @property
    def ready(self) -> bool:
        """True while a result waits to be read (``DOUT`` low, no read started)."""
        self._catch_up(self._now_ns())
        return self._powered and self._ready and self._pulses == 0

    @property
    def next_conversion_s(self) -> float:
        """When the next conversion completes, in seconds on the chip's clock."""
        return self._next_conv_ns / 1e9

    def code_for(self, counts: float) -> int:
        """The 24-bit output word for an input of ``counts`` at the current gain."""
        value = round(counts)
        value = _MAX_CODE if value > _MAX_CODE else _MIN_CODE if value < _MIN_CODE else value
        return value & 0xFFFFFF

    def __repr__(self) -> str:
        state = "unplugged" if self.unplugged else "stuck low" if self.stuck_low else (
            "powered down" if not self._powered else f"{self.channel}/{self.gain}")
        return f"<HX711Chip {self.name} {state}>"

    # -------------------------------------------------------------- machine

    def _catch_up(self, now: int) -> None:
        if not self._powered:
            return
        if self._sck and now - self._t_rise_ns > POWER_DOWN_AFTER_NS:
            t_down = self._t_rise_ns + POWER_DOWN_AFTER_NS
            if t_down >= self._next_conv_ns:
                self._convert_until(t_down)
            self._power_down()
            return
        if now >= self._next_conv_ns:
            self._convert_until(now)

    def _convert_until(self, until: int) -> None:
        counters = self.counters
        while self._next_conv_ns <= until:
            t = self._next_conv_ns
            if self._pulses >= 25:
                channel, gain = GAIN_BY_PULSES[min(self._pulses, 27)]
                self._pulses = 0
                if (channel, gain) != (self.channel, self.gain):
                    self.channel, self.gain = channel, gain
                    counters.gain_changes += 1
                    self._restart(self._t_select_ns + self.settling_ns)
                    continue
            word = self._convert(t)
            counters.conversions += 1
            if 1 <= self._pulses <= 24:
                counters.lost_during_read += 1
            else:
                if self._ready:
                    counters.overwritten += 1
                self._word = word
                self._ready = True
            self._index += 1
            self._next_conv_ns = self._origin_ns + round(self._index * self.period_ns)

    def _convert(self, t_ns: int) -> int:
        source = self.value if self.channel == "A" else self.value_b
        counts = source(t_ns / 1e9) if callable(source) else source
        if self.channel == "A" and self.gain == 64:
            counts = counts / 2
        if self.noise and self.noise_rms_counts:
            counts = counts + self._rng.gauss(0.0, self.noise_rms_counts)
        return self.code_for(counts)

    def _restart(self, first_ns: int) -> None:
        self._origin_ns = first_ns
        self._index = 0
        self._next_conv_ns = first_ns

    def _rising(self, now: int) -> None:
        self._t_rise_ns = now
        if not self._powered:
            return
        counters = self.counters
        counters.pulses += 1
        pulses = self._pulses
        if pulses == 0 and not self._ready:
            counters.stray_pulses += 1
            return
        if pulses >= 27:
            return
        self._pulses = pulses = pulses + 1
        if pulses >= 25:
            self._t_select_ns = now  # the selection counts from the last pulse of the read
            if pulses == 25:
                counters.reads_completed += 1
                self._ready = False

    def _falling(self, now: int) -> None:
        if not self._powered:
            self._power_up(now)

    def _power_down(self) -> None:
        counters = self.counters
        counters.power_downs += 1
        if 1 <= self._pulses <= 24:
            counters.reads_aborted += 1
        self._powered = False
        self._ready = False
        self._pulses = 0

    def _power_up(self, now: int) -> None:
        self.counters.power_ups += 1
        self._powered = True
        self._ready = False
        self._pulses = 0
        self.channel, self.gain = "A", 128
        self._restart(now + self.settling_ns)
