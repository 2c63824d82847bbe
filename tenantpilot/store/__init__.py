"""DuckDB storage: the only code that opens the database file.

Model: every sync run writes what changed since the tenant's current snapshot and flips the run to
succeeded/partial in ONE transaction. A row is stored once and is valid over a range of the tenant's
runs (valid_from_run <= run < valid_to_run). A tenant's *current* snapshot is its latest succeeded or
partial run, so a failed run leaves the previous snapshot current, and a policy deleted in Intune
disappears from current because the new snapshot simply does not have it. The open setting rows
(the current snapshots) live apart from the closed ones (`setting_current`, `setting_history`), so
the pages read exactly one snapshot's rows however long the history; history older than
TENANTPILOT_HISTORY_DAYS is dropped.

Honest partial runs: a run records, per policy type, whether Graph let us read it (`run_types`).
A type it could not read (403, 5xx after retries, not served in this cloud) keeps its last good
rows: they stay open, and the views show them in the new run with `carried_from_run` set to the
run that really read them, so they read as carried forward, never as deleted. A deletion is only
what Graph showed as gone (the type's list answered without the policy).

Tenant keys are normalised here (tenantpilot.tenants.tenant_key), whatever the caller passed.
A tenant added by a domain is re-keyed to its GUID once a sync learns it; the domain becomes an
alias (`tenant_aliases`), so adding it again finds the existing tenant.

Concurrency: DuckDB lets one process hold the file read-write and then no other process may open
it at all. So every open is short-lived and retries the lock error with jittered backoff; inside
one process opens are serialised (DuckDB refuses a read-only and a read-write handle on the
same file in one process at the same time).
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from tenantpilot.flatten import secrets
from tenantpilot.flatten.schema import ASSIGNMENT_SCHEMA, NO_SETTINGS, POLICY_SCHEMA, SETTING_SCHEMA
from tenantpilot.store.access import ACCESS_DDL, AccessStore
from tenantpilot.tenants import is_guid, tenant_key

if TYPE_CHECKING:
    from tenantpilot.analysis.deviations import NewDeviation
    from tenantpilot.config import Settings
    from tenantpilot.sync.snapshot import Parts

SCHEMA_VERSION = 7  # the last step of MIGRATIONS (bottom of this module)
ACTIVE = ("queued", "running")
MEMORY_LIMIT = "1GB"  # per connection; DuckDB spills to disk beyond it
ALIGNMENT_BATCH = 25  # (tenant run, baseline run) pairs per alignment query
DONE_OK = ("succeeded", "partial")


class StoreError(RuntimeError):
    """Base class of storage errors; the message says what to do."""


class StoreBusy(StoreError):
    """The database stayed locked by another process longer than the retry budget."""


class NotFound(StoreError):
    pass


@dataclass(frozen=True)
class TypeOutcome:
    """What one sync run did with one policy type: read it, or could not (then its rows are carried)."""

    key: str  # the policy type (graph.policy_types key)
    family: str  # the policy family its rows have in `policy_type`
    label: str
    read: bool
    reason: str = ""  # forbidden | unavailable | failed (when not read)
    message: str = ""


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


# where the text columns of the current rows can be searched once per text (explore.filters_sql `texts`)
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
-- per (tenant run, baseline run): the alignment the all-tenants overview reads (compare's rules)
CREATE TABLE IF NOT EXISTS alignments (
  run_id BIGINT NOT NULL,
  baseline_run_id BIGINT NOT NULL,
  baseline_settings BIGINT, matched BIGINT, differing BIGINT, missing BIGINT, extra BIGINT,
  PRIMARY KEY (run_id, baseline_run_id)
);
-- who asked for the run: manual (a person: app or CLI) | schedule (the periodic task); alerts follow schedule
ALTER TABLE sync_runs ADD COLUMN IF NOT EXISTS trigger VARCHAR DEFAULT 'manual';
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
_process_lock = threading.RLock()
_initialised: set[str] = set()
_sessions = threading.local()  # path -> the connection a Store.reading() block shares (this thread)


def _one(cursor: duckdb.DuckDBPyConnection) -> tuple | None:
    """First row, consuming the result (duckdb 2 refuses register() while a result is unfinished)."""
    rows = cursor.fetchall()
    return rows[0] if rows else None


def _scalar(cursor: duckdb.DuckDBPyConnection) -> Any:
    """The one value of a query that always returns one row (count(*), nextval)."""
    row = _one(cursor)
    if row is None:
        raise StoreError("the database returned no row where one was certain")
    return row[0]


def _rollback(con: duckdb.DuckDBPyConnection, cause: BaseException) -> None:
    """Roll back, keeping the original error: a failed rollback (a full disk: "cannot rollback - no
    transaction is active") must never replace the cause the user needs to see."""
    try:
        con.execute("ROLLBACK")
    except duckdb.Error as exc:
        cause.add_note(f"(the rollback failed too: {exc})")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "lock" in text.lower() and ("Could not set lock" in text or "Conflicting lock" in text)


@dataclass(frozen=True)
class AddResult:
    tenant_id: str  # the tenant the key belongs to now
    outcome: str  # added | renamed | alias (the key is a domain of tenant_id: nothing was added)


@dataclass
class Store(AccessStore):
    """Handle on one DuckDB file. Cheap to create; holds no open connection."""

    path: Path
    lock_timeout_s: float = 60.0
    history_days: int = 400  # history older than this is dropped at each snapshot write

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    # -- connections -------------------------------------------------------------------------
    @contextmanager
    def reading(self) -> Iterator[None]:
        """The reads inside share one connection (opening the file costs ~20 ms: a report or a page
        that makes a dozen reads opens it once). Nothing inside may write."""
        key = str(self.path)
        shared = getattr(_sessions, "open", {})
        if key in shared:
            yield
            return
        with self.connect() as con:
            _sessions.open = {**shared, key: con}
            try:
                yield
            finally:
                _sessions.open = shared

    @contextmanager
    def connect(self, *, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the file for one short unit of work, retrying the cross-process lock (inside
        Store.reading(): its connection)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        key = str(self.path)
        shared = getattr(_sessions, "open", {}).get(key)
        if shared is not None:
            if write:
                raise StoreError("a write inside Store.reading(): the shared connection is for reads")
            yield shared
            return
        with _process_lock:
            if not self.path.exists():
                self._create()
            if key not in _initialised:
                write = True  # first open in this process migrates the schema
            read_only = not write and self.path.exists()
            deadline = time.monotonic() + self.lock_timeout_s
            delay = 0.005
            while True:
                try:
                    con = duckdb.connect(key, read_only=read_only)
                    break
                except (duckdb.IOException, duckdb.ConnectionException) as exc:
                    if not _is_lock_error(exc):
                        raise StoreError(f"Cannot open database {self.path}: {exc}") from exc
                    if time.monotonic() > deadline:
                        raise StoreBusy(
                            f"Database {self.path} stayed locked by another process for "
                            f"{self.lock_timeout_s:.0f}s; try again, or check for a stuck process"
                        ) from exc
                    time.sleep(delay * (0.5 + random.random()))
                    delay = min(delay * 1.6, 0.25)
            try:
                # DuckDB's default is 80 % of RAM per process; the app and the worker share a machine
                con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
                if key not in _initialised and not read_only:
                    self._migrate(con)
                    _initialised.add(key)
                yield con
            finally:
                con.close()

    def _create(self) -> None:
        """Create the database whole, or leave it to the process that won: the schema is built in a
        file of this process's own, then linked into place (atomic; fails if the name exists). DuckDB
        creating the file in place left a moment in which another process (a consumer starting beside
        a CLI) found the file but no database in it and failed with "not a valid DuckDB database"."""
        draft = self.path.with_name(f".{self.path.name}.{os.getpid()}-{threading.get_ident()}.creating")
        draft.unlink(missing_ok=True)
        try:
            with closing(duckdb.connect(str(draft))) as con:
                self._migrate(con)
            try:
                os.link(draft, self.path)
            except FileExistsError:
                pass  # another process created it first: its database is the one
        except (duckdb.Error, OSError) as exc:
            raise StoreError(f"Cannot create database {self.path}: {exc}") from exc
        finally:
            draft.unlink(missing_ok=True)
            draft.with_name(draft.name + ".wal").unlink(missing_ok=True)

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute(DDL)
        run_migrations(con)
        con.execute(_AFTER_MIGRATIONS)
        con.execute(ACCESS_DDL)  # tenantpilot/store/access.py
        con.execute(
            "INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [str(SCHEMA_VERSION)],
        )

    # -- tenants -----------------------------------------------------------------------------
    def add_tenant(self, tenant_id: str, display_name: str, kind: str = "tenant") -> AddResult:
        """Add a tenant, or rename it when it exists. A key that is another tenant's alias (a
        domain of a tenant already known by its GUID) adds nothing and says whose it is."""
        key = tenant_key(tenant_id) if kind != "baseline" else tenant_id
        with self.connect(write=True) as con:
            con.execute("BEGIN")
            owner = _one(con.execute("SELECT tenant_id FROM tenant_aliases WHERE alias = ?", [key]))
            if owner:
                con.execute("COMMIT")
                return AddResult(str(owner[0]), "alias")
            existed = _one(con.execute("SELECT 1 FROM tenants WHERE tenant_id = ?", [key])) is not None
            con.execute(
                "INSERT INTO tenants VALUES (?, ?, ?, ?) ON CONFLICT (tenant_id) DO UPDATE "
                "SET display_name = excluded.display_name",
                [key, display_name, kind, _now()],
            )
            con.execute("COMMIT")
        return AddResult(key, "renamed" if existed else "added")

    def remove_tenant(self, tenant_id: str) -> bool:
        """Delete a tenant and all its data; False when it did not exist."""
        key = tenant_key(tenant_id)
        with self.connect(write=True) as con:
            con.execute("BEGIN")
            found = _scalar(con.execute("SELECT count(*) FROM tenants WHERE tenant_id = ?", [key]))
            con.execute("DELETE FROM setting_history WHERE key_id IN (SELECT key_id FROM setting_keys "
                        "WHERE tenant_id = ?)", [key])
            texts = [r[0] for r in con.execute("DELETE FROM setting_current WHERE tenant_id = ? RETURNING text_id",
                                               [key]).fetchall()]
            for table in ("policy_versions", "assignment_versions", "run_types", "sync_runs", "tenant_aliases",
                          "directory_names", "deviations", "tenant_schedules",
                          "audit_events", "tenant_group_members", "tenants"):
                con.execute(f"DELETE FROM {table} WHERE tenant_id = ?", [key])
            con.execute("DELETE FROM deviations WHERE baseline_id = ?", [key])
            _drop_unused_history(con, key)
            _drop_unused_texts(con, texts)
            con.execute("COMMIT")
        return bool(found)

    def tenants(self) -> pl.DataFrame:
        """Every tenant with the run its data on screen comes from (`current_run_id`, `data_as_of`)
        and, apart from that, its latest run (`last_run_*`), which may have failed."""
        with self.connect() as con:
            return con.sql(
                """WITH latest AS (
                     SELECT tenant_id, max(run_id) AS run_id FROM sync_runs
                     WHERE status NOT IN ('pruned') GROUP BY tenant_id)
                   SELECT t.tenant_id, t.display_name, t.kind, t.added_at,
                          c.run_id AS current_run_id, r.finished_at AS data_as_of, r.status AS current_status,
                          r.setting_count,
                          l.run_id AS last_run_id, lr.status AS last_status, lr.error AS last_error,
                          coalesce(lr.finished_at, lr.started_at, lr.queued_at) AS last_run_at,
                          r.finished_at AS last_synced,
                          (SELECT list(alias ORDER BY alias) FROM tenant_aliases a WHERE a.tenant_id = t.tenant_id)
                            AS aliases
                   FROM tenants t LEFT JOIN current_runs c USING (tenant_id)
                   LEFT JOIN sync_runs r ON r.run_id = c.run_id
                   LEFT JOIN latest l ON l.tenant_id = t.tenant_id
                   LEFT JOIN sync_runs lr ON lr.run_id = l.run_id
                   ORDER BY t.kind, lower(t.display_name)"""
            ).pl()

    def get_tenant(self, tenant_id: str) -> dict[str, Any] | None:
        key = tenant_key(tenant_id)
        with self.connect() as con:
            row = _one(con.execute(
                "SELECT t.tenant_id, t.display_name, t.kind FROM tenants t WHERE t.tenant_id = ? "
                "OR t.tenant_id = (SELECT tenant_id FROM tenant_aliases WHERE alias = ?)", [key, key]
            ))
        return dict(zip(("tenant_id", "display_name", "kind"), row)) if row else None

    def resolve_tenant_guid(self, tenant_id: str, guid: str) -> str:
        """A tenant known by a domain is re-keyed to the GUID a sync learned (token `tid`); the
        domain stays as an alias. When the GUID tenant already exists, the two become one: the
        domain tenant's runs and rows move to it. Returns the key to use from now on."""
        old, new = tenant_key(tenant_id), tenant_key(guid)
        if old == new or is_guid(old) or not is_guid(new):
            return old
        with self.connect(write=True) as con:
            con.execute("BEGIN")
            if _one(con.execute("SELECT 1 FROM tenants WHERE tenant_id = ?", [old])) is None:
                con.execute("ROLLBACK")
                return old
            if not _one(con.execute("SELECT 1 FROM tenants WHERE tenant_id = ?", [new])):
                con.execute("INSERT INTO tenants SELECT ?, display_name, kind, added_at FROM tenants "
                            "WHERE tenant_id = ?", [new, old])
            con.execute("DELETE FROM directory_names WHERE tenant_id = ?", [old])  # ids of a domain key: re-read
            for table in (*_VERSIONS.values(), "run_types", "sync_runs", "tenant_aliases", "deviations"):
                con.execute(f"UPDATE {table} SET tenant_id = ? WHERE tenant_id = ?", [new, old])
            self._rekey_schedule_and_audit(con, old, new)
            con.execute("DELETE FROM tenants WHERE tenant_id = ?", [old])
            con.execute("INSERT INTO tenant_aliases VALUES (?, ?) ON CONFLICT (alias) DO UPDATE "
                        "SET tenant_id = excluded.tenant_id", [old, new])
            con.execute("COMMIT")
        return new

    # -- runs --------------------------------------------------------------------------------
    def create_run_unless_active(self, tenant_id: str, source: str = "graph",
                                 trigger: str = "manual") -> tuple[int, bool]:
        """Atomically return the tenant's queued/running run, or create a queued one.

        `trigger`: manual | schedule (who asked; an existing active run keeps its own).

        Atomic across processes: the read-write open holds DuckDB's exclusive file lock.
        """
        tenant_id = tenant_key(tenant_id) if not tenant_id.startswith("baseline:") else tenant_id
        with self.connect(write=True) as con:
            con.execute("BEGIN")
            alias = _one(con.execute("SELECT tenant_id FROM tenant_aliases WHERE alias = ?", [tenant_id]))
            if alias:
                tenant_id = str(alias[0])
            if not _one(con.execute("SELECT 1 FROM tenants WHERE tenant_id = ?", [tenant_id])):
                con.execute("ROLLBACK")
                raise NotFound(f"Unknown tenant {tenant_id!r}: add it first (tenants add)")
            row = _one(con.execute(
                "SELECT run_id FROM sync_runs WHERE tenant_id = ? AND status IN ('queued','running') "
                "ORDER BY run_id DESC LIMIT 1",
                [tenant_id],
            ))
            if row:
                con.execute("COMMIT")
                return int(row[0]), False
            run_id = _scalar(con.execute("SELECT nextval('run_seq')"))
            con.execute(
                "INSERT INTO sync_runs (run_id, tenant_id, status, queued_at, source, trigger) "
                "VALUES (?, ?, 'queued', ?, ?, ?)",
                [run_id, tenant_id, _now(), source, trigger],
            )
            con.execute("COMMIT")
            return int(run_id), True

    def start_run(self, run_id: int) -> dict[str, Any] | None:
        """queued -> running. Returns the run (with tenant) or None if it is not queued any more."""
        with self.connect(write=True) as con:
            row = _one(con.execute(
                "UPDATE sync_runs SET status = 'running', started_at = ? WHERE run_id = ? AND status = 'queued' "
                "RETURNING run_id, tenant_id",
                [_now(), run_id],
            ))
        return {"run_id": row[0], "tenant_id": row[1]} if row else None

    def fail_run(self, run_id: int, error: str, *, request_count: int | None = None,
                 warnings: Sequence[str] = (), lock_timeout_s: float | None = None) -> None:
        """Mark a queued/running run failed with its cause. Raises StoreBusy if the file stays locked
        past `lock_timeout_s` (default: the store's own budget)."""
        store = self if lock_timeout_s is None else replace(self, lock_timeout_s=lock_timeout_s)
        with store.connect(write=True) as con:
            con.execute(
                "UPDATE sync_runs SET status = 'failed', finished_at = ?, error = ?, "
                "request_count = coalesce(?, request_count), warnings = ? WHERE run_id = ? AND status IN ('queued','running')",
                [_now(), error[:4000], request_count, json.dumps(list(warnings)), run_id],
            )

    def fail_runs(self, run_ids: Sequence[int], error: str) -> None:
        for run_id in run_ids:
            self.fail_run(run_id, error)

    def get_run(self, run_id: int) -> dict[str, Any] | None:
        runs = self.runs(run_ids=[run_id])
        return runs.row(0, named=True) if runs.height else None

    def runs(self, tenant_id: str | None = None, *, run_ids: Sequence[int] | None = None,
             statuses: Sequence[str] | None = None, limit: int = 200) -> pl.DataFrame:
        where: list[str] = []
        args: list[Any] = []
        if tenant_id:
            key = tenant_id if tenant_id.startswith("baseline:") else tenant_key(tenant_id)
            where.append("r.tenant_id = coalesce((SELECT a.tenant_id FROM tenant_aliases a WHERE a.alias = ?), ?)")
            args.extend([key, key])
        if run_ids is not None:
            where.append(f"r.run_id IN ({','.join('?' * len(run_ids)) or 'NULL'})")
            args.extend(run_ids)
        if statuses:
            where.append(f"r.status IN ({','.join('?' * len(statuses))})")
            args.extend(statuses)
        sql = f"""SELECT r.run_id, r.tenant_id, t.display_name, r.status, r.queued_at, r.started_at, r.finished_at,
                         date_diff('millisecond', r.started_at, r.finished_at) / 1000.0 AS duration_s,
                         r.policy_count, r.setting_count, r.request_count, r.warnings, r.error, r.source,
                         r.trigger
                  FROM sync_runs r LEFT JOIN tenants t USING (tenant_id)
                  {'WHERE ' + ' AND '.join(where) if where else ''}
                  ORDER BY r.run_id DESC LIMIT {int(limit)}"""
        with self.connect() as con:
            return con.sql(sql, params=args or None).pl()

    def write_snapshot(
        self,
        run_id: int,
        tenant_id: str,
        *,
        policies: pl.DataFrame | None = None,
        settings: pl.DataFrame | None = None,
        assignments: pl.DataFrame | None = None,
        parts: Parts | None = None,
        status: str,
        request_count: int | None,
        warnings: Sequence[str] = (),
        types: Sequence[TypeOutcome] = (),
        type_of: Mapping[str, str] | None = None,
    ) -> dict[str, int]:
        """Write one complete snapshot and mark the run done, all in one transaction.

        The rows come as frames (small snapshots) or as Parquet `parts` (syncs: flattened to disk
        first, so memory stays bounded and the file lock is held only for the bulk insert).
        Only what changed is written: rows the tenant's current snapshot has and this one does not are
        closed (valid_to_run = this run), rows it does not have yet are added; unchanged rows stay.
        `types` says, per policy type, whether this run read it; `type_of` maps policy id to type.
        Every type not read keeps its current rows, which this run then shows as carried forward.
        History older than the store's `history_days` is dropped. Returns the counts of the snapshot (carried rows
        included), `carried_settings`, and `changed_settings` (rows closed + rows added)."""
        if status not in DONE_OK:
            raise ValueError(status)
        finished = _now()
        given = {"policies": policies, "settings": settings, "assignments": assignments}
        frames = {k: (v if v is not None else pl.DataFrame(schema=_SCHEMAS[k])) for k, v in given.items()}
        types_frame = pl.DataFrame({"policy_id": list(type_of or {}), "type_key": list((type_of or {}).values())},
                                   schema={"policy_id": pl.String, "type_key": pl.String})
        with self.connect(write=True) as con:
            # bounded memory for bulk inserts; DuckDB spills to disk beyond this
            con.execute("SET memory_limit = '512MB'")
            con.execute("SET preserve_insertion_order = false")
            con.execute("BEGIN")
            try:
                state = _one(con.execute("SELECT status FROM sync_runs WHERE run_id = ?", [run_id]))
                if not state or state[0] not in ACTIVE:
                    raise StoreError(f"Run {run_id} is no longer active ({state[0] if state else 'missing'}); "
                                     "its results were discarded")
                previous = _one(con.execute("SELECT run_id FROM current_runs WHERE tenant_id = ?", [tenant_id]))
                con.register("_types", types_frame.to_arrow())
                kept = self._kept_types(types)
                changed = 0
                for kind in _VERSIONS:
                    if parts is not None:
                        files = parts.files(kind)
                        source = "read_parquet(?)" if files else None
                        source_args: list[Any] = [files] if files else []
                    else:
                        source = "_frame" if frames[kind].height else None
                        source_args = []
                        if source:
                            con.register("_frame", frames[kind].to_arrow())
                    n_changed = self._write_versions(con, kind, run_id, tenant_id, source, source_args, kept)
                    changed += n_changed if kind == "settings" else 0
                    if source == "_frame":
                        con.unregister("_frame")
                con.unregister("_types")
                carried = self._record_types(con, run_id, tenant_id, types, int(previous[0]) if previous else None)
                totals = {kind: _scalar(con.execute(f"SELECT count(*) FROM {_VERSIONS[kind]} WHERE tenant_id = ? "
                                                    "AND valid_to_run IS NULL", [tenant_id]))
                          for kind in ("policies", "settings")}
                con.execute(
                    "UPDATE sync_runs SET status = ?, finished_at = ?, policy_count = ?, setting_count = ?, "
                    "request_count = ?, warnings = ?, error = NULL WHERE run_id = ?",
                    [status, finished, totals["policies"], totals["settings"], request_count,
                     json.dumps(list(warnings)), run_id],
                )
                self._retain(con, tenant_id, self.history_days)
                con.execute("COMMIT")
            except BaseException as exc:
                _rollback(con, exc)
                raise
        return {"policies": int(totals["policies"]), "settings": int(totals["settings"]),
                "carried_settings": carried, "changed_settings": changed}

    @staticmethod
    def _kept_types(types: Sequence[TypeOutcome], only: TypeOutcome | None = None) -> str:
        """SQL over `v` (a version row): the rows of the types this run did not read (or of `only`),
        which stay as they are. Rows stored before types were recorded have no type_key: they match by
        family when the family has this one type only among all the run's `types`."""
        unread = [only] if only is not None else [t for t in types if not t.read]
        if not unread:
            return "FALSE"
        per_family: dict[str, int] = {}
        for t in types:
            per_family[t.family] = per_family.get(t.family, 0) + 1
        keys = ", ".join(_quote(t.key) for t in unread)
        legacy = ", ".join(_quote(t.family) for t in unread if per_family.get(t.family, 1) == 1) or "NULL"
        return f"(v.type_key IN ({keys}) OR (v.type_key IS NULL AND v.policy_type IN ({legacy})))"

    @staticmethod
    def _write_versions(con: duckdb.DuckDBPyConnection, kind: str, run_id: int, tenant_id: str,
                        source: str | None, source_args: list[Any], kept: str) -> int:
        """Close the tenant's current rows of `kind` that the new snapshot does not have (except kept
        types), add the new snapshot's rows that are not current yet. Returns rows closed + added."""
        table = _VERSIONS[kind]
        schema = _SCHEMAS[kind]
        cols = ", ".join(f"n.{c}" for c in schema)
        if source is None:
            con.execute(f"CREATE OR REPLACE TEMP TABLE _new AS SELECT * FROM {table} WHERE FALSE")
        elif kind == "settings":
            con.execute(f"""CREATE OR REPLACE TEMP TABLE _staged AS
                SELECT {cols}, {_hash(TEXT_COLUMNS)} AS text_hash
                FROM {source} n""", source_args)
            _add_texts(con, "_staged")
            vcols = ", ".join(f"n.{c}" for c in VERSION_COLUMNS)
            con.execute(f"""CREATE OR REPLACE TEMP TABLE _new AS
                SELECT ? AS tenant_id, {vcols}, x.text_id, t.type_key, {int(run_id)} AS valid_from_run,
                       NULL::BIGINT AS valid_to_run
                FROM _staged n JOIN setting_texts x ON x.text_hash = n.text_hash
                LEFT JOIN _types t ON t.policy_id = n.policy_id""", [tenant_id])
            con.execute("DROP TABLE _staged")
        else:
            distinct = "DISTINCT" if kind == "assignments" else ""  # identical assignment rows are one fact
            con.execute(f"""CREATE OR REPLACE TEMP TABLE _new AS
                SELECT {distinct} ? AS tenant_id, {cols}, t.type_key,
                       {int(run_id)} AS valid_from_run, NULL::BIGINT AS valid_to_run
                FROM {source} n LEFT JOIN _types t ON t.policy_id = n.policy_id""", [tenant_id, *source_args])
        # the same row: same policy (and key), same content (compared by hash: the rows are not rewritten)
        same = ("n.policy_id IS NOT DISTINCT FROM v.policy_id"
                + (" AND n.setting_key IS NOT DISTINCT FROM v.setting_key" if kind == "settings" else "")
                + f" AND {_hash(_IDENTITY[kind], 'n')} = {_hash(_IDENTITY[kind], 'v')}")
        gone = f"v.tenant_id = ? AND v.valid_to_run IS NULL AND NOT {kept} AND NOT EXISTS (SELECT 1 FROM _new n WHERE {same})"
        added_sql = (f"SELECT n.* FROM _new n WHERE NOT EXISTS (SELECT 1 FROM {table} v WHERE v.tenant_id = n.tenant_id "
                     f"AND v.valid_to_run IS NULL AND {same})")
        # DuckDB answers an UPDATE, DELETE or INSERT with the number of rows it touched
        if kind == "settings":
            closed, added = Store._replace_settings(con, run_id, tenant_id, gone, added_sql)
        else:
            closed = _scalar(con.execute(f"UPDATE {table} v SET valid_to_run = {int(run_id)} WHERE {gone}",
                                         [tenant_id]))
            added = _scalar(con.execute(f"INSERT INTO {table} {added_sql}"))
        con.execute("DROP TABLE _new")
        return int(closed) + int(added)

    @staticmethod
    def _replace_settings(con: duckdb.DuckDBPyConnection, run_id: int, tenant_id: str, gone: str,
                          added_sql: str) -> tuple[int, int]:
        """The setting rows of `gone` (SQL over `v`) leave setting_current for the history (key, value,
        range); the rows of `added_sql` come in. A new version of the same setting (policy, key) takes
        its old row's place, so a tenant's rows stay together in the file however many days change
        them, and a read of a few tenants keeps skipping the other tenants' row groups. Returns (closed,
        added)."""
        table = _VERSIONS["settings"]
        con.execute(f"CREATE OR REPLACE TEMP TABLE _closed AS SELECT v.rowid AS rid, v.* REPLACE "
                    f"({int(run_id)}::BIGINT AS valid_to_run) FROM {table} v WHERE {gone}", [tenant_id])
        con.execute(f"CREATE OR REPLACE TEMP TABLE _added AS SELECT row_number() OVER () AS aid, a.* FROM ({added_sql}) a")
        _close_settings(con, "_closed")
        rank = "row_number() OVER (PARTITION BY policy_id, setting_key ORDER BY {0}) AS k"
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _in_place AS
            SELECT c.rid, a.* FROM (SELECT rid, policy_id, setting_key, {rank.format('rid')} FROM _closed) c
            JOIN (SELECT *, {rank.format('aid')} FROM _added) a ON a.policy_id IS NOT DISTINCT FROM c.policy_id
              AND a.setting_key IS NOT DISTINCT FROM c.setting_key AND a.k = c.k""")
        columns = [c for c in _VERSION_SHAPE if c != "tenant_id"]
        con.execute(f"UPDATE {table} v SET {', '.join(f'{c} = p.{c}' for c in columns)} "
                    "FROM _in_place p WHERE v.rowid = p.rid")
        con.execute(f"DELETE FROM {table} WHERE rowid IN (SELECT rid FROM _closed) "
                    "AND rowid NOT IN (SELECT rid FROM _in_place)")
        con.execute(f"INSERT INTO {table} SELECT {', '.join(_VERSION_SHAPE)} FROM _added "
                    "WHERE aid NOT IN (SELECT aid FROM _in_place)")
        counts = con.execute("SELECT (SELECT count(*) FROM _closed), (SELECT count(*) FROM _added)").fetchone()
        for temp in ("_closed", "_added", "_in_place"):
            con.execute(f"DROP TABLE {temp}")
        return (int(counts[0]), int(counts[1])) if counts else (0, 0)

    @staticmethod
    def _record_types(con: duckdb.DuckDBPyConnection, run_id: int, tenant_id: str,
                      types: Sequence[TypeOutcome], prev_run: int | None) -> int:
        """Record per type what the run did: read, carried (its current rows stay, from the run that
        really read them) or skipped (not read and nothing to carry). Returns the carried settings."""
        carried_settings = 0
        for t in types:
            status, source, n_pol, n_set = ("read", None, 0, 0)
            if not t.read:
                status = "skipped"
                kept = Store._kept_types(types, only=t)
                n_pol = _scalar(con.execute(f"SELECT count(*) FROM policy_versions v WHERE v.tenant_id = ? "
                                            f"AND v.valid_to_run IS NULL AND {kept}", [tenant_id]))
                if n_pol and prev_run is not None:
                    n_set = _scalar(con.execute(f"SELECT count(*) FROM setting_current v WHERE v.tenant_id = ? "
                                                f"AND v.valid_to_run IS NULL AND {kept}", [tenant_id]))
                    before = _one(con.execute("SELECT status, carried_from_run FROM run_types WHERE run_id = ? "
                                              "AND type_key = ?", [prev_run, t.key]))
                    source = int(before[1]) if before and before[0] == "carried" and before[1] else prev_run
                    status = "carried"
                    carried_settings += int(n_set)
                else:
                    n_pol = 0
            con.execute("INSERT INTO run_types VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [run_id, tenant_id, t.key, t.family, t.label, status, t.reason or None, t.message or None,
                         source, int(n_pol), int(n_set)])
        if types:
            # rows stored before types were recorded: give them the type they were read as now
            con.execute("UPDATE setting_current v SET type_key = p.type_key FROM policy_versions p "
                        "WHERE v.tenant_id = ? AND v.valid_to_run IS NULL AND v.type_key IS NULL "
                        "AND p.tenant_id = v.tenant_id AND p.valid_to_run IS NULL AND p.policy_id = v.policy_id "
                        "AND p.type_key IS NOT NULL", [tenant_id])
        return carried_settings

    @staticmethod
    def _retain(con: duckdb.DuckDBPyConnection, tenant_id: str, history_days: int) -> None:
        """Drop the history no kept run needs: runs that finished more than `history_days` ago (never the
        current one) become 'pruned', and row versions valid only in pruned runs are deleted."""
        first_kept = _scalar(con.execute(
            "SELECT min(run_id) FROM sync_runs WHERE tenant_id = ? AND status IN ('succeeded', 'partial') "
            "AND (finished_at >= now() - to_days(?) OR run_id = (SELECT run_id FROM current_runs WHERE tenant_id = ?))",
            [tenant_id, int(history_days), tenant_id]))
        if first_kept is None:
            return
        old = _scalar(con.execute("SELECT count(*) FROM sync_runs WHERE tenant_id = ? AND run_id < ? "
                                  "AND status IN ('succeeded', 'partial')", [tenant_id, first_kept]))
        if not old:
            return
        con.execute("UPDATE sync_runs SET status = 'pruned' WHERE tenant_id = ? AND run_id < ? "
                    "AND status IN ('succeeded', 'partial')", [tenant_id, first_kept])
        dropped = _scalar(con.execute(
            "DELETE FROM setting_history WHERE valid_to_run <= ? AND key_id IN "
            "(SELECT key_id FROM setting_keys WHERE tenant_id = ?)", [first_kept, tenant_id]))
        for table in ("policy_versions", "assignment_versions"):
            con.execute(f"DELETE FROM {table} WHERE tenant_id = ? AND valid_to_run <= ?", [tenant_id, first_kept])
        if dropped:
            _drop_unused_history(con, tenant_id)

    def load_first_snapshots(self, con: duckdb.DuckDBPyConnection, kind: str, relation: str) -> None:
        """Bulk load (benchmarks, tools): the rows of `relation` (columns run_id, tenant_id and the kind's
        schema) become the first versions of runs already marked done, for tenants with no rows yet.
        Same text ids and row hashes as write_snapshot, so later syncs diff against them."""
        cols = ", ".join(f"n.{c}" for c in _SCHEMAS[kind])
        if kind == "settings":
            con.execute(f"CREATE OR REPLACE TEMP TABLE _staged AS SELECT n.*, {_hash(TEXT_COLUMNS)} AS text_hash "
                        f"FROM {relation} n")
            _add_texts(con, "_staged")
            con.execute(f"""INSERT INTO setting_current SELECT n.tenant_id, {', '.join(f'n.{c}' for c in VERSION_COLUMNS)},
                x.text_id, NULL, n.run_id, NULL FROM _staged n JOIN setting_texts x ON x.text_hash = n.text_hash""")
            con.execute("DROP TABLE _staged")
        else:
            con.execute(f"INSERT INTO {_VERSIONS[kind]} SELECT n.tenant_id, {cols}, NULL, n.run_id, NULL "
                        f"FROM {relation} n")

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
              columns: Sequence[str] | None = None) -> pl.DataFrame:
        """Rows of `kind` as of specific runs (None: each tenant's current run), with display names."""
        args: list[Any] = list(tenant_ids) if tenant_ids is not None else []
        chosen = f"tenant_id IN ({','.join('?' * len(args)) or 'NULL'})" if tenant_ids is not None else "TRUE"
        where = chosen.replace("tenant_id", "s.tenant_id", 1)
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
            names = dict(con.execute(f"SELECT tenant_id, display_name FROM tenants WHERE {chosen}", args).fetchall())
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
        condition on version columns only (explore.filters_sql with SEARCH_TEXTS) filters the versions
        before the joins that add texts and runs: 20 M rows are not joined to be thrown away.
        `versions_only`: the caller reads version columns only (counts, facets): no join at all (an
        open version is always a row of its tenant's current run)."""
        if cls._TEXT_REFERENCE.search(where):
            return f"(SELECT * FROM {cls._CURRENT} AND {where}) s WHERE TRUE"
        if versions_only:
            return f"{_VERSIONS['settings']} s WHERE s.valid_to_run IS NULL AND ({where})"
        return f"({_rows_sql('settings', None, prefilter=where)}) s WHERE TRUE"
    _ORDER = "t.display_name, s.tenant_id, s.policy_name, s.category, s.setting_name, s.setting_key, s.policy_id"

    def settings_tenant_counts(self, where: str, params: Sequence[Any]) -> list[tuple[str, int]]:
        """(tenant_id, matching current rows) in display order; no scan at all when nothing is filtered
        (each run knows its setting count)."""
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

    def settings_page(self, where: str, params: Sequence[Any], *, offset: int, limit: int,
                      counts: Sequence[tuple[str, int]] | None = None) -> pl.DataFrame:
        """One page of current setting rows matching `where` (SQL over `s`), in the stable display order
        (tenant, policy, category, setting). Only the tenants the page spans are read and sorted, so a
        page costs about one tenant's rows however many tenants there are (`counts`: from
        settings_tenant_counts, reused across pages)."""
        counts = self.settings_tenant_counts(where, params) if counts is None else counts
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

    def settings_matching(self, where: str, params: Sequence[Any]) -> pl.DataFrame:
        """Every current row matching `where` (exports of what is filtered; detail views)."""
        cols = ", ".join(f"s.{c}" for c in SETTING_SCHEMA)
        sql = f"""SELECT s.run_id, s.tenant_id, t.display_name AS tenant, {cols}, s.synced_at, s.carried_from_run
                  FROM (SELECT * FROM {self._current(where)}) s JOIN tenants t USING (tenant_id)
                  ORDER BY {self._ORDER}"""
        with self.connect() as con:
            return con.sql(sql, params=list(params) or None).pl()

    def settings_count(self, where: str, params: Sequence[Any]) -> int:
        return sum(n for _, n in self.settings_tenant_counts(where, params))

    # columns the policies table shares with settings: facets over them read ~100x fewer rows
    _POLICY_FACETS = frozenset({"tenant_id", "policy_type", "platform", "policy_name"})

    def settings_facets(self, where: str, params: Sequence[Any], columns: Sequence[str],
                        limit: int = 5000, *, by_policy: bool = False) -> dict[str, list[str]]:
        """Distinct values of each column among the current rows matching `where` (at most `limit` + 1).

        `by_policy`: `where` names only policy-level columns (tenant, type, platform, policy), so the
        current policies answer instead of every setting row (every policy has at least one row)."""
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

    def alignment_overview(self, baseline: str, *, today: date | None = None) -> pl.DataFrame:
        """Every tenant's alignment with `baseline` (compare.alignment_scores' columns), read from the
        per-run aggregates kept in `alignments`; pairs not computed yet are computed first, in SQL.
        Deviations accepted and valid on `today` (default: today) leave the score at read time."""
        with self.connect() as con:
            pairs = con.execute(
                "SELECT c.run_id, b.run_id FROM current_runs c, current_runs b WHERE b.tenant_id = ? "
                "AND c.tenant_id <> ? AND NOT EXISTS (SELECT 1 FROM alignments a WHERE a.run_id = c.run_id "
                "AND a.baseline_run_id = b.run_id)", [baseline, baseline]).fetchall()
        if pairs:
            self.refresh_alignments(pairs)
        sql = """SELECT c.tenant_id, t.display_name AS tenant, a.baseline_settings, a.matched, a.differing,
                        a.missing, a.extra,
                        CASE WHEN a.baseline_settings > 0 THEN a.matched / a.baseline_settings END AS score
                 FROM current_runs c JOIN tenants t USING (tenant_id)
                 JOIN current_runs b ON b.tenant_id = ?
                 JOIN alignments a ON a.run_id = c.run_id AND a.baseline_run_id = b.run_id
                 WHERE c.tenant_id <> ? ORDER BY score DESC NULLS LAST, t.display_name"""
        with self.connect() as con:
            overview = con.sql(sql, params=[baseline, baseline]).pl()
        return self._without_accepted(overview, baseline, today or date.today())

    def refresh_alignments(self, pairs: Sequence[tuple[int, int]]) -> None:
        """Compute and keep the alignment of each (run, baseline run) pair (compare's rules, in SQL)."""
        from tenantpilot.analysis.compare import alignment_pairs_sql

        frame = pl.DataFrame(list(pairs), schema={"run_id": pl.Int64, "baseline_run_id": pl.Int64}, orient="row")
        if not frame.height:
            return
        # in slices of ALIGNMENT_BATCH runs, with a memory cap: a baseline imported beside 1,000
        # tenants must not hold 20 M rows' cells at once (one query for all of them peaked at 14 GB)
        with self.connect(write=True) as con:
            con.execute("SET preserve_insertion_order = false")
            con.execute("SET memory_limit = '1GB'")
            for start in range(0, frame.height, ALIGNMENT_BATCH):
                con.register("_pairs", frame.slice(start, ALIGNMENT_BATCH).to_arrow())
                rows = "(" + _rows_sql("settings", "SELECT run_id FROM _pairs UNION SELECT baseline_run_id FROM _pairs") + ")"
                con.execute(f"INSERT OR REPLACE INTO alignments {alignment_pairs_sql('_pairs', rows)}")
                con.unregister("_pairs")

    def refresh_alignments_for(self, run_id: int) -> None:
        """After a snapshot is written: a tenant run against every baseline, or a baseline run against
        every tenant (what the all-tenants overview will read)."""
        with self.connect() as con:
            kind = _one(con.execute("SELECT t.kind FROM sync_runs r JOIN tenants t USING (tenant_id) "
                                    "WHERE r.run_id = ?", [run_id]))
            if kind is None:
                return
            if kind[0] == "baseline":
                pairs = con.execute("SELECT c.run_id, ? FROM current_runs c JOIN tenants t USING (tenant_id) "
                                    "WHERE t.kind <> 'baseline'", [run_id]).fetchall()
            else:
                pairs = con.execute("SELECT ?, c.run_id FROM current_runs c JOIN tenants t USING (tenant_id) "
                                    "WHERE t.kind = 'baseline'", [run_id]).fetchall()
        self.refresh_alignments([(int(a), int(b)) for a, b in pairs])

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

    # -- history: what changed since a point in time, read from the row ranges ----------------------
    def history_bases(self, *, since: datetime | None = None, since_run: int | None = None,
                      tenant_ids: Sequence[str] | None = None) -> pl.DataFrame:
        """Per tenant with data: the run its changes are counted from (`base_run`: its last done run at or
        before `since`, or `since_run`; a tenant first synced later starts from its first run, and
        `first_sync` says so) and its current run (`cur_run`), with when each finished."""
        args: list[Any] = []
        where = "TRUE"
        if tenant_ids is not None:
            where = f"c.tenant_id IN ({','.join('?' * len(tenant_ids)) or 'NULL'})"
            args.extend(tenant_ids)
        if since_run is not None:
            base = "(SELECT run_id FROM sync_runs WHERE run_id = ? AND tenant_id = c.tenant_id)"
            args = [since_run, *args]
        else:
            base = ("(SELECT max(run_id) FROM sync_runs d WHERE d.tenant_id = c.tenant_id "
                    "AND d.status IN ('succeeded', 'partial') AND d.finished_at <= ?)")
            args = [since or _now(), *args]
        sql = f"""WITH b AS (
                    SELECT c.tenant_id, c.run_id AS cur_run, {base} AS at_since,
                           (SELECT min(run_id) FROM sync_runs d WHERE d.tenant_id = c.tenant_id
                            AND d.status IN ('succeeded', 'partial')) AS first_run
                    FROM current_runs c WHERE {where})
                  SELECT b.tenant_id, t.display_name AS tenant, coalesce(b.at_since, b.first_run) AS base_run,
                         b.at_since IS NULL AS first_sync, rb.finished_at AS base_at, b.cur_run, rc.finished_at AS cur_at
                  FROM b JOIN tenants t USING (tenant_id)
                  JOIN sync_runs rb ON rb.run_id = coalesce(b.at_since, b.first_run)
                  JOIN sync_runs rc ON rc.run_id = b.cur_run
                  WHERE t.kind <> 'baseline' ORDER BY t.display_name, b.tenant_id"""
        with self.connect() as con:
            return con.sql(sql, params=args).pl()

    def changed_rows(self, bases: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The setting rows a diff between each tenant's base run and current run needs, and no more: for
        every setting key a version opened or closed after the base run, that key's rows as of the base
        run and as of the current run (each with `seen_run`: the run where its version began or ended)."""
        frame = bases.select("tenant_id", "base_run", "cur_run")
        # (the constant bounds first let the scans skip old row groups by their min/max)
        lowest = str(frame["base_run"].cast(pl.Int64).fill_null(0).min() or 0) if frame.height else "0"
        touched = f"""SELECT DISTINCT v.tenant_id, v.setting_key FROM {_all_versions("settings", lowest)} v
                     JOIN _bases b USING (tenant_id)
                     WHERE (v.valid_from_run > {lowest} OR v.valid_to_run > {lowest})
                       AND ((v.valid_from_run > b.base_run AND v.valid_from_run <= b.cur_run)
                            OR (v.valid_to_run > b.base_run AND v.valid_to_run <= b.cur_run))"""
        texts = {c: f"x.{c}" for c in TEXT_COLUMNS}
        cols = ", ".join(texts.get(c, f"v.{c}") for c in SETTING_SCHEMA)
        # one query (a temp table per step cost more in writes than the steps themselves):
        # tv: every version of the touched keys, the few rows a diff needs, read once;
        # first: when a sync first saw the change: for the base run's row, the run it ended in; for the
        # current row, the first run after the base that had its value (a rename re-versions a row, not
        # its value)
        sql = f"""WITH touched AS ({touched}),
            tv AS MATERIALIZED (SELECT v.* FROM {_all_versions("settings", lowest)} v
                                SEMI JOIN touched k ON k.tenant_id = v.tenant_id AND k.setting_key = v.setting_key
                                WHERE v.valid_to_run IS NULL OR v.valid_to_run > {lowest}),
            first AS (SELECT v.tenant_id, v.policy_id, v.setting_key, v.compare_value, v.configured,
                             min(v.valid_from_run) AS first_run
                      FROM tv v JOIN _bases b USING (tenant_id) WHERE v.valid_from_run > b.base_run GROUP BY ALL)
            SELECT b.base_run AS run_id, v.tenant_id, {cols}, v.valid_to_run AS seen_run, TRUE AS is_base
            FROM tv v JOIN _bases b ON b.tenant_id = v.tenant_id JOIN setting_texts x ON x.text_id = v.text_id
            WHERE v.valid_from_run <= b.base_run AND (v.valid_to_run IS NULL OR v.valid_to_run > b.base_run)
            UNION ALL
            SELECT b.cur_run AS run_id, v.tenant_id, {cols}, f.first_run AS seen_run, FALSE AS is_base
            FROM tv v JOIN _bases b ON b.tenant_id = v.tenant_id JOIN setting_texts x ON x.text_id = v.text_id
            LEFT JOIN first f ON f.tenant_id = v.tenant_id AND f.policy_id = v.policy_id
              AND f.setting_key = v.setting_key AND f.compare_value IS NOT DISTINCT FROM v.compare_value
              AND f.configured IS NOT DISTINCT FROM v.configured
            WHERE v.valid_from_run <= b.cur_run AND (v.valid_to_run IS NULL OR v.valid_to_run > b.cur_run)"""
        with self.connect() as con:
            con.register("_bases", frame.to_arrow())
            rows = con.sql(sql).pl()
            con.unregister("_bases")
        out = [rows.filter(pl.col("is_base") == side).drop("is_base") for side in (True, False)]
        return out[0], out[1]

    def policies_at(self, bases: pl.DataFrame) -> pl.DataFrame:
        """Each tenant's policies as of its base run and its current run (`side`: base | cur; `run_id`)."""
        frame = bases.select("tenant_id", "base_run", "cur_run")
        with self.connect() as con:
            con.register("_bases", frame.to_arrow())
            result = con.sql(
                f"""SELECT CASE WHEN p.run_id = b.base_run THEN 'base' ELSE 'cur' END AS side, p.run_id, p.tenant_id,
                           p.policy_id, p.policy_type, p.policy_name
                    FROM ({_rows_sql('policies', 'SELECT base_run AS run_id FROM _bases UNION '
                                                 'SELECT cur_run FROM _bases')}) p
                    JOIN _bases b ON b.tenant_id = p.tenant_id""").pl()
            con.unregister("_bases")
        return result

    def policy_setting_counts(self, pairs: pl.DataFrame) -> pl.DataFrame:
        """Configured settings of each (run_id, policy_id) in `pairs` as of that run (`settings`)."""
        if not pairs.height:
            return pairs.with_columns(pl.lit(0, pl.UInt32).alias("settings"))
        with self.connect() as con:
            con.register("_pp", pairs.select("run_id", "policy_id").unique().to_arrow())
            result = con.sql(
                f"""SELECT p.run_id, p.policy_id, count(s.setting_key) FILTER (WHERE coalesce(s.configured, true)
                           AND s.setting_key <> ?)::UINTEGER AS settings
                    FROM _pp p LEFT JOIN ({_rows_sql('settings', 'SELECT DISTINCT run_id FROM _pp')}) s
                      ON s.run_id = p.run_id AND s.policy_id = p.policy_id
                    GROUP BY p.run_id, p.policy_id""", params=[NO_SETTINGS]).pl()
            con.unregister("_pp")
        return result

    def change_counts(self, since: datetime) -> pl.DataFrame:
        """Per tenant and day (of the run's finish, UTC) since `since`: the changes its runs found, as the
        Changes page counts them: policies added, deleted or renamed (`policy_events`), and settings whose
        configured value changed, appeared or went inside policies that stayed (`setting_changes`). A rename
        or a new raw JSON re-versions rows without changing a value: not counted. A tenant's first run is
        its first load, not a change."""
        value = "CASE WHEN coalesce({a}.configured, true) THEN coalesce({a}.compare_value, {a}.value, '') END"
        sql = f"""WITH runs AS (
                   SELECT r.run_id, r.tenant_id, CAST(r.finished_at AS DATE) AS day FROM sync_runs r
                   WHERE r.status IN ('succeeded', 'partial') AND r.finished_at >= ?
                     AND r.run_id > (SELECT min(run_id) FROM sync_runs f WHERE f.tenant_id = r.tenant_id
                                     AND f.status IN ('succeeded', 'partial', 'pruned'))),
                 pol AS (
                   SELECT coalesce(o.tenant_id, n.tenant_id) AS tenant_id, coalesce(o.run_id, n.run_id) AS run_id,
                          coalesce(o.policy_id, n.policy_id) AS policy_id,
                          CASE WHEN o.policy_id IS NULL THEN 'added' WHEN n.policy_id IS NULL THEN 'deleted'
                               WHEN o.policy_name IS DISTINCT FROM n.policy_name THEN 'renamed' END AS event
                   FROM (SELECT v.tenant_id, v.valid_to_run AS run_id, v.policy_id, v.policy_name
                         FROM policy_versions v SEMI JOIN runs r ON r.run_id = v.valid_to_run) o
                   FULL JOIN (SELECT v.tenant_id, v.valid_from_run AS run_id, v.policy_id, v.policy_name
                              FROM policy_versions v SEMI JOIN runs r ON r.run_id = v.valid_from_run) n
                     ON n.tenant_id = o.tenant_id AND n.run_id = o.run_id AND n.policy_id = o.policy_id),
                 sets AS (
                   SELECT coalesce(o.tenant_id, n.tenant_id) AS tenant_id, coalesce(o.run_id, n.run_id) AS run_id,
                          coalesce(o.policy_id, n.policy_id) AS policy_id, o.v AS old_v, n.v AS new_v
                   FROM (SELECT v.tenant_id, v.valid_to_run AS run_id, v.policy_id, v.setting_key,
                                {value.format(a='v')} AS v
                         FROM {_all_versions("settings", "(SELECT min(run_id) - 1 FROM runs)")} v
                         SEMI JOIN runs r ON r.run_id = v.valid_to_run) o
                   FULL JOIN (SELECT v.tenant_id, v.valid_from_run AS run_id, v.policy_id, v.setting_key,
                                     {value.format(a='v')} AS v
                              FROM {_all_versions("settings", "(SELECT min(run_id) FROM runs)")} v
                              SEMI JOIN runs r ON r.run_id = v.valid_from_run) n
                     ON n.tenant_id = o.tenant_id AND n.run_id = o.run_id AND n.policy_id = o.policy_id
                        AND n.setting_key = o.setting_key),
                 per_run AS (
                   SELECT r.run_id, r.tenant_id, r.day,
                          (SELECT count(*) FROM pol p WHERE p.run_id = r.run_id AND p.event IS NOT NULL) AS policy_events,
                          (SELECT count(*) FROM sets x WHERE x.run_id = r.run_id AND x.old_v IS DISTINCT FROM x.new_v
                             AND NOT EXISTS (SELECT 1 FROM pol p WHERE p.run_id = x.run_id AND p.policy_id = x.policy_id
                                             AND p.event IN ('added', 'deleted'))) AS setting_changes
                   FROM runs r)
                 SELECT p.tenant_id, t.display_name AS tenant, p.day, sum(p.policy_events)::BIGINT AS policy_events,
                        sum(p.setting_changes)::BIGINT AS setting_changes,
                        (sum(p.policy_events) + sum(p.setting_changes))::BIGINT AS changes, count(*) AS runs
                 FROM per_run p JOIN tenants t USING (tenant_id)
                 GROUP BY ALL ORDER BY t.display_name, p.day"""
        with self.connect() as con:
            return con.sql(sql, params=[since]).pl()

    # -- directory names cache (per tenant: group and filter ids differ in every tenant) ---------
    def directory_names(self, tenant_id: str) -> dict[str, dict[str, str]]:
        """{kind: {object id: display name}} cached for a tenant (kinds: group, filter)."""
        with self.connect() as con:
            rows = con.execute("SELECT kind, object_id, display_name FROM directory_names WHERE tenant_id = ?",
                               [tenant_key(tenant_id)]).fetchall()
        out: dict[str, dict[str, str]] = {}
        for kind, object_id, name in rows:
            out.setdefault(kind, {})[object_id] = name
        return out

    def save_directory_names(self, tenant_id: str, names: Mapping[str, Mapping[str, str]]) -> None:
        rows = [(kind, oid, name) for kind, found in names.items() for oid, name in found.items()]
        if not rows:
            return
        frame = pl.DataFrame(rows, schema={"kind": pl.String, "object_id": pl.String, "display_name": pl.String},
                             orient="row")
        with self.connect(write=True) as con:
            con.register("_names", frame.to_arrow())
            con.execute("INSERT INTO directory_names SELECT ?, kind, object_id, display_name, now() FROM _names "
                        "ON CONFLICT (tenant_id, kind, object_id) DO UPDATE SET display_name = excluded.display_name, "
                        "fetched_at = excluded.fetched_at", [tenant_key(tenant_id)])
            con.unregister("_names")

    # -- setting definitions cache (the same in every tenant) ----------------------------------
    def definitions(self, ids: Sequence[str] | None = None) -> dict[str, dict]:
        with self.connect() as con:
            if ids is None:
                rows = con.execute("SELECT definition_id, definition_json FROM setting_definitions").fetchall()
            else:
                if not ids:
                    return {}
                con.register("_ids", pl.DataFrame({"id": list(ids)}).to_arrow())
                rows = con.execute("SELECT definition_id, definition_json FROM setting_definitions "
                                   "WHERE definition_id IN (SELECT id FROM _ids)").fetchall()
        return {k: json.loads(v) for k, v in rows}

    def unknown_definition_ids(self, max_age_days: int = 30) -> set[str]:
        """Definition ids Graph did not know when last asked (within `max_age_days`): not asked again."""
        with self.connect() as con:
            return {r[0] for r in con.execute(
                "SELECT definition_id FROM unknown_definitions WHERE checked_at > now() - to_days(?)",
                [int(max_age_days)]).fetchall()}

    def save_unknown_definitions(self, ids: Iterable[str]) -> None:
        frame = pl.DataFrame({"definition_id": sorted(set(ids))}, schema={"definition_id": pl.String})
        if not frame.height:
            return
        with self.connect(write=True) as con:
            con.register("_unknown", frame.to_arrow())
            con.execute("INSERT INTO unknown_definitions SELECT definition_id, now() FROM _unknown "
                        "ON CONFLICT (definition_id) DO UPDATE SET checked_at = excluded.checked_at")
            con.execute("DELETE FROM unknown_definitions WHERE definition_id IN "
                        "(SELECT definition_id FROM setting_definitions)")

    def definition_ids(self) -> set[str]:
        with self.connect() as con:
            return {r[0] for r in con.execute("SELECT definition_id FROM setting_definitions").fetchall()}

    def save_definitions(self, definitions: dict[str, dict]) -> None:
        if not definitions:
            return
        frame = pl.DataFrame({"definition_id": list(definitions),
                              "definition_json": [json.dumps(d, separators=(",", ":")) for d in definitions.values()]})
        with self.connect(write=True) as con:
            con.register("_defs", frame.to_arrow())
            con.execute("INSERT INTO setting_definitions SELECT definition_id, definition_json, now() FROM _defs "
                        "ON CONFLICT (definition_id) DO UPDATE SET definition_json = excluded.definition_json, "
                        "fetched_at = excluded.fetched_at")

    # -- schedules (tenantpilot/ops/schedule.py; the periodic task is queue.schedule_tick) -------------
    def _rekey_schedule_and_audit(self, con: duckdb.DuckDBPyConnection, old: str, new: str) -> None:
        """A tenant re-keyed from a domain to its GUID keeps its schedule and audit events (the GUID's
        own rows win when both exist)."""
        con.execute("DELETE FROM tenant_schedules WHERE tenant_id = ? AND EXISTS "
                    "(SELECT 1 FROM tenant_schedules WHERE tenant_id = ?)", [old, new])
        con.execute("UPDATE tenant_schedules SET tenant_id = ? WHERE tenant_id = ?", [new, old])
        con.execute("DELETE FROM audit_events WHERE tenant_id = ? AND event_id IN "
                    "(SELECT event_id FROM audit_events WHERE tenant_id = ?)", [old, new])
        con.execute("UPDATE audit_events SET tenant_id = ? WHERE tenant_id = ?", [new, old])

    def set_tenant_schedule(self, tenant_id: str, schedule: str | None) -> None:
        """A tenant's own schedule: a cron or 'off' (validated by the caller with schedule.validate), or
        None to follow the global schedule again. Slots before this moment never fire for it."""
        key = tenant_key(tenant_id) if not tenant_id.startswith("baseline:") else tenant_id
        with self.connect(write=True) as con:
            con.execute(
                "INSERT INTO tenant_schedules (tenant_id, schedule, schedule_set_at) VALUES (?, ?, ?) "
                "ON CONFLICT (tenant_id) DO UPDATE SET schedule = excluded.schedule, "
                "schedule_set_at = excluded.schedule_set_at", [key, schedule, _now()])

    def record_schedule_fired(self, tenant_id: str, slot: datetime, run_id: int | None) -> None:
        """The periodic task queued (or found active) `run_id` for `slot`: that slot never fires again."""
        key = tenant_key(tenant_id) if not tenant_id.startswith("baseline:") else tenant_id
        with self.connect(write=True) as con:
            con.execute(
                "INSERT INTO tenant_schedules (tenant_id, last_slot, last_fired_at, last_run_id) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (tenant_id) DO UPDATE SET last_slot = excluded.last_slot, "
                "last_fired_at = excluded.last_fired_at, last_run_id = excluded.last_run_id",
                [key, slot, _now(), run_id])

    def tenant_schedules(self) -> pl.DataFrame:
        """Every tenant with its own schedule (NULL: the global one), when it was set, the last slot
        fired, and its latest scheduled run (`last_scheduled_*`)."""
        with self.connect() as con:
            return con.sql(
                """WITH sched AS (
                     SELECT tenant_id, max(run_id) AS run_id FROM sync_runs WHERE trigger = 'schedule'
                     GROUP BY tenant_id)
                   SELECT t.tenant_id, t.display_name, t.kind, t.added_at, ts.schedule, ts.schedule_set_at,
                          ts.last_slot, ts.last_fired_at, r.run_id AS last_scheduled_run_id,
                          r.status AS last_scheduled_status,
                          coalesce(r.finished_at, r.started_at, r.queued_at) AS last_scheduled_at
                   FROM tenants t LEFT JOIN tenant_schedules ts USING (tenant_id)
                   LEFT JOIN sched s USING (tenant_id) LEFT JOIN sync_runs r ON r.run_id = s.run_id
                   ORDER BY t.kind, lower(t.display_name)""").pl()

    # -- Intune audit events (graph/audit.py reads them; audit.attach_actors joins them) -----------
    def save_audit_events(self, tenant_id: str, run_id: int, events: pl.DataFrame) -> int:
        """Keep a sync's audit events (columns of audit.EVENT_SCHEMA); an event already kept stays as it
        is. Returns how many were new."""
        if not events.height:
            return 0
        key = tenant_key(tenant_id)
        with self.connect(write=True) as con:
            con.register("_events", events.to_arrow())
            before = _scalar(con.execute("SELECT count(*) FROM audit_events WHERE tenant_id = ?", [key]))
            con.execute(
                "INSERT INTO audit_events SELECT ?, event_id, activity_time, actor_upn, actor_app, actor_type, "
                "activity, activity_type, operation_type, component, resource_ids, resources, ? FROM _events "
                "ON CONFLICT (tenant_id, event_id) DO NOTHING", [key, run_id])
            after = _scalar(con.execute("SELECT count(*) FROM audit_events WHERE tenant_id = ?", [key]))
            con.unregister("_events")
        return int(after) - int(before)

    def audit_events(self, tenant_id: str | None = None, since: datetime | None = None,
                     until: datetime | None = None) -> pl.DataFrame:
        """Audit events of a tenant (all tenants: None) with since < activity_time <= until (either
        bound may be None), oldest first."""
        where: list[str] = ["TRUE"]
        args: list[Any] = []
        if tenant_id is not None:
            where.append("tenant_id = ?")
            args.append(tenant_key(tenant_id))
        if since is not None:
            where.append("activity_time > ?")
            args.append(since)
        if until is not None:
            where.append("activity_time <= ?")
            args.append(until)
        with self.connect() as con:
            return con.sql(f"SELECT * EXCLUDE (run_id), run_id FROM audit_events WHERE {' AND '.join(where)} "
                           "ORDER BY activity_time, event_id", params=args or None).pl()


    # -- the deviation register (rules in tenantpilot/analysis/deviations.py) ------------------------------
    def add_deviation(self, deviation: NewDeviation) -> int:
        """Record an accepted deviation (checked by deviations.validate); returns its id."""
        d = deviation
        with self.connect(write=True) as con:
            row = _one(con.execute(
                "INSERT INTO deviations VALUES (nextval('deviation_seq'), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL) "
                "RETURNING deviation_id",
                [d.tenant_id, d.baseline_id, d.policy_type, d.scope, d.setting_key, d.setting_name, d.reason,
                 d.owner, d.expires_on, _now()]))
        if row is None:
            raise StoreError("the deviation was not recorded; try again")
        return int(row[0])

    def remove_deviation(self, deviation_id: int) -> bool:
        """Mark a deviation removed (kept for the record); False when no such open deviation exists."""
        with self.connect(write=True) as con:
            row = _one(con.execute("UPDATE deviations SET removed_at = ? WHERE deviation_id = ? AND removed_at "
                                   "IS NULL RETURNING deviation_id", [_now(), int(deviation_id)]))
        return row is not None

    def deviations(self, tenant_ids: Sequence[str] | None = None, *, include_removed: bool = False) -> pl.DataFrame:
        """The register (deviations.REGISTER_COLUMNS), with tenant and baseline display names."""
        where: list[str] = ["TRUE"]
        args: list[Any] = []
        if tenant_ids is not None:
            where.append(f"d.tenant_id IN ({','.join('?' * len(tenant_ids)) or 'NULL'})")
            args.extend(tenant_ids)
        if not include_removed:
            where.append("d.removed_at IS NULL")
        sql = f"""SELECT d.deviation_id, d.tenant_id, coalesce(t.display_name, d.tenant_id) AS tenant, d.baseline_id,
                         coalesce(b.display_name, d.baseline_id) AS baseline, d.policy_type, d.scope, d.setting_key,
                         d.setting_name, d.reason, d.owner, d.expires_on, d.created_at, d.removed_at
                  FROM deviations d LEFT JOIN tenants t ON t.tenant_id = d.tenant_id
                  LEFT JOIN tenants b ON b.tenant_id = d.baseline_id
                  WHERE {' AND '.join(where)} ORDER BY d.expires_on, d.deviation_id"""
        with self.connect() as con:
            frame = con.sql(sql, params=args or None).pl()
        return frame.cast({"created_at": pl.Datetime(time_zone="UTC"), "removed_at": pl.Datetime(time_zone="UTC"),
                           "expires_on": pl.Date})

    def key_settings(self, tenant_ids: Sequence[str], setting_keys: Sequence[str]) -> pl.DataFrame:
        """Current setting rows of these tenants with these setting keys (the cells of a few keys)."""
        if not tenant_ids or not setting_keys:
            return self.run_settings([], tenant_ids=None)
        cols = ", ".join(f"s.{c}" for c in SETTING_SCHEMA)
        sql = f"""SELECT s.run_id, s.tenant_id, t.display_name AS tenant, {cols}, s.synced_at, s.carried_from_run
                  FROM {_CURRENT_VIEW['settings']} s JOIN tenants t USING (tenant_id)
                  WHERE s.tenant_id IN ({','.join('?' * len(tenant_ids))})
                    AND s.setting_key IN ({','.join('?' * len(setting_keys))})"""
        with self.connect() as con:
            return con.sql(sql, params=[*tenant_ids, *setting_keys]).pl()

    def _without_accepted(self, overview: pl.DataFrame, baseline: str, today: date) -> pl.DataFrame:
        """alignment_overview's aggregates less each tenant's valid accepted deviations (the rule of
        compare.alignment_scores' `accepted`), from the cells of just those keys."""
        from tenantpilot.analysis import deviations as dev
        from tenantpilot.analysis.compare import MATCH_KEY, cells

        tenants = overview["tenant_id"].to_list()
        keys = dev.accepted_keys(self.deviations(tenants), today, baseline)
        keys = keys.filter(pl.col("tenant_id").is_in(tenants)).select("tenant_id", *MATCH_KEY)
        cols = ["tenant_id", "tenant", "baseline_settings", "matched", "differing", "missing", "extra", "accepted",
                "score"]
        if keys.height == 0:
            return overview.with_columns(pl.lit(0, pl.Int64).alias("accepted")).select(cols)
        found = cells(self.key_settings([*tenants, baseline], keys["setting_key"].unique().to_list()))
        base = found.filter(pl.col("tenant_id") == baseline).select(*MATCH_KEY, pl.col("cmp").alias("_base"))
        own = found.filter(pl.col("tenant_id") != baseline).select("tenant_id", *MATCH_KEY, "cmp")
        per = (keys.join(own, on=["tenant_id", *MATCH_KEY], how="left").join(base, on=list(MATCH_KEY), how="left")
               .group_by("tenant_id").agg(
                   (pl.col("_base").is_not_null() & (pl.col("cmp") == pl.col("_base"))).sum().alias("_m"),
                   (pl.col("_base").is_not_null() & (pl.col("cmp") != pl.col("_base"))).sum().alias("_d"),
                   (pl.col("_base").is_not_null() & pl.col("cmp").is_null()).sum().alias("_mi"),
                   (pl.col("_base").is_null() & pl.col("cmp").is_not_null()).sum().alias("_x"),
                   pl.col("_base").is_not_null().sum().alias("_a")))
        out = overview.join(per, on="tenant_id", how="left").with_columns(
            pl.col(c).fill_null(0).cast(pl.Int64) for c in ("_m", "_d", "_mi", "_x", "_a"))
        out = out.with_columns(
            (pl.col("baseline_settings") - pl.col("_a")).alias("baseline_settings"),
            (pl.col("matched") - pl.col("_m")).alias("matched"),
            (pl.col("differing") - pl.col("_d")).alias("differing"),
            (pl.col("missing") - pl.col("_mi")).alias("missing"),
            (pl.col("extra") - pl.col("_x")).alias("extra"),
            pl.col("_a").alias("accepted"))
        out = out.with_columns(pl.when(pl.col("baseline_settings") > 0)
                               .then(pl.col("matched") / pl.col("baseline_settings"))
                               .otherwise(pl.lit(None, pl.Float64)).alias("score"))
        return out.select(cols).sort(["score", "tenant"], descending=[True, False], nulls_last=True)

    def current_columns_of(self, tenant_ids: Sequence[str], columns: Sequence[str]) -> pl.DataFrame:
        """tenant_id, tenant (display name) and only these setting columns of these tenants' current rows
        (the current_setting_rows view), in no particular order: Compare moves and sorts nothing it
        does not read."""
        unknown = [c for c in columns if c not in SETTING_SCHEMA]
        if unknown:
            raise ValueError(f"not setting columns: {unknown}")
        return self._rows("settings", None, list(tenant_ids), columns).select("tenant_id", "tenant", *columns)

# --- migrations: versioned steps that bring an existing file up to SCHEMA_VERSION ---------------
# Each step runs once per file, in its own transaction together with the new schema_version, when
# the file's meta.schema_version is lower than the step's version (a new file runs them on empty
# tables). A step never needs the app: it works on what the file holds.

def _mask_stored_raw_json(con: duckdb.DuckDBPyConnection) -> None:
    """v2: raw JSON written before the one secret rule (flatten/secrets.py) kept what rows masked
    (wiFiPreSharedKey, proxyServerPassword, ...): mask it now. DuckDB picks the candidate rows with
    the rule's own text pattern; Python masks them."""
    if not _has_table(con, "policies"):
        return  # a file created with temporal rows (v6) never held unmasked raw JSON
    rows = con.execute("SELECT rowid, raw_json FROM policies WHERE regexp_matches(raw_json, ?)",
                       [secrets.SECRET_TEXT_PATTERN]).fetchall()
    changed = [(rowid, masked) for rowid, text in rows if (masked := secrets.mask_json_text(text)) != text]
    if changed:
        con.register("_masked", pl.DataFrame(changed, schema={"rid": pl.Int64, "raw_json": pl.String},
                                             orient="row").to_arrow())
        con.execute("UPDATE policies SET raw_json = _masked.raw_json FROM _masked WHERE policies.rowid = _masked.rid")
        con.unregister("_masked")


def _drop_imported_definitions(con: duckdb.DuckDBPyConnection) -> None:
    """v3: imports used to write their files' inline settingDefinitions into the shared definition
    cache that syncs read, so a file's text could name a synced tenant's settings. Which entries came
    from an import is not recorded: empty the cache; the next sync fetches Graph's definitions."""
    con.execute("DELETE FROM setting_definitions")


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return _one(con.execute("SELECT 1 FROM information_schema.tables WHERE table_name = ? "
                            "AND table_schema = 'main' AND table_type = 'BASE TABLE'", [name])) is not None


def _snapshots_to_ranges(con: duckdb.DuckDBPyConnection) -> None:
    """v6: files up to v5 kept a full copy of every row per run (`settings`, `policies`, `assignments`
    with run_id). Each row becomes one version per unbroken stretch of the tenant's kept runs that held
    it (gaps and islands over the runs in order); the copies are dropped. Rows a run carried forward
    were copies of an older run's: they become part of that row's range, and `run_types` still says
    the run carried them."""
    if not _has_table(con, "settings"):
        return
    # v6 kept every setting version in one table; step 7 splits it
    con.execute("CREATE TABLE setting_versions AS SELECT * FROM setting_current WHERE FALSE")
    # columns later versions added to the old tables, so files from any version convert the same way
    for table, column, kind in (("policies", "type_key", "VARCHAR"), ("settings", "configured", "BOOLEAN"),
                                ("assignments", "filter_name", "VARCHAR")):
        con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")
    con.execute("""CREATE OR REPLACE TEMP TABLE _runs AS
        SELECT run_id, tenant_id, row_number() OVER (PARTITION BY tenant_id ORDER BY run_id) AS rn,
               count(*) OVER (PARTITION BY tenant_id) AS last_rn
        FROM sync_runs WHERE status IN ('succeeded', 'partial')""")
    con.execute("""CREATE OR REPLACE TEMP TABLE _ptype AS
        SELECT run_id, policy_id, any_value(type_key) AS type_key FROM policies GROUP BY run_id, policy_id""")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _old_texts AS SELECT DISTINCT {_hash(TEXT_COLUMNS, 's')} AS text_hash, "
                f"{', '.join(TEXT_COLUMNS)} FROM settings s")
    _add_texts(con, "_old_texts")
    sources = {
        "settings": f"""SELECT s.run_id, s.tenant_id, {', '.join(f's.{c}' for c in VERSION_COLUMNS)},
                               x.text_id, pt.type_key
                        FROM settings s JOIN setting_texts x ON x.text_hash = {_hash(TEXT_COLUMNS, 's')}
                        LEFT JOIN _ptype pt ON pt.run_id = s.run_id AND pt.policy_id = s.policy_id""",
        "policies": f"SELECT run_id, tenant_id, {', '.join(POLICY_SCHEMA)}, type_key FROM policies",
        "assignments": f"""SELECT a.run_id, a.tenant_id, {', '.join(f'a.{c}' for c in ASSIGNMENT_SCHEMA)}, pt.type_key
                           FROM assignments a LEFT JOIN _ptype pt ON pt.run_id = a.run_id
                           AND pt.policy_id = a.policy_id""",
    }
    for kind, source in sources.items():
        content = [*(VERSION_COLUMNS if kind == "settings" else _SCHEMAS[kind]), *(("text_id",) if kind == "settings"
                                                                                  else ())]
        key = "o.row_hash, o.policy_id" + (", o.setting_key" if kind == "settings" else "")
        con.execute(f"""INSERT INTO {'setting_versions' if kind == 'settings' else _VERSIONS[kind]}
            WITH o AS (SELECT DISTINCT q.*, {_hash(_IDENTITY[kind], 'q')} AS row_hash, r.rn
                       FROM ({source}) q JOIN _runs r USING (run_id)),
            islands AS (SELECT o.*, o.rn - row_number() OVER (PARTITION BY o.tenant_id, {key} ORDER BY o.rn) AS grp
                        FROM (SELECT DISTINCT ON (tenant_id, row_hash, policy_id{', setting_key' if kind == 'settings'
                              else ''}, rn) * FROM o) o),
            ranges AS (SELECT i.tenant_id, {', '.join(f'any_value(i.{c}) AS {c}' for c in content)},
                              any_value(i.type_key) AS type_key, i.row_hash, min(i.rn) AS first_rn, max(i.rn) AS last_rn
                       FROM islands i GROUP BY i.tenant_id, {key.replace('o.', 'i.')}, i.grp)
            SELECT g.tenant_id, {', '.join(f'g.{c}' for c in content)}, g.type_key, f.run_id, t.run_id
            FROM ranges g JOIN _runs f ON f.tenant_id = g.tenant_id AND f.rn = g.first_rn
            LEFT JOIN _runs t ON t.tenant_id = g.tenant_id AND t.rn = g.last_rn + 1""")
    for table in ("settings", "policies", "assignments", "_ptype", "_runs", "_old_texts"):
        con.execute(f"DROP TABLE {table}")


def _split_setting_versions(con: duckdb.DuckDBPyConnection) -> None:
    """v7: v6 kept open and closed setting versions in one table (`setting_versions`), so every current
    read scanned the history too, and every closed version repeated its row's names. The open rows move
    to setting_current; the closed ones become key, value and range (setting_history)."""
    if not _has_table(con, "setting_versions"):
        return
    load_closed_settings(con, "(SELECT * FROM setting_versions WHERE valid_to_run IS NOT NULL)")
    # the open rows stay where they are (setting_current has the v6 table's columns): copying 20 M rows
    # took 10 s and doubled the file, whose freed blocks DuckDB never gives back
    con.execute("DELETE FROM setting_versions WHERE valid_to_run IS NOT NULL")
    con.execute("DROP TABLE setting_current")
    con.execute("ALTER TABLE setting_versions RENAME TO setting_current")


def load_closed_settings(con: duckdb.DuckDBPyConnection, relation: str) -> None:
    """Closed setting versions in bulk (migrations, benchmarks): `relation` in the version shape
    (setting_current's columns, valid_to_run set), ordered as syncs would have closed them."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _closed AS SELECT * FROM {relation} ORDER BY valid_to_run")
    _close_settings(con, "_closed")
    con.execute("DROP TABLE _closed")


MIGRATIONS: tuple[tuple[int, Callable[[duckdb.DuckDBPyConnection], None]], ...] = (
    # 2 was the schema of carried-forward rows (DDL above); these steps are numbered after it so a
    # database that already says 2 still gets them
    (4, _mask_stored_raw_json),
    (5, _drop_imported_definitions),
    (6, _snapshots_to_ranges),
    (7, _split_setting_versions),
)


def run_migrations(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Run the steps the file has not had yet; returns their versions."""
    row = _one(con.execute("SELECT value FROM meta WHERE key = 'schema_version'"))
    current = int(row[0]) if row else 0
    done = []
    for version, step in MIGRATIONS:
        if current >= version:
            continue
        con.execute("BEGIN")
        try:
            step(con)
            con.execute("INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE "
                        "SET value = excluded.value", [str(version)])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        done.append(version)
    return done


def open_store(cfg: Settings | None = None) -> Store:
    """The store of these settings (default: the process's), honouring every storage setting: the one
    way product code gets a Store. Cheap: a Store holds no open connection."""
    from tenantpilot.config import settings

    cfg = cfg or settings()
    return Store(cfg.db_path, cfg.db_lock_timeout_s, cfg.history_days)
