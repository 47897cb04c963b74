"""The guided calibration as a pure state machine fed by raw frames.

The procedure knows nothing of terminals, screens or plates: a driver (the
terminal wizard, the patient screen, a test) feeds it raw frames
(:class:`station.core.frames.RawFrame`, in counts, stamped with ``t_s``) and
calls :meth:`CalibrationProcedure.confirm` when the technician says a step is
done. Time is the frames' own ``t_s``, so the procedure runs the same on the
live plate, on the simulated plate in fast mode and in tests.

Steps
-----
1. **tare**: the plate is cleared; a steady window of the empty plate gives
   the offsets (:func:`calibration.solver.tare_offsets`).
2. **place**, once per (mass, marked point) of the plan: the technician puts
   mass M on point P and confirms; the procedure waits for a steady window
   (``window_s`` of frames whose per-cell spread stays below ``stable_std_n``),
   then checks the reading (below) and keeps its mean counts as a
   :class:`calibration.solver.Placement`. The mass is moved from point to
   point, not lifted off in between: every placement is checked for its
   position, so a mass left at the previous point is caught.
3. **fit**, after the last fitting placement: per-cell gains by least squares
   (:func:`calibration.solver.fit_gains`). With 6 placements or more the full
   3x4 matrix is fitted too (:func:`calibration.solver.fit_matrix`), as a
   diagnosis only: when it explains the placements much better than the four
   gains, a warning names crosstalk between the cells. The calibration keeps
   the per-cell gains, because the station's force pipeline and the
   recordings' per-corner columns work with one force per cell.
4. **place** on the verification points: fresh points, not used by the fit,
   each with one of the masses in turn; :func:`calibration.solver.verify`
   compares the COP and the force the new calibration measures there with
   where the mass is and what it weighs.
5. **remove**: the plate is cleared again; its reading must return to zero.

Checks
------
Each failed check gives one message naming the problem and repeats the step
(up to ``max_attempts`` tries, then the procedure fails and nothing may be
saved):

- a cell that does not answer (:attr:`FrameFlag.CELL_FAULT`), or saturates
  (:attr:`FrameFlag.SATURATED` or the HX711's full-scale codes);
- a cell that reads the same count in every frame (dead, disconnected), or
  does not respond to the load while the three others do, or whose count goes
  down under load (signal wires swapped);
- a load that does not come to rest within ``timeout_s`` (a rocking mass, a
  hand on the plate);
- nothing placed (the plate reads almost nothing), the wrong mass (the
  reading is off by more than ``mass_tolerance_pct``);
- the wrong point: the centre of pressure, computed with a provisional
  calibration (the tare offsets and the reference gains, refined by a fit as
  soon as one mass has been on every point), is further than the tolerance
  from the marked point; the message says where the mass is and where it
  should be.

Masses entered as zero or negative are refused when the plan is made
(:func:`make_plan`).
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from calibration import solver
from calibration.model import Calibration
from station.core.cop import GRAVITY_M_S2, centre_of_pressure, split_load
from station.core.errors import UserError
from station.core.frames import CELLS, HX711_MAX_CODE, HX711_MIN_CODE, FrameFlag, RawFrame
from station.core.geometry import PlateGeometry

KG_PER_LB = 0.45359237
UNITS = ("kg", "lb")
#: numbers of fitting points a plan may have: centre + 4 quadrants, + 4 corner regions
POINT_COUNTS = (5, 9)

#: where the marked points lie, as fractions of the half cell spacing
QUADRANT_FRACTION = 0.5
CORNER_FRACTION = 0.8
VERIFY_FRACTION = 0.6


class PlanError(UserError):
    """A calibration plan that cannot be made: a bad mass, unit or number of points."""


# -- the plan -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MarkedPoint:
    """A point marked on the plate top where a mass is placed.

    Parameters
    ----------
    name : str
        ``P1``... for the fitting points, ``V1``... for the verification points.
    label : str
        Where it is in words (``front-left quadrant``).
    x_mm, y_mm : float
        Its position in the plate frame (DESIGN.md section 3).
    """

    name: str
    label: str
    x_mm: float
    y_mm: float

    def describe(self) -> str:
        """``P2 (front-left quadrant, x = -100 mm, y = +75 mm)``."""
        return f"{self.name} ({self.label}, x = {self.x_mm:+.0f} mm, y = {self.y_mm:+.0f} mm)"


def fit_points(geometry: PlateGeometry, *, points: int = 9) -> tuple[MarkedPoint, ...]:
    """The fitting points: the centre, the four quadrants and (``points=9``) the four corner regions.

    Quadrant points lie at half the half-spacing of the cells (x = +-ml/4,
    y = +-ap/4), corner regions at 80 % of it, toward each cell.
    """
    if points not in POINT_COUNTS:
        raise PlanError(f"--points must be 5 (centre and quadrants) or 9 (and corner regions), got {points!r}")
    hx, hy = geometry.ml_mm / 2, geometry.ap_mm / 2
    out = [MarkedPoint("P1", "centre", 0.0, 0.0)]
    corners = (("front-left", -1, 1), ("front-right", 1, 1), ("back-left", -1, -1), ("back-right", 1, -1))
    for where, sx, sy in corners:
        out.append(MarkedPoint(f"P{len(out) + 1}", f"{where} quadrant",
                               sx * QUADRANT_FRACTION * hx, sy * QUADRANT_FRACTION * hy))
    if points == 9:
        for where, sx, sy in corners:
            out.append(MarkedPoint(f"P{len(out) + 1}", f"{where} corner region",
                                   sx * CORNER_FRACTION * hx, sy * CORNER_FRACTION * hy))
    return tuple(out)


def verification_points(geometry: PlateGeometry) -> tuple[MarkedPoint, ...]:
    """Four fresh points for the verification, none of them a fitting point:
    front, right, back and left of the centre, at 60 % of the half-spacing."""
    hx, hy = geometry.ml_mm / 2, geometry.ap_mm / 2
    f = VERIFY_FRACTION
    return (
        MarkedPoint("V1", "front middle", 0.0, f * hy),
        MarkedPoint("V2", "right middle", f * hx, 0.0),
        MarkedPoint("V3", "back middle", 0.0, -f * hy),
        MarkedPoint("V4", "left middle", -f * hx, 0.0),
    )


@dataclass(frozen=True, slots=True)
class Target:
    """One placement the plan asks for: ``mass_kg`` on ``point``, for the fit or the verification."""

    mass_kg: float
    point: MarkedPoint
    role: str  # "fit" or "verify"


def format_mass(mass_kg: float, unit: str = "kg") -> str:
    """``20 kg``, ``44.1 lb``: a mass in the technician's unit."""
    value = mass_kg / KG_PER_LB if unit == "lb" else mass_kg
    text = f"{value:.1f}"
    if text.endswith(".0"):
        text = text[:-2]
    return f"{'0' if text == '-0' else text} {unit}"


@dataclass(frozen=True, slots=True)
class Plan:
    """What the technician will be asked to do.

    Parameters
    ----------
    masses_kg : tuple of float
        The calibration masses, in kg, in the order they are used.
    fit : tuple of Target
        Every mass on every fitting point (mass by mass).
    verify : tuple of Target
        The verification points, the masses taken in turn.
    unit : str
        ``kg`` or ``lb``: how masses are shown to the technician.
    """

    masses_kg: tuple[float, ...]
    fit: tuple[Target, ...]
    verify: tuple[Target, ...]
    unit: str = "kg"

    @property
    def points(self) -> tuple[MarkedPoint, ...]:
        """Every marked point, fitting then verification, each once."""
        seen: dict[str, MarkedPoint] = {}
        for t in (*self.fit, *self.verify):
            seen.setdefault(t.point.name, t.point)
        return tuple(seen.values())

    def mass_text(self, mass_kg: float) -> str:
        return format_mass(mass_kg, self.unit)


def parse_masses(text: str) -> tuple[float, ...]:
    """``"20,60"`` -> ``(20.0, 60.0)``, in the unit they were given in.

    Raises
    ------
    PlanError
        For an empty list or a value that is not a number.
    """
    parts = [p.strip() for p in str(text).replace(";", ",").split(",")]
    if not any(parts):
        raise PlanError("no calibration masses given (for example --masses 20,40)")
    out = []
    for p in parts:
        try:
            value = float(p)
        except ValueError:
            raise PlanError(f"mass {p!r} is not a number (give the masses like 20,40)") from None
        if not math.isfinite(value):
            raise PlanError(f"mass {p!r} is not a number (give the masses like 20,40)")
        out.append(value)
    return tuple(out)


def make_plan(masses: Sequence[float], *, unit: str = "kg", points: int = 9,
              geometry: PlateGeometry) -> Plan:
    """The placements for ``masses`` (in ``unit``) on ``points`` fitting points and the verification points.

    Raises
    ------
    PlanError
        A mass that is zero or negative, fewer than two different masses, an
        unknown unit or number of points: the message names it.
    """
    if unit not in UNITS:
        raise PlanError(f"unit must be kg or lb, got {unit!r}")
    masses = list(masses)
    for m in masses:
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not math.isfinite(m):
            raise PlanError(f"mass {m!r} is not a number")
        if m <= 0:
            raise PlanError(f"mass {m:g} {unit}: a calibration mass must be more than 0 {unit}")
    to_kg = KG_PER_LB if unit == "lb" else 1.0
    masses_kg: list[float] = []
    for m in masses:
        if not any(math.isclose(m * to_kg, k, rel_tol=1e-9) for k in masses_kg):
            masses_kg.append(float(m) * to_kg)
    if len(masses_kg) < 2:
        raise PlanError(f"give at least two different masses (got {', '.join(f'{m:g}' for m in masses)} {unit}): "
                        "the calibration must be checked at two loads")
    pts = fit_points(geometry, points=points)
    fit = tuple(Target(m, p, "fit") for m in masses_kg for p in pts)
    verify = tuple(Target(masses_kg[i % len(masses_kg)], p, "verify")
                   for i, p in enumerate(verification_points(geometry)))
    return Plan(tuple(masses_kg), fit, verify, unit)


# -- steps, events, results ------------------------------------------------------------------


class State(str, enum.Enum):
    """Where the procedure stands."""

    #: the instruction is shown; waiting for the technician to confirm the step is done
    AWAIT_CONFIRM = "await_confirm"
    #: confirmed: collecting frames until a steady window is full
    MEASURING = "measuring"
    #: every step done, calibration fitted and verified (see ``result.verification.passed``)
    DONE = "done"
    #: a step failed ``max_attempts`` times (or the driver aborted): nothing may be saved
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Step:
    """One step: ``tare`` (clear the plate), ``place`` (a mass on a point), ``remove`` (clear it again)."""

    index: int
    kind: str
    target: Target | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """Something for the technician: a new step, an accepted or rejected reading, the fit...

    ``kind`` is one of ``step``, ``measuring``, ``accepted``, ``rejected``,
    ``warning``, ``fitted``, ``verified``, ``done``, ``failed``; ``step`` is
    the step's index (0-based); ``t_s`` the frame time it happened at (None
    before any frame).
    """

    kind: str
    step: int
    message: str
    t_s: float | None = None


@dataclass
class ProcedureResult:
    """What a finished procedure produced.

    ``calibration`` is the new calibration (offsets from the tare, fitted
    gains, the placements and the verification in its ``extra``);
    ``verification.passed`` says whether it may be saved.
    """

    calibration: Calibration
    verification: Any
    gain_fit: Any
    tare: Any
    placements: list[Any]
    verify_placements: list[Any]
    zero_return_n: float | None = None
    warnings: list[str] = field(default_factory=list)
    matrix_fit: Any = None

    def to_report(self) -> dict[str, Any]:
        """The JSON report: the verification's figures and the procedure's own."""
        report = dict(self.verification.to_report())
        report["zero_return_n"] = self.zero_return_n
        report["n_fit_placements"] = len(self.placements)
        report["n_verify_placements"] = len(self.verify_placements)
        report["gains_n_per_count"] = list(self.calibration.gains_n_per_count)
        report["offsets_counts"] = list(self.calibration.offsets_counts)
        report["warnings"] = list(self.warnings)
        return report


class _Rejected(Exception):
    """A reading that fails a check: the step is repeated."""


@dataclass(frozen=True, slots=True)
class _Window:
    """The steady frames a step is measured on (glitch frames left out)."""

    counts: np.ndarray  # (n, 4)
    mean: np.ndarray  # (4,)
    std: np.ndarray  # (4,)
    t0_s: float
    t1_s: float
    rejected: int = 0

    @property
    def n(self) -> int:
        return int(self.counts.shape[0])


def _n(value: float, digits: int = 1) -> str:
    """A number without a minus sign on a value that rounds to zero."""
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _cells(names: Sequence[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


# -- the procedure ---------------------------------------------------------------------------


class CalibrationProcedure:
    """The guided calibration, step by step, fed by raw frames.

    Parameters
    ----------
    plan : Plan
        Masses and points (:func:`make_plan`).
    geometry : PlateGeometry
        The plate's cell spacing.
    reference : Calibration
        The calibration the plate has now (its last one, or the nominal
        gains): its gains give the provisional readings the checks use until
        the procedure has fitted its own; its offsets are what the empty
        plate should read when ``check_reference_offsets`` is true.
    check_reference_offsets : bool
        Check at the tare that the cleared plate reads about what the
        reference's offsets say (catches a load left on the plate); only
        meaningful when the reference was made on this plate.
    window_s : float
        Length of the steady window a reading is the mean of, in s.
    stable_std_n : float
        Largest standard deviation of a cell's force over the window, in N,
        for the load to count as steady.
    timeout_s : float
        How long after the confirmation a steady window may take.
    max_attempts : int
        Tries of one step before the procedure fails.
    wrong_point_mm : float
        Largest distance of the provisional COP from the marked point (it is
        also kept below half the distance to the nearest other marked point).
    mass_tolerance_pct : float
        Largest difference between the provisional reading and the mass, in %.
    max_cop_error_mm, max_force_error_pct : float
        The verification's limits.
    station_id, backend, note : str
        Written into the new calibration.
    created_at : datetime, optional
        Its time stamp (default: when the procedure is made).
    """

    def __init__(
        self,
        plan: Plan,
        *,
        geometry: PlateGeometry,
        reference: Calibration,
        check_reference_offsets: bool = True,
        window_s: float = 1.5,
        stable_std_n: float = 0.3,
        timeout_s: float = 10.0,
        max_attempts: int = 3,
        wrong_point_mm: float = 30.0,
        mass_tolerance_pct: float = 25.0,
        max_cop_error_mm: float = 1.0,
        max_force_error_pct: float = 0.5,
        zero_warn_n: float = 1.0,
        spike_n: float = 50.0,
        station_id: str = "",
        backend: str = "",
        note: str = "",
        created_at: dt.datetime | None = None,
    ) -> None:
        for name, value in (("window_s", window_s), ("stable_std_n", stable_std_n), ("timeout_s", timeout_s),
                            ("wrong_point_mm", wrong_point_mm), ("mass_tolerance_pct", mass_tolerance_pct),
                            ("spike_n", spike_n), ("zero_warn_n", zero_warn_n)):
            if not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if timeout_s < window_s:
            raise ValueError(f"timeout_s ({timeout_s}) must not be shorter than window_s ({window_s})")
        if not (isinstance(max_attempts, int) and max_attempts >= 1):
            raise ValueError(f"max_attempts must be a positive integer, got {max_attempts!r}")
        self.plan = plan
        self.geometry = geometry
        self.reference = reference
        self.check_reference_offsets = check_reference_offsets
        self.window_s = float(window_s)
        self.stable_std_n = float(stable_std_n)
        self.timeout_s = float(timeout_s)
        self.max_attempts = max_attempts
        self.wrong_point_mm = float(wrong_point_mm)
        self.mass_tolerance_pct = float(mass_tolerance_pct)
        self.max_cop_error_mm = float(max_cop_error_mm)
        self.max_force_error_pct = float(max_force_error_pct)
        self.zero_warn_n = float(zero_warn_n)
        self.spike_n = float(spike_n)
        self.station_id, self.backend, self.note = station_id, backend, note
        self.created_at = created_at or dt.datetime.now(dt.UTC)

        steps = [Step(0, "tare")]
        for target in (*plan.fit, *plan.verify):
            steps.append(Step(len(steps), "place", target))
        steps.append(Step(len(steps), "remove"))
        self.steps: tuple[Step, ...] = tuple(steps)

        self._state = State.AWAIT_CONFIRM
        self._i = 0
        self.attempt = 1
        self.events: list[Event] = []
        self._unread = 0
        self.messages: list[str] = []  # rejections and warnings of the current step
        self.failure = ""
        self.result: ProcedureResult | None = None
        self.warnings: list[str] = []

        # provisional calibration: reference gains, then tare offsets, then fitted gains
        self._gains = np.asarray(reference.gains_n_per_count, dtype=np.float64)
        self._offsets = np.asarray(reference.offsets_counts, dtype=np.float64)
        self._tare: Any = None
        self._gain_fit: Any = None
        self._matrix_fit: Any = None
        self._verification: Any = None
        self._zero_return_n: float | None = None
        self._provisional_fitted = False
        self._calibration: Calibration | None = None
        self.placements: list[Any] = []
        self.verify_placements: list[Any] = []

        # measurement of the current step
        self._buf_t: list[float] = []
        self._buf_c: list[np.ndarray] = []
        self._t_confirm: float | None = None
        self._fault_frames = np.zeros(4, dtype=np.int64)
        self._saturated_frames = np.zeros(4, dtype=np.int64)
        self._n_measured = 0
        self.progress = 0.0
        self.stability_std_n: float | None = None
        self._worst_std = np.zeros(4)
        self.last_t_s: float | None = None
        self.live_fz_n: float = math.nan
        self.live_cop_mm: tuple[float, float] = (math.nan, math.nan)

        self._tolerance_mm = {p.name: self._point_tolerance(p) for p in plan.points}
        self._emit("step", self.instruction)

    # -- what the drivers show -------------------------------------------------------------------
    @property
    def state(self) -> State:
        return self._state

    @property
    def finished(self) -> bool:
        return self._state in (State.DONE, State.FAILED)

    @property
    def awaiting_confirmation(self) -> bool:
        return self._state is State.AWAIT_CONFIRM

    @property
    def step(self) -> Step:
        return self.steps[min(self._i, len(self.steps) - 1)]

    @property
    def step_number(self) -> int:
        """1-based number of the current step, for "step 3 of 24"."""
        return min(self._i, len(self.steps) - 1) + 1

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    @property
    def target(self) -> Target | None:
        return self.step.target if not self.finished else None

    @property
    def overall_progress(self) -> float:
        """Share of the steps done, 0..1."""
        if self._state is State.DONE:
            return 1.0
        return (self._i + (self.progress if self._state is State.MEASURING else 0.0)) / len(self.steps)

    @property
    def steady(self) -> bool:
        return self.stability_std_n is not None and self.stability_std_n <= self.stable_std_n

    @property
    def instruction(self) -> str:
        """What the technician must do now, in one sentence."""
        if self._state is State.DONE:
            v = self.result.verification if self.result else None
            return ("Calibration done: verification passed." if v is not None and v.passed
                    else "Calibration done, but the verification failed: it will not be saved.")
        if self._state is State.FAILED:
            return f"Calibration stopped: {self.failure}"
        step = self.step
        if step.kind == "tare":
            return "Clear the plate: take everything off it and keep hands and feet off it."
        if step.kind == "remove":
            return "Remove the mass: take everything off the plate."
        target = step.target
        assert target is not None
        mass = self.plan.mass_text(target.mass_kg)
        prefix = "Verification: place" if target.role == "verify" else "Place"
        return f"{prefix} the {mass} mass on {target.point.describe()}, then let go of it."

    def pop_events(self) -> list[Event]:
        """Events since the last call, oldest first."""
        out = self.events[len(self.events) - self._unread:] if self._unread else []
        self._unread = 0
        return out

    @property
    def provisional(self) -> Calibration:
        """The calibration the checks use now (reference gains, tare offsets, fitted gains once fitted)."""
        return Calibration(
            offsets_counts=tuple(float(v) for v in self._offsets),  # type: ignore[arg-type]
            gains_n_per_count=tuple(float(v) for v in self._gains),  # type: ignore[arg-type]
            created_at=self.created_at, plate_ml_mm=self.geometry.ml_mm, plate_ap_mm=self.geometry.ap_mm,
            source="provisional",
        )

    # -- driving ----------------------------------------------------------------------------------
    def confirm(self) -> None:
        """The technician says the step is done: start measuring it. Ignored unless awaiting confirmation."""
        if self._state is not State.AWAIT_CONFIRM:
            return
        self._state = State.MEASURING
        self._reset_measurement()
        self._emit("measuring", f"measuring: keep off the plate for {self.window_s:g} s")

    def abort(self, reason: str) -> None:
        """Stop the procedure (the technician quit, the plate stopped): nothing may be saved."""
        if not self.finished:
            self._fail(reason)

    def feed(self, frame: RawFrame) -> None:
        """Take one raw frame."""
        if self.finished:
            return
        counts = np.asarray(frame.counts, dtype=np.float64)
        self.last_t_s = frame.t_s
        self._update_live(counts, frame)
        if self._state is not State.MEASURING:
            return
        if self._t_confirm is None:
            self._t_confirm = frame.t_s
        self._n_measured += 1
        try:
            self._watch_faults(counts, frame)
        except _Rejected as exc:
            self._reject(str(exc))
            return
        self._buf_t.append(frame.t_s)
        self._buf_c.append(counts)
        self._update_stability()
        if self._buf_t[-1] - self._buf_t[0] >= self.window_s - 1e-9 and len(self._buf_t) >= 8:
            self._capture()
        elif frame.t_s - self._t_confirm >= self.timeout_s:
            self._reject(self._moving_message())

    # -- measurement --------------------------------------------------------------------------------
    def _reset_measurement(self) -> None:
        self._buf_t, self._buf_c = [], []
        self._t_confirm = None
        self._fault_frames[:] = 0
        self._saturated_frames[:] = 0
        self._n_measured = 0
        self.progress = 0.0
        self.stability_std_n = None
        self._worst_std = np.zeros(4)

    def _update_live(self, counts: np.ndarray, frame: RawFrame) -> None:
        if frame.flags & (FrameFlag.SATURATED | FrameFlag.CELL_FAULT):
            return
        forces = (counts - self._offsets) * self._gains
        fz, x, y = centre_of_pressure(forces, ml_mm=self.geometry.ml_mm, ap_mm=self.geometry.ap_mm,
                                      min_fz_n=min(20.0, 0.2 * GRAVITY_M_S2 * min(self.plan.masses_kg)))
        self.live_fz_n = float(fz)
        self.live_cop_mm = (float(x), float(y))

    def _watch_faults(self, counts: np.ndarray, frame: RawFrame) -> None:
        """Cells that do not answer or saturate: rejected as soon as it is clear."""
        fault_cells = set(frame.fault_cells)
        for i, name in enumerate(CELLS):
            saturated = counts[i] >= HX711_MAX_CODE or counts[i] <= HX711_MIN_CODE or (
                frame.flags & FrameFlag.SATURATED and name in fault_cells)
            if saturated:
                self._saturated_frames[i] += 1
            elif frame.flags & FrameFlag.CELL_FAULT and name in fault_cells:
                self._fault_frames[i] += 1
        limit = max(3, int(0.05 * self._n_measured))
        if np.any(self._saturated_frames >= limit):
            bad = [CELLS[i] for i in np.flatnonzero(self._saturated_frames >= limit)]
            what = ("the load is beyond its range, or the cell or its HX711 is miswired"
                    if self.step.kind == "place" else "it is miswired or damaged, since the plate is empty")
            raise _Rejected(f"cell {_cells(bad)} saturates (reads the HX711's full-scale code): {what}")
        if np.any(self._fault_frames >= limit):
            bad = [CELLS[i] for i in np.flatnonzero(self._fault_frames >= limit)]
            raise _Rejected(f"cell {_cells(bad)} does not answer (its HX711 board gives no data): "
                            "check its wiring and power (docs/hardware.md)")

    def _spike_counts(self) -> np.ndarray:
        return self.spike_n / np.abs(self._gains)

    def _good_rows(self, c: np.ndarray) -> np.ndarray:
        """Rows that are not single-frame glitches: within ``spike_n`` of the median on every cell."""
        med = np.median(c, axis=0)
        return np.all(np.abs(c - med) <= self._spike_counts(), axis=1)

    def _update_stability(self) -> None:
        c = np.asarray(self._buf_c)
        good = self._good_rows(c)
        n_good = int(good.sum())
        if n_good >= 3:
            std_n = np.std(c[good], axis=0) * np.abs(self._gains)
        else:
            std_n = np.zeros(4)
        too_many_glitches = len(c) >= 5 and n_good < 0.8 * len(c)
        self.stability_std_n = float(np.max(std_n))
        if self.stability_std_n > self.stable_std_n or too_many_glitches:
            # not steady: the window starts again from this frame
            self._worst_std = np.maximum(self._worst_std, std_n if not too_many_glitches
                                         else np.full(4, self.spike_n))
            self._buf_t, self._buf_c = self._buf_t[-1:], self._buf_c[-1:]
            self.progress = 0.0
        else:
            self.progress = min(1.0, (self._buf_t[-1] - self._buf_t[0]) / self.window_s)

    def _moving_message(self) -> str:
        worst = int(np.argmax(self._worst_std))
        return (f"the load did not come to rest within {self.timeout_s:g} s (cell {CELLS[worst]} varied by "
                f"{self._worst_std[worst]:.2g} N, steady is below {self.stable_std_n:g} N): "
                "keep hands and feet off the plate and make sure the mass does not rock")

    def _window(self) -> _Window:
        c = np.asarray(self._buf_c)
        good = self._good_rows(c)
        kept = c[good]
        return _Window(kept, kept.mean(axis=0), kept.std(axis=0), self._buf_t[0], self._buf_t[-1],
                       int(len(c) - len(kept)))

    # -- capture and checks ---------------------------------------------------------------------
    def _capture(self) -> None:
        w = self._window()
        self.progress = 1.0
        try:
            self._check_stuck(w)
            kind = self.step.kind
            if kind == "tare":
                self._take_tare(w)
            elif kind == "place":
                self._take_placement(w)
            else:
                self._take_removal(w)
        except _Rejected as exc:
            self._reject(str(exc))
            return
        if not self.finished:
            self._advance()

    def _check_stuck(self, w: _Window) -> None:
        ptp = np.ptp(w.counts, axis=0)
        if w.n >= 20 and np.any(ptp > 0):
            stuck = [CELLS[i] for i in np.flatnonzero(ptp == 0)]
            if stuck:
                values = ", ".join(f"{w.mean[CELLS.index(c)]:.0f}" for c in stuck)
                raise _Rejected(f"cell {_cells(stuck)} reads the same count ({values}) in every frame: "
                                "it is dead or disconnected; check its wires to the HX711 (docs/hardware.md)")

    def _take_tare(self, w: _Window) -> None:
        reference_offsets = self.reference.offsets_counts if self.check_reference_offsets else None
        try:
            tare = solver.tare_offsets(w.counts, reference_offsets=reference_offsets,
                                       reference_gains_n_per_count=self.reference.gains_n_per_count,
                                       min_frames=max(4, min(solver.DEFAULT_MIN_FRAMES, w.n)))
        except solver.CalibrationInputError as exc:
            raise _Rejected(str(exc)) from None
        self._tare = tare
        self._offsets = np.asarray(tare.offsets_counts, dtype=np.float64)
        self._emit("accepted", "plate zeroed: offsets " + ", ".join(
            f"{c} {v:.0f}" for c, v in zip(CELLS, self._offsets)) + " counts")

    def _take_placement(self, w: _Window) -> None:
        target = self.step.target
        assert target is not None
        p = target.point
        weight_n = target.mass_kg * GRAVITY_M_S2
        mass = self.plan.mass_text(target.mass_kg)
        forces = (w.mean - self._offsets) * self._gains
        fz = float(forces.sum())
        reads = self.plan.mass_text(max(fz, 0.0) / GRAVITY_M_S2)

        # a dead or reversed cell: the three others read what they should for this mass on this point
        expected = split_load(weight_n, p.x_mm, p.y_mm, ml_mm=self.geometry.ml_mm, ap_mm=self.geometry.ap_mm)
        for i, name in enumerate(CELLS):
            if expected[i] < 0.1 * weight_n:
                continue
            others = [j for j in range(4) if j != i]
            consistent = all(abs(forces[j] - expected[j]) <= 0.3 * expected[j] + 0.03 * weight_n for j in others)
            if not consistent:
                continue
            if forces[i] < -0.1 * expected[i]:
                raise _Rejected(f"cell {name} reads {forces[i]:+.0f} N where about {expected[i]:+.0f} N is expected: "
                                "its count goes down under load; swap its A+ and A- wires (docs/hardware.md)")
            if abs(forces[i]) < 0.1 * expected[i]:
                raise _Rejected(f"cell {name} does not respond to the load (it reads {_n(forces[i])} N, about "
                                f"{expected[i]:.0f} N expected, while the other cells read what they should): "
                                "check the cell and its wires (docs/hardware.md)")

        if fz < 0.05 * weight_n:
            raise _Rejected(f"nothing on the plate: it reads {reads}, the {mass} mass was expected on {p.name}; "
                            f"place it on {p.describe()}, then confirm")
        ratio = fz / weight_n
        tol = self.mass_tolerance_pct / 100.0
        if not (1.0 / (1.0 + tol) <= ratio <= 1.0 + tol):
            raise _Rejected(f"the plate reads {reads}, the {mass} mass was expected: "
                            f"check that the {mass} mass, and nothing else, is on the plate")

        x = self.geometry.ml_mm / 2 * ((forces[1] + forces[3]) - (forces[0] + forces[2])) / fz
        y = self.geometry.ap_mm / 2 * ((forces[0] + forces[1]) - (forces[2] + forces[3])) / fz
        dist = math.hypot(x - p.x_mm, y - p.y_mm)
        if dist > self._tolerance_mm[p.name]:
            near = min(self.plan.points, key=lambda q: math.hypot(x - q.x_mm, y - q.y_mm))
            where = (f" (near {near.name}, {near.label})"
                     if math.hypot(x - near.x_mm, y - near.y_mm) <= self._tolerance_mm[near.name] else "")
            raise _Rejected(f"the mass is at x = {x:+.0f} mm, y = {y:+.0f} mm{where}, {dist:.0f} mm from {p.name}: "
                            f"move it to {p.describe()}, then confirm")

        placement = solver.Placement(mass_kg=target.mass_kg, x_mm=p.x_mm, y_mm=p.y_mm,
                                     mean_counts=tuple(float(v) for v in w.mean),
                                     std_counts=tuple(float(v) for v in w.std), n_frames=w.n,
                                     rejected_frames=w.rejected)
        (self.placements if target.role == "fit" else self.verify_placements).append(placement)
        self._emit("accepted", f"{p.name}, {mass}: reads {reads} at x = {x:+.1f} mm, y = {y:+.1f} mm "
                               f"({w.n} frames, steady to {float(np.max(w.std * np.abs(self._gains))):.2f} N)")

        n_points = len({t.point.name for t in self.plan.fit})
        if target.role == "fit":
            if len(self.placements) == len(self.plan.fit):
                self._fit()
            elif len(self.placements) == n_points and not self._provisional_fitted:
                self._refine_provisional()
        elif len(self.verify_placements) == len(self.plan.verify):
            self._verify()

    def _take_removal(self, w: _Window) -> None:
        forces = (w.mean - self._offsets) * self._gains
        fz = float(forces.sum())
        lightest_n = min(self.plan.masses_kg) * GRAVITY_M_S2
        if fz > 0.25 * lightest_n:
            raise _Rejected(f"the plate still carries {self.plan.mass_text(fz / GRAVITY_M_S2)}: "
                            "take everything off it, then confirm")
        self._zero_return_n = fz
        if abs(fz) > self.zero_warn_n:
            self._warn(f"the empty plate reads {fz:+.2f} N after the masses came off (more than "
                       f"{self.zero_warn_n:g} N): the cells creep or something rubs; check the mounting")
        else:
            self._emit("accepted", f"the plate returned to zero ({_n(fz, 2)} N)")

    # -- fit and verification -----------------------------------------------------------------------
    def _fit_gains(self) -> Any:
        return solver.fit_gains(self.placements, offsets_counts=tuple(self._offsets), geometry=self.geometry)

    def _refine_provisional(self) -> None:
        """After one mass on every point: provisional gains from a first fit, for sharper checks."""
        try:
            fit = self._fit_gains()
        except solver.CalibrationInputError:
            return  # keep the reference gains; the final fit will say what is wrong
        self._gains = np.asarray(fit.gains_n_per_count, dtype=np.float64)
        self._provisional_fitted = True

    def _fit(self) -> None:
        try:
            fit = self._fit_gains()
        except solver.CalibrationInputError as exc:
            self._fail(f"the fit failed: {exc}")
            return
        self._gain_fit = fit
        self._gains = np.asarray(fit.gains_n_per_count, dtype=np.float64)
        self._provisional_fitted = True
        self._calibration = self._make_calibration()
        self._emit("fitted", f"gains fitted on {fit.n_placements} placements: " + ", ".join(
            f"{c} {g:.6g}" for c, g in zip(CELLS, self._gains)) + " N/count; residual COP error "
            f"{fit.max_residual_cop_mm:.2f} mm at most, force error {fit.max_residual_force_pct:.2f} % at most")
        # crosstalk diagnosis: a full matrix that fits much better means the cells are not independent
        if fit.n_placements >= solver.MATRIX_MIN_PLACEMENTS:
            try:
                self._matrix_fit = solver.fit_matrix(self.placements, offsets_counts=tuple(self._offsets),
                                                     geometry=self.geometry)
            except solver.CalibrationInputError:
                self._matrix_fit = None
            m = self._matrix_fit
            if m is not None and fit.rms_residual_cop_mm > 2.0 * m.rms_residual_cop_mm + 0.3:
                self._warn("the plate shows crosstalk between its cells: per-cell gains leave "
                           f"{fit.rms_residual_cop_mm:.2f} mm RMS of COP error on the fitting points, a full matrix "
                           f"{m.rms_residual_cop_mm:.2f} mm: check that each cell bears only vertical load and that "
                           "the top is rigid")

    def _make_calibration(self, **fields: Any) -> Calibration:
        """The new calibration: tare offsets and fitted per-cell gains (the matrix is kept as a diagnosis only)."""
        extra: dict[str, Any] = {
            "procedure": {
                "masses_kg": list(self.plan.masses_kg),
                "unit": self.plan.unit,
                "points": [{"name": p.name, "label": p.label, "x_mm": p.x_mm, "y_mm": p.y_mm}
                           for p in self.plan.points],
                "tare": self._tare.to_dict() if self._tare is not None else None,
                "gain_fit": self._gain_fit.to_dict(),
                "matrix_fit": None if self._matrix_fit is None else {
                    "rms_residual_cop_mm": self._matrix_fit.rms_residual_cop_mm,
                    "max_residual_cop_mm": self._matrix_fit.max_residual_cop_mm,
                    "max_residual_force_pct": self._matrix_fit.max_residual_force_pct,
                    "condition": self._matrix_fit.condition,
                },
                "zero_return_n": self._zero_return_n,
                "warnings": list(self.warnings),
            },
        }
        return self._gain_fit.to_calibration(
            created_at=self.created_at, station_id=self.station_id, backend=self.backend, note=self.note,
            extra=extra, **fields)

    def _verify(self) -> None:
        assert self._calibration is not None
        try:
            verification = solver.verify(self._calibration, self.verify_placements, geometry=self.geometry,
                                         max_cop_error_mm=self.max_cop_error_mm,
                                         max_force_error_pct=self.max_force_error_pct)
        except solver.CalibrationInputError as exc:
            self._fail(f"the verification failed: {exc}")
            return
        self._verification = verification
        self._emit("verified", verification.summary())

    def _finish(self) -> None:
        calibration = self._make_calibration(verification=self._verification.to_report())
        self.result = ProcedureResult(
            calibration=calibration, verification=self._verification, gain_fit=self._gain_fit, tare=self._tare,
            placements=list(self.placements), verify_placements=list(self.verify_placements),
            zero_return_n=self._zero_return_n, warnings=list(self.warnings), matrix_fit=self._matrix_fit,
        )
        self._state = State.DONE
        self._emit("done", self.instruction)

    # -- bookkeeping ---------------------------------------------------------------------------------
    def _point_tolerance(self, p: MarkedPoint) -> float:
        others = [math.hypot(p.x_mm - q.x_mm, p.y_mm - q.y_mm) for q in self.plan.points if q.name != p.name]
        return min(self.wrong_point_mm, 0.45 * min(others)) if others else self.wrong_point_mm

    def _advance(self) -> None:
        self._i += 1
        self.attempt = 1
        self.messages = []
        self._reset_measurement()
        if self._i >= len(self.steps):
            self._finish()
            return
        self._state = State.AWAIT_CONFIRM
        self._emit("step", self.instruction)

    def _reject(self, message: str) -> None:
        self.messages.append(message)
        self._emit("rejected", message)
        if self.attempt >= self.max_attempts:
            self._fail(f"step {self.step_number} of {self.n_steps} failed {self.attempt} times; last: {message}")
            return
        self.attempt += 1
        self._reset_measurement()
        self._state = State.AWAIT_CONFIRM
        self._emit("step", f"try again ({self.attempt} of {self.max_attempts}): {self.instruction}")

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        self.messages.append(message)
        self._emit("warning", message)

    def _fail(self, reason: str) -> None:
        self.failure = reason
        self._state = State.FAILED
        self._emit("failed", f"calibration stopped: {reason}; nothing was saved")

    def _emit(self, kind: str, message: str) -> None:
        self.events.append(Event(kind, min(self._i, len(self.steps) - 1), message, self.last_t_s))
        self._unread += 1
