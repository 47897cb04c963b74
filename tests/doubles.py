"""Test doubles for the station's seams."""

from __future__ import annotations

import time
from typing import Any

from hardware.frames import RawFrame


class ListFeed:
    """A frame feed (what :class:`station.live.LiveStation` reads) that hands out given frames."""

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
