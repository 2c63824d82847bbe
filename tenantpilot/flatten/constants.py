"""Tables the flattener is driven by: metadata keys, blob/secret names, natural keys (families: families.py).

Everything here is data. The functions that read it live in the other modules of this package.
"""

from __future__ import annotations

import re

# --- families: the one table is tenantpilot/families.py (ids, labels, Graph types, collections)
from tenantpilot.families import (  # noqa: E402,F401 - re-exported for the flatten modules
    ADMIN_TEMPLATE,
    APP,
    APP_CONFIGURATION,
    APP_PROTECTION,
    ASSIGNMENT_FILTER,
    AUTOPILOT,
    COLLECTION_FAMILIES,
    COMPLIANCE,
    COMPLIANCE_V2,
    CONDITIONAL_ACCESS,
    DEVICE_CONFIGURATION,
    ENDPOINT_SECURITY_INTENT,
    ENROLLMENT,
    FAMILIES,
    HEALTH_SCRIPT,
    NAME_KEYED,
    REUSABLE_SETTING,
    SCOPE_TAG,
    SCRIPT,
    SETTINGS_CATALOG,
    TYPE_RULES,
    UNKNOWN,
    WINDOWS_UPDATE,
)

# @odata.types that are Intune objects but not policies: load_export skips them with a reason.
NON_POLICY_TYPES: dict[str, str] = {
    "deviceAndAppManagementRoleDefinition": "role definition",
    "roleDefinition": "role definition",
    "roleScopeTag": "scope tag",
    "notificationMessageTemplate": "compliance notification message template",
    "deviceAndAppManagementAssignmentFilter": "assignment filter",
    "deviceManagementSettings": "tenant-wide device management settings",
}

# Keys that are never settings (volatile or descriptive); any key containing "@" or starting
# with "#" is dropped as well (full OData metadata from IntuneManagement).
METADATA_KEYS: frozenset[str] = frozenset({
    "@odata.type", "@odata.context", "id", "createdDateTime", "lastModifiedDateTime", "displayName",
    "name", "description", "version", "roleScopeTagIds", "supportsScopeTags",
    "deviceManagementApplicabilityRuleOsEdition", "deviceManagementApplicabilityRuleOsVersion",
    "deviceManagementApplicabilityRuleDeviceMode", "assignments", "settingCount", "creationSource",
    "isAssigned", "priorityMetaData", "templateReference", "deployedAppCount",
    # navigation properties that are reports, not configuration
    "deviceStatuses", "userStatuses", "deviceStatusOverview", "userStatusOverview",
    "deviceSettingStateSummaries", "deploymentSummary", "assignmentFilterEvaluationStatusDetails",
    "groupAssignments", "managedDeviceMobileAppConfigurationStatuses",
    # conditional access and named locations stamp their edits here (Graph v1.0 conditionalAccessPolicy)
    "modifiedDateTime",
    # apps (mobileApp): the icon is an image, the rest is upload and usage state, not configuration
    "largeIcon", "smallIcon", "uploadState", "publishingState", "dependentAppCount", "supersedingAppCount",
    "supersededAppCount", "committedContentVersion",
    # reusable settings: how many policies use one is a count, not configuration
    "referencingConfigurationPolicyCount",
    # connectors: when they last synced or called home is state that moves every hour, not configuration
    "lastSyncDateTime", "lastHeartbeatDateTime", "lastConnectionDateTime", "lastSuccessfulSyncDateTime",
    "lastSyncTriggeredDateTime", "syncedDeviceCount", "lastSyncErrorCode", "lastSyncStatus", "tokenActionResults",
    "lastAppSyncDateTime", "lastAppSyncStatus",
    # managed Google Play's company codes: enrollment tokens and their QR code images (never stored: blobs.py)
    "companyCodes",
})

# Keys a family extractor reads itself; the generic property walk skips them.
SPECIAL_KEYS: frozenset[str] = frozenset({
    "settings", "settingsDelta", "definitionValues", "omaSettings", "apps", "technologies",
    "platforms", "templateId",
})

# Properties whose value is a blob: rows hold a sha256 fingerprint, never the content.
# name -> number of hex digits kept (64 = full digest).
BLOB_KEYS: dict[str, int] = {
    "scriptContent": 64,
    "detectionScriptContent": 64,
    "remediationScriptContent": 64,
    "payload": 16,
    "payloadJson": 16,
    "fileContent": 16,
    "certificateContent": 16,
    "trustedRootCertificate": 16,
    "rootCertificate": 16,
    "pfxBlob": 16,
}

# The deepest JSON (objects and arrays inside each other) the flattener reads: its walks recurse once
# per level. Real exports stay below 20 (the corpus: 17); load_export skips deeper files with a reason.
MAX_DEPTH = 128

# Which names and markers hold a credential is the one secret rule in secrets.py, not a table here.

# Property names (lower case) whose value is an onboarding blob (holds the tenant/org id).
ONBOARDING_NAMES: frozenset[str] = frozenset({
    "advancedthreatprotectiononboardingblob", "onboardingblob",
    "advancedthreatprotectionoffboardingblob", "offboardingblob",
})

# Natural-key fields of arrays of objects in non-catalog policies, in priority order.
NATURAL_KEY_FIELDS: tuple[str, ...] = (
    "omaUri", "appConfigKey", "ruleName", "actionType", "name", "key", "locale", "ssid", "bundleId", "packageId",
    "permission",  # androidPermissionAction of managed-store app configuration
    "appId", "displayName",
)

# Settings catalog: a child of a group-collection item names its row when its id, after the
# parent id prefix, is one of these (or ends with "_name" / "key").
CATALOG_NATURAL_KEY_SUFFIXES: tuple[str, ...] = ("_name", "key", "keytobereplaced")
CATALOG_NATURAL_KEY_NAMES: frozenset[str] = frozenset({"name", "key"})

# Settings catalog id prefixes stripped when a readable name is made from an id.
CATALOG_ID_PREFIXES: tuple[str, ...] = (
    "device_vendor_msft_policy_config_", "user_vendor_msft_policy_config_", "device_vendor_msft_",
    "user_vendor_msft_", "vendor_msft_",
)

# Tenant-specific text replaced in compare_value.
GUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
TENANT_DOMAIN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\.(?:onmicrosoft\.(?:com|us|de|cn)|partner\.onmschina\.cn)",
                              re.IGNORECASE)
AUTHORITY_TENANT_RE = re.compile(
    r"((?:login\.microsoftonline\.(?:com|us)|login\.windows\.net|sts\.windows\.net|login\.chinacloudapi\.cn"
    r"|login\.partner\.microsoftonline\.cn|login-us\.microsoftonline\.com)/)"
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    re.IGNORECASE,
)
ZERO_GUID = "00000000-0000-0000-0000-000000000000"
TENANT_ID_PLACEHOLDER = "<tenant-id>"
TENANT_DOMAIN_PLACEHOLDER = "<tenant-domain>"
OBJECT_ID_PLACEHOLDER = "<object-id>"
ONBOARDING_PLACEHOLDER = "<onboarding-blob>"

# Words humanize() writes with their brand spelling.
WORD_SPELLINGS: dict[str, str] = {
    "ios": "iOS", "ipados": "iPadOS", "macos": "macOS", "tvos": "tvOS", "visionos": "visionOS",
    "watchos": "watchOS", "icloud": "iCloud", "itunes": "iTunes", "ibooks": "iBooks",
    "imessage": "iMessage", "airdrop": "AirDrop", "airplay": "AirPlay", "facetime": "FaceTime",
    "bitlocker": "BitLocker", "onedrive": "OneDrive", "sharepoint": "SharePoint", "wifi": "Wi-Fi",
    "vpn": "VPN", "pin": "PIN", "os": "OS", "url": "URL", "urls": "URLs", "id": "ID", "ids": "IDs",
    "eula": "EULA", "oobe": "OOBE", "sku": "SKU", "skus": "SKUs", "tpm": "TPM", "wsl": "WSL",
    "eap": "EAP", "ssid": "SSID", "uri": "URI", "esim": "eSIM", "ui": "UI", "sdk": "SDK",
    "windows10": "Windows 10", "aad": "AAD", "dma": "DMA", "rtp": "RTP", "tls": "TLS", "dns": "DNS",
    "ip": "IP", "mdm": "MDM", "mam": "MAM", "oma": "OMA", "ssl": "SSL", "http": "HTTP", "https": "HTTPS",
    "windows": "Windows", "android": "Android", "apple": "Apple", "microsoft": "Microsoft",
    "google": "Google", "intune": "Intune", "defender": "Defender", "entra": "Entra", "azure": "Azure",
    "smartscreen": "SmartScreen", "appleid": "Apple ID", "ntp": "NTP", "usb": "USB", "bios": "BIOS",
}
# Two camelCase words that are one brand name: ("bit", "locker") -> "BitLocker".
PAIR_SPELLINGS: dict[tuple[str, str], str] = {
    ("bit", "locker"): "BitLocker", ("one", "drive"): "OneDrive", ("share", "point"): "SharePoint",
    ("air", "drop"): "AirDrop", ("air", "play"): "AirPlay", ("face", "time"): "FaceTime",
    ("wi", "fi"): "Wi-Fi", ("smart", "screen"): "SmartScreen", ("file", "vault"): "FileVault",
    ("safety", "net"): "SafetyNet", ("game", "center"): "Game Center", ("mac", "os"): "macOS",
    ("face", "id"): "Face ID", ("touch", "id"): "Touch ID", ("i", "pad"): "iPad",
}
