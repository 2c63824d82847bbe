"""One sync run: Graph -> flatten -> one DuckDB transaction. Runs inside the Huey consumer.

It reads top to bottom: what the store already knows (read_cached) -> gather (Graph only: the audit
events first, then the policies, leaving unread the ones the reuse rule in sync/reuse.py accepts; what else
to ask for is decided by the pure plan helpers) -> flatten to Parquet parts -> the writes (caches, then the
snapshot in one transaction).

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tenantpilot import logs
from tenantpilot.config import Settings
from tenantpilot.families import ASSIGNMENT_FILTER, CATALOG_SHAPED, CONDITIONAL_ACCESS, ENDPOINT_SECURITY_INTENT
from tenantpilot.flatten import referenced_definition_ids
from tenantpilot.flatten.conditional import referenced_ids
from tenantpilot.graph.audit import AuditRead, fetch_audit_events
from tenantpilot.graph.auth import TokenProvider
from tenantpilot.graph.client import GraphClient
from tenantpilot.graph.directory import (
    DIRECTORY_KINDS,
    FILTER,
    GROUP,
    KINDS,
    LOCATION,
    NAMES_MAX_AGE,
    DirectoryNames,
    fetch_names,
)
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
from tenantpilot.store.batch import write_together
from tenantpilot.store.connection import lock_wait_s
from tenantpilot.sync import reuse
from tenantpilot.sync.snapshot import Parts, inline_definitions, parts_dir, write_parts
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


# --- what the store already knows, read once before Graph is asked ---------------------------------
@dataclass(frozen=True)
class Cached:
    definition_ids: set[str]  # setting definitions cached (the same in every tenant)
    unknown_ids: set[str]  # definition ids Graph did not know when last asked
    names: dict[str, dict[str, str]]  # the tenant's names by kind (graph/directory.py KINDS) and id, read within NAMES_MAX_AGE
    since: datetime | None  # when the tenant's latest good sync started (audit events are read from there)
    basis: reuse.Basis | None = None  # what the reuse rule needs; None: every policy is read in full


def read_cached(store: Store, tenant_id: str, cfg: Settings | None = None) -> Cached:
    """What the store knows before Graph is asked; with `cfg`, also what the reuse rule reads (a fetching
    consumer's run, without it, reads every policy in full)."""
    with store.reading():
        done = store.runs(tenant_id, statuses=["succeeded", "partial"], limit=1)
        since = done["started_at"][0] if done.height and done["started_at"][0] is not None else None
        basis = None
        if cfg is not None:
            previous = done["status"][0] if done.height else None
            status, started, full, stored = store.reuse_basis(
                tenant_id, with_stored=cfg.full_read_days > 0 and previous == "succeeded")
            basis = reuse.Basis(status, started, full, cfg.full_read_days, cfg.audit_overlap_hours, stored)
        names = store.directory_names(tenant_id, fetched_since=datetime.now(timezone.utc) - NAMES_MAX_AGE)
        return Cached(store.definition_ids(), store.unknown_definition_ids(), names, since, basis)


# --- plan: pure decisions about what else to ask Graph for --------------------------------------------
def missing_definitions(policies: Sequence[tuple[str, dict]], cached: Cached, fresh: Mapping[str, dict]) -> set[str]:
    """Definitions the catalog-shaped policies reference that neither the cache, this run's answers nor
    Graph's earlier "unknown" cover."""
    needed = set().union(*(referenced_definition_ids(raw) for family, raw in policies if family in CATALOG_SHAPED))
    return needed - cached.definition_ids - fresh.keys() - cached.unknown_ids


def needed_definitions(policies: Sequence[tuple[str, dict]]) -> set[str]:
    """Every definition id the rows will be named from: catalog-shaped references and intent settings."""
    needed = set().union(*(referenced_definition_ids(raw) for family, raw in policies if family in CATALOG_SHAPED))
    return needed | {str(s.get("definitionId")) for family, raw in policies if family == ENDPOINT_SECURITY_INTENT
                     for s in raw.get("settings") or ()}


def templates_to_read(policies: Sequence[tuple[str, dict]], known: set[str]) -> list[str]:
    """Intents name their settings from their templates' categories: the templates with a setting not cached."""
    return sorted({str(raw["templateId"]) for family, raw in policies
                   if family == ENDPOINT_SECURITY_INTENT and raw.get("templateId")
                   and any(str(s.get("definitionId")) not in known for s in raw.get("settings") or ())})


def names_to_read(policies: Sequence[tuple[str, dict]], names: Mapping[str, Mapping[str, str]]) -> tuple[set[str], bool]:
    """(group ids without a cached name, whether any assignment filter lacks one)."""
    targets: list[dict] = [a["target"] for _, raw in policies for a in raw.get("assignments") or ()
                           if isinstance(a, dict) and isinstance(a.get("target"), dict)]
    group_ids = {str(t["groupId"]) for t in targets if t.get("groupId")}
    filter_ids = {str(t["deviceAndAppManagementAssignmentFilterId"]) for t in targets
                  if t.get("deviceAndAppManagementAssignmentFilterId")}
    # the assignment filters themselves are a type the sync reads (issue 19): their names come with them
    known_filters = (names.get(FILTER) or {}).keys() | synced_filter_names(policies).keys()
    return group_ids - (names.get(GROUP) or {}).keys(), bool(filter_ids - known_filters)


def ca_ids_to_read(policies: Sequence[tuple[str, dict]], names: Mapping[str, Mapping[str, str]]) -> dict[str, set[str]]:
    """{directory kind: ids} the conditional-access policies point to without a cached name (named
    locations come with the sync itself: synced_location_names)."""
    out: dict[str, set[str]] = {}
    for family, raw in policies:
        if family != CONDITIONAL_ACCESS:
            continue
        for kind, ids in referenced_ids(raw).items():
            if kind in DIRECTORY_KINDS:
                out.setdefault(kind, set()).update(ids - (names.get(kind) or {}).keys())
    return {k: v for k, v in out.items() if v}


def synced_location_names(policies: Sequence[tuple[str, dict]]) -> dict[str, str]:
    """{id: name} of the named locations the sync read (policy type namedLocations)."""
    return {str(raw["id"]): str(raw["displayName"]) for family, raw in policies
            if family == CONDITIONAL_ACCESS and "NamedLocation" in str(raw.get("@odata.type") or "")
            and raw.get("id") and raw.get("displayName")}


def synced_filter_names(policies: Sequence[tuple[str, dict]]) -> dict[str, str]:
    """{id: name} of the assignment filters the sync read as objects (policy type assignmentFilters)."""
    return {str(raw["id"]): str(raw["displayName"]) for family, raw in policies
            if family == ASSIGNMENT_FILTER and raw.get("id") and raw.get("displayName")}


# --- gather: Graph only ---------------------------------------------------------------------------------
@dataclass
class Gathered:
    """Everything Graph said in one run."""

    result: FetchResult
    outcomes: list[TypeOutcome]
    policies: list[tuple[str, dict]]  # (family, raw JSON)
    definitions: dict[str, dict]  # definitions Graph gave in this run
    not_in_graph: set[str]  # definitions asked for that Graph does not know
    names: DirectoryNames  # names found for ids not cached
    audit: AuditRead
    requests: int = 0
    reused: reuse.Reused | None = None  # policies left unread by the reuse rule (None: a full read)
    full_read: str | None = None  # why every policy was read in full, when the rule said so (the worker log)

    @property
    def warnings(self) -> list[str]:
        return [*self.result.warnings, *self.names.warnings, *self.audit.warnings]


FULL_READ_NOTE = " Every policy was read in full: the audit log decides which policies a sync may leave unread."


def gather(client: GraphClient, cached: Cached, reporter: Any) -> Gathered:
    """Read the tenant from Graph: its audit events, its policies (those the reuse rule accepts without their
    follow-ups), then the definitions, template categories, group and filter names the cache lacks. Raises
    SyncError when Graph let it read no type."""
    # who changed it: Intune's audit events since the previous good sync started (less the reuse rule's
    # overlap); read first, as they decide which policies may stay unread (a warning, never a failure)
    reporter.update("audit events", 0, None)
    basis = cached.basis
    audit = fetch_audit_events(client, basis.audit_since if basis and basis.audit_since else cached.since)
    predicate, full_read = reuse.rule(basis, audit.events, not audit.warnings, datetime.now(timezone.utc))
    if basis is not None and audit.warnings:
        audit.warnings = [w + FULL_READ_NOTE for w in audit.warnings]
    # Setting definitions are the same in every tenant: with a warm cache the settings calls skip
    # $expand=settingDefinitions and only the definitions still missing are fetched.
    types = without_expanded_definitions() if cached.definition_ids else POLICY_TYPES
    result = fetch_tenant(client, types=types, on_progress=reporter.update, reuse=predicate)
    outcomes = type_outcomes(types, result)
    if not any(t.read for t in outcomes):
        raise SyncError("Graph let this sync read no policy type: " + "; ".join(result.warnings))
    policies = [(p.family, p.raw) for p in result.policies]
    fresh = inline_definitions(policies)
    not_in_graph: set[str] = set()
    missing = missing_definitions(policies, cached, fresh)
    if missing:
        # the cheap way: the settings of as few policies as cover every missing definition, expanded
        # with their definitions (one request per policy, not one per definition)
        needs = {(p.type_key, p.id): referenced_definition_ids(p.raw) & missing for p in result.policies
                 if p.type_key in CATALOG_COLLECTIONS}
        chosen = covering_policies(needs)
        reporter.update("definitions", 0, len(chosen))
        found = {k: v for k, v in fetch_expanded_settings(client, chosen).items() if k not in cached.definition_ids}
        fresh |= found
        not_in_graph = missing - found.keys()  # Graph does not know them: not asked again
    templates = templates_to_read(policies, cached.definition_ids)
    if templates:
        fresh |= fetch_template_definitions(client, templates)
    reporter.update("names", 0, None)
    group_ids, need_filters = names_to_read(policies, cached.names)
    ca_ids = ca_ids_to_read(policies, cached.names)
    names = (fetch_names(client, group_ids, filters=need_filters, ids=ca_ids) if group_ids or need_filters or ca_ids
             else DirectoryNames())
    names.names[LOCATION].update(synced_location_names(policies))  # cached too: a partial run keeps them
    reused = (reuse.Reused(tuple(result.reused), basis.audit_since, basis.last_full_read)
              if result.reused and basis is not None else None)
    return Gathered(result, outcomes, policies, fresh, not_in_graph, names, audit, client.stats.requests, reused,
                    full_read)


# --- flatten and write: shared by a sync run here and a run handed over by a fetching consumer -------
def flatten_gathered(got: Gathered, cached_names: Mapping[str, Mapping[str, str]],
                     definitions_of: Callable[[list[str]], dict[str, dict]], directory: Path) -> Parts:
    """The run's rows as Parquet parts in `directory`: named from this run's definitions and, for the
    rest, `definitions_of(ids)` (the store's cache, or a fetching consumer's own)."""
    needed = needed_definitions(got.policies)
    definitions = {**definitions_of(sorted(needed - got.definitions.keys())),
                   **{k: v for k, v in got.definitions.items() if k in needed}}
    names = {kind: {**cached_names.get(kind, {}), **got.names.names.get(kind, {})} for kind in KINDS}
    names[FILTER].update(synced_filter_names(got.policies))
    return write_parts(got.policies, directory, definitions, names=names)


def type_of(result: FetchResult) -> dict[str, str]:
    """{policy id: policy type key} of the policies read."""
    return {p.id: p.type_key for p in result.policies if p.type_key}


def save_gathered(store: Store, run_id: int, tenant_id: str, definitions: dict[str, dict], not_in_graph: set[str],
                  names: Mapping[str, Mapping[str, str]], parts: Parts, outcomes: Sequence[TypeOutcome],
                  requests: int, warnings: Sequence[str], types: Mapping[str, str],
                  reused: reuse.Reused | None = None) -> tuple[str, dict[str, int]]:
    """The caches first (they hold for every tenant whatever this run's outcome), then the snapshot in one
    transaction. Returns (status, counts written)."""
    store.save_definitions(definitions)
    store.save_unknown_definitions(not_in_graph)
    store.save_directory_names(tenant_id, names)
    status = "succeeded" if all(t.read for t in outcomes) else "partial"
    written = store.write_snapshot(run_id, tenant_id, parts=parts, status=status, request_count=requests,
                                   warnings=warnings, types=outcomes, type_of=types, reused=reused)
    return status, written


def save_audit(store: Store, tenant_id: str, run_id: int, events: Any, fields: Mapping[str, Any]) -> None:
    """The audit events; the snapshot is written, so this never fails the run."""
    try:
        store.save_audit_events(tenant_id, run_id, events)
    except StoreError as exc:
        logs.log(log, logging.WARNING, "could not keep the audit events", **fields, error=str(exc))


class Phases:
    """Where a run's time went, for the worker log (bench/bench_fleet.py reads it): start (marking the run
    running, the token, reading what is stored of the tenant), graph, flatten, lock_wait (opening the
    database while another process or worker thread held it) and write (the rest of the writes). Each
    `done(name)` closes the phase that ran since the previous one."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._mark, self._waited = time.monotonic(), lock_wait_s()

    def done(self, name: str) -> None:
        now, waited = time.monotonic(), lock_wait_s()
        lock = waited - self._waited
        self.seconds["lock_wait"] = round(self.seconds.get("lock_wait", 0.0) + lock, 3)
        self.seconds[name] = round(now - self._mark - lock, 3)
        self._mark, self._waited = now, waited


def execute_run(run_id: int, cfg: Settings, store: Store, reporter) -> str:
    """Run one queued sync to its end; returns the final status. Never raises for sync failures.

    When the failure cannot even be written (the database stays locked, the disk is full), the
    cause is published with the run's progress, so the run is later failed with that cause and
    not as "interrupted"."""
    started = time.monotonic()
    phases = Phases()
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
        cached = read_cached(store, tenant_id, cfg)
        phases.done("start")
        got = gather(client, cached, reporter)
        phases.done("graph")
        reporter.update("flattening", 0, len(got.result.policies))
        with tempfile.TemporaryDirectory(prefix=f"run-{run_id}-", dir=parts_dir(cfg)) as tmp:
            parts = flatten_gathered(got, cached.names, store.definitions, Path(tmp))
            phases.done("flatten")
            reporter.update("saving", 0, None)

            def save() -> tuple[str, dict[str, int]]:
                saved = save_gathered(store, run_id, tenant_id, got.definitions, got.not_in_graph, got.names.names,
                                      parts, got.outcomes, got.requests, got.warnings, type_of(got.result),
                                      got.reused)
                save_audit(store, tenant_id, run_id, got.audit.events, fields)
                return saved

            # with the other workers' runs finishing now: one open of the file for all (store/batch.py)
            status, written = write_together(store, save)
        phases.done("write")
        logs.log(log, logging.INFO, "job completed", **fields, status=status,
                 duration_s=round(time.monotonic() - started, 3), policies=written["policies"],
                 settings=written["settings"], carried_settings=written["carried_settings"],
                 requests=got.requests, reused=len(got.reused.policies) if got.reused else 0,
                 full_read=got.full_read, warnings=got.warnings, phases=phases.seconds)
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
