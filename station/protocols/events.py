"""Events the protocol runners emit, as plain frozen dataclasses for the screen and the web page.

Every event carries ``t_s``, the time it refers to on the frames' own clock
(for a touchdown: when the foot landed, found after the fact), and ``message``,
one line for the clinician or the patient. :meth:`ProtocolEvent.to_dict`
gives a JSON-ready dict with a ``kind`` key naming the event.

Events that are found after the fact (the lift-off, a touchdown, hand support)
also carry ``detected_s``, the time of the frame that confirmed them: the
difference is the detection delay the live screen sees.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

__all__ = [
    "Aborted",
    "BaselineDone",
    "Countdown",
    "Finished",
    "Instruction",
    "LiftOff",
    "ProtocolEvent",
    "StateChanged",
    "SupportEnd",
    "SupportStart",
    "TouchdownEnd",
    "TouchdownStart",
    "WrongSide",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtocolEvent:
    """Base of every event: when (``t_s``, frame clock) and a one-line ``message``."""

    kind: ClassVar[str] = "event"
    t_s: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        """The event's fields and ``kind``, JSON-ready."""
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True, slots=True, kw_only=True)
class StateChanged(ProtocolEvent):
    """The runner moved from ``previous`` to ``state`` (the values of the runner's ``State``)."""

    kind: ClassVar[str] = "state"
    state: str
    previous: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Instruction(ProtocolEvent):
    """What to tell the patient now. ``code`` names the situation for a screen that words it itself.

    Codes: ``nobody`` (the plate is empty), ``partial_load`` (too light, or
    far from the patient's known weight), ``one_foot`` (the weight is under one
    footprint), ``unsteady`` (the force moves too much for a baseline),
    ``baseline`` (measuring the body weight), ``get_ready`` (the countdown
    starts), ``lift`` (lift the foot now), ``put_down`` (a lift on the wrong
    side), ``hold`` (the hold runs), ``record`` (quiet stance runs).
    """

    kind: ClassVar[str] = "instruction"
    code: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BaselineDone(ProtocolEvent):
    """The body weight was measured on ``start_s``..``end_s`` of quiet two-foot stance."""

    kind: ClassVar[str] = "baseline_done"
    body_weight_n: float
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Countdown(ProtocolEvent):
    """``remaining_s`` whole seconds before the patient is asked to act (3, 2, 1)."""

    kind: ClassVar[str] = "countdown"
    remaining_s: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LiftOff(ProtocolEvent):
    """The lifted foot left the ground at ``t_s``: single-leg stance on ``stance_side`` began."""

    kind: ClassVar[str] = "lift_off"
    stance_side: str
    detected_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class WrongSide(ProtocolEvent):
    """The patient stood on ``stance_side`` although the test asked for ``expected``: refused."""

    kind: ClassVar[str] = "wrong_side"
    stance_side: str
    expected: str
    detected_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TouchdownStart(ProtocolEvent):
    """The lifted foot landed at ``t_s``, ``where`` is ``plate`` or ``floor``."""

    kind: ClassVar[str] = "touchdown"
    where: str
    detected_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TouchdownEnd(ProtocolEvent):
    """The foot that landed at ``start_s`` is up again at ``t_s``."""

    kind: ClassVar[str] = "touchdown_end"
    where: str
    start_s: float
    duration_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SupportStart(ProtocolEvent):
    """Hand support began at ``t_s``: sustained unloading of ``pct_bw`` % of body weight so far."""

    kind: ClassVar[str] = "support"
    pct_bw: float
    detected_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SupportEnd(ProtocolEvent):
    """Hand support that began at ``start_s`` ended at ``t_s``; its mean unloading in % of body weight."""

    kind: ClassVar[str] = "support_end"
    start_s: float
    duration_s: float
    mean_pct_bw: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Finished(ProtocolEvent):
    """The test is over. ``reason`` says why it ended; ``hold_time_s`` is None for quiet stance."""

    kind: ClassVar[str] = "finished"
    completed: bool
    hold_time_s: float | None
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Aborted(ProtocolEvent):
    """The test was abandoned (by the operator, or it could not be run); nothing is scored."""

    kind: ClassVar[str] = "aborted"
    reason: str
