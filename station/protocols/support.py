"""Hand support during the single-leg hold: a sustained deficit of Fz, told apart from the body's own fluctuation.

A hand on a table or rail takes part of the weight off the plate, so Fz stays
below the body weight for as long as it is there (the contract: at least
0.5 s). The body's own vertical accelerations and the heart's ballistic forces
move Fz too: by 0.5-2 % of body weight (standard deviation) in single-leg
stance, with energy up to about 3 Hz, more in older and weaker patients. A
fixed threshold either reports support in healthy unsteady patients or misses
it in steady ones, so the detection limit is measured in each trial.

Method
------
1. The unloading ``u = 100 (BW - Fz) / BW`` (% of body weight) over the hold
   window, floor touchdowns left out (their own Fz drop is no support).
2. The patient's fluctuation: ``u`` minus its 3 s running median (which
   follows support and drift but not the fluctuation), averaged over 0.5 s;
   its robust standard deviation (1.4826 MAD) is ``sd_05``, the spread of a
   0.5 s mean of the fluctuation. A mean over ``D`` seconds spreads by
   ``sd_D = sd_05 * sqrt(0.5 / D)`` (white at low frequencies, the worst case:
   a body cannot keep accelerating one way, so real spectra fall faster and
   this is conservative). Measuring ``sd_D`` at long scales in the trial
   itself was tried and rejected: the support being looked for inflates it.
3. The detection limit for unloading held ``D`` seconds is
   ``max(floor, k * sd_D)`` (``D`` at most 8 s) with ``k`` = :data:`K_SIGMA` and ``floor`` = :data:`FLOOR_PCT` (the
   body weight is measured before the hold, and load cells creep and drift by
   a few newtons a minute). The reported ``detection_limit_pct_bw`` is the
   limit for unloading held 1 s.
4. Seeds: the running means over 0.5, 1, 2 and 4 s at or above their limit.
   Each seed's core (where the 0.5 s running mean is at least 15 % of the
   seed's peak and ``sd_05``) grows to both sides while the 0.5 s running
   mean stays that high, which takes in most of the hand's ramps, so the mean
   is over the time it carried weight; the ends are then trimmed where a
   0.15 s running mean is below that level (the 0.5 s mean smears a quarter
   second past a sudden start or end).
   Episodes closer than 0.3 s merge. An episode counts when it lasts at
   least 0.5 s and its mean unloading is at or above the limit for its length.

What it cannot tell apart: support below the limit (reported as none, with
the limit), and a slow drift of the load cells' zero from a steady support
held through the whole hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["FLOOR_PCT", "K_SIGMA", "SupportFinding", "SupportRun", "detect_support"]

#: Multiple of the fluctuation's spread that a support must exceed.
K_SIGMA = 5.0
#: Smallest detection limit, in % of body weight (body-weight reference and cell drift).
FLOOR_PCT = 0.8
#: Shortest support (the contract).
MIN_SUPPORT_S = 0.5
_SEED_WINDOWS_S = (0.5, 1.0, 2.0, 4.0)
_MERGE_GAP_S = 0.3
_MEDIAN_S = 3.0
#: the white-noise scaling of the limit is not carried past this length of support, in s
_LONGEST_S = 8.0


@dataclass(frozen=True, slots=True)
class SupportRun:
    """One hand-support episode: ``start_s`` to ``end_s``, mean unloading in % of body weight."""

    start_s: float
    end_s: float
    mean_pct_bw: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True, slots=True)
class SupportFinding:
    """The episodes found and what the trial could resolve."""

    runs: tuple[SupportRun, ...]
    detection_limit_pct_bw: float | None
    fluctuation_sd_pct_bw: float | None  # sd_05: the spread of 0.5 s means of the unloading
    #: (window in s, spread in % BW) of the running means, shortest first
    spreads: tuple[tuple[float, float], ...] = ()

    def limit_for(self, duration_s: float) -> float:
        """The detection limit for unloading held ``duration_s`` seconds."""
        return _limit(self.spreads, duration_s)


def _limit(spreads: tuple[tuple[float, float], ...], duration_s: float) -> float:
    """``max(FLOOR_PCT, K_SIGMA * sd_D)`` for unloading held ``duration_s`` (``D`` between 0.5 and 8 s)."""
    if not spreads:
        return FLOOR_PCT
    w0, sd0 = spreads[0]
    d = min(max(duration_s, MIN_SUPPORT_S), _LONGEST_S)
    return max(FLOOR_PCT, K_SIGMA * sd0 * math.sqrt(w0 / d))


def _running_mean(x: np.ndarray, n: int) -> np.ndarray:
    """Centred running mean over ``n`` samples, NaN where any sample in the window is NaN."""
    n = max(1, n)
    if n > x.size:
        return np.full(x.size, np.nan)
    ok = np.isfinite(x)
    filled = np.where(ok, x, 0.0)
    k = np.ones(n) / n
    mean = np.convolve(filled, k, mode="same")
    frac = np.convolve(ok.astype(float), k, mode="same")
    return np.where(frac > 0.999, mean, np.nan)


def detect_support(*, t_s: np.ndarray, fz_n: np.ndarray, body_weight_n: float, fs_hz: float,
                   mask: np.ndarray | None = None) -> SupportFinding:
    """Hand-support episodes in a hold window (module notes).

    Parameters
    ----------
    t_s : ndarray
        Uniform sample times of the hold window, in s.
    fz_n : ndarray
        Vertical force at those times, in N.
    body_weight_n : float
        The body weight from the two-foot baseline, in N.
    fs_hz : float
        Sample rate, in Hz.
    mask : ndarray of bool, optional
        False where support must not be looked for (a touchdown off the plate).

    Returns
    -------
    SupportFinding
        Episodes (start, end, mean unloading), the detection limit for 1 s
        of unloading and the fluctuation's spread; the limit is None when the
        window has less than 2 s of usable samples.
    """
    t = np.asarray(t_s, dtype=float)
    fz = np.asarray(fz_n, dtype=float)
    if t.shape != fz.shape:
        raise ValueError(f"t_s and fz_n must have the same shape, got {t.shape} and {fz.shape}")
    if not (body_weight_n > 0 and math.isfinite(body_weight_n)):
        raise ValueError(f"body_weight_n must be a positive force in N, got {body_weight_n!r}")
    if not (fs_hz > 0 and math.isfinite(fs_hz)):
        raise ValueError(f"fs_hz must be a positive rate in Hz, got {fs_hz!r}")
    u = 100.0 * (body_weight_n - fz) / body_weight_n
    if mask is not None:
        u = np.where(np.asarray(mask, dtype=bool), u, np.nan)
    u = np.where(np.isfinite(u), u, np.nan)
    usable = int(np.isfinite(u).sum())
    if usable < 2.0 * fs_hz:
        return SupportFinding((), None, None)

    def n_of(seconds: float) -> int:
        return max(1, int(round(seconds * fs_hz)))

    # the fluctuation's spread at 0.5 s: the running mean about a running median that follows
    # support and drift (robust: 1.4826 MAD); longer means spread as if white at low frequencies
    filled = np.where(np.isfinite(u), u, np.nanmedian(u))
    slow = ndimage.median_filter(filled, size=n_of(_MEDIAN_S), mode="nearest")
    means = {w: _running_mean(u, n_of(w)) for w in _SEED_WINDOWS_S}
    m05 = means[0.5]
    dev = (m05 - slow)[np.isfinite(m05)]
    if dev.size < fs_hz:
        return SupportFinding((), None, None)
    sd_05 = float(1.4826 * np.median(np.abs(dev - np.median(dev))))
    table = tuple((w, sd_05 * math.sqrt(0.5 / w)) for w in _SEED_WINDOWS_S)

    def limit(w: float) -> float:
        return _limit(table, w)

    # seeds at every scale, grown over the hand's ramps
    seeds = np.zeros(u.size, dtype=bool)
    for w in _SEED_WINDOWS_S:
        seeds |= np.nan_to_num(means[w], nan=-np.inf) >= limit(w)
    labels, count = ndimage.label(seeds)
    grown = np.zeros(u.size, dtype=bool)
    m05_safe = np.nan_to_num(m05, nan=-np.inf)
    m_short = np.nan_to_num(_running_mean(u, n_of(0.15)), nan=-np.inf)
    for k in range(1, count + 1):
        idx = np.flatnonzero(labels == k)
        level = float(np.max(m05_safe[idx]))
        if not math.isfinite(level):
            continue
        low = max(0.15 * level, sd_05, FLOOR_PCT / 2)
        # a long window's seed reaches half its window past the support, and may span two
        # supports: grow from each stretch of its core on its own
        core_mask = np.zeros(u.size, dtype=bool)
        core_mask[idx[m05_safe[idx] >= low]] = True
        core_labels, n_core = ndimage.label(core_mask)
        for j in range(1, n_core + 1):
            core = np.flatnonzero(core_labels == j)
            a, b = core[0], core[-1]
            while a > 0 and m05_safe[a - 1] >= low:
                a -= 1
            while b < u.size - 1 and m05_safe[b + 1] >= low:
                b += 1
            # the 0.5 s mean reaches a quarter second past the hand's ends: trim on a short mean
            while a < b and m_short[a] < low:
                a += 1
            while b > a and m_short[b] < low:
                b -= 1
            grown[a: b + 1] = True
    # merge short gaps, then keep what is long and strong enough
    grown = ndimage.binary_closing(grown, structure=np.ones(n_of(_MERGE_GAP_S)), border_value=0) | grown
    labels, count = ndimage.label(grown)
    runs = []
    for k in range(1, count + 1):
        idx = np.flatnonzero(labels == k)
        vals = u[idx]
        if not np.isfinite(vals).any():
            continue
        start, end = float(t[idx[0]]), float(t[idx[-1]] + 1.0 / fs_hz)
        mean = float(np.nanmean(vals))
        if end - start >= MIN_SUPPORT_S and mean >= limit(end - start):
            runs.append(SupportRun(start, end, mean))
    return SupportFinding(tuple(runs), limit(1.0), sd_05, table)
