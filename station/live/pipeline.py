"""The live station: frames from the acquisition process, turned into forces, shared out.

One pump drains the acquisition's pipe, runs every raw frame through the
:class:`~station.signal.forces.ForcePipeline`, keeps the latest state for the
screen and the status page, and hands each force frame to the subscribers
(recorders, protocol runners, the web live view). Readers never block the
pump: they read a snapshot under a short lock or their own queue.

Who pumps: the pump thread, unless a screen does. A screen that draws at its
frame rate calls :meth:`LiveStation.pump` at the start of each of its frames:
the frames that arrived since are ingested then, just before they are drawn,
so the cursor is as fresh as with a thread, and the process wakes once per
screen frame instead of once more per plate frame (80 times a second: on a
small computer, most of what the pump costs). While a screen pumps, the thread
only watches: when the screen has not pumped for :data:`DRIVEN_S` (it stalled,
or it closed) the thread takes over again, so frames reach the recorders and
the trial runners whatever the screen does.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import logging
import math
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from calibration.model import Calibration
from station.core.cop import GRAVITY_M_S2
from station.core.frames import CELLS, SYNTHETIC_SOURCES, ForceFrame, FrameFlag, RawFrame
from station.signal.drift import ZeroEstimate, ZeroTracker
from station.signal.forces import ForcePipeline

log = logging.getLogger(__name__)

#: the display trail and body-weight window
TRAIL_S = 2.0
WEIGHT_WINDOW_S = 1.0
#: after a screen's last :meth:`LiveStation.pump`, the pump thread leaves the pumping to it this long (s)
DRIVEN_S = 0.1


class FrameFeed(Protocol):
    """What the live station needs from the acquisition (the real process, or a test double)."""

    info: dict[str, Any]
    ended: bool
    error: str

    def frames(self, *, timeout_s: float = 0.1, max_frames: int = 10_000) -> list[RawFrame]: ...
    def command(self, name: str, /, **params: Any) -> None: ...
    def rate_hz(self) -> float | None: ...

    @property
    def alive(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class LiveSample:
    """What the screen draws: the newest frame, smoothed for display.

    ``received_s`` is when the frame reached this process (``time.monotonic``),
    for latency measurements.
    """

    frame: ForceFrame
    cop_ml_mm: float
    cop_ap_mm: float
    body_weight_n: float
    received_s: float

    @property
    def occupied(self) -> bool:
        return self.frame.occupied


class Subscription:
    """A bounded queue of force frames for one consumer.

    When a consumer falls more than ``maxlen`` frames behind, the oldest are
    dropped and counted in ``overflowed``, never blocking the pump.
    """

    def __init__(self, maxlen: int) -> None:
        self._q: collections.deque[ForceFrame] = collections.deque(maxlen=maxlen)
        self._cond = threading.Condition()
        self.overflowed = 0

    def put(self, frame: ForceFrame) -> None:
        with self._cond:
            if len(self._q) == self._q.maxlen:
                self.overflowed += 1
            self._q.append(frame)
            self._cond.notify_all()

    def get_all(self, *, timeout_s: float = 0.0) -> list[ForceFrame]:
        with self._cond:
            if not self._q and timeout_s > 0:
                self._cond.wait(timeout_s)
            items = list(self._q)
            self._q.clear()
            return items


class LiveStation:
    """The station's live state.

    Parameters
    ----------
    feed : FrameFeed
        The acquisition process (or a test double with the same methods).
    pipeline : ForcePipeline
        Calibration, glitch guard and COP.
    display_cutoff_hz : float
        Cut-off of the causal low-pass that smooths the COP on the screen.
    auto_rezero : bool
        Re-zero the cells from the zero tracker whenever the plate is empty and
        still and no trial is running (:meth:`trial_started`/:meth:`trial_ended`).
    rezero_threshold_n : float
        Re-zero only when a cell's zero moved by more than this (N).
    drift_warn_n : float
        Warn when the zero has moved this far (N, summed over the cells) since
        the calibration: more than ordinary drift.
    """

    def __init__(self, feed: FrameFeed, pipeline: ForcePipeline, *, display_cutoff_hz: float = 8.0,
                 auto_rezero: bool = True, rezero_threshold_n: float = 0.5, drift_warn_n: float = 20.0) -> None:
        from station.signal.filters import CausalLowpass

        self.feed = feed
        self.pipeline = pipeline
        self.started_at = dt.datetime.now(dt.UTC)
        nominal_hz = float(feed.info.get("nominal_rate_hz") or 80.0)
        self._display = CausalLowpass(fs_hz=nominal_hz, cutoff_hz=display_cutoff_hz)
        self._lock = threading.Lock()
        self._latest: LiveSample | None = None
        self._trail: collections.deque[tuple[float, float]] = collections.deque(maxlen=int(TRAIL_S * nominal_hz))
        self._fz_window: collections.deque[float] = collections.deque(maxlen=int(WEIGHT_WINDOW_S * nominal_hz))
        self._subs: list[Subscription] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pump_lock = threading.Lock()  # one pumper at a time: frames are ingested in order
        self._driven_until_s = -math.inf  # a screen pumps until then (time.monotonic)
        self.frames_processed = 0
        self.pump_error = ""
        # zero drift
        self.calibration = pipeline.calibration  # as loaded; re-zeroing changes only the pipeline's copy
        self.zero_tracker = ZeroTracker(nominal_rate_hz=nominal_hz)
        self.auto_rezero = auto_rezero
        self.rezero_threshold_n = rezero_threshold_n
        self.drift_warn_n = drift_warn_n
        self._trials_running = 0
        self._zero_lock = threading.Lock()
        self.rezeros: collections.deque[dict[str, Any]] = collections.deque(maxlen=50)

    # -- life cycle -------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._pump, name="frame-pump", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)

    def _pump(self) -> None:
        try:
            while not self._stop.is_set() and not self.pump_error:
                left_s = self._driven_until_s - time.monotonic()
                if left_s > 0:  # a screen pumps: watch that it goes on
                    self._stop.wait(left_s + 0.001)
                    continue
                if not self._drain(timeout_s=0.05) and self.feed.ended:
                    self._stop.wait(0.05)
        except Exception as exc:  # noqa: BLE001 - the station must see it, not a silent dead thread
            self.pump_error = f"{type(exc).__name__}: {exc}"
            log.exception("frame pump stopped")

    def _drain(self, *, timeout_s: float) -> int:
        with self._pump_lock:
            raws = self.feed.frames(timeout_s=timeout_s)
            for raw in raws:
                self.ingest(raw)
        return len(raws)

    def pump(self, *, timeout_s: float = 0.0) -> int:
        """Ingest the frames that arrived, now, in the caller's thread; return how many.

        For a screen, at the start of each of its frames (see the module's notes): the pump
        thread then leaves the pumping to it for :data:`DRIVEN_S`. ``timeout_s`` waits that
        long for a first frame when none is there (a frame about to arrive). A pump that
        failed is reported as the thread's would be (:attr:`pump_error`, :attr:`pump_alive`), not
        raised into the screen; after that nothing pumps any more and the station restarts.
        """
        if self.pump_error:
            return 0
        self._driven_until_s = time.monotonic() + DRIVEN_S
        try:
            return self._drain(timeout_s=timeout_s)
        except Exception as exc:  # noqa: BLE001 - as the thread: the station must see it
            self.pump_error = f"{type(exc).__name__}: {exc}"
            log.exception("frame pump stopped")
            return 0

    @property
    def pump_alive(self) -> bool:
        """False once the pump thread has died of an error (the station then stops and is restarted)."""
        return not self.pump_error

    def ingest(self, raw: RawFrame) -> ForceFrame:
        """Process one raw frame (the pump calls this; tests may too)."""
        frame = self.pipeline.process(raw)
        estimate = self.zero_tracker.update(raw, frame, self.pipeline.calibration)
        if estimate is not None:
            self._maybe_rezero(estimate)
        now = time.monotonic()
        if frame.occupied:
            x, y = self._display.update_values(frame.cop_ml_mm, frame.cop_ap_mm)
            self._fz_window.append(frame.fz_n)
        else:
            self._display.reset()
            x = y = math.nan
            self._fz_window.clear()
        weight = statistics.median(self._fz_window) if self._fz_window else 0.0
        sample = LiveSample(frame=frame, cop_ml_mm=x, cop_ap_mm=y, body_weight_n=weight, received_s=now)
        with self._lock:
            self._latest = sample
            self._trail.append((x, y))
            subs = list(self._subs)
        self.frames_processed += 1
        for sub in subs:
            sub.put(frame)
        return frame

    # -- zero drift ---------------------------------------------------------------------
    def trial_started(self) -> None:
        """A trial (or a recording) is running: no re-zeroing until :meth:`trial_ended`."""
        with self._zero_lock:
            self._trials_running += 1

    def trial_ended(self) -> None:
        with self._zero_lock:
            self._trials_running = max(0, self._trials_running - 1)

    @property
    def trial_running(self) -> bool:
        return self._trials_running > 0

    def _maybe_rezero(self, estimate: ZeroEstimate) -> None:
        if not self.auto_rezero or max(abs(d) for d in estimate.drift_n) <= self.rezero_threshold_n:
            return
        with self._zero_lock:  # a trial cannot start between the check and the change
            if self._trials_running:
                return
            self.pipeline.set_calibration(dataclasses.replace(self.pipeline.calibration,
                                                              offsets_counts=estimate.offsets_counts))
        entry = {"at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                 "moved_n": [round(d, 3) for d in estimate.drift_n]}
        self.rezeros.append(entry)
        log.info("re-zeroed the plate: zeros moved by %s N (fl, fr, bl, br)", entry["moved_n"])

    def drift_since_calibration_n(self) -> list[float] | None:
        """How far each cell's zero has moved since the calibration, in N (None before the first empty window)."""
        latest = self.zero_tracker.latest
        if latest is None:
            return None
        calib = self.calibration
        moved_counts = np.asarray(latest.offsets_counts) - np.asarray(calib.offsets_counts)
        moved = moved_counts * np.asarray(calib.gains_n_per_count)
        return [float(v) for v in moved]

    # -- readers ----------------------------------------------------------------------
    def latest(self) -> LiveSample | None:
        with self._lock:
            return self._latest

    def trail(self) -> list[tuple[float, float]]:
        """The smoothed COP over the last few seconds (NaN where the plate was empty)."""
        with self._lock:
            return list(self._trail)

    def subscribe(self, *, maxlen: int = 80 * 60) -> Subscription:
        sub = Subscription(maxlen)
        with self._lock:
            self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def command(self, name: str, /, **params: Any) -> None:
        self.feed.command(name, **params)

    @property
    def synthetic(self) -> bool:
        return self.feed.info.get("kind") in SYNTHETIC_SOURCES

    def status(self, *, calibration_max_age_days: float = 30.0) -> dict[str, Any]:
        """The state of the plate for the status page and ``GET /api/v1/status``."""
        sample = self.latest()
        stats = getattr(self.feed, "stats", None)
        rate = self.feed.rate_hz()
        calib: Calibration = self.pipeline.calibration
        age_days = calib.age_days()
        warnings = []
        if calib.is_builtin and not self.synthetic:
            warnings.append("The plate is not calibrated: run 'balance-station calibrate'.")
        elif not calib.is_builtin and age_days > calibration_max_age_days:
            warnings.append(f"The calibration is {age_days:.0f} days old: "
                            f"recalibrate (limit {calibration_max_age_days:.0f} days).")
        drift = self.drift_since_calibration_n()
        if drift is not None and (abs(sum(drift)) > self.drift_warn_n or max(map(abs, drift)) > self.drift_warn_n / 2):
            worst = max(range(4), key=lambda i: abs(drift[i]))
            warnings.append(f"The empty plate's zero has moved {sum(drift):+.1f} N since the calibration "
                            f"(cell {CELLS[worst]}: {drift[worst]:+.1f} N; limit {self.drift_warn_n:.0f} N in all, "
                            f"{self.drift_warn_n / 2:.0f} N a cell): check the cells and recalibrate.")
        if self.feed.error:
            warnings.append(f"Acquisition stopped: {self.feed.error}")
        elif not self.feed.alive and not self.feed.ended:
            warnings.append("The acquisition process is not running.")
        last_fault = getattr(stats, "last_fault", "")
        frame = sample.frame if sample else None
        occupied = bool(frame and frame.occupied)

        def num(value: float | None, digits: int) -> float | None:
            return None if value is None or not math.isfinite(value) else round(value, digits)

        return {
            "plate_source": self.feed.info.get("kind", "unknown"),
            "plate_description": self.feed.info.get("description", ""),
            "synthetic": self.synthetic,
            "acquiring": self.feed.alive,
            "nominal_rate_hz": self.feed.info.get("nominal_rate_hz"),
            "sample_rate_hz": num(rate, 2),
            "frames": getattr(stats, "frames", self.frames_processed),
            "dropped_frames": getattr(stats, "dropped_frames", 0),
            "glitch_frames": self.pipeline.glitch_frames,
            "discarded_reads": (getattr(stats, "source", {}) or {}).get("dropped", 0),
            "faults": getattr(stats, "faults", 0),
            "last_fault": last_fault,
            "occupied": occupied,
            "fz_n": num(frame.fz_n, 1) if frame else None,
            "body_weight_kg": num(sample.body_weight_n / GRAVITY_M_S2, 1) if sample and occupied else None,
            "cop_ml_mm": num(frame.cop_ml_mm, 1) if occupied and frame else None,
            "cop_ap_mm": num(frame.cop_ap_mm, 1) if occupied and frame else None,
            "glitch": bool(frame and frame.flags & FrameFlag.GLITCH),
            "zero_drift_n": None if drift is None else [round(d, 2) for d in drift],
            "zero_drift_total_n": None if drift is None else round(sum(drift), 2),
            "rezero_count": len(self.rezeros),
            "last_rezero_at": self.rezeros[-1]["at"] if self.rezeros else None,
            "calibration_max_cop_error_mm": (calib.verification or {}).get("max_cop_error_mm"),
            "calibration_max_force_error_pct": (calib.verification or {}).get("max_force_error_pct"),
            # a built-in calibration (the simulator's, or nominal gains) was never made on a date: no made-up age
            "calibration_date": None if calib.is_builtin else calib.created_at.isoformat(),
            "calibration_age_days": None if calib.is_builtin else round(age_days, 1),
            "calibration_source": calib.source,
            "calibration_note": calib.note,
            "warnings": warnings,
            "started_at": self.started_at.isoformat(timespec="seconds"),
        }
