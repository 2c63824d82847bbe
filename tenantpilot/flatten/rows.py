"""The row: one dict per leaf setting with exactly SETTING_COLUMNS, and helpers shared by extractors."""

from __future__ import annotations

from typing import NamedTuple

from tenantpilot.flatten.schema import NOT_CONFIGURED, NOT_CONFIGURED_CMP
from tenantpilot.flatten.secrets import SECRET_MASK

Row = dict[str, object]


class Ident(NamedTuple):
    """The policy part of every row of one policy."""

    policy_id: str
    policy_name: str
    policy_type: str
    odata_type: str
    platform: str


def make_row(
    ident: Ident,
    key: str,
    setting_id: str,
    name: str,
    category: str,
    value: str,
    raw_value: str,
    value_type: str,
    description: str,
    compare_value: str,
) -> Row:
    return {
        "policy_id": ident[0],
        "policy_name": ident[1],
        "policy_type": ident[2],
        "odata_type": ident[3],
        "platform": ident[4],
        "setting_key": key,
        "setting_id": setting_id,
        "setting_name": name,
        "category": category,
        "value": value,
        "raw_value": raw_value,
        "value_type": value_type,
        "is_secret": False,
        "description": description,
        "compare_value": compare_value,
        "configured": True,
    }


def unconfigured(row: Row) -> Row:
    """Mark a row "Not configured" (flatten/configured.py): shown as NOT_CONFIGURED, raw value kept."""
    row["configured"] = False
    row["value"] = NOT_CONFIGURED
    row["compare_value"] = NOT_CONFIGURED_CMP
    return row


def secret_row(ident: Ident, key: str, setting_id: str, name: str, category: str,
               description: str) -> Row:
    """A row whose value is a credential: value, raw value and compare value are masked."""
    row = make_row(ident, key, setting_id, name, category, SECRET_MASK, SECRET_MASK, "secret",
                   description, SECRET_MASK)
    row["is_secret"] = True
    return row


def content_rank(groups: list[list[Row]]) -> list[int]:
    """Rank of each group of rows by content (order-independent index for unkeyed collections).

    Groups with identical content get consecutive ranks; since their rows are identical it does
    not matter which gets which.
    """
    prints = [
        tuple(sorted((r["setting_key"], r["compare_value"], r["value"], r["raw_value"]) for r in g))
        for g in groups
    ]
    order = sorted(range(len(groups)), key=prints.__getitem__)
    rank = [0] * len(groups)
    for position, index in enumerate(order):
        rank[index] = position
    return rank
