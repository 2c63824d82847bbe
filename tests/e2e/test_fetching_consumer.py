"""A fetching consumer (TENANTPILOT_ROLE=fetch) takes sync work without the database; the writer writes it.

Two real `huey_consumer` processes on a real Redis: the writer beside the DuckDB file, and a fetcher started
in another working directory whose settings name no database it can reach (its data folder is its own; the
test checks it never makes a database file). Redis only: a fetcher stands for another machine, which cannot
share the writer's SQLite queue file (config refuses TENANTPILOT_ROLE=fetch without REDIS_URL).

The handed-over files are then checked as hostile input: a run handed back with the wrong token, too much data,
a part of another shape, a file outside the set or another tenant's facts fails (or is ignored) alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from realparts import CONTOSO, FABRIKAM, ROOT, Consumer, add_and_sync, latest_run, run_cli, store_of

from tenantpilot.config import settings
from tenantpilot.ops import fetching, handback, progress, relay
from tenantpilot.ops.queue import get_huey
from tenantpilot.sync import handoff


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def fetcher_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The fetcher's settings: the same Redis, Graph and credentials; its own folder; no database named."""
    own = tmp_path / "elsewhere"
    own.mkdir()
    values = {k: v for k, v in env.items() if k != "TENANTPILOT_DB"}
    values.update({"TENANTPILOT_ROLE": "fetch", "TENANTPILOT_DATA_DIR": str(own / "data"),
                   "TENANTPILOT_LOG_DIR": str(own / "logs"), "PYTHONPATH": str(ROOT)})
    return values


def start_fetcher(fetcher_env: dict[str, str], tmp_path: Path, name: str = "fetcher") -> Consumer:
    fetcher = Consumer(fetcher_env, tmp_path / f"{name}.log", cwd=tmp_path / "elsewhere").start()
    r = relay.client(settings())
    wait_for(lambda: relay.free_fetch_workers(r, 30) >= 1 or fetcher.proc.poll() is not None, "the fetcher's beat")
    assert fetcher.proc.poll() is None, fetcher.output()
    return fetcher


def current_rows(env: dict[str, str]) -> pl.DataFrame:
    return store_of(env).current_settings([CONTOSO]).sort("policy_id", "setting_key")


def test_a_sync_taken_by_a_fetching_consumer_lands_in_the_database(env, fetcher_env, tmp_path):
    writer = Consumer(env, tmp_path / "writer.log").start()
    fetcher = start_fetcher(fetcher_env, tmp_path)
    try:
        health = json.loads(run_cli(env, "health", expect=None).stdout)
        assert health["fetchers"] == [{"consumer": f"{progress.HOST}:{fetcher.proc.pid}", "workers": 1, "busy": 0}]
        add_and_sync(env)
        run = latest_run(env)
        assert run["status"] == "succeeded", run
        assert f'"run_id": {run["run_id"]}' in writer.output()
        assert "handed to a fetching consumer" in writer.output()
        assert "fetch handed over" in fetcher.output() and "fetch handed over" not in writer.output()
        fetched = current_rows(env)
        assert fetched.height > 100
        fetcher.stop()
        # the same tenant synced by the writer itself gives the very same rows
        wait_for(lambda: relay.free_fetch_workers(relay.client(settings()), 4) == 0, "the fetcher's beat to end")
        run_cli(env, "sync", CONTOSO, "--wait", "--timeout", "120", timeout=150)
        second = latest_run(env)
        assert second["status"] == "succeeded" and second["run_id"] != run["run_id"]
        assert writer.output().count("handed to a fetching consumer") == 1
        again = current_rows(env)
        differ = [c for c in fetched.columns if not again[c].equals(fetched[c])]
        assert differ == ["run_id", "synced_at"], differ  # every setting's content is the same
    finally:
        fetcher.stop()
        writer.stop()
    assert not list((tmp_path / "elsewhere").rglob("*.duckdb*")), "the fetcher made a database file"
    assert not list(relay.client(settings()).scan_iter(match=f"{relay.PREFIX}:blob:*")), "parts left in Redis"


def test_a_fetcher_killed_mid_run_blocks_no_tenant_and_loses_nothing(env, fetcher_env, tmp_path, sim):
    writer = Consumer(env, tmp_path / "writer.log").start()
    fetcher = start_fetcher(fetcher_env, tmp_path)
    cfg = settings()
    try:
        add_and_sync(env)
        good = latest_run(env)
        sim.latency = 1.0  # a fetch of several seconds: killed in the middle
        run_cli(env, "sync", CONTOSO)
        run_id = latest_run(env)["run_id"]
        beat = wait_for(lambda: (b := progress.run_progress(get_huey(cfg), run_id)) and b.get("pid") == fetcher.proc.pid
                        and b, "the fetcher to take the run")
        assert beat["host"] == progress.HOST
        fetcher.kill()
        sim.latency = 0.0
        store = store_of(env)
        assert store.snapshot_token() == ((CONTOSO, good["run_id"]),)  # nothing half-written visible
        killed = wait_for(lambda: (row := store.get_run(run_id)) and row["status"] != "running" and row,
                          "the repair to end the killed run")
        assert killed["status"] == "failed" and "Interrupted" in killed["error"]
        assert store.run_settings([run_id]).height == 0
        # the tenant syncs again at once (no fetcher alive: the writer syncs it itself) ...
        run_cli(env, "sync", CONTOSO, "--wait", "--timeout", "120", timeout=150)
        assert latest_run(env)["status"] == "succeeded"
        # ... and through a new fetcher, which clears what the killed one left on its disk
        again = start_fetcher(fetcher_env, tmp_path, "fetcher2")
        try:
            run_cli(env, "sync", CONTOSO, "--wait", "--timeout", "120", timeout=150)
            assert latest_run(env)["status"] == "succeeded"
            assert "fetch handed over" in again.output()
        finally:
            again.stop()
        assert not list((tmp_path / "elsewhere" / "data" / "fetch-parts").glob("run-*"))
    finally:
        sim.latency = 0.0
        fetcher.stop()
        writer.stop()


# --- the writer's checks of what is handed over (in this process: real Redis, DuckDB, Graph simulator) ----
@pytest.fixture
def handed(env) -> Iterator[Callable[[str], tuple[int, bytes]]]:
    """Hand a run of a tenant to a (pretend-idle) fetcher and fetch it here; yields (run_id, ready entry)."""
    cfg = settings()
    r = relay.client(cfg)
    for tenant, name in ((CONTOSO, "Contoso"), (FABRIKAM, "Fabrikam")):
        run_cli(env, "tenants", "add", tenant, "--name", name)

    def hand(tenant: str) -> tuple[int, bytes]:
        store = store_of(env)
        run_id, _ = store.create_run_unless_active(tenant, trigger="manual")
        relay.beat_fetcher(r, "pretend:1", 1, 0)
        assert handback.delegate(run_id, cfg, get_huey(cfg), store)
        task = fetching.fetch_huey(cfg).dequeue()
        assert task.args[0] == run_id
        assert fetching.fetch_job(run_id, task.args[1], cfg) == "handed over"
        raw = r.lpop(relay.READY)
        assert isinstance(raw, bytes)
        return run_id, raw

    yield hand
    relay.forget_fetcher(r, "pretend:1")


def _reupload(r, raw: bytes, change: Callable[[Path, dict], None], tmp: Path) -> bytes:
    """The entry with its files downloaded, changed by `change(folder, item)`, and uploaded again."""
    item = relay.parse_item(raw)
    relay.download(r, item["run_id"], item["token"], item["blobs"], tmp, 10**9)
    change(tmp, item)
    names = sorted(p.name for p in tmp.iterdir())
    blobs = relay.upload(r, item["run_id"], item["token"], tmp, names)
    return json.dumps({**item, "blobs": [vars(b) for b in blobs]}).encode()


def _other_tenant(folder: Path, item: dict) -> None:
    meta = json.loads((folder / handoff.META).read_text())
    (folder / handoff.META).write_text(json.dumps({**meta, "tenant_id": FABRIKAM}))


def _wrong_shape(folder: Path, item: dict) -> None:
    part = next(folder.glob("settings-*.parquet"))
    pl.DataFrame({"policy_id": ["x"], "value": [1]}).write_parquet(part)


def _outside_name(folder: Path, item: dict) -> None:
    (folder / "..%2f..%2fetc%2fpasswd").write_text("root")


def _no_type_read(folder: Path, item: dict) -> None:
    meta = json.loads((folder / handoff.META).read_text())
    meta["outcomes"] = [{**o, "read": False} for o in meta["outcomes"]]
    (folder / handoff.META).write_text(json.dumps(meta))


@pytest.mark.parametrize(("change", "max_mb", "error"), [
    (None, 512, None),
    (None, 1 / 1e6, "more than TENANTPILOT_HANDOFF_MAX_MB"),  # the byte limit as a fraction of a MB
    (_other_tenant, 512, "belongs to another run or tenant"),
    (_wrong_shape, 512, "is not a Parquet file with the columns and types of its table"),
    (_outside_name, 512, "is not part of a handed-over run"),
    (_no_type_read, 512, "says no policy type was read"),
], ids=["good", "oversized", "other-tenant", "wrong-shape", "outside-name", "nothing-read"])
def test_the_writer_checks_what_a_fetcher_hands_over(env, handed, tmp_path, change, max_mb, error):
    cfg = settings()
    r = relay.client(cfg)
    bystander, _ = handed(FABRIKAM)  # another tenant, written first: nothing below may touch it
    store = store_of(env)
    run_id, raw = handed(CONTOSO)
    if change is not None:
        (tmp_path / "files").mkdir()
        raw = _reupload(r, raw, change, tmp_path / "files")
    strict = replace(cfg, handoff_max_mb=max_mb)  # type: ignore[arg-type]
    outcome = handback.receive(raw, strict, store, r, get_huey(cfg))
    run = store.get_run(run_id)
    if error is None:
        assert outcome == "succeeded" and run["status"] == "succeeded"
        assert store.run_settings([run_id]).height > 100
    else:
        assert outcome == "refused" and run["status"] == "failed", (outcome, run)
        assert run["error"].startswith(handback.REFUSED) and error in run["error"], run["error"]
        assert store.run_settings([run_id]).height == 0
    assert store.get_run(bystander)["status"] == "running"  # handed out, not yet written: untouched
    assert not list(r.scan_iter(match=f"{relay.PREFIX}:blob:{run_id}:*"))
    assert progress.run_progress(get_huey(cfg), run_id) is None


def test_an_entry_without_its_runs_token_is_ignored(env, handed):
    cfg = settings()
    r = relay.client(cfg)
    store = store_of(env)
    run_id, raw = handed(CONTOSO)
    item = json.loads(raw)
    forged = json.dumps({**item, "token": "0" * 32}).encode()
    assert handback.receive(forged, cfg, store, r, get_huey(cfg)) == "ignored"
    assert store.get_run(run_id)["status"] == "running"
    for junk in (b"not json", b"[]", b'{"run_id": true, "token": "x", "outcome": "parts"}', b"x" * 300_000):
        assert handback.receive(junk, cfg, store, r, get_huey(cfg)) == "ignored"
    assert handback.receive(raw, cfg, store, r, get_huey(cfg)) == "succeeded"


def test_a_run_graph_refuses_fails_with_graphs_cause_through_the_writer(env, handed, sim):
    """The fetcher cannot write the failure: it hands it over, and the writer fails the run with its cause."""
    cfg = settings()
    r = relay.client(cfg)
    store = store_of(env)
    run_id, _ = store.create_run_unless_active(CONTOSO, trigger="manual")
    relay.beat_fetcher(r, "pretend:1", 1, 0)
    assert handback.delegate(run_id, cfg, get_huey(cfg), store)
    task = fetching.fetch_huey(cfg).dequeue()
    sim.forbidden_paths = {"/deviceManagement", "/deviceAppManagement", "/identity"}  # every type refused
    try:
        assert fetching.fetch_job(run_id, task.args[1], cfg) == "failed"
    finally:
        sim.forbidden_paths = set()
    raw = r.lpop(relay.READY)
    assert isinstance(raw, bytes) and json.loads(raw)["outcome"] == "failed"
    assert handback.receive(raw, cfg, store, r, get_huey(cfg)) == "failed"
    run = store.get_run(run_id)
    assert run["status"] == "failed" and run["error"].startswith("Permission denied by Graph"), run
    assert progress.run_progress(get_huey(cfg), run_id) is None


def test_a_writer_stopped_while_writing_finds_the_run_again(env, handed):
    """An entry left in `writing` (the writer was killed mid-write) goes back to `ready` when a writer starts."""
    cfg = settings()
    r = relay.client(cfg)
    run_id, raw = handed(CONTOSO)
    r.rpush(relay.WRITING, raw)  # as if a writer had taken it and died
    written: list[int] = []
    receiver = handback.Receiver(cfg, get_huey(cfg), written.append).start()
    try:
        wait_for(lambda: written, "the writer thread to write the run")
    finally:
        receiver.stop()
    assert written == [run_id]
    assert store_of(env).get_run(run_id)["status"] == "succeeded"
    assert r.llen(relay.WRITING) == 0 and r.llen(relay.READY) == 0


def test_runs_handed_out_when_every_fetcher_stopped_fail_at_once(env, handed):
    cfg = settings()
    r = relay.client(cfg)
    store = store_of(env)
    run_id, _ = store.create_run_unless_active(CONTOSO, trigger="manual")
    relay.beat_fetcher(r, "pretend:1", 1, 0)
    assert handback.delegate(run_id, cfg, get_huey(cfg), store)
    assert handback.reclaim(cfg, store, get_huey(cfg)) == []  # a fetcher is alive: it may still take it
    relay.forget_fetcher(r, "pretend:1")
    assert handback.reclaim(cfg, store, get_huey(cfg)) == [run_id]
    run = store.get_run(run_id)
    assert run["status"] == "failed" and run["error"] == handback.NO_FETCHER
    assert fetching.fetch_huey(cfg).pending_count() == 0
    assert store.create_run_unless_active(CONTOSO, trigger="manual")[1]  # the tenant can sync again



def sim_secrets(sim, tenant: str) -> list[str]:
    """The secret values the simulator serves for a tenant (SecretSettingValue), as Graph would send them."""
    found: list[str] = []

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            if str(x.get("@odata.type", "")).endswith("SecretSettingValue") and x.get("value"):
                found.append(str(x["value"]))
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    for policy in sim.tenant(tenant).all_policies():
        walk(policy.resource)
        walk(policy.settings)
    return found


def test_no_secret_travels_in_what_a_fetcher_hands_over(env, handed, tmp_path, sim):
    """Graph's secret values reach neither the parts nor meta.json (the one secret rule ran before)."""
    secrets = sim_secrets(sim, CONTOSO)
    assert secrets  # the tenant has secrets: the check below means something
    r = relay.client(settings())
    _, raw = handed(CONTOSO)
    item = relay.parse_item(raw)
    relay.download(r, item["run_id"], item["token"], item["blobs"], tmp_path, 10**9)
    texts = [(tmp_path / handoff.META).read_text()]
    secret_rows = 0
    for part in tmp_path.glob("*.parquet"):
        frame = pl.read_parquet(part)
        texts += [str(v) for c in frame.columns if frame[c].dtype == pl.String for v in frame[c].to_list()]
        if "is_secret" in frame.columns:
            secret_rows += int(frame["is_secret"].sum())
    assert secret_rows > 0
    assert not [s for s in secrets if any(s in t for t in texts)]
