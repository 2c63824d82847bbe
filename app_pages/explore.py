"""Explore: the current snapshot of one or many tenants, filtered and searched, page by page.

At most PAGE_SIZE rows go to the browser; downloads carry every matched row and are built only
when clicked. Selecting a row opens its setting: description, which policies in which tenants
set it, and the policy's raw JSON.
"""

from __future__ import annotations

import json

import polars as pl
import streamlit as st

from tenantpilot import compare, explore, export, ui

PAGE_SIZE = 1_000

st.title("Explore")
st.caption("Every setting of every synced policy, one row each. Filter, search, open a setting, export.")

frame = ui.snapshot()
if frame.height == 0:
    st.info("Nothing synced yet: add a tenant on the Tenants page and sync it on the Sync page.",
            icon=":material/info:")
    st.stop()

tenants = ui.tenants()
labels = ui.tenant_labels(tenants.filter(pl.col("tenant_id").is_in(frame["tenant_id"].unique().to_list())))
facets = explore.facet_values(frame)

c1, c2, c3 = st.columns([2, 1, 1])
tenant_options = sorted(facets["tenants"], key=lambda t: labels.get(t, t).casefold())
chosen_tenants = c1.multiselect("Tenants", tenant_options, format_func=ui.format_with(labels),
                                placeholder="All tenants", key="ex_tenants", **ui.SHARED)
chosen_types = c2.multiselect("Policy type", facets["policy_types"], format_func=ui.family_label,
                              placeholder="All types", key="ex_types", **ui.SHARED)
chosen_platforms = c3.multiselect("Platform", facets["platforms"], format_func=lambda p: p or "(none)",
                                  placeholder="All platforms", key="ex_platforms", **ui.SHARED)
narrowed = explore.filter_settings(frame, tenants=chosen_tenants, policy_types=chosen_types,
                                   platforms=chosen_platforms)
c4, c5 = st.columns([2, 2])
chosen_policies = ui.policy_filter(c4, explore.facet_values(narrowed)["policies"], "ex_policies")
search = c5.text_input("Search", placeholder="setting name, id, value or policy name", key="ex_search", **ui.SHARED,
                       icon=":material/search:")

matched = explore.filter_settings(narrowed, policies=chosen_policies, search=search or "")

pages = explore.page_count(matched.height, PAGE_SIZE)
filters_key = hash((tuple(chosen_tenants), tuple(chosen_types), tuple(chosen_platforms), tuple(chosen_policies),
                    search))
info, pager = st.columns([3, 2], vertical_alignment="center")
page = 1
if pages > 1:
    with pager:
        page = st.pagination(pages, key=f"ex_page_{filters_key}", max_visible_pages=5)
rows = explore.export_columns(explore.page_slice(matched, page, PAGE_SIZE),
                              explore.TABLE_COLUMNS + ("run_id", "policy_id", "tenant_id", "odata_type"))
first = (page - 1) * PAGE_SIZE + 1 if matched.height else 0
info.markdown(f"Showing **{first:,}–{first + rows.height - 1:,}** of **{matched.height:,}** matching rows "
              f"({frame.height:,} in the snapshot)" if matched.height else
              f"No rows match ({frame.height:,} in the snapshot). Clear a filter or change the search.")

selection = st.dataframe(
    ui.with_family_labels(rows),
    hide_index=True, placeholder="—",
    column_order=explore.TABLE_COLUMNS,
    column_config={
        "tenant": "Tenant", "policy_name": "Policy", "policy_type": "Policy type", "platform": "Platform",
        "category": "Category", "setting_name": "Setting",
        "value": st.column_config.TextColumn("Value", width="medium"),
        "setting_id": "Setting id", "setting_key": "Setting key", "value_type": "Type",
    },
    on_select="rerun",
    selection_mode="single-row",
    height="auto" if rows.height <= 10 else 560,
    key=f"ex_table_{filters_key}_{page}",
    lazy=False,
)

downloads = st.container(horizontal=True)
stamp = chosen_tenants[0] if len(chosen_tenants) == 1 else f"{len(chosen_tenants) or 'all'}-tenants"
downloads.download_button(
    f"CSV ({matched.height:,} rows)", data=lambda m=matched: export.to_csv_bytes(explore.export_columns(m)),
    file_name=f"tenantpilot-{stamp}.csv", mime="text/csv", icon=":material/download:",
    disabled=matched.height == 0, key="ex_csv", on_click="ignore",
)
downloads.download_button(
    f"Parquet ({matched.height:,} rows)", data=lambda m=matched: export.to_parquet_bytes(explore.export_columns(m)),
    file_name=f"tenantpilot-{stamp}.parquet", mime="application/vnd.apache.parquet", icon=":material/download:",
    disabled=matched.height == 0, key="ex_parquet", on_click="ignore",
)

picked = selection.selection.rows if selection and hasattr(selection, "selection") else []
if picked and picked[0] < rows.height:
    row = rows.row(picked[0], named=True)
    key, policy_type = row["setting_key"], row["policy_type"]
    meta = explore.setting_info(frame, key, policy_type)
    st.divider()
    st.subheader(meta.get("setting_name") or key)
    st.caption(" · ".join(x for x in (meta.get("category"), ui.family_label(policy_type), meta.get("value_type"))
                          if x))
    if meta.get("description"):
        st.markdown(meta["description"])
    st.markdown(f"Setting id `{meta.get('setting_id') or ''}` · key `{key}`")
    scope_type = None if policy_type in compare.DEFINITION_KEYED else row["odata_type"]
    where = explore.setting_detail(frame, key, policy_type, odata_type=scope_type)
    st.markdown(f"**Set by {where.height:,} polic{'y' if where.height == 1 else 'ies'} in "
                f"{where['tenant_id'].n_unique():,} tenant(s)**")
    st.dataframe(where.drop("raw_value", "run_id", "tenant_id", "policy_id", strict=False),
                 hide_index=True, placeholder="—",
                 column_config={"tenant": "Tenant", "policy_name": "Policy", "platform": "Platform",
                                "value": "Value", "value_type": "Type", "is_secret": "Secret",
                                "synced_at": st.column_config.DatetimeColumn("Synced", format="YYYY-MM-DD HH:mm")},
                 key="ex_detail")
    with st.expander(f"Raw JSON of the policy “{row['policy_name']}” ({row['tenant']})"):
        with ui.guard("read the policy's raw JSON"):
            raw = ui.store().policy_raw(int(row["run_id"]), row["policy_id"])
        if raw is None:
            st.caption("The raw policy is not stored for this snapshot.")
        else:
            try:
                st.json(json.loads(raw), expanded=2)
            except ValueError:
                st.code(raw, language="json")
    mine = (pl.col("policy_id") == row["policy_id"]) & (pl.col("tenant_id") == row["tenant_id"])
    raw_value = where.filter(mine)["raw_value"]
    if raw_value.len():
        with st.expander("Raw value of this setting"):
            st.code(raw_value[0] or "", language="json")
else:
    st.caption("Select a row to see the setting's description, every policy that sets it, and the raw JSON.")
