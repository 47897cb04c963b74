"""The station's database on a real PostgreSQL server: schema creation and upgrade, the upgrade race between
two stations starting at once, the refusal of a newer schema, two stations writing trials at the same time.

The server is the throwaway cluster of ``./quickstart test`` (tests/postgres/server.py); every test has
databases of its own on it.
"""

from __future__ import annotations

import multiprocessing
import threading
import time

import numpy as np
import pytest
from sqlalchemy import create_engine, inspect

from station.core.geometry import PlateGeometry
from station.storage import (
    Conflict,
    SchemaError,
    TrialWriter,
    create_patient,
    get_trial,
    open_database,
    open_visit,
    trial_recording,
)
from station.storage import schema as schema_module
from station.storage.db import create_db_engine
from station.storage.schema import UPGRADES, Upgrade, current_version, ensure_schema, latest_version
from tests.postgres.server import require_postgres, rows, scalar, scratch_database


@pytest.fixture
def pg_url():
    with scratch_database() as url:
        yield url


def make_v1(url):
    """A version-1 database at ``url`` with two patients, a visit and a trial of 100 frames; (trial id, frames).

    Made by creating a current database and taking the later versions' tables and columns away again: the
    same tables, keys and indexes as version 1.
    """
    db = open_database(url)
    try:
        with db.sessions() as s:
            create_patient(s, "P-001", birth_year=1950, notes="knee, left")
            create_patient(s, "P-002", sex="female", height_cm=160.5)
            visit = open_visit(s, "P-001")
        w = TrialWriter.start(db.sessions, session_id=visit.id, protocol="single-leg", stance_side="left",
                              sample_rate_hz=80, geometry=PlateGeometry())
        w.add_many((i / 80, [100.0 + i, 101.0, 102.0, 103.0]) for i in range(100))
        w.finish("complete", {"hold_time_s": 30.0})
        with db.sessions() as s:
            frames = trial_recording(s, w.trial_id).forces_n
    finally:
        db.close()
    engine = create_engine(url)
    try:
        with engine.begin() as c:
            for sql in ("DROP TABLE trial_id_reservations", "ALTER TABLE patients DROP COLUMN upload_key",
                        "ALTER TABLE trials DROP COLUMN upload_key", "ALTER TABLE frame_blocks DROP COLUMN upload_key",
                        "DROP TABLE stations", "DROP INDEX ix_trials_station_id",
                        "ALTER TABLE trials DROP COLUMN station_id",
                        "DROP TABLE audit_log", "DROP TABLE web_sessions", "DROP TABLE users",
                        "ALTER TABLE patients DROP COLUMN programme", "DELETE FROM schema_version",
                        "INSERT INTO schema_version (version, applied_at, description) "
                        "VALUES (1, '2025-01-01 00:00:00+00', 'created')"):
                c.exec_driver_sql(sql)
    finally:
        engine.dispose()
    return w.trial_id, frames


def schema_of(url):
    """Every table's columns (in order), primary key, foreign keys and indexes, as PostgreSQL reports them."""
    engine = create_engine(url)
    try:
        insp = inspect(engine)
        return {
            table: {
                "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)],
                "pk": insp.get_pk_constraint(table)["constrained_columns"],
                "fks": sorted((f["name"], tuple(f["constrained_columns"]), f["referred_table"],
                               (f.get("options") or {}).get("ondelete")) for f in insp.get_foreign_keys(table)),
                "indexes": sorted((i["name"], bool(i["unique"]), tuple(str(c) for c in i["column_names"]),
                                   tuple(i.get("expressions") or ())) for i in insp.get_indexes(table)),
                "unique": sorted((u["name"], tuple(u["column_names"])) for u in insp.get_unique_constraints(table)),
            }
            for table in sorted(insp.get_table_names())
        }
    finally:
        engine.dispose()


# -- schema ---------------------------------------------------------------------------------------------


def test_a_new_database_on_postgresql_is_created_at_the_latest_version(pg_url):
    db = open_database(pg_url, station_id="room-a")
    try:
        assert not db.is_sqlite and db.path is None and db.station_id == "room-a"
        with db.engine.connect() as c:
            assert current_version(c) == latest_version() >= 5
        ddl = schema_of(pg_url)
        assert ("station_id", "VARCHAR(64)", True) in ddl["trials"]["columns"]
        assert ("ix_trials_station_id", False, ("station_id",), ()) in ddl["trials"]["indexes"]
        assert ("ix_patients_upload_key", True, ("upload_key",), ()) in ddl["patients"]["indexes"]
        ((name, unique, _, (expression,)),) = [i for i in ddl["patients"]["indexes"] if i[3]]
        assert name == "uq_patients_code_lower" and unique and expression.startswith("lower(")
        assert ("payload", "BYTEA", False) in ddl["frame_blocks"]["columns"]
    finally:
        db.close()
    assert rows(pg_url, "SELECT version, description FROM schema_version") == [(latest_version(), "created")]


def test_an_upgrade_on_postgresql_keeps_every_row_and_gives_the_schema_of_a_new_database(pg_url):
    trial_id, frames = make_v1(pg_url)
    counts = {t: scalar(pg_url, f"SELECT COUNT(*) FROM {t}") for t in ("patients", "sessions", "trials",
                                                                        "frame_blocks")}
    report = ensure_schema(engine := create_db_engine(pg_url))
    engine.dispose()
    assert (report.from_version, report.version, report.backup_path) == (1, latest_version(), None)  # no file copy
    assert [a.split(":")[0] for a in report.applied] == [f"v{v}" for v in range(2, latest_version() + 1)]
    assert {t: scalar(pg_url, f"SELECT COUNT(*) FROM {t}") for t in counts} == counts
    assert rows(pg_url, "SELECT version FROM schema_version ORDER BY version") == [
        (v,) for v in range(1, latest_version() + 1)]
    assert rows(pg_url, "SELECT id, station_id, upload_key FROM trials") == [(trial_id, None, None)]
    db = open_database(pg_url, station_id="room-b")
    try:
        with db.sessions() as s:
            assert np.array_equal(trial_recording(s, trial_id).forces_n, frames)
            visit = open_visit(s, "P-002")  # ids still come from their sequences after the upgrade
        w = TrialWriter.start(db.sessions, session_id=visit.id, protocol="free", sample_rate_hz=80,
                              geometry=PlateGeometry())
        w.add_many((i / 80, [1.0, 2.0, 3.0, 4.0]) for i in range(5))
        w.finish()
        with db.sessions() as s:
            assert get_trial(s, w.trial_id).station_id == "room-b"
    finally:
        db.close()
    with scratch_database("fresh") as fresh:
        open_database(fresh).close()
        upgraded, new = schema_of(pg_url), schema_of(fresh)
    assert set(upgraded) == set(new)
    for table in new:
        assert upgraded[table] == new[table], table


def slowed(upgrades, applied, pause_s):
    """The real steps, each recording which thread ran it and pausing inside the transaction."""

    def wrap(step):
        def apply(connection):
            applied.append((threading.current_thread().name, step.version))
            connection.exec_driver_sql(f"SELECT pg_sleep({pause_s})")
            step.apply(connection)
        return Upgrade(step.version, step.description, apply, step.renamed_tables)

    return [wrap(u) for u in upgrades]


def race(url, upgrades, n=2):
    """``n`` stations upgrade the same database at once (released together); their reports or errors."""
    barrier = threading.Barrier(n)
    results: dict[str, object] = {}

    def station(name):
        engine = create_db_engine(url)
        try:
            barrier.wait()
            results[name] = ensure_schema(engine, upgrades=upgrades)
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test looks at
            results[name] = exc
        finally:
            engine.dispose()

    threads = [threading.Thread(target=station, args=(f"station-{i}",), name=f"station-{i}") for i in range(n)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results, time.perf_counter() - t0


def test_two_stations_starting_at_once_upgrade_the_schema_once(pg_url):
    make_v1(pg_url)
    applied: list[tuple[str, int]] = []
    results, took = race(pg_url, slowed(UPGRADES, applied, 0.5))
    errors = [r for r in results.values() if isinstance(r, Exception)]
    assert errors == []
    upgraded = [name for name, r in results.items() if r.upgraded]
    assert len(upgraded) == 1, results  # one upgraded, the other waited and found the schema current
    (other,) = set(results) - set(upgraded)
    assert not results[other].upgraded and results[other].version == latest_version()
    assert applied == [(upgraded[0], v) for v in range(2, latest_version() + 1)]  # each step once, by one station
    assert rows(pg_url, "SELECT version FROM schema_version ORDER BY version") == [
        (v,) for v in range(1, latest_version() + 1)]
    assert took >= 1.0  # the race really overlapped the two slowed steps
    print(f"\nupgrade race: {upgraded[0]} upgraded v1->v{latest_version()}, {other} waited on the lock; "
          f"{took:.2f} s in all")


def test_without_the_lock_the_same_race_breaks_the_upgrade(pg_url, monkeypatch):
    """The race above is real: with the advisory lock taken out, the second station's upgrade fails."""
    make_v1(pg_url)
    monkeypatch.setattr(schema_module, "_lock_schema", lambda connection: None)
    results, _ = race(pg_url, slowed(UPGRADES, [], 0.5))
    errors = [r for r in results.values() if isinstance(r, Exception)]
    assert len(errors) == 1, results
    assert isinstance(errors[0], SchemaError) and "failed" in str(errors[0])


def test_two_stations_creating_a_new_database_at_once_create_it_once(pg_url):
    results, _ = race(pg_url, UPGRADES)
    assert not [r for r in results.values() if isinstance(r, Exception)], results
    assert sorted(r.created for r in results.values()) == [False, True]
    assert rows(pg_url, "SELECT version FROM schema_version") == [(latest_version(),)]


def test_a_station_older_than_the_schema_refuses_in_one_line(pg_url):
    open_database(pg_url).close()
    engine = create_engine(pg_url)
    with engine.begin() as c:
        c.exec_driver_sql("INSERT INTO schema_version (version, applied_at, description) "
                          "VALUES (9, now(), 'from a newer station')")
    engine.dispose()
    before = schema_of(pg_url)
    with pytest.raises(SchemaError) as caught:
        open_database(pg_url, station_id="room-old")
    message = str(caught.value)
    assert "\n" not in message and message.endswith(
        f"the database is at schema version 9, newer than this program's {latest_version()}: "
        "update the software (the database was left untouched)")
    assert "postgresql+psycopg://postgres@" in message  # which database (never a password)
    assert schema_of(pg_url) == before
    with pytest.raises(SchemaError, match="newer than this program's"):
        open_database(pg_url, upgrade=False)


# -- two stations writing at once ------------------------------------------------------------------------


FRAMES_PER_BLOCK = 40  # half a second at 80 Hz, as the station writes them


def _station(url, station_id, barrier, queue, n_blocks):
    """A station process: makes the shared patient (at the same moment as the other), then stores a trial."""
    try:
        db = open_database(url, station_id=station_id)
        try:
            barrier.wait(30)
            try:
                with db.sessions() as s:
                    create_patient(s, "P-0042", birth_year=1970)
                made = True
            except Conflict:
                made = False
            with db.sessions() as s:
                visit = open_visit(s, "P-0042", clinician=station_id)
            w = TrialWriter.start(db.sessions, session_id=visit.id, protocol="single-leg", stance_side="left",
                                  sample_rate_hz=80, geometry=PlateGeometry(), flush_period_s=3600)
            barrier.wait(30)
            t0 = time.perf_counter()
            for b in range(n_blocks):
                w.add_many(((b * FRAMES_PER_BLOCK + i) / 80, [100.0 + i, 200.0, 300.0, 400.0 + b])
                           for i in range(FRAMES_PER_BLOCK))
                w.flush()  # one block, one transaction, as the live writer does
            took = time.perf_counter() - t0
            w.finish("complete", {"hold_time_s": 30.0})
            queue.put((station_id, made, w.trial_id, w.frames_written, took))
        finally:
            db.close()
    except BaseException as exc:  # noqa: BLE001 - reported to the test
        queue.put((station_id, "error", repr(exc), 0, 0.0))


def test_two_stations_write_trials_into_one_database_at_once(pg_url):
    require_postgres()
    open_database(pg_url).close()
    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    n_blocks = 150  # 6,000 frames (75 s at 80 Hz) each
    procs = [ctx.Process(target=_station, args=(pg_url, f"room-{x}", barrier, queue, n_blocks)) for x in "ab"]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    assert [r for r in results if r[1] == "error"] == []
    assert sorted(r[1] for r in results) == [False, True]  # the same new patient at once: one made it, one 409
    frames = FRAMES_PER_BLOCK * n_blocks
    db = open_database(pg_url)
    try:
        with db.sessions() as s:
            for station_id, _, trial_id, written, _ in results:
                t = get_trial(s, trial_id)
                assert (t.station_id, t.n_frames, t.state.value, written) == (station_id, frames, "complete", frames)
                rec = trial_recording(s, trial_id)  # every block there, in order, bit for bit
                assert rec.n_samples == frames and rec.metadata["station_id"] == station_id
                assert np.array_equal(rec.forces_n[:, 3], np.repeat(400.0 + np.arange(n_blocks), FRAMES_PER_BLOCK))
    finally:
        db.close()
    assert rows(pg_url, "SELECT COUNT(*) FROM patients WHERE lower(code) = 'p-0042'") == [(1,)]
    from station import __version__

    assert rows(pg_url, "SELECT station_id, software_version FROM stations ORDER BY station_id") == [
        ("room-a", __version__), ("room-b", __version__)]  # each station's contact row, one each
    rate = sum(frames / r[4] for r in results)
    print(f"\ntwo stations at once: {2 * frames} frames in {2 * n_blocks} block transactions, "
          f"{rate:,.0f} frames/s stored together ({max(r[4] for r in results):.2f} s)")


def test_the_command_line_of_an_older_station_says_so_in_one_line(pg_url, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    open_database(pg_url).close()
    engine = create_engine(pg_url)
    with engine.begin() as c:
        c.exec_driver_sql("INSERT INTO schema_version (version, applied_at, description) VALUES (9, now(), 'newer')")
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BALANCE_STATION_")}
    env.update(BALANCE_STATION_DATABASE_URL=pg_url, XDG_CONFIG_HOME=str(tmp_path / "config"))
    command = Path(sys.executable).with_name("balance-station")
    done = subprocess.run([str(command), "--data-dir", str(tmp_path / "data"), "user", "list"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert "schema version 9, newer than this program's" in done.stderr and "update the software" in done.stderr


def test_backup_of_a_postgresql_database_is_a_pg_dump_that_restores(pg_url, tmp_path):
    import shutil
    import subprocess

    from sqlalchemy.engine import make_url

    from station.storage.backup import backup_database

    trial_id, frames = make_v1(pg_url)
    open_database(pg_url).close()  # brought up to this program's schema
    report = backup_database(pg_url, data_dir=tmp_path / "data")
    assert report.path.parent == (tmp_path / "data" / "backups").resolve() and report.path.suffix == ".dump"
    assert report.size_bytes > 0
    with pytest.raises(Exception, match="already exists"):
        backup_database(pg_url, data_dir=tmp_path, target=report.path)
    with scratch_database("restored") as restored:
        target = make_url(restored).set(drivername="postgresql").render_as_string(hide_password=False)
        done = subprocess.run([shutil.which("pg_restore") or "pg_restore", "--no-owner", f"--dbname={target}",
                               str(report.path)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        db = open_database(restored)
        try:
            with db.sessions() as s:
                assert np.array_equal(trial_recording(s, trial_id).forces_n, frames)
        finally:
            db.close()
        assert rows(restored, "SELECT MAX(version) FROM schema_version") == [(latest_version(),)]
