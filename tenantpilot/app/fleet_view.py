"""Fleet's reads and table: every visible tenant's alignment with its baseline, from the alignment memo
(tenantpilot/ops/alignments.py: compare.alignment_scores, the one compare rule, kept per tenant run, baseline run
and accepted deviations; the worker computes a tenant's after each sync), and the fleet table (analysis/fleet.py)
with a link that opens Compare for the tenant. What the memo lacks (a baseline that synced again, a deviation
accepted or expired, a file from before the memo) is computed on the page with a progress bar, and kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlencode

import polars as pl
import streamlit as st

from tenantpilot.analysis import compare, fleet
from tenantpilot.ops import alignments
from tenantpilot.store import Store

CHANGE_DAYS = 7  # the table's change column: against the alignment this many days ago


def fleet_table(store: Store, tenants: pl.DataFrame, members: pl.DataFrame, group_settings: pl.DataFrame,
                register: pl.DataFrame, chosen: str | None, names: Mapping[str, str],
                progress: Callable[[int, int], None] | None = None) -> pl.DataFrame:
    """The fleet table (fleet.TABLE_SCHEMA) of `tenants` (those the user may see), each against its baseline."""
    today = date.today()
    assigned = fleet.assign_baselines(tenants, members, group_settings, chosen)
    runs = {t: int(r) for t, r in tenants.select("tenant_id", "current_run_id").drop_nulls().iter_rows()}
    accepted = alignments.accepted_of(register, list(assigned.values()), today)
    scores = alignments.current(store, alignments.wanted(runs, assigned, accepted), accepted, progress)
    as_of = dict(tenants.select("tenant_id", "data_as_of").iter_rows())
    week_ago = store.alignment_as_of(datetime.now(timezone.utc) - timedelta(days=CHANGE_DAYS))
    return fleet.table(scores, register, assigned, names, as_of, today, week_ago)


def compare_link(tenant_label: str, baseline_label: str) -> str:
    """The Compare page with the tenant and its baseline chosen (the URL names them by their labels, as the
    page's shared filters do)."""
    return "compare?" + urlencode({"cmp_tenants": tenant_label, "cmp_baseline": baseline_label})


def show(table: pl.DataFrame, labels: Mapping[str, str]) -> None:
    """The table, worst first: alignment as a bar, the counts in the baseline vocabulary, and Compare a click away."""
    from tenantpilot.app.escaping import inert_frame

    shown = table.with_columns(
        (pl.col("score") * 100).alias("aligned"),
        (pl.col("change") * 100).alias("change"),
        pl.struct("tenant_id", "baseline_id").map_elements(
            lambda r: compare_link(labels.get(r["tenant_id"], r["tenant_id"]),
                                   labels.get(r["baseline_id"], r["baseline_id"])),
            return_dtype=pl.String).alias("open"),
    )
    st.dataframe(
        inert_frame(shown.drop("tenant_id", "baseline_id", "score")), hide_index=True, placeholder="—",
        key="fleet_table", height="auto" if shown.height <= 12 else 640,
        column_order=("tenant", "aligned", "change", "open", *compare.SCORE_WORDS, "expired", "baseline", "baseline_settings",
                      "data_as_of"),
        column_config={
            "tenant": st.column_config.TextColumn("Tenant", width=175),
            "aligned": st.column_config.ProgressColumn("Aligned", format="%.1f %%", min_value=0, max_value=100,
                                                       width=130),
            "change": st.column_config.NumberColumn(f"{CHANGE_DAYS} days", format="%+.1f", width=70,
                                                    help=f"Points gained (+) or lost since {CHANGE_DAYS} days ago "
                                                         "(blank: not known then)"),
            "open": st.column_config.LinkColumn("Compare", display_text="Open", width=65,
                                                help="Compare this tenant with its baseline"),
            **{c: st.column_config.NumberColumn(w.capitalize(), width=120 if w in compare.OPEN else 80,
                                                help=f"Settings that are “{w}”") for c, w in compare.SCORE_WORDS.items()},
            "expired": st.column_config.NumberColumn("Expired", width=70,
                                                     help="Accepted deviations past their date: open again"),
            "baseline": st.column_config.TextColumn("Baseline", width="medium"),
            "baseline_settings": st.column_config.NumberColumn("Baseline settings"),
            "data_as_of": st.column_config.DatetimeColumn("Data as of", format="YYYY-MM-DD HH:mm"),
        },
    )
