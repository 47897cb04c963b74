"""The measured Trendelenburg sign: the ``pelvis`` scores of the single-leg test (DESIGN.md sections 4 and 5).

Synthetic trials with exactly known forces (tests.station.single_leg_trials)
get a ``pelvis_obliquity_deg`` column with a known lifted-side drop (rise,
level, steady drop, fatiguing drop, each standing on either leg), a belt
sitting askew (a constant offset), sensor noise, sway, and gaps. The scores
must find the drop within 0.3 degrees and the right sign, live and by
``analyze`` alike, and a recording without the column must score exactly as
before with ``pelvis: null``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math

import numpy as np
import pytest

from station.core.recording import (
    PELVIS_COLUMN,
    Recording,
    RecordingError,
    parse_recording,
    write_recording,
)
from station.protocols.pelvis import (
    SIGN_THRESHOLD_DEG,
    bridge_short_gaps,
    lifted_side_drop,
    max_moving_mean,
    obliquity_values,
    pelvis_scores,
    resample_with_gaps,
)
from station.protocols.single_leg import SingleLegRunner
from station.protocols.trial import TrialCapture, frames_from_recording
from station.scoring.analyze import analyze_file, analyze_recording, score_capture
from station.scoring.scores import single_leg_result
from tests.station.single_leg_trials import GEOMETRY, synthetic_trial

HOLD_S = 30.0
TOLERANCE_DEG = 0.3
SWAY_DEG = 0.3  # the pelvis's own frontal-plane sway in single-leg stance (amplitude, 0.35 Hz)


def drop_profile(kind: str, u: np.ndarray) -> np.ndarray:
    """The true lifted-side drop (degrees, positive = lower) ``u`` s into the hold."""
    if kind == "rise":
        return np.full_like(u, -2.5)
    if kind == "level":
        return np.zeros_like(u)
    if kind == "steady_drop":
        return np.full_like(u, 4.0)
    if kind == "fatiguing_drop":  # level for 5 s, then growing by 0.25 deg/s
        return np.clip(u - 5.0, 0.0, None) * 0.25
    if kind == "small_drop":
        return np.full_like(u, 0.8)
    raise ValueError(kind)


def with_pelvis(rec: Recording, onset_s: float, *, stance_side: str, kind: str, offset_deg: float = 3.0,
                noise_deg: float = 0.15, gaps: bool = True, seed: int = 1) -> tuple[Recording, np.ndarray]:
    """``rec`` with a pelvis column: the belt's offset, sway and noise, the drop from the onset on.

    Returns the recording and the true drop at each sample (positive = the lifted side lower): the pelvis's
    own motion (drop and sway) against its true two-foot level, without the sensor's noise and gaps.
    """
    rng = np.random.default_rng(seed)
    t = rec.t_s
    u = t - onset_s
    ramp = np.clip((u + 0.3) / 0.3, 0.0, 1.0)  # the pelvis settles with the weight transfer
    drop = drop_profile(kind, np.clip(u, 0.0, None)) * ramp
    lifted_right = stance_side == "left"
    # right side lower (lifted right dropping) = obliquity decreases; left side lower = obliquity increases
    motion = (-drop if lifted_right else drop) + SWAY_DEG * np.sin(2 * np.pi * 0.35 * t) * (u >= 0)
    true_obliquity = offset_deg + motion  # the pelvis sways a little in single-leg stance, not before
    truth = lifted_side_drop(obliquity_deg=true_obliquity, baseline_deg=offset_deg, stance_side=stance_side)
    obliquity = true_obliquity + noise_deg * rng.standard_normal(t.size)
    if gaps:
        obliquity[(t > 2.0) & (t < 2.2)] = np.nan  # a dropout in the baseline
        obliquity[(u > 12.0) & (u < 12.4)] = np.nan  # and one in the hold
        obliquity[rng.random(t.size) < 0.01] = np.nan  # scattered missing samples
    extra = dict(rec.extra)
    extra[PELVIS_COLUMN] = obliquity
    out = Recording(t_s=t, forces_n=rec.forces_n, sample_rate_hz=rec.sample_rate_hz, geometry=rec.geometry,
                    metadata=dict(rec.metadata), extra=extra, name=rec.name)
    return out, truth


def true_scores(t: np.ndarray, drop: np.ndarray, onset_s: float, fs_hz: float) -> tuple[float, float]:
    """Mean and largest 0.5 s mean of the true drop over the hold window (no sway, no noise)."""
    hold = (t >= onset_s) & (t < onset_s + HOLD_S)
    d = drop[hold]
    n = int(round(0.5 * fs_hz))
    return float(d.mean()), float(np.convolve(d, np.full(n, 1.0 / n), mode="valid").max())


def to_file_text(rec: Recording) -> str:
    buf = io.StringIO()
    write_recording(buf, rec)
    return buf.getvalue()


# -- the sign convention ------------------------------------------------------------------------------------------


def test_the_drop_is_positive_when_the_lifted_side_is_lower():
    # standing on the left leg the right side is lifted: right side lower = obliquity below baseline
    assert lifted_side_drop(obliquity_deg=np.array([-2.0]), baseline_deg=1.0, stance_side="left")[0] == 3.0
    assert lifted_side_drop(obliquity_deg=np.array([4.0]), baseline_deg=1.0, stance_side="left")[0] == -3.0
    # standing on the right leg the left side is lifted: left side lower = right side higher = obliquity above
    assert lifted_side_drop(obliquity_deg=np.array([4.0]), baseline_deg=1.0, stance_side="right")[0] == 3.0
    assert lifted_side_drop(obliquity_deg=np.array([-2.0]), baseline_deg=1.0, stance_side="right")[0] == -3.0
    with pytest.raises(ValueError):
        lifted_side_drop(obliquity_deg=np.array([0.0]), baseline_deg=0.0, stance_side="both")


def test_the_functions_take_keywords_only():
    with pytest.raises(TypeError):
        lifted_side_drop(np.array([0.0]), 0.0, "left")  # type: ignore[misc]
    with pytest.raises(TypeError):
        resample_with_gaps(np.array([0.0, 1.0]), np.array([0.0, 1.0]), 10.0)  # type: ignore[misc]


def test_resampling_keeps_gaps_and_matches_the_forces_grid():
    t = np.array([0.0, 0.011, 0.019, 0.03, 0.041, 0.05])
    v = np.array([0.0, 1.1, 1.9, np.nan, 4.1, 5.0])
    tu, vu = resample_with_gaps(t_s=t, values=v, fs_hz=100.0)
    assert np.allclose(tu, [0.0, 0.01, 0.02, 0.03, 0.04, 0.05])
    assert np.allclose(vu[:2], [0.0, 1.0])
    # every grid point next to the missing sample (0.02, 0.03, 0.04) is missing: never bridged
    assert np.isnan(vu[2:5]).all()
    assert vu[5] == 5.0


def test_short_gaps_are_bridged_and_long_ones_kept():
    t = np.arange(0.0, 2.0, 0.01)
    v = np.sin(t)
    sparse = v.copy()
    sparse[1::2] = np.nan  # a 50 Hz sensor beside a 100 Hz plate
    sparse[100:160] = np.nan  # unplugged for 0.6 s
    filled = bridge_short_gaps(t_s=t, values=sparse)
    assert np.allclose(filled[:99], v[:99], atol=1e-3)
    assert np.isnan(filled[100:160]).all() and np.isfinite(filled[161:-1]).all()
    assert np.isnan(bridge_short_gaps(t_s=t, values=np.full_like(t, np.nan))).all()


def test_a_sensor_slower_than_the_plate_scores_like_a_full_column():
    """Every other cell empty, on jittered time stamps: the same scores as the full column."""
    fs = 80.0
    rec, onset = synthetic_trial(stance_side="right", fs_hz=fs)
    full, _ = with_pelvis(rec, onset, stance_side="right", kind="fatiguing_drop", gaps=False)
    rng = np.random.default_rng(9)
    jitter = rng.uniform(-0.3, 0.3, rec.n_samples) / fs
    jitter[0] = 0.0
    column = full.extra[PELVIS_COLUMN].copy()
    sparse_column = column.copy()
    sparse_column[1::2] = np.nan
    scores = []
    for col in (column, sparse_column):
        r = Recording(t_s=rec.t_s + jitter, forces_n=rec.forces_n, sample_rate_hz=fs, geometry=rec.geometry,
                      extra={PELVIS_COLUMN: col})
        scores.append(analyze_recording(r, protocol="single-leg", stance_side="right")["pelvis"])
    for key in ("drop_mean_deg", "drop_max_deg", "drop_slope_deg_s"):
        assert scores[1][key] == pytest.approx(scores[0][key], abs=0.05), key
    assert scores[1]["valid_pct"] == 100.0 and scores[1]["sign"] == "positive"


def test_the_largest_half_second_mean_skips_missing_samples():
    fs = 100.0
    v = np.zeros(300)
    v[100:150] = 5.0
    v[120:125] = np.nan
    peak, start = max_moving_mean(values=v, fs_hz=fs)
    assert peak == pytest.approx(5.0) and start == 100
    assert max_moving_mean(values=np.full(10, np.nan), fs_hz=fs) == (None, None)
    assert max_moving_mean(values=np.array([1.0, 3.0]), fs_hz=fs)[0] == pytest.approx(2.0)  # shorter than 0.5 s


def test_column_values_from_numbers_or_text():
    assert np.array_equal(obliquity_values(["1.5", "", " -2 ", "nan"]), [1.5, np.nan, -2.0, np.nan], equal_nan=True)
    assert np.array_equal(obliquity_values(np.array([1.0, np.inf])), [1.0, np.nan], equal_nan=True)
    with pytest.raises(ValueError, match="not a number"):
        obliquity_values(["1.0", "abc"])


# -- known synthetic trials ---------------------------------------------------------------------------------------

KINDS = ("rise", "level", "steady_drop", "fatiguing_drop")
EXPECTED_SIGN = {"rise": "negative", "level": "negative", "steady_drop": "positive", "fatiguing_drop": "positive",
                 "small_drop": "negative"}


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("kind", KINDS)
def test_the_drop_is_found_within_0_3_degrees_with_the_right_sign(kind, side):
    fs = 80.0
    rec, onset = synthetic_trial(stance_side=side, fs_hz=fs)
    rec, drop = with_pelvis(rec, onset, stance_side=side, kind=kind, seed=hash((kind, side)) % 1000)
    result = analyze_recording(rec, protocol="single-leg", stance_side=side)
    pelvis = result["pelvis"]
    assert pelvis is not None
    mean_true, max_true = true_scores(rec.t_s, drop, onset, fs)
    assert abs(pelvis["drop_mean_deg"] - mean_true) <= TOLERANCE_DEG, (pelvis, mean_true)
    assert abs(pelvis["drop_max_deg"] - max_true) <= TOLERANCE_DEG, (pelvis, max_true)
    assert pelvis["sign"] == EXPECTED_SIGN[kind]
    assert pelvis["baseline_deg"] == pytest.approx(3.0, abs=0.2)  # the belt's offset is the baseline level
    assert 95.0 < pelvis["valid_pct"] < 100.0
    if kind == "fatiguing_drop":
        assert pelvis["drop_slope_deg_s"] > 0.15  # a growing drop (true 0.25 deg/s after 5 s, 0.22 overall)
        assert pelvis["drop_max_deg"] > pelvis["drop_mean_deg"] + 2.0
        # the sign's time: the 0.5 s average passes 2 deg at 5 + 2 / 0.25 = 13 s (+ half a window)
        assert pelvis["drop_onset_s"] == pytest.approx(13.25, abs=1.0)
    else:
        assert abs(pelvis["drop_slope_deg_s"]) < 0.02
    if kind == "steady_drop":
        assert pelvis["drop_onset_s"] < 1.0
    if EXPECTED_SIGN[kind] == "negative":
        assert pelvis["drop_onset_s"] is None


@pytest.mark.parametrize("side", ["left", "right"])
def test_the_drop_is_exact_on_a_clean_trace(side):
    """Without noise or gaps the scores are the truth (to the onset's placement): both sides."""
    fs = 100.0
    rec, onset = synthetic_trial(stance_side=side, fs_hz=fs)
    rec, drop = with_pelvis(rec, onset, stance_side=side, kind="steady_drop", noise_deg=0.0, gaps=False)
    pelvis = analyze_recording(rec, protocol="single-leg", stance_side=side)["pelvis"]
    mean_true, max_true = true_scores(rec.t_s, drop, onset, fs)
    assert pelvis["drop_mean_deg"] == pytest.approx(mean_true, abs=0.02)
    assert pelvis["drop_max_deg"] == pytest.approx(max_true, abs=0.02)
    assert pelvis["baseline_deg"] == pytest.approx(3.0, abs=1e-9)
    assert pelvis["sign"] == "positive" and pelvis["valid_pct"] == 100.0


def test_the_threshold_is_two_degrees_of_sustained_drop():
    assert SIGN_THRESHOLD_DEG == 2.0
    fs = 100.0
    t = np.arange(0, 40, 1 / fs)
    base = {"t_s": t, "fs_hz": fs, "stance_side": "left", "baseline_start_s": 0.0, "baseline_end_s": 3.0,
            "hold_start_s": 5.0, "hold_end_s": 35.0, "ml_offset_mm": 3.0}
    # 1.9 deg held: negative; 2.1 deg held: positive
    assert pelvis_scores(obliquity_deg=np.where(t >= 5, -1.9, 0.0), **base)["sign"] == "negative"
    assert pelvis_scores(obliquity_deg=np.where(t >= 5, -2.1, 0.0), **base)["sign"] == "positive"
    # a 0.2 s spike of 6 deg averages 2.4 deg over 0.5 s: positive; a 0.1 s spike (1.2 deg): negative
    spike = np.where((t >= 20) & (t < 20.2), -6.0, 0.0)
    assert pelvis_scores(obliquity_deg=spike, **base)["sign"] == "positive"
    spike = np.where((t >= 20) & (t < 20.1), -6.0, 0.0)
    assert pelvis_scores(obliquity_deg=spike, **base)["sign"] == "negative"


@pytest.mark.parametrize("side", ["left", "right"])
def test_a_level_pelvis_with_a_lean_over_the_stance_foot_is_compensated(side):
    fs = 80.0
    leaning, onset = synthetic_trial(stance_side=side, fs_hz=fs, lateral_mm=22.0)
    leaning, _ = with_pelvis(leaning, onset, stance_side=side, kind="small_drop")
    result = analyze_recording(leaning, protocol="single-leg", stance_side=side)
    assert result["ml_offset_mm"] > 15.0
    assert result["pelvis"]["sign"] == "negative" and result["pelvis"]["compensated"] is True
    upright, onset = synthetic_trial(stance_side=side, fs_hz=fs, lateral_mm=3.0)
    upright, _ = with_pelvis(upright, onset, stance_side=side, kind="small_drop")
    assert analyze_recording(upright, protocol="single-leg", stance_side=side)["pelvis"]["compensated"] is False
    # a drop is never called compensated, whatever the lean
    dropping, onset = synthetic_trial(stance_side=side, fs_hz=fs, lateral_mm=22.0)
    dropping, _ = with_pelvis(dropping, onset, stance_side=side, kind="steady_drop")
    pelvis = analyze_recording(dropping, protocol="single-leg", stance_side=side)["pelvis"]
    assert pelvis["sign"] == "positive" and pelvis["compensated"] is False


def test_irregular_time_stamps_are_resampled_like_the_forces():
    fs = 80.0
    rec, onset = synthetic_trial(stance_side="left", fs_hz=fs)
    rec, drop = with_pelvis(rec, onset, stance_side="left", kind="steady_drop")
    rng = np.random.default_rng(3)
    jitter = rng.uniform(-0.3, 0.3, rec.n_samples) / fs
    jitter[0] = 0.0
    # the same trial sampled at jittered times: forces and obliquity both taken at those times
    shifted = Recording(t_s=rec.t_s + jitter, forces_n=rec.forces_n, sample_rate_hz=fs, geometry=rec.geometry,
                        extra=rec.extra)
    pelvis = analyze_recording(shifted, protocol="single-leg", stance_side="left")["pelvis"]
    mean_true, _ = true_scores(rec.t_s, drop, onset, fs)
    assert abs(pelvis["drop_mean_deg"] - mean_true) <= TOLERANCE_DEG and pelvis["sign"] == "positive"


# -- null when it cannot be measured -------------------------------------------------------------------------------


def test_no_column_gives_null_and_changes_nothing_else():
    rec, onset = synthetic_trial(stance_side="right")
    plain = analyze_recording(rec, protocol="single-leg", stance_side="right")
    assert "pelvis" in plain and plain["pelvis"] is None
    assert list(plain)[-1] == "pelvis"  # added last: without it, the object is the one before the sensor
    measured, _ = with_pelvis(rec, onset, stance_side="right", kind="steady_drop")
    with_sensor = analyze_recording(measured, protocol="single-leg", stance_side="right")
    assert with_sensor["pelvis"] is not None
    # the sensor adds its object and changes no other byte of the result
    plain.pop("pelvis")
    with_sensor.pop("pelvis")
    assert json.dumps(plain, allow_nan=False) == json.dumps(with_sensor, allow_nan=False)


def test_a_column_without_values_in_the_windows_gives_null():
    rec, onset = synthetic_trial(stance_side="left")
    empty, _ = with_pelvis(rec, onset, stance_side="left", kind="level")
    empty.extra[PELVIS_COLUMN][:] = np.nan
    assert analyze_recording(empty, protocol="single-leg", stance_side="left")["pelvis"] is None
    no_baseline, _ = with_pelvis(rec, onset, stance_side="left", kind="level")
    no_baseline.extra[PELVIS_COLUMN][rec.t_s < onset - 0.5] = np.nan  # the sensor came on after the baseline
    assert analyze_recording(no_baseline, protocol="single-leg", stance_side="left")["pelvis"] is None


# -- the recording file -------------------------------------------------------------------------------------------


def test_empty_cells_in_the_pelvis_column_are_read_as_missing():
    rec, onset = synthetic_trial(stance_side="left")
    rec, _ = with_pelvis(rec, onset, stance_side="left", kind="steady_drop")
    text = to_file_text(rec)
    header = next(line for line in text.splitlines() if line.startswith("t_s"))
    assert header == "t_s,fl_n,fr_n,bl_n,br_n," + PELVIS_COLUMN
    rows = [line for line in text.splitlines() if line[:1].isdigit()]
    assert any(line.endswith(",") for line in rows)  # a missing value is written as an empty cell
    back = parse_recording(text, name="p.csv")
    assert back.extra[PELVIS_COLUMN].dtype == np.float64
    assert np.array_equal(back.extra[PELVIS_COLUMN], rec.extra[PELVIS_COLUMN], equal_nan=True)


def test_a_word_in_the_pelvis_column_names_the_line():
    text = ("# sample_rate_hz: 80\n# plate_ml_mm: 400\n# plate_ap_mm: 300\n"
            f"t_s,fl_n,fr_n,bl_n,br_n,{PELVIS_COLUMN}\n0,1,1,1,1,0.5\n0.0125,1,1,1,1,\n0.025,1,1,1,1,high\n")
    with pytest.raises(RecordingError, match=r"^p\.csv:7: column pelvis_obliquity_deg: 'high' is not a number"):
        parse_recording(text, name="p.csv")


# -- live = analyze -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["left", "right"])
def test_live_scoring_and_analyze_of_the_file_are_identical(tmp_path, side):
    """The live path's recording (TrialCapture) with the sensor's column, scored live and from its file."""
    rec, onset = synthetic_trial(stance_side=side)
    measured, _ = with_pelvis(rec, onset, stance_side=side, kind="fatiguing_drop")
    runner = SingleLegRunner(stance_side=side, geometry=GEOMETRY)
    capture = TrialCapture(runner, geometry=GEOMETRY, sample_rate_hz=rec.sample_rate_hz)
    for frame in frames_from_recording(rec):
        capture.push(frame)
        if capture.finished:
            break
    runner.finish()
    live_plain = score_capture(capture)
    kept = capture.recording()
    # the column rides with the kept rows (the acquisition time-stamps it on the plate's clock)
    extra = dict(kept.extra)
    extra[PELVIS_COLUMN] = measured.extra[PELVIS_COLUMN][: kept.n_samples]
    live_rec = Recording(t_s=kept.t_s, forces_n=kept.forces_n, sample_rate_hz=kept.sample_rate_hz,
                         geometry=kept.geometry, metadata=kept.metadata, extra=extra, name="<live trial>")
    live = single_leg_result(live_rec, runner.outcome(), lowpass_hz=10.0)
    path = tmp_path / "trial.csv"
    write_recording(path, live_rec)
    analyzed = analyze_file(path, protocol="single-leg", stance_side=side)
    assert live["pelvis"] is not None and live["pelvis"]["sign"] == "positive"
    assert json.dumps(analyzed, allow_nan=False) == json.dumps(live, allow_nan=False)
    # without the sensor: null live and in analyze, and the rest as with it
    assert live_plain["pelvis"] is None
    plain_path = tmp_path / "plain.csv"
    write_recording(plain_path, kept)
    assert analyze_file(plain_path, protocol="single-leg", stance_side=side) == live_plain
    live.pop("pelvis")
    live_plain.pop("pelvis")
    assert live == live_plain


def test_the_result_is_json_without_nan():
    rec, onset = synthetic_trial(stance_side="left")
    rec, _ = with_pelvis(rec, onset, stance_side="left", kind="rise")
    result = analyze_recording(rec, protocol="single-leg", stance_side="left")
    text = json.dumps(result, allow_nan=False)
    assert '"pelvis": {"drop_mean_deg"' in text
    assert math.isfinite(result["pelvis"]["drop_mean_deg"])


# -- the command line (what outside checks run) ---------------------------------------------------------------------


@pytest.mark.parametrize("side,kind", [("left", "steady_drop"), ("right", "rise")])
def test_balance_station_analyze_prints_the_pelvis_object(tmp_path, side, kind):
    from tests.station.commands.test_analyze import assert_one_line_error
    from tests.station.commands.test_analyze import run as run_cli

    rec, onset = synthetic_trial(stance_side=side)
    measured, drop = with_pelvis(rec, onset, stance_side=side, kind=kind)
    path = tmp_path / "with_pelvis.csv"
    path.write_text(to_file_text(measured), encoding="utf-8")
    proc = run_cli(path, "--protocol", "single-leg", "--stance-side", side, "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    mean_true, max_true = true_scores(rec.t_s, drop, onset, rec.sample_rate_hz)
    assert abs(out["pelvis"]["drop_mean_deg"] - mean_true) <= TOLERANCE_DEG
    assert abs(out["pelvis"]["drop_max_deg"] - max_true) <= TOLERANCE_DEG
    assert out["pelvis"]["sign"] == EXPECTED_SIGN[kind]
    plain = tmp_path / "plain.csv"
    plain.write_text(to_file_text(rec), encoding="utf-8")
    proc = run_cli(plain, "--protocol", "single-leg", "--stance-side", side, "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["pelvis"] is None
    bad = tmp_path / "bad.csv"
    bad.write_text(to_file_text(measured).replace(",\n", ",tilted\n", 1), encoding="utf-8")
    assert_one_line_error(run_cli(bad, "--protocol", "single-leg", "--stance-side", side, "--json"),
                          "bad.csv", "pelvis_obliquity_deg", "not a number")


@pytest.mark.parametrize("side", ["left", "right"])
def test_the_capture_writes_the_sensor_track_on_the_plate_clock(tmp_path, side):
    """Issue 14, live: TrialCapture looks the obliquity up in the sensor's track at each frame's own time on the
    plate's clock (monotonic, before the shift to the trial's start), waits for samples still on their way, and
    writes the column; analyze of the written file gives exactly the live result."""
    from hardware.imu.source import PelvisSample, PelvisTrack

    rec, onset = synthetic_trial(stance_side=side)
    truth_rec, _ = with_pelvis(rec, onset, stance_side=side, kind="fatiguing_drop", gaps=False, noise_deg=0.0)
    clock0 = 5000.0  # the station's monotonic clock when the trial started
    # the sensor: 100 Hz on its own grid, a 1 s unplugged gap in the hold
    ts = np.arange(0.003, rec.t_s[-1], 0.01)
    vs = np.interp(ts, rec.t_s, truth_rec.extra[PELVIS_COLUMN])
    keep = ~((ts > onset + 5.0) & (ts < onset + 6.0))
    samples = [PelvisSample(t_s=clock0 + t, obliquity_deg=float(v)) for t, v in zip(ts[keep], vs[keep])]

    class Sensor:  # the track as the live station holds it, with samples arriving 40 ms late
        def __init__(self):
            self.track = PelvisTrack(keep_s=60.0)
            self.next = 0

        def arrive(self, now):
            while self.next < len(samples) and samples[self.next].t_s <= now - 0.04:
                self.track.add([samples[self.next]])
                self.next += 1

        def at(self, t_s):
            return self.track.at(t_s)

        def ready(self, t_s):
            return self.track.latest_s is not None and self.track.latest_s >= t_s

    sensor = Sensor()
    kept_values = []
    runner = SingleLegRunner(stance_side=side, geometry=GEOMETRY)
    path = tmp_path / "live.csv"
    capture = TrialCapture(runner, geometry=GEOMETRY, sample_rate_hz=rec.sample_rate_hz, target=path, pelvis=sensor,
                           on_keep=lambda frame, pelvis_deg: kept_values.append(pelvis_deg))
    for frame in frames_from_recording(rec):
        live_frame = dataclasses.replace(frame, t_s=clock0 + frame.t_s)
        sensor.arrive(live_frame.t_s)
        capture.push(live_frame)
        if capture.finished:
            break
    # the runner has finished; its last rows wait for their samples (the live trial waits for them at the end)
    assert 0 < capture.pelvis_pending <= 5
    sensor.arrive(math.inf)
    capture.drain_pelvis()
    assert capture.pelvis_pending == 0
    live = score_capture(capture)
    kept = capture.recording()
    values = kept.extra[PELVIS_COLUMN]
    assert np.array_equal(np.array(kept_values), values, equal_nan=True)  # what the database is given
    missing_t = kept.t_s[np.isnan(values)]
    in_gap = (missing_t > onset + 4.99) & (missing_t < onset + 6.01)
    assert 80 <= in_gap.sum() <= 82  # the unplugged second stays empty ...
    assert np.all(in_gap | (missing_t < 0.01))  # ... and nothing else but the first frame (before the first sample)
    ok = np.isfinite(values)
    # the track interpolates between the 100 Hz samples (a corner of the drop is cut by a few hundredths)
    assert np.max(np.abs(values[ok] - truth_rec.extra[PELVIS_COLUMN][: kept.n_samples][ok])) < 0.06
    analyzed = analyze_file(path, protocol="single-leg", stance_side=side)
    assert live["pelvis"]["sign"] == "positive"
    assert json.dumps(analyzed, allow_nan=False) == json.dumps(live, allow_nan=False)
