"""Changes: what changed in one tenant between two of its snapshots (default: the two latest)."""

from __future__ import annotations

import polars as pl
import streamlit as st

from tenantpilot import drift, explore, export, ui
from tenantpilot.store import Store

st.title("Changes")
st.caption("What changed between two syncs of a tenant: policies added, deleted or renamed (one line each), then "
           "the settings changed inside the policies both syncs have. Reordered lists and settings left at "
           "“Not configured” are not changes.")


@st.cache_data(max_entries=16, show_spinner=False)
def run_rows(db_path: str, run_id: int) -> pl.DataFrame:
    """Setting rows of one run: a finished snapshot never changes, so its id is a safe cache key."""
    return Store(db_path).run_settings([run_id])


tenants = ui.tenants()
if not tenants.height:
    st.info("Add and sync a tenant first.", icon=":material/info:")
    st.stop()
labels = ui.tenant_labels(tenants)
store = ui.store()
with ui.guard("read the sync runs"):
    done = store.runs(statuses=["succeeded", "partial"], limit=5000)
# default: the tenant synced most recently among those with two snapshots
two = done.group_by("tenant_id").agg(pl.len().alias("n"), pl.col("run_id").max().alias("last")).filter(pl.col("n") >= 2)
ids = list(labels)
default = two.sort("last", descending=True)["tenant_id"][0] if two.height else None
tenant_id = st.selectbox("Tenant", ids, format_func=ui.format_with(labels), key="chg_tenant",
                         index=ids.index(default) if default in ids else 0, **ui.SHARED)
with ui.guard("read the tenant's runs"):
    runs = store.runs(tenant_id, statuses=["succeeded", "partial"], limit=50)
if runs.height < 2:
    kind = tenants.filter(pl.col("tenant_id") == tenant_id)["kind"][0]
    again = "Import it again" if kind == "baseline" else "Sync it again on the Sync page"
    st.info(f"{ui.inert(labels[tenant_id])} has {runs.height} snapshot(s); changes need two. {again}.", icon=":material/info:")
    st.stop()

when = {r["run_id"]: f"run {r['run_id']} · {r['finished_at']:%Y-%m-%d %H:%M} · {r['setting_count'] or 0:,} settings"
        for r in runs.iter_rows(named=True)}
run_ids = list(when)  # newest first
c1, c2 = st.columns(2)
new_run = c1.selectbox("Newer snapshot", run_ids, index=0, format_func=when.get, key=f"chg_new_{tenant_id}")
older = [r for r in run_ids if r < new_run] or run_ids[1:]
old_run = c2.selectbox("Older snapshot", older, index=0, format_func=when.get, key=f"chg_old_{tenant_id}_{new_run}")

db = str(ui.config().db_path)
with ui.guard("read the two snapshots"):
    found = drift.changes(run_rows(db, old_run), run_rows(db, new_run))
    not_read = store.run_types([new_run]).filter(pl.col("status") != "read")
diff, events = found.settings, found.events
totals = drift.summary(diff)
policy_totals = drift.event_summary(events)
m = st.columns(6)
for col, kind in zip(m, drift.EVENTS):
    col.metric(kind.capitalize().replace("Policy", "Policies"), f"{policy_totals[kind]:,}")
for col, kind in zip(m[3:], drift.CHANGES):
    col.metric(f"Settings {kind}", f"{totals[kind]:,}")
for r in not_read.iter_rows(named=True):
    source = (f"its settings are carried forward from run {r['carried_from_run']} and counted as unchanged, "
              "not as removed" if r["status"] == "carried" else "it had no earlier settings to carry")
    st.info(f"{r['label']}: not synced in this run ({r['reason'] or 'not read'}); {source}.",
            icon=":material/history:")

if events.height:
    st.subheader("Policies")
    lines = events.with_columns(
        pl.when(pl.col("event") == drift.POLICY_RENAMED)
        .then(pl.format("{} → {}", pl.col("old_name"), pl.col("new_name")))
        .otherwise(pl.coalesce("new_name", "old_name")).alias("policy"))
    st.dataframe(ui.with_family_labels(lines.select("event", "policy_type", "policy", "settings")),
                 hide_index=True, placeholder="—", key="chg_events",
                 column_config={"event": "Change", "policy_type": "Policy type", "policy": "Policy",
                                "settings": st.column_config.NumberColumn("Settings", help="configured settings of "
                                                                          "the policy")})
if diff.height == 0:
    st.success("No setting changed inside the policies both snapshots have." if events.height else
               "Nothing changed between these snapshots.", icon=":material/check_circle:")
    st.stop()
st.subheader("Settings")

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
st.dataframe(
    ui.inert_frame(ui.with_family_labels(view.head(1000))), hide_index=True, placeholder="Not configured",
    key="chg_table",
    column_config={"change": "Change", "policy_type": "Policy type", "scope": "Profile type",
                   "setting_key": None, "setting_name": "Setting", "category": "Category",
                   "old_value": st.column_config.TextColumn("Before", width="medium"),
                   "new_value": st.column_config.TextColumn("After", width="medium"),
                   "old_policies": "Policies before", "new_policies": "Policies after"},
)
st.download_button(f"CSV ({view.height:,} changes)", data=lambda v=view: export.to_csv_bytes(ui.with_family_labels(v)),
                   file_name=f"tenantpilot-changes-{tenant_id}-{old_run}-{new_run}.csv", mime="text/csv",
                   icon=":material/download:", key="chg_csv", on_click="ignore")
ui.show_expired_deviations(tenant_id)  # accepted deviations open again (the deviation register)
