"""The deviation register: its rules (tenantpilot.analysis.deviations), Compare's statuses and alignment
scores (compare.alignment_scores, the one rule, over rows read from a real DuckDB file) leaving valid
accepted deviations out and counting expired ones again."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from tenantpilot.analysis import compare, deviations
from tenantpilot.analysis.compare import DIFFERENT, MISSING_IN_TENANT, NOT_IN_BASELINE
from tenantpilot.analysis.deviations import DeviationError
from tenantpilot.flatten.schema import POLICY_SCHEMA, SETTING_SCHEMA
from tenantpilot.store import Store

TODAY = date(2026, 12, 2)
BASE = "baseline:cis"
SC = "settingsCatalog"
ODATA = "#microsoft.graph.deviceManagementConfigurationPolicy"


def _rows(tenant: str, cells: dict[str, list[str]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    out, policies = [], {}
    for key, values in cells.items():
        for i, value in enumerate(values):
            pid = f"{tenant}-{i}"
            policies[pid] = {"policy_id": pid, "policy_name": f"{tenant} {i}", "policy_type": SC, "odata_type": ODATA,
                             "platform": "windows", "raw_json": "{}"}
            r = {c: "" for c in SETTING_SCHEMA}
            r.update(policy_id=pid, policy_name=f"{tenant} {i}", policy_type=SC, odata_type=ODATA, platform="windows",
                     setting_key=key, setting_id=key, setting_name=f"Name of {key}", category="Cat", value=value,
                     raw_value=value, value_type="string", is_secret=False, compare_value=value, configured=True)
            out.append(r)
    return pl.DataFrame(list(policies.values()), schema=POLICY_SCHEMA), pl.DataFrame(out, schema=SETTING_SCHEMA)


DATA = {
    BASE: {"fw": ["On"], "pin": ["6"], "usb": ["block"], "tls": ["1.2"]},
    "t-a": {"fw": ["Off"], "pin": ["6"], "extra": ["x"], "tls": ["1.2"]},  # fw differs, usb missing, extra
    "t-b": {"fw": ["On"], "pin": ["4"], "usb": ["block"], "tls": ["1.2"]},  # pin differs
}


def key(k: str) -> tuple[str, str, str]:
    return (SC, "windows", k)


@pytest.fixture
def store(tmp_path) -> Store:
    s = Store(tmp_path / "dev.duckdb")
    for tenant, cells in DATA.items():
        s.add_tenant(tenant, tenant.title(), "baseline" if tenant == BASE else "tenant")
        run_id, _ = s.create_run_unless_active(tenant)
        s.start_run(run_id)
        policies, settings = _rows(tenant, cells)
        s.write_snapshot(run_id, tenant, policies=policies, settings=settings, status="succeeded", request_count=0)
    return s


def add(store: Store, tenant: str, k: str, expires: date, reason: str = "customer asked") -> int:
    """Through validate when the expiry is valid; a past expiry goes straight to the Store (the CLI refuses it)."""
    if expires >= TODAY:
        new = deviations.validate(tenant_id=tenant, baseline_id=BASE, key=key(k), setting_name=None, reason=reason,
                                  owner="Ops", expires_on=expires, today=TODAY, tenants=DATA, baselines=[BASE])
    else:
        new = deviations.NewDeviation(tenant, BASE, *key(k), k, reason, "Ops", expires)
    return store.add_deviation(new)


# --- validation ---------------------------------------------------------------------------------
VALID = dict(tenant_id="t-a", baseline_id=BASE, key=key("fw"), setting_name="Firewall", reason="legacy app",
             owner="Ops", expires_on="2027-03-31", today=TODAY, tenants=["t-a", BASE], baselines=[BASE])


@pytest.mark.parametrize("change, message", [
    ({"tenant_id": "nobody"}, "Unknown tenant 'nobody'"),
    ({"baseline_id": "baseline:nope"}, "Unknown baseline"),
    ({"baseline_id": "t-a", "baselines": ["t-a"]}, "cannot deviate from itself"),
    ({"reason": "   "}, "reason is empty"),
    ({"owner": ""}, "owner is empty"),
    ({"reason": "x" * 501}, "keep it under 500"),
    ({"expires_on": "2026-12-01"}, "has passed"),
    ({"expires_on": "31/03/2027"}, "is not a date"),
    ({"key": (SC, "windows", "")}, "setting is empty"),
])
def test_validate_refuses_with_a_clear_message(change: dict, message: str) -> None:
    with pytest.raises(DeviationError, match=message):
        deviations.validate(**{**VALID, **change})


def test_validate_accepts_today_and_trims() -> None:
    new = deviations.validate(**{**VALID, "expires_on": TODAY, "reason": "  legacy app "})
    assert (new.reason, new.expires_on, new.scope, new.setting_name) == ("legacy app", TODAY, "windows", "Firewall")


# --- validity by date ---------------------------------------------------------------------------
@pytest.mark.parametrize("expires, removed, valid, expired_since_week", [
    (TODAY + timedelta(days=1), False, True, False),
    (TODAY, False, True, False),                         # valid through its expiry day
    (TODAY - timedelta(days=1), False, False, True),     # open again the day after
    (TODAY - timedelta(days=30), False, False, False),   # expired, but before the window
    (TODAY + timedelta(days=9), True, False, False),     # removed: neither valid nor "expired"
])
def test_valid_and_expired_on_a_date(store: Store, expires: date, removed: bool, valid: bool,
                                     expired_since_week: bool) -> None:
    dev_id = add(store, "t-a", "fw", expires)
    if removed:
        assert store.remove_deviation(dev_id) and not store.remove_deviation(dev_id)
    register = store.deviations(include_removed=True)
    assert deviations.valid_on(register, TODAY).height == int(valid)
    assert deviations.expired_since(register, TODAY - timedelta(days=7), TODAY).height == int(expired_since_week)
    assert store.deviations().height == int(not removed)


# --- naming the setting on the command line -------------------------------------------------------
def test_resolve_setting_by_key_name_and_ambiguity() -> None:
    cells = pl.DataFrame({"policy_type": [SC, SC, "compliance"], "scope": ["windows", "macOS", "x"],
                          "setting_key": ["fw", "fw", "pin"], "setting_name": ["Firewall", "Firewall", "PIN"]})
    assert deviations.resolve_setting(cells, "pin") == (("compliance", "x", "pin"), "PIN")
    assert deviations.resolve_setting(cells, "Firewall", scope="macOS") == ((SC, "macOS", "fw"), "Firewall")
    with pytest.raises(DeviationError, match="names 2 settings.*--scope 'macOS'"):
        deviations.resolve_setting(cells, "fw")
    with pytest.raises(DeviationError, match="No setting 'nope'"):
        deviations.resolve_setting(cells, "nope")


# --- compare statuses and alignment scores ------------------------------------------------------
# (deviations as (tenant, key, days from today to expiry), expected status per key, expected scores)
CASES = [
    ("none", [], {"fw": DIFFERENT, "pin": DIFFERENT, "usb": MISSING_IN_TENANT, "extra": NOT_IN_BASELINE}, {"t-a": (2, 4), "t-b": (3, 4)}),
    ("t-a's fw accepted: its score leaves it out; t-b agrees on fw so the row is accepted",
     [("t-a", "fw", 1)], {"fw": "accepted (customer asked, until 2026-12-03)", "pin": DIFFERENT},
     {"t-a": (2, 3), "t-b": (3, 4)}),
    ("expired yesterday: counts again", [("t-a", "fw", -1)], {"fw": DIFFERENT}, {"t-a": (2, 4), "t-b": (3, 4)}),
    ("pin accepted for t-a only: t-b still differs there", [("t-a", "pin", 5)], {"pin": DIFFERENT},
     {"t-a": (1, 3), "t-b": (3, 4)}),
    ("a missing setting and an extra one accepted", [("t-a", "usb", 0), ("t-a", "extra", 0)],
     {"usb": "accepted (customer asked, until 2026-12-02)", "extra": "accepted (customer asked, until 2026-12-02)"},
     {"t-a": (2, 3), "t-b": (3, 4)}),
]


@pytest.mark.parametrize("name, accepted, statuses, scores", CASES, ids=[c[0] for c in CASES])
def test_accepted_deviations_in_compare_and_alignment(store: Store, name: str, accepted: list, statuses: dict,
                                                      scores: dict) -> None:
    for tenant, k, days in accepted:
        add(store, tenant, k, TODAY + timedelta(days=days))
    keys = deviations.accepted_keys(store.deviations(), TODAY, BASE)
    frame = store.current_settings()
    matrix = compare.compare_matrix(frame, ["t-a", "t-b"], BASE, accepted=keys)
    got = dict(zip(matrix["setting_key"], matrix["status"]))
    assert {k: got[k] for k in statuses} == statuses
    polars_scores = compare.alignment_scores(frame, ["t-a", "t-b"], BASE, accepted=keys).sort("tenant_id")
    assert {r["tenant_id"]: (r["matched"], r["baseline_settings"]) for r in polars_scores.iter_rows(named=True)} \
        == scores
    for r in polars_scores.iter_rows(named=True):
        assert r["matched"] + r["differing"] + r["missing"] == r["baseline_settings"]
