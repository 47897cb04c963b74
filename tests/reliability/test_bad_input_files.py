"""Findings 9 and 11: a calibration file or a recording with garbage or absurd values gives one line, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from calibration.model import Calibration, CalibrationError, simulator_calibration

REPO = Path(__file__).resolve().parents[2]


def _builtin_doc() -> dict:
    return simulator_calibration().to_dict()


def _calibration_file(tmp_path: Path, **changes) -> Path:
    doc = _builtin_doc()
    doc.update(changes)
    p = tmp_path / "calibration.json"
    p.write_text(json.dumps(doc))
    return p


def test_binary_garbage_is_one_line_not_a_traceback(tmp_path):
    p = tmp_path / "calibration.json"
    p.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(CalibrationError) as info:
        Calibration.load(p)
    assert "\n" not in str(info.value) and str(p) in str(info.value)


@pytest.mark.parametrize("gains", [[1e300, 2.3e-4, 2.3e-4, 2.3e-4], [2.3e-4, 1e-30, 2.3e-4, 2.3e-4],
                                   [2.3e-4, 2.3e-4, -50.0, 2.3e-4]])
def test_gains_no_load_cell_could_have_are_refused(tmp_path, gains):
    with pytest.raises(CalibrationError, match="gains_n_per_count"):
        Calibration.load(_calibration_file(tmp_path, gains_n_per_count=gains))


def test_an_offset_outside_the_24_bit_range_is_refused(tmp_path):
    with pytest.raises(CalibrationError, match="offsets_counts"):
        Calibration.load(_calibration_file(tmp_path, offsets_counts=[1e12, 0, 0, 0]))


def test_the_built_in_and_reversed_cells_still_load(tmp_path):
    Calibration.load(_calibration_file(tmp_path))
    Calibration.load(_calibration_file(tmp_path, gains_n_per_count=[-2.3e-4, 2.3e-4, 2.3e-4, 2.3e-4]))




# -- finding 11: analyze ----------------------------------------------------------------------------------

HEADER = ("# balance-station recording v1\n# sample_rate_hz: 80\n# plate_ml_mm: 400\n# plate_ap_mm: 300\n"
          "t_s,fl_n,fr_n,bl_n,br_n\n")


def _quiet_rows(n: int, *, override: dict[int, str] | None = None) -> str:
    lines = []
    for i in range(n):
        lines.append(override.get(i) if override and i in override else
                     f"{i / 80:.4f},{171.2 + (i % 5) * 0.1:.1f},168.9,170.4,172.0")
    return "\n".join(lines) + "\n"


def _analyze(path: Path, *, timeout_s: float = 60.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "station.commands.cli", "analyze", str(path), "--protocol",
                           "quiet-stance",
                           "--json"], capture_output=True, text=True, timeout=timeout_s)


@pytest.mark.parametrize("bad,expected", [
    ("1.0000,1e308,168.9,170.4,172.0", "fl_n"),
    ("1.0000,171.0,1e30,170.4,172.0", "fr_n"),
    ("1.0000,6_0.1,168.9,170.4,172.0", "fl_n"),
    ("1.0000,171.0,168.9,-1e300,172.0", "bl_n"),
])
def test_analyze_refuses_absurd_values_in_one_line(tmp_path, bad, expected):
    p = tmp_path / "rec.csv"
    p.write_text(HEADER + _quiet_rows(2400, override={80: bad}))
    done = _analyze(p)
    print(f"\n{done.stderr.strip()}")
    assert done.returncode != 0 and done.stdout == ""
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert f"{p}:{HEADER.count(chr(10)) + 81}" in done.stderr and expected in done.stderr


@pytest.mark.parametrize("last_t", ["1e300", "1e9"])
def test_analyze_of_an_absurd_time_span_is_one_line_and_bounded(tmp_path, last_t):
    p = tmp_path / "rec.csv"
    p.write_text(HEADER + _quiet_rows(2400, override={2399: f"{last_t},171.0,168.9,170.4,172.0"}))
    done = _analyze(p, timeout_s=60)
    print(f"\n{done.stderr.strip()}")
    assert done.returncode != 0 and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_analyze_of_dev_zero_is_one_line_and_bounded(tmp_path):
    done = _analyze(Path("/dev/zero"), timeout_s=30)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "too large" in done.stderr


def test_a_huge_recording_is_refused_before_it_is_parsed(tmp_path):
    import resource

    from station.core.recording import MAX_FILE_BYTES, RecordingError, read_recording

    p = tmp_path / "huge.csv"
    row = "0.0000,171.2,168.9,170.4,172.0\n"
    with p.open("w") as f:
        f.write(HEADER)
        f.write(row * (MAX_FILE_BYTES // len(row) + 10))
    before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(RecordingError, match="too large"):
        read_recording(p)
    grew_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_kb) / 1024
    assert grew_mb < 2 * MAX_FILE_BYTES / (1 << 20) + 10


def test_a_recording_at_the_sample_limit_stays_within_its_stated_memory(tmp_path):
    """400,000 samples (the limit) read in a child process: peak memory well under the 1.7 GB the issue saw."""
    from station.core.recording import MAX_SAMPLES

    p = tmp_path / "long.csv"
    with p.open("w") as f:
        f.write(HEADER.replace("sample_rate_hz: 80", "sample_rate_hz: 1000"))
        for i in range(MAX_SAMPLES):
            f.write(f"{i / 1000:.3f},171.2,168.9,170.4,172.0\n")
    code = ("import resource, sys; from station.core.recording import read_recording; r = read_recording(sys.argv[1]); "
            "print(r.n_samples, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)")
    done = subprocess.run([sys.executable, "-c", code, str(p)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    n, peak_mb = map(int, done.stdout.split())
    print(f"\n{n} samples read, peak RSS {peak_mb} MB")
    assert n == MAX_SAMPLES and peak_mb < 500


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, "gains"])
def test_the_station_refuses_a_bad_calibration_file_in_one_line(tmp_path, content):
    """Binary garbage or gains of 1e300: the station says so in one line instead of a traceback or 3e306 N."""
    from tests.reliability.served import free_port

    data = tmp_path / "data"
    data.mkdir()
    if content == "gains":
        doc = _builtin_doc()
        doc["gains_n_per_count"] = [1e300, 1e300, 1e300, 1e300]
        doc["backend"] = "hx711"
        (data / "calibration.json").write_text(json.dumps(doc))
    else:
        (data / "calibration.json").write_bytes(content)
    config = tmp_path / "station.toml"
    config.write_text('[hx711]\nbackend = "lgpio"\n', encoding="utf-8")  # a configured (absent) real plate
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    done = subprocess.run([sys.executable, "-m", "station.commands.cli", "--data-dir", str(data), "--config",
                           str(config),
                           "--no-screen", "--port", str(free_port())], capture_output=True, text=True, timeout=60,
                          env=env)
    err = done.stderr
    print(f"\n{err.strip().splitlines()[-1] if err.strip() else ''}")
    assert "Traceback" not in err
    assert done.returncode != 0 and "calibration.json" in err.strip().splitlines()[-1]
