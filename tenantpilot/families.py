"""Policy families: the one table of family ids, labels, the Graph types and collections of each, and its platform rules.

A family is what the `policy_type` column holds. Flatten (detection), store (run types), the pages,
compare (match scope), the CSV and the CLI all read this table; nothing else spells a family or its
label. The Graph simulator (graphsim/) keeps its own copy on purpose, as an independent check.

Per family:
* `collections`: Graph collections (last path segment of a list endpoint or of an @odata.context)
  whose resources belong to it.
* `types`: @odata.type rules (without "#microsoft.graph."): (kind, text) with kind "eq" (whole
  name), "in" (substring) or "end" (suffix). TYPE_RULES orders them across families: first match wins.
* `platform`: the platform of a policy that does not say (Windows-only families).
* `scope`: how compare tells one setting key apart from the same key elsewhere: "name" (each object is
  a thing of its own, matched across tenants by its name: an app, a filter, a conditional-access
  policy; the flattener starts every key with `[<name>]/`, so two apps' versions never conflict), "type" (keys are
  bare property paths: `passwordRequired` of a Windows and of an iOS compliance policy differ, so the
  short @odata.type is part of the match), "platform" (keys are setting-definition ids, but Apple's
  ids are shared by iOS and macOS profiles, which apply to different devices), or "" (definition
  ids that only exist on one platform).
"""

from __future__ import annotations

from dataclasses import dataclass

SETTINGS_CATALOG = "settingsCatalog"
COMPLIANCE_V2 = "complianceV2"
DEVICE_CONFIGURATION = "deviceConfiguration"
COMPLIANCE = "compliance"
ENDPOINT_SECURITY_INTENT = "endpointSecurityIntent"
ADMIN_TEMPLATE = "adminTemplate"
APP_PROTECTION = "appProtection"
APP_CONFIGURATION = "appConfiguration"
ENROLLMENT = "enrollment"
AUTOPILOT = "autopilot"
WINDOWS_UPDATE = "windowsUpdate"
SCRIPT = "script"
HEALTH_SCRIPT = "healthScript"
CUSTOM_ATTRIBUTE = "customAttribute"
APP = "mobileApp"
ASSIGNMENT_FILTER = "assignmentFilter"
SCOPE_TAG = "scopeTag"
CONDITIONAL_ACCESS = "conditionalAccess"
ROLE = "role"
DEVICE_CATEGORY = "deviceCategory"
NOTIFICATION_TEMPLATE = "notificationTemplate"
REUSABLE_SETTING = "reusableSetting"
CONNECTOR = "connector"
TENANT_SETTINGS = "tenantSettings"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Family:
    id: str
    label: str
    collections: tuple[str, ...] = ()
    types: tuple[tuple[str, str], ...] = ()
    platform: str = ""
    scope: str = "type"


TABLE: tuple[Family, ...] = (
    Family(SETTINGS_CATALOG, "Settings catalog", ("configurationPolicies",),
           (("eq", "deviceManagementConfigurationPolicy"),), scope="platform"),
    Family(COMPLIANCE_V2, "Compliance (settings catalog)", ("compliancePolicies",),
           (("eq", "deviceManagementCompliancePolicy"),), scope="platform"),
    Family(DEVICE_CONFIGURATION, "Device configuration", ("deviceConfigurations",),
           (("end", "Configuration"), ("end", "CertificateProfile"), ("end", "TrustedRootCertificate"),
            ("in", "CertificateProfile"))),
    Family(COMPLIANCE, "Compliance", ("deviceCompliancePolicies",), (("in", "CompliancePolicy"),)),
    Family(ENDPOINT_SECURITY_INTENT, "Endpoint security (intents)", ("intents",),
           (("eq", "deviceManagementIntent"),), platform="windows", scope=""),
    Family(ADMIN_TEMPLATE, "Administrative templates", ("groupPolicyConfigurations",),
           (("eq", "groupPolicyConfiguration"),), platform="windows", scope=""),
    Family(APP_PROTECTION, "App protection",
           ("managedAppPolicies", "iosManagedAppProtections", "androidManagedAppProtections",
            "windowsManagedAppProtections", "mdmWindowsInformationProtectionPolicies",
            "windowsInformationProtectionPolicies", "defaultManagedAppProtections"),
           (("in", "ManagedAppProtection"), ("in", "WindowsInformationProtection"),
            ("eq", "windowsInformationProtectionPolicy"), ("eq", "targetedManagedAppProtection"))),
    # app configuration: managed apps (targetedManagedAppConfiguration, listed with managedAppPolicies)
    # and managed devices (mobileAppConfigurations: iosMobileAppConfiguration, androidManagedStore...)
    Family(APP_CONFIGURATION, "App configuration",
           ("targetedManagedAppConfigurations", "mobileAppConfigurations"),
           (("in", "ManagedAppConfiguration"), ("in", "MobileAppConfiguration"),
            ("eq", "androidManagedStoreAppConfiguration"), ("eq", "androidForWorkMobileAppConfiguration"))),
    Family(ENROLLMENT, "Enrollment", ("deviceEnrollmentConfigurations",),
           (("in", "Enrollment"), ("in", "ComanagementAuthorityConfiguration"), ("in", "RestoreDeviceEnrollment"))),
    Family(AUTOPILOT, "Autopilot", ("windowsAutopilotDeploymentProfiles",),
           (("in", "AutopilotDeploymentProfile"),), platform="windows"),
    Family(WINDOWS_UPDATE, "Windows Update",
           ("windowsFeatureUpdateProfiles", "windowsDriverUpdateProfiles", "windowsQualityUpdateProfiles",
            "windowsQualityUpdatePolicies"),
           (("eq", "windowsUpdateForBusinessConfiguration"), ("in", "UpdateProfile"),
            ("eq", "windowsQualityUpdatePolicy")), platform="windows"),
    # PowerShell and shell scripts: each script is its own object, like remediations (schema version 10
    # moved their stored keys under the script's name)
    Family(SCRIPT, "Scripts",
           ("deviceManagementScripts", "deviceShellScripts"),
           (("in", "Script"),), scope="name"),
    Family(CUSTOM_ATTRIBUTE, "Custom attributes (macOS)", ("deviceCustomAttributeShellScripts",),
           (("eq", "deviceCustomAttributeShellScript"),), platform="macOS", scope="name"),
    # remediations (deviceHealthScripts) and custom compliance scripts: each script is its own object
    Family(HEALTH_SCRIPT, "Remediations and compliance scripts", ("deviceHealthScripts", "deviceComplianceScripts"),
           (("eq", "deviceHealthScript"), ("eq", "deviceComplianceScript")), platform="windows", scope="name"),
    # mobileApp's derived types (win32LobApp, iosStoreApp, officeSuiteApp, windowsUniversalAppX, …)
    Family(APP, "Apps", ("mobileApps",),
           (("end", "App"), ("end", "AppX"), ("in", "LobApp"), ("in", "StoreApp")), scope="name"),
    Family(ASSIGNMENT_FILTER, "Assignment filters", ("assignmentFilters",),
           (("eq", "deviceAndAppManagementAssignmentFilter"),), scope="name"),
    Family(SCOPE_TAG, "Scope tags", ("roleScopeTags",), (("eq", "roleScopeTag"),), scope="name"),
    # Entra conditional access (identity/conditionalAccess/policies and namedLocations): the Intune
    # portal shows them, and compliance only matters where a policy requires a compliant device
    Family(CONDITIONAL_ACCESS, "Conditional Access", ("namedLocations",),
           (("eq", "conditionalAccessPolicy"), ("in", "NamedLocation")), scope="name"),
    # Intune RBAC: role definitions with their role assignments (deviceAndAppManagementRoleDefinition)
    Family(ROLE, "Intune roles", ("roleDefinitions",), (("in", "RoleDefinition"),), scope="name"),
    Family(DEVICE_CATEGORY, "Device categories", ("deviceCategories",), (("eq", "deviceCategory"),), scope="name"),
    # the messages compliance actions send (notificationMessageTemplate with localizedNotificationMessages)
    Family(NOTIFICATION_TEMPLATE, "Compliance notifications", ("notificationMessageTemplates",),
           (("eq", "notificationMessageTemplate"),), scope="name"),
    # settings-catalog policies reference these (deviceManagementReusablePolicySetting)
    Family(REUSABLE_SETTING, "Reusable settings", ("reusablePolicySettings",),
           (("eq", "deviceManagementReusablePolicySetting"),), scope="name"),
    # the tenant's connections: Apple VPP and enrollment (ADE) tokens, partner connections (state, expiry;
    # never a token)
    Family(CONNECTOR, "Connectors and tokens",
           ("vppTokens", "depOnboardingSettings", "complianceManagementPartners", "deviceManagementPartners",
            "remoteAssistancePartners"),
           (("eq", "vppToken"), ("eq", "depOnboardingSetting"), ("eq", "complianceManagementPartner"),
            ("eq", "deviceManagementPartner"), ("eq", "remoteAssistancePartner"),
            ("eq", "applePushNotificationCertificate"), ("eq", "androidManagedStoreAccountEnterpriseSettings")),
           scope="name"),
    # the tenant-wide Intune settings (deviceManagement/settings: deviceManagementSettings)
    Family(TENANT_SETTINGS, "Tenant settings", (), (("eq", "deviceManagementSettings"),), scope="name"),
    Family(UNKNOWN, "Other"),
)

BY_ID: dict[str, Family] = {f.id: f for f in TABLE}
FAMILIES: tuple[str, ...] = tuple(BY_ID)
LABELS: dict[str, str] = {f.id: f.label for f in TABLE}
COLLECTION_FAMILIES: dict[str, str] = {c: f.id for f in TABLE for c in f.collections}

# (kind, text, family), first match wins: specific families first, then the broad suffix rules of
# device configuration (an "...EnrollmentConfiguration" is enrollment, not device configuration).
_RULE_ORDER = (SETTINGS_CATALOG, COMPLIANCE_V2, ENDPOINT_SECURITY_INTENT, ADMIN_TEMPLATE, APP_PROTECTION,
               APP_CONFIGURATION, AUTOPILOT, WINDOWS_UPDATE, ENROLLMENT, COMPLIANCE, HEALTH_SCRIPT, CUSTOM_ATTRIBUTE,
               SCRIPT, ASSIGNMENT_FILTER, SCOPE_TAG, CONDITIONAL_ACCESS, ROLE, DEVICE_CATEGORY, NOTIFICATION_TEMPLATE,
               REUSABLE_SETTING, CONNECTOR, TENANT_SETTINGS, APP, DEVICE_CONFIGURATION)
TYPE_RULES: tuple[tuple[str, str, str], ...] = tuple(
    (kind, text, fid) for fid in _RULE_ORDER for kind, text in BY_ID[fid].types)

WINDOWS_ONLY: frozenset[str] = frozenset(f.id for f in TABLE if f.platform == "windows")
SCOPE_BY_TYPE: frozenset[str] = frozenset(f.id for f in TABLE if f.scope == "type")
SCOPE_BY_PLATFORM: frozenset[str] = frozenset(f.id for f in TABLE if f.scope == "platform")
# families whose setting keys are definition ids (the rest are property paths of one Graph type)
DEFINITION_KEYED: frozenset[str] = frozenset(f.id for f in TABLE if f.scope in ("platform", ""))
# families whose objects are matched by name: every setting key starts with "[<object name>]/"
NAME_KEYED: frozenset[str] = frozenset(f.id for f in TABLE if f.scope == "name")
# setting-key prefixes that belong to their policy, not to the device: never a conflict between two
# policies. A compliance policy's actions for noncompliance (scheduledActionsForRule) apply to devices
# that fail that policy (Microsoft Learn, "Configure actions for noncompliance": each compliance
# policy has its own actions; Graph: deviceCompliancePolicy.scheduledActionsForRule).
PER_POLICY_KEYS: dict[str, tuple[str, ...]] = {COMPLIANCE: ("scheduledActionsForRule",),
                                               COMPLIANCE_V2: ("scheduledActionsForRule",)}
CATALOG_SHAPED: frozenset[str] = frozenset({SETTINGS_CATALOG, COMPLIANCE_V2})  # settings?$expand=settingDefinitions


def label(family: str | None) -> str:
    """The family as people say it ("Settings catalog"); an unknown id is shown as it is."""
    if not family:
        return LABELS[UNKNOWN]
    return LABELS.get(family, family)
