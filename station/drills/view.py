"""What a drill shows: a plain, frozen description of the screen, built by the drill, drawn by pygame.

The drill engine (:mod:`station.drills`) is pure: it is fed force frames and
returns events. The patient screen asks it for a :class:`DrillView` once per
screen frame and draws it; the screen never computes a score or moves a
target itself, so a drill played from a recording or in a test shows the
same thing. The cursor is *not* in the view: the screen draws it from the
newest live frame, so that it lags the plate by at most one screen frame.

Positions are plate coordinates in mm (DESIGN.md section 3: x medio-lateral,
positive to the patient's right; y antero-posterior, positive forward).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Cue", "DrillView", "Metronome", "ShareBars", "SummaryLine", "Target", "Zone"]

TargetState = Literal["pending", "active", "hit", "missed"]
FeedbackMode = Literal["continuous", "intermittent", "summary"]
DrillState = Literal["waiting", "ready", "running", "round_summary", "done", "aborted"]
#: sounds the screen plays: a target reached, a target missed, a balance lost (gentle), a metronome beat,
#: the end of a round, a streak bonus
Cue = Literal["hit", "miss", "lost_balance", "beat", "round_end", "streak"]


@dataclass(frozen=True, slots=True)
class Target:
    """A circle to move the centre of pressure into (and hold there)."""

    x_mm: float
    y_mm: float
    radius_mm: float
    state: TargetState = "pending"
    #: how much of the required hold time is done, 0 to 1
    hold_progress: float = 0.0


@dataclass(frozen=True, slots=True)
class Zone:
    """A rectangle the COP must stay in (single-leg hold); ``inside`` says whether it is now."""

    x_mm: float
    y_mm: float
    half_width_mm: float
    half_height_mm: float
    inside: bool = True


@dataclass(frozen=True, slots=True)
class ShareBars:
    """The weight split as two bars (symmetry drill): the share on the left foot now and its target."""

    left_pct: float
    target_left_pct: float
    tolerance_pct: float
    within: bool = False


@dataclass(frozen=True, slots=True)
class Metronome:
    """The pacer of the rhythmic shift: where the COP should be now, on which axis."""

    axis: Literal["ml", "ap"]
    #: the paced position now, in mm along ``axis`` (the screen draws a moving marker there)
    pace_mm: float
    amplitude_mm: float
    period_s: float
    #: phase of the current cycle, 0 to 1
    phase: float


@dataclass(frozen=True, slots=True)
class SummaryLine:
    """One line of a round summary: a label, a value with its unit, and whether it is good news."""

    label: str
    value: str
    good: bool | None = None


@dataclass(frozen=True, slots=True)
class DrillView:
    """Everything the screen draws for a drill at one moment."""

    drill: str
    title: str
    #: one short sentence for the patient, large on the screen
    instruction: str
    state: DrillState
    elapsed_s: float
    duration_s: float
    feedback: FeedbackMode = "continuous"
    #: whether the cursor is shown now (faded feedback hides it part or all of the time)
    cursor_visible: bool = True
    targets: tuple[Target, ...] = ()
    zone: Zone | None = None
    bars: ShareBars | None = None
    metronome: Metronome | None = None
    score: int = 0
    streak: int = 0
    best_streak: int = 0
    level: int = 1
    round_index: int = 0
    rounds: int = 1
    #: the round summary (state ``round_summary`` or ``done``)
    summary: tuple[SummaryLine, ...] = field(default_factory=tuple)
