"""Pure Polars run-to-run diff of one tenant's snapshots (what changed since the last sync).

Keyed like compare (MATCH_KEY: policy_type, scope, setting_key), compared on the normalised value, so renaming
or re-creating a policy with the same settings is no drift, and a list whose order changed is
no drift either. The policies columns say where the setting lives before and after.
"""

from __future__ import annotations

import polars as pl

from tenantpilot.compare import MATCH_KEY, cells

ADDED, REMOVED, CHANGED = "added", "removed", "changed"
CHANGES: tuple[str, ...] = (ADDED, REMOVED, CHANGED)

DIFF_COLUMNS: tuple[str, ...] = (
    "change", "policy_type", "scope", "setting_key", "setting_name", "category",
    "old_value", "new_value", "old_policies", "new_policies",
)


def diff_runs(old_frame: pl.DataFrame, new_frame: pl.DataFrame) -> pl.DataFrame:
    """Settings added, removed or changed between two snapshots of the same tenant.

    Both frames are setting rows of one run each (tenant_id may differ, e.g. a tenant against
    a baseline; it is ignored). Columns: DIFF_COLUMNS. Sorted by change, policy_type, category,
    setting_name.
    """
    old = cells(old_frame.with_columns(pl.lit("old").alias("tenant_id"))).drop("tenant_id")
    new = cells(new_frame.with_columns(pl.lit("new").alias("tenant_id"))).drop("tenant_id")
    keys = list(MATCH_KEY)
    joined = old.join(new, on=keys, how="full", coalesce=True, suffix="_new")
    change = (
        pl.when(pl.col("cmp").is_null()).then(pl.lit(ADDED))
        .when(pl.col("cmp_new").is_null()).then(pl.lit(REMOVED))
        .when(pl.col("cmp") != pl.col("cmp_new")).then(pl.lit(CHANGED))
        .otherwise(pl.lit(None, pl.String))
        .alias("change")
    )
    out = joined.with_columns(change).filter(pl.col("change").is_not_null())
    out = out.select(
        "change",
        *keys,
        pl.coalesce("setting_name_new", "setting_name").alias("setting_name"),
        pl.coalesce("category_new", "category").alias("category"),
        pl.col("value").alias("old_value"),
        pl.col("value_new").alias("new_value"),
        pl.col("policies").alias("old_policies"),
        pl.col("policies_new").alias("new_policies"),
    )
    rank = pl.col("change").replace_strict({c: i for i, c in enumerate(CHANGES)}, return_dtype=pl.Int8)
    return out.sort([rank, pl.col("policy_type"), pl.col("category"), pl.col("setting_name"),
                     pl.col("scope"), pl.col("setting_key")],
                    nulls_last=True)


def summary(diff: pl.DataFrame) -> dict[str, int]:
    """Count of each change kind (all kinds present, zero when none)."""
    counts = dict(diff.group_by("change").len().iter_rows()) if diff.height else {}
    return {c: int(counts.get(c, 0)) for c in CHANGES}
