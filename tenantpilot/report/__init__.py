"""The customer report: one tenant or several against a baseline, as an Excel workbook or a printable PDF.

`gather` (data.py) makes the store's reads and assembles the tables with the product's own rules
(compare, deviations, history); `to_xlsx` and `to_pdf` only render. `render` picks the format.
"""

from __future__ import annotations

from tenantpilot.report.data import ReportData, ReportError, gather

FORMATS: tuple[str, ...] = ("xlsx", "pdf")


def render(data: ReportData, fmt: str) -> bytes:
    """The report's bytes in `fmt` (xlsx or pdf)."""
    if fmt == "xlsx":
        from tenantpilot.report.xlsx import to_xlsx

        return to_xlsx(data)
    if fmt == "pdf":
        from tenantpilot.report.pdf import to_pdf

        return to_pdf(data)
    raise ReportError(f"unknown report format {fmt!r}: choose one of {', '.join(FORMATS)}")


__all__ = ["FORMATS", "ReportData", "ReportError", "gather", "render"]
