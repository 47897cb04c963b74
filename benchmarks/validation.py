"""Writes docs/validation.md: the single-leg measures against the truth of the simulated population.

Run from the repository root::

    .venv/bin/python benchmarks/validation.py            # writes docs/validation.md and its plot
    .venv/bin/python benchmarks/validation.py --check    # exits 1 when the committed file differs

It scores the acceptance corpus (``tests/station/population_trials.py``:
500 labelled trials from ``hardware.sim.population``, seed 20261207) with
``balance-station analyze``'s own code, then writes for each measure the bias
and the 95 % limits of agreement against the truth (Bland & Altman 1986), the
touchdown confusion table, the false-support rate, the sway measures on the
four real BDS trials (``tests/data/bds``), and the limits of
the instrument in plain words. The output depends only on the seed, so the
committed file can be checked by rerunning it.

References
----------
.. [1] Bland JM, Altman DG (1986) Statistical methods for assessing agreement
   between two methods of clinical measurement. Lancet 327:307-310.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hardware.sim.population import RANGES  # noqa: E402
from station.scoring.analyze import analyze_file  # noqa: E402
from tests.paths import BDS_DIR  # noqa: E402
from tests.station.population_trials import (  # noqa: E402
    N_TRIALS,
    SEED,
    Scored,
    confusion_text,
    match_touchdowns,
    score_corpus,
    summary,
)

DOC = ROOT / "docs" / "validation.md"
PLOT = ROOT / "docs" / "validation-hold-time.svg"


def _agreement(diff: np.ndarray) -> tuple[float, float, float]:
    bias = float(np.mean(diff))
    sd = float(np.std(diff, ddof=1)) if diff.size > 1 else 0.0
    return bias, bias - 1.96 * sd, bias + 1.96 * sd


def _fmt(v: float, digits: int = 3) -> str:
    return f"{v:+.{digits}f}" if v != 0 else f"{0:.{digits}f}"


def _percentiles(values: np.ndarray) -> str:
    p = np.percentile(np.abs(values), [50, 95, 99, 100])
    return " / ".join(f"{v:.3f}" for v in p)


def bland_altman_svg(truth: np.ndarray, measured: np.ndarray, *, title: str, unit: str, span: float) -> str:
    """A Bland-Altman plot as a small, self-contained SVG (mean of the two against their difference).

    The difference axis runs from ``-span`` to ``+span``; points beyond it are drawn as triangles on
    the edge and counted in a note, so that a few gross errors do not squash the rest.
    """
    w, h, left, right, top, bottom = 680, 400, 70, 20, 40, 70
    mean = (truth + measured) / 2
    diff = measured - truth
    inside = np.abs(diff) <= span
    bias, lo, hi = _agreement(diff[inside])
    x0, x1 = 0.0, max(30.0, float(np.ceil(mean.max())))
    y0, y1 = -span, span

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (w - left - right)

    def py(y: float) -> float:
        return top + (y1 - y) / (y1 - y0) * (h - top - bottom)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
             'font-family="sans-serif" font-size="12">',
             f'<rect width="{w}" height="{h}" fill="white"/>',
             f'<text x="{w / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>',
             f'<line x1="{left}" y1="{py(0):.1f}" x2="{w - right}" y2="{py(0):.1f}" stroke="#bbb"/>']
    for val, label, dash in ((bias, "bias", ""), (lo, "-1.96 SD", "6,4"), (hi, "+1.96 SD", "6,4")):
        parts.append(f'<line x1="{left}" y1="{py(val):.1f}" x2="{w - right}" y2="{py(val):.1f}" stroke="black" '
                     f'stroke-dasharray="{dash}"/>')
        parts.append(f'<text x="{left + 6}" y="{py(val) - 4:.1f}" fill="black" stroke="white" stroke-width="3" '
                     f'paint-order="stroke">{label} {val:+.3f} {unit}</text>')
    for xm, yd, ok in zip(mean, diff, inside, strict=True):
        if ok:
            parts.append(f'<circle cx="{px(xm):.1f}" cy="{py(yd):.1f}" r="2.2" fill="none" stroke="black"/>')
        else:
            edge = py(span if yd > 0 else -span)
            tip = -6 if yd > 0 else 6
            parts.append(f'<path d="M{px(xm) - 4:.1f},{edge:.1f} L{px(xm) + 4:.1f},{edge:.1f} '
                         f'L{px(xm):.1f},{edge + tip:.1f} Z" fill="black"/>')
    for k in range(0, int(x1) + 1, 5):
        parts.append(f'<text x="{px(k):.1f}" y="{h - bottom + 16}" text-anchor="middle">{k}</text>')
    for frac in (-1.0, -0.5, 0.0, 0.5, 1.0):
        val = frac * span
        parts.append(f'<text x="{left - 6}" y="{py(val) + 4:.1f}" text-anchor="end">{val:+.2f}</text>')
    parts.append(f'<text x="{(left + w - right) / 2}" y="{h - bottom + 34}" text-anchor="middle">mean of truth and '
                 f'measured ({unit})</text>')
    n_out = int((~inside).sum())
    parts.append(f'<text x="{(left + w - right) / 2}" y="{h - 10}" text-anchor="middle">{inside.sum()} trials; '
                 f'{n_out} off the scale (triangles: a touchdown missed or found where there was none); '
                 'limits over the others</text>')
    parts.append(f'<text x="16" y="{(top + h - bottom) / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 16 {(top + h - bottom) / 2})">measured - truth ({unit})</text>')
    parts.append(f'<rect x="{left}" y="{top}" width="{w - left - right}" height="{h - top - bottom}" fill="none" '
                 'stroke="black"/>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def report(rows: list[Scored]) -> tuple[str, str]:
    ok = [r for r in rows if r.error is None]
    s = summary(rows)
    onset = np.array([r.onset_error_s for r in ok])
    hold = np.array([r.hold_error_s for r in ok])
    supported = [r for r in ok if r.true_support_s > 0]
    sup_diff = np.array([r.found_support_pct - r.true_support_pct for r in supported])
    limits = np.array([r.detection_limit_pct for r in ok if r.detection_limit_pct is not None])
    counts = match_touchdowns(ok)
    lines = [
        "# Validation of the single-leg measures",
        "",
        "Written by `benchmarks/validation.py` (do not edit by hand; rerun it). It scores "
        f"{len(rows)} labelled single-leg trials of the simulated population (`hardware/sim/population.py`, "
        f"corpus `hardware/sim/corpus.py`, seed {SEED}) with the code of `balance-station analyze "
        "--protocol single-leg` and compares every measure with the truth the simulator knows.",
        "",
        "The population is not the world: it is where the thresholds were set, so it flatters them. "
        "Each of its parameters has a range from the literature (sources in `hardware/sim/population.py`); "
        "the corpus covers both sides, 80 and 100 Hz, jittered time stamps, 45-120 kg, four plate sizes, "
        "clean holds, touchdowns on the plate and on the floor, a foot still down at the end, hand "
        "support of 1-8 % of body weight, and their combinations.",
        "",
        "## Acceptance figures (issue 10)",
        "",
        "| measure | target | on this corpus |",
        "|---|---|---|",
        f"| onset within 0.15 s of the truth | >= 99 % of trials | {s['onset_within_0_15_pct']:.1f} % |",
        f"| hold time within 0.2 s | >= 99 % | {s['hold_within_0_2_pct']:.1f} % |",
        f"| touchdowns found with the right type (F1) | >= 0.99 | {s['touchdown_f1']:.3f} |",
        f"| trials without support reporting < 0.5 s of support | >= 99 % ({s['n_clean_of_support']} trials) | "
        f"{s['no_false_support_pct']:.1f} % |",
        f"| supported trials: mean support within 1 % BW | >= 95 % ({s['n_supported']} trials) | "
        f"{s['support_mean_within_1_pct']:.1f} % |",
        f"| trials refused by the analysis | 0 | {s['refused']} |",
        "",
        "## Agreement with the truth (Bland-Altman)",
        "",
        "Bias and 95 % limits of agreement (bias +- 1.96 SD) of measured minus true; absolute errors at "
        "the 50th / 95th / 99th percentile and the largest.",
        "",
        "| measure | n | bias | 95 % limits of agreement | abs. error p50 / p95 / p99 / max |",
        "|---|---|---|---|---|",
    ]
    matched = np.array([_touchdowns_agree(r) for r in ok])
    for name, diff, unit in (("onset", onset, "s"), ("hold time, all trials", hold, "s"),
                             ("hold time, touchdowns found right", hold[matched], "s"),
                             ("mean support (supported trials)", sup_diff, "% BW")):
        bias, lo, hi = _agreement(diff)
        lines.append(f"| {name} ({unit}) | {diff.size} | {_fmt(bias)} | {_fmt(lo)} to {_fmt(hi)} | "
                     f"{_percentiles(diff)} |")
    lines += ["", "![Bland-Altman plot of the hold time](validation-hold-time.svg)", "",
              "### Onset error by the shape of the weight transfer", "",
              "| transfer profile | n | bias (s) | 95 % limits (s) |", "|---|---|---|---|"]
    for shape in ("cosine", "smoothstep", "smootherstep", "ease_out"):
        d = np.array([r.onset_error_s for r in ok if r.transfer_shape == shape])
        if d.size:
            bias, lo, hi = _agreement(d)
            lines.append(f"| {shape} | {d.size} | {_fmt(bias)} | {_fmt(lo)} to {_fmt(hi)} |")
    lines += ["", "### Onset error by the single-leg sway (medio-lateral RMS)", "",
              "| sway | n | bias (s) | 95 % limits (s) | within 0.15 s |", "|---|---|---|---|---|"]
    for lo_mm, hi_mm in ((3.5, 5.0), (5.0, 7.0), (7.0, 10.0)):
        d = np.array([r.onset_error_s for r in ok if lo_mm <= r.extra["sway_one_ml_rms_mm"] < hi_mm])
        if d.size:
            bias, lo, hi = _agreement(d)
            lines.append(f"| {lo_mm:g}-{hi_mm:g} mm | {d.size} | {_fmt(bias)} | {_fmt(lo)} to {_fmt(hi)} | "
                         f"{100 * np.mean(np.abs(d) <= 0.15):.0f} % |")
    lines += ["", "## Touchdowns", "", confusion_text(counts), "",
              f"F1 = {counts.f1:.3f}. A found touchdown matches a true one of the same trial starting within "
              "0.3 s.", "",
              "## Hand support", "",
              f"- False support (>= 0.5 s reported in a trial without any): "
              f"{sum(1 for r in ok if r.true_support_s == 0 and r.found_support_s >= 0.5)} of "
              f"{s['n_clean_of_support']} trials.",
              f"- Detection limit (unloading held 1 s), over all trials: median {np.median(limits):.2f} % BW, "
              f"5th-95th percentile {np.percentile(limits, 5):.2f}-{np.percentile(limits, 95):.2f} % BW.",
              f"- Supported trials whose support was entirely below the limit (reported as none): "
              f"{sum(1 for r in supported if r.found_support_s == 0)} of {len(supported)}.",
              ""]
    lines += _bds_section()
    lines += [
        "## What the instrument cannot tell apart",
        "",
        "- **Support below the detection limit.** A patient's own force fluctuation (0.5-2 % BW in single-leg "
        "stance) hides a lighter, steady hand support. Each trial reports its own limit "
        "(`support.detection_limit_pct_bw`); support under it is reported as none, never guessed.",
        "- **A steady support held through the whole hold from a drift of the load cells.** Both lower Fz "
        "without a start or an end inside the hold; the `load_drift` quality concern flags a change between "
        "the start and the end of the hold.",
        "- **The last few percent of the weight transfer.** When the lifted foot carries 1-2 % of body weight "
        "the COP is 2-4 mm from its single-leg position, inside the sway. The onset is found by fitting the "
        "whole transfer; a transfer that slows into a long tail (`ease_out`) is found early by about 0.2 s "
        "(table above). This is the main reason the onset target is not met.",
        "- **A light touchdown on the plate from sway.** A foot put down on the plate moves the COP toward "
        "it by its share of the weight times the distance between the feet. Below about 18-20 % of body "
        "weight, or within 4.5 standard deviations of the patient's own medio-lateral sway, it cannot be "
        "told from sway and is missed.",
        "- **Where the lifted foot lands when it is also unloaded by a hand.** A touchdown off the plate is a "
        "fast drop of Fz of at least 12 % BW; support is a slower, lighter deficit. A very light touchdown "
        "off the plate looks like support.",
        "",
        "## Ranges of the simulated population",
        "",
        "| parameter | range | unit | source |",
        "|---|---|---|---|",
    ]
    for name, r in RANGES.items():
        lines.append(f"| `{name}` | {r.lo:g}-{r.hi:g} | {r.unit} | {r.source} |")
    lines.append("")
    plot = bland_altman_svg(_hold_truths(ok), _hold_truths(ok) + hold,
                            title="Hold time: measured against the truth", unit="s", span=0.6)
    return "\n".join(lines), plot


def _touchdowns_agree(r: Scored) -> bool:
    """The trial's touchdowns were all found, with their kind, and none was found where there was none."""
    found = list(r.found_touchdowns)
    for t_true, w_true in r.true_touchdowns:
        near = [f for f in found if f[1] == w_true and abs(f[0] - t_true) <= 0.3]
        if not near:
            return False
        found.remove(near[0])
    return not found


def _hold_truths(rows: list[Scored]) -> np.ndarray:
    return np.array([r.extra.get("hold_true_s", np.nan) for r in rows])


def _bds_section() -> list[str]:
    ref_path = BDS_DIR / "reference.json"
    out = ["## Sway measures on real recordings (BDS)", ""]
    if not ref_path.exists():
        return out + ["The BDS trials are missing from tests/data/bds; this section is empty.", ""]
    ref = json.loads(ref_path.read_text(encoding="utf-8"))
    out += ["`analyze --protocol quiet-stance --lowpass-hz off` on the four real trials of Santos & Duarte "
            "(2016) against the authors' published values:", "",
            "| trial | ellipse (mm2) published / measured | mean velocity (mm/s) published / measured |",
            "|---|---|---|"]
    for trial in sorted(ref):
        res = analyze_file(BDS_DIR / f"{trial}.csv", protocol="quiet-stance", lowpass_hz=None)
        out.append(f"| {trial} | {ref[trial]['ellipse95_area_mm2']:.3f} / {res['cop']['ellipse95_area_mm2']:.3f} | "
                   f"{ref[trial]['mean_velocity_mm_s']:.4f} / {res['cop']['mean_velocity_mm_s']:.4f} |")
    return out + [""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed file instead of writing")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    rows = score_corpus(N_TRIALS, seed=SEED, workers=args.workers)
    text, plot = report(rows)
    if args.check:
        same = DOC.exists() and DOC.read_text(encoding="utf-8") == text and PLOT.read_text(encoding="utf-8") == plot
        print("docs/validation.md is up to date" if same else "docs/validation.md differs: rerun "
              "benchmarks/validation.py")
        return 0 if same else 1
    DOC.write_text(text, encoding="utf-8")
    PLOT.write_text(plot, encoding="utf-8")
    print(f"wrote {DOC.relative_to(ROOT)} and {PLOT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
