"""Hand-written policy content for shapes the copied corpus does not contain.

Why one module of ~1,000 lines: it is data (hand-written Graph shapes), one function per shape.

The corpus under ``corpus/`` (real exports) has no ``groupSettingInstance``, no secret setting
values, no settings-catalog compliance, no OMA-URI policy, no endpoint-security intents and no
administrative templates with their definitions. Those are written here, in Graph's resource
shape, from the shapes documented by Microsoft and captured from real tenants. Setting ids are
modelled on real CSP / ADMX names; the values are invented. Nothing here is read from disk.

Placeholders replaced per tenant at build time: ``{tenant_guid}`` and ``{tenant_domain}``.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]

_T = "#microsoft.graph.deviceManagementConfiguration"


# --- settings-catalog instance builders (Graph's shape: choice/group values carry no @odata.type)


def choice(def_id: str, suffix: str, *children: JSON) -> JSON:
    return {
        "@odata.type": f"{_T}ChoiceSettingInstance",
        "settingDefinitionId": def_id,
        "settingInstanceTemplateReference": None,
        "auditRuleInformation": None,
        "choiceSettingValue": {
            "settingValueTemplateReference": None,
            "value": f"{def_id}_{suffix}",
            "children": list(children),
        },
    }


def choice_collection(def_id: str, *suffixes: str) -> JSON:
    return {
        "@odata.type": f"{_T}ChoiceSettingCollectionInstance",
        "settingDefinitionId": def_id,
        "settingInstanceTemplateReference": None,
        "auditRuleInformation": None,
        "choiceSettingCollectionValue": [
            {"settingValueTemplateReference": None, "value": f"{def_id}_{s}", "children": []}
            for s in suffixes
        ],
    }


def _simple_value(kind: str, value: Any) -> JSON:
    return {"@odata.type": f"{_T}{kind}SettingValue", "settingValueTemplateReference": None, "value": value}


def simple_string(def_id: str, value: str) -> JSON:
    return {
        "@odata.type": f"{_T}SimpleSettingInstance",
        "settingDefinitionId": def_id,
        "settingInstanceTemplateReference": None,
        "auditRuleInformation": None,
        "simpleSettingValue": _simple_value("String", value),
    }


def simple_integer(def_id: str, value: int) -> JSON:
    inst = simple_string(def_id, "")
    inst["simpleSettingValue"] = _simple_value("Integer", value)
    return inst


def secret(def_id: str, token: str) -> JSON:
    """A secret as Graph returns it: an encrypted-value token, never the secret itself."""
    inst = simple_string(def_id, "")
    inst["simpleSettingValue"] = {
        "@odata.type": f"{_T}SecretSettingValue",
        "settingValueTemplateReference": None,
        "value": token,
        "valueState": "encryptedValueToken",
    }
    return inst


def simple_collection(def_id: str, *values: str | int) -> JSON:
    return {
        "@odata.type": f"{_T}SimpleSettingCollectionInstance",
        "settingDefinitionId": def_id,
        "settingInstanceTemplateReference": None,
        "auditRuleInformation": None,
        "simpleSettingCollectionValue": [
            _simple_value("Integer" if isinstance(v, int) else "String", v) for v in values
        ],
    }


def group(def_id: str, *children: JSON) -> JSON:
    return {
        "@odata.type": f"{_T}GroupSettingInstance",
        "settingDefinitionId": def_id,
        "settingInstanceTemplateReference": None,
        "auditRuleInformation": None,
        "groupSettingValue": {"settingValueTemplateReference": None, "children": list(children)},
    }


def group_collection(def_id: str, *rows: list[JSON]) -> JSON:
    return {
        "@odata.type": f"{_T}GroupSettingCollectionInstance",
        "settingDefinitionId": def_id,
        "settingInstanceTemplateReference": None,
        "auditRuleInformation": None,
        "groupSettingCollectionValue": [
            {"settingValueTemplateReference": None, "children": list(row)} for row in rows
        ],
    }


def _settings(*instances: JSON) -> list[JSON]:
    return [{"id": str(i), "settingInstance": inst} for i, inst in enumerate(instances)]


def _sc_policy(name: str, platforms: str, technologies: str, description: str,
               settings: list[JSON], template: JSON | None = None) -> JSON:
    return {
        "createdDateTime": None,
        "creationSource": None,
        "description": description,
        "lastModifiedDateTime": None,
        "name": name,
        "platforms": platforms,
        "priorityMetaData": None,
        "roleScopeTagIds": ["0"],
        "settingCount": len(settings),
        "technologies": technologies,
        "templateReference": template
        or {"templateId": "", "templateFamily": "none", "templateDisplayName": None,
            "templateDisplayVersion": None},
        "settings": settings,
    }


_WIFI = "com.apple.wifi.managed"
_PFW = "device_vendor_msft_passportforwork_{tenantid}"
_DO = "device_vendor_msft_policy_config_deliveryoptimization"

#: settings-catalog policies (configurationPolicies) written by hand. The first one carries a
#: secret (encryptedValueToken) inside a group collection with two rows, the second a
#: ``groupSettingInstance``, an id containing ``{tenantid}`` and integers and strings.
SETTINGS_CATALOG: list[JSON] = [
    _sc_policy(
        "POC_MAC_D_CO_SBL_MSZT_WiFi_Corporate", "macOS", "mdm,appleRemoteManagement",
        "Corporate and guest Wi-Fi networks (WPA2/WPA3 personal).",
        _settings(
            group_collection(
                f"{_WIFI}_{_WIFI}",
                [
                    simple_string(f"{_WIFI}_ssid_str", "CONTOSO-CORP"),
                    choice(f"{_WIFI}_encryptiontype", "2"),
                    secret(f"{_WIFI}_password", "8c1f5e0a-3b0e-4c55-9d1e-6b4f2a7c9e01"),
                    choice(f"{_WIFI}_autojoin", "true"),
                    choice(f"{_WIFI}_hidden_network", "false"),
                    choice(f"{_WIFI}_proxytype", "0"),
                ],
                [
                    simple_string(f"{_WIFI}_ssid_str", "CONTOSO-GUEST"),
                    choice(f"{_WIFI}_encryptiontype", "1"),
                    secret(f"{_WIFI}_password", "3e9a7d21-5f44-4b8e-a0c3-1d2e4f6a8b02"),
                    choice(f"{_WIFI}_autojoin", "false"),
                    choice(f"{_WIFI}_hidden_network", "false"),
                    choice(f"{_WIFI}_proxytype", "0"),
                ],
            ),
        ),
    ),
    _sc_policy(
        "POC_WIN_D_CO_SBL_MSZT_HelloAndDeliveryOptimization", "windows10", "mdm",
        "Windows Hello for Business (tenant scoped) and Delivery Optimization cache.",
        _settings(
            group_collection(
                _PFW,
                [
                    choice(f"{_PFW}_policies_usepassportforwork", "true"),
                    choice(f"{_PFW}_policies_requiresecuritydevice", "true"),
                    simple_integer(f"{_PFW}_policies_pincomplexity_minimumpinlength", 6),
                    simple_integer(f"{_PFW}_policies_pincomplexity_maximumpinlength", 127),
                    choice(f"{_PFW}_policies_pincomplexity_lowercaseletters", "1"),
                    simple_integer(f"{_PFW}_policies_pincomplexity_expiration", 0),
                ],
            ),
            group(
                f"{_DO}_cachesettings",
                simple_integer(f"{_DO}_domaxcachesize", 20),
                simple_integer(f"{_DO}_domaxcacheage", 604800),
                simple_string(f"{_DO}_docachehost", "do-cache01.{tenant_domain}"),
                simple_integer(f"{_DO}_dominfilesizetocache", 100),
            ),
            choice(
                f"{_DO}_dodownloadmode", "2",
                choice(
                    f"{_DO}_dogroupidsource", "99",
                    simple_string(f"{_DO}_dogroupid", "{tenant_guid}"),
                ),
            ),
            simple_collection(f"{_DO}_docachehostsource_list", "do-cache01", "do-cache02"),
            choice_collection("device_vendor_msft_policy_config_defender_allowedscanfiletypes",
                              "exe", "dll", "ps1"),
        ),
    ),
]

#: settings-catalog compliance (``/deviceManagement/compliancePolicies``), Linux.
COMPLIANCE_V2: list[JSON] = [
    _sc_policy(
        "POC_LNX_D_CO_Compliance_Baseline", "linux", "linuxMdm",
        "Linux device compliance: distribution, encryption and password rules.",
        _settings(
            group_collection(
                "linux_distribution_alloweddistros",
                [
                    choice("linux_distribution_alloweddistros_item_$type", "ubuntu"),
                    simple_string("linux_distribution_alloweddistros_item_minimumversion", "22.04"),
                    simple_string("linux_distribution_alloweddistros_item_maximumversion", "24.04"),
                ],
                [
                    choice("linux_distribution_alloweddistros_item_$type", "redhatenterpriselinux"),
                    simple_string("linux_distribution_alloweddistros_item_minimumversion", "9.0"),
                    simple_string("linux_distribution_alloweddistros_item_maximumversion", "9.9"),
                ],
            ),
            choice("linux_deviceencryption_required", "true"),
            simple_integer("linux_passwordpolicy_minimumlength", 12),
            choice("linux_customcompliance_required", "false"),
        ),
    ),
]

#: root settings that a variant may add to a policy (kind ``extra_setting``), by platform.
EXTRA_SETTINGS: dict[str, list[JSON]] = {
    "windows10": [
        choice("device_vendor_msft_policy_config_experience_allowcortana", "0"),
        choice("device_vendor_msft_policy_config_privacy_letappsaccesscamera", "2"),
        simple_integer("device_vendor_msft_policy_config_devicelock_maxinactivitytimedevicelock", 15),
        choice("device_vendor_msft_policy_config_browser_allowpasswordmanager", "0"),
    ],
    "macOS": [
        choice("com.apple.applicationaccess_allowairdrop", "false"),
        simple_integer("com.apple.screensaver_idletime", 600),
    ],
    "iOS": [
        choice("com.apple.applicationaccess_allowcamera", "true"),
    ],
    "linux": [
        choice("linux_customcompliance_required", "true"),
    ],
}

#: definitions the synthesis cannot infer: names, options that are not configured anywhere,
#: children that exist in the definition but not in any instance.
DEFINITION_HINTS: dict[str, JSON] = {
    f"{_WIFI}_{_WIFI}": {"displayName": "Wi-Fi", "description": "Wi-Fi network payloads."},
    f"{_WIFI}_ssid_str": {"displayName": "SSID", "description": "SSID of the Wi-Fi network."},
    f"{_WIFI}_password": {"displayName": "Password", "description": "Password for the network.",
                          "secret": True},
    f"{_WIFI}_encryptiontype": {
        "displayName": "Encryption Type",
        "options": {"0": "None", "1": "WEP", "2": "WPA/WPA2 Personal", "3": "WPA3 Personal", "4": "Any"},
    },
    f"{_WIFI}_autojoin": {"displayName": "Auto Join"},
    f"{_WIFI}_hidden_network": {"displayName": "Hidden Network"},
    f"{_WIFI}_proxytype": {"displayName": "Proxy Type",
                           "options": {"0": "None", "1": "Manual", "2": "Auto"}},
    _PFW: {"displayName": "Use Windows Hello For Business (Device)",
           "childIds_extra": [f"{_PFW}_policies_pincomplexity_history"]},
    f"{_PFW}_policies_usepassportforwork": {"displayName": "Use Windows Hello For Business"},
    f"{_PFW}_policies_requiresecuritydevice": {"displayName": "Require Security Device"},
    f"{_PFW}_policies_pincomplexity_minimumpinlength": {"displayName": "Minimum PIN Length",
                                                        "min": 4, "max": 127},
    f"{_PFW}_policies_pincomplexity_maximumpinlength": {"displayName": "Maximum PIN Length",
                                                        "min": 4, "max": 127},
    f"{_PFW}_policies_pincomplexity_lowercaseletters": {
        "displayName": "Lowercase Letters",
        "options": {"0": "Allowed", "1": "Required", "2": "Not allowed"},
    },
    f"{_PFW}_policies_pincomplexity_expiration": {"displayName": "Expiration", "min": 0, "max": 730},
    f"{_PFW}_policies_pincomplexity_history": {"displayName": "PIN History", "kind": "integer",
                                               "min": 0, "max": 50},
    f"{_DO}_cachesettings": {"displayName": "Delivery Optimization cache",
                             "childIds_extra": [f"{_DO}_domodifycachedrive"]},
    f"{_DO}_domodifycachedrive": {"displayName": "DO Modify Cache Drive", "kind": "string"},
    f"{_DO}_domaxcachesize": {"displayName": "DO Max Cache Size (percentage)", "min": 1, "max": 100},
    f"{_DO}_domaxcacheage": {"displayName": "DO Max Cache Age (in seconds)", "min": 0, "max": 4294967295},
    f"{_DO}_docachehost": {"displayName": "DO Cache Host"},
    f"{_DO}_dominfilesizetocache": {"displayName": "DO Min File Size To Cache (in MB)", "min": 1,
                                    "max": 100000},
    f"{_DO}_dodownloadmode": {
        "displayName": "DO Download Mode",
        "options": {"0": "HTTP only, no peering", "1": "HTTP blended with peering behind the same NAT",
                    "2": "HTTP blended with peering across a private group",
                    "3": "HTTP blended with Internet peering", "99": "Simple download mode with no peering",
                    "100": "Bypass mode"},
    },
    f"{_DO}_dogroupidsource": {
        "displayName": "DO Group Id Source",
        "options": {"0": "Not Set", "1": "AD site", "2": "Authenticated domain SID", "3": "DHCP user option",
                    "4": "DNS suffix", "5": "Entra ID tenant ID", "99": "Custom group id"},
    },
    f"{_DO}_dogroupid": {"displayName": "DO Group Id"},
    f"{_DO}_docachehostsource_list": {"displayName": "DO Cache Host Names"},
    "device_vendor_msft_policy_config_defender_allowedscanfiletypes": {
        "displayName": "Scanned File Types",
        "options": {"exe": "Executables (.exe)", "dll": "Libraries (.dll)", "ps1": "PowerShell (.ps1)",
                    "js": "JavaScript (.js)", "vbs": "VBScript (.vbs)"},
    },
    "linux_distribution_alloweddistros": {"displayName": "Allowed Distributions"},
    "linux_distribution_alloweddistros_item_$type": {
        "displayName": "Type",
        "options": {"ubuntu": "Ubuntu", "redhatenterpriselinux": "Red Hat Enterprise Linux"},
    },
    "linux_distribution_alloweddistros_item_minimumversion": {"displayName": "Minimum OS version"},
    "linux_distribution_alloweddistros_item_maximumversion": {"displayName": "Maximum OS version"},
    "linux_deviceencryption_required": {"displayName": "Require Device Encryption"},
    "linux_passwordpolicy_minimumlength": {"displayName": "Minimum Password Length", "min": 8,
                                           "max": 64},
    "linux_customcompliance_required": {"displayName": "Require Custom Compliance"},
    "device_vendor_msft_policy_config_experience_allowcortana": {
        "displayName": "Allow Cortana", "options": {"0": "Block", "1": "Allow"}},
    "device_vendor_msft_policy_config_privacy_letappsaccesscamera": {
        "displayName": "Let Apps Access Camera",
        "options": {"0": "User in control", "1": "Force allow", "2": "Force deny"}},
    "device_vendor_msft_policy_config_devicelock_maxinactivitytimedevicelock": {
        "displayName": "Max Inactivity Time Device Lock", "min": 0, "max": 999},
    "device_vendor_msft_policy_config_browser_allowpasswordmanager": {
        "displayName": "Allow Password Manager", "options": {"0": "Block", "1": "Allow"}},
    "com.apple.applicationaccess_allowairdrop": {"displayName": "Allow AirDrop"},
    "com.apple.screensaver_idletime": {"displayName": "Idle Time", "min": 0, "max": 7200},
    "com.apple.applicationaccess_allowcamera": {"displayName": "Allow Camera"},
}


# --- deviceConfigurations -----------------------------------------------------------------

_XML = (
    "PEFwcExvY2tlclBvbGljeSBWZXJzaW9uPSIxIj48UnVsZUNvbGxlY3Rpb24gVHlwZT0iRXhlIiBFbmZvcmNlbWVudE1v"
    "ZGU9IkVuYWJsZWQiIC8+PC9BcHBMb2NrZXJQb2xpY3k+"
)

DEVICE_CONFIGURATIONS: list[JSON] = [
    {
        "@odata.type": "#microsoft.graph.windows10GeneralConfiguration",
        "displayName": "POC_WIN_D_CO_SBL_MSZT_DeviceRestrictions",
        "description": "Windows device restrictions (general configuration).",
        "passwordRequired": True,
        "passwordRequiredType": "alphanumeric",
        "passwordMinimumLength": 12,
        "passwordMinutesOfInactivityBeforeScreenTimeout": 15,
        "passwordExpirationDays": 365,
        "passwordPreviousPasswordBlockCount": 24,
        "passwordBlockSimple": True,
        "passwordSignInFailureCountBeforeFactoryReset": 10,
        "cameraBlocked": False,
        "bluetoothBlocked": False,
        "cortanaBlocked": True,
        "storageBlockRemovableStorage": False,
        "usbBlocked": False,
        "edgeBlockPopups": True,
        "edgeBlockPasswordManager": False,
        "edgeSearchEngine": {"@odata.type": "#microsoft.graph.edgeSearchEngine", "edgeSearchEngineType": "bing"},
        "edgeHomeButtonConfiguration": None,
        "defenderRequireRealTimeMonitoring": True,
        "defenderRequireBehaviorMonitoring": True,
        "defenderScanType": "full",
        "defenderScheduledScanTime": "02:00:00.0000000",
        "defenderScanMaxCpu": 50,
        "defenderSignatureUpdateIntervalInHours": 4,
        "defenderDaysBeforeDeletingQuarantinedMalware": 30,
        "defenderCloudBlockLevel": "high",
        "defenderFileExtensionsToExclude": [".log", ".etl"],
        "defenderProcessesToExclude": [],
        "defenderDetectedMalwareActions": {
            "lowSeverity": "clean",
            "moderateSeverity": "quarantine",
            "highSeverity": "remove",
            "severeSeverity": "block",
        },
        "networkProxyServer": {
            "address": "proxy.{tenant_domain}:8080",
            "exceptions": ["*.{tenant_domain}", "10.*"],
            "useForLocalAddresses": False,
        },
        "privacyAccessControls": [
            {"accessLevel": "forceDeny", "dataCategory": "camera", "appPackageFamilyName": None,
             "appDisplayName": None},
            {"accessLevel": "userInControl", "dataCategory": "location", "appPackageFamilyName": None,
             "appDisplayName": None},
        ],
        "windowsSpotlightConfigureOnLockScreen": "notConfigured",
        "startMenuLayoutXml": None,
        "enterpriseCloudPrintDiscoveryMaximumLimit": None,
        "smartScreenEnableAppInstallControl": True,
        "wiFiScanInterval": None,
        "deviceManagementBlockFactoryResetOnMobile": False,
        "lockScreenTimeoutInSeconds": None,
        "findMyFilesBlocked": False,
        "inkWorkspaceAccess": "notConfigured",
    },
    {
        "@odata.type": "#microsoft.graph.windows10CustomConfiguration",
        "displayName": "POC_WIN_D_CO_Custom_OMA_URI",
        "description": "Custom OMA-URI settings, one of them encrypted.",
        "omaSettings": [
            {"@odata.type": "#microsoft.graph.omaSettingInteger", "displayName": "Active hours max range",
             "description": None, "omaUri": "./Device/Vendor/MSFT/Policy/Config/Update/ActiveHoursMaxRange",
             "secretReferenceValueId": None, "isEncrypted": False, "value": 18, "isReadOnly": False},
            {"@odata.type": "#microsoft.graph.omaSettingBoolean", "displayName": "Allow Cortana",
             "description": None, "omaUri": "./Device/Vendor/MSFT/Policy/Config/Experience/AllowCortana",
             "secretReferenceValueId": None, "isEncrypted": False, "value": False},
            {"@odata.type": "#microsoft.graph.omaSettingString", "displayName": "Start layout pins",
             "description": "Pinned start apps", "omaUri": "./Device/Vendor/MSFT/Policy/Config/Start/ConfigureStartPins",
             "secretReferenceValueId": None, "isEncrypted": False,
             "value": "{\"pinnedList\":[{\"packagedAppId\":\"Microsoft.WindowsTerminal_8wekyb3d8bbwe!App\"}]}"},
            {"@odata.type": "#microsoft.graph.omaSettingStringXml", "displayName": "AppLocker EXE",
             "description": None,
             "omaUri": "./Vendor/MSFT/AppLocker/ApplicationLaunchRestrictions/Contoso/EXE/Policy",
             "secretReferenceValueId": None, "isEncrypted": False, "fileName": "applocker-exe.xml",
             "value": _XML},
            {"@odata.type": "#microsoft.graph.omaSettingDateTime", "displayName": "Quality updates pause start",
             "description": None, "omaUri": "./Device/Vendor/MSFT/Policy/Config/Update/PauseQualityUpdatesStartTime",
             "secretReferenceValueId": None, "isEncrypted": False, "value": "2025-01-15T00:00:00Z"},
            {"@odata.type": "#microsoft.graph.omaSettingFloatingPoint", "displayName": "Scaling factor",
             "description": None, "omaUri": "./Device/Vendor/MSFT/Policy/Config/Display/ScalingFactor",
             "secretReferenceValueId": None, "isEncrypted": False, "value": 1.25},
            {"@odata.type": "#microsoft.graph.omaSettingString", "displayName": "Corporate Wi-Fi profile",
             "description": "WLAN profile with the pre-shared key",
             "omaUri": "./Vendor/MSFT/WiFi/Profile/CONTOSO-CORP/WlanXml",
             "secretReferenceValueId": "{secret_ref}", "isEncrypted": True, "value": "{secret_cipher}"},
        ],
    },
]

#: the plain text the encrypted OMA value stands for (served only with ReadWrite permission).
OMA_SECRET_PLAINTEXT = (
    "<WLANProfile xmlns=\"http://www.microsoft.com/networking/WLAN/profile/v1\"><name>CONTOSO-CORP"
    "</name><MSM><security><sharedKey><keyType>passPhrase</keyType><protected>false</protected>"
    "<keyMaterial>Corp-WiFi-Passphrase-2025!</keyMaterial></sharedKey></security></MSM></WLANProfile>"
)


# --- endpoint security intents --------------------------------------------------------------

_EP = "deviceConfiguration--windows10EndpointProtectionConfiguration"
_GEN = "deviceConfiguration--windows10GeneralConfiguration"

_PROFILE = {
    "firewallEnabled": "allowed",
    "stealthModeBlocked": False,
    "incomingTrafficBlocked": False,
    "unicastResponsesToMulticastBroadcastsBlocked": True,
    "inboundNotificationsBlocked": True,
    "authorizedApplicationRulesFromGroupPolicyMerged": False,
    "globalPortRulesFromGroupPolicyMerged": False,
    "connectionSecurityRulesFromGroupPolicyMerged": False,
    "outboundConnectionsBlocked": False,
    "inboundConnectionsBlocked": True,
    "securedPacketExemptionAllowed": False,
    "policyRulesFromGroupPolicyMerged": False,
}

#: intent templates: ``/deviceManagement/templates/{id}`` and its categories with definitions.
INTENT_TEMPLATES: list[JSON] = [
    {
        "id": "034ccd46-190c-4afc-adf1-ad7cc11262eb",
        "displayName": "MDM Security Baseline for Windows 10 and later for December 2020",
        "description": "MDM Security Baseline for Windows 10 and later",
        "versionInfo": "December 2020",
        "isDeprecated": False,
        "intentCount": 0,
        "templateType": "securityBaseline",
        "platformType": "windows10AndLater",
        "templateSubtype": "none",
        "publishedDateTime": "2020-12-14T00:00:00Z",
        "categories": [
            {
                "id": "0b8e8a4f-6a5c-4a1f-9f0e-5e2d1c3b4a01",
                "displayName": "Microsoft Defender",
                "settings": [
                    (f"{_GEN}_defenderRequireRealTimeMonitoring", "boolean", "Turn on real-time protection"),
                    (f"{_GEN}_defenderScanType", "string", "Defender scan type"),
                    (f"{_EP}_defenderAttackSurfaceReductionExcludedPaths", "collection",
                     "Attack Surface Reduction only exclusions"),
                ],
            },
            {
                "id": "1c9f9b50-7b6d-4b20-8a1f-6f3e2d4c5b02",
                "displayName": "Device Lock",
                "settings": [
                    (f"{_GEN}_passwordMinimumLength", "integer", "Minimum password length"),
                    (f"{_GEN}_edgeBlockPopups", "boolean", "Block pop-ups"),
                ],
            },
            {
                "id": "2da0ac61-8c7e-4c31-9b20-7a4f3e5d6c03",
                "displayName": "BitLocker",
                "settings": [
                    (f"{_EP}_bitLockerSystemDrivePolicy", "complex", "BitLocker system drive policy"),
                    (f"{_EP}_bitLockerRemovableDrivePolicy", "abstractComplex",
                     "BitLocker removable drive policy"),
                ],
            },
        ],
    },
    {
        "id": "4356d05c-a4ab-4a07-9ece-739f7c792910",
        "displayName": "Microsoft Defender Firewall",
        "description": "Windows Defender Firewall settings",
        "versionInfo": "Version 1",
        "isDeprecated": False,
        "intentCount": 0,
        "templateType": "endpointSecurityFirewall",
        "platformType": "windows10AndLater",
        "templateSubtype": "firewall",
        "publishedDateTime": "2019-11-04T00:00:00Z",
        "categories": [
            {
                "id": "3eb1bd72-9d8f-4d42-8c31-8b5f4f6e7d04",
                "displayName": "Firewall",
                "settings": [
                    (f"{_EP}_firewallBlockStatefulFTP", "boolean", "Stateful File Transfer Protocol (FTP)"),
                    (f"{_EP}_firewallIdleTimeoutForSecurityAssociationInSeconds", "integer",
                     "Number of seconds a security association can be idle before it's deleted"),
                    (f"{_EP}_firewallPreSharedKeyEncodingMethod", "string", "Preshared key encoding"),
                    (f"{_EP}_firewallCertificateRevocationListCheckMethod", "string",
                     "Certificate revocation list (CRL) verification"),
                ],
            },
            {
                "id": "4fc2ce83-ae90-4e53-9d42-9c6a5a7f8e05",
                "displayName": "Firewall profiles",
                "settings": [
                    (f"{_EP}_firewallProfileDomain", "complex", "Domain (workplace) network"),
                    (f"{_EP}_firewallProfilePrivate", "complex", "Private (discoverable) network"),
                    (f"{_EP}_firewallProfilePublic", "complex", "Public (non-discoverable) network"),
                ],
            },
        ],
    },
]

#: intents (``/deviceManagement/intents``): (definition id, instance type, value). ``None`` values
#: are sent as valueJson ``"null"`` (not configured), as Graph does.
INTENTS: list[JSON] = [
    {
        "displayName": "POC_WIN_D_CO_Baseline_MDM_Security_2020",
        "description": "Security baseline (legacy intent).",
        "templateId": "034ccd46-190c-4afc-adf1-ad7cc11262eb",
        "settings": [
            (f"{_GEN}_defenderRequireRealTimeMonitoring", "Boolean", True),
            (f"{_GEN}_defenderScanType", "String", "full"),
            (f"{_EP}_defenderAttackSurfaceReductionExcludedPaths", "Collection",
             ["C:\\Tools\\*", "%ProgramData%\\Contoso\\*"]),
            (f"{_GEN}_passwordMinimumLength", "Integer", 14),
            (f"{_GEN}_edgeBlockPopups", "Boolean", None),
            (f"{_EP}_bitLockerSystemDrivePolicy", "Complex", {
                "encryptionMethod": "xtsAes256", "startupAuthenticationRequired": True,
                "startupAuthenticationBlockWithoutTpmChip": True, "minimumPinLength": 6,
                "recoveryOptions": {"recoveryKeyUsage": "allowed", "hideRecoveryOptions": True,
                                    "enableBitLockerAfterRecoveryInformationToStore": True},
            }),
            (f"{_EP}_bitLockerRemovableDrivePolicy", "AbstractComplex", {
                "@odata.type": "#microsoft.graph.bitLockerRemovableDrivePolicy",
                "encryptionMethod": "aesCbc256", "requireEncryptionForWriteAccess": True,
                "blockCrossOrganizationWriteAccess": False,
            }),
        ],
    },
    {
        "displayName": "POC_WIN_D_CO_ES_Firewall_Legacy",
        "description": "Endpoint security firewall (legacy intent).",
        "templateId": "4356d05c-a4ab-4a07-9ece-739f7c792910",
        "settings": [
            (f"{_EP}_firewallBlockStatefulFTP", "Boolean", True),
            (f"{_EP}_firewallIdleTimeoutForSecurityAssociationInSeconds", "Integer", 300),
            (f"{_EP}_firewallPreSharedKeyEncodingMethod", "String", "utF8"),
            (f"{_EP}_firewallCertificateRevocationListCheckMethod", "String", "deviceDefault"),
            (f"{_EP}_firewallProfileDomain", "Complex", dict(_PROFILE)),
            (f"{_EP}_firewallProfilePrivate", "Complex", dict(_PROFILE, inboundConnectionsBlocked=False)),
            (f"{_EP}_firewallProfilePublic", "Complex", dict(_PROFILE, stealthModeBlocked=True)),
        ],
    },
]


# --- administrative templates (groupPolicyConfigurations) ------------------------------------

#: group policy definitions with their presentations (ids invented, shapes as Graph returns them).
GP_DEFINITIONS: list[JSON] = [
    {
        "id": "6f1d3a2b-0c4e-4e7a-9a51-2b8c7d6e5f01",
        "displayName": "\u202fAllow users to contact Microsoft for feedback and support",
        "explainText": "This setting specifies whether users can contact Microsoft through the sync app.",
        "categoryPath": "\\OneDrive",
        "classType": "machine",
        "policyType": "admxIngested",
        "supportedOn": "At least Windows Server 2008 R2 or Windows 7",
        "presentations": [
            {"@odata.type": "#microsoft.graph.groupPolicyPresentationText",
             "id": "7a2e4b3c-1d5f-4f8b-8b62-3c9d8e7f6a01", "label": "Allow users to contact Microsoft to: "},
            {"@odata.type": "#microsoft.graph.groupPolicyPresentationCheckBox",
             "id": "8b3f5c4d-2e6a-4a9c-9c73-4dae9f8a7b02", "label": "Send Feedback", "defaultChecked": True},
            {"@odata.type": "#microsoft.graph.groupPolicyPresentationCheckBox",
             "id": "9c4a6d5e-3f7b-4bad-8d84-5ebfa09b8c03", "label": "Receive user satisfaction surveys",
             "defaultChecked": True},
            {"@odata.type": "#microsoft.graph.groupPolicyPresentationCheckBox",
             "id": "ad5b7e6f-4a8c-4cbe-9e95-6fc0b1ac9d04", "label": "Contact OneDrive Support",
             "defaultChecked": True},
        ],
    },
    {
        "id": "7a2e4b3c-1d5f-4f8b-9b62-3c9d8e7f6a02",
        "displayName": "Silently move Windows known folders to OneDrive",
        "explainText": "Redirects Desktop, Documents and Pictures to OneDrive without user interaction.",
        "categoryPath": "\\OneDrive",
        "classType": "machine",
        "policyType": "admxIngested",
        "supportedOn": "At least Windows Server 2008 R2 or Windows 7",
        "presentations": [
            {"@odata.type": "#microsoft.graph.groupPolicyPresentationTextBox",
             "id": "be6c8f7a-5b9d-4dcf-8fa6-7ad1c2bdae05", "label": "Tenant ID:", "defaultValue": "",
             "maxLength": 1023, "required": True},
            {"@odata.type": "#microsoft.graph.groupPolicyPresentationDropdownList",
             "id": "cf7d9a8b-6cae-4ed0-9ab7-8be2d3cebf06",
             "label": "Show notification to users after folders have been redirected:",
             "required": True, "defaultItem": {"displayName": "No", "value": "0"},
             "items": [{"displayName": "No", "value": "0"}, {"displayName": "Yes", "value": "1"}]},
        ],
    },
    {
        "id": "8b3f5c4d-2e6a-4a9c-8c73-4dae9f8a7b03",
        "displayName": "Specify the maximum log file size (KB)",
        "explainText": "Specifies the maximum size of the log file in kilobytes.",
        "categoryPath": "\\Windows Components\\Event Log Service\\Application",
        "classType": "machine",
        "policyType": "admxBacked",
        "supportedOn": "At least Windows Vista",
        "presentations": [
            {"@odata.type": "#microsoft.graph.groupPolicyPresentationDecimalTextBox",
             "id": "d08eab9c-7dbf-4fe1-8bc8-9cf3e4dfc007", "label": "Maximum Log Size (KB)",
             "defaultValue": 1024, "minValue": 1024, "maxValue": 2147483647, "required": True,
             "spin": True, "spinStep": 1},
        ],
    },
    {
        "id": "9c4a6d5e-3f7b-4bad-9d84-5ebfa09b8c04",
        "displayName": "Control Event Log behavior when the log file reaches its maximum size",
        "explainText": "Controls Event Log behavior when the log file reaches its maximum size.",
        "categoryPath": "\\Windows Components\\Event Log Service\\Application",
        "classType": "machine",
        "policyType": "admxBacked",
        "supportedOn": "At least Windows Vista",
        "presentations": [],
    },
    {
        "id": "ad5b7e6f-4a8c-4cbe-8e95-6fc0b1ac9d05",
        "displayName": "Allow automatic full screen on specified sites",
        "explainText": "Sites in this list may enter full screen mode automatically.",
        "categoryPath": "\\Microsoft Edge\\Content settings",
        "classType": "machine",
        "policyType": "admxIngested",
        "supportedOn": "Microsoft Edge version 120, Windows 7 or later",
        "presentations": [
            {"@odata.type": "#microsoft.graph.groupPolicyPresentationListBox",
             "id": "e19fbcad-8ec0-4af2-9cd9-adf4f5e0d108",
             "label": "Allow automatic full screen on specified sites", "explicitValue": False,
             "valuePrefix": ""},
        ],
    },
    {
        "id": "be6c8f7a-5b9d-4dcf-9fa6-7ad1c2bdae06",
        "displayName": "Control which extensions are installed silently",
        "explainText": "Extensions listed are installed silently and cannot be removed by the user.",
        "categoryPath": "\\Microsoft Edge\\Extensions",
        "classType": "machine",
        "policyType": "admxIngested",
        "supportedOn": "Microsoft Edge version 77, Windows 7 or later",
        "presentations": [
            {"@odata.type": "#microsoft.graph.groupPolicyPresentationListBox",
             "id": "f2a0cdbe-9fd1-4b03-8dea-be05a6f1e209", "label": "Extension/App IDs and update URLs",
             "explicitValue": True, "valuePrefix": ""},
        ],
    },
    {
        "id": "cf7d9a8b-6cae-4ed0-8ab7-8be2d3cebf07",
        "displayName": "Set disk cache size, in bytes",
        "explainText": "Configures the size of the cache that Microsoft Edge uses to store files on disk.",
        "categoryPath": "\\Microsoft Edge",
        "classType": "user",
        "policyType": "admxIngested",
        "supportedOn": "Microsoft Edge version 77, Windows 7 or later",
        "presentations": [
            {"@odata.type": "#microsoft.graph.groupPolicyPresentationLongDecimalTextBox",
             "id": "03b1decf-a0e2-4c14-9efb-cf16b7a2f30a", "label": "Set disk cache size, in bytes",
             "defaultValue": 0, "minValue": 0, "maxValue": 9223372036854775807, "required": False,
             "spin": True, "spinStep": 1},
        ],
    },
    {
        "id": "d08eab9c-7dbf-4fe1-9bc8-9cf3e4dfc008",
        "displayName": "Exclude specific kinds of files from being uploaded",
        "explainText": "File name patterns that the sync app does not upload.",
        "categoryPath": "\\OneDrive",
        "classType": "machine",
        "policyType": "admxIngested",
        "supportedOn": "At least Windows Server 2008 R2 or Windows 7",
        "presentations": [
            {"@odata.type": "#microsoft.graph.groupPolicyPresentationMultiTextBox",
             "id": "14c2efd0-b1f3-4d25-8f0c-d027c8b3a40b", "label": "Keywords:", "maxLength": 1023,
             "maxStrings": 0, "required": True},
        ],
    },
]

#: administrative template policies: (definition id, enabled, {presentation id: value}).
GP_CONFIGURATIONS: list[JSON] = [
    {
        "displayName": "POC_WIN_D_CO_ADMX_OneDrive",
        "description": "OneDrive sync app (ADMX ingested).",
        "definitionValues": [
            ("6f1d3a2b-0c4e-4e7a-9a51-2b8c7d6e5f01", True, {
                "8b3f5c4d-2e6a-4a9c-9c73-4dae9f8a7b02": True,
                "9c4a6d5e-3f7b-4bad-8d84-5ebfa09b8c03": False,
                "ad5b7e6f-4a8c-4cbe-9e95-6fc0b1ac9d04": True,
            }),
            ("7a2e4b3c-1d5f-4f8b-9b62-3c9d8e7f6a02", True, {
                "be6c8f7a-5b9d-4dcf-8fa6-7ad1c2bdae05": "{tenant_guid}",
                "cf7d9a8b-6cae-4ed0-9ab7-8be2d3cebf06": "1",
            }),
            ("d08eab9c-7dbf-4fe1-9bc8-9cf3e4dfc008", True, {
                "14c2efd0-b1f3-4d25-8f0c-d027c8b3a40b": ["*.pst", "*.ost", "~$*"],
            }),
        ],
    },
    {
        "displayName": "POC_WIN_D_CO_ADMX_Edge",
        "description": "Microsoft Edge (ADMX ingested).",
        "definitionValues": [
            ("ad5b7e6f-4a8c-4cbe-8e95-6fc0b1ac9d05", True, {
                "e19fbcad-8ec0-4af2-9cd9-adf4f5e0d108": [("https://www.{tenant_domain}", None),
                                                         ("[*.]contoso.edu", None)],
            }),
            ("be6c8f7a-5b9d-4dcf-9fa6-7ad1c2bdae06", True, {
                "f2a0cdbe-9fd1-4b03-8dea-be05a6f1e209": [
                    ("1", "odfafepnkmbhccpbejgmiehpchacaeak;https://edge.microsoft.com/extensionwebstorebase/v1/crx"),
                    ("2", "ghbmnnjooekpmoecnnnilnnbdlolhkhi;https://clients2.google.com/service/update2/crx"),
                ],
            }),
            ("cf7d9a8b-6cae-4ed0-8ab7-8be2d3cebf07", True, {
                "03b1decf-a0e2-4c14-9efb-cf16b7a2f30a": 5368709120,
            }),
        ],
    },
    {
        "displayName": "POC_WIN_D_CO_ADMX_EventLog",
        "description": "Event log sizes (ADMX backed).",
        "definitionValues": [
            ("8b3f5c4d-2e6a-4a9c-8c73-4dae9f8a7b03", True, {
                "d08eab9c-7dbf-4fe1-8bc8-9cf3e4dfc007": 32768,
            }),
            ("9c4a6d5e-3f7b-4bad-9d84-5ebfa09b8c04", False, {}),
        ],
    },
]


# --- app protection: targeted apps -------------------------------------------------------------

IOS_APPS: list[str] = [
    "com.microsoft.office.outlook", "com.microsoft.skype.teams", "com.microsoft.office.word",
    "com.microsoft.office.excel", "com.microsoft.office.powerpoint", "com.microsoft.onenote",
    "com.microsoft.sharepoint", "com.microsoft.skydrive", "com.microsoft.msedge",
    "com.microsoft.officemobile", "com.microsoft.to-do", "com.microsoft.plannermobile",
]
ANDROID_APPS: list[str] = [
    "com.microsoft.office.outlook", "com.microsoft.teams", "com.microsoft.office.word",
    "com.microsoft.office.excel", "com.microsoft.office.powerpoint", "com.microsoft.office.onenote",
    "com.microsoft.sharepoint", "com.microsoft.skydrive", "com.microsoft.emmx",
    "com.microsoft.office.officehubrow", "com.microsoft.todos", "com.microsoft.planner",
]


# --- directory objects referenced by assignments --------------------------------------------

GROUP_NAMES: list[str] = [
    "SG-Intune-Windows-Devices", "SG-Intune-Windows-Pilot", "SG-Intune-macOS-Devices",
    "SG-Intune-iOS-Devices", "SG-Intune-Android-Devices", "SG-Intune-All-Users",
    "SG-Intune-Excluded-Devices", "SG-Intune-VIP-Users", "SG-Intune-Kiosk-Devices",
    "SG-Intune-Break-Glass",
]

#: (displayName, platform, rule)
ASSIGNMENT_FILTERS: list[tuple[str, str, str]] = [
    ("FLT-Windows-Corporate", "windows10AndLater", '(device.deviceOwnership -eq "Corporate")'),
    ("FLT-Windows-Virtual", "windows10AndLater", '(device.model -contains "Virtual")'),
    ("FLT-macOS-Corporate", "macOS", '(device.deviceOwnership -eq "Corporate")'),
    ("FLT-iOS-Supervised", "iOS", '(device.enrollmentProfileName -startsWith "ADE")'),
    ("FLT-Android-Work-Profile", "androidForWork", '(device.manufacturer -ne "Contoso")'),
]


# --- scripts, Autopilot, Windows update profiles -----------------------------------------------

_PS_RENAME = (
    "IyBSZW5hbWUgdGhlIGRldmljZSB0byB0aGUgY29ycG9yYXRlIHNjaGVtZQokc2VyaWFsID0gKEdldC1DaW1JbnN0YW5j"
    "ZSBXaW4zMl9CSU9TKS5TZXJpYWxOdW1iZXIKUmVuYW1lLUNvbXB1dGVyIC1OZXdOYW1lICgiQ1RTLSIgKyAkc2VyaWFs"
    "KSAtRm9yY2UK"
)
_PS_DEFENDER = (
    "IyBFbnN1cmUgRGVmZW5kZXIgc2lnbmF0dXJlcyBhcmUgY3VycmVudApVcGRhdGUtTXBTaWduYXR1cmUgLVVwZGF0ZVNv"
    "dXJjZSBNaWNyb3NvZnRVcGRhdGVTZXJ2ZXIKU2V0LU1wUHJlZmVyZW5jZSAtUFVBUHJvdGVjdGlvbiBFbmFibGVkCg=="
)

DEVICE_MANAGEMENT_SCRIPTS: list[JSON] = [
    {"displayName": "POC_WIN_D_CO_Script_DeviceRename", "description": "Renames devices to CTS-<serial>.",
     "scriptContent": _PS_RENAME, "runAsAccount": "system", "enforceSignatureCheck": False,
     "fileName": "Rename-Device.ps1", "runAs32Bit": False},
    {"displayName": "POC_WIN_D_CO_Script_DefenderSignatures", "description": "Updates Defender signatures.",
     "scriptContent": _PS_DEFENDER, "runAsAccount": "system", "enforceSignatureCheck": True,
     "fileName": "Update-DefenderSignatures.ps1", "runAs32Bit": False},
]

AUTOPILOT_PROFILES: list[JSON] = [
    {"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile",
     "displayName": "POC_WIN_D_CO_Autopilot_UserDriven", "description": "User-driven Entra joined.",
     "language": "os-default", "locale": "os-default", "extractHardwareHash": True,
     "hardwareHashExtractionEnabled": True, "deviceNameTemplate": "CTS-%SERIAL%", "deviceType": "windowsPc",
     "enableWhiteGlove": True, "preprovisioningAllowed": True, "managementServiceAppId": None,
     "outOfBoxExperienceSettings": {"hidePrivacySettings": True, "hideEULA": True, "userType": "standard",
                                    "deviceUsageType": "singleUser", "skipKeyboardSelectionPage": True,
                                    "hideEscapeLink": True},
     "outOfBoxExperienceSetting": {"privacySettingsHidden": True, "eulaHidden": True, "userType": "standard",
                                   "deviceUsageType": "singleUser", "keyboardSelectionPageSkipped": True,
                                   "escapeLinkHidden": True},
     "enrollmentStatusScreenSettings": None},
]

FEATURE_UPDATE_PROFILES: list[JSON] = [
    {"displayName": "POC_WIN_D_CO_FeatureUpdate_24H2", "description": "Hold devices on Windows 11 24H2.",
     "featureUpdateVersion": "Windows 11, version 24H2",
     "deployableContentDisplayName": "Windows 11, version 24H2", "endOfSupportDate": "2026-10-13T00:00:00Z",
     "installLatestWindows10OnWindows11IneligibleDevice": False, "installFeatureUpdatesOptional": False,
     "rolloutSettings": {"offerStartDateTimeInUTC": None, "offerEndDateTimeInUTC": None,
                         "offerIntervalInDays": None}},
]

QUALITY_UPDATE_PROFILES: list[JSON] = [
    {"displayName": "POC_WIN_D_CO_Expedite_2025_01", "description": "Expedite the January 2025 security update.",
     "releaseDateDisplayName": "January 14, 2025 - 2025.01 B",
     "deployableContentDisplayName": "2025.01 B Security Updates for Windows 10 and later",
     "expeditedUpdateSettings": {"qualityUpdateRelease": "2025-01-14T00:00:00Z", "daysUntilForcedReboot": 1}},
]

DRIVER_UPDATE_PROFILES: list[JSON] = [
    {"displayName": "POC_WIN_D_CO_Drivers_Manual", "description": "Drivers approved by hand.",
     "approvalType": "manual", "deviceReporting": 0, "newUpdates": 0, "deploymentDeferralInDays": None,
     "inventorySyncStatus": {"lastSuccessfulSyncDateTime": "2025-01-20T04:11:52Z",
                             "driverInventorySyncState": "success"}},
]


# --- shapes only knobs add (GraphSimulator.unsupported_device_configurations / mixed_app_policies)
# Property names and types from the Graph beta resource pages (microsoft-graph-docs-contrib
# api-reference/beta/resources/intune-deviceconfig-unsupporteddeviceconfiguration.md,
# intune-mam-windowsmanagedappprotection.md, intune-mam-windowsinformationprotectionpolicy.md,
# intune-mam-mdmwindowsinformationprotectionpolicy.md, intune-mam-targetedmanagedappconfiguration.md);
# the values are invented.

#: deviceConfigurations items Graph cannot represent; CIPP-API reads their originalEntityTypeName
#: (Modules/CIPPCore/Public/New-CIPPTemplateRun.ps1). The original type names are examples.
UNSUPPORTED_DEVICE_CONFIGURATIONS: list[JSON] = [
    {
        "@odata.type": "#microsoft.graph.unsupportedDeviceConfiguration",
        "displayName": "Legacy kiosk profile (unsupported)",
        "description": "Created in a portal version Graph cannot represent",
        "roleScopeTagIds": ["0"], "supportsScopeTags": True,
        "deviceManagementApplicabilityRuleOsEdition": None, "deviceManagementApplicabilityRuleOsVersion": None,
        "deviceManagementApplicabilityRuleDeviceMode": None, "version": 3,
        "originalEntityTypeName": "windows10XVpnConfiguration",
        "details": [{"@odata.type": "microsoft.graph.unsupportedDeviceConfigurationDetail",
                     "message": "The profile type is not supported by this API version.",
                     "propertyName": ""}],
    },
    {
        "@odata.type": "#microsoft.graph.unsupportedDeviceConfiguration",
        "displayName": "Old Wi-Fi import (unsupported)",
        "description": "",
        "roleScopeTagIds": ["0"], "supportsScopeTags": False,
        "deviceManagementApplicabilityRuleOsEdition": None, "deviceManagementApplicabilityRuleOsVersion": None,
        "deviceManagementApplicabilityRuleDeviceMode": None, "version": 1,
        "originalEntityTypeName": "windows81WifiImportConfiguration",
        "details": [],
    },
]

#: collection -> resource: one of each extra kind that managedAppPolicies lists beside iOS and
#: Android protection (IntuneManagement Extensions/EndpointManager.psm1: app configurations are
#: "also included in the managedAppPolicies API").
MIXED_APP_POLICIES: dict[str, JSON] = {
    "windowsManagedAppProtections": {
        "@odata.type": "#microsoft.graph.windowsManagedAppProtection",
        "displayName": "WIN_U_AppProtection_Edge", "description": "Edge on unenrolled Windows",
        "roleScopeTagIds": ["0"], "version": "\"1\"", "isAssigned": True, "deployedAppCount": 1,
        "printBlocked": True, "allowedInboundDataTransferSources": "allApps",
        "allowedOutboundClipboardSharingLevel": "none", "allowedOutboundDataTransferDestinations": "none",
        "appActionIfUnableToAuthenticateUser": "block", "maximumAllowedDeviceThreatLevel": "secured",
        "mobileThreatDefenseRemediationAction": "block", "minimumRequiredAppVersion": "120.0.0.0",
        "minimumRequiredOsVersion": "10.0.19045", "minimumWarningAppVersion": None,
        "minimumWarningOsVersion": None, "minimumWipeAppVersion": None, "minimumWipeOsVersion": None,
        "minimumRequiredSdkVersion": None, "minimumWipeSdkVersion": None,
        "periodOfflineBeforeAccessCheck": "PT12H", "periodOfflineBeforeWipeIsEnforced": "P90D",
    },
    "windowsInformationProtectionPolicies": {
        "@odata.type": "#microsoft.graph.windowsInformationProtectionPolicy",
        "displayName": "WIN_U_WIP_WithoutEnrollment", "description": "",
        "roleScopeTagIds": ["0"], "version": "\"1\"", "isAssigned": True,
        "enforcementLevel": "encryptAndAuditOnly", "enterpriseDomain": "{tenant_domain}",
        "protectionUnderLockConfigRequired": False, "revokeOnUnenrollDisabled": False,
        "azureRightsManagementServicesAllowed": False, "iconsVisible": True, "indexingEncryptedStoresOrItemsBlocked": False,
        "enterpriseProtectedDomainNames": [{"@odata.type": "microsoft.graph.windowsInformationProtectionResourceCollection",
                                            "displayName": "domains", "resources": ["{tenant_domain}"]}],
        "protectedApps": [{"@odata.type": "#microsoft.graph.windowsInformationProtectionStoreApp",
                           "displayName": "Microsoft Edge", "publisherName": "O=MICROSOFT CORPORATION",
                           "productName": "Microsoft.MicrosoftEdge", "denied": False}],
        "revokeOnMdmHandoffDisabled": False, "mdmEnrollmentUrl": "", "windowsHelloForBusinessBlocked": False,
        "pinMinimumLength": 6, "pinExpirationDays": 0, "numberOfPastPinsRemembered": 0,
        "passwordMaximumAttemptCount": 10, "minutesOfInactivityBeforeDeviceLock": 15,
    },
    "mdmWindowsInformationProtectionPolicies": {
        "@odata.type": "#microsoft.graph.mdmWindowsInformationProtectionPolicy",
        "displayName": "WIN_D_WIP_Enrolled", "description": "",
        "roleScopeTagIds": ["0"], "version": "\"1\"", "isAssigned": False,
        "enforcementLevel": "encryptAuditAndBlock", "enterpriseDomain": "{tenant_domain}",
        "protectionUnderLockConfigRequired": True, "revokeOnUnenrollDisabled": False,
        "azureRightsManagementServicesAllowed": False, "iconsVisible": True,
        "protectedApps": [], "exemptApps": [],
    },
    "targetedManagedAppConfigurations": {
        "@odata.type": "#microsoft.graph.targetedManagedAppConfiguration",
        "displayName": "IOS_U_AppConfig_Outlook", "description": "Outlook settings for managed apps",
        "roleScopeTagIds": ["0"], "version": "\"1\"", "isAssigned": True, "deployedAppCount": 1,
        "customSettings": [
            {"@odata.type": "microsoft.graph.keyValuePair", "name": "com.microsoft.outlook.EmailProfile.AccountType",
             "value": "ModernAuth"},
            {"@odata.type": "microsoft.graph.keyValuePair", "name": "com.microsoft.outlook.Mail.FocusedInbox",
             "value": "false"},
        ],
    },
}


# --- portal extras: what the portal shows beside the policies above (issue 10) ------------------
# Property names and types from the Graph beta resource pages (microsoft-graph-docs-contrib
# api-reference/beta/resources/): intune-deviceconfig-iostrustedrootcertificate,
# -macostrustedrootcertificate (certFileName, trustedRootCertificate Binary, deploymentChannel),
# intune-shared-windowsdomainjoinconfiguration (activeDirectoryDomainName, computerNameStaticPrefix,
# computerNameSuffixRandomCharCount, organizationalUnit), intune-enrollment-
# activedirectorywindowsautopilotdeploymentprofile (hybridAzureADJoinSkipConnectivityCheck),
# intune-apps-iosmobileappconfiguration (targetedMobileApps, encodedSettingXml, settings of
# appConfigurationSettingItem {appConfigKey, appConfigKeyType, appConfigKeyValue}) and
# intune-softwareupdate-windowsqualityupdatepolicy (hotpatchEnabled). Values are invented for the
# demo; the certificate bytes are a placeholder, not a certificate.
_PLACEHOLDER_CERT = "U2ltdWxhdGVkIHJvb3QgY2VydGlmaWNhdGUgKG5vdCBhIGNlcnRpZmljYXRlKQ=="

#: certificate profiles the Wi-Fi templates link to, by the Wi-Fi profile's @odata.type:
#: (navigation property, many, trusted-root profile resource)
LINKED_CERTIFICATES: dict[str, tuple[str, bool, JSON]] = {
    "#microsoft.graph.iosEnterpriseWiFiConfiguration": ("rootCertificatesForServerValidation", True, {
        "@odata.type": "#microsoft.graph.iosTrustedRootCertificate",
        "displayName": "POC_IOS_D_CO_TrustedRoot_RadiusCA", "description": None,
        "certFileName": "radius-ca.cer", "trustedRootCertificate": _PLACEHOLDER_CERT}),
    "#microsoft.graph.macOSEnterpriseWiFiConfiguration": ("rootCertificatesForServerValidation", True, {
        "@odata.type": "#microsoft.graph.macOSTrustedRootCertificate",
        "displayName": "POC_MAC_D_CO_TrustedRoot_RadiusCA", "description": None,
        "certFileName": "radius-ca.cer", "trustedRootCertificate": _PLACEHOLDER_CERT,
        "deploymentChannel": "deviceChannel"}),
}

DOMAIN_JOIN_CONFIGURATION: JSON = {
    "@odata.type": "#microsoft.graph.windowsDomainJoinConfiguration",
    "displayName": "POC_WIN_D_CO_DomainJoin_Hybrid", "description": "Offline domain join for hybrid Autopilot",
    "activeDirectoryDomainName": "ad.example.org", "computerNameStaticPrefix": "CTS-",
    "computerNameSuffixRandomCharCount": 8, "organizationalUnit": "OU=Autopilot,DC=ad,DC=example,DC=org",
}

HYBRID_AUTOPILOT_PROFILE: JSON = {
    "@odata.type": "#microsoft.graph.activeDirectoryWindowsAutopilotDeploymentProfile",
    "displayName": "POC_WIN_D_CO_Autopilot_Hybrid", "description": "User-driven hybrid joined.",
    "language": "os-default", "locale": "os-default", "extractHardwareHash": False,
    "hardwareHashExtractionEnabled": False, "deviceNameTemplate": "", "deviceType": "windowsPc",
    "enableWhiteGlove": False, "preprovisioningAllowed": False, "managementServiceAppId": None,
    "hybridAzureADJoinSkipConnectivityCheck": True,
    "outOfBoxExperienceSettings": {"hidePrivacySettings": True, "hideEULA": True, "userType": "standard",
                                   "deviceUsageType": "singleUser", "skipKeyboardSelectionPage": True,
                                   "hideEscapeLink": True},
    "enrollmentStatusScreenSettings": None,
}

MOBILE_APP_CONFIGURATIONS: list[JSON] = [
    {"@odata.type": "#microsoft.graph.iosMobileAppConfiguration",
     "displayName": "POC_IOS_D_CO_AppConfig_Outlook", "description": "Outlook for iOS on enrolled devices",
     "roleScopeTagIds": ["0"], "version": 1,
     "targetedMobileApps": ["6c7b3ef6-4a4c-4a4a-9e4e-6a8f6f7d1c01"], "encodedSettingXml": None,
     "settings": [
         {"appConfigKey": "com.microsoft.outlook.EmailProfile.EmailAddress", "appConfigKeyType": "stringType",
          "appConfigKeyValue": "{{mail}}"},
         {"appConfigKey": "com.microsoft.outlook.Mail.FocusedInbox", "appConfigKeyType": "booleanType",
          "appConfigKeyValue": "false"},
         {"appConfigKey": "IntuneMAMAllowedAccountsOnly", "appConfigKeyType": "stringType",
          "appConfigKeyValue": "Enabled"},
     ]},
]

QUALITY_UPDATE_POLICIES: list[JSON] = [
    {"displayName": "POC_WIN_D_CO_QualityUpdates_Hotpatch", "description": "Monthly quality updates with hotpatch.",
     "hotpatchEnabled": True},
]
