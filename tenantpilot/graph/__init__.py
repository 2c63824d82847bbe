"""Microsoft Graph client layer: MSAL tokens, a retrying/paging/batching client, the Intune
policy-type table, and ``fetch_tenant`` that pulls every policy of one tenant.

Typical use::

    from tenantpilot.graph import TokenProvider, GraphClient, fetch_tenant

    tokens = TokenProvider(tenant_id, client_id, client_secret=secret)
    with GraphClient(tokens, deadline=time.monotonic() + 1800, on_wait=show) as client:
        result = fetch_tenant(client)   # FetchResult(policies, read_types, skipped, dropped, warnings, …)

Modules: ``auth`` (tokens), ``client`` (requests, paging, ``$batch``), ``retry`` (the one retry
rule), ``throttle`` (service families, published limits, the pacer), ``policy_types`` (the
table), ``fetch`` (a whole tenant), ``errors`` (the error tree).
"""

from .auth import TokenProvider, certificate_thumbprint
from .client import BatchRequest, BatchResponse, GraphClient, RequestStats
from .errors import (
    AuthError,
    BadResponse,
    ConnectionFailed,
    GraphError,
    NotFound,
    PermissionDenied,
    ServerError,
    Throttled,
)
from .fetch import (
    FetchedPolicy,
    FetchResult,
    SkippedType,
    covering_policies,
    fetch_definitions,
    fetch_expanded_settings,
    fetch_template_definitions,
    fetch_tenant,
)
from .policy_types import FAMILIES, POLICY_TYPES, FollowUp, PolicyType, Route, types_by_family
from .retry import Attempts, Decision, RetryPolicy
from .throttle import PUBLISHED_LIMITS, SERVICE_FAMILIES, Pacer, family_of

__all__ = [
    "TokenProvider",
    "certificate_thumbprint",
    "GraphClient",
    "BatchRequest",
    "BatchResponse",
    "RequestStats",
    "GraphError",
    "AuthError",
    "PermissionDenied",
    "NotFound",
    "Throttled",
    "ServerError",
    "BadResponse",
    "ConnectionFailed",
    "fetch_tenant",
    "fetch_definitions",
    "fetch_expanded_settings",
    "covering_policies",
    "fetch_template_definitions",
    "RetryPolicy",
    "Decision",
    "Attempts",
    "Pacer",
    "PUBLISHED_LIMITS",
    "SERVICE_FAMILIES",
    "family_of",
    "FetchResult",
    "FetchedPolicy",
    "SkippedType",
    "POLICY_TYPES",
    "FAMILIES",
    "PolicyType",
    "FollowUp",
    "Route",
    "types_by_family",
]
