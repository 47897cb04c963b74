"""The simulated plate: accuracy through the built-in calibration, timing, noise, glitches, commands."""

from __future__ import annotations

import datetime as dt
import pickle
import time

import numpy as np
import pytest
from scipy.signal import welch

from calibration.model import Calibration, simulator_calibration
from hardware.base import PlateSource, SourceFault
from hardware.sim.plate import GLITCH_BITS, SimulatedPlate, check_command
from station.core.cop import GRAVITY_M_S2, centre_of_pressure
from station.core.frames import CELLS, HX711_MAX_CODE, FrameFlag
from station.core.geometry import PlateGeometry

CAL = simulator_calibration()
GEO = PlateGeometry()


def fast_plate(**kwargs) -> SimulatedPlate:
    kwargs.setdefault("realtime", False)
    return SimulatedPlate(**kwargs)


def read_n(plate: SimulatedPlate, n: int):
    frames = [plate.read() for _ in range(n)]
    return frames, np.array([f.counts for f in frames]), np.array([f.t_s for f in frames])


def read_s(plate: SimulatedPlate, duration_s: float):
    return read_n(plate, int(round(duration_s * plate.nominal_rate_hz)))


def measured(counts: np.ndarray, calibration: Calibration = CAL, geometry: PlateGeometry = GEO):
    """Fz and COP from raw counts, through a calibration, as the station computes them."""
    return centre_of_pressure(calibration.to_forces(counts), ml_mm=geometry.ml_mm, ap_mm=geometry.ap_mm)


def clean_rows(counts: np.ndarray, *, tolerance_counts: float = 2000.0) -> np.ndarray:
    """Rows whose every cell is within ``tolerance_counts`` of that cell's median (drops glitch frames)."""
    return np.all(np.abs(counts - np.median(counts, axis=0)) < tolerance_counts, axis=1)


def sway_stats(x_mm: np.ndarray, y_mm: np.ndarray, *, rate_hz: float) -> dict[str, float]:
    x = x_mm - x_mm.mean()
    y = y_mm - y_mm.mean()
    f, px = welch(x, fs=rate_hz, nperseg=1024)
    _, py = welch(y, fs=rate_hz, nperseg=1024)
    return {
        "ml_rms_mm": float(np.sqrt(np.mean(x**2))),
        "ap_rms_mm": float(np.sqrt(np.mean(y**2))),
        "velocity_mm_s": float(np.sum(np.hypot(np.diff(x), np.diff(y))) / (len(x) / rate_hz)),
        "below_1hz": float((px[f < 1].sum() + py[f < 1].sum()) / (px.sum() + py.sum())),
    }


def test_is_a_plate_source():
    plate = fast_plate()
    assert isinstance(plate, PlateSource)
    assert plate.kind == "simulated"
    assert plate.nominal_rate_hz == 80.0
    assert "simulated" in plate.describe()


# -- (a) acceptance: static loads through the built-in calibration -----------------------

GRID = [(x, y) for x in (-150.0, 0.0, 150.0) for y in (-100.0, 0.0, 100.0)]


def static_cop_errors(mass_kg: float, plate_kwargs: dict | None = None, calibration: Calibration = CAL):
    """Max |COP error| (mm) and Fz error (%) over the grid for one mass: mean over 2 s of frames.

    Glitches stay on at the default rate; frames with a cell far from its median
    (glitches) are dropped before averaging.
    """
    worst_mm, worst_pct = 0.0, 0.0
    for i, (x, y) in enumerate(GRID):
        plate = fast_plate(seed=100 + i, **(plate_kwargs or {}))
        plate.command("behaviour", behaviour="static_load", mass_kg=mass_kg, x_mm=x, y_mm=y)
        frames, counts, _ = read_s(plate, 2.0)
        assert not any(f.flags & FrameFlag.SATURATED for f in frames)
        keep = clean_rows(counts)
        assert keep.sum() >= len(counts) - plate.injected_glitches
        fz, cx, cy = measured(counts[keep], calibration)
        worst_mm = max(worst_mm, abs(np.mean(cx) - x), abs(np.mean(cy) - y))
        worst_pct = max(worst_pct, abs(np.mean(fz) / (mass_kg * GRAVITY_M_S2) - 1) * 100)
    return worst_mm, worst_pct


@pytest.mark.parametrize("mass_kg", [20.0, 60.0, 120.0])
def test_acceptance_static_load_cop_within_half_a_millimetre(mass_kg):
    worst_mm, worst_pct = static_cop_errors(mass_kg)
    assert worst_mm < 0.5
    assert worst_pct < 0.1


def test_empty_plate_reads_the_offsets_despite_the_dead_weight():
    plate = fast_plate(glitch_rate=0.0, dead_weight_n=120.0, start="empty")
    _, counts, _ = read_s(plate, 5.0)
    assert np.allclose(counts.mean(axis=0), CAL.offsets_counts, atol=5.0)
    fz, cx, _ = measured(counts)
    assert abs(fz.mean()) < 0.05
    assert np.all(np.isnan(cx))


def test_other_true_gains_and_offsets_need_their_own_calibration():
    rng = np.random.default_rng(42)
    gains = np.asarray(CAL.gains_n_per_count) * rng.uniform(0.9, 1.1, 4)
    offsets = np.asarray(CAL.offsets_counts) * rng.uniform(0.9, 1.1, 4)
    kwargs = {"true_gains_n_per_count": gains.tolist(), "true_offsets_counts": offsets.tolist()}
    true_cal = Calibration(offsets_counts=tuple(offsets), gains_n_per_count=tuple(gains),
                           created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    right_mm, right_pct = static_cop_errors(60.0, kwargs, true_cal)
    wrong_mm, wrong_pct = static_cop_errors(60.0, kwargs, CAL)
    assert right_mm < 0.5 and right_pct < 0.1
    assert wrong_mm > 5.0 and wrong_pct > 1.0


# -- (b, c) timing -------------------------------------------------------------------------


def test_fast_mode_timestamps_give_80_frames_per_second():
    plate = fast_plate(seed=3)
    frames = []
    while (f := plate.read()).t_s < 60.0:
        frames.append(f)
    t = np.array([f.t_s for f in frames])
    assert t[0] >= 0.0 and t[0] < 0.002
    assert len(frames) >= 79 * 60
    assert (len(t) - 1) / (t[-1] - t[0]) == pytest.approx(80.0, abs=1.0)
    steps = np.diff(t)
    assert np.all(steps > 0)
    assert np.all(np.abs(steps - 1 / plate.actual_rate_hz) < 0.001)  # sub-millisecond jitter
    assert np.std(steps) > 1e-5  # but some
    assert [f.seq for f in frames] == list(range(len(frames)))


def test_rate_error_is_configurable():
    plate = fast_plate(rate_error_ppm=-5000.0, jitter_s=0.0)
    _, _, t = read_n(plate, 801)
    assert 800 / (t[-1] - t[0]) == pytest.approx(80.0 * (1 - 0.005), rel=1e-9)


def test_real_time_pacing_with_the_real_clock():
    plate = SimulatedPlate(realtime=True, seed=4)
    late_s = []
    with plate:
        start = time.monotonic()
        frames = []
        while time.monotonic() - start < 2.0:
            f = plate.read()
            late_s.append(time.monotonic() - f.t_s)
            frames.append(f)
        elapsed = time.monotonic() - start
    rate = len(frames) / elapsed
    assert rate == pytest.approx(80.0, abs=4.0)
    t = np.array([f.t_s for f in frames])
    assert (len(t) - 1) / (t[-1] - t[0]) == pytest.approx(80.0, abs=1.0)
    assert t[0] >= start - 0.001
    assert min(late_s) >= 0.0  # never delivered before its timestamp
    assert np.median(late_s) < 0.005


class FakeClock:
    """A monotonic clock that only moves when slept on (each sleep overshoots by ``overshoot_s``)."""

    def __init__(self, start_s: float = 1000.0, overshoot_s: float = 0.002) -> None:
        self.now_s = start_s
        self.overshoot_s = overshoot_s
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now_s += seconds + self.overshoot_s


def test_real_time_schedule_is_kept_from_the_start_and_never_drifts():
    clock = FakeClock()
    plate = SimulatedPlate(realtime=True, clock=clock, sleep=clock.sleep, jitter_s=0.0)
    plate.open()
    _, _, t = read_n(plate, 800)
    period = 1 / plate.actual_rate_hz
    assert np.allclose(t, 1000.0 + np.arange(800) * period, atol=1e-9)
    # 2 ms late on every sleep, yet the last frame is read 2 ms after it is due, not 1.6 s
    assert clock.now_s - t[-1] == pytest.approx(0.002, abs=1e-9)


def test_real_time_late_reader_gets_the_backlog_at_once():
    clock = FakeClock(overshoot_s=0.0)
    plate = SimulatedPlate(realtime=True, clock=clock, sleep=clock.sleep, jitter_s=0.0)
    plate.open()
    clock.now_s += 0.5  # the reader was busy for half a second
    n_sleeps = len(clock.sleeps)
    _, _, t = read_n(plate, 40)
    assert len(clock.sleeps) == n_sleeps  # 40 frames were already due: no sleeping
    assert t[-1] < clock.now_s and np.allclose(np.diff(t), 1 / plate.actual_rate_hz)


def test_real_time_read_times_out_with_a_source_fault():
    clock = FakeClock(overshoot_s=0.0)
    plate = SimulatedPlate(realtime=True, clock=clock, sleep=clock.sleep, jitter_s=0.0)
    plate.read()
    with pytest.raises(SourceFault, match="timeout_s"):
        plate.read(timeout_s=0.001)
    frame = plate.read()
    assert frame.seq == 1


def test_duration_ends_the_source():
    plate = fast_plate(duration_s=1.0)
    frames = list(plate)
    assert len(frames) == int(np.ceil(1.0 * plate.actual_rate_hz))
    assert plate.read() is None


# -- (d) determinism ------------------------------------------------------------------------


def frames_of(seed: int, n: int = 2400, **kwargs):
    plate = fast_plate(seed=seed, glitch_rate=0.01, start="empty", **kwargs)
    plate.command("scenario", steps=[{"t_s": 0.5, "behaviour": "step_on"},
                                     {"t_s": 10, "behaviour": "single_leg", "stance_side": "left"}])
    return [(f.seq, f.t_s, f.counts, int(f.flags), f.fault_cells) for f in (plate.read() for _ in range(n))]


def test_same_seed_gives_the_same_frames():
    assert frames_of(7) == frames_of(7)
    a, c = frames_of(7), frames_of(8)
    assert [f[2] for f in a] != [f[2] for f in c]
    assert [f[1] for f in a] != [f[1] for f in c]


# -- (e) sway, measured through the plate --------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_quiet_stance_sway_statistics_through_the_plate(seed):
    plate = fast_plate(seed=seed)
    plate.command("behaviour", behaviour="quiet")
    read_s(plate, 3.0)
    _, counts, _ = read_s(plate, 60.0)
    keep = clean_rows(counts, tolerance_counts=100_000)
    _, x, y = measured(counts[keep])
    s = sway_stats(x, y, rate_hz=80.0)
    assert 2.0 <= s["ml_rms_mm"] <= 5.0
    assert 3.0 <= s["ap_rms_mm"] <= 7.0
    assert 5.0 <= s["velocity_mm_s"] <= 15.0
    assert s["below_1hz"] >= 0.9


# -- (f) behaviours, commanded through the plate and measured through the calibration ---------


def test_brief_scenario_through_the_plate():
    bw = 70.0 * GRAVITY_M_S2
    plate = fast_plate(seed=21, glitch_rate=0.0, start="empty", scenario=[
        {"t_s": 1.0, "behaviour": "step_on"},
        {"t_s": 6.0, "behaviour": "single_leg", "stance_side": "left"},
        {"t_s": 12.3, "behaviour": "touchdown", "where": "plate", "duration_s": 0.4},
        {"t_s": 15.0, "behaviour": "touchdown", "where": "floor", "duration_s": 0.5, "share_pct": 30},
        {"t_s": 20.0, "behaviour": "hand_support", "pct_bw": 5, "duration_s": 5},
        {"t_s": 28.0, "behaviour": "quiet"},
        {"t_s": 30.0, "behaviour": "lean", "x_mm": -50, "y_mm": 60},
        {"t_s": 36.0, "behaviour": "step_off"},
    ])
    _, counts, t = read_s(plate, 38.0)
    fz, x, y = measured(counts)

    def window(a, b):
        return (t >= a) & (t < b)

    # stepping on: 0 -> body weight in under 0.6 s
    assert np.all(fz[t < 1.0] < 1.0)
    assert np.mean(fz[window(2, 6)]) == pytest.approx(bw, rel=0.005)
    rise = t[np.argmax(fz > 0.9 * bw)] - t[np.argmax(fz > 0.1 * bw)]
    assert 0.1 < rise < 0.6
    # single leg on the left foot
    assert abs(np.mean(x[window(7, 12)]) - GEO.left_foot_x_mm) < 15
    # touchdown on the plate: toward the right footprint for 0.4 s
    assert np.all(x[window(12.36, 12.64)] > GEO.left_foot_x_mm + 60)
    assert np.all(x[window(12.8, 14)] < GEO.left_foot_x_mm + 35)
    # touchdown on the floor: Fz drops by 30 %
    assert np.mean(fz[window(15.06, 15.44)]) == pytest.approx(0.7 * bw, rel=0.02)
    # hand support: Fz lower by 5 % of body weight
    drop_pct = 100 * (1 - np.mean(fz[window(20.4, 24.9)]) / bw)
    assert drop_pct == pytest.approx(5.0, abs=0.5)
    # both feet, then lean toward (-50, 60)
    assert abs(np.mean(x[window(29, 30)])) < 12
    assert np.hypot(np.mean(x[window(32, 36)]) + 50, np.mean(y[window(32, 36)]) - 60) < 10
    # stepping off
    assert np.all(fz[t > 36.6] < 1.0)
    names = [e.name for e in plate.person.events]
    for name in ("on_plate", "foot_lifted", "touchdown", "touchdown_end", "support_end", "off_plate"):
        assert name in names
    assert plate.truth is not None and plate.truth.behaviour == "empty"


def test_by_default_a_person_stands_quietly_from_the_first_frame():
    plate = fast_plate(seed=5, glitch_rate=0.0)
    _, counts, _ = read_s(plate, 2.0)
    fz, x, y = measured(counts)
    assert np.all(np.abs(fz / (70.0 * GRAVITY_M_S2) - 1) < 0.02)
    assert np.all(np.abs(x) < 20) and np.all(np.abs(y) < 25)
    assert plate.truth.behaviour == "quiet" and plate.truth.stance == "both"


def test_lean_to_command_steers_the_person():
    plate = fast_plate(seed=5, glitch_rate=0.0)
    read_s(plate, 1.0)
    plate.command("lean_to", x_mm=80.0, y_mm=-30.0)
    _, counts, _ = read_s(plate, 5.0)
    _, x, y = measured(counts)
    assert np.hypot(np.mean(x[-160:]) - 80, np.mean(y[-160:]) + 30) < 10
    assert plate.truth.target_ml_mm == 80.0 and plate.truth.behaviour == "lean"


def test_commands_are_checked_at_once_naming_the_problem():
    plate = fast_plate()
    with pytest.raises(ValueError, match="command name must be one of"):
        plate.command("jump")
    with pytest.raises(ValueError, match="lean_to: unknown parameter 'z_mm'"):
        plate.command("lean_to", x_mm=1, y_mm=2, z_mm=3)
    with pytest.raises(ValueError, match="missing parameter 'behaviour'"):
        plate.command("behaviour", stance_side="left")
    with pytest.raises(ValueError, match="stance_side must be one of"):
        plate.command("behaviour", behaviour="single_leg", stance_side="up")
    with pytest.raises(ValueError, match="scenario step 0"):
        plate.command("scenario", steps=[{"t_s": 1}])
    with pytest.raises(ValueError, match="'steps'"):
        plate.command("scenario", plan=[])
    assert plate.read().seq == 0  # nothing was queued


def test_commands_are_plain_picklable_data():
    steps = [{"t_s": 0.1, "behaviour": "static_load", "mass_kg": 30.0, "x_mm": 10.0, "y_mm": 0.0}]
    message = pickle.loads(pickle.dumps(("scenario", {"steps": steps})))
    plate = fast_plate(glitch_rate=0.0)
    plate.command(message[0], **message[1])
    _, counts, _ = read_s(plate, 1.0)
    fz, x, _ = measured(counts)
    assert np.mean(fz[-40:]) == pytest.approx(30 * GRAVITY_M_S2, rel=0.001)
    assert np.mean(x[-40:]) == pytest.approx(10.0, abs=0.1)


# -- (g) noise -------------------------------------------------------------------------------


def test_empty_plate_noise_is_about_40_counts_rms_per_cell_and_independent():
    plate = fast_plate(seed=9, glitch_rate=0.0, start="empty")
    _, counts, _ = read_n(plate, 8000)
    sd = counts.std(axis=0)
    assert np.all(np.abs(sd - 40.0) < 2.0)
    corr = np.corrcoef(counts.T)
    assert np.all(np.abs(corr[np.triu_indices(4, 1)]) < 0.05)
    assert np.all(counts == np.round(counts))


def test_noise_is_configurable():
    plate = fast_plate(seed=9, glitch_rate=0.0, noise_counts=0.0, start="empty")
    _, counts, _ = read_n(plate, 50)
    assert np.all(counts == np.asarray(CAL.offsets_counts))


# -- (h) glitches ----------------------------------------------------------------------------


def test_glitches_are_unflagged_single_frame_single_cell_bit_flips_at_the_configured_rate():
    n, rate = 12_000, 0.01
    glitchy = fast_plate(seed=13, glitch_rate=rate)
    clean = fast_plate(seed=13, glitch_rate=0.0)
    for plate in (glitchy, clean):
        plate.command("behaviour", behaviour="quiet")
    g_frames, g, _ = read_n(glitchy, n)
    _, c, _ = read_n(clean, n)
    differs = g != c
    rows = np.flatnonzero(differs.any(axis=1))
    assert list(rows) == list(glitchy.glitch_seqs)
    assert glitchy.injected_glitches == len(rows)
    assert abs(len(rows) - n * rate) < 4 * np.sqrt(n * rate)
    assert np.all(differs[rows].sum(axis=1) == 1)  # one cell per glitch frame
    diffs = np.abs(g[differs] - c[differs])
    assert np.all(np.isin(diffs, [2.0**b for b in GLITCH_BITS]))
    assert all(g_frames[r].flags == FrameFlag.SYNTHETIC for r in rows)  # not flagged
    assert glitchy.stats.glitches == 0
    # single frames: a plain spike detector (distance to the median of the neighbours) finds exactly them
    padded = np.pad(g, ((2, 2), (0, 0)), mode="edge")
    neighbours = np.stack([padded[i: i + n] for i in (0, 1, 3, 4)])
    spikes = np.abs(g - np.median(neighbours, axis=0)) > 100_000
    assert list(np.flatnonzero(spikes.any(axis=1))) == list(rows)


def test_default_glitch_rate_is_about_one_in_2000():
    plate = fast_plate(seed=17)
    assert plate.glitch_rate == pytest.approx(1 / 2000)
    read_n(plate, 16_000)
    assert 2 <= plate.injected_glitches <= 20  # expected 8


# -- saturation ------------------------------------------------------------------------------


def test_counts_beyond_24_bits_read_as_saturation_codes_and_are_flagged():
    offsets = list(CAL.offsets_counts)
    offsets[1] = HX711_MAX_CODE - 1000.0  # fr close to full scale
    plate = fast_plate(true_offsets_counts=offsets, glitch_rate=0.0, start="empty")
    frame = plate.read()
    assert frame.flags == FrameFlag.SYNTHETIC
    plate.command("behaviour", behaviour="static_load", mass_kg=50.0, x_mm=100.0, y_mm=100.0)
    frame = plate.read()
    assert frame.flags & FrameFlag.SATURATED
    assert frame.fault_cells == ("fr",)
    assert frame.counts[1] == HX711_MAX_CODE
    assert plate.stats.glitches == 1 and plate.stats.frames == 2


# -- construction ----------------------------------------------------------------------------


def test_from_settings_round_trip_gives_the_same_frames():
    plate = fast_plate(seed=23, geometry=PlateGeometry(ml_mm=500.0, ap_mm=350.0, feet_ml_mm=220.0),
                       mass_kg=82.0, scenario=[{"t_s": 0.2, "behaviour": "quiet"}])
    settings = pickle.loads(pickle.dumps(plate.settings()))
    twin = SimulatedPlate.from_settings(settings)
    assert twin.geometry == plate.geometry and twin.person.mass_kg == 82.0
    _, a, ta = read_n(plate, 400)
    _, b, tb = read_n(twin, 400)
    assert np.array_equal(a, b) and np.array_equal(ta, tb)


def test_from_settings_accepts_nested_geometry_and_defaults():
    plate = SimulatedPlate.from_settings({"geometry": {"ml_mm": 450.0}, "realtime": False, "seed": 2})
    assert plate.geometry == PlateGeometry(ml_mm=450.0)
    assert plate.realtime is False and plate.glitch_rate == pytest.approx(1 / 2000)
    assert SimulatedPlate.from_settings({}).realtime is True


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"colour": "red"}, "unknown key 'colour'"),
        ({"geometry": {"width_mm": 3}}, "geometry: unknown key 'width_mm'"),
        ({"seed": -1}, "seed"),
        ({"rate_hz": 0}, "rate_hz"),
        ({"glitch_rate": 2}, "glitch_rate"),
        ({"jitter_s": 0.01}, "jitter_s"),
        ({"true_gains_n_per_count": [1, 2, 3]}, "true_gains_n_per_count"),
        ({"true_gains_n_per_count": [1, 0, 1, 1]}, "none of them 0"),
        ({"skill": "clumsy"}, "skill"),
        ({"realtime": "yes"}, "realtime"),
        ({"start": "running"}, "start"),
        ({"mass_kg": 70, "body_mass_kg": 70}, "not both"),
        ({"scenario": [{"t_s": 1, "behaviour": "fly"}]}, "scenario step 0"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(settings, message):
    with pytest.raises(ValueError, match=message):
        SimulatedPlate.from_settings(settings)


def test_cells_order_and_frame_shape():
    frame = fast_plate().read()
    assert len(frame.counts) == len(CELLS) == 4
    assert all(isinstance(c, float) for c in frame.counts)


def test_from_settings_takes_the_station_configuration_names():
    plate = SimulatedPlate.from_settings({
        "seed": None, "body_mass_kg": 85.0, "glitch_rate": 0.001,
        "ml_mm": 400.0, "ap_mm": 300.0, "feet_ml_mm": 200.0, "realtime": False,
    })
    assert plate.person.mass_kg == 85.0
    assert isinstance(plate.seed, int) and plate.seed >= 0  # a fresh seed, kept so the run can be repeated
    twin = SimulatedPlate.from_settings({**plate.settings()})
    assert [twin.read().counts for _ in range(50)] == [plate.read().counts for _ in range(50)]


def test_check_command_validates_without_a_plate():
    assert check_command("lean_to", {"x_mm": 10, "y_mm": 5}) == (
        "behaviour", ("lean", {"x_mm": 10.0, "y_mm": 5.0, "approach_s": 1.0}))
    assert check_command("behaviour", {"name": "step_on"})[1][0] == "step_on"
    with pytest.raises(ValueError, match="x_mm must lie between the cells"):
        check_command("behaviour", {"behaviour": "static_load", "mass_kg": 10, "x_mm": 240},
                      geometry=PlateGeometry(ml_mm=400.0))
    check_command("behaviour", {"behaviour": "static_load", "mass_kg": 10, "x_mm": 240},
                  geometry=PlateGeometry(ml_mm=500.0))


def test_speed_runs_simulated_time_faster_with_unchanged_time_stamps():
    """At speed 4 a second of frames is due in a quarter of a second, stamped a second apart."""
    now = [100.0]
    slept = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    plate = SimulatedPlate(seed=1, realtime=True, speed=4.0, jitter_s=0.0, rate_error_ppm=0.0,
                           clock=lambda: now[0], sleep=sleep)
    frames = [plate.read() for _ in range(81)]
    assert frames[-1].t_s - frames[0].t_s == pytest.approx(1.0)
    assert now[0] - 100.0 == pytest.approx(0.25)
    with pytest.raises(ValueError, match="speed"):
        SimulatedPlate(speed=0.0)
