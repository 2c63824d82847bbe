"""Who changed it: attach Intune's audit events (actor, activity, time) to the policy changes a sync found.

Pure (no I/O): frames in, a frame out. The events come from Store.audit_events (read from Graph by
graph/audit.py); the changes from whoever lists them (Changes page, `changes --since`, alerts).
"""

from __future__ import annotations

import polars as pl

CHANGE_COLUMNS = ("tenant_id", "policy_id", "window_start", "window_end")
ADDED = ("changed_by", "activity", "changed_at")
_ROW = "__change_row"


def _utc(frame: pl.DataFrame, column: str) -> pl.Expr:
    """A datetime column as UTC-aware microseconds (naive values are taken as UTC)."""
    dtype = frame.schema[column]
    expr = pl.col(column)
    if dtype == pl.Null:
        return pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias(column)
    if not isinstance(dtype, pl.Datetime):
        raise TypeError(f"{column} must be a datetime column, not {dtype}")
    expr = expr.dt.cast_time_unit("us")
    expr = expr.dt.replace_time_zone("UTC") if dtype.time_zone is None else expr.dt.convert_time_zone("UTC")
    return expr.alias(column)


def actor_of(events: pl.DataFrame) -> pl.Expr:
    """Who an event names: the user's UPN, else the application's display name, else the actor type."""
    cols = [c for c in ("actor_upn", "actor_app", "actor_type") if c in events.columns]
    return pl.coalesce([pl.col(c) for c in cols]) if cols else pl.lit(None, dtype=pl.String)


def attach_actors(changes: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """`changes` with who/what/when from the audit events, one output row per input row, in order.

    `changes` needs `tenant_id`, `policy_id`, `window_start` and `window_end`: the span in which the
    sync saw the change (from the previous run's finish to this run's finish; `window_start` null:
    no lower bound). Any other columns are kept as they are.
    `events` is Store.audit_events(): `tenant_id`, `activity_time`, `actor_upn`, `actor_app`,
    `actor_type`, `activity`, `resource_ids` (list of the ids of the resources the event touched).

    Added columns, from the LATEST event of the same tenant whose resources include the policy and
    with window_start < activity_time <= window_end (reads, `operation_type` "Get", are not changes
    and never match, as IntuneCD filters them out):
    * `changed_by`: the actor's userPrincipalName, else its application display name, else its type;
    * `activity`: Intune's name of what was done (e.g. "Patch DeviceConfiguration");
    * `changed_at`: the event's activityDateTime (UTC).
    All three are null when Intune recorded no such event (or the audit events could not be read):
    nothing is guessed. Existing columns of these names are replaced.
    """
    missing = [c for c in CHANGE_COLUMNS if c not in changes.columns]
    if missing:
        raise ValueError(f"changes lack the column(s) {', '.join(missing)} (needs {', '.join(CHANGE_COLUMNS)})")
    base = changes.drop([c for c in ADDED if c in changes.columns]).with_row_index(_ROW)
    if not base.height:
        return base.drop(_ROW).with_columns(pl.lit(None, dtype=pl.String).alias("changed_by"),
                                            pl.lit(None, dtype=pl.String).alias("activity"),
                                            pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("changed_at"))
    keys = base.select(_ROW, pl.col("tenant_id").cast(pl.String), pl.col("policy_id").cast(pl.String),
                       _utc(base, "window_start"), _utc(base, "window_end"))
    if events.height:
        if "operation_type" in events.columns:
            events = events.filter(pl.col("operation_type").is_null()
                                   | (pl.col("operation_type").str.to_lowercase() != "get"))
        hits = (events.select(pl.col("tenant_id").cast(pl.String), _utc(events, "activity_time"),
                              actor_of(events).alias("changed_by"), pl.col("activity").cast(pl.String),
                              pl.col("resource_ids"))
                .explode("resource_ids").rename({"resource_ids": "policy_id"})
                .filter(pl.col("policy_id").is_not_null() & pl.col("activity_time").is_not_null())
                .unique())
        matched = (keys.join(hits, on=["tenant_id", "policy_id"], how="inner")
                   .filter((pl.col("window_start").is_null() | (pl.col("activity_time") > pl.col("window_start")))
                           & (pl.col("activity_time") <= pl.col("window_end")))
                   .sort([_ROW, "activity_time"])
                   .group_by(_ROW, maintain_order=True).last()
                   .select(_ROW, "changed_by", "activity", pl.col("activity_time").alias("changed_at")))
    else:
        matched = pl.DataFrame(schema={_ROW: pl.UInt32, "changed_by": pl.String, "activity": pl.String,
                                       "changed_at": pl.Datetime("us", "UTC")})
    return base.join(matched, on=_ROW, how="left").sort(_ROW).drop(_ROW)
