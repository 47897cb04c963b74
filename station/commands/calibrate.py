"""`balance-station calibrate`: the terminal driver of the guided calibration, and the simulated technician.

The procedure itself (:class:`calibration.procedure.CalibrationProcedure`) is a
pure state machine; this module gives it frames and confirmations and shows
what it says:

- a **frame source**: the HX711 plate in its acquisition process
  (:class:`AcquisitionSource`), or a simulated plate run in this process
  (:class:`SimulatedSource`; in fast mode with ``--yes``, so an unattended run
  takes a few seconds, in real time otherwise);
- a **technician**: a person at the terminal who presses Enter when a step is
  done (:class:`TerminalTechnician`), or the simulated technician, who puts the
  commanded mass on the commanded point of the simulated plate
  (:class:`SimulatedTechnician`), optionally making one of the mistakes the
  procedure must catch (:class:`SimFault`, ``--sim-fault``);
- a **view**: the terminal (:class:`TerminalView`: instructions, a progress
  bar with the steadiness of the load, messages, the verification table) and,
  when there is a display and the run is not ``--yes``, the patient screen
  (:mod:`station.screen.calibration`).

The simulated plate made for a calibration has cells whose gains differ from
the built-in calibration by up to +-10 % and whose offsets differ by up to
1500 counts (drawn from the seed), so the calibration has real work to do;
the run says so and, at the end, how close the fitted gains came to the true
ones.

The new calibration is saved (atomically, :meth:`Calibration.save`) only when
the verification passes, or with ``--force``; a run that stops on bad input
saves nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import queue
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

import numpy as np

from calibration.model import Calibration, CalibrationError, simulator_calibration
from calibration.procedure import (
    UNITS,
    CalibrationProcedure,
    Plan,
    PlanError,
    ProcedureResult,
    State,
    format_mass,
    make_plan,
    parse_masses,
)
from hardware.sim.plate import SimulatedPlate
from station.core.errors import UserError
from station.core.frames import CELLS, HX711_MAX_CODE, FrameFlag, RawFrame
from station.core.geometry import PlateGeometry

#: masses used when none are given (``--yes``, or Enter at the prompt), by unit
DEFAULT_MASSES = {"kg": (20.0, 40.0), "lb": (45.0, 90.0)}
#: how far the simulated plate's cells are from the built-in calibration
SIM_GAIN_SPREAD = 0.10
SIM_OFFSET_SPREAD_COUNTS = 1500.0
#: how precisely the simulated technician puts a mass on its mark (standard deviation, each axis)
SIM_PLACEMENT_SD_MM = 0.1
#: the mistakes the simulated technician can make (``--sim-fault``)
SIM_FAULTS = ("wrong-point", "not-placed", "wrong-mass", "moving", "dead-cell", "saturated", "off-mark")
#: backend name written into a calibration made on the simulated plate; not "simulated", so the
#: station's simulator keeps its built-in calibration (this plate's cells are not the simulator's)
SIM_BACKEND = "simulated-calibration"


# -- frame sources -----------------------------------------------------------------------------


class FrameSource(Protocol):
    """What the wizard reads frames from."""

    description: str
    kind: str

    def poll(self) -> list[RawFrame]: ...
    def drain(self) -> list[RawFrame]: ...
    def close(self) -> None: ...


class SimulatedSource:
    """A :class:`SimulatedPlate` read in this process, with injectable cell faults.

    Parameters
    ----------
    plate : SimulatedPlate
        The plate (``realtime=False`` for fast mode).
    frames_per_poll : int
        Frames :meth:`poll` returns in fast mode (one tenth of a second at 80 Hz
        by default); in real time it returns the frames that are due.
    seed : int
        Seed of the noise a dead cell reads.

    Attributes
    ----------
    cell_faults : dict
        Cell name -> ``"dead"`` (reads its empty value and noise, whatever the
        load) or ``"saturated"`` (reads the HX711's full-scale code, flagged).
    """

    kind = "simulated"

    def __init__(self, plate: SimulatedPlate, *, frames_per_poll: int = 8, seed: int = 0) -> None:
        self.plate = plate
        self.frames_per_poll = frames_per_poll
        self.cell_faults: dict[str, str] = {}
        self._rng = np.random.default_rng(seed)
        self.description = plate.describe()
        plate.open()

    def command(self, name: str, /, **params: Any) -> None:
        self.plate.command(name, **params)

    def poll(self) -> list[RawFrame]:
        n = self.frames_per_poll if not self.plate.realtime else 1
        out = []
        for _ in range(n):
            frame = self.plate.read(timeout_s=1.0)
            if frame is None:
                break
            out.append(self._apply_faults(frame))
        return out

    def drain(self) -> list[RawFrame]:
        """Forget the time spent waiting for the technician (real time: restart the schedule now)."""
        if self.plate.realtime:
            self.plate.close()
            self.plate.open()
        return []

    def close(self) -> None:
        self.plate.close()

    def _apply_faults(self, frame: RawFrame) -> RawFrame:
        if not self.cell_faults:
            return frame
        counts = list(frame.counts)
        flags = frame.flags
        fault_cells = list(frame.fault_cells)
        for cell, kind in self.cell_faults.items():
            i = CELLS.index(cell)
            if kind == "dead":
                counts[i] = float(round(self.plate.true_offsets_counts[i]
                                        + self._rng.normal(0.0, max(self.plate.noise_counts, 1.0))))
            else:
                counts[i] = float(HX711_MAX_CODE)
                flags |= FrameFlag.SATURATED
                if cell not in fault_cells:
                    fault_cells.append(cell)
        return RawFrame(frame.seq, frame.t_s, tuple(counts), flags, tuple(fault_cells))  # type: ignore[arg-type]


class AcquisitionSource:
    """The plate in its acquisition process (:class:`station.live.acquisition.AcquisitionProcess`)."""

    def __init__(self, acq: Any) -> None:
        self.acq = acq
        self.kind = str(acq.info.get("kind", ""))
        self.description = str(acq.info.get("description", self.kind))

    def poll(self) -> list[RawFrame]:
        frames = self.acq.frames(timeout_s=0.1)
        if self.acq.error:
            raise UserError(f"the plate stopped: {self.acq.error}")
        if self.acq.ended and not frames:
            raise UserError("the plate source ended during the calibration")
        return frames

    def drain(self) -> list[RawFrame]:
        return self.acq.frames(timeout_s=0.0)

    def close(self) -> None:
        self.acq.stop()


def calibration_plate(geometry: PlateGeometry, *, seed: int, realtime: bool) -> SimulatedPlate:
    """A simulated plate whose cells differ from the built-in calibration (gains +-10 %, offsets +-1500 counts).

    The person is replaced by nothing (``start="empty"``): the simulated
    technician puts dead masses on it (``static_load``).
    """
    builtin = simulator_calibration()
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xCA11B]))
    gains = np.asarray(builtin.gains_n_per_count) * (1.0 + rng.uniform(-SIM_GAIN_SPREAD, SIM_GAIN_SPREAD, 4))
    offsets = np.round(np.asarray(builtin.offsets_counts)
                       + rng.uniform(-SIM_OFFSET_SPREAD_COUNTS, SIM_OFFSET_SPREAD_COUNTS, 4))
    return SimulatedPlate(geometry=geometry, seed=seed, realtime=realtime, start="empty",
                          true_gains_n_per_count=tuple(gains), true_offsets_counts=tuple(offsets))


def gain_deviation_pct(plate: SimulatedPlate) -> np.ndarray:
    """How far each simulated cell's true gain is from the built-in calibration's, in %."""
    builtin = np.asarray(simulator_calibration().gains_n_per_count)
    return 100.0 * (np.asarray(plate.true_gains_n_per_count) / builtin - 1.0)


# -- technicians ------------------------------------------------------------------------------------


class Technician(Protocol):
    """Does what the procedure asks and confirms it (``proc.confirm()``)."""

    def tick(self, proc: CalibrationProcedure) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class SimFault:
    """A mistake the simulated technician makes on one step.

    Parameters
    ----------
    kind : str
        One of :data:`SIM_FAULTS`. ``off-mark`` puts every verification mass
        2 mm off its mark (so the verification fails); the others happen on
        the first placement.
    step : int
        The step's index (0 is the tare; 1 is the first placement).
    attempts : int or None
        On how many tries of that step (None: on every try, so the
        procedure gives up and nothing is saved).
    """

    kind: str
    step: int = 1
    attempts: int | None = None

    @classmethod
    def parse(cls, text: str) -> SimFault:
        """``wrong-point`` (every try) or ``wrong-point:once`` (the first try only)."""
        kind, _, when = text.partition(":")
        if kind not in SIM_FAULTS:
            raise UserError(f"--sim-fault: unknown fault {kind!r} (one of {', '.join(SIM_FAULTS)})")
        if when not in ("", "once"):
            raise UserError(f"--sim-fault: {text!r}: add ':once' or nothing after the fault's name")
        return cls(kind, 1, 1 if when == "once" else None)

    def active(self, proc: CalibrationProcedure) -> bool:
        if self.kind == "off-mark":
            target = proc.step.target
            return target is not None and target.role == "verify"
        return proc.step.index == self.step and (self.attempts is None or proc.attempt <= self.attempts)


class SimulatedTechnician:
    """Puts the commanded mass on the commanded point of the simulated plate, then confirms.

    Parameters
    ----------
    source : SimulatedSource
        The simulated plate (commands and cell faults go there).
    fault : SimFault, optional
        A mistake to make.
    seed : int
        Seed of the placement scatter and of a rocking mass.
    placement_sd_mm : float
        How far from the mark a mass lands (standard deviation on each axis).
    gate : callable, optional
        Called with the procedure before each step; returns True when the
        technician may act (the terminal's Enter in a demonstration).
    say : callable, optional
        Receives one line describing each action.
    """

    def __init__(self, source: SimulatedSource, *, fault: SimFault | None = None, seed: int = 0,
                 placement_sd_mm: float = SIM_PLACEMENT_SD_MM,
                 gate: Callable[[CalibrationProcedure], bool] | None = None,
                 say: Callable[[str], None] | None = None) -> None:
        self.source = source
        self.fault = fault
        self.placement_sd_mm = placement_sd_mm
        self.gate = gate
        self.say = say or (lambda _line: None)
        self._rng = np.random.default_rng(np.random.SeedSequence([seed, 0x7EC4]))
        self._load: tuple[float, float, float] | None = None
        self._rocking = False
        self._t_rock = 0.0

    def tick(self, proc: CalibrationProcedure) -> None:
        if proc.finished:
            return
        if proc.awaiting_confirmation:
            if self.gate is not None and not self.gate(proc):
                return
            self._act(proc)
            proc.confirm()
        elif self._rocking and self._load is not None:
            # a hand on the mass: it rocks by a few per cent and a few mm, ten times a second
            mass, x, y = self._load
            self._t_rock += 1.0
            wobble = math.sin(2.1 * self._t_rock)
            self.source.command("behaviour", behaviour="static_load", mass_kg=mass * (1 + 0.04 * wobble),
                                x_mm=x + 6.0 * wobble, y_mm=y)

    def close(self) -> None:
        pass

    def _act(self, proc: CalibrationProcedure) -> None:
        step = proc.step
        fault = self.fault if self.fault is not None and self.fault.active(proc) else None
        self._rocking = False
        self.source.cell_faults = {}
        if fault is not None and fault.kind == "dead-cell":
            self.source.cell_faults = {"br": "dead"}
            self.say("simulated technician: (cell br's wire is loose: it reads nothing)")
        elif fault is not None and fault.kind == "saturated":
            self.source.cell_faults = {"fr": "saturated"}
            self.say("simulated technician: (cell fr is overloaded: it reads full scale)")
        if step.kind != "place":
            self._load = None
            self.source.command("behaviour", behaviour="empty")
            self.say("simulated technician: clears the plate")
            return
        target = step.target
        assert target is not None
        unit = proc.plan.unit
        mass, point = target.mass_kg, target.point
        if fault is not None and fault.kind == "not-placed":
            self._load = None
            self.source.command("behaviour", behaviour="empty")
            self.say("simulated technician: forgets to put the mass down, and confirms")
            return
        if fault is not None and fault.kind == "wrong-point":
            others = [p for p in proc.plan.points if p.name != point.name]
            point = min(others, key=lambda p: math.hypot(p.x_mm - target.point.x_mm, p.y_mm - target.point.y_mm))
            self.say(f"simulated technician: puts the {format_mass(mass, unit)} mass on {point.name} "
                     f"instead of {target.point.name}")
        elif fault is not None and fault.kind == "wrong-mass":
            mass = next(m for m in proc.plan.masses_kg if m != target.mass_kg)
            self.say(f"simulated technician: puts the {format_mass(mass, unit)} mass on {point.name} "
                     f"instead of the {format_mass(target.mass_kg, unit)} one")
        else:
            self.say(f"simulated technician: puts the {format_mass(mass, unit)} mass on {point.name}")
        dx, dy = self._rng.normal(0.0, self.placement_sd_mm, 2) if self.placement_sd_mm > 0 else (0.0, 0.0)
        if fault is not None and fault.kind == "off-mark":
            dx, dy = dx + 2.0, dy
            self.say("simulated technician: (misses the mark by 2 mm)")
        self._load = (mass, point.x_mm + float(dx), point.y_mm + float(dy))
        self.source.command("behaviour", behaviour="static_load", mass_kg=self._load[0], x_mm=self._load[1],
                            y_mm=self._load[2])
        if fault is not None and fault.kind == "moving":
            self._rocking = True
            self.say("simulated technician: keeps a hand on the mass, which rocks")


class LineReader:
    """Lines typed on standard input, read by a thread so the wizard's loop never blocks on them."""

    def __init__(self, stream: TextIO) -> None:
        self._q: queue.Queue[str | None] = queue.Queue()
        self._stream = stream
        self._thread = threading.Thread(target=self._run, name="stdin", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            line = self._stream.readline()
            if not line:
                self._q.put(None)
                return
            self._q.put(line.rstrip("\n"))

    def get(self) -> str | None | bool:
        """A line, None at the end of the input, False when nothing was typed."""
        try:
            return self._q.get_nowait()
        except queue.Empty:
            return False


class TerminalTechnician:
    """A person at the terminal: Enter confirms a step, ``q`` then Enter stops the calibration."""

    def __init__(self, reader: LineReader, view: TerminalView) -> None:
        self.reader = reader
        self.view = view
        self._prompted: tuple[int, int] | None = None

    def ready(self, proc: CalibrationProcedure) -> bool:
        """True once the person pressed Enter for the step shown."""
        key = (proc.step.index, proc.attempt)
        if self._prompted != key:
            self._prompted = key
            self.view.prompt("press Enter when done (q then Enter stops)")
        line = self.reader.get()
        if line is False:
            return False
        if line is None:
            raise UserError("standard input closed before the calibration finished; nothing was saved "
                            "(use --plate simulated --yes for an unattended run)")
        assert isinstance(line, str)
        if line.strip().lower() in ("q", "quit", "stop"):
            proc.abort("stopped by the technician")
            return False
        return True

    def tick(self, proc: CalibrationProcedure) -> None:
        if proc.awaiting_confirmation and self.ready(proc):
            proc.confirm()

    def close(self) -> None:
        pass


# -- the terminal view ------------------------------------------------------------------------------


class TerminalView:
    """Instructions, events, a progress bar and the verification table on a text stream.

    Parameters
    ----------
    out : text stream
        Where to write (standard output).
    progress_bar : bool
        Redraw a progress line while measuring (on a terminal, in real time).
    """

    BAR_CHARS = 24

    def __init__(self, out: TextIO, *, progress_bar: bool = False) -> None:
        self.out = out
        self.progress_bar = progress_bar
        self._bar_shown = False
        self._last_bar = ""
        self._last_key: tuple[int, bool, bool] | None = None

    def line(self, text: str = "") -> None:
        self._end_bar()
        self.out.write(text + "\n")
        self.out.flush()

    def prompt(self, text: str) -> None:
        self.line(f"        {text}")

    def events(self, proc: CalibrationProcedure) -> None:
        for e in proc.pop_events():
            if e.kind == "step":
                self.line(f"[{e.step + 1:>2}/{proc.n_steps}] {e.message}")
            elif e.kind == "measuring":
                continue
            elif e.kind == "accepted":
                self.line(f"        ok: {e.message}")
            elif e.kind == "rejected":
                self.line(f"        PROBLEM: {e.message}")
            elif e.kind == "warning":
                self.line(f"        WARNING: {e.message}")
            elif e.kind in ("fitted", "verified"):
                self.line(f"        {e.message}")
            elif e.kind == "failed":
                self.line(f"        {e.message}")
        if self.progress_bar and proc.state is State.MEASURING:
            self.bar(proc)

    def bar(self, proc: CalibrationProcedure) -> None:
        filled = round(proc.progress * self.BAR_CHARS)
        std = proc.stability_std_n
        steady = ("waiting for readings" if std is None else
                  f"{'steady' if proc.steady else 'MOVING'} ({std:.2f} N, steady below {proc.stable_std_n:g} N)")
        bar = "#" * filled + "-" * (self.BAR_CHARS - filled)
        text = f"\r        measuring [{bar}] {100 * proc.progress:3.0f} %  {steady}"
        key = (round(proc.progress * 50), proc.steady, std is None)
        if key != self._last_key or not self._bar_shown:
            self._last_key = key
            self.out.write(text.ljust(len(self._last_bar)))
            self.out.flush()
            self._last_bar = text
            self._bar_shown = True

    def _end_bar(self) -> None:
        if self._bar_shown:
            self.out.write("\n")
            self._bar_shown = False
            self._last_bar = ""

    def verification_table(self, result: ProcedureResult, plan: Plan) -> None:
        v = result.verification
        unit = plan.unit
        self.line("")
        self.line("Verification on fresh points (not used by the fit):")
        self.line(f"  {'point':<6}{'mass':>9}  {'true x':>8}{'true y':>8}  {'meas. x':>8}{'meas. y':>8}  "
                  f"{'COP error':>10}  {'force error':>11}")
        for target, row in zip(plan.verify, v.rows):
            self.line(f"  {target.point.name:<6}{format_mass(row.mass_kg, unit):>9}  "
                      f"{row.x_mm:>+8.1f}{row.y_mm:>+8.1f}  {row.measured_x_mm:>+8.2f}{row.measured_y_mm:>+8.2f}  "
                      f"{row.cop_error_mm:>7.2f} mm  {row.force_error_pct:>+9.3f} %")
        self.line(f"  {v.summary()}")


# -- the loop ---------------------------------------------------------------------------------------


def run_procedure(proc: CalibrationProcedure, source: FrameSource, technician: Technician, view: TerminalView,
                  *, screen: Any = None, max_polls: int | None = None) -> None:
    """Drive ``proc`` to its end: frames in, technician's confirmations, events out.

    ``screen`` (optional) has ``tick(proc)`` and ``quit_requested``; ``max_polls``
    bounds the loop (tests). Raises :class:`UserError` when the plate stops.
    """
    polls = 0
    while not proc.finished:
        view.events(proc)
        if proc.awaiting_confirmation:
            # frames from before the confirmation only update the live reading; they are not measured
            for frame in source.drain():
                proc.feed(frame)
            technician.tick(proc)
        else:
            technician.tick(proc)
        try:
            frames = source.poll()
        except UserError as exc:
            proc.abort(str(exc))
            view.events(proc)
            raise
        for frame in frames:
            proc.feed(frame)
        view.events(proc)
        if screen is not None:
            screen.tick(proc)
            if screen.quit_requested:
                proc.abort("stopped on the screen")
            elif screen.confirm_requested and proc.awaiting_confirmation:
                proc.confirm()
        polls += 1
        if max_polls is not None and polls >= max_polls:
            proc.abort(f"no end after {max_polls} polls")
    view.events(proc)


# -- the command ------------------------------------------------------------------------------------


def _read_masses(reader: LineReader, view: TerminalView, *, unit: str, points: int, geometry: PlateGeometry) -> Plan:
    default = ",".join(f"{m:g}" for m in DEFAULT_MASSES[unit])
    while True:
        view.line(f"Calibration masses in {unit}, separated by commas (at least two different ones; "
                  f"Enter for {default}):")
        line: Any = False
        while line is False:
            line = reader.get()
            if line is False:
                threading.Event().wait(0.05)
        if line is None:
            raise UserError("standard input closed before the masses were given; nothing was saved")
        text = str(line).strip() or default
        try:
            return make_plan(parse_masses(text), unit=unit, points=points, geometry=geometry)
        except PlanError as exc:
            view.line(f"        PROBLEM: {exc}; enter the masses again")


def _reference(settings: Any, kind: str, *, ignore_previous: bool = False) -> tuple[Calibration, bool, str]:
    """The calibration the checks start from, whether its offsets are this plate's, and what it is."""
    if kind == "simulated":
        return simulator_calibration(), True, "the built-in calibration"
    path = settings.calibration_path
    if path.exists() and not ignore_previous:
        try:
            previous = Calibration.load(path)
        except CalibrationError:
            previous = None
        if previous is not None and previous.backend not in ("simulated", SIM_BACKEND):
            return previous, True, f"the previous calibration ({path}, {previous.created_at.date()})"
    return simulator_calibration(), False, "nominal gains (100 kg, 2 mV/V cells)"


def _guard_real_calibration(path: Path) -> None:
    """A simulated run must not replace a real plate's calibration."""
    if not path.exists():
        return
    try:
        existing = Calibration.load(path)
    except CalibrationError:
        return
    if existing.backend not in ("simulated", SIM_BACKEND, ""):
        raise UserError(f"{path} holds the calibration of a real plate ({existing.backend}, "
                        f"{existing.created_at.date()}): a simulated calibration will not replace it; "
                        "give another file with --output")


def _write_report(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def calibrate(args: argparse.Namespace, *, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """The ``calibrate`` command. Returns the exit code: 0 saved, 1 verification failed (not saved).

    Raises :class:`UserError` (exit 2) for bad options and for a procedure
    that stopped on bad input; nothing is saved then.
    """
    from station.commands.run import say, start_plate
    from station.core.config import load_settings

    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    settings = load_settings(args.config, plate_source=args.plate, data_dir=args.data_dir)
    geometry = settings.plate.geometry()
    unit = args.unit
    sim_fault = SimFault.parse(args.sim_fault) if args.sim_fault else None

    # the plan first: bad masses are refused before any plate is started
    plan: Plan | None = None
    if args.masses is not None:
        plan = make_plan(parse_masses(args.masses), unit=unit, points=args.points, geometry=geometry)
    elif args.yes:
        plan = make_plan(DEFAULT_MASSES[unit], unit=unit, points=args.points, geometry=geometry)

    choice = settings.plate_source
    simulated = choice == "simulated" or (choice == "auto" and settings.hx711 is None)
    if args.yes and not simulated:
        raise UserError("--yes runs the simulated technician, who can only work on the simulated plate "
                        "(add --plate simulated)")
    if sim_fault is not None and not simulated:
        raise UserError("--sim-fault needs the simulated plate (add --plate simulated)")
    output = Path(args.output) if args.output else settings.calibration_path
    if simulated:
        _guard_real_calibration(output)

    view = TerminalView(stdout, progress_bar=not args.yes and stdout.isatty())
    reader = LineReader(stdin) if not args.yes else None
    source: Any = None
    acq = None
    try:
        if not simulated:
            acq = start_plate(settings)
            if acq.info.get("kind") in ("simulated", "replay"):
                acq.stop()
                acq = None
                simulated = True
                _guard_real_calibration(output)
            else:
                source = AcquisitionSource(acq)
        truth: SimulatedPlate | None = None
        if simulated:
            seed = settings.simulator.seed if settings.simulator.seed is not None else int(
                np.random.SeedSequence().entropy % 1_000_000)  # type: ignore[operator]
            # real time only for a person watching at a terminal; fast otherwise (--yes, piped input, tests)
            watched = not args.yes and stdin.isatty() and stdout.isatty()
            truth = calibration_plate(geometry, seed=seed, realtime=watched)
            source = SimulatedSource(truth, seed=seed)
            dev = gain_deviation_pct(truth)
            say(f"plate: {source.description}, made for calibrating: its cells' gains differ from the built-in "
                "calibration by " + ", ".join(f"{c} {d:+.1f} %" for c, d in zip(CELLS, dev))
                + " (the calibration must find them)")
        kind = "simulated" if simulated else source.kind
        reference, trusted, reference_text = _reference(settings, kind, ignore_previous=args.ignore_previous)

        if plan is None:
            assert reader is not None
            plan = _read_masses(reader, view, unit=unit, points=args.points, geometry=geometry)
        n_fit, n_ver = len(plan.fit), len(plan.verify)
        view.line(f"Calibration plan: masses {', '.join(plan.mass_text(m) for m in plan.masses_kg)}; "
                  f"{len({t.point.name for t in plan.fit})} points; {n_fit} placements to fit, "
                  f"{n_ver} on fresh points to verify. Checks start from {reference_text}.")
        proc = CalibrationProcedure(
            plan, geometry=geometry, reference=reference, check_reference_offsets=trusted,
            station_id=settings.station_id, backend=SIM_BACKEND if simulated else kind,
            note=("Made on the simulated plate (a demonstration); not valid for a real plate."
                  if simulated else "Made with 'balance-station calibrate'."),
        )
        technician: Any
        if simulated:
            gate = None
            if reader is not None:
                terminal = TerminalTechnician(reader, view)
                gate = terminal.ready
            technician = SimulatedTechnician(source, fault=sim_fault, seed=truth.seed if truth else 0, gate=gate,
                                             say=view.prompt)
        else:
            assert reader is not None
            technician = TerminalTechnician(reader, view)

        screen = None
        if not args.yes and not args.no_screen and settings.screen.enabled:
            from station.screen.calibration import open_calibration_screen

            screen, why = open_calibration_screen(settings.screen, geometry=geometry, synthetic=simulated)
            say("screen: calibration shown on the patient screen" if screen is not None
                else f"screen: none ({why}); the terminal only")
        try:
            run_procedure(proc, source, technician, view, screen=screen)
        finally:
            if screen is not None:
                screen.close()

        if proc.state is State.FAILED or proc.result is None:
            if args.report:
                _write_report(Path(args.report), {
                    "passed": False, "max_cop_error_mm": None, "rms_cop_error_mm": None, "max_force_error_pct": None,
                    "error": proc.failure, "saved": False,
                })
            raise UserError(f"calibration stopped: {proc.failure}; nothing was saved")

        result = proc.result
        view.verification_table(result, plan)
        if truth is not None:
            err = 100.0 * (np.asarray(result.calibration.gains_n_per_count)
                           / np.asarray(truth.true_gains_n_per_count) - 1.0)
            view.line("  fitted gains against the simulated cells' true gains: "
                      + ", ".join(f"{c} {e:+.3f} %" for c, e in zip(CELLS, err)))
        passed = bool(result.verification.passed)
        save = passed or args.force
        report = result.to_report()
        report["saved"] = bool(save)
        report["calibration_file"] = str(output) if save else None
        report["plate"] = source.description
        if save:
            result.calibration.save(output)
        if args.report:
            _write_report(Path(args.report), report)
            view.line(f"report: {args.report}")
        if save:
            forced = "" if passed else " (verification FAILED, saved because of --force)"
            view.line(f"calibration saved: {output}{forced}")
            return 0
        message = (f"calibration NOT saved: the verification failed (max COP error "
                   f"{result.verification.max_cop_error_mm:.2f} mm, force error "
                   f"{result.verification.max_force_error_pct:.2f} %); repeat it, or use --force to save anyway")
        view.line(message)
        say(message)
        return 1
    finally:
        if source is not None:
            source.close()
        elif acq is not None:
            acq.stop()


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``calibrate`` subcommand's own options."""
    # "--masses -5,20" must reach the plan (which says what is wrong with -5), not read as an option
    p._negative_number_matcher = re.compile(r"^-\d[\d.,\s-]*$|^-\.\d[\d.,\s-]*$")  # type: ignore[attr-defined]
    p.add_argument("--yes", action="store_true",
                   help="unattended: the simulated technician places the masses (simulated plate only)")
    p.add_argument("--masses", default=None, metavar="M1,M2,...",
                   help="calibration masses, at least two different ones (asked for when not given; "
                        "with --yes: 20,40 kg or 45,90 lb)")
    p.add_argument("--unit", choices=UNITS, default="kg", help="unit of the masses (default kg)")
    p.add_argument("--points", type=int, choices=(5, 9), default=9,
                   help="fitting points: 5 (centre and quadrants) or 9 (and corner regions; default)")
    p.add_argument("--report", type=Path, default=None, metavar="FILE",
                   help="write the verification as JSON (max_cop_error_mm, rms_cop_error_mm, max_force_error_pct, "
                        "passed, ...)")
    p.add_argument("--output", type=Path, default=None, metavar="FILE",
                   help="where to save the calibration (default: the configured calibration file)")
    p.add_argument("--force", action="store_true", help="save even when the verification fails")
    p.add_argument("--no-screen", action="store_true", help="terminal only, no patient screen")
    p.add_argument("--ignore-previous", action="store_true",
                   help="start the checks from nominal gains, not the previous calibration (after replacing a cell "
                        "or a board)")
    p.add_argument("--sim-fault", default=None, metavar="FAULT[:once]",
                   help="simulated plate: the technician makes a mistake at the first placement, on every try "
                        f"or once ({', '.join(SIM_FAULTS)})")
