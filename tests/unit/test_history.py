"""`changes --since` over a real DuckDB file with runs on past days: what each tenant changed since a
point, read from the row ranges, and the same answer as drift's diff of the two full snapshots."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from tenantpilot import cli
from tenantpilot.analysis import drift, history
from tenantpilot.store import Store, TypeOutcome
from tests.unit.test_store_history import snapshot

T1, T2 = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
NOW = datetime.now(timezone.utc)
DAY0 = {"p1": {"k1": "1", "k2": "2"}, "p2": {"k3": "3"}, "c1": {"kc": "on"}}
# day 3: p1.k2 changed, p2 deleted; day 5: p3 added, p1 renamed; day 6: c1 not readable (carried)
DAY3 = {"p1": {"k1": "1", "k2": "20"}, "c1": {"kc": "on"}}
DAY5 = {"p1": {"k1": "1", "k2": "20"}, "p3": {"k4": "4"}, "c1": {"kc": "on"}}
DAY6 = {"p1": {"k1": "1", "k2": "20"}, "p3": {"k4": "4"}}
CATALOG = TypeOutcome("settingsCatalog", "settingsCatalog", "Settings catalog", True)
COMPLIANCE = TypeOutcome("compliance", "compliance", "Compliance policies", True)


def sync_on(store: Store, tenant: str, days_ago: float, data, *, names=None, compliance=True) -> int:
    run_id, _ = store.create_run_unless_active(tenant)
    store.start_run(run_id)
    p, s, a = snapshot(data, names=names)
    type_of = {pid: ("compliance" if pid.startswith("c") else "settingsCatalog") for pid in ["p1", "p2", "p3", "c1"]}
    comp = COMPLIANCE if compliance else TypeOutcome("compliance", "compliance", "Compliance policies", False,
                                                     "forbidden", "403")
    store.write_snapshot(run_id, tenant, policies=p, settings=s, assignments=a,
                         status="succeeded" if compliance else "partial", request_count=1,
                         types=(CATALOG, comp), type_of=type_of)
    with store.connect(write=True) as con:
        con.execute("UPDATE sync_runs SET finished_at = ? WHERE run_id = ?", [NOW - timedelta(days=days_ago), run_id])
    return run_id


@pytest.fixture
def store(db) -> Store:
    db.add_tenant(T1, "Contoso")
    db.add_tenant(T2, "Fabrikam")
    return db


@pytest.fixture
def runs(store) -> dict[str, int]:
    out = {"d10": sync_on(store, T1, 10, DAY0), "d7": sync_on(store, T1, 7, DAY0), "d3": sync_on(store, T1, 3, DAY3),
           "d5": sync_on(store, T1, 2, DAY5, names={"p1": "P1 renamed"}),
           "d6": sync_on(store, T1, 1, DAY6, names={"p1": "P1 renamed"}, compliance=False)}
    out["t2"] = sync_on(store, T2, 2, DAY0)  # Fabrikam was first synced two days ago
    return out


def by_tenant(found) -> dict[str, history.TenantChanges]:
    return {t.tenant_id: t for t in found}


def test_changes_since_a_week_list_policy_events_setting_changes_and_types_not_synced(store, runs):
    found = by_tenant(history.changes_since(store, history.parse_since("8d")))
    t1 = found[T1]
    assert (t1.base_run, t1.cur_run, t1.first_sync) == (runs["d10"], runs["d6"], False)  # last run before 8 days ago
    assert sorted(t1.events.select("event", "policy_id").rows()) == [
        ("policy added", "p3"), ("policy deleted", "p2"), ("policy renamed", "p1")]
    assert t1.events.filter(pl.col("policy_id") == "p2")["settings"].to_list() == [1]
    assert t1.settings.select("change", "setting_key", "old_value", "new_value").rows() == [("changed", "k2", "2", "20")]
    # seen when the sync that first had the new value finished (3 days ago)
    seen = t1.settings["seen_at"][0]
    assert abs((seen - (NOW - timedelta(days=3))).total_seconds()) < 5
    assert t1.carried.select("label", "status").rows() == [("Compliance policies", "carried")]
    # Fabrikam: no run before the point: counted from its first sync, nothing changed since
    assert found[T2].first_sync and found[T2].count == 0


def test_the_ranges_give_what_a_diff_of_the_two_full_snapshots_gives(store, runs):
    t1 = by_tenant(history.changes_since(store, history.Since(run=runs["d10"])))[T1]
    full = drift.changes(store.run_settings([runs["d10"]]), store.run_settings([runs["d6"]]))
    assert sorted(t1.events.select("event", "policy_id").rows()) == sorted(full.events.select("event", "policy_id").rows())
    assert t1.settings.select(full.settings.columns).equals(full.settings)


@pytest.mark.parametrize(("since", "expected_base"), [("1d", "d6"), ("4d", "d7"), ("2.5d", None), ("run:{d3}", "d3")])
def test_since_choices(store, runs, since, expected_base):
    if expected_base is None:
        with pytest.raises(history.SinceError, match="not a point in time"):
            history.parse_since(since)
        return
    t1 = by_tenant(history.changes_since(store, history.parse_since(since.format(**runs)), [T1]))[T1]
    assert t1.base_run == runs[expected_base]
    if expected_base == "d6":
        assert t1.count == 0


def test_a_date_is_local_midnight():
    assert history.parse_since("2026-11-01").at == datetime(2026, 11, 1).astimezone()


def test_change_counts_per_tenant_and_day_leave_out_first_loads(store, runs):
    counts = store.change_counts(NOW - timedelta(days=30))
    t1 = {r[0]: r[1:] for r in counts.filter(pl.col("tenant_id") == T1).select(
        "day", "policy_events", "setting_changes").iter_rows()}
    day = lambda n: (NOW - timedelta(days=n)).date()  # noqa: E731
    # day 3: p2 deleted (its setting is inside the event), k2 changed; day 2: p3 added, p1 renamed (its
    # rows re-versioned, no value changed); day 1: compliance carried, nothing changed
    assert t1[day(7)] == (0, 0) and t1[day(3)] == (1, 1) and t1[day(2)] == (2, 0) and t1[day(1)] == (0, 0)
    assert day(10) not in t1  # the first sync loads everything: not a change
    assert counts.filter(pl.col("tenant_id") == T2).height == 0


def test_the_cli_prints_text_csv_and_json(store, runs, capsys, tmp_path):
    assert cli.main(["changes", "--since", "8d"]) == 0
    out = capsys.readouterr().out
    assert "Contoso" in out and "policy deleted" in out and "Name of k2: 2 → 20" in out
    assert "not synced      Compliance policies: forbidden" in out
    assert cli.main(["changes", "--since", "8d", "--tenant", "Contoso", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["changes"]
    assert {r["tenant"] for r in rows} == {"Contoso"}
    assert [r["change"] for r in rows if r["kind"] == "setting"] == ["changed"]
    target = tmp_path / "c.csv"
    assert cli.main(["changes", "--since", "8d", "--format", "csv", "--output", str(target)]) == 0
    assert target.read_text(encoding="utf-8-sig").splitlines()[0].startswith("tenant,tenant_id,kind,change")
    assert cli.main(["changes", "--since", "yesterday"]) == 2
    assert "not a point in time" in capsys.readouterr().err


def test_the_changes_page_shows_tenants_by_day_then_one_tenants_changes(store, runs):
    from tests.apptest import app, find_table, texts

    at = app("changes")
    at.segmented_control(key="chg_since").set_value("30 days").run()
    assert not at.exception
    grid = find_table(at, "tenant", "total")
    assert list(grid["tenant"]) == ["Contoso"] and list(grid["total"]) == [4]  # Fabrikam only has its first load
    assert "1 tenant(s) changed since" in texts(at) and "1 without changes" in texts(at)
    # the drill-down opens on the busiest tenant: policy events, then the setting change with when it was seen
    events = find_table(at, "event", "policy", "settings")
    assert sorted(events["event"]) == ["policy added", "policy deleted", "policy renamed"]
    table = find_table(at, "change", "old_value", "new_value", "seen_at")
    assert table[["setting_name", "old_value", "new_value"]].values.tolist() == [["Name of k2", "2", "20"]]
    assert "Compliance policies: not synced in this run (the latest; forbidden)" in texts(at)
    # since a run: the runs of the tenant to start from
    at.segmented_control(key="chg_since").set_value("A run").run()
    at.selectbox(key=f"chg_run_{T1}").set_value(runs["d3"]).run()
    assert not at.exception
    events = find_table(at, "event", "policy", "settings")
    assert sorted(events["event"]) == ["policy added", "policy renamed"]
