"""The live station: ingesting frames, latest state, subscribers, status."""

import math
import threading
import time

import numpy as np
import pytest

from calibration.model import simulator_calibration
from station.core.cop import split_load
from station.core.frames import RawFrame
from station.core.geometry import PlateGeometry
from station.live.pipeline import LiveStation
from station.signal.forces import ForcePipeline
from tests.doubles import ListFeed

CAL = simulator_calibration()


def frames(n, *, fz_n=700.0, x_mm=20.0, y_mm=-10.0, start=0):
    forces = split_load(fz_n, x_mm, y_mm, ml_mm=400, ap_mm=300)
    counts = tuple(CAL.to_counts(forces))
    return [RawFrame(seq=i, t_s=i / 80, counts=counts) for i in range(start, start + n)]


def make_live(feed=None):
    feed = feed or ListFeed()
    return LiveStation(feed, ForcePipeline(CAL, PlateGeometry())), feed


def test_latest_sample_and_body_weight():
    live, _ = make_live()
    assert live.latest() is None
    for raw in frames(100):
        live.ingest(raw)
    sample = live.latest()
    assert sample.occupied
    assert sample.body_weight_n == pytest.approx(700.0)
    assert (sample.cop_ml_mm, sample.cop_ap_mm) == pytest.approx((20.0, -10.0))  # display filter settled
    assert len(live.trail()) == 100 and live.trail()[-1] == pytest.approx((20.0, -10.0))


def test_stepping_off_clears_the_cop():
    live, _ = make_live()
    for raw in frames(20) + frames(5, fz_n=10.0, start=20):
        live.ingest(raw)
    sample = live.latest()
    assert not sample.occupied and math.isnan(sample.cop_ml_mm)
    assert live.status()["body_weight_kg"] is None and live.status()["cop_ml_mm"] is None


def test_subscribers_get_every_frame_in_order_and_never_block():
    live, _ = make_live()
    sub = live.subscribe(maxlen=50)
    for raw in frames(80):
        live.ingest(raw)
    got = sub.get_all()
    assert [f.seq for f in got] == list(range(30, 80))
    assert sub.overflowed == 30
    live.unsubscribe(sub)
    live.ingest(frames(1, start=80)[0])
    assert sub.get_all() == []


def test_pump_thread_drains_the_feed():
    feed = ListFeed(frames(200))
    live, _ = make_live(feed)
    live.start()
    try:
        for _ in range(100):
            if live.frames_processed == 200:
                break
            live._stop.wait(0.01)
    finally:
        live.stop()
    assert live.frames_processed == 200


class ThreadNoteFeed(ListFeed):
    """A feed that notes which thread drained each frame (and can fail once asked to)."""

    def __init__(self, frames=None):
        super().__init__(frames)
        self.drained_by: list[str] = []
        self.fail = False

    def push(self, more):
        self.pending += more

    def frames(self, *, timeout_s=0.1, max_frames=10_000):
        if self.fail:
            raise OSError("the pipe broke")
        out = super().frames(timeout_s=timeout_s, max_frames=max_frames)
        self.drained_by += [threading.current_thread().name] * len(out)
        return out


def test_a_screen_that_pumps_takes_over_and_the_thread_resumes_when_it_stops():
    feed = ThreadNoteFeed()
    live, _ = make_live(feed)
    live.start()
    try:
        sub = live.subscribe()
        for _ in range(10):  # the screen starts pumping; the thread's own wait for frames ends meanwhile
            live.pump()
            time.sleep(0.01)
        for k in range(10):  # a screen at 100 frames/s: the frames are ingested in its thread, in order
            feed.push(frames(2, start=2 * k))
            assert live.pump() == 2
            time.sleep(0.01)
        assert feed.drained_by == ["MainThread"] * 20
        assert [f.seq for f in sub.get_all()] == list(range(20))
        feed.push(frames(5, start=20))  # the screen stalls (or closed): the thread drains within DRIVEN_S
        deadline = time.monotonic() + 2.0
        while live.frames_processed < 25 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert live.frames_processed == 25 and feed.drained_by[20:] == ["frame-pump"] * 5
        assert [f.seq for f in sub.get_all()] == list(range(20, 25))
    finally:
        live.stop()


def test_a_failing_pump_in_the_screen_is_reported_not_raised():
    feed = ThreadNoteFeed(frames(3))
    live, _ = make_live(feed)
    assert live.pump() == 3 and live.pump_alive
    feed.fail = True
    assert live.pump() == 0  # the screen goes on drawing; the station sees the error and restarts
    assert not live.pump_alive and "the pipe broke" in live.pump_error
    feed.fail = False
    feed.push(frames(1, start=3))
    assert live.pump() == 0 and live.frames_processed == 3  # nothing pumps after a failure


def test_status_reports_source_and_calibration():
    live, feed = make_live()
    for raw in frames(10):
        live.ingest(raw)
    st = live.status()
    assert st["plate_source"] == "simulated" and st["synthetic"] is True
    assert st["sample_rate_hz"] == 80.0
    assert st["fz_n"] == pytest.approx(700.0) and st["cop_ml_mm"] == pytest.approx(20.0)
    assert st["calibration_source"] == "builtin:simulator"
    assert st["calibration_date"] is None and st["calibration_age_days"] is None  # built in: no made-up date or age
    assert st["warnings"] == []


def test_status_warns_about_an_uncalibrated_real_plate():
    live, feed = make_live(ListFeed(kind="hx711-lgpio", description="HX711 plate"))
    assert any("not calibrated" in w for w in live.status()["warnings"])
    feed.error = "hx711-lgpio: board fl (GPIO 17) did not answer"
    assert any("board fl" in w for w in live.status()["warnings"])


def test_commands_reach_the_source():
    live, feed = make_live()
    live.command("lean_to", x_mm=30.0, y_mm=0.0)
    assert feed.commands == [("lean_to", {"x_mm": 30.0, "y_mm": 0.0})]


def test_status_is_json_clean():
    import json

    live, _ = make_live()
    for raw in frames(5, fz_n=0.0):
        live.ingest(raw)
    json.dumps(live.status(), allow_nan=False)
    np.testing.assert_equal(live.status()["cop_ml_mm"], None)
