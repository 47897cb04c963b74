"""Acceptance of the single-leg measures on 500 labelled trials of the simulated population (issue 10).

The corpus (``hardware.sim.corpus``, seed 20261207) draws whole persons from
``hardware.sim.population`` (every parameter with its literature range) and gives
them every case: clean holds, touchdowns on the plate and the floor, a foot
still down at the end, hand support of 1-8 % BW and combinations; both sides,
80 and 100 Hz, jittered time stamps, 45-120 kg, four plate sizes. Each trial
is scored by ``analyze``'s own code.

The issue's targets are checked one by one. Those this population does not
reach are marked ``xfail(strict=True)`` with the reason: if a change reaches
them, the mark must go. Every figure also has a floor at what the station
reaches today, so a change that makes it worse fails. The confusion table
and the error distributions are printed (``pytest -s``) and written to
``test-artifacts/population_acceptance.txt``; ``docs/validation.md`` is
written by ``benchmarks/validation.py`` from the same trials and must match.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.station.population_trials import (
    N_TRIALS,
    Scored,
    confusion_text,
    match_touchdowns,
    score_corpus,
    summary,
)

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def rows() -> list[Scored]:
    return score_corpus(N_TRIALS, workers=2)


@pytest.fixture(scope="module")
def figures(rows) -> dict:
    return summary(rows)


def test_the_corpus_covers_every_case(rows):
    assert len(rows) >= 500
    assert {r.stance_side for r in rows} == {"left", "right"} and {r.fs_hz for r in rows} == {80.0, 100.0}
    masses = [r.mass_kg for r in rows]
    assert min(masses) < 50 and max(masses) > 115
    wheres = [w for r in rows for _, w in r.true_touchdowns]
    assert wheres.count("plate") >= 100 and wheres.count("floor") >= 100
    assert sum(1 for r in rows if r.case == "foot-down-at-end") >= 40
    supported = [r.true_support_pct for r in rows if r.true_support_s > 0]
    assert len(supported) >= 150 and min(supported) < 1.5 and max(supported) > 7.0
    assert {r.transfer_shape for r in rows} == {"cosine", "smoothstep", "smootherstep", "ease_out"}
    assert {r.age_group for r in rows} == {"young", "middle", "older"}


def test_report_the_figures(rows, figures, artifacts):
    ok = [r for r in rows if r.error is None]
    onset = np.array([r.onset_error_s for r in ok])
    hold = np.array([r.hold_error_s for r in ok])
    sup = np.array([r.found_support_pct - r.true_support_pct for r in ok if r.true_support_s > 0])

    def dist(v: np.ndarray) -> str:
        p = np.percentile(np.abs(v), [50, 95, 99, 100])
        return f"bias {v.mean():+.3f}, |error| p50 {p[0]:.3f} p95 {p[1]:.3f} p99 {p[2]:.3f} max {p[3]:.3f}"

    text = "\n".join([
        f"single-leg acceptance on the population: {len(rows)} trials",
        json.dumps(figures, indent=1),
        confusion_text(match_touchdowns(ok)),
        f"onset error (s): {dist(onset)}",
        f"hold time error (s): {dist(hold)}",
        f"support mean error (% BW): {dist(sup)}",
    ])
    print("\n" + text)
    (artifacts / "population_acceptance.txt").write_text(text + "\n")
    assert figures["refused"] == 0


# -- the targets this population reaches ------------------------------------------------------------


def test_trials_without_support_report_none(figures):
    assert figures["no_false_support_pct"] >= 99.0


# -- the targets it does not reach (yet): strict xfail, and a floor at today's figure ----------------


@pytest.mark.xfail(strict=True, reason="onset: limited by the single-leg sway at the end of the weight transfer "
                   "and early by ~0.2 s for transfers ending in a long tail; docs/validation.md")
def test_onset_target(figures):
    assert figures["onset_within_0_15_pct"] >= 99.0


@pytest.mark.xfail(strict=True, reason="hold time inherits the onset error; docs/validation.md")
def test_hold_time_target(figures):
    assert figures["hold_within_0_2_pct"] >= 99.0


@pytest.mark.xfail(strict=True, reason="touchdowns on the plate lighter than about 18 % BW are missed; "
                   "docs/validation.md")
def test_touchdown_target(figures):
    assert figures["touchdown_f1"] >= 0.99


@pytest.mark.xfail(strict=True, reason="support lighter than the trial's detection limit is reported as none; "
                   "docs/validation.md")
def test_support_mean_target(figures):
    assert figures["support_mean_within_1_pct"] >= 95.0


def test_no_figure_is_worse_than_today(figures):
    assert figures["onset_within_0_15_pct"] >= 72.0
    assert figures["hold_within_0_2_pct"] >= 85.0
    assert figures["touchdown_f1"] >= 0.97
    assert figures["support_mean_within_1_pct"] >= 82.0


def test_the_validation_report_is_up_to_date(rows):
    sys.path.insert(0, str(ROOT))
    from benchmarks.validation import BDS_DIR, DOC, PLOT, report

    if not (BDS_DIR / "reference.json").exists():
        pytest.skip(f"the BDS trials are not at {BDS_DIR}: the report's BDS section cannot be made")
    text, plot = report(rows)
    assert DOC.read_text(encoding="utf-8") == text, "docs/validation.md is stale: run benchmarks/validation.py"
    assert PLOT.read_text(encoding="utf-8") == plot, "docs/validation-hold-time.svg is stale"
