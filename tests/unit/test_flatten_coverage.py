"""Flattening the coverage types (remediations, custom compliance scripts, apps, assignment filters, scope
tags, conditional access policies and named locations) on the simulator's shapes: one table of
(collection, object name, setting name, value) the rows must hold, plus what they must never hold."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from graphsim import coverage
from graphsim.tenants import COVERAGE_COLLECTIONS, FAMILIES, SimPolicy, build_tenant
from tenantpilot.flatten import NO_SETTINGS, flatten_assignments, flatten_policy
from tenantpilot.flatten.assigned import with_target_names
from tenantpilot.flatten.blobs import stored
from tenantpilot.graph.policy_types import POLICY_TYPES
from tenantpilot.sync.snapshot import raw_json

TENANT = build_tenant("aaaaaaaa-1111-4222-8333-444444444444", "Contoso Ltd", 20, seed=3, coverage=True)
OTHER = build_tenant("bbbbbbbb-1111-4222-8333-444444444444", "Fabrikam", 20, seed=3, variant=2, coverage=True)
GROUPS = {gid: g["displayName"] for gid, g in TENANT.groups.items()}
FILTERS = {fid: f["displayName"] for fid, f in TENANT.assignment_filters.items()}


def _policy(tenant, name: str) -> SimPolicy:
    policy = tenant.policy_by_name(name)
    assert policy is not None, name
    return policy


def _served(policy: SimPolicy) -> dict:
    """The policy as the sync holds it after its follow-ups: the resource with its assignments and its
    other relationships (roleAssignments, localizedNotificationMessages)."""
    return {**policy.resource, "assignments": policy.assignments, **policy.related}


SINGLE_LABELS = {t.key: t.label for t in POLICY_TYPES if t.single}


def _rows(tenant, collection: str, name: str) -> dict[str, str]:
    if collection in SINGLE_LABELS:  # named as fetch.list_pages names a single object
        raw = {**tenant.list_policies(collection)[0].resource, "displayName": SINGLE_LABELS[collection]}
    elif collection == "assignmentFilters":
        raw = next(f for f in tenant.assignment_filters.values() if f["displayName"] == name)
    else:
        groups = {gid: g["displayName"] for gid, g in tenant.groups.items()}
        raw = with_target_names(_served(_policy(tenant, name)), groups, FILTERS)
    return {r["setting_name"]: r["value"] for r in flatten_policy(raw, FAMILIES.get(collection, "assignmentFilter"))}


def _sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("collection, name, setting, value", [
    ("deviceHealthScripts", "Restart Print Spooler", "Detection script content", _sha(coverage.SPOOLER_DETECT)),
    ("deviceHealthScripts", "Restart Print Spooler", "Remediation script content", _sha(coverage.SPOOLER_FIX)),
    ("deviceHealthScripts", "Restart Print Spooler", "Run as account", "system"),
    ("deviceHealthScripts", "Restart Print Spooler", "Assignment > SG-Intune-Windows-Pilot > Run schedule > Kind", "Daily"),
    ("deviceHealthScripts", "Restart Print Spooler", "Assignment > SG-Intune-Windows-Pilot > Run schedule > Time",
     "09:00:00.0000000"),
    ("deviceHealthScripts", "Clean up low disk space", "Assignment > SG-Intune-Windows-Pilot > Run schedule > Kind",
     "Hourly"),
    ("deviceHealthScripts", "Clean up low disk space",
     "Assignment > SG-Intune-Windows-Pilot > Run remediation script", "true"),
    ("deviceComplianceScripts", "BitLocker protection status", "Detection script content",
     _sha(coverage.BITLOCKER_COMPLIANCE)),
    ("mobileApps", "7-Zip", "Assignment > SG-Intune-Windows-Devices > Intent", "required"),
    ("mobileApps", "7-Zip", "Assignment > SG-Intune-All-Users > Intent", "available"),
    ("mobileApps", "7-Zip", "Display version", "24.08"),
    ("mobileApps", "7-Zip", "Install command line", "7z2408-x64.exe /S"),
    ("mobileApps", "Company Portal", "Assignment > SG-Intune-Windows-Devices > Intent", "required"),
    ("mobileApps", "Microsoft Authenticator", "Bundle ID", "com.microsoft.azureauthenticator"),
    ("assignmentFilters", "FLT-Windows-Virtual", "Rule", '(device.model -contains "Virtual")'),
    ("assignmentFilters", "FLT-iOS-Supervised", "Platform", "iOS"),
    ("roleScopeTags", "Region-EU", "Is built in", "false"),
    ("conditionalAccessPolicies", "Require compliant device", "State", "enabled"),
    ("conditionalAccessPolicies", "Require compliant device", "Grant controls > Built in controls",
     "compliantDevice; domainJoinedDevice"),
    ("conditionalAccessPolicies", "Block legacy authentication", "Conditions > Client app types",
     "exchangeActiveSync; other"),
    ("namedLocations", "Head office", "Is trusted", "true"),
    ("namedLocations", "Allowed countries", "Countries and regions", "DE; GB; NL"),
    ("deviceCustomAttributeShellScripts", "Battery cycle count", "Script content", _sha(coverage.BATTERY_SCRIPT)),
    ("deviceCustomAttributeShellScripts", "Battery cycle count", "Custom attribute type", "integer"),
    ("roleDefinitions", "Tier 1 support", "Role permissions [0] > Resource actions [0] > Allowed resource actions",
     "Microsoft.Intune_ManagedDevices_Read; Microsoft.Intune_RemoteTasks_SyncDevice"),
    ("roleDefinitions", "Tier 1 support", "Role assignments [EU service desk] > Scope type", "resourceScope"),
    ("roleDefinitions", "Help Desk Operator", "Is built in", "true"),
    ("notificationMessageTemplates", "Noncompliance: first notice",
     "Localized notification messages [de-de] > Subject", "Ihr Gerät ist nicht konform"),
    ("notificationMessageTemplates", "Noncompliance: first notice", "Branding options",
     "includeCompanyLogo,includeContactInformation"),
    ("reusablePolicySettings", "Corporate proxies", "addresses", "198.51.100.10; 198.51.100.11"),
    ("vppTokens", "Apps and Books", "State", "valid"),
    ("vppTokens", "Apps and Books", "Expiration date time", "2027-01-15T10:00:00Z"),
    ("vppTokens", "Apps and Books", "Token", "********"),
    ("depOnboardingSettings", "ADE iOS", "Token expiration date time", "2026-11-30T08:00:00Z"),
    ("depOnboardingSettings", "ADE iOS", "Enrollment profiles [iOS corporate (supervised)] > Supervised mode enabled",
     "true"),
    ("complianceManagementPartners", "Jamf Pro", "macOS onboarded", "true"),
    ("deviceManagementPartners", "Windows Autopatch", "Partner state", "enabled"),
    ("remoteAssistancePartners", "TeamViewer", "Onboarding status", "onboarded"),
    ("applePushNotificationCertificate", "", "Expiration date time", "2027-03-01T12:00:00Z"),
    ("applePushNotificationCertificate", "", "Certificate", "********"),
    ("androidManagedStoreAccountEnterpriseSettings", "", "Bind status", "boundAndValidated"),
    ("deviceManagementSettings", "", "Secure by default", "true"),
    ("deviceManagementSettings", "", "Device compliance checkin threshold days", "30"),
])
def test_coverage_rows_on_the_simulators_shapes(collection: str, name: str, setting: str, value: str) -> None:
    rows = _rows(TENANT, collection, name)
    assert setting in rows, sorted(rows)
    assert rows[setting].lower() == value.lower()


def test_the_variant_differs_where_customers_do() -> None:
    setting = "Assignment > SG-Intune-Windows-Devices > Intent"
    assert _rows(OTHER, "mobileApps", "Company Portal")[setting] == "available"
    report_only = build_tenant("cccccccc-1111-4222-8333-444444444444", "Northwind", 20, seed=3, variant=1, coverage=True)
    assert _rows(report_only, "conditionalAccessPolicies", "Require compliant device")["State"] \
        == "enabledForReportingButNotEnforced"
    assert report_only.policy_by_name("Restart Print Spooler") is None  # a remediation missing there


@pytest.mark.parametrize("collection", sorted(COVERAGE_COLLECTIONS))
def test_keys_are_the_objects_name_and_never_an_icon(collection: str) -> None:
    for policy in TENANT.list_policies(collection):
        served = _served(policy)
        if collection in SINGLE_LABELS:
            served["displayName"] = SINGLE_LABELS[collection]
        rows = flatten_policy(served, FAMILIES[collection])
        name = served.get("displayName") or policy.name
        named = [r for r in rows if r["setting_name"] != NO_SETTINGS]  # a category's only content is its name
        assert all(str(r["setting_key"]).startswith(f"[{name}]/") for r in named)
        assert not any("icon" in str(r["setting_key"]).lower() for r in rows)
        assert all(r["policy_type"] == FAMILIES[collection] for r in rows)


def test_the_stored_raw_json_keeps_script_text_and_drops_icons() -> None:
    script = _served(_policy(TENANT, "Restart Print Spooler"))
    kept = json.loads(raw_json(script))
    assert kept["detectionScriptContent"] == coverage.SPOOLER_DETECT
    assert kept["remediationScriptContent"] == coverage.SPOOLER_FIX
    # the text hashes as the base64 did: a re-flattened stored policy keeps its rows
    again = {r["setting_key"]: r["value"] for r in flatten_policy(kept, "healthScript")}
    first = {r["setting_key"]: r["value"] for r in flatten_policy(script, "healthScript")}
    assert again == first
    app = _served(_policy(TENANT, "7-Zip"))
    assert "largeIcon" in app and "largeIcon" not in raw_json(app)
    binary = {"scriptContent": base64.b64encode(b"\xff\xfe\x00binary").decode()}
    assert stored(binary) == binary  # not text: stays base64


def test_app_assignments_keep_intent_filters_and_names() -> None:
    app = with_target_names(_served(_policy(TENANT, "7-Zip")), GROUPS, FILTERS)
    rows = flatten_assignments(app, "mobileApp")
    assert {r["group_name"] for r in rows} == {"SG-Intune-Windows-Devices", "SG-Intune-All-Users"}


def test_every_coverage_collection_is_a_row_of_the_policy_type_table() -> None:
    keys = {t.key for t in POLICY_TYPES}
    assert COVERAGE_COLLECTIONS | {"assignmentFilters"} <= keys


def test_a_vpp_token_never_reaches_a_row_or_the_stored_json() -> None:
    token = _served(TENANT.list_policies("vppTokens")[0])
    assert token["token"] == coverage.VPP_TOKEN_TEXT
    rows = flatten_policy(token, "connector")
    assert not any(coverage.VPP_TOKEN_TEXT in json.dumps(r) for r in rows)
    assert [r["is_secret"] for r in rows if r["setting_name"] == "Token"] == [True]
    stored_text = raw_json(token)
    assert coverage.VPP_TOKEN_TEXT not in stored_text and json.loads(stored_text)["state"] == "valid"


def test_apns_material_and_google_play_enrollment_tokens_are_never_kept() -> None:
    apns = {**TENANT.list_policies("applePushNotificationCertificate")[0].resource, "displayName": "APNs"}
    play = {**TENANT.list_policies("androidManagedStoreAccountEnterpriseSettings")[0].resource, "displayName": "Play"}
    for policy, secret in ((apns, "MIIFsimulatedAPNsCertificateOnly"), (play, "SIMULATED-ENROLLMENT-TOKEN")):
        assert secret in json.dumps(policy)
        assert secret not in json.dumps(flatten_policy(policy, "connector"))
        assert secret not in raw_json(policy)
