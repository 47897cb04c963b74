"""What every protocol runner shares: its state, its current instruction, the baseline report."""

from __future__ import annotations

import enum
import math

from station.core.cop import GRAVITY_M_S2
from station.protocols.baseline import BaselineResult
from station.protocols.events import BaselineDone, Countdown, Instruction, ProtocolEvent, StateChanged


class RunnerBase:
    """Mixin for the runners: ``state`` (an enum), ``message`` (the instruction on screen), the
    code of the baseline problem shown (``_problem_code``) and the countdown's start and last
    second shown (``_countdown_t0``, ``_countdown_left``)."""

    state: enum.Enum
    message: str
    _problem_code: str | None
    _countdown_t0: float
    _countdown_left: int | None

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

    def _show_baseline_problem(self, t: float, problem: tuple[str, str] | None, events: list[ProtocolEvent], *,
                               measuring: enum.Enum, waiting: enum.Enum) -> None:
        """While the baseline is not done: 'measuring' when the plate is fine, else the problem, each once."""
        if problem is None:
            if self.state is not measuring or self._problem_code is not None:
                self._set_state(measuring, t, events)
                self._problem_code = None
                self._instruct(t, "baseline", "Stand still on both feet: measuring the body weight.", events)
        elif problem[0] != self._problem_code or self.state is not waiting:
            self._set_state(waiting, t, events)
            self._problem_code = problem[0]
            self._instruct(t, problem[0], problem[1], events)

    def _start_countdown(self, t: float, state: enum.Enum, events: list[ProtocolEvent]) -> None:
        self._set_state(state, t, events)
        self._countdown_t0 = t
        self._countdown_left = None

    def _count_down(self, t: float, countdown_s: float, events: list[ProtocolEvent]) -> bool:
        """Emit each new second of the countdown; True once it is over."""
        elapsed = t - self._countdown_t0
        if elapsed >= countdown_s:
            return True
        left = math.ceil(countdown_s - elapsed - 1e-9)
        if left != self._countdown_left:
            self._countdown_left = left
            events.append(Countdown(t_s=t, remaining_s=left, message=f"{left}"))
        return False
