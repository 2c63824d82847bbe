"""Script bodies on demand: the text of a policy's scripts from its stored raw JSON, and a line diff of two.

Rows hold a script's sha256 (flatten/constants.BLOB_KEYS: compared by content); the stored raw JSON keeps
the body as text (flatten/blobs.py). The detail view (Explore, Changes) asks here for the text of one
policy, or for the lines that differ between two tenants or two runs. Pure: the caller reads the raw JSON
(store.policy_raw) and shows the result escaped like every other text (app/ui.inert).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

from tenantpilot.flatten.blobs import SCRIPT_KEYS, script_text

__all__ = ["line_diff", "script_bodies"]


def script_bodies(raw: str | Mapping[str, Any] | None) -> dict[str, str]:
    """{property: text} of every script body of a stored policy (`scriptContent`, `detectionScriptContent`,
    `remediationScriptContent`); a body still in base64 (stored before bodies were kept as text) is
    decoded, one that is not text is left out."""
    if raw is None:
        return {}
    doc = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(doc, Mapping):
        return {}
    out: dict[str, str] = {}
    for key in sorted(SCRIPT_KEYS):
        value = doc.get(key)
        if not isinstance(value, str):
            continue
        decoded = script_text(value)
        out[key] = decoded if decoded is not None else value
    return out


def line_diff(old: str, new: str, *, old_label: str = "before", new_label: str = "after",
              context: int = 3) -> list[str]:
    """The unified diff of two script bodies, one entry per line ([] when equal)."""
    return list(difflib.unified_diff(old.splitlines(), new.splitlines(), fromfile=old_label, tofile=new_label,
                                     n=context, lineterm=""))
