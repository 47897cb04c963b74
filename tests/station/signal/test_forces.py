"""Raw frames to force frames: calibration, COP, occupancy and the glitch guard."""

import math

import numpy as np
import pytest

from calibration.model import simulator_calibration
from station.core.cop import split_load
from station.core.frames import FrameFlag, RawFrame
from station.core.geometry import PlateGeometry
from station.signal.forces import ForcePipeline

GEOM = PlateGeometry()
CAL = simulator_calibration()


def raw(seq, forces_n, flags=FrameFlag.NONE):
    counts = CAL.to_counts(np.asarray(forces_n, dtype=float))
    return RawFrame(seq=seq, t_s=seq / 80, counts=tuple(counts), flags=flags)


def person(fz_n, x_mm, y_mm):
    return split_load(fz_n, x_mm, y_mm, ml_mm=GEOM.ml_mm, ap_mm=GEOM.ap_mm)


def test_cop_and_fz_from_counts():
    pipe = ForcePipeline(CAL, GEOM)
    frame = pipe.process(raw(0, person(700.0, 35.0, -20.0)))
    assert frame.fz_n == pytest.approx(700.0, abs=1e-6)
    assert frame.cop_ml_mm == pytest.approx(35.0, abs=1e-9)
    assert frame.cop_ap_mm == pytest.approx(-20.0, abs=1e-9)
    assert frame.mass_kg == pytest.approx(700.0 / 9.80665)
    assert frame.occupied and frame.flags == FrameFlag.NONE


def test_empty_plate_has_no_cop():
    pipe = ForcePipeline(CAL, GEOM, occupancy_n=100.0)
    frame = pipe.process(raw(0, person(60.0, 0.0, 0.0)))  # a bag on the plate, below the threshold
    assert math.isnan(frame.cop_ml_mm) and math.isnan(frame.cop_ap_mm)
    assert not frame.occupied


def test_single_frame_spike_never_reaches_the_cop():
    pipe = ForcePipeline(CAL, GEOM)
    steady = person(700.0, 10.0, 5.0)
    spiked = steady.copy()
    spiked[1] += 2 ** 20 * CAL.gains_n_per_count[1]  # bit 20 of the fr cell flipped: about +240 N
    frames = [pipe.process(raw(i, f)) for i, f in enumerate([steady, steady, spiked, steady, steady])]
    assert frames[2].flags & FrameFlag.GLITCH
    assert [f.cop_ml_mm for f in frames] == pytest.approx([10.0] * 5, abs=1e-6)
    assert pipe.glitch_frames == 1


def test_a_real_load_change_is_never_held():
    """A second person stepping on changes every cell at once: no bit error looks like that."""
    pipe = ForcePipeline(CAL, GEOM)
    before, after = person(700.0, 0.0, 0.0), person(1400.0, -90.0, 0.0)
    out = [pipe.process(raw(i, f)) for i, f in enumerate([before, before, after, after])]
    assert [f.cop_ml_mm for f in out] == pytest.approx([0.0, 0.0, -90.0, -90.0], abs=1e-6)
    assert pipe.glitch_frames == 0


def test_a_fast_ramp_is_followed_not_frozen():
    """A heavy, firm step-on: 120 N per cell per frame on all cells, tracked frame by frame."""
    pipe = ForcePipeline(CAL, GEOM)
    loads = [person(480.0 * k, 0.0, 0.0) for k in range(8)]  # +120 N per cell per frame
    out = [pipe.process(raw(i, f)) for i, f in enumerate(loads)]
    assert [f.fz_n for f in out] == pytest.approx([480.0 * k for k in range(8)], abs=1e-6)


def test_a_load_dropped_onto_one_corner_is_accepted_one_frame_late():
    pipe = ForcePipeline(CAL, GEOM)
    base = person(700.0, 0.0, 0.0)
    corner = base.copy()
    corner[0] += 200.0  # 20 kg dropped right above the front-left cell
    out = [pipe.process(raw(i, f)) for i, f in enumerate([base, base, corner, corner, corner])]
    assert out[2].fz_n == pytest.approx(700.0) and out[2].flags & FrameFlag.GLITCH  # suspect, held once
    assert [f.fz_n for f in out[3:]] == pytest.approx([900.0, 900.0])


@pytest.mark.parametrize("flag", [FrameFlag.SATURATED, FrameFlag.GLITCH])
def test_flagged_frames_are_held(flag):
    pipe = ForcePipeline(CAL, GEOM)
    good = person(700.0, 20.0, 0.0)
    pipe.process(raw(0, good))
    bad = pipe.process(raw(1, person(700.0, 150.0, 0.0), flags=flag))
    assert bad.cop_ml_mm == pytest.approx(20.0, abs=1e-6)
    assert bad.flags & FrameFlag.GLITCH
    assert pipe.glitch_frames == 1


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="occupancy_n"):
        ForcePipeline(CAL, GEOM, occupancy_n=0)
    with pytest.raises(ValueError, match="spike_n"):
        ForcePipeline(CAL, GEOM, spike_n=-1)


def test_every_simulated_bit_error_is_caught_and_none_is_invented():
    from hardware.sim.plate import SimulatedPlate

    plate = SimulatedPlate(seed=11, realtime=False, glitch_rate=1 / 40, duration_s=60.0)
    pipe = ForcePipeline(CAL, GEOM)
    worst_mm = 0.0
    with plate:
        for raw in plate:
            frame = pipe.process(raw)
            if raw.seq < 2:  # the first frame has nothing to be checked against
                continue
            worst_mm = max(worst_mm, abs(frame.cop_ml_mm - plate.truth.cop_ml_mm))
    assert plate.injected_glitches > 60
    assert pipe.glitch_frames == plate.injected_glitches
    assert worst_mm < 2.0  # a held frame lags the true COP by one frame of sway at most


def test_a_matrix_calibration_is_applied_live():
    """The 3x4 matrix (crosstalk absorbed) decides Fz and the COP, not the per-cell gains stored beside it."""
    import dataclasses

    g = np.asarray(CAL.gains_n_per_count)
    x = np.array([-200.0, 200.0, -200.0, 200.0])
    y = np.array([150.0, 150.0, -150.0, -150.0])
    matrix = np.vstack([g, g * x, g * y])
    matrix[1] += 5.0 * g  # crosstalk: every newton adds 5 N.mm to the ML moment, a 5 mm shift
    cal = dataclasses.replace(CAL, matrix=matrix.tolist())
    counts = CAL.to_counts(person(700.0, 30.0, -40.0))
    frame = ForcePipeline(cal, GEOM).process(RawFrame(seq=0, t_s=0.0, counts=tuple(counts)))
    fz, mx, my = matrix @ (counts - np.asarray(CAL.offsets_counts))
    assert frame.fz_n == pytest.approx(fz)
    assert (frame.cop_ml_mm, frame.cop_ap_mm) == pytest.approx((mx / fz, my / fz))
    assert (frame.cop_ml_mm, frame.cop_ap_mm) == pytest.approx((35.0, -40.0))
