"""What the therapist's pages show, worked out from the stored trials: plain data and chart SVGs.

No web framework here: functions take ORM objects, recordings and metrics
dicts (the ``analyze`` contract, DESIGN.md section 5) and return what the
templates and the PDF report print. The routes (:mod:`webui.routes.pages`)
only fetch and render.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from station.core.cop import GRAVITY_M_S2, centre_of_pressure
from station.core.frames import SYNTHETIC_SOURCES
from station.core.recording import PELVIS_COLUMN, Recording
from station.core.sides import SIDES
from station.drills.catalogue import ALL_DRILLS
from station.scoring.norms import norm_reference
from station.scoring.scores import ASYMMETRY_FLAG_PCT, session_summary
from webui.views import charts
from webui.views.charts import LEFT, RIGHT, SIDE_STYLE, Band, Series, TrendSeries

SINGLE_LEG = "single-leg"
QUIET_STANCE = "quiet-stance"
#: trial protocols that are tests; anything else with a score is a drill
TESTS = (SINGLE_LEG, QUIET_STANCE)
#: where a drill's metrics keep its score (points), in order of preference
DRILL_SCORE_KEYS = ("score", "points")


def age_years(birth_year: int | None, *, today: dt.date | None = None) -> float | None:
    """Age in whole years from the year of birth (the station stores no birth date)."""
    if birth_year is None:
        return None
    return float((today or dt.date.today()).year - int(birth_year))


def norm_for(birth_year: int | None) -> dict[str, Any] | None:
    age = age_years(birth_year)
    if age is None or age < 0:
        return None
    return norm_reference(age)


def local_time(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC time as the station's local time, for people."""
    if value is None:
        return "–"
    return value.astimezone().strftime(fmt)


def fmt(value: Any, digits: int = 1, *, unit: str = "") -> str:
    """A number for a table: fixed decimals, '–' when unknown, the unit after a thin space."""
    if value is None or isinstance(value, bool):
        return "–" if value is None else ("yes" if value else "no")
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(v):
        return "–"
    s = f"{v:.{digits}f}".replace("-", "\u2212")
    return f"{s}\u202f{unit}" if unit else s


# -- metrics, with their units, for the trial page and the report -----------------------------------------

#: (key path, label, unit, decimals) of every metric a page shows; the unit is the column's header
METRIC_ROWS: tuple[tuple[str, str, str, int], ...] = (
    ("hold_time_s", "Hold time", "s", 1),
    ("completed", "Completed 30 s", "", 0),
    ("onset_s", "Lift-off at", "s", 2),
    ("touchdowns", "Touchdowns", "count", 0),
    ("support.time_s", "Hand support, time", "s", 1),
    ("support.mean_pct_bw", "Hand support, mean", "% BW", 1),
    ("support.peak_pct_bw", "Hand support, peak (0.5 s)", "% BW", 1),
    ("support.detection_limit_pct_bw", "Hand support, detection limit", "% BW", 1),
    ("ml_offset_mm", "Lateral offset of the COP from the stance foot", "mm", 1),
    ("ml_offset_drift_mm_s", "Lateral drift of the COP", "mm/s", 2),
    ("cop_window.start_s", "Sway window, from", "s", 2),
    ("cop_window.duration_s", "Sway window, duration", "s", 1),
    ("cop_window.n_samples", "Sway window, samples", "count", 0),
    ("cop.mean_velocity_mm_s", "COP mean velocity (sway velocity)", "mm/s", 1),
    ("cop.path_length_mm", "COP path length", "mm", 0),
    ("cop.ml_range_mm", "COP range, medio-lateral", "mm", 1),
    ("cop.ap_range_mm", "COP range, antero-posterior", "mm", 1),
    ("cop.ml_rms_mm", "COP RMS, medio-lateral", "mm", 1),
    ("cop.ap_rms_mm", "COP RMS, antero-posterior", "mm", 1),
    ("cop.ellipse95_area_mm2", "95 % prediction ellipse area", "mm²", 0),
    ("duration_s", "Whole recording, duration", "s", 1),
    ("n_samples", "Whole recording, samples", "count", 0),
    ("sample_rate_hz", "Sample rate", "Hz", 0),
    ("body_weight_n", "Body weight (baseline)", "N", 0),
    ("lowpass_hz", "Low-pass cut-off", "Hz", 0),
    ("hold_s", "Hold asked", "s", 0),
    # the pelvis sensor (issue 14)
    ("pelvis.sign", "Trendelenburg sign, measured", "", 0),
    ("pelvis.drop_mean_deg", "Pelvic drop of the lifted side, mean", "°", 1),
    ("pelvis.drop_max_deg", "Pelvic drop of the lifted side, largest (0.5 s)", "°", 1),
    ("pelvis.drop_onset_s", "Pelvic drop beyond the threshold, after", "s", 1),
    ("pelvis.drop_slope_deg_s", "Pelvic drop, change during the hold", "°/s", 2),
    ("pelvis.valid_pct", "Pelvis sensor, hold covered", "%", 0),
    # drills
    ("score", "Drill score", "points", 0),
    ("success_pct", "Successful attempts", "%", 0),
    ("level", "Level reached", "level", 0),
    ("best_streak", "Best streak", "count", 0),
    ("rounds_completed", "Rounds completed", "count", 0),
)

#: the groups of the measures table: (id, key paths); the titles say what each group covers
_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("test", ("hold_time_s", "completed", "onset_s", "touchdowns", "support.time_s", "support.mean_pct_bw",
              "support.peak_pct_bw", "support.detection_limit_pct_bw", "ml_offset_mm", "ml_offset_drift_mm_s")),
    ("sway", ("cop_window.start_s", "cop_window.duration_s", "cop_window.n_samples", "cop.mean_velocity_mm_s",
              "cop.path_length_mm", "cop.ml_range_mm", "cop.ap_range_mm", "cop.ml_rms_mm", "cop.ap_rms_mm",
              "cop.ellipse95_area_mm2")),
    ("pelvis", ("pelvis.sign", "pelvis.drop_mean_deg", "pelvis.drop_max_deg", "pelvis.drop_onset_s",
                "pelvis.drop_slope_deg_s", "pelvis.valid_pct")),
    ("recording", ("duration_s", "n_samples", "sample_rate_hz", "body_weight_n", "lowpass_hz", "hold_s")),
    ("drill", ("score", "success_pct", "level", "best_streak", "rounds_completed")),
)


def metric_value(metrics: Mapping[str, Any] | None, path: str) -> Any:
    node: Any = metrics or {}
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    if path == "touchdowns" and isinstance(node, list):
        return len(node)
    return node


def _row(metrics: Mapping[str, Any] | None, path: str, label: str, unit: str, digits: int,
         window: CopWindow | None = None) -> dict[str, str] | None:
    value = metric_value(metrics, path)
    if path.startswith("cop_window.") and window is not None and window.source == "estimated":
        # an older trial: no stored window, the one its lift-off and hold time give
        value = {"start_s": window.start_s, "duration_s": window.duration_s, "n_samples": window.n_samples}[
            path.split(".", 1)[1]]
        if path.endswith("n_samples") and value is not None:
            label = f"{label} (estimated)"
    if value is None or isinstance(value, (dict, list)):
        return None
    if path == "body_weight_n":
        label = f"{label} ({float(value) / GRAVITY_M_S2:.1f} kg)"
    return {"key": path, "label": label, "unit": unit, "value": fmt(value, digits)}


def metric_rows(metrics: Mapping[str, Any] | None, *, protocol: str | None = None) -> list[dict[str, str]]:
    """Every metric present, as ``{label, value, unit, key}`` rows (the value without its unit)."""
    window = cop_window(metrics, protocol=protocol or (metrics or {}).get("protocol") or SINGLE_LEG)
    rows = []
    for path, label, unit, digits in METRIC_ROWS:
        row = _row(metrics, path, label, unit, digits, window)
        if row is not None:
            rows.append(row)
    return rows


def metric_groups(metrics: Mapping[str, Any] | None, *, protocol: str | None = None) -> list[dict[str, Any]]:
    """The measures table in groups, each titled with what it covers:
    ``[{id, title, rows}]`` (groups without a row left out).

    The sway measures' title names their window (the hold) with its duration and samples, and the
    whole recording's group its own, so the two are never confused.
    """
    protocol = protocol or (metrics or {}).get("protocol") or SINGLE_LEG
    window = cop_window(metrics, protocol=protocol)
    rows = {r["key"]: r for r in metric_rows(metrics, protocol=protocol)}
    titles = {
        "test": "The test",
        "sway": f"Sway measures, over {window.text()}" if window else "Sway measures",
        "recording": f"The whole recording: {recording_text(metrics)}" if recording_text(metrics)
        else "The whole recording",
        "drill": "The drill",
        "pelvis": "The pelvis (sensor at the sacrum; drop: positive = the lifted side lower)",
    }
    out = []
    for gid, paths in _GROUPS:
        g_rows = [rows[p] for p in paths if p in rows]
        if g_rows:
            out.append({"id": gid, "title": titles[gid], "rows": g_rows})
    return out


# -- what a number covers: the sway window, the whole recording, the trial's quality, the support limit ------


def is_scored(metrics: Mapping[str, Any] | None) -> bool:
    """True when the metrics have sway measures (an aborted or unscored trial has none)."""
    cop = (metrics or {}).get("cop")
    return isinstance(cop, Mapping) and any(isinstance(v, (int, float)) and not isinstance(v, bool)
                                             for v in cop.values())


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


@dataclass(frozen=True)
class CopWindow:
    """The window the ``cop.*`` measures cover.

    ``source``: ``stored`` (the metrics' ``cop_window``), ``estimated`` (an older trial scored before the
    window was stored: from its lift-off and hold time, the sample count from the sample rate) or
    ``whole`` (quiet stance: the whole analysed recording).
    """

    start_s: float | None
    duration_s: float | None
    n_samples: int | None
    what: str
    source: str

    @property
    def end_s(self) -> float | None:
        if self.start_s is None or self.duration_s is None:
            return None
        return self.start_s + self.duration_s

    def text(self) -> str:
        """``the hold window, 5.26 s to 14.30 s (9.0 s, 723 samples)``."""
        parts = []
        if self.duration_s is not None:
            parts.append(f"{fmt(self.duration_s, 1)} s")
        if self.n_samples is not None:
            parts.append(f"{'about ' if self.source == 'estimated' else ''}{self.n_samples} samples")
        span = ""
        if self.start_s is not None and self.end_s is not None:
            span = f", {fmt(self.start_s, 2)} s to {fmt(self.end_s, 2)} s"
        details = f" ({', '.join(parts)})" if parts else ""
        return f"the {self.what}{span}{details}"

    def note(self) -> str:
        """What a reader needs to know about where the window comes from ('' when it was stored)."""
        if self.source == "estimated":
            return ("This trial was scored before the station stored the window of its sway measures: it is "
                    "taken from the lift-off and the hold time, and the number of samples is estimated.")
        return ""


def cop_window(metrics: Mapping[str, Any] | None, *, protocol: str = SINGLE_LEG) -> CopWindow | None:
    """The window the sway measures cover, or None when the trial has no sway measures (or no known window)."""
    m = metrics or {}
    if not is_scored(m):
        return None
    stored = m.get("cop_window")
    if isinstance(stored, Mapping):
        n = _number(stored.get("n_samples"))
        return CopWindow(start_s=_number(stored.get("start_s")), duration_s=_number(stored.get("duration_s")),
                         n_samples=None if n is None else int(round(n)),
                         what="hold window" if protocol == SINGLE_LEG else "analysed window", source="stored")
    if protocol == SINGLE_LEG:
        onset, hold = _number(m.get("onset_s")), _number(m.get("hold_time_s"))
        if onset is None or hold is None:
            return None
        fs = _number(m.get("sample_rate_hz"))
        return CopWindow(start_s=onset, duration_s=hold, n_samples=int(round(hold * fs)) if fs else None,
                         what="hold window", source="estimated")
    n = _number(m.get("n_samples"))
    return CopWindow(start_s=None, duration_s=_number(m.get("duration_s")),
                     n_samples=None if n is None else int(round(n)), what="whole recording", source="whole")


def recording_text(metrics: Mapping[str, Any] | None) -> str:
    """The whole analysed recording: ``37.6 s, 3008 samples at 80 Hz`` ('' when unknown)."""
    m = metrics or {}
    duration, n, fs = _number(m.get("duration_s")), _number(m.get("n_samples")), _number(m.get("sample_rate_hz"))
    parts = []
    if duration is not None:
        parts.append(f"{fmt(duration, 1)} s")
    if n is not None:
        parts.append(f"{int(round(n))} samples" + (f" at {fmt(fs, 0)} Hz" if fs else ""))
    return ", ".join(parts)


def quality_concerns(metrics: Mapping[str, Any] | None) -> list[dict[str, str]] | None:
    """The trial's quality concerns as ``[{name, message}]`` ([] when none), or None when the trial was
    scored before the station judged quality (no ``quality`` field)."""
    q = (metrics or {}).get("quality")
    if q is None:
        return None
    if isinstance(q, Mapping):  # tolerate a single concern
        q = [q]
    if not isinstance(q, (list, tuple)):
        return None
    out = []
    for item in q:
        if isinstance(item, Mapping):
            name = str(item.get("name") or "").strip()
            message = str(item.get("message") or "").strip()
        else:
            name, message = "", str(item).strip()
        if name or message:
            out.append({"name": name, "label": name.replace("_", " ").replace("-", " "),
                        "message": message or name.replace("_", " ")})
    return out


def support_text(metrics: Mapping[str, Any] | None) -> str:
    """Hand support in one line, with the trial's detection limit:
    ``Hand support: none detected (detection limit 1.2 % BW)`` ('' for a trial without support data)."""
    m = metrics or {}
    support = m.get("support")
    if not isinstance(support, Mapping):
        return ""
    time_s = _number(support.get("time_s"))
    if "detection_limit_pct_bw" in support:
        limit = _number(support.get("detection_limit_pct_bw"))
        limit_txt = (f"detection limit {fmt(limit, 1)} % BW" if limit is not None
                     else "detection limit not known for this trial")
    else:
        limit_txt = "detection limit not recorded: the trial was scored before the station reported it"
    if not time_s:
        return f"Hand support: none detected ({limit_txt})"
    mean, peak = _number(support.get("mean_pct_bw")), _number(support.get("peak_pct_bw"))
    what = f"{fmt(time_s, 1)} s"
    if mean is not None:
        what += f", mean {fmt(mean, 1)} % BW"
    if peak is not None:
        what += f", peak {fmt(peak, 1)} % BW"
    return f"Hand support: {what} ({limit_txt})"


def trial_numbers(metrics: Mapping[str, Any] | None, protocol: str | None = None) -> dict[str, Any]:
    """What a trial's numbers cover, for the trial page and the reports: ``{test, scored, groups, window,
    window_text, window_note, recording_text, quality, support_text}`` (``window`` None and
    ``window_text`` '' when the trial has no sway measures; ``quality`` None when not judged; ``test``
    False for a drill, which has no sway measures by design)."""
    protocol = protocol or (metrics or {}).get("protocol") or SINGLE_LEG
    window = cop_window(metrics, protocol=protocol)
    return {
        "test": protocol in TESTS, "scored": window is not None, "groups": metric_groups(metrics, protocol=protocol),
        "window": window,
        "window_text": window.text() if window else "", "window_note": window.note() if window else "",
        "recording_text": recording_text(metrics), "quality": quality_concerns(metrics),
        "support_text": support_text(metrics), "pelvis": pelvis_view(metrics),
    }


def pelvis_view(metrics: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The measured Trendelenburg sign, for beside the clinician's grade: ``{sign, positive, text, compensated}``;
    None for a trial recorded without the pelvis sensor."""
    p = (metrics or {}).get("pelvis")
    if not isinstance(p, Mapping) or p.get("sign") not in ("positive", "negative"):
        return None
    positive = p["sign"] == "positive"
    text = (f"largest drop of the lifted side {fmt(p.get('drop_max_deg'), 1)}°, mean {fmt(p.get('drop_mean_deg'), 1)}°"
            f" (threshold {fmt(p.get('threshold_deg', 2.0), 0)}°)")
    if positive and p.get("drop_onset_s") is not None:
        text += f"; beyond the threshold after {fmt(p.get('drop_onset_s'), 1)} s of the hold"
    compensated = bool(p.get("compensated"))
    if compensated:
        text += "; the pelvis held level with the COP shifted over the stance foot: a trunk lean (compensated)"
    return {"sign": p["sign"], "positive": positive, "text": text, "compensated": compensated}


def is_simulated(trials: Iterable[Any]) -> bool:
    """True when any of the trials comes from the simulated plate (or a replay): not a measurement."""
    return any(getattr(t, "plate_source", None) in SYNTHETIC_SOURCES for t in trials)




# -- one trial's charts -----------------------------------------------------------------------------------


@dataclass
class TrialCharts:
    statokinesigram: str = ""
    statokinesigram_zoom: str = ""
    force: str = ""
    cop: str = ""
    pelvis: str = ""
    problem: str = ""
    window: CopWindow | None = None


@dataclass
class _TrialCop:
    """A trial's signals as the analysis takes them, and the COP of the window its sway measures cover."""

    t: np.ndarray
    fz: np.ndarray
    x: np.ndarray
    y: np.ndarray
    window: CopWindow | None
    span: tuple[float, float] | None
    hx: np.ndarray
    hy: np.ndarray
    problem: str = ""


def _trial_cop(rec: Recording, metrics: Mapping[str, Any] | None, *, protocol: str) -> _TrialCop:
    """The COP is taken as the analysis takes it: resampled onto the nominal rate, the analysed window
    low-passed on its own at the metrics' ``lowpass_hz``, so the ellipse drawn is the one whose area the
    metrics give. No sway measures (aborted, unscored): no window."""
    from station.scoring.analyze import AnalysisError, prepare_trial
    from station.signal.filters import lowpass_zero_phase, min_samples_zero_phase

    problem = ""
    try:
        trial = prepare_trial(rec)
        t, forces, fs = trial.t_s, trial.forces_n, trial.fs_hz
    except (AnalysisError, ValueError) as exc:
        problem = f"the recording cannot be resampled: {exc}"
        t, forces, fs = rec.t_s, rec.forces_n, rec.sample_rate_hz
    g = rec.geometry
    fz, x, y = centre_of_pressure(forces, ml_mm=g.ml_mm, ap_mm=g.ap_mm)
    window = cop_window(metrics, protocol=protocol)
    span: tuple[float, float] | None = None
    if window is None:
        idx = np.arange(0)
    elif window.start_s is not None and window.end_s is not None:
        span = (window.start_s, window.end_s)
        first = int(np.searchsorted(t, window.start_s - 1e-6))
        if window.source == "stored" and window.n_samples:
            idx = np.arange(first, min(t.size, first + window.n_samples))
        else:
            idx = np.flatnonzero((t >= window.start_s - 1e-9) & (t < window.end_s - 1e-9))
    else:
        idx = np.arange(t.size)
    hx, hy = x[idx], y[idx]
    empty = np.flatnonzero(~np.isfinite(hx))
    if empty.size:
        hx, hy = hx[: empty[0]], hy[: empty[0]]
    lowpass = (metrics or {}).get("lowpass_hz")
    if lowpass and hx.size >= min_samples_zero_phase() and lowpass < fs / 2:
        hx = lowpass_zero_phase(hx, fs_hz=fs, cutoff_hz=float(lowpass))
        hy = lowpass_zero_phase(hy, fs_hz=fs, cutoff_hz=float(lowpass))
    return _TrialCop(t=t, fz=fz, x=x, y=y, window=window, span=span, hx=hx, hy=hy, problem=problem)


def _window_label(window: CopWindow | None) -> str:
    """The legend's words for the window: ``COP, hold window: 30.0 s, 2400 samples`` (short: the chart is narrow)."""
    if window is None:
        return "COP, whole recording (not scored: no sway window)"
    parts = []
    if window.duration_s is not None:
        parts.append(f"{fmt(window.duration_s, 1)} s")
    if window.n_samples is not None:
        parts.append(f"{'about ' if window.source == 'estimated' else ''}{window.n_samples} samples")
    return f"COP, {window.what}" + (f": {', '.join(parts)}" if parts else "")


def _zoom_chart(rec: Recording, tc: _TrialCop, *, stance_side: str | None, uid: str, width: float,
                span_mm: float | None = None, title: str = "") -> str:
    """The enlarged statokinesigram of the sway window ('' without one: nothing to enlarge)."""
    if tc.window is None:
        return ""
    g = rec.geometry
    return charts.statokinesigram(
        cop_ml_mm=tc.hx, cop_ap_mm=tc.hy, plate_ml_mm=g.ml_mm, plate_ap_mm=g.ap_mm, feet_ml_mm=g.feet_ml_mm,
        stance_side=stance_side, zoom=True, title=title or f"COP over the {tc.window.what}, enlarged",
        window_label=_window_label(tc.window), width=width, uid=uid, span_mm=span_mm)


def trial_charts(rec: Recording, metrics: Mapping[str, Any] | None, *, protocol: str,
                 stance_side: str | None, uid: str = "t", sk_width: float = 480) -> TrialCharts:
    """The trial page's charts from its recording and metrics (the COP as :func:`_trial_cop` takes it).

    A trial without sway measures (aborted, unscored) draws its whole COP trace, labelled as not scored,
    with no analysed window, no ellipse and no enlarged view.
    """
    tc = _trial_cop(rec, metrics, protocol=protocol)
    out = TrialCharts(problem=tc.problem, window=tc.window)
    t, fz, x, y = tc.t, tc.fz, tc.x, tc.y
    g = rec.geometry
    t_end = float(t[-1]) if t.size else 0.0
    scored = tc.window is not None
    windowed = scored and tc.span is not None
    out.statokinesigram = charts.statokinesigram(
        cop_ml_mm=x, cop_ap_mm=y, hold_ml_mm=tc.hx if windowed else None, hold_ap_mm=tc.hy if windowed else None,
        plate_ml_mm=g.ml_mm, plate_ap_mm=g.ap_mm, feet_ml_mm=g.feet_ml_mm, stance_side=stance_side,
        title="COP on the plate, seen from above", width=sk_width, uid=f"{uid}-sk", scored=scored,
        window_label=_window_label(tc.window),
        rest_label="COP, rest of the recording" if scored else (
            "COP, whole recording (no sway measures)" if metrics else "COP, whole recording (not scored)"))
    out.statokinesigram_zoom = _zoom_chart(rec, tc, stance_side=stance_side, uid=f"{uid}-skz", width=sk_width)
    bands = []
    vlines: list[tuple[float, str]] = []
    m = metrics or {}
    for k, td in enumerate(m.get("touchdowns") or [], 1):
        start = float(td.get("t_s") or 0.0)
        dur = td.get("duration_s")
        end = start + float(dur) if dur is not None else t_end
        bands.append(Band(start=start, end=end, kind="touchdown",
                          label=f"touchdown {k} ({td.get('where', '?')}), {start:.1f} s"))
    for ep in (m.get("support") or {}).get("episodes") or []:
        start = float(ep.get("t_s") or 0.0)
        bands.append(Band(start=start, end=start + float(ep.get("duration_s") or 0.0), kind="support",
                          label=f"hand support {fmt(ep.get('mean_pct_bw'), 1)} % BW, {start:.1f} s"))
    if protocol == SINGLE_LEG and tc.span is not None:
        vlines.append((tc.span[0], "lift-off"))
        vlines.append((tc.span[1], f"end of hold ({tc.span[1] - tc.span[0]:.1f} s)"))
    bw = m.get("body_weight_n")
    hlines = [(float(bw), f"body weight {float(bw):.0f} N")] if bw else []
    out.force = charts.time_chart(
        series=[Series(label="Fz, total vertical force", x=t, y=fz, width=1.4)], y_label="Fz", y_unit="N",
        bands=bands, vlines=vlines, hlines=hlines, include_zero=True, title="Vertical force against time",
        uid=f"{uid}-fz")
    out.cop = charts.time_chart(
        series=[Series(label="COP medio-lateral x (+ right)", x=t, y=x, colour=LEFT["colour"], width=1.4),
                Series(label="COP antero-posterior y (+ forward)", x=t, y=y, colour=RIGHT["colour"], dash="6 3",
                       width=1.4)],
        y_label="COP", y_unit="mm", bands=bands, vlines=vlines, title="Centre of pressure against time",
        uid=f"{uid}-cop")
    out.pelvis = pelvis_chart(rec, metrics, stance_side=stance_side, bands=bands, vlines=vlines, uid=f"{uid}-pelvis")
    return out


def pelvis_chart(rec: Recording, metrics: Mapping[str, Any] | None, *, stance_side: str | None,
                 bands: Sequence[Band] = (), vlines: Sequence[tuple[float, str]] = (), uid: str = "pelvis",
                 width: float = 760, height: float = 250) -> str:
    """The pelvis angle against time ('' for a recording without the sensor's column, or no value in it).

    A scored single-leg trial shows the lifted side's drop as the score takes it (its two-foot baseline as
    0, positive = the lifted side lower, the sign's threshold dashed); otherwise the obliquity as recorded
    (positive = the right side higher). Empty cells break the line.
    """
    from station.protocols.pelvis import lifted_side_drop, obliquity_values

    if PELVIS_COLUMN not in rec.extra:
        return ""
    values = obliquity_values(rec.extra[PELVIS_COLUMN])
    if not np.isfinite(values).any():
        return ""
    p = (metrics or {}).get("pelvis")
    baseline = _number(p.get("baseline_deg")) if isinstance(p, Mapping) else None
    if baseline is not None and stance_side in SIDES:
        lifted = "right" if stance_side == "left" else "left"
        y = lifted_side_drop(obliquity_deg=values, baseline_deg=baseline, stance_side=stance_side)
        threshold = _number(p.get("threshold_deg")) or 2.0
        return charts.time_chart(
            series=[Series(label=f"drop of the lifted ({lifted}) side below its two-foot level (+ lower)", x=rec.t_s,
                           y=y, colour=SIDE_STYLE[lifted]["colour"], width=1.6)],
            y_label="pelvic drop", y_unit="°", bands=bands, vlines=vlines,
            hlines=[(0.0, "level (two-foot baseline)"), (threshold, f"sign threshold {threshold:g}°")],
            include_zero=True, title="Pelvis against time: the lifted side's drop", uid=uid, width=width,
            height=height)
    return charts.time_chart(
        series=[Series(label="pelvic obliquity (+ right side higher)", x=rec.t_s, y=values, width=1.6)],
        y_label="pelvic obliquity", y_unit="°", bands=bands, vlines=vlines, include_zero=True,
        title="Pelvis against time", uid=uid, width=width, height=height)


def report_pelvis_chart(best: Mapping[str, tuple[Any, Recording]], *, uid: str = "rp", width: float = 760,
                        height: float = 240) -> str:
    """The report's pelvis chart: the lifted side's drop in the best trial of each side, against the time from
    lift-off, on one chart ('' when neither best trial was recorded with the pelvis sensor)."""
    from station.protocols.pelvis import lifted_side_drop, obliquity_values

    series, threshold = [], 2.0
    for side in SIDES:
        trial, rec = best.get(side) or (None, None)
        m = (trial.metrics or {}) if trial is not None else {}
        p, onset = m.get("pelvis"), _number(m.get("onset_s"))
        if rec is None or PELVIS_COLUMN not in rec.extra or not isinstance(p, Mapping) or onset is None:
            continue
        baseline = _number(p.get("baseline_deg"))
        if baseline is None:
            continue
        threshold = _number(p.get("threshold_deg")) or threshold
        drop = lifted_side_drop(obliquity_deg=obliquity_values(rec.extra[PELVIS_COLUMN]), baseline_deg=baseline,
                                stance_side=side)
        t = rec.t_s - onset
        keep = t >= -2.0
        lifted = "right" if side == "left" else "left"
        style = SIDE_STYLE[side]
        series.append(Series(label=f"standing on the {side} leg: drop of the {lifted} side ({p.get('sign')})",
                             x=t[keep], y=drop[keep], colour=style["colour"], dash=style["dash"], width=1.6))
    if not series:
        return ""
    return charts.time_chart(series=series, y_label="pelvic drop", y_unit="°", x_label="time from lift-off",
                             hlines=[(0.0, "level (two-foot baseline)"), (threshold, f"sign threshold {threshold:g}°")],
                             include_zero=True, title="Pelvis: the lifted side's drop, best trial of each side",
                             uid=uid, width=width, height=height)


def report_statokinesigrams(best: Mapping[str, tuple[Any, Recording]], *, width: float = 380,
                            uid: str = "r") -> dict[str, dict[str, Any]]:
    """The report's enlarged statokinesigram of each side's best trial, all on one scale.

    ``best``: ``{side: (trial, recording)}``. Returns ``{side: {trial, svg, window, span_mm}}``: each chart
    frames its own COP, with the same millimetres per pixel as the other side's, so that comparing them by
    eye is fair.
    """
    prepared = {side: (trial, rec, _trial_cop(rec, trial.metrics, protocol=trial.protocol))
                for side, (trial, rec) in best.items()}
    spans = [charts.zoom_span_mm(tc.hx, tc.hy) for _, _, tc in prepared.values() if tc.window is not None]
    span = max(spans) if spans else None
    out = {}
    for side, (trial, rec, tc) in prepared.items():
        svg = _zoom_chart(rec, tc, stance_side=side, uid=f"{uid}{trial.id}-skz", width=width, span_mm=span,
                          title=f"{side.capitalize()} leg: COP over the {tc.window.what if tc.window else 'trial'}")
        if svg:
            out[side] = {"trial": trial, "svg": svg, "window": tc.window, "span_mm": span}
    return out


# -- a patient's visits and trends -----------------------------------------------------------------------


@dataclass
class VisitSummary:
    """One visit: its trials and the left/right summary of its single-leg tests."""

    id: int
    started_at: dt.datetime
    clinician: str
    notes: str
    trials: list[Any] = field(default_factory=list)
    summary: dict[str, Any] | None = None

    @property
    def n_single_leg(self) -> int:
        return sum(1 for t in self.trials if t.protocol == SINGLE_LEG)


def _side(trial: Any) -> str | None:
    side = (trial.metrics or {}).get("stance_side")
    if side is None and trial.stance_side is not None:
        side = trial.stance_side.value
    return side


def scored_single_leg_trials(trials: Iterable[Any]) -> list[Any]:
    """The scored single-leg trials (aborted and unscored ones left out), in order."""
    return [t for t in trials
            if t.protocol == SINGLE_LEG and t.metrics and t.state.value == "complete" and _side(t) in SIDES]


def scored_single_leg(trials: Iterable[Any]) -> list[Mapping[str, Any]]:
    """The metrics of :func:`scored_single_leg_trials` (``session_summary``'s indices point into this list),
    with the trial's stance side."""
    return [{**t.metrics, "stance_side": _side(t)} for t in scored_single_leg_trials(trials)]


def visit_summaries(visits: Sequence[Any], trials: Sequence[Any], *, age: float | None) -> list[VisitSummary]:
    """Each visit with its trials and, when it has single-leg tests, :func:`station.scoring.scores.session_summary`."""
    by_visit: dict[int, VisitSummary] = {
        v.id: VisitSummary(id=v.id, started_at=v.started_at, clinician=v.clinician, notes=v.notes) for v in visits}
    for t in trials:
        vs = by_visit.get(t.session_id)
        if vs is not None:
            vs.trials.append(t)
    for vs in by_visit.values():
        results = scored_single_leg(vs.trials)
        if results:
            vs.summary = session_summary(results, age_years=age)
    return sorted(by_visit.values(), key=lambda v: (v.started_at, v.id))


def _ts(value: dt.datetime) -> float:
    return value.timestamp()


def trend_charts(visits: Sequence[VisitSummary], trials: Sequence[Any], *, norm: Mapping[str, Any] | None,
                 uid: str = "p") -> dict[str, str]:
    """Hold time and sway velocity per visit (best trial of each side), and drill scores over time."""
    hold = {"left": [], "right": []}
    sway = {"left": [], "right": []}
    for v in visits:
        best = (v.summary or {}).get("best") or {}
        for side in SIDES:
            b = best.get(side)
            if b:
                hold[side].append((_ts(v.started_at), b.get("hold_time_s")))
                sway[side].append((_ts(v.started_at), b.get("mean_velocity_mm_s")))
    refs = []
    if norm and norm.get("expected_hold_s") is not None:
        refs.append((float(norm["expected_hold_s"]),
                     f"norm, age {norm['age_group']}: {norm['norm_hold_s']:g} s (Springer 2007)"
                     + (", capped at 30 s" if norm.get("expected_to_complete") else "")))
    out = {
        "hold": charts.trend_chart(
            series=[TrendSeries.for_side("left", hold["left"], label="left leg"),
                    TrendSeries.for_side("right", hold["right"], label="right leg")],
            y_label="hold time", y_unit="s", references=refs, y_max=30.0,
            title="Single-leg hold time, best trial per visit", uid=f"{uid}-hold"),
        "sway": charts.trend_chart(
            series=[TrendSeries.for_side("left", sway["left"], label="left leg"),
                    TrendSeries.for_side("right", sway["right"], label="right leg")],
            y_label="sway velocity", y_unit="mm/s",
            title="COP mean velocity over the hold, best trial per visit", uid=f"{uid}-sway"),
    }
    drills: dict[str, list[tuple[float, float | None]]] = {}
    for t in trials:
        if t.protocol in TESTS or not t.metrics:
            continue
        score = next((t.metrics.get(k) for k in DRILL_SCORE_KEYS if isinstance(t.metrics.get(k), (int, float))),
                     None)
        if score is not None:
            drills.setdefault(t.protocol, []).append((_ts(t.started_at), float(score)))
    if drills:
        markers = ["circle", "square", "triangle", "circle"]
        dashes = [None, "7 4", "2 3", "10 3 2 3"]
        colours = ["#1f4e9c", "#a13a00", "#2e6b2e", "#5b2a86"]
        series = [TrendSeries(label=name, points=pts, colour=colours[i % 4], dash=dashes[i % 4],
                              marker=markers[i % 4]) for i, (name, pts) in enumerate(sorted(drills.items()))]
        out["drills"] = charts.trend_chart(series=series, y_label="drill score", y_unit="points",
                                           title="Drill scores", x_label="date", uid=f"{uid}-drills")
    return out


def latest_comparison(visits: Sequence[VisitSummary]) -> tuple[VisitSummary | None, dict[str, Any] | None]:
    """The latest visit with single-leg tests, and its summary."""
    for v in reversed(visits):
        if v.summary:
            return v, v.summary
    return None, None


def comparison_rows(summary: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The left/right table: one row per measure with both sides, the difference, the symmetry index and the flag."""
    if not summary:
        return []
    best = summary.get("best") or {}
    comp = summary.get("comparison") or {}
    left, right = best.get("left") or {}, best.get("right") or {}
    rows = []
    for key, label, unit, digits, cmp_key in (
            ("hold_time_s", "Hold time", "s", 1, "hold_time"),
            ("mean_velocity_mm_s", "Sway velocity (COP mean velocity)", "mm/s", 1, "sway_velocity"),
            ("touchdowns", "Touchdowns", "count", 0, None),
            ("support_time_s", "Hand support time", "s", 1, None),
            ("ml_offset_mm", "Lateral COP offset", "mm", 1, None),
            ("pelvis_sign", "Trendelenburg sign (pelvis sensor)", "", 0, None),
            ("pelvis_drop_max_deg", "Pelvic drop of the lifted side, largest", "°", 1, None)):
        c = comp.get(cmp_key) if cmp_key else None
        if key.startswith("pelvis_") and left.get(key) is None and right.get(key) is None:
            continue  # recorded without the pelvis sensor
        rows.append({
            "label": label, "unit": unit,
            "left": fmt(left.get(key), digits), "right": fmt(right.get(key), digits),
            "difference_pct": fmt(c.get("difference_pct"), 0) if c else "",
            "symmetry_index": fmt(c.get("symmetry_index"), 2) if c else "",
            "worse_side": (c.get("worse_side") or "") if c else "",
            "flagged": bool(c and c.get("flagged")),
        })
    return rows


def flag_text(summary: Mapping[str, Any] | None) -> str:
    comp = (summary or {}).get("comparison")
    if not comp:
        return ""
    if comp.get("flagged"):
        parts = []
        for key, what in (("hold_time", "hold time"), ("sway_velocity", "sway velocity")):
            c = comp.get(key) or {}
            if c.get("flagged"):
                parts.append(f"{what} {c['difference_pct']:.0f} % worse on the {c['worse_side']}")
        return "Asymmetry flagged (≥ {:g} %): ".format(comp.get("flag_pct", ASYMMETRY_FLAG_PCT)) + "; ".join(parts)
    return "No asymmetry flag: left and right within {:g} %.".format(comp.get("flag_pct", ASYMMETRY_FLAG_PCT))


# -- a patient's home programme ------------------------------------------------------------------------------

#: the drills as the programme form names them (station.drills.DRILLS, then the pelvis drills, in that order)
DRILL_LABELS: dict[str, str] = {
    "reach": "Reach (limits of stability)",
    "limits": "Limits (maximal lean)",
    "symmetry": "Weight-shift symmetry",
    "rhythm": "Rhythmic shift",
    "single-leg-hold": "Single-leg hold",
    "hip-dip": "Hip dip (pelvis sensor)",
    "level-pelvis-hold": "Level-pelvis hold (pelvis sensor)",
}
#: rows of the programme form (more when a stored programme has more items)
PROGRAMME_ROWS = 6
#: the most rows a posted programme form may have
PROGRAMME_MAX_ROWS = 50


def drill_choices() -> list[tuple[str, str]]:
    """``(name, label)`` of the drills a programme can hold: the plate's, then the pelvis sensor's (shown
    on a station that has the sensor)."""
    return [(name, DRILL_LABELS.get(name, name.replace("-", " "))) for name in ALL_DRILLS]


def feedback_modes() -> tuple[str, ...]:
    try:
        from station.drills.feedback import FEEDBACK_MODES
    except ImportError:  # pragma: no cover - a station without the drills
        return ("continuous", "intermittent", "summary")
    return FEEDBACK_MODES


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def programme_view(programme: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A stored programme for people: ``{name, levels, rows: [{drill, amount, side, feedback, level, params}]}``."""
    if not programme or not isinstance(programme, Mapping):
        return None
    rows = []
    for item in programme.get("items") or []:
        if not isinstance(item, Mapping):
            continue
        drill = str(item.get("drill", ""))
        if item.get("rounds") is not None:
            amount = f"{_num(item['rounds'])} round{'' if item['rounds'] == 1 else 's'}"
        elif item.get("duration_s") is not None:
            try:
                amount = f"{float(item['duration_s']) / 60:g} min"
            except (TypeError, ValueError):
                amount = str(item["duration_s"])
        else:
            amount = "drill's default"
        params = item.get("params") or {}
        rows.append({"drill": DRILL_LABELS.get(drill, drill), "amount": amount,
                     "side": item.get("stance_side") or "", "feedback": item.get("feedback") or "continuous",
                     "level": item.get("level"),
                     "params": ", ".join(f"{k.replace('_', ' ')} {_num(v)}" for k, v in params.items())
                     if isinstance(params, Mapping) else ""})
    bounds = programme.get("level_bounds")
    levels = ""
    if isinstance(bounds, (list, tuple)) and len(bounds) == 2 and list(bounds) != [1, 10]:
        levels = f"{_num(bounds[0])}–{_num(bounds[1])}"
    return {"name": programme.get("name") or "", "levels": levels, "rows": rows}


def _blank_row() -> dict[str, str]:
    return {"drill": "", "amount": "", "unit": "rounds", "side": "", "feedback": "continuous", "level": "",
            "params": ""}


def programme_form(programme: Mapping[str, Any] | None) -> dict[str, Any]:
    """The programme form's values for a stored programme (or none): ``{name, level_bounds, rows}``.

    Drill parameters and level bounds set through the API have no inputs; they ride along as JSON in
    hidden fields so that saving the form keeps them.
    """
    import json

    programme = programme if isinstance(programme, Mapping) else {}
    rows = []
    for item in programme.get("items") or []:
        if not isinstance(item, Mapping):
            continue
        row = _blank_row()
        row["drill"] = str(item.get("drill", ""))
        if item.get("rounds") is not None:
            row["amount"] = _num(item["rounds"])
        elif item.get("duration_s") is not None:
            row["amount"] = _num(round(float(item["duration_s"]) / 60, 4))
            row["unit"] = "minutes"
        row["side"] = item.get("stance_side") or ""
        row["feedback"] = item.get("feedback") or "continuous"
        row["level"] = "" if item.get("level") is None else _num(item["level"])
        if item.get("params"):
            row["params"] = json.dumps(item["params"], separators=(",", ":"))
        rows.append(row)
    rows += [_blank_row() for _ in range(max(0, PROGRAMME_ROWS - len(rows)))]
    bounds = programme.get("level_bounds")
    return {"name": programme.get("name") or "", "rows": rows,
            "level_bounds": json.dumps(list(bounds)) if isinstance(bounds, (list, tuple)) else ""}


def form_rows(**columns: Sequence[str] | None) -> list[dict[str, str]]:
    """The posted form's rows from its repeated fields (``drill=[...], amount=[...]``...), at least PROGRAMME_ROWS."""
    n = min(PROGRAMME_MAX_ROWS, max([PROGRAMME_ROWS, *(len(v or ()) for v in columns.values())]))
    rows = []
    for i in range(n):
        row = _blank_row()
        for key, values in columns.items():
            if values is not None and i < len(values):
                row[key] = (values[i] or "").strip()
        rows.append(row)
    return rows


def programme_from_form(name: str, rows: Sequence[Mapping[str, str]], level_bounds: str = "") -> dict[str, Any]:
    """The programme of the posted form, checked (:meth:`station.drills.programme.Programme.from_dict`).

    Rows without a drill are left out. Raises ``ValueError`` with a message for people naming the row
    (``Row 2: stance_side is required for the single-leg hold ...``).
    """
    import json
    import re

    from station.drills.programme import Programme

    items: list[dict[str, Any]] = []
    row_of: list[int] = []
    for n, row in enumerate(rows, start=1):
        drill = row.get("drill", "")
        amount = row.get("amount", "").replace(",", ".")
        level = row.get("level", "")
        if not drill:
            if amount or row.get("side") or level:
                raise ValueError(f"Row {n}: choose a drill, or empty the row")
            continue
        item: dict[str, Any] = {"drill": drill, "feedback": row.get("feedback") or "continuous"}
        if amount:
            if row.get("unit") == "minutes":
                try:
                    minutes = float(amount)
                except ValueError:
                    raise ValueError(f"Row {n}: the minutes must be a number, got {amount!r}") from None
                if not (math.isfinite(minutes) and 1 / 60 <= minutes <= 120):
                    raise ValueError(f"Row {n}: duration_s must be 1 s to 120 minutes, got {amount} minutes")
                item["duration_s"] = round(minutes * 60, 3)
            else:
                try:
                    item["rounds"] = int(amount)
                except ValueError:
                    raise ValueError(f"Row {n}: rounds must be a whole number, got {amount!r}") from None
        if row.get("side"):
            item["stance_side"] = row["side"]
        if level:
            try:
                item["level"] = int(level)
            except ValueError:
                raise ValueError(f"Row {n}: level must be a whole number from 1 to 10, got {level!r}") from None
        if row.get("params"):
            try:
                item["params"] = json.loads(row["params"])
            except ValueError:
                raise ValueError(f"Row {n}: the drill's stored settings are not valid JSON") from None
        items.append(item)
        row_of.append(n)
    if not items:
        raise ValueError("Choose at least one drill (or clear the programme)")
    data: dict[str, Any] = {"name": name.strip(), "items": items}
    if level_bounds:
        try:
            data["level_bounds"] = json.loads(level_bounds)
        except ValueError:
            raise ValueError("the stored level bounds are not valid JSON") from None
    try:
        return Programme.from_dict(data).to_dict()
    except (ValueError, TypeError) as exc:
        message = re.sub(r"^items\[(\d+)\][.:]\s?", lambda m: f"Row {row_of[int(m.group(1))]}: ", str(exc))
        raise ValueError(message) from None
