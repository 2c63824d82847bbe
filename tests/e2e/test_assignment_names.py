"""Assignments with names, through the real parts: group names from Graph's /groups ($batch), filter
names from /deviceManagement/assignmentFilters, cached per tenant; a missing Group permission is a
warning naming it, and the ids stay."""

from __future__ import annotations

import json
from datetime import timedelta

import polars as pl
from realparts import add_and_sync, latest_run, store_of

from graphsim.tenants import build_tenant
from tenantpilot.graph.directory import NAMES_MAX_AGE


def test_group_and_filter_names_are_resolved_and_cached(env, consumer, sim):
    tid = "77777777-7777-4777-8777-777777777777"
    tenant = build_tenant(tid, "Named", n_policies=30, seed=5)
    sim.add_tenant(tenant)
    sim.reset_counters()
    add_and_sync(env, tenant=tid, name="Named")
    store = store_of(env)
    assert latest_run(env, tid)["status"] == "succeeded"
    rows = store.current_assignments([tid])
    groups = rows.filter(pl.col("group_id") != "")
    assert groups.height and set(groups["group_name"]) <= {g["displayName"] for g in tenant.groups.values()}
    assert (groups["group_name"] == "").sum() == 0
    filtered = rows.filter(pl.col("filter_id") != "")
    assert filtered.height and set(filtered["filter_name"]) <= {f["displayName"] for f in tenant.assignment_filters.values()}
    assert (filtered["filter_name"] == "").sum() == 0
    asked = [p for _, p, _ in sim.request_log if p.lower().startswith(("/v1.0/groups/", "/groups/"))]
    assert len(asked) == groups["group_id"].n_unique()
    # the filters are a type the sync reads (issue 19): their one list gives the names too, no second read
    filter_lists = [p for _, p, _ in sim.request_log if "assignmentfilters" in p.lower()]
    assert len(filter_lists) == 1, filter_lists
    # cached per tenant: the next sync asks Graph for no name it already has
    sim.reset_counters()
    add_and_sync(env, tenant=tid, name="Named")
    assert not [p for _, p, _ in sim.request_log if "/groups/" in p.lower()]
    assert len([p for _, p, _ in sim.request_log if "assignmentfilters" in p.lower()]) == 1  # the type's list
    again = store.current_assignments([tid]).filter(pl.col("group_id") != "")
    assert again.select("group_id", "group_name").unique().sort("group_id").equals(
        groups.select("group_id", "group_name").unique().sort("group_id"))
    # a group renamed in Entra, and a week passes: a cached name is read again once it is NAMES_MAX_AGE old, at
    # the weekly full read (a policy the reuse rule leaves unread keeps its rows, names included, until then)
    renamed = str(groups["group_id"][0])
    tenant.groups[renamed]["displayName"] = "SG Renamed in Entra"
    week = NAMES_MAX_AGE + timedelta(hours=1)
    with store.connect(write=True) as con:
        con.execute("UPDATE directory_names SET fetched_at = fetched_at - ?", [week])
        con.execute("UPDATE sync_runs SET started_at = started_at - ?, finished_at = finished_at - ?", [week, week])
    sim.reset_counters()
    add_and_sync(env, tenant=tid, name="Named")
    assert len([p for _, p, _ in sim.request_log if "/groups/" in p.lower()]) == groups["group_id"].n_unique()
    now = store.current_assignments([tid]).filter(pl.col("group_id") == renamed)
    assert set(now["group_name"]) == {"SG Renamed in Entra"}


def test_without_a_group_permission_the_run_warns_and_shows_ids(env, consumer, sim):
    tid = "88888888-8888-4888-8888-888888888888"
    sim.add_tenant(build_tenant(tid, "NoGroups", n_policies=30, seed=6))
    try:
        sim.apply_knobs({"forbidden_paths": {"/groups"}})
        add_and_sync(env, tenant=tid, name="NoGroups")
    finally:
        sim.reset_knobs()
    run = latest_run(env, tid)
    assert run["status"] == "succeeded", run  # names are a nicety: the settings were all read
    warnings = json.loads(run["warnings"] or "[]")
    assert any("GroupMember.Read.All or Group.Read.All" in w for w in warnings), warnings
    rows = store_of(env).current_assignments([tid]).filter(pl.col("group_id") != "")
    assert rows.height and (rows["group_name"] == "").all()
