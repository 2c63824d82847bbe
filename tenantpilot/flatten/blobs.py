"""What a policy's stored raw JSON keeps of its blobs: script bodies as text, never icons.

Script bodies (PowerShell, shell, remediation detection and remediation, custom compliance) come from
Graph as base64. The rows hold their sha256 (constants.BLOB_KEYS: compared by content); the stored raw
JSON keeps the body decoded as text where it is UTF-8 text, so the detail view can show and diff it
(the fingerprint of the text is the fingerprint of the base64: both hash the same bytes). A body that
is not text stays base64. Icons (``largeIcon``: a mimeContent with a base64 image) and the other keys
of DROPPED_KEYS (managed Google Play's company codes) are never stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tenantpilot.flatten.constants import BLOB_KEYS
from tenantpilot.flatten.text import decode_base64_text

#: properties never stored: images, not configuration
DROPPED_KEYS: frozenset[str] = frozenset({
    "largeIcon", "smallIcon", "icon",
    # managed Google Play's enrollment codes: each holds an enrollment token and its QR code image
    # (androidManagedStoreAccountEnterpriseSettings.companyCodes, androidEnrollmentCompanyCode)
    "companyCodes",
})
#: properties holding a whole script body (the blob keys fingerprinted in full)
SCRIPT_KEYS: frozenset[str] = frozenset(k for k, digits in BLOB_KEYS.items() if digits == 64)


def script_text(value: Any) -> str | None:
    """A script body as text: base64 of UTF-8 decoded, None when it is not base64 of text."""
    return decode_base64_text(value)


def stored(policy: Mapping[str, Any]) -> dict[str, Any]:
    """The policy as its raw JSON is kept: icons dropped, script bodies as text (top level, where Graph
    puts them). The policy itself is returned when there is nothing to change."""
    if not any(k in policy for k in DROPPED_KEYS) and not any(k in policy for k in SCRIPT_KEYS):
        return dict(policy) if not isinstance(policy, dict) else policy
    out: dict[str, Any] = {}
    for key, value in policy.items():
        if key in DROPPED_KEYS:
            continue
        if key in SCRIPT_KEYS:
            text = script_text(value)
            if text is not None:
                value = text
        out[key] = value
    return out


__all__ = ["DROPPED_KEYS", "SCRIPT_KEYS", "script_text", "stored"]
