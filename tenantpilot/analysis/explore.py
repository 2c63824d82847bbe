"""Explore's and export's shaping of rows already read: facet values, labels, export columns, detail,
paging arithmetic, and the case-insensitive search over frames that are not settings (changes,
assignments).

The filters of current settings (Filters: facets, search) run in the database, in one place:
tenantpilot/store/current.py (it scales to 1,000 tenants; only a page comes back). Filters,
FACET_COLUMNS and SEARCH_COLUMNS are re-exported here for the pages. Input frames have the columns of
`Store.current_settings` (run_id, tenant_id, tenant, the SETTING_SCHEMA columns, synced_at). Nothing here
does I/O; every function returns a new frame.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import polars as pl

from tenantpilot import families
from tenantpilot.flatten.schema import SECRET_MASK
from tenantpilot.store.current import FACET_COLUMNS, SEARCH_COLUMNS, Filters

__all__ = ["FACET_COLUMNS", "SEARCH_COLUMNS", "Filters"]  # and the functions below

# the columns a user sees, in display order (export, CSV, the Explore table)
EXPORT_COLUMNS: tuple[str, ...] = (
    "tenant",
    "policy_name",
    "policy_type",
    "platform",
    "category",
    "setting_name",
    "value",  # "Not configured" where Graph's value means it (configured is false); raw_value keeps Graph's
    "raw_value",
    "configured",
    "setting_id",
    "setting_key",
    "value_type",
    "is_secret",
    "synced_at",
    "tenant_id",
    "policy_id",
    "odata_type",
    "family",  # the family id (policy_type holds its label in exports)
    "description",
    "run_id",
    "carried_from_run",  # set when the row's type could not be read and the row comes from that run
    "data_as_of",  # when Graph last gave us this row (the sync that read it)
)
# the shorter set shown in the Explore table (the detail view shows the rest); the setting and its
# value come first so they are visible without scrolling sideways
TABLE_COLUMNS: tuple[str, ...] = ("tenant", "setting_name", "value", "raw_value", "policy_name", "policy_type",
                                  "platform", "category", "data_from", "setting_id", "setting_key", "value_type")
_MASKED = ("value", "raw_value", "compare_value")


def search_expr(search: str, columns: Sequence[str] = SEARCH_COLUMNS) -> pl.Expr | None:
    """Case-insensitive literal match of `search` in any of `columns` (None: no search).

    Uses an escaped `(?i)` regex: Unicode case folding (ä/Ä), no per-row lowercase copies;
    about 60 ms over four columns of 1,000,000 rows.
    """
    needle = search.strip()
    if not needle:
        return None
    pattern = "(?i)" + re.escape(needle)
    return pl.any_horizontal(pl.col(c).str.contains(pattern) for c in columns)


def facet_matching(frame: pl.DataFrame, filters: Filters) -> pl.DataFrame:
    """Rows of a frame that is not settings (the assignments Explore lists) whose facet columns hold the
    chosen values: the facets of `filters` only (its search is the caller's, over that frame's own
    columns). Setting rows are filtered in the database (Store.settings_*), never here."""
    predicates = [pl.col(column).is_in(list(getattr(filters, name)))
                  for name, column in FACET_COLUMNS.items() if getattr(filters, name) and column in frame.columns]
    return frame.filter(*predicates) if predicates else frame


def facet_values(frame: pl.DataFrame) -> dict[str, list[str]]:
    """Sorted distinct values per facet; keys are the fields of Filters."""
    out: dict[str, list[str]] = {}
    for name, column in FACET_COLUMNS.items():
        if column not in frame.columns:
            out[name] = []
            continue
        values = frame.get_column(column).drop_nulls().unique()
        out[name] = sorted(values.to_list(), key=lambda v: (v.casefold(), v))
    return out


def tenant_labels(frame: pl.DataFrame, tenant_ids: Sequence[str] | None = None) -> dict[str, str]:
    """tenant_id -> display name, made unique ("Name (id)") when two tenants share a name."""
    if not {"tenant_id", "tenant"} <= set(frame.columns):
        return {t: t for t in tenant_ids or []}
    pairs = frame.select("tenant_id", "tenant").unique(subset="tenant_id", keep="first")
    names = dict(zip(pairs["tenant_id"].to_list(), pairs["tenant"].to_list()))
    ids = list(tenant_ids) if tenant_ids is not None else sorted(names, key=lambda t: (names[t] or t).casefold())
    return unique_labels({t: names.get(t) or t for t in ids})


def unique_labels(names: dict[str, str]) -> dict[str, str]:
    """Make display names unique by appending the id to every name that repeats."""
    seen: dict[str, int] = {}
    for name in names.values():
        seen[name] = seen.get(name, 0) + 1
    return {key: (f"{name} ({key})" if seen[name] > 1 and name != key else name) for key, name in names.items()}


def mask_secrets(frame: pl.DataFrame) -> pl.DataFrame:
    """Belt and braces: the flattener masks secrets; never let one through even if it did not."""
    if "is_secret" not in frame.columns:
        return frame
    secret = pl.col("is_secret").fill_null(False)
    return frame.with_columns(
        pl.when(secret).then(pl.lit(SECRET_MASK)).otherwise(pl.col(c)).alias(c) for c in _MASKED if c in frame.columns
    )


def with_provenance(frame: pl.DataFrame) -> pl.DataFrame:
    """`data_as_of` (when Graph gave us the row) and `data_from` ("current", or "carried forward
    from run N (date)") for rows of a type the latest sync could not read."""
    if "carried_from_run" not in frame.columns:
        return frame
    as_of = pl.col("synced_at") if "synced_at" in frame.columns else pl.lit(None)
    carried = pl.col("carried_from_run").is_not_null()
    when = as_of.dt.strftime("%Y-%m-%d %H:%M") if "synced_at" in frame.columns else pl.lit("")
    return frame.with_columns(
        as_of.alias("data_as_of"),
        pl.when(carried).then(pl.format("carried forward from run {} ({})", pl.col("carried_from_run"), when))
        .otherwise(pl.lit("current")).alias("data_from"),
    )


def distinct_names(frame: pl.DataFrame) -> pl.DataFrame:
    """Setting names that stand for different settings on the same screen get what tells them apart
    appended: their category when the rows sharing the name differ in it, else their platform, else
    their key (the setting's path). Three "Recovery password" rows of different BitLocker drives read
    as three different settings; two "Allow camera" rows of one category as the Android and iOS one."""
    if frame.height == 0 or not {"setting_name", "setting_key"} <= set(frame.columns):
        return frame
    clash = pl.col("setting_key").n_unique().over("setting_name") > 1

    def telling(column: str) -> tuple[pl.Expr, pl.Expr]:
        value = pl.col(column).fill_null("") if column in frame.columns else pl.lit("")
        return value, (value.n_unique().over("setting_name") > 1) & (value != "")

    category, by_category = telling("category")
    platform, by_platform = telling("platform")
    where = pl.when(by_category).then(category).when(by_platform).then(platform).otherwise(pl.col("setting_key"))
    return frame.with_columns(
        pl.when(clash).then(pl.format("{} · {}", pl.col("setting_name"), where)).otherwise(pl.col("setting_name"))
        .alias("setting_name"))


def with_family_labels(frame: pl.DataFrame, column: str = "policy_type") -> pl.DataFrame:
    """For people: the family column as families.LABELS (ids the table does not know stay as they are)."""
    if column not in frame.columns:
        return frame
    return frame.with_columns(
        pl.col(column).replace_strict(families.LABELS, default=pl.col(column), return_dtype=pl.String))


def export_columns(frame: pl.DataFrame, columns: Sequence[str] = EXPORT_COLUMNS) -> pl.DataFrame:
    """The user-facing columns in display order (those present), secrets masked, with provenance;
    `policy_type` as the family's label (families.py), its id in `family`.

    Internal columns (compare_value) are left out.
    """
    frame = with_provenance(frame)
    if "policy_type" in frame.columns and "family" in columns:
        frame = with_family_labels(frame.with_columns(pl.col("policy_type").alias("family")))
    return mask_secrets(frame).select([c for c in columns if c in frame.columns])


DETAIL_COLUMNS: tuple[str, ...] = (
    "tenant", "tenant_id", "policy_name", "policy_id", "run_id", "platform", "value", "raw_value",
    "value_type", "is_secret", "synced_at",
)


def setting_detail(frame: pl.DataFrame, setting_key: str, policy_type: str, *,
                   odata_type: str | None = None) -> pl.DataFrame:
    """Every row of one setting: which policies set it, in which tenants, to which values.

    `odata_type` narrows property-keyed families to one Graph type (compare's `scope`: a Windows
    and an iOS compliance `passwordRequired` are different settings). Sorted by tenant then
    policy name; one row per (tenant, policy) row of the input.
    """
    rows = frame.filter((pl.col("setting_key") == setting_key) & (pl.col("policy_type") == policy_type))
    if odata_type is not None and "odata_type" in rows.columns:
        rows = rows.filter(pl.col("odata_type") == odata_type)
    rows = mask_secrets(rows)
    cols = [c for c in DETAIL_COLUMNS if c in rows.columns]
    sort = [c for c in ("tenant", "tenant_id", "policy_name", "policy_id") if c in rows.columns]
    return rows.sort(sort, nulls_last=True).select(cols)


def setting_info(frame: pl.DataFrame, setting_key: str, policy_type: str) -> dict[str, str | None]:
    """Name, id, category, description and value type of one setting (first row that has them)."""
    rows = frame.filter((pl.col("setting_key") == setting_key) & (pl.col("policy_type") == policy_type))
    info: dict[str, str | None] = {"setting_key": setting_key, "policy_type": policy_type}
    for col in ("setting_name", "setting_id", "category", "description", "value_type", "odata_type"):
        if col in rows.columns:
            values = rows.get_column(col).drop_nulls()
            values = values.filter(values != "") if values.dtype == pl.String else values
            info[col] = values[0] if values.len() else None
    return info


def page_slice(frame: pl.DataFrame, page: int, page_size: int) -> pl.DataFrame:
    """Rows of one 1-based page (clamped to the last page)."""
    pages = page_count(frame.height, page_size)
    page = min(max(page, 1), pages)
    return frame.slice((page - 1) * page_size, page_size)


def page_count(rows: int, page_size: int) -> int:
    return max(1, -(-rows // page_size))
