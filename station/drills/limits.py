"""Limits: the short maximal-lean calibration that measures the patient's limits of stability.

For each of the four directions (forward, right, backward, left, in that
order or shuffled) the patient first comes back to the centre (``settle_s``
inside ``centre_radius_mm``, or ``return_timeout_s``), then leans as far as
they can that way, without lifting heels or toes, for ``lean_s``. The limit
in that direction is the farthest the COP **held** along it: the largest mean
of its displacement from the centre of the stance over any ``hold_window_s``
(0.5 s) window, so that a momentary swing does not count.

Metrics: ``forward_mm``, ``backward_mm``, ``left_mm``, ``right_mm`` (the
limits, mm), ``limits`` (the four as a dict, for :class:`Limits`),
``directions`` (per direction: ``limit_mm`` and the raw ``peak_mm``). The
score is the mean limit in mm, rounded. :meth:`LimitsDrill.measured_limits`
gives a :class:`Limits` for the other drills.

References
----------
.. [1] Clark S, Rose DJ, Fujimoto K (1997) Generalizability of the limits of
   stability test in the evaluation of dynamic balance among older adults.
   Arch Phys Med Rehabil 78:1078-1084.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from station.drills.base import Drill, DrillEvent
from station.drills.measures import project_mm, unit_vector
from station.drills.params import ParamSpec, choice, number
from station.drills.stability import Limits, direction_name
from station.drills.view import SummaryLine, Target

__all__ = ["LimitsDrill", "held_excursion_mm"]

#: direction (compass deg) -> the Limits field it measures
_FIELDS = {0.0: "forward_mm", 90.0: "right_mm", 180.0: "backward_mm", 270.0: "left_mm"}
#: a limit is never reported below this (Limits' own floor)
_MIN_LIMIT_MM = 5.0


def held_excursion_mm(*, t_s: Any, along_mm: Any, window_s: float) -> float:
    """The largest mean of ``along_mm`` over any window of ``window_s`` s (its samples' plain mean), in mm.

    With fewer samples than one window spans, the mean of all of them.
    """
    t = np.asarray(t_s, dtype=np.float64)
    a = np.asarray(along_mm, dtype=np.float64)
    if t.ndim != 1 or t.size == 0 or a.shape != t.shape:
        raise ValueError("t_s and along_mm must be one-dimensional arrays of the same, non-zero length")
    if not (isinstance(window_s, (int, float)) and window_s > 0):
        raise ValueError(f"window_s must be a positive number of seconds, got {window_s!r}")
    if t[-1] - t[0] < window_s:
        return float(np.mean(a))
    c = np.concatenate(([0.0], np.cumsum(a)))
    best = -math.inf
    j = 0
    for k in range(t.size):
        while t[k] - t[j] > window_s:
            j += 1
        if t[k] - t[0] >= window_s:
            best = max(best, (c[k + 1] - c[j]) / (k + 1 - j))
    return float(best)


class LimitsDrill(Drill):
    name = "limits"
    title = "Limits of stability"
    LEVEL_PARAMS: ParamSpec = {"lean_s": (None, number(1.0, 30.0))}
    PARAMS: ParamSpec = {
        "order": ("fixed", choice("fixed", "random")),
        "hold_window_s": (0.5, number(0.1, 5.0)),
        "centre_radius_mm": (20.0, number(5.0, 100.0)),
        "settle_s": (0.5, number(0.0, 10.0)),
        "return_timeout_s": (5.0, number(0.5, 60.0)),
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._dirs: list[float] = []
        self._next = 0
        self._phase = "return"
        self._phase_t0 = 0.0
        self._settled_since: float | None = None
        self._samples: list[tuple[float, float, float]] = []
        self._results: list[dict[str, Any]] = []

    def _ready_instruction(self) -> str:
        return "Stand still in the middle. You will lean as far as you can each way, keeping your feet flat."

    def _start_round(self, t: float, events: list[DrillEvent]) -> None:
        self._dirs = list(_FIELDS)
        if self.params["order"] == "random":
            self._dirs = [self._dirs[i] for i in self.rng.permutation(len(self._dirs))]
        self._next = 0
        self._results = []
        self._begin_return(t, events)

    def _begin_return(self, t: float, events: list[DrillEvent]) -> None:
        self._phase, self._phase_t0, self._settled_since = "return", t, None
        self._instruct(t, "Come back to the middle and stand still.", events)

    def _on_frame(self, t: float, fz: float, x: float, y: float, events: list[DrillEvent]) -> None:
        p = self.params
        if self._phase == "return":
            near = math.hypot(x - self.centre_ml_mm, y - self.centre_ap_mm) <= p["centre_radius_mm"]
            self._settled_since = (self._settled_since or t) if near else None
            if (self._settled_since is not None and t - self._settled_since >= p["settle_s"]) or (
                    t - self._phase_t0 >= p["return_timeout_s"]):
                self._phase, self._phase_t0, self._samples = "lean", t, [(t, x, y)]
                d = self._dirs[self._next]
                events.append(DrillEvent("target", t, f"Lean {direction_name(d)}."))
                self._instruct(t, f"Lean {direction_name(d)} as far as you can, feet flat, and hold it.", events)
            return
        self._samples.append((t, x, y))
        if t - self._phase_t0 >= p["lean_s"]:
            d = self._dirs[self._next]
            arr = np.asarray(self._samples)
            along, _ = project_mm(cop_ml_mm=arr[:, 1], cop_ap_mm=arr[:, 2], origin_ml_mm=self.centre_ml_mm,
                                  origin_ap_mm=self.centre_ap_mm, direction_deg=d)
            held = held_excursion_mm(t_s=arr[:, 0], along_mm=along, window_s=p["hold_window_s"])
            self._results.append({"direction_deg": d, "direction": direction_name(d),
                                  "limit_mm": max(held, _MIN_LIMIT_MM), "peak_mm": float(np.max(along))})
            self._emit("hit", t, f"{direction_name(d).capitalize()}: {max(held, 0):.0f} mm.", "hit", events)
            self._next += 1
            if self._next >= len(self._dirs):
                self.score = round(np.mean([r["limit_mm"] for r in self._results]))
                self._end_round(t, events, reason="all directions measured")
            else:
                self._begin_return(t, events)

    def _round_result(self, t: float, reason: str) -> dict[str, Any]:
        out: dict[str, Any] = {_FIELDS[r["direction_deg"]]: r["limit_mm"] for r in self._results}
        out["success_pct"] = 100.0 * len(self._results) / len(_FIELDS)
        out["directions"] = list(self._results)
        return out

    def measured_limits(self) -> Limits | None:
        """The limits of the last complete round, or None."""
        for r in reversed(self.round_results):
            if all(f in r for f in _FIELDS.values()):
                return Limits(**{f: float(min(r[f], 500.0)) for f in _FIELDS.values()})
        return None

    def _summary_lines(self, result: Mapping[str, Any]) -> list[SummaryLine]:
        lines = [SummaryLine(f.replace("_mm", "").capitalize(), f"{result[f]:.0f} mm")
                 for f in ("forward_mm", "right_mm", "backward_mm", "left_mm") if f in result]
        return lines + [SummaryLine("Score", str(self.score))]

    def _aggregate(self, rounds: list[dict[str, Any]]) -> dict[str, Any]:
        lim = self.measured_limits()
        out: dict[str, Any] = {"limits": lim.to_dict() if lim else None}
        if lim:
            out.update(lim.to_dict())
        out["directions"] = [d for r in rounds for d in r["directions"]]
        return out

    def _round_duration_s(self) -> float:
        return 4 * self.params["lean_s"]

    def _view_targets(self) -> tuple[Target, ...]:
        if self.state != "running":
            return ()
        if self._phase == "return":
            return (Target(self.centre_ml_mm, self.centre_ap_mm, self.params["centre_radius_mm"], "active"),)
        d = self._dirs[self._next]
        ux, uy = unit_vector(direction_deg=d)
        reach = 0.45 * (self.geometry.ml_mm if ux else self.geometry.ap_mm)  # toward the plate's edge
        progress = min(1.0, ((self._t or 0.0) - self._phase_t0) / self.params["lean_s"])
        return (Target(self.centre_ml_mm + ux * reach, self.centre_ap_mm + uy * reach, 15.0, "active", progress),)
