"""The simulated plate: a :class:`~hardware.sim.person.SimPerson` on four simulated HX711 load cells.

Each frame, the person's true vertical force and centre of pressure are split
onto the four corners (:func:`station.core.cop.split_load`), turned into raw counts
through each cell's TRUE offset and gain, and given what a real HX711 adds:

- Gaussian noise, about 40 counts rms, independent per cell;
- rounding to integers and clipping to the 24-bit range; a count beyond it
  reads as the saturation code (0x7FFFFF or -0x800000) and the frame carries
  :attr:`~station.core.frames.FrameFlag.SATURATED` with the cell in ``fault_cells``;
- a data rate slightly off nominal (a crystal-less oscillator, ``rate_error_ppm``)
  and a sub-millisecond latency on each timestamp;
- occasional glitches: one high bit (19 to 23) of one cell's 24-bit code flipped
  for a single frame, NOT flagged, as real bit errors come. Their number is kept
  in :attr:`SimulatedPlate.injected_glitches` and their frames' sequence
  numbers in :attr:`SimulatedPlate.glitch_seqs`, so tests can check detection.

Every frame carries :attr:`~station.core.frames.FrameFlag.SYNTHETIC`.

The TRUE offsets are what the cells read with the plate empty (the plate top's
dead weight included), like :attr:`calibration.model.Calibration.offsets_counts`;
by default offsets and gains are the plate's cells as built
(:data:`hardware.sim.cells.SIMULATED_CELLS`), which
:func:`calibration.model.simulator_calibration` is made from, so the built-in
calibration is exact for this plate.

Time
----
``realtime=False`` delivers frames as fast as they are asked for, stamped with
simulated time from 0. ``realtime=True`` paces them: frame ``k`` is due at
``t_start + k / rate + latency`` on the injected monotonic ``clock`` and
:meth:`SimulatedPlate.read` sleeps until then (schedule from the start, so the
rate never drifts; a late reader gets the frames it missed at once, each
stamped with its due time). ``speed`` above 1 runs the simulated time that
much faster than the clock (a demonstration in less time): frame ``k`` is
then due ``(k / rate + latency) / speed`` after the start, and stamped as at
speed 1, so every duration measured on the frames is unchanged.

The person is randomised from a seed through independent streams (person,
cell noise, timing, glitches), so the same seed gives the same frames in fast
mode, and turning glitches off changes nothing but the glitched frames.
"""

from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable, Mapping, Sequence
from numbers import Real
from typing import Any

import numpy as np

from hardware.base import PlateSource, SourceFault
from hardware.sim.cells import SIMULATED_CELLS
from hardware.sim.person import SKILLS, PersonSample, SimPerson, check_behaviour, check_scenario
from station.core.frames import CELLS, HX711_MAX_CODE, HX711_MIN_CODE, FrameFlag, RawFrame
from station.core.geometry import PlateGeometry

#: Bits of the 24-bit code a glitch may flip (a spike of at least 2**19 counts, ~120 N).
GLITCH_BITS: tuple[int, ...] = (19, 20, 21, 22, 23)

_BLOCK = 1024
_COMMANDS = ("lean_to", "behaviour", "scenario")

# settings accepted by SimulatedPlate.from_settings (besides geometry), all plain data
_SETTINGS = (
    "seed", "realtime", "speed", "rate_hz", "rate_error_ppm", "jitter_s", "noise_counts", "glitch_rate",
    "dead_weight_n", "true_offsets_counts", "true_gains_n_per_count", "mass_kg", "skill",
    "scenario", "duration_s", "start",
)
#: what is on the plate when the simulation starts
STARTS = ("quiet", "empty")
#: other names accepted by from_settings (the station configuration's names)
_ALIASES = {"body_mass_kg": "mass_kg"}


def check_command(name: str, params: Mapping[str, Any], *, geometry: PlateGeometry | None = None) -> tuple[str, Any]:
    """Validate a command for the simulated plate without a plate (e.g. before sending it to another process).

    Parameters
    ----------
    name : str
        ``"lean_to"``, ``"behaviour"`` or ``"scenario"`` (see :meth:`SimulatedPlate.command`).
    params : mapping
        The command's parameters.
    geometry : PlateGeometry, optional
        The plate's geometry (a static load must lie between the cells).

    Returns
    -------
    tuple
        ``("behaviour", (name, params))`` or ``("scenario", steps)``, normalised.

    Raises
    ------
    ValueError
        Naming the unknown command, behaviour, parameter or the bad value.
    """
    if name == "lean_to":
        extra = sorted(set(params) - {"x_mm", "y_mm"})
        if extra:
            raise ValueError(f"lean_to: unknown parameter {extra[0]!r} (takes 'x_mm', 'y_mm')")
        return "behaviour", ("lean", check_behaviour("lean", params, geometry=geometry, where="lean_to"))
    if name == "behaviour":
        p = dict(params)
        if "behaviour" in p and "name" in p:
            raise ValueError("behaviour: give the behaviour's name as 'behaviour' or 'name', not both")
        if "behaviour" not in p and "name" not in p:
            raise ValueError("behaviour: missing parameter 'behaviour' (the behaviour's name)")
        which = p.pop("behaviour") if "behaviour" in p else p.pop("name")
        return "behaviour", (which, check_behaviour(which, p, geometry=geometry))
    if name == "scenario":
        extra = sorted(set(params) - {"steps"})
        if extra or "steps" not in params:
            raise ValueError("scenario: takes exactly one parameter, 'steps' (a list of steps)")
        steps = params["steps"]
        check_scenario(steps, geometry=geometry)
        return "scenario", [dict(step) for step in steps]
    raise ValueError(f"command name must be one of {list(_COMMANDS)}, got {name!r}")


def _check_number(name: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not lo <= float(value) <= hi:
        raise ValueError(f"{name} must be a number between {lo:g} and {hi:g}, got {value!r}")
    return float(value)


def _check_four(name: str, values: Any, *, nonzero: bool = False) -> tuple[float, float, float, float]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be 4 numbers (fl, fr, bl, br), got {values!r}") from None
    if len(out) != 4 or not all(math.isfinite(v) for v in out) or (nonzero and any(v == 0 for v in out)):
        extra = ", none of them 0" if nonzero else ""
        raise ValueError(f"{name} must be 4 finite numbers (fl, fr, bl, br){extra}, got {values!r}")
    return out  # type: ignore[return-value]


class SimulatedPlate(PlateSource):
    """A simulated person on a simulated four-cell plate.

    Parameters
    ----------
    geometry : PlateGeometry, optional
        Cell spacing and footprints (default ``PlateGeometry()``).
    seed : int or None
        Seed of every random stream; the same seed gives the same frames in
        fast mode. ``None`` draws a fresh seed (kept in :attr:`seed`).
    realtime : bool
        Pace frames at the real rate on ``clock`` (True), or deliver them as
        fast as asked with simulated time from 0 (False).
    speed : float
        In real-time mode, how much faster than the clock simulated time runs
        (1: real time; 2: a 30 s test takes 15 s). Frame time stamps are unchanged.
    rate_hz : float
        Nominal data rate (the HX711's 80 samples/s).
    rate_error_ppm : float
        How far the oscillator is off nominal, in parts per million; the actual
        rate is ``rate_hz * (1 + rate_error_ppm * 1e-6)``.
    jitter_s : float
        Scale of the timestamp latency (half-normal, clipped at 1 ms).
    noise_counts : float
        RMS noise per cell, in counts.
    glitch_rate : float
        Probability that a frame carries an (unflagged) bit-flip glitch; 0 disables.
    dead_weight_n : float
        Weight of the plate top, shared equally by the cells (part of the
        empty-plate offsets; it only uses up range).
    true_offsets_counts, true_gains_n_per_count : sequence of 4 float, optional
        The cells' true empty-plate readings and N per count (default: those
        of the built-in simulator calibration).
    mass_kg : float
        The simulated person's body mass.
    skill : str
        ``"normal"`` or ``"weak_abductors"``.
    scenario : list of dict, optional
        Steps scheduled from t = 0 (see :mod:`hardware.sim.person`).
    start : str
        ``"quiet"``: the person stands quietly on the plate from the first
        frame (so a demonstration has someone to steer); ``"empty"``: the plate
        starts empty (give this for a scenario that begins with ``step_on``).
    duration_s : float, optional
        Simulated time after which :meth:`read` returns ``None`` (the source
        ends); ``None`` runs forever.
    clock : callable
        Monotonic clock in seconds (real time mode).
    sleep : callable
        Sleeps a number of seconds (real time mode).

    Attributes
    ----------
    person : SimPerson
        The simulated person (ground truth and events).
    truth : PersonSample or None
        Ground truth of the last frame delivered.
    injected_glitches : int
        Glitch frames delivered so far.
    glitch_seqs : collections.deque of int
        Their sequence numbers (the last 100 000).
    actual_rate_hz : float
        The rate frames really come at.
    """

    kind = "simulated"

    def __init__(
        self,
        *,
        geometry: PlateGeometry | None = None,
        seed: int | None = 0,
        realtime: bool = True,
        speed: float = 1.0,
        rate_hz: float = 80.0,
        rate_error_ppm: float = 1200.0,
        jitter_s: float = 0.0003,
        noise_counts: float = 40.0,
        glitch_rate: float = 1 / 2000,
        dead_weight_n: float = 60.0,
        true_offsets_counts: Sequence[float] | None = None,
        true_gains_n_per_count: Sequence[float] | None = None,
        mass_kg: float = 70.0,
        skill: str = "normal",
        scenario: Sequence[Mapping[str, Any]] | None = None,
        duration_s: float | None = None,
        start: str = "quiet",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        if seed is None:
            seed = int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
        if not isinstance(realtime, bool):
            raise ValueError(f"realtime must be True or False, got {realtime!r}")
        self.geometry = geometry if geometry is not None else PlateGeometry()
        if not isinstance(self.geometry, PlateGeometry):
            raise ValueError(f"geometry must be a PlateGeometry, got {geometry!r}")
        self.seed = int(seed)
        self.realtime = realtime
        self.speed = _check_number("speed", speed, 0.1, 20.0)
        self.nominal_rate_hz = _check_number("rate_hz", rate_hz, 1.0, 1000.0)
        self.rate_error_ppm = _check_number("rate_error_ppm", rate_error_ppm, -50000.0, 50000.0)
        self.jitter_s = _check_number("jitter_s", jitter_s, 0.0, 0.001)
        self.noise_counts = _check_number("noise_counts", noise_counts, 0.0, 1e6)
        self.glitch_rate = _check_number("glitch_rate", glitch_rate, 0.0, 1.0)
        self.dead_weight_n = _check_number("dead_weight_n", dead_weight_n, 0.0, 10000.0)
        if start not in STARTS:
            raise ValueError(f"start must be one of {list(STARTS)}, got {start!r}")
        if skill not in SKILLS:
            raise ValueError(f"skill must be one of {list(SKILLS)}, got {skill!r}")
        self.duration_s = None if duration_s is None else _check_number("duration_s", duration_s, 0.0, 1e9)
        builtin = SIMULATED_CELLS
        self.true_offsets_counts = _check_four(
            "true_offsets_counts", builtin.offsets_counts if true_offsets_counts is None else true_offsets_counts)
        self.true_gains_n_per_count = _check_four(
            "true_gains_n_per_count",
            builtin.gains_n_per_count if true_gains_n_per_count is None else true_gains_n_per_count, nonzero=True)
        self.actual_rate_hz = self.nominal_rate_hz * (1.0 + self.rate_error_ppm * 1e-6)
        self.period_s = 1.0 / self.actual_rate_hz
        self._clock = clock
        self._sleep = sleep

        person_ss, noise_ss, timing_ss, glitch_ss = np.random.SeedSequence(self.seed).spawn(4)
        self.person = SimPerson(rng=np.random.default_rng(person_ss), rate_hz=self.actual_rate_hz,
                                geometry=self.geometry, mass_kg=mass_kg, skill=skill)
        self._noise_rng = np.random.default_rng(noise_ss)
        self._timing_rng = np.random.default_rng(timing_ss)
        self._glitch_rng = np.random.default_rng(glitch_ss)
        self._noise: list[list[float]] = []  # a block of cell noise, as plain floats (a frame's work is scalar)
        self._latency = np.empty(0)
        self._glitch_u = np.empty(0)
        self._glitch_cell = np.empty(0, dtype=np.int64)
        self._glitch_bit = np.empty(0, dtype=np.int64)
        self._bi = 0

        self._offsets = [float(v) for v in self.true_offsets_counts]
        self._gains = [float(v) for v in self.true_gains_n_per_count]
        self._settings: dict[str, Any] = {
            "ml_mm": self.geometry.ml_mm, "ap_mm": self.geometry.ap_mm, "feet_ml_mm": self.geometry.feet_ml_mm,
            "seed": self.seed, "realtime": realtime, "speed": self.speed, "rate_hz": self.nominal_rate_hz,
            "rate_error_ppm": self.rate_error_ppm, "jitter_s": self.jitter_s, "noise_counts": self.noise_counts,
            "glitch_rate": self.glitch_rate, "dead_weight_n": self.dead_weight_n,
            "true_offsets_counts": list(self.true_offsets_counts),
            "true_gains_n_per_count": list(self.true_gains_n_per_count),
            "mass_kg": float(mass_kg), "skill": skill,
            "scenario": [dict(step) for step in scenario] if scenario is not None else None,
            "duration_s": self.duration_s, "start": start,
        }
        self.truth: PersonSample | None = None
        self.injected_glitches = 0
        self.glitch_seqs: collections.deque[int] = collections.deque(maxlen=100_000)
        self._commands: collections.deque[tuple[str, Any]] = collections.deque()
        self._seq = 0
        self._t_start_s: float | None = None
        self._closed = False
        if start == "quiet":
            self.person.behave("quiet")
        if scenario is not None:
            self.person.set_scenario(scenario)

    # -- construction from plain settings ----------------------------------------------
    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> SimulatedPlate:
        """Build a plate from plain, picklable settings.

        Keys are the constructor's parameters except ``clock`` and ``sleep``;
        the geometry is given as ``"geometry": {"ml_mm", "ap_mm", "feet_ml_mm"}``
        or as the flat keys ``ml_mm``, ``ap_mm``, ``feet_ml_mm``; ``body_mass_kg``
        is accepted for ``mass_kg``. Missing keys take the constructor's defaults.

        Raises
        ------
        ValueError
            Naming an unknown key or a bad value.
        """
        if not isinstance(settings, Mapping):
            raise ValueError(f"settings must be a dict, got {type(settings).__name__}")
        geometry_keys = ("ml_mm", "ap_mm", "feet_ml_mm")
        for key in settings:
            if key not in _SETTINGS and key not in geometry_keys and key not in _ALIASES and key != "geometry":
                raise ValueError(f"settings: unknown key {key!r}")
        settings = dict(settings)
        for alias, key in _ALIASES.items():
            if alias in settings:
                if key in settings:
                    raise ValueError(f"settings: give {key!r} or {alias!r}, not both")
                settings[key] = settings.pop(alias)
        geo = dict(settings.get("geometry") or {})
        for key in geo:
            if key not in geometry_keys:
                raise ValueError(f"settings: geometry: unknown key {key!r}")
        geo.update({k: settings[k] for k in geometry_keys if k in settings})
        kwargs = {k: settings[k] for k in _SETTINGS if k in settings}
        return cls(geometry=PlateGeometry(**geo), **kwargs)

    def settings(self) -> dict[str, Any]:
        """Plain settings that :meth:`from_settings` turns back into an equal plate (at its start)."""
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self._settings.items()}

    # -- PlateSource ---------------------------------------------------------------------
    def open(self) -> None:
        """Start (or resume) the real-time schedule. Idempotent."""
        self._closed = False
        if self.realtime and self._t_start_s is None:
            # resume so that frame self._seq is due now
            self._t_start_s = self._clock() - self._seq * self.period_s / self.speed

    def close(self) -> None:
        """Stop the schedule; a later :meth:`open` or :meth:`read` resumes from then."""
        self._closed = True
        self._t_start_s = None

    def describe(self) -> str:
        mode = ("real time" + (f" x{self.speed:g}" if self.speed != 1.0 else "")) if self.realtime else "fast"
        return (f"simulated plate (seed {self.seed}, {self.nominal_rate_hz:g} Hz nominal, {mode}, "
                f"person {self.person.mass_kg:g} kg)")

    def command(self, name: str, /, **params: Any) -> None:
        """Queue a command for the simulated person; it applies from the next frame.

        Commands (all parameters plain data):

        - ``"lean_to"``, ``x_mm``, ``y_mm``: lean toward the point;
        - ``"behaviour"``, ``behaviour=NAME`` (or ``name=NAME``) and the
          behaviour's parameters, e.g. ``command("behaviour",
          behaviour="single_leg", stance_side="left")``;
        - ``"scenario"``, ``steps=[{"t_s": ..., "behaviour": ..., ...}, ...]``:
          steps timed from the next frame; replaces the pending steps.

        Raises
        ------
        ValueError
            Naming the unknown command, behaviour, parameter or bad value
            (checked at once, in the caller's thread).
        """
        self._commands.append(check_command(name, params, geometry=self.geometry))

    def read(self, timeout_s: float = 1.0) -> RawFrame | None:
        """Return the next frame (sleeping until it is due in real time mode).

        Returns ``None`` once ``duration_s`` of simulated time has been
        delivered. Raises :class:`SourceFault` when the next frame is due more
        than ``timeout_s`` from now (only possible with a tiny timeout).
        """
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s!r}")
        k = self._seq
        if self.duration_s is not None and k * self.period_s >= self.duration_s - 1e-9:
            return None
        if self._closed or (self.realtime and self._t_start_s is None):
            self.open()
        latency_s, noise, glitch = self._draws()
        if self.realtime:
            assert self._t_start_s is not None
            sim_s = k * self.period_s + latency_s
            t_s = self._t_start_s + sim_s
            wait_s = self._t_start_s + sim_s / self.speed - self._clock()
            if wait_s > timeout_s:
                self._sleep(timeout_s)
                self._bi -= 1  # the frame was not taken: draw the same numbers next time
                raise SourceFault(f"simulated plate: frame {k} is due in {wait_s:.3f} s, "
                                  f"beyond timeout_s={timeout_s:g}")
            if wait_s > 0:
                self._sleep(wait_s)
        else:
            t_s = k * self.period_s + latency_s

        while self._commands:
            kind, payload = self._commands.popleft()
            if kind == "scenario":
                self.person.set_scenario(payload)
            else:
                which, checked = payload
                self.person.behave(which, **checked)
        truth = self.person.step()
        self.truth = truth
        frame = self._frame(k, t_s, truth, noise, glitch)
        self._seq += 1
        self.stats.frames += 1
        if frame.flags & (FrameFlag.GLITCH | FrameFlag.SATURATED):
            self.stats.glitches += 1
        return frame

    # -- internals -----------------------------------------------------------------------
    def _draws(self) -> tuple[float, list[float], tuple[int, int] | None]:
        """Timing latency, cell noise and glitch (cell, bit) for the next frame, drawn in blocks."""
        if self._bi >= len(self._latency):
            self._latency = np.minimum(np.abs(self._timing_rng.standard_normal(_BLOCK)) * self.jitter_s, 0.001)
            self._noise = (self._noise_rng.standard_normal((_BLOCK, 4)) * self.noise_counts).tolist()
            self._glitch_u = self._glitch_rng.random(_BLOCK)
            self._glitch_cell = self._glitch_rng.integers(0, 4, _BLOCK)
            self._glitch_bit = self._glitch_rng.choice(np.asarray(GLITCH_BITS), _BLOCK)
            self._bi = 0
        i = self._bi
        self._bi += 1
        glitch = None
        if self._glitch_u[i] < self.glitch_rate:
            glitch = (int(self._glitch_cell[i]), int(self._glitch_bit[i]))
        return float(self._latency[i]), self._noise[i], glitch

    def _frame(self, seq: int, t_s: float, truth: PersonSample, noise: list[float],
               glitch: tuple[int, int] | None) -> RawFrame:
        # In plain floats, 80 times a second: :func:`~station.core.cop.split_load`'s bilinear share and the
        # same operations in the same order as on arrays, so the same counts to the last bit.
        g = self.geometry
        fz = truth.fz_n
        if fz > 0 and math.isfinite(truth.cop_ml_mm) and math.isfinite(truth.cop_ap_mm):
            u = truth.cop_ml_mm / g.ml_mm
            v = truth.cop_ap_mm / g.ap_mm
            left, right, back, front = 0.5 - u, 0.5 + u, 0.5 - v, 0.5 + v
            load_n = (fz * left * front, fz * right * front, fz * left * back, fz * right * back)
        else:
            load_n = (0.0, 0.0, 0.0, 0.0)
        # bare cell zero + (dead weight share + load) / gain == empty-plate offset + load / gain
        share_n = self.dead_weight_n / 4
        counts = [int(round((off - share_n / gain) + (share_n + load) / gain + e))
                  for off, gain, load, e in zip(self._offsets, self._gains, load_n, noise, strict=True)]
        flags = FrameFlag.SYNTHETIC
        fault: list[str] = []
        for i, c in enumerate(counts):
            if c > HX711_MAX_CODE or c < HX711_MIN_CODE:
                counts[i] = HX711_MAX_CODE if c > HX711_MAX_CODE else HX711_MIN_CODE
                flags |= FrameFlag.SATURATED
                fault.append(CELLS[i])
        if glitch is not None:
            cell, bit = glitch
            word = (counts[cell] & 0xFFFFFF) ^ (1 << bit)
            counts[cell] = word - 0x1000000 if word & 0x800000 else word
            self.injected_glitches += 1
            self.glitch_seqs.append(seq)
        return RawFrame(seq, t_s, (float(counts[0]), float(counts[1]), float(counts[2]), float(counts[3])),
                        flags, tuple(fault))
