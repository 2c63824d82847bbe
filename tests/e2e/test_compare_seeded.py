"""Compare on real synced data: three simulated tenants (same seed, variants 0/1/2) synced through
the real queue and consumer; the matrix shows exactly the differences the simulator seeded.
And a baseline imported from the same policies (as an export would hold them) shows exactly
the seeded differences of the tenant compared with it."""

from __future__ import annotations

import json

import polars as pl
from realparts import run_cli

from tenantpilot.analysis import compare
from tenantpilot.flatten.constants import COLLECTION_FAMILIES
from tenantpilot.store import Store
from tenantpilot.sync.baseline import import_baseline

TENANTS = ["11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222",
           "33333333-3333-4333-8333-333333333333"]


def sync_all(env) -> Store:
    for tid in TENANTS:
        run_cli(env, "tenants", "add", tid, "--name", tid[:8])
    for tid in TENANTS:
        result = run_cli(env, "sync", tid, "--wait")
        assert result.returncode == 0, result.stdout + result.stderr
    return Store(env["TENANTPILOT_DB"])


def explained(frame: pl.DataFrame, matrix: pl.DataFrame, seeded: list[dict]) -> tuple[set, set]:
    """(keys of non-same matrix rows, keys the seeded differences account for)."""
    key_cols = list(compare.MATCH_KEY)
    rows = compare.with_scope(frame)
    differing = compare.only_differences(matrix).select(key_cols).unique()
    expected = set()
    for diff in seeded:
        if diff["kind"] == "missing_policy":
            mine = rows.filter(pl.col("policy_name") == diff["policy_name"])
        else:
            did = diff["setting_definition_id"]
            mine = rows.filter((pl.col("policy_name") == diff["policy_name"]) & (pl.col("setting_id") == did))
        assert mine.height, f"seeded difference not found in any tenant's rows: {diff}"
        expected |= set(mine.select(key_cols).iter_rows())
    return set(differing.iter_rows()), expected


def test_three_tenants_differ_exactly_where_seeded(env, consumer, sim):
    store = sync_all(env)
    frame = store.current_settings(TENANTS)
    matrix = compare.compare_matrix(frame, TENANTS, baseline=TENANTS[0])
    seeded = [d for tid in TENANTS for d in sim.tenants[tid].seeded_differences]
    assert len(seeded) >= 6
    shown, expected = explained(frame, matrix, seeded)
    # conflicts inside one tenant exist in every variant alike; they are not differences between tenants
    inherent = set(compare.with_scope(compare.conflicts(frame)).select(list(compare.MATCH_KEY)).iter_rows())
    assert shown - inherent == expected - inherent, {
        "shown but not seeded": sorted(shown - expected - inherent)[:10],
        "seeded but not shown": sorted(expected - shown - inherent)[:10],
    }
    scores = compare.alignment_scores(frame, TENANTS, TENANTS[0])
    assert scores["score"].max() < 1.0  # every variant differs from the baseline somewhere
    print(f"\n{matrix.height} settings compared; {len(shown)} differ, all seeded "
          f"({len(seeded)} seeded changes); alignment {scores['score'].round(3).to_list()}")


def test_tenant_against_a_baseline_made_from_the_same_policies(env, consumer, sim, tmp_path):
    store = sync_all(env)
    variant = TENANTS[1]
    # The baseline: the *unchanged* (variant 0) policies, written out as an export would hold them.
    export = tmp_path / "export"
    export.mkdir()
    # Like IntuneManagement, each file carries the @odata.context of the collection it came from.
    collection = {family: name for name, family in reversed(COLLECTION_FAMILIES.items())}
    for i, row in enumerate(store.current_policies([TENANTS[0]], with_raw=True).iter_rows(named=True)):
        policy = json.loads(row["raw_json"])
        policy["@odata.context"] = ("https://graph.microsoft.com/beta/$metadata#deviceManagement/"
                                    f"{collection[row['policy_type']]}/$entity")
        (export / f"policy-{i:03d}.json").write_text(json.dumps(policy), encoding="utf-8")
    result = import_baseline(store, export, "Golden")
    assert result.skipped == []
    frame = store.current_settings([result.tenant_id, variant])
    matrix = compare.compare_matrix(frame, [variant], baseline=result.tenant_id)
    shown, expected = explained(frame, matrix, sim.tenants[variant].seeded_differences)
    inherent = set(compare.with_scope(compare.conflicts(frame)).select(list(compare.MATCH_KEY)).iter_rows())
    assert shown - inherent == expected - inherent, {
        "shown but not seeded": sorted(shown - expected - inherent)[:10],
        "seeded but not shown": sorted(expected - shown - inherent)[:10],
    }
    # and the baseline compared with the tenant it came from: no difference at all
    same = compare.compare_matrix(store.current_settings([result.tenant_id, TENANTS[0]]), [TENANTS[0]],
                                  baseline=result.tenant_id)
    assert compare.only_differences(same).filter(pl.col("status") != "conflict").height == 0, json.dumps(
        compare.only_differences(same).head(5).to_dicts(), default=str)
