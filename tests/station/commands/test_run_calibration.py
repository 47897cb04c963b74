"""The station loads the calibration file at start, says how old it is, and never applies a
real plate's calibration to the simulator."""

import dataclasses
import datetime as dt

import pytest

from calibration.model import Calibration, simulator_calibration
from station.commands.run import choose_calibration
from station.core.config import load_settings
from station.core.errors import UserError
from tests.doubles import ListFeed


def saved(tmp_path, *, age_days=1.0, backend="hx711-lgpio"):
    cal = dataclasses.replace(
        simulator_calibration(), backend=backend, source="", note="clinic calibration",
        created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=age_days),
    )
    cal.save(tmp_path / "calibration.json")
    return cal


def test_real_plate_loads_the_file(tmp_path, capsys):
    saved(tmp_path, age_days=3)
    cal = choose_calibration(load_settings(data_dir=tmp_path), ListFeed(kind="hx711-lgpio"))
    assert cal.source == str(tmp_path / "calibration.json") and cal.note == "clinic calibration"
    err = capsys.readouterr().err
    assert "3 days old" in err and "WARNING" not in err


def test_old_calibration_is_a_warning(tmp_path, capsys):
    saved(tmp_path, age_days=45)
    settings = load_settings(data_dir=tmp_path)
    choose_calibration(settings, ListFeed(kind="hx711-lgpio"))
    assert "WARNING: the calibration is older than 30 days" in capsys.readouterr().err


def test_simulator_keeps_its_builtin_calibration(tmp_path, capsys):
    saved(tmp_path)
    cal = choose_calibration(load_settings(data_dir=tmp_path), ListFeed(kind="simulated"))
    assert cal.source == "builtin:simulator"
    assert "was not made on this simulator" in capsys.readouterr().err


def test_broken_file_is_a_clear_message(tmp_path):
    (tmp_path / "calibration.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(UserError, match="calibration.json: line 1: not valid JSON"):
        choose_calibration(load_settings(data_dir=tmp_path), ListFeed(kind="hx711-lgpio"))


def test_missing_file_on_a_real_plate_zeroes_on_nominal_gains(tmp_path, capsys):
    from tests.station.signal.test_drift import empty_frames

    feed = ListFeed(empty_frames(100), kind="hx711-lgpio")
    cal = choose_calibration(load_settings(data_dir=tmp_path), feed)
    assert cal.source == "builtin:uncalibrated" and isinstance(cal, Calibration)
    assert cal.offsets_counts == pytest.approx(simulator_calibration().offsets_counts, abs=20)
    assert "no calibration file" in capsys.readouterr().err


def test_station_start_keeps_an_interrupted_trial_as_incomplete(tmp_path, capsys):
    from station.commands.run import recover_trials
    from station.core.geometry import PlateGeometry
    from station.storage import create_patient, get_trial, open_database, open_visit
    from station.storage.trials import TrialWriter

    settings = load_settings(data_dir=tmp_path)
    # opened as the station opens it: its trials carry its station id
    with open_database(data_dir=tmp_path, station_id=settings.station_id) as db:
        with db.sessions() as s:
            create_patient(s, "P-001")
            visit_id = open_visit(s, "P-001").id
        writer = TrialWriter.start(db.sessions, session_id=visit_id, protocol="single-leg", sample_rate_hz=80,
                                   geometry=PlateGeometry(), stance_side="left")
        writer.add_many([(i / 80, (170.0, 170.0, 170.0, 170.0)) for i in range(160)])
        writer.flush()  # and then the station is killed: no finish()
    assert recover_trials(settings) == [writer.trial_id]
    with open_database(data_dir=tmp_path) as db, db.sessions() as s:
        trial = get_trial(s, writer.trial_id)
        assert trial.state == "incomplete" and trial.n_frames == 160
    assert "kept as incomplete" in capsys.readouterr().err
