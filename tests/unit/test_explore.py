"""Pure, table-driven tests of tenantpilot.analysis.explore (facets, export columns, detail); the filters of
settings run in the store and are tested by tests/contract/test_store_contract.py."""

from __future__ import annotations

import io

import polars as pl
import pytest
from test_compare import frame, row

from tenantpilot.analysis import explore, export
from tenantpilot.flatten.schema import SECRET_MASK

ROWS = frame(
    row("a", "bitlocker_encryptionmethod", "XTS-AES 256", policy="BitLocker", name="Encryption method"),
    row("a", "firewall_enable", "True", policy="Firewall", name="Enable Firewall"),
    row("b", "firewall_enable", "False", policy="FW", name="Enable Firewall", policy_type="endpointSecurity"),
    row("b", "password_minlength", "14", policy="Passwords", name="Minimum password length",
        policy_type="compliance"),
    row("c", "größe", "Straße", policy="Umlaute", name="Schriftgröße"),
).with_columns(
    pl.when(pl.col("tenant_id") == "b").then(pl.lit("iOS")).otherwise(pl.col("platform")).alias("platform")
)

def test_facet_values_keys_are_filters_fields():
    facets = explore.facet_values(ROWS)
    assert facets == {
        "tenants": ["a", "b", "c"],
        "policy_types": ["compliance", "endpointSecurity", "settingsCatalog"],
        "platforms": ["iOS", "windows"],
        "policies": ["Contoso BitLocker", "Contoso Firewall", "Fabrikam FW", "Fabrikam Passwords",
                     "Northwind Umlaute"],
    }
    # every facet value selects at least one row
    for name, values in facets.items():
        for value in values:
            assert explore.facet_matching(ROWS, explore.Filters(**{name: (value,)})).height > 0


def test_tenant_labels():
    assert explore.tenant_labels(ROWS) == {"a": "Contoso", "b": "Fabrikam", "c": "Northwind"}
    same = ROWS.with_columns(pl.lit("X").alias("tenant"))
    assert explore.tenant_labels(same, ["a", "b"]) == {"a": "X (a)", "b": "X (b)"}


def test_export_columns_order_and_no_internal_columns():
    out = explore.export_columns(ROWS)
    assert out.columns[:14] == ["tenant", "policy_name", "policy_type", "platform", "category", "setting_name",
                                "value", "raw_value", "configured", "setting_id", "setting_key", "value_type",
                                "is_secret", "synced_at"]
    assert "compare_value" not in out.columns
    # the CSV says what the screen says: the family's label, its id beside it
    labels = dict(zip(out["family"], out["policy_type"]))
    assert labels["settingsCatalog"] == "Settings catalog" and labels["compliance"] == "Compliance"
    assert labels["endpointSecurity"] == "endpointSecurity"  # an id the table does not know stays as it is
    assert out.height == ROWS.height


def test_export_masks_secrets_even_if_flattener_did_not():
    leaked = frame(row("a", "wifi_psk", "hunter2")).with_columns(pl.lit(True).alias("is_secret"))
    out = explore.export_columns(leaked)
    assert out["value"].to_list() == [SECRET_MASK] and out["raw_value"].to_list() == [SECRET_MASK]
    assert b"hunter2" not in export.to_csv_bytes(out)
    assert explore.setting_detail(leaked, "wifi_psk", "settingsCatalog")["value"].to_list() == [SECRET_MASK]


def test_csv_export_bytes_bom_and_formula_injection():
    evil = frame(row("a", "k1", "=cmd|' /C calc'!A0"), row("a", "k2", "-2+3"),
                 row("a", "k3", "@SUM(1)"), row("a", "k4", "\tTab"), row("a", "k5", "plain, with comma"))
    evil = evil.with_columns(pl.lit('=HYPERLINK("http://x")').alias("policy_name"))
    data = export.to_csv_bytes(explore.export_columns(evil))
    assert data[:3] == b"\xef\xbb\xbf"
    back = pl.read_csv(io.BytesIO(data[3:]))
    assert back["value"].to_list() == ["'=cmd|' /C calc'!A0", "'-2+3", "'@SUM(1)", "'\tTab", "plain, with comma"]
    assert back["policy_name"].unique().to_list() == ["'=HYPERLINK(\"http://x\")"]
    assert not any(line.startswith(("=", "+", "-", "@")) for line in data[3:].decode().splitlines())


def test_setting_detail_and_info():
    d = explore.setting_detail(ROWS, "firewall_enable", "settingsCatalog")
    assert d["tenant"].to_list() == ["Contoso"] and d["value"].to_list() == ["True"]
    assert explore.setting_detail(ROWS, "firewall_enable", "endpointSecurity")["tenant"].to_list() == ["Fabrikam"]
    info = explore.setting_info(ROWS, "firewall_enable", "settingsCatalog")
    assert info["setting_name"] == "Enable Firewall" and info["category"] == "Cat"
    assert explore.setting_detail(ROWS, "nope", "settingsCatalog").height == 0


@pytest.mark.parametrize(("rows", "page", "size", "expected"), [
    (0, 1, 10, (1, 0)), (25, 1, 10, (3, 10)), (25, 3, 10, (3, 5)), (25, 99, 10, (3, 5)), (25, 0, 10, (3, 10)),
])
def test_pagination(rows, page, size, expected):
    f = pl.DataFrame({"x": list(range(rows))}, schema={"x": pl.Int64})
    assert (explore.page_count(rows, size), explore.page_slice(f, page, size).height) == expected


def test_setting_detail_narrowed_to_one_graph_type():
    win = {**row("a", "passwordRequired", "true", policy_type="compliance"),
           "odata_type": "#microsoft.graph.windows10CompliancePolicy"}
    ios = {**row("a", "passwordRequired", "false", policy="iOS", policy_type="compliance"),
           "odata_type": "#microsoft.graph.iosCompliancePolicy"}
    f = frame(win, ios)
    assert explore.setting_detail(f, "passwordRequired", "compliance").height == 2
    only = explore.setting_detail(f, "passwordRequired", "compliance", odata_type=win["odata_type"])
    assert only["value"].to_list() == ["true"]


@pytest.mark.parametrize("names, keys, categories, platforms, shown", [
    (["Recovery", "Recovery"], ["os_rec", "fixed_rec"], ["OS drive", "Fixed drive"], ["windows", "windows"],
     ["Recovery · OS drive", "Recovery · Fixed drive"]),
    (["Recovery", "Recovery"], ["os_rec", "os_rec"], ["OS drive", "OS drive"], ["windows", "windows"],
     ["Recovery", "Recovery"]),  # the same setting twice
    (["PIN", "PIN"], ["a", "b"], ["", None], [None, None], ["PIN · a", "PIN · b"]),  # nothing else: the key
    (["A", "B"], ["a", "b"], ["X", "X"], ["ios", "ios"], ["A", "B"]),
    # one category: the platform tells them apart
    (["Camera", "Camera"], ["and_cam", "ios_cam"], ["Restrictions", "Restrictions"], ["android", "iOS"],
     ["Camera · android", "Camera · iOS"]),
    # same category and platform: the key (the setting's path)
    (["Camera", "Camera"], ["a/camera", "b/camera"], ["Restrictions", "Restrictions"], ["ios", "ios"],
     ["Camera · a/camera", "Camera · b/camera"]),
])
def test_rows_that_share_a_name_are_told_apart(names, keys, categories, platforms, shown) -> None:
    frame = pl.DataFrame({"setting_name": names, "setting_key": keys, "category": categories, "platform": platforms},
                         schema={"setting_name": pl.String, "setting_key": pl.String, "category": pl.String,
                                 "platform": pl.String})
    assert explore.distinct_names(frame)["setting_name"].to_list() == shown
    assert explore.distinct_names(frame.drop("platform"))["setting_name"].to_list()[:1] == [  # no platform column
        shown[0] if "·" not in shown[0] or categories[0] != categories[1] else f"{names[0]} · {keys[0]}"]
