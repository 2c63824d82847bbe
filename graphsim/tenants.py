"""Simulated tenants: policies in Graph's resource shape, generated deterministically.

Why one module of ~1,100 lines: a simulated tenant's state and every mutation tests make through the
control API (change, delete, audit) live together; it is a test stand-in, mostly data shaping.

``build_tenant(tenant_id, display_name, n_policies, seed, variant)`` returns a :class:`SimTenant`.

* **Content** (names, settings, values, assignment patterns) depends only on ``seed``.
* **Ids and timestamps** depend on ``tenant_id`` and ``seed``: two tenants never share a policy id,
  as in real life, so anything that matches policies across tenants by id is wrong.
* **variant** > 0 applies a small deterministic set of differences on top of the seed's content
  and records them in ``tenant.seeded_differences`` (see :func:`build_tenant`).

Policies are :class:`SimPolicy` objects in ``tenant.policies[collection][policy_id]``; a policy's
``resource`` holds the properties Graph returns for the entity, and navigation properties
(settings, assignments, scheduled actions, definition values, apps) are held beside it so the
server can serve them separately or expanded. Settings-catalog root settings are shared with the
catalog templates until changed: every mutation copies before it writes (copy on write), so never
mutate a policy's data in place — use the helpers on :class:`SimTenant`.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from graphsim import synthetic
from graphsim.catalog import (
    Catalog,
    PolicyTemplate,
    derived_id,
    instance_kind,
    legacy_resource,
    load_catalog,
    plain_resource,
    platform_of,
    walk_instances,
)

JSON = dict[str, Any]

#: tenant collection -> policy family (what the flattener calls policy_type)
FAMILIES: dict[str, str] = {
    "configurationPolicies": "settingsCatalog",
    "compliancePolicies": "complianceV2",
    "deviceConfigurations": "deviceConfiguration",
    "deviceCompliancePolicies": "compliance",
    "intents": "endpointSecurityIntent",
    "groupPolicyConfigurations": "adminTemplate",
    "iosManagedAppProtections": "appProtection",
    "androidManagedAppProtections": "appProtection",
    "deviceEnrollmentConfigurations": "enrollment",
    "deviceManagementScripts": "script",
    "deviceShellScripts": "script",
    "windowsAutopilotDeploymentProfiles": "autopilot",
    "windowsFeatureUpdateProfiles": "windowsUpdate",
    "windowsQualityUpdateProfiles": "windowsUpdate",
    "windowsDriverUpdateProfiles": "windowsUpdate",
    "windowsQualityUpdatePolicies": "windowsUpdate",
    "mobileAppConfigurations": "appConfiguration",
    # empty unless a knob fills them (GraphSimulator.mixed_app_policies)
    "windowsManagedAppProtections": "appProtection",
    "windowsInformationProtectionPolicies": "appProtection",
    "mdmWindowsInformationProtectionPolicies": "appProtection",
    "targetedManagedAppConfigurations": "appConfiguration",
    # filled by build_tenant(coverage=True) (graphsim/coverage.py)
    "deviceHealthScripts": "healthScript",
    "deviceComplianceScripts": "healthScript",
    "mobileApps": "mobileApp",
    "roleScopeTags": "scopeTag",
    "conditionalAccessPolicies": "conditionalAccess",
    "namedLocations": "conditionalAccess",
    "deviceCustomAttributeShellScripts": "customAttribute",
    "roleDefinitions": "role",
    "deviceCategories": "deviceCategory",
    "notificationMessageTemplates": "notificationTemplate",
    "reusablePolicySettings": "reusableSetting",
    "vppTokens": "connector",
    "depOnboardingSettings": "connector",
    "complianceManagementPartners": "connector",
    "deviceManagementPartners": "connector",
    "remoteAssistancePartners": "connector",
    # single objects (GraphApi.get_single): the collection holds at most one
    "applePushNotificationCertificate": "connector",
    "androidManagedStoreAccountEnterpriseSettings": "connector",
    "deviceManagementSettings": "tenantSettings",
}
COLLECTIONS: tuple[str, ...] = tuple(FAMILIES)
#: collections build_tenant never fills (only knobs do)
OPTIONAL_COLLECTIONS: frozenset[str] = frozenset({
    "windowsManagedAppProtections", "windowsInformationProtectionPolicies",
    "mdmWindowsInformationProtectionPolicies", "targetedManagedAppConfigurations",
})
#: collections only build_tenant(coverage=True) fills (graphsim/coverage.py)
COVERAGE_COLLECTIONS: frozenset[str] = frozenset({
    "deviceHealthScripts", "deviceComplianceScripts", "mobileApps", "roleScopeTags",
    "conditionalAccessPolicies", "namedLocations", "deviceCustomAttributeShellScripts", "roleDefinitions",
    "deviceCategories", "notificationMessageTemplates", "reusablePolicySettings", "vppTokens",
    "depOnboardingSettings", "complianceManagementPartners", "deviceManagementPartners", "remoteAssistancePartners",
    "applePushNotificationCertificate", "androidManagedStoreAccountEnterpriseSettings", "deviceManagementSettings",
})

ALL_DEVICES_ID = "adadadad-808e-44e2-905a-0b7873a8a531"
ALL_USERS_ID = "acacacac-9df4-4c7d-9d50-4ef0226f57a9"

# (family, share of n_policies, n from which it gets at least one); the rest is settings catalog
_SHARES: tuple[tuple[str, float, int], ...] = (
    ("deviceConfigurations", 0.10, 8),
    ("deviceCompliancePolicies", 0.08, 8),
    ("intents", 0.04, 8),
    ("groupPolicyConfigurations", 0.05, 8),
    ("appProtection", 0.05, 8),
    ("compliancePolicies", 0.02, 8),
    ("deviceEnrollmentConfigurations", 0.02, 20),
    ("deviceManagementScripts", 0.015, 20),
    ("windowsAutopilotDeploymentProfiles", 0.01, 20),
    ("windowsFeatureUpdateProfiles", 0.01, 20),
    ("deviceShellScripts", 0.015, 10**9),
    ("windowsQualityUpdateProfiles", 0.005, 10**9),
    ("windowsDriverUpdateProfiles", 0.005, 10**9),
    ("windowsQualityUpdatePolicies", 0.005, 20),
    ("mobileAppConfigurations", 0.005, 20),
)
#: tenants of at least this many policies also get the profiles other profiles link to (a trusted
#: root per linked Wi-Fi type, a domain-join profile) and a hybrid Autopilot profile linking to it
_LINKS_FROM = 20
# how each collection's assignment objects look besides id and target
_ASSIGNMENT_STYLE: dict[str, str] = {
    "deviceConfigurations": "intent", "groupPolicyConfigurations": "modified", "intents": "plain",
    "deviceManagementScripts": "plain", "deviceShellScripts": "plain", "windowsFeatureUpdateProfiles": "plain",
    "windowsQualityUpdateProfiles": "plain", "windowsDriverUpdateProfiles": "plain",
    "windowsQualityUpdatePolicies": "plain", "mobileAppConfigurations": "plain",
}
_EPOCH = dt.datetime(2023, 3, 1, 8, 0, 0, tzinfo=dt.timezone.utc)
_SIMPLE_INTENT_TYPES = ("Boolean", "Integer", "String")


def is_builtin_app(policy: SimPolicy) -> bool:
    """A built-in store app Intune lists for app protection: appAvailability "global" and not assigned."""
    res = policy.resource
    return policy.collection == "mobileApps" and res.get("appAvailability") == "global" and not res.get("isAssigned")


def graph_time(moment: dt.datetime, extra_digit: int = 0) -> str:
    """Graph's timestamp format: seven fractional digits and ``Z``."""
    moment = moment.astimezone(dt.timezone.utc)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond:06d}{extra_digit % 10}Z"


def now_graph_time() -> str:
    return graph_time(dt.datetime.now(dt.timezone.utc))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _copy(value: Any) -> Any:
    """Deep copy of JSON data (faster than copy.deepcopy)."""
    return json.loads(json.dumps(value))


@dataclass
class SimPolicy:
    """One policy: the entity's properties plus its navigation properties."""

    collection: str
    resource: JSON
    assignments: list[JSON] = field(default_factory=list)
    settings: list[JSON] = field(default_factory=list)  # settings catalog, compliance v2, intents
    scheduled_actions: list[JSON] = field(default_factory=list)  # deviceCompliancePolicies
    definition_values: list[JSON] = field(default_factory=list)  # GP: with definition, presentationValues
    apps: list[JSON] = field(default_factory=list)  # app protection
    #: navigation links to other policies of the tenant: property -> policy id (or ids, for a
    #: collection-valued one); served at /{id}/microsoft.graph.{type}/{property}
    links: dict[str, Any] = field(default_factory=dict)
    #: other collection-valued relationships by Graph's name (roleAssignments of a role definition,
    #: localizedNotificationMessages of a notification template), served at /{id}/<name> and by $expand
    related: dict[str, list[JSON]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return str(self.resource["id"])

    @property
    def name(self) -> str:
        return str(self.resource.get("name") or self.resource.get("displayName") or self.resource.get("tokenName") or "")

    @property
    def family(self) -> str:
        return FAMILIES.get(self.collection, self.collection)


@dataclass
class SimTenant:
    """A tenant's policies and the directory objects their assignments point to."""

    tenant_id: str
    display_name: str
    domain: str
    seed: int = 0
    variant: int = 0
    policies: dict[str, dict[str, SimPolicy]] = field(
        default_factory=lambda: {c: {} for c in COLLECTIONS})
    groups: dict[str, JSON] = field(default_factory=dict)
    #: what conditional access points to by id (graphsim/coverage.py): users by id, directory role
    #: definitions by id (= template id for built-in roles), service principals by appId
    users: dict[str, JSON] = field(default_factory=dict)
    role_definitions: dict[str, JSON] = field(default_factory=dict)
    service_principals: dict[str, JSON] = field(default_factory=dict)
    assignment_filters: dict[str, JSON] = field(default_factory=dict)
    #: secretReferenceValueId -> plain text of encrypted OMA-URI values
    oma_secrets: dict[str, str] = field(default_factory=dict)
    seeded_differences: list[JSON] = field(default_factory=list)
    #: Intune audit events (auditEvent shape, oldest first) the control API records when it changes a policy
    audit_events: list[JSON] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    # --- reading

    def list_policies(self, collection: str) -> list[SimPolicy]:
        """A snapshot of one collection, in Graph's order."""
        with self.lock:
            return list(self.policies.get(collection, {}).values())

    def all_policies(self) -> list[SimPolicy]:
        with self.lock:
            return [p for coll in self.policies.values() for p in coll.values()]

    def get_policy(self, collection: str, policy_id: str) -> SimPolicy | None:
        return self.policies.get(collection, {}).get(policy_id)

    def find_policy(self, policy_id: str) -> SimPolicy | None:
        """A policy of any collection by id."""
        for coll in self.policies.values():
            if policy_id in coll:
                return coll[policy_id]
        return None

    def policy_by_name(self, name: str) -> SimPolicy | None:
        return next((p for p in self.all_policies() if p.name == name), None)

    def policy_ids(self) -> list[str]:
        """Ids of every policy, all collections."""
        return [p.id for p in self.all_policies()]

    def object_ids(self) -> list[str]:
        """Ids of every object a sync reads: the policies and the assignment filters themselves, without
        the built-in store apps its mobileApps $filter leaves out (graphapi.APP_FILTER)."""
        return [p.id for p in self.all_policies() if not is_builtin_app(p)] + list(self.assignment_filters)

    def counts(self) -> dict[str, int]:
        return {c: len(v) for c, v in self.policies.items()}

    @property
    def policy_count(self) -> int:
        return sum(self.counts().values())

    # --- mutation helpers (copy on write; safe while the server is reading)

    def delete_policy(self, policy_id: str) -> SimPolicy:
        """Remove a policy (any collection). Raises KeyError when there is none."""
        with self.lock:
            for coll in self.policies.values():
                if policy_id in coll:
                    return coll.pop(policy_id)
        raise KeyError(policy_id)

    def add_policy(self, collection: str, resource: JSON, *, settings: list[JSON] | None = None,
                   assignments: list[JSON] | None = None, scheduled_actions: list[JSON] | None = None,
                   definition_values: list[JSON] | None = None, apps: list[JSON] | None = None
                   ) -> SimPolicy:
        """Add a policy given in Graph's shape; fills ``id`` (when missing) and timestamps.

        ``settings`` for settings-catalog policies are ``[{"id", "settingInstance"}]`` (``id``
        may be omitted); definitions are synthesised for unknown ``settingDefinitionId``\\ s.
        Returns the stored :class:`SimPolicy`.
        """
        if collection not in FAMILIES:
            raise KeyError(f"unknown collection {collection!r}; one of {', '.join(COLLECTIONS)}")
        res = _copy(resource)
        if not res.get("id"):
            res["id"] = ("T_" if "ManagedAppProtections" in collection else "") + str(uuid.uuid4())
        stamp = now_graph_time()
        if collection != "intents" and not res.get("createdDateTime"):
            res["createdDateTime"] = stamp
        if not res.get("lastModifiedDateTime"):
            res["lastModifiedDateTime"] = stamp
        sets = [dict(s, id=s.get("id", str(i))) for i, s in enumerate(_copy(settings or []))]
        if collection in ("configurationPolicies", "compliancePolicies"):
            res["settingCount"] = len(sets)
            load_catalog().register_settings(sets, res.get("platforms", "windows10"),
                                             res.get("technologies", "mdm"))
        policy = SimPolicy(collection, res, _copy(assignments or []), sets,
                           _copy(scheduled_actions or []), _copy(definition_values or []), _copy(apps or []))
        with self.lock:
            self.policies[collection][policy.id] = policy
        return policy

    def change_setting(self, policy_id: str, setting_id: str, value: Any) -> Any:
        """Change one setting of a policy and return its old value.

        ``setting_id`` is, per family: the ``settingDefinitionId`` (settings catalog, compliance
        v2; the first instance in tree order is changed; a choice ``value`` may be the full
        itemId or just its suffix, e.g. ``"1"``); the intent ``definitionId``; an OMA-URI or a
        property name / dotted path (``defenderDetectedMalwareActions.lowSeverity``) for
        deviceConfigurations, compliance and app protection; a group policy definition id
        (value = enabled bool) or presentation id (value = the presentation value) for
        administrative templates. Raises KeyError when the policy or setting does not exist.
        """
        with self.lock:
            policy = self.find_policy(policy_id)
            if policy is None:
                raise KeyError(policy_id)
            if policy.collection in ("configurationPolicies", "compliancePolicies"):
                old = _change_catalog_setting(policy, setting_id, value)
            elif policy.collection == "intents":
                old = _change_intent_setting(policy, setting_id, value)
            elif policy.collection == "groupPolicyConfigurations":
                old = _change_gp_setting(policy, setting_id, value)
            else:
                old = _change_property(policy, setting_id, value)
            resource = dict(policy.resource)
            resource["lastModifiedDateTime"] = now_graph_time()
            if isinstance(resource.get("version"), int):
                resource["version"] += 1
            policy.resource = resource
            return old

    def add_setting(self, policy_id: str, setting_instance: JSON) -> None:
        """Append a root setting instance to a settings-catalog policy."""
        with self.lock:
            policy = self.find_policy(policy_id)
            if policy is None:
                raise KeyError(policy_id)
            new = {"id": str(len(policy.settings)), "settingInstance": _copy(setting_instance)}
            load_catalog().register_settings([new], policy.resource.get("platforms", "windows10"),
                                             policy.resource.get("technologies", "mdm"))
            policy.settings = [*policy.settings, new]
            policy.resource = dict(policy.resource, settingCount=len(policy.settings))

    def change_any_setting(self) -> JSON:
        """Change the first integer setting of the first settings-catalog policy that has one to a
        new value (deterministic) and describe the change:
        ``{policy_id, policy_name, setting_definition_id, old, new, new_display}``."""
        cat = load_catalog()
        for policy in self.list_policies("configurationPolicies"):
            for setting in policy.settings:
                for inst, _ in walk_instances(setting["settingInstance"]):
                    value = inst.get("simpleSettingValue") or {}
                    if not str(value.get("@odata.type", "")).endswith("IntegerSettingValue"):
                        continue
                    def_id = inst["settingDefinitionId"]
                    bounds = (cat.setting_definitions.get(def_id) or {}).get("valueDefinition") or {}
                    lo, hi = bounds.get("minimumValue", 0), bounds.get("maximumValue", 2**31 - 1)
                    old = value.get("value")
                    base = old if isinstance(old, int) else 0
                    new = next((c for c in (base + 37, base - 37, base + 3, base - 3, lo, hi)
                                if lo <= c <= hi and c != old), None)
                    if new is None:
                        continue
                    self.change_setting(policy.id, def_id, new)
                    return {"policy_id": policy.id, "policy_name": policy.name, "collection": policy.collection,
                            "setting_definition_id": def_id, "old": old, "new": new, "new_display": str(new)}
        raise LookupError("no settings-catalog policy with an integer setting")

    def add_unsupported_device_configurations(self, n: int) -> list[SimPolicy]:
        """Add ``n`` ``unsupportedDeviceConfiguration`` items to deviceConfigurations (profiles Graph
        cannot represent, each with ``originalEntityTypeName`` and ``details``)."""
        added = []
        for i in range(n):
            shape = synthetic.UNSUPPORTED_DEVICE_CONFIGURATIONS[i % len(synthetic.UNSUPPORTED_DEVICE_CONFIGURATIONS)]
            resource = dict(_copy(shape), id=derived_id("unsupported", self.tenant_id, i))
            if i >= len(synthetic.UNSUPPORTED_DEVICE_CONFIGURATIONS):
                resource["displayName"] = f"{resource['displayName']} #{i + 1}"
            added.append(self.add_policy("deviceConfigurations", resource,
                                         assignments=self._group_assignment(resource["id"])))
        return added

    def add_mixed_app_policies(self) -> list[SimPolicy]:
        """Add one Windows app protection, one WIP (without enrollment), one MDM WIP and one app
        configuration (``targetedManagedAppConfiguration``) policy: managedAppPolicies lists them all."""
        added = []
        for collection, shape in synthetic.MIXED_APP_POLICIES.items():
            prefix = {"windowsManagedAppProtections": "T_", "targetedManagedAppConfigurations": "A_"}.get(collection, "")
            pid = prefix + derived_id("mixed-app", self.tenant_id, collection)
            resource = dict(_substitute(_copy(shape), self), id=pid)
            apps = []
            if collection in ("windowsManagedAppProtections", "targetedManagedAppConfigurations"):
                apps = [{"id": f"com.microsoft.edge.{collection}", "version": "-1",
                         "mobileAppIdentifier": {"@odata.type": "#microsoft.graph.windowsAppIdentifier",
                                                 "windowsAppId": "com.microsoft.edge"}}]
            added.append(self.add_policy(collection, resource, assignments=self._group_assignment(pid), apps=apps))
        return added

    def _group_assignment(self, policy_id: str) -> list[JSON]:
        group_id = next(iter(self.groups), ALL_USERS_ID)
        return [{"id": f"{policy_id}_{group_id}", "source": "direct", "sourceId": policy_id,
                 "target": {"@odata.type": "#microsoft.graph.groupAssignmentTarget", "groupId": group_id,
                            "deviceAndAppManagementAssignmentFilterId": None,
                            "deviceAndAppManagementAssignmentFilterType": "none"}}]

    def assign_group(self, policy_id: str, group_id: str | None = None) -> JSON:
        """Assign a policy to one more group (include; default: the first of the tenant's groups it is not
        assigned to yet), in its collection's assignment shape, and return the new assignment. The
        policy's own properties (lastModifiedDateTime included) stay as they were: no doc says an
        assignment changes them. Raises KeyError when the policy or group does not exist."""
        with self.lock:
            policy = self.find_policy(policy_id)
            if policy is None:
                raise KeyError(policy_id)
            taken = {str((a.get("target") or {}).get("groupId")) for a in policy.assignments}
            group = group_id or next((g for g in self.groups if g not in taken), None)
            if group is None or group not in self.groups:
                raise KeyError(group_id or "a group the policy is not assigned to")
            new = _assignment(policy.collection, policy.id, group, _target("groupAssignmentTarget", group),
                              now_graph_time())
            policy.assignments = [*policy.assignments, new]
            return new

    def record_audit(self, policy: SimPolicy, operation: str, actor: str | None = None,
                     modified: list[tuple[str, Any, Any]] | None = None, at: dt.datetime | None = None,
                     activity: str | None = None) -> JSON:
        """Record the auditEvent Intune writes when an admin changes (`Patch`) or deletes (`Delete`) a policy.

        The shape is Graph's documented auditEvent (learn.microsoft.com/graph/api/resources/
        intune-auditing-auditevent: id, displayName, componentName, actor (auditActor), activity,
        activityDateTime, activityType, activityOperationType, activityResult, correlationId, resources
        (auditResource: displayName, modifiedProperties, type, auditResourceType, resourceId), category);
        `auditActorType` "ItPro" with a userPrincipalName is what IntuneCD reads as a person
        (almenscorner/IntuneCD intunecdlib/graph_request.py, makeAuditRequest). The activity and type
        strings are illustrative: the docs give the properties, not every value Intune writes.

        `modified` fills the resource's `modifiedProperties` (auditProperty: displayName, oldValue,
        newValue, all strings: learn.microsoft.com/graph/api/resources/intune-auditing-auditproperty).
        The docs give the shape, not the names Intune writes; the simulator names a property-shaped
        change by its property path (a settings-catalog, intent or template change gets none, so the
        reader can only attribute it to the policy: the case it must handle honestly). `at`: the event's
        `activityDateTime` (default now; the demo's week of changes dates its events over the week).
        `activity`: the activity's verb when it is not the HTTP operation (an assignment: "Assign" with the
        operation "Post"; the docs call activityOperationType "the HTTP operation type of the activity")."""
        entity = policy.collection[0].upper() + policy.collection[1:].rstrip("s")
        component = "MobileAppManagement" if policy.family == "appProtection" else "DeviceConfiguration"
        event = {
            "@odata.type": "#microsoft.graph.auditEvent",
            "id": str(uuid.uuid4()),
            "displayName": f"{activity or operation} {entity}",
            "componentName": component,
            "actor": {"@odata.type": "microsoft.graph.auditActor", "type": "ItPro", "auditActorType": "ItPro",
                      "userPermissions": ["*"], "applicationId": None,
                      "applicationDisplayName": "Microsoft Intune portal extension",
                      "userPrincipalName": actor or f"sim-admin@{self.domain}", "servicePrincipalName": None,
                      "ipAddress": "203.0.113.10", "userId": str(uuid.uuid5(uuid.NAMESPACE_URL, actor or self.domain))},
            "activity": f"{activity or operation} {entity}",
            "activityDateTime": graph_time(at) if at is not None else now_graph_time(),
            "activityType": f"{activity or operation} {entity}",
            "activityOperationType": operation,
            "activityResult": "Success",
            "correlationId": str(uuid.uuid4()),
            "resources": [{"@odata.type": "microsoft.graph.auditResource", "displayName": policy.name,
                           "modifiedProperties": [
                               {"@odata.type": "microsoft.graph.auditProperty", "displayName": name,
                                "oldValue": None if before is None else json.dumps(before),
                                "newValue": None if after is None else json.dumps(after)}
                               for name, before, after in modified or ()],
                           "type": entity, "auditResourceType": entity,
                           "resourceId": policy.id}],
            "category": component,
        }
        with self.lock:
            self.audit_events = [*self.audit_events, event]
        return event

    def summary(self) -> JSON:
        return {"tenant_id": self.tenant_id, "display_name": self.display_name, "domain": self.domain,
                "seed": self.seed, "variant": self.variant, "policy_counts": self.counts(),
                "seeded_differences": list(self.seeded_differences)}


# --- mutation internals ------------------------------------------------------------------------


def _find_instance(settings: list[JSON], def_id: str) -> tuple[int, JSON] | None:
    for idx, setting in enumerate(settings):
        for inst, _ in walk_instances(setting["settingInstance"]):
            if inst.get("settingDefinitionId") == def_id:
                return idx, inst
    return None


def instance_value(inst: JSON) -> Any:
    """The configured value of one instance (itemId, scalar, or list for collections)."""
    kind = instance_kind(inst)
    if kind == "choice":
        return (inst.get("choiceSettingValue") or {}).get("value")
    if kind == "choiceCollection":
        return [v.get("value") for v in inst.get("choiceSettingCollectionValue") or []]
    if kind == "simple":
        return (inst.get("simpleSettingValue") or {}).get("value")
    if kind == "simpleCollection":
        return [v.get("value") for v in inst.get("simpleSettingCollectionValue") or []]
    return None


def _set_instance_value(inst: JSON, value: Any) -> None:
    def_id = inst.get("settingDefinitionId", "")

    def item(v: Any) -> str:
        v = str(v)
        return v if v.startswith(def_id + "_") else f"{def_id}_{v}"

    kind = instance_kind(inst)
    if kind == "choice":
        inst["choiceSettingValue"]["value"] = item(value)
    elif kind == "choiceCollection":
        inst["choiceSettingCollectionValue"] = [
            {"settingValueTemplateReference": None, "value": item(v), "children": []}
            for v in (value if isinstance(value, list) else [value])]
    elif kind == "simple":
        inst["simpleSettingValue"]["value"] = value
    elif kind == "simpleCollection":
        values = value if isinstance(value, list) else [value]
        inst["simpleSettingCollectionValue"] = [
            {"@odata.type": "#microsoft.graph.deviceManagementConfiguration"
                            f"{'Integer' if isinstance(v, int) else 'String'}SettingValue",
             "settingValueTemplateReference": None, "value": v} for v in values]
    else:
        raise KeyError(f"{def_id} is a {kind} instance and has no value of its own")


def _change_catalog_setting(policy: SimPolicy, def_id: str, value: Any) -> Any:
    found = _find_instance(policy.settings, def_id)
    if found is None:
        raise KeyError(f"{def_id} not in policy {policy.id}")
    idx = found[0]
    root = _copy(policy.settings[idx])
    _, inst = _find_instance([root], def_id) or (0, {})
    old = instance_value(inst)
    _set_instance_value(inst, value)
    settings = list(policy.settings)
    settings[idx] = root
    policy.settings = settings
    return old


def _change_intent_setting(policy: SimPolicy, def_id: str, value: Any) -> Any:
    settings = list(policy.settings)
    for i, s in enumerate(settings):
        if s.get("definitionId") == def_id:
            old = json.loads(s.get("valueJson") or "null")
            new = dict(s, valueJson=json.dumps(value))
            if "value" in new or (value is not None and any(t in new["@odata.type"] for t in _SIMPLE_INTENT_TYPES)):
                new["value"] = value
            settings[i] = new
            policy.settings = settings
            return old
    raise KeyError(f"{def_id} not in intent {policy.id}")


def _change_gp_setting(policy: SimPolicy, key: str, value: Any) -> Any:
    dvs = _copy(policy.definition_values)
    for dv in dvs:
        if key in (dv["definition"]["id"], dv["definition"]["displayName"]):
            old = dv["enabled"]
            dv["enabled"] = bool(value)
            policy.definition_values = dvs
            return old
        for pv in dv.get("presentationValues") or ():
            if pv["presentation"]["id"] == key or pv["presentation"].get("label") == key:
                field_name = "values" if "values" in pv else "value"
                old = pv[field_name]
                pv[field_name] = value
                policy.definition_values = dvs
                return old
    raise KeyError(f"{key} not in group policy configuration {policy.id}")


def _change_property(policy: SimPolicy, key: str, value: Any) -> Any:
    resource = _copy(policy.resource)
    for oma in resource.get("omaSettings") or ():
        if oma.get("omaUri") == key:
            old = oma.get("value")
            oma["value"] = value
            policy.resource = resource
            return old
    parts = key.split(".")
    target = resource
    for part in parts[:-1]:
        if not isinstance(target.get(part), dict):
            raise KeyError(f"{key} not in policy {policy.id}")
        target = target[part]
    if parts[-1] not in target:
        raise KeyError(f"{key} not in policy {policy.id}")
    old = target[parts[-1]]
    target[parts[-1]] = value
    policy.resource = resource
    return old


# --- generation ----------------------------------------------------------------------------------


def _domain(display_name: str) -> str:
    first = re.sub(r"[^a-z0-9]", "", display_name.lower().split()[0] if display_name.split() else "")
    return f"{first or 'tenant'}.onmicrosoft.com"


def _plan(n: int, cat: Catalog) -> list[tuple[str, PolicyTemplate, int]]:
    """(collection, template, copy index) for n policies; the same n always gives the same plan."""
    counts: dict[str, int] = {}
    for family, share, minimum_from in _SHARES:
        counts[family] = max(1 if n >= minimum_from else 0, int(n * share)) if n >= 8 else 0
    rest = max(0, n - sum(counts.values()) - len(_link_targets(n, cat, counts.get("deviceConfigurations", 0))))
    plan: list[tuple[str, PolicyTemplate, int]] = []

    def take(collection: str, k: int) -> None:
        templates = cat.templates[collection]
        for i in range(k):
            plan.append((collection, templates[i % len(templates)], i // len(templates)))

    take("configurationPolicies", rest)
    take("compliancePolicies", counts.get("compliancePolicies", 0))
    take("deviceConfigurations", counts.get("deviceConfigurations", 0))
    take("deviceCompliancePolicies", counts.get("deviceCompliancePolicies", 0))
    take("intents", counts.get("intents", 0))
    take("groupPolicyConfigurations", counts.get("groupPolicyConfigurations", 0))
    apps = counts.get("appProtection", 0)
    take("iosManagedAppProtections", (apps + 1) // 2)
    take("androidManagedAppProtections", apps // 2)
    for collection in ("deviceEnrollmentConfigurations", "deviceManagementScripts", "deviceShellScripts",
                       "windowsAutopilotDeploymentProfiles", "windowsFeatureUpdateProfiles",
                       "windowsQualityUpdateProfiles", "windowsDriverUpdateProfiles", "windowsQualityUpdatePolicies",
                       "mobileAppConfigurations"):
        take(collection, counts.get(collection, 0))
    return plan


def _link_targets(n: int, cat: Catalog, device_configurations: int) -> list[tuple[str, str | None, JSON]]:
    """The policies :func:`_add_links` adds, as (collection, @odata.type of the policies linking to
    it or None, Graph resource): counted in ``n`` like every other policy."""
    if n < _LINKS_FROM:
        return []
    templates = cat.templates["deviceConfigurations"]
    planned = {str(templates[i % len(templates)].resource.get("@odata.type")) for i in range(device_configurations)}
    out: list[tuple[str, str | None, JSON]] = [
        ("deviceConfigurations", t, spec[2]) for t, spec in synthetic.LINKED_CERTIFICATES.items() if t in planned]
    out.append(("deviceConfigurations", None, synthetic.DOMAIN_JOIN_CONFIGURATION))
    out.append(("windowsAutopilotDeploymentProfiles", None, synthetic.HYBRID_AUTOPILOT_PROFILE))
    return out


def _add_links(tenant: SimTenant, n: int, cat: Catalog) -> None:
    """Trusted-root certificate profiles the tenant's enterprise Wi-Fi profiles validate their server
    with, and a hybrid Autopilot profile with its domain-join profile (links.py in TenantPilot names
    the Graph pages these navigation properties come from)."""
    targets = _link_targets(n, cat, len(tenant.policies["deviceConfigurations"]))
    domain_join: SimPolicy | None = None
    for index, (collection, linked_type, data) in enumerate(targets):
        ctx = _Ctx(tenant, f"links|{collection}", index)
        device = collection == "deviceConfigurations"
        resource = (legacy_resource(data, device_config=True) if device else plain_resource(data))
        tpl = PolicyTemplate(collection, data["displayName"], resource, platform=platform_of(data["@odata.type"]))
        policy = (_build_device_configuration if device else _build_plain)(tenant, tpl, 0, ctx, cat)
        tenant.policies[collection][policy.id] = policy
        if linked_type is not None:
            nav, many, _ = synthetic.LINKED_CERTIFICATES[linked_type]
            for wifi in tenant.policies["deviceConfigurations"].values():
                if wifi.resource.get("@odata.type") == linked_type:
                    wifi.links[nav] = [policy.id] if many else policy.id
        elif device:
            domain_join = policy
        elif domain_join is not None:
            policy.links["domainJoinConfiguration"] = domain_join.id


class _Ctx:
    """Per-policy random sources: content from the seed, ids/timestamps from tenant + seed."""

    def __init__(self, tenant: SimTenant, collection: str, index: int) -> None:
        self.content = random.Random(f"content|{tenant.seed}|{collection}|{index}")
        self.ids = random.Random(f"ids|{tenant.tenant_id}|{tenant.seed}|{collection}|{index}")

    def uuid(self) -> str:
        return _uuid(self.ids)

    def timestamps(self) -> tuple[str, str]:
        created = _EPOCH + dt.timedelta(seconds=self.ids.randrange(0, 400 * 86400))
        modified = created + dt.timedelta(seconds=self.ids.randrange(0, 200 * 86400))
        micro = self.ids.randrange(1_000_000)
        return (graph_time(created.replace(microsecond=micro), self.ids.randrange(10)),
                graph_time(modified.replace(microsecond=(micro * 7) % 1_000_000), self.ids.randrange(10)))


def _substitute(value: Any, tenant: SimTenant) -> Any:
    text = json.dumps(value)
    if "{tenant_" not in text:
        return value
    text = text.replace("{tenant_guid}", tenant.tenant_id).replace("{tenant_domain}", tenant.domain)
    return json.loads(text)


def _needs_copy(settings: tuple[JSON, ...]) -> bool:
    text = json.dumps(settings)
    return "{tenant_" in text or "SecretSettingValue" in text


def _mutable_instances(root: JSON, cat: Catalog) -> list[JSON]:
    """Instances whose value can be changed meaningfully: choices with another option, integers."""
    out = []
    for inst, _ in walk_instances(root):
        kind = instance_kind(inst)
        if kind == "choice" and len(cat.options(inst.get("settingDefinitionId", ""))) > 1:
            out.append(inst)
        elif kind == "simple" and str((inst.get("simpleSettingValue") or {}).get("@odata.type", "")
                                      ).endswith("IntegerSettingValue"):
            out.append(inst)
    return out


def _mutate(inst: JSON, rng: random.Random, cat: Catalog) -> tuple[Any, Any]:
    if instance_kind(inst) == "choice":
        old = inst["choiceSettingValue"]["value"]
        others = [o for o in cat.options(inst["settingDefinitionId"]) if o != old]
        new = rng.choice(others)
        inst["choiceSettingValue"]["value"] = new
        return old, new
    old = inst["simpleSettingValue"]["value"]
    definition = cat.setting_definitions.get(inst["settingDefinitionId"], {})
    bounds = definition.get("valueDefinition") or {}
    lo, hi = bounds.get("minimumValue", 0), bounds.get("maximumValue", 2**31 - 1)
    new = old
    for delta in rng.sample([1, 2, 5, -1, -2, 10], 6):
        candidate = (old if isinstance(old, int) else 0) + delta
        if lo <= candidate <= hi and candidate != old:
            new = candidate
            break
    inst["simpleSettingValue"]["value"] = new
    return old, new


def _perturb_catalog(settings: list[JSON], rng: random.Random, cat: Catalog) -> list[JSON]:
    """Later copies of a template differ a little from the first (1-2 changed values)."""
    settings = list(settings)
    for _ in range(rng.choice((1, 2))):
        if not settings:
            break
        idx = rng.randrange(len(settings))
        root = _copy(settings[idx])
        candidates = _mutable_instances(root["settingInstance"], cat)
        if candidates:
            _mutate(rng.choice(candidates), rng, cat)
            settings[idx] = root
    return settings


def _target(kind: str, group_id: str | None = None, filter_id: str | None = None,
            filter_type: str = "none") -> JSON:
    target: JSON = {
        "@odata.type": f"#microsoft.graph.{kind}",
        "deviceAndAppManagementAssignmentFilterId": filter_id,
        "deviceAndAppManagementAssignmentFilterType": filter_type if filter_id else "none",
    }
    if group_id is not None:
        target["groupId"] = group_id
    return target


def _assignments(tenant: SimTenant, ctx: _Ctx, collection: str, policy_id: str, platform: str,
                 modified: str) -> list[JSON]:
    rng = ctx.content
    groups = list(tenant.groups)
    filters = [fid for fid, f in tenant.assignment_filters.items()
               if f["platform"].lower().startswith(platform.lower()[:3])] or list(tenant.assignment_filters)
    app = "ManagedAppProtections" in collection
    pattern = rng.randrange(6)
    if app and pattern in (0, 3):  # app protection targets groups only
        pattern = 2
    targets: list[tuple[str, JSON]] = []
    include_group = groups[rng.randrange(len(groups) - 2)]
    exclude_group = groups[-1 - rng.randrange(2)]
    if pattern == 0 and not app:
        targets.append((ALL_DEVICES_ID, _target("allDevicesAssignmentTarget")))
        targets.append((exclude_group, _target("exclusionGroupAssignmentTarget", exclude_group)))
    elif pattern == 1:
        fid = rng.choice(filters) if filters and not app else None
        targets.append((include_group, _target("groupAssignmentTarget", include_group, fid, "include")))
    elif pattern == 2:
        targets.append((include_group, _target("groupAssignmentTarget", include_group)))
        targets.append((exclude_group, _target("exclusionGroupAssignmentTarget", exclude_group)))
    elif pattern == 3 and not app:
        fid = rng.choice(filters) if filters else None
        targets.append((ALL_USERS_ID, _target("allLicensedUsersAssignmentTarget", None, fid, "exclude")))
    elif pattern == 4:
        second = groups[(groups.index(include_group) + 1) % (len(groups) - 2)]
        fid = rng.choice(filters) if filters and not app else None
        targets.append((include_group, _target("groupAssignmentTarget", include_group, fid, "exclude")))
        targets.append((second, _target("groupAssignmentTarget", second)))
    else:
        fid = rng.choice(filters) if filters and not app else None
        targets.append((include_group, _target("groupAssignmentTarget", include_group, fid, "include")))
        targets.append((ALL_USERS_ID if not app else exclude_group,
                        _target("allLicensedUsersAssignmentTarget") if not app
                        else _target("exclusionGroupAssignmentTarget", exclude_group)))
    return [_assignment(collection, policy_id, key, target, modified) for key, target in targets]


def _assignment(collection: str, policy_id: str, key: str, target: JSON, modified: str) -> JSON:
    a: JSON = {"id": f"{policy_id}_{key}"}
    style = _ASSIGNMENT_STYLE.get(collection, "source")
    if style == "modified":
        a["lastModifiedDateTime"] = modified
    elif style == "intent":
        a.update(source="direct", sourceId=policy_id, intent="apply")
    elif style == "source":
        a.update(source="direct", sourceId=policy_id)
    a["target"] = target
    return a


def _build_catalog_policy(tenant: SimTenant, tpl: PolicyTemplate, copy: int, ctx: _Ctx,
                          cat: Catalog) -> SimPolicy:
    settings: list[JSON] = list(tpl.settings)
    if _needs_copy(tpl.settings):
        settings = _substitute(_copy(settings), tenant)
        for s in settings:
            for inst, _ in walk_instances(s["settingInstance"]):
                value = inst.get("simpleSettingValue") or {}
                if str(value.get("@odata.type", "")).endswith("SecretSettingValue"):
                    value["value"] = ctx.uuid()  # a token per tenant, never the secret
    if copy:
        settings = _perturb_catalog(settings, ctx.content, cat)
    created, modified = ctx.timestamps()
    resource = dict(tpl.resource)
    pid = ctx.uuid()
    resource.update(id=pid, createdDateTime=created, lastModifiedDateTime=modified,
                    name=tpl.name if not copy else f"{tpl.name} #{copy + 1}", settingCount=len(settings))
    assignments = _assignments(tenant, ctx, tpl.collection, pid, tpl.platform, modified)
    resource["isAssigned"] = bool(assignments)
    return SimPolicy(tpl.collection, resource, assignments, settings)


def _perturb_properties(resource: JSON, rng: random.Random) -> None:
    keys = [k for k, v in resource.items()
            if k not in ("version",) and not k.startswith("@") and isinstance(v, (bool, int))]
    if keys:
        key = rng.choice(keys)
        value = resource[key]
        resource[key] = (not value) if isinstance(value, bool) else value + rng.choice((1, 2, 4))


def _build_device_configuration(tenant: SimTenant, tpl: PolicyTemplate, copy: int, ctx: _Ctx,
                                cat: Catalog) -> SimPolicy:
    resource = _substitute(_copy(tpl.resource), tenant)
    for oma in resource.get("omaSettings") or ():
        if oma.get("isEncrypted"):
            ref = ctx.uuid()
            oma["secretReferenceValueId"] = ref
            oma["value"] = base64.b64encode(ctx.ids.randbytes(48)).decode()
            tenant.oma_secrets[ref] = synthetic.OMA_SECRET_PLAINTEXT
    if copy:
        _perturb_properties(resource, ctx.content)
    created, modified = ctx.timestamps()
    pid = ctx.uuid()
    resource.update(id=pid, createdDateTime=created, lastModifiedDateTime=modified,
                    version=1 + ctx.ids.randrange(6))
    resource["displayName"] = tpl.name if not copy else f"{tpl.name} #{copy + 1}"
    scheduled: list[JSON] = []
    if tpl.scheduled_actions:
        for rule in _copy(list(tpl.scheduled_actions)):
            rule = {"id": ctx.uuid(), **rule}
            rule["scheduledActionConfigurations"] = [
                {"id": ctx.uuid(), **c} for c in rule["scheduledActionConfigurations"]]
            scheduled.append(rule)
    assignments = _assignments(tenant, ctx, tpl.collection, pid, tpl.platform, modified)
    return SimPolicy(tpl.collection, resource, assignments, scheduled_actions=scheduled)


def _build_intent(tenant: SimTenant, tpl: PolicyTemplate, copy: int, ctx: _Ctx, cat: Catalog) -> SimPolicy:
    settings = []
    specs = list(tpl.settings)
    if copy and specs:
        i = ctx.content.randrange(len(specs))
        def_id, kind, value = specs[i]
        if isinstance(value, bool):
            specs[i] = (def_id, kind, not value)
        elif isinstance(value, int):
            specs[i] = (def_id, kind, value + 1)
    for def_id, kind, value in specs:
        value = _substitute(value, tenant)
        inst: JSON = {"@odata.type": f"#microsoft.graph.deviceManagement{kind}SettingInstance",
                      "id": ctx.uuid(), "definitionId": def_id, "valueJson": json.dumps(value)}
        if kind in _SIMPLE_INTENT_TYPES and value is not None:
            inst["value"] = value
        settings.append(inst)
    _, modified = ctx.timestamps()
    pid = ctx.uuid()
    resource = dict(tpl.resource, id=pid, lastModifiedDateTime=modified,
                    displayName=tpl.name if not copy else f"{tpl.name} #{copy + 1}")
    assignments = _assignments(tenant, ctx, tpl.collection, pid, tpl.platform, modified)
    resource["isAssigned"] = bool(assignments)
    return SimPolicy(tpl.collection, resource, assignments, settings)


_PV_TYPES = {
    "CheckBox": ("groupPolicyPresentationValueBoolean", "value"),
    "DecimalTextBox": ("groupPolicyPresentationValueDecimal", "value"),
    "LongDecimalTextBox": ("groupPolicyPresentationValueLongDecimal", "value"),
    "TextBox": ("groupPolicyPresentationValueText", "value"),
    "DropdownList": ("groupPolicyPresentationValueText", "value"),
    "MultiTextBox": ("groupPolicyPresentationValueMultiText", "values"),
    "ListBox": ("groupPolicyPresentationValueList", "values"),
}


def _build_group_policy(tenant: SimTenant, tpl: PolicyTemplate, copy: int, ctx: _Ctx,
                        cat: Catalog) -> SimPolicy:
    created, modified = ctx.timestamps()
    pid = ctx.uuid()
    dvs = []
    for def_id, enabled, values in tpl.gp_values:
        values = _substitute(values, tenant)
        definition = cat.gp_definitions[def_id]
        pvs = []
        if enabled:
            for pres_id, value in values.items():
                presentation = {k: v for k, v in cat.gp_presentations[pres_id].items()
                                if not k.startswith("_")}
                kind = presentation["@odata.type"].rsplit("groupPolicyPresentation", 1)[-1]
                pv_type, field_name = _PV_TYPES[kind]
                if copy and isinstance(value, bool):
                    value = value if ctx.content.random() < 0.7 else not value
                if kind == "ListBox":
                    value = [{"name": n, "value": v} for n, v in value]
                pvs.append({"@odata.type": f"#microsoft.graph.{pv_type}", "id": ctx.uuid(),
                            "createdDateTime": created, "lastModifiedDateTime": modified,
                            field_name: value, "presentation": presentation})
        dvs.append({"createdDateTime": created, "enabled": enabled, "configurationType": "policy",
                    "id": ctx.uuid(), "lastModifiedDateTime": modified, "definition": definition,
                    "presentationValues": pvs})
    resource = dict(tpl.resource, id=pid, createdDateTime=created, lastModifiedDateTime=modified,
                    displayName=tpl.name if not copy else f"{tpl.name} #{copy + 1}")
    assignments = _assignments(tenant, ctx, tpl.collection, pid, tpl.platform, modified)
    return SimPolicy(tpl.collection, resource, assignments, definition_values=dvs)


def _build_app_protection(tenant: SimTenant, tpl: PolicyTemplate, copy: int, ctx: _Ctx,
                          cat: Catalog) -> SimPolicy:
    resource = _copy(tpl.resource)
    if copy:
        _perturb_properties(resource, ctx.content)
    created, modified = ctx.timestamps()
    pid = "T_" + ctx.uuid()
    ios = tpl.collection == "iosManagedAppProtections"
    names = list(tpl.apps)
    if copy:
        names = names[: max(3, len(names) - copy)]
    apps = [{
        "id": f"{name}.{'ios' if ios else 'android'}",
        "mobileAppIdentifier": {"@odata.type": "#microsoft.graph.iosMobileAppIdentifier", "bundleId": name}
        if ios else {"@odata.type": "#microsoft.graph.androidMobileAppIdentifier", "packageId": name},
        "version": "-1",
    } for name in names]
    assignments = _assignments(tenant, ctx, tpl.collection, pid, tpl.platform, modified)
    resource.update(id=pid, createdDateTime=created, lastModifiedDateTime=modified,
                    version=f'"{ctx.uuid()}"', isAssigned=bool(assignments), deployedAppCount=len(apps),
                    displayName=tpl.name if not copy else f"{tpl.name} #{copy + 1}")
    return SimPolicy(tpl.collection, resource, assignments, apps=apps)


def _build_plain(tenant: SimTenant, tpl: PolicyTemplate, copy: int, ctx: _Ctx, cat: Catalog) -> SimPolicy:
    """Enrollment configurations, scripts, Autopilot and Windows update profiles."""
    resource = _substitute(_copy(tpl.resource), tenant)
    if copy:
        _perturb_properties(resource, ctx.content)
    created, modified = ctx.timestamps()
    pid = ctx.uuid()
    default = False
    if tpl.collection == "deviceEnrollmentConfigurations":
        kind = str(resource.get("deviceEnrollmentConfigurationType") or "configuration")
        default = resource.get("priority") == 0 and not copy
        pid = f"{pid}_{'Default' if default else ''}{kind[:1].upper()}{kind[1:]}"
        resource["priority"] = resource.get("priority", 0) + copy
    resource.update(id=pid, createdDateTime=created, lastModifiedDateTime=modified,
                    displayName=tpl.name if not copy else f"{tpl.name} #{copy + 1}")
    if default:
        assignments = [_assignment(tpl.collection, pid, ALL_DEVICES_ID, _target("allDevicesAssignmentTarget"),
                                   modified)]
    else:
        assignments = _assignments(tenant, ctx, tpl.collection, pid, tpl.platform, modified)
    return SimPolicy(tpl.collection, resource, assignments)


_BUILDERS = {
    "configurationPolicies": _build_catalog_policy,
    "compliancePolicies": _build_catalog_policy,
    "deviceConfigurations": _build_device_configuration,
    "deviceCompliancePolicies": _build_device_configuration,
    "intents": _build_intent,
    "groupPolicyConfigurations": _build_group_policy,
    "iosManagedAppProtections": _build_app_protection,
    "androidManagedAppProtections": _build_app_protection,
    "deviceEnrollmentConfigurations": _build_plain,
    "deviceManagementScripts": _build_plain,
    "deviceShellScripts": _build_plain,
    "windowsAutopilotDeploymentProfiles": _build_plain,
    "windowsFeatureUpdateProfiles": _build_plain,
    "windowsQualityUpdateProfiles": _build_plain,
    "windowsDriverUpdateProfiles": _build_plain,
    "windowsQualityUpdatePolicies": _build_plain,
    "mobileAppConfigurations": _build_plain,
}


def _directory(tenant: SimTenant) -> None:
    for name in synthetic.GROUP_NAMES:
        gid = derived_id("group", tenant.tenant_id, tenant.seed, name)
        tenant.groups[gid] = {"id": gid, "displayName": name, "description": f"{name} (dynamic)",
                              "mailEnabled": False, "mailNickname": name.lower(), "securityEnabled": True,
                              "groupTypes": ["DynamicMembership"]}
    for name, platform, rule in synthetic.ASSIGNMENT_FILTERS:
        fid = derived_id("filter", tenant.tenant_id, tenant.seed, name)
        tenant.assignment_filters[fid] = {
            "@odata.type": "#microsoft.graph.deviceAndAppManagementAssignmentFilter", "id": fid,
            "createdDateTime": graph_time(_EPOCH), "lastModifiedDateTime": graph_time(_EPOCH),
            "displayName": name, "description": "", "platform": platform, "rule": rule,
            "roleScopeTags": ["0"], "assignmentFilterManagementType": "devices", "payloads": []}


# --- variants ------------------------------------------------------------------------------------


def _iter_catalog_policies(tenant: SimTenant) -> Iterator[SimPolicy]:
    yield from tenant.policies["configurationPolicies"].values()


def _apply_variant(tenant: SimTenant, cat: Catalog) -> None:
    """Seeded differences: a changed choice, a changed integer, a missing policy, an extra
    setting; from variant 2 on also a changed deviceConfiguration property."""
    rng = random.Random(f"variant|{tenant.seed}|{tenant.variant}")
    pool = list(_iter_catalog_policies(tenant))
    rng.shuffle(pool)
    used: set[str] = set()

    def record(kind: str, policy: SimPolicy, setting: str | None, old: Any, new: Any) -> None:
        used.add(policy.id)
        tenant.seeded_differences.append({
            "kind": kind, "collection": policy.collection, "policy_name": policy.name,
            "setting_definition_id": setting, "old": old, "new": new})

    def change(kind_wanted: str) -> None:
        # only the first instance of a definition in the policy, so that the recorded
        # setting_definition_id names the changed instance unambiguously (rows repeat ids)
        for policy in pool:
            if policy.id in used:
                continue
            seen: set[str] = set()
            for idx, setting in enumerate(policy.settings):
                root = _copy(setting)
                firsts = []
                for inst, _ in walk_instances(root["settingInstance"]):
                    did = inst.get("settingDefinitionId", "")
                    if did not in seen:
                        seen.add(did)
                        firsts.append(id(inst))
                candidates = [i for i in _mutable_instances(root["settingInstance"], cat)
                              if instance_kind(i) == kind_wanted and id(i) in firsts]
                if candidates:
                    inst = rng.choice(candidates)
                    old, new = _mutate(inst, rng, cat)
                    settings = list(policy.settings)
                    settings[idx] = root
                    policy.settings = settings
                    record("changed", policy, inst["settingDefinitionId"], old, new)
                    return

    change("choice")
    change("simple")
    for policy in pool:  # extra setting
        if policy.id in used:
            continue
        present = {i.get("settingDefinitionId") for s in policy.settings
                   for i, _ in walk_instances(s["settingInstance"])}
        extras = [e for e in cat.extra_settings.get(policy.resource.get("platforms", ""), [])
                  if e["settingDefinitionId"] not in present]
        if extras:
            extra = _copy(rng.choice(extras))
            policy.settings = [*policy.settings, {"id": str(len(policy.settings)), "settingInstance": extra}]
            policy.resource = dict(policy.resource, settingCount=len(policy.settings))
            record("extra_setting", policy, extra["settingDefinitionId"], None, instance_value(extra))
            break
    for policy in pool:  # missing policy
        if policy.id not in used:
            tenant.policies[policy.collection].pop(policy.id)
            record("missing_policy", policy, None, None, None)
            break
    if tenant.variant >= 2:
        for policy in tenant.policies["deviceConfigurations"].values():
            ints = [k for k, v in policy.resource.items()
                    if isinstance(v, int) and not isinstance(v, bool) and k != "version"]
            if ints:
                key = ints[rng.randrange(len(ints))]
                old = policy.resource[key]
                policy.resource = dict(policy.resource, **{key: old + 2})
                record("changed", policy, key, old, old + 2)
                break


def build_tenant(tenant_id: str, display_name: str, n_policies: int = 40, seed: int = 0,
                 variant: int = 0, *, coverage: bool = False) -> SimTenant:
    """Generate a tenant with ``n_policies`` policies across all families (mostly settings catalog).

    Deterministic: the same arguments give the same tenant. Tenants with the same ``seed`` have
    the same policy names and settings; ids, timestamps and secret tokens differ per tenant.
    ``variant`` > 0 applies differences recorded in ``seeded_differences`` as dicts::

        {"kind": "changed" | "missing_policy" | "extra_setting",
         "collection": "configurationPolicies", "policy_name": "...",
         "setting_definition_id": "<definition id | property name>" or None,
         "old": <value in variant 0>, "new": <value in this tenant>}

    ``coverage`` adds remediations, custom compliance scripts, apps, scope tags, conditional access
    policies and named locations (graphsim/coverage.py; ``n_policies`` does not count them).
    """
    cat = load_catalog()
    tenant = SimTenant(tenant_id=tenant_id, display_name=display_name, domain=_domain(display_name),
                       seed=seed, variant=variant)
    _directory(tenant)
    per_collection: dict[str, int] = {}
    for collection, tpl, copy in _plan(n_policies, cat):
        index = per_collection.get(collection, 0)
        per_collection[collection] = index + 1
        ctx = _Ctx(tenant, collection, index)
        policy = _BUILDERS[collection](tenant, tpl, copy, ctx, cat)
        tenant.policies[collection][policy.id] = policy
    _add_links(tenant, n_policies, cat)
    if variant:
        _apply_variant(tenant, cat)
    if coverage:
        from graphsim.coverage import add_coverage

        add_coverage(tenant)
    return tenant
