"""Property tests: generated settings-catalog trees of every instance type and depth."""

from __future__ import annotations

import copy
import itertools
import json
import os
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenantpilot.flatten import (
    NO_SETTINGS,
    SECRET_MASK,
    SETTING_COLUMNS,
    count_leaves,
    flatten_policy,
)

T = "#microsoft.graph.deviceManagementConfiguration"
KINDS = ("choice", "choiceCollection", "simpleString", "simpleInteger", "simpleSecret", "simpleReference",
         "simpleCollection", "group", "groupCollection", "settingGroup")
CONTAINERS = ("choice", "choiceCollection", "group", "groupCollection")

# --- generation: a shape tree first, then ids and unique leaf markers ---------------------------
# shape = (kind, [child shapes], n items, flags)


@st.composite
def shapes(draw: st.DrawFn, depth: int) -> tuple:
    kind = draw(st.sampled_from(KINDS if depth > 0 else [k for k in KINDS if k not in CONTAINERS]))
    children: list = []
    if kind in CONTAINERS:
        children = draw(st.lists(shapes(depth - 1), min_size=0 if kind != "groupCollection" else 1, max_size=3))
    items = draw(st.integers(min_value=0 if kind in ("simpleCollection", "groupCollection") else 1, max_value=3))
    flags = {
        "natural_key": draw(st.sampled_from([None, "_name", "_key", "_generickey_keytobereplaced"])),
        "duplicate_key": draw(st.booleans()),
        "children_null": draw(st.booleans()),
        "drop_types": draw(st.booleans()),
        "empty_item": draw(st.booleans()),
    }
    return kind, children, items, flags


class Builder:
    """Turns a shape tree into Graph JSON with unique definition ids and leaf markers."""

    def __init__(self) -> None:
        self.counter = itertools.count(1)
        self.markers: list[str] = []  # every leaf value that must show up in exactly one row
        self.secrets: list[str] = []  # values that must show up nowhere

    def marker(self) -> str:
        value = f"m{next(self.counter):05d}x"
        self.markers.append(value)
        return value

    def children(self, shapes_: list, parent: str, flags: dict) -> list | None:
        built = [self.instance(shape, f"{parent}_c{i}") for i, shape in enumerate(shapes_)]
        if not built and flags["children_null"]:
            return None
        return built

    def instance(self, shape: tuple, def_id: str) -> dict:
        kind, child_shapes, items, flags = shape
        type_name = {"choice": "ChoiceSettingInstance", "choiceCollection": "ChoiceSettingCollectionInstance",
                     "simpleCollection": "SimpleSettingCollectionInstance", "group": "GroupSettingInstance",
                     "groupCollection": "GroupSettingCollectionInstance",
                     "settingGroup": "SettingGroupInstance"}.get(kind, "SimpleSettingInstance")
        inst: dict[str, Any] = {"settingDefinitionId": def_id, "settingInstanceTemplateReference": None}
        if not flags["drop_types"]:
            inst["@odata.type"] = T + type_name
        if kind == "choice":
            option = f"{def_id}_{self.marker()}"
            inst["choiceSettingValue"] = {"value": option, "settingValueTemplateReference": None,
                                          "children": self.children(child_shapes, def_id, flags)}
        elif kind == "choiceCollection":
            inst["choiceSettingCollectionValue"] = [
                {"value": f"{def_id}_{self.marker()}", "children": self.children(child_shapes, def_id, flags)}
                for _ in range(items)]
        elif kind == "simpleString":
            inst["simpleSettingValue"] = {"@odata.type": T + "StringSettingValue", "value": self.marker()}
        elif kind == "simpleInteger":
            value = next(self.counter) + 1_000_000
            self.markers.append(str(value))
            inst["simpleSettingValue"] = {"@odata.type": T + "IntegerSettingValue", "value": value}
        elif kind == "simpleSecret":
            token = f"secret{next(self.counter):05d}"
            self.secrets.append(token)
            inst["simpleSettingValue"] = {"@odata.type": T + "SecretSettingValue",
                                          "valueState": "encryptedValueToken", "value": token}
        elif kind == "simpleReference":
            inst["simpleSettingValue"] = {"@odata.type": T + "ReferenceSettingValue",
                                          "value": self.marker(), "note": "n"}
        elif kind == "simpleCollection":
            inst["simpleSettingCollectionValue"] = [
                {"@odata.type": T + "StringSettingValue", "value": self.marker()} for _ in range(items)]
        elif kind == "group":
            inst["groupSettingValue"] = {"children": self.children(child_shapes, def_id, flags)}
        elif kind == "groupCollection":
            rows = []
            for n in range(items):
                children = self.children(child_shapes, def_id, flags) or []
                if flags["natural_key"]:
                    # duplicate names are no natural key: the collection falls back to [n]
                    name = "same" if flags["duplicate_key"] else self.marker()
                    children.append({"settingDefinitionId": def_id + flags["natural_key"],
                                     "simpleSettingValue": {"value": name}})
                rows.append({"children": children})
            if flags["empty_item"] and rows:
                rows.append({"children": []})
            inst["groupSettingCollectionValue"] = rows
        return inst

    def policy(self, roots: list) -> dict:
        settings_ = [{"id": str(i), "settingInstance": self.instance(shape, f"root{i}_setting")}
                     for i, shape in enumerate(roots)]
        return {"name": "generated", "platforms": "windows10", "technologies": "mdm", "settings": settings_}


def shuffled(node: Any, rng: random.Random) -> Any:
    """A deep copy with every list (settings, children, collections) in a random order."""
    if isinstance(node, dict):
        return {k: shuffled(v, rng) for k, v in node.items()}
    if isinstance(node, list):
        items = [shuffled(v, rng) for v in node]
        rng.shuffle(items)
        return items
    return node


def without_types(node: Any) -> Any:
    """A deep copy without @odata.type on instances and choice/group values (portal exports)."""
    if isinstance(node, dict):
        keep_type = "valueState" in node or "note" in node
        return {k: without_types(v) for k, v in node.items() if k != "@odata.type" or keep_type}
    if isinstance(node, list):
        return [without_types(v) for v in node]
    return node


def as_sorted(rows: list[dict]) -> list[tuple]:
    return sorted(tuple(r.items()) for r in rows)


POLICIES = st.lists(st.integers(min_value=0, max_value=3).flatmap(shapes), min_size=0, max_size=5)
# more examples for a soak run: TENANTPILOT_HYPOTHESIS_EXAMPLES=5000 pytest tests/test_flatten_properties.py
SETTINGS = settings(max_examples=int(os.environ.get("TENANTPILOT_HYPOTHESIS_EXAMPLES", "150")), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(POLICIES)
def test_flatten_never_raises_and_rows_are_well_formed(roots: list) -> None:
    policy = Builder().policy(roots)
    rows = flatten_policy(policy)
    assert rows
    for row in rows:
        assert tuple(row) == SETTING_COLUMNS
        assert all(isinstance(v, bool if k in ("is_secret", "configured") else str) for k, v in row.items())
    keys = [r["setting_key"] for r in rows]
    assert len(keys) == len(set(keys)), "setting keys must be unique within a policy"
    assert flatten_policy(json.loads(json.dumps(policy))) == rows


@SETTINGS
@given(POLICIES)
def test_every_leaf_appears_exactly_once(roots: list) -> None:
    builder = Builder()
    policy = builder.policy(roots)
    rows = flatten_policy(policy)
    real = [r for r in rows if r["setting_name"] != NO_SETTINGS]
    assert len(real) == count_leaves(policy)
    if not real:
        assert len(rows) == 1 and rows[0]["setting_name"] == NO_SETTINGS
    for marker in builder.markers:
        holders = [r for r in real if marker in r["raw_value"]]
        assert len(holders) == 1, (marker, [r["setting_key"] for r in holders])
    for token in builder.secrets:
        assert not any(token in str(v) for r in rows for v in r.values())
    secret_rows = [r for r in real if r["is_secret"]]
    assert len(secret_rows) == len(builder.secrets)
    assert all(r["value"] == r["raw_value"] == SECRET_MASK for r in secret_rows)


@SETTINGS
@given(POLICIES, st.randoms(use_true_random=False))
def test_rows_do_not_depend_on_collection_order(roots: list, rng: random.Random) -> None:
    policy = Builder().policy(roots)
    expected = as_sorted(flatten_policy(policy))
    assert as_sorted(flatten_policy(shuffled(policy, rng))) == expected


@SETTINGS
@given(POLICIES)
def test_rows_do_not_depend_on_odata_type_annotations(roots: list) -> None:
    policy = Builder().policy(roots)
    stripped = without_types(copy.deepcopy(policy))
    assert as_sorted(flatten_policy(stripped, "settingsCatalog")) == as_sorted(flatten_policy(policy))


def test_deep_nesting_has_no_depth_limit() -> None:
    inst: dict = {"settingDefinitionId": "leaf", "simpleSettingValue": {"value": "deep"}}
    for level in range(200):
        inst = {"settingDefinitionId": f"g{level}", "groupSettingCollectionValue": [{"children": [inst]}]}
    policy = {"name": "deep", "technologies": "mdm", "settings": [{"id": "0", "settingInstance": inst}]}
    (row,) = flatten_policy(policy)
    assert row["value"] == "deep" and row["setting_key"].count("[0]/") == 200
    assert count_leaves(policy) == 1


# --- property-shaped families (device configuration, compliance, app protection, ...) ----------

NAMES = st.sampled_from(["passwordMinimumLength", "name", "ruleName", "actionType", "value", "hideEULA",
                         "payload", "preSharedKey", "displayName", "id", "iosRestriction", "omaUri",
                         "x@odata.type", "@odata.type", "blockedSkus", "wiFiSecurityType", "a/b", "n[0]"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.text(max_size=12),
                    st.sampled_from(["PT30M", "P90D", "user@contoso.onmicrosoft.com",
                                     "https://login.microsoftonline.com/0f1e2d3c-aaaa-bbbb-cccc-111122223333"]))
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(SCALARS, max_size=4),
                            st.lists(st.dictionaries(NAMES, inner, max_size=4), max_size=4),
                            st.dictionaries(NAMES, inner, max_size=5)),
    max_leaves=25,
)
PROPERTY_POLICIES = st.dictionaries(NAMES, JSON_VALUES, max_size=8)
FAMILY_NAMES = st.sampled_from(["deviceConfiguration", "compliance", "appProtection", "enrollment", "autopilot",
                                "windowsUpdate", "script", "unknown", "endpointSecurityIntent", "adminTemplate"])


def shuffled_dicts_and_lists(node: Any, rng: random.Random) -> Any:
    if isinstance(node, dict):
        items = [(k, shuffled_dicts_and_lists(v, rng)) for k, v in node.items()]
        rng.shuffle(items)
        return dict(items)
    if isinstance(node, list):
        items = [shuffled_dicts_and_lists(v, rng) for v in node]
        rng.shuffle(items)
        return items
    return node


@SETTINGS
@given(PROPERTY_POLICIES, FAMILY_NAMES, st.randoms(use_true_random=False))
def test_property_families_never_raise_keys_unique_order_free(policy: dict, family: str,
                                                               rng: random.Random) -> None:
    rows = flatten_policy(policy, family)
    assert rows
    keys = [r["setting_key"] for r in rows]
    assert len(keys) == len(set(keys))
    for row in rows:
        assert tuple(row) == SETTING_COLUMNS
        assert "@odata" not in row["setting_key"]
        if row["setting_key"].rsplit("/", 1)[-1] == "preSharedKey":
            # a non-empty credential string is never shown (an empty one means "not set")
            assert row["value_type"] != "string" or row["value"] == ""
    if family not in ("endpointSecurityIntent", "adminTemplate"):
        assert as_sorted(flatten_policy(shuffled_dicts_and_lists(policy, rng), family)) == as_sorted(rows)
