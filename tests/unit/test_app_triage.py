"""Streamlit AppTest of triage where you look (issue 20, item 4): rows selected in Compare's matrix are accepted
from the baseline several at once (reason, owner, expiry) and un-accepted again; a policy a tenant has and the
baseline lacks shows as one line whose settings open below it and are accepted together; each action checks
the role on the server. A real DuckDB file filled through the Store; the selection is what the browser sends.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
from apptest import BASELINE, DATA, FABRIKAM, app, find_table, texts, write_snapshot
from streamlit.testing.v1 import AppTest

from tenantpilot.analysis import compare
from tenantpilot.store import Store

UNTIL = (date.today() + timedelta(days=90)).isoformat()


def matrix(at: AppTest) -> pd.DataFrame:
    return find_table(at, "setting", "status", "setting_name")


def scores(at: AppTest) -> pd.DataFrame:
    return find_table(at, "tenant", "matched", "score").set_index("tenant")


def fabrikam_against_the_baseline(at: AppTest) -> AppTest:
    at.multiselect(key="cmp_tenants").set_value([FABRIKAM]).run()
    at.selectbox(key="cmp_baseline").set_value(BASELINE).run()
    assert not at.exception
    return at


def select(at: AppTest, *settings: str) -> AppTest:
    """Tick the rows of these settings (their `setting` column) as the browser's selection event does."""
    shown = list(matrix(at)["setting"])
    at.session_state["cmp_matrix"] = {"selection": {"rows": [shown.index(s) for s in settings], "columns": [],
                                                    "cells": []}}
    return at.run()


def accept(at: AppTest, reason: str = "legacy VPN", owner: str = "Ops") -> AppTest:
    next(t for t in at.text_input if t.key == "cmp_triage_reason").input(reason)
    next(t for t in at.text_input if t.key == "cmp_triage_owner").input(owner)
    return next(b for b in at.button if b.label == "Accept selected").click().run()


def test_accept_two_selected_rows_at_once_then_unaccept_them(filled: Store) -> None:
    at = fabrikam_against_the_baseline(app("compare"))
    m = matrix(at).set_index("setting")
    assert m.loc["Default inbound action", "status"] == m.loc["Encryption method", "status"] == compare.DIFFERENT
    assert scores(at).loc["Fabrikam", "accepted"] == 0

    select(at, "Default inbound action", "Encryption method")
    assert "2 selected lines" in texts(at) and "Accept **2** differences" in texts(at)
    accept(at)
    assert not at.exception
    m = matrix(at).set_index("setting")
    for name in ("Default inbound action", "Encryption method"):  # readable: the date in the status, the reason apart
        assert m.loc[name, "status"] == f"accepted until {UNTIL}"
        assert m.loc[name, "accepted_because"] == "legacy VPN"
    assert scores(at).loc["Fabrikam", "accepted"] == 2 and scores(at).loc["Fabrikam", "score"] == 1.0
    register = filled.deviations()
    assert sorted(register["setting_key"]) == ["bl_method", "fw_inbound"] and set(register["tenant_id"]) == {FABRIKAM}

    select(at, "Default inbound action", "Encryption method")
    assert "**2** accepted deviations in the selection" in texts(at)
    next(b for b in at.button if b.label == "Un-accept selected").click().run()
    assert not at.exception
    m = matrix(at).set_index("setting")
    assert m.loc["Default inbound action", "status"] == compare.DIFFERENT
    assert scores(at).loc["Fabrikam", "accepted"] == 0
    assert filled.deviations(include_removed=True)["removed_at"].is_not_null().all()


def test_a_tenants_extra_policy_is_one_line_and_accepted_whole(filled: Store) -> None:
    write_snapshot(filled, FABRIKAM, {**DATA[FABRIKAM], "Kiosk": {"browser_homepage": "https://intranet",
                                                                  "bl_startup_pin": "required"}})
    at = fabrikam_against_the_baseline(app("compare"))
    m = matrix(at).set_index("setting")
    line = m.loc["Kiosk (2 settings)"]
    assert line["status"] == compare.NOT_IN_BASELINE and line["Fabrikam"] == "2 settings"
    assert "Browser home page" not in m.index  # behind the line

    select(at, "Kiosk (2 settings)")
    (members,) = [d.value for d in at.dataframe if {"setting_name", "Fabrikam"} <= set(d.value.columns)
                  and "setting" not in d.value.columns]  # the settings behind the line, below the matrix
    assert sorted(members["setting_name"]) == ["Browser home page", "Startup PIN"]
    accept(at, reason="kiosk devices")
    assert sorted(filled.deviations()["setting_key"]) == ["bl_startup_pin", "browser_homepage"]

    at.toggle(key="cmp_folded").set_value(False).run()  # one row per setting again, each accepted
    m = matrix(at).set_index("setting")
    assert m.loc["Browser home page", "status"] == m.loc["Startup PIN", "status"] == f"accepted until {UNTIL}"


def claims(role: str) -> dict:
    return {"is_logged_in": True, "preferred_username": f"{role}@contoso.example", "name": f"{role} user",
            "roles": [f"TenantPilot.{role}"]}


@pytest.mark.parametrize(("role", "allowed"), [("Viewer", False), ("Analyst", True), ("Admin", True)])
def test_accepting_and_unaccepting_are_checked_on_the_server(filled: Store, role: str, allowed: bool) -> None:
    from test_roles import AUTH

    at = AppTest.from_file(str(__import__("apptest").APP), default_timeout=60)
    at.secrets["auth"] = AUTH
    at.user = claims("Admin")  # the page as an admin sees it (buttons enabled); the click comes from `role`
    at.switch_page("app_pages/compare.py").run()
    fabrikam_against_the_baseline(at)
    select(at, "Default inbound action")
    at.user = claims(role)
    accept(at)
    assert not at.exception
    assert (filled.deviations().height == 1) == allowed
    if not allowed:  # refused: the server said why, or Streamlit dropped the click of the disabled button
        refused = any("may not accept deviation" in e.value for e in at.error)
        assert refused or next(b for b in at.button if b.label == "Accept selected").disabled
        return
    at.user = claims("Viewer")  # and a viewer may not take it back
    select(at, "Default inbound action")
    at.user = claims("Admin")
    at.run()
    at.user = claims("Viewer")
    next(b for b in at.button if b.label == "Un-accept selected").click().run()
    assert filled.deviations().height == 1
    assert any("may not remove deviation" in e.value for e in at.error) or next(
        b for b in at.button if b.label == "Un-accept selected").disabled


NAME_CASES = [
    # (id, rows as (policy_type, setting_name, category, scope, policy, key), expected labels)
    ("unique names stay as they are", [("sc", "PIN", "Lock", "windows", "P", "k1"), ("sc", "Firewall", "Net", "windows",
                                                                                     "P", "k2")], ["PIN", "Firewall"]),
    ("the same name in two categories: the category", [("sc", "Allow", "Camera", "windows", "P", "k1"),
                                                       ("sc", "Allow", "Bluetooth", "windows", "P", "k2")],
     ["Allow · Camera", "Allow · Bluetooth"]),
    ("same name and category, two platforms: then the platform", [("sc", "PIN", "Lock", "iOS", "P", "k1"),
                                                                  ("sc", "PIN", "Lock", "macOS", "P", "k2")],
     ["PIN · Lock · iOS", "PIN · Lock · macOS"]),
    ("the same name in two policy types is no clash", [("sc", "PIN", "Lock", "", "P", "k1"),
                                                       ("compliance", "PIN", "Lock", "", "P", "k2")], ["PIN", "PIN"]),
    ("no name: the key", [("sc", None, "Lock", "", "P", "k1")], ["k1"]),
]


@pytest.mark.parametrize("name, rows, expected", NAME_CASES, ids=[c[0] for c in NAME_CASES])
def test_settings_with_one_name_say_what_tells_them_apart(name: str, rows: list[tuple], expected: list[str]) -> None:
    import polars as pl

    from tenantpilot.app.compare_view import distinct_names

    frame = pl.DataFrame(rows, schema=["policy_type", "setting_name", "category", "scope", "policy", "setting_key"],
                         orient="row")
    assert distinct_names(frame).to_list() == expected
