"""Graph's Intune throttle as the simulator enforces it: service families, their published limits, and a per-tenant, per-family sliding window.

Source: microsoft-graph-docs-contrib ``concepts/throttling-limits.md`` ("Intune service limits")
and its includes ``includes/throttling-intune-device-config-v2.md``, ``-device-configuration.md``,
``-device-intent.md``, ``-device-enrollment.md``, ``-managed-applications.md``, ``-updates.md``
(Any request: 2000 per 20 s per tenant for all apps, **1000 per 20 s per app per tenant**) and
``-devices.md`` (4000 / **2000**). Each request inside a ``$batch`` is evaluated on its own
(``concepts/json-batching.md``). The simulator models one app, so it enforces the per-app
column; ``budget_share`` < 1 models the other apps of the tenant eating into the tenant-wide
budget (our app then gets only that share).

This table is the simulator's own, written from the docs, and deliberately not imported from
``tenantpilot``: the stand-in must not share the client's mistakes. Collections the include
pages do not list are filed where they sit in the portal and marked ``[guess]``.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Mapping

_DM, _DAM = "deviceManagement", "deviceAppManagement"


def _under(root: str, *collections: str) -> tuple[tuple[str, str], ...]:
    return tuple((root, c) for c in collections)


# family -> (limit per app per tenant, window seconds, (root, collection) pairs; "*" = whole root)
FAMILY_LIMITS: dict[str, tuple[int, float, tuple[tuple[str, str], ...]]] = {
    "deviceConfigV2": (1000, 20.0, _under(
        _DM, "configurationPolicies", "compliancePolicies", "configurationSettings", "complianceSettings",
        "configurationCategories", "configurationPolicyTemplates", "reusablePolicySettings")),
    "deviceConfiguration": (1000, 20.0, _under(
        _DM, "deviceConfigurations", "deviceCompliancePolicies",
        "groupPolicyConfigurations", "groupPolicyDefinitions", "assignmentFilters")),  # last three [guess]
    "deviceIntent": (1000, 20.0, _under(_DM, "intents", "templates")),
    "enrollment": (1000, 20.0, _under(
        _DM, "deviceEnrollmentConfigurations", "windowsAutopilotDeploymentProfiles")),  # Autopilot [guess]
    "managedApplications": (1000, 20.0, _under(_DAM, "*")),
    "updates": (1000, 20.0, _under(
        _DM, "windowsFeatureUpdateProfiles", "windowsQualityUpdateProfiles", "windowsQualityUpdatePolicies",
        "windowsDriverUpdateProfiles")),  # driver profiles [guess]
    "devices": (2000, 20.0, _under(
        _DM, "deviceManagementScripts", "deviceShellScripts", "deviceHealthScripts", "deviceComplianceScripts",
        "managedDevices")),
}
_BY_SEGMENT = {(root.lower(), coll.lower()): family
               for family, (_, _, pairs) in FAMILY_LIMITS.items() for root, coll in pairs}


def service_family(path: str) -> str | None:
    """The family of a normalised Graph path (``/deviceManagement/configurationPolicies/…``)."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return None
    root = parts[0].lower()
    if len(parts) > 1 and (root, parts[1].lower()) in _BY_SEGMENT:
        return _BY_SEGMENT[(root, parts[1].lower())]
    return _BY_SEGMENT.get((root, "*"))


class FamilyThrottle:
    """Sliding 20 s windows per (tenant, family). ``admit`` counts a request and returns None, or
    returns the whole seconds until the window has room (the request is then not counted)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], collections.deque[float]] = {}

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()

    def admit(self, tenant_id: str, family: str, limits: Mapping[str, tuple[int, float]]) -> int | None:
        if family not in limits:
            return None
        limit, window = int(limits[family][0]), float(limits[family][1])
        with self._lock:
            stamps = self._windows.setdefault((tenant_id, family), collections.deque())
            now = time.monotonic()
            while stamps and stamps[0] <= now - window:
                stamps.popleft()
            if len(stamps) >= limit:
                wait = stamps[len(stamps) - limit] + window - now if limit > 0 else window
                return max(1, math.ceil(wait))
            stamps.append(now)
        return None


def effective_limits(budget_share: float, overrides: Mapping[str, tuple[int, float]] | None) -> dict[str, tuple[int, float]]:
    """Per-family (limit, window) our app gets: the published figure times ``budget_share``
    (at least 1 request per window unless the share is 0), then ``overrides`` as given."""
    out: dict[str, tuple[int, float]] = {}
    for family, (limit, window, _) in FAMILY_LIMITS.items():
        share = max(0.0, float(budget_share))
        out[family] = (max(1, int(limit * share)) if share > 0 else 0, window)
    for family, (limit, window) in (overrides or {}).items():
        out[family] = (int(limit), float(window))
    return out
