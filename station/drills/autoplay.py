"""AutoPlayer: a simulated patient who plays any drill on the simulated plate.

:class:`AutoPlayer` looks at what the screen would show (a
:class:`~station.drills.view.DrillView`) and the live COP, and returns
commands for :meth:`hardware.sim.plate.SimulatedPlate.command` (or the
station's simulator command channel): ``("lean_to", {"x_mm", "y_mm"})`` or
``("behaviour", {"name": ..., **params})`` with the behaviours of
:mod:`hardware.sim.person` (``quiet``, ``lean`` with ``approach_s``,
``single_leg``, ``touchdown``). It is pure and deterministic: time is the
``t_s`` given, randomness the injected generator.

How it plays, by skill (:data:`PROFILES`):

- reach / limits: reacts to a new active target after a skill-dependent
  delay, aims with a direction error and an undershoot, then corrects toward
  the target (with an aiming error), except that a poor player often stops
  well short and does not correct (40 % of targets; average 10 %), and so
  really misses; returns to the centre when asked; in the
  limits drill leans a skill-dependent fraction of the way to the plate's edge;
- symmetry: shifts its weight to the target split with an error that it
  re-draws every few seconds;
- rhythm: follows the metronome with its own amplitude, tempo and off-axis wobble;
- single-leg hold: stands on the zone's leg (the poor player with weak hip
  abductors) and, unless good, puts the other foot down now and then;
- the pelvis drills (hip dip, level-pelvis hold): stands on one leg as in the
  hold, and moves the pelvis with ``("pelvis", {"command": "drop_to", "at_s",
  "drop_deg", "ramp_s"})`` (and ``single_leg``/``quiet``), commands for the
  simulated pelvis sensor (:class:`hardware.sim.pelvis.SimulatedPelvis`), not
  the plate: whoever runs the player hands them to the sensor. It reads the
  target from the bars (:func:`station.drills.pelvis.bars_target_drop_deg`):
  a dip's depth, or level. How deep, how far back and how level, by skill
  (:data:`PELVIS_PLAY`): the good player dips 1.05-1.35 times the shown depth
  and comes back to 1 degree above to 0.2 below level; the poor player (weak
  abductors) dips 0.35-1.0 times it (often short of the depth that counts)
  and comes back only to 0.8-3.2 degrees below level (often not level), trying
  again every few seconds but never a dip left short, so it really misses repetitions; in the hold it
  keeps the free side 0.5-4 degrees low.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from station.core.geometry import PlateGeometry
from station.drills.pelvis import bars_target_drop_deg
from station.drills.view import DrillView, Target

__all__ = ["AutoPlayer", "PELVIS_PLAY", "PROFILES", "Command"]

Command = tuple[str, dict[str, Any]]
#: an active target this close to the plate's origin is the "come back to the centre" target
_CENTRE_MM = 12.0


@dataclass(frozen=True)
class Profile:
    """How a simulated patient of one skill plays."""

    reaction_s: float
    reaction_sd_s: float
    angle_sd_deg: float
    undershoot: float
    aim_sd_mm: float
    approach_s: float
    limits_fraction: float
    share_sd_pct: float
    reaim_s: float
    rhythm_amplitude: float
    rhythm_tempo: float
    rhythm_off_axis_mm: float
    rhythm_lead_s: float
    hold_skill: str
    touchdown_every_s: float | None
    #: chance that the first, undershooting lean toward a target is corrected (a poor patient often stops short)
    correct_prob: float = 1.0


PROFILES: dict[str, Profile] = {
    "good": Profile(0.35, 0.05, 3.0, 1.0, 2.0, 0.7, 1.0, 1.5, 5.0, 1.0, 1.0, 1.0, 0.08, "normal", None, 1.0),
    "average": Profile(0.6, 0.1, 12.0, 0.85, 6.0, 1.2, 0.8, 5.0, 3.0, 0.85, 1.08, 6.0, 0.0, "normal", 12.0, 0.9),
    "poor": Profile(1.0, 0.2, 25.0, 0.7, 16.0, 2.0, 0.6, 11.0, 2.0, 0.6, 1.25, 15.0, -0.1, "weak_abductors", 5.0,
                    0.6),
}


@dataclass(frozen=True)
class PelvisPlay:
    """How a simulated patient of one skill moves the pelvis (ranges drawn uniformly).

    Engineering assumptions, scaled to the drops of single-leg stance the simulated
    pelvis already has (``hardware/sim/population.py``: a healthy free side rises
    0.5-3 degrees, weak abductors let it drop 2.5-6 degrees; Hardcastle & Nade 1985,
    Youdas et al. 2007); the exercise (the "pelvic drop": the free side lowered and
    raised by the stance hip's abductors) as described by Bolgla & Uhl (2005).
    """

    #: depth of a dip as a fraction of the depth shown
    depth: tuple[float, float]
    #: where the free side ends when asked back to level (deg, positive = below level)
    back_deg: tuple[float, float]
    #: duration of one movement down or up (s)
    ramp_s: tuple[float, float]
    #: where the free side is held in the level-pelvis hold (deg below level)
    hold_deg: tuple[float, float]
    #: a movement that did not get there is tried again after this long (s)
    retry_s: float
    #: whether a dip short of the depth is tried again (a poor player leaves it short)
    retry_dip: bool = True


PELVIS_PLAY: dict[str, PelvisPlay] = {
    "good": PelvisPlay((1.05, 1.35), (-1.0, 0.2), (0.5, 0.8), (-0.6, 0.6), 2.0),
    "average": PelvisPlay((0.85, 1.25), (-0.6, 1.2), (0.7, 1.1), (-1.2, 1.6), 2.5),
    "poor": PelvisPlay((0.35, 1.0), (0.8, 3.2), (0.9, 1.5), (0.5, 4.0), 2.5, retry_dip=False),
}
#: the drills whose player moves the pelvis
_PELVIS_DRILLS = ("hip-dip", "level-pelvis-hold")


class AutoPlayer:
    """A simulated patient who plays the drills.

    Parameters
    ----------
    skill : str
        ``good``, ``average`` or ``poor`` (:data:`PROFILES`).
    rng : numpy.random.Generator
        Every random choice (reaction times, aiming errors).
    geometry : PlateGeometry, optional
        The plate (the footprints for the weight split).
    """

    def __init__(self, *, skill: str = "good", rng: np.random.Generator,
                 geometry: PlateGeometry | None = None) -> None:
        if skill not in PROFILES:
            raise ValueError(f"skill must be one of {list(PROFILES)}, got {skill!r}")
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        self.skill = skill
        self.profile = PROFILES[skill]
        self.rng = rng
        self.geometry = geometry if geometry is not None else PlateGeometry()
        self._pending: list[tuple[float, Command]] = []
        self._drill: str | None = None
        self._key: Any = None
        self._last_empty_cmd = -math.inf
        self._state: str | None = None
        self._single = False
        self._next_touchdown: float | None = None
        self._next_reaim = -math.inf
        self._share_error = 0.0
        self._last_rhythm_t = -math.inf
        self._pelvis_key: Any = None
        self._pelvis_retry = math.inf
        self._single_at = -math.inf

    # -- public ---------------------------------------------------------------------------------------
    def commands(self, view: DrillView, *, t_s: float, cop_ml_mm: float, cop_ap_mm: float) -> list[Command]:
        """The commands to send to the simulated plate now (usually none)."""
        out: list[Command] = []
        if view.drill != self._drill:
            self._drill, self._key, self._pending, self._single = view.drill, None, [], False
        if math.isnan(cop_ml_mm) and view.state in ("waiting", "ready") and t_s - self._last_empty_cmd >= 2.0:
            self._last_empty_cmd = t_s
            out.append(("behaviour", {"name": "quiet"}))
        entering = view.state != self._state
        self._state = view.state
        if view.state == "ready" and entering:
            self._pending = []
            out.append(self._lean(0.0, 0.0, 0.5))
        if view.drill in ("reach", "limits"):
            self._play_targets(view, t_s)
        elif view.drill == "symmetry":
            self._play_symmetry(view, t_s)
        elif view.drill == "rhythm":
            out += self._play_rhythm(view, t_s)
        elif view.drill == "single-leg-hold":
            out += self._play_hold(view, t_s, entering)
        elif view.drill in _PELVIS_DRILLS:
            out += self._play_hold(view, t_s, entering)
            self._play_pelvis(view, t_s)
        due = [c for when, c in self._pending if when <= t_s]
        self._pending = [(when, c) for when, c in self._pending if when > t_s]
        return out + due

    # -- helpers ------------------------------------------------------------------------------------------
    @staticmethod
    def _lean(x: float, y: float, approach_s: float) -> Command:
        return ("behaviour", {"name": "lean", "x_mm": float(x), "y_mm": float(y),
                              "approach_s": float(min(max(approach_s, 0.2), 20.0))})

    def _delay(self) -> float:
        p = self.profile
        return max(0.1, float(self.rng.normal(p.reaction_s, p.reaction_sd_s)))

    def _play_targets(self, view: DrillView, t: float) -> None:
        active = [tg for tg in view.targets if tg.state == "active"]
        if view.state != "running" or not active:
            if view.state != "running":
                self._key = None
            return
        tg = active[0]
        key = (view.round_index, round(tg.x_mm, 1), round(tg.y_mm, 1), tg.radius_mm)
        if key == self._key:
            return
        self._key = key
        self._pending = []
        p = self.profile
        if view.drill == "limits" and math.hypot(tg.x_mm, tg.y_mm) > _CENTRE_MM:
            # the maximal lean: as far as this patient dares
            self._pending.append((t + self._delay(), self._lean(tg.x_mm * p.limits_fraction,
                                                                tg.y_mm * p.limits_fraction, p.approach_s)))
            return
        self._aim(tg, t, view)

    def _aim(self, tg: Target, t: float, view: DrillView) -> None:
        p = self.profile
        # the start: where the previous target was asked to be left (the centre), approximated by the origin
        dist = math.hypot(tg.x_mm, tg.y_mm)
        start = t + self._delay()
        if dist <= _CENTRE_MM:
            self._pending.append((start, self._lean(tg.x_mm, tg.y_mm, 0.6)))  # back to the centre
            return
        ang = math.atan2(tg.x_mm, tg.y_mm) + math.radians(float(self.rng.normal(0.0, p.angle_sd_deg)))
        corrects = self.rng.random() < p.correct_prob
        # one who will not correct stops well short: the target's ring is half its distance wide
        reach = dist * p.undershoot * (1.0 if corrects else 0.6)
        first = (reach * math.sin(ang), reach * math.cos(ang))
        self._pending.append((start, self._lean(first[0], first[1], p.approach_s)))
        ex, ey = self.rng.normal(0.0, p.aim_sd_mm, size=2)
        if corrects:
            self._pending.append((start + 1.1 * p.approach_s, self._lean(tg.x_mm + ex, tg.y_mm + ey, p.approach_s)))

    def _play_symmetry(self, view: DrillView, t: float) -> None:
        bars = view.bars
        if view.state != "running" or bars is None:
            if view.state != "running":
                self._key = None
            return
        key = (view.round_index, bars.target_left_pct)
        feet = self.geometry.feet_ml_mm
        if key != self._key or t >= self._next_reaim:
            p = self.profile
            if key != self._key:
                self._pending = []
                when = t + self._delay()
            else:
                when = t
            self._key = key
            self._share_error = float(self.rng.normal(0.0, p.share_sd_pct))
            self._next_reaim = when + p.reaim_s
            left = bars.target_left_pct + self._share_error
            x = feet / 2 - left / 100.0 * feet
            self._pending.append((when, self._lean(x, 0.0, p.approach_s)))

    def _play_rhythm(self, view: DrillView, t: float) -> list[Command]:
        m = view.metronome
        if view.state != "running" or m is None or t - self._last_rhythm_t < 0.05:
            return []
        self._last_rhythm_t = t
        p = self.profile
        centre = m.pace_mm - m.amplitude_mm * math.sin(2 * math.pi * m.phase)
        own = (view.elapsed_s + p.rhythm_lead_s) / (m.period_s * p.rhythm_tempo)
        along = centre + p.rhythm_amplitude * m.amplitude_mm * math.sin(2 * math.pi * own)
        across = p.rhythm_off_axis_mm * math.sin(4 * math.pi * own)
        x, y = (along, across) if m.axis == "ml" else (across, along)
        return [self._lean(x, y, 0.2)]

    def _play_hold(self, view: DrillView, t: float, entering: bool) -> list[Command]:
        out: list[Command] = []
        p = self.profile
        if view.state == "running" and view.zone is not None:
            if not self._single and entering:
                side = "left" if view.zone.x_mm < 0 else "right"
                when = t + self._delay()
                self._pending.append((when, ("behaviour", {
                    "name": "single_leg", "stance_side": side, "skill": p.hold_skill, "transition_s": 0.3})))
                self._single_at = when
                if view.drill in _PELVIS_DRILLS:
                    self._pending.append((when, ("pelvis", {"command": "single_leg", "at_s": when,
                                                            "stance_side": side, "transition_s": 0.3})))
                self._single = True
                if p.touchdown_every_s is not None:
                    self._next_touchdown = t + float(self.rng.exponential(p.touchdown_every_s)) + 1.0
            if self._single and self._next_touchdown is not None and t >= self._next_touchdown:
                out.append(("behaviour", {"name": "touchdown", "where": "plate",
                                          "duration_s": float(self.rng.uniform(0.4, 1.2)), "share_pct": 40.0}))
                self._next_touchdown = t + 1.5 + float(self.rng.exponential(p.touchdown_every_s or 1.0))
        elif self._single and view.state != "running":
            self._single = False
            self._next_touchdown = None
            self._pending = []
            out.append(("behaviour", {"name": "quiet"}))
            if view.drill in _PELVIS_DRILLS:
                out.append(("pelvis", {"command": "quiet", "at_s": float(t)}))
                self._pelvis_key, self._pelvis_retry = None, math.inf
        return out

    def _play_pelvis(self, view: DrillView, t: float) -> None:
        """Move the pelvis where the bars' target says (a dip's depth, or level), as well as this player can."""
        bars, zone = view.bars, view.zone
        if view.state != "running" or bars is None or zone is None or not self._single:
            return
        side = "left" if zone.x_mm < 0 else "right"
        target = bars_target_drop_deg(bars, side)
        key = (view.round_index, round(target, 2))
        if key == self._pelvis_key and t < self._pelvis_retry:
            return
        if key == self._pelvis_key and bars.within and view.drill != "level-pelvis-hold":
            return  # there: stay (the hold's player drifts: it re-draws its level every so often)
        pp = PELVIS_PLAY[self.skill]
        if key == self._pelvis_key and target > 0.25 and not pp.retry_dip and view.drill == "hip-dip":
            return  # a dip left short stays short
        new = key != self._pelvis_key
        self._pelvis_key = key
        when = max(t + (self._delay() if new else 0.0), self._single_at)
        if view.drill == "level-pelvis-hold":
            drop = float(self.rng.uniform(*pp.hold_deg))
        elif target > 0.25:
            drop = target * float(self.rng.uniform(*pp.depth))
        else:
            drop = float(self.rng.uniform(*pp.back_deg))
        ramp = float(self.rng.uniform(*pp.ramp_s))
        self._pelvis_retry = when + ramp + pp.retry_s
        self._pending = [(w, c) for w, c in self._pending if not (c[0] == "pelvis" and c[1]["command"] == "drop_to")]
        self._pending.append((when, ("pelvis", {"command": "drop_to", "at_s": when, "drop_deg": drop,
                                                "ramp_s": ramp})))


class PelvisPlayer:
    """The simulated player whose ``("pelvis", {"command": ...})`` commands go to the simulated pelvis
    sensor; the rest to the plate, as before."""

    def __init__(self, player: Any, pelvis: Any) -> None:
        self.player = player
        self.pelvis = pelvis

    def commands(self, view: Any, **kwargs: Any) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for name, params in self.player.commands(view, **kwargs):
            if name == "pelvis":
                params = dict(params)
                self.pelvis.command(params.pop("command"), **params)
            else:
                out.append((name, params))
        return out
