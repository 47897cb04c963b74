"""Scoring of a recording: the ``balance-station analyze`` command (DESIGN.md section 5).

Pipeline, the same for every protocol:

1. forces per corner, as recorded (:mod:`station.core.recording`);
2. resampled onto the nominal rate ``sample_rate_hz`` by linear interpolation
   (:func:`station.signal.resample.resample_uniform`). This is done *always*, not only
   when the timing is irregular: one code path, and for a recording already on
   its nominal grid it returns the samples unchanged (to the rounding of the
   time stamps), so nothing is lost;
3. Fz and COP from the resampled forces (:func:`station.core.cop.centre_of_pressure`);
4. zero-phase 4th-order Butterworth low-pass of COP and Fz at ``lowpass_hz``
   (:func:`station.signal.filters.lowpass_zero_phase`; ``None`` = off, the samples as
   they are);
5. the protocol's scorer (:data:`SCORERS`): for quiet stance, the COP metrics of
   :func:`station.signal.metrics.cop_metrics` over the whole trial; for single-leg,
   :func:`station.scoring.scores.score_single_leg_recording`: the live test's runner
   fed the samples as recorded (onset, touchdowns, support), then steps 2-4
   applied to each window it found (docs/protocols.md).

Every problem the user can fix is an :class:`AnalysisError` (one line naming
the file); the output is a JSON-ready dict with no NaN (``None`` for unknown).

References
----------
.. [1] Prieto TE et al. (1996) Measures of postural steadiness. IEEE Trans
   Biomed Eng 43:956-966.
.. [2] Duarte M, Freitas SMSF (2010) Revision of posturography based on force
   plate for balance evaluation. Rev Bras Fisioter 14:183-192.
.. [3] Scoppa F et al. (2013) Clinical stabilometry standardization
   (DESIGN.md section 7: trials of at least 25 s, at least 50 Hz).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from station.core.jsonclean import json_ready
from station.core.recording import Recording, read_recording
from station.protocols.single_leg import SingleLegRunner
from station.scoring.prepare import (
    DEFAULT_LOWPASS_HZ,
    MIN_DURATION_S,
    RECOMMENDED_DURATION_S,
    STANCE_SIDES,
    AnalysisError,
    UniformTrial,
    prepare_trial,
    score_quiet_stance,
)
from station.scoring.scores import quiet_stance_result, score_single_leg_recording, single_leg_result

__all__ = [
    "AnalysisError",
    "DEFAULT_LOWPASS_HZ",
    "MIN_DURATION_S",
    "RECOMMENDED_DURATION_S",
    "SCORERS",
    "UniformTrial",
    "analyze_file",
    "analyze_recording",
    "json_ready",
    "prepare_trial",
    "score_quiet_stance",
    "score_capture",
    "score_runner",
]

Scorer = Callable[..., dict[str, Any]]


def score_single_leg(rec: Recording, *, stance_side: str | None, lowpass_hz: float | None) -> dict[str, Any]:
    """Single-leg (Trendelenburg) test: the live test's runner fed the recording frame by frame, then its scoring.

    See :func:`station.scoring.scores.score_single_leg_recording` (onset, hold time,
    touchdowns, hand support, lateral offset, COP metrics over the hold).
    """

    return score_single_leg_recording(rec, stance_side=stance_side, lowpass_hz=lowpass_hz)


#: Protocol name (as on the command line) -> scorer. A scorer takes the
#: recording and the keyword arguments ``stance_side`` and ``lowpass_hz`` and
#: returns the output fields after ``protocol`` and ``stance_side``.
SCORERS: dict[str, Scorer] = {
    "quiet-stance": score_quiet_stance,
    "single-leg": score_single_leg,
}


def score_runner(runner: Any, recording: Recording, *, lowpass_hz: float | None) -> dict[str, Any]:
    """A live trial's result, exactly as ``balance-station analyze`` prints it for the same recording.

    Single-leg: :func:`station.scoring.scores.single_leg_result` on the runner's
    outcome. Quiet stance: :func:`station.scoring.scores.quiet_stance_result` (the
    quiet-stance metrics of the recorded window, with the conditions). This is
    where the guarantee "live equals analyze" lives: the same scorers, fed the
    same frames.
    """
    if isinstance(runner, SingleLegRunner):
        return single_leg_result(recording, runner.outcome(), lowpass_hz=lowpass_hz)
    return quiet_stance_result(recording, runner.outcome(), lowpass_hz=lowpass_hz)


def score_capture(capture: Any, *, lowpass_hz: float | None = DEFAULT_LOWPASS_HZ) -> dict[str, Any]:
    """A finished :class:`~station.protocols.trial.TrialCapture`'s result (:func:`score_runner` on its recording).

    Raises
    ------
    ValueError
        The runner has not finished, or was aborted (nothing to score).
    """
    return score_runner(capture.runner, capture.finished_recording(), lowpass_hz=lowpass_hz)


# -- entry points -------------------------------------------------------------------------


def analyze_recording(
    rec: Recording,
    *,
    protocol: str,
    stance_side: str | None = None,
    lowpass_hz: float | None = DEFAULT_LOWPASS_HZ,
) -> dict[str, Any]:
    """Score a recording.

    Parameters
    ----------
    rec : Recording
        The recording.
    protocol : str
        ``"quiet-stance"`` or ``"single-leg"`` (the keys of :data:`SCORERS`).
    stance_side : {"left", "right"} or None
        The standing leg, for single-leg; reported as given (``None`` -> null).
    lowpass_hz : float or None
        Cut-off of the zero-phase 4th-order Butterworth low-pass applied to the
        COP and Fz, in Hz (default 10); ``None`` analyses the samples as they are.

    Returns
    -------
    dict
        ``protocol``, ``stance_side``, then the scorer's fields (DESIGN.md
        section 5), with no NaN: ready for ``json.dump(allow_nan=False)``.

    Raises
    ------
    AnalysisError
        Unknown protocol or stance side, bad cut-off, and the scorer's refusals.

    References
    ----------
    .. [1] Duarte M, Freitas SMSF (2010) Rev Bras Fisioter 14:183-192
       (DESIGN.md section 7).
    """
    scorer = SCORERS.get(protocol)
    if scorer is None:
        raise AnalysisError(f"{rec.name}: unknown protocol {protocol!r} (choose from {', '.join(SCORERS)})")
    if stance_side is not None and stance_side not in STANCE_SIDES:
        raise AnalysisError(f"{rec.name}: stance side must be 'left' or 'right', got {stance_side!r}")
    if lowpass_hz is not None:
        if isinstance(lowpass_hz, bool) or not isinstance(lowpass_hz, (int, float, np.integer, np.floating)):
            raise AnalysisError(f"{rec.name}: the low-pass cut-off must be a number of Hz or off, got {lowpass_hz!r}")
        lowpass_hz = float(lowpass_hz)
        if not (math.isfinite(lowpass_hz) and lowpass_hz > 0):
            raise AnalysisError(f"{rec.name}: the low-pass cut-off must be a positive number of Hz, got {lowpass_hz!r}")
    skipped_filter = None
    if lowpass_hz == DEFAULT_LOWPASS_HZ and not lowpass_hz < rec.sample_rate_hz / 2:
        # any rate from 10 Hz must be accepted (DESIGN.md section 4): the default cut-off gives way
        skipped_filter = (f"the default {DEFAULT_LOWPASS_HZ:g} Hz low-pass was not applied: it needs a sample rate "
                          f"above {2 * DEFAULT_LOWPASS_HZ:g} Hz, this recording has {rec.sample_rate_hz:g} Hz")
        lowpass_hz = None
    result: dict[str, Any] = {"protocol": protocol, "stance_side": stance_side}
    result.update(scorer(rec, stance_side=stance_side, lowpass_hz=lowpass_hz))
    if skipped_filter:
        result["warnings"] = [skipped_filter, *result.get("warnings", [])]
    return json_ready(result)


def analyze_file(
    path: str | Path,
    *,
    protocol: str,
    stance_side: str | None = None,
    lowpass_hz: float | None = DEFAULT_LOWPASS_HZ,
) -> dict[str, Any]:
    """Read a recording file and score it (``balance-station analyze``).

    Parameters
    ----------
    path : str or Path
        The recording file (DESIGN.md section 4).
    protocol, stance_side, lowpass_hz
        As for :func:`analyze_recording`.

    Returns
    -------
    dict
        As :func:`analyze_recording`.

    Raises
    ------
    station.core.recording.RecordingError
        The file is missing or malformed.
    AnalysisError
        It cannot be scored.
    """
    return analyze_recording(read_recording(path), protocol=protocol, stance_side=stance_side, lowpass_hz=lowpass_hz)
