"""The quiet two-foot stance test as a pure state machine fed by force frames.

The same runner family as :mod:`station.protocols.single_leg`: frames in,
events out, time from the frames. 30 s of quiet stance on both feet, eyes open
or closed, on the firm plate or on foam; the conditions are recorded with the
trial (they change the expected sway, not the rules).

States
------
``waiting`` -> ``baseline`` -> ``countdown`` -> ``recording`` -> ``done``, and
``aborted`` from anywhere.

1. **waiting / baseline**: as for the single-leg test (:mod:`station.protocols.baseline`):
   nobody, a partial load, one foot or an unsteady load is refused, with the reason.
2. **countdown**: ``countdown_s`` seconds (3, 2, 1).
3. **recording** for ``duration_s`` (30 s; Scoppa et al. 2013 ask for at least
   25 s). Stepping off the plate (Fz below the occupancy threshold) or losing
   two-foot stance (the weight under one footprint only, by the lever rule,
   for ``stance_lost_s``: a step or a foot lifted) aborts the trial: the COP
   jump would dominate every sway measure, and the quiet-stance analysis
   refuses a trial with an empty sample (:func:`station.scoring.analyze.score_quiet_stance`).

Only the frames of the recorded window belong to the trial
(:attr:`QuietStanceRunner.frame_in_trial`); they are scored with the
quiet-stance metrics (:func:`station.scoring.scores.quiet_stance_result`).

References
----------
.. [1] Prieto TE et al. (1996) Measures of postural steadiness. IEEE Trans
   Biomed Eng 43:956-966.
.. [2] Scoppa F et al. (2013) Clinical stabilometry standardization
   (trials of at least 25 s, at least 50 Hz).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

from station.core.geometry import PlateGeometry
from station.core.sides import SIDES
from station.protocols.base import RunnerBase
from station.protocols.baseline import BaselineConfig, BaselineDetector, BaselineResult, foot_share_pct
from station.protocols.config import config_from_metadata, config_to_metadata
from station.protocols.events import (
    Aborted,
    Finished,
    ProtocolEvent,
)

__all__ = ["EYES", "SURFACES", "QuietStanceConfig", "QuietStanceOutcome", "QuietStanceRunner", "QuietState"]

EYES = ("open", "closed")
SURFACES = ("firm", "foam")
METADATA_PREFIX = "quiet_stance"


class QuietState(str, enum.Enum):
    """Where the quiet-stance test stands."""

    WAITING = "waiting"
    BASELINE = "baseline"
    COUNTDOWN = "countdown"
    RECORDING = "recording"
    DONE = "done"
    ABORTED = "aborted"


@dataclass(frozen=True, kw_only=True)
class QuietStanceConfig:
    """Settings of the quiet-stance test.

    Parameters
    ----------
    duration_s : float
        Length of the recorded window (30 s).
    countdown_s : float
        Countdown before it, in s.
    eyes : {"open", "closed"}
        Condition: eyes open or closed.
    surface : {"firm", "foam"}
        Condition: standing on the plate or on a foam pad on it.
    stance_lost_s : float
        The weight under one footprint this long ends the trial (a step).
    baseline : BaselineConfig
        The baseline's checks (3 to 5 s of quiet two-foot stance).
    """

    duration_s: float = 30.0
    countdown_s: float = 3.0
    eyes: str = "open"
    surface: str = "firm"
    stance_lost_s: float = 0.3
    baseline: BaselineConfig = field(default_factory=BaselineConfig)

    def __post_init__(self) -> None:
        for name, lo, hi in (("duration_s", 5.0, 600.0), ("countdown_s", 0.0, 30.0), ("stance_lost_s", 0.0, 5.0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
                raise ValueError(f"{name} must be a number between {lo:g} and {hi:g}, got {value!r}")
        if self.eyes not in EYES:
            raise ValueError(f"eyes must be 'open' or 'closed', got {self.eyes!r}")
        if self.surface not in SURFACES:
            raise ValueError(f"surface must be 'firm' or 'foam', got {self.surface!r}")

    @property
    def conditions(self) -> dict[str, str]:
        return {"eyes": self.eyes, "surface": self.surface}

    def to_metadata(self) -> dict[str, str]:
        return config_to_metadata(self, prefix=METADATA_PREFIX)

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> QuietStanceConfig:
        return config_from_metadata(cls, metadata, prefix=METADATA_PREFIX)


@dataclass(frozen=True)
class QuietStanceOutcome:
    """What the quiet-stance runner found: the recorded window ``start_s``..``end_s`` (frame clock)."""

    state: str
    end_reason: str
    config: QuietStanceConfig
    baseline: BaselineResult | None
    start_s: float | None
    end_s: float | None

    @property
    def conditions(self) -> dict[str, str]:
        return self.config.conditions

    @property
    def completed(self) -> bool:
        return self.state == QuietState.DONE.value


class QuietStanceRunner(RunnerBase):
    """The quiet two-foot stance test, frame by frame (see the module notes).

    Parameters
    ----------
    geometry : PlateGeometry
        Where the footprints are.
    config : QuietStanceConfig
        Duration, conditions (eyes, surface) and checks.

    Feed frames with :meth:`update` until :attr:`finished`; the frames for which
    :attr:`frame_in_trial` is true after the call form the trial's recording.
    """

    protocol = "quiet-stance"

    def __init__(self, *, geometry: PlateGeometry | None = None, config: QuietStanceConfig | None = None) -> None:
        self.geometry = geometry if geometry is not None else PlateGeometry()
        self.config = config if config is not None else QuietStanceConfig()
        self.state = QuietState.WAITING
        self.events: list[ProtocolEvent] = []
        self.message = "Step on the plate with both feet on the footprints."
        self.end_reason = ""
        self.frame_in_trial = False
        self.skipped_frames = 0
        self._detector = BaselineDetector(self.config.baseline, self.geometry)
        self._baseline: BaselineResult | None = None
        self._problem_code: str | None = None
        self._last_t: float | None = None
        self._countdown_t0 = 0.0
        self._countdown_left: int | None = None
        self._start_s: float | None = None
        self._end_s: float | None = None
        self._lost_since: float | None = None

    @property
    def finished(self) -> bool:
        return self.state in (QuietState.DONE, QuietState.ABORTED)

    def metadata(self) -> dict[str, str]:
        """Recording metadata: protocol, the conditions (``eyes``, ``surface``) and every setting."""
        return {"protocol": self.protocol, **self.config.conditions, **self.config.to_metadata()}

    def status(self) -> dict[str, Any]:
        t = self._last_t
        elapsed = None
        if self._start_s is not None and t is not None:
            elapsed = min((self._end_s if self._end_s is not None else t) - self._start_s, self.config.duration_s)
        return {
            "protocol": self.protocol,
            "state": self.state.value,
            "message": self.message,
            "t_s": t,
            "conditions": self.config.conditions,
            "body_weight_n": None if self._baseline is None else self._baseline.body_weight_n,
            "countdown_remaining_s": self._countdown_left if self.state is QuietState.COUNTDOWN else None,
            "recorded_s": elapsed,
            "duration_s": self.config.duration_s,
        }

    def outcome(self) -> QuietStanceOutcome:
        return QuietStanceOutcome(state=self.state.value, end_reason=self.end_reason, config=self.config,
                                  baseline=self._baseline, start_s=self._start_s, end_s=self._end_s)

    # -- driving ---------------------------------------------------------------------------
    def update(self, frame: Any) -> list[ProtocolEvent]:
        """Feed one frame (``t_s``, ``fz_n``, ``cop_ml_mm``); return its events."""
        self.frame_in_trial = False
        if self.finished:
            return []
        t = float(frame.t_s)
        if not math.isfinite(t) or (self._last_t is not None and not t > self._last_t):
            self.skipped_frames += 1
            return []
        self._last_t = t
        fz = float(frame.fz_n)
        x = float(frame.cop_ml_mm) if fz >= self.config.baseline.occupancy_n else math.nan
        events: list[ProtocolEvent] = []
        if self.state in (QuietState.WAITING, QuietState.BASELINE):
            self._on_baseline(t, fz, x, events)
        if self.state is QuietState.COUNTDOWN:
            self._on_countdown(t, fz, x, events)
        if self.state is QuietState.RECORDING:
            self._on_recording(t, x, events)
        self.events.extend(events)
        return events

    def abort(self, reason: str = "aborted by the operator", *, t_s: float | None = None) -> list[ProtocolEvent]:
        if self.finished:
            return []
        t = t_s if t_s is not None else (self._last_t if self._last_t is not None else 0.0)
        events: list[ProtocolEvent] = []
        self._abort(reason, t, events)
        self.events.extend(events)
        return events

    def _abort(self, reason: str, t: float, events: list[ProtocolEvent]) -> None:
        self.end_reason = reason
        self._set_state(QuietState.ABORTED, t, events)
        self.message = f"Test aborted: {reason.rstrip('.')}."
        events.append(Aborted(t_s=t, reason=reason, message=self.message))

    def finish(self) -> list[ProtocolEvent]:
        """No more frames: a trial not recorded to its end is aborted."""
        if self.finished:
            return []
        if self.state is QuietState.RECORDING:
            reason = "the frames ended before the end of the recording window"
        elif self._baseline is None:
            problem = self._detector.problem
            reason = "no body-weight baseline" + (f": {problem[1].rstrip('.')}" if problem else "")
        else:
            reason = "the frames ended during the countdown"
        return self.abort(reason)

    # -- states ---------------------------------------------------------------------------------
    def _on_baseline(self, t: float, fz: float, x: float, events: list[ProtocolEvent]) -> None:
        result = self._detector.push(t, fz, x)
        problem = self._detector.problem
        if result is not None:
            self._baseline = result
            self._set_state(QuietState.BASELINE, t, events)
            self._baseline_done(t, result, events)
            self._start_countdown(t, QuietState.COUNTDOWN, events)
            eyes = "eyes closed" if self.config.eyes == "closed" else "eyes open, looking ahead"
            self._instruct(t, "get_ready", f"Stand still on both feet, {eyes}, arms by your sides.", events)
            return
        self._show_baseline_problem(t, problem, events, measuring=QuietState.BASELINE, waiting=QuietState.WAITING)

    def _on_countdown(self, t: float, fz: float, x: float, events: list[ProtocolEvent]) -> None:
        if math.isnan(x):  # the plate emptied: start again
            self._baseline = None
            self._detector.reset()
            self._problem_code = None
            self._on_baseline(t, fz, x, events)
            return
        if self._count_down(t, self.config.countdown_s, events):
            self._set_state(QuietState.RECORDING, t, events)
            self._start_s = t
            self._instruct(t, "record", f"Recording {self.config.duration_s:g} s: stand still.", events)

    def _on_recording(self, t: float, x: float, events: list[ProtocolEvent]) -> None:
        c = self.config
        assert self._start_s is not None
        if t >= self._start_s + c.duration_s:
            self._end_s = self._start_s + c.duration_s
            self.end_reason = "recording complete"
            self._set_state(QuietState.DONE, t, events)
            self.message = f"Done: {c.duration_s:g} s recorded (eyes {c.eyes}, {c.surface} surface)."
            events.append(Finished(t_s=self._end_s, completed=True, hold_time_s=None, reason=self.end_reason,
                                   message=self.message))
            return
        into = t - self._start_s
        if math.isnan(x):
            self._abort(f"stepped off the plate {into:.1f} s into the recording", t, events)
            return
        shares = [foot_share_pct(x, side=s, geometry=self.geometry) for s in SIDES]
        if min(shares) < c.baseline.min_foot_share_pct:
            if self._lost_since is None:
                self._lost_since = t
            if t - self._lost_since >= c.stance_lost_s:
                self._abort(f"lost two-foot stance (a step or a foot lifted) {self._lost_since - self._start_s:.1f} s "
                            "into the recording", t, events)
                return
        else:
            self._lost_since = None
        self.frame_in_trial = True
