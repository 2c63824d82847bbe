"""End to end through the real parts: CLI -> Huey on a private Redis -> a real huey_consumer
subprocess -> MSAL (unpatched) against the simulator's HTTPS authority -> Graph simulator over
HTTPS -> flatten -> a real DuckDB file."""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from pathlib import Path

import polars as pl
import pytest
from realparts import CONTOSO, FABRIKAM, add_and_sync, latest_run, run_cli, store_of

from graphsim.tenants import build_tenant
from tenantpilot.store import Store


def test_sync_lands_every_policy_then_changes_and_deletions(env, consumer, sim):
    # A tenant of its own: this test changes it, and the session's tenants must stay pristine.
    tid = "99999999-9999-4999-8999-999999999999"
    tenant = build_tenant(tid, "Mutable", n_policies=30, seed=11)
    sim.add_tenant(tenant)
    add_and_sync(env, tenant=tid)
    store = store_of(env)
    run = latest_run(env, tid)
    assert run["status"] == "succeeded", run
    policies = store.current_policies([tid])
    assert set(policies["policy_id"]) == set(tenant.object_ids())  # policies and (issue 19) assignment filters
    settings = store.current_settings([tid])
    assert settings.height == run["setting_count"] > policies.height
    assert not settings.filter(settings["is_secret"])["value"].str.contains("encryptedValueToken").any()
    # Change one setting, delete one policy, then sync again.
    deleted = tenant.policy_ids()[0]
    tenant.delete_policy(deleted)
    changed = tenant.change_any_setting()
    add_and_sync(env, tenant=tid)
    settings2 = store.current_settings([tid])
    policies2 = store.current_policies([tid])
    assert deleted not in set(policies2["policy_id"])
    assert deleted not in set(settings2["policy_id"])
    assert set(policies2["policy_id"]) == set(tenant.object_ids())
    hit = settings2.filter(settings2["setting_id"] == changed["setting_definition_id"])
    assert changed["new_display"] in " ".join(hit["value"].to_list()), (changed, hit["value"].to_list())
    # the older snapshot is kept for drift, unchanged
    runs = store.runs(tid)
    assert runs.height == 2 and set(runs["status"]) == {"succeeded"}


@pytest.mark.parametrize(
    "knobs, status, needle",
    [
        ({"throttle": (30, 2.0)}, "succeeded", None),  # 429 storm with Retry-After
        ({"fail_next": (12, 503)}, "succeeded", None),  # 5xx burst
        ({"revoke_tokens_after": 0.3}, "succeeded", None),  # token expires mid-sync
        ({"forbidden_paths": {"/deviceManagement/groupPolicyConfigurations"}}, "partial", "DeviceManagementConfiguration"),
        # one type's malformed answer skips that type (its rows carried forward), never the run
        ({"malformed_paths": {"/deviceManagement/deviceCompliancePolicies"}}, "partial", "malformed JSON"),
    ],
    ids=["429-storm", "5xx-burst", "token-expiry", "403-one-type", "malformed-json"],
)
def test_faults_end_as_they_should_and_keep_previous_snapshot(env, consumer, sim, knobs, status, needle):
    add_and_sync(env)
    store = store_of(env)
    good = latest_run(env)
    before = store.current_settings([CONTOSO]).sort("policy_id", "setting_key")
    try:
        sim.apply_knobs(knobs)
        add_and_sync(env, expect=1 if status == "failed" else 0)
    finally:
        sim.reset_knobs()
    run = latest_run(env)
    assert run["status"] == status, run
    text = (run["error"] or "") + json.dumps(json.loads(run["warnings"] or "[]"))
    if needle:
        assert needle in text, text
    if status == "failed":
        assert store.current_settings([CONTOSO]).sort("policy_id", "setting_key").equals(before)
        assert store.snapshot_token() == ((CONTOSO, good["run_id"]),)
    else:
        assert store.snapshot_token() == ((CONTOSO, run["run_id"]),)


def _reader(path: str, seconds: float, out) -> None:
    store = Store(path)
    reads = failures = 0
    errors: list[str] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            store.current_settings()
            store.runs()
            reads += 1
        except Exception as exc:  # noqa: BLE001
            failures += 1
            errors.append(repr(exc))
    out.put((reads, failures, errors[:3]))


def test_reader_process_never_fails_during_syncs(env, consumer, sim):
    run_cli(env, "tenants", "add", CONTOSO, "--name", "Contoso")
    run_cli(env, "tenants", "add", FABRIKAM, "--name", "Fabrikam")
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    reader = ctx.Process(target=_reader, args=(env["TENANTPILOT_DB"], 8.0, out))
    reader.start()
    for _ in range(2):
        for tenant in (CONTOSO, FABRIKAM):
            assert run_cli(env, "sync", tenant, "--wait").returncode == 0
    reads, failures, errors = out.get(timeout=60)
    reader.join(30)
    print(f"reader: {reads} reads, {failures} failures during 4 syncs")
    assert reads > 0 and failures == 0, errors


def test_secrets_never_reach_db_logs_or_export(env, consumer, sim, tmp_path):
    add_and_sync(env)
    out = tmp_path / "export.csv"
    assert run_cli(env, "export", "--tenant", CONTOSO, "--output", str(out)).returncode == 0
    blobs = [out.read_bytes(), open(env["TENANTPILOT_DB"], "rb").read()]
    for log in (tmp_path / "logs").glob("*.log"):
        blobs.append(log.read_bytes())
    blobs.append(consumer.output().encode())
    secret = sim.client_secret.encode()
    for token in [secret, *[t.encode() for t in sim.issued_tokens()]]:
        assert all(token not in blob for blob in blobs)
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")


def test_worker_logs_are_json_lines_with_job_events(env, consumer, sim):
    add_and_sync(env)
    log_dir = Path(env["TENANTPILOT_LOG_DIR"])
    lines = [json.loads(line) for line in (log_dir / "worker-combined.log").read_text().splitlines()]
    events = {e["event"]: e for e in lines}
    assert {"consumer started", "job started", "job completed"} <= set(events)
    done = events["job completed"]
    assert done["tenant"] == CONTOSO and done["settings"] > 0 and done["requests"] > 0 and done["duration_s"] > 0
    # where the run's time went (bench_fleet.py sums these): every phase from marking the run running to the
    # last write, so they add up to the run's duration (less the log line itself)
    assert set(done["phases"]) == {"start", "graph", "flatten", "lock_wait", "write"}
    assert done["phases"]["start"] > 0 and done["phases"]["graph"] > 0
    assert abs(sum(done["phases"].values()) - done["duration_s"]) < 0.05 * done["duration_s"] + 0.01
    assert (log_dir / "worker-error.log").exists()


def test_setting_definitions_are_cached_across_tenants_and_fetched_only_when_missing(env, consumer, sim):
    fabrikam = sim.tenants[FABRIKAM]  # variant 1: one setting the Contoso policies do not use
    extra = next(d for d in fabrikam.seeded_differences if d["kind"] == "extra_setting")
    sim.reset_counters()
    add_and_sync(env)  # cold cache: definitions ride along with the settings calls
    cold = [path for _, path, _ in sim.request_log]
    assert any("settingDefinitions" in p for p in cold) and not any("configurationSettings/" in p for p in cold)
    store = store_of(env)
    cached = store.definition_ids()
    assert extra["setting_definition_id"] not in cached
    sim.reset_counters()
    add_and_sync(env, tenant=FABRIKAM)
    warm = [path for _, path, _ in sim.request_log]
    # the cheap way (issue 8): no request per definition; the settings of the few policies that hold
    # the missing definition are fetched again, expanded with their definitions
    assert not any("/configurationSettings/" in p for p in warm)
    expanded = [p for p in warm if "settingDefinitions" in p]
    policies_with_extra = {p.id for p in fabrikam.list_policies("configurationPolicies")
                           if extra["setting_definition_id"] in json.dumps(p.settings)}
    assert 1 <= len(expanded) <= len(policies_with_extra), expanded
    assert extra["setting_definition_id"] in store.definition_ids()
    sim.reset_counters()
    add_and_sync(env, tenant=FABRIKAM)  # now the cache holds everything: nothing is expanded again
    assert not any("settingDefinitions" in p or "/configurationSettings/" in p for _, p, _ in sim.request_log)
    rows = store.current_settings([FABRIKAM])
    row = rows.filter(rows["setting_id"] == extra["setting_definition_id"]).row(0, named=True)
    definition = store.definitions([extra["setting_definition_id"]])[extra["setting_definition_id"]]
    assert row["setting_name"] == definition["displayName"]


def test_intent_settings_are_named_from_their_template(env, consumer, sim):
    add_and_sync(env)
    store = store_of(env)
    rows = store.current_settings([CONTOSO]).filter(pl.col("policy_type") == "endpointSecurityIntent")
    assert rows.height > 0
    definitions = store.definitions(rows["setting_id"].unique().to_list())
    assert definitions, "template categories were not fetched"
    for row in rows.filter(pl.col("setting_id").is_in(list(definitions))).iter_rows(named=True):
        assert row["setting_name"].startswith(definitions[row["setting_id"]]["displayName"])  # complex: "A > b"
        assert row["category"] == definitions[row["setting_id"]]["categoryName"]


def test_sync_all_queues_every_tenant_but_baselines(env, sim):
    run_cli(env, "tenants", "add", CONTOSO, "--name", "Contoso")
    run_cli(env, "tenants", "add", FABRIKAM, "--name", "Fabrikam")
    result = run_cli(env, "sync", "--all")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("queued") == 2
    run_cli(env, "sync", expect=2)
