"""Test protocols as pure state machines fed by force frames: the single-leg test and quiet stance.

A runner takes force frames one at a time (:meth:`update`), keeps time by the
frames' own ``t_s`` and returns plain event dataclasses for the screen and the
web page; it draws nothing, reads no clock and writes no file. The live
station and ``balance-station analyze`` drive the same runner with the same
frames (:mod:`station.protocols.trial`), and the same functions score them
(:mod:`station.scoring.scores`).

Modules: :mod:`~station.protocols.single_leg` (the 30 s single-leg test),
:mod:`~station.protocols.quiet_stance` (30 s quiet two-foot stance with
conditions), :mod:`~station.protocols.baseline` (body weight from quiet
two-foot stance, shared), :mod:`~station.protocols.events` (the events),
:mod:`~station.clinic.single_leg_pair` (left and right in one session, repeats),
:mod:`~station.protocols.trial` (feeding a runner live or from a recording),
:mod:`~station.protocols.config` (settings in the recording's metadata).
"""

from station.protocols.baseline import BaselineConfig
from station.protocols.events import ProtocolEvent
from station.protocols.quiet_stance import QuietStanceConfig, QuietStanceRunner, QuietState
from station.protocols.single_leg import SingleLegConfig, SingleLegOutcome, SingleLegRunner, State

__all__ = [
    "BaselineConfig",
    "ProtocolEvent",
    "QuietStanceConfig",
    "QuietStanceRunner",
    "QuietState",
    "SingleLegConfig",
    "SingleLegOutcome",
    "SingleLegRunner",
    "State",
]
