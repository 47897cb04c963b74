"""The single-leg (Trendelenburg) stance test as a pure state machine fed by force frames.

The runner knows nothing of screens, files or clocks: a driver feeds it force
frames (:class:`station.core.frames.ForceFrame`, or anything with ``t_s``,
``fz_n``, ``cop_ml_mm``) with :meth:`SingleLegRunner.update`, and gets back
the events of that frame (:mod:`station.protocols.events`). Time is the
frames' own ``t_s``, so the live station, a recording read back by
``balance-station analyze`` and a test in fast simulated time drive it the
same way and get the same answer from the same frames.

States
------
``waiting`` -> ``baseline`` -> ``countdown`` -> ``await_lift`` -> ``hold`` -> ``done``,
and ``aborted`` from anywhere (:meth:`SingleLegRunner.abort`).

1. **waiting / baseline**: the body weight is the median Fz over ``baseline_s``
   (3 to 5 s) of quiet two-foot stance (:mod:`station.protocols.baseline`).
   While nobody, a partial load, one foot or an unsteady load is on the plate
   the runner stays in ``waiting`` and says why (an :class:`Instruction`).
2. **countdown**: ``countdown_s`` seconds (3, 2, 1), then the instruction to lift.
3. **await_lift**: watched from the end of the baseline (a patient who lifts
   during the countdown is not refused). A lift is confirmed when the
   lever-rule share on the stance foot (DESIGN.md section 3) reaches
   ``lift_share_pct`` (85 %) and stays above ``lift_hold_share_pct`` (70 %)
   for ``lift_confirm_s`` (0.5 s). The onset is the end of the weight
   transfer, when the lifted foot carries nothing: the runner waits until
   1.5 s after the crossing, fits the whole transfer (the 2.5 s before the
   crossing to then) with a smooth profile and places the onset at the
   fitted end (:mod:`station.protocols.onset`, which says why a "close
   enough to the final position" rule always finds it early). A lift on the
   other side is refused (:class:`WrongSide`) and the runner waits until both
   feet are down again.
4. **hold** for ``hold_s`` (30 s, Hardcastle & Nade 1985), from the onset:

   - **touchdown on the plate**: the COP moves toward the lifted foot's
     footprint by at least ``plate_touchdown_mm`` (40 mm) from the stance
     reference (the mean COP over the last ``reference_window_s`` s, ending
     ``reference_lag_s`` s ago, touchdowns left out) for
     ``touchdown_confirm_s``. 40 mm means the lifted foot carries at least
     20 % of the body weight on 200 mm footprints; the largest single-leg
     sway excursion in 30 s of the simulator's weak-abductor person (8.5 mm
     RMS medio-lateral) is about 33 mm, and the COP of a person on one foot
     cannot lie much more than half a foot width (about 50 mm) medial to it;
   - **touchdown off the plate**: Fz drops by at least ``floor_drop_pct``
     (12 %) of body weight within ``floor_rise_s`` (0.25 s) and stays down
     that far for ``touchdown_confirm_s`` (a peak of the force fluctuation
     on top of an unsteady hand support does not). A foot landing
     is abrupt; quiet single-leg stance changes Fz by at most about 2 % in
     0.25 s, and the light hand support this test allows stays below 10 %;
   - a touchdown ends when the shift (or the drop) is back under half its
     threshold for ``touchdown_end_s`` (0.05 s);
   - **hand support**: unloading ``u = 100 (BW - Fz) / BW`` that reaches
     ``support_on_pct`` (1.5 %), continues above ``support_off_pct``
     (0.75 %, gaps up to ``support_gap_s`` bridged), lasts at least
     ``support_min_s`` (0.5 s, the contract's rule) and averages at least
     ``support_on_pct``, outside touchdowns off the plate. The vertical force
     of quiet single-leg stance varies by about 0.35 % of body weight; its
     0.5 s average stays below 0.8 %;
   - the plate empty (Fz below the occupancy threshold) for ``step_off_s``
     ends the test: the patient stepped off.

   A touchdown is a failure: the hold time is the time from the onset to the
   first one. By default the test runs on to 30 s and reports every event;
   with ``end_on_failure`` it ends at the first touchdown.

Events found after the fact (lift-off, touchdown, support) are emitted when
confirmed, with ``t_s`` set to when they began. Everything the scoring needs is
in :meth:`SingleLegRunner.outcome`.

References
----------
.. [1] Hardcastle P, Nade S (1985) The significance of the Trendelenburg test.
   J Bone Joint Surg Br 67:741-746 (30 s single-leg stance, time to failure).
.. [2] Springer BA, Marin R, Cyhan T, Roberts H, Gill NW (2007) Normative
   values for the unipedal stance test with eyes open and closed. J Geriatr
   Phys Ther 30(1):8-15 (the timed test: ended by a touchdown of the lifted
   foot or a hand support).
"""

from __future__ import annotations

import collections
import enum
import math
import statistics
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from station.core.frames import FrameLike
from station.core.geometry import PlateGeometry
from station.core.sides import SIDES
from station.protocols.base import RunnerBase
from station.protocols.baseline import BaselineConfig, BaselineDetector, BaselineResult, foot_share_pct
from station.protocols.config import config_from_metadata, config_to_metadata
from station.protocols.events import (
    Aborted,
    Finished,
    LiftOff,
    ProtocolEvent,
    SupportEnd,
    SupportStart,
    TouchdownEnd,
    TouchdownStart,
    WrongSide,
)
from station.protocols.onset import fit_transfer

__all__ = [
    "METADATA_PREFIX",
    "SIDES",
    "FrameLike",
    "SingleLegConfig",
    "SingleLegOutcome",
    "SingleLegRunner",
    "State",
    "SupportEpisode",
    "TouchdownEpisode",
]

METADATA_PREFIX = "single_leg"

#: frames kept for looking back (the weight transfer, touchdown starts), in s
_BUFFER_S = 5.0
#: the weight transfer is fitted from this long before the lift threshold was crossed, in s
_ONSET_FIT_BEFORE_S = 2.5
#: ... to this long after it: the end of the transfer and some single-leg stance, in s
_ONSET_LOOKAHEAD_S = 1.5
#: how far back a touchdown's start is looked for, in s
_BACKTRACK_S = 0.6
#: how much further back than the level crossing the foot of a touchdown's rise may lie, in s
_FOOT_S = 0.15
#: support runs look this far back for where the unloading began, in s
_SUPPORT_HISTORY_S = 1.0


class State(str, enum.Enum):
    """Where the single-leg test stands."""

    #: nobody, a partial load, one foot or an unsteady load on the plate: refused, the reason is shown
    WAITING = "waiting"
    #: quiet two-foot stance: measuring the body weight
    BASELINE = "baseline"
    #: 3, 2, 1 before the instruction to lift
    COUNTDOWN = "countdown"
    #: waiting for the lift-off on the requested side
    AWAIT_LIFT = "await_lift"
    #: single-leg stance: the hold runs
    HOLD = "hold"
    #: over; scored from :meth:`SingleLegRunner.outcome`
    DONE = "done"
    #: abandoned: nothing to score
    ABORTED = "aborted"


def _number(name: str, value: Any, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (lo <= value <= hi):
        raise ValueError(f"{name} must be a number between {lo:g} and {hi:g}, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class SingleLegConfig:
    """Settings of the single-leg test; the module notes justify each threshold.

    Parameters
    ----------
    hold_s : float
        Length of the hold, from the onset (30 s, Hardcastle & Nade 1985).
    end_on_failure : bool
        End at the first touchdown (True) or keep recording to ``hold_s``
        (False, the default; the hold time is the time to the first failure either way).
    countdown_s : float
        Countdown before the instruction to lift, in s (0 for none).
    lift_share_pct, lift_hold_share_pct : float
        Share of the weight on the stance foot (lever rule) that starts, and
        keeps, a lift candidate, in %.
    lift_confirm_s : float
        How long the candidate must last to be a lift-off, in s.
    onset_margin_mm : float
        The onset is where the COP came within this of its single-leg position.
    plate_touchdown_mm : float
        COP shift toward the lifted foot's footprint that is a touchdown on the plate.
    floor_drop_pct : float
        Drop of Fz, in % of body weight, that is a touchdown off the plate ...
    floor_rise_s : float
        ... when it happens within this time, in s.
    touchdown_confirm_s : float
        How long the COP shift must last before it counts, in s.
    touchdown_end_s : float
        How long the shift or drop must be back under half its threshold to end a touchdown.
    support_on_pct, support_off_pct : float
        Unloading (% of body weight) that starts, and keeps, a hand-support run.
    support_min_s : float
        Shortest hand support (the contract's 0.5 s).
    support_gap_s : float
        Dips under ``support_off_pct`` up to this long do not end a support run.
    reference_window_s, reference_lag_s : float
        The stance reference for touchdowns on the plate: the mean COP over
        this window, ending this long ago.
    step_off_s : float
        The plate empty this long during the hold ends the test.
    baseline : BaselineConfig
        How the body weight is measured (``baseline_s`` 3 to 5 s, the checks).
    """

    hold_s: float = 30.0
    end_on_failure: bool = False
    countdown_s: float = 3.0
    lift_share_pct: float = 85.0
    lift_hold_share_pct: float = 70.0
    lift_confirm_s: float = 0.5
    onset_margin_mm: float = 10.0
    plate_touchdown_mm: float = 40.0
    floor_drop_pct: float = 12.0
    floor_rise_s: float = 0.25
    touchdown_confirm_s: float = 0.08
    touchdown_end_s: float = 0.05
    support_on_pct: float = 1.5
    support_off_pct: float = 0.75
    support_min_s: float = 0.5
    support_gap_s: float = 0.2
    reference_window_s: float = 5.0
    reference_lag_s: float = 0.5
    step_off_s: float = 0.5
    baseline: BaselineConfig = field(default_factory=BaselineConfig)

    def __post_init__(self) -> None:
        _number("hold_s", self.hold_s, 1.0, 600.0)
        if not isinstance(self.end_on_failure, bool):
            raise ValueError(f"end_on_failure must be True or False, got {self.end_on_failure!r}")
        _number("countdown_s", self.countdown_s, 0.0, 30.0)
        _number("lift_share_pct", self.lift_share_pct, 55.0, 100.0)
        _number("lift_hold_share_pct", self.lift_hold_share_pct, 50.0, self.lift_share_pct)
        _number("lift_confirm_s", self.lift_confirm_s, 0.1, 2.0)
        _number("onset_margin_mm", self.onset_margin_mm, 1.0, 100.0)
        _number("plate_touchdown_mm", self.plate_touchdown_mm, 5.0, 500.0)
        _number("floor_drop_pct", self.floor_drop_pct, 2.0, 100.0)
        _number("floor_rise_s", self.floor_rise_s, 0.02, _BACKTRACK_S)
        _number("touchdown_confirm_s", self.touchdown_confirm_s, 0.0, 1.0)
        _number("touchdown_end_s", self.touchdown_end_s, 0.0, 1.0)
        _number("support_on_pct", self.support_on_pct, 0.1, 100.0)
        _number("support_off_pct", self.support_off_pct, 0.0, self.support_on_pct)
        _number("support_min_s", self.support_min_s, 0.05, 10.0)
        _number("support_gap_s", self.support_gap_s, 0.0, 2.0)
        _number("reference_window_s", self.reference_window_s, 0.5, 60.0)
        _number("reference_lag_s", self.reference_lag_s, 0.0, self.reference_window_s)
        _number("step_off_s", self.step_off_s, 0.0, 10.0)
        if not isinstance(self.baseline, BaselineConfig):
            raise ValueError(f"baseline must be a BaselineConfig, got {self.baseline!r}")

    def to_metadata(self) -> dict[str, str]:
        """Recording metadata lines ``single_leg.<name>`` for every setting."""
        return config_to_metadata(self, prefix=METADATA_PREFIX)

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> SingleLegConfig:
        """The settings a recording was made with (defaults for the keys it lacks)."""
        return config_from_metadata(cls, metadata, prefix=METADATA_PREFIX)


@dataclass(frozen=True, slots=True)
class TouchdownEpisode:
    """The lifted foot down from ``t_s`` to ``end_s`` (None: still down when the test ended)."""

    t_s: float
    where: str
    end_s: float | None
    detected_s: float

    @property
    def duration_s(self) -> float | None:
        return None if self.end_s is None else self.end_s - self.t_s


@dataclass(frozen=True, slots=True)
class SupportEpisode:
    """Hand support from ``t_s`` to ``end_s``, with its mean unloading in % of body weight (live estimate)."""

    t_s: float
    end_s: float
    mean_pct_bw: float
    detected_s: float


@dataclass(frozen=True)
class SingleLegOutcome:
    """Everything a single-leg runner found, for the scoring (:func:`station.scoring.scores.score_single_leg`).

    Times are on the frames' clock. ``end_s`` is when the test window ended:
    ``onset_s + hold_s``, the first failure (``end_on_failure``), the patient
    stepping off, or the last frame (a recording that stops early).
    """

    stance_side: str
    state: str
    end_reason: str
    config: SingleLegConfig
    baseline: BaselineResult | None
    onset_s: float | None
    end_s: float | None
    touchdowns: tuple[TouchdownEpisode, ...] = ()
    supports: tuple[SupportEpisode, ...] = ()
    wrong_side_s: tuple[float, ...] = ()
    problem: str | None = None
    skipped_frames: int = 0
    #: the fitted weight transfer (:class:`station.protocols.onset.TransferFit`), None when not fitted
    transfer: Any = None

    @property
    def first_failure_s(self) -> float | None:
        """Start of the first touchdown within the hold, or None."""
        if self.onset_s is None:
            return None
        for td in self.touchdowns:
            if td.t_s < self.onset_s + self.config.hold_s:
                return td.t_s
        return None

    @property
    def hold_time_s(self) -> float | None:
        """From the onset to the first failure, at most ``hold_s`` (or to ``end_s`` when the data stop)."""
        if self.onset_s is None or self.end_s is None:
            return None
        fail = self.first_failure_s
        until = fail if fail is not None else self.end_s
        return max(0.0, min(until - self.onset_s, self.config.hold_s))

    @property
    def completed(self) -> bool:
        """``hold_s`` held with no failure."""
        return (self.state == State.DONE.value and self.onset_s is not None and self.first_failure_s is None
                and self.end_reason == SingleLegRunner.REASON_HOLD_REACHED)


class _Hold:
    """Touchdowns and hand support during the hold (the runner's ``hold`` state)."""

    def __init__(self, cfg: SingleLegConfig, *, stance_side: str, body_weight_n: float, onset_s: float,
                 ref_ml_mm: float, lifted_x_mm: float | None = None) -> None:
        self.cfg = cfg
        self.stance_side = stance_side
        self.lifted_side = "right" if stance_side == "left" else "left"
        self.toward_lifted = 1.0 if stance_side == "left" else -1.0  # sign of x toward the lifted footprint
        self.bw = body_weight_n
        self.onset_s = onset_s
        self.ref0 = ref_ml_mm
        self.touchdowns: list[TouchdownEpisode] = []
        self.supports: list[SupportEpisode] = []
        # current touchdown: where, start, detected, pre-drop unloading (floor)
        self._td: tuple[str, float, float, float] | None = None
        self._td_threshold = cfg.plate_touchdown_mm
        self._drop: tuple[float, float] | None = None  # a floor candidate: when, and the unloading before it
        self._recent_min: collections.deque[tuple[float, float]] = collections.deque()
        self._end_since: float | None = None
        self._above_since: float | None = None
        self._history: collections.deque[tuple[float, float, float]] = collections.deque()  # t, u, d
        self._pending: collections.deque[tuple[float, float]] = collections.deque()
        self._window: collections.deque[tuple[float, float]] = collections.deque()
        self._window_sum = 0.0
        self._window_sq = 0.0
        #: distance from the stance reference to the lifted footprint's centre, mm
        self.reach_mm = abs(self.ref0 - (lifted_x_mm if lifted_x_mm is not None else self.ref0 + 200.0 *
                                         self.toward_lifted))
        self._support_from_s = onset_s  # support may not start before this (onset, end of a floor touchdown)
        self._last_end_s = onset_s  # a touchdown may not start before this (onset, end of the last one)
        self._run: list[tuple[float, float]] | None = None
        self._run_sum = 0.0
        self._run_last_above = 0.0
        self._run_confirmed = False
        self._run_detected_s = 0.0

    # -- helpers ------------------------------------------------------------------------
    def reference_ml_mm(self) -> float:
        w = self._window
        if len(w) >= 5 and w[-1][0] - w[0][0] >= 0.5:
            return self._window_sum / len(w)
        return self.ref0

    def plate_threshold_mm(self) -> float:
        """COP shift toward the lifted footprint that is a touchdown on the plate.

        ``plate_touchdown_mm`` on 200 mm footprints, scaled to this plate's
        distance from the stance position to the lifted footprint (a share of
        the weight on the lifted foot, about 20 %), lowered to 18 % of that
        distance for a steady patient, never below 4.5 times the ML sway's
        standard deviation over the reference window.
        """
        share = self.cfg.plate_touchdown_mm / 200.0
        w = self._window
        if len(w) >= 20 and w[-1][0] - w[0][0] >= 2.0:
            mean = self._window_sum / len(w)
            sd = math.sqrt(max(self._window_sq / len(w) - mean * mean, 0.0))
            return min(share * self.reach_mm, max(0.18 * self.reach_mm, 4.5 * sd))
        return share * self.reach_mm

    @property
    def in_touchdown(self) -> str | None:
        return None if self._td is None else self._td[0]

    @property
    def supported(self) -> bool:
        return self._run is not None and self._run_confirmed

    def _since(self, t_s: float) -> str:
        return f"{t_s - self.onset_s:.1f} s into the hold"

    # -- touchdowns -------------------------------------------------------------------------
    def _begin_touchdown(self, where: str, start_s: float, t_s: float, pre_pct: float) -> list[ProtocolEvent]:
        events = self._cut_support(start_s)
        self._td = (where, start_s, t_s, pre_pct)
        self._end_since = None
        self._above_since = None
        while self._pending and self._pending[-1][0] >= start_s:
            self._pending.pop()
        place = "on the plate" if where == "plate" else "off the plate (on the floor)"
        events.append(TouchdownStart(t_s=start_s, detected_s=t_s, where=where,
                                     message=f"Touchdown of the {self.lifted_side} foot {place}, "
                                             f"{self._since(start_s)}."))
        return events

    def _end_touchdown(self, end_s: float | None) -> list[ProtocolEvent]:
        assert self._td is not None
        where, start_s, detected_s, _ = self._td
        self.touchdowns.append(TouchdownEpisode(start_s, where, end_s, detected_s))
        self._td = None
        self._end_since = None
        if end_s is not None:
            self._last_end_s = end_s
        if where == "floor" and end_s is not None:
            self._support_from_s = end_s
        if end_s is None:
            return []
        return [TouchdownEnd(t_s=end_s, where=where, start_s=start_s, duration_s=end_s - start_s,
                             message=f"The {self.lifted_side} foot is up again after {end_s - start_s:.2f} s.")]

    def _find_start(self, t_s: float, value_index: int, level: float, floor: float) -> float:
        """Where the rise that crossed the threshold at ``t_s`` began.

        Back from ``t_s`` (within the look-back) to the last frame whose value
        is at most ``level``, then on back while the value keeps falling and
        is above ``floor`` (at most 0.15 s more): toward the foot of the rise,
        where the lifted foot's load began (a touchdown's load rises over up
        to 0.3 s, so the crossing alone is late; sway beyond the foot must not
        be followed).
        """
        start = t_s
        frames = [(t, values[value_index - 1]) for t, *values in self._history if t >= t_s - _BACKTRACK_S]
        i = len(frames) - 1
        while i >= 0 and (math.isnan(frames[i][1]) or frames[i][1] > level):
            start = frames[i][0]
            i -= 1
        if i >= 0:  # frames[i] is the last at or below the level: follow the rise down to its foot
            start = frames[i][0]
            t_level = start
            while (i > 0 and not math.isnan(frames[i - 1][1]) and frames[i - 1][1] < frames[i][1]
                   and frames[i][1] > floor and t_level - frames[i - 1][0] <= _FOOT_S):
                i -= 1
                start = frames[i][0]
        return max(start, self._last_end_s)

    # -- hand support -------------------------------------------------------------------------
    def _cut_support(self, end_s: float) -> list[ProtocolEvent]:
        """End the open support run at ``end_s`` (a floor touchdown began then, or the hold ended)."""
        if self._run is None:
            return []
        run = [(t, u) for t, u in self._run if t < end_s]
        return self._close_run(run, end_s)

    def _close_run(self, run: list[tuple[float, float]], end_s: float) -> list[ProtocolEvent]:
        self._run = None
        if not run:
            return []
        start_s = run[0][0]
        mean = sum(u for _, u in run) / len(run)
        valid = end_s - start_s >= self.cfg.support_min_s and mean >= self.cfg.support_on_pct
        if not (valid or self._run_confirmed):
            return []
        self.supports.append(SupportEpisode(start_s, end_s, mean, self._run_detected_s))
        return [SupportEnd(t_s=end_s, start_s=start_s, duration_s=end_s - start_s, mean_pct_bw=mean,
                           message=f"Hand support ended after {end_s - start_s:.1f} s "
                                   f"(mean {mean:.1f} % of body weight).")]

    def _support(self, t_s: float, u: float) -> list[ProtocolEvent]:
        c = self.cfg
        if self._run is None:
            if u < c.support_on_pct or t_s < self._support_from_s:
                return []
            run: list[tuple[float, float]] = []
            for t, uu, _ in reversed(self._history):
                if t < max(t_s - _SUPPORT_HISTORY_S, self._support_from_s) or uu < c.support_off_pct:
                    break
                run.append((t, uu))
            run.reverse()  # ends with this frame (already in the history)
            self._run = run or [(t_s, u)]
            self._run_sum = sum(uu for _, uu in self._run)
            self._run_last_above = t_s
            self._run_confirmed = False
            self._run_detected_s = t_s
        else:
            self._run.append((t_s, u))
            self._run_sum += u
            if u >= c.support_off_pct:
                self._run_last_above = t_s
            elif t_s - self._run_last_above > c.support_gap_s:
                run = [(t, uu) for t, uu in self._run if t <= self._run_last_above]
                end_s = next(t for t, _ in self._run if t > self._run_last_above)
                return self._close_run(run, end_s)
        start_s = self._run[0][0]
        mean = self._run_sum / len(self._run)
        if not self._run_confirmed and t_s - start_s >= c.support_min_s and mean >= c.support_on_pct:
            self._run_confirmed = True
            self._run_detected_s = t_s
            return [SupportStart(t_s=start_s, detected_s=t_s, pct_bw=mean,
                                 message=f"Hand support: {mean:.1f} % of body weight, {self._since(start_s)}.")]
        return []

    # -- one frame --------------------------------------------------------------------------
    def push(self, t_s: float, fz_n: float, cop_ml_mm: float) -> list[ProtocolEvent]:
        c = self.cfg
        u = 100.0 * (self.bw - fz_n) / self.bw
        d = self.toward_lifted * (cop_ml_mm - self.reference_ml_mm()) if math.isfinite(cop_ml_mm) else math.nan
        self._history.append((t_s, u, d))
        # the least unloading over the last floor_rise_s (a monotone queue: O(1) per frame at any rate)
        q = self._recent_min
        while q and q[-1][1] >= u:
            q.pop()
        q.append((t_s, u))
        while q[0][0] < t_s - c.floor_rise_s:
            q.popleft()
        while self._history[0][0] < t_s - _SUPPORT_HISTORY_S:
            self._history.popleft()
        events: list[ProtocolEvent] = []
        if self._td is None:
            u_min = self._recent_min[0][1]
            if self._drop is not None and u - self._drop[1] < c.floor_drop_pct:
                self._drop = None  # a peak of the force fluctuation, not a foot landing
            if self._drop is None and u - u_min >= c.floor_drop_pct:
                self._drop = (t_s, u_min)
            if self._drop is not None and t_s - self._drop[0] >= c.touchdown_confirm_s:
                pre = self._drop[1]
                self._drop = None
                self._above_since = None
                start = self._find_start(t_s, 1, pre + 0.25 * (u - pre), pre + 0.05 * (u - pre))
                events += self._begin_touchdown("floor", start, t_s, pre)
            elif self._drop is not None:
                pass
            elif not math.isnan(d) and d >= self.plate_threshold_mm():
                if self._above_since is None:
                    self._above_since = t_s
                if t_s - self._above_since >= c.touchdown_confirm_s:
                    self._td_threshold = self.plate_threshold_mm()
                    start = self._find_start(t_s, 2, 0.5 * self._td_threshold, 0.1 * self._td_threshold)
                    events += self._begin_touchdown("plate", start, t_s, 0.0)
            else:
                self._above_since = None
        else:
            where, _, _, pre = self._td
            if where == "floor":
                back = u <= pre + c.floor_drop_pct / 2
            else:
                back = not math.isnan(d) and d <= self._td_threshold / 2
            if back:
                if self._end_since is None:
                    self._end_since = t_s
                if t_s - self._end_since >= c.touchdown_end_s:
                    events += self._end_touchdown(self._end_since)
            else:
                self._end_since = None
        if self._td is None or self._td[0] == "plate":
            events += self._support(t_s, u)
        if self._td is None and math.isfinite(cop_ml_mm):
            self._pending.append((t_s, cop_ml_mm))
        while self._pending and self._pending[0][0] <= t_s - c.reference_lag_s:
            item = self._pending.popleft()
            self._window.append(item)
            self._window_sum += item[1]
            self._window_sq += item[1] * item[1]
        while self._window and self._window[0][0] < t_s - c.reference_window_s:
            old = self._window.popleft()[1]
            self._window_sum -= old
            self._window_sq -= old * old
        return events

    def close(self, end_s: float) -> list[ProtocolEvent]:
        """The hold is over at ``end_s``: close what is open (a touchdown still down has no end)."""
        events = self._cut_support(end_s) if self._td is None or self._td[0] == "plate" else []
        if self._td is not None:
            events += self._end_touchdown(None)
        return events


class SingleLegRunner(RunnerBase):
    """The single-leg stance test, frame by frame (see the module notes for the rules).

    Parameters
    ----------
    stance_side : {"left", "right"}
        The leg the patient stands on (the other foot is lifted), as in
        ``balance-station analyze --stance-side``.
    geometry : PlateGeometry
        Where the footprints are.
    config : SingleLegConfig
        Durations and thresholds.

    Attributes
    ----------
    state : State
        Where the test stands.
    events : list of ProtocolEvent
        Every event so far.
    message : str
        The latest instruction or result, for the screen.

    Examples
    --------
    A live caller feeds every force frame and shows the events::

        runner = SingleLegRunner(stance_side="left", geometry=geometry)
        for frame in frames:                 # live: from LiveStation.subscribe()
            for event in runner.update(frame):
                screen.show(event.message)
            if runner.finished:
                break
        outcome = runner.outcome()           # scored by station.scoring.scores.score_single_leg
    """

    protocol = "single-leg"
    REASON_HOLD_REACHED = "hold time reached"
    REASON_FIRST_FAILURE = "first failure (end on failure)"
    REASON_STEPPED_OFF = "stepped off the plate"
    REASON_DATA_ENDED = "the frames ended before the end of the hold"

    def __init__(self, *, stance_side: str, geometry: PlateGeometry | None = None,
                 config: SingleLegConfig | None = None) -> None:
        if stance_side not in SIDES:
            raise ValueError(f"stance_side must be 'left' or 'right', got {stance_side!r}")
        self.stance_side = stance_side
        self.lifted_side = "right" if stance_side == "left" else "left"
        self.geometry = geometry if geometry is not None else PlateGeometry()
        self.config = config if config is not None else SingleLegConfig()
        self.state = State.WAITING
        self.events: list[ProtocolEvent] = []
        self.message = "Step on the plate with both feet on the footprints."
        self.skipped_frames = 0
        self.end_reason = ""
        #: every frame the runner takes belongs to the trial's recording (the analysis replays them all)
        self.frame_in_trial = True
        self._baseline_detector = BaselineDetector(self.config.baseline, self.geometry)
        self._baseline: BaselineResult | None = None
        self._problem_code: str | None = None
        self._last_t: float | None = None
        self._buffer: collections.deque[tuple[float, float, float]] = collections.deque()
        self._countdown_t0 = 0.0
        self._countdown_left: int | None = None
        self._candidate: tuple[str, float] | None = None
        self._lift_pending_s: float | None = None  # a confirmed lift's crossing time, waiting for the transfer's end
        self._wrong_active = False
        self._wrong_side_s: list[float] = []
        self._empty_since: float | None = None
        self._onset_s: float | None = None
        self._transfer = None  # the fitted weight transfer (station.protocols.onset.TransferFit)
        self._end_s: float | None = None
        self._hold: _Hold | None = None

    # -- public state -----------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        """True once the test is done or aborted: feed no more frames."""
        return self.state in (State.DONE, State.ABORTED)

    @property
    def onset_s(self) -> float | None:
        return self._onset_s

    @property
    def body_weight_n(self) -> float | None:
        return None if self._baseline is None else self._baseline.body_weight_n

    def metadata(self) -> dict[str, str]:
        """Recording metadata for this test: protocol, stance side and every setting."""
        return {"protocol": self.protocol, "stance_side": self.stance_side, **self.config.to_metadata()}

    def status(self) -> dict[str, Any]:
        """A snapshot for the screen and the web page (plain values)."""
        t = self._last_t
        hold_elapsed = None
        if self._onset_s is not None and t is not None:
            stop = self._end_s if self._end_s is not None else t
            hold_elapsed = max(0.0, min(stop - self._onset_s, self.config.hold_s))
        elif self._lift_pending_s is not None and t is not None:
            # the lift is confirmed and the transfer's end not yet placed: count from the crossing meanwhile
            hold_elapsed = max(0.0, min(t - self._lift_pending_s, self.config.hold_s))
        hold = self._hold
        return {
            "protocol": self.protocol,
            "stance_side": self.stance_side,
            "state": self.state.value,
            "message": self.message,
            "t_s": t,
            "body_weight_n": self.body_weight_n,
            "baseline_collected_s": self._baseline_detector.collected_s if self._baseline is None else None,
            "countdown_remaining_s": self._countdown_left if self.state is State.COUNTDOWN else None,
            "onset_s": self._onset_s,
            "hold_elapsed_s": hold_elapsed,
            "hold_s": self.config.hold_s,
            "touchdowns": 0 if hold is None else len(hold.touchdowns) + (hold.in_touchdown is not None),
            "touchdown_now": None if hold is None else hold.in_touchdown,
            "supported_now": False if hold is None else hold.supported,
        }

    # -- driving --------------------------------------------------------------------------------
    def update(self, frame: FrameLike) -> list[ProtocolEvent]:
        """Feed one frame; return the events it brought (empty for most frames).

        Frames must come in time order; a frame whose ``t_s`` is not after the
        previous one is skipped (and counted in :attr:`skipped_frames`). After
        the test is finished, frames are ignored.
        """
        if self.finished:
            return []
        t = float(frame.t_s)
        if not math.isfinite(t) or (self._last_t is not None and not t > self._last_t):
            self.skipped_frames += 1
            return []
        self._last_t = t
        fz = float(frame.fz_n)
        occupied = fz >= self.config.baseline.occupancy_n
        x = float(frame.cop_ml_mm) if occupied else math.nan
        self._buffer.append((t, fz, x))
        while self._buffer[0][0] < t - _BUFFER_S:
            self._buffer.popleft()
        events: list[ProtocolEvent] = []
        if self.state in (State.WAITING, State.BASELINE):
            self._on_baseline(t, fz, x, events)
        elif self.state in (State.COUNTDOWN, State.AWAIT_LIFT):
            self._on_await(t, fz, x, events)
        elif self.state is State.HOLD:
            self._on_hold(t, fz, x, events)
        self.events.extend(events)
        return events

    def abort(self, reason: str = "aborted by the operator", *, t_s: float | None = None) -> list[ProtocolEvent]:
        """Abandon the test (the operator's abort; repeat with a new runner). Nothing is scored."""
        if self.finished:
            return []
        t = t_s if t_s is not None else (self._last_t if self._last_t is not None else 0.0)
        events: list[ProtocolEvent] = []
        if self._hold is not None:
            events += self._hold.close(t)
        self.end_reason = reason
        self._set_state(State.ABORTED, t, events)
        self.message = f"Test aborted: {reason.rstrip('.')}."
        events.append(Aborted(t_s=t, reason=reason, message=self.message))
        self.events.extend(events)
        return events

    def finish(self) -> list[ProtocolEvent]:
        """No more frames (the end of a recording). A hold in progress ends at the last frame;
        before the lift-off the test is aborted with the reason it never started."""
        if self.finished:
            return []
        t = self._last_t if self._last_t is not None else 0.0
        if self._lift_pending_s is not None and self.state is State.AWAIT_LIFT:
            pending: list[ProtocolEvent] = []
            self._start_hold(self._lift_pending_s, t, pending)
            self.events.extend(pending)
            if self.finished:
                return pending
            return pending + self.finish()
        if self.state is State.HOLD:
            events: list[ProtocolEvent] = []
            self._close_hold(t, self.REASON_DATA_ENDED, events)
            self.events.extend(events)
            return events
        return self.abort(self._why_not_started(), t_s=t)

    def outcome(self) -> SingleLegOutcome:
        """What the test found so far (complete once :attr:`finished`)."""
        hold = self._hold
        return SingleLegOutcome(
            stance_side=self.stance_side,
            state=self.state.value,
            end_reason=self.end_reason,
            config=self.config,
            baseline=self._baseline,
            onset_s=self._onset_s,
            end_s=self._end_s,
            touchdowns=tuple(hold.touchdowns) if hold else (),
            supports=tuple(hold.supports) if hold else (),
            wrong_side_s=tuple(self._wrong_side_s),
            problem=None if self._onset_s is not None else self._why_not_started(),
            skipped_frames=self.skipped_frames,
            transfer=self._transfer,
        )

    # -- states ----------------------------------------------------------------------------------
    def _why_not_started(self) -> str:
        side, lifted = self.stance_side, self.lifted_side
        if self._baseline is None:
            problem = self._baseline_detector.problem
            what = (problem[1].rstrip(".") if problem
                    else f"the plate was steady for less than {self.config.baseline.baseline_s:g} s")
            return (f"no body-weight baseline ({self.config.baseline.baseline_s:g} s of quiet two-foot stance "
                    f"before the lift): {what}")
        if self._wrong_side_s:
            return (f"the patient stood on the {lifted} leg (at t = "
                    f"{', '.join(f'{t:.2f} s' for t in self._wrong_side_s)}), not on the {side} leg as asked; "
                    f"no lift of the {lifted} foot")
        return f"no lift-off of the {lifted} foot (single-leg stance on the {side} leg) after the baseline"

    def _on_baseline(self, t: float, fz: float, x: float, events: list[ProtocolEvent]) -> None:
        result = self._baseline_detector.push(t, fz, x)
        problem = self._baseline_detector.problem
        if result is not None:
            self._baseline = result
            self._set_state(State.BASELINE, t, events)
            self._baseline_done(t, result, events)
            self._start_countdown(t, State.COUNTDOWN, events)
            self._instruct(t, "get_ready", f"Get ready to stand on your {self.stance_side} leg: lift the "
                           f"{self.lifted_side} foot when told, hands on the hips.", events)
            self._problem_code = None
            self._on_await(t, fz, x, events)
            return
        self._show_baseline_problem(t, problem, events, measuring=State.BASELINE, waiting=State.WAITING)

    def _on_await(self, t: float, fz: float, x: float, events: list[ProtocolEvent]) -> None:
        c = self.config
        # the plate emptied: start again from the baseline
        if math.isnan(x):
            if self._empty_since is None:
                self._empty_since = t
            if t - self._empty_since >= c.step_off_s:
                self._baseline = None
                self._baseline_detector.reset()
                self._candidate, self._wrong_active, self._empty_since = None, False, None
                self._problem_code = None
                self._on_baseline(t, fz, x, events)
            return
        self._empty_since = None
        if self.state is State.COUNTDOWN and self._count_down(t, c.countdown_s, events):
            self._set_state(State.AWAIT_LIFT, t, events)
            self._instruct(t, "lift", f"Lift your {self.lifted_side} foot now and stand on your "
                           f"{self.stance_side} leg.", events)
        if self._lift_pending_s is not None:
            if t - self._lift_pending_s >= _ONSET_LOOKAHEAD_S:
                self._start_hold(self._lift_pending_s, t, events)
            return
        share = {s: foot_share_pct(x, side=s, geometry=self.geometry) for s in SIDES}
        if self._wrong_active:
            if min(share.values()) >= c.baseline.min_foot_share_pct:
                self._wrong_active = False
            return
        if self._candidate is None:
            for s in SIDES:
                if share[s] >= c.lift_share_pct:
                    self._candidate = (s, t)
            return
        side, t_cross = self._candidate
        if share[side] < c.lift_hold_share_pct:
            self._candidate = None
            return
        if t - t_cross < c.lift_confirm_s:
            return
        self._candidate = None
        if side != self.stance_side:
            self._wrong_active = True
            self._wrong_side_s.append(t_cross)
            events.append(WrongSide(t_s=t_cross, detected_s=t, stance_side=side, expected=self.stance_side,
                                    message=f"Wrong leg: this test is on the {self.stance_side} leg. Put the "
                                            f"{self.stance_side} foot down, then lift the {self.lifted_side} foot."))
            self._instruct(t, "put_down", f"Put both feet down, then stand on your {self.stance_side} leg.", events)
            return
        # the onset is the end of the weight transfer: wait until it can be seen whole
        self._lift_pending_s = t_cross
        self.message = f"Standing on your {self.stance_side} leg: hold still."
        if t - t_cross >= _ONSET_LOOKAHEAD_S:
            self._start_hold(t_cross, t, events)

    def _start_hold(self, t_cross: float, t: float, events: list[ProtocolEvent]) -> None:
        """The lift confirmed at ``t_cross``: fit the weight transfer, place the onset at its end, start the hold."""
        c = self.config
        assert self._baseline is not None
        self._lift_pending_s = None
        sign = -1.0 if self.stance_side == "left" else 1.0  # x toward the stance footprint
        lo = max(t_cross - _ONSET_FIT_BEFORE_S, self._baseline.end_s)
        pts = [(tt, sign * x) for tt, _, x in self._buffer if tt >= lo and math.isfinite(x)]
        onset = t_cross
        try:
            fit = fit_transfer(t_s=np.array([p[0] for p in pts]), toward_mm=np.array([p[1] for p in pts]),
                               cross_s=t_cross)
            onset = min(max(fit.end_s, lo), t)
            self._transfer = fit
        except ValueError:
            self._transfer = None
        after = [sign * x for tt, _, x in self._buffer if tt >= onset and math.isfinite(x)]
        ref_pos = statistics.median(after) if after else sign * self._buffer[-1][2]
        self._onset_s = onset
        self._empty_since = None
        lifted_x = self.geometry.right_foot_x_mm if self.stance_side == "left" else self.geometry.left_foot_x_mm
        self._hold = _Hold(c, stance_side=self.stance_side, body_weight_n=self._baseline.body_weight_n,
                           onset_s=onset, ref_ml_mm=sign * ref_pos, lifted_x_mm=lifted_x)
        self._set_state(State.HOLD, t, events)
        events.append(LiftOff(t_s=onset, detected_s=t, stance_side=self.stance_side,
                              message=f"Lift-off: standing on the {self.stance_side} leg."))
        self._instruct(t, "hold", f"Hold still on your {self.stance_side} leg for {c.hold_s:g} s.", events)
        for tt, fz, x in list(self._buffer):
            if tt >= onset and not self.finished:
                self._on_hold(tt, fz, x, events)

    def _on_hold(self, t: float, fz: float, x: float, events: list[ProtocolEvent]) -> None:
        c = self.config
        hold = self._hold
        assert hold is not None and self._onset_s is not None
        end = self._onset_s + c.hold_s
        if t >= end:
            self._close_hold(end, self.REASON_HOLD_REACHED, events)
            return
        had = len(hold.touchdowns) + (hold.in_touchdown is not None)
        events += hold.push(t, fz, x)
        if math.isnan(x):
            if self._empty_since is None:
                self._empty_since = t
            if t - self._empty_since >= c.step_off_s:
                self._close_hold(t, self.REASON_STEPPED_OFF, events)
                return
        else:
            self._empty_since = None
        if c.end_on_failure and had == 0 and (hold.touchdowns or hold.in_touchdown is not None):
            self._close_hold(t, self.REASON_FIRST_FAILURE, events)

    def _close_hold(self, end_s: float, reason: str, events: list[ProtocolEvent]) -> None:
        assert self._hold is not None and self._onset_s is not None
        events += self._hold.close(end_s)
        self._end_s = end_s
        self.end_reason = reason
        out = self.outcome()
        self._set_state(State.DONE, end_s, events)
        hold_time = out.hold_time_s
        completed = out.first_failure_s is None and reason == self.REASON_HOLD_REACHED
        if completed:
            text = f"Completed: {self.config.hold_s:g} s on the {self.stance_side} leg."
        elif out.first_failure_s is not None:
            text = f"Hold time {hold_time:.1f} s on the {self.stance_side} leg (touchdown at {hold_time:.1f} s)."
        else:
            text = f"Hold time {hold_time:.1f} s on the {self.stance_side} leg ({reason})."
        events.append(Finished(t_s=end_s, completed=completed, hold_time_s=hold_time, reason=reason, message=text))
        self.message = text
