"""Family detection, policy identity and the family -> extractor table."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any

from tenantpilot.families import DEVICE_CATEGORY, WINDOWS_ONLY
from tenantpilot.flatten.assigned import assignment_setting_rows
from tenantpilot.flatten.catalog import catalog_rows
from tenantpilot.flatten.constants import (
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
from tenantpilot.flatten.properties import admin_template_rows, description_row, intent_rows, property_rows
from tenantpilot.flatten.rows import Ident, Row, make_row, unconfigured
from tenantpilot.flatten.schema import NO_SETTINGS
from tenantpilot.flatten.text import clean_label

_CONTEXT_SEGMENT = re.compile(r"^([A-Za-z0-9_.]+)(?:\('([^']*)'\))?")


# --- family detection ------------------------------------------------------------------------

def short_type(odata_type: Any) -> str:
    """"#microsoft.graph.iosCompliancePolicy" -> "iosCompliancePolicy"."""
    return str(odata_type or "").lstrip("#").rpartition(".")[2]


def family_from_type(odata_type: Any) -> str:
    """Family of an @odata.type by TYPE_RULES, or UNKNOWN."""
    name = short_type(odata_type)
    if not name:
        return UNKNOWN
    for kind, text, family in TYPE_RULES:
        if (kind == "eq" and name == text) or (kind == "in" and text in name) \
                or (kind == "end" and name.endswith(text)):
            return family
    return UNKNOWN


def context_segments(context: Any) -> list[tuple[str, str | None]]:
    """@odata.context -> [(segment, quoted key or None)], without $metadata/deviceManagement/$entity.

    ".../$metadata#deviceManagement/groupPolicyConfigurations('c1')/definitionValues(definition())"
    -> [("groupPolicyConfigurations", "c1"), ("definitionValues", None)]
    """
    text = str(context or "")
    if "#" not in text:
        return []
    path = text.split("#", 1)[1]
    segments: list[tuple[str, str | None]] = []
    for part in path.split("/"):
        found = _CONTEXT_SEGMENT.match(part)
        if not found or part.startswith("$"):
            continue
        name = found.group(1)
        if name in ("deviceManagement", "deviceAppManagement", "microsoft.graph"):
            continue
        segments.append((name, found.group(2)))
    return segments


def family_from_context(context: Any) -> str:
    """Family of a resource from an @odata.context naming its collection (single segment)."""
    segments = context_segments(context)
    if len(segments) == 1:
        return COLLECTION_FAMILIES.get(segments[0][0], UNKNOWN)
    return UNKNOWN


def detect_family(policy: Mapping[str, Any]) -> str:
    """Family of a policy: by @odata.type, then @odata.context, then by shape."""
    if not isinstance(policy, Mapping):
        return UNKNOWN
    family = family_from_type(policy.get("@odata.type"))
    if family != UNKNOWN:
        return family
    family = family_from_context(policy.get("@odata.context"))
    if family != UNKNOWN:
        return family
    keys = policy.keys()
    settings = policy.get("settings")
    if "templateId" in keys and ("settingsDelta" in keys or isinstance(settings, list)) \
            and "technologies" not in keys:
        return ENDPOINT_SECURITY_INTENT
    if isinstance(settings, list) and ("technologies" in keys or "platforms" in keys):
        if "scheduledActionsForRule" in keys:
            return COMPLIANCE_V2
        return SETTINGS_CATALOG
    if "definitionValues" in keys:
        return ADMIN_TEMPLATE
    if "scriptContent" in keys or "detectionScriptContent" in keys:
        return SCRIPT
    if "outOfBoxExperienceSettings" in keys:
        return AUTOPILOT
    if "deviceEnrollmentConfigurationType" in keys:
        return ENROLLMENT
    if "qualityUpdatesDeferralPeriodInDays" in keys or "featureUpdateVersion" in keys:
        return WINDOWS_UPDATE
    if "scheduledActionsForRule" in keys:
        return COMPLIANCE
    if "pinRequired" in keys and "periodOfflineBeforeAccessCheck" in keys:
        return APP_PROTECTION
    if "omaSettings" in keys or "payloadFileName" in keys:
        return DEVICE_CONFIGURATION
    return UNKNOWN


def resolve_family(policy: Mapping[str, Any], family: str | None) -> str:
    """The family rows are labelled with: the caller's, unless @odata.type names another.

    A Graph collection can hold several families (deviceConfigurations returns Windows Update
    rings, windowsUpdateForBusinessConfiguration); labelling by type keeps a synced tenant and an
    imported export of the same policy under the same policy_type, which compare matches on.
    """
    if not family:
        return detect_family(policy)
    by_type = family_from_type(policy.get("@odata.type"))
    return by_type if by_type != UNKNOWN else family


# --- identity ------------------------------------------------------------------------------

_PLATFORM_NAMES = {
    "windows10": "windows", "windows": "windows", "windows81": "windows", "windowsphone81": "windows",
    "macos": "macOS", "ios": "iOS", "ipados": "iOS", "android": "android", "androidenterprise": "android",
    "androidworkprofile": "android", "aosp": "android", "linux": "linux", "tvos": "tvOS",
    "visionos": "visionOS",
}
# @odata.type name prefixes, longest first
_TYPE_PLATFORMS: tuple[tuple[str, str], ...] = (
    ("windows", "windows"), ("win32", "windows"), ("editionUpgrade", "windows"),
    ("sharedPC", "windows"), ("mdmWindows", "windows"), ("azureADWindows", "windows"),
    ("activeDirectoryWindows", "windows"), ("deviceComanagement", "windows"),
    ("macOS", "macOS"), ("ios", "iOS"), ("android", "android"), ("aosp", "android"),
    ("linux", "linux"), ("deviceShellScript", "macOS"), ("deviceCustomAttributeShellScript", "macOS"),
    ("deviceManagementScript", "windows"), ("deviceHealthScript", "windows"),
    ("deviceComplianceScript", "windows"),
)


def detect_platform(policy: Mapping[str, Any], family: str) -> str:
    """windows / macOS / iOS / android / linux / ... or '' when the policy does not say."""
    platforms = policy.get("platforms") or policy.get("platform")
    if isinstance(platforms, list):
        platforms = ",".join(str(p) for p in platforms)
    if isinstance(platforms, str) and platforms and platforms.lower() not in ("none", "unknown"):
        names = sorted({_PLATFORM_NAMES.get(p.strip().lower(), p.strip())
                        for p in platforms.split(",") if p.strip()})
        return ",".join(names)
    name = short_type(policy.get("@odata.type"))
    for prefix, platform in _TYPE_PLATFORMS:
        if name.startswith(prefix):
            return platform
    if family in WINDOWS_ONLY:
        return "windows"
    if family == APP_PROTECTION:  # IntuneCD / import-shaped files without @odata.type
        keys = " ".join(policy.keys())
        if "Android" in keys:
            return "android"
        if "Ios" in keys or "faceIdBlocked" in keys:
            return "iOS"
    if family == SCRIPT:
        file_name = str(policy.get("fileName") or "").lower()
        if file_name.endswith((".sh", ".zsh")):
            return "macOS"
        if file_name.endswith(".ps1"):
            return "windows"
    return ""


def derive_policy_id(family: str, odata_type: str, name: str) -> str:
    """Deterministic id for exports whose ids were stripped (IntuneCD, import-shaped files).

    Same family + type + name -> same id, so re-importing the same export updates the same policy.
    """
    digest = hashlib.sha256(f"{family}\x1f{short_type(odata_type)}\x1f{name}".encode()).hexdigest()
    return f"derived-{digest[:24]}"


def _text(value: Any) -> str:
    """A scalar identity field as text ('' for null, objects and lists)."""
    if value is None or isinstance(value, (dict, list, bool)):
        return ""
    return str(value)


def policy_identity(policy: Mapping[str, Any], family: str) -> Ident:
    odata_type = _text(policy.get("@odata.type"))
    # an Apple enrollment (ADE) token names itself tokenName (depOnboardingSetting)
    name = clean_label(_text(policy.get("displayName")) or _text(policy.get("name"))
                       or _text(policy.get("tokenName")))
    policy_id = _text(policy.get("id")) or derive_policy_id(family, odata_type, name)
    return Ident(policy_id, name, family, odata_type, detect_platform(policy, family))


# --- flattening ----------------------------------------------------------------------------

Extractor = Callable[[Mapping[str, Any], Ident, Mapping[str, dict] | None], list[Row]]


def _catalog(policy: Mapping[str, Any], ident: Ident, definitions: Mapping[str, dict] | None) -> list[Row]:
    return catalog_rows(policy, ident, definitions)


def _compliance_v2(policy: Mapping[str, Any], ident: Ident,
                   definitions: Mapping[str, dict] | None) -> list[Row]:
    rows = catalog_rows(policy, ident, definitions)
    actions = policy.get("scheduledActionsForRule")
    if actions:
        rows.extend(property_rows({"scheduledActionsForRule": actions}, ident))
    return rows


def _intent(policy: Mapping[str, Any], ident: Ident, definitions: Mapping[str, dict] | None) -> list[Row]:
    return intent_rows(policy, ident, definitions)


def _admin_template(policy: Mapping[str, Any], ident: Ident, _definitions: Mapping[str, dict] | None) -> list[Row]:
    return admin_template_rows(policy, ident)


def _properties(policy: Mapping[str, Any], ident: Ident, _definitions: Mapping[str, dict] | None) -> list[Row]:
    return property_rows(policy, ident)


def _assigned(policy: Mapping[str, Any], ident: Ident, _definitions: Mapping[str, dict] | None) -> list[Row]:
    """Apps and scripts: their properties plus the assignments that are settings (flatten/assigned.py)."""
    return property_rows(policy, ident) + assignment_setting_rows(policy, ident)


def _described(policy: Mapping[str, Any], ident: Ident, _definitions: Mapping[str, dict] | None) -> list[Row]:
    """Device categories: a name, a description and scope tags (Graph deviceCategory). The description is
    the setting, so each category is a row that Compare and Changes see (missing, differs, added)."""
    return [description_row(policy, ident), *property_rows(policy, ident)]


def _reusable(policy: Mapping[str, Any], ident: Ident, definitions: Mapping[str, dict] | None) -> list[Row]:
    """A reusable setting holds one settings-catalog instance (`settingInstance`): rows as a catalog
    policy with that one setting, keyed and named by definition id like the policies that use it."""
    instance = policy.get("settingInstance")
    if not isinstance(instance, Mapping):
        return property_rows(policy, ident)
    return catalog_rows({"settings": [{"id": "0", "settingInstance": instance}]}, ident, definitions)


EXTRACTORS: dict[str, Extractor] = {
    SETTINGS_CATALOG: _catalog,
    COMPLIANCE_V2: _compliance_v2,
    ENDPOINT_SECURITY_INTENT: _intent,
    ADMIN_TEMPLATE: _admin_template,
    DEVICE_CONFIGURATION: _properties,
    COMPLIANCE: _properties,
    APP_PROTECTION: _properties,
    APP_CONFIGURATION: _properties,
    ENROLLMENT: _properties,
    AUTOPILOT: _properties,
    WINDOWS_UPDATE: _properties,
    SCRIPT: _properties,
    HEALTH_SCRIPT: _assigned,
    APP: _assigned,
    REUSABLE_SETTING: _reusable,
    ASSIGNMENT_FILTER: _properties,
    SCOPE_TAG: _properties,
    DEVICE_CATEGORY: _described,
    CONDITIONAL_ACCESS: _properties,
    UNKNOWN: _properties,
}


def _make_unique(rows: list[Row]) -> None:
    """Guarantee unique setting keys (duplicates only come from malformed input, e.g. the same
    definition twice at the root): later duplicates get "#2", "#3", … in content order."""
    seen: dict[object, list[Row]] = {}
    for row in rows:
        seen.setdefault(row["setting_key"], []).append(row)
    if len(seen) == len(rows):
        return
    taken = set(seen)
    for key, group in seen.items():
        if len(group) < 2:
            continue
        group.sort(key=lambda r: (r["compare_value"], r["value"], r["raw_value"]))
        n = 2
        for row in group[1:]:
            while f"{key}#{n}" in taken:
                n += 1
            row["setting_key"] = f"{key}#{n}"
            taken.add(row["setting_key"])
            n += 1


def flatten_policy(policy: Mapping[str, Any], family: str | None = None,
                   definitions: Mapping[str, dict] | None = None) -> list[Row]:
    """One row (dict with exactly SETTING_COLUMNS) per leaf setting of one policy.

    `family` defaults to detect_family(policy); `definitions` maps settings-catalog definition
    ids (or intent definition ids) to Graph definition objects for names and option labels.
    A policy without settings yields exactly one row whose setting_name is NO_SETTINGS.
    """
    family = resolve_family(policy, family)
    ident = policy_identity(policy, family)
    rows = EXTRACTORS.get(family, _properties)(policy, ident, definitions)
    if not rows:
        return [unconfigured(make_row(ident, NO_SETTINGS, "", NO_SETTINGS, "", "", "null", "none", "", ""))]
    if family in NAME_KEYED:  # objects matched by name (families.py, scope "name")
        prefix = f"[{ident.policy_name}]/"
        for row in rows:
            row["setting_key"] = prefix + str(row["setting_key"])
    _make_unique(rows)
    return rows


# --- assignments ---------------------------------------------------------------------------

_TARGET_TYPES = {
    "groupAssignmentTarget": ("include", "group"),
    "exclusionGroupAssignmentTarget": ("exclude", "group"),
    "allDevicesAssignmentTarget": ("include", "allDevices"),
    "allLicensedUsersAssignmentTarget": ("include", "allLicensedUsers"),
    "configurationManagerCollectionAssignmentTarget": ("include", "configurationManagerCollection"),
}


def flatten_assignments(policy: Mapping[str, Any], family: str | None = None) -> list[dict[str, str]]:
    """One row (ASSIGNMENT_COLUMNS) per assignment of a policy; [] when it has none."""
    family = resolve_family(policy, family)
    ident = policy_identity(policy, family)
    rows: list[dict[str, str]] = []
    assignments = policy.get("assignments")
    for assignment in assignments if isinstance(assignments, list) else ():
        if not isinstance(assignment, dict):
            continue
        target = assignment.get("target")
        target = target if isinstance(target, dict) else assignment
        kind = short_type(target.get("@odata.type"))
        intent, target_type = _TARGET_TYPES.get(kind, ("", ""))
        if not target_type:
            if kind:
                target_type = kind.removesuffix("AssignmentTarget")
            elif target.get("groupId") or target.get("groupName"):
                target_type = "group"
            else:
                target_type = "unknown"
        if not intent:
            intent = "exclude" if "exclu" in kind.lower() else "include"
        if str(assignment.get("intent") or "").lower() == "exclude":
            intent = "exclude"
        filter_id = str(target.get("deviceAndAppManagementAssignmentFilterId") or "")
        filter_type = str(target.get("deviceAndAppManagementAssignmentFilterType") or "")
        if not filter_type:
            filter_type = "include" if filter_id else "none"
        rows.append({
            "policy_id": ident.policy_id,
            "policy_name": ident.policy_name,
            "policy_type": family,
            "intent": intent,
            "target_type": target_type,
            "group_id": str(target.get("groupId") or ""),
            "group_name": clean_label(target.get("groupName") or target.get("groupDisplayName") or ""),
            "filter_id": filter_id,
            "filter_type": filter_type,
            "filter_name": clean_label(target.get("deviceAndAppManagementAssignmentFilterName") or ""),
        })
    return rows


__all__ = [
    "EXTRACTORS", "context_segments", "derive_policy_id", "detect_family", "detect_platform",
    "family_from_context", "family_from_type", "flatten_assignments", "flatten_policy",
    "policy_identity", "resolve_family", "short_type",
]
