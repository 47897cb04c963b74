"""Replay of a recording as a plate source (kind ``"replay"``).

The recorded forces are turned back into raw counts with a calibration's
:meth:`~calibration.model.Calibration.to_counts` (by default the simulated
plate's cells, which the built-in simulator calibration reads exactly), so the
replayed frames go through exactly the same path as a live plate's: counts -> calibration -> force frame. Every frame
carries :attr:`~station.core.frames.FrameFlag.SYNTHETIC`.

Two modes:

* real time (``realtime=True``, the default): frame *i* is delivered when
  ``t_rec[i] - t_rec[0]`` seconds have passed on the clock since the first
  :meth:`ReplaySource.read`, and its ``t_s`` is that due time on the clock
  (``time.monotonic()`` unless another clock is injected), so timing
  irregularities of the recording are reproduced exactly. A reader that falls
  behind gets the late frames at once, with their due times: none is skipped;
* as fast as possible (``realtime=False``): no waiting, ``t_s`` is the
  recorded time.

With ``loop=True`` the recording starts again after its last frame, one
nominal period later, and time keeps increasing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from hardware.base import PlateSource, SourceFault
from hardware.sim.cells import SIMULATED_CELLS
from station.core.frames import FrameFlag, RawFrame
from station.core.recording import Recording, read_recording

__all__ = ["CountsModel", "ReplaySource"]


class CountsModel(Protocol):
    """What turns forces back into counts: a calibration, or a plate's cells as built."""

    def to_counts(self, forces_n: np.ndarray) -> np.ndarray: ...

_KNOWN_FLAGS = int(FrameFlag.GLITCH | FrameFlag.SATURATED | FrameFlag.CELL_FAULT | FrameFlag.SYNTHETIC)


class ReplaySource(PlateSource):
    """Plays a :class:`~station.core.recording.Recording` as raw frames.

    Parameters
    ----------
    recording : Recording, str or Path
        The recording, or a recording file to read (a bad file raises
        :class:`~station.core.recording.RecordingError` here).
    calibration : CountsModel, optional
        Turns the recorded forces back into counts: a
        :class:`calibration.model.Calibration`, or by default the simulated
        plate's cells (:data:`hardware.sim.cells.SIMULATED_CELLS`, which the
        built-in simulator calibration reads exactly). Counts are not rounded to integers, so
        ``calibration.to_forces`` gives the recorded forces back to rounding.
    realtime : bool
        Deliver frames at their recorded times (default) or as fast as possible.
    loop : bool
        Start again at the end instead of ending.
    clock, sleep : callables
        The monotonic clock (s) and the sleep function used for pacing; tests
        inject a fake pair.

    Notes
    -----
    A ``flags`` extra column holding integers is merged into each frame's
    flags (GLITCH, SATURATED, CELL_FAULT); SYNTHETIC is always set.
    :meth:`read` returns ``None`` at the end (never with ``loop=True``). In
    real time, when the next frame is due more than ``timeout_s`` away (a gap
    in the recording), :meth:`read` waits ``timeout_s`` and raises
    :class:`~hardware.base.SourceFault`, as a live plate that stops answering
    does; the next call carries on.
    """

    kind = "replay"

    def __init__(
        self,
        recording: Recording | str | Path,
        *,
        calibration: CountsModel | None = None,
        realtime: bool = True,
        loop: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        if not isinstance(recording, Recording):
            recording = read_recording(recording)
        self.recording = recording
        self.calibration = calibration if calibration is not None else SIMULATED_CELLS
        self.realtime = bool(realtime)
        self.loop = bool(loop)
        self.nominal_rate_hz = recording.sample_rate_hz
        self._clock = clock
        self._sleep = sleep
        self._counts = self.calibration.to_counts(recording.forces_n)  # (n, 4)
        self._offsets_s = recording.t_s - recording.t_s[0]
        self._cycle_s = recording.span_s + 1.0 / recording.sample_rate_hz
        self._flags = self._recorded_flags(recording)
        self._index = 0
        self._cycle = 0
        self._seq = 0
        self._start: float | None = None

    @staticmethod
    def _recorded_flags(recording: Recording) -> np.ndarray:
        flags = np.full(recording.n_samples, int(FrameFlag.SYNTHETIC), dtype=np.int64)
        col = recording.extra.get("flags")
        if col is not None and col.dtype.kind == "f" and np.all(np.isfinite(col)) and np.all(col == np.round(col)):
            flags |= col.astype(np.int64) & _KNOWN_FLAGS
        return flags

    @property
    def n_frames(self) -> int:
        """Frames in one pass of the recording."""
        return self.recording.n_samples

    def rewind(self) -> None:
        """Start again from the first frame (real time restarts on the next read)."""
        self._index = 0
        self._cycle = 0
        self._start = None

    def describe(self) -> str:
        rec = self.recording
        mode = "real time" if self.realtime else "as fast as possible"
        looping = ", looping" if self.loop else ""
        return (
            f"replay of {rec.name} ({rec.n_samples} samples, {rec.span_s:.1f} s "
            f"at {rec.sample_rate_hz:g} Hz, {mode}{looping})"
        )

    def read(self, timeout_s: float = 1.0) -> RawFrame | None:
        if self._index >= self.n_frames:
            if not self.loop:
                return None
            self._index = 0
            self._cycle += 1
        i = self._index
        offset_s = self._cycle * self._cycle_s + float(self._offsets_s[i])
        if self.realtime:
            if self._start is None:
                self._start = self._clock()
            due = self._start + offset_s
            wait = due - self._clock()
            if wait > timeout_s:
                self._sleep(max(timeout_s, 0.0))
                self.stats.faults += 1
                self.stats.last_fault = f"replay: no frame due within {timeout_s:g} s (gap in the recording)"
                raise SourceFault(self.stats.last_fault)
            if wait > 0:
                self._sleep(wait)
            t_s = due
        else:
            t_s = float(self.recording.t_s[i]) + self._cycle * self._cycle_s
        counts = self._counts[i]
        flags = FrameFlag(int(self._flags[i]))
        frame = RawFrame(
            seq=self._seq,
            t_s=t_s,
            counts=(float(counts[0]), float(counts[1]), float(counts[2]), float(counts[3])),
            flags=flags,
        )
        self._index += 1
        self._seq += 1
        self.stats.frames += 1
        if flags & (FrameFlag.GLITCH | FrameFlag.SATURATED):
            self.stats.glitches += 1
        return frame
