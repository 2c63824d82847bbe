"""Issue 19's done-when, the parts test_coverage_e2e.py leaves open: every coverage family of a synced tenant
reaches the CSV export and Compare (CLI, real consumer, simulator over HTTPS) under its portal label, and a
changed PowerShell script body reads in `changes --since` as exactly that change, named by its script (scripts
are matched by name since schema version 10)."""

from __future__ import annotations

import base64
import csv
import io
import json

from realparts import add_and_sync, latest_run, run_cli

from graphsim.tenants import COVERAGE_COLLECTIONS, build_tenant
from tenantpilot import families
from tenantpilot.graph.policy_types import POLICY_TYPES


def _coverage_labels() -> set[str]:
    return {families.label(t.family) for t in POLICY_TYPES if t.key in COVERAGE_COLLECTIONS}


def test_every_coverage_family_reaches_the_csv_and_compare(env, consumer, sim, tmp_path):
    a, b = "cf0a0a0a-1111-4222-8333-444444444444", "cf0b0b0b-1111-4222-8333-444444444444"
    sim.add_tenant(build_tenant(a, "Views A", n_policies=6, seed=5, coverage=True))
    sim.add_tenant(build_tenant(b, "Views B", n_policies=6, seed=5, variant=2, coverage=True))
    add_and_sync(env, tenant=a, name="Views A")
    add_and_sync(env, tenant=b, name="Views B")
    assert latest_run(env, a)["status"] == latest_run(env, b)["status"] == "succeeded"
    wanted = _coverage_labels()
    assert len(wanted) >= 10, wanted
    out = tmp_path / "a.csv"
    run_cli(env, "export", "--tenant", "Views A", "--format", "csv", "--output", str(out))
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert wanted <= {r["policy_type"] for r in rows}, wanted - {r["policy_type"] for r in rows}
    report = json.loads(run_cli(env, "compare", "Views A", "Views B", "--format", "json").stdout)
    compared = {r["policy_type"] for r in report["settings"]}
    assert wanted <= compared, wanted - compared
    # conditional access by names, equal in both tenants; the report-only state is the difference
    ca = {r["setting_key"]: r for r in report["settings"] if r["policy_type"] == "Conditional Access"}
    assert ca["[Block legacy authentication]/conditions/users/excludeGroups"]["status"] == "same"
    assert ca["[Require compliant device]/state"]["status"] == "differs"


def test_a_changed_powershell_script_reads_as_that_scripts_change(env, consumer, sim):
    tid = "cf0c0c0c-1111-4222-8333-444444444444"
    tenant = build_tenant(tid, "Views C", n_policies=60, seed=5, coverage=True)
    [existing] = tenant.list_policies("deviceManagementScripts")
    # a second PowerShell script (beta deviceManagementScript): the change must name the script it is in
    second = {k: v for k, v in existing.resource.items() if k not in ("id", "createdDateTime", "lastModifiedDateTime")}
    tenant.add_policy("deviceManagementScripts", {
        **second, "displayName": "Set time zone", "fileName": "Set-TimeZone.ps1",
        "scriptContent": base64.b64encode(b"Set-TimeZone -Id 'W. Europe Standard Time'\n").decode()})
    sim.add_tenant(tenant)
    scripts = tenant.list_policies("deviceManagementScripts")
    add_and_sync(env, tenant=tid, name="Views C")
    first = latest_run(env, tid)
    script = scripts[0]
    with tenant.lock:
        script.resource = dict(script.resource, scriptContent=base64.b64encode(b"Write-Output 'changed'\n").decode())
    tenant.record_audit(script, "Patch")  # the event Intune writes for it (the next sync re-reads what it names)
    add_and_sync(env, tenant=tid, name="Views C")
    second = latest_run(env, tid)
    assert second["run_id"] != first["run_id"] and second["status"] == "succeeded"
    changes = json.loads(run_cli(env, "changes", "--since", "1d", "--tenant", tid, "--format", "json").stdout)["changes"]
    mine = [(c["kind"], c["policy"], c["setting"]) for c in changes if c.get("cur_run") == second["run_id"]]
    assert mine == [("setting", script.name, "Script content")], mine
