"""The server-side SVG charts: valid XML, the expected elements, print-friendly styling."""

from __future__ import annotations

import datetime as dt
import math
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from station.signal.metrics import ellipse95_area_mm2
from webui.views import charts
from webui.views.charts import Band, Series, TrendSeries

NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{NS}svg" and root.get("role") == "img"
    assert root.find(f"{NS}title") is not None and root.find(f"{NS}title").text
    assert root.find(f"{NS}desc") is not None and root.find(f"{NS}desc").text
    return root


def by_class(root: ET.Element, cls: str) -> list[ET.Element]:
    return [e for e in root.iter() if cls in (e.get("class") or "").split()]


def texts(root: ET.Element) -> str:
    return " ".join("".join(e.itertext()) for e in root.iter(f"{NS}text"))


def sway(n: int = 2400, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = -100 + np.cumsum(rng.normal(0, 0.3, n)) * 0.2 + 4 * np.sin(np.arange(n) / 40)
    y = np.cumsum(rng.normal(0, 0.3, n)) * 0.2 + 6 * np.sin(np.arange(n) / 55)
    return x, y


def test_nice_ticks():
    assert charts.nice_ticks(0, 30, n=3) == [0, 10, 20, 30]
    assert charts.nice_ticks(-220, 220, n=6) == [-200, -100, 0, 100, 200]
    assert charts.nice_ticks(0.0, 1.0, n=4) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert len(charts.nice_ticks(5, 5)) >= 2
    assert charts.nice_ticks(math.nan, 1) == []


def _is_125(step: float) -> bool:
    mantissa = step / 10 ** math.floor(math.log10(step) + 1e-9)
    return any(abs(mantissa - m) < 1e-9 for m in (1.0, 2.0, 5.0))


@pytest.mark.parametrize("lo, hi, n", [(0, 15, 8), (0, 37.6, 8), (0, 1, 4), (0, 1, 5), (-0.3, 0.7, 5),
                                       (0.001, 0.007, 6), (12.3, 12.9, 4), (-212.5, 212.5, 6), (0, 2984, 4),
                                       (3.7, 9.1, 3), (0, 0.05, 4)])
def test_ticks_are_1_2_5_steps_and_their_labels_are_exact(lo, hi, n):
    """Steps of 1, 2 or 5 times a power of ten (never 2.5), each label the tick exactly, no two alike."""
    ticks = charts.nice_ticks(lo, hi, n=n)
    assert len(ticks) >= 2
    steps = {round(b - a, 12) for a, b in zip(ticks, ticks[1:])}
    assert len(steps) == 1
    step = steps.pop()
    assert _is_125(step), (lo, hi, step)
    assert lo - 1e-9 <= ticks[0] and ticks[-1] <= hi + 1e-9
    labels = [charts._fmt_tick(v, step) for v in ticks]
    assert len(set(labels)) == len(labels), labels
    for v, label in zip(ticks, labels):
        assert float(label.replace("\u2212", "-")) == pytest.approx(v, abs=step * 1e-6), (v, label)
    # the same decimals on every label
    assert len({len(label.partition(".")[2]) for label in labels}) == 1, labels


def test_tick_labels_of_the_reported_bugs():
    """A 15 s time axis read '0 2 5 8 10 12 15'; an empty sway chart read '0.0 0.2 0.5 0.8 1.0'."""
    ticks = charts.nice_ticks(0, 15, n=8)
    step = ticks[1] - ticks[0]
    assert [charts._fmt_tick(v, step) for v in ticks] == ["0", "2", "4", "6", "8", "10", "12", "14"]
    lo, hi, yticks = charts._nice_range(0.0, 1.0, n=4)
    assert [charts._fmt_tick(v, yticks[1] - yticks[0]) for v in yticks] == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]
    assert (lo, hi) == (0.0, 1.0)
    assert charts._fmt_tick(2.5, 0.5) == "2.5" and charts._fmt_tick(7.5, 2.5) == "7.5"  # never rounded away
    assert charts._fmt_tick(-0.0001, 0.1) == "0.0" and charts._fmt_tick(-3, 1) == "\u22123"
    assert charts._nice_range(0, 31.5, n=4)[:2] == (0.0, 40.0)
    assert charts.nice_ticks(0.1, 0.3, n=2) == [0.1, 0.2, 0.3]  # no 0.30000000000000004


def test_time_chart_axis_labels_are_round():
    t = np.arange(0, 15.01, 1 / 80)
    root = parse(charts.time_chart(series=[Series(label="x", x=t, y=np.sin(t) * 7.3)], y_label="x", y_unit="mm"))
    words = texts(root).split()
    for label in ("0", "2", "4", "6", "8", "10", "12", "14"):
        assert label in words
    assert "5" not in words or "7.5" not in words  # no 2.5-steps shown rounded


def test_an_empty_trend_chart_has_no_made_up_scale():
    root = parse(charts.trend_chart(series=[TrendSeries.for_side("left", [])], y_label="sway velocity",
                                    y_unit="mm/s"))
    words = texts(root).split()
    assert "no data yet" in texts(root)
    assert not any(w in words for w in ("0.0", "0.2", "0.5", "0.8", "1.0")), words
    assert not [e for e in root.iter(f"{NS}line") if e.get("stroke") == charts.GRID]  # no grid of a made-up scale


def test_ellipse_area_is_the_contract_metric():
    x, y = sway()
    ell = charts.ellipse95(x, y)
    assert ell.area_mm2 == pytest.approx(ellipse95_area_mm2(x - x.mean(), y - y.mean()), rel=1e-9)
    assert ell.a_mm >= ell.b_mm > 0
    assert (ell.cx_mm, ell.cy_mm) == pytest.approx((x.mean(), y.mean()))
    assert charts.ellipse95([1.0, 2.0], [1.0, 2.0]) is None


def test_statokinesigram_plate_view():
    x, y = sway()
    whole_x = np.concatenate([np.linspace(0, -100, 200), [np.nan] * 10, x])
    whole_y = np.concatenate([np.zeros(200), [np.nan] * 10, y])
    svg = charts.statokinesigram(cop_ml_mm=whole_x, cop_ap_mm=whole_y, hold_ml_mm=x, hold_ap_mm=y, plate_ml_mm=400,
                                 plate_ap_mm=300, feet_ml_mm=200, stance_side="left", title="COP <left> & co")
    root = parse(svg)
    assert root.find(f"{NS}title").text == "COP <left> & co"  # escaped in the SVG, read back whole
    assert len(by_class(root, "ellipse95")) == 1 and by_class(root, "ellipse95")[0].tag == f"{NS}path"
    feet = by_class(root, "footprint")
    assert len(feet) == 2
    left, right = by_class(root, "footprint-left")[0], by_class(root, "footprint-right")[0]
    assert left.get("stroke-dasharray") is None and right.get("stroke-dasharray")  # the lifted foot is dashed
    assert len(by_class(root, "cell")) == 4 and by_class(root, "plate")
    assert len(by_class(root, "cop-trace-all")) == 2  # the NaN gap (empty plate) breaks the grey trace
    assert by_class(root, "cop-trace") and by_class(root, "cop-mean")
    words = texts(root)
    assert "x medio-lateral (mm)" in words and "y antero-posterior (mm)" in words
    assert "95 % ellipse" in words and "mm²" in words
    # ticks in mm along both axes
    assert "−200" in words and "200" in words
    # equal scales: the plate's drawn width and height are in the plate's ratio
    plate = by_class(root, "plate")[0]
    assert float(plate.get("width")) / float(plate.get("height")) == pytest.approx(400 / 300, rel=1e-3)


def test_statokinesigram_zoom_frames_the_window():
    x, y = sway()
    root = parse(charts.statokinesigram(cop_ml_mm=x, cop_ap_mm=y, plate_ml_mm=400, plate_ap_mm=300, feet_ml_mm=200,
                                        stance_side="right", zoom=True))
    words = texts(root)
    assert "−200" not in words  # not the whole plate
    assert by_class(root, "ellipse95") and not by_class(root, "cop-trace-all")


def test_statokinesigram_with_too_few_samples_has_no_ellipse():
    root = parse(charts.statokinesigram(cop_ml_mm=[1.0, 2.0], cop_ap_mm=[0.0, 1.0], plate_ml_mm=400, plate_ap_mm=300,
                                        feet_ml_mm=200))
    assert not by_class(root, "ellipse95")


def test_time_chart_marks_touchdowns_support_and_events():
    t = np.arange(0, 37, 1 / 80)
    fz = np.full(t.size, 700.0)
    fz[t < 1] = np.nan
    svg = charts.time_chart(
        series=[Series(label="Fz", x=t, y=fz)], y_label="Fz", y_unit="N", include_zero=True,
        bands=[Band(start=12.0, end=12.6, kind="touchdown", label="touchdown 1 (plate)"),
               Band(start=20.0, end=23.0, kind="support", label="hand support")],
        vlines=[(6.0, "lift-off"), (12.0, "end of hold")], hlines=[(700.0, "body weight 700 N")], title="Force")
    root = parse(svg)
    td, sup = by_class(root, "band-touchdown"), by_class(root, "band-support")
    assert len(td) == 1 and len(sup) == 1
    assert "hatch" in td[0].get("fill") and "dots" in sup[0].get("fill")  # patterns, not colour alone
    assert len(by_class(root, "vline")) == 2 and len(by_class(root, "hline")) == 1
    words = texts(root)
    for w in ("lift-off", "end of hold", "TD", "S", "Fz (N)", "time (s)", "TD touchdown", "S hand support",
              "body weight 700 N"):
        assert w in words, w
    # the y axis starts at 0 for a force
    assert "0" in words.split()


def test_time_chart_decimates_long_signals():
    t = np.linspace(0, 100, 100_000)
    y = np.sin(t)
    root = parse(charts.time_chart(series=[Series(label="y", x=t, y=y)], y_label="y", y_unit="mm"))
    (line,) = by_class(root, "series")
    assert len(line.get("points").split()) <= charts.MAX_POINTS + 2
    ys = [float(p.split(",")[1]) for p in line.get("points").split()]
    assert max(ys) - min(ys) > 100  # the peaks survive the decimation


def test_trend_chart_left_right_and_norm():
    day = dt.datetime(2026, 3, 1).timestamp()
    left = [(day + k * 7 * 86400, 20.0 + k) for k in range(4)]
    right = [(day + k * 7 * 86400, 10.0 + 2 * k) for k in range(4)] + [(day + 30 * 86400, None)]
    root = parse(charts.trend_chart(series=[TrendSeries.for_side("left", left), TrendSeries.for_side("right", right)],
                                    y_label="hold time", y_unit="s", references=[(30.0, "norm 60-69: 32 s")],
                                    y_max=30.0, title="Hold"))
    markers = by_class(root, "marker")
    assert len(markers) == 8  # the None is skipped
    assert {m.tag for m in markers} == {f"{NS}circle", f"{NS}rect"}  # left circles, right squares
    lines = by_class(root, "trend-line")
    assert len(lines) == 2 and lines[0].get("stroke-dasharray") is None and lines[1].get("stroke-dasharray")
    assert len(by_class(root, "reference")) == 1 and "norm 60-69: 32 s" in texts(root)
    assert "hold time (s)" in texts(root) and "01 Mar" in texts(root)


def test_trend_chart_without_data():
    root = parse(charts.trend_chart(series=[TrendSeries.for_side("left", [])], y_label="hold time", y_unit="s"))
    assert "no data yet" in texts(root) and not by_class(root, "marker")


def test_charts_are_dark_on_white():
    x, y = sway(300)
    for svg in (charts.statokinesigram(cop_ml_mm=x, cop_ap_mm=y, plate_ml_mm=400, plate_ap_mm=300, feet_ml_mm=200),
                charts.time_chart(series=[Series(label="x", x=np.arange(300.0), y=x)], y_label="x", y_unit="mm"),
                charts.trend_chart(series=[TrendSeries.for_side("left", [(0.0, 1.0), (86400.0, 2.0)])],
                                   y_label="v", y_unit="mm/s")):
        root = parse(svg)
        background = root.find(f"{NS}rect")
        assert background.get("fill") == "#ffffff"
        for e in root.iter(f"{NS}text"):
            fill = e.get("fill", "#000000")
            r, g, b = (int(fill[i:i + 2], 16) for i in (1, 3, 5))
            assert 0.2126 * r + 0.7152 * g + 0.0722 * b < 110, fill  # dark text only


def test_ids_are_unique_between_charts():
    a = charts.time_chart(series=[Series(label="a", x=[0, 1], y=[0, 1])], y_label="a", y_unit="s")
    b = charts.time_chart(series=[Series(label="a", x=[0, 1], y=[0, 1])], y_label="a", y_unit="s")
    assert ET.fromstring(a).get("id") != ET.fromstring(b).get("id")


def test_statokinesigram_of_an_unscored_trial_has_no_window_and_no_ellipse():
    x, y = sway()
    root = parse(charts.statokinesigram(cop_ml_mm=x, cop_ap_mm=y, hold_ml_mm=x[:500], hold_ap_mm=y[:500],
                                        plate_ml_mm=400, plate_ap_mm=300, feet_ml_mm=200, stance_side="left",
                                        scored=False, rest_label="COP, whole recording (not scored)"))
    assert not by_class(root, "ellipse95") and not by_class(root, "cop-mean") and not by_class(root, "cop-trace")
    assert by_class(root, "cop-trace-unscored")
    words = texts(root)
    assert "COP, whole recording (not scored)" in words and "ellipse" not in words and "analysed window" not in words
    assert "No sway measures" in root.find(f"{NS}desc").text


def test_enlarged_statokinesigram_is_enlarged_and_shows_the_whole_plate_in_its_locator():
    x, y = sway()
    whole = parse(charts.statokinesigram(cop_ml_mm=x, cop_ap_mm=y, plate_ml_mm=400, plate_ap_mm=300, feet_ml_mm=200))
    root = parse(charts.statokinesigram(cop_ml_mm=x, cop_ap_mm=y, plate_ml_mm=400, plate_ap_mm=300, feet_ml_mm=200,
                                        stance_side="left", zoom=True, window_label="COP, hold window: 30.0 s"))
    # no plate cut by the frame: the plate and its cells are not drawn in the enlarged view ...
    assert not by_class(root, "plate") and not by_class(root, "cell") and not by_class(root, "footprint")
    # ... the locator shows the whole plate with the enlarged area boxed, and by how much it is enlarged
    (locator,) = by_class(root, "plate-locator")
    assert by_class(locator, "zoom-frame")
    factor = float(texts(root).split("Enlarged \u00d7")[1].split(" ")[0])
    assert factor >= 4
    # the ellipse drawn is that many times larger than in the whole-plate view
    def width_of(r):
        d = by_class(r, "ellipse95")[0].get("d")
        xs = [float(v.split(",")[0]) for v in re.findall(r"[ML](-?[\d.]+,-?[\d.]+)", d)]
        return max(xs) - min(xs)
    assert width_of(root) / width_of(whole) == pytest.approx(factor, rel=0.05)
    assert "COP, hold window: 30.0 s" in texts(root)


def test_enlarged_statokinesigrams_on_one_scale():
    x, y = sway()
    small = charts.zoom_span_mm(x[:200] * 0.1, y[:200] * 0.1)
    large = charts.zoom_span_mm(x, y)
    assert large > small >= charts.ZOOM_MIN_SPAN_MM
    a = parse(charts.statokinesigram(cop_ml_mm=x[:200] * 0.1, cop_ap_mm=y[:200] * 0.1, plate_ml_mm=400,
                                     plate_ap_mm=300, feet_ml_mm=200, zoom=True, span_mm=large, width=380))
    b = parse(charts.statokinesigram(cop_ml_mm=x, cop_ap_mm=y, plate_ml_mm=400, plate_ap_mm=300, feet_ml_mm=200,
                                     zoom=True, span_mm=large, width=380))
    assert a.find(f"{NS}desc").text.split("Enlarged:")[1] == b.find(f"{NS}desc").text.split("Enlarged:")[1]
    assert a.get("height") == b.get("height")
