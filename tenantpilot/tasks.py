"""The body of one queued job: a sync run inside the consumer, with its progress heartbeat.

`tenantpilot.queue` registers `sync_job` as the Huey task of each backend; this module knows no
queue backend and no Huey instance beyond the one it is handed for progress.
"""

from __future__ import annotations

from typing import Any

from tenantpilot import logs, progress
from tenantpilot.config import settings
from tenantpilot.store import Store
from tenantpilot.sync import execute_run

INTERRUPTED = "Interrupted: the worker stopped during this sync (killed or restarted). Sync again."


def sync_job(run_id: int, huey: Any) -> None:
    """Run one queued sync to its end, publishing progress into `huey`'s storage."""
    cfg = settings()
    logs.configure(cfg.log_dir)
    reporter = progress.Reporter(huey, run_id).start()
    try:
        execute_run(run_id, cfg, Store(cfg.db_path, cfg.db_lock_timeout_s), reporter)
    finally:
        reporter.stop()
