"""Pure Polars comparison of tenants: the N-tenant matrix, baseline alignment, in-tenant conflicts.

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

import polars as pl

from tenantpilot.explore import tenant_labels
from tenantpilot.families import PER_POLICY_KEYS, SCOPE_BY_PLATFORM, SCOPE_BY_TYPE

MATCH_KEY: tuple[str, str, str] = ("policy_type", "scope", "setting_key")
CELL_SEPARATOR = " | "
_CMP_SEP = "\x1f"  # joins normalised values inside a cell key; never shown

SAME, DIFFERS, MISSING, CONFLICT = "same", "differs", "missing", "conflict"
ACCEPTED = "accepted"  # a status "accepted (reason, until date)": a difference in the deviation register
STATUSES: tuple[str, ...] = (CONFLICT, DIFFERS, MISSING, SAME)
"""Status precedence, strongest first: a conflict inside any tenant; else the tenants that set
the key disagree (differs); else some tenants do not set it (missing); else same."""


def scope_expr() -> pl.Expr:
    """The `scope` part of MATCH_KEY (see the module docstring)."""
    short = pl.col("odata_type").fill_null("").str.replace(r"^.*\.", "").str.strip_chars("#")
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
    return frame.with_columns(scope_expr())


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
        (pl.col("policy_name") if has_policy else pl.lit(None, pl.String)).fill_null("").alias("policy_name"),
    )
    keys = ["tenant_id", *MATCH_KEY]
    # fast path: most cells come from exactly one row and need no aggregation
    rows = rows.with_columns((pl.len().over(keys) > 1).alias("_multi"))
    single = rows.filter(~pl.col("_multi")).select(
        *keys, "setting_name", "category", "value", pl.col("_cmp").alias("cmp"),
        pl.lit(1, pl.UInt32).alias("n_values"), pl.col("policy_name").alias("policies"),
    )
    multi = rows.filter(pl.col("_multi"))
    if multi.height == 0:
        return single.with_columns(pl.lit(False).alias("conflict"))
    # distinct normalised values per cell, each with one display value (the first in sort order)
    per_value = (
        multi.sort([*keys, "_cmp", "value"])
        .group_by([*keys, "_cmp"], maintain_order=True)
        .agg(pl.col("value").first(), pl.col("setting_name").drop_nulls().first(),
             pl.col("category").drop_nulls().first(), pl.col("policy_name").unique().sort())
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
    )
    out = pl.concat([single, merged.select(single.columns)], how="vertical_relaxed")
    return out.with_columns(((pl.col("n_values") > 1) & ~_per_policy_expr()).alias("conflict"))


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
    `accepted` (with a baseline; deviations.accepted_keys: tenant_id, MATCH_KEY, label): a differs or
    missing row whose every tenant that differs from the baseline there has an accepted deviation
    shows that deviation's label ("accepted (reason, until date)") as its status.

    Columns: policy_type, scope, setting_key, setting_name, category, status, tenants_set (how many of
    the compared tenants set it), then one column per tenant holding its display value (null:
    not set), baseline first. Column names are `labels[tenant_id]` (default: display names,
    made unique). Sorted by policy_type, category, setting_name, setting_key.
    """
    order = _tenant_order(tenants, baseline)
    names = dict(labels) if labels is not None else tenant_labels(frame, order)
    names = {t: names.get(t, t) for t in order}
    if len(set(names.values())) != len(names):
        raise ValueError(f"tenant column labels are not unique: {sorted(names.values())}")
    reserved = {*MATCH_KEY, "setting_name", "category", "status", "tenants_set"}
    clash = reserved & set(names.values())
    if clash:
        raise ValueError(f"tenant label clashes with a matrix column: {sorted(clash)}")

    cell = cells(frame, order, unconfigured=unconfigured)
    key_cols = list(MATCH_KEY)
    summary = cell.group_by(key_cols).agg(
        pl.col("setting_name").drop_nulls().first(),
        pl.col("category").drop_nulls().first(),
        pl.len().alias("tenants_set"),
        pl.col("cmp").n_unique().alias("_distinct"),
        pl.col("conflict").any().alias("_conflict"),
    )
    status = (
        pl.when(pl.col("_conflict")).then(pl.lit(CONFLICT))
        .when(pl.col("_distinct") > 1).then(pl.lit(DIFFERS))
        .when(pl.col("tenants_set") < len(order)).then(pl.lit(MISSING))
        .otherwise(pl.lit(SAME))
        .alias("status")
    )
    summary = summary.with_columns(status).drop("_distinct", "_conflict")
    if baseline is not None and accepted is not None and accepted.height and len(order) > 1:
        summary = _accepted_status(summary, cell, baseline, order[1:], accepted)
    if order:
        wide = (
            cell.select(*key_cols, "tenant_id", "value")
            .pivot(on="tenant_id", index=key_cols, values="value", on_columns=order)
        )
        wide = wide.rename({t: names[t] for t in order if t in wide.columns})
        # tenants with no rows at all still get an (empty) column
        wide = wide.with_columns(pl.lit(None, pl.String).alias(names[t]) for t in order if names[t] not in wide.columns)
        summary = summary.join(wide, on=key_cols, how="left")
    columns = [*key_cols, "setting_name", "category", "status", "tenants_set", *(names[t] for t in order)]
    return summary.select(columns).sort(["policy_type", "category", "setting_name", "scope", "setting_key"],
                                        nulls_last=True)


def _accepted_status(summary: pl.DataFrame, cell: pl.DataFrame, baseline: str, others: Sequence[str],
                     accepted: pl.DataFrame) -> pl.DataFrame:
    """compare_matrix's statuses with accepted deviations (see its docstring)."""
    key_cols = list(MATCH_KEY)
    base = cell.filter(pl.col("tenant_id") == baseline).select(*key_cols, pl.col("cmp").alias("_base"))
    grid = summary.filter(pl.col("status").is_in([DIFFERS, MISSING])).select(key_cols).join(
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


def is_accepted(status: pl.Expr | None = None) -> pl.Expr:
    """True for matrix rows whose status is an accepted deviation."""
    return (status if status is not None else pl.col("status")).str.starts_with(ACCEPTED)


def report(frame: pl.DataFrame, tenants: Sequence[str], baseline: str | None = None, *,
           only_differences: bool = False, unconfigured: bool = False,
           accepted: pl.DataFrame | None = None) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """(matrix, alignment scores or None): what the Compare page shows for these tenants (the baseline
    among them or not), for `python -m tenantpilot compare`. `accepted`: see compare_matrix."""
    matrix = compare_matrix(frame, tenants, baseline, unconfigured=unconfigured, accepted=accepted)
    scores = alignment_scores(frame, tenants, baseline, accepted=accepted) if baseline else None
    return (matrix.filter(pl.col("status") != SAME) if only_differences else matrix), scores


def only_differences(matrix: pl.DataFrame) -> pl.DataFrame:
    """Rows whose status is anything but same."""
    return matrix.filter(pl.col("status") != SAME)


def differences_by_policy_type(matrix: pl.DataFrame) -> pl.DataFrame:
    """Counts of each status per policy type (for a chart): policy_type, conflict, differs, missing, same."""
    counts = matrix.group_by("policy_type", "status").agg(pl.len().alias("n"))
    wide = counts.pivot(on="status", index="policy_type", values="n", on_columns=list(STATUSES))
    for s in STATUSES:
        if s not in wide.columns:
            wide = wide.with_columns(pl.lit(0, pl.UInt32).alias(s))
    return wide.select("policy_type", *(pl.col(s).fill_null(0) for s in STATUSES)).sort("policy_type")


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
    order = [t for t in dict.fromkeys(tenants) if t != baseline]
    names = tenant_labels(frame, [baseline, *order])
    cell = cells(frame, [baseline, *order]).select("tenant_id", *MATCH_KEY, "cmp")
    base = cell.filter(pl.col("tenant_id") == baseline).drop("tenant_id").rename({"cmp": "_base"})
    total = base.height
    others = cell.filter(pl.col("tenant_id") != baseline)
    acc = pl.DataFrame(schema={"tenant_id": pl.String, "accepted": pl.Int64})
    if accepted is not None and accepted.height:
        keys = accepted.filter(pl.col("tenant_id").is_in(order)).select("tenant_id", *MATCH_KEY).unique()
        others = others.join(keys, on=["tenant_id", *MATCH_KEY], how="anti")
        acc = (keys.join(base.select(MATCH_KEY), on=list(MATCH_KEY), how="semi").group_by("tenant_id")
               .agg(pl.len().cast(pl.Int64).alias("accepted")))
    joined = others.join(base, on=list(MATCH_KEY), how="left")
    per = joined.group_by("tenant_id").agg(
        (pl.col("_base").is_not_null() & (pl.col("cmp") == pl.col("_base"))).sum().alias("matched"),
        (pl.col("_base").is_not_null() & (pl.col("cmp") != pl.col("_base"))).sum().alias("differing"),
        pl.col("_base").is_null().sum().alias("extra"),
    )
    result = pl.DataFrame({"tenant_id": order}, schema={"tenant_id": pl.String}).join(per, on="tenant_id", how="left")
    result = result.join(acc, on="tenant_id", how="left")
    result = result.with_columns(pl.col(c).fill_null(0).cast(pl.Int64)
                                 for c in ("matched", "differing", "extra", "accepted"))
    result = result.with_columns((pl.lit(total, pl.Int64) - pl.col("accepted")).alias("baseline_settings"))
    return result.select(
        "tenant_id",
        pl.col("tenant_id").replace_strict(names, default=pl.col("tenant_id"), return_dtype=pl.String).alias("tenant"),
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
    out = with_cmp.join(bad, on=keys, how="inner")
    cols = [c for c in ("tenant_id", "tenant", *MATCH_KEY, "setting_name", "category", "policy_name", "value",
                        "distinct_values") if c in out.columns]
    sort = [c for c in ("tenant_id", *MATCH_KEY, "_cmp", "policy_name") if c in out.columns]
    return out.sort(sort, nulls_last=True).select(cols)


def _tenant_order(tenants: Sequence[str], baseline: str | None) -> list[str]:
    order = list(dict.fromkeys(tenants))
    if baseline is not None:
        order = [baseline, *(t for t in order if t != baseline)]
    return order


# --- the same rules as SQL, for "all tenants" views computed in the database -----------------------
def _families_sql(families: frozenset[str]) -> str:
    return ", ".join(f"'{f}'" for f in sorted(families)) or "NULL"


def scope_sql(alias: str = "s") -> str:
    """scope_expr as SQL over a settings relation `alias` (see the module docstring)."""
    return (f"CASE WHEN {alias}.policy_type IN ({_families_sql(SCOPE_BY_TYPE)}) THEN "
            f"trim(regexp_replace(coalesce({alias}.odata_type, ''), '^.*\\.', ''), '#') "
            f"WHEN {alias}.policy_type IN ({_families_sql(SCOPE_BY_PLATFORM)}) THEN coalesce({alias}.platform, '') "
            "ELSE '' END")


def cells_sql(source: str) -> str:
    """CTEs `cur`, `simple`, `multi`, `cells`: one row per (run_id, policy_type, scope, setting_key)
    of the setting rows `source` yields as `s`, with the cell's normalised value set `cmp` (the
    rules of `cells`). Most cells hold one value (min = max): only the others are string-aggregated.
    Scope is a grouping key here, so the full @odata.type serves (no regular expression per row).
    Configured rows only (a row stored before the column existed counts as configured), as `cells`."""
    return f"""
    cur AS (
        SELECT s.run_id, s.policy_type,
               CASE WHEN s.policy_type IN ({_families_sql(SCOPE_BY_TYPE)}) THEN coalesce(s.odata_type, '')
                    WHEN s.policy_type IN ({_families_sql(SCOPE_BY_PLATFORM)}) THEN coalesce(s.platform, '')
                    ELSE '' END AS scope,
               s.setting_key, coalesce(s.compare_value, s.value, '') AS cmp
        FROM {source} AND coalesce(s.configured, true)),
    simple AS (
        SELECT run_id, policy_type, scope, setting_key, min(cmp) AS mn, max(cmp) AS mx
        FROM cur GROUP BY run_id, policy_type, scope, setting_key),
    multi AS (
        SELECT c.run_id, c.policy_type, c.scope, c.setting_key,
               string_agg(DISTINCT c.cmp, chr(31) ORDER BY c.cmp) AS cmp
        FROM cur c SEMI JOIN (SELECT * FROM simple WHERE mn <> mx) m USING (run_id, policy_type, scope, setting_key)
        GROUP BY c.run_id, c.policy_type, c.scope, c.setting_key),
    cells AS (
        SELECT s.run_id, s.policy_type, s.scope, s.setting_key, CASE WHEN s.mn = s.mx THEN s.mn ELSE m.cmp END AS cmp
        FROM simple s LEFT JOIN multi m USING (run_id, policy_type, scope, setting_key))"""


ALIGNMENT_COLUMNS: tuple[str, ...] = ("run_id", "baseline_run_id", "baseline_settings", "matched", "differing",
                                      "missing", "extra")


def alignment_pairs_sql(pairs: str, rows: str) -> str:
    """alignment_scores, in SQL, for every (run_id, baseline_run_id) row of the relation `pairs`:
    the aggregate the all-tenants overview reads (one row per pair, ALIGNMENT_COLUMNS). `rows` is the
    relation of setting rows seen in each run (column run_id), e.g. the store's per-run view."""
    source = (f"{rows} s WHERE s.run_id IN (SELECT run_id FROM {pairs} "
              f"UNION SELECT baseline_run_id FROM {pairs})")
    return f"""
    WITH {cells_sql(source)},
    totals AS (SELECT run_id, count(*) AS n FROM cells GROUP BY run_id),
    per AS (
        SELECT p.run_id, p.baseline_run_id,
               count(c.setting_key) FILTER (WHERE b.cmp IS NOT NULL AND c.cmp = b.cmp) AS matched,
               count(c.setting_key) FILTER (WHERE b.cmp IS NOT NULL AND c.cmp <> b.cmp) AS differing,
               count(c.setting_key) FILTER (WHERE b.cmp IS NULL) AS extra
        FROM {pairs} p JOIN cells c ON c.run_id = p.run_id
        LEFT JOIN cells b ON b.run_id = p.baseline_run_id AND b.policy_type = c.policy_type
             AND b.scope = c.scope AND b.setting_key = c.setting_key
        GROUP BY p.run_id, p.baseline_run_id)
    SELECT p.run_id, p.baseline_run_id, coalesce(t.n, 0) AS baseline_settings,
           coalesce(per.matched, 0) AS matched, coalesce(per.differing, 0) AS differing,
           coalesce(t.n, 0) - coalesce(per.matched, 0) - coalesce(per.differing, 0) AS missing,
           coalesce(per.extra, 0) AS extra
    FROM {pairs} p LEFT JOIN totals t ON t.run_id = p.baseline_run_id
    LEFT JOIN per ON per.run_id = p.run_id AND per.baseline_run_id = p.baseline_run_id"""
