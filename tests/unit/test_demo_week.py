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


def _settings(tmp_path, demo: bool):
    from tenantpilot.config import Settings

    return Settings(data_dir=tmp_path, db_path=tmp_path / "db.duckdb", log_dir=tmp_path, redis_url=None,
                    graph_url="https://127.0.0.1:9", authority_host="https://127.0.0.1:9", client_id=None, demo=demo)


@pytest.mark.parametrize("demo, discovery, says", [
    (True, None, "The Graph simulator is not running"),  # no simulator.json
    (True, "{not json", "The Graph simulator is not running"),
    (True, '{"url": "https://127.0.0.1:9"}', "The Graph simulator is not running"),  # no CA, no tenants
    (False, None, "demo mode only"),  # a real tenant is never changed
])
def test_the_week_is_refused_in_words_without_a_simulator(tmp_path, demo, discovery, says) -> None:
    from tenantpilot.ops import demo as week

    if discovery is not None:
        (tmp_path / "simulator.json").write_text(discovery, encoding="utf-8")
    with pytest.raises(week.SimulatorUnavailable, match=says):
        week.simulate_week(_settings(tmp_path, demo), None, ["6b1f5d7e-2c4a-4e8f-9a3b-1d2c3e4f5a60"])  # type: ignore[arg-type]
