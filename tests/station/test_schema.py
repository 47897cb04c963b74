"""Schema versions: a new database, an upgrade that keeps everything (after a backup), refusals."""

import sqlite3

import numpy as np
import pytest
from sqlalchemy import inspect

from station.geometry import PlateGeometry
from station.storage import SchemaError, TrialWriter, create_patient, open_database, open_visit, trial_recording
from station.storage.db import create_db_engine, default_database_url
from station.storage.schema import (
    BASE_VERSION,
    Upgrade,
    check_schema,
    current_version,
    ensure_schema,
    latest_version,
)


def add_room(connection):
    """The dummy v2 step: a new column with a default, filled in for the existing trials."""
    connection.exec_driver_sql("ALTER TABLE trials ADD COLUMN room VARCHAR(40) NOT NULL DEFAULT ''")
    connection.exec_driver_sql("UPDATE trials SET room = 'gym'")


V2 = [Upgrade(2, "trials get a room", add_room)]


@pytest.fixture
def v1_database(tmp_path):
    """A version-1 database with a patient, a visit and a trial of 100 frames, closed."""
    data = tmp_path / "data"
    db = open_database(data_dir=data)
    with db.sessions() as s:
        create_patient(s, "P-001", birth_year=1950)
        visit = open_visit(s, "P-001")
    w = TrialWriter.start(db.sessions, session_id=visit.id, protocol="single-leg", stance_side="left",
                          sample_rate_hz=80, geometry=PlateGeometry())
    w.add_many((i / 80, [100.0 + i, 101.0, 102.0, 103.0]) for i in range(100))
    w.finish("complete", {"hold_time_s": 30.0})
    with db.sessions() as s:
        before = trial_recording(s, w.trial_id)
    db.close()
    return data / "station.db", w.trial_id, before


def rows(path, sql):
    with sqlite3.connect(path) as raw:
        return raw.execute(sql).fetchall()


def test_a_new_database_is_created_at_the_latest_version(tmp_path):
    engine = create_db_engine(default_database_url(tmp_path))
    try:
        report = ensure_schema(engine)
        assert report.created and report.version == latest_version() == BASE_VERSION
        with engine.connect() as c:
            assert current_version(c) == latest_version()
            assert {"patients", "sessions", "trials", "frame_blocks", "schema_version"} <= set(
                inspect(c).get_table_names())
        again = ensure_schema(engine)  # opening a current database does nothing
        assert not again.created and not again.upgraded and again.backup_path is None
        assert check_schema(engine) == latest_version()
    finally:
        engine.dispose()
    assert rows(tmp_path / "station.db", "SELECT version, description FROM schema_version") == [(1, "created")]
    assert list(tmp_path.glob("*backup*")) == []


def test_an_upgrade_keeps_every_row_and_backs_the_file_up_first(v1_database):
    path, trial_id, before = v1_database
    engine = create_db_engine(default_database_url(path.parent))
    try:
        report = ensure_schema(engine, upgrades=V2)
    finally:
        engine.dispose()
    assert (report.from_version, report.version, report.applied) == (1, 2, ["v2: trials get a room"])
    # upgraded: version 2 recorded after version 1, the new column filled, nothing else changed
    assert [r[0] for r in rows(path, "SELECT version FROM schema_version ORDER BY version")] == [1, 2]
    assert rows(path, "SELECT id, room, state FROM trials") == [(trial_id, "gym", "complete")]
    assert rows(path, "SELECT code, birth_year FROM patients") == [("P-001", 1950)]
    assert rows(path, "SELECT COUNT(*), SUM(n_frames) FROM frame_blocks") == [(1, 100)]
    engine = create_db_engine(default_database_url(path.parent))
    try:
        from sqlalchemy.orm import Session

        with Session(engine) as s:
            after = trial_recording(s, trial_id)
    finally:
        engine.dispose()
    assert np.array_equal(after.t_s, before.t_s) and np.array_equal(after.forces_n, before.forces_n)
    # the backup: beside the database, still version 1, with the same data (the WAL's content included)
    backup = report.backup_path
    assert backup is not None and backup.parent == path.parent
    assert backup.name.startswith("station-v1-backup-") and backup.suffix == ".db"
    assert rows(backup, "SELECT MAX(version) FROM schema_version") == [(1,)]
    assert rows(backup, "SELECT code FROM patients") == [("P-001",)]
    assert rows(backup, "SELECT SUM(n_frames) FROM frame_blocks") == [(100,)]
    assert "room" not in [r[1] for r in rows(backup, "PRAGMA table_info(trials)")]


def test_a_failing_step_leaves_the_database_as_it_was(v1_database):
    path, trial_id, _ = v1_database

    def broken(connection):
        connection.exec_driver_sql("ALTER TABLE trials ADD COLUMN room VARCHAR(40)")  # DDL, rolled back too
        connection.exec_driver_sql("UPDATE no_such_table SET x = 1")

    engine = create_db_engine(default_database_url(path.parent))
    try:
        with pytest.raises(SchemaError) as caught:
            ensure_schema(engine, upgrades=[Upgrade(2, "rooms", broken)])
    finally:
        engine.dispose()
    message = str(caught.value)
    assert "upgrade to schema version 2 (rooms) failed" in message and "no_such_table" in message
    assert "left at version 1" in message and "station-v1-backup-" in message
    assert rows(path, "SELECT MAX(version) FROM schema_version") == [(1,)]
    assert "room" not in [r[1] for r in rows(path, "PRAGMA table_info(trials)")]
    assert rows(path, "SELECT COUNT(*) FROM trials") == [(1,)]


@pytest.mark.parametrize(("step", "problem"), [
    (lambda c: c.exec_driver_sql("DROP TABLE frame_blocks"), "table frame_blocks would be gone"),
    (lambda c: c.exec_driver_sql("DELETE FROM frame_blocks"), "table frame_blocks would go from 1 to 0 rows"),
    (lambda c: c.exec_driver_sql("ALTER TABLE frame_blocks RENAME TO blocks"), "table frame_blocks would be gone"),
])
def test_an_upgrade_that_would_lose_data_is_refused_and_rolled_back(v1_database, step, problem):
    path, _, _ = v1_database
    engine = create_db_engine(default_database_url(path.parent))
    try:
        with pytest.raises(SchemaError, match="would lose data") as caught:
            ensure_schema(engine, upgrades=[Upgrade(2, "careless", step)])
    finally:
        engine.dispose()
    assert problem in str(caught.value) and "rolled back" in str(caught.value)
    assert rows(path, "SELECT MAX(version) FROM schema_version") == [(1,)]
    assert rows(path, "SELECT COUNT(*) FROM patients") == [(1,)]
    assert rows(path, "SELECT SUM(n_frames) FROM frame_blocks") == [(100,)]


def rebuild_trials(connection):
    """SQLite's way to change a table beyond ADD COLUMN: create the new one, copy, drop the old, rename."""
    (create,) = connection.exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 'trials'").one()
    indexes = [r[0] for r in connection.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'trials' AND sql IS NOT NULL")]
    new = create.replace("CREATE TABLE trials", "CREATE TABLE trials_new", 1)
    new = new.replace("CONSTRAINT pk_trials", "room VARCHAR(40) NOT NULL, CONSTRAINT pk_trials", 1)  # no default
    connection.exec_driver_sql(new)
    columns = ", ".join(r[1] for r in connection.exec_driver_sql("PRAGMA table_info(trials)"))
    connection.exec_driver_sql(f"INSERT INTO trials_new ({columns}, room) SELECT {columns}, 'gym' FROM trials")
    connection.exec_driver_sql("DROP TABLE trials")  # with foreign keys on, this would empty frame_blocks
    connection.exec_driver_sql("ALTER TABLE trials_new RENAME TO trials")
    for sql in indexes:
        connection.exec_driver_sql(sql)


def test_a_table_rebuild_keeps_the_rows_that_point_at_it(v1_database):
    path, trial_id, _ = v1_database
    engine = create_db_engine(default_database_url(path.parent))
    try:
        assert ensure_schema(engine, upgrades=[Upgrade(2, "rebuild trials", rebuild_trials)]).version == 2
        with engine.connect() as c:  # foreign keys are back on for the connections after the upgrade
            assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()
    assert rows(path, "SELECT id, room FROM trials") == [(trial_id, "gym")]
    assert rows(path, "SELECT trial_id, n_frames FROM frame_blocks") == [(trial_id, 100)]
    assert rows(path, "PRAGMA foreign_key_check") == []


def test_an_upgrade_that_leaves_dangling_references_is_refused(v1_database):
    path, _, _ = v1_database
    step = Upgrade(2, "orphans", lambda c: c.exec_driver_sql("UPDATE frame_blocks SET trial_id = 999"))
    engine = create_db_engine(default_database_url(path.parent))
    try:
        with pytest.raises(SchemaError, match="1 row\\(s\\) pointing at missing rows \\(first in table frame_blocks\\)"):
            ensure_schema(engine, upgrades=[step])
    finally:
        engine.dispose()
    assert rows(path, "SELECT MAX(version) FROM schema_version") == [(1,)]
    assert rows(path, "SELECT trial_id FROM frame_blocks") == [(1,)]


def test_a_declared_rename_is_not_a_loss(v1_database):
    path, _, _ = v1_database
    rename = Upgrade(2, "rename blocks", lambda c: c.exec_driver_sql("ALTER TABLE frame_blocks RENAME TO blocks"),
                     renamed_tables={"frame_blocks": "blocks"})
    engine = create_db_engine(default_database_url(path.parent))
    try:
        assert ensure_schema(engine, upgrades=[rename]).version == 2
    finally:
        engine.dispose()
    assert rows(path, "SELECT SUM(n_frames) FROM blocks") == [(100,)]


def test_a_database_from_a_newer_program_is_refused_untouched(v1_database):
    path, _, _ = v1_database
    with sqlite3.connect(path) as raw:
        raw.execute("INSERT INTO schema_version (version, applied_at, description) "
                    "VALUES (7, '2030-01-01 00:00:00', 'from the future')")
    before = path.read_bytes()
    with pytest.raises(SchemaError) as caught:
        open_database(data_dir=path.parent)
    assert str(caught.value) == (
        f"{path}: the database is at schema version 7, newer than this program's {latest_version()}: "
        "update the software (the database was left untouched)"
    )
    assert path.read_bytes() == before and list(path.parent.glob("*backup*")) == []
    with pytest.raises(SchemaError, match="version 7, newer than this program's 2"):
        ensure_schema(create_db_engine(default_database_url(path.parent)), upgrades=V2)


def test_a_foreign_database_is_refused_untouched(tmp_path):
    path = tmp_path / "station.db"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    with pytest.raises(SchemaError, match="has tables \\(invoices\\) but no schema_version table: "
                                          "not a balance-station database"):
        open_database(data_dir=tmp_path)
    assert rows(path, "SELECT name FROM sqlite_master WHERE type = 'table'") == [("invoices",)]


def test_opening_without_upgrading_only_checks(v1_database):
    path, _, _ = v1_database
    engine = create_db_engine(default_database_url(path.parent))
    try:
        assert check_schema(engine) == 1
        with pytest.raises(SchemaError, match="schema version 1 needs upgrading to 2"):
            check_schema(engine, upgrades=V2)
    finally:
        engine.dispose()
    db = open_database(data_dir=path.parent, upgrade=False)
    db.close()


def test_upgrade_steps_must_be_consecutive():
    with pytest.raises(ValueError, match=r"versions \[2, 3\] in order, got \[2, 4\]"):
        latest_version([Upgrade(2, "a", add_room), Upgrade(4, "b", add_room)])
