"""The simulated person: a body that steps on, sways, leans and stands on one leg on the plate.

A pure model, with no I/O and no real time: :class:`SimPerson` is advanced in
fixed ticks of ``1 / rate_hz`` seconds by :meth:`SimPerson.step`, and every
random number comes from the :class:`numpy.random.Generator` it is given, so
a seed fixes the whole trajectory. Each tick returns the ground truth
(:class:`PersonSample`: vertical force, centre of pressure, what the person is
doing); :class:`hardware.sim.plate.SimulatedPlate` turns it into raw counts.

Sway
----
Each axis of the centre of pressure (COP) is the sum of

- a damped oscillator driven by white noise (the linearised inverted pendulum
  under proportional-derivative ankle control): natural frequency 0.2-0.8 Hz,
  so the power lies below 1 Hz and the COP velocity is finite and realistic;
- a slow drift (an Ornstein-Uhlenbeck process with a time constant of seconds,
  smoothed by a 1 s lag so that it adds offset but almost no velocity).

Quiet two-foot stance gives about 3 mm RMS medio-lateral (ML), 4.5 mm
antero-posterior (AP) and 10 mm/s mean COP velocity, 98 % of the power below
1 Hz; single-leg stance sways more and faster (about 5 mm ML, 28 mm/s); the
``weak_abductors`` skill sways more still (about 8 mm ML, 50 mm/s) and shifts
its COP laterally over the stance foot (a Duchenne-type compensation). The
vertical force is the body weight with a slow fluctuation of about +-1 %.

Behaviours
----------
A behaviour is a name and keyword parameters (plain, picklable data). They are
applied at once with :meth:`SimPerson.behave` or scheduled with a scenario, a
list of steps ``{"t_s": 12.3, "behaviour": "touchdown", "where": "plate",
"duration_s": 0.4}`` whose ``t_s`` counts from the moment the scenario is
given (see :meth:`SimPerson.set_scenario`). The names and their parameters
(defaults in brackets):

``empty``
    Nobody and nothing on the plate, at once.
``step_on`` (ramp_s [0.45], first_foot ["left"])
    The load ramps from 0 to body weight over ``ramp_s``, on the first foot
    then shared with the other; ends in quiet two-foot stance at the centre.
``quiet`` (transition_s [0.3])
    Quiet two-foot stance at the centre. From single-leg stance the lifted foot
    is set down over ``transition_s``; from an empty plate the person appears
    at once.
``lean`` (x_mm, y_mm, approach_s [1.0])
    Lean toward the point (x, y): the COP approaches it smoothly (critically
    damped, 95 % of the way in ``approach_s``). The point is clipped to the
    reachable area (:attr:`SimPerson.reach_mm`). In single-leg stance the
    point is kept for when both feet are down again.
``single_leg`` (stance_side, transition_s [0.3], skill [the person's])
    Stand on the ``stance_side`` foot (``"left"`` or ``"right"``): the other foot
    unloads and the COP moves under the stance foot over ``transition_s``;
    the foot leaves the plate at the end of it (event ``foot_lifted``).
``touchdown`` (where ["plate"], duration_s [0.4], share_pct [40])
    In single-leg stance, the lifted foot lands for ``duration_s`` and takes
    ``share_pct`` % of the body weight: ``where="plate"`` moves the COP toward
    the lifted foot's footprint; ``where="floor"`` takes that share off the
    plate (Fz drops, the COP stays near the stance foot).
``hand_support`` (pct_bw, duration_s [None: until changed])
    A hand on a table carries ``pct_bw`` % of the body weight (slowly varying
    around it, with 0.3 s ramps in and out); no COP jump. ``pct_bw=0`` ends it.
``step_off`` (ramp_s [0.45], last_foot ["right"])
    The load ramps down to 0, the first foot leaving before ``last_foot`` (in
    single-leg stance, the stance foot leaves last).
``static_load`` (mass_kg, x_mm [0], y_mm [0])
    Replaces the person by a dead mass at (x, y), with no sway and no
    fluctuation (for calibration and accuracy checks). ``mass_kg=0`` empties.
``person`` (mass_kg [unchanged], skill [unchanged], traits [unchanged])
    Changes the body mass or the skill; ``traits`` (a dict of
    :class:`hardware.sim.population.PersonTraits`) makes the person one drawn
    from the population: their own sway, force fluctuation and lean replace
    the tables below.

Ground truth
------------
Each :class:`PersonSample` says the true Fz and COP, the posture
(``behaviour``: ``empty``, ``step_on``, ``quiet``, ``lean``, ``single_leg``,
``step_off`` or ``static_load``), the stance, the overlays (touchdown, hand
support) and the lean target. :attr:`SimPerson.events` lists, with their times,
every behaviour applied and the derived events ``on_plate``, ``off_plate``,
``foot_lifted``, ``touchdown_end``, ``support_end`` and ``ignored``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from numbers import Real
from typing import Any

import numpy as np

from hardware.sim.population import PersonTraits
from station.core.cop import GRAVITY_M_S2
from station.core.geometry import PlateGeometry
from station.core.sides import SIDES

#: Length and width of a footprint, for the reachable lean area.
FOOT_LENGTH_MM = 260.0
FOOT_WIDTH_MM = 100.0

SKILLS: tuple[str, ...] = ("normal", "weak_abductors")
TOUCHDOWN_PLACES: tuple[str, str] = ("plate", "floor")

#: Ramp in and out of a touchdown, and of hand support.
TOUCHDOWN_RAMP_S = 0.05
SUPPORT_RAMP_S = 0.3

# slow fluctuations: vertical force (fraction of body weight) and hand support (fraction of its level)
_VERTICAL_SD = 0.0035
_VERTICAL_TAU_S = 0.1
_SUPPORT_SD = 0.04
_SUPPORT_TAU_S = 0.6

_DRIFT_LAG_S = 1.0
_NOISE_BLOCK = 512
_N_NOISE = 6  # per tick: oscillator ML, AP; drift ML, AP; vertical; support


@dataclass(frozen=True, slots=True)
class SwayParams:
    """Parameters of the sway process on both axes.

    Parameters
    ----------
    ml_rms_mm, ap_rms_mm : float
        Stationary RMS of the oscillator, medio-lateral and antero-posterior.
    ml_freq_hz, ap_freq_hz : float
        Its natural frequency on each axis.
    damping : float
        Its damping ratio.
    drift_rms_mm : float
        Stationary standard deviation of the slow drift, each axis.
    drift_tau_s : float
        Time constant of the drift.
    """

    ml_rms_mm: float
    ap_rms_mm: float
    ml_freq_hz: float
    ap_freq_hz: float
    damping: float
    drift_rms_mm: float
    drift_tau_s: float


#: Sway by stance ("both" or "single") and skill.
SWAY: dict[tuple[str, str], SwayParams] = {
    ("both", "normal"): SwayParams(3.0, 4.4, 0.38, 0.32, 0.55, 1.5, 8.0),
    ("both", "weak_abductors"): SwayParams(3.8, 4.5, 0.42, 0.35, 0.55, 1.8, 8.0),
    ("single", "normal"): SwayParams(5.0, 5.5, 0.70, 0.60, 0.50, 2.0, 4.0),
    ("single", "weak_abductors"): SwayParams(8.5, 7.0, 0.80, 0.65, 0.45, 3.0, 4.0),
}

#: Mean lateral shift of the COP from the stance footprint centre in single-leg stance, by skill.
LATERAL_OFFSET_MM: dict[str, float] = {"normal": 2.0, "weak_abductors": 10.0}


@dataclass(frozen=True, slots=True)
class PersonSample:
    """Ground truth at one tick.

    Parameters
    ----------
    t_s : float
        Simulated time of the tick.
    fz_n : float
        True total vertical force on the plate (without the plate's own weight).
    cop_ml_mm, cop_ap_mm : float
        True centre of pressure; NaN when nothing is on the plate.
    behaviour : str
        Posture: ``empty``, ``step_on``, ``quiet``, ``lean``, ``single_leg``,
        ``step_off`` or ``static_load``.
    stance : str
        ``both``, ``left``, ``right`` (single-leg, the stance side) or ``none``.
    on_plate : bool
        Someone or something loads the plate.
    touchdown : str
        ``""``, or ``plate``/``floor`` during a touchdown of the lifted foot.
    support_n : float
        Force carried by a hand support (taken off the plate).
    target_ml_mm, target_ap_mm : float
        The commanded lean point (after clipping to the reachable area).
    body_weight_n : float
        The person's weight (the static mass's weight for ``static_load``).
    """

    t_s: float
    fz_n: float
    cop_ml_mm: float
    cop_ap_mm: float
    behaviour: str
    stance: str
    on_plate: bool
    touchdown: str
    support_n: float
    target_ml_mm: float
    target_ap_mm: float
    body_weight_n: float


@dataclass(frozen=True, slots=True)
class SimEvent:
    """Something that happened to the simulated person, at simulated time ``t_s``."""

    t_s: float
    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- behaviour parameters -------------------------------------------------------------

_REQUIRED = object()
_Check = Callable[[str, Any], Any]


def _number(lo: float, hi: float, *, none_ok: bool = False) -> _Check:
    def check(where: str, value: Any) -> float | None:
        if value is None and none_ok:
            return None
        if isinstance(value, bool) or not isinstance(value, Real):
            raise ValueError(f"{where} must be a number, got {value!r}")
        v = float(value)
        if not lo <= v <= hi:
            raise ValueError(f"{where} must be between {lo:g} and {hi:g}, got {value!r}")
        return v

    return check


def _choice(*options: str | None) -> _Check:
    def check(where: str, value: Any) -> str | None:
        if value not in options:
            raise ValueError(f"{where} must be one of {list(options)}, got {value!r}")
        return value

    return check


def _check_traits(where: str, value: Any) -> dict[str, Any] | None:
    """A person drawn from the population (:func:`hardware.sim.population.draw_person`), as a plain dict."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be a dict of a person's traits, got {value!r}")
    try:
        return PersonTraits(**dict(value)).to_dict()
    except TypeError as exc:
        raise ValueError(f"{where}: {exc}") from None

#: name -> parameter -> (default or _REQUIRED, check)
_BEHAVIOURS: dict[str, dict[str, tuple[Any, _Check]]] = {
    "empty": {},
    "step_on": {"ramp_s": (0.45, _number(0.05, 5.0)), "first_foot": ("left", _choice(*SIDES))},
    "quiet": {"transition_s": (0.3, _number(0.0, 5.0))},
    "lean": {
        "x_mm": (_REQUIRED, _number(-1e4, 1e4)),
        "y_mm": (_REQUIRED, _number(-1e4, 1e4)),
        "approach_s": (1.0, _number(0.2, 20.0)),
    },
    "single_leg": {
        "stance_side": (_REQUIRED, _choice(*SIDES)),
        "transition_s": (0.3, _number(0.0, 5.0)),
        "skill": (None, _choice(None, *SKILLS)),
    },
    "touchdown": {
        "where": ("plate", _choice(*TOUCHDOWN_PLACES)),
        "duration_s": (0.4, _number(0.02, 600.0)),
        "share_pct": (40.0, _number(1.0, 100.0)),
    },
    "hand_support": {"pct_bw": (_REQUIRED, _number(0.0, 60.0)), "duration_s": (None, _number(0.05, 1e5, none_ok=True))},
    "step_off": {"ramp_s": (0.45, _number(0.05, 5.0)), "last_foot": ("right", _choice(*SIDES))},
    "static_load": {
        "mass_kg": (_REQUIRED, _number(0.0, 1000.0)),
        "x_mm": (0.0, _number(-1e4, 1e4)),
        "y_mm": (0.0, _number(-1e4, 1e4)),
    },
    "person": {"mass_kg": (None, _number(10.0, 300.0, none_ok=True)), "skill": (None, _choice(None, *SKILLS)),
               "traits": (None, _check_traits)},
}


BEHAVIOURS: tuple[str, ...] = tuple(_BEHAVIOURS)


def check_behaviour(
    name: str, params: Mapping[str, Any], *, geometry: PlateGeometry | None = None, where: str = ""
) -> dict[str, Any]:
    """Validate a behaviour and return its parameters with the defaults filled in.

    Parameters
    ----------
    name : str
        One of :data:`BEHAVIOURS`.
    params : mapping
        Its parameters.
    geometry : PlateGeometry, optional
        The plate (a static load must lie between the cells); default ``PlateGeometry()``.
    where : str
        Prefix for error messages (e.g. ``"scenario step 3"``).

    Raises
    ------
    ValueError
        Naming the unknown behaviour, the unknown or missing parameter, or the bad value.
    """
    prefix = f"{where}: " if where else ""
    spec = _BEHAVIOURS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ValueError(f"{prefix}behaviour must be one of {list(BEHAVIOURS)}, got {name!r}")
    if not isinstance(params, Mapping):
        raise ValueError(f"{prefix}{name}: parameters must be a dict, got {params!r}")
    unknown = sorted(set(params) - set(spec))
    if unknown:
        raise ValueError(f"{prefix}{name}: unknown parameter {unknown[0]!r} (takes {sorted(spec) or 'none'})")
    out: dict[str, Any] = {}
    for key, (default, check) in spec.items():
        if key in params:
            out[key] = check(f"{prefix}{name}: {key}", params[key])
        elif default is _REQUIRED:
            raise ValueError(f"{prefix}{name}: missing parameter {key!r}")
        else:
            out[key] = default
    if name == "static_load":
        g = geometry if geometry is not None else PlateGeometry()
        if abs(out["x_mm"]) > g.ml_mm / 2:
            raise ValueError(f"{prefix}static_load: x_mm must lie between the cells (|x| <= {g.ml_mm / 2:g}), "
                             f"got {out['x_mm']!r}")
        if abs(out["y_mm"]) > g.ap_mm / 2:
            raise ValueError(f"{prefix}static_load: y_mm must lie between the cells (|y| <= {g.ap_mm / 2:g}), "
                             f"got {out['y_mm']!r}")
    return out


def check_scenario(
    steps: Sequence[Mapping[str, Any]], *, geometry: PlateGeometry | None = None
) -> list[tuple[float, str, dict[str, Any]]]:
    """Validate a scenario; return ``(t_s, behaviour, params)`` steps sorted by time (stable).

    Each step is a dict ``{"t_s": float >= 0, "behaviour": name, **params}``.

    Raises
    ------
    ValueError
        Naming the bad step (by its index) and what is wrong with it.
    """
    if isinstance(steps, (str, bytes, Mapping)) or not isinstance(steps, Sequence):
        raise ValueError(f"steps must be a list of steps, got {type(steps).__name__}")
    out = []
    for i, step in enumerate(steps):
        where = f"scenario step {i}"
        if not isinstance(step, Mapping):
            raise ValueError(f"{where} must be a dict with 't_s' and 'behaviour', got {step!r}")
        if "t_s" not in step or "behaviour" not in step:
            raise ValueError(f"{where} must have 't_s' and 'behaviour', got keys {sorted(step)}")
        t_s = _number(0.0, 1e6)(f"{where}: t_s", step["t_s"])
        params = {k: v for k, v in step.items() if k not in ("t_s", "behaviour")}
        out.append((t_s, step["behaviour"], check_behaviour(step["behaviour"], params, geometry=geometry, where=where)))
    out.sort(key=lambda s: s[0])
    return out


def _smooth(u: float) -> float:
    """Cosine ease from 0 (u <= 0) to 1 (u >= 1)."""
    if u <= 0.0:
        return 0.0
    if u >= 1.0:
        return 1.0
    return 0.5 - 0.5 * math.cos(math.pi * u)


@dataclass(slots=True)
class _Ramp:
    """A value easing from ``v0`` to ``v1`` over ``[t0_s, t0_s + dur_s]``."""

    v0: float
    v1: float
    t0_s: float = 0.0
    dur_s: float = 0.0

    def value(self, t_s: float) -> float:
        if self.dur_s <= 0.0:
            return self.v1 if t_s >= self.t0_s else self.v0
        return self.v0 + (self.v1 - self.v0) * _smooth((t_s - self.t0_s) / self.dur_s)

    def done(self, t_s: float) -> bool:
        return t_s >= self.t0_s + self.dur_s


@dataclass(slots=True)
class _BaseBlend:
    """The COP's set point easing from a fixed point toward a (possibly moving) anchor."""

    from_mm: tuple[float, float]
    anchor: str  # "lean", "foot_left", "foot_right", "stance_left", "stance_right"
    t0_s: float = 0.0
    delay_s: float = 0.0
    dur_s: float = 0.0

    def weight(self, t_s: float) -> float:
        start = self.t0_s + self.delay_s
        if self.dur_s <= 0.0:
            return 1.0 if t_s >= start else 0.0
        return _smooth((t_s - start) / self.dur_s)


@dataclass(slots=True)
class _Touchdown:
    where: str
    share: float
    t0_s: float
    dur_s: float

    def share_at(self, t_s: float) -> float:
        ramp = min(TOUCHDOWN_RAMP_S, self.dur_s / 4)
        u = t_s - self.t0_s
        if u < 0.0 or u > self.dur_s:
            return 0.0
        return self.share * min(_smooth(u / ramp), _smooth((self.dur_s - u) / ramp))


class SimPerson:
    """A simulated person (or a dead mass) on the plate, advanced in fixed ticks.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of every random number (sway, fluctuations).
    rate_hz : float
        Ticks per second; each :meth:`step` advances ``1 / rate_hz`` s.
    geometry : PlateGeometry, optional
        Where the cells and footprints are (default ``PlateGeometry()``).
    mass_kg : float
        Body mass.
    skill : str
        ``"normal"`` or ``"weak_abductors"``.

    Notes
    -----
    The person starts off the plate at t = 0. See the module docstring for the
    behaviours and the scenario format.
    """

    def __init__(
        self,
        *,
        rng: np.random.Generator,
        rate_hz: float = 80.0,
        geometry: PlateGeometry | None = None,
        mass_kg: float = 70.0,
        skill: str = "normal",
    ) -> None:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        if not (isinstance(rate_hz, Real) and 1.0 <= rate_hz <= 10000.0):
            raise ValueError(f"rate_hz must be between 1 and 10000, got {rate_hz!r}")
        self.mass_kg = _number(10.0, 300.0)("mass_kg", mass_kg)
        self.skill = _choice(*SKILLS)("skill", skill)
        self.geometry = geometry if geometry is not None else PlateGeometry()
        self.rate_hz = float(rate_hz)
        self.dt_s = 1.0 / self.rate_hz
        self.events: list[SimEvent] = []
        self._rng = rng
        self._tick = 0
        #: a person drawn from the population; None: the fixed tables of this module
        self._traits: PersonTraits | None = None

        g = self.geometry
        half_feet = g.feet_ml_mm / 2
        x_lim = min(half_feet + 0.4 * FOOT_WIDTH_MM, 0.45 * g.ml_mm)
        #: reachable lean area: (x_min, x_max, y_min, y_max) in mm
        self.reach_mm: tuple[float, float, float, float] = (
            -x_lim,
            x_lim,
            max(-0.35 * FOOT_LENGTH_MM, -0.45 * g.ap_mm),
            min(0.45 * FOOT_LENGTH_MM, 0.45 * g.ap_mm),
        )

        # posture
        self._posture = "empty"
        self._stance = "none"
        self._stance_skill = self.skill
        self._presence = _Ramp(0.0, 0.0)
        self._base = _BaseBlend((0.0, 0.0), "lean")
        self._posture_end_s: float | None = None  # when step_on / step_off complete
        self._lift_at_s: float | None = None
        self._touchdown: _Touchdown | None = None
        self._support = _Ramp(0.0, 0.0)
        self._support_end_s: float | None = None
        self._static: tuple[float, float, float] | None = None
        self._scenario: list[tuple[float, str, dict[str, Any]]] = []

        # lean tracker (critically damped)
        self._target = [0.0, 0.0]
        self._lean_pos = [0.0, 0.0]
        self._lean_vel = [0.0, 0.0]
        self._lean_omega = 4.74

        # sway: oscillator positions/velocities, drift, fluctuations; start stationary
        p = SWAY[("both", self.skill)]
        z = rng.standard_normal(6)
        w_ml, w_ap = 2 * math.pi * p.ml_freq_hz, 2 * math.pi * p.ap_freq_hz
        self._osc = [p.ml_rms_mm * z[0], p.ap_rms_mm * z[1]]
        self._osc_vel = [w_ml * p.ml_rms_mm * z[2], w_ap * p.ap_rms_mm * z[3]]
        self._drift_ou = [p.drift_rms_mm * z[4], p.drift_rms_mm * z[5]]
        self._drift = list(self._drift_ou)
        self._vertical = 0.0
        self._support_var = 0.0
        self._noise: list[list[float]] = []  # a block of draws as plain floats: a tick's work is scalar
        self._noise_i = 0

    # -- public state -----------------------------------------------------------------
    @property
    def t_s(self) -> float:
        """Simulated time of the next tick."""
        return self._tick * self.dt_s

    @property
    def body_weight_n(self) -> float:
        return self.mass_kg * GRAVITY_M_S2

    @property
    def behaviour(self) -> str:
        return self._posture

    @property
    def stance(self) -> str:
        return self._stance

    # -- commands -----------------------------------------------------------------------
    def check_behaviour(self, name: str, params: Mapping[str, Any], *, where: str = "") -> dict[str, Any]:
        """Validate a behaviour for this person's plate (see :func:`check_behaviour`)."""
        return check_behaviour(name, params, geometry=self.geometry, where=where)

    def check_scenario(self, steps: Sequence[Mapping[str, Any]]) -> list[tuple[float, str, dict[str, Any]]]:
        """Validate a scenario for this person's plate (see :func:`check_scenario`)."""
        return check_scenario(steps, geometry=self.geometry)

    def behave(self, name: str, **params: Any) -> None:
        """Apply a behaviour now (at :attr:`t_s`, the time of the next tick)."""
        self._apply(name, self.check_behaviour(name, params))

    def lean_to(self, *, x_mm: float, y_mm: float) -> None:
        """Set the lean target (the ``lean`` behaviour)."""
        self.behave("lean", x_mm=x_mm, y_mm=y_mm)

    def set_scenario(self, steps: Sequence[Mapping[str, Any]]) -> None:
        """Schedule steps, each ``{"t_s": ..., "behaviour": ..., **params}``.

        ``t_s`` counts from now (:attr:`t_s`); a step runs at the first tick at
        or after its time. The scenario replaces any steps still pending.
        """
        start = self.t_s
        self._scenario = [(start + t, name, params) for t, name, params in self.check_scenario(steps)]
        self._event("scenario", steps=len(self._scenario))

    @property
    def pending_steps(self) -> int:
        return len(self._scenario)

    # -- the tick -----------------------------------------------------------------------
    def step(self) -> PersonSample:
        """Advance one tick; return the ground truth at the tick's time."""
        t = self.t_s
        eps = 1e-9
        while self._scenario and self._scenario[0][0] <= t + eps:
            _, name, params = self._scenario.pop(0)
            self._apply(name, params)
        self._complete(t)

        z = self._next_noise()
        sample = self._sample(t)
        self._advance(z)
        self._tick += 1
        return sample

    def run(self, *, duration_s: float) -> list[PersonSample]:
        """Step for ``duration_s`` seconds; return the samples."""
        n = int(round(_number(0.0, 1e6)("duration_s", duration_s) * self.rate_hz))
        return [self.step() for _ in range(n)]

    # -- internals ----------------------------------------------------------------------
    def _event(self, name: str, **params: Any) -> None:
        self.events.append(SimEvent(self.t_s, name, params))

    def _foot_x(self, side: str) -> float:
        return self.geometry.left_foot_x_mm if side == "left" else self.geometry.right_foot_x_mm

    def _anchor(self, anchor: str) -> tuple[float, float]:
        if anchor == "lean":
            return self._lean_pos[0], self._lean_pos[1]
        kind, side = anchor.split("_")
        x = self._foot_x(side)
        if kind == "stance":
            outward = -1.0 if side == "left" else 1.0
            lean = self._traits.lean_mm if self._traits is not None else LATERAL_OFFSET_MM[self._stance_skill]
            x += outward * lean
        return x, 0.0

    def _base_now(self, t: float) -> tuple[float, float]:
        b = self._base
        w = b.weight(t)
        ax, ay = self._anchor(b.anchor)
        return b.from_mm[0] + (ax - b.from_mm[0]) * w, b.from_mm[1] + (ay - b.from_mm[1]) * w

    def _blend_to(self, anchor: str, t: float, *, dur_s: float, delay_s: float = 0.0,
                  from_mm: tuple[float, float] | None = None) -> None:
        self._base = _BaseBlend(from_mm if from_mm is not None else self._base_now(t), anchor, t, delay_s, dur_s)

    def _on_plate(self) -> bool:
        return self._posture not in ("empty", "static_load")

    def _appear(self, t: float) -> None:
        """Put the person on the plate at once, in two-foot stance at the centre."""
        self._static = None
        self._presence = _Ramp(1.0, 1.0)
        self._set_target(0.0, 0.0)
        self._lean_pos, self._lean_vel = [0.0, 0.0], [0.0, 0.0]
        self._base = _BaseBlend((0.0, 0.0), "lean")
        self._posture, self._stance, self._posture_end_s = "quiet", "both", None
        self._event("on_plate")

    def _set_target(self, x_mm: float, y_mm: float) -> None:
        x0, x1, y0, y1 = self.reach_mm
        self._target = [min(max(x_mm, x0), x1), min(max(y_mm, y0), y1)]

    def _clear_overlays(self) -> None:
        self._touchdown = None
        self._support = _Ramp(0.0, 0.0)
        self._support_end_s = None
        self._lift_at_s = None

    def _apply(self, name: str, p: dict[str, Any]) -> None:
        t = self.t_s
        self._event(name, **p)
        if name == "empty":
            self._static = None
            self._clear_overlays()
            self._presence = _Ramp(0.0, 0.0)
            self._posture, self._stance, self._posture_end_s = "empty", "none", None
        elif name == "static_load":
            self._clear_overlays()
            self._presence = _Ramp(0.0, 0.0)
            self._posture_end_s = None
            if p["mass_kg"] > 0:
                self._static = (p["mass_kg"], p["x_mm"], p["y_mm"])
                self._posture, self._stance = "static_load", "none"
            else:
                self._static = None
                self._posture, self._stance = "empty", "none"
        elif name == "person":
            if p["traits"] is not None:
                self._traits = PersonTraits(**p["traits"])
            if p["mass_kg"] is not None:
                self.mass_kg = p["mass_kg"]
            if p["skill"] is not None:
                self.skill = p["skill"]
                if self._stance == "both" or self._stance == "none":
                    self._stance_skill = self.skill
        elif name == "step_on":
            if self._on_plate() and self._posture != "step_off":
                self._event("ignored", behaviour=name, reason="already on the plate")
                return
            self._static = None
            self._clear_overlays()
            self._stance_skill = self.skill
            self._set_target(0.0, 0.0)
            if self._posture != "step_off":
                self._lean_pos, self._lean_vel = [0.0, 0.0], [0.0, 0.0]
            ramp = p["ramp_s"]
            start = self._presence.value(t)
            self._presence = _Ramp(start, 1.0, t, ramp * (1.0 - start))
            foot = (self._foot_x(p["first_foot"]), 0.0)
            self._blend_to("lean", t, from_mm=foot if start == 0.0 else None, delay_s=0.3 * ramp, dur_s=0.7 * ramp)
            self._posture, self._stance, self._posture_end_s = "step_on", "both", t + ramp * (1.0 - start)
        elif name == "quiet":
            if not self._on_plate():
                self._appear(t)
                return
            self._touchdown, self._lift_at_s = None, None
            self._stance_skill = self.skill
            self._set_target(0.0, 0.0)
            if self._posture == "step_off":
                start = self._presence.value(t)
                self._presence = _Ramp(start, 1.0, t, 0.3 * (1.0 - start))
            self._blend_to("lean", t, dur_s=p["transition_s"])
            self._stance = "both"
            if self._posture != "step_on":
                self._posture, self._posture_end_s = "quiet", None
        elif name == "lean":
            self._set_target(p["x_mm"], p["y_mm"])
            self._lean_omega = 4.74 / p["approach_s"]
            if self._posture == "quiet":
                self._posture = "lean"
        elif name == "single_leg":
            if not self._on_plate():
                self._appear(t)
            elif self._posture == "step_off":
                self._event("ignored", behaviour=name, reason="stepping off")
                return
            side = p["stance_side"]
            self._touchdown = None
            self._stance_skill = p["skill"] or self.skill
            self._blend_to(f"stance_{side}", t, dur_s=p["transition_s"])
            self._lift_at_s = t + p["transition_s"]
            if self._posture != "step_on":
                self._posture, self._posture_end_s = "single_leg", None
            self._stance = side
        elif name == "touchdown":
            if self._stance not in SIDES:
                self._event("ignored", behaviour=name, reason="not in single-leg stance")
                return
            self._touchdown = _Touchdown(p["where"], p["share_pct"] / 100.0, t, p["duration_s"])
        elif name == "hand_support":
            level = p["pct_bw"] / 100.0
            self._support = _Ramp(self._support.value(t), level, t, SUPPORT_RAMP_S)
            self._support_end_s = None if p["duration_s"] is None or level == 0 else t + p["duration_s"]
        elif name == "step_off":
            if not self._on_plate() or self._posture == "step_off":
                self._event("ignored", behaviour=name, reason="not on the plate")
                return
            self._touchdown, self._lift_at_s = None, None
            last = self._stance if self._stance in SIDES else p["last_foot"]
            ramp = p["ramp_s"]
            start = self._presence.value(t)
            self._presence = _Ramp(start, 0.0, t, ramp)
            self._blend_to(f"foot_{last}", t, dur_s=0.6 * ramp)
            self._posture, self._posture_end_s = "step_off", t + ramp
        else:  # pragma: no cover - check_behaviour knows the names
            raise AssertionError(name)

    def _complete(self, t: float) -> None:
        """Finish transitions that are due at ``t`` and log their events."""
        eps = 1e-9
        if self._posture_end_s is not None and t + eps >= self._posture_end_s:
            self._posture_end_s = None
            if self._posture == "step_on":
                if self._stance in SIDES:
                    self._posture = "single_leg"
                else:
                    self._posture = "lean" if self._target != [0.0, 0.0] else "quiet"
                self._event("on_plate")
            elif self._posture == "step_off":
                self._clear_overlays()
                self._posture, self._stance = "empty", "none"
                self._event("off_plate")
        if self._lift_at_s is not None and t + eps >= self._lift_at_s:
            self._lift_at_s = None
            self._event("foot_lifted", stance_side=self._stance)
        td = self._touchdown
        if td is not None and t + eps >= td.t0_s + td.dur_s:
            self._touchdown = None
            self._event("touchdown_end", where=td.where)
        if self._support_end_s is not None and t + eps >= self._support_end_s:
            self._support_end_s = None
            self._support = _Ramp(self._support.value(t), 0.0, t, SUPPORT_RAMP_S)
            self._event("support_end")

    def _sample(self, t: float) -> PersonSample:
        tx, ty = self._target
        if self._static is not None:
            mass, x, y = self._static
            w = mass * GRAVITY_M_S2
            return PersonSample(t, w, x, y, "static_load", "none", True, "", 0.0, tx, ty, w)
        bw = self.body_weight_n
        presence = self._presence.value(t)
        if presence <= 0.0:
            return PersonSample(t, 0.0, math.nan, math.nan, self._posture, self._stance, False, "", 0.0, tx, ty, bw)
        on = presence * bw
        bx, by = self._base_now(t)
        x = bx + self._osc[0] + self._drift[0]
        y = by + self._osc[1] + self._drift[1]
        fz = on * (1.0 + self._vertical)
        support_n = max(0.0, self._support.value(t) * (1.0 + self._support_var)) * on
        fz -= support_n
        where = ""
        td = self._touchdown
        if td is not None and self._stance in SIDES:
            share = td.share_at(t)
            where = td.where
            if td.where == "plate":
                lifted = "right" if self._stance == "left" else "left"
                x = (1.0 - share) * x + share * self._foot_x(lifted)
                y = (1.0 - share) * y
            else:
                fz -= share * on
        fz = max(fz, 0.0)
        if fz == 0.0:
            x = y = math.nan
        return PersonSample(t, fz, x, y, self._posture, self._stance, True, where, support_n, tx, ty, bw)

    def _sway(self, single: bool) -> SwayParams:
        """The sway now: the drawn person's, else the table's for the stance and skill."""
        tr = self._traits
        if tr is None:
            return SWAY[("single", self._stance_skill) if single else ("both", self.skill)]
        table = SWAY[("single" if single else "both", "normal")]
        if single:
            return SwayParams(tr.sway_one_ml_rms_mm, tr.sway_one_ap_rms_mm, tr.sway_one_freq_hz,
                              0.85 * tr.sway_one_freq_hz, 0.5, table.drift_rms_mm, table.drift_tau_s)
        return SwayParams(tr.sway_two_ml_rms_mm, tr.sway_two_ap_rms_mm, tr.sway_two_freq_hz,
                          0.8 * tr.sway_two_freq_hz, 0.55, table.drift_rms_mm, table.drift_tau_s)

    def _next_noise(self) -> list[float]:
        if self._noise_i >= len(self._noise):
            self._noise = self._rng.standard_normal((_NOISE_BLOCK, _N_NOISE)).tolist()
            self._noise_i = 0
        z = self._noise[self._noise_i]
        self._noise_i += 1
        return z

    def _advance(self, z: list[float]) -> None:
        dt = self.dt_s
        sqdt = math.sqrt(dt)
        single = self._stance in SIDES
        p = self._sway(single)
        # oscillators: x'' = -w^2 x - 2 zeta w x' + sigma xi, sigma = rms sqrt(4 zeta w^3)
        for i, (rms, f_hz) in enumerate(((p.ml_rms_mm, p.ml_freq_hz), (p.ap_rms_mm, p.ap_freq_hz))):
            w = 2 * math.pi * f_hz
            sigma = rms * math.sqrt(4 * p.damping * w**3)
            acc = -w * w * self._osc[i] - 2 * p.damping * w * self._osc_vel[i]
            self._osc_vel[i] += acc * dt + sigma * sqdt * z[i]
            self._osc[i] += self._osc_vel[i] * dt
        # drift: an Ornstein-Uhlenbeck process (exact update) seen through a 1 s lag, so it is smooth
        a = math.exp(-dt / p.drift_tau_s)
        b = p.drift_rms_mm * math.sqrt(1 - a * a)
        lag = 1.0 - math.exp(-dt / _DRIFT_LAG_S)
        for i in (0, 1):
            self._drift_ou[i] = a * self._drift_ou[i] + b * z[2 + i]
            self._drift[i] += lag * (self._drift_ou[i] - self._drift[i])
        vertical_sd, vertical_tau_s = _VERTICAL_SD, _VERTICAL_TAU_S
        tr = self._traits
        if tr is not None:  # the person's own Fz fluctuation: level by stance, corner as a first-order lag
            vertical_sd = (tr.fz_one_sd_pct if single else tr.fz_two_sd_pct) / 100.0
            vertical_tau_s = 1.0 / (2 * math.pi * tr.fz_lowpass_hz)
        a = math.exp(-dt / vertical_tau_s)
        self._vertical = a * self._vertical + vertical_sd * math.sqrt(1 - a * a) * z[4]
        a = math.exp(-dt / _SUPPORT_TAU_S)
        self._support_var = a * self._support_var + _SUPPORT_SD * math.sqrt(1 - a * a) * z[5]
        # lean tracker: critically damped approach of the target
        w = self._lean_omega
        for i in (0, 1):
            acc = w * w * (self._target[i] - self._lean_pos[i]) - 2 * w * self._lean_vel[i]
            self._lean_vel[i] += acc * dt
            self._lean_pos[i] += self._lean_vel[i] * dt
