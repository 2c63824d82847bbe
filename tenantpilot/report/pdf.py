"""The report as a printable PDF (A4 landscape): the summary with a chart, then the tables. Pure:
ReportData in, bytes out.

fpdf2 draws it: pure Python, text placed as text (no Markdown or HTML is interpreted: `markdown` stays
off), so a hostile name prints as itself. Text is set in DejaVu Sans Condensed, shipped in `fonts/`
(its licence beside it), so names in any Latin, Greek or Cyrillic script print; a character the font
lacks (CJK, for one) prints as [U+XXXX], so two names in such a script never print alike. A table cell is cut at PDF_CELL characters (a row must fit on a page); the
PDF lists at most MAX_ROWS rows per table and says how many more the workbook holds.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from fpdf import FPDF, FontFace, XPos, YPos

from tenantpilot.report.data import ACCEPTED, CHANGED_BY_RULE, DIFFERENT, MISSING, NOT_IN_BASELINE, ReportData

FONTS = Path(__file__).with_name("fonts")
FONT = "DejaVu"
PDF_CELL = 240
MAX_ROWS = 250  # fpdf2 lays out a table row in about 6 ms: 250 rows per table keep a tenant under 2 s
_CUT = " …"
_GREEN, _ORANGE, _RED, _GREY = (46, 125, 50), (239, 108, 0), (198, 40, 40), (120, 120, 120)
_HEAD = FontFace(emphasis="BOLD", fill_color=(225, 232, 240))
_BAND_RGB = (244, 246, 249)
_BAND = FontFace(fill_color=_BAND_RGB).fill_color  # as a colour object: a bare tuple is not applied
_STATUS_COLOUR = {DIFFERENT: _ORANGE, MISSING: _RED, ACCEPTED: _GREY, NOT_IN_BASELINE: (21, 101, 192)}

# the PDF's tables: which columns, and their relative widths
_DIFF = {"Status": 2.1, "Policy type": 1.9, "Setting": 4.2, "Category": 3.0, "Baseline value": 2.5,
         "Tenant value": 2.5, "Accepted until": 1.5}
_DEV = {"Tenant": 2, "Policy type": 2, "Setting": 4, "Reason": 3.4, "Owner": 1.6, "Accepted by": 2.2, "Expires on": 1.5, "State": 1.2}
_CHG = {"Tenant": 1.9, "When": 2.3, "Changed by": 2.6, "Change": 1.7, "Policy type": 1.9, "Policy": 3.6,
        "Setting": 3.2, "Before": 1.8, "After": 1.8}
_NOT = {"Tenant": 2, "Policy type": 3, "Status": 1.2, "Reason": 5, "Carried from run": 1.4, "Carried from": 2,
        "Carried settings": 1.4}
_SUM = {"Tenant": 4, "Alignment": 1.6, "Matched": 1.4, "Different value": 1.6, "Missing in the tenant": 1.7,
        "Not in the baseline": 1.7, "Accepted": 1.4, "Baseline settings": 1.6, "Changes": 1.3, "Types not read": 1.4}


class _Report(FPDF):
    def __init__(self, data: ReportData) -> None:
        super().__init__(orientation="L", unit="mm", format="A4")
        self.data = data
        self.section = ""  # what a page continues, named in its header
        self.add_font(FONT, "", str(FONTS / "DejaVuSansCondensed.ttf"))
        self.add_font(FONT, "B", str(FONTS / "DejaVuSansCondensed-Bold.ttf"))
        # the code points both faces draw (fpdf2's parsed cmaps): others print as [U+XXXX]
        regular, bold = (set(self.fonts[key].cmap) for key in (FONT.lower(), FONT.lower() + "B"))  # type: ignore[union-attr]
        self.glyphs = frozenset(regular & bold | {10, 13})
        self.set_margins(12, 12, 12)
        self.set_auto_page_break(True, margin=14)
        self.set_title(f"Baseline alignment: {data.baseline}")
        self.set_creator("TenantPilot")

    def header(self) -> None:
        if self.page_no() == 1:
            return
        self.set_font(FONT, "", 7.5)
        self.set_text_color(*_GREY)
        where = f" · {self.section}" if self.section else ""
        self.cell(0, 4, _fit(self, f"Baseline alignment report · {self.data.baseline}{where}", self.epw),
                  new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.ln(2)
        self.set_text_color(0, 0, 0)

    def footer(self) -> None:
        self.set_y(-10)
        self.set_font(FONT, "", 7.5)
        self.set_text_color(*_GREY)
        self.cell(0, 4, f"TenantPilot · generated {self.data.generated_at.strftime('%Y-%m-%d %H:%M UTC')}",
                  align="L")
        self.set_text_color(0, 0, 0)

    def number_pages(self) -> None:
        """"Page n of N" on every page, once N is known (fpdf2 may draw on a finished page until output)."""
        last = self.page
        self.set_auto_page_break(False)
        self.set_font(FONT, "", 7.5)
        self.set_text_color(*_GREY)
        for n in range(1, last + 1):
            self.page = n
            self.set_xy(self.l_margin, self.h - 10)
            self.cell(0, 4, f"Page {n} of {last}", align="R")
        self.page = last


def to_pdf(data: ReportData) -> bytes:
    pdf = _draw(data)
    pdf.number_pages()
    return bytes(pdf.output())


def _draw(data: ReportData) -> _Report:
    pdf = _Report(data)
    pdf.add_page()
    _front(pdf, data)
    _differences(pdf, data)
    _section(pdf, "Accepted deviations", data.accepted, _DEV,
             "Differences the customer accepted, with the reason and the last day they are accepted. Expired ones "
             "count again.", "None: no deviation from this baseline is accepted.")
    _section(pdf, f"Changes since {data.since}", data.changes, _CHG,
             "Policies added, deleted or renamed and settings changed, with who changed them where Intune's audit "
             f"log recorded it. {CHANGED_BY_RULE}", "None: no policy or setting changed in this time.")
    _section(pdf, "Types not read (carried forward)", data.not_read, _NOT,
             "Policy types the latest sync could not read: the report shows their settings from an earlier run.",
             "None: the latest sync read every policy type.")
    return pdf


def _front(pdf: _Report, data: ReportData) -> None:
    pdf.set_font(FONT, "B", 18)
    pdf.cell(0, 10, "Baseline alignment report", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(FONT, "", 10)
    for label, value in (("Baseline", data.baseline), ("Tenants", ", ".join(data.tenants)),
                         ("Changes since", data.since),
                         ("Generated", data.generated_at.strftime("%Y-%m-%d %H:%M UTC"))):
        pdf.set_font(FONT, "B", 10)
        pdf.cell(32, 5.5, label)
        pdf.set_font(FONT, "", 10)
        pdf.multi_cell(0, 5.5, _cut(pdf, value, 600), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)
    _heading(pdf, "Summary")
    _note(pdf, "Alignment = matched settings ÷ baseline settings. Accepted deviations are left out of both; settings "
               "only the tenant has (not in the baseline) do not lower the score.")
    shown = data.summary.with_columns(
        pl.col("Alignment").map_elements(lambda v: f"{v:.1%}", return_dtype=pl.String).fill_null("—"))
    _rows(pdf, shown, _SUM, numeric=set(_SUM) - {"Tenant"})
    pdf.ln(4)
    _chart(pdf, data.summary)


def _chart(pdf: _Report, summary: pl.DataFrame) -> None:
    """A stacked bar per tenant over its baseline settings: matched (green), different value (orange),
    missing in the tenant (red); the score printed at its end."""
    if summary.height == 0:
        return
    bar_h, gap, label_w, bar_w = 6.0, 3.0, 60.0, 170.0
    needed = 12 + summary.height * (bar_h + gap) + 10
    if pdf.get_y() + needed > pdf.h - pdf.b_margin:
        pdf.add_page()
    _heading(pdf, "Alignment with the baseline")
    x0 = pdf.l_margin + label_w
    for row in summary.iter_rows(named=True):
        y = pdf.get_y()
        pdf.set_font(FONT, "", 9)
        pdf.set_xy(pdf.l_margin, y)
        pdf.cell(label_w - 3, bar_h, _fit(pdf, row["Tenant"], label_w - 4), align="R")
        total = row["Baseline settings"] or 0
        x = x0
        for column, colour in (("Matched", _GREEN), ("Different value", _ORANGE), ("Missing in the tenant", _RED)):
            width = bar_w * (row[column] or 0) / total if total else 0
            if width > 0:
                pdf.set_fill_color(*colour)
                pdf.rect(x, y, width, bar_h, style="F")
                x += width
        if not total:
            pdf.set_draw_color(*_GREY)
            pdf.rect(x0, y, bar_w, bar_h, style="D")
        pdf.set_xy(x0 + bar_w + 3, y)
        pdf.set_font(FONT, "B", 9)
        score = row["Alignment"]
        pdf.cell(30, bar_h, "—" if score is None else f"{score:.1%}")
        pdf.set_y(y + bar_h + gap)
    # legend
    pdf.set_font(FONT, "", 8)
    x = x0
    for name, colour in (("Matched", _GREEN), ("Different value", _ORANGE), ("Missing in the tenant", _RED)):
        pdf.set_fill_color(*colour)
        pdf.rect(x, pdf.get_y() + 1, 3, 3, style="F")
        pdf.set_x(x + 4)
        pdf.cell(pdf.get_string_width(name) + 6, 5, name)
        x = pdf.get_x()
    pdf.ln(8)


def _differences(pdf: _Report, data: ReportData) -> None:
    """One block per tenant (in the order asked for), its counts by status in the block's title."""
    pdf.add_page()
    _heading(pdf, f"Differences from {data.baseline}")
    _note(pdf, "Per tenant: settings set to a different value, missing in the tenant, accepted deviations (with "
               "the last day they are accepted), and settings the baseline does not have.")
    frame = data.differences
    for tenant in data.tenants:
        rows = frame.filter(pl.col("Tenant") == tenant)
        if pdf.get_y() > pdf.h - pdf.b_margin - 30:
            pdf.add_page()
        counts = dict(rows.group_by("Status").len().iter_rows())
        told = " · ".join(f"{s}: {counts[s]}" for s in _STATUS_COLOUR if counts.get(s))
        pdf.section = f"Differences of {tenant}"
        _heading(pdf, tenant, size=11)
        _note(pdf, told or "No difference: every baseline setting is set to the baseline's value.")
        if rows.height:
            _rows(pdf, rows.head(MAX_ROWS), _DIFF, status=True)
        if rows.height > MAX_ROWS:
            _note(pdf, f"… and {rows.height - MAX_ROWS:,} more rows: the Excel workbook lists all {rows.height:,}.")
        pdf.ln(4)


def _heading(pdf: _Report, text: str, size: float = 13) -> None:
    pdf.set_font(FONT, "B", size)
    pdf.cell(0, size * 0.6, _fit(pdf, text, pdf.epw), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _fit(pdf: _Report, text: str, width: float) -> str:
    """`text` (as _cut prints it) cut with " …" to fit `width` mm in the current font: one line."""
    shown = _cut(pdf, text, 400)
    if pdf.get_string_width(shown) <= width:
        return shown
    low, high = 0, len(shown)  # the longest prefix that fits with the mark
    while low < high:
        mid = (low + high + 1) // 2
        if pdf.get_string_width(shown[:mid] + _CUT) <= width:
            low = mid
        else:
            high = mid - 1
    return shown[:low] + _CUT


def _note(pdf: _Report, text: str) -> None:
    pdf.set_font(FONT, "", 8.5)
    pdf.set_text_color(*_GREY)
    pdf.multi_cell(0, 4.5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(0, 0, 0)
    pdf.ln(1)


def _section(pdf: _Report, title: str, frame: pl.DataFrame, columns: dict[str, float], note: str, empty: str, *,
             status: bool = False) -> None:
    """A table section: on the current page when a heading and a few rows fit there, else on the next."""
    pdf.section = title
    if pdf.get_y() > pdf.h - pdf.b_margin - (45 if frame.height else 25):
        pdf.add_page()
    else:
        pdf.ln(6)
    _heading(pdf, title)
    _note(pdf, note)
    if frame.height == 0:
        pdf.set_font(FONT, "", 9)
        pdf.cell(0, 6, empty, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        return
    _rows(pdf, frame.head(MAX_ROWS), columns, status=status)
    if frame.height > MAX_ROWS:
        pdf.ln(2)
        _note(pdf, f"… and {frame.height - MAX_ROWS:,} more rows: the Excel workbook lists all {frame.height:,}.")


def _rows(pdf: _Report, frame: pl.DataFrame, columns: dict[str, float], *, numeric: set[str] = frozenset(),  # type: ignore[assignment]
          status: bool = False) -> None:
    names = [c for c in columns if c in frame.columns]
    pdf.set_font(FONT, "", 7.5)
    pdf.set_fill_color(*_BAND_RGB)  # fpdf2 2.8.9 fills banded rows with the current colour, not always the band's
    pdf.set_draw_color(190, 198, 208)
    with pdf.table(col_widths=[columns[c] for c in names], width=pdf.epw, headings_style=_HEAD, line_height=3.6,
                   text_align="LEFT", padding=(0.8, 1.0), cell_fill_color=_BAND, cell_fill_mode="ROWS",
                   borders_layout="HORIZONTAL_LINES", repeat_headings=1) as table:
        head = table.row()
        for c in names:
            head.cell(c, align="RIGHT" if c in numeric else "LEFT")
        for record in frame.select(names).iter_rows(named=True):
            row = table.row()
            for c in names:
                value = record[c]
                text = "" if value is None else _cut(pdf, str(value), PDF_CELL)
                style = None
                if status and c == "Status" and value in _STATUS_COLOUR:
                    style = FontFace(color=_STATUS_COLOUR[value], emphasis="BOLD")
                row.cell(text, align="RIGHT" if c in numeric else "LEFT", style=style)


def _cut(pdf: _Report, text: str, limit: int) -> str:
    """Text as the PDF prints it: at most `limit` characters, each the font cannot draw as [U+XXXX]."""
    text = text if len(text) <= limit else text[:limit - len(_CUT)] + _CUT
    glyphs = pdf.glyphs
    if all(ord(c) in glyphs for c in text):
        return text
    return "".join(c if ord(c) in glyphs else f"[U+{ord(c):04X}]" for c in text)
