"""Temporal storage against a real DuckDB file: rows valid over ranges of runs, written only when they
change; open rows apart from closed versions; per-run and current views; carried types; retention;
the v5 -> v7 migrations; file growth."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest

from tenantpilot.flatten.schema import ASSIGNMENT_SCHEMA, POLICY_SCHEMA, SETTING_SCHEMA
from tenantpilot.store import SCHEMA_VERSION, Store, StoreError, TypeOutcome
from tests.legacy_schema import V5_DDL

TENANT = "11111111-1111-4111-8111-111111111111"


def snapshot(policies: dict[str, dict[str, str]], *, names: dict[str, str] | None = None):
    """Frames of one snapshot: {policy id: {setting key: value}}; a policy's name from `names`."""
    pol, rows, asg = [], [], []
    for pid, settings in policies.items():
        name = (names or {}).get(pid, pid.upper())
        ptype = "compliance" if pid.startswith("c") else "settingsCatalog"
        pol.append({"policy_id": pid, "policy_name": name, "policy_type": ptype, "odata_type": "",
                    "platform": "windows", "raw_json": f'{{"id":"{pid}","n":{len(settings)}}}'})
        asg.append({"policy_id": pid, "policy_name": name, "policy_type": ptype, "intent": "include",
                    "target_type": "group", "group_id": "g1", "group_name": "All staff", "filter_id": "",
                    "filter_type": "none", "filter_name": ""})
        for key, value in settings.items():
            row = {c: "" for c in SETTING_SCHEMA}
            row.update(policy_id=pid, policy_name=name, policy_type=ptype, setting_key=key, setting_id=key,
                       setting_name=f"Name of {key}", description=f"What {key} does", value=value,
                       compare_value=value, is_secret=False, configured=True)
            rows.append(row)
    return (pl.DataFrame(pol, schema=POLICY_SCHEMA), pl.DataFrame(rows, schema=SETTING_SCHEMA),
            pl.DataFrame(asg, schema=ASSIGNMENT_SCHEMA))


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


def test_a_type_not_read_keeps_its_rows_which_read_as_carried_from_the_run_that_read_them(store):
    catalog = TypeOutcome("settingsCatalog", "settingsCatalog", "Settings catalog", True)
    compliance = TypeOutcome("compliance", "compliance", "Compliance", True)
    both = {"p1": "settingsCatalog", "p2": "settingsCatalog", "c1": "compliance"}
    data = {**A, "c1": {"kc": "on"}}
    first, _ = sync(store, data, types=(catalog, compliance), type_of=both)
    unread = TypeOutcome("compliance", "compliance", "Compliance", False, "forbidden", "403")
    # the compliance list could not be read: the snapshot has no c1 rows, yet c1 stays, carried
    second, written = sync(store, A, types=(catalog, unread), type_of=both, status="partial")
    third, _ = sync(store, A, types=(catalog, unread), type_of=both, status="partial")
    assert written["carried_settings"] == 1
    current = store.current_settings()
    carried = current.filter(pl.col("policy_id") == "c1")
    assert carried["carried_from_run"].to_list() == [first] and carried["value"].to_list() == ["on"]
    assert current.filter(pl.col("policy_id") != "c1")["carried_from_run"].is_null().all()
    assert store.run_settings([second]).filter(pl.col("policy_id") == "c1")["carried_from_run"].to_list() == [first]
    kinds = store.run_types([third]).select("type_key", "status", "carried_from_run").rows()
    assert sorted(kinds) == [("compliance", "carried", first), ("settingsCatalog", "read", None)]
    # read again, and gone from Graph: now it is a deletion
    sync(store, A, types=(catalog, compliance), type_of=both)
    assert "c1" not in store.current_settings()["policy_id"].to_list()


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


def test_reads_inside_reading_share_one_connection_and_a_write_there_is_refused(store):
    sync(store, A)
    with store.reading():
        with store.connect() as one, store.connect() as two:
            assert one is two
        assert values(store.current_settings()) == values(snapshot(A)[1])
        with pytest.raises(StoreError, match="write inside"):
            store.add_tenant("22222222-2222-4222-8222-222222222222", "Fabrikam")
    store.add_tenant("22222222-2222-4222-8222-222222222222", "Fabrikam")  # outside: writes again


def legacy_rows(run_id: int, policies: dict[str, dict[str, str]], carried_from: int | None = None):
    p, s, a = snapshot(policies)
    extra = [pl.lit(run_id).alias("run_id"), pl.lit(TENANT).alias("tenant_id")]
    return (p.with_columns(*extra, pl.lit(carried_from, pl.Int64).alias("carried_from_run")),
            s.with_columns(*extra, pl.lit(None, pl.Datetime("us", "UTC")).alias("synced_at"),
                           pl.lit(carried_from, pl.Int64).alias("carried_from_run")),
            a.with_columns(*extra, pl.lit(carried_from, pl.Int64).alias("carried_from_run")))


def test_a_v5_file_becomes_ranges_with_the_same_rows_per_run(tmp_path):
    """A file as version 5 wrote it: three kept runs with full copies (a value changes in run 2, a
    policy is deleted in run 3, a policy deleted in run 2 comes back in run 3), a failed run between,
    and a pruned one. Opened by this version, every run reads the same rows as before, from ranges."""
    path = tmp_path / "v5.duckdb"
    snaps = {1: A, 2: {"p1": {"k1": "1", "k2": "20"}}, 4: {"p1": {"k1": "1", "k2": "20"}, "p2": {"k3": "3"}}}
    con = duckdb.connect(str(path))
    con.execute(V5_DDL)
    con.execute("INSERT INTO meta VALUES ('schema_version', '5')")
    con.execute("INSERT INTO tenants VALUES (?, 'Contoso', 'tenant', now())", [TENANT])
    con.execute("SELECT nextval('run_seq') FROM range(5)").fetchall()  # as the runs below took them
    for run_id, status in ((0, "pruned"), (1, "succeeded"), (2, "partial"), (3, "failed"), (4, "succeeded")):
        con.execute("INSERT INTO sync_runs (run_id, tenant_id, status, queued_at, finished_at, source) "
                    "VALUES (?, ?, ?, now(), now(), 'graph')", [run_id, TENANT, status])
    for run_id, data in snaps.items():
        for table, frame in zip(("policies", "settings", "assignments"), legacy_rows(run_id, data)):
            con.register("_f", frame.to_arrow())
            cols = ", ".join(frame.columns)
            con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _f")
            con.unregister("_f")
    con.close()

    store = Store(path)
    for run_id, data in snaps.items():
        assert values(store.run_settings([run_id])) == values(snapshot(data)[1]), run_id
        assert sorted(store.run_settings([run_id])["setting_name"].unique()) == sorted(
            {f"Name of {k}" for s in data.values() for k in s})
    assert values(store.current_settings()) == values(snapshot(snaps[4])[1])
    assert set(store.current_policies()["policy_id"]) == {"p1", "p2"}
    assert store.current_assignments().height == 2
    with store.connect() as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert not {"settings", "policies", "assignments"} & tables
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
        # k1 never changed: one version over all three runs; p2's k3 two (deleted in 2, back in 4)
        assert con.execute("SELECT count(*) FROM setting_versions WHERE setting_key = 'k1'").fetchone() == (1,)
        assert con.execute("SELECT valid_from_run, valid_to_run FROM setting_versions WHERE setting_key = 'k3' "
                           "ORDER BY 1").fetchall() == [(1, 2), (4, None)]
    # and a sync after the migration writes only what changed
    run, written = sync(store, snaps[4])
    assert written["changed_settings"] == 0 and values(store.run_settings([run])) == values(snapshot(snaps[4])[1])


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
