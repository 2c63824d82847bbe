"""Conditional-access ids as names: which condition lists hold ids of which directory kind, and the policy
with the names Graph gave put in their place. Pure.

A v1.0 conditionalAccessPolicy names users, groups and roles (`conditions.users`), apps by appId
(`conditions.applications`) and named locations (`conditions.locations`) only by id (Graph's
conditionalaccessusers, conditionalaccessapplications and conditionalaccesslocations resource types).
Two tenants' "Exclude groups" only line up in Compare when they show names, so the flattener reads a
copy with each known id replaced by its name; an id without a name (no permission, deleted) stays as it
is. Graph's keywords in the same lists (`All`, `None`, `GuestsOrExternalUsers`, `Office365`,
`MicrosoftAdminPortals`, `AllTrusted`) are not ids and are kept. `value` and `compare_value` hold the names;
`raw_value` and the stored raw JSON keep Graph's ids (:func:`named_rows`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenantpilot.flatten.core import flatten_policy
from tenantpilot.flatten.rows import Row

# (condition, property) -> directory kind (graph/directory.py KINDS)
ID_LISTS: dict[tuple[str, str], str] = {
    ("users", "includeUsers"): "user",
    ("users", "excludeUsers"): "user",
    ("users", "includeGroups"): "group",
    ("users", "excludeGroups"): "group",
    ("users", "includeRoles"): "directoryRole",
    ("users", "excludeRoles"): "directoryRole",
    ("applications", "includeApplications"): "app",
    ("applications", "excludeApplications"): "app",
    ("locations", "includeLocations"): "location",
    ("locations", "excludeLocations"): "location",
}
#: values of those lists that are Graph's keywords, not ids
KEYWORDS: frozenset[str] = frozenset({"All", "None", "GuestsOrExternalUsers", "Office365", "MicrosoftAdminPortals",
                                      "AllTrusted"})


def _conditions(policy: Mapping[str, Any]) -> Mapping[str, Any]:
    conditions = policy.get("conditions")
    return conditions if isinstance(conditions, Mapping) else {}


def referenced_ids(policy: Mapping[str, Any]) -> dict[str, set[str]]:
    """{kind: ids} a conditional-access policy points to (keywords left out); {} for anything else."""
    out: dict[str, set[str]] = {}
    conditions = _conditions(policy)
    for (condition, prop), kind in ID_LISTS.items():
        part = conditions.get(condition)
        values = part.get(prop) if isinstance(part, Mapping) else None
        for value in values if isinstance(values, list) else ():
            if isinstance(value, str) and value and value not in KEYWORDS:
                out.setdefault(kind, set()).add(value)
    return out


def with_names(policy: Mapping[str, Any], names: Mapping[str, Mapping[str, str]]) -> Mapping[str, Any]:
    """The policy with every id of ID_LISTS that `names[kind]` knows replaced by its name (the policy itself
    when nothing is known)."""
    conditions = _conditions(policy)
    if not conditions or not any(names.get(kind) for kind in set(ID_LISTS.values())):
        return policy
    new_conditions = dict(conditions)
    for (condition, prop), kind in ID_LISTS.items():
        part = new_conditions.get(condition)
        known = names.get(kind) or {}
        if not isinstance(part, Mapping) or not isinstance(part.get(prop), list) or not known:
            continue
        new_conditions[condition] = {**part, prop: [known.get(v, v) if isinstance(v, str) else v for v in part[prop]]}
    return {**policy, "conditions": new_conditions}


def named_rows(policy: Mapping[str, Any], names: Mapping[str, Mapping[str, str]], family: str,
               definitions: Mapping[str, dict] | None = None) -> list[Row]:
    """The rows of a conditional-access policy with names where `names` knows the ids: `value` and
    `compare_value` from the named copy (tenants line up by name), `raw_value` as Graph wrote it (the ids)."""
    named = with_names(policy, names)
    rows = flatten_policy(named, family, definitions)
    if named is policy:
        return rows
    graphs = {r["setting_key"]: r["raw_value"] for r in flatten_policy(policy, family, definitions)}
    for row in rows:
        row["raw_value"] = graphs.get(row["setting_key"], row["raw_value"])
    return rows


__all__ = ["ID_LISTS", "KEYWORDS", "named_rows", "referenced_ids", "with_names"]
