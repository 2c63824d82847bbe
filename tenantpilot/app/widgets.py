"""Widgets shared by pages: filters that live in the URL (`SHARED`), the table pager (`paginate`,
`pager`, `Page`) and the Policy filter (`policy_filter`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypedDict

import polars as pl
import streamlit as st

from tenantpilot.app.escaping import reveal


class Shared(TypedDict):
    bind: Literal["query-params"]
    persist_state: Literal["page", "session"]


# filters that survive page switches and live in the URL (shareable links: /compare?cmp_tenants=...)
SHARED: Shared = {"bind": "query-params", "persist_state": "session"}
MAX_POLICY_OPTIONS = 2_000  # above this many names the Policy filter asks to narrow first
PAGE_SIZE = 1_000  # rows sent to the browser at most, per table page


@dataclass(frozen=True)
class Page:
    rows: pl.DataFrame  # the slice to show
    number: int  # 1-based page number
    first: int  # 1-based index of the first row shown (0 when there is none)
    info: Any  # the column left of the pager, for the "Showing …" line

    def showing(self, total: int, noun: str) -> str:
        return f"Showing **{self.first:,}–{self.first + self.rows.height - 1:,}** of **{total:,}** {noun}"


def paginate(frame: pl.DataFrame, key: str, page_size: int = PAGE_SIZE) -> Page:
    """An info line with a pager beside it (shown only when there is more than one page)."""
    from tenantpilot.analysis import explore

    info, pager = st.columns([3, 2], vertical_alignment="center")
    number = 1
    pages = explore.page_count(frame.height, page_size)
    if pages > 1:
        with pager:
            number = st.pagination(pages, key=key, max_visible_pages=5)
    first = (number - 1) * page_size + 1 if frame.height else 0
    return Page(explore.page_slice(frame, number, page_size), number, first, info)


def pager(total: int, key: str, page_size: int = PAGE_SIZE) -> tuple[int, int, Any]:
    """(page number, first row index 1-based, info column) for `total` rows, with the pager beside the
    info column (shown only when there is more than one page). The rows are fetched by the caller."""
    from tenantpilot.analysis import explore

    info, box = st.columns([3, 2], vertical_alignment="center")
    number = 1
    pages = explore.page_count(total, page_size)
    if pages > 1:
        with box:
            number = st.pagination(pages, key=key, max_visible_pages=5)
    return number, ((number - 1) * page_size + 1 if total else 0), info



def policy_filter(where: Any, options: list[str], key: str) -> list[str]:
    """The Policy multiselect, or a disabled hint when there are too many names to list usefully."""
    if len(options) > MAX_POLICY_OPTIONS:
        st.session_state.pop(key, None)
        where.multiselect("Policy", [], placeholder=f"{len(options):,} policies: pick tenants or a type first",
                          disabled=True, key=key)
        return []
    kept = [p for p in st.session_state.get(key, []) if p in set(options)]
    if kept != st.session_state.get(key, []):
        st.session_state[key] = kept  # drop choices the other filters no longer offer
    return where.multiselect("Policy", options, placeholder="All policies", key=key, format_func=reveal)

