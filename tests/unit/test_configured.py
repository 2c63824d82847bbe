"""Configured or not (tenantpilot/flatten/configured.py) on real exports, and what compare makes of it."""

from __future__ import annotations

import copy
import json

import polars as pl
import pytest

from graphsim import CORPUS_DIR
from tenantpilot.analysis import compare
from tenantpilot.flatten import flatten_policy, load_export, read_json_bytes
from tenantpilot.flatten.configured import RULES, is_configured, unconfigured_rule
from tenantpilot.flatten.schema import NOT_CONFIGURED

CD = "CES2026-IntuneCD/Backup"
FW = "Intune-Config-Frameworks"
WIN_BITLOCKER = f"{CD}/Compliance Policies/Policies/POC_WIN_D_CO_SBL_CIS_BitLocker_windows10CompliancePolicy.json"
WIN_FIREWALL = f"{CD}/Compliance Policies/Policies/POC_WIN_D_CO_SBL_NCSC_Firewall_windows10CompliancePolicy.json"
WIN_OS = f"{CD}/Compliance Policies/Policies/POC_WIN_D_CO_SBL_CIS_OperatingSystem_windows10CompliancePolicy.json"
IOS_GENERAL = f"{FW}/iOS/Personal/level-1-iOS_iPadOS-personal-basic-security-configuration.json"
IOS_WIFI = f"{CD}/Device Configurations/POC_IOS_D_CO_SBL_MSZT_WiFi_iosEnterpriseWiFiConfiguration.json"
SC_BITLOCKER = f"{CD}/Settings Catalog/POC_WIN_D_CO_SBL_MSZT_BitLocker_mdm.json"
IOS_APP = f"{CD}/App Protection/POC_IOS_U_SBL_MSZT_AppProtection_iosManagedAppProtection.json"
ENROLL = f"{CD}/Enrollment Configurations/All users and all devices_deviceEnrollmentPlatformRestrictionsConfiguration.json"
RESTORE = f"{CD}/Enrollment Configurations/All users and all devices_windowsRestoreDeviceEnrollmentConfiguration.json"
WUFB = f"{CD}/Device Configurations/POC_WIN_D_CO_SBL_MSZT_Updates_windowsUpdateForBusinessConfiguration.json"
SCRIPT = f"{CD}/Scripts/Shell/[intune-my-macs] SCR-SYS-100 - Device Rename.json"
GP = "terraform-provider-microsoft365/group_policy_configurations"

BY_DEFINITION = "configured by definition (configured.py docstring: only configured settings are returned)"
DEFAULT_RULE = "no rule: only notConfigured, null and empty lists are 'Not configured' in this family"


def policy(rel: str) -> dict:
    return read_json_bytes((CORPUS_DIR / rel).read_bytes())


def rows_of(rel: str) -> dict[str, dict]:
    """Rows by setting key, without the `[<name>]/` of families matched by name (scripts)."""
    return {r["setting_key"].removeprefix(f"[{r['policy_name']}]/"): r for r in flatten_policy(policy(rel))}


# (family, file, setting key, raw value, configured, source)
CASES = [
    ("compliance", WIN_BITLOCKER, "bitLockerEnabled", "true", True, "IM-INFO"),
    ("compliance", WIN_BITLOCKER, "activeFirewallRequired", "false", False, "IM-INFO"),
    ("compliance", WIN_BITLOCKER, "passwordRequiredType", '"deviceDefault"', False, "IM-INFO"),
    ("compliance", WIN_BITLOCKER, "deviceThreatProtectionRequiredSecurityLevel", '"unavailable"', False, "GRAPH-THREAT"),
    ("compliance", WIN_BITLOCKER, "validOperatingSystemBuildRanges", "[]", False, "IM-LIST"),
    ("deviceConfiguration", IOS_GENERAL, "cameraBlocked", "false", False, "IM-INFO"),
    ("deviceConfiguration", IOS_GENERAL, "passcodeRequired", "true", True, "IM-INFO"),
    ("deviceConfiguration", IOS_GENERAL, "passcodeMinimumLength", "6", True, "IM-INFO"),
    ("deviceConfiguration", IOS_GENERAL, "kioskModeAppType", '"notConfigured"', False, "IM-BOOL"),
    ("deviceConfiguration", IOS_GENERAL, "appsVisibilityListType", '"none"', False, "GRAPH-APPLIST"),
    # a Wi-Fi profile is no restriction profile: its false is a choice ("Connect automatically: No")
    ("deviceConfiguration", IOS_WIFI, "connectAutomatically", "false", True, DEFAULT_RULE),
    ("settingsCatalog", SC_BITLOCKER, "device_vendor_msft_bitlocker_allowwarningforotherdiskencryption",
     '"device_vendor_msft_bitlocker_allowwarningforotherdiskencryption_0"', True, BY_DEFINITION),
    # app protection: Allow and Block are both choices in the portal
    ("appProtection", IOS_APP, "fingerprintBlocked", "false", True, DEFAULT_RULE),
    ("appProtection", IOS_APP, "maximumAllowedDeviceThreatLevel", '"notConfigured"', False, "IM-BOOL"),
    ("enrollment", ENROLL, "iosRestriction/platformBlocked", "false", True, DEFAULT_RULE),
    ("enrollment", ENROLL, "iosRestriction/blockedSkus", "[]", False, "IM-LIST"),
    ("enrollment", RESTORE, "state", '"notConfigured"', False, "IM-BOOL"),
    ("windowsUpdate", WUFB, "qualityUpdatesPaused", "false", True, DEFAULT_RULE),
    ("windowsUpdate", WUFB, "autoRestartNotificationDismissal", '"notConfigured"', False, "IM-BOOL"),
    ("script", SCRIPT, "blockExecutionNotifications", "false", True, DEFAULT_RULE),
]


@pytest.mark.parametrize(("family", "rel", "key", "raw", "configured", "source"), CASES,
                         ids=[f"{c[0]}-{c[2][:40]}" for c in CASES])
def test_which_values_count_as_configured(family, rel, key, raw, configured, source):
    row = rows_of(rel)[key]
    assert (row["policy_type"], row["raw_value"], row["configured"]) == (family, raw, configured)
    assert row["value"] == NOT_CONFIGURED if not configured else row["value"] != NOT_CONFIGURED
    if source in {r.source for r in RULES}:  # the rule that decided it is the one cited
        rule = unconfigured_rule(family, row["odata_type"].rpartition(".")[2], key.rpartition("/")[2],
                                 json.loads(raw))
        if raw == "[]":
            assert source == "IM-LIST" and rule is None
        elif not configured:
            assert rule is not None and rule.source == source


def test_admin_templates_and_catalog_rows_are_all_configured():
    catalog = flatten_policy(policy(SC_BITLOCKER))
    assert catalog and all(r["configured"] for r in catalog)
    admx = [r for family, p in load_export(CORPUS_DIR / GP).policies for r in flatten_policy(p, family)]
    assert {r["policy_type"] for r in admx} == {"adminTemplate"} and len(admx) > 3
    assert all(r["configured"] for r in admx)


def test_bool_is_not_an_int_to_the_rules():
    assert is_configured("compliance", "windows10CompliancePolicy", "passwordMinimumLength", 0)
    assert not is_configured("compliance", "windows10CompliancePolicy", "passwordRequired", False)
    assert is_configured("compliance", "windows10CompliancePolicy", "passwordRequired", True)


# --- what compare makes of it -------------------------------------------------------------------

def tenant_frame(tenant: str, *policies: dict) -> pl.DataFrame:
    rows = [dict(r, tenant_id=tenant, tenant=tenant, run_id=1) for p in policies for r in flatten_policy(p)]
    return pl.from_dicts(rows, infer_schema_length=None)


def strip_unconfigured(raw: dict) -> dict:
    """The policy with every property whose rows are all 'Not configured' removed."""
    rows = flatten_policy(raw)
    keep = {r["setting_key"].split("/")[0].split("[")[0] for r in rows if r["configured"]}
    return {k: v for k, v in raw.items() if k in keep or k in ("@odata.type", "id", "displayName", "settings",
                                                                  "name", "platforms", "technologies")}


BASELINE = [WIN_BITLOCKER, WIN_FIREWALL, IOS_GENERAL, IOS_WIFI, SC_BITLOCKER, IOS_APP]


def test_baseline_against_itself_without_its_unconfigured_properties_shows_no_difference():
    originals = [policy(p) for p in BASELINE]
    stripped = [strip_unconfigured(copy.deepcopy(p)) for p in originals]
    assert sum(len(p) for p in stripped) < sum(len(p) for p in originals) - 100  # really removed some
    frame = pl.concat([tenant_frame("base", *originals), tenant_frame("copy", *stripped)], how="diagonal_relaxed")
    matrix = compare.compare_matrix(frame, ["copy"], baseline="base")
    assert compare.only_differences(matrix).height == 0
    scores = compare.alignment_scores(frame, ["copy"], "base")
    assert scores["score"][0] == 1.0 and scores["baseline_settings"][0] == matrix.height
    # shown apart, the unconfigured rows are what differs: "Not configured" in one, absent in the other
    apart = compare.only_differences(compare.compare_matrix(frame, ["copy"], baseline="base", unconfigured=True))
    assert apart.height > 100 and set(apart["status"]) == {"missing"}


def test_changing_one_configured_value_shows_exactly_one_difference():
    originals = [policy(p) for p in BASELINE]
    changed = copy.deepcopy(originals)
    changed[0]["bitLockerEnabled"] = False  # configured (true) -> "Not configured"
    changed[2]["passcodeMinimumLength"] = 8
    frame = pl.concat([tenant_frame("base", *originals), tenant_frame("t", *changed)], how="diagonal_relaxed")
    diff = compare.only_differences(compare.compare_matrix(frame, ["t"], baseline="base"))
    assert diff.select("setting_key", "status").rows() == [("bitLockerEnabled", "missing"),
                                                           ("passcodeMinimumLength", "differs")]
    one = copy.deepcopy(originals)
    one[2]["passcodeMinimumLength"] = 8
    frame = pl.concat([tenant_frame("base", *originals), tenant_frame("t", *one)], how="diagonal_relaxed")
    assert compare.only_differences(compare.compare_matrix(frame, ["t"], baseline="base")).height == 1


def test_requiring_the_firewall_and_leaving_it_unset_is_no_conflict():
    requires, unset = policy(WIN_FIREWALL), policy(WIN_OS)
    assert (requires["activeFirewallRequired"], unset["activeFirewallRequired"]) == (True, False)
    frame = pl.concat([tenant_frame("a", requires, unset), tenant_frame("b", requires)], how="diagonal_relaxed")
    assert compare.conflicts(frame).height == 0
    matrix = compare.compare_matrix(frame, ["a", "b"])
    firewall = matrix.filter(pl.col("setting_key") == "activeFirewallRequired")
    assert firewall["status"].to_list() == ["same"] and firewall["a"].to_list() == ["true"]
    # two policies configuring it to different values are a conflict
    other = copy.deepcopy(requires)
    other.update(id="x", displayName="other", osMinimumVersion="10.0.1")
    mine = copy.deepcopy(requires)
    mine["osMinimumVersion"] = "10.0.2"
    conflicting = tenant_frame("a", mine, other)
    assert compare.conflicts(conflicting)["setting_key"].unique().to_list() == ["osMinimumVersion"]
