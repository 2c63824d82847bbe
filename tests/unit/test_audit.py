"""Who changed it: the audit event rows kept from Graph (graph/audit.py), their storage (Store) and
the pure join of events to policy changes (tenantpilot/sync/audit.py)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from tenantpilot.graph.audit import EVENT_SCHEMA, event_row, graph_filter_time, parse_time
from tenantpilot.store import Store
from tenantpilot.sync.audit import attach_actors

UTC = timezone.utc
T = "11111111-1111-4111-8111-111111111111"
OTHER = "22222222-2222-4222-8222-222222222222"


def at(hhmm: str) -> datetime:
    return datetime.fromisoformat(f"2026-12-01T{hhmm}:00").replace(tzinfo=UTC)


def graph_event(eid: str, when: str, policy_ids: list[str], upn: str | None = "alice@contoso.com",
                app: str | None = None, activity: str = "Patch DeviceConfiguration", operation: str = "Patch",
                properties: tuple[str, ...] = ("wiFiPreSharedKey",)) -> dict:
    """An auditEvent in Graph's documented shape (intune-auditing-auditevent)."""
    return {"@odata.type": "#microsoft.graph.auditEvent", "id": eid, "displayName": activity,
            "componentName": "DeviceConfiguration", "activity": activity,
            "activityDateTime": f"2026-12-01T{when}:00Z", "activityType": activity,
            "activityOperationType": operation, "activityResult": "Success",
            "actor": {"@odata.type": "microsoft.graph.auditActor", "auditActorType": "ItPro", "userPrincipalName": upn,
                      "applicationDisplayName": app, "ipAddress": "203.0.113.9", "userPermissions": ["*"]},
            "resources": [{"@odata.type": "microsoft.graph.auditResource", "displayName": f"Policy {p}",
                           "type": "DeviceConfiguration", "resourceId": p,
                           "modifiedProperties": [{"displayName": name, "oldValue": "hunter2",
                                                   "newValue": "s3cr3t-new"} for name in properties]}
                          for p in policy_ids]}


def events_frame(*items: dict, tenant: str = T) -> pl.DataFrame:
    rows = [event_row(i) for i in items]
    return pl.DataFrame(rows, schema=EVENT_SCHEMA).with_columns(pl.lit(tenant).alias("tenant_id"))


def test_event_row_keeps_only_the_listed_fields():
    row = event_row(graph_event("e1", "10:00", ["p1", "p2"]))
    assert row is not None
    assert row["activity_time"] == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert (row["actor_upn"], row["actor_type"], row["activity"], row["operation_type"], row["component"]) == (
        "alice@contoso.com", "ItPro", "Patch DeviceConfiguration", "Patch", "DeviceConfiguration")
    assert row["resource_ids"] == ["p1", "p2"]
    assert json.loads(row["resources"])[0]["properties"] == ["wiFiPreSharedKey"]  # the name, never the values
    text = repr(row)
    assert "hunter2" not in text and "s3cr3t-new" not in text and "203.0.113.9" not in text
    assert event_row({"activityDateTime": "2026-12-01T10:00:00Z"}) is None  # no id: not an event


@pytest.mark.parametrize("text, expected", [
    ("2026-12-01T10:00:00.1234567Z", datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=UTC)),
    ("2026-12-01T10:00:00Z", datetime(2026, 12, 1, 10, 0, tzinfo=UTC)),
    ("2026-12-01T11:00:00+01:00", datetime(2026, 12, 1, 10, 0, tzinfo=UTC)),
    ("yesterday", None),
    (None, None),
])
def test_parse_time(text, expected):
    assert parse_time(text) == expected


def test_filter_time_is_utc():
    assert graph_filter_time(datetime(2026, 12, 1, 11, 0, tzinfo=ZoneInfo("Europe/Berlin"))) == "2026-12-01T10:00:00Z"


EVENTS = events_frame(
    graph_event("e1", "09:00", ["p1"], upn="bob@contoso.com"),
    graph_event("e2", "10:30", ["p1"], upn="alice@contoso.com"),
    graph_event("e3", "10:45", ["p2", "p1"], upn=None, app="IntuneCD"),
    graph_event("e4", "11:30", ["p3"], upn=None, app=None, activity="Delete DeviceConfiguration"),
    graph_event("e5", "10:50", ["p1"], upn="reader@contoso.com", activity="Get DeviceConfiguration",
                operation="Get"),  # a read, not a change
).vstack(events_frame(graph_event("x1", "10:40", ["p9"], upn="mallory@fabrikam.com"), tenant=OTHER))


# (tenant, policy, window start, window end) -> (changed_by, changed_at): a policy's change is attributed to
# every actor who touched the policy in the window, the latest last (the events name the policy only)
@pytest.mark.parametrize("tenant, policy, start, end, by, when", [
    (T, "p1", "10:00", "11:00", "alice@contoso.com, IntuneCD", "10:45"),  # e2 and e3; an app when no user
    (T, "p1", "10:00", "10:40", "alice@contoso.com", "10:30"),
    (T, "p1", "08:00", "09:30", "bob@contoso.com", "09:00"),
    (T, "p1", None, "09:30", "bob@contoso.com", "09:00"),  # no lower bound
    (T, "p1", None, "11:00", "bob@contoso.com, alice@contoso.com, IntuneCD", "10:45"),
    (T, "p2", "10:00", "11:00", "IntuneCD", "10:45"),  # one event, two resources
    (T, "p1", "10:45", "11:00", None, None),  # the start is exclusive
    (T, "p1", "09:00", "10:30", "alice@contoso.com", "10:30"),  # the end is inclusive
    (T, "p3", "11:00", "12:00", "ItPro", "11:30"),  # neither user nor app: the actor type
    (T, "p4", "00:00", "23:00", None, None),  # Intune recorded nothing for it
    (T, "p9", "00:00", "23:00", None, None),  # another tenant's event on the same id
    (OTHER, "p9", "10:00", "11:00", "mallory@fabrikam.com", "10:40"),
])
def test_attach_actors(tenant, policy, start, end, by, when):
    changes = pl.DataFrame({"tenant_id": [tenant], "policy_id": [policy],
                            "window_start": [at(start) if start else None], "window_end": [at(end)]},
                           schema={"tenant_id": pl.String, "policy_id": pl.String,
                                   "window_start": pl.Datetime("us", "UTC"), "window_end": pl.Datetime("us", "UTC")})
    out = attach_actors(changes, EVENTS).row(0, named=True)
    assert out["changed_by"] == by
    if when is None:
        assert out["changed_at"] is None and out["activity"] is None and out["attribution"] is None
    else:
        assert out["attribution"] == "policy"
        assert out["changed_at"] == at(when)
        assert out["activity"] in ("Patch DeviceConfiguration", "Delete DeviceConfiguration")


def test_attach_actors_keeps_rows_order_and_columns_and_mixed_time_zones():
    berlin = ZoneInfo("Europe/Berlin")
    changes = pl.DataFrame({
        "tenant_id": [T, T, T], "policy_id": ["p4", "p1", "p1"], "setting": ["a", "b", "c"],
        "window_start": [at("10:00").astimezone(berlin)] * 3, "window_end": [at("11:00").astimezone(berlin)] * 3})
    out = attach_actors(changes, EVENTS)
    assert out.columns == ["tenant_id", "policy_id", "setting", "window_start", "window_end",
                           "changed_by", "activity", "changed_at", "attribution"]
    assert out["setting"].to_list() == ["a", "b", "c"]
    assert out["changed_by"].to_list() == [None, "alice@contoso.com, IntuneCD", "alice@contoso.com, IntuneCD"]


def test_attach_actors_without_events_or_changes():
    changes = pl.DataFrame({"tenant_id": [T], "policy_id": ["p1"], "window_start": [None],
                            "window_end": [at("11:00")]})
    assert attach_actors(changes, EVENTS.clear())["changed_by"].to_list() == [None]
    assert attach_actors(changes.clear(), EVENTS).columns[-4:] == ["changed_by", "activity", "changed_at", "attribution"]
    with pytest.raises(ValueError, match="window_end"):
        attach_actors(changes.drop("window_end"), EVENTS)


# Two admins change two settings of one policy in one window: each setting names its own admin where the
# event lists it among its modified properties (any case; a catalog key's definition id; a nested key's
# last segment); a setting no event names falls back to the policy: both admins, said to be per policy.
SETTING_EVENTS = events_frame(
    graph_event("s1", "10:10", ["p1"], upn="alice@contoso.com", properties=("PasswordRequired",)),
    graph_event("s2", "10:20", ["p1"], upn="bob@contoso.com", properties=("passwordMinimumLength",)),
    graph_event("s3", "10:30", ["p2"], upn="carol@contoso.com",
                properties=("device_vendor_msft_policy_config_defender_allowarchivescanning",)),
    graph_event("s4", "10:40", ["p3"], upn="dave@contoso.com", properties=()),
)


@pytest.mark.parametrize("policy, setting_key, by, attribution", [
    ("p1", "passwordRequired", "alice@contoso.com", "setting"),
    ("p1", "passwordMinimumLength", "bob@contoso.com", "setting"),
    ("p1", "passwordExpirationDays", "alice@contoso.com, bob@contoso.com", "policy"),
    ("p2", "device_vendor_msft_policy_config_defender_allowarchivescanning/child_0", "carol@contoso.com", "setting"),
    ("p3", "defenderScanType", "dave@contoso.com", "policy"),  # the event names no property
    ("p4", "passwordRequired", None, None),
])
def test_attach_actors_names_the_admin_of_each_setting(policy, setting_key, by, attribution):
    changes = pl.DataFrame({"tenant_id": [T], "policy_id": [policy], "setting_key": [setting_key],
                            "window_start": [at("10:00")], "window_end": [at("11:00")]})
    out = attach_actors(changes, SETTING_EVENTS).row(0, named=True)
    assert (out["changed_by"], out["attribution"]) == (by, attribution)


def test_store_keeps_events_once_and_reads_a_window(tmp_path: Path):
    store = Store(tmp_path / "db.duckdb")
    store.add_tenant(T, "Contoso")
    first = events_frame(graph_event("e1", "09:00", ["p1"]), graph_event("e2", "10:30", ["p1"])).drop("tenant_id")
    assert store.save_audit_events(T, 7, first) == 2
    again = events_frame(graph_event("e2", "10:30", ["p1"]), graph_event("e3", "10:45", ["p2"])).drop("tenant_id")
    assert store.save_audit_events(T, 8, again) == 1  # e2 was kept already
    every = store.audit_events(T)
    assert every["event_id"].to_list() == ["e1", "e2", "e3"]
    assert every["run_id"].to_list() == [7, 7, 8]
    assert store.audit_events(T, since=at("09:00"), until=at("10:45"))["event_id"].to_list() == ["e2", "e3"]
    assert store.audit_events(OTHER).height == 0
    # the stored frame joins as is
    changes = pl.DataFrame({"tenant_id": [T], "policy_id": ["p1"], "window_start": [at("10:00")],
                            "window_end": [at("11:00")]})
    assert attach_actors(changes, store.audit_events(T))["changed_by"].to_list() == ["alice@contoso.com"]
    assert store.remove_tenant(T) and store.audit_events().height == 0


def test_store_schedules(tmp_path: Path):
    store = Store(tmp_path / "db.duckdb")
    store.add_tenant(T, "Contoso")
    store.add_tenant(OTHER, "Fabrikam")
    store.set_tenant_schedule(T, "*/5 * * * *")
    slot = at("10:00")
    store.record_schedule_fired(OTHER, slot, None)
    rows = {r["tenant_id"]: r for r in store.tenant_schedules().iter_rows(named=True)}
    assert rows[T]["schedule"] == "*/5 * * * *" and rows[T]["schedule_set_at"] is not None
    assert rows[T]["last_slot"] is None
    assert rows[OTHER]["schedule"] is None and rows[OTHER]["last_slot"] == slot
    store.record_schedule_fired(T, slot + timedelta(minutes=5), None)
    store.set_tenant_schedule(T, None)  # back to the global schedule; its last slot stays
    row = store.tenant_schedules().filter(tenant_id=T).row(0, named=True)
    assert row["schedule"] is None and row["last_slot"] == slot + timedelta(minutes=5)
    assert store.remove_tenant(T)
    assert store.tenant_schedules()["tenant_id"].to_list() == [OTHER]
