"""Labelled single-leg trials from the simulated plate, for the acceptance test and the runner tests.

Each trial is a scenario for :class:`hardware.sim.plate.SimulatedPlate` in
fast mode (a seeded simulated person: quiet stance, a lift on one side,
touchdowns on or off the plate, hand support), run through the station's
force pipeline and the live path (:class:`station.protocols.trial.TrialCapture`),
with the ground truth read from the simulated person's events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from calibration.model import simulator_calibration
from hardware.sim.plate import SimulatedPlate
from station.core.frames import ForceFrame
from station.core.geometry import PlateGeometry
from station.protocols.single_leg import SingleLegConfig, SingleLegRunner
from station.protocols.trial import TrialCapture
from station.scoring.analyze import score_capture
from station.signal.forces import ForcePipeline

GEOMETRY = PlateGeometry()


@dataclass
class TrialSpec:
    """One labelled trial: how to simulate it and what happened."""

    seed: int
    rate_hz: float
    stance_side: str
    skill: str
    mass_kg: float
    start: str  # "quiet" or "empty" (then a step_on)
    lift_s: float
    transition_s: float
    touchdowns: list[dict[str, Any]] = field(default_factory=list)  # t_s from onset, where, duration_s, share_pct
    supports: list[dict[str, Any]] = field(default_factory=list)  # t_s from onset, pct_bw, duration_s
    extra_jitter: float = 0.0  # extra time-stamp jitter, as a fraction of the period (uniform +-)
    end_on_failure: bool = False
    wrong_side_first: bool = False

    @property
    def kind(self) -> str:
        wheres = sorted({td["where"] for td in self.touchdowns})
        parts = [f"touchdown-{w}" for w in wheres] + (["support"] if self.supports else [])
        return "+".join(parts) or "clean"


@dataclass
class TrialRun:
    """A simulated trial run through the live path, with its truth."""

    spec: TrialSpec
    result: dict[str, Any]
    capture: TrialCapture
    onset_true_s: float
    touchdowns_true: list[tuple[float, float, str]]  # start, end, where (trial clock)
    supports_true: list[tuple[float, float, float]]  # start, end, pct_bw (as asked of the simulated person)
    support_true_mean_pct: float  # true mean unloading by the hand over the time it was supported (ramps included)
    hold_true_s: float
    completed_true: bool


def make_specs(n: int, *, seed: int = 20260404) -> list[TrialSpec]:
    """``n`` labelled trials mixing every case: clean holds, touchdowns on and off the plate, hand
    support of 2 to 8 % of body weight, both sides, 80 and 100 Hz, jittered time stamps."""
    rng = np.random.default_rng(seed)
    specs = []
    for k in range(n):
        case = k % 6  # 0 clean, 1 plate, 2 floor, 3 support, 4 plate+floor+support, 5 support+touchdown
        spec = TrialSpec(
            seed=int(rng.integers(1_000_000)),
            rate_hz=80.0 if k % 2 == 0 else 100.0,
            stance_side="left" if (k // 2) % 2 == 0 else "right",
            skill="weak_abductors" if k % 3 == 0 else "normal",
            mass_kg=float(rng.uniform(50, 105)),
            start="empty" if k % 5 == 4 else "quiet",
            lift_s=0.0,
            transition_s=float(rng.uniform(0.2, 0.5)),
            extra_jitter=0.3 if k % 4 == 3 else 0.0,
            end_on_failure=(k % 12 in (1, 8)),
            wrong_side_first=(k % 10 == 7),
        )
        spec.lift_s = float(rng.uniform(5.5, 7.5) if spec.start == "empty" else rng.uniform(4.5, 7.5))
        if spec.wrong_side_first:
            spec.lift_s += 5.0
        busy: list[tuple[float, float]] = []

        def free_slot(length_s: float, busy: list[tuple[float, float]] = busy) -> float:
            for _ in range(200):
                t0 = float(rng.uniform(2.0, 26.5 - length_s))
                if all(t0 + length_s + 1.5 < a or t0 > b + 1.5 for a, b in busy):
                    busy.append((t0, t0 + length_s))
                    return t0
            raise AssertionError("no free slot")  # pragma: no cover

        wheres = {1: ["plate", "plate"], 2: ["floor", "floor"], 4: ["plate", "floor"],
                  5: [rng.choice(["plate", "floor"])]}
        for where in wheres.get(case, []):
            dur = float(rng.uniform(0.2, 1.5))
            share = float(rng.uniform(30, 60) if where == "plate" else rng.uniform(20, 60))
            spec.touchdowns.append({"t_s": free_slot(dur + 0.1), "where": str(where), "duration_s": dur,
                                    "share_pct": share})
        if case in (3, 4, 5):
            for _ in range(1 if case != 3 else int(rng.integers(1, 3))):
                dur = float(rng.uniform(2.0, 5.0))
                spec.supports.append({"t_s": free_slot(dur + 0.3), "pct_bw": float(rng.uniform(2.0, 8.0)),
                                      "duration_s": dur})
        spec.touchdowns.sort(key=lambda d: d["t_s"])
        spec.supports.sort(key=lambda d: d["t_s"])
        specs.append(spec)
    return specs


def scenario(spec: TrialSpec) -> list[dict[str, Any]]:
    """The simulator scenario; touchdown and support times count from the end of the lift transition."""
    steps: list[dict[str, Any]] = []
    if spec.start == "empty":
        steps.append({"t_s": 0.5, "behaviour": "step_on", "first_foot": "left"})
    other = "right" if spec.stance_side == "left" else "left"
    if spec.wrong_side_first:
        steps.append({"t_s": spec.lift_s - 4.0, "behaviour": "single_leg", "stance_side": other})
        steps.append({"t_s": spec.lift_s - 2.5, "behaviour": "quiet"})
    steps.append({"t_s": spec.lift_s, "behaviour": "single_leg", "stance_side": spec.stance_side,
                  "transition_s": spec.transition_s})
    onset = spec.lift_s + spec.transition_s
    for td in spec.touchdowns:
        steps.append({"t_s": onset + td["t_s"], "behaviour": "touchdown", "where": td["where"],
                      "duration_s": td["duration_s"], "share_pct": td["share_pct"]})
    for sup in spec.supports:
        steps.append({"t_s": onset + sup["t_s"], "behaviour": "hand_support", "pct_bw": sup["pct_bw"],
                      "duration_s": sup["duration_s"]})
    return steps


def run_trial(spec: TrialSpec, *, config: SingleLegConfig | None = None) -> TrialRun:
    """Simulate ``spec`` and run it through the live path; return the result with its truth."""
    plate = SimulatedPlate(realtime=False, seed=spec.seed, rate_hz=spec.rate_hz, jitter_s=0.001, skill=spec.skill,
                           mass_kg=spec.mass_kg, start=spec.start, scenario=scenario(spec),
                           duration_s=spec.lift_s + spec.transition_s + 33.0, geometry=GEOMETRY)
    pipeline = ForcePipeline(simulator_calibration(), GEOMETRY)
    cfg = config if config is not None else SingleLegConfig(end_on_failure=spec.end_on_failure)
    capture = TrialCapture(SingleLegRunner(stance_side=spec.stance_side, geometry=GEOMETRY, config=cfg),
                           geometry=GEOMETRY, sample_rate_hz=spec.rate_hz)
    jitter_rng = np.random.default_rng(spec.seed + 1)
    period = 1.0 / spec.rate_hz
    t0 = None
    support_pct: list[float] = []
    for raw in plate:
        frame = pipeline.process(raw)
        truth = plate.truth
        if truth is not None and truth.support_n > 0 and not capture.finished:
            support_pct.append(100.0 * truth.support_n / truth.body_weight_n)
        if t0 is None:
            t0 = frame.t_s
        if spec.extra_jitter:
            shifted = frame.t_s + jitter_rng.uniform(-spec.extra_jitter, spec.extra_jitter) * period
            frame = ForceFrame(frame.seq, shifted, frame.forces_n, frame.fz_n, frame.cop_ml_mm, frame.cop_ap_mm,
                               frame.flags)
        capture.push(frame)
        if capture.finished:
            break
    capture.runner.finish()
    result = score_capture(capture)

    # truth, on the trial clock (the capture counts from the first frame)
    events = plate.person.events
    lifts = [e.t_s for e in events if e.name == "foot_lifted" and e.params.get("stance_side") == spec.stance_side]
    onset = lifts[-1] - t0
    tds, open_td = [], None
    sups, open_sup = [], None
    for e in events:
        if e.name == "touchdown":
            open_td = (e.t_s - t0, e.params["where"])
        elif e.name == "touchdown_end" and open_td is not None:
            tds.append((open_td[0], e.t_s - t0, open_td[1]))
            open_td = None
        elif e.name == "hand_support":
            open_sup = (e.t_s - t0, e.params["pct_bw"])
        elif e.name == "support_end" and open_sup is not None:
            sups.append((open_sup[0], e.t_s - t0, open_sup[1]))
            open_sup = None
    if open_td is not None:  # the test ended (end on failure) before the simulated foot was up again
        tds.append((open_td[0], math.nan, open_td[1]))
    in_hold = [td for td in tds if onset <= td[0] < onset + 30.0]
    hold = min(in_hold[0][0] - onset, 30.0) if in_hold else 30.0
    if spec.end_on_failure and in_hold:
        in_hold = in_hold[:1]  # the test ends at the first one
    return TrialRun(spec=spec, result=result, capture=capture, onset_true_s=onset, touchdowns_true=in_hold,
                    supports_true=sups, support_true_mean_pct=float(np.mean(support_pct)) if support_pct else 0.0,
                    hold_true_s=hold, completed_true=not in_hold)


@dataclass
class Matching:
    """Detected touchdowns matched to the true ones."""

    confusion: dict[tuple[str, str], int]  # (truth where, detected where or "missed") -> count
    false: list[tuple[int, dict[str, Any]]]  # (trial index, detected touchdown) with no true one
    start_errors_s: list[float]
    duration_errors_s: list[float]


def match_touchdowns(runs: list[TrialRun], *, tolerance_s: float = 0.15) -> Matching:
    confusion = {(t, d): 0 for t in ("plate", "floor") for d in ("plate", "floor", "missed")}
    false: list[tuple[int, dict[str, Any]]] = []
    start_err: list[float] = []
    dur_err: list[float] = []
    for i, run in enumerate(runs):
        detected = list(run.result["touchdowns"])
        used = set()
        for start, end, where in run.touchdowns_true:
            best = None
            for j, d in enumerate(detected):
                if j in used:
                    continue
                err = d["t_s"] - start
                if abs(err) <= tolerance_s and (best is None or abs(err) < abs(best[1])):
                    best = (j, err)
            if best is None:
                confusion[(where, "missed")] += 1
                continue
            j, err = best
            used.add(j)
            confusion[(where, detected[j]["where"])] += 1
            start_err.append(err)
            if detected[j]["duration_s"] is not None:
                dur_err.append(detected[j]["duration_s"] - (end - start))
        false += [(i, d) for j, d in enumerate(detected) if j not in used]
    return Matching(confusion, false, start_err, dur_err)


def confusion_table(m: Matching) -> str:
    """The touchdown confusion table, as text."""
    rows = ["true \\ detected   plate   floor   missed", "-" * 42]
    for t in ("plate", "floor"):
        rows.append(f"{t:<16} {m.confusion[(t, 'plate')]:>6} {m.confusion[(t, 'floor')]:>7} "
                    f"{m.confusion[(t, 'missed')]:>8}")
    fp = {w: sum(1 for _, d in m.false if d["where"] == w) for w in ("plate", "floor")}
    rows.append(f"{'none (false)':<16} {fp['plate']:>6} {fp['floor']:>7} {'-':>8}")
    return "\n".join(rows)


def finite_max(values: list[float]) -> float:
    return max((abs(v) for v in values if v is not None and math.isfinite(v)), default=0.0)


# -- exact synthetic trials (no simulator): known COP and Fz, for the scoring and state-machine tests ----


def synthetic_trial(*, fs_hz: float = 80.0, body_weight_n: float = 700.0, stance_side: str = "left",
                    empty_s: float = 0.0, quiet_s: float = 5.0, transition_s: float = 0.3, after_s: float = 32.0,
                    lateral_mm: float = 3.0, sway_mm: float = 2.0, plate: tuple[tuple[float, float, float], ...] = (),
                    floor: tuple[tuple[float, float, float], ...] = (),
                    support: tuple[tuple[float, float, float], ...] = (),
                    wrong_side: tuple[float, float] | None = None, name: str = "synthetic.csv",
                    metadata: dict[str, str] | None = None):
    """A recording with exactly known events, in the trial's time (s from the first sample).

    ``empty_s`` of empty plate, then quiet two-foot stance at x = 0 (sine sway of ``sway_mm``), the weight
    moving under the stance foot over ``transition_s`` from ``t = empty_s + quiet_s`` (the onset is the end
    of the transition), single-leg stance at ``lateral_mm`` lateral of the footprint centre for
    ``after_s``. ``plate``/``floor``: (t_s from onset, duration_s, share_pct) touchdowns, as step changes;
    ``support``: (t_s from onset, duration_s, pct_bw) hand support as a step of Fz; ``wrong_side``:
    (t_s, duration_s) a lift on the other side during the quiet part.
    Returns ``(recording, onset_s)``.
    """
    from station.core.cop import split_load
    from station.core.recording import Recording

    g = GEOMETRY
    n = int(round((empty_s + quiet_s + transition_s + after_s) * fs_hz))
    t = np.arange(n) / fs_hz
    lift = empty_s + quiet_s
    onset = lift + transition_s
    sign = -1.0 if stance_side == "left" else 1.0  # x toward the stance foot
    foot = sign * g.feet_ml_mm / 2
    target = foot + sign * lateral_mm
    sway = sway_mm * np.sin(2 * np.pi * 0.4 * t) + 0.5 * sway_mm * np.sin(2 * np.pi * 1.1 * t + 1.0)
    u = np.clip((t - lift) / transition_s, 0.0, 1.0)
    x = target * (0.5 - 0.5 * np.cos(np.pi * u)) + sway
    y = 3.0 * np.sin(2 * np.pi * 0.3 * t)
    fz = np.full(n, body_weight_n) * (1.0 + 0.002 * np.sin(2 * np.pi * 0.7 * t))
    if wrong_side is not None:
        w0, wd = wrong_side
        other = -target
        bump = np.clip((t - w0) / 0.3, 0, 1) - np.clip((t - w0 - wd) / 0.3, 0, 1)
        x = x + other * (0.5 - 0.5 * np.cos(np.pi * np.clip(bump, 0, 1)))
    other_foot = -foot
    for t0, dur, share in plate:
        m = (t >= onset + t0) & (t < onset + t0 + dur)
        x[m] = (1 - share / 100) * x[m] + share / 100 * other_foot
    for t0, dur, share in floor:
        m = (t >= onset + t0) & (t < onset + t0 + dur)
        fz[m] *= 1 - share / 100
    for t0, dur, pct in support:
        m = (t >= onset + t0) & (t < onset + t0 + dur)
        fz[m] -= pct / 100 * body_weight_n
    fz[t < empty_s] = 0.0
    forces = split_load(fz, np.nan_to_num(x), y, ml_mm=g.ml_mm, ap_mm=g.ap_mm)
    rec = Recording(t_s=t, forces_n=forces, sample_rate_hz=fs_hz, geometry=g, name=name,
                    metadata=dict(metadata or {}))
    return rec, onset
