"""Recording the live plate: every frame, readable back, flushed while it runs."""

import pytest

from calibration.model import simulator_calibration
from station.forces import ForcePipeline
from station.geometry import PlateGeometry
from station.live import LiveStation
from station.recorder import LiveRecorder
from station.recording import read_recording
from tests.doubles import ListFeed
from tests.station.test_live import frames


def test_recorder_writes_every_frame_and_reads_back(tmp_path):
    live = LiveStation(ListFeed(), ForcePipeline(simulator_calibration(), PlateGeometry()))
    rec = LiveRecorder(live, tmp_path / "r.csv", geometry=PlateGeometry(), metadata={"patient": "P-001"})
    for raw in frames(400, fz_n=650.0, x_mm=12.0, y_mm=-8.0):
        live.ingest(raw)
    path = rec.stop()
    recording = read_recording(path)
    assert recording.n_samples == 400 == rec.frames_written
    assert recording.sample_rate_hz == 80
    assert recording.t_s[0] == 0.0 and recording.t_s[-1] == pytest.approx(399 / 80)
    assert recording.fz_n == pytest.approx([650.0] * 400, abs=1e-3)
    assert recording.metadata["patient"] == "P-001"
    assert recording.metadata["calibration"].startswith("builtin:simulator")
