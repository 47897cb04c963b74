"""The station's spool: trials, frames and new patients kept locally while the clinic database is unreachable.

A station on a clinic PostgreSQL server keeps testing when the server does not answer. What it would
have written there goes to the spool, a SQLite file in its data folder (:data:`SPOOL_FILE`, WAL and
a sync at every commit, like the station's own database), and is uploaded when the server answers
again, by :class:`SpoolUploader` (a thread that checks every few seconds).

Exactly once, in order, nothing lost
    Every spooled patient, trial and frame block carries a client-generated key (a UUID), stored with
    it in the database (``upload_key``, unique: schema version 6). A trial is uploaded in one
    transaction: its patient's visit, the trial row, its missing blocks; then the spool marks it
    uploaded. A crash between the two finds the keys already there at the next try and inserts
    nothing twice. Trials go up in the order they were started, and the upload stops at the first
    that fails, so a later one never overtakes it. The spool commits every block (every 0.5 s) and
    survives a restart; a trial that was still running when the station stopped is kept as
    ``incomplete`` (:meth:`Spool.recover_interrupted`), as in the database.

The trial id a therapist sees offline is the trial's id for good
    While the database answers, the uploader reserves trial ids for the station
    (:data:`RESERVE_IDS` at a time, refilled below :data:`REFILL_BELOW`), each one a row of
    ``trial_id_reservations``. On PostgreSQL they are taken from the ``trials`` id sequence
    (``nextval``), so no other station, and no trial stored online, can ever get one of them; on
    SQLite, where there is no sequence, a new trial's id is above every reserved one
    (:func:`station.storage.trials.next_sqlite_trial_id`). A trial recorded offline takes the next
    reserved id and is inserted with it. Ids stay small and in the same series as the others
    (unlike a per-station range); the cost is gaps, as with any sequence. A station that has used
    up its reserved ids (more than :data:`RESERVE_IDS` trials in one outage) says so and refuses
    further trials until the database answers.

A patient code made in two rooms while offline
    The rule: the first to reach the database keeps the code. A spooled patient whose code is
    already there under another key (made in another room, or online meanwhile) is stored as
    ``CODE-<station>`` (made unique with ``-2``, ``-3``...), with its trials; the station shows
    the rename to the therapist (:meth:`Spool.notices`, the status line) and writes it in the audit
    log (action ``upload_conflict``), so that the two can be merged by hand when they are the same
    person. The two are never merged automatically: two persons' trials must not be mixed.

Web sessions
    Logins live in the database; the spool keeps a copy of every web session verified while the
    database answered (:meth:`Spool.remember_session`), so a therapist already logged in keeps
    using the station's page during an outage (within the same idle and maximum-age limits). A new
    login needs the database. A logout during an outage ends the session here at once, and in the
    database when it answers again.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Engine,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from station.core.geometry import PlateGeometry
from station.storage.accounts import audit, hash_token
from station.storage.blocks import ENCODING
from station.storage.db import (
    Database,
    StorageError,
    create_db_engine,
    database_reachable,
    finish_opening,
    write_session,
)
from station.storage.models import (
    PATIENT_CODE_MAX_LEN,
    AffectedSide,
    ClinicSession,
    FrameBlock,
    Patient,
    Sex,
    StanceSide,
    Trial,
    TrialIdReservation,
    TrialState,
    User,
    UTCDateTime,
    WebSession,
    utc_now,
)
from station.storage.stations import touch_station
from station.storage.trials import TrialWriter
from station.storage.values import (
    PROTOCOL_RE,
    Conflict,
    InvalidValue,
    NotFound,
    as_enum,
    calibration_summary,
    plain_json,
    validate_patient_code,
)

__all__ = [
    "REFILL_BELOW",
    "RESERVE_IDS",
    "SPOOL_FILE",
    "Spool",
    "SpoolTrialWriter",
    "SpoolUploader",
    "UploadReport",
    "database_reachable",
    "offline_message",
]

log = logging.getLogger(__name__)

#: the spool's file in the station's data folder
SPOOL_FILE = "spool.db"
#: trial ids reserved at a time while the database answers
RESERVE_IDS = 50
#: reserve more when fewer than this many are left
REFILL_BELOW = 25
#: how often the uploader checks the database, in s
CHECK_EVERY_S = 5.0
#: how long the status shows what an upload changed (a patient code conflict), in days
NOTICE_DAYS = 14.0

_M = MetaData()
_IDS = Table(
    "spool_ids", _M,
    Column("trial_id", Integer, primary_key=True, autoincrement=False),
    Column("station_id", String(64), nullable=False),
    Column("used", Boolean, nullable=False, default=False),
)
_KNOWN = Table(  # the database's patients, copied while it answers (to start a test offline)
    "spool_known_patients", _M,
    Column("code_lower", String(PATIENT_CODE_MAX_LEN), primary_key=True),
    Column("code", String(PATIENT_CODE_MAX_LEN), nullable=False),
    Column("birth_year", Integer),
)
_PATIENTS = Table(  # patients made offline, uploaded in seq order
    "spool_patients", _M,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("upload_key", String(36), nullable=False, unique=True),
    Column("code", String(PATIENT_CODE_MAX_LEN), nullable=False),
    Column("code_lower", String(PATIENT_CODE_MAX_LEN), nullable=False, unique=True),
    Column("birth_year", Integer),
    Column("sex", String(20)),
    Column("height_cm", Float),
    Column("affected_side", String(20)),
    Column("notes", Text, nullable=False, default=""),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("uploaded_at", UTCDateTime()),
    #: the code it was stored under in the database (another one after a conflict)
    Column("stored_code", String(PATIENT_CODE_MAX_LEN)),
)
_TRIALS = Table(
    "spool_trials", _M,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("trial_id", Integer, nullable=False, unique=True),
    Column("upload_key", String(36), nullable=False, unique=True),
    Column("patient_code", String(PATIENT_CODE_MAX_LEN), nullable=False),
    Column("station_id", String(64)),
    Column("state", String(20), nullable=False),
    Column("state_detail", Text, nullable=False, default=""),
    Column("protocol", String(40), nullable=False),
    Column("stance_side", String(20)),
    Column("settings", JSON, nullable=False),
    Column("metrics", JSON),
    Column("calibration", JSON),
    Column("notes", Text, nullable=False, default=""),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime()),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("sample_rate_hz", Float, nullable=False),
    Column("plate_ml_mm", Float, nullable=False),
    Column("plate_ap_mm", Float, nullable=False),
    Column("feet_ml_mm", Float, nullable=False),
    Column("plate_source", String(40), nullable=False, default=""),
    Column("n_frames", Integer, nullable=False, default=0),
    Column("duration_s", Float, nullable=False, default=0.0),
    Column("frames_dropped", Integer, nullable=False, default=0),
    #: started in the database, handed over to the spool when it stopped answering (:meth:`Spool.adopt`):
    #: the upload completes the trial row that is there
    Column("adopted", Boolean, nullable=False, default=False),
    Column("uploaded_at", UTCDateTime()),
)
_BLOCKS = Table(
    "spool_blocks", _M,
    Column("trial_id", Integer, primary_key=True, autoincrement=False),
    Column("block_index", Integer, primary_key=True, autoincrement=False),
    Column("upload_key", String(36), nullable=False, unique=True),
    Column("first_t_s", Float, nullable=False),
    Column("last_t_s", Float, nullable=False),
    Column("n_frames", Integer, nullable=False),
    Column("encoding", String(20), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("written_at", UTCDateTime(), nullable=False),
)
_SESSIONS = Table(
    "spool_web_sessions", _M,
    Column("token_hash", String(64), primary_key=True),
    Column("session_id", Integer, nullable=False),
    Column("user_id", Integer, nullable=False),
    Column("username", String(64), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("client", String(64), nullable=False, default=""),
    #: logged out while the database did not answer: ended there when it answers again
    Column("ended", Boolean, nullable=False, default=False),
)
_NOTICES = Table(
    "spool_notices", _M,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("message", Text, nullable=False),
)


def offline_message(waiting: int) -> str:
    """The status line: ``offline: N trials waiting to upload``."""
    return f"offline: {waiting} trial{'' if waiting == 1 else 's'} waiting to upload"


def _value(member: Any) -> str | None:
    return None if member is None else str(member.value)


def _new_key() -> str:
    return str(uuid.uuid4())


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return (str(orig if orig is not None else exc).strip().splitlines() or [type(exc).__name__])[0][:200]


@dataclass
class UploadReport:
    """What one :meth:`Spool.upload` did."""

    patients: int = 0
    trials: list[int] = field(default_factory=list)
    blocks: int = 0
    conflicts: list[str] = field(default_factory=list)
    #: trials this upload could not store, each with why (they stay in the spool; the others go on)
    held: list[str] = field(default_factory=list)
    error: str = ""


class Spool:
    """The spool file of one station (``<data_dir>/spool.db``); thread-safe (each call its own transaction)."""

    def __init__(self, path: str | Path, *, station_id: str | None = None) -> None:
        self.path = Path(path)
        self.station_id = station_id
        self.engine: Engine = create_db_engine(f"sqlite:///{self.path}")
        _M.create_all(self.engine)
        #: the database answered at the last check (None: not checked yet)
        self.online: bool | None = None
        #: the trials the last upload could not store (their reasons are in the notices)
        self.held_trials: set[int] = set()
        self._upload_lock = threading.Lock()

    @classmethod
    def open(cls, data_dir: str | Path, *, station_id: str | None = None) -> Spool:
        return cls(Path(data_dir).expanduser().resolve() / SPOOL_FILE, station_id=station_id)

    def close(self) -> None:
        self.engine.dispose()

    def _write(self) -> Any:
        return self.engine.connect().execution_options(sqlite_begin="IMMEDIATE")

    # -- trial ids ---------------------------------------------------------------------------------
    def free_ids(self) -> int:
        with self.engine.connect() as c:
            return int(c.scalar(select(func.count()).select_from(_IDS).where(_IDS.c.used.is_(False))) or 0)

    def reserve_ids(self, db: Database, n: int = RESERVE_IDS) -> list[int]:
        """Reserve ``n`` trial ids for this station in the database and keep them here."""
        station = self.station_id or db.station_id or ""
        if not station:
            raise StorageError("reserving trial ids needs the station's station_id")
        now = utc_now()
        with write_session(db.sessions) as session:
            if session.get_bind().dialect.name == "postgresql":
                ids = [int(v) for v in session.scalars(
                    text("SELECT nextval(pg_get_serial_sequence('trials', 'id')) FROM generate_series(1, :n)"),
                    {"n": int(n)})]
            else:
                from station.storage.trials import next_sqlite_trial_id

                first = next_sqlite_trial_id(session)
                ids = list(range(first, first + int(n)))
            session.execute(insert(TrialIdReservation), [
                {"trial_id": i, "station_id": station, "reserved_at": now} for i in ids])
        with self._write() as c, c.begin():
            c.execute(insert(_IDS), [{"trial_id": i, "station_id": station, "used": False} for i in ids])
        log.info("reserved %d trial ids for station %s (%d..%d)", len(ids), station, min(ids), max(ids))
        return ids

    # -- patients ----------------------------------------------------------------------------------
    @property
    def offline(self) -> bool:
        """The last check found the database unreachable (callers then go straight to the spool, instead of
        waiting for a connection that times out)."""
        return self.online is False

    def remember_patients(self, db: Database) -> int:
        """Copy the database's patient codes (and birth years) here, when they changed; returns how many."""
        with db.sessions() as session:
            rows = {(str(code), by) for code, by in session.execute(select(Patient.code, Patient.birth_year))}
        with self.engine.connect() as c:
            kept = {(str(code), by) for code, by in c.execute(select(_KNOWN.c.code, _KNOWN.c.birth_year))}
        if rows != kept:  # no write (and no sync of the SD card) every few seconds for nothing
            with self._write() as c, c.begin():
                c.execute(delete(_KNOWN))
                if rows:
                    c.execute(insert(_KNOWN), [{"code_lower": code.lower(), "code": code, "birth_year": by}
                                               for code, by in rows])
        return len(rows)

    def find_patient(self, code: str) -> tuple[str, int | None]:
        """(code, birth year) of a patient known here (copied from the database, or made offline);
        :class:`NotFound` otherwise."""
        key = str(code).strip().lower()
        with self.engine.connect() as c:
            row = c.execute(select(_PATIENTS.c.code, _PATIENTS.c.birth_year)
                            .where(_PATIENTS.c.code_lower == key, _PATIENTS.c.uploaded_at.is_(None))).first()
            if row is None:
                row = c.execute(select(_KNOWN.c.code, _KNOWN.c.birth_year).where(_KNOWN.c.code_lower == key)).first()
        if row is None:
            raise NotFound(f"no patient with code {str(code).strip()!r} (the database is unreachable: "
                           "this station knows the patients it saw while it answered, and those made here)")
        return str(row[0]), row[1]

    def patients(self) -> list[tuple[str, int | None]]:
        """(code, birth year) of every patient known here (copied from the database, or made offline), by code."""
        with self.engine.connect() as c:
            made = {str(code).lower(): (str(code), by) for code, by in c.execute(
                select(_PATIENTS.c.code, _PATIENTS.c.birth_year).where(_PATIENTS.c.uploaded_at.is_(None)))}
            known = {str(code).lower(): (str(code), by) for code, by in c.execute(
                select(_KNOWN.c.code, _KNOWN.c.birth_year))}
        return sorted({**known, **made}.values(), key=lambda p: p[0].lower())

    def add_patient(self, code: str, *, birth_year: int | None = None, sex: Sex | str | None = None,
                    height_cm: float | None = None, affected_side: AffectedSide | str | None = None,
                    notes: str = "") -> dict[str, Any]:
        """Keep a new patient made while the database is unreachable; :class:`Conflict` when the code is known here."""
        from station.storage.patients import _check_birth_year, _check_height

        c_code = validate_patient_code(code)
        _check_birth_year(birth_year)
        _check_height(height_cm)
        row = {
            "upload_key": _new_key(), "code": c_code, "code_lower": c_code.lower(),
            "birth_year": None if birth_year is None else int(birth_year),
            "sex": _value(as_enum(Sex, sex, "sex")),
            "height_cm": None if height_cm is None else float(height_cm),
            "affected_side": _value(as_enum(AffectedSide, affected_side, "affected_side")),
            "notes": str(notes or ""), "created_at": utc_now(),
        }
        with self._write() as c, c.begin():
            taken = c.scalar(select(func.count()).select_from(_KNOWN).where(_KNOWN.c.code_lower == row["code_lower"]))
            taken = taken or c.scalar(select(func.count()).select_from(_PATIENTS)
                                      .where(_PATIENTS.c.code_lower == row["code_lower"]))
            if taken:
                raise Conflict(f"patient code {c_code!r} is already taken")
            c.execute(insert(_PATIENTS).values(**row))
        return {**row, "offline": True}

    # -- trials ------------------------------------------------------------------------------------
    def start_trial(self, *, patient_code: str, protocol: str, sample_rate_hz: float, geometry: PlateGeometry,
                    stance_side: StanceSide | str | None = None, settings: Mapping[str, Any] | None = None,
                    calibration: Any = None, plate_source: str = "", notes: str = "",
                    station_id: str | None = None, **writer_options: Any) -> SpoolTrialWriter:
        """Start a trial here, with the next reserved id (:class:`StorageError` when none is left)."""
        if not isinstance(protocol, str) or not PROTOCOL_RE.match(protocol):
            raise InvalidValue(f"protocol {protocol!r} must be a word of letters, digits, '-', '_', '.'")
        code, _ = self.find_patient(patient_code)
        side = as_enum(StanceSide, stance_side, "stance_side")
        now = utc_now()
        with self._write() as c, c.begin():
            trial_id = c.scalar(select(_IDS.c.trial_id).where(_IDS.c.used.is_(False))
                                .order_by(_IDS.c.trial_id).limit(1))
            if trial_id is None:
                raise StorageError("the database is unreachable and this station has no trial id left for "
                                   "a trial recorded offline: wait for the database to answer")
            c.execute(update(_IDS).where(_IDS.c.trial_id == trial_id).values(used=True))
            c.execute(insert(_TRIALS).values(
                trial_id=trial_id, upload_key=_new_key(), patient_code=code,
                station_id=station_id or self.station_id, state=TrialState.RUNNING.value, state_detail="",
                protocol=protocol, stance_side=side.value if side else None,
                settings=plain_json(dict(settings or {}), what="settings"),
                calibration=calibration_summary(calibration), notes=str(notes or ""), started_at=now,
                updated_at=now, sample_rate_hz=float(sample_rate_hz), plate_ml_mm=geometry.ml_mm,
                plate_ap_mm=geometry.ap_mm, feet_ml_mm=geometry.feet_ml_mm, plate_source=str(plate_source or "")))
        log.info("trial %d: the database is unreachable, recorded into the spool", trial_id)
        return SpoolTrialWriter(self, int(trial_id), **writer_options)

    def adopt(self, writer: TrialWriter, *, patient_code: str, protocol: str, sample_rate_hz: float,
              geometry: PlateGeometry, stance_side: StanceSide | str | None = None,
              settings: Mapping[str, Any] | None = None, calibration: Any = None, plate_source: str = "",
              station_id: str | None = None, **_: Any) -> SpoolTrialWriter:
        """Take over a running trial whose database stopped answering: its frames not stored yet, and the
        ones to come, go here, from the block after the last one stored; the upload completes the trial
        row that is in the database (same id). Returns the writer to use from now on."""
        side = as_enum(StanceSide, stance_side, "stance_side")
        now = utc_now()
        with self._write() as c, c.begin():
            c.execute(insert(_TRIALS).values(
                trial_id=writer.trial_id, upload_key=_new_key(), patient_code=str(patient_code),
                station_id=station_id or self.station_id, state=TrialState.RUNNING.value, state_detail="",
                protocol=protocol, stance_side=side.value if side else None,
                settings=plain_json(dict(settings or {}), what="settings"),
                calibration=calibration_summary(calibration), notes="", started_at=now, updated_at=now,
                sample_rate_hz=float(sample_rate_hz), plate_ml_mm=geometry.ml_mm, plate_ap_mm=geometry.ap_mm,
                feet_ml_mm=geometry.feet_ml_mm, plate_source=str(plate_source or ""), adopted=True))
        spooled = SpoolTrialWriter(self, writer.trial_id, flush_period_s=writer.flush_period_s,
                                   max_block_frames=writer.max_block_frames, clock=writer._clock)  # noqa: SLF001
        spooled._take_over(writer)  # noqa: SLF001
        log.warning("trial %d: the database stopped answering; the rest of the trial goes to the spool",
                    writer.trial_id)
        return spooled

    def recover_interrupted(self) -> list[int]:
        """Trials left running here by a station that stopped: kept as ``incomplete`` (once, at start-up)."""
        now = utc_now()
        with self._write() as c, c.begin():
            ids = [int(i) for i in c.scalars(select(_TRIALS.c.trial_id).where(
                _TRIALS.c.state == TrialState.RUNNING.value))]
            if ids:
                c.execute(update(_TRIALS).where(_TRIALS.c.trial_id.in_(ids)).values(
                    state=TrialState.INCOMPLETE.value, ended_at=now, updated_at=now,
                    state_detail="interrupted: the station stopped while the trial was recorded offline; "
                                 "kept with the frames stored up to then"))
        return ids

    def waiting(self) -> int:
        """Trials here not yet uploaded (running ones included)."""
        with self.engine.connect() as c:
            return int(c.scalar(select(func.count()).select_from(_TRIALS)
                                .where(_TRIALS.c.uploaded_at.is_(None))) or 0)

    def trial(self, trial_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            row = c.execute(select(_TRIALS).where(_TRIALS.c.trial_id == int(trial_id))).mappings().first()
        return dict(row) if row is not None else None

    def pending_trials(self) -> list[dict[str, Any]]:
        """The trials waiting to upload, oldest first."""
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(select(_TRIALS).where(_TRIALS.c.uploaded_at.is_(None))
                                               .order_by(_TRIALS.c.seq)).mappings()]

    # -- notices and status ------------------------------------------------------------------------
    def note(self, message: str) -> None:
        with self._write() as c, c.begin():
            c.execute(insert(_NOTICES).values(at=utc_now(), message=str(message)))

    def notices(self, limit: int = 20, *, days: float = NOTICE_DAYS) -> list[dict[str, Any]]:
        """What the therapist must know about the uploads of the last ``days`` (patient code conflicts), newest
        first (the audit log keeps them for good)."""
        since = utc_now() - dt.timedelta(days=days)
        with self.engine.connect() as c:
            rows = c.execute(select(_NOTICES.c.at, _NOTICES.c.message).where(_NOTICES.c.at >= since)
                             .order_by(_NOTICES.c.id.desc()).limit(limit)).all()
        return [{"at": at.isoformat(timespec="seconds"), "message": m} for at, m in rows]

    def status(self) -> dict[str, Any]:
        """``online`` (None before the first check), ``waiting_trials``, ``held_trials`` (refused by the
        database at the last upload), ``message`` ("offline: N trials waiting to upload", "uploading: N
        trials waiting", "N trials cannot be uploaded (see the notices)" or ""), ``free_trial_ids``,
        ``notices``."""
        waiting = self.waiting()
        held = len(self.held_trials)
        if self.online is False:
            message = offline_message(waiting)
        elif waiting and held:
            message = (f"{held} trial{'' if held == 1 else 's'} cannot be uploaded (see the notices)"
                       + (f", {waiting - held} waiting" if waiting > held else ""))
        elif waiting:
            message = f"uploading: {waiting} trial{'' if waiting == 1 else 's'} waiting"
        else:
            message = ""
        return {"online": self.online, "waiting_trials": waiting, "held_trials": held, "message": message,
                "free_trial_ids": self.free_ids(), "notices": self.notices(5)}

    # -- web sessions ------------------------------------------------------------------------------
    def remember_session(self, web_session: WebSession, username: str) -> None:
        """Keep a web session verified by the database, so it keeps working during an outage."""
        row = {"token_hash": web_session.token_hash, "session_id": web_session.id, "user_id": web_session.user_id,
               "username": username, "csrf_token": web_session.csrf_token, "created_at": web_session.created_at,
               "last_seen_at": web_session.last_seen_at, "expires_at": web_session.expires_at,
               "client": web_session.client or "", "ended": False}
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(_SESSIONS).values(**row)
        with self._write() as c, c.begin():
            c.execute(stmt.on_conflict_do_update(index_elements=[_SESSIONS.c.token_hash],
                                                 set_={k: stmt.excluded[k] for k in row if k != "token_hash"}))
            c.execute(delete(_SESSIONS).where(_SESSIONS.c.expires_at <= utc_now(), _SESSIONS.c.ended.is_(False)))

    def forget_session(self, token: str | None, *, ended_offline: bool = False) -> None:
        """The session's copy is gone (logout); ``ended_offline``: end it in the database when it answers."""
        if not token:
            return
        where = _SESSIONS.c.token_hash == hash_token(token)
        with self.engine.connect() as c:
            if not c.scalar(select(func.count()).select_from(_SESSIONS).where(where)):
                return  # nothing to write (a stale cookie costs no write)
        with self._write() as c, c.begin():
            if ended_offline:
                c.execute(update(_SESSIONS).where(where).values(ended=True))
            else:
                c.execute(delete(_SESSIONS).where(where))

    def find_session(self, token: str | None, *, idle: dt.timedelta, now: dt.datetime | None = None,
                     ) -> WebSession | None:
        """The copy of a live web session (a :class:`WebSession` with its :class:`User`, not in any database
        session), for a request while the database is unreachable; None when unknown, ended, expired or idle."""
        if not token or len(token) > 256:
            return None
        now = now or utc_now()
        with self.engine.connect() as c:
            row = c.execute(select(_SESSIONS).where(_SESSIONS.c.token_hash == hash_token(token))).mappings().first()
        if row is None or row["ended"] or row["expires_at"] <= now or row["last_seen_at"] <= now - idle:
            return None
        user = User(id=row["user_id"], username=row["username"], password_hash="", disabled=False, failed_logins=0)
        return WebSession(id=row["session_id"], token_hash=row["token_hash"], user_id=row["user_id"],
                          csrf_token=row["csrf_token"], created_at=row["created_at"],
                          last_seen_at=row["last_seen_at"], expires_at=row["expires_at"], client=row["client"],
                          user=user)

    def touch_session(self, token: str, now: dt.datetime | None = None) -> None:
        with self._write() as c, c.begin():
            c.execute(update(_SESSIONS).where(_SESSIONS.c.token_hash == hash_token(token))
                      .values(last_seen_at=now or utc_now()))

    # -- upload ------------------------------------------------------------------------------------
    def upload(self, db: Database) -> UploadReport:
        """Upload what waits here, in order: logouts, patients, then every ended trial (one transaction each).

        Stops at the first failure of the database (said in ``error``); a trial still running here waits
        for its end, and the trials after it wait for it (the order is kept). A trial the database refuses
        for itself (its id taken by another trial, its patient gone) stays in the spool, is said once in the
        notices and in ``held``, and does not hold the others back: it is tried again at every upload.
        """
        report = UploadReport()
        with self._upload_lock:
            held: set[int] = set()
            try:
                self._upload_logouts(db)
                self._upload_patients(db, report)
                for row in self.pending_trials():
                    if row["state"] == TrialState.RUNNING.value:
                        break
                    try:
                        report.blocks += self._upload_trial(db, row)
                    except StorageError as exc:  # this trial's own conflict: the database itself answers
                        self._hold(row, exc, report)
                        held.add(int(row["trial_id"]))
                        continue
                    report.trials.append(int(row["trial_id"]))
            except (SQLAlchemyError, StorageError) as exc:
                report.error = _first_line(exc)
                log.warning("upload from the spool stopped: %s", report.error)
            else:
                self.held_trials = held
        return report

    def _hold(self, row: Mapping[str, Any], exc: StorageError, report: UploadReport) -> None:
        """Keep a trial the database refused; say why in the notices, once (not at every upload)."""
        message = (f"{_first_line(exc)}; it stays on this station ({self.station_id or 'this station'}), in its "
                   f"spool, and is tried again at every upload: ask the administrator")
        report.held.append(message)
        with self._write() as c, c.begin():
            if c.scalar(select(func.count()).select_from(_NOTICES).where(_NOTICES.c.message == message)) == 0:
                c.execute(insert(_NOTICES).values(at=utc_now(), message=message))
                log.warning("%s", message)

    def _upload_logouts(self, db: Database) -> None:
        with self.engine.connect() as c:
            ended = [r[0] for r in c.execute(select(_SESSIONS.c.token_hash).where(_SESSIONS.c.ended.is_(True)))]
        for token_hash in ended:
            with write_session(db.sessions) as session:
                session.execute(delete(WebSession).where(WebSession.token_hash == token_hash))
            with self._write() as c, c.begin():
                c.execute(delete(_SESSIONS).where(_SESSIONS.c.token_hash == token_hash))

    def _upload_patients(self, db: Database, report: UploadReport) -> None:
        with self.engine.connect() as c:
            rows = [dict(r) for r in c.execute(select(_PATIENTS).where(_PATIENTS.c.uploaded_at.is_(None))
                                               .order_by(_PATIENTS.c.seq)).mappings()]
        for row in rows:
            notice = ""
            with write_session(db.sessions) as session:
                mine = session.scalar(select(Patient).where(Patient.upload_key == row["upload_key"]))
                if mine is not None:  # uploaded before (the spool did not note it): nothing twice
                    stored = mine.code
                else:
                    stored = self._free_code(session, row["code"])
                    session.add(Patient(
                        code=stored, birth_year=row["birth_year"], sex=as_enum(Sex, row["sex"], "sex"),
                        height_cm=row["height_cm"], notes=row["notes"], created_at=row["created_at"],
                        affected_side=as_enum(AffectedSide, row["affected_side"], "affected_side"),
                        upload_key=row["upload_key"]))
                    if stored != row["code"]:
                        notice = (f"patient code {row['code']} was also made elsewhere while the database was "
                                  f"unreachable: the one made on this station ({self.station_id or 'this station'}) "
                                  f"is stored as {stored}, with its trials; if they are the same person, "
                                  "merge them by hand")
                        audit(session, "upload_conflict", username="", client=self.station_id or "",
                              detail=notice)
                    report.patients += 1
            with self._write() as c, c.begin():
                c.execute(update(_PATIENTS).where(_PATIENTS.c.seq == row["seq"])
                          .values(uploaded_at=utc_now(), stored_code=stored))
                if stored != row["code"]:
                    c.execute(update(_TRIALS).where(func.lower(_TRIALS.c.patient_code) == row["code_lower"],
                                                    _TRIALS.c.uploaded_at.is_(None))
                              .values(patient_code=stored))
                    c.execute(insert(_NOTICES).values(at=utc_now(), message=notice))
            if notice:
                report.conflicts.append(notice)
                log.warning("%s", notice)

    def _free_code(self, session: Any, code: str) -> str:
        """``code`` when free in the database, else ``CODE-<station>`` (then ``-2``, ``-3``...)."""
        def taken(c: str) -> bool:
            return session.scalar(select(func.count()).select_from(Patient)
                                  .where(func.lower(Patient.code) == c.lower())) > 0

        if not taken(code):
            return code
        suffix = re.sub(r"[^A-Za-z0-9_-]+", "-", self.station_id or "offline").strip("-") or "offline"
        base = f"{code}-{suffix}"[:PATIENT_CODE_MAX_LEN]
        candidate, n = base, 1
        while taken(candidate):
            n += 1
            candidate = f"{base[:PATIENT_CODE_MAX_LEN - len(str(n)) - 1]}-{n}"
        return candidate

    def _upload_trial(self, db: Database, row: Mapping[str, Any]) -> int:
        """One trial and its missing blocks, in one transaction; returns the blocks inserted."""
        trial_id = int(row["trial_id"])
        with self.engine.connect() as c:
            blocks = [dict(b) for b in c.execute(select(_BLOCKS).where(_BLOCKS.c.trial_id == trial_id)
                                                 .order_by(_BLOCKS.c.block_index)).mappings()]
        inserted = 0
        with write_session(db.sessions) as session:
            trial = session.get(Trial, trial_id)
            adopted = bool(row["adopted"]) and trial is not None and trial.upload_key in (None, row["upload_key"])
            if trial is not None and trial.upload_key != row["upload_key"] and not adopted:
                raise StorageError(f"trial {trial_id}: the database has another trial with that id; "
                                   "the spooled one was not uploaded")
            patient = session.scalar(select(Patient).where(func.lower(Patient.code) == row["patient_code"].lower()))
            if patient is None:
                raise StorageError(f"trial {trial_id}: no patient {row['patient_code']!r} in the database")
            values = {k: row[k] for k in (
                "state_detail", "protocol", "settings", "metrics", "calibration", "notes", "started_at", "ended_at",
                "updated_at", "sample_rate_hz", "plate_ml_mm", "plate_ap_mm", "feet_ml_mm", "plate_source",
                "n_frames", "duration_s", "frames_dropped", "station_id")}
            values["state"] = TrialState(row["state"])
            values["stance_side"] = as_enum(StanceSide, row["stance_side"], "stance_side")
            if adopted:  # the trial's row is there from its start: its end is what the spool has
                values = {k: values[k] for k in ("state", "state_detail", "metrics", "ended_at", "updated_at",
                                                 "frames_dropped")}
                values["upload_key"] = row["upload_key"]
            if trial is None:
                visit = _visit_of_day(session, patient, row["started_at"])
                trial = Trial(id=trial_id, session_id=visit.id, upload_key=row["upload_key"], **values)
                session.add(trial)
                session.flush()
            else:
                for k, v in values.items():
                    setattr(trial, k, v)
            have = set(session.scalars(select(FrameBlock.block_index).where(FrameBlock.trial_id == trial_id)))
            for b in blocks:
                if b["block_index"] in have:
                    continue
                session.add(FrameBlock(trial_id=trial_id, block_index=b["block_index"], first_t_s=b["first_t_s"],
                                       last_t_s=b["last_t_s"], n_frames=b["n_frames"], encoding=b["encoding"],
                                       payload=b["payload"], written_at=b["written_at"], upload_key=b["upload_key"]))
                inserted += 1
            session.flush()
            if adopted:  # the frames stored before the hand-over, and those after it
                n, last = session.execute(select(func.coalesce(func.sum(FrameBlock.n_frames), 0),
                                                 func.max(FrameBlock.last_t_s))
                                          .where(FrameBlock.trial_id == trial_id)).one()
                trial.n_frames, trial.duration_s = int(n), float(last or 0.0)
            touch_station(session, row["station_id"])
        with self._write() as c, c.begin():  # uploaded: the frames are in the database now
            c.execute(update(_TRIALS).where(_TRIALS.c.trial_id == trial_id).values(uploaded_at=utc_now()))
            c.execute(delete(_BLOCKS).where(_BLOCKS.c.trial_id == trial_id))
        log.info("trial %d uploaded from the spool (%d blocks)", trial_id, inserted)
        return inserted


def _visit_of_day(session: Any, patient: Patient, started_at: dt.datetime) -> ClinicSession:
    """The patient's visit of the trial's day (local date), or a new one started with the trial (not committed)."""
    day = started_at.astimezone().date()
    for visit in session.scalars(select(ClinicSession).where(ClinicSession.patient_id == patient.id)
                                 .order_by(ClinicSession.started_at.desc(), ClinicSession.id.desc())):
        if visit.started_at.astimezone().date() == day:
            return visit
    visit = ClinicSession(patient_id=patient.id, started_at=started_at, clinician="", notes="")
    session.add(visit)
    session.flush()
    return visit


class SpoolTrialWriter(TrialWriter):
    """A :class:`TrialWriter` whose blocks and end go to the spool (same buffering, same 0.5 s blocks)."""

    def __init__(self, spool: Spool, trial_id: int, **writer_options: Any) -> None:
        super().__init__(None, trial_id, **writer_options)  # type: ignore[arg-type]
        self.spool = spool
        #: stored offline (the controller and the status page say so)
        self.offline = True

    def _take_over(self, writer: TrialWriter) -> None:
        """Continue ``writer``'s trial: its buffered frames, time origin and block numbering."""
        self._t, self._f, self._g, self._p = writer._t, writer._f, writer._g, writer._p  # noqa: SLF001
        self._t0, self._last_t = writer._t0, writer._last_t  # noqa: SLF001
        self._next_block = writer._next_block  # noqa: SLF001
        self.frames_written, self.blocks_written = writer.frames_written, writer.blocks_written
        self.last_written_t_s = writer.last_written_t_s

    def _store_block(self, index: int, t: np.ndarray, payload: bytes, now: dt.datetime, *,
                     encoding: str = ENCODING) -> None:
        n = int(t.size)
        with self.spool._write() as c, c.begin():  # noqa: SLF001 - the spool's own writer
            result = c.execute(update(_TRIALS).where(_TRIALS.c.trial_id == self.trial_id,
                                                     _TRIALS.c.state == TrialState.RUNNING.value)
                               .values(n_frames=_TRIALS.c.n_frames + n, duration_s=float(t[-1]), updated_at=now))
            if result.rowcount != 1:
                raise Conflict(f"trial {self.trial_id} is no longer running; its last frames were not stored")
            c.execute(insert(_BLOCKS).values(trial_id=self.trial_id, block_index=index, upload_key=_new_key(),
                                             first_t_s=float(t[0]), last_t_s=float(t[-1]), n_frames=n,
                                             encoding=encoding, payload=payload, written_at=now))

    def _store_end(self, end: TrialState, metrics: Any, detail: str, frames_dropped: int) -> None:
        now = utc_now()
        with self.spool._write() as c, c.begin():  # noqa: SLF001
            result = c.execute(update(_TRIALS).where(_TRIALS.c.trial_id == self.trial_id,
                                                     _TRIALS.c.state == TrialState.RUNNING.value)
                               .values(state=end.value, ended_at=now, metrics=metrics, state_detail=detail,
                                       frames_dropped=_TRIALS.c.frames_dropped + frames_dropped, updated_at=now))
            if result.rowcount != 1:
                raise Conflict(f"trial {self.trial_id} is no longer running; it was not marked {end.value}")


class SpoolUploader:
    """Checks the database every :data:`CHECK_EVERY_S`; while it answers: ends logouts made offline, uploads
    the spool, keeps trial ids reserved and the patient list copied. Sets ``spool.online``."""

    def __init__(self, db: Database, spool: Spool, *, period_s: float = CHECK_EVERY_S,
                 on_upload: Callable[[UploadReport], None] | None = None) -> None:
        self.db = db
        self.spool = spool
        self.period_s = float(period_s)
        self.on_upload = on_upload
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> UploadReport | None:
        """One round (also called by tests): None when the database does not answer."""
        if not database_reachable(self.db):
            if self.spool.online is not False:
                log.warning("%s does not answer: trials go to the spool %s", self.db.name, self.spool.path)
            self.spool.online = False
            return None
        try:
            finish_opening(self.db)  # opened while the server did not answer: its schema first
            report = self.spool.upload(self.db)
            if self.spool.free_ids() < REFILL_BELOW and (self.spool.station_id or self.db.station_id):
                self.spool.reserve_ids(self.db)
            self.spool.remember_patients(self.db)
        except (SQLAlchemyError, StorageError, DBAPIError) as exc:
            log.warning("the spool's round stopped: %s", _first_line(exc))
            self.spool.online = database_reachable(self.db)
            return None
        self.spool.online = not report.error or database_reachable(self.db)
        if self.on_upload is not None and (report.trials or report.patients):
            self.on_upload(report)
        return report

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception:  # never die silently
                log.exception("the spool uploader failed a round")
            self._stop.wait(self.period_s)

    def start(self) -> SpoolUploader:
        self._thread = threading.Thread(target=self._run, name="spool-uploader", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10.0)

