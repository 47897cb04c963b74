"""Zero drift: tracked while the plate is empty and still, re-zeroed between trials, warned about."""

import numpy as np
import pytest

from calibration.model import simulator_calibration
from station.core.frames import RawFrame
from station.core.geometry import PlateGeometry
from station.live.pipeline import LiveStation
from station.signal.drift import ZeroTracker
from station.signal.forces import ForcePipeline
from tests.doubles import ListFeed
from tests.station.live.test_pipeline import frames

CAL = simulator_calibration()
GAINS = np.asarray(CAL.gains_n_per_count)


def empty_frames(n, *, drift_n=(0.0, 0.0, 0.0, 0.0), start=0, noise_counts=40.0, seed=0):
    """An empty plate whose zeros moved by ``drift_n`` (N per cell)."""
    rng = np.random.default_rng(seed)
    base = np.asarray(CAL.offsets_counts) + np.asarray(drift_n) / GAINS
    return [RawFrame(seq=i, t_s=i / 80, counts=tuple(base + rng.normal(0, noise_counts, 4)))
            for i in range(start, start + n)]


def make_live(**kw):
    return LiveStation(ListFeed(), ForcePipeline(CAL, PlateGeometry()), **kw)


def test_tracker_measures_the_drift_of_each_cell():
    tracker = ZeroTracker()
    pipe = ForcePipeline(CAL, PlateGeometry())
    estimates = [e for raw in empty_frames(400, drift_n=(2.0, -1.0, 0.5, 3.0))
                 if (e := tracker.update(raw, pipe.process(raw), CAL)) is not None]
    assert len(estimates) == 2  # one per 2 s window
    assert estimates[-1].drift_n == pytest.approx((2.0, -1.0, 0.5, 3.0), abs=0.05)
    assert estimates[-1].total_drift_n == pytest.approx(4.5, abs=0.1)


def test_no_zero_while_someone_stands_or_the_plate_moves():
    tracker = ZeroTracker()
    pipe = ForcePipeline(CAL, PlateGeometry())
    for raw in frames(400):
        assert tracker.update(raw, pipe.process(raw), CAL) is None
    wobbly = empty_frames(200, noise_counts=20_000.0)  # a bag sliding on the plate: several N of wobble
    assert all(tracker.update(raw, pipe.process(raw), CAL) is None for raw in wobbly)


def test_rezero_between_trials_but_never_during_one():
    live = make_live(rezero_threshold_n=0.5)
    live.trial_started()
    for raw in empty_frames(400, drift_n=(3.0, 3.0, 3.0, 3.0)):
        live.ingest(raw)
    assert live.rezeros == type(live.rezeros)()  # nothing during the trial
    assert live.latest().frame.fz_n == pytest.approx(12.0, abs=0.2)
    live.trial_ended()
    for raw in empty_frames(200, drift_n=(3.0, 3.0, 3.0, 3.0), start=400):
        live.ingest(raw)
    assert len(live.rezeros) == 1 and live.rezeros[0]["moved_n"] == pytest.approx([3.0] * 4, abs=0.05)
    assert live.latest().frame.fz_n == pytest.approx(0.0, abs=0.2)
    status = live.status()
    assert status["rezero_count"] == 1 and status["last_rezero_at"]
    assert status["zero_drift_total_n"] == pytest.approx(12.0, abs=0.2)  # since the calibration file
    assert status["warnings"] == []


def test_small_drift_is_left_alone():
    live = make_live(rezero_threshold_n=0.5)
    for raw in empty_frames(400, drift_n=(0.1, -0.1, 0.2, 0.0)):
        live.ingest(raw)
    assert not live.rezeros


def test_large_drift_is_a_warning():
    live = make_live(drift_warn_n=10.0)
    for raw in empty_frames(200, drift_n=(4.0, 4.0, 4.0, 4.0)):
        live.ingest(raw)
    assert any("zero has moved +16.0 N" in w for w in live.status()["warnings"])


def test_drift_beyond_the_empty_bound_looks_like_a_load_and_is_not_zeroed():
    """A zero that moved by more than EMPTY_N cannot be told from a bag on the plate: left alone."""
    live = make_live()
    for raw in empty_frames(400, drift_n=(10.0, 10.0, 10.0, 10.0)):
        live.ingest(raw)
    assert not live.rezeros and live.status()["zero_drift_n"] is None


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="window_s"):
        ZeroTracker(window_s=0)
