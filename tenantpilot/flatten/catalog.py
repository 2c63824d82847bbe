"""Settings catalog (configurationPolicies, compliancePolicies v2): setting instances -> rows.

How a value is read is decided by the key that holds it (choiceSettingValue, ...), never by
@odata.type, which portal and IntuneCD exports drop. Children are followed at any depth.

Keys: a row's setting_key is its definition id, prefixed by the group collections it sits in:
``<collection id>[<selector>]/<definition id>``. The selector is ``<field>=<value>`` when the
collection items have a natural key (a child such as ``..._key`` / ``..._name`` with a unique
string value), else ``<n>``, the item's rank by content, so that reordering a collection changes
no key. Definition ids are never split.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenantpilot.flatten.constants import (
    CATALOG_NATURAL_KEY_NAMES,
    CATALOG_NATURAL_KEY_SUFFIXES,
)
from tenantpilot.flatten.rows import Ident, Row, content_rank, make_row, secret_row
from tenantpilot.flatten.secrets import is_marked_secret
from tenantpilot.flatten.text import (
    catalog_fallback,
    choice_fallback,
    clean_label,
    display,
    normalise,
    raw_json,
    set_order,
)

_MISSING = object()


def setting_instances(policy: Mapping[str, Any]) -> list[dict]:
    """Root setting instances of a catalog policy ({id, settingInstance} items or bare instances)."""
    settings = policy.get("settings")
    if not isinstance(settings, list):
        return []
    out: list[dict] = []
    for item in settings:
        if not isinstance(item, dict):
            continue
        inst = item.get("settingInstance")
        if isinstance(inst, dict):
            out.append(inst)
        elif "settingDefinitionId" in item:
            out.append(item)
    return out


def extract_definitions(settings: list[dict] | None) -> dict[str, dict]:
    """Definitions carried inline by settings?$expand=settingDefinitions, by definition id."""
    found: dict[str, dict] = {}
    for item in settings or ():
        if not isinstance(item, dict):
            continue
        definitions = item.get("settingDefinitions")
        for definition in definitions if isinstance(definitions, list) else ():
            if isinstance(definition, dict) and isinstance(definition.get("id"), str) and definition["id"]:
                found[definition["id"]] = definition
    return found


def referenced_definition_ids(policy: Mapping[str, Any]) -> set[str]:
    """Every settingDefinitionId used by a catalog policy's instances, at any depth."""
    found: set[str] = set()
    stack = list(setting_instances(policy))
    while stack:
        inst = stack.pop()
        if not isinstance(inst, dict):
            continue
        if isinstance(inst.get("settingDefinitionId"), str):
            found.add(inst["settingDefinitionId"])
        for key in ("choiceSettingValue", "groupSettingValue"):
            stack.extend(_children(inst.get(key)))
        for key in ("choiceSettingCollectionValue", "groupSettingCollectionValue"):
            for item in _items(inst.get(key)):
                stack.extend(_children(item))
    return found


def count_leaves(policy: Mapping[str, Any]) -> int:
    """Leaf values in the raw JSON of a catalog policy, counted without the flattener.

    A leaf is a choice (its children counted on top), a choice collection, a simple value or a
    simple collection; a group whose value holds no child at all counts as one (empty) leaf, as
    does an instance with no value key (settingGroupInstance).
    """
    total = 0
    stack = list(setting_instances(policy))
    while stack:
        inst = stack.pop()
        if not isinstance(inst, dict):
            continue
        if "choiceSettingValue" in inst:
            total += 1
            stack.extend(_children(inst["choiceSettingValue"]))
        elif "choiceSettingCollectionValue" in inst:
            total += 1
            for item in _items(inst["choiceSettingCollectionValue"]):
                stack.extend(_children(item))
        elif "simpleSettingValue" in inst or "simpleSettingCollectionValue" in inst:
            total += 1
        elif "groupSettingValue" in inst:
            children = _children(inst["groupSettingValue"])
            total += 0 if children else 1
            stack.extend(children)
        elif "groupSettingCollectionValue" in inst:
            children = [c for item in _items(inst["groupSettingCollectionValue"])
                        for c in _children(item)]
            total += 0 if children else 1
            stack.extend(children)
        else:
            total += 1
    return total


def _text(value: Any) -> str | None:
    """A definition's label: text only (a file may put anything there)."""
    return value if isinstance(value, str) else None


def _children(value: Any) -> list:
    """The child instances of a choice / group value ([] when children is null or missing)."""
    if isinstance(value, dict):
        children = value.get("children")
        if isinstance(children, list):
            return [c for c in children if isinstance(c, dict)]
    return []


def _items(value: Any) -> list[dict]:
    """The dict items of a collection value ([] when it is null)."""
    if isinstance(value, list):
        return [item for item in value if isinstance(item, dict)]
    return []


def _simple_type(value: Mapping[str, Any], raw: Any) -> str:
    odata = value.get("@odata.type") or ""
    if "Reference" in odata or "note" in value:
        return "reference"
    if "Integer" in odata:
        return "integer"
    if "String" in odata:
        return "string"
    if raw.__class__ is int:
        return "integer"
    if raw is None:
        return "null"
    return "string"


def catalog_rows(policy: Mapping[str, Any], ident: Ident,
                 definitions: Mapping[str, dict] | None) -> list[Row]:
    """Rows of every setting instance of a settings-catalog policy."""
    settings = policy.get("settings")
    inline = extract_definitions(settings if isinstance(settings, list) else None)
    given = definitions or {}

    def find(def_id: str) -> Mapping[str, Any] | None:
        """The definition of an id: the caller's mapping first, then inline settingDefinitions."""
        return given.get(def_id) or inline.get(def_id)

    meta_cache: dict[tuple[str, str], tuple[str, str, str]] = {}
    option_cache: dict[str, dict[str, str]] = {}

    def meta(def_id: str, parent_id: str) -> tuple[str, str, str]:
        found = meta_cache.get((def_id, parent_id))
        if found is None:
            fallback_name, category = catalog_fallback(def_id, parent_id)
            definition = find(def_id)
            if definition:
                name = clean_label(_text(definition.get("displayName"))) or fallback_name
                description = clean_label(_text(definition.get("description")))
            else:
                name, description = fallback_name, ""
            found = (name, category, description)
            meta_cache[(def_id, parent_id)] = found
        return found

    def label(def_id: str, option: Any) -> str:
        if option is None:
            return ""
        option = str(option)
        options = option_cache.get(def_id)
        if options is None:
            options = {}
            definition = find(def_id)
            listed = definition.get("options") if definition else None
            for opt in listed if isinstance(listed, list) else ():
                if isinstance(opt, dict) and isinstance(opt.get("itemId"), str) and opt["itemId"]:
                    options[opt["itemId"]] = clean_label(_text(opt.get("displayName")))
            option_cache[def_id] = options
        return options.get(option) or choice_fallback(option, def_id)

    def walk(inst: Any, parent_id: str, out: list[Row]) -> None:
        if not isinstance(inst, dict):
            return
        def_id = str(inst.get("settingDefinitionId") or "")
        name, category, description = meta(def_id, parent_id)

        value = inst.get("choiceSettingValue", _MISSING)
        if value is not _MISSING:
            value = value if isinstance(value, dict) else {}
            option = value.get("value")
            out.append(make_row(ident, def_id, def_id, name, category, label(def_id, option),
                                raw_json(option), "choice", description,
                                "" if option is None else str(option)))
            for child in _children(value):
                walk(child, def_id, out)
            return

        value = inst.get("choiceSettingCollectionValue", _MISSING)
        if value is not _MISSING:
            items = _items(value)
            options = sorted(("" if i.get("value") is None else str(i.get("value"))) for i in items)
            shown = sorted(label(def_id, o) for o in options)
            out.append(make_row(ident, def_id, def_id, name, category, "; ".join(shown),
                                raw_json(options), "collection", description, "; ".join(options)))
            for item in items:
                children = _children(item)
                if not children:
                    continue
                selector = f"{def_id}[value={choice_fallback(str(item.get('value')), def_id)}]/"
                sub: list[Row] = []
                for child in children:
                    walk(child, def_id, sub)
                for row in sub:
                    row["setting_key"] = selector + row["setting_key"]  # type: ignore[operator]
                out.extend(sub)
            return

        value = inst.get("simpleSettingValue", _MISSING)
        if value is not _MISSING:
            if not isinstance(value, dict):
                out.append(make_row(ident, def_id, def_id, name, category, "", "null", "null",
                                    description, ""))
            elif is_marked_secret(value):
                out.append(secret_row(ident, def_id, def_id, name, category, description))
            else:
                raw = value.get("value")
                text = display(raw)
                out.append(make_row(ident, def_id, def_id, name, category, text, raw_json(raw),
                                    _simple_type(value, raw), description,
                                    normalise(text, def_id) if raw.__class__ is str else text))
            return

        value = inst.get("simpleSettingCollectionValue", _MISSING)
        if value is not _MISSING:
            items = _items(value)
            if any(is_marked_secret(item) for item in items):
                out.append(secret_row(ident, def_id, def_id, name, category, description))
                return
            raws = sorted((item.get("value") for item in items), key=set_order)
            texts = [display(raw) for raw in raws]
            out.append(make_row(ident, def_id, def_id, name, category, "; ".join(texts),
                                raw_json(raws), "collection", description,
                                "; ".join(sorted(normalise(t, def_id) for t in texts))))
            return

        value = inst.get("groupSettingValue", _MISSING)
        if value is not _MISSING:
            children = _children(value)
            if not children:
                out.append(make_row(ident, def_id, def_id, name, category, "", raw_json(value),
                                    "group", description, ""))
            for child in children:
                walk(child, def_id, out)
            return

        value = inst.get("groupSettingCollectionValue", _MISSING)
        if value is not _MISSING:
            items = [item for item in _items(value) if _children(item)]
            if not items:
                out.append(make_row(ident, def_id, def_id, name, category, "", raw_json(value),
                                    "group", description, ""))
                return
            groups: list[list[Row]] = []
            for item in items:
                sub = []
                for child in _children(item):
                    walk(child, def_id, sub)
                groups.append(sub)
            selectors = _natural_selectors(def_id, items)
            if selectors is None:
                selectors = [str(r) for r in content_rank(groups)]
            for selector, sub in zip(selectors, groups):
                prefix = f"{def_id}[{selector}]/"
                for row in sub:
                    row["setting_key"] = prefix + row["setting_key"]  # type: ignore[operator]
                out.extend(sub)
            return

        # settingGroupInstance / settingGroupCollectionInstance and unknown instance shapes
        odata = str(inst.get("@odata.type") or "")
        kind = "group" if "Group" in odata or not odata else odata.rpartition(".")[2]
        out.append(make_row(ident, def_id, def_id, name, category, "", "null", kind,
                            description, ""))

    rows: list[Row] = []
    for inst in setting_instances(policy):
        walk(inst, "", rows)
    return rows


def _natural_rank(local: str) -> int | None:
    if local in CATALOG_NATURAL_KEY_NAMES:
        return 0
    if local.endswith(CATALOG_NATURAL_KEY_SUFFIXES):
        return 1
    return None


def _natural_selectors(collection_id: str, items: list[dict]) -> list[str] | None:
    """`field=value` selectors when every item has the same naming child with a unique value."""
    per_item: list[dict[str, tuple[int, str, str]]] = []
    prefix = collection_id + "_"
    for item in items:
        found: dict[str, tuple[int, str, str]] = {}
        for child in _children(item):
            if not isinstance(child, dict):
                continue
            simple = child.get("simpleSettingValue")
            if not isinstance(simple, dict) or is_marked_secret(simple):
                continue
            text = simple.get("value")
            if text.__class__ is not str or not text.strip():
                continue
            child_id = str(child.get("settingDefinitionId") or "")
            local = child_id[len(prefix):] if child_id.startswith(prefix) else child_id.rpartition("_")[2]
            rank = _natural_rank(local)
            if rank is not None:
                found[child_id] = (rank, local, text.strip())
        per_item.append(found)
    if not per_item or not per_item[0]:
        return None
    candidates = sorted(per_item[0], key=lambda cid: (per_item[0][cid][0], cid))
    for child_id in candidates:
        if not all(child_id in found for found in per_item):
            continue
        values = [found[child_id][2] for found in per_item]
        if len(set(values)) != len(values):
            continue
        local = per_item[0][child_id][1]
        return [f"{local}={v}" for v in values]
    return None
