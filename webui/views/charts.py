"""Charts drawn on the server as SVG: statokinesigram, signals against time, trends.

Pure functions: numbers in (keyword-only), one SVG string out. No state, no
I/O, nothing from the web framework, so the same charts go into the pages,
the printable report and the tests.

Print-friendly by construction: dark strokes on white, presentation
attributes (not a page's CSS) so a chart looks the same on screen, printed
and saved alone; meaning never by colour alone: left and right differ by
line style and marker shape as well as colour (left: solid line, circles;
right: dashed line, squares), touchdowns and hand support are hatched bands
with a written label. Every chart has a ``<title>`` and a ``<desc>`` for
screen readers (``role="img"``), axes with units, ticks and a legend.

Coordinates follow DESIGN.md section 3: x medio-lateral, positive to the
patient's right; y antero-posterior, positive forward (up in the
statokinesigram, as seen from above with the patient facing the screen).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

import numpy as np
from scipy import stats

__all__ = [
    "LEFT",
    "RIGHT",
    "Band",
    "Ellipse",
    "Series",
    "TrendSeries",
    "ellipse95",
    "nice_step",
    "nice_ticks",
    "statokinesigram",
    "time_chart",
    "trend_chart",
    "zoom_span_mm",
]

INK = "#111111"
MUTED = "#4a4a4a"
GRID = "#d9d9d9"
PLATE_FILL = "#f4f4f4"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif"

#: the style of each side, everywhere: colour, dash pattern (None: solid), marker
LEFT = {"colour": "#1f4e9c", "dash": None, "marker": "circle", "label": "left"}
RIGHT = {"colour": "#a13a00", "dash": "7 4", "marker": "square", "label": "right"}
SIDE_STYLE = {"left": LEFT, "right": RIGHT}

#: at most this many points per line (min/max per bucket keeps the peaks)
MAX_POINTS = 1200

_ids = itertools.count(1)


def _uid(prefix: str | None) -> str:
    return prefix if prefix else f"c{next(_ids)}"


def _num(v: float) -> str:
    """A coordinate, short: 2 decimals, no trailing zeros."""
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _step_decimals(step: float) -> int:
    """The decimals a tick step needs: 0 for 5 or 10, 1 for 0.5 or 0.2, 2 for 0.25 or 0.05..."""
    if not (step > 0 and math.isfinite(step)):
        return 0
    for decimals in range(0, 10):
        if abs(round(step, decimals) - step) <= step * 1e-6:
            return decimals
    return 10


def _fmt_tick(v: float, step: float) -> str:
    """A tick label with exactly the decimals of the step (2.5 stays 2.5; 0.2 steps read 0.0, 0.2, 0.4)."""
    decimals = _step_decimals(step)
    s = f"{v:.{decimals}f}"
    if s.startswith("-") and float(s) == 0:
        s = s[1:]
    return s.replace("-", "\u2212")


def _text(x: float, y: float, content: str, *, size: float = 12, anchor: str = "start", weight: str = "normal",
          fill: str = INK, extra: str = "", halo: bool = False) -> str:
    w = f' font-weight="{weight}"' if weight != "normal" else ""
    if halo:  # a white outline under the letters keeps a label readable over lines and hatching
        w += ' stroke="#ffffff" stroke-width="3.5" stroke-linejoin="round" paint-order="stroke"'
    return (f'<text x="{_num(x)}" y="{_num(y)}" font-size="{_num(size)}" text-anchor="{anchor}" fill="{fill}"{w}'
            f'{extra}>{escape(content)}</text>')


def _open_svg(*, width: float, height: float, title: str, desc: str, uid: str, css_class: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {css_class}" id={quoteattr(uid)} '
        f'viewBox="0 0 {_num(width)} {_num(height)}" width="{_num(width)}" height="{_num(height)}" '
        f'role="img" aria-labelledby="{uid}-title {uid}-desc" font-family="{FONT}" '
        f'preserveAspectRatio="xMidYMid meet">',
        f'<title id="{uid}-title">{escape(title)}</title>',
        f'<desc id="{uid}-desc">{escape(desc)}</desc>',
        f'<rect x="0" y="0" width="{_num(width)}" height="{_num(height)}" fill="#ffffff"/>',
    ]


def nice_step(lo: float, hi: float, *, n: int = 5, cover: bool = False) -> float:
    """The round step (1, 2 or 5 times a power of ten) for about ``n`` intervals from ``lo`` to ``hi``.

    ``cover``: the ticks are the axis' ends, at or beyond ``lo`` and ``hi`` (count the intervals
    that cover the range); otherwise the ticks fall inside it, and there are at least two.
    Of the candidate steps, the one whose count of intervals is nearest to ``n``, the larger on a tie.
    """
    lo, hi = min(lo, hi), max(lo, hi)
    span = hi - lo
    if not (span > 0 and math.isfinite(span)):
        return 1.0
    raw = span / max(1, n)
    mag = 10.0 ** math.floor(math.log10(raw))
    best, best_err = 1.0, math.inf
    # 0.5 and 20 times mag are 5 and 2 times the neighbouring power of ten: 1-2-5 numbers all
    for m in (0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0):
        step = float(f"{m * mag:.12g}")
        if cover:
            intervals = math.ceil(hi / step - 1e-9) - math.floor(lo / step + 1e-9)
        else:
            intervals = math.floor(hi / step + 1e-9) - math.ceil(lo / step - 1e-9)
            if intervals < 1:
                continue
        err = abs(intervals - n)
        if err < best_err or (err == best_err and step > best):
            best, best_err = step, err
    return best


def nice_ticks(lo: float, hi: float, *, n: int = 5) -> list[float]:
    """About ``n`` intervals of round ticks (1, 2 or 5 times a power of ten) inside ``lo`` to ``hi``."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    step = nice_step(lo, hi, n=n)
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    # each tick a whole multiple of the step, rounded to the step's decimals: no 0.30000000000000004
    decimals = _step_decimals(step)
    return [round(k * step, decimals) + 0.0 for k in range(first, last + 1)]


def _nice_range(lo: float, hi: float, *, n: int = 5, include_zero: bool = False) -> tuple[float, float, list[float]]:
    """Axis limits on round ticks that hold ``lo`` to ``hi``."""
    if include_zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    step = nice_step(lo, hi, n=n, cover=True)
    first = math.floor(lo / step + 1e-9)
    last = math.ceil(hi / step - 1e-9)
    decimals = _step_decimals(step)
    ticks = [round(k * step, decimals) + 0.0 for k in range(first, last + 1)]
    return ticks[0], ticks[-1], ticks


def _decimate(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most about ``max_points`` points: the min and the max of each bucket, in time order."""
    n = x.size
    if n <= max_points:
        return x, y
    buckets = max_points // 2
    edges = np.linspace(0, n, buckets + 1).astype(int)
    keep = []
    for a, b in zip(edges[:-1], edges[1:]):
        if b <= a:
            continue
        seg = y[a:b]
        if np.all(np.isnan(seg)):
            keep.append(a)
            continue
        i, j = a + int(np.nanargmin(seg)), a + int(np.nanargmax(seg))
        keep.extend(sorted({i, j}))
    idx = np.asarray(keep)
    return x[idx], y[idx]


def _segments(x: np.ndarray, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Runs of finite points (a NaN breaks the line)."""
    ok = np.isfinite(x) & np.isfinite(y)
    out = []
    start = None
    for i, good in enumerate(ok.tolist() + [False]):
        if good and start is None:
            start = i
        elif not good and start is not None:
            out.append((x[start:i], y[start:i]))
            start = None
    return out


def _polyline(px: np.ndarray, py: np.ndarray, *, stroke: str, width: float, dash: str | None = None,
              css_class: str = "", opacity: float | None = None) -> str:
    pts = " ".join(f"{_num(a)},{_num(b)}" for a, b in zip(px.tolist(), py.tolist()))
    d = f' stroke-dasharray="{dash}"' if dash else ""
    o = f' stroke-opacity="{opacity}"' if opacity is not None else ""
    c = f' class="{css_class}"' if css_class else ""
    return (f'<polyline{c} points="{pts}" fill="none" stroke="{stroke}" stroke-width="{_num(width)}"{d}{o} '
            f'stroke-linejoin="round" stroke-linecap="round"/>')


def _marker(kind: str, x: float, y: float, *, size: float, colour: str, css_class: str = "marker",
            title: str | None = None) -> str:
    t = f"<title>{escape(title)}</title>" if title else ""
    if kind == "square":
        s = size * 0.9
        return (f'<rect class="{css_class}" x="{_num(x - s)}" y="{_num(y - s)}" width="{_num(2 * s)}" '
                f'height="{_num(2 * s)}" fill="#ffffff" stroke="{colour}" stroke-width="2">{t}</rect>')
    if kind == "triangle":
        s = size * 1.15
        return (f'<path class="{css_class}" d="M{_num(x)},{_num(y - s)} L{_num(x + s)},{_num(y + s * 0.8)} '
                f'L{_num(x - s)},{_num(y + s * 0.8)} Z" fill="#ffffff" stroke="{colour}" stroke-width="2">{t}</path>')
    return (f'<circle class="{css_class}" cx="{_num(x)}" cy="{_num(y)}" r="{_num(size)}" fill="{colour}" '
            f'stroke="{colour}" stroke-width="1.5">{t}</circle>')


def _legend_width(label: str) -> float:
    return 34 + 6.8 * len(label)


def _legend_rows(labels: Sequence[str], max_width: float) -> int:
    rows, cx = 1, 0.0
    for label in labels:
        w = _legend_width(label)
        if cx + w > max_width and cx > 0:
            rows, cx = rows + 1, 0.0
        cx += w + 14
    return rows


def _legend(items: Sequence[tuple[str, str]], *, x: float, y: float, max_width: float) -> list[str]:
    """Legend entries ``(swatch svg at (0,0)-(24,0), label)`` laid out left to right, wrapping."""
    out = ['<g class="legend">']
    cx, cy = x, y
    for swatch, label in items:
        w = _legend_width(label)
        if cx + w > x + max_width and cx > x:
            cx, cy = x, cy + 18
        out.append(f'<g transform="translate({_num(cx)},{_num(cy)})">{swatch}'
                   f'{_text(30, 4, label, size=12)}</g>')
        cx += w + 14
    out.append("</g>")
    return out


def _marker_swatch() -> str:
    return ('<path d="M5,0 L19,0 M12,-7 L12,7" stroke="#b00020" stroke-width="2.4"/>')


def _line_swatch(colour: str, dash: str | None, width: float = 2.2, marker: str | None = None) -> str:
    d = f' stroke-dasharray="{dash}"' if dash else ""
    s = f'<line x1="0" y1="0" x2="24" y2="0" stroke="{colour}" stroke-width="{width}"{d}/>'
    if marker:
        s += _marker(marker, 12, 0, size=4, colour=colour, css_class="legend-marker")
    return s


# -- the 95 % prediction ellipse ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ellipse:
    """A 95 % prediction ellipse: centre, semi-axes (mm), angle of the major axis from +x
    (degrees, counter-clockwise)."""

    cx_mm: float
    cy_mm: float
    a_mm: float
    b_mm: float
    angle_deg: float

    @property
    def area_mm2(self) -> float:
        return math.pi * self.a_mm * self.b_mm

    def points(self, n: int = 96) -> tuple[np.ndarray, np.ndarray]:
        th = np.linspace(0.0, 2 * math.pi, n + 1)
        c, s = math.cos(math.radians(self.angle_deg)), math.sin(math.radians(self.angle_deg))
        ex, ey = self.a_mm * np.cos(th), self.b_mm * np.sin(th)
        return self.cx_mm + c * ex - s * ey, self.cy_mm + s * ex + c * ey


def ellipse95(cop_ml_mm: Sequence[float] | np.ndarray, cop_ap_mm: Sequence[float] | np.ndarray,
              *, probability: float = 0.95) -> Ellipse | None:
    """The prediction ellipse of the COP samples (DESIGN.md section 5), or None for fewer than 3 finite samples.

    Semi-axes ``sqrt(k l1)`` and ``sqrt(k l2)`` with ``l1 >= l2`` the eigenvalues
    of the sample covariance (n - 1 divisor) and
    ``k = F(p; 2, n-2) 2 (n-1)(n+1) / (n (n-2))``, so that its area
    ``pi sqrt(k l1) sqrt(k l2)`` is the contract's ``ellipse95_area_mm2``.
    """
    x = np.asarray(cop_ml_mm, dtype=float)
    y = np.asarray(cop_ap_mm, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    n = x.size
    if n < 3:
        return None
    cov = np.cov(np.vstack([x, y]), ddof=1)
    vals, vecs = np.linalg.eigh(cov)
    vals = np.clip(vals, 0.0, None)
    k = float(stats.f.ppf(probability, 2, n - 2)) * 2 * (n - 1) * (n + 1) / (n * (n - 2))
    major = vecs[:, 1]
    return Ellipse(cx_mm=float(x.mean()), cy_mm=float(y.mean()), a_mm=math.sqrt(k * vals[1]),
                   b_mm=math.sqrt(k * vals[0]), angle_deg=math.degrees(math.atan2(major[1], major[0])))


# -- statokinesigram ----------------------------------------------------------------------------------


def _foot_path(cx: float, cy: float, length: float, width: float, to_px) -> str:
    """A footprint outline (rounded, narrower at the heel) centred at (cx, cy) in mm, toes forward (+y)."""
    pts = []
    for k in range(64):
        th = 2 * math.pi * k / 64
        # wider at the front half (toes), narrower at the heel
        w = width / 2 * (1.0 if math.sin(th) > 0 else 0.78 + 0.22 * (1 + math.sin(th)))
        pts.append((cx + w * math.cos(th), cy + length / 2 * math.sin(th)))
    d = " ".join(("M" if i == 0 else "L") + f"{_num(px)},{_num(py)}"
                 for i, (px, py) in enumerate(to_px(*p) for p in pts))
    return d + " Z"


#: the enlarged view's frame is this much wider than tall (as the plate is)
ZOOM_ASPECT = 1.3
#: the enlarged view frames at least this many mm top to bottom
ZOOM_MIN_SPAN_MM = 20.0


def zoom_span_mm(hold_ml_mm: Sequence[float] | np.ndarray, hold_ap_mm: Sequence[float] | np.ndarray) -> float:
    """The height in mm (the width is :data:`ZOOM_ASPECT` times it) an enlarged statokinesigram frames for
    this window: its COP and its 95 % ellipse with a margin. Give the largest of several windows to
    :func:`statokinesigram` as ``span_mm`` to draw them all on one scale."""
    x = np.asarray(hold_ml_mm, dtype=float)
    y = np.asarray(hold_ap_mm, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return ZOOM_MIN_SPAN_MM * 1.15
    xs, ys = x[ok], y[ok]
    ell = ellipse95(xs, ys)
    if ell is not None:
        ex, ey = ell.points(48)
        xs, ys = np.concatenate([xs, ex]), np.concatenate([ys, ey])
    return max((float(xs.max()) - float(xs.min())) / ZOOM_ASPECT, float(ys.max()) - float(ys.min()),
               ZOOM_MIN_SPAN_MM) * 1.15


def _plate_locator(*, x: float, y: float, width: float, plate_ml_mm: float, plate_ap_mm: float, feet_ml_mm: float,
                   stance_side: str | None, frame: tuple[float, float, float, float], factor: float
                   ) -> tuple[list[str], float]:
    """A small whole plate with the enlarged area boxed on it, and what it is, at (x, y) top left."""
    margin = 25.0
    xmin, xmax = -plate_ml_mm / 2 - margin, plate_ml_mm / 2 + margin
    ymin, ymax = -plate_ap_mm / 2 - margin, plate_ap_mm / 2 + margin
    scale = width / (xmax - xmin)
    height = (ymax - ymin) * scale

    def to_px(a: float, b: float) -> tuple[float, float]:
        return x + (a - xmin) * scale, y + (ymax - b) * scale

    out = ['<g class="plate-locator">']
    px0, py0 = to_px(-plate_ml_mm / 2, plate_ap_mm / 2)
    out.append(f'<rect x="{_num(px0)}" y="{_num(py0)}" width="{_num(plate_ml_mm * scale)}" '
               f'height="{_num(plate_ap_mm * scale)}" fill="{PLATE_FILL}" stroke="{MUTED}" stroke-width="1"/>')
    foot_len = min(0.85 * plate_ap_mm, 250.0)
    foot_w = min(0.45 * feet_ml_mm, 95.0)
    for side, fx in (("left", -feet_ml_mm / 2), ("right", feet_ml_mm / 2)):
        lifted = stance_side is not None and side != stance_side
        dash = ' stroke-dasharray="3 2"' if lifted else ""
        out.append(f'<path d="{_foot_path(fx, 0.0, foot_len, foot_w, to_px)}" fill="none" stroke="{MUTED}" '
                   f'stroke-width="1"{dash}/>')
    fx0, fy0 = to_px(max(frame[0], xmin), min(frame[3], ymax))
    fx1, fy1 = to_px(min(frame[1], xmax), max(frame[2], ymin))
    bw, bh = max(fx1 - fx0, 4.0), max(fy1 - fy0, 4.0)
    cx, cy = (fx0 + fx1) / 2, (fy0 + fy1) / 2
    out.append(f'<rect class="zoom-frame" x="{_num(cx - bw / 2)}" y="{_num(cy - bh / 2)}" width="{_num(bw)}" '
               f'height="{_num(bh)}" fill="none" stroke="{INK}" stroke-width="2"/>')
    out.append(_text(x + width + 10, y + 13, "Where on the plate:", size=11, fill=MUTED))
    out.append(_text(x + width + 10, y + 28, "the black box.", size=11, fill=MUTED))
    out.append(_text(x + width + 10, y + 43, f"Enlarged \u00d7{factor:.0f} from the plate view.", size=11,
                     fill=MUTED, extra=' class="zoom-factor"'))
    out.append("</g>")
    return out, height


def statokinesigram(*, cop_ml_mm: Sequence[float] | np.ndarray, cop_ap_mm: Sequence[float] | np.ndarray,
                    plate_ml_mm: float, plate_ap_mm: float, feet_ml_mm: float,
                    hold_ml_mm: Sequence[float] | np.ndarray | None = None,
                    hold_ap_mm: Sequence[float] | np.ndarray | None = None,
                    stance_side: str | None = None, zoom: bool = False, width: float = 480,
                    title: str = "Statokinesigram", uid: str | None = None, scored: bool = True,
                    window_label: str = "COP, analysed window", rest_label: str = "COP, rest of the recording",
                    span_mm: float | None = None) -> str:
    """The COP path seen from above, over the plate and its footprints, with the 95 % ellipse.

    Parameters
    ----------
    cop_ml_mm, cop_ap_mm
        The COP over the whole trial, in mm (NaN where the plate was empty), drawn thin and grey.
    plate_ml_mm, plate_ap_mm, feet_ml_mm
        The plate: distances between cell centres and between the footprints.
    hold_ml_mm, hold_ap_mm
        The analysed window (the single-leg hold; the whole trial for quiet stance), drawn dark,
        with its 95 % prediction ellipse and mean. None: the whole trace is the analysed window.
    scored
        False for a trial with no sway measures (aborted, unscored): the whole recording is drawn as
        it is, with no analysed window, no ellipse and no mean (``hold_*`` are ignored).
    window_label, rest_label
        The legend's words for the analysed window and for the rest of the recording.
    stance_side
        ``left``/``right``: the stance footprint is drawn solid, the lifted one dashed.
    zoom
        Frame the analysed window closely (same scale on both axes) instead of the whole plate; a small
        whole plate under the chart shows where the enlarged area lies.
    span_mm
        With ``zoom``: the frame's height in mm, at least the window's own (:func:`zoom_span_mm`), so that
        several charts share one scale.
    """
    uid = _uid(uid)
    x_all = np.asarray(cop_ml_mm, dtype=float)
    y_all = np.asarray(cop_ap_mm, dtype=float)
    if not scored:
        hx, hy = np.array([]), np.array([])
        whole_is_hold = False
    elif hold_ml_mm is None or hold_ap_mm is None:
        hx, hy = x_all, y_all
        whole_is_hold = True
    else:
        hx, hy = np.asarray(hold_ml_mm, dtype=float), np.asarray(hold_ap_mm, dtype=float)
        whole_is_hold = False
    ell = ellipse95(hx, hy) if scored else None
    half_ml, half_ap = plate_ml_mm / 2, plate_ap_mm / 2
    plate_span_ml = plate_ml_mm + 50
    if zoom:
        fx, fy = (hx, hy) if scored else (x_all, y_all)
        ok = np.isfinite(fx) & np.isfinite(fy)
        span = zoom_span_mm(fx, fy)
        if span_mm is not None and math.isfinite(span_mm):
            span = max(span, float(span_mm))
        if ok.any():
            xs, ys = fx[ok], fy[ok]
            mx = (float(xs.min()) + float(xs.max())) / 2
            my = (float(ys.min()) + float(ys.max())) / 2
        else:
            mx = my = 0.0
        xmin, xmax = mx - span * ZOOM_ASPECT / 2, mx + span * ZOOM_ASPECT / 2
        ymin, ymax = my - span / 2, my + span / 2
    else:
        xmin, xmax = -half_ml - 25, half_ml + 25
        ymin, ymax = -half_ap - 25, half_ap + 25
    ml_l, mr, mt = 58, 16, 30
    plot_w = width - ml_l - mr
    legend_items = []
    if scored:
        legend_items.append((_line_swatch(INK, None, 1.6), window_label))
        if not whole_is_hold and not zoom:
            legend_items.append((_line_swatch("#9a9a9a", None, 1.2), rest_label))
    else:
        legend_items.append((_line_swatch(MUTED, None, 1.4), rest_label))
    if ell is not None:
        legend_items.append((_line_swatch("#b00020", "9 4", 2.4), f"95 % ellipse, {ell.area_mm2:.0f} mm²"))
        legend_items.append((_marker_swatch(), "mean COP"))
    if not zoom:
        legend_items.append((_line_swatch(MUTED, "6 5", 1.5), "footprints (dashed: lifted foot)"))
    legend_rows = _legend_rows([label for _, label in legend_items], plot_w)
    locator_w = min(120.0, plot_w * 0.4)
    locator_h = locator_w * (plate_ap_mm + 50) / plate_span_ml if zoom else 0.0
    mb = 50 + 18 * legend_rows + (locator_h + 14 if zoom else 0)
    scale = plot_w / (xmax - xmin)
    plot_h = (ymax - ymin) * scale
    height = mt + plot_h + mb

    def px(x: float) -> float:
        return ml_l + (x - xmin) * scale

    def py(y: float) -> float:
        return mt + (ymax - y) * scale

    def to_px(x: float, y: float) -> tuple[float, float]:
        return px(x), py(y)

    side_txt = f", standing on the {stance_side} leg" if stance_side else ""
    desc = (f"Centre of pressure seen from above{side_txt}. x medio-lateral in mm, positive to the patient's right; "
            f"y antero-posterior in mm, positive forward.")
    if ell is not None:
        desc += f" 95 % prediction ellipse area {ell.area_mm2:.0f} mm squared."
    if not scored:
        desc += " No sway measures: no analysed window and no ellipse."
    if zoom:
        desc += f" Enlarged: {xmax - xmin:.0f} mm by {ymax - ymin:.0f} mm of the plate."
    out = _open_svg(width=width, height=height, title=title, desc=desc, uid=uid, css_class="statokinesigram")
    out.append(f'<defs><clipPath id="{uid}-clip"><rect x="{_num(ml_l)}" y="{_num(mt)}" width="{_num(plot_w)}" '
               f'height="{_num(plot_h)}"/></clipPath></defs>')
    out.append(_text(ml_l, 18, title, size=14, weight="600"))
    # grid and ticks
    xt = nice_ticks(xmin, xmax, n=6)
    yt = nice_ticks(ymin, ymax, n=max(3, int(6 * plot_h / plot_w)))
    xstep = xt[1] - xt[0] if len(xt) > 1 else 1.0
    ystep = yt[1] - yt[0] if len(yt) > 1 else 1.0
    out.append('<g class="grid">')
    for v in xt:
        out.append(f'<line x1="{_num(px(v))}" y1="{_num(mt)}" x2="{_num(px(v))}" y2="{_num(mt + plot_h)}" '
                   f'stroke="{GRID}" stroke-width="1"/>')
    for v in yt:
        out.append(f'<line x1="{_num(ml_l)}" y1="{_num(py(v))}" x2="{_num(ml_l + plot_w)}" y2="{_num(py(v))}" '
                   f'stroke="{GRID}" stroke-width="1"/>')
    out.append("</g>")
    out.append(f'<g clip-path="url(#{uid}-clip)">')
    foot_len = min(0.85 * plate_ap_mm, 250.0)
    foot_w = min(0.45 * feet_ml_mm, 95.0)
    if not zoom:
        # the plate: the rectangle of the cells, the cells, the footprints (only in the whole view: the
        # enlarged one would show them cut; its locator shows the whole plate instead)
        out.append(f'<rect class="plate" x="{_num(px(-half_ml))}" y="{_num(py(half_ap))}" '
                   f'width="{_num(plate_ml_mm * scale)}" height="{_num(plate_ap_mm * scale)}" fill="none" '
                   f'stroke="{MUTED}" stroke-width="1.5"/>')
        for cx, cy in ((-half_ml, half_ap), (half_ml, half_ap), (-half_ml, -half_ap), (half_ml, -half_ap)):
            out.append(f'<circle class="cell" cx="{_num(px(cx))}" cy="{_num(py(cy))}" '
                       f'r="{_num(max(3, 8 * scale))}" fill="{MUTED}"/>')
        for side, fx in (("left", -feet_ml_mm / 2), ("right", feet_ml_mm / 2)):
            lifted = stance_side is not None and side != stance_side
            dash = ' stroke-dasharray="6 5"' if lifted else ""
            out.append(f'<path class="footprint footprint-{side}" d="{_foot_path(fx, 0.0, foot_len, foot_w, to_px)}" '
                       f'fill="none" stroke="{MUTED}" stroke-width="{2 if not lifted else 1.5}"{dash}>'
                       f'<title>{side} footprint{" (lifted foot)" if lifted else ""}</title></path>')
    # axes through the plate centre
    out.append(f'<line x1="{_num(px(0))}" y1="{_num(mt)}" x2="{_num(px(0))}" y2="{_num(mt + plot_h)}" '
               f'stroke="#9a9a9a" stroke-width="1" stroke-dasharray="2 3"/>')
    out.append(f'<line x1="{_num(ml_l)}" y1="{_num(py(0))}" x2="{_num(ml_l + plot_w)}" y2="{_num(py(0))}" '
               f'stroke="#9a9a9a" stroke-width="1" stroke-dasharray="2 3"/>')
    # traces
    if not scored:
        if x_all.size:
            step = max(1, x_all.size // MAX_POINTS)
            for sx, sy in _segments(x_all[::step], y_all[::step]):
                out.append(_polyline(np.array([px(v) for v in sx]), np.array([py(v) for v in sy]), stroke=MUTED,
                                     width=1.2, css_class="cop-trace-unscored"))
    elif not whole_is_hold and not zoom and x_all.size:
        dx, dy = _decimate(np.arange(x_all.size, dtype=float), x_all)
        idx = dx.astype(int)
        for sx, sy in _segments(x_all[idx], y_all[idx]):
            out.append(_polyline(np.array([px(v) for v in sx]), np.array([py(v) for v in sy]), stroke="#9a9a9a",
                                 width=1.0, css_class="cop-trace-all"))
    if hx.size:
        step = max(1, hx.size // MAX_POINTS)
        for sx, sy in _segments(hx[::step], hy[::step]):
            out.append(_polyline(np.array([px(v) for v in sx]), np.array([py(v) for v in sy]), stroke=INK,
                                 width=1.3, css_class="cop-trace"))
    if ell is not None:
        ex, ey = ell.points()
        d = " ".join(("M" if i == 0 else "L") + f"{_num(px(a))},{_num(py(b))}"
                     for i, (a, b) in enumerate(zip(ex.tolist(), ey.tolist()))) + " Z"
        out.append(f'<path class="ellipse95" d="{d}" fill="none" stroke="#b00020" stroke-width="2.4" '
                   f'stroke-dasharray="9 4"><title>95 % prediction ellipse: {ell.area_mm2:.0f} mm²</title></path>')
        mxp, myp = px(ell.cx_mm), py(ell.cy_mm)
        out.append(f'<path class="cop-mean" d="M{_num(mxp - 7)},{_num(myp)} L{_num(mxp + 7)},{_num(myp)} '
                   f'M{_num(mxp)},{_num(myp - 7)} L{_num(mxp)},{_num(myp + 7)}" stroke="#b00020" stroke-width="2.4"/>')
    out.append("</g>")
    # frame, tick labels, axis titles
    out.append(f'<rect x="{_num(ml_l)}" y="{_num(mt)}" width="{_num(plot_w)}" height="{_num(plot_h)}" fill="none" '
               f'stroke="{INK}" stroke-width="1"/>')
    for v in xt:
        out.append(_text(px(v), mt + plot_h + 15, _fmt_tick(v, xstep), size=11, anchor="middle"))
    for v in yt:
        out.append(_text(ml_l - 6, py(v) + 4, _fmt_tick(v, ystep), size=11, anchor="end"))
    out.append(_text(ml_l + plot_w / 2, mt + plot_h + 31, "x medio-lateral (mm), + to the right", size=12,
                     anchor="middle"))
    ty = mt + plot_h / 2
    out.append(f'<text x="14" y="{_num(ty)}" font-size="12" text-anchor="middle" fill="{INK}" '
               f'transform="rotate(-90 14 {_num(ty)})">y antero-posterior (mm), + forward</text>')
    if not zoom:
        out.append(_text(px(-feet_ml_mm / 2), py(-foot_len / 2) + 14, "L", size=13, anchor="middle", weight="700"))
        out.append(_text(px(feet_ml_mm / 2), py(-foot_len / 2) + 14, "R", size=13, anchor="middle", weight="700"))
    out += _legend(legend_items, x=ml_l, y=mt + plot_h + 50, max_width=plot_w)
    if zoom:
        loc, _h = _plate_locator(x=ml_l, y=mt + plot_h + 50 + 18 * (legend_rows - 1) + 14, width=locator_w,
                                 plate_ml_mm=plate_ml_mm, plate_ap_mm=plate_ap_mm, feet_ml_mm=feet_ml_mm,
                                 stance_side=stance_side, frame=(xmin, xmax, ymin, ymax),
                                 factor=plate_span_ml / (xmax - xmin))
        out += loc
    out.append("</svg>")
    return "\n".join(out)


# -- signals against time -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a chart: label, x and y values (NaN breaks the line), style."""

    label: str
    x: Sequence[float] | np.ndarray
    y: Sequence[float] | np.ndarray
    colour: str = INK
    dash: str | None = None
    width: float = 1.6
    marker: str | None = None


@dataclass(frozen=True, slots=True)
class Band:
    """A marked stretch of time: ``kind`` ``touchdown`` (hatched) or ``support`` (dotted), with a label."""

    start: float
    end: float
    kind: str
    label: str


def _patterns(uid: str) -> str:
    return (f'<defs><pattern id="{uid}-hatch" width="7" height="7" patternUnits="userSpaceOnUse" '
            f'patternTransform="rotate(45)"><rect width="7" height="7" fill="#ffffff"/>'
            f'<line x1="0" y1="0" x2="0" y2="7" stroke="#5a5a5a" stroke-width="2"/></pattern>'
            f'<pattern id="{uid}-dots" width="6" height="6" patternUnits="userSpaceOnUse">'
            f'<rect width="6" height="6" fill="#ffffff"/><circle cx="3" cy="3" r="1.1" fill="#6a6a6a"/></pattern>'
            f'<clipPath id="{uid}-clip"/></defs>')


def time_chart(*, series: Sequence[Series], y_label: str, y_unit: str, x_label: str = "time", x_unit: str = "s",
               bands: Sequence[Band] = (), vlines: Sequence[tuple[float, str]] = (),
               hlines: Sequence[tuple[float, str]] = (), x_range: tuple[float, float] | None = None,
               y_range: tuple[float, float] | None = None, include_zero: bool = False,
               width: float = 760, height: float = 250, title: str = "", uid: str | None = None) -> str:
    """Signals against time, with touchdowns and support marked as labelled bands.

    ``vlines``: ``(t, label)`` events (lift-off, end of hold), drawn as
    labelled vertical lines; ``hlines``: ``(y, label)`` references (body
    weight), dashed.
    """
    uid = _uid(uid)
    xs = [np.asarray(s.x, dtype=float) for s in series]
    ys = [np.asarray(s.y, dtype=float) for s in series]
    if x_range is None:
        finite = [a[np.isfinite(a)] for a in xs if a.size]
        finite = [a for a in finite if a.size]
        x_range = (min(float(a.min()) for a in finite), max(float(a.max()) for a in finite)) if finite else (0.0, 1.0)
    if y_range is None:
        vals = [a[np.isfinite(a)] for a in ys] + [np.array([v for v, _ in hlines], dtype=float)]
        vals = [a for a in vals if a.size]
        lo = min(float(a.min()) for a in vals) if vals else 0.0
        hi = max(float(a.max()) for a in vals) if vals else 1.0
        if include_zero and lo < 0 < hi and -lo < 0.03 * hi:
            lo = 0.0  # a few newtons of noise on the empty plate: no axis below zero for them
        y0, y1, yt = _nice_range(lo, hi, n=4, include_zero=include_zero)
    else:
        y0, y1 = y_range
        yt = nice_ticks(y0, y1, n=4)
    x0, x1 = x_range
    if x1 <= x0:
        x1 = x0 + 1.0
    kinds = {b.kind for b in bands}
    legend_labels = [s.label for s in series] + (["TD touchdown"] if "touchdown" in kinds else []) + (
        ["S hand support"] if "support" in kinds else [])
    legend_rows = _legend_rows(legend_labels, width - 64 - 18)
    ml_l, mr, mt, mb = 64, 18, 30 + 18 * legend_rows, 44
    pw, ph = width - ml_l - mr, height - mt - mb

    def px(v: float) -> float:
        return ml_l + (v - x0) / (x1 - x0) * pw

    def py(v: float) -> float:
        return mt + (y1 - v) / (y1 - y0) * ph

    desc = f"{y_label} in {y_unit} against {x_label} in {x_unit}."
    if bands:
        desc += " " + "; ".join(f"{b.label} from {b.start:.2f} to {b.end:.2f} {x_unit}" for b in bands) + "."
    out = _open_svg(width=width, height=height, title=title or f"{y_label} against {x_label}", desc=desc, uid=uid,
                    css_class="time-chart")
    out.append(_patterns(uid).replace(f'<clipPath id="{uid}-clip"/>',
                                      f'<clipPath id="{uid}-clip"><rect x="{_num(ml_l)}" y="{_num(mt)}" '
                                      f'width="{_num(pw)}" height="{_num(ph)}"/></clipPath>'))
    if title:
        out.append(_text(ml_l, 18, title, size=14, weight="600"))
    # bands first, under everything
    for b in bands:
        a, e = max(px(b.start), ml_l), min(px(b.end), ml_l + pw)
        if e <= a:
            e = a + 2
        fill = f"url(#{uid}-hatch)" if b.kind == "touchdown" else f"url(#{uid}-dots)"
        out.append(f'<rect class="band band-{b.kind}" x="{_num(a)}" y="{_num(mt)}" width="{_num(e - a)}" '
                   f'height="{_num(ph)}" fill="{fill}" fill-opacity="0.55" stroke="#5a5a5a" stroke-width="0.8">'
                   f'<title>{escape(b.label)}</title></rect>')
    # grid
    xt = nice_ticks(x0, x1, n=8)
    xstep = xt[1] - xt[0] if len(xt) > 1 else 1.0
    ystep = yt[1] - yt[0] if len(yt) > 1 else 1.0
    for v in yt:
        out.append(f'<line x1="{_num(ml_l)}" y1="{_num(py(v))}" x2="{_num(ml_l + pw)}" y2="{_num(py(v))}" '
                   f'stroke="{GRID}" stroke-width="1"/>')
        out.append(_text(ml_l - 6, py(v) + 4, _fmt_tick(v, ystep), size=11, anchor="end"))
    for v in xt:
        out.append(f'<line x1="{_num(px(v))}" y1="{_num(mt + ph)}" x2="{_num(px(v))}" y2="{_num(mt + ph + 4)}" '
                   f'stroke="{INK}" stroke-width="1"/>')
        out.append(_text(px(v), mt + ph + 16, _fmt_tick(v, xstep), size=11, anchor="middle"))
    # band labels on top of the grid
    for i, b in enumerate(bands):
        a = max(px(b.start), ml_l)
        short = "TD" if b.kind == "touchdown" else "S"
        out.append(_text(a + 2, mt + 12 + 12 * (i % 2), short, size=11, weight="700", extra=' class="band-label"',
                         halo=True))
    for v, _label in hlines:
        out.append(f'<line class="hline" x1="{_num(ml_l)}" y1="{_num(py(v))}" x2="{_num(ml_l + pw)}" '
                   f'y2="{_num(py(v))}" stroke="{MUTED}" stroke-width="1.4" stroke-dasharray="2 3"/>')
    out.append(f'<g clip-path="url(#{uid}-clip)">')
    for s, x, y in zip(series, xs, ys):
        dx, dy = _decimate(x, y)
        for sx, sy in _segments(dx, dy):
            out.append(_polyline(np.array([px(v) for v in sx]), np.array([py(v) for v in sy]), stroke=s.colour,
                                 width=s.width, dash=s.dash, css_class="series"))
    out.append("</g>")
    for v, label in hlines:
        below = py(v) - mt < 0.3 * ph
        out.append(_text(ml_l + pw - 4, py(v) + (15 if below else -6), label, size=11, anchor="end", fill=MUTED,
                         halo=True))
    for i, (t, label) in enumerate(vlines):
        if not x0 <= t <= x1:
            continue
        out.append(f'<line class="vline" x1="{_num(px(t))}" y1="{_num(mt)}" x2="{_num(px(t))}" '
                   f'y2="{_num(mt + ph)}" stroke="{INK}" stroke-width="1.4" stroke-dasharray="5 3"/>')
        anchor = "end" if px(t) > ml_l + pw * 0.85 else "start"
        dxl = -3 if anchor == "end" else 3
        out.append(_text(px(t) + dxl, mt + ph - 6 - 14 * (i % 2), label, size=11, anchor=anchor, halo=True))
    out.append(f'<rect x="{_num(ml_l)}" y="{_num(mt)}" width="{_num(pw)}" height="{_num(ph)}" fill="none" '
               f'stroke="{INK}" stroke-width="1"/>')
    out.append(_text(ml_l + pw / 2, height - 8, f"{x_label} ({x_unit})", size=12, anchor="middle"))
    ty = mt + ph / 2
    out.append(f'<text x="15" y="{_num(ty)}" font-size="12" text-anchor="middle" fill="{INK}" '
               f'transform="rotate(-90 15 {_num(ty)})">{escape(f"{y_label} ({y_unit})")}</text>')
    items = [(_line_swatch(s.colour, s.dash, s.width + 0.4), s.label) for s in series]
    if "touchdown" in kinds:
        items.append((f'<rect x="2" y="-6" width="20" height="12" fill="url(#{uid}-hatch)" stroke="#5a5a5a"/>',
                      "TD touchdown"))
    if "support" in kinds:
        items.append((f'<rect x="2" y="-6" width="20" height="12" fill="url(#{uid}-dots)" stroke="#5a5a5a"/>',
                      "S hand support"))
    out += _legend(items, x=ml_l, y=mt - 10 - 18 * (legend_rows - 1), max_width=pw)
    out.append("</svg>")
    return "\n".join(out)


# -- trends over visits ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrendSeries:
    """Points ``(x, y)`` of one trend (x in POSIX seconds for a date axis), with the side's style."""

    label: str
    points: Sequence[tuple[float, float | None]]
    colour: str = INK
    dash: str | None = None
    marker: str = "circle"

    @classmethod
    def for_side(cls, side: str, points: Sequence[tuple[float, float | None]], *, label: str | None = None
                 ) -> TrendSeries:
        st = SIDE_STYLE[side]
        return cls(label=label or st["label"], points=points, colour=st["colour"], dash=st["dash"],
                   marker=st["marker"])


def _date_ticks(lo: float, hi: float, n: int = 5) -> tuple[list[float], str]:
    span = hi - lo
    if span <= 2 * 86400:
        fmt = "%d %b %H:%M"
    else:
        years = {dt.datetime.fromtimestamp(lo).year, dt.datetime.fromtimestamp(hi).year}
        fmt = "%d %b %Y" if len(years) > 1 else "%d %b"
    if span <= 0:
        return [lo], fmt
    return [lo + k * span / (n - 1) for k in range(n)], fmt


def trend_chart(*, series: Sequence[TrendSeries], y_label: str, y_unit: str,
                references: Sequence[tuple[float, str]] = (), y_max: float | None = None,
                include_zero: bool = True, dates: bool = True, x_label: str = "visit date",
                width: float = 760, height: float = 260, title: str = "", empty_text: str = "no data yet",
                uid: str | None = None) -> str:
    """Values over time, one line per series, with horizontal reference lines (norms).

    ``points``' x are POSIX seconds when ``dates`` (tick labels are local
    dates), plain numbers otherwise; a None y is skipped. ``references``:
    ``(y, label)`` drawn as labelled dash-dot lines.
    """
    uid = _uid(uid)
    pts = [[(float(x), float(y)) for x, y in s.points if y is not None and math.isfinite(float(y))]
           for s in series]
    all_x = [x for p in pts for x, _ in p]
    all_y = [y for p in pts for _, y in p] + [v for v, _ in references]
    legend_rows = _legend_rows([s.label for s in series], width - 64 - 18)
    ml_l, mr, mt, mb = 64, 18, 30 + 18 * legend_rows, 46
    pw, ph = width - ml_l - mr, height - mt - mb
    if all_x:
        x0, x1 = min(all_x), max(all_x)
        if x1 == x0:
            pad = 86400.0 if dates else 1.0
            x0, x1 = x0 - pad, x1 + pad
        else:
            pad = (x1 - x0) * 0.04
            x0, x1 = x0 - pad, x1 + pad
    else:
        x0, x1 = 0.0, 1.0
    lo = min(all_y) if all_y else 0.0
    hi = max(all_y) if all_y else 1.0
    if y_max is not None:
        hi = max(hi, y_max)
    y0, y1, yt = _nice_range(lo, hi, n=4, include_zero=include_zero)
    top = y1 + 0.07 * (y1 - y0)  # headroom: points at the top tick stay clear of the frame and the legend

    def px(v: float) -> float:
        return ml_l + (v - x0) / (x1 - x0) * pw

    def py(v: float) -> float:
        return mt + (top - v) / (top - y0) * ph

    n_pts = sum(len(p) for p in pts)
    desc = f"{y_label} in {y_unit} over time, {n_pts} points: " + ", ".join(
        f"{s.label} ({len(p)})" for s, p in zip(series, pts)) + "."
    if references:
        desc += " Reference: " + "; ".join(f"{label} {v:g} {y_unit}" for v, label in references) + "."
    out = _open_svg(width=width, height=height, title=title or y_label, desc=desc, uid=uid, css_class="trend-chart")
    if title:
        out.append(_text(ml_l, 18, title, size=14, weight="600"))
    ystep = yt[1] - yt[0] if len(yt) > 1 else 1.0
    # nothing to measure (no point, no reference, no y_max): no made-up scale of 0 to 1
    scaled = bool(all_y) or y_max is not None
    for v in yt if scaled else ():
        out.append(f'<line x1="{_num(ml_l)}" y1="{_num(py(v))}" x2="{_num(ml_l + pw)}" y2="{_num(py(v))}" '
                   f'stroke="{GRID}" stroke-width="1"/>')
        out.append(_text(ml_l - 6, py(v) + 4, _fmt_tick(v, ystep), size=11, anchor="end"))
    if all_x:
        if dates:
            ticks, fmt = _date_ticks(min(all_x), max(all_x)) if max(all_x) > min(all_x) else ([all_x[0]], "%d %b %Y")
            labels = [dt.datetime.fromtimestamp(t).strftime(fmt) for t in ticks]
        else:
            ticks = nice_ticks(x0, x1, n=6)
            step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
            labels = [_fmt_tick(t, step) for t in ticks]
        for t, label in zip(ticks, labels):
            out.append(f'<line x1="{_num(px(t))}" y1="{_num(mt + ph)}" x2="{_num(px(t))}" y2="{_num(mt + ph + 4)}" '
                       f'stroke="{INK}" stroke-width="1"/>')
            out.append(_text(px(t), mt + ph + 16, label, size=11, anchor="middle"))
    for v, label in references:
        out.append(f'<line class="reference" x1="{_num(ml_l)}" y1="{_num(py(v))}" x2="{_num(ml_l + pw)}" '
                   f'y2="{_num(py(v))}" stroke="#2b2b2b" stroke-width="1.6" stroke-dasharray="10 3 2 3"/>')
        ly = py(v) + 4 if py(v) - mt < 22 else py(v) - 16  # below the line when it runs along the top
        out.append(f'<rect x="{_num(ml_l + 4)}" y="{_num(ly)}" width="{_num(6.4 * len(label) + 8)}" '
                   f'height="14" fill="#ffffff" fill-opacity="0.9"/>')
        out.append(_text(ml_l + 8, ly + 11, label, size=11, fill="#2b2b2b", extra=' class="reference-label"'))
    shown = [k for k, p in enumerate(pts) if p]
    for k, (s, p) in enumerate(zip(series, pts)):
        if not p:
            continue
        p = sorted(p)
        # side by side, not on top of each other: each series a few px apart at the same date
        dodge = (shown.index(k) - (len(shown) - 1) / 2) * 6.0
        if len(p) > 1:
            xs = np.array([px(x) + dodge for x, _ in p])
            ys = np.array([py(y) for _, y in p])
            out.append(_polyline(xs, ys, stroke=s.colour, width=2.0, dash=s.dash, css_class="trend-line"))
        size = 4.5 if len(p) <= 60 else 2.5
        for x, y in p:
            out.append(_marker(s.marker, px(x) + dodge, py(y), size=size, colour=s.colour, css_class="marker",
                               title=f"{s.label}: {y:.1f} {y_unit}"))
    if not n_pts:
        out.append(_text(ml_l + pw / 2, mt + ph / 2, empty_text, size=13, anchor="middle", fill=MUTED))
    out.append(f'<rect x="{_num(ml_l)}" y="{_num(mt)}" width="{_num(pw)}" height="{_num(ph)}" fill="none" '
               f'stroke="{INK}" stroke-width="1"/>')
    out.append(_text(ml_l + pw / 2, height - 8, x_label, size=12, anchor="middle"))
    ty = mt + ph / 2
    out.append(f'<text x="15" y="{_num(ty)}" font-size="12" text-anchor="middle" fill="{INK}" '
               f'transform="rotate(-90 15 {_num(ty)})">{escape(f"{y_label} ({y_unit})")}</text>')
    items = [(_line_swatch(s.colour, s.dash, 2.0, s.marker), s.label) for s in series]
    out += _legend(items, x=ml_l, y=mt - 10 - 18 * (legend_rows - 1), max_width=pw)
    out.append("</svg>")
    return "\n".join(out)

