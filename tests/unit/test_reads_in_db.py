"""Reads sized to the screen: the SQL the pages use gives what the pure Polars helpers give.

Explore's filters, counts, facets and pages run in DuckDB (explore.filters_sql + Store.settings_*),
and the all-tenants alignment overview is aggregated in SQL (compare.alignment_pairs_sql). Each is
checked against the Polars function it replaces, table-driven, on a real DuckDB file."""

from __future__ import annotations

import polars as pl
import pytest

from tenantpilot.analysis import compare, explore
from tenantpilot.flatten.schema import POLICY_SCHEMA, SETTING_SCHEMA
from tenantpilot.store import SEARCH_TEXTS, Store

BASE = "baseline:cis"
SC, COMPLIANCE = "settingsCatalog", "compliance"


def rows(tenant: str, cells: dict[tuple[str, str], list[str]], odata: str = "#microsoft.graph.windows10CompliancePolicy"
         ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Settings of one tenant: (policy_type, key) -> values, each value in a policy of its own."""
    out, policies = [], {}
    for (family, key), values in cells.items():
        for i, value in enumerate(values):
            pid = f"{tenant}-{family}-{i}"
            policies[pid] = {"policy_id": pid, "policy_name": f"{tenant} {family} {i}", "policy_type": family,
                             "odata_type": odata, "platform": "windows", "raw_json": "{}"}
            r = {c: "" for c in SETTING_SCHEMA}
            r.update(policy_id=pid, policy_name=f"{tenant} {family} {i}", policy_type=family, odata_type=odata,
                     platform="windows", setting_key=key, setting_id=key, setting_name=f"Name of {key}",
                     category="Cat", value=value, raw_value=value, value_type="string", is_secret=False,
                     compare_value=value.lower(), configured=True)
            out.append(r)
    return pl.DataFrame(list(policies.values()), schema=POLICY_SCHEMA), pl.DataFrame(out, schema=SETTING_SCHEMA)


DATA = {
    BASE: {(SC, "fw"): ["On"], (SC, "pin"): ["6"], (COMPLIANCE, "bitlocker"): ["true"], (SC, "dup"): ["a", "b"]},
    "t-same": {(SC, "fw"): ["ON"], (SC, "pin"): ["6"], (COMPLIANCE, "bitlocker"): ["true"], (SC, "dup"): ["b", "a"]},
    "t-differs": {(SC, "fw"): ["Off"], (SC, "pin"): ["6"], (SC, "extra"): ["x"]},
    "t-conflict": {(SC, "fw"): ["On", "Off"], (SC, "pin"): ["6", "6"], (COMPLIANCE, "bitlocker"): ["true"]},
    "t-empty-ish": {(SC, "other"): ["1"]},
}


@pytest.fixture
def filled(tmp_path) -> Store:
    store = Store(tmp_path / "reads.duckdb")
    for tenant, cells in DATA.items():
        store.add_tenant(tenant, tenant.title(), "baseline" if tenant == BASE else "tenant")
        run_id, _ = store.create_run_unless_active(tenant)
        store.start_run(run_id)
        policies, settings = rows(tenant, cells)
        store.write_snapshot(run_id, tenant, policies=policies, settings=settings, status="succeeded", request_count=0)
    return store


def test_alignment_overview_in_sql_equals_alignment_scores(filled: Store) -> None:
    frame = filled.current_settings()
    tenants = [t for t in DATA if t != BASE]
    expected = compare.alignment_scores(frame, tenants, BASE).drop("tenant").sort("tenant_id")
    got = filled.alignment_overview(BASE).drop("tenant").sort("tenant_id")
    assert got.select(expected.columns).to_dicts() == expected.to_dicts()
    again = filled.alignment_overview(BASE).drop("tenant").sort("tenant_id")  # from the kept aggregates
    assert again.to_dicts() == got.select(again.columns).to_dicts()


@pytest.mark.parametrize("filters", [
    explore.Filters(),
    explore.Filters(tenants=("t-same", "t-differs")),
    explore.Filters(policy_types=(COMPLIANCE,)),
    explore.Filters(platforms=("windows",), policies=("t-same settingsCatalog 0",)),
    explore.Filters(search="NAME OF F"),  # case-insensitive substring
    explore.Filters(search="of_"),  # _ is literal, not a wildcard: no row has "of_"
    explore.Filters(search="100%"),
    explore.Filters(tenants=("t-conflict",), search="off"),
])
@pytest.mark.parametrize("texts", [None, SEARCH_TEXTS], ids=["search-in-rows", "search-in-texts"])
def test_explore_filters_in_sql_equal_filter_settings(filled: Store, filters: explore.Filters, texts) -> None:
    frame = filled.current_settings()
    expected = explore.filter_settings(frame, tenants=filters.tenants, policy_types=filters.policy_types,
                                       platforms=filters.platforms, policies=filters.policies, search=filters.search)
    where, params = explore.filters_sql(filters, texts=texts)
    assert filled.settings_count(where, params) == expected.height
    key = ["tenant_id", "policy_id", "setting_key", "value"]
    assert filled.settings_matching(where, params).select(key).sort(key).equals(expected.select(key).sort(key))
    facets = filled.settings_facets(where, params, ["tenant_id", "policy_type", "platform", "policy_name"])
    want = explore.facet_values(expected)
    assert facets["tenant_id"] == want["tenants"] and facets["policy_type"] == want["policy_types"]
    assert facets["policy_name"] == want["policies"]
    if not filters.search:  # facets from the policies table, as the page asks for them
        by_policy = filled.settings_facets(where, params, ["tenant_id", "policy_type", "platform", "policy_name"],
                                           by_policy=True)
        assert by_policy == facets


def test_pages_are_slices_of_one_stable_order(filled: Store) -> None:
    where, params = explore.filters_sql(explore.Filters())
    whole = filled.settings_matching(where, params)
    pages = [filled.settings_page(where, params, offset=o, limit=4) for o in range(0, whole.height, 4)]
    assert pl.concat(pages).equals(whole)
    assert sum(p.height for p in pages) == filled.settings_count(where, params)


@pytest.mark.parametrize("names, keys, categories, shown", [
    (["Recovery", "Recovery"], ["os_rec", "fixed_rec"], ["OS drive", "Fixed drive"],
     ["Recovery · OS drive", "Recovery · Fixed drive"]),
    (["Recovery", "Recovery"], ["os_rec", "os_rec"], ["OS drive", "OS drive"], ["Recovery", "Recovery"]),  # same one
    (["PIN", "PIN"], ["a", "b"], ["", None], ["PIN · a", "PIN · b"]),  # no category: the key tells them apart
    (["A", "B"], ["a", "b"], ["X", "X"], ["A", "B"]),
])
def test_rows_that_share_a_name_are_told_apart(names, keys, categories, shown) -> None:
    frame = pl.DataFrame({"setting_name": names, "setting_key": keys, "category": categories},
                         schema={"setting_name": pl.String, "setting_key": pl.String, "category": pl.String})
    assert explore.distinct_names(frame)["setting_name"].to_list() == shown
