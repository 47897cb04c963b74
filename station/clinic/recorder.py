"""Recording the live plate to a recording file (DESIGN.md section 4) while it runs.

The recorder subscribes to the live station and writes from its own thread,
flushing at least once a second, so a crash or a power cut loses at most the
last second of a recording. With the pelvis sensor the file has the column
``pelvis_obliquity_deg`` (DESIGN.md section 4): each row waits for the
sensor's sample at its time, as in a trial
(:class:`station.protocols.trial.PelvisAligner`).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path
from typing import Any

from station.core.geometry import PlateGeometry
from station.core.recording import PELVIS_COLUMN, RecordingWriter
from station.live.pipeline import LiveStation
from station.protocols.trial import PelvisAligner, PelvisLookup

FLUSH_PERIOD_S = 1.0


class LiveRecorder:
    """Writes every force frame of the live station to ``path`` until :meth:`stop`.

    ``t_s`` in the file counts from the first recorded frame; the ``flags``
    column keeps each frame's condition bits (glitch, saturation...); with
    ``pelvis`` (the sensor) the obliquity at each frame's time follows.
    """

    def __init__(self, live: LiveStation, path: Path, *, geometry: PlateGeometry,
                 metadata: dict[str, object] | None = None, pelvis: PelvisLookup | None = None) -> None:
        self.live = live
        self.path = Path(path)
        started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        calib = live.pipeline.calibration
        meta = {"started_at": started, "plate_source": live.feed.info.get("kind", ""),
                "calibration": f"{calib.source} {calib.created_at.date()}", **(metadata or {})}
        self._writer = RecordingWriter(self.path, sample_rate_hz=float(live.feed.info.get("nominal_rate_hz") or 80.0),
                                       geometry=geometry, metadata=meta,
                                       extra_columns=("flags",) if pelvis is None else ("flags", PELVIS_COLUMN))
        self._aligner: PelvisAligner[Any] = PelvisAligner(pelvis)
        self._sub = live.subscribe()
        self._stop = threading.Event()
        self._t0: float | None = None
        self.frames_written = 0
        self.error = ""
        live.trial_started()  # no re-zero may put a step into the recording
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_flush = time.monotonic() + FLUSH_PERIOD_S
        try:
            while True:
                stopping = self._stop.is_set()
                rows = [row for frame in self._sub.get_all(timeout_s=0.1)
                        for row in self._aligner.push(frame, frame.t_s)]
                if stopping:  # the last rows: their pelvis samples, or NaN
                    rows += self._aligner.finish()
                for frame, pelvis_deg in rows:
                    self._write(frame, pelvis_deg)
                if time.monotonic() >= next_flush:
                    self._writer.flush(sync=True)
                    next_flush = time.monotonic() + FLUSH_PERIOD_S
                if stopping:
                    break
        except OSError as exc:  # disk full, card removed...
            self.error = f"{self.path}: writing failed after {self.frames_written} frames: {exc.strerror or exc}"
        finally:
            try:
                self._writer.close()
            except OSError as exc:
                self.error = self.error or f"{self.path}: closing failed: {exc.strerror or exc}"

    def _write(self, frame: Any, pelvis_deg: float | None = None) -> None:
        if self._t0 is None:
            self._t0 = frame.t_s
        extra = {} if pelvis_deg is None else {PELVIS_COLUMN: pelvis_deg}
        self._writer.write_frame(frame.t_s - self._t0, frame.forces_n, flags=int(frame.flags), **extra)
        self.frames_written += 1

    def stop(self) -> Path:
        """Stop, write what is left and close the file; returns its path.

        Raises OSError with the file and the problem when writing failed.
        """
        self.live.unsubscribe(self._sub)
        self._stop.set()
        self._thread.join(5.0)
        self.live.trial_ended()
        if self.error:
            raise OSError(self.error)
        return self.path
