"""Acceptance of the single-leg test (issue 4) on 72 labelled trials from the simulated plate.

The trials (tests.station.single_leg_trials.make_specs) mix clean holds,
touchdowns on and off the plate (30-60 % and 20-60 % of body weight, 0.2-1.5 s),
hand support of 2 to 8 % of body weight (2-5 s), both stance sides, 80 and
100 Hz, normal and weak-abductor persons of 50-105 kg, starts on an empty
plate, a lift on the wrong side first, the test ended at the first failure,
and time stamps jittered by up to 1 ms (the simulator) or +-30 % of a period.
Each runs through the station's live path (force pipeline, recorded-form
frames, runner, scoring). Tolerances:

- onset within 0.25 s of the simulated foot lift;
- hold time within 0.3 s;
- every touchdown found within 0.15 s with the right ``where``, no false ones;
- support mean within 1 % of body weight of the true mean unloading by the
  hand over the time it was supported (the contract's definition; the
  simulated hand ramps in and out over 0.3 s, so this is a little below the
  level asked of it, which is reported too), and no support where there was none.

The confusion table is printed (``pytest -s``) and written to
``test-artifacts/single_leg_acceptance.txt``.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.station.single_leg_trials import (
    TrialRun,
    confusion_table,
    make_specs,
    match_touchdowns,
    run_trial,
)

N_TRIALS = 72


@pytest.fixture(scope="module")
def runs() -> list[TrialRun]:
    return [run_trial(spec) for spec in make_specs(N_TRIALS)]


def test_the_trials_cover_every_case(runs):
    specs = [r.spec for r in runs]
    assert len(specs) >= 60
    assert {s.stance_side for s in specs} == {"left", "right"}
    assert {s.rate_hz for s in specs} == {80.0, 100.0}
    assert sum(1 for s in specs if s.extra_jitter) >= 15
    kinds = [s.kind for s in specs]
    assert kinds.count("clean") >= 10
    wheres = [td["where"] for s in specs for td in s.touchdowns]
    assert wheres.count("plate") >= 20 and wheres.count("floor") >= 20
    pcts = [sup["pct_bw"] for s in specs for sup in s.supports]
    assert len(pcts) >= 30 and min(pcts) < 3.0 and max(pcts) > 7.0 and all(2.0 <= p <= 8.0 for p in pcts)
    assert any(s.end_on_failure for s in specs) and any(s.wrong_side_first for s in specs)
    assert any(s.start == "empty" for s in specs) and {s.skill for s in specs} == {"normal", "weak_abductors"}


def test_onset(runs):
    errors = [r.result["onset_s"] - r.onset_true_s for r in runs]
    assert max(abs(e) for e in errors) <= 0.25, errors


def test_hold_time_and_completion(runs):
    errors = [r.result["hold_time_s"] - r.hold_true_s for r in runs]
    assert max(abs(e) for e in errors) <= 0.3, errors
    assert [r.result["completed"] for r in runs] == [r.completed_true for r in runs]


def test_touchdowns(runs, artifacts):
    m = match_touchdowns(runs, tolerance_s=0.15)
    table = confusion_table(m)
    n_true = sum(len(r.touchdowns_true) for r in runs)
    support_label = [r.result["support"]["mean_pct_bw"] - float(np.mean([p for *_, p in r.supports_true]))
                     for r in runs if r.supports_true]
    support_true = [r.result["support"]["mean_pct_bw"] - r.support_true_mean_pct for r in runs if r.supports_true]
    report = "\n".join([
        f"single-leg acceptance: {len(runs)} simulated trials, {n_true} touchdowns",
        table,
        f"onset error (s): max {max(abs(r.result['onset_s'] - r.onset_true_s) for r in runs):.3f}, "
        f"mean {np.mean([r.result['onset_s'] - r.onset_true_s for r in runs]):+.3f}",
        f"hold time error (s): max {max(abs(r.result['hold_time_s'] - r.hold_true_s) for r in runs):.3f}",
        f"touchdown start error (s): max {max(abs(e) for e in m.start_errors_s):.3f}, "
        f"mean {np.mean(m.start_errors_s):+.3f}",
        f"touchdown duration error (s): max {max(abs(e) for e in m.duration_errors_s):.3f}, "
        f"mean {np.mean(m.duration_errors_s):+.3f}",
        f"support mean error vs the true mean (% BW): max {max(map(abs, support_true)):.2f}, "
        f"mean {np.mean(support_true):+.2f} ({len(support_true)} trials)",
        f"support mean error vs the level asked (% BW): max {max(map(abs, support_label)):.2f}, "
        f"mean {np.mean(support_label):+.2f}",
    ])
    print("\n" + report)
    (artifacts / "single_leg_acceptance.txt").write_text(report + "\n")
    for where in ("plate", "floor"):
        other = "floor" if where == "plate" else "plate"
        assert m.confusion[(where, "missed")] == 0, table
        assert m.confusion[(where, other)] == 0, table
    assert m.false == [], table
    assert sum(m.confusion.values()) == n_true


def test_support(runs):
    for r in runs:
        sup = r.result["support"]
        if r.supports_true:
            assert abs(sup["mean_pct_bw"] - r.support_true_mean_pct) <= 1.0, (r.spec, sup)
            assert len(sup["episodes"]) == len(r.supports_true), (r.spec, sup)
            true_time = sum(end - start for start, end, _ in r.supports_true) + 0.3 * len(r.supports_true)
            assert sup["time_s"] == pytest.approx(true_time, abs=0.6 * len(r.supports_true))
        else:
            assert sup["time_s"] == 0.0 and sup["mean_pct_bw"] == 0.0, (r.spec, sup)
