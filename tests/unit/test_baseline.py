"""Baselines imported from export files (graphsim/corpus: IntuneCD, Microsoft's
frameworks, terraform Graph captures) into a real DuckDB file, and compared."""

from __future__ import annotations

import polars as pl
import pytest

from graphsim import CORPUS_DIR as CORPUS
from tenantpilot.analysis import compare
from tenantpilot.flatten import count_leaves
from tenantpilot.flatten.files import load_export
from tenantpilot.flatten.schema import NO_SETTINGS
from tenantpilot.flatten.text import catalog_fallback
from tenantpilot.store import Store
from tenantpilot.sync.baseline import import_baseline


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "b.duckdb")


def test_every_corpus_file_imports_and_no_leaf_is_lost(store):
    result = import_baseline(store, CORPUS, "Corpus")
    skipped = {f for f, _ in result.skipped}
    json_files = {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*.json")}
    # Every JSON file is either imported or skipped with a reason that says it is not a policy.
    not_policies = {f for f, reason in result.skipped if reason.startswith("not a policy")}
    assert not (json_files & skipped) - not_policies, [r for r in result.skipped if r[0] in json_files]
    rows = store.current_settings([result.tenant_id])
    loaded = load_export(CORPUS)
    stats = []
    for family, group in rows.group_by("policy_type"):
        readable = group.filter(pl.col("setting_name") != pl.col("setting_id")).height / group.height
        # settings-catalog names made from the id (no definitions in these exports) are readable
        # but not the portal's wording: count the rows named from a real label separately.
        labelled = sum(name != catalog_fallback(sid)[0] for name, sid in zip(group["setting_name"], group["setting_id"]))
        files = sum(1 for fam, _ in loaded.policies if fam == family[0])
        stats.append((family[0], files, group.height, readable, labelled / group.height))
    lost = 0
    for family, policy in loaded.policies:
        if family == "settingsCatalog":
            name = policy.get("displayName") or policy.get("name")
            mine = rows.filter((pl.col("policy_name") == name) & (pl.col("setting_name") != NO_SETTINGS))
            lost += max(0, count_leaves(policy) - mine.height)
    print("\npolicy type            files   rows  readable name  portal/definition label  lost leaves")
    for family, files, n, readable, labelled in sorted(stats):
        print(f"{family:22} {files:5} {n:6}  {readable:12.0%}  {labelled:22.0%}  "
              f"{lost if family == 'settingsCatalog' else 0:5}")
    assert lost == 0
    assert result.policies == len(loaded.policies) > 100
    assert rows.height == result.settings


def test_baseline_imported_twice_compared_with_itself_shows_no_difference(store):
    a = import_baseline(store, CORPUS, "Copy A")
    b = import_baseline(store, CORPUS, "Copy B")
    frame = store.current_settings([a.tenant_id, b.tenant_id])
    matrix = compare.compare_matrix(frame, [a.tenant_id, b.tenant_id], baseline=a.tenant_id)
    assert matrix.height > 1000
    assert compare.only_differences(matrix).filter(pl.col("status") != "conflict").height == 0
    score = compare.alignment_scores(frame, [b.tenant_id], a.tenant_id).row(0, named=True)
    assert score["score"] == 1.0 and score["missing"] == 0 and score["extra"] == 0


def test_reimport_replaces_and_unreadable_files_are_listed(store, tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    source = next((CORPUS / "Intune-Config-Frameworks" / "iOS" / "Compliance").glob("*.json"))
    (folder / "good.json").write_bytes(source.read_bytes())
    (folder / "utf16.json").write_bytes(b"\xff\xfe" + source.read_text(encoding="utf-8-sig").replace(
        "level-", "utf16-level-").encode("utf-16-le"))
    (folder / "broken.json").write_text('{"displayName": "x", ')
    (folder / "notes.txt").write_text("hello")
    first = import_baseline(store, folder, "Mine")
    reasons = dict(first.skipped)
    assert "broken.json" in " ".join(reasons) and len(first.skipped) == 2, first.skipped
    assert first.policies == 2
    second = import_baseline(store, folder, "Mine")
    assert store.snapshot_token() == ((first.tenant_id, second.run_id),)
    assert store.tenants().filter(pl.col("kind") == "baseline").height == 1


def test_nothing_readable_is_a_clear_error(store, tmp_path):
    (tmp_path / "x.json").write_text("{nope")
    with pytest.raises(ValueError, match="No policy could be read"):
        import_baseline(store, tmp_path, "Empty")
