"""Escaping: text from tenants and files made inert on screen (`inert` for Markdown, `inert_frame` for
tables, `inert_json` for st.json, `reveal` for widget options and code blocks)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import polars as pl

from tenantpilot import outbound

# Names, descriptions and values come from tenants' admins and from export files other people wrote.
# Streamlit renders Markdown (links, images, colours, LaTeX) in st.markdown, st.caption, titles,
# subheaders, alerts and widget labels, so such text goes through `inert` there; tables go through
# `inert_frame`, widget options and code blocks through `reveal`. Invisible and bidi control characters
# (U+202E makes "exe.tnemyap" read "payment.exe") are shown as [U+202E] everywhere.

def _invisibles() -> dict[int, str]:
    """The outbound rule's table (tenantpilot/outbound.py): every invisible character -> "[U+XXXX]"."""
    return outbound.invisibles()


@lru_cache(maxsize=1)
def _invisible_class() -> str:
    """The characters of _invisibles() as a regex class for polars (Rust regex syntax)."""
    codes = sorted(c for c in _invisibles() if not 0xD800 <= c <= 0xDFFF)  # no surrogate is in a polars string
    ranges: list[tuple[int, int]] = []
    for code in codes:
        if ranges and code == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return "[" + "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges) + "]"


_MARKDOWN_SPECIAL = {ord(c): "\\" + c for c in "\\`*_{}[]()#+-.!|<>~$:\"'&%=?@^,;/"}


def reveal(text: Any) -> str:
    """Text with invisible and bidi control characters shown as [U+XXXX] (for tables, options, code)."""
    return outbound.block(text)


# Streamlit's Markdown also rewrites *text* (after escapes are resolved): bare URLs, www. names and
# e-mail addresses become links (GFM autolink literals), :shortcodes: become emoji and icons. An
# invisible WORD JOINER after every ":", before every "@" and after a "www" breaks those patterns
# without changing what is read (a pasted URL is defanged as well).
_JOINER = "\u2060"
_AUTOLINKS = re.compile(r"(?<=\\:)|(?=\\@)|(?<=[wW]{3})(?=\\\.)")  # on the escaped text: \: \@ www\.


def inert(text: Any) -> str:
    """Text that renders as itself in any Streamlit Markdown: controls revealed, every ASCII
    punctuation character backslash-escaped (no link, image, HTML, colour, heading or formula), and
    URLs, e-mail addresses and :shortcodes: kept from turning into links or emoji."""
    return _AUTOLINKS.sub(_JOINER, reveal(text).translate(_MARKDOWN_SPECIAL))


def inert_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """A frame for st.dataframe: control characters revealed in its text cells and column names
    (tables do not render Markdown; they do render bidi controls)."""
    pattern = _invisible_class()
    fixes = [pl.col(c).map_elements(reveal, return_dtype=pl.String) for c, t in frame.schema.items()
             if t == pl.String and frame.height and frame[c].str.contains(pattern).any()]
    if fixes:
        frame = frame.with_columns(fixes)
    names = {c: reveal(c) for c in frame.columns if reveal(c) != c}
    return frame.rename(names) if names else frame


def inert_json(value: Any) -> Any:
    """A JSON document for st.json with control characters revealed in keys and strings."""
    if isinstance(value, dict):
        return {reveal(k): inert_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [inert_json(v) for v in value]
    return reveal(value) if isinstance(value, str) else value
