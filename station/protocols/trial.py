"""Driving a protocol runner: the same frames live and from a recording, so the same result.

"The same frames" means the frames **as the trial's recording holds them**
(DESIGN.md section 4): time counted from the trial's first frame and rounded
to 1 us, forces rounded to 0.1 mN, exactly as :class:`~station.core.recording.RecordingWriter`
writes them, and Fz and the centre of pressure computed from those forces by
:func:`station.core.cop.centre_of_pressure`. :class:`TrialCapture` turns each live
force frame into that form *before* the runner sees it and keeps (and writes)
the very same rows; :func:`frames_from_recording` builds the same frames from
a recording file. The runner is therefore fed bit-identical frames on both
paths, finds the same events, and the same scoring function
(:mod:`station.scoring.scores`) scores the same recorded trial: ``balance-station
analyze`` on a trial's file prints what the live test reported. The rounding
is far below anything measured (module notes of :mod:`station.core.recording`).

The pelvis sensor (``docs/pelvis-sensor.md``): given a ``pelvis`` lookup,
:class:`TrialCapture` adds the column ``pelvis_obliquity_deg`` to every kept
row: the obliquity at the frame's own time on the plate's clock (the live
frame's ``t_s``, ``time.monotonic`` on the station, before it is shifted to
the trial's start), rounded to :data:`PELVIS_DECIMALS` decimals as the file
holds it, empty (NaN) where the sensor had no value. A row waits until the
sensor has a sample after the frame's time (at most :data:`PELVIS_WAIT_S`),
so a sample still on its way is not lost; the runner is fed at once. A
runner that reads the pelvis itself (``needs_pelvis``: the pelvis drills of
:mod:`station.drills.pelvis`) gets the angle with each frame,
``runner.update(frame, pelvis_deg)``: the same rounded value as the row when
the sample is there, else the sensor's newest (:meth:`TrialCapture.pelvis_now`).

Scoring itself (resampling onto the nominal rate and the 10 Hz zero-phase
low-pass of the ``analyze`` contract) works on the whole recorded trial after
the fact; only the detection of onset, touchdowns and support runs frame by
frame, causally, in the runner.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Generic, Protocol, TypeVar

import numpy as np

from station.core.cop import centre_of_pressure
from station.core.frames import ForceFrame, FrameFlag
from station.core.geometry import PlateGeometry
from station.core.recording import FORCE_DECIMALS, PELVIS_COLUMN, T_DECIMALS, Recording, RecordingWriter
from station.protocols.events import ProtocolEvent
from station.protocols.quiet_stance import QuietStanceRunner
from station.protocols.single_leg import SingleLegRunner

__all__ = ["PELVIS_DECIMALS", "PELVIS_WAIT_S", "PelvisAligner", "PelvisLookup", "Runner", "TrialCapture",
           "frames_from_recording", "frames_from_rows"]

Runner = SingleLegRunner | QuietStanceRunner

#: The obliquity is kept with this many decimals (1/1000 degree: far below the sensor's 0.03 degree noise).
PELVIS_DECIMALS = 3
#: A kept row waits at most this long (s, on the plate's clock) for the pelvis sensor's sample after it.
PELVIS_WAIT_S = 0.25

T = TypeVar("T")


class PelvisLookup(Protocol):
    """The pelvis sensor as the capture sees it (:class:`station.live.pelvis.SensorPelvis`,
    :class:`hardware.sim.pelvis.SimulatedPelvis`)."""

    def at(self, t_s: float) -> float:
        """The obliquity (deg, positive = the right side higher) at ``t_s`` on the plate's clock; NaN: no value."""
        ...

    def ready(self, t_s: float) -> bool:
        """True once the sensor's samples reach past ``t_s`` (the value at ``t_s`` will not change)."""
        ...


def _round_text(value: float, decimals: int) -> float:
    """``value`` as the recording file holds it (written with ``decimals`` decimals, read back)."""
    return float(f"{value:.{decimals}f}")


def frames_from_rows(t_s: np.ndarray, forces_n: np.ndarray, *, geometry: PlateGeometry,
                     flags: np.ndarray | None = None) -> Iterator[ForceFrame]:
    """Force frames from recorded rows: Fz and COP from the forces (COP NaN below the occupancy threshold)."""
    f = np.asarray(forces_n, dtype=np.float64).reshape(-1, 4)
    t = np.asarray(t_s, dtype=np.float64).reshape(-1)
    fz, x, y = centre_of_pressure(f, ml_mm=geometry.ml_mm, ap_mm=geometry.ap_mm)
    for i in range(t.size):
        yield ForceFrame(seq=i, t_s=float(t[i]), forces_n=(float(f[i, 0]), float(f[i, 1]), float(f[i, 2]),
                                                            float(f[i, 3])),
                         fz_n=float(fz[i]), cop_ml_mm=float(x[i]), cop_ap_mm=float(y[i]),
                         flags=FrameFlag(0 if flags is None else int(flags[i])))


def frames_from_recording(rec: Recording) -> Iterator[ForceFrame]:
    """The recording's samples as force frames, as recorded (no resampling, no filtering)."""
    return frames_from_rows(rec.t_s, rec.forces_n, geometry=rec.geometry)



class PelvisAligner(Generic[T]):
    """Items (rows, frames) wait for the pelvis sensor's sample after their time on the plate's clock.

    :meth:`push` an item with its live frame's ``t_s``; it comes out of :meth:`push` or :meth:`drain`, in
    order, with the obliquity at that time (deg, rounded to :data:`PELVIS_DECIMALS`; NaN where the sensor
    had no value), once the sensor has a sample after it, or once a frame :data:`PELVIS_WAIT_S` later has
    come (the sample is then taken as missing). At the end, :meth:`finish` gives the last samples their
    time to come, then lets the rest out. Without a sensor (``pelvis`` None) every item comes out of
    :meth:`push` at once, with ``None``.
    """

    def __init__(self, pelvis: PelvisLookup | None) -> None:
        self.pelvis = pelvis
        self._pending: deque[tuple[T, float]] = deque()
        self._latest_t: float | None = None

    def __len__(self) -> int:
        return len(self._pending)

    def push(self, item: T, live_t_s: float) -> list[tuple[T, float | None]]:
        if self.pelvis is None:
            return [(item, None)]
        self._pending.append((item, float(live_t_s)))
        self._latest_t = float(live_t_s)
        return self.drain()

    def note_time(self, live_t_s: float) -> None:
        """A frame at ``live_t_s`` came (without an item): the items waiting longer are late."""
        self._latest_t = float(live_t_s)

    def drain(self, *, force: bool = False) -> list[tuple[T, float | None]]:
        out: list[tuple[T, float | None]] = []
        while self._pending and self.pelvis is not None:
            item, live_t = self._pending[0]
            late = self._latest_t is not None and self._latest_t - live_t >= PELVIS_WAIT_S
            if not (force or late or self.pelvis.ready(live_t)):
                break
            self._pending.popleft()
            value = float(self.pelvis.at(live_t))
            out.append((item, _round_text(value, PELVIS_DECIMALS) if math.isfinite(value) else math.nan))
        return out

    def finish(self, *, wait_s: float = PELVIS_WAIT_S, clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> list[tuple[T, float | None]]:
        """The end of a live recording: wait at most ``wait_s`` (on ``clock``) for the samples still on their
        way, then let every item out (NaN where none came)."""
        out = self.drain()
        deadline = clock() + wait_s
        while self._pending and clock() < deadline:
            sleep(0.01)
            out += self.drain()
        return out + self.drain(force=True)


class TrialCapture:
    """Feeds a runner live frames in their recorded form, and keeps the trial's recording.

    Parameters
    ----------
    runner : SingleLegRunner or QuietStanceRunner
        A fresh runner.
    geometry : PlateGeometry
        The plate's geometry (written into the recording).
    sample_rate_hz : float
        The plate's nominal rate (written into the recording).
    metadata : mapping, optional
        More recording metadata (``patient``, ``started_at``, ``calibration``...);
        the runner's own (protocol, side, settings) is added.
    target : str, Path or text stream, optional
        Where to write the recording as it is made (a crash loses at most
        what is buffered); None keeps it in memory only.
    on_keep : callable, optional
        Called with every kept frame, exactly as the recording holds it
        (time from the recording's first row): the trial controller stores
        these very frames in the database, so the stored trial re-scores to
        the live result. With ``pelvis``, called as ``on_keep(frame,
        pelvis_deg=value)`` (NaN: no value).
    pelvis : PelvisLookup, optional
        The pelvis sensor: the recording gets the column ``pelvis_obliquity_deg``.

    Notes
    -----
    Every frame the runner is fed up to and including the one that finishes it
    is kept for single-leg (the analysis re-runs the runner from the first
    frame); for quiet stance only the frames of the recorded window are kept.
    """

    def __init__(self, runner: Runner, *, geometry: PlateGeometry, sample_rate_hz: float,
                 metadata: Mapping[str, object] | None = None, target: str | Path | IO[str] | None = None,
                 on_keep: Callable[..., None] | None = None, pelvis: PelvisLookup | None = None) -> None:
        self.runner = runner
        self.pelvis = pelvis
        self._aligner: PelvisAligner[ForceFrame] = PelvisAligner(pelvis)
        self._rows_p: list[float] = []
        self._on_keep = on_keep
        self.geometry = geometry
        self.sample_rate_hz = float(sample_rate_hz)
        self.metadata: dict[str, str] = {**{k: str(v) for k, v in (metadata or {}).items()}, **runner.metadata()}
        self._t0: float | None = None
        self._last_t: float | None = None
        self._kept_t0: float | None = None
        self._rows_t: list[float] = []
        self._rows_f: list[tuple[float, float, float, float]] = []
        self._rows_flags: list[int] = []
        self._flushed_t = 0.0
        self.skipped_frames = 0
        self._writer = (RecordingWriter(target, sample_rate_hz=self.sample_rate_hz, geometry=geometry,
                                        metadata=self.metadata,
                                        extra_columns=("flags",) if pelvis is None else ("flags", PELVIS_COLUMN))
                        if target is not None else None)

    @property
    def finished(self) -> bool:
        return self.runner.finished

    @property
    def n_rows(self) -> int:
        return len(self._rows_t)

    def recorded_frame(self, frame: ForceFrame) -> ForceFrame | None:
        """``frame`` as the recording holds it (None when its time is not after the previous frame's)."""
        if self._t0 is None:
            self._t0 = float(frame.t_s)
        t = _round_text(float(frame.t_s) - self._t0, T_DECIMALS)
        if self._last_t is not None and not t > self._last_t:
            return None
        forces = np.array([[_round_text(float(v), FORCE_DECIMALS) for v in frame.forces_n]])
        return next(frames_from_rows(np.array([t]), forces, geometry=self.geometry,
                                     flags=np.array([int(frame.flags)])))

    def push(self, frame: ForceFrame) -> list[ProtocolEvent]:
        """Feed one live force frame; returns the runner's events. Frames after the end are ignored."""
        if self.runner.finished:
            return []
        rec_frame = self.recorded_frame(frame)
        if rec_frame is None:
            self.skipped_frames += 1
            return []
        self._last_t = rec_frame.t_s
        if getattr(self.runner, "needs_pelvis", False):  # a pelvis drill: the angle with the frame
            events = self.runner.update(rec_frame, self.pelvis_now(float(frame.t_s)))
        else:
            events = self.runner.update(rec_frame)
        if self.runner.frame_in_trial:  # with the sensor, the rows wait for their samples: close() takes the last
            kept = self._aligner.push(rec_frame, float(frame.t_s))
        else:
            self._aligner.note_time(float(frame.t_s))
            kept = self._aligner.drain()
        for row, pelvis_deg in kept:
            self._keep(row, pelvis_deg)
        return events

    def pelvis_now(self, live_t_s: float) -> float:
        """The obliquity for a runner that reads it live (a pelvis drill): at the live frame's time on the
        plate's clock, rounded as the recording keeps it; while that sample is still on its way, the
        newest one; NaN without a sensor or a value. (The row itself waits for the sample.)"""
        if self.pelvis is None:
            return math.nan
        value = float(self.pelvis.at(live_t_s))
        if not math.isfinite(value) and not self.pelvis.ready(live_t_s) and hasattr(self.pelvis, "latest"):
            value = float(self.pelvis.latest())
        return _round_text(value, PELVIS_DECIMALS) if math.isfinite(value) else math.nan

    @property
    def pelvis_pending(self) -> int:
        """Kept rows still waiting for the pelvis sensor's sample."""
        return len(self._aligner)

    def drain_pelvis(self, *, force: bool = False) -> int:
        """Keep the rows waiting for the pelvis sensor whose value is known (all of them with ``force``)."""
        kept = self._aligner.drain(force=force)
        for row, pelvis_deg in kept:
            self._keep(row, pelvis_deg)
        return len(kept)

    def finish_pelvis(self) -> int:
        """The end of a live trial: keep the last rows once their samples came, or after
        :data:`PELVIS_WAIT_S` without them (:meth:`PelvisAligner.finish`)."""
        kept = self._aligner.finish()
        for row, pelvis_deg in kept:
            self._keep(row, pelvis_deg)
        return len(kept)

    def _keep(self, frame: ForceFrame, pelvis_deg: float | None = None) -> None:
        if self._kept_t0 is None:
            self._kept_t0 = frame.t_s
        # rows count from the first kept frame (single-leg: the first frame, so the times are unchanged)
        t = frame.t_s if self._kept_t0 == 0.0 else _round_text(frame.t_s - self._kept_t0, T_DECIMALS)
        self._rows_t.append(t)
        self._rows_f.append(frame.forces_n)
        self._rows_flags.append(int(frame.flags))
        kept = frame if t == frame.t_s else dataclasses.replace(frame, t_s=t)
        if self.pelvis is not None:
            self._rows_p.append(math.nan if pelvis_deg is None else pelvis_deg)
            if self._on_keep is not None:
                self._on_keep(kept, pelvis_deg=self._rows_p[-1])
            if self._writer is not None:
                self._writer.write_frame(t, frame.forces_n, flags=int(frame.flags), **{PELVIS_COLUMN: self._rows_p[-1]})
        else:
            if self._on_keep is not None:
                self._on_keep(kept)
            if self._writer is not None:
                self._writer.write_frame(t, frame.forces_n, flags=int(frame.flags))
        if self._writer is not None:
            if t - self._flushed_t >= 1.0:  # at most a second of the trial is only in memory
                self._writer.flush()
                self._flushed_t = t

    def abort(self, reason: str = "aborted by the operator") -> list[ProtocolEvent]:
        """Abort the runner (the recording is kept as far as it went)."""
        events = self.runner.abort(reason)
        self.close()
        return events

    def close(self) -> None:
        """Keep the rows still waiting for the pelvis sensor, close the recording file, if any. Idempotent."""
        self.drain_pelvis(force=True)
        if self._writer is not None:
            self._writer.close()

    def recording(self) -> Recording:
        """The kept frames as a :class:`Recording` (what the file holds, number for number)."""
        if len(self._rows_t) < 2:
            raise ValueError(f"the trial holds {len(self._rows_t)} frame(s); a recording needs at least 2")
        extra = {"flags": np.array(self._rows_flags, dtype=np.float64)}
        if self.pelvis is not None:
            extra[PELVIS_COLUMN] = np.array(self._rows_p, dtype=np.float64)
        return Recording(t_s=np.array(self._rows_t), forces_n=np.array(self._rows_f),
                         sample_rate_hz=self.sample_rate_hz, geometry=self.geometry, metadata=dict(self.metadata),
                         extra=extra, name="<live trial>")

    def finished_recording(self) -> Recording:
        """The trial's recording, once the runner is done, to be scored
        (:func:`station.scoring.analyze.score_runner`: the ``analyze`` contract).

        Raises
        ------
        ValueError
            The runner has not finished, or was aborted (nothing to score).
        """
        if not self.runner.finished:
            raise ValueError("the test is still running: score it once the runner has finished")
        if self.runner.state.value == "aborted":
            raise ValueError(f"the test was aborted ({self.runner.end_reason}): nothing to score")
        self.close()
        return self.recording()
