"""Patients, visits and trials: the repository functions, and the writer that stores a trial as it runs.

Repository functions take an ORM :class:`~sqlalchemy.orm.Session` (from
``Database.sessions``), do one job and commit it. Their errors are
:class:`NotFound` (404 in the HTTP API), :class:`Conflict` (409) and
:class:`InvalidValue` (422), all :class:`~station.storage.db.StorageError`,
with a one-line message.

:class:`TrialWriter` stores the raw frames of a running trial: it creates
the trial in state ``running``, buffers the frames it is given and writes
them as a :class:`~station.storage.models.FrameBlock` in its own short
transaction every :data:`FLUSH_PERIOD_S` (and when it is finished), so a crash
or a power cut loses at most the frames of the last period. A trial whose
writer never finished (the station was killed, or lost power) is still
``running`` in the database; :func:`recover_interrupted`, called once when the
station starts, marks it ``incomplete`` and keeps its frames.
:func:`trial_recording` rebuilds the recording file (DESIGN.md section 4) of
any trial, a running one included, from its blocks.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import resource
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np
from sqlalchemy import case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, sessionmaker

from calibration.model import Calibration
from station import __version__
from station.signal.forces import ForceFrame
from station.core.geometry import PlateGeometry
from station.core.recording import MAX_RATE_HZ, MIN_RATE_HZ, Recording, write_recording
from station.storage.blocks import ENCODING, BlockDecodeError, decode_block, encode_block
from station.storage.db import StorageError, session_station_id, write_session
from station.storage.models import (
    PATIENT_CODE_MAX_LEN,
    STATION_ID_MAX_LEN,
    AffectedSide,
    ClinicSession,
    FrameBlock,
    Grade,
    Patient,
    Sex,
    StanceSide,
    StationContact,
    Trial,
    TrialState,
    utc_now,
)

__all__ = [
    "FLUSH_PERIOD_S",
    "LOW_DISK_BYTES",
    "MAX_BLOCK_FRAMES",
    "MIN_FREE_BYTES",
    "Conflict",
    "InvalidValue",
    "NotFound",
    "PATIENT_FIELDS",
    "SCORE_ROW_FIELDS",
    "TrialWriter",
    "calibration_summary",
    "check_free_space",
    "create_patient",
    "disk_warning",
    "free_bytes",
    "get_patient",
    "get_trial",
    "iter_trial_scores",
    "list_patients",
    "list_trials",
    "open_visit",
    "patient_trial_counts",
    "plain_json",
    "recover_interrupted",
    "set_grade",
    "set_metrics",
    "station_activity",
    "todays_visit",
    "touch_station",
    "trial_recording",
    "trial_summary",
    "update_patient",
    "unstored_trials",
    "update_trial",
    "validate_patient_code",
    "write_trial_recording",
]

#: how often a running trial's frames are written. The promise is "a crash loses at most the last
#: second"; half a second leaves the other half for the frames' way through the live queue and the commit.
FLUSH_PERIOD_S = 0.5
#: the most frames in one block (50 s at 80 Hz): a source that delivers faster than real time
#: (a replay) still gets blocks of a sensible size
MAX_BLOCK_FRAMES = 4000

INTERRUPTED_DETAIL = ("interrupted: the station stopped while the trial was running; "
                      "kept with the frames stored up to then")
#: a trial is not started with less free space than this where the database lives, bytes (a trial takes
#: about 200 kB a minute; the rest is room for the database's journal, the other data and the system)
MIN_FREE_BYTES = 50_000_000
#: below this much free space the station warns on its status page, bytes
LOW_DISK_BYTES = 500_000_000

#: trials whose end could not be stored (a full disk...): trial id -> the cause; they are shown as
#: ``incomplete`` with that cause rather than ``running`` (until the station restarts and recovers them)
_UNSTORED: dict[int, str] = {}
_UNSTORED_LOCK = threading.Lock()


def free_bytes(folder: Path) -> int:
    """Bytes a file in ``folder`` may still grow by: the free disk space, or less under a file-size limit."""
    free = shutil.disk_usage(folder).free
    try:
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (OSError, ValueError):  # pragma: no cover - no such limit here
        limit = resource.RLIM_INFINITY
    if limit != resource.RLIM_INFINITY:
        largest = max((f.stat().st_size for f in folder.iterdir() if f.name.startswith(("station.db",))), default=0)
        free = min(free, max(0, int(limit) - largest))
    return int(free)


def _database_folder(sessions: sessionmaker[Session]) -> Path | None:
    bind = sessions.kw.get("bind")
    url = getattr(bind, "url", None)
    if url is None or url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:" \
            or url.database.startswith("file:"):
        return None
    return Path(url.database).parent


def check_free_space(sessions: sessionmaker[Session], *, needed_bytes: int = MIN_FREE_BYTES) -> None:
    """StorageError (one line, how much is free and where) when a trial could not be stored whole."""
    folder = _database_folder(sessions)
    if folder is None:
        return
    try:
        free = free_bytes(folder)
    except OSError as exc:
        raise StorageError(f"{folder}: cannot tell the free disk space ({exc.strerror})") from None
    if free < needed_bytes:
        raise StorageError(f"not enough free disk space to store a trial: {free / 1e6:.0f} MB free in {folder}, "
                           f"a trial needs {needed_bytes / 1e6:.0f} MB: free some space first")


def disk_warning(folder: Path, *, low_bytes: int = LOW_DISK_BYTES) -> str:
    """A warning for the status page when the data folder runs short of space; "" when there is enough."""
    try:
        free = free_bytes(Path(folder))
    except OSError as exc:
        return f"Cannot tell the free disk space in {folder} ({exc.strerror})."
    if free < MIN_FREE_BYTES:
        return (f"The disk is full: {free / 1e6:.0f} MB free in {folder}. No test can be stored until space is "
                "freed.")
    if free < low_bytes:
        return f"The disk is nearly full: {free / 1e6:.0f} MB free in {folder}. Free some space soon."
    return ""


def unstored_trials() -> dict[int, str]:
    """Trials whose end could not be stored, and why (see :data:`_UNSTORED`)."""
    with _UNSTORED_LOCK:
        return dict(_UNSTORED)

_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_PROTOCOL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
MIN_BIRTH_YEAR = 1900
HEIGHT_RANGE_CM = (40.0, 250.0)

E = TypeVar("E", Sex, AffectedSide, StanceSide, Grade, TrialState)


class NotFound(StorageError):
    """No such patient, visit or trial."""


class Conflict(StorageError):
    """The change clashes with what is stored (a patient code taken, a trial no longer running)."""


class InvalidValue(StorageError, ValueError):
    """A value that cannot be stored (bad patient code, year out of range, unknown grade...)."""


# -- values ------------------------------------------------------------------------------


def validate_patient_code(code: object) -> str:
    """The code, stripped, when it is a usable pseudonymous code; :class:`InvalidValue` otherwise.

    A code is 2 to 32 letters, digits, ``-`` and ``_``, starting with a letter
    or a digit, with at least one digit (``P-001``, ``KNEE_2024_17``). A code
    of letters only looks like a name, and the station stores no names: such a
    code is refused.
    """
    if not isinstance(code, str):
        raise InvalidValue(f"patient code must be text, got {type(code).__name__}")
    c = code.strip()
    if not c:
        raise InvalidValue("patient code is empty: give a pseudonymous code such as P-001")
    if len(c) < 2 or len(c) > PATIENT_CODE_MAX_LEN:
        raise InvalidValue(f"patient code {c!r} must be 2 to {PATIENT_CODE_MAX_LEN} characters long")
    if not _CODE_RE.match(c) or not c.isascii():
        raise InvalidValue(
            f"patient code {c!r} may hold only letters, digits, '-' and '_' and must start with a letter or digit "
            "(a pseudonymous code such as P-001, never a name)"
        )
    if not any(ch.isdigit() for ch in c):
        raise InvalidValue(f"patient code {c!r} has no digit: use a pseudonymous code such as P-001, never a name")
    return c


def _as_enum(cls: type[E], value: E | str | None, what: str, *, optional: bool = True) -> E | None:
    if value is None:
        if optional:
            return None
        raise InvalidValue(f"{what} is required")
    if isinstance(value, cls):
        return value
    try:
        return cls(str(getattr(value, "value", value)).strip().lower())
    except ValueError:
        allowed = ", ".join(m.value for m in cls)
        raise InvalidValue(f"{what} {value!r} is not one of: {allowed}") from None


def plain_json(value: Any, *, what: str = "value") -> Any:
    """``value`` as plain JSON data: numpy numbers become Python numbers, NaN and infinities null.

    Raises :class:`InvalidValue` for anything that is not data (objects, bytes).
    """
    if isinstance(value, Mapping):
        return {str(k): plain_json(v, what=what) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(v, what=what) for v in value]
    if isinstance(value, np.ndarray):
        return plain_json(value.tolist(), what=what)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if value is None or isinstance(value, str):
        return value
    raise InvalidValue(f"{what} must be plain data (numbers, text, lists, mappings), got {type(value).__name__}")


def calibration_summary(calibration: Calibration | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What a trial keeps of the calibration it was measured with.

    ``label`` (``"<source> <date>"``, the recording file's ``calibration``
    key), where it came from and when, the coefficients as used (offsets
    included, after any re-zeroing) and the verification figures. A mapping is
    stored as given.
    """
    if calibration is None:
        return None
    if isinstance(calibration, Mapping):
        return plain_json(calibration, what="calibration")
    verification = calibration.verification or {}
    return plain_json({
        "label": f"{calibration.source} {calibration.created_at.date()}",
        "source": calibration.source,
        "created_at": calibration.created_at.isoformat(),
        "backend": calibration.backend,
        "station_id": calibration.station_id,
        "offsets_counts": list(calibration.offsets_counts),
        "gains_n_per_count": list(calibration.gains_n_per_count),
        "matrix": [list(r) for r in calibration.matrix] if calibration.matrix is not None else None,
        "max_cop_error_mm": verification.get("max_cop_error_mm"),
        "max_force_error_pct": verification.get("max_force_error_pct"),
        "verified": verification.get("passed"),
    }, what="calibration")


# -- patients ------------------------------------------------------------------------------


def _find_patient(session: Session, code: str) -> Patient | None:
    return session.scalar(select(Patient).where(func.lower(Patient.code) == code.strip().lower()))


def _check_birth_year(birth_year: Any) -> None:
    if birth_year is not None:
        this_year = dt.date.today().year
        if isinstance(birth_year, bool) or not isinstance(birth_year, (int, np.integer)):
            raise InvalidValue(f"birth_year must be a whole year, got {birth_year!r}")
        if not MIN_BIRTH_YEAR <= int(birth_year) <= this_year:
            raise InvalidValue(f"birth_year {birth_year} is not between {MIN_BIRTH_YEAR} and {this_year}")


def _check_height(height_cm: Any) -> None:
    if height_cm is not None:
        try:
            h = float(height_cm)
        except (TypeError, ValueError):
            h = math.nan
        lo, hi = HEIGHT_RANGE_CM
        if not (math.isfinite(h) and lo <= h <= hi):
            raise InvalidValue(f"height_cm {height_cm!r} is not a height between {lo:g} and {hi:g} cm")


def create_patient(session: Session, code: str, *, birth_year: int | None = None, sex: Sex | str | None = None,
                   height_cm: float | None = None, affected_side: AffectedSide | str | None = None,
                   notes: str = "") -> Patient:
    """Add a patient. :class:`InvalidValue` for a bad field, :class:`Conflict` when the code is taken (any case)."""
    c = validate_patient_code(code)
    _check_birth_year(birth_year)
    _check_height(height_cm)
    if _find_patient(session, c) is not None:
        raise Conflict(f"patient code {c!r} is already taken")
    patient = Patient(
        code=c, birth_year=None if birth_year is None else int(birth_year), sex=_as_enum(Sex, sex, "sex"),
        height_cm=None if height_cm is None else float(height_cm),
        affected_side=_as_enum(AffectedSide, affected_side, "affected_side"), notes=str(notes or ""),
    )
    session.add(patient)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"patient code {c!r} is already taken") from None
    return patient


def get_patient(session: Session, code: str) -> Patient:
    """The patient with this code (ignoring case); :class:`NotFound` otherwise."""
    patient = _find_patient(session, str(code))
    if patient is None:
        raise NotFound(f"no patient with code {str(code).strip()!r}")
    return patient


def list_patients(session: Session) -> list[Patient]:
    """Every patient, by code."""
    return list(session.scalars(select(Patient).order_by(func.lower(Patient.code))))


#: the fields :func:`update_patient` changes
PATIENT_FIELDS = ("birth_year", "sex", "height_cm", "affected_side", "notes", "programme")


def update_patient(session: Session, code: str, **changes: Any) -> Patient:
    """Change some of a patient's fields (:data:`PATIENT_FIELDS`; None clears one, ``notes`` becomes "").

    The code itself never changes (it is how exports and other tools know the patient).
    """
    unknown = sorted(set(changes) - set(PATIENT_FIELDS))
    if unknown:
        raise InvalidValue(f"cannot change {', '.join(unknown)} of a patient (only {', '.join(PATIENT_FIELDS)})")
    patient = get_patient(session, code)
    if "birth_year" in changes:
        _check_birth_year(changes["birth_year"])
        patient.birth_year = None if changes["birth_year"] is None else int(changes["birth_year"])
    if "height_cm" in changes:
        _check_height(changes["height_cm"])
        patient.height_cm = None if changes["height_cm"] is None else float(changes["height_cm"])
    if "sex" in changes:
        patient.sex = _as_enum(Sex, changes["sex"], "sex")
    if "affected_side" in changes:
        patient.affected_side = _as_enum(AffectedSide, changes["affected_side"], "affected_side")
    if "notes" in changes:
        patient.notes = str(changes["notes"] or "")
    if "programme" in changes:
        programme = changes["programme"]
        if programme is not None and not isinstance(programme, Mapping):
            raise InvalidValue("programme must be a mapping (a JSON object) or null")
        patient.programme = None if programme is None else plain_json(programme, what="programme")
    session.commit()
    return patient


def patient_trial_counts(session: Session) -> dict[int, tuple[int, dt.datetime | None]]:
    """For each patient id with trials: (number of trials, when the last one started)."""
    rows = session.execute(
        select(ClinicSession.patient_id, func.count(Trial.id), func.max(Trial.started_at))
        .join(Trial, Trial.session_id == ClinicSession.id).group_by(ClinicSession.patient_id)).all()
    result = {}
    for patient_id, n, last in rows:
        if isinstance(last, str):  # an aggregate over a UTC column comes back as SQLite text
            last = dt.datetime.fromisoformat(last)
        if last is not None and last.tzinfo is None:
            last = last.replace(tzinfo=dt.timezone.utc)
        result[int(patient_id)] = (int(n), last)
    return result


def _aware(value: Any) -> dt.datetime | None:
    """An aggregate over a UTC column as an aware datetime (SQLite gives it back as naive text)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value


def station_activity(session: Session) -> list[dict[str, Any]]:
    """Every station that used this database (started on it or stored a trial), the one in contact last first.

    Each: ``station_id`` (None for the trials stored before stations were recorded, one row for all of
    them, last), ``trials`` (how many), ``first_trial_at`` and ``last_trial_at`` (when its first and
    latest trials started), ``last_contact_at`` (its last write: its start-up, a trial's start, its
    frames written every half second while it runs, its end), ``running`` (trials still running
    there), the plate and calibration of its latest trial (``plate_source``, ``calibration``: the
    label) and the software it last ran (``software_version``, None when unknown).
    """
    rows = session.execute(
        select(Trial.station_id, func.count(Trial.id), func.min(Trial.started_at), func.max(Trial.started_at),
               func.max(func.coalesce(Trial.ended_at, Trial.updated_at)), func.max(Trial.updated_at),
               func.sum(case((Trial.state == TrialState.RUNNING, 1), else_=0)))
        .group_by(Trial.station_id)).all()
    stations = []
    contacts_of = {c.station_id: c for c in session.scalars(select(StationContact))}
    for station_id, n, first, last, ended, updated, running in rows:
        latest = session.execute(
            select(Trial.plate_source, Trial.calibration).where(
                Trial.station_id.is_(None) if station_id is None else Trial.station_id == station_id)
            .order_by(Trial.started_at.desc(), Trial.id.desc()).limit(1)).one()
        contact = contacts_of.pop(station_id, None) if station_id is not None else None
        contacts = [t for t in (_aware(ended), _aware(updated), contact and contact.last_seen_at) if t is not None]
        stations.append({
            "station_id": station_id, "trials": int(n), "first_trial_at": _aware(first),
            "last_trial_at": _aware(last), "last_contact_at": max(contacts) if contacts else None,
            "running": int(running or 0), "plate_source": latest[0] or "",
            "calibration": (latest[1] or {}).get("label"),
            "software_version": contact.software_version if contact is not None else None,
        })
    for contact in contacts_of.values():  # started on this database, no trial yet
        stations.append({
            "station_id": contact.station_id, "trials": 0, "first_trial_at": None, "last_trial_at": None,
            "last_contact_at": contact.last_seen_at, "running": 0, "plate_source": "", "calibration": None,
            "software_version": contact.software_version,
        })
    epoch = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    stations.sort(key=lambda s: (s["station_id"] is None, -(s["last_contact_at"] or epoch).timestamp()))
    return stations


def touch_station(session: Session, station_id: str | None, *, now: dt.datetime | None = None) -> None:
    """Record that ``station_id`` (running this program) used the database now, in the session's transaction.

    One row per station (``stations``), inserted or updated in one statement (no race between two
    processes of one station). Nothing for ``None``. The caller commits.
    """
    if not station_id:
        return
    now = now or utc_now()
    dialect = session.get_bind().dialect.name
    values = {"station_id": station_id, "software_version": __version__, "first_seen_at": now, "last_seen_at": now}
    if dialect in ("postgresql", "sqlite"):
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        stmt = dialect_insert(StationContact).values(**values)
        session.execute(stmt.on_conflict_do_update(
            index_elements=[StationContact.station_id],
            set_={"software_version": stmt.excluded.software_version, "last_seen_at": stmt.excluded.last_seen_at}))
        return
    contact = session.get(StationContact, station_id)  # pragma: no cover - another database
    if contact is None:
        session.add(StationContact(**values))
    else:
        contact.software_version, contact.last_seen_at = __version__, now


# -- visits --------------------------------------------------------------------------------


def open_visit(session: Session, patient_code: str, *, clinician: str = "", notes: str = "",
               started_at: dt.datetime | None = None) -> ClinicSession:
    """Start a new clinic visit (a ``sessions`` row) for the patient."""
    patient = get_patient(session, patient_code)
    visit = ClinicSession(patient_id=patient.id, clinician=str(clinician or ""), notes=str(notes or ""),
                          started_at=started_at or utc_now())
    session.add(visit)
    session.commit()
    return visit


def todays_visit(session: Session, patient_code: str, *, now: dt.datetime | None = None) -> ClinicSession:
    """The patient's visit started today (local date), or a new one."""
    now = now or utc_now()
    patient = get_patient(session, patient_code)
    latest = session.scalar(select(ClinicSession).where(ClinicSession.patient_id == patient.id)
                            .order_by(ClinicSession.started_at.desc(), ClinicSession.id.desc()).limit(1))
    if latest is not None and latest.started_at.astimezone().date() == now.astimezone().date():
        return latest
    return open_visit(session, patient.code, started_at=now)


# -- trials --------------------------------------------------------------------------------


def get_trial(session: Session, trial_id: int) -> Trial:
    """The trial (its visit and patient loaded); :class:`NotFound` otherwise."""
    trial = session.scalar(select(Trial).where(Trial.id == int(trial_id))
                           .options(joinedload(Trial.session).joinedload(ClinicSession.patient)))
    if trial is None:
        raise NotFound(f"no trial {trial_id}")
    return trial


def list_trials(session: Session, patient_code: str | None = None, *,
                state: TrialState | str | None = None, started_from: dt.datetime | None = None,
                started_before: dt.datetime | None = None) -> list[Trial]:
    """Trials, oldest first, with their visit and patient loaded; of one patient when a code is given.

    ``started_from`` (inclusive) and ``started_before`` (exclusive) limit the start times.
    """
    query = (select(Trial).join(Trial.session).join(ClinicSession.patient)
             .options(joinedload(Trial.session).joinedload(ClinicSession.patient))
             .order_by(Trial.started_at, Trial.id))
    query = _trial_filters(session, query, patient_code, state, started_from, started_before)
    return list(session.scalars(query).unique())


def latest_metrics(session: Session, patient_code: str, protocol: str) -> dict[str, Any] | None:
    """The metrics of the patient's latest complete trial of ``protocol`` (None when there is none)."""
    return session.scalars(
        select(Trial.metrics).join(ClinicSession).join(Patient)
        .where(Patient.code == patient_code, Trial.protocol == protocol, Trial.state == TrialState.COMPLETE)
        .order_by(Trial.started_at.desc(), Trial.id.desc()).limit(1)).first()


def _trial_filters(session: Session, query: Any, patient_code: str | None, state: TrialState | str | None,
                   started_from: dt.datetime | None, started_before: dt.datetime | None) -> Any:
    if patient_code is not None:
        patient = get_patient(session, patient_code)
        query = query.where(Patient.id == patient.id)
    if state is not None:
        query = query.where(Trial.state == _as_enum(TrialState, state, "state"))
    if started_from is not None:
        query = query.where(Trial.started_at >= started_from)
    if started_before is not None:
        query = query.where(Trial.started_at < started_before)
    return query


#: the columns of :func:`iter_trial_scores` rows, before ``metrics``
SCORE_ROW_FIELDS = ("trial_id", "patient", "session_id", "protocol", "stance_side", "state", "grade",
                    "started_at", "ended_at", "duration_s", "n_frames", "frames_dropped", "sample_rate_hz",
                    "plate_source", "station_id", "metrics")


def iter_trial_scores(session: Session, patient_code: str | None = None, *,
                      state: TrialState | str | None = None, started_from: dt.datetime | None = None,
                      started_before: dt.datetime | None = None, batch: int = 1000) -> Iterator[tuple[Any, ...]]:
    """Trials as plain tuples (:data:`SCORE_ROW_FIELDS`), oldest first, fetched ``batch`` at a time.

    For exports: no ORM objects, so 10,000 trials stream in a fraction of a second.
    Enumerations come as their values, times as aware UTC datetimes, ``metrics`` as plain data.
    """
    query = (select(Trial.id, Patient.code, Trial.session_id, Trial.protocol, Trial.stance_side, Trial.state,
                    Trial.grade, Trial.started_at, Trial.ended_at, Trial.duration_s, Trial.n_frames,
                    Trial.frames_dropped, Trial.sample_rate_hz, Trial.plate_source, Trial.station_id, Trial.metrics)
             .join(ClinicSession, Trial.session_id == ClinicSession.id)
             .join(Patient, ClinicSession.patient_id == Patient.id)
             .order_by(Trial.started_at, Trial.id))
    query = _trial_filters(session, query, patient_code, state, started_from, started_before)
    result = session.execute(query.execution_options(yield_per=batch))
    for row in result:
        (trial_id, code, session_id, protocol, side, state_, grade, started, ended, duration, n, dropped, rate,
         source, station, metrics) = row
        yield (trial_id, code, session_id, protocol, side.value if side is not None else None, state_.value,
               grade.value, started, ended, duration, n, dropped, rate, source, station, metrics)


def update_trial(session: Session, trial_id: int, *, grade: Grade | str | None = None,
                 notes: str | None = None) -> Trial:
    """Change a trial's grade and/or notes (what is None is left as it is)."""
    trial = get_trial(session, trial_id)
    if grade is not None:
        trial.grade = _as_enum(Grade, grade, "grade", optional=False)  # type: ignore[assignment]
    if notes is not None:
        trial.notes = str(notes)
    session.commit()
    return trial


def trial_summary(trial: Trial) -> dict[str, Any]:
    """A trial as plain data (the HTTP API's trial objects): ids, state, protocol, times, grade, metrics.

    A trial still ``running`` in the database whose end could not be stored is ``incomplete``, its
    ``state_detail`` the cause (:func:`unstored_trials`).
    """
    unstored = _UNSTORED.get(trial.id) if trial.state is TrialState.RUNNING else None
    return {
        "trial_id": trial.id,
        "patient": trial.session.patient.code,
        "session_id": trial.session_id,
        "protocol": trial.protocol,
        "stance_side": trial.stance_side.value if trial.stance_side else None,
        "state": TrialState.INCOMPLETE.value if unstored else trial.state.value,
        "state_detail": unstored or trial.state_detail,
        "started_at": trial.started_at.isoformat(),
        "ended_at": trial.ended_at.isoformat() if trial.ended_at else None,
        "duration_s": trial.duration_s,
        "n_frames": trial.n_frames,
        "frames_dropped": trial.frames_dropped,
        "sample_rate_hz": trial.sample_rate_hz,
        "plate_source": trial.plate_source,
        "station_id": trial.station_id,
        "grade": trial.grade.value,
        "notes": trial.notes,
        "settings": trial.settings,
        "metrics": trial.metrics,
        "calibration": (trial.calibration or {}).get("label"),
    }


def set_grade(session: Session, trial_id: int, grade: Grade | str, *, notes: str | None = None) -> Trial:
    """Record the clinician's grade (negative, positive, compensated, not_assessed), and notes when given."""
    trial = get_trial(session, trial_id)
    trial.grade = _as_enum(Grade, grade, "grade", optional=False)  # type: ignore[assignment]
    if notes is not None:
        trial.notes = str(notes)
    session.commit()
    return trial


def set_metrics(session: Session, trial_id: int, metrics: Mapping[str, Any] | None) -> Trial:
    """Store a trial's scores (scored after its end, or scored again)."""
    trial = get_trial(session, trial_id)
    trial.metrics = None if metrics is None else plain_json(metrics, what="metrics")
    session.commit()
    return trial


#: a running trial with no station recorded (from before schema version 3, or written by an older program on
#: another station sharing the database) counts as interrupted when nothing was written to it for this long, s
UNKNOWN_STATION_STALE_S = 30.0


def recover_interrupted(session: Session, *, stale_after_s: float | None = None,
                        now: dt.datetime | None = None, station_id: str | None = None) -> list[int]:
    """Mark every trial still ``running`` as ``incomplete``, keeping its frames; returns their ids.

    The station calls this once at start-up, when no trial can be running:
    one still marked ``running`` was interrupted (a crash, a ``kill -9``, a
    power cut). Its ``ended_at`` becomes the time of its last stored frame
    (``started_at`` plus the last frame's ``t_s``) and ``n_frames`` and
    ``duration_s`` are recounted from the blocks.

    ``stale_after_s`` limits it to trials whose writer has stored nothing for
    that long, for a caller that cannot be sure no other process is recording.

    Several stations on one database: only this station's trials are recovered
    (``station_id``, default the one the session's factory was made for, see
    :func:`station.storage.db.open_database`), and trials without a station
    once nothing was written to them for :data:`UNKNOWN_STATION_STALE_S`;
    another station's running trial is left to it.
    """
    now = now or utc_now()
    if station_id is None:
        station_id = session.info.get("station_id") or None
    query = select(Trial).where(Trial.state == TrialState.RUNNING)
    if station_id is not None:
        unknown_stale = now - dt.timedelta(seconds=UNKNOWN_STATION_STALE_S)
        query = query.where((Trial.station_id == station_id)
                            | (Trial.station_id.is_(None) & (Trial.updated_at < unknown_stale)))
    if stale_after_s is not None:
        query = query.where(Trial.updated_at < now - dt.timedelta(seconds=float(stale_after_s)))
    recovered = []
    for trial in session.scalars(query).all():
        n, last = session.execute(
            select(func.coalesce(func.sum(FrameBlock.n_frames), 0), func.max(FrameBlock.last_t_s))
            .where(FrameBlock.trial_id == trial.id)).one()
        trial.state = TrialState.INCOMPLETE
        trial.state_detail = INTERRUPTED_DETAIL
        trial.n_frames = int(n)
        trial.duration_s = float(last or 0.0)
        trial.ended_at = trial.started_at + dt.timedelta(seconds=float(last or 0.0))
        recovered.append(trial.id)
    session.commit()
    return recovered


def trial_recording(session: Session, trial_id: int) -> Recording:
    """The trial's frames as a :class:`~station.core.recording.Recording`, rebuilt from its blocks.

    Works on a running trial too (the frames stored so far). Metadata: the
    trial's settings (text values), ``protocol``, ``stance_side`` (when there is one), ``patient`` (the code),
    ``started_at``, ``calibration`` (its label), ``trial_id``, ``trial_state``,
    ``plate_source``, ``station_id`` (the station that recorded it, when known); the extra column
    ``flags`` holds each frame's flag bits.

    Raises
    ------
    NotFound
        No such trial.
    StorageError
        Fewer than 2 frames stored, or a damaged or missing block.
    """
    trial = get_trial(session, trial_id)
    rows = session.execute(
        select(FrameBlock.block_index, FrameBlock.n_frames, FrameBlock.encoding, FrameBlock.payload)
        .where(FrameBlock.trial_id == trial.id).order_by(FrameBlock.block_index)).all()
    ts, fs, gs = [], [], []
    for expected, (index, n, encoding, payload) in enumerate(rows):
        if index != expected:
            raise StorageError(f"trial {trial.id}: frame block {expected} is missing")
        try:
            block = decode_block(payload, n, encoding)
        except BlockDecodeError as exc:
            raise StorageError(f"trial {trial.id}: frame block {index}: {exc}") from None
        ts.append(block.t_s)
        fs.append(block.forces_n)
        gs.append(block.flags)
    total = sum(t.size for t in ts)
    if total < 2:
        raise StorageError(f"trial {trial.id} has {total} frame{'s' if total != 1 else ''} stored: "
                           "too few for a recording")
    # the trial's settings first (the protocol's thresholds, the patient's age), so that
    # `analyze` on the rebuilt file runs the test as it was run live
    metadata: dict[str, str] = {str(k): str(v) for k, v in (trial.settings or {}).items()
                                if isinstance(v, str) and "\n" not in v}
    metadata["protocol"] = trial.protocol
    if trial.stance_side is not None:
        metadata["stance_side"] = trial.stance_side.value
    metadata["patient"] = trial.session.patient.code
    metadata["started_at"] = trial.started_at.isoformat(timespec="seconds")
    label = (trial.calibration or {}).get("label")
    if label:
        metadata["calibration"] = " ".join(str(label).split())
    metadata["trial_id"] = str(trial.id)
    metadata["trial_state"] = trial.state.value
    if trial.plate_source:
        metadata["plate_source"] = trial.plate_source
    if trial.station_id:
        metadata["station_id"] = trial.station_id
    return Recording(
        t_s=np.concatenate(ts), forces_n=np.concatenate(fs), sample_rate_hz=trial.sample_rate_hz,
        geometry=PlateGeometry(ml_mm=trial.plate_ml_mm, ap_mm=trial.plate_ap_mm, feet_ml_mm=trial.feet_ml_mm),
        metadata=metadata, extra={"flags": np.concatenate(gs).astype(np.int64)}, name=f"trial {trial.id}",
    )


def write_trial_recording(session: Session, trial_id: int, target: str | Path | IO[str]) -> Recording:
    """Write the trial's recording file (DESIGN.md section 4) to a path or a text stream; returns the recording."""
    recording = trial_recording(session, trial_id)
    write_recording(target, recording)
    return recording


# -- the writer of a running trial ------------------------------------------------------


FrameLike = ForceFrame | tuple[float, Sequence[float]] | tuple[float, Sequence[float], int]


class TrialWriter:
    """Stores one running trial's frames, a block at a time, each block in its own short transaction.

    Create it with :meth:`start` (which adds the trial row, state
    ``running``), give it frames with :meth:`add`, and end it with
    :meth:`finish`. Frames are buffered and written as one
    :class:`~station.storage.models.FrameBlock` when :data:`FLUSH_PERIOD_S`
    has passed since the last write (checked on every :meth:`add` and
    :meth:`tick`; call :meth:`tick` regularly when frames may stop coming),
    at most :data:`MAX_BLOCK_FRAMES` a block.

    ``t_s`` is stored in seconds since the trial's first frame (or since
    ``time_origin_s`` when given). Frames must come in time order with finite
    forces; a bad frame raises ValueError and is not stored.

    A failed write (the database locked beyond its busy timeout, a full disk)
    raises :class:`StorageError` and keeps the frames buffered for the next try.

    Not thread-safe: one thread adds, ticks and finishes (see
    :class:`station.storage.live_writer.LiveTrialWriter`). Used as a context
    manager, a writer left without :meth:`finish` ends the trial as
    ``incomplete``.
    """

    def __init__(self, sessions: sessionmaker[Session], trial_id: int, *, flush_period_s: float = FLUSH_PERIOD_S,
                 max_block_frames: int = MAX_BLOCK_FRAMES, time_origin_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not flush_period_s > 0:
            raise ValueError(f"flush_period_s must be positive, got {flush_period_s!r}")
        if max_block_frames < 1:
            raise ValueError(f"max_block_frames must be at least 1, got {max_block_frames!r}")
        self._sessions = sessions
        self.trial_id = int(trial_id)
        self.flush_period_s = float(flush_period_s)
        self.max_block_frames = int(max_block_frames)
        self._clock = clock
        self._t0 = None if time_origin_s is None else float(time_origin_s)
        self._t: list[float] = []
        self._f: list[tuple[float, float, float, float]] = []
        self._g: list[int] = []
        self._last_t: float | None = None
        self._next_flush = clock() + self.flush_period_s
        self._next_block = 0
        #: frames committed to the database
        self.frames_written = 0
        self.blocks_written = 0
        self.last_written_t_s: float | None = None
        self.finished_state: TrialState | None = None

    @classmethod
    def start(cls, sessions: sessionmaker[Session], *, session_id: int, protocol: str, sample_rate_hz: float,
              geometry: PlateGeometry, stance_side: StanceSide | str | None = None,
              settings: Mapping[str, Any] | None = None, calibration: Calibration | Mapping[str, Any] | None = None,
              plate_source: str = "", notes: str = "", started_at: dt.datetime | None = None,
              station_id: str | None = None, **writer_options: Any) -> TrialWriter:
        """Add a trial in state ``running`` to the visit ``session_id`` and return its writer.

        ``station_id``: the station recording it; default the one the database was opened for
        (:func:`station.storage.db.open_database`'s ``station_id``, kept by the session factory).
        ``writer_options`` go to the constructor (``flush_period_s``, ``clock``...).
        """
        if not isinstance(protocol, str) or not _PROTOCOL_RE.match(protocol):
            raise InvalidValue(f"protocol {protocol!r} must be a word of letters, digits, '-', '_', '.' "
                               "(up to 40 characters)")
        rate = float(sample_rate_hz)
        if not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
            raise InvalidValue(f"sample_rate_hz {sample_rate_hz!r} is outside {MIN_RATE_HZ:g}..{MAX_RATE_HZ:g} Hz")
        if not isinstance(geometry, PlateGeometry):
            raise InvalidValue(f"geometry must be a PlateGeometry, got {type(geometry).__name__}")
        check_free_space(sessions)
        station = station_id if station_id is not None else session_station_id(sessions)
        if station is not None and (not isinstance(station, str) or not 0 < len(station) <= STATION_ID_MAX_LEN):
            raise InvalidValue(f"station_id {station!r} must be text of 1 to {STATION_ID_MAX_LEN} characters")
        side = _as_enum(StanceSide, stance_side, "stance_side")
        plain_settings = plain_json(dict(settings or {}), what="settings")
        calib = calibration_summary(calibration)
        now = started_at or utc_now()
        with write_session(sessions) as session:
            if session.get(ClinicSession, int(session_id)) is None:
                raise NotFound(f"no clinic session {session_id}")
            trial = Trial(
                session_id=int(session_id), state=TrialState.RUNNING, protocol=protocol, stance_side=side,
                settings=plain_settings, calibration=calib, started_at=now, updated_at=now,
                sample_rate_hz=rate, plate_ml_mm=geometry.ml_mm, plate_ap_mm=geometry.ap_mm,
                feet_ml_mm=geometry.feet_ml_mm, plate_source=str(plate_source or ""), notes=str(notes or ""),
                station_id=station,
            )
            session.add(trial)
            touch_station(session, station)
            session.flush()
            trial_id = trial.id
        return cls(sessions, trial_id, **writer_options)

    # -- frames ---------------------------------------------------------------------------
    @property
    def frames_buffered(self) -> int:
        return len(self._t)

    @property
    def finished(self) -> bool:
        return self.finished_state is not None

    def add(self, frame: FrameLike) -> None:
        """Buffer one frame (a ForceFrame, or ``(t_s, forces_n[, flags])``); writes a block when one is due."""
        if self.finished:
            raise ValueError(f"trial {self.trial_id} is finished; no more frames")
        if isinstance(frame, ForceFrame):
            t, forces, flags = frame.t_s, frame.forces_n, int(frame.flags)
        else:
            t, forces, *rest = frame
            flags = int(rest[0]) if rest else 0
        t = float(t)
        if not math.isfinite(t):
            raise ValueError(f"t_s must be finite, got {t!r}")
        if self._last_t is not None and not t > self._last_t:
            raise ValueError(f"t_s must increase: {t!r} after {self._last_t!r}")
        f = tuple(float(v) for v in forces)
        if len(f) != 4 or not all(math.isfinite(v) for v in f):
            raise ValueError(f"forces_n must be 4 finite numbers (fl, fr, bl, br), got {forces!r}")
        if not 0 <= flags <= 0xFFFFFFFF:
            raise ValueError(f"flags must be from 0 to 2**32-1, got {flags!r}")
        if self._t0 is None:
            self._t0 = t
        self._last_t = t
        self._t.append(t - self._t0)
        self._f.append(f)  # type: ignore[arg-type]
        self._g.append(flags)
        self.tick()

    def add_many(self, frames: Iterable[FrameLike]) -> None:
        for frame in frames:
            self.add(frame)

    def tick(self) -> bool:
        """Write the buffered frames when a write is due; True when a block was written."""
        if self._clock() >= self._next_flush:
            return self.flush() > 0
        return False

    def flush(self) -> int:
        """Write every buffered frame now (in blocks of at most ``max_block_frames``); returns how many."""
        written = 0
        try:
            while self._t:
                n = min(len(self._t), self.max_block_frames)
                self._write_block(n)
                written += n
        finally:
            self._next_flush = self._clock() + self.flush_period_s
        return written

    def _write_block(self, n: int) -> None:
        t = np.array(self._t[:n], dtype=np.float64)
        f = np.array(self._f[:n], dtype=np.float64)
        g = np.array(self._g[:n], dtype=np.uint32)
        payload = encode_block(t, f, g)
        now = utc_now()
        try:
            with write_session(self._sessions) as session:
                result = session.execute(
                    update(Trial).where(Trial.id == self.trial_id, Trial.state == TrialState.RUNNING)
                    .values(n_frames=Trial.n_frames + n, duration_s=float(t[-1]), updated_at=now)
                    .execution_options(synchronize_session=False))
                if result.rowcount != 1:
                    state = session.scalar(select(Trial.state).where(Trial.id == self.trial_id))
                    raise Conflict(f"trial {self.trial_id} is "
                                   + ("gone" if state is None else f"no longer running (it is {state.value})")
                                   + "; its last frames were not stored")
                session.add(FrameBlock(trial_id=self.trial_id, block_index=self._next_block, first_t_s=float(t[0]),
                                       last_t_s=float(t[-1]), n_frames=n, encoding=ENCODING, payload=payload,
                                       written_at=now))
        except StorageError:
            raise
        except Exception as exc:  # a database error: the frames stay buffered for the next try
            raise StorageError(f"trial {self.trial_id}: cannot store frames ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
        del self._t[:n], self._f[:n], self._g[:n]
        self._next_block += 1
        self.blocks_written += 1
        self.frames_written += n
        self.last_written_t_s = float(t[-1])

    # -- end ----------------------------------------------------------------------------------
    def finish(self, state: TrialState | str = TrialState.COMPLETE, metrics: Mapping[str, Any] | None = None, *,
               detail: str = "", frames_dropped: int = 0) -> None:
        """Write the last frames and end the trial: ``complete``, ``incomplete`` or ``aborted``.

        ``metrics`` (the scores, as in the ``analyze`` output) are stored with
        NaN as null. Raises :class:`Conflict` when the trial is no longer
        running (it was recovered as interrupted meanwhile).
        """
        end = _as_enum(TrialState, state, "state", optional=False)
        if end is TrialState.RUNNING:
            raise InvalidValue("finish needs the state the trial ends in: complete, incomplete or aborted")
        if self.finished:
            raise ValueError(f"trial {self.trial_id} is already finished ({self.finished_state.value})")  # type: ignore[union-attr]
        plain_metrics = None if metrics is None else plain_json(metrics, what="metrics")
        try:
            self.flush()
            try:
                with write_session(self._sessions) as session:
                    result = session.execute(
                        update(Trial).where(Trial.id == self.trial_id, Trial.state == TrialState.RUNNING)
                        .values(state=end, ended_at=utc_now(), metrics=plain_metrics, state_detail=str(detail or ""),
                                frames_dropped=Trial.frames_dropped + int(frames_dropped), updated_at=utc_now())
                        .execution_options(synchronize_session=False))
                    if result.rowcount != 1:
                        raise Conflict(f"trial {self.trial_id} is no longer running; it was not marked {end.value}")
            except StorageError:
                raise
            except Exception as exc:  # a database error (a full disk): said as a StorageError
                raise StorageError(f"trial {self.trial_id}: cannot store its end ({type(exc).__name__}: "
                                   f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
        except StorageError as exc:
            if not isinstance(exc, Conflict):
                kept = f"{self.frames_written} frames ({self.last_written_t_s or 0.0:.1f} s) kept"
                with _UNSTORED_LOCK:
                    _UNSTORED[self.trial_id] = f"could not be stored: {exc}; {kept}"
            raise
        with _UNSTORED_LOCK:
            _UNSTORED.pop(self.trial_id, None)
        self.finished_state = end

    def __enter__(self) -> TrialWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, _tb: Any) -> None:
        if self.finished:
            return
        detail = (f"stopped by an error: {exc_type.__name__}: {exc}" if exc_type is not None
                  else "the trial writer was closed without finishing the trial")
        self.finish(TrialState.INCOMPLETE, detail=detail.splitlines()[0])
