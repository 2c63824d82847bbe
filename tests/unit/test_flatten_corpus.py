"""The flattener on real exports (graphsim/corpus, see its SOURCES.md): table-driven."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import random
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from graphsim import CORPUS_DIR as CORPUS
from tenantpilot.flatten import (
    ASSIGNMENT_COLUMNS,
    FAMILIES,
    NO_SETTINGS,
    SECRET_MASK,
    SETTING_COLUMNS,
    ExportFormatError,
    count_leaves,
    detect_family,
    extract_definitions,
    flatten_assignments,
    flatten_policy,
    load_export,
    read_json_bytes,
)

CD = CORPUS / "CES2026-IntuneCD" / "Backup"
SC = CD / "Settings Catalog"
TF = CORPUS / "terraform-provider-microsoft365" / "group_policy_configurations"
FRAMEWORKS = CORPUS / "Intune-Config-Frameworks"

LOADED = load_export(CORPUS)
ALL = list(zip(LOADED.sources, LOADED.policies))


def _id(source: tuple[str, ...]) -> str:
    return source[0].rsplit("/", 1)[-1][:60]


def read(path: Path) -> dict:
    return read_json_bytes(path.read_bytes())


def rows_by_key(rows: list[dict]) -> dict[str, dict]:
    return {row["setting_key"]: row for row in rows}


def as_set(rows: list[dict]) -> set[tuple]:
    return {tuple(row.items()) for row in rows}


# --- the whole corpus --------------------------------------------------------------------------

def test_every_corpus_file_is_loaded_or_skipped_with_a_reason() -> None:
    on_disk = {p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*") if p.is_file()}
    used = {file for source in LOADED.sources for file in source}
    skipped = dict(LOADED.skipped)
    assert on_disk == used | set(skipped)
    assert not used & set(skipped)
    assert all(reason for reason in skipped.values())
    # every JSON file parses; only non-JSON files and non-policies are skipped
    for file, reason in skipped.items():
        if file.endswith(".json"):
            assert reason.startswith("not a policy:"), (file, reason)
        else:
            assert reason.startswith("not a JSON file"), (file, reason)
    assert skipped["CES2026-IntuneCD/Backup/Assignment Report/report.json"] == "not a policy: assignment report"
    assert skipped["CES2026-IntuneCD/Backup/Scope Tags/Default.json"] == "not a policy: scope tag"
    assert skipped["SOURCES.md"] == "not a JSON file (.md)"
    assert skipped["CES2026-IntuneCD/LICENSE"] == "not a JSON file (no extension)"


def test_families_found_in_the_corpus() -> None:
    families = Counter(family for family, _ in LOADED.policies)
    assert families == {
        "settingsCatalog": 69, "compliance": 25, "deviceConfiguration": 17, "script": 9,
        "appProtection": 8, "enrollment": 6, "windowsUpdate": 1, "adminTemplate": 1,
        "role": 1,  # IntuneCD's Roles file carries its @odata.type: a family the sync reads since issue 19
    }
    assert set(families) <= set(FAMILIES)


@pytest.mark.parametrize(("source", "item"), ALL, ids=[_id(s) for s, _ in ALL])
def test_every_policy_flattens_to_well_formed_rows(source: tuple[str, ...], item: tuple[str, dict]) -> None:
    family, policy = item
    rows = flatten_policy(policy, family)
    assert rows
    keys = [row["setting_key"] for row in rows]
    assert len(keys) == len(set(keys)), [k for k, n in Counter(keys).items() if n > 1]
    policy_ids = {row["policy_id"] for row in rows}
    assert len(policy_ids) == 1 and policy_ids.pop()
    for row in rows:
        assert tuple(row) == SETTING_COLUMNS
        assert row["policy_type"] == family
        for column, value in row.items():
            assert isinstance(value, bool if column in ("is_secret", "configured") else str), (column, value)
        assert row["setting_key"] and row["setting_name"]
        json.loads(row["raw_value"]) if not row["is_secret"] else None
        assert "@odata" not in row["setting_key"]
    # deterministic: the same input gives the same rows
    assert flatten_policy(copy.deepcopy(policy), family) == rows


CATALOG = [(s, p) for s, (f, p) in ALL if f == "settingsCatalog"]


@pytest.mark.parametrize(("source", "policy"), CATALOG, ids=[_id(s) for s, _ in CATALOG])
def test_catalog_leaves_in_json_equal_rows(source: tuple[str, ...], policy: dict) -> None:
    rows = [r for r in flatten_policy(policy, "settingsCatalog") if r["setting_name"] != NO_SETTINGS]
    assert count_leaves(policy) == len(rows)


def test_family_summary(capsys: pytest.CaptureFixture[str]) -> None:
    """Files, rows, readable-name share and lost leaves per family (printed)."""
    stats: dict[str, Counter] = defaultdict(Counter)
    for source, (family, policy) in ALL:
        rows = flatten_policy(policy, family)
        s = stats[family]
        s["files"] += len(source)
        s["policies"] += 1
        s["rows"] += len(rows)
        s["named"] += sum(1 for r in rows if r["setting_name"] not in (r["setting_id"], r["setting_key"]))
        if family == "settingsCatalog":
            s["lost"] += count_leaves(policy) - sum(1 for r in rows if r["setting_name"] != NO_SETTINGS)
    with capsys.disabled():
        print("\nfamily               files policies   rows  named  lost leaves")
        for family, s in sorted(stats.items()):
            print(f"{family:20} {s['files']:5} {s['policies']:8} {s['rows']:6} "
                  f"{s['named'] / s['rows']:6.0%} {s['lost']:6}")
    assert all(s["lost"] == 0 for s in stats.values())
    assert sum(s["rows"] for s in stats.values()) > 5000


# --- family detection --------------------------------------------------------------------------

DETECT = [
    ({"@odata.type": "#microsoft.graph.windows10CompliancePolicy"}, "compliance"),
    ({"@odata.type": "#microsoft.graph.androidDeviceOwnerCompliancePolicy"}, "compliance"),
    ({"@odata.type": "#microsoft.graph.iosManagedAppProtection"}, "appProtection"),
    ({"@odata.type": "#microsoft.graph.androidManagedAppProtection"}, "appProtection"),
    ({"@odata.type": "#microsoft.graph.mdmWindowsInformationProtectionPolicy"}, "appProtection"),
    ({"@odata.type": "#microsoft.graph.targetedManagedAppConfiguration"}, "appConfiguration"),
    ({"@odata.type": "#microsoft.graph.iosMobileAppConfiguration"}, "appConfiguration"),
    ({"@odata.type": "#microsoft.graph.androidManagedStoreAppConfiguration"}, "appConfiguration"),
    ({"@odata.type": "#microsoft.graph.windowsUpdateForBusinessConfiguration"}, "windowsUpdate"),
    ({"@odata.type": "#microsoft.graph.windowsFeatureUpdateProfile"}, "windowsUpdate"),
    ({"@odata.type": "#microsoft.graph.windowsDriverUpdateProfile"}, "windowsUpdate"),
    ({"@odata.type": "#microsoft.graph.windows10EnrollmentCompletionPageConfiguration"}, "enrollment"),
    ({"@odata.type": "#microsoft.graph.deviceEnrollmentLimitConfiguration"}, "enrollment"),
    ({"@odata.type": "#microsoft.graph.deviceComanagementAuthorityConfiguration"}, "enrollment"),
    ({"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile"}, "autopilot"),
    ({"@odata.type": "#microsoft.graph.groupPolicyConfiguration"}, "adminTemplate"),
    ({"@odata.type": "#microsoft.graph.deviceManagementIntent"}, "endpointSecurityIntent"),
    ({"@odata.type": "#microsoft.graph.deviceManagementConfigurationPolicy"}, "settingsCatalog"),
    ({"@odata.type": "#microsoft.graph.deviceManagementCompliancePolicy"}, "complianceV2"),
    ({"@odata.type": "#microsoft.graph.deviceShellScript"}, "script"),
    ({"@odata.type": "#microsoft.graph.deviceManagementScript"}, "script"),
    ({"@odata.type": "#microsoft.graph.macOSCustomConfiguration"}, "deviceConfiguration"),
    ({"@odata.type": "#microsoft.graph.iosGeneralDeviceConfiguration"}, "deviceConfiguration"),
    ({"@odata.type": "#microsoft.graph.windows81TrustedRootCertificate"}, "deviceConfiguration"),
    # Intune roles are read since issue 19 (an export's role file with its @odata.type is imported too)
    ({"@odata.type": "#microsoft.graph.deviceAndAppManagementRoleDefinition"}, "role"),
    ({"@odata.type": "#microsoft.graph.deviceHealthScript"}, "healthScript"),
    ({"@odata.type": "#microsoft.graph.deviceCustomAttributeShellScript"}, "customAttribute"),
    ({"@odata.type": "#microsoft.graph.win32LobApp"}, "mobileApp"),
    ({"@odata.type": "#microsoft.graph.iosStoreApp"}, "mobileApp"),
    ({"@odata.type": "#microsoft.graph.ipNamedLocation"}, "conditionalAccess"),
    # shapes without @odata.type (IntuneCD / portal exports)
    ({"name": "x", "settings": [], "technologies": "mdm", "platforms": "windows10"}, "settingsCatalog"),
    ({"name": "x", "settings": [], "technologies": "linuxMdm", "platforms": "linux",
      "scheduledActionsForRule": []}, "complianceV2"),
    ({"displayName": "x", "definitionValues": []}, "adminTemplate"),
    ({"displayName": "x", "templateId": "t", "settingsDelta": []}, "endpointSecurityIntent"),
    ({"displayName": "x", "scriptContent": "IyEvYmluL2Jhc2g="}, "script"),
    ({"displayName": "x", "outOfBoxExperienceSettings": {}}, "autopilot"),
    ({"@odata.context": "https://graph.microsoft.com/beta/$metadata#deviceManagement/groupPolicyConfigurations/$entity",
      "displayName": "x"}, "adminTemplate"),
    ({"@odata.context": "https://graph.microsoft.com/beta/$metadata#deviceManagement/compliancePolicies/$entity",
      "name": "x", "settings": []}, "complianceV2"),
    ({"displayName": "x"}, "unknown"),
]


@pytest.mark.parametrize(("policy", "family"), DETECT, ids=[f"{f}-{i}" for i, (_, f) in enumerate(DETECT)])
def test_detect_family(policy: dict, family: str) -> None:
    assert detect_family(policy) == family


def test_odata_type_overrides_the_collection_family() -> None:
    """deviceConfigurations also returns Windows Update rings: rows are labelled by type."""
    ring = read(CD / "Device Configurations/POC_WIN_D_CO_SBL_MSZT_Updates_windowsUpdateForBusinessConfiguration.json")
    rows = flatten_policy(ring, "deviceConfiguration")
    assert {r["policy_type"] for r in rows} == {"windowsUpdate"}
    assert {a["policy_type"] for a in flatten_assignments(ring, "deviceConfiguration")} == {"windowsUpdate"}
    assert rows == flatten_policy(ring)
    assert rows_by_key(rows)["installationSchedule/activeHoursStart"]["value"] == "08:00:00.0000000"


def test_detect_family_of_corpus_files_without_odata_type() -> None:
    assert detect_family(read(SC / "POC_WIN_D_CO_SBL_CIS_MS_Firewall_mdm.json")) == "settingsCatalog"
    script = CD / "Scripts/Shell/[intune-my-macs] SCR-SYS-100 - Device Rename.json"
    assert detect_family(read(script)) == "script"
    assert detect_family(read(TF / "GroupPolicyConfigurations_All_2025-09-09-15-18-11.json")) == "adminTemplate"


# --- settings catalog: hand-checked values -----------------------------------------------------

FIREWALL = SC / "POC_WIN_D_CO_SBL_CIS_MS_Firewall_mdm.json"
ENABLE_FW = "vendor_msft_firewall_mdmstore_domainprofile_enablefirewall"


def test_firewall_choice_value_without_definitions() -> None:
    policy = read(FIREWALL)
    row = rows_by_key(flatten_policy(policy))[ENABLE_FW]
    assert row["value"] == "true"  # "<definition id>_" stripped from the option id
    assert row["compare_value"] == ENABLE_FW + "_true"
    assert row["raw_value"] == json.dumps(ENABLE_FW + "_true")
    assert row["value_type"] == "choice"
    assert row["setting_id"] == ENABLE_FW
    assert row["category"] == "firewall"
    assert row["platform"] == "windows"
    assert row["policy_name"] == "POC_WIN_D_CO_SBL_CIS_MS_Firewall"
    # children of the choice are rows of their own
    child = rows_by_key(flatten_policy(policy))["vendor_msft_firewall_mdmstore_domainprofile_allowlocalipsecpolicymerge"]
    assert child["value_type"] == "choice"


def test_firewall_choice_with_definitions_mapping_and_inline_definitions() -> None:
    definition = {
        "id": ENABLE_FW, "displayName": "Enable Domain Network Firewall",
        "description": "Boolean value for enabling firewall and advanced security enforcement.",
        "options": [{"itemId": ENABLE_FW + "_false", "displayName": "False"},
                    {"itemId": ENABLE_FW + "_true", "displayName": "True"}],
    }
    policy = read(FIREWALL)
    row = rows_by_key(flatten_policy(policy, "settingsCatalog", {ENABLE_FW: definition}))[ENABLE_FW]
    assert (row["setting_name"], row["value"]) == ("Enable Domain Network Firewall", "True")
    assert row["description"].startswith("Boolean value")
    assert row["compare_value"] == ENABLE_FW + "_true"  # compared by option id, not by label

    # the same definition carried inline (settings?$expand=settingDefinitions)
    for setting in policy["settings"]:
        if setting["settingInstance"]["settingDefinitionId"] == ENABLE_FW:
            setting["settingDefinitions"] = [definition]
    assert extract_definitions(policy["settings"]) == {ENABLE_FW: definition}
    inline = rows_by_key(flatten_policy(policy))[ENABLE_FW]
    assert (inline["setting_name"], inline["value"]) == ("Enable Domain Network Firewall", "True")


SSO = SC / "POC_MAC_D_CO_SBL_MSZT_SSO_Platform_appleRemoteManagement.json"
EXT = "com.apple.extensiblesso_extensiondata"


def _group_collection(policy: dict, definition_id: str) -> list:
    found = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("settingDefinitionId") == definition_id and "groupSettingCollectionValue" in node:
                found.append(node["groupSettingCollectionValue"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(policy)
    assert found
    return found[0]


def test_group_collection_with_repeated_definition_ids_keeps_every_row() -> None:
    policy = read(SSO)
    items = _group_collection(policy, EXT)
    assert len(items) == 4  # four rows repeating the same definition ids
    rows = flatten_policy(policy)
    ext = [r for r in rows if f"{EXT}[" in r["setting_key"]]
    assert len(ext) == 12
    names = {re.search(r"\[generickey_keytobereplaced=([^\]]+)\]", r["setting_key"]).group(1) for r in ext}
    assert names == {"Enable_SSO_On_All_ManagedApps", "disable_explicit_app_prompt",
                     "browser_sso_interaction_enabled", "AppPrefixAllowList"}
    key = (f"com.apple.extensiblesso_com.apple.extensiblesso[0]/{EXT}[generickey_keytobereplaced=AppPrefixAllowList]"
           f"/{EXT}_generickey_string")
    assert rows_by_key(rows)[key]["value"] == "com.microsoft.,com.apple."
    # reordering the collection changes no row
    items.reverse()
    assert as_set(flatten_policy(policy)) == as_set(rows)


def test_group_collection_without_natural_key_is_indexed_by_content() -> None:
    policy = read(SSO)
    items = _group_collection(policy, EXT)
    for item in items:  # drop the naming child: rows fall back to [n]
        item["children"] = [c for c in item["children"] if not c["settingDefinitionId"].endswith("keytobereplaced")]
    rows = flatten_policy(policy)
    keys = [r["setting_key"] for r in rows if f"{EXT}[" in r["setting_key"]]
    assert {re.search(re.escape(EXT) + r"\[(\d+)\]", k).group(1) for k in keys} == {"0", "1", "2", "3"}
    assert len(keys) == len(set(keys)) == 8
    random.Random(7).shuffle(items)
    assert as_set(flatten_policy(policy)) == as_set(rows)


def test_hardened_unc_paths_are_keyed_by_their_key_child() -> None:
    rows = rows_by_key(flatten_policy(read(SC / "POC_WIN_D_CO_SBL_CIS_MS_NetworkSecurity_mdm.json")))
    base = "device_vendor_msft_policy_config_connectivity_hardeneduncpaths_pol_hardenedpaths"
    row = rows[f"{base}[key=\\\\*\\SYSVOL]/{base}_value"]
    assert row["value"] == "RequireIntegrity=1,RequireMutualAuthentication=1,RequirePrivacy=1"


def test_simple_collection_is_a_sorted_set_and_tenant_domain_is_normalised() -> None:
    policy = read(SC / "POC_WIN_D_CO_SBL_MSZT_LocalGroupMembership_mdm.json")
    rows = flatten_policy(policy)
    users = next(r for r in rows if r["setting_key"].endswith("_accessgroup_users"))
    assert users["value"] == "AzureAD\\AdeleV@ennnnbeeee.onmicrosoft.com"
    assert users["compare_value"] == "AzureAD\\AdeleV@<tenant-domain>"
    assert users["setting_name"] == "users"
    assert users["setting_key"].startswith("device_vendor_msft_policy_config_localusersandgroups_configure[0]/")

    sso = read(SSO)
    urls = next(r for r in flatten_policy(sso) if r["setting_key"].endswith("com.apple.extensiblesso_urls"))
    values = urls["value"].split("; ")
    assert values == sorted(values) and len(values) == 6
    _shuffle_simple_collections(sso, random.Random(3))
    assert as_set(flatten_policy(sso)) == as_set(flatten_policy(read(SSO)))


NORMALISE = [
    ("AzureAD\\AdeleV@ennnnbeeee.onmicrosoft.com", "x_users", "AzureAD\\AdeleV@<tenant-domain>"),
    ("https://login.microsoftonline.com/0f1e2d3c-aaaa-bbbb-cccc-111122223333/v2.0", "url",
     "https://login.microsoftonline.com/<tenant-id>/v2.0"),
    ("https://login.microsoftonline.com", "url", "https://login.microsoftonline.com"),
    ("0f1e2d3c-aaaa-bbbb-cccc-111122223333", "device_vendor_msft_policy_config_onedrivengscv2~policy~onedrivengsc"
     "_kfmsilentoptin_kfmsilentoptin_textbox", "<tenant-id>"),
    ("0f1e2d3c-aaaa-bbbb-cccc-111122223333", "notificationTemplateId", "<object-id>"),
    ("00000000-0000-0000-0000-000000000000", "notificationTemplateId", "00000000-0000-0000-0000-000000000000"),
    ("{d48179be-ec20-11d1-b6b8-00c04fa372a7}", "device_vendor_msft_bitlocker_x_deviceclass",
     "{d48179be-ec20-11d1-b6b8-00c04fa372a7}"),  # a global device-class GUID stays
    ('{"body":"{\\"orgId\\":\\"0f1e2d3c\\"}"' + "x" * 300, "device_vendor_msft_windowsadvancedthreatprotection"
     "_onboarding_fromconnector", "<onboarding-blob>"),
]


@pytest.mark.parametrize(("value", "prop", "expected"), NORMALISE)
def test_compare_value_placeholders(value: str, prop: str, expected: str) -> None:
    policy = {"name": "n", "technologies": "mdm", "platforms": "windows10", "settings": [{"settingInstance": {
        "settingDefinitionId": prop, "simpleSettingValue": {"value": value}}}]}
    (row,) = flatten_policy(policy)
    assert (row["value"], row["compare_value"]) == (value, expected)


def _shuffle_simple_collections(node: object, rng: random.Random) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("simpleSettingCollectionValue", "choiceSettingCollectionValue",
                       "groupSettingCollectionValue", "settings", "children") and isinstance(value, list):
                rng.shuffle(value)
            _shuffle_simple_collections(value, rng)
    elif isinstance(node, list):
        for value in node:
            _shuffle_simple_collections(value, rng)


@pytest.mark.parametrize("path", sorted(SC.glob("*.json"))[:20], ids=lambda p: p.name[:50])
def test_catalog_rows_do_not_depend_on_any_list_order(path: Path) -> None:
    policy = read(path)
    shuffled = copy.deepcopy(policy)
    _shuffle_simple_collections(shuffled, random.Random(path.name))
    assert as_set(flatten_policy(shuffled)) == as_set(flatten_policy(policy))


def test_catalog_reads_values_by_key_name_not_odata_type() -> None:
    policy = read(SC / "POC_WIN_D_CO_SBL_CIS_MS_BitLocker_mdm.json")
    stripped = copy.deepcopy(policy)

    def strip(node: object) -> None:
        if isinstance(node, dict):
            node.pop("@odata.type", None)
            for value in node.values():
                strip(value)
        elif isinstance(node, list):
            for value in node:
                strip(value)

    strip(stripped)
    assert as_set(flatten_policy(stripped, "settingsCatalog")) == as_set(flatten_policy(policy))


def test_children_null_or_empty_and_template_references_are_equivalent() -> None:
    policy = read(FIREWALL)
    nulled = copy.deepcopy(policy)
    for setting in nulled["settings"]:
        value = setting["settingInstance"].get("choiceSettingValue")
        if value is not None and not value["children"]:
            value["children"] = None
        setting["settingInstance"]["settingInstanceTemplateReference"] = {"settingInstanceTemplateId": "x"}
    assert flatten_policy(nulled) == flatten_policy(policy)


def test_secret_setting_value_is_masked() -> None:
    policy = read(SC / "POC_WIN_D_CO_SBL_CIS_MS_WindowsLAPS_mdm.json")
    token = "1301f427-0000-4c8e-9a3e-5b7c8c3d2e1f"
    target = next(s["settingInstance"] for s in policy["settings"] if "simpleSettingValue" in s["settingInstance"]) \
        if any("simpleSettingValue" in s["settingInstance"] for s in policy["settings"]) else None
    if target is None:  # no root simple value in this file: add one the way Graph returns it
        target = {"settingDefinitionId": "device_vendor_msft_laps_policies_adminaccountpassword"}
        policy["settings"].append({"id": "99", "settingInstance": target})
    target["simpleSettingValue"] = {
        "@odata.type": "#microsoft.graph.deviceManagementConfigurationSecretSettingValue",
        "valueState": "encryptedValueToken", "value": token,
    }
    rows = flatten_policy(policy)
    row = rows_by_key(rows)[target["settingDefinitionId"]]
    assert row["is_secret"] is True
    assert row["value"] == row["raw_value"] == row["compare_value"] == SECRET_MASK
    assert row["value_type"] == "secret"
    assert not any(token in str(v) for r in rows for v in r.values())
    assert count_leaves(policy) == len(rows)


def test_reference_setting_value() -> None:
    policy = {"name": "ref", "platforms": "windows10", "technologies": "mdm", "settings": [{"id": "0", "settingInstance": {
        "@odata.type": "#microsoft.graph.deviceManagementConfigurationSimpleSettingInstance",
        "settingDefinitionId": "vendor_msft_example_reference",
        "simpleSettingValue": {"@odata.type": "#microsoft.graph.deviceManagementConfigurationReferenceSettingValue",
                               "value": "ref-1", "note": "a note"}}}]}
    (row,) = flatten_policy(policy)
    assert (row["value"], row["value_type"]) == ("ref-1", "reference")


def test_policy_without_settings_gives_one_placeholder_row() -> None:
    policy = read(FIREWALL)
    policy["settings"] = []
    (row,) = flatten_policy(policy)
    assert row["setting_name"] == NO_SETTINGS and row["policy_name"] == "POC_WIN_D_CO_SBL_CIS_MS_Firewall"
    assert count_leaves(policy) == 0
    (row,) = flatten_policy(read(TF / "GroupPolicyConfigurations_All_2025-09-09-15-18-11.json"))
    assert row["setting_name"] == NO_SETTINGS and row["policy_id"] == "34d2dc2d-d7e7-4efa-81ef-32f411589d17"


# --- identity ----------------------------------------------------------------------------------

def test_policy_id_is_derived_when_stripped_and_keys_ignore_volatile_fields() -> None:
    policy = read(FIREWALL)
    rows = flatten_policy(policy)
    assert rows[0]["policy_id"].startswith("derived-")
    assert flatten_policy(read(FIREWALL))[0]["policy_id"] == rows[0]["policy_id"]
    # the same policy in another tenant, as Graph returns it: ids, timestamps, OData metadata
    other = copy.deepcopy(policy)
    other.update({"id": "0f1e2d3c-aaaa-bbbb-cccc-111122223333", "createdDateTime": "2025-01-01T00:00:00Z",
                  "lastModifiedDateTime": "2025-02-01T00:00:00Z", "@odata.context": "x",
                  "settings@odata.context": "y", "#microsoft.graph.assign": {"title": "assign", "target": "z"}})
    other_rows = flatten_policy(other)
    assert other_rows[0]["policy_id"] == "0f1e2d3c-aaaa-bbbb-cccc-111122223333"
    strip = lambda rs: [{k: v for k, v in r.items() if k != "policy_id"} for r in rs]  # noqa: E731
    assert strip(other_rows) == strip(rows)


def test_enrollment_configs_with_the_same_name_get_distinct_ids() -> None:
    rows = [flatten_policy(p, f)[0] for _, (f, p) in ALL if f == "enrollment"]
    named = [r for r in rows if r["policy_name"] == "All users and all devices"]
    assert len(named) == 5
    assert len({r["policy_id"] for r in named}) == 5


# --- device configuration, compliance, app protection, scripts --------------------------------

def test_compliance_scheduled_actions_keyed_by_rule_and_action() -> None:
    policy = read(FRAMEWORKS / "iOS/Compliance/level-2-iOS_iPadOS-enhanced-security-compliance.json")
    rows = rows_by_key(flatten_policy(policy))
    key = "scheduledActionsForRule[ruleName=PasswordRequired]/scheduledActionConfigurations[actionType=block]/gracePeriodHours"
    assert rows[key]["value"] == "0" and rows[key]["value_type"] == "integer"
    assert rows["passcodeMinimumLength"]["value"] == "6"
    assert rows["passcodeMinimumLength"]["setting_name"] == "Passcode minimum length"
    # an empty list is the portal's "Not configured" (flatten/configured.py); Graph's value is kept
    assert rows["restrictedApps"]["value"] == "Not configured" and rows["restrictedApps"]["configured"] is False
    assert rows["restrictedApps"]["raw_value"] == "[]" and rows["restrictedApps"]["value_type"] == "collection"
    assert "passcodeExpirationDays" not in rows  # null = not configured
    assert not {"displayName", "description", "@odata.type"} & set(rows)
    assert rows["osMinimumVersion"]["platform"] == "iOS"


def test_apple_custom_payload_is_a_fingerprint_of_the_mobileconfig() -> None:
    path = CD / "Device Configurations/[intune-my-macs] CFG-SEC-002 - Screensaver Idle Time Configuration_macOSCustomConfiguration.json"
    policy = read(path)
    rows = rows_by_key(flatten_policy(policy))
    mobileconfig = (CD / "Device Configurations/mobileconfig/cfg-sec-002-screensaver-idle.mobileconfig").read_bytes()
    assert rows["payload"]["value"] == "sha256:" + hashlib.sha256(mobileconfig).hexdigest()[:16]
    assert policy["payload"] not in {v for r in rows.values() for v in r.values() if isinstance(v, str)}
    assert rows["payloadFileName"]["value"] == "cfg-sec-002-screensaver-idle.mobileconfig"


def test_script_content_is_never_stored() -> None:
    path = CD / "Scripts/Shell/[intune-my-macs] SCR-SYS-100 - Device Rename.json"
    policy = read(path)
    rows = flatten_policy(policy)
    digest = hashlib.sha256(base64.b64decode(policy["scriptContent"])).hexdigest()
    # scripts are matched by name, like remediations: the key starts with the script's name
    assert rows_by_key(rows)[f"[{rows[0]['policy_name']}]/scriptContent"]["value"] == f"sha256:{digest}"
    assert not any(policy["scriptContent"][:40] in str(v) for r in rows for v in r.values())
    assert rows[0]["platform"] == "macOS"


def test_wifi_pre_shared_key_is_masked() -> None:
    policy = read(CD / "Device Configurations/POC_IOS_D_CO_SBL_MSZT_WiFi_iosEnterpriseWiFiConfiguration.json")
    assert "preSharedKey" not in rows_by_key(flatten_policy(policy))  # null: not configured
    policy["preSharedKey"] = "correct horse battery staple"
    row = rows_by_key(flatten_policy(policy))["preSharedKey"]
    assert row["is_secret"] and row["value"] == row["raw_value"] == SECRET_MASK


def test_oma_settings_one_row_per_uri_and_encrypted_values_masked() -> None:
    xml = "<RuleCollection Type=\"Exe\" EnforcementMode=\"Enabled\" />"
    policy = {
        "@odata.type": "#microsoft.graph.windows10CustomConfiguration",
        "id": "5d7e0d3c-0000-4000-8000-000000000001", "displayName": "Custom OMA",
        "omaSettings": [
            {"@odata.type": "#microsoft.graph.omaSettingInteger", "displayName": "Allow camera",
             "omaUri": "./Device/Vendor/MSFT/Policy/Config/Camera/AllowCamera", "value": 0, "isEncrypted": False},
            {"@odata.type": "#microsoft.graph.omaSettingString", "displayName": "Wi-Fi key",
             "omaUri": "./Vendor/MSFT/WiFi/Profile/corp/WlanXml", "value": "****", "isEncrypted": True,
             "secretReferenceValueId": "a1b2c3_secret"},
            {"@odata.type": "#microsoft.graph.omaSettingStringXml", "displayName": "AppLocker exe",
             "omaUri": "./Vendor/MSFT/AppLocker/ApplicationLaunchRestrictions/g/EXE/Policy",
             "value": base64.b64encode(xml.encode()).decode(), "isEncrypted": False},
            {"@odata.type": "#microsoft.graph.omaSettingBase64", "displayName": "Cert", "fileName": "c.cer",
             "omaUri": "./Vendor/MSFT/RootCATrustedCertificates/Root/abc/EncodedCertificate",
             "value": base64.b64encode(b"cert bytes").decode(), "isEncrypted": False},
        ],
    }
    rows = rows_by_key(flatten_policy(policy))
    camera = rows["./Device/Vendor/MSFT/Policy/Config/Camera/AllowCamera"]
    assert (camera["setting_name"], camera["value"], camera["value_type"]) == ("Allow camera", "0", "integer")
    secret = rows["./Vendor/MSFT/WiFi/Profile/corp/WlanXml"]
    assert secret["is_secret"] and secret["value"] == secret["raw_value"] == SECRET_MASK
    assert rows["./Vendor/MSFT/AppLocker/ApplicationLaunchRestrictions/g/EXE/Policy"]["value"] == xml
    cert = rows["./Vendor/MSFT/RootCATrustedCertificates/Root/abc/EncodedCertificate"]
    assert cert["value"] == "sha256:" + hashlib.sha256(b"cert bytes").hexdigest()[:16]
    assert rows["./Device/Vendor/MSFT/Policy/Config/Camera/AllowCamera"]["platform"] == "windows"


def test_app_protection_key_value_pairs_and_sets() -> None:
    policy = read(FRAMEWORKS / "AppProtectionPolicies/level-3-enterprise-high-data-protection-Android.json")
    rows = rows_by_key(flatten_policy(policy))
    assert rows["approvedKeyboards[name=com.touchtype.swiftkey]"]["value"] == "SwiftKey Keyboard"
    assert rows["allowedDataStorageLocations"]["value"] == "oneDriveForBusiness; sharePoint"
    assert rows["pinRequired"]["setting_name"] == "PIN required"
    assert rows["pinRequired"]["platform"] == "android"
    shuffled = copy.deepcopy(policy)
    shuffled["approvedKeyboards"].reverse()
    shuffled["allowedDataStorageLocations"].reverse()
    assert as_set(flatten_policy(shuffled)) == as_set(flatten_policy(policy))
    policy["apps"] = [{"mobileAppIdentifier": {"@odata.type": "#microsoft.graph.androidMobileAppIdentifier",
                                               "packageId": "com.microsoft.office.outlook"}, "id": "x"},
                      {"mobileAppIdentifier": {"packageId": "com.microsoft.teams"}, "id": "y"}]
    assert rows_by_key(flatten_policy(policy))["apps"]["value"] == "com.microsoft.office.outlook; com.microsoft.teams"


def test_nested_objects_are_keyed_by_path() -> None:
    policy = read(CD / "Enrollment Configurations/All users and all devices_deviceEnrollmentPlatformRestrictionsConfiguration.json")
    rows = rows_by_key(flatten_policy(policy))
    row = rows["windowsMobileRestriction/platformBlocked"]
    assert (row["value"], row["setting_name"]) == ("true", "Windows mobile restriction > Platform blocked")
    autopilot = {"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile", "displayName": "AP",
                 "outOfBoxExperienceSettings": {"hideEULA": True, "userType": "standard"}}
    rows = rows_by_key(flatten_policy(autopilot))
    assert rows["outOfBoxExperienceSettings/hideEULA"]["setting_name"] == "Out of box experience settings > Hide EULA"
    assert rows["outOfBoxExperienceSettings/hideEULA"]["platform"] == "windows"


# --- endpoint security intents -----------------------------------------------------------------

def test_intent_value_json_is_parsed_and_keyed_by_definition_id() -> None:
    settings = [
        {"@odata.type": "#microsoft.graph.deviceManagementBooleanSettingInstance",
         "definitionId": "deviceConfiguration--windows10EndpointProtectionConfiguration_firewallBlockStatefulFTP",
         "valueJson": "true"},
        {"@odata.type": "#microsoft.graph.deviceManagementStringSettingInstance",
         "definitionId": "deviceConfiguration--windows10EndpointProtectionConfiguration_defenderAttackSurfaceType",
         "valueJson": "\"auditMode\""},
        {"@odata.type": "#microsoft.graph.deviceManagementStringSettingInstance",
         "definitionId": "deviceConfiguration--windows10EndpointProtectionConfiguration_unset", "valueJson": "null"},
        {"@odata.type": "#microsoft.graph.deviceManagementComplexSettingInstance",
         "definitionId": "deviceConfiguration--windows10EndpointProtectionConfiguration_firewallProfileDomain",
         "valueJson": json.dumps({"firewallEnabled": "allowed", "inboundConnectionsBlocked": True,
                                  "@odata.type": "#microsoft.graph.windowsFirewallNetworkProfile"})},
        {"@odata.type": "#microsoft.graph.deviceManagementCollectionSettingInstance",
         "definitionId": "deviceConfiguration--windows10EndpointProtectionConfiguration_defenderExcludedPaths",
         "valueJson": "[\"C:\\\\b\", \"C:\\\\a\"]"},
    ]
    graph = {"@odata.type": "#microsoft.graph.deviceManagementIntent", "id": "i1", "displayName": "ES",
             "templateId": "t1", "settings": settings}
    intune_cd = {"displayName": "ES", "templateId": "t1", "settingsDelta": copy.deepcopy(settings)}
    assert detect_family(intune_cd) == "endpointSecurityIntent"
    for policy in (graph, intune_cd):
        rows = rows_by_key(flatten_policy(policy))
        prefix = "deviceConfiguration--windows10EndpointProtectionConfiguration_"
        assert rows[prefix + "firewallBlockStatefulFTP"]["value"] == "true"
        assert rows[prefix + "defenderAttackSurfaceType"]["value"] == "auditMode"
        assert rows[prefix + "firewallProfileDomain/firewallEnabled"]["value"] == "allowed"
        assert rows[prefix + "firewallProfileDomain/inboundConnectionsBlocked"]["value_type"] == "boolean"
        assert rows[prefix + "defenderExcludedPaths"]["value"] == "C:\\a; C:\\b"
        assert prefix + "unset" not in rows
        assert rows[prefix + "firewallBlockStatefulFTP"]["setting_name"] == "Firewall block stateful FTP"
        assert rows[prefix + "firewallBlockStatefulFTP"]["platform"] == "windows"


# --- administrative templates ------------------------------------------------------------------

def _admin_template() -> dict:
    (policy,) = [p for s, (f, p) in ALL if f == "adminTemplate"]
    return policy


def test_terraform_admin_template_captures_are_joined() -> None:
    (source,) = [s for s, (f, _) in ALL if f == "adminTemplate"]
    assert len(source) == 11  # configuration, definition values, presentation values, presentations
    rows = rows_by_key(flatten_policy(_admin_template()))
    enabled = rows["157dca4c-91f0-4857-b9de-8db11c0944ee"]
    assert (enabled["setting_name"], enabled["value"]) == ("Configure default networking mode", "Enabled")
    listbox = rows["ae12ff5b-40af-4af9-b986-04a4c988c033/b99443a7-9b59-4d5e-be9f-a2a1aaa626dd"]
    assert listbox["setting_name"] == "Allow automatic full screen on specified sites"
    assert listbox["value"] == "[*.]example.edu; https://www.example.com"
    assert listbox["value_type"] == "collection"
    decimal = rows["98d69f26-2201-4aed-8927-d20c29b24ed5/5c8d10ad-8a28-4fe2-bd16-170d88dceb82"]
    assert (decimal["setting_name"], decimal["value"], decimal["value_type"]) == ("Maximum Log Size (KB)", "1024", "integer")
    assert len(rows) == 6


def test_admin_template_list_is_a_set() -> None:
    policy = copy.deepcopy(_admin_template())
    for dv in policy["definitionValues"]:
        for pv in dv.get("presentationValues") or ():
            if "values" in pv:
                pv["values"].reverse()
    assert as_set(flatten_policy(policy)) == as_set(flatten_policy(_admin_template()))


def _json_blocks(markdown: str) -> list[dict]:
    """The JSON bodies of a browser network log pasted into markdown."""
    decoder, found, i = json.JSONDecoder(), [], 0
    while (i := markdown.find("{", i)) != -1:
        try:
            obj, end = decoder.raw_decode(markdown, i)
        except json.JSONDecodeError:
            i += 1
            continue
        found.append(obj)
        i = end
    return found


def test_admin_template_display_name_with_narrow_no_break_space() -> None:
    blocks = _json_blocks((TF / "create_req.md").read_text(encoding="utf-8"))
    config = next(b for b in blocks if b.get("id") == "59d323cf-756c-46eb-82f8-c9a666c4e5ca")
    values = next(b["value"] for b in blocks if "definitionValues" in str(b.get("@odata.context")) and b.get("value"))
    assert values[0]["definition"]["displayName"].startswith("\u202f")
    presentations = next(b["value"] for b in blocks if str(b.get("@odata.context", "")).endswith("/presentations"))
    policy = {**config, "definitionValues": values}
    values[0]["presentationValues"] = [
        {"@odata.type": "#microsoft.graph.groupPolicyPresentationValueBoolean", "value": True, "presentation": p}
        for p in presentations if p["@odata.type"].endswith("CheckBox")]
    rows = flatten_policy(policy)
    assert detect_family(policy) == "adminTemplate"
    assert rows[0]["setting_name"] == "Allow users to contact Microsoft for feedback and support"
    assert rows[0]["setting_key"] == "5cdf0ce8-f338-4bb3-b2c2-d00e5a255514"
    labels = {r["setting_name"] for r in rows[1:]}
    assert labels == {"Send Feedback", "Receive user satisfication surveys", "Contact OneDrive Support"}  # U+200B stripped


# --- assignments -------------------------------------------------------------------------------

def test_assignments() -> None:
    policy = read(CD / "App Protection/POC_IOS_U_SBL_MSZT_AppProtection_iosManagedAppProtection.json")
    (row,) = flatten_assignments(policy)
    assert tuple(row) == ASSIGNMENT_COLUMNS
    assert (row["intent"], row["target_type"], row["group_name"], row["filter_type"]) == (
        "include", "group", "[SWC] - Intune-Users", "none")
    assert row["policy_id"] == flatten_policy(policy)[0]["policy_id"]
    (row,) = flatten_assignments(read(SC / "POC_WIN_D_CO_SBL_MSZT_LocalGroupMembership_mdm.json"))
    assert row["target_type"] == "allDevices"
    graph = {"id": "p1", "displayName": "x", "@odata.type": "#microsoft.graph.windows10CompliancePolicy", "assignments": [
        {"id": "p1_g1", "target": {"@odata.type": "#microsoft.graph.exclusionGroupAssignmentTarget", "groupId": "g1"}},
        {"id": "p1_u", "target": {"@odata.type": "#microsoft.graph.allLicensedUsersAssignmentTarget",
                                  "deviceAndAppManagementAssignmentFilterId": "f1",
                                  "deviceAndAppManagementAssignmentFilterType": "include"}}]}
    excluded, users = flatten_assignments(graph)
    assert (excluded["intent"], excluded["target_type"], excluded["group_id"]) == ("exclude", "group", "g1")
    assert (users["target_type"], users["filter_id"], users["filter_type"]) == ("allLicensedUsers", "f1", "include")
    assert flatten_assignments(read(FIREWALL)) == []


# --- files: encodings, malformed JSON, raw Graph responses -------------------------------------

@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-8-sig", "utf-32"])
def test_bom_and_utf16_exports_load_like_utf8(tmp_path: Path, encoding: str) -> None:
    text = FIREWALL.read_text(encoding="utf-8")
    data = text.encode(encoding)
    if encoding == "utf-16-le":  # IntuneManagement writes UTF-16LE with a BOM
        data = b"\xff\xfe" + data
    (tmp_path / "policy.json").write_bytes(data)
    loaded = load_export(tmp_path)
    assert loaded.skipped == []
    ((family, policy),) = loaded.policies
    assert family == "settingsCatalog"
    assert flatten_policy(policy, family) == flatten_policy(json.loads(text))
    assert read_json_bytes(data) == json.loads(text)


def test_utf16_without_bom_is_detected() -> None:
    assert read_json_bytes('{"a": "\u00e9"}'.encode("utf-16-le")) == {"a": "\u00e9"}
    assert read_json_bytes('{"a": 1}'.encode("utf-16-be")) == {"a": 1}


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "empty file"),
    (b"\xef\xbb\xbf  ", "empty file"),
    (b'{"displayName": "x",', "malformed JSON (utf-8)"),
    (b'{"a": "\xff"}', "not valid utf-8"),
    ('{"a": 1'.encode("utf-16"), "malformed JSON (utf-16-le)"),
])
def test_malformed_files_raise_export_format_error(data: bytes, reason: str) -> None:
    with pytest.raises(ExportFormatError) as caught:
        read_json_bytes(data)
    assert isinstance(caught.value, ValueError)
    assert reason in str(caught.value)


def test_load_export_skips_bad_files_with_reasons(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_bytes(FIREWALL.read_bytes()[:500])
    (tmp_path / "notes.md").write_text("hello")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config.json").write_text("{}")
    (tmp_path / "ok.json").write_bytes(FIREWALL.read_bytes())
    loaded = load_export(tmp_path)
    assert [f for f, _ in loaded.policies] == ["settingsCatalog"]
    reasons = dict(loaded.skipped)
    assert set(reasons) == {"broken.json", "notes.md"}
    assert reasons["broken.json"].startswith("malformed JSON (utf-8):") and "line" in reasons["broken.json"]
    # a single file works too
    assert len(load_export(tmp_path / "ok.json").policies) == 1


def test_raw_graph_list_and_follow_up_responses_are_joined(tmp_path: Path) -> None:
    policy = read(FIREWALL)
    settings = policy.pop("settings")
    policy.update({"id": "cp-1", "@odata.type": "#microsoft.graph.deviceManagementConfigurationPolicy"})
    base = "https://graph.microsoft.com/beta/$metadata#deviceManagement/"
    (tmp_path / "list.json").write_text(json.dumps(
        {"@odata.context": base + "configurationPolicies", "@odata.count": 1, "value": [policy]}))
    (tmp_path / "settings.json").write_text(json.dumps(
        {"@odata.context": base + "configurationPolicies('cp-1')/settings", "value": settings}))
    (tmp_path / "orphan.json").write_text(json.dumps(
        {"@odata.context": base + "configurationPolicies('nope')/settings", "value": settings}))
    loaded = load_export(tmp_path)
    ((family, joined),) = loaded.policies
    assert family == "settingsCatalog" and loaded.sources == [("list.json", "settings.json")]
    assert loaded.skipped == [("orphan.json", "follow-up response for configurationPolicies('nope') "
                                              "whose policy is not in the export")]
    assert len(flatten_policy(joined)) == count_leaves(joined) == count_leaves(read(FIREWALL))
