"""Device categories (Graph deviceCategory: displayName, description, roleScopeTagIds) hold nothing but a name
and a description, so the description is their setting row, configured even when empty: otherwise a category
flattens to "(No settings configured)", which Compare ignores, and a tenant without it would not differ."""

from __future__ import annotations

import pytest

from tenantpilot.families import DEVICE_CATEGORY
from tenantpilot.flatten import flatten_policy


@pytest.mark.parametrize(("description", "shown"), [
    ("Company-owned laptops", "Company-owned laptops"),
    ("", ""),
    (None, ""),
])
def test_a_category_is_one_configured_row_keyed_by_its_name(description, shown):
    policy = {"@odata.type": "#microsoft.graph.deviceCategory", "id": "c1", "displayName": "Kiosks",
              "description": description, "roleScopeTagIds": ["0"]}
    rows = flatten_policy(policy)
    assert [(r["policy_type"], r["setting_key"], r["value"], r["configured"]) for r in rows] == [
        (DEVICE_CATEGORY, "[Kiosks]/description", shown, True)]
    assert rows[0]["setting_name"] == "Description"
