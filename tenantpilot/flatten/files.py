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
- never followed, skipped with a reason: symbolic links (to files or folders: a link could point
  out of the export, e.g. at /etc/shadow) and anything that is not a regular file (FIFOs,
  devices). Files are opened with O_NOFOLLOW, so a link swapped in after the listing fails too.
- bounded: a file larger than `max_file_bytes` (MAX_FILE_BYTES) is skipped unread; JSON nested
  deeper than MAX_DEPTH (the flattener's limit) and JSON holding a lone UTF-16 surrogate (not
  text) are skipped with the reason.

Memory: `ExportReader` reads in two passes. The first parses each file once, keeps only an index
(which object of which file is which policy, follow-ups, the definition ids used) and drops the
parsed document (beyond the first KEEP_PARSED_BYTES of text); the second (`policies()`) parses
those files again, one at a time, and yields one assembled policy at a time. So an import holds
about one parsed file (and at most 16 MB of small ones), never the whole export.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tenantpilot.flatten.constants import COLLECTION_FAMILIES, MAX_DEPTH, NON_POLICY_TYPES, UNKNOWN
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

    Raises ExportFormatError (a ValueError) naming the encoding and the position of the problem,
    or saying why the document is refused (nested deeper than MAX_DEPTH, a lone surrogate)."""
    return _load(data)[0]


def _load(data: bytes, *, check: bool = True) -> tuple[Any, str]:
    """(document, its JSON text) of export-file bytes; see read_json_bytes. `check=False` skips the
    depth and surrogate checks (a file read again that passed them already)."""
    codec, skip = detect_encoding(data)
    try:
        text = data[skip:].decode(codec.removesuffix("-sig"))
    except UnicodeDecodeError as exc:
        raise ExportFormatError(f"not valid {codec} text: {exc.reason} at byte {exc.start + skip}") from None
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise ExportFormatError("empty file")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ExportFormatError(
            f"malformed JSON ({codec}): {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ExportFormatError(f"JSON nested too deeply: deeper than the {MAX_DEPTH} levels the flattener "
                                "reads") from None
    except ValueError as exc:  # the reader refuses for another reason: a number over 4,300 digits, ...
        raise ExportFormatError(f"JSON the reader refuses ({codec}): {exc}") from None
    if not check:
        return doc, text
    if too_deep(text, MAX_DEPTH):
        raise ExportFormatError(f"JSON nested deeper than the {MAX_DEPTH} levels the flattener reads")
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(doc, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ExportFormatError(f"JSON holds a lone UTF-16 surrogate ({exc.object[exc.start]!r}), "
                                    "which is not text") from None
    return doc, text


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_KEEP_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_STRING_LEFT = re.compile(rb'"[^"]*"')
_EMPTY_PAIR = re.compile(rb"\[\]|\{\}")


def too_deep(text: str, limit: int) -> bool:
    """True when the objects and arrays of valid JSON `text` nest more than `limit` levels.

    All in C (no Python step per character or per string): escaped backslashes and quotes are
    dropped, so every quote left delimits a string; then only quotes and brackets are kept, the
    strings (now empty, or holding the brackets they quoted) are removed, and each round removes
    the innermost bracket pairs, one level: `limit` rounds empty any document at most that deep."""
    kept = text.replace("\\\\", "").replace('\\"', "").encode().translate(None, _KEEP_STRUCTURE)
    kept = kept.replace(b'""', b"")  # strings without brackets (adjacent strings merge: still strings)
    if b'"' in kept:
        kept = _STRING_LEFT.sub(b"", kept)
    for _ in range(limit):
        if not kept:
            return False
        kept = _EMPTY_PAIR.sub(b"", kept)
    return bool(kept)


_DEFINITION_ID = re.compile(r'"(?:settingDefinitionId|definitionId)"\s*:\s*("[^"\\]*(?:\\.[^"\\]*)*")')


def definition_ids(text: str) -> set[str]:
    """Setting-definition ids a JSON text uses (catalog settingDefinitionId, intent definitionId)."""
    found = set()
    for quoted in _DEFINITION_ID.findall(text):
        value = json.loads(quoted) if "\\" in quoted else quoted[1:-1]
        if value:
            found.add(value)
    return found


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


# the first pass keeps files parsed up to this much JSON text (about 10 x as much memory), so the
# usual export is parsed once; beyond it the second pass parses each file again
KEEP_PARSED_BYTES = 16 * 1024 * 1024
MAX_FILE_BYTES = 256 * 1024 * 1024  # one exported policy file; a whole tenant's Graph list stays far below
# all the JSON of one import: what is read is written as one snapshot, which the database holds in
# memory while it writes it (950 files of 1 MB each ran DuckDB out of memory); the largest real
# exports of the corpus are a few MB
MAX_IMPORT_BYTES = 256 * 1024 * 1024


class ExportTooLarge(ValueError):
    """The export holds more JSON than one import may (MAX_IMPORT_BYTES); the message names the cap."""


def list_files(root: Path) -> tuple[list[tuple[Path, str]], list[tuple[str, str]]]:
    """(path, relative name) of the regular files under `root` in name order, and (name, reason) of
    what is not read: links (never followed, to files or folders) and special files. Hidden names
    (a part starting with ".") are ignored. `root` itself may be a file."""
    if not root.is_dir():
        return [(root, root.name)], []
    found: list[tuple[Path, str]] = []
    left_out: list[tuple[str, str]] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder)
        rel_here = here.relative_to(root)
        for name in sorted(dirs):
            if name.startswith("."):
                dirs.remove(name)
            elif (here / name).is_symlink():
                left_out.append(((rel_here / name).as_posix(), "symbolic link to a folder: not followed"))
        for name in files:
            if name.startswith("."):
                continue
            path, rel = here / name, (rel_here / name).as_posix()
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                left_out.append((rel, "symbolic link: not followed (it could point outside the export)"))
            elif not stat.S_ISREG(mode):
                left_out.append((rel, "not a regular file"))
            else:
                found.append((path, rel))
    return sorted(found, key=lambda item: item[1]), sorted(left_out)


def read_file(path: Path, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of one export file, never through a link, never more than `max_bytes`.

    Raises ExportFormatError with the reason (too large, a link, not a regular file) or OSError."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if os.path.islink(path):
            raise ExportFormatError("symbolic link: not followed (it could point outside the export)") from None
        raise exc
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ExportFormatError("not a regular file")
        if info.st_size > max_bytes:
            raise ExportFormatError(f"{info.st_size / 1024 / 1024:,.0f} MB, larger than the "
                                    f"{max_bytes / 1024 / 1024:,.0f} MB one export file may be: not read")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:  # grew while being read
        raise ExportFormatError(f"larger than the {max_bytes / 1024 / 1024:,.0f} MB one export file may be: not read")
    return data


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


@dataclass
class _Entry:
    """One policy of the export: where its objects are and which follow-ups join it."""

    family: str
    refs: list[tuple[str, int]]  # (file, index of the object among the file's candidates)
    parts: list[_Part] = field(default_factory=list)
    sources: tuple[str, ...] = ()


class ExportReader:
    """An export folder (or one file) read in two passes; see the module docstring.

    Creating it runs the first pass: `skipped`, `count`, `largest_file` and `definition_ids` are
    then known. `policies()` runs the second pass and yields (family, policy, source files) one
    policy at a time; it may add to `skipped` (follow-ups whose parent item is missing, unused
    presentations), which is complete once it is exhausted. `current` names the file being read
    or the files of the policy last yielded, for error messages.
    """

    def __init__(self, path: str | Path, *, max_file_bytes: int = MAX_FILE_BYTES,
                 max_total_bytes: int = MAX_IMPORT_BYTES) -> None:
        self.root = Path(path)
        if not self.root.exists() and not self.root.is_symlink():
            raise FileNotFoundError(f"export not found: {self.root}")
        self.max_file_bytes = max_file_bytes
        self.max_total_bytes = max_total_bytes
        self.skipped: list[tuple[str, str]] = []
        self.largest_file = 0
        self.definition_ids: set[str] = set()
        self.current = ""
        self._entries: list[_Entry] = []
        self._paths: dict[str, Path] = {}
        self._presentations: dict[str, list[dict]] = {}
        self._presentation_files: dict[str, str] = {}
        self._kept: dict[str, tuple[list[tuple[str, dict, str]], list[_Part]]] = {}
        self._kept_bytes = 0
        self._scan()

    @property
    def count(self) -> int:
        """Number of policies the export holds."""
        return len(self._entries)

    # -- pass 1: index -----------------------------------------------------------------------
    def _read(self, rel: str, *, check: bool = True) -> tuple[Any, str]:
        self.current = rel
        return _load(read_file(self._paths[rel], self.max_file_bytes), check=check)

    def _scan(self) -> None:
        files, left_out = list_files(self.root)
        total = sum(p.lstat().st_size for p, _rel in files if p.suffix.lower() == ".json")
        if total > self.max_total_bytes:  # refused before anything is parsed
            mb = 1024 * 1024
            raise ExportTooLarge(
                f"{self.root.name} holds {total / mb:,.0f} MB of JSON, more than the {self.max_total_bytes / mb:,.0f} MB "
                "one import may hold (the database writes an import whole, in memory): import the export in parts, "
                "for example one folder per policy type")
        self.skipped.extend(left_out)
        parts: list[_Part] = []
        by_id: dict[str, int] = {}
        non_policies: list[tuple[str, str]] = []
        for file_path, rel in files:
            self._paths[rel] = file_path
            if file_path.suffix.lower() != ".json":
                self.skipped.append((rel, f"not a JSON file ({file_path.suffix or 'no extension'})"))
                continue
            try:
                doc, text = self._read(rel)
            except ExportFormatError as exc:
                self.skipped.append((rel, exc.reason))
                continue
            except OSError as exc:
                self.skipped.append((rel, f"unreadable: {exc.strerror or exc}"))
                continue
            self.largest_file = max(self.largest_file, file_path.stat().st_size)
            candidates: list[tuple[str, dict, str]] = []
            found: list[_Part] = []
            _classify(doc, rel, candidates, found, self.skipped)
            size = len(text)
            if self._kept_bytes + size <= KEEP_PARSED_BYTES:  # small exports are parsed once
                self._kept[rel] = (candidates, found)
                self._kept_bytes += size
            # the index: follow-ups are read again in pass 2, presentations stay (small)
            parts.extend(part if part.segments[0][0] == "groupPolicyDefinitions"
                         else _Part(part.file, part.segments, []) for part in found)
            for index, (_rel, obj, hint) in enumerate(candidates):
                reason = non_policy_reason(obj)
                if reason:
                    if (rel, reason) not in non_policies:
                        non_policies.append((rel, reason))
                    continue
                family = _family_of(obj, hint)
                if family == UNKNOWN and not (obj.get("displayName") or obj.get("name") or obj.get("@odata.type")):
                    keys = ", ".join(sorted(obj)[:6])
                    non_policies.append((rel, f"no recognisable policy shape (keys: {keys})"))
                    continue
                policy_id = str(obj.get("id") or "")
                if policy_id and policy_id in by_id:
                    entry = self._entries[by_id[policy_id]]
                    entry.refs.append((rel, index))
                    entry.sources = _with(entry.sources, rel)
                    continue
                if policy_id:
                    by_id[policy_id] = len(self._entries)
                self._entries.append(_Entry(family, [(rel, index)], sources=(rel,)))
            self.definition_ids |= definition_ids(text)
            del doc, text, candidates  # only the index stays
        self.skipped.extend(non_policies)

        # follow-up responses, parents before children
        for part in sorted(parts, key=lambda p: (len(p.segments), p.file)):
            (collection, parent_id), nav = part.segments[0], part.segments[1]
            if collection == "groupPolicyDefinitions" and nav[0] == "presentations":
                self._presentations.setdefault(str(parent_id), []).extend(
                    item for item in part.items if isinstance(item, dict))
                self._presentation_files[str(parent_id)] = part.file
                continue
            parent = by_id.get(str(parent_id))
            if parent is None:
                self.skipped.append((part.file, f"follow-up response for {collection}('{parent_id}') "
                                                "whose policy is not in the export"))
                continue
            self._entries[parent].parts.append(_Part(part.file, part.segments, []))  # items are read again
        self.current = ""

    # -- pass 2: policies ---------------------------------------------------------------------
    def policies(self) -> Iterator[tuple[str, dict, tuple[str, ...]]]:
        """(family, policy, source files) of every policy, assembled one at a time."""
        cached: tuple[str, list[tuple[str, dict, str]], list[_Part]] | None = None
        used: set[str] = set()

        def document(rel: str) -> tuple[list[tuple[str, dict, str]], list[_Part]]:
            """The candidates and follow-up parts of one file: the last file read stays parsed."""
            nonlocal cached
            if rel in self._kept:
                return self._kept[rel]
            if cached is None or cached[0] != rel:
                cached = None  # drop the previous file before parsing the next
                candidates: list[tuple[str, dict, str]] = []
                parts: list[_Part] = []
                _classify(self._read(rel, check=False)[0], rel, candidates, parts, [])
                cached = (rel, candidates, parts)
            return cached[1], cached[2]

        for entry in self._entries:
            policy: dict | None = None
            sources = entry.sources
            for rel, index in entry.refs:
                obj = document(rel)[0][index][1]
                if policy is None:
                    policy = obj
                else:
                    _merge_policy(policy, obj)
            assert policy is not None  # every entry has a first object
            for part in entry.parts:
                found = document(part.file)[1]
                target: dict | None = policy
                for name, key in part.segments[1:-1]:
                    container = target.get(name) if target is not None else None
                    target = next((item for item in container or () if isinstance(item, dict)
                                   and str(item.get("id")) == key), None)
                if target is None:
                    self.skipped.append((part.file, "follow-up response whose parent item is not in the export"))
                    continue
                _merge_list(target, part.segments[-1][0], found[0].items if found else [])
                sources = _with(sources, part.file)
            if self._presentations and isinstance(policy.get("definitionValues"), list):
                for definition_id in _attach_presentations(policy, self._presentations):
                    sources = _with(sources, self._presentation_files[definition_id])
                    used.add(definition_id)
            self.current = ", ".join(sources)
            yield entry.family, policy, sources
        self.skipped.extend((file, "presentations of a definition that no policy in the export uses")
                            for definition_id, file in sorted(self._presentation_files.items())
                            if definition_id not in used)


def _with(sources: tuple[str, ...], file: str) -> tuple[str, ...]:
    return sources if file in sources else (*sources, file)


def load_export(path: str | Path, *, max_file_bytes: int = MAX_FILE_BYTES) -> ExportLoad:
    """Every policy of an export folder (or one file) in memory; see the module docstring.
    Imports stream through ExportReader instead."""
    reader = ExportReader(path, max_file_bytes=max_file_bytes)
    result = ExportLoad()
    for family, policy, sources in reader.policies():
        result.policies.append((family, policy))
        result.sources.append(sources)
    result.skipped = reader.skipped
    return result


def _classify(doc: Any, rel: str, candidates: list[tuple[str, dict, str]], parts: list[_Part],
              skipped: list[tuple[str, str]]) -> None:
    if isinstance(doc, list):
        objects = [item for item in doc if isinstance(item, dict)]
        if not objects:
            skipped.append((rel, "no JSON objects in the list"))
            return
        candidates.extend((rel, item, UNKNOWN) for item in objects)
        return
    if not isinstance(doc, dict):
        skipped.append((rel, "not a JSON object or array"))
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
            skipped.append((rel, "empty collection response"))
            return
        candidates.extend((rel, item, hint) for item in objects)
        return
    if is_follow_up:
        parts.append(_Part(rel, segments, [doc]))
        return
    hint = COLLECTION_FAMILIES.get(segments[0][0], UNKNOWN) if segments else UNKNOWN
    candidates.append((rel, doc, hint))
