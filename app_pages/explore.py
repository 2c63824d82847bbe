"""Explore: the current snapshot of one or many tenants, filtered and searched, page by page.

Filters, search, counts, facet choices and paging run in DuckDB: only the visible page (at most
PAGE_SIZE rows) and the counts come back, so a rerun costs what is on screen, not the size of
the database. Downloads carry every matched row and are built only when clicked. Selecting a row opens its setting: description, which policies in which tenants
set it, their assignments, and the policy's raw JSON. The Assignments tab lists who the policies
apply to (include/exclude, all users/devices, groups, filters) under the same filters.
Only the open tab runs (st.tabs with on_change="rerun").
"""

from __future__ import annotations

import json
from functools import partial

import polars as pl
import streamlit as st

from tenantpilot import families
from tenantpilot.analysis import explore, export
from tenantpilot.app import access_view, explore_view, reads, script_view, signin
from tenantpilot.app.escaping import inert, inert_frame, inert_json, reveal
from tenantpilot.app.labels import family_label, format_with, tenant_labels, with_family_labels
from tenantpilot.app.messages import guard, show_carried
from tenantpilot.app.widgets import PAGE_SIZE, SHARED, Page, pager, paginate, policy_filter
from tenantpilot.flatten import secrets

st.title("Explore")
st.caption("Every setting of every synced policy, one row each. Filter, search, open a setting, export.")

user = signin.current_user(reads.config())
snap = reads.snapshot_key()
scope = reads.scope()  # the tenants this user may see (empty: all): every read below keeps to them
everything = explore.Filters(scope)
total_rows = explore_view.settings_count(snap, everything)
if total_rows == 0:
    st.info("Nothing synced yet: add a tenant on the Tenants page and sync it on the Sync page.",
            icon=":material/info:")
    st.stop()

show_carried(reads.carried(snap))
tenants = reads.tenants()
all_facets = explore_view.settings_facets(snap, everything, "tenant_id", "policy_type", "platform")
facets = {"tenants": all_facets["tenant_id"], "policy_types": all_facets["policy_type"],
          "platforms": all_facets["platform"]}
labels = tenant_labels(tenants.filter(pl.col("tenant_id").is_in(facets["tenants"])))

c1, c2, c3 = st.columns([2, 1, 1])
tenant_options = sorted(facets["tenants"], key=lambda t: format_with(labels)(t).casefold())
chosen_tenants = c1.multiselect("Tenants", tenant_options, format_func=format_with(labels),
                                placeholder="All tenants", key="ex_tenants", **SHARED)
chosen_types = c2.multiselect("Policy type", facets["policy_types"], format_func=family_label,
                              placeholder="All types", key="ex_types", **SHARED)
chosen_platforms = c3.multiselect("Platform", facets["platforms"], format_func=lambda p: p or "(none)",
                                  placeholder="All platforms", key="ex_platforms", **SHARED)
narrowed = explore.Filters(tuple(chosen_tenants) or scope, tuple(chosen_types), tuple(chosen_platforms))
c4, c5 = st.columns([2, 2])
chosen_policies = policy_filter(c4, explore_view.settings_facets(snap, narrowed, "policy_name")["policy_name"],
                                "ex_policies")
search = c5.text_input("Search", placeholder="setting name, id, value, policy or group", key="ex_search",
                       **SHARED, icon=":material/search:")

settings_tab, assignments_tab = st.tabs(["Settings", "Assignments"], key="ex_view", on_change="rerun",
                                        bind="query-params")

n_tenants = len(snap[1])
if assignments_tab.open and not chosen_tenants and n_tenants > explore_view.ASSIGNMENTS_ALL_TENANTS:
    with assignments_tab:
        st.info(f"Choose up to {explore_view.ASSIGNMENTS_ALL_TENANTS} tenants above to list their assignments "
                f"({n_tenants:,} tenants have synced data).", icon=":material/filter_alt:")
elif assignments_tab.open:
    with assignments_tab:
        assignments = explore_view.load_assignments(snap, chosen_tenants or list(scope) or None)
        scoped = explore.facet_matching(assignments, explore.Filters(
            tuple(chosen_tenants), tuple(chosen_types), tuple(chosen_platforms), tuple(chosen_policies)))
        a1, a2 = st.columns([2, 2])
        targets = a1.multiselect("Target", sorted(assignments["target"].drop_nulls().unique().to_list()),
                                 placeholder="All devices, all users, groups…", key="ex_asg_targets")
        intents = a2.pills("Include / exclude", ["include", "exclude"], selection_mode="multi",
                           format_func=lambda i: {"include": "Included", "exclude": "Excluded"}[i],
                           key="ex_asg_intents")
        found = explore.search_expr(search or "", explore_view.ASSIGNMENT_SEARCH_COLUMNS)
        shown = scoped.filter(
            pl.col("target").is_in(targets) if targets else pl.lit(True),
            pl.col("intent").is_in(intents) if intents else pl.lit(True),
            found if found is not None else pl.lit(True),
        )
        a_key = hash((tuple(chosen_tenants), tuple(chosen_types), tuple(chosen_platforms), tuple(chosen_policies),
                      search, tuple(targets), tuple(intents or ())))
        a_page = paginate(shown, key=f"ex_asg_page_{a_key}", page_size=PAGE_SIZE)
        a_rows, a_info = a_page.rows, a_page.info
        if not assignments.height:
            a_info.markdown("No assignments in the snapshot: the synced policies are not assigned, or the "
                            "imported export does not include their assignments.")
        elif shown.height:
            a_info.markdown(a_page.showing(shown.height, "matching assignments")
                            + f" of **{shown.select('tenant_id', 'policy_id').n_unique():,}** "
                            f"policies ({assignments.height:,} in the snapshot)")
        else:
            a_info.markdown(f"No assignments match ({assignments.height:,} in the snapshot). Clear a filter or "
                            "change the search.")
        st.dataframe(
            inert_frame(with_family_labels(a_rows)), hide_index=True, placeholder="—",
            column_order=explore_view.ASSIGNMENT_TABLE_COLUMNS, column_config=explore_view.ASSIGNMENT_COLUMN_CONFIG,
            height="auto" if a_rows.height <= 10 else 560, key=f"ex_asg_table_{a_key}_{a_page.number}",
        )
        a_stamp = chosen_tenants[0] if len(chosen_tenants) == 1 else f"{len(chosen_tenants) or 'all'}-tenants"
        st.download_button(
            f"CSV ({shown.height:,} assignments)",
            data=access_view.recorded_export(user, "Assignments CSV", list(chosen_tenants or scope),
                                             partial(export.to_csv_bytes, shown)),
            file_name=f"tenantpilot-assignments-{a_stamp}.csv", mime="text/csv", icon=":material/download:",
            disabled=shown.height == 0, key="ex_asg_csv", on_click="ignore",
        )

if settings_tab.open:
    with settings_tab:
        filters = explore.Filters(tuple(chosen_tenants) or scope, tuple(chosen_types), tuple(chosen_platforms),
                                  tuple(chosen_policies), search or "")
        matched_rows = explore_view.settings_count(snap, filters)
        filters_key = hash(filters)
        number, first, info = pager(matched_rows, key=f"ex_page_{filters_key}", page_size=PAGE_SIZE)
        page_rows = explore_view.settings_page(snap, filters, number, PAGE_SIZE)
        rows = explore.export_columns(page_rows,
                                      explore.TABLE_COLUMNS + ("run_id", "policy_id", "tenant_id", "odata_type"))
        info.markdown(Page(page_rows, number, first, info).showing(matched_rows, "matching rows")
                      + f" ({total_rows:,} in the snapshot)" if matched_rows else
                      f"No rows match ({total_rows:,} in the snapshot). Clear a filter or change the search.")

        selection = st.dataframe(
            inert_frame(with_family_labels(explore.distinct_names(rows))),
            hide_index=True, placeholder="—",
            column_order=explore.TABLE_COLUMNS,
            column_config={
                "tenant": "Tenant", "policy_name": "Policy", "policy_type": "Policy type", "platform": "Platform",
                "category": "Category", "setting_name": st.column_config.TextColumn("Setting", width="medium"),
                "value": st.column_config.TextColumn("Value", width="medium"),
                "raw_value": st.column_config.TextColumn("Raw value", help="the value as Graph returned it (JSON); "
                                                         "“Not configured” rows keep Graph's own value here"),
                "setting_id": "Setting id", "setting_key": "Setting key", "value_type": "Type",
                "data_from": st.column_config.TextColumn("Data from", help="current, or carried forward from an "
                                                         "earlier run when the last sync could not read the type"),
            },
            on_select="rerun",
            selection_mode="single-row",
            height="auto" if rows.height <= 10 else 560,
            key=f"ex_table_{filters_key}_{number}",
            lazy=False,
        )

        downloads = st.container(horizontal=True)
        stamp = chosen_tenants[0] if len(chosen_tenants) == 1 else f"{len(chosen_tenants) or 'all'}-tenants"
        downloads.download_button(
            f"CSV ({matched_rows:,} rows)",
            data=access_view.recorded_export(user, "Explore CSV", list(chosen_tenants or scope),
                                             partial(explore_view.matching_csv, snap, filters)),
            file_name=f"tenantpilot-{stamp}.csv", mime="text/csv", icon=":material/download:",
            disabled=matched_rows == 0, key="ex_csv", on_click="ignore",
        )
        downloads.download_button(
            f"Parquet ({matched_rows:,} rows)",
            data=access_view.recorded_export(user, "Explore Parquet", list(chosen_tenants or scope),
                                             partial(explore_view.matching_parquet, snap, filters)),
            file_name=f"tenantpilot-{stamp}.parquet", mime="application/vnd.apache.parquet",
            icon=":material/download:",
            disabled=matched_rows == 0, key="ex_parquet", on_click="ignore",
        )

        picked = selection.selection.rows if selection and hasattr(selection, "selection") else []
        if picked and picked[0] < rows.height:
            row = rows.row(picked[0], named=True)
            key, policy_type = row["setting_key"], row["policy_type"]
            # every current row of this setting, in any tenant (not only the filtered ones)
            frame = explore_view.settings_matching(snap, explore.Filters(policy_types=(policy_type,), setting_keys=(key,)))
            meta = explore.setting_info(frame, key, policy_type)
            st.divider()
            st.subheader(inert(meta.get("setting_name") or key))
            st.caption(" · ".join(inert(x) for x in (meta.get("category"), family_label(policy_type),
                                                     meta.get("value_type")) if x))
            if meta.get("description"):
                st.markdown(inert(meta["description"]))
            st.markdown(f"Setting id {inert(meta.get('setting_id') or '')} · key {inert(key)}")
            scope_type = row["odata_type"] if policy_type in families.SCOPE_BY_TYPE else None
            where = explore.setting_detail(frame, key, policy_type, odata_type=scope_type)
            st.markdown(f"**Set by {where.height:,} polic{'y' if where.height == 1 else 'ies'} in "
                        f"{where['tenant_id'].n_unique():,} tenant(s)**")
            st.dataframe(inert_frame(where.drop("raw_value", "run_id", "tenant_id", "policy_id", strict=False)),
                         hide_index=True, placeholder="—",
                         column_config={"tenant": "Tenant", "policy_name": "Policy", "platform": "Platform",
                                        "value": "Value", "value_type": "Type", "is_secret": "Secret",
                                        "synced_at": st.column_config.DatetimeColumn("Synced",
                                                                                     format="YYYY-MM-DD HH:mm")},
                         key="ex_detail")
            setters = where.select("run_id", "policy_id").unique()
            assigned = explore_view.load_assignments(snap, where["tenant_id"].unique().to_list()).join(
                setters, on=["run_id", "policy_id"], how="semi")
            unassigned = where.join(assigned.select("run_id", "policy_id").unique(), on=["run_id", "policy_id"],
                                    how="anti").unique(["run_id", "policy_id"], maintain_order=True)
            st.markdown(f"**Assignments of these policies** ({assigned.height:,})")
            if assigned.height:
                st.dataframe(inert_frame(with_family_labels(assigned)), hide_index=True, placeholder="—",
                             column_order=("tenant", "policy_name", "intent", "target", "group", "filter",
                                           "filter_type"),
                             column_config=explore_view.ASSIGNMENT_COLUMN_CONFIG, key="ex_detail_assignments")
            if unassigned.height:
                names = [inert(f"{r['policy_name']} ({r['tenant']})") for r in unassigned.head(10).iter_rows(named=True)]
                more = f" and {unassigned.height - 10:,} more" if unassigned.height > 10 else ""
                st.caption(f"Not assigned (or the export has no assignments): {', '.join(names)}{more}.")
            with st.expander(f"Raw JSON of the policy “{inert(row['policy_name'])}” ({inert(row['tenant'])})"):
                with guard("read the policy's raw JSON"):
                    raw = reads.store().policy_raw(int(row["run_id"]), row["policy_id"])
                if raw is None:
                    st.caption("The raw policy is not stored for this snapshot.")
                else:
                    try:
                        st.json(inert_json(secrets.mask(json.loads(raw))), expanded=2)
                    except ValueError:
                        st.code(reveal(secrets.mask_json_text(raw)), language="json")
            script_view.show_scripts(reads.store(), row, where, raw)  # script text and line diffs, if any
            mine = (pl.col("policy_id") == row["policy_id"]) & (pl.col("tenant_id") == row["tenant_id"])
            raw_value = where.filter(mine)["raw_value"]
            if raw_value.len():
                with st.expander("Raw value of this setting"):
                    st.code(reveal(raw_value[0] or ""), language="json")
        else:
            st.caption("Select a row to see the setting's description, every policy that sets it, their "
                       "assignments, and the raw JSON.")
