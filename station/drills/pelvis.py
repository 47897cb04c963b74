"""The pelvis drills: hip dip and raise, and the level-pelvis hold (issue 14, item 5).

Both read the pelvis sensor's obliquity (``docs/pelvis-sensor.md``: degrees,
positive when the patient's right side of the pelvis is higher), given with
every frame (:meth:`station.drills.base.Drill.update`'s ``pelvis_deg``, or the
frame's ``pelvis_obliquity_deg``). They are pure state machines like the other
drills: the same frames and angles give the same result, live or from a
recording. Without the sensor they do not start (:attr:`Drill.needs_pelvis`).

The drop
--------
The pelvis's **level** is its mean obliquity standing on both feet during the
ready phase before each round. The **drop** is the lifted (free) side's drop
below that level, positive = lower, as the Trendelenburg score measures it
(``station/protocols/pelvis.py``): standing on the left leg, ``drop = level -
obliquity``; on the right leg, ``drop = obliquity - level``. The drills act
on the drop smoothed by a moving mean over ``smooth_s`` (0.15 s), which takes
out the sensor's noise, not the movement.

What the screen shows (only :mod:`station.drills.view`'s vocabulary)
----------------------------------------------------------------------
The two :class:`~station.drills.view.ShareBars` stand for the two sides of
the pelvis seen from behind: each bar's height is 50 % plus or minus
:data:`BAR_PCT_PER_DEG` (5 %) per degree of that side's height against the
level, so the bars are equal when the pelvis is level and the lifted side's
bar sinks as it drops. The target line and band are where the drill wants the
pelvis (level, or the dip's depth). The stance foot's :class:`~station.drills.view.Zone`
shows where to stand. The faded feedback hides the bars' fill as it hides the cursor.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np

from station.core.sides import SIDES
from station.drills.base import MAX_ROUNDS, Drill, DrillEvent, nanmean
from station.drills.hold import SingleLegHoldDrill
from station.drills.params import ParamSpec, integer, number
from station.drills.view import ShareBars, SummaryLine, Zone

__all__ = ["BAR_PCT_PER_DEG", "HipDipDrill", "LevelPelvisHoldDrill", "PelvisFed", "bars_target_drop_deg",
           "excursion_ratio", "lifted_drop_deg", "pelvis_bars"]

#: the bars' scale: percentage points of bar height per degree of one side's height
BAR_PCT_PER_DEG = 5.0


def other_side(side: str) -> str:
    return "right" if side == "left" else "left"


def lifted_drop_deg(obliquity_deg: float, *, level_deg: float, stance_side: str) -> float:
    """The lifted side's drop below ``level_deg`` (deg, positive = lower; NaN in, NaN out).

    >>> lifted_drop_deg(-3.0, level_deg=0.0, stance_side="left")  # the right side 3 degrees low
    3.0
    >>> lifted_drop_deg(-3.0, level_deg=0.0, stance_side="right")  # the left side 3 degrees high
    -3.0
    """
    if stance_side not in SIDES:
        raise ValueError(f"stance_side must be 'left' or 'right', got {stance_side!r}")
    return level_deg - obliquity_deg if stance_side == "left" else obliquity_deg - level_deg


def _left_pct(drop_deg: float, stance_side: str) -> float:
    """The left bar's height for a lifted-side drop: the lifted side's bar sinks by the drop."""
    lifted_pct = 50.0 - BAR_PCT_PER_DEG * drop_deg
    left = lifted_pct if stance_side == "right" else 100.0 - lifted_pct
    return float(min(100.0, max(0.0, left)))


def pelvis_bars(*, drop_deg: float, target_drop_deg: float, tolerance_deg: float, stance_side: str,
                within: bool) -> ShareBars:
    """The pelvis as the two bars (the module notes); a NaN drop shows level."""
    drop = drop_deg if math.isfinite(drop_deg) else 0.0
    return ShareBars(left_pct=_left_pct(drop, stance_side), target_left_pct=_left_pct(target_drop_deg, stance_side),
                     tolerance_pct=BAR_PCT_PER_DEG * tolerance_deg, within=bool(within))


def bars_target_drop_deg(bars: ShareBars, stance_side: str) -> float:
    """The drop the bars' target line stands for (the inverse of :func:`pelvis_bars`' target)."""
    lifted_pct = bars.target_left_pct if stance_side == "right" else 100.0 - bars.target_left_pct
    return (50.0 - lifted_pct) / BAR_PCT_PER_DEG


def excursion_ratio(drop_deg: np.ndarray) -> float:
    """Control of one repetition: the path of the drop over the repetition, over the shortest path.

    The repetition's trace is ``drop_deg`` (from the cue to the return to
    level); it is taken from its lowest point before the (first) deepest one, where
    the movement down starts. The shortest path from there down to the deepest
    point and back to the last value is ``(peak - start) + (peak - last)``. 1.0
    is one smooth movement down and one up; a wobble or a second dip adds its path
    (1.5: half as much movement again as needed). NaN for a trace without a dip.

    >>> excursion_ratio(np.array([1.0, 0.0, 2.0, 4.0, 2.0, 0.0]))
    1.0
    >>> excursion_ratio(np.array([0.0, 4.0, 2.0, 4.0, 0.0]))
    1.5
    """
    d = np.asarray(drop_deg, dtype=float)
    d = d[np.isfinite(d)]
    if d.size < 2:
        return math.nan
    top = int(np.argmax(d))
    d = d[int(np.argmin(d[:top + 1])):]
    peak = float(d.max())
    shortest = (peak - d[0]) + (peak - d[-1])
    if shortest <= 0:
        return math.nan
    return float(np.sum(np.abs(np.diff(d))) / shortest)


class _Smoother:
    """The moving mean of the drop over the last ``window_s`` (NaN samples are left out)."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._q: deque[tuple[float, float]] = deque()
        self._sum = 0.0

    def add(self, t: float, value: float) -> float:
        if math.isfinite(value):
            self._q.append((t, value))
            self._sum += value
        while self._q and self._q[0][0] <= t - self.window_s:
            self._sum -= self._q.popleft()[1]
        if not self._q or not math.isfinite(value):
            return math.nan
        return self._sum / len(self._q)


class PelvisFed:
    """A drill fed the pelvis angle from a sensor by whoever feeds it frames (the patient screen's game).

    ``PelvisFed(drill, pelvis)`` looks and acts like ``drill``; its ``update(frame)`` is
    ``drill.update(frame, pelvis_deg=...)`` with the sensor's obliquity at the frame's time
    (:class:`station.protocols.trial.PelvisLookup`: ``at``, ``ready``, ``latest``); while the
    sensor's sample for that time is still on its way, its newest value.
    """

    def __init__(self, drill: Drill, pelvis: Any) -> None:
        self.drill = drill
        self.pelvis = pelvis

    def pelvis_at(self, t_s: float) -> float:
        value = float(self.pelvis.at(t_s))
        if not math.isfinite(value) and hasattr(self.pelvis, "ready") and not self.pelvis.ready(t_s):
            value = float(self.pelvis.latest())
        return value

    def update(self, frame: Any, pelvis_deg: float | None = None) -> list[DrillEvent]:
        if pelvis_deg is None:
            pelvis_deg = self.pelvis_at(float(frame.t_s))
        return self.drill.update(frame, pelvis_deg)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.drill, name)


def _lift_zone(drill: Drill, half_width_mm: float, half_height_mm: float) -> tuple[float, float, float, float]:
    g = drill.geometry
    x = g.left_foot_x_mm if drill.stance_side == "left" else g.right_foot_x_mm
    return x, drill.centre_ap_mm, half_width_mm, half_height_mm


# -- hip dip and raise -----------------------------------------------------------------------------------------


class HipDipDrill(Drill):
    """Hip dip and raise: standing on one leg, let the free side of the pelvis drop, lift it back level.

    A round is a **set** (``rounds``: 3 sets by default) of ``reps`` (15)
    repetitions. Each round starts with the instruction to stand on the
    ``stance_side`` leg; the repetitions start once the COP is over the stance
    foot (in the zone, ``lift_zone_mm`` medio-lateral half width) or after
    ``start_timeout_s``.

    A **repetition**, on the smoothed drop ``d`` (the module notes), with
    hysteresis between two thresholds, ``return_deg`` < ``min_depth_deg``:

    1. *level*: ``d <= return_deg``: the drill says "let your (free) hip drop"
       and shows the target ``min_depth_deg + 1`` degree;
    2. *down*: ``d >= min_depth_deg``: the depth is reached; the drill says
       "lift it back up level" and shows the level;
    3. *back*: ``d <= return_deg`` again: one repetition counted (a hit), and the
       next one starts at once.

    A dip that does not reach ``min_depth_deg`` within ``dip_timeout_s`` of the
    cue is a miss (``missed_shallow``); a dip not back to level within
    ``return_timeout_s`` of reaching the depth is a miss (``missed_no_return``).
    After a miss the pelvis must be level again before the next cue. A set ends
    after ``reps`` counted repetitions or ``max_set_s``.

    Per set: ``reps_done``, ``reps_target``, ``missed_shallow``,
    ``missed_no_return``; **range**: ``dip_mean_deg`` and ``dip_max_deg`` (the
    deepest smoothed drop of each counted repetition); **control**:
    ``return_mean_s`` (time from the deepest point back to level, mean over the
    counted repetitions) and ``excursion_ratio_mean`` (:func:`excursion_ratio`
    of each repetition's trace from the cue to the return: 1 = one smooth
    movement down and up); ``pelvis_gap_s`` (time without a pelvis value during
    the set). Success (the level rule): the counted repetitions out of the
    attempts, ``reps_done / max(reps_target, reps_done + misses)``.
    """

    name = "hip-dip"
    title = "Hip dip and raise"
    needs_pelvis = True
    LEVEL_PARAMS: ParamSpec = {
        "min_depth_deg": (None, number(0.5, 15.0)),
        "return_deg": (None, number(0.1, 10.0)),
    }
    PARAMS: ParamSpec = {
        "rounds": (3, integer(1, MAX_ROUNDS)),
        "reps": (15, integer(1, 100)),
        "dip_timeout_s": (5.0, number(0.5, 60.0)),
        "return_timeout_s": (5.0, number(0.5, 60.0)),
        "max_set_s": (120.0, number(5.0, 1800.0)),
        "start_timeout_s": (10.0, number(1.0, 120.0)),
        "lift_zone_mm": (45.0, number(5.0, 200.0)),
        "smooth_s": (0.15, number(0.0, 2.0)),
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        lo, hi = self.level_bounds
        for level in range(lo, hi + 1):  # every level the drill may reach (a parameter set overrides them all)
            self._check_thresholds(self._resolve(level))
        self._reset_set()

    def _check_side(self) -> None:
        if self.stance_side not in SIDES:
            raise ValueError(f"stance_side must be 'left' or 'right' for the hip dip, got {self.stance_side!r}")

    @staticmethod
    def _check_thresholds(p: Mapping[str, Any]) -> None:
        if not p["return_deg"] < p["min_depth_deg"]:
            raise ValueError(f"params['return_deg'] ({p['return_deg']:g}) must be below params['min_depth_deg'] "
                             f"({p['min_depth_deg']:g}): the level and the depth must not overlap")

    def _reset_set(self) -> None:
        self._phase = "lift"  # lift, level, down, up
        self._smooth = _Smoother(self.params["smooth_s"])
        self._d = math.nan
        self._in_zone = False
        self._cue_t = 0.0
        self._reached_t = 0.0
        self._peak = math.nan
        self._peak_t = 0.0
        self._trace: list[float] = []
        self._reps: list[dict[str, float]] = []
        self._shallow = 0
        self._no_return = 0
        self._gap_s = 0.0
        self._prev_t: float | None = None

    # -- the set -------------------------------------------------------------------------------------------
    def _start_round(self, t: float, events: list[DrillEvent]) -> None:
        self._reset_set()
        self._instruct(t, f"Stand on your {self.stance_side} leg.", events)

    def _ready_instruction(self) -> str:
        return "Stand still on both feet."

    def _on_frame(self, t: float, fz: float, x: float, y: float, events: list[DrillEvent]) -> None:
        p = self.params
        d = self._smooth.add(t, lifted_drop_deg(self.pelvis_deg, level_deg=self.pelvis_level_deg,
                                                stance_side=self.stance_side))  # type: ignore[arg-type]
        self._d = d
        zx, zy, hw, hh = _lift_zone(self, p["lift_zone_mm"], 2 * p["lift_zone_mm"])
        self._in_zone = abs(x - zx) <= hw and abs(y - zy) <= hh
        if self._prev_t is not None and not math.isfinite(d) and self._phase != "lift":
            self._gap_s += t - self._prev_t
        self._prev_t = t
        if t - self._round_t0 >= p["max_set_s"]:
            self._end_round(t, events, reason="set time reached")
            return
        if self._phase == "lift":
            if self._in_zone or t - self._round_t0 >= p["start_timeout_s"]:
                self._phase = "level"
                self._instruct(t, "Keep your pelvis level.", events)
            else:
                return
        if not math.isfinite(d):
            return  # no pelvis value now: nothing to judge
        free = other_side(self.stance_side)  # type: ignore[arg-type]
        if self._phase == "level":
            if d <= p["return_deg"]:
                self._cue(t, d, free, events)
        elif self._phase == "down":
            self._trace.append(d)
            if d >= p["min_depth_deg"]:
                self._phase, self._reached_t, self._peak, self._peak_t = "up", t, d, t
                self._instruct(t, "Now lift it back up, level.", events)
            elif t - self._cue_t > p["dip_timeout_s"]:
                self._shallow += 1
                self._phase = "level"
                self._miss(t, "Not deep enough. Level again, then drop further.", events)
                self._instruct(t, "Level your pelvis again.", events)
        elif self._phase == "up":
            self._trace.append(d)
            if d > self._peak:
                self._peak, self._peak_t = d, t
            if d <= p["return_deg"]:
                self._reps.append({"dip_deg": self._peak, "return_s": t - self._peak_t,
                                   "excursion_ratio": excursion_ratio(np.asarray(self._trace))})
                n = len(self._reps)
                self._hit(t, f"{n} of {p['reps']}!", 5 + min(self.streak, 5), events)
                if n >= p["reps"]:
                    self._end_round(t, events, reason="all repetitions done")
                    return
                self._cue(t, d, free, events)
            elif t - self._reached_t > p["return_timeout_s"]:
                self._no_return += 1
                self._phase = "level"
                self._miss(t, "Lift it back up all the way.", events)
                self._instruct(t, "Level your pelvis again.", events)

    def _cue(self, t: float, d: float, free: str, events: list[DrillEvent]) -> None:
        self._phase, self._cue_t, self._trace = "down", t, [d]
        self._instruct(t, f"Let your {free} hip drop ({len(self._reps) + 1} of {self.params['reps']}).", events)

    def _round_result(self, t: float, reason: str) -> dict[str, Any]:
        p = self.params
        dips = [r["dip_deg"] for r in self._reps]
        done = len(self._reps)
        out: dict[str, Any] = {
            "stance_side": self.stance_side, "reps_target": p["reps"], "reps_done": done,
            "missed_shallow": self._shallow, "missed_no_return": self._no_return,
            "min_depth_deg": p["min_depth_deg"], "return_deg": p["return_deg"],
            "dip_mean_deg": float(np.mean(dips)) if dips else math.nan,
            "dip_max_deg": float(np.max(dips)) if dips else math.nan,
            "return_mean_s": nanmean([r["return_s"] for r in self._reps]),
            "excursion_ratio_mean": nanmean([r["excursion_ratio"] for r in self._reps]),
            "pelvis_level_deg": self.pelvis_level_deg, "pelvis_gap_s": self._gap_s,
            "set_s": t - self._round_t0, "reps": [dict(r) for r in self._reps],
        }
        out["success_pct"] = 100.0 * done / max(p["reps"], done + self._shallow + self._no_return)
        return out

    def _summary_lines(self, result: Mapping[str, Any]) -> list[SummaryLine]:
        done, target = result["reps_done"], result["reps_target"]
        dip = result["dip_mean_deg"]
        return [
            SummaryLine("Repetitions", f"{done} of {target}", done >= target),
            SummaryLine("Dip", "-" if dip is None or not math.isfinite(dip) else f"{dip:.1f}°"),
            SummaryLine("Score", str(self.score)),
        ]

    def _aggregate(self, rounds: list[dict[str, Any]]) -> dict[str, Any]:
        reps = [r for rnd in rounds for r in rnd.get("reps", [])]
        dips = [r["dip_deg"] for r in reps]
        return {
            "reps_done": int(sum(r["reps_done"] for r in rounds)),
            "reps_target": int(sum(r["reps_target"] for r in rounds)),
            "missed_shallow": int(sum(r["missed_shallow"] for r in rounds)),
            "missed_no_return": int(sum(r["missed_no_return"] for r in rounds)),
            "dip_mean_deg": float(np.mean(dips)) if dips else math.nan,
            "dip_max_deg": float(np.max(dips)) if dips else math.nan,
            "return_mean_s": nanmean([r["return_s"] for r in reps]),
            "excursion_ratio_mean": nanmean([r["excursion_ratio"] for r in reps]),
            "pelvis_gap_s": float(sum(r["pelvis_gap_s"] for r in rounds)),
        }

    # -- the view --------------------------------------------------------------------------------------------
    def _round_duration_s(self) -> float:
        return float(self.params["max_set_s"])

    def _view_zone(self) -> Zone | None:
        if self.state not in ("ready", "running"):
            return None
        x, y, hw, hh = _lift_zone(self, self.params["lift_zone_mm"], 2 * self.params["lift_zone_mm"])
        return Zone(x, y, hw, hh, self._in_zone if self.state == "running" else False)

    def _view_bars(self) -> ShareBars | None:
        if self.state not in ("ready", "running") or self.stance_side is None:
            return None
        p = self.params
        d = self._d if self.state == "running" else math.nan
        if self.state == "running" and self._phase == "down":
            target, tol = p["min_depth_deg"] + 1.0, 1.0
            within = math.isfinite(d) and d >= p["min_depth_deg"]
        else:
            target, tol = 0.0, p["return_deg"]
            within = math.isfinite(d) and d <= p["return_deg"]
        return pelvis_bars(drop_deg=d, target_drop_deg=target, tolerance_deg=tol, stance_side=self.stance_side,
                           within=within)


# -- the level-pelvis hold --------------------------------------------------------------------------------------


class LevelPelvisHoldDrill(SingleLegHoldDrill):
    """The single-leg hold, keeping the pelvis level: ``|drop| <= tolerance_deg`` during the hold.

    Everything of :class:`~station.drills.hold.SingleLegHoldDrill` (the box
    over the stance foot, the hold clock, balance lost, its COP measures), but
    scored on the pelvis: ``pelvis_within_s`` (time with the smoothed drop
    within the tolerance, sample and hold; time without a pelvis value counts
    as outside) and ``pelvis_within_pct`` (of ``hold_s``, the round's success);
    ``pelvis_exits``; ``pelvis_longest_within_s``; ``drop_mean_deg`` and
    ``drop_max_deg`` (the smoothed drop over the hold); ``pelvis_gap_s``. Each
    ``hit_every_s`` (5 s) level at a stretch is a hit; the round's points are
    the pelvis's time within in tenths. The faded feedback (``feedback``)
    hides the bars' fill as it hides the cursor.
    """

    name = "level-pelvis-hold"
    title = "Level-pelvis hold"
    needs_pelvis = True
    LEVEL_PARAMS: ParamSpec = {
        **SingleLegHoldDrill.LEVEL_PARAMS,
        "tolerance_deg": (None, number(0.2, 10.0)),
    }
    PARAMS: ParamSpec = {
        **SingleLegHoldDrill.PARAMS,
        "smooth_s": (0.15, number(0.0, 2.0)),
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._reset_pelvis()

    def _reset_pelvis(self) -> None:
        self._smooth = _Smoother(self.params["smooth_s"])
        self._d = math.nan
        self._p_within = False
        self._p_since: float | None = None
        self._p_hits = 0
        self._p_last_t: float | None = None
        self._p_within_s = 0.0
        self._p_exits = 0
        self._p_longest = 0.0
        self._p_gap_s = 0.0
        self._drops: list[float] = []
        self._pelvis_hit = False

    def _start_round(self, t: float, events: list[DrillEvent]) -> None:
        super()._start_round(t, events)
        self._reset_pelvis()
        other = other_side(self.stance_side)  # type: ignore[arg-type]
        self._instruct(t, f"Lift your {other} foot and keep your pelvis level: the two bars even.", events)

    def _hit(self, t: float, message: str, points: int, events: list[DrillEvent]) -> None:
        if self._pelvis_hit:  # the hold's own hits (the box) do not count here: the pelvis does
            super()._hit(t, message, points, events)

    def _on_frame(self, t: float, fz: float, x: float, y: float, events: list[DrillEvent]) -> None:
        p = self.params
        self._d = d = self._smooth.add(t, lifted_drop_deg(self.pelvis_deg, level_deg=self.pelvis_level_deg,
                                                          stance_side=self.stance_side))  # type: ignore[arg-type]
        super()._on_frame(t, fz, x, y, events)
        if self._phase != "hold" or self.state != "running":
            return
        end = self._hold_t0 + p["hold_s"]
        if self._p_last_t is not None:
            dt = min(t, end) - self._p_last_t
            if self._p_within:
                self._p_within_s += dt
            if not math.isfinite(d):
                self._p_gap_s += dt
        self._p_last_t = t
        within = math.isfinite(d) and abs(d) <= p["tolerance_deg"]
        if math.isfinite(d):
            self._drops.append(d)
        if within and not self._p_within:
            self._p_since, self._p_hits = t, 0
        elif not within and self._p_within:
            self._p_exits += 1
            self.streak = 0
            if self._p_since is not None:
                self._p_longest = max(self._p_longest, t - self._p_since)
            self._p_since = None
        self._p_within = within
        if within and self._p_since is not None:
            n = int((t - self._p_since) // p["hit_every_s"])
            if n > self._p_hits:
                self._p_hits = n
                self._pelvis_hit = True
                self._hit(t, f"{t - self._p_since:.0f} s level!", 5 + min(self.streak, 5), events)
                self._pelvis_hit = False

    def _round_result(self, t: float, reason: str) -> dict[str, Any]:
        p = self.params
        score = self.score
        out = super()._round_result(t, reason)
        if self._phase == "hold" and self._p_last_t is not None:
            end = self._hold_t0 + p["hold_s"]
            if self._p_within and end > self._p_last_t and t >= end:
                self._p_within_s += end - self._p_last_t
            if self._p_within and self._p_since is not None:
                self._p_longest = max(self._p_longest, min(t, end) - self._p_since)
        pct = 100.0 * self._p_within_s / p["hold_s"]
        drops = np.asarray(self._drops)
        out.update({
            "tolerance_deg": p["tolerance_deg"], "pelvis_level_deg": self.pelvis_level_deg,
            "pelvis_within_s": self._p_within_s, "pelvis_within_pct": pct, "pelvis_exits": self._p_exits,
            "pelvis_longest_within_s": self._p_longest, "pelvis_gap_s": self._p_gap_s,
            "drop_mean_deg": float(np.mean(drops)) if drops.size else math.nan,
            "drop_max_deg": float(np.max(drops)) if drops.size else math.nan,
            "success_pct": pct,
        })
        self.score = score + int(round(pct / 10.0))
        return out

    def _summary_lines(self, result: Mapping[str, Any]) -> list[SummaryLine]:
        return [
            SummaryLine("Pelvis level", f"{result['pelvis_within_s']:.0f} s of {round(result['hold_s'])} s",
                        result["pelvis_within_pct"] >= 80),
            SummaryLine("Time in the box", f"{result['time_in_zone_s']:.0f} s", result["time_in_zone_pct"] >= 80),
            SummaryLine("Score", str(self.score)),
        ]

    def _aggregate(self, rounds: list[dict[str, Any]]) -> dict[str, Any]:
        out = super()._aggregate(rounds)
        out.update({
            "pelvis_within_s": float(sum(r["pelvis_within_s"] for r in rounds)),
            "pelvis_within_pct": nanmean([r["pelvis_within_pct"] for r in rounds]),
            "pelvis_exits": int(sum(r["pelvis_exits"] for r in rounds)),
            "pelvis_longest_within_s": max((r["pelvis_longest_within_s"] for r in rounds), default=0.0),
            "drop_mean_deg": nanmean([r.get("drop_mean_deg", math.nan) for r in rounds]),
            "drop_max_deg": max((r["drop_max_deg"] for r in rounds if r.get("drop_max_deg") is not None),
                                default=math.nan),
            "pelvis_gap_s": float(sum(r["pelvis_gap_s"] for r in rounds)),
        })
        return out

    def _view_bars(self) -> ShareBars | None:
        if self.state not in ("ready", "running") or self.stance_side is None:
            return None
        d = self._d if self.state == "running" else math.nan
        tol = self.params["tolerance_deg"]
        return pelvis_bars(drop_deg=d, target_drop_deg=0.0, tolerance_deg=tol, stance_side=self.stance_side,
                           within=math.isfinite(d) and abs(d) <= tol)
