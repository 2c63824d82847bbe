"""Intune's throttle, on our side: the service family of a URL, the published limits (one table, as data), and the pacer that keeps each tenant's requests under them.

Graph throttles Intune per *service family*, per app, per tenant, over a sliding 20 s window,
and every request inside a ``$batch`` counts on its own (microsoft-graph-docs-contrib
``concepts/throttling-limits.md`` and its ``includes/throttling-intune-*.md``; ``json-batching.md``).
One :class:`GraphClient` talks to one tenant, so one :class:`Pacer` per client paces one tenant.

The pacer counts a request from the moment it is let go until ``window`` seconds after its answer
came back (Graph counted it somewhere in between), so it never sends more than the limit inside
any window Graph may be looking at. On a 429 it halves that family's limit (multiplicative
decrease: the tenant's budget is shared with every other app the customer runs, so our share
can be far below the published figure); after a run of successes it adds back a step (additive
increase), up to the published limit.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = [
    "ServiceFamily",
    "SERVICE_FAMILIES",
    "PUBLISHED_LIMITS",
    "family_of",
    "Pacer",
]


@dataclass(frozen=True)
class ServiceFamily:
    """One Intune service family: its published "Any request" limit per app per tenant, and the
    Graph collections (first path segments under ``/deviceManagement`` or ``/deviceAppManagement``)
    it covers. ``collections=("*",)`` covers a whole root."""

    name: str
    limit: int  # requests per window, per app per tenant
    window_s: float
    root: str  # "deviceManagement" | "deviceAppManagement"
    collections: tuple[str, ...]
    source: str  # where the figure is published ([guess] marks a collection the page does not list)


_DOCS = "microsoft-graph-docs-contrib includes/"

# The one table. Limits: "Any" request type, "Limit per app per tenant" column of each include.
SERVICE_FAMILIES: tuple[ServiceFamily, ...] = (
    ServiceFamily(
        "deviceConfigV2", 1000, 20.0, "deviceManagement",
        ("configurationPolicies", "compliancePolicies", "configurationSettings", "complianceSettings",
         "configurationCategories", "complianceCategories", "configurationPolicyTemplates",
         "reusablePolicySettings"),
        _DOCS + "throttling-intune-device-config-v2.md",
    ),
    ServiceFamily(
        "deviceConfig", 1000, 20.0, "deviceManagement",
        ("deviceConfigurations", "deviceCompliancePolicies",
         # not listed on any include page; filed with the legacy profiles they sit beside [guess]
         "groupPolicyConfigurations", "groupPolicyDefinitions", "groupPolicyDefinitionFiles",
         "groupPolicyUploadedDefinitionFiles", "assignmentFilters",
         "settings"),  # the tenant-wide deviceManagement settings are not listed either [guess]
        _DOCS + "throttling-intune-device-configuration.md",
    ),
    ServiceFamily(
        "deviceIntent", 1000, 20.0, "deviceManagement", ("intents", "templates"),
        _DOCS + "throttling-intune-device-intent.md",
    ),
    ServiceFamily(
        "deviceEnrollment", 1000, 20.0, "deviceManagement",
        ("deviceEnrollmentConfigurations", "complianceManagementPartners", "deviceCategories",
         "deviceManagementPartners",
         "windowsAutopilotDeploymentProfiles",  # Autopilot profiles are not listed [guess]
         "depOnboardingSettings", "applePushNotificationCertificate"),  # Apple enrollment: not listed [guess]
        _DOCS + "throttling-intune-device-enrollment.md",
    ),
    ServiceFamily(
        "rbac", 1000, 20.0, "deviceManagement",
        ("roleDefinitions", "roleAssignments", "resourceOperations",
         "roleScopeTags"),  # scope tags are not listed [guess]
        _DOCS + "throttling-intune-rbac.md",
    ),
    ServiceFamily(
        "notifications", 1000, 20.0, "deviceManagement", ("notificationMessageTemplates",),
        _DOCS + "throttling-intune-notifications.md",
    ),
    ServiceFamily(
        "remoteAssistance", 1000, 20.0, "deviceManagement", ("remoteAssistancePartners",),
        _DOCS + "throttling-intune-remote-assistance.md",
    ),
    ServiceFamily(
        "androidForWork", 1000, 20.0, "deviceManagement", ("androidManagedStoreAccountEnterpriseSettings",),
        _DOCS + "throttling-intune-android-for-work.md",
    ),
    ServiceFamily(
        "managedApplications", 1000, 20.0, "deviceAppManagement", ("*",),
        _DOCS + "throttling-intune-managed-applications.md",
    ),
    ServiceFamily(
        "updates", 1000, 20.0, "deviceManagement",
        ("windowsFeatureUpdateProfiles", "windowsQualityUpdateProfiles", "windowsQualityUpdatePolicies",
         "windowsDriverUpdateProfiles"),  # driver profiles are not listed [guess]
        _DOCS + "throttling-intune-updates.md",
    ),
    ServiceFamily(
        "devices", 2000, 20.0, "deviceManagement",
        ("deviceManagementScripts", "deviceShellScripts", "deviceHealthScripts", "deviceComplianceScripts",
         "deviceCustomAttributeShellScripts", "managedDevices"),
        _DOCS + "throttling-intune-devices.md",
    ),
)

#: family name -> (limit, window seconds): what a :class:`Pacer` is sized to by default.
PUBLISHED_LIMITS: dict[str, tuple[int, float]] = {f.name: (f.limit, f.window_s) for f in SERVICE_FAMILIES}

_BY_SEGMENT: dict[tuple[str, str], str] = {
    (f.root.lower(), c.lower()): f.name for f in SERVICE_FAMILIES for c in f.collections
}
_VERSIONS = ("beta", "v1.0")


def family_of(url: str) -> str | None:
    """The Intune service family a Graph URL (absolute, or a path under the version root, query
    allowed) is throttled under; None for anything else (directory, ``$batch`` itself, tokens)."""
    path = urlsplit(url).path if "://" in url else url.split("?", 1)[0]
    parts = [p for p in path.split("/") if p]
    if parts and parts[0].lower() in _VERSIONS:
        parts = parts[1:]
    if not parts:
        return None
    root = parts[0].lower()
    if len(parts) > 1:
        segment = parts[1].split("(", 1)[0].lower()  # configurationPolicies('id') key segments
        found = _BY_SEGMENT.get((root, segment))
        if found:
            return found
    return _BY_SEGMENT.get((root, "*"))


# ---------------------------------------------------------------------------------------
# The pacer
# ---------------------------------------------------------------------------------------


@dataclass
class _Window:
    limit: int  # published (or configured) limit
    window_s: float
    factor: float = 1.0  # AIMD share of the limit we allow ourselves
    in_flight: int = 0
    used: int = 0  # units in `stamps`
    successes: int = 0  # successes since the last change of `factor`
    last_decrease: float = float("-inf")

    def __post_init__(self) -> None:
        self.stamps: deque[tuple[float, int]] = deque()  # (answer time, units)

    @property
    def allowed(self) -> int:
        return max(1, int(self.limit * self.factor))

    def expire(self, now: float) -> None:
        while self.stamps and self.stamps[0][0] <= now - self.window_s:
            self.used -= self.stamps.popleft()[1]

    def wait_for(self, n: int, now: float) -> float:
        """0 when ``n`` more units fit now, else seconds until they may (a guess when only
        requests still in flight stand in the way)."""
        self.expire(now)
        busy = self.used + self.in_flight
        if busy == 0 or busy + n <= self.allowed:
            return 0.0
        need = busy + n - self.allowed  # units that must leave the window first
        freed = 0
        for stamp, units in self.stamps:
            freed += units
            if freed >= need:
                return max(0.01, stamp + self.window_s - now)
        return 0.05  # waiting on answers still in flight


class Pacer:
    """Per-family sliding-window pacing with AIMD, thread-safe. ``limits`` maps a family to
    ``(limit, window_s)``; families not in it are not paced."""

    def __init__(
        self,
        limits: Mapping[str, tuple[int, float]] = PUBLISHED_LIMITS,
        *,
        clock: Callable[[], float] = time.monotonic,
        min_factor: float = 1 / 64,
        increase_step: float = 0.05,
        decrease_gap_s: float = 2.0,
    ) -> None:
        self.clock = clock
        self.min_factor = min_factor
        self.increase_step = increase_step
        self.decrease_gap_s = decrease_gap_s
        self._lock = threading.Lock()
        self._windows = {name: _Window(int(limit), float(window)) for name, (limit, window) in limits.items()}

    def reserve(self, cost: Mapping[str, int]) -> float:
        """Let ``cost`` (family -> requests) go now and count it as in flight (returns 0), or
        return the seconds to wait before asking again (nothing is counted then)."""
        with self._lock:
            now = self.clock()
            wait = 0.0
            for family, n in cost.items():
                window = self._windows.get(family)
                if window is not None and n > 0:
                    wait = max(wait, window.wait_for(n, now))
            if wait > 0:
                return wait
            for family, n in cost.items():
                window = self._windows.get(family)
                if window is not None and n > 0:
                    window.in_flight += n
            return 0.0

    def release(self, cost: Mapping[str, int]) -> None:
        """The requests of a :meth:`reserve` were answered (or failed): they stay in the window
        until ``window_s`` after now."""
        with self._lock:
            now = self.clock()
            for family, n in cost.items():
                window = self._windows.get(family)
                if window is not None and n > 0:
                    window.in_flight = max(0, window.in_flight - n)
                    window.stamps.append((now, n))
                    window.used += n

    def throttled(self, families: Iterable[str]) -> None:
        """Graph answered 429 for these families: halve what we allow ourselves (once per
        ``decrease_gap_s``, so one burst of 429s is one decrease)."""
        with self._lock:
            now = self.clock()
            for family in set(families):
                window = self._windows.get(family)
                if window is None or now - window.last_decrease < self.decrease_gap_s:
                    continue
                window.factor = max(self.min_factor, window.factor / 2)
                window.last_decrease = now
                window.successes = 0

    def succeeded(self, family: str, n: int = 1) -> None:
        """``n`` requests of a family were answered without throttling: after a run of them as long
        as a tenth of what we allow (at least 10), allow ``increase_step`` of the limit more."""
        with self._lock:
            window = self._windows.get(family)
            if window is None or window.factor >= 1.0:
                return
            window.successes += n
            if window.successes >= max(10, window.allowed // 10):
                window.factor = min(1.0, window.factor + self.increase_step)
                window.successes = 0

    def snapshot(self) -> dict[str, dict[str, float]]:
        """family -> {limit, allowed, factor, in_window, in_flight} (for tests and benchmarks)."""
        with self._lock:
            now = self.clock()
            out = {}
            for name, window in self._windows.items():
                window.expire(now)
                out[name] = {"limit": window.limit, "allowed": window.allowed, "factor": window.factor,
                             "in_window": window.used, "in_flight": window.in_flight}
            return out
