"""Storage: the SQLite set-up, the models, the frame blocks, the trial writer, the rebuilt recording, `record`."""

import argparse
import datetime as dt
import io
import math
import sqlite3
import zlib

import numpy as np
import pytest
from sqlalchemy import event, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.schema import CreateIndex, CreateTable

from calibration.model import simulator_calibration
from hardware.sim.plate import SimulatedPlate
from station.commands.record import add_arguments, record_command
from station.core.errors import UserError
from station.core.frames import FrameFlag
from station.core.geometry import PlateGeometry
from station.core.recording import parse_recording, read_recording, recording_to_text
from station.live.pipeline import LiveStation
from station.signal.forces import ForcePipeline
from station.storage import (
    AffectedSide,
    ClinicSession,
    Conflict,
    FrameBlock,
    Grade,
    InvalidValue,
    LiveTrialWriter,
    NotFound,
    Patient,
    Sex,
    StanceSide,
    StorageError,
    Trial,
    TrialState,
    TrialWriter,
    create_patient,
    default_database_url,
    get_patient,
    get_trial,
    list_patients,
    list_trials,
    open_database,
    open_visit,
    recover_interrupted,
    set_grade,
    set_metrics,
    todays_visit,
    trial_recording,
    trial_summary,
    validate_patient_code,
    write_trial_recording,
)
from station.storage.blocks import BYTES_PER_FRAME, ENCODING, BlockDecodeError, decode_block, encode_block
from station.storage.db import create_db_engine
from station.storage.models import Base
from station.storage.trials import MAX_BLOCK_FRAMES
from tests.doubles import ListFeed
from tests.postgres.server import BACKENDS, backend_url
from tests.station.live.test_pipeline import frames as raw_frames

GEOMETRY = PlateGeometry()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=BACKENDS)
def db(request, tmp_path):
    """A new station database, on SQLite and on PostgreSQL (tests/postgres/server.py)."""
    with backend_url(request.param, tmp_path) as url:
        database = open_database(url, data_dir=tmp_path / "data")
        yield database
        database.close()


#: a test of what only SQLite has (PRAGMAs, the file's write lock): the ``db`` fixture on SQLite alone
sqlite_only = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


@pytest.fixture
def visit(db):
    with db.sessions() as s:
        create_patient(s, "P-001", birth_year=1958, sex="female", height_cm=168.0, affected_side="right")
        return open_visit(s, "P-001", clinician="therapist1")


def start_writer(db, visit, **options):
    options.setdefault("protocol", "single-leg")
    options.setdefault("stance_side", "left")
    options.setdefault("sample_rate_hz", 80.0)
    options.setdefault("geometry", GEOMETRY)
    return TrialWriter.start(db.sessions, session_id=visit.id, **options)


def simulated_frames(n, seed=4):
    """Calibrated force frames from the simulated plate (fast mode: simulated time from 0)."""
    plate = SimulatedPlate(realtime=False, seed=seed, glitch_rate=0.01)
    pipeline = ForcePipeline(simulator_calibration(), GEOMETRY)
    return [pipeline.process(plate.read()) for _ in range(n)]


# -- the database connection -------------------------------------------------------------


def test_default_url_is_station_db_in_the_data_folder(tmp_path):
    url = default_database_url(tmp_path / "data")
    assert url == f"sqlite:///{tmp_path / 'data' / 'station.db'}"
    database = open_database(data_dir=tmp_path / "data")
    try:
        assert database.path == tmp_path / "data" / "station.db" and database.path.exists()
        assert database.is_sqlite and database.name == str(database.path)
    finally:
        database.close()


@sqlite_only
def test_every_connection_has_wal_full_sync_and_foreign_keys(db):
    with db.engine.connect() as c1, db.engine.connect() as c2:  # two pooled connections, both set up
        for conn in (c1, c2):
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    # the mode is in the file: a plain sqlite3 connection sees it too
    with sqlite3.connect(db.path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_foreign_keys_are_enforced(db):
    with pytest.raises(IntegrityError, match="(?i)FOREIGN KEY"):
        with db.write() as s:
            s.add(ClinicSession(patient_id=999))
    with pytest.raises(NotFound, match="no clinic session 42"):
        TrialWriter.start(db.sessions, session_id=42, protocol="single-leg", sample_rate_hz=80, geometry=GEOMETRY)


def test_a_visit_with_trials_cannot_be_deleted_but_a_trial_takes_its_blocks_along(db, visit):
    w = start_writer(db, visit)
    w.add_many((i / 80, [1.0, 2.0, 3.0, 4.0]) for i in range(10))
    w.finish()
    with pytest.raises(IntegrityError):
        with db.write() as s:
            s.delete(s.get(ClinicSession, visit.id))
    with db.write() as s:
        s.delete(s.get(Trial, w.trial_id))
    with db.sessions() as s:
        assert s.scalars(select(FrameBlock)).all() == []


@sqlite_only
def test_write_transactions_take_the_write_lock_at_once(db):
    statements = []
    event.listen(db.engine, "before_cursor_execute", lambda _c, _cur, sql, *_: statements.append(sql))
    with db.write() as s:
        s.execute(text("SELECT 1"))
    with db.sessions() as s:  # reads begin deferred: they never wait for a writer (WAL)
        s.execute(text("SELECT 2"))
    assert statements == ["BEGIN IMMEDIATE", "SELECT 1", "BEGIN", "SELECT 2"]


def test_the_schema_is_not_tied_to_sqlite():
    """A PostgreSQL URL must work later: every table and index compiles for PostgreSQL."""
    dialect = postgresql.dialect()
    ddl = "\n".join(str(CreateTable(t).compile(dialect=dialect)) for t in Base.metadata.sorted_tables)
    ddl += "\n".join(str(CreateIndex(i).compile(dialect=dialect))
                     for t in Base.metadata.sorted_tables for i in t.indexes)
    assert "JSONB" in ddl and "TIMESTAMP WITH TIME ZONE" in ddl and "BYTEA" in ddl
    assert "CREATE UNIQUE INDEX uq_patients_code_lower ON patients (lower(code))" in ddl


def test_a_bad_url_is_one_clear_line():
    with pytest.raises(StorageError, match="not a database URL"):
        create_db_engine("no such thing")


def test_readers_see_committed_blocks_while_a_writer_holds_a_transaction(db, visit):
    w = start_writer(db, visit)
    w.add_many((i / 80, [1.0, 2.0, 3.0, 4.0]) for i in range(5))
    w.flush()
    with db.write() as s:  # a write transaction is open...
        s.add(ClinicSession(patient_id=visit.patient_id))
        with db.sessions() as reader:  # ...and a reader (WAL) is not blocked by it
            assert reader.get(Trial, w.trial_id).n_frames == 5


# -- models ----------------------------------------------------------------------------


def test_patient_fields_round_trip(db):
    with db.sessions() as s:
        create_patient(s, "KNEE_2024-17", birth_year=1961, sex=Sex.MALE, height_cm=181.5,
                       affected_side=AffectedSide.BOTH, notes="left THA 2023")
    with db.sessions() as s:
        p = get_patient(s, "knee_2024-17")  # any case
        assert (p.code, p.birth_year, p.sex, p.height_cm, p.affected_side, p.notes) == (
            "KNEE_2024-17", 1961, Sex.MALE, 181.5, AffectedSide.BOTH, "left THA 2023")
        assert p.created_at.tzinfo is dt.UTC
    # enums are stored as their lower-case values
    with db.engine.connect() as raw:
        assert tuple(raw.execute(text("SELECT sex, affected_side FROM patients")).one()) == ("male", "both")


def test_patient_optional_fields_and_listing(db):
    with db.sessions() as s:
        create_patient(s, "P-010")
        create_patient(s, "a-002")
        p = get_patient(s, "P-010")
        assert p.birth_year is None and p.sex is None and p.height_cm is None and p.affected_side is None
        assert [x.code for x in list_patients(s)] == ["a-002", "P-010"]


@pytest.mark.parametrize("code", ["P-001", "p001", "KNEE_2024_17", "2024-0042", "x1"])
def test_good_patient_codes(code):
    assert validate_patient_code(f"  {code} ") == code


@pytest.mark.parametrize(("code", "message"), [
    ("", "empty"),
    ("   ", "empty"),
    ("1", "2 to 32"),
    ("P" + "1" * 40, "2 to 32"),
    ("John Smith", "only letters, digits"),
    ("Smith, J 1950", "only letters, digits"),
    ("P/001", "only letters, digits"),
    ("-P001", "start with a letter or digit"),
    ("Müller1", "only letters, digits"),
    ("smith", "no digit"),
    ("JohnSmith", "never a name"),
])
def test_bad_patient_codes_are_refused_with_a_reason(code, message):
    with pytest.raises(InvalidValue, match=message):
        validate_patient_code(code)


def test_patient_code_is_unique_ignoring_case(db):
    with db.sessions() as s:
        create_patient(s, "P-001")
        with pytest.raises(Conflict, match="'p-001' is already taken"):
            create_patient(s, "p-001")
    with pytest.raises(IntegrityError):  # the database says so too, whoever writes
        with db.write() as s:
            s.add(Patient(code="p-001"))


@pytest.mark.parametrize(("field", "value", "message"), [
    ("birth_year", 1850, "not between 1900"),
    ("birth_year", dt.date.today().year + 1, "not between 1900"),
    ("birth_year", 1960.5, "whole year"),
    ("height_cm", 20, "between 40 and 250"),
    ("height_cm", float("nan"), "between 40 and 250"),
    ("sex", "f", "not one of: female, male, other"),
    ("affected_side", "up", "not one of: left, right, both, none"),
])
def test_patient_fields_are_checked(db, field, value, message):
    with db.sessions() as s, pytest.raises(InvalidValue, match=message):
        create_patient(s, "P-002", **{field: value})


def test_todays_visit_is_reused_the_same_day_and_new_the_next(db):
    with db.sessions() as s:
        create_patient(s, "P-003")
        morning = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC).astimezone()
        first = todays_visit(s, "P-003", now=morning)
        assert todays_visit(s, "P-003", now=morning + dt.timedelta(hours=1)).id == first.id
        assert todays_visit(s, "P-003", now=morning + dt.timedelta(days=1)).id != first.id
        with pytest.raises(NotFound, match="no patient with code 'P-404'"):
            todays_visit(s, "P-404")


def test_trial_columns_and_grades(db, visit):
    w = start_writer(db, visit, settings={"hold_s": 30, "threshold": np.float64(0.5)},
                     calibration=simulator_calibration(), plate_source="simulated", notes="first try")
    w.add_many((i / 80, [100.0, 100.0, 100.0, 100.0]) for i in range(20))
    w.finish("complete", {"hold_time_s": 30.0, "onset_s": float("nan"), "touchdowns": [], "n": np.int64(2)})
    with db.sessions() as s:
        t = get_trial(s, w.trial_id)
        assert t.state is TrialState.COMPLETE and t.stance_side is StanceSide.LEFT
        assert t.grade is Grade.NOT_ASSESSED  # until the clinician grades it
        assert t.settings == {"hold_s": 30, "threshold": 0.5}
        assert t.metrics == {"hold_time_s": 30.0, "onset_s": None, "touchdowns": [], "n": 2}  # NaN stored as null
        assert t.calibration["label"].startswith("builtin:simulator ")
        assert t.calibration["gains_n_per_count"] == list(simulator_calibration().gains_n_per_count)
        assert (t.sample_rate_hz, t.plate_ml_mm, t.plate_ap_mm, t.feet_ml_mm) == (80.0, 400.0, 300.0, 200.0)
        assert t.started_at.tzinfo is dt.UTC and t.ended_at >= t.started_at
        assert t.n_frames == 20 and t.duration_s == pytest.approx(19 / 80)
        for grade in ("negative", "positive", "compensated", Grade.NOT_ASSESSED):
            assert set_grade(s, t.id, grade).grade is Grade(grade)
        set_grade(s, t.id, "Positive", notes="pelvic drop at 12 s")
    with db.sessions() as s:
        t = get_trial(s, w.trial_id)
        assert t.grade is Grade.POSITIVE and t.notes == "pelvic drop at 12 s"
        with pytest.raises(InvalidValue, match="not one of: negative, positive, compensated, not_assessed"):
            set_grade(s, t.id, "maybe")
        set_metrics(s, t.id, {"hold_time_s": 28.5})
        summary = trial_summary(get_trial(s, t.id))
    assert summary["patient"] == "P-001" and summary["state"] == "complete" and summary["grade"] == "positive"
    assert summary["metrics"] == {"hold_time_s": 28.5} and summary["n_frames"] == 20


def test_trial_start_checks_its_values(db, visit):
    with pytest.raises(InvalidValue, match="protocol"):
        start_writer(db, visit, protocol="single leg\n")
    with pytest.raises(InvalidValue, match="outside 10..1000 Hz"):
        start_writer(db, visit, sample_rate_hz=5)
    with pytest.raises(InvalidValue, match="stance_side 'up'"):
        start_writer(db, visit, stance_side="up")
    with pytest.raises(InvalidValue, match="settings must be plain data"):
        start_writer(db, visit, settings={"f": object()})


def test_trials_are_listed_by_patient_and_state(db, visit):
    with db.sessions() as s:
        create_patient(s, "P-002")
        other = open_visit(s, "P-002")
    ids = []
    for v in (visit, other, visit):
        w = start_writer(db, v)
        w.add_many((i / 80, [1.0, 1.0, 1.0, 1.0]) for i in range(3))
        ids.append(w.trial_id)
        if v is other:
            w.finish("aborted")
    with db.sessions() as s:
        assert [t.id for t in list_trials(s, "p-001")] == [ids[0], ids[2]]
        assert [t.id for t in list_trials(s, "P-002")] == [ids[1]]
        assert [t.id for t in list_trials(s)] == ids
        assert [t.id for t in list_trials(s, state="running")] == [ids[0], ids[2]]
        assert [t.id for t in list_trials(s, "P-002", state=TrialState.ABORTED)] == [ids[1]]
        with pytest.raises(NotFound):
            list_trials(s, "P-999")
        trials = list_trials(s, "P-001")
    assert trial_summary(trials[0])["patient"] == "P-001"  # loaded with the trial: usable after the session


# -- frame blocks ------------------------------------------------------------------------


def test_block_layout_is_as_documented():
    t = np.array([0.0, 0.0125, 0.025])
    f = np.array([[171.2, 168.9, 170.4, 172.0], [1.0, 2.0, 3.0, 4.0], [-0.5, 1e-9, 2500.0, 0.0]])
    flags = np.array([0, int(FrameFlag.GLITCH | FrameFlag.SYNTHETIC), 2**32 - 1])
    body = zlib.decompress(encode_block(t, f, flags))
    assert len(body) == 3 * BYTES_PER_FRAME == 132
    assert np.array_equal(np.frombuffer(body[:24], "<f8"), t)
    for j in range(4):  # fl, fr, bl, br: one column after the other
        assert np.array_equal(np.frombuffer(body[24 + 24 * j: 48 + 24 * j], "<f8"), f[:, j])
    assert np.array_equal(np.frombuffer(body[120:], "<u4"), flags)


def test_blocks_round_trip_bit_for_bit():
    rng = np.random.default_rng(1)
    t = np.cumsum(rng.uniform(0.001, 0.02, 500))
    f = rng.normal(175.0, 60.0, (500, 4)) + rng.uniform(-1e-4, 1e-4, (500, 4))  # well below 0.1 mN
    flags = rng.integers(0, 16, 500)
    block = decode_block(encode_block(t, f, flags), 500, ENCODING)
    assert np.array_equal(block.t_s, t) and np.array_equal(block.forces_n, f) and np.array_equal(block.flags, flags)
    assert block.forces_n.flags.writeable  # a copy, not a view of the payload


@pytest.mark.parametrize(("payload", "n", "encoding", "message"), [
    (encode_block(np.zeros(1), np.zeros((1, 4))), 1, "f4-raw/9", "unknown frame block encoding"),
    (b"not zlib at all", 1, ENCODING, "damaged frame block"),
    (encode_block(np.zeros(2), np.zeros((2, 4))), 3, ENCODING, "expected 44 x 3 frames"),
    (encode_block(np.zeros(2), np.zeros((2, 4)))[:-3], 2, ENCODING, "damaged frame block"),
])
def test_a_bad_block_is_refused(payload, n, encoding, message):
    with pytest.raises(BlockDecodeError, match=message):
        decode_block(payload, n, encoding)


def test_block_encoder_checks_shapes():
    with pytest.raises(ValueError, match="shape"):
        encode_block(np.zeros(3), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="flags"):
        encode_block(np.zeros(2), np.zeros((2, 4)), np.array([0, -1]))


# -- the trial writer ------------------------------------------------------------------------


def test_frames_are_written_a_block_each_period_in_their_own_transaction(db, visit):
    clock = FakeClock()
    w = start_writer(db, visit, clock=clock, flush_period_s=0.5)
    stored = []
    for i in range(200):  # 2.5 s at 80 Hz, the clock advancing in step with the frames
        clock.now = 1000.0 + i / 80
        w.add((50.0 + i / 80, [100.0 + i, 200.0, 300.0, 400.0]))
        with db.sessions() as other:  # what another connection (a crash's survivor) sees
            stored.append(other.get(Trial, w.trial_id).n_frames)
    # the first block as soon as 0.5 s has passed (frame 40 comes at 0.5 s), then one every 0.5 s:
    # nothing stored is ever more than one period (and one frame) behind
    assert stored[39] == 0 and stored[40] == 41 and stored[79] == 41 and stored[80] == 81
    assert max(i + 1 - n for i, n in enumerate(stored)) == 40
    assert w.blocks_written == 4 and w.frames_written == 161 and w.frames_buffered == 39
    w.finish()
    with db.sessions() as s:
        blocks = s.scalars(select(FrameBlock).where(FrameBlock.trial_id == w.trial_id)
                           .order_by(FrameBlock.block_index)).all()
        assert [b.block_index for b in blocks] == [0, 1, 2, 3, 4]
        assert [b.n_frames for b in blocks] == [41, 40, 40, 40, 39]
        assert blocks[1].first_t_s == (50.0 + 41 / 80) - 50.0 and blocks[1].last_t_s == (50.0 + 80 / 80) - 50.0
        assert s.get(Trial, w.trial_id).state is TrialState.COMPLETE


def test_tick_writes_the_buffer_when_frames_stop_coming(db, visit):
    clock = FakeClock()
    w = start_writer(db, visit, clock=clock)
    w.add((0.0, [1.0, 1.0, 1.0, 1.0]))
    w.add((0.0125, [1.0, 1.0, 1.0, 1.0]))
    assert not w.tick() and w.frames_written == 0
    clock.now += 0.5
    assert w.tick() and w.frames_written == 2
    assert not w.tick()  # nothing left


def test_a_fast_source_gets_blocks_of_bounded_size(db, visit):
    w = start_writer(db, visit, flush_period_s=1e9)
    n = MAX_BLOCK_FRAMES * 2 + 10
    w.add_many((i / 1000, [1.0, 2.0, 3.0, 4.0]) for i in range(n))
    assert w.flush() == n and w.blocks_written == 3
    with db.sessions() as s:
        sizes = s.scalars(select(FrameBlock.n_frames).where(FrameBlock.trial_id == w.trial_id)
                          .order_by(FrameBlock.block_index)).all()
    assert sizes == [MAX_BLOCK_FRAMES, MAX_BLOCK_FRAMES, 10]


def test_the_writer_refuses_bad_frames(db, visit):
    w = start_writer(db, visit)
    w.add((1.0, [1.0, 2.0, 3.0, 4.0]))
    with pytest.raises(ValueError, match="must increase"):
        w.add((1.0, [1.0, 2.0, 3.0, 4.0]))
    with pytest.raises(ValueError, match="4 finite numbers"):
        w.add((2.0, [1.0, math.nan, 3.0, 4.0]))
    with pytest.raises(ValueError, match="4 finite numbers"):
        w.add((2.0, [1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="t_s must be finite"):
        w.add((math.inf, [1.0, 2.0, 3.0, 4.0]))
    w.add((2.0, [1.0, 2.0, 3.0, 4.0]))
    assert w.frames_buffered == 2
    w.finish("aborted", detail="the patient stepped off")
    with pytest.raises(ValueError, match="finished"):
        w.add((3.0, [1.0, 2.0, 3.0, 4.0]))
    with pytest.raises(ValueError, match="already finished"):
        w.finish()
    with db.sessions() as s:
        t = s.get(Trial, w.trial_id)
        assert (t.state, t.state_detail, t.n_frames) == (TrialState.ABORTED, "the patient stepped off", 2)


def test_finish_needs_an_end_state(db, visit):
    w = start_writer(db, visit)
    with pytest.raises(InvalidValue, match="the state the trial ends in"):
        w.finish("running")
    with pytest.raises(InvalidValue, match="not one of"):
        w.finish("done")


def test_a_writer_left_unfinished_ends_the_trial_incomplete(db, visit):
    with pytest.raises(RuntimeError):
        with start_writer(db, visit) as w:
            w.add((0.0, [1.0, 2.0, 3.0, 4.0]))
            raise RuntimeError("the protocol crashed")
    with db.sessions() as s:
        t = s.get(Trial, w.trial_id)
        assert t.state is TrialState.INCOMPLETE and "RuntimeError: the protocol crashed" in t.state_detail
        assert t.n_frames == 1  # the buffered frame was written on the way out


def test_a_trial_recovered_meanwhile_is_not_written_behind_its_back(db, visit):
    w = start_writer(db, visit)
    w.add((0.0, [1.0, 2.0, 3.0, 4.0]))
    with db.sessions() as s:
        assert recover_interrupted(s) == [w.trial_id]
    w.add((0.1, [1.0, 2.0, 3.0, 4.0]))
    with pytest.raises(Conflict, match="no longer running \\(it is incomplete\\)"):
        w.flush()
    assert w.frames_buffered == 2  # kept, in case the caller can do something with them
    with pytest.raises(Conflict):
        w.finish()


@sqlite_only
def test_a_locked_database_keeps_the_frames_for_the_next_try(db, visit, monkeypatch):
    import station.storage.db as dbmod

    w = start_writer(db, visit)
    w.add_many((i / 80, [1.0, 2.0, 3.0, 4.0]) for i in range(5))
    blocker = sqlite3.connect(db.path, timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    monkeypatch.setattr(dbmod, "BUSY_TIMEOUT_S", 0.05)
    quick = dbmod.create_session_factory(dbmod.create_db_engine(db.url))
    w._sessions = quick  # a writer that gives up quickly
    try:
        with pytest.raises(StorageError, match=f"trial {w.trial_id}: cannot store frames .*locked"):
            w.flush()
        assert w.frames_buffered == 5 and w.frames_written == 0
    finally:
        blocker.rollback()
        blocker.close()
    assert w.flush() == 5 and w.frames_buffered == 0
    w.finish()
    quick.kw["bind"].dispose()


# -- recovery and the rebuilt recording ------------------------------------------------


def test_recover_interrupted_keeps_frames_and_marks_only_running_trials(db, visit):
    done = start_writer(db, visit)
    done.add_many((i / 80, [1.0, 2.0, 3.0, 4.0]) for i in range(10))
    done.finish()
    crashed = start_writer(db, visit)
    crashed.add_many((i / 80, [5.0, 6.0, 7.0, 8.0]) for i in range(30))
    crashed.flush()
    crashed.add((30 / 80, [5.0, 6.0, 7.0, 8.0]))  # buffered, never written: lost with the "crash"
    with db.sessions() as s:
        started = s.get(Trial, crashed.trial_id).started_at
        assert recover_interrupted(s) == [crashed.trial_id]
        assert recover_interrupted(s) == []  # nothing left running
    with db.sessions() as s:
        t = s.get(Trial, crashed.trial_id)
        assert t.state is TrialState.INCOMPLETE and t.state_detail.startswith("interrupted")
        assert t.n_frames == 30 and t.duration_s == 29 / 80
        assert t.ended_at == started + dt.timedelta(seconds=29 / 80)
        assert s.get(Trial, done.trial_id).state is TrialState.COMPLETE
        rec = trial_recording(s, crashed.trial_id)
    assert rec.n_samples == 30 and rec.metadata["trial_state"] == "incomplete"


def test_recover_interrupted_can_spare_a_trial_still_being_written(db, visit):
    w = start_writer(db, visit)
    w.add((0.0, [1.0, 2.0, 3.0, 4.0]))
    w.flush()
    with db.sessions() as s:
        assert recover_interrupted(s, stale_after_s=60) == []
        later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=61)
        assert recover_interrupted(s, stale_after_s=60, now=later) == [w.trial_id]


def test_a_station_starting_recovers_only_its_own_trials(db, visit, tmp_path):
    """Two stations on one database: room-a's start-up leaves room-b's running trial alone."""
    url = db.url.render_as_string(hide_password=False)
    room_a = open_database(url, station_id="room-a")
    room_b = open_database(url, station_id="room-b")
    try:
        a = start_writer(room_a, visit)
        b = start_writer(room_b, visit)
        old = start_writer(db, visit)  # no station recorded (as from before schema version 3)
        for w in (a, b, old):
            w.add((0.0, [1.0, 2.0, 3.0, 4.0]))
            w.flush()
        with room_a.sessions() as s:
            assert recover_interrupted(s) == [a.trial_id]  # its own; the unknown one was written just now
            later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=31)
            assert recover_interrupted(s, now=later) == [old.trial_id]  # no station, nothing written for 30 s
        with room_b.sessions() as s:
            assert get_trial(s, b.trial_id).state is TrialState.RUNNING
            assert get_trial(s, a.trial_id).station_id == "room-a"
        b.add((0.0125, [1.0, 2.0, 3.0, 4.0]))
        b.finish()  # room-b's trial was never taken from it
        with db.sessions() as s:
            assert recover_interrupted(s) == []  # a database opened without a station recovers every trial
    finally:
        room_a.close()
        room_b.close()


def test_the_recording_rebuilt_from_the_database_is_what_was_written(db, visit, tmp_path):
    frames = simulated_frames(400)
    assert any(f.flags & FrameFlag.GLITCH for f in frames)  # flags are kept too
    calib = simulator_calibration()
    w = start_writer(db, visit, calibration=calib, plate_source="simulated", protocol="quiet-stance",
                     stance_side=None)
    for frame in frames:
        w.add(frame)
    w.finish()
    with db.sessions() as s:
        rec = trial_recording(s, w.trial_id)
        started = get_trial(s, w.trial_id).started_at
    t0 = frames[0].t_s
    assert np.array_equal(rec.t_s, [f.t_s - t0 for f in frames])  # exactly, not approximately
    assert np.array_equal(rec.forces_n, [f.forces_n for f in frames])
    assert np.array_equal(rec.extra["flags"], [int(f.flags) for f in frames])
    assert rec.sample_rate_hz == 80.0 and rec.geometry == GEOMETRY
    assert rec.metadata == {
        "protocol": "quiet-stance", "patient": "P-001", "started_at": started.isoformat(timespec="seconds"),
        "calibration": f"builtin:simulator {calib.created_at.date()}", "trial_id": str(w.trial_id),
        "trial_state": "complete", "plate_source": "simulated",
    }
    # the file: parses as a recording, with the contract's precision
    with db.sessions() as s:
        write_trial_recording(s, w.trial_id, tmp_path / "trial.csv")
    back = read_recording(tmp_path / "trial.csv")
    assert back.n_samples == 400 and back.metadata["patient"] == "P-001" and back.metadata["protocol"] == "quiet-stance"
    assert np.max(np.abs(back.forces_n - rec.forces_n)) <= 0.5e-4  # 0.1 mN: 4 decimals
    assert np.max(np.abs(back.t_s - rec.t_s)) <= 0.5e-6
    assert recording_to_text(back) == recording_to_text(rec)  # and the same file text again


def test_a_running_trial_can_be_exported_with_what_is_stored_so_far(db, visit):
    w = start_writer(db, visit)
    w.add_many((i / 80, [1.0, 2.0, 3.0, 4.0]) for i in range(50))
    w.flush()
    w.add((50 / 80, [1.0, 2.0, 3.0, 4.0]))
    with db.sessions() as s:
        buf = io.StringIO()
        write_trial_recording(s, w.trial_id, buf)
    rec = parse_recording(buf.getvalue())
    assert rec.n_samples == 50 and rec.metadata["trial_state"] == "running" and rec.metadata["stance_side"] == "left"


def test_too_few_frames_or_no_trial_is_a_clear_error(db, visit):
    w = start_writer(db, visit)
    w.add((0.0, [1.0, 2.0, 3.0, 4.0]))
    w.finish()
    with db.sessions() as s:
        with pytest.raises(StorageError, match=f"trial {w.trial_id} has 1 frame stored: too few"):
            trial_recording(s, w.trial_id)
        with pytest.raises(NotFound, match="no trial 999"):
            trial_recording(s, 999)


def test_a_damaged_block_is_named(db, visit):
    w = start_writer(db, visit)
    w.add_many((i / 80, [1.0, 2.0, 3.0, 4.0]) for i in range(10))
    w.finish()
    with db.write() as s:
        s.get(FrameBlock, (w.trial_id, 0)).payload = b"garbage"
    with db.sessions() as s, pytest.raises(StorageError, match=f"trial {w.trial_id}: frame block 0: damaged"):
        trial_recording(s, w.trial_id)


# -- live trials -----------------------------------------------------------------------------


def test_a_live_trial_is_stored_while_it_runs(db, visit):
    feed = ListFeed()
    live = LiveStation(feed, ForcePipeline(simulator_calibration(), GEOMETRY))
    trial = LiveTrialWriter.begin(live, db, patient_code="P-001", protocol="single-leg", stance_side="right")
    assert live.trial_running  # no re-zeroing while it runs
    sent = []
    for raw in raw_frames(240, fz_n=650.0, x_mm=12.0, y_mm=-8.0):
        sent.append(live.ingest(raw))
    trial_id = trial.stop("complete", {"hold_time_s": 3.0})
    assert not live.trial_running and not trial.running
    assert trial.frames_written == 240 and trial.error == "" and trial.rejected_frames == 0
    with db.sessions() as s:
        t = get_trial(s, trial_id)
        assert t.state is TrialState.COMPLETE and t.metrics == {"hold_time_s": 3.0}
        assert t.session_id == visit.id  # today's visit, reused
        assert t.plate_source == "simulated" and t.calibration["label"].startswith("builtin:simulator")
        rec = trial_recording(s, trial_id)
    assert np.array_equal(rec.forces_n, [f.forces_n for f in sent])
    assert rec.t_s[-1] == pytest.approx(239 / 80)
    with pytest.raises(ValueError, match="already stopped"):
        trial.stop()


def test_frames_the_queue_could_not_hold_are_counted(db, visit):
    live = LiveStation(ListFeed(), ForcePipeline(simulator_calibration(), GEOMETRY))
    trial = LiveTrialWriter.begin(live, db, patient_code="P-001", protocol="free", queue_frames=10)
    trial._stop.set()
    trial._thread.join()  # the thread is gone: nothing drains the queue
    for raw in raw_frames(25):
        live.ingest(raw)
    trial._stopped = False
    trial._thread = __import__("threading").Thread(target=trial._run)
    trial._thread.start()
    trial.stop()
    with db.sessions() as s:
        t = get_trial(s, trial.trial_id)
    assert t.n_frames == 10 and t.frames_dropped == 15


# -- balance-station record -------------------------------------------------------------------


def record_args(tmp_path, *argv):
    p = argparse.ArgumentParser()
    p.add_argument("--plate", default=None)
    p.add_argument("--config", default=None)
    p.add_argument("--data-dir", default=str(tmp_path / "data"))
    add_arguments(p)
    return p.parse_args(list(argv))


def use_database(monkeypatch, db):
    """The command line's settings point at the test's database (a PostgreSQL one is not in --data-dir)."""
    if not db.is_sqlite:
        monkeypatch.setenv("BALANCE_STATION_DATABASE_URL", db.url.render_as_string(hide_password=False))


def test_record_writes_a_stored_trial(db, visit, tmp_path, capsys, monkeypatch):
    use_database(monkeypatch, db)
    w = start_writer(db, visit)
    w.add_many((i / 80, [150.0 + i, 160.0, 170.0, 180.0]) for i in range(100))
    w.finish()
    out = tmp_path / "out" / "trial.csv"
    assert record_command(record_args(tmp_path, "--trial", str(w.trial_id), "-o", str(out))) == 0
    rec = read_recording(out)
    assert rec.n_samples == 100 and rec.metadata["trial_id"] == str(w.trial_id)
    assert f"trial {w.trial_id} (single-leg, left, P-001, complete): 100 frames, 1.2 s written to {out}" in \
        capsys.readouterr().err


@sqlite_only
def test_record_says_what_is_wrong(tmp_path, db):
    with pytest.raises(StorageError, match=r"station\.db: no trial 77"):
        record_command(record_args(tmp_path, "--trial", "77", "-o", str(tmp_path / "x.csv")))
    with pytest.raises(StorageError, match="no database"):
        record_command(record_args(tmp_path, "--data-dir", str(tmp_path / "empty"), "--trial", "1",
                                   "-o", str(tmp_path / "x.csv")))
    with pytest.raises(UserError, match="--duration-s S"):
        record_command(record_args(tmp_path, "--live", "-o", str(tmp_path / "x.csv")))
    with pytest.raises(UserError, match="at most 3600"):
        record_command(record_args(tmp_path, "--live", "--duration-s", "0", "-o", str(tmp_path / "x.csv")))
    with pytest.raises(UserError, match="--duration-s goes with --live"):
        record_command(record_args(tmp_path, "--trial", "1", "--duration-s", "3", "-o", str(tmp_path / "x.csv")))
    with pytest.raises(UserError, match="is a directory"):
        record_command(record_args(tmp_path, "--trial", "1", "-o", str(tmp_path)))
    with pytest.raises(NotFound, match="no patient with code 'P-404'"):  # said before any plate starts
        record_command(record_args(tmp_path, "--plate", "simulated", "--live", "--duration-s", "1",
                                   "--patient", "P-404", "-o", str(tmp_path / "x.csv")))


@pytest.mark.slow
def test_record_live_stores_the_trial_and_writes_the_file(db, visit, tmp_path, monkeypatch):
    use_database(monkeypatch, db)
    out = tmp_path / "live.csv"
    args = record_args(tmp_path, "--plate", "simulated", "--live", "--duration-s", "1", "--patient", "P-001",
                       "--protocol", "single-leg", "--stance-side", "right", "-o", str(out))
    assert record_command(args) == 0
    rec = read_recording(out)
    assert rec.metadata["protocol"] == "single-leg" and rec.metadata["stance_side"] == "right"
    assert rec.metadata["plate_source"] == "simulated" and rec.metadata["trial_state"] == "complete"
    assert 60 <= rec.n_samples <= 100 and 0.7 <= rec.span_s <= 1.3  # a second of the simulated plate
    assert rec.fz_n.mean() == pytest.approx(70 * 9.80665, rel=0.05)  # the simulated 70 kg person
    with db.sessions() as s:
        (t,) = list_trials(s, "P-001")
    assert t.n_frames == rec.n_samples and t.state is TrialState.COMPLETE


@pytest.mark.slow
def test_record_live_with_the_pelvis_sensor_writes_its_column(db, visit, tmp_path, monkeypatch):
    """A ``[pelvis]`` section: the file (straight from the plate, or rebuilt from the stored trial) has the
    sensor's obliquity at every frame's time."""
    from station.core.recording import PELVIS_COLUMN

    use_database(monkeypatch, db)
    config = tmp_path / "station.toml"
    config.write_text("[pelvis]\n", encoding="utf-8")
    for extra in ([], ["--patient", "P-001"]):
        out = tmp_path / f"pelvis-{len(extra)}.csv"
        args = record_args(tmp_path, "--config", str(config), "--plate", "simulated", "--live", "--duration-s", "1",
                           *extra, "-o", str(out))
        assert record_command(args) == 0
        rec = read_recording(out)
        deg = rec.extra[PELVIS_COLUMN]
        assert rec.n_samples >= 60 and len(deg) == rec.n_samples
        assert np.isfinite(deg).all() and np.abs(deg).max() < 15.0  # the simulated patient's pelvis, in degrees


def test_a_database_that_takes_no_write_now_still_opens_for_a_station(db, monkeypatch, caplog):
    """The station's contact row is best effort: opening never fails on it (a full disk, a read-only account)."""
    from sqlalchemy.exc import OperationalError

    import station.storage.db as db_module

    def refuse(*_a, **_k):
        raise OperationalError("INSERT INTO stations", {}, Exception("disk I/O error"))

    monkeypatch.setattr(db_module, "touch_station", refuse)
    again = open_database(db.url.render_as_string(hide_password=False), station_id="room-a")
    again.close()
    assert "cannot note station room-a's start-up" in caplog.text and "disk I/O error" in caplog.text


def test_blocks_with_the_pelvis_column_round_trip_and_the_trial_rebuilds_it(db, visit):
    """Issue 14: a trial recorded with the pelvis sensor stores the column (NaN: no value) in its blocks."""
    from station.core.recording import PELVIS_COLUMN
    from station.storage.blocks import ENCODING_PELVIS

    t = np.arange(4) / 80.0
    f = np.full((4, 4), 170.0)
    p = np.array([1.5, np.nan, -0.25, 3.0])
    block = decode_block(encode_block(t, f, None, pelvis_deg=p), 4, ENCODING_PELVIS)
    assert np.array_equal(block.pelvis_deg, p, equal_nan=True)
    assert decode_block(encode_block(t, f), 4, ENCODING).pelvis_deg is None
    with pytest.raises(BlockDecodeError, match="expected 52 x 4 frames"):
        decode_block(encode_block(t, f), 4, ENCODING_PELVIS)
    writer = TrialWriter.start(db.sessions, session_id=visit.id, protocol="single-leg", stance_side="left",
                               sample_rate_hz=80.0, geometry=PlateGeometry(), max_block_frames=3)
    for k in range(4):
        writer.add((float(t[k]), f[k]), pelvis_deg=float(p[k]))
    writer.finish("complete", {})
    with db.sessions() as s:
        rec = trial_recording(s, writer.trial_id)
    assert np.array_equal(rec.extra[PELVIS_COLUMN], p, equal_nan=True)
