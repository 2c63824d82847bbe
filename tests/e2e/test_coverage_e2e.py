"""Coverage types end to end: a tenant holding remediations, custom compliance scripts, assignment
filters, scope tags, apps and conditional access syncs through the real consumer from the simulator over
HTTPS; each type's rows land in the DuckDB file with portal-style names, and a change to a remediation's
body, an app's assignment intent, a filter's rule and a CA policy's state each reads in `changes --since`
as exactly that change."""

from __future__ import annotations

import base64
import json

from realparts import add_and_sync, latest_run, run_cli, store_of

from graphsim import coverage
from graphsim.tenants import build_tenant, is_builtin_app
from tenantpilot.graph.policy_types import POLICY_TYPES

TID = "c0c0c0c0-1111-4222-8333-444444444444"


def _tenant(sim, tid: str, name: str, variant: int = 0):
    if tid not in sim.tenants:
        sim.add_tenant(build_tenant(tid, name, n_policies=20, seed=7, variant=variant, coverage=True))
    return sim.tenant(tid)


def test_every_coverage_type_lands_with_portal_names(env, consumer, sim):
    tenant = _tenant(sim, TID, "Coverage")
    add_and_sync(env, tenant=TID, name="Coverage")
    run = latest_run(env, TID)
    assert run["status"] == "succeeded", run
    store = store_of(env)
    settings = store.current_settings([TID])
    by_type = {t: settings.filter(settings["policy_type"] == t) for t in
               ("healthScript", "mobileApp", "assignmentFilter", "scopeTag", "conditionalAccess")}
    names = set(settings["policy_name"])
    singles = {t.key: t.label for t in POLICY_TYPES if t.single}  # named as fetch.list_pages names them
    for collection in coverage_collections():
        for policy in tenant.list_policies(collection):
            if is_builtin_app(policy):  # the mobileApps $filter leaves built-in store apps out, as IntuneCD's
                assert policy.name not in names
                continue
            assert singles.get(collection, policy.name) in names, (collection, policy.name)
    for f in tenant.assignment_filters.values():
        assert f["displayName"] in names
    rows = {(r["policy_name"], r["setting_name"]): r["value"] for r in settings.iter_rows(named=True)}
    # remediation: both bodies by hash, the run schedule by group name
    spooler = base64.b64decode(tenant.policy_by_name("Restart Print Spooler").resource["detectionScriptContent"])
    import hashlib

    assert rows[("Restart Print Spooler", "Detection script content")] == \
        "sha256:" + hashlib.sha256(spooler).hexdigest()
    assert rows[("Restart Print Spooler", "Assignment > SG-Intune-Windows-Pilot > Run schedule > Kind")] == "Daily"
    # apps: the intent per group, by the group's name; never the icon
    assert rows[("7-Zip", "Assignment > SG-Intune-All-Users > Intent")] == "available"
    assert rows[("7-Zip", "Display version")] == "24.08"
    assert not by_type["mobileApp"]["setting_key"].str.contains("largeIcon").any()
    assert rows[("FLT-Windows-Corporate", "Rule")] == '(device.deviceOwnership -eq "Corporate")'
    assert rows[("Require compliant device", "State")]
    assert rows[("Head office", "Is trusted")]
    assert by_type["scopeTag"].height >= 2
    # the second slice: role assignments by name, messages per language, a macOS custom attribute
    assert rows[("Tier 1 support", "Role assignments [EU service desk] > Scope type")] == "resourceScope"
    assert rows[("Noncompliance: first notice", "Localized notification messages [de-de] > Subject")] \
        == "Ihr Gerät ist nicht konform"
    assert rows[("Battery cycle count", "Custom attribute name")] == "BatteryCycleCount"
    # connectors: a VPP token's state and expiry, never its text (rows, stored raw JSON)
    assert rows[("Apps and Books", "State")] == "valid" and rows[("Apps and Books", "Token")] == "********"
    assert rows[("ADE iOS", "Enrollment profiles [iOS corporate (supervised)] > Supervised mode enabled")] == "true"
    raws = store.current_policies([TID], with_raw=True)
    assert not raws["raw_json"].str.contains(coverage.VPP_TOKEN_TEXT, literal=True).any()
    assert not settings["raw_value"].str.contains(coverage.VPP_TOKEN_TEXT, literal=True).any()
    # single objects: APNs (its certificate never kept), managed Google Play, the tenant-wide settings
    assert rows[("Apple push certificate (APNs)", "Expiration date time")] == "2027-03-01T12:00:00Z"
    assert rows[("Tenant settings", "Secure by default")] == "true"
    assert not raws["raw_json"].str.contains("MIIFsimulatedAPNs", literal=True).any()
    assert not raws["raw_json"].str.contains("SIMULATED-ENROLLMENT-TOKEN", literal=True).any()
    # the raw JSON keeps the script as text and no icon
    pid = tenant.policy_by_name("Restart Print Spooler").id
    raw = json.loads(store.policy_raw(run["run_id"], pid) or "{}")
    assert raw["detectionScriptContent"] == coverage.SPOOLER_DETECT
    app_raw = store.policy_raw(run["run_id"], tenant.policy_by_name("7-Zip").id) or ""
    assert "largeIcon" not in app_raw and "7-Zip" in app_raw


def coverage_collections() -> tuple[str, ...]:
    from graphsim.tenants import COVERAGE_COLLECTIONS

    return tuple(sorted(COVERAGE_COLLECTIONS))


def test_four_changes_read_as_exactly_those_changes(env, consumer, sim):
    tid = "c1c1c1c1-1111-4222-8333-444444444444"
    tenant = _tenant(sim, tid, "Coverage Two")
    add_and_sync(env, tenant=tid, name="Coverage Two")
    first = latest_run(env, tid)
    assert first["status"] == "succeeded", first
    script = tenant.policy_by_name("Clean up low disk space")
    app = tenant.policy_by_name("Company Portal")
    ca = tenant.policy_by_name("Block legacy authentication")
    fid, flt = next((i, f) for i, f in tenant.assignment_filters.items() if f["displayName"] == "FLT-Windows-Virtual")
    with tenant.lock:  # copy on write, as every simulator mutation
        script.resource = dict(script.resource, remediationScriptContent=base64.b64encode(
            b"Remove-Item -Path $env:TEMP\\* -Recurse\n").decode())
        app.assignments = [dict(a, intent="uninstall") for a in app.assignments]
        ca.resource = dict(ca.resource, state="disabled")
        tenant.assignment_filters = {**tenant.assignment_filters, fid: dict(flt, rule='(device.model -contains "VM")')}
    # the audit events Intune writes for these edits (graphsim/README.md: in-process changes record none by
    # themselves); the sync reads in full only the policies an event names (tenantpilot/sync/reuse.py)
    tenant.record_audit(script, "Patch")
    tenant.record_audit(app, "Post", activity="Assign")
    add_and_sync(env, tenant=tid, name="Coverage Two")
    second = latest_run(env, tid)
    assert second["status"] == "succeeded" and second["run_id"] != first["run_id"]
    out = run_cli(env, "changes", "--since", "1d", "--tenant", tid, "--format", "json")
    changes = json.loads(out.stdout)["changes"]
    mine = sorted((c["kind"], c["policy"], c["setting"]) for c in changes if c.get("cur_run") == second["run_id"])
    assert mine == sorted([
        ("setting", "Block legacy authentication", "State"),
        ("setting", "Clean up low disk space", "Remediation script content"),
        ("setting", "Company Portal", "Assignment > SG-Intune-Windows-Devices > Intent"),
        ("setting", "FLT-Windows-Virtual", "Rule"),
    ]), changes
    values = {c["setting"]: (c["old_value"], c["new_value"]) for c in changes if c.get("cur_run") == second["run_id"]}
    assert values["Assignment > SG-Intune-Windows-Devices > Intent"] == ("required", "uninstall")
    assert values["Rule"] == ('(device.model -contains "Virtual")', '(device.model -contains "VM")')
    assert values["State"][1] in ("disabled", "Off")


def test_conditional_access_without_its_permission_is_a_warning_naming_it(env, consumer, sim):
    tid = "c2c2c2c2-1111-4222-8333-444444444444"
    _tenant(sim, tid, "Coverage Three")
    try:
        sim.apply_knobs({"forbidden_paths": {"/identity"}})
        add_and_sync(env, tenant=tid, name="Coverage Three")
    finally:
        sim.reset_knobs()
    run = latest_run(env, tid)
    assert run["status"] == "partial", run
    warnings = json.loads(run["warnings"] or "[]")
    assert any("Policy.Read.All" in w for w in map(str, warnings)), warnings
    settings = store_of(env).current_settings([tid])
    assert "Restart Print Spooler" in set(settings["policy_name"])  # the Intune types were read
    assert not (settings["policy_type"] == "conditionalAccess").any()


def test_compare_and_csv_show_what_differs_between_two_customers(env, consumer, sim, tmp_path):
    """Two tenants of the same seed, the second a variant: Compare shows the CA policy in report-only and
    the app assigned available instead of required, each on its own row; the CSV holds them."""
    a, b = "c3c3c3c3-1111-4222-8333-444444444444", "c4c4c4c4-1111-4222-8333-444444444444"
    _tenant(sim, a, "Customer A")
    _tenant(sim, b, "Customer B", variant=2)
    add_and_sync(env, tenant=a, name="Customer A")
    add_and_sync(env, tenant=b, name="Customer B")
    out = run_cli(env, "compare", "Customer A", "Customer B", "--only-differences", "--format", "json")
    report = json.loads(out.stdout)
    rows = {(r["policy_type"], r["setting_key"]): r for r in report["settings"]}
    state = rows[("Conditional Access", "[Require compliant device]/state")]
    assert state["status"] == "differs"
    assert (state["Customer A"], state["Customer B"]) == ("enabled", "enabledForReportingButNotEnforced")
    intent = rows[("Apps", "[Company Portal]/assignments[SG-Intune-Windows-Devices]/intent")]
    assert (intent["Customer A"], intent["Customer B"]) == ("required", "available")
    # two apps' versions or two CA policies' states are separate settings: never a conflict
    assert not [r for r in report["settings"] if r["status"] == "conflict" and r["policy_type"] in
                ("Apps", "Conditional Access", "Remediations and compliance scripts")]
    csv_path = tmp_path / "b.csv"
    run_cli(env, "export", "--tenant", "Customer B", "--format", "csv", "--output", str(csv_path))
    text = csv_path.read_text(encoding="utf-8-sig")
    assert "enabledForReportingButNotEnforced" in text and "Restart Print Spooler" in text
