"""The Trendelenburg sign measured: the lifted side's pelvic drop from a sacral sensor.

The single-leg (Trendelenburg) test is read at the pelvis: standing on one
leg, a patient with working hip abductors holds the pelvis level or lifts the
free side a little; a positive sign is the free (lifted) side of the pelvis
dropping below its level [1]_. The station's pelvis sensor (a belt-worn IMU at
the sacrum, ``docs/pelvis-sensor.md``) records the pelvis's frontal-plane
obliquity in the recording's optional column ``pelvis_obliquity_deg``
(DESIGN.md section 4): degrees, **positive when the patient's right side of
the pelvis is higher**, empty (NaN) where the sensor had no value.

Everything here is a pure function of arrays (keyword-only numbers in, numbers
out); :func:`station.scoring.scores.score_single_leg` calls :func:`pelvis_scores`
with the runner's baseline and hold windows, so the live test and
``balance-station analyze`` compute the same thing from the same recording.

Processing
----------
1. Runs of empty cells spanning at most 0.1 s are bridged by a straight line
   (:func:`bridge_short_gaps`: a sensor slower than the plate, a late
   sample); then the column is put on the analysed uniform time base with the
   same grid and the same linear interpolation as the forces
   (:func:`resample_with_gaps`); a grid point next to a sample still missing
   (a longer gap: the sensor unplugged) is missing.
2. **Baseline level** ``L``: the mean obliquity over the runner's quiet
   two-foot baseline window (the window its body weight comes from). This is
   also the mounting calibration of the score: a belt sitting askew, or a
   pelvis that is oblique in two-foot stance (a leg-length difference), only
   moves ``L``.
3. **Drop of the lifted side**, positive = the lifted side lower than at
   baseline (the Trendelenburg direction), negative = it rises
   (:func:`lifted_side_drop`):

   * standing on the left leg (right foot lifted): the right side lower means
     the obliquity falls, so ``drop = L - obliquity``;
   * standing on the right leg (left foot lifted): the left side lower means
     the right side is relatively higher, the obliquity rises, so
     ``drop = obliquity - L``.
4. Over the hold window (onset to onset + hold time, the window of the
   ``cop.*`` measures): ``drop_mean_deg`` = mean drop; ``drop_max_deg`` =
   the largest 0.5 s moving average (:func:`max_moving_mean`);
   ``drop_slope_deg_s`` = least-squares slope, positive when the drop grows
   during the hold (abductor fatigue; null under 1 s).
5. ``sign``: ``"positive"`` when ``drop_max_deg`` exceeds
   :data:`SIGN_THRESHOLD_DEG` (2 degrees), else ``"negative"``; see
   :data:`SIGN_THRESHOLD_DEG` for the source. The 0.5 s average makes a
   drop that comes late in the hold (the fatiguing drop of Hardcastle and
   Nade's "time before the pelvis starts to fall" [1]_) count, and one sway
   sample not. ``drop_onset_s`` is when (seconds into the hold) the 0.5 s
   average first exceeded the threshold: the sign's time.
6. ``compensated``: the pelvis held level (sign negative) **and** the
   centre of pressure shifted laterally over the stance foot by at least
   :data:`COMPENSATION_OFFSET_MM` (``ml_offset_mm``). Leaning the trunk over
   the stance hip moves the body's centre of mass, and so the COP, lateral
   over the stance foot; it shortens the lever arm of the body weight about
   the hip and lets weak abductors hold the pelvis level: Duchenne's
   compensation of the Trendelenburg sign [1]_. A positive sign is never
   called compensated: the drop shows the abductors failed whatever the lean.

No low-pass filter is applied to the obliquity (the sensor's orientation
filter already smooths it); the forces' ``--lowpass-hz`` does not change it.

References
----------
.. [1] Hardcastle P, Nade S (1985) The significance of the Trendelenburg
   test. J Bone Joint Surg Br 67(5):741-746 (normal: the non-stance side of
   the pelvis rises and stays up for 30 s; positive: it cannot, or falls
   within the 30 s; the time to the fall is recorded; trunk lean over the
   stance hip as the compensation).
.. [2] Youdas JW, Mraz ST, Norstad BJ, Schinke JJ, Hollman JH (2007)
   Determining meaningful changes in pelvic-on-femoral position during the
   Trendelenburg test. J Sport Rehabil 16(4):326-335 (90 healthy adults:
   standard error of measurement 2 degrees, minimal detectable change 4 degrees).
.. [3] Magee DJ (2014) Orthopedic Physical Assessment, 6th ed., Saunders:
   the Trendelenburg sign is positive when the non-stance side of the pelvis
   drops, "especially if more than 2 cm" (about 4-5 degrees across the
   iliac crests).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from station.core.recording import PELVIS_COLUMN
from station.core.sides import SIDES
from station.signal.resample import uniform_grid_s

__all__ = [
    "COMPENSATION_OFFSET_MM",
    "MAX_BRIDGE_S",
    "MIN_SLOPE_WINDOW_S",
    "MIN_VALID_FRACTION",
    "PEAK_WINDOW_S",
    "PELVIS_COLUMN",
    "SIGN_THRESHOLD_DEG",
    "bridge_short_gaps",
    "lifted_side_drop",
    "max_moving_mean",
    "obliquity_values",
    "pelvis_scores",
    "resample_with_gaps",
]

#: A lifted-side drop above this (degrees, the largest 0.5 s average over the hold) is a positive sign.
#:
#: Source and reasoning: in Hardcastle and Nade's definition [1]_ any fall of
#: the non-stance side below level is positive; what keeps "any fall" from
#: calling sway and measurement error a sign is the error of the measure. The
#: standard error of measurement of the pelvic angle in the Trendelenburg test
#: is 2 degrees in 90 healthy adults (Youdas et al. 2007 [2]_), and the
#: contralateral pelvic drop studies with 2D video and wearables use the same
#: resolution. A drop of more than 2 degrees is therefore taken as a drop;
#: the clinician's eye (Magee's "more than 2 cm", about 4-5 degrees [3]_) is
#: coarser, so the station calls a sign a little earlier than an observer.
SIGN_THRESHOLD_DEG = 2.0
#: Window of ``drop_max_deg``: the largest moving average of this length (s), as in the contract.
PEAK_WINDOW_S = 0.5
#: A 0.5 s window counts for ``drop_max_deg`` when at least this share of its samples has a value.
MIN_VALID_FRACTION = 0.5
#: Runs of missing samples spanning at most this long (s) are bridged before resampling (:func:`bridge_short_gaps`).
MAX_BRIDGE_S = 0.1
#: Shortest hold (s of valid samples) for which the slope is reported.
MIN_SLOPE_WINDOW_S = 1.0
#: A lateral COP offset over the stance foot of at least this (mm) with a level pelvis is a compensation.
#: Healthy single-leg stance keeps the COP within -5..15 mm of the footprint centre (the simulated
#: population's range, hardware/sim/population.py, issue 10); a trunk lean moves it further out.
COMPENSATION_OFFSET_MM = 15.0



def obliquity_values(raw: Any) -> np.ndarray:
    """The column's values as float64 degrees, NaN where the sensor had no value.

    Parameters
    ----------
    raw : array_like
        Numbers (NaN allowed) or their text (an empty cell, ``nan``: no value).

    Returns
    -------
    ndarray of float64
        Non-finite values become NaN.

    Raises
    ------
    ValueError
        A cell that is neither empty nor a number.
    """
    arr = np.asarray(raw)
    if arr.dtype.kind in "fiub":
        out = arr.astype(np.float64)
    else:
        out = np.empty(arr.size, dtype=np.float64)
        for k, cell in enumerate(arr.reshape(-1).tolist()):
            text = "" if cell is None else str(cell).strip()
            if text == "":
                out[k] = math.nan
                continue
            try:
                out[k] = float(text)
            except ValueError:
                raise ValueError(f"{PELVIS_COLUMN}: {text!r} (sample {k}) is not a number") from None
    out = out.reshape(-1)
    out[~np.isfinite(out)] = math.nan
    return out


def bridge_short_gaps(*, t_s: np.ndarray, values: np.ndarray, max_gap_s: float = MAX_BRIDGE_S) -> np.ndarray:
    """Fill runs of missing samples that span at most ``max_gap_s`` by linear interpolation.

    A recorder may leave cells empty between the sensor's samples (a 50 Hz
    sensor beside a 100 Hz plate, or a sample that came late); the pelvis moves
    slowly (below 2 Hz), so a straight line over a tenth of a second is within
    a few hundredths of a degree of it. A longer gap (the sensor unplugged)
    stays missing.

    Parameters
    ----------
    t_s : ndarray
        Time stamps, s, increasing.
    values : ndarray
        Degrees, NaN where missing.
    max_gap_s : float
        The longest time between the two valid samples around a run that is filled, s.

    Returns
    -------
    ndarray
        A copy with the short runs filled.
    """
    t = np.asarray(t_s, dtype=np.float64)
    v = np.array(values, dtype=np.float64)
    ok = np.flatnonzero(np.isfinite(v))
    if ok.size < 2:
        return v
    fill = np.interp(t, t[ok], v[ok])
    # for each sample, the valid samples before and after it
    after = np.searchsorted(ok, np.arange(v.size))
    inside = (after > 0) & (after < ok.size)
    missing = ~np.isfinite(v) & inside
    k = np.flatnonzero(missing)
    span = t[ok[after[k]]] - t[ok[after[k] - 1]]
    short = k[span <= max_gap_s + 1e-9]
    v[short] = fill[short]
    return v


def resample_with_gaps(*, t_s: np.ndarray, values: np.ndarray, fs_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation onto the analysed uniform grid, keeping the sensor's gaps.

    The grid and the interpolation are those of
    :func:`station.signal.resample.resample_uniform` (the forces'): ``t_s[0] + k /
    fs_hz`` up to ``t_s[-1]``. A grid point between two recorded samples gets
    their linear interpolation when both have a value, the value itself when
    it falls on a recorded sample, and NaN otherwise: a gap is never bridged.

    Parameters
    ----------
    t_s : ndarray, shape (n,)
        The recording's time stamps, s, strictly increasing, n >= 2.
    values : ndarray, shape (n,)
        Obliquity in degrees, NaN where missing.
    fs_hz : float
        The nominal rate, Hz.

    Returns
    -------
    t_uniform_s, values_uniform : ndarray
        The uniform grid (s) and the values on it (degrees, NaN in gaps).
    """
    t = np.asarray(t_s, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if t.ndim != 1 or t.size < 2 or v.shape != t.shape:
        raise ValueError(f"t_s and values must be one-dimensional, of the same length >= 2; got {t.shape}, {v.shape}")
    tu = uniform_grid_s(start_s=float(t[0]), end_s=float(t[-1]), fs_hz=fs_hz)
    dt = np.diff(t)
    i = np.clip(np.searchsorted(t, tu, side="right") - 1, 0, t.size - 2)
    w = np.clip((tu - t[i]) / dt[i], 0.0, 1.0)
    with np.errstate(invalid="ignore"):
        mixed = v[i] * (1.0 - w) + v[i + 1] * w
    out = np.where(w == 0.0, v[i], np.where(w == 1.0, v[i + 1], mixed))
    return tu, out


def lifted_side_drop(*, obliquity_deg: np.ndarray, baseline_deg: float, stance_side: str) -> np.ndarray:
    """The lifted side's drop below its baseline level, degrees, positive = the lifted side lower.

    Parameters
    ----------
    obliquity_deg : ndarray
        Frontal-plane obliquity, degrees, positive = the right side higher.
    baseline_deg : float
        The obliquity's level in quiet two-foot stance, degrees.
    stance_side : {"left", "right"}
        The stance leg (the other one is lifted).

    Returns
    -------
    ndarray
        Standing on the left (right side lifted): ``baseline - obliquity``;
        standing on the right (left side lifted): ``obliquity - baseline``.

    Examples
    --------
    >>> lifted_side_drop(obliquity_deg=np.array([-3.0]), baseline_deg=0.0, stance_side="left").tolist()
    [3.0]
    >>> lifted_side_drop(obliquity_deg=np.array([-3.0]), baseline_deg=0.0, stance_side="right").tolist()
    [-3.0]
    """
    if stance_side not in SIDES:
        raise ValueError(f"stance_side must be 'left' or 'right', got {stance_side!r}")
    o = np.asarray(obliquity_deg, dtype=np.float64)
    return (baseline_deg - o) if stance_side == "left" else (o - baseline_deg)


def max_moving_mean(*, values: np.ndarray, fs_hz: float, window_s: float = PEAK_WINDOW_S,
                    min_valid_fraction: float = MIN_VALID_FRACTION) -> tuple[float | None, int | None]:
    """The largest moving average over ``window_s``, ignoring missing samples.

    Parameters
    ----------
    values : ndarray
        Uniformly sampled values, NaN where missing.
    fs_hz : float
        Their rate, Hz.
    window_s : float
        Window length, s (0.5 s: ``drop_max_deg``).
    min_valid_fraction : float
        A window counts only when at least this share of its samples has a value.

    Returns
    -------
    peak : float or None
        The largest window mean; when the series is shorter than one window, the
        mean of its valid samples; None with no valid sample (or no window with
        enough of them).
    start : int or None
        Index of the first sample of the window that gave the peak.
    """
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    if not ok.any():
        return None, None
    n = max(1, int(round(window_s * fs_hz)))
    if v.size < n:
        return float(v[ok].mean()), 0
    means = _moving_means(v, n, max(1, int(math.ceil(min_valid_fraction * n))))
    if not np.isfinite(means).any():
        return None, None
    k = int(np.nanargmax(means))
    return float(means[k]), k


def _moving_means(values: np.ndarray, n: int, min_count: int) -> np.ndarray:
    ok = np.isfinite(values)
    s = np.concatenate(([0.0], np.cumsum(np.where(ok, values, 0.0))))
    c = np.concatenate(([0], np.cumsum(ok)))
    sums, counts = s[n:] - s[:-n], c[n:] - c[:-n]
    return np.where(counts >= min_count, sums / np.maximum(counts, 1), np.nan)


def pelvis_scores(*, t_s: np.ndarray, obliquity_deg: np.ndarray, fs_hz: float, stance_side: str,
                  baseline_start_s: float, baseline_end_s: float, hold_start_s: float, hold_end_s: float,
                  ml_offset_mm: float | None, threshold_deg: float = SIGN_THRESHOLD_DEG,
                  compensation_offset_mm: float = COMPENSATION_OFFSET_MM) -> dict[str, Any] | None:
    """The ``pelvis`` object of the single-leg result, or None when it cannot be measured.

    Parameters
    ----------
    t_s : ndarray
        The analysed uniform time base, s.
    obliquity_deg : ndarray
        The obliquity on that time base (:func:`resample_with_gaps`), degrees,
        positive = right side higher, NaN where missing.
    fs_hz : float
        The uniform rate, Hz.
    stance_side : {"left", "right"}
        The stance leg.
    baseline_start_s, baseline_end_s : float
        The runner's quiet two-foot baseline window, s (both ends included,
        to within half a sample, as for the body weight).
    hold_start_s, hold_end_s : float
        The hold window, s: onset to onset + hold time (``start <= t < end``).
    ml_offset_mm : float or None
        The trial's lateral COP offset over the stance footprint, mm.
    threshold_deg : float
        The sign's threshold (:data:`SIGN_THRESHOLD_DEG`).
    compensation_offset_mm : float
        The lateral offset of a compensation (:data:`COMPENSATION_OFFSET_MM`).

    Returns
    -------
    dict or None
        None when the baseline window or the hold window has no valid sample.
        Otherwise ``drop_mean_deg``, ``drop_max_deg``, ``sign``
        (``"positive"``/``"negative"``), ``drop_slope_deg_s`` (None under 1 s of
        valid samples), ``drop_onset_s`` (s into the hold when the 0.5 s average
        first exceeded the threshold; None when it never did),
        ``compensated`` (bool), ``baseline_deg`` (the baseline obliquity, as
        recorded: right side higher positive), ``threshold_deg``,
        ``compensation_offset_mm``, ``valid_pct`` (share of the hold window
        with a sensor value, %).
    """
    t = np.asarray(t_s, dtype=np.float64)
    o = np.asarray(obliquity_deg, dtype=np.float64)
    if o.shape != t.shape:
        raise ValueError(f"obliquity_deg must have the shape of t_s {t.shape}, got {o.shape}")
    if not (math.isfinite(fs_hz) and fs_hz > 0):
        raise ValueError(f"fs_hz must be a positive rate, got {fs_hz!r}")
    half = 0.5 / fs_hz
    base = (t >= baseline_start_s - 1e-9) & (t < baseline_end_s + half - 1e-9)
    base_values = o[base][np.isfinite(o[base])]
    hold = np.flatnonzero((t >= hold_start_s - 1e-9) & (t < hold_end_s - 1e-9))
    if base_values.size == 0 or hold.size == 0:
        return None
    baseline = float(base_values.mean())
    drop = lifted_side_drop(obliquity_deg=o[hold], baseline_deg=baseline, stance_side=stance_side)
    ok = np.isfinite(drop)
    if not ok.any():
        return None
    drop_mean = float(drop[ok].mean())
    drop_max, _ = max_moving_mean(values=drop, fs_hz=fs_hz)
    if drop_max is None:  # every 0.5 s window is mostly missing: the valid samples' largest value stands in
        drop_max = float(drop[ok].max())
    slope = None
    if ok.sum() / fs_hz >= MIN_SLOPE_WINDOW_S:
        th = t[hold][ok]
        slope = float(np.polyfit(th - th[0], drop[ok], 1)[0])
    positive = drop_max > threshold_deg
    onset = None
    if positive:
        n = max(1, int(round(PEAK_WINDOW_S * fs_hz)))
        if drop.size >= n:
            means = _moving_means(drop, n, max(1, int(math.ceil(MIN_VALID_FRACTION * n))))
            above = np.flatnonzero(means > threshold_deg)
            if above.size:  # the window's end: when the average first got there
                onset = float(t[hold][above[0] + n - 1] - hold_start_s)
        if onset is None:
            onset = float(t[hold][np.flatnonzero(ok & (drop > threshold_deg))[0]] - hold_start_s)
    compensated = bool((not positive) and ml_offset_mm is not None and ml_offset_mm >= compensation_offset_mm)
    return {
        "drop_mean_deg": drop_mean,
        "drop_max_deg": drop_max,
        "sign": "positive" if positive else "negative",
        "drop_slope_deg_s": slope,
        "drop_onset_s": onset,
        "compensated": compensated,
        "baseline_deg": baseline,
        "threshold_deg": float(threshold_deg),
        "compensation_offset_mm": float(compensation_offset_mm),
        "valid_pct": float(100.0 * ok.sum() / hold.size),
    }
