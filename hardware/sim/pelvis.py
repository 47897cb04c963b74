"""The simulated pelvis sensor: the obliquity a belt-worn sensor would give, on the plate's clock.

The simulated plate's person has no pelvis; this gives them one, so the
whole pelvis path (the capture's column, the stored frames, the scores, the
web page) demonstrates without hardware. It stands where the real sensor's
:class:`hardware.imu.source.PelvisTrack` stands for the trial capture
(:class:`station.protocols.trial.PelvisLookup`): :meth:`SimulatedPelvis.at`
gives the obliquity at any time on the plate's clock, and it is always
:meth:`~SimulatedPelvis.ready` (no sample is ever on its way).

What the pelvis does comes from the person's :class:`~hardware.sim.population.PelvisTraits`
(drawn by :func:`~hardware.sim.population.draw_pelvis`, literature ranges and
sources there), and when comes from the commands of the simulated patient
(:mod:`station.clinic.sim_patient`), in the plate's time:

``person`` (traits)
    A new person (each test): level in two-foot stance, sway, strategy.
``single_leg`` (at_s, stance_side, transition_s, touchdowns)
    The lift starts at ``at_s``; the weight moves onto the stance leg over
    ``transition_s``; the lifted side then rises (healthy), drops by
    ``drop_deg`` within ``drop_s`` and more as the abductors tire (weak), or
    stays level (compensated by a trunk lean: that shows on the plate, not
    here). ``touchdowns``: ``(start_s, duration_s)`` pairs: both feet down,
    the pelvis back to level for a moment.
``quiet`` (at_s)
    Both feet down again from ``at_s``.
``drop_to`` (at_s, drop_deg, ramp_s)
    A voluntary movement of the pelvis while on one leg (the pelvis drills,
    :mod:`station.drills.pelvis`): from ``at_s`` the lifted side's drop goes
    from where it is to ``drop_deg`` (positive = lower) over ``ramp_s``, a
    smooth S-curve, and stays there; it replaces the person's own drop and
    fatigue from the first such command until the next ``single_leg``. A hip
    dip is two of them: down to a few degrees, then back to level. The sway,
    the noise and the touchdowns (back to level) still apply.

Obliquity: degrees, positive when the right side is higher (DESIGN.md
section 4); standing on the left leg (right side lifted) a drop lowers it.
Sway is a sum of two sines at the person's frequency and 1.7 times it,
scaled to the person's RMS, plus the sensor's noise of about 0.03 degrees
(``docs/pelvis-sensor.md``) as a fast sine, so the value at a time is the
same however often it is asked for.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np

from hardware.sim.population import PelvisTraits, draw_pelvis

__all__ = ["SENSOR_NOISE_DEG", "SimulatedPelvis"]

#: The sensor's tilt noise at 100 Hz (docs/pelvis-sensor.md: about 0.03 degrees).
SENSOR_NOISE_DEG = 0.03
#: Ramp into and out of a touchdown, s.
TOUCHDOWN_RAMP_S = 0.15
#: Back to two feet after the test, s.
QUIET_RAMP_S = 0.4


def _smooth(u: float) -> float:
    u = min(1.0, max(0.0, u))
    return u * u * (3.0 - 2.0 * u)


class SimulatedPelvis:
    """The simulated pelvis sensor (thread-safe: the controller commands it while the trial's thread reads it).

    Parameters
    ----------
    traits : PelvisTraits, optional
        The person's pelvis (default: a healthy person from seed 0).
    """

    #: the station says "simulated" for it
    synthetic = True

    def __init__(self, *, traits: PelvisTraits | None = None) -> None:
        self._lock = threading.Lock()
        self.traits = traits if traits is not None else draw_pelvis(np.random.default_rng(0), condition="healthy")
        self._phases = self._draw_phases()
        self._plan: dict[str, Any] | None = None
        self._last = math.nan
        #: never a fault: the simulated sensor is always plugged in
        self.fault: str | None = None

    def _draw_phases(self) -> np.ndarray:
        return np.random.default_rng(self.traits.seed).uniform(0.0, 2.0 * math.pi, 3)

    def command(self, name: str, /, **params: Any) -> None:
        """``person``, ``single_leg``, ``drop_to`` or ``quiet`` (the module notes); ValueError for anything else."""
        with self._lock:
            if name == "person":
                traits = params["traits"]
                self.traits = traits if isinstance(traits, PelvisTraits) else PelvisTraits(**traits)
                self._phases = self._draw_phases()
                self._plan = None
            elif name == "single_leg":
                side = params["stance_side"]
                if side not in ("left", "right"):
                    raise ValueError(f"stance_side must be 'left' or 'right', got {side!r}")
                self._plan = {"at_s": float(params["at_s"]), "stance_side": side,
                              "transition_s": max(0.05, float(params.get("transition_s", 1.0))),
                              "touchdowns": [(float(a), float(d)) for a, d in params.get("touchdowns", ())],
                              "end_s": math.inf, "moves": []}
            elif name == "drop_to":
                if self._plan is None:
                    raise ValueError("simulated pelvis: drop_to needs a single_leg plan first")
                at_s, to = float(params["at_s"]), float(params["drop_deg"])
                ramp = max(0.05, float(params.get("ramp_s", 0.8)))
                if not (math.isfinite(at_s) and math.isfinite(to) and abs(to) <= 30.0):
                    raise ValueError(f"simulated pelvis: drop_to needs a finite at_s and |drop_deg| <= 30, "
                                     f"got {params}")
                moves = [m for m in self._plan["moves"] if m[0] < at_s]  # a later plan is replaced
                self._plan["moves"] = moves
                start = self._own_drop(at_s)
                moves.append((at_s, start, to, ramp))
            elif name == "quiet":
                if self._plan is not None:
                    self._plan["end_s"] = min(self._plan["end_s"], float(params["at_s"]))
            else:
                raise ValueError(f"simulated pelvis: no command {name!r} (person, single_leg, drop_to, quiet)")

    def drop_deg(self, t_s: float) -> float:
        """The lifted side's drop at ``t_s`` (deg, positive = lower), without sway; 0 on two feet."""
        with self._lock:
            return self._drop(t_s)[0]

    def _drop(self, t_s: float) -> tuple[float, float, str | None]:
        """(drop, one-leg weight 0..1, stance side) at ``t_s``."""
        plan = self._plan
        if plan is None or t_s <= plan["at_s"]:
            return 0.0, 0.0, None
        since = t_s - plan["at_s"]
        weight = _smooth(since / plan["transition_s"])
        for start, duration in plan["touchdowns"]:
            if start - TOUCHDOWN_RAMP_S < t_s < start + duration + TOUCHDOWN_RAMP_S:
                inside = min(t_s - (start - TOUCHDOWN_RAMP_S), start + duration + TOUCHDOWN_RAMP_S - t_s)
                weight *= 1.0 - _smooth(inside / TOUCHDOWN_RAMP_S)
        if t_s > plan["end_s"]:
            weight *= 1.0 - _smooth((t_s - plan["end_s"]) / QUIET_RAMP_S)
        return weight * self._own_drop(t_s), weight, plan["stance_side"]

    def _own_drop(self, t_s: float) -> float:
        """The lifted side's drop at ``t_s`` as the person holds it on one leg (before the weight factor)."""
        plan, tr = self._plan, self.traits
        assert plan is not None
        moves = [m for m in plan.get("moves", ()) if m[0] <= t_s]
        if moves:
            at_s, start, to, ramp = moves[-1]
            return start + (to - start) * _smooth((t_s - at_s) / ramp)
        since = t_s - plan["at_s"]
        onset = plan["at_s"] + plan["transition_s"]
        reach = _smooth(since / (plan["transition_s"] + tr.drop_s))
        return tr.drop_deg * reach + tr.fatigue_deg_per_s * max(0.0, min(t_s, plan["end_s"]) - onset)

    def at(self, t_s: float) -> float:
        """The obliquity at ``t_s`` on the plate's clock, degrees, positive = the right side higher."""
        with self._lock:
            drop, weight, side = self._drop(float(t_s))
            tr, ph = self.traits, self._phases
            amp = tr.sway_two_deg + (tr.sway_one_deg - tr.sway_two_deg) * weight
            w = 2.0 * math.pi * tr.sway_freq_hz * t_s
            sway = amp * math.sqrt(2.0) * (0.8 * math.sin(w + ph[0]) + 0.6 * math.sin(1.7 * w + ph[1]))
            noise = SENSOR_NOISE_DEG * math.sqrt(2.0) * math.sin(2.0 * math.pi * 7.3 * t_s + ph[2])
            signed = -drop if side == "left" else drop  # standing on the left, the right side drops
            value = tr.level_deg + signed + sway + noise
            self._last = value
            return value

    def ready(self, t_s: float) -> bool:  # noqa: ARG002 - the simulated value is never on its way
        return True

    def latest(self) -> float:
        """The last value given (NaN before any), for a gauge."""
        return self._last

    def stop(self) -> None:
        """Nothing to stop (the same face as the real sensor)."""
