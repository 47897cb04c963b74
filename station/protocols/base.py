"""What every protocol runner shares: its state, its current instruction, the baseline report."""

from __future__ import annotations

import enum

from station.cop import GRAVITY_M_S2
from station.protocols.baseline import BaselineResult
from station.protocols.events import BaselineDone, Instruction, ProtocolEvent, StateChanged


class RunnerBase:
    """Mixin for the runners: ``state`` (an enum) and ``message`` (the instruction on screen)."""

    state: enum.Enum
    message: str

    def _set_state(self, state: enum.Enum, t: float, events: list[ProtocolEvent]) -> None:
        if state is self.state:
            return
        events.append(StateChanged(t_s=t, state=state.value, previous=self.state.value,
                                   message=f"{self.state.value} -> {state.value}"))
        self.state = state

    def _instruct(self, t: float, code: str, message: str, events: list[ProtocolEvent]) -> None:
        self.message = message
        events.append(Instruction(t_s=t, code=code, message=message))

    @staticmethod
    def _baseline_done(t: float, result: BaselineResult, events: list[ProtocolEvent]) -> None:
        events.append(BaselineDone(t_s=t, body_weight_n=result.body_weight_n, start_s=result.start_s,
                                   end_s=result.end_s,
                                   message=f"Body weight {result.body_weight_n / GRAVITY_M_S2:.1f} kg."))
