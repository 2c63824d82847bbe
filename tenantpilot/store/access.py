"""Access records in DuckDB: tenant groups (a tenant belongs to any number), which users or role claims are
limited to which groups, and the activity log (who did what, when, to which tenant). A mixin of `Store`
(tenantpilot/store/__init__.py); `ACCESS_DDL` runs from `Store._migrate`. The rules that use these records
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
            con.execute("COMMIT")

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


