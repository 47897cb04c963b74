"""The single-leg acceptance corpus scored by ``analyze``, compared with its truth.

Shared by the acceptance test (``tests/station/scoring/test_population_acceptance.py``)
and the validation report (``benchmarks/validation.py``), so the two always
speak of the same trials.
"""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hardware.sim.corpus import CorpusTrial, corpus
from hardware.sim.trial import TrialTruth, synthesize_single_leg
from station.scoring.scores import score_single_leg_recording

#: The corpus of the acceptance test and the report.
N_TRIALS = 500
SEED = 20261207
#: A detected touchdown matches a true one of the same kind starting within this, in s.
MATCH_S = 0.3


@dataclass
class Scored:
    """One corpus trial: what ``analyze`` said and the truth."""

    index: int
    case: str
    stance_side: str
    fs_hz: float
    mass_kg: float
    age_group: str
    condition: str
    transfer_shape: str
    onset_error_s: float | None
    hold_error_s: float | None
    true_touchdowns: list[tuple[float, str]]
    found_touchdowns: list[tuple[float, str]]
    true_support_s: float
    true_support_pct: float
    found_support_s: float
    found_support_pct: float
    detection_limit_pct: float | None
    quality: list[str]
    cop_ellipse_mm2: float | None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def score_one(trial: CorpusTrial) -> Scored:
    rec, truth = synthesize_single_leg(trial.person, trial.plan)
    return compare(trial, truth, rec)


def compare(trial: CorpusTrial, truth: TrialTruth, rec: Any) -> Scored:
    p = trial.person
    base = dict(index=trial.index, case=trial.case, stance_side=trial.plan.stance_side, fs_hz=trial.plan.fs_hz,
                mass_kg=p.mass_kg, age_group=p.age_group, condition=p.condition, transfer_shape=p.transfer_shape,
                true_touchdowns=[(s, w) for s, _, w in truth.touchdowns], true_support_s=truth.support_time_s,
                true_support_pct=truth.support_mean_pct, extra={"hold_true_s": truth.hold_time_s,
                                                                   "sway_one_ml_rms_mm": p.sway_one_ml_rms_mm})
    try:
        r = score_single_leg_recording(rec, stance_side=None, lowpass_hz=10.0)
    except Exception as exc:  # noqa: BLE001 - a refusal is a result of the corpus, counted as such
        return Scored(**base, onset_error_s=None, hold_error_s=None, found_touchdowns=[], found_support_s=0.0,
                      found_support_pct=0.0, detection_limit_pct=None, quality=[], cop_ellipse_mm2=None,
                      error=str(exc))
    return Scored(
        **base,
        onset_error_s=r["onset_s"] - truth.onset_s,
        hold_error_s=r["hold_time_s"] - truth.hold_time_s,
        found_touchdowns=[(td["t_s"], td["where"]) for td in r["touchdowns"]],
        found_support_s=r["support"]["time_s"],
        found_support_pct=r["support"]["mean_pct_bw"],
        detection_limit_pct=r["support"]["detection_limit_pct_bw"],
        quality=[q["name"] for q in r["quality"]],
        cop_ellipse_mm2=r["cop"]["ellipse95_area_mm2"],
    )


def score_corpus(n: int = N_TRIALS, *, seed: int = SEED, workers: int = 2) -> list[Scored]:
    """Synthesise and score ``n`` corpus trials (in ``workers`` processes)."""
    trials = corpus(n, seed=seed)
    if workers <= 1:
        return [score_one(t) for t in trials]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(score_one, trials, chunksize=8))


@dataclass
class TouchdownCounts:
    """Touchdowns matched by kind and time: a confusion table."""

    table: dict[tuple[str, str], int]  # (true, found) -> count; "none" for missed / false

    @property
    def f1(self) -> float:
        tp = sum(v for (a, b), v in self.table.items() if a == b and a != "none")
        fp = sum(v for (a, b), v in self.table.items() if b != "none" and a != b)
        fn = sum(v for (a, b), v in self.table.items() if a != "none" and a != b)
        return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def match_touchdowns(rows: list[Scored]) -> TouchdownCounts:
    table: dict[tuple[str, str], int] = {}

    def add(a: str, b: str) -> None:
        table[(a, b)] = table.get((a, b), 0) + 1

    for r in rows:
        found = list(r.found_touchdowns)
        for t_true, w_true in r.true_touchdowns:
            near = [f for f in found if abs(f[0] - t_true) <= MATCH_S]
            if near:
                best = min(near, key=lambda f: abs(f[0] - t_true))
                found.remove(best)
                add(w_true, best[1])
            else:
                add(w_true, "none")
        for _, w in found:
            add("none", w)
    return TouchdownCounts(table)


def confusion_text(counts: TouchdownCounts) -> str:
    kinds = ("plate", "floor", "none")
    lines = ["| true \\ found | plate | floor | missed |", "|---|---|---|---|"]
    for a in kinds:
        cells = [str(counts.table.get((a, b), 0)) if not (a == "none" and b == "none") else "-" for b in kinds]
        lines.append(f"| {a if a != 'none' else 'none (false)'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(rows: list[Scored]) -> dict[str, Any]:
    """The acceptance figures of issue 10 over ``rows``."""
    ok = [r for r in rows if r.error is None]
    onset = np.array([abs(r.onset_error_s) for r in ok])
    hold = np.array([abs(r.hold_error_s) for r in ok])
    clean = [r for r in ok if r.true_support_s == 0.0]
    supported = [r for r in ok if r.true_support_s > 0.0]
    sup_err = np.array([abs(r.found_support_pct - r.true_support_pct) for r in supported])
    counts = match_touchdowns(ok)
    return {
        "n": len(rows),
        "refused": len(rows) - len(ok),
        "onset_within_0_15_pct": 100.0 * float(np.mean(onset <= 0.15)) if ok else math.nan,
        "hold_within_0_2_pct": 100.0 * float(np.mean(hold <= 0.2)) if ok else math.nan,
        "touchdown_f1": counts.f1,
        "no_false_support_pct": 100.0 * float(np.mean([r.found_support_s < 0.5 for r in clean])) if clean else math.nan,
        "support_mean_within_1_pct": 100.0 * float(np.mean(sup_err <= 1.0)) if supported else math.nan,
        "n_clean_of_support": len(clean),
        "n_supported": len(supported),
    }
