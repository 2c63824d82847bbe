"""One sync run: Graph -> flatten -> one DuckDB transaction. Runs inside the Huey consumer.

Status rules: every policy type read -> succeeded; some types not read (403, 5xx after retries,
not served here) -> partial, and those types keep their last good rows, marked carried forward;
no type read, or authentication failed -> failed with a clear error, and the previous snapshot
stays current because nothing of this run was written.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from tenantpilot import logs
from tenantpilot.config import Settings
from tenantpilot.families import ASSIGNMENT_FILTER, CATALOG_SHAPED, ENDPOINT_SECURITY_INTENT
from tenantpilot.flatten import referenced_definition_ids
from tenantpilot.graph.audit import fetch_audit_events
from tenantpilot.graph.auth import TokenProvider
from tenantpilot.graph.client import GraphClient
from tenantpilot.graph.directory import FILTER, GROUP, fetch_names
from tenantpilot.graph.errors import GraphError
from tenantpilot.graph.fetch import (
    CATALOG_COLLECTIONS,
    FetchResult,
    covering_policies,
    fetch_expanded_settings,
    fetch_template_definitions,
    fetch_tenant,
)
from tenantpilot.graph.policy_types import POLICY_TYPES, PolicyType, without_expanded_definitions
from tenantpilot.store import Store, StoreBusy, StoreError, TypeOutcome
from tenantpilot.sync.snapshot import inline_definitions, write_parts
from tenantpilot.tenants import tenant_id_from_token

log = logging.getLogger("tenantpilot.sync")


class SyncError(RuntimeError):
    """A sync could not run; the message is what the user sees."""


@dataclass(frozen=True)
class Connection:
    graph_url: str
    authority_host: str
    client_id: str
    client_secret: str | None
    certificate_path: Path | None
    certificate_thumbprint: str | None
    verify: str | bool


def connection(cfg: Settings) -> Connection:
    """Where and how to reach Graph: the configured app, or the local simulator in demo mode."""
    if not cfg.demo:
        return Connection(cfg.graph_url, cfg.authority_host, cfg.client_id or "", cfg.client_secret,
                          cfg.certificate_path, cfg.certificate_thumbprint, cfg.ca_bundle or True)
    info_path = cfg.simulator_info_path
    if not info_path.exists():
        raise SyncError("Demo mode (no AZURE_AD_CLIENT_ID set) needs the local Graph simulator, which is not "
                        "running: start it with `python -m tenantpilot simulate` (scripts/run.sh does this)")
    info = json.loads(info_path.read_text())
    return Connection(info["url"], info["url"], info["client_id"], info["client_secret"], None, None,
                      info["ca_path"])


def graph_client(cfg: Settings, tenant_id: str, *, deadline: float | None = None) -> GraphClient:
    conn = connection(cfg)
    logs.register_secret(conn.client_secret)
    tokens = TokenProvider(
        tenant_id, conn.client_id, client_secret=conn.client_secret,
        certificate_path=conn.certificate_path, certificate_thumbprint=conn.certificate_thumbprint,
        authority_host=conn.authority_host, verify=conn.verify, scope=f"{conn.graph_url}/.default",
    )
    return GraphClient(tokens, base_url=conn.graph_url, verify=conn.verify, max_concurrency=cfg.max_concurrency,
                       deadline=deadline)


def type_outcomes(types: Sequence[PolicyType], result: FetchResult) -> list[TypeOutcome]:
    """Per policy type: read, or not (with why). A type not read keeps its last good rows."""
    skipped = {t.key: t for t in result.skipped}
    read = set(result.read_types)
    out = []
    for ptype in types:
        miss = skipped.get(ptype.key)
        out.append(TypeOutcome(ptype.key, ptype.family, ptype.label, read=ptype.key in read and miss is None,
                               reason=miss.reason if miss else ("failed" if ptype.key not in read else ""),
                               message=miss.message if miss else ""))
    return out


def assignment_names(client: GraphClient, store: Store, tenant_id: str,
                     policies: Sequence[tuple[str, dict]]) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Names of the groups and filters the policies are assigned with: the tenant's cache, plus what
    Graph gives for ids not cached yet (graph/directory.py). Returns (names by kind, warnings)."""
    targets: list[dict] = [a["target"] for _, raw in policies for a in raw.get("assignments") or ()
                           if isinstance(a, dict) and isinstance(a.get("target"), dict)]
    group_ids = {str(t["groupId"]) for t in targets if t.get("groupId")}
    filter_ids = {str(t["deviceAndAppManagementAssignmentFilterId"]) for t in targets
                  if t.get("deviceAndAppManagementAssignmentFilterId")}
    names = store.directory_names(tenant_id)
    names.setdefault(GROUP, {})
    names.setdefault(FILTER, {})
    # the assignment filters themselves are a type the sync reads (issue 19): their names come with them
    synced_filters = {str(raw["id"]): str(raw["displayName"]) for family, raw in policies
                      if family == ASSIGNMENT_FILTER and raw.get("id") and raw.get("displayName")}
    names[FILTER].update(synced_filters)
    missing = group_ids - names[GROUP].keys()
    need_filters = bool(filter_ids - names[FILTER].keys())
    if not missing and not need_filters:
        return names, []
    found = fetch_names(client, missing, filters=need_filters)
    store.save_directory_names(tenant_id, found.names)
    for kind, fresh in found.names.items():
        names[kind].update(fresh)
    return names, found.warnings


def previous_sync_start(store: Store, tenant_id: str) -> datetime | None:
    """When the tenant's latest succeeded or partial sync started (audit events are read from there)."""
    done = store.runs(tenant_id, statuses=["succeeded", "partial"], limit=1)
    return done["started_at"][0] if done.height and done["started_at"][0] is not None else None


def execute_run(run_id: int, cfg: Settings, store: Store, reporter) -> str:
    """Run one queued sync to its end; returns the final status. Never raises for sync failures.

    When the failure cannot even be written (the database stays locked, the disk is full), the
    cause is published with the run's progress, so the run is later failed with that cause and
    not as "interrupted"."""
    try:
        run = store.start_run(run_id)
    except StoreBusy as exc:  # the run stays queued; the repair fails it with this cause
        error = logs.redact(f"Could not start the sync: {exc}")
        logs.log(log, logging.ERROR, "job failed", run_id=run_id, error=error)
        reporter.fail(error)
        return "failed"
    if run is None:
        logs.log(log, logging.INFO, "run skipped", run_id=run_id, reason="not queued any more")
        return "skipped"
    tenant_id = run["tenant_id"]
    started = time.monotonic()
    fields = {"run_id": run_id, "tenant": tenant_id}
    logs.log(log, logging.INFO, "job started", **fields)
    client = None
    try:
        client = graph_client(cfg, tenant_id, deadline=time.monotonic() + cfg.sync_deadline_s)
        guid = tenant_id_from_token(client.token_provider.get_token())
        if guid and guid != tenant_id:  # added by a domain: the GUID becomes its key, the domain an alias
            tenant_id = store.resolve_tenant_guid(tenant_id, guid)
            fields["tenant"] = tenant_id
        client.on_wait = reporter.wait  # "waiting for Graph's throttle (N s)" on the Sync page
        # Setting definitions are the same in every tenant: with a warm cache the settings calls
        # skip $expand=settingDefinitions and only the definitions still missing are fetched.
        known = store.definition_ids()
        types = without_expanded_definitions() if known else POLICY_TYPES
        result = fetch_tenant(client, types=types, on_progress=reporter.update)
        outcomes = type_outcomes(types, result)
        if not any(t.read for t in outcomes):
            raise SyncError("Graph let this sync read no policy type: " + "; ".join(result.warnings))
        policies = [(p.family, p.raw) for p in result.policies]
        fresh = inline_definitions(policies)
        needed = set().union(*(referenced_definition_ids(raw) for family, raw in policies
                               if family in CATALOG_SHAPED))
        unknown = store.unknown_definition_ids()
        missing = needed - known - fresh.keys() - unknown
        if missing:
            # the cheap way: the settings of as few policies as cover every missing definition,
            # expanded with their definitions (one request per policy, not one per definition)
            needs = {(p.type_key, p.id): referenced_definition_ids(p.raw) & missing for p in result.policies
                     if p.type_key in CATALOG_COLLECTIONS}
            chosen = covering_policies(needs)
            reporter.update("definitions", 0, len(chosen))
            found = {k: v for k, v in fetch_expanded_settings(client, chosen).items() if k not in known}
            fresh |= found
            store.save_unknown_definitions(missing - found.keys())  # Graph does not know them: not asked again
        # intents: names come from their templates' categories, once per template not yet cached
        intents = [raw for family, raw in policies if family == ENDPOINT_SECURITY_INTENT]
        intent_ids = {str(s.get("definitionId")) for raw in intents for s in raw.get("settings") or ()}
        templates = {str(raw["templateId"]) for raw in intents
                     if raw.get("templateId") and any(str(s.get("definitionId")) not in known
                                                      for s in raw.get("settings") or ())}
        if templates:
            fresh |= fetch_template_definitions(client, sorted(templates))
        needed |= intent_ids
        reporter.update("names", 0, None)
        names, name_warnings = assignment_names(client, store, tenant_id, policies)
        # who changed it: Intune's audit events since the previous good sync started (a warning, never a failure)
        reporter.update("audit events", 0, None)
        audit = fetch_audit_events(client, previous_sync_start(store, tenant_id))
        name_warnings = [*name_warnings, *audit.warnings]
        requests_made = client.stats.requests
        if fresh:
            store.save_definitions(fresh)
        reporter.update("flattening", 0, len(result.policies))
        definitions = store.definitions(sorted(needed)) if needed else {}
        with tempfile.TemporaryDirectory(prefix=f"run-{run_id}-", dir=cfg.data_dir) as tmp:
            parts = write_parts(policies, Path(tmp), definitions, names=names)
            reporter.update("saving", 0, None)
            status = "succeeded" if all(t.read for t in outcomes) else "partial"
            written = store.write_snapshot(
                run_id, tenant_id, parts=parts, status=status, request_count=requests_made,
                warnings=[*result.warnings, *name_warnings], types=outcomes,
                type_of={p.id: p.type_key for p in result.policies if p.type_key})
        try:  # the audit events; the snapshot is written, so this never fails the run
            store.save_audit_events(tenant_id, run_id, audit.events)
        except (StoreError, duckdb.Error) as exc:
            logs.log(log, logging.WARNING, "could not keep the audit events", **fields, error=str(exc))
        try:  # the overview's aggregates; the snapshot is written, so this never fails the run
            store.refresh_alignments_for(run_id)
        except (StoreError, duckdb.Error) as exc:
            logs.log(log, logging.WARNING, "could not update the alignment aggregates", **fields, error=str(exc))
        logs.log(log, logging.INFO, "job completed", **fields, status=status,
                 duration_s=round(time.monotonic() - started, 3), policies=written["policies"],
                 settings=written["settings"], carried_settings=written["carried_settings"],
                 requests=requests_made, warnings=[*result.warnings, *name_warnings])
        return status
    except (GraphError, SyncError, StoreError) as exc:
        error = str(exc)
    except OSError as exc:  # a full disk while flattening: say so, not a rollback message
        error = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - any bug must still end the run as failed, visibly
        logs.log(log, logging.ERROR, "unexpected sync error", exc_info=True, **fields)
        error = f"Unexpected error ({type(exc).__name__}): {exc}"
    error = logs.redact(error)
    sent = client.stats.requests if client is not None else None
    logs.log(log, logging.ERROR, "job failed", **fields, error=error,
             duration_s=round(time.monotonic() - started, 3), requests=sent)
    reporter.fail(error)  # kept in the queue's storage until the run row says failed
    try:
        store.fail_run(run_id, error, request_count=sent)
    except StoreError as exc:  # the run is failed later with `error` by the stale-run repair
        logs.log(log, logging.ERROR, "could not record the failure; the repair will", **fields,
                 store_error=logs.redact(str(exc)))
        return "failed"
    reporter.failed_recorded()
    return "failed"
