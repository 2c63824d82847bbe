"""Microsoft Graph's Intune endpoints over a :class:`SimTenant`, as pure request → response.

Why one module of ~950 lines: one routing table and one handler per Graph collection shape.

No sockets and no knobs here: :mod:`graphsim.server` authenticates, applies latency,
throttling, faults and forbidden paths, then calls :meth:`GraphApi.handle`. Routing is a small
table of (regex, handler) built from :data:`COLLECTIONS` (one row of data per policy collection)
plus a few specific routes.

Behaviour copied from real Graph (see docs/graph-intune.md):

* lists page at 25 by default; ``$top`` is honoured up to a per-endpoint maximum; the
  ``@odata.nextLink`` is an absolute URL with an opaque ``$skiptoken`` and must be followed as is;
* ``configurationPolicies`` lists carry ``@odata.count`` and ``@microsoft.graph.tips``; with
  ``$expand=settings`` their pages shrink to 2 policies whatever ``$top`` says;
* ``$expand`` of a property the type does not have → 400 ``BadRequest`` "Parsing OData Select
  and Expand failed: …"; ``intents?$expand=assignments`` and a *single* endpoint-security
  configurationPolicy GET with ``$expand=assignments`` return empty assignments;
* settings-catalog, intents and administrative templates exist in beta only (v1.0 → 400
  "Resource not found for the segment …"); v1.0 omits ``isEncrypted`` on OMA settings;
* Intune errors (403/404) carry a JSON document *as a string* in ``error.message``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from graphsim.catalog import Catalog
from graphsim.tenants import SimPolicy, SimTenant

JSON = dict[str, Any]

BETA = frozenset({"beta"})
BOTH = frozenset({"beta", "v1.0"})
V1 = frozenset({"v1.0"})
DEFAULT_PAGE = 25
TIPS = ("Use $select to choose only the properties your app needs, as this can lead to performance "
        "improvements. For example: GET deviceManagement/configurationPolicies?$select=assignments,"
        "createdDateTime")
_KEY_SEGMENT = re.compile(r"\('([^'=]*)'\)")


# --- request / response ------------------------------------------------------------------------


@dataclass
class GraphRequest:
    """One Graph call (direct or inside a $batch), already authenticated."""

    method: str
    version: str  # "beta" | "v1.0"
    path: str  # after the version, unquoted, key segments normalised: /deviceManagement/…
    params: list[tuple[str, str]]  # query parameters as sent, decoded, in order
    tenant: SimTenant
    base_url: str
    body: Any = None
    query: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        # OData options by lower-case name without "$" ($top and top both work, as in beta)
        self.query = {k.lower().lstrip("$"): v for k, v in self.params}


@dataclass
class GraphResponse:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class GraphError(Exception):
    """Raised by handlers; becomes Graph's error body."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def error_body(code: str, message: str, client_request_id: str | None = None) -> JSON:
    """Graph's error shape, with the innerError Graph adds."""
    request_id = str(uuid.uuid4())
    return {"error": {"code": code, "message": message, "innerError": {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": client_request_id or request_id,
    }}}


_FEF_SERVICES = {
    "configurationpolicies": "DeviceConfigV2/StatelessDeviceConfigV2FEService",
    "compliancepolicies": "DeviceConfigV2/StatelessDeviceConfigV2FEService",
    "intents": "DeviceIntent/StatelessDeviceIntentFEService",
    "templates": "DeviceIntent/StatelessDeviceIntentFEService",
}


def intune_message(message: str, path: str) -> str:
    """The JSON-in-a-string message Intune's front end puts into ``error.message``."""
    parts = [p for p in path.split("/") if p]
    key = parts[1].lower() if len(parts) > 1 else ""
    service = _FEF_SERVICES.get(key) or (
        "StatelessAppProtectionFEService/StatelessAppProtectionFEService"
        if parts and parts[0].lower() == "deviceappmanagement"
        else "DeviceConfiguration/StatelessDeviceConfigurationFEService")
    doc = {
        "_version": 3,
        "Message": f"{message} - Operation ID (for customer support): 00000000-0000-0000-0000-000000000000 - "
                   f"Activity ID: {uuid.uuid4()} - Url: https://fef.msua06.manage.microsoft.com/{service}"
                   f"{path}?api-version=5024-11-01",
        "CustomApiErrorPhrase": "",
        "RetryAfter": None,
        "ErrorSourceService": "",
        "HttpHeaders": "{}",
    }
    return json.dumps(doc, indent=2).replace("\n", "\r\n")


def forbidden_message(path: str, *, readwrite: bool = False) -> str:
    """The Intune 403 for an app without the right application permission."""
    # auditEvents: "DeviceManagementApps.Read.All, DeviceManagementApps.ReadWrite.All" (Graph's docs,
    # intune-auditing-auditevent-list, application permissions)
    low = path.lower()
    # remediations and custom compliance scripts: DeviceManagementScripts.* (beta intune-devices-
    # devicehealthscript-list); the Entra paths (/identity) are answered by the server, not here
    if not readwrite and low.startswith(("/devicemanagement/devicehealthscripts",
                                         "/devicemanagement/devicecompliancescripts")):
        return intune_message("Application is not authorized to perform this operation. Application must have one "
                              "of the following scopes: DeviceManagementScripts.Read.All, "
                              "DeviceManagementScripts.ReadWrite.All", path)
    apps = low.startswith(("/deviceappmanagement", "/devicemanagement/auditevents"))
    scopes = ("DeviceManagementApps.ReadWrite.All" if apps else "DeviceManagementConfiguration.ReadWrite.All") \
        if readwrite else ("DeviceManagementApps.Read.All, DeviceManagementApps.ReadWrite.All" if apps else
                           "DeviceManagementConfiguration.Read.All, DeviceManagementConfiguration.ReadWrite.All")
    return intune_message("Application is not authorized to perform this operation. Application must have one "
                          f"of the following scopes: {scopes}", path)


def normalise_path(path: str) -> str:
    """``/a('x')/b/`` → ``/a/x/b`` (OData key segments become path segments)."""
    path = _KEY_SEGMENT.sub(lambda m: "/" + m.group(1), path)
    return path.rstrip("/") or "/"


# --- OData helpers ------------------------------------------------------------------------------


def _split_top_level(text: str, sep: str) -> list[str]:
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    return [p.strip() for p in out if p.strip()]


def parse_expand(text: str | None) -> dict[str, JSON]:
    """``a,b($expand=c;$select=x,y)`` → ``{"a": {}, "b": {"expand": {"c": {}}, "select": ["x","y"]}}``.

    Names are lower-cased (Graph matches them case-insensitively)."""
    result: dict[str, JSON] = {}
    if not text:
        return result
    for item in _split_top_level(text, ","):
        name, _, rest = item.partition("(")
        opts: JSON = {}
        if rest:
            if not rest.endswith(")"):
                raise GraphError(400, "BadRequest", f"Parsing OData Select and Expand failed: Syntax error "
                                                    f"at position {len(item)} in '{text}'.")
            for option in _split_top_level(rest[:-1], ";"):
                key, _, value = option.partition("=")
                key = key.strip().lower().lstrip("$")
                if key == "expand":
                    opts["expand"] = parse_expand(value)
                elif key == "select":
                    opts["select"] = [v.strip() for v in value.split(",") if v.strip()]
        result[name.strip().lower()] = opts
    return result


def check_expand(expand: dict[str, JSON], allowed: dict[str, Any], entity_type: str) -> None:
    """Raise Graph's 400 for navigation properties the type does not have.

    ``allowed`` maps lower-case names to ``(entity type, nested allowed)`` or None."""
    for name, opts in expand.items():
        if name not in allowed:
            raise GraphError(400, "BadRequest", "Parsing OData Select and Expand failed: Could not find a "
                                                f"property named '{name}' on type 'microsoft.graph.{entity_type}'.")
        nested = opts.get("expand")
        if nested:
            sub_type, sub_allowed = allowed[name] or (name, {})
            check_expand(nested, sub_allowed, sub_type)


def _select(item: JSON, select: Sequence[str] | None, keep: Sequence[str] = ()) -> JSON:
    if not select:
        return item
    wanted = {s.lower() for s in select} | {"id", "@odata.type"} | {k.lower() for k in keep}
    return {k: v for k, v in item.items() if k.lower() in wanted}


def _encode_skiptoken(offset: int, path: str) -> str:
    raw = f"{offset}|{zlib.crc32(path.lower().encode()):08x}".encode()
    return base64.b64encode(b"sim:" + raw).decode()


def _decode_skiptoken(token: str, path: str) -> int:
    try:
        raw = base64.b64decode(token.encode(), validate=True).decode()
        prefix, offset, check = raw[:4], *raw[4:].split("|")
        if prefix != "sim:" or check != f"{zlib.crc32(path.lower().encode()):08x}":
            raise ValueError
        return int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise GraphError(400, "BadRequest", "The $skiptoken value is invalid for this request.") from None


def _quote(value: str) -> str:
    return quote(value, safe="$(),'=:;*@/")


def _int_option(req: GraphRequest, name: str) -> int | None:
    raw = req.query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise GraphError(400, "BadRequest", f"Invalid value '{raw}' for query option ${name}.") from None
    if value < 0:
        raise GraphError(400, "BadRequest", f"Invalid value '{raw}' for query option ${name}: must be >= 0.")
    return value


_AUDIT_TIME = re.compile(r"activityDateTime\s+(gt|ge|lt|le)\s+(\S+)", re.IGNORECASE)
_AUDIT_OP = re.compile(r"activityOperationType\s+(eq|ne)\s+'([^']*)'", re.IGNORECASE)


def _graph_instant(text: str) -> dt.datetime:
    """A DateTimeOffset (`2026-12-01T08:00:00.1234567Z`, `2026-12-01T08:00:00Z`, `…+01:00`) as aware UTC."""
    raw = text.strip().strip("'")
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?", raw)
    if m is None:
        raise GraphError(400, "BadRequest", f"Invalid filter clause: '{raw}' is not a valid DateTimeOffset.")
    moment = dt.datetime.fromisoformat(m[1]).replace(microsecond=int((m[2] or "0")[:6].ljust(6, "0")))
    zone = m[3] or "Z"
    offset = dt.timezone.utc if zone == "Z" else dt.timezone(
        (1 if zone[0] == "+" else -1) * dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    return moment.replace(tzinfo=offset).astimezone(dt.timezone.utc)


def _audit_filter(text: str | None) -> list[Callable[[JSON], bool]]:
    """The auditEvents $filter as predicates; a clause the simulator does not know answers 400."""
    if not text:
        return []
    ops = {"gt": lambda a, b: a > b, "ge": lambda a, b: a >= b, "lt": lambda a, b: a < b,
           "le": lambda a, b: a <= b, "eq": lambda a, b: a == b, "ne": lambda a, b: a != b}
    tests: list[Callable[[JSON], bool]] = []
    for clause in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        if (m := _AUDIT_TIME.fullmatch(clause.strip())) is not None:
            op, bound = ops[m[1].lower()], _graph_instant(m[2])
            tests.append(lambda e, op=op, bound=bound: op(_graph_instant(e["activityDateTime"]), bound))
        elif (m := _AUDIT_OP.fullmatch(clause.strip())) is not None:
            op, value = ops[m[1].lower()], m[2]
            tests.append(lambda e, op=op, value=value: op(e.get("activityOperationType"), value))
        else:
            raise GraphError(400, "BadRequest", f"Invalid filter clause: '{clause}' is not supported by the "
                                                "simulator on auditEvents.")
    return tests


# --- collections as data ---------------------------------------------------------------------------

_SETTINGS_NAV = ("deviceManagementConfigurationSetting",
                 {"settingdefinitions": ("deviceManagementConfigurationSettingDefinition", {})})
_RULES_NAV = ("deviceComplianceScheduledActionForRule",
              {"scheduledactionconfigurations": ("deviceComplianceActionItem", {})})
_DV_NAV = ("groupPolicyDefinitionValue", {
    "definition": ("groupPolicyDefinition", {}),
    "presentationvalues": ("groupPolicyPresentationValue", {"presentation": ("groupPolicyPresentation", {})}),
})


#: collection-valued relationships held in SimPolicy.related: $expand name (lower case) -> Graph's name
_RELATED = {"roleassignments": "roleAssignments", "localizednotificationmessages": "localizedNotificationMessages",
            "enrollmentprofiles": "enrollmentProfiles"}


#: the one $filter the simulator reads on mobileApps: the tenant's own and assigned apps, without the
#: built-in store apps Intune lists for app protection (IntuneCD backup/Intune/Applications.py and
#: IntuneBackupAndRestore Invoke-IntuneBackupClientApp.ps1 send exactly this; `appAvailability` is a
#: property of managedApp, Graph beta intune-apps-managedapp: global / lineOfBusiness)
APP_FILTER = ("(microsoft.graph.managedApp/appAvailability eq null or microsoft.graph.managedApp/appAvailability "
              "eq 'lineOfBusiness' or isAssigned eq true)")


def _app_filter(text: str) -> Callable[[JSON], bool]:
    if " ".join(text.split()) != APP_FILTER:
        raise GraphError(400, "BadRequest", f"Invalid filter clause: the simulator reads only {APP_FILTER!r} "
                                            "on mobileApps.")
    return lambda app: app.get("appAvailability") in (None, "lineOfBusiness") or app.get("isAssigned") is True


@dataclass(frozen=True)
class CollectionSpec:
    """One policy collection as Graph exposes it."""

    segment: str  # URL path under the version, e.g. /deviceManagement/configurationPolicies
    collections: tuple[str, ...]  # SimTenant collections behind it
    entity_type: str
    navigation: dict[str, Any]  # expandable properties (lower case) -> (type, nested) | None
    versions: frozenset[str] = BOTH
    max_top: int = 100
    always_count: bool = False
    tips: bool = False
    sub: tuple[str, ...] = ()  # sub-collections served at /{id}/<name>
    list_omit: tuple[str, ...] = ()  # properties only a single GET returns (scriptContent)


COLLECTIONS: tuple[CollectionSpec, ...] = (
    CollectionSpec("/deviceManagement/configurationPolicies", ("configurationPolicies",),
                   "deviceManagementConfigurationPolicy",
                   {"assignments": None, "settings": _SETTINGS_NAV}, BETA, always_count=True, tips=True,
                   sub=("settings", "assignments")),
    CollectionSpec("/deviceManagement/compliancePolicies", ("compliancePolicies",),
                   "deviceManagementCompliancePolicy",
                   {"assignments": None, "settings": _SETTINGS_NAV, "scheduledactionsforrule": None}, BETA,
                   always_count=True, sub=("settings", "assignments")),
    CollectionSpec("/deviceManagement/deviceConfigurations", ("deviceConfigurations",), "deviceConfiguration",
                   {"assignments": None}, max_top=1000, sub=("assignments",)),
    CollectionSpec("/deviceManagement/deviceCompliancePolicies", ("deviceCompliancePolicies",),
                   "deviceCompliancePolicy", {"assignments": None, "scheduledactionsforrule": _RULES_NAV},
                   max_top=1000, sub=("assignments", "scheduledActionsForRule")),
    CollectionSpec("/deviceManagement/intents", ("intents",), "deviceManagementIntent",
                   {"assignments": None, "settings": None}, BETA, sub=("settings", "assignments")),
    CollectionSpec("/deviceManagement/groupPolicyConfigurations", ("groupPolicyConfigurations",),
                   "groupPolicyConfiguration", {"assignments": None, "definitionvalues": _DV_NAV}, BETA,
                   sub=("assignments", "definitionValues")),
    # managedAppPolicies mixes protection and app configuration (IntuneManagement EndpointManager.psm1)
    CollectionSpec("/deviceAppManagement/managedAppPolicies",
                   ("iosManagedAppProtections", "androidManagedAppProtections", "windowsManagedAppProtections",
                    "windowsInformationProtectionPolicies", "mdmWindowsInformationProtectionPolicies",
                    "targetedManagedAppConfigurations"), "managedAppPolicy", {}),
    CollectionSpec("/deviceAppManagement/iosManagedAppProtections", ("iosManagedAppProtections",),
                   "iosManagedAppProtection", {"apps": None, "assignments": None, "deploymentsummary": None},
                   sub=("assignments", "apps")),
    CollectionSpec("/deviceAppManagement/androidManagedAppProtections", ("androidManagedAppProtections",),
                   "androidManagedAppProtection", {"apps": None, "assignments": None, "deploymentsummary": None},
                   sub=("assignments", "apps")),
    CollectionSpec("/deviceAppManagement/windowsManagedAppProtections", ("windowsManagedAppProtections",),
                   "windowsManagedAppProtection", {"apps": None, "assignments": None, "deploymentsummary": None},
                   sub=("assignments", "apps")),
    CollectionSpec("/deviceAppManagement/windowsInformationProtectionPolicies",
                   ("windowsInformationProtectionPolicies",), "windowsInformationProtectionPolicy",
                   {"assignments": None}, sub=("assignments",)),
    CollectionSpec("/deviceAppManagement/mdmWindowsInformationProtectionPolicies",
                   ("mdmWindowsInformationProtectionPolicies",), "mdmWindowsInformationProtectionPolicy",
                   {"assignments": None}, sub=("assignments",)),
    CollectionSpec("/deviceAppManagement/targetedManagedAppConfigurations", ("targetedManagedAppConfigurations",),
                   "targetedManagedAppConfiguration", {"apps": None, "assignments": None, "deploymentsummary": None},
                   sub=("assignments", "apps")),
    CollectionSpec("/deviceManagement/deviceEnrollmentConfigurations", ("deviceEnrollmentConfigurations",),
                   "deviceEnrollmentConfiguration", {"assignments": None}, sub=("assignments",)),
    CollectionSpec("/deviceManagement/deviceManagementScripts", ("deviceManagementScripts",),
                   "deviceManagementScript", {"assignments": None, "groupassignments": None}, BETA,
                   sub=("assignments",), list_omit=("scriptContent",)),
    CollectionSpec("/deviceManagement/deviceShellScripts", ("deviceShellScripts",), "deviceShellScript",
                   {"assignments": None, "groupassignments": None}, BETA, sub=("assignments",),
                   list_omit=("scriptContent",)),
    CollectionSpec("/deviceManagement/windowsAutopilotDeploymentProfiles", ("windowsAutopilotDeploymentProfiles",),
                   "windowsAutopilotDeploymentProfile", {"assignments": None, "assigneddevices": None}, BETA,
                   sub=("assignments",)),
    CollectionSpec("/deviceManagement/windowsFeatureUpdateProfiles", ("windowsFeatureUpdateProfiles",),
                   "windowsFeatureUpdateProfile", {"assignments": None}, BETA, sub=("assignments",)),
    CollectionSpec("/deviceManagement/windowsQualityUpdateProfiles", ("windowsQualityUpdateProfiles",),
                   "windowsQualityUpdateProfile", {"assignments": None}, BETA, sub=("assignments",)),
    CollectionSpec("/deviceManagement/windowsDriverUpdateProfiles", ("windowsDriverUpdateProfiles",),
                   "windowsDriverUpdateProfile", {"assignments": None}, BETA, sub=("assignments",)),
    # beta deviceManagement.windowsQualityUpdatePolicies (windowsQualityUpdatePolicy, with assignments),
    # beside windowsQualityUpdateProfiles in Graph's beta metadata (msgraph-metadata beta_metadata.xml;
    # the generated msgraph-sdk beta request builders DeviceManagement/WindowsQualityUpdatePolicies);
    # CIPP and IntuneManagement list both collections.
    CollectionSpec("/deviceManagement/windowsQualityUpdatePolicies", ("windowsQualityUpdatePolicies",),
                   "windowsQualityUpdatePolicy", {"assignments": None}, BETA, sub=("assignments",)),
    # managed-device app configuration (managedDeviceMobileAppConfiguration: iosMobileAppConfiguration,
    # androidManagedStoreAppConfiguration …), listed with $expand=assignments by IntuneManagement, CIPP
    # and IntuneCD (Graph docs intune-apps-manageddevicemobileappconfiguration-list; v1.0 and beta)
    CollectionSpec("/deviceAppManagement/mobileAppConfigurations", ("mobileAppConfigurations",),
                   "managedDeviceMobileAppConfiguration",
                   {"assignments": None, "devicestatuses": None, "userstatuses": None,
                    "devicestatussummary": None, "userstatussummary": None}, sub=("assignments",)),
    # --- coverage types (graphsim/coverage.py; sources in README.md, "Coverage types")
    # beta deviceHealthScript: assignments, deviceRunStates, runSummary relationships; the list leaves
    # the script bodies out like deviceManagementScripts (M365Documentation reads each script again)
    CollectionSpec("/deviceManagement/deviceHealthScripts", ("deviceHealthScripts",), "deviceHealthScript",
                   {"assignments": None, "devicerunstates": None, "runsummary": None}, BETA, sub=("assignments",),
                   list_omit=("detectionScriptContent", "remediationScriptContent")),
    CollectionSpec("/deviceManagement/deviceComplianceScripts", ("deviceComplianceScripts",),
                   "deviceComplianceScript", {"assignments": None, "devicerunstates": None, "runsummary": None},
                   BETA, sub=("assignments",), list_omit=("detectionScriptContent",)),
    # beta mobileApp: assignments, categories relationships; /mobileApps/{id}/assignments
    CollectionSpec("/deviceAppManagement/mobileApps", ("mobileApps",), "mobileApp",
                   {"assignments": None, "categories": None}, sub=("assignments",)),
    # beta roleScopeTag: assignments (roleScopeTagAutoAssignment)
    CollectionSpec("/deviceManagement/roleScopeTags", ("roleScopeTags",), "roleScopeTag",
                   {"assignments": None}, BETA),
    # v1.0 and beta conditionalAccessRoot: policies, namedLocations (Entra, not Intune)
    CollectionSpec("/identity/conditionalAccess/policies", ("conditionalAccessPolicies",),
                   "conditionalAccessPolicy", {}),
    CollectionSpec("/identity/conditionalAccess/namedLocations", ("namedLocations",), "namedLocation", {}),
    # beta deviceCustomAttributeShellScript: assignments, groupAssignments, runSummary …; scriptContent only
    # in the single GET, as deviceShellScripts
    CollectionSpec("/deviceManagement/deviceCustomAttributeShellScripts", ("deviceCustomAttributeShellScripts",),
                   "deviceCustomAttributeShellScript", {"assignments": None, "groupassignments": None}, BETA,
                   sub=("assignments",), list_omit=("scriptContent",)),
    # beta roleDefinition: roleAssignments relationship (/roleDefinitions/{id}/roleAssignments)
    CollectionSpec("/deviceManagement/roleDefinitions", ("roleDefinitions",), "roleDefinition",
                   {"roleassignments": None}, BETA, sub=("roleAssignments",)),
    CollectionSpec("/deviceManagement/deviceCategories", ("deviceCategories",), "deviceCategory", {}),
    # notificationMessageTemplate: localizedNotificationMessages relationship
    CollectionSpec("/deviceManagement/notificationMessageTemplates", ("notificationMessageTemplates",),
                   "notificationMessageTemplate", {"localizednotificationmessages": None},
                   sub=("localizedNotificationMessages",)),
    CollectionSpec("/deviceManagement/reusablePolicySettings", ("reusablePolicySettings",),
                   "deviceManagementReusablePolicySetting",
                   {"referencingconfigurationpolicies": None}, BETA),
    # connectors: vppToken (v1.0 and beta), depOnboardingSetting with its enrollmentProfiles relationship,
    # complianceManagementPartner, deviceManagementPartner, remoteAssistancePartner (graphsim/README.md)
    CollectionSpec("/deviceAppManagement/vppTokens", ("vppTokens",), "vppToken", {}),
    CollectionSpec("/deviceManagement/depOnboardingSettings", ("depOnboardingSettings",), "depOnboardingSetting",
                   {"enrollmentprofiles": None, "importedappledeviceidentities": None, "defaultiosenrollmentprofile": None,
                    "defaultmacosenrollmentprofile": None}, BETA, sub=("enrollmentProfiles",)),
    CollectionSpec("/deviceManagement/complianceManagementPartners", ("complianceManagementPartners",),
                   "complianceManagementPartner", {}),
    CollectionSpec("/deviceManagement/deviceManagementPartners", ("deviceManagementPartners",),
                   "deviceManagementPartner", {}),
    CollectionSpec("/deviceManagement/remoteAssistancePartners", ("remoteAssistancePartners",),
                   "remoteAssistancePartner", {}),
)

#: navigation links between profiles, served at /{collection}/{id}/microsoft.graph.{type}/{nav}:
#: @odata.type (short, lower case) -> {navigation (lower case): (Graph's spelling, collection-valued)}.
#: This is the simulator's own copy (an independent check of tenantpilot/sync/links.py), for the types the
#: simulated tenants hold. Sources: Graph beta resource pages, "Relationships" tables:
#: intune-deviceconfig-iosenterprisewificonfiguration (rootCertificatesForServerValidation: collection
#: of iosTrustedRootCertificate; identityCertificateForClientAuthentication), -macosenterprisewificonfiguration
#: (rootCertificateForServerValidation, rootCertificatesForServerValidation, identityCertificate-
#: ForClientAuthentication), -androiddeviceownerenterprisewificonfiguration, and
#: intune-enrollment-activedirectorywindowsautopilotdeploymentprofile (domainJoinConfiguration:
#: windowsDomainJoinConfiguration). The type-cast route is the form those pages' API pages give
#: ("GET /deviceManagement/deviceConfigurations/{id}/microsoft.graph.…/rootCertificateForServerValidation").
NAVIGATION_LINKS: dict[str, dict[str, tuple[str, bool]]] = {
    "iosenterprisewificonfiguration": {
        "rootcertificatesforservervalidation": ("rootCertificatesForServerValidation", True),
        "identitycertificateforclientauthentication": ("identityCertificateForClientAuthentication", False)},
    "macosenterprisewificonfiguration": {
        "rootcertificateforservervalidation": ("rootCertificateForServerValidation", False),
        "rootcertificatesforservervalidation": ("rootCertificatesForServerValidation", True),
        "identitycertificateforclientauthentication": ("identityCertificateForClientAuthentication", False)},
    "androiddeviceownerenterprisewificonfiguration": {
        "rootcertificateforservervalidation": ("rootCertificateForServerValidation", False),
        "rootcertificatesforservervalidation": ("rootCertificatesForServerValidation", True),
        "identitycertificateforclientauthentication": ("identityCertificateForClientAuthentication", False)},
    "activedirectorywindowsautopilotdeploymentprofile": {
        "domainjoinconfiguration": ("domainJoinConfiguration", False)},
}
SPECS: dict[str, CollectionSpec] = {s.segment.rsplit("/", 1)[-1]: s for s in COLLECTIONS}
#: single objects under /deviceManagement (SimTenant collection -> path segment): beta
#: applePushNotificationCertificate, androidManagedStoreAccountEnterpriseSettings (singleton relationships
#: of deviceManagement) and deviceManagement's `settings` property (deviceManagementSettings, no id)
SINGLES: dict[str, str] = {"applePushNotificationCertificate": "applePushNotificationCertificate",
                           "androidManagedStoreAccountEnterpriseSettings": "androidManagedStoreAccountEnterpriseSettings",
                           "deviceManagementSettings": "settings"}

Handler = Callable[[GraphRequest, "re.Match[str]"], GraphResponse]


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern[str]
    handler: Handler
    versions: frozenset[str] = BOTH
    methods: frozenset[str] = frozenset({"GET"})
    filterable: bool = False  # the handler reads $filter itself (elsewhere the simulator refuses it)


class GraphApi:
    """The route table and the handlers."""

    def __init__(self, catalog: Catalog, *, plaintext_allowed: Callable[[], bool] = lambda: False) -> None:
        self.catalog = catalog
        self.plaintext_allowed = plaintext_allowed
        self.routes: list[Route] = []
        for spec in COLLECTIONS:
            base = re.escape(spec.segment)
            self._add(base, self._bind(self.list_policies, spec), spec.versions,
                      filterable=spec.segment == "/deviceAppManagement/mobileApps")
            self._add(base + r"/(?P<id>[^/]+)", self._bind(self.get_policy, spec), spec.versions)
            for sub in spec.sub:
                handler = {"settings": self.list_settings, "assignments": self.list_assignments,
                           "apps": self.list_apps, "scheduledActionsForRule": self.list_rules,
                           "definitionValues": self.list_definition_values}.get(sub, self.list_related)
                self._add(base + r"/(?P<id>[^/]+)/" + sub, self._bind(handler, spec), spec.versions)
        for coll in ("deviceConfigurations", "windowsAutopilotDeploymentProfiles"):
            self._add(re.escape(f"/deviceManagement/{coll}/") + r"(?P<id>[^/]+)/microsoft\.graph\.(?P<type>[A-Za-z0-9]+)"
                      r"/(?P<nav>[A-Za-z]+)", self._bind(self.get_link, SPECS[coll]), BETA)
        gp = re.escape("/deviceManagement/groupPolicyConfigurations/") + r"(?P<id>[^/]+)/definitionValues/(?P<dv>[^/]+)"
        self._add(gp, self.get_definition_value, BETA)
        self._add(gp + "/presentationValues", self.list_presentation_values, BETA)
        self._add(gp + "/definition", self.get_definition_of_value, BETA)
        self._add(r"/deviceManagement/groupPolicyDefinitions/(?P<id>[^/]+)", self.get_gp_definition, BETA)
        self._add(r"/deviceManagement/groupPolicyDefinitions/(?P<id>[^/]+)/presentations",
                  self.list_gp_presentations, BETA)
        self._add(r"/deviceManagement/deviceConfigurations/(?P<id>[^/]+)/getOmaSettingPlainTextValue"
                  r"\(secretReferenceValueId='(?P<ref>[^']*)'\)", self.oma_plain_text)
        self._add(r"/deviceManagement/templates", self.list_templates, BETA)
        self._add(r"/deviceManagement/templates/(?P<id>[^/]+)", self.get_template, BETA)
        self._add(r"/deviceManagement/templates/(?P<id>[^/]+)/categories", self.list_template_categories, BETA)
        self._add(r"/deviceManagement/configurationSettings/(?P<id>[^/]+)", self.get_setting_definition, BETA)
        self._add(r"/deviceManagement/configurationCategories", self.list_categories, BETA)
        self._add(r"/deviceManagement/configurationCategories/(?P<id>[^/]+)", self.get_category, BETA)
        for single in SINGLES:
            self._add(re.escape(f"/deviceManagement/{SINGLES[single]}"), self._bind_single(single), BETA)
        self._add(r"/deviceManagement/assignmentFilters", self.list_filters, BETA)
        self._add(r"/deviceManagement/assignmentFilters/(?P<id>[^/]+)", self.get_filter, BETA)
        self._add(r"/deviceManagement/auditEvents", self.list_audit_events, filterable=True)
        self._add(r"/groups", self.list_groups)
        self._add(r"/groups/(?P<id>[^/]+)", self.get_group)
        self._add(r"/directoryObjects/getByIds", self.get_by_ids, methods=frozenset({"POST"}))
        # what conditional access names by id (v1.0 user-get, unifiedroledefinition-get, serviceprincipal-get)
        self._add(r"/users/(?P<id>[^/]+)", self._bind_directory("users", "users"), V1)
        self._add(r"/roleManagement/directory/roleDefinitions/(?P<id>[^/]+)",
                  self._bind_directory("role_definitions", "roleManagement/directory/roleDefinitions"), V1)
        self._add(r"/servicePrincipals\(appId='(?P<id>[^']+)'\)",
                  self._bind_directory("service_principals", "servicePrincipals"), V1)
        self.known_segments = {s.lower() for r in self.routes
                               for s in re.split(r"/", r.pattern.pattern.replace("\\", ""))
                               if re.fullmatch(r"[A-Za-z$.]+", s)}

    def _add(self, pattern: str, handler: Handler, versions: frozenset[str] = BOTH,
             methods: frozenset[str] = frozenset({"GET"}), *, filterable: bool = False) -> None:
        self.routes.append(Route(re.compile(pattern, re.IGNORECASE), handler, versions, methods, filterable))

    @staticmethod
    def _bind(fn: Callable[..., GraphResponse], spec: CollectionSpec) -> Handler:
        return lambda req, m: fn(req, m, spec)

    def _bind_single(self, collection: str) -> Handler:
        return lambda req, m: self.get_single(req, collection)

    def get_single(self, req: GraphRequest, collection: str) -> GraphResponse:
        """A single object (SINGLES). A tenant without it answers 404 [guess: what Intune answers for a
        tenant that never uploaded an APNs certificate was not found written down; the simulated tenants
        built without coverage answer so for all three]."""
        items = req.tenant.list_policies(collection)
        if not items:
            raise GraphError(404, "ResourceNotFound", intune_message(
                f"Resource not found: {SINGLES[collection]}", req.path))
        body = dict(items[0].resource)
        if collection == "deviceManagementSettings":
            body.pop("id", None)  # a property of the deviceManagement singleton, not an entity
        return GraphResponse(200, {"@odata.context": self._context(req, f"deviceManagement/{SINGLES[collection]}"
                                                                        + ("" if "id" not in body else "/$entity")),
                                   **body})

    # --- dispatch

    def handle(self, req: GraphRequest) -> GraphResponse:
        """Route one request; every failure comes back as Graph's error shape."""
        try:
            for route in self.routes:
                match = route.pattern.fullmatch(req.path)
                if match is None:
                    continue
                if req.version not in route.versions:
                    segment = next((s for s in req.path.split("/")[2:3]), req.path)
                    raise GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")
                if req.method not in route.methods:
                    raise GraphError(405, "BadRequest", "No OData route exists that match template "
                                                        f"~/singleton/navigation with http verb {req.method} "
                                                        f"for request {req.path}.")
                if "filter" in req.query and not route.filterable:
                    raise GraphError(400, "BadRequest", "Invalid filter clause: $filter is not supported "
                                                        f"by the simulator on '{req.path}'.")
                if "search" in req.query:
                    raise GraphError(400, "BadRequest", "Search is not supported on this resource.")
                return route.handler(req, match)
            segments = [s for s in req.path.split("/") if s]
            unknown = next((s for s in segments if s.lower() not in self.known_segments and
                            not re.fullmatch(r"[0-9a-fA-F-]{36}|T_[0-9a-fA-F-]{36}", s)),
                           segments[-1] if segments else "")
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{unknown}'.")
        except GraphError as exc:
            return GraphResponse(exc.status, error_body(exc.code, exc.message), exc.headers)

    # --- shared pieces

    def _context(self, req: GraphRequest, suffix: str) -> str:
        return f"{req.base_url}/{req.version}/$metadata#{suffix}"

    def page(self, req: GraphRequest, items: Sequence[Any], render: Callable[[Any], JSON], context: str, *,
             max_top: int = 100, count: bool = False, fixed_top: int | None = None,
             tips: bool = False) -> GraphResponse:
        """One page of a collection, with an absolute nextLink when more remain."""
        offset = _int_option(req, "skip") or 0
        token = req.query.get("skiptoken")
        if token:
            offset = _decode_skiptoken(token, req.path)
        top = _int_option(req, "top")
        top = DEFAULT_PAGE if top is None else max(1, min(top, max_top))
        if fixed_top is not None:
            top = fixed_top
        chunk = items[offset: offset + top]
        body: JSON = {"@odata.context": self._context(req, context)}
        if count or req.query.get("count", "").lower() == "true":
            body["@odata.count"] = len(items)
        if tips and "select" not in req.query:
            body["@microsoft.graph.tips"] = TIPS
        if offset + top < len(items):
            kept = [(k, v) for k, v in req.params if k.lower().lstrip("$") not in ("skiptoken", "skip")]
            query = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in kept)
            token = _quote(_encode_skiptoken(offset + top, req.path)).replace("=", "%3D")
            sep = "&" if query else ""
            body["@odata.nextLink"] = f"{req.base_url}/{req.version}{req.path}?{query}{sep}$skiptoken={token}"
        body["value"] = [render(x) for x in chunk]
        return GraphResponse(200, body)

    def _policy(self, req: GraphRequest, spec: CollectionSpec, policy_id: str) -> SimPolicy:
        for coll in spec.collections:
            policy = req.tenant.get_policy(coll, policy_id)
            if policy is not None:
                return policy
        raise GraphError(404, "ResourceNotFound", intune_message(
            f"Resource not found: {spec.segment.rsplit('/', 1)[-1]}('{policy_id}')", req.path))

    def _resource(self, req: GraphRequest, policy: SimPolicy) -> JSON:
        body = dict(policy.resource)
        if req.version == "v1.0" and "omaSettings" in body:
            body["omaSettings"] = [{k: v for k, v in o.items() if k not in ("isEncrypted", "secretReferenceValueId")}
                                   for o in body["omaSettings"]]
        return body

    def _render_policy(self, req: GraphRequest, policy: SimPolicy, expand: dict[str, JSON],
                       select: Sequence[str] | None, *, single: bool, omit: Sequence[str] = ()) -> JSON:
        body = _select(self._resource(req, policy), select, expand.keys())
        for key in omit:
            body.pop(key, None)
        for name, opts in expand.items():
            nested = opts.get("expand") or {}
            if name == "assignments":
                endpoint_security = str((policy.resource.get("templateReference") or {}).get(
                    "templateFamily", "")).startswith("endpointSecurity")
                empty = policy.collection == "intents" or (single and endpoint_security)
                body["assignments"] = [] if empty else list(policy.assignments)
            elif name == "settings":
                body["settings"] = [self._render_setting(s, "settingdefinitions" in nested) for s in policy.settings]
            elif name == "scheduledactionsforrule":
                body["scheduledActionsForRule"] = [self._render_rule(r, "scheduledactionconfigurations" in nested)
                                                   for r in policy.scheduled_actions]
            elif name == "apps":
                body["apps"] = list(policy.apps)
            elif name == "definitionvalues":
                body["definitionValues"] = [self._render_dv(dv, nested) for dv in policy.definition_values]
            elif name in _RELATED:
                body[_RELATED[name]] = list(policy.related.get(_RELATED[name], []))
            elif name in ("groupassignments", "assigneddevices"):
                body[{"groupassignments": "groupAssignments", "assigneddevices": "assignedDevices"}[name]] = []
            elif name == "deploymentsummary":
                body["deploymentSummary"] = {"id": policy.id, "displayName": policy.name,
                                             "configurationDeployedUserCount": 0,
                                             "lastRefreshTime": "0001-01-01T00:00:00Z",
                                             "configurationDeploymentSummaryPerApp": [],
                                             "version": policy.resource.get("version")}
        return body

    def _render_setting(self, setting: JSON, with_definitions: bool) -> JSON:
        if not with_definitions or "settingInstance" not in setting:
            return setting
        out = dict(setting)
        out["settingDefinitions"] = self.catalog.definitions_for(setting["settingInstance"])
        return out

    @staticmethod
    def _render_rule(rule: JSON, with_configurations: bool) -> JSON:
        if with_configurations:
            return rule
        return {k: v for k, v in rule.items() if k != "scheduledActionConfigurations"}

    @staticmethod
    def _render_dv(dv: JSON, expand: dict[str, JSON]) -> JSON:
        out = {k: v for k, v in dv.items() if k not in ("definition", "presentationValues")}
        if "definition" in expand:
            out["definition"] = _select(dv["definition"], expand["definition"].get("select"))
        if "presentationvalues" in expand:
            with_pres = "presentation" in (expand["presentationvalues"].get("expand") or {})
            out["presentationValues"] = [GraphApi._render_pv(pv, with_pres) for pv in dv["presentationValues"]]
        return out

    @staticmethod
    def _render_pv(pv: JSON, with_presentation: bool) -> JSON:
        if with_presentation:
            return pv
        return {k: v for k, v in pv.items() if k != "presentation"}

    def _expand(self, req: GraphRequest, navigation: dict[str, Any], entity_type: str) -> dict[str, JSON]:
        expand = parse_expand(req.query.get("expand"))
        check_expand(expand, navigation, entity_type)
        return expand

    # --- policy collections

    def list_policies(self, req: GraphRequest, m: re.Match[str], spec: CollectionSpec) -> GraphResponse:
        expand = self._expand(req, spec.navigation, spec.entity_type)
        select = [s for s in req.query.get("select", "").split(",") if s] or None
        items: list[SimPolicy] = []
        for coll in spec.collections:
            items.extend(req.tenant.list_policies(coll))
        if "filter" in req.query:  # only mobileApps' route is filterable
            items = [p for p in items if _app_filter(req.query["filter"])(p.resource)]
        fixed = 2 if "settings" in expand and spec.collections[0] == "configurationPolicies" else None
        return self.page(req, items, lambda p: self._render_policy(req, p, expand, select, single=False,
                                                                   omit=spec.list_omit),
                         spec.segment.lstrip("/"), max_top=spec.max_top, count=spec.always_count,
                         fixed_top=fixed, tips=spec.tips)

    def get_policy(self, req: GraphRequest, m: re.Match[str], spec: CollectionSpec) -> GraphResponse:
        expand = self._expand(req, spec.navigation, spec.entity_type)
        select = [s for s in req.query.get("select", "").split(",") if s] or None
        policy = self._policy(req, spec, m["id"])
        body = {"@odata.context": self._context(req, f"{spec.segment.lstrip('/')}/$entity")}
        body.update(self._render_policy(req, policy, expand, select, single=True))
        return GraphResponse(200, body)

    def get_link(self, req: GraphRequest, m: re.Match[str], spec: CollectionSpec) -> GraphResponse:
        """A navigation link through a type cast (see NAVIGATION_LINKS). An unset single-valued link is
        204 (OData Part 1 Protocol, "Requesting Related Entities": a navigation property that references
        no entity answers 204 No Content); an unset collection is an empty page. A cast to a type the
        policy is not answers 404 like a missing entity (OData Part 2 URL Conventions, "Addressing
        Derived Types"; [guess]: the exact answer Intune gives was not found written down)."""
        policy = self._policy(req, spec, m["id"])
        cast = m["type"].lower()
        navs = NAVIGATION_LINKS.get(cast)
        if navs is None or m["nav"].lower() not in navs:
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{m['nav']}'.")
        if str(policy.resource.get("@odata.type", "")).lstrip("#").lower() != f"microsoft.graph.{cast}":
            raise GraphError(404, "ResourceNotFound", intune_message(
                f"Resource not found: {spec.segment.rsplit('/', 1)[-1]}('{policy.id}') is not a {m['type']}", req.path))
        name, many = navs[m["nav"].lower()]
        select = [s for s in req.query.get("select", "").split(",") if s] or None
        linked = policy.links.get(name)
        ids = (linked if isinstance(linked, list) else [linked]) if linked else []
        targets = [t for t in (req.tenant.find_policy(i) for i in ids) if t is not None]
        if many:
            return self.page(req, targets, lambda t: _select(self._resource(req, t), select),
                             f"{spec.segment.lstrip('/')}('{policy.id}')/microsoft.graph.{m['type']}/{name}",
                             max_top=1000)
        if not targets:
            return GraphResponse(204, None)
        body = {"@odata.context": self._context(req, f"{spec.segment.lstrip('/')}('{policy.id}')/"
                                                     f"microsoft.graph.{m['type']}/{name}/$entity")}
        body.update(_select(self._resource(req, targets[0]), select))
        return GraphResponse(200, body)

    def list_settings(self, req: GraphRequest, m: re.Match[str], spec: CollectionSpec) -> GraphResponse:
        policy = self._policy(req, spec, m["id"])
        if policy.collection == "intents":
            expand = self._expand(req, {}, "deviceManagementSettingInstance")
            return self.page(req, policy.settings, lambda s: s,
                             f"{spec.segment.lstrip('/')}('{policy.id}')/settings", max_top=1000)
        expand = self._expand(req, _SETTINGS_NAV[1], _SETTINGS_NAV[0])
        with_defs = "settingdefinitions" in expand
        return self.page(req, policy.settings, lambda s: self._render_setting(s, with_defs),
                         f"{spec.segment.lstrip('/')}('{policy.id}')/settings", max_top=1000, count=True)

    def list_assignments(self, req: GraphRequest, m: re.Match[str], spec: CollectionSpec) -> GraphResponse:
        policy = self._policy(req, spec, m["id"])
        self._expand(req, {}, spec.entity_type + "Assignment")
        return self.page(req, policy.assignments, lambda a: a,
                         f"{spec.segment.lstrip('/')}('{policy.id}')/assignments", max_top=1000)

    def list_related(self, req: GraphRequest, m: re.Match[str], spec: CollectionSpec) -> GraphResponse:
        """A collection-valued relationship held in ``SimPolicy.related`` (roleAssignments,
        localizedNotificationMessages): the segment after the id names it."""
        policy = self._policy(req, spec, m["id"])
        name = req.path.rstrip("/").rsplit("/", 1)[-1]
        items = next((v for k, v in policy.related.items() if k.lower() == name.lower()), [])
        return self.page(req, items, lambda a: a, f"{spec.segment.lstrip('/')}('{policy.id}')/{name}", max_top=1000)

    def list_apps(self, req: GraphRequest, m: re.Match[str], spec: CollectionSpec) -> GraphResponse:
        policy = self._policy(req, spec, m["id"])
        return self.page(req, policy.apps, lambda a: a, f"{spec.segment.lstrip('/')}('{policy.id}')/apps",
                         max_top=1000)

    def list_rules(self, req: GraphRequest, m: re.Match[str], spec: CollectionSpec) -> GraphResponse:
        policy = self._policy(req, spec, m["id"])
        expand = self._expand(req, _RULES_NAV[1], _RULES_NAV[0])
        with_configs = "scheduledactionconfigurations" in expand
        return self.page(req, policy.scheduled_actions, lambda r: self._render_rule(r, with_configs),
                         f"{spec.segment.lstrip('/')}('{policy.id}')/scheduledActionsForRule", max_top=1000)

    def list_definition_values(self, req: GraphRequest, m: re.Match[str], spec: CollectionSpec) -> GraphResponse:
        policy = self._policy(req, spec, m["id"])
        expand = self._expand(req, _DV_NAV[1], _DV_NAV[0])
        return self.page(req, policy.definition_values, lambda dv: self._render_dv(dv, expand),
                         f"deviceManagement/groupPolicyConfigurations('{policy.id}')/definitionValues",
                         max_top=1000)

    def _dv(self, req: GraphRequest, m: re.Match[str]) -> tuple[SimPolicy, JSON]:
        policy = self._policy(req, SPECS["groupPolicyConfigurations"], m["id"])
        for dv in policy.definition_values:
            if dv["id"] == m["dv"]:
                return policy, dv
        raise GraphError(404, "ResourceNotFound", intune_message(
            f"Resource not found: definitionValues('{m['dv']}')", req.path))

    def get_definition_value(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        policy, dv = self._dv(req, m)
        expand = self._expand(req, _DV_NAV[1], _DV_NAV[0])
        body = {"@odata.context": self._context(
            req, f"deviceManagement/groupPolicyConfigurations('{policy.id}')/definitionValues/$entity")}
        body.update(self._render_dv(dv, expand))
        return GraphResponse(200, body)

    def list_presentation_values(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        policy, dv = self._dv(req, m)
        nav = _DV_NAV[1]["presentationvalues"]
        expand = self._expand(req, nav[1], nav[0])
        with_pres = "presentation" in expand
        return self.page(req, dv["presentationValues"], lambda pv: self._render_pv(pv, with_pres),
                         f"deviceManagement/groupPolicyConfigurations('{policy.id}')/definitionValues"
                         f"('{dv['id']}')/presentationValues", max_top=1000)

    def get_definition_of_value(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        _, dv = self._dv(req, m)
        body = {"@odata.context": self._context(req, "deviceManagement/groupPolicyDefinitions/$entity")}
        body.update(dv["definition"])
        return GraphResponse(200, body)

    def get_gp_definition(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        definition = self.catalog.gp_definitions.get(m["id"])
        if definition is None:
            raise GraphError(404, "ResourceNotFound", intune_message("Resource not found", req.path))
        return GraphResponse(200, {"@odata.context": self._context(
            req, "deviceManagement/groupPolicyDefinitions/$entity"), **definition})

    def list_gp_presentations(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        if m["id"] not in self.catalog.gp_definitions:
            raise GraphError(404, "ResourceNotFound", intune_message("Resource not found", req.path))
        items = [{k: v for k, v in p.items() if not k.startswith("_")}
                 for p in self.catalog.gp_presentations.values() if p["_definition_id"] == m["id"]]
        return self.page(req, items, lambda p: p,
                         f"deviceManagement/groupPolicyDefinitions('{m['id']}')/presentations", max_top=1000)

    def oma_plain_text(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        policy = self._policy(req, SPECS["deviceConfigurations"], m["id"])
        if not self.plaintext_allowed():
            raise GraphError(403, "Forbidden", forbidden_message(req.path, readwrite=True))
        refs = {o.get("secretReferenceValueId") for o in policy.resource.get("omaSettings") or ()}
        if m["ref"] not in refs or m["ref"] not in req.tenant.oma_secrets:
            raise GraphError(404, "ResourceNotFound", intune_message("Secret reference not found", req.path))
        return GraphResponse(200, {"@odata.context": self._context(req, "Edm.String"),
                                   "value": req.tenant.oma_secrets[m["ref"]]})

    # --- definitions and directory

    def list_templates(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        items = [t["resource"] for t in self.catalog.intent_templates.values()]
        return self.page(req, items, lambda t: {"@odata.type": "#microsoft.graph.securityBaselineTemplate"
                                                if t["templateType"] == "securityBaseline" else
                                                "#microsoft.graph.deviceManagementTemplate", **t},
                         "deviceManagement/templates")

    def _template(self, req: GraphRequest, template_id: str) -> JSON:
        template = self.catalog.intent_templates.get(template_id)
        if template is None:
            raise GraphError(404, "ResourceNotFound", intune_message("Resource not found", req.path))
        return template

    def get_template(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        template = self._template(req, m["id"])
        return GraphResponse(200, {"@odata.context": self._context(req, "deviceManagement/templates/$entity"),
                                   **template["resource"]})

    def list_template_categories(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        template = self._template(req, m["id"])
        expand = self._expand(req, {"settingdefinitions": None, "recommendedsettings": None},
                              "deviceManagementTemplateSettingCategory")

        def render(cat: JSON) -> JSON:
            out = {k: v for k, v in cat.items() if k != "settingDefinitions"}
            if "settingdefinitions" in expand:
                out["settingDefinitions"] = cat["settingDefinitions"]
            if "recommendedsettings" in expand:
                out["recommendedSettings"] = []
            return out

        return self.page(req, template["categories"], render,
                         f"deviceManagement/templates('{m['id']}')/categories", max_top=1000)

    def get_setting_definition(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        definition = self.catalog.setting_definitions.get(m["id"])
        if definition is None:
            raise GraphError(404, "ResourceNotFound", intune_message("Resource not found", req.path))
        return GraphResponse(200, {"@odata.context": self._context(
            req, "deviceManagement/configurationSettings/$entity"), **definition})

    def list_categories(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        return self.page(req, list(self.catalog.categories.values()), lambda c: c,
                         "deviceManagement/configurationCategories", max_top=1000)

    def get_category(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        category = self.catalog.categories.get(m["id"])
        if category is None:
            raise GraphError(404, "ResourceNotFound", intune_message("Resource not found", req.path))
        return GraphResponse(200, {"@odata.context": self._context(
            req, "deviceManagement/configurationCategories/$entity"), **category})

    def list_filters(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        return self.page(req, list(req.tenant.assignment_filters.values()), lambda f: f,
                         "deviceManagement/assignmentFilters", max_top=1000)

    def get_filter(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        item = req.tenant.assignment_filters.get(m["id"])
        if item is None:
            raise GraphError(404, "ResourceNotFound", intune_message("Resource not found", req.path))
        return GraphResponse(200, {"@odata.context": self._context(
            req, "deviceManagement/assignmentFilters/$entity"), **item})

    def list_audit_events(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        """`GET /deviceManagement/auditEvents` (v1.0 and beta; Graph's docs: intune-auditing-auditevent-list),
        with the `$filter` clauses tools send: `activityDateTime gt|ge|lt|le <time>` and
        `activityOperationType eq|ne '<op>'`, joined by `and` (IntuneCD's makeAuditRequest sends
        `activityDateTime gt … and activityDateTime le … and activityOperationType ne 'Get'`). Paged
        with an absolute `@odata.nextLink` like every list."""
        tests = _audit_filter(req.query.get("filter"))
        events = [e for e in list(req.tenant.audit_events) if all(t(e) for t in tests)]
        return self.page(req, events, lambda e: e, "deviceManagement/auditEvents", max_top=999)

    def list_groups(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        return self.page(req, list(req.tenant.groups.values()), lambda g: g, "groups", max_top=999)

    def get_group(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        item = req.tenant.groups.get(m["id"])
        if item is None:
            raise GraphError(404, "Request_ResourceNotFound",
                             f"Resource '{m['id']}' does not exist or one of its queried reference-property "
                             "objects are not present.")
        return GraphResponse(200, {"@odata.context": self._context(req, "groups/$entity"), **item})

    def _bind_directory(self, attr: str, context: str) -> Handler:
        return lambda req, m: self.get_directory_object(req, m, attr, context)

    def get_directory_object(self, req: GraphRequest, m: re.Match[str], attr: str, context: str) -> GraphResponse:
        """One user, directory role definition or service principal (by appId), honouring `$select`."""
        item = getattr(req.tenant, attr).get(m["id"])
        if item is None:
            raise GraphError(404, "Request_ResourceNotFound",
                             f"Resource '{m['id']}' does not exist or one of its queried reference-property "
                             "objects are not present.")
        select = [s for s in (req.query.get("select") or "").split(",") if s]
        body = {k: v for k, v in item.items() if not select or k in select}
        return GraphResponse(200, {"@odata.context": self._context(req, f"{context}/$entity"), **body})

    def get_by_ids(self, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        ids = (req.body or {}).get("ids") if isinstance(req.body, dict) else None
        if not isinstance(ids, list):
            raise GraphError(400, "Request_BadRequest", "Invalid request: 'ids' is required.")
        values = [{"@odata.type": "#microsoft.graph.group", **req.tenant.groups[i]}
                  for i in ids if i in req.tenant.groups]
        return GraphResponse(200, {"@odata.context": self._context(req, "directoryObjects"), "value": values})
