"""Local stand-in for Microsoft Graph (Intune) and the Entra ID token endpoint.

* :func:`build_tenant` / :class:`SimTenant` — deterministic tenants in Graph's resource shape
  (:mod:`.tenants`), built from real exports in ``corpus/`` (:data:`CORPUS_DIR`, the repository's one
  copy of them, which the tests read too) and hand-written shapes (:mod:`.synthetic`).
* :class:`GraphSimulator` — HTTPS server (trustme CA) serving Graph beta/v1.0, ``$batch`` and the
  token authority on one URL, with knobs for latency, throttling, faults and errors (:mod:`.server`).
* :func:`serve_forever`, :data:`DEMO_TENANTS` — the demo mode (:mod:`.demo`).
"""

from graphsim.catalog import CORPUS_DIR
from graphsim.demo import DEMO_TENANTS, build_demo_tenants, serve_forever
from graphsim.server import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, GraphSimulator
from graphsim.tenants import COLLECTIONS, FAMILIES, SimPolicy, SimTenant, build_tenant

__all__ = [
    "CORPUS_DIR",
    "COLLECTIONS",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEMO_TENANTS",
    "FAMILIES",
    "GraphSimulator",
    "SimPolicy",
    "SimTenant",
    "build_demo_tenants",
    "build_tenant",
    "serve_forever",
]
