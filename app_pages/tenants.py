"""Tenants: list, add (GUID or domain + display name), remove with confirmation, demo tenants, and
import a baseline from uploaded export files (tenantpilot.sync.uploads: JSON files and zipped export folders)."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import streamlit as st

from tenantpilot import access
from tenantpilot.app import access_view, alerts_view, reads, signin, tenants_view
from tenantpilot.app.escaping import inert, inert_frame
from tenantpilot.app.labels import format_with, tenant_labels
from tenantpilot.app.messages import guard
from tenantpilot.ops import schedule
from tenantpilot.ops.health import with_causes
from tenantpilot.sync import uploads
from tenantpilot.tenants import baseline_id, tenant_key, valid_tenant_id

st.title("Tenants")
st.caption("The Microsoft 365 tenants whose Intune policies TenantPilot syncs. Removing a tenant deletes its "
           "synced snapshots too.")

flash = st.session_state.pop("tenants_flash", None)
if flash:
    st.success(inert(flash), icon=":material/check_circle:")

cfg = reads.config()
user = signin.current_user(cfg)
store = reads.store()
tenants = reads.tenants()

if tenants.height:
    st.dataframe(
        inert_frame(tenants_view.tenant_status_table(with_causes(store, tenants))),  # a partial run shows its cause
        hide_index=True, placeholder="—",
        column_config={
            "display_name": st.column_config.TextColumn("Name"),
            "last_status": st.column_config.TextColumn("Last sync"),
            "last_run_at": st.column_config.DatetimeColumn("Last sync at", format="YYYY-MM-DD HH:mm"),
            "shown": st.column_config.TextColumn("Data shown", width="medium"),
            "setting_count": st.column_config.NumberColumn("Settings", format="localized"),
            "last_error": st.column_config.TextColumn("Last error", width="medium"),
            "tenant_id": st.column_config.TextColumn("Tenant id"),
            "kind": st.column_config.TextColumn("Kind"),
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
        submitted = st.form_submit_button("Add tenant", type="primary", disabled=not access.can(user, "manage_tenants"),
                                          help=signin.why_not(user, "manage_tenants"))
    if submitted and not signin.permitted(user, "manage_tenants"):
        pass
    elif submitted:
        tenant_id, name = tenant_key(tenant_id or ""), (name or "").strip()
        if not valid_tenant_id(tenant_id):
            st.error(f"{inert(repr(tenant_id))} is not a tenant id: enter the tenant's GUID "
                     "(e.g. 72f988bf-86f1-41af-91ab-2d7cd011db47) or one of its domains "
                     "(contoso.onmicrosoft.com).")
        elif not name:
            st.error("Enter a display name: it is how the tenant appears in Explore and Compare.")
        else:
            with guard("add the tenant"):
                added = store.add_tenant(tenant_id, name)
            if added.outcome != "alias":
                access_view.record(user, f"tenant {added.outcome}", [added.tenant_id], name)
            if added.outcome == "alias":
                owner = tenant_labels(tenants).get(added.tenant_id, added.tenant_id)
                st.info(f"{tenant_id} is a domain of {owner}, which is already here: nothing was added.",
                        icon=":material/info:")
            else:
                st.session_state["tenants_flash"] = (
                    f"Renamed {tenant_id} to {name}." if added.outcome == "renamed"
                    else f"Added {name} ({tenant_id}). Sync it on the Sync page."
                )
                st.rerun()

    if cfg.demo and access.can(user, "manage_tenants"):  # adding them is an admin's action
        st.subheader("Demo tenants")
        demo = tenants_view.demo_tenants()
        if demo is None:
            st.caption("The Graph simulator package is not available, so there are no demo tenants.")
        else:
            st.caption(f"{len(demo)} simulated tenants served by the local Graph simulator "
                       "(`python -m tenantpilot simulate`): " + ", ".join(f"**{inert(n)}**" for _, n in demo)
                       + ". They sync through the real path (MSAL, Graph calls, the worker, DuckDB).")
            present = set(tenants["tenant_id"].to_list()) if tenants.height else set()
            if all(demo_id in present for demo_id, _ in demo):
                st.caption("All demo tenants are added: sync them on the Sync page.")
            elif st.button("Add demo tenants", icon=":material/science:", type="primary" if not present else "secondary",
                           disabled=not access.can(user, "manage_tenants"), help=signin.why_not(user, "manage_tenants")) \
                    and signin.permitted(user, "manage_tenants"):
                with guard("add the demo tenants"):
                    for demo_id, demo_name in demo:
                        store.add_tenant(demo_id, demo_name, "demo")
                access_view.record(user, "tenant added", [d for d, _ in demo], "demo tenants")
                st.session_state["tenants_flash"] = f"Added {len(demo)} demo tenants."
                st.rerun()

with right:
    st.subheader("Remove a tenant")
    if not tenants.height:
        st.caption("Nothing to remove.")
    else:
        labels = tenant_labels(tenants)
        victim = st.selectbox("Tenant", list(labels), format_func=format_with(labels), index=None,
                              placeholder="Choose a tenant", key="remove_tenant")
        sure = st.checkbox("I understand that its synced snapshots and history are deleted too",
                           key="remove_confirm", disabled=victim is None)
        clicked = st.button("Remove tenant", type="secondary", icon=":material/delete:",
                            disabled=not (victim and sure and access.can(user, "manage_tenants")),
                            help=signin.why_not(user, "manage_tenants"))
        if clicked and victim is not None and signin.permitted(user, "manage_tenants"):
            with guard("remove the tenant"):
                removed = store.remove_tenant(victim)
            access_view.record(user, "tenant removed", [victim], labels[victim])
            st.session_state["tenants_flash"] = (
                f"Removed {labels[victim]} and its data." if removed else f"{labels[victim]} was already gone."
            )
            for key in ("remove_tenant", "remove_confirm"):
                st.session_state.pop(key, None)
            st.rerun()

st.divider()
st.subheader("Schedules", anchor="schedules")
st.caption(f"Tenants sync on their own at `{cfg.sync_schedule}` (TENANTPILOT_SYNC_SCHEDULE: cron, the worker's local "
           f"time) unless they have a schedule of their own; starts are spread over {cfg.schedule_jitter_s} s. "
           "A slot missed while the worker was stopped runs once when it is back. Baselines are never scheduled. "
           "The same as `python -m tenantpilot schedule set TENANT \"CRON\"|off|default`.")
if tenants.height:
    with guard("read the schedules"):
        mine = store.schedules_with_groups().filter(pl.col("tenant_id").is_in(tenants["tenant_id"].to_list()))
        plans = schedule.overview(list(mine.iter_rows(named=True)), cfg.sync_schedule,
                                  cfg.schedule_jitter_s, datetime.now().astimezone())
    st.dataframe(inert_frame(tenants_view.schedule_table(plans)), hide_index=True, placeholder="—", key="schedules_table",
                 column_config={"next_run": st.column_config.DatetimeColumn("Next run", format="YYYY-MM-DD HH:mm:ss"),
                                "last_scheduled_at": st.column_config.DatetimeColumn(
                                    "Last scheduled run at", format="YYYY-MM-DD HH:mm")})
    labels = {p["tenant_id"]: p["display_name"] for p in plans if p["source"] != "baseline"}
    if labels:
        with st.form("tenant_schedule", border=True):
            who = st.selectbox("Tenant", list(labels), format_func=format_with(labels), key="schedule_tenant")
            cron = st.text_input("Schedule", placeholder="0 2 * * *   ·   off   ·   default", key="schedule_cron",
                                 help="5 fields: minute hour day-of-month month day-of-week (0 or 7 = Sunday; "
                                      "day-of-month and day-of-week must both match). `off`: never on its own. "
                                      "`default`: follow TENANTPILOT_SYNC_SCHEDULE.")
            set_clicked = st.form_submit_button("Set schedule", icon=":material/schedule:",
                                                disabled=not access.can(user, "manage_schedules"),
                                                help=signin.why_not(user, "manage_schedules"))
        if set_clicked and who and signin.permitted(user, "manage_schedules"):
            wanted = (cron or "").strip()
            try:
                text = None if wanted.lower() == "default" else schedule.validate(wanted)
            except schedule.ScheduleError as exc:
                st.error(inert(str(exc)), icon=":material/error:")
            else:
                with guard("save the schedule"):
                    store.set_tenant_schedule(who, text)
                access_view.record(user, "schedule", [who], text or "default")
                st.session_state["tenants_flash"] = (f"{labels[who]} follows the global schedule again." if text is None
                                                     else f"{labels[who]}: schedule {text}.")
                st.rerun()

access_view.groups_section(store, tenant_labels(tenants), user)
alerts_view.section(store, tenant_labels(tenants), user, cfg)

st.divider()
st.subheader("Import a baseline", anchor="import-a-baseline")
st.caption("A baseline is a set of exported policies you compare tenants with: upload the .json files of an Intune "
           "export (IntuneManagement, IntuneCD, the Intune portal or Graph) or a .zip of the export folder. It is "
           "listed above as kind *baseline* and can be chosen as the baseline in Compare. Importing again under the "
           "same name replaces it. The same as `python -m tenantpilot import PATH --name NAME`.")


imported = st.session_state.pop("tenants_import", None)
upload_round = st.session_state.setdefault("tenants_upload_round", 0)  # a new key empties the uploader
with st.form("import_baseline", border=True):
    baseline_name = st.text_input("Baseline name", placeholder="CIS Level 1", key="baseline_name")
    files = st.file_uploader("Export files", type=["json", "zip"], accept_multiple_files=True,
                             key=f"baseline_files_{upload_round}",
                             help="Several .json files, or .zip archives of an export folder (e.g. an IntuneCD "
                                  "backup or an IntuneManagement export). Archives are unpacked on the server.")
    import_clicked = st.form_submit_button("Import baseline", type="primary", icon=":material/upload_file:",
                                           disabled=not access.can(user, "import_baseline"),
                                           help=signin.why_not(user, "import_baseline"))


if import_clicked and not signin.permitted(user, "import_baseline"):
    pass
elif import_clicked:
    baseline_name = (baseline_name or "").strip()
    existed = baseline_id(baseline_name) in set(tenants["tenant_id"].to_list()) if baseline_name else False
    failure: uploads.UploadError | None = None
    with st.spinner("Importing the export…"), guard("import the baseline"):
        try:
            result = uploads.import_uploads(store, [(f.name, f.getvalue()) for f in files or []], baseline_name)
        except uploads.UploadError as exc:  # a message for the user; anything else: guard
            failure = exc
    if failure is not None:
        kept = f" The previous import of {baseline_name} is unchanged." if existed else ""
        st.error(inert(f"{failure}{kept}"), icon=":material/error:")
        if isinstance(failure, uploads.NothingImported):
            tenants_view.show_skipped(failure.skipped, f"**{len(failure.skipped):,} file(s) could not be read:**")
    else:
        st.session_state["tenants_import"] = {
            "message": (f"Imported baseline {baseline_name}: {result.policies:,} policies, {result.settings:,} "
                        f"settings" + (" (replaces the previous import)" if existed else "")
                        + ". Choose it as the baseline in Compare."),
            "skipped": result.skipped,
        }
        st.session_state["tenants_upload_round"] = upload_round + 1
        access_view.record(user, "baseline imported", [baseline_id(baseline_name)],
                           f"{result.policies:,} policies, {result.settings:,} settings")
        st.rerun()
elif imported:
    st.success(inert(imported["message"]), icon=":material/check_circle:")
    tenants_view.show_skipped(imported["skipped"], f"**{len(imported['skipped']):,} file(s) were left out** "
                                                   "(not policies, or not readable):")
