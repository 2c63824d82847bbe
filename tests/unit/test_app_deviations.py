"""Streamlit AppTest of the deviation register on the pages: Compare accepts a difference (its row turns
"accepted (…)", the score leaves it out, the register exports as formula-safe CSV), and Changes lists
accepted deviations that expired. A real DuckDB file filled through the Store."""

from __future__ import annotations

from datetime import date, timedelta

from apptest import BASELINE, DATA, FABRIKAM, NORTHWIND, app, find_table, texts, write_snapshot

from tenantpilot.analysis.deviations import NewDeviation


def test_compare_accepts_a_difference_and_exports_the_register(filled, downloads):
    at = app("compare")
    at.multiselect(key="cmp_tenants").set_value([FABRIKAM]).run()
    at.selectbox(key="cmp_baseline").set_value(BASELINE).run()
    at.toggle(key="cmp_only_diff").set_value(False).run()
    before = find_table(at, "tenant", "matched", "score").set_index("tenant")
    assert before.loc["Fabrikam", "accepted"] == 0
    m = find_table(at, "status", "setting_name", "policy_type").set_index("setting_name")
    assert m.loc["Default inbound action", "status"] == "differs"

    at.session_state["cmp_accept_open"] = True  # open the "Accept a difference" expander
    at.run()
    form_tenant = next(s for s in at.selectbox if s.label == "Tenant")
    form_tenant.set_value(FABRIKAM)
    setting = next(s for s in at.selectbox if s.label == "Setting")
    assert any("Default inbound action" in o for o in setting.options)
    setting.set_value(("settingsCatalog", "windows", "fw_inbound"))
    next(t for t in at.text_input if t.label == "Reason").input("=HYPERLINK(\"x\") legacy VPN")
    next(t for t in at.text_input if t.label == "Owner").input("Ops")
    next(b for b in at.button if b.label == "Accept").click().run()
    assert not at.exception
    m = find_table(at, "status", "setting_name", "policy_type").set_index("setting_name")
    until = (date.today() + timedelta(days=90)).isoformat()
    assert m.loc["Default inbound action", "status"] == f'accepted (=HYPERLINK("x") legacy VPN, until {until})'
    after = find_table(at, "tenant", "matched", "score").set_index("tenant")
    assert after.loc["Fabrikam", "accepted"] == 1
    assert after.loc["Fabrikam", "baseline_settings"] == before.loc["Fabrikam", "baseline_settings"] - 1

    text = downloads["tenantpilot-deviations.csv"]()[3:].decode()
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text and "valid" in text


def test_changes_lists_expired_deviations(filled):
    filled.add_deviation(NewDeviation(NORTHWIND, BASELINE, "settingsCatalog", "windows", "fw_inbound",
                                      "Default inbound action", "pilot ended", "Ops",
                                      date.today() - timedelta(days=2)), accepted_by="ann@msp.example")
    changed = {**DATA[NORTHWIND]["Windows security"], "fw_inbound": "allow"}
    write_snapshot(filled, NORTHWIND, {"Windows security": changed})
    at = app("changes")
    at.selectbox(key="chg_tenant").set_value(NORTHWIND).run()
    assert not at.exception
    assert "Accepted deviations that expired" in texts(at)
    table = find_table(at, "reason", "owner", "expires_on")
    assert list(table["reason"]) == ["pilot ended"] and list(table["accepted_by"]) == ["ann@msp.example"]
