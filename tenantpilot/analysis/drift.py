"""Pure Polars run-to-run diff of one tenant's snapshots (what changed since the last sync).

Two levels, as a consultant reads them (`changes`):
* policy events: a policy added, deleted or renamed is one line, with its count of configured
  settings; policies are matched by Graph's id (`policy_id`).
* setting changes: keyed like compare (MATCH_KEY: policy_type, scope, setting_key), compared on the
  normalised value of configured rows ("Not configured" is no value, flatten/configured.py), among the
  policies that exist in both snapshots, so a deleted policy is "policy deleted", not its settings
  one by one as "removed". Renaming a policy or reordering a list changes no setting.
`diff_runs` is the setting diff over every policy (no events).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from tenantpilot.analysis.compare import MATCH_KEY, cells, configured_rows
from tenantpilot.flatten.schema import NO_SETTINGS

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


POLICY_ADDED, POLICY_DELETED, POLICY_RENAMED = "policy added", "policy deleted", "policy renamed"
EVENTS: tuple[str, ...] = (POLICY_ADDED, POLICY_DELETED, POLICY_RENAMED)
EVENT_COLUMNS: tuple[str, ...] = ("event", "policy_type", "policy_id", "old_name", "new_name", "settings")


def _policies(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per policy of a snapshot: policy_id, policy_type, policy_name, settings (configured ones)."""
    if frame.height == 0:
        return pl.DataFrame(schema={"policy_id": pl.String, "policy_type": pl.String, "policy_name": pl.String,
                                    "settings": pl.UInt32})
    counted = configured_rows(frame).filter(pl.col("setting_key") != NO_SETTINGS)
    counts = counted.group_by("policy_id").agg(pl.len().cast(pl.UInt32).alias("settings"))
    names = frame.group_by("policy_id").agg(pl.col("policy_type").first(), pl.col("policy_name").first())
    return names.join(counts, on="policy_id", how="left").with_columns(pl.col("settings").fill_null(0))


def policy_events(old_frame: pl.DataFrame, new_frame: pl.DataFrame) -> pl.DataFrame:
    """Policies added, deleted or renamed between two snapshots (EVENT_COLUMNS; `settings` counts the
    configured settings of the policy in the snapshot that has it, the newer one for a rename)."""
    return events_between(_policies(old_frame), _policies(new_frame))


def events_between(old: pl.DataFrame, new: pl.DataFrame, by: tuple[str, ...] = ()) -> pl.DataFrame:
    """The policy events between two policy lists (columns policy_id, policy_type, policy_name,
    settings, and `by`: e.g. tenant_id, to compare many tenants' lists at once). EVENT_COLUMNS after `by`,
    sorted by `by`, then event, type, name."""
    keys = [*by, "policy_id"]
    cols = [*keys, "policy_type", "policy_name", "settings"]
    joined = old.select(cols).join(new.select(cols), on=keys, how="full", coalesce=True, suffix="_new")
    event = (
        pl.when(pl.col("policy_name").is_null() & pl.col("policy_type").is_null()).then(pl.lit(POLICY_ADDED))
        .when(pl.col("policy_type_new").is_null()).then(pl.lit(POLICY_DELETED))
        .when(pl.col("policy_name") != pl.col("policy_name_new")).then(pl.lit(POLICY_RENAMED))
        .otherwise(pl.lit(None, pl.String)).alias("event")
    )
    out = joined.with_columns(event).filter(pl.col("event").is_not_null()).select(
        *by, "event", pl.coalesce("policy_type_new", "policy_type").alias("policy_type"), "policy_id",
        pl.col("policy_name").alias("old_name"), pl.col("policy_name_new").alias("new_name"),
        pl.coalesce("settings_new", "settings").alias("settings"),
    )
    rank = pl.col("event").replace_strict({e: i for i, e in enumerate(EVENTS)}, return_dtype=pl.Int8)
    return out.sort([*by, rank, "policy_type", pl.coalesce("new_name", "old_name"), "policy_id"], nulls_last=True)


@dataclass(frozen=True)
class Changes:
    events: pl.DataFrame  # EVENT_COLUMNS
    settings: pl.DataFrame  # DIFF_COLUMNS, among the policies in both snapshots


def changes(old_frame: pl.DataFrame, new_frame: pl.DataFrame) -> Changes:
    """Policy events, then the setting changes inside the policies both snapshots have."""
    events = policy_events(old_frame, new_frame)
    both = set(old_frame["policy_id"].unique().to_list()) & set(new_frame["policy_id"].unique().to_list()) \
        if old_frame.height and new_frame.height else set()
    keep = pl.col("policy_id").is_in(list(both))
    return Changes(events, diff_runs(old_frame.filter(keep), new_frame.filter(keep)))


def event_summary(events: pl.DataFrame) -> dict[str, int]:
    counts = dict(events.group_by("event").len().iter_rows()) if events.height else {}
    return {e: int(counts.get(e, 0)) for e in EVENTS}
