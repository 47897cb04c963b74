"""Trials: the repository functions, and the writer that stores a trial as it runs.

Repository functions take an ORM :class:`~sqlalchemy.orm.Session` (from
``Database.sessions``), do one job and commit it. Their errors are
:class:`NotFound` (404 in the HTTP API), :class:`Conflict` (409) and
:class:`InvalidValue` (422) (:mod:`station.storage.values`), all :class:`~station.storage.errors.StorageError`,
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
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, joinedload, sessionmaker

from calibration.model import Calibration
from station.core.frames import ForceFrame
from station.core.geometry import PlateGeometry
from station.core.recording import MAX_RATE_HZ, MIN_RATE_HZ, PELVIS_COLUMN, Recording, write_recording
from station.storage.blocks import (
    ENCODING,
    ENCODING_PELVIS,
    BlockDecodeError,
    decode_block,
    encode_block,
)
from station.storage.db import StorageError, session_station_id, write_session
from station.storage.disk import check_free_space
from station.storage.models import (
    STATION_ID_MAX_LEN,
    ClinicSession,
    FrameBlock,
    Grade,
    Patient,
    StanceSide,
    Trial,
    TrialIdReservation,
    TrialState,
    utc_now,
)
from station.storage.patients import get_patient
from station.storage.stations import touch_station
from station.storage.values import (
    PROTOCOL_RE,
    Conflict,
    InvalidValue,
    NotFound,
    as_enum,
    calibration_summary,
    plain_json,
)

__all__ = [
    "FLUSH_PERIOD_S",
    "INTERRUPTED_DETAIL",
    "MAX_BLOCK_FRAMES",
    "UNKNOWN_STATION_STALE_S",
    "get_trial",
    "latest_metrics",
    "list_trials",
    "recover_interrupted",
    "set_grade",
    "set_metrics",
    "trial_filters",
    "trial_recording",
    "trial_summary",
    "TrialWriter",
    "unstored_trials",
    "update_trial",
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
#: trials whose end could not be stored (a full disk...): trial id -> the cause; they are shown as
#: ``incomplete`` with that cause rather than ``running`` (until the station restarts and recovers them)
_UNSTORED: dict[int, str] = {}
_UNSTORED_LOCK = threading.Lock()


def unstored_trials() -> dict[int, str]:
    """Trials whose end could not be stored, and why (see :data:`_UNSTORED`)."""
    with _UNSTORED_LOCK:
        return dict(_UNSTORED)

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
    query = trial_filters(session, query, patient_code, state, started_from, started_before)
    return list(session.scalars(query).unique())


def latest_metrics(session: Session, patient_code: str, protocol: str) -> dict[str, Any] | None:
    """The metrics of the patient's latest complete trial of ``protocol`` (None when there is none)."""
    return session.scalars(
        select(Trial.metrics).join(ClinicSession).join(Patient)
        .where(Patient.code == patient_code, Trial.protocol == protocol, Trial.state == TrialState.COMPLETE)
        .order_by(Trial.started_at.desc(), Trial.id.desc()).limit(1)).first()


def trial_filters(session: Session, query: Any, patient_code: str | None, state: TrialState | str | None,
                   started_from: dt.datetime | None, started_before: dt.datetime | None) -> Any:
    if patient_code is not None:
        patient = get_patient(session, patient_code)
        query = query.where(Patient.id == patient.id)
    if state is not None:
        query = query.where(Trial.state == as_enum(TrialState, state, "state"))
    if started_from is not None:
        query = query.where(Trial.started_at >= started_from)
    if started_before is not None:
        query = query.where(Trial.started_at < started_before)
    return query


def update_trial(session: Session, trial_id: int, *, grade: Grade | str | None = None,
                 notes: str | None = None) -> Trial:
    """Change a trial's grade and/or notes (what is None is left as it is)."""
    trial = get_trial(session, trial_id)
    if grade is not None:
        trial.grade = as_enum(Grade, grade, "grade", optional=False)  # type: ignore[assignment]
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
    trial.grade = as_enum(Grade, grade, "grade", optional=False)  # type: ignore[assignment]
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
    ``flags`` holds each frame's flag bits, and ``pelvis_obliquity_deg`` the pelvis sensor's value
    (NaN: none) when the trial was recorded with the sensor.

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
    ts, fs, gs, ps = [], [], [], []
    with_pelvis = False
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
        ps.append(block.pelvis_deg if block.pelvis_deg is not None else np.full(block.n_frames, np.nan))
        with_pelvis = with_pelvis or block.pelvis_deg is not None
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
    extra: dict[str, np.ndarray] = {"flags": np.concatenate(gs).astype(np.int64)}
    if with_pelvis:  # recorded with the pelvis sensor (blocks ENCODING_PELVIS)
        extra[PELVIS_COLUMN] = np.concatenate(ps)
    return Recording(
        t_s=np.concatenate(ts), forces_n=np.concatenate(fs), sample_rate_hz=trial.sample_rate_hz,
        geometry=PlateGeometry(ml_mm=trial.plate_ml_mm, ap_mm=trial.plate_ap_mm, feet_ml_mm=trial.feet_ml_mm),
        metadata=metadata, extra=extra, name=f"trial {trial.id}",
    )


def write_trial_recording(session: Session, trial_id: int, target: str | Path | IO[str]) -> Recording:
    """Write the trial's recording file (DESIGN.md section 4) to a path or a text stream; returns the recording."""
    recording = trial_recording(session, trial_id)
    write_recording(target, recording)
    return recording


def next_sqlite_trial_id(session: Session) -> int:
    """On SQLite (no id sequence): the id after every trial's and every reserved one
    (:class:`~station.storage.models.TrialIdReservation`); call it inside the write transaction."""
    top = session.scalar(select(func.max(Trial.id))) or 0
    reserved = session.scalar(select(func.max(TrialIdReservation.trial_id))) or 0
    return int(max(top, reserved)) + 1


# -- the writer of a running trial ------------------------------------------------------


StorableFrame = ForceFrame | tuple[float, Sequence[float]] | tuple[float, Sequence[float], int]


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
        self._p: list[float | None] = []
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
        if not isinstance(protocol, str) or not PROTOCOL_RE.match(protocol):
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
        side = as_enum(StanceSide, stance_side, "stance_side")
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
            if session.get_bind().dialect.name == "sqlite":  # never an id reserved for a station's spool
                trial.id = next_sqlite_trial_id(session)
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

    def add(self, frame: StorableFrame, *, pelvis_deg: float | None = None) -> None:
        """Buffer one frame (a ForceFrame, or ``(t_s, forces_n[, flags])``); writes a block when one is due.

        ``pelvis_deg``: the pelvis sensor's obliquity for this frame (NaN: the sensor had no value; None: the
        trial has no sensor). A block holding any frame with it is stored ``f8le-zlib-pelvis/1``.
        """
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
        self._p.append(None if pelvis_deg is None else float(pelvis_deg))
        self.tick()

    def add_many(self, frames: Iterable[StorableFrame]) -> None:
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
        with_pelvis = any(v is not None for v in self._p[:n])
        p = np.array([np.nan if v is None else v for v in self._p[:n]], dtype=np.float64) if with_pelvis else None
        payload = encode_block(t, f, g, pelvis_deg=p)
        encoding = ENCODING_PELVIS if with_pelvis else ENCODING
        try:
            self._store_block(self._next_block, t, payload, utc_now(), encoding=encoding)
        except StorageError:
            raise
        except Exception as exc:  # a database error: the frames stay buffered for the next try
            raise StorageError(f"trial {self.trial_id}: cannot store frames ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
        del self._t[:n], self._f[:n], self._g[:n], self._p[:n]
        self._next_block += 1
        self.blocks_written += 1
        self.frames_written += n
        self.last_written_t_s = float(t[-1])

    def _store_block(self, index: int, t: np.ndarray, payload: bytes, now: dt.datetime, *,
                     encoding: str = ENCODING) -> None:
        """Commit one block (``t``: its times) and the trial's frame count; a subclass stores it elsewhere."""
        n = int(t.size)
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
            session.add(FrameBlock(trial_id=self.trial_id, block_index=index, first_t_s=float(t[0]),
                                   last_t_s=float(t[-1]), n_frames=n, encoding=encoding, payload=payload,
                                   written_at=now))

    # -- end ----------------------------------------------------------------------------------
    def finish(self, state: TrialState | str = TrialState.COMPLETE, metrics: Mapping[str, Any] | None = None, *,
               detail: str = "", frames_dropped: int = 0) -> None:
        """Write the last frames and end the trial: ``complete``, ``incomplete`` or ``aborted``.

        ``metrics`` (the scores, as in the ``analyze`` output) are stored with
        NaN as null. Raises :class:`Conflict` when the trial is no longer
        running (it was recovered as interrupted meanwhile).
        """
        end = as_enum(TrialState, state, "state", optional=False)
        if end is TrialState.RUNNING:
            raise InvalidValue("finish needs the state the trial ends in: complete, incomplete or aborted")
        if self.finished:
            raise ValueError(f"trial {self.trial_id} is already finished ({self.finished_state.value})")  # type: ignore[union-attr]
        plain_metrics = None if metrics is None else plain_json(metrics, what="metrics")
        try:
            self.flush()
            try:
                self._store_end(end, plain_metrics, str(detail or ""), int(frames_dropped))
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

    def _store_end(self, end: TrialState, metrics: Any, detail: str, frames_dropped: int) -> None:
        """Commit the trial's end; a subclass stores it elsewhere."""
        with write_session(self._sessions) as session:
            result = session.execute(
                update(Trial).where(Trial.id == self.trial_id, Trial.state == TrialState.RUNNING)
                .values(state=end, ended_at=utc_now(), metrics=metrics, state_detail=detail,
                        frames_dropped=Trial.frames_dropped + frames_dropped, updated_at=utc_now())
                .execution_options(synchronize_session=False))
            if result.rowcount != 1:
                raise Conflict(f"trial {self.trial_id} is no longer running; it was not marked {end.value}")

    def __enter__(self) -> TrialWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, _tb: Any) -> None:
        if self.finished:
            return
        detail = (f"stopped by an error: {exc_type.__name__}: {exc}" if exc_type is not None
                  else "the trial writer was closed without finishing the trial")
        self.finish(TrialState.INCOMPLETE, detail=detail.splitlines()[0])
