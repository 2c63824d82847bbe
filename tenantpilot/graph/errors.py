"""Errors raised by the Graph client layer.

Every error the layer raises is a :class:`GraphError`, so a caller that only wants
"the sync failed, tell the user why" catches one class and shows ``str(err)``. The
subclasses carry their meaning so callers can act on them::

    GraphError(Exception)        .status .code .url .message; str() is user-facing
    ├── AuthError                the token endpoint refused us (names the tenant and the
    │                            AADSTS code, never the secret), or Graph kept answering
    │                            401 after one forced token refresh
    ├── PermissionDenied         403; .missing_permissions parsed from Intune's body
    ├── NotFound                 404
    ├── Throttled                429 answers still coming after every retry, or the next wait
    │                            (Retry-After, backoff, or our own pacing) would pass the run's
    │                            deadline; .wait_s is that wait when known
    ├── ServerError              5xx responses still coming after every retry
    ├── BadResponse              the body is not JSON, or not the shape Graph promises
    └── ConnectionFailed         DNS, refused connection, TLS failure, timeouts after retries

400 and other 4xx answers are plain ``GraphError`` carrying Graph's ``error.code`` and
``error.message``.

Messages never contain access tokens or client secrets.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "GraphError",
    "AuthError",
    "PermissionDenied",
    "NotFound",
    "Throttled",
    "ServerError",
    "BadResponse",
    "ConnectionFailed",
    "error_from_response",
    "parse_graph_error",
    "parse_missing_permissions",
]


class GraphError(Exception):
    """A Graph call failed. ``str()`` is meant to be shown to the user as is."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        url: str | None = None,
        method: str = "GET",
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.url = url
        self.method = method
        self.detail = detail  # Graph's own error.message (unwrapped), when there was one

    def __str__(self) -> str:
        head = self.message
        bits = []
        if self.status is not None:
            bits.append(str(self.status))
        if self.code and self.code not in head:
            bits.append(self.code)
        if bits:
            head = f"{head} ({' '.join(bits)})"
        if self.url:
            head = f"{head} [{self.method} {self.url}]"
        return head

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, url={self.url!r}, message={self.message!r})"


class AuthError(GraphError):
    """Sign-in failed: the token endpoint returned an error, or Graph rejected fresh tokens.

    ``.tenant`` is the tenant we signed in to, ``.aadsts`` the ``AADSTSnnnn`` code when known.
    """

    def __init__(
        self,
        message: str,
        *,
        tenant: str | None = None,
        aadsts: str | None = None,
        status: int | None = None,
        code: str | None = None,
        url: str | None = None,
        method: str = "POST",
        detail: str | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code, url=url, method=method, detail=detail)
        self.tenant = tenant
        self.aadsts = aadsts

    def __str__(self) -> str:
        # The message is complete on its own ("Tenant x: sign-in failed (AADSTS…: …)").
        if self.url and self.status == 401:
            return f"{self.message} [{self.method} {self.url}]"
        return self.message


class PermissionDenied(GraphError):
    """403. ``missing_permissions`` lists the scopes Intune says would be enough (any one of)."""

    def __init__(self, message: str, *, missing_permissions: tuple[str, ...] = (), **kw: Any) -> None:
        super().__init__(message, **kw)
        self.missing_permissions = tuple(missing_permissions)


class NotFound(GraphError):
    """404: the resource (or the whole endpoint) does not exist in this tenant / API version."""


class Throttled(GraphError):
    """429 answers kept coming after every retry, or waiting once more would pass the deadline.

    ``wait_s``: the wait that was not taken (seconds), when known."""

    def __init__(self, message: str, *, wait_s: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.wait_s = wait_s


class ServerError(GraphError):
    """5xx answers kept coming after every retry."""


class BadResponse(GraphError):
    """Graph answered 2xx but the body is not JSON or not the expected shape. Names the URL."""


class ConnectionFailed(GraphError):
    """Could not talk to Graph or the token authority (DNS, refused, TLS, timeout)."""


# ---------------------------------------------------------------------------------------
# Parsing Graph's error bodies
# ---------------------------------------------------------------------------------------

_SCOPES_RE = re.compile(
    r"must have one of the following scopes:\s*(?P<scopes>.+?)(?:\s+-\s|\s*\"|\s*$)",
    re.IGNORECASE | re.DOTALL,
)
_SCOPE_TOKEN_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z0-9]+)+$")


def parse_graph_error(body: Any) -> tuple[str | None, str | None]:
    """Return ``(error.code, human message)`` from a Graph error body (dict or JSON text).

    Intune's 403s put a JSON *document* in ``error.message``; its ``Message`` field is the
    human text, so it is unwrapped. Unknown shapes give ``(None, None)`` or the raw text.
    """
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        text = body.strip()
        if not text:
            return None, None
        try:
            body = json.loads(text)
        except ValueError:
            return None, text[:500]
    if not isinstance(body, dict):
        return None, None
    err = body.get("error")
    if not isinstance(err, dict):
        if isinstance(err, str):  # OAuth-style {"error": "...", "error_description": "..."}
            return err, body.get("error_description") or err
        return None, None
    code = err.get("code") if isinstance(err.get("code"), str) else None
    message = err.get("message")
    if isinstance(message, str):
        inner = message.strip()
        if inner.startswith("{"):
            try:
                doc = json.loads(inner)
            except ValueError:
                doc = None
            if isinstance(doc, dict):
                for k in ("Message", "message"):
                    if isinstance(doc.get(k), str):
                        message = doc[k]
                        break
    elif message is not None:
        message = str(message)
    return code, message


def parse_missing_permissions(message: str | None) -> tuple[str, ...]:
    """Scopes named by "Application must have one of the following scopes: A, B - Activity ID …"."""
    if not message:
        return ()
    m = _SCOPES_RE.search(message)
    if not m:
        return ()
    out: list[str] = []
    for part in m.group("scopes").split(","):
        tok = part.strip().rstrip(".").strip()
        if _SCOPE_TOKEN_RE.match(tok) and tok not in out:
            out.append(tok)
    return tuple(out)


def preferred_permission(scopes: tuple[str, ...]) -> str | None:
    """The least-privileged scope of a list: the first ``*.Read.All``, else the first."""
    for s in scopes:
        if s.endswith(".Read.All"):
            return s
    return scopes[0] if scopes else None


def error_from_response(
    status: int,
    body: Any,
    *,
    url: str,
    method: str = "GET",
    exhausted: bool = False,
) -> GraphError:
    """Build the right :class:`GraphError` subclass for an HTTP error answer.

    ``exhausted`` marks a retryable status (429/5xx) that kept failing after all retries.
    """
    code, message = parse_graph_error(body)
    kw: dict[str, Any] = {"status": status, "code": code, "url": url, "method": method,
                          "detail": _short(message) if message else None}
    if status == 403:
        missing = parse_missing_permissions(message)
        text = "Permission denied by Graph"
        if missing:
            text += f": the app needs one of {', '.join(missing)}"
        elif message:
            text += f": {_short(message)}"
        return PermissionDenied(text, missing_permissions=missing, **kw)
    if status == 404:
        return NotFound(f"Not found: {_short(message) if message else 'no such resource'}", **kw)
    if status == 429:
        return Throttled(
            "Graph kept throttling (429) after every retry" + (f": {_short(message)}" if message else ""), **kw
        )
    if status >= 500:
        what = "kept failing" if exhausted else "failed"
        return ServerError(f"Graph {what} with a server error" + (f": {_short(message)}" if message else ""), **kw)
    if status == 401:
        return AuthError(
            "Graph rejected the access token" + (f": {_short(message)}" if message else ""),
            **kw,
        )
    return GraphError(f"Graph refused the request: {_short(message) if message else 'no details'}", **kw)


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
