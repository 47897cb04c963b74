"""The chip-model plate (``balance-station --plate chip-model``): the real HX711 backend, clocking four
bit-level chip models through the fake GPIO modules, in real time, with a simulated person on them.

Built in the acquisition process (``SourceSpec("chip-model", ...)``, :mod:`station.live.acquisition`):

- a :class:`~hardware.sim.person.SimPerson` is stepped at 80 Hz on the real monotonic clock; its
  vertical force and centre of pressure are split onto the four corners
  (:func:`station.core.cop.split_load`) and turned into counts with the simulated plate's cells as
  built (:data:`hardware.sim.cells.SIMULATED_CELLS`), so the built-in calibration reads them exactly;
- those counts are the analog inputs of four :class:`~hardware.hx711.chip.HX711Chip` models (80 SPS,
  each on its own oscillator, 40 counts rms of noise), wired on a :class:`~hardware.fakes.board.Board`
  as docs/hardware.md says (one shared PD_SCK for the lgpio backend, a clock per board for rpigpio)
  and running on the real clock (:class:`~hardware.fakes.clock.RealClock`);
- the fake ``lgpio`` and ``RPi.GPIO`` modules for that board go into :data:`sys.modules` in
  :meth:`ChipModelPlate.open` (in this process only: a real Pi never imports this module), and the
  backend is built exactly as on the Pi, from the ``[hx711]`` settings, without a clock or a module
  handed in: it imports ``lgpio`` (or the ``hx711`` package imports ``RPi.GPIO``) and clocks the chips.

Everything the backend does (readiness polling, the 25 pulses, the clock-high guard, discards,
resets, faults naming the cell and GPIO) is the code that runs on the Pi; only the chips are models.
Frames carry :attr:`~station.core.frames.FrameFlag.SYNTHETIC` (the person is simulated).

Faults for demonstrations and tests (``[simulator] chip_fault = "CELL:KIND"``, from
``chip_fault_after_s`` after the plate opens; see :func:`parse_fault`):

``stuck_low``
    the cell's DOUT shorted to ground: the backend flags its frames, then reports a fault naming the
    cell and GPIO (again about once a second while it lasts);
``unplugged``
    the cell's DOUT reads high (board unplugged or without power): "HX711 not ready ... cell fr (DOUT
    GPIO 27)" about once a second;
``power_down``
    a clock-high phase of :data:`POWER_DOWN_PULSE_US` on the cell's PD_SCK line every
    :data:`POWER_DOWN_EVERY_S` (the acquisition descheduled in the middle of a pulse): the chip powers
    down (with a shared clock, all four do), the backend discards the read and resets the chips; the
    status page counts the discarded reads and the dropped frames, and the frame rate falls.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from hardware.base import PlateSource
from hardware.fakes.board import DEFAULT_DATA_GPIOS, DEFAULT_SCK_GPIO, DEFAULT_SCK_GPIOS, Board
from hardware.fakes.clock import PacedClock, RealClock
from hardware.fakes.install import FakeModules, fake_gpio_modules
from hardware.sim.cells import SIMULATED_CELLS
from hardware.sim.person import SimPerson
from hardware.sim.plate import check_command
from station.core.cop import split_load
from station.core.frames import CELLS, FrameFlag, RawFrame
from station.core.geometry import PlateGeometry

__all__ = ["ChipModelPlate", "FAULT_KINDS", "BACKENDS", "CLOCKS", "parse_fault", "POWER_DOWN_PULSE_US",
           "POWER_DOWN_EVERY_S"]

#: the HX711 backends the plate can run (the ``[hx711] backend`` setting)
BACKENDS = ("lgpio", "rpigpio")
#: the clocks the chips and the backend can run on
CLOCKS = ("paced", "real")
#: faults that can be injected into one chip
FAULT_KINDS = ("stuck_low", "unplugged", "power_down")
#: the ``power_down`` fault: a clock-high phase this long (the chip powers down after 60 us) ...
POWER_DOWN_PULSE_US = 100.0
#: ... this often
POWER_DOWN_EVERY_S = 0.5
#: the person is stepped this far ahead of the clock, between reads (a command applies after it at most)
LOOKAHEAD_S = 0.05
#: ticks kept behind the clock (the four chips convert up to a period apart; a read may wait up to a second)
KEEP_S = 1.5
#: rising edges into a read before the long pulse (in the middle of the 24 data bits)
_PULSE_AFTER_RISES = 10


def parse_fault(text: str | None) -> tuple[str, str] | None:
    """``"fr:stuck_low"`` -> ``("fr", "stuck_low")``; ``None``, ``""`` or ``"none"`` -> None.

    Raises ValueError naming the accepted cells and kinds.
    """
    if text is None or not str(text).strip() or str(text).strip().lower() == "none":
        return None
    cell, sep, kind = str(text).strip().lower().partition(":")
    if not sep or cell not in CELLS or kind not in FAULT_KINDS:
        raise ValueError(f"chip_fault must be 'none' or CELL:KIND with CELL one of {', '.join(CELLS)} and KIND one "
                         f"of {', '.join(FAULT_KINDS)} (e.g. 'fr:stuck_low'), got {text!r}")
    return cell, kind


class ChipModelPlate(PlateSource):
    """The real HX711 backend on four chip models fed by a simulated person (see the module's docstring).

    Parameters
    ----------
    backend : {"lgpio", "rpigpio"}
        Which backend clocks the chips (the ``[hx711] backend`` setting).
    gpiochip, sck_gpio, sck_gpios, data_gpios, max_high_us, ready_timeout_s
        The ``[hx711]`` settings, given to the backend as on the Pi (and used to wire the fake board).
    geometry : PlateGeometry, optional
        The plate (cell spacing, footprints).
    seed : int
        Seed of the person and of the chips' noise.
    mass_kg : float
        The simulated person's body mass.
    skill : str
        ``"normal"`` or ``"weak_abductors"``.
    start : {"quiet", "empty"}
        The person stands on the plate from the start, or the plate starts empty.
    noise : bool
        The chips add their 40 counts rms of noise.
    fault : str, optional
        ``"CELL:KIND"`` (:func:`parse_fault`), injected ``fault_after_s`` after :meth:`open`.
    fault_after_s : float
        When the fault starts.
    clock : {"paced", "real"}
        ``"paced"``: the chips and the backend's timing on a :class:`~hardware.fakes.clock.PacedClock`, on
        which a GPIO call costs 1 us (lgpio's C call on a Pi) and time catches up with the real clock at each
        of the backend's sleeps: frames come in real time, and a clock pulse is never lengthened by this
        machine's scheduler in the middle of the Python fake (what a Pi with its 2 us pulses would rarely
        see). ``"real"``: everything on the system clock, the backend on the :mod:`time` module as on the
        Pi: every hiccup of this machine inside a pulse counts (discarded reads, resets), as on a Pi
        under heavy load.
    """

    kind = "chip-model"
    nominal_rate_hz = 80.0

    def __init__(
        self,
        *,
        backend: str = "lgpio",
        gpiochip: int = 0,
        sck_gpio: int = DEFAULT_SCK_GPIO,
        sck_gpios: Sequence[int] = DEFAULT_SCK_GPIOS,
        data_gpios: Sequence[int] = DEFAULT_DATA_GPIOS,
        max_high_us: float = 50.0,
        ready_timeout_s: float = 0.5,
        geometry: PlateGeometry | None = None,
        seed: int = 0,
        mass_kg: float = 70.0,
        skill: str = "normal",
        start: str = "quiet",
        noise: bool = True,
        fault: str | None = None,
        fault_after_s: float = 0.0,
        clock: str = "paced",
        realtime_priority: bool = False,
    ) -> None:
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
        if clock not in CLOCKS:
            raise ValueError(f"clock must be one of {list(CLOCKS)}, got {clock!r}")
        if start not in ("quiet", "empty"):
            raise ValueError(f"start must be 'quiet' or 'empty', got {start!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if not (isinstance(fault_after_s, (int, float)) and math.isfinite(fault_after_s) and fault_after_s >= 0):
            raise ValueError(f"fault_after_s must be a number >= 0, got {fault_after_s!r}")
        self.backend_name = backend
        self.fault = parse_fault(fault)
        self.fault_after_s = float(fault_after_s)
        self.geometry = geometry if geometry is not None else PlateGeometry()
        self.seed = seed
        self.clock_name = clock
        self.realtime_priority = bool(realtime_priority)
        #: whether this process got real-time scheduling in open()
        self.got_realtime_priority = False
        self.clock: Any = PacedClock() if clock == "paced" else RealClock()
        backend_clock = self.clock if clock == "paced" else None  # "real": the backend uses the time module, as on a Pi
        self._sck_by_cell = dict(zip(CELLS, (sck_gpio,) * 4 if backend == "lgpio" else tuple(sck_gpios)))
        values = [self._input(i) for i in range(4)]
        if backend == "lgpio":
            self.board = Board.shared_clock(clock=self.clock, sck_gpio=sck_gpio, data_gpios=data_gpios, values=values,
                                            noise=noise, seed=seed, gpiochip=gpiochip)
            from hardware.hx711.lgpio_backend import SharedClockHX711Plate

            self.backend: PlateSource = SharedClockHX711Plate(
                gpiochip=gpiochip, sck_gpio=sck_gpio, data_gpios=data_gpios, max_high_us=max_high_us,
                ready_timeout_s=ready_timeout_s, clock=backend_clock)
        else:
            self.board = Board.per_board_clock(clock=self.clock, sck_gpios=sck_gpios, data_gpios=data_gpios,
                                               values=values, noise=noise, seed=seed, gpiochip=gpiochip)
            from hardware.hx711.rpigpio_backend import PerBoardHX711Plate

            self.backend = PerBoardHX711Plate(sck_gpios=sck_gpios, data_gpios=data_gpios, max_high_us=max_high_us,
                                              ready_timeout_s=ready_timeout_s, clock=backend_clock)
        self.stats = self.backend.stats  # the backend's counters are the plate's: dropped reads, faults
        self.person = SimPerson(rng=np.random.default_rng(seed), rate_hz=self.nominal_rate_hz, geometry=self.geometry,
                                mass_kg=mass_kg, skill=skill)
        if start == "quiet":
            self.person.behave("quiet")
        self._offsets = SIMULATED_CELLS.offsets_counts
        self._gains = SIMULATED_CELLS.gains_n_per_count
        #: the person's ticks: (time on the monotonic clock, the four cells' counts), oldest first
        self._ticks: collections.deque[tuple[float, tuple[float, float, float, float]]] = collections.deque(
            [(-math.inf, tuple(self._offsets))])  # type: ignore[list-item]
        self._next_step_s = 0.0
        self._skipped_s = 0.0
        self._commands: collections.deque[tuple[str, Any]] = collections.deque()
        self._fakes: AbstractContextManager[FakeModules] | None = None
        self._opened_s: float | None = None
        self._fault_applied = False
        self._next_pulse_s = 0.0
        #: long clock pulses injected so far (the ``power_down`` fault)
        self.pulses_injected = 0
        #: ground truth of the person's last tick
        self.truth: Any = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> ChipModelPlate:
        """Build from plain, picklable settings: the constructor's keys, the geometry as ``ml_mm``, ``ap_mm``,
        ``feet_ml_mm`` (``body_mass_kg`` is accepted for ``mass_kg``)."""
        params = dict(settings)
        geo = {k: params.pop(k) for k in ("ml_mm", "ap_mm", "feet_ml_mm") if k in params}
        if "body_mass_kg" in params:
            params["mass_kg"] = params.pop("body_mass_kg")
        return cls(geometry=PlateGeometry(**geo), **params)

    # ------------------------------------------------------------ the chips' inputs

    def _input(self, index: int) -> Any:
        def counts_at(t_s: float) -> float:
            return self._counts_at(t_s)[index]

        return counts_at

    def _counts_at(self, t_s: float) -> tuple[float, float, float, float]:
        """The four cells' counts at ``t_s``: the person's latest tick at or before it.

        Called by the chips when a conversion completes, which can be in the middle of a clock pulse: only a
        look-up here, so that a pulse is never lengthened by the simulation (the ticks are computed ahead,
        between reads, by :meth:`_advance_person`).
        """
        ticks = self._ticks
        for i in range(len(ticks) - 1, -1, -1):
            tick_s, counts = ticks[i]
            if tick_s <= t_s:
                return counts
        return ticks[0][1]

    def _advance_person(self, now_s: float) -> None:
        """Step the person up to ``now_s + LOOKAHEAD_S`` and forget the ticks older than ``KEEP_S``."""
        ticks = self._ticks
        next_s, dt, until = self._next_step_s, self.person.dt_s, now_s + LOOKAHEAD_S
        if until - next_s > KEEP_S:  # a long pause (a fault's retry wait): skip ahead, the past is not read
            self._skipped_s += until - KEEP_S - next_s
            next_s = until - KEEP_S
        g, off, gain = self.geometry, self._offsets, self._gains
        while next_s <= until:
            while self._commands:
                kind, payload = self._commands.popleft()
                if kind == "scenario":
                    self.person.set_scenario(payload)
                else:
                    which, checked = payload
                    self.person.behave(which, **checked)
            self.truth = truth = self.person.step()
            if truth.fz_n > 0 and math.isfinite(truth.cop_ml_mm) and math.isfinite(truth.cop_ap_mm):
                load = split_load(truth.fz_n, truth.cop_ml_mm, truth.cop_ap_mm, ml_mm=g.ml_mm, ap_mm=g.ap_mm).tolist()
            else:
                load = [0.0, 0.0, 0.0, 0.0]
            ticks.append((next_s, (off[0] + load[0] / gain[0], off[1] + load[1] / gain[1],
                                   off[2] + load[2] / gain[2], off[3] + load[3] / gain[3])))
            next_s += dt
        self._next_step_s = next_s
        while len(ticks) > 1 and ticks[1][0] < now_s - KEEP_S:
            ticks.popleft()

    # ------------------------------------------------------------------ PlateSource

    def open(self) -> None:
        if self._fakes is not None:
            return
        if self.realtime_priority and not self.got_realtime_priority:
            self.got_realtime_priority = _ask_for_realtime_scheduling()
        now = self.clock.monotonic()
        self._next_step_s = now
        self._advance_person(now)
        fakes = fake_gpio_modules(self.board)
        fakes.__enter__()
        self._fakes = fakes
        try:
            self.backend.open()
        except BaseException:
            self.close()
            raise
        self._opened_s = self.clock.monotonic()
        self._next_pulse_s = self._opened_s + self.fault_after_s

    def close(self) -> None:
        try:
            self.backend.close()
        finally:
            if self._fakes is not None:
                fakes, self._fakes = self._fakes, None
                fakes.__exit__(None, None, None)

    def describe(self) -> str:
        fault = ""
        if self.fault is not None:
            fault = f"; fault {self.fault[0]}:{self.fault[1]} from {self.fault_after_s:g} s"
        priority = ", real-time priority" if self.got_realtime_priority else ""
        pace = "paced real time" if self.clock_name == "paced" else "real time on the system clock"
        return (f"HX711 chip model: {self.backend.describe()}, on 4 bit-level HX711 models through fake GPIO "
                f"modules, in {pace}{priority}; simulated person (seed {self.seed}, {self.person.mass_kg:g} kg){fault}")

    def command(self, name: str, /, **params: Any) -> None:
        """The simulated person's commands (``lean_to``, ``behaviour``, ``scenario``), as on the simulated plate."""
        self._commands.append(check_command(name, params, geometry=self.geometry))

    def read(self, timeout_s: float = 1.0) -> RawFrame:
        self._advance_person(self.clock.monotonic())
        if self.fault is not None and self._opened_s is not None:
            self._inject()
        frame = self.backend.read(timeout_s)
        return dataclasses.replace(frame, flags=frame.flags | FrameFlag.SYNTHETIC)

    # ---------------------------------------------------------------------- faults

    def _inject(self) -> None:
        assert self.fault is not None and self._opened_s is not None
        now = self.clock.monotonic()
        if now < self._opened_s + self.fault_after_s:
            return
        cell, kind = self.fault
        if kind == "power_down":
            if now >= self._next_pulse_s:
                self.board.arm_stall(gpio=self._sck_by_cell[cell], stall_us=POWER_DOWN_PULSE_US,
                                     after_rises=_PULSE_AFTER_RISES)
                self.pulses_injected += 1
                self._next_pulse_s = now + POWER_DOWN_EVERY_S
        elif not self._fault_applied:
            setattr(self.board.chips[cell], kind, True)
            self._fault_applied = True


def _ask_for_realtime_scheduling() -> bool:
    """SCHED_FIFO at the lowest real-time priority for this process (its threads started later inherit it)."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except (OSError, AttributeError):  # not allowed, or not Linux
        return False
    return True
