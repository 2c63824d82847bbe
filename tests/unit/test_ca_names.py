"""Conditional-access ids shown as names (flatten/conditional.py, sync/run.py's plan): which ids a policy
points to, which the sync asks Graph for, and the rows a policy gives with names known, partly known or not."""

from __future__ import annotations

import json

import pytest

from graphsim.coverage import BREAK_GLASS_USER, FIRST_PARTY_APPS, ROLES
from graphsim.tenants import build_tenant
from tenantpilot.families import CONDITIONAL_ACCESS
from tenantpilot.flatten import flatten_policy
from tenantpilot.flatten.conditional import named_rows, referenced_ids, with_names
from tenantpilot.sync.run import ca_ids_to_read, synced_location_names

USER, GROUP, ROLE, APP, LOC = "u-1", "g-1", "62e90394-69f5-4237-9190-012177145e10", "app-1", "loc-1"
POLICY = {
    "id": "ca-1", "displayName": "Admins need MFA", "state": "enabled",
    "conditions": {
        "users": {"includeUsers": ["All"], "excludeUsers": [USER, "GuestsOrExternalUsers"],
                  "includeGroups": [], "excludeGroups": [GROUP], "includeRoles": [ROLE], "excludeRoles": []},
        "applications": {"includeApplications": [APP, "Office365"], "excludeApplications": []},
        "locations": {"includeLocations": ["All"], "excludeLocations": [LOC, "AllTrusted"]},
    },
}
NAMES = {"user": {USER: "Break glass"}, "group": {GROUP: "SG-Admins"}, "directoryRole": {ROLE: "Global Administrator"},
         "app": {APP: "Office 365 Exchange Online"}, "location": {LOC: "Head office"}}


def _values(policy: dict) -> dict[str, str]:
    return {r["setting_key"].split("/", 1)[1]: r["value"] for r in flatten_policy(policy, CONDITIONAL_ACCESS)}


def test_referenced_ids_leave_graphs_keywords_out():
    assert referenced_ids(POLICY) == {"user": {USER}, "group": {GROUP}, "directoryRole": {ROLE}, "app": {APP},
                                      "location": {LOC}}
    assert referenced_ids({"displayName": "a named location", "ipRanges": []}) == {}


@pytest.mark.parametrize(("names", "key", "shown"), [
    (NAMES, "conditions/users/excludeUsers", "Break glass; GuestsOrExternalUsers"),
    (NAMES, "conditions/users/excludeGroups", "SG-Admins"),
    (NAMES, "conditions/users/includeRoles", "Global Administrator"),
    (NAMES, "conditions/applications/includeApplications", "Office 365 Exchange Online; Office365"),
    (NAMES, "conditions/locations/excludeLocations", "AllTrusted; Head office"),
    (NAMES, "conditions/users/includeUsers", "All"),
    ({}, "conditions/users/excludeUsers", f"GuestsOrExternalUsers; {USER}"),  # no permission: the id stays
    ({"user": {}, "directoryRole": {ROLE: "Global Administrator"}}, "conditions/users/includeRoles", "Global Administrator"),
    ({"user": {}, "directoryRole": {ROLE: "Global Administrator"}}, "conditions/users/excludeGroups", GROUP),
])
def test_rows_show_names_where_known_and_ids_where_not(names, key, shown):
    assert _values(dict(with_names(POLICY, names)))[key] == shown


def test_raw_values_keep_graphs_ids_while_values_and_compare_values_show_names():
    rows = {r["setting_key"].split("/", 1)[1]: r for r in named_rows(POLICY, NAMES, CONDITIONAL_ACCESS)}
    row = rows["conditions/users/excludeGroups"]
    assert (row["value"], row["compare_value"], json.loads(row["raw_value"])) == ("SG-Admins", "SG-Admins", [GROUP])
    unnamed = rows["conditions/users/includeUsers"]  # a keyword: the same in all three
    assert (unnamed["value"], json.loads(unnamed["raw_value"])) == ("All", ["All"])


def test_names_never_change_the_policy_they_were_given():
    before = repr(POLICY)
    with_names(POLICY, NAMES)
    assert repr(POLICY) == before
    assert with_names(POLICY, {}) is POLICY


def test_the_sync_asks_only_for_directory_ids_without_a_cached_name():
    policies = [(CONDITIONAL_ACCESS, POLICY), ("settingsCatalog", {"id": "x", "conditions": POLICY["conditions"]})]
    assert ca_ids_to_read(policies, {}) == {"user": {USER}, "group": {GROUP}, "directoryRole": {ROLE}, "app": {APP}}
    assert ca_ids_to_read(policies, {"user": {USER: "x"}, "group": {GROUP: "y"}}) == {"directoryRole": {ROLE}, "app": {APP}}


def test_the_simulators_tenant_names_every_id_its_conditional_access_uses():
    tenant = build_tenant("ca000000-1111-4222-8333-444444444444", "CA", n_policies=2, coverage=True)
    policies = [(CONDITIONAL_ACCESS, p.resource) for c in ("conditionalAccessPolicies", "namedLocations")
                for p in tenant.list_policies(c)]
    wanted = ca_ids_to_read(policies, {})
    assert wanted["user"] <= tenant.users.keys() and wanted["group"] <= tenant.groups.keys()
    assert wanted["directoryRole"] <= tenant.role_definitions.keys() <= ROLES.keys()
    assert wanted["app"] <= tenant.service_principals.keys() <= FIRST_PARTY_APPS.keys()
    assert {tenant.users[u]["displayName"] for u in wanted["user"]} == {BREAK_GLASS_USER}
    assert set(synced_location_names(policies).values()) == {"Head office", "Allowed countries"}
