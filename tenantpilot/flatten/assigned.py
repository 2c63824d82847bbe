"""Assignments that are settings: an app's install intent per group and a remediation's run schedule per group.

For most policies an assignment only says where the policy applies (the assignments table). For apps
the intent (required / available / uninstall) *is* the configuration a consultant compares, and for
remediations (deviceHealthScripts) the run schedule and whether the remediation script runs live on
the assignment (Graph: mobileAppAssignment.intent; deviceHealthScriptAssignment.runSchedule,
runRemediationScript). These become setting rows keyed by the target as people name it ("All users",
"All devices", the group's name, or its id when the name is unknown), so two tenants line up by group
name and a changed intent is one changed row.

Names come from the sync (graph/directory.py): :func:`with_target_names` writes them into the targets
before flattening, in the properties exports already use (``groupDisplayName``,
``deviceAndAppManagementAssignmentFilterName``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenantpilot.flatten.rows import Ident, Row, make_row
from tenantpilot.flatten.text import clean_label, display, humanize, raw_json

#: the assignment properties that are configuration, per family that has them
_SETTING_PROPS: tuple[str, ...] = ("intent", "runRemediationScript", "runSchedule", "settings")
_TARGET_LABELS = {
    "allLicensedUsersAssignmentTarget": "All users",
    "allDevicesAssignmentTarget": "All devices",
}
_VOLATILE = frozenset({"@odata.type", "id"})


def target_label(target: Mapping[str, Any]) -> str:
    """'All users', 'All devices', a group's name (its id when unknown); 'Excluded: …' for exclusions."""
    kind = str(target.get("@odata.type") or "").rpartition(".")[2]
    if kind in _TARGET_LABELS:
        return _TARGET_LABELS[kind]
    name = clean_label(target.get("groupDisplayName") or target.get("groupName") or "") \
        or str(target.get("groupId") or target.get("collectionId") or kind or "unknown")
    return f"Excluded: {name}" if "exclusion" in kind.lower() else name


def _filter_text(target: Mapping[str, Any]) -> str:
    mode = str(target.get("deviceAndAppManagementAssignmentFilterType") or "none")
    fid = target.get("deviceAndAppManagementAssignmentFilterId")
    if mode == "none" or not fid:
        return ""
    name = clean_label(target.get("deviceAndAppManagementAssignmentFilterName") or "") or str(fid)
    return f"{mode}: {name}"


def _flat(value: Any, prefix: str) -> list[tuple[str, Any]]:
    """(relative path, scalar) pairs of an assignment property (runSchedule, settings)."""
    if isinstance(value, Mapping):
        out: list[tuple[str, Any]] = []
        kind = str(value.get("@odata.type") or "").rpartition(".")[2]
        if prefix == "runSchedule" and kind:  # deviceHealthScriptDailySchedule -> "Daily" (hourly, run once)
            out.append((f"{prefix}/kind", kind.removeprefix("deviceHealthScript").removesuffix("Schedule")))
        for k, v in value.items():
            if k in _VOLATILE or k.startswith("@") or v is None:
                continue
            out.extend(_flat(v, f"{prefix}/{k}"))
        return out
    if isinstance(value, list):
        return [(prefix, sorted(display(v) if not isinstance(v, (dict, list)) else raw_json(v) for v in value))]
    return [(prefix, value)]


def assignment_setting_rows(policy: Mapping[str, Any], ident: Ident) -> list[Row]:
    """One row per configuration property of each assignment (intent, run schedule, settings) and
    one for its filter, keyed ``assignments[<target>]/<property>``. [] when no assignment has any."""
    assignments = policy.get("assignments")
    rows: list[Row] = []
    for assignment in assignments if isinstance(assignments, list) else ():
        if not isinstance(assignment, Mapping):
            continue
        props = [p for p in _SETTING_PROPS if assignment.get(p) is not None]
        if not props:
            continue
        raw_target = assignment.get("target")
        target: Mapping[str, Any] = raw_target if isinstance(raw_target, Mapping) else {}
        label = target_label(target)
        base = f"assignments[{label}]"
        category = "Assignments"
        pairs: list[tuple[str, Any]] = []
        for prop in props:
            pairs.extend(_flat(assignment[prop], prop))
        filt = _filter_text(target)
        if filt:
            pairs.append(("filter", filt))
        for path, value in pairs:
            text = "; ".join(value) if isinstance(value, list) else display(value)
            name = " > ".join(["Assignment", label, *(humanize(p) for p in path.split("/"))])
            rows.append(make_row(ident, f"{base}/{path}", f"assignments/{path}", name, category, text,
                                 raw_json(value), "collection" if isinstance(value, list) else "string"
                                 if isinstance(value, str) else "boolean" if isinstance(value, bool) else "number",
                                 "", text))
    return rows


def with_target_names(policy: dict[str, Any], groups: Mapping[str, str],
                      filters: Mapping[str, str]) -> dict[str, Any]:
    """The policy with the group and filter names Graph gave written into its assignment targets
    (a copy when anything is added; the policy itself when there is nothing to name)."""
    assignments = policy.get("assignments")
    if not isinstance(assignments, list) or not (groups or filters):
        return policy
    named = []
    changed = False
    for assignment in assignments:
        target = assignment.get("target") if isinstance(assignment, dict) else None
        if not isinstance(target, dict):
            named.append(assignment)
            continue
        extra: dict[str, str] = {}
        gid = str(target.get("groupId") or "")
        fid = str(target.get("deviceAndAppManagementAssignmentFilterId") or "")
        if gid in groups and not target.get("groupDisplayName"):
            extra["groupDisplayName"] = groups[gid]
        if fid in filters and not target.get("deviceAndAppManagementAssignmentFilterName"):
            extra["deviceAndAppManagementAssignmentFilterName"] = filters[fid]
        if extra:
            changed = True
            named.append({**assignment, "target": {**target, **extra}})
        else:
            named.append(assignment)
    return {**policy, "assignments": named} if changed else policy


__all__ = ["assignment_setting_rows", "target_label", "with_target_names"]
