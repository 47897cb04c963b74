"""Steps 1-4 of the analysis (:mod:`station.scoring.analyze`): a recording on its nominal grid, and
the quiet-stance scorer.

Every problem the user can fix is an :class:`AnalysisError` (one line naming the file).

References
----------
.. [1] Prieto TE et al. (1996) Measures of postural steadiness. IEEE Trans
   Biomed Eng 43:956-966.
.. [2] Scoppa F et al. (2013) Clinical stabilometry standardization
   (DESIGN.md section 7: trials of at least 25 s, at least 50 Hz).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from station.core.cop import DEFAULT_OCCUPANCY_N, centre_of_pressure
from station.core.errors import UserError
from station.core.geometry import PlateGeometry
from station.core.recording import Recording
from station.core.sides import SIDES
from station.signal.filters import lowpass_zero_phase
from station.signal.metrics import cop_metrics
from station.signal.resample import resample_uniform

DEFAULT_LOWPASS_HZ = 10.0
#: Shorter analysed signals are refused.
MIN_DURATION_S = 5.0
#: Shorter quiet-stance trials are scored with a warning (Scoppa et al. 2013).
RECOMMENDED_DURATION_S = 25.0
#: Slower recordings are scored with a warning (Scoppa et al. 2013).
RECOMMENDED_RATE_HZ = 50.0
#: A gap between time stamps longer than this many nominal periods is reported.
GAP_WARNING_PERIODS = 5
#: A mean rate from the time stamps further than this from the nominal one is reported.
RATE_MISMATCH_WARNING = 0.02

STANCE_SIDES = SIDES


class AnalysisError(UserError):
    """A recording cannot be scored (nobody on the plate, too short, ...).

    The message is one line naming the file and the problem.
    """


@dataclass(frozen=True, eq=False)
class UniformTrial:
    """A recording's forces on the uniform nominal grid, ready for scoring.

    Attributes
    ----------
    name : str
        The recording's name (path), for messages.
    t_s : ndarray, shape (m,)
        Uniform times in s, from the first recorded time.
    forces_n : ndarray, shape (m, 4)
        Corner forces in N, interpolated at ``t_s``.
    fs_hz : float
        The nominal rate the grid uses, in Hz.
    geometry : PlateGeometry
        The recording's plate.
    warnings : tuple of str
        Timing notes found while resampling.
    """

    name: str
    t_s: np.ndarray
    forces_n: np.ndarray
    fs_hz: float
    geometry: PlateGeometry
    warnings: tuple[str, ...] = ()

    @property
    def n_samples(self) -> int:
        return int(self.t_s.size)

    @property
    def duration_s(self) -> float:
        """``n_samples / fs_hz``: the duration the metrics use (DESIGN.md section 5)."""
        return self.n_samples / self.fs_hz


def prepare_trial(rec: Recording) -> UniformTrial:
    """Resample a recording's forces onto its nominal rate (pipeline step 2).

    Parameters
    ----------
    rec : Recording
        The recording.

    Returns
    -------
    UniformTrial
        With warnings when the time stamps disagree with the nominal rate by
        more than 2 %, when a gap longer than 5 nominal periods was bridged by
        interpolation, or when the nominal rate is below 50 Hz.
    """
    fs = rec.sample_rate_hz
    actual_hz = (rec.n_samples - 1) / rec.span_s
    if not 0.5 <= actual_hz / fs <= 2.0:
        # checked before resampling: t_s in ms or us would otherwise ask for a grid of gigabytes
        raise AnalysisError(
            f"{rec.name}: the time stamps give {actual_hz:.4g} samples per second but the file says "
            f"sample_rate_hz {fs:g}: is t_s in seconds?"
        )
    t_u, f_u = resample_uniform(rec.t_s, rec.forces_n, fs_hz=fs)
    notes: list[str] = []
    if rec.sample_rate_hz < RECOMMENDED_RATE_HZ:
        notes.append(
            f"sample rate {fs:g} Hz is below the recommended {RECOMMENDED_RATE_HZ:g} Hz (Scoppa et al. 2013)"
        )
    if abs(actual_hz / fs - 1) > RATE_MISMATCH_WARNING:
        notes.append(
            f"the time stamps give {actual_hz:.2f} Hz but the file says {fs:g} Hz; resampled at {fs:g} Hz"
        )
    dt = np.diff(rec.t_s)
    k = int(np.argmax(dt))
    if dt[k] > GAP_WARNING_PERIODS / fs:
        notes.append(
            f"gap of {dt[k]:.3f} s without samples after t = {rec.t_s[k]:.3f} s, bridged by linear interpolation"
        )
    return UniformTrial(name=rec.name, t_s=t_u, forces_n=f_u, fs_hz=fs, geometry=rec.geometry, warnings=tuple(notes))


def _require_occupied(rec: Recording, *, min_fz_n: float = DEFAULT_OCCUPANCY_N) -> None:
    """Refuse a recording with any sample below the occupancy threshold.

    Quiet stance is scored over the whole trial, and the COP is undefined
    while Fz is below the threshold (DESIGN.md section 3). No share of empty
    samples is tolerated: the threshold (100 N) is far below the weight of
    anyone standing, so a sample under it is never noise but someone stepping
    off or on, and the COP jump it brings would dominate the path length and
    the ellipse. The check runs on the samples as recorded, so the time in the
    message is a time in the file.
    """
    fz = rec.fz_n
    empty = fz < min_fz_n
    if not empty.any():
        return
    if empty.all():
        raise AnalysisError(
            f"{rec.name}: nobody on the plate: Fz stays below the {min_fz_n:g} N occupancy threshold "
            f"for the whole recording (at most {float(fz.max()):.1f} N)"
        )
    i = int(np.argmax(empty))
    count = int(empty.sum())
    raise AnalysisError(
        f"{rec.name}: nobody on the plate at t = {rec.t_s[i]:.3f} s (Fz {fz[i]:.1f} N, below the "
        f"{min_fz_n:g} N occupancy threshold; {count} of {rec.n_samples} samples are below it); "
        "quiet stance needs the person on the plate for the whole recording"
    )


def _require_duration(trial: UniformTrial) -> None:
    if trial.duration_s < MIN_DURATION_S:
        raise AnalysisError(
            f"{trial.name}: trial too short: {trial.duration_s:.2f} s ({trial.n_samples} samples at "
            f"{trial.fs_hz:g} Hz), need at least {MIN_DURATION_S:g} s ({RECOMMENDED_DURATION_S:g} s or more "
            "recommended)"
        )


def _force_frame(trial: UniformTrial, *, lowpass_hz: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fz (N) and COP (mm) of the trial, low-passed when ``lowpass_hz`` is not None (steps 3-4)."""
    fz, x, y = centre_of_pressure(trial.forces_n, ml_mm=trial.geometry.ml_mm, ap_mm=trial.geometry.ap_mm)
    if lowpass_hz is not None:
        if not lowpass_hz < trial.fs_hz / 2:
            raise AnalysisError(
                f"{trial.name}: the low-pass cut-off {lowpass_hz:g} Hz must be below half the sample rate "
                f"({trial.fs_hz / 2:g} Hz)"
            )
        stacked = lowpass_zero_phase(np.column_stack([fz, x, y]), fs_hz=trial.fs_hz, cutoff_hz=lowpass_hz)
        fz, x, y = stacked[:, 0], stacked[:, 1], stacked[:, 2]
    return fz, x, y


# -- scorers ------------------------------------------------------------------------------


def score_quiet_stance(rec: Recording, *, stance_side: str | None, lowpass_hz: float | None) -> dict[str, Any]:
    """Quiet bipedal stance: COP metrics over the whole trial (DESIGN.md section 5).

    Returns the contract's fields after ``protocol`` and ``stance_side``:
    ``sample_rate_hz``, ``duration_s``, ``n_samples``, ``body_weight_n``
    (median Fz over the trial), ``cop`` (:func:`station.signal.metrics.cop_metrics`),
    plus ``lowpass_hz`` (the cut-off used, ``None`` when off) and ``warnings``
    (a list of strings; a trial of 5 to 25 s is scored with a warning).

    Raises
    ------
    AnalysisError
        Nobody on the plate at any sample, or less than 5 s to analyse.
    """
    _require_occupied(rec)
    trial = prepare_trial(rec)
    _require_duration(trial)
    fz, x, y = _force_frame(trial, lowpass_hz=lowpass_hz)
    notes = list(trial.warnings)
    if trial.duration_s < RECOMMENDED_DURATION_S:
        notes.append(
            f"short trial: {trial.duration_s:.2f} s analysed; at least {RECOMMENDED_DURATION_S:g} s is "
            "recommended (Scoppa et al. 2013)"
        )
    return {
        "sample_rate_hz": trial.fs_hz,
        "duration_s": trial.duration_s,
        "n_samples": trial.n_samples,
        "body_weight_n": float(np.median(fz)),
        "cop": cop_metrics(x, y, fs_hz=trial.fs_hz),
        "lowpass_hz": lowpass_hz,
        "warnings": notes,
    }
