"""Fleet: every tenant the user may see, its alignment with its baseline (its group's, else the imported one, or
one chosen here), worst first, with Compare a click away. The numbers are the compare rule's (fleet_view)."""

from __future__ import annotations

import polars as pl
import streamlit as st

from tenantpilot.app import compare_view, fleet_view, reads
from tenantpilot.app.escaping import inert
from tenantpilot.app.labels import tenant_labels
from tenantpilot.app.messages import guard

st.title("Fleet")
st.caption("Every tenant's alignment with its baseline, worst first: the share of the baseline's configured settings "
           "the tenant sets to the same value (accepted deviations left out). Open a tenant in Compare to triage it.")

key = reads.snapshot_key()
tenants = reads.tenants()  # only those this user may see
synced = tenants.filter(pl.col("current_run_id").is_not_null())
labels = tenant_labels(synced)
baselines = synced.filter(pl.col("kind") == "baseline")["tenant_id"].to_list()
chosen = st.selectbox("Baseline", [None, *synced["tenant_id"].to_list()], key="fleet_baseline",
                      format_func=lambda t: "Each tenant's group baseline (else the imported one)" if t is None
                      else labels.get(t, t))
if chosen is None and not baselines:
    with guard("read the group baselines"):
        carried = reads.store().group_settings()["baseline_id"].drop_nulls().to_list()
    if not carried:
        st.info("No baseline yet: import one on the Tenants page (or choose a tenant above as the baseline).",
                icon=":material/info:")
        st.stop()

with guard("read the tenant groups and the deviation register"):
    s = reads.store()
    with s.reading():
        members, group_settings = s.group_members(), s.group_settings()
register = compare_view.deviations_register()
bar = st.empty()


def progress(done: int, total: int) -> None:
    bar.progress(done / total, text=f"Aligning {total:,} tenants with their baselines: {done:,} done")


with guard("compute the fleet's alignment"):
    table = fleet_view.fleet_table(reads.store(), synced, members, group_settings, register, chosen,
                                   {t: str(n) for t, n in synced.select("tenant_id", "display_name").iter_rows()},
                                   progress)
bar.empty()
if not table.height:
    st.info("No tenant to align: sync tenants, and give them a baseline (a tenant group's, or an imported one).",
            icon=":material/info:")
    st.stop()
m = st.columns(4)
m[0].metric("Tenants", f"{table.height:,}", help="Tenants you may see that have synced data and a baseline.")
median = table.select(pl.col("score").median()).item()
m[1].metric("Median alignment", "—" if median is None else f"{median * 100:.1f} %")
m[2].metric("Below 90 %", f"{table.filter(pl.col('score') < 0.9).height:,}", help="Tenants (not settings)")
m[3].metric("Expired deviations", f"{int(table['expired'].sum()):,}",
            help="Accepted deviations past their date, in all tenants: their differences count again.")
fleet_view.show(table, labels)
worst = table.row(0, named=True)
st.caption(f"Worst first: {inert(worst['tenant'])} at "
           + ("—" if worst["score"] is None else f"{worst['score']:.1%}") + f" of {inert(worst['baseline'])}.")
