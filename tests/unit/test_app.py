"""Streamlit AppTest of every page against a real DuckDB file filled through Store.write_snapshot.

Downloads: in Streamlit 1.67 AppTest exposes `at.download_button` (label, disabled, proto) but not
the file: the bytes live in the per-run MemoryMediaFileStorage of a mock runtime that is thrown
away after each run, and callables (`data=lambda: ...`, built on click) are only registered with
`MediaFileManager.add_deferred`. The `downloads` fixture records both, so a test can read exactly
the bytes the browser would receive.
"""

from __future__ import annotations

import polars as pl
import pytest
from apptest import (
    BASELINE,
    CONTOSO,
    DATA,
    EVIL,
    FABRIKAM,
    NAMES,
    NORTHWIND,
    SETTING_NAMES,
    app,
    explore_table,
    find_table,
    texts,
    write_snapshot,
)
from streamlit.testing.v1 import AppTest

from tenantpilot.store import Store


# --- Tenants ------------------------------------------------------------------------------
def test_tenants_add_validate_and_remove(db):
    at = app()
    assert at.title[0].value == "Tenants"
    assert "No tenants yet" in texts(at)

    at.text_input(key="new_tenant_id").input("not a tenant")
    at.text_input(key="new_tenant_name").input("Broken")
    at.button[0].click().run()  # form submit
    assert any("is not a tenant id" in e.value for e in at.error)
    assert db.tenants().height == 0

    at.text_input(key="new_tenant_id").input("contoso.onmicrosoft.com")
    at.text_input(key="new_tenant_name").input("")
    at.button[0].click().run()
    assert any("display name" in e.value for e in at.error)

    at.text_input(key="new_tenant_name").input("Contoso")
    at.button[0].click().run()
    assert not at.exception
    assert any("Added Contoso" in s.value for s in at.success)
    assert db.tenants()["tenant_id"].to_list() == ["contoso.onmicrosoft.com"]
    table = find_table(at, "display_name", "tenant_id", "kind")
    assert table["tenant_id"].tolist() == ["contoso.onmicrosoft.com"]

    # remove needs the confirmation box
    at.selectbox(key="remove_tenant").set_value("contoso.onmicrosoft.com").run()
    remove = next(b for b in at.button if b.label == "Remove tenant")
    assert remove.disabled
    at.checkbox(key="remove_confirm").check().run()
    next(b for b in at.button if b.label == "Remove tenant").click().run()
    assert not at.exception
    assert any("Removed Contoso" in s.value for s in at.success)
    assert db.tenants().height == 0


def test_removing_a_tenant_removes_its_data(filled):
    at = app()
    at.selectbox(key="remove_tenant").set_value(FABRIKAM).run()
    at.checkbox(key="remove_confirm").check().run()
    next(b for b in at.button if b.label == "Remove tenant").click().run()
    assert FABRIKAM not in filled.current_settings()["tenant_id"].to_list()
    assert filled.runs(FABRIKAM).height == 0


def test_tenants_lists_kinds_and_demo_button(filled, monkeypatch):
    from tenantpilot.app import tenants_view

    monkeypatch.setattr(tenants_view, "demo_tenants", lambda: [("demo-1.example.com", "Demo One")])
    at = app()
    table = find_table(at, "display_name", "tenant_id", "kind")
    assert set(table["display_name"]) == set(NAMES.values())
    assert dict(zip(table["tenant_id"], table["kind"]))[BASELINE] == "baseline"
    # demo mode (no client id): the demo button adds kind='demo' tenants
    next(b for b in at.button if b.label == "Add demo tenants").click().run()
    assert not at.exception
    assert filled.get_tenant("demo-1.example.com") == {"tenant_id": "demo-1.example.com",
                                                       "display_name": "Demo One", "kind": "demo"}


# --- Explore ------------------------------------------------------------------------------
def test_explore_filters_search_and_counts(filled):
    at = app("explore")
    table = explore_table(at).value
    total = sum(len(s) for p in DATA.values() for s in p.values())
    assert len(table) == total
    assert f"of **{total:,}** matching rows" in texts(at)

    at.multiselect(key="ex_tenants").set_value([CONTOSO, NORTHWIND]).run()
    table = explore_table(at).value
    assert set(table["tenant"]) == {"Contoso", "Northwind"}
    assert len(table) == 7 + 4

    at.text_input(key="ex_search").input("xts-aes").run()
    table = explore_table(at).value
    assert sorted(table["tenant"]) == ["Contoso", "Northwind"]
    assert set(table["value"]) == {"XTS-AES 256"}
    assert "of **2** matching rows" in texts(at)

    at.text_input(key="ex_search").input("no such setting anywhere").run()
    assert "No rows match" in texts(at)
    assert explore_table(at).value.empty


def test_explore_csv_download_is_all_matched_rows_bom_and_formula_safe(filled, downloads):
    at = app("explore")
    at.text_input(key="ex_search").input("home page").run()
    csv = next(b for b in at.download_button if b.key == "ex_csv")
    assert csv.label == "CSV (1 rows)" and not csv.disabled
    data = downloads["tenantpilot-all-tenants.csv"]()
    assert data.startswith(b"\xef\xbb\xbf")
    text = data[3:].decode("utf-8")
    header, line = text.splitlines()[:2]
    assert header.split(",")[:7] == ["tenant", "policy_name", "policy_type", "platform", "category", "setting_name",
                                     "value"]
    assert "'=HYPERLINK" in line and ",=HYPERLINK" not in line
    assert "compare_value" not in header
    parquet = pl.read_parquet(downloads["tenantpilot-all-tenants.parquet"]())
    assert parquet["value"].to_list() == [EVIL]  # parquet keeps the exact value (no spreadsheet formulas)

    # the CSV holds every matched row, not only the page
    at.text_input(key="ex_search").input("").run()
    data = downloads["tenantpilot-all-tenants.csv"]()
    assert len(data[3:].decode().splitlines()) == 1 + sum(len(s) for p in DATA.values() for s in p.values())


def test_explore_paginates_large_results(db):
    many = {f"Policy {i}": {k: str(i) for k in SETTING_NAMES} for i in range(200)}  # 1,200 rows
    db.add_tenant(CONTOSO, "Contoso")
    write_snapshot(db, CONTOSO, many)
    at = app("explore")
    table = explore_table(at)
    assert len(table.value) == 1000
    assert "Showing **1–1,000** of **1,200**" in texts(at)
    pager = at.get("pagination")[0]
    assert pager.num_pages == 2
    pager.set_value(2).run()
    table = explore_table(at)
    assert len(table.value) == 200
    assert "Showing **1,001–1,200** of **1,200**" in texts(at)


def test_explore_detail_view(filled):
    at = app("explore")
    at.text_input(key="ex_search").input("startup pin").run()
    grid = explore_table(at)
    at.session_state[grid.key] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    assert at.subheader[0].value == "Startup PIN"
    assert "What Startup PIN does." in texts(at)
    detail = find_table(at, "tenant", "policy_name", "synced_at")
    assert sorted(detail["tenant"]) == ["Contoso", "Northwind"]
    assert any(j for j in at.json)  # the raw JSON of the policy


# --- Compare ------------------------------------------------------------------------------
def matrix_of(at: AppTest):
    return find_table(at, "status", "setting_name", "policy_type")


def test_compare_three_tenants_and_baseline(filled, downloads):
    at = app("compare")
    assert "Choose at least two tenants" in texts(at)
    at.multiselect(key="cmp_tenants").set_value([CONTOSO, FABRIKAM, NORTHWIND]).run()
    assert not at.exception
    at.toggle(key="cmp_only_diff").set_value(False).run()
    m = matrix_of(at).set_index("setting_name")
    assert list(m.columns[:5]) == ["setting", "status", "Contoso", "Fabrikam", "Northwind"]  # what decides, first
    assert m.loc["Enable firewall", "status"] == "conflict"  # Contoso sets it twice, differently
    assert m.loc["Enable firewall", "Contoso"] == "false | true"
    assert m.loc["Default inbound action", "status"] == "differs"
    assert m.loc["Log size", "status"] == "missing"
    assert m.loc["Startup PIN", "status"] == "missing"
    assert m.loc["Encryption method", "status"] == "differs"

    at.toggle(key="cmp_only_diff").set_value(True).run()
    assert "same" not in set(matrix_of(at)["status"])

    # a baseline: chosen from the list, its column first, alignment per tenant
    at.selectbox(key="cmp_baseline").set_value(BASELINE).run()
    assert not at.exception
    m = matrix_of(at)
    assert list(m.columns[2:6]) == ["◆ CIS Level 1 (baseline)", "Contoso", "Fabrikam", "Northwind"]
    scores = find_table(at, "tenant", "matched", "score").set_index("tenant")
    assert scores.loc["Northwind", "matched"] == 3 and scores.loc["Northwind", "missing"] == 1
    assert scores.loc["Fabrikam", "matched"] == 2 and scores.loc["Fabrikam", "differing"] == 2
    assert scores.loc["Northwind", "score"] == pytest.approx(0.75)
    assert len(at.get("vega_lite_chart")) == 2  # alignment per tenant, differences per policy type

    data = downloads["tenantpilot-compare.csv"]()
    assert data.startswith(b"\xef\xbb\xbf")
    text = data[3:].decode()
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text
    assert text.splitlines()[0].endswith("◆ CIS Level 1 (baseline),Contoso,Fabrikam,Northwind")


def test_compare_filters_apply_to_the_matrix(filled):
    at = app("compare")
    at.multiselect(key="cmp_tenants").set_value([CONTOSO, FABRIKAM]).run()
    at.toggle(key="cmp_only_diff").set_value(False).run()
    at.text_input(key="cmp_search").input("encryption").run()
    assert set(matrix_of(at)["setting_name"]) == {"Encryption method"}


def test_compare_needs_two_synced_tenants(db):
    db.add_tenant(CONTOSO, "Contoso")
    write_snapshot(db, CONTOSO, DATA[CONTOSO])
    at = app("compare")
    assert "at least two synced tenants" in texts(at)


# --- Changes ------------------------------------------------------------------------------
def test_changes_between_two_latest_runs(filled):
    changed = {**DATA[NORTHWIND]["Windows security"], "fw_inbound": "allow", "fw_log_size": "4096"}
    del changed["bl_startup_pin"]
    write_snapshot(filled, NORTHWIND, {"Renamed policy": changed})
    at = app("changes")
    at.selectbox(key="chg_tenant").set_value(NORTHWIND).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Settings added"] == "1" and metrics["Settings removed"] == "1" and metrics["Settings changed"] == "1"
    events = find_table(at, "event", "policy", "settings")
    assert ("policy renamed", "Windows security → Renamed policy") in set(zip(events["event"], events["policy"]))
    assert set(events["policy_type"]) == {"Settings catalog"}  # the family's label, not its id
    table = find_table(at, "change", "old_value", "new_value").set_index("setting_name")
    assert table.loc["Default inbound action", ["old_value", "new_value"]].tolist() == ["block", "allow"]
    assert table.loc["Startup PIN", "change"] == "removed"


def test_changes_needs_two_snapshots(filled):
    at = app("changes")
    at.selectbox(key="chg_tenant").set_value(CONTOSO).run()
    assert "changes need two" in texts(at)


# --- Sync and Health (no worker running: the banner must say how to start it) ---------------
def test_every_page_without_data_and_without_errors(db):
    for page in ("tenants", "sync", "explore", "compare", "changes", "health"):
        at = app(page if page != "tenants" else None)
        assert not [e.value for e in at.error if "Could not" in e.value], page


def test_store_errors_become_messages_not_tracebacks(db, monkeypatch):
    from tenantpilot.store import StoreBusy

    def busy(self):
        raise StoreBusy("Database x stayed locked by another process for 60s; try again, or check for a stuck process")

    monkeypatch.setattr(Store, "snapshot_token", busy)
    at = app("explore")
    assert not at.exception
    assert any("stayed locked" in e.value for e in at.error)


def test_unexpected_page_error_is_a_message_not_a_traceback(filled, monkeypatch):
    from tenantpilot.analysis import compare

    def broken(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(compare, "comparison", broken)  # the page's one call into compare
    at = app("compare")
    at.multiselect(key="cmp_tenants").set_value([CONTOSO, FABRIKAM]).run()
    assert not at.exception
    assert any("ZeroDivisionError: boom" in e.value for e in at.error), [e.value for e in at.error]
