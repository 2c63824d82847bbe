"""Snapshot writes: one sync's rows become the tenant's current snapshot in one transaction, writing only
what changed (rows closed, rows added), carrying forward the types the run could not read, and dropping
history older than the store's `history_days`. Also the bulk loads benchmarks and tools use.

Honest partial runs: a run records, per policy type, whether Graph let us read it (`run_types`).
A type it could not read (403, 5xx after retries, not served in this cloud) keeps its last good
rows: they stay open, and the views show them in the new run with `carried_from_run` set to the
run that really read them, so they read as carried forward, never as deleted. A deletion is only
what Graph showed as gone (the type's list answered without the policy).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from tenantpilot.store.connection import Connection, StoreError, _now, _one, _rollback, _scalar
from tenantpilot.store.schema import (
    _IDENTITY,
    _SCHEMAS,
    _VERSION_SHAPE,
    _VERSIONS,
    TEXT_COLUMNS,
    VERSION_COLUMNS,
    _add_texts,
    _close_settings,
    _drop_unused_history,
    _hash,
    _quote,
)

if TYPE_CHECKING:
    from tenantpilot.sync.reuse import Reused
    from tenantpilot.sync.snapshot import Parts

ACTIVE = ("queued", "running")
# SQL over `v` (a version row): a row of a policy this run reused (registered as `_reused`: type_key, policy_id)
REUSED_ROWS = ("EXISTS (SELECT 1 FROM _reused r WHERE r.policy_id = v.policy_id "
               "AND (v.type_key IS NULL OR v.type_key = r.type_key))")
DONE_OK = ("succeeded", "partial")


@dataclass(frozen=True)
class TypeOutcome:
    """What one sync run did with one policy type: read it, or could not (then its rows are carried)."""

    key: str  # the policy type (graph.policy_types key)
    family: str  # the policy family its rows have in `policy_type`
    label: str
    read: bool
    reason: str = ""  # forbidden | unavailable | failed (when not read)
    message: str = ""


class Writes(Connection):
    """write_snapshot and its steps."""

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
        reused: Reused | None = None,
    ) -> dict[str, int]:
        """Write one complete snapshot and mark the run done, all in one transaction.

        The rows come as frames (small snapshots) or as Parquet `parts` (syncs: flattened to disk
        first, so memory stays bounded and the file lock is held only for the bulk insert).
        Only what changed is written: rows the tenant's current snapshot has and this one does not are
        closed (valid_to_run = this run), rows it does not have yet are added; unchanged rows stay.
        `types` says, per policy type, whether this run read it; `type_of` maps policy id to type.
        Every type not read keeps its current rows, which this run then shows as carried forward.
        `reused` (sync/reuse.py): policies the run kept unread because the audit log shows them unchanged; their
        current rows stay as they are, confirmed by this run (not carried forward), and the run records how many.
        History older than the store's `history_days` is dropped. Returns the counts of the snapshot (carried rows
        included), `carried_settings`, and `changed_settings` (rows closed + rows added)."""
        if status not in DONE_OK:
            raise ValueError(status)
        finished = _now()
        given = {"policies": policies, "settings": settings, "assignments": assignments}
        frames = {k: (v if v is not None else pl.DataFrame(schema=_SCHEMAS[k])) for k, v in given.items()}
        types_frame = pl.DataFrame({"policy_id": list(type_of or {}), "type_key": list((type_of or {}).values())},
                                   schema={"policy_id": pl.String, "type_key": pl.String})
        kept_policies = list(reused.policies) if reused is not None else []
        reused_frame = pl.DataFrame({"type_key": [k for k, _ in kept_policies], "policy_id": [p for _, p in kept_policies]},
                                    schema={"type_key": pl.String, "policy_id": pl.String})
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
                con.register("_reused", reused_frame.to_arrow())
                kept = f"({self._kept_types(types)} OR {REUSED_ROWS})" if kept_policies else self._kept_types(types)
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
                con.unregister("_reused")
                carried = self._record_types(con, run_id, tenant_id, types, int(previous[0]) if previous else None)
                totals = {kind: _scalar(con.execute(f"SELECT count(*) FROM {_VERSIONS[kind]} WHERE tenant_id = ? "
                                                    "AND valid_to_run IS NULL", [tenant_id]))
                          for kind in ("policies", "settings")}
                con.execute(
                    "UPDATE sync_runs SET status = ?, finished_at = ?, policy_count = ?, setting_count = ?, "
                    "request_count = ?, warnings = ?, error = NULL, reused_policies = ?, reused_since = ?, "
                    "full_read_at = ? WHERE run_id = ?",
                    [status, finished, totals["policies"], totals["settings"], request_count,
                     json.dumps(list(warnings)), len(kept_policies),
                     reused.since if kept_policies and reused else None,
                     reused.full_read_at if kept_policies and reused else None, run_id],
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
            closed, added = Writes._replace_settings(con, run_id, tenant_id, gone, added_sql)
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
                kept = Writes._kept_types(types, only=t)
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
