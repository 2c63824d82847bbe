"""The Tenants page's alert-channel part (admins): which named alert channels each tenant group and tenant sends
its scheduled-sync alerts to. Only channel names are chosen and stored; their endpoints are the environment's
(tenantpilot/ops/channels.py). Every change is checked on the server and recorded in the activity log."""

from __future__ import annotations

import polars as pl
import streamlit as st

from tenantpilot import access
from tenantpilot.app.escaping import inert_frame, reveal
from tenantpilot.app.labels import format_with
from tenantpilot.app.messages import guard
from tenantpilot.app.signin import permitted, why_not
from tenantpilot.config import Settings
from tenantpilot.ops import channels
from tenantpilot.store import Store


def routes_table(settings: pl.DataFrame, labels: dict[str, str], known: list[str]) -> pl.DataFrame:
    """Who names which channels (Store.alert_channel_settings), with tenant names and channels the environment no
    longer configures marked (pure)."""
    if not settings.height:
        return pl.DataFrame(schema={"For": pl.String, "Name": pl.String, "Channels": pl.String})
    return settings.select(
        pl.col("kind").alias("For"),
        pl.when(pl.col("kind") == "tenant").then(pl.col("owner").replace_strict(labels, default=pl.col("owner")))
        .otherwise(pl.col("owner")).alias("Name"),
        pl.col("channels").list.eval(pl.when(pl.element().is_in(known)).then(pl.element())
                                     .otherwise(pl.element() + " (not configured)")).list.join(", ").alias("Channels"))


def section(store: Store, labels: dict[str, str], user: access.User, cfg: Settings) -> None:
    """The channels of groups and tenants: shown to admins (the only role that may change them)."""
    if not access.can(user, "manage_alerts"):
        return
    st.divider()
    st.subheader("Alert channels", anchor="alert-channels")
    known = channels.names(cfg)
    described = [n if n == channels.OFF or channels.targets(cfg, [n]) else f"{n} (no endpoint set: sends nothing)"
                 for n in known]
    st.caption("Alerts after scheduled syncs go to a tenant's own channels; a tenant without any follows its groups' "
               "channels (all of them), else `default` (the TENANTPILOT_ALERT_* settings); `off` sends nothing. Channels are named in the "
               "environment (TENANTPILOT_ALERT_CHANNEL_<NAME>_TEAMS, _SLACK, _WEBHOOK, _SMTP): here you only choose "
               f"names. Channels: {', '.join(described)}.")
    with guard("read the alert channels"):
        members, routes = store.group_members(), store.alert_channel_settings()
    if routes.height:
        st.dataframe(inert_frame(routes_table(routes, labels, known)), hide_index=True, key="alert_routes_table")
    groups = sorted(set(members["group_name"].to_list()))
    targets = {**{f"group:{g}": f"Group {g}" for g in groups},
               **{f"tenant:{t}": f"Tenant {n}" for t, n in labels.items() if not t.startswith("baseline:")}}
    if not targets:
        st.caption("No tenant or group yet.")
        return
    with st.form("alert_channels_form", border=True):
        chosen = st.selectbox("Group or tenant", list(targets), format_func=format_with(targets),
                              key="alert_route_for")
        names = st.multiselect("Alert channels", known, format_func=reveal, key="alert_route_channels",
                               help="None: a group carries none; a tenant follows its groups again.")
        saved = st.form_submit_button("Save alert channels", icon=":material/notifications:",
                                      disabled=not access.can(user, "manage_alerts"),
                                      help=why_not(user, "manage_alerts"))
    if saved and chosen and permitted(user, "manage_alerts"):
        kind, _, owner = str(chosen).partition(":")
        picked = [channels.check_name(n) for n in names if n in known]  # a session can send any value
        with guard("save the alert channels"):
            if kind == "group":
                store.set_alert_channels(group_name=owner, channels=picked)
                tenant_ids = members.filter(pl.col("group_name") == owner)["tenant_id"].to_list()
            else:
                store.set_alert_channels(tenant_id=owner, channels=picked)
                tenant_ids = [owner]
            store.record_activity(user.actor, "alert channels", tenant_ids or [None],
                                  f"{targets[chosen]}: {', '.join(picked) or 'none'}")
        st.session_state["tenants_flash"] = f"{targets[chosen]}: alert channels {', '.join(picked) or 'none'}."
        st.rerun()
