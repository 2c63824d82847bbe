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


CAROL, DAVE = "carol@contoso.onmicrosoft.com", "dave@contoso.onmicrosoft.com"


def _two_bool_properties(sim, synced) -> tuple[str, list[tuple[str, bool]]]:
    """A deviceConfiguration of Contoso with two boolean properties the sync shows as setting rows."""
    shown = set(zip(synced["policy_id"], synced["setting_id"]))
    for policy in sim.tenant(CONTOSO).list_policies("deviceConfigurations"):
        props = [(k, v) for k, v in policy.resource.items() if isinstance(v, bool) and (policy.id, k) in shown]
        if len(props) >= 2:
            return policy.id, props[:2]
    raise AssertionError("no deviceConfiguration with two boolean properties in the simulator's Contoso")


def test_two_admins_changing_two_settings_of_one_policy_are_each_named(env, consumer, sim, tmp_path):
    """Intune's audit events name the properties they modified (auditResource.modifiedProperties): each
    setting row names its own admin, in `changes` (text, CSV) and on the Changes page, per setting."""
    add_and_sync(env)
    synced = store_of(env).run_settings([latest_run(env)["run_id"]])
    policy_id, props = _two_bool_properties(sim, synced)
    names = {prop: synced.filter((synced["policy_id"] == policy_id) & (synced["setting_id"] == prop))["setting_name"][0]
             for prop, _ in props}
    admins = dict(zip([prop for prop, _ in props], (CAROL, DAVE)))
    try:
        for prop, old in props:
            r = requests.post(f"{sim.url}/_sim/tenants/{CONTOSO}/policies/deviceConfigurations/{policy_id}/change",
                              json={"setting_id": prop, "value": not old, "actor": admins[prop]},
                              verify=str(sim.ca_path), timeout=10)
            assert r.status_code == 200, r.text
        run_cli(env, "sync", CONTOSO, "--wait", "--timeout", "180", timeout=210)
    finally:
        for prop, old in props:
            sim.tenant(CONTOSO).change_setting(policy_id, prop, old)

    out = tmp_path / "changes.csv"
    run_cli(env, "changes", "--since", "1d", "--format", "csv", "--output", str(out))
    import csv

    rows = [r for r in csv.DictReader(out.read_text(encoding="utf-8-sig").splitlines()) if r["kind"] == "setting"]
    for prop, admin in admins.items():
        mine = [r for r in rows if r["setting"] == names[prop]]
        assert [(r["changed_by"], r["attribution"]) for r in mine] == [(admin, "setting")], rows
    text = run_cli(env, "changes", "--since", "1d", "--tenant", "Contoso").stdout
    for prop, admin in admins.items():
        line = next(line for line in text.splitlines() if f"{names[prop]}:" in line)
        assert f"by {admin} " in line and "per policy" not in line, text

    from tests.apptest import app, find_table

    at = app("changes")
    at.segmented_control(key="chg_since").set_value("24 hours").run()
    assert not at.exception
    table = find_table(at, "change", "old_value", "new_value", "seen_at")
    for prop, admin in admins.items():
        row = table[table["setting_name"] == names[prop]]
        assert row["changed_by"].tolist() == [admin] and row["attribution"].tolist() == ["setting"]
