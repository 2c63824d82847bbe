"""What issue 10 left: certificate and domain-join links, managed-device app configuration and quality
update policies, flattened into readable rows (real corpus policies with the links a sync merges in)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from graphsim import CORPUS_DIR
from tenantpilot import families as F
from tenantpilot.flatten import flatten_policy
from tenantpilot.flatten.core import detect_family
from tenantpilot.graph.policy_types import POLICY_TYPES
from tenantpilot.sync.links import LINKS, LINKS_NOT_READ, NAVIGATIONS, links_of

WIFI = CORPUS_DIR / "CES2026-IntuneCD" / "Backup" / "Device Configurations"


def corpus(name: str) -> dict[str, Any]:
    data = json.loads((WIFI / name).read_text(encoding="utf-8"))
    data.setdefault("id", "11111111-0000-4000-8000-000000000001")
    return data


def target(i: int, name: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"@odata.type": "#microsoft.graph.iosTrustedRootCertificate",
                           "id": f"aaaaaaaa-0000-4000-8000-00000000000{i}"}
    if name is not None:
        out["displayName"] = name
    return out


def link_rows(rows: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(r["setting_key"]): r for r in rows if r["value_type"] in ("link", "unread")}


IOS = "POC_IOS_D_CO_SBL_MSZT_WiFi_iosEnterpriseWiFiConfiguration.json"
MAC = "POC_MAC_D_CO_SBL_MSZT_WiFi_macOSEnterpriseWiFiConfiguration.json"
ANDROID = "POC_AND_D_CO_SBL_MSZT_WiFi_androidDeviceOwnerEnterpriseWiFiConfiguration.json"


@pytest.mark.parametrize("file, merged, shown", [
    # a collection link (iOS: rootCertificatesForServerValidation is a list), names sorted
    (IOS, {"rootCertificatesForServerValidation": [target(2, "Radius CA 2"), target(1, "radius CA 1")]},
     {"rootCertificatesForServerValidation": ("radius CA 1; Radius CA 2", "link")}),
    # single links, and a target Graph gave no name for: its id is shown, never an empty cell
    (MAC, {"rootCertificateForServerValidation": target(1, "Radius CA"),
           "identityCertificateForClientAuthentication": target(3, None)},
     {"rootCertificateForServerValidation": ("Radius CA", "link"),
      "identityCertificateForClientAuthentication": ("aaaaaaaa-0000-4000-8000-000000000003", "link")}),
    # a link Graph refused to give: the row says so (never silently absent)
    (ANDROID, {LINKS_NOT_READ: {"rootCertificateForServerValidation": "400 BadRequest: not supported"}},
     {"rootCertificateForServerValidation": ("not read from Graph (400 BadRequest: not supported)", "unread")}),
    # not fetched / not set: no link rows
    (IOS, {}, {}),
])
def test_a_link_is_one_row_named_by_the_linked_profile(file, merged, shown):
    policy = {**corpus(file), **merged}
    rows = flatten_policy(policy)
    got = link_rows(rows)
    assert {k: (r["value"], r["value_type"]) for k, r in got.items()} == shown
    for key, row in got.items():
        assert row["policy_type"] == F.DEVICE_CONFIGURATION and row["setting_id"] == key
        if row["value_type"] == "link":
            raw = json.loads(str(row["raw_value"]))
            ids = [raw["id"]] if isinstance(raw, dict) else [t["id"] for t in raw]
            assert all(i.startswith("aaaaaaaa-") for i in ids)  # the raw value keeps the ids
    # the rest of the profile is unchanged by the links
    plain = {r["setting_key"] for r in flatten_policy(corpus(file))}
    assert {r["setting_key"] for r in rows} - set(got) == plain


def test_links_compare_by_name_so_tenants_with_different_ids_agree():
    a = flatten_policy({**corpus(IOS), "rootCertificatesForServerValidation": [target(1, "Radius CA")]})
    b = flatten_policy({**corpus(IOS), "rootCertificatesForServerValidation": [target(7, "Radius CA")]})
    key = "rootCertificatesForServerValidation"
    assert link_rows(a)[key]["compare_value"] == link_rows(b)[key]["compare_value"]
    assert link_rows(a)[key]["raw_value"] != link_rows(b)[key]["raw_value"]


def test_a_certificate_blob_under_a_link_name_stays_a_fingerprint():
    # `rootCertificate` is a navigation on SCEP profiles but a Binary property elsewhere (BLOB_KEYS)
    policy = {"@odata.type": "#microsoft.graph.windows81SCEPCertificateProfile", "id": "x", "displayName": "SCEP",
              "rootCertificate": "TUlJQ2lqQ0NBWE1D" * 8}
    [row] = [r for r in flatten_policy(policy) if r["setting_key"] == "rootCertificate"]
    assert row["value_type"] == "fingerprint" and "TUlJ" not in str(row["raw_value"])


HYBRID = {"@odata.type": "#microsoft.graph.activeDirectoryWindowsAutopilotDeploymentProfile", "id": "ap1",
          "displayName": "Hybrid", "hybridAzureADJoinSkipConnectivityCheck": True,
          "outOfBoxExperienceSettings": {"hideEULA": True},
          "domainJoinConfiguration": {"@odata.type": "#microsoft.graph.windowsDomainJoinConfiguration",
                                      "id": "dj1", "displayName": "Domain join: corp"}}
IOS_APP_CONFIG = {"@odata.type": "#microsoft.graph.iosMobileAppConfiguration", "id": "ac1",
                  "displayName": "Outlook", "version": 1, "targetedMobileApps": ["app-1"],
                  "encodedSettingXml": None,
                  "settings": [{"appConfigKey": "com.microsoft.outlook.Mail.FocusedInbox",
                                "appConfigKeyType": "booleanType", "appConfigKeyValue": "false"},
                               {"appConfigKey": "IntuneMAMAllowedAccountsOnly", "appConfigKeyType": "stringType",
                                "appConfigKeyValue": "Enabled"}]}
ANDROID_APP_CONFIG = {"@odata.type": "#microsoft.graph.androidManagedStoreAppConfiguration", "id": "ac2",
                      "displayName": "Outlook Android", "packageId": "app:com.microsoft.office.outlook",
                      "payloadJson": "eyJrTWFuYWdlZFByb3BlcnR5Ijp0cnVlfQ==", "appSupportsOemConfig": False,
                      "profileApplicability": "default", "connectedAppsEnabled": False,
                      "permissionActions": [{"permission": "android.permission.READ_CONTACTS", "action": "autoGrant"}]}
QUALITY = {"@odata.type": "#microsoft.graph.windowsQualityUpdatePolicy", "id": "q1", "displayName": "Monthly",
           "hotpatchEnabled": True, "roleScopeTagIds": ["0"]}


@pytest.mark.parametrize("policy, family, rows", [
    (HYBRID, F.AUTOPILOT, {"domainJoinConfiguration": "Domain join: corp",
                           "hybridAzureADJoinSkipConnectivityCheck": "true",
                           "outOfBoxExperienceSettings/hideEULA": "true"}),
    (IOS_APP_CONFIG, F.APP_CONFIGURATION, {
        "targetedMobileApps": "app-1",
        "settings[appConfigKey=com.microsoft.outlook.Mail.FocusedInbox]/appConfigKeyType": "booleanType",
        "settings[appConfigKey=com.microsoft.outlook.Mail.FocusedInbox]/appConfigKeyValue": "false",
        "settings[appConfigKey=IntuneMAMAllowedAccountsOnly]/appConfigKeyType": "stringType",
        "settings[appConfigKey=IntuneMAMAllowedAccountsOnly]/appConfigKeyValue": "Enabled"}),
    (QUALITY, F.WINDOWS_UPDATE, {"hotpatchEnabled": "true"}),
])
def test_new_types_flatten_into_readable_rows(policy, family, rows):
    assert detect_family(policy) == family
    got = {str(r["setting_key"]): str(r["value"]) for r in flatten_policy(policy)}
    assert got == rows


def test_android_managed_store_app_configuration_is_app_configuration():
    assert detect_family(ANDROID_APP_CONFIG) == F.APP_CONFIGURATION
    rows = {str(r["setting_key"]): r for r in flatten_policy(ANDROID_APP_CONFIG)}
    assert rows["payloadJson"]["value_type"] == "fingerprint"  # the managed configuration blob
    assert rows["packageId"]["value"] == "app:com.microsoft.office.outlook"
    assert "permissionActions[permission=android.permission.READ_CONTACTS]/action" in rows


@pytest.mark.parametrize("context, family", [
    ("https://graph.microsoft.com/beta/$metadata#deviceAppManagement/mobileAppConfigurations", F.APP_CONFIGURATION),
    ("https://graph.microsoft.com/beta/$metadata#deviceManagement/windowsQualityUpdatePolicies", F.WINDOWS_UPDATE),
])
def test_new_collections_are_known_by_their_context(context, family):
    assert detect_family({"@odata.context": context, "id": "x", "displayName": "y"}) == family


def test_every_link_belongs_to_a_synced_collection_and_a_family_rule():
    synced = {t.list_path.rsplit("/", 1)[-1]: t for t in POLICY_TYPES}
    for link in LINKS:
        assert link.collection in synced
        # the linking type is filed under its collection's family by families.py's type rules
        assert detect_family({"@odata.type": f"#microsoft.graph.{link.odata_type}"}) == synced[link.collection].family
        assert links_of(f"#microsoft.graph.{link.odata_type}")
    assert {"rootCertificate", "identityCertificate", "rootCertificateForServerValidation",
            "rootCertificatesForServerValidation", "identityCertificateForClientAuthentication",
            "domainJoinConfiguration"} <= NAVIGATIONS
