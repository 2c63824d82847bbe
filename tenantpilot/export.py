"""CSV and Parquet export of exactly the frame the user sees.

CSV is UTF-8 with a BOM (Excel then reads it as UTF-8) and is safe from formula injection:
a text cell starting with = + - @ tab or CR is prefixed with a single quote (OWASP advice),
so a spreadsheet shows it as text instead of running it.
"""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl

BOM = "\ufeff".encode()


def neutralise_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    text_cols = [c for c, t in frame.schema.items() if t == pl.String]
    pattern = "^[=+\\-@\t\r]"
    return frame.with_columns(
        pl.when(pl.col(c).str.contains(pattern)).then(pl.lit("'") + pl.col(c)).otherwise(pl.col(c)).alias(c)
        for c in text_cols
    )


def _flatten_nested(frame: pl.DataFrame) -> pl.DataFrame:
    nested = [c for c, t in frame.schema.items() if isinstance(t, (pl.List, pl.Struct, pl.Array, pl.Object))]
    return frame.with_columns(pl.col(c).cast(pl.String, strict=False) for c in nested) if nested else frame


def to_csv_bytes(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    neutralise_formulas(_flatten_nested(frame)).write_csv(buf)
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
