"""Microsoft Graph client layer: MSAL tokens, a retrying/paging/batching client, the Intune
policy-type table, and ``fetch_tenant`` that pulls every policy of one tenant.

Typical use::

    from tenantpilot.graph import TokenProvider, GraphClient, fetch_tenant

    tokens = TokenProvider(tenant_id, client_id, client_secret=secret)
    with GraphClient(tokens) as client:
        result = fetch_tenant(client)            # FetchResult(policies, warnings, requests, …)
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
from .fetch import FetchedPolicy, FetchResult, SkippedType, fetch_tenant
from .policy_types import FAMILIES, POLICY_TYPES, FollowUp, PolicyType, Route, types_by_family

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
