"""Baselines: exported JSON (IntuneManagement, IntuneCD, portal, raw Graph) -> a read-only
"tenant" of kind 'baseline' with a snapshot like any synced tenant, selectable in Compare."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tenantpilot.flatten.files import load_export
from tenantpilot.snapshot import build_frames, inline_definitions
from tenantpilot.store import Store
from tenantpilot.tenants import baseline_id


@dataclass(frozen=True)
class ImportResult:
    tenant_id: str
    run_id: int
    policies: int
    settings: int
    skipped: list[tuple[str, str]]


def import_baseline(store: Store, path: Path, name: str) -> ImportResult:
    """Import a folder or file of exported policies as baseline `name` (re-import replaces it).

    Files that cannot be read are listed in `skipped` with the reason; the rest import. Raises
    ValueError when nothing at all could be read (the previous import of `name` then stays)."""
    if not path.exists():
        raise ValueError(f"{path} does not exist")
    loaded = load_export(path)
    if not loaded.policies:
        reasons = "; ".join(f"{f}: {r}" for f, r in loaded.skipped[:5])
        raise ValueError(f"No policy could be read from {path}" + (f" ({reasons})" if reasons else ""))
    definitions = inline_definitions(loaded.policies)
    if definitions:
        store.save_definitions(definitions)
    frames = build_frames(loaded.policies, store.definitions())
    tenant_id = baseline_id(name)
    store.add_tenant(tenant_id, name, kind="baseline")
    run_id, _ = store.create_run_unless_active(tenant_id, source=f"import:{path.name}")
    store.start_run(run_id)
    warnings = [f"skipped {f}: {r}" for f, r in loaded.skipped]
    store.write_snapshot(run_id, tenant_id, policies=frames.policies, settings=frames.settings,
                         assignments=frames.assignments, status="succeeded", request_count=0,
                         warnings=warnings)
    store.refresh_alignments_for(run_id)  # every tenant against the new baseline, for the overview
    return ImportResult(tenant_id, run_id, frames.policies.height, frames.settings.height, loaded.skipped)
