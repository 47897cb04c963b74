"""Reach: targets in eight directions at a percentage of the patient's own limits of stability.

Each round shows a target in each direction (``directions_deg``, compass
degrees: 0 forward, 90 right), in random order from the injected generator.
Before each target the patient brings the COP back to the centre of the
stance (a centre target, radius ``centre_radius_mm``, held ``settle_s``; after
``return_timeout_s`` the drill goes on anyway), then after a random delay of
``delay_min_s`` to ``delay_max_s`` the target appears at ``distance_pct`` %
of the limit in its direction (:meth:`Limits.limit_mm`), with radius
``radius_mm`` (at most half the target's distance, so that standing at the
centre is never on target). It is hit when the COP stays inside it for ``hold_s``; missed
after ``timeout_s`` from its appearance.

Per target (metrics ``targets``), following the NeuroCom limits-of-stability
conventions (:mod:`station.drills.measures`), from the COP between the
target's appearance and its end:

``reaction_time_s``
    From the appearance to the movement onset (the trough the COP rose from
    toward the target before passing ``onset_mm``).
``movement_velocity_mm_s``
    Mean velocity between 5 % and 95 % of the distance from the onset to the
    primary endpoint.
``endpoint_excursion_pct``
    How far the primary movement got along the target direction, in % of the limit.
``max_excursion_pct``
    The farthest point along the target direction, in % of the limit.
``directional_control_pct``
    (on-axis - off-axis movement) / on-axis movement x 100, from the onset to
    the primary endpoint.
``time_to_reach_s``, ``time_to_hold_s``
    From the appearance to the first entry into the target, and to the end of
    the hold (None when missed).

Score: a hit earns 10 points, up to 5 more for speed (all 5 when the target
is held at the earliest possible moment, none at the time-out) and 2 per hit
in the streak before it (at most 10).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from station.drills.base import Drill, DrillEvent, nanmean
from station.drills.measures import reach_measures, unit_vector
from station.drills.params import ParamSpec, choice, number, numbers
from station.drills.stability import DIRECTIONS, direction_name
from station.drills.view import SummaryLine, Target

__all__ = ["ReachDrill", "REACH_TARGET_KEYS"]

#: per-target metric keys (besides the target's description)
REACH_TARGET_KEYS = ("reaction_time_s", "movement_velocity_mm_s", "endpoint_excursion_pct", "max_excursion_pct",
                     "directional_control_pct", "time_to_reach_s", "time_to_hold_s")


class ReachDrill(Drill):
    name = "reach"
    title = "Reach"
    LEVEL_PARAMS: ParamSpec = {
        "distance_pct": (None, number(10.0, 120.0)),
        "radius_mm": (None, number(5.0, 100.0)),
        "hold_s": (None, number(0.0, 10.0)),
    }
    PARAMS: ParamSpec = {
        "directions_deg": (list(DIRECTIONS), numbers(0.0, 360.0, min_n=1, max_n=16)),
        "order": ("random", choice("random", "fixed")),
        "timeout_s": (6.0, number(1.0, 60.0)),
        "centre_radius_mm": (20.0, number(5.0, 100.0)),
        "settle_s": (0.5, number(0.0, 10.0)),
        "return_timeout_s": (5.0, number(0.5, 60.0)),
        "delay_min_s": (0.5, number(0.0, 10.0)),
        "delay_max_s": (1.5, number(0.0, 10.0)),
        "onset_mm": (10.0, number(1.0, 100.0)),
        "stop_speed_mm_s": (25.0, number(1.0, 500.0)),
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.params["delay_max_s"] < self.params["delay_min_s"]:
            raise ValueError(f"params['delay_max_s'] ({self.params['delay_max_s']}) must not be less than "
                             f"params['delay_min_s'] ({self.params['delay_min_s']})")
        self._round_targets: list[dict[str, Any]] = []
        self._next = 0
        self._phase = "return"
        self._phase_t0 = 0.0
        self._settled_since: float | None = None
        self._delay_until = 0.0
        self._samples: list[tuple[float, float, float]] = []
        self._inside_since: float | None = None
        self._reached_s: float | None = None
        self._done_targets: list[dict[str, Any]] = []

    def _ready_instruction(self) -> str:
        return "Stand still in the middle. Then lean to each target without lifting your heels or toes."

    # -- the round ----------------------------------------------------------------------------------
    def _start_round(self, t: float, events: list[DrillEvent]) -> None:
        p = self.params
        dirs = [float(d) % 360.0 for d in p["directions_deg"]]
        if p["order"] == "random":
            dirs = [dirs[i] for i in self.rng.permutation(len(dirs))]
        self._round_targets = []
        for d in dirs:
            limit = self.limits.limit_mm(d)
            dist = limit * p["distance_pct"] / 100.0
            ux, uy = unit_vector(direction_deg=d)
            self._round_targets.append({
                "direction_deg": d, "direction": direction_name(d), "limit_mm": limit, "distance_mm": dist,
                "distance_pct": p["distance_pct"], "radius_mm": min(p["radius_mm"], 0.5 * dist), "hold_s": p["hold_s"],
                "target_ml_mm": self.centre_ml_mm + ux * dist, "target_ap_mm": self.centre_ap_mm + uy * dist,
                "state": "pending", "hold_progress": 0.0,
            })
        self._done_targets = []
        self._next = 0
        self._begin_return(t, events)

    def _begin_return(self, t: float, events: list[DrillEvent]) -> None:
        self._phase = "return"
        self._phase_t0 = t
        self._settled_since = None
        self._instruct(t, "Come back to the middle and stand still.", events)

    def _on_frame(self, t: float, fz: float, x: float, y: float, events: list[DrillEvent]) -> None:
        p = self.params
        if self._phase == "return":
            near = math.hypot(x - self.centre_ml_mm, y - self.centre_ap_mm) <= p["centre_radius_mm"]
            if near and self._settled_since is None:
                self._settled_since = t
            elif not near:
                self._settled_since = None
            settled = self._settled_since is not None and t - self._settled_since >= p["settle_s"]
            if settled or t - self._phase_t0 >= p["return_timeout_s"]:
                self._phase = "delay"
                self._delay_until = t + float(self.rng.uniform(p["delay_min_s"], p["delay_max_s"]))
                self._instruct(t, "Wait for the next target...", events)
        if self._phase == "delay" and t >= self._delay_until:
            self._show_target(t, x, y, events)
            return
        if self._phase == "target":
            self._track_target(t, x, y, events)

    def _show_target(self, t: float, x: float, y: float, events: list[DrillEvent]) -> None:
        tgt = self._round_targets[self._next]
        tgt["state"] = "active"
        tgt["appear_s"] = t
        self._phase = "target"
        self._samples = [(t, x, y)]
        self._inside_since = None
        self._reached_s = None
        events.append(DrillEvent("target", t, f"Target {tgt['direction']}."))
        self._instruct(t, f"Move the dot into the {tgt['direction']} target and hold it there.", events)

    def _track_target(self, t: float, x: float, y: float, events: list[DrillEvent]) -> None:
        p = self.params
        tgt = self._round_targets[self._next]
        self._samples.append((t, x, y))
        inside = math.hypot(x - tgt["target_ml_mm"], y - tgt["target_ap_mm"]) <= tgt["radius_mm"]
        if inside:
            if self._reached_s is None:
                self._reached_s = t
            if self._inside_since is None:
                self._inside_since = t
            held = t - self._inside_since
            tgt["hold_progress"] = 1.0 if tgt["hold_s"] <= 0 else min(1.0, held / tgt["hold_s"])
            if held >= tgt["hold_s"]:
                self._finish_target(t, hit=True, events=events)
                return
        else:
            self._inside_since = None
            tgt["hold_progress"] = 0.0
        if t - tgt["appear_s"] >= p["timeout_s"]:
            self._finish_target(t, hit=False, events=events)

    def _finish_target(self, t: float, *, hit: bool, events: list[DrillEvent]) -> None:
        p = self.params
        tgt = self._round_targets[self._next]
        arr = np.asarray(self._samples)
        m = reach_measures(t_s=arr[:, 0], cop_ml_mm=arr[:, 1], cop_ap_mm=arr[:, 2], centre_ml_mm=self.centre_ml_mm,
                           centre_ap_mm=self.centre_ap_mm, direction_deg=tgt["direction_deg"],
                           limit_mm=tgt["limit_mm"], onset_mm=min(p["onset_mm"], 0.5 * tgt["distance_mm"]),
                           stop_speed_mm_s=p["stop_speed_mm_s"])
        appear = tgt["appear_s"]
        tgt["state"] = "hit" if hit else "missed"
        tgt["hold_progress"] = 1.0 if hit else tgt["hold_progress"]
        record = {k: v for k, v in tgt.items() if k not in ("state", "hold_progress")}
        record.update(m)
        record["hit"] = hit
        record["time_to_reach_s"] = None if self._reached_s is None else self._reached_s - appear
        record["time_to_hold_s"] = t - appear if hit else None
        self._done_targets.append(record)
        if hit:
            span = max(p["timeout_s"] - tgt["hold_s"], 1e-9)
            speed = 5.0 * max(0.0, 1.0 - (t - appear - tgt["hold_s"]) / span)
            self._hit(t, f"You reached the {tgt['direction']} target!", 10 + round(speed) + 2 * min(self.streak, 5),
                      events)
        else:
            self._miss(t, f"Missed the {tgt['direction']} target.", events)
        self._next += 1
        if self._next >= len(self._round_targets):
            self._end_round(t, events, reason="all targets shown")
        else:
            self._begin_return(t, events)

    def _round_result(self, t: float, reason: str) -> dict[str, Any]:
        done = self._done_targets
        hits = sum(1 for d in done if d["hit"])
        out: dict[str, Any] = {
            "targets_shown": len(done), "hits": hits, "misses": len(done) - hits,
            "success_pct": 100.0 * hits / len(done) if done else math.nan,
        }
        for k in REACH_TARGET_KEYS:
            out[k] = nanmean([d[k] for d in done if d[k] is not None])
        out["targets"] = list(done)
        return out

    def _summary_lines(self, result: Mapping[str, Any]) -> list[SummaryLine]:
        def fmt(v: Any, unit: str, digits: int = 0) -> str:
            return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f} {unit}"
        return [
            SummaryLine("Targets hit", f"{result['hits']} of {result['targets_shown']}",
                        result["targets_shown"] > 0 and result["hits"] >= 0.8 * result["targets_shown"]),
            SummaryLine("Reaction time", fmt(result["reaction_time_s"], "s", 2)),
            SummaryLine("Directional control", fmt(result["directional_control_pct"], "%")),
            SummaryLine("Maximum reach", fmt(result["max_excursion_pct"], "% of your limit")),
            SummaryLine("Score", str(self.score)),
        ]

    def _aggregate(self, rounds: list[dict[str, Any]]) -> dict[str, Any]:
        targets = [d for r in rounds for d in r["targets"]]
        hits = sum(1 for d in targets if d["hit"])
        out: dict[str, Any] = {"targets_shown": len(targets), "hits": hits, "misses": len(targets) - hits,
                               "success_pct": 100.0 * hits / len(targets) if targets else math.nan}
        for k in REACH_TARGET_KEYS:
            out[k] = nanmean([d[k] for d in targets if d[k] is not None])
        out["limits"] = self.limits.to_dict()
        out["targets"] = targets
        return out

    # -- the view -----------------------------------------------------------------------------------
    def _round_duration_s(self) -> float:
        n = len(self._round_targets) or len(self.params["directions_deg"])
        return n * self.params["timeout_s"]

    def _view_targets(self) -> tuple[Target, ...]:
        if self.state not in ("running", "round_summary", "done"):
            return ()
        out = []
        if self.state == "running" and self._phase == "return":
            out.append(Target(self.centre_ml_mm, self.centre_ap_mm, self.params["centre_radius_mm"], "active"))
        for tgt in self._round_targets:
            out.append(Target(tgt["target_ml_mm"], tgt["target_ap_mm"], tgt["radius_mm"], tgt["state"],
                              float(tgt["hold_progress"])))
        return tuple(out)
