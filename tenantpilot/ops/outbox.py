"""The alert outbox: alerts waiting to be delivered, kept in files beside the database, and the consumer's
one delivery thread that works through them.

Why not a Huey task: an alert task ran on the sync workers, so a receiver that answers slowly held a
worker (manual syncs did not start), and its retries lived in the queue, so a Redis restart lost them
and nobody was told. Now:

* when a sync ends, its worker writes one small file ``<db>.alerts/pending/run-<id>.json`` (no network,
  no database) and goes on with the next sync;
* each consumer process runs one daemon thread (`Deliverer`) that, about every second, takes the entries
  that are due, builds the alert on the first attempt (tasks.alert_job), delivers it (alerts.deliver:
  every HTTP call has a deadline for the whole call) and rewrites the entry with the channels still to
  try and when, or removes it. An unexpected error while building or sending is logged as a JSON event
  ("alert attempt failed") and retried by the same rule as a delivery failure;
* a channel given up on (the retry rule's bound, or an answer that retrying cannot fix: 4xx, a redirect)
  leaves ``given-up/run-<id>-<channel>.json``, logged as "alert given up" and listed by `given_up` for
  Health (the CLI's and the page's) and the Sync page.

The files survive a Redis restart, a flushed queue and a consumer restart: the thread simply finds them
again. Two consumers never send the same entry at once: an entry is worked on under an exclusive
`flock` of its file, released by the kernel if the process dies.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tenantpilot import logs
from tenantpilot.config import Settings
from tenantpilot.graph.retry import CONNECTION, Attempts

log = logging.getLogger("tenantpilot.alerts")
POLL_S = 1.0
GIVEN_UP_SHOWN = 50  # the newest given-up entries listed by `given_up`
RECENT_S = 7 * 86400  # a given-up alert is shown on the Sync page and asks for attention in Health this long


def folder(cfg: Settings) -> Path:
    """The outbox of this database: beside it, so it lives (and is backed up) with the data."""
    return cfg.db_path.parent / f"{cfg.db_path.name}.alerts"


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    draft.write_text(json.dumps(data, ensure_ascii=False, default=str), encoding="utf-8")
    os.replace(draft, path)  # an entry appears whole or not at all


def add(cfg: Settings, run_id: int) -> Path:
    """Queue the alert decision of a finished run (built later, off the sync's worker)."""
    path = folder(cfg) / "pending" / f"run-{run_id}.json"
    _write(path, {"run_id": run_id, "attempt": 0, "due": time.time(), "message": None, "channels": None})
    return path


def pending(cfg: Settings) -> list[dict[str, Any]]:
    """Entries waiting (each with its `path`), soonest first."""
    found = []
    for path in (folder(cfg) / "pending").glob("run-*.json"):
        try:
            found.append({**json.loads(path.read_text(encoding="utf-8")), "path": str(path)})
        except (OSError, ValueError):
            continue  # removed meanwhile, or being replaced: the next round sees it
    return sorted(found, key=lambda e: float(e.get("due") or 0))


def given_up(cfg: Settings, limit: int = GIVEN_UP_SHOWN, within_s: float | None = None) -> list[dict[str, Any]]:
    """Alerts given up on (in the last `within_s` seconds), newest first: run_id, tenant, tenant_id,
    channel, error, attempts, at (epoch seconds)."""
    found = []
    oldest = time.time() - within_s if within_s is not None else 0.0
    for path in (folder(cfg) / "given-up").glob("run-*.json"):
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if float(entry.get("at") or 0) >= oldest:
            found.append(entry)
    return sorted(found, key=lambda e: -float(e.get("at") or 0))[:limit]


@contextmanager
def _claimed(path: Path) -> Iterator[dict[str, Any] | None]:
    """The entry at `path` under an exclusive lock, or None when another process works on it or it is gone."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - held across the yield
    except FileNotFoundError:
        yield None
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield None
            return
        try:  # the lock is on this inode: the entry must still be the one at `path`
            same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        yield json.loads(handle.read()) if same else None


Attempt = Callable[[int, "dict[str, Any] | None", "list[str] | None", int], Any]


@dataclass
class Deliverer:
    """The consumer's delivery thread. `attempt` is tasks.alert_job: (run_id, message, channels, attempt)
    -> alerts.Delivery | None."""

    cfg: Settings
    attempt: Attempt

    def start(self) -> Deliverer:
        threading.Thread(target=self._loop, name="alert-delivery", daemon=True).start()
        return self

    def _loop(self) -> None:
        while True:
            try:
                self.run_due()
            except OSError:  # the folder is unreadable (disk, permissions): say so, try again
                logs.log(log, logging.ERROR, "alert outbox unreadable", folder=str(folder(self.cfg)), exc_info=True)
            time.sleep(POLL_S)

    def run_due(self, now: float | None = None) -> int:
        """Work through every entry that is due; returns how many were attempted."""
        done = 0
        for entry in pending(self.cfg):
            if float(entry.get("due") or 0) > (now or time.time()):
                break
            path = Path(entry["path"])
            with _claimed(path) as claimed:
                if claimed is None or float(claimed.get("due") or 0) > (now or time.time()):
                    continue
                self._one(path, claimed)
                done += 1
        return done

    def _one(self, path: Path, entry: dict[str, Any]) -> None:
        from tenantpilot.ops.alerts import RETRY  # the one retry rule for alerts

        run_id, attempt = int(entry["run_id"]), int(entry.get("attempt") or 0)
        try:
            result = self.attempt(run_id, entry.get("message"), entry.get("channels"), attempt)
        except Exception as exc:  # noqa: BLE001 - any bug or bad data while building must not lose the alert
            decision = RETRY.decide(CONNECTION, Attempts(retries=attempt, throttled=attempt))
            retry = decision.action == "retry"
            logs.log(log, logging.ERROR, "alert attempt failed", run_id=run_id, attempt=attempt + 1,
                     error=f"{type(exc).__name__}: {logs.redact(str(exc))}",
                     next=f"retry in {decision.delay:.1f} s" if retry else "given up", exc_info=True)
            if retry:
                _write(path, {**entry, "attempt": attempt + 1, "due": time.time() + decision.delay})
            else:
                give_up(self.cfg, run_id, entry.get("message"), {"all": f"{type(exc).__name__}: {exc}"}, attempt + 1)
                path.unlink(missing_ok=True)
            return
        if result is None:
            path.unlink(missing_ok=True)
            return
        if result.given_up:
            give_up(self.cfg, run_id, result.message, result.given_up, attempt + 1)
        if result.retry:
            _write(path, {"run_id": run_id, "attempt": attempt + 1, "due": time.time() + result.delay,
                          "message": result.message, "channels": result.channels})
        else:
            path.unlink(missing_ok=True)


def give_up(cfg: Settings, run_id: int, message: dict[str, Any] | None, why: dict[str, str], attempts: int) -> None:
    """Record channels given up on for a run's alert (`why`: channel -> error): a file each under
    given-up/ (Health, the Sync page) and an "alert given up" JSON log event each."""
    tenant = (message or {}).get("tenant")
    for channel, error in why.items():
        _write(folder(cfg) / "given-up" / f"run-{run_id}-{channel}.json",
               {"run_id": run_id, "tenant": tenant, "tenant_id": (message or {}).get("tenant_id"),
                "channel": channel, "error": logs.redact(error), "attempts": attempts, "at": time.time()})
        logs.log(log, logging.ERROR, "alert given up", run_id=run_id, channel=channel, tenant=tenant,
                 error=logs.redact(error), attempts=attempts)
