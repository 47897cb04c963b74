"""The pelvis sensor on the live station: its process, polled beside the plate, looked up at a frame's time.

:class:`SensorPelvis` owns a :class:`hardware.imu.source.PelvisProcess` (the
sensor in its own process, ``docs/pelvis-sensor.md``) and a thread that moves
its samples into the :class:`~hardware.imu.source.PelvisTrack` every
:data:`POLL_S`, whether a trial runs or not (the queue never fills). A trial's
capture (:class:`station.protocols.trial.TrialCapture`) asks it for the
obliquity at each frame's time (:meth:`SensorPelvis.at`) once the samples have
reached that time (:meth:`SensorPelvis.ready`). A fault (unplugged, silent)
stops nothing: there are no samples, the recording's cells stay empty and
:attr:`SensorPelvis.fault` says why.

The simulated sensor (:class:`hardware.sim.pelvis.SimulatedPelvis`) has the
same face and needs no thread.
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Any

from hardware.imu.source import PelvisProcess, PelvisSpec, PelvisTrack

__all__ = ["POLL_S", "SensorPelvis"]

log = logging.getLogger(__name__)

#: The parent collects the child's samples this often, s.
POLL_S = 0.02


class SensorPelvis:
    """The real pelvis sensor, running beside the plate.

    Parameters
    ----------
    spec : PelvisSpec
        How the child builds the sensor (bus, address, rate; a test's fake ``smbus2``).
    process : PelvisProcess, optional
        An existing process (tests); default one made from ``spec``.
    """

    synthetic = False

    def __init__(self, spec: PelvisSpec | None = None, *, process: Any = None) -> None:
        if process is None and spec is None:
            raise ValueError("give a PelvisSpec or a process")
        self.process = process if process is not None else PelvisProcess(spec)  # type: ignore[arg-type]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_fault: str | None = None
        self._latest = math.nan

    @property
    def track(self) -> PelvisTrack:
        return self.process.track

    @property
    def fault(self) -> str | None:
        return self.process.fault

    def start(self) -> SensorPelvis:
        self.process.start()
        self._thread = threading.Thread(target=self._pump, name="pelvis-pump", daemon=True)
        self._thread.start()
        return self

    def _pump(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                with self._lock:
                    samples = self.process.poll()
                if samples:
                    self._latest = samples[-1].obliquity_deg
                if self.process.fault != self._last_fault:
                    self._last_fault = self.process.fault
                    if self._last_fault:
                        log.warning("%s", self._last_fault)
                    else:
                        log.info("pelvis sensor: working")
            except Exception:  # noqa: BLE001 - the plate goes on without the sensor
                log.exception("pelvis sensor: polling failed")

    def at(self, t_s: float) -> float:
        with self._lock:
            return self.track.at(t_s)

    def ready(self, t_s: float) -> bool:
        with self._lock:
            latest = self.track.latest_s
        return latest is not None and latest >= t_s

    def latest(self) -> float:
        """The newest obliquity (deg; NaN without one), for a gauge."""
        return self._latest

    def command(self, name: str, /, **params: Any) -> None:
        """``calibrate`` with ``action`` ``start``/``finish``: the mounting calibration on demand."""
        if name != "calibrate":
            raise ValueError(f"pelvis sensor: no command {name!r} (calibrate)")
        self.process.calibrate(str(params.get("action", "")))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)
        self.process.stop()
