"""Who changed it: attach Intune's audit events (actor, activity, time) to the policy changes a sync found.

Pure (no I/O): frames in, a frame out. The events come from Store.audit_events (read from Graph by
graph/audit.py); the changes from whoever lists them (Changes page, `changes --since`, alerts).
"""

from __future__ import annotations

import json

import polars as pl

CHANGE_COLUMNS = ("tenant_id", "policy_id", "window_start", "window_end")
ADDED = ("changed_by", "activity", "changed_at", "attribution")
SETTING = "setting"  # an event of the window names the changed setting among its modified properties
POLICY = "policy"  # the events name the policy only: every actor who touched it in the window
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


def setting_names(setting_key: str | None) -> list[str]:
    """The names an audit event may give a setting (lower case): its key, its first segment (a
    settings-catalog definition id, a property) and its last (a nested property)."""
    if not setting_key:
        return []
    parts = [p for p in setting_key.split("/") if p]
    return sorted({setting_key.lower(), *(p.lower() for p in parts[:1] + parts[-1:])})


def _event_hits(events: pl.DataFrame) -> pl.DataFrame:
    """One row per (event, policy it touched): tenant_id, policy_id, activity_time, changed_by, activity,
    properties (lower-case names of the properties it says it modified). Reads ("Get") are not changes."""
    if "operation_type" in events.columns:
        events = events.filter(pl.col("operation_type").is_null() | (pl.col("operation_type").str.to_lowercase() != "get"))
    rows = []
    for e in events.select(pl.col("tenant_id").cast(pl.String), _utc(events, "activity_time"),
                           actor_of(events).alias("changed_by"), pl.col("activity").cast(pl.String),
                           "resource_ids", *(["resources"] if "resources" in events.columns else [])
                           ).iter_rows(named=True):
        named: dict[str, list[str]] = {}
        for r in json.loads(e.get("resources") or "[]"):
            if isinstance(r, dict) and r.get("resourceId"):
                named[str(r["resourceId"])] = [str(n).lower() for n in r.get("properties") or ()]
        for policy_id in e["resource_ids"] or ():
            if policy_id is not None and e["activity_time"] is not None:
                rows.append({"tenant_id": e["tenant_id"], "policy_id": policy_id, "activity_time": e["activity_time"],
                             "changed_by": e["changed_by"], "activity": e["activity"],
                             "properties": named.get(policy_id, [])})
    return pl.DataFrame(rows, schema={"tenant_id": pl.String, "policy_id": pl.String,
                                      "activity_time": pl.Datetime("us", "UTC"), "changed_by": pl.String,
                                      "activity": pl.String, "properties": pl.List(pl.String)}).unique()


def attach_actors(changes: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """`changes` with who/what/when from the audit events, one output row per input row, in order.

    `changes` needs `tenant_id`, `policy_id`, `window_start` and `window_end`: the span in which the
    sync saw the change (from the previous run's finish to this run's finish; `window_start` null:
    no lower bound); with a `setting_key` column the rows are setting changes. Any other columns are
    kept as they are. `events` is Store.audit_events(): `tenant_id`, `activity_time`, `actor_upn`,
    `actor_app`, `actor_type`, `activity`, `resource_ids`, and `resources` (JSON, with the names of
    the properties each resource's event modified).

    The events that count are those of the same tenant whose resources include the policy, with
    window_start < activity_time <= window_end; reads (`operation_type` "Get") never count, as
    IntuneCD filters them out. Added columns:
    * `attribution`: "setting" when one of these events names the row's setting among its modified
      properties (then `changed_by`, `activity`, `changed_at` are the latest such event's); "policy"
      otherwise: Intune named the policy only, so `changed_by` lists every actor who touched the
      policy in the window (latest last), `activity` and `changed_at` are the latest event's;
    * `changed_by`: an actor is the user's userPrincipalName, else the application's display name, else
      its type.
    All four are null when Intune recorded no such event (or the audit events could not be read):
    nothing is guessed. Existing columns of these names are replaced.
    """
    missing = [c for c in CHANGE_COLUMNS if c not in changes.columns]
    if missing:
        raise ValueError(f"changes lack the column(s) {', '.join(missing)} (needs {', '.join(CHANGE_COLUMNS)})")
    base = changes.drop([c for c in ADDED if c in changes.columns]).with_row_index(_ROW)
    empty: dict[str, pl.DataType] = {_ROW: pl.UInt32(), "changed_by": pl.String(), "activity": pl.String(),
                                      "changed_at": pl.Datetime("us", "UTC"), "attribution": pl.String()}
    if not base.height or not events.height:
        return base.join(pl.DataFrame(schema=empty), on=_ROW, how="left").drop(_ROW)
    has_setting = "setting_key" in base.columns
    keys = base.select(_ROW, pl.col("tenant_id").cast(pl.String), pl.col("policy_id").cast(pl.String),
                       _utc(base, "window_start"), _utc(base, "window_end"),
                       (pl.col("setting_key").cast(pl.String).map_elements(setting_names, return_dtype=pl.List(pl.String))
                        if has_setting else pl.lit([], dtype=pl.List(pl.String))).alias("names"))
    window = (keys.join(_event_hits(events), on=["tenant_id", "policy_id"], how="inner")
              .filter((pl.col("window_start").is_null() | (pl.col("activity_time") > pl.col("window_start")))
                      & (pl.col("activity_time") <= pl.col("window_end")))
              .sort([_ROW, "activity_time"]))
    named = (window.filter(pl.col("properties").list.set_intersection(pl.col("names")).list.len() > 0)
             .group_by(_ROW, maintain_order=True).last()
             .select(_ROW, "changed_by", "activity", pl.col("activity_time").alias("changed_at"),
                     pl.lit(SETTING).alias("attribution")))
    by_policy = (window.join(named.select(_ROW), on=_ROW, how="anti")
                 .group_by(_ROW, maintain_order=True)
                 .agg(pl.col("changed_by").drop_nulls().reverse().unique(maintain_order=True).reverse().str.join(", "),
                      pl.col("activity").last(), pl.col("activity_time").last().alias("changed_at"))
                 .with_columns(pl.col("changed_by").replace("", None), pl.lit(POLICY).alias("attribution")))
    matched = pl.concat([named, by_policy.select(named.columns)]).cast(pl.Schema(empty))
    return base.join(matched, on=_ROW, how="left").sort(_ROW).drop(_ROW)
