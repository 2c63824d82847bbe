"""The queue seam: the Huey instance (made lazily, one per backend), enqueue, progress, heartbeats, counts.

Backends: PriorityRedisHuey on ``REDIS_URL`` (queue ``intune-sync-queue``), SqliteHuey in the data folder
otherwise. Pages, the CLI and health use this module only; every backend error leaves it as
:class:`QueueUnavailable`, so no caller wraps Huey calls in a broad ``except``.

The run row in DuckDB is the source of truth for dedupe: a tenant with a queued or running run
gets that run back instead of a second one. Two repairs keep that rule from ever blocking a
tenant:

* **stale runs**: a running run whose worker died (SIGKILL, power loss) is found by its stale
  heartbeat (or its pid being gone) and marked failed (interrupted). Huey's own ``lock_task``
  is not used because a killed consumer would hold it.
* **orphaned runs**: a queued run whose queue message was sent (``sent_at``) and is gone (Redis
  restarted or flushed, the SQLite queue file replaced) is enqueued again. A run whose message is
  still being sent (created, ``sent_at`` not set yet: a night's tick queues a thousand at once) is
  not an orphan, unless it stayed so for SEND_GRACE_S (its sender died between the two). A
  duplicate message is harmless: ``start_run`` flips ``queued → running`` atomically, so only one
  of them runs.

Both are checked at consumer start, periodically by the consumer, and on every enqueue.

Schedules: a Huey periodic task (every minute, in every consumer: ``huey_consumer`` runs periodic
tasks unless started with ``-n``) runs :func:`schedule_tick`, which queues the syncs of the tenants
whose slot is due (tenantpilot/ops/schedule.py) with ``trigger="schedule"``, delayed by each tenant's
jitter offset, with the same dedupe as :func:`enqueue_sync` (a tenant already syncing keeps its one
run) but in bulk: one database write creates every due run and records every slot, the messages are
sent, and one more write marks them sent (1,000 tenants in seconds; a write per run took minutes).

Priorities: a sync a person asks for (``trigger="manual"``: a page or the CLI) is queued with
PRIORITY["manual"], above the night's scheduled runs, so the next free worker takes it however many
scheduled runs wait. Both backends order by priority (Huey 3.5: SqliteStorage's ``priority`` column,
``ORDER BY priority DESC, id``; PriorityRedisHuey: a Redis sorted set read with BZPOPMIN, Redis >= 5).
A queue of its own would need a second consumer (or pool) kept idle for people; a priority lets every
worker serve people first and the night otherwise.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from huey import Huey, PriorityRedisHuey, SqliteHuey, crontab, signals

from tenantpilot import logs
from tenantpilot.config import QUEUE_NAME, Settings, settings
from tenantpilot.ops import channels, handback, outbox, progress, schedule, tasks
from tenantpilot.store import Store, StoreError, open_store
from tenantpilot.sync.snapshot import remove_leftover_parts

log = logging.getLogger("tenantpilot.queue")
T = TypeVar("T")
REPAIR_EVERY_S = 10.0  # the consumer re-checks stale and orphaned runs this often
PRIORITY = {"manual": 10, "schedule": 0}  # higher first (Huey's order on both backends)
ACTIVE_LIMIT = 100_000  # the repairs read this many queued/running runs at most (a fleet's night fits)


class QueueUnavailable(RuntimeError):
    """The queue's backend (Redis or the SQLite file) cannot be used; the message says why."""


@dataclass(frozen=True)
class Enqueued:
    run_id: int
    created: bool  # False: the tenant already had this run queued or running


_instances: dict[tuple[str, str], tuple[Huey, Any]] = {}  # backend -> (Huey, its sync task)
_instances_lock = threading.Lock()


def _backend_key(cfg: Settings) -> tuple[str, str]:
    return (cfg.queue_backend, cfg.redis_url or str(cfg.queue_db))


def get_huey(cfg: Settings | None = None) -> Huey:
    """The Huey instance for the configured backend, made on first use (with its task and hooks)."""
    return _instance(cfg or settings())[0]


def _instance(cfg: Settings) -> tuple[Huey, Any]:
    key = _backend_key(cfg)
    with _instances_lock:
        if key not in _instances:
            instance: Huey
            if cfg.redis_url:
                instance = PriorityRedisHuey(QUEUE_NAME, url=cfg.redis_url, results=False)
                _call("convert the queue to a priority queue", lambda: _list_to_priority(instance), cfg)
            else:
                cfg.data_dir.mkdir(parents=True, exist_ok=True)
                instance = SqliteHuey(QUEUE_NAME, filename=str(cfg.queue_db), results=False)
            _instances[key] = (instance, _register(instance))
        return _instances[key]


def _list_to_priority(instance: Huey) -> None:
    """A Redis queue written before priorities is a list (RedisHuey); PriorityRedisHuey keeps the same key
    as a sorted set. Move a list's messages over, oldest first, so an upgrade loses no queued sync."""
    storage = instance.storage
    conn, key = storage.conn, storage.queue_key
    if conn.type(key) not in (b"list", "list"):
        return
    moving = f"{key}.converting"
    try:
        conn.rename(key, moving)
    except Exception:  # noqa: BLE001 - another process converted it first (the key is gone)
        return
    while (data := conn.rpop(moving)) is not None:  # RedisHuey LPUSHes: the oldest is at the right
        storage.enqueue(data, PRIORITY["schedule"])


def _call(doing: str, fn: Callable[[], T], cfg: Settings | None = None) -> T:
    """Run one backend call; any backend error becomes QueueUnavailable naming the backend."""
    try:
        return fn()
    except QueueUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - redis, sqlite3 and huey errors share no base class
        cfg = cfg or settings()
        where = "Redis at REDIS_URL" if cfg.redis_url else f"the SQLite queue {cfg.queue_db}"
        raise QueueUnavailable(f"The sync queue is unreachable ({cfg.queue_backend}, {where}) while trying to "
                               f"{doing}: {type(exc).__name__}: {logs.redact(str(exc))}") from exc


# --- the task and the consumer's hooks ---------------------------------------------------------
def _register(instance: Huey) -> Any:
    """Register the sync task and the consumer hooks on a new instance; returns the task."""
    started = threading.Event()

    def after_sync(run_id: int) -> None:
        """Leave the run's alert decision in the outbox (a local file: no network, no queue); the
        consumer's delivery thread builds and sends it. A write that fails costs the alert (logged as
        an error), never the sync."""
        cfg = settings()
        if not channels.any_configured(cfg):
            return
        try:
            outbox.add(cfg, run_id)
        except OSError as exc:
            logs.log(log, logging.ERROR, "could not queue the alert", run_id=run_id, error=str(exc))

    @instance.task(retries=0, context=False, name="sync_task")
    def sync_task(run_id: int) -> None:
        tasks.sync_job(run_id, instance, after=after_sync)

    @instance.periodic_task(crontab(), retries=0, context=False, name="schedule_tick")
    def schedule_task() -> None:
        cfg = settings()
        logs.configure(cfg.log_dir)
        schedule_tick(cfg)

    @instance.on_startup()
    def _on_startup() -> None:
        cfg = settings()
        logs.configure(cfg.log_dir)
        if started.is_set():  # one per consumer process, not one per worker thread
            return
        started.set()
        try:
            repair(cfg)
        except Exception:  # noqa: BLE001 - the consumer must start even when the database is busy
            logs.log(log, logging.ERROR, "could not check for interrupted or orphaned runs", exc_info=True)
        _remove_leftover_parts(cfg)
        threading.Thread(target=_consumer_beat, args=(instance, cfg), name="consumer-heartbeat", daemon=True).start()
        outbox.Deliverer(cfg, tasks.alert_job).start()  # alerts: their own thread, never a sync worker
        if cfg.redis_url:  # runs that fetching consumers hand back: written by their own thread (ops/handback.py)
            handback.Receiver(cfg, instance, after_sync).start()
        logs.log(log, logging.INFO, "consumer started", backend=cfg.queue_backend, db=str(cfg.db_path))

    @instance.signal(signals.SIGNAL_INTERRUPTED)
    def _on_interrupted(signal: str, task: Any, *args: Any, **kwargs: Any) -> None:
        if task.name.endswith("sync_task") and task.args:
            cfg = settings()
            open_store(cfg).fail_run(int(task.args[0]), tasks.INTERRUPTED)

    return sync_task


def _remove_leftover_parts(cfg: Settings) -> None:
    """At consumer start: the part folders of runs that are no longer queued or running (a consumer
    killed mid-sync leaves them; the repair just marked such runs failed)."""
    try:
        active = open_store(cfg).runs(statuses=["queued", "running"], limit=5000)["run_id"].to_list()
        removed = remove_leftover_parts(cfg, {int(r) for r in active})
    except (StoreError, OSError) as exc:
        logs.log(log, logging.WARNING, "could not remove the parts interrupted syncs left", error=str(exc))
        return
    if removed:
        logs.log(log, logging.INFO, "removed the parts interrupted syncs left", folders=removed)


def _consumer_beat(instance: Huey, cfg: Settings) -> None:
    """The consumer's heartbeat (every 2 s) and its periodic repair of stale and orphaned runs."""
    last_repair = time.monotonic()
    while True:
        try:
            instance.put(progress.CONSUMER_KEY, {"ts": time.time(), "pid": os.getpid(), "host": progress.HOST,
                                                 "backend": cfg.queue_backend})
        except Exception:  # noqa: BLE001 - the queue is down: nothing to beat into; try again
            pass
        if time.monotonic() - last_repair > REPAIR_EVERY_S:
            last_repair = time.monotonic()
            try:
                repair(cfg)
            except Exception:  # noqa: BLE001 - logged; the next round tries again
                logs.log(log, logging.WARNING, "could not check for interrupted or orphaned runs", exc_info=True)
        time.sleep(2)


# --- producer side -------------------------------------------------------------------------------
def _send(run_id: int, cfg: Settings, delay_s: float = 0.0, trigger: str = "manual") -> None:
    sync_task = _instance(cfg)[1]
    priority = PRIORITY.get(trigger, PRIORITY["schedule"])
    if delay_s > 0:  # Huey's schedule: the consumer's scheduler moves it to the queue at its eta (priority kept)
        _call("queue a sync", lambda: sync_task.schedule(args=(run_id,), delay=delay_s, priority=priority), cfg)
    else:
        _call("queue a sync", lambda: sync_task(run_id, priority=priority), cfg)


def enqueue_sync(tenant_id: str, store: Store | None = None, cfg: Settings | None = None,
                 *, trigger: str = "manual", delay_s: float = 0.0) -> Enqueued:
    """Queue a sync for a tenant, or return the run already queued or running for it.
    `trigger`: manual | schedule (recorded on the run; alerts follow scheduled runs; a manual run is
    queued ahead of scheduled ones). `delay_s`: the run starts this many seconds from now."""
    cfg = cfg or settings()
    store = store or open_store(cfg)
    repair(cfg, store)
    run_id, created = store.create_run_unless_active(tenant_id, trigger=trigger)
    if created:
        try:
            _send(run_id, cfg, delay_s, trigger)
        except QueueUnavailable as exc:  # the run must not stay queued forever
            store.fail_run(run_id, f"Could not queue the sync: {exc}")
            raise
        store.mark_sent([run_id])
    return Enqueued(run_id, created)


def schedule_tick(cfg: Settings | None = None, store: Store | None = None,
                  now: datetime | None = None) -> list[dict[str, Any]]:
    """One minute of schedules: queue the sync of every tenant whose slot is due (at most one slot per
    tenant, however many were missed), delayed by its jitter offset, and record the slot as fired.

    In bulk: one write creates the runs (or finds the tenant's active one) and records the slots, the
    messages are sent, one write marks them sent. When the queue fails part-way, the runs not sent stay
    queued without `sent_at`: the orphan repair sends them once SEND_GRACE_S has passed and the queue
    is back (their slots stay fired: the night is not queued twice). Returns what was fired."""
    cfg = cfg or settings()
    store = store or open_store(cfg)
    now = now or datetime.now().astimezone()
    plans = schedule.plan(list(store.schedules_with_groups().iter_rows(named=True)), cfg.sync_schedule,
                          cfg.schedule_jitter_s, now)
    due = {p.tenant_id: p.due for p in plans if p.due is not None}
    if not due:
        logs.log(log, logging.INFO, "schedule tick", fired=[], tenants=len(plans))
        return []
    try:
        runs = store.create_scheduled_runs([(t, d.slot) for t, d in due.items()])
    except StoreError as exc:
        logs.log(log, logging.WARNING, "scheduled syncs not queued; the next tick tries again",
                 tenants=len(due), error=logs.redact(str(exc)))
        return []
    sent: list[int] = []
    error: QueueUnavailable | None = None
    for tenant_id, run_id, created in runs:
        if created and error is None:
            try:
                _send(run_id, cfg, due[tenant_id].delay_s, "schedule")
                sent.append(run_id)
            except QueueUnavailable as exc:
                error = exc
    try:
        store.mark_sent(sent)
    except StoreError as exc:  # they are sent: the repair leaves them be for SEND_GRACE_S, then re-sends
        logs.log(log, logging.WARNING, "could not mark the scheduled syncs sent", error=logs.redact(str(exc)))
    if error is not None:
        logs.log(log, logging.WARNING, "scheduled syncs not all queued; the repair sends the rest",
                 sent=len(sent), waiting=sum(c for _, _, c in runs) - len(sent), error=logs.redact(str(error)))
    fired = [{"tenant": t, "slot": due[t].slot.isoformat(), "run_id": r, "created": c,
              "delay_s": round(due[t].delay_s, 1)} for t, r, c in runs]
    logs.log(log, logging.INFO, "schedule tick", fired=fired, created=sum(c for _, _, c in runs), tenants=len(plans))
    return fired


def pending_run_ids(cfg: Settings | None = None) -> set[int]:
    """Run ids with a sync message waiting in the queue, or in Huey's schedule (delayed syncs)."""
    cfg = cfg or settings()
    instance = get_huey(cfg)
    ids: set[int] = set()
    messages = [*_call("list queued syncs", instance.storage.enqueued_items, cfg),
                *_call("list scheduled syncs", instance.storage.scheduled_items, cfg)]
    for message in messages:
        try:
            task = instance.deserialize_task(message)
        except Exception:  # noqa: BLE001 - a message of another version or app: not one of our runs
            continue
        if task.name.endswith("sync_task") and task.args:
            ids.add(int(task.args[0]))
    return ids


def repair(cfg: Settings | None = None, store: Store | None = None) -> dict[str, list[int]]:
    """Fail runs whose worker is gone and re-enqueue queued runs whose message is gone."""
    cfg = cfg or settings()
    store = store or open_store(cfg)
    return {"interrupted": reap_stale_runs(store, cfg), "requeued": requeue_orphans(store, cfg)}


def reap_stale_runs(store: Store | None = None, cfg: Settings | None = None) -> list[int]:
    """Mark running runs whose worker is gone as failed (interrupted). Returns their ids."""
    cfg = cfg or settings()
    store = store or open_store(cfg)
    running = store.runs(statuses=["queued", "running"], limit=ACTIVE_LIMIT)
    if not running.height:
        return []
    dead: list[int] = []
    for run_id, status, started_at in zip(running["run_id"], running["status"], running["started_at"]):
        beat = run_progress(int(run_id), cfg)
        if beat and beat.get("phase") == "failed" and beat.get("error"):
            # the sync ended with this cause but could not write it (database locked, disk full)
            store.fail_run(int(run_id), str(beat["error"]))
            _forget_progress(int(run_id), cfg)
            dead.append(int(run_id))
            continue
        if status == "queued":
            continue  # not started: nothing to be stale about (lost messages: requeue_orphans)
        if beat is None and started_at is not None and time.time() - started_at.timestamp() < cfg.stale_after_s:
            continue  # just started; first heartbeat not visible yet
        if progress.is_stale(beat, cfg.stale_after_s):
            store.fail_run(int(run_id), tasks.INTERRUPTED)
            dead.append(int(run_id))
    if dead:
        logs.log(log, logging.WARNING, "runs whose worker stopped or could not record the end marked failed",
                 run_ids=dead)
    return dead


def _forget_progress(run_id: int, cfg: Settings) -> None:
    instance = get_huey(cfg)
    _call("clear a run's progress", lambda: instance.get(progress.run_key(run_id)), cfg)


ORPHAN_GRACE_S = 2.0  # a run sent this recently may not show in the queue's listing yet
SEND_GRACE_S = 300.0  # a run created this long ago and still not sent lost its sender: send it
STARTING_GRACE_S = 60.0  # a taken run's beat this fresh: its worker is starting it


def orphaned(run: dict[str, Any], waiting: set[int], now: float, beat: dict[str, Any] | None = None) -> bool:
    """Is this queued run an orphan (its message will never come)? Pure: the run row (run_id, queued_at,
    sent_at, source), the run ids with a message waiting, the time, and the run's progress `beat`. A run
    whose message is being sent is not one, nor one a worker has taken (its beat: the message has left the
    queue, and the run stays queued until its worker gets the database to mark it running, seconds when
    a night's writes hold the file); an import's run (source import:…) never has a message."""
    if int(run["run_id"]) in waiting or not str(run.get("source") or "graph").startswith("graph"):
        return False
    if beat is not None and not progress.is_stale(beat, STARTING_GRACE_S, now):
        return False
    sent, queued = run.get("sent_at"), run.get("queued_at")
    if sent is not None:
        return now - sent.timestamp() > ORPHAN_GRACE_S
    return queued is None or now - queued.timestamp() > SEND_GRACE_S


def requeue_orphans(store: Store | None = None, cfg: Settings | None = None) -> list[int]:
    """Queued runs whose message is no longer in the queue are sent again. Returns their ids."""
    cfg = cfg or settings()
    store = store or open_store(cfg)
    queued = store.runs(statuses=["queued"], limit=ACTIVE_LIMIT)
    if not queued.height:
        return []
    waiting = pending_run_ids(cfg)
    now = time.time()
    candidates = [r for r in queued.iter_rows(named=True) if orphaned(r, waiting, now)]
    orphans = [r for r in candidates if orphaned(r, waiting, now, run_progress(int(r["run_id"]), cfg))]
    for run in orphans:
        _send(int(run["run_id"]), cfg, trigger=str(run.get("trigger") or "manual"))
    ids = [int(r["run_id"]) for r in orphans]
    store.mark_sent(ids)
    if ids:
        logs.log(log, logging.WARNING, "queued runs had lost their queue message; queued again", run_ids=ids,
                 backend=cfg.queue_backend)
    return ids


# --- reads ---------------------------------------------------------------------------------------
def run_progress(run_id: int, cfg: Settings | None = None) -> dict[str, Any] | None:
    """A running sync's last published progress (None when there is none or the queue is down)."""
    return progress.run_progress(get_huey(cfg), run_id)


def consumer_heartbeat(cfg: Settings | None = None) -> dict[str, Any] | None:
    return progress.consumer_heartbeat(get_huey(cfg))


def counts(cfg: Settings | None = None) -> dict[str, int]:
    """Pending and scheduled task counts (QueueUnavailable when the queue is unreachable, its file on a
    full disk included: opening the SQLite queue sets its journal mode, a write)."""
    def read() -> dict[str, int]:
        instance = get_huey(cfg)
        return {"pending": instance.pending_count(), "scheduled": instance.scheduled_count()}

    return _call("count queued syncs", read, cfg)
