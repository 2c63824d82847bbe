"""A small, strict Microsoft Graph client on ``requests``: retries, paging, ``$batch``, concurrency.

Policies (one logical request = one call to :meth:`GraphClient.get` or one inner request of
:meth:`GraphClient.batch`):

* **429 / 503**: wait ``Retry-After`` (seconds, or an HTTP date); when it is absent or
  malformed, back off ``min(2**n * backoff_base, 60)`` seconds with jitter (×0.5–1.0).
  At most ``max_retries`` retries, then :class:`Throttled` (429) / :class:`ServerError` (503).
* **other transient 5xx** (not 501/505) and **connection errors / timeouts**: the same backoff.
  TLS verification failures are not retried (:class:`ConnectionFailed` at once).
* **401**: one forced token refresh, one more try, then :class:`AuthError`.
* **403**: :class:`PermissionDenied` at once (no retry), with the missing scopes parsed.
* **404**: :class:`NotFound`; **400 / other 4xx**: :class:`GraphError` with Graph's code/message.
* **a 2xx body that is not JSON or not the expected shape**: :class:`BadResponse` naming the URL.

``$batch`` packs 20 inner requests per POST, sends the POSTs in parallel (bounded by
``max_concurrency``), re-sends only the inner requests that got 429/503/5xx (after the
largest inner ``Retry-After`` of that round), follows inner ``@odata.nextLink``s of list
results, and returns one :class:`BatchResponse` per input request, in input order. Inner 4xx
answers are returned, not raised: call :meth:`BatchResponse.raise_for_status`.

``client.stats`` counts, thread-safely, every HTTP request sent to Graph (each GET, each
``$batch`` POST, each retry; token requests are counted by the token provider instead).
Authorization headers and tokens are never logged.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import timezone
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

__all__ = [
    "GraphClient",
    "BatchRequest",
    "BatchResponse",
    "RequestStats",
    "TokenSource",
    "BATCH_LIMIT",
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
MAX_BACKOFF = 60.0

T = TypeVar("T")
R = TypeVar("R")


class TokenSource(Protocol):
    """What the client needs from a token provider (``auth.TokenProvider`` fits)."""

    def get_token(self, force_refresh: bool = False) -> str: ...


# ---------------------------------------------------------------------------------------
# Pure helpers (table-tested)
# ---------------------------------------------------------------------------------------


def parse_retry_after(value: Any, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, or None when absent or malformed.

    Accepts delta-seconds (``"10"``, ``"1.5"``) and HTTP dates; negative → None."""
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        secs = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        now_ts = time.time() if now is None else now
        return max(0.0, when.timestamp() - now_ts)
    if secs != secs or secs < 0 or secs == float("inf"):  # NaN, negative, inf
        return None
    return secs


def backoff_delay(
    attempt: int, base: float = 1.0, *, cap: float = MAX_BACKOFF, rng: Callable[[], float] = random.random
) -> float:
    """``min(2**attempt * base, cap)`` scaled by a jitter factor in [0.5, 1.0)."""
    delay = min((2 ** max(attempt, 0)) * base, cap)
    return delay * (0.5 + rng() / 2)


def retry_delay(
    retry_after: Any,
    attempt: int,
    base: float = 1.0,
    *,
    cap: float = MAX_BACKOFF,
    max_retry_after: float = 300.0,
    rng: Callable[[], float] = random.random,
) -> float:
    """``Retry-After`` when usable (clamped to ``max_retry_after``), else jittered backoff."""
    ra = parse_retry_after(retry_after)
    if ra is not None:
        return min(ra, max_retry_after)
    return backoff_delay(attempt, base, cap=cap, rng=rng)


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


def _is_retryable(status: int) -> bool:
    return status == 429 or (status >= 500 and status not in (501, 505))


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
    """

    requests: int = 0
    retries: int = 0
    throttled: int = 0
    failed: int = 0
    batched: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for k, v in counts.items():
                setattr(self, k, getattr(self, k) + v)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {
                "requests": self.requests,
                "retries": self.retries,
                "throttled": self.throttled,
                "failed": self.failed,
                "batched": self.batched,
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
    """One inner answer. For a followed collection, ``body['value']`` holds every page."""

    status: int
    body: Any
    headers: dict[str, str]
    url: str  # absolute URL of the inner request (for messages)
    method: str = "GET"

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error(self) -> GraphError | None:
        if self.ok:
            return None
        return error_from_response(self.status, self.body, url=self.url, method=self.method, exhausted=True)

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


# ---------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------


class GraphClient:
    """Microsoft Graph over one pooled ``requests.Session``.

    ``verify``: True (requests' default, honouring ``REQUESTS_CA_BUNDLE``), False, or a CA
    bundle path; it is passed explicitly on every request. ``sleep`` is injectable so tests
    need not wait out real back-offs. Thread-safe: share one client across threads.
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
        max_retry_after: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
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
        self.max_retries = max(0, max_retries)
        self.max_concurrency = max_concurrency
        self.backoff_base = backoff_base
        self.max_retry_after = max_retry_after
        self.sleep = sleep
        self.stats = RequestStats()
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._session = session or requests.Session()
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=4, pool_maxsize=max(max_concurrency, 10), max_retries=0
        )
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._session.headers.update({"Accept": "application/json", "User-Agent": user_agent})

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

    # -- core send loop -----------------------------------------------------------------------

    def _token(self, *, force: bool = False, rejected: str | None = None) -> str:
        if not force:
            return self.token_provider.get_token()
        try:
            return self.token_provider.get_token(force_refresh=True, rejected=rejected)  # type: ignore[call-arg]
        except TypeError:  # a provider without the `rejected` de-duplication
            return self.token_provider.get_token(force_refresh=True)

    def _tenant(self) -> str:
        return str(getattr(self.token_provider, "tenant_id", "") or "the tenant")

    def _delay(self, retry_after: Any, attempt: int) -> float:
        return retry_delay(retry_after, attempt, self.backoff_base, max_retry_after=self.max_retry_after)

    def _send(self, method: str, url: str, json_body: Any = None) -> Any:
        """Send one logical request with the retry policy; return the parsed JSON body."""
        attempt = 0
        refreshed = False
        token = self._token()
        while True:
            headers = {"Authorization": f"Bearer {token}"}
            try:
                with self._slots:
                    resp = self._session.request(
                        method, url, headers=headers, json=json_body, timeout=self.timeout, verify=self.verify
                    )
            except requests.exceptions.SSLError as e:
                self.stats.add(requests=1, failed=1)
                raise ConnectionFailed(
                    f"TLS verification failed talking to Graph (check the CA bundle / REQUESTS_CA_BUNDLE): {_first_line(e)}",
                    url=url,
                    method=method,
                ) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
                self.stats.add(requests=1)
                if attempt < self.max_retries:
                    delay = backoff_delay(attempt, self.backoff_base)
                    attempt += 1
                    self.stats.add(retries=1)
                    logs.log(log, logging.INFO, "graph retry", method=method, url=_short_url(url), error=type(e).__name__, attempt=attempt, delay_s=round(delay, 2))
                    self.sleep(delay)
                    token = self._token()
                    continue
                self.stats.add(failed=1)
                raise ConnectionFailed(
                    f"Cannot reach Graph after {attempt + 1} attempts: {connection_reason(e)}", url=url, method=method
                ) from None
            except OSError as e:  # e.g. the configured CA bundle path does not exist
                self.stats.add(failed=1)
                raise ConnectionFailed(f"Cannot send the request to Graph: {_first_line(e)}", url=url, method=method) from None
            self.stats.add(requests=1)
            status = resp.status_code
            logs.log(log, logging.DEBUG, "graph response", method=method, url=_short_url(url), status=status)

            if 200 <= status < 300:
                if status == 204 or not resp.content:
                    return {}
                try:
                    return resp.json()
                except ValueError as e:
                    self.stats.add(failed=1)
                    raise BadResponse(
                        f"Graph returned malformed JSON ({e})", status=status, url=url, method=method
                    ) from None

            if status == 401 and not refreshed:
                refreshed = True
                self.stats.add(retries=1)
                logs.log(log, logging.INFO, "graph 401: refreshing the token once", method=method, url=_short_url(url))
                token = self._token(force=True, rejected=token)
                continue

            if _is_retryable(status):
                if status in (429, 503):
                    self.stats.add(throttled=1)
                if attempt < self.max_retries:
                    delay = self._delay(resp.headers.get("Retry-After"), attempt)
                    attempt += 1
                    self.stats.add(retries=1)
                    logs.log(log, logging.INFO, "graph retry", method=method, url=_short_url(url), status=status, attempt=attempt, delay_s=round(delay, 2))
                    resp.close()
                    self.sleep(delay)
                    token = self._token()
                    continue

            self.stats.add(failed=1)
            err = error_from_response(status, _body_of(resp), url=url, method=method, exhausted=attempt > 0)
            if status == 401:
                raise AuthError(
                    f"Tenant {self._tenant()}: Graph rejected a freshly issued access token"
                    + (f" ({err.code}: {err.message.split(': ', 1)[-1]})" if err.code else ""),
                    tenant=getattr(self.token_provider, "tenant_id", None),
                    status=401,
                    code=err.code,
                    url=url,
                    method=method,
                )
            if isinstance(err, (Throttled, ServerError)) and attempt:
                err.message = f"{err.message} (gave up after {attempt} {'retry' if attempt == 1 else 'retries'})"
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

        Inner 429/503/5xx are re-sent (only those) after the largest inner ``Retry-After`` of
        the round, up to ``max_retries`` times each; an inner 401 triggers one token refresh.
        Collections with ``follow_next`` get every page. ``on_result(index, response)`` is
        called in the calling thread as each request completes. Outer failures raise."""
        n = len(requests_)
        root = self.root(api_version)
        results: list[BatchResponse | None] = [None] * n
        urls = [self._inner_url(r.url, api_version) for r in requests_]
        attempts = [0] * n
        refreshed = [False] * n
        first_body: dict[int, dict[str, Any]] = {}
        values: dict[int, list[Any]] = {}
        seen: dict[int, set[str]] = {}
        pending = list(range(n))

        while pending:
            retry: list[int] = []
            more: list[int] = []
            wait = 0.0
            need_refresh: list[str] = []

            def finish(i: int, status: int, headers: dict[str, str], body: Any) -> None:
                first, pages = first_body.pop(i, None), values.pop(i, None)
                if not (200 <= status < 300):
                    self.stats.add(failed=1)  # a failed later page fails the whole collection
                elif first is not None:  # a followed collection: all pages as one body
                    body = dict(first)
                    body["value"] = pages
                    body.pop("@odata.nextLink", None)
                response = BatchResponse(
                    status=status, body=body, headers=headers, url=root + urls[i], method=requests_[i].method
                )
                results[i] = response
                if on_result:
                    on_result(i, response)

            def handle(chunk_index: int, answers: tuple[str, dict[int, tuple[int, dict[str, str], Any]]]) -> None:
                nonlocal wait
                token_used, by_index = answers
                for i, (status, headers, body) in by_index.items():
                    if 200 <= status < 300:
                        body = self._inner_json(body, headers, root + urls[i], status)
                        value = body.get("value") if isinstance(body, dict) else None
                        if requests_[i].follow_next and isinstance(value, list):
                            if i in first_body:
                                values[i].extend(value)
                            else:
                                first_body[i] = body
                                values[i] = list(value)
                            nxt = body.get("@odata.nextLink")
                            if nxt:
                                visited = seen.setdefault(i, set())
                                visited.add(root + urls[i])
                                nxt = self._next_link(body, root + urls[i], visited)
                                rel = self.relative_url(nxt, api_version) if nxt else None
                                if rel is not None:
                                    urls[i] = rel
                                    more.append(i)  # noqa: B023 - called within this round
                                    continue
                                if nxt:  # another API version: follow directly, page by page
                                    values[i].extend(self.get_all(nxt))
                        finish(i, status, headers, body)
                    elif status == 401 and not refreshed[i]:
                        refreshed[i] = True
                        need_refresh.append(token_used)  # noqa: B023
                        self.stats.add(retries=1)
                        retry.append(i)  # noqa: B023
                    elif _is_retryable(status) and attempts[i] < self.max_retries:
                        if status in (429, 503):
                            self.stats.add(throttled=1)
                        wait = max(wait, self._delay(_header(headers, "Retry-After"), attempts[i]))
                        attempts[i] += 1
                        self.stats.add(retries=1)
                        retry.append(i)  # noqa: B023
                    else:
                        if status in (429, 503):
                            self.stats.add(throttled=1)
                        finish(i, status, headers, body)

            chunks = chunked(pending, BATCH_LIMIT)
            self.run_parallel(lambda idxs: self._post_batch(idxs, urls, requests_, api_version), chunks, on_done=handle)
            if need_refresh:
                self._token(force=True, rejected=need_refresh[0])
            if retry:
                logs.log(log, logging.INFO, "$batch retry", requests=len(retry), delay_s=round(wait, 2))
                self.sleep(wait)
            pending = sorted(retry + more)

        return results  # type: ignore[return-value]  # every slot is filled once pending is empty

    def _inner_url(self, url: str, api_version: str | None) -> str:
        if url.startswith(("https://", "http://")):
            rel = self.relative_url(url, api_version)
            if rel is None:
                raise ValueError(f"batch URL must be under {self.root(api_version)}: {url}")
            return rel
        return "/" + url.lstrip("/")

    def _inner_json(self, body: Any, headers: Mapping[str, Any], url: str, status: int) -> Any:
        """Inner bodies are JSON objects; Graph base64-encodes non-JSON bodies as strings."""
        if isinstance(body, (dict, list)) or body is None:
            return body if body is not None else {}
        ctype = str(_header(headers, "Content-Type") or "")
        if isinstance(body, str) and "json" in ctype.lower():
            try:
                return json.loads(body)
            except ValueError as e:
                self.stats.add(failed=1)
                raise BadResponse(f"Graph returned malformed JSON inside $batch ({e})", status=status, url=url) from None
        self.stats.add(failed=1)
        raise BadResponse(
            f"Graph returned a non-JSON body inside $batch ({ctype or type(body).__name__})", status=status, url=url
        )

    def _post_batch(
        self, idxs: list[int], urls: list[str], reqs: Sequence[BatchRequest], api_version: str | None
    ) -> tuple[str, dict[int, tuple[int, dict[str, str], Any]]]:
        payload = []
        for i in idxs:
            r = reqs[i]
            item: dict[str, Any] = {"id": str(i), "method": r.method, "url": urls[i]}
            if r.headers:
                item["headers"] = dict(r.headers)
            if r.body is not None:
                item["body"] = r.body
                item.setdefault("headers", {}).setdefault("Content-Type", "application/json")
            payload.append(item)
        url = f"{self.root(api_version)}/$batch"
        token = self.token_provider.get_token()
        body = self._send("POST", url, {"requests": payload})
        self.stats.add(batched=len(idxs))
        responses = body.get("responses") if isinstance(body, dict) else None
        if not isinstance(responses, list):
            self.stats.add(failed=1)
            raise BadResponse("Graph's $batch answer has no 'responses' list", status=200, url=url, method="POST")
        wanted = set(idxs)
        out: dict[int, tuple[int, dict[str, str], Any]] = {}
        for r in responses:
            try:
                i = int(r["id"])
                status = int(r["status"])
            except (KeyError, TypeError, ValueError):
                self.stats.add(failed=1)
                raise BadResponse("Graph's $batch answer has a response without id/status", url=url, method="POST") from None
            if i in wanted:
                headers = r.get("headers") if isinstance(r.get("headers"), dict) else {}
                out[i] = (status, headers, r.get("body"))
        missing = wanted - set(out)
        if missing:
            self.stats.add(failed=1)
            raise BadResponse(
                f"Graph's $batch answer lacks {len(missing)} of {len(idxs)} responses", url=url, method="POST"
            )
        return token, out


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

