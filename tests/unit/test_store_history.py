"""How the DuckDB backend stores history (its tables, not the contract): rows valid over ranges of runs,
written only when they change; open rows apart from closed versions; retention of keys and values; file
growth. What every backend must do (carried types, migrations, reads) is tests/contract/."""

from __future__ import annotations

import polars as pl
import pytest

from tenantpilot.store import Store
from tests.snapshots import snapshot

TENANT = "11111111-1111-4111-8111-111111111111"


def sync(store: Store, policies, *, types=(), type_of=None, status="succeeded", **kw) -> tuple[int, dict]:
    run_id, _ = store.create_run_unless_active(TENANT)
    store.start_run(run_id)
    p, s, a = snapshot(policies, **kw)
    written = store.write_snapshot(run_id, TENANT, policies=p, settings=s, assignments=a, status=status,
                                   request_count=1, types=types, type_of=type_of)
    return run_id, written


def versions(store: Store, table: str = "setting_versions") -> int:
    with store.connect() as con:
        return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def values(frame: pl.DataFrame) -> dict[tuple[str, str], str]:
    return {(r["policy_id"], r["setting_key"]): r["value"] for r in frame.iter_rows(named=True)}


@pytest.fixture
def store(tmp_path) -> Store:
    s = Store(tmp_path / "t.duckdb")
    s.add_tenant(TENANT, "Contoso")
    return s


A = {"p1": {"k1": "1", "k2": "2"}, "p2": {"k3": "3"}}


@pytest.mark.parametrize(("second", "closed", "added"), [
    (A, 0, 0),                                                          # unchanged: nothing written
    ({"p1": {"k1": "1", "k2": "20"}, "p2": {"k3": "3"}}, 1, 1),        # one value changed
    ({"p1": {"k1": "1", "k2": "2"}}, 1, 0),                             # a policy deleted: its row closes
    ({**A, "p3": {"k4": "4"}}, 0, 1),                                   # a policy added
    ({"p1": {"k1": "1"}, "p2": {"k3": "3", "k5": "5"}}, 1, 1),         # a setting gone, another new
])
def test_only_what_changed_is_written(store, second, closed, added):
    first, _ = sync(store, A)
    run, written = sync(store, second)
    with store.connect() as con:
        got = con.execute("SELECT count(*) FILTER (WHERE valid_to_run = ?), count(*) FILTER (WHERE valid_from_run = ?) "
                          "FROM setting_versions", [run, run]).fetchone()
    assert got == (closed, added) and written["changed_settings"] == closed + added
    assert values(store.run_settings([first])) == values(snapshot(A)[1])
    assert values(store.run_settings([run])) == values(snapshot(second)[1]) == values(store.current_settings())
    assert written["settings"] == store.current_settings().height == store.get_run(run)["setting_count"]


def test_a_rename_closes_the_policy_and_its_rows_and_each_run_reads_its_own_name(store):
    first, _ = sync(store, A)
    second, _ = sync(store, A, names={"p1": "Renamed"})
    old, new = store.run_settings([first]), store.run_settings([second])
    assert set(old.filter(pl.col("policy_id") == "p1")["policy_name"]) == {"P1"}
    assert set(new.filter(pl.col("policy_id") == "p1")["policy_name"]) == {"Renamed"}
    assert versions(store, "policy_versions") == 3 and versions(store, "assignment_versions") == 3


def test_thirty_unchanged_syncs_add_no_rows_and_each_run_has_the_whole_snapshot(store):
    runs = [sync(store, A)[0] for _ in range(30)]
    assert versions(store) == 3 and versions(store, "policy_versions") == 2 and versions(store, "setting_texts") == 3
    per_run = store.run_settings(runs)
    assert per_run.height == 30 * 3 and per_run.group_by("run_id").len()["len"].unique().to_list() == [3]


def test_a_failed_run_changes_nothing(store):
    first, _ = sync(store, A)
    run_id, _ = store.create_run_unless_active(TENANT)
    store.fail_run(run_id, "boom")
    assert store.current_settings()["run_id"].unique().to_list() == [first]
    assert versions(store) == 3


def table_counts(store: Store) -> dict[str, int]:
    tables = ("setting_current", "setting_history", "setting_keys", "setting_values", "setting_texts")
    with store.connect() as con:
        return {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in tables}


def test_open_rows_live_apart_from_closed_versions_which_keep_only_key_value_and_range(store):
    first, _ = sync(store, A)
    second, _ = sync(store, {"p1": {"k1": "1", "k2": "20"}, "p2": {"k3": "3"}})
    third, _ = sync(store, {"p1": {"k1": "1", "k2": "200"}, "p2": {"k3": "3"}})
    # current: exactly one snapshot; history: k2's two closed versions, one key, two values
    assert table_counts(store) == {"setting_current": 3, "setting_history": 2, "setting_keys": 1,
                                   "setting_values": 2, "setting_texts": 3}
    for run, k2 in ((first, "2"), (second, "20"), (third, "200")):
        assert values(store.run_settings([run]))[("p1", "k2")] == k2
    with store.connect() as con:
        assert con.execute("SELECT valid_from_run, valid_to_run FROM setting_versions WHERE setting_key = 'k2' "
                           "ORDER BY 1").fetchall() == [(first, second), (second, third), (third, None)]


def test_a_new_version_takes_its_rows_place_so_a_tenants_rows_stay_together(store):
    sync(store, A)
    with store.connect() as con:
        before = dict(con.execute("SELECT setting_key, rowid FROM setting_current").fetchall())
    sync(store, {"p1": {"k1": "1", "k2": "20"}, "p2": {"k3": "3", "k4": "4"}})
    with store.connect() as con:
        after = dict(con.execute("SELECT setting_key, rowid FROM setting_current").fetchall())
    assert after["k2"] == before["k2"] and {k: after[k] for k in before} == before and "k4" in after


def test_retention_drops_the_history_its_keys_and_values_and_the_current_run_stays(store):
    first, _ = sync(store, A)
    sync(store, {"p1": {"k1": "1", "k2": "20"}, "p2": {"k3": "3"}})
    assert table_counts(store)["setting_history"] == 1
    with store.connect(write=True) as con:  # every run so far finished long ago
        con.execute("UPDATE sync_runs SET finished_at = finished_at - INTERVAL 500 DAY")
    sync(store, {"p1": {"k1": "1", "k2": "20"}, "p2": {"k3": "3"}})  # the default history_days: 400
    assert table_counts(store) == {"setting_current": 3, "setting_history": 0, "setting_keys": 0,
                                   "setting_values": 0, "setting_texts": 3}
    assert store.get_run(first)["status"] == "pruned" and values(store.current_settings())[("p1", "k2")] == "20"


def test_removing_a_tenant_leaves_none_of_its_history(store):
    sync(store, A)
    sync(store, {"p1": {"k1": "1", "k2": "20"}})
    store.remove_tenant(TENANT)
    assert set(table_counts(store).values()) == {0}


def test_thirty_syncs_of_an_unchanged_tenant_grow_the_file_by_less_than_ten_percent(tmp_path):
    """Issue 11's storage target, on a 20,000-setting tenant (the size DESIGN.md plans for)."""
    store = Store(tmp_path / "grow.duckdb")
    store.add_tenant(TENANT, "Contoso")
    data = {f"p{p:03d}": {f"k{k:02d}": f"value {p}-{k}" for k in range(50)} for p in range(400)}
    sync(store, data)
    first = store.path.stat().st_size
    for _ in range(30):
        sync(store, data)
    grown = store.path.stat().st_size - first
    print(f"\nfile after the first sync {first / 1e6:.1f} MB; 30 unchanged syncs added {grown / 1e6:.2f} MB "
          f"({grown / first:.1%})")
    assert grown < 0.10 * first
