"""Access records in DuckDB: tenant groups (a tenant belongs to any number), which users or role claims are
limited to which groups, and the activity log (who did what, when, to which tenant). A mixin of `Store`
(tenantpilot/store/__init__.py); `ACCESS_DDL` runs from `Store._migrate`. A group can carry a schedule that its
tenants without their own follow (`schedules_with_groups`, what the scheduler plans from) and a baseline that
alerts check its tenants against and Compare offers first (`group_baselines`), and alert channels (names only:
their endpoints are secrets of the environment) that its tenants' alerts go to unless a tenant names its own
(`alert_channels_of`; routing in tenantpilot/ops/channels.py). The rules that use these records
live in tenantpilot/access.py."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import duckdb
import polars as pl

ACCESS_DDL = """
CREATE TABLE IF NOT EXISTS tenant_group_members (
    group_name TEXT NOT NULL, tenant_id TEXT NOT NULL, PRIMARY KEY (group_name, tenant_id));
CREATE TABLE IF NOT EXISTS access_limits (
    principal TEXT NOT NULL, group_name TEXT NOT NULL, PRIMARY KEY (principal, group_name));
CREATE TABLE IF NOT EXISTS group_settings (
    group_name TEXT PRIMARY KEY, schedule TEXT, schedule_set_at TIMESTAMPTZ);
ALTER TABLE group_settings ADD COLUMN IF NOT EXISTS baseline_id TEXT;
CREATE TABLE IF NOT EXISTS group_alert_channels (
    group_name TEXT NOT NULL, channel TEXT NOT NULL, PRIMARY KEY (group_name, channel));
CREATE TABLE IF NOT EXISTS tenant_alert_channels (
    tenant_id TEXT NOT NULL, channel TEXT NOT NULL, PRIMARY KEY (tenant_id, channel));
CREATE SEQUENCE IF NOT EXISTS activity_seq START 1;
CREATE TABLE IF NOT EXISTS activity (
    activity_id BIGINT PRIMARY KEY, acted_at TIMESTAMPTZ NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    tenant_id TEXT, detail TEXT NOT NULL DEFAULT '');
"""
MAX_NAME = 200  # a group name, a principal


def _clean(text: str, what: str) -> str:
    value = " ".join((text or "").split())
    if not value or len(value) > MAX_NAME:
        raise ValueError(f"{what} must be 1 to {MAX_NAME} characters")
    return value


class AccessStore:
    """Tenant groups, access limits and the activity log (Store inherits these methods)."""

    def connect(self, *, write: bool = False) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        raise NotImplementedError  # Store's

    def tenant_schedules(self) -> pl.DataFrame:
        raise NotImplementedError  # Store's

    # -- tenant groups ---------------------------------------------------------------------------
    def set_group(self, group_name: str, tenant_ids: Sequence[str]) -> None:
        """The group holds exactly these tenants (none: the group is gone, and every limit to it)."""
        name = _clean(group_name, "A group name")
        with self.connect(write=True) as con:
            con.execute("BEGIN")
            con.execute("DELETE FROM tenant_group_members WHERE group_name = ?", [name])
            if tenant_ids:
                con.executemany("INSERT INTO tenant_group_members VALUES (?, ?)", [[name, t] for t in set(tenant_ids)])
            else:
                con.execute("DELETE FROM access_limits WHERE group_name = ?", [name])
                con.execute("DELETE FROM group_settings WHERE group_name = ?", [name])
                con.execute("DELETE FROM group_alert_channels WHERE group_name = ?", [name])
            con.execute("COMMIT")

    def set_group_schedule(self, group_name: str, schedule: str | None) -> None:
        """The cron (validated by ops.schedule.validate, or `off`) the group's tenants follow unless they have their
        own schedule; None: the group carries none (its tenants follow the global one)."""
        name = _clean(group_name, "A group name")
        now = dt.datetime.now(dt.timezone.utc)
        with self.connect(write=True) as con:
            con.execute("INSERT INTO group_settings (group_name, schedule, schedule_set_at) VALUES (?, ?, ?) "
                        "ON CONFLICT (group_name) DO UPDATE SET schedule = excluded.schedule, "
                        "schedule_set_at = excluded.schedule_set_at",
                        [name, schedule, now])

    def set_group_baseline(self, group_name: str, baseline_id: str | None) -> None:
        """The baseline (an imported baseline's tenant id) the group's tenants are held to; None: none."""
        name = _clean(group_name, "A group name")
        with self.connect(write=True) as con:
            con.execute("INSERT INTO group_settings (group_name, baseline_id) VALUES (?, ?) ON CONFLICT (group_name) "
                        "DO UPDATE SET baseline_id = excluded.baseline_id", [name, baseline_id])

    def group_baselines(self, tenant_id: str) -> list[str]:
        """The baselines of the tenant's groups, by group name (empty: its groups carry none)."""
        with self.connect() as con:
            rows = con.execute("""SELECT g.baseline_id FROM tenant_group_members m JOIN group_settings g USING (group_name)
                                  WHERE m.tenant_id = ? AND g.baseline_id IS NOT NULL
                                  ORDER BY g.group_name""", [tenant_id]).fetchall()
        return list(dict.fromkeys(str(r[0]) for r in rows))

    # -- alert channels (names only) ---------------------------------------------------------------
    def set_alert_channels(self, *, group_name: str | None = None, tenant_id: str | None = None,
                           channels: Sequence[str] = ()) -> None:
        """The channel names (ops.channels.check_name'd by the caller) of a group or of a tenant; none: the group
        carries none / the tenant follows its groups."""
        table, column, owner = (("group_alert_channels", "group_name", _clean(group_name, "A group name"))
                                if group_name is not None else ("tenant_alert_channels", "tenant_id", tenant_id))
        if not owner:
            raise ValueError("name a group or a tenant")
        with self.connect(write=True) as con:
            con.execute("BEGIN")
            con.execute(f"DELETE FROM {table} WHERE {column} = ?", [owner])
            if channels:
                con.executemany(f"INSERT INTO {table} VALUES (?, ?)", [[owner, c] for c in dict.fromkeys(channels)])
            con.execute("COMMIT")

    def alert_channels_of(self, tenant_id: str) -> tuple[list[str], list[str]]:
        """(the tenant's own channel names, its groups' channel names by group name)."""
        with self.connect() as con:
            own = con.execute("SELECT channel FROM tenant_alert_channels WHERE tenant_id = ? ORDER BY channel",
                              [tenant_id]).fetchall()
            groups = con.execute("""SELECT c.channel FROM tenant_group_members m JOIN group_alert_channels c
                                    USING (group_name) WHERE m.tenant_id = ? ORDER BY c.group_name, c.channel""",
                                 [tenant_id]).fetchall()
        return [str(r[0]) for r in own], list(dict.fromkeys(str(r[0]) for r in groups))

    def alert_channel_settings(self) -> pl.DataFrame:
        """(kind: group | tenant, owner: group name | tenant id, channels: list) of every group and tenant that
        names channels."""
        with self.connect() as con:
            return con.sql("""SELECT 'group' AS kind, group_name AS owner, list(channel ORDER BY channel) AS channels
                              FROM group_alert_channels GROUP BY group_name
                              UNION ALL
                              SELECT 'tenant', tenant_id, list(channel ORDER BY channel) FROM tenant_alert_channels
                              GROUP BY tenant_id ORDER BY 1, 2""").pl()

    def group_settings(self) -> pl.DataFrame:
        """(group_name, schedule, schedule_set_at, baseline_id) of every group that carries a setting."""
        with self.connect() as con:
            return con.sql("SELECT group_name, schedule, schedule_set_at, baseline_id FROM group_settings "
                           "ORDER BY group_name").pl()

    def schedules_with_groups(self) -> pl.DataFrame:
        """Store.tenant_schedules() where a tenant without its own schedule takes its group's (of several groups
        with one: the first by name), with `schedule_source` (`group <name>`; NULL: the tenant's own or the
        global one) and the group schedule's set time (a slot before it never fires)."""
        rows = self.tenant_schedules()
        with self.connect() as con:
            groups = con.sql("""SELECT m.tenant_id, arg_min(g.group_name, g.group_name) AS group_name,
                                       arg_min(g.schedule, g.group_name) AS group_schedule,
                                       arg_min(g.schedule_set_at, g.group_name) AS group_set_at
                                FROM tenant_group_members m JOIN group_settings g USING (group_name)
                                WHERE g.schedule IS NOT NULL GROUP BY m.tenant_id""").pl()
        joined = rows.join(groups, on="tenant_id", how="left")
        from_group = pl.col("schedule").is_null() & pl.col("group_schedule").is_not_null()
        return joined.with_columns(
            pl.when(from_group).then(pl.col("group_schedule")).otherwise(pl.col("schedule")).alias("schedule"),
            pl.when(from_group).then(pl.col("group_set_at")).otherwise(pl.col("schedule_set_at"))
            .alias("schedule_set_at"),
            pl.when(from_group).then(pl.lit("group ") + pl.col("group_name")).otherwise(pl.lit(None, pl.String))
            .alias("schedule_source"),
        ).drop("group_name", "group_schedule", "group_set_at")

    def group_members(self) -> pl.DataFrame:
        """(group_name, tenant_id) of every group, by group name."""
        with self.connect() as con:
            return con.sql("SELECT group_name, tenant_id FROM tenant_group_members ORDER BY group_name, tenant_id").pl()

    # -- limits ----------------------------------------------------------------------------------
    def set_limits(self, principal: str, group_names: Sequence[str]) -> None:
        """The principal (a user's sign-in name, or `role:` + an app-role value or group id of the token) sees
        only these groups' tenants; no groups: the limit is lifted."""
        who = _clean(principal, "A user or role")
        with self.connect(write=True) as con:
            con.execute("BEGIN")
            con.execute("DELETE FROM access_limits WHERE principal = ?", [who])
            if group_names:
                con.executemany("INSERT INTO access_limits VALUES (?, ?)", [[who, g] for g in set(group_names)])
            con.execute("COMMIT")

    def access_limits(self) -> pl.DataFrame:
        """(principal, group_name) of every limit."""
        with self.connect() as con:
            return con.sql("SELECT principal, group_name FROM access_limits ORDER BY principal, group_name").pl()

    # -- activity --------------------------------------------------------------------------------
    def record_activity(self, actor: str, action: str, tenant_ids: Sequence[str | None] = (None,),
                        detail: str = "") -> None:
        """One row per tenant acted on (None: an action on no tenant)."""
        now = dt.datetime.now(dt.timezone.utc)
        rows: list[list[Any]] = [[now, actor, action, t, detail] for t in (tenant_ids or [None])]
        with self.connect(write=True) as con:
            con.executemany("INSERT INTO activity VALUES (nextval('activity_seq'), ?, ?, ?, ?, ?)", rows)

    def activity(self, tenant_ids: Sequence[str] | None = None, *, limit: int = 1000) -> pl.DataFrame:
        """The latest actions, newest first, with the tenant's name; `tenant_ids` keeps those tenants' actions
        and the actions on no tenant."""
        where, args = "TRUE", []
        if tenant_ids is not None:
            where = f"(a.tenant_id IS NULL OR a.tenant_id IN ({','.join('?' * len(tenant_ids)) or 'NULL'}))"
            args = list(tenant_ids)
        with self.connect() as con:
            return con.sql(f"""SELECT a.activity_id, a.acted_at, a.actor, a.action, a.tenant_id,
                                      coalesce(t.display_name, a.tenant_id) AS tenant, a.detail
                               FROM activity a LEFT JOIN tenants t USING (tenant_id) WHERE {where}
                               ORDER BY a.activity_id DESC LIMIT {int(limit)}""", params=args or None).pl()


