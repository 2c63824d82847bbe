"""Fleet (issue 20, item 5): which baseline each tenant is measured against (table-driven), the fleet table worst
first, and the Fleet page: the compare rule's numbers for every tenant the user may see, a new sync or an
accepted deviation seen on the next rerun. AppTest on a real DuckDB file filled through the Store."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import polars as pl
import pytest
from apptest import BASELINE, CONTOSO, DATA, FABRIKAM, NORTHWIND, app, find_table, write_snapshot
from streamlit.testing.v1 import AppTest

from tenantpilot.analysis import compare, deviations, fleet
from tenantpilot.analysis.deviations import NewDeviation
from tenantpilot.ops import alignments
from tenantpilot.store import Store

T = {"tenant_id": pl.String, "display_name": pl.String, "kind": pl.String, "current_run_id": pl.Int64}


def tenants(*rows: tuple[str, str, int | None]) -> pl.DataFrame:
    return pl.DataFrame([{"tenant_id": t, "display_name": t.upper(), "kind": k, "current_run_id": r} for t, k, r in rows],
                        schema=T)


MEMBERS = pl.DataFrame({"group_name": ["retail", "retail", "zeta"], "tenant_id": ["a", "b", "a"]})
GROUPS = pl.DataFrame({"group_name": ["retail", "zeta"], "baseline_id": ["g", "imp"]})
ASSIGN_CASES = [
    # (id, tenants, chosen, expected)
    ("the group's baseline, else the imported one",
     tenants(("a", "tenant", 1), ("b", "tenant", 2), ("c", "tenant", 3), ("g", "tenant", 4), ("imp", "baseline", 5)),
     None, {"a": "g", "b": "g", "c": "imp", "g": "imp"}),
    ("a group baseline without data: the imported one",
     tenants(("a", "tenant", 1), ("g", "tenant", None), ("imp", "baseline", 5)), None, {"a": "imp"}),
    ("no baseline at all: nobody", tenants(("c", "tenant", 1), ("d", "tenant", 2)), None, {}),
    ("a chosen one for all (not itself, not the unsynced)",
     tenants(("a", "tenant", 1), ("b", "tenant", None), ("c", "tenant", 3), ("imp", "baseline", 5)), "c",
     {"a": "c"}),
    ("of two imported baselines, the first by name",
     tenants(("c", "tenant", 1), ("zz", "baseline", 2), ("aa", "baseline", 3)), None, {"c": "aa"}),
]


@pytest.mark.parametrize("name, given, chosen, expected", ASSIGN_CASES, ids=[c[0] for c in ASSIGN_CASES])
def test_assign_baselines(name: str, given: pl.DataFrame, chosen: str | None, expected: dict) -> None:
    assert fleet.assign_baselines(given, MEMBERS, GROUPS, chosen) == expected


def test_the_table_is_worst_first_and_counts_expired_deviations() -> None:
    scores = pl.DataFrame({"tenant_id": ["a", "b", "c"], "baseline_settings": [4, 4, 0], "matched": [3, 1, 0],
                           "differing": [1, 2, 0], "missing": [0, 1, 0], "extra": [0, 0, 2], "accepted": [0, 1, 0],
                           "score": [0.75, 0.25, None]})
    today = date(2026, 12, 7)
    register = deviations.empty_register().vstack(pl.DataFrame([
        {"deviation_id": 1, "tenant_id": "a", "baseline_id": "base", "expires_on": today - timedelta(days=1)},
        {"deviation_id": 2, "tenant_id": "a", "baseline_id": "other", "expires_on": today - timedelta(days=1)},
        {"deviation_id": 3, "tenant_id": "b", "baseline_id": "base", "expires_on": today},
    ], schema=deviations.REGISTER_SCHEMA))
    out = fleet.table(scores, register, {"a": "base", "b": "base", "c": "base"}, {"a": "A", "base": "Base"},
                      {"a": datetime(2026, 12, 6, tzinfo=timezone.utc)}, today)
    assert out["tenant_id"].to_list() == ["b", "a", "c"]  # worst first, an empty baseline last
    assert out["change"].is_null().all()  # nothing known a week ago
    assert dict(zip(out["tenant_id"], out["expired"])) == {"a": 1, "b": 0, "c": 0}  # its own baseline's only
    assert out.filter(pl.col("tenant_id") == "a")["tenant"].item() == "A" and set(out["baseline"]) == {"Base"}


def fleet_table(at: AppTest):
    return find_table(at, "tenant", "aligned", "baseline", "expired")


def test_the_fleet_page_shows_the_compare_rules_numbers_worst_first(filled: Store) -> None:
    at = app("fleet")
    table = fleet_table(at)
    expected = compare.alignment_scores(filled.current_settings(), [CONTOSO, FABRIKAM, NORTHWIND], BASELINE)
    by_name = {r["tenant"]: r for r in expected.iter_rows(named=True)}
    assert list(table["tenant"]) == sorted(by_name, key=lambda n: (by_name[n]["score"], -by_name[n]["missing"], n))
    assert list(table["tenant"])[0] == "Fabrikam"
    for r in table.to_dict("records"):
        want = by_name[r["tenant"]]
        assert r["aligned"] == pytest.approx(want["score"] * 100)
        assert (r["matched"], r["differing"], r["missing"], r["extra"]) == (
            want["matched"], want["differing"], want["missing"], want["extra"])
        assert r["baseline"] == "CIS Level 1" and r["open"].startswith("compare?cmp_tenants=")

    # an accepted deviation and a new sync are seen on the next rerun (the memo's key holds both)
    filled.add_deviation(NewDeviation(FABRIKAM, BASELINE, "settingsCatalog", "windows", "fw_inbound",
                                      "Default inbound action", "legacy VPN", "Ops", date.today() + timedelta(days=5)))
    at.run()
    row = fleet_table(at).set_index("tenant").loc["Fabrikam"]
    assert (row["accepted"], row["differing"]) == (1, 1)
    write_snapshot(filled, NORTHWIND, {"Windows security": {**DATA[NORTHWIND]["Windows security"],
                                                             "fw_log_size": "16384"}})
    at.run()
    assert fleet_table(at).set_index("tenant").loc["Northwind", "aligned"] == pytest.approx(100.0)
    assert list(fleet_table(at)["tenant"])[-1] == "Northwind"


def test_a_limited_user_sees_only_their_tenants(filled: Store) -> None:
    from test_roles import AUTH

    at = AppTest.from_file(str(__import__("apptest").APP), default_timeout=60)
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": True, "preferred_username": "vic@msp.example", "name": "Vic",
               "roles": ["TenantPilot.Viewer"]}
    _limit(filled, "vic@msp.example", [FABRIKAM, BASELINE])
    at.switch_page("app_pages/fleet.py").run()
    assert not at.exception
    assert list(fleet_table(at)["tenant"]) == ["Fabrikam"]


def _limit(store: Store, who: str, tenant_ids: list[str]) -> None:
    """`who` sees only the tenants of one group (the store's own calls, as the Tenants page makes them)."""
    store.set_group("Retail", tenant_ids)
    store.set_limits(who, ["Retail"])


def test_the_memo_holds_the_rules_numbers_and_goes_stale_with_what_they_came_from(filled: Store) -> None:
    tenants = [CONTOSO, FABRIKAM, NORTHWIND]
    assert alignments.refresh(filled, tenants) == 3
    assert alignments.refresh(filled, tenants) == 0  # kept: nothing to compute again
    want = compare.alignment_scores(filled.current_settings(), tenants, BASELINE)
    memo = filled.alignment_memo().join(want, on="tenant_id", suffix="_rule")
    for column in ("matched", "differing", "missing", "extra", "accepted", "score"):
        assert memo[column].to_list() == memo[f"{column}_rule"].to_list(), column
    filled.add_deviation(NewDeviation(FABRIKAM, BASELINE, "settingsCatalog", "windows", "fw_inbound",
                                      "Default inbound action", "legacy VPN", "Ops", date.today() + timedelta(days=5)))
    assert alignments.refresh(filled, tenants) == 1  # only Fabrikam's score leaves something out now
    write_snapshot(filled, BASELINE, DATA[BASELINE])  # the baseline synced (imported) again: every tenant's is stale
    assert alignments.refresh(filled, [BASELINE]) == 3  # the worker's step after the baseline's own run
    assert alignments.refresh(filled, tenants) == 0


def test_the_change_since_a_week_ago_comes_from_the_runs_current_then(filled: Store) -> None:
    alignments.refresh(filled, [NORTHWIND])  # computed while its first run was current (as the worker does)
    with filled.connect(write=True) as con:  # ... eight days ago
        con.execute("UPDATE sync_runs SET finished_at = finished_at - INTERVAL 8 DAY")
    write_snapshot(filled, NORTHWIND, {"Windows security": {**DATA[NORTHWIND]["Windows security"],
                                                             "fw_log_size": "16384"}})  # today: aligned
    at = app("fleet")
    row = fleet_table(at).set_index("tenant").loc["Northwind"]
    assert row["aligned"] == pytest.approx(100.0) and row["change"] == pytest.approx(25.0)
    # Contoso's and Fabrikam's runs of a week ago are still current: the same alignment, no change
    assert fleet_table(at).set_index("tenant").loc[["Contoso", "Fabrikam"], "change"].tolist() == [0.0, 0.0]
