"""Rows wait for the pelvis sensor's sample at their time (PelvisAligner): in order, rounded, late ones NaN."""

import math

from station.protocols.trial import PELVIS_WAIT_S, PelvisAligner


class Track:
    """A sensor whose samples have arrived up to ``until_s``; the obliquity is 0.1234567 deg times t."""

    def __init__(self):
        self.until_s = -1.0

    def ready(self, t_s):
        return self.until_s >= t_s

    def at(self, t_s):
        return 0.1234567 * t_s if self.ready(t_s) else math.nan


def test_rows_wait_for_their_sample_then_come_out_in_order_rounded():
    track = Track()
    aligner = PelvisAligner(track)
    assert aligner.push("a", 1.0) == [] and aligner.push("b", 1.0125) == [] and len(aligner) == 2
    track.until_s = 1.0  # the sample at 1.0 s is in, not the next one's
    assert aligner.drain() == [("a", 0.123)] and len(aligner) == 1
    track.until_s = 2.0
    assert aligner.push("c", 1.025) == [("b", 0.125), ("c", 0.127)] and len(aligner) == 0


def test_a_sample_that_never_comes_is_given_up_after_the_wait_and_at_the_end():
    aligner = PelvisAligner(Track())  # a sensor that fell silent
    assert aligner.push("a", 1.0) == []
    out = aligner.push("b", 1.0 + PELVIS_WAIT_S)  # a frame PELVIS_WAIT_S later: "a" is late
    assert [row for row, _ in out] == ["a"] and math.isnan(out[0][1])
    aligner.note_time(1.0 + 2 * PELVIS_WAIT_S)
    assert [row for row, _ in aligner.drain()] == ["b"]
    assert aligner.push("c", 2.0) == []
    (row, deg), = aligner.drain(force=True)  # the end of the recording
    assert row == "c" and math.isnan(deg)


def test_without_a_sensor_every_item_comes_out_at_once():
    aligner = PelvisAligner(None)
    assert aligner.push("a", 1.0) == [("a", None)] and len(aligner) == 0 and aligner.finish() == []


def test_at_the_end_the_last_samples_get_their_time_then_the_rest_goes():
    track = Track()
    aligner = PelvisAligner(track)
    aligner.push("a", 1.0)
    aligner.push("b", 1.0125)
    now = [0.0]

    def sleep(s):  # the sensor's sample for "a" arrives while the end waits; "b"'s never does
        now[0] += s
        track.until_s = 1.0

    out = aligner.finish(wait_s=0.05, clock=lambda: now[0], sleep=sleep)
    assert [(row, deg if row == "a" else None) for row, deg in out] == [("a", 0.123), ("b", None)]
    assert math.isnan(out[1][1]) and now[0] >= 0.05 and len(aligner) == 0
