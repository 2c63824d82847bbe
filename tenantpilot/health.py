"""One health report for the CLI (`health`) and the Health page: the same facts for both."""

from __future__ import annotations

import time
from typing import Any

from tenantpilot import progress, queue
from tenantpilot.config import Settings
from tenantpilot.store import Store


def health_report(cfg: Settings, store: Store) -> dict[str, Any]:
    report: dict[str, Any] = {"queue": {"backend": cfg.queue_backend}, "database": {"path": str(cfg.db_path)},
                              "demo": cfg.demo}
    try:
        report["queue"].update(**queue.counts(cfg), reachable=True)
    except queue.QueueUnavailable as exc:
        report["queue"].update(reachable=False, error=str(exc))
    beat = queue.consumer_heartbeat(cfg) if report["queue"]["reachable"] else None
    report["consumer"] = {
        "alive": bool(beat) and not progress.is_stale(beat, max(cfg.stale_after_s, 10)),
        "last_heartbeat_s_ago": round(time.time() - beat["ts"], 1) if beat else None,
        "pid": beat.get("pid") if beat else None,
    }
    try:
        runs = store.runs(limit=5000)
        report["database"]["reachable"] = True
        running = runs.filter(runs["status"] == "running")
        report["queue"]["running"] = running.height
        last = runs.sort("run_id", descending=True).unique("tenant_id", keep="first").sort("tenant_id")
        report["tenants"] = [
            {"tenant_id": r["tenant_id"], "display_name": r["display_name"], "last_run_id": r["run_id"],
             "status": r["status"], "finished_at": r["finished_at"].isoformat() if r["finished_at"] else None,
             "error": r["error"]}
            for r in last.iter_rows(named=True)
        ]
    except Exception as exc:  # noqa: BLE001
        report["database"].update(reachable=False, error=str(exc))
        report["tenants"] = []
    report["healthy"] = bool(report["queue"]["reachable"] and report["database"].get("reachable")
                             and report["consumer"]["alive"])
    return report
