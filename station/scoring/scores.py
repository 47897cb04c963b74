"""Scoring of the single-leg and quiet-stance tests: the ``analyze`` contract, sides compared, norms.

One scoring function per protocol, used by the live test and by
``balance-station analyze`` alike (DESIGN.md section 5):

* :func:`score_single_leg` turns a recorded trial and what the runner found in
  it (:class:`~station.protocols.single_leg.SingleLegOutcome`: baseline,
  onset, touchdowns, support runs) into every field of the single-leg
  contract. The detection is the runner's, made causally frame by frame; the
  measures are taken after the fact on the recording processed as the
  contract says: resampled onto the nominal rate and low-passed (4th-order
  zero-phase Butterworth, 10 Hz by default).
* :func:`score_single_leg_recording` is the ``analyze`` path: it feeds the
  recording's frames to a fresh runner (settings from the recording's
  metadata), then calls :func:`score_single_leg`.
* :func:`quiet_stance_result` scores a quiet-stance trial's recorded window
  with the quiet-stance metrics (:func:`station.scoring.analyze.score_quiet_stance`)
  and adds its conditions.
* :func:`compare_sides` and :func:`session_summary` compare left and right
  (symmetry index, percentage difference, flags) and add the age-matched
  norm (:mod:`station.scoring.norms`).

Single-leg fields
-----------------
``body_weight_n``
    Median (low-passed) Fz over the runner's baseline window of quiet two-foot stance.
``onset_s``, ``hold_time_s``, ``completed``
    From the runner: the lift-off, the time from it to the first touchdown
    (at most ``hold_s``, 30 s), and whether 30 s were held with none.
``touchdowns``
    ``{"t_s", "duration_s", "where"}`` for each touchdown of the lifted foot
    during the test; ``duration_s`` is null for a foot still down when the
    test ended.
``support``
    ``time_s``: total time of the hand-support runs; ``mean_pct_bw``: mean
    unloading ``100 (BW - Fz) / BW`` over that time (0 when never supported);
    ``peak_pct_bw``: the largest 0.5 s moving average of the unloading
    within a run; ``episodes``: each run's ``t_s``, ``duration_s`` and
    ``mean_pct_bw``.
``ml_offset_mm``
    Mean medio-lateral COP over the hold window minus the stance footprint
    centre (``-feet_ml/2`` for the left foot, ``+feet_ml/2`` for the right),
    positive lateral (away from the other foot).
``ml_offset_drift_mm_s``
    Least-squares slope of the lateral COP over the hold window, positive
    when the COP drifts laterally (null for a hold shorter than 1 s).
``cop``
    :func:`station.signal.metrics.cop_metrics` over the hold window (onset to onset
    + hold time), the mean removed; nulls when the window holds fewer than
    3 samples.
``pelvis``
    With the recording's ``pelvis_obliquity_deg`` column: the lifted side's
    pelvic drop against its two-foot baseline level over the hold window and
    the measured Trendelenburg sign (:func:`station.protocols.pelvis.pelvis_scores`);
    null without the column or without a sensor value in the windows.
Also ``hold_s``, ``end_on_failure``, ``end_reason``, ``wrong_side_lifts_s``,
``lowpass_hz``, ``warnings``, and ``norm`` (:func:`station.scoring.norms.norm_reference`)
when the recording's metadata carries ``age_years``.

References
----------
.. [1] Hardcastle P, Nade S (1985) The significance of the Trendelenburg test.
   J Bone Joint Surg Br 67:741-746.
.. [2] Springer BA, Marin R, Cyhan T, Roberts H, Gill NW (2007) Normative
   values for the unipedal stance test with eyes open and closed. J Geriatr
   Phys Ther 30(1):8-15.
.. [3] Prieto TE et al. (1996) Measures of postural steadiness. IEEE Trans
   Biomed Eng 43:956-966.
.. [4] Duarte M, Freitas SMSF (2010) Revision of posturography based on force
   plate for balance evaluation. Rev Bras Fisioter 14:183-192.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from station.core.cop import centre_of_pressure
from station.core.jsonclean import json_ready
from station.core.recording import Recording
from station.protocols.pelvis import (
    PELVIS_COLUMN,
    bridge_short_gaps,
    obliquity_values,
    pelvis_scores,
    resample_with_gaps,
)
from station.protocols.quiet_stance import QuietStanceOutcome
from station.protocols.single_leg import SIDES, SingleLegConfig, SingleLegOutcome, SingleLegRunner
from station.protocols.support import detect_support
from station.protocols.trial import frames_from_recording
from station.scoring.norms import norm_reference
from station.scoring.prepare import AnalysisError, prepare_trial, score_quiet_stance
from station.signal.filters import lowpass_zero_phase, min_samples_zero_phase
from station.signal.metrics import COP_KEYS, cop_metrics

__all__ = [
    "ASYMMETRY_FLAG_PCT",
    "compare_sides",
    "quiet_stance_result",
    "score_single_leg",
    "score_single_leg_recording",
    "session_summary",
    "single_leg_result",
]

#: A left/right difference of this many % or more (hold time or sway velocity) is flagged.
ASYMMETRY_FLAG_PCT = 16.0
#: Window of the contract's peak support (the largest 0.5 s average).
PEAK_WINDOW_S = 0.5
#: Support is not looked for this close to a touchdown off the plate (its own Fz drop and recovery), in s.
FLOOR_MARGIN_S = 0.3
#: Shortest hold for which a lateral drift is reported.
MIN_DRIFT_WINDOW_S = 1.0


def _age_from_metadata(rec: Recording) -> float | None:
    text = rec.metadata.get("age_years")
    if text is None:
        return None
    try:
        age = float(text)
    except ValueError:
        raise AnalysisError(f"{rec.name}: metadata age_years {text!r} is not a number") from None
    if not (math.isfinite(age) and 0 <= age <= 130):
        raise AnalysisError(f"{rec.name}: metadata age_years {text!r} is not an age in years")
    return age


def _window(t: np.ndarray, start_s: float, end_s: float) -> np.ndarray:
    """Indices of the uniform samples with ``start_s <= t < end_s``."""
    return np.flatnonzero((t >= start_s - 1e-9) & (t < end_s - 1e-9))


def score_single_leg(rec: Recording, outcome: SingleLegOutcome, *, lowpass_hz: float | None) -> dict[str, Any]:
    """Every single-leg field of the ``analyze`` contract, from a recorded trial and its runner's outcome.

    Parameters
    ----------
    rec : Recording
        The trial as recorded, on the clock of the runner's frames (the
        recording's own ``t_s``).
    outcome : SingleLegOutcome
        What the runner found in these frames (:meth:`SingleLegRunner.outcome`).
    lowpass_hz : float or None
        Cut-off of the zero-phase low-pass applied to Fz and COP (10 Hz in the
        contract); None analyses the resampled samples as they are.

    Returns
    -------
    dict
        The fields after ``protocol`` and ``stance_side`` (module notes), in
        contract order; numbers may be NaN-free floats or None.

    Raises
    ------
    AnalysisError
        No lift-off was found (the message says why: no baseline, no lift,
        lift on the wrong side), or the cut-off is not below half the rate.
    """
    if outcome.onset_s is None or outcome.baseline is None or outcome.end_s is None:
        raise AnalysisError(f"{rec.name}: cannot score the single-leg test: {outcome.problem or outcome.end_reason}")
    trial = prepare_trial(rec)
    fs = trial.fs_hz
    t = trial.t_s
    fz, x, y = centre_of_pressure(trial.forces_n, ml_mm=trial.geometry.ml_mm, ap_mm=trial.geometry.ap_mm,
                                  min_fz_n=outcome.config.baseline.occupancy_n)
    notes = list(trial.warnings)
    if lowpass_hz is not None and not lowpass_hz < fs / 2:
        raise AnalysisError(f"{rec.name}: the low-pass cut-off {lowpass_hz:g} Hz must be below half the sample rate "
                            f"({fs / 2:g} Hz)")
    need = min_samples_zero_phase()

    def smooth(values: np.ndarray) -> np.ndarray:
        """The low-pass over one analysed window on its own (a step just outside it must not leak in)."""
        if lowpass_hz is None or values.size < need:
            return values
        return lowpass_zero_phase(values, fs_hz=fs, cutoff_hz=lowpass_hz)

    base = _window(t, outcome.baseline.start_s, outcome.baseline.end_s + 0.5 / fs)
    body_weight_n = float(np.median(smooth(fz[base]))) if base.size else outcome.baseline.body_weight_n
    side = outcome.stance_side
    hold_s = outcome.config.hold_s
    onset = outcome.onset_s
    hold_time = outcome.hold_time_s
    assert hold_time is not None

    # -- the hold window: COP metrics, lateral offset and drift -------------------------------
    idx = _window(t, onset, onset + hold_time)
    cop: dict[str, float | None] = dict.fromkeys(COP_KEYS)
    ml_offset = drift = None
    empty = np.flatnonzero(~np.isfinite(x[idx]))
    if empty.size:
        notes.append(f"the plate was empty during the hold window from t = {t[idx[empty[0]]]:.2f} s; "
                     "the COP measures stop there")
        idx = idx[: empty[0]]
    if idx.size:
        xw, yw = smooth(x[idx]), smooth(y[idx])
        if xw.size >= 3:
            cop = cop_metrics(xw, yw, fs_hz=fs)
        else:
            notes.append(f"hold window of {hold_time:.2f} s: too short for the COP measures")
        lateral = -1.0 if side == "left" else 1.0
        foot_x = trial.geometry.left_foot_x_mm if side == "left" else trial.geometry.right_foot_x_mm
        ml_offset = float(lateral * (np.mean(xw) - foot_x))
        if xw.size >= 2 and xw.size / fs >= MIN_DRIFT_WINDOW_S:
            drift = float(lateral * np.polyfit(t[idx] - t[idx[0]], xw, 1)[0])

    # -- touchdowns and support ----------------------------------------------------------------
    touchdowns = [{"t_s": td.t_s, "duration_s": td.duration_s, "where": td.where} for td in outcome.touchdowns]
    n_peak = max(1, int(round(PEAK_WINDOW_S * fs)))
    test = _window(t, onset, outcome.end_s + 0.5 / fs)
    allowed = np.ones(test.size, dtype=bool)
    for td in outcome.touchdowns:
        if td.where == "floor":  # the foot's own load leaves the plate: no support can be told there
            td_end = td.end_s if td.end_s is not None else math.inf
            allowed &= ~((t[test] >= td.t_s - FLOOR_MARGIN_S) & (t[test] < td_end + FLOOR_MARGIN_S))
    finding = detect_support(t_s=t[test], fz_n=fz[test], body_weight_n=body_weight_n, fs_hz=fs, mask=allowed)
    pooled: list[np.ndarray] = []
    episodes = []
    peak = 0.0
    for run in finding.runs:
        w = 100.0 * (body_weight_n - fz[_window(t, run.start_s, run.end_s)]) / body_weight_n
        w = w[np.isfinite(w)]
        if w.size == 0:
            continue
        pooled.append(w)
        if w.size >= n_peak:
            moving = np.convolve(w, np.full(n_peak, 1.0 / n_peak), mode="valid")
            peak = max(peak, float(moving.max()))
        else:
            peak = max(peak, float(w.mean()))
        episodes.append({"t_s": run.start_s, "duration_s": run.duration_s, "mean_pct_bw": float(w.mean())})
    support = {
        "mean_pct_bw": float(np.concatenate(pooled).mean()) if pooled else 0.0,
        "peak_pct_bw": peak,
        "time_s": float(sum(run.duration_s for run in finding.runs)),
        "detection_limit_pct_bw": finding.detection_limit_pct_bw,
        "episodes": episodes,
    }

    # -- notes ---------------------------------------------------------------------------------------
    if outcome.end_reason == SingleLegRunner.REASON_DATA_ENDED:
        notes.append(f"the recording ends {outcome.end_s - onset:.2f} s into the {hold_s:g} s hold")
    elif outcome.end_reason == SingleLegRunner.REASON_STEPPED_OFF:
        notes.append(f"the patient stepped off the plate {outcome.end_s - onset:.2f} s into the hold")
    if outcome.wrong_side_s:
        notes.append("a lift on the wrong side was refused at t = "
                     + ", ".join(f"{w:.2f} s" for w in outcome.wrong_side_s))
    if outcome.skipped_frames:
        notes.append(f"{outcome.skipped_frames} frame(s) out of time order were skipped by the detection")

    out: dict[str, Any] = {
        "sample_rate_hz": fs,
        "duration_s": trial.duration_s,
        "n_samples": trial.n_samples,
        "body_weight_n": body_weight_n,
        "onset_s": onset,
        "hold_time_s": hold_time,
        "completed": outcome.completed,
        "touchdowns": touchdowns,
        "support": support,
        "ml_offset_mm": ml_offset,
        "ml_offset_drift_mm_s": drift,
        "cop": cop,
        "cop_window": {"start_s": onset, "duration_s": idx.size / fs, "n_samples": int(idx.size)},
        "quality": quality_concerns(outcome=outcome, finding=finding, t_s=t[test], fz_n=fz[test], allowed=allowed,
                                    body_weight_n=body_weight_n, fs_hz=fs),
        "hold_s": hold_s,
        "end_on_failure": outcome.config.end_on_failure,
        "end_reason": outcome.end_reason,
        "wrong_side_lifts_s": list(outcome.wrong_side_s),
        "lowpass_hz": lowpass_hz,
        "warnings": notes,
    }
    age = _age_from_metadata(rec)
    if age is not None:
        out["norm"] = norm_reference(age, hold_s=hold_s)
    out["pelvis"] = _pelvis(rec, outcome, t_s=t, fs_hz=fs, ml_offset_mm=ml_offset)
    return out


def _pelvis(rec: Recording, outcome: SingleLegOutcome, *, t_s: np.ndarray, fs_hz: float,
            ml_offset_mm: float | None) -> dict[str, Any] | None:
    """The ``pelvis`` object (:func:`station.protocols.pelvis.pelvis_scores`); None without the sensor's column."""
    if PELVIS_COLUMN not in rec.extra:
        return None
    try:
        values = obliquity_values(rec.extra[PELVIS_COLUMN])
    except ValueError as exc:
        raise AnalysisError(f"{rec.name}: {exc}") from None
    values = bridge_short_gaps(t_s=rec.t_s, values=values)
    t_u, o_u = resample_with_gaps(t_s=rec.t_s, values=values, fs_hz=fs_hz)
    if t_u.shape != t_s.shape:  # the same grid as the forces by construction
        raise AssertionError("the pelvis column's grid differs from the forces'")
    assert outcome.baseline is not None and outcome.onset_s is not None and outcome.hold_time_s is not None
    return pelvis_scores(t_s=t_s, obliquity_deg=o_u, fs_hz=fs_hz, stance_side=outcome.stance_side,
                         baseline_start_s=outcome.baseline.start_s, baseline_end_s=outcome.baseline.end_s,
                         hold_start_s=outcome.onset_s, hold_end_s=outcome.onset_s + outcome.hold_time_s,
                         ml_offset_mm=ml_offset_mm)


#: Concerns of a trial's quality verdict (the ``quality`` field), in the order they are checked.
QUALITY_CONCERNS = ("unsteady_baseline", "onset_uncertain", "high_fluctuation", "support_near_limit",
                    "load_drift", "data_ended_early", "low_sample_rate")


def quality_concerns(*, outcome: SingleLegOutcome, finding: Any, t_s: np.ndarray, fz_n: np.ndarray,
                     allowed: np.ndarray, body_weight_n: float, fs_hz: float) -> list[dict[str, str]]:
    """The trial's quality verdict: named concerns, each with a plain-language message (empty when none).

    ``unsteady_baseline``: the two-foot baseline's Fz varied by more than 1 %
    (its standard deviation), so the body weight every % BW refers to is less
    certain. ``onset_uncertain``: the weight transfer did not fit a smooth
    transfer well (RMS residual over 12 mm) or took over 2.5 s. ``high_fluctuation``:
    the patient's own force fluctuation puts the support detection limit above
    2.5 % BW. ``support_near_limit``: a support episode's mean is less than 1.5
    times the limit for its length. ``load_drift``: outside support and
    touchdowns, the load at the end of the test differs from its start by more
    than 1 % BW (creep or drift of the load cells, or a support too steady to
    tell). ``data_ended_early``, ``low_sample_rate`` (below 50 Hz, ISPGR).
    """
    out: list[dict[str, str]] = []
    base = outcome.baseline
    if base is not None and base.fz_cv_pct > 1.0:
        out.append({"name": "unsteady_baseline",
                    "message": f"The two-foot baseline was unsteady (Fz varied by {base.fz_cv_pct:.1f} %): the body "
                               "weight, and every % of body weight, is less certain."})
    fit = outcome.transfer
    if fit is None or fit.rms_residual_mm > 12.0 or fit.duration_s > 2.5:
        out.append({"name": "onset_uncertain",
                    "message": "The weight transfer onto the stance leg was irregular: the onset, and so the hold "
                               "time, may be off by a few tenths of a second."})
    limit = finding.detection_limit_pct_bw
    if limit is not None and limit > 2.5:
        out.append({"name": "high_fluctuation",
                    "message": f"The patient's own force fluctuation was large: hand support lighter than "
                               f"{limit:.1f} % of body weight cannot be seen in this trial."})
    weak = [r for r in finding.runs if r.mean_pct_bw < 1.5 * finding.limit_for(r.duration_s)]
    if weak:
        out.append({"name": "support_near_limit",
                    "message": f"{len(weak)} hand-support episode(s) were close to the detection limit: light "
                               "support, or the patient's own unsteadiness; check the video or repeat."})
    u = 100.0 * (body_weight_n - fz_n) / body_weight_n
    keep = allowed.copy()
    for r in finding.runs:
        keep &= ~((t_s >= r.start_s - 0.5) & (t_s < r.end_s + 0.5))
    n3 = int(3.0 * fs_hz)
    idx = np.flatnonzero(keep & np.isfinite(u))
    if idx.size >= 2 * n3 and t_s[idx[-1]] - t_s[idx[0]] >= 10.0:
        change = float(np.median(u[idx[-n3:]]) - np.median(u[idx[:n3]]))
        if abs(change) > 1.0:
            out.append({"name": "load_drift",
                        "message": f"The load changed by {abs(change):.1f} % of body weight between the start and "
                                   "the end of the test with no touchdown or support pattern: check the plate's "
                                   "zero (load-cell creep or drift)."})
    if outcome.end_reason == SingleLegRunner.REASON_DATA_ENDED:
        out.append({"name": "data_ended_early",
                    "message": "The recording ends before the end of the hold: the hold time is a lower bound."})
    if fs_hz < 50.0:
        out.append({"name": "low_sample_rate",
                    "message": f"Sampled at {fs_hz:g} Hz, below the 50 Hz that posturography asks for."})
    return out


def single_leg_result(rec: Recording, outcome: SingleLegOutcome, *, lowpass_hz: float | None) -> dict[str, Any]:
    """The whole ``analyze`` object (``protocol``, ``stance_side``, then :func:`score_single_leg`), JSON-ready."""
    return json_ready({"protocol": "single-leg", "stance_side": outcome.stance_side,
                       **score_single_leg(rec, outcome, lowpass_hz=lowpass_hz)})


def score_single_leg_recording(rec: Recording, *, stance_side: str | None, lowpass_hz: float | None) -> dict[str, Any]:
    """The ``analyze --protocol single-leg`` scorer: the runner over the recording's frames, then the scoring.

    The runner is the live one, with the settings written in the recording
    (``single_leg.*`` metadata; the defaults when absent), fed the recorded
    samples one by one as they are (no resampling, no filtering): the frames
    the live test saw.

    Parameters
    ----------
    rec : Recording
        The recording.
    stance_side : {"left", "right"} or None
        The stance leg; None takes the recording's ``stance_side`` metadata
        (and reports it in the output).
    lowpass_hz : float or None
        As for :func:`score_single_leg`.

    Raises
    ------
    AnalysisError
        No stance side anywhere, bad settings in the metadata, or the runner's refusals.
    """
    recorded_side = rec.metadata.get("stance_side")
    side = stance_side if stance_side is not None else recorded_side
    if side not in SIDES:
        raise AnalysisError(f"{rec.name}: the single-leg test needs the stance leg: give --stance-side left or right "
                            + ("(the recording does not say)" if recorded_side is None
                               else f"(the recording says {recorded_side!r})"))
    try:
        config = SingleLegConfig.from_metadata(rec.metadata)
    except ValueError as exc:
        raise AnalysisError(f"{rec.name}: {exc}") from None
    runner = SingleLegRunner(stance_side=side, geometry=rec.geometry, config=config)
    for frame in frames_from_recording(rec):
        runner.update(frame)
        if runner.finished:
            break
    runner.finish()
    out = score_single_leg(rec, runner.outcome(), lowpass_hz=lowpass_hz)
    if stance_side is not None and recorded_side in SIDES and recorded_side != stance_side:
        out["warnings"].append(f"the recording says stance_side {recorded_side}; scored as {stance_side} as asked")
    if stance_side is None:
        out = {"stance_side": side, **out}
    return out


def quiet_stance_result(rec: Recording, outcome: QuietStanceOutcome, *, lowpass_hz: float | None) -> dict[str, Any]:
    """A quiet-stance trial's result: the quiet-stance metrics of its recorded window, and its conditions.

    ``rec`` is the recorded window (what :class:`~station.protocols.trial.TrialCapture`
    keeps); the fields are those of ``analyze --protocol quiet-stance`` on it,
    plus ``conditions`` (``eyes``, ``surface``).
    """
    fields = score_quiet_stance(rec, stance_side=None, lowpass_hz=lowpass_hz)
    return json_ready({"protocol": "quiet-stance", "stance_side": None, **fields, "conditions": outcome.conditions})


# -- left and right ------------------------------------------------------------------------------------


def _pair(left: float | None, right: float | None, *, higher_is_better: bool, unit: str,
          flag_pct: float) -> dict[str, Any]:
    out: dict[str, Any] = {f"left_{unit}": left, f"right_{unit}": right, "worse_side": None,
                           "symmetry_index": None, "difference_pct": None, "flagged": False}
    if left is None or right is None or not (math.isfinite(left) and math.isfinite(right)):
        return out
    if left == right:
        worse_side, better, worse = None, left, right
    elif (left < right) == higher_is_better:
        worse_side, better, worse = "left", right, left
    else:
        worse_side, better, worse = "right", left, right
    out["worse_side"] = worse_side
    if better > 0:
        out["symmetry_index"] = worse / better
        out["difference_pct"] = 100.0 * abs(better - worse) / better
        out["flagged"] = out["difference_pct"] >= flag_pct
    elif worse == better:
        out["symmetry_index"], out["difference_pct"] = 1.0, 0.0
    return out


def compare_sides(left: Mapping[str, Any], right: Mapping[str, Any], *,
                  flag_pct: float = ASYMMETRY_FLAG_PCT) -> dict[str, Any]:
    """Left against right: symmetry index and percentage difference of hold time and sway velocity.

    Parameters
    ----------
    left, right : mapping
        Single-leg results (the ``analyze`` contract) standing on the left and on the right leg.
    flag_pct : float
        A difference of this many % of the better side or more is flagged (16 %).

    Returns
    -------
    dict
        ``hold_time`` and ``sway_velocity``, each with the two values
        (``left_s``/``right_s``; ``left_mm_s``/``right_mm_s``, the COP mean
        velocity over the hold), ``worse_side`` (shorter hold; faster sway;
        None when equal), ``symmetry_index`` = worse side / better side (at
        most 1 for the hold time, at least 1 for the sway velocity; None when
        the better side is 0), ``difference_pct`` = ``100 |worse - better| /
        better``, ``flagged``; then ``flag_pct`` and ``flagged`` (either).
    """
    def velocity(result: Mapping[str, Any]) -> float | None:
        return (result.get("cop") or {}).get("mean_velocity_mm_s")

    hold = _pair(left.get("hold_time_s"), right.get("hold_time_s"), higher_is_better=True, unit="s",
                 flag_pct=flag_pct)
    sway = _pair(velocity(left), velocity(right), higher_is_better=False, unit="mm_s", flag_pct=flag_pct)
    return {"hold_time": hold, "sway_velocity": sway, "flag_pct": flag_pct,
            "flagged": bool(hold["flagged"] or sway["flagged"])}


def _best(results: Sequence[Mapping[str, Any]]) -> int:
    """Index of the best trial: the longest hold, then the slowest sway (Springer et al.: best of 3)."""
    def key(i: int) -> tuple[float, float]:
        r = results[i]
        v = (r.get("cop") or {}).get("mean_velocity_mm_s")
        return (float(r.get("hold_time_s") or 0.0), -(v if v is not None else math.inf))

    return max(range(len(results)), key=key)


def session_summary(results: Sequence[Mapping[str, Any]], *, age_years: float | None = None,
                    flag_pct: float = ASYMMETRY_FLAG_PCT) -> dict[str, Any]:
    """Left and right in one session: the best trial of each side, their comparison and the norm.

    Parameters
    ----------
    results : sequence of mapping
        The session's scored single-leg results (aborted trials are not scored, so not here).
    age_years : float or None
        The patient's age, for the age-matched norm (Springer et al. 2007).
    flag_pct : float
        As for :func:`compare_sides`.

    Returns
    -------
    dict
        ``trials`` (count per side), ``best`` (per side: ``index`` into
        ``results``, ``hold_time_s``, ``completed``, ``touchdowns``,
        ``support_time_s``, ``mean_velocity_mm_s``, ``ml_offset_mm``,
        ``pelvis_sign``, ``pelvis_drop_max_deg``; None without a trial),
        ``comparison`` (:func:`compare_sides` of the best trials, None unless both sides have one) and ``norm``
        (:func:`station.scoring.norms.norm_reference`, None without an age).
    """
    by_side: dict[str, list[int]] = {s: [] for s in SIDES}
    for i, r in enumerate(results):
        if r.get("stance_side") in by_side:
            by_side[r["stance_side"]].append(i)
    best: dict[str, Any] = {}
    for side, indices in by_side.items():
        if not indices:
            best[side] = None
            continue
        j = indices[_best([results[i] for i in indices])]
        r = results[j]
        best[side] = {
            "index": j,
            "hold_time_s": r.get("hold_time_s"),
            "completed": r.get("completed"),
            "touchdowns": len(r.get("touchdowns") or []),
            "support_time_s": (r.get("support") or {}).get("time_s"),
            "mean_velocity_mm_s": (r.get("cop") or {}).get("mean_velocity_mm_s"),
            "ml_offset_mm": r.get("ml_offset_mm"),
            # the pelvis sensor's measured Trendelenburg sign (None: recorded without it)
            "pelvis_sign": (r.get("pelvis") or {}).get("sign"),
            "pelvis_drop_max_deg": (r.get("pelvis") or {}).get("drop_max_deg"),
        }
    comparison = None
    if best["left"] is not None and best["right"] is not None:
        comparison = compare_sides(results[best["left"]["index"]], results[best["right"]["index"]], flag_pct=flag_pct)
    return json_ready({
        "trials": {s: len(v) for s, v in by_side.items()},
        "best": best,
        "comparison": comparison,
        "norm": norm_reference(age_years),
    })

