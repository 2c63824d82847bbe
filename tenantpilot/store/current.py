"""Reads of current rows: the rows of each tenant's current snapshot (or of given runs) for the app,
Compare and export, the types carried forward, and the Explore reads sized to the screen (counts per
tenant, one page, facets, every matching row).

Explore's filters run here, in DuckDB, and only here: the one rule of what a filter keeps
(`Filters`, `filters_sql`). The database filters, counts and pages 20 M rows of 1,000 tenants and only
the page comes back; a Polars copy of the rule would need every row in memory first. Callers pass a
Filters object, never SQL.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import polars as pl

from tenantpilot.flatten.schema import POLICY_SCHEMA, SETTING_SCHEMA
from tenantpilot.store.connection import Connection, _one
from tenantpilot.store.schema import (
    _CURRENT_VIEW,
    _SCHEMAS,
    _VERSIONS,
    SEARCH_TEXTS,
    TEXT_COLUMNS,
    VERSION_COLUMNS,
    _rows_sql,
    _runs_relation,
)

SEARCH_COLUMNS: tuple[str, ...] = ("setting_name", "setting_id", "value", "policy_name")
# facet name == field of Filters -> column it filters
FACET_COLUMNS: dict[str, str] = {
    "tenants": "tenant_id",
    "policy_types": "policy_type",
    "platforms": "platform",
    "policies": "policy_name",
}


@dataclass(frozen=True)
class Filters:
    """What the Explore page (and Compare, and exports) narrow the current settings to: facets (empty:
    all), a search text (case-insensitive, literal, in SEARCH_COLUMNS) and, for a setting's detail view,
    setting keys. Tenants are tenant ids; policies are policy names (names differ between tenants)."""

    tenants: tuple[str, ...] = ()
    policy_types: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    policies: tuple[str, ...] = ()
    search: str = ""
    setting_keys: tuple[str, ...] = ()

    def without(self, *names: str) -> Filters:
        """The same filters with the named ones cleared (a facet's options ignore the facet itself)."""
        cleared: dict[str, object] = {n: ("" if n == "search" else ()) for n in names}
        return replace(self, **cleared)  # type: ignore[arg-type]


def _like_pattern(needle: str) -> str:
    """A case-insensitive substring pattern for ILIKE: the text as typed, % and _ literal."""
    return "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def filters_sql(filters: Filters, alias: str = "s", texts: tuple[str, Sequence[str]] | None = None
                ) -> tuple[str, list[object]]:
    """The SQL condition (over the settings rows as `alias`) and parameters of `filters`.

    `texts`: (relation, columns) where the rows' text columns live once each, keyed by `text_id`
    (SEARCH_TEXTS): the search looks those columns up there, among thousands of texts, instead of in
    every row (one OR over both sides cannot be pushed to either)."""
    where: list[str] = []
    params: list[object] = []
    for name, column in (*FACET_COLUMNS.items(), ("setting_keys", "setting_key")):
        chosen = list(getattr(filters, name))
        if chosen:
            where.append(f"{alias}.{column} IN ({', '.join('?' * len(chosen))})")
            params.extend(chosen)
    needle = filters.search.strip()
    if needle:
        pattern = _like_pattern(needle)
        looked_up = [c for c in SEARCH_COLUMNS if texts and c in texts[1]]
        parts = [f"{alias}.{c} ILIKE ? ESCAPE '\\'" for c in SEARCH_COLUMNS if c not in looked_up]
        if texts and looked_up:
            parts.insert(0, f"{alias}.text_id IN (SELECT text_id FROM {texts[0]} WHERE "
                         + " OR ".join(f"{c} ILIKE ? ESCAPE '\\'" for c in looked_up) + ")")
        where.append("(" + " OR ".join(parts) + ")")
        params.extend([pattern] * len(SEARCH_COLUMNS))
    return (" AND ".join(where) or "TRUE"), params


class Reads(Connection):
    """Current rows, rows as of runs, and the Explore reads."""

    def run_types(self, run_ids: Sequence[int]) -> pl.DataFrame:
        """Per run and policy type: read, carried (with the run the rows come from) or skipped."""
        ids = ",".join(str(int(r)) for r in run_ids) or "NULL"
        with self.connect() as con:
            return con.sql(
                f"""SELECT rt.*, src.finished_at AS carried_from_at FROM run_types rt
                    LEFT JOIN sync_runs src ON src.run_id = rt.carried_from_run
                    WHERE rt.run_id IN ({ids}) ORDER BY rt.run_id, rt.label""").pl()

    def current_carried(self, tenant_ids: Sequence[str] | None = None) -> pl.DataFrame:
        """The types each tenant's current data carries forward: tenant, label, from which run and when, why."""
        args: list[Any] = []
        where = ""
        if tenant_ids is not None:
            where = f"AND rt.tenant_id IN ({','.join('?' * len(tenant_ids)) or 'NULL'})"
            args.extend(tenant_ids)
        with self.connect() as con:
            return con.sql(
                f"""SELECT rt.tenant_id, t.display_name AS tenant, rt.run_id, rt.type_key, rt.family, rt.label,
                           rt.status, rt.reason, rt.message, rt.carried_from_run, src.finished_at AS carried_from_at,
                           rt.carried_policies, rt.carried_settings
                    FROM run_types rt JOIN current_runs c ON c.run_id = rt.run_id
                    JOIN tenants t ON t.tenant_id = rt.tenant_id
                    LEFT JOIN sync_runs src ON src.run_id = rt.carried_from_run
                    WHERE rt.status <> 'read' {where} ORDER BY t.display_name, rt.label""",
                params=args or None).pl()

    # -- reads for the app, compare and export ---------------------------------------------------
    def snapshot_token(self) -> tuple[tuple[str, int], ...]:
        """(tenant, current run) pairs: a cache key that changes when any snapshot changes."""
        with self.connect() as con:
            return tuple(con.execute("SELECT tenant_id, run_id FROM current_runs ORDER BY tenant_id").fetchall())

    def current_settings(self, tenant_ids: Sequence[str] | None = None, *,
                         leave_out: Sequence[str] = ()) -> pl.DataFrame:
        """Rows of the current snapshot of the given tenants (all when None), with display names;
        `leave_out`: setting columns a caller does not need (Compare never shows descriptions)."""
        columns = [c for c in SETTING_SCHEMA if c not in set(leave_out)]
        return self._rows("settings", None, tenant_ids, columns)

    def run_settings(self, run_ids: Sequence[int] | None, tenant_ids: Sequence[str] | None = None) -> pl.DataFrame:
        """Setting rows of specific runs (None: each tenant's current run)."""
        return self._rows("settings", run_ids, tenant_ids)

    def _rows(self, kind: str, run_ids: Sequence[int] | None, tenant_ids: Sequence[str] | None,
              columns: Sequence[str] | None = None, filters: Filters | None = None) -> pl.DataFrame:
        """Rows of `kind` as of specific runs (None: each tenant's current run), with display names;
        setting rows matching `filters` only, when given."""
        args: list[Any] = list(tenant_ids) if tenant_ids is not None else []
        chosen = f"tenant_id IN ({','.join('?' * len(args)) or 'NULL'})" if tenant_ids is not None else "TRUE"
        where = chosen.replace("tenant_id", "s.tenant_id", 1)
        names_args = list(args)
        if filters is not None:
            if kind != "settings":
                raise ValueError("filters apply to setting rows")
            condition, extra = filters_sql(filters, texts=SEARCH_TEXTS)
            where, args = f"{where} AND {condition}", [*args, *extra]
        if run_ids is not None:
            view = f"({_rows_sql(kind, _runs_relation(run_ids))})"
        elif tenant_ids is not None:  # the chosen tenants' open versions first, then their joins
            view, where = f"({_rows_sql(kind, None, prefilter=where)})", "TRUE"
        else:
            view = _CURRENT_VIEW[kind]
        picked = list(columns or _SCHEMAS[kind])
        sql = f"""SELECT s.run_id, s.tenant_id, {', '.join(f's.{c}' for c in picked)}, s.synced_at, s.carried_from_run
                  FROM {view} s WHERE {where}"""
        with self.connect() as con:
            names = dict(con.execute(f"SELECT tenant_id, display_name FROM tenants WHERE {chosen}",
                                     names_args).fetchall())
            rows = con.sql(sql, params=args or None).pl()
        # the names apart: joining the tenants to every row cost more than mapping the few names asked for
        tenant = pl.col("tenant_id").replace_strict(names, default=None, return_dtype=pl.String).alias("tenant")
        return rows.filter(pl.col("tenant_id").is_in(list(names))).select(
            "run_id", "tenant_id", tenant, *picked, "synced_at", "carried_from_run")

    # -- reads sized to the screen: the database filters, counts and pages; only the page comes back
    # The current rows of every tenant: the one place that says what "current" is, for these reads.
    _CURRENT = f"{_CURRENT_VIEW['settings']} s WHERE TRUE"
    _TEXT_REFERENCE = re.compile(r"\bs\.(?:" + "|".join(TEXT_COLUMNS) + r")\b")

    @classmethod
    def _current(cls, where: str, *, versions_only: bool = False) -> str:
        """The current setting rows matching `where` (SQL over `s`), as `<relation> s WHERE TRUE`. A
        condition on version columns only (filters_sql with SEARCH_TEXTS) filters the versions
        before the joins that add texts and runs: 20 M rows are not joined to be thrown away.
        `versions_only`: the caller reads version columns only (counts, facets): no join at all (an
        open version is always a row of its tenant's current run)."""
        if cls._TEXT_REFERENCE.search(where):
            return f"(SELECT * FROM {cls._CURRENT} AND {where}) s WHERE TRUE"
        if versions_only:
            return f"{_VERSIONS['settings']} s WHERE s.valid_to_run IS NULL AND ({where})"
        return f"({_rows_sql('settings', None, prefilter=where)}) s WHERE TRUE"
    _ORDER = "t.display_name, s.tenant_id, s.policy_name, s.category, s.setting_name, s.setting_key, s.policy_id"

    def settings_tenant_counts(self, filters: Filters) -> list[tuple[str, int]]:
        """(tenant_id, current rows matching `filters`) in display order; no scan at all when nothing is
        filtered (each run knows its setting count)."""
        where, params = filters_sql(filters, texts=SEARCH_TEXTS)
        with self.connect() as con:
            if where.strip() == "TRUE":
                rows = con.execute(
                    "SELECT c.tenant_id, coalesce(r.setting_count, 0) FROM current_runs c JOIN tenants t "
                    "USING (tenant_id) JOIN sync_runs r ON r.run_id = c.run_id "
                    "ORDER BY t.display_name, c.tenant_id").fetchall()
            else:
                rows = con.execute(
                    f"SELECT m.tenant_id, m.n FROM (SELECT s.tenant_id, count(*) AS n "
                    f"FROM {self._current(where, versions_only=True)} "
                    "GROUP BY s.tenant_id) m JOIN tenants t USING (tenant_id) "
                    "ORDER BY t.display_name, m.tenant_id", list(params)).fetchall()
        return [(str(t), int(n)) for t, n in rows if n]

    def settings_page(self, filters: Filters, *, offset: int, limit: int,
                      counts: Sequence[tuple[str, int]] | None = None) -> pl.DataFrame:
        """One page of current setting rows matching `filters`, in the stable display order
        (tenant, policy, category, setting). Only the tenants the page spans are read and sorted, so a
        page costs about one tenant's rows however many tenants there are (`counts`: from
        settings_tenant_counts, reused across pages)."""
        counts = self.settings_tenant_counts(filters) if counts is None else counts
        where, params = filters_sql(filters, texts=SEARCH_TEXTS)
        span: list[str] = []
        before = seen = 0
        for tenant_id, n in counts:
            if seen + n > offset and seen < offset + limit:
                if not span:
                    before = seen
                span.append(tenant_id)
            seen += n
        cols = ", ".join(f"s.{c}" for c in SETTING_SCHEMA)
        marks = ",".join("?" * len(span)) or "NULL"
        sql = f"""SELECT s.run_id, s.tenant_id, t.display_name AS tenant, {cols}, s.synced_at, s.carried_from_run
                  FROM (SELECT * FROM {self._current(f"s.tenant_id IN ({marks}) AND {where}")}) s
                  JOIN tenants t USING (tenant_id)
                  ORDER BY {self._ORDER} LIMIT {int(limit)} OFFSET {int(offset - before)}"""
        with self.connect() as con:
            return con.sql(sql, params=[*span, *params] or None).pl()

    def settings_matching(self, filters: Filters) -> pl.DataFrame:
        """Every current row matching `filters` (exports of what is filtered; detail views)."""
        where, params = filters_sql(filters, texts=SEARCH_TEXTS)
        cols = ", ".join(f"s.{c}" for c in SETTING_SCHEMA)
        sql = f"""SELECT s.run_id, s.tenant_id, t.display_name AS tenant, {cols}, s.synced_at, s.carried_from_run
                  FROM (SELECT * FROM {self._current(where)}) s JOIN tenants t USING (tenant_id)
                  ORDER BY {self._ORDER}"""
        with self.connect() as con:
            return con.sql(sql, params=list(params) or None).pl()

    def settings_count(self, filters: Filters) -> int:
        return sum(n for _, n in self.settings_tenant_counts(filters))

    # columns the policies table shares with settings: facets over them read ~100x fewer rows
    _POLICY_FACETS = frozenset({"tenant_id", "policy_type", "platform", "policy_name"})

    def settings_facets(self, filters: Filters, columns: Sequence[str], limit: int = 5000) -> dict[str, list[str]]:
        """Distinct values of each column among the current rows matching `filters` (at most `limit` + 1).

        Filters on policy-level columns only (tenant, type, platform, policy) let the current policies
        answer instead of every setting row (every policy has at least one row)."""
        by_policy = not filters.search.strip() and not filters.setting_keys
        where, params = filters_sql(filters, texts=SEARCH_TEXTS)
        for column in columns:
            if column not in SETTING_SCHEMA and column != "tenant_id":
                raise ValueError(column)
        source = (f"{_CURRENT_VIEW['policies']} s WHERE {where}"
                  if by_policy and self._POLICY_FACETS >= set(columns)
                  else self._current(where, versions_only=set(columns) <= set(VERSION_COLUMNS) | {"tenant_id"}))
        # one scan for every column: the matching rows' distinct combinations, then each column's values
        picked = ", ".join(f"s.{c}" for c in columns)
        per_column = " UNION ALL ".join(
            f"(SELECT {i} AS k, CAST({c} AS VARCHAR) AS v FROM (SELECT DISTINCT {c} FROM m WHERE {c} IS NOT NULL "
            f"LIMIT {int(limit) + 1}))" for i, c in enumerate(columns))
        with self.connect() as con:
            rows = con.execute(f"WITH m AS MATERIALIZED (SELECT DISTINCT {picked} FROM {source}) {per_column}",
                               list(params)).fetchall() if columns else []
        out: dict[str, list[str]] = {c: [] for c in columns}
        for k, v in rows:
            out[columns[k]].append(str(v))
        return {c: sorted(vs, key=lambda v: (v.casefold(), v)) for c, vs in out.items()}

    def current_assignments(self, tenant_ids: Sequence[str] | None = None) -> pl.DataFrame:
        return self._rows("assignments", None, tenant_ids)

    def policy_raw(self, run_id: int, policy_id: str) -> str | None:
        with self.connect() as con:
            row = _one(con.execute(f"SELECT raw_json FROM ({_rows_sql('policies', _runs_relation([run_id]))}) s "
                                   "WHERE run_id = ? AND policy_id = ?",
                                   [run_id, policy_id]))
        return row[0] if row else None

    def current_policies(self, tenant_ids: Sequence[str] | None = None, *, with_raw: bool = False) -> pl.DataFrame:
        columns = [c for c in POLICY_SCHEMA if with_raw or c != "raw_json"]
        return self._rows("policies", None, tenant_ids, columns).drop("tenant", "synced_at", "carried_from_run")

    def current_columns_of(self, tenant_ids: Sequence[str], columns: Sequence[str],
                           filters: Filters | None = None) -> pl.DataFrame:
        """tenant_id, tenant (display name) and only these setting columns of these tenants' current rows
        (matching `filters`, when given), in no particular order: Compare moves and sorts nothing it
        does not read."""
        unknown = [c for c in columns if c not in SETTING_SCHEMA]
        if unknown:
            raise ValueError(f"not setting columns: {unknown}")
        narrowed = filters if filters is not None and filters != Filters() else None
        return self._rows("settings", None, list(tenant_ids), columns, narrowed).select("tenant_id", "tenant",
                                                                                          *columns)
