"""Table layout: the deciding columns first, technical ones only when asked, and a run's error as a cause."""

from __future__ import annotations

import polars as pl
import pytest

from tenantpilot.app import changes_view, explore_view, tables, tenants_view
from tenantpilot.app.labels import cause, cause_expr

GUID = "6b1f5d7e-2c4a-4e8f-9a3b-1d2c3e4f5a60"


@pytest.mark.parametrize("columns, first, more, technical, show, expected", [
    (["b", "a", "key"], ["a", "b"], [], ["key"], False, ("a", "b")),
    (["b", "a", "key"], ["a", "b"], [], ["key"], True, ("a", "b", "key")),
    (["a", "c"], ["a", "b"], ["c"], [], False, ("a", "c")),  # a column the frame lacks is left out
    (["a", "x"], ["a"], [], [], True, ("a",)),  # a column no group names stays hidden
    (["a"], ["a"], ["a"], ["a"], True, ("a",)),  # named twice, shown once
])
def test_column_order(columns, first, more, technical, show, expected) -> None:
    assert tables.column_order(columns, first, more, technical, show_technical=show) == expected


@pytest.mark.parametrize("first, technical", [
    (changes_view.SETTING_FIRST, changes_view.SETTING_TECHNICAL),
    (explore_view.TABLE_FIRST, explore_view.TABLE_TECHNICAL),
    (tenants_view.TENANT_FIRST, tenants_view.TENANT_TECHNICAL),
])
def test_no_technical_column_decides(first, technical) -> None:
    assert not set(first) & set(technical)
    assert not {"setting_key", "policy_id", "tenant_id", "raw_value", "scope", "odata_type"} & set(first)


@pytest.mark.parametrize("error, tenant_id, expected", [
    (f"Tenant {GUID}: sign-in failed (AADSTS7000215)", GUID, "sign-in failed (AADSTS7000215)"),
    (f"tenant {GUID.upper()}: no answer", GUID, "no answer"),  # the id in another case is still the id
    ("Graph answered 403 for /deviceManagement", GUID, "Graph answered 403 for /deviceManagement"),
    (f"Tenant {GUID}: x", "another-tenant", f"Tenant {GUID}: x"),  # another tenant's id is information
    (None, GUID, None),
    ("", GUID, ""),
])
def test_cause_drops_the_tenant_prefix(error, tenant_id, expected) -> None:
    assert cause(error, tenant_id) == expected
    frame = pl.DataFrame({"error": [error], "tenant_id": [tenant_id]}, schema={"error": pl.String, "tenant_id": pl.String})
    assert frame.select(cause_expr())["error"].to_list() == [expected]


def _carried_page() -> None:
    from datetime import datetime

    import polars as pl

    from tenantpilot.app.messages import show_carried

    show_carried(pl.DataFrame({
        "tenant": ["Contoso", "Contoso", "Fabrikam"], "label": ["Settings catalog", "Compliance", "Scripts"],
        "status": ["carried", "carried", "missing"], "reason": ["forbidden", "failed", None],
        "carried_from_run": [3, 3, None], "carried_from_at": [datetime(2026, 12, 1, 8), datetime(2026, 12, 1, 8), None]}))


def _one_carried_page() -> None:
    import polars as pl

    from tenantpilot.app.messages import show_carried

    show_carried(pl.DataFrame({"tenant": ["Contoso"], "label": ["Scripts"], "status": ["missing"], "reason": [None],
                               "carried_from_run": [None], "carried_from_at": [None]}))


def test_a_partial_runs_notice_is_one_line_that_opens() -> None:
    from streamlit.testing.v1 import AppTest

    one = AppTest.from_function(_one_carried_page).run()  # one type: the one line itself
    assert not one.exception and not one.expander
    assert [w.value for w in one.warning] == ["Not all of this data is current: Contoso · Scripts: not synced "
                                              "(it was not read); nothing earlier to show."]
    at = AppTest.from_function(_carried_page).run()
    assert not at.exception and not at.warning  # no banner of one line per type above the table
    assert [e.label for e in at.expander] == [
        "Not all of this data is current: 3 type(s) of 2 tenant(s) carried forward or not synced"]
    lines = at.expander[0].markdown[0].value
    assert "carried forward from run 3" in lines and "Scripts: not synced" in lines
