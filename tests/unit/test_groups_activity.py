"""Tenant groups, who sees which tenants, and who did what: the rule (tenantpilot/access.py), the records
(tenantpilot/store/access.py, a real DuckDB file) and the pages (AppTest through the real router, signed in
with st.user): a viewer limited to a group sees only its tenants on every page and in exports; every action
is recorded with the signed-in user and listed on the Activity page; a deviation shows who accepted it."""

from __future__ import annotations

import pytest
from apptest import APP, BASELINE, CONTOSO, FABRIKAM, NAMES, NORTHWIND, find_table
from streamlit.testing.v1 import AppTest

from tenantpilot import access
from tenantpilot.access import Role

AUTH = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "c00kie-" * 6,
        "client_id": "0f4f6f1e-3c39-4a0b-8e43-3d9ad2b1f001", "client_secret": "TOP~secret.value",
        "server_metadata_url": "https://login.example/t/v2.0/.well-known/openid-configuration"}
MEMBERS = [("Health", CONTOSO), ("Health", BASELINE), ("Retail", FABRIKAM), ("Empty-ish", NORTHWIND)]


@pytest.mark.parametrize(("role", "actor", "claims", "limits", "seen"), [
    (Role.VIEWER, "v@x", (), [], None),  # no limit: every tenant
    (Role.VIEWER, "v@x", (), [("v@x", "Health")], {CONTOSO, BASELINE}),
    (Role.VIEWER, "v@x", (), [("v@x", "Health"), ("v@x", "Retail")], {CONTOSO, BASELINE, FABRIKAM}),
    (Role.ANALYST, "a@x", ("TenantPilot.Analyst",), [("role:TenantPilot.Analyst", "Retail")], {FABRIKAM}),
    (Role.ANALYST, "a@x", ("g-contractors",), [("role:g-contractors", "Retail"), ("a@x", "Health")],
     {FABRIKAM, CONTOSO, BASELINE}),
    (Role.VIEWER, "v@x", (), [("v@x", "Nowhere")], set()),  # limited to a group without tenants: nothing
    (Role.VIEWER, "v@x", (), [("someone@else", "Health")], None),
    (Role.ADMIN, "boss@x", (), [("boss@x", "Health")], None),  # admins are never limited
])
def test_who_sees_which_tenants(role, actor, claims, limits, seen):
    user = access.User(actor=actor, name=actor, role=role, claims=frozenset(claims), signed_in=True)
    got = access.visible_tenants(user, MEMBERS, limits)
    assert (got if got is None else set(got)) == seen


def test_groups_limits_and_activity_in_the_database(filled):
    filled.set_group(" Health  care ", [CONTOSO, BASELINE, CONTOSO])
    filled.set_group("Retail", [FABRIKAM])
    filled.set_limits("v@x", ["Health care"])
    assert sorted(filled.group_members().rows()) == sorted([("Health care", BASELINE), ("Health care", CONTOSO),
                                                           ("Retail", FABRIKAM)])
    filled.set_group("Health care", [])  # an empty group is gone, with the limits to it
    assert filled.access_limits().height == 0 and "Health care" not in filled.group_members()["group_name"]
    filled.remove_tenant(FABRIKAM)  # a removed tenant leaves its groups
    assert filled.group_members().height == 0
    with pytest.raises(ValueError, match="group name"):
        filled.set_group("   ", [CONTOSO])
    filled.record_activity("a@x", "sync", [CONTOSO, NORTHWIND], "run 1")
    filled.record_activity("boss@x", "limit", [None], "v@x limited")
    assert filled.activity()["action"].to_list() == ["limit", "sync", "sync"]
    mine = filled.activity([CONTOSO])
    assert sorted(zip(mine["actor"], mine["tenant"], strict=True), key=str) == [("a@x", NAMES[CONTOSO]),
                                                                                 ("boss@x", None)]


def signed_in(role: str, page: str, actor: str = "", **query: list[str]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": True, "preferred_username": actor or f"{role.lower()}@msp.example",
               "name": f"{role} user", "roles": [f"TenantPilot.{role}"]}
    for key, value in query.items():
        at.query_params[key] = value
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def shown(at: AppTest) -> str:
    parts = [str(d.value) for d in at.dataframe] + [str(s.options) for s in [*at.selectbox, *at.multiselect]]
    parts += [m.value for m in at.markdown] + [c.value for c in at.caption]
    return "\n".join(parts)


@pytest.mark.parametrize("page", ["tenants", "sync", "explore", "compare", "changes", "health", "activity"])
def test_a_viewer_limited_to_a_group_sees_only_its_tenants_everywhere(filled, page):
    filled.set_group("Health", [CONTOSO, BASELINE])
    filled.set_group("Retail", [FABRIKAM])
    filled.set_limits("viewer@msp.example", ["Health"])
    filled.record_activity("admin@msp.example", "schedule", [FABRIKAM], "secret-retail-change")
    filled.record_activity("admin@msp.example", "schedule", [CONTOSO], "health-change")
    at = signed_in("Viewer", page, cmp_tenants=[NAMES[FABRIKAM], NAMES[NORTHWIND], NAMES[CONTOSO]],
                   ex_tenants=[NAMES[FABRIKAM]])
    text = shown(at)
    for hidden in (NAMES[FABRIKAM], NAMES[NORTHWIND], FABRIKAM, NORTHWIND, "secret-retail-change"):
        assert hidden not in text, (page, hidden)
    if page in ("tenants", "explore"):
        assert NAMES[CONTOSO] in text


def test_a_limited_viewers_export_holds_only_their_tenants(filled, downloads):
    filled.set_group("Health", [CONTOSO])
    filled.set_limits("viewer@msp.example", ["Health"])
    at = signed_in("Viewer", "explore")
    assert at.get("download_button")
    data = downloads["tenantpilot-all-tenants.csv"]().decode("utf-8-sig")
    assert NAMES[CONTOSO] in data and NAMES[FABRIKAM] not in data and NAMES[NORTHWIND] not in data
    exported = filled.activity().filter(filled.activity()["action"] == "export")
    assert exported["actor"].to_list() == ["viewer@msp.example"] and exported["tenant_id"].to_list() == [CONTOSO]


def test_actions_are_recorded_with_the_signed_in_user_and_listed_on_activity(filled):
    at = signed_in("Admin", "tenants", actor="boss@msp.example")
    at.text_input(key="new_tenant_id").input("woodgrove.onmicrosoft.com")
    at.text_input(key="new_tenant_name").input("Woodgrove")
    next(b for b in at.button if b.label == "Add tenant").click().run()
    at.text_input(key="group_name").input("Retail")
    at.multiselect(key="group_tenants").set_value([FABRIKAM])
    next(b for b in at.button if b.label == "Save group").click().run()
    at.text_input(key="limit_principal").input("role:TenantPilot.Viewer")
    at.multiselect(key="limit_groups").set_value(["Retail"])
    next(b for b in at.button if b.label == "Save limit").click().run()
    assert not at.exception
    log = filled.activity()
    assert set(log["actor"]) == {"boss@msp.example"}
    assert log["action"].to_list() == ["limit", "group", "tenant added"]
    assert sorted(filled.group_members().rows()) == [("Retail", FABRIKAM)]
    page = signed_in("Admin", "activity", actor="boss@msp.example")
    table = find_table(page, "acted_at", "actor", "action")
    assert table["action"].tolist() == ["limit", "group", "tenant added"]
    # the viewer role is now limited to Retail: a viewer sees Fabrikam only
    viewer = signed_in("Viewer", "tenants")
    assert NAMES[FABRIKAM] in shown(viewer) and NAMES[CONTOSO] not in shown(viewer)


def test_a_deviation_shows_who_accepted_it(filled):
    at = signed_in("Analyst", "compare", actor="ann@msp.example")
    at.multiselect(key="cmp_tenants").set_value([FABRIKAM]).run()
    at.selectbox(key="cmp_baseline").set_value(BASELINE).run()
    shown = list(find_table(at, "setting", "status")["setting"])  # its row selected in the matrix
    at.session_state["cmp_matrix"] = {"selection": {"rows": [shown.index("Default inbound action")], "columns": [],
                                                    "cells": []}}
    at.run()
    next(t for t in at.text_input if t.label == "Reason").input("legacy VPN")
    next(t for t in at.text_input if t.label == "Owner").input("Ops")
    next(b for b in at.button if b.label == "Accept selected").click().run()
    assert not at.exception
    register = find_table(at, "deviation_id", "accepted_by")
    assert register["accepted_by"].tolist() == ["ann@msp.example"] and register["owner"].tolist() == ["Ops"]
    assert filled.activity()["action"].to_list() == ["deviation accepted"]


def test_compare_and_changes_exports_are_recorded(filled, downloads):
    at = signed_in("Viewer", "compare", actor="vic@msp.example")
    at.multiselect(key="cmp_tenants").set_value([CONTOSO, FABRIKAM]).run()
    assert not at.exception
    assert "Contoso" in downloads["tenantpilot-compare.csv"]().decode("utf-8-sig")
    log = filled.activity()
    assert log["action"].to_list() == ["export", "export"]
    assert set(log["tenant_id"]) == {CONTOSO, FABRIKAM} and set(log["actor"]) == {"vic@msp.example"}
    assert all(d.startswith("Compare matrix CSV, ") for d in log["detail"])


def test_a_tenant_follows_its_groups_schedule_unless_it_has_its_own(filled):
    filled.set_group("B-Retail", [FABRIKAM, NORTHWIND])
    filled.set_group("A-Health", [CONTOSO, NORTHWIND])
    filled.set_group_schedule("B-Retail", "0 3 * * *")
    filled.set_group_schedule("A-Health", "15 1 * * 1-5")
    filled.set_tenant_schedule(CONTOSO, "off")
    rows = {r["tenant_id"]: r for r in filled.schedules_with_groups().iter_rows(named=True)}
    assert (rows[CONTOSO]["schedule"], rows[CONTOSO]["schedule_source"]) == ("off", None)  # its own wins
    assert (rows[FABRIKAM]["schedule"], rows[FABRIKAM]["schedule_source"]) == ("0 3 * * *", "group B-Retail")
    assert (rows[NORTHWIND]["schedule"], rows[NORTHWIND]["schedule_source"]) == ("15 1 * * 1-5", "group A-Health")
    assert rows[NORTHWIND]["schedule_set_at"] is not None  # slots before the group schedule was set never fire
    assert rows[BASELINE]["schedule"] is None
    filled.set_group("A-Health", [])  # the group and its schedule are gone
    assert filled.schedules_with_groups().filter(filled.schedules_with_groups()["tenant_id"] == NORTHWIND)[
        "schedule_source"].to_list() == ["group B-Retail"]


def test_alerts_hold_a_tenant_to_its_groups_baseline(filled):
    """alerts.collect on real runs: without a group baseline every imported baseline is checked; with one, only it."""
    from datetime import date

    from apptest import write_snapshot

    from tenantpilot.ops import alerts

    other = "baseline:other"
    filled.add_tenant(other, "Other baseline", "baseline")
    write_snapshot(filled, other, {"Other": {"fw_enable": "false"}})
    run_id = int(filled.runs(FABRIKAM, limit=1)["run_id"][0])
    everyone = alerts.collect(filled, run_id, date.today())
    assert everyone is not None and sorted(b for b, _n, _d in everyone.baselines) == sorted([BASELINE, other])
    filled.set_group("Retail", [FABRIKAM])
    filled.set_group_baseline("Retail", other)
    held = alerts.collect(filled, run_id, date.today())
    assert held is not None and [b for b, _n, _d in held.baselines] == [other]


def test_compare_offers_the_groups_baseline_first(filled):
    """A link naming a tenant of a group with a baseline opens Compare against that baseline (as a link naming
    a baseline among the tenants does: the baseline box's first value)."""
    filled.set_group("Retail", [FABRIKAM])
    filled.set_group_baseline("Retail", BASELINE)
    at = signed_in("Viewer", "compare", cmp_tenants=[NAMES[FABRIKAM]])
    assert at.selectbox(key="cmp_baseline").value == BASELINE
    assert find_table(at, "tenant", "matched", "score")["tenant"].tolist()  # compared against it


def test_the_customer_report_download_is_recorded(filled, downloads):
    at = signed_in("Viewer", "compare", actor="vic@msp.example")
    at.multiselect(key="cmp_tenants").set_value([FABRIKAM]).run()
    at.selectbox(key="cmp_baseline").set_value(BASELINE).run()
    assert not at.exception
    assert downloads["tenantpilot-report.xlsx"]()[:2] == b"PK"  # a real workbook
    log = filled.activity()
    assert set(log["detail"].str.split(",").list.first()) == {"Report (Excel)"}
    assert set(log["tenant_id"]) == {FABRIKAM, BASELINE} and set(log["actor"]) == {"vic@msp.example"}
