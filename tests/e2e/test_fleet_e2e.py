"""Fleet's memo through the real worker: after a sync through the queue and huey_consumer, the tenant's alignment
with the imported baseline is in the database (ops/alignments.refresh in the sync job), and it is exactly the
compare rule's (compare.alignment_scores on the same rows), so the Fleet page computes nothing for it."""

from __future__ import annotations

import json

from realparts import CONTOSO, add_and_sync, run_cli, store_of

from tenantpilot.analysis import compare


def test_a_sync_leaves_the_tenants_alignment_for_fleet(env: dict[str, str], consumer, tmp_path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "p.json").write_text(json.dumps({"@odata.type": "#microsoft.graph.windows10CompliancePolicy",
                                               "id": "p1", "displayName": "CIS compliance", "passwordRequired": True,
                                               "passwordMinimumLength": 14}))
    run_cli(env, "import", str(export), "--name", "CIS L1")
    add_and_sync(env, CONTOSO, name="Contoso")
    store = store_of(env)
    baseline = store.tenants().filter(store.tenants()["kind"] == "baseline")["tenant_id"].item()
    memo = store.alignment_memo([CONTOSO])
    assert memo.height == 1 and memo["baseline_id"].item() == baseline
    (row,) = memo.to_dicts()
    current = {t: r for t, r in store.snapshot_token()}
    assert (row["run_id"], row["baseline_run_id"]) == (current[CONTOSO], current[baseline])
    want = compare.alignment_scores(store.current_settings([CONTOSO, baseline]), [CONTOSO], baseline).row(0, named=True)
    assert {k: row[k] for k in ("baseline_settings", "matched", "differing", "missing", "extra", "score")} == {
        k: want[k] for k in ("baseline_settings", "matched", "differing", "missing", "extra", "score")}
