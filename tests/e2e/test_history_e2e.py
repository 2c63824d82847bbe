"""History end to end: a change made through the simulator's control API between two syncs of a real
huey_consumer reaches `changes --since` (text and JSON, with the actor the simulator's audit event
names) and the Changes page, read from the row ranges in the DuckDB file."""

from __future__ import annotations

import json

import requests
from realparts import CONTOSO, add_and_sync, bool_property, latest_run, run_cli, store_of

BOB = "bob@contoso.onmicrosoft.com"


def test_a_change_between_two_syncs_reaches_changes_since_and_the_changes_page(env, consumer, sim):
    add_and_sync(env)
    first = latest_run(env)
    assert first["status"] == "succeeded"
    synced = store_of(env).run_settings([first["run_id"]])
    policy_id, prop, old = bool_property(sim, synced)
    name = synced.filter((synced["policy_id"] == policy_id) & (synced["setting_id"] == prop))["setting_name"][0]
    try:
        r = requests.post(f"{sim.url}/_sim/tenants/{CONTOSO}/policies/deviceConfigurations/{policy_id}/change",
                          json={"setting_id": prop, "value": not old, "actor": BOB}, verify=str(sim.ca_path),
                          timeout=10)
        assert r.status_code == 200, r.text
        again = run_cli(env, "sync", CONTOSO, "--wait", "--timeout", "180", timeout=210)
        assert again.returncode == 0, again.stdout + again.stderr
    finally:
        sim.tenant(CONTOSO).change_setting(policy_id, prop, old)  # the session's simulator stays as it was
    second = latest_run(env)
    assert second["status"] == "succeeded" and second["run_id"] != first["run_id"]

    out = run_cli(env, "changes", "--since", "1d", "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = [r for r in json.loads(out.stdout)["changes"] if r["kind"] == "setting"]
    mine = [r for r in rows if r["setting"] == name]
    assert len(mine) == 1, rows
    # a boolean the portal shows as "Not configured" when false: the change reads as added or removed
    assert mine[0]["change"] in ("changed", "added", "removed")
    assert mine[0]["changed_by"] == BOB and mine[0]["activity"]
    assert mine[0]["cur_run"] == second["run_id"]
    text = run_cli(env, "changes", "--since", "1d", "--tenant", "Contoso")
    assert text.returncode == 0 and f"{name}:" in text.stdout and f"by {BOB}" in text.stdout, text.stdout

    from tests.apptest import app, find_table

    at = app("changes")
    at.segmented_control(key="chg_since").set_value("24 hours").run()
    assert not at.exception
    grid = find_table(at, "tenant", "total")
    assert list(grid["tenant"]) == ["Contoso"]
    table = find_table(at, "change", "old_value", "new_value", "seen_at")
    row = table[table["setting_name"] == name]
    assert len(row) == 1 and row["changed_by"].tolist() == [BOB]
