"""The body of one queued job: a sync run inside the consumer, with its progress heartbeat.

`tenantpilot.ops.queue` registers `sync_job` as the Huey task of each backend; this module knows no
queue backend and no Huey instance beyond the one it is handed for progress.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from typing import Any

from tenantpilot import logs
from tenantpilot.config import settings
from tenantpilot.ops import alerts, channels, handback, progress
from tenantpilot.store import open_store
from tenantpilot.sync.run import execute_run

log = logging.getLogger("tenantpilot.tasks")
INTERRUPTED = "Interrupted: the worker stopped during this sync (killed or restarted). Sync again."


def sync_job(run_id: int, huey: Any, after: Callable[[int], None] | None = None) -> None:
    """Run one queued sync to its end, publishing progress into `huey`'s storage; then `after(run_id)`
    (the queue's alert hook: it only enqueues, and never raises), whatever the run's outcome."""
    cfg = settings()
    logs.configure(cfg.log_dir)
    if handback.delegate(run_id, cfg, huey):  # a fetching consumer syncs it; the writer thread then calls after
        return
    reporter = progress.Reporter(huey, run_id).start()
    try:
        execute_run(run_id, cfg, open_store(cfg), reporter)
    finally:
        reporter.stop()
        if after is not None:
            after(run_id)


def alert_job(run_id: int, message: dict[str, Any] | None, targets: list[str] | None,
              attempt: int) -> alerts.Delivery | None:
    """The alert of one scheduled run: built on the first attempt (None: not a scheduled run, no
    channel, or nothing to say) with its targets (the tenant's channels: ops/channels.py), then delivered;
    returns what to try again (and when) and what was given up on. Called by the consumer's delivery thread
    (tenantpilot/ops/outbox.py), never a sync worker."""
    cfg = settings()
    logs.configure(cfg.log_dir)
    if message is None or targets is None:
        if not channels.any_configured(cfg):
            return None
        store = open_store(cfg)
        run = store.get_run(run_id)
        if run is None or run.get("trigger") != "schedule":
            return None
        own, groups = store.alert_channels_of(run["tenant_id"])
        names = channels.route(own, groups)
        if missing := channels.unknown(cfg, names):
            logs.log(log, logging.ERROR, "alert channel not configured", run_id=run_id, channels=missing,
                     fix=f"set {channels.PREFIX}<NAME>_TEAMS (or another kind) or choose other channels")
        targets = channels.targets(cfg, names)
        if not targets:
            logs.log(log, logging.INFO, "no alert: no channel for this tenant", run_id=run_id,
                     channels=names or [channels.OFF])
            return None
        facts = alerts.collect(store, run_id, date.today())
        alert = alerts.build(facts, app_url=cfg.app_url, always=cfg.alert_always) if facts else None
        if alert is None:
            logs.log(log, logging.INFO, "no alert: nothing changed", run_id=run_id)
            return None
    else:
        alert = alerts.Alert.from_dict(message)
    return alerts.deliver(alert, targets, cfg, attempt)
