"""Sync: queue syncs, follow the active runs live, read the run history.

The page only enqueues (tenantpilot.ops.queue.enqueue_sync) and reads: the run rows from DuckDB,
live progress from the queue's storage. The sync itself runs in the huey_consumer worker.
While a run is queued or running, the status part of the page refreshes itself every second
(st.fragment(run_every=...)); when everything has finished it stops polling.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import polars as pl
import streamlit as st

from tenantpilot.app import ui
from tenantpilot.ops import outbox, progress, queue
from tenantpilot.store import StoreError

REFRESH_S = 1.0

st.title("Sync")
st.caption("Pull every Intune policy of the chosen tenants through Microsoft Graph. Syncs run in the "
           "background worker; you can leave this page.")

store = ui.store()
tenants = ui.tenants()
syncable = tenants.filter(pl.col("kind") != "baseline")

if not syncable.height:
    st.info("Add a tenant on the Tenants page first.", icon=":material/info:")
else:
    labels = ui.tenant_labels(syncable)
    with st.form("sync_form", border=False):
        chosen = st.multiselect("Tenants to sync", list(labels), format_func=ui.format_with(labels),
                                placeholder="Choose tenants", key="sync_tenants")
        go = st.form_submit_button("Sync now", type="primary", icon=":material/sync:")
    if go and not chosen:
        st.warning("Choose at least one tenant to sync.")
    elif go:
        watch = set(st.session_state.get("sync_watch", []))
        for tenant_id in chosen:
            try:
                queued = queue.enqueue_sync(tenant_id, store)
            except (queue.QueueUnavailable, StoreError) as exc:  # one tenant's failure must not hide the others
                st.error(f"{ui.inert(labels[tenant_id])}: {ui.explain(exc, 'queue the sync')}")
                continue
            watch.add(queued.run_id)
            if queued.created:
                st.success(f"{ui.inert(labels[tenant_id])}: run {queued.run_id} queued.")
            else:
                st.info(f"{ui.inert(labels[tenant_id])}: already queued or running as run {queued.run_id}; following that run.")
        st.session_state["sync_watch"] = sorted(watch)


def render_run(run: dict, prog: dict | None) -> None:
    name = ui.inert(run["display_name"] or run["tenant_id"])
    status = run["status"]
    head = f"**{name}** · run {run['run_id']}"
    if status == "queued":
        st.markdown(f"{head} · :gray-badge[queued] — waiting for the worker")
    elif status == "running":
        phase = ui.inert(progress.waiting_text(prog) or (prog or {}).get("phase") or "starting")
        done, total = (prog or {}).get("done") or 0, (prog or {}).get("total")
        st.markdown(f"{head} · :blue-badge[running] — {phase}" + (f" {done:,}/{total:,}" if total else ""))
        st.progress(min(done / total, 1.0) if total else 0.0)
    else:
        color = {"succeeded": "green", "partial": "orange", "failed": "red"}.get(status, "gray")
        detail = ""
        if status in ("succeeded", "partial"):
            detail = (f" — {run['policy_count'] or 0:,} policies, {run['setting_count'] or 0:,} settings, "
                      f"{run['request_count'] or 0:,} requests in {ui.duration(run['duration_s'])}")
        st.markdown(f"{head} · :{color}-badge[{status}]{detail}")
        if run["error"]:
            st.error(ui.inert(run["error"]))
    for warning in json.loads(run["warnings"] or "[]"):
        st.warning(ui.inert(warning))


def history_table(history: pl.DataFrame, labels: dict[str, str]) -> None:
    """Finished runs, one compact row each, with links to Explore and Compare filtered to the tenant."""
    label = pl.col("tenant_id").replace_strict(labels, default=pl.col("tenant_id"), return_dtype=pl.String)
    st.dataframe(
        ui.inert_frame(history.select(
            "run_id", pl.col("display_name").alias("tenant"), "status", "queued_at", "duration_s", "policy_count",
            "setting_count", "request_count",
            pl.col("warnings").map_elements(lambda w: len(json.loads(w or "[]")), return_dtype=pl.Int64)
            .alias("warnings"),
            pl.coalesce(pl.col("error"), pl.col("warnings").map_elements(
                lambda w: (json.loads(w or "[]") or [None])[0], return_dtype=pl.String)).alias("error"),
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
            "error": st.column_config.TextColumn("Error or first warning", width="large"),
            "explore": st.column_config.LinkColumn("Explore", display_text="Explore"),
            "compare": st.column_config.LinkColumn("Compare", display_text="Compare"),
        },
        column_order=("run_id", "tenant", "status", "explore", "compare", "queued_at", "duration_s", "policy_count",
                      "setting_count", "request_count", "warnings", "error"),
        key="sync_history",
    )


with ui.guard("read the sync runs"):
    polling = store.runs(statuses=["queued", "running"], limit=1).height > 0


@st.fragment(run_every=REFRESH_S if polling else None)
def status_section() -> None:
    """Worker banner, active and recent runs, history: everything that changes while syncs run."""
    try:
        queue.repair(store=store)
        reachable = True
    except queue.QueueUnavailable:  # without a queue there is no progress; the banner says why
        reachable = False
    with ui.guard("read the sync runs"):
        history = store.runs(limit=200)
    active = history.filter(pl.col("status").is_in(["queued", "running"]))
    ui.show_problems(ui.queue_problems(active.filter(pl.col("status") == "queued")["queued_at"].to_list()))
    for lost in outbox.given_up(ui.config(), limit=5, within_s=outbox.RECENT_S):  # alerts given up on (tenantpilot/ops/outbox.py), newest first
        st.error(ui.inert(f"Alert of run {lost['run_id']} ({lost.get('tenant') or 'unknown tenant'}) never reached "
                          f"{lost['channel']}: {lost['error']} (given up after {lost['attempts']} attempt(s))"))

    st.subheader("Active syncs")
    # cards: what is queued or running, and the runs queued from this page (their outcome, once);
    # every other finished run is a row of the compact history table
    watch = st.session_state.get("sync_watch", [])
    cards = history.filter(pl.col("status").is_in(["queued", "running"]) | pl.col("run_id").is_in(watch))
    if not cards.height:
        st.caption("No sync is queued or running.")
    for run in cards.iter_rows(named=True):
        with st.container(border=True):
            render_run(run, queue.run_progress(run["run_id"]) if reachable else None)

    with st.container(key="sync_history_section"):  # one place to find the history by (the browser test)
        st.subheader("History")
        if history.height:
            history_table(history, ui.tenant_labels(ui.tenants()))
        else:
            st.caption("No syncs yet.")
    if polling and not active.height:
        st.rerun(scope="app")  # everything finished: stop polling


status_section()
