"""Symmetry: hold a target weight split between the feet, shown as two bars.

The share of body weight on the left foot is the lever rule of DESIGN.md
section 3, ``100 (feet_ml/2 - x) / feet_ml`` (:meth:`PlateGeometry.left_share_pct`).
A round is a sequence of target splits (``targets_left_pct``), each held for
``segment_s``: by default 50/50, then ``shift_pct`` more onto the affected
leg (``stance_side``; e.g. 60/40 onto the left leg is a left share of 60 %);
without a side, 50/50 then each side in turn.

Per segment (metrics ``segments``): ``target_left_pct``, ``mean_left_pct``,
``mean_error_pct`` (signed, share minus target), ``mean_abs_error_pct``,
``rms_error_pct``, ``time_within_tolerance_s`` (sample and hold, within
``tolerance_pct`` of the target), ``time_within_tolerance_pct`` (of
``segment_s``), ``time_to_within_s`` (from the segment's start to the first
sample within tolerance, None if never), ``error_trace_pct`` (the mean
absolute error over each second of the segment: the error over time), ``hit``.

A segment is a hit when the patient stays within tolerance for ``hit_hold_s``
at a stretch (a hit cue at that moment: 10 points, plus 2 per hit before it in
the streak, at most 10). The segment then scores 1 point per 10 % of time within
tolerance. A round's success is its share of segments with at least 50 % of the time
within tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from station.drills.base import Drill, DrillEvent, nanmean
from station.drills.measures import time_within_tolerance_s
from station.drills.params import ParamSpec, number, numbers, optional
from station.drills.view import ShareBars, SummaryLine

__all__ = ["SymmetryDrill"]


class SymmetryDrill(Drill):
    name = "symmetry"
    title = "Weight shift"
    LEVEL_PARAMS: ParamSpec = {
        "shift_pct": (None, number(0.0, 45.0)),
        "tolerance_pct": (None, number(0.5, 30.0)),
        "segment_s": (None, number(2.0, 300.0)),
    }
    PARAMS: ParamSpec = {
        "targets_left_pct": (None, optional(numbers(5.0, 95.0, min_n=1, max_n=20))),
        "hit_hold_s": (2.0, number(0.1, 60.0)),
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._seg = 0
        self._seg_t0 = 0.0
        self._samples: list[tuple[float, float]] = []
        self._within_since: float | None = None
        self._seg_hit = False
        self._segments: list[dict[str, Any]] = []
        self._share = 50.0

    def targets(self) -> list[float]:
        """The target left shares of a round, in %."""
        p = self.params
        if p["targets_left_pct"] is not None:
            return list(p["targets_left_pct"])
        s = p["shift_pct"]
        if self.stance_side == "left":
            return [50.0, 50.0 + s]
        if self.stance_side == "right":
            return [50.0, 50.0 - s]
        return [50.0, 50.0 + s, 50.0 - s]

    def _ready_instruction(self) -> str:
        return "Stand still, one foot on each footprint."

    def _start_round(self, t: float, events: list[DrillEvent]) -> None:
        self._segments = []
        self._begin_segment(0, t, events)

    def _begin_segment(self, i: int, t: float, events: list[DrillEvent]) -> None:
        self._seg, self._seg_t0, self._samples = i, t, []
        self._within_since, self._seg_hit = None, False
        left = self.targets()[i]
        events.append(DrillEvent("target", t, f"Target split {left:.0f}/{100 - left:.0f}."))
        self._instruct(t, self._split_text(left), events)

    @staticmethod
    def _split_text(left: float) -> str:
        if abs(left - 50.0) < 0.5:
            return "Put the same weight on both feet."
        side = "left" if left > 50 else "right"
        more = max(left, 100 - left)
        return f"Put {more:.0f} % of your weight on your {side} foot."

    def _on_frame(self, t: float, fz: float, x: float, y: float, events: list[DrillEvent]) -> None:
        p = self.params
        end = self._seg_t0 + p["segment_s"]
        if t >= end:
            self._close_segment(end, events)
            if self._seg + 1 >= len(self.targets()):
                self._end_round(t, events, reason="all splits held")
                return
            self._begin_segment(self._seg + 1, end, events)
        share = self.geometry.left_share_pct(x)
        self._share = share
        self._samples.append((t, share))
        target = self.targets()[self._seg]
        within = abs(share - target) <= p["tolerance_pct"]
        if within:
            if self._within_since is None:
                self._within_since = t
            if not self._seg_hit and t - self._within_since >= p["hit_hold_s"]:
                self._seg_hit = True
                self._hit(t, "Well held!", 10 + 2 * min(self.streak, 5), events)
        else:
            self._within_since = None

    def _close_segment(self, end_s: float, events: list[DrillEvent]) -> None:
        p = self.params
        target = self.targets()[self._seg]
        rec: dict[str, Any] = {"target_left_pct": target, "segment_s": p["segment_s"],
                               "tolerance_pct": p["tolerance_pct"], "hit": self._seg_hit}
        if self._samples:
            arr = np.asarray(self._samples)
            t, share = arr[:, 0], arr[:, 1]
            err = share - target
            within_s = time_within_tolerance_s(t_s=t, value=share, target=target, tolerance=p["tolerance_pct"],
                                               end_s=max(end_s, float(t[-1])))
            idx = np.nonzero(np.abs(err) <= p["tolerance_pct"])[0]
            trace = []
            for k in range(int(math.ceil(p["segment_s"] - 1e-9))):
                m = (t >= self._seg_t0 + k) & (t < self._seg_t0 + k + 1)
                trace.append(float(np.mean(np.abs(err[m]))) if np.any(m) else math.nan)
            rec.update({
                "mean_left_pct": float(np.mean(share)), "mean_error_pct": float(np.mean(err)),
                "mean_abs_error_pct": float(np.mean(np.abs(err))), "rms_error_pct": float(np.sqrt(np.mean(err ** 2))),
                "time_within_tolerance_s": within_s,
                "time_within_tolerance_pct": 100.0 * within_s / p["segment_s"],
                "time_to_within_s": float(t[idx[0]] - self._seg_t0) if idx.size else None,
                "error_trace_pct": trace,
            })
        else:
            rec.update({k: math.nan for k in ("mean_left_pct", "mean_error_pct", "mean_abs_error_pct",
                                              "rms_error_pct", "time_within_tolerance_pct")})
            rec.update({"time_within_tolerance_s": 0.0, "time_to_within_s": None, "error_trace_pct": []})
        self.score += int(round(float(np.nan_to_num(rec["time_within_tolerance_pct"])) / 10.0))
        if not self._seg_hit:
            self._miss(end_s, "Keep practising that split.", events)
        self._segments.append(rec)

    def _round_result(self, t: float, reason: str) -> dict[str, Any]:
        segs = list(self._segments)
        good = [s for s in segs if np.nan_to_num(s["time_within_tolerance_pct"]) >= 50.0]
        return {
            "segments": segs,
            "success_pct": 100.0 * len(good) / len(segs) if segs else math.nan,
            "mean_abs_error_pct": nanmean([s["mean_abs_error_pct"] for s in segs]),
            "time_within_tolerance_s": float(sum(s["time_within_tolerance_s"] for s in segs)),
            "time_within_tolerance_pct": nanmean([s["time_within_tolerance_pct"] for s in segs]),
        }

    def _summary_lines(self, result: Mapping[str, Any]) -> list[SummaryLine]:
        pct = result["time_within_tolerance_pct"]
        err = result["mean_abs_error_pct"]
        return [
            SummaryLine("Time on target", "-" if pct is None or math.isnan(pct) else f"{pct:.0f} %",
                        None if pct is None or math.isnan(pct) else pct >= 50),
            SummaryLine("Average error", "-" if err is None or math.isnan(err) else f"{err:.1f} %"),
            SummaryLine("Score", str(self.score)),
        ]

    def _aggregate(self, rounds: list[dict[str, Any]]) -> dict[str, Any]:
        segs = [s for r in rounds for s in r["segments"]]
        return {
            "mean_abs_error_pct": nanmean([s["mean_abs_error_pct"] for s in segs]),
            "rms_error_pct": nanmean([s["rms_error_pct"] for s in segs]),
            "time_within_tolerance_s": float(sum(s["time_within_tolerance_s"] for s in segs)),
            "time_within_tolerance_pct": nanmean([s["time_within_tolerance_pct"] for s in segs]),
            "segments": segs,
        }

    def _round_duration_s(self) -> float:
        return self.params["segment_s"] * len(self.targets())

    def _view_bars(self) -> ShareBars | None:
        if self.state not in ("ready", "running"):
            return None
        p = self.params
        target = self.targets()[self._seg] if self.state == "running" else 50.0
        share = self._share
        return ShareBars(left_pct=share, target_left_pct=target, tolerance_pct=p["tolerance_pct"],
                         within=abs(share - target) <= p["tolerance_pct"])

    def update(self, frame: Any, pelvis_deg: float | None = None) -> list[DrillEvent]:
        # keep the live share for the bars in every state (the bars show it before the round starts too)
        x = float(frame.cop_ml_mm)
        if math.isfinite(x) and float(frame.fz_n) >= self.params["occupancy_n"]:
            self._share = self.geometry.left_share_pct(x)
        return super().update(frame, pelvis_deg)
