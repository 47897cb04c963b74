"""The chip-model plate in the acquisition process: the real HX711 backend clocks four chip models there."""

from __future__ import annotations

import os
import sys
import time

import pytest

from station.live.acquisition import AcquisitionProcess, SourceSpec


def cpu_s(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["lgpio", "rpigpio"])
def test_80_frames_per_second_from_the_backend_in_the_child_and_no_fake_in_this_process(backend):
    acq = AcquisitionProcess(SourceSpec("chip-model", {"backend": backend, "seed": 2, "realtime_priority": True}))
    info = acq.start()
    try:
        assert info["kind"] == "chip-model" and info["nominal_rate_hz"] == 80.0
        assert ("shared clock (lgpio" if backend == "lgpio" else "hx711 package on RPi.GPIO") in info["description"]
        frames = []
        t_warm = time.monotonic() + 1.0
        while time.monotonic() < t_warm:
            frames.extend(acq.frames(timeout_s=0.2))
        cpu0, t0 = cpu_s(acq.pid), time.monotonic()
        while time.monotonic() - t0 < 6.0:
            frames.extend(acq.frames(timeout_s=0.2))
        cpu_pct = 100 * (cpu_s(acq.pid) - cpu0) / (time.monotonic() - t0)
        rate_hz = acq.rate_hz()
    finally:
        acq.stop()
    print(f"\nchip-model ({backend}) in the acquisition process: {rate_hz:.2f} frames/s over the last 400 frames, "
          f"{cpu_pct:.1f} % of a core, dropped {acq.stats.dropped_frames}, discarded reads "
          f"{acq.stats.source.get('dropped')}")
    assert "lgpio" not in sys.modules and "RPi.GPIO" not in sys.modules, "the fakes were installed in the child only"
    assert acq.stats.faults == 0 and not acq.error
    assert acq.stats.source["dropped"] == 0, "a paced clock pulse never runs long"
    assert rate_hz >= 79.5
    t = [f.t_s for f in frames]
    assert all(b > a for a, b in zip(t, t[1:]))
    assert 0 <= time.monotonic() - t[-1] < 5.0, "stamped on the shared monotonic clock"


def test_a_bad_fault_setting_is_the_childs_error_message():
    acq = AcquisitionProcess(SourceSpec("chip-model", {"fault": "fr:melted"}))
    with pytest.raises(Exception, match="chip-model: chip_fault must be"):
        acq.start()
    assert not acq.alive
