"""Rhythmic shift: side-to-side (or front-to-back) weight shifts paced by a metronome, at three speeds.

The pacer moves as ``A sin(2 pi (t - t0) / T)`` about the centre of the
stance along ``axis`` (``ml``: side to side, positive to the right; ``ap``:
front to back, positive forward), starting at the centre toward the positive
side; a ``beat`` cue sounds at each turn (phases 0.25 and 0.75). ``A`` is
``amplitude_pct`` % of the patient's smaller limit along the axis; round
``i`` runs ``cycles`` cycles (and a quarter, to close the last one) at period ``slow_period_s * speeds[i mod 3]``
(``speeds`` 1, 0.7, 0.5: slow, medium, fast) unless ``periods_s`` lists the periods.

Per round, from the COP during the round (``s`` = its displacement along the
axis minus its mean over the round's whole paced cycles; :mod:`station.drills.measures`):

``period_s``, ``measured_period_s``
    The paced period and the mean time between upward zero crossings of ``s``
    (hysteresis a quarter of ``A``).
``tempo_error_pct``, ``abs_tempo_error_pct``
    ``100 (measured - paced) / paced`` (positive: too slow) and its size.
``amplitude_mm``, ``amplitude_pct``
    The mean peak ``|s|`` of the complete half cycles, and it in % of ``A``.
``period_cv_pct``, ``amplitude_cv_pct``, ``consistency_pct``
    Coefficients of variation of the cycle periods and half-cycle peaks, and
    ``100 - their mean`` (at least 0): 100 % is a perfectly regular rhythm.
``on_axis_path_mm``, ``off_axis_path_mm``, ``off_axis_pct``
    Amount of movement along and across the axis, and ``100 off / on``.
``tracking_rms_mm``
    RMS distance between the COP along the axis and the pacer.
``cycles``, ``good_cycles``, ``success_pct``
    Cycles found online, those within 15 % of the paced period reaching at
    least half the amplitude, and ``100 good / (cycles paced - 1)`` (the
    first paced cycle has no complete crossing-to-crossing period), at most 100.

A good cycle is a hit (5 points plus 1 per hit before it in the streak, at most 5);
a poor one ends the streak silently.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from station.drills.base import MAX_ROUNDS, Drill, DrillEvent, nanmean
from station.drills.measures import (
    axis_path_lengths_mm,
    coefficient_of_variation_pct,
    half_cycle_amplitudes_mm,
    tempo_error_pct,
    upward_crossings_s,
)
from station.drills.params import ParamSpec, choice, integer, number, numbers, optional
from station.drills.view import Metronome, SummaryLine

__all__ = ["RhythmDrill", "rhythm_measures"]

_ROUND_KEYS = ("tempo_error_pct", "abs_tempo_error_pct", "amplitude_pct", "consistency_pct", "off_axis_pct",
               "tracking_rms_mm", "success_pct")


def rhythm_measures(*, t_s: Any, along_mm: Any, across_mm: Any, period_s: float, amplitude_mm: float,
                    pace_mm: Any | None = None) -> dict[str, float]:
    """The round metrics of the module notes from the COP along and across the axis (relative to any origin)."""
    t = np.asarray(t_s, dtype=np.float64)
    a = np.asarray(along_mm, dtype=np.float64)
    c = np.asarray(across_mm, dtype=np.float64)
    if t.ndim != 1 or t.size < 2 or a.shape != t.shape or c.shape != t.shape:
        raise ValueError("t_s, along_mm and across_mm must be one-dimensional arrays of the same length (>= 2)")
    if not (isinstance(amplitude_mm, (int, float)) and amplitude_mm > 0):
        raise ValueError(f"amplitude_mm must be a positive number of mm, got {amplitude_mm!r}")
    # the mean over the whole paced cycles (a part cycle would bias it)
    whole = math.floor((t[-1] - t[0]) / period_s + 1e-9) * period_s
    in_whole = t < t[0] + whole - 1e-9 if whole > 0 else np.ones(t.size, dtype=bool)
    s = a - float(np.mean(a[in_whole]))
    h = 0.25 * amplitude_mm
    crossings = upward_crossings_s(t_s=t, signal_mm=s, hysteresis_mm=h)
    periods = np.diff(crossings)
    amps = half_cycle_amplitudes_mm(t_s=t, signal_mm=s, hysteresis_mm=h)
    tempo = tempo_error_pct(periods_s=periods, target_period_s=period_s)
    p_cv = coefficient_of_variation_pct(values=periods)
    a_cv = coefficient_of_variation_pct(values=amps)
    cvs = [v for v in (p_cv, a_cv) if math.isfinite(v)]
    on, off = axis_path_lengths_mm(cop_ml_mm=c, cop_ap_mm=a, direction_deg=0.0)
    amp = float(np.mean(amps)) if amps.size else math.nan
    out = {
        "period_s": float(period_s),
        "measured_period_s": float(np.mean(periods)) if periods.size else math.nan,
        "tempo_error_pct": tempo,
        "abs_tempo_error_pct": abs(tempo),
        "amplitude_mm": amp,
        "amplitude_pct": 100.0 * amp / amplitude_mm,
        "period_cv_pct": p_cv,
        "amplitude_cv_pct": a_cv,
        "consistency_pct": max(0.0, 100.0 - float(np.mean(cvs))) if cvs else math.nan,
        "on_axis_path_mm": on,
        "off_axis_path_mm": off,
        "off_axis_pct": 100.0 * off / on if on > 0 else math.nan,
        "tracking_rms_mm": math.nan,
    }
    if pace_mm is not None:
        pace = np.asarray(pace_mm, dtype=np.float64)
        if pace.shape != t.shape:
            raise ValueError("pace_mm must have the shape of t_s")
        out["tracking_rms_mm"] = float(np.sqrt(np.mean((a - pace) ** 2)))
    return out


class RhythmDrill(Drill):
    name = "rhythm"
    title = "Rhythmic shift"
    LEVEL_PARAMS: ParamSpec = {
        "amplitude_pct": (None, number(5.0, 120.0)),
        "slow_period_s": (None, number(0.5, 20.0)),
    }
    PARAMS: ParamSpec = {
        "rounds": (3, integer(1, MAX_ROUNDS)),
        "axis": ("ml", choice("ml", "ap")),
        "speeds": ([1.0, 0.7, 0.5], numbers(0.1, 2.0, min_n=1, max_n=10)),
        "periods_s": (None, optional(numbers(0.5, 20.0, min_n=1, max_n=10))),
        "cycles": (6, integer(2, 100)),
        "period_tolerance_pct": (15.0, number(1.0, 100.0)),
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._samples: list[tuple[float, float, float]] = []
        self._beat = 0
        self._armed = False
        self._last_cross: float | None = None
        self._peak = 0.0
        self._cycles = 0
        self._good = 0
        self._prev: tuple[float, float] | None = None

    # -- pacing ---------------------------------------------------------------------------------------
    def period_s(self) -> float:
        """The paced period of the current round, in s."""
        p = self.params
        if p["periods_s"] is not None:
            return float(p["periods_s"][self.round_index % len(p["periods_s"])])
        return float(p["slow_period_s"]) * float(p["speeds"][self.round_index % len(p["speeds"])])

    def amplitude_mm(self) -> float:
        """The paced amplitude, in mm: ``amplitude_pct`` of the smaller limit along the axis."""
        lim = self.limits
        side = min(lim.left_mm, lim.right_mm) if self.params["axis"] == "ml" else min(lim.forward_mm, lim.backward_mm)
        return self.params["amplitude_pct"] / 100.0 * side

    def pace_mm(self, elapsed_s: float) -> float:
        """Paced displacement from the centre at ``elapsed_s`` into the round."""
        return self.amplitude_mm() * math.sin(2 * math.pi * elapsed_s / self.period_s())

    def _along_across(self, x: float, y: float) -> tuple[float, float]:
        dx, dy = x - self.centre_ml_mm, y - self.centre_ap_mm
        return (dx, dy) if self.params["axis"] == "ml" else (dy, -dx)

    def _ready_instruction(self) -> str:
        way = "side to side" if self.params["axis"] == "ml" else "forward and back"
        return f"Stand still in the middle. Then sway {way} with the moving marker."

    # -- the round ----------------------------------------------------------------------------------
    def _start_round(self, t: float, events: list[DrillEvent]) -> None:
        self._samples = []
        self._beat = 0
        self._armed, self._last_cross, self._peak = False, None, 0.0
        self._cycles = self._good = 0
        self._prev = None
        way = "side to side" if self.params["axis"] == "ml" else "forward and back"
        self._instruct(t, f"Sway {way} in time with the marker ({60 / self.period_s():.0f} cycles a minute).",
                       events)

    def _on_frame(self, t: float, fz: float, x: float, y: float, events: list[DrillEvent]) -> None:
        p = self.params
        period = self.period_s()
        elapsed = t - self._round_t0
        if elapsed >= self._round_duration_s():
            self._end_round(t, events, reason="all cycles paced")
            return
        along, across = self._along_across(x, y)
        self._samples.append((t, along, across))
        beat = int(math.floor(2 * elapsed / period + 0.5))
        if beat > self._beat:
            self._beat = beat
            self._emit("beat", t, "beat", "beat", events)
        # online cycles, for the cues and the score
        amp = self.amplitude_mm()
        h = 0.25 * amp
        self._peak = max(self._peak, abs(along))
        if along < -h:
            self._armed = True
        if self._prev is not None and self._armed and self._prev[1] < 0.0 <= along:
            t0, a0 = self._prev
            tc = t0 + (-a0) / (along - a0) * (t - t0)
            if self._last_cross is not None:
                self._cycles += 1
                on_time = abs(tc - self._last_cross - period) <= p["period_tolerance_pct"] / 100.0 * period
                ok = on_time and self._peak >= 0.5 * amp
                if ok:
                    self._good += 1
                    self._hit(t, "Good rhythm!", 5 + min(self.streak, 5), events)
                else:
                    self.streak = 0
            self._last_cross, self._armed, self._peak = tc, False, 0.0
        self._prev = (t, along)

    def _round_result(self, t: float, reason: str) -> dict[str, Any]:
        period = self.period_s()
        amp = self.amplitude_mm()
        out: dict[str, Any] = {"axis": self.params["axis"], "period_s": period, "paced_amplitude_mm": amp,
                               "cycles": self._cycles, "good_cycles": self._good}
        if len(self._samples) >= 2:
            arr = np.asarray(self._samples)
            pace = amp * np.sin(2 * np.pi * (arr[:, 0] - self._round_t0) / period)
            out.update(rhythm_measures(t_s=arr[:, 0], along_mm=arr[:, 1], across_mm=arr[:, 2], period_s=period,
                                       amplitude_mm=amp, pace_mm=pace))
        expected = max(int(self.params["cycles"]) - 1, 1)
        out["success_pct"] = min(100.0, 100.0 * self._good / expected)
        return out

    def _summary_lines(self, result: Mapping[str, Any]) -> list[SummaryLine]:
        def f(key: str, unit: str) -> str:
            v = result.get(key)
            return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.0f} {unit}"
        return [
            SummaryLine("Good cycles", f"{result['good_cycles']} of {max(int(self.params['cycles']) - 1, 1)}",
                        result["success_pct"] >= 80),
            SummaryLine("Tempo error", f("tempo_error_pct", "%")),
            SummaryLine("Size of the sway", f("amplitude_pct", "% of the target")),
            SummaryLine("Off-axis movement", f("off_axis_pct", "%")),
            SummaryLine("Score", str(self.score)),
        ]

    def _aggregate(self, rounds: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {k: nanmean([r.get(k, math.nan) for r in rounds]) for k in _ROUND_KEYS}
        out["axis"] = self.params["axis"]
        out["good_cycles"] = sum(r["good_cycles"] for r in rounds)
        out["cycles"] = sum(r["cycles"] for r in rounds)
        return out

    # -- the view -----------------------------------------------------------------------------------
    def _round_duration_s(self) -> float:
        # a quarter cycle more, so that the last cycle's closing upward crossing falls in the round
        return (self.params["cycles"] + 0.25) * self.period_s()

    def _view_metronome(self) -> Metronome | None:
        if self.state != "running":
            return None
        period = self.period_s()
        e = self._round_elapsed_s
        centre = self.centre_ml_mm if self.params["axis"] == "ml" else self.centre_ap_mm
        return Metronome(axis=self.params["axis"], pace_mm=centre + self.pace_mm(e), amplitude_mm=self.amplitude_mm(),
                         period_s=period, phase=(e / period) % 1.0)
