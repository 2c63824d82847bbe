"""One health report for the CLI (`health`) and the Health page: the same facts for both."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import polars as pl
import redis

from tenantpilot.config import Settings
from tenantpilot.ops import outbox, progress, queue, relay
from tenantpilot.store import Store, StoreError


def with_causes(store: Store, tenants: pl.DataFrame) -> pl.DataFrame:
    """Store.tenants() with `last_error` of a partial last run filled with its cause: the types it did
    not read and why ("partial: 2 types not read: Compliance policies (forbidden), …"), as a failed
    run shows its error. The Tenants page, `tenants list` and Health show the same text."""
    partial = tenants.filter((pl.col("last_status") == "partial") & pl.col("last_error").is_null())
    if not partial.height:
        return tenants
    types = store.run_types([int(r) for r in partial["last_run_id"]]).filter(pl.col("status") != "read")
    causes: dict[int, str] = {}
    for (run_id,), group in types.group_by("run_id"):
        named = [f"{t['label']} ({t.get('reason') or t['status']})" for t in group.sort("label").iter_rows(named=True)]
        causes[int(run_id)] = f"partial: {len(named)} type(s) not read: " + "; ".join(named)
    cause = pl.Series("cause", [causes.get(int(r)) if r is not None else None for r in tenants["last_run_id"]],
                      dtype=pl.String)
    return tenants.with_columns(pl.when(pl.col("last_status") == "partial").then(
        pl.coalesce(pl.col("last_error"), cause)).otherwise(pl.col("last_error")).alias("last_error"))


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
    report["fetchers"] = fetchers_report(cfg) if cfg.redis_url and report["queue"]["reachable"] else []
    report["stuck_runs"] = []
    try:
        active = store.runs(statuses=["queued", "running"], limit=5000)
        tenants = with_causes(store, store.tenants())
        report["database"]["reachable"] = True
        report["queue"]["running"] = active.filter(active["status"] == "running").height
        now = datetime.now(timezone.utc)
        report["tenants"] = [
            {"tenant_id": r["tenant_id"], "display_name": r["display_name"], "last_run_id": r["last_run_id"],
             "status": r["last_status"], "error": r["last_error"],
             "finished_at": r["last_run_at"].isoformat() if r["last_run_at"] else None,
             "data_run_id": r["current_run_id"],
             "data_as_of": r["data_as_of"].isoformat() if r["data_as_of"] else None,
             "summary": status_line(r, now), "data": data_line(r, now)}
            for r in tenants.iter_rows(named=True) if r["last_run_id"] is not None
        ]
        report["not_read"] = not_read(store, tenants, cfg.not_read_days, now)
        report["unconfigured_channels"] = unconfigured_channels(store, cfg, dict(zip(tenants["tenant_id"],
                                                                                   tenants["display_name"])))
        if report["queue"]["reachable"]:
            report["stuck_runs"] = stuck_runs(cfg, active)
    except StoreError as exc:
        report["database"].update(reachable=False, error=str(exc))
        report["tenants"] = []
    except queue.QueueUnavailable as exc:
        report["queue"].update(reachable=False, error=str(exc))
    report["alerts"] = alert_report(cfg)
    report["attention"] = attention(report)
    report["healthy"] = bool(report["queue"]["reachable"] and report["database"].get("reachable")
                             and report["consumer"]["alive"] and not report["stuck_runs"])
    return report


def fetchers_report(cfg: Settings) -> list[dict[str, Any]]:
    """The fetching consumers alive (README "More machines"): where, workers, busy."""
    try:
        alive = relay.fetchers(relay.client(cfg), cfg.stale_after_s)
    except redis.RedisError:
        return []
    return [{"consumer": who, **counts} for who, counts in sorted(alive.items())]


def alert_report(cfg: Settings) -> dict[str, Any]:
    """Alerts waiting in the outbox and those given up on (newest first), from tenantpilot/ops/outbox.py."""
    try:
        return {"pending": len(outbox.pending(cfg)), "given_up": outbox.given_up(cfg, within_s=outbox.RECENT_S)}
    except OSError as exc:
        return {"pending": None, "given_up": [], "error": f"the alert outbox {outbox.folder(cfg)} is unreadable: {exc}"}


def unconfigured_channels(store: Store, cfg: Settings, names: dict[str, str]) -> list[dict[str, str]]:
    """Channel names a group or tenant carries that the environment no longer configures (ops/channels.py): their
    alerts skip them, so someone should know."""
    from tenantpilot.ops import channels

    out = []
    for row in store.alert_channel_settings().iter_rows(named=True):
        for name in channels.unknown(cfg, row["channels"]):
            owner = names.get(row["owner"], row["owner"]) if row["kind"] == "tenant" else row["owner"]
            out.append({"kind": row["kind"], "owner": owner, "channel": name,
                        "fix": f"set {channels.PREFIX}{name.upper()}_TEAMS (or _SLACK, _WEBHOOK, _SMTP), or choose "
                               f"other channels for the {row['kind']}"})
    return out


def not_read(store: Store, tenants: pl.DataFrame, days: float, now: datetime) -> list[dict[str, Any]]:
    """Types of the tenants' current data not read for longer than `days` (TENANTPILOT_NOT_READ_DAYS):
    carried forward from a run older than that, or never read by a tenant added before that."""
    added = dict(zip(tenants["tenant_id"], tenants["added_at"]))
    out = []
    for t in store.current_carried().iter_rows(named=True):
        since = t["carried_from_at"] or added.get(t["tenant_id"])
        if since is None or (now - since).total_seconds() <= days * 86400:
            continue
        out.append({"tenant_id": t["tenant_id"], "tenant": t["tenant"], "label": t["label"],
                    "reason": t["reason"] or t["status"], "last_read": t["carried_from_at"],
                    "since": f"since {age(t['carried_from_at'], now)}" if t["carried_from_at"] else "ever"})
    return out


def attention(report: dict[str, Any]) -> list[str]:
    """What someone should look at even when every part is up: tenants whose last sync failed, alerts
    given up on in the last week. The Health page's banner is green only when this is empty."""
    out = [f"{t['display_name']}: last sync failed" + (f": {t['error']}" if t.get("error") else "")
           for t in report.get("tenants", []) if t.get("status") == "failed"]
    out += [f"{t['tenant']}: {t['label']} not read {t['since']} ({t['reason']})" for t in report.get("not_read", [])]
    for g in report["alerts"]["given_up"]:
        out.append(f"alert of run {g['run_id']} ({g.get('tenant') or 'unknown tenant'}) not delivered to "
                   f"{g['channel']}, given up after {g['attempts']} attempt(s): {g['error']}")
    out += [f"{c['kind']} {c['owner']}: alert channel {c['channel']} is not configured: {c['fix']}"
            for c in report.get("unconfigured_channels", [])]
    if report["alerts"].get("error"):
        out.append(report["alerts"]["error"])
    return out


STUCK_QUEUED_S = 120.0  # a queued run older than this, with a live worker, is stuck


def stuck_runs(cfg: Settings, active: Any) -> list[dict[str, Any]]:
    """Runs that will not finish on their own: queued with no queue message (or for too long while
    a worker is alive and no run is running), or running without a heartbeat. The repair (consumer, enqueue) fixes them."""
    now = time.time()
    waiting = queue.pending_run_ids(cfg)
    beat = queue.consumer_heartbeat(cfg)
    worker_alive = bool(beat) and not progress.is_stale(beat, max(cfg.stale_after_s, 10))
    # a night's runs wait behind each other while the workers sync: queued long is stuck only when nothing runs
    busy = "running" in set(active["status"])
    out = []
    for r in active.iter_rows(named=True):
        age_s = now - (r["started_at"] or r["queued_at"]).timestamp()
        why = None
        if r["status"] == "queued" and queue.orphaned(r, waiting, now):
            why = "queued, but its queue message is gone (the queue lost its data)"
        elif r["status"] == "queued" and worker_alive and not busy and age_s > STUCK_QUEUED_S:
            why = f"queued for {age_s:.0f} s while the worker is running"
        elif r["status"] == "running" and progress.is_stale(queue.run_progress(r["run_id"], cfg), cfg.stale_after_s) \
                and age_s > cfg.stale_after_s:
            why = "running, but its worker stopped sending heartbeats"
        if why:
            out.append({"run_id": r["run_id"], "tenant_id": r["tenant_id"], "status": r["status"], "why": why})
    return out


def age(when: datetime | None, now: datetime) -> str:
    """How long ago, as people say it: "5 min ago", "3 days ago"."""
    if when is None:
        return "never"
    seconds = max(0.0, (now - when).total_seconds())
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if unit == 'day' and n != 1 else ''} ago"
    return "just now"


def data_line(row: dict, now: datetime) -> str:
    """Which run the data on screen comes from, and how old it is."""
    if not row.get("current_run_id"):
        return "no data yet"
    carried = " (part carried forward)" if row.get("current_status") == "partial" else ""
    return (f"showing run {row['current_run_id']} from {age(row['data_as_of'], now)}, "
            f"{row['setting_count'] or 0:,} settings{carried}")


def status_line(row: dict, now: datetime) -> str:
    """The tenant's last run and, apart from it, the data shown: "last sync failed (…); showing run
    12 from 3 days ago, 735 settings". The same facts as the Tenants page."""
    last = row.get("last_status")
    if last is None:
        return "never synced"
    shown = data_line(row, now)
    if row.get("last_run_id") == row.get("current_run_id"):
        carried = " (some types carried forward)" if last == "partial" else ""
        cause = f" ({row['last_error']})" if last == "partial" and row.get("last_error") else ""
        return f"last sync {last}{carried}{cause}; {shown}"
    error = f": {row['last_error']}" if row.get("last_error") else ""
    return f"last sync {last} ({age(row.get('last_run_at'), now)}){error}; {shown}"
