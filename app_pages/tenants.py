"""Tenants: list, add (GUID or domain + display name), remove with confirmation, demo tenants."""

from __future__ import annotations

import streamlit as st

from tenantpilot import ui
from tenantpilot.cli import valid_tenant_id

st.title("Tenants")
st.caption("The Microsoft 365 tenants whose Intune policies TenantPilot syncs. Removing a tenant deletes its "
           "synced snapshots too.")

flash = st.session_state.pop("tenants_flash", None)
if flash:
    st.success(flash, icon=":material/check_circle:")

cfg = ui.config()
store = ui.store()
tenants = ui.tenants()

if tenants.height:
    table = tenants.select(
        "display_name", "tenant_id", "kind", "last_synced", "last_status", "setting_count",
    )
    st.dataframe(
        table,
        hide_index=True, placeholder="—",
        column_config={
            "display_name": st.column_config.TextColumn("Name"),
            "tenant_id": st.column_config.TextColumn("Tenant id"),
            "kind": st.column_config.TextColumn("Kind"),
            "last_synced": st.column_config.DatetimeColumn("Last synced", format="YYYY-MM-DD HH:mm"),
            "last_status": st.column_config.TextColumn("Status"),
            "setting_count": st.column_config.NumberColumn("Settings", format="localized"),
        },
        key="tenants_table",
    )
else:
    st.info("No tenants yet. Add one below" + (", or add the demo tenants." if cfg.demo else "."),
            icon=":material/info:")

left, right = st.columns(2, gap="large")

with left:
    st.subheader("Add a tenant")
    with st.form("add_tenant", border=True):
        tenant_id = st.text_input("Tenant id or domain", placeholder="contoso.onmicrosoft.com or a GUID",
                                  key="new_tenant_id")
        name = st.text_input("Display name", placeholder="Contoso", key="new_tenant_name")
        submitted = st.form_submit_button("Add tenant", type="primary")
    if submitted:
        tenant_id, name = (tenant_id or "").strip(), (name or "").strip()
        if not valid_tenant_id(tenant_id):
            st.error(f"{tenant_id!r} is not a tenant id: enter the tenant's GUID "
                     "(e.g. 72f988bf-86f1-41af-91ab-2d7cd011db47) or one of its domains "
                     "(contoso.onmicrosoft.com).")
        elif not name:
            st.error("Enter a display name: it is how the tenant appears in Explore and Compare.")
        else:
            existed = tenant_id in set(tenants["tenant_id"].to_list())
            with ui.guard("add the tenant"):
                store.add_tenant(tenant_id, name)
            st.session_state["tenants_flash"] = (
                f"Renamed {tenant_id} to {name}." if existed
                else f"Added {name} ({tenant_id}). Sync it on the Sync page."
            )
            st.rerun()

    if cfg.demo:
        st.subheader("Demo tenants")
        demo = ui.demo_tenants()
        if demo is None:
            st.caption("The Graph simulator package is not available, so there are no demo tenants.")
        else:
            st.caption(f"{len(demo)} simulated tenants served by the local Graph simulator "
                       "(`python -m tenantpilot simulate`).")
            if st.button("Add demo tenants", icon=":material/science:"):
                with ui.guard("add the demo tenants"):
                    for demo_id, demo_name in demo:
                        store.add_tenant(demo_id, demo_name, "demo")
                st.session_state["tenants_flash"] = f"Added {len(demo)} demo tenants."
                st.rerun()

with right:
    st.subheader("Remove a tenant")
    if not tenants.height:
        st.caption("Nothing to remove.")
    else:
        labels = ui.tenant_labels(tenants)
        victim = st.selectbox("Tenant", list(labels), format_func=ui.format_with(labels), index=None,
                              placeholder="Choose a tenant", key="remove_tenant")
        sure = st.checkbox("I understand that its synced snapshots and history are deleted too",
                           key="remove_confirm", disabled=victim is None)
        if st.button("Remove tenant", type="secondary", disabled=not (victim and sure), icon=":material/delete:"):
            with ui.guard("remove the tenant"):
                removed = store.remove_tenant(victim)
            st.session_state["tenants_flash"] = (
                f"Removed {labels[victim]} and its data." if removed else f"{labels[victim]} was already gone."
            )
            for key in ("remove_tenant", "remove_confirm"):
                st.session_state.pop(key, None)
            st.rerun()
