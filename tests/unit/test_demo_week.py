"""The demo's week of changes in the simulator (graphsim/week.py): what changes, who, when."""

from __future__ import annotations

import datetime as dt

import pytest

from graphsim.demo import build_demo_tenants
from graphsim.week import moments, simulate_week

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("since, first, last", [
    (None, NOW - dt.timedelta(days=7), NOW),  # never synced: the week before now
    (NOW - dt.timedelta(days=30), NOW - dt.timedelta(days=7), NOW),  # at most a week back
    (NOW - dt.timedelta(days=2), NOW - dt.timedelta(days=2), NOW),  # never before the last sync
    (NOW - dt.timedelta(minutes=3), NOW - dt.timedelta(minutes=3), NOW),
])
def test_moments_spread_inside_the_window(since, first, last) -> None:
    times = moments(since, NOW, 5)
    assert times == sorted(times) and len(set(times)) == 5
    assert first < times[0] and times[-1] < last


def test_a_week_changes_two_settings_by_two_admins_deletes_and_adds_a_policy() -> None:
    tenant = next(iter(build_demo_tenants(1, 40).values()))
    since = NOW - dt.timedelta(days=4)
    before = {p.id for c in tenant.policies for p in tenant.list_policies(c)}
    steps = simulate_week(tenant, since, NOW)
    assert [s["activity"] for s in steps] == ["Patch", "Patch", "Patch", "Delete", "Create"]
    admins = {s["actor"] for s in steps}
    assert admins == {f"adele.vance@{tenant.domain}", f"megan.bowen@{tenant.domain}"}
    events = tenant.audit_events[-5:]
    times = [dt.datetime.fromisoformat(e["activityDateTime"][:26] + "+00:00") for e in events]
    assert times == sorted(times) and since < times[0] and times[-1] < NOW
    # the two property changes of one policy by two admins each name their property
    named = [(e["actor"]["userPrincipalName"], [p["displayName"] for p in e["resources"][0]["modifiedProperties"]])
             for e in events[:2]]
    assert named == [(f"adele.vance@{tenant.domain}", ["passwordMinimumLength"]),
                     (f"megan.bowen@{tenant.domain}", ["passwordExpirationDays"])]
    assert events[0]["resources"][0]["resourceId"] == events[1]["resources"][0]["resourceId"]
    assert events[2]["resources"][0]["modifiedProperties"] == []  # settings catalog: per policy only
    after = {p.id for c in tenant.policies for p in tenant.list_policies(c)}
    assert len(before - after) == 1 and len(after - before) == 1
    # again: the values change again (a second click is a second week)
    again = simulate_week(tenant, NOW, NOW + dt.timedelta(days=1))
    assert [s["new"] for s in again[:2]] != [s["new"] for s in steps[:2]]
    assert all(s["old"] != s["new"] for s in again if s["activity"] == "Patch")
