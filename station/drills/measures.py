"""Metrics of the drills: small pure functions of the COP and time, with units in their names.

Every function takes keyword-only arguments, checks them and names the bad
argument in its message (as :mod:`scipy.signal` does). Positions are plate
coordinates in mm (DESIGN.md section 3: x medio-lateral, + to the patient's
right; y antero-posterior, + forward), times are the frames' own ``t_s`` in s.
A metric that cannot be computed (no movement, too few cycles) is ``nan``; the
drills turn it into ``None`` in their JSON metrics.

Directions are compass angles seen from above: 0 deg is forward (+y), 90 deg
is to the patient's right (+x), 180 deg backward, 270 deg left. The unit vector
of direction ``theta`` is ``(sin theta, cos theta)``.

Limits-of-stability (reach) metrics follow the NeuroCom conventions as
described by Lininger et al. [1]_ and Clark et al. [2]_:

- **reaction time**: from the target's appearance to the onset of movement
  (:func:`movement_onset_index`);
- **movement velocity**: mean COP velocity between 5 % and 95 % of the
  distance to the primary endpoint;
- **endpoint excursion**: the distance reached by the primary (first)
  movement toward the target, in % of the limit in that direction;
- **maximum excursion**: the farthest point reached in the trial, in % of the limit;
- **directional control**: (on-axis movement - off-axis movement) /
  on-axis movement x 100 %.

The COP stands in for the centre of gravity (COG): the drills are played
slowly, where the two agree closely, and the plate measures only the COP.

References
----------
.. [1] Lininger MR, Leahy TE, Haug EC, Bowman TG (2018) Test-retest
   reliability of the limits of stability test performed by young adults
   using Neurocom VSR Sport. Int J Sports Phys Ther 13(5):800-807 (PMC6159502).
.. [2] Clark S, Rose DJ, Fujimoto K (1997) Generalizability of the limits of
   stability test in the evaluation of dynamic balance among older adults.
   Arch Phys Med Rehabil 78:1078-1084.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real

import numpy as np

__all__ = [
    "unit_vector",
    "project_mm",
    "movement_onset_index",
    "primary_end_index",
    "reaction_time_s",
    "movement_velocity_mm_s",
    "directional_control_pct",
    "axis_path_lengths_mm",
    "excursion_pct",
    "max_excursion_pct",
    "reach_measures",
    "time_within_s",
    "time_within_tolerance_s",
    "time_in_zone_s",
    "upward_crossings_s",
    "half_cycle_amplitudes_mm",
    "tempo_error_pct",
    "coefficient_of_variation_pct",
    "mean_speed_mm_s",
    "rms_about_mean_mm",
]


# -- argument checks -----------------------------------------------------------------------


def _number(name: str, value: object, *, lo: float = -math.inf, hi: float = math.inf,
            lo_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (Real, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < lo or v > hi or (lo_open and v == lo):
        bound = f"greater than {lo:g}" if lo_open else f"between {lo:g} and {hi:g}"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return v


def _series(name: str, value: object, *, min_n: int = 1) -> np.ndarray:
    a = np.asarray(value, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    if a.size < min_n:
        raise ValueError(f"{name} must hold at least {min_n} samples, got {a.size}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite; sample {int(np.argmax(~np.isfinite(a)))} is not")
    return a


def _times(t_s: object, *, min_n: int = 1) -> np.ndarray:
    t = _series("t_s", t_s, min_n=min_n)
    if t.size > 1 and not np.all(np.diff(t) > 0):
        raise ValueError("t_s must be strictly increasing")
    return t


def _same_length(**arrays: np.ndarray) -> None:
    sizes = {k: v.size for k, v in arrays.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError("arrays must have the same length, got " + ", ".join(f"{k}={n}" for k, n in sizes.items()))


def _path(cop_ml_mm: object, cop_ap_mm: object, t_s: object | None = None, *,
          min_n: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    x = _series("cop_ml_mm", cop_ml_mm, min_n=min_n)
    y = _series("cop_ap_mm", cop_ap_mm, min_n=min_n)
    t = None if t_s is None else _times(t_s, min_n=min_n)
    if t is None:
        _same_length(cop_ml_mm=x, cop_ap_mm=y)
    else:
        _same_length(t_s=t, cop_ml_mm=x, cop_ap_mm=y)
    return x, y, t


# -- geometry ----------------------------------------------------------------------------------


def unit_vector(*, direction_deg: float) -> tuple[float, float]:
    """Unit vector ``(x, y)`` of a compass direction (0 forward, 90 right, 180 backward, 270 left)."""
    d = math.radians(_number("direction_deg", direction_deg))
    ux, uy = math.sin(d), math.cos(d)
    # exact zeros on the axes, so that scripted straight paths give exact results
    return (0.0 if abs(ux) < 1e-12 else ux, 0.0 if abs(uy) < 1e-12 else uy)


def project_mm(*, cop_ml_mm: object, cop_ap_mm: object, origin_ml_mm: float = 0.0, origin_ap_mm: float = 0.0,
               direction_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Components of the COP relative to ``origin`` along and across a direction, in mm.

    Returns
    -------
    along_mm, across_mm : ndarray
        ``(P - origin) . u`` and ``(P - origin) . n``, with ``u`` the unit
        vector of ``direction_deg`` and ``n`` the unit vector 90 deg clockwise of it.
    """
    x, y, _ = _path(cop_ml_mm, cop_ap_mm)
    ox = _number("origin_ml_mm", origin_ml_mm)
    oy = _number("origin_ap_mm", origin_ap_mm)
    ux, uy = unit_vector(direction_deg=direction_deg)
    dx, dy = x - ox, y - oy
    return dx * ux + dy * uy, dx * uy - dy * ux


# -- reach (limits of stability) ---------------------------------------------------------------


def movement_onset_index(*, t_s: object, along_mm: object, threshold_mm: float = 10.0,
                         onset_speed_mm_s: float = 20.0, hysteresis_mm: float = 1.0) -> int | None:
    """Index of the onset of the movement toward a target, or None when there is none.

    Parameters
    ----------
    t_s : array_like
        Sample times, s (sample 0: the target's appearance).
    along_mm : array_like
        Displacement toward the target from the COP at the target's appearance
        (sample 0), in mm (:func:`project_mm`).
    threshold_mm : float
        The movement is found where ``along_mm`` first exceeds this.
    onset_speed_mm_s : float
        From that crossing the movement is traced back while the COP moves
        toward the target at least this fast (forward difference
        ``(a[k+1] - a[k]) / (t[k+1] - t[k])``): slow postural drift before
        the movement does not count as movement.
    hysteresis_mm : float
        Nor does the onset lie before the trough the rise started from: the
        last lowest sample before the crossing, going back until the signal
        has been more than ``hysteresis_mm`` above that trough.

    Returns
    -------
    int or None
        The onset index, the later of the two traced points. For a path that
        rests at sample ``k`` and moves toward the target from there faster
        than ``onset_speed_mm_s``, exactly ``k``.
    """
    t = _times(t_s)
    a = _series("along_mm", along_mm)
    _same_length(t_s=t, along_mm=a)
    thr = _number("threshold_mm", threshold_mm, lo=0.0, lo_open=True)
    vmin = _number("onset_speed_mm_s", onset_speed_mm_s, lo=0.0)
    hyst = _number("hysteresis_mm", hysteresis_mm, lo=0.0)
    above = np.nonzero(a > thr)[0]
    if above.size == 0:
        return None
    c = int(above[0])
    trough_i, best = c, a[c]
    for k in range(c, -1, -1):
        if a[k] < best:
            best, trough_i = a[k], k
        elif a[k] > best + hyst:
            break
    run = c
    while run > 0 and (a[run] - a[run - 1]) / (t[run] - t[run - 1]) >= vmin:
        run -= 1
    return max(trough_i, run)


def _window_speed_mm_s(x: np.ndarray, y: np.ndarray, t: np.ndarray, k: int, window_s: float, lo: int) -> float:
    j = int(np.searchsorted(t, t[k] - window_s, side="left"))
    j = max(j, lo)
    if j >= k:
        return math.inf
    return math.hypot(x[k] - x[j], y[k] - y[j]) / (t[k] - t[j])


def primary_end_index(*, t_s: object, cop_ml_mm: object, cop_ap_mm: object, onset_index: int,
                      min_distance_mm: float = 10.0, stop_speed_mm_s: float = 25.0,
                      window_s: float = 0.1) -> int:
    """Index where the primary (first) movement after the onset ends.

    The movement ends at the first sample, once the COP is at least
    ``min_distance_mm`` from where it was at the onset, at which its speed
    over the last ``window_s`` (straight distance over time) falls below
    ``stop_speed_mm_s``. Without such a sample, the last sample.

    For a scripted straight move at constant speed that stops at point P,
    the end is a sample where the COP is exactly at P.
    """
    x, y, t = _path(cop_ml_mm, cop_ap_mm, t_s)
    assert t is not None
    if isinstance(onset_index, bool) or not isinstance(onset_index, (int, np.integer)) or not (
            0 <= onset_index < t.size):
        raise ValueError(f"onset_index must be an index into t_s (0 to {t.size - 1}), got {onset_index!r}")
    dmin = _number("min_distance_mm", min_distance_mm, lo=0.0)
    vstop = _number("stop_speed_mm_s", stop_speed_mm_s, lo=0.0, lo_open=True)
    win = _number("window_s", window_s, lo=0.0, lo_open=True)
    i0 = int(onset_index)
    moved = False
    for k in range(i0 + 1, t.size):
        if not moved:
            moved = math.hypot(x[k] - x[i0], y[k] - y[i0]) >= dmin
            if not moved:
                continue
        if _window_speed_mm_s(x, y, t, k, win, i0) < vstop:
            return k
    return t.size - 1


def reaction_time_s(*, t_s: object, onset_index: int | None) -> float:
    """Reaction time: from the target's appearance (``t_s[0]``) to the movement onset, in s (nan without one)."""
    t = _times(t_s)
    if onset_index is None:
        return math.nan
    if isinstance(onset_index, bool) or not isinstance(onset_index, (int, np.integer)) or not (
            0 <= onset_index < t.size):
        raise ValueError(f"onset_index must be an index into t_s (0 to {t.size - 1}) or None, got {onset_index!r}")
    return float(t[onset_index] - t[0])


def _first_crossing_s(t: np.ndarray, r: np.ndarray, level: float) -> float:
    """Time ``r`` first reaches ``level``, linearly interpolated between samples."""
    idx = np.nonzero(r >= level)[0]
    if idx.size == 0:
        return math.nan
    k = int(idx[0])
    if k == 0 or r[k] == r[k - 1]:
        return float(t[k])
    f = (level - r[k - 1]) / (r[k] - r[k - 1])
    return float(t[k - 1] + f * (t[k] - t[k - 1]))


def movement_velocity_mm_s(*, t_s: object, cop_ml_mm: object, cop_ap_mm: object) -> float:
    """Mean COP velocity between 5 % and 95 % of the distance to the endpoint, in mm/s.

    Parameters
    ----------
    t_s, cop_ml_mm, cop_ap_mm : array_like
        The movement, from its onset (sample 0) to its primary endpoint (the last sample).

    Returns
    -------
    float
        ``0.9 D / (t95 - t5)``, with ``D`` the straight distance from the onset
        to the endpoint and ``t5``, ``t95`` the first times the distance from the
        onset reaches 5 % and 95 % of ``D`` (interpolated between samples). For
        a straight move at constant speed ``v``, exactly ``v``. nan when the COP
        did not move.
    """
    x, y, t = _path(cop_ml_mm, cop_ap_mm, t_s, min_n=2)
    assert t is not None
    r = np.hypot(x - x[0], y - y[0])
    d = float(r[-1])
    if not d > 0:
        return math.nan
    t5, t95 = _first_crossing_s(t, r, 0.05 * d), _first_crossing_s(t, r, 0.95 * d)
    if not t95 > t5:
        return math.nan
    return 0.9 * d / (t95 - t5)


def axis_path_lengths_mm(*, cop_ml_mm: object, cop_ap_mm: object, direction_deg: float) -> tuple[float, float]:
    """Amount of movement along and across an axis: ``sum |d(P.u)|`` and ``sum |d(P.n)|``, in mm.

    ``u`` is the unit vector of ``direction_deg`` and ``n`` its normal. A
    straight path along ``u`` gives ``(length, 0)``; a straight path at 45 deg
    to it gives two equal amounts, ``length / sqrt(2)`` each.
    """
    along, across = project_mm(cop_ml_mm=cop_ml_mm, cop_ap_mm=cop_ap_mm, direction_deg=direction_deg)
    return float(np.sum(np.abs(np.diff(along)))), float(np.sum(np.abs(np.diff(across))))


def directional_control_pct(*, cop_ml_mm: object, cop_ap_mm: object, direction_deg: float) -> float:
    """Directional control: (on-axis - off-axis movement) / on-axis movement x 100, in %.

    The amounts of movement are those of :func:`axis_path_lengths_mm`, the
    axis pointing from the start toward the target. 100 % for a straight move
    to the target; 0 % for a straight move at 45 deg off the axis (the two
    amounts are equal); negative when the path strays more than it
    progresses. nan when there is no on-axis movement.

    References
    ----------
    .. [1] Lininger et al. (2018), see the module references.
    """
    on, off = axis_path_lengths_mm(cop_ml_mm=cop_ml_mm, cop_ap_mm=cop_ap_mm, direction_deg=direction_deg)
    if not on > 0:
        return math.nan
    return 100.0 * (on - off) / on


def excursion_pct(*, x_mm: float, y_mm: float, centre_ml_mm: float = 0.0, centre_ap_mm: float = 0.0,
                  direction_deg: float, limit_mm: float) -> float:
    """Distance of a point from the stance centre along a direction, in % of the limit there.

    ``100 ((P - C) . u) / limit_mm``. Used for the endpoint excursion (P the
    primary movement's endpoint).
    """
    lim = _number("limit_mm", limit_mm, lo=0.0, lo_open=True)
    along, _ = project_mm(cop_ml_mm=[_number("x_mm", x_mm)], cop_ap_mm=[_number("y_mm", y_mm)],
                          origin_ml_mm=centre_ml_mm, origin_ap_mm=centre_ap_mm, direction_deg=direction_deg)
    return 100.0 * float(along[0]) / lim


def max_excursion_pct(*, cop_ml_mm: object, cop_ap_mm: object, centre_ml_mm: float = 0.0,
                      centre_ap_mm: float = 0.0, direction_deg: float, limit_mm: float) -> float:
    """Maximum excursion: the farthest point reached along the direction in the trial, in % of the limit."""
    lim = _number("limit_mm", limit_mm, lo=0.0, lo_open=True)
    along, _ = project_mm(cop_ml_mm=cop_ml_mm, cop_ap_mm=cop_ap_mm, origin_ml_mm=centre_ml_mm,
                          origin_ap_mm=centre_ap_mm, direction_deg=direction_deg)
    return 100.0 * float(np.max(along)) / lim


def reach_measures(*, t_s: object, cop_ml_mm: object, cop_ap_mm: object, centre_ml_mm: float = 0.0,
                   centre_ap_mm: float = 0.0, direction_deg: float, limit_mm: float, onset_mm: float = 10.0,
                   onset_speed_mm_s: float = 20.0, hysteresis_mm: float = 1.0, stop_speed_mm_s: float = 25.0,
                   window_s: float = 0.1) -> dict[str, float]:
    """All limits-of-stability metrics of one target, from its appearance (sample 0) to its end.

    Returns
    -------
    dict
        ``reaction_time_s`` (s), ``movement_velocity_mm_s`` (mm/s),
        ``endpoint_excursion_pct`` and ``max_excursion_pct`` (% of
        ``limit_mm``), ``directional_control_pct`` (%, from the onset to the
        primary endpoint), ``endpoint_ml_mm``, ``endpoint_ap_mm``. nan where
        there was no movement toward the target (no crossing of ``onset_mm``).
    """
    x, y, t = _path(cop_ml_mm, cop_ap_mm, t_s)
    assert t is not None
    along, _ = project_mm(cop_ml_mm=x, cop_ap_mm=y, origin_ml_mm=x[0], origin_ap_mm=y[0],
                          direction_deg=direction_deg)
    out = {
        "reaction_time_s": math.nan, "movement_velocity_mm_s": math.nan, "endpoint_excursion_pct": math.nan,
        "max_excursion_pct": max_excursion_pct(cop_ml_mm=x, cop_ap_mm=y, centre_ml_mm=centre_ml_mm,
                                               centre_ap_mm=centre_ap_mm, direction_deg=direction_deg,
                                               limit_mm=limit_mm),
        "directional_control_pct": math.nan, "endpoint_ml_mm": math.nan, "endpoint_ap_mm": math.nan,
    }
    onset = movement_onset_index(t_s=t, along_mm=along, threshold_mm=onset_mm, onset_speed_mm_s=onset_speed_mm_s,
                                 hysteresis_mm=hysteresis_mm)
    if onset is None:
        return out
    end = primary_end_index(t_s=t, cop_ml_mm=x, cop_ap_mm=y, onset_index=onset, min_distance_mm=onset_mm,
                            stop_speed_mm_s=stop_speed_mm_s, window_s=window_s)
    seg = slice(onset, end + 1)
    out["reaction_time_s"] = reaction_time_s(t_s=t, onset_index=onset)
    if end > onset:
        out["movement_velocity_mm_s"] = movement_velocity_mm_s(t_s=t[seg], cop_ml_mm=x[seg], cop_ap_mm=y[seg])
        out["directional_control_pct"] = directional_control_pct(cop_ml_mm=x[seg], cop_ap_mm=y[seg],
                                                                 direction_deg=direction_deg)
    out["endpoint_ml_mm"], out["endpoint_ap_mm"] = float(x[end]), float(y[end])
    out["endpoint_excursion_pct"] = excursion_pct(x_mm=x[end], y_mm=y[end], centre_ml_mm=centre_ml_mm,
                                                  centre_ap_mm=centre_ap_mm, direction_deg=direction_deg,
                                                  limit_mm=limit_mm)
    return out


# -- time within a band (symmetry, single-leg hold) ----------------------------------------------


def time_within_s(*, t_s: object, inside: object, end_s: float | None = None) -> float:
    """Time a condition held, sample and hold: sample ``i`` counts for ``t[i+1] - t[i]``, in s.

    The last sample counts up to ``end_s`` (default: itself, i.e. nothing).
    """
    t = _times(t_s)
    m = np.asarray(inside, dtype=bool)
    if m.shape != t.shape:
        raise ValueError(f"inside must have the shape of t_s {t.shape}, got {m.shape}")
    stop = t[-1] if end_s is None else _number("end_s", end_s, lo=float(t[-1]))
    dt = np.diff(np.append(t, stop))
    return float(np.sum(dt[m]))


def time_within_tolerance_s(*, t_s: object, value: object, target: float, tolerance: float,
                            end_s: float | None = None) -> float:
    """Time ``|value - target| <= tolerance`` held (sample and hold, see :func:`time_within_s`), in s.

    For the symmetry drill ``value`` is the share of weight on the left foot
    and ``target``, ``tolerance`` are in % of body weight.
    """
    v = _series("value", value)
    tol = _number("tolerance", tolerance, lo=0.0)
    tgt = _number("target", target)
    return time_within_s(t_s=t_s, inside=np.abs(v - tgt) <= tol, end_s=end_s)


def time_in_zone_s(*, t_s: object, cop_ml_mm: object, cop_ap_mm: object, zone_ml_mm: float, zone_ap_mm: float,
                   half_width_mm: float, half_height_mm: float, end_s: float | None = None) -> float:
    """Time the COP spent inside a rectangle (sample and hold, see :func:`time_within_s`), in s."""
    x, y, t = _path(cop_ml_mm, cop_ap_mm, t_s)
    hw = _number("half_width_mm", half_width_mm, lo=0.0, lo_open=True)
    hh = _number("half_height_mm", half_height_mm, lo=0.0, lo_open=True)
    inside = (np.abs(x - _number("zone_ml_mm", zone_ml_mm)) <= hw) & (np.abs(y - _number("zone_ap_mm",
                                                                                         zone_ap_mm)) <= hh)
    return time_within_s(t_s=t, inside=inside, end_s=end_s)


# -- rhythm -------------------------------------------------------------------------------------


def upward_crossings_s(*, t_s: object, signal_mm: object, hysteresis_mm: float) -> np.ndarray:
    """Times the signal crosses zero upward, interpolated, each after having been below ``-hysteresis_mm``.

    The hysteresis keeps sway around zero from counting as cycles. For
    ``A sin(2 pi t / T)`` sampled finely, the crossings are ``t = k T``.
    """
    t = _times(t_s, min_n=2)
    s = _series("signal_mm", signal_mm, min_n=2)
    _same_length(t_s=t, signal_mm=s)
    h = _number("hysteresis_mm", hysteresis_mm, lo=0.0)
    out: list[float] = []
    armed = s[0] < -h
    for k in range(1, s.size):
        if s[k] < -h:
            armed = True
        if armed and s[k - 1] < 0.0 <= s[k]:
            f = -s[k - 1] / (s[k] - s[k - 1])
            out.append(float(t[k - 1] + f * (t[k] - t[k - 1])))
            armed = False
    return np.asarray(out)


def half_cycle_amplitudes_mm(*, t_s: object, signal_mm: object, hysteresis_mm: float) -> np.ndarray:
    """Peak ``|signal|`` of every complete half cycle (between successive zero crossings), in mm.

    A half cycle counts when it reaches beyond ``hysteresis_mm``; the parts
    before the first and after the last crossing are left out.
    """
    t = _times(t_s, min_n=2)
    s = _series("signal_mm", signal_mm, min_n=2)
    _same_length(t_s=t, signal_mm=s)
    h = _number("hysteresis_mm", hysteresis_mm, lo=0.0)
    sign = np.sign(s)
    # zero crossings: a sign change between successive non-zero samples
    nz = np.nonzero(sign != 0)[0]
    if nz.size < 2:
        return np.asarray([])
    changes = nz[1:][sign[nz[1:]] != sign[nz[:-1]]]
    amps: list[float] = []
    for a, b in zip(changes[:-1], changes[1:]):
        peak = float(np.max(np.abs(s[a:b])))
        if peak > h:
            amps.append(peak)
    return np.asarray(amps)


def tempo_error_pct(*, periods_s: object, target_period_s: float) -> float:
    """Signed tempo error: ``100 (mean period - target) / target``, in % (positive: too slow). nan without periods."""
    p = np.asarray(periods_s, dtype=np.float64)
    if p.ndim != 1 or not np.all(np.isfinite(p)) or np.any(p <= 0):
        raise ValueError("periods_s must be a one-dimensional array of positive finite periods in s")
    tgt = _number("target_period_s", target_period_s, lo=0.0, lo_open=True)
    if p.size == 0:
        return math.nan
    return 100.0 * (float(np.mean(p)) - tgt) / tgt


def coefficient_of_variation_pct(*, values: Sequence[float] | np.ndarray) -> float:
    """``100 * SD / mean`` (SD with ``ddof=1``), in %; nan for fewer than two values."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or not np.all(np.isfinite(v)):
        raise ValueError("values must be a one-dimensional array of finite numbers")
    if v.size < 2:
        return math.nan
    m = float(np.mean(v))
    if m == 0:
        raise ValueError("values must not have a zero mean")
    return 100.0 * float(np.std(v, ddof=1)) / abs(m)


# -- sway ------------------------------------------------------------------------------------------


def mean_speed_mm_s(*, t_s: object, cop_ml_mm: object, cop_ap_mm: object) -> float:
    """Mean COP speed: path length over the time it took, in mm/s."""
    x, y, t = _path(cop_ml_mm, cop_ap_mm, t_s, min_n=2)
    assert t is not None
    return float(np.sum(np.hypot(np.diff(x), np.diff(y))) / (t[-1] - t[0]))


def rms_about_mean_mm(*, cop_mm: object) -> float:
    """Root mean square of the COP about its mean on one axis, in mm."""
    a = _series("cop_mm", cop_mm)
    return float(np.sqrt(np.mean((a - np.mean(a)) ** 2)))
