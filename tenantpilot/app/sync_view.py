"""Sync's widgets: one run as a card (queued, running with its progress, finished with its figures),
and the history table with links to Explore and Compare filtered to the run's tenant."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import polars as pl
import streamlit as st

from tenantpilot.app.escaping import inert, inert_frame
from tenantpilot.app.labels import REUSE_HELP, cause_expr, duration, reuse_cell, reuse_line
from tenantpilot.ops import progress


def render_run(run: dict[str, Any], prog: dict[str, Any] | None) -> None:
    """One run as a card: its status badge, live progress while it runs, its figures or error when done."""
    name = inert(run["display_name"] or run["tenant_id"])
    status = run["status"]
    head = f"**{name}** · run {run['run_id']}"
    if status == "queued":
        st.markdown(f"{head} · :gray-badge[queued] — waiting for the worker")
    elif status == "running":
        phase = inert(progress.waiting_text(prog) or (prog or {}).get("phase") or "starting")
        done, total = (prog or {}).get("done") or 0, (prog or {}).get("total")
        st.markdown(f"{head} · :blue-badge[running] — {phase}" + (f" {done:,}/{total:,}" if total else ""))
        st.progress(min(done / total, 1.0) if total else 0.0)
    else:
        color = {"succeeded": "green", "partial": "orange", "failed": "red"}.get(status, "gray")
        detail = ""
        if status in ("succeeded", "partial"):
            detail = (f" — {run['policy_count'] or 0:,} policies, {run['setting_count'] or 0:,} settings, "
                      f"{run['request_count'] or 0:,} requests in {duration(run['duration_s'])}")
        st.markdown(f"{head} · :{color}-badge[{status}]{detail}")
        reused = reuse_line(run, _full_read_days())
        if reused:
            st.caption(reused)
        if run["error"]:
            st.error(inert(run["error"]))
    warnings = json.loads(run["warnings"] or "[]")
    if len(warnings) == 1:
        st.warning(inert(warnings[0]))
    elif warnings:  # one line that opens: a partial run's warnings must not bury the other runs
        with st.expander(f"{len(warnings):,} warnings", icon=":material/warning:"):
            st.markdown("\n".join(f"- {inert(w)}" for w in warnings))


def _full_read_days() -> int:
    from tenantpilot.app import reads

    return reads.config().full_read_days


def history_table(history: pl.DataFrame, labels: dict[str, str]) -> None:
    """Finished runs, one compact row each, with links to Explore and Compare filtered to the tenant."""
    label = pl.col("tenant_id").replace_strict(labels, default=pl.col("tenant_id"), return_dtype=pl.String)
    history = history.with_columns(pl.Series("reuse", [reuse_cell(r) for r in history.iter_rows(named=True)],
                                             dtype=pl.String))
    st.dataframe(
        inert_frame(history.select(
            "run_id", pl.col("display_name").alias("tenant"), "status", "queued_at", "duration_s", "policy_count",
            "setting_count", "request_count",
            pl.col("warnings").map_elements(lambda w: len(json.loads(w or "[]")), return_dtype=pl.Int64)
            .alias("warnings"),
            pl.coalesce(cause_expr("error"), pl.col("warnings").map_elements(
                lambda w: (json.loads(w or "[]") or [None])[0], return_dtype=pl.String)).alias("error"),
            "reuse",
            ("/explore?" + label.map_elements(lambda t: urlencode({"ex_tenants": t}), return_dtype=pl.String))
            .alias("explore"),
            ("/compare?" + label.map_elements(lambda t: urlencode({"cmp_tenants": t}), return_dtype=pl.String))
            .alias("compare"),
        )),
        hide_index=True, placeholder="—",
        column_config={
            "run_id": st.column_config.NumberColumn("Run", format="%d"),
            "tenant": "Tenant",
            "status": "Status",
            "queued_at": st.column_config.DatetimeColumn("Queued", format="YYYY-MM-DD HH:mm:ss"),
            "duration_s": st.column_config.NumberColumn("Duration (s)", format="%.1f"),
            "policy_count": st.column_config.NumberColumn("Policies", format="localized"),
            "setting_count": st.column_config.NumberColumn("Settings", format="localized"),
            "request_count": st.column_config.NumberColumn("Requests", format="localized"),
            "warnings": st.column_config.NumberColumn("Warnings"),
            "error": st.column_config.TextColumn("Error or first warning", width=360),
            "reuse": st.column_config.TextColumn("Not re-read", width=150,
                                                 help=REUSE_HELP.format(days=_full_read_days())),
            "explore": st.column_config.LinkColumn("Explore", display_text="Explore"),
            "compare": st.column_config.LinkColumn("Compare", display_text="Compare"),
        },
        column_order=("run_id", "tenant", "status", "error", "reuse", "queued_at", "explore", "compare", "policy_count",
                      "setting_count", "warnings", "duration_s", "request_count"),
        key="sync_history",
    )


def demo_week(user: Any, tenant_ids: list[str]) -> None:
    """Demo mode: "Simulate a week of changes" (ops/demo.py): the simulator changes the synced demo tenants
    as two admins would over a few days, then each syncs; the runs are followed as cards below."""
    from tenantpilot import access
    from tenantpilot.app import access_view, reads, signin
    from tenantpilot.app.messages import explain
    from tenantpilot.ops import demo, queue
    from tenantpilot.store import StoreError

    cfg, store = reads.config(), reads.store()
    try:
        ready = demo.ready(cfg, store, tenant_ids)
    except demo.SimulatorUnavailable as exc:
        st.caption(inert(str(exc)))
        return
    why = signin.why_not(user, "sync") or (None if ready else "Sync the demo tenants once first: the changes are "
                                                                 "what the next sync finds.")
    clicked = st.button("Simulate a week of changes", icon=":material/auto_fix_high:", key="sync_demo_week",
                        disabled=not (ready and access.can(user, "sync")), help=why or (
                            "The local Graph simulator changes a few settings of each synced demo tenant as two "
                            "admins would over a few days (with Intune audit events), deletes a Wi-Fi profile and "
                            "adds a pilot profile; then each tenant syncs. Changes, “changed by” and alerts show it."))
    if not (clicked and signin.permitted(user, "sync")):
        return
    try:
        week = demo.simulate_week(cfg, store, ready)
    except (demo.SimulatorUnavailable, queue.QueueUnavailable, StoreError) as exc:
        st.error(explain(exc, "simulate a week of changes"), icon=":material/error:")
        return
    access_view.record(user, "demo week", list(week.runs), f"{sum(len(s) for s in week.steps.values())} changes")
    st.session_state["sync_watch"] = sorted(set(st.session_state.get("sync_watch", [])) | set(week.runs.values()))
    st.success(f"The simulator made {sum(len(s) for s in week.steps.values())} changes in {len(week.steps)} demo "
               "tenant(s) by two admins over the last days; their syncs are queued. Open Changes when they finish.",
               icon=":material/check_circle:")

