"""Table layout: which columns of a primary table a person reads first, which are technical (Graph
types, ids, keys, raw values: hidden until "Show technical columns" is on), and that one toggle.

A page lists its table's columns in three groups: `first` (what decides, in reading order: these fit
1440 px), `more` (context, after them) and `technical`. `column_order` keeps only the columns the
frame has, so a page may name a column that appears only sometimes (e.g. who changed it)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import streamlit as st

TECHNICAL_LABEL = "Show technical columns"
TECHNICAL_HELP = "Graph types, ids, keys and raw values. The table's eye icon hides or shows any single column."


def column_order(columns: Collection[str], first: Sequence[str], more: Sequence[str] = (),
                 technical: Sequence[str] = (), *, show_technical: bool = False) -> tuple[str, ...]:
    """The table's column order: `first`, then `more`, then (when shown) `technical`, each only when the
    frame has it; a column the frame has but no group names is left out (hidden)."""
    wanted = [*first, *more, *(technical if show_technical else ())]
    return tuple(c for c in dict.fromkeys(wanted) if c in columns)


def technical_toggle(key: str, where: Any = None) -> bool:
    """The "Show technical columns" toggle of one table (its state under `key`)."""
    return bool((where or st).toggle(TECHNICAL_LABEL, key=key, help=TECHNICAL_HELP))
