"""`balance-station analyze` run as a real program (DESIGN.md section 5)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from station.core.cop import split_load
from station.core.geometry import PlateGeometry
from station.core.recording import Recording, write_recording
from tests.paths import BDS_DIR

BDS_TRIALS = ["BDS00001", "BDS00004", "BDS00007", "BDS00010"]
SEED = 20261121

_SCRIPT = Path(sys.executable).with_name("balance-station")
#: The installed console script when there is one, else the module (the same main()).
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "station.commands.cli"]


def run(*args: str | Path, command: list[str] = COMMAND) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, "analyze", *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


def sway_recording(duration_s: float, *, fs_hz: float = 80.0, fz_n: float = 700.0) -> Recording:
    rng = np.random.default_rng(SEED)
    t = np.arange(int(round(duration_s * fs_hz))) / fs_hz
    x = 3 * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 6)) + 0.2 * np.sin(2 * np.pi * 1.1 * t)
    y = 5 * np.sin(2 * np.pi * 0.2 * t + rng.uniform(0, 6))
    forces = split_load(np.full_like(t, fz_n), x, y, ml_mm=400.0, ap_mm=300.0)
    return Recording(t_s=t, forces_n=forces, sample_rate_hz=fs_hz, geometry=PlateGeometry())


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    assert proc.returncode != 0
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# -- good input ------------------------------------------------------------------------------------


def test_prints_one_json_object(tmp_path):
    path = tmp_path / "quiet.csv"
    write_recording(path, sway_recording(30.0))
    proc = run(path, "--protocol", "quiet-stance", "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert proc.stdout.count("\n") == 1
    out = json.loads(proc.stdout)
    assert isinstance(out, dict)
    assert out["protocol"] == "quiet-stance" and out["stance_side"] is None
    assert out["n_samples"] == 2400 and out["lowpass_hz"] == 10.0
    assert "NaN" not in proc.stdout
    assert set(out["cop"]) == {
        "path_length_mm", "mean_velocity_mm_s", "ml_range_mm", "ap_range_mm", "ml_rms_mm", "ap_rms_mm",
        "ellipse95_area_mm2",
    }


def test_module_entry_point_gives_the_same_answer(tmp_path):
    path = tmp_path / "quiet.csv"
    write_recording(path, sway_recording(10.0))
    a = run(path, "--protocol", "quiet-stance", "--stance-side", "left", "--lowpass-hz", "6", "--json")
    b = run(path, "--protocol", "quiet-stance", "--stance-side", "left", "--lowpass-hz", "6", "--json",
            command=[sys.executable, "-m", "station.commands.cli"])
    assert a.returncode == b.returncode == 0
    assert json.loads(a.stdout) == json.loads(b.stdout)
    out = json.loads(a.stdout)
    assert out["stance_side"] == "left" and out["lowpass_hz"] == 6.0
    assert any(w.startswith("short trial: 10.00 s") for w in out["warnings"])


@pytest.mark.parametrize("trial", BDS_TRIALS)
def test_bds_trials_match_the_published_values(trial, record_property):
    reference = json.loads((BDS_DIR / "reference.json").read_text(encoding="utf-8"))[trial]
    proc = run(BDS_DIR / f"{trial}.csv", "--protocol", "quiet-stance", "--lowpass-hz", "off", "--json")
    assert proc.returncode == 0, proc.stderr
    cop = json.loads(proc.stdout)["cop"]
    for key in ("ellipse95_area_mm2", "mean_velocity_mm_s"):
        rel = cop[key] / reference[key] - 1
        record_property(f"{key}_relative_error", rel)
        assert abs(rel) < 0.005, f"{trial} {key}: relative error {rel:+.2e}"


# -- bad input: non-zero exit, one line on stderr naming the file, the line and the problem ----------

HEAD = "# balance-station recording v1\n# sample_rate_hz: 80\n# plate_ml_mm: 400\n# plate_ap_mm: 300\n"
COLS = "t_s,fl_n,fr_n,bl_n,br_n\n"
ROWS = "".join(f"{i / 80:.4f},170,171,172,173\n" for i in range(3))

BAD_FILES = {
    # name: (bytes, words expected in the message after the file name)
    "empty": (b"", [": empty file"]),
    "not_utf8": ((HEAD + "# patient: Ren").encode() + b"\xe9\n" + (COLS + ROWS).encode(), [":5: not UTF-8"]),
    "no_header": (HEAD.encode(), [":4: no header row"]),
    "missing_key": ((HEAD.replace("# plate_ap_mm: 300\n", "") + COLS + ROWS).encode(),
                    [":4: missing required metadata key 'plate_ap_mm'"]),
    "bad_rate": ((HEAD.replace(": 80", ": 5") + COLS + ROWS).encode(), [":2: sample_rate_hz 5 is outside 10..1000 Hz"]),
    "missing_column": ((HEAD + "t_s,fl_n,fr_n,bl_n\n0,1,1,1\n").encode(), [":5: missing required column br_n"]),
    "non_numeric": ((HEAD + COLS + ROWS + "0.0375,170,abc,172,173\n").encode(),
                    [":9: column fr_n: 'abc' is not a number"]),
    "wrong_fields": ((HEAD + COLS + ROWS + "0.0375,170,171,172\n").encode(), [":9: expected 5 fields"]),
    "not_increasing": ((HEAD + COLS + ROWS + "0.0250,170,171,172,173\n").encode(), [":9: t_s 0.0250 is not after"]),
    "too_few": ((HEAD + COLS + "0,1,1,1,1\n").encode(), [":6: too few samples"]),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_malformed_files(tmp_path, case):
    content, words = BAD_FILES[case]
    path = tmp_path / f"{case}.csv"
    path.write_bytes(content)
    line = assert_one_line_error(run(path, "--protocol", "quiet-stance", "--json"), str(path), *words)
    assert line.startswith("balance-station: ")


def test_missing_file(tmp_path):
    path = tmp_path / "no-such-trial.csv"
    assert_one_line_error(run(path, "--protocol", "quiet-stance", "--json"), f"{path}: no such file")


def test_too_short(tmp_path):
    path = tmp_path / "short.csv"
    write_recording(path, sway_recording(3.0))
    assert_one_line_error(run(path, "--protocol", "quiet-stance", "--json"), f"{path}: trial too short: 3.00 s")


def test_nobody_on_the_plate(tmp_path):
    path = tmp_path / "empty-plate.csv"
    write_recording(path, sway_recording(30.0, fz_n=2.0))
    assert_one_line_error(run(path, "--protocol", "quiet-stance", "--json"), f"{path}: nobody on the plate")


def test_stepping_off(tmp_path):
    rec = sway_recording(30.0)
    forces = rec.forces_n.copy()
    forces[800:900] = 0.0
    path = tmp_path / "step-off.csv"
    write_recording(path, Recording(t_s=rec.t_s, forces_n=forces, sample_rate_hz=80.0, geometry=rec.geometry))
    assert_one_line_error(run(path, "--protocol", "quiet-stance", "--json"),
                          f"{path}: nobody on the plate at t = 10.000 s")


def test_single_leg_without_a_lift(tmp_path):
    # quiet two-foot stance only (single-leg recordings: tests/station/commands/test_analyze_single_leg.py)
    path = tmp_path / "sl.csv"
    write_recording(path, sway_recording(30.0))
    assert_one_line_error(
        run(path, "--protocol", "single-leg", "--stance-side", "right", "--json"),
        str(path), "no lift-off of the left foot",
    )


def test_lowpass_above_nyquist(tmp_path):
    path = tmp_path / "q.csv"
    write_recording(path, sway_recording(30.0))
    assert_one_line_error(run(path, "--protocol", "quiet-stance", "--lowpass-hz", "45", "--json"), str(path), "45 Hz")


def test_bad_option_is_one_line():
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "station.commands.cli", "analyze", "x.csv", "--protocol", "quiet-stance",
         "--lowpass-hz", "abc"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--lowpass-hz" in lines[0] and "'abc'" in lines[0]
