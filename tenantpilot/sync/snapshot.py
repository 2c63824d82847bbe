"""Fetched or imported policies -> the rows of one snapshot (frames in memory, or Parquet parts).

Flattening itself is pure (tenantpilot.flatten); only write_parts touches the disk."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from tenantpilot.families import APP, CONDITIONAL_ACCESS, HEALTH_SCRIPT
from tenantpilot.flatten import extract_definitions, flatten_assignments, flatten_policy, secrets
from tenantpilot.flatten.assigned import with_target_names
from tenantpilot.flatten.blobs import stored
from tenantpilot.flatten.conditional import named_rows as named_ca_rows
from tenantpilot.flatten.schema import ASSIGNMENT_SCHEMA, POLICY_SCHEMA, SETTING_SCHEMA

if TYPE_CHECKING:
    from tenantpilot.config import Settings


# --- where a sync's Parquet parts live while it runs ----------------------------------------------
_RUN_PARTS = re.compile(r"run-(\d+)-")


def parts_dir(cfg: Settings) -> Path:
    """The folder for running syncs' temporary parts: beside the database (never `./data` relative to
    the working directory, which a service deployment does not have), created 0700 on first use."""
    folder = cfg.db_path.parent / f"{cfg.db_path.name}.parts"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def remove_leftover_parts(cfg: Settings, active_run_ids: Collection[int]) -> list[str]:
    """Remove the `run-<id>-*` part folders of runs no longer queued or running (a consumer killed
    mid-sync leaves them), beside the database and in the data folder (where they went before).
    Returns the names removed."""
    removed: list[str] = []
    for folder in dict.fromkeys((parts_dir(cfg), cfg.data_dir)):
        if not folder.is_dir():
            continue
        for child in folder.iterdir():
            found = _RUN_PARTS.match(child.name)
            if found and child.is_dir() and not child.is_symlink() and int(found[1]) not in active_run_ids:
                shutil.rmtree(child, ignore_errors=True)
                removed.append(child.name)
    return removed


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


CHUNK_ROWS = 100_000
CHUNK_RAW_BYTES = 32 * 1024 * 1024  # a chunk also ends at this much raw policy JSON (exports with inline definitions)


def raw_json(raw: dict, family: str = "") -> str:
    """The policy as stored: compact JSON (ASCII, the fastest encoder path) with secrets masked by
    the one secret rule, script bodies as text and without icons (flatten/blobs.py); the masking walk
    runs only on policies whose text might hold a secret."""
    raw = stored(raw)
    text = json.dumps(raw, separators=(",", ":"))
    return json.dumps(secrets.mask(raw), separators=(",", ":")) if secrets.might_hold_secrets(text) else text


def _frame(rows: list[dict], schema: dict[str, type[pl.DataType]]) -> pl.DataFrame:
    return pl.from_dicts(rows, schema=schema) if rows else pl.DataFrame(schema=schema)


_NAMED_TARGETS = frozenset({APP, HEALTH_SCRIPT})

TABLES = {"policies": POLICY_SCHEMA, "settings": SETTING_SCHEMA, "assignments": ASSIGNMENT_SCHEMA}


def name_assignments(rows: list[dict], names: Mapping[str, Mapping[str, str]] | None) -> list[dict]:
    """Assignment rows with the group and filter names Graph gave for their ids (graph/directory.py);
    a name the policy itself carries (IntuneCD exports write groupName) is kept."""
    if not names:
        return rows
    groups, filters = names.get("group") or {}, names.get("filter") or {}
    for row in rows:
        if not row.get("group_name") and row.get("group_id") in groups:
            row["group_name"] = groups[row["group_id"]]
        if not row.get("filter_name") and row.get("filter_id") in filters:
            row["filter_name"] = filters[row["filter_id"]]
    return rows


def iter_chunks(policies: Iterable[tuple[str, dict]], definitions: Mapping[str, dict] | None = None,
                *, chunk_rows: int = CHUNK_ROWS, names: Mapping[str, Mapping[str, str]] | None = None
                ) -> Iterator[Frames]:
    """Flatten policies into Frames of about `chunk_rows` setting rows (or CHUNK_RAW_BYTES of raw
    JSON) each, so Python row objects never pile up (1,000,000 rows as dicts alone would need well
    over 1 GB)."""
    pending: dict[str, list[dict]] = {name: [] for name in TABLES}
    raw_bytes = 0

    def flush() -> Frames:
        frames = {name: _frame(rows, TABLES[name]) for name, rows in pending.items()}
        for rows in pending.values():
            rows.clear()
        return Frames(**frames)

    groups, filters = (names or {}).get("group") or {}, (names or {}).get("filter") or {}
    for family, raw in policies:
        if family in _NAMED_TARGETS:  # their assignments are settings keyed by group name (flatten/assigned.py)
            raw = with_target_names(raw, groups, filters)
        # conditional access shows users, groups, roles, apps and locations by name; raw values keep the ids
        rows = (named_ca_rows(raw, names or {}, family, definitions) if family == CONDITIONAL_ACCESS
                else flatten_policy(raw, family, definitions))
        pending["settings"].extend(rows)
        pending["assignments"].extend(name_assignments(flatten_assignments(raw, family), names))
        first = rows[0] if rows else {}
        pending["policies"].append({
            "policy_id": first.get("policy_id", raw.get("id", "")),
            "policy_name": first.get("policy_name", raw.get("displayName") or raw.get("name") or ""),
            "policy_type": first.get("policy_type", family),
            "odata_type": first.get("odata_type", raw.get("@odata.type", "")),
            "platform": first.get("platform", ""),
            "raw_json": raw_json(raw, family),
        })
        raw_bytes += len(pending["policies"][-1]["raw_json"])
        if len(pending["settings"]) >= chunk_rows or raw_bytes >= CHUNK_RAW_BYTES:
            raw_bytes = 0
            yield flush()
    if any(pending.values()):
        yield flush()


def build_frames(policies: Iterable[tuple[str, dict]], definitions: Mapping[str, dict] | None = None) -> Frames:
    """All rows of a snapshot in memory (imports, tests; syncs use write_parts)."""
    chunks = list(iter_chunks(policies, definitions))
    if not chunks:
        return Frames(**{name: pl.DataFrame(schema=schema) for name, schema in TABLES.items()})
    return Frames(**{name: pl.concat([getattr(c, name) for c in chunks], rechunk=False) for name in TABLES})


@dataclass(frozen=True)
class Parts:
    """A snapshot flattened into Parquet files on disk, ready for one bulk insert."""

    directory: Path
    counts: dict[str, int]

    def files(self, table: str) -> list[str]:
        return sorted(str(p) for p in self.directory.glob(f"{table}-*.parquet"))


def write_parts(policies: Iterable[tuple[str, dict]], directory: Path,
                definitions: Mapping[str, dict] | None = None, *, chunk_rows: int = CHUNK_ROWS,
                names: Mapping[str, Mapping[str, str]] | None = None) -> Parts:
    """Flatten to Parquet chunk files: memory stays bounded by one chunk however big the tenant,
    and the database lock is then held only for the bulk insert, not for the flattening."""
    directory.mkdir(parents=True, exist_ok=True)
    counts = {name: 0 for name in TABLES}
    for i, chunk in enumerate(iter_chunks(policies, definitions, chunk_rows=chunk_rows, names=names)):
        for name in TABLES:
            frame: pl.DataFrame = getattr(chunk, name)
            if frame.height:
                frame.write_parquet(directory / f"{name}-{i:05d}.parquet", compression="lz4")
                counts[name] += frame.height
    return Parts(directory, counts)
