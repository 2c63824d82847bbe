"""Store against a real DuckDB file: snapshots, current, failure isolation, pruning, locking."""

from __future__ import annotations

import multiprocessing as mp
import time

import polars as pl
import pytest

from tenantpilot.flatten.schema import ASSIGNMENT_SCHEMA, POLICY_SCHEMA, SETTING_SCHEMA
from tenantpilot.store import Store, StoreError


def frames(policies: dict[str, dict[str, str]]):
    pol, rows = [], []
    for pid, settings in policies.items():
        pol.append({"policy_id": pid, "policy_name": pid.upper(), "policy_type": "settingsCatalog",
                    "odata_type": "", "platform": "windows", "raw_json": "{}"})
        for key, value in settings.items():
            row = {c: "" for c in SETTING_SCHEMA}
            row.update(policy_id=pid, policy_name=pid.upper(), policy_type="settingsCatalog", setting_key=key,
                       setting_id=key, setting_name=key, value=value, compare_value=value, is_secret=False,
                       configured=True)
            rows.append(row)
    return (pl.DataFrame(pol, schema=POLICY_SCHEMA), pl.DataFrame(rows, schema=SETTING_SCHEMA),
            pl.DataFrame([], schema=ASSIGNMENT_SCHEMA))


def sync(store: Store, tenant: str, policies, status="succeeded") -> int:
    run_id, created = store.create_run_unless_active(tenant)
    assert created
    assert store.start_run(run_id)
    p, s, a = frames(policies)
    store.write_snapshot(run_id, tenant, policies=p, settings=s, assignments=a, status=status, request_count=3)
    return run_id


@pytest.fixture
def store(tmp_path) -> Store:
    s = Store(tmp_path / "t.duckdb")
    s.add_tenant("contoso.onmicrosoft.com", "Contoso")
    return s


def test_snapshot_replaces_current_and_drops_deleted(store):
    t = "contoso.onmicrosoft.com"
    sync(store, t, {"a": {"k1": "1", "k2": "2"}, "b": {"k3": "3"}})
    second = sync(store, t, {"a": {"k1": "9"}})
    cur = store.current_settings([t])
    assert cur["run_id"].unique().to_list() == [second]
    assert sorted(zip(cur["setting_key"], cur["value"])) == [("k1", "9")]
    assert store.current_policies([t])["policy_id"].to_list() == ["a"]


def test_failed_run_keeps_previous_snapshot(store):
    t = "contoso.onmicrosoft.com"
    first = sync(store, t, {"a": {"k1": "1"}})
    run_id, _ = store.create_run_unless_active(t)
    store.start_run(run_id)
    store.fail_run(run_id, "boom")
    assert store.current_settings([t])["run_id"].unique().to_list() == [first]
    assert store.get_run(run_id)["status"] == "failed"


def test_dedupe_returns_active_run(store):
    t = "contoso.onmicrosoft.com"
    first, created = store.create_run_unless_active(t)
    again, created2 = store.create_run_unless_active(t)
    assert created and not created2 and first == again


def test_write_is_atomic_when_run_no_longer_active(store):
    t = "contoso.onmicrosoft.com"
    run_id, _ = store.create_run_unless_active(t)
    store.start_run(run_id)
    store.fail_run(run_id, "interrupted")
    p, s, a = frames({"a": {"k": "v"}})
    with pytest.raises(StoreError):
        store.write_snapshot(run_id, t, policies=p, settings=s, assignments=a, status="succeeded", request_count=1)
    assert store.current_settings([t]).height == 0
    assert store.run_settings([run_id]).height == 0


def test_history_older_than_the_retention_is_dropped(store):
    t = "contoso.onmicrosoft.com"
    ids = []
    for i in range(4):
        run_id, _ = store.create_run_unless_active(t)
        store.start_run(run_id)
        p, s, a = frames({"a": {"k": str(i)}})
        store.write_snapshot(run_id, t, policies=p, settings=s, assignments=a, status="succeeded", request_count=1)
        ids.append(run_id)
        with store.connect(write=True) as con:  # this run finished (4 - i) * 10 days ago
            con.execute("UPDATE sync_runs SET finished_at = now() - to_days(?) WHERE run_id = ?", [(4 - i) * 10, run_id])
    assert store.run_settings(ids).sort("run_id")["value"].to_list() == ["0", "1", "2", "3"]
    run_id, _ = store.create_run_unless_active(t)
    store.start_run(run_id)
    p, s, a = frames({"a": {"k": "4"}})
    Store(store.path, history_days=25).write_snapshot(run_id, t, policies=p, settings=s, assignments=a,
                                                       status="succeeded", request_count=1)
    # runs older than 25 days (40 and 30 days) are pruned with the row versions only they held
    assert store.runs(t).filter(pl.col("status") == "pruned")["run_id"].sort().to_list() == ids[:2]
    assert store.run_settings([*ids, run_id]).sort("run_id")["value"].to_list() == ["2", "3", "4"]
    with store.connect() as con:
        assert con.execute("SELECT count(*) FROM setting_versions").fetchone()[0] == 3


def test_remove_tenant_removes_its_data(store):
    t = "contoso.onmicrosoft.com"
    sync(store, t, {"a": {"k": "v"}})
    assert store.remove_tenant(t)
    assert store.tenants().height == 0 and store.current_settings().height == 0


def _reader(path: str, seconds: float, out) -> None:
    store = Store(path)
    failures = reads = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            store.current_settings()
            reads += 1
        except Exception:  # noqa: BLE001
            failures += 1
    out.put((reads, failures))


def test_reader_process_never_fails_while_writer_writes(store):
    """A second process reads in a loop while this one writes snapshots: no read fails."""
    t = "contoso.onmicrosoft.com"
    sync(store, t, {"a": {"k": "v"}})
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_reader, args=(str(store.path), 6.0, out))
    proc.start()
    writes = 0
    end = time.monotonic() + 5.0
    while time.monotonic() < end:
        sync(store, t, {"a": {f"k{i}": str(i) for i in range(500)}})
        writes += 1
    reads, failures = out.get(timeout=60)
    proc.join(30)
    print(f"concurrent: {writes} snapshot writes, {reads} reads in another process, {failures} failed reads")
    assert writes > 3 and reads > 3
    assert failures == 0



def test_a_database_created_elsewhere_first_is_kept_whole(tmp_path):
    """Two processes creating one new database: each builds its own draft and links it into place, so
    the path holds a whole database from the moment it exists; the one that lost keeps the winner's."""
    path = tmp_path / "data" / "tenantpilot.duckdb"
    first = Store(path)
    first.add_tenant("11111111-1111-4111-8111-111111111111", "Contoso")
    Store(path)._create()  # the slower process: its draft loses the link, the winner's data stays
    assert first.tenants()["display_name"].to_list() == ["Contoso"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["tenantpilot.duckdb"]  # no draft left behind
