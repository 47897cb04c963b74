"""Clocks for the fakes: a virtual clock for deterministic runs, a real one for real-time runs.

All three offer the functions of the :mod:`time` module the HX711 backends use
(``monotonic``, ``monotonic_ns``, ``perf_counter``, ``perf_counter_ns``,
``sleep``), so either can be passed where a backend takes ``clock=``, plus
``now_ns`` for :class:`hardware.hx711.chip.HX711Chip` and two hooks for the
fake GPIO modules: :meth:`gpio_call` (the cost of one library call) and
:meth:`stall` (a hiccup: the process is descheduled for a while).

On a :class:`VirtualClock` time moves only when something makes it move:
``sleep``, ``advance``, ``stall`` and the per-call cost of the fake GPIO
functions. A minute of acquisition then runs in a few seconds, and runs
exactly the same every time.

A :class:`PacedClock` is a virtual clock kept on the real one: time moves by
the modelled cost of each GPIO call while code runs, and catches up with the
real clock at every ``sleep`` (sleeping for real when it is ahead). Frames then
come at the real rate, stamped on the real monotonic clock, while a clock
pulse lasts what the same calls would take on a Pi, whatever this machine's
scheduler does in the middle of it.
"""

from __future__ import annotations

import time as _time
from typing import Any

__all__ = ["VirtualClock", "RealClock", "PacedClock"]


class VirtualClock:
    """Simulated time, in integer nanoseconds.

    Parameters
    ----------
    start_s : float, default 0
        The time the clock starts at.
    gpio_call_us : float, default 1
        How far each fake GPIO call moves the clock: a model of the call's
        overhead (about 1 us for lgpio on a Raspberry Pi 4).
    """

    def __init__(self, *, start_s: float = 0.0, gpio_call_us: float = 1.0) -> None:
        if start_s < 0:
            raise ValueError(f"start_s must be >= 0, got {start_s!r}")
        if gpio_call_us < 0:
            raise ValueError(f"gpio_call_us must be >= 0, got {gpio_call_us!r}")
        self._now_ns = round(start_s * 1e9)
        self.gpio_call_ns = round(gpio_call_us * 1000)
        #: number of sleep() calls and the total time slept, in seconds
        self.sleeps = 0
        self.slept_s = 0.0
        #: number of fake GPIO calls charged
        self.gpio_calls = 0

    # the time module's functions
    def now_ns(self) -> int:
        return self._now_ns

    def monotonic_ns(self) -> int:
        return self._now_ns

    def perf_counter_ns(self) -> int:
        return self._now_ns

    def monotonic(self) -> float:
        return self._now_ns / 1e9

    def perf_counter(self) -> float:
        return self._now_ns / 1e9

    def time(self) -> float:
        return self._now_ns / 1e9

    def sleep(self, seconds: float) -> None:
        """Move the clock on by ``seconds`` (like :func:`time.sleep`, without waiting)."""
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        self.sleeps += 1
        self.slept_s += seconds
        self._now_ns += round(seconds * 1e9)

    # hooks
    def advance(self, *, s: float = 0.0, ns: int = 0) -> None:
        """Move the clock on by ``s`` seconds plus ``ns`` nanoseconds."""
        step = round(s * 1e9) + ns
        if step < 0:
            raise ValueError(f"the clock only moves forward: s={s!r}, ns={ns!r}")
        self._now_ns += step

    def stall(self, *, ns: int) -> None:
        """A hiccup of ``ns`` nanoseconds (the process descheduled)."""
        self.advance(ns=ns)

    def gpio_call(self) -> None:
        """Charge the cost of one GPIO library call."""
        self.gpio_calls += 1
        self._now_ns += self.gpio_call_ns

    def __repr__(self) -> str:
        return f"<VirtualClock t={self._now_ns / 1e9:.6f} s>"


class RealClock:
    """The system clocks, with the same interface as :class:`VirtualClock`.

    GPIO calls cost what they really cost (:meth:`gpio_call` does nothing);
    :meth:`stall` busy-waits so that the hiccup is not shortened by sleep
    granularity.
    """

    now_ns = staticmethod(_time.monotonic_ns)
    monotonic_ns = staticmethod(_time.monotonic_ns)
    perf_counter_ns = staticmethod(_time.perf_counter_ns)
    monotonic = staticmethod(_time.monotonic)
    perf_counter = staticmethod(_time.perf_counter)
    time = staticmethod(_time.time)
    sleep = staticmethod(_time.sleep)

    def __init__(self) -> None:
        self.gpio_calls = 0

    def gpio_call(self) -> None:
        """Real calls cost real time: nothing to add."""

    def stall(self, *, ns: int) -> None:
        """Busy-wait ``ns`` nanoseconds."""
        end = _time.perf_counter_ns() + ns
        while _time.perf_counter_ns() < end:
            pass

    def __repr__(self) -> str:
        return "<RealClock>"


class PacedClock(VirtualClock):
    """Virtual time paced to the real monotonic clock (see the module's docstring).

    Between two ``sleep`` calls the time moves only by ``gpio_call_us`` per
    fake GPIO call (and by :meth:`advance` and :meth:`stall`); ``sleep(s)``
    moves it by ``s`` and then waits until the real clock has got there, or,
    when the real clock is already further on (the host was slower than the
    model), jumps to the real time. It never runs more than one sleep ahead of
    the real clock, and lags it only by the work done since the last sleep.

    Parameters
    ----------
    gpio_call_us : float, default 1
        The cost of one GPIO library call (about 1 us for lgpio on a Pi 4).
    real_ns, real_sleep : callable
        The real clock and sleep (``time.monotonic_ns``, ``time.sleep``).
    """

    def __init__(self, *, gpio_call_us: float = 1.0, real_ns: Any = _time.monotonic_ns,
                 real_sleep: Any = _time.sleep) -> None:
        super().__init__(gpio_call_us=gpio_call_us)
        self._real_ns = real_ns
        self._real_sleep = real_sleep
        self._now_ns = real_ns()
        #: the most the virtual time lagged the real one at a sleep, in ns (the host's slowness)
        self.max_lag_ns = 0

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        real = self._real_ns()
        ahead_ns = self._now_ns - real
        if ahead_ns > 0:
            self._real_sleep(ahead_ns / 1e9)
        else:
            self.max_lag_ns = max(self.max_lag_ns, -ahead_ns)
            self._now_ns = real

    def __repr__(self) -> str:
        return f"<PacedClock t={self._now_ns / 1e9:.6f} s>"
