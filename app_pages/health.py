"""Health: the facts of `python -m tenantpilot health` (queue, database, worker, last run per tenant)."""

from __future__ import annotations

import polars as pl
import streamlit as st

from tenantpilot.app import reads, signin
from tenantpilot.app.escaping import inert, inert_frame
from tenantpilot.app.messages import CONSUMER_COMMAND, NO_LOGIN, guard, queue_problems, show_problems
from tenantpilot.ops.health import health_report

st.title("Health")
cfg = reads.config()
if not signin.current_user(cfg).signed_in:
    st.caption(NO_LOGIN)
with guard("check health"):
    report = health_report(cfg, reads.store())

if report["healthy"] and not report["attention"]:
    st.success("Queue, database and worker are all working.", icon=":material/check_circle:")
elif report["healthy"]:  # every part up, but a tenant's last sync failed or an alert was given up on
    st.warning("Queue, database and worker are working, but:\n\n" + "\n\n".join(
        f"- {inert(line)}" for line in report["attention"]), icon=":material/warning:")
else:
    problems = queue_problems(cfg)
    show_problems(problems)
    if not report["database"].get("reachable"):
        st.error(f"The database is unreachable: {inert(report['database'].get('error'))}. Check TENANTPILOT_DB and "
                 "that no other program holds the file.")
    if not problems and report["database"].get("reachable"):
        st.warning(f"Not healthy. Start the worker: `{CONSUMER_COMMAND}`")

q, db, worker = report["queue"], report["database"], report["consumer"]
c1, c2, c3 = st.columns(3, border=True)
with c1:
    st.markdown(f"**Queue** · {q['backend']}")
    if q.get("reachable"):
        st.markdown(":green-badge[reachable]")
        a, b, c = st.columns(3)
        a.metric("Pending", q.get("pending", 0))
        b.metric("Scheduled", q.get("scheduled", 0))
        c.metric("Running", q.get("running", 0))
    else:
        st.markdown(":red-badge[unreachable]")
        st.caption(inert(q.get("error", "")))
    st.caption(cfg.redis_url and "REDIS_URL is set" or f"SQLite queue `{cfg.queue_db}`")
with c2:
    st.markdown("**Database** · DuckDB")
    st.markdown(":green-badge[reachable]" if db.get("reachable") else ":red-badge[unreachable]")
    st.caption(inert(db["path"]))
    if db.get("error"):
        st.caption(inert(db["error"]))
with c3:
    st.markdown("**Sync worker** · huey_consumer")
    if worker["alive"]:
        st.markdown(":green-badge[alive]")
        st.caption(f"pid {worker['pid']}, last heartbeat {worker['last_heartbeat_s_ago']} s ago")
    else:
        st.markdown(":red-badge[not running]")
        if worker["last_heartbeat_s_ago"] is not None:
            st.caption(f"last heartbeat {worker['last_heartbeat_s_ago']} s ago")
        st.caption(f"Start it: `{CONSUMER_COMMAND}`")

seen = reads.visible()
if seen is not None:  # a user limited to tenant groups sees their tenants only
    report["tenants"] = [r for r in report["tenants"] if r["tenant_id"] in seen]
    report["stuck_runs"] = [r for r in report["stuck_runs"] if r.get("tenant_id") in seen]
if report["stuck_runs"]:
    st.subheader("Stuck runs")
    st.caption("These runs will not finish on their own. The worker repairs them within seconds of starting "
               "(a run whose queue message is gone is queued again; a run whose worker stopped is failed).")
    st.dataframe(pl.DataFrame(report["stuck_runs"]), hide_index=True, key="health_stuck",
                 column_config={"run_id": "Run", "tenant_id": "Tenant id", "status": "Status",
                                "why": st.column_config.TextColumn("Why", width="large")})

st.subheader("Last run per tenant")
if report["tenants"]:
    st.dataframe(
        inert_frame(pl.DataFrame(report["tenants"]).with_columns(
            pl.col("finished_at").cast(pl.String).str.to_datetime(time_zone="UTC", strict=False))),
        hide_index=True, placeholder="—", key="health_tenants",
        column_config={"tenant_id": "Tenant id", "display_name": "Tenant", "last_run_id": "Run", "status": "Status",
                       "finished_at": st.column_config.DatetimeColumn("Finished", format="YYYY-MM-DD HH:mm:ss"),
                       "data": st.column_config.TextColumn("Data shown", width="large"),
                       "error": st.column_config.TextColumn("Error", width="large")},
        column_order=("display_name", "last_run_id", "status", "finished_at", "data", "error", "tenant_id"),
    )
else:
    st.caption("No runs yet.")
st.caption("Demo mode: syncs go to the local Graph simulator." if report["demo"] else
           f"Graph: {inert(cfg.graph_url)}")
