"""CSV and Parquet export of exactly the frame the user sees.

CSV is UTF-8 with a BOM (Excel then reads it as UTF-8) and is safe from formula injection
(OWASP's advice, widened): every text cell *and every header cell* (the compare matrix turns
tenant names into headers) that a spreadsheet could read as a formula gets a leading single
quote, so it shows as text instead of running. That is a cell that
- starts with a tab or a carriage return, or
- starts with = + - @, or their full-width (＝ ＋ － ＠) or small-form (﹦ ﹢ ﹣ ﹫) twins,
  after any leading whitespace or zero-width characters (" =1+1" runs in some spreadsheets too).
Numbers stay numbers; a text "-1" becomes "'-1".

The separator is TENANTPILOT_CSV_SEPARATOR (`,` by default, or `;`: Excel opens a file by double-click
with the list separator of the machine's region, `;` where the decimal mark is a comma, as in German).
Every CSV the product writes goes through `to_csv_bytes`; a cell holding the separator is quoted.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import polars as pl

BOM = "\ufeff".encode()
# one pattern for polars (Rust regex) and Python's re: literal characters, Unicode \s in both
FORMULA_PATTERN = "^(?:[\t\r]|[\\s\u200b\u200c\u200d\u2060\ufeff]*[=+\\-@\uff1d\uff0b\uff0d\uff20\ufe66\ufe62\ufe63\ufe6b])"
_FORMULA = re.compile(FORMULA_PATTERN)


def neutralise_text(text: str) -> str:
    """One cell as a spreadsheet must show it: formula-like text gets a leading single quote."""
    return "'" + text if _FORMULA.match(text) else text


def neutralise_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Every String cell and every column name neutralised (see the module docstring)."""
    text_cols = [c for c, t in frame.schema.items() if t == pl.String]
    frame = frame.with_columns(
        pl.when(pl.col(c).str.contains(FORMULA_PATTERN)).then(pl.lit("'") + pl.col(c)).otherwise(pl.col(c)).alias(c)
        for c in text_cols
    )
    names: dict[str, str] = {}
    taken = set(frame.columns)
    for column in frame.columns:
        safe = neutralise_text(column)
        if safe == column:
            continue
        while safe in taken:  # never collide with a column that already has the quoted name
            safe += "'"
        taken.add(safe)
        names[column] = safe
    return frame.rename(names) if names else frame


def _flatten_nested(frame: pl.DataFrame) -> pl.DataFrame:
    nested = [c for c, t in frame.schema.items() if isinstance(t, (pl.List, pl.Struct, pl.Array, pl.Object))]
    return frame.with_columns(pl.col(c).cast(pl.String, strict=False) for c in nested) if nested else frame


def to_csv_bytes(frame: pl.DataFrame, separator: str | None = None) -> bytes:
    """The frame as CSV: BOM, formula guard, `separator` (default: the TENANTPILOT_CSV_SEPARATOR setting)."""
    if separator is None:
        from tenantpilot.config import settings

        separator = settings().csv_separator
    buf = io.BytesIO()
    neutralise_formulas(_flatten_nested(frame)).write_csv(buf, separator=separator)
    return BOM + buf.getvalue()


def to_parquet_bytes(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_parquet(buf)
    return buf.getvalue()


def write(frame: pl.DataFrame, path: Path, fmt: str) -> Path:
    data = to_csv_bytes(frame) if fmt == "csv" else to_parquet_bytes(frame)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
