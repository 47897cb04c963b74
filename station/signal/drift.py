"""Zero drift: tracking the cells' unloaded readings while the plate is empty.

Load cells and HX711s drift with temperature and time: the reading of an
empty plate wanders by tens to hundreds of counts over a day. The tracker
watches windows where the plate is empty and still, measures each cell's zero
there, and reports how far it has moved from the calibration's offsets. The
live station re-zeroes from it between trials (never during one) and warns
when the drift exceeds a bound, which points at a cell or a mounting problem
rather than ordinary drift.

A pure state machine: fed with raw frames and the force frames made from
them, no I/O, no clock of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from calibration.model import Calibration
from station.core.frames import ForceFrame, FrameFlag, RawFrame

#: below this total force (N) the plate counts as empty for zero tracking:
#: far below the occupancy threshold, so a hand resting on the plate is not a zero
EMPTY_N = 30.0
#: a window must be this long (s) and this still (per-cell std, N) to give a zero
WINDOW_S = 2.0
STILL_STD_N = 0.5


@dataclass(frozen=True)
class ZeroEstimate:
    """The cells' zero measured over one empty, still window."""

    t_s: float
    offsets_counts: tuple[float, float, float, float]
    drift_n: tuple[float, float, float, float]

    @property
    def total_drift_n(self) -> float:
        """Apparent load of the empty plate, in N (the sum over the cells)."""
        return float(sum(self.drift_n))


@dataclass
class ZeroTracker:
    """Measures the zero of each cell whenever the plate is empty and still.

    Parameters
    ----------
    nominal_rate_hz : float
        Frames per second, to size the window.
    empty_n : float
        Total force (N) below which the plate counts as empty.
    window_s : float
        Length of the empty, still period that gives one estimate, in s.
    still_std_n : float
        Largest per-cell standard deviation (N) over the window.
    """

    nominal_rate_hz: float = 80.0
    empty_n: float = EMPTY_N
    window_s: float = WINDOW_S
    still_std_n: float = STILL_STD_N
    latest: ZeroEstimate | None = None
    _window: list[tuple[float, ...]] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ("nominal_rate_hz", "empty_n", "window_s", "still_std_n"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")

    def update(self, raw: RawFrame, frame: ForceFrame, calibration: Calibration) -> ZeroEstimate | None:
        """Feed one frame; returns a new estimate when a window completes."""
        bad = FrameFlag.GLITCH | FrameFlag.SATURATED | FrameFlag.CELL_FAULT
        if frame.fz_n >= self.empty_n or frame.flags & bad or raw.flags & bad:
            self._window.clear()
            return None
        self._window.append(raw.counts)
        if len(self._window) < round(self.window_s * self.nominal_rate_hz):
            return None
        counts = np.asarray(self._window)
        self._window.clear()
        gains = np.abs(np.asarray(calibration.gains_n_per_count))
        if np.any(counts.std(axis=0) * gains > self.still_std_n):
            return None  # something moved: not a zero
        zero = np.median(counts, axis=0)
        drift_n = (zero - np.asarray(calibration.offsets_counts)) * np.asarray(calibration.gains_n_per_count)
        self.latest = ZeroEstimate(
            t_s=raw.t_s,
            offsets_counts=tuple(float(v) for v in zero),  # type: ignore[arg-type]
            drift_n=tuple(float(v) for v in drift_n),  # type: ignore[arg-type]
        )
        return self.latest
