"""Compare: 2..N tenants side by side (optionally against a baseline), one row per setting.

Settings are matched by (policy type, setting key), never by policy name; values are compared
normalised. The matrix, the alignment scores and the charts come from tenantpilot.analysis.compare.
"""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from tenantpilot.analysis import compare, explore, export
from tenantpilot.app import ui

PAGE_SIZE = ui.PAGE_SIZE


def alignment_chart(scores: pl.DataFrame) -> alt.Chart:
    """Horizontal bars, 0-100 % scale (a bar_chart would stretch the axis to the best tenant)."""
    data = scores.select("tenant", (pl.col("score").fill_null(0) * 100).round(1).alias("aligned"))
    return (
        alt.Chart(data.to_pandas())
        .mark_bar(color="#0F6CBD")
        .encode(
            x=alt.X("aligned:Q", title="settings aligned with the baseline (%)", scale=alt.Scale(domain=[0, 100])),
            y=alt.Y("tenant:N", title=None, sort="-x", axis=alt.Axis(labelOverlap=False, labelLimit=220)),
            tooltip=["tenant", alt.Tooltip("aligned:Q", title="aligned %")],
        )
        .properties(height=alt.Step(34))
    )


@st.cache_resource(max_entries=8, show_spinner="Comparing…")
def comparison(key: ui.SnapshotKey, compared: tuple[str, ...], baseline: str | None,
               filters: tuple[tuple[str, object], ...], names: tuple[tuple[str, str], ...],
               unconfigured: bool = False, accepted_rows: tuple[tuple[str, ...], ...] = ()
               ) -> compare.Comparison:
    """Matrix, alignment scores and conflicts; cached so paging and "only differences" are instant.
    `key`: ui.chosen_key of the compared tenants. `accepted_rows`: the valid accepted deviations against
    the baseline (ui.accepted_rows). A resource, not data: the frames are never changed, and cache_data
    would pickle the matrix into the cache and out of it on every rerun."""
    filtered = ui.current_settings_of(key, compared, explore.Filters(**dict(filters)))
    return compare.comparison(filtered, list(compared), baseline, labels=dict(names), unconfigured=unconfigured,
                              accepted=ui.accepted_frame(accepted_rows))


STATUS_COLORS = {"differs": "#D13438", "missing": "#F7A600", "conflict": "#8764B8"}


def differences_chart(by_type: pl.DataFrame) -> alt.Chart:
    """Stacked horizontal bars: settings that differ / are missing / conflict, per policy type."""
    long = by_type.unpivot(index="policy_type", on=list(STATUS_COLORS), variable_name="status", value_name="settings")
    return (
        alt.Chart(long.to_pandas())
        .mark_bar()
        .encode(
            x=alt.X("sum(settings):Q", title="settings"),
            y=alt.Y("policy_type:N", title=None, sort="-x", axis=alt.Axis(labelLimit=260, labelOverlap=False)),
            color=alt.Color("status:N", title=None, legend=alt.Legend(orient="bottom"),
                            scale=alt.Scale(domain=list(STATUS_COLORS), range=list(STATUS_COLORS.values()))),
            order=alt.Order("status:N"),
            tooltip=["policy_type", "status", "settings"],
        )
        .properties(height=alt.Step(30))
    )


STATUS_LABEL = {"same": "same", "differs": "differs", "missing": "missing in some", "conflict": "conflict"}

st.title("Compare")
st.caption("Tenants side by side: one row per setting, one column per tenant. Settings match by setting key, "
           "not by policy name; ◆ marks baselines.")

key = ui.snapshot_key()
tenants = ui.tenants()
synced = tenants.filter(pl.col("tenant_id").is_in([t for t, _run in key[1]]))  # tenants with a current snapshot
if synced.height < 2:
    st.info("Compare needs at least two synced tenants (or a tenant and an imported baseline). Sync more tenants "
            "on the Sync page.", icon=":material/info:")
    st.stop()

labels = ui.tenant_labels(synced)
ids = list(labels)
c1, c2 = st.columns([3, 1])
chosen = c1.multiselect("Tenants to compare", ids, format_func=ui.format_with(labels), key="cmp_tenants", **ui.SHARED,
                        placeholder="Choose two or more tenants")
default_baseline = next((t for t in chosen if synced.filter(pl.col("tenant_id") == t)["kind"][0] == "baseline"), None)
baseline = c2.selectbox("Baseline (optional)", ids, format_func=ui.format_with(labels), key="cmp_baseline", **ui.SHARED,
                        index=ids.index(default_baseline) if default_baseline else None, placeholder="No baseline")
compared = list(dict.fromkeys([*([baseline] if baseline else []), *chosen]))
if len(compared) < 2:
    st.info("Choose at least two tenants (a baseline counts as one).", icon=":material/info:")
    st.stop()

ui.show_carried(key, compared)
facets = ui.facets_of(key, compared)  # only the chosen tenants' rows leave the database
f1, f2, f3, f4 = st.columns([1, 1, 1, 2])
types = f1.multiselect("Policy type", facets["policy_types"], format_func=ui.family_label, placeholder="All types",
                       key="cmp_types", **ui.SHARED)
platforms = f2.multiselect("Platform", facets["platforms"], format_func=lambda p: p or "(none)",
                           placeholder="All platforms", key="cmp_platforms", **ui.SHARED)
policies = ui.policy_filter(f3, facets["policies"], "cmp_policies")
search = f4.text_input("Search", placeholder="setting name, id, value or policy name", key="cmp_search", **ui.SHARED,
                       icon=":material/search:")
t1, t2 = st.columns(2)
only_diff = t1.toggle("Only differences", value=True, key="cmp_only_diff",
                      help="Hide settings that every compared tenant sets to the same value.")
apart = t2.toggle("Show “Not configured” apart from not present", value=False, key="cmp_unconfigured",
                  help="Graph returns a value (false, notConfigured, …) for settings the admin left at "
                       "“Not configured”. By default they count as not set; on, they show as “Not configured”.")

names = {t: labels[t] for t in compared}
filters = (("policy_types", tuple(types)), ("platforms", tuple(platforms)), ("policies", tuple(policies)),
           ("search", search or ""))
register = ui.deviations_register()  # read once: accepted deviations and the register below
with ui.guard("compare the tenants"):
    matrix, scores, found = comparison(ui.chosen_key(key, compared), tuple(compared), baseline, filters,
                                       tuple(names.items()), apart, ui.accepted_rows(baseline, register))
counts = dict(matrix.group_by("status").len().iter_rows()) if matrix.height else {}
m = st.columns(6)
m[0].metric("Settings", f"{matrix.height:,}")
for col, status in zip(m[1:], ("same", "differs", "missing", "conflict")):
    col.metric(STATUS_LABEL[status].capitalize(), f"{counts.get(status, 0):,}")
m[5].metric("Accepted", f"{matrix.filter(compare.is_accepted()).height:,}",
            help="Differences in the deviation register, valid until their date: left out of the alignment score.")

left, right = st.columns(2, gap="large")
if baseline:
    scores = scores.with_columns(
        pl.col("tenant_id").replace_strict(names, default=pl.col("tenant_id"), return_dtype=pl.String).alias("tenant"),
        (pl.col("score") * 100).alias("aligned"),
    )
    with left:
        st.subheader(f"Alignment with {ui.inert(names[baseline])}")
        st.caption(f"Share of the baseline's {scores['baseline_settings'][0]:,} configured settings (with the "
                   "filters above) that each tenant sets to the same value.")
        st.altair_chart(alignment_chart(scores), width="stretch")
        st.dataframe(
            ui.inert_frame(scores.drop("tenant_id")), hide_index=True, placeholder="—", key="cmp_scores",
            column_order=("tenant", "aligned", "matched", "differing", "missing", "extra", "accepted"),
            column_config={
                "tenant": "Tenant", "matched": "Same value",
                "differing": "Other value", "missing": "Missing", "extra": "Extra",
                "accepted": st.column_config.NumberColumn("Accepted", help="accepted deviations: not scored"),
                "aligned": st.column_config.ProgressColumn("Aligned", format="%.1f %%", min_value=0, max_value=100),
            },
        )
with right if baseline else left:
    st.subheader("Differences per policy type")
    by_type = ui.with_family_labels(compare.differences_by_policy_type(matrix))
    by_type = by_type.filter(pl.sum_horizontal(*STATUS_COLORS) > 0)  # no empty bars for all-same types
    if by_type.height:
        st.altair_chart(differences_chart(by_type), width="stretch")
    else:
        st.caption("Every compared setting is the same." if matrix.height else "No settings match the filters.")

view = compare.only_differences(matrix) if only_diff else matrix
st.subheader("Matrix")
page = ui.paginate(view, key=f"cmp_page_{hash((tuple(compared), only_diff, apart, search))}", page_size=PAGE_SIZE)
rows = page.rows
page.info.markdown(page.showing(view.height, "settings" + (" that differ" if only_diff else "")) if view.height else
                   ("Every compared setting is the same." if only_diff and matrix.height else "No settings match."))
if rows.height:
    tenant_cols = [names[t] for t in compared]
    hide = ["setting_key", "tenants_set"] + (["scope"] if rows["scope"].eq("").all() else [])
    shown = ui.inert_frame(ui.with_family_labels(rows.drop(hide)))
    # the tenants side by side without scrolling; the profile / platform beside the name, since one name can
    # stand for an iOS and a macOS setting (Apple's ids are shared)
    lead = ["policy_type", "setting_name", *(["scope"] if "scope" in shown.columns else []), "status", *tenant_cols]
    st.dataframe(
        shown,
        column_order=[*lead, *(c for c in shown.columns if c not in lead)],
        hide_index=True, placeholder="—",
        column_config={
            "policy_type": "Policy type", "setting_name": "Setting", "category": "Category",
            "scope": st.column_config.TextColumn("Profile / platform", width="small",
                                                 help="Graph type of property-keyed profiles; platform of the "
                                                      "settings catalog"),
            "status": st.column_config.TextColumn("Status"),
            **{c: st.column_config.TextColumn(c, width="medium") for c in tenant_cols},
        },
        key="cmp_matrix",
        height="auto" if rows.height <= 10 else 640,
        lazy=False,
    )
st.download_button(
    f"Matrix CSV ({view.height:,} rows)", data=lambda v=view: export.to_csv_bytes(ui.with_family_labels(v)),
    file_name="tenantpilot-compare.csv", mime="text/csv", icon=":material/download:", disabled=view.height == 0,
    key="cmp_csv", on_click="ignore",
)

if found.height:
    n = found.select("tenant_id", *compare.MATCH_KEY).n_unique()
    with st.expander(f"{n:,} conflict{'s' if n != 1 else ''}: a tenant sets the same setting to different values "
                     "in different policies"):
        st.dataframe(ui.inert_frame(ui.with_family_labels(found.drop("tenant_id", "setting_key", "distinct_values"))),
                     hide_index=True, placeholder="—", key="cmp_conflicts")

if baseline:
    ui.accept_deviation_form(matrix, {t: names[t] for t in compared if t != baseline}, baseline, names[baseline])
ui.deviation_register(compared, register)
