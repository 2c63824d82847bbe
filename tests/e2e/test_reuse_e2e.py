"""The second night reads only what may have changed (tenantpilot/sync/reuse.py), end to end through the real
parts: CLI -> Redis queue -> a real huey_consumer -> MSAL against the simulator's HTTPS authority -> the Graph
simulator over HTTPS -> a real DuckDB file. Changes are made through the simulator's control API over HTTPS,
which records the Intune audit event for each, as Intune does; one change is made unaudited on purpose
(`"audit": false`, a change Intune does not audit) to show the documented guard, the full read.

One tenant of its own (it is changed), one database, syncs in order:
(a) unchanged: the second sync reuses policies, sends fewer Graph calls, and its rows are the first's;
(b) a setting and an assignment changed with their audit events: both show at the next sync;
(c) an assignment changed without an audit event: not seen until a full read, at once with
    TENANTPILOT_FULL_READ_DAYS=0;
(d) auditEvents answering 403: a full read, said in the run's warning;
(e) the previous run partial: a full read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import requests
from realparts import Consumer, add_and_sync, latest_run, run_cli, store_of

from graphsim.catalog import load_catalog, walk_instances
from graphsim.tenants import SimTenant, build_tenant
from tenantpilot.graph.audit import AUDIT_PATH

TID = "ae5e0000-2323-4023-8023-000000000023"
NAME = "Reuse"
ROW = ["policy_id", "setting_key", "value", "raw_value"]
ASSIGNMENT = ["policy_id", "target_type", "group_id"]
SENTENCE = "policies unchanged in the audit log since"


def _sync(env: dict[str, str]) -> tuple[dict[str, Any], str]:
    out = run_cli(env, "sync", TID, "--wait", "--timeout", "180", timeout=210)
    return latest_run(env, TID), out.stdout


def _graph_calls(sim, sync: Any) -> tuple[Any, int]:
    """(what `sync()` returns, the Graph calls the simulator answered meanwhile, $batch items counted: what
    Graph's throttle counts; this test's syncs are the only ones running)."""
    before = sim.counters["graph_request_count"]
    result = sync()
    return result, sim.counters["graph_request_count"] - before


def _rows(env: dict[str, str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    store = store_of(env)
    settings = store.current_settings([TID]).select(ROW).sort(ROW)
    assignments = store.current_assignments([TID]).select(ASSIGNMENT).sort(ASSIGNMENT, nulls_last=True)
    return settings, assignments


def _control(sim, tenant: SimTenant, policy_id: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
    collection = next(p.collection for p in tenant.all_policies() if p.id == policy_id)
    r = requests.post(f"{sim.url}/_sim/tenants/{TID}/policies/{collection}/{policy_id}/{action}", json=body,
                      verify=str(sim.ca_path), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def _integer_setting(tenant: SimTenant) -> tuple[str, str, int]:
    """(settings-catalog policy id, setting definition id, a new value) for an integer setting."""
    cat = load_catalog()
    for policy in tenant.list_policies("configurationPolicies"):
        for setting in policy.settings:
            for inst, _ in walk_instances(setting["settingInstance"]):
                value = inst.get("simpleSettingValue") or {}
                if str(value.get("@odata.type", "")).endswith("IntegerSettingValue"):
                    bounds = (cat.setting_definitions.get(inst["settingDefinitionId"]) or {}).get("valueDefinition") or {}
                    old = int(value.get("value") or 0)
                    lo, hi = bounds.get("minimumValue", 0), bounds.get("maximumValue", 2**31 - 1)
                    new = next((c for c in (old + 3, old - 3, lo, hi) if lo <= c <= hi and c != old), None)
                    if new is not None:
                        return policy.id, inst["settingDefinitionId"], new
    raise AssertionError("no settings-catalog policy with an integer setting")


def test_the_second_sync_reads_only_what_may_have_changed(env, consumer, sim, tmp_path: Path):
    tenant = build_tenant(TID, NAME, 40, seed=0, variant=0, coverage=True)  # the demo's first tenant's shape
    sim.add_tenant(tenant)
    _, calls1 = _graph_calls(sim, lambda: add_and_sync(env, tenant=TID, name=NAME))
    first = latest_run(env, TID)
    assert first["status"] == "succeeded" and not first["reused_policies"]
    rows1 = _rows(env)

    # (a) unchanged: fewer Graph calls, policies reused, the same rows (and counts) as the first sync
    (second, out), calls2 = _graph_calls(sim, lambda: _sync(env))
    assert second["status"] == "succeeded" and second["reused_policies"] > 0, second
    assert second["request_count"] < first["request_count"] and calls2 < calls1
    print(f"\n{NAME} ({first['policy_count']} policies): Graph calls sync 1 {calls1}, sync 2 {calls2} "
          f"({second['reused_policies']} policies not re-read); HTTP requests {first['request_count']} vs "
          f"{second['request_count']}")
    rows2 = _rows(env)
    assert rows2[0].equals(rows1[0]) and rows2[1].equals(rows1[1])
    assert (second["policy_count"], second["setting_count"]) == (first["policy_count"], first["setting_count"])
    store = store_of(env)
    assert store.run_settings([second["run_id"]]).select(ROW).sort(ROW).equals(
        store.run_settings([first["run_id"]]).select(ROW).sort(ROW))
    assert store.current_settings([TID])["carried_from_run"].is_null().all()  # confirmed, not carried
    line = f"{second['reused_policies']} of {second['policy_count']} {SENTENCE}"
    assert line in out and "read in full every 7 days (last " in out, out
    assert line in run_cli(env, "runs", TID).stdout

    # (b) a setting and an assignment changed through the control API, each with its audit event
    catalog_id, definition_id, new_value = _integer_setting(tenant)
    changed = _control(sim, tenant, catalog_id, "change", {"setting_id": definition_id, "value": new_value})
    intent = tenant.list_policies("intents")[0]
    assigned = _control(sim, tenant, intent.id, "assign", {})
    assert changed["audit_event"] and assigned["audit_event"]
    third, _ = _sync(env)
    assert third["status"] == "succeeded" and 0 < third["reused_policies"] <= second["reused_policies"] - 2, third
    assignments = _rows(env)[1]
    current = store_of(env).current_settings([TID])
    mine = current.filter((pl.col("policy_id") == catalog_id) & (pl.col("setting_id") == definition_id))
    assert str(new_value) in " ".join(mine["value"].to_list()), mine
    group = assigned["assignment"]["target"]["groupId"]
    assert group in assignments.filter(pl.col("policy_id") == intent.id)["group_id"].to_list()

    # (c) a change Intune does not audit is not seen until the full read ...
    script = tenant.list_policies("deviceManagementScripts")[0]
    silent = _control(sim, tenant, script.id, "assign", {"audit": False})
    assert silent["audit_event"] is None
    hidden = silent["assignment"]["target"]["groupId"]
    fourth, _ = _sync(env)
    assert fourth["reused_policies"] > 0
    assert hidden not in _rows(env)[1].filter(pl.col("policy_id") == script.id)["group_id"].to_list()
    # ... which TENANTPILOT_FULL_READ_DAYS=0 makes every sync (the documented guard)
    consumer.stop()
    always = Consumer({**env, "TENANTPILOT_FULL_READ_DAYS": "0"}, tmp_path / "consumer-full.log").start()
    try:
        (fifth, out), calls5 = _graph_calls(sim, lambda: _sync(env))
    finally:
        always.stop()
    print(f"{NAME}: Graph calls of a later full read (TENANTPILOT_FULL_READ_DAYS=0, caches warm) {calls5}")
    assert fifth["status"] == "succeeded" and not fifth["reused_policies"] and SENTENCE not in out
    assert hidden in _rows(env)[1].filter(pl.col("policy_id") == script.id)["group_id"].to_list()
    assert fifth["request_count"] > fourth["request_count"] and calls5 > calls2

    again = Consumer(env, tmp_path / "consumer-again.log").start()
    try:
        # (d) the audit log refused (403): every policy read in full, and the run's warning says so
        saved = set(sim.forbidden_paths)
        sim.forbidden_paths = saved | {AUDIT_PATH}
        try:
            sixth, _ = _sync(env)
        finally:
            sim.forbidden_paths = saved
        warnings = json.loads(sixth["warnings"] or "[]")
        assert sixth["status"] == "succeeded" and not sixth["reused_policies"], sixth
        assert any("403" in w and "Every policy was read in full" in w for w in warnings), warnings

        # (e) a partial run (one type refused) is followed by a full read; then reuse resumes
        sim.forbidden_paths = saved | {"/deviceManagement/groupPolicyConfigurations"}
        try:
            seventh, _ = _sync(env)
        finally:
            sim.forbidden_paths = saved
        assert seventh["status"] == "partial"
        eighth, _ = _sync(env)
        assert eighth["status"] == "succeeded" and not eighth["reused_policies"], eighth
        full = _rows(env)
        ninth, _ = _sync(env)
        assert ninth["reused_policies"] > 0
        assert _rows(env)[0].equals(full[0]) and _rows(env)[1].equals(full[1])
    finally:
        again.stop()
