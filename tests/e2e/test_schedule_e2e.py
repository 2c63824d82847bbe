"""Scheduled syncs end to end: a real huey_consumer's periodic task fires them against the simulator,
on both queue backends.

One consumer session per backend (about 70 s: two periodic ticks, a minute apart):
* Contoso has its own one-minute cron (`schedule set Contoso "* * * * *"`): a run with
  trigger='schedule' succeeds;
* Fabrikam follows the global daily cron whose slot passed two minutes ago, and its last scheduled
  slot was three days ago (the consumer was down for the slots between): exactly one run, also after
  the second tick (a missed slot fires once, never a burst);
* Northwind's schedule is off: no run.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from realparts import CONTOSO, FABRIKAM, Consumer, run_cli, store_of

from tenantpilot.config import settings

NORTHWIND = "33333333-3333-4333-8333-333333333333"


def _ticks(log_dir: Path) -> list[dict]:
    path = log_dir / "worker-combined.log"
    if not path.exists():
        return []
    events = [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
    return [e for e in events if e.get("event") == "schedule tick"]


def _scheduled(env: dict[str, str], tenant: str) -> list[dict]:
    return [r for r in store_of(env).runs(tenant).iter_rows(named=True)]


def test_scheduled_syncs_fire_from_the_periodic_task(queue_env, backend, tmp_path, monkeypatch):
    now = datetime.now().astimezone()
    passed = now - timedelta(minutes=2)
    daily = f"{passed.minute} {passed.hour} * * *"  # today's slot is two minutes old
    extra = {"TENANTPILOT_SYNC_SCHEDULE": daily, "TENANTPILOT_SCHEDULE_JITTER_SECONDS": "5"}
    for k, v in extra.items():
        monkeypatch.setenv(k, v)
    settings.cache_clear()
    env = {**queue_env, **extra}

    for tid, name in ((CONTOSO, "Contoso"), (FABRIKAM, "Fabrikam"), (NORTHWIND, "Northwind")):
        assert run_cli(env, "tenants", "add", tid, "--name", name).returncode == 0
    bad = run_cli(env, "schedule", "set", "Contoso", "* 24 * * *", expect=2)
    assert bad.returncode == 2 and "hour (0-23)" in bad.stderr
    assert run_cli(env, "schedule", "set", "Contoso", "* * * * *").returncode == 0
    assert run_cli(env, "schedule", "set", "Northwind", "off").returncode == 0
    three_days_ago = passed.replace(second=0, microsecond=0) - timedelta(days=3)
    store_of(env).record_schedule_fired(FABRIKAM, three_days_ago, None)

    log_dir = Path(env["TENANTPILOT_LOG_DIR"])
    consumer = Consumer(env, tmp_path / "consumer.log").start()
    try:
        deadline = time.monotonic() + 200
        while time.monotonic() < deadline:
            contoso = _scheduled(env, CONTOSO)
            done = [r for r in contoso if r["status"] in ("succeeded", "partial", "failed")]
            fabrikam = _scheduled(env, FABRIKAM)
            if (len(_ticks(log_dir)) >= 2 and done and fabrikam
                    and all(r["status"] not in ("queued", "running") for r in fabrikam)):
                break
            time.sleep(1)
        else:
            pytest.fail(f"[{backend}] no scheduled runs in time: ticks={_ticks(log_dir)}\n{consumer.output()[-3000:]}")
    finally:
        consumer.stop()

    contoso = _scheduled(env, CONTOSO)
    assert all(r["trigger"] == "schedule" for r in contoso), contoso
    assert any(r["status"] == "succeeded" for r in contoso), contoso
    fabrikam = _scheduled(env, FABRIKAM)
    assert [(r["trigger"], r["status"]) for r in fabrikam] == [("schedule", "succeeded")], fabrikam
    assert _scheduled(env, NORTHWIND) == []
    fired = [f["tenant"] for t in _ticks(log_dir) for f in t["fired"]]
    assert fired.count(FABRIKAM) == 1 and NORTHWIND not in fired

    shown = run_cli(env, "schedule", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    rows = {r["tenant_id"]: r for r in json.loads(shown.stdout)}
    assert rows[CONTOSO]["schedule"] == "* * * * *" and rows[CONTOSO]["source"] == "tenant"
    assert rows[CONTOSO]["last_scheduled_run_id"] == contoso[0]["run_id"] and rows[CONTOSO]["next_run"]
    assert rows[FABRIKAM]["source"] == "global" and rows[FABRIKAM]["schedule"] == daily
    assert rows[FABRIKAM]["last_scheduled_status"] == "succeeded"
    assert datetime.fromisoformat(rows[FABRIKAM]["next_run"]) > now + timedelta(hours=23)  # tomorrow's slot
    assert rows[NORTHWIND]["schedule"] == "off" and rows[NORTHWIND]["next_run"] is None
    text = run_cli(env, "schedule", "show")
    assert "Contoso" in text.stdout and "last scheduled: run" in text.stdout
