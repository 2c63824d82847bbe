"""DuckDB storage: the only code that opens the database file.

Model: every sync run writes a complete snapshot (policies, settings, assignments tagged with
its run_id) and flips the run to succeeded/partial in ONE transaction. A tenant's *current*
snapshot is its latest succeeded or partial run, so a failed run leaves the previous snapshot
current, and a policy deleted in Intune disappears from current because the new snapshot simply
does not contain it. Older snapshots are pruned to `keep_runs` per tenant (they feed drift).

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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from tenantpilot.flatten import secrets
from tenantpilot.flatten.schema import ASSIGNMENT_SCHEMA, POLICY_SCHEMA, SETTING_SCHEMA

if TYPE_CHECKING:
    from tenantpilot.snapshot import Parts

SCHEMA_VERSION = 3  # the last step of MIGRATIONS (bottom of this module)
ACTIVE = ("queued", "running")
DONE_OK = ("succeeded", "partial")


class StoreError(RuntimeError):
    """Base class of storage errors; the message says what to do."""


class StoreBusy(StoreError):
    """The database stayed locked by another process longer than the retry budget."""


class NotFound(StoreError):
    pass


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


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "lock" in text.lower() and ("Could not set lock" in text or "Conflicting lock" in text)


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
    def add_tenant(self, tenant_id: str, display_name: str, kind: str = "tenant") -> None:
        with self.connect(write=True) as con:
            con.execute(
                "INSERT INTO tenants VALUES (?, ?, ?, ?) ON CONFLICT (tenant_id) DO UPDATE "
                "SET display_name = excluded.display_name",
                [tenant_id, display_name, kind, _now()],
            )

    def remove_tenant(self, tenant_id: str) -> bool:
        """Delete a tenant and all its data; False when it did not exist."""
        with self.connect(write=True) as con:
            con.execute("BEGIN")
            found = _scalar(con.execute("SELECT count(*) FROM tenants WHERE tenant_id = ?", [tenant_id]))
            for table in ("settings", "policies", "assignments", "sync_runs", "tenants"):
                con.execute(f"DELETE FROM {table} WHERE tenant_id = ?", [tenant_id])
            con.execute("COMMIT")
        return bool(found)

    def tenants(self) -> pl.DataFrame:
        with self.connect() as con:
            return con.sql(
                """SELECT t.tenant_id, t.display_name, t.kind, t.added_at,
                          c.run_id AS current_run_id, r.finished_at AS last_synced, r.status AS last_status,
                          r.setting_count
                   FROM tenants t LEFT JOIN current_runs c USING (tenant_id)
                   LEFT JOIN sync_runs r ON r.run_id = c.run_id
                   ORDER BY t.kind, lower(t.display_name)"""
            ).pl()

    def get_tenant(self, tenant_id: str) -> dict[str, Any] | None:
        with self.connect() as con:
            row = _one(con.execute(
                "SELECT tenant_id, display_name, kind FROM tenants WHERE tenant_id = ?", [tenant_id]
            ))
        return dict(zip(("tenant_id", "display_name", "kind"), row)) if row else None

    # -- runs --------------------------------------------------------------------------------
    def create_run_unless_active(self, tenant_id: str, source: str = "graph") -> tuple[int, bool]:
        """Atomically return the tenant's queued/running run, or create a queued one.

        Atomic across processes: the read-write open holds DuckDB's exclusive file lock.
        """
        with self.connect(write=True) as con:
            con.execute("BEGIN")
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
                "INSERT INTO sync_runs (run_id, tenant_id, status, queued_at, source) VALUES (?, ?, 'queued', ?, ?)",
                [run_id, tenant_id, _now(), source],
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
                 warnings: Sequence[str] = ()) -> None:
        with self.connect(write=True) as con:
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
            where.append("r.tenant_id = ?")
            args.append(tenant_id)
        if run_ids is not None:
            where.append(f"r.run_id IN ({','.join('?' * len(run_ids)) or 'NULL'})")
            args.extend(run_ids)
        if statuses:
            where.append(f"r.status IN ({','.join('?' * len(statuses))})")
            args.extend(statuses)
        sql = f"""SELECT r.run_id, r.tenant_id, t.display_name, r.status, r.queued_at, r.started_at, r.finished_at,
                         date_diff('millisecond', r.started_at, r.finished_at) / 1000.0 AS duration_s,
                         r.policy_count, r.setting_count, r.request_count, r.warnings, r.error, r.source
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
    ) -> None:
        """Write one complete snapshot and mark the run done, all in one transaction.

        The rows come as frames (small snapshots) or as Parquet `parts` (syncs: flattened to disk
        first, so memory stays bounded and the file lock is held only for the bulk insert)."""
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
                con.execute(
                    "UPDATE sync_runs SET status = ?, finished_at = ?, policy_count = ?, setting_count = ?, "
                    "request_count = ?, warnings = ?, error = NULL WHERE run_id = ?",
                    [status, synced_at, counts["policies"], counts["settings"], request_count,
                     json.dumps(list(warnings)), run_id],
                )
                self._prune(con, tenant_id, keep_runs)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

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
        sql = f"""SELECT s.run_id, s.tenant_id, t.display_name AS tenant, {cols}, s.synced_at
                  FROM settings s JOIN tenants t USING (tenant_id)
                  WHERE s.run_id IN ({source})"""
        with self.connect() as con:
            return con.sql(sql, params=args or None).pl()

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
    (2, _mask_stored_raw_json),
    (3, _drop_imported_definitions),
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
