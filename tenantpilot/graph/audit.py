"""Intune's audit events (who changed what, when), read from Graph for one sync.

`GET /deviceManagement/auditEvents?$filter=activityDateTime gt <since>`: every page, through the
sync's GraphClient (its retry, throttle and nextLink rules). Graph's docs: "List auditEvents"
(learn.microsoft.com/graph/api/intune-auditing-auditevent-list, v1.0 and beta) needs the application
permission `DeviceManagementApps.Read.All` (or `DeviceManagementApps.ReadWrite.All`); the auditEvent
resource (learn.microsoft.com/graph/api/resources/intune-auditing-auditevent) has `activityDateTime`
(UTC), `actor` (auditActor: `userPrincipalName`, `applicationDisplayName`, `type`, ...), `activity`,
`activityType`, `activityOperationType`, `componentName` and `resources` (auditResource: `resourceId`,
`displayName`, `type`, `modifiedProperties`). IntuneCD reads it the same way (almenscorner/IntuneCD
`src/IntuneCD/intunecdlib/graph_request.py`, makeAuditRequest: v1.0, `$filter=activityDateTime gt …
and activityOperationType ne 'Get'`, the actor is `userPrincipalName` for `auditActorType` "ItPro",
else `applicationDisplayName`) and matches `resources[].resourceId` to the policy client-side.

Kept: only the fields above, and of `modifiedProperties` (auditProperty: displayName, oldValue,
newValue) only the names, which say which settings an event changed (sync/audit.py attributes a
setting change to the event that names it). The old and new values (which may be secrets) and the
actor's IP address are dropped here, before anything is stored or logged.

A 403 (the permission is missing) or any other Graph error is a warning on the run naming what to
do; it never fails the sync.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import polars as pl

from .client import GraphClient
from .errors import GraphError, PermissionDenied

AUDIT_PATH = "/deviceManagement/auditEvents"
AUDIT_PERMISSION = "DeviceManagementApps.Read.All"
FIRST_WINDOW = timedelta(days=30)  # a tenant's first sync reads this far back
EVENT_SCHEMA: dict[str, Any] = {
    "event_id": pl.String, "activity_time": pl.Datetime("us", "UTC"), "actor_upn": pl.String,
    "actor_app": pl.String, "actor_type": pl.String, "activity": pl.String, "activity_type": pl.String,
    "operation_type": pl.String, "component": pl.String, "resource_ids": pl.List(pl.String),
    "resources": pl.String,
}


@dataclass
class AuditRead:
    """The events read (EVENT_SCHEMA rows) and why they could not be, if so."""

    events: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=EVENT_SCHEMA))
    warnings: list[str] = field(default_factory=list)


def graph_filter_time(moment: datetime) -> str:
    """An OData DateTimeOffset literal in UTC (`2026-12-01T08:00:00Z`)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: Any) -> datetime | None:
    """Graph's timestamps (seven fractional digits, `Z`) as aware UTC datetimes; None when unusable."""
    if not isinstance(text, str) or not text:
        return None
    head, _, frac = text.rstrip("Z").partition(".")
    try:
        moment = datetime.fromisoformat(head)
    except ValueError:
        return None
    digits = "".join(c for c in frac if c.isdigit())[:6].ljust(6, "0")
    moment = moment.replace(microsecond=int(digits))
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int, float)) and str(value) != "" else None


def _property_names(value: Any) -> list[str]:
    """The displayName of each auditProperty (never its values)."""
    return [name for p in value if isinstance(p, dict) and (name := _text(p.get("displayName")))] \
        if isinstance(value, list) else []


def event_row(item: dict[str, Any]) -> dict[str, Any] | None:
    """One auditEvent -> one EVENT_SCHEMA row (only the kept fields); None without an id."""
    event_id = _text(item.get("id"))
    if event_id is None:
        return None
    actor: dict[str, Any] = item["actor"] if isinstance(item.get("actor"), dict) else {}
    resources = [r for r in item.get("resources") or () if isinstance(r, dict)]
    kept = [{"resourceId": _text(r.get("resourceId")), "displayName": _text(r.get("displayName")),
             "type": _text(r.get("type")), "properties": _property_names(r.get("modifiedProperties"))}
            for r in resources]
    return {
        "event_id": event_id,
        "activity_time": parse_time(item.get("activityDateTime")),
        "actor_upn": _text(actor.get("userPrincipalName")),
        "actor_app": _text(actor.get("applicationDisplayName")),
        "actor_type": _text(actor.get("auditActorType")) or _text(actor.get("type")),
        "activity": _text(item.get("activity")) or _text(item.get("displayName")),
        "activity_type": _text(item.get("activityType")),
        "operation_type": _text(item.get("activityOperationType")),
        "component": _text(item.get("componentName")),
        "resource_ids": [r["resourceId"] for r in kept if r["resourceId"]],
        "resources": json.dumps(kept, ensure_ascii=False),
    }


def fetch_audit_events(client: GraphClient, since: datetime | None, *, now: datetime | None = None) -> AuditRead:
    """The tenant's audit events after `since` (None: the last FIRST_WINDOW)."""
    now = now or datetime.now(timezone.utc)
    since = since or now - FIRST_WINDOW
    out = AuditRead()
    try:
        items = client.get_all(AUDIT_PATH, {"$filter": f"activityDateTime gt {graph_filter_time(since)}"})
    except PermissionDenied:
        out.warnings.append(f"Audit events not read: Graph denied {AUDIT_PATH} (403); the app needs "
                            f"{AUDIT_PERMISSION}. Changes show no actor (who changed it) for this sync.")
        return out
    except GraphError as exc:
        out.warnings.append(f"Audit events not read ({exc}); changes show no actor (who changed it) "
                            "for this sync.")
        return out
    rows = [r for r in (event_row(i) for i in items if isinstance(i, dict)) if r is not None]
    if rows:
        out.events = pl.DataFrame(rows, schema=EVENT_SCHEMA).unique("event_id", keep="last", maintain_order=True)
    return out
