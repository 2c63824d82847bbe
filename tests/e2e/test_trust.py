"""Nothing on screen is more confident than what we fetched: partial runs carry the last good rows
forward (marked), a failed sync says so beside the age of the data shown, a queue that lost its
data never blocks a tenant, one tenant has one key, and a failed run names its real cause.

Real parts throughout: the CLI and a real huey_consumer subprocess, Redis or SQLite, MSAL against
the simulator's HTTPS authority, a real DuckDB file; the pages through Streamlit's AppTest.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from apptest import app, texts
from realparts import CONTOSO, FABRIKAM, Consumer, add_and_sync, free_port, latest_run, run_cli, store_of, wait_port

from graphsim.tenants import build_tenant
from tenantpilot.analysis import drift

SETTINGS_CATALOG = "/deviceManagement/configurationPolicies"


def test_403_on_the_second_sync_carries_the_last_rows_forward(env, consumer, sim):
    add_and_sync(env)
    store = store_of(env)
    first = latest_run(env)
    before = store.current_settings([CONTOSO])
    catalog_before = before.filter(pl.col("policy_type") == "settingsCatalog")
    assert catalog_before.height > 0 and first["status"] == "succeeded"
    sim.forbidden_paths = {SETTINGS_CATALOG}
    try:
        result = add_and_sync(env)
    finally:
        sim.forbidden_paths = set()
    second = latest_run(env)
    assert second["status"] == "partial", result.stdout
    now = store.current_settings([CONTOSO])
    catalog_now = now.filter(pl.col("policy_type") == "settingsCatalog")
    # every settings-catalog row is still there, marked as carried from the run that read it
    assert catalog_now.height == catalog_before.height
    assert set(catalog_now["carried_from_run"].to_list()) == {first["run_id"]}
    assert now.filter(pl.col("policy_type") != "settingsCatalog")["carried_from_run"].is_null().all()
    assert second["setting_count"] == now.height == before.height
    types = store.run_types([second["run_id"]])
    carried = types.filter(pl.col("status") == "carried")
    assert carried["type_key"].to_list() == ["configurationPolicies"]
    assert carried["reason"].to_list() == ["forbidden"] and carried["carried_from_run"].to_list() == [first["run_id"]]
    # no false deletion between the two runs
    diff = drift.diff_runs(store.run_settings([first["run_id"]]), store.run_settings([second["run_id"]]))
    assert drift.summary(diff)["removed"] == 0
    # a third sync that is denied again still carries from the run that really read the rows
    sim.forbidden_paths = {SETTINGS_CATALOG}
    try:
        add_and_sync(env)
    finally:
        sim.forbidden_paths = set()
    third = store.current_settings([CONTOSO]).filter(pl.col("policy_type") == "settingsCatalog")
    assert set(third["carried_from_run"].to_list()) == {first["run_id"]}

    # the screens and the export say which data is carried
    label = f"carried forward from run {first['run_id']}"
    explore = app("explore")
    assert label in texts(explore), texts(explore)
    changes = app("changes")
    page = texts(changes)
    assert "not synced in this run" in page and "Settings catalog" in page, page
    metrics = {m.label: m.value for m in changes.metric}
    assert metrics["Settings removed"] == "0" and metrics["Policies deleted"] == "0"  # carried, not deleted
    out = Path(env["TENANTPILOT_DATA_DIR"]) / "export.csv"
    assert run_cli(env, "export", "--tenant", CONTOSO, "--output", str(out)).returncode == 0
    header = out.read_text(encoding="utf-8-sig").splitlines()[0]
    assert "carried_from_run" in header and "data_as_of" in header
    tenants = run_cli(env, "tenants", "list")
    assert "last sync partial (some types carried forward)" in tenants.stdout, tenants.stdout

    # a type that is really gone (its list answers, empty) is removed as before
    tenant = sim.tenants[CONTOSO]
    for policy in tenant.list_policies("configurationPolicies"):
        tenant.delete_policy(policy.id)
    try:
        add_and_sync(env)
        gone = store.current_settings([CONTOSO]).filter(pl.col("policy_type") == "settingsCatalog")
        assert gone.height == 0 and latest_run(env)["status"] == "succeeded"
    finally:  # the session's tenants stay pristine for the other tests
        sim.add_tenant(build_tenant(CONTOSO, "Contoso", n_policies=30, seed=7, variant=0))


def test_failed_sync_says_failed_beside_the_age_of_the_data(env, consumer, sim):
    add_and_sync(env)
    good = latest_run(env)
    secret = sim.client_secret
    sim.client_secret = "rotated-by-someone-else"  # the app's secret no longer works: AADSTS7000215
    try:
        failed = add_and_sync(env, expect=1)
    finally:
        sim.client_secret = secret
    assert "AADSTS" in failed.stderr or "invalid_client" in failed.stderr, failed.stderr
    listed = run_cli(env, "tenants", "list").stdout
    assert "last sync failed" in listed and f"showing run {good['run_id']} from just now" in listed, listed
    page = app()
    table = next(d.value for d in page.dataframe if "last_status" in d.value.columns)
    row = table.iloc[0]
    assert row["last_status"] == "failed" and str(good["run_id"]) in row["shown"]
    assert "AADSTS" in str(row["last_error"]) or "invalid_client" in str(row["last_error"])
    health = json.loads(run_cli(env, "health").stdout)
    tenant = health["tenants"][0]
    assert tenant["status"] == "failed" and tenant["data_run_id"] == good["run_id"]


@pytest.fixture
def own_redis(tmp_path: Path):
    """A redis-server this test may restart (empty), on a port of its own."""
    port = free_port()
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed"

    def start() -> subprocess.Popen:
        proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", str(tmp_path)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(port)
        return proc

    state = {"proc": start()}

    def restart() -> None:
        state["proc"].kill()
        state["proc"].wait(10)
        state["proc"] = start()

    yield f"redis://127.0.0.1:{port}/0", restart
    state["proc"].kill()
    state["proc"].wait(10)


def test_redis_restarted_empty_blocks_no_tenant(env, sim, tmp_path, own_redis):
    url, restart = own_redis
    renv = {**env, "REDIS_URL": url}
    run_cli(renv, "tenants", "add", FABRIKAM, "--name", "Fabrikam")
    c = Consumer(renv, tmp_path / "c.log").start()  # -w 1: Fabrikam waits behind Contoso
    try:
        add_and_sync(renv)  # the consumer is up and the tenant has data
        # slow Graph down only now, and see Contoso running before Fabrikam is queued: a warm-cache sync at
        # 0.4 s per request was over before a CLI process (seconds on a loaded machine) had enqueued Fabrikam
        sim.latency = 2.0
        assert run_cli(renv, "sync", CONTOSO).returncode == 0
        store = store_of(renv)
        deadline = time.monotonic() + 30
        while latest_run(renv)["status"] != "running":
            assert time.monotonic() < deadline, latest_run(renv)
            time.sleep(0.05)
        assert run_cli(renv, "sync", FABRIKAM).returncode == 0
        assert latest_run(renv, FABRIKAM)["status"] == "queued"
        restart()  # Redis loses the queued message of Fabrikam's run
        started = time.monotonic()
        sim.latency = 0.0
        deadline = started + 60
        while True:
            runs = {t: latest_run(renv, t) for t in (CONTOSO, FABRIKAM)}
            if all(r["status"] not in ("queued", "running") for r in runs.values()):
                break
            assert time.monotonic() < deadline, (runs, c.output()[-3000:])
            time.sleep(0.5)
        assert runs[FABRIKAM]["status"] == "succeeded", runs[FABRIKAM]
        # and both tenants sync again, within the same minute
        for tenant in (CONTOSO, FABRIKAM):
            result = run_cli(renv, "sync", tenant, "--wait", "--timeout", "60", timeout=90)
            assert result.returncode == 0, result.stdout + result.stderr
        assert time.monotonic() - started < 60
        assert not json.loads(run_cli(renv, "health").stdout)["stuck_runs"]
        assert store.runs(FABRIKAM).height == 2
    finally:
        sim.latency = 0.0
        c.stop()


def test_replaced_sqlite_queue_file_blocks_no_tenant(env, sim, tmp_path):
    senv = {k: v for k, v in env.items() if k != "REDIS_URL"}
    run_cli(senv, "tenants", "add", CONTOSO, "--name", "Contoso")
    assert run_cli(senv, "sync", CONTOSO).returncode == 0  # queued; no consumer yet
    queue_file = Path(senv["TENANTPILOT_DATA_DIR"]) / "huey-queue.db"
    assert queue_file.is_file()
    queue_file.unlink()  # an operator "cleans up" the data folder
    time.sleep(2.5)  # past the grace period in which a just-queued run may not have its message yet
    stuck = json.loads(run_cli(senv, "health", expect=1).stdout)
    assert stuck["stuck_runs"] and "queue message is gone" in stuck["stuck_runs"][0]["why"]
    assert not stuck["healthy"]
    c = Consumer(senv, tmp_path / "c.log").start()
    try:
        deadline = time.monotonic() + 60
        while latest_run(senv)["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, c.output()[-3000:]
            time.sleep(0.3)
        assert latest_run(senv)["status"] == "succeeded"
    finally:
        c.stop()


def test_a_tenant_added_by_domain_and_by_guid_is_one_tenant(env, consumer, sim):
    domain = sim.tenants[CONTOSO].domain
    add_and_sync(env, tenant=domain)  # the first sync learns the GUID from the token's tid claim
    listed = json.loads(run_cli(env, "tenants", "list", "--json").stdout)
    assert [t["tenant_id"] for t in listed] == [CONTOSO] and listed[0]["aliases"] == [domain]
    again = run_cli(env, "tenants", "add", domain.upper(), "--name", "Contoso again")
    assert again.returncode == 0 and "nothing added" in again.stdout, again.stdout
    # the other order: a GUID tenant first, then its domain added as a new tenant and synced
    fab_domain = sim.tenants[FABRIKAM].domain
    add_and_sync(env, tenant=FABRIKAM, name="Fabrikam")
    add_and_sync(env, tenant=fab_domain, name="Fabrikam (domain)")
    listed = json.loads(run_cli(env, "tenants", "list", "--json").stdout)
    assert sorted(t["tenant_id"] for t in listed) == sorted([CONTOSO, FABRIKAM])
    store = store_of(env)
    assert store.runs(FABRIKAM).height == 2 and store.runs(fab_domain).height == 2  # the alias names it too
    assert run_cli(env, "sync", fab_domain).returncode == 0  # still reachable by its domain


def test_write_lock_held_too_long_fails_the_run_with_that_cause(env, sim, tmp_path):
    lenv = {**env, "TENANTPILOT_DB_LOCK_SECONDS": "2"}
    c = Consumer(lenv, tmp_path / "c.log").start()
    try:
        add_and_sync(lenv)
        sim.latency = 2.0  # the fetch takes many seconds: the lock is surely taken while it runs
        assert run_cli(lenv, "sync", CONTOSO).returncode == 0
        deadline = time.monotonic() + 30
        while latest_run(lenv)["status"] != "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # another program holds the database for 15 s, far longer than the worker's 2 s budget
        holder = subprocess.Popen([sys.executable, "-c", (
            "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); print('locked', flush=True); "
            "time.sleep(float(sys.argv[2]))"), lenv["TENANTPILOT_DB"], "15"], stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline().strip() == "locked"
        sim.latency = 0.0
        holder.wait(30)
        deadline = time.monotonic() + 60
        while latest_run(lenv)["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, c.output()[-3000:]
            run_cli(lenv, "health", expect=None)  # any reader may do the repair; the consumer does it every 10 s
            time.sleep(0.5)
        run = latest_run(lenv)
        assert run["status"] == "failed", run
        assert "stayed locked by another process" in run["error"], run["error"]
        assert "Interrupted" not in run["error"]
    finally:
        sim.latency = 0.0
        c.stop()


def test_full_disk_fails_the_run_naming_the_disk(env, sim, tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)]).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        denv = {**env, "TENANTPILOT_DATA_DIR": str(mount / "data"), "TENANTPILOT_DB": str(mount / "data" / "t.duckdb")}
        c = Consumer(denv, tmp_path / "c.log").start()
        try:
            add_and_sync(denv)
            filler = mount / "filler"
            with open(filler, "wb") as f:  # fill the disk, leaving a few KB
                try:
                    while True:
                        f.write(b"\0" * 65536)
                except OSError:
                    pass
            os.truncate(filler, max(0, filler.stat().st_size - 32768))
            result = run_cli(denv, "sync", CONTOSO)
            assert result.returncode == 0, result.stderr
            time.sleep(3)
            filler.unlink()  # room again, so the failure can be written down
            deadline = time.monotonic() + 60
            while latest_run(denv)["status"] in ("queued", "running"):
                assert time.monotonic() < deadline, c.output()[-3000:]
                run_cli(denv, "health", expect=None)
                time.sleep(0.5)
            run = latest_run(denv)
            assert run["status"] == "failed", run
            assert "No space left on device" in run["error"], run["error"]
            assert "cannot rollback" not in run["error"].split("(the rollback failed")[0]
        finally:
            c.stop()
    finally:
        subprocess.run(["umount", "-l", str(mount)])
