"""Scoring of recordings (station.scoring.analyze)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import station.scoring.analyze as analysis
from station.core.cop import DEFAULT_OCCUPANCY_N, split_load
from station.core.errors import UserError
from station.core.geometry import PlateGeometry
from station.core.recording import Recording, write_recording
from station.scoring.analyze import AnalysisError, analyze_file, analyze_recording
from station.signal.metrics import COP_KEYS, cop_metrics
from tests.paths import BDS_DIR

BDS_TRIALS = ["BDS00001", "BDS00004", "BDS00007", "BDS00010"]
SEED = 20261121
GEOMETRY = PlateGeometry(ml_mm=400.0, ap_mm=300.0, feet_ml_mm=200.0)


def recording_from_cop(
    t_s: np.ndarray, fz_n: np.ndarray | float, x_mm: np.ndarray, y_mm: np.ndarray, *, fs_hz: float,
    name: str = "synthetic.csv"
) -> Recording:
    fz = np.broadcast_to(np.asarray(fz_n, dtype=float), np.shape(t_s))
    forces = split_load(fz, x_mm, y_mm, ml_mm=GEOMETRY.ml_mm, ap_mm=GEOMETRY.ap_mm)
    return Recording(t_s=t_s, forces_n=forces, sample_rate_hz=fs_hz, geometry=GEOMETRY, name=name)


def circle_trial(duration_s: float = 30.0, *, fs_hz: float = 80.0, r_mm: float = 6.0, f_hz: float = 0.5) -> Recording:
    t = np.arange(int(round(duration_s * fs_hz))) / fs_hz
    w = 2 * np.pi * f_hz * t
    return recording_from_cop(t, 700.0, 10.0 + r_mm * np.cos(w), -20.0 + r_mm * np.sin(w), fs_hz=fs_hz)


def sway_trial(duration_s: float = 30.0, *, fs_hz: float = 80.0, seed: int = SEED,
               t_s: np.ndarray | None = None) -> Recording:
    """Smooth, seeded sway: a few slow sines with random phases (exactly known at any time)."""
    rng = np.random.default_rng(seed)
    freqs = np.array([0.05, 0.13, 0.31, 0.6, 0.9])
    amps_x, amps_y = rng.uniform(1, 4, 5), rng.uniform(2, 6, 5)
    ph_x, ph_y = rng.uniform(0, 2 * np.pi, 5), rng.uniform(0, 2 * np.pi, 5)
    t = np.arange(int(round(duration_s * fs_hz))) / fs_hz if t_s is None else t_s
    x = (amps_x * np.sin(2 * np.pi * freqs * t[:, None] + ph_x)).sum(axis=1)
    y = (amps_y * np.sin(2 * np.pi * freqs * t[:, None] + ph_y)).sum(axis=1)
    fz = 690.0 + 5 * np.sin(2 * np.pi * 0.2 * t)
    return recording_from_cop(t, fz, x, y, fs_hz=fs_hz)


# -- the published values of the four real trials ------------------------------------------------


@pytest.mark.parametrize("trial", BDS_TRIALS)
def test_bds_matches_the_published_values(trial):
    reference = json.loads((BDS_DIR / "reference.json").read_text(encoding="utf-8"))[trial]
    out = analyze_file(BDS_DIR / f"{trial}.csv", protocol="quiet-stance", lowpass_hz=None)
    assert out["sample_rate_hz"] == 100.0 and out["n_samples"] == 6000 and out["duration_s"] == 60.0
    assert out["warnings"] == [] and out["lowpass_hz"] is None
    for key in ("ellipse95_area_mm2", "mean_velocity_mm_s"):
        rel = out["cop"][key] / reference[key] - 1
        assert abs(rel) < 0.005, f"{trial} {key}: relative error {rel:+.2e}"


def test_bds_default_lowpass_smooths_a_little():
    off = analyze_file(BDS_DIR / "BDS00001.csv", protocol="quiet-stance", lowpass_hz=None)
    on = analyze_file(BDS_DIR / "BDS00001.csv", protocol="quiet-stance")  # 10 Hz
    assert on["lowpass_hz"] == 10.0
    # the data were already low-passed at 10 Hz by the authors: a few % shorter path, same ellipse
    assert 0.9 * off["cop"]["path_length_mm"] < on["cop"]["path_length_mm"] < off["cop"]["path_length_mm"]
    assert on["cop"]["ellipse95_area_mm2"] == pytest.approx(off["cop"]["ellipse95_area_mm2"], rel=0.001)
    assert on["body_weight_n"] == pytest.approx(off["body_weight_n"], rel=1e-3)


# -- contract fields and closed forms -------------------------------------------------------------


def test_output_has_every_contract_field():
    out = analyze_recording(sway_trial(), protocol="quiet-stance")
    assert list(out)[:7] == ["protocol", "stance_side", "sample_rate_hz", "duration_s", "n_samples", "body_weight_n",
                             "cop"]
    assert out["protocol"] == "quiet-stance" and out["stance_side"] is None
    assert isinstance(out["n_samples"], int) and out["n_samples"] == 2400
    assert out["duration_s"] == 30.0 and out["sample_rate_hz"] == 80.0
    assert list(out["cop"]) == list(COP_KEYS)
    assert all(isinstance(v, float) and math.isfinite(v) for v in out["cop"].values())
    assert out["warnings"] == []
    text = json.dumps(out, allow_nan=False)  # no NaN anywhere
    assert json.loads(text) == out


def test_stance_side_is_reported_as_given():
    out = analyze_recording(sway_trial(), protocol="quiet-stance", stance_side="left")
    assert out["stance_side"] == "left"


def test_circle_closed_form():
    r, fs_hz, f_hz = 6.0, 80.0, 0.5
    out = analyze_recording(circle_trial(30.0, fs_hz=fs_hz, r_mm=r, f_hz=f_hz), protocol="quiet-stance",
                            lowpass_hz=None)
    n = 2400  # 15 whole turns of 160 samples
    assert out["n_samples"] == n
    cop = out["cop"]
    assert cop["path_length_mm"] == pytest.approx((n - 1) * 2 * r * math.sin(math.pi / 160), rel=1e-9)
    assert cop["mean_velocity_mm_s"] == pytest.approx(cop["path_length_mm"] / 30.0, rel=1e-12)
    assert cop["ml_rms_mm"] == pytest.approx(r / math.sqrt(2), rel=1e-9)
    assert cop["ap_rms_mm"] == pytest.approx(r / math.sqrt(2), rel=1e-9)
    assert cop["ml_range_mm"] == pytest.approx(2 * r, rel=1e-9)
    assert out["body_weight_n"] == pytest.approx(700.0, rel=1e-12)
    lam = r * r / 2 * n / (n - 1)
    f = (n - 2) / 2 * (0.05 ** (-2 / (n - 2)) - 1)  # F(0.95; 2, n-2) in closed form
    assert cop["ellipse95_area_mm2"] == pytest.approx(math.pi * lam * f * 2 * (n - 1) * (n + 1) / (n * (n - 2)),
                                                      rel=1e-9)


def test_lowpass_removes_high_frequency_noise():
    rec = sway_trial()
    rng = np.random.default_rng(SEED)
    noisy_forces = rec.forces_n + rng.normal(0.0, 1.5, size=rec.forces_n.shape)  # 1.5 N per cell
    noisy = Recording(t_s=rec.t_s, forces_n=noisy_forces, sample_rate_hz=80.0, geometry=GEOMETRY, name="noisy.csv")
    clean = analyze_recording(rec, protocol="quiet-stance", lowpass_hz=None)["cop"]
    raw = analyze_recording(noisy, protocol="quiet-stance", lowpass_hz=None)["cop"]
    filtered = analyze_recording(noisy, protocol="quiet-stance", lowpass_hz=2.0)["cop"]
    # noise inflates the path length; a 2 Hz low-pass takes most of it out
    assert raw["path_length_mm"] > 3 * clean["path_length_mm"]
    assert filtered["path_length_mm"] == pytest.approx(clean["path_length_mm"], rel=0.25)
    assert filtered["ellipse95_area_mm2"] == pytest.approx(clean["ellipse95_area_mm2"], rel=0.02)


def test_irregular_timing_is_resampled_onto_the_nominal_rate():
    fs_hz = 80.0
    rng = np.random.default_rng(SEED)
    t = np.arange(2400) / fs_hz + rng.uniform(-0.003, 0.003, size=2400)
    t[0] = 0.0
    irregular = sway_trial(t_s=t)
    out = analyze_recording(irregular, protocol="quiet-stance", lowpass_hz=None)
    uniform_grid = np.arange(out["n_samples"]) / fs_hz
    truth = sway_trial(t_s=uniform_grid)  # the same sway, sampled on the grid
    expected = cop_metrics(*_cop(truth), fs_hz=fs_hz)
    assert out["sample_rate_hz"] == fs_hz
    assert out["n_samples"] == len(uniform_grid)
    for key in ("ellipse95_area_mm2", "ml_rms_mm", "ap_rms_mm", "ml_range_mm"):
        assert out["cop"][key] == pytest.approx(expected[key], rel=1e-3), key
    assert out["cop"]["mean_velocity_mm_s"] == pytest.approx(expected["mean_velocity_mm_s"], rel=5e-3)


def _cop(rec: Recording) -> tuple[np.ndarray, np.ndarray]:
    from station.core.cop import centre_of_pressure

    _, x, y = centre_of_pressure(rec.forces_n, ml_mm=GEOMETRY.ml_mm, ap_mm=GEOMETRY.ap_mm)
    return x, y


@pytest.mark.parametrize("fs_hz", [10.0, 1000.0])
def test_any_rate(fs_hz):
    out = analyze_recording(sway_trial(30.0, fs_hz=fs_hz), protocol="quiet-stance", lowpass_hz=4.0)
    assert out["n_samples"] == int(30 * fs_hz)
    low_rate = [w for w in out["warnings"] if "below the recommended 50 Hz" in w]
    assert bool(low_rate) == (fs_hz < 50)


def test_timing_warnings():
    rec = sway_trial()
    t = rec.t_s.copy()
    t[1000:] += 0.5  # half a second lost
    gappy = Recording(t_s=t, forces_n=rec.forces_n, sample_rate_hz=80.0, geometry=GEOMETRY, name="gap.csv")
    out = analyze_recording(gappy, protocol="quiet-stance")
    assert any("gap of 0.512 s" in w and "t = 12.488 s" in w for w in out["warnings"])
    slow_clock = Recording(t_s=rec.t_s * 1.05, forces_n=rec.forces_n, sample_rate_hz=80.0, geometry=GEOMETRY,
                           name="c.csv")
    out = analyze_recording(slow_clock, protocol="quiet-stance")
    assert any("the time stamps give 76.19 Hz but the file says 80 Hz" in w for w in out["warnings"])


# -- duration ------------------------------------------------------------------------------------


def test_too_short_is_refused_with_the_duration():
    with pytest.raises(AnalysisError) as info:
        analyze_recording(sway_trial(4.0), protocol="quiet-stance")
    message = str(info.value)
    assert message.startswith("synthetic.csv: trial too short: 4.00 s")
    assert "at least 5 s" in message and "\n" not in message


@pytest.mark.parametrize("duration_s,warned", [(5.0, True), (12.0, True), (24.9, True), (25.0, False), (60.0, False)])
def test_short_trials_are_scored_with_a_warning(duration_s, warned):
    out = analyze_recording(sway_trial(duration_s), protocol="quiet-stance")
    short = [w for w in out["warnings"] if w.startswith("short trial")]
    assert bool(short) == warned
    if warned:
        assert f"{duration_s:.2f} s analysed" in short[0] and "25 s" in short[0]


# -- nobody on the plate -------------------------------------------------------------------------


def test_nobody_on_the_plate_at_all():
    t = np.arange(800) / 80.0
    rec = recording_from_cop(t, 3.0, np.zeros(800), np.zeros(800), fs_hz=80.0, name="empty.csv")
    with pytest.raises(AnalysisError,
                       match=r"^empty\.csv: nobody on the plate: .* whole recording \(at most 3\.0 N\)$"):
        analyze_recording(rec, protocol="quiet-stance")


def test_stepping_off_names_the_time():
    rec = sway_trial(30.0)
    forces = rec.forces_n.copy()
    forces[1000:1040] = 0.5  # off the plate for half a second at t = 12.5 s
    off = Recording(t_s=rec.t_s, forces_n=forces, sample_rate_hz=80.0, geometry=GEOMETRY, name="stepoff.csv")
    with pytest.raises(AnalysisError) as info:
        analyze_recording(off, protocol="quiet-stance", lowpass_hz=None)
    message = str(info.value)
    assert message.startswith("stepoff.csv: nobody on the plate at t = 12.500 s (Fz 2.0 N")
    assert "40 of 2400 samples" in message and "\n" not in message


def test_a_single_empty_sample_is_enough():
    rec = sway_trial(30.0)
    forces = rec.forces_n.copy()
    forces[2399] = (DEFAULT_OCCUPANCY_N - 1) / 4  # the very last sample, just below the threshold
    off = Recording(t_s=rec.t_s, forces_n=forces, sample_rate_hz=80.0, geometry=GEOMETRY, name="last.csv")
    with pytest.raises(AnalysisError, match=r"at t = 29\.988 s \(Fz 99\.0 N"):
        analyze_recording(off, protocol="quiet-stance")


# -- protocols and arguments ---------------------------------------------------------------------


def test_single_leg_without_a_lift_is_refused():
    # quiet two-foot stance only: the single-leg scorer (station.scoring.scores) finds no lift-off
    with pytest.raises(AnalysisError, match=r"^synthetic\.csv: cannot score the single-leg test: no lift-off of the "
                                            r"right foot \(single-leg stance on the left leg\) after the baseline$"):
        analyze_recording(sway_trial(), protocol="single-leg", stance_side="left")


def test_a_new_scorer_slots_in(monkeypatch):
    def fake_single_leg(rec, *, stance_side, lowpass_hz):
        return {"hold_time_s": 30.0, "completed": True, "ratio": float("nan")}

    monkeypatch.setitem(analysis.SCORERS, "single-leg", fake_single_leg)
    out = analyze_recording(sway_trial(), protocol="single-leg", stance_side="right")
    assert out == {"protocol": "single-leg", "stance_side": "right", "hold_time_s": 30.0, "completed": True,
                   "ratio": None}


@pytest.mark.parametrize(
    "kwargs,words",
    [
        ({"protocol": "tandem"}, "unknown protocol 'tandem' (choose from quiet-stance, single-leg)"),
        ({"protocol": "quiet-stance", "stance_side": "middle"}, "stance side"),
        ({"protocol": "quiet-stance", "lowpass_hz": 40.0}, "cut-off 40 Hz must be below half the sample rate (40 Hz)"),
        ({"protocol": "quiet-stance", "lowpass_hz": 0.0}, "positive"),
        ({"protocol": "quiet-stance", "lowpass_hz": "10"}, "cut-off"),
    ],
)
def test_bad_arguments(kwargs, words):
    with pytest.raises(AnalysisError) as info:
        analyze_recording(sway_trial(), **kwargs)
    assert str(info.value).startswith("synthetic.csv: ") and words in str(info.value)


def test_errors_are_user_errors(tmp_path):
    assert issubclass(AnalysisError, UserError)
    with pytest.raises(UserError, match="no such file"):
        analyze_file(tmp_path / "missing.csv", protocol="quiet-stance")


def test_analyze_file_reads_and_scores(tmp_path):
    rec = sway_trial()
    write_recording(tmp_path / "t.csv", rec)
    from_file = analyze_file(tmp_path / "t.csv", protocol="quiet-stance")
    in_memory = analyze_recording(rec, protocol="quiet-stance")
    for key in COP_KEYS:  # the file holds forces to 0.1 mN
        assert from_file["cop"][key] == pytest.approx(in_memory["cop"][key], rel=1e-4), key


def test_low_rate_recordings_are_accepted_with_the_default_filter_skipped(tmp_path):
    """DESIGN.md section 4: any rate from 10 Hz; the default 10 Hz low-pass cannot apply at 20 Hz."""
    import io

    from station.core.cop import split_load
    from station.core.geometry import PlateGeometry
    from station.core.recording import RecordingWriter, read_recording
    from station.scoring.analyze import analyze_recording

    rng = np.random.default_rng(3)
    buf = io.StringIO()
    with RecordingWriter(buf, sample_rate_hz=20, geometry=PlateGeometry()) as w:
        for i in range(600):  # 30 s at 20 Hz
            w.write_frame(i / 20, split_load(700.0, rng.normal(0, 3), rng.normal(0, 4), ml_mm=400, ap_mm=300))
    path = tmp_path / "low_rate.csv"
    path.write_text(buf.getvalue(), encoding="utf-8")
    out = analyze_recording(read_recording(path), protocol="quiet-stance")
    assert out["sample_rate_hz"] == 20 and out["lowpass_hz"] is None
    assert "default 10 Hz low-pass was not applied" in out["warnings"][0]


def test_time_in_the_wrong_unit_is_a_clear_error():
    from station.core.recording import parse_recording
    from station.scoring.analyze import AnalysisError, analyze_recording

    rows = "\n".join(f"{i * 12500},175,175,175,175" for i in range(800))  # microseconds, not seconds
    text = "# sample_rate_hz: 80\n# plate_ml_mm: 400\n# plate_ap_mm: 300\nt_s,fl_n,fr_n,bl_n,br_n\n" + rows
    rec = parse_recording(text, name="us.csv")
    with pytest.raises(AnalysisError,
                       match=r"us.csv: the time stamps give 8e-05 samples per second .* is t_s in seconds"):
        analyze_recording(rec, protocol="quiet-stance")
