"""The demo's "week of changes": what two admins do to a simulated tenant over a few days, each step
with the Intune audit event it leaves (SimTenant.record_audit), so a sync after it finds setting
changes with "changed by", a deleted and an added policy, and alerts have content.

Served as `POST /_sim/tenants/{tid}/week {"since": ISO time}` (server.py): the events are dated from
`since` (the tenant's last sync; at most a week back) to now, in order, so the next sync reads and
attributes them. Deterministic, and repeatable: every call changes the values again.

The steps (on the tenant's own policies; a step whose policy the tenant lacks is left out):
1. admin A raises the minimum password length of the first Windows device-restrictions profile;
2. admin B shortens its password expiry: two admins, two settings, one policy, each named by the
   event's `modifiedProperties` (per-setting attribution);
3. admin B changes an integer setting of a settings-catalog policy (its event names the policy
   only: per-policy attribution);
4. admin A deletes a Wi-Fi profile;
5. admin A adds a device-restrictions profile (a pilot copy of step 1's profile).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from graphsim.tenants import SimPolicy, SimTenant

JSON = dict[str, Any]
ADMINS = ("adele.vance", "megan.bowen")  # Microsoft's sample personas, at the tenant's domain
WEEK = dt.timedelta(days=7)
RESTRICTIONS = "#microsoft.graph.windows10GeneralConfiguration"
EXPIRY_CYCLE = (365, 90, 180)


def _restrictions(tenant: SimTenant) -> SimPolicy | None:
    return next((p for p in tenant.list_policies("deviceConfigurations")
                 if p.resource.get("@odata.type") == RESTRICTIONS
                 and isinstance(p.resource.get("passwordMinimumLength"), int)), None)


def _wifi(tenant: SimTenant) -> SimPolicy | None:
    return next((p for p in tenant.list_policies("deviceConfigurations")
                 if "WiFiConfiguration" in str(p.resource.get("@odata.type"))), None)


def moments(since: dt.datetime | None, now: dt.datetime, count: int) -> list[dt.datetime]:
    """`count` times spread over (since, now], oldest first: at most a week back, never before `since`."""
    start = max(since, now - WEEK) if since is not None else now - WEEK
    span = max(now - start, dt.timedelta(seconds=count))
    return [start + span * (i + 1) / (count + 1) for i in range(count)]


def simulate_week(tenant: SimTenant, since: dt.datetime | None = None, now: dt.datetime | None = None) -> list[JSON]:
    """Make the week's changes in `tenant` and record their audit events; returns one line per step:
    {at, actor, activity, policy, setting, old, new}."""
    now = now or dt.datetime.now(dt.timezone.utc)
    when = iter(moments(since, now, 5))
    a, b = (f"{name}@{tenant.domain}" for name in ADMINS)
    done: list[JSON] = []

    def note(at: dt.datetime, actor: str, activity: str, policy: SimPolicy, setting: str | None = None,
             old: Any = None, new: Any = None) -> None:
        done.append({"at": at.isoformat(), "actor": actor, "activity": activity, "policy": policy.name,
                     "setting": setting, "old": old, "new": new})

    restrictions = _restrictions(tenant)
    t1, t2 = next(when), next(when)
    if restrictions is not None:
        length = restrictions.resource["passwordMinimumLength"]
        new_length = length + 2 if length < 20 else 8
        tenant.change_setting(restrictions.id, "passwordMinimumLength", new_length)
        tenant.record_audit(restrictions, "Patch", a, [("passwordMinimumLength", length, new_length)], at=t1)
        note(t1, a, "Patch", restrictions, "passwordMinimumLength", length, new_length)
        expiry = restrictions.resource.get("passwordExpirationDays")
        new_expiry = EXPIRY_CYCLE[(EXPIRY_CYCLE.index(expiry) + 1) % 3] if expiry in EXPIRY_CYCLE else EXPIRY_CYCLE[1]
        tenant.change_setting(restrictions.id, "passwordExpirationDays", new_expiry)
        tenant.record_audit(restrictions, "Patch", b, [("passwordExpirationDays", expiry, new_expiry)], at=t2)
        note(t2, b, "Patch", restrictions, "passwordExpirationDays", expiry, new_expiry)
    t3 = next(when)
    try:
        changed = tenant.change_any_setting()
    except LookupError:
        changed = None
    catalog = tenant.find_policy(changed["policy_id"]) if changed else None
    if changed and catalog is not None:
        tenant.record_audit(catalog, "Patch", b, at=t3)  # a settings-catalog event names no property
        note(t3, b, "Patch", catalog, changed["setting_definition_id"], changed["old"], changed["new"])
    t4 = next(when)
    wifi = _wifi(tenant)
    if wifi is not None:
        tenant.delete_policy(wifi.id)
        tenant.record_audit(wifi, "Delete", a, at=t4)
        note(t4, a, "Delete", wifi)
    t5 = next(when)
    if restrictions is not None:
        copy = {k: v for k, v in restrictions.resource.items() if k not in ("createdDateTime", "lastModifiedDateTime")}
        pilot_id = str(uuid.uuid4())
        copy.update(id=pilot_id, displayName=f"{restrictions.name}_Pilot", version=1,
                    description="Pilot ring: stricter passwords before the whole fleet")
        pilot = tenant.add_policy("deviceConfigurations", copy, assignments=tenant._group_assignment(pilot_id))
        tenant.record_audit(pilot, "Create", a, at=t5)
        note(t5, a, "Create", pilot)
    return done
