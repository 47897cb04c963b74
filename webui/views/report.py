"""The visit report as PDF, with fpdf2 (pure Python: works on a Pi with no browser).

The same content as the HTML report (``/sessions/{id}/report``): title, patient code, visit date, the
left/right table with the symmetry flag, the norm, the trials of the visit, what each trial's numbers
cover (the sway window beside the whole recording, hand support with its detection limit, the points
to check), the charts (hold-time and sway-velocity trends, the statokinesigram of each side's best
trial on one scale: the same SVGs as the page, drawn as vectors, readable in black and white) and the
clinician's notes. A report of data from the simulated plate says so in a band on every page.

Text uses the PDF core font (Helvetica, Latin-1): characters outside it are
replaced with plain equivalents (``≥`` becomes ``>=``), so no font file is needed.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from typing import Any

from fpdf import FPDF

from station.core.sides import SIDES
from webui.views import pages_data as pd

__all__ = ["SIMULATED_BAND", "session_report_pdf"]

_REPLACE = {
    "\u2212": "-", "\u2013": "-", "\u2014": "-", "\u2265": ">=", "\u2264": "<=", "\u202f": " ", "\u2009": " ",
    "\u2691": "", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2026": "...", "\u2192": "->",
}


def latin1(text: Any) -> str:
    """``text`` in the core font's Latin-1, with the usual typographic characters replaced."""
    s = str(text)
    for a, b in _REPLACE.items():
        s = s.replace(a, b)
    return s.encode("latin-1", "replace").decode("latin-1")


#: the band on every page of a report whose data come from the simulated plate
SIMULATED_BAND = "SIMULATED PLATE - demonstration data, not a measurement of a person"


class _Report(FPDF):
    def __init__(self, footer_text: str, *, simulated: bool = False) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.footer_text = footer_text
        self.simulated = simulated
        self.set_auto_page_break(auto=True, margin=16)
        self.set_margins(14, 20 if simulated else 14, 14)

    def header(self) -> None:
        if not self.simulated:
            return
        # black on light grey with a black frame: reads the same printed in black and white
        self.set_xy(self.l_margin, 6)
        self.set_font("helvetica", "B", 10)
        self.set_text_color(0, 0, 0)
        self.set_fill_color(225, 225, 225)
        self.set_draw_color(0, 0, 0)
        self.set_line_width(0.5)
        self.cell(self.w - self.l_margin - self.r_margin, 8, latin1(SIMULATED_BAND), border=1, align="C", fill=True)
        self.set_line_width(0.2)
        self.set_y(self.t_margin)

    def footer(self) -> None:
        self.set_y(-11)
        self.set_font("helvetica", size=8)
        self.set_text_color(80, 80, 80)
        text = self.footer_text + (" - SIMULATED PLATE" if self.simulated else "")
        width = self.w - self.l_margin - self.r_margin
        self.cell(width - 22, 5, latin1(text), align="L")
        self.cell(22, 5, f"page {self.page_no()}/{{nb}}", align="R")


def _drawable(svg: str) -> bytes:
    """A chart's SVG as fpdf2 draws it: Latin-1 text, no accessible <title>/<desc> (it has no use for them),
    no white text halo (fpdf2 knows no paint-order: the halo would be painted over the letters)."""
    text = re.sub(r"<(title|desc)\b[^>]*>.*?</\1>", "", latin1(svg), flags=re.S)
    text = re.sub(r' stroke="#ffffff" stroke-width="[\d.]+" stroke-linejoin="round" paint-order="stroke"', "", text)
    return text.encode("utf-8")


def _svg_size(svg: str) -> tuple[float, float]:
    m = re.search(r'viewBox="0 0 ([\d.]+) ([\d.]+)"', svg)
    return (float(m.group(1)), float(m.group(2))) if m else (760.0, 260.0)


def _charts_row(pdf: FPDF, svgs: list[str], *, gap: float = 4.0, reserve: float = 0.0, share: float = 1.0) -> None:
    """Charts side by side across ``share`` of the page's width (centred), each at its own aspect ratio,
    kept whole on one page (with ``reserve`` mm under them for their caption)."""
    full = (pdf.w - pdf.l_margin - pdf.r_margin) * share
    left = pdf.l_margin + (pdf.w - pdf.l_margin - pdf.r_margin - full) / 2
    w = (full - gap * (len(svgs) - 1)) / len(svgs)
    heights = [w * _svg_size(svg)[1] / _svg_size(svg)[0] for svg in svgs]
    h = max(heights)
    if pdf.will_page_break(h + 2 + reserve):
        pdf.add_page()
    y = pdf.get_y()
    for k, svg in enumerate(svgs):
        pdf.image(io.BytesIO(_drawable(svg)), x=left + k * (w + gap), y=y, w=w, h=heights[k])
    pdf.set_y(y + h + 2)


def _heading(pdf: FPDF, text: str) -> None:
    if pdf.will_page_break(3 + 7 + 1.5 + 15):
        pdf.add_page()  # a heading never alone at the foot of a page: with at least three lines of its text
    pdf.ln(3)
    pdf.set_font("helvetica", "B", 12.5)
    pdf.set_text_color(0, 0, 0)
    pdf.cell(0, 7, latin1(text), new_x="LMARGIN", new_y="NEXT")
    pdf.set_draw_color(120, 120, 120)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.ln(1.5)


def _para(pdf: FPDF, text: str, *, size: float = 10, style: str = "") -> None:
    pdf.set_font("helvetica", style, size)
    pdf.multi_cell(0, 5, latin1(text), new_x="LMARGIN", new_y="NEXT")


def _table(pdf: FPDF, header: list[str], rows: list[list[str]], widths: list[float], *,
           align: list[str] | None = None, bold_rows: set[int] | None = None) -> None:
    align = align or ["L"] * len(header)
    pdf.set_font("helvetica", "B", 9)
    pdf.set_fill_color(230, 230, 230)
    for h, w, a in zip(header, widths, align):
        pdf.cell(w, 6.5, latin1(h), border=1, align=a, fill=True)
    pdf.ln()
    for i, row in enumerate(rows):
        pdf.set_font("helvetica", "B" if bold_rows and i in bold_rows else "", 9)
        if pdf.will_page_break(6):
            pdf.add_page()
        for cell, w, a in zip(row, widths, align):
            pdf.cell(w, 6, latin1(cell), border=1, align=a)
        pdf.ln()


def _grade_cell(grade: str, metrics: Mapping[str, Any]) -> str:
    """The clinician's grade, and beside it the sign the pelvis sensor measured (when it was worn)."""
    text = grade.replace("_", " ")
    sign = (metrics.get("pelvis") or {}).get("sign")
    return f"{text} / {sign}" if sign else text


def session_report_pdf(ctx: Mapping[str, Any], *, station_id: str = "") -> bytes:
    """The PDF of one visit's report, from the context the HTML report is rendered with."""
    patient, visit = ctx["patient"], ctx["visit"]
    summary = ctx.get("summary")
    norm = ctx.get("norm")
    when = visit.started_at.astimezone()
    trials = ctx.get("trials") or []
    simulated = pd.is_simulated(trials)
    pdf = _Report(f"Balance station {station_id} - patient {patient.code} - visit {when:%Y-%m-%d %H:%M}"
                  f" - printed {ctx['printed_at']:%Y-%m-%d %H:%M}", simulated=simulated)
    pdf.set_title(latin1(f"Single-leg stance report {patient.code} {when:%Y-%m-%d}"))
    pdf.set_creator("balance-station")
    pdf.add_page()
    pdf.set_font("helvetica", "B", 16)
    pdf.cell(0, 9, latin1(f"Single-leg stance report - patient {patient.code}"), new_x="LMARGIN", new_y="NEXT")
    details = [f"Visit: {when:%A %d %B %Y, %H:%M}"]
    who = f"Patient: {patient.code}"
    if ctx.get("age") is not None:
        who += f", {ctx['age']:.0f} years"
    if patient.sex:
        who += f", {patient.sex.value}"
    if patient.affected_side:
        who += f"; affected side: {patient.affected_side.value}"
    details.append(who)
    if visit.clinician:
        details.append(f"Clinician: {visit.clinician}")
    for line in details:
        _para(pdf, line, size=10.5)
    if simulated:
        pdf.ln(1)
        _para(pdf, "The data of this report come from the simulated plate (a demonstration), not from a "
                   "measurement of a person.", size=10.5, style="B")

    _heading(pdf, "Left and right (best trial of each side)")
    rows = ctx.get("comparison_rows") or []
    if rows:
        flag = ctx.get("flag_text") or ""
        if flag:
            flagged = bool((summary or {}).get("comparison", {}) and summary["comparison"].get("flagged"))
            if flagged:
                pdf.set_text_color(140, 0, 0)
            _para(pdf, ("FLAG: " if flagged else "") + flag, size=10.5, style="B")
            pdf.set_text_color(0, 0, 0)
        table_rows = [[r["label"], r["left"], r["right"], r["unit"], r["difference_pct"], r["symmetry_index"],
                       r["worse_side"] + (" (flag)" if r["flagged"] else "")] for r in rows]
        _table(pdf, ["Measure", "Left", "Right", "Unit", "Diff. (%)", "Sym. index", "Worse side"], table_rows,
               [58, 18, 18, 16, 20, 22, 30], align=["L", "R", "R", "L", "R", "R", "L"],
               bold_rows={i for i, r in enumerate(rows) if r["flagged"]})
        pdf.set_font("helvetica", size=8.5)
        pdf.multi_cell(0, 4.5, latin1("Symmetry index = worse side / better side; a difference of 16 % or more "
                                      "in hold time or sway velocity is flagged."), new_x="LMARGIN", new_y="NEXT")
    else:
        _para(pdf, "No scored single-leg test in this visit.")

    _heading(pdf, "Norm")
    if norm and norm.get("norm_hold_s") is not None:
        expect = ("a healthy person of this age is expected to hold the full 30 s"
                  if norm.get("expected_to_complete") else f"expected hold {norm['expected_hold_s']:.0f} s")
        _para(pdf, f"Age {norm['age_years']:.0f} (group {norm['age_group']} years): {norm['norm_hold_s']:.0f} s "
                   f"single-leg stance, {norm['condition']}; {expect}.")
        pdf.set_font("helvetica", "I", 8.5)
        pdf.multi_cell(0, 4.5, latin1(f"Source: {norm['source']}. A reference, not a pass/fail rule."),
                       new_x="LMARGIN", new_y="NEXT")
    elif norm:
        _para(pdf, f"No norm for age {norm['age_years']:.0f} (the table covers 18 to 99 years).")
    else:
        _para(pdf, "No norm: the year of birth is not known.")

    _heading(pdf, "Trials of this visit")
    if trials:
        rows = []
        for t in trials:
            m = t.metrics or {}
            rows.append([t.started_at.astimezone().strftime("%H:%M"), t.protocol,
                         t.stance_side.value if t.stance_side else "-", t.state.value,
                         pd.fmt(m.get("hold_time_s"), 1), pd.fmt((m.get("cop") or {}).get("mean_velocity_mm_s"), 1),
                         str(len(m.get("touchdowns") or [])) if m else "-",
                         pd.fmt((m.get("support") or {}).get("time_s"), 1), _grade_cell(t.grade.value, m)])
        _table(pdf, ["Time", "Test", "Side", "State", "Hold (s)", "Sway (mm/s)", "Touchd.", "Support (s)",
                     "Grade / sensor"],
               rows, [14, 22, 14, 18, 17, 22, 16, 19, 40], align=["L", "L", "L", "L", "R", "R", "R", "R", "L"])
        noted = [t for t in trials if t.notes]
        if noted:
            pdf.ln(1)
            for t in noted:
                _para(pdf, f"{t.started_at.astimezone():%H:%M} {t.stance_side.value if t.stance_side else ''}: "
                           f"{t.notes}", size=9)
    else:
        _para(pdf, "No trials.")

    if trials:
        _heading(pdf, "What each trial's numbers cover")
        for t in trials:
            n = pd.trial_numbers(t.metrics, t.protocol)
            side = t.stance_side.value if t.stance_side else ""
            head = f"{t.started_at.astimezone():%H:%M} {side} ({t.protocol}, {t.state.value})".replace("  ", " ")
            lines = []
            if n["scored"]:
                cover = f"Sway measures cover {n['window_text']}"
                if n["window_note"]:
                    cover += " (estimated: the trial was scored before the window was stored)"
                lines.append(cover + ".")
            elif not n["test"]:
                lines.append("A drill: no sway measures.")
            elif t.state.value != "complete":
                lines.append("Not scored: no sway measures.")
            else:
                lines.append("No sway measures: this trial has no hold to measure.")
            if n["recording_text"]:
                lines.append(f"Whole recording: {n['recording_text']}.")
            if n["support_text"]:
                lines.append(n["support_text"] + ".")
            if n["pelvis"]:
                lines.append(f"Pelvis sensor: Trendelenburg sign {n['pelvis']['sign']} ({n['pelvis']['text']}).")
            if n["quality"]:
                lines.append("Points to check: " + "; ".join(q["message"].rstrip(".") for q in n["quality"]) + ".")
            elif n["scored"] and n["quality"] is None:
                lines.append("Quality not judged (scored before the station did so).")
            if pdf.will_page_break(5 * (len(lines) + 1)):
                pdf.add_page()
            _para(pdf, head, size=9.5, style="B")
            pdf.set_x(pdf.l_margin + 4)
            pdf.set_font("helvetica", "", 9)
            pdf.multi_cell(pdf.w - pdf.l_margin - pdf.r_margin - 4, 4.6, latin1(" ".join(lines)),
                           new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1)

    trend = ctx.get("trend") or {}
    best = ctx.get("best_charts") or {}
    if trend.get("hold") or trend.get("sway") or best:
        first = trend.get("hold") or trend.get("sway") or next(iter(best.values()))["svg"]
        w, h = _svg_size(first)
        if pdf.will_page_break(14 + (pdf.w - pdf.l_margin - pdf.r_margin) * h / w):
            pdf.add_page()  # the heading with its first chart, not alone at the foot of a page
        _heading(pdf, "Charts")
        for key in ("hold", "sway"):
            if trend.get(key):
                _charts_row(pdf, [trend[key]])
        sides = [s for s in SIDES if best.get(s)]
        if sides:
            caption = "; ".join(f"{s}: best trial at {best[s]['trial'].started_at.astimezone():%H:%M}, COP over "
                                f"{best[s]['window'].text()}" for s in sides)
            if len(sides) == 2:
                caption += ". Left and right are drawn on the same scale"
            caption = latin1(f"Statokinesigrams with the 95 % ellipse ({caption}).")
            pdf.set_font("helvetica", "", 8.5)
            lines = len(pdf.multi_cell(0, 4.5, caption, dry_run=True, output="LINES"))
            # a little narrower than the page: the pair then fits on one page with the two trends
            _charts_row(pdf, [best[s]["svg"] for s in sides], reserve=4.5 * lines + 1, share=0.86)
            pdf.set_font("helvetica", "", 8.5)
            pdf.multi_cell(0, 4.5, caption, new_x="LMARGIN", new_y="NEXT")
    if ctx.get("pelvis_chart"):  # the pelvis sensor's drop, best trial of each side (whole, on one page)
        _charts_row(pdf, [ctx["pelvis_chart"]])

    _heading(pdf, "Clinician's notes")
    _para(pdf, visit.notes or "No notes.")
    out = pdf.output()
    return bytes(out)
