"""Labelled single-leg trials synthesised from a drawn person: corner forces and the ground truth.

Where :class:`hardware.sim.person.SimPerson` advances one person tick by tick
for the live station, :func:`synthesize_single_leg` writes a whole trial at
once (numpy, a few milliseconds), for the acceptance corpus and the validation
report. Both take their person from :mod:`hardware.sim.population`.

The body
--------
Quiet two-foot stance, then at ``lift_s`` the single-leg lift:

- the anticipatory postural adjustment moves the COP toward the foot about to
  lift (``apa_mm`` over ``apa_s``);
- the weight transfer: the lifted foot's load fades from its two-foot share to
  zero over ``transfer_s``, with the person's profile
  (:func:`hardware.sim.population.transfer_profile`); the COP is the load-weighted
  mean of the two feet's COPs, so it moves from the two-foot sway onto the
  stance foot, to its lean position plus the single-leg sway;
- **the onset is the end of the transfer**: the moment the lifted foot's load is zero;
- the vertical force is the body weight times ``1 + v(t)``, ``v`` band-limited
  Gaussian noise whose level changes from the two-foot to the single-leg value
  with the transfer;
- touchdowns of the lifted foot (on the plate: the load moves to the lifted
  footprint; on the floor: the load leaves the plate), hand support (unsteady,
  ramping in and out), each at times counted from the onset.

The plate
---------
The load is split bilinearly onto the four cells (:func:`station.core.cop.split_load`,
a rigid plate); each cell adds its creep (a first-order response to its own
load), the plate's zero drift and Gaussian noise. Time stamps jitter around the
nominal period; every signal is evaluated at the jittered instants.

The truth
---------
:class:`TrialTruth`: the onset, the hold time to the first touchdown, the
touchdowns (start and end, where), the hand-support episodes with the true mean
unloading over the time the hand carried load (ramps included, as the contract
defines the mean), the lifted foot's load, and the person.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import signal

from hardware.sim.population import PersonTraits, transfer_profile
from station.core.cop import GRAVITY_M_S2, split_load
from station.core.geometry import PlateGeometry
from station.core.recording import Recording
from station.core.sides import SIDES

__all__ = ["SupportPlan", "TouchdownPlan", "TrialPlan", "TrialTruth", "synthesize_single_leg"]


@dataclass(frozen=True, kw_only=True)
class TouchdownPlan:
    """A touchdown of the lifted foot, ``t_s`` after the onset.

    ``duration_s`` None: the foot stays down to the end of the recording.
    """

    t_s: float
    where: str  # "plate" or "floor"
    load_pct: float
    rise_s: float
    duration_s: float | None


@dataclass(frozen=True, kw_only=True)
class SupportPlan:
    """Hand support from ``t_s`` after the onset, for ``duration_s`` (ramps included)."""

    t_s: float
    duration_s: float
    level_pct: float
    ramp_s: float
    cv: float
    corner_hz: float


@dataclass(frozen=True, kw_only=True)
class TrialPlan:
    """What happens in one trial (times in s)."""

    stance_side: str
    fs_hz: float
    geometry: PlateGeometry
    lift_s: float
    hold_s: float = 30.0
    after_s: float = 2.0
    touchdowns: tuple[TouchdownPlan, ...] = ()
    supports: tuple[SupportPlan, ...] = ()
    jitter_frac: float = 0.0


@dataclass
class TrialTruth:
    """The ground truth of a synthesised trial (times on the recording's clock)."""

    onset_s: float
    hold_time_s: float
    completed: bool
    touchdowns: list[tuple[float, float | None, str]]  # start, end (None: still down), where; within the hold
    supports: list[tuple[float, float, float]]  # start, end, true mean unloading in % BW over it
    support_time_s: float
    support_mean_pct: float  # over every supported sample of the hold window (0 when none)
    body_weight_n: float
    traits: PersonTraits
    plan: TrialPlan
    extra: dict[str, Any] = field(default_factory=dict)


def _unit_noise(rng: np.random.Generator, n: int, fs_hz: float, *, lo_hz: float, hi_hz: float) -> np.ndarray:
    """Gaussian noise band-limited to ``lo_hz``..``hi_hz`` (``lo_hz`` 0: low-pass), scaled to unit RMS."""
    pad = int(5 * fs_hz)
    w = rng.standard_normal(n + 2 * pad)
    nyq = fs_hz / 2
    if lo_hz > 0:
        sos = signal.butter(2, [lo_hz / nyq, min(hi_hz / nyq, 0.99)], btype="bandpass", output="sos")
    else:
        sos = signal.butter(2, min(hi_hz / nyq, 0.99), output="sos")
    y = signal.sosfiltfilt(sos, w)[pad: pad + n]
    return y / max(float(np.sqrt(np.mean(y * y))), 1e-12)


def _oscillator(rng: np.random.Generator, n: int, fs_hz: float, *, freq_hz: float, damping: float = 0.5) -> np.ndarray:
    """Sway: a damped oscillator driven by white noise (resonant at ``freq_hz``), unit RMS, mean zero."""
    w = 2 * math.pi * freq_hz
    b, a = signal.bilinear([w * w], [1.0, 2 * damping * w, w * w], fs=fs_hz)
    pad = int(20 * fs_hz / max(freq_hz, 0.1) / 10)
    y = signal.lfilter(b, a, rng.standard_normal(n + pad))[pad:]
    y = y - y.mean()
    return y / max(float(np.sqrt(np.mean(y * y))), 1e-12)


def _ramp(t: np.ndarray, start_s: float, rise_s: float) -> np.ndarray:
    """Cosine ease from 0 at ``start_s`` to 1 at ``start_s + rise_s``."""
    if rise_s <= 0:
        return (t >= start_s).astype(float)
    return transfer_profile((t - start_s) / rise_s, shape="cosine")


def _episode(t: np.ndarray, start_s: float, duration_s: float | None, rise_s: float) -> np.ndarray:
    """0 -> 1 over ``rise_s`` from ``start_s``, then back to 0 ending at ``start_s + duration_s``."""
    up = _ramp(t, start_s, rise_s)
    if duration_s is None:
        return up
    rise = min(rise_s, duration_s / 2)
    up = _ramp(t, start_s, rise)
    down = 1.0 - _ramp(t, start_s + duration_s - rise, rise)
    return np.minimum(up, down) * ((t >= start_s) & (t <= start_s + duration_s))


def synthesize_single_leg(person: PersonTraits, plan: TrialPlan) -> tuple[Recording, TrialTruth]:
    """A whole labelled single-leg trial for ``person`` doing ``plan``.

    Parameters
    ----------
    person : PersonTraits
        The body and plate (:func:`hardware.sim.population.draw_person`); its
        ``seed`` seeds every noise of the trial.
    plan : TrialPlan
        Side, rate, geometry, when the lift starts, touchdowns and support.

    Returns
    -------
    recording : Recording
        Corner forces on jittered time stamps, with the metadata a recorded
        trial carries (``protocol``, ``stance_side``, the person's age).
    truth : TrialTruth
        The onset, touchdowns, support and hold time (module notes).
    """
    if plan.stance_side not in SIDES:
        raise ValueError(f"stance_side must be 'left' or 'right', got {plan.stance_side!r}")
    rng = np.random.default_rng(person.seed)
    g = plan.geometry
    fs = float(plan.fs_hz)
    onset = plan.lift_s + person.transfer_s
    duration = onset + plan.hold_s + plan.after_s
    n = int(round(duration * fs))
    k = np.arange(n)
    jitter = rng.uniform(-plan.jitter_frac, plan.jitter_frac, n) if plan.jitter_frac else np.zeros(n)
    t = (k + jitter) / fs
    t[0] = max(t[0], 0.0)
    bw = person.mass_kg * GRAVITY_M_S2
    stance_x = g.left_foot_x_mm if plan.stance_side == "left" else g.right_foot_x_mm
    lifted_x = -stance_x
    lateral = -1.0 if plan.stance_side == "left" else 1.0  # sign of x away from the other foot

    # sway on both axes, two-foot and single-leg, and the vertical fluctuation
    two_ml = person.sway_two_ml_rms_mm * _oscillator(rng, n, fs, freq_hz=person.sway_two_freq_hz)
    two_ap = person.sway_two_ap_rms_mm * _oscillator(rng, n, fs, freq_hz=person.sway_two_freq_hz * 0.8)
    one_ml = person.sway_one_ml_rms_mm * _oscillator(rng, n, fs, freq_hz=person.sway_one_freq_hz)
    one_ap = person.sway_one_ap_rms_mm * _oscillator(rng, n, fs, freq_hz=person.sway_one_freq_hz * 0.85)
    v = _unit_noise(rng, n, fs, lo_hz=person.fz_highpass_hz, hi_hz=person.fz_lowpass_hz)

    # the lift: anticipatory shift toward the lifted foot, then the transfer onto the stance foot
    p = transfer_profile((t - plan.lift_s) / person.transfer_s, shape=person.transfer_shape)
    apa = person.apa_mm * _ramp(t, plan.lift_s - person.apa_s, person.apa_s)
    x_two = two_ml - lateral * apa  # toward the lifted foot is -lateral
    x_one = stance_x + lateral * person.lean_mm + one_ml
    x = (1.0 - p) * x_two + p * x_one
    y = (1.0 - p) * two_ap + p * one_ap
    lifted_share0 = np.clip((x_two - stance_x) / (lifted_x - stance_x), 0.0, 1.0)
    lifted_load = (1.0 - p) * lifted_share0  # fraction of body weight on the lifted foot
    sd = (1.0 - p) * person.fz_two_sd_pct + p * person.fz_one_sd_pct
    fz = bw * (1.0 + sd / 100.0 * v)

    # touchdowns of the lifted foot
    hold_end = onset + plan.hold_s
    truth_tds: list[tuple[float, float | None, str]] = []
    for td in plan.touchdowns:
        start = onset + td.t_s
        share = td.load_pct / 100.0 * _episode(t, start, td.duration_s, td.rise_s)
        if td.where == "plate":
            x = (1.0 - share) * x + share * (lifted_x + 0.3 * two_ml)
            y = (1.0 - share) * y
        elif td.where == "floor":
            fz = fz - share * bw
        else:
            raise ValueError(f"touchdown where must be 'plate' or 'floor', got {td.where!r}")
        lifted_load = lifted_load + share
        end = None if td.duration_s is None else start + td.duration_s
        if start < hold_end:
            truth_tds.append((start, end if end is None or end < duration else None, td.where))

    # hand support, unsteady
    truth_sups: list[tuple[float, float, float]] = []
    support_frac = np.zeros(n)
    for sup in plan.supports:
        start = onset + sup.t_s
        shape = _episode(t, start, sup.duration_s, sup.ramp_s)
        wobble = 1.0 + sup.cv * _unit_noise(rng, n, fs, lo_hz=0.0, hi_hz=sup.corner_hz)
        level = sup.level_pct / 100.0 * shape * np.clip(wobble, 0.0, None)
        support_frac += level
        end = min(start + sup.duration_s, hold_end)
        inside = (t >= start) & (t < end)
        if inside.any():
            truth_sups.append((start, end, 100.0 * float(level[inside].mean())))
    fz = fz - support_frac * bw

    # the plate: bilinear split, creep, drift, noise
    forces = split_load(np.maximum(fz, 0.0), x, y, ml_mm=g.ml_mm, ap_mm=g.ap_mm)
    dt = 1.0 / fs
    a = math.exp(-dt / person.creep_tau_s)
    creep_state = forces[0] * rng.uniform(0.0, 1.0)
    creep = signal.lfilter([1 - a], [1, -a], forces, axis=0, zi=(a * creep_state)[None, :])[0]
    forces = forces + person.creep_pct / 100.0 * creep
    forces = forces + (person.drift_n_per_min / 60.0 * t / 4.0)[:, None]
    forces = forces + person.cell_noise_n * rng.standard_normal(forces.shape)

    # the truth
    in_hold = [td for td in truth_tds if onset <= td[0] < hold_end]
    hold_time = min(in_hold[0][0] - onset, plan.hold_s) if in_hold else plan.hold_s
    window = (t >= onset) & (t < onset + hold_time)
    sup_mask = window & (support_frac > 0)
    support_mean = 100.0 * float(support_frac[sup_mask].mean()) if sup_mask.any() else 0.0
    metadata = {
        "protocol": "single-leg",
        "stance_side": plan.stance_side,
        "age_years": f"{person.age_years:g}",
        "simulated_person": f"{person.age_group} {person.condition} seed {person.seed}",
    }
    rec = Recording(t_s=t, forces_n=forces, sample_rate_hz=fs, geometry=g, metadata=metadata,
                    name=f"synthetic-{person.seed}")
    truth = TrialTruth(
        onset_s=onset,
        hold_time_s=hold_time,
        completed=not in_hold,
        touchdowns=in_hold,
        supports=truth_sups,
        support_time_s=float(sum(min(e, onset + hold_time) - s for s, e, _ in truth_sups if s < onset + hold_time)),
        support_mean_pct=support_mean,
        body_weight_n=bw,
        traits=person,
        plan=plan,
        extra={"lifted_load": lifted_load, "t_s": t},
    )
    return rec, truth
