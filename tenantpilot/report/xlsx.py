"""The report as an Excel workbook: Summary (scores and a chart), Differences, Accepted deviations, Changes,
Types not read. Pure: ReportData in, bytes out.

Tables are written by Polars' `write_excel` (XlsxWriter underneath: an Excel table per sheet with a
filter, banded rows, fitted columns) into a workbook made here, because Polars' own workbook turns a text
that looks like a URL into a live hyperlink (`strings_to_urls` stays on). This workbook turns nothing
into anything: no formulas, no hyperlinks, no numbers from text, so every name and value is a text cell.
Text that a spreadsheet could read as a formula (export.FORMULA_PATTERN) also gets Excel's own quote
prefix (the `'` Excel shows in the formula bar, not part of the value), so editing the cell keeps it text.
"""

from __future__ import annotations

import io
import re

import polars as pl
from xlsxwriter import Workbook
from xlsxwriter.worksheet import Worksheet

from tenantpilot.analysis.export import FORMULA_PATTERN
from tenantpilot.report.data import CHANGED_BY_RULE, SCORE_COLUMN, ReportData

SHEETS: tuple[str, ...] = ("Summary", "Differences", "Accepted deviations", "Changes", "Types not read")
_FORMULA = re.compile(FORMULA_PATTERN)
_WIDTH_CAP = 60  # characters: wider columns wrap
_STYLE = "Table Style Light 9"
_W = SCORE_COLUMN
_COLOURS = {_W["matched"]: "#2E7D32", _W["differing"]: "#EF6C00", _W["missing"]: "#C62828"}


def to_xlsx(data: ReportData) -> bytes:
    buf = io.BytesIO()
    wb = Workbook(buf, {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False,
                        "nan_inf_to_errors": True, "in_memory": True})
    wb.set_properties({"title": f"Baseline alignment: {data.baseline}", "subject": "TenantPilot report",
                       "creator": "TenantPilot"})
    fmt = _Formats(wb)
    _summary(wb, data, fmt)
    _table(wb, "Differences", data.differences, fmt,
           f"Settings where a tenant differs from {data.baseline} (accepted deviations marked)",
           "None: every tenant sets every baseline setting to the baseline's value.")
    _table(wb, "Accepted deviations", data.accepted, fmt,
           f"Differences from {data.baseline} the customer accepted, with reason and expiry",
           "None: no deviation from this baseline is accepted.")
    _table(wb, "Changes", data.changes, fmt,
           f"Changes since {data.since}: policies added, deleted or renamed, settings changed. {CHANGED_BY_RULE}",
           "None: no policy or setting changed in this time.")
    _table(wb, "Types not read", data.not_read, fmt,
           "Policy types the latest sync could not read: their settings are carried forward from an earlier run",
           "None: the latest sync read every policy type.")
    wb.close()
    return buf.getvalue()


class _Formats:
    def __init__(self, wb: Workbook) -> None:
        self.title = wb.add_format({"bold": True, "font_size": 16})
        self.note = wb.add_format({"italic": True, "font_color": "#555555"})
        self.label = wb.add_format({"bold": True})
        self.text = wb.add_format({})
        self.quoted = wb.add_format({"quote_prefix": True})
        self.wrap = wb.add_format({"text_wrap": True, "valign": "top"})
        self.quoted_wrap = wb.add_format({"text_wrap": True, "valign": "top", "quote_prefix": True})


def _text(ws: Worksheet, row: int, col: int, value: str, fmt: _Formats, cell_format: object | None = None) -> None:
    """One text cell, always a string cell (never a formula, URL or number)."""
    ws.write_string(row, col, value, fmt.quoted if _FORMULA.match(value) else (cell_format or fmt.text))


def _summary(wb: Workbook, data: ReportData, fmt: _Formats) -> None:
    ws = wb.add_worksheet("Summary")
    ws.write_string(0, 0, "Baseline alignment report", fmt.title)
    facts = (("Baseline", data.baseline), ("Tenants", ", ".join(data.tenants)),
             ("Changes since", data.since),
             ("Generated", data.generated_at.strftime("%Y-%m-%d %H:%M UTC")),
             ("Alignment", "matched settings ÷ baseline settings; accepted deviations are left out of both"))
    for i, (label, value) in enumerate(facts, start=2):
        ws.write_string(i, 0, label, fmt.label)
        _text(ws, i, 1, value, fmt)
    top = len(facts) + 3
    frame = data.summary
    frame.write_excel(wb, ws, position=(top, 0), table_style=_STYLE, table_name="Summary",
                      column_formats={"Alignment": "0.0%"}, autofit=True, float_precision=3)
    _requote(ws, frame, top, fmt)
    ws.set_column(0, 0, min(_WIDTH_CAP, max([12, *(len(t) + 2 for t in data.tenants)])))
    ws.set_column(1, 1, 24)
    if frame.height:
        _chart(wb, ws, frame, top, fmt)


def _chart(wb: Workbook, ws: Worksheet, frame: pl.DataFrame, top: int, fmt: _Formats) -> None:
    """A 100 % stacked bar per tenant: matched, different value, missing in the tenant (the green part is
    the alignment score)."""
    chart = wb.add_chart({"type": "bar", "subtype": "percent_stacked"})
    first, last = top + 1, top + frame.height
    for name, colour in _COLOURS.items():
        col = frame.columns.index(name)
        chart.add_series({"name": ["Summary", top, col], "categories": ["Summary", first, 0, last, 0],
                          "values": ["Summary", first, col, last, col], "fill": {"color": colour},
                          "gap": 60})
    chart.set_title({"name": "Alignment with the baseline"})
    chart.set_x_axis({"num_format": "0%", "major_gridlines": {"visible": True}})
    chart.set_y_axis({"reverse": True})
    chart.set_legend({"position": "bottom"})
    chart.set_size({"width": 720, "height": max(220, 60 + 40 * frame.height)})
    ws.insert_chart(last + 2, 0, chart)


def _table(wb: Workbook, name: str, frame: pl.DataFrame, fmt: _Formats, note: str, empty: str) -> None:
    ws = wb.add_worksheet(name)
    _text(ws, 0, 0, note, fmt, fmt.note)
    if frame.height == 0:
        ws.write_string(2, 0, empty, fmt.text)
        return
    frame.write_excel(wb, ws, position=(2, 0), table_style=_STYLE, table_name=name.replace(" ", "_"),
                      autofit=True, freeze_panes=(3, 0))
    _requote(ws, frame, 2, fmt)
    for i, column in enumerate(frame.columns):
        if frame.schema[column] == pl.String:
            longest = frame.select(pl.col(column).str.len_chars().max().fill_null(0)).item()
            width = max(len(column) + 4, min(_WIDTH_CAP, int(longest) + 2))
            ws.set_column(i, i, width, fmt.wrap if width >= _WIDTH_CAP else None)


def _requote(ws: Worksheet, frame: pl.DataFrame, top: int, fmt: _Formats) -> None:
    """Rewrite the formula-like text cells of a table written at row `top` with the quote prefix."""
    for c, column in enumerate(frame.columns):
        if frame.schema[column] != pl.String:
            continue
        hits = frame.select(pl.col(column).str.contains(FORMULA_PATTERN).fill_null(False).arg_true())
        for r in hits.to_series().to_list():
            ws.write_string(top + 1 + r, c, frame[column][r], fmt.quoted)
