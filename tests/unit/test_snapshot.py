"""Stored raw JSON never holds a secret, whatever the family and however the secret is marked."""

from __future__ import annotations

import json

import pytest

from tenantpilot.flatten.schema import SECRET_MASK
from tenantpilot.sync.snapshot import build_frames, raw_json

SECRET = "hunter2-do-not-store"


@pytest.mark.parametrize(
    "family, policy",
    [
        ("deviceConfiguration", {"omaSettings": [{"omaUri": "./x", "isEncrypted": True, "value": SECRET}]}),
        ("deviceConfiguration", {"wiFi": {"preSharedKey": SECRET}}),
        ("deviceConfiguration", {"Password": SECRET}),
        ("settingsCatalog", {"settings": [{"settingInstance": {"simpleSettingValue": {
            "@odata.type": "#microsoft.graph.deviceManagementConfigurationSecretSettingValue",
            "value": SECRET, "valueState": "encryptedValueToken"}}}]}),
        ("settingsCatalog", {"settings": [{"settingInstance": {"simpleSettingValue": {  # IntuneCD drops the type
            "value": SECRET, "valueState": "notEncrypted"}}}]}),
    ],
)
def test_secrets_are_masked_in_stored_raw_json(family, policy):
    text = raw_json(policy, family)
    assert SECRET not in text and SECRET_MASK in text
    frames = build_frames([(family, {"id": "p1", "displayName": "P", **policy})])
    assert SECRET not in frames.policies["raw_json"][0]
    assert SECRET not in "".join(frames.settings["value"].to_list() + frames.settings["raw_value"].to_list())


def test_plain_catalog_json_is_kept_as_is():
    policy = {"settings": [{"settingInstance": {"simpleSettingValue": {"value": "Zoë"}}}]}
    assert json.loads(raw_json(policy, "settingsCatalog")) == policy


def test_assignment_rows_get_the_names_graph_gave_for_their_ids():
    from tenantpilot.sync.snapshot import name_assignments

    rows = [{"group_id": "g1", "group_name": "", "filter_id": "f1", "filter_name": ""},
            {"group_id": "g2", "group_name": "From the export", "filter_id": "", "filter_name": ""},
            {"group_id": "g3", "group_name": "", "filter_id": "f9", "filter_name": ""}]
    names = {"group": {"g1": "SG One", "g2": "SG Two"}, "filter": {"f1": "Corporate devices"}}
    got = name_assignments(rows, names)
    assert [(r["group_name"], r["filter_name"]) for r in got] == [
        ("SG One", "Corporate devices"), ("From the export", ""), ("", "")]  # unknown ids stay ids
