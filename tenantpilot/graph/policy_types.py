"""The Intune policy types TenantPilot syncs, as data.

Why one module of ~600 lines: it is the one table of what a sync reads (37 types, their follow-ups and
routes), with the few helpers that read it; splitting the table would make two lists of what is read.

Each :class:`PolicyType` says where the list lives and which per-policy calls
(:class:`FollowUp`) complete an item. :mod:`tenantpilot.graph.fetch` interprets the table;
adding a type is adding a row, not a subclass.

Follow-up semantics:

* ``path_template`` is relative to the API version root. ``{id}`` is the id of the item the
  follow-up runs for (the policy, or for a nested follow-up the element of the parent
  follow-up's list); ``{parent_id}`` is the policy id. Ids are URL-quoted.
* The result is merged into the item under ``key`` (Graph's own relationship name:
  ``settings``, ``assignments``, ``definitionValues``, ``presentationValues`` …). With
  ``key=None`` the result is a single object whose fields are merged into the item (the
  typed app-protection GET, a script's own GET that carries ``scriptContent``).
* ``pages=True``: the result is a collection; every ``@odata.nextLink`` page is fetched and
  ``value`` lists are concatenated.
* ``nested`` follow-ups run for every element of this follow-up's list result.
* ``routes``: the path depends on the item's ``@odata.type``; items whose type has no route
  get no call (and keep what the list returned).
* ``optional=True``: a navigation link (tenantpilot/sync/links.py). An unset link answers 204 (OData
  Part 1 Protocol, "Requesting Related Entities": no related entity is 204 No Content) or 404; either
  means "no link", never "policy deleted". A 400 (Graph refusing the route) keeps the policy and
  marks the link unread (links.LINKS_NOT_READ), with a warning.

``skip_odata_types`` on a :class:`PolicyType`: list items of those ``@odata.type`` values belong to
another type of the table and are left out of this one (``managedAppPolicies`` also lists the
app configuration policies that ``targetedManagedAppConfigurations`` reads; IntuneManagement
``Extensions/EndpointManager.psm1`` drops them from App Protection the same way, since
``$filter`` on that list fails).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

from tenantpilot import families as F
from tenantpilot.sync.links import LINK_FIELDS, LINKS

from .client import add_query

__all__ = [
    "Params",
    "Route",
    "FollowUp",
    "PolicyType",
    "POLICY_TYPES",
    "FAMILIES",
    "APP_PROTECTION_ROUTES",
    "types_by_family",
    "get_policy_type",
]

Params = tuple[tuple[str, str], ...]

READ_CONFIG = "DeviceManagementConfiguration.Read.All"
READ_SERVICE_CONFIG = "DeviceManagementServiceConfig.Read.All"
READ_APPS = "DeviceManagementApps.Read.All"
# Graph's docs (beta intune-devices-deviceshellscript-list, -devicemanagementscript-list) list this one
# for application access to scripts (docs/graph-intune.md §7)
READ_SCRIPTS = "DeviceManagementScripts.Read.All"
# identity/conditionalAccess/policies and namedLocations (v1.0): Graph's docs (conditionalaccessroot-list-
# policies, conditionalaccessroot-list-namedlocations) name Policy.Read.All as the least-privileged
# application permission
READ_POLICY = "Policy.Read.All"
# roleDefinitions and their roleAssignments: beta intune-rbac-roledefinition-list names DeviceManagementRBAC.Read.All
READ_RBAC = "DeviceManagementRBAC.Read.All"


@dataclass(frozen=True)
class Route:
    """A follow-up path used for items of one ``@odata.type``."""

    odata_type: str
    path_template: str
    params: Params = ()


@dataclass(frozen=True)
class FollowUp:
    """One per-item call whose answer is merged into the item."""

    path_template: str
    key: str | None
    params: Params = ()
    pages: bool = True
    nested: tuple[FollowUp, ...] = ()
    routes: tuple[Route, ...] = ()
    optional: bool = False  # a link: 204/404 mean "not set" (see the module docstring)

    def route_for(self, item: Mapping[str, Any]) -> tuple[str, Params] | None:
        """``(path_template, params)`` for ``item``, or None when the item gets no call."""
        if not self.routes:
            return self.path_template, self.params
        odata_type = str(item.get("@odata.type") or "").lstrip("#").lower()
        for r in self.routes:
            if r.odata_type.lstrip("#").lower() == odata_type:
                return r.path_template, r.params
        return None

    def url_for(self, item: Mapping[str, Any], parent_id: str | None = None) -> str | None:
        """Relative URL (with query) of this call for ``item``; None when not applicable."""
        route = self.route_for(item)
        if route is None:
            return None
        template, params = route
        item_id = str(item["id"])
        path = template.format(id=quote(item_id, safe=""), parent_id=quote(parent_id or item_id, safe=""))
        return add_query(path, params)


@dataclass(frozen=True)
class PolicyType:
    """One Intune collection. ``key`` is unique; ``family`` is what rows are labelled with."""

    key: str
    family: str
    label: str
    list_path: str
    list_params: Params = ()
    follow_ups: tuple[FollowUp, ...] = ()
    api_version: str = "beta"
    permission: str = READ_CONFIG  # the least-privileged app permission that reads it
    skip_odata_types: tuple[str, ...] = ()  # list items that belong to another type
    # the list path answers one object, not a collection (applePushNotificationCertificate): it is the
    # type's one item, named by `label`; 404 means the tenant has none (fetch.list_pages)
    single: bool = False
    notes: str = field(default="", compare=False)

    def keeps(self, item: Mapping[str, Any]) -> bool:
        """Whether a list item is one of this type's policies (see ``skip_odata_types``)."""
        if not self.skip_odata_types:
            return True
        odata_type = str(item.get("@odata.type") or "").lstrip("#").lower()
        return odata_type not in {t.lstrip("#").lower() for t in self.skip_odata_types}

    @property
    def list_url(self) -> str:
        return add_query(self.list_path, self.list_params)


_EXPAND_ASSIGNMENTS: Params = (("$expand", "assignments"),)
_SETTINGS_PARAMS: Params = (("$expand", "settingDefinitions"), ("$top", "1000"))


def _assignments(collection: str) -> FollowUp:
    return FollowUp(f"{collection}/{{id}}/assignments", "assignments")


# @odata.type of a managedAppPolicies item -> typed collection and what it can $expand.
# targetedManagedAppConfiguration items are app configuration, read by their own type below.
APP_PROTECTION_ROUTES: tuple[Route, ...] = (
    Route(
        "#microsoft.graph.iosManagedAppProtection",
        "/deviceAppManagement/iosManagedAppProtections/{id}",
        (("$expand", "apps,assignments"),),
    ),
    Route(
        "#microsoft.graph.androidManagedAppProtection",
        "/deviceAppManagement/androidManagedAppProtections/{id}",
        (("$expand", "apps,assignments"),),
    ),
    Route(
        "#microsoft.graph.windowsManagedAppProtection",
        "/deviceAppManagement/windowsManagedAppProtections/{id}",
        (("$expand", "apps,assignments"),),
    ),
    Route(
        "#microsoft.graph.mdmWindowsInformationProtectionPolicy",
        "/deviceAppManagement/mdmWindowsInformationProtectionPolicies/{id}",
        (("$expand", "assignments"),),
    ),
    Route(
        "#microsoft.graph.windowsInformationProtectionPolicy",
        "/deviceAppManagement/windowsInformationProtectionPolicies/{id}",
        (("$expand", "assignments"),),
    ),
    # defaultManagedAppProtection has apps but no assignments relationship.
    Route(
        "#microsoft.graph.defaultManagedAppProtection",
        "/deviceAppManagement/defaultManagedAppProtections/{id}",
        (("$expand", "apps"),),
    ),
)

_DM = "/deviceManagement"


def link_follow_ups(collection: str) -> tuple[FollowUp, ...]:
    """One follow-up per navigation link of ``collection``'s types (tenantpilot/sync/links.py), each routed
    by @odata.type to Graph's type-cast navigation path, selecting only what names the target."""
    navs: dict[str, list[Route]] = {}
    many: dict[str, bool] = {}
    select: Params = (("$select", ",".join(LINK_FIELDS)),)
    for link in LINKS:
        if link.collection != collection:
            continue
        path = f"{_DM}/{collection}/{{id}}/microsoft.graph.{link.odata_type}/{link.navigation}"
        navs.setdefault(link.navigation, []).append(Route(f"#microsoft.graph.{link.odata_type}", path, select))
        many[link.navigation] = link.many
    return tuple(FollowUp("", nav, pages=many[nav], routes=tuple(routes), optional=True)
                 for nav, routes in navs.items())


POLICY_TYPES: tuple[PolicyType, ...] = (
    PolicyType(
        key="configurationPolicies",
        family=F.SETTINGS_CATALOG,
        label=F.label(F.SETTINGS_CATALOG),
        list_path=f"{_DM}/configurationPolicies",
        list_params=_EXPAND_ASSIGNMENTS,
        follow_ups=(FollowUp(f"{_DM}/configurationPolicies/{{id}}/settings", "settings", _SETTINGS_PARAMS),),
        notes="$expand=settings on the list shrinks pages to 1-2 items; settings come per policy.",
    ),
    PolicyType(
        key="compliancePolicies",
        family=F.COMPLIANCE_V2,
        label=F.label(F.COMPLIANCE_V2),
        list_path=f"{_DM}/compliancePolicies",
        list_params=_EXPAND_ASSIGNMENTS,
        follow_ups=(FollowUp(f"{_DM}/compliancePolicies/{{id}}/settings", "settings", _SETTINGS_PARAMS),),
    ),
    PolicyType(
        key="deviceConfigurations",
        family=F.DEVICE_CONFIGURATION,
        label=F.label(F.DEVICE_CONFIGURATION),
        list_path=f"{_DM}/deviceConfigurations",
        list_params=_EXPAND_ASSIGNMENTS,
        follow_ups=link_follow_ups("deviceConfigurations"),
        notes="every property is inline in the list but the certificate links (one GET per link of the "
              "Wi-Fi, VPN, SCEP/PKCS profiles that have one); encrypted OMA values are not fetched.",
    ),
    PolicyType(
        key="deviceCompliancePolicies",
        family=F.COMPLIANCE,
        label=F.label(F.COMPLIANCE),
        list_path=f"{_DM}/deviceCompliancePolicies",
        list_params=(("$expand", "assignments,scheduledActionsForRule($expand=scheduledActionConfigurations)"),),
        notes="assignments ride on the list's $expand: one request fewer per policy.",
    ),
    PolicyType(
        key="intents",
        family=F.ENDPOINT_SECURITY_INTENT,
        label=F.label(F.ENDPOINT_SECURITY_INTENT),
        list_path=f"{_DM}/intents",
        follow_ups=(
            FollowUp(f"{_DM}/intents/{{id}}/settings", "settings"),
            _assignments(f"{_DM}/intents"),  # intents?$expand=assignments comes back empty
        ),
    ),
    PolicyType(
        key="groupPolicyConfigurations",
        family=F.ADMIN_TEMPLATE,
        label=F.label(F.ADMIN_TEMPLATE),
        list_path=f"{_DM}/groupPolicyConfigurations",
        list_params=_EXPAND_ASSIGNMENTS,
        follow_ups=(
            FollowUp(
                f"{_DM}/groupPolicyConfigurations/{{id}}/definitionValues",
                "definitionValues",
                (("$expand", "definition"),),
                nested=(
                    FollowUp(
                        f"{_DM}/groupPolicyConfigurations/{{parent_id}}/definitionValues/{{id}}/presentationValues",
                        "presentationValues",
                        (("$expand", "presentation"),),
                    ),
                ),
            ),
        ),
    ),
    PolicyType(
        key="managedAppPolicies",
        family=F.APP_PROTECTION,
        label=F.label(F.APP_PROTECTION),
        list_path="/deviceAppManagement/managedAppPolicies",
        follow_ups=(FollowUp("", None, pages=False, routes=APP_PROTECTION_ROUTES),),
        permission=READ_APPS,
        skip_odata_types=("#microsoft.graph.targetedManagedAppConfiguration",),
        notes="the list mixes types and $filter fails on it; each item is re-read from its typed collection.",
    ),
    PolicyType(
        key="targetedManagedAppConfigurations",
        family=F.APP_CONFIGURATION,
        label="App configuration policies (managed apps)",
        list_path="/deviceAppManagement/targetedManagedAppConfigurations",
        follow_ups=(
            FollowUp("/deviceAppManagement/targetedManagedAppConfigurations/{id}", None,
                     (("$expand", "apps,assignments"),), pages=False),
        ),
        permission=READ_APPS,
        notes="also listed by managedAppPolicies, where they are app configuration, not protection.",
    ),
    # beta, list with $expand=assignments: IntuneManagement, CIPP (New-GraphBulkRequest of
    # '/deviceAppManagement/mobileAppConfigurations?$expand=assignments') and IntuneCD read it so
    PolicyType(
        key="mobileAppConfigurations",
        family=F.APP_CONFIGURATION,
        label="App configuration policies (managed devices)",
        list_path="/deviceAppManagement/mobileAppConfigurations",
        list_params=_EXPAND_ASSIGNMENTS,
        permission=READ_APPS,
        notes="iosMobileAppConfiguration, androidManagedStoreAppConfiguration …: every property inline.",
    ),
    PolicyType(
        key="windowsFeatureUpdateProfiles",
        family=F.WINDOWS_UPDATE,
        label="Windows feature updates",
        list_path=f"{_DM}/windowsFeatureUpdateProfiles",
        list_params=_EXPAND_ASSIGNMENTS,
    ),
    PolicyType(
        key="windowsDriverUpdateProfiles",
        family=F.WINDOWS_UPDATE,
        label="Windows driver updates",
        list_path=f"{_DM}/windowsDriverUpdateProfiles",
        list_params=_EXPAND_ASSIGNMENTS,
    ),
    PolicyType(
        key="windowsQualityUpdateProfiles",
        family=F.WINDOWS_UPDATE,
        label="Windows quality updates",
        list_path=f"{_DM}/windowsQualityUpdateProfiles",
        list_params=_EXPAND_ASSIGNMENTS,
        notes="expedited quality updates (expeditedUpdateSettings).",
    ),
    # Both collections exist: Graph's docs (intune-softwareupdate-windowsqualityupdatepolicy, "List
    # windowsQualityUpdatePolicies", DeviceManagementConfiguration.Read.All; beside
    # intune-softwareupdate-windowsqualityupdateprofile) and the generated msgraph beta SDKs carry both
    # request builders; CIPP and IntuneManagement list both.
    PolicyType(
        key="windowsQualityUpdatePolicies",
        family=F.WINDOWS_UPDATE,
        label="Windows quality update policies",
        list_path=f"{_DM}/windowsQualityUpdatePolicies",
        list_params=_EXPAND_ASSIGNMENTS,
        notes="monthly quality update policies (hotpatchEnabled).",
    ),
    PolicyType(
        key="windowsAutopilotDeploymentProfiles",
        family=F.AUTOPILOT,
        label=F.label(F.AUTOPILOT),
        list_path=f"{_DM}/windowsAutopilotDeploymentProfiles",
        list_params=_EXPAND_ASSIGNMENTS,
        follow_ups=link_follow_ups("windowsAutopilotDeploymentProfiles"),
        permission=READ_SERVICE_CONFIG,
        notes="hybrid (activeDirectory…) profiles: one GET for their domainJoinConfiguration link.",
    ),
    PolicyType(
        key="deviceEnrollmentConfigurations",
        family=F.ENROLLMENT,
        label=F.label(F.ENROLLMENT),
        list_path=f"{_DM}/deviceEnrollmentConfigurations",
        list_params=_EXPAND_ASSIGNMENTS,
        permission=READ_SERVICE_CONFIG,
    ),
    PolicyType(
        key="deviceManagementScripts",
        family=F.SCRIPT,
        label="Windows PowerShell scripts",
        list_path=f"{_DM}/deviceManagementScripts",
        follow_ups=(
            # scriptContent and assignments in one request
            FollowUp(f"{_DM}/deviceManagementScripts/{{id}}", None, _EXPAND_ASSIGNMENTS, pages=False),
        ),
        permission=READ_SCRIPTS,
        notes="the list omits scriptContent; the per-script GET carries it (the flattener hashes it).",
    ),
    PolicyType(
        key="deviceShellScripts",
        family=F.SCRIPT,
        label="macOS shell scripts",
        list_path=f"{_DM}/deviceShellScripts",
        follow_ups=(
            # scriptContent and assignments in one request
            FollowUp(f"{_DM}/deviceShellScripts/{{id}}", None, _EXPAND_ASSIGNMENTS, pages=False),
        ),
        permission=READ_SCRIPTS,
    ),
    # Remediations. Graph's docs (beta intune-devices-devicehealthscript-list) name
    # DeviceManagementScripts.Read.All; the list leaves the script bodies out and M365Documentation's
    # collector reads each script again for them (Get-MdmDeviceHealthScripts.ps1), as for PowerShell scripts.
    PolicyType(
        key="deviceHealthScripts",
        family=F.HEALTH_SCRIPT,
        label="Remediations",
        list_path=f"{_DM}/deviceHealthScripts",
        follow_ups=(
            # detection and remediation bodies and assignments (with their run schedules) in one request
            FollowUp(f"{_DM}/deviceHealthScripts/{{id}}", None, _EXPAND_ASSIGNMENTS, pages=False),
        ),
        permission=READ_SCRIPTS,
        notes="detection and remediation bodies hashed in the rows, kept as text in the raw JSON; "
              "each assignment's run schedule and remediation switch are rows.",
    ),
    # Custom compliance scripts: beta intune-devices-devicecompliancescript-list; Microsoft365DSC's
    # IntuneDeviceComplianceScriptWindows10 reads them with DeviceManagementScripts.Read.All.
    PolicyType(
        key="deviceComplianceScripts",
        family=F.HEALTH_SCRIPT,
        label="Custom compliance scripts",
        list_path=f"{_DM}/deviceComplianceScripts",
        follow_ups=(FollowUp(f"{_DM}/deviceComplianceScripts/{{id}}", None, _EXPAND_ASSIGNMENTS, pages=False),),
        permission=READ_SCRIPTS,
    ),
    # The filters themselves (their rule text), beside their names in every assignment: beta
    # intune-policyset-deviceandappmanagementassignmentfilter-list, DeviceManagementConfiguration.Read.All.
    PolicyType(
        key="assignmentFilters",
        family=F.ASSIGNMENT_FILTER,
        label=F.label(F.ASSIGNMENT_FILTER),
        list_path=f"{_DM}/assignmentFilters",
    ),
    # beta intune-rbac-rolescopetag-list: DeviceManagementConfiguration.Read.All is the first (least
    # privileged) application permission the page lists, before DeviceManagementRBAC.Read.All.
    PolicyType(
        key="roleScopeTags",
        family=F.SCOPE_TAG,
        label=F.label(F.SCOPE_TAG),
        list_path=f"{_DM}/roleScopeTags",
    ),
    # Apps with their assignments (intent required / available / uninstall, per group): the per-app
    # GET /mobileApps/{id}/assignments is what IntuneBackupAndRestore (Invoke-IntuneBackupClientApp-
    # Assignment.ps1) reads; Graph's docs (beta intune-apps-mobileapp-list) name DeviceManagementApps.Read.All.
    PolicyType(
        key="mobileApps",
        family=F.APP,
        label=F.label(F.APP),
        list_path="/deviceAppManagement/mobileApps",
        # the tenant's own and assigned apps, not the built-in store apps Intune lists for app protection:
        # the filter IntuneCD (backup/Intune/Applications.py) and IntuneBackupAndRestore send
        list_params=(("$filter", "(microsoft.graph.managedApp/appAvailability eq null or "
                                 "microsoft.graph.managedApp/appAvailability eq 'lineOfBusiness' or "
                                 "isAssigned eq true)"),),
        follow_ups=(_assignments("/deviceAppManagement/mobileApps"),),
        permission=READ_APPS,
        notes="icons (largeIcon) are never stored; each assignment's intent is a row named by its group.",
    ),
    # macOS custom attributes: beta intune-devices-devicecustomattributeshellscript-list; the list leaves
    # scriptContent out like deviceShellScripts, the single GET carries it (IntuneCD CustomAttributes reads
    # each script the same way)
    PolicyType(
        key="deviceCustomAttributeShellScripts",
        family=F.CUSTOM_ATTRIBUTE,
        label=F.label(F.CUSTOM_ATTRIBUTE),
        list_path=f"{_DM}/deviceCustomAttributeShellScripts",
        follow_ups=(FollowUp(f"{_DM}/deviceCustomAttributeShellScripts/{{id}}", None, _EXPAND_ASSIGNMENTS,
                             pages=False),),
        permission=READ_SCRIPTS,
    ),
    PolicyType(
        key="roleDefinitions",
        family=F.ROLE,
        label=F.label(F.ROLE),
        list_path=f"{_DM}/roleDefinitions",
        follow_ups=(FollowUp(f"{_DM}/roleDefinitions/{{id}}/roleAssignments", "roleAssignments"),),
        permission=READ_RBAC,
        notes="built-in and custom roles with their permissions; each role's assignments (members, scope "
              "groups, scope tags) by assignment name.",
    ),
    # v1.0 intune-onboarding-devicecategory-list: DeviceManagementConfiguration.Read.All listed first
    PolicyType(
        key="deviceCategories",
        family=F.DEVICE_CATEGORY,
        label=F.label(F.DEVICE_CATEGORY),
        list_path=f"{_DM}/deviceCategories",
    ),
    # intune-notification-notificationmessagetemplate-list (DeviceManagementServiceConfig.Read.All, as
    # Microsoft365DSC IntuneDeviceComplianceNotificationMessageTemplate reads them); the messages per locale
    # are the localizedNotificationMessages relationship, expanded on the list
    PolicyType(
        key="notificationMessageTemplates",
        family=F.NOTIFICATION_TEMPLATE,
        label=F.label(F.NOTIFICATION_TEMPLATE),
        list_path=f"{_DM}/notificationMessageTemplates",
        list_params=(("$expand", "localizedNotificationMessages"),),
        permission=READ_SERVICE_CONFIG,
    ),
    # beta deviceManagementReusablePolicySetting (intune-deviceconfigv2-devicemanagementreusablepolicysetting-list)
    PolicyType(
        key="reusablePolicySettings",
        family=F.REUSABLE_SETTING,
        label=F.label(F.REUSABLE_SETTING),
        list_path=f"{_DM}/reusablePolicySettings",
    ),
    # Apple VPP tokens (beta intune-onboarding-vpptoken-list, DeviceManagementServiceConfig.Read.All): state,
    # expiry, Apple ID, sync settings; the token itself is a secret (flatten/secrets.py: "token")
    PolicyType(
        key="vppTokens",
        family=F.CONNECTOR,
        label="Apple VPP tokens",
        list_path="/deviceAppManagement/vppTokens",
        permission=READ_SERVICE_CONFIG,
        notes="state and expiry; the token is masked by the one secret rule.",
    ),
    # Apple automated device enrollment (DEP) tokens with their enrollment profiles: beta
    # intune-enrollment-deponboardingsetting-list and -enrollmentprofile-list (DeviceManagementServiceConfig.Read.All);
    # IntuneCD AppleEnrollmentProfiles reads depOnboardingSettings/{id}/enrollmentProfiles
    PolicyType(
        key="depOnboardingSettings",
        family=F.CONNECTOR,
        label="Apple enrollment (ADE) tokens and profiles",
        list_path=f"{_DM}/depOnboardingSettings",
        follow_ups=(FollowUp(f"{_DM}/depOnboardingSettings/{{id}}/enrollmentProfiles", "enrollmentProfiles"),),
        permission=READ_SERVICE_CONFIG,
    ),
    # partner connections: beta intune-onboarding-compliancemanagementpartner-list, -devicemanagementpartner-list,
    # intune-remoteassistance-remoteassistancepartner-list (DeviceManagementServiceConfig.Read.All)
    PolicyType(
        key="complianceManagementPartners",
        family=F.CONNECTOR,
        label="Compliance partners",
        list_path=f"{_DM}/complianceManagementPartners",
        permission=READ_SERVICE_CONFIG,
    ),
    PolicyType(
        key="deviceManagementPartners",
        family=F.CONNECTOR,
        label="Device management partners",
        list_path=f"{_DM}/deviceManagementPartners",
        permission=READ_SERVICE_CONFIG,
    ),
    PolicyType(
        key="remoteAssistancePartners",
        family=F.CONNECTOR,
        label="Remote assistance partners",
        list_path=f"{_DM}/remoteAssistancePartners",
        permission=READ_SERVICE_CONFIG,
    ),
    # single objects, as IntuneCD's APNs, ManagedGooglePlay and DeviceManagementSettings modules read them:
    # beta intune-devices-applepushnotificationcertificate-get, intune-androidforwork-
    # androidmanagedstoreaccountenterprisesettings-get (DeviceManagementConfiguration.Read.All) and the
    # deviceManagement singleton's settings property (deviceManagementSettings, intune-devices-devicemanagement-get,
    # DeviceManagementConfiguration.Read.All / DeviceManagementServiceConfig.Read.All, the first listed)
    PolicyType(
        key="applePushNotificationCertificate",
        family=F.CONNECTOR,
        label="Apple push certificate (APNs)",
        list_path=f"{_DM}/applePushNotificationCertificate",
        single=True,
        notes="Apple ID, topic, expiry, upload state; the certificate itself is never stored (secrets.py).",
    ),
    PolicyType(
        key="androidManagedStoreAccountEnterpriseSettings",
        family=F.CONNECTOR,
        label="Managed Google Play",
        list_path=f"{_DM}/androidManagedStoreAccountEnterpriseSettings",
        single=True,
        notes="binding state, owner, enrollment targets; company codes (enrollment tokens) never stored.",
    ),
    PolicyType(
        key="deviceManagementSettings",
        family=F.TENANT_SETTINGS,
        label=F.label(F.TENANT_SETTINGS),
        list_path=f"{_DM}/settings",
        single=True,
        notes="compliance check-in threshold, 'mark devices without a policy as', jailbreak detection …",
    ),
    PolicyType(
        key="conditionalAccessPolicies",
        family=F.CONDITIONAL_ACCESS,
        label="Conditional Access policies",
        list_path="/identity/conditionalAccess/policies",
        api_version="v1.0",
        permission=READ_POLICY,
        notes="state (on / off / report-only), conditions, grant and session controls; users, groups, roles, "
              "apps and locations by name where the app may read them (graph/directory.py), else by id.",
    ),
    PolicyType(
        key="namedLocations",
        family=F.CONDITIONAL_ACCESS,
        label="Named locations",
        list_path="/identity/conditionalAccess/namedLocations",
        api_version="v1.0",
        permission=READ_POLICY,
    ),
)

FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(t.family for t in POLICY_TYPES))


def without_expanded_definitions(types: tuple[PolicyType, ...] = POLICY_TYPES) -> tuple[PolicyType, ...]:
    """The table with `$expand=settingDefinitions` dropped from the settings follow-ups: for syncs
    whose definitions are already cached (they are the same in every tenant); the few missing
    ones are then fetched by id (see fetch.fetch_definitions)."""
    def strip(f: FollowUp) -> FollowUp:
        params = tuple(p for p in f.params if p != ("$expand", "settingDefinitions"))
        return replace(f, params=params, nested=tuple(strip(n) for n in f.nested))

    return tuple(replace(t, follow_ups=tuple(strip(f) for f in t.follow_ups)) for t in types)


def types_by_family(*families: str, types: tuple[PolicyType, ...] = POLICY_TYPES) -> tuple[PolicyType, ...]:
    """The types of the given families (all when none given), in table order."""
    unknown = set(families) - {t.family for t in types}
    if unknown:
        raise ValueError(f"unknown policy families: {', '.join(sorted(unknown))}")
    return tuple(t for t in types if not families or t.family in families)


def get_policy_type(key: str, types: tuple[PolicyType, ...] = POLICY_TYPES) -> PolicyType:
    for t in types:
        if t.key == key:
            return t
    raise KeyError(key)
