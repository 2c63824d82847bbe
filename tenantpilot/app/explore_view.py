"""Explore's reads and views: the current settings matching the page's filters, counted, listed as
choices and read page by page in the database (only what is shown comes back), and the Assignments
tab's rows (who a policy applies to) with readable targets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from tenantpilot.app.messages import guard
from tenantpilot.app.reads import SnapshotKey, cached
from tenantpilot.app.widgets import MAX_POLICY_OPTIONS, PAGE_SIZE
from tenantpilot.store import open_store


# --- current settings, read in the database: only what a page shows comes back --------------------
@cached("count the matching settings", max_entries=64)
def settings_counts(key: SnapshotKey, filters: Any) -> list[tuple[str, int]]:
    """Matching rows per tenant: the total, and where each page starts, without reading the rows."""
    return open_store().settings_tenant_counts(filters)


def settings_count(key: SnapshotKey, filters: Any) -> int:
    return sum(n for _, n in settings_counts(key, filters))


@cached("list the filter choices", max_entries=32)
def _settings_facets(key: SnapshotKey, filters: Any, columns: tuple[str, ...]) -> dict[str, list[str]]:
    return open_store().settings_facets(filters, columns, limit=MAX_POLICY_OPTIONS)


def settings_facets(key: SnapshotKey, filters: Any, *columns: str) -> dict[str, list[str]]:
    return _settings_facets(key, filters, tuple(columns))


@cached("read the matching settings", max_entries=32)
def settings_page(key: SnapshotKey, filters: Any, number: int, page_size: int = PAGE_SIZE) -> pl.DataFrame:
    return open_store().settings_page(filters, offset=(number - 1) * page_size, limit=page_size,
                                      counts=settings_counts(key, filters))


def settings_matching(key: SnapshotKey, filters: Any) -> pl.DataFrame:
    """Every current row matching the filters: exports, detail views."""
    with guard("read the matching settings"):
        return open_store().settings_matching(filters)


def matching_csv(key: SnapshotKey, filters: Any) -> bytes:
    """The CSV download: every matching row, in the export's columns (built when clicked)."""
    from tenantpilot.analysis import explore, export

    return export.to_csv_bytes(explore.export_columns(settings_matching(key, filters)))


def matching_parquet(key: SnapshotKey, filters: Any) -> bytes:
    """The Parquet download: every matching row, in the export's columns (built when clicked)."""
    from tenantpilot.analysis import explore, export

    return export.to_parquet_bytes(explore.export_columns(settings_matching(key, filters)))


# --- the settings table's layout (tables.column_order): which tenant, which setting, its value, which policy
TABLE_FIRST: tuple[str, ...] = ("tenant", "setting_name", "value", "policy_name")
TABLE_MORE: tuple[str, ...] = ("category", "platform", "policy_type", "data_from")
TABLE_TECHNICAL: tuple[str, ...] = ("raw_value", "setting_id", "setting_key", "value_type")


# --- assignments (who a policy applies to), next to the settings --------------------------------
TARGET_LABELS: dict[str, str] = {
    "allDevices": "All devices",
    "allLicensedUsers": "All users",
    "group": "Group",
    "configurationManagerCollection": "Configuration Manager collection",
}
# what the Assignments table and its CSV show, in this order
ASSIGNMENT_COLUMNS: tuple[str, ...] = (
    "tenant", "policy_name", "policy_type", "platform", "intent", "target", "group", "filter", "filter_type",
    "target_type", "group_name", "group_id", "filter_name", "filter_id", "tenant_id", "policy_id", "run_id",
)
ASSIGNMENT_TABLE_COLUMNS: tuple[str, ...] = ASSIGNMENT_COLUMNS[:9]
ASSIGNMENT_SEARCH_COLUMNS: tuple[str, ...] = ("tenant", "policy_name", "target", "group_name", "group_id", "filter")
ASSIGNMENT_COLUMN_CONFIG: dict[str, Any] = {
    "tenant": "Tenant", "policy_name": "Policy", "policy_type": "Policy type", "platform": "Platform",
    "intent": "Include / exclude", "target": "Target", "group": "Group (name or id)", "filter": "Filter (name or id)",
    "filter_type": "Filter type",
}


def assignment_view(frame: pl.DataFrame) -> pl.DataFrame:
    """Assignment rows (Store.current_assignments + platform) with readable `target` ("All devices",
    "All users", "Group") and `group` (the group's name where the export has it, else its id),
    in ASSIGNMENT_COLUMNS order, sorted by tenant, policy, intent, target, group."""
    platform = pl.col("platform") if "platform" in frame.columns else pl.lit("")
    out = frame.with_columns(
        platform.fill_null("").alias("platform"),
        pl.col("target_type").replace_strict(TARGET_LABELS, default=pl.col("target_type"), return_dtype=pl.String)
        .alias("target"),
        pl.when(pl.col("group_name").fill_null("") != "").then(pl.col("group_name"))
        .otherwise(pl.col("group_id").fill_null("")).alias("group"),
        (pl.when(pl.col("filter_name").fill_null("") != "").then(pl.col("filter_name"))
         .otherwise(pl.col("filter_id").fill_null("")) if "filter_name" in frame.columns
         else pl.col("filter_id").fill_null("")).alias("filter"),
    )
    out = out.select([c for c in ASSIGNMENT_COLUMNS if c in out.columns])
    return out.sort(pl.col("tenant"), pl.col("policy_name"), pl.col("intent") == "exclude", pl.col("target"),
                    pl.col("group"), nulls_last=True)


ASSIGNMENTS_ALL_TENANTS = 50  # above this many tenants, the Assignments tab asks which tenants to list


@cached("read the assignments", max_entries=4, frames=True, spinner="Loading the assignments…")
def _assignments(key: SnapshotKey, tenant_ids: tuple[str, ...] | None) -> pl.DataFrame:
    """The current assignments of these tenants (all: None) with the policy's platform."""
    store = open_store()
    ids = list(tenant_ids) if tenant_ids is not None else None
    assignments = store.current_assignments(ids)
    platforms = store.current_policies(ids).select("run_id", "policy_id", "platform").unique(["run_id", "policy_id"])
    return assignment_view(assignments.join(platforms, on=["run_id", "policy_id"], how="left"))


def load_assignments(key: SnapshotKey, tenant_ids: Sequence[str] | None = None) -> pl.DataFrame:
    """Current assignments of the given tenants (all when None): cost grows with what is shown."""
    return _assignments(key, tuple(sorted(set(tenant_ids))) if tenant_ids is not None else None)
