"""Baselines: exported JSON (IntuneManagement, IntuneCD, portal, raw Graph) -> a read-only
"tenant" of kind 'baseline' with a snapshot like any synced tenant, selectable in Compare.

What an import trusts and writes:
- it never writes the shared setting-definition cache (`setting_definitions`) that syncs of real
  tenants read, so a file cannot name a synced tenant's settings. Its rows are named from Graph's
  cached definitions first and, for definitions Graph has not given us, from the definitions the
  file carries inline (those stay in this baseline's rows and nowhere else);
- it streams: files are read one at a time (flatten.files.ExportReader) and flattened to Parquet
  parts on disk, so memory follows the largest file, not the whole export;
- any failure ends the import's run `failed` with the file it was reading, and raises ImportFailed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tenantpilot import logs
from tenantpilot.flatten.files import ExportReader
from tenantpilot.store import Store
from tenantpilot.sync.snapshot import write_parts
from tenantpilot.tenants import baseline_id


class ImportFailed(RuntimeError):
    """An import broke off; its run is marked failed with this message (which names the file)."""


class NoPolicies(ValueError):
    """Not one policy could be read; `skipped` lists every file with its reason."""

    def __init__(self, message: str, skipped: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.skipped = skipped


@dataclass(frozen=True)
class ImportResult:
    tenant_id: str
    run_id: int
    policies: int
    settings: int
    skipped: list[tuple[str, str]]


def import_baseline(store: Store, path: Path, name: str, *, work_dir: Path | None = None) -> ImportResult:
    """Import a folder or file of exported policies as baseline `name` (re-import replaces it).

    Files that cannot be read are listed in `skipped` with the reason; the rest import. Raises
    NoPolicies (a ValueError) when nothing at all could be read (the previous import of `name` then stays), and
    ImportFailed when the import broke off (its run is then `failed`, naming the file). Parquet parts
    go to a temporary folder in `work_dir` (default: the system's)."""
    if not path.exists():
        raise ValueError(f"{path} does not exist")
    reader = ExportReader(path)
    if not reader.count:
        reasons = "; ".join(f"{f}: {r}" for f, r in reader.skipped[:5])
        raise NoPolicies(f"No policy could be read from {path}" + (f" ({reasons})" if reasons else ""),
                         reader.skipped)
    tenant_id = baseline_id(name)
    source = f"import:{path.name}"
    existed = store.get_tenant(tenant_id) is not None
    store.add_tenant(tenant_id, name, kind="baseline")
    try:
        return _import(store, reader, path, tenant_id, source, work_dir)
    except ImportFailed:
        if not existed:  # a first import that failed leaves no empty baseline behind
            store.remove_tenant(tenant_id)
        raise


def _import(store: Store, reader: ExportReader, path: Path, tenant_id: str, source: str,
            work_dir: Path | None) -> ImportResult:
    # read-only use of Graph's cache: the definitions this export's policies use
    definitions = store.definitions(sorted(reader.definition_ids)) if reader.definition_ids else {}
    with tempfile.TemporaryDirectory(prefix="tenantpilot-import-", dir=work_dir) as tmp:
        try:
            parts = write_parts(_policies(reader), Path(tmp), definitions)
        except Exception as exc:  # noqa: BLE001 - recorded as the run's error, then raised as ImportFailed
            message = _failure(path, reader.current, exc)
            run_id, _ = store.create_run_unless_active(tenant_id, source=source)
            store.fail_run(run_id, message)
            raise ImportFailed(message) from exc
        run_id, _ = store.create_run_unless_active(tenant_id, source=source)
        store.start_run(run_id)
        warnings = [f"skipped {f}: {r}" for f, r in reader.skipped]
        try:
            store.write_snapshot(run_id, tenant_id, parts=parts, status="succeeded", request_count=0,
                                 warnings=warnings)
        except Exception as exc:  # noqa: BLE001 - recorded as the run's error, then raised as ImportFailed
            message = _failure(path, "", exc)
            store.fail_run(run_id, message)
            raise ImportFailed(message) from exc
    store.refresh_alignments_for(run_id)  # every tenant against the new baseline, for the overview
    return ImportResult(tenant_id, run_id, parts.counts["policies"], parts.counts["settings"], reader.skipped)


def _policies(reader: ExportReader) -> Iterator[tuple[str, dict]]:
    for family, policy, _sources in reader.policies():
        yield family, policy


def _failure(path: Path, file: str, exc: BaseException) -> str:
    """One readable sentence: where it broke off and the first line of the cause (a database error's
    text runs to many lines of internals)."""
    where = f" while reading {file}" if file else " while saving it"
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    cause = first if len(first) <= 200 else first[:199] + "…"
    hint = (" The import is too large for the database's memory: import the export in parts."
            if "memory" in str(exc).lower() else "")
    return logs.redact(f"Import of {path.name} failed{where}: {type(exc).__name__}: {cause}.{hint}")
