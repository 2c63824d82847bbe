"""The storage contract: what every storage backend must do, run once per backend (as huey's
StorageTests run per storage). A new backend adds a Backend below and passes this file unchanged.

Covered: what a sync writes and what reads return; failure isolation; carry-forward of types a run
could not read; history as of runs and retention, a policy's stored versions; the Explore reads with their filters (facets, a
literal case-insensitive search); migrations from an older schema; a file newer than the code, a
damaged file and a full disk (refused or read without writing, saying what to do); locking between
processes (StoreBusy after the budget) and reads beside a writer in another process.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from tenantpilot.flatten.schema import POLICY_SCHEMA, SETTING_SCHEMA
from tenantpilot.store import (
    SCHEMA_VERSION,
    Filters,
    Store,
    StoreBusy,
    StoreError,
    TypeOutcome,
)
from tests.legacy_schema import V5_DDL
from tests.snapshots import snapshot

ROOT = Path(__file__).resolve().parents[2]
TENANT = "11111111-1111-4111-8111-111111111111"
CONTOSO = "contoso.onmicrosoft.com"


# --- backends ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Backend:
    """How the contract reaches a backend: open a store on a path, and build the files the contract
    needs that the store itself never writes (an older schema, a newer one, a damaged file, a holder
    of the file in another process)."""

    name: str
    open: Callable[..., Store]
    write_v5: Callable[[Path, dict[int, tuple[str, dict]]], None]
    set_version: Callable[[Path, int], None]
    holder: Callable[[Path, float], list[str]]  # argv of a process that holds the file for N seconds
    internals: Callable[[Store, str], list[tuple]]  # backend-specific checks of what a step left behind


def _duckdb_v5(path: Path, runs: dict[int, tuple[str, dict]]) -> None:
    import duckdb

    con = duckdb.connect(str(path))
    con.execute(V5_DDL)
    con.execute("INSERT INTO meta VALUES ('schema_version', '5')")
    con.execute("INSERT INTO tenants VALUES (?, 'Contoso', 'tenant', now())", [TENANT])
    con.execute(f"SELECT nextval('run_seq') FROM range({len(runs)})").fetchall()  # as the runs below took them
    for run_id, (status, data) in runs.items():
        con.execute("INSERT INTO sync_runs (run_id, tenant_id, status, queued_at, finished_at, source) "
                    "VALUES (?, ?, ?, now(), now(), 'graph')", [run_id, TENANT, status])
        if status in ("succeeded", "partial"):
            for table, frame in zip(("policies", "settings", "assignments"), legacy_rows(run_id, data)):
                con.register("_f", frame.to_arrow())
                cols = ", ".join(frame.columns)
                con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _f")
                con.unregister("_f")
    con.close()


def _duckdb_set_version(path: Path, version: int) -> None:
    import duckdb

    con = duckdb.connect(str(path))
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(version)])
    con.close()


def _duckdb_internals(store: Store, sql: str) -> list[tuple]:
    with store.connect() as con:
        return con.execute(sql).fetchall()


DUCKDB = Backend(
    name="duckdb",
    open=lambda path, **kw: Store(path, **kw),
    write_v5=_duckdb_v5,
    set_version=_duckdb_set_version,
    holder=lambda path, seconds: [sys.executable, "-c", "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
                                  "print('locked', flush=True); time.sleep(float(sys.argv[2]))",
                                  str(path), str(seconds)],
    internals=_duckdb_internals,
)


@pytest.fixture(params=[DUCKDB], ids=lambda b: b.name)
def backend(request) -> Backend:
    return request.param


@pytest.fixture
def store(backend: Backend, tmp_path: Path) -> Store:
    s = backend.open(tmp_path / "t.duckdb")
    s.add_tenant(CONTOSO, "Contoso")
    s.add_tenant(TENANT, "Tenant")
    return s


# --- rows ----------------------------------------------------------------------------------------
def legacy_rows(run_id: int, policies: dict[str, dict[str, str]]):
    p, s, a = snapshot(policies)
    extra = [pl.lit(run_id).alias("run_id"), pl.lit(TENANT).alias("tenant_id")]
    return (p.with_columns(*extra, pl.lit(None, pl.Int64).alias("carried_from_run")),
            s.with_columns(*extra, pl.lit(None, pl.Datetime("us", "UTC")).alias("synced_at"),
                           pl.lit(None, pl.Int64).alias("carried_from_run")),
            a.with_columns(*extra, pl.lit(None, pl.Int64).alias("carried_from_run")))


def sync(store: Store, tenant: str, policies, *, status="succeeded", types=(), type_of=None, **kw) -> tuple[int, dict]:
    run_id, created = store.create_run_unless_active(tenant)
    assert created
    assert store.start_run(run_id)
    p, s, a = snapshot(policies, **kw)
    written = store.write_snapshot(run_id, tenant, policies=p, settings=s, assignments=a, status=status,
                                   request_count=3, types=types, type_of=type_of)
    return run_id, written


def values(frame: pl.DataFrame) -> dict[tuple[str, str], str]:
    return {(r["policy_id"], r["setting_key"]): r["value"] for r in frame.iter_rows(named=True)}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


A = {"p1": {"k1": "1", "k2": "2"}, "p2": {"k3": "3"}}


# --- what a sync writes, what reads return -------------------------------------------------------
@pytest.mark.parametrize("second", [
    A,                                                      # unchanged
    {"p1": {"k1": "1", "k2": "20"}, "p2": {"k3": "3"}},    # one value changed
    {"p1": {"k1": "1", "k2": "2"}},                         # a policy deleted: its rows leave current
    {**A, "p3": {"k4": "4"}},                               # a policy added
    {"p1": {"k1": "1"}, "p2": {"k3": "3", "k5": "5"}},     # a setting gone, another new
])
def test_each_run_reads_its_own_snapshot_and_current_is_the_last(store, second):
    first, _ = sync(store, TENANT, A)
    run, written = sync(store, TENANT, second)
    assert values(store.run_settings([first])) == values(snapshot(A)[1])
    assert values(store.run_settings([run])) == values(snapshot(second)[1]) == values(store.current_settings([TENANT]))
    assert written["settings"] == store.current_settings([TENANT]).height == store.get_run(run)["setting_count"]
    assert sorted(store.current_policies([TENANT])["policy_id"]) == sorted(second)
    assert store.current_settings([TENANT])["run_id"].unique().to_list() == [run]


def test_snapshot_replaces_current_and_drops_deleted(store):
    sync(store, CONTOSO, {"a": {"k1": "1", "k2": "2"}, "b": {"k3": "3"}})
    second, _ = sync(store, CONTOSO, {"a": {"k1": "9"}})
    cur = store.current_settings([CONTOSO])
    assert cur["run_id"].unique().to_list() == [second]
    assert sorted(zip(cur["setting_key"], cur["value"])) == [("k1", "9")]
    assert store.current_policies([CONTOSO])["policy_id"].to_list() == ["a"]


def test_a_rename_is_read_per_run(store):
    first, _ = sync(store, TENANT, A)
    second, _ = sync(store, TENANT, A, names={"p1": "Renamed"})
    old, new = store.run_settings([first]), store.run_settings([second])
    assert set(old.filter(pl.col("policy_id") == "p1")["policy_name"]) == {"P1"}
    assert set(new.filter(pl.col("policy_id") == "p1")["policy_name"]) == {"Renamed"}


def test_thirty_unchanged_syncs_each_read_the_whole_snapshot(store):
    runs = [sync(store, TENANT, A)[0] for _ in range(30)]
    per_run = store.run_settings(runs)
    assert per_run.height == 30 * 3 and per_run.group_by("run_id").len()["len"].unique().to_list() == [3]


def test_failed_run_keeps_previous_snapshot(store):
    first, _ = sync(store, CONTOSO, {"a": {"k1": "1"}})
    run_id, _ = store.create_run_unless_active(CONTOSO)
    store.start_run(run_id)
    store.fail_run(run_id, "boom")
    assert store.current_settings([CONTOSO])["run_id"].unique().to_list() == [first]
    assert store.get_run(run_id)["status"] == "failed"


def test_dedupe_returns_active_run(store):
    first, created = store.create_run_unless_active(CONTOSO)
    again, created2 = store.create_run_unless_active(CONTOSO)
    assert created and not created2 and first == again


def test_write_is_atomic_when_run_no_longer_active(store):
    run_id, _ = store.create_run_unless_active(CONTOSO)
    store.start_run(run_id)
    store.fail_run(run_id, "interrupted")
    p, s, a = snapshot({"a": {"k": "v"}})
    with pytest.raises(StoreError, match="no longer active"):
        store.write_snapshot(run_id, CONTOSO, policies=p, settings=s, assignments=a, status="succeeded",
                             request_count=1)
    assert store.current_settings([CONTOSO]).height == 0
    assert store.run_settings([run_id]).height == 0


def test_remove_tenant_removes_its_data(store):
    sync(store, CONTOSO, {"a": {"k": "v"}})
    assert store.remove_tenant(CONTOSO)
    assert store.tenants()["tenant_id"].to_list() == [TENANT] and store.current_settings().height == 0


def test_reads_inside_reading_share_one_connection_and_a_write_there_is_refused(store):
    sync(store, TENANT, A)
    with store.reading():
        assert values(store.current_settings([TENANT])) == values(snapshot(A)[1])
        with pytest.raises(StoreError, match="write inside"):
            store.add_tenant("22222222-2222-4222-8222-222222222222", "Fabrikam")
    store.add_tenant("22222222-2222-4222-8222-222222222222", "Fabrikam")  # outside: writes again


# --- carry-forward of types not read -------------------------------------------------------------
def test_a_type_not_read_keeps_its_rows_which_read_as_carried_from_the_run_that_read_them(store):
    catalog = TypeOutcome("settingsCatalog", "settingsCatalog", "Settings catalog", True)
    compliance = TypeOutcome("compliance", "compliance", "Compliance", True)
    both = {"p1": "settingsCatalog", "p2": "settingsCatalog", "c1": "compliance"}
    data = {**A, "c1": {"kc": "on"}}
    first, _ = sync(store, TENANT, data, types=(catalog, compliance), type_of=both)
    unread = TypeOutcome("compliance", "compliance", "Compliance", False, "forbidden", "403")
    # the compliance list could not be read: the snapshot has no c1 rows, yet c1 stays, carried
    second, written = sync(store, TENANT, A, types=(catalog, unread), type_of=both, status="partial")
    third, _ = sync(store, TENANT, A, types=(catalog, unread), type_of=both, status="partial")
    assert written["carried_settings"] == 1
    current = store.current_settings([TENANT])
    carried = current.filter(pl.col("policy_id") == "c1")
    assert carried["carried_from_run"].to_list() == [first] and carried["value"].to_list() == ["on"]
    assert current.filter(pl.col("policy_id") != "c1")["carried_from_run"].is_null().all()
    assert store.run_settings([second]).filter(pl.col("policy_id") == "c1")["carried_from_run"].to_list() == [first]
    kinds = store.run_types([third]).select("type_key", "status", "carried_from_run").rows()
    assert sorted(kinds) == [("compliance", "carried", first), ("settingsCatalog", "read", None)]
    assert store.current_carried([TENANT])["label"].to_list() == ["Compliance"]
    # read again, and gone from Graph: now it is a deletion
    sync(store, TENANT, A, types=(catalog, compliance), type_of=both)
    assert "c1" not in store.current_settings([TENANT])["policy_id"].to_list()


def test_a_reused_policy_keeps_its_rows_confirmed_not_carried_and_the_run_counts_it(store):
    """A policy the reuse rule kept unread (sync/reuse.py) is in no part of the run, yet its rows stay current as
    they were (not carried forward, not deleted); the run's counts are the whole snapshot's."""
    from datetime import datetime, timezone

    from tenantpilot.sync.reuse import Reused

    catalog = TypeOutcome("settingsCatalog", "settingsCatalog", "Settings catalog", True)
    both = {"p1": "settingsCatalog", "p2": "settingsCatalog"}
    first, written1 = sync(store, TENANT, A, types=(catalog,), type_of=both)
    before = store.current_settings([TENANT]).sort("policy_id", "setting_key")
    since, full = datetime(2026, 12, 5, tzinfo=timezone.utc), datetime(2026, 12, 1, tzinfo=timezone.utc)
    run_id, created = store.create_run_unless_active(TENANT)
    assert created and store.start_run(run_id)
    p, s, a = snapshot({"p1": A["p1"]})  # p2 reused: not flattened
    written = store.write_snapshot(run_id, TENANT, policies=p, settings=s, assignments=a, status="succeeded",
                                   request_count=1, types=(catalog,), type_of={"p1": "settingsCatalog"},
                                   reused=Reused((("settingsCatalog", "p2"),), since, full))
    assert (written["policies"], written["settings"]) == (written1["policies"], written1["settings"])
    assert written["changed_settings"] == 0 and written["carried_settings"] == 0
    after = store.current_settings([TENANT]).sort("policy_id", "setting_key")
    assert values(after) == values(before) and after["carried_from_run"].is_null().all()
    run = store.get_run(run_id)
    assert (run["reused_policies"], run["reused_since"], run["full_read_at"]) == (1, since, full)
    assert (run["policy_count"], run["setting_count"]) == (2, 3)
    assert store.run_types([run_id]).select("type_key", "status").rows() == [("settingsCatalog", "read")]
    assert store.reuse_basis(TENANT)[:3] == ("succeeded", run["started_at"], store.get_run(first)["started_at"])
    # a full read again, without p2: now it is a deletion
    third, _ = sync(store, TENANT, {"p1": A["p1"]}, types=(catalog,), type_of=both)
    assert "p2" not in store.current_settings([TENANT])["policy_id"].to_list()
    assert store.get_run(third)["reused_policies"] == 0


# --- history ranges ------------------------------------------------------------------------------
def test_changes_between_a_base_run_and_the_current_one(store):
    first, _ = sync(store, TENANT, A)
    sync(store, TENANT, {"p1": {"k1": "1", "k2": "20"}, "p2": {"k3": "3"}})
    cur, _ = sync(store, TENANT, {"p1": {"k1": "1", "k2": "20"}, "p3": {"k4": "4"}})
    bases = store.history_bases(since_run=first, tenant_ids=[TENANT])
    assert bases.select("base_run", "cur_run").rows() == [(first, cur)]
    before, after = store.changed_rows(bases)
    assert values(before) == {("p1", "k2"): "2", ("p2", "k3"): "3"}  # only the keys that changed
    assert values(after) == {("p1", "k2"): "20", ("p3", "k4"): "4"}
    sides = store.policies_at(bases)
    assert sorted(sides.filter(pl.col("side") == "base")["policy_id"]) == ["p1", "p2"]
    assert sorted(sides.filter(pl.col("side") == "cur")["policy_id"]) == ["p1", "p3"]


def test_policy_versions_lists_each_stored_raw_json_of_a_policy_newest_first(store):
    """Store.policy_versions (the script view's earlier runs): a version per change of a policy's raw JSON,
    from the run it was first seen in; a policy unchanged over runs has one."""
    first, _ = sync(store, TENANT, A)
    sync(store, TENANT, A)  # unchanged: no new version
    third, _ = sync(store, TENANT, {"p1": {"k1": "1"}, "p2": {"k3": "3"}})  # p1's raw JSON changes (n: 2 -> 1)
    p1 = store.policy_versions(TENANT, "p1")
    assert p1["valid_from_run"].to_list() == [third, first]
    assert [json.loads(r)["n"] for r in p1["raw_json"]] == [1, 2]
    assert p1["finished_at"].null_count() == 0
    assert store.policy_versions(TENANT, "p2")["valid_from_run"].to_list() == [first]
    assert store.policy_versions(TENANT, "nope").height == 0


def test_history_older_than_the_retention_is_dropped(backend, store):
    ids = []
    for i in range(4):
        run_id, _ = sync(store, CONTOSO, {"a": {"k": str(i)}})
        ids.append(run_id)
        with store.connect(write=True) as con:  # this run finished (4 - i) * 10 days ago
            con.execute("UPDATE sync_runs SET finished_at = now() - to_days(?) WHERE run_id = ?", [(4 - i) * 10, run_id])
    assert store.run_settings(ids).sort("run_id")["value"].to_list() == ["0", "1", "2", "3"]
    run_id, _ = store.create_run_unless_active(CONTOSO)
    store.start_run(run_id)
    p, s, a = snapshot({"a": {"k": "4"}})
    backend.open(store.path, history_days=25).write_snapshot(run_id, CONTOSO, policies=p, settings=s, assignments=a,
                                                              status="succeeded", request_count=1)
    # runs older than 25 days (40 and 30 days) are pruned with the row versions only they held
    assert store.runs(CONTOSO).filter(pl.col("status") == "pruned")["run_id"].sort().to_list() == ids[:2]
    assert store.run_settings([*ids, run_id]).sort("run_id")["value"].to_list() == ["2", "3", "4"]
    if backend.name == "duckdb":
        assert backend.internals(store, "SELECT count(*) FROM setting_versions") == [(3,)]


# --- Explore reads: the one filter rule ----------------------------------------------------------
# tenant -> rows (policy, key, value, setting name, platform, policy type)
EXPLORE_ROWS = {
    "a": [("BitLocker", "bitlocker_encryptionmethod", "XTS-AES 256", "Encryption method", "windows", "settingsCatalog"),
          ("Firewall", "firewall_enable", "True", "Enable Firewall", "windows", "settingsCatalog")],
    "b": [("FW", "firewall_enable", "False", "Enable Firewall", "iOS", "endpointSecurity"),
          ("Passwords", "password_minlength", "14", "Minimum password length", "iOS", "compliance"),
          ("Percent", "pct", "100% of_it", "Share", "iOS", "compliance")],
    "c": [("Umlaute", "größe", "Straße", "Schriftgröße", "windows", "settingsCatalog")],
}
TENANT_OF = {"a": "aaaaaaaa-0000-4000-8000-000000000001", "b": "bbbbbbbb-0000-4000-8000-000000000002",
             "c": "cccccccc-0000-4000-8000-000000000003"}
NAME_OF = {"a": "Contoso", "b": "Fabrikam", "c": "Northwind"}

FILTER_CASES = [
    # (id, filters, expected setting keys, sorted)
    ("no filter", Filters(), ["bitlocker_encryptionmethod", "firewall_enable", "firewall_enable", "größe",
                              "password_minlength", "pct"]),
    ("empty search means all", Filters(search="  "), None),
    ("tenant", Filters(tenants=("b",)), ["firewall_enable", "password_minlength", "pct"]),
    ("two tenants", Filters(tenants=("a", "c")), ["bitlocker_encryptionmethod", "firewall_enable", "größe"]),
    ("policy type", Filters(policy_types=("compliance",)), ["password_minlength", "pct"]),
    ("platform", Filters(platforms=("iOS",)), ["firewall_enable", "password_minlength", "pct"]),
    ("policy by name", Filters(policies=("Contoso Firewall",)), ["firewall_enable"]),
    ("setting key and type (detail view)", Filters(policy_types=("endpointSecurity",),
                                                   setting_keys=("firewall_enable",)), ["firewall_enable"]),
    ("search setting name, case-insensitive", Filters(search="ENCRYPTION method"), ["bitlocker_encryptionmethod"]),
    ("search value", Filters(search="xts-aes"), ["bitlocker_encryptionmethod"]),
    ("search setting id", Filters(search="password_min"), ["password_minlength"]),
    ("search policy name", Filters(search="fabrikam fw"), ["firewall_enable"]),
    ("search is literal, not a pattern", Filters(search="(.*)"), []),
    ("% is literal", Filters(search="100%"), ["pct"]),
    ("_ is literal, not any character", Filters(search="100%_"), []),
    ("_ matches itself", Filters(search="of_it"), ["pct"]),
    ("search with regex metacharacters", Filters(search="XTS-AES 2"), ["bitlocker_encryptionmethod"]),
    ("no case folding of ß", Filters(search="STRASSE"), []),
    ("unicode lower/upper", Filters(search="schriftGRÖße"), ["größe"]),
    ("facets and search combine", Filters(tenants=("a", "b"), search="firewall"),
     ["firewall_enable", "firewall_enable"]),
    ("no match", Filters(tenants=("c",), search="firewall"), []),
]


@pytest.fixture
def explored(backend: Backend, tmp_path: Path) -> Store:
    store = backend.open(tmp_path / "explore.duckdb")
    for short, rows in EXPLORE_ROWS.items():
        tenant = TENANT_OF[short]
        store.add_tenant(tenant, NAME_OF[short])
        pol, settings = [], []
        for policy, key, value, name, platform, ptype in rows:
            pid = f"{short}-{policy}"
            pname = f"{NAME_OF[short]} {policy}"
            pol.append({"policy_id": pid, "policy_name": pname, "policy_type": ptype, "odata_type": "",
                        "platform": platform, "raw_json": "{}"})
            row = {c: "" for c in SETTING_SCHEMA}
            row.update(policy_id=pid, policy_name=pname, policy_type=ptype, platform=platform, setting_key=key,
                       setting_id=key, setting_name=name, value=value, compare_value=value, is_secret=False,
                       configured=True)
            settings.append(row)
        run_id, _ = store.create_run_unless_active(tenant)
        store.start_run(run_id)
        store.write_snapshot(run_id, tenant, policies=pl.DataFrame(pol, schema=POLICY_SCHEMA),
                             settings=pl.DataFrame(settings, schema=SETTING_SCHEMA), status="succeeded",
                             request_count=0)
    return store


@pytest.mark.parametrize(("filters", "expected"), [c[1:] for c in FILTER_CASES], ids=[c[0] for c in FILTER_CASES])
def test_explore_reads_apply_the_filters(explored: Store, filters: Filters, expected) -> None:
    filters = Filters(**{**filters.__dict__, "tenants": tuple(TENANT_OF[t] for t in filters.tenants)})
    expected = expected if expected is not None else FILTER_CASES[0][2]
    matching = explored.settings_matching(filters)
    assert sorted(matching["setting_key"].to_list()) == expected
    assert explored.settings_count(filters) == len(expected)
    per_tenant = dict(explored.settings_tenant_counts(filters))
    assert per_tenant == dict(matching.group_by("tenant_id").len().rows())
    facets = explored.settings_facets(filters, ["tenant_id", "policy_type", "platform", "policy_name"])
    for column, shown in facets.items():
        assert shown == sorted(set(matching[column].to_list()), key=lambda v: (v.casefold(), v)), column
    # Compare's read of a few tenants honours the same filters
    compared = explored.current_columns_of(list(TENANT_OF.values()), ["setting_key"], filters)
    assert sorted(compared["setting_key"].to_list()) == expected


def test_pages_are_slices_of_one_stable_order(explored: Store) -> None:
    whole = explored.settings_matching(Filters())
    pages = [explored.settings_page(Filters(), offset=o, limit=2) for o in range(0, whole.height, 2)]
    assert pl.concat(pages).equals(whole)
    assert whole["tenant"].to_list() == sorted(whole["tenant"].to_list())


# --- migrations from an older schema -------------------------------------------------------------
def test_a_v5_file_becomes_ranges_with_the_same_rows_per_run(backend: Backend, tmp_path: Path):
    """A file as version 5 wrote it: three kept runs with full copies (a value changes in run 2, a
    policy is deleted in run 2 and comes back in run 4), a failed run between, and a pruned one.
    Opened by this version, every run reads the same rows as before."""
    path = tmp_path / "v5.duckdb"
    snaps = {1: A, 2: {"p1": {"k1": "1", "k2": "20"}}, 4: {"p1": {"k1": "1", "k2": "20"}, "p2": {"k3": "3"}}}
    backend.write_v5(path, {0: ("pruned", {}), 1: ("succeeded", snaps[1]), 2: ("partial", snaps[2]),
                            3: ("failed", {}), 4: ("succeeded", snaps[4])})
    store = backend.open(path)
    for run_id, data in snaps.items():
        assert values(store.run_settings([run_id])) == values(snapshot(data)[1]), run_id
        assert sorted(store.run_settings([run_id])["setting_name"].unique()) == sorted(
            {f"Name of {k}" for s in data.values() for k in s})
    assert values(store.current_settings()) == values(snapshot(snaps[4])[1])
    assert set(store.current_policies()["policy_id"]) == {"p1", "p2"}
    assert store.current_assignments().height == 2
    if backend.name == "duckdb":
        tables = {r[0] for r in backend.internals(store, "SELECT table_name FROM information_schema.tables")}
        assert not {"settings", "policies", "assignments", "alignments"} & tables
        assert backend.internals(store, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
        # k1 never changed: one version over all three runs; p2's k3 two (deleted in 2, back in 4)
        assert backend.internals(store, "SELECT count(*) FROM setting_versions WHERE setting_key = 'k1'") == [(1,)]
        assert backend.internals(store, "SELECT valid_from_run, valid_to_run FROM setting_versions "
                                        "WHERE setting_key = 'k3' ORDER BY 1") == [(1, 2), (4, None)]
    # and a sync after the migration writes only what changed
    run, written = sync(store, TENANT, snaps[4])
    assert written["changed_settings"] == 0 and values(store.run_settings([run])) == values(snapshot(snaps[4])[1])


# --- files it cannot safely open -----------------------------------------------------------------
def _fresh_process(code: str, path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`code` in a new process (the first open of a process is the one that checks the schema)."""
    return subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, **(env or {})})


def test_a_file_newer_than_the_code_is_refused_untouched(backend: Backend, store: Store) -> None:
    sync(store, TENANT, A)
    backend.set_version(store.path, SCHEMA_VERSION + 1)
    before = digest(store.path)
    probe = ("import sys; from pathlib import Path; from tenantpilot.store import Store, StoreTooNew\n"
             "try:\n    Store(Path(sys.argv[1])).tenants()\nexcept StoreTooNew as exc:\n    print(exc)")
    result = _fresh_process(probe, store.path)
    assert result.returncode == 0, result.stderr
    message = result.stdout.strip()
    assert f"schema version {SCHEMA_VERSION + 1}" in message and f"TenantPilot's {SCHEMA_VERSION}" in message
    assert "\n" not in message
    assert digest(store.path) == before
    write = ("import sys; from pathlib import Path; from tenantpilot.store import Store, StoreTooNew\n"
             "try:\n    Store(Path(sys.argv[1])).add_tenant('22222222-2222-4222-8222-222222222222', 'F')\n"
             "except StoreTooNew:\n    sys.exit(3)")
    assert _fresh_process(write, store.path).returncode == 3  # a writer is refused before it writes
    assert digest(store.path) == before


@pytest.mark.parametrize("damage", ["truncated", "zeroed header", "not a database"])
def test_a_damaged_file_is_one_line_at_every_entry_point(backend: Backend, tmp_path: Path, damage: str) -> None:
    data = tmp_path / "data"
    path = data / "tenantpilot.duckdb"
    store = backend.open(path)
    store.add_tenant(TENANT, "Contoso")
    sync(store, TENANT, {f"p{i}": {f"k{j}": str(j) for j in range(200)} for i in range(20)})
    size = path.stat().st_size
    if damage == "truncated":
        os.truncate(path, size // 3)
    elif damage == "zeroed header":
        with open(path, "r+b") as f:
            f.write(b"\0" * 8192)
    else:
        path.write_text("name,value\nnot,a database\n")
    env = {"TENANTPILOT_DB": str(path), "TENANTPILOT_DATA_DIR": str(data), "TENANTPILOT_LOG_DIR": str(tmp_path / "l")}
    for var in ("REDIS_URL", "AZURE_AD_CLIENT_ID", "AZURE_AD_CLIENT_SECRET", "AZURE_AD_CLIENT_CERTIFICATE_PATH"):
        env[var] = ""  # demo mode, whatever the machine's environment holds
    probe = ("import sys; from pathlib import Path; from tenantpilot.store import Store, StoreCorrupt\n"
             "try:\n    Store(Path(sys.argv[1])).tenants()\nexcept StoreCorrupt as exc:\n    print(exc); sys.exit(3)")
    opened = _fresh_process(probe, path)
    assert opened.returncode == 3 and len(opened.stdout.strip().splitlines()) == 1, opened
    runs = subprocess.run([sys.executable, "-m", "tenantpilot", "runs"], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, **env})
    assert runs.returncode == 1, runs
    lines = runs.stderr.strip().splitlines()
    assert len(lines) == 1 and "damaged or not a DuckDB database" in lines[0] and str(path) in lines[0], runs.stderr
    health = subprocess.run([sys.executable, "-m", "tenantpilot", "health"], capture_output=True, text=True,
                            timeout=120, cwd=ROOT, env={**os.environ, **env})
    report = json.loads(health.stdout)
    assert health.returncode == 1 and report["healthy"] is False
    assert report["database"]["reachable"] is False and "damaged" in report["database"]["error"]


def test_reads_on_a_full_disk_never_write(backend: Backend, tmp_path: Path) -> None:
    """A fresh process (CLI `runs`, `health`, a store read) reads a database on a disk with no room left."""
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        data = mount / "data"
        path = data / "tenantpilot.duckdb"
        store = backend.open(path)
        store.add_tenant(TENANT, "Contoso")
        run, _ = sync(store, TENANT, A)
        env = {"TENANTPILOT_DB": str(path), "TENANTPILOT_DATA_DIR": str(data),
               "TENANTPILOT_LOG_DIR": str(tmp_path / "logs"), "REDIS_URL": "", "AZURE_AD_CLIENT_ID": ""}
        # the queue file exists before the disk fills (health counts it)
        subprocess.run([sys.executable, "-m", "tenantpilot", "health"], capture_output=True, cwd=ROOT,
                       env={**os.environ, **env}, timeout=120)
        filler = mount / "filler"
        with open(filler, "wb", buffering=0) as f:  # fill the disk to the last byte
            try:
                while True:
                    f.write(b"\0" * 65536)
            except OSError:
                pass
            try:
                while True:
                    f.write(b"\0")
            except OSError:
                pass
        before = digest(path)
        probe = "import sys; from pathlib import Path; from tenantpilot.store import Store\n" \
                "print(Store(Path(sys.argv[1])).current_settings()['setting_key'].sort().to_list())"
        read = _fresh_process(probe, path)
        assert read.returncode == 0, read.stderr
        assert read.stdout.strip() == str(sorted(k for s in A.values() for k in s))
        runs = subprocess.run([sys.executable, "-m", "tenantpilot", "runs", TENANT], capture_output=True, text=True,
                              timeout=120, cwd=ROOT, env={**os.environ, **env})
        assert runs.returncode == 0 and str(run) in runs.stdout, runs
        health = subprocess.run([sys.executable, "-m", "tenantpilot", "health"], capture_output=True, text=True,
                                timeout=120, cwd=ROOT, env={**os.environ, **env})
        report = json.loads(health.stdout)
        assert report["database"]["reachable"] is True, report
        assert digest(path) == before
    finally:
        subprocess.run(["umount", "-l", str(mount)])


# --- locking between processes -------------------------------------------------------------------
def test_a_file_held_by_another_process_is_busy_after_the_budget(backend: Backend, store: Store) -> None:
    holder = subprocess.Popen(backend.holder(store.path, 20), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        budget = backend.open(store.path, lock_timeout_s=1.5)
        start = time.monotonic()
        with pytest.raises(StoreBusy, match="stayed locked by another process for 2s"):
            budget.tenants()
        assert time.monotonic() - start >= 1.5
    finally:
        holder.kill()
        holder.wait(30)
    assert store.tenants().height == 2  # free again: the same store reads


def _reader(path: str, seconds: float, out) -> None:
    store = Store(Path(path))
    failures = reads = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            store.current_settings()
            reads += 1
        except StoreError:
            failures += 1
    out.put((reads, failures))


def test_reader_process_never_fails_while_writer_writes(store):
    """A second process reads in a loop while this one writes snapshots: no read fails."""
    sync(store, CONTOSO, {"a": {"k": "v"}})
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_reader, args=(str(store.path), 6.0, out))
    proc.start()
    writes = 0
    end = time.monotonic() + 5.0
    while time.monotonic() < end:
        sync(store, CONTOSO, {"a": {f"k{i}": str(i) for i in range(500)}})
        writes += 1
    reads, failures = out.get(timeout=60)
    proc.join(30)
    print(f"concurrent: {writes} snapshot writes, {reads} reads in another process, {failures} failed reads")
    assert writes > 3 and reads > 3
    assert failures == 0


def test_a_database_created_elsewhere_first_is_kept_whole(backend: Backend, tmp_path: Path):
    """Two processes creating one new database: each builds its own draft and links it into place, so
    the path holds a whole database from the moment it exists; the one that lost keeps the winner's."""
    path = tmp_path / "data" / "tenantpilot.duckdb"
    first = backend.open(path)
    first.add_tenant(TENANT, "Contoso")
    backend.open(path)._create()  # the slower process: its draft loses the link, the winner's data stays
    assert first.tenants()["display_name"].to_list() == ["Contoso"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["tenantpilot.duckdb"]  # no draft left behind
