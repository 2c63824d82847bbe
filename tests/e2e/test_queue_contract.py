"""The queue contract, run once per backend (redis, sqlite) as huey runs one storage contract
against every storage: enqueue and dedupe, progress, the consumer's heartbeat, interrupted runs,
`-w 2`. Every test goes through the CLI and a real `huey_consumer` subprocess."""

from __future__ import annotations

import json
import time
from pathlib import Path

from realparts import CONTOSO, FABRIKAM, Consumer, add_and_sync, latest_run, run_cli, store_of


def test_sync_wait_follows_progress_to_the_end(queue_env, queue_consumer, sim):
    sim.latency = 0.3  # a sync of several seconds: `--wait` polls every 0.5 s and must see it run
    try:
        result = add_and_sync(queue_env)
    finally:
        sim.latency = 0.0
    lines = result.stdout.splitlines()
    assert any("running — " in line for line in lines), result.stdout  # progress from the queue's storage
    assert lines[-1].startswith("run ") and "succeeded" in lines[-1], result.stdout
    assert latest_run(queue_env)["status"] == "succeeded"


def test_second_enqueue_returns_the_active_run(queue_env, sim):
    # No consumer running: the first run stays queued, the second request gets it back.
    run_cli(queue_env, "tenants", "add", CONTOSO, "--name", "Contoso")
    first = run_cli(queue_env, "sync", CONTOSO)
    second = run_cli(queue_env, "sync", CONTOSO)
    assert "queued" in first.stdout and "already queued or running" in second.stdout
    assert first.stdout.split("run ")[1].split()[0] == second.stdout.split("run ")[1].split()[0]
    assert store_of(queue_env).runs(CONTOSO).height == 1


def test_killed_consumer_leaves_no_stuck_tenant(queue_env, sim, tmp_path):
    first = Consumer(queue_env, tmp_path / "c1.log").start()
    try:
        add_and_sync(queue_env)
        good = latest_run(queue_env)
        sim.latency = 1.0  # slow enough to kill it mid-sync (a sync then takes several seconds)
        queued = run_cli(queue_env, "sync", CONTOSO)
        assert queued.returncode == 0
        store = store_of(queue_env)
        deadline = time.monotonic() + 30
        while latest_run(queue_env)["status"] != "running":
            assert time.monotonic() < deadline, "sync never started"
            time.sleep(0.05)
        time.sleep(0.5)
        assert latest_run(queue_env)["status"] == "running"
        first.kill()
    finally:
        first.stop()
    sim.latency = 0.0
    killed = latest_run(queue_env)
    assert killed["status"] == "running"  # nobody has noticed yet
    assert store.snapshot_token() == ((CONTOSO, good["run_id"]),)  # nothing half-written visible
    assert store.run_settings([killed["run_id"]]).height == 0
    second = Consumer(queue_env, tmp_path / "c2.log").start()
    try:
        result = add_and_sync(queue_env)
        runs = store.runs(CONTOSO)
        by_id = {r["run_id"]: r for r in runs.iter_rows(named=True)}
        assert by_id[killed["run_id"]]["status"] == "failed"
        assert "Interrupted" in by_id[killed["run_id"]]["error"]
        assert latest_run(queue_env)["status"] == "succeeded", result.stdout
    finally:
        second.stop()


def test_health_reports_consumer_and_exits_nonzero_without_it(queue_env, backend, sim, tmp_path):
    run_cli(queue_env, "tenants", "add", CONTOSO, "--name", "Contoso")
    down = run_cli(queue_env, "health", expect=1)
    report = json.loads(down.stdout)
    assert down.returncode == 1 and report["queue"]["reachable"] and not report["consumer"]["alive"]
    c = Consumer(queue_env, tmp_path / "c.log").start()
    try:
        deadline = time.monotonic() + 30
        while True:
            up = run_cli(queue_env, "health", expect=None)
            if up.returncode == 0:
                break
            assert time.monotonic() < deadline, up.stdout
            time.sleep(0.5)
        report = json.loads(up.stdout)
        assert report["database"]["reachable"] and report["consumer"]["alive"]
        assert report["queue"]["backend"] == backend
        if backend == "sqlite":
            assert (Path(queue_env["TENANTPILOT_DATA_DIR"]) / "huey-queue.db").is_file()
        assert [t["tenant_id"] for t in report["tenants"]] == []  # never synced: no run yet
    finally:
        c.stop()


def test_two_workers_sync_two_tenants_at_once(queue_env, sim, tmp_path):
    # Both queued before the consumer starts: whatever the machine's load, two workers then take
    # them at once (enqueueing after the start raced a busy CI machine and the first sync finished).
    for tid, name in ((CONTOSO, "Contoso"), (FABRIKAM, "Fabrikam")):
        run_cli(queue_env, "tenants", "add", tid, "--name", name)
        assert run_cli(queue_env, "sync", tid).returncode == 0
    sim.latency = 1.0  # each sync then takes several seconds
    c = Consumer(queue_env, tmp_path / "c.log", workers=2).start()
    try:
        deadline = time.monotonic() + 120
        store = store_of(queue_env)
        both_running = False
        while True:
            runs = store.runs()
            both_running |= runs.filter(runs["status"] == "running").height == 2
            if set(runs["status"]) <= {"succeeded", "partial", "failed"}:
                break
            assert time.monotonic() < deadline, runs
            time.sleep(0.05)
        assert set(runs["status"]) == {"succeeded"}, runs
        assert both_running, "with -w 2 the two syncs should overlap"
    finally:
        sim.latency = 0.0
        c.stop()
