"""The compare rule, once: the N-tenant matrix, baseline alignment with accepted deviations, in-tenant
conflicts (`comparison` computes the three in one pass, as the Compare page shows them).

It runs in Polars over the rows of the tenants being compared (Store.current_columns_of reads only
those, already filtered): the page compares a handful of tenants, never all 1,000. There is no SQL
copy: the all-tenants alignment has no reader, so it is not computed (migration 8 dropped its table).

Settings are matched across tenants by MATCH_KEY = (policy_type, scope, setting_key), never by
policy name or id: tenants name their policies differently. `scope` is derived, not stored, by the
family's scope rule (tenantpilot/families.py): for families whose keys are bare property paths
(compliance, deviceConfiguration, appProtection, ...) it is the short Graph type
(`windows10CompliancePolicy`), because `passwordRequired` of a Windows and of an iOS compliance
policy are different settings; for the settings catalog it is the platform, because Apple's
definition ids are shared by iOS and macOS profiles, which apply to different devices; for intents
and admin templates (Windows-only definition ids) it is "". Values are compared on `compare_value`
(normalised by the flattener: collections sorted, tenant-specific parts replaced; volatile
fields never become rows), falling back to `value` where it is null; `value` is what is shown.

A *cell* is what one tenant sets for one key. A tenant may set the same key in several
policies: equal values collapse into one; different *configured* values make the cell a
**conflict** and it shows every value joined with CELL_SEPARATOR.

Configured or not (flatten/configured.py): a row whose `configured` is False holds Graph's value for
a setting the admin left at "Not configured". By default such rows are left out, so "not
configured" and "not present" are the same; `unconfigured=True` keeps them as the value "Not
configured" (a cell is "Not configured" only when none of its rows is configured). Unconfigured
values never make a conflict, and alignment counts configured baseline settings only. Keys a family
marks per-policy (compliance actions for noncompliance, families.py) never make a conflict either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import polars as pl

from tenantpilot.analysis.explore import tenant_labels
from tenantpilot.families import PER_POLICY_KEYS, SCOPE_BY_PLATFORM, SCOPE_BY_TYPE

MATCH_KEY: tuple[str, str, str] = ("policy_type", "scope", "setting_key")
# the setting columns the functions here read (with tenant_id and tenant): what a caller must load
READS: tuple[str, ...] = ("policy_type", "odata_type", "platform", "setting_key", "setting_name", "category", "value",
                          "compare_value", "configured", "policy_name")
CELL_SEPARATOR = " | "
_CMP_SEP = "\x1f"  # joins normalised values inside a cell key; never shown

# --- the vocabulary: the one place a status is spelled (matrix, scores, metrics, exports, report, alerts) ----
# Without a baseline, a row says how the compared tenants agree:
SAME, DIFFERS, MISSING, CONFLICT = "same", "differs", "missing", "conflict"
STATUSES: tuple[str, ...] = (CONFLICT, DIFFERS, MISSING, SAME)
"""Status precedence without a baseline, strongest first: a conflict inside any tenant; else the tenants that
set the key disagree (differs); else some tenants do not set it (missing); else same."""
# With a baseline, a tenant's cell is judged against the baseline's (baseline_status), and so is a row:
DIFFERENT = "different value"  # the tenant sets a baseline setting to another value
MISSING_IN_TENANT = "missing in the tenant"  # the baseline sets it, the tenant does not
NOT_IN_BASELINE = "not in the baseline"  # the tenant sets it, the baseline does not
ACCEPTED = "accepted"  # a status "accepted (reason, until date)": a difference in the deviation register
BASELINE_STATUSES: tuple[str, ...] = (CONFLICT, DIFFERENT, MISSING_IN_TENANT, NOT_IN_BASELINE, SAME)
"""Status precedence with a baseline, strongest first: a conflict inside any tenant; else some tenant sets a
baseline setting to another value; else some tenant lacks it; else the baseline lacks it; else same."""
OPEN: tuple[str, ...] = (DIFFERENT, MISSING_IN_TENANT, NOT_IN_BASELINE)
"""The differences from a baseline an accepted deviation can cover (a setting the baseline lacks is not in the
score, but a tenant's extra policy can be accepted all the same: it leaves the score table's count)."""
# A status as a heading of its count (the matrix's row word, but "missing" says it is missing in some tenants)
ROW_WORDS: dict[str, str] = {SAME: SAME, DIFFERS: DIFFERS, MISSING: "missing in some", CONFLICT: CONFLICT,
                             DIFFERENT: DIFFERENT, MISSING_IN_TENANT: MISSING_IN_TENANT,
                             NOT_IN_BASELINE: NOT_IN_BASELINE, ACCEPTED: ACCEPTED}
# What a column of alignment_scores counts, in the same words (page headers, CLI text, report columns)
SCORE_WORDS: dict[str, str] = {"matched": "matched", "differing": DIFFERENT, "missing": MISSING_IN_TENANT,
                               "extra": NOT_IN_BASELINE, "accepted": ACCEPTED}


def _short_type(odata_type: pl.Expr) -> pl.Expr:
    """`#microsoft.graph.windows10CompliancePolicy` -> `windows10CompliancePolicy` ('' for null)."""
    return odata_type.fill_null("").str.replace(r"^.*\.", "").str.strip_chars("#")


def scope_expr(short: pl.Expr | None = None) -> pl.Expr:
    """The `scope` part of MATCH_KEY (see the module docstring). `short`: the short Graph type, when
    the caller has it already (with_scope computes it once per distinct type)."""
    short = _short_type(pl.col("odata_type")) if short is None else short
    return (
        pl.when(pl.col("policy_type").is_in(list(SCOPE_BY_TYPE))).then(short)
        .when(pl.col("policy_type").is_in(list(SCOPE_BY_PLATFORM))).then(pl.col("platform").fill_null(""))
        .otherwise(pl.lit("")).alias("scope")
    )


def with_scope(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with a `scope` column (kept when already there; "" without odata_type)."""
    if "scope" in frame.columns:
        return frame
    missing = [c for c in ("odata_type", "platform") if c not in frame.columns]
    if missing:
        frame = frame.with_columns(pl.lit("").alias(c) for c in missing)
        return frame.with_columns(scope_expr()).drop(missing)
    # a regular expression per distinct type (a few dozen), not per row (hundreds of thousands)
    types = frame.select(pl.col("odata_type").fill_null("").unique())
    short = dict(types.with_columns(_short_type(pl.col("odata_type")).alias("short")).iter_rows())
    return frame.with_columns(scope_expr(
        pl.col("odata_type").fill_null("").replace_strict(short, default="", return_dtype=pl.String)))


def _cmp_expr() -> pl.Expr:
    return pl.coalesce(pl.col("compare_value"), pl.col("value"), pl.lit("")).alias("_cmp")


def configured_expr(frame: pl.DataFrame) -> pl.Expr:
    """True for configured rows (rows stored before the column existed count as configured)."""
    return pl.col("configured").fill_null(True) if "configured" in frame.columns else pl.lit(True)


def _per_policy_expr() -> pl.Expr:
    """Keys that belong to their policy (families.PER_POLICY_KEYS): never a conflict between policies."""
    expr = pl.lit(False)
    for family, prefixes in PER_POLICY_KEYS.items():
        for prefix in prefixes:
            expr = expr | ((pl.col("policy_type") == family) & pl.col("setting_key").str.starts_with(prefix))
    return expr


def configured_rows(frame: pl.DataFrame, *, unconfigured: bool = False) -> pl.DataFrame:
    """The rows compare looks at: configured ones; with `unconfigured`, also those of cells (tenant, key)
    that no policy of the tenant configures."""
    if "configured" not in frame.columns:
        return frame
    conf = configured_expr(frame)
    if not unconfigured:
        return frame.filter(conf)
    frame = with_scope(frame)
    keys = ["tenant_id", *MATCH_KEY] if "tenant_id" in frame.columns else list(MATCH_KEY)
    return frame.filter(conf | ~conf.any().over(keys))


def cells(frame: pl.DataFrame, tenants: Sequence[str] | None = None, *, unconfigured: bool = False) -> pl.DataFrame:
    """One row per (tenant_id, *MATCH_KEY): what that tenant sets there.

    Columns: tenant_id, policy_type, scope, setting_key, setting_name, category, value (display
    values joined, sorted by their normalised value), cmp (the cell's normalised identity),
    n_values (distinct normalised values), conflict (n_values > 1 on a key that is not per-policy),
    policies (names joined). Unconfigured rows: see the module docstring.
    """
    return _cells(frame, tenants, unconfigured=unconfigured).drop(_MULTI)


_MULTI = "_multi"  # a cell column inside this module: the cell comes from several rows (policies)


def _cells(frame: pl.DataFrame, tenants: Sequence[str] | None = None, *, unconfigured: bool = False) -> pl.DataFrame:
    """`cells` with `_multi` before `conflict` (the matrix's name rule reads it)."""
    if tenants is not None:
        frame = frame.filter(pl.col("tenant_id").is_in(list(tenants)))
    frame = configured_rows(with_scope(frame), unconfigured=unconfigured)
    has_policy = "policy_name" in frame.columns
    rows = frame.select(
        "tenant_id", *MATCH_KEY,
        pl.col("setting_name") if "setting_name" in frame.columns else pl.lit(None, pl.String).alias("setting_name"),
        pl.col("category") if "category" in frame.columns else pl.lit(None, pl.String).alias("category"),
        pl.col("value").fill_null(""),
        _cmp_expr(),
        pl.col("policy_name") if has_policy else pl.lit(None, pl.String).alias("policy_name"),
    )
    keys = ["tenant_id", *MATCH_KEY]
    # fast path: most cells come from exactly one row and need no aggregation
    rows = rows.with_columns((pl.len().over(keys) > 1).alias(_MULTI))
    single = rows.filter(~pl.col(_MULTI)).select(
        *keys, "setting_name", "category", "value", pl.col("_cmp").alias("cmp"),
        pl.lit(1, pl.UInt32).alias("n_values"), pl.col("policy_name").fill_null("").alias("policies"), _MULTI,
    )
    multi = rows.filter(pl.col(_MULTI))
    if multi.height == 0:
        return single.with_columns(pl.lit(False).alias("conflict"))
    # distinct normalised values per cell, each with one display value (the first in sort order; equal
    # values then by policy, category and name, so that which name a cell shows never depends on row order)
    per_value = (
        multi.sort([*keys, "_cmp", "value", "policy_name", "category", "setting_name"],
                   nulls_last=[False] * (len(keys) + 2) + [True, True, True])
        .group_by([*keys, "_cmp"], maintain_order=True)
        .agg(pl.col("value").first(), pl.col("setting_name").drop_nulls().first(),
             pl.col("category").drop_nulls().first(), pl.col("policy_name").fill_null("").unique().sort())
    )
    merged = (
        per_value.group_by(keys, maintain_order=True)
        .agg(
            pl.col("setting_name").drop_nulls().first(),
            pl.col("category").drop_nulls().first(),
            pl.col("value").str.join(CELL_SEPARATOR).alias("value"),
            pl.col("_cmp").str.join(_CMP_SEP).alias("cmp"),
            pl.len().cast(pl.UInt32).alias("n_values"),
            pl.col("policy_name").list.explode(keep_nulls=False, empty_as_null=False).unique().sort()
            .str.join(", ").alias("policies"),
        )
        .with_columns(pl.lit(True).alias(_MULTI))
    )
    out = pl.concat([single, merged.select(single.columns)], how="vertical_relaxed")
    return out.with_columns(((pl.col("n_values") > 1) & ~_per_policy_expr()).alias("conflict"))


class Comparison(NamedTuple):
    """What the Compare page shows: the matrix, the alignment scores (None without a baseline) and the
    rows of the conflicts among the compared tenants."""

    matrix: pl.DataFrame
    scores: pl.DataFrame | None
    conflicts: pl.DataFrame


def comparison(
    frame: pl.DataFrame,
    tenants: Sequence[str],
    baseline: str | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    unconfigured: bool = False,
    accepted: pl.DataFrame | None = None,
) -> Comparison:
    """compare_matrix, alignment_scores (with a baseline) and conflicts of these tenants' rows, in one
    pass: the rows are scoped and made cells once, and the three share them. Same arguments and
    results as those three (conflicts: over the compared tenants' rows only)."""
    order = _tenant_order(tenants, baseline)
    names = _matrix_labels(frame, order, labels)
    rows = with_scope(frame.filter(pl.col("tenant_id").is_in(order)))
    cell = _cells(rows, unconfigured=unconfigured)
    apart = unconfigured and "configured" in rows.columns  # then the scores' configured cells are others
    scored = baseline is not None and not apart
    per_key = _by_key(cell, frame, order, values=True, cmps=baseline is not None, based=baseline is not None)
    matrix = _matrix(per_key, cell, order, names, baseline, accepted)
    configured = _cells(rows) if apart else cell
    scores = None
    if baseline is not None:
        by_key = per_key if scored else _by_key(configured, frame, order, values=False, cmps=True)
        scores = _scores(by_key, order, tenant_labels(frame, order), accepted)
    bad = configured.filter(pl.col("conflict")).select(
        "tenant_id", *MATCH_KEY, pl.col("n_values").alias("distinct_values"))
    found = _conflict_rows(configured_rows(rows).with_columns(_cmp_expr()), bad)
    return Comparison(matrix, scores, found)


def compare_matrix(
    frame: pl.DataFrame,
    tenants: Sequence[str],
    baseline: str | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    unconfigured: bool = False,
    accepted: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row per MATCH_KEY (policy_type, scope, setting_key) set by any of `tenants` (and the baseline).

    `unconfigured`: show "Not configured" apart from "not present" (module docstring).
    `status`: without a baseline, STATUSES (how the tenants agree); with one, BASELINE_STATUSES (each
    tenant judged against the baseline by baseline_status, the strongest wins). `accepted` (with a
    baseline; deviations.accepted_keys: tenant_id, MATCH_KEY, label): an OPEN row whose every tenant
    that differs from the baseline there has an accepted deviation shows that deviation's label
    ("accepted (reason, until date)") as its status.

    Columns: policy_type, scope, setting_key, setting_name, category, policy (the policies that set it, joined:
    the baseline's where it sets it, else those of the cell its name comes from), status, tenants_set (how many
    of the compared tenants set it), then one column per tenant holding its display value (null:
    not set), baseline first. Column names are `labels[tenant_id]` (default: display names,
    made unique). Sorted by policy_type, category, setting_name, setting_key. A key's setting_name and
    category are those of its first cell that has one: the tenants that set it in one policy by
    display name (then id), then those that set it in several by id; the row order never matters.
    """
    order = _tenant_order(tenants, baseline)
    names = _matrix_labels(frame, order, labels)
    cell = _cells(frame, order, unconfigured=unconfigured)
    based = baseline is not None
    return _matrix(_by_key(cell, frame, order, values=True, cmps=based, based=based), cell, order, names, baseline,
                   accepted)


def _matrix_labels(frame: pl.DataFrame, order: list[str], labels: Mapping[str, str] | None) -> dict[str, str]:
    """compare_matrix's column label per tenant, checked unique and apart from the matrix's own columns."""
    names = dict(labels) if labels is not None else tenant_labels(frame, order)
    names = {t: names.get(t, t) for t in order}
    if len(set(names.values())) != len(names):
        raise ValueError(f"tenant column labels are not unique: {sorted(names.values())}")
    reserved = {*MATCH_KEY, "setting_name", "category", "policy", "status", "tenants_set"}
    clash = reserved & set(names.values())
    if clash:
        raise ValueError(f"tenant label clashes with a matrix column: {sorted(clash)}")
    return names


def _by_key(cell: pl.DataFrame, frame: pl.DataFrame, order: list[str], *, values: bool, cmps: bool,
            based: bool = False) -> pl.DataFrame:
    """One row per MATCH_KEY of the cells (`_cells`) of the tenants in `order`, in one group_by: with
    `values`, what the matrix needs (setting_name, category, tenants_set, `_distinct` normalised values,
    `_conflict`, and `_value{i}`: the display value of the i-th tenant of `order`, null where it sets
    none, and `policy`: the baseline's (order[0], when `based`), else those of the cell the name comes from);
    with `cmps`, `_cmp{i}`: its normalised value (alignment scores)."""
    index = {t: i for i, t in enumerate(order)}
    cell = cell.with_columns(pl.col("tenant_id").replace_strict(index, return_dtype=pl.UInt32).alias("_t"))
    aggs: list[pl.Expr] = []
    if values:
        cell = cell.with_columns(_cell_position(frame, order).alias("_pos"))
        big = pl.lit(len(order) * 2 + 1, pl.UInt32)

        def first_set(column: str) -> pl.Expr:
            """The column's value in the first cell (by _pos) where it is not null."""
            return pl.col(column).get(
                pl.when(pl.col(column).is_not_null()).then(pl.col("_pos")).otherwise(big).arg_min())

        aggs += [first_set("setting_name"), first_set("category"),
                 (pl.coalesce(pl.col("policies").filter(pl.col("_t") == 0).first(), first_set("policies"))
                  if based else first_set("policies")).alias("policy"),
                 pl.len().alias("tenants_set"),
                 pl.col("cmp").n_unique().alias("_distinct"), pl.col("conflict").any().alias("_conflict"),
                 *(pl.col("value").filter(pl.col("_t") == i).first().alias(f"_value{i}") for i in range(len(order)))]
    if cmps:
        aggs += [pl.col("cmp").filter(pl.col("_t") == i).first().alias(f"_cmp{i}") for i in range(len(order))]
    return cell.group_by(list(MATCH_KEY)).agg(aggs)


def _matrix(per_key: pl.DataFrame, cell: pl.DataFrame, order: list[str], names: Mapping[str, str],
            baseline: str | None, accepted: pl.DataFrame | None) -> pl.DataFrame:
    """compare_matrix from _by_key(values=True) and the cells it was made of (for accepted deviations)."""
    key_cols = list(MATCH_KEY)
    if baseline is not None and len(order) > 1:
        found = [baseline_status(pl.col(f"_cmp{i}"), pl.col("_cmp0")) for i in range(1, len(order))]

        def some(word: str) -> pl.Expr:
            return pl.any_horizontal([(f == word).fill_null(False) for f in found])

        status = (pl.when(pl.col("_conflict")).then(pl.lit(CONFLICT))
                  .when(some(DIFFERENT)).then(pl.lit(DIFFERENT))
                  .when(some(MISSING_IN_TENANT)).then(pl.lit(MISSING_IN_TENANT))
                  .when(some(NOT_IN_BASELINE)).then(pl.lit(NOT_IN_BASELINE))
                  .otherwise(pl.lit(SAME)))
    else:
        status = (pl.when(pl.col("_conflict")).then(pl.lit(CONFLICT))
                  .when(pl.col("_distinct") > 1).then(pl.lit(DIFFERS))
                  .when(pl.col("tenants_set") < len(order)).then(pl.lit(MISSING))
                  .otherwise(pl.lit(SAME)))
    summary = per_key.with_columns(status.alias("status"))
    if baseline is not None and accepted is not None and accepted.height and len(order) > 1:
        summary = _accepted_status(summary, cell, baseline, order[1:], accepted)
    return summary.select(
        *key_cols, "setting_name", "category", "policy", "status", "tenants_set",
        *(pl.col(f"_value{i}").alias(names[t]) for i, t in enumerate(order)),
    ).sort(["policy_type", "category", "setting_name", "scope", "setting_key"], nulls_last=True)


def _cell_position(frame: pl.DataFrame, order: list[str]) -> pl.Expr:
    """Over `_cells` rows (with `_t`, the tenant's index in `order`): where the matrix looks first for a
    key's name and category. Cells of one policy come first, by the tenant's display name (then id; a
    tenant without one last), then cells of several policies by tenant id."""
    display: dict[str, str | None] = {}
    if "tenant" in frame.columns:
        display = dict(frame.select("tenant_id", "tenant").unique(subset="tenant_id", keep="first").iter_rows())
    by_name = sorted(order, key=lambda t: (display.get(t) is None, display.get(t) or "", t))
    by_id = sorted(order)
    index = {t: i for i, t in enumerate(order)}
    single = {index[t]: p for p, t in enumerate(by_name)}
    multi = {index[t]: len(order) + p for p, t in enumerate(by_id)}
    return (pl.when(pl.col(_MULTI)).then(pl.col("_t").replace_strict(multi, return_dtype=pl.UInt32))
            .otherwise(pl.col("_t").replace_strict(single, return_dtype=pl.UInt32)))


def _accepted_status(summary: pl.DataFrame, cell: pl.DataFrame, baseline: str, others: Sequence[str],
                     accepted: pl.DataFrame) -> pl.DataFrame:
    """compare_matrix's statuses with accepted deviations (see its docstring)."""
    key_cols = list(MATCH_KEY)
    base = cell.filter(pl.col("tenant_id") == baseline).select(*key_cols, pl.col("cmp").alias("_base"))
    grid = summary.filter(pl.col("status").is_in(list(OPEN))).select(key_cols).join(
        pl.DataFrame({"tenant_id": list(others)}, schema={"tenant_id": pl.String}), how="cross")
    grid = (grid.join(cell.select("tenant_id", *key_cols, "cmp"), on=["tenant_id", *key_cols], how="left")
            .join(base, on=key_cols, how="left"))
    deviating = grid.filter(~pl.col("cmp").eq_missing(pl.col("_base")))
    labelled = deviating.join(accepted.select("tenant_id", *key_cols, "label"), on=["tenant_id", *key_cols],
                              how="left")
    per_key = labelled.group_by(key_cols).agg(
        pl.col("label").is_not_null().all().alias("_all"),
        pl.col("label").drop_nulls().unique().sort().str.join("; ").alias("_label"),
    ).filter(pl.col("_all")).drop("_all")
    return summary.join(per_key, on=key_cols, how="left").with_columns(
        pl.coalesce("_label", "status").alias("status")).drop("_label")


def baseline_status(own: pl.Expr, base: pl.Expr) -> pl.Expr:
    """A tenant's cell against the baseline's, from their normalised values (null: not set): SAME,
    DIFFERENT, MISSING_IN_TENANT or NOT_IN_BASELINE; null where neither sets the key. The one rule the
    matrix, the report's differences and the alerts' deviations judge a tenant by."""
    return (pl.when(base.is_null() & own.is_null()).then(pl.lit(None, pl.String))
            .when(base.is_null()).then(pl.lit(NOT_IN_BASELINE))
            .when(own.is_null()).then(pl.lit(MISSING_IN_TENANT))
            .when(own != base).then(pl.lit(DIFFERENT))
            .otherwise(pl.lit(SAME)))


def deviating_cells(frame: pl.DataFrame, baseline: str, tenants: Sequence[str], keys: pl.DataFrame) -> pl.DataFrame:
    """Among `keys` (a frame with the MATCH_KEY columns), each tenant of `tenants` whose configured cell is not
    the baseline's (baseline_status in OPEN): tenant_id, MATCH_KEY, setting_name, status. What accepting
    selected matrix rows covers: the alignment rule's cells, so every accepted key leaves a score."""
    wanted = keys.select(MATCH_KEY).unique()
    rows = with_scope(frame.filter(pl.col("tenant_id").is_in([baseline, *tenants]))).join(
        wanted, on=list(MATCH_KEY), how="semi")
    cell = cells(rows)
    base = cell.filter(pl.col("tenant_id") == baseline).select(
        *MATCH_KEY, pl.col("cmp").alias("_base"), pl.col("setting_name").alias("_bname"))
    grid = wanted.join(pl.DataFrame({"tenant_id": [t for t in tenants if t != baseline]},
                                    schema={"tenant_id": pl.String}), how="cross")
    joined = (grid.join(cell.select("tenant_id", *MATCH_KEY, "cmp", "setting_name"), on=["tenant_id", *MATCH_KEY],
                        how="left").join(base, on=list(MATCH_KEY), how="left"))
    return joined.with_columns(
        baseline_status(pl.col("cmp"), pl.col("_base")).alias("status"),
        pl.coalesce("setting_name", "_bname", "setting_key").alias("setting_name"),
    ).filter(pl.col("status").is_in(list(OPEN))).select("tenant_id", *MATCH_KEY, "setting_name", "status").sort(
        "tenant_id", *MATCH_KEY)


COLLAPSIBLE: tuple[str, ...] = (MISSING, MISSING_IN_TENANT, NOT_IN_BASELINE)
"""Statuses whose rows policy_lines folds into one line per policy: a policy some tenant lacks (or the baseline)."""


def policy_lines(matrix: pl.DataFrame, tenant_columns: Sequence[str]) -> pl.DataFrame:
    """The matrix (compare_matrix) with each policy that is missing as a whole from some tenant, or is not in
    the baseline as a whole, folded into ONE line; every other row as it was.

    A policy (policy_type, policy) folds when it has two rows or more and all of them share one COLLAPSIBLE
    status and the same tenants without a value: its line says `setting_name` "<policy> (N settings)", the
    status, and "N settings" in each tenant column that has them (null where not). Added columns:
    `settings` (1 for an ordinary row, N for a folded one) and `members` (the folded rows' setting keys, null
    for an ordinary row), so a page can open the line's settings and act on all of them. Row order is kept
    (a line stands where its first setting stood)."""
    cols = list(tenant_columns)
    group = ["policy_type", "policy"]
    shape = pl.concat_str([pl.col(c).is_null().cast(pl.String) for c in cols], separator=",") if cols else pl.lit("")
    marked = matrix.with_row_index("_i").with_columns(shape.alias("_shape"))
    whole = (pl.col("policy").fill_null("").ne("") & (pl.len().over(group) > 1)
             & pl.col("status").is_in(list(COLLAPSIBLE))
             & (pl.col("status").n_unique().over(group) == 1) & (pl.col("_shape").n_unique().over(group) == 1))
    marked = marked.with_columns(whole.alias("_whole"))
    kept = marked.filter(~pl.col("_whole")).with_columns(
        pl.lit(1, pl.UInt32).alias("settings"), pl.lit(None, pl.List(pl.String)).alias("members"))
    folded = marked.filter(pl.col("_whole")).group_by(group, maintain_order=True).agg(
        pl.col("_i").min(), pl.col("scope").first(), pl.col("category").unique().sort().str.join(", "),
        pl.col("status").first(), pl.col("tenants_set").max(), pl.len().cast(pl.UInt32).alias("settings"),
        pl.col("setting_key").alias("members"),
        *(pl.col(c).is_null().all().alias(c) for c in cols),
    ).with_columns(
        pl.format("{} ({} settings)", pl.col("policy"), pl.col("settings")).alias("setting_name"),
        pl.lit("").alias("setting_key"),
        *(pl.when(pl.col(c)).then(pl.lit(None, pl.String))
          .otherwise(pl.format("{} settings", pl.col("settings"))).alias(c) for c in cols),
    )
    order = [c for c in kept.columns if c not in ("_shape", "_whole")]
    return pl.concat([kept.select(order), folded.select(order)], how="vertical_relaxed").sort("_i").drop("_i")


def is_accepted(status: pl.Expr | None = None) -> pl.Expr:
    """True for matrix rows whose status is an accepted deviation."""
    return (status if status is not None else pl.col("status")).str.starts_with(ACCEPTED)


def report(frame: pl.DataFrame, tenants: Sequence[str], baseline: str | None = None, *,
           only_differences: bool = False, unconfigured: bool = False,
           accepted: pl.DataFrame | None = None) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """(matrix, alignment scores or None): what the Compare page shows for these tenants (the baseline
    among them or not), for `python -m tenantpilot compare`. `accepted`: see compare_matrix."""
    matrix, scores, _found = comparison(frame, tenants, baseline, unconfigured=unconfigured, accepted=accepted)
    return (matrix.filter(pl.col("status") != SAME) if only_differences else matrix), scores


def only_differences(matrix: pl.DataFrame) -> pl.DataFrame:
    """Rows whose status is anything but same."""
    return matrix.filter(pl.col("status") != SAME)


def differences_by_policy_type(matrix: pl.DataFrame, statuses: Sequence[str] = STATUSES) -> pl.DataFrame:
    """Counts of each status per policy type (for a chart): policy_type, then one column per status of
    `statuses` (STATUSES; BASELINE_STATUSES for a matrix with a baseline). Accepted rows are not counted."""
    counts = matrix.group_by("policy_type", "status").agg(pl.len().alias("n"))
    wide = counts.pivot(on="status", index="policy_type", values="n", on_columns=list(statuses))
    for s in statuses:
        if s not in wide.columns:
            wide = wide.with_columns(pl.lit(0, pl.UInt32).alias(s))
    return wide.select("policy_type", *(pl.col(s).fill_null(0) for s in statuses)).sort("policy_type")


def alignment_scores(frame: pl.DataFrame, tenants: Sequence[str], baseline: str, *,
                     accepted: pl.DataFrame | None = None) -> pl.DataFrame:
    """Per tenant, how well it matches the baseline's settings.

    `accepted` (deviations.accepted_keys: tenant_id + MATCH_KEY): keys each tenant may differ on. They
    leave that tenant's score: not counted in any column, and `accepted` counts those the baseline has
    (so baseline_settings is per tenant: the baseline's settings less the tenant's accepted ones).

    Only configured settings count, on both sides (an unconfigured baseline value is no requirement).
    matched: baseline keys the tenant sets to the same (normalised) value; differing: set to
    another value (a conflicting cell counts as differing unless the baseline cell conflicts the
    same way); missing: baseline keys the tenant does not set; extra: keys the tenant sets that
    the baseline does not. score = matched / baseline settings (null when the baseline is empty).
    The baseline itself is not scored.
    """
    order = [baseline, *(t for t in dict.fromkeys(tenants) if t != baseline)]
    by_key = _by_key(_cells(frame, order), frame, order, values=False, cmps=True)
    return _scores(by_key, order, tenant_labels(frame, order), accepted)


def _scores(by_key: pl.DataFrame, order: Sequence[str], names: Mapping[str, str],
            accepted: pl.DataFrame | None) -> pl.DataFrame:
    """alignment_scores from _by_key(cmps=True) of the configured cells of the baseline (order[0]) and
    the tenants after it: per tenant, sums over the keys side by side."""
    base = pl.col("_cmp0")
    has = base.is_not_null()
    masks: dict[int, pl.Expr] = {}  # tenant index -> its accepted keys
    if accepted is not None and accepted.height:
        for i, tenant in enumerate(order[1:], start=1):
            keys = accepted.filter(pl.col("tenant_id") == tenant).select(MATCH_KEY).unique()
            if keys.height:
                by_key = by_key.join(keys.with_columns(pl.lit(True).alias(f"_acc{i}")), on=list(MATCH_KEY), how="left")
                masks[i] = pl.col(f"_acc{i}").fill_null(False)
    sums: list[pl.Expr] = [has.sum().alias("total")]
    for i in range(1, len(order)):
        own = pl.col(f"_cmp{i}")
        kept = (own.is_not_null() & ~masks[i]) if i in masks else own.is_not_null()
        sums += [(kept & has & (own == base)).sum().alias(f"matched{i}"),
                 (kept & has & (own != base)).sum().alias(f"differing{i}"),
                 (kept & ~has).sum().alias(f"extra{i}"),
                 ((masks[i] & has).sum() if i in masks else pl.lit(0)).alias(f"accepted{i}")]
    got = by_key.select(sums).row(0, named=True)
    columns = ("matched", "differing", "extra", "accepted")
    result = pl.DataFrame(
        {"tenant_id": list(order[1:]), **{c: [int(got[f"{c}{i}"] or 0) for i in range(1, len(order))] for c in columns}},
        schema={"tenant_id": pl.String, **{c: pl.Int64 for c in columns}})
    result = result.with_columns((pl.lit(int(got["total"] or 0), pl.Int64) - pl.col("accepted")).alias("baseline_settings"))
    return result.select(
        "tenant_id",
        pl.col("tenant_id").replace_strict(dict(names), default=pl.col("tenant_id"), return_dtype=pl.String)
        .alias("tenant"),
        "baseline_settings",
        "matched",
        "differing",
        (pl.col("baseline_settings") - pl.col("matched") - pl.col("differing")).alias("missing"),
        "extra",
        "accepted",
        pl.when(pl.col("baseline_settings") > 0).then(pl.col("matched") / pl.col("baseline_settings"))
        .otherwise(pl.lit(None, pl.Float64)).alias("score"),
    )


def conflicts(frame: pl.DataFrame, only: pl.DataFrame | None = None) -> pl.DataFrame:
    """Settings that one tenant configures to different values in different policies (configured rows
    only; per-policy keys never conflict).

    One row per contributing (tenant, key, policy, value): tenant_id, tenant, policy_type, scope,
    setting_key, setting_name, category, policy_name, value, distinct_values. Frames with
    several tenants are checked tenant by tenant (a difference between tenants is no conflict).
    `only` (a frame with the MATCH_KEY columns, e.g. the matrix rows whose status is conflict)
    restricts the check to those keys first, which is much cheaper on a large frame.
    """
    keys = ["tenant_id", *MATCH_KEY]
    frame = configured_rows(with_scope(frame)).filter(~_per_policy_expr())
    if only is not None:
        frame = frame.join(only.select(MATCH_KEY).unique(), on=list(MATCH_KEY), how="semi")
    with_cmp = frame.with_columns(_cmp_expr())
    bad = with_cmp.group_by(keys).agg(pl.col("_cmp").n_unique().alias("distinct_values")).filter(
        pl.col("distinct_values") > 1
    )
    return _conflict_rows(with_cmp, bad)


def _conflict_rows(with_cmp: pl.DataFrame, bad: pl.DataFrame) -> pl.DataFrame:
    """conflicts' rows: those of `with_cmp` (configured rows with `_cmp`) in the cells `bad` (tenant_id,
    MATCH_KEY, distinct_values), sorted by tenant, key, normalised value and policy (then name, value)."""
    out = with_cmp.join(bad, on=["tenant_id", *MATCH_KEY], how="inner")
    cols = [c for c in ("tenant_id", "tenant", *MATCH_KEY, "setting_name", "category", "policy_name", "value",
                        "distinct_values") if c in out.columns]
    sort = [c for c in ("tenant_id", *MATCH_KEY, "_cmp", "policy_name", "category", "setting_name", "value")
            if c in out.columns]
    return out.sort(sort, nulls_last=True).select(cols)


def _tenant_order(tenants: Sequence[str], baseline: str | None) -> list[str]:
    order = list(dict.fromkeys(tenants))
    if baseline is not None:
        order = [baseline, *(t for t in order if t != baseline)]
    return order
