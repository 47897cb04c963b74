"""A simulated population: whole persons drawn across ranges taken from the literature.

The station's detectors were first tuned on one simulated person, who was
kinder than a body. This module replaces that person by a population: every
parameter of the simulated body and plate has a range (:data:`RANGES`), each
with its source, and :func:`draw_person` draws a whole person
(:class:`PersonTraits`) from a :class:`numpy.random.Generator`, so a seed fixes
the person. The single-leg trial synthesiser (:mod:`hardware.sim.trial`), the
acceptance corpus, the validation report and the simulated patient of the live
station all draw from here.

A range is where the literature (or, where it is silent, a stated engineering
assumption) puts a healthy-to-impaired adult; draws are uniform within it, or
log-uniform for scale parameters that span more than a factor of 3, so the
edges of the ranges are visited as often as the middle. Older and weaker
persons draw from the upper part of the sway and force-fluctuation ranges.

Ranges and sources
------------------
Body
    Mass 45-120 kg (the acceptance corpus of issue 10). Age groups: young
    (20-39 years), middle (40-59), older (60-85), after Springer et al. (2007).
Quiet two-foot stance sway
    Medio-lateral (ML) COP RMS 1.5-6 mm, antero-posterior (AP) 2.5-9 mm, with
    natural frequencies of 0.15-0.6 Hz: Prieto et al. (1996) (young and
    elderly adults, eyes open) and the BDS data set of Santos & Duarte (2016),
    whose four trials in ``data/bds`` lie inside these ranges.
Single-leg stance sway
    ML RMS 3.5-10 mm, AP RMS 4-12 mm, natural frequencies 0.4-1.3 Hz, so the
    mean COP velocity spans about 20-90 mm/s: Jonsson et al. (2004) (young and
    elderly adults on one leg), Riemann et al. (1999).
Vertical force fluctuation
    The vertical force moves with the body's vertical accelerations and the
    heart's ballistic forces (Inan et al. 2015): standard deviation 0.15-0.8 %
    of body weight in two-foot stance and 0.5-2 % in single-leg stance, more in
    older and weaker persons; band-limited with a low-pass corner of 1-3 Hz
    and, in half the persons, a high-pass corner of 0.05-0.3 Hz (the others: flat down to DC, the harder case
    for a support detector; a body cannot accelerate one way for long, so real
    spectra fall off below about 0.3 Hz). The field recordings of issue 10
    report the same levels and band.
Lift of the foot
    An anticipatory postural adjustment first moves the COP 0-25 mm toward
    the foot about to lift, over 0.15-0.45 s (Rogers & Pai 1990; Mouchnino et
    al. 1992); the weight transfer onto the stance leg then takes 0.5-1.5 s and
    the lifted foot's load fades smoothly to zero (Jonsson et al. 2004; issue
    10). Its shape is drawn from four smooth profiles (cosine, smoothstep,
    smootherstep, and an ease-out that slows toward its end), so no detector can
    rely on one shape.
Lean over the stance foot
    The mean COP in single-leg stance lies -5 to +15 mm lateral of the
    footprint centre (positive lateral); weak hip abductors shift it further
    laterally, a Duchenne-type compensation (Hardcastle & Nade 1985): +5 to +25 mm.
Touchdowns of the lifted foot
    Load 15-60 % of body weight, rising over 0.04-0.3 s, lasting 0.2-2 s
    (engineering assumption: a foot put down to regain balance; a toe touch
    lighter than 15 % is outside what the detector is specified for, see
    ``docs/validation.md``).
Hand support
    Light support on a table or rail of 1-8 % of body weight (issue 10; heavy
    touch in the sense of Jeka & Lackner 1994 is 10-40 N), ramping in and out
    over 0.1-0.6 s (engineering assumption: a hand put on a rail and loaded),
    itself unsteady: it fluctuates by 10-40 % of its level with a corner of
    0.3-2 Hz.
The pelvis (the simulated pelvis sensor, :func:`draw_pelvis`, :mod:`hardware.sim.pelvis`)
    A healthy person lifts the free side of the pelvis a little and keeps it
    up for the 30 s (Hardcastle & Nade 1985): 0.5-3 degrees (engineering
    assumption: above the sensor's noise, within the 2 degree standard error of
    the clinical measure, Youdas et al. 2007). Weak abductors let it drop:
    2.5-6 degrees within 0.3-1 s of the lift (Magee 2014: a sign is "more than
    2 cm", about 4-5 degrees across the iliac crests; the station's threshold
    is 2 degrees, so every drawn drop shows), then 0.5-2 degrees more every
    10 s as the abductors tire (Hardcastle & Nade's "time before the pelvis
    starts to fall"; engineering assumption for the rate). Some compensate
    instead (Duchenne): they lean the trunk over the stance hip, so the pelvis
    stays within -1 to +1 degree of level and the COP moves a further 10-25 mm
    lateral over the stance foot (Hardcastle & Nade 1985; Kendall et al. 2013
    saw both patterns, inconsistently, after a nerve block weakened the
    abductors). The level in two-foot stance (a belt askew, a leg-length
    difference) is -3 to +3 degrees; the pelvis sways 0.1-0.3 degrees RMS on
    two feet and 0.3-0.8 degrees on one, at 0.2-0.8 Hz (engineering
    assumption, scaled from the COP sway above).
Plate
    Cell noise 0.02-0.4 N RMS per cell (the HX711's 40 counts RMS at gain 128
    on 50-200 kg cells, HX711 datasheet); creep after loading 0-0.3 % of the
    load per cell with a time constant of 5-60 s, and a zero drift of
    -5 to +5 N per minute for the whole plate (cheap bar cells drift far
    more than OIML R60 class C cells, whose creep limit is 0.0245-0.049 %
    over 30 min; issue 10 reports a few newtons within a minute). Time stamps
    jitter by up to 0-30 % of a sample period.

References
----------
.. [1] Prieto TE, Myklebust JB, Hoffmann RG, Lovett EG, Myklebust BM (1996)
   Measures of postural steadiness. IEEE Trans Biomed Eng 43:956-966.
.. [2] Santos DA, Duarte M (2016) A public data set of human balance
   evaluations. PeerJ 4:e2648.
.. [3] Jonsson E, Seiger A, Hirschfeld H (2004) One-leg stance in healthy young
   and elderly adults: a measure of postural steadiness? Clin Biomech
   19:688-694.
.. [4] Riemann BL, Guskiewicz KM, Shields EW (1999) Relationship between
   clinical and forceplate measures of postural stability. J Sport Rehabil
   8:71-82.
.. [5] Inan OT et al. (2015) Ballistocardiography and seismocardiography: a
   review of recent advances. IEEE J Biomed Health Inform 19:1414-1427.
.. [6] Rogers MW, Pai YC (1990) Dynamic transitions in stance support
   accompanying leg flexion movements in man. Exp Brain Res 81:398-402.
.. [7] Mouchnino L, Aurenty R, Massion J, Pedotti A (1992) Coordination between
   equilibrium and head-trunk orientation during leg movement: a new strategy
   built up by training. J Neurophysiol 67:1587-1598.
.. [8] Hardcastle P, Nade S (1985) The significance of the Trendelenburg test.
   J Bone Joint Surg Br 67:741-746.
.. [9] Jeka JJ, Lackner JR (1994) Fingertip contact influences human postural
   control. Exp Brain Res 100:495-502.
.. [10] Springer BA, Marin R, Cyhan T, Roberts H, Gill NW (2007) Normative
   values for the unipedal stance test with eyes open and closed. J Geriatr
   Phys Ther 30(1):8-15.
.. [11] OIML R 60 (2017) Metrological regulation for load cells.
.. [12] Youdas JW, Mraz ST, Norstad BJ, Schinke JJ, Hollman JH (2007)
   Determining meaningful changes in pelvic-on-femoral position during the
   Trendelenburg test. J Sport Rehabil 16(4):326-335.
.. [13] Magee DJ (2014) Orthopedic Physical Assessment, 6th ed., Saunders.
.. [14] Kendall KD, Patel C, Wiley JP, Pohl MB, Emery CA, Ferber R (2013) Steps
   toward the validation of the Trendelenburg test: the effect of
   experimentally reduced hip abductor muscle function on frontal plane
   mechanics. Clin J Sport Med 23(1):45-51.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = [
    "AGE_GROUPS",
    "CONDITIONS",
    "PELVIS_RANGES",
    "PELVIS_STRATEGIES",
    "RANGES",
    "TRANSFER_SHAPES",
    "PelvisTraits",
    "PersonTraits",
    "draw_pelvis",
    "draw_person",
    "transfer_profile",
]

AGE_GROUPS: dict[str, tuple[float, float]] = {"young": (20.0, 39.0), "middle": (40.0, 59.0), "older": (60.0, 85.0)}
CONDITIONS: tuple[str, ...] = ("healthy", "weak_abductors")
TRANSFER_SHAPES: tuple[str, ...] = ("cosine", "smoothstep", "smootherstep", "ease_out")
#: What the pelvis does on one leg: the free side rises (healthy), drops (weak abductors), or stays level while the
#: trunk leans over the stance hip (weak abductors, compensated).
PELVIS_STRATEGIES: tuple[str, ...] = ("rise", "drop", "lean")
#: The share of weak-abductor persons who compensate with a trunk lean, when not told (engineering assumption).
COMPENSATING_SHARE = 0.3


@dataclass(frozen=True)
class Range:
    """A parameter's range, its unit and where it comes from."""

    lo: float
    hi: float
    unit: str
    source: str
    log: bool = False


#: Every simulated parameter with its range (see the module notes for the sources).
RANGES: dict[str, Range] = {
    "mass_kg": Range(45.0, 120.0, "kg", "issue 10 corpus"),
    "sway_two_ml_rms_mm": Range(1.5, 6.0, "mm", "Prieto 1996; Santos & Duarte 2016", log=True),
    "sway_two_ap_rms_mm": Range(2.5, 9.0, "mm", "Prieto 1996; Santos & Duarte 2016", log=True),
    "sway_two_freq_hz": Range(0.15, 0.6, "Hz", "Prieto 1996"),
    "sway_one_ml_rms_mm": Range(3.5, 10.0, "mm", "Jonsson 2004; Riemann 1999", log=True),
    "sway_one_ap_rms_mm": Range(4.0, 12.0, "mm", "Jonsson 2004; Riemann 1999", log=True),
    "sway_one_freq_hz": Range(0.4, 1.3, "Hz", "Jonsson 2004"),
    "fz_two_sd_pct": Range(0.15, 0.8, "% BW", "Inan 2015; issue 10", log=True),
    "fz_one_sd_pct": Range(0.5, 2.0, "% BW", "issue 10 field recordings", log=True),
    "fz_lowpass_hz": Range(1.0, 3.0, "Hz", "issue 10 field recordings"),
    "fz_highpass_hz": Range(0.05, 0.3, "Hz", "physics: bounded vertical excursion"),
    "apa_mm": Range(0.0, 25.0, "mm", "Rogers & Pai 1990; Mouchnino 1992"),
    "apa_s": Range(0.15, 0.45, "s", "Rogers & Pai 1990"),
    "transfer_s": Range(0.5, 1.5, "s", "Jonsson 2004; issue 10"),
    "lean_mm": Range(-5.0, 15.0, "mm", "issue 10"),
    "lean_weak_mm": Range(5.0, 25.0, "mm", "Hardcastle & Nade 1985 (Duchenne compensation)"),
    "touchdown_load_pct": Range(15.0, 60.0, "% BW", "engineering assumption"),
    "touchdown_rise_s": Range(0.04, 0.3, "s", "engineering assumption"),
    "touchdown_s": Range(0.2, 2.0, "s", "engineering assumption"),
    "support_pct": Range(1.0, 8.0, "% BW", "issue 10; Jeka & Lackner 1994"),
    "support_ramp_s": Range(0.1, 0.6, "s", "engineering assumption"),
    "support_cv": Range(0.1, 0.4, "", "issue 10: light support is unsteady"),
    "support_corner_hz": Range(0.3, 2.0, "Hz", "engineering assumption"),
    "cell_noise_n": Range(0.02, 0.4, "N", "HX711 datasheet", log=True),
    "creep_pct": Range(0.0, 0.3, "% of load", "OIML R60 (x6 for bar cells); issue 10"),
    "creep_tau_s": Range(5.0, 60.0, "s", "OIML R60"),
    "drift_n_per_min": Range(-5.0, 5.0, "N/min", "issue 10"),
    "jitter_frac": Range(0.0, 0.3, "of a period", "HX711 oscillators; scheduling"),
}

#: The pelvis's parameters (the simulated pelvis sensor, :func:`draw_pelvis`), with their sources; kept apart from
#: :data:`RANGES`, whose persons the plate's validation corpus (docs/validation.md) is drawn from.
PELVIS_RANGES: dict[str, Range] = {
    "pelvis_level_deg": Range(-3.0, 3.0, "deg", "engineering assumption: belt askew, leg-length difference"),
    "pelvis_sway_two_deg": Range(0.1, 0.3, "deg", "engineering assumption (scaled from the COP sway)"),
    "pelvis_sway_one_deg": Range(0.3, 0.8, "deg", "engineering assumption (scaled from the COP sway)"),
    "pelvis_sway_freq_hz": Range(0.2, 0.8, "Hz", "engineering assumption (the COP sway's band)"),
    "pelvis_rise_deg": Range(0.5, 3.0, "deg", "Hardcastle & Nade 1985 (rises); Youdas 2007 (SEM 2 deg)"),
    "pelvis_drop_deg": Range(2.5, 6.0, "deg", "Magee 2014 (> 2 cm, about 4-5 deg); Hardcastle & Nade 1985"),
    "pelvis_drop_s": Range(0.3, 1.0, "s", "engineering assumption: the drop follows the lift"),
    "pelvis_fatigue_deg_per_10s": Range(0.5, 2.0, "deg per 10 s", "Hardcastle & Nade 1985 (fatiguing drop); "
                                                                 "engineering assumption for the rate"),
    "pelvis_level_weak_deg": Range(-1.0, 1.0, "deg", "Hardcastle & Nade 1985; Kendall 2013 (compensated: level)"),
    "trunk_lean_extra_mm": Range(10.0, 25.0, "mm", "Hardcastle & Nade 1985; Kendall 2013 (trunk lean)"),
}


def _draw(rng: np.random.Generator, name: str, *, part: tuple[float, float] = (0.0, 1.0)) -> float:
    """One value of ``RANGES[name]`` (or ``PELVIS_RANGES[name]``), from the fraction ``part`` of its span
    (uniform or log-uniform)."""
    r = RANGES[name] if name in RANGES else PELVIS_RANGES[name]
    a, b = part
    u = a + (b - a) * float(rng.random())
    if r.log and r.lo > 0:
        return float(math.exp(math.log(r.lo) + u * (math.log(r.hi) - math.log(r.lo))))
    return float(r.lo + u * (r.hi - r.lo))


@dataclass(frozen=True, kw_only=True)
class PersonTraits:
    """One simulated person and the plate under them (every field drawn from :data:`RANGES`).

    Lengths in mm, times in s, frequencies in Hz; ``*_pct`` in % of body
    weight unless the name says otherwise.
    """

    seed: int
    age_group: str
    condition: str
    age_years: float
    mass_kg: float
    sway_two_ml_rms_mm: float
    sway_two_ap_rms_mm: float
    sway_two_freq_hz: float
    sway_one_ml_rms_mm: float
    sway_one_ap_rms_mm: float
    sway_one_freq_hz: float
    fz_two_sd_pct: float
    fz_one_sd_pct: float
    fz_lowpass_hz: float
    fz_highpass_hz: float
    apa_mm: float
    apa_s: float
    transfer_s: float
    transfer_shape: str
    lean_mm: float
    cell_noise_n: float
    creep_pct: float
    creep_tau_s: float
    drift_n_per_min: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def draw_person(rng: np.random.Generator, *, age_group: str | None = None, condition: str | None = None,
                mass_kg: float | None = None) -> PersonTraits:
    """Draw a whole person (and their plate) from the population.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of every draw.
    age_group : {"young", "middle", "older"}, optional
        Drawn with equal chances when not given.
    condition : {"healthy", "weak_abductors"}, optional
        Drawn (one in three weak) when not given.
    mass_kg : float, optional
        Body mass; drawn from 45-120 kg when not given.

    Returns
    -------
    PersonTraits
        Sway, force fluctuation and plate parameters. Older and weak persons
        draw from the upper 60 % of the sway and force-fluctuation ranges,
        young healthy ones from the lower 60 %.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if age_group is None:
        age_group = str(rng.choice(list(AGE_GROUPS)))
    if age_group not in AGE_GROUPS:
        raise ValueError(f"age_group must be one of {list(AGE_GROUPS)}, got {age_group!r}")
    if condition is None:
        condition = "weak_abductors" if rng.random() < 1 / 3 else "healthy"
    if condition not in CONDITIONS:
        raise ValueError(f"condition must be one of {list(CONDITIONS)}, got {condition!r}")
    if mass_kg is None:
        mass_kg = _draw(rng, "mass_kg")
    elif not (isinstance(mass_kg, (int, float)) and 20.0 <= mass_kg <= 300.0):
        raise ValueError(f"mass_kg must be between 20 and 300 kg, got {mass_kg!r}")
    worse = age_group == "older" or condition == "weak_abductors"
    better = age_group == "young" and condition == "healthy"
    part = (0.4, 1.0) if worse else (0.0, 0.6) if better else (0.2, 0.8)
    lo, hi = AGE_GROUPS[age_group]
    lean = _draw(rng, "lean_weak_mm") if condition == "weak_abductors" else _draw(rng, "lean_mm")
    return PersonTraits(
        seed=int(rng.integers(2**31)),
        age_group=age_group,
        condition=condition,
        age_years=float(round(lo + (hi - lo) * rng.random())),
        mass_kg=float(mass_kg),
        sway_two_ml_rms_mm=_draw(rng, "sway_two_ml_rms_mm", part=part),
        sway_two_ap_rms_mm=_draw(rng, "sway_two_ap_rms_mm", part=part),
        sway_two_freq_hz=_draw(rng, "sway_two_freq_hz"),
        sway_one_ml_rms_mm=_draw(rng, "sway_one_ml_rms_mm", part=part),
        sway_one_ap_rms_mm=_draw(rng, "sway_one_ap_rms_mm", part=part),
        sway_one_freq_hz=_draw(rng, "sway_one_freq_hz"),
        fz_two_sd_pct=_draw(rng, "fz_two_sd_pct", part=part),
        fz_one_sd_pct=_draw(rng, "fz_one_sd_pct", part=part),
        fz_lowpass_hz=_draw(rng, "fz_lowpass_hz"),
        fz_highpass_hz=_draw(rng, "fz_highpass_hz") if rng.random() < 0.5 else 0.0,
        apa_mm=_draw(rng, "apa_mm"),
        apa_s=_draw(rng, "apa_s"),
        transfer_s=_draw(rng, "transfer_s"),
        transfer_shape=str(rng.choice(list(TRANSFER_SHAPES))),
        lean_mm=lean,
        cell_noise_n=_draw(rng, "cell_noise_n"),
        creep_pct=_draw(rng, "creep_pct"),
        creep_tau_s=_draw(rng, "creep_tau_s"),
        drift_n_per_min=_draw(rng, "drift_n_per_min"),
    )


def transfer_profile(u: np.ndarray | float, *, shape: str) -> np.ndarray:
    """Progress of the weight transfer, 0 at its start and 1 at its end (the lifted foot's load is zero).

    Parameters
    ----------
    u : array_like
        Time since the transfer began, as a fraction of its duration (clipped to 0..1).
    shape : {"cosine", "smoothstep", "smootherstep", "ease_out"}
        Every shape starts and ends with zero slope (a smooth fade); ``ease_out``
        is asymmetric: fast early, a long slow end.

    Returns
    -------
    ndarray
        The progress at ``u``.
    """
    v = np.clip(np.asarray(u, dtype=float), 0.0, 1.0)
    if shape == "cosine":
        return 0.5 - 0.5 * np.cos(np.pi * v)
    if shape == "smoothstep":
        return v * v * (3.0 - 2.0 * v)
    if shape == "smootherstep":
        return v * v * v * (v * (6.0 * v - 15.0) + 10.0)
    if shape == "ease_out":
        # a cosine ease of u**0.6: reaches half way early, then slows into a zero-slope end
        return 0.5 - 0.5 * np.cos(np.pi * v**0.6)
    raise ValueError(f"shape must be one of {list(TRANSFER_SHAPES)}, got {shape!r}")


@dataclass(frozen=True, kw_only=True)
class PelvisTraits:
    """What one simulated person's pelvis does (every number drawn from :data:`PELVIS_RANGES`).

    ``strategy``: one of :data:`PELVIS_STRATEGIES`. ``drop_deg``: the lifted
    side's drop at the start of the hold, degrees, positive = lower (the
    Trendelenburg direction; a healthy person's is negative: the side rises);
    ``fatigue_deg_per_s``: how fast it grows during the hold;
    ``trunk_lean_extra_mm``: the further lateral COP shift of a trunk lean (0
    without one).
    """

    seed: int
    strategy: str
    level_deg: float
    sway_two_deg: float
    sway_one_deg: float
    sway_freq_hz: float
    drop_deg: float
    drop_s: float
    fatigue_deg_per_s: float
    trunk_lean_extra_mm: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def draw_pelvis(rng: np.random.Generator, *, condition: str, compensates: bool | None = None) -> PelvisTraits:
    """Draw a person's pelvis for the simulated pelvis sensor.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of every draw (a separate stream from :func:`draw_person`'s, so
        the persons drawn so far stay the same).
    condition : {"healthy", "weak_abductors"}
        Healthy: the free side rises. Weak: it drops, growing with fatigue,
        unless the person compensates with a trunk lean.
    compensates : bool, optional
        Weak abductors only: lean the trunk instead of dropping; drawn
        (:data:`COMPENSATING_SHARE`) when not given.
    """
    if condition not in CONDITIONS:
        raise ValueError(f"condition must be one of {list(CONDITIONS)}, got {condition!r}")
    if condition == "healthy":
        strategy = "rise"
    else:
        if compensates is None:
            compensates = bool(rng.random() < COMPENSATING_SHARE)
        strategy = "lean" if compensates else "drop"
    if strategy == "rise":
        drop, fatigue, extra = -_draw(rng, "pelvis_rise_deg"), 0.0, 0.0
    elif strategy == "drop":
        drop, fatigue, extra = _draw(rng, "pelvis_drop_deg"), _draw(rng, "pelvis_fatigue_deg_per_10s") / 10.0, 0.0
    else:
        drop, fatigue, extra = _draw(rng, "pelvis_level_weak_deg"), 0.0, _draw(rng, "trunk_lean_extra_mm")
    return PelvisTraits(
        seed=int(rng.integers(2**31)),
        strategy=strategy,
        level_deg=_draw(rng, "pelvis_level_deg"),
        sway_two_deg=_draw(rng, "pelvis_sway_two_deg"),
        sway_one_deg=_draw(rng, "pelvis_sway_one_deg"),
        sway_freq_hz=_draw(rng, "pelvis_sway_freq_hz"),
        drop_deg=drop,
        drop_s=_draw(rng, "pelvis_drop_s"),
        fatigue_deg_per_s=fatigue,
        trunk_lean_extra_mm=extra,
    )
