"""queue.schedule_tick against a real DuckDB file and a real SQLite Huey queue (no consumer): what a
tick queues, that a fired slot never fires again, and that a tenant already queued keeps its run."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tenantpilot.config import load_settings
from tenantpilot.ops import queue
from tenantpilot.store import Store

CONTOSO = "11111111-1111-4111-8111-111111111111"
FABRIKAM = "22222222-2222-4222-8222-222222222222"
NORTHWIND = "33333333-3333-4333-8333-333333333333"


def test_tick_queues_due_tenants_once(tmp_path: Path):
    now = datetime.now().astimezone()
    passed = now - timedelta(minutes=2)
    cfg = load_settings({"TENANTPILOT_DATA_DIR": str(tmp_path / "data"),
                         "TENANTPILOT_SYNC_SCHEDULE": f"{passed.minute} {passed.hour} * * *",
                         "TENANTPILOT_SCHEDULE_JITTER_SECONDS": "0"}, dotenv=False)
    store = Store(cfg.db_path)
    for tid, name in ((CONTOSO, "Contoso"), (FABRIKAM, "Fabrikam"), (NORTHWIND, "Northwind")):
        store.add_tenant(tid, name)
    store.add_tenant("baseline:cis", "CIS", "baseline")
    store.set_tenant_schedule(CONTOSO, "* * * * *")
    store.set_tenant_schedule(NORTHWIND, "off")
    store.set_tenant_schedule("baseline:cis", "* * * * *")  # never honoured: baselines are imports
    store.record_schedule_fired(FABRIKAM, passed.replace(second=0, microsecond=0) - timedelta(days=3), None)

    fired = queue.schedule_tick(cfg, store, now)
    assert sorted(f["tenant"] for f in fired) == [CONTOSO, FABRIKAM]
    by_tenant = {f["tenant"]: f for f in fired}
    assert by_tenant[FABRIKAM]["delay_s"] == 0  # the missed slot runs now
    assert 0 <= by_tenant[CONTOSO]["delay_s"] <= 60  # the coming minute
    runs = store.runs(statuses=["queued"])
    assert sorted(runs["tenant_id"]) == [CONTOSO, FABRIKAM] and set(runs["trigger"]) == {"schedule"}
    counts = queue.counts(cfg)
    assert counts["pending"] + counts["scheduled"] == 2
    assert queue.pending_run_ids(cfg) == set(runs["run_id"])  # delayed syncs are not orphans

    assert queue.schedule_tick(cfg, store, now) == []  # the same slots never fire twice
    later = queue.schedule_tick(cfg, store, now + timedelta(seconds=61))
    assert [(f["tenant"], f["created"]) for f in later] == [(CONTOSO, False)]  # still queued: the same run
    assert later[0]["run_id"] == by_tenant[CONTOSO]["run_id"]
    assert store.runs(NORTHWIND).height == 0 and store.runs("baseline:cis").height == 0


# --- a night: hundreds of tenants due at one slot (issue 23 item 4) -----------------------------------
def _night(tmp_path: Path, n: int):
    """`n` tenants following a daily slot a minute after they were added; returns the tick's `now`, a
    minute past that slot (every tenant due at once, without jitter)."""
    store = Store(tmp_path / "data" / "tenantpilot.duckdb")
    tenants = [f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(1, n + 1)]
    for tid in tenants:
        store.add_tenant(tid, f"Tenant {tid[:8]}")
    slot = (datetime.now().astimezone() + timedelta(minutes=1)).replace(second=0, microsecond=0)
    cfg = load_settings({"TENANTPILOT_DATA_DIR": str(tmp_path / "data"),
                         "TENANTPILOT_SYNC_SCHEDULE": f"{slot.minute} {slot.hour} * * *",
                         "TENANTPILOT_SCHEDULE_JITTER_SECONDS": "0"}, dotenv=False)
    assert cfg.db_path == store.path
    return cfg, store, tenants, slot + timedelta(minutes=1)


def test_tick_queues_a_night_in_one_write_and_marks_the_runs_sent(tmp_path: Path):
    cfg, store, tenants, now = _night(tmp_path, 60)
    running, _ = store.create_run_unless_active(tenants[0], trigger="manual")  # already syncing: keeps its run
    store.mark_sent([running])
    store.start_run(running)

    fired = queue.schedule_tick(cfg, store, now)
    assert sorted(f["tenant"] for f in fired) == sorted(tenants)
    assert [f["created"] for f in fired if f["tenant"] == tenants[0]] == [False]
    queued = store.runs(statuses=["queued"], limit=1000)
    assert queued.height == len(tenants) - 1 and set(queued["trigger"]) == {"schedule"}
    assert queued["sent_at"].null_count() == 0  # every message sent, and marked so
    assert queue.pending_run_ids(cfg) == set(queued["run_id"])
    assert queue.requeue_orphans(store, cfg) == []  # nothing lost, nothing queued twice
    slots = store.tenant_schedules()
    assert slots["last_slot"].null_count() == 0 and set(slots["last_scheduled_run_id"].drop_nulls()) == set(queued["run_id"])
    assert queue.schedule_tick(cfg, store, now) == []  # the slot fired once


def test_runs_being_queued_are_not_orphans(tmp_path: Path):
    """The tick creates the runs, then sends their messages: a repair in between (another consumer's, an
    enqueue's) must not take them for lost ones and send them a second time."""
    cfg, store, tenants, now = _night(tmp_path, 30)
    made = store.create_scheduled_runs([(t, now) for t in tenants])  # created; no message sent yet
    assert len(made) == 30 and all(created for _, _, created in made)
    assert queue.requeue_orphans(store, cfg) == []
    assert queue.counts(cfg) == {"pending": 0, "scheduled": 0}


NOW = datetime(2026, 12, 7, 2, 30).astimezone()


def _run(queued_ago: float | None, sent_ago: float | None, source: str = "graph") -> dict:
    return {"run_id": 1, "source": source,
            "queued_at": None if queued_ago is None else NOW - timedelta(seconds=queued_ago),
            "sent_at": None if sent_ago is None else NOW - timedelta(seconds=sent_ago)}


def _beat(ago: float) -> dict:
    return {"phase": "starting", "ts": NOW.timestamp() - ago, "pid": None, "host": "elsewhere"}


@pytest.mark.parametrize(("run", "waiting", "beat", "orphan"), [
    (_run(600, 600), set(), None, True),  # sent long ago, message gone: the queue lost it
    (_run(600, 600), {1}, None, False),  # its message waits
    (_run(1, 0.5), set(), None, False),  # sent just now: the listing may not show it yet
    (_run(60, None), set(), None, False),  # created a minute ago, being sent (a night's tick)
    (_run(queue.SEND_GRACE_S + 60, None), set(), None, True),  # never sent: its sender died; send it
    (_run(600, None, "import:/x.zip"), set(), None, False),  # an import runs in place: no message ever
    (_run(600, 600), set(), _beat(1), False),  # a worker took it, waits for the database to start it
    (_run(600, 600), set(), _beat(queue.STARTING_GRACE_S + 30), True),  # ...and died before it could
])
def test_orphan_rule(run: dict, waiting: set[int], beat: dict | None, orphan: bool):
    assert queue.orphaned(run, waiting, NOW.timestamp(), beat) is orphan


@pytest.mark.parametrize("backend", ["sqlite"])  # Redis: tests/e2e/test_priority_e2e.py
def test_a_manual_sync_is_taken_before_the_nights_runs(tmp_path: Path, backend: str):
    cfg, store, tenants, now = _night(tmp_path, 40)
    queue.schedule_tick(cfg, store, now)
    manual = queue.enqueue_sync(tenants[-1], store, cfg)  # the tenant already has its scheduled run
    assert not manual.created
    store.add_tenant(CONTOSO, "Contoso")
    manual = queue.enqueue_sync(CONTOSO, store, cfg)
    huey = queue.get_huey(cfg)
    first = huey.dequeue()
    assert first is not None and first.args == (manual.run_id,)
    rest = [huey.dequeue().args[0] for _ in range(len(tenants))]
    assert sorted(rest) == rest  # the night's runs in the order they were queued
