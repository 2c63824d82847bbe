"""The simulated tenants' remediations, custom compliance scripts, apps, scope tags and conditional access.

``add_coverage(tenant)`` fills the collections beyond the 17 policy collections (see graphsim/README.md,
"Coverage types", for the Graph pages each shape follows). Content depends on nothing but the tables
below; ids on the tenant. Variants differ the way customers do, and each difference is recorded in
``tenant.seeded_differences``:

* variant 1 and up: the "Require compliant device" CA policy is report-only
  (``enabledForReportingButNotEnforced``).
* variant 1: the "Restart Print Spooler" remediation is missing.
* variant 1 and up: the tenant-wide ``secureByDefault`` is off (devices without a compliance policy
  count as compliant).
* variant 2 and up: Company Portal is assigned *available* instead of *required*.
"""

from __future__ import annotations

import base64
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graphsim.tenants import SimTenant

JSON = dict[str, Any]
_NS = uuid.UUID("1f3c5e7a-9b2d-4c6e-8f01-23456789abcd")
_TIME = "2025-02-11T09:31:27.4817422Z"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _id(tenant: SimTenant, *parts: object) -> str:
    return str(uuid.uuid5(_NS, "|".join(str(p) for p in (tenant.tenant_id, *parts))))


# --- remediations (deviceHealthScript) and custom compliance (deviceComplianceScript) -------------

SPOOLER_DETECT = """$svc = Get-Service -Name Spooler
if ($svc.Status -ne 'Running') { Write-Output 'Spooler stopped'; exit 1 }
exit 0
"""
SPOOLER_FIX = """Start-Service -Name Spooler
"""
DISK_DETECT = """$free = (Get-PSDrive C).Free / 1GB
if ($free -lt 10) { Write-Output "Low disk: $free GB"; exit 1 }
exit 0
"""
DISK_FIX = """Remove-Item -Path $env:TEMP\\* -Recurse -Force -ErrorAction SilentlyContinue
"""
BITLOCKER_COMPLIANCE = """$v = Get-BitLockerVolume -MountPoint C:
$hash = @{ ProtectionStatus = [string]$v.ProtectionStatus; EncryptionMethod = [string]$v.EncryptionMethod }
return $hash | ConvertTo-Json -Compress
"""

#: (displayName, description, detection, remediation, schedule @odata.type suffix, schedule fields)
REMEDIATIONS: list[tuple[str, str, str, str, str, JSON]] = [
    ("Restart Print Spooler", "Starts the print spooler when it is stopped.", SPOOLER_DETECT, SPOOLER_FIX,
     "Daily", {"interval": 1, "useUtc": False, "time": "09:00:00.0000000"}),
    ("Clean up low disk space", "Empties the temp folder below 10 GB free.", DISK_DETECT, DISK_FIX,
     "Hourly", {"interval": 4}),
]


def _health_script(tenant: SimTenant, name: str, description: str, detect: str, fix: str) -> JSON:
    # beta deviceHealthScript resource type (intune-devices-devicehealthscript)
    return {"@odata.type": "#microsoft.graph.deviceHealthScript", "id": _id(tenant, "health", name),
            "publisher": "Contoso IT", "version": "1", "displayName": name, "description": description,
            "detectionScriptContent": _b64(detect), "remediationScriptContent": _b64(fix),
            "createdDateTime": _TIME, "lastModifiedDateTime": _TIME, "runAsAccount": "system",
            "enforceSignatureCheck": False, "runAs32Bit": False, "roleScopeTagIds": ["0"],
            "isGlobalScript": False, "highestAvailableVersion": None, "deviceHealthScriptType": "deviceHealthScript",
            "detectionScriptParameters": [], "remediationScriptParameters": []}


def _health_assignment(policy_id: str, group_id: str, kind: str, schedule: JSON) -> JSON:
    # beta deviceHealthScriptAssignment: target, runRemediationScript, runSchedule (deviceHealthScriptRunSchedule)
    return {"id": f"{policy_id}:{group_id}", "runRemediationScript": True,
            "runSchedule": {"@odata.type": f"#microsoft.graph.deviceHealthScript{kind}Schedule", **schedule},
            "target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": group_id,
                       "deviceAndAppManagementAssignmentFilterId": None,
                       "deviceAndAppManagementAssignmentFilterType": "none"}}


# --- apps (mobileApp) -----------------------------------------------------------------------------

_ICON = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8).decode("ascii")

#: (displayName, resource without id, [(group name, intent)])
APPS: list[tuple[str, JSON, list[tuple[str, str]]]] = [
    ("Company Portal", {
        "@odata.type": "#microsoft.graph.winGetApp", "description": "Intune Company Portal",
        "publisher": "Microsoft Corporation", "packageIdentifier": "9WZDNCRFJ3PZ",
        "installExperience": {"runAsAccount": "user"}, "manifestHash": None,
        "isFeatured": True, "privacyInformationUrl": None, "informationUrl": None, "owner": "", "developer": "",
        "notes": ""}, [("SG-Intune-Windows-Devices", "required")]),
    ("7-Zip", {
        "@odata.type": "#microsoft.graph.win32LobApp", "description": "7-Zip file archiver",
        "publisher": "Igor Pavlov", "isFeatured": False, "privacyInformationUrl": None,
        "informationUrl": "https://www.7-zip.org", "owner": "", "developer": "", "notes": "",
        "fileName": "7z2408-x64.intunewin", "size": 1581168, "displayVersion": "24.08",
        "installCommandLine": "7z2408-x64.exe /S", "uninstallCommandLine": "\"%ProgramFiles%\\7-Zip\\Uninstall.exe\" /S",
        "applicableArchitectures": "x64", "minimumFreeDiskSpaceInMB": None, "minimumMemoryInMB": None,
        "minimumSupportedWindowsRelease": "1607", "allowAvailableUninstall": True,
        "installExperience": {"runAsAccount": "system", "deviceRestartBehavior": "suppress", "maxRunTimeInMinutes": 60},
        "rules": [{"@odata.type": "#microsoft.graph.win32LobAppFileSystemRule", "ruleType": "detection",
                   "path": "%ProgramFiles%\\7-Zip", "fileOrFolderName": "7z.exe", "check32BitOn64System": False,
                   "operationType": "exists", "operator": "notConfigured", "comparisonValue": None}],
        "returnCodes": [{"returnCode": 0, "type": "success"}, {"returnCode": 3010, "type": "softReboot"}]},
     [("SG-Intune-Windows-Devices", "required"), ("SG-Intune-All-Users", "available")]),
    # a built-in store app Intune lists for app protection (managedIOSStoreApp, appAvailability "global",
    # not assigned): the sync's $filter leaves it out, as IntuneCD's does
    ("Microsoft Outlook (built in)", {
        "@odata.type": "#microsoft.graph.managedIOSStoreApp", "description": "Microsoft Outlook",
        "publisher": "Microsoft Corporation", "appAvailability": "global", "version": "1.0",
        "bundleId": "com.microsoft.Office.Outlook", "appStoreUrl": "https://apps.apple.com/app/id951937596"}, []),
    ("Microsoft Authenticator", {
        "@odata.type": "#microsoft.graph.iosStoreApp", "description": "Microsoft Authenticator",
        "publisher": "Microsoft Corporation", "isFeatured": False, "privacyInformationUrl": None,
        "informationUrl": None, "owner": "", "developer": "", "notes": "",
        "bundleId": "com.microsoft.azureauthenticator",
        "appStoreUrl": "https://apps.apple.com/app/microsoft-authenticator/id983156458",
        "applicableDeviceType": {"iPad": True, "iPhoneAndIPod": True},
        "minimumSupportedOperatingSystem": {"v8_0": False, "v9_0": False, "v10_0": False, "v11_0": False,
                                            "v12_0": False, "v13_0": False, "v14_0": False, "v15_0": True}},
     [("SG-Intune-iOS-Devices", "required")]),
]


def _app(tenant: SimTenant, name: str, shape: JSON) -> JSON:
    # beta mobileApp (intune-apps-mobileapp) and its derived types; largeIcon is a mimeContent
    return {**shape, "id": _id(tenant, "app", name), "displayName": name,
            "largeIcon": {"@odata.type": "#microsoft.graph.mimeContent", "type": "image/png", "value": _ICON},
            "createdDateTime": _TIME, "lastModifiedDateTime": _TIME, "uploadState": 1,
            "publishingState": "published", "isAssigned": bool(shape.get("appAvailability") is None),
            "roleScopeTagIds": [], "dependentAppCount": 0,
            "supersedingAppCount": 0, "supersededAppCount": 0}


def _app_assignment(app_id: str, group_id: str, intent: str) -> JSON:
    # beta mobileAppAssignment: intent (required, available, uninstall, availableWithoutEnrollment), target, settings
    return {"@odata.type": "#microsoft.graph.mobileAppAssignment", "id": f"{app_id}_{group_id}_0_0",
            "intent": intent, "source": "direct", "sourceId": None, "settings": None,
            "target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": group_id,
                       "deviceAndAppManagementAssignmentFilterId": None,
                       "deviceAndAppManagementAssignmentFilterType": "none"}}


# --- scope tags, conditional access ----------------------------------------------------------------

SCOPE_TAGS: list[tuple[str, str, str, bool]] = [
    ("0", "Default", "Default scope tag", True),
    ("1", "Region-EU", "Objects managed by the EU service desk", False),
]

#: built-in directory roles by template id (Microsoft Entra built-in roles: a built-in role's template id is
#: its id in roleManagement/directory/roleDefinitions), the same in every tenant
ROLES: dict[str, str] = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "d29b2b05-8046-44ba-8758-1e26182fcf32": "Directory Synchronization Accounts",
}
#: Microsoft's first-party apps by appId (their service principals exist in every tenant)
FIRST_PARTY_APPS: dict[str, str] = {
    "00000002-0000-0ff1-ce00-000000000000": "Office 365 Exchange Online",
    "00000003-0000-0ff1-ce00-000000000000": "Office 365 SharePoint Online",
}
BREAK_GLASS_USER = "Emergency access (break-glass)"

#: (displayName, state, conditions, grantControls); "{break_glass}" is the tenant's break-glass group id,
#: "{break_glass_user}" its break-glass account's user id
CA_POLICIES: list[tuple[str, str, JSON, JSON | None]] = [
    ("Require compliant device", "enabled",
     {"clientAppTypes": ["all"], "applications": {"includeApplications": list(FIRST_PARTY_APPS),
                                                  "excludeApplications": [], "includeUserActions": []},
      "users": {"includeUsers": ["All"], "excludeUsers": ["{break_glass_user}"], "includeGroups": [],
                "excludeGroups": ["{break_glass}"], "includeRoles": [], "excludeRoles": []},
      "platforms": {"includePlatforms": ["windows", "macOS", "iOS", "android"], "excludePlatforms": []},
      "userRiskLevels": [], "signInRiskLevels": []},
     {"operator": "OR", "builtInControls": ["compliantDevice", "domainJoinedDevice"],
      "customAuthenticationFactors": [], "termsOfUse": []}),
    ("Block legacy authentication", "enabled",
     {"clientAppTypes": ["exchangeActiveSync", "other"],
      "applications": {"includeApplications": ["All"], "excludeApplications": [], "includeUserActions": []},
      "users": {"includeUsers": ["All"], "excludeUsers": ["{break_glass_user}"], "includeGroups": [],
                "excludeGroups": ["{break_glass}"], "includeRoles": [],
                "excludeRoles": ["d29b2b05-8046-44ba-8758-1e26182fcf32"]},
      "userRiskLevels": [], "signInRiskLevels": []},
     {"operator": "OR", "builtInControls": ["block"], "customAuthenticationFactors": [], "termsOfUse": []}),
]


def _ca_policy(tenant: SimTenant, name: str, state: str, conditions: JSON, grant: JSON | None,
               break_glass: str, trusted: str, break_glass_user: str) -> JSON:
    # v1.0 conditionalAccessPolicy (conditionalaccesspolicy resource type); list items carry no @odata.type
    conds = with_group(conditions, break_glass, break_glass_user)
    conds["locations"] = {"includeLocations": ["All"], "excludeLocations": [trusted]}
    return {"id": _id(tenant, "ca", name), "templateId": None, "displayName": name,
            "createdDateTime": _TIME, "modifiedDateTime": _TIME, "state": state, "conditions": conds,
            "grantControls": grant, "sessionControls": None}


def with_group(value: Any, break_glass: str, break_glass_user: str = "") -> Any:
    """A copy of ``value`` with the break-glass placeholders replaced by the tenant's group and user ids."""
    if isinstance(value, dict):
        return {k: with_group(v, break_glass, break_glass_user) for k, v in value.items()}
    if isinstance(value, list):
        return [with_group(v, break_glass, break_glass_user) for v in value]
    return {"{break_glass}": break_glass, "{break_glass_user}": break_glass_user}.get(value, value) \
        if isinstance(value, str) else value


def _directory_objects(tenant: SimTenant) -> str:
    """The users, built-in role definitions and first-party service principals conditional access points to
    (v1.0 user, unifiedRoleDefinition, servicePrincipal); returns the break-glass account's user id."""
    user_id = _id(tenant, "user", "break-glass")
    tenant.users[user_id] = {"id": user_id, "displayName": BREAK_GLASS_USER,
                             "userPrincipalName": f"breakglass@{tenant.domain}"}
    for role_id, name in ROLES.items():
        tenant.role_definitions[role_id] = {"id": role_id, "templateId": role_id, "displayName": name,
                                            "isBuiltIn": True, "isEnabled": True}
    for app_id, name in FIRST_PARTY_APPS.items():
        sp_id = _id(tenant, "sp", app_id)
        tenant.service_principals[app_id] = {"id": sp_id, "appId": app_id, "displayName": name}
    return user_id


def _named_locations(tenant: SimTenant) -> list[JSON]:
    # v1.0 ipNamedLocation / countryNamedLocation (namedlocation resource type: derived types carry @odata.type)
    return [
        {"@odata.type": "#microsoft.graph.ipNamedLocation", "id": _id(tenant, "loc", "hq"),
         "displayName": "Head office", "createdDateTime": _TIME, "modifiedDateTime": _TIME, "isTrusted": True,
         "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "203.0.113.0/24"},
                      {"@odata.type": "#microsoft.graph.iPv6CidrRange", "cidrAddress": "2001:db8::/48"}]},
        {"@odata.type": "#microsoft.graph.countryNamedLocation", "id": _id(tenant, "loc", "countries"),
         "displayName": "Allowed countries", "createdDateTime": _TIME, "modifiedDateTime": _TIME,
         "countriesAndRegions": ["DE", "GB", "NL"], "includeUnknownCountriesAndRegions": False,
         "countryLookupMethod": "clientIpAddress"},
    ]


# --- custom attributes, roles, device categories, notification templates, reusable settings ----------

BATTERY_SCRIPT = """#!/bin/zsh
system_profiler SPPowerDataType | awk '/Cycle Count/ {print $3}'
"""


def _second_slice(tenant: SimTenant, groups: dict[str, str]) -> list[tuple[str, JSON, dict[str, list[JSON]]]]:
    """(collection, resource, related) of the second slice's objects."""
    out: list[tuple[str, JSON, dict[str, list[JSON]]]] = []
    # beta deviceCustomAttributeShellScript (intune-devices-devicecustomattributeshellscript)
    out.append(("deviceCustomAttributeShellScripts", {
        "@odata.type": "#microsoft.graph.deviceCustomAttributeShellScript", "id": _id(tenant, "attr", "battery"),
        "customAttributeName": "BatteryCycleCount", "customAttributeType": "integer",
        "displayName": "Battery cycle count", "description": "Reports the battery's cycle count.",
        "scriptContent": _b64(BATTERY_SCRIPT), "createdDateTime": _TIME, "lastModifiedDateTime": _TIME,
        "runAsAccount": "system", "fileName": "battery-cycles.sh", "roleScopeTagIds": ["0"]}, {}))
    # beta deviceAndAppManagementRoleDefinition (intune-rbac-deviceandappmanagementroledefinition) with
    # rolePermissions/resourceActions; its roleAssignments are deviceAndAppManagementRoleAssignments
    # (intune-rbac-deviceandappmanagementroleassignment: members, scopeMembers, scopeType, resourceScopes)
    for name, builtin, allowed, assignment in (
            ("Help Desk Operator", True, ["Microsoft.Intune_ManagedDevices_Read", "Microsoft.Intune_RemoteTasks_RebootNow"],
             None),
            ("Tier 1 support", False, ["Microsoft.Intune_ManagedDevices_Read", "Microsoft.Intune_RemoteTasks_SyncDevice"],
             ("EU service desk", "SG-Intune-VIP-Users", "SG-Intune-Windows-Devices"))):
        rid = _id(tenant, "role", name)
        related: dict[str, list[JSON]] = {"roleAssignments": []}
        if assignment:
            title, members, scope = assignment
            related["roleAssignments"].append({
                "@odata.type": "#microsoft.graph.deviceAndAppManagementRoleAssignment",
                "id": _id(tenant, "roleassignment", title), "displayName": title, "description": "",
                "scopeMembers": [groups[scope]], "scopeType": "resourceScope", "resourceScopes": [groups[scope]],
                "members": [groups[members]], "roleScopeTagIds": ["1"]})
        out.append(("roleDefinitions", {
            "@odata.type": "#microsoft.graph.deviceAndAppManagementRoleDefinition", "id": rid, "displayName": name,
            "description": f"{name} role", "isBuiltIn": builtin, "isBuiltInRoleDefinition": builtin,
            "roleScopeTagIds": ["0"], "rolePermissions": [{"resourceActions": [
                {"allowedResourceActions": allowed, "notAllowedResourceActions": []}]}]}, related))
    # v1.0 deviceCategory (intune-onboarding-devicecategory)
    for name, description in (("Corporate laptops", "Company-owned Windows and macOS laptops"),
                              ("Shared kiosks", "Front-desk kiosks")):
        out.append(("deviceCategories", {"@odata.type": "#microsoft.graph.deviceCategory",
                                         "id": _id(tenant, "category", name), "displayName": name,
                                         "description": description, "roleScopeTagIds": ["0"]}, {}))
    # notificationMessageTemplate + localizedNotificationMessage (intune-notification-*)
    tid = _id(tenant, "notification", "first")
    out.append(("notificationMessageTemplates", {
        "@odata.type": "#microsoft.graph.notificationMessageTemplate", "id": tid, "lastModifiedDateTime": _TIME,
        "displayName": "Noncompliance: first notice", "description": "Sent on the day a device falls out.",
        "defaultLocale": "en-us", "brandingOptions": "includeCompanyLogo,includeContactInformation",
        "roleScopeTagIds": ["0"]}, {"localizedNotificationMessages": [
            {"@odata.type": "#microsoft.graph.localizedNotificationMessage", "id": f"{tid}_en-us",
             "lastModifiedDateTime": _TIME, "locale": "en-us", "subject": "Your device is not compliant",
             "messageTemplate": "Open Company Portal and follow the steps to restore access.", "isDefault": True},
            {"@odata.type": "#microsoft.graph.localizedNotificationMessage", "id": f"{tid}_de-de",
             "lastModifiedDateTime": _TIME, "locale": "de-de", "subject": "Ihr Gerät ist nicht konform",
             "messageTemplate": "Öffnen Sie das Unternehmensportal.", "isDefault": False}]}))
    # beta deviceManagementReusablePolicySetting (intune-deviceconfigv2-devicemanagementreusablepolicysetting):
    # a Defender firewall dynamic keyword (settingDefinitionId and settingInstance as the docs' example)
    base = "vendor_msft_firewall_mdmstore_dynamickeywords_addresses_{id}"
    out.append(("reusablePolicySettings", {
        "@odata.type": "#microsoft.graph.deviceManagementReusablePolicySetting", "id": _id(tenant, "reusable", "proxy"),
        "displayName": "Corporate proxies", "description": "Firewall dynamic keyword for the proxies",
        "settingDefinitionId": base, "createdDateTime": _TIME, "lastModifiedDateTime": _TIME, "version": 1,
        "referencingConfigurationPolicyCount": 1,
        "settingInstance": {
            "@odata.type": "#microsoft.graph.deviceManagementConfigurationGroupSettingCollectionInstance",
            "settingDefinitionId": base, "groupSettingCollectionValue": [{"children": [
                {"@odata.type": "#microsoft.graph.deviceManagementConfigurationSimpleSettingInstance",
                 "settingDefinitionId": f"{base}_keyword",
                 "simpleSettingValue": {"@odata.type": "#microsoft.graph.deviceManagementConfigurationStringSettingValue",
                                        "value": "proxies"}},
                {"@odata.type": "#microsoft.graph.deviceManagementConfigurationSimpleSettingCollectionInstance",
                 "settingDefinitionId": f"{base}_addresses",
                 "simpleSettingCollectionValue": [
                     {"@odata.type": "#microsoft.graph.deviceManagementConfigurationStringSettingValue",
                      "value": "198.51.100.10"},
                     {"@odata.type": "#microsoft.graph.deviceManagementConfigurationStringSettingValue",
                      "value": "198.51.100.11"}]}]}]}}, {}))
    return out


#: the VPP token's text: never shown (the one secret rule masks a property named "token")
VPP_TOKEN_TEXT = "eyJleHBEYXRlIjoiMjAyNy0wMS0xNVQxMDowMDowMCswMDAwIiwidG9rZW4iOiJzaW11bGF0ZWQifQ=="


def _connectors(tenant: SimTenant) -> list[tuple[str, JSON, dict[str, list[JSON]]]]:
    """Apple VPP and ADE tokens (with an enrollment profile) and partner connections."""
    dep_id = _id(tenant, "dep", "main")
    return [
        # beta vppToken (intune-onboarding-vpptoken)
        ("vppTokens", {"@odata.type": "#microsoft.graph.vppToken", "id": _id(tenant, "vpp", "main"),
                       "organizationName": tenant.display_name, "vppTokenAccountType": "business",
                       "appleId": f"vpp@{tenant.domain}", "expirationDateTime": "2027-01-15T10:00:00Z",
                       "lastSyncDateTime": _TIME, "token": VPP_TOKEN_TEXT, "lastModifiedDateTime": _TIME,
                       "state": "valid", "tokenActionResults": [], "lastSyncStatus": "completed",
                       "automaticallyUpdateApps": True, "countryOrRegion": "us", "dataSharingConsentGranted": True,
                       "displayName": "Apps and Books", "locationName": "Head office",
                       "claimTokenManagementFromExternalMdm": False, "roleScopeTagIds": ["0"]}, {}),
        # beta depOnboardingSetting (intune-enrollment-deponboardingsetting) and its enrollmentProfiles
        # (depIOSEnrollmentProfile, intune-enrollment-depiosenrollmentprofile)
        ("depOnboardingSettings", {
            "@odata.type": "#microsoft.graph.depOnboardingSetting", "id": dep_id, "appleIdentifier": f"ade@{tenant.domain}",
            "tokenExpirationDateTime": "2026-11-30T08:00:00Z", "lastModifiedDateTime": _TIME,
            "lastSuccessfulSyncDateTime": _TIME, "lastSyncTriggeredDateTime": _TIME,
            "shareTokenWithSchoolDataSyncService": False, "lastSyncErrorCode": 0, "tokenType": "dep",
            "tokenName": "ADE iOS", "syncedDeviceCount": 42, "dataSharingConsentGranted": True,
            "roleScopeTagIds": ["0"]},
         {"enrollmentProfiles": [{
             "@odata.type": "#microsoft.graph.depIOSEnrollmentProfile", "id": f"{dep_id}_profile",
             "displayName": "iOS corporate (supervised)", "description": "", "requiresUserAuthentication": True,
             "configurationEndpointUrl": "https://appleconfigurator2.manage.microsoft.com/MDMServiceConfig",
             "enableAuthenticationViaCompanyPortal": False, "requireCompanyPortalOnSetupAssistantEnrolledDevices": False,
             "isDefault": True, "supervisedModeEnabled": True, "supportDepartment": "IT service desk",
             "isMandatory": True, "locationServicesSkip": False, "passCodeSkip": False, "siriSkip": True,
             "awaitDeviceConfiguredConfirmation": True, "sharedIPadMaximumUserCount": 0,
             "enableSharedIPad": False}]}),
        # beta complianceManagementPartner, deviceManagementPartner, remoteAssistancePartner
        ("complianceManagementPartners", {
            "@odata.type": "#microsoft.graph.complianceManagementPartner", "id": _id(tenant, "partner", "compliance"),
            "lastHeartbeatDateTime": _TIME, "partnerState": "enabled", "displayName": "Jamf Pro",
            "macOsOnboarded": True, "androidOnboarded": False, "iosOnboarded": False,
            "macOsEnrollmentAssignments": [], "androidEnrollmentAssignments": [], "iosEnrollmentAssignments": []}, {}),
        ("deviceManagementPartners", {
            "@odata.type": "#microsoft.graph.deviceManagementPartner", "id": _id(tenant, "partner", "management"),
            "lastHeartbeatDateTime": _TIME, "partnerState": "enabled", "partnerAppType": "multiTenantApp",
            "singleTenantAppId": None, "displayName": "Windows Autopatch", "isConfigured": True,
            "whenPartnerDevicesWillBeRemovedDateTime": None, "whenPartnerDevicesWillBeMarkedAsNonCompliantDateTime": None,
            "groupsRequiringPartnerEnrollment": []}, {}),
        ("remoteAssistancePartners", {
            "@odata.type": "#microsoft.graph.remoteAssistancePartner", "id": _id(tenant, "partner", "assist"),
            "displayName": "TeamViewer", "onboardingUrl": "https://www.teamviewer.com/intune",
            "onboardingStatus": "onboarded", "lastConnectionDateTime": _TIME}, {}),
    ]


APNS_CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIFsimulatedAPNsCertificateOnly\n-----END CERTIFICATE-----"


def _singles(tenant: SimTenant, groups: dict[str, str]) -> list[tuple[str, JSON, dict[str, list[JSON]]]]:
    """The three single objects: APNs, managed Google Play, the tenant-wide settings."""
    return [
        # beta applePushNotificationCertificate (intune-devices-applepushnotificationcertificate)
        ("applePushNotificationCertificate", {
            "@odata.type": "#microsoft.graph.applePushNotificationCertificate", "id": _id(tenant, "apns"),
            "appleIdentifier": f"mdm@{tenant.domain}", "topicIdentifier": "com.apple.mgmt.External.simulated",
            "lastModifiedDateTime": _TIME, "expirationDateTime": "2027-03-01T12:00:00Z",
            "certificateUploadStatus": "success", "certificateUploadFailureReason": None,
            "certificateSerialNumber": "6F2A9C", "certificate": APNS_CERTIFICATE}, {}),
        # beta androidManagedStoreAccountEnterpriseSettings (intune-androidforwork-…); companyCodes hold
        # enrollment tokens (androidEnrollmentCompanyCode)
        ("androidManagedStoreAccountEnterpriseSettings", {
            "@odata.type": "#microsoft.graph.androidManagedStoreAccountEnterpriseSettings",
            "id": _id(tenant, "googleplay"), "bindStatus": "boundAndValidated", "lastAppSyncDateTime": _TIME,
            "lastAppSyncStatus": "success", "ownerUserPrincipalName": f"admin@{tenant.domain}",
            "ownerOrganizationName": tenant.display_name, "lastModifiedDateTime": _TIME,
            "enrollmentTarget": "targetedAsEnrollmentRestrictions", "targetGroupIds": [groups["SG-Intune-Android-Devices"]],
            "deviceOwnerManagementEnabled": True, "androidDeviceAdministratorEnrollmentEnabled": False,
            "managedGooglePlayInitialScopeTagIds": ["0"],
            "companyCodes": [{"enrollmentToken": "SIMULATED-ENROLLMENT-TOKEN",
                              "qrCodeContent": "{\"token\":\"SIMULATED-ENROLLMENT-TOKEN\"}",
                              "qrCodeImage": {"type": "image/png", "value": _ICON[:64]}}]}, {}),
        # deviceManagementSettings, the deviceManagement singleton's settings property (no id, no @odata.type)
        ("deviceManagementSettings", {
            "id": "deviceManagementSettings", "deviceComplianceCheckinThresholdDays": 30,
            "isScheduledActionEnabled": True, "secureByDefault": not tenant.variant, "enhancedJailBreak": False,
            "deviceInactivityBeforeRetirementInDay": 180, "derivedCredentialProvider": "notConfigured",
            "derivedCredentialUrl": None, "androidDeviceAdministratorEnrollmentEnabled": False,
            "ignoreDevicesForUnsupportedSettingsEnabled": False, "enableLogCollection": True,
            "enableAutopilotDiagnostics": True, "enableEnhancedTroubleshootingExperience": False,
            "enableDeviceGroupMembershipReport": False}, {}),
    ]


def add_coverage(tenant: SimTenant) -> None:
    """Fill the coverage collections of ``tenant`` (and record its variant's differences)."""
    from graphsim.tenants import SimPolicy

    groups = {g["displayName"]: gid for gid, g in tenant.groups.items()}
    pilot = groups["SG-Intune-Windows-Pilot"]

    def diff(kind: str, collection: str, name: str, setting: str | None, old: Any, new: Any) -> None:
        tenant.seeded_differences.append({"kind": kind, "collection": collection, "policy_name": name,
                                          "setting_definition_id": setting, "old": old, "new": new})

    for name, description, detect, fix, kind, schedule in REMEDIATIONS:
        if tenant.variant == 1 and name == "Restart Print Spooler":
            diff("missing_policy", "deviceHealthScripts", name, None, None, None)
            continue
        res = _health_script(tenant, name, description, detect, fix)
        tenant.policies["deviceHealthScripts"][res["id"]] = SimPolicy(
            "deviceHealthScripts", res, [_health_assignment(res["id"], pilot, kind, schedule)])
    # beta deviceComplianceScript (intune-devices-devicecompliancescript); assignments are
    # deviceHealthScriptAssignments (intune-devices-devicehealthscriptassignment-create lists both paths)
    res = {"@odata.type": "#microsoft.graph.deviceComplianceScript", "id": _id(tenant, "compliance", "bitlocker"),
           "publisher": "Contoso IT", "version": "1", "displayName": "BitLocker protection status",
           "description": "Reports BitLocker status for custom compliance.",
           "detectionScriptContent": _b64(BITLOCKER_COMPLIANCE), "createdDateTime": _TIME,
           "lastModifiedDateTime": _TIME, "runAsAccount": "system", "enforceSignatureCheck": False,
           "runAs32Bit": False, "roleScopeTagIds": ["0"]}
    tenant.policies["deviceComplianceScripts"][res["id"]] = SimPolicy("deviceComplianceScripts", res, [])

    for name, shape, targets in APPS:
        res = _app(tenant, name, shape)
        assignments = []
        for group, intent in targets:
            if tenant.variant >= 2 and name == "Company Portal" and intent == "required":
                diff("changed", "mobileApps", name, "intent", intent, "available")
                intent = "available"
            assignments.append(_app_assignment(res["id"], groups[group], intent))
        tenant.policies["mobileApps"][res["id"]] = SimPolicy("mobileApps", res, assignments)

    for tag_id, name, description, builtin in SCOPE_TAGS:
        res = {"@odata.type": "#microsoft.graph.roleScopeTag", "id": tag_id, "displayName": name,
               "description": description, "isBuiltIn": builtin}
        tenant.policies["roleScopeTags"][tag_id] = SimPolicy("roleScopeTags", res)

    break_glass_user = _directory_objects(tenant)
    locations = _named_locations(tenant)
    for loc in locations:
        tenant.policies["namedLocations"][loc["id"]] = SimPolicy("namedLocations", loc)
    for name, state, conditions, grant in CA_POLICIES:
        if tenant.variant >= 1 and name == "Require compliant device":
            diff("changed", "conditionalAccessPolicies", name, "state", state, "enabledForReportingButNotEnforced")
            state = "enabledForReportingButNotEnforced"
        res = _ca_policy(tenant, name, state, conditions, grant, groups["SG-Intune-Break-Glass"], locations[0]["id"],
                         break_glass_user)
        tenant.policies["conditionalAccessPolicies"][res["id"]] = SimPolicy("conditionalAccessPolicies", res)
    if tenant.variant >= 1:  # devices without a compliance policy count as compliant there
        diff("changed", "deviceManagementSettings", "", "secureByDefault", True, False)
    for collection, res, related in [*_second_slice(tenant, groups), *_connectors(tenant), *_singles(tenant, groups)]:
        tenant.policies[collection][res["id"]] = SimPolicy(collection, res, related=related)


__all__ = ["APNS_CERTIFICATE", "APPS", "BREAK_GLASS_USER", "FIRST_PARTY_APPS", "ROLES", "BATTERY_SCRIPT", "VPP_TOKEN_TEXT", "CA_POLICIES", "REMEDIATIONS", "SCOPE_TAGS", "add_coverage"]
