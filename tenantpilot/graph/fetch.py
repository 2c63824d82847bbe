"""Fetch every Intune policy of one tenant, following the policy-type table, and say which types were read whole and which were not.

Why one module of ~750 lines: the list step, the follow-up jobs and the pipeline share the fetcher's
state (policies collected, types skipped, links unread); the policy types themselves are data elsewhere.

``fetch_tenant(client)`` lists every type, then runs each policy's follow-up calls and merges
their answers into the list item under Graph's own names (``settings``, ``assignments``,
``definitionValues`` each with ``presentationValues``, ``apps`` …).

``reuse`` (optional): a predicate (policy type, list item) -> bool the caller decides with
(tenantpilot/sync/reuse.py). A listed policy it accepts gets no follow-ups and is not returned for
flattening; it is listed in ``FetchResult.reused`` so it is not taken for deleted.

Modes:

* ``"fast"``: a pipeline. The lists of all types page in parallel, and each page's follow-ups
  leave through ``$batch`` (20 per POST) as soon as that page arrives, while the next page is
  still on its way; nested follow-ups (admin-template presentation values) leave as soon as
  their parent answers. HTTP concurrency is bounded by the client's ``max_concurrency``. So the
  wall time is about the longest list's paging plus one batch round, not lists + all details.
* ``"sequential"``: one request at a time, no batching (the naive plan, for comparison).

Failures are isolated (docs/graph-intune.md §7). A type is all or nothing: never half a type.

* **One policy**: its follow-up answers 404, or 400 ``ResourceNotFound`` (what Graph answers for
  a policy deleted between list and follow-up): that policy is dropped, listed in ``dropped``
  with reason ``"deleted"``, and named in a warning; the type is still read. Any other 400 on a
  follow-up also drops only that policy (reason: Graph's message), named in a warning.
* **One type** (``skipped``): 403 anywhere in it (``"forbidden"``, naming the permission); 400
  or 404 on its list (``"unavailable"``: not served by this tenant, cloud or API version); and
  everything else that is not about a single policy (``"failed"``): 5xx after the retries,
  429 past the deadline, a malformed page, a connection that kept failing, a ``$batch`` POST
  that failed. The other types complete.
* **The whole fetch** raises only for :class:`AuthError` (sign-in refused, or 401 after a fresh
  token), or when every type was skipped (then the first type's error is raised).

``FetchResult.read_types`` are the types whose list and every follow-up answered: their
policies are exactly what Graph holds now (a type that listed empty really is empty). A
caller keeps the last good rows of every other type.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from tenantpilot.sync.links import LINKS_NOT_READ

from .client import BATCH_LIMIT, BatchRequest, BatchResponse, GraphClient
from .errors import AuthError, BadResponse, GraphError, NotFound, PermissionDenied, preferred_permission
from .policy_types import POLICY_TYPES, FollowUp, PolicyType

__all__ = [
    "fetch_tenant",
    "fetch_definitions",
    "fetch_expanded_settings",
    "covering_policies",
    "fetch_template_definitions",
    "FetchResult",
    "FetchedPolicy",
    "SkippedType",
    "ProgressCallback",
    "ReusePredicate",
    "SkipReason",
    "DELETED",
    "LINKS_NOT_READ",
]

ProgressCallback = Callable[[str, int, "int | None"], None]
ReusePredicate = Callable[[PolicyType, dict[str, Any]], bool]
SkipReason = Literal["forbidden", "unavailable", "failed"]
LINGER_S = 0.02  # fast mode: how long a partial $batch waits for more follow-ups
DELETED = "deleted"  # the reason in FetchResult.dropped for a policy Graph says is gone


@dataclass
class FetchedPolicy:
    """One policy: the Graph list item with every follow-up merged in."""

    family: str
    raw: dict[str, Any]
    type_key: str = ""

    @property
    def id(self) -> str:
        return str(self.raw.get("id", ""))

    @property
    def name(self) -> str:
        return str(self.raw.get("displayName") or self.raw.get("name") or "")


@dataclass(frozen=True)
class SkippedType:
    """A policy type not read. ``reason``: ``forbidden`` (403), ``unavailable`` (400/404 on its
    list: not served here) or ``failed`` (5xx after the retries, 429 past the deadline, a
    malformed answer, a connection that kept failing). ``status``: the HTTP status, when there
    was one; ``message``: what Graph (or the client) said."""

    key: str
    family: str
    label: str
    reason: SkipReason
    status: int | None
    message: str
    missing_permissions: tuple[str, ...] = ()


@dataclass
class FetchResult:
    policies: list[FetchedPolicy]  # policies of the read types only
    warnings: list[str]
    requests: int  # HTTP requests sent to Graph during this fetch (retries and $batch POSTs included)
    failed_types: list[str]  # keys of the types in `skipped`, in table order
    skipped: list[SkippedType] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=dict)  # this fetch's share of client.stats
    elapsed: float = 0.0
    mode: str = "fast"
    read_types: list[str] = field(default_factory=list)  # keys of the types read whole, in table order
    # (type_key, policy_id, reason): policies left out of a read type. reason "deleted": Graph
    # says it is gone (400 ResourceNotFound / 404); anything else: Graph's message for a 400 on
    # its follow-up (the policy may still exist: keep its last good rows).
    dropped: list[tuple[str, str, str]] = field(default_factory=list)
    # (type_key, policy_id): listed policies of read types the reuse predicate kept unread (no follow-ups)
    reused: list[tuple[str, str]] = field(default_factory=list)

    @property
    def forbidden(self) -> list[SkippedType]:
        return [s for s in self.skipped if s.reason == "forbidden"]

    @property
    def partial(self) -> bool:
        """True when any type was skipped: the snapshot is incomplete."""
        return bool(self.skipped)


# ---------------------------------------------------------------------------------------
# Pure helpers
# ---------------------------------------------------------------------------------------


def is_deleted(err: GraphError) -> bool:
    """Graph's answer for a policy that no longer exists: 404, or 400 ``ResourceNotFound``."""
    return isinstance(err, NotFound) or err.status == 404 or (err.status == 400 and err.code == "ResourceNotFound")


def skip_reason(err: GraphError, *, on_list: bool) -> SkipReason:
    """Why a type is skipped after ``err`` (on its list when ``on_list``, else on a follow-up)."""
    if isinstance(err, PermissionDenied) or err.status == 403:
        return "forbidden"
    if on_list and not isinstance(err, BadResponse) and err.status in (400, 404):
        return "unavailable"
    return "failed"


def _names(entries: list[str], limit: int = 5) -> str:
    shown = ", ".join(entries[:limit])
    return shown + (f" and {len(entries) - limit} more" if len(entries) > limit else "")


def _plural(n: int) -> str:
    return f"{n} polic{'y' if n == 1 else 'ies'}"


# ---------------------------------------------------------------------------------------


@dataclass
class _Policy:
    ptype: PolicyType
    raw: dict[str, Any]
    outstanding: int = 0
    dropped: bool = False
    reused: bool = False  # the caller's reuse predicate kept it: no follow-ups, not flattened

    def label(self) -> str:
        name = self.raw.get("displayName") or self.raw.get("name") or ""
        return f"{name!s} ({self.raw.get('id')})".strip()


@dataclass
class _Job:
    policy: _Policy
    target: dict[str, Any]  # the dict the answer is merged into (the policy, or a list element)
    follow: FollowUp
    url: str  # relative to the API root, query included


@dataclass
class _Outcome:
    status: int
    body: Any  # collection: the list of items; single: the dict
    error: GraphError | None = None


def fetch_tenant(
    client: GraphClient,
    *,
    types: Sequence[PolicyType] = POLICY_TYPES,
    mode: Literal["fast", "sequential"] = "fast",
    on_progress: ProgressCallback | None = None,
    reuse: ReusePredicate | None = None,
) -> FetchResult:
    """Fetch all policies of the client's tenant. See the module docstring for the rules."""
    if mode not in ("fast", "sequential"):
        raise ValueError(f"mode must be 'fast' or 'sequential', not {mode!r}")
    return _Fetcher(client, tuple(types), mode, on_progress, reuse).run()


class _Fetcher:
    def __init__(
        self,
        client: GraphClient,
        types: tuple[PolicyType, ...],
        mode: str,
        on_progress: ProgressCallback | None,
        reuse: ReusePredicate | None = None,
    ) -> None:
        self.client = client
        self.reuse = reuse
        self.types = types
        self.mode = mode
        self.on_progress = on_progress
        self.skipped: dict[str, SkippedType] = {}
        self.errors: dict[str, GraphError] = {}
        self.skip_warnings: dict[str, str] = {}
        self.listed: set[str] = set()  # types whose every list page arrived
        self.vanished: dict[str, list[_Policy]] = {}  # deleted mid-sync
        self.refused: dict[str, list[tuple[_Policy, str]]] = {}  # other 400 on a follow-up
        self.unread_links: dict[str, list[tuple[_Policy, str]]] = {}  # 400 on a link follow-up
        self.policies: list[_Policy] = []
        self.done_policies = 0
        self.lock = threading.RLock()  # fast mode: pipeline threads share the state above

    def progress(self, phase: str, done: int, total: int | None) -> None:
        if self.on_progress is not None:
            self.on_progress(phase, done, total)

    # -- top level ---------------------------------------------------------------------------

    def run(self) -> FetchResult:
        t0 = time.perf_counter()
        before = self.client.stats.snapshot()
        if self.mode == "fast":
            self.run_pipeline()
        else:
            self.list_all()
            self.fetch_details()
        after = self.client.stats.snapshot()
        delta = {k: round(after[k] - before[k], 3) for k in after}
        if self.types and len(self.skipped) == len(self.types):
            first = next(t.key for t in self.types if t.key in self.errors)
            raise self.errors[first]
        order = [t.key for t in self.types]
        skipped = {k: self.skipped[k] for k in order if k in self.skipped}  # table order
        warnings = [self.skip_warnings[k] for k in skipped]
        dropped: list[tuple[str, str, str]] = []
        for ptype in self.types:
            if ptype.key in skipped:
                continue
            gone = self.vanished.get(ptype.key, [])
            if gone:
                warnings.append(f"{ptype.label}: {_plural(len(gone))} deleted during the sync and skipped: "
                                f"{_names([p.label() for p in gone])}")
                dropped.extend((ptype.key, str(p.raw.get("id", "")), DELETED) for p in gone)
            refused = self.refused.get(ptype.key, [])
            if refused:
                warnings.append(f"{ptype.label}: {_plural(len(refused))} could not be read and "
                                f"{'was' if len(refused) == 1 else 'were'} skipped: "
                                f"{_names([f'{p.label()}: {why}' for p, why in refused], 3)}")
                dropped.extend((ptype.key, str(p.raw.get("id", "")), why) for p, why in refused)
            unread = self.unread_links.get(ptype.key, [])
            if unread:
                warnings.append(f"{ptype.label}: {len(unread)} link{'s' if len(unread) != 1 else ''} to other "
                                f"profiles could not be read: {_names([f'{p.label()}: {nav}' for p, nav in unread], 3)}")
        policies = [
            FetchedPolicy(p.ptype.family, p.raw, p.ptype.key)
            for p in self.policies
            if not p.dropped and not p.reused and p.ptype.key not in skipped
        ]
        reused = [(p.ptype.key, str(p.raw.get("id", ""))) for p in self.policies if p.reused and p.ptype.key not in skipped]
        return FetchResult(
            policies=policies,
            warnings=warnings,
            requests=int(delta["requests"]),
            failed_types=list(skipped),
            skipped=list(skipped.values()),
            stats=delta,
            elapsed=time.perf_counter() - t0,
            mode=self.mode,
            read_types=[k for k in order if k in self.listed and k not in skipped],
            dropped=dropped,
            reused=reused,
        )

    # -- skipping ------------------------------------------------------------------------------

    def skip(self, ptype: PolicyType, err: GraphError, *, on_list: bool) -> None:
        """Skip a whole type (the first error wins). AuthError is never a type's problem."""
        if isinstance(err, AuthError):
            raise err
        with self.lock:
            if ptype.key in self.skipped:
                return
            reason = skip_reason(err, on_list=on_list)
            detail = err.detail or err.message
            if err.code and err.code not in detail:
                detail = f"{err.code}: {detail}"
            if reason == "forbidden":
                missing = err.missing_permissions if isinstance(err, PermissionDenied) else ()
                perm = preferred_permission(missing) or ptype.permission
                warning = f"{ptype.label} skipped: 403 — the app lacks {perm}"
                s = SkippedType(ptype.key, ptype.family, ptype.label, reason, err.status, err.message, missing)
            elif reason == "unavailable":
                warning = f"{ptype.label} skipped: {err.status} — not available here ({detail})"
                s = SkippedType(ptype.key, ptype.family, ptype.label, reason, err.status, detail)
            else:
                status = f"{err.status} — " if err.status else ""
                warning = f"{ptype.label} skipped: {status}could not be read ({err.message})"
                s = SkippedType(ptype.key, ptype.family, ptype.label, reason, err.status, str(err))
            self.skipped[ptype.key] = s
            self.errors[ptype.key] = err
            self.skip_warnings[ptype.key] = warning

    # -- fast: the pipeline ---------------------------------------------------------------------

    def run_pipeline(self) -> None:
        _Pipeline(self).run()

    # -- listing ----------------------------------------------------------------------------

    @staticmethod
    def check_items(ptype: PolicyType, items: list[Any], url: str) -> None:
        for item in items:
            if not isinstance(item, dict):
                raise BadResponse(f"{ptype.label}: a list item is a {type(item).__name__}, not an object", url=url)
            if ptype.follow_ups and not isinstance(item.get("id"), str):
                raise BadResponse(f"{ptype.label}: a list item has no 'id'", url=url)

    def list_type(self, ptype: PolicyType) -> list[dict[str, Any]] | GraphError:
        try:
            items = [item for page in list_pages(self.client, ptype) for item in page]
            self.check_items(ptype, items, self.client.url_for(ptype.list_url, api_version=ptype.api_version))
        except GraphError as e:
            if isinstance(e, AuthError):
                raise
            return e
        return [item for item in items if ptype.keeps(item)]

    def list_all(self) -> None:
        total = len(self.types)
        self.progress("listing", 0, total)
        for i, ptype in enumerate(self.types):  # sequential mode only: fast mode lists in its pipeline
            result = self.list_type(ptype)
            self.progress("listing", i + 1, total)
            if isinstance(result, GraphError):
                self.skip(ptype, result, on_list=True)
                continue
            self.listed.add(ptype.key)
            for item in result:
                self.policies.append(_Policy(ptype, item))

    # -- details ----------------------------------------------------------------------------

    def jobs_for(self, policy: _Policy, target: dict[str, Any], follows: Sequence[FollowUp], parent_id: str) -> list[_Job]:
        jobs = []
        for f in follows:
            url = f.url_for(target, parent_id)
            if url is not None:
                jobs.append(_Job(policy, target, f, url))
        policy.outstanding += len(jobs)
        return jobs

    def first_jobs(self, policy: _Policy) -> list[_Job]:
        """A listed policy's follow-ups; none when it has some and the reuse predicate keeps it unread."""
        jobs = self.jobs_for(policy, policy.raw, policy.ptype.follow_ups, policy.raw.get("id", ""))
        if jobs and self.reuse is not None and self.reuse(policy.ptype, policy.raw):
            policy.reused, policy.outstanding = True, 0
            return []
        return jobs

    def fetch_details(self) -> None:
        live = [p for p in self.policies if p.ptype.key not in self.skipped]
        total = len(live)
        jobs: list[_Job] = []
        for p in live:
            jobs.extend(self.first_jobs(p))
        self.done_policies = sum(1 for p in live if p.outstanding == 0)
        self.progress("details", self.done_policies, total)
        while jobs:
            next_jobs: list[_Job] = []
            self.run_jobs(jobs, next_jobs, total)
            jobs = next_jobs

    def run_jobs(self, jobs: list[_Job], next_jobs: list[_Job], total: int | None) -> None:
        def apply(job: _Job, outcome: _Outcome) -> None:
            with self.lock:
                self.apply(job, outcome, next_jobs)
                job.policy.outstanding -= 1
                if job.policy.outstanding == 0:
                    self.done_policies += 1
                    self.progress("details", self.done_policies, total)

        live: list[_Job] = []
        for job in jobs:  # a skipped type's (or dropped policy's) follow-ups are not worth Graph's budget
            with self.lock:
                moot = job.policy.ptype.key in self.skipped or job.policy.dropped
            if moot:
                apply(job, _Outcome(0, None))
            else:
                live.append(job)

        if self.mode == "sequential":
            for job in live:
                if job.policy.ptype.key in self.skipped or job.policy.dropped:  # no point asking again
                    apply(job, _Outcome(0, None))
                    continue
                apply(job, self.get_one(job))
            return

        by_version: dict[str, list[_Job]] = {}
        for job in live:
            by_version.setdefault(job.policy.ptype.api_version, []).append(job)
        for version, group in by_version.items():
            reqs = [BatchRequest(j.url, follow_next=j.follow.pages) for j in group]

            def on_result(i: int, resp: BatchResponse, group: list[_Job] = group) -> None:
                apply(group[i], self.from_batch(group[i], resp))

            try:
                self.client.batch(reqs, api_version=version, on_result=on_result)
            except GraphError as e:  # the POST itself failed: every type waiting on it is not read
                for ptype in {j.policy.ptype.key: j.policy.ptype for j in group}.values():
                    self.skip(ptype, e, on_list=False)

    def get_one(self, job: _Job) -> _Outcome:
        version = job.policy.ptype.api_version
        try:
            if job.follow.pages:
                return _Outcome(200, self.client.get_all(job.url, api_version=version))
            return _Outcome(200, self.client.get(job.url, api_version=version))
        except GraphError as e:
            if isinstance(e, AuthError):
                raise
            return _Outcome(e.status or 0, None, e)

    @staticmethod
    def from_batch(job: _Job, resp: BatchResponse) -> _Outcome:
        err = resp.error
        if err is not None:
            if isinstance(err, AuthError):
                raise err
            return _Outcome(resp.status, None, err)
        if job.follow.optional and (resp.status == 204 or not resp.body):
            return _Outcome(resp.status, [] if job.follow.pages else {})  # a link that is not set
        body = resp.body if isinstance(resp.body, dict) else None
        if body is None:
            return _Outcome(resp.status, None, BadResponse(
                f"Graph returned a {type(resp.body).__name__} where a JSON object was expected",
                status=resp.status, url=resp.url))
        if job.follow.pages:
            value = body.get("value")
            if not isinstance(value, list):
                return _Outcome(resp.status, None, BadResponse(
                    "Graph returned no 'value' list for a collection", status=resp.status, url=resp.url))
            return _Outcome(resp.status, value)
        return _Outcome(resp.status, body)

    def apply(self, job: _Job, outcome: _Outcome, next_jobs: list[_Job]) -> None:
        policy = job.policy
        ptype = policy.ptype
        if policy.dropped or ptype.key in self.skipped or (outcome.status == 0 and outcome.error is None):
            return
        err = outcome.error
        if err is not None:
            if job.follow.optional and is_deleted(err):
                return  # a link that is not set (links.py): the policy itself is there
            if job.follow.optional and err.status == 400 and not isinstance(err, BadResponse):
                # Graph refused the link's route: keep the policy, say on its row that the link is unread
                why = f"400 {err.code + ': ' if err.code else ''}{err.detail or err.message}"
                job.target.setdefault(LINKS_NOT_READ, {})[str(job.follow.key)] = why
                self.unread_links.setdefault(ptype.key, []).append((policy, str(job.follow.key)))
                return
            if is_deleted(err):
                policy.dropped = True
                self.vanished.setdefault(ptype.key, []).append(policy)
            elif err.status == 400 and not isinstance(err, BadResponse):
                policy.dropped = True
                why = err.detail or err.message
                if err.code and err.code not in why:
                    why = f"{err.code}: {why}"
                self.refused.setdefault(ptype.key, []).append((policy, f"400 {why}"))
            else:  # 403, 5xx after the retries, 429 past the deadline, a malformed answer
                self.skip(ptype, err, on_list=False)
            return
        f = job.follow
        url = self.client.root(ptype.api_version) + job.url
        if f.pages:
            items = outcome.body
            if any(not isinstance(el, dict) for el in items):
                self.skip(ptype, BadResponse(f"{ptype.label}: a '{f.key}' item is not an object", url=url), on_list=False)
                return
            if f.key is None:
                raise ValueError(f"follow-up {f.path_template} pages but has no key")  # table error
            if f.optional and not items:
                return  # an empty link collection: nothing to merge
            job.target[f.key] = items
            if f.nested:
                parent_id = str(policy.raw.get("id", ""))
                for el in items:
                    if isinstance(el.get("id"), str):
                        next_jobs.extend(self.jobs_for(policy, el, f.nested, parent_id))
        else:
            body = outcome.body
            if f.optional and not body:
                return  # the link is not set: nothing to merge
            if f.key is None:
                for k, v in body.items():
                    if "@odata.context" in k:
                        continue
                    job.target[k] = v
            else:
                job.target[f.key] = {k: v for k, v in body.items() if "@odata.context" not in k}


# ---------------------------------------------------------------------------------------
# Setting definitions
# ---------------------------------------------------------------------------------------

DEFINITION_PATH = "/deviceManagement/configurationSettings/{id}"
EXPANDED_SETTINGS_PATH = "/deviceManagement/{collection}/{id}/settings?$expand=settingDefinitions&$top=1000"
CATALOG_COLLECTIONS = ("configurationPolicies", "compliancePolicies")


def list_pages(client: GraphClient, ptype: PolicyType) -> Iterator[list[dict[str, Any]]]:
    """The pages of a type's list; a single object (``PolicyType.single``) is a page of one item, named
    after the type, and a 404 for it is no item (the tenant has not set it up: OData's "no related entity",
    as for links)."""
    if not ptype.single:
        yield from client.iter_pages(ptype.list_path, ptype.list_params, api_version=ptype.api_version)
        return
    item = client.get_optional(ptype.list_path, ptype.list_params, api_version=ptype.api_version)
    if item is None:
        return
    fields = {k: v for k, v in item.items() if k != "@odata.context"}  # as a list item carries none
    yield [{**fields, "id": item.get("id") or ptype.key, "displayName": ptype.label}]


class _Pipeline:
    """The fast mode's one run: every type listed at once, follow-ups batched as items arrive.

    Follow-ups wait in ``buffer``: full batches of 20 leave at once; a partial batch leaves after
    LINGER_S without new jobs (``timer``), so pages of 25 and small types share POSTs. Once ``closed``
    (the run ended or failed) nothing more leaves. ``cond`` guards ``pending``, ``buffer``, ``timer``
    and ``closed``; the fetcher's own lock guards what it collects."""

    def __init__(self, fetcher: _Fetcher) -> None:
        self.fetcher = fetcher
        workers = max(2, fetcher.client.max_concurrency * 2)  # HTTP itself is bounded by the client
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch")
        self.pending: set[Future] = set()
        self.cond = threading.Condition()
        self.buffer: list[_Job] = []
        self.timer: threading.Timer | None = None
        self.closed = False
        self.listed = 0

    def run(self) -> None:
        f = self.fetcher
        f.progress("listing", 0, len(f.types))
        for ptype in f.types:
            with self.cond:
                self.pending.add(self.pool.submit(self.list_type, ptype))
        try:
            while True:
                with self.cond:
                    running = set(self.pending)
                    if not running and self.buffer:
                        self.cond.wait(LINGER_S * 4)  # the timer is about to flush the last jobs
                        continue
                if not running:
                    break
                done, _ = wait(running, timeout=LINGER_S, return_when=FIRST_EXCEPTION)
                with self.cond:
                    self.pending.difference_update(done)
                for fut in done:
                    fut.result()  # re-raise the first fatal error (AuthError, or a bug)
        finally:
            with self.cond:
                self.closed = True
                if self.timer:
                    self.timer.cancel()
            self.pool.shutdown(wait=True, cancel_futures=True)
        live = sum(1 for p in f.policies if p.ptype.key not in f.skipped)
        f.progress("details", live, live)

    def flush(self, partial: bool) -> None:
        with self.cond:
            if self.closed:  # the pipeline ended (or failed): nothing more leaves
                return
            while len(self.buffer) >= BATCH_LIMIT or (partial and self.buffer):
                group = self.buffer[:BATCH_LIMIT]
                del self.buffer[:BATCH_LIMIT]
                self.pending.add(self.pool.submit(self.run_group, group))
            if self.timer:
                self.timer.cancel()
                self.timer = None
            if self.buffer:
                self.timer = threading.Timer(LINGER_S, self.flush, (True,))
                self.timer.daemon = True
                self.timer.start()
            self.cond.notify_all()

    def dispatch(self, jobs: list[_Job]) -> None:
        if jobs:
            with self.cond:
                self.buffer.extend(jobs)
            self.flush(False)

    def run_group(self, jobs: list[_Job]) -> None:
        next_jobs: list[_Job] = []
        self.fetcher.run_jobs(jobs, next_jobs, None)
        self.dispatch(next_jobs)

    def list_type(self, ptype: PolicyType) -> None:
        f = self.fetcher
        url = f.client.url_for(ptype.list_url, api_version=ptype.api_version)
        try:
            for page in list_pages(f.client, ptype):
                f.check_items(ptype, page, url)
                jobs: list[_Job] = []
                with f.lock:
                    if ptype.key in f.skipped:
                        return
                    for item in page:
                        if not ptype.keeps(item):
                            continue
                        policy = _Policy(ptype, item)
                        f.policies.append(policy)
                        jobs.extend(f.first_jobs(policy))
                        if policy.outstanding == 0:
                            f.done_policies += 1
                self.dispatch(jobs)
            with f.lock:
                f.listed.add(ptype.key)
        except GraphError as e:
            f.skip(ptype, e, on_list=True)
        finally:
            with f.lock:
                self.listed += 1
                f.progress("listing", self.listed, len(f.types))


def fetch_definitions(client: GraphClient, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Settings-catalog setting definitions by id, 20 to a $batch (one request per definition:
    prefer :func:`fetch_expanded_settings`). Ids Graph does not know (404, e.g. retired
    settings) are left out: their rows fall back to names made from the id."""
    if not ids:
        return {}
    ids = sorted(ids)
    answers = client.batch([BatchRequest(DEFINITION_PATH.format(id=quote(i, safe="")), follow_next=False)
                            for i in ids])
    found: dict[str, dict[str, Any]] = {}
    for definition_id, resp in zip(ids, answers):
        if resp.status == 404:
            continue
        resp.raise_for_status()
        body = resp.json()
        found[definition_id] = {k: v for k, v in body.items() if "@odata.context" not in k}
    return found


def covering_policies(needs: Mapping[tuple[str, str], Iterable[str]]) -> list[tuple[str, str]]:
    """The fewest policies (greedily) whose settings reference every missing definition.

    ``needs``: ``(collection, policy_id)`` -> the definition ids its settings reference that the
    cache lacks. Fetching the expanded settings of the returned policies finds every one of them
    (each policy's expansion holds at least the definitions it references), usually with far
    fewer requests than one per policy: tenants repeat the same settings across policies.
    Deterministic: ties go to the smallest key."""
    sets = {key: set(ids) for key, ids in needs.items() if ids}
    uncovered = set().union(*sets.values()) if sets else set()
    heap = [(-len(ids), key) for key, ids in sets.items()]  # lazy greedy: gains only ever shrink
    heapq.heapify(heap)
    chosen: list[tuple[str, str]] = []
    while uncovered and heap:
        _, key = heapq.heappop(heap)
        gain = len(sets[key] & uncovered)
        if gain and (not heap or (-gain, key) <= heap[0]):
            chosen.append(key)
            uncovered -= sets[key]
        elif gain:
            heapq.heappush(heap, (-gain, key))
    return chosen


def fetch_expanded_settings(client: GraphClient, policies: Sequence[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """Every setting definition of the given policies' settings, by definition id.

    ``policies``: ``(collection, policy_id)`` pairs, collection ``"configurationPolicies"`` or
    ``"compliancePolicies"``. One request per policy (20 to a $batch, every page) to
    ``/{collection}/{id}/settings?$expand=settingDefinitions``, which returns the definitions of
    each setting's whole instance tree (docs/graph-intune.md §1, §7): far fewer requests than one
    per definition. A policy deleted since (404 / 400 ``ResourceNotFound``) contributes nothing;
    any other failure raises its :class:`GraphError`."""
    pairs = sorted(set(policies))
    for collection, _ in pairs:
        if collection not in CATALOG_COLLECTIONS:
            raise ValueError(f"collection must be one of {', '.join(CATALOG_COLLECTIONS)}, not {collection!r}")
    if not pairs:
        return {}
    answers = client.batch([BatchRequest(EXPANDED_SETTINGS_PATH.format(collection=c, id=quote(p, safe="")))
                            for c, p in pairs])
    found: dict[str, dict[str, Any]] = {}
    for resp in answers:
        err = resp.error
        if err is not None and is_deleted(err):
            continue
        for setting in resp.json().get("value") or ():
            for definition in (setting.get("settingDefinitions") or ()) if isinstance(setting, dict) else ():
                if isinstance(definition, dict) and isinstance(definition.get("id"), str):
                    found[definition["id"]] = {k: v for k, v in definition.items() if "@odata.context" not in k}
    return found


TEMPLATE_CATEGORIES_PATH = "/deviceManagement/templates/{id}/categories?$expand=settingDefinitions"


def fetch_template_definitions(client: GraphClient, template_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Endpoint-security intent setting definitions, from each template's categories (one call per
    template, 20 to a $batch), each tagged with its category's name as `categoryName`."""
    if not template_ids:
        return {}
    ids = sorted(template_ids)
    answers = client.batch([BatchRequest(TEMPLATE_CATEGORIES_PATH.format(id=quote(t, safe=""))) for t in ids])
    found: dict[str, dict[str, Any]] = {}
    for resp in answers:
        if resp.status == 404:  # retired template: names fall back to the definition ids
            continue
        resp.raise_for_status()
        for category in resp.json().get("value") or ():
            for definition in category.get("settingDefinitions") or ():
                if isinstance(definition, dict) and definition.get("id"):
                    found[definition["id"]] = {**definition, "categoryName": category.get("displayName")}
    return found
