"""DuckDB storage: the only code that opens the database file.

Model: every sync run writes a complete snapshot (policies, settings, assignments tagged with
its run_id) and flips the run to succeeded/partial in ONE transaction. A tenant's *current*
snapshot is its latest succeeded or partial run, so a failed run leaves the previous snapshot
current, and a policy deleted in Intune disappears from current because the new snapshot simply
does not contain it. Older snapshots are pruned to `keep_runs` per tenant (they feed drift).

Honest partial runs: a run records, per policy type, whether Graph let us read it (`run_types`).
A type it could not read (403, 5xx after retries, not served in this cloud) keeps its last good
rows: they are copied into the new snapshot with `carried_from_run` set to the run that really
read them, so every view shows them as carried forward, never as deleted. A deletion is only
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
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from tenantpilot.flatten import secrets
from tenantpilot.flatten.schema import ASSIGNMENT_SCHEMA, POLICY_SCHEMA, SETTING_SCHEMA
from tenantpilot.tenants import is_guid, tenant_key

if TYPE_CHECKING:
    from tenantpilot.snapshot import Parts

SCHEMA_VERSION = 5  # the last step of MIGRATIONS (bottom of this module)
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
_SETTING_COLS_SQL = ",\n  ".join(f"{c} {_sql_type[t]}" for c, t in SETTING_SCHEMA.items())
_ASSIGN_COLS_SQL = ",\n  ".join(f"{c} {_sql_type[t]}" for c, t in ASSIGNMENT_SCHEMA.items())

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
CREATE TABLE IF NOT EXISTS policies (
  run_id BIGINT NOT NULL,
  tenant_id VARCHAR NOT NULL,
  policy_id VARCHAR,
  policy_name VARCHAR,
  policy_type VARCHAR,
  odata_type VARCHAR,
  platform VARCHAR,
  raw_json VARCHAR
);
CREATE TABLE IF NOT EXISTS settings (
  run_id BIGINT NOT NULL,
  tenant_id VARCHAR NOT NULL,
  {_SETTING_COLS_SQL},
  synced_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS assignments (
  run_id BIGINT NOT NULL,
  tenant_id VARCHAR NOT NULL,
  {_ASSIGN_COLS_SQL}
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
ALTER TABLE policies ADD COLUMN IF NOT EXISTS type_key VARCHAR;
ALTER TABLE policies ADD COLUMN IF NOT EXISTS carried_from_run BIGINT;
ALTER TABLE settings ADD COLUMN IF NOT EXISTS carried_from_run BIGINT;
ALTER TABLE assignments ADD COLUMN IF NOT EXISTS carried_from_run BIGINT;
-- flatten/configured.py: False = the portal's "Not configured"; rows stored before: NULL = configured
ALTER TABLE settings ADD COLUMN IF NOT EXISTS configured BOOLEAN;
ALTER TABLE assignments ADD COLUMN IF NOT EXISTS filter_name VARCHAR;
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
-- schedules (tenantpilot/schedule.py): a tenant's own cron or 'off' (schedule NULL or no row: the
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
"""

_SCHEMAS = {"policies": POLICY_SCHEMA, "settings": SETTING_SCHEMA, "assignments": ASSIGNMENT_SCHEMA}
_process_lock = threading.RLock()
_initialised: set[str] = set()


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
class Store:
    """Handle on one DuckDB file. Cheap to create; holds no open connection."""

    path: Path
    lock_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    # -- connections -------------------------------------------------------------------------
    @contextmanager
    def connect(self, *, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the file for one short unit of work, retrying the cross-process lock."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        key = str(self.path)
        with _process_lock:
            if key not in _initialised or not self.path.exists():
                write = True  # first open in this process creates / migrates the schema
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

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute(DDL)
        run_migrations(con)
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
            for table in ("settings", "policies", "assignments", "run_types", "sync_runs", "tenant_aliases",
                          "directory_names", "tenant_schedules", "audit_events", "tenants"):
                con.execute(f"DELETE FROM {table} WHERE tenant_id = ?", [key])
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
            for table in ("settings", "policies", "assignments", "run_types", "sync_runs", "tenant_aliases"):
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
        store = self if lock_timeout_s is None else Store(self.path, lock_timeout_s)
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
        keep_runs: int = 10,
        types: Sequence[TypeOutcome] = (),
        type_of: Mapping[str, str] | None = None,
    ) -> dict[str, int]:
        """Write one complete snapshot and mark the run done, all in one transaction.

        The rows come as frames (small snapshots) or as Parquet `parts` (syncs: flattened to disk
        first, so memory stays bounded and the file lock is held only for the bulk insert).
        `types` says, per policy type, whether this run read it; `type_of` maps policy id to type.
        Every type not read keeps the rows of the tenant's current run, marked carried forward.
        Returns the counts written (carried rows included) and `carried_settings`."""
        if status not in DONE_OK:
            raise ValueError(status)
        synced_at = _now()
        given = {"policies": policies, "settings": settings, "assignments": assignments}
        frames = {k: (v if v is not None else pl.DataFrame(schema=_SCHEMAS[k])) for k, v in given.items()}
        counts = parts.counts if parts is not None else {k: v.height for k, v in frames.items()}
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
                for table, schema in _SCHEMAS.items():
                    cols = ", ".join(schema)
                    extra = ", ?::TIMESTAMPTZ" if table == "settings" else ""
                    target = f"{table} (run_id, tenant_id, {cols}{', synced_at' if extra else ''})"
                    args: list[Any] = [tenant_id] + ([synced_at] if extra else [])
                    if parts is not None:
                        files = parts.files(table)
                        if files:
                            con.execute(f"INSERT INTO {target} SELECT {int(run_id)}, ?, {cols}{extra} "
                                        f"FROM read_parquet(?)", [*args, files])
                    elif frames[table].height:
                        con.register("_frame", frames[table].to_arrow())
                        con.execute(f"INSERT INTO {target} SELECT {int(run_id)}, ?, {cols}{extra} FROM _frame", args)
                        con.unregister("_frame")
                if type_of:
                    con.register("_types", pl.DataFrame({"policy_id": list(type_of), "type_key": list(type_of.values())},
                                                        schema={"policy_id": pl.String, "type_key": pl.String}).to_arrow())
                    con.execute("UPDATE policies SET type_key = t.type_key FROM _types t "
                                "WHERE policies.run_id = ? AND policies.policy_id = t.policy_id", [run_id])
                    con.unregister("_types")
                carried = self._carry_forward(con, run_id, tenant_id, types)
                total_policies = counts["policies"] + carried["policies"]
                total_settings = counts["settings"] + carried["settings"]
                con.execute(
                    "UPDATE sync_runs SET status = ?, finished_at = ?, policy_count = ?, setting_count = ?, "
                    "request_count = ?, warnings = ?, error = NULL WHERE run_id = ?",
                    [status, synced_at, total_policies, total_settings, request_count,
                     json.dumps(list(warnings)), run_id],
                )
                self._prune(con, tenant_id, keep_runs)
                con.execute("COMMIT")
            except BaseException as exc:
                _rollback(con, exc)
                raise
        return {"policies": total_policies, "settings": total_settings, "carried_settings": carried["settings"]}

    def _carry_forward(self, con: duckdb.DuckDBPyConnection, run_id: int, tenant_id: str,
                       types: Sequence[TypeOutcome]) -> dict[str, int]:
        """Record what the run did per type; copy the last good rows of every type it could not read."""
        carried = {"policies": 0, "settings": 0}
        if not types:
            return carried
        previous = _one(con.execute("SELECT run_id FROM current_runs WHERE tenant_id = ?", [tenant_id]))
        prev_run = int(previous[0]) if previous else None
        family_types: dict[str, int] = {}
        for t in types:
            family_types[t.family] = family_types.get(t.family, 0) + 1
        for t in types:
            status, source, n_pol, n_set = ("read", None, 0, 0)
            if not t.read:
                status = "skipped"
                if prev_run is not None:
                    # rows of this type in the current run; rows stored before v2 have no type_key and
                    # are matched by family when that family has this one type only
                    match = "(p.type_key = ? OR (p.type_key IS NULL AND ? AND p.policy_type = ?))"
                    margs = [t.key, family_types[t.family] == 1, t.family]
                    ids_sql = f"SELECT p.policy_id FROM policies p WHERE p.run_id = {prev_run} AND {match}"
                    pol_cols = "policy_id, policy_name, policy_type, odata_type, platform, raw_json"
                    n_pol = _scalar(con.execute(
                        f"SELECT count(*) FROM policies p WHERE p.run_id = {prev_run} AND {match}", margs))
                    if n_pol:
                        origin = f"coalesce(carried_from_run, {prev_run})"
                        con.execute(
                            f"INSERT INTO policies (run_id, tenant_id, {pol_cols}, type_key, carried_from_run) "
                            f"SELECT {int(run_id)}, tenant_id, {pol_cols}, ?, {origin} FROM policies p "
                            f"WHERE p.run_id = {prev_run} AND {match}", [t.key, *margs])
                        set_cols = ", ".join(SETTING_SCHEMA) + ", synced_at"
                        n_set = _scalar(con.execute(
                            f"SELECT count(*) FROM settings WHERE run_id = {prev_run} AND policy_id IN ({ids_sql})",
                            margs))
                        con.execute(
                            f"INSERT INTO settings (run_id, tenant_id, {set_cols}, carried_from_run) "
                            f"SELECT {int(run_id)}, tenant_id, {set_cols}, {origin} FROM settings "
                            f"WHERE run_id = {prev_run} AND policy_id IN ({ids_sql})", margs)
                        asg_cols = ", ".join(ASSIGNMENT_SCHEMA)
                        con.execute(
                            f"INSERT INTO assignments (run_id, tenant_id, {asg_cols}, carried_from_run) "
                            f"SELECT {int(run_id)}, tenant_id, {asg_cols}, {origin} FROM assignments "
                            f"WHERE run_id = {prev_run} AND policy_id IN ({ids_sql})", margs)
                        origin_run = _one(con.execute(
                            f"SELECT min(coalesce(carried_from_run, {prev_run})) FROM policies p "
                            f"WHERE p.run_id = {prev_run} AND {match}", margs))
                        source = int(origin_run[0]) if origin_run and origin_run[0] is not None else prev_run
                        status = "carried"
                        carried["policies"] += int(n_pol)
                        carried["settings"] += int(n_set)
            con.execute("INSERT INTO run_types VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [run_id, tenant_id, t.key, t.family, t.label, status, t.reason or None, t.message or None,
                         source, int(n_pol), int(n_set)])
        return carried

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

    def _prune(self, con: duckdb.DuckDBPyConnection, tenant_id: str, keep_runs: int) -> None:
        old = [r[0] for r in con.execute(
            "SELECT run_id FROM sync_runs WHERE tenant_id = ? AND status IN ('succeeded','partial') "
            "ORDER BY run_id DESC OFFSET ?", [tenant_id, keep_runs]).fetchall()]
        if old:
            marks = ",".join("?" * len(old))
            for table in ("settings", "policies", "assignments"):
                con.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", old)
            con.execute(f"UPDATE sync_runs SET status = 'pruned' WHERE run_id IN ({marks})", old)

    # -- reads for the app, compare and export ---------------------------------------------------
    def snapshot_token(self) -> tuple[tuple[str, int], ...]:
        """(tenant, current run) pairs: a cache key that changes when any snapshot changes."""
        with self.connect() as con:
            return tuple(con.execute("SELECT tenant_id, run_id FROM current_runs ORDER BY tenant_id").fetchall())

    def current_settings(self, tenant_ids: Sequence[str] | None = None) -> pl.DataFrame:
        """Rows of the current snapshot of the given tenants (all when None), with display names."""
        return self.run_settings(None, tenant_ids=tenant_ids)

    def run_settings(self, run_ids: Sequence[int] | None, tenant_ids: Sequence[str] | None = None) -> pl.DataFrame:
        """Setting rows of specific runs (None: each tenant's current run)."""
        args: list[Any] = []
        if run_ids is None:
            source = "SELECT run_id FROM current_runs"
            if tenant_ids is not None:
                source += f" WHERE tenant_id IN ({','.join('?' * len(tenant_ids)) or 'NULL'})"
                args.extend(tenant_ids)
        else:
            source = ",".join(str(int(r)) for r in run_ids) or "NULL"
        cols = ", ".join(f"s.{c}" for c in SETTING_SCHEMA)
        sql = f"""SELECT s.run_id, s.tenant_id, t.display_name AS tenant, {cols}, s.synced_at, s.carried_from_run
                  FROM settings s JOIN tenants t USING (tenant_id)
                  WHERE s.run_id IN ({source})"""
        with self.connect() as con:
            return con.sql(sql, params=args or None).pl()

    # -- reads sized to the screen: the database filters, counts and pages; only the page comes back
    # The current rows of every tenant: the one place that says what "current" is, for these reads.
    _CURRENT = "settings s WHERE s.run_id IN (SELECT run_id FROM current_runs)"
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
                    f"SELECT m.tenant_id, m.n FROM (SELECT s.tenant_id, count(*) AS n FROM {self._CURRENT} "
                    f"AND {where} GROUP BY s.tenant_id) m JOIN tenants t USING (tenant_id) "
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
                  FROM (SELECT * FROM {self._CURRENT} AND s.tenant_id IN ({marks}) AND {where}) s
                  JOIN tenants t USING (tenant_id)
                  ORDER BY {self._ORDER} LIMIT {int(limit)} OFFSET {int(offset - before)}"""
        with self.connect() as con:
            return con.sql(sql, params=[*span, *params] or None).pl()

    def settings_matching(self, where: str, params: Sequence[Any]) -> pl.DataFrame:
        """Every current row matching `where` (exports of what is filtered; detail views)."""
        cols = ", ".join(f"s.{c}" for c in SETTING_SCHEMA)
        sql = f"""SELECT s.run_id, s.tenant_id, t.display_name AS tenant, {cols}, s.synced_at, s.carried_from_run
                  FROM (SELECT * FROM {self._CURRENT} AND {where}) s JOIN tenants t USING (tenant_id)
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
        out: dict[str, list[str]] = {}
        source = ("policies s WHERE s.run_id IN (SELECT run_id FROM current_runs)"
                  if by_policy and self._POLICY_FACETS >= set(columns) else self._CURRENT)
        with self.connect() as con:
            for column in columns:
                if column not in SETTING_SCHEMA and column != "tenant_id":
                    raise ValueError(column)
                rows = con.execute(f"SELECT DISTINCT s.{column} FROM {source} AND {where} "
                                   f"AND s.{column} IS NOT NULL LIMIT {int(limit) + 1}", list(params)).fetchall()
                out[column] = sorted((str(r[0]) for r in rows), key=lambda v: (v.casefold(), v))
        return out

    def alignment_overview(self, baseline: str) -> pl.DataFrame:
        """Every tenant's alignment with `baseline` (compare.alignment_scores' columns), read from the
        per-run aggregates kept in `alignments`; pairs not computed yet are computed first, in SQL."""
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
            return con.sql(sql, params=[baseline, baseline]).pl()

    def refresh_alignments(self, pairs: Sequence[tuple[int, int]]) -> None:
        """Compute and keep the alignment of each (run, baseline run) pair (compare's rules, in SQL)."""
        from tenantpilot.compare import alignment_pairs_sql

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
                con.execute(f"INSERT OR REPLACE INTO alignments {alignment_pairs_sql('_pairs')}")
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
        args: list[Any] = []
        where = ""
        if tenant_ids is not None:
            where = f"WHERE tenant_id IN ({','.join('?' * len(tenant_ids)) or 'NULL'})"
            args.extend(tenant_ids)
        sql = f"""SELECT a.*, t.display_name AS tenant FROM assignments a JOIN tenants t USING (tenant_id)
                  WHERE a.run_id IN (SELECT run_id FROM current_runs {where})"""
        with self.connect() as con:
            return con.sql(sql, params=args or None).pl()

    def policy_raw(self, run_id: int, policy_id: str) -> str | None:
        with self.connect() as con:
            row = _one(con.execute("SELECT raw_json FROM policies WHERE run_id = ? AND policy_id = ?",
                              [run_id, policy_id]))
        return row[0] if row else None

    def current_policies(self, tenant_ids: Sequence[str] | None = None, *, with_raw: bool = False) -> pl.DataFrame:
        args: list[Any] = []
        where = ""
        if tenant_ids is not None:
            where = f"WHERE tenant_id IN ({','.join('?' * len(tenant_ids)) or 'NULL'})"
            args.extend(tenant_ids)
        raw = ", p.raw_json" if with_raw else ""
        sql = f"""SELECT p.run_id, p.tenant_id, p.policy_id, p.policy_name, p.policy_type, p.odata_type, p.platform{raw}
                  FROM policies p WHERE p.run_id IN (SELECT run_id FROM current_runs {where})"""
        with self.connect() as con:
            return con.sql(sql, params=args or None).pl()

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

    # -- schedules (tenantpilot/schedule.py; the periodic task is queue.schedule_tick) -------------
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


# --- migrations: versioned steps that bring an existing file up to SCHEMA_VERSION ---------------
# Each step runs once per file, in its own transaction together with the new schema_version, when
# the file's meta.schema_version is lower than the step's version (a new file runs them on empty
# tables). A step never needs the app: it works on what the file holds.

def _mask_stored_raw_json(con: duckdb.DuckDBPyConnection) -> None:
    """v2: raw JSON written before the one secret rule (flatten/secrets.py) kept what rows masked
    (wiFiPreSharedKey, proxyServerPassword, ...): mask it now. DuckDB picks the candidate rows with
    the rule's own text pattern; Python masks them."""
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


MIGRATIONS: tuple[tuple[int, Callable[[duckdb.DuckDBPyConnection], None]], ...] = (
    # 2 was the schema of carried-forward rows (DDL above); these steps are numbered after it so a
    # database that already says 2 still gets them
    (4, _mask_stored_raw_json),
    (5, _drop_imported_definitions),
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
