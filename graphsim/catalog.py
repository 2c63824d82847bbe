"""Static content shared by every simulated tenant: policy templates and definitions.

Why one module of ~770 lines: static template and definition data, read once.

Templates come from real exports copied into ``corpus/`` (see ``corpus/SOURCES.md``) plus the
hand-written shapes in :mod:`graphsim.synthetic`. Exports are normalised to the
shape Graph returns (scope tags as ids, no export-only keys, navigation properties split off).

Settings-catalog *definitions* are not in any export, so they are synthesised from the instances:
one definition per ``settingDefinitionId`` with the right ``@odata.type`` per instance kind,
``displayName``, ``description``, ``categoryId``, ``baseUri``/``offsetUri``, ``rootDefinitionId``,
``childIds`` and ``options[{itemId, displayName, optionValue}]`` (the values seen plus their
obvious complements, e.g. ``_0`` ↔ ``_1``). The catalog is loaded once per process and is
read-only afterwards, except that :meth:`Catalog.register_settings` adds definitions for settings
that tests inject.
"""

from __future__ import annotations

import functools
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphsim import synthetic

JSON = dict[str, Any]

CORPUS_DIR = Path(__file__).with_name("corpus")
_NS = uuid.UUID("9b6e2f3c-5d1a-4c7e-8f90-1a2b3c4d5e6f")  # namespace for derived ids
_T = "#microsoft.graph.deviceManagementConfiguration"
_DEF_TIME = "2024-11-05T18:42:10.3462513Z"

# instance value key -> (kind, definition @odata.type)
_KINDS: dict[str, tuple[str, str]] = {
    "choiceSettingValue": ("choice", f"{_T}ChoiceSettingDefinition"),
    "choiceSettingCollectionValue": ("choiceCollection", f"{_T}ChoiceSettingCollectionDefinition"),
    "simpleSettingValue": ("simple", f"{_T}SimpleSettingDefinition"),
    "simpleSettingCollectionValue": ("simpleCollection", f"{_T}SimpleSettingCollectionDefinition"),
    "groupSettingValue": ("group", f"{_T}SettingGroupDefinition"),
    "groupSettingCollectionValue": ("groupCollection", f"{_T}SettingGroupCollectionDefinition"),
}
_COMPLEMENTS = {"0": "1", "1": "0", "true": "false", "false": "true", "enabled": "disabled",
                "disabled": "enabled", "allow": "block", "block": "allow"}
_OPTION_NAMES = {"0": "Disabled", "1": "Enabled", "true": "True", "false": "False"}
_PREFIXES = ("device_vendor_msft_policy_config_", "user_vendor_msft_policy_config_",
             "device_vendor_msft_", "user_vendor_msft_", "vendor_msft_")


def derived_id(*parts: object) -> str:
    """A stable GUID derived from ``parts`` (same input, same id, in every process)."""
    return str(uuid.uuid5(_NS, "|".join(str(p) for p in parts)))


# --- walking settings-catalog instances -------------------------------------------------------


def instance_kind(instance: JSON) -> str:
    """``choice``, ``choiceCollection``, ``simple``, ``simpleCollection``, ``group``,
    ``groupCollection`` or ``unknown``; read from the value key, not the type annotation."""
    for key, (kind, _) in _KINDS.items():
        if key in instance:
            return kind
    return "unknown"


def child_instances(instance: JSON) -> Iterator[JSON]:
    """The direct children of an instance, wherever Graph puts them."""
    for key in ("choiceSettingValue", "groupSettingValue"):
        value = instance.get(key)
        if isinstance(value, dict):
            yield from value.get("children") or ()
    for key in ("choiceSettingCollectionValue", "groupSettingCollectionValue"):
        for value in instance.get(key) or ():
            yield from value.get("children") or ()


def walk_instances(instance: JSON, depth: int = 1) -> Iterator[tuple[JSON, int]]:
    """Every instance of a tree with its depth (root = 1), depth first."""
    yield instance, depth
    for child in child_instances(instance):
        yield from walk_instances(child, depth + 1)


# --- naming helpers ---------------------------------------------------------------------------


def _tail(def_id: str) -> str:
    for prefix in _PREFIXES:
        if def_id.startswith(prefix):
            return def_id[len(prefix):]
    if def_id.startswith("com.apple.") and "_" in def_id:
        return def_id.split("_", 1)[1]
    return def_id


def humanize(def_id: str) -> str:
    """A readable fallback name for a definition id (real names come from hints)."""
    tokens = [t for t in _tail(def_id).replace("~", "_").split("_") if t and t != "policy"]
    words = tokens[-2:] if len(tokens) > 1 else tokens
    return " ".join(w[:1].upper() + w[1:] for w in words) or def_id


def _area(def_id: str) -> str:
    if def_id.startswith("com.apple."):
        return def_id.split("_", 1)[0]
    tokens = def_id.split("_")
    for prefix in _PREFIXES:
        if def_id.startswith(prefix):
            n = prefix.count("_")
            return "_".join(tokens[: n + 1])
    return "_".join(tokens[:2])


def _category_name(area: str) -> str:
    if area.startswith("com.apple."):
        return " ".join(t[:1].upper() + t[1:] for t in area.split(".")[2:]) or area
    last = area.rsplit("_", 1)[-1]
    return last[:1].upper() + last[1:]


def _uris(def_id: str) -> tuple[str, str]:
    if def_id.startswith("com.apple.") and "_" in def_id:
        base, key = def_id.split("_", 1)
        return base, key
    tail = _tail(def_id)
    if def_id.startswith(("device_vendor_msft_policy_config_", "user_vendor_msft_policy_config_")):
        scope = "./Device" if def_id.startswith("device") else "./User"
        return f"{scope}/Vendor/MSFT/Policy", "/Config/" + "/".join(tail.split("_"))
    if def_id.startswith(("device_vendor_msft_", "user_vendor_msft_")):
        scope = "./Device" if def_id.startswith("device") else "./User"
        parts = tail.split("_")
        return f"{scope}/Vendor/MSFT/{parts[0]}", "/" + "/".join(parts[1:])
    return "./Vendor/MSFT", "/" + "/".join(def_id.split("_"))


def _option_suffix(def_id: str, item_id: str) -> str:
    prefix = def_id + "_"
    return item_id[len(prefix):] if item_id.startswith(prefix) else item_id


# --- templates -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyTemplate:
    """One policy as Graph returns it, minus per-tenant fields (id, timestamps, assignments)."""

    collection: str
    name: str
    resource: JSON
    settings: tuple[JSON, ...] = ()  # settings catalog / compliance v2; intents: spec tuples
    scheduled_actions: tuple[JSON, ...] = ()
    gp_values: tuple[Any, ...] = ()
    apps: tuple[str, ...] = ()
    platform: str = ""
    source: str = "synthetic"


@dataclass
class Catalog:
    """Templates per collection, plus every definition the simulator serves."""

    templates: dict[str, list[PolicyTemplate]] = field(default_factory=dict)
    setting_definitions: dict[str, JSON] = field(default_factory=dict)
    root_trees: dict[str, list[str]] = field(default_factory=dict)
    categories: dict[str, JSON] = field(default_factory=dict)
    intent_templates: dict[str, JSON] = field(default_factory=dict)
    gp_definitions: dict[str, JSON] = field(default_factory=dict)
    gp_presentations: dict[str, JSON] = field(default_factory=dict)
    extra_settings: dict[str, list[JSON]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- settings catalog definitions

    def definitions_for(self, setting_instance: JSON) -> list[JSON]:
        """Definitions of the whole root tree of one root instance (may include children that
        are not configured, as Graph's ``$expand=settingDefinitions`` does)."""
        root_id = setting_instance.get("settingDefinitionId", "")
        ids = self.root_trees.get(root_id)
        seen: list[str] = list(ids) if ids else []
        known = set(seen)
        for inst, _ in walk_instances(setting_instance):
            did = inst.get("settingDefinitionId", "")
            if did not in known:
                known.add(did)
                seen.append(did)
        return [self.setting_definitions[d] for d in seen if d in self.setting_definitions]

    def options(self, def_id: str) -> list[str]:
        """The option itemIds of a choice definition ([] for other kinds)."""
        definition = self.setting_definitions.get(def_id) or {}
        return [o["itemId"] for o in definition.get("options") or ()]

    def register_settings(self, settings: list[JSON], platform: str = "windows10",
                          technologies: str = "mdm") -> None:
        """Synthesize definitions for settings not seen before (e.g. injected by a test)."""
        builder = _DefinitionBuilder()
        for setting in settings:
            builder.visit_root(setting["settingInstance"], platform, technologies)
        with self._lock:
            builder.merge_into(self, overwrite=False)


class _DefinitionBuilder:
    """Collects what instances reveal about their definitions, then writes definitions."""

    def __init__(self) -> None:
        self.info: dict[str, JSON] = {}
        self.trees: dict[str, list[str]] = {}

    def visit_root(self, root: JSON, platform: str, technologies: str) -> None:
        root_id = root.get("settingDefinitionId", "")
        tree = self.trees.setdefault(root_id, [])
        self._visit(root, root_id, None, platform, technologies, tree)

    def _visit(self, inst: JSON, root_id: str, parent: str | None, platform: str,
               technologies: str, tree: list[str]) -> None:
        def_id = inst.get("settingDefinitionId", "")
        if def_id not in tree:
            tree.append(def_id)
        kind = instance_kind(inst)
        entry = self.info.setdefault(def_id, {
            "kind": kind, "root": root_id, "parent": parent, "platform": platform,
            "technologies": technologies, "values": [], "children": [], "value_type": "String",
            "secret": False, "option_children": {},
        })
        if kind in ("choice", "choiceCollection"):
            values = inst.get("choiceSettingValue")
            values = [values] if kind == "choice" else inst.get("choiceSettingCollectionValue") or []
            for v in values:
                if isinstance(v, dict) and v.get("value") and v["value"] not in entry["values"]:
                    entry["values"].append(v["value"])
                for child in (v or {}).get("children") or ():
                    entry["option_children"].setdefault(v.get("value"), [])
                    cid = child.get("settingDefinitionId")
                    if cid not in entry["option_children"][v.get("value")]:
                        entry["option_children"][v.get("value")].append(cid)
        elif kind == "simple":
            value = inst.get("simpleSettingValue") or {}
            otype = value.get("@odata.type", "")
            if otype.endswith("IntegerSettingValue"):
                entry["value_type"] = "Integer"
            elif otype.endswith("SecretSettingValue"):
                entry["secret"] = True
        elif kind == "simpleCollection":
            values = inst.get("simpleSettingCollectionValue") or []
            if values and str(values[0].get("@odata.type", "")).endswith("IntegerSettingValue"):
                entry["value_type"] = "Integer"
        for child in child_instances(inst):
            cid = child.get("settingDefinitionId", "")
            if cid not in entry["children"]:
                entry["children"].append(cid)
            self._visit(child, root_id, def_id, platform, technologies, tree)

    def merge_into(self, catalog: Catalog, *, overwrite: bool) -> None:
        hints = synthetic.DEFINITION_HINTS
        # children that exist in a definition but were never configured (from hints)
        for def_id, entry in list(self.info.items()):
            for extra in (hints.get(def_id) or {}).get("childIds_extra", ()):
                if extra not in entry["children"]:
                    entry["children"].append(extra)
                if extra not in self.info:
                    kind = "simple"
                    self.info[extra] = {
                        "kind": kind, "root": entry["root"], "parent": def_id,
                        "platform": entry["platform"], "technologies": entry["technologies"],
                        "values": [], "children": [], "option_children": {}, "secret": False,
                        "value_type": "Integer" if hints.get(extra, {}).get("kind") == "integer"
                        else "String",
                    }
                tree = self.trees.setdefault(entry["root"], [])
                if extra not in tree:
                    tree.append(extra)
        for def_id, entry in self.info.items():
            if overwrite or def_id not in catalog.setting_definitions:
                catalog.setting_definitions[def_id] = _make_definition(def_id, entry, catalog)
        for root, ids in self.trees.items():
            tree = catalog.root_trees.setdefault(root, [])
            tree.extend(i for i in ids if i not in tree)


def _make_definition(def_id: str, entry: JSON, catalog: Catalog) -> JSON:
    hint = synthetic.DEFINITION_HINTS.get(def_id, {})
    kind = entry["kind"]
    odata_type = dict(_KINDS.values()).get(kind, f"{_T}SettingDefinition")
    area = _area(def_id)
    category_id = derived_id("category", area)
    if category_id not in catalog.categories:
        catalog.categories[category_id] = {
            "id": category_id, "description": "", "categoryDescription": "",
            "helpText": "", "name": area, "displayName": _category_name(area),
            "platforms": entry["platform"], "technologies": entry["technologies"],
            "settingUsage": "configuration", "parentCategoryId": category_id,
            "rootCategoryId": category_id, "childCategoryIds": [],
        }
    base_uri, offset_uri = _uris(def_id)
    display = hint.get("displayName") or humanize(def_id)
    windows = entry["platform"].startswith("windows")
    applicability: JSON = {
        "@odata.type": "#microsoft.graph.deviceManagementConfigurationWindowsSettingApplicability"
        if windows else "#microsoft.graph.deviceManagementConfigurationSettingApplicability",
        "description": None,
        "platform": entry["platform"],
        "deviceMode": "none",
        "technologies": entry["technologies"],
    }
    if windows:
        applicability.update({"configurationServiceProviderVersion": "5.0",
                              "maximumSupportedVersion": "9999.9999", "minimumSupportedVersion": "10.0.0",
                              "requiredAzureAdTrustType": "none", "requiresAzureAd": False,
                              "windowsSkus": []})
    collection_kind = kind in ("choiceCollection", "simpleCollection", "groupCollection")
    definition: JSON = {
        "@odata.type": odata_type,
        "applicability": applicability,
        "accessTypes": "add,copy,delete,get,replace",
        "keywords": [display],
        "infoUrls": [],
        "occurrence": {"minDeviceOccurrence": 0, "maxDeviceOccurrence": 100 if collection_kind else 1},
        "baseUri": base_uri,
        "offsetUri": offset_uri,
        "rootDefinitionId": entry["root"],
        "categoryId": category_id,
        "settingUsage": "configuration",
        "uxBehavior": {"choice": "dropdown", "choiceCollection": "multiselectDropdown",
                       "simple": "default", "simpleCollection": "default"}.get(kind, "default"),
        "visibility": "settingsCatalog,template",
        "referredSettingInformationList": [],
        "riskLevel": "low",
        "id": def_id,
        "description": hint.get("description") or f"{display} ({base_uri}/{offset_uri.lstrip('/')})",
        "helpText": hint.get("description") or f"Configures {display}.",
        "name": def_id.rsplit("_", 1)[-1],
        "displayName": display,
        "version": "1",
    }
    if entry["parent"]:
        definition["dependentOn"] = [{"dependentOn": entry["parent"], "parentSettingId": entry["parent"]}]
    else:
        definition["dependentOn"] = []
    definition["dependedOnBy"] = [{"dependedOnBy": c, "required": False} for c in entry["children"]]
    if kind in ("choice", "choiceCollection"):
        item_ids = list(entry["values"])
        names = hint.get("options") or {}
        for suffix in names:
            item = f"{def_id}_{suffix}"
            if item not in item_ids:
                item_ids.append(item)
        for item in list(item_ids):
            comp = _COMPLEMENTS.get(_option_suffix(def_id, item))
            if comp is not None and f"{def_id}_{comp}" not in item_ids and not names:
                item_ids.append(f"{def_id}_{comp}")
        options = []
        for item in item_ids:
            suffix = _option_suffix(def_id, item)
            numeric = suffix.lstrip("-").isdigit()
            options.append({
                "itemId": item,
                "description": None,
                "helpText": None,
                "name": suffix,
                "displayName": names.get(suffix) or _OPTION_NAMES.get(suffix)
                or suffix.replace("_", " ").capitalize(),
                "optionValue": {
                    "@odata.type": f"{_T}{'Integer' if numeric else 'String'}SettingValue",
                    "settingValueTemplateReference": None,
                    "value": int(suffix) if numeric else suffix,
                },
                "dependentOn": [],
                "dependedOnBy": [{"dependedOnBy": c, "required": False}
                                 for c in entry["option_children"].get(item, [])],
            })
        definition["options"] = options
        definition["defaultOptionId"] = options[0]["itemId"] if options else None
        if kind == "choiceCollection":
            definition.update({"maximumCount": 600, "minimumCount": 0})
    elif kind in ("simple", "simpleCollection"):
        if entry["value_type"] == "Integer":
            value_def: JSON = {
                "@odata.type": f"{_T}IntegerSettingValueDefinition",
                "maximumValue": hint.get("max", 2147483647), "minimumValue": hint.get("min", 0),
            }
        else:
            value_def = {
                "@odata.type": f"{_T}StringSettingValueDefinition",
                "fileTypes": [], "format": "none", "inputValidationSchema": None,
                "isSecret": bool(entry["secret"] or hint.get("secret")),
                "maximumLength": 87516, "minimumLength": 0,
            }
        definition["valueDefinition"] = value_def
        definition["defaultValue"] = None
        if kind == "simpleCollection":
            definition.update({"maximumCount": 600, "minimumCount": 0})
    elif kind in ("group", "groupCollection"):
        definition["childIds"] = list(entry["children"])
        if kind == "groupCollection":
            definition.update({"maximumCount": 100, "minimumCount": 0})
    return definition


# --- loading ------------------------------------------------------------------------------------

_VOLATILE_EXPORT_KEYS = {"assignments", "settings", "apps", "scheduledActionsForRule", "id",
                         "createdDateTime", "lastModifiedDateTime", "version", "isAssigned",
                         "@odata.context", "deployedAppCount"}


def _read(path: Path) -> JSON:
    return json.loads(path.read_bytes().decode("utf-8-sig"))


def _scope_tags(value: Any) -> list[str]:
    # exports write scope tag names ("Default"); Graph returns ids ("0")
    tags = value if isinstance(value, list) else []
    return ["0" if t in ("Default", "0") else str(t) for t in tags] or ["0"]


def _sc_template(data: JSON, collection: str, source: str) -> PolicyTemplate:
    settings = tuple({"id": str(i), "settingInstance": s["settingInstance"]}
                     for i, s in enumerate(data.get("settings") or []))
    resource = {
        "createdDateTime": None,
        "creationSource": data.get("creationSource"),
        "description": data.get("description") or "",
        "lastModifiedDateTime": None,
        "name": data["name"],
        "platforms": data.get("platforms", "windows10"),
        "priorityMetaData": data.get("priorityMetaData"),
        "roleScopeTagIds": _scope_tags(data.get("roleScopeTagIds")),
        "settingCount": len(settings),
        "technologies": data.get("technologies", "mdm"),
        "id": None,
        "templateReference": data.get("templateReference")
        or {"templateId": "", "templateFamily": "none", "templateDisplayName": None,
            "templateDisplayVersion": None},
        "isAssigned": False,
    }
    return PolicyTemplate(collection, data["name"], resource, settings,
                          platform=resource["platforms"], source=source)


def legacy_resource(data: JSON, *, device_config: bool) -> JSON:
    """Key order as Graph writes deviceConfigurations / compliance policies."""
    out: JSON = {"@odata.type": data["@odata.type"], "id": None}
    if device_config:
        out["lastModifiedDateTime"] = None
        out["roleScopeTagIds"] = _scope_tags(data.get("roleScopeTagIds"))
        out["supportsScopeTags"] = True
        for key in ("deviceManagementApplicabilityRuleOsEdition",
                    "deviceManagementApplicabilityRuleOsVersion",
                    "deviceManagementApplicabilityRuleDeviceMode"):
            out[key] = data.get(key)
        out["createdDateTime"] = None
    else:
        out["createdDateTime"] = None
        out["roleScopeTagIds"] = _scope_tags(data.get("roleScopeTagIds"))
    out["description"] = data.get("description")
    if not device_config:
        out["lastModifiedDateTime"] = None
    out["displayName"] = data["displayName"]
    out["version"] = 1
    for key, value in data.items():
        if key in out or key in _VOLATILE_EXPORT_KEYS or key == "supportsScopeTags":
            continue
        out[key] = value
    return out


def plain_resource(data: JSON) -> JSON:
    """Enrollment configurations, scripts, Autopilot and update profiles: id and timestamps first."""
    out: JSON = {}
    if "@odata.type" in data:
        out["@odata.type"] = data["@odata.type"]
    out.update({"id": None, "displayName": data["displayName"], "description": data.get("description") or "",
                "createdDateTime": None, "lastModifiedDateTime": None})
    if "priority" in data:
        out["priority"] = data["priority"]
        out["version"] = 1
    out["roleScopeTagIds"] = [t for t in _scope_tags(data.get("roleScopeTagIds"))] \
        if data.get("roleScopeTagIds") else ([] if "priority" in data else ["0"])
    for key, value in data.items():
        if key in out or key in _VOLATILE_EXPORT_KEYS:
            continue
        out[key] = value
    return out


def _typed_resource(collection: str, data: JSON) -> JSON:
    """plain_resource, but a managed-device app configuration's ``settings`` (appConfigurationSettingItem
    key/value pairs) and ``version`` are structural properties of the entity, not navigation."""
    out = plain_resource(data)
    if collection == "mobileAppConfigurations":
        out.update({k: data[k] for k in ("version", "settings") if k in data})
    return out


def _scheduled_actions(data: JSON) -> tuple[JSON, ...]:
    rules = data.get("scheduledActionsForRule") or [
        {"ruleName": None, "scheduledActionConfigurations": [
            {"gracePeriodHours": 0, "actionType": "block", "notificationTemplateId": ""}]}]
    out = []
    for rule in rules:
        configs = []
        for c in rule.get("scheduledActionConfigurations") or []:
            configs.append({
                "gracePeriodHours": c.get("gracePeriodHours", 0),
                "actionType": c.get("actionType", "block"),
                "notificationTemplateId": c.get("notificationTemplateId")
                or "00000000-0000-0000-0000-000000000000",
                "notificationMessageCCList": list(c.get("notificationMessageCCList") or []),
            })
        out.append({"ruleName": rule.get("ruleName"), "scheduledActionConfigurations": configs})
    return tuple(out)


def platform_of(odata_type: str) -> str:
    t = odata_type.lower()
    for needle, platform in (("macos", "macOS"), ("ios", "iOS"), ("android", "android"),
                             ("windows", "windows10")):
        if needle in t:
            return platform
    return ""


def _app_protection_resource(data: JSON) -> JSON:
    out: JSON = {"@odata.type": data["@odata.type"], "displayName": data["displayName"],
                 "description": data.get("description") or "", "createdDateTime": None,
                 "lastModifiedDateTime": None, "roleScopeTagIds": _scope_tags(data.get("roleScopeTagIds")),
                 "id": None, "version": None}
    for key, value in data.items():
        if key in out or key in _VOLATILE_EXPORT_KEYS:
            continue
        out[key] = value
    out["isAssigned"] = False
    out["deployedAppCount"] = 0
    return out


# which corpus files the simulator builds tenants from: (source, path under corpus/), per kind
_TEMPLATE_FILES: dict[str, tuple[tuple[str, str], ...]] = {
    'app_protection': (
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/App Protection/POC_AND_U_SBL_MSZT_AppProtection_androidManagedAppProtection.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/App Protection/POC_IOS_U_SBL_MSZT_AppProtection_iosManagedAppProtection.json'),
        ('Intune-Config-Frameworks', 'Intune-Config-Frameworks/AppProtectionPolicies/level-2-enterprise-enhanced-data-protection-iOS.json'),
        ('Intune-Config-Frameworks', 'Intune-Config-Frameworks/AppProtectionPolicies/level-3-enterprise-high-data-protection-Android.json'),
    ),
    'compliance': (
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Compliance Policies/Policies/POC_AND_D_CO_SBL_MSZT_DeviceCompliance_androidDeviceOwnerCompliancePolicy.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Compliance Policies/Policies/POC_IOS_D_CO_SBL_MSZT_DeviceCompliance_iosCompliancePolicy.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Compliance Policies/Policies/POC_MAC_D_CO_SBL_MSZT_DeviceCompliance_macOSCompliancePolicy.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Compliance Policies/Policies/POC_WIN_D_CO_SBL_CIS_BitLocker_windows10CompliancePolicy.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Compliance Policies/Policies/POC_WIN_D_CO_SBL_MSZT_DeviceCompliance_windows10CompliancePolicy.json'),
        ('Intune-Config-Frameworks', 'Intune-Config-Frameworks/AndroidEnterprise/FullyManaged/level-2-fm-enhanced-security-compliance.json'),
        ('Intune-Config-Frameworks', 'Intune-Config-Frameworks/iOS/Compliance/level-2-iOS_iPadOS-enhanced-security-compliance.json'),
    ),
    'device_configurations': (
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Device Configurations/POC_IOS_D_CO_SBL_MSZT_WiFi_iosEnterpriseWiFiConfiguration.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Device Configurations/POC_MAC_D_CO_SBL_MSZT_WiFi_macOSEnterpriseWiFiConfiguration.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Device Configurations/POC_WIN_D_CO_SBL_MSZT_EndpointAnalytics_windowsHealthMonitoringConfiguration.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Device Configurations/POC_WIN_D_CO_SBL_MSZT_Updates_windowsUpdateForBusinessConfiguration.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Device Configurations/[intune-my-macs] CFG-SEC-002 - Screensaver Idle Time Configuration_macOSCustomConfiguration.json'),
        ('Intune-Config-Frameworks', 'Intune-Config-Frameworks/AndroidEnterprise/FullyManaged/level-2-fm-enhanced-security-configuration.json'),
        ('Intune-Config-Frameworks', 'Intune-Config-Frameworks/iOS/Supervised/level-2-iOS_iPadOS-supervised-enhanced-security-configuration.json'),
        ('Intune-Config-Frameworks', 'Intune-Config-Frameworks/AndroidEnterprise/WorkProfile/level-2-wp-enhanced-security-configuration.json'),
    ),
    'enrollment': (
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Enrollment Configurations/All users and all devices_deviceEnrollmentLimitConfiguration.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Enrollment Configurations/All users and all devices_deviceEnrollmentPlatformRestrictionsConfiguration.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Enrollment Configurations/All users and all devices_deviceEnrollmentWindowsHelloForBusinessConfiguration.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Enrollment Profiles/Windows/ESP/All users and all devices_windows10EnrollmentCompletionPageConfiguration.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Enrollment Configurations/All users and all devices_windowsRestoreDeviceEnrollmentConfiguration.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Enrollment Configurations/POC_WIN_D_CO_Intune_AllUsers_deviceComanagementAuthorityConfiguration.json'),
    ),
    'settings_catalog': (
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Settings Catalog/POC_IOS_D_CO_SBL_MSZT_Updates_appleRemoteManagement.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Settings Catalog/POC_MAC_D_CO_SBL_MSZT_FileVault_appleRemoteManagement.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Settings Catalog/POC_MAC_D_CO_SBL_MSZT_SSO_Platform_appleRemoteManagement.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Settings Catalog/POC_MAC_D_CO_SBL_MSZT_Updates_appleRemoteManagement.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Settings Catalog/POC_WIN_D_CO_SBL_CIS_MS_Defender_Antivirus_mdm.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Settings Catalog/POC_WIN_D_CO_SBL_CIS_MS_Defender_AttackSurfaceReduction_mdm.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Settings Catalog/POC_WIN_D_CO_SBL_CIS_MS_DeviceLock_mdm.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Settings Catalog/POC_WIN_D_CO_SBL_CIS_MS_UserRights_mdm.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Settings Catalog/POC_WIN_D_CO_SBL_CIS_MS_WindowsLAPS_mdm.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Settings Catalog/POC_WIN_D_CO_SBL_CIS_MS_WindowsUpdate_mdm.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Settings Catalog/POC_WIN_D_CO_SBL_MSZT_BitLocker_mdm.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Settings Catalog/POC_WIN_D_CO_SBL_MSZT_Defender_Antivirus_microsoftSense.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Settings Catalog/POC_WIN_D_CO_SBL_MSZT_Firewall_microsoftSense.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Settings Catalog/POC_WIN_D_CO_SBL_MSZT_LocalGroupMembership_mdm.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Settings Catalog/POC_WIN_D_CO_SBL_MSZT_WindowsHello_mdm.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Settings Catalog/POC_WIN_D_CO_SBL_NCSC_MS_Defender_Antivirus_Exclusions_mdm.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Settings Catalog/POC_WIN_D_CO_SBL_NCSC_MS_DeviceGuard_mdm.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Settings Catalog/POC_WIN_D_CO_SBL_NCSC_MS_Printing_mdm.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Settings Catalog/[intune-my-macs] POL-APP-101 - Edge Browser Level 1 Basic_appleRemoteManagement.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Settings Catalog/[intune-my-macs] POL-SEC-003 - Gatekeeper Security_appleRemoteManagement.json'),
    ),
    'shell_scripts': (
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Scripts/Shell/[intune-my-macs] SCR-APP-101 - Set Office Default Applications.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Scripts/Shell/[intune-my-macs] SCR-APP-103 - Install Intune Log Watch.json'),
        ('CES2026-IntuneCD', 'CES2026-IntuneCD/Backup/Scripts/Shell/[intune-my-macs] SCR-SYS-100 - Device Rename.json'),
    ),
}


def _files(sub: str) -> list[tuple[Path, str]]:
    """The corpus files of one kind, in a fixed order, each with its source label."""
    return [(CORPUS_DIR / rel, f"corpus:{source}/{sub}/{Path(rel).name}") for source, rel in _TEMPLATE_FILES.get(sub, ())]


def _sc_order(t: PolicyTemplate) -> tuple[int, int]:
    # templates with the deepest / richest trees first, so small tenants still cover them
    depth = max((d for s in t.settings for _, d in walk_instances(s["settingInstance"])), default=0)
    return (-depth, len(json.dumps(t.settings)))


def _build_intent_templates() -> dict[str, JSON]:
    out: dict[str, JSON] = {}
    type_names = {"boolean": "#microsoft.graph.deviceManagementSettingDefinition",
                  "integer": "#microsoft.graph.deviceManagementSettingDefinition",
                  "string": "#microsoft.graph.deviceManagementSettingDefinition",
                  "complex": "#microsoft.graph.deviceManagementComplexSettingDefinition",
                  "abstractComplex": "#microsoft.graph.deviceManagementAbstractComplexSettingDefinition",
                  "collection": "#microsoft.graph.deviceManagementCollectionSettingDefinition"}
    for tpl in synthetic.INTENT_TEMPLATES:
        categories = []
        for cat in tpl["categories"]:
            defs = []
            for def_id, value_type, display in cat["settings"]:
                d: JSON = {
                    "@odata.type": type_names[value_type], "id": def_id, "valueType": value_type,
                    "displayName": display, "isTopLevel": True,
                    "description": f"{display}.", "placeholderText": None, "documentationUrl": None,
                    "headerTitle": cat["displayName"], "headerSubtitle": "", "keywords": [],
                    "constraints": [], "dependencies": [],
                }
                if value_type == "collection":
                    d["elementDefinitionId"] = def_id + "_element"
                if value_type == "complex":
                    d["propertyDefinitionIds"] = []
                if value_type == "abstractComplex":
                    d["implementations"] = []
                defs.append(d)
            categories.append({"id": cat["id"], "displayName": cat["displayName"],
                               "hasRequiredSetting": False, "settingDefinitions": defs})
        resource = {k: v for k, v in tpl.items() if k != "categories"}
        out[tpl["id"]] = {"resource": resource, "categories": categories}
    return out


@functools.lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """Load and normalise every template once per process."""
    cat = Catalog()
    builder = _DefinitionBuilder()

    sc = [_sc_template(p, "configurationPolicies", "synthetic") for p in synthetic.SETTINGS_CATALOG]
    corpus_sc = [_sc_template(_read(path), "configurationPolicies", src)
                 for path, src in _files("settings_catalog")]
    corpus_sc.sort(key=_sc_order)
    cat.templates["configurationPolicies"] = sc[:1] + corpus_sc[:1] + sc[1:] + corpus_sc[1:]
    cat.templates["compliancePolicies"] = [
        _sc_template(p, "compliancePolicies", "synthetic") for p in synthetic.COMPLIANCE_V2]
    for coll in ("configurationPolicies", "compliancePolicies"):
        for t in cat.templates[coll]:
            for s in t.settings:
                builder.visit_root(s["settingInstance"], t.platform, t.resource["technologies"])
    for platform, roots in synthetic.EXTRA_SETTINGS.items():
        for root in roots:
            builder.visit_root(root, platform, "mdm" if platform == "windows10" else
                               "linuxMdm" if platform == "linux" else "mdm,appleRemoteManagement")
    cat.extra_settings = {k: list(v) for k, v in synthetic.EXTRA_SETTINGS.items()}
    builder.merge_into(cat, overwrite=True)

    dc = [PolicyTemplate("deviceConfigurations", d["displayName"],
                         legacy_resource(d, device_config=True), platform=platform_of(d["@odata.type"]))
          for d in synthetic.DEVICE_CONFIGURATIONS]
    for path, src in _files("device_configurations"):
        data = _read(path)
        dc.append(PolicyTemplate("deviceConfigurations", data["displayName"],
                                 legacy_resource(data, device_config=True),
                                 platform=platform_of(data["@odata.type"]), source=src))
    cat.templates["deviceConfigurations"] = dc

    dcp = []
    for path, src in _files("compliance"):
        data = _read(path)
        dcp.append(PolicyTemplate("deviceCompliancePolicies", data["displayName"],
                                  legacy_resource(data, device_config=False),
                                  scheduled_actions=_scheduled_actions(data),
                                  platform=platform_of(data["@odata.type"]), source=src))
    # windows first, then the ones with named rules (PasswordRequired)
    dcp.sort(key=lambda t: (t.platform != "windows10", t.scheduled_actions[0]["ruleName"] is None))
    cat.templates["deviceCompliancePolicies"] = dcp

    cat.intent_templates = _build_intent_templates()
    cat.templates["intents"] = [
        PolicyTemplate("intents", i["displayName"], {
            "id": None, "displayName": i["displayName"], "description": i["description"],
            "isAssigned": False, "isMigratingToConfigurationPolicy": False,
            "lastModifiedDateTime": None, "templateId": i["templateId"], "roleScopeTagIds": ["0"],
        }, settings=tuple(i["settings"]), platform="windows10")
        for i in synthetic.INTENTS
    ]

    for d in synthetic.GP_DEFINITIONS:
        definition = {
            "id": d["id"], "classType": d["classType"], "displayName": d["displayName"],
            "explainText": d["explainText"], "categoryPath": d["categoryPath"],
            "supportedOn": d["supportedOn"], "policyType": d["policyType"],
            "hasRelatedDefinitions": False,
            "groupPolicyCategoryId": derived_id("gpcategory", d["categoryPath"]),
            "minDeviceCspVersion": "5.0" if d["policyType"] == "admxIngested" else "10.0",
            "minUserCspVersion": "" if d["policyType"] == "admxIngested" else None,
            "version": "1.0", "lastModifiedDateTime": "2023-03-15T01:31:30.869884Z",
        }
        cat.gp_definitions[d["id"]] = definition
        for p in d["presentations"]:
            cat.gp_presentations[p["id"]] = dict(p, lastModifiedDateTime="2023-03-15T01:31:33.6980945Z",
                                                 _definition_id=d["id"])
    cat.templates["groupPolicyConfigurations"] = [
        PolicyTemplate("groupPolicyConfigurations", g["displayName"], {
            "createdDateTime": None, "displayName": g["displayName"], "description": g["description"],
            "roleScopeTagIds": ["0"], "policyConfigurationIngestionType": "unknown", "id": None,
            "lastModifiedDateTime": None,
        }, gp_values=tuple(g["definitionValues"]), platform="windows10")
        for g in synthetic.GP_CONFIGURATIONS
    ]

    ios, android = [], []
    for path, src in _files("app_protection"):
        data = _read(path)
        is_ios = data["@odata.type"].endswith("iosManagedAppProtection")
        tpl = PolicyTemplate(
            "iosManagedAppProtections" if is_ios else "androidManagedAppProtections",
            data["displayName"], _app_protection_resource(data),
            apps=tuple(synthetic.IOS_APPS if is_ios else synthetic.ANDROID_APPS),
            platform="iOS" if is_ios else "android", source=src)
        (ios if is_ios else android).append(tpl)
    cat.templates["iosManagedAppProtections"] = ios
    cat.templates["androidManagedAppProtections"] = android

    enrollment = []
    for path, src in _files("enrollment"):
        data = _read(path)
        enrollment.append(PolicyTemplate("deviceEnrollmentConfigurations", data["displayName"],
                                         plain_resource(data), platform=platform_of(data["@odata.type"]),
                                         source=src))
    enrollment.sort(key=lambda t: (t.resource.get("priority", 0), t.name))
    cat.templates["deviceEnrollmentConfigurations"] = enrollment
    cat.templates["deviceShellScripts"] = [
        PolicyTemplate("deviceShellScripts", data["displayName"], plain_resource(data), platform="macOS",
                       source=src)
        for path, src in _files("shell_scripts") for data in [_read(path)]]
    for collection, items, platform in (
            ("deviceManagementScripts", synthetic.DEVICE_MANAGEMENT_SCRIPTS, "windows10"),
            ("windowsAutopilotDeploymentProfiles", synthetic.AUTOPILOT_PROFILES, "windows10"),
            ("windowsFeatureUpdateProfiles", synthetic.FEATURE_UPDATE_PROFILES, "windows10"),
            ("windowsQualityUpdateProfiles", synthetic.QUALITY_UPDATE_PROFILES, "windows10"),
            ("windowsDriverUpdateProfiles", synthetic.DRIVER_UPDATE_PROFILES, "windows10"),
            ("windowsQualityUpdatePolicies", synthetic.QUALITY_UPDATE_POLICIES, "windows10"),
            ("mobileAppConfigurations", synthetic.MOBILE_APP_CONFIGURATIONS, "iOS")):
        cat.templates[collection] = [PolicyTemplate(collection, d["displayName"], _typed_resource(collection, d),
                                                    platform=platform) for d in items]
    return cat
