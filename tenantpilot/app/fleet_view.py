"""Fleet's reads: every visible tenant's alignment with its baseline, by the one compare rule
(compare.alignment_scores), memoised per (tenant run, baseline run, the tenant's accepted deviations), and the
fleet table (analysis/fleet.py) with a link that opens Compare for the tenant.

Why a memo: an alignment reads the tenant's and the baseline's setting rows (20,000 each in a big tenant);
1,000 of them cost tens of seconds, but they change only when the tenant or the baseline syncs again or an
accepted deviation comes or goes, which is what the memo's key holds. So the page computes what it has not
seen (the first open after the app starts, a tenant that synced), in batches with a progress bar, and a
rerun reads no setting row. The memo lives in the app process (st.cache_resource): the numbers are the
rule's, never a second copy in SQL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from urllib.parse import urlencode

import polars as pl
import streamlit as st

from tenantpilot.analysis import compare, deviations, fleet

BATCH = 25  # tenants per alignment_scores call: one read of their rows, one pass
MemoKey = tuple[str, int, str, int, tuple[tuple[str, ...], ...]]


class _Memo:
    """alignment rows by MemoKey; entries of runs no longer current are dropped as the page goes."""

    def __init__(self) -> None:
        self.rows: dict[MemoKey, dict[str, object]] = {}
        self.lock = threading.Lock()


@st.cache_resource(max_entries=4, show_spinner=False)
def _memo(db_path: str) -> _Memo:
    return _Memo()


def memo_keys(runs: Mapping[str, int], assigned: Mapping[str, str], accepted: pl.DataFrame) -> dict[str, MemoKey]:
    """tenant_id -> its memo key: its run, its baseline and that one's run, and the accepted deviations
    (deviations.accepted_keys of every baseline concerned: tenant_id, MATCH_KEY, label) that its score leaves out."""
    mine: dict[tuple[str, str], list[tuple[str, ...]]] = {}
    for r in accepted.iter_rows(named=True):
        mine.setdefault((r["tenant_id"], r["baseline_id"]), []).append(
            tuple(str(r[k]) for k in (*compare.MATCH_KEY, "label")))
    return {t: (t, int(runs[t]), b, int(runs[b]), tuple(sorted(mine.get((t, b), []))))
            for t, b in assigned.items() if t in runs and b in runs}


def alignments(db_path: str, keys: Mapping[str, MemoKey], accepted: pl.DataFrame,
               read: Callable[[Sequence[str]], pl.DataFrame],
               progress: Callable[[int, int], None] | None = None) -> pl.DataFrame:
    """compare.alignment_scores of each tenant of `keys` against its baseline: from the memo, else computed
    BATCH tenants at a time (`read`: the current rows of some tenants with compare.READS) and kept."""
    memo = _memo(db_path)
    with memo.lock:
        todo = [t for t, k in keys.items() if k not in memo.rows]
        by_baseline: dict[str, list[str]] = {}
        for t in todo:
            by_baseline.setdefault(keys[t][2], []).append(t)
        done = 0
        for baseline, tenants in by_baseline.items():
            base_rows = read([baseline])
            mine = accepted.filter(pl.col("baseline_id") == baseline) if accepted.height else accepted
            for start in range(0, len(tenants), BATCH):
                batch = tenants[start:start + BATCH]
                scores = compare.alignment_scores(pl.concat([base_rows, read(batch)], how="vertical_relaxed"),
                                                  [baseline, *batch], baseline,
                                                  accepted=mine.filter(pl.col("tenant_id").is_in(batch)))
                for row in scores.iter_rows(named=True):
                    memo.rows[keys[row["tenant_id"]]] = row
                done += len(batch)
                if progress is not None:
                    progress(done, len(todo))
        current = set(keys.values())
        for stale in [k for k in memo.rows if k not in current and k[0] in keys]:
            del memo.rows[stale]  # an older run of a tenant on screen: it will not come back
        rows = [memo.rows[k] for k in keys.values() if k in memo.rows]
    schema = {"tenant_id": pl.String, "tenant": pl.String, **{c: pl.Int64 for c in fleet.SCORE_COLUMNS},
              "score": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


def fleet_table(db_path: str, tenants: pl.DataFrame, members: pl.DataFrame, group_settings: pl.DataFrame,
                register: pl.DataFrame, chosen: str | None, names: Mapping[str, str],
                read: Callable[[Sequence[str]], pl.DataFrame],
                progress: Callable[[int, int], None] | None = None) -> pl.DataFrame:
    """The fleet table (fleet.TABLE_SCHEMA) of `tenants` (those the user may see), each against its baseline."""
    today = date.today()
    assigned = fleet.assign_baselines(tenants, members, group_settings, chosen)
    runs = {t: int(r) for t, r in tenants.select("tenant_id", "current_run_id").drop_nulls().iter_rows()}
    frames = [deviations.accepted_keys(register, today, b).with_columns(pl.lit(b).alias("baseline_id"))
              for b in sorted(set(assigned.values()))]
    accepted = pl.concat(frames) if frames else pl.DataFrame(
        schema={"tenant_id": pl.String, **{k: pl.String for k in compare.MATCH_KEY}, "label": pl.String,
                "baseline_id": pl.String})
    keys = memo_keys(runs, assigned, accepted)
    scores = alignments(db_path, keys, accepted, read, progress)
    as_of = dict(tenants.select("tenant_id", "data_as_of").iter_rows())
    return fleet.table(scores, register, assigned, names, as_of, today)


def read_rows(tenant_ids: Sequence[str]) -> pl.DataFrame:
    """The current rows of these tenants with the columns the compare rule reads."""
    from tenantpilot.app.reads import store

    return store().current_columns_of(list(tenant_ids), list(compare.READS))


def compare_link(tenant_label: str, baseline_label: str) -> str:
    """The Compare page with the tenant and its baseline chosen (the URL names them by their labels, as the
    page's shared filters do)."""
    return "compare?" + urlencode({"cmp_tenants": tenant_label, "cmp_baseline": baseline_label})


def show(table: pl.DataFrame, labels: Mapping[str, str]) -> None:
    """The table, worst first: alignment as a bar, the counts in the baseline vocabulary, and Compare a click away."""
    from tenantpilot.app.escaping import inert_frame

    shown = table.with_columns(
        (pl.col("score") * 100).alias("aligned"),
        pl.struct("tenant_id", "baseline_id").map_elements(
            lambda r: compare_link(labels.get(r["tenant_id"], r["tenant_id"]),
                                   labels.get(r["baseline_id"], r["baseline_id"])),
            return_dtype=pl.String).alias("open"),
    )
    st.dataframe(
        inert_frame(shown.drop("tenant_id", "baseline_id", "score")), hide_index=True, placeholder="—",
        key="fleet_table", height="auto" if shown.height <= 12 else 640,
        column_order=("tenant", "aligned", "open", "baseline", *compare.SCORE_WORDS, "expired", "baseline_settings",
                      "data_as_of"),
        column_config={
            "tenant": st.column_config.TextColumn("Tenant", width="medium", pinned=True),
            "aligned": st.column_config.ProgressColumn("Aligned", format="%.1f %%", min_value=0, max_value=100),
            "open": st.column_config.LinkColumn("Compare", display_text="Open", width="small",
                                                help="Compare this tenant with its baseline"),
            "baseline": st.column_config.TextColumn("Baseline", width="medium"),
            **{c: st.column_config.NumberColumn(w.capitalize(), width="small", help=f"Settings that are “{w}”")
               for c, w in compare.SCORE_WORDS.items()},
            "expired": st.column_config.NumberColumn("Expired", width="small",
                                                     help="Accepted deviations past their date: open again"),
            "baseline_settings": st.column_config.NumberColumn("Baseline settings", width="small"),
            "data_as_of": st.column_config.DatetimeColumn("Data as of", format="YYYY-MM-DD HH:mm"),
        },
    )
