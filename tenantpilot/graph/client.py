"""A small, strict Microsoft Graph client on ``requests`` for one tenant: pacing, retries, paging, ``$batch``, concurrency.

Why one module of ~900 lines: pacing, retrying, paging, ``$batch`` and the worker pool share one
request path and its state (the pacer, the stats, the token); split, each half would reach into the other.

One logical request is one call to :meth:`GraphClient.get` or one inner request of
:meth:`GraphClient.batch`. Both go through the same two rules:

* **Pacing** (:mod:`.throttle`): before a request leaves, the client's :class:`Pacer` checks the
  Intune service family of its URL against the published limit (1,000 or 2,000 requests per 20 s
  per app per tenant; each inner ``$batch`` request counts on its own) and waits when the window
  is full. A 429 halves that family's pace; a run of successes speeds it up again.
* **Retrying** (:mod:`.retry`, one :class:`RetryPolicy`): 429 waits ``Retry-After`` (or backs off
  ``min(2**n * throttle_backoff_base, 60)`` s with jitter) and, with a ``deadline``, keeps trying
  while the run has time left, then :class:`Throttled` names the wait; 5xx and connection
  errors back off ``min(2**n * backoff_base, 60)`` s, at most ``max_retries`` times; one forced
  token refresh on 401, then :class:`AuthError`; TLS failures, 403 (:class:`PermissionDenied`),
  404 (:class:`NotFound`), 400 and other 4xx (:class:`GraphError`) are not retried. A 2xx body
  that is not JSON, or not the expected shape, is :class:`BadResponse` naming the URL.

``$batch`` packs 20 inner requests per POST, sends the POSTs in parallel (bounded by
``max_concurrency``), re-sends only the inner requests the rule says to retry (after the longest
wait of that round), follows inner ``@odata.nextLink`` URLs of list results, and returns one
:class:`BatchResponse` per input request, in input order. Inner failures are returned, not
raised (:meth:`BatchResponse.raise_for_status`); an outer 429/5xx on the POST itself is retried
by the same rule.

``on_wait(seconds, reason)`` is called before a throttle (``"throttle"``) or pacing (``"pacing"``)
wait longer than a second, so a caller can say "waiting for Graph's throttle (N s)".

``client.stats`` counts, thread-safely, every HTTP request sent to Graph (each GET, each
``$batch`` POST, each retry; token requests are counted by the token provider instead) and the
seconds spent waiting. Authorization headers and tokens are never logged.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, TypeVar
from urllib.parse import quote, urlsplit

import requests
import requests.adapters

from tenantpilot import logs

from .errors import (
    AuthError,
    BadResponse,
    ConnectionFailed,
    GraphError,
    ServerError,
    Throttled,
    error_from_response,
)
from .retry import (
    CONNECTION,
    MAX_BACKOFF,
    Attempts,
    Decision,
    RetryPolicy,
    backoff_delay,
    parse_retry_after,
    retry_delay,
)
from .throttle import PUBLISHED_LIMITS, Pacer, family_of

__all__ = [
    "GraphClient",
    "BatchRequest",
    "BatchResponse",
    "RequestStats",
    "TokenSource",
    "BATCH_LIMIT",
    "MAX_BACKOFF",
    "parse_retry_after",
    "backoff_delay",
    "retry_delay",
    "build_query",
    "chunked",
    "same_origin",
    "redact_headers",
]

log = logging.getLogger(__name__)

BATCH_LIMIT = 20  # Graph's maximum number of requests in one $batch
ANNOUNCE_AFTER_S = 1.0  # on_wait is called for waits longer than this

T = TypeVar("T")
R = TypeVar("R")


class TokenSource(Protocol):
    """What the client calls on a token provider (``auth.TokenProvider`` is the one the product uses).

    ``tenant_id`` names the tenant in messages. ``get_token(force_refresh=True, rejected=<the token
    Graph refused>)`` returns a new token, except that when several threads report the same refused
    token at once only the first asks the authority again."""

    tenant_id: str

    def get_token(self, force_refresh: bool = False, *, rejected: str | None = None) -> str: ...


# ---------------------------------------------------------------------------------------
# Pure helpers (table-tested)
# ---------------------------------------------------------------------------------------


_QUERY_SAFE = "$(),;=':@/*!"


def build_query(params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None) -> str:
    """``key=value&…`` keeping Graph's ``$`` and ``(),=`` readable, escaping spaces and ``&``."""
    if not params:
        return ""
    pairs = params.items() if isinstance(params, Mapping) else params
    out = []
    for k, v in pairs:
        if v is None:
            continue
        if isinstance(v, bool):
            v = "true" if v else "false"
        out.append(f"{quote(str(k), safe='$')}={quote(str(v), safe=_QUERY_SAFE)}")
    return "&".join(out)


def add_query(url: str, params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None) -> str:
    q = build_query(params)
    if not q:
        return url
    return f"{url}{'&' if '?' in url else '?'}{q}"


def chunked(items: Sequence[T], size: int = BATCH_LIMIT) -> list[list[T]]:
    if size < 1:
        raise ValueError("size must be >= 1")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


def same_origin(a: str, b: str) -> bool:
    return _origin(a) == _origin(b)


_SECRET_HEADERS = {"authorization", "proxy-authorization", "cookie", "set-cookie"}


def redact_headers(headers: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of ``headers`` safe to log."""
    return {k: ("<redacted>" if k.lower() in _SECRET_HEADERS else v) for k, v in (headers or {}).items()}


def _header(headers: Mapping[str, Any] | None, name: str) -> Any:
    if not headers:
        return None
    lname = name.lower()
    for k, v in headers.items():
        if str(k).lower() == lname:
            return v
    return None


def cost_of(urls: Iterable[str]) -> dict[str, int]:
    """Requests per Intune service family for a set of Graph URLs (those of no family are free)."""
    counts: Counter[str] = Counter()
    for url in urls:
        family = family_of(url)
        if family is not None:
            counts[family] += 1
    return dict(counts)


# ---------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------


@dataclass
class RequestStats:
    """Counters for one client (thread-safe through :meth:`add`).

    requests   HTTP requests sent to Graph: GETs, $batch POSTs, and every retry of them
    retries    requests (outer or inner) re-sent after 429/5xx/connection error/401
    throttled  429 or 503 answers received (outer and inner)
    failed     logical requests (GET or inner batch request) that ended in an error
    batched    inner requests carried by $batch POSTs (re-sent ones included)
    waited_s   seconds spent waiting before re-sends and for pacing (summed over threads)
    paced_s    of which: seconds waiting because our own pacing held a request back
    """

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    failed: int = 0
    batched: int = 0
    waited_s: float = 0.0
    paced_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: float) -> None:
        with self._lock:
            for k, v in counts.items():
                setattr(self, k, getattr(self, k) + v)

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return {
                "requests": self.requests,
                "retries": self.retries,
                "throttled": self.throttled,
                "failed": self.failed,
                "batched": self.batched,
                "waited_s": round(self.waited_s, 3),
                "paced_s": round(self.paced_s, 3),
            }


@dataclass(frozen=True)
class BatchRequest:
    """One inner request. ``url`` is relative to the API version root
    (``/deviceManagement/configurationPolicies/{id}/settings?$top=1000``).
    ``follow_next``: for a collection answer, fetch every page and return them as one."""

    url: str
    method: str = "GET"
    body: Any = None
    headers: Mapping[str, str] | None = None
    follow_next: bool = True


@dataclass
class BatchResponse:
    """One inner answer. For a followed collection, ``body['value']`` holds every page.

    ``exc``: set when Graph answered 2xx but the body was unusable (malformed JSON inside the
    batch, a paging loop); ``note``: why the retry rule gave up, for the error message."""

    status: int
    body: Any
    headers: dict[str, str]
    url: str  # absolute URL of the inner request (the page that failed, for a collection)
    method: str = "GET"
    exc: GraphError | None = None
    note: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300 and self.exc is None

    @property
    def error(self) -> GraphError | None:
        if self.exc is not None:
            return self.exc
        if self.ok:
            return None
        return _give_up_error(self.status, self.body, self.url, self.method, self.note)

    def raise_for_status(self) -> None:
        err = self.error
        if err is not None:
            raise err

    def json(self) -> dict[str, Any]:
        """The body as a dict (raising the error for non-2xx, BadResponse for a non-object)."""
        self.raise_for_status()
        if not isinstance(self.body, dict):
            raise BadResponse(
                f"Graph returned a {type(self.body).__name__} where a JSON object was expected",
                status=self.status,
                url=self.url,
                method=self.method,
            )
        return self.body


def _give_up_error(status: int, body: Any, url: str, method: str, note: str) -> GraphError:
    """The error for an answer the retry rule gave up on, its ``note`` worked into the message."""
    err = error_from_response(status, body, url=url, method=method, exhausted=True)
    if note and isinstance(err, Throttled) and note.startswith("the next wait"):
        err.message = f"Graph kept throttling (429): {note}"
    elif note and isinstance(err, (Throttled, ServerError)):
        err.message = f"{err.message} ({note})"
    return err


@dataclass
class _Inner:
    """One inner request of a :meth:`GraphClient.batch` call, through all its rounds."""

    index: int
    request: BatchRequest
    url: str  # relative to the version root; advances along @odata.nextLink
    attempts: Attempts = field(default_factory=Attempts)
    pages: int = 0  # pages received so far
    first: dict[str, Any] | None = None  # the first page's body (a followed collection)
    values: list[Any] = field(default_factory=list)  # every page's items so far
    seen: set[str] = field(default_factory=set)  # pages asked for (paging-loop guard)

    @property
    def family(self) -> str | None:
        return family_of(self.url)


# ---------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------


class GraphClient:
    """Microsoft Graph for one tenant, over one pooled ``requests.Session``.

    ``verify``: True (requests' default, honouring ``REQUESTS_CA_BUNDLE``), False, or a CA bundle
    path; it is passed explicitly on every request. ``deadline``: an absolute ``clock()`` value
    (``time.monotonic()`` by default) after which no wait may end; None keeps 429 retries bounded
    by ``max_retries`` like 5xx. ``limits``: family -> ``(limit, window_s)`` for the pacer
    (default: the published limits; ``{}`` turns pacing off). ``sleep`` and ``clock`` are
    injectable so tests need not wait out real back-offs. Thread-safe: share one client across
    threads.
    """

    def __init__(
        self,
        token_provider: TokenSource,
        *,
        base_url: str = "https://graph.microsoft.com",
        api_version: str = "beta",
        verify: bool | str = True,
        timeout: float | tuple[float, float] = (5, 60),
        max_retries: int = 6,
        max_concurrency: int = 8,
        backoff_base: float = 1.0,
        throttle_backoff_base: float = 10.0,
        max_retry_after: float = 300.0,
        deadline: float | None = None,
        on_wait: Callable[[float, str], None] | None = None,
        limits: Mapping[str, tuple[int, float]] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        session: requests.Session | None = None,
        user_agent: str = "TenantPilot",
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self.token_provider = token_provider
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version.strip("/")
        self.verify = verify
        self.timeout = timeout
        self.max_concurrency = max_concurrency
        self.retry = RetryPolicy(max_retries=max(0, max_retries), backoff_base=backoff_base,
                                 throttle_backoff_base=throttle_backoff_base, max_retry_after=max_retry_after)
        self.deadline = deadline
        self.on_wait = on_wait
        self.sleep = sleep
        self.clock = clock
        self.pacer = Pacer(PUBLISHED_LIMITS if limits is None else limits, clock=clock)
        self.stats = RequestStats()
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._announce_lock = threading.Lock()
        self._announced_until = float("-inf")
        self._session = session or requests.Session()
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=4, pool_maxsize=max(max_concurrency, 10), max_retries=0
        )
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._session.headers.update({"Accept": "application/json", "User-Agent": user_agent})

    @property
    def max_retries(self) -> int:
        return self.retry.max_retries

    # -- context management ------------------------------------------------------------------

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"GraphClient(base_url={self.base_url!r}, api_version={self.api_version!r})"

    # -- URLs -------------------------------------------------------------------------------

    def root(self, api_version: str | None = None) -> str:
        """``{base_url}/{api_version}``."""
        return f"{self.base_url}/{(api_version or self.api_version).strip('/')}"

    def url_for(
        self,
        path_or_url: str,
        params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        api_version: str | None = None,
    ) -> str:
        """Absolute URL for a path (``/deviceManagement/…``) or an absolute same-origin URL."""
        if path_or_url.startswith(("https://", "http://")):
            if not same_origin(path_or_url, self.base_url):
                raise BadResponse(
                    f"refusing to send the Graph token to another host ({_origin(path_or_url)[1]})",
                    url=path_or_url,
                )
            return add_query(path_or_url, params)
        return add_query(f"{self.root(api_version)}/{path_or_url.lstrip('/')}", params)

    def relative_url(self, url: str, api_version: str | None = None) -> str | None:
        """``/path?query`` of an absolute URL under this client's root, else None (query kept verbatim)."""
        root = self.root(api_version)
        if url.startswith(root + "/"):
            return url[len(root) :]
        return None

    # -- waiting ------------------------------------------------------------------------------

    def _token(self, *, force: bool = False, rejected: str | None = None) -> str:
        if not force:
            return self.token_provider.get_token()
        return self.token_provider.get_token(force_refresh=True, rejected=rejected)

    def _tenant(self) -> str:
        return self.token_provider.tenant_id or "the tenant"

    def _wait(self, seconds: float, reason: str) -> None:
        """Sleep ``seconds`` (telling ``on_wait`` first when it is a long throttle/pacing wait)."""
        if seconds <= 0:
            return
        if self.on_wait is not None and seconds > ANNOUNCE_AFTER_S and reason in ("throttle", "pacing"):
            with self._announce_lock:  # many threads wait at once: tell each new horizon once
                until = self.clock() + seconds
                tell = until > self._announced_until + ANNOUNCE_AFTER_S
                if tell:
                    self._announced_until = until
            if tell:
                self.on_wait(seconds, reason)
        self.stats.add(waited_s=seconds, **({"paced_s": seconds} if reason == "pacing" else {}))
        self.sleep(seconds)

    def _pace(self, cost: Mapping[str, int], url: str, method: str) -> None:
        """Wait until the pacer lets ``cost`` go (and count it as in flight)."""
        if not cost:
            return
        while True:
            wait = self.pacer.reserve(cost)
            if wait <= 0:
                return
            if self.deadline is not None and self.clock() + wait > self.deadline:
                raise Throttled(
                    f"Pacing requests to Graph's throttle limits would pass the sync deadline (next wait "
                    f"{wait:.0f} s)", status=429, url=url, method=method, wait_s=wait,
                )
            self._wait(wait, "pacing")

    def _decide(self, outcome: int | str, attempts: Attempts, retry_after: Any = None) -> Decision:
        return self.retry.decide(outcome, attempts, retry_after=retry_after, now=self.clock(), deadline=self.deadline)

    def _retrying(self, attempts: Attempts, decision: Decision, **fields: Any) -> None:
        attempts.count(decision)
        self.stats.add(retries=1)
        logs.log(log, logging.INFO, "graph retry", attempt=attempts.total, delay_s=round(decision.delay, 2),
                 reason=decision.reason, **fields)
        self._wait(decision.delay, decision.reason)

    # -- core send loop -----------------------------------------------------------------------

    def _send(self, method: str, url: str, json_body: Any = None, *, cost: Mapping[str, int] | None = None,
              outer_batch: bool = False, absent_ok: bool = False) -> Any:
        """Send one logical request under the pacing and retry rules; return the parsed JSON body.

        ``absent_ok``: a 404 is an answer (None: "there is none"), not a failure (:meth:`get_optional`).

        ``cost``: family -> requests it counts as (default: the family of ``url``); for a $batch
        POST (``outer_batch``) the inner requests' families, whose success is judged per inner
        answer by :meth:`batch`, not here."""
        cost = dict(cost) if cost is not None else cost_of([url])
        attempts = Attempts()
        token = self._token()
        while True:
            self._pace(cost, url, method)
            headers = {"Authorization": f"Bearer {token}"}
            try:
                with self._slots:
                    resp = self._session.request(
                        method, url, headers=headers, json=json_body, timeout=self.timeout, verify=self.verify
                    )
            except requests.exceptions.SSLError as e:
                self.pacer.release(cost)
                self.stats.add(requests=1, failed=1)
                raise ConnectionFailed(
                    f"TLS verification failed talking to Graph (check the CA bundle / REQUESTS_CA_BUNDLE): {_first_line(e)}",
                    url=url,
                    method=method,
                ) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
                self.pacer.release(cost)
                self.stats.add(requests=1)
                decision = self._decide(CONNECTION, attempts)
                if decision.action == "retry":
                    self._retrying(attempts, decision, method=method, url=_short_url(url), error=type(e).__name__)
                    token = self._token()
                    continue
                self.stats.add(failed=1)
                note = f"; {decision.note}" if decision.note.startswith("the next wait") else ""
                raise ConnectionFailed(
                    f"Cannot reach Graph after {attempts.retries + 1} attempts: {connection_reason(e)}{note}",
                    url=url, method=method,
                ) from None
            except OSError as e:  # e.g. the configured CA bundle path does not exist
                self.pacer.release(cost)
                self.stats.add(failed=1)
                raise ConnectionFailed(f"Cannot send the request to Graph: {_first_line(e)}", url=url, method=method) from None
            self.pacer.release(cost)
            self.stats.add(requests=1)
            status = resp.status_code
            logs.log(log, logging.DEBUG, "graph response", method=method, url=_short_url(url), status=status)
            if status == 429:
                self.pacer.throttled(cost)
            elif 200 <= status < 300 and not outer_batch:
                for family, n in cost.items():
                    self.pacer.succeeded(family, n)
            if status in (429, 503):
                self.stats.add(throttled=1)
            decision = self._decide(status, attempts, resp.headers.get("Retry-After"))

            if decision.action == "done":
                if status == 204 or not resp.content:
                    return {}
                try:
                    return resp.json()
                except ValueError as e:
                    self.stats.add(failed=1)
                    raise BadResponse(
                        f"Graph returned malformed JSON ({e})", status=status, url=url, method=method
                    ) from None
            if decision.action == "refresh":
                attempts.count(decision)
                self.stats.add(retries=1)
                logs.log(log, logging.INFO, "graph 401: refreshing the token once", method=method, url=_short_url(url))
                token = self._token(force=True, rejected=token)
                continue
            if decision.action == "retry":
                resp.close()
                self._retrying(attempts, decision, method=method, url=_short_url(url), status=status)
                token = self._token()
                continue

            if absent_ok and status == 404:
                resp.close()
                return None
            self.stats.add(failed=1)
            if status == 401:
                err = error_from_response(status, _body_of(resp), url=url, method=method)
                raise AuthError(
                    f"Tenant {self._tenant()}: Graph rejected a freshly issued access token"
                    + (f" ({err.code}: {err.message.split(': ', 1)[-1]})" if err.code else ""),
                    tenant=getattr(self.token_provider, "tenant_id", None),
                    status=401,
                    code=err.code,
                    url=url,
                    method=method,
                )
            err = _give_up_error(status, _body_of(resp), url, method, decision.note)
            if isinstance(err, Throttled):
                err.wait_s = decision.delay or None
            raise err

    # -- public calls ---------------------------------------------------------------------------

    def get(
        self,
        path_or_url: str,
        params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        *,
        api_version: str | None = None,
    ) -> dict[str, Any]:
        """GET one resource; returns the JSON object."""
        url = self.url_for(path_or_url, params, api_version)
        body = self._send("GET", url)
        if not isinstance(body, dict):
            self.stats.add(failed=1)
            raise BadResponse(
                f"Graph returned a JSON {type(body).__name__} where an object was expected", status=200, url=url
            )
        return body

    def get_optional(
        self,
        path_or_url: str,
        params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        *,
        api_version: str | None = None,
    ) -> dict[str, Any] | None:
        """GET one object that may not exist (a singleton the tenant never set up): None for a 404,
        which is then no failure in the stats."""
        url = self.url_for(path_or_url, params, api_version)
        body = self._send("GET", url, absent_ok=True)
        if body is None:
            return None
        if not isinstance(body, dict):
            self.stats.add(failed=1)
            raise BadResponse(
                f"Graph returned a JSON {type(body).__name__} where an object was expected", status=200, url=url
            )
        return body

    def iter_pages(
        self,
        path_or_url: str,
        params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        *,
        api_version: str | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield each page's ``value``, following the whole ``@odata.nextLink`` URL as given."""
        url: str | None = self.url_for(path_or_url, params, api_version)
        seen: set[str] = set()
        while url:
            seen.add(url)
            page = self.get(url)
            value = page.get("value")
            if not isinstance(value, list):
                self.stats.add(failed=1)
                raise BadResponse("Graph returned no 'value' list for a collection", status=200, url=url)
            yield value
            url = self._next_link(page, url, seen)

    def _next_link(self, page: Mapping[str, Any], url: str, seen: set[str]) -> str | None:
        nxt = page.get("@odata.nextLink")
        if nxt is None or nxt == "":
            return None
        if not isinstance(nxt, str) or not nxt.startswith(("https://", "http://")):
            raise BadResponse(f"Graph returned an unusable @odata.nextLink ({str(nxt)[:120]!r})", url=url)
        if not same_origin(nxt, self.base_url):
            raise BadResponse(
                f"@odata.nextLink points to another host ({_origin(nxt)[1]}); not following it", url=url
            )
        if nxt in seen:
            raise BadResponse("Graph's @odata.nextLink repeats an earlier page (paging loop)", url=nxt)
        return nxt

    def get_all(
        self,
        path_or_url: str,
        params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        *,
        api_version: str | None = None,
    ) -> list[dict[str, Any]]:
        """Every item of a collection, all pages."""
        items: list[dict[str, Any]] = []
        for page in self.iter_pages(path_or_url, params, api_version=api_version):
            items.extend(page)
        return items

    # -- concurrency ----------------------------------------------------------------------------

    def run_parallel(
        self,
        fn: Callable[[T], R],
        items: Iterable[T],
        *,
        on_done: Callable[[int, R], None] | None = None,
        max_workers: int | None = None,
    ) -> list[R]:
        """``[fn(x) for x in items]`` on at most ``max_concurrency`` threads, results in input order.

        ``on_done(index, result)`` runs in the calling thread as each item finishes. The first
        exception cancels the items not yet started and is re-raised. HTTP concurrency is
        bounded separately by the client, so nested calls cannot exceed it."""
        items = list(items)
        results: list[Any] = [None] * len(items)
        workers = min(max_workers or self.max_concurrency, len(items))
        if workers <= 1:
            for i, item in enumerate(items):
                results[i] = fn(item)
                if on_done:
                    on_done(i, results[i])
            return results
        ex = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="graph")
        try:
            futures = {ex.submit(fn, item): i for i, item in enumerate(items)}
            for fut in as_completed(futures):
                i = futures[fut]
                results[i] = fut.result()
                if on_done:
                    on_done(i, results[i])
        finally:
            ex.shutdown(wait=True, cancel_futures=True)
        return results

    # -- $batch -----------------------------------------------------------------------------------

    def batch(
        self,
        requests_: Sequence[BatchRequest],
        *,
        api_version: str | None = None,
        on_result: Callable[[int, BatchResponse], None] | None = None,
    ) -> list[BatchResponse]:
        """Send ``requests_`` through ``$batch`` (20 per POST, POSTs in parallel).

        Each inner request is judged by the retry rule on its own (429/5xx re-sent after the
        longest wait of the round, one token refresh on 401); collections with ``follow_next``
        get every page. ``on_result(index, response)`` is called in the calling thread as each
        request completes. A POST that fails outright (after its own retries) raises."""
        run = _BatchRun(self, requests_, api_version, on_result)
        post = partial(self._post_batch, api_version=api_version)
        pending = run.inners
        while pending:
            run.start_round()
            self.run_parallel(post, chunked(pending, BATCH_LIMIT), on_done=run.absorb)
            pending = run.end_round()
        return run.responses()

    def _inner_url(self, url: str, api_version: str | None) -> str:
        if url.startswith(("https://", "http://")):
            rel = self.relative_url(url, api_version)
            if rel is None:
                raise ValueError(f"batch URL must be under {self.root(api_version)}: {url}")
            return rel
        return "/" + url.lstrip("/")

    @staticmethod
    def _inner_json(body: Any, headers: Mapping[str, Any], url: str, status: int) -> Any:
        """Inner bodies are JSON objects; Graph base64-encodes non-JSON bodies as strings."""
        if isinstance(body, (dict, list)) or body is None:
            return body if body is not None else {}
        ctype = str(_header(headers, "Content-Type") or "")
        if isinstance(body, str) and "json" in ctype.lower():
            try:
                return json.loads(body)
            except ValueError as e:
                raise BadResponse(f"Graph returned malformed JSON inside $batch ({e})", status=status, url=url) from None
        raise BadResponse(
            f"Graph returned a non-JSON body inside $batch ({ctype or type(body).__name__})", status=status, url=url
        )

    def _post_batch(
        self, chunk: list[_Inner], *, api_version: str | None
    ) -> tuple[str, list[tuple[_Inner, int, dict[str, str], Any]]]:
        payload = []
        for inner in chunk:
            r = inner.request
            item: dict[str, Any] = {"id": str(inner.index), "method": r.method, "url": inner.url}
            if r.headers:
                item["headers"] = dict(r.headers)
            if r.body is not None:
                item["body"] = r.body
                item.setdefault("headers", {}).setdefault("Content-Type", "application/json")
            payload.append(item)
        url = f"{self.root(api_version)}/$batch"
        token = self.token_provider.get_token()
        body = self._send("POST", url, {"requests": payload}, cost=cost_of(i.url for i in chunk), outer_batch=True)
        self.stats.add(batched=len(chunk))
        responses = body.get("responses") if isinstance(body, dict) else None
        if not isinstance(responses, list):
            self.stats.add(failed=1)
            raise BadResponse("Graph's $batch answer has no 'responses' list", status=200, url=url, method="POST")
        wanted = {str(inner.index): inner for inner in chunk}
        out: dict[str, tuple[_Inner, int, dict[str, str], Any]] = {}
        for r in responses:
            try:
                key = str(int(r["id"]))
                status = int(r["status"])
            except (KeyError, TypeError, ValueError):
                self.stats.add(failed=1)
                raise BadResponse("Graph's $batch answer has a response without id/status", url=url, method="POST") from None
            if key in wanted:
                headers = r.get("headers") if isinstance(r.get("headers"), dict) else {}
                out[key] = (wanted[key], status, headers, r.get("body"))
        missing = set(wanted) - set(out)
        if missing:
            self.stats.add(failed=1)
            raise BadResponse(
                f"Graph's $batch answer lacks {len(missing)} of {len(chunk)} responses", url=url, method="POST"
            )
        return token, list(out.values())


class _BatchRun:
    """The state of one :meth:`GraphClient.batch` call: its inner requests and each round's
    verdicts (who goes again, after how long, whether a token refresh is due)."""

    def __init__(self, client: GraphClient, requests_: Sequence[BatchRequest], api_version: str | None,
                 on_result: Callable[[int, BatchResponse], None] | None) -> None:
        self.client = client
        self.api_version = api_version
        self.root = client.root(api_version)
        self.on_result = on_result
        self.inners = [_Inner(i, r, client._inner_url(r.url, api_version)) for i, r in enumerate(requests_)]
        self.done: list[BatchResponse | None] = [None] * len(self.inners)
        self.start_round()

    def start_round(self) -> None:
        self.again: list[_Inner] = []
        self.wait = 0.0
        self.reason = ""
        self.rejected_token: str | None = None

    def end_round(self) -> list[_Inner]:
        if self.rejected_token is not None:
            self.client._token(force=True, rejected=self.rejected_token)
        if self.wait > 0:
            logs.log(log, logging.INFO, "$batch retry", requests=len(self.again), delay_s=round(self.wait, 2),
                     reason=self.reason)
            self.client._wait(self.wait, self.reason)
        return sorted(self.again, key=lambda inner: inner.index)

    def responses(self) -> list[BatchResponse]:
        return self.done  # type: ignore[return-value]  # every slot is filled once nothing is pending

    def absorb(self, chunk_index: int, answer: tuple[str, list[tuple[_Inner, int, dict[str, str], Any]]]) -> None:
        token_used, answers = answer
        for inner, status, headers, body in answers:
            if 200 <= status < 300:
                self._answered(inner, status, headers, body)
            else:
                self._failed(inner, status, headers, body, token_used)

    def _answered(self, inner: _Inner, status: int, headers: dict[str, str], body: Any) -> None:
        client = self.client
        url = self.root + inner.url
        family = inner.family
        if family is not None:
            client.pacer.succeeded(family)
        try:
            body = client._inner_json(body, headers, url, status)
            value = body.get("value") if isinstance(body, dict) else None
            if inner.request.follow_next and isinstance(value, list):
                if inner.first is None:
                    inner.first = body
                inner.values.extend(value)
                inner.pages += 1
                if body.get("@odata.nextLink"):
                    inner.seen.add(url)
                    nxt = client._next_link(body, url, inner.seen)
                    rel = client.relative_url(nxt, self.api_version) if nxt else None
                    if rel is not None:
                        inner.url = rel
                        self.again.append(inner)  # the next page goes in the next round
                        return
                    if nxt:  # another API version: follow directly, page by page
                        inner.values.extend(client.get_all(nxt))
                body = dict(inner.first)
                body["value"] = inner.values
                body.pop("@odata.nextLink", None)
        except GraphError as e:  # an unusable page: this request fails, the batch goes on
            if isinstance(e, AuthError):
                raise
            self._finish(inner, status, headers, None, exc=e)
            return
        self._finish(inner, status, headers, body)

    def _failed(self, inner: _Inner, status: int, headers: dict[str, str], body: Any, token_used: str) -> None:
        client = self.client
        family = inner.family
        if status == 429 and family is not None:
            client.pacer.throttled([family])
        if status in (429, 503):
            client.stats.add(throttled=1)
        decision = client._decide(status, inner.attempts, _header(headers, "Retry-After"))
        if decision.action == "refresh":
            inner.attempts.count(decision)
            client.stats.add(retries=1)
            self.rejected_token = token_used
            self.again.append(inner)
        elif decision.action == "retry":
            inner.attempts.count(decision)
            client.stats.add(retries=1)
            if decision.delay >= self.wait:
                self.wait, self.reason = decision.delay, decision.reason
            self.again.append(inner)
        else:
            self._finish(inner, status, headers, body, note=decision.note)

    def _finish(self, inner: _Inner, status: int, headers: dict[str, str], body: Any, *,
                exc: GraphError | None = None, note: str = "") -> None:
        response = BatchResponse(status=status, body=body, headers=headers, url=self.root + inner.url,
                                 method=inner.request.method, exc=exc, note=note)
        if not response.ok:
            self.client.stats.add(failed=1)
        self.done[inner.index] = response
        if self.on_result:
            self.on_result(inner.index, response)


def _body_of(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return resp.text


def _first_line(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return s[0][:300] if s else type(e).__name__


_REASON_RES = (
    re.compile(r"Failed to establish a new connection: (?:\[Errno -?\d+\] )?([^'\")]+)"),
    re.compile(r"(Name or service not known|Temporary failure in name resolution|nodename nor servname provided)"),
    re.compile(r"(Read timed out|Connection aborted|Connection reset by peer|RemoteDisconnected[^'\")]*)"),
    re.compile(r"(timed out)"),
)


def connection_reason(e: BaseException) -> str:
    """The useful part of a requests/urllib3 connection error ("Connection refused", …)."""
    text = str(e)
    for rx in _REASON_RES:
        m = rx.search(text)
        if m:
            return m.group(1).strip().rstrip(".")
    if isinstance(e, requests.exceptions.Timeout):
        return "timed out"
    return _first_line(e)


def _short_url(url: str, limit: int = 200) -> str:
    return url if len(url) <= limit else url[: limit - 1] + "…"

