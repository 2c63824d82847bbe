"""Fetch every Intune policy of one tenant, following the policy-type table.

``fetch_tenant(client)`` lists every type, then runs each policy's follow-up calls and merges
their answers into the list item under Graph's own names (``settings``, ``assignments``,
``definitionValues`` each with ``presentationValues``, ``apps`` …).

Modes:

* ``"fast"``: a pipeline. The lists of all types page in parallel, and each page's follow-ups
  leave through ``$batch`` (20 per POST) as soon as that page arrives, while the next page is
  still on its way; nested follow-ups (admin-template presentation values) leave as soon as
  their parent answers. HTTP concurrency is bounded by the client's ``max_concurrency``. So the
  wall time is about the longest list's paging plus one batch round, not lists + all details.
* ``"sequential"``: one request at a time, no batching (the naive plan, for comparison).

What is *not* fatal (the type is reported in ``failed_types``/``skipped`` with a warning, the
rest of the tenant is fetched):

* 403 on a type's list or follow-up → ``skipped`` with reason ``"forbidden"``: the warning
  names the type and the missing permission. The lead marks such a run ``partial``.
* 404 / 400 on a type's list (a type this tenant, cloud or simulator does not serve) or 400 on
  a follow-up → reason ``"unavailable"``.
* 404 on one policy's follow-up: the policy was deleted between list and detail; it is
  dropped with a warning.

Everything else (throttling or server errors that outlast the retries, 401 after a refresh,
malformed JSON, connection failures) raises the client's :class:`GraphError`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from .client import BATCH_LIMIT, BatchRequest, BatchResponse, GraphClient
from .errors import BadResponse, GraphError, PermissionDenied, preferred_permission
from .policy_types import POLICY_TYPES, FollowUp, PolicyType

__all__ = ["fetch_tenant", "fetch_definitions", "fetch_template_definitions", "FetchResult", "FetchedPolicy", "SkippedType", "ProgressCallback"]

ProgressCallback = Callable[[str, int, "int | None"], None]
LINGER_S = 0.02  # fast mode: how long a partial $batch waits for more follow-ups


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
    """A policy type not (fully) fetched. ``reason``: ``forbidden`` (403) or ``unavailable``
    (404/400: not served here)."""

    key: str
    family: str
    label: str
    reason: Literal["forbidden", "unavailable"]
    status: int | None
    message: str
    missing_permissions: tuple[str, ...] = ()


@dataclass
class FetchResult:
    policies: list[FetchedPolicy]
    warnings: list[str]
    requests: int  # HTTP requests sent to Graph during this fetch (retries and $batch POSTs included)
    failed_types: list[str]  # keys of the types in `skipped`
    skipped: list[SkippedType] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)  # this fetch's share of client.stats
    elapsed: float = 0.0
    mode: str = "fast"

    @property
    def forbidden(self) -> list[SkippedType]:
        return [s for s in self.skipped if s.reason == "forbidden"]

    @property
    def partial(self) -> bool:
        """True when a type was refused (403): the snapshot is incomplete."""
        return bool(self.forbidden)


# ---------------------------------------------------------------------------------------


@dataclass
class _Policy:
    ptype: PolicyType
    raw: dict[str, Any]
    outstanding: int = 0
    dropped: bool = False


@dataclass
class _Job:
    policy: _Policy
    target: dict[str, Any]  # the dict the answer is merged into (the policy, or a list element)
    follow: FollowUp
    url: str  # relative to the API root, query included


@dataclass
class _Outcome:
    status: int
    body: Any  # collection: the list of items; single: the dict; error: the GraphError
    error: GraphError | None = None


def fetch_tenant(
    client: GraphClient,
    *,
    types: Sequence[PolicyType] = POLICY_TYPES,
    mode: Literal["fast", "sequential"] = "fast",
    on_progress: ProgressCallback | None = None,
) -> FetchResult:
    """Fetch all policies of the client's tenant. See the module docstring for the rules."""
    if mode not in ("fast", "sequential"):
        raise ValueError(f"mode must be 'fast' or 'sequential', not {mode!r}")
    return _Fetcher(client, tuple(types), mode, on_progress).run()


class _Fetcher:
    def __init__(
        self,
        client: GraphClient,
        types: tuple[PolicyType, ...],
        mode: str,
        on_progress: ProgressCallback | None,
    ) -> None:
        self.client = client
        self.types = types
        self.mode = mode
        self.on_progress = on_progress
        self.warnings: list[str] = []
        self.skipped: dict[str, SkippedType] = {}
        self.skip_warnings: dict[str, str] = {}
        self.vanished: dict[str, list[str]] = {}
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
        delta = {k: after[k] - before[k] for k in after}
        # report skipped types in table order, whatever order the pipeline met them in
        order = [t.key for t in self.types]
        self.skipped = {k: self.skipped[k] for k in order if k in self.skipped}
        self.warnings = [self.skip_warnings[k] for k in self.skipped] + self.warnings
        for key, names in self.vanished.items():
            if key in self.skipped:
                continue
            label = next(t.label for t in self.types if t.key == key)
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            self.warnings.append(
                f"{label}: {len(names)} polic{'y' if len(names) == 1 else 'ies'} disappeared during the sync "
                f"(404) and {'was' if len(names) == 1 else 'were'} skipped: {shown}"
            )
        policies = [
            FetchedPolicy(p.ptype.family, p.raw, p.ptype.key)
            for p in self.policies
            if not p.dropped and p.ptype.key not in self.skipped
        ]
        return FetchResult(
            policies=policies,
            warnings=self.warnings,
            requests=delta["requests"],
            failed_types=list(self.skipped),
            skipped=list(self.skipped.values()),
            stats=delta,
            elapsed=time.perf_counter() - t0,
            mode=self.mode,
        )

    # -- skipping ------------------------------------------------------------------------------

    def skip(self, ptype: PolicyType, err: GraphError) -> None:
        if ptype.key in self.skipped:
            return
        if isinstance(err, PermissionDenied):
            perm = preferred_permission(err.missing_permissions) or ptype.permission
            s = SkippedType(
                ptype.key, ptype.family, ptype.label, "forbidden", err.status, err.message, err.missing_permissions
            )
            self.skip_warnings[ptype.key] = f"{ptype.label} skipped: 403 — the app lacks {perm}"
        else:
            detail = err.detail or err.message
            if err.code and err.code not in detail:
                detail = f"{err.code}: {detail}"
            s = SkippedType(ptype.key, ptype.family, ptype.label, "unavailable", err.status, detail)
            self.skip_warnings[ptype.key] = f"{ptype.label} skipped: {err.status} — not available here ({detail})"
        self.skipped[ptype.key] = s

    @staticmethod
    def tolerable(err: GraphError) -> bool:
        return not isinstance(err, BadResponse) and err.status in (400, 403, 404)

    # -- fast: the pipeline ---------------------------------------------------------------------

    def run_pipeline(self) -> None:
        workers = max(2, self.client.max_concurrency * 2)  # HTTP itself is bounded by the client
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch")
        pending: set[Future] = set()
        cond = threading.Condition()
        listed = 0
        total_types = len(self.types)
        self.progress("listing", 0, total_types)

        def submit(fn: Callable[..., None], *args: Any) -> None:
            with cond:
                pending.add(pool.submit(fn, *args))

        # Follow-ups wait in a buffer: full batches of 20 leave at once; a partial batch leaves
        # after LINGER_S without new jobs, so pages of 25 and small types share POSTs.
        buffer: list[_Job] = []
        timer: list[threading.Timer] = []

        closed: list[bool] = []

        def flush(partial: bool) -> None:
            with cond:
                if closed:  # the pipeline ended (or failed): nothing more leaves
                    return
                while len(buffer) >= BATCH_LIMIT or (partial and buffer):
                    group = buffer[:BATCH_LIMIT]
                    del buffer[:BATCH_LIMIT]
                    pending.add(pool.submit(run_group, group))
                if timer:
                    timer.pop().cancel()
                if buffer:
                    t = threading.Timer(LINGER_S, flush, (True,))
                    t.daemon = True
                    timer.append(t)
                    t.start()
                cond.notify_all()

        def dispatch(jobs: list[_Job]) -> None:
            if jobs:
                with cond:
                    buffer.extend(jobs)
                flush(False)

        def run_group(jobs: list[_Job]) -> None:
            next_jobs: list[_Job] = []
            self.run_jobs(jobs, next_jobs, None)
            dispatch(next_jobs)

        def list_type(ptype: PolicyType) -> None:
            nonlocal listed
            url = self.client.url_for(ptype.list_url, api_version=ptype.api_version)
            try:
                for page in self.client.iter_pages(ptype.list_path, ptype.list_params, api_version=ptype.api_version):
                    self.check_items(ptype, page, url)
                    jobs: list[_Job] = []
                    with self.lock:
                        if ptype.key in self.skipped:
                            return
                        for item in page:
                            policy = _Policy(ptype, item)
                            self.policies.append(policy)
                            jobs.extend(self.jobs_for(policy, item, ptype.follow_ups, item.get("id", "")))
                            if policy.outstanding == 0:
                                self.done_policies += 1
                    dispatch(jobs)
            except GraphError as e:
                if not self.tolerable(e):
                    raise
                with self.lock:
                    self.skip(ptype, e)
            finally:
                with self.lock:
                    listed += 1
                    self.progress("listing", listed, total_types)

        for ptype in self.types:
            submit(list_type, ptype)
        try:
            while True:
                with cond:
                    running = set(pending)
                    if not running and buffer:
                        cond.wait(LINGER_S * 4)  # the timer is about to flush the last jobs
                        continue
                if not running:
                    break
                done, _ = wait(running, timeout=LINGER_S, return_when=FIRST_EXCEPTION)
                with cond:
                    pending.difference_update(done)
                for fut in done:
                    fut.result()  # re-raise the first fatal error
        finally:
            with cond:
                closed.append(True)
                for t in timer:
                    t.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
        live = sum(1 for p in self.policies if p.ptype.key not in self.skipped)
        self.progress("details", live, live)

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
            items = self.client.get_all(ptype.list_path, ptype.list_params, api_version=ptype.api_version)
        except GraphError as e:
            if self.tolerable(e):
                return e
            raise
        self.check_items(ptype, items, self.client.url_for(ptype.list_url, api_version=ptype.api_version))
        return items

    def list_all(self) -> None:
        total = len(self.types)
        self.progress("listing", 0, total)
        done = 0

        def finished(i: int, result: list[dict[str, Any]] | GraphError) -> None:
            nonlocal done
            done += 1
            self.progress("listing", done, total)

        results = []  # sequential mode only: the fast mode lists inside its pipeline
        for i, t in enumerate(self.types):
            results.append(self.list_type(t))
            finished(i, results[-1])
        for ptype, result in zip(self.types, results):
            if isinstance(result, GraphError):
                self.skip(ptype, result)
                continue
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

    def fetch_details(self) -> None:
        live = [p for p in self.policies if p.ptype.key not in self.skipped]
        total = len(live)
        jobs: list[_Job] = []
        for p in live:
            jobs.extend(self.jobs_for(p, p.raw, p.ptype.follow_ups, p.raw.get("id", "")))
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

        if self.mode == "sequential":
            for job in jobs:
                if job.policy.ptype.key in self.skipped:  # no point asking again
                    apply(job, _Outcome(0, None))
                    continue
                apply(job, self.get_one(job))
            return

        by_version: dict[str, list[_Job]] = {}
        for job in jobs:
            by_version.setdefault(job.policy.ptype.api_version, []).append(job)
        for version, group in by_version.items():
            reqs = [BatchRequest(j.url, follow_next=j.follow.pages) for j in group]

            def on_result(i: int, resp: BatchResponse, group: list[_Job] = group) -> None:
                apply(group[i], self.from_batch(group[i], resp))

            self.client.batch(reqs, api_version=version, on_result=on_result)

    def get_one(self, job: _Job) -> _Outcome:
        version = job.policy.ptype.api_version
        try:
            if job.follow.pages:
                return _Outcome(200, self.client.get_all(job.url, api_version=version))
            return _Outcome(200, self.client.get(job.url, api_version=version))
        except GraphError as e:
            if self.tolerable(e):
                return _Outcome(e.status or 0, None, e)
            raise

    def from_batch(self, job: _Job, resp: BatchResponse) -> _Outcome:
        if not resp.ok:
            err = resp.error
            assert err is not None
            if self.tolerable(err):
                return _Outcome(resp.status, None, err)
            raise err
        body = resp.json()
        if job.follow.pages:
            value = body.get("value")
            if not isinstance(value, list):
                raise BadResponse("Graph returned no 'value' list for a collection", status=resp.status, url=resp.url)
            return _Outcome(resp.status, value)
        return _Outcome(resp.status, body)

    def apply(self, job: _Job, outcome: _Outcome, next_jobs: list[_Job]) -> None:
        policy = job.policy
        ptype = policy.ptype
        if policy.dropped or ptype.key in self.skipped:
            return
        if outcome.error is not None:
            err = outcome.error
            if err.status == 404:
                policy.dropped = True
                name = policy.raw.get("displayName") or policy.raw.get("name") or ""
                self.vanished.setdefault(ptype.key, []).append(f"{name!s} ({policy.raw.get('id')})".strip())
            else:  # 403 / 400: the type as a whole
                self.skip(ptype, err)
            return
        if outcome.status == 0:
            return
        f = job.follow
        if f.pages:
            items = outcome.body
            url = self.client.root(ptype.api_version) + job.url
            for el in items:
                if not isinstance(el, dict):
                    raise BadResponse(f"{ptype.label}: a '{f.key}' item is not an object", url=url)
            if f.key is None:
                raise ValueError(f"follow-up {f.path_template} pages but has no key")  # table error
            job.target[f.key] = items
            if f.nested:
                parent_id = str(policy.raw.get("id", ""))
                for el in items:
                    if isinstance(el.get("id"), str):
                        next_jobs.extend(self.jobs_for(policy, el, f.nested, parent_id))
        else:
            body = outcome.body
            if f.key is None:
                for k, v in body.items():
                    if "@odata.context" in k:
                        continue
                    job.target[k] = v
            else:
                job.target[f.key] = {k: v for k, v in body.items() if "@odata.context" not in k}


DEFINITION_PATH = "/deviceManagement/configurationSettings/{id}"


def fetch_definitions(client: GraphClient, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Settings-catalog setting definitions by id, 20 to a $batch. Ids Graph does not know (404,
    e.g. retired settings) are left out: their rows fall back to names made from the id."""
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

