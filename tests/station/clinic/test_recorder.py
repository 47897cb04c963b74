"""Recording the live plate: every frame, readable back, flushed while it runs."""

import pytest

from calibration.model import simulator_calibration
from station.clinic.recorder import LiveRecorder
from station.core.geometry import PlateGeometry
from station.core.recording import read_recording
from station.live.pipeline import LiveStation
from station.signal.forces import ForcePipeline
from tests.doubles import ListFeed
from tests.station.live.test_pipeline import frames


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


def test_recording_is_on_disk_while_it_runs_and_blocks_rezero(tmp_path):
    import time

    live = LiveStation(ListFeed(), ForcePipeline(simulator_calibration(), PlateGeometry()))
    rec = LiveRecorder(live, tmp_path / "r.csv", geometry=PlateGeometry())
    assert live.trial_running
    for raw in frames(80):
        live.ingest(raw)
    deadline = time.monotonic() + 3.0
    rows = 0
    while time.monotonic() < deadline and rows < 80:
        time.sleep(0.1)
        rows = sum(1 for line in (tmp_path / "r.csv").read_text().splitlines() if line[:1].isdigit())
    assert rows == 80, "the recorder flushes at least once a second"
    rec.stop()
    assert not live.trial_running


def test_a_write_failure_is_reported_not_hidden(tmp_path, monkeypatch):
    live = LiveStation(ListFeed(), ForcePipeline(simulator_calibration(), PlateGeometry()))
    rec = LiveRecorder(live, tmp_path / "r.csv", geometry=PlateGeometry())

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rec._writer, "write_frame", full)
    for raw in frames(5):
        live.ingest(raw)
    with pytest.raises(OSError, match="r.csv: writing failed after 0 frames: No space left on device"):
        rec.stop()
