"""The fleet: which baseline each tenant is measured against, and the fleet table (every tenant's alignment
with it, worst first, with its accepted and expired deviations). Pure: frames in, frames out.

The alignment itself is never computed here: it is compare.alignment_scores (the one compare rule), run by
the caller per tenant and baseline (tenantpilot/app/fleet_view.py memoises it per tenant run).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import polars as pl

from tenantpilot.analysis import deviations

SCORE_COLUMNS = ("baseline_settings", "matched", "differing", "missing", "extra", "accepted", "score")
TABLE_SCHEMA: dict[str, pl.DataType] = {
    "tenant_id": pl.String(), "tenant": pl.String(), "baseline_id": pl.String(), "baseline": pl.String(),
    "score": pl.Float64(), "change": pl.Float64(), "matched": pl.Int64(), "baseline_settings": pl.Int64(), "differing": pl.Int64(),
    "missing": pl.Int64(), "extra": pl.Int64(), "accepted": pl.Int64(), "expired": pl.Int64(),
    "data_as_of": pl.Datetime(time_zone="UTC"),
}


def assign_baselines(tenants: pl.DataFrame, members: pl.DataFrame, group_settings: pl.DataFrame,
                     chosen: str | None = None) -> dict[str, str]:
    """tenant_id -> the baseline it is measured against, for every synced tenant that is not a baseline itself.

    `tenants` (Store.tenants: tenant_id, display_name, kind, current_run_id), `members` (group_name, tenant_id),
    `group_settings` (group_name, baseline_id). With `chosen`, every tenant gets it. Else a tenant's groups'
    baseline (the first by group name that has current data), else the first imported baseline (kind
    'baseline', by display name); a tenant with neither is left out."""
    synced = tenants.filter(pl.col("current_run_id").is_not_null())
    have = set(synced["tenant_id"].to_list())
    scored = synced.filter(pl.col("kind") != "baseline")["tenant_id"].to_list()
    if chosen is not None:
        return {t: chosen for t in scored if t != chosen} if chosen in have else {}
    imported = synced.filter(pl.col("kind") == "baseline").sort("display_name", "tenant_id")["tenant_id"].to_list()
    fallback = imported[0] if imported else None
    carried = (members.join(group_settings.select("group_name", "baseline_id"), on="group_name", how="inner")
               .filter(pl.col("baseline_id").is_not_null() & pl.col("baseline_id").is_in(list(have)))
               .sort("group_name").unique("tenant_id", keep="first", maintain_order=True))
    by_group = dict(carried.select("tenant_id", "baseline_id").iter_rows())
    out: dict[str, str] = {}
    for t in scored:
        b = by_group.get(t, fallback)
        if b is not None and b != t:
            out[t] = b
    return out


def table(scores: pl.DataFrame, register: pl.DataFrame, assigned: Mapping[str, str], names: Mapping[str, str],
          as_of: Mapping[str, object], today: date, before: pl.DataFrame | None = None) -> pl.DataFrame:
    """The fleet table (TABLE_SCHEMA), worst alignment first (no score, i.e. an empty baseline, last).

    `scores`: compare.alignment_scores rows (tenant_id + SCORE_COLUMNS) of the tenants against their assigned
    baseline; `register` (Store.deviations): `expired` counts each tenant's deviations from that baseline whose
    date has passed (not removed), open again; `accepted` is the score's own count (valid ones it left out).
    `before` (tenant_id, baseline_id, score: the alignment a week ago, Store.alignment_as_of): `change` is the
    score now less that one (null where it is not known)."""
    pairs = pl.DataFrame({"tenant_id": list(assigned), "baseline_id": list(assigned.values())},
                         schema={"tenant_id": pl.String, "baseline_id": pl.String})
    gone = deviations.expired(register, today).join(pairs, on=["tenant_id", "baseline_id"], how="semi")
    expired = dict(gone.group_by("tenant_id").len().iter_rows()) if gone.height else {}
    out = pairs.join(scores.select("tenant_id", *SCORE_COLUMNS), on="tenant_id", how="inner").with_columns(
        pl.col("tenant_id").replace_strict(dict(names), default=pl.col("tenant_id"), return_dtype=pl.String)
        .alias("tenant"),
        pl.col("baseline_id").replace_strict(dict(names), default=pl.col("baseline_id"), return_dtype=pl.String)
        .alias("baseline"),
        pl.col("tenant_id").replace_strict(expired, default=0, return_dtype=pl.Int64).alias("expired"),
        pl.col("tenant_id").replace_strict(dict(as_of), default=None, return_dtype=pl.Datetime(time_zone="UTC"))
        .alias("data_as_of"),
    )
    if before is not None and before.height:
        out = out.join(before.select("tenant_id", "baseline_id", pl.col("score").alias("_before")),
                       on=["tenant_id", "baseline_id"], how="left")
        out = out.with_columns((pl.col("score") - pl.col("_before")).alias("change"))
    else:
        out = out.with_columns(pl.lit(None, pl.Float64).alias("change"))
    return out.select(*(pl.col(c).cast(t) for c, t in TABLE_SCHEMA.items())).sort(
        ["score", "missing", "tenant"], descending=[False, True, False], nulls_last=True)
