"""Scripted patients for the drill tests: ForceFrame-like frames from straight-line COP paths."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from calibration.model import simulator_calibration
from hardware.sim.plate import SimulatedPlate
from station.core.geometry import PlateGeometry
from station.drills import make_drill
from station.drills.autoplay import AutoPlayer
from station.drills.base import Drill, DrillEvent
from station.signal.forces import ForcePipeline

GEOMETRY = PlateGeometry()
BODY_N = 700.0


@dataclass(frozen=True)
class Frame:
    t_s: float
    fz_n: float
    cop_ml_mm: float
    cop_ap_mm: float


class Path:
    """A COP path made of rests and straight moves at constant speed, planned as the drill goes."""

    def __init__(self, x: float = 0.0, y: float = 0.0) -> None:
        self.segments: list[tuple[float, float, tuple[float, float], tuple[float, float]]] = []
        self.start = (x, y)

    def end_point(self) -> tuple[float, float]:
        return self.segments[-1][3] if self.segments else self.start

    def end_time(self) -> float:
        return self.segments[-1][1] if self.segments else -math.inf

    def move(self, t0: float, to: tuple[float, float], speed_mm_s: float) -> float:
        """Move straight from where the path is at ``t0`` to ``to``; return when it arrives."""
        frm = self.at(t0)
        self.segments = [s for s in self.segments if s[0] < t0]
        if self.segments and self.segments[-1][1] > t0:  # cut a move in progress
            a, _, p0, _ = self.segments[-1]
            self.segments[-1] = (a, t0, p0, frm)
        d = math.hypot(to[0] - frm[0], to[1] - frm[1])
        t1 = t0 + d / speed_mm_s
        self.segments.append((t0, t1, frm, to))
        return t1

    def jump(self, t0: float, to: tuple[float, float]) -> None:
        self.segments = [s for s in self.segments if s[0] < t0]
        self.segments.append((t0, t0, to, to))

    def at(self, t: float) -> tuple[float, float]:
        pos = self.start
        for t0, t1, p0, p1 in self.segments:
            if t < t0:
                break
            if t >= t1:
                pos = p1
            else:
                f = (t - t0) / (t1 - t0)
                pos = (p0[0] + f * (p1[0] - p0[0]), p0[1] + f * (p1[1] - p0[1]))
        return pos


def run(drill: Drill, position: Callable[[float], tuple[float, float]], *, fs_hz: float = 100.0,
        max_s: float = 300.0, on_events: Callable[[list[DrillEvent], float], None] | None = None,
        fz: Callable[[float], float] | None = None) -> list[DrillEvent]:
    """Feed ``drill`` frames at ``fs_hz`` (t = k / fs) until it is finished; return all its events."""
    out: list[DrillEvent] = []
    for k in range(int(max_s * fs_hz)):
        t = k / fs_hz
        x, y = position(t)
        ev = drill.update(Frame(t, BODY_N if fz is None else fz(t), x, y))
        out += ev
        if on_events is not None and ev:
            on_events(ev, t)
        if drill.finished:
            break
    return out


def snap(t: float, fs_hz: float = 100.0) -> float:
    """``t`` on the frame grid."""
    return round(t * fs_hz) / fs_hz


def play_simulated(name: str, skill: str, *, seed: int, params: dict | None = None, stance_side: str | None = None,
                   max_s: float = 300.0) -> Drill:
    """Play a drill end to end: the simulated plate, the force pipeline, the AutoPlayer."""
    plate = SimulatedPlate(realtime=False, seed=seed, rate_hz=80.0, geometry=GEOMETRY)
    pipeline = ForcePipeline(simulator_calibration(), GEOMETRY)
    drill = make_drill(name, geometry=GEOMETRY, rng=np.random.default_rng(seed), params=params,
                       stance_side=stance_side)
    player = AutoPlayer(skill=skill, rng=np.random.default_rng(seed + 1000), geometry=GEOMETRY)
    for raw in plate:
        frame = pipeline.process(raw)
        drill.update(frame)
        if drill.finished or frame.t_s > max_s:
            break
        for command, p in player.commands(drill.view(), t_s=frame.t_s, cop_ml_mm=frame.cop_ml_mm,
                                          cop_ap_mm=frame.cop_ap_mm):
            plate.command(command, **p)
    return drill
