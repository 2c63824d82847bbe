"""Activity: who did what (sync, import, deviations, schedules, tenants, groups, limits, exports), newest first,
for the tenants this user may see; filtered by person and action, and exported as CSV."""

from __future__ import annotations

import polars as pl
import streamlit as st

from tenantpilot.analysis import export
from tenantpilot.app import access_view, reads, signin
from tenantpilot.app.escaping import inert_frame, reveal
from tenantpilot.app.messages import guard

LIMIT = 5_000

st.title("Activity")
st.caption("Every action taken in TenantPilot, by whom: the signed-in user, `local:` + the operator of an app "
           "without sign-in on this machine, or `cli:` + the user who ran the command line.")
user = signin.current_user(reads.config())
seen = reads.visible()
with guard("read the activity"):
    rows = reads.store().activity(sorted(seen) if seen is not None else None, limit=LIMIT)
if not rows.height:
    st.info("Nothing recorded yet.", icon=":material/info:")
    st.stop()
c1, c2 = st.columns(2)
who = c1.multiselect("Who", sorted(set(rows["actor"].to_list())), format_func=reveal, placeholder="Everyone",
                     key="act_who")
what = c2.multiselect("Action", sorted(set(rows["action"].to_list())), placeholder="Every action", key="act_what")
if who:
    rows = rows.filter(pl.col("actor").is_in(who))
if what:
    rows = rows.filter(pl.col("action").is_in(what))
st.dataframe(inert_frame(rows.drop("activity_id")), hide_index=True, placeholder="—", key="act_table",
             column_config={"acted_at": st.column_config.DatetimeColumn("When", format="YYYY-MM-DD HH:mm:ss"),
                            "actor": "Who", "action": "Action", "tenant": "Tenant", "tenant_id": "Tenant id",
                            "detail": st.column_config.TextColumn("Detail", width="large")})


def _csv() -> bytes:
    access_view.record(user, "export", None, f"activity CSV, {rows.height} rows")
    return export.to_csv_bytes(rows)


st.download_button(f"Activity CSV ({rows.height:,} rows)", data=_csv, file_name="tenantpilot-activity.csv",
                   mime="text/csv", icon=":material/download:", key="act_csv", on_click="ignore")
