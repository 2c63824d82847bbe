"""Sync: queue syncs, follow the active runs live, read the run history.

The page only enqueues (tenantpilot.ops.queue.enqueue_sync) and reads: the run rows from DuckDB,
live progress from the queue's storage. The sync itself runs in the huey_consumer worker.
While a run is queued or running, the status part of the page refreshes itself every second
(st.fragment(run_every=...)); when everything has finished it stops polling.
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from tenantpilot import access
from tenantpilot.app import access_view, reads, signin, sync_view
from tenantpilot.app.escaping import inert
from tenantpilot.app.labels import format_with, tenant_labels
from tenantpilot.app.messages import explain, guard, queue_problems, show_problems
from tenantpilot.ops import outbox, queue
from tenantpilot.store import StoreError

REFRESH_S = 1.0

st.title("Sync")
st.caption("Pull every Intune policy of the chosen tenants through Microsoft Graph. Syncs run in the "
           "background worker; you can leave this page.")

user = signin.current_user(reads.config())
store = reads.store()
tenants = reads.tenants()
syncable = tenants.filter(pl.col("kind") != "baseline")

if not syncable.height:
    st.info("Add a tenant on the Tenants page first.", icon=":material/info:")
else:
    labels = tenant_labels(syncable)
    with st.form("sync_form", border=False):
        chosen = st.multiselect("Tenants to sync", list(labels), format_func=format_with(labels),
                                placeholder="Choose tenants", key="sync_tenants")
        go = st.form_submit_button("Sync now", type="primary", icon=":material/sync:",
                                   disabled=not access.can(user, "sync"), help=signin.why_not(user, "sync"))
    if go and not signin.permitted(user, "sync"):
        pass
    elif go and not chosen:
        st.warning("Choose at least one tenant to sync.")
    elif go:
        watch = set(st.session_state.get("sync_watch", []))
        for tenant_id in chosen:
            try:
                queued = queue.enqueue_sync(tenant_id, store)
            except (queue.QueueUnavailable, StoreError) as exc:  # one tenant's failure must not hide the others
                st.error(f"{inert(labels[tenant_id])}: {explain(exc, 'queue the sync')}")
                continue
            watch.add(queued.run_id)
            if queued.created:
                access_view.record(user, "sync", [tenant_id], f"run {queued.run_id}")
                st.success(f"{inert(labels[tenant_id])}: run {queued.run_id} queued.")
            else:
                st.info(f"{inert(labels[tenant_id])}: already queued or running as run {queued.run_id}; following that run.")
        st.session_state["sync_watch"] = sorted(watch)
    if reads.config().demo:  # the demo can change: the simulator plays two admins for a week
        sync_view.demo_week(user, syncable["tenant_id"].to_list())  # those the simulator serves (ops/demo.ready)


with guard("read the sync runs"):
    polling = store.runs(statuses=["queued", "running"], limit=1).height > 0


@st.fragment(run_every=REFRESH_S if polling else None)
def status_section() -> None:
    """Worker banner, active and recent runs, history: everything that changes while syncs run."""
    try:
        queue.repair(store=store)
        reachable = True
    except queue.QueueUnavailable:  # without a queue there is no progress; the banner says why
        reachable = False
    with guard("read the sync runs"):
        history = store.runs(limit=200)
    seen = reads.visible()
    if seen is not None:  # a user limited to tenant groups sees their tenants' runs only
        history = history.filter(pl.col("tenant_id").is_in(list(seen)))
    active = history.filter(pl.col("status").is_in(["queued", "running"]))
    show_problems(queue_problems(reads.config(), active.filter(pl.col("status") == "queued")["queued_at"].to_list()))
    for lost in outbox.given_up(reads.config(), limit=5, within_s=outbox.RECENT_S):  # alerts given up on (ops/outbox.py)
        st.error(inert(f"Alert of run {lost['run_id']} ({lost.get('tenant') or 'unknown tenant'}) never reached "
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
            sync_view.render_run(run, queue.run_progress(run["run_id"]) if reachable else None)

    with st.container(key="sync_history_section"):  # one place to find the history by (the browser test)
        st.subheader("History")
        if history.height:
            sync_view.history_table(history, tenant_labels(reads.tenants()))
        else:
            st.caption("No syncs yet.")
    if polling and not active.height:
        st.rerun(scope="app")  # everything finished: stop polling


status_section()
