"""The pelvis sensor as a live source: read, fuse and time-align the obliquity with the plate's frames.

Three pieces, from the sensor to the recording's ``pelvis_obliquity_deg`` column:

* :class:`PelvisStream` runs the driver (:class:`~hardware.imu.driver.ICM42688`)
  and the orientation filter (:class:`~hardware.imu.orientation.PelvisObliquity`)
  one step at a time. It never raises: a fault (unplugged, silent) is recorded
  with its message, the sensor is closed, and it is opened again every
  ``retry_s``; meanwhile there are no samples and the plate goes on alone.
* :class:`PelvisProcess` runs a stream in its own OS process (like the plate's
  acquisition, :mod:`station.live.acquisition`): the driver polls the FIFO every
  5 ms, which must not share an interpreter (a GIL) with the HX711 clocking,
  whose clock-high phases must stay under 60 us. Samples come back on a queue,
  time-stamped with ``time.monotonic()``: system-wide on Linux, the clock the
  plate's frames carry.
* :class:`PelvisTrack` keeps the recent samples and gives the obliquity at a
  plate frame's time: the linear interpolation of the two samples around it
  when both exist and are at most ``max_gap_s`` apart, NaN otherwise (an
  empty cell in the recording: the scoring never bridges a gap).

The mounting calibration (:meth:`PelvisObliquity.finish_calibration`: the
gyroscope's bias and the pelvis's axes) happens by itself the first time the
patient stands still on both feet for 2 s after the sensor comes up: the
quiet stance on the plate before the test. It is kept for the session (a
sensor that was unplugged is calibrated again: it may sit differently).
``calibrate("start")`` / ``calibrate("finish")`` redo it on demand. Before the
first calibration the obliquity is NaN (no level is made up). Each trial's
score then takes its own two-foot baseline as the level (station.protocols.pelvis),
so the calibration only has to fix the axes, not the zero.
"""

from __future__ import annotations

import bisect
import importlib
import math
import multiprocessing as mp
import os
import queue
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from hardware.imu.driver import ICM42688, ImuFault
from hardware.imu.orientation import PelvisObliquity

__all__ = ["PelvisProcess", "PelvisSample", "PelvisSpec", "PelvisStream", "PelvisTrack"]

#: Stillness for the automatic mounting calibration: the gyroscope below this (dps) ...
STILL_RATE_DPS = 3.0
#: ... and the accelerometer within this of 1 g.
STILL_ACCEL_G = 0.05


@dataclass(frozen=True)
class PelvisSample:
    """One fused sample: host time (s, ``time.monotonic``), obliquity (deg, NaN before the calibration)."""

    t_s: float
    obliquity_deg: float


@dataclass(frozen=True)
class PelvisSpec:
    """How to build the sensor in a child process (picklable).

    ``driver``: keyword arguments of :class:`~hardware.imu.driver.ICM42688`
    (``bus``, ``address``, ``odr_hz``...); ``right_axis``: the sensor axis to
    the patient's right; ``setup``: ``"module:function"`` called in the child
    first (tests install the fake ``smbus2`` with it).
    """

    driver: dict[str, Any] = field(default_factory=dict)
    right_axis: tuple[float, float, float] = (1.0, 0.0, 0.0)
    retry_s: float = 1.0
    setup: str | None = None


class PelvisStream:
    """The sensor, step by step, with faults recorded instead of raised.

    Parameters
    ----------
    make_driver : callable
        Returns a fresh, unopened :class:`~hardware.imu.driver.ICM42688` (called again after a fault).
    clock : object
        ``monotonic()`` and ``sleep(s)``: the time of retries (the driver has its own).
    right_axis : tuple of 3
        The sensor axis pointing to the patient's right.
    retry_s : float
        After a fault, the sensor is opened again this often.
    still_s : float
        Until it is calibrated, the first this many seconds of stillness (the
        patient standing on both feet) calibrate the mounting by themselves.
    """

    def __init__(self, *, make_driver: Any, clock: Any = time, right_axis: tuple[float, float, float] = (1.0, 0.0, 0.0),
                 retry_s: float = 1.0, still_s: float = 2.0) -> None:
        self.make_driver = make_driver
        self.clock = clock
        self.right_axis = right_axis
        self.retry_s = float(retry_s)
        self.still_s = float(still_s)
        self._still_since: float | None = None
        self.driver: ICM42688 | None = None
        self.orientation: PelvisObliquity | None = None
        self.fault: str | None = None
        self.faults = 0
        self._retry_at = 0.0
        self._calibrating = False

    @property
    def ok(self) -> bool:
        return self.driver is not None and self.fault is None

    @property
    def calibrated(self) -> bool:
        return self.orientation is not None and self.orientation.calibration is not None

    def calibrate(self, action: str) -> None:
        """``"start"``: collect the two-foot stance; ``"finish"``: set the mounting from it (ignored when no data)."""
        if action not in ("start", "finish"):
            raise ValueError(f"calibrate: 'start' or 'finish', got {action!r}")
        if self.orientation is None:
            return
        if action == "start":
            self._still_since = None
            self.orientation.start_calibration()
            self._calibrating = True
        elif self._calibrating:
            self._calibrating = False
            try:
                self.orientation.finish_calibration()
            except ValueError as exc:
                self.fault = f"pelvis sensor: calibration failed: {exc}"

    def _open(self) -> None:
        driver = self.make_driver()
        try:
            driver.open()
        except ImuFault as exc:
            self._failed(str(exc), driver)
            return
        self.driver = driver
        self.orientation = PelvisObliquity(sample_rate_hz=driver.odr_hz, gyro_range_dps=driver.gyro_fs_dps,
                                           right_axis=self.right_axis)
        self.fault = None

    def _failed(self, message: str, driver: ICM42688 | None) -> None:
        self.fault = message
        self.faults += 1
        if driver is not None:
            driver.close()
        self.driver = None
        self.orientation = None  # a sensor put back on may sit differently: calibrate again
        self._calibrating = False
        self._still_since = None
        self._retry_at = self.clock.monotonic() + self.retry_s

    def step(self, *, timeout_s: float = 0.05) -> list[PelvisSample]:
        """Read what the sensor has (waiting at most ``timeout_s``); never raises, never blocks longer."""
        if self.driver is None:
            wait = self._retry_at - self.clock.monotonic()
            if wait > 1e-6:
                self.clock.sleep(min(wait, max(1e-3, timeout_s)))
                return []
            self._open()
            if self.driver is None:
                return []
        try:
            samples = self.driver.read(timeout_s=timeout_s)
        except ImuFault as exc:
            self._failed(str(exc), self.driver)
            return []
        out = []
        assert self.orientation is not None
        for s in samples:
            if not self._calibrating and self.orientation.calibration is None:
                self._auto_calibrate(s)
            value = self.orientation.update(t_s=s.t_s, gyro_dps=s.gyro_dps, accel_g=s.accel_g)
            out.append(PelvisSample(t_s=s.t_s, obliquity_deg=math.nan if value is None else float(value)))
        return out

    def _auto_calibrate(self, s: Any) -> None:
        """The first :attr:`still_s` of stillness (two-foot stance) calibrates the mounting."""
        assert self.orientation is not None
        still = (math.hypot(*s.gyro_dps) < STILL_RATE_DPS
                 and abs(math.hypot(*s.accel_g) - 1.0) < STILL_ACCEL_G)
        if not still:
            self._still_since = None
            self.orientation.cancel_calibration()
            return
        if self._still_since is None:
            self._still_since = s.t_s
            self.orientation.start_calibration()
        elif s.t_s - self._still_since >= self.still_s:
            self.orientation.finish_calibration()
            self._still_since = None

    def close(self) -> None:
        if self.driver is not None:
            self.driver.close()
            self.driver = None


class PelvisTrack:
    """Recent samples, and the obliquity at any time among them (for the plate's frames).

    Parameters
    ----------
    max_gap_s : float
        Two samples further apart than this are not interpolated between (0.05 s: 5 samples at 100 Hz).
    keep_s : float
        How much history is kept (s).
    """

    def __init__(self, *, max_gap_s: float = 0.05, keep_s: float = 10.0) -> None:
        self.max_gap_s = float(max_gap_s)
        self.keep_s = float(keep_s)
        self._t: deque[float] = deque()
        self._v: deque[float] = deque()

    def add(self, samples: list[PelvisSample]) -> None:
        for s in samples:
            if self._t and s.t_s <= self._t[-1]:
                continue
            self._t.append(s.t_s)
            self._v.append(s.obliquity_deg)
        while self._t and self._t[-1] - self._t[0] > self.keep_s:
            self._t.popleft()
            self._v.popleft()

    @property
    def latest_s(self) -> float | None:
        return self._t[-1] if self._t else None

    def at(self, t_s: float) -> float:
        """The obliquity at ``t_s`` (deg), NaN when no two close samples surround it."""
        t = self._t
        i = bisect.bisect_left(t, t_s)
        if i < len(t) and t[i] == t_s:
            return self._v[i]
        if i == 0 or i == len(t):
            return math.nan
        t0, t1 = t[i - 1], t[i]
        if t1 - t0 > self.max_gap_s:
            return math.nan
        w = (t_s - t0) / (t1 - t0)
        return self._v[i - 1] * (1.0 - w) + self._v[i] * w


def _child(spec: PelvisSpec, out_q: Any, cmd_q: Any, stop: Any, parent_pid: int) -> None:
    if spec.setup:
        module_name, _, func_name = spec.setup.partition(":")
        getattr(importlib.import_module(module_name), func_name)()
    stream = PelvisStream(make_driver=lambda: ICM42688(**spec.driver), right_axis=spec.right_axis,
                          retry_s=spec.retry_s)
    last_fault = None
    out_q.put(("ready", {"pid": os.getpid()}))
    try:
        while not stop.is_set() and os.getppid() == parent_pid:
            try:
                while True:
                    stream.calibrate(cmd_q.get_nowait())
            except queue.Empty:
                pass
            except ValueError as exc:
                out_q.put(("rejected", str(exc)))
            samples = stream.step(timeout_s=0.05)
            if samples:
                out_q.put(("samples", [(s.t_s, s.obliquity_deg) for s in samples]))
            if stream.fault != last_fault:
                last_fault = stream.fault
                out_q.put(("fault", stream.fault))  # None: working again
    finally:
        stream.close()
        out_q.put(("end",))


class PelvisProcess:
    """The pelvis sensor in its own process; the parent collects its samples into a :class:`PelvisTrack`.

    ``start()`` waits for the child to be ready (not for the sensor: a
    missing sensor is a fault message, not a failed start); ``poll()`` moves
    what arrived into :attr:`track` and returns the samples; ``fault`` is the
    last fault message (None while working); ``calibrate("start"|"finish")``
    forwards the mounting calibration.
    """

    def __init__(self, spec: PelvisSpec, *, start_method: str = "spawn", max_gap_s: float = 0.05) -> None:
        self.spec = spec
        self._ctx = mp.get_context(start_method)
        self._out: Any = self._ctx.Queue()
        self._cmd: Any = self._ctx.Queue()
        self._stop = self._ctx.Event()
        self._proc: Any = None
        self.track = PelvisTrack(max_gap_s=max_gap_s)
        self.fault: str | None = None

    def start(self, *, timeout_s: float = 20.0) -> None:
        self._proc = self._ctx.Process(target=_child, args=(self.spec, self._out, self._cmd, self._stop, os.getpid()),
                                       daemon=True, name="pelvis-sensor")
        self._proc.start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                msg = self._out.get(timeout=0.1)
            except queue.Empty:
                if not self._proc.is_alive():
                    break
                continue
            if msg[0] == "ready":
                return
        self.stop()
        raise RuntimeError("the pelvis sensor's process did not start")

    def calibrate(self, action: str) -> None:
        self._cmd.put(action)

    def poll(self, *, timeout_s: float = 0.0) -> list[PelvisSample]:
        out: list[PelvisSample] = []
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                msg = self._out.get(timeout=max(0.0, deadline - time.monotonic())) if timeout_s > 0 and not out \
                    else self._out.get_nowait()
            except queue.Empty:
                break
            if msg[0] == "samples":
                out += [PelvisSample(t_s=t, obliquity_deg=v) for t, v in msg[1]]
            elif msg[0] == "fault":
                self.fault = msg[1]
        self.track.add(out)
        return out

    def stop(self, *, timeout_s: float = 2.0) -> None:
        if self._proc is None:
            return
        self._stop.set()
        self._proc.join(timeout_s)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(1.0)
        self._proc = None

    def __enter__(self) -> PelvisProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
