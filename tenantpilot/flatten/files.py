"""Reading exported policy files: the only module of tenantpilot.flatten that does I/O.

load_export() takes a folder or a single file written by IntuneCD, IntuneManagement (full OData
metadata, UTF-16), the Intune portal, or raw Graph responses, and returns (family, policy) pairs
ready for flatten_policy().

What it does with each file:
- not *.json (.md, .mobileconfig, LICENSE, ...): skipped, reason "not a JSON file (...)".
- unreadable / malformed JSON: skipped with the ExportFormatError text (encoding, line, column).
- a policy resource, a list of them, or a Graph collection response {"value": [...]}: imported.
- a Graph follow-up response whose @odata.context names its parent, e.g.
  ``groupPolicyConfigurations('c')/definitionValues``, ``configurationPolicies('p')/settings``,
  ``…/definitionValues('d')/presentationValues``: merged into that policy under Graph's own
  name (so the terraform admin-template captures are joined into one policy). Presentations of a
  definition (``groupPolicyDefinitions('x')/presentations``) give presentation values without an
  expanded ``presentation`` their label. A follow-up whose parent is not in the export is skipped.
- the same policy id in several files: merged into one policy (first file wins per key, empty
  values filled from later files).
- Intune objects that are not policies (assignment report, scope tags, role definitions,
  notification message templates, tenant-wide device management settings, assignment filters,
  mobile apps): skipped, reason "not a policy: ...".
- JSON objects with no recognisable policy shape and no name: skipped. Objects with a name or an
  @odata.type but no known family are imported as family "unknown".
- files and folders whose name starts with "." are ignored (not listed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenantpilot.flatten.constants import COLLECTION_FAMILIES, NON_POLICY_TYPES, UNKNOWN
from tenantpilot.flatten.core import context_segments, detect_family, family_from_type, short_type


class ExportFormatError(ValueError):
    """A file is not readable JSON; `reason` says why (encoding, position)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)


def detect_encoding(data: bytes) -> tuple[str, int]:
    """(codec, BOM length) of JSON bytes: BOM first, then the NUL pattern of UTF-16 without BOM."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return codec, len(bom)
    if len(data) >= 2:
        if data[0] == 0 and data[1] != 0:
            return "utf-16-be", 0
        if data[0] != 0 and data[1] == 0:
            return "utf-16-le", 0
    return "utf-8", 0


def read_json_bytes(data: bytes) -> Any:
    """Parse JSON bytes in UTF-8, UTF-8 with BOM, UTF-16 LE/BE (BOM or not) or UTF-32 with BOM.

    Raises ExportFormatError (a ValueError) naming the encoding and the position of the problem.
    """
    codec, skip = detect_encoding(data)
    try:
        text = data[skip:].decode(codec.removesuffix("-sig"))
    except UnicodeDecodeError as exc:
        raise ExportFormatError(f"not valid {codec} text: {exc.reason} at byte {exc.start + skip}") from None
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise ExportFormatError("empty file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExportFormatError(
            f"malformed JSON ({codec}): {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ExportFormatError("malformed JSON: nested too deeply") from None


@dataclass
class ExportLoad:
    """Result of load_export: policies ready to flatten and the files that were not used."""

    policies: list[tuple[str, dict]] = field(default_factory=list)  # (family, policy)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    sources: list[tuple[str, ...]] = field(default_factory=list)  # files behind policies[i]


@dataclass
class _Part:
    """A follow-up response to merge into its parent policy."""

    file: str
    segments: list[tuple[str, str | None]]
    items: list[Any]


_SCOPE_TAG_KEYS = frozenset({"displayName", "description", "isBuiltIn", "id", "roleScopeTagIds"})
_PRESENTATION_KINDS = {
    "Text": ("TextBox", "ComboBox", "DropdownList"),
    "Decimal": ("DecimalTextBox",),
    "LongDecimal": ("LongDecimalTextBox",),
    "Boolean": ("CheckBox",),
    "List": ("ListBox",),
    "MultiText": ("MultiTextBox",),
}


def non_policy_reason(obj: dict) -> str | None:
    """Why a JSON object is an Intune object but not a policy, or None."""
    label = NON_POLICY_TYPES.get(short_type(obj.get("@odata.type")))
    if label:
        return f"not a policy: {label}"
    keys = obj.keys()
    if "assignedTo" in keys and "groupName" in keys:
        return "not a policy: assignment report"
    if "localizedNotificationMessages" in keys or ("brandingOptions" in keys and "defaultLocale" in keys):
        return "not a policy: compliance notification message template"
    if "rolePermissions" in keys:
        return "not a policy: role definition"
    if "isBuiltIn" in keys and {k for k in keys if "@" not in k} <= _SCOPE_TAG_KEYS:
        return "not a policy: scope tag"
    if "deviceComplianceCheckinThresholdDays" in keys:
        return "not a policy: tenant-wide device management settings"
    if "assignmentFilterManagementType" in keys or ("rule" in keys and "platform" in keys
                                                     and "displayName" in keys and len(keys) <= 8):
        return "not a policy: assignment filter"
    kind = short_type(obj.get("@odata.type"))
    if kind.startswith("groupPolicyPresentation"):
        return "not a policy: admin template presentation without its configuration"
    if kind.endswith(("App", "LobApp", "StoreApp", "WebApp")):
        return "not a policy: mobile app"
    return None


def _family_of(obj: dict, hint: str) -> str:
    family = family_from_type(obj.get("@odata.type"))
    if family != UNKNOWN:
        return family
    if hint != UNKNOWN:
        return hint
    return detect_family(obj)


def _files(root: Path) -> list[tuple[Path, str]]:
    if root.is_file():
        return [(root, root.name)]
    found = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        found.append((path, rel.as_posix()))
    return sorted(found, key=lambda item: item[1])


def _merge_list(target: dict, key: str, items: list[Any]) -> None:
    """Append items to target[key], dropping items whose id is already there."""
    current = target.get(key)
    if not isinstance(current, list):
        target[key] = list(items)
        return
    ids = {item.get("id") for item in current if isinstance(item, dict) and item.get("id")}
    for item in items:
        if isinstance(item, dict) and item.get("id") and item["id"] in ids:
            continue
        current.append(item)


def _merge_policy(existing: dict, new: dict) -> None:
    for key, value in new.items():
        if key not in existing or (existing[key] in (None, [], {}, "") and value not in (None, [], {}, "")):
            existing[key] = value


def _attach_presentations(policy: dict, presentations: dict[str, list[dict]]) -> list[str]:
    """Give presentation values without an expanded `presentation` the matching presentation.

    Returns the definition ids whose presentations this policy uses.
    """
    used: list[str] = []
    for dv in policy.get("definitionValues") or ():
        if not isinstance(dv, dict):
            continue
        definition = dv.get("definition")
        definition = definition if isinstance(definition, dict) else {}
        definition_id = str(definition.get("id") or "")
        if definition_id not in presentations:
            continue
        used.append(definition_id)
        available = list(presentations[definition_id])
        for pv in dv.get("presentationValues") or ():
            if not isinstance(pv, dict) or isinstance(pv.get("presentation"), dict):
                continue
            kind = short_type(pv.get("@odata.type")).removeprefix("groupPolicyPresentationValue")
            wanted = tuple("groupPolicyPresentation" + k for k in _PRESENTATION_KINDS.get(kind, ()))
            bind = str(pv.get("presentation@odata.bind") or "")
            match = next((p for p in available if p.get("id") and p["id"] in bind), None)
            if match is None:
                match = next((p for p in available if short_type(p.get("@odata.type")) in wanted), None)
            if match is not None:
                available.remove(match)
                pv["presentation"] = match
    return used


def load_export(path: str | Path) -> ExportLoad:
    """Read every policy of an export folder (or one file). See the module docstring."""
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"export not found: {root}")
    result = ExportLoad()
    candidates: list[tuple[str, dict, str]] = []  # (file, object, family hint)
    parts: list[_Part] = []

    for file_path, rel in _files(root):
        if file_path.suffix.lower() != ".json":
            result.skipped.append((rel, f"not a JSON file ({file_path.suffix or 'no extension'})"))
            continue
        try:
            doc = read_json_bytes(file_path.read_bytes())
        except ExportFormatError as exc:
            result.skipped.append((rel, exc.reason))
            continue
        except OSError as exc:
            result.skipped.append((rel, f"unreadable: {exc.strerror or exc}"))
            continue
        _classify(doc, rel, candidates, parts, result)

    # policies, deduplicated by id
    by_id: dict[str, int] = {}
    for rel, obj, hint in candidates:
        reason = non_policy_reason(obj)
        if reason:
            if (rel, reason) not in result.skipped:
                result.skipped.append((rel, reason))
            continue
        family = _family_of(obj, hint)
        if family == UNKNOWN and not (obj.get("displayName") or obj.get("name") or obj.get("@odata.type")):
            keys = ", ".join(sorted(obj)[:6])
            result.skipped.append((rel, f"no recognisable policy shape (keys: {keys})"))
            continue
        policy_id = str(obj.get("id") or "")
        if policy_id and policy_id in by_id:
            index = by_id[policy_id]
            _merge_policy(result.policies[index][1], obj)
            _add_source(result, index, rel)
            continue
        if policy_id:
            by_id[policy_id] = len(result.policies)
        result.policies.append((family, obj))
        result.sources.append((rel,))

    # follow-up responses, parents before children
    presentations: dict[str, list[dict]] = {}
    presentation_files: dict[str, str] = {}
    for part in sorted(parts, key=lambda p: (len(p.segments), p.file)):
        (collection, parent_id), nav = part.segments[0], part.segments[1]
        if collection == "groupPolicyDefinitions" and nav[0] == "presentations":
            presentations.setdefault(str(parent_id), []).extend(
                item for item in part.items if isinstance(item, dict))
            presentation_files[str(parent_id)] = part.file
            continue
        parent_index = by_id.get(str(parent_id))
        if parent_index is None:
            result.skipped.append((part.file, f"follow-up response for {collection}('{parent_id}') "
                                              "whose policy is not in the export"))
            continue
        policy = result.policies[parent_index][1]
        target: dict | None = policy
        for name, key in part.segments[1:-1]:
            container = target.get(name) if target is not None else None
            target = next((item for item in container or () if isinstance(item, dict)
                           and str(item.get("id")) == key), None)
        if target is None:
            result.skipped.append((part.file, "follow-up response whose parent item is not in the export"))
            continue
        _merge_list(target, part.segments[-1][0], part.items)
        _add_source(result, parent_index, part.file)

    used: set[str] = set()
    for index, (_family, policy) in enumerate(result.policies):
        if not presentations or not isinstance(policy.get("definitionValues"), list):
            continue
        for definition_id in _attach_presentations(policy, presentations):
            _add_source(result, index, presentation_files[definition_id])
            used.add(definition_id)
    result.skipped.extend((file, "presentations of a definition that no policy in the export uses")
                          for definition_id, file in sorted(presentation_files.items())
                          if definition_id not in used)
    return result


def _add_source(result: ExportLoad, index: int, file: str) -> None:
    if file not in result.sources[index]:
        result.sources[index] = (*result.sources[index], file)


def _classify(doc: Any, rel: str, candidates: list[tuple[str, dict, str]], parts: list[_Part],
              result: ExportLoad) -> None:
    if isinstance(doc, list):
        objects = [item for item in doc if isinstance(item, dict)]
        if not objects:
            result.skipped.append((rel, "no JSON objects in the list"))
            return
        candidates.extend((rel, item, UNKNOWN) for item in objects)
        return
    if not isinstance(doc, dict):
        result.skipped.append((rel, "not a JSON object or array"))
        return
    segments = context_segments(doc.get("@odata.context"))
    is_follow_up = len(segments) >= 2 and segments[0][1] is not None
    if isinstance(doc.get("value"), list) and not doc.get("displayName") and not doc.get("@odata.type"):
        items = doc["value"]
        if is_follow_up:
            parts.append(_Part(rel, segments, items))
            return
        hint = COLLECTION_FAMILIES.get(segments[0][0], UNKNOWN) if segments else UNKNOWN
        objects = [item for item in items if isinstance(item, dict)]
        if not objects:
            result.skipped.append((rel, "empty collection response"))
            return
        candidates.extend((rel, item, hint) for item in objects)
        return
    if is_follow_up:
        parts.append(_Part(rel, segments, [doc]))
        return
    hint = COLLECTION_FAMILIES.get(segments[0][0], UNKNOWN) if segments else UNKNOWN
    candidates.append((rel, doc, hint))
