"""Findings 9 and 11: a calibration file or a recording with garbage or absurd values gives one line, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from calibration.model import Calibration, CalibrationError

REPO = Path(__file__).resolve().parents[2]
SIM = REPO / "calibration" / "data" / "simulator.json"


def _calibration_file(tmp_path: Path, **changes) -> Path:
    doc = json.loads(SIM.read_text())
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
    Calibration.load(SIM)
    Calibration.load(_calibration_file(tmp_path, gains_n_per_count=[-2.3e-4, 2.3e-4, 2.3e-4, 2.3e-4]))


