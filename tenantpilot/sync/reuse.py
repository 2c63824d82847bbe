"""The reuse rule: when a sync may leave a policy's per-policy follow-ups unread and keep its stored rows.

Why the audit log and not the list entry alone: no Microsoft doc says a list entry (its
`lastModifiedDateTime`, `version`, ...) changes when a policy's settings or assignments change. What
Microsoft documents is the audit log: "Audit logs include a record of activities that generate a
change in Microsoft Intune. Create, update (edit), delete, assign, and remote actions all create audit
events that administrators can review for most Intune workloads. Auditing is enabled by default for all
customers. It can't be disabled." (learn.microsoft.com/mem/intune/fundamentals/monitor-audit-logs).
"Most", not all: so a full read every `TENANTPILOT_FULL_READ_DAYS` days is the guard, and the screens say
which run read what (app/labels.py reuse_line).

A policy's follow-ups (settings, assignments, definitionValues, ... everything graph/fetch.py asks per
policy) are skipped, and its current rows kept as they are, only when ALL hold (`may_reuse`):

1. the tenant's previous good run `succeeded` (every type read), and this run's audit read was complete
   (no warning: a 403 or any Graph error on auditEvents means a full read);
2. the last run that read the tenant in full (no policy reused) started less than `full_read_days` days
   ago (0: always read in full);
3. no audit event with `activityDateTime` since (the previous good run's start - `overlap_hours`, for
   events Intune writes late) names the policy id in `resources[].resourceId`;
4. the type has per-policy follow-ups, and the policy's list entry now equals the list entry stored for
   its current version: every key the list returned has the same value in the stored raw JSON. The
   stored JSON has secrets masked (and script bodies decoded), so such an entry never matches: the safe
   direction.

A policy new since the last run, deleted, or not matching is read in full as before. So are the types whose
follow-ups are objects of their own (READ_IN_FULL): an Apple enrollment profile under its ADE token, a role
assignment under its role. Their audit events name the child's id, which the parent's list entry does not
hold, so a changed or added child could not be told from the parent's events.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import polars as pl

from tenantpilot.graph.policy_types import PolicyType

READ_IN_FULL: frozenset[str] = frozenset({"depOnboardingSettings", "roleDefinitions"})


@dataclass(frozen=True)
class Basis:
    """What the store and the settings say before Graph is asked (store.reuse_basis + config)."""

    previous_status: str | None  # status of the tenant's latest good (succeeded | partial) run
    previous_started: datetime | None  # when that run started
    last_full_read: datetime | None  # start of the latest succeeded run that reused no policy
    full_read_days: int  # TENANTPILOT_FULL_READ_DAYS (0: always read in full)
    overlap_hours: float  # TENANTPILOT_AUDIT_OVERLAP_HOURS
    stored: Mapping[str, str] = field(default_factory=dict)  # policy id -> raw_json of its current version

    @property
    def audit_since(self) -> datetime | None:
        """Where this run's audit read starts: the previous good run's start less the overlap."""
        if self.previous_started is None:
            return None
        return self.previous_started.astimezone(timezone.utc) - timedelta(hours=self.overlap_hours)


@dataclass(frozen=True)
class RunFacts:
    """The run-level half of the rule."""

    previous_status: str | None
    audit_complete: bool
    last_full_read: datetime | None
    full_read_days: int
    now: datetime


def full_read_reason(run: RunFacts) -> str | None:
    """Why this run reads every policy in full (None: policies may be reused)."""
    if run.full_read_days <= 0:
        return "a full read every run (TENANTPILOT_FULL_READ_DAYS=0)"
    if run.previous_status != "succeeded":
        return "the previous run did not read every type" if run.previous_status else "the first sync"
    if not run.audit_complete:
        return "the audit events could not be read"
    if run.last_full_read is None or run.now - run.last_full_read >= timedelta(days=run.full_read_days):
        return f"the last full read is {run.full_read_days} days old or more"
    return None


def list_entry_unchanged(item: Mapping[str, Any], stored_raw_json: str | None) -> bool:
    """Every key of the list entry has the same value in the stored raw JSON."""
    if not stored_raw_json:
        return False
    try:
        stored = json.loads(stored_raw_json)
    except ValueError:
        return False
    return isinstance(stored, dict) and all(k in stored and stored[k] == v for k, v in item.items())


def may_reuse(run: RunFacts, *, has_follow_ups: bool, named_in_audit: bool, item: Mapping[str, Any],
              stored_raw_json: str | None) -> bool:
    """The rule (module docstring): True only when every condition holds."""
    return (full_read_reason(run) is None and has_follow_ups and not named_in_audit
            and list_entry_unchanged(item, stored_raw_json))


def named_ids(events: pl.DataFrame, since: datetime | None) -> frozenset[str]:
    """Policy ids named in `resources[].resourceId` by the events at or after `since`."""
    if not events.height or "resource_ids" not in events.columns:
        return frozenset()
    if since is not None:  # in the events' zone (a time read from the store may say Etc/UTC)
        bound = pl.lit(since.astimezone(timezone.utc)).dt.convert_time_zone("UTC")
        events = events.filter(pl.col("activity_time").is_null() | (pl.col("activity_time") >= bound))
    return frozenset(str(i) for ids in events["resource_ids"].to_list() for i in (ids or ()) if i)


@dataclass(frozen=True)
class Reused:
    """What a run that reused policies records (sync_runs.reused_policies, reused_since, full_read_at)."""

    policies: tuple[tuple[str, str], ...]  # (type key, policy id)
    since: datetime | None  # the audit window's start
    full_read_at: datetime | None  # start of the last run that read the tenant in full


def rule(basis: Basis | None, events: pl.DataFrame, audit_complete: bool, now: datetime
         ) -> tuple[Callable[[PolicyType, dict[str, Any]], bool] | None, str | None]:
    """(the predicate graph/fetch.py asks per listed policy, or None for a full read; why a full read)."""
    if basis is None:
        return None, None
    run = RunFacts(basis.previous_status, audit_complete, basis.last_full_read, basis.full_read_days, now)
    why = full_read_reason(run)
    if why is not None:
        return None, why
    named = named_ids(events, basis.audit_since)

    def predicate(ptype: PolicyType, item: dict[str, Any]) -> bool:
        pid = str(item.get("id", ""))
        return may_reuse(run, has_follow_ups=bool(ptype.follow_ups) and ptype.key not in READ_IN_FULL,
                         named_in_audit=pid in named, item=item,
                         stored_raw_json=basis.stored.get(pid))

    return predicate, None
