"""Storing a live trial while it runs: a thread that drains a live-station subscription into a TrialWriter.

Like :class:`station.clinic.recorder.LiveRecorder` (which writes a recording file),
but into the database: the frames are stored a block at a time (every
:data:`~station.storage.trials.FLUSH_PERIOD_S`), each block in its own
transaction, so a crash or a power cut loses at most the last second, and
the interrupted trial is found ``running`` at the next start and kept as
``incomplete`` (:func:`~station.storage.trials.recover_interrupted`).

While the trial runs the live station does not re-zero the plate
(:meth:`~station.live.pipeline.LiveStation.trial_started`). With the pelvis
sensor each frame is stored with its obliquity, once the sensor's sample at
its time is there (:class:`station.protocols.trial.PelvisAligner`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from station.live.pipeline import LiveStation
from station.protocols.trial import PelvisAligner, PelvisLookup
from station.storage.db import Database, StorageError
from station.storage.models import StanceSide, TrialState
from station.storage.trials import FLUSH_PERIOD_S, TrialWriter
from station.storage.visits import todays_visit

log = logging.getLogger(__name__)

#: how long the thread waits for frames before checking whether a block is due, in s
POLL_S = 0.1


class LiveTrialWriter:
    """Stores every force frame of the live station into ``writer``'s trial until :meth:`stop`.

    Parameters
    ----------
    live : LiveStation
        The frames' source.
    writer : TrialWriter
        A writer of a running trial (:meth:`TrialWriter.start`).
    queue_frames : int
        Frames the subscription holds while the database is busy (default a
        minute at 80 Hz); beyond that the oldest are dropped and counted in
        the trial's ``frames_dropped``.
    pelvis : PelvisLookup, optional
        The pelvis sensor: the trial's frames then carry its obliquity.

    Attributes
    ----------
    error : str
        The last storage error ("" when none); the thread keeps the frames
        and tries again at the next period.
    rejected_frames : int
        Frames refused by the writer (time going backwards, non-finite forces).
    """

    def __init__(self, live: LiveStation, writer: TrialWriter, *, queue_frames: int = 80 * 60,
                 pelvis: PelvisLookup | None = None) -> None:
        self.live = live
        self.writer = writer
        self._aligner: PelvisAligner[Any] = PelvisAligner(pelvis)
        self.error = ""
        self.rejected_frames = 0
        self._sub = live.subscribe(maxlen=queue_frames)
        live.trial_started()
        self._stop = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=f"trial-{writer.trial_id}-writer", daemon=True)
        self._thread.start()

    @classmethod
    def begin(cls, live: LiveStation, db: Database, *, patient_code: str, protocol: str,
              stance_side: StanceSide | str | None = None, settings: Mapping[str, Any] | None = None,
              notes: str = "", flush_period_s: float = FLUSH_PERIOD_S, queue_frames: int = 80 * 60,
              pelvis: PelvisLookup | None = None) -> LiveTrialWriter:
        """Start storing a live trial of the patient (in today's visit, opened when needed).

        The trial takes its sampling rate, plate, geometry and calibration from the live station.
        """
        with db.sessions() as session:
            visit = todays_visit(session, patient_code)
        rate = float(live.feed.info.get("nominal_rate_hz") or 80.0)
        writer = TrialWriter.start(
            db.sessions, session_id=visit.id, protocol=protocol, stance_side=stance_side, settings=settings,
            sample_rate_hz=rate, geometry=live.pipeline.geometry, calibration=live.pipeline.calibration,
            plate_source=str(live.feed.info.get("kind", "")), notes=notes, flush_period_s=flush_period_s,
        )
        return cls(live, writer, queue_frames=queue_frames, pelvis=pelvis)

    @property
    def trial_id(self) -> int:
        return self.writer.trial_id

    @property
    def frames_written(self) -> int:
        """Frames committed to the database so far."""
        return self.writer.frames_written

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _store(self, *, last: bool = False) -> None:
        rows = [row for frame in self._sub.get_all(timeout_s=POLL_S) for row in self._aligner.push(frame, frame.t_s)]
        if last:  # the last frames: their pelvis samples, or NaN
            rows += self._aligner.finish()
        for frame, pelvis_deg in rows:
            try:
                self.writer.add(frame, pelvis_deg=pelvis_deg)
            except ValueError as exc:
                self.rejected_frames += 1
                log.warning("trial %d: frame %d not stored: %s", self.trial_id, frame.seq, exc)
            except StorageError as exc:  # the frame is buffered; the block is retried at the next period
                self._note_error(exc)
        try:
            self.writer.tick()
        except StorageError as exc:
            self._note_error(exc)

    def _note_error(self, exc: StorageError) -> None:
        if str(exc) != self.error:
            log.error("%s", exc)
        self.error = str(exc)

    def _run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            try:
                self._store(last=stopping)
            except Exception as exc:  # never die silently: the trial would stop being stored
                log.exception("trial %d: the writer thread failed", self.trial_id)
                self.error = f"{type(exc).__name__}: {exc}"
                return
            if stopping:
                break

    def stop(self, state: TrialState | str = TrialState.COMPLETE, metrics: Mapping[str, Any] | None = None, *,
             detail: str = "") -> int:
        """Stop taking frames, store the rest and end the trial in ``state``; returns the trial id.

        Raises :class:`StorageError` when the last frames or the end cannot be
        stored (the trial then stays ``running`` and is recovered as
        ``incomplete`` at the next start).
        """
        if self._stopped:
            raise ValueError(f"the writer of trial {self.trial_id} is already stopped")
        self._stopped = True
        self.live.unsubscribe(self._sub)
        self._stop.set()
        self._thread.join()
        try:
            self.writer.finish(state, metrics, detail=detail, frames_dropped=self._sub.overflowed)
        finally:
            self.live.trial_ended()
        return self.trial_id
