"""The registry: tenants (keys, aliases, re-keying to the GUID), sync runs, schedules, the deviation
register, Intune audit events, and the caches of setting definitions and directory names.

Tenant keys are normalised here (tenantpilot.tenants.tenant_key), whatever the caller passed.
A tenant added by a domain is re-keyed to its GUID once a sync learns it; the domain becomes an
alias (`tenant_aliases`), so adding it again finds the existing tenant.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from tenantpilot.store.connection import Connection, NotFound, StoreError, _now, _one, _rollback, _scalar
from tenantpilot.store.schema import _VERSIONS, _drop_unused_history, _drop_unused_texts
from tenantpilot.tenants import is_guid, tenant_key

if TYPE_CHECKING:
    from tenantpilot.analysis.deviations import NewDeviation


@dataclass(frozen=True)
class AddResult:
    tenant_id: str  # the tenant the key belongs to now
    outcome: str  # added | renamed | alias (the key is a domain of tenant_id: nothing was added)


class Registry(Connection):
    """Tenants, runs, schedules, deviations, audit events, definition and name caches."""

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
                          "audit_events", "tenant_group_members", "tenant_alert_channels", "tenants"):
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
            self._rekey_access(con, old, new)
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

    def create_scheduled_runs(self, due: Sequence[tuple[str, datetime]]) -> list[tuple[str, int, bool]]:
        """The schedule tick's runs, in one transaction: for each (tenant, slot) the tenant's queued or
        running run, or a new queued run (trigger 'schedule'), and the slot recorded as fired. Returns
        (tenant, run id, created) per tenant that exists (unknown tenants are left out). One write for a
        whole night: a write per run took 131 s for 999 tenants, holding the file all that time.

        The new runs have no `sent_at` until the caller has queued their messages (mark_sent): until
        then they are being queued, and the orphan repair leaves them alone."""
        if not due:
            return []
        frame = pl.DataFrame({"tenant_id": [t for t, _ in due], "slot": [s for _, s in due]},
                             schema={"tenant_id": pl.String, "slot": pl.Datetime("us", "UTC")})
        with self.connect(write=True) as con:
            con.execute("BEGIN")
            try:
                con.register("_due", frame.to_arrow())
                con.execute("""CREATE OR REPLACE TEMP TABLE _plan AS
                    SELECT d.tenant_id, d.slot,
                           (SELECT max(r.run_id) FROM sync_runs r WHERE r.tenant_id = d.tenant_id
                            AND r.status IN ('queued', 'running')) AS active_run
                    FROM _due d SEMI JOIN tenants t ON t.tenant_id = d.tenant_id""")
                con.execute("""CREATE OR REPLACE TEMP TABLE _new AS
                    SELECT tenant_id, nextval('run_seq') AS run_id FROM _plan WHERE active_run IS NULL""")
                con.execute("INSERT INTO sync_runs (run_id, tenant_id, status, queued_at, source, trigger) "
                            "SELECT run_id, tenant_id, 'queued', ?, 'graph', 'schedule' FROM _new", [_now()])
                rows = con.execute(
                    """SELECT p.tenant_id, coalesce(p.active_run, n.run_id) AS run_id, p.active_run IS NULL
                       FROM _plan p LEFT JOIN _new n USING (tenant_id) ORDER BY run_id""").fetchall()
                con.execute(
                    """INSERT INTO tenant_schedules (tenant_id, last_slot, last_fired_at, last_run_id)
                       SELECT p.tenant_id, p.slot, ?, coalesce(p.active_run, n.run_id)
                       FROM _plan p LEFT JOIN _new n USING (tenant_id)
                       ON CONFLICT (tenant_id) DO UPDATE SET last_slot = excluded.last_slot,
                         last_fired_at = excluded.last_fired_at, last_run_id = excluded.last_run_id""", [_now()])
                con.execute("DROP TABLE _plan")
                con.execute("DROP TABLE _new")
                con.unregister("_due")
                con.execute("COMMIT")
            except BaseException as exc:
                _rollback(con, exc)
                raise
        return [(str(t), int(r), bool(c)) for t, r, c in rows]

    def mark_sent(self, run_ids: Sequence[int]) -> None:
        """The queue messages of these queued runs were sent (from now on a run whose message is not
        in the queue is an orphan: the queue lost it)."""
        if not run_ids:
            return
        with self.connect(write=True) as con:
            con.register("_sent", pl.DataFrame({"run_id": list(run_ids)}, schema={"run_id": pl.Int64}).to_arrow())
            con.execute("UPDATE sync_runs SET sent_at = ? WHERE sent_at IS NULL AND run_id IN "
                        "(SELECT run_id FROM _sent)", [_now()])
            con.unregister("_sent")

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
                         r.trigger, r.sent_at, r.reused_policies, r.reused_since, r.full_read_at
                  FROM sync_runs r LEFT JOIN tenants t USING (tenant_id)
                  {'WHERE ' + ' AND '.join(where) if where else ''}
                  ORDER BY r.run_id DESC LIMIT {int(limit)}"""
        with self.connect() as con:
            return con.sql(sql, params=args or None).pl()

    def reuse_basis(self, tenant_id: str, *, with_stored: bool = True) -> tuple[str | None, datetime | None,
                                                                            datetime | None, dict[str, str]]:
        """What the reuse rule (sync/reuse.py) reads: (the latest good run's status, its start, the start of the
        latest succeeded run that reused no policy, {policy id: raw_json} of the current policy versions; empty
        unless `with_stored`)."""
        key = tenant_key(tenant_id)
        with self.connect() as con:
            # timestamps through Arrow (polars), as every read here: DuckDB's Python values would need pytz
            runs = con.sql("""SELECT (SELECT status FROM sync_runs WHERE tenant_id = $1 AND status IN
                                        ('succeeded', 'partial') ORDER BY run_id DESC LIMIT 1) AS status,
                                     (SELECT started_at FROM sync_runs WHERE tenant_id = $1 AND status IN
                                        ('succeeded', 'partial') ORDER BY run_id DESC LIMIT 1) AS started_at,
                                     (SELECT max(started_at) FROM sync_runs WHERE tenant_id = $1
                                        AND status = 'succeeded' AND coalesce(reused_policies, 0) = 0) AS full_read
                           """, params=[key]).pl().row(0)
            stored = dict(con.execute("SELECT policy_id, raw_json FROM policy_versions WHERE tenant_id = ? "
                                      "AND valid_to_run IS NULL", [key]).fetchall()) if with_stored else {}
        return runs[0], runs[1], runs[2], stored

    # -- directory names cache (per tenant: group and filter ids differ in every tenant) ---------
    def directory_names(self, tenant_id: str, *, fetched_since: datetime | None = None) -> dict[str, dict[str, str]]:
        """{kind: {object id: display name}} cached for a tenant (graph/directory.py KINDS); with
        `fetched_since`, only the names read from Graph since then."""
        with self.connect() as con:
            rows = con.execute("SELECT kind, object_id, display_name FROM directory_names WHERE tenant_id = ? "
                               "AND (CAST(? AS TIMESTAMPTZ) IS NULL OR fetched_at >= ?)",
                               [tenant_key(tenant_id), fetched_since, fetched_since]).fetchall()
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

    def _rekey_access(self, con: duckdb.DuckDBPyConnection, old: str, new: str) -> None:
        """A tenant re-keyed from a domain to its GUID stays in its groups (so limited users keep seeing it and it
        keeps following its groups' schedule, baseline and alert channels), keeps its own alert channels, and its
        activity rows follow it."""
        for table, other in (("tenant_group_members", "group_name"), ("tenant_alert_channels", "channel")):
            con.execute(f"INSERT OR IGNORE INTO {table} (tenant_id, {other}) SELECT ?, {other} FROM {table} "
                        "WHERE tenant_id = ?", [new, old])
            con.execute(f"DELETE FROM {table} WHERE tenant_id = ?", [old])
        con.execute("UPDATE activity SET tenant_id = ? WHERE tenant_id = ?", [new, old])

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
    def add_deviation(self, deviation: NewDeviation, *, accepted_by: str | None = None) -> int:
        """Record an accepted deviation (checked by deviations.validate) and who accepted it (the signed-in user's
        actor, cli:<os user>); returns its id."""
        d = deviation
        with self.connect(write=True) as con:
            row = _one(con.execute(
                "INSERT INTO deviations (deviation_id, tenant_id, baseline_id, policy_type, scope, setting_key, "
                "setting_name, reason, owner, expires_on, created_at, removed_at, accepted_by) "
                "VALUES (nextval('deviation_seq'), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?) RETURNING deviation_id",
                [d.tenant_id, d.baseline_id, d.policy_type, d.scope, d.setting_key, d.setting_name, d.reason,
                 d.owner, d.expires_on, _now(), accepted_by]))
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
                         d.setting_name, d.reason, d.owner, d.accepted_by, d.expires_on, d.created_at,
                         d.removed_at
                  FROM deviations d LEFT JOIN tenants t ON t.tenant_id = d.tenant_id
                  LEFT JOIN tenants b ON b.tenant_id = d.baseline_id
                  WHERE {' AND '.join(where)} ORDER BY d.expires_on, d.deviation_id"""
        with self.connect() as con:
            frame = con.sql(sql, params=args or None).pl()
        return frame.cast({"created_at": pl.Datetime(time_zone="UTC"), "removed_at": pl.Datetime(time_zone="UTC"),
                           "expires_on": pl.Date})
