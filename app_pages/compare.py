"""Compare: 2..N tenants side by side (optionally against a baseline), one row per setting.

Settings are matched by (policy type, setting key), never by policy name; values are compared
normalised. The matrix, the alignment scores and the charts come from tenantpilot.analysis.compare.
"""

from __future__ import annotations

from functools import partial

import polars as pl
import streamlit as st

from tenantpilot.analysis import compare, explore
from tenantpilot.app import access_view, compare_view, reads, signin, triage_view
from tenantpilot.app.escaping import inert, inert_frame
from tenantpilot.app.labels import family_label, format_with, labelled_csv, tenant_labels, with_family_labels
from tenantpilot.app.messages import guard, show_carried
from tenantpilot.app.widgets import PAGE_SIZE, SHARED, paginate, policy_filter

st.title("Compare")
st.caption("Tenants side by side: one row per setting, one column per tenant. Settings match by setting key, "
           "not by policy name; ◆ marks baselines.")

user = signin.current_user(reads.config())
key = reads.snapshot_key()
tenants = reads.tenants()
synced = tenants.filter(pl.col("tenant_id").is_in([t for t, _run in key[1]]))  # tenants with a current snapshot
if synced.height < 2:
    st.info("Compare needs at least two synced tenants (or a tenant and an imported baseline). Sync more tenants "
            "on the Sync page.", icon=":material/info:")
    st.stop()

labels = tenant_labels(synced)
ids = list(labels)
c1, c2 = st.columns([3, 1])
chosen = c1.multiselect("Tenants to compare", ids, format_func=format_with(labels), key="cmp_tenants", **SHARED,
                        placeholder="Choose two or more tenants")
default_baseline = next((t for t in chosen if synced.filter(pl.col("tenant_id") == t)["kind"][0] == "baseline"), None)
if default_baseline is None and chosen:  # else the baseline the first chosen tenant's groups carry
    with guard("read the group baselines"):
        default_baseline = next((b for b in reads.store().group_baselines(chosen[0]) if b in ids), None)
baseline = c2.selectbox("Baseline (optional)", ids, format_func=format_with(labels), key="cmp_baseline", **SHARED,
                        index=ids.index(default_baseline) if default_baseline else None, placeholder="No baseline")
compared = list(dict.fromkeys([*([baseline] if baseline else []), *chosen]))
if len(compared) < 2:
    st.info("Choose at least two tenants (a baseline counts as one).", icon=":material/info:")
    st.stop()

show_carried(reads.carried(key, compared))
facets = compare_view.facets_of(key, compared)  # only the chosen tenants' rows leave the database
f1, f2, f3, f4 = st.columns([1, 1, 1, 2])
types = f1.multiselect("Policy type", facets["policy_types"], format_func=family_label, placeholder="All types",
                       key="cmp_types", **SHARED)
platforms = f2.multiselect("Platform", facets["platforms"], format_func=lambda p: p or "(none)",
                           placeholder="All platforms", key="cmp_platforms", **SHARED)
policies = policy_filter(f3, facets["policies"], "cmp_policies")
search = f4.text_input("Search", placeholder="setting name, id, value or policy name", key="cmp_search", **SHARED,
                       icon=":material/search:")
t1, t2, t3, t4 = st.columns(4)
only_diff = t1.toggle("Only differences", value=True, key="cmp_only_diff",
                      help="Hide settings that every compared tenant sets to the same value.")
folded = t3.toggle("A missing policy as one line", value=True, key="cmp_folded",
                   help="A policy a tenant lacks as a whole (or the baseline) shows as one line; select it to see "
                        "its settings or accept them all.")
technical = t4.toggle("Technical columns", value=False, key="cmp_technical",
                      help="Show the setting key and the Graph type / platform of each setting.")
apart = t2.toggle("“Not configured” apart", value=False, key="cmp_unconfigured",
                  help="Graph returns a value (false, notConfigured, …) for settings the admin left at "
                       "“Not configured”. By default they count as not set; on, they show as “Not configured”.")

names = {t: labels[t] for t in compared}
filters = explore.Filters(policy_types=tuple(types), platforms=tuple(platforms), policies=tuple(policies),
                          search=search or "")
register = compare_view.deviations_register()  # read once: accepted deviations and the register below
matrix, scores, found = compare_view.comparison(reads.chosen_key(key, compared), tuple(compared), baseline,
                                                filters, tuple(names.items()), apart,
                                                compare_view.accepted_rows(baseline, register))
compare_view.metrics(matrix, baseline)

left, right = st.columns(2, gap="large")
if baseline and scores is not None:  # scores come with a baseline
    scores = scores.with_columns(
        pl.col("tenant_id").replace_strict(names, default=pl.col("tenant_id"), return_dtype=pl.String).alias("tenant"),
        (pl.col("score") * 100).alias("aligned"),
    )
    with left:
        st.subheader(f"Alignment with {inert(names[baseline])}")
        st.caption(f"Share of the baseline's {scores['baseline_settings'][0]:,} configured settings (with the "
                   "filters above) that each tenant sets to the same value.")
        st.altair_chart(compare_view.alignment_chart(scores), width="stretch")
with right if baseline else left:
    st.subheader("Differences per policy type")
    statuses = compare_view.chart_statuses(baseline)
    by_type = with_family_labels(compare.differences_by_policy_type(
        matrix, compare.BASELINE_STATUSES if baseline else compare.STATUSES))
    by_type = by_type.filter(pl.sum_horizontal(*statuses) > 0)  # no empty bars for all-same types
    if by_type.height:
        st.altair_chart(compare_view.differences_chart(by_type, statuses), width="stretch")
    else:
        st.caption("Every compared setting is the same." if matrix.height else "No settings match the filters.")
if baseline and scores is not None:  # the counts per tenant, full width: every column readable at 1440 px
    compare_view.scores_table(scores)
    compare_view.report_buttons(compared, baseline, user)

view = compare.only_differences(matrix) if only_diff else matrix
tenant_cols = [names[t] for t in compared]
lines = compare.policy_lines(view, tenant_cols) if folded else view
st.subheader("Matrix")
page = paginate(lines, key=f"cmp_page_{hash((tuple(compared), only_diff, apart, search, folded))}", page_size=PAGE_SIZE)
rows = page.rows
noun = "lines" if lines.height != view.height else "settings"
page.info.markdown(page.showing(lines.height, noun + (" that differ" if only_diff else "")) if view.height else
                   ("Every compared setting is the same." if only_diff and matrix.height else "No settings match."))
if rows.height:
    state = compare_view.matrix_table(rows, tenant_cols, technical=technical, key="cmp_matrix")
    triage_view.triage(triage_view.selected_rows(rows, state), view,
                       partial(compare_view.current_settings_of, reads.chosen_key(key, compared), compared,
                               filters.without("tenants")),
                       tenants={t: names[t] for t in compared if t != baseline}, baseline=baseline,
                       register=register, user=user)
st.download_button(
    f"Matrix CSV ({view.height:,} rows)",
    data=access_view.recorded_export(user, "Compare matrix CSV", list(compared), partial(labelled_csv, view)),
    file_name="tenantpilot-compare.csv", mime="text/csv", icon=":material/download:", disabled=view.height == 0,
    key="cmp_csv", on_click="ignore",
)

if found.height:
    n = found.select("tenant_id", *compare.MATCH_KEY).n_unique()
    k = found.select(compare.MATCH_KEY).n_unique()
    with st.expander(f"{n:,} conflict{'s' if n != 1 else ''} (tenant × setting) in {k:,} setting{'s' if k != 1 else ''}"
                     ": a tenant sets the same setting to different values in different policies"):
        st.dataframe(inert_frame(with_family_labels(found.drop("tenant_id", "setting_key", "distinct_values"))),
                     hide_index=True, placeholder="—", key="cmp_conflicts")

compare_view.deviation_register(compared, register, user)
