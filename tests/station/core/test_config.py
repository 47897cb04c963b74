"""Settings: defaults, the TOML file, environment overrides, and clear errors."""

from pathlib import Path

import pytest

from station.core.config import load_settings
from station.core.errors import UserError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_run_the_simulator_locally():
    s = load_settings()
    assert s.plate_source == "auto" and s.hx711 is None
    assert (s.web.host, s.web.port) == ("127.0.0.1", 8000)
    assert s.plate.geometry().ml_mm == 400
    assert s.calibration_path == s.data_dir / "calibration.json"
    assert s.config_file is None


def test_file_then_environment_then_options(tmp_path, monkeypatch):
    path = write(tmp_path, '[hx711]\nbackend = "rpigpio"\n[web]\nport = 9000\nhost = "0.0.0.0"\n[plate]\nml_mm = 420\n')
    s = load_settings(path)
    assert s.hx711 is not None and s.hx711.backend == "rpigpio" and s.hx711.data_gpios == [17, 27, 22, 23]
    assert (s.web.host, s.web.port, s.plate.ml_mm) == ("0.0.0.0", 9000, 420)
    monkeypatch.setenv("BALANCE_STATION_WEB__PORT", "9100")
    assert load_settings(path).web.port == 9100
    assert load_settings(path, plate_source="simulated").plate_source == "simulated"


def test_config_found_through_the_environment(tmp_path, monkeypatch):
    path = write(tmp_path, 'station_id = "room-2"\n')
    monkeypatch.setenv("BALANCE_STATION_CONFIG", str(path))
    s = load_settings()
    assert s.station_id == "room-2" and s.config_file == path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[hx711]\ndata_gpios = [1, 2]\n", "hx711.data_gpios: .*4 different GPIO"),
        ("[plate]\nml_m = 3\n", "plate.ml_m: Extra inputs"),
        ("[web]\nport = 0\n", "web.port"),
        ("[plate\n", "not valid TOML"),
    ],
)
def test_bad_files_name_the_file_and_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(UserError, match=message) as info:
        load_settings(path)
    assert str(path) in str(info.value)


def test_missing_explicit_file(tmp_path):
    with pytest.raises(UserError, match="no such configuration file"):
        load_settings(tmp_path / "nope.toml")


def test_feet_wider_than_the_cells_is_refused(tmp_path):
    path = write(tmp_path, "[plate]\nml_mm = 300\nfeet_ml_mm = 350\n")
    with pytest.raises(UserError, match="feet_ml_mm .*must not exceed the cell spacing"):
        load_settings(path)


def test_common_options_work_before_and_after_the_command():
    from station.commands.cli import build_parser

    before = build_parser().parse_args(["--plate", "simulated", "--data-dir", "/d", "calibrate", "--yes"])
    after = build_parser().parse_args(["calibrate", "--yes", "--plate", "simulated", "--data-dir", "/d"])
    for args in (before, after):
        assert (args.plate, str(args.data_dir)) == ("simulated", "/d")
    plain = build_parser().parse_args(["analyze", "f.csv", "--protocol", "quiet-stance"])
    assert plain.plate is None and plain.data_dir is None and plain.config is None
