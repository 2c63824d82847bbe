"""Conditional-access users, groups, roles, apps and named locations by name, through the real consumer
from the simulator over HTTPS: names where the app has the permission, ids where it has not (one
warning naming the missing permission), and the names line up in Compare across two tenants whose ids differ."""

from __future__ import annotations

import json

from realparts import add_and_sync, latest_run, run_cli, store_of

from graphsim.coverage import BREAK_GLASS_USER
from graphsim.tenants import build_tenant


def _tenant(sim, tid: str, name: str):
    if tid not in sim.tenants:
        sim.add_tenant(build_tenant(tid, name, n_policies=4, seed=11, coverage=True))
    return sim.tenant(tid)


def _ca_rows(env, tid: str) -> dict[tuple[str, str], str]:
    settings = store_of(env).current_settings([tid])
    return {(r["policy_name"], r["setting_name"]): r["value"] for r in settings.iter_rows(named=True)
            if r["policy_type"] == "conditionalAccess"}


def test_conditional_access_shows_names_and_compare_lines_them_up(env, consumer, sim):
    a, b = "ca0a0a0a-1111-4222-8333-444444444444", "ca0b0b0b-1111-4222-8333-444444444444"
    _tenant(sim, a, "CA Names A")
    _tenant(sim, b, "CA Names B")
    add_and_sync(env, tenant=a, name="CA Names A")
    run = latest_run(env, a)
    assert run["status"] == "succeeded", run
    rows = _ca_rows(env, a)
    legacy = "Block legacy authentication"
    assert rows[(legacy, "Conditions > Users > Exclude users")] == BREAK_GLASS_USER
    assert rows[(legacy, "Conditions > Users > Exclude groups")] == "SG-Intune-Break-Glass"
    assert rows[(legacy, "Conditions > Users > Exclude roles")] == "Directory Synchronization Accounts"
    assert rows[("Require compliant device", "Conditions > Applications > Include applications")] \
        == "Office 365 Exchange Online; Office 365 SharePoint Online"
    assert rows[(legacy, "Conditions > Locations > Exclude locations")] == "Head office"
    assert rows[(legacy, "Conditions > Users > Include users")] == "All"
    assert not json.loads(run["warnings"] or "[]"), run["warnings"]
    # the raw value and the raw JSON keep Graph's ids
    tenant = sim.tenant(a)
    policy = tenant.policy_by_name(legacy)
    raw = json.loads(store_of(env).policy_raw(run["run_id"], policy.id) or "{}")
    assert raw["conditions"]["users"]["excludeUsers"] == policy.resource["conditions"]["users"]["excludeUsers"]
    settings = store_of(env).current_settings([a])
    row = settings.filter((settings["policy_name"] == legacy)
                          & (settings["setting_name"] == "Conditions > Users > Exclude users")).row(0, named=True)
    assert json.loads(row["raw_value"]) == policy.resource["conditions"]["users"]["excludeUsers"]
    # a second tenant: other ids, the same names, so Compare finds nothing that differs in conditional access
    add_and_sync(env, tenant=b, name="CA Names B")
    assert sim.tenant(b).policy_by_name(legacy).resource["conditions"]["users"]["excludeUsers"] \
        != policy.resource["conditions"]["users"]["excludeUsers"]
    out = run_cli(env, "compare", "CA Names A", "CA Names B", "--only-differences", "--format", "json")
    differing = [r for r in json.loads(out.stdout)["settings"] if r["policy_type"] == "Conditional Access"]
    assert differing == [], differing


def test_without_user_and_role_permissions_the_ids_stay_and_one_warning_names_each(env, consumer, sim):
    tid = "ca0c0c0c-1111-4222-8333-444444444444"
    tenant = _tenant(sim, tid, "CA No Users")
    try:
        sim.apply_knobs({"forbidden_paths": {"/users", "/roleManagement"}})
        add_and_sync(env, tenant=tid, name="CA No Users")
    finally:
        sim.reset_knobs()
    run = latest_run(env, tid)
    assert run["status"] == "succeeded", run  # every policy type was read: names are not a type
    warnings = [str(w) for w in json.loads(run["warnings"] or "[]")]
    assert [w for w in warnings if "User.Read.All" in w] and [w for w in warnings if "RoleManagement.Read.Directory"
                                                              in w], warnings
    assert len(warnings) == 2, warnings
    rows = _ca_rows(env, tid)
    legacy = tenant.policy_by_name("Block legacy authentication").resource["conditions"]["users"]
    assert rows[("Block legacy authentication", "Conditions > Users > Exclude users")] == legacy["excludeUsers"][0]
    assert rows[("Block legacy authentication", "Conditions > Users > Exclude roles")] == legacy["excludeRoles"][0]
    # what the app may read is still named
    assert rows[("Block legacy authentication", "Conditions > Users > Exclude groups")] == "SG-Intune-Break-Glass"
