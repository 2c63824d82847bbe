"""Outbound HTTP for alerts: one POST with a deadline for the whole call, redirects never followed.

`requests` limits each read, not the call: a receiver that answers one byte every few seconds holds
it for ever. Here the call runs on `http.client` with a watchdog: when the deadline passes, the
connection's socket is shut down, so whatever read or write is blocked returns at once, whether
the receiver drips its TLS handshake, its status line, its headers or its body. A 3xx answer is a
failure naming the redirect (the body is never re-posted to wherever it points). Proxies from the
environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) are honoured; TLS is verified against the system's
CAs or REQUESTS_CA_BUNDLE. Errors never hold the URL (webhook URLs are secrets): only the channel.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import threading
import time
import urllib.request
from types import TracebackType
from urllib.parse import urlsplit

MAX_ANSWER_BYTES = 64_000  # what is read of a receiver's answer body (it is only drained, never used)


class CallFailed(RuntimeError):
    """The POST got no usable answer: `outcome` is an HTTP status or "connection" (the retry rule's input)."""

    def __init__(self, message: str, outcome: int | str) -> None:
        super().__init__(message)
        self.outcome = outcome


class _Watchdog:
    """Shuts the connection's socket down when the deadline passes (from a timer thread)."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.fired = False
        self._fd: int | None = None
        self._done = False
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.fired = True
            raise TimeoutError("deadline passed")
        return left

    def adopt(self, sock: socket.socket) -> socket.socket:
        """The connection's socket (its descriptor survives the TLS wrap)."""
        with self._lock:
            self._fd = sock.fileno()
        return sock

    def _fire(self) -> None:
        with self._lock:  # the descriptor is closed only after `__exit__`, which holds this lock
            if self._done:
                return
            self.fired = True
            if self._fd is None:
                return
            try:
                twin = socket.socket(fileno=os.dup(self._fd))
                try:
                    twin.shutdown(socket.SHUT_RDWR)
                finally:
                    twin.close()
            except OSError:
                pass

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()


def _proxy_for(scheme: str, host: str) -> tuple[str, int] | None:
    if urllib.request.proxy_bypass(host):
        return None
    proxy = urllib.request.getproxies_environment().get(scheme)
    if not proxy:
        return None
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    return (parts.hostname or "", parts.port or 8080) if parts.hostname else None


def _connection(url: str, watchdog: _Watchdog, ca_bundle: str | None) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    host, https = parts.hostname or "", parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    proxy = _proxy_for(parts.scheme, host)
    timeout = watchdog.remaining()
    conn: http.client.HTTPConnection
    if https:
        context = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else ssl.create_default_context()
        conn = http.client.HTTPSConnection(*(proxy or (host, port)), timeout=timeout, context=context)
        if proxy:
            conn.set_tunnel(host, port)
    else:
        conn = http.client.HTTPConnection(*(proxy or (host, port)), timeout=timeout)
        if proxy:
            target = url
    opened = conn._create_connection  # type: ignore[attr-defined]  # http.client's socket factory
    conn._create_connection = lambda *a, **k: watchdog.adopt(opened(*a, **k))  # type: ignore[attr-defined]
    return conn, target


def post_json(url: str, body: bytes, *, what: str, deadline_s: float, ca_bundle: str | None = None) -> int:
    """POST `body` as JSON; the status of a 2xx answer. CallFailed (naming `what`, never the URL) for any
    other answer, a redirect, no answer, or an answer not complete within `deadline_s` seconds."""
    status: int | None = None
    failure: Exception | None = None
    with _Watchdog(deadline_s) as watchdog:
        try:
            conn, target = _connection(url, watchdog, ca_bundle)
        except (OSError, ValueError) as exc:  # a CA bundle that cannot be read, a malformed port
            raise CallFailed(f"{what}: cannot connect ({type(exc).__name__})", "connection") from None
        try:
            conn.request("POST", target, body=body, headers={"Content-Type": "application/json; charset=utf-8",
                                                            "User-Agent": "TenantPilot-alerts"})
            response = conn.getresponse()
            status = response.status
            response.read(MAX_ANSWER_BYTES)  # the whole answer within the deadline too
        except (OSError, http.client.HTTPException, ValueError) as exc:
            failure = exc
        finally:
            conn.close()
    # a socket shut down by the watchdog may read as a clean end (EOF): the deadline decides first
    if watchdog.fired:
        raise CallFailed(f"{what}: no complete answer within {deadline_s:g} s (the receiver is too slow; "
                         f"answer status {status or 'not received'})", "connection")
    if failure is not None and not (status is not None and 200 <= status < 300):  # 2xx: taken, closed early
        raise CallFailed(f"{what}: no answer ({type(failure).__name__})", "connection")
    assert status is not None
    if 300 <= status < 400:
        location = response.getheader("Location")
        # the target's host only: a path may hold a secret as the configured URL's does
        shown = (urlsplit(location).hostname or "a relative address") if location else "no Location"
        raise CallFailed(f"{what}: HTTP {status} redirect (to {shown}) not followed: configure the receiver's "
                         f"final URL", status)
    if not 200 <= status < 300:
        raise CallFailed(f"{what}: HTTP {status}", status)
    return status
