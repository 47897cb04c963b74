"""Issue 14: the station starts the pelvis sensor from the ``[pelvis]`` settings section (off without it)."""

from __future__ import annotations

import math
import time

import pytest

from hardware.imu.source import PelvisSpec
from hardware.sim.pelvis import SimulatedPelvis
from station.commands.run import start_pelvis
from station.core.config import load_settings
from station.core.errors import UserError
from station.live.pelvis import SensorPelvis


def _settings(tmp_path, text: str):
    path = tmp_path / "station.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path)


def test_no_section_no_sensor(tmp_path):
    assert start_pelvis(_settings(tmp_path, "[simulator]\npatient = \"weak_abductors\"\n"), synthetic=True) is None


def test_the_simulated_plate_gets_the_simulated_sensor(tmp_path, capsys):
    for text in ("[pelvis]\n", "[pelvis]\nsensor = \"simulated\"\n"):
        pelvis = start_pelvis(_settings(tmp_path, text), synthetic=True)
        assert isinstance(pelvis, SimulatedPelvis) and pelvis.ready(0.0) and math.isfinite(pelvis.at(1.0))
    assert "pelvis sensor: simulated" in capsys.readouterr().err


def test_the_simulated_sensor_is_refused_on_a_real_plate(tmp_path):
    with pytest.raises(UserError, match="simulated plate"):
        start_pelvis(_settings(tmp_path, "[pelvis]\nsensor = \"simulated\"\n"), synthetic=False)


@pytest.mark.parametrize(("text", "key"), [("[pelvis]\naddress = 0x50\n", "pelvis.address"),
                                           ("[pelvis]\nodr_hz = 50\n", "pelvis.odr_hz"),
                                           ("[pelvis]\nright_axis = [0, 0, 0]\n", "pelvis.right_axis"),
                                           ("[pelvis]\nbaud = 9600\n", "pelvis.baud")])
def test_bad_settings_name_the_key(tmp_path, text, key):
    with pytest.raises(UserError, match=key.replace(".", r"\.")):
        _settings(tmp_path, text)


def test_the_real_sensor_runs_beside_the_plate_and_is_looked_up_at_frame_times():
    """The ICM-42688-P (the chip model on a fake smbus2, in the child process) polled by its own thread."""
    spec = PelvisSpec(driver={"bus": 1}, setup="hardware.fakes.smbus2:install_simulated_pelvis_sensor")
    pelvis = SensorPelvis(spec).start()
    try:
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline and not math.isfinite(pelvis.latest()):
            time.sleep(0.05)  # the mounting calibration takes 2 s of stillness: the model sways slowly
        now = time.monotonic()  # a frame's time: its sample arrives a little later (the child batches its reads)
        while time.monotonic() < deadline + 10.0 and not pelvis.ready(now):
            time.sleep(0.05)
        assert pelvis.ready(now)
        assert math.isfinite(pelvis.at(now)) and abs(pelvis.at(now)) < 3.0
        assert not pelvis.ready(time.monotonic() + 5.0)  # a frame from the future: its sample is not there yet
        assert pelvis.fault is None
    finally:
        pelvis.stop()
