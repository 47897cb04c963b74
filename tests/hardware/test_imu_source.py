"""The pelvis sensor as a live source: faults recorded not raised, samples aligned to plate frames.

End to end on the chip model: a known pelvis motion with a Trendelenburg drop, read by the real
driver, fused, aligned to an 80 Hz plate trial and written in the recording's pelvis column,
scores the drop and the positive sign with ``analyze``.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from hardware.fakes.clock import VirtualClock
from hardware.fakes.smbus2 import FakeI2CBus, fake_smbus2_module
from hardware.imu.chip import ICM42688Chip, PelvisMotion, mounting
from hardware.imu.driver import ICM42688
from hardware.imu.source import (
    PelvisProcess,
    PelvisSample,
    PelvisSpec,
    PelvisStream,
    PelvisTrack,
)


def stream_on_chip(clock, motion=None, **chip_kw):
    chip = ICM42688Chip(motion=motion or PelvisMotion(), now_ns=clock.now_ns, mount=mounting(twist_deg=3.0), seed=2,
                        **chip_kw)
    ctx = fake_smbus2_module({1: FakeI2CBus({0x68: chip}, clock=clock)})
    ctx.__enter__()
    stream = PelvisStream(make_driver=lambda: ICM42688(bus=1, clock=clock), clock=clock)
    return chip, stream, ctx


def run_until(stream, clock, t_end, out=None):
    out = [] if out is None else out
    while clock.monotonic() < t_end:
        out += stream.step(timeout_s=0.03)
    return out


def test_the_first_two_still_seconds_calibrate_and_nothing_is_made_up_before(clock):
    # the patient walks up (the pelvis rocks at 1 Hz) for 3 s, then stands still at a 2 degree obliquity
    motion = PelvisMotion(obliquity_deg=lambda t: 8.0 * math.sin(2 * math.pi * t) if t < 3.0 else 2.0)
    _chip, stream, ctx = stream_on_chip(clock, motion)
    try:
        first = run_until(stream, clock, 4.9)
        assert first and all(math.isnan(s.obliquity_deg) for s in first) and not stream.calibrated
        after = run_until(stream, clock, 6.0)
        assert stream.calibrated and all(abs(s.obliquity_deg) < 0.3 for s in after[-50:])  # level = that stance
        # on demand: again, in a new stance
        stream.calibrate("start")
        run_until(stream, clock, 7.0)
        stream.calibrate("finish")
        assert all(abs(s.obliquity_deg) < 0.3 for s in run_until(stream, clock, 8.0))
        with pytest.raises(ValueError):
            stream.calibrate("later")
    finally:
        ctx.__exit__(None, None, None)


def test_an_unplugged_sensor_is_a_fault_then_comes_back(clock):
    chip, stream, ctx = stream_on_chip(clock)
    try:
        run_until(stream, clock, 1.0)
        assert stream.ok
        chip.connected = False
        t0 = clock.monotonic()
        while stream.fault is None:
            assert stream.step(timeout_s=0.05) == []
        assert clock.monotonic() - t0 < 1.0 and "does not answer" in stream.fault
        run_until(stream, clock, t0 + 3.0)  # retries once a second, still unplugged: no samples, no exception
        assert stream.faults >= 2 and not stream.ok
        chip.connected = True
        back = run_until(stream, clock, t0 + 5.0)
        assert stream.ok and back and not stream.calibrated  # put back on: calibrate again
    finally:
        ctx.__exit__(None, None, None)


def test_a_silent_sensor_is_a_fault_within_one_second(clock):
    chip, stream, ctx = stream_on_chip(clock)
    try:
        run_until(stream, clock, 1.0)
        chip.silent = True
        t0 = clock.monotonic()
        while stream.fault is None:
            stream.step(timeout_s=0.05)
        assert clock.monotonic() - t0 < 1.0 and "no data" in stream.fault
    finally:
        ctx.__exit__(None, None, None)


def test_the_track_interpolates_and_never_bridges_a_gap():
    track = PelvisTrack(max_gap_s=0.05)
    track.add([PelvisSample(0.00, 1.0), PelvisSample(0.01, 2.0), PelvisSample(0.02, 4.0), PelvisSample(0.20, 5.0)])
    assert track.at(0.005) == pytest.approx(1.5) and track.at(0.01) == 2.0
    assert math.isnan(track.at(0.1))  # between 0.02 and 0.20: a gap
    assert math.isnan(track.at(-0.01)) and math.isnan(track.at(0.3))  # outside
    track.add([PelvisSample(0.15, 9.0)])  # out of order: ignored
    assert track.latest_s == 0.20


def test_end_to_end_a_trendelenburg_drop_is_scored_from_the_sensor(clock):
    """The chip's pelvis drops 4 degrees on the lifted (right) side: the recording scores it positive."""
    from station.core.recording import PELVIS_COLUMN, Recording
    from station.scoring.analyze import analyze_recording
    from tests.station.single_leg_trials import synthetic_trial

    rec, onset = synthetic_trial(stance_side="left", fs_hz=80.0)  # the right foot lifts at `onset`
    start = 3.0  # the plate's t = 0 is the sensor's t = 3 s (the sensor was on first)

    def obliquity(t: float) -> float:  # the right side drops (obliquity falls) from the onset, in 0.5 s
        u = t - start - onset + 0.3
        return 0.4 * math.sin(2 * math.pi * 0.4 * t) * (u > 0) - 4.0 * min(1.0, max(0.0, u / 0.5))

    _chip, stream, ctx = stream_on_chip(clock, PelvisMotion(obliquity_deg=obliquity, tilt_deg=lambda t: 7.0))
    track = PelvisTrack(keep_s=100.0)
    try:  # standing still on both feet: the mounting calibrates itself within the first seconds
        track.add(run_until(stream, clock, start + rec.t_s[-1] + 0.2))
    finally:
        ctx.__exit__(None, None, None)
    column = np.array([track.at(start + t) for t in rec.t_s])
    assert stream.calibrated and np.isfinite(column).all()  # calibrated before the plate's recording began
    measured = Recording(t_s=rec.t_s, forces_n=rec.forces_n, sample_rate_hz=rec.sample_rate_hz, geometry=rec.geometry,
                         extra={PELVIS_COLUMN: column})
    pelvis = analyze_recording(measured, protocol="single-leg", stance_side="left")["pelvis"]
    truth = np.array([-obliquity(start + t) for t in rec.t_s])  # the lifted right side's drop below level (0)
    hold = (rec.t_s >= onset) & (rec.t_s < onset + 30.0)
    assert pelvis["sign"] == "positive"
    assert pelvis["drop_mean_deg"] == pytest.approx(truth[hold].mean(), abs=0.5)
    assert pelvis["valid_pct"] == 100.0


def test_the_sensor_runs_in_its_own_process():
    spec = PelvisSpec(driver={"bus": 1}, setup="hardware.fakes.smbus2:install_simulated_pelvis_sensor")

    def collect(proc, n, limit_s=15.0):  # generous deadlines: the test machine may be busy
        got = []
        deadline = time.monotonic() + limit_s
        while len(got) < n and time.monotonic() < deadline:
            got += proc.poll(timeout_s=0.1)
        return got

    with PelvisProcess(spec) as proc:
        samples = collect(proc, 150)
        proc.calibrate("start")  # on demand (it has calibrated itself already: the sway is slow)
        samples += collect(proc, 60)
        proc.calibrate("finish")
        later = collect(proc, 50)
    assert proc.fault is None
    t = np.array([s.t_s for s in samples + later])
    assert len(t) >= 260 and np.all(np.diff(t) > 0)
    assert np.median(np.diff(t)) == pytest.approx(0.01, rel=0.05)  # 100 Hz
    assert abs(t[-1] - time.monotonic()) < 5.0  # on this process's monotonic clock: the plate's
    assert np.isfinite([s.obliquity_deg for s in later[-10:]]).all()


def test_no_sensor_at_all_is_a_fault_message_not_a_failed_start():
    spec = PelvisSpec(driver={"bus": 1}, setup="tests.hardware.test_imu_source:install_an_empty_bus")
    with PelvisProcess(spec) as proc:
        deadline = time.monotonic() + 5.0
        while proc.fault is None and time.monotonic() < deadline:
            proc.poll(timeout_s=0.1)
    assert proc.fault is not None and "does not answer" in proc.fault


def install_an_empty_bus() -> None:
    import sys

    from hardware.fakes.smbus2 import make_smbus2

    sys.modules["smbus2"] = make_smbus2({1: FakeI2CBus({})})


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()
