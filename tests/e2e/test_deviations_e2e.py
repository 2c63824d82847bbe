"""The deviation register end to end: two tenants synced by a real consumer from the simulator, a
difference accepted with `deviations add` until tomorrow leaves Contoso's alignment with Fabrikam
(the `compare` CLI, its status, and the SQL overview), and an expired one counts again."""

from __future__ import annotations

import json
from datetime import date, timedelta

from realparts import CONTOSO, FABRIKAM, add_and_sync, run_cli, store_of

from tenantpilot.analysis import deviations
from tenantpilot.analysis.compare import DIFFERENT


def compare_report(env: dict[str, str]) -> dict:
    result = run_cli(env, "compare", "Contoso", "--baseline", "Fabrikam", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def contoso_score(report: dict) -> dict:
    (row,) = [r for r in report["alignment"] if r["tenant_id"] == CONTOSO]
    return row


def test_accepted_deviation_leaves_the_score_until_it_expires(env: dict[str, str], consumer) -> None:
    add_and_sync(env, CONTOSO, name="Contoso")
    add_and_sync(env, FABRIKAM, name="Fabrikam")
    before = compare_report(env)
    score = contoso_score(before)
    differs = [r for r in before["settings"] if r["status"] == DIFFERENT and r["Contoso"] is not None]
    assert differs, "the simulator's tenants differ somewhere"
    target = differs[0]
    args = ["deviations", "add", "Contoso", "--baseline", "Fabrikam", "--setting", target["setting_key"],
            "--policy-type", target["policy_type"], "--scope", target["scope"], "--owner", "Ops",
            "--reason", "customer's legacy app"]

    refused = run_cli(env, *args, "--expires", (date.today() - timedelta(days=1)).isoformat(), expect=2)
    assert refused.returncode == 2 and "has passed" in refused.stderr

    added = run_cli(env, *args, "--expires", (date.today() + timedelta(days=1)).isoformat())
    assert added.returncode == 0, added.stderr
    after = compare_report(env)
    accepted = contoso_score(after)
    assert accepted["accepted"] == 1 and accepted["baseline_settings"] == score["baseline_settings"] - 1
    assert accepted["differing"] == score["differing"] - 1 and accepted["matched"] == score["matched"]
    assert accepted["score"] > score["score"]
    (row,) = [r for r in after["settings"] if (r["policy_type"], r["scope"], r["setting_key"])
              == (target["policy_type"], target["scope"], target["setting_key"])]
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    assert row["status"] == f"accepted (customer's legacy app, until {tomorrow})"

    listed = run_cli(env, "deviations", "list", "--format", "csv")
    assert listed.returncode == 0 and "customer's legacy app" in listed.stdout and "valid" in listed.stdout

    # expired: removed from the register, then recorded with a past expiry straight through the Store
    (dev_id,) = store_of(env).deviations()["deviation_id"].to_list()
    assert run_cli(env, "deviations", "remove", str(dev_id)).returncode == 0
    store = store_of(env)
    key = store.deviations(include_removed=True).row(0, named=True)
    store.add_deviation(deviations.NewDeviation(
        CONTOSO, FABRIKAM, key["policy_type"], key["scope"], key["setting_key"], key["setting_name"], "pilot",
        "Ops", date.today() - timedelta(days=1)))
    again = compare_report(env)
    assert contoso_score(again) == score
    (row,) = [r for r in again["settings"] if r["setting_key"] == target["setting_key"]
              and r["scope"] == target["scope"] and r["policy_type"] == target["policy_type"]]
    assert row["status"] == DIFFERENT
    listed = run_cli(env, "deviations", "list", "--tenant", "Contoso")
    assert "expired" in listed.stdout
