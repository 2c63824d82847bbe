"""Who changed it, end to end: a change made through the simulator's control API (over HTTPS, with an
actor) is read back as an Intune audit event by the next sync of a real huey_consumer, kept in the
DuckDB file, and the pure join names that actor for the policy the two snapshots show as changed.
With the permission refused, the run warns naming it and still succeeds."""

from __future__ import annotations

import json
import time

import polars as pl
import requests
from realparts import CONTOSO, add_and_sync, bool_property, latest_run, run_cli, store_of

from tenantpilot.graph.audit import AUDIT_PATH, AUDIT_PERMISSION
from tenantpilot.sync.audit import attach_actors

ALICE = "alice@contoso.onmicrosoft.com"


def _changed_policies(store, before: int, after: int) -> set[str]:
    """Policies whose setting rows differ between two runs (added, removed or changed values)."""
    cols = ["policy_id", "setting_key", "value"]
    old = store.run_settings([before]).select(cols)
    new = store.run_settings([after]).select(cols)
    return set(pl.concat([old.join(new, on=cols, how="anti"), new.join(old, on=cols, how="anti")])["policy_id"])


def test_audit_event_names_who_changed_the_policy(env, consumer, sim):
    add_and_sync(env)
    first = latest_run(env)
    assert first["status"] == "succeeded"
    assert not any("Audit events" in w for w in json.loads(first["warnings"] or "[]"))

    policy_id, prop, old = bool_property(sim, store_of(env).run_settings([first["run_id"]]))
    try:
        r = requests.post(f"{sim.url}/_sim/tenants/{CONTOSO}/policies/deviceConfigurations/{policy_id}/change",
                          json={"setting_id": prop, "value": not old, "actor": ALICE}, verify=str(sim.ca_path),
                          timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["audit_event"]
        synced = run_cli(env, "sync", CONTOSO, "--wait", "--timeout", "180", timeout=210)
        assert synced.returncode == 0, synced.stdout + synced.stderr
    finally:
        sim.tenant(CONTOSO).change_setting(policy_id, prop, old)  # the session's simulator stays as it was
    second = latest_run(env)
    assert second["status"] == "succeeded" and second["run_id"] != first["run_id"]

    store = store_of(env)
    kept = store.audit_events(CONTOSO, since=first["finished_at"], until=second["finished_at"])
    mine = kept.filter(pl.col("resource_ids").list.contains(policy_id))
    assert mine["actor_upn"].to_list() == [ALICE]
    assert mine["run_id"].to_list() == [second["run_id"]]
    assert "203.0.113" not in json.dumps(kept.to_dicts(), default=str)  # the actor's IP address is not kept

    changed = _changed_policies(store, first["run_id"], second["run_id"])
    assert policy_id in changed
    changes = pl.DataFrame({"tenant_id": CONTOSO, "policy_id": sorted(changed),
                            "window_start": first["finished_at"], "window_end": second["finished_at"]})
    joined = {r["policy_id"]: r for r in attach_actors(changes, store.audit_events(CONTOSO)).iter_rows(named=True)}
    assert joined[policy_id]["changed_by"] == ALICE
    assert joined[policy_id]["activity"] == "Patch DeviceConfiguration"
    assert first["finished_at"] < joined[policy_id]["changed_at"] <= second["finished_at"]

    # the app may not read audit events: a warning naming the permission, and the sync still succeeds
    saved = set(sim.forbidden_paths)
    try:
        r = requests.post(f"{sim.url}/_sim/knobs", json={"forbidden_paths": sorted(saved | {AUDIT_PATH})},
                          verify=str(sim.ca_path), timeout=10)
        assert r.status_code == 200, r.text
        synced = run_cli(env, "sync", CONTOSO, "--wait", "--timeout", "180", timeout=210)
        assert synced.returncode == 0, synced.stdout + synced.stderr
    finally:
        sim.forbidden_paths = saved
    third = latest_run(env)
    assert third["status"] == "succeeded"
    warnings = json.loads(third["warnings"] or "[]")
    assert any("Audit events not read" in w and AUDIT_PERMISSION in w and "403" in w for w in warnings), warnings


NORTHWIND = "33333333-3333-4333-8333-333333333333"


def test_simulator_serves_audit_events_filtered_and_paged(sim):
    """`GET /deviceManagement/auditEvents` over HTTPS: the `$filter` on activityDateTime (and on
    activityOperationType, as IntuneCD sends it), absolute nextLinks, Graph's 400 and 403."""
    tenant = sim.tenant(NORTHWIND)
    policy = tenant.list_policies("deviceConfigurations")[0]
    before = len(tenant.audit_events)
    recorded = []
    for i in range(5):
        recorded.append(tenant.record_audit(policy, "Patch" if i % 2 else "Get", f"admin{i}@northwind.example"))
        time.sleep(0.002)  # distinct activityDateTimes (microseconds)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {sim.issue_token(NORTHWIND)}"
    since = recorded[1]["activityDateTime"]

    def all_pages(url: str) -> list[dict]:
        items: list[dict] = []
        while url:
            page = session.get(url, verify=str(sim.ca_path), timeout=10)
            assert page.status_code == 200, page.text
            items.extend(page.json()["value"])
            url = page.json().get("@odata.nextLink")
        return items

    got = all_pages(f"{sim.url}/v1.0{AUDIT_PATH}?$filter=activityDateTime gt {since}&$top=2")
    assert [e["id"] for e in got] == [e["id"] for e in recorded[2:]]
    assert got[0]["actor"]["userPrincipalName"] == "admin2@northwind.example"
    assert got[0]["resources"][0]["resourceId"] == policy.id
    changes = all_pages(f"{sim.url}/beta{AUDIT_PATH}?$filter=activityDateTime gt {since} and "
                        "activityOperationType ne 'Get'")
    assert [e["id"] for e in changes] == [recorded[3]["id"]]
    assert len(all_pages(f"{sim.url}/v1.0{AUDIT_PATH}")) == before + 5

    bad = session.get(f"{sim.url}/v1.0{AUDIT_PATH}?$filter=displayName eq 'x'", verify=str(sim.ca_path), timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "BadRequest"
    saved = set(sim.forbidden_paths)
    sim.forbidden_paths = saved | {AUDIT_PATH}
    try:
        denied = session.get(f"{sim.url}/v1.0{AUDIT_PATH}", verify=str(sim.ca_path), timeout=10)
    finally:
        sim.forbidden_paths = saved
    assert denied.status_code == 403 and AUDIT_PERMISSION in denied.json()["error"]["message"]
