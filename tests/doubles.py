"""Test doubles for the station's seams."""

from __future__ import annotations

import time
from typing import Any

from station.core.frames import RawFrame


class ListFeed:
    """A frame feed (what :class:`station.live.pipeline.LiveStation` reads) that hands out given frames."""

    def __init__(self, frames: list[RawFrame] | None = None, *, kind: str = "simulated",
                 description: str = "simulated plate (test)", nominal_rate_hz: float = 80.0) -> None:
        self.pending = list(frames or [])
        self.info: dict[str, Any] = {"kind": kind, "description": description, "nominal_rate_hz": nominal_rate_hz}
        self.commands: list[tuple[str, dict[str, Any]]] = []
        self.ended = False
        self.error = ""
        self.alive = True
        self.rate = nominal_rate_hz

    def frames(self, *, timeout_s: float = 0.1, max_frames: int = 10_000) -> list[RawFrame]:
        if not self.pending:
            time.sleep(timeout_s)  # as the real queue waits: a pump on an empty feed must not spin
        out, self.pending = self.pending[:max_frames], self.pending[max_frames:]
        return out

    def command(self, name: str, /, **params: Any) -> None:
        self.commands.append((name, params))

    def rate_hz(self) -> float | None:
        return self.rate


class SimFeed:
    """A frame feed from an in-process simulated plate, run faster than real time.

    Frames become available as the wall clock advances, ``speed`` times faster
    than real time (so a 40 s trial takes 2 s at ``speed=20``), and commands go
    straight to the simulated person, as they would through the acquisition
    process.
    """

    def __init__(self, plate: Any, *, speed: float = 20.0) -> None:
        self.plate = plate
        self.speed = float(speed)
        self.info: dict[str, Any] = {"kind": plate.kind, "description": plate.describe(),
                                     "nominal_rate_hz": plate.nominal_rate_hz}
        self.ended = False
        self.error = ""
        self.alive = True
        self.commands: list[tuple[str, dict[str, Any]]] = []
        self._t0 = time.monotonic()
        self._delivered_s = 0.0

    def frames(self, *, timeout_s: float = 0.1, max_frames: int = 10_000) -> list[RawFrame]:
        time.sleep(min(timeout_s, 0.01))
        due_s = (time.monotonic() - self._t0) * self.speed
        out: list[RawFrame] = []
        while self._delivered_s < due_s and len(out) < max_frames:
            frame = self.plate.read()
            if frame is None:
                self.ended = True
                break
            out.append(frame)
            self._delivered_s += 1.0 / self.plate.nominal_rate_hz
        return out

    def command(self, name: str, /, **params: Any) -> None:
        self.commands.append((name, params))
        self.plate.command(name, **params)

    def rate_hz(self) -> float | None:
        return self.plate.nominal_rate_hz * self.speed
