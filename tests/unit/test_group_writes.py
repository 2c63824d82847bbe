"""store/batch.write_together on a real DuckDB file: runs finishing together in one process share one
open of the file, each keeps its own transaction and gets its own result or error back."""

from __future__ import annotations

import threading
from pathlib import Path

import polars as pl
import pytest

from tenantpilot.flatten.schema import POLICY_SCHEMA
from tenantpilot.store import Store, StoreError
from tenantpilot.store.batch import _group, batch_sizes, write_together

TENANTS = [f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(1, 9)]


def _policies(tenant: str) -> pl.DataFrame:
    return pl.DataFrame([{**{c: "" for c in POLICY_SCHEMA}, "policy_id": f"{tenant}-p", "policy_name": "P",
                          "policy_type": "settingsCatalog", "raw_json": "{}"}], schema=POLICY_SCHEMA)


def test_a_unit_alone_is_written_at_once(tmp_path: Path):
    store = Store(tmp_path / "db.duckdb")
    store.add_tenant(TENANTS[0], "A")
    run_id, _ = store.create_run_unless_active(TENANTS[0])
    store.start_run(run_id)
    written = write_together(store, lambda: store.write_snapshot(
        run_id, TENANTS[0], policies=_policies(TENANTS[0]), status="succeeded", request_count=1))
    assert written["policies"] == 1 and store.get_run(run_id)["status"] == "succeeded"
    assert batch_sizes(store)[-1] == 1


def test_runs_finishing_together_share_an_open_and_keep_their_own_outcome(tmp_path: Path):
    store = Store(tmp_path / "db.duckdb")
    runs = {}
    for t in TENANTS:
        store.add_tenant(t, t[:8])
        runs[t], _ = store.create_run_unless_active(t)
        store.start_run(runs[t])
    store.fail_run(runs[TENANTS[3]], "cancelled meanwhile")  # its snapshot must be refused, alone
    start = threading.Barrier(len(TENANTS))
    outcome: dict[str, object] = {}

    def finish(tenant: str) -> None:
        start.wait()
        try:
            outcome[tenant] = write_together(store, lambda: store.write_snapshot(
                runs[tenant], tenant, policies=_policies(tenant), status="succeeded", request_count=1))
        except StoreError as exc:
            outcome[tenant] = exc

    with store.writing():  # another write holds the file: every worker's snapshot arrives meanwhile
        threads = [threading.Thread(target=finish, args=(t,)) for t in TENANTS]
        start_sizes = len(batch_sizes(store))
        for th in threads:
            th.start()
        # wait (on the condition, not a clock) until every unit waits: a leader holds its own batch while
        # it waits for the file, the others wait for the next leader
        deadline = threading.Event()
        timer = threading.Timer(60, deadline.set)
        timer.start()
        while len(_group(store).waiting) < len(TENANTS) - 1 and not deadline.is_set():
            threading.Event().wait(0.01)
        timer.cancel()
    for th in threads:
        th.join(60)
    assert isinstance(outcome[TENANTS[3]], StoreError) and "no longer active" in str(outcome[TENANTS[3]])
    for t in TENANTS:
        if t != TENANTS[3]:
            assert outcome[t] == {"policies": 1, "settings": 0, "carried_settings": 0, "changed_settings": 0}
            assert store.get_run(runs[t])["status"] == "succeeded"
    assert store.get_run(runs[TENANTS[3]])["status"] == "failed"
    sizes = batch_sizes(store)[start_sizes:]
    assert sum(sizes) == len(TENANTS) and max(sizes) > 1  # fewer opens than runs


def test_a_write_inside_a_read_session_is_refused(tmp_path: Path):
    store = Store(tmp_path / "db.duckdb")
    store.add_tenant(TENANTS[0], "A")
    with store.reading(), pytest.raises(StoreError, match="for reads"):
        store.add_tenant(TENANTS[1], "B")
