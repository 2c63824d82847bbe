"""The Tenants page's schedules: the table (schedule, next run, last scheduled run) and the form that
sets a tenant's own schedule, against a real DuckDB file (AppTest)."""

from __future__ import annotations

from apptest import BASELINE, CONTOSO, FABRIKAM, app, find_table, shown


def _set(at, tenant: str, text: str):
    at.selectbox(key="schedule_tenant").set_value(tenant)
    at.text_input(key="schedule_cron").input(text)
    return next(b for b in at.button if b.label == "Set schedule").click().run()


def test_schedules_table_and_form(filled):
    at = app()
    table = find_table(at, "tenant", "schedule", "next_run")
    by_tenant = dict(zip(table["tenant"], table["schedule"]))
    assert by_tenant["Contoso"] == "0 2 * * * (TENANTPILOT_SYNC_SCHEDULE)"
    assert by_tenant["CIS Level 1"].startswith("off (baselines")
    # a baseline cannot be chosen in the form
    assert BASELINE not in at.selectbox(key="schedule_tenant").options

    at = _set(at, CONTOSO, "0 25 * * *")
    assert not at.exception
    assert any("hour (0-23) field '25'" in shown(e.value) for e in at.error)
    assert filled.tenant_schedules().filter(tenant_id=CONTOSO)["schedule"].to_list() == [None]

    at = _set(at, CONTOSO, "  */30 6-18 * * 1-5 ")
    assert not at.exception
    assert any("Contoso: schedule */30 6-18 * * 1-5" in shown(s.value) for s in at.success)
    assert filled.tenant_schedules().filter(tenant_id=CONTOSO)["schedule"].to_list() == ["*/30 6-18 * * 1-5"]
    table = find_table(at, "tenant", "schedule", "next_run")
    assert dict(zip(table["tenant"], table["schedule"]))["Contoso"] == "*/30 6-18 * * 1-5 (own schedule)"

    at = _set(at, FABRIKAM, "off")
    assert filled.tenant_schedules().filter(tenant_id=FABRIKAM)["schedule"].to_list() == ["off"]
    row = find_table(at, "tenant", "schedule", "next_run").set_index("tenant").loc["Fabrikam"]
    assert row["schedule"] == "off (own schedule)" and row.isna()["next_run"]

    at = _set(at, CONTOSO, "default")
    assert filled.tenant_schedules().filter(tenant_id=CONTOSO)["schedule"].to_list() == [None]
