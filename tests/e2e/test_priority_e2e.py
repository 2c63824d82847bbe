"""People never wait behind the night (issue 23 item 4), through a real huey_consumer on both queue
backends: a schedule tick queues a few hundred scheduled syncs (tenants of the simulator), then a person
asks for a sync with the CLI; the consumer takes the manual one next and it finishes while almost the
whole night still waits. Also: the repair running beside the consumer never queues a run twice.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from realparts import CONTOSO, Consumer, run_cli, store_of

from graphsim.tenants import build_tenant
from tenantpilot.config import load_settings
from tenantpilot.ops import queue

NIGHT = 300


@pytest.fixture
def night_tenants(sim):
    """NIGHT small tenants served by the simulator (two policies each), removed afterwards."""
    ids = [f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(0xA000, 0xA000 + NIGHT)]
    for tid in ids:
        sim.add_tenant(build_tenant(tid, f"Night {tid[:8]}", n_policies=2, seed=5))
    yield ids
    for tid in ids:
        sim.tenants.pop(tid, None)


def _requeued(log_dir: Path) -> list[int]:
    path = log_dir / "worker-combined.log"
    events = [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")] if path.exists() else []
    return [r for e in events if e.get("event") == "queued runs had lost their queue message; queued again"
            for r in e.get("run_ids", [])]


def test_a_manual_sync_finishes_before_the_nights_runs(queue_env, backend, night_tenants, tmp_path):
    env = queue_env
    store = store_of(env)
    run_cli(env, "tenants", "add", CONTOSO, "--name", "Contoso")
    for tid in night_tenants:
        store.add_tenant(tid, f"Night {tid[:8]}")
    # every night tenant follows a daily slot that is due when the tick below runs (Contoso's own: off)
    run_cli(env, "schedule", "set", "Contoso", "off")
    slot = (datetime.now().astimezone() + timedelta(minutes=1)).replace(second=0, microsecond=0)
    night = load_settings({**env, "TENANTPILOT_SYNC_SCHEDULE": f"{slot.minute} {slot.hour} * * *",
                           "TENANTPILOT_SCHEDULE_JITTER_SECONDS": "0"}, dotenv=False)

    consumer = Consumer(env, tmp_path / "consumer.log").start()  # -w 1; its own schedule is off
    try:
        fired = queue.schedule_tick(night, store, slot + timedelta(minutes=1))
        assert len(fired) == NIGHT and all(f["created"] for f in fired)
        run_cli(env, "sync", "Contoso")  # a person asks, while the night's runs wait
        manual = store.runs(CONTOSO).row(0, named=True)
        assert manual["trigger"] == "manual"
        deadline = time.monotonic() + 180
        while (run := store.get_run(manual["run_id"]))["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, consumer.output()[-3000:]
            time.sleep(0.3)
        scheduled = store.runs(limit=NIGHT + 10)
        scheduled = scheduled.filter(scheduled["trigger"] == "schedule")
        assert scheduled.height == NIGHT
    finally:
        consumer.stop()

    assert run["status"] == "succeeded", run
    started = [r for r in scheduled.iter_rows(named=True) if r["started_at"] is not None]
    # one worker: after the manual sync was queued it took at most the one scheduled run it had already
    # dequeued, then the manual one
    took_after = [r for r in started if manual["queued_at"] < r["started_at"] < run["started_at"]]
    assert len(took_after) <= 1, (backend, took_after)
    finished_later = [r for r in scheduled.iter_rows(named=True)
                      if r["finished_at"] is None or r["finished_at"] > run["finished_at"]]
    assert len(finished_later) >= NIGHT * 0.8, (backend, len(finished_later))
    # the repair beside the consumer (at its start and every 10 s) sent no scheduled run a second time
    assert not set(_requeued(Path(env["TENANTPILOT_LOG_DIR"]))) & set(scheduled["run_id"])


def test_a_queue_left_by_the_list_version_is_converted(env, redis_url):
    """A Redis queue written before priorities (RedisHuey: a list under the same key) keeps its messages: the
    first process of this version moves them into the sorted set, oldest first, and they stay runnable."""
    from huey import RedisHuey

    from tenantpilot.config import QUEUE_NAME, settings

    old = RedisHuey(QUEUE_NAME, url=redis_url, results=False)

    def body(run_id: int) -> None: ...

    body.__module__ = "tenantpilot.ops.queue"  # the name the messages of the list version carried
    sync_task = old.task(name="sync_task")(body)
    for run_id in (101, 102, 103):
        sync_task(run_id)
    assert old.storage.conn.type(old.storage.queue_key) == b"list"
    queue._instances.clear()
    settings.cache_clear()
    huey = queue.get_huey()
    assert huey.storage.conn.type(huey.storage.queue_key) == b"zset"
    assert queue.pending_run_ids() == {101, 102, 103}
    assert [huey.dequeue().args[0] for _ in range(3)] == [101, 102, 103]
