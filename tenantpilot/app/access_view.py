"""The Tenants page's access part (admins): tenant groups (a tenant in any number) and which users or role
claims are limited to which groups; every change is checked on the server and recorded in the activity log."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import polars as pl
import streamlit as st

from tenantpilot import access
from tenantpilot.app.escaping import inert, inert_frame, reveal
from tenantpilot.app.labels import format_with
from tenantpilot.app.messages import guard
from tenantpilot.app.signin import permitted, why_not
from tenantpilot.store import Store


def groups_section(store: Store, labels: dict[str, str], user: access.User) -> None:
    """Groups and limits: shown to admins (the only role that may change them)."""
    if not access.can(user, "manage_groups"):
        return
    st.divider()
    st.subheader("Tenant groups and access", anchor="tenant-groups")
    st.caption("A tenant belongs to any number of groups. A user (their sign-in name) or everyone with an app role "
               "or Entra group (`role:` + the claim value, e.g. `role:TenantPilot.Viewer`) can be limited to groups: "
               "they then see those groups' tenants only, on every page and in every export. Admins are never "
               "limited.")
    with guard("read the tenant groups"):
        members, limits = store.group_members(), store.access_limits()
    groups = sorted(set(members["group_name"].to_list()))
    if members.height:
        shown = members.group_by("group_name", maintain_order=True).agg(
            pl.col("tenant_id").replace_strict(labels, default=pl.col("tenant_id")).alias("tenants"))
        st.dataframe(inert_frame(shown.with_columns(pl.col("tenants").list.join(", "))), hide_index=True,
                     key="groups_table", column_config={"group_name": "Group", "tenants": "Tenants"})
    left, right = st.columns(2, gap="large")
    with left, st.form("group_form", border=True):
        name = st.text_input("Group", placeholder="Healthcare", key="group_name",
                             help="An existing group's name changes its tenants; no tenants removes the group.")
        chosen = st.multiselect("Tenants", list(labels), format_func=format_with(labels), key="group_tenants")
        baselines = [t for t in labels if t.startswith("baseline:")]
        held_to = st.selectbox("Group baseline", baselines, index=None, format_func=format_with(labels),
                               placeholder="None", key="group_baseline",
                               help="Alerts check its tenants against it; Compare offers it first.")
        cron = st.text_input("Group schedule", placeholder="0 2 * * *   ·   off   ·   empty: none",
                             key="group_schedule", help="Its tenants without a schedule of their own follow it.")
        saved = st.form_submit_button("Save group", icon=":material/group_work:",
                                      disabled=not access.can(user, "manage_groups"),
                                      help=why_not(user, "manage_groups"))
    if saved and permitted(user, "manage_groups"):
        if not (name or "").strip():
            st.error("Name the group.")
        else:
            from tenantpilot.ops import schedule

            try:
                text = schedule.validate(cron) if (cron or "").strip() else None
            except schedule.ScheduleError as exc:
                st.error(inert(str(exc)), icon=":material/error:")
                st.stop()
            with guard("save the group"):
                store.set_group(name, chosen)
                if chosen:
                    store.set_group_schedule(name, text)
                    store.set_group_baseline(name, held_to)
                store.record_activity(user.actor, "group", chosen or [None],
                                      f"group {' '.join(name.split())}: {len(chosen)} tenant(s), schedule {text or 'none'}, "
                                      f"baseline {held_to or 'none'}")
            st.session_state["tenants_flash"] = f"Group {' '.join(name.split())}: {len(chosen)} tenant(s)."
            st.rerun()
    with right:
        if limits.height:
            st.dataframe(inert_frame(limits), hide_index=True, key="limits_table",
                         column_config={"principal": "User or role", "group_name": "Limited to group"})
        with st.form("limit_form", border=True):
            who = st.text_input("User or role", placeholder="contractor@msp.example  ·  role:TenantPilot.Viewer",
                                key="limit_principal")
            to = st.multiselect("Limited to groups", groups, format_func=reveal, key="limit_groups",
                                help="No group: the limit is lifted.")
            limited = st.form_submit_button("Save limit", icon=":material/lock:",
                                            disabled=not access.can(user, "manage_roles"),
                                            help=why_not(user, "manage_roles"))
        if limited and permitted(user, "manage_roles"):
            if not (who or "").strip():
                st.error("Name a user (their sign-in name) or a role (role: + the claim value).")
            else:
                with guard("save the limit"):
                    store.set_limits(who, to)
                    store.record_activity(user.actor, "limit", [None],
                                          f"{' '.join(who.split())} limited to {', '.join(to) or 'nothing (lifted)'}")
                st.session_state["tenants_flash"] = (f"{' '.join(who.split())}: limited to {', '.join(to)}." if to
                                                     else f"{' '.join(who.split())}: limit lifted.")
                st.rerun()
    if not groups:
        st.caption(inert("No group yet."))


def record(user: access.User, action: str, tenant_ids: Sequence[str | None] | None = None, detail: str = "") -> None:
    """Who did what: one activity row per tenant acted on (the Activity page lists them)."""
    from tenantpilot.app.reads import store as open_app_store

    with guard("record the activity"):
        open_app_store().record_activity(user.actor, action, list(tenant_ids) if tenant_ids else [None], detail)


def recorded_export(user: access.User, what: str, tenant_ids: list[str], build: Callable[[], bytes]) -> Callable[[], bytes]:
    """A download's data callable that records the export (who, which tenants, what) when it is built, i.e. when
    the user clicks the download: Streamlit builds deferred downloads only then."""
    def run() -> bytes:
        data = build()
        record(user, "export", list(tenant_ids) or None, f"{what}, {len(data):,} bytes")
        return data
    return run
