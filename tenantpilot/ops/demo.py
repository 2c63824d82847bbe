"""The demo's "Simulate a week of changes": asks the local Graph simulator (its control API, over HTTPS
with the simulator's own CA, as simulator.json names them) to change the demo tenants the way two admins
would over a few days (graphsim/week.py), then queues a sync of each, so Changes, "changed by" and
alerts have something true to show. Demo mode only: the simulator is the only Graph it can change."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

from tenantpilot.config import Settings
from tenantpilot.ops import queue
from tenantpilot.store import Store

TIMEOUT_S = 30


class SimulatorUnavailable(RuntimeError):
    """The local simulator is not running or did not do what was asked (the message says which)."""


@dataclass
class Week:
    steps: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # tenant id -> what changed
    runs: dict[str, int] = field(default_factory=dict)  # tenant id -> the sync queued after it


def simulator(cfg: Settings) -> dict[str, Any]:
    """The running simulator's simulator.json (url, ca_path, tenants)."""
    try:
        info = json.loads(cfg.simulator_info_path.read_text(encoding="utf-8"))
        return {"url": str(info["url"]), "ca_path": str(info["ca_path"]),
                "tenants": [str(t["tenant_id"]) for t in info["tenants"]]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SimulatorUnavailable("The Graph simulator is not running (start it with `python -m tenantpilot "
                                   "simulate`, or scripts/run.sh in demo mode).") from exc


def last_sync(store: Store, tenant_id: str) -> datetime | None:
    """When the tenant's latest good sync finished (None: never)."""
    runs = store.runs(tenant_id, statuses=["succeeded", "partial"], limit=1)
    return runs["finished_at"][0] if runs.height else None


def ready(cfg: Settings, store: Store, tenant_ids: list[str]) -> list[str]:
    """The tenants a week of changes can show in Changes: served by the simulator and synced once."""
    served = set(simulator(cfg)["tenants"])
    return [t for t in tenant_ids if t in served and last_sync(store, t) is not None]


def simulate_week(cfg: Settings, store: Store, tenant_ids: list[str]) -> Week:
    """Change each tenant in the simulator (events dated after its last sync), then queue its sync."""
    if not cfg.demo:
        raise SimulatorUnavailable("Simulating changes is for demo mode only: a real tenant is never changed.")
    info = simulator(cfg)
    week = Week()
    for tenant_id in tenant_ids:
        since = last_sync(store, tenant_id)
        try:
            answer = requests.post(f"{info['url']}/_sim/tenants/{tenant_id}/week", verify=info["ca_path"],
                                   json={"since": since.isoformat() if since else None}, timeout=TIMEOUT_S)
            answer.raise_for_status()
            week.steps[tenant_id] = list(answer.json()["steps"])
        except (requests.RequestException, ValueError, KeyError) as exc:
            raise SimulatorUnavailable(f"The Graph simulator did not make the changes: {exc}") from exc
    for tenant_id in tenant_ids:
        week.runs[tenant_id] = queue.enqueue_sync(tenant_id, store, cfg).run_id
    return week
