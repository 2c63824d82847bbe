"""The writer's side of fetching consumers: hand a sync out to one, and write the runs they hand back.

Only the consumer beside the database (TENANTPILOT_ROLE=all, on Redis) does this. DuckDB lets one process
write the file, so writing stays single: fetching consumers on other machines add Graph and flattening
capacity, and this consumer keeps the run's state (queued -> running -> done) in the database as for any sync.

* **Hand out** (`delegate`, called by the sync task before it would sync itself): only while a fetching
  consumer has an idle worker (tenantpilot/ops/relay.py counts their heartbeats against the fetch queue's
  length) and only tenants known by their GUID (a tenant added by a domain is resolved to its GUID by its
  first sync, a database write). The run is started, a random token made for it, and its progress says
  "waiting for a fetching consumer" with a lease of FETCH_WAIT_S: the repair fails it (interrupted) if no
  fetcher took it by then, as any run whose worker is gone.
  When no fetcher is alive any more, the runs still on the fetch queue are failed at once (`reclaim`).
* **Write back** (`Receiver`, one thread per consumer, like the alert outbox's): takes each handed-over run
  from Redis as it arrives (never behind the queue's other syncs), checks it (tenantpilot/sync/handoff.py)
  and writes it with the same code as a sync here (tenantpilot/sync/run.py); a run refused fails with the
  reason. The alert hook runs after it as after any sync.
"""

from __future__ import annotations

import hmac
import json
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from huey import Huey

from tenantpilot import logs
from tenantpilot.config import Settings
from tenantpilot.ops import fetching, progress, relay
from tenantpilot.store import Store, StoreError, open_store
from tenantpilot.sync.handoff import HandoffError, allowed_name, check_files, clip_error, parse_meta, read_audit
from tenantpilot.sync.run import read_cached, save_audit, save_gathered
from tenantpilot.sync.snapshot import parts_dir
from tenantpilot.tenants import is_guid

log = logging.getLogger("tenantpilot.handback")
MAX_NAMES_BYTES = 1024 * 1024  # cached names in the fetch message; past that the fetcher asks Graph for them
REFUSED = "The parts a fetching consumer handed over were refused: "
NO_FETCHER = "No fetching consumer took this sync: they all stopped. Sync again (this consumer syncs it itself)."
RECLAIM_EVERY_S = 10.0


def delegate(run_id: int, cfg: Settings, huey: Huey, store: Store | None = None) -> bool:
    """Hand queued run `run_id` to a fetching consumer if one is idle; True when this consumer is done with
    it (handed out, or not queued any more), False when it should sync the run itself."""
    if cfg.role != "all" or not cfg.redis_url:
        return False
    r = relay.client(cfg)
    try:
        free = relay.free_fetch_workers(r, cfg.stale_after_s)
        if not free or free <= fetching.fetch_huey(cfg).pending_count():
            return False
    except redis.RedisError:
        return False  # the sync itself then says what is wrong with Redis
    store = store or open_store(cfg)
    try:
        run = store.get_run(run_id)
        if run is None or run["status"] != "queued" or not is_guid(str(run["tenant_id"])):
            return False  # not ours to hand out: the sync path skips it or resolves the tenant's GUID
        if store.start_run(run_id) is None:
            logs.log(log, logging.INFO, "run skipped", run_id=run_id, reason="not queued any more")
            return True
    except StoreError:
        return False  # still queued: the sync path reports the store's error on the run
    tenant_id = str(run["tenant_id"])
    try:  # the run is ours now: whatever goes wrong ends it with the cause
        cached = read_cached(store, tenant_id)
        names: dict[str, dict[str, str]] = cached.names
        if len(json.dumps(names)) > MAX_NAMES_BYTES:
            names = {}
        token = relay.new_token(r, run_id, fetching.FETCH_WAIT_S + cfg.sync_deadline_s + relay.PARTS_TTL_S)
        huey.put(progress.run_key(run_id), {
            "phase": fetching.WAITING_FOR_FETCHER, "done": 0, "total": None, "host": progress.HOST, "pid": None,
            "ts": time.time(), "lease_until": time.time() + fetching.FETCH_WAIT_S})
        fetching.send(cfg, run_id, fetching.context_for(tenant_id, token, cached.since, names))
    except (redis.RedisError, StoreError) as exc:
        error = logs.redact(f"Could not hand the sync to a fetching consumer: {exc}")
        logs.log(log, logging.ERROR, "job failed", run_id=run_id, tenant=tenant_id, error=error)
        try:
            store.fail_run(run_id, error)
        except StoreError:  # the repair fails it (interrupted) once its start is stale
            pass
        return True
    logs.log(log, logging.INFO, "handed to a fetching consumer", run_id=run_id, tenant=tenant_id)
    return True


def receive(raw: bytes, cfg: Settings, store: Store, r: redis.Redis, huey: Huey,
            after: Callable[[int], None] | None = None) -> str:
    """Write (or refuse) one handed-over run. Returns ignored | gone | failed | refused | succeeded | partial."""
    try:
        item = relay.parse_item(raw)
    except relay.RelayError as exc:
        logs.log(log, logging.WARNING, "ignored an entry in the handed-over list", error=str(exc))
        return "ignored"
    run_id, token = int(item["run_id"]), str(item["token"])
    expected = relay.token_of(r, run_id)
    if expected is None or not hmac.compare_digest(expected.encode(), token.encode()):
        logs.log(log, logging.WARNING, "ignored a handed-over run without its token", run_id=run_id)
        return "ignored"
    try:
        return _write(item, run_id, token, cfg, store, r, huey, after)
    finally:
        relay.drop(r, run_id, token)


def _write(item: dict[str, Any], run_id: int, token: str, cfg: Settings, store: Store, r: redis.Redis, huey: Huey,
           after: Callable[[int], None] | None) -> str:
    run = store.get_run(run_id)
    if run is None or run["status"] != "running":
        logs.log(log, logging.INFO, "handed-over run dropped", run_id=run_id,
                 reason=f"the run is {run['status'] if run else 'gone'}")
        return "gone"
    tenant_id = str(run["tenant_id"])
    fields: dict[str, Any] = {"run_id": run_id, "tenant": tenant_id}
    started = time.monotonic()
    keep_beat = False  # True: the failure could not be written; the repair reads its cause from the beat
    try:
        if item["outcome"] == "failed":
            requests = item.get("requests")
            store.fail_run(run_id, clip_error(item.get("error")),
                           request_count=requests if isinstance(requests, int) and requests >= 0 else None)
            return "failed"
        with tempfile.TemporaryDirectory(prefix=f"run-{run_id}-", dir=parts_dir(cfg)) as tmp:
            directory, names = Path(tmp), [b.name for b in item["blobs"]]
            try:
                relay.download(r, run_id, token, _checked(item["blobs"]), directory, cfg.handoff_max_mb * 1_000_000)
                parts = check_files(directory, names)
                meta = parse_meta((directory / "meta.json").read_bytes(), run_id=run_id, tenant_id=tenant_id)
            except (relay.RelayError, HandoffError) as exc:
                error = REFUSED + str(exc)
                logs.log(log, logging.ERROR, "handed-over run refused", **fields, error=error)
                store.fail_run(run_id, error)
                return "refused"
            status, written = save_gathered(store, run_id, tenant_id, meta.definitions, set(meta.not_in_graph),
                                            meta.names, parts, meta.outcomes, meta.requests, meta.warnings,
                                            meta.type_of)
            save_audit(store, tenant_id, run_id, read_audit(directory, names), fields)
        logs.log(log, logging.INFO, "job completed", **fields, status=status, handed_over=True,
                 duration_s=round(time.monotonic() - started, 3), policies=written["policies"],
                 settings=written["settings"], carried_settings=written["carried_settings"],
                 requests=meta.requests, warnings=meta.warnings)
        return status
    except (StoreError, OSError) as exc:  # locked past its budget, a full disk
        error = logs.redact(str(exc) if isinstance(exc, StoreError) else f"{type(exc).__name__}: {exc}")
        logs.log(log, logging.ERROR, "job failed", **fields, error=error, handed_over=True)
        try:
            store.fail_run(run_id, error)
        except StoreError:  # the repair fails it with this cause, read from its progress
            huey.put(progress.run_key(run_id), {"phase": "failed", "error": error, "ts": time.time(),
                                                "host": progress.HOST, "pid": None})
            keep_beat = True
        return "failed"
    finally:
        if not keep_beat:
            huey.get(progress.run_key(run_id))  # the run is done: no progress entry left
        if after is not None:
            after(run_id)


def reclaim(cfg: Settings, store: Store, huey: Huey) -> list[int]:
    """When no fetching consumer is alive, the runs still waiting on the fetch queue are failed at once (the
    tenant can sync again) instead of at the end of their lease. Returns their ids."""
    fetch_queue = fetching.fetch_huey(cfg)
    if relay.fetchers(relay.client(cfg), cfg.stale_after_s) or not fetch_queue.pending_count():
        return []
    failed: list[int] = []
    while (task := fetch_queue.dequeue()) is not None:
        if not task.name.endswith("fetch_task") or not task.args:
            continue
        run_id = int(task.args[0])
        run = store.get_run(run_id)
        if run is not None and run["status"] == "running":
            store.fail_run(run_id, NO_FETCHER)
            huey.get(progress.run_key(run_id))
            failed.append(run_id)
    if failed:
        logs.log(log, logging.WARNING, "runs handed out while no fetching consumer is alive failed", run_ids=failed)
    return failed


def _checked(blobs: list[relay.Blob]) -> list[relay.Blob]:
    """The files' names are checked before any is written to disk."""
    for blob in blobs:
        if not allowed_name(blob.name):
            raise HandoffError(f"a file named {blob.name[:80]!r} is not part of a handed-over run")
    return blobs


class Receiver:
    """The writer's thread that writes handed-over runs as they arrive (one per consumer process)."""

    def __init__(self, cfg: Settings, huey: Huey, after: Callable[[int], None] | None = None) -> None:
        self.cfg, self.huey, self.after = cfg, huey, after
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="handback-writer", daemon=True)

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        r = relay.client(self.cfg)
        resumed, reclaimed = False, time.monotonic()
        while not self._stop.is_set():
            try:
                if not resumed:
                    relay.resume_writing(r)
                    resumed = True
                if time.monotonic() - reclaimed > RECLAIM_EVERY_S:
                    reclaimed = time.monotonic()
                    reclaim(self.cfg, open_store(self.cfg), self.huey)
                raw = relay.next_ready(r, 2.0)
                if raw is None:
                    continue
                try:
                    receive(raw, self.cfg, open_store(self.cfg), r, self.huey, self.after)
                finally:
                    relay.done(r, raw)
            except (redis.RedisError, StoreError) as exc:
                logs.log(log, logging.WARNING, "handed-over runs: Redis or the database unreachable; trying again",
                         error=logs.redact(str(exc)))
                self._stop.wait(2.0)
            except Exception:  # noqa: BLE001 - the writer thread must outlive one bad run; it is logged
                logs.log(log, logging.ERROR, "handed-over run could not be written", exc_info=True)
