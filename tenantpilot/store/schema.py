"""The database's shape: the tables (DDL), the row shapes (text, version, key and value columns), the views
of current rows, and the SQL pieces every read and write builds on (rows as of runs, interning of texts,
keys and values). The one place that says what a stored row is.

Model: every sync run writes what changed since the tenant's current snapshot and flips the run to
succeeded/partial in ONE transaction. A row is stored once and is valid over a range of the tenant's
runs (valid_from_run <= run < valid_to_run). A tenant's *current* snapshot is its latest succeeded or
partial run, so a failed run leaves the previous snapshot current. The open setting rows (the current
snapshots) live apart from the closed ones (`setting_current`, `setting_history`), so the pages read
exactly one snapshot's rows however long the history.

A change to DDL, to a view, or to the rows' shape is a new step in migrations.MIGRATIONS (with a higher
SCHEMA_VERSION): a process migrates only a file whose version is older than the code.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import polars as pl

from tenantpilot.flatten.schema import ASSIGNMENT_SCHEMA, POLICY_SCHEMA, SETTING_SCHEMA
from tenantpilot.store.connection import StoreError, _scalar

_sql_type = {pl.String: "VARCHAR", pl.Boolean: "BOOLEAN"}
_ASSIGN_COLS_SQL = ",\n  ".join(f"{c} {_sql_type[t]}" for c, t in ASSIGNMENT_SCHEMA.items())

# a setting row = its version columns (setting_versions) + its text (setting_texts, shared)
TEXT_COLUMNS: tuple[str, ...] = ("setting_id", "setting_name", "category", "description", "value_type", "is_secret")
VERSION_COLUMNS: tuple[str, ...] = tuple(c for c in SETTING_SCHEMA if c not in TEXT_COLUMNS)
# what makes two rows the same row (everything but bookkeeping; type_key is where it was read, not content)
_IDENTITY: dict[str, tuple[str, ...]] = {
    "settings": (*VERSION_COLUMNS, "text_id"),
    "policies": tuple(POLICY_SCHEMA),
    "assignments": tuple(ASSIGNMENT_SCHEMA),
}


def _hash(columns: Sequence[str], alias: str = "n") -> str:
    return f"hash({', '.join(f'{alias}.{c}' for c in columns)})"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _add_texts(con: duckdb.DuckDBPyConnection, staged: str) -> None:
    """Give every distinct text of the relation `staged` (text columns + text_hash) a row in setting_texts:
    new texts get the next small ids. A hash that names another text stops the write."""
    texts = ", ".join(TEXT_COLUMNS)
    con.execute(f"""INSERT INTO setting_texts
        SELECT (SELECT coalesce(max(text_id), 0) FROM setting_texts) + row_number() OVER (), text_hash, {texts}
        FROM (SELECT DISTINCT text_hash, {texts} FROM {staged} s
              WHERE NOT EXISTS (SELECT 1 FROM setting_texts x WHERE x.text_hash = s.text_hash))""")
    clash = _scalar(con.execute(
        f"""SELECT count(*) FROM (SELECT DISTINCT text_hash, {texts} FROM {staged}) n
            JOIN setting_texts x ON x.text_hash = n.text_hash
            WHERE {' OR '.join(f'x.{c} IS DISTINCT FROM n.{c}' for c in TEXT_COLUMNS)}"""))
    if clash:
        raise StoreError(f"{clash} setting texts hash like others already stored; nothing was written")


def _runs_relation(run_ids: Sequence[int]) -> str:
    """SQL of a relation with the given run ids (column run_id)."""
    ids = ",".join(str(int(r)) for r in run_ids)
    return f"SELECT unnest([{ids}]::BIGINT[]) AS run_id" if ids else "SELECT NULL::BIGINT AS run_id WHERE FALSE"


def _drop_unused_texts(con: duckdb.DuckDBPyConnection, text_ids: Sequence[int]) -> None:
    """Delete the setting texts among `text_ids` that no row (open row or closed version's key) uses."""
    if not text_ids:
        return
    con.register("_gone", pl.DataFrame({"text_id": sorted(set(text_ids))}, schema={"text_id": pl.Int32}).to_arrow())
    con.execute("DELETE FROM setting_texts WHERE text_id IN (SELECT text_id FROM _gone) "
                "AND text_id NOT IN (SELECT v.text_id FROM setting_current v SEMI JOIN _gone g USING (text_id)) "
                "AND text_id NOT IN (SELECT k.text_id FROM setting_keys k SEMI JOIN _gone g USING (text_id))")
    con.unregister("_gone")


def _drop_unused_history(con: duckdb.DuckDBPyConnection, tenant_id: str) -> None:
    """After closed versions were deleted: the tenant's keys no closed version uses, the texts only they
    used, and the values no closed version uses."""
    texts = [r[0] for r in con.execute(
        "DELETE FROM setting_keys k WHERE k.tenant_id = ? AND k.key_id NOT IN (SELECT h.key_id FROM setting_history h "
        "SEMI JOIN setting_keys t ON t.key_id = h.key_id AND t.tenant_id = ?) RETURNING text_id",
        [tenant_id, tenant_id]).fetchall()]
    _drop_unused_texts(con, texts)
    con.execute("DELETE FROM setting_values WHERE value_id NOT IN (SELECT value_id FROM setting_history)")


# A closed setting version (v7) is a few small numbers: its key (every column of the row but its value,
# interned in setting_keys when a version of it first closes), its value (interned in setting_values,
# shared by every tenant) and its range. A year of daily changes then costs a fraction of a snapshot.
_VALUE_COLUMNS: tuple[str, ...] = ("value", "raw_value", "compare_value")
_KEY_COLUMNS: tuple[str, ...] = ("tenant_id", *(c for c in VERSION_COLUMNS if c not in (*_VALUE_COLUMNS, "configured")),
                                 "text_id", "type_key")
_VERSION_SHAPE: tuple[str, ...] = ("tenant_id", *VERSION_COLUMNS, "text_id", "type_key", "valid_from_run",
                                   "valid_to_run")


def _intern(con: duckdb.DuckDBPyConnection, table: str, id_column: str, columns: Sequence[str], staged: str) -> None:
    """Give every distinct combination of `columns` in the relation `staged` a row in `table` (which
    has `id_column` and `columns`): new ones get the next ids. Equal means equal, NULL included."""
    cols = ", ".join(columns)
    same = " AND ".join(f"x.{c} IS NOT DISTINCT FROM s.{c}" for c in columns)
    con.execute(f"""INSERT INTO {table} ({id_column}, {cols})
        SELECT (SELECT coalesce(max({id_column}), 0) FROM {table}) + row_number() OVER (), {cols}
        FROM (SELECT DISTINCT {cols} FROM {staged} s WHERE NOT EXISTS (SELECT 1 FROM {table} x WHERE {same}))""")


def _close_settings(con: duckdb.DuckDBPyConnection, closed: str) -> None:
    """Keep the closed setting versions of the relation `closed` (the version shape, valid_to_run set)
    in setting_history, their keys and values interned."""
    _intern(con, "setting_keys", "key_id", _KEY_COLUMNS, closed)
    _intern(con, "setting_values", "value_id", _VALUE_COLUMNS, closed)
    on_key = " AND ".join(f"k.{c} IS NOT DISTINCT FROM c.{c}" for c in _KEY_COLUMNS)
    on_value = " AND ".join(f"w.{c} IS NOT DISTINCT FROM c.{c}" for c in _VALUE_COLUMNS)
    con.execute(f"""INSERT INTO setting_history
        SELECT k.key_id, w.value_id, c.configured, c.valid_from_run, c.valid_to_run
        FROM {closed} c JOIN setting_keys k ON {on_key} JOIN setting_values w ON {on_value}""")


def _setting_versions_sql(closed_after: str | None = None) -> str:
    """Every setting version in one shape (_VERSION_SHAPE): the open rows, and the closed ones rebuilt
    from their key and value. `closed_after`: SQL of a run id; closed versions that ended at or before
    it are left out (history is appended in run order, so that filter skips whole row groups)."""
    rebuilt = ", ".join("h.configured" if c == "configured" else f"w.{c}" if c in _VALUE_COLUMNS
                        else f"h.{c}" if c.startswith("valid_") else f"k.{c}" for c in _VERSION_SHAPE)
    after = f"WHERE h.valid_to_run > {closed_after}" if closed_after else ""
    return f"""SELECT {', '.join(_VERSION_SHAPE)} FROM setting_current
      UNION ALL
      SELECT {rebuilt} FROM (SELECT * FROM setting_history h {after}) h
      JOIN setting_keys k ON k.key_id = h.key_id JOIN setting_values w ON w.value_id = h.value_id"""


# where the text columns of the current rows can be searched once per text (current.filters_sql `texts`)
SEARCH_TEXTS: tuple[str, tuple[str, ...]] = ("setting_texts", TEXT_COLUMNS)
_VERSION_COLS_SQL = ", ".join(f"{c} {_sql_type[SETTING_SCHEMA[c]]}" for c in VERSION_COLUMNS)
# the open rows of each kind (valid_to_run IS NULL: always so in setting_current)
_VERSIONS = {"settings": "setting_current", "policies": "policy_versions", "assignments": "assignment_versions"}


def _all_versions(kind: str, closed_after: str | None = None) -> str:
    """A relation of every version of `kind`, open and closed (see _setting_versions_sql)."""
    return f"({_setting_versions_sql(closed_after)})" if kind == "settings" else _VERSIONS[kind]
# the current rows of every tenant, and the rows of any kept run, as the rest of the app reads them
_CURRENT_VIEW = {"settings": "current_setting_rows", "policies": "current_policy_rows",
                 "assignments": "current_assignment_rows"}


def _row_columns(kind: str) -> str:
    """The row's columns in the app's shape (SETTING_SCHEMA order for settings) over `v` (+ `x` texts)."""
    if kind == "settings":
        return ", ".join(f"x.{c}" if c in TEXT_COLUMNS else f"v.{c}" for c in SETTING_SCHEMA)
    schema = POLICY_SCHEMA if kind == "policies" else ASSIGNMENT_SCHEMA
    return ", ".join(f"v.{c}" for c in schema)


def _rows_sql(kind: str, runs: str | None, prefilter: str = "") -> str:
    """Rows as of runs: `run_id` is the run they are seen in; `carried_from_run` the run that really read
    them when this run could not read their type; `synced_at` when they were last read from Graph.
    `runs`: a relation with a `run_id` column (each tenant's current run when None). The runs are the
    small side of the join, so a tenant's history is read once per run asked for, never every run.
    `prefilter`: SQL over the version columns as `s`, applied to the versions before any join (an OR
    with a subquery is never pushed through joins by itself)."""
    texts = "JOIN setting_texts x ON x.text_id = v.text_id" if kind == "settings" else ""
    if runs is None:
        versions = (f"(SELECT * FROM {_VERSIONS[kind]} s WHERE s.valid_to_run IS NULL AND ({prefilter}))"
                    if prefilter else _VERSIONS[kind])
        join, where = ("JOIN current_runs c ON c.tenant_id = v.tenant_id JOIN sync_runs r ON r.run_id = c.run_id",
                       "v.valid_to_run IS NULL")
    else:
        versions = _all_versions(kind, closed_after=f"(SELECT min(run_id) FROM ({runs}) q0)")
        join = (f"JOIN (SELECT r.* FROM sync_runs r SEMI JOIN ({runs}) q ON q.run_id = r.run_id "
                "WHERE r.status IN ('succeeded', 'partial')) r ON r.tenant_id = v.tenant_id "
                "AND v.valid_from_run <= r.run_id AND (v.valid_to_run IS NULL OR v.valid_to_run > r.run_id)")
        where = "TRUE"
    text_id = ", v.text_id" if kind == "settings" else ""
    return f"""SELECT r.run_id, v.tenant_id, {_row_columns(kind)},
         coalesce(k.carried_at, r.finished_at) AS synced_at, k.carried_from_run,
         v.type_key, v.valid_from_run, v.valid_to_run{text_id}
  FROM {versions} v {texts} {join}
  LEFT JOIN (SELECT k.run_id, k.type_key, k.carried_from_run, src.finished_at AS carried_at FROM run_types k
             LEFT JOIN sync_runs src ON src.run_id = k.carried_from_run WHERE k.status = 'carried') k
    ON k.run_id = r.run_id AND k.type_key = v.type_key
  WHERE {where}"""


_VIEWS = "".join(f"CREATE OR REPLACE VIEW {_CURRENT_VIEW[kind]} AS\n  {_rows_sql(kind, None)};\n" for kind in _VERSIONS)
# views of every kept run's rows, from files before the runs relation was passed in (dropped: they
# joined every run with every version before filtering)
_VIEWS += "".join(f"DROP VIEW IF EXISTS run_{k}_rows;\n" for k in ("setting", "policy", "assignment"))

DDL = f"""
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE SEQUENCE IF NOT EXISTS run_seq START 1;
CREATE TABLE IF NOT EXISTS tenants (
  tenant_id VARCHAR PRIMARY KEY,
  display_name VARCHAR NOT NULL,
  kind VARCHAR NOT NULL DEFAULT 'tenant',   -- tenant | demo | baseline
  added_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS sync_runs (
  run_id BIGINT PRIMARY KEY,
  tenant_id VARCHAR NOT NULL,
  status VARCHAR NOT NULL,                  -- queued | running | succeeded | partial | failed
  queued_at TIMESTAMPTZ NOT NULL,
  started_at TIMESTAMPTZ,
  finished_at TIMESTAMPTZ,
  policy_count INTEGER,
  setting_count INTEGER,
  request_count INTEGER,
  warnings VARCHAR,                          -- JSON list of strings
  error VARCHAR,
  source VARCHAR                             -- graph | import:<path>
);
-- Temporal rows (v6): a row is stored once and is valid over a range of its tenant's runs,
-- valid_from_run <= run < valid_to_run (NULL: still valid, i.e. part of the current snapshot).
-- A sync writes only what changed: it closes the rows Graph no longer shows and adds new ones.
-- A setting's text (name, category, description) lives once in setting_texts, shared by every
-- tenant and every version, so a value that changes costs a small row, not its description again.
CREATE TABLE IF NOT EXISTS setting_texts (
  text_id INTEGER NOT NULL,                 -- small: versions store it, and small ids pack into few bits
  text_hash UBIGINT NOT NULL,               -- hash of the text columns, to find a text (collisions are checked)
  setting_id VARCHAR, setting_name VARCHAR, category VARCHAR, description VARCHAR,
  value_type VARCHAR, is_secret BOOLEAN
);
-- v7: the open setting rows (every tenant's current snapshot) apart from the closed ones, so reading
-- current rows costs one snapshot however long the history. valid_to_run is always NULL here: the
-- table has the shape of every version table.
CREATE TABLE IF NOT EXISTS setting_current (
  tenant_id VARCHAR NOT NULL,
  {_VERSION_COLS_SQL},                      -- configured: False = the portal's "Not configured"
  text_id INTEGER NOT NULL,
  type_key VARCHAR,                         -- the policy type (graph.policy_types) the row was read as
  valid_from_run BIGINT NOT NULL,
  valid_to_run BIGINT
);
-- a closed version: its key, its value, its range (setting_versions, created after the migrations,
-- rebuilds every version in setting_current's shape)
CREATE TABLE IF NOT EXISTS setting_keys (
  key_id INTEGER NOT NULL,
  {", ".join(f"{c} {'INTEGER' if c == 'text_id' else 'VARCHAR'}" for c in _KEY_COLUMNS)}
);
CREATE TABLE IF NOT EXISTS setting_values (
  value_id INTEGER NOT NULL,
  {", ".join(f"{c} VARCHAR" for c in _VALUE_COLUMNS)}
);
CREATE TABLE IF NOT EXISTS setting_history (
  key_id INTEGER NOT NULL,
  value_id INTEGER NOT NULL,
  configured BOOLEAN,
  valid_from_run BIGINT NOT NULL,
  valid_to_run BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS policy_versions (
  tenant_id VARCHAR NOT NULL,
  policy_id VARCHAR, policy_name VARCHAR, policy_type VARCHAR, odata_type VARCHAR, platform VARCHAR,
  raw_json VARCHAR,                         -- the policy as Graph returned it, secrets masked
  type_key VARCHAR,
  valid_from_run BIGINT NOT NULL,
  valid_to_run BIGINT
);
CREATE TABLE IF NOT EXISTS assignment_versions (
  tenant_id VARCHAR NOT NULL,
  {_ASSIGN_COLS_SQL},
  type_key VARCHAR,
  valid_from_run BIGINT NOT NULL,
  valid_to_run BIGINT
);
CREATE TABLE IF NOT EXISTS setting_definitions (
  definition_id VARCHAR PRIMARY KEY,
  definition_json VARCHAR NOT NULL,
  fetched_at TIMESTAMPTZ NOT NULL
);
-- v2: per run and policy type, read or not; rows of a type not read are carried from a good run
CREATE TABLE IF NOT EXISTS run_types (
  run_id BIGINT NOT NULL,
  tenant_id VARCHAR NOT NULL,
  type_key VARCHAR NOT NULL,
  family VARCHAR NOT NULL,
  label VARCHAR NOT NULL,
  status VARCHAR NOT NULL,                  -- read | carried | skipped (not read, nothing to carry)
  reason VARCHAR,                           -- forbidden | unavailable | failed
  message VARCHAR,
  carried_from_run BIGINT,
  carried_policies INTEGER,
  carried_settings INTEGER
);
CREATE TABLE IF NOT EXISTS tenant_aliases (
  alias VARCHAR PRIMARY KEY,                -- another key of the tenant (a domain it was added by)
  tenant_id VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS unknown_definitions (
  definition_id VARCHAR PRIMARY KEY,        -- ids Graph did not know when asked: not asked again
  checked_at TIMESTAMPTZ NOT NULL
);
-- who asked for the run: manual (a person: app or CLI) | schedule (the periodic task); alerts follow schedule
ALTER TABLE sync_runs ADD COLUMN IF NOT EXISTS trigger VARCHAR DEFAULT 'manual';
-- when the run's queue message was sent (NULL: being queued, or never queued: imports run in place);
-- the orphan repair only re-sends a queued run whose message was sent and is gone (tenantpilot/ops/queue.py)
ALTER TABLE sync_runs ADD COLUMN IF NOT EXISTS sent_at TIMESTAMPTZ;
-- the reuse rule (tenantpilot/sync/reuse.py): how many policies the run kept unread because the audit log
-- shows them unchanged (NULL/0: a full read), the audit window's start, and the start of the last full read
ALTER TABLE sync_runs ADD COLUMN IF NOT EXISTS reused_policies INTEGER;
ALTER TABLE sync_runs ADD COLUMN IF NOT EXISTS reused_since TIMESTAMPTZ;
ALTER TABLE sync_runs ADD COLUMN IF NOT EXISTS full_read_at TIMESTAMPTZ;
-- names of the groups and assignment filters a tenant's assignments point to (graph/directory.py)
CREATE TABLE IF NOT EXISTS directory_names (
  tenant_id VARCHAR NOT NULL,
  kind VARCHAR NOT NULL,                    -- group | filter
  object_id VARCHAR NOT NULL,
  display_name VARCHAR NOT NULL,
  fetched_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (tenant_id, kind, object_id)
);
-- the deviation register (tenantpilot/analysis/deviations.py): a tenant may differ from a baseline on one compare
-- key (policy_type, scope, setting_key) for a reason, until expires_on; removed ones are kept, marked
CREATE SEQUENCE IF NOT EXISTS deviation_seq START 1;
CREATE TABLE IF NOT EXISTS deviations (
  deviation_id BIGINT PRIMARY KEY,
  tenant_id VARCHAR NOT NULL,
  baseline_id VARCHAR NOT NULL,
  policy_type VARCHAR NOT NULL,
  scope VARCHAR NOT NULL,
  setting_key VARCHAR NOT NULL,
  setting_name VARCHAR,
  reason VARCHAR NOT NULL,
  owner VARCHAR NOT NULL,
  expires_on DATE NOT NULL,
  created_at TIMESTAMPTZ NOT NULL,
  removed_at TIMESTAMPTZ
);
-- schedules (tenantpilot/ops/schedule.py): a tenant's own cron or 'off' (schedule NULL or no row: the
-- global TENANTPILOT_SYNC_SCHEDULE), and the last slot the consumer's periodic task fired for it
CREATE TABLE IF NOT EXISTS tenant_schedules (
  tenant_id VARCHAR PRIMARY KEY,
  schedule VARCHAR,                          -- cron | off | NULL (the global schedule)
  schedule_set_at TIMESTAMPTZ,               -- when `schedule` was set: slots before it never fire
  last_slot TIMESTAMPTZ,                     -- the last slot fired (a missed slot fires once, then this)
  last_fired_at TIMESTAMPTZ,
  last_run_id BIGINT
);
-- Intune audit events (graph/audit.py), only the fields who-changed-it needs: no modifiedProperties
CREATE TABLE IF NOT EXISTS audit_events (
  tenant_id VARCHAR NOT NULL,
  event_id VARCHAR NOT NULL,
  activity_time TIMESTAMPTZ,
  actor_upn VARCHAR,
  actor_app VARCHAR,
  actor_type VARCHAR,
  activity VARCHAR,
  activity_type VARCHAR,
  operation_type VARCHAR,
  component VARCHAR,
  resource_ids VARCHAR[],
  resources VARCHAR,                         -- JSON list of objects: resourceId, displayName, type
  run_id BIGINT,                             -- the sync that read it
  PRIMARY KEY (tenant_id, event_id)
);
CREATE OR REPLACE VIEW current_runs AS
  SELECT tenant_id, max(run_id) AS run_id FROM sync_runs
  WHERE status IN ('succeeded', 'partial') GROUP BY tenant_id;
{_VIEWS}"""

# every setting version in one shape, for history reads (a view: v6 files hold a table of that name
# until migration 7 splits it)
_AFTER_MIGRATIONS = f"CREATE OR REPLACE VIEW setting_versions AS {_setting_versions_sql()};"

_SCHEMAS = {"policies": POLICY_SCHEMA, "settings": SETTING_SCHEMA, "assignments": ASSIGNMENT_SCHEMA}
