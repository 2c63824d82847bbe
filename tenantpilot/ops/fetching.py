"""The fetching consumer (TENANTPILOT_ROLE=fetch): takes sync work from Redis on a machine without the database.

`huey_consumer huey_worker.huey` with TENANTPILOT_ROLE=fetch consumes the fetch queue (`<queue>.fetch`, Redis
only) instead of the sync queue. The writer (the consumer beside the database, tenantpilot/ops/handback.py)
starts a run and puts `fetch_task(run_id, context)` there only while a fetching consumer has an idle worker;
the context holds the little the writer knows that a sync reads before asking Graph (the tenant, when its last
good sync started, its cached directory names). The fetcher then runs the same gather and flatten as a
sync beside the database (tenantpilot/sync/run.py), uploads the files (tenantpilot/ops/relay.py) and hands the
run over; its progress is published in the sync queue's storage as any sync's, so the Sync page shows it.

Setting definitions (the same in every tenant) come from this process's own cache, filled from Graph only
(never from an import), so a fetcher asks Graph for them once per process as a first sync does, not once per
run; shipping the writer's whole definition cache with every run would cost more than that.

A fetcher killed mid-run stops beating: the writer's repair fails the run (interrupted) as for any sync whose
worker died, its uploaded chunks expire, and nothing of it was written. Its local files are in
`<data>/fetch-parts/` and removed when it starts again.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import redis
from huey import RedisHuey

from tenantpilot import logs
from tenantpilot.config import QUEUE_NAME, Settings, settings
from tenantpilot.graph.errors import GraphError
from tenantpilot.ops import progress, relay
from tenantpilot.sync.handoff import AUDIT, META, Meta
from tenantpilot.sync.run import Cached, SyncError, flatten_gathered, gather, graph_client, type_of
from tenantpilot.tenants import tenant_id_from_token

log = logging.getLogger("tenantpilot.fetching")
FETCH_QUEUE = f"{QUEUE_NAME}.fetch"
WAITING_FOR_FETCHER = "waiting for a fetching consumer"
WAITING_FOR_WRITER = "handed over; waiting for the writer"
FETCH_WAIT_S = 600.0  # a run handed out waits this long for a fetcher to take it, then it is failed (stale)
BEAT_S = 2.0

_instances: dict[str, RedisHuey] = {}
_lock = threading.Lock()


def fetch_huey(cfg: Settings) -> RedisHuey:
    """The fetch queue's Huey instance (the fetcher consumes it; the writer only puts into it)."""
    assert cfg.redis_url, "TENANTPILOT_ROLE=fetch requires REDIS_URL (config.py refuses it otherwise)"
    with _lock:
        if cfg.redis_url not in _instances:
            instance = RedisHuey(FETCH_QUEUE, url=cfg.redis_url, results=False)
            _register(instance)
            _instances[cfg.redis_url] = instance
        return _instances[cfg.redis_url]


def send(cfg: Settings, run_id: int, context: dict[str, Any]) -> None:
    fetch_huey(cfg)  # registers the task
    _fetch_task(run_id, context)


# --- this process's state: capacity and the definitions Graph gave it --------------------------------
class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.workers = 0  # worker threads started (huey calls on_startup once in each)
        self.busy = 0
        self.definitions: dict[str, dict] = {}
        self.unknown: set[str] = set()
        self.beating = False


_state = _State()
_fetch_task: Any = None


def _register(instance: RedisHuey) -> None:
    global _fetch_task

    @instance.task(retries=0, context=False, name="fetch_task")
    def fetch_task(run_id: int, context: dict[str, Any]) -> None:
        cfg = settings()
        _busy(cfg, +1)  # told at once: a writer hands out only what idle workers can take
        try:
            fetch_job(run_id, context, cfg)
        finally:
            _busy(cfg, -1)

    @instance.on_startup()
    def _on_startup() -> None:
        cfg = settings()
        logs.configure(cfg.log_dir)
        with _state.lock:
            _state.workers += 1
            first, _state.beating = not _state.beating, True
        if first:
            shutil.rmtree(_local_parts(cfg), ignore_errors=True)  # a killed fetcher's leftovers
            threading.Thread(target=_beat, args=(cfg,), name="fetcher-heartbeat", daemon=True).start()
            logs.log(log, logging.INFO, "fetching consumer started", queue=FETCH_QUEUE)

    @instance.on_shutdown()
    def _on_shutdown() -> None:
        relay.forget_fetcher(relay.client(settings()), _who())

    _fetch_task = fetch_task


def _who() -> str:
    return f"{progress.HOST}:{os.getpid()}"


def _busy(cfg: Settings, change: int) -> None:
    with _state.lock:
        _state.busy += change
        workers, busy = _state.workers, _state.busy
    try:
        relay.beat_fetcher(relay.client(cfg), _who(), workers, busy)
    except redis.RedisError:
        pass  # the next beat tells it


def _beat(cfg: Settings) -> None:
    """Tell writers how many idle workers this fetcher has (every BEAT_S)."""
    r = relay.client(cfg)
    while True:
        try:
            with _state.lock:
                workers, busy = _state.workers, _state.busy
            relay.beat_fetcher(r, _who(), workers, busy)
        except redis.RedisError:  # Redis is down: writers then stop handing out; try again
            pass
        time.sleep(BEAT_S)


def _local_parts(cfg: Settings) -> Path:
    return cfg.data_dir / "fetch-parts"


# --- one run -----------------------------------------------------------------------------------------------
def context_for(tenant_id: str, token: str, since: datetime | None, names: dict[str, dict[str, str]]) -> dict:
    return {"tenant_id": tenant_id, "token": token, "since": since.isoformat() if since else None, "names": names}


def fetch_job(run_id: int, context: dict[str, Any], cfg: Settings) -> str:
    """Fetch and flatten run `run_id` and hand it over; returns what happened (handed over | failed | gone)."""
    from tenantpilot.ops.queue import get_huey  # the sync queue's storage holds every run's progress

    huey = get_huey(cfg)
    beat = progress.run_progress(huey, run_id)
    fields = {"run_id": run_id, "tenant": context["tenant_id"]}
    if not beat or beat.get("phase") != WAITING_FOR_FETCHER or progress.is_stale(beat, cfg.stale_after_s):
        logs.log(log, logging.INFO, "run skipped", **fields, reason="not waiting for a fetcher any more")
        return "gone"
    r = relay.client(cfg)
    token, tenant_id = str(context["token"]), str(context["tenant_id"])
    reporter = progress.Reporter(huey, run_id).start()
    started, client = time.monotonic(), None
    logs.log(log, logging.INFO, "fetch started", **fields)
    try:
        client = graph_client(cfg, tenant_id, deadline=time.monotonic() + cfg.sync_deadline_s)
        guid = tenant_id_from_token(client.token_provider.get_token())
        if guid and guid != tenant_id:
            raise SyncError(f"Graph's token is for tenant {guid}, not {tenant_id}")
        client.on_wait = reporter.wait
        with _state.lock:
            known, unknown = set(_state.definitions), set(_state.unknown)
        since = datetime.fromisoformat(context["since"]) if context.get("since") else None
        names = context.get("names") or {}
        got = gather(client, Cached(known, unknown, names, since), reporter)
        with _state.lock:
            _state.definitions.update(got.definitions)
            _state.unknown |= got.not_in_graph
        reporter.update("flattening", 0, len(got.result.policies))
        folder = _local_parts(cfg)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"run-{run_id}-", dir=folder) as tmp:
            parts = flatten_gathered(got, names, _cached_definitions, Path(tmp))
            reporter.update("handing over", 0, None)
            if got.audit.events.height:
                got.audit.events.write_parquet(parts.directory / AUDIT)
            meta = Meta(run_id, tenant_id, got.definitions, sorted(got.not_in_graph), got.names.names,
                        got.outcomes, got.requests, got.warnings, type_of(got.result))
            (parts.directory / META).write_bytes(meta.to_json())
            files = sorted(p.name for p in parts.directory.iterdir())
            blobs = relay.upload(r, run_id, token, parts.directory, files)
        reporter.hand_over(WAITING_FOR_WRITER, relay.PARTS_TTL_S)
        relay.hand_over(r, {"run_id": run_id, "token": token, "outcome": "parts",
                            "blobs": [vars(b) for b in blobs]})
        logs.log(log, logging.INFO, "fetch handed over", **fields, duration_s=round(time.monotonic() - started, 3),
                 policies=len(got.result.policies), bytes=sum(b.size for b in blobs), requests=got.requests)
        return "handed over"
    except (GraphError, SyncError) as exc:
        error = str(exc)
    except OSError as exc:
        error = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - any bug must still end the run as failed, visibly
        logs.log(log, logging.ERROR, "unexpected fetch error", exc_info=True, **fields)
        error = f"Unexpected error ({type(exc).__name__}): {exc}"
    error = logs.redact(error)
    sent = client.stats.requests if client is not None else None
    logs.log(log, logging.ERROR, "fetch failed", **fields, error=error, requests=sent)
    reporter.fail(error)  # the writer's repair fails the run with this cause if the entry below never arrives
    reporter.stop()
    relay.hand_over(r, {"run_id": run_id, "token": token, "outcome": "failed", "error": error, "requests": sent})
    return "failed"


def _cached_definitions(ids: list[str]) -> dict[str, dict]:
    with _state.lock:
        return {i: _state.definitions[i] for i in ids if i in _state.definitions}
