"""The visit report as PDF, with fpdf2 (pure Python: works on a Pi with no browser).

Modest on purpose: title, patient code, visit date, the left/right table with
the symmetry flag, the norm, the trials of the visit, the clinician's notes,
and the hold-time chart (the same SVG as the page, drawn as vectors).
The HTML report (``/sessions/{id}/report``, print CSS) is the full one.

Text uses the PDF core font (Helvetica, Latin-1): characters outside it are
replaced with plain equivalents (``≥`` becomes ``>=``), so no font file is needed.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from typing import Any

from fpdf import FPDF

from webui.routes import pages_data as pd

__all__ = ["session_report_pdf"]

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


class _Report(FPDF):
    def __init__(self, footer_text: str) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.footer_text = footer_text
        self.set_auto_page_break(auto=True, margin=16)
        self.set_margins(14, 14, 14)

    def footer(self) -> None:
        self.set_y(-11)
        self.set_font("helvetica", size=8)
        self.set_text_color(80, 80, 80)
        self.cell(0, 5, latin1(self.footer_text), align="L")
        self.cell(0, 5, f"page {self.page_no()}/{{nb}}", align="R")


def _heading(pdf: FPDF, text: str) -> None:
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


def session_report_pdf(ctx: Mapping[str, Any], *, station_id: str = "") -> bytes:
    """The PDF of one visit's report, from the context the HTML report is rendered with."""
    patient, visit = ctx["patient"], ctx["visit"]
    summary = ctx.get("summary")
    norm = ctx.get("norm")
    when = visit.started_at.astimezone()
    pdf = _Report(f"Balance station {station_id} - patient {patient.code} - visit {when:%Y-%m-%d %H:%M}"
                  f" - printed {ctx['printed_at']:%Y-%m-%d %H:%M}")
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

    _heading(pdf, "Hold time")
    svg = (ctx.get("trend") or {}).get("hold")
    if svg:
        y = pdf.get_y()
        width = pdf.w - pdf.l_margin - pdf.r_margin
        height = width * 260 / 760
        if pdf.will_page_break(height):
            pdf.add_page()
            y = pdf.get_y()
        # fpdf2 draws the chart's shapes and text; it has no use for the accessible <title> and <desc>
        drawable = re.sub(r"<(title|desc)\b[^>]*>.*?</\1>", "", latin1(svg), flags=re.S)
        pdf.image(io.BytesIO(drawable.encode("utf-8")), x=pdf.l_margin, y=y, w=width, h=height)
        pdf.set_y(y + height + 2)

    _heading(pdf, "Trials of this visit")
    trials = ctx.get("trials") or []
    if trials:
        rows = []
        for t in trials:
            m = t.metrics or {}
            rows.append([t.started_at.astimezone().strftime("%H:%M"), t.protocol,
                         t.stance_side.value if t.stance_side else "-", t.state.value,
                         pd.fmt(m.get("hold_time_s"), 1), pd.fmt((m.get("cop") or {}).get("mean_velocity_mm_s"), 1),
                         str(len(m.get("touchdowns") or [])) if m else "-",
                         pd.fmt((m.get("support") or {}).get("time_s"), 1), t.grade.value.replace("_", " ")])
        _table(pdf, ["Time", "Test", "Side", "State", "Hold (s)", "Sway (mm/s)", "Touchd.", "Support (s)", "Grade"],
               rows, [14, 24, 14, 22, 18, 22, 17, 21, 30], align=["L", "L", "L", "L", "R", "R", "R", "R", "L"])
        noted = [t for t in trials if t.notes]
        if noted:
            pdf.ln(1)
            for t in noted:
                _para(pdf, f"{t.started_at.astimezone():%H:%M} {t.stance_side.value if t.stance_side else ''}: "
                           f"{t.notes}", size=9)
    else:
        _para(pdf, "No trials.")

    _heading(pdf, "Clinician's notes")
    _para(pdf, visit.notes or "No notes.")
    out = pdf.output()
    return bytes(out)
