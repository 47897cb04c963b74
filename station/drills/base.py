"""What every drill shares: the state machine, rounds, score and streaks, events, the view, metrics.

A drill is a pure state machine fed force frames (:class:`station.core.frames.ForceFrame`,
or anything with ``t_s``, ``fz_n``, ``cop_ml_mm``, ``cop_ap_mm``) by
:meth:`Drill.update`, which returns the events of that frame. Time is only the
frames' ``t_s``; randomness only the injected :class:`numpy.random.Generator`.
So a drill fed the same frames with the same seed does the same thing, live,
from a recording or in a test. The pelvis drills (:mod:`station.drills.pelvis`)
also read the pelvis sensor's angle, given with each frame (``update(frame,
pelvis_deg)``, or the frame's ``pelvis_obliquity_deg``).

States (:attr:`Drill.state`, the same names as :class:`~station.drills.view.DrillView`'s ``state``)
----------------------------------------------------------------------------------------------------
``waiting``
    Nobody on the plate: Fz below ``occupancy_n`` (or a NaN COP).
``ready``
    The patient stands on the plate; after ``ready_s`` of it the mean COP
    over that time is taken as the centre of the stance and the round starts.
    Leaving the plate goes back to ``waiting``.
``running``
    A round. The plate empty for ``step_off_s`` ends it (``lost_balance``).
``round_summary``
    ``summary_s`` of the round's summary, then the next round (``ready`` or
    ``waiting``), or ``done`` after the last round or once the drill has run
    ``duration_s``. An adaptive drill changes its level here (:func:`next_level`).
``done`` / ``aborted``
    Over; :meth:`Drill.metrics` has the result.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from station.core.cop import DEFAULT_OCCUPANCY_N  # a person on the plate: the COP's threshold
from station.core.frames import FrameLike
from station.core.geometry import PlateGeometry
from station.core.jsonclean import json_ready  # the same JSON clean-up as the analyze output
from station.core.sides import SIDES
from station.drills.feedback import check_feedback, cursor_visible
from station.drills.params import ParamSpec, boolean, check_params, integer, number, optional
from station.drills.progression import MAX_LEVEL, MIN_LEVEL, check_bounds, check_level, level_params, next_level
from station.drills.stability import Limits
from station.drills.view import Cue, DrillView, Metronome, ShareBars, SummaryLine, Target, Zone

__all__ = ["Drill", "DrillEvent", "FrameLike", "COMMON_PARAMS", "SIDES", "json_ready"]

#: the most rounds a drill runs (a drill given only ``duration_s`` runs rounds until the time is up)
MAX_ROUNDS = 50
#: a streak cue every this many hits in a row
STREAK_EVERY = 3


@dataclass(frozen=True, slots=True)
class DrillEvent:
    """Something that happened in a drill: what (``kind``), when (frame clock), a line of text, a sound.

    Kinds: ``state`` (a new state, in ``message``), ``instruction``,
    ``target`` (a target appeared), ``hit``, ``miss``, ``lost_balance``,
    ``beat``, ``round_end``, ``streak``, ``level`` (the level changed),
    ``finished``, ``aborted``.
    """

    kind: str
    t_s: float
    message: str
    cue: Cue | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "t_s": self.t_s, "message": self.message, "cue": self.cue}


def nanmean(values: list[float]) -> float:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return float(np.mean(v)) if v else math.nan


#: parameters every drill takes
COMMON_PARAMS: ParamSpec = {
    "rounds": (1, integer(1, MAX_ROUNDS)),
    #: stop after the round in which the drill has run this long (s), whatever ``rounds`` says; given
    #: without ``rounds``, rounds go on until then
    "duration_s": (None, optional(number(1.0, 7200.0))),
    "occupancy_n": (DEFAULT_OCCUPANCY_N, number(20.0, 2000.0)),
    "ready_s": (2.0, number(0.0, 30.0)),
    "summary_s": (3.0, number(0.0, 60.0)),
    "step_off_s": (0.5, number(0.0, 10.0)),
    "adaptive": (True, boolean()),
    "level_bounds": ([MIN_LEVEL, MAX_LEVEL], lambda where, v: list(check_bounds(v, name=where))),
    "intermittent_on_s": (1.0, number(0.1, 60.0)),
    "intermittent_period_s": (3.0, number(0.2, 120.0)),
}


class Drill:
    """Base class of the drills (see the module notes for the states).

    Parameters
    ----------
    geometry : PlateGeometry
        The plate (footprints for the weight split and the single-leg zone).
    rng : numpy.random.Generator
        Every random choice (target order, delays) comes from it.
    params : mapping, optional
        The therapist's parameters; the rest come from the level table
        (:mod:`station.drills.progression`) and the defaults (``PARAMS``).
    feedback : str
        ``continuous``, ``intermittent`` or ``summary`` (:mod:`station.drills.feedback`).
    pelvis_sensor : bool, optional
        Whether a pelvis sensor is worn (docs/pelvis-sensor.md). A drill that needs
        one (:attr:`needs_pelvis`) refuses to be built with ``False``; with None
        (not known, e.g. a recording) it refuses to start a round when the frames of
        its ready phase bring no pelvis value.
    stance_side : str, optional
        ``left`` or ``right``: the stance leg (single-leg hold) or the affected
        leg to load (symmetry).
    limits : Limits, optional
        The patient's limits of stability (reach, rhythm); typical adult limits without.
    level : int, optional
        Starting difficulty, 1 to 10 (default 1).
    """

    name: str = ""
    title: str = ""
    #: drill-specific parameters (besides COMMON_PARAMS and the level table's, whose default is the level's)
    PARAMS: ParamSpec = {}
    #: the level table's parameters, with their checks
    LEVEL_PARAMS: ParamSpec = {}
    #: the drill reads the pelvis angle (``pelvis_obliquity_deg``) with every frame: it needs the pelvis sensor
    needs_pelvis: bool = False

    def __init__(self, *, geometry: PlateGeometry, rng: np.random.Generator, params: Mapping[str, Any] | None = None,
                 feedback: str = "continuous", stance_side: str | None = None, limits: Limits | None = None,
                 level: int | None = None, pelvis_sensor: bool | None = None) -> None:
        if pelvis_sensor is False and self.needs_pelvis:
            raise ValueError(f"pelvis_sensor: the drill {self.name!r} needs the pelvis sensor "
                             "(docs/pelvis-sensor.md), and none is connected")
        if not isinstance(geometry, PlateGeometry):
            raise ValueError(f"geometry must be a PlateGeometry, got {geometry!r}")
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        self.feedback = check_feedback(feedback)
        if stance_side is not None and stance_side not in SIDES:
            raise ValueError(f"stance_side must be 'left', 'right' or None, got {stance_side!r}")
        if limits is not None and not isinstance(limits, Limits):
            raise ValueError(f"limits must be a Limits or None, got {limits!r}")
        self.start_level = check_level(1 if level is None else level)
        self.geometry = geometry
        self.rng = rng
        self.stance_side = stance_side
        self.limits_given = limits
        self.limits = limits if limits is not None else Limits.default()
        spec = self.spec()
        self.user_params = check_params(self.name, spec, params)
        lo, hi = self.user_params.get("level_bounds", (MIN_LEVEL, MAX_LEVEL))
        self.level_bounds = (lo, hi)
        self.level = min(max(self.start_level, lo), hi)
        self.start_level = self.level  # the level played (and stored), within the bounds
        self.params = self._resolve(self.level)
        self._check_side()

        self.state = "waiting"
        self.message = "Step onto the plate, one foot on each footprint."
        self.events: list[DrillEvent] = []
        self.end_reason = ""
        self.score = 0
        self.streak = 0
        self.best_streak = 0
        self.round_index = 0
        self.round_results: list[dict[str, Any]] = []
        self.centre_ml_mm = 0.0
        self.centre_ap_mm = 0.0
        self.skipped_frames = 0
        self._t: float | None = None
        self._ready_t0 = 0.0
        self._ready_xy: list[tuple[float, float]] = []
        self._round_t0 = 0.0
        self._round_elapsed_s = 0.0
        self._run_total_s = 0.0
        self._summary_t0 = 0.0
        self._summary: tuple[SummaryLine, ...] = ()
        self._empty_since: float | None = None
        #: the pelvis obliquity of the newest frame (deg, positive = the right side higher; NaN: no value)
        self.pelvis_deg = math.nan
        self.pelvis_level_deg = math.nan
        self._ready_pelvis: list[float] = []

    # -- parameters ---------------------------------------------------------------------------
    @classmethod
    def spec(cls) -> ParamSpec:
        return {**COMMON_PARAMS, **cls.LEVEL_PARAMS, **cls.PARAMS}

    @classmethod
    def check_params(cls, params: Mapping[str, Any] | None) -> dict[str, Any]:
        """Check a therapist's parameters for this drill (for a programme), without building it."""
        return check_params(cls.name, cls.spec(), params)

    def _resolve(self, level: int) -> dict[str, Any]:
        out = {k: default for k, (default, _) in {**COMMON_PARAMS, **self.PARAMS}.items()}
        out.update(level_params(self.name, level))
        out.update(self.user_params)
        if self.user_params.get("duration_s") is not None and "rounds" not in self.user_params:
            out["rounds"] = MAX_ROUNDS  # a time-limited drill runs rounds until the time is up
        return out

    def _check_side(self) -> None:
        """Subclasses refuse a missing or meaningless stance side here."""

    # -- public -------------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.state in ("done", "aborted")

    def update(self, frame: FrameLike, pelvis_deg: float | None = None) -> list[DrillEvent]:
        """Feed one frame; return its events. Frames not after the previous one are skipped.

        ``pelvis_deg``: the pelvis obliquity at the frame's time (deg, positive = the patient's
        right side higher; NaN or None: no value). Without it, the frame's own
        ``pelvis_obliquity_deg`` attribute, if it has one (a recording's row). Only the drills
        that :attr:`need the pelvis <needs_pelvis>` read it.
        """
        if self.finished:
            return []
        t = float(frame.t_s)
        if not math.isfinite(t) or (self._t is not None and not t > self._t):
            self.skipped_frames += 1
            return []
        self._t = t
        if pelvis_deg is None:
            pelvis_deg = getattr(frame, "pelvis_obliquity_deg", None)
        self.pelvis_deg = math.nan if pelvis_deg is None else float(pelvis_deg)
        fz = float(frame.fz_n)
        x, y = float(frame.cop_ml_mm), float(frame.cop_ap_mm)
        occupied = math.isfinite(fz) and fz >= self.params["occupancy_n"] and math.isfinite(x) and math.isfinite(y)
        if not occupied:
            x = y = math.nan
        events: list[DrillEvent] = []
        if self.state == "waiting":
            if occupied:
                self._enter_ready(t, x, y, events)
        elif self.state == "ready":
            if not occupied:
                self._set_state("waiting", t, events)
                self._instruct(t, "Step onto the plate, one foot on each footprint.", events)
            else:
                self._ready_xy.append((x, y))
                if math.isfinite(self.pelvis_deg):
                    self._ready_pelvis.append(self.pelvis_deg)
                if t - self._ready_t0 >= self.params["ready_s"] and self.needs_pelvis and not self._ready_pelvis:
                    self._refuse(t, "no pelvis sensor: this drill needs the pelvis sensor's angle "
                                    "(docs/pelvis-sensor.md)", events)
                elif t - self._ready_t0 >= self.params["ready_s"]:
                    xy = np.asarray(self._ready_xy)
                    #: the pelvis's level: its mean obliquity standing on both feet before the round (NaN: none)
                    self.pelvis_level_deg = float(np.mean(self._ready_pelvis)) if self._ready_pelvis else math.nan
                    self.centre_ml_mm, self.centre_ap_mm = float(np.mean(xy[:, 0])), float(np.mean(xy[:, 1]))
                    self._round_t0 = t
                    self._round_elapsed_s = 0.0
                    self._empty_since = None
                    self._set_state("running", t, events)
                    self._start_round(t, events)
                    self._on_frame(t, fz, x, y, events)  # the round's first sample
        elif self.state == "running":
            self._round_elapsed_s = t - self._round_t0
            if not occupied:
                if self._empty_since is None:
                    self._empty_since = t
                if t - self._empty_since >= self.params["step_off_s"]:
                    self._emit("lost_balance", t, "You stepped off the plate.", "lost_balance", events)
                    self._end_round(t, events, reason="stepped off the plate")
                else:
                    self._on_empty(t, events)
            else:
                self._empty_since = None
                self._on_frame(t, fz, x, y, events)
        elif self.state == "round_summary":
            if t - self._summary_t0 >= self.params["summary_s"]:
                self.round_index += 1
                if occupied:
                    self._enter_ready(t, x, y, events)
                else:
                    self._set_state("waiting", t, events)
                    self._instruct(t, "Step onto the plate, one foot on each footprint.", events)
        self.events.extend(events)
        return events

    def abort(self, reason: str = "aborted by the therapist") -> list[DrillEvent]:
        """Abandon the drill; the rounds completed so far stay in :meth:`metrics`."""
        if self.finished:
            return []
        t = self._t if self._t is not None else 0.0
        events: list[DrillEvent] = []
        self.end_reason = reason
        self._set_state("aborted", t, events)
        self.message = f"Stopped: {reason.rstrip('.')}."
        events.append(DrillEvent("aborted", t, self.message))
        self.events.extend(events)
        return events

    def view(self) -> DrillView:
        """What the screen draws now."""
        running = self.state == "running"
        return DrillView(
            drill=self.name, title=self.title, instruction=self.message, state=self.state,  # type: ignore[arg-type]
            elapsed_s=self._round_elapsed_s if self.state in ("running", "round_summary", "done") else 0.0,
            duration_s=float(self._round_duration_s()),
            feedback=self.feedback,  # type: ignore[arg-type]
            cursor_visible=cursor_visible(mode=self.feedback, running=running, elapsed_s=self._round_elapsed_s,
                                          on_s=self.params["intermittent_on_s"],
                                          period_s=max(self.params["intermittent_period_s"],
                                                       self.params["intermittent_on_s"])),
            targets=self._view_targets(), zone=self._view_zone(), bars=self._view_bars(),
            metronome=self._view_metronome(), score=int(self.score), streak=self.streak,
            best_streak=self.best_streak, level=self.level, round_index=self.round_index,
            rounds=int(self.params["rounds"]),
            summary=self._summary if self.state in ("round_summary", "done", "aborted") else (),
        )

    def metrics(self) -> dict[str, Any]:
        """The drill's result, JSON-ready (NaN -> None); keys name their units."""
        rounds = self.round_results
        out: dict[str, Any] = {
            "drill": self.name,
            "state": self.state,
            "end_reason": self.end_reason,
            "feedback": self.feedback,
            "stance_side": self.stance_side,
            "level": self.level,
            "start_level": self.start_level,
            "score": int(self.score),
            "best_streak": self.best_streak,
            "rounds_completed": len(rounds),
            "success_pct": nanmean([r.get("success_pct", math.nan) for r in rounds]),
            "centre_ml_mm": self.centre_ml_mm,
            "centre_ap_mm": self.centre_ap_mm,
        }
        out.update(self._aggregate(rounds))
        out["rounds"] = rounds
        return json_ready(out)

    def metadata(self) -> dict[str, str]:
        """Settings to store with the trial, as text (``drill`` and ``drill.*``)."""
        return {
            "drill": self.name,
            "drill.params": json.dumps(json_ready(self.user_params), sort_keys=True),
            "drill.resolved_params": json.dumps(json_ready(self._resolve(self.start_level)), sort_keys=True),
            "drill.feedback": self.feedback,
            "drill.level": str(self.start_level),
            "drill.level_bounds": json.dumps(list(self.level_bounds)),
            "drill.stance_side": self.stance_side or "",
            "drill.limits": json.dumps(self.limits.to_dict()) if self.limits_given is not None else "",
        }

    # -- helpers for the drills -----------------------------------------------------------------
    def _emit(self, kind: str, t: float, message: str, cue: Cue | None, events: list[DrillEvent]) -> None:
        if self.feedback == "summary" and self.state == "running" and cue in ("hit", "miss", "streak"):
            cue = None  # knowledge of results only after the round
        events.append(DrillEvent(kind, t, message, cue))

    def _set_state(self, state: str, t: float, events: list[DrillEvent]) -> None:
        if state != self.state:
            events.append(DrillEvent("state", t, f"{self.state} -> {state}"))
            self.state = state

    def _instruct(self, t: float, message: str, events: list[DrillEvent]) -> None:
        if message != self.message:
            self.message = message
            events.append(DrillEvent("instruction", t, message))

    def _refuse(self, t: float, reason: str, events: list[DrillEvent]) -> None:
        """Do not start: the drill is over (``aborted``) with ``reason``, said to the patient."""
        self.end_reason = reason
        self._set_state("aborted", t, events)
        self.message = f"Stopped: {reason.rstrip('.')}."
        events.append(DrillEvent("aborted", t, self.message))

    def _enter_ready(self, t: float, x: float, y: float, events: list[DrillEvent]) -> None:
        self._set_state("ready", t, events)
        self._ready_t0 = t
        self._ready_xy = [(x, y)]
        self._ready_pelvis = [self.pelvis_deg] if math.isfinite(self.pelvis_deg) else []
        self._instruct(t, self._ready_instruction(), events)

    def _ready_instruction(self) -> str:
        return "Stand still in the middle, weight on both feet. Get ready."

    def _hit(self, t: float, message: str, points: int, events: list[DrillEvent]) -> None:
        self.streak += 1
        self.best_streak = max(self.best_streak, self.streak)
        self.score += int(points)
        self._emit("hit", t, message, "hit", events)
        if self.streak % STREAK_EVERY == 0:
            self._emit("streak", t, f"{self.streak} in a row!", "streak", events)

    def _miss(self, t: float, message: str, events: list[DrillEvent]) -> None:
        self.streak = 0
        self._emit("miss", t, message, "miss", events)

    def _end_round(self, t: float, events: list[DrillEvent], *, reason: str = "") -> None:
        result = dict(self._round_result(t, reason))
        result = {"round": self.round_index, "level": self.level, "end_reason": reason, **result}
        self.round_results.append(json_ready(result))
        self._run_total_s += t - self._round_t0
        self._round_elapsed_s = t - self._round_t0
        self._summary = tuple(self._summary_lines(result))
        self._emit("round_end", t, f"Round {self.round_index + 1} over.", "round_end", events)
        last = self.round_index + 1 >= self.params["rounds"] or (
            self.params["duration_s"] is not None and self._run_total_s >= self.params["duration_s"])
        if last:
            self.end_reason = self.end_reason or "all rounds done"
            self._set_state("done", t, events)
            self._instruct(t, "Well done! The exercise is over.", events)
            events.append(DrillEvent("finished", t, f"{self.title}: score {self.score}."))
            return
        if self.params["adaptive"]:
            new = next_level(level=self.level, success_pct=float(result.get("success_pct", math.nan)),
                             bounds=self.level_bounds)
            if new != self.level:
                word = "up" if new > self.level else "down"
                self.level = new
                self.params = self._resolve(new)
                events.append(DrillEvent("level", t, f"Level {word}: {new}."))
        self._summary_t0 = t
        self._set_state("round_summary", t, events)
        self._instruct(t, f"Round {self.round_index + 1} of {self.params['rounds']} done. Rest a moment.", events)

    # -- hooks ----------------------------------------------------------------------------------
    def _start_round(self, t: float, events: list[DrillEvent]) -> None:
        raise NotImplementedError

    def _on_frame(self, t: float, fz: float, x: float, y: float, events: list[DrillEvent]) -> None:
        raise NotImplementedError

    def _on_empty(self, t: float, events: list[DrillEvent]) -> None:
        """A running frame with nobody on the plate (before ``step_off_s`` ends the round)."""

    def _round_result(self, t: float, reason: str) -> dict[str, Any]:
        raise NotImplementedError

    def _summary_lines(self, result: Mapping[str, Any]) -> list[SummaryLine]:
        return [SummaryLine("Score", str(self.score))]

    def _aggregate(self, rounds: list[dict[str, Any]]) -> dict[str, Any]:
        return {}

    def _round_duration_s(self) -> float:
        return 0.0

    def _view_targets(self) -> tuple[Target, ...]:
        return ()

    def _view_zone(self) -> Zone | None:
        return None

    def _view_bars(self) -> ShareBars | None:
        return None

    def _view_metronome(self) -> Metronome | None:
        return None
