"""Replay of a recording as a plate source (hardware.replay)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from calibration.model import Calibration, simulator_calibration
from hardware.base import PlateSource, SourceFault
from hardware.replay import ReplaySource
from station.core.frames import FrameFlag
from station.core.geometry import PlateGeometry
from station.core.recording import Recording, write_recording

SEED = 20261121


class FakeClock:
    """A monotonic clock that only moves when someone sleeps (or the test moves it)."""

    def __init__(self, start_s: float = 1000.0) -> None:
        self.now_s = start_s
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now_s += seconds


def make_recording(n: int = 120, *, fs_hz: float = 80.0, jitter: bool = True, extra=None) -> Recording:
    rng = np.random.default_rng(SEED)
    step = np.full(n - 1, 1 / fs_hz)
    if jitter:
        step += rng.uniform(-0.002, 0.002, size=n - 1)
    t = 0.5 + np.concatenate([[0.0], np.cumsum(step)])
    forces = 175.0 + rng.normal(0.0, 4.0, size=(n, 4))
    return Recording(t_s=t, forces_n=forces, sample_rate_hz=fs_hz, geometry=PlateGeometry(), extra=extra or {},
                     name="rec.csv")


def drain(src: PlateSource) -> list:
    frames = []
    while (f := src.read()) is not None:
        frames.append(f)
    return frames


def test_fast_replay_delivers_every_sample_with_the_right_counts():
    rec = make_recording()
    cal = simulator_calibration()
    with ReplaySource(rec, realtime=False) as src:
        assert isinstance(src, PlateSource)
        assert src.kind == "replay" and src.nominal_rate_hz == 80.0
        frames = drain(src)
        assert src.read() is None  # stays ended
        assert src.stats.frames == rec.n_samples
    assert len(frames) == rec.n_samples
    assert [f.seq for f in frames] == list(range(rec.n_samples))
    assert_array_equal([f.t_s for f in frames], rec.t_s)  # recorded time
    counts = np.array([f.counts for f in frames])
    assert_array_equal(counts, cal.to_counts(rec.forces_n))
    assert_allclose(cal.to_forces(counts), rec.forces_n, rtol=0, atol=1e-9)
    # counts, not newtons: with the simulator's offsets they are tens of thousands
    assert np.all(counts > 40000)
    assert all(f.flags & FrameFlag.SYNTHETIC for f in frames)
    assert all(f.flags == FrameFlag.SYNTHETIC for f in frames)


def test_another_calibration():
    rec = make_recording(10)
    cal = Calibration(
        offsets_counts=(1000.0, -2000.0, 0.0, 50.0),
        gains_n_per_count=(0.001, -0.002, 0.0005, 0.01),
        created_at=dt.datetime(2026, 11, 21, tzinfo=dt.UTC),
    )
    frames = list(ReplaySource(rec, calibration=cal, realtime=False))
    counts = np.array([f.counts for f in frames])
    assert_allclose(counts[:, 0], rec.forces_n[:, 0] / 0.001 + 1000.0, rtol=1e-12)
    assert_allclose(cal.to_forces(counts), rec.forces_n, atol=1e-9)


def test_realtime_pacing_with_a_fake_clock():
    rec = make_recording(200)
    fake = FakeClock(start_s=1000.0)
    src = ReplaySource(rec, realtime=True, clock=fake.clock, sleep=fake.sleep)
    frames = drain(src)
    assert len(frames) == rec.n_samples
    expected = 1000.0 + (rec.t_s - rec.t_s[0])
    assert_allclose([f.t_s for f in frames], expected, rtol=0, atol=1e-9)
    # every frame was delivered exactly when due, and no earlier
    assert fake.now_s == pytest.approx(expected[-1], abs=1e-9)
    assert sum(fake.sleeps) == pytest.approx(rec.span_s, abs=1e-9)
    # the recording's own irregular spacing is reproduced
    assert_allclose(np.diff([f.t_s for f in frames]), np.diff(rec.t_s), atol=1e-9)


def test_realtime_reader_that_falls_behind_gets_frames_at_once():
    rec = make_recording(50, jitter=False)
    fake = FakeClock(start_s=10.0)
    src = ReplaySource(rec, realtime=True, clock=fake.clock, sleep=fake.sleep)
    first = src.read()
    assert first.t_s == 10.0 and fake.sleeps == []
    fake.now_s += 0.2  # the reader was busy for 16 periods
    late = [src.read() for _ in range(16)]
    assert fake.sleeps == []  # no waiting for frames already due
    assert_allclose([f.t_s for f in late], 10.0 + np.arange(1, 17) / 80.0, atol=1e-9)  # due times, none skipped
    nxt = src.read()  # frame 17 is due at 10.2125: waits the remaining 12.5 ms
    assert fake.sleeps == [pytest.approx(0.0125, abs=1e-9)]
    assert nxt.seq == 17


def test_gap_longer_than_the_timeout_is_a_source_fault():
    rec = make_recording(4, jitter=False)
    t = rec.t_s.copy()
    t[2:] += 3.0  # 3 s without samples
    gappy = Recording(t_s=t, forces_n=rec.forces_n, sample_rate_hz=80.0, name="gap.csv")
    fake = FakeClock()
    src = ReplaySource(gappy, realtime=True, clock=fake.clock, sleep=fake.sleep)
    src.read(), src.read()
    with pytest.raises(SourceFault, match="no frame due within 1 s"):
        src.read(timeout_s=1.0)
    assert fake.sleeps[-1] == 1.0  # waited the timeout, not the whole gap
    assert src.stats.faults == 1
    frame = src.read(timeout_s=5.0)  # carries on
    assert frame.seq == 2
    assert frame.t_s == pytest.approx(1000.0 + t[2] - t[0], abs=1e-9)


@pytest.mark.parametrize("realtime", [False, True])
def test_loop_keeps_time_increasing(realtime):
    rec = make_recording(30)
    fake = FakeClock()
    src = ReplaySource(rec, realtime=realtime, loop=True, clock=fake.clock, sleep=fake.sleep)
    frames = [src.read() for _ in range(95)]
    assert all(f is not None for f in frames)
    assert [f.seq for f in frames] == list(range(95))
    t = np.array([f.t_s for f in frames])
    assert np.all(np.diff(t) > 0)
    # one nominal period between the last frame of a pass and the first of the next
    assert t[30] - t[29] == pytest.approx(1 / 80, abs=1e-9)
    assert_array_equal(np.array([f.counts for f in frames[30:60]]), np.array([f.counts for f in frames[:30]]))
    assert t[60] - t[0] == pytest.approx(2 * (rec.span_s + 1 / 80), abs=1e-9)


def test_rewind():
    rec = make_recording(5)
    src = ReplaySource(rec, realtime=False)
    assert len(drain(src)) == 5
    src.rewind()
    again = drain(src)
    assert len(again) == 5 and again[0].seq == 5  # sequence numbers never repeat


def test_recorded_flags_are_kept_with_synthetic():
    flags = np.zeros(6)
    flags[2] = int(FrameFlag.GLITCH)
    flags[4] = int(FrameFlag.SATURATED | FrameFlag.CELL_FAULT) + 64  # unknown bit ignored
    rec = make_recording(6, extra={"flags": flags})
    src = ReplaySource(rec, realtime=False)
    frames = drain(src)
    assert frames[0].flags == FrameFlag.SYNTHETIC
    assert frames[2].flags == FrameFlag.SYNTHETIC | FrameFlag.GLITCH
    assert frames[4].flags == FrameFlag.SYNTHETIC | FrameFlag.SATURATED | FrameFlag.CELL_FAULT
    assert src.stats.glitches == 2


def test_replay_from_a_file(tmp_path):
    rec = make_recording(40)
    path = tmp_path / "trial.csv"
    write_recording(path, rec)
    src = ReplaySource(path, realtime=False)
    assert "trial.csv" in src.describe() and "as fast as possible" in src.describe()
    frames = drain(src)
    assert len(frames) == 40
    back = simulator_calibration().to_forces(np.array([f.counts for f in frames]))
    assert_allclose(back, rec.forces_n, atol=0.5e-4 + 1e-9)  # the file's 4 decimals
