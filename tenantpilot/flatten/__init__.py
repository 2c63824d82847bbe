"""Pure flattener: one Intune policy (Graph JSON, as exported or fetched) -> one row per leaf setting.

Public API:
    detect_family(policy) -> str
    flatten_policy(policy, family=None, definitions=None) -> list[dict]   # SETTING_COLUMNS
    flatten_assignments(policy, family=None) -> list[dict]                # ASSIGNMENT_COLUMNS
    count_leaves(policy) -> int                                           # settings catalog only
    extract_definitions(settings) -> dict[str, dict]
    referenced_definition_ids(policy) -> set[str]
    load_export(path) -> ExportLoad, read_json_bytes(data) -> Any  (files.py: the only I/O)

Families (policy_type): see tenantpilot/families.py. Tables live in constants.py; extractors are chosen by
core.EXTRACTORS (family -> function).
"""

from __future__ import annotations

from tenantpilot.flatten.catalog import count_leaves, extract_definitions, referenced_definition_ids
from tenantpilot.flatten.constants import (
    ADMIN_TEMPLATE,
    APP_PROTECTION,
    AUTOPILOT,
    COLLECTION_FAMILIES,
    COMPLIANCE,
    COMPLIANCE_V2,
    DEVICE_CONFIGURATION,
    ENDPOINT_SECURITY_INTENT,
    ENROLLMENT,
    FAMILIES,
    SCRIPT,
    SETTINGS_CATALOG,
    UNKNOWN,
    WINDOWS_UPDATE,
)
from tenantpilot.flatten.core import (
    derive_policy_id,
    detect_family,
    detect_platform,
    flatten_assignments,
    flatten_policy,
    policy_identity,
    resolve_family,
)
from tenantpilot.flatten.files import ExportFormatError, ExportLoad, load_export, read_json_bytes
from tenantpilot.flatten.schema import (
    ASSIGNMENT_COLUMNS,
    NO_SETTINGS,
    SECRET_MASK,
    SETTING_COLUMNS,
)

__all__ = [
    "ADMIN_TEMPLATE", "APP_PROTECTION", "ASSIGNMENT_COLUMNS", "AUTOPILOT", "COLLECTION_FAMILIES",
    "COMPLIANCE", "COMPLIANCE_V2", "DEVICE_CONFIGURATION", "ENDPOINT_SECURITY_INTENT", "ENROLLMENT",
    "ExportFormatError", "ExportLoad", "FAMILIES", "NO_SETTINGS", "SCRIPT",
    "SECRET_MASK", "SETTINGS_CATALOG", "SETTING_COLUMNS", "UNKNOWN", "WINDOWS_UPDATE",
    "count_leaves", "derive_policy_id", "detect_family", "detect_platform", "extract_definitions", "referenced_definition_ids",
    "flatten_assignments", "flatten_policy", "load_export", "policy_identity", "read_json_bytes", "resolve_family",
]
