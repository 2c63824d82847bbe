"""Tenants' tables and widgets: the tenants with the data each shows, the schedules, the demo tenants
the local simulator serves, and the files an import left out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import polars as pl
import streamlit as st

from tenantpilot.app.escaping import reveal
from tenantpilot.app.labels import cause_expr
from tenantpilot.app.reads import config
from tenantpilot.ops.health import age

DEMO_TENANT_COUNT = 3  # `python -m tenantpilot simulate --tenants` default


def tenant_status_table(tenants: pl.DataFrame) -> pl.DataFrame:
    """The Tenants table: the last sync (which may have failed) and its cause, apart from the data shown and
    its age."""
    now = datetime.now(timezone.utc)
    shown = [("—" if r["current_run_id"] is None else
              f"run {r['current_run_id']}, {age(r['data_as_of'], now)}"
              + (" (part carried forward)" if r["current_status"] == "partial" else ""))
             for r in tenants.iter_rows(named=True)]
    return tenants.with_columns(pl.Series("shown", shown, dtype=pl.String)).select(
        "display_name", pl.col("last_status").fill_null("never synced"), cause_expr("last_error").alias("last_error"),
        "last_run_at", "shown", "setting_count", "kind", "tenant_id")


# the tenants table's layout (tables.column_order): the tenant, how its last sync went and why
TENANT_FIRST: tuple[str, ...] = ("display_name", "last_status", "last_error")
TENANT_MORE: tuple[str, ...] = ("last_run_at", "shown", "setting_count", "kind")
TENANT_TECHNICAL: tuple[str, ...] = ("tenant_id",)


def schedule_table(plans: Sequence[dict[str, Any]]) -> pl.DataFrame:
    """The Tenants page's schedule rows (schedule.overview): tenant, schedule, next run, last scheduled run."""
    return pl.DataFrame(
        {"tenant": [p["display_name"] for p in plans], "schedule": [p["described"] for p in plans],
         "next_run": [p["next_run"] for p in plans],
         "last_scheduled": [f"run {p['last_scheduled_run_id']}: {p['last_scheduled_status']}"
                            if p["last_scheduled_run_id"] is not None else None for p in plans],
         "last_scheduled_at": [p["last_scheduled_at"] for p in plans]},
        schema={"tenant": pl.String, "schedule": pl.String, "next_run": pl.Datetime("us", "UTC"),
                "last_scheduled": pl.String, "last_scheduled_at": pl.Datetime("us", "UTC")})


def demo_tenants() -> list[tuple[str, str]] | None:
    """The demo tenants the local simulator serves: those listed in its simulator.json while it runs,
    else the first DEMO_TENANT_COUNT of DEMO_TENANTS (what `python -m tenantpilot simulate` serves by
    default); None when the simulator package is not there. Adding all of DEMO_TENANTS would add
    tenants the simulator does not serve, whose syncs fail at sign-in."""
    try:
        served = json.loads(config().simulator_info_path.read_text(encoding="utf-8"))["tenants"]
        if served:
            return [(str(t["tenant_id"]), str(t["display_name"])) for t in served]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        from graphsim.demo import DEMO_TENANTS
    except ImportError:  # a deployment without the simulator: no demo button
        return None
    return [(str(t), str(n)) for t, n in DEMO_TENANTS][:DEMO_TENANT_COUNT]


def show_skipped(skipped: list[tuple[str, str]], heading: str) -> None:
    """The files of an import that were left out, with the reason, as a table."""
    if not skipped:
        return
    st.markdown(heading)
    st.dataframe({"file": [reveal(f) for f, _ in skipped], "reason": [reveal(r) for _, r in skipped]},
                 hide_index=True,
                 column_config={"file": st.column_config.TextColumn("File", width="large"),
                                "reason": st.column_config.TextColumn("Reason", width="large")},
                 key="import_skipped")
