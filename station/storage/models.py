"""The station's tables, as SQLAlchemy 2 typed declarative models.

::

    patients 1--n sessions 1--n trials 1--n frame_blocks
    users 1--n web_sessions
    audit_log (who did what, when, from where)
    schema_version (one row per schema version applied)
    stations (each station using the database; trials.station_id names one, not a foreign key)
    trial_id_reservations (trial ids handed to a station for the trials it records offline)

- :class:`Patient`: a pseudonymous code (never a name), year of birth, sex,
  height, affected side, notes.
- :class:`ClinicSession` (table ``sessions``): one clinic visit of a patient.
  Not called ``Session``, so as not to be confused with the database session.
- :class:`Trial`: one test or drill on the plate: protocol, stance side,
  settings, metrics, the clinician's grade, notes, the calibration used, the
  plate it was measured on, the station that recorded it, and its state
  (``running`` while it is being recorded, then ``complete``, ``incomplete``
  or ``aborted``).
- :class:`StationContact` (table ``stations``): a station using the database
  (several may share a clinic database): its software version, when it was
  first and last heard of.
- :class:`FrameBlock`: the raw frames of a trial, a batch at a time, in a
  compact binary payload (layout in :mod:`station.storage.blocks`).
- :class:`User`: a therapist account of the web page: user name, argon2 hash
  of the password (never the password), disabled flag, failed-login count
  and lock-out time.
- :class:`WebSession`: a logged-in browser: the SHA-256 of its random cookie
  token (never the token), its CSRF token, creation, last use and expiry.
- :class:`AuditEntry` (table ``audit_log``): logins (success and failure),
  logouts, exports, account changes: time, user name, client address, action,
  detail. Never a password.
- :class:`SchemaVersion`: which schema versions the database has been brought
  to (:mod:`station.storage.schema`).

Conventions: names carry units (``_hz``, ``_mm``, ``_cm``, ``_s``); times are
timezone-aware UTC datetimes (stored as UTC); enumerations are stored as their
lower-case values in plain VARCHAR columns (no database enum type, so a new
value is added without rebuilding a table, on SQLite and PostgreSQL alike) and
checked on the Python side; JSON columns hold plain data (JSON on SQLite, JSONB
on PostgreSQL). Foreign keys: deleting a patient or a visit that still has
trials is refused; deleting a trial deletes its frame blocks.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "AffectedSide",
    "AuditEntry",
    "Base",
    "ClinicSession",
    "FrameBlock",
    "Grade",
    "Patient",
    "SchemaVersion",
    "Sex",
    "StanceSide",
    "StationContact",
    "Trial",
    "TrialIdReservation",
    "TrialState",
    "User",
    "WebSession",
    "utc_now",
]

#: constraint names that are the same on every database, so an upgrade step can name them
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

PATIENT_CODE_MAX_LEN = 32
USERNAME_MAX_LEN = 64
STATION_ID_MAX_LEN = 64
#: a client-generated upload key: a UUID's 36 characters
UPLOAD_KEY_MAX_LEN = 36
#: the longest web address of a station (``stations.web_url``)
WEB_URL_MAX_LEN = 200


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware datetime, stored in UTC.

    SQLite has no time zones: the value is stored as naive UTC and comes back
    with ``tzinfo=UTC``. PostgreSQL stores ``timestamptz``. A naive datetime
    is refused (its zone would be a guess).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"datetime {value!r} has no time zone; give an aware datetime (UTC)")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


JSONData = JSON().with_variant(JSONB(), "postgresql")


def _enum(cls: type[enum.Enum]) -> Enum:
    """An enum column stored as the members' values in a VARCHAR, checked in Python."""
    return Enum(cls, native_enum=False, create_constraint=False, length=20, validate_strings=True,
                values_callable=lambda members: [m.value for m in members])


class Sex(str, enum.Enum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"


class AffectedSide(str, enum.Enum):
    """The patient's affected (operated, painful, weak) side."""

    LEFT = "left"
    RIGHT = "right"
    BOTH = "both"
    NONE = "none"


class StanceSide(str, enum.Enum):
    """The leg a single-leg trial stands on."""

    LEFT = "left"
    RIGHT = "right"


class TrialState(str, enum.Enum):
    """Where a trial is (the HTTP API's ``state``, DESIGN.md section 6)."""

    #: being recorded now (frames are stored as they come)
    RUNNING = "running"
    #: ran to its end
    COMPLETE = "complete"
    #: interrupted (the station stopped, crashed or lost power): kept with the frames stored up to then
    INCOMPLETE = "incomplete"
    #: stopped on purpose before its end (the clinician, the patient)
    ABORTED = "aborted"


class Grade(str, enum.Enum):
    """The clinician's grade of a Trendelenburg test."""

    NEGATIVE = "negative"
    POSITIVE = "positive"
    COMPENSATED = "compensated"
    NOT_ASSESSED = "not_assessed"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dt.datetime: UTCDateTime(),
        dict[str, Any]: JSONData,
    }


class Patient(Base):
    """A patient, known to the station only by a pseudonymous code."""

    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: the pseudonymous code (letters, digits, ``-``, ``_``; never a name), unique ignoring case
    code: Mapped[str] = mapped_column(String(PATIENT_CODE_MAX_LEN))
    birth_year: Mapped[int | None]
    sex: Mapped[Sex | None] = mapped_column(_enum(Sex))
    height_cm: Mapped[float | None] = mapped_column(Float)
    affected_side: Mapped[AffectedSide | None] = mapped_column(_enum(AffectedSide))
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utc_now)
    #: the therapist's drill programme for this patient (plain JSON data), None until one is written
    programme: Mapped[dict[str, Any] | None] = mapped_column(JSONData)
    #: the client-generated key of a patient made on a station while the database was unreachable
    #: (:mod:`station.storage.spool`), so that its upload is done once; None for the others
    upload_key: Mapped[str | None] = mapped_column(String(UPLOAD_KEY_MAX_LEN), index=True, unique=True)

    sessions: Mapped[list[ClinicSession]] = relationship(back_populates="patient", order_by="ClinicSession.started_at")

    def __repr__(self) -> str:
        return f"Patient(id={self.id!r}, code={self.code!r})"


class ClinicSession(Base):
    """One clinic visit of a patient: the trials done that day."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    started_at: Mapped[dt.datetime] = mapped_column(default=utc_now)
    #: who ran it (a therapist's user name), optional
    clinician: Mapped[str] = mapped_column(String(64), default="")
    notes: Mapped[str] = mapped_column(Text, default="")

    patient: Mapped[Patient] = relationship(back_populates="sessions")
    trials: Mapped[list[Trial]] = relationship(back_populates="session", order_by="Trial.started_at")

    def __repr__(self) -> str:
        return f"ClinicSession(id={self.id!r}, patient_id={self.patient_id!r}, started_at={self.started_at!r})"


class Trial(Base):
    """One trial on the plate, with its raw frames in :class:`FrameBlock` rows."""

    __tablename__ = "trials"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    state: Mapped[TrialState] = mapped_column(_enum(TrialState), default=TrialState.RUNNING, index=True)
    #: why the trial is in its state, for a person ("interrupted: the station stopped ...")
    state_detail: Mapped[str] = mapped_column(Text, default="")
    #: ``single-leg``, ``quiet-stance``, a drill name, ``free``
    protocol: Mapped[str] = mapped_column(String(40))
    stance_side: Mapped[StanceSide | None] = mapped_column(_enum(StanceSide))
    #: the protocol's settings (durations, thresholds, low-pass...)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    #: the scores, as in the ``analyze`` output (DESIGN.md section 5); None until scored
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONData)
    grade: Mapped[Grade] = mapped_column(_enum(Grade), default=Grade.NOT_ASSESSED)
    notes: Mapped[str] = mapped_column(Text, default="")
    #: the calibration used: source, date, backend, verification figures, label
    calibration: Mapped[dict[str, Any] | None] = mapped_column(JSONData)
    started_at: Mapped[dt.datetime] = mapped_column(default=utc_now, index=True)
    ended_at: Mapped[dt.datetime | None]
    #: last time frames were stored (the writer's heartbeat)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utc_now)
    #: nominal sampling rate of the plate
    sample_rate_hz: Mapped[float] = mapped_column(Float)
    plate_ml_mm: Mapped[float] = mapped_column(Float)
    plate_ap_mm: Mapped[float] = mapped_column(Float)
    feet_ml_mm: Mapped[float] = mapped_column(Float)
    #: ``simulated``, ``hx711-lgpio``, ``replay``...
    plate_source: Mapped[str] = mapped_column(String(40), default="")
    #: frames stored so far (the sum of the blocks' ``n_frames``)
    n_frames: Mapped[int] = mapped_column(Integer, default=0)
    #: time from the first stored frame to the last, in s
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    #: frames lost before they could be stored (the writer fell too far behind)
    frames_dropped: Mapped[int] = mapped_column(Integer, default=0)
    #: the station that recorded it (its ``station_id`` setting); None for trials from before schema version 3
    station_id: Mapped[str | None] = mapped_column(String(STATION_ID_MAX_LEN), index=True)
    #: the client-generated key of a trial recorded into a station's spool while the database was
    #: unreachable (:mod:`station.storage.spool`): its upload inserts it once; None for the others
    upload_key: Mapped[str | None] = mapped_column(String(UPLOAD_KEY_MAX_LEN), index=True, unique=True)

    session: Mapped[ClinicSession] = relationship(back_populates="trials")
    blocks: Mapped[list[FrameBlock]] = relationship(
        back_populates="trial", order_by="FrameBlock.block_index", cascade="all, delete-orphan", passive_deletes=True,
    )

    def __repr__(self) -> str:
        return f"Trial(id={self.id!r}, protocol={self.protocol!r}, state={self.state.value!r})"


class FrameBlock(Base):
    """A batch of a trial's raw frames, stored in one short transaction while the trial runs.

    ``payload`` is ``encoding``-encoded (see :mod:`station.storage.blocks`):
    for ``f8le-zlib/1``, zlib over little-endian ``t_s`` float64[n], then
    ``fl_n``, ``fr_n``, ``bl_n``, ``br_n`` float64[n] each, then ``flags`` uint32[n].
    """

    __tablename__ = "frame_blocks"

    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), primary_key=True)
    #: 0, 1, 2... in the order the blocks were written
    block_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    #: time of the block's first and last frame, in s since the trial's first frame
    first_t_s: Mapped[float] = mapped_column(Float)
    last_t_s: Mapped[float] = mapped_column(Float)
    n_frames: Mapped[int] = mapped_column(Integer)
    encoding: Mapped[str] = mapped_column(String(20))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    written_at: Mapped[dt.datetime] = mapped_column(default=utc_now)
    #: the client-generated key of a block uploaded from a station's spool (None for the others)
    upload_key: Mapped[str | None] = mapped_column(String(UPLOAD_KEY_MAX_LEN), index=True, unique=True)

    trial: Mapped[Trial] = relationship(back_populates="blocks")

    def __repr__(self) -> str:
        return f"FrameBlock(trial_id={self.trial_id!r}, block_index={self.block_index!r}, n_frames={self.n_frames!r})"


class User(Base):
    """A therapist account of the web page (``balance-station user add``)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: the login name, unique ignoring case
    username: Mapped[str] = mapped_column(String(USERNAME_MAX_LEN))
    #: the argon2id hash of the password (PHC string: ``$argon2id$v=19$m=...``); never the password
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utc_now)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    #: failed logins since the last success or lock-out
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    #: logins are refused until then (after too many failures)
    locked_until: Mapped[dt.datetime | None]
    last_login_at: Mapped[dt.datetime | None]
    password_changed_at: Mapped[dt.datetime | None]

    web_sessions: Mapped[list[WebSession]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True)

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, username={self.username!r}, disabled={self.disabled!r})"


class WebSession(Base):
    """A logged-in browser or API client. The cookie holds a random token; only its SHA-256 is stored."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: hex SHA-256 of the session cookie's token
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    #: sent back in the ``X-CSRF-Token`` header or the ``csrf_token`` form field of every state-changing request
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utc_now)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utc_now)
    #: the session ends then, however active it is
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
    #: the client address it was opened from
    client: Mapped[str] = mapped_column(String(64), default="")

    user: Mapped[User] = relationship(back_populates="web_sessions")

    def __repr__(self) -> str:
        return f"WebSession(id={self.id!r}, user_id={self.user_id!r}, expires_at={self.expires_at!r})"


class AuditEntry(Base):
    """One line of the audit log: a login, a failed login, a logout, an export, an account change."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utc_now, index=True)
    #: the user name given or logged in (kept as text: also for unknown names and removed accounts)
    username: Mapped[str] = mapped_column(String(USERNAME_MAX_LEN), default="")
    #: the client's address (``127.0.0.1``, ``cli`` for the command line)
    client: Mapped[str] = mapped_column(String(64), default="")
    #: ``login``, ``login_failed``, ``logout``, ``export``, ``user_add``...
    action: Mapped[str] = mapped_column(String(40), index=True)
    detail: Mapped[str] = mapped_column(Text, default="")

    def __repr__(self) -> str:
        return f"AuditEntry(at={self.at!r}, username={self.username!r}, action={self.action!r})"


class StationContact(Base):
    """A station that uses this database (several may share a clinic database), and when it was last heard of."""

    __tablename__ = "stations"

    #: its ``station_id`` setting
    station_id: Mapped[str] = mapped_column(String(STATION_ID_MAX_LEN), primary_key=True)
    #: the balance-station version it last ran
    software_version: Mapped[str] = mapped_column(String(40), default="")
    first_seen_at: Mapped[dt.datetime] = mapped_column(default=utc_now)
    #: its last start-up, heartbeat (every 30 s while it runs), trial start or end
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utc_now)
    #: where its web page and API answer (its ``[web] public_url``, or made from its binding); None before
    #: schema version 5, and for a program that never said
    web_url: Mapped[str | None] = mapped_column(String(WEB_URL_MAX_LEN))

    def __repr__(self) -> str:
        return f"StationContact(station_id={self.station_id!r}, last_seen_at={self.last_seen_at!r})"


class TrialIdReservation(Base):
    """A trial id handed to a station while the database answered, for a trial it may record while it does not.

    The station keeps its reserved ids in its spool (:mod:`station.storage.spool`); a trial recorded
    offline takes the next one, and keeps it when it is uploaded. The row stays (the id is never
    given to anything else: on PostgreSQL it was taken from the ``trials`` id sequence).
    """

    __tablename__ = "trial_id_reservations"

    trial_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    station_id: Mapped[str] = mapped_column(String(STATION_ID_MAX_LEN), index=True)
    reserved_at: Mapped[dt.datetime] = mapped_column(default=utc_now)

    def __repr__(self) -> str:
        return f"TrialIdReservation(trial_id={self.trial_id!r}, station_id={self.station_id!r})"


class SchemaVersion(Base):
    """One row per schema version the database was created at or upgraded to."""

    __tablename__ = "schema_version"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    applied_at: Mapped[dt.datetime] = mapped_column(default=utc_now)
    description: Mapped[str] = mapped_column(Text, default="")


#: patient codes are unique ignoring case ("P-001" and "p-001" are the same patient)
Index("uq_patients_code_lower", func.lower(Patient.code), unique=True)
#: user names are unique ignoring case
Index("uq_users_username_lower", func.lower(User.username), unique=True)
