"""What a run handed over by a fetching consumer carries, and the writer's checks of it (hostile input is data).

A fetching consumer (TENANTPILOT_ROLE=fetch, tenantpilot/ops/fetching.py) fetches and flattens a run with the
same code as a sync beside the database (tenantpilot/sync/run.py) and hands over *files*: the Parquet parts
`write_parts` wrote (policies, settings, assignments; the secret rule of flatten/secrets.py already applied,
so nothing travels that the database would not hold), the audit events as one Parquet file, and `meta.json`
(what the writer stores besides the rows: the Graph definitions and names this run found, the per-type
outcomes, request count, warnings, policy types). The writer reads them only through `check_files`, which
refuses anything but exactly those names, schemas and shapes, with one sentence saying what was wrong: the
run then fails with it, and no other run or tenant is touched (the writer, not the files, says which tenant).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import polars as pl

from tenantpilot.graph.audit import EVENT_SCHEMA
from tenantpilot.graph.directory import KINDS
from tenantpilot.graph.policy_types import POLICY_TYPES
from tenantpilot.store import TypeOutcome
from tenantpilot.sync.snapshot import TABLES, Parts

META = "meta.json"
AUDIT = "audit-00000.parquet"
PART_NAME = re.compile(r"^(policies|settings|assignments)-\d{5}\.parquet$")
MAX_META_BYTES = 64 * 1024 * 1024  # definitions of a first sync are a few MB; far past that is not ours
MAX_ERROR_CHARS = 2000
_TYPE_KEYS = frozenset(t.key for t in POLICY_TYPES)


class HandoffError(ValueError):
    """A handed-over run is not what a fetching consumer writes; the message says what (one sentence)."""


def allowed_name(name: str) -> bool:
    """The only file names a handed-over run may hold."""
    return name in (META, AUDIT) or bool(PART_NAME.match(name))


@dataclass(frozen=True)
class Meta:
    """Everything of a run besides its rows, as the writer stores it (tenantpilot.sync.run.save_gathered)."""

    run_id: int
    tenant_id: str
    definitions: dict[str, dict]  # definitions Graph gave in this run (the writer's cache keeps them)
    not_in_graph: list[str]
    names: dict[str, dict[str, str]]  # directory names by kind (graph/directory.py KINDS) Graph gave in this run
    outcomes: list[TypeOutcome]
    requests: int
    warnings: list[str]
    type_of: dict[str, str]  # policy id -> policy type key

    def to_json(self) -> bytes:
        data = asdict(self)
        data["outcomes"] = [asdict(o) for o in self.outcomes]
        return json.dumps(data, separators=(",", ":")).encode()


def _fail(what: str) -> HandoffError:
    return HandoffError(f"{META} {what}")


def _str_map(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _fail(f"has {what} that is not a map of text to text")
    return value


def _str_list(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(f"has {what} that is not a list of text")
    return value


def _outcome(value: Any) -> TypeOutcome:
    if not isinstance(value, dict) or set(value) != {"key", "family", "label", "read", "reason", "message"}:
        raise _fail("has a policy-type outcome of another shape")
    if value["key"] not in _TYPE_KEYS or not isinstance(value["read"], bool):
        raise _fail(f"names a policy type this version does not read ({str(value['key'])[:80]!r})")
    if not all(isinstance(value[k], str) for k in ("family", "label", "reason", "message")):
        raise _fail("has a policy-type outcome with non-text fields")
    return TypeOutcome(**value)


def parse_meta(data: bytes, *, run_id: int, tenant_id: str) -> Meta:
    """`meta.json` of run `run_id` of `tenant_id` (the writer's own facts), checked field by field."""
    if len(data) > MAX_META_BYTES:
        raise _fail(f"is {len(data):,} bytes, more than the {MAX_META_BYTES:,} a run's facts take")
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise _fail(f"is not JSON ({type(exc).__name__})") from None
    fields = {"run_id", "tenant_id", "definitions", "not_in_graph", "names", "outcomes", "requests", "warnings",
              "type_of"}
    if not isinstance(raw, dict) or set(raw) != fields:
        raise _fail("does not hold exactly the fields of a handed-over run")
    if raw["run_id"] != run_id or raw["tenant_id"] != tenant_id:
        raise _fail(f"belongs to another run or tenant than run {run_id}")
    definitions = raw["definitions"]
    if not isinstance(definitions, dict) or not all(isinstance(k, str) and isinstance(v, dict)
                                                    for k, v in definitions.items()):
        raise _fail("has definitions that are not a map of id to object")
    names = raw["names"]
    if not isinstance(names, dict) or not set(names) <= set(KINDS):
        raise _fail("has names of another kind than the directory's (groups, filters, users, roles, apps, named locations)")
    outcomes = raw["outcomes"]
    if not isinstance(outcomes, list) or not outcomes:
        raise _fail("has no policy-type outcomes")
    parsed = [_outcome(o) for o in outcomes]
    if not any(o.read for o in parsed):
        raise _fail("says no policy type was read (a fetching consumer hands such a run over as failed)")
    type_of = _str_map(raw["type_of"], "policy types")
    if not set(type_of.values()) <= _TYPE_KEYS:
        raise _fail("maps policies to a policy type this version does not read")
    requests = raw["requests"]
    if not isinstance(requests, int) or isinstance(requests, bool) or requests < 0:
        raise _fail("has a request count that is not a whole number")
    return Meta(run_id, tenant_id, definitions, _str_list(raw["not_in_graph"], "unknown definitions"),
                {kind: _str_map(found, f"{kind} names") for kind, found in names.items()}, parsed, requests,
                _str_list(raw["warnings"], "warnings"), type_of)


def _schema_matches(path: Path, expected: Mapping[str, Any]) -> bool:
    try:
        found = pl.read_parquet_schema(path)
    except Exception:  # noqa: BLE001 - polars raises several kinds for a file that is not Parquet
        return False
    return dict(pl.Schema(found)) == dict(pl.Schema(expected)) and list(found) == list(expected)


def check_files(directory: Path, names: Sequence[str]) -> Parts:
    """The handed-over files in `directory` (named `names`) as the run's Parts, or HandoffError: a name
    outside the set, a missing meta.json, or a Parquet file whose columns and types are not its table's."""
    for name in names:
        if not allowed_name(name):
            raise HandoffError(f"a file named {name[:80]!r} is not part of a handed-over run")
    if META not in names:
        raise HandoffError(f"{META} is missing")
    for name in names:
        if name == META:
            continue
        schema = EVENT_SCHEMA if name == AUDIT else TABLES[name.split("-")[0]]
        if not _schema_matches(directory / name, schema):
            raise HandoffError(f"{name} is not a Parquet file with the columns and types of its table")
    counts = {table: sum(pl.scan_parquet(directory / n).select(pl.len()).collect().item()
                         for n in names if n.startswith(f"{table}-")) for table in TABLES}
    return Parts(directory, counts)


def read_audit(directory: Path, names: Sequence[str]) -> pl.DataFrame:
    """The audit events handed over (an empty frame when there were none)."""
    return pl.read_parquet(directory / AUDIT) if AUDIT in names else pl.DataFrame(schema=EVENT_SCHEMA)


def clip_error(text: Any) -> str:
    """A failure cause a fetching consumer reported, as text of bounded length."""
    text = str(text) if text is not None else "the fetching consumer gave no cause"
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + "…"
