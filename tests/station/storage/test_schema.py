"""Schema versions: a new database, an upgrade that keeps everything (after a backup), refusals."""

import sqlite3

import numpy as np
import pytest
from sqlalchemy import inspect

from station.core.geometry import PlateGeometry
from station.storage import SchemaError, TrialWriter, create_patient, open_database, open_visit, trial_recording
from station.storage.db import create_db_engine, default_database_url
from station.storage.schema import (
    BASE_VERSION,
    UPGRADES,
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


#: the schema of version 1, as the first release created it (frozen: the models have moved on since)
V1_DDL = """
CREATE TABLE patients (
	id INTEGER NOT NULL,
	code VARCHAR(32) NOT NULL,
	birth_year INTEGER,
	sex VARCHAR(20),
	height_cm FLOAT,
	affected_side VARCHAR(20),
	notes TEXT NOT NULL,
	created_at DATETIME NOT NULL,
	CONSTRAINT pk_patients PRIMARY KEY (id)
);
CREATE UNIQUE INDEX uq_patients_code_lower ON patients (lower(code));
CREATE TABLE schema_version (
	version INTEGER NOT NULL,
	applied_at DATETIME NOT NULL,
	description TEXT NOT NULL,
	CONSTRAINT pk_schema_version PRIMARY KEY (version)
);
CREATE TABLE sessions (
	id INTEGER NOT NULL,
	patient_id INTEGER NOT NULL,
	started_at DATETIME NOT NULL,
	clinician VARCHAR(64) NOT NULL,
	notes TEXT NOT NULL,
	CONSTRAINT pk_sessions PRIMARY KEY (id),
	CONSTRAINT fk_sessions_patient_id_patients FOREIGN KEY(patient_id) REFERENCES patients (id)
);
CREATE INDEX ix_sessions_patient_id ON sessions (patient_id);
CREATE TABLE trials (
	id INTEGER NOT NULL,
	session_id INTEGER NOT NULL,
	state VARCHAR(20) NOT NULL,
	state_detail TEXT NOT NULL,
	protocol VARCHAR(40) NOT NULL,
	stance_side VARCHAR(20),
	settings JSON NOT NULL,
	metrics JSON,
	grade VARCHAR(20) NOT NULL,
	notes TEXT NOT NULL,
	calibration JSON,
	started_at DATETIME NOT NULL,
	ended_at DATETIME,
	updated_at DATETIME NOT NULL,
	sample_rate_hz FLOAT NOT NULL,
	plate_ml_mm FLOAT NOT NULL,
	plate_ap_mm FLOAT NOT NULL,
	feet_ml_mm FLOAT NOT NULL,
	plate_source VARCHAR(40) NOT NULL,
	n_frames INTEGER NOT NULL,
	duration_s FLOAT NOT NULL,
	frames_dropped INTEGER NOT NULL,
	CONSTRAINT pk_trials PRIMARY KEY (id),
	CONSTRAINT fk_trials_session_id_sessions FOREIGN KEY(session_id) REFERENCES sessions (id)
);
CREATE INDEX ix_trials_session_id ON trials (session_id);
CREATE INDEX ix_trials_state ON trials (state);
CREATE INDEX ix_trials_started_at ON trials (started_at);
CREATE TABLE frame_blocks (
	trial_id INTEGER NOT NULL,
	block_index INTEGER NOT NULL,
	first_t_s FLOAT NOT NULL,
	last_t_s FLOAT NOT NULL,
	n_frames INTEGER NOT NULL,
	encoding VARCHAR(20) NOT NULL,
	payload BLOB NOT NULL,
	written_at DATETIME NOT NULL,
	CONSTRAINT pk_frame_blocks PRIMARY KEY (trial_id, block_index),
	CONSTRAINT fk_frame_blocks_trial_id_trials FOREIGN KEY(trial_id) REFERENCES trials (id) ON DELETE CASCADE
);
"""
V1_TABLES = ("patients", "sessions", "trials", "frame_blocks")


def downgrade_to_v1(source, target):
    """A version-1 database at ``target`` holding the rows of the (current) database ``source``."""
    with sqlite3.connect(target) as raw:
        raw.executescript(V1_DDL)
        raw.execute("INSERT INTO schema_version (version, applied_at, description) "
                    "VALUES (1, '2025-01-01 00:00:00.000000', 'created')")
        raw.execute("ATTACH DATABASE ? AS src", (str(source),))
        for table in V1_TABLES:
            columns = ", ".join(r[1] for r in raw.execute(f"PRAGMA main.table_info({table})"))
            raw.execute(f"INSERT INTO main.{table} ({columns}) SELECT {columns} FROM src.{table}")
        raw.commit()
        raw.execute("DETACH DATABASE src")
        raw.execute("PRAGMA journal_mode=WAL")


@pytest.fixture
def v1_database(tmp_path):
    """A version-1 database with a patient, a visit and a trial of 100 frames (and a second patient), closed."""
    source = tmp_path / "source"
    db = open_database(data_dir=source)
    with db.sessions() as s:
        create_patient(s, "P-001", birth_year=1950, notes="knee, left")
        create_patient(s, "P-002", sex="female", height_cm=160.5)
        visit = open_visit(s, "P-001")
    w = TrialWriter.start(db.sessions, session_id=visit.id, protocol="single-leg", stance_side="left",
                          sample_rate_hz=80, geometry=PlateGeometry())
    w.add_many((i / 80, [100.0 + i, 101.0, 102.0, 103.0]) for i in range(100))
    w.finish("complete", {"hold_time_s": 30.0, "cop": {"path_length_mm": 812.5}})
    with db.sessions() as s:
        before = trial_recording(s, w.trial_id)
    db.close()
    data = tmp_path / "data"
    data.mkdir()
    downgrade_to_v1(source / "station.db", data / "station.db")
    return data / "station.db", w.trial_id, before


def rows(path, sql):
    with sqlite3.connect(path) as raw:
        return raw.execute(sql).fetchall()


def backup_of(report):
    assert report.backup_path is not None
    return report.backup_path


def test_a_new_database_is_created_at_the_latest_version(tmp_path):
    engine = create_db_engine(default_database_url(tmp_path))
    try:
        report = ensure_schema(engine)
        assert report.created and report.version == latest_version() == BASE_VERSION + len(UPGRADES) >= 5
        with engine.connect() as c:
            assert current_version(c) == latest_version()
            assert {"patients", "sessions", "trials", "frame_blocks", "schema_version", "users", "web_sessions",
                    "audit_log", "stations"} <= set(inspect(c).get_table_names())
        again = ensure_schema(engine)  # opening a current database does nothing
        assert not again.created and not again.upgraded and again.backup_path is None
        assert check_schema(engine) == latest_version()
    finally:
        engine.dispose()
    assert rows(tmp_path / "station.db", "SELECT version, description FROM schema_version") == [
        (latest_version(), "created")]
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
    assert rows(path, "SELECT code, birth_year FROM patients ORDER BY id") == [("P-001", 1950), ("P-002", None)]
    assert rows(path, "SELECT COUNT(*), SUM(n_frames) FROM frame_blocks") == [(1, 100)]
    assert rows(path, "SELECT payload FROM frame_blocks") == rows(backup_of(report), "SELECT payload FROM frame_blocks")
    # the backup: beside the database, still version 1, with the same data (the WAL's content included)
    backup = report.backup_path
    assert backup is not None and backup.parent == path.parent
    assert backup.name.startswith("station-v1-backup-") and backup.suffix == ".db"
    assert rows(backup, "SELECT MAX(version) FROM schema_version") == [(1,)]
    assert rows(backup, "SELECT code FROM patients ORDER BY id") == [("P-001",), ("P-002",)]
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
    assert rows(path, "SELECT COUNT(*) FROM patients") == [(2,)]
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
        with pytest.raises(SchemaError,
                           match="1 row\\(s\\) pointing at missing rows \\(first in table frame_blocks\\)"):
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
        assert check_schema(engine, upgrades=()) == 1
        with pytest.raises(SchemaError, match="schema version 1 needs upgrading to 2"):
            check_schema(engine, upgrades=V2)
        with pytest.raises(SchemaError, match=f"schema version 1 needs upgrading to {latest_version()}"):
            check_schema(engine)
    finally:
        engine.dispose()
    with pytest.raises(SchemaError, match="needs upgrading"):
        open_database(data_dir=path.parent, upgrade=False)
    assert rows(path, "SELECT MAX(version) FROM schema_version") == [(1,)]


def test_upgrade_steps_must_be_consecutive():
    with pytest.raises(ValueError, match=r"versions \[2, 3\] in order, got \[2, 4\]"):
        latest_version([Upgrade(2, "a", add_room), Upgrade(4, "b", add_room)])


# -- the real upgrade to version 2: web accounts, sessions, audit log, patients.programme -----------------


def schema_of(path):
    """Every table's columns and keys (SQLAlchemy's inspector) and indexes (SQLite's own)."""
    engine = create_db_engine(default_database_url(path.parent))
    try:
        insp = inspect(engine)
        return {
            table: {
                "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)],
                "pk": insp.get_pk_constraint(table)["constrained_columns"],
                "fks": sorted((f["name"], tuple(f["constrained_columns"]), f["referred_table"],
                               (f.get("options") or {}).get("ondelete")) for f in insp.get_foreign_keys(table)),
                # indexes and unique constraints (expression indexes included) as SQLite keeps them
                "indexes": sorted((name, unique, " ".join((sql or "").split())) for name, unique, sql in rows(
                    path, "SELECT il.name, il.\"unique\", m.sql FROM pragma_index_list(" + repr(table) + ") AS il "
                          "LEFT JOIN sqlite_master AS m ON m.name = il.name")),
            }
            for table in sorted(insp.get_table_names())
        }
    finally:
        engine.dispose()


def test_the_v2_upgrade_keeps_every_row_and_adds_the_web_tables(v1_database):
    path, trial_id, before = v1_database
    counts = {t: rows(path, f"SELECT COUNT(*) FROM {t}")[0][0] for t in V1_TABLES}
    patients_before = rows(path, "SELECT id, code, birth_year, sex, height_cm, affected_side, notes, created_at "
                                 "FROM patients ORDER BY id")
    trials_before = rows(path, "SELECT * FROM trials ORDER BY id")
    db = open_database(data_dir=path.parent)
    try:
        with db.sessions() as s:
            after = trial_recording(s, trial_id)
            from station.storage import get_patient, list_patients
            from station.storage.accounts import authenticate, create_user
            from station.storage.patients import update_patient

            assert [p.code for p in list_patients(s)] == ["P-001", "P-002"]
            assert get_patient(s, "P-001").programme is None
            # the new tables work: an account, a login (audit), a drill programme
            create_user(s, "therapist", "a long enough password")
            assert authenticate(s, "therapist", "a long enough password", client="127.0.0.1").username == "therapist"
            update_patient(s, "P-002", programme={"drills": [{"name": "reach", "duration_s": 60}]})
    finally:
        db.close()
    assert np.array_equal(after.t_s, before.t_s) and np.array_equal(after.forces_n, before.forces_n)
    assert [r[0] for r in rows(path, "SELECT version FROM schema_version ORDER BY version")] == list(
        range(1, latest_version() + 1))
    assert {t: rows(path, f"SELECT COUNT(*) FROM {t}")[0][0] for t in V1_TABLES} == counts
    assert rows(path, "SELECT id, code, birth_year, sex, height_cm, affected_side, notes, created_at "
                      "FROM patients ORDER BY id") == patients_before
    # every trial column as it was; then the v3 column station_id, unknown (null) for a trial from before, and
    # the v6 upload_key (null: not uploaded from a spool)
    assert [r[:-2] for r in rows(path, "SELECT * FROM trials ORDER BY id")] == trials_before
    assert rows(path, "SELECT upload_key FROM trials") == [(None,)]
    assert rows(path, "SELECT station_id FROM trials") == [(None,)]
    assert rows(path, "SELECT code, programme FROM patients ORDER BY id") == [
        ("P-001", None), ("P-002", '{"drills": [{"name": "reach", "duration_s": 60}]}')]
    assert rows(path, "SELECT username FROM users") == [("therapist",)]
    assert rows(path, "SELECT action FROM audit_log ORDER BY id") == [("user_add",), ("login",)]
    backups = list(path.parent.glob("station-v1-backup-*.db"))
    assert len(backups) == 1 and rows(backups[0], "SELECT MAX(version) FROM schema_version") == [(1,)]
    assert rows(path, "PRAGMA foreign_key_check") == []


def test_the_v3_upgrade_gives_trials_their_station(v1_database):
    path, old_trial, _ = v1_database
    db = open_database(data_dir=path.parent, station_id="room-a")
    try:
        with db.sessions() as s:
            visit = open_visit(s, "P-002")
        w = TrialWriter.start(db.sessions, session_id=visit.id, protocol="single-leg", stance_side="right",
                              sample_rate_hz=80, geometry=PlateGeometry())
        w.add_many((i / 80, [100.0, 101.0, 102.0, 103.0]) for i in range(10))
        w.finish("complete")
        with db.sessions() as s:
            assert trial_recording(s, w.trial_id).metadata["station_id"] == "room-a"
            assert "station_id" not in trial_recording(s, old_trial).metadata  # unknown: not made up
    finally:
        db.close()
    assert rows(path, "SELECT id, station_id FROM trials ORDER BY id") == [(old_trial, None), (w.trial_id, "room-a")]
    assert rows(path, "SELECT version, description FROM schema_version WHERE version = 3") == [
        (3, "trials say which station recorded them")]
    assert ("ix_trials_station_id",) in rows(path, "SELECT name FROM sqlite_master WHERE type = 'index'")


def test_an_upgraded_database_has_the_schema_of_a_new_one(v1_database, tmp_path):
    path, _, _ = v1_database
    open_database(data_dir=path.parent).close()
    fresh = tmp_path / "fresh"
    open_database(data_dir=fresh).close()
    upgraded, new = schema_of(path), schema_of(fresh / "station.db")
    assert set(upgraded) == set(new)
    for table in new:
        assert upgraded[table] == new[table], table


def test_user_names_are_unique_ignoring_case_after_the_upgrade(v1_database):
    path, _, _ = v1_database
    open_database(data_dir=path.parent).close()
    with sqlite3.connect(path) as raw:
        raw.execute("INSERT INTO users (username, password_hash, created_at, disabled, failed_logins) "
                    "VALUES ('Anna', 'x', '2025-01-01 00:00:00', 0, 0)")
        with pytest.raises(sqlite3.IntegrityError):
            raw.execute("INSERT INTO users (username, password_hash, created_at, disabled, failed_logins) "
                        "VALUES ('anna', 'y', '2025-01-01 00:00:00', 0, 0)")


def test_the_v6_upgrade_adds_unique_upload_keys_and_trial_id_reservations(v1_database, tmp_path):
    """Schema version 6 (a station records into its spool while the database is unreachable): the upload keys
    are unique (an upload inserts each trial, block and patient once), and a reserved trial id is never given
    to a trial stored online on SQLite, which has no id sequence."""
    from station.storage.spool import Spool

    path, old_trial, _ = v1_database
    db = open_database(data_dir=path.parent, station_id="room-a")
    try:
        assert rows(path, "SELECT MAX(version) FROM schema_version") == [(latest_version(),)] == [(6,)]
        assert rows(path, "SELECT upload_key FROM trials") == [(None,)]
        spool = Spool.open(tmp_path / "spool", station_id="room-a")
        try:
            reserved = spool.reserve_ids(db, 3)
        finally:
            spool.close()
        assert reserved == [old_trial + 1, old_trial + 2, old_trial + 3]
        with db.sessions() as s:
            visit = open_visit(s, "P-002")
        w = TrialWriter.start(db.sessions, session_id=visit.id, protocol="free", sample_rate_hz=80,
                              geometry=PlateGeometry())
        w.finish("aborted")
        assert w.trial_id == old_trial + 4  # above the reserved ids
    finally:
        db.close()
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE trials SET upload_key = 'k1' WHERE id = ?", (old_trial,))
        with pytest.raises(sqlite3.IntegrityError):
            raw.execute("UPDATE trials SET upload_key = 'k1' WHERE id = ?", (w.trial_id,))
        for table in ("patients", "frame_blocks"):
            assert (f"ix_{table}_upload_key", 1) in [(r[1], r[2]) for r in raw.execute(f"PRAGMA index_list({table})")]
