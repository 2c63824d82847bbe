"""Pure text helpers: readable names, JSON text of raw values, fingerprints, compare normalisation."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from functools import lru_cache
from typing import Any

from tenantpilot.flatten.constants import (
    AUTHORITY_TENANT_RE,
    CATALOG_ID_PREFIXES,
    GUID_RE,
    OBJECT_ID_PLACEHOLDER,
    ONBOARDING_NAMES,
    ONBOARDING_PLACEHOLDER,
    PAIR_SPELLINGS,
    TENANT_DOMAIN_PLACEHOLDER,
    TENANT_DOMAIN_RE,
    TENANT_ID_PLACEHOLDER,
    WORD_SPELLINGS,
    ZERO_GUID,
)

# C-accelerated JSON string encoder (what json.dumps uses for str, without the call overhead)
_encode_str = json.encoder.encode_basestring

# whitespace Graph leaves in display names: U+202F narrow no-break space, zero-width chars, BOM
_ODD_SPACE = "\u202f\u200b\u200c\u200d\u2060\ufeff\u00a0\u2007"


def clean_label(text: Any) -> str:
    """A display name / label with surrounding whitespace (incl. U+202F, zero-width) removed."""
    if text is None:
        return ""
    return str(text).strip().strip(_ODD_SPACE).strip()


def raw_json(value: Any) -> str:
    """JSON text of a raw value (strings fast-pathed)."""
    if value.__class__ is str:
        return _encode_str(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value.__class__ is int:
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def display(value: Any) -> str:
    """Display text of a scalar value."""
    if value.__class__ is str:
        return value
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return str(value)


def set_order(value: Any) -> tuple[str, str]:
    """Sort key that orders the members of a set of raw values totally (display text first)."""
    return display(value), raw_json(value)


def scalar_type(value: Any) -> str:
    if value.__class__ is str:
        return "string"
    if value is True or value is False:
        return "boolean"
    if value.__class__ is int:
        return "integer"
    if value.__class__ is float:
        return "number"
    if value is None:
        return "null"
    return "json"


_WORD_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


@lru_cache(maxsize=65536)
def humanize(name: str) -> str:
    """camelCase property name -> sentence: "passwordMinimumLength" -> "Password minimum length"."""
    if not name:
        return ""
    words = _WORD_RE.findall(name)
    if not words:
        return name
    out: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        # iCloud, iTunes, eSIM, macOS, tvOS, ...: glue a lone lower-case prefix to the next word
        if i + 1 < len(words) and w in ("i", "e", "mac", "tv", "ipad", "watch", "vision") \
                and (words[i + 1][:1].isupper()):
            joined = (w + words[i + 1]).lower()
            if joined in WORD_SPELLINGS:
                out.append(WORD_SPELLINGS[joined])
                i += 2
                continue
        low = w.lower()
        if i + 1 < len(words) and (low, words[i + 1].lower()) in PAIR_SPELLINGS:
            out.append(PAIR_SPELLINGS[(low, words[i + 1].lower())])
            i += 2
            continue
        if low in WORD_SPELLINGS:
            out.append(WORD_SPELLINGS[low])
        elif len(w) > 1 and w.isupper():
            out.append(w)  # acronym: EULA, TLS, ...
        else:
            out.append(low)
        i += 1
    first = out[0]
    if first[:1].islower() and first not in WORD_SPELLINGS.values():
        out[0] = first[:1].upper() + first[1:]
    return " ".join(out)


def _strip_catalog_prefix(def_id: str) -> str:
    for prefix in CATALOG_ID_PREFIXES:
        if def_id.startswith(prefix):
            return def_id[len(prefix):]
    return def_id


def _common_prefix(a: str, b: str) -> str:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return a[:n]


def _words(segment: str) -> str:
    return " ".join(w for w in segment.split("_") if w and w != "l")


@lru_cache(maxsize=65536)
def catalog_fallback(def_id: str, parent_id: str = "") -> tuple[str, str]:
    """(readable name, category) for a settings-catalog definition id without its definition.

    Names are for display only: keys never split ids.
    """
    rest = _strip_catalog_prefix(def_id)
    if "~" in rest:
        head, _, tail = rest.rpartition("~")
        category = " > ".join(_words(p) for p in head.split("~") if _words(p))
    else:
        area, _, tail = rest.partition("_")
        category = area
        if not tail:
            tail = area
    if parent_id:
        if def_id.startswith(parent_id + "_"):
            tail = def_id[len(parent_id) + 1:]
        else:
            # sibling-style child (..._accessgroup_users under ..._accessgroup_userselectiontype):
            # drop the part shared with the parent, cut at an underscore
            shared = len(_common_prefix(def_id, parent_id))
            cut = def_id.rfind("_", 0, shared + 1)
            if cut > len(def_id) - len(rest) + len(category) and cut + 1 < len(def_id):
                tail = def_id[cut + 1:]
    name = _words(tail) or def_id
    return name, category


def choice_fallback(option_id: str, def_id: str) -> str:
    """Readable choice value without definitions: strip the "settingDefinitionId_" prefix."""
    if option_id.startswith(def_id) and len(option_id) > len(def_id) + 1 \
            and option_id[len(def_id)] == "_":
        return option_id[len(def_id) + 1:]
    return option_id


def fingerprint(value: Any, digits: int = 64) -> str:
    """sha256 of a blob: base64 text is decoded first, so the digest matches the file's own."""
    if value.__class__ is str:
        data = value.encode("utf-8")
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            pass
    elif isinstance(value, (bytes, bytearray)):
        data = bytes(value)
    else:
        data = raw_json(value).encode("utf-8")
    return "sha256:" + hashlib.sha256(data).hexdigest()[:digits]


def decode_base64_text(value: Any) -> str | None:
    """Base64 -> UTF-8 text, or None when it is not base64 of text."""
    if value.__class__ is not str:
        return None
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


_NEEDS_NORMALISE = ("onmicrosoft", "onmschina", "login", "sts.windows", "orgId", "OrgId")


@lru_cache(maxsize=65536)
def _prop_kind(prop: str) -> str:
    """What a property / definition name says about its value: onboarding, tenant, object or ''."""
    low = prop.lower()
    if low in ONBOARDING_NAMES or "onboarding" in low:
        return "onboarding"
    if "tenant" in low or "kfm" in low:
        return "tenant"
    if low.endswith(("groupid", "groupids", "templateid", "filterid")):
        return "object"
    return ""


def _object_id(match: re.Match[str]) -> str:
    return match.group(0) if match.group(0) == ZERO_GUID else OBJECT_ID_PLACEHOLDER


def normalise(text: str, prop: str = "") -> str:
    """Value for cross-tenant comparison: tenant-specific parts replaced by placeholders.

    `prop` is the property / definition id name, used to spot the tenant's own id, tenant object
    ids (groups, notification templates, filters) and onboarding blobs by name.
    """
    kind = _prop_kind(prop) if prop else ""
    if kind == "onboarding" and (prop.lower() in ONBOARDING_NAMES or len(text) > 200):
        return ONBOARDING_PLACEHOLDER
    if kind == "tenant" and GUID_RE.fullmatch(text.strip("{} ")):
        return TENANT_ID_PLACEHOLDER  # the tenant's own id (KFM opt-in, AAD tenant id, ...)
    if kind == "object" and GUID_RE.search(text):
        return GUID_RE.sub(_object_id, text)
    if not any(marker in text for marker in _NEEDS_NORMALISE):
        return text
    if ("orgId" in text or "OrgId" in text) and len(text) > 200:
        return ONBOARDING_PLACEHOLDER
    text = AUTHORITY_TENANT_RE.sub(r"\1" + TENANT_ID_PLACEHOLDER, text)
    return TENANT_DOMAIN_RE.sub(TENANT_DOMAIN_PLACEHOLDER, text)
