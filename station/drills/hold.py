"""Single-leg hold: keep the COP inside a zone over the stance footprint for a set time.

The zone is a rectangle centred on the stance footprint (x = -+feet_ml/2 for
the left/right foot; y = the centre of the stance measured before the round),
``half_width_mm`` medio-laterally and ``half_height_mm`` antero-posteriorly.
Each round starts with the instruction to stand on the ``stance_side`` leg;
the hold clock starts when the COP first enters the zone (or after
``start_timeout_s`` anyway) and runs for ``hold_s``.

Balance is lost (a gentle ``lost_balance`` cue, once per episode) when the
COP goes more than ``lost_margin_mm`` beyond the zone, or when Fz drops by
more than ``fz_drop_pct`` % of the weight measured before the round (the
lifted foot put down off the plate, or a hand on a support).

Per round: ``hold_s``; ``time_in_zone_s`` (sample and hold) and
``time_in_zone_pct`` (of ``hold_s``); ``zone_exits``; ``longest_in_zone_s``;
``lost_balance_count``; ``time_to_start_s`` (from the instruction to the
first entry in the zone, None when the clock started by time-out); the sway
during the hold: ``sway_ml_rms_mm``, ``sway_ap_rms_mm`` (about the mean),
``mean_speed_mm_s`` (path over time), ``mean_offset_ml_mm`` (mean COP minus
the zone centre, positive lateral: away from the other foot). A round's
success is its ``time_in_zone_pct``. Each ``hit_every_s`` (5 s) in the zone
at a stretch is a hit (5 points, plus 1 per hit before it in the streak, at most 5);
leaving the zone ends the streak.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from station.core.sides import SIDES
from station.drills.base import MAX_ROUNDS, Drill, DrillEvent, nanmean
from station.drills.measures import mean_speed_mm_s, rms_about_mean_mm, time_in_zone_s
from station.drills.params import ParamSpec, integer, number
from station.drills.view import SummaryLine, Zone

__all__ = ["SingleLegHoldDrill"]

_KEYS = ("time_in_zone_s", "time_in_zone_pct", "zone_exits", "longest_in_zone_s", "lost_balance_count",
         "sway_ml_rms_mm", "sway_ap_rms_mm", "mean_speed_mm_s")


class SingleLegHoldDrill(Drill):
    name = "single-leg-hold"
    title = "Single-leg hold"
    LEVEL_PARAMS: ParamSpec = {
        "half_width_mm": (None, number(3.0, 150.0)),
        "half_height_mm": (None, number(3.0, 150.0)),
        "hold_s": (None, number(1.0, 600.0)),
    }
    PARAMS: ParamSpec = {
        "rounds": (3, integer(1, MAX_ROUNDS)),
        "start_timeout_s": (10.0, number(1.0, 120.0)),
        "lost_margin_mm": (30.0, number(0.0, 300.0)),
        "fz_drop_pct": (15.0, number(1.0, 90.0)),
        "hit_every_s": (5.0, number(0.5, 600.0)),
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._phase = "lift"
        self._hold_t0 = 0.0
        self._samples: list[tuple[float, float, float]] = []
        self._inside: bool = False
        self._inside_since: float | None = None
        self._hits_in_stretch = 0
        self._exits = 0
        self._longest = 0.0
        self._lost = 0
        self._lost_active = False
        self._fz_ref = math.nan
        self._fz_ready: list[float] = []
        self._started_by_timeout = False

    def _check_side(self) -> None:
        if self.stance_side not in SIDES:
            raise ValueError(f"stance_side must be 'left' or 'right' for the single-leg hold, got {self.stance_side!r}")

    @property
    def zone_centre_mm(self) -> tuple[float, float]:
        g = self.geometry
        x = g.left_foot_x_mm if self.stance_side == "left" else g.right_foot_x_mm
        return x, self.centre_ap_mm

    def _ready_instruction(self) -> str:
        return "Stand still on both feet."

    def update(self, frame: Any, pelvis_deg: float | None = None) -> list[DrillEvent]:
        if self.state == "ready" and math.isfinite(float(frame.fz_n)):
            self._fz_ready.append(float(frame.fz_n))
        elif self.state == "waiting":
            self._fz_ready = []
        return super().update(frame, pelvis_deg)

    # -- the round ----------------------------------------------------------------------------------
    def _start_round(self, t: float, events: list[DrillEvent]) -> None:
        self._fz_ref = float(np.median(self._fz_ready)) if self._fz_ready else math.nan
        self._fz_ready = []
        self._phase = "lift"
        self._samples = []
        self._inside, self._inside_since, self._hits_in_stretch = False, None, 0
        self._exits, self._longest, self._lost, self._lost_active = 0, 0.0, 0, False
        self._started_by_timeout = False
        other = "right" if self.stance_side == "left" else "left"
        self._instruct(t, f"Lift your {other} foot and keep the dot in the box over your {self.stance_side} foot.",
                       events)

    def _zone_inside(self, x: float, y: float) -> tuple[bool, float]:
        zx, zy = self.zone_centre_mm
        p = self.params
        dx, dy = abs(x - zx) - p["half_width_mm"], abs(y - zy) - p["half_height_mm"]
        return dx <= 0 and dy <= 0, max(dx, dy)

    def _on_frame(self, t: float, fz: float, x: float, y: float, events: list[DrillEvent]) -> None:
        p = self.params
        inside, beyond = self._zone_inside(x, y)
        if self._phase == "lift":
            if inside or t - self._round_t0 >= p["start_timeout_s"]:
                self._phase, self._hold_t0 = "hold", t
                self._started_by_timeout = not inside
                self._inside = inside
                self._inside_since = t if inside else None
                self._instruct(t, f"Hold it! {round(p['hold_s'])} seconds.", events)
            else:
                return
        if t - self._hold_t0 >= p["hold_s"]:
            self._end_round(t, events, reason="hold time reached")
            return
        self._samples.append((t, x, y))
        if inside and not self._inside:
            self._inside_since, self._hits_in_stretch = t, 0
        elif not inside and self._inside:
            self._exits += 1
            self.streak = 0
            if self._inside_since is not None:
                self._longest = max(self._longest, t - self._inside_since)
            self._inside_since = None
        self._inside = inside
        if inside and self._inside_since is not None:
            n = int((t - self._inside_since) // p["hit_every_s"])
            if n > self._hits_in_stretch:
                self._hits_in_stretch = n
                self._hit(t, f"{t - self._inside_since:.0f} s steady!", 5 + min(self.streak, 5), events)
        dropped = math.isfinite(self._fz_ref) and fz < (1 - p["fz_drop_pct"] / 100.0) * self._fz_ref
        lost = beyond > p["lost_margin_mm"] or dropped
        if lost and not self._lost_active:
            self._lost += 1
            self._emit("lost_balance", t, "Steady... find your balance again.", "lost_balance", events)
        self._lost_active = lost if lost else (self._lost_active and not inside)

    def _on_empty(self, t: float, events: list[DrillEvent]) -> None:
        if self._phase == "hold" and not self._lost_active:
            self._lost += 1
            self._lost_active = True
            self._emit("lost_balance", t, "Steady... find your balance again.", "lost_balance", events)

    def _round_result(self, t: float, reason: str) -> dict[str, Any]:
        p = self.params
        zx, zy = self.zone_centre_mm
        out: dict[str, Any] = {"stance_side": self.stance_side, "hold_s": p["hold_s"],
                               "half_width_mm": p["half_width_mm"], "half_height_mm": p["half_height_mm"],
                               "zone_ml_mm": zx, "zone_ap_mm": zy}
        if self._inside and self._inside_since is not None:
            self._longest = max(self._longest, min(t, self._hold_t0 + p["hold_s"]) - self._inside_since)
        end_s = self._hold_t0 + p["hold_s"]
        if self._phase == "hold" and self._samples:
            arr = np.asarray(self._samples)
            ts, xs, ys = arr[:, 0], arr[:, 1], arr[:, 2]
            in_zone = time_in_zone_s(t_s=ts, cop_ml_mm=xs, cop_ap_mm=ys, zone_ml_mm=zx, zone_ap_mm=zy,
                                     half_width_mm=p["half_width_mm"], half_height_mm=p["half_height_mm"],
                                     end_s=max(min(t, end_s), float(ts[-1])))
            lateral = -1.0 if self.stance_side == "left" else 1.0
            out.update({
                "time_in_zone_s": in_zone, "time_in_zone_pct": 100.0 * in_zone / p["hold_s"],
                "sway_ml_rms_mm": rms_about_mean_mm(cop_mm=xs), "sway_ap_rms_mm": rms_about_mean_mm(cop_mm=ys),
                "mean_speed_mm_s": mean_speed_mm_s(t_s=ts, cop_ml_mm=xs, cop_ap_mm=ys) if ts.size > 1 else math.nan,
                "mean_offset_ml_mm": lateral * float(np.mean(xs) - zx),
            })
        else:
            out.update({"time_in_zone_s": 0.0, "time_in_zone_pct": 0.0, "sway_ml_rms_mm": math.nan,
                        "sway_ap_rms_mm": math.nan, "mean_speed_mm_s": math.nan, "mean_offset_ml_mm": math.nan})
        out.update({"zone_exits": self._exits, "longest_in_zone_s": self._longest,
                    "lost_balance_count": self._lost,
                    "time_to_start_s": None if self._phase != "hold" or self._started_by_timeout
                    else self._hold_t0 - self._round_t0})
        out["success_pct"] = out["time_in_zone_pct"]
        self.score += int(round(out["time_in_zone_pct"] / 10.0))
        return out

    def _summary_lines(self, result: Mapping[str, Any]) -> list[SummaryLine]:
        pct = result["time_in_zone_pct"]
        return [
            SummaryLine("Time in the box", f"{result['time_in_zone_s']:.0f} s of {round(result['hold_s'])} s",
                        pct >= 80),
            SummaryLine("Left the box", f"{result['zone_exits']} times", result["zone_exits"] == 0),
            SummaryLine("Score", str(self.score)),
        ]

    def _aggregate(self, rounds: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {k: nanmean([r.get(k, math.nan) for r in rounds]) for k in _KEYS}
        out["time_in_zone_s"] = float(sum(r["time_in_zone_s"] for r in rounds))
        out["zone_exits"] = int(sum(r["zone_exits"] for r in rounds))
        out["lost_balance_count"] = int(sum(r["lost_balance_count"] for r in rounds))
        out["longest_in_zone_s"] = max((r["longest_in_zone_s"] for r in rounds), default=0.0)
        return out

    # -- the view -----------------------------------------------------------------------------------
    def _round_duration_s(self) -> float:
        return float(self.params["hold_s"])

    def _view_zone(self) -> Zone | None:
        if self.state not in ("ready", "running"):
            return None
        zx, zy = self.zone_centre_mm
        return Zone(zx, zy, self.params["half_width_mm"], self.params["half_height_mm"],
                    self._inside if self.state == "running" else False)
