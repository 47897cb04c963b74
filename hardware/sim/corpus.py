"""The acceptance corpus: labelled single-leg trials from the population, made from one seed.

:func:`corpus` draws ``n`` persons (:func:`hardware.sim.population.draw_person`)
and gives each a trial plan (:class:`hardware.sim.trial.TrialPlan`) cycling
through every case: clean holds, touchdowns on the plate and on the floor,
a foot still down at the end, hand support of 1-8 % of body weight, and their
combinations; both sides, 80 and 100 Hz, jittered time stamps, 45-120 kg,
four plate sizes. The same seed gives the same corpus on any machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hardware.sim.population import RANGES, PersonTraits, draw_person
from hardware.sim.trial import SupportPlan, TouchdownPlan, TrialPlan
from station.core.geometry import PlateGeometry

__all__ = ["CASES", "PLATES", "CorpusTrial", "corpus"]

#: Plate sizes: cell spacing ML x AP and the footprints' spacing, in mm.
PLATES: tuple[PlateGeometry, ...] = (
    PlateGeometry(ml_mm=400.0, ap_mm=300.0, feet_ml_mm=200.0),
    PlateGeometry(ml_mm=500.0, ap_mm=400.0, feet_ml_mm=220.0),
    PlateGeometry(ml_mm=350.0, ap_mm=250.0, feet_ml_mm=180.0),
    PlateGeometry(ml_mm=600.0, ap_mm=400.0, feet_ml_mm=250.0),
)

#: The cases, cycled through in this order.
CASES: tuple[str, ...] = (
    "clean",
    "plate",
    "floor",
    "support",
    "clean",
    "support+plate",
    "foot-down-at-end",
    "support+floor",
    "plate+floor",
    "support",
)


@dataclass(frozen=True)
class CorpusTrial:
    """One trial of the corpus: its index, case, person and plan."""

    index: int
    case: str
    person: PersonTraits
    plan: TrialPlan


def _u(rng: np.random.Generator, name: str) -> float:
    r = RANGES[name]
    return float(r.lo + (r.hi - r.lo) * rng.random())


def _touchdown(rng: np.random.Generator, where: str, t_s: float, *, until_end: bool = False) -> TouchdownPlan:
    return TouchdownPlan(t_s=t_s, where=where, load_pct=_u(rng, "touchdown_load_pct"),
                         rise_s=_u(rng, "touchdown_rise_s"),
                         duration_s=None if until_end else _u(rng, "touchdown_s"))


def _support(rng: np.random.Generator, t_s: float, duration_s: float) -> SupportPlan:
    return SupportPlan(t_s=t_s, duration_s=duration_s, level_pct=_u(rng, "support_pct"),
                       ramp_s=_u(rng, "support_ramp_s"), cv=_u(rng, "support_cv"),
                       corner_hz=_u(rng, "support_corner_hz"))


def corpus(n: int, *, seed: int = 20261207) -> list[CorpusTrial]:
    """``n`` labelled trials (module notes); trial ``i`` is the same for every ``n > i``."""
    if not (isinstance(n, int) and n >= 1):
        raise ValueError(f"n must be a positive whole number, got {n!r}")
    out = []
    root = np.random.SeedSequence(seed)
    for i, child in enumerate(root.spawn(n)):
        rng = np.random.default_rng(child)
        case = CASES[i % len(CASES)]
        person = draw_person(rng)
        parts = case.split("+")
        tds: list[TouchdownPlan] = []
        sups: list[SupportPlan] = []
        # support first, touchdowns after it (the hold, and so the support it reports, ends at the first one)
        t_free = 1.0
        if "support" in parts:
            hi = 14.0 if len(parts) > 1 else 28.5
            start = float(rng.uniform(1.0, 0.5 * hi))
            dur = float(rng.uniform(1.5, min(12.0, hi - start)))
            sups.append(_support(rng, start, dur))
            t_free = start + dur + 1.5
            if rng.random() < 0.3 and t_free + 2.0 < hi:  # a second, shorter episode
                dur2 = float(rng.uniform(1.0, min(4.0, hi - t_free)))
                sups.append(_support(rng, t_free, dur2))
                t_free += dur2 + 1.5
        if "plate" in parts:
            a = max(t_free, 2.0)
            tds.append(_touchdown(rng, "plate", float(rng.uniform(a, min(a + 8.0, 27.0)))))
        if "floor" in parts:
            tds.append(_touchdown(rng, "floor", float(rng.uniform(max(t_free, 18.0), 27.0))))
        if "foot-down-at-end" in parts:
            tds.append(_touchdown(rng, str(rng.choice(["plate", "floor"])), float(rng.uniform(20.0, 29.0)),
                                  until_end=True))
        plan = TrialPlan(
            stance_side="left" if (i // 2) % 2 == 0 else "right",
            fs_hz=80.0 if i % 2 == 0 else 100.0,
            geometry=PLATES[(i // 4) % len(PLATES)],
            lift_s=float(rng.uniform(4.5, 9.0)),
            after_s=float(rng.uniform(0.5, 3.0)),
            touchdowns=tuple(sorted(tds, key=lambda td: td.t_s)),
            supports=tuple(sups),
            jitter_frac=_u(rng, "jitter_frac") if i % 3 else 0.0,
        )
        out.append(CorpusTrial(index=i, case=case, person=person, plan=plan))
    return out

