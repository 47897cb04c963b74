"""A test on the live station: the trial's frames fed to its runner as they arrive, then scored.

:class:`LiveTrial` subscribes to the live station's frames and feeds a
:class:`~station.protocols.trial.TrialCapture` (the frames in their recorded
form); its result is :func:`station.scoring.analyze.score_runner` on the
trial's recording, so the live test reports what ``analyze`` prints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from station.core.geometry import PlateGeometry
from station.protocols.events import ProtocolEvent
from station.protocols.trial import Runner, TrialCapture
from station.scoring.analyze import score_capture

__all__ = ["LiveTrial"]


class LiveTrial:
    """A test on the live station: subscribes to its frames and feeds a :class:`TrialCapture`.

    The caller owns the loop (a thread of the web server or the screen's main
    loop) and calls :meth:`poll` until :attr:`finished`::

        trial = LiveTrial(live, SingleLegRunner(stance_side="left", geometry=g), target=path)
        while not trial.finished:
            for event in trial.poll(timeout_s=0.1):
                show(event)
        result = trial.result()

    While the trial runs the station does not re-zero the plate
    (:meth:`station.live.pipeline.LiveStation.trial_started`). With ``pelvis``
    (the pelvis sensor, :class:`station.protocols.trial.PelvisLookup`) the
    recording carries ``pelvis_obliquity_deg``.
    """

    def __init__(self, live: Any, runner: Runner, *, geometry: PlateGeometry,
                 metadata: Mapping[str, object] | None = None, target: str | Path | IO[str] | None = None,
                 on_keep: Callable[..., None] | None = None, pelvis: Any = None) -> None:
        self.live = live
        rate = float(live.feed.info.get("nominal_rate_hz") or 80.0)
        self.capture = TrialCapture(runner, geometry=geometry, sample_rate_hz=rate, metadata=metadata, target=target,
                                    on_keep=on_keep, pelvis=pelvis)
        self._sub = live.subscribe()
        live.trial_started()
        self._open = True

    @property
    def runner(self) -> Runner:
        return self.capture.runner

    @property
    def finished(self) -> bool:
        return self.capture.finished

    @property
    def overflowed(self) -> int:
        """Frames the subscription dropped because the loop fell behind (should stay 0)."""
        return self._sub.overflowed

    def poll(self, *, timeout_s: float = 0.1) -> list[ProtocolEvent]:
        """Feed the frames that arrived (waiting up to ``timeout_s`` for the first); return their events."""
        events: list[ProtocolEvent] = []
        if not self._open:
            return events
        for frame in self._sub.get_all(timeout_s=timeout_s):
            events += self.capture.push(frame)
            if self.capture.finished:
                break
        self.capture.drain_pelvis()  # rows whose pelvis sample arrived since
        if self.capture.finished:
            self.close()
        return events

    def abort(self, reason: str = "aborted by the operator") -> list[ProtocolEvent]:
        events = self.capture.abort(reason)
        self.close()
        return events

    def close(self) -> None:
        """Stop listening, let the station re-zero again, close the file. Idempotent.

        With the pelvis sensor, the last rows first wait (at most ``PELVIS_WAIT_S``) for its samples."""
        self.capture.finish_pelvis()
        if self._open:
            self._open = False
            self.live.unsubscribe(self._sub)
            self.live.trial_ended()
        self.capture.close()

    def result(self, *, lowpass_hz: float | None = 10.0) -> dict[str, Any]:
        """The scored result, exactly as ``balance-station analyze`` gives it for the trial's recording.

        Raises
        ------
        ValueError
            The runner has not finished, or was aborted (nothing to score).
        """
        return score_capture(self.capture, lowpass_hz=lowpass_hz)

