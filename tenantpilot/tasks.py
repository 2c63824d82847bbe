"""The Huey instance and the sync task. `huey_consumer huey_worker.huey` runs it.

RedisHuey on REDIS_URL (queue `intune-sync-queue`); SqliteHuey in the data folder otherwise.
A sync is one task per run id. The run row in DuckDB is the source of truth for dedupe: a
tenant with a queued or running run gets that run back instead of a second one. Runs whose
worker died (SIGKILL, power loss) are found by their stale heartbeat and marked failed, so no
tenant stays stuck; Huey's own lock_task is not used because a killed consumer would hold it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass

from huey import RedisHuey, SqliteHuey, signals

from tenantpilot import logs, progress
from tenantpilot.config import QUEUE_NAME, Settings, settings
from tenantpilot.store import Store
from tenantpilot.sync import execute_run

log = logging.getLogger("tenantpilot.tasks")
INTERRUPTED = "Interrupted: the worker stopped during this sync (killed or restarted). Sync again."


def make_huey(cfg: Settings):
    if cfg.redis_url:
        return RedisHuey(QUEUE_NAME, url=cfg.redis_url, results=False)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(QUEUE_NAME, filename=str(cfg.queue_db), results=False)


# The queue is fixed when the module is imported (the consumer imports it once); everything else
# reads settings() at call time so tests and the app can point at another database.
huey = make_huey(settings())


def get_store(cfg: Settings | None = None) -> Store:
    return Store((cfg or settings()).db_path)


@huey.task(retries=0, context=False)
def sync_task(run_id: int) -> None:
    cfg = settings()
    logs.configure(cfg.log_dir)
    reporter = progress.Reporter(huey, run_id).start()
    try:
        execute_run(run_id, cfg, get_store(cfg), reporter)
    finally:
        reporter.stop()


@dataclass(frozen=True)
class Enqueued:
    run_id: int
    created: bool  # False: the tenant already had this run queued or running


def enqueue_sync(tenant_id: str, store: Store | None = None) -> Enqueued:
    """Queue a sync for a tenant, or return the run already queued or running for it."""
    store = store or get_store()
    reap_stale_runs(store)
    run_id, created = store.create_run_unless_active(tenant_id)
    if created:
        try:
            sync_task(run_id)
        except Exception as exc:  # queue unreachable: the run must not stay queued forever
            store.fail_run(run_id, f"Could not queue the sync: {exc}")
            raise QueueUnavailable(f"The queue is unreachable ({settings().queue_backend}): {exc}") from exc
    return Enqueued(run_id, created)


class QueueUnavailable(RuntimeError):
    pass


def reap_stale_runs(store: Store | None = None, cfg: Settings | None = None) -> list[int]:
    """Mark running runs whose worker is gone as failed (interrupted). Returns their ids."""
    cfg = cfg or settings()
    store = store or get_store(cfg)
    running = store.runs(statuses=["running"], limit=1000)
    dead = []
    for run_id, started_at in zip(running["run_id"], running["started_at"]):
        beat = progress.run_progress(huey, run_id)
        if beat is None and started_at is not None and time.time() - started_at.timestamp() < cfg.stale_after_s:
            continue  # just started; first heartbeat not visible yet
        if progress.is_stale(beat, cfg.stale_after_s):
            dead.append(int(run_id))
    if dead:
        store.fail_runs(dead, INTERRUPTED)
        logs.log(log, logging.WARNING, "interrupted runs marked failed", run_ids=dead)
    return dead


def queue_counts() -> dict[str, int]:
    """Pending and scheduled task counts (raises when the queue is unreachable)."""
    return {"pending": huey.pending_count(), "scheduled": huey.scheduled_count()}


# --- consumer hooks --------------------------------------------------------------------------
_beat_started = threading.Event()


@huey.on_startup()
def _on_startup() -> None:
    cfg = settings()
    logs.configure(cfg.log_dir)
    if _beat_started.is_set():
        return
    _beat_started.set()
    try:
        reap_stale_runs()
    except Exception:  # noqa: BLE001
        log.exception("could not check for interrupted runs")

    def beat() -> None:
        while True:
            try:
                huey.put(progress.CONSUMER_KEY, {"ts": time.time(), "pid": os.getpid(), "host": progress.HOST,
                                                 "backend": cfg.queue_backend})
            except Exception:  # noqa: BLE001
                pass
            time.sleep(2)

    threading.Thread(target=beat, name="consumer-heartbeat", daemon=True).start()
    logs.log(log, logging.INFO, "consumer started", backend=cfg.queue_backend, db=str(cfg.db_path))


@huey.signal(signals.SIGNAL_INTERRUPTED)
def _on_interrupted(signal, task, *args, **kwargs) -> None:
    if task.name.endswith("sync_task") and task.args:
        get_store().fail_run(int(task.args[0]), INTERRUPTED)
