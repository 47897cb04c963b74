"""What the trial controller shows of its trial (:meth:`TrialController.snapshot`): frozen, typed values.

The screen, the start button, the web page and the visit read the attributes; the HTTP API sends
:meth:`TrialSnapshot.as_dict`, whose keys and values are the API's contract (``GET /api/v1/tests/current``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class SingleLegStatus:
    """The single-leg runner's status (:meth:`station.protocols.single_leg.SingleLegRunner.status`)."""

    protocol: str
    stance_side: str
    state: str
    message: str
    t_s: float | None
    body_weight_n: float | None
    baseline_collected_s: float | None
    countdown_remaining_s: int | None
    onset_s: float | None
    hold_elapsed_s: float | None
    hold_s: float
    touchdowns: int
    touchdown_now: str | None
    supported_now: bool


@dataclass(frozen=True)
class QuietStanceStatus:
    """The quiet-stance runner's status (:meth:`station.protocols.quiet_stance.QuietStanceRunner.status`)."""

    protocol: str
    state: str
    message: str
    t_s: float | None
    conditions: dict[str, str]
    body_weight_n: float | None
    countdown_remaining_s: int | None
    recorded_s: float | None
    duration_s: float


@dataclass(frozen=True)
class DrillStatus:
    """A drill's status (its :class:`~station.drills.view.DrillView` in short)."""

    protocol: str
    state: str
    message: str
    score: int
    streak: int
    level: int
    round_index: int
    rounds: int
    elapsed_s: float
    duration_s: float


TrialStatus = SingleLegStatus | QuietStanceStatus | DrillStatus


@dataclass(frozen=True)
class PelvisNow:
    """The pelvis for the screen's gauge (``drop_deg``: the lifted side's drop below its level, positive =
    lower; None before the level is known); all None but the threshold while the sensor has no value."""

    obliquity_deg: float | None
    drop_deg: float | None
    threshold_deg: float


@dataclass(frozen=True)
class TrialSnapshot:
    """The trial now. ``outcome`` and ``detail`` are set once a trial has ended and been stored (or not:
    ``stored``); ``events`` are the newest ones kept, ``event_count`` all of the trial's so far."""

    running: bool = False
    trial_id: int | None = None
    patient: str | None = None
    protocol: str | None = None
    stance_side: str | None = None
    state: str = "idle"
    instruction: str = ""
    elapsed_s: float = 0.0
    status: TrialStatus | None = None
    result: dict[str, Any] | None = None
    stored: bool | None = None
    error: str = ""
    started_at: float | None = None
    offline: bool = False
    pelvis: PelvisNow | None = None
    outcome: str | None = None
    detail: str | None = None
    events: tuple[dict[str, Any], ...] = ()
    event_count: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The JSON of the HTTP API: ``status`` is ``{}`` when idle, ``outcome`` and ``detail`` are there only
        once the trial has ended."""
        d: dict[str, Any] = {
            "running": self.running, "trial_id": self.trial_id, "patient": self.patient, "protocol": self.protocol,
            "stance_side": self.stance_side, "state": self.state, "instruction": self.instruction,
            "elapsed_s": self.elapsed_s, "status": asdict(self.status) if self.status is not None else {},
            "result": self.result, "stored": self.stored, "error": self.error, "started_at": self.started_at,
            "offline": self.offline, "pelvis": asdict(self.pelvis) if self.pelvis is not None else None,
        }
        if self.outcome is not None:
            d["outcome"] = self.outcome
            d["detail"] = self.detail
        d["events"] = list(self.events)
        d["event_count"] = self.event_count
        return d
