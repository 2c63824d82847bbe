"""Pure, table-driven tests of tenantpilot.analysis.compare and tenantpilot.analysis.drift (no I/O)."""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl
import pytest

from tenantpilot.analysis import compare, drift, export
from tenantpilot.flatten.schema import SETTING_SCHEMA

NAMES = {"a": "Contoso", "b": "Fabrikam", "c": "Northwind", "base": "Baseline"}
SC = "settingsCatalog"


def row(tenant: str, key: str, value: str, *, cmp: str | None = None, policy: str = "P1",
        policy_type: str = SC, name: str | None = None) -> dict:
    """One setting row shaped like Store.current_settings."""
    out = {c: None for c in SETTING_SCHEMA}
    out.update(
        run_id=1, tenant_id=tenant, tenant=NAMES.get(tenant, tenant),
        policy_id=f"{tenant}-{policy}", policy_name=f"{NAMES.get(tenant, tenant)} {policy}", policy_type=policy_type,
        odata_type="", platform="windows", setting_key=key, setting_id=key, setting_name=name or key.title(),
        category="Cat", value=value, raw_value=f'"{value}"', value_type="string", is_secret=False,
        description="", compare_value=value if cmp is None else cmp,
        synced_at=datetime(2025, 1, 1, tzinfo=timezone.utc),
    )
    return out


def frame(*rows: dict) -> pl.DataFrame:
    schema = {"run_id": pl.Int64, "tenant_id": pl.String, "tenant": pl.String, **SETTING_SCHEMA,
              "synced_at": pl.Datetime("us", "UTC")}
    return pl.DataFrame(list(rows), schema=schema)


def status_of(matrix: pl.DataFrame, key: str, policy_type: str = SC) -> str:
    hit = matrix.filter((pl.col("setting_key") == key) & (pl.col("policy_type") == policy_type))
    assert hit.height == 1, hit
    return hit["status"][0]


# --- status ---------------------------------------------------------------------------------
STATUS_CASES = [
    # (id, rows, tenants, expected status of key "k")
    ("same", [row("a", "k", "1"), row("b", "k", "1"), row("c", "k", "1")], ["a", "b", "c"], "same"),
    ("differs", [row("a", "k", "1"), row("b", "k", "2"), row("c", "k", "1")], ["a", "b", "c"], "differs"),
    ("missing in one", [row("a", "k", "1"), row("b", "k", "1")], ["a", "b", "c"], "missing"),
    ("missing beats nothing, differs beats missing", [row("a", "k", "1"), row("b", "k", "2")], ["a", "b", "c"],
     "differs"),
    ("conflict inside one tenant", [row("a", "k", "1"), row("a", "k", "2", policy="P2"), row("b", "k", "1")],
     ["a", "b"], "conflict"),
    ("two policies, same value: no conflict", [row("a", "k", "1"), row("a", "k", "1", policy="P2"),
                                               row("b", "k", "1")], ["a", "b"], "same"),
    ("matched by key, not by policy name", [row("a", "k", "1", policy="Firewall"),
                                           row("b", "k", "1", policy="FW baseline v2")], ["a", "b"], "same"),
    ("compared on compare_value, not display value",
     [row("a", "k", "x, y", cmp='["x","y"]'), row("b", "k", "y, x", cmp='["x","y"]')], ["a", "b"], "same"),
    ("tenant-specific parts normalised by flattener",
     [row("a", "k", "a.onmicrosoft.com", cmp="{tenant_domain}"),
      row("b", "k", "b.onmicrosoft.com", cmp="{tenant_domain}")], ["a", "b"], "same"),
    ("tenant not compared is ignored", [row("a", "k", "1"), row("b", "k", "1"), row("c", "k", "9")], ["a", "b"],
     "same"),
]


@pytest.mark.parametrize(("rows", "tenants", "expected"), [c[1:] for c in STATUS_CASES],
                         ids=[c[0] for c in STATUS_CASES])
def test_status(rows, tenants, expected):
    assert status_of(compare.compare_matrix(frame(*rows), tenants), "k") == expected


def test_null_compare_value_uses_value():
    f = frame(row("a", "k", "1"), row("b", "k", "1")).with_columns(pl.lit(None, pl.String).alias("compare_value"))
    assert status_of(compare.compare_matrix(f, ["a", "b"]), "k") == "same"
    f2 = f.with_columns(pl.when(pl.col("tenant_id") == "b").then(pl.lit("2")).otherwise(pl.col("value")).alias("value"))
    assert status_of(compare.compare_matrix(f2, ["a", "b"]), "k") == "differs"


def test_same_key_in_other_policy_type_is_another_setting():
    f = frame(row("a", "k", "1"), row("b", "k", "2", policy_type="deviceConfiguration"))
    m = compare.compare_matrix(f, ["a", "b"])
    assert m.height == 2
    assert status_of(m, "k", SC) == "missing"
    assert status_of(m, "k", "deviceConfiguration") == "missing"


def with_type(r: dict, odata_type: str, platform: str = "windows") -> dict:
    return {**r, "odata_type": odata_type, "platform": platform}


WIN = "#microsoft.graph.windows10CompliancePolicy"
IOS = "#microsoft.graph.iosCompliancePolicy"


def test_property_keys_are_scoped_by_graph_type():
    # compliance keys are bare property paths: Windows and iOS passwordRequired are different settings
    f = frame(
        with_type(row("a", "passwordRequired", "true", policy_type="compliance"), WIN),
        with_type(row("a", "passwordRequired", "false", policy="iOS", policy_type="compliance"), IOS, "iOS"),
        with_type(row("b", "passwordRequired", "true", policy_type="compliance"), WIN),
    )
    m = compare.compare_matrix(f, ["a", "b"])
    got = {r["scope"]: r["status"] for r in m.iter_rows(named=True)}
    assert got == {"windows10CompliancePolicy": "same", "iosCompliancePolicy": "missing"}
    assert compare.conflicts(f).height == 0
    # settings catalog keys are definition ids: the Graph type never splits them, the platform does
    # (Apple's ids are shared by iOS and macOS profiles, which apply to different devices)
    g = frame(with_type(row("a", "k", "1"), "#microsoft.graph.deviceManagementConfigurationPolicy"),
              with_type(row("b", "k", "1"), ""))
    m = compare.compare_matrix(g, ["a", "b"])
    assert m.height == 1 and m["scope"][0] == "windows" and m["status"][0] == "same"
    h = frame(with_type(row("a", "k", "1"), "", "iOS"), with_type(row("a", "k", "11", policy="Mac"), "", "macOS"),
              with_type(row("b", "k", "1"), "", "iOS"), with_type(row("b", "k", "11", policy="Mac"), "", "macOS"))
    m = compare.compare_matrix(h, ["a", "b"])
    assert {r["scope"]: r["status"] for r in m.iter_rows(named=True)} == {"iOS": "same", "macOS": "same"}
    assert compare.conflicts(h).height == 0


def test_matrix_shape_and_cells():
    f = frame(
        row("a", "k", "1"), row("a", "k", "2", policy="P2"),  # conflict in a
        row("b", "k", "1"),
        row("b", "only_b", "x"),
    )
    m = compare.compare_matrix(f, ["a", "b"])
    assert m.columns == ["policy_type", "scope", "setting_key", "setting_name", "category", "policy", "status",
                         "tenants_set", "Contoso", "Fabrikam"]
    k = m.filter(pl.col("setting_key") == "k").row(0, named=True)
    assert k["Contoso"] == "1 | 2" and k["Fabrikam"] == "1" and k["status"] == "conflict" and k["tenants_set"] == 2
    only_b = m.filter(pl.col("setting_key") == "only_b").row(0, named=True)
    assert only_b["Contoso"] is None and only_b["status"] == "missing" and only_b["tenants_set"] == 1
    assert compare.only_differences(m).height == 2


def test_baseline_column_first_and_labels():
    f = frame(row("a", "k", "1"), row("base", "k", "1"), row("b", "k", "1"))
    m = compare.compare_matrix(f, ["a", "b"], baseline="base")
    assert m.columns[-3:] == ["Baseline", "Contoso", "Fabrikam"]
    m2 = compare.compare_matrix(f, ["a", "b", "base"], baseline="base", labels={"a": "A", "b": "B", "base": "★ base"})
    assert m2.columns[-3:] == ["★ base", "A", "B"]
    assert status_of(m2, "k") == "same"


def test_duplicate_display_names_are_disambiguated():
    f = frame(row("a", "k", "1"), row("b", "k", "1")).with_columns(pl.lit("Same name").alias("tenant"))
    m = compare.compare_matrix(f, ["a", "b"])
    assert m.columns[-2:] == ["Same name (a)", "Same name (b)"]


def test_tenant_without_rows_gets_empty_column():
    m = compare.compare_matrix(frame(row("a", "k", "1")), ["a", "zzz"])
    assert m["zzz"].to_list() == [None]
    assert status_of(m, "k") == "missing"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_order_insensitive(seed):
    rows = [row("a", "k", "1"), row("a", "k", "2", policy="P2"), row("b", "k", "1"), row("c", "k2", "z"),
            row("b", "k2", "z"), row("a", "k3", "q"), row("c", "k3", "r")]
    f = frame(*rows)
    expected = compare.compare_matrix(f, ["a", "b", "c"])
    shuffled = f.sample(fraction=1.0, shuffle=True, seed=seed)
    assert compare.compare_matrix(shuffled, ["a", "b", "c"]).equals(expected)
    # tenant order changes column order only
    other = compare.compare_matrix(shuffled, ["c", "a", "b"])
    assert other.select(expected.columns).equals(expected)
    assert compare.alignment_scores(shuffled, ["b", "c"], "a").equals(compare.alignment_scores(f, ["b", "c"], "a"))


# --- alignment ------------------------------------------------------------------------------
def test_alignment_scores():
    f = frame(
        row("base", "k1", "1"), row("base", "k2", "2"), row("base", "k3", "3"), row("base", "k4", "4"),
        # a: k1 same, k2 differs, k3 same via normalised value, k4 missing, one extra
        row("a", "k1", "1"), row("a", "k2", "x"), row("a", "k3", "3 ", cmp="3"), row("a", "extra", "e"),
        # b: everything matches, k1 also set to another value in a second policy (conflict -> differing)
        row("b", "k1", "1"), row("b", "k1", "9", policy="P2"), row("b", "k2", "2"), row("b", "k3", "3"),
        row("b", "k4", "4"),
    )
    scores = compare.alignment_scores(f, ["a", "b", "base"], "base")
    got = {r["tenant_id"]: r for r in scores.iter_rows(named=True)}
    assert scores["tenant_id"].to_list() == ["a", "b"]  # the baseline is not scored
    assert {k: got["a"][k] for k in ("baseline_settings", "matched", "differing", "missing", "extra")} == {
        "baseline_settings": 4, "matched": 2, "differing": 1, "missing": 1, "extra": 1}
    assert got["a"]["score"] == pytest.approx(0.5)
    assert (got["b"]["matched"], got["b"]["differing"], got["b"]["missing"]) == (3, 1, 0)
    assert got["b"]["tenant"] == "Fabrikam"


def test_alignment_empty_baseline_and_empty_tenant():
    f = frame(row("a", "k1", "1"))
    scores = compare.alignment_scores(f, ["a"], "base")
    assert scores.row(0, named=True) == {"tenant_id": "a", "tenant": "Contoso", "baseline_settings": 0,
                                              "matched": 0, "differing": 0, "missing": 0, "extra": 1, "accepted": 0,
                                              "score": None}
    scores = compare.alignment_scores(frame(row("base", "k1", "1")), ["nobody"], "base")
    assert scores.row(0, named=True)["missing"] == 1 and scores.row(0, named=True)["score"] == 0.0


# --- conflicts ------------------------------------------------------------------------------
def test_conflicts_within_tenant_only():
    f = frame(
        row("a", "k", "1", policy="P1"), row("a", "k", "2", policy="P2"), row("a", "k", "1", policy="P3"),
        row("a", "ok", "1", policy="P1"), row("a", "ok", "1", policy="P2"),
        row("b", "k", "5"),  # differs from a, but that is no conflict
    )
    c = compare.conflicts(f)
    assert set(c["tenant_id"]) == {"a"}
    assert c["setting_key"].unique().to_list() == ["k"]
    assert sorted(c["policy_name"].to_list()) == ["Contoso P1", "Contoso P2", "Contoso P3"]
    assert c["distinct_values"].unique().to_list() == [2]
    assert compare.conflicts(frame(row("a", "k", "1"))).height == 0


def test_differences_by_policy_type():
    f = frame(row("a", "k", "1"), row("b", "k", "2"), row("a", "j", "1", policy_type="compliance"),
              row("b", "j", "1", policy_type="compliance"))
    counts = compare.differences_by_policy_type(compare.compare_matrix(f, ["a", "b"]))
    assert counts.to_dicts() == [
        {"policy_type": "compliance", "conflict": 0, "differs": 0, "missing": 0, "same": 1},
        {"policy_type": SC, "conflict": 0, "differs": 1, "missing": 0, "same": 0},
    ]


# --- export of the matrix -------------------------------------------------------------------
def test_matrix_csv_is_bom_utf8_and_formula_safe():
    f = frame(row("a", "k", "=HYPERLINK(\"http://evil\")"), row("b", "k", "+1"), row("a", "ü", "Größe"),
              row("b", "ü", "@SUM(A1)"))
    data = export.to_csv_bytes(compare.compare_matrix(f, ["a", "b"]))
    assert data.startswith(b"\xef\xbb\xbf")
    text = data[3:].decode("utf-8")
    assert "'=HYPERLINK" in text and "'+1" in text and "'@SUM(A1)" in text and "Größe" in text
    assert ",=" not in text and ",+" not in text and ",@" not in text


# --- drift ----------------------------------------------------------------------------------
DRIFT_CASES = [
    ("no change", [row("a", "k", "1")], [row("a", "k", "1")], []),
    ("changed", [row("a", "k", "1")], [row("a", "k", "2")], [("changed", "k", "1", "2")]),
    ("added", [], [row("a", "k", "1")], [("added", "k", None, "1")]),
    ("removed", [row("a", "k", "1")], [], [("removed", "k", "1", None)]),
    ("policy renamed: no drift", [row("a", "k", "1", policy="Old")], [row("a", "k", "1", policy="New")], []),
    ("list reordered: no drift", [row("a", "k", "x, y", cmp="x,y")], [row("a", "k", "y, x", cmp="x,y")], []),
    ("conflict appears", [row("a", "k", "1")], [row("a", "k", "1"), row("a", "k", "2", policy="P2")],
     [("changed", "k", "1", "1 | 2")]),
    ("mixed, sorted added/removed/changed",
     [row("a", "gone", "1"), row("a", "chg", "1"), row("a", "same", "1")],
     [row("a", "chg", "2"), row("a", "same", "1"), row("a", "new", "n")],
     [("added", "new", None, "n"), ("removed", "gone", "1", None), ("changed", "chg", "1", "2")]),
]


@pytest.mark.parametrize(("old", "new", "expected"), [c[1:] for c in DRIFT_CASES], ids=[c[0] for c in DRIFT_CASES])
def test_diff_runs(old, new, expected):
    d = drift.diff_runs(frame(*old), frame(*new))
    assert d.columns == list(drift.DIFF_COLUMNS)
    got = [(r["change"], r["setting_key"], r["old_value"], r["new_value"]) for r in d.iter_rows(named=True)]
    assert got == expected


def test_diff_summary_and_policies():
    d = drift.diff_runs(frame(row("a", "k", "1", policy="Old")), frame(row("a", "k", "2", policy="New")))
    assert drift.summary(d) == {"added": 0, "removed": 0, "changed": 1}
    r = d.row(0, named=True)
    assert (r["old_policies"], r["new_policies"]) == ("Contoso Old", "Contoso New")
    assert drift.summary(d.clear()) == {"added": 0, "removed": 0, "changed": 0}


def test_conflicts_restricted_to_matrix_keys_is_the_same():
    f = frame(row("a", "k", "1"), row("a", "k", "2", policy="P2"), row("a", "j", "x"), row("b", "k", "1"))
    m = compare.compare_matrix(f, ["a", "b"])
    assert compare.conflicts(f, only=m.filter(pl.col("status") == "conflict")).equals(compare.conflicts(f))
    assert compare.conflicts(f, only=m.filter(pl.col("status") == "same")).height == 0


# --- policy events (drift.changes) ----------------------------------------------------------
def test_deleted_policy_is_one_event_not_its_settings_removed():
    old = frame(row("a", "k1", "1", policy="Gone"), row("a", "k2", "2", policy="Gone"), row("a", "k3", "3", policy="Gone"),
                row("a", "kept", "1", policy="Stays"))
    new = frame(row("a", "kept", "2", policy="Stays"), row("a", "n1", "x", policy="New"), row("a", "n2", "y", policy="New"))
    got = drift.changes(old, new)
    assert got.events.select("event", "old_name", "new_name", "settings").rows() == [
        ("policy added", None, "Contoso New", 2), ("policy deleted", "Contoso Gone", None, 3)]
    assert got.settings.select("change", "setting_key", "old_value", "new_value").rows() == [("changed", "kept", "1", "2")]
    assert drift.event_summary(got.events) == {"policy added": 1, "policy deleted": 1, "policy renamed": 0}
    # the plain setting diff still sees every setting
    assert drift.summary(drift.diff_runs(old, new)) == {"added": 2, "removed": 3, "changed": 1}


def test_renamed_policy_is_an_event_and_no_setting_change():
    old = frame(row("a", "k", "1", policy="P1"))
    new = frame(row("a", "k", "1", policy="P1").copy() | {"policy_name": "Contoso P1 (v2)"})
    got = drift.changes(old, new)
    assert got.events.select("event", "old_name", "new_name", "settings").rows() == [
        ("policy renamed", "Contoso P1", "Contoso P1 (v2)", 1)]
    assert got.settings.height == 0


def test_unconfigured_settings_are_no_setting_and_no_change():
    unset = {**row("a", "k", "Not configured", cmp="<not-configured>"), "configured": False}
    old = frame(row("a", "k", "true"), row("a", "j", "1"))
    new = frame(unset, row("a", "j", "1"))
    got = drift.changes(old, new)
    assert got.settings.select("change", "setting_key", "old_value", "new_value").rows() == [
        ("removed", "k", "true", None)]
    assert drift.policy_events(frame(unset), frame(unset)).height == 0
    assert drift.policy_events(frame(), frame(unset))["settings"].to_list() == [0]


# --- one vocabulary against a baseline (issue 20, item 3) -------------------------------------------
BASELINE_CASES = [
    # (id, rows, tenants, expected status of key "k" with "base" as the baseline)
    ("same as the baseline", [row("base", "k", "1"), row("a", "k", "1")], ["a"], compare.SAME),
    ("another value", [row("base", "k", "1"), row("a", "k", "2")], ["a"], compare.DIFFERENT),
    ("the tenant lacks it", [row("base", "k", "1"), row("a", "other", "1")], ["a"], compare.MISSING_IN_TENANT),
    ("the baseline lacks it (was 'missing' in the matrix, 'extra' in the scores)",
     [row("base", "other", "1"), row("a", "k", "1")], ["a"], compare.NOT_IN_BASELINE),
    ("the baseline lacks it though the tenants disagree", [row("base", "other", "1"), row("a", "k", "1"),
                                                           row("b", "k", "2")], ["a", "b"], compare.NOT_IN_BASELINE),
    ("one tenant differs, one lacks it: the stronger word", [row("base", "k", "1"), row("a", "k", "2")], ["a", "b"],
     compare.DIFFERENT),
    ("both tenants equal, both differ from the baseline", [row("base", "k", "1"), row("a", "k", "2"),
                                                           row("b", "k", "2")], ["a", "b"], compare.DIFFERENT),
    ("a conflict inside a tenant wins", [row("base", "k", "1"), row("a", "k", "1"), row("a", "k", "2", policy="P2")],
     ["a"], compare.CONFLICT),
]


@pytest.mark.parametrize("name, rows, tenants, expected", BASELINE_CASES, ids=[c[0] for c in BASELINE_CASES])
def test_baseline_words_in_the_matrix(name: str, rows: list[dict], tenants: list[str], expected: str) -> None:
    f = frame(*rows)
    assert status_of(compare.compare_matrix(f, tenants, "base"), "k") == expected
    matrix, scores, _found = compare.comparison(f, tenants, "base")
    assert status_of(matrix, "k") == expected  # one pass says the same
    assert scores is not None


@pytest.mark.parametrize("status, column", [(compare.DIFFERENT, "differing"), (compare.MISSING_IN_TENANT, "missing"),
                                            (compare.NOT_IN_BASELINE, "extra")])
def test_a_row_word_and_the_score_column_that_counts_it_agree(status: str, column: str) -> None:
    """The scores count per tenant what the matrix names per setting, with the same word (SCORE_WORDS)."""
    f = frame(row("base", "same", "1"), row("a", "same", "1"), row("base", "diff", "1"), row("a", "diff", "2"),
              row("base", "gone", "1"), row("a", "new", "1"))
    matrix, scores, _found = compare.comparison(f, ["a"], "base")
    assert scores is not None
    assert compare.SCORE_WORDS[column] == status
    assert matrix.filter(pl.col("status") == status).height == scores[column][0] == 1


@pytest.mark.parametrize("own, base, expected", [
    ("1", "1", compare.SAME), ("2", "1", compare.DIFFERENT), (None, "1", compare.MISSING_IN_TENANT),
    ("1", None, compare.NOT_IN_BASELINE), (None, None, None),
])
def test_baseline_status(own: str | None, base: str | None, expected: str | None) -> None:
    got = pl.DataFrame({"own": [own], "base": [base]}, schema={"own": pl.String, "base": pl.String}).select(
        compare.baseline_status(pl.col("own"), pl.col("base")))
    assert got.item() == expected


def test_differences_by_policy_type_with_baseline_words() -> None:
    f = frame(row("base", "diff", "1"), row("a", "diff", "2"), row("a", "new", "1"), row("base", "gone", "1"))
    by_type = compare.differences_by_policy_type(compare.compare_matrix(f, ["a"], "base"), compare.BASELINE_STATUSES)
    assert by_type.row(0, named=True) == {"policy_type": SC, compare.CONFLICT: 0, compare.DIFFERENT: 1,
                                          compare.MISSING_IN_TENANT: 1, compare.NOT_IN_BASELINE: 1, compare.SAME: 0}


# --- triage: a whole policy as one line, and what accepting selected rows covers (issue 20, item 4) ---------
def _policy(tenant: str, policy: str, keys: str, value: str = "1") -> list[dict]:
    return [row(tenant, k, value, policy=policy) for k in keys]


LINE_CASES = [
    # (id, rows, tenants, expected (setting_name, status, settings) per line, in order)
    ("a baseline policy missing in the tenant: one line", [*_policy("base", "FW", "abc"), *_policy("a", "X", "z")],
     ["a"], [("Baseline FW (3 settings)", compare.MISSING_IN_TENANT, 3), ("Z", compare.NOT_IN_BASELINE, 1)]),
    ("a tenant's extra policy: one line", [*_policy("base", "FW", "a"), *_policy("a", "FW", "a"),
                                           *_policy("a", "Extra", "xy")],
     ["a"], [("A", compare.SAME, 1), ("Contoso Extra (2 settings)", compare.NOT_IN_BASELINE, 2)]),
    ("a policy partly set in the tenant stays row by row", [*_policy("base", "FW", "abc"), *_policy("a", "P", "a")],
     ["a"], [("A", compare.SAME, 1), ("B", compare.MISSING_IN_TENANT, 1), ("C", compare.MISSING_IN_TENANT, 1)]),
    ("missing from different tenants: not one line", [*_policy("base", "FW", "ab"), *_policy("a", "P", "a"),
                                                      *_policy("b", "P", "b")],
     ["a", "b"], [("A", compare.MISSING_IN_TENANT, 1), ("B", compare.MISSING_IN_TENANT, 1)]),
    ("without a baseline: a policy one tenant lacks", [*_policy("a", "FW", "ab"), *_policy("b", "Q", "c")], ["a", "b"],
     [("Contoso FW (2 settings)", compare.MISSING, 2), ("C", compare.MISSING, 1)]),
]


@pytest.mark.parametrize("name, rows, tenants, expected", LINE_CASES, ids=[c[0] for c in LINE_CASES])
def test_policy_lines(name: str, rows: list[dict], tenants: list[str], expected: list[tuple]) -> None:
    f = frame(*rows)
    base = "base" if any(r["tenant_id"] == "base" for r in rows) else None
    order = [*([base] if base else []), *tenants]
    matrix = compare.compare_matrix(f, tenants, base)
    lines = compare.policy_lines(matrix, [NAMES[t] for t in order])
    assert [(r["setting_name"], r["status"], r["settings"]) for r in lines.iter_rows(named=True)] == expected
    assert lines["settings"].sum() == matrix.height  # every setting is behind exactly one line
    for r in lines.filter(pl.col("settings") > 1).iter_rows(named=True):
        assert len(r["members"]) == r["settings"]
        assert sorted(v for v in (r[NAMES[t]] for t in order) if v) == [f"{r['settings']} settings"] * len(
            [t for t in order if r[NAMES[t]]])


DEVIATING_CASES = [
    # (id, rows, tenants, keys, expected (tenant, key, status))
    ("only the tenants that differ", [row("base", "k", "1"), row("a", "k", "2"), row("b", "k", "1")], ["a", "b"],
     ["k"], [("a", "k", compare.DIFFERENT)]),
    ("missing and extra", [row("base", "k", "1"), row("a", "x", "1")], ["a"], ["k", "x"],
     [("a", "k", compare.MISSING_IN_TENANT), ("a", "x", compare.NOT_IN_BASELINE)]),
    ("keys not asked for are left alone", [row("base", "k", "1"), row("a", "k", "2"), row("a", "x", "1")], ["a"],
     ["x"], [("a", "x", compare.NOT_IN_BASELINE)]),
    ("the same value everywhere: nothing to accept", [row("base", "k", "1"), row("a", "k", "1")], ["a"], ["k"], []),
]


@pytest.mark.parametrize("name, rows, tenants, keys, expected", DEVIATING_CASES, ids=[c[0] for c in DEVIATING_CASES])
def test_deviating_cells(name: str, rows: list[dict], tenants: list[str], keys: list[str], expected: list) -> None:
    wanted = pl.DataFrame({"policy_type": [SC] * len(keys), "scope": [""] * len(keys), "setting_key": keys})
    f = frame(*rows).with_columns(pl.lit("").alias("odata_type"))
    wanted = wanted.with_columns(pl.lit(compare.with_scope(f)["scope"][0]).alias("scope"))
    got = compare.deviating_cells(f, "base", tenants, wanted)
    assert [(r["tenant_id"], r["setting_key"], r["status"]) for r in got.iter_rows(named=True)] == expected
