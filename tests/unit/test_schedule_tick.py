"""queue.schedule_tick against a real DuckDB file and a real SQLite Huey queue (no consumer): what a
tick queues, that a fired slot never fires again, and that a tenant already queued keeps its run."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

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
