"""Pure: fetched or imported policies -> the three frames of one snapshot."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import polars as pl

from tenantpilot.flatten import extract_definitions, flatten_assignments, flatten_policy
from tenantpilot.flatten.schema import ASSIGNMENT_SCHEMA, POLICY_SCHEMA, SECRET_MASK, SETTING_SCHEMA

# property names whose values are credentials wherever they appear (Wi-Fi PSKs, VPN secrets, ...)
_SECRET_KEYS = {"presharedkey", "password", "passphrase", "secret", "clientsecret", "sharedsecret",
                "certificatepassword", "wifipassword", "pin"}



@dataclass(frozen=True)
class Frames:
    policies: pl.DataFrame
    settings: pl.DataFrame
    assignments: pl.DataFrame


def inline_definitions(policies: Iterable[tuple[str, dict]]) -> dict[str, dict]:
    """Setting definitions that came with the policies (settings?$expand=settingDefinitions)."""
    found: dict[str, dict] = {}
    for _family, raw in policies:
        settings = raw.get("settings")
        if isinstance(settings, list):
            found.update(extract_definitions(settings))
    return found


def mask_secrets(node):
    """A copy of a raw policy with every secret value replaced by SECRET_MASK (raw JSON is stored)."""
    if isinstance(node, list):
        return [mask_secrets(v) for v in node]
    if not isinstance(node, dict):
        return node
    secret_here = (
        node.get("isEncrypted") is True
        or "secretsettingvalue" in str(node.get("@odata.type", "")).lower()
        or node.get("valueState") in ("encryptedValueToken", "notEncrypted")
    )
    out = {}
    for key, value in node.items():
        if value is not None and not isinstance(value, (dict, list)) and (
            (secret_here and key == "value") or key.lower() in _SECRET_KEYS
        ):
            out[key] = SECRET_MASK
        else:
            out[key] = mask_secrets(value)
    return out


def build_frames(policies: Iterable[tuple[str, dict]], definitions: Mapping[str, dict] | None = None) -> Frames:
    """Flatten every (family, raw policy) into setting rows, assignment rows and policy rows."""
    setting_rows: list[dict] = []
    assignment_rows: list[dict] = []
    policy_rows: list[dict] = []
    for family, raw in policies:
        rows = flatten_policy(raw, family, definitions)
        setting_rows.extend(rows)
        assignment_rows.extend(flatten_assignments(raw, family))
        first = rows[0] if rows else {}
        policy_rows.append({
            "policy_id": first.get("policy_id", raw.get("id", "")),
            "policy_name": first.get("policy_name", raw.get("displayName") or raw.get("name") or ""),
            "policy_type": first.get("policy_type", family),
            "odata_type": first.get("odata_type", raw.get("@odata.type", "")),
            "platform": first.get("platform", ""),
            "raw_json": json.dumps(mask_secrets(raw), separators=(",", ":"), ensure_ascii=False),
        })
    return Frames(
        policies=pl.DataFrame(policy_rows, schema=POLICY_SCHEMA),
        settings=pl.DataFrame(setting_rows, schema=SETTING_SCHEMA),
        assignments=pl.DataFrame(assignment_rows, schema=ASSIGNMENT_SCHEMA),
    )
