"""The one retry rule, shared by single requests and every inner request of a ``$batch``: given what came back and what was tried so far, retry (after how long), refresh the token, or give up (with which note).

Pure: no clock, no sleep, no I/O; the caller passes ``now`` and the run's ``deadline`` and does
the waiting. The rule (docs/graph-intune.md §4, §7):

* **2xx**: done.
* **401**: one forced token refresh, then give up (:class:`AuthError` upstream).
* **429**: wait ``Retry-After`` (clamped to ``max_retry_after``); without a usable header back off
  ``min(2**n * throttle_backoff_base, max_backoff)`` with jitter (IntuneCD's rule). With a
  deadline, keep retrying while the wait ends before it; without one, at most ``max_retries``.
* **503 and other transient 5xx** (not 501/505) and **connection errors / timeouts**: ``Retry-After``
  when a 5xx sends one, else ``min(2**n * backoff_base, max_backoff)`` with jitter; at most
  ``max_retries``, and never past the deadline.
* **anything else** (400, 403, 404, other 4xx, 501, 505, TLS failures): give up at once.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timezone
from typing import Any, Literal

__all__ = [
    "MAX_BACKOFF",
    "Attempts",
    "Decision",
    "RetryPolicy",
    "parse_retry_after",
    "backoff_delay",
    "retry_delay",
    "is_transient",
    "CONNECTION",
]

MAX_BACKOFF = 60.0
CONNECTION = "connection"  # the outcome of a request that got no HTTP answer (refused, reset, timed out)

Outcome = int | str  # an HTTP status, or CONNECTION


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


def is_transient(status: int) -> bool:
    """429 and the 5xx worth another try (501 Not Implemented and 505 never change)."""
    return status == 429 or (status >= 500 and status not in (501, 505))


@dataclass
class Attempts:
    """What one logical request has been through so far (one per GET, one per inner request)."""

    retries: int = 0  # re-sent after a 5xx or a connection error
    throttled: int = 0  # re-sent after a 429
    refreshed: bool = False  # the token was force-refreshed once for it
    waited_s: float = 0.0

    def count(self, decision: Decision) -> None:
        """Book a decision the caller is about to carry out."""
        if decision.action == "refresh":
            self.refreshed = True
        elif decision.action == "retry":
            if decision.reason == "throttle":
                self.throttled += 1
            else:
                self.retries += 1
            self.waited_s += decision.delay

    @property
    def total(self) -> int:
        return self.retries + self.throttled


@dataclass(frozen=True)
class Decision:
    """``action``: ``done`` (a 2xx), ``refresh`` (force a new token, send again at once),
    ``retry`` (send again after ``delay`` s; ``reason`` is ``throttle``, ``server`` or
    ``connection``) or ``fail`` (``note`` says why, for the error message)."""

    action: Literal["done", "refresh", "retry", "fail"]
    delay: float = 0.0
    reason: str = ""
    note: str = ""


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 6
    backoff_base: float = 1.0
    throttle_backoff_base: float = 10.0
    max_backoff: float = MAX_BACKOFF
    max_retry_after: float = 300.0

    def decide(
        self,
        outcome: Outcome,
        attempts: Attempts,
        *,
        retry_after: Any = None,
        now: float = 0.0,
        deadline: float | None = None,
        rng: Callable[[], float] = random.random,
    ) -> Decision:
        """What to do after ``outcome`` (an HTTP status, or :data:`CONNECTION`)."""
        if outcome == CONNECTION:
            return self._bounded(attempts, None, now, deadline, rng, "connection")
        status = int(outcome)
        if 200 <= status < 300:
            return Decision("done")
        if status == 401:
            if attempts.refreshed:
                return Decision("fail", note="rejected again after a token refresh")
            return Decision("refresh", reason="auth")
        if status == 429:
            delay = retry_delay(retry_after, attempts.throttled, self.throttle_backoff_base, cap=self.max_backoff,
                                max_retry_after=self.max_retry_after, rng=rng)
            if deadline is None:
                if attempts.throttled >= self.max_retries:
                    return Decision("fail", delay, "throttle", _gave_up(attempts.throttled))
                return Decision("retry", delay, "throttle")
            if now + delay > deadline:
                return Decision("fail", delay, "throttle", _past_deadline(delay, deadline - now))
            return Decision("retry", delay, "throttle")
        if is_transient(status):
            return self._bounded(attempts, retry_after, now, deadline, rng, "server")
        return Decision("fail")

    def _bounded(self, attempts: Attempts, retry_after: Any, now: float, deadline: float | None,
                 rng: Callable[[], float], reason: str) -> Decision:
        if attempts.retries >= self.max_retries:
            return Decision("fail", reason=reason, note=_gave_up(attempts.retries))
        delay = retry_delay(retry_after, attempts.retries, self.backoff_base, cap=self.max_backoff,
                            max_retry_after=self.max_retry_after, rng=rng)
        if deadline is not None and now + delay > deadline:
            return Decision("fail", delay, reason, _past_deadline(delay, deadline - now))
        return Decision("retry", delay, reason)


def _gave_up(n: int) -> str:
    return f"gave up after {n} {'retry' if n == 1 else 'retries'}"


def _past_deadline(delay: float, left: float) -> str:
    return f"the next wait ({delay:.0f} s) would pass the sync deadline ({max(0.0, left):.0f} s left)"
