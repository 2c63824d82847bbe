"""Changes: what changed since a point in time: every tenant by day, then one tenant's changes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import partial

import polars as pl
import streamlit as st

from tenantpilot.analysis import drift, explore, history
from tenantpilot.app import access_view, changes_view, reads, signin, tables
from tenantpilot.app.escaping import inert, inert_frame
from tenantpilot.app.labels import format_with, labelled_csv, tenant_labels, with_family_labels
from tenantpilot.app.messages import guard
from tenantpilot.app.widgets import SHARED

st.title("Changes")
st.caption("What changed since a point in time: policies added, deleted or renamed (one line each), then the "
           "settings whose configured value changed inside the policies that stayed. Reordered lists, renames "
           "and settings left at “Not configured” are not setting changes.")

# who changed it, where Intune's audit log recorded it (tenantpilot/sync/audit.py)
WHO = {"changed_by": st.column_config.TextColumn("Changed by", width=230, help="the actor Intune's audit log names; "
                                                 "several when the attribution is per policy"),
       "attribution": st.column_config.TextColumn(
           "Attribution", help="setting: Intune's audit event names this setting among the properties it changed; "
           "policy: the events name the policy only, so every admin who changed the policy in this time is listed"),
       "activity": st.column_config.TextColumn("Activity", help="what Intune's audit log says was done"),
       "changed_at": st.column_config.DatetimeColumn("Changed at (UTC)", format="YYYY-MM-DD HH:mm")}
SINCE = {"24 hours": "24h", "7 days": "7d", "30 days": "30d", "90 days": "90d", "A date": None, "A run": None}

tenants = reads.tenants()
if not tenants.height:
    st.info("Add and sync a tenant first.", icon=":material/info:")
    st.stop()
labels = tenant_labels(tenants.filter(pl.col("kind") != "baseline")) or tenant_labels(tenants)
store = reads.store()

c1, c2 = st.columns([3, 2])
choice = c1.segmented_control("Since", list(SINCE), default="7 days", key="chg_since", **SHARED) or "7 days"
if choice == "A date":
    day = c2.date_input("From", value=datetime.now().date() - timedelta(days=7), key="chg_date")
    since_text = day.isoformat()
elif choice == "A run":
    since_text = ""
else:
    since_text = SINCE[choice] or "7d"


key = reads.snapshot_key()
if since_text:
    since = history.parse_since(since_text)
    at = since.at or datetime.now(timezone.utc)
    counts = changes_view.day_counts(key, at.replace(second=0, microsecond=0).isoformat())
    counts = counts.filter(pl.col("tenant_id").is_in(tenants["tenant_id"].to_list()))  # only tenants this user sees
    st.subheader("All tenants")
    grid = history.overview(counts, at.date(), datetime.now(timezone.utc).date())
    if grid.height:
        quiet = len(labels) - grid.height
        st.caption(f"{grid.height:,} tenant(s) changed since {at.astimezone():%Y-%m-%d %H:%M}"
                   + (f"; {quiet:,} without changes" if quiet > 0 else "")
                   + ". Policies added, deleted or renamed plus settings changed, per day the sync saw them.")
        st.dataframe(inert_frame(grid.drop("tenant_id")), hide_index=True, key="chg_overview", placeholder="",
                     column_config={"tenant": st.column_config.TextColumn("Tenant", pinned=True),
                                    "total": st.column_config.NumberColumn("Total", pinned=True)})
    else:
        st.success(f"No tenant changed since {at.astimezone():%Y-%m-%d %H:%M}.", icon=":material/check_circle:")
        grid = pl.DataFrame(schema={"tenant_id": pl.String, "total": pl.Int64})
else:
    grid = pl.DataFrame(schema={"tenant_id": pl.String, "total": pl.Int64})

st.subheader("One tenant")
ids = list(labels)
busiest = [t for t in grid.sort("total", descending=True)["tenant_id"].to_list() if t in labels]
with guard("read the sync runs"):
    done = store.runs(statuses=["succeeded", "partial"], limit=5000)
two = done.group_by("tenant_id").agg(pl.len().alias("n"), pl.col("run_id").max().alias("last")).filter(pl.col("n") >= 2)
recent = [t for t in two.sort("last", descending=True)["tenant_id"].to_list() if t in labels]
default = (busiest or recent or ids)[0]
tenant_id = st.selectbox("Tenant", ids, format_func=format_with(labels), key="chg_tenant",
                         index=ids.index(default), **SHARED)
changes_view.show_expired_deviations(tenant_id)
with guard("read the tenant's runs"):
    runs = store.runs(tenant_id, statuses=["succeeded", "partial"], limit=400)
if runs.height < 2:
    kind = tenants.filter(pl.col("tenant_id") == tenant_id)["kind"][0]
    again = "Import it again" if kind == "baseline" else "Sync it again on the Sync page"
    st.info(f"{inert(labels[tenant_id])} has {runs.height} snapshot(s); changes need two. {again}.",
            icon=":material/info:")
    st.stop()
if not since_text:
    when = {r["run_id"]: f"run {r['run_id']} · {r['finished_at'].astimezone():%Y-%m-%d %H:%M} · "
                         f"{r['setting_count'] or 0:,} settings" for r in runs.iter_rows(named=True)}
    older = list(when)[1:]
    base = c2.selectbox("From run", older, index=0, format_func=lambda run: when[run], key=f"chg_run_{tenant_id}")
    since = history.Since(run=int(base), text=f"run:{base}")

with guard("read the changes"):
    found = history.changes_since(store, since, [tenant_id])
if not found:
    st.info("No synced data for this tenant yet.", icon=":material/info:")
    st.stop()
t = found[0]
start = "its first sync" if t.first_sync else f"run {t.base_run}"
st.caption(f"From {start} ({t.base_at.astimezone():%Y-%m-%d %H:%M}) to run {t.cur_run} "
           f"({t.cur_at.astimezone():%Y-%m-%d %H:%M}), the data on screen now.")
totals, policy_totals = drift.summary(t.settings), drift.event_summary(t.events)
m = st.columns(6)
for col, kind in zip(m, drift.EVENTS):
    col.metric(kind.capitalize().replace("Policy", "Policies"), f"{policy_totals[kind]:,}")
for col, kind in zip(m[3:], drift.CHANGES):
    col.metric(f"Settings {kind}", f"{totals[kind]:,}")
if t.carried.height:  # one line that opens: a partial run's notice must not bury the changes
    with st.expander(f"{t.carried.height:,} type(s) not synced in the latest run: counted as unchanged, not as "
                     "removed", icon=":material/history:"):
        for r in t.carried.iter_rows(named=True):
            source = (f"its settings are carried forward from run {r['carried_from_run']} and counted as unchanged, "
                      "not as removed" if r["status"] == "carried" else "it had no earlier settings to carry")
            st.markdown(inert(f"{r['label']}: not synced in this run (the latest; {r['reason'] or 'not read'}); "
                              f"{source}."))

if t.events.height:
    st.markdown("**Policies**")
    lines = t.events.with_columns(
        pl.when(pl.col("event") == drift.POLICY_RENAMED)
        .then(pl.format("{} → {}", pl.col("old_name"), pl.col("new_name")))
        .otherwise(pl.coalesce("new_name", "old_name")).alias("policy"))
    who = [c for c in ("changed_by", "changed_at") if c in lines.columns]  # a policy event is always per policy
    st.dataframe(inert_frame(with_family_labels(lines.select("policy", "event", *who, "policy_type", "settings"))),
                 hide_index=True, placeholder="—", key="chg_events",
                 column_config={"event": "Change", "policy_type": "Policy type",
                                "policy": st.column_config.TextColumn("Policy", width=300),
                                "settings": st.column_config.NumberColumn("Settings", help="configured settings of "
                                                                          "the policy"),
                                **WHO})
diff = t.settings
if diff.height == 0:
    st.success("No setting changed inside the policies that stayed." if t.events.height else
               "Nothing changed in this time.", icon=":material/check_circle:")
    st.stop()
st.markdown("**Settings**")
f1, f2 = st.columns([1, 2])
kinds = f1.multiselect("Change", list(drift.CHANGES), placeholder="All changes", key="chg_kinds")
search = f2.text_input("Search", placeholder="setting name, key or value", key="chg_search", icon=":material/search:")
view = diff.filter(pl.col("change").is_in(kinds)) if kinds else diff
hit = explore.search_expr(search or "", ["setting_name", "setting_key", "old_value", "new_value", "old_policies",
                                         "new_policies"])
if hit is not None:
    view = view.filter(hit)
st.caption(f"{view.height:,} of {diff.height:,} changes" + (f" (showing the first {1000:,})" if view.height > 1000
                                                            else ""))
shown = view.head(1000).with_columns(pl.col(c).dt.convert_time_zone("UTC").dt.replace_time_zone(None)
                                     for c in ("seen_at", "changed_at") if c in view.columns)
technical = tables.technical_toggle("chg_technical")
st.dataframe(
    inert_frame(with_family_labels(explore.distinct_names(shown))), hide_index=True, placeholder="Not configured",
    key="chg_table",
    column_order=tables.column_order(shown.columns, changes_view.SETTING_FIRST, changes_view.SETTING_MORE,
                                     changes_view.SETTING_TECHNICAL, show_technical=technical),
    column_config={"change": "Change", "policy_type": "Policy type", "scope": "Graph type",
                   "setting_key": "Setting key", "category": "Category",
                   "setting_name": st.column_config.TextColumn("Setting", width=260),
                   "old_value": st.column_config.TextColumn("Before", width=170),
                   "new_value": st.column_config.TextColumn("After", width=170),
                   "old_policies": "Policies before", "new_policies": "Policies after",
                   "seen_at": st.column_config.DatetimeColumn("Seen (UTC)", format="YYYY-MM-DD HH:mm",
                                                              help="when a sync first saw the change"),
                   "policy_id": "Policy id", **WHO},
)
st.download_button(f"CSV ({view.height:,} changes)",
                   data=access_view.recorded_export(signin.current_user(reads.config()), "Changes CSV", [tenant_id],
                                                    partial(labelled_csv, view)),
                   file_name=f"tenantpilot-changes-{tenant_id}-{t.base_run}-{t.cur_run}.csv", mime="text/csv",
                   icon=":material/download:", key="chg_csv", on_click="ignore")
