"""The local HTTPS Graph simulator and token authority, on one URL.

Why one module of ~1,000 lines: HTTPS, the token authority's routes, every fault knob and the control
API share one request loop and its locks; the Graph routes themselves are in graphapi.py.

    with GraphSimulator({t.tenant_id: t}, latency=0.05) as sim:
        app = msal.ConfidentialClientApplication(sim.client_id, client_credential=sim.client_secret,
                  authority=f"{sim.url}/{t.tenant_id}", instance_discovery=False, verify=sim.ca_path)
        token = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])["access_token"]
        requests.get(f"{sim.url}/beta/deviceManagement/configurationPolicies",
                     headers={"Authorization": f"Bearer {token}"}, verify=sim.ca_path)

Served (see :mod:`graphsim.graphapi` for the Graph resources):

* ``GET /{tenant}/v2.0/.well-known/openid-configuration``, ``POST /{tenant}/oauth2/v2.0/token``
  (client secret or certificate assertion), ``GET /common/discovery/instance``;
* ``/beta/…`` and ``/v1.0/…`` Graph resources and ``POST /{version}/$batch`` (≤ 20 requests);
* ``/_sim/…``: a small control API for a simulator running in another process.

Knobs are plain attributes, safe to change at any time from any thread: ``latency`` (seconds per
request; one per $batch), ``throttle`` (``(limit, window_seconds)`` per tenant, each $batch item
counts), ``fault_rate`` (random 500/502/503), ``forbidden_paths`` / ``malformed_paths`` (path
prefixes such as ``/deviceManagement/groupPolicyConfigurations``), ``drop_retry_after``,
``allow_plain_text_secrets`` (getOmaSettingPlainTextValue answers instead of 403),
``batch_shuffle`` (inner responses out of order, as Graph may return them), ``token_lifetime``;
and, off by default, what real Graph does that a sync must survive (sources in README.md):
``vanish_after_list`` (policies deleted after they were listed answer 400 ResourceNotFound),
``family_throttle`` / ``budget_share`` / ``family_limits`` (Intune's per-family limits, each $batch
item counted), ``failing_paths`` / ``failing_later_pages`` (persistent failures on a prefix, or on
pages after the first), ``unsupported_device_configurations``, ``mixed_app_policies``;
plus :meth:`GraphSimulator.fail_next` (``path_prefix="/$batch"``: the POST itself),
:meth:`vanish`, :meth:`expire_tokens_after`, :meth:`revoke_all_tokens`.

Thread model: ThreadingHTTPServer (one thread per connection, HTTP/1.1 keep-alive), TLS
handshakes in the connection thread; per-tenant locks for throttling, short locks for counters.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import math
import random
import re
import shutil
import socket
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from graphsim.authority import TokenAuthority
from graphsim.catalog import load_catalog
from graphsim.graphapi import (
    SPECS,
    GraphApi,
    GraphRequest,
    GraphResponse,
    error_body,
    forbidden_message,
    intune_message,
    normalise_path,
)
from graphsim.limits import FamilyThrottle, effective_limits, service_family
from graphsim.tenants import COLLECTIONS, SimPolicy, SimTenant

JSON = dict[str, Any]

DEFAULT_CLIENT_ID = "5f0c3a3e-7d1b-4b9a-9a57-3c3f2a1e9b10"
DEFAULT_CLIENT_SECRET = "TPsim~demo.Secret_0nly-for-the-local-simulator"
CA_FILENAME = "simulator-ca.pem"
MAX_BATCH = 20
GRAPH_JSON = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
_DIAGNOSTIC = ('{"ServerInfo":{"DataCenter":"West Europe","Slice":"E","Ring":"5","ScaleUnit":"004",'
               '"RoleInstance":"AM2PEPF0001A3C5"}}')
_FAULTS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "Bad request."),
    401: ("InvalidAuthenticationToken", "Access token has expired or is not yet valid."),
    404: ("ResourceNotFound", "Resource not found."),
    408: ("RequestTimeout", "The request timed out."),
    429: ("TooManyRequests", "Too many requests."),
    500: ("InternalServerError", "An internal server error occurred."),
    502: ("BadGateway", "The server received an invalid response from an upstream server."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable. Please retry later."),
    504: ("GatewayTimeout", "The upstream server did not respond in time."),
}
_AUTH_DISCOVERY = re.compile(r"/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration")
_AUTH_TOKEN = re.compile(r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token")
_AUTH_AUTHORIZE = re.compile(r"/(?P<tenant>[^/]+)/oauth2/v2\.0/authorize")
_AUTH_KEYS = re.compile(r"/(?P<tenant>[^/]+)/discovery/v2\.0/keys")
_AUTH_LOGOUT = re.compile(r"/(?P<tenant>[^/]+)/oauth2/v2\.0/logout")
_GRAPH = re.compile(r"/(?P<version>beta|v1\.0)(?P<path>/.*)?", re.IGNORECASE)


def _norm_prefix(prefix: str) -> str:
    prefix = "/" + prefix.strip().lstrip("/")
    for version in ("/beta/", "/v1.0/"):
        if prefix.lower().startswith(version):
            prefix = prefix[len(version) - 1:]
    return prefix.rstrip("/").lower()



def _audited(body: Mapping[str, Any]) -> bool:
    """A control call's `"audit": false` makes its change one Intune does not audit (no event): only for the
    test that shows such a change waits for the next full read (tests/e2e/test_reuse_e2e.py)."""
    return body.get("audit", True) is not False


#: collections whose changes the simulator's audit events carry no modifiedProperties for (record_audit)
PROPERTY_NAMELESS = frozenset({"configurationPolicies", "compliancePolicies", "intents", "groupPolicyConfigurations"})

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-IIS/10.0"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 300  # idle keep-alive connections close after this

    def setup(self) -> None:
        self.server.track(self.request, True)  # type: ignore[attr-defined]
        try:
            self.request.settimeout(self.timeout)
            self.request.do_handshake()  # in this connection's thread, not the accept loop
        except BaseException:
            self.server.track(self.request, False)  # type: ignore[attr-defined]
            raise
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.request, False)  # type: ignore[attr-defined]

    def _dispatch(self) -> None:
        self.server.simulator._serve(self)  # type: ignore[attr-defined]

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (signature from base)
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 512
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], simulator: GraphSimulator, context: ssl.SSLContext) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _Handler)
        self.simulator = simulator
        self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self._connections: set[Any] = set()
        self._connections_lock = threading.Lock()

    def track(self, connection: Any, active: bool) -> None:
        with self._connections_lock:
            (self._connections.add if active else self._connections.discard)(connection)

    def close_connections(self) -> None:
        """Unblock keep-alive threads so a stopped simulator serves nothing more."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        # clients that drop connections or reject the certificate are not our failures
        pass


class GraphSimulator:
    """Microsoft Graph (Intune) and Entra ID token endpoint, over HTTPS, for tests and demos."""

    def __init__(self, tenants: Mapping[str, SimTenant] | Iterable[SimTenant] | None = None, *,
                 host: str = "127.0.0.1", port: int = 0, latency: float = 0.0,
                 throttle: tuple[int, float] | None = None, fault_rate: float = 0.0, seed: int = 0,
                 cert_dir: Path | str | None = None, client_id: str = DEFAULT_CLIENT_ID,
                 client_secret: str = DEFAULT_CLIENT_SECRET, token_lifetime: int = 3600,
                 client_certificate: bytes | str | None = None, request_log_size: int = 10_000) -> None:
        if tenants is None:
            from graphsim.demo import build_demo_tenants

            tenants = build_demo_tenants()
        items = tenants.values() if isinstance(tenants, Mapping) else tenants
        self.tenants: dict[str, SimTenant] = {t.tenant_id: t for t in items}
        self.host, self._port = host, port
        # knobs
        self.latency = latency
        self.throttle = throttle
        self.fault_rate = fault_rate
        self.drop_retry_after = False
        self.allow_plain_text_secrets = False
        self.batch_shuffle = True
        self.family_throttle = False
        self.budget_share = 1.0
        self.family_limits: dict[str, tuple[int, float]] = {}
        self.failing_paths: dict[str, int] = {}
        self.failing_later_pages: dict[str, int] = {}
        self.vanish_after_list: dict[str, int] = {}
        self._forbidden: set[str] = set()
        self._malformed: set[str] = set()
        self._fail_queue: collections.deque[tuple[int, str | None]] = collections.deque()
        self._families = FamilyThrottle()
        self._vanished: dict[str, set[str]] = {}  # tenant id -> ids that answer 400 ResourceNotFound
        self._vanish_lock = threading.Lock()
        self._unsupported = 0
        self._mixed_apps = False
        self._knob_policies: dict[str, list[tuple[str, str]]] = {}  # knob -> [(tenant id, policy id)]
        # machinery
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._throttle_lock = threading.Lock()
        self._windows: dict[str, collections.deque[float]] = {}
        self._window_locks: dict[str, threading.Lock] = {}
        self.request_log: collections.deque[tuple[str, str, int]] = collections.deque(maxlen=request_log_size)
        self.reset_counters()
        self.authority = TokenAuthority(self._resolve_tenant, client_id=client_id, client_secret=client_secret,
                                        token_lifetime=token_lifetime, client_certificate=client_certificate)
        self._default_token_lifetime = token_lifetime
        self.api = GraphApi(load_catalog(), plaintext_allowed=lambda: self.allow_plain_text_secrets)
        self._cert_dir = Path(cert_dir) if cert_dir is not None else None
        self._tmp_dir: Path | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.ca_path: Path | None = None
        self._control = self._control_routes()

    # --- lifecycle

    def start(self) -> GraphSimulator:
        """Create a CA (trustme), write its PEM, bind and serve in a background thread."""
        import trustme

        if self._server is not None:
            return self
        ca = trustme.CA(organization_name="TenantPilot Graph simulator")
        names = ["127.0.0.1", "localhost", "::1"]
        if self.host not in names and self.host not in ("0.0.0.0", "::", ""):
            names.append(self.host)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(*names).configure_cert(context)
        folder = self._cert_dir
        if folder is None:
            self._tmp_dir = folder = Path(tempfile.mkdtemp(prefix="tp-graphsim-"))
        folder.mkdir(parents=True, exist_ok=True)
        self.ca_path = folder / CA_FILENAME
        ca.cert_pem.write_to_path(str(self.ca_path))
        self._server = _Server((self.host, self._port), self, context)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"graph-simulator:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._tmp_dir is not None:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)
            self._tmp_dir = None

    def __enter__(self) -> GraphSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- addresses and credentials

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server is not None else self._port

    @property
    def url(self) -> str:
        """Base URL for Graph *and* the authority, e.g. ``https://127.0.0.1:8443``."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else "::1" if self.host == "::" else self.host
        return f"https://[{host}]:{self.port}" if ":" in host else f"https://{host}:{self.port}"

    def authority_url(self, tenant_id: str) -> str:
        return f"{self.url}/{tenant_id}"

    @property
    def client_id(self) -> str:
        return self.authority.client_id

    @client_id.setter
    def client_id(self, value: str) -> None:
        self.authority.client_id = value

    @property
    def client_secret(self) -> str:
        return self.authority.client_secret

    @client_secret.setter
    def client_secret(self, value: str) -> None:
        self.authority.client_secret = value

    @property
    def client_certificate(self) -> bytes | str | None:
        """PEM certificate of the app; when set, client-assertion signatures are verified."""
        return self.authority.client_certificate

    @client_certificate.setter
    def client_certificate(self, pem: bytes | str | None) -> None:
        self.authority.client_certificate = pem

    @property
    def token_lifetime(self) -> int:
        return self.authority.token_lifetime

    @token_lifetime.setter
    def token_lifetime(self, seconds: int) -> None:
        self.authority.token_lifetime = int(seconds)

    # --- knobs

    @property
    def forbidden_paths(self) -> set[str]:
        """Path prefixes answered with Intune's 403 (mutable set; or assign a new one)."""
        return self._forbidden

    @forbidden_paths.setter
    def forbidden_paths(self, prefixes: Iterable[str]) -> None:
        self._forbidden = set(prefixes)

    @property
    def malformed_paths(self) -> set[str]:
        """Path prefixes answered 200 with truncated, invalid JSON (direct requests only)."""
        return self._malformed

    @malformed_paths.setter
    def malformed_paths(self, prefixes: Iterable[str]) -> None:
        self._malformed = set(prefixes)

    def fail_next(self, n: int, status: int = 503, path_prefix: str | None = None) -> None:
        """The next ``n`` Graph requests (direct or $batch items; optionally only those under
        ``path_prefix``) fail with ``status`` and Graph's error body."""
        prefix = _norm_prefix(path_prefix) if path_prefix else None
        with self._rng_lock:
            self._fail_queue.extend([(status, prefix)] * n)

    def expire_tokens_after(self, seconds: float) -> None:
        """Tokens issued so far are rejected (401) from ``seconds`` from now."""
        self.authority.expire_tokens_after(seconds)

    def revoke_all_tokens(self) -> None:
        """Tokens issued so far are rejected (401) from now on."""
        self.authority.revoke_all_tokens()

    @property
    def token_max_age(self) -> float | None:
        """Seconds after issue at which the server rejects a token (None: only ``expires_in``).
        Unlike :meth:`expire_tokens_after`, this also applies to tokens issued later."""
        return self.authority.token_max_age

    @token_max_age.setter
    def token_max_age(self, seconds: float | None) -> None:
        self.authority.token_max_age = None if seconds is None else float(seconds)

    def issued_tokens(self) -> list[str]:
        """Every access token issued so far (tests check none of them leaks)."""
        return self.authority.issued_tokens()

    def issue_token(self, tenant_id: str, lifetime: float | None = None) -> str:
        """A valid bearer token for a tenant without going through the token endpoint."""
        return self.authority.issue(tenant_id, lifetime)

    def reset_throttle(self) -> None:
        with self._throttle_lock:
            self._windows.clear()
        self._families.reset()

    # --- knobs that change what tenants hold

    @property
    def unsupported_device_configurations(self) -> int:
        """How many ``unsupportedDeviceConfiguration`` items every tenant's deviceConfigurations
        list holds (0 = none, the default)."""
        return self._unsupported

    @unsupported_device_configurations.setter
    def unsupported_device_configurations(self, n: int) -> None:
        self._drop_knob_policies("unsupported")
        self._unsupported = max(0, int(n))
        for tenant in list(self.tenants.values()):
            self._remember("unsupported", tenant, tenant.add_unsupported_device_configurations(self._unsupported))

    @property
    def mixed_app_policies(self) -> bool:
        """Every tenant also holds a Windows app protection, a WIP, an MDM WIP and an app
        configuration (targetedManagedAppConfiguration) policy, all listed by managedAppPolicies."""
        return self._mixed_apps

    @mixed_app_policies.setter
    def mixed_app_policies(self, on: bool) -> None:
        self._drop_knob_policies("mixed_apps")
        self._mixed_apps = bool(on)
        if self._mixed_apps:
            for tenant in list(self.tenants.values()):
                self._remember("mixed_apps", tenant, tenant.add_mixed_app_policies())

    def _remember(self, knob: str, tenant: SimTenant, policies: list[SimPolicy]) -> None:
        self._knob_policies.setdefault(knob, []).extend((tenant.tenant_id, p.id) for p in policies)
        for policy in policies:  # added as an admin would add it: Intune audits it
            tenant.record_audit(policy, "Create")

    def _drop_knob_policies(self, knob: str) -> None:
        for tenant_id, policy_id in self._knob_policies.pop(knob, []):
            tenant = self.tenants.get(tenant_id)
            if tenant is not None and tenant.find_policy(policy_id) is not None:
                tenant.record_audit(tenant.delete_policy(policy_id), "Delete")

    def vanished_ids(self, tenant_id: str) -> set[str]:
        """Ids of the policies that answer 400 ResourceNotFound (see :meth:`vanish`)."""
        with self._vanish_lock:
            return set(self._vanished.get(self.tenant(tenant_id).tenant_id, ()))

    def vanish(self, tenant_id: str, policy_id: str) -> SimPolicy:
        """Delete a policy the way a deletion between list and follow-up looks: from now on its GET
        and every follow-up answer ``400 ResourceNotFound`` (not 404)."""
        tenant = self.tenant(tenant_id)
        policy = tenant.delete_policy(policy_id)
        with self._vanish_lock:
            self._vanished.setdefault(tenant.tenant_id, set()).add(policy.id)
        tenant.record_audit(policy, "Delete")
        return policy

    @property
    def knobs(self) -> JSON:
        return {"latency": self.latency, "throttle": list(self.throttle) if self.throttle else None,
                "fault_rate": self.fault_rate, "forbidden_paths": sorted(self._forbidden),
                "malformed_paths": sorted(self._malformed), "drop_retry_after": self.drop_retry_after,
                "allow_plain_text_secrets": self.allow_plain_text_secrets, "batch_shuffle": self.batch_shuffle,
                "token_lifetime": self.token_lifetime, "token_max_age": self.token_max_age,
                "pending_failures": len(self._fail_queue), "family_throttle": self.family_throttle,
                "budget_share": self.budget_share,
                "family_limits": {k: list(v) for k, v in self.family_limits.items()},
                "failing_paths": dict(self.failing_paths), "failing_later_pages": dict(self.failing_later_pages),
                "vanish_after_list": dict(self.vanish_after_list),
                "unsupported_device_configurations": self._unsupported,
                "mixed_app_policies": self._mixed_apps}

    def apply_knobs(self, values: Mapping[str, Any]) -> JSON:
        """Set several knobs from a mapping; returns :attr:`knobs`. Keys: the knob attributes
        (``latency``, ``throttle`` as ``(limit, window)``, ``fault_rate``, ``forbidden_paths``,
        ``malformed_paths``, ``drop_retry_after``, ``allow_plain_text_secrets``, ``batch_shuffle``,
        ``token_lifetime``, ``token_max_age``, ``family_throttle``, ``budget_share``,
        ``family_limits`` as ``{family: (limit, window)}``, ``failing_paths`` and
        ``failing_later_pages`` as ``{path prefix: status}``, ``vanish_after_list`` as
        ``{collection: n}``, ``unsupported_device_configurations`` (n), ``mixed_app_policies``) and
        the actions ``fail_next`` (``n``, ``(n, status)``,
        ``(n, status, path_prefix)`` or a dict with those keys), ``expire_tokens_after`` (seconds),
        ``revoke_tokens_after`` (seconds: sets ``token_max_age``, so every token, including the
        ones issued later, dies that long after issue) and ``revoke_all_tokens`` (true)."""
        for key, value in values.items():
            if key == "throttle":
                self.throttle = (int(value[0]), float(value[1])) if value else None
            elif key in ("forbidden_paths", "malformed_paths"):
                setattr(self, key, [value] if isinstance(value, str) else (value or ()))
            elif key in ("latency", "fault_rate", "budget_share"):
                setattr(self, key, float(value))
            elif key in ("drop_retry_after", "allow_plain_text_secrets", "batch_shuffle", "family_throttle",
                         "mixed_app_policies"):
                setattr(self, key, bool(value))
            elif key == "family_limits":
                self.family_limits = {str(k): (int(v[0]), float(v[1])) for k, v in (value or {}).items()}
            elif key in ("failing_paths", "failing_later_pages"):
                setattr(self, key, {str(k): int(v) for k, v in (value or {}).items()})
            elif key == "vanish_after_list":
                self.vanish_after_list = {str(k): int(v) for k, v in (value or {}).items()}
            elif key == "unsupported_device_configurations":
                self.unsupported_device_configurations = int(value)
            elif key == "token_lifetime":
                self.token_lifetime = int(value)
            elif key in ("token_max_age", "revoke_tokens_after"):
                self.token_max_age = value
            elif key == "expire_tokens_after":
                self.expire_tokens_after(float(value))
            elif key == "revoke_all_tokens":
                if value:
                    self.revoke_all_tokens()
            elif key == "fail_next":
                if isinstance(value, Mapping):
                    self.fail_next(int(value.get("n", 1)), int(value.get("status", 503)), value.get("path_prefix"))
                elif isinstance(value, (list, tuple)):
                    self.fail_next(int(value[0]), *(value[1:2] or [503]), *value[2:3])
                else:
                    self.fail_next(int(value))
            else:
                raise KeyError(f"unknown knob {key!r}")
        return self.knobs

    set_knobs = apply_knobs

    def reset_knobs(self) -> JSON:
        """Every knob back to its default (no latency, throttling, faults or errors; pending
        ``fail_next`` failures and throttle windows cleared). Tokens stay as they are."""
        self.latency = 0.0
        self.throttle = None
        self.fault_rate = 0.0
        self.forbidden_paths = ()
        self.malformed_paths = ()
        self.drop_retry_after = False
        self.allow_plain_text_secrets = False
        self.batch_shuffle = True
        self.token_max_age = None
        self.token_lifetime = self._default_token_lifetime
        self.family_throttle = False
        self.budget_share = 1.0
        self.family_limits = {}
        self.failing_paths = {}
        self.failing_later_pages = {}
        self.vanish_after_list = {}
        self.unsupported_device_configurations = 0
        self.mixed_app_policies = False
        with self._rng_lock:
            self._fail_queue.clear()
        self.reset_throttle()
        return self.knobs

    # --- counters

    def reset_counters(self) -> None:
        with self._stats_lock:
            self.request_count = 0
            self.requests_by_status: collections.Counter[int] = collections.Counter()
            self.graph_request_count = 0
            self.graph_requests_by_status: collections.Counter[int] = collections.Counter()
            self.token_request_count = 0
            self.graph_admitted_by_family: collections.Counter[str] = collections.Counter()
            self.request_log.clear()

    @property
    def counters(self) -> JSON:
        with self._stats_lock:
            return {"request_count": self.request_count,
                    "requests_by_status": {str(k): v for k, v in sorted(self.requests_by_status.items())},
                    "graph_request_count": self.graph_request_count,
                    "graph_requests_by_status": {str(k): v for k, v in
                                                 sorted(self.graph_requests_by_status.items())},
                    "token_request_count": self.token_request_count,
                    "graph_admitted_by_family": dict(sorted(self.graph_admitted_by_family.items())),
                    "tokens_issued": self.authority.tokens_issued}

    def _count(self, method: str, path: str, status: int, *, http: bool, graph: bool) -> None:
        with self._stats_lock:
            if http:
                self.request_count += 1
                self.requests_by_status[status] += 1
            if graph:
                self.graph_request_count += 1
                self.graph_requests_by_status[status] += 1
                if status != 429:  # admitted by the throttle: what a throttle floor is computed from
                    family = service_family(_GRAPH.sub(lambda m: m["path"] or "/", path.split("?", 1)[0], count=1))
                    if family is not None:
                        self.graph_admitted_by_family[family] += 1
            self.request_log.append((method, path, status))

    # --- tenants

    def add_tenant(self, tenant: SimTenant) -> None:
        self.tenants[tenant.tenant_id] = tenant

    def tenant(self, tenant_id: str) -> SimTenant:
        found = self._resolve_tenant(tenant_id)
        if found is None:
            raise KeyError(tenant_id)
        return found

    def _resolve_tenant(self, segment: str) -> SimTenant | None:
        found = self.tenants.get(segment)
        if found is not None:
            return found
        low = segment.lower()
        return next((t for t in list(self.tenants.values())
                     if t.tenant_id.lower() == low or t.domain.lower() == low), None)

    # --- HTTP plumbing

    def _send(self, h: _Handler, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", f"Date: {formatdate(usegmt=True)}"]
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        lines.append(f"Content-Length: {len(body)}")
        if h.close_connection:
            lines.append("Connection: close")
        h.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def _send_json(self, h: _Handler, status: int, body: Any, headers: Mapping[str, str] | None = None,
                   content_type: str = "application/json; charset=utf-8") -> None:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self._send(h, status, data, {"Content-Type": content_type, **(headers or {})})

    def _serve(self, h: _Handler) -> None:
        method = h.command
        split = urlsplit(h.path)
        path = unquote(split.path)
        params = parse_qsl(split.query, keep_blank_values=True)
        length = int(h.headers.get("Content-Length") or 0)
        raw_body = h.rfile.read(length) if length > 0 else b""
        if path.startswith("/_sim/"):
            self._serve_control(h, method, path, raw_body)
            return
        graph = _GRAPH.fullmatch(path)
        if graph is not None:
            self._serve_graph(h, method, graph["version"].lower(), graph["path"] or "/", params, raw_body)
            return
        if method == "GET" and (m := _AUTH_DISCOVERY.fullmatch(path)):
            status, body = self.authority.discovery(self.url, m["tenant"])
            self._count(method, path, status, http=True, graph=False)
            self._send_json(h, status, body, {"Cache-Control": "max-age=86400, private"})
            return
        if method == "POST" and (m := _AUTH_TOKEN.fullmatch(path)):
            form = dict(parse_qsl(raw_body.decode("utf-8", "replace"), keep_blank_values=True))
            status, body = self.authority.token(self.url, m["tenant"], form, h.headers.get("Authorization"))
            with self._stats_lock:
                self.token_request_count += 1
            self._count(method, path, status, http=True, graph=False)
            self._send_json(h, status, body, {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache",
                                              "x-ms-request-id": str(uuid.uuid4())})
            return
        if (m := _AUTH_AUTHORIZE.fullmatch(path)) and method in ("GET", "POST"):
            self._serve_authorize(h, method, m["tenant"], params, raw_body)
            return
        if method == "GET" and (m := _AUTH_KEYS.fullmatch(path)):
            self._count(method, path, 200, http=True, graph=False)
            self._send_json(h, 200, self.authority.signin.jwks(), {"Cache-Control": "max-age=86400, private"})
            return
        if method == "GET" and (m := _AUTH_LOGOUT.fullmatch(path)):  # signed out here; back to the app
            back = dict(params).get("post_logout_redirect_uri", "")
            self._count(method, path, 302 if back else 200, http=True, graph=False)
            if back:
                self._send(h, 302, b"", {"Location": back})
            else:
                self._send(h, 200, b"You signed out.", {"Content-Type": "text/plain; charset=utf-8"})
            return
        if method == "GET" and path == "/common/discovery/instance":
            host = urlsplit(self.url).netloc
            body = {"tenant_discovery_endpoint": f"{self.url}/common/v2.0/.well-known/openid-configuration",
                    "api-version": "1.1", "metadata": [{"preferred_network": host, "preferred_cache": host,
                                                         "aliases": [host]}]}
            self._count(method, path, 200, http=True, graph=False)
            self._send_json(h, 200, body)
            return
        self._count(method, path, 404, http=True, graph=False)
        self._send_json(h, 404, error_body("ResourceNotFound", f"No such endpoint: {method} {path}"))

    def _serve_authorize(self, h: _Handler, method: str, segment: str, params: list[tuple[str, str]],
                         raw_body: bytes) -> None:
        """GET: the consent page listing the tenant's test users; POST (the page's form): sign in as one."""
        tenant = self._resolve_tenant(segment)
        query = dict(params)
        picked = None
        if method == "POST":
            query = dict(parse_qsl(raw_body.decode("utf-8", "replace"), keep_blank_values=True))
            picked = query.pop("login_hint", "")
        if tenant is None:
            status, headers, page = 400, {"Content-Type": "text/plain; charset=utf-8"}, f"Tenant {segment} not found."
        else:
            status, headers, page = self.authority.signin.authorize(tenant.tenant_id, query, picked)
        self._count(method, f"/{segment}/oauth2/v2.0/authorize", status, http=True, graph=False)
        self._send(h, status, page.encode("utf-8"), headers)

    # --- Graph

    def _authenticate(self, header: str) -> tuple[SimTenant | None, str]:
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            return None, "Access token is empty."
        info, reason = self.authority.validate(header[7:].strip())
        if info is None:
            return None, ("Access token has expired or is not yet valid." if reason == "expired"
                          else "CompactToken parsing failed with error code: 80049217")
        tenant = self.tenants.get(info.tenant_id)
        if tenant is None:
            return None, "Access token validation failure. Invalid audience."
        return tenant, ""

    def _graph_headers(self, client_request_id: str | None) -> dict[str, str]:
        request_id = str(uuid.uuid4())
        return {"Content-Type": GRAPH_JSON, "request-id": request_id,
                "client-request-id": client_request_id or request_id, "x-ms-ags-diagnostic": _DIAGNOSTIC,
                "Strict-Transport-Security": "max-age=31536000", "Cache-Control": "no-cache",
                "Vary": "Accept-Encoding"}

    def _serve_graph(self, h: _Handler, method: str, version: str, path: str, params: list[tuple[str, str]],
                     raw_body: bytes) -> None:
        full_path = f"/{version}{path}"
        crid = h.headers.get("client-request-id")
        headers = self._graph_headers(crid)
        tenant, problem = self._authenticate(h.headers.get("Authorization", ""))
        if tenant is None:
            self._count(method, full_path, 401, http=True, graph=True)
            headers["WWW-Authenticate"] = ('Bearer realm="", authorization_uri="https://login.microsoftonline.com/'
                                           'common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"')
            self._send_json(h, 401, error_body("InvalidAuthenticationToken", problem, crid), headers, GRAPH_JSON)
            return
        if self.latency > 0:
            time.sleep(self.latency)
        if path.lower() == "/$batch":
            if method != "POST":
                self._count(method, full_path, 405, http=True, graph=False)
                self._send_json(h, 405, error_body("BadRequest", "$batch accepts POST only.", crid), headers,
                                GRAPH_JSON)
                return
            outer = self._scheduled_failure("/$batch", outer=True)
            if outer is not None:  # the POST itself refused (an outer 429 happens: microsoft/dev-proxy#1358)
                failure = self._failure(outer, "/$batch")
                self._count(method, full_path, failure.status, http=True, graph=False)
                self._send_json(h, failure.status, failure.body, {**headers, **failure.headers}, GRAPH_JSON)
                return
            status, body = self._batch(tenant, version, raw_body)
            self._count(method, full_path, status, http=True, graph=False)
            self._send_json(h, status, body, headers, GRAPH_JSON)
            return
        body_json: Any = None
        if raw_body:
            try:
                body_json = json.loads(raw_body)
            except ValueError:
                body_json = None
        resp = self._call(tenant, method, version, path, params, body_json)
        self._count(method, full_path, resp.status, http=True, graph=True)
        headers.update(resp.headers)
        data = json.dumps(resp.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if resp.status == 200 and self._matches(self._malformed, normalise_path(path)):
            data = data[: max(1, len(data) // 2)]
        self._send(h, resp.status, data, headers)

    @staticmethod
    def _matches(prefixes: set[str], path: str) -> bool:
        if not prefixes:
            return False
        low = path.lower()
        return any(low.startswith(_norm_prefix(p)) for p in tuple(prefixes))

    def _throttled(self, tenant_id: str) -> int | None:
        """Seconds until capacity frees when over the limit, else None (and the request counts)."""
        throttle = self.throttle
        if not throttle:
            return None
        limit, window = int(throttle[0]), float(throttle[1])
        with self._throttle_lock:
            stamps = self._windows.setdefault(tenant_id, collections.deque())
            lock = self._window_locks.setdefault(tenant_id, threading.Lock())
        with lock:
            now = time.monotonic()
            while stamps and stamps[0] <= now - window:
                stamps.popleft()
            if len(stamps) >= limit:
                wait = stamps[len(stamps) - limit] + window - now if limit > 0 else window
                return max(1, math.ceil(wait))
            stamps.append(now)
        return None

    def _call(self, tenant: SimTenant, method: str, version: str, path: str, params: list[tuple[str, str]],
              body: Any) -> GraphResponse:
        """One Graph resource request through the knobs: throttle, scheduled failures, random
        faults, forbidden paths; then the resource itself."""
        npath = normalise_path(path)
        wait = self._throttled(tenant.tenant_id)
        if wait is None and self.family_throttle:
            family = service_family(npath)
            if family is not None:
                wait = self._families.admit(tenant.tenant_id, family,
                                            effective_limits(self.budget_share, self.family_limits))
        if wait is not None:
            headers = {} if self.drop_retry_after else {"Retry-After": str(wait)}
            return GraphResponse(429, error_body("TooManyRequests", "Too many requests."), headers)
        if self._vanished and self._is_vanished(tenant.tenant_id, npath):
            # a policy deleted after it was listed: 400 ResourceNotFound with Intune's JSON-in-a-string
            # message (Microsoft365DSC issue #3958 quotes one for configurationPolicies('…'))
            return GraphResponse(400, error_body("ResourceNotFound", intune_message("An error has occurred", npath)))
        status = self._persistent_failure(npath, params)
        if status is None:
            status = self._scheduled_failure(npath)
        if status is None and self.fault_rate > 0:
            with self._rng_lock:
                if self._rng.random() < self.fault_rate:
                    status = self._rng.choice((503, 503, 500, 502))
        if status is not None:
            return self._failure(status, npath)
        if self._matches(self._forbidden, npath):
            if npath.lower().startswith(("/groups", "/directoryobjects", "/identity", "/users", "/rolemanagement",
                                         "/serviceprincipals")):  # Entra, not Intune, answers
                return GraphResponse(403, error_body("Authorization_RequestDenied",
                                                     "Insufficient privileges to complete the operation."))
            return GraphResponse(403, error_body("Forbidden", forbidden_message(npath)))
        req = GraphRequest(method, version, npath, params, tenant, self.url, body)
        resp = self.api.handle(req)
        if self.vanish_after_list and resp.status == 200 and method == "GET":
            self._vanish_listed(tenant, npath, resp)
        return resp

    def _persistent_failure(self, npath: str, params: list[tuple[str, str]]) -> int | None:
        """``failing_paths``: every request under a prefix fails; ``failing_later_pages``: only the
        pages after the first (requests carrying a ``$skiptoken``) of lists under a prefix."""
        low = npath.lower()
        for prefix, status in tuple(self.failing_paths.items()):
            if low.startswith(_norm_prefix(prefix)):
                return status
        if self.failing_later_pages and any(k.lower().lstrip("$") == "skiptoken" for k, _ in params):
            for prefix, status in tuple(self.failing_later_pages.items()):
                if low.startswith(_norm_prefix(prefix)):
                    return status
        return None

    def _is_vanished(self, tenant_id: str, npath: str) -> bool:
        parts = npath.split("/")  # ["", "deviceManagement", "<collection>", "<id>", ...]
        with self._vanish_lock:
            return len(parts) > 3 and parts[3] in self._vanished.get(tenant_id, ())

    def _vanish_listed(self, tenant: SimTenant, npath: str, resp: GraphResponse) -> None:
        """``vanish_after_list={collection: n}``: the first ``n`` policies a list of that collection
        returns are deleted right after it answered (they answer 400 ResourceNotFound from then on)."""
        parts = npath.split("/")
        if len(parts) != 3 or parts[2] not in SPECS:
            return
        collection = parts[2]
        with self._vanish_lock:
            left = self.vanish_after_list.get(collection, 0)
            if left <= 0:
                return
            items = [i for i in (resp.body or {}).get("value") or () if isinstance(i, dict) and i.get("id")]
            victims = [str(i["id"]) for i in items[:left]]
            self.vanish_after_list = dict(self.vanish_after_list, **{collection: left - len(victims)})
            self._vanished.setdefault(tenant.tenant_id, set()).update(victims)
        for policy_id in victims:
            if tenant.find_policy(policy_id) is not None:
                tenant.record_audit(tenant.delete_policy(policy_id), "Delete")

    def _scheduled_failure(self, npath: str, *, outer: bool = False) -> int | None:
        """The next queued ``fail_next`` failure for this request. A ``$batch`` POST itself (``outer``)
        only takes failures queued with ``path_prefix="/$batch"``; resource calls never take those."""
        if not self._fail_queue:
            return None
        low = npath.lower()
        with self._rng_lock:
            for i, (status, prefix) in enumerate(self._fail_queue):
                if outer:
                    hit = prefix == "/$batch"
                else:
                    hit = prefix is None or (prefix != "/$batch" and low.startswith(prefix))
                if hit:
                    del self._fail_queue[i]
                    return status
        return None

    def _failure(self, status: int, npath: str) -> GraphResponse:
        if status == 403:
            return GraphResponse(403, error_body("Forbidden", forbidden_message(npath)))
        code, message = _FAULTS.get(status, ("UnknownError", HTTPStatus(status).phrase))
        headers = {"Retry-After": "1"} if status == 429 and not self.drop_retry_after else {}
        return GraphResponse(status, error_body(code, message), headers)

    def _batch(self, tenant: SimTenant, version: str, raw_body: bytes) -> tuple[int, JSON]:
        try:
            doc = json.loads(raw_body or b"null")
        except ValueError:
            return 400, error_body("BadRequest", "Invalid batch payload format: the body is not valid JSON.")
        requests_ = doc.get("requests") if isinstance(doc, dict) else None
        if not isinstance(requests_, list) or not requests_:
            return 400, error_body("BadRequest", "Invalid batch payload format: 'requests' must be a non-empty "
                                                 "array.")
        if len(requests_) > MAX_BATCH:
            return 400, error_body("BadRequest", f"Number of requests in the batch ({len(requests_)}) exceeds "
                                                 f"the maximum of {MAX_BATCH}.")
        seen: set[str] = set()
        for item in requests_:
            if not isinstance(item, dict) or not all(isinstance(item.get(k), str) for k in ("id", "method", "url")):
                return 400, error_body("BadRequest", "Invalid batch payload format: every request needs string "
                                                     "'id', 'method' and 'url'.")
            if item["id"] in seen:
                return 400, error_body("BadRequest", f"Batch request contains duplicate id '{item['id']}'.")
            seen.add(item["id"])
        statuses: dict[str, int] = {}
        responses = []
        for item in requests_:
            method, url = item["method"].upper(), item["url"]
            depends = item.get("dependsOn") or []
            if any(d not in statuses for d in depends):
                return 400, error_body("BadRequest", f"Request '{item['id']}' depends on a request that does not "
                                                     "come before it.")
            if any(statuses[d] >= 400 for d in depends):
                resp = GraphResponse(424, error_body("FailedDependency", "A dependent request failed."))
            elif "://" in url:
                resp = GraphResponse(400, error_body("BadRequest", "Request URL must be relative."))
            else:
                split = urlsplit("/" + url.lstrip("/"))
                params = parse_qsl(split.query, keep_blank_values=True)
                resp = self._call(tenant, method, version, unquote(split.path), params, item.get("body"))
            statuses[item["id"]] = resp.status
            self._count(method, f"/{version}/{url.lstrip('/')}", resp.status, http=False, graph=True)
            headers = {"Cache-Control": "no-cache", "Content-Type": GRAPH_JSON, **resp.headers}
            responses.append({"id": item["id"], "status": resp.status, "headers": headers, "body": resp.body})
        if self.batch_shuffle and len(responses) > 1:
            with self._rng_lock:
                self._rng.shuffle(responses)
        return 200, {"responses": responses}

    # --- control API (/_sim/...) for a simulator in another process

    def _control_routes(self) -> list[tuple[str, re.Pattern[str], Callable[..., tuple[int, Any]]]]:
        tid = r"(?P<tid>[^/]+)"
        return [
            ("GET", re.compile(r"/_sim/state"), lambda m, b: (200, self.state())),
            ("POST", re.compile(r"/_sim/knobs"), lambda m, b: (200, self.apply_knobs(b or {}))),
            ("POST", re.compile(r"/_sim/knobs/reset"), lambda m, b: (200, self.reset_knobs())),
            ("POST", re.compile(r"/_sim/reset"), self._ctl_reset),
            ("POST", re.compile(r"/_sim/tokens/revoke"), lambda m, b: (self.revoke_all_tokens(), (200, {}))[1]),
            ("POST", re.compile(r"/_sim/tokens/expire"),
             lambda m, b: (self.expire_tokens_after(float((b or {}).get("seconds", 0))), (200, {}))[1]),
            ("GET", re.compile(rf"/_sim/tenants/{tid}"), self._ctl_tenant),
            ("POST", re.compile(rf"/_sim/tenants/{tid}/policies/(?P<coll>[^/]+)/(?P<pid>[^/]+)/delete"),
             self._ctl_delete),
            ("POST", re.compile(rf"/_sim/tenants/{tid}/policies/(?P<coll>[^/]+)/(?P<pid>[^/]+)/change"),
             self._ctl_change),
            ("POST", re.compile(rf"/_sim/tenants/{tid}/policies/(?P<coll>[^/]+)/(?P<pid>[^/]+)/assign"),
             self._ctl_assign),
            ("POST", re.compile(rf"/_sim/tenants/{tid}/policies/(?P<coll>[^/]+)/(?P<pid>[^/]+)/vanish"),
             self._ctl_vanish),
            ("POST", re.compile(rf"/_sim/tenants/{tid}/week"), self._ctl_week),
        ]

    def state(self) -> JSON:
        return {"url": self.url, "ca_path": str(self.ca_path) if self.ca_path else None,
                "client_id": self.client_id,
                "tenants": [{"tenant_id": t.tenant_id, "display_name": t.display_name, "domain": t.domain,
                             "policy_counts": t.counts(), "seeded_differences": t.seeded_differences}
                            for t in list(self.tenants.values())],
                "counters": self.counters, "knobs": self.knobs}

    def _ctl_reset(self, m: re.Match[str], body: Any) -> tuple[int, Any]:
        self.reset_counters()
        self.reset_throttle()
        return 200, self.counters

    def _ctl_tenant(self, m: re.Match[str], body: Any) -> tuple[int, Any]:
        tenant = self.tenant(m["tid"])
        return 200, dict(tenant.summary(), policies=[
            {"collection": p.collection, "id": p.id, "name": p.name} for p in tenant.all_policies()])

    def _ctl_delete(self, m: re.Match[str], body: Any) -> tuple[int, Any]:
        tenant = self.tenant(m["tid"])
        if m["coll"] not in COLLECTIONS or tenant.get_policy(m["coll"], m["pid"]) is None:
            raise KeyError(m["pid"])
        policy = tenant.delete_policy(m["pid"])
        event = tenant.record_audit(policy, "Delete", (body or {}).get("actor"))
        return 200, {"deleted": policy.id, "name": policy.name, "audit_event": event["id"]}

    def _ctl_vanish(self, m: re.Match[str], body: Any) -> tuple[int, Any]:
        tenant = self.tenant(m["tid"])
        if m["coll"] not in COLLECTIONS or tenant.get_policy(m["coll"], m["pid"]) is None:
            raise KeyError(m["pid"])
        policy = self.vanish(tenant.tenant_id, m["pid"])
        return 200, {"vanished": policy.id, "name": policy.name}

    def _ctl_change(self, m: re.Match[str], body: Any) -> tuple[int, Any]:
        tenant = self.tenant(m["tid"])
        body = body or {}
        old = tenant.change_setting(m["pid"], body["setting_id"], body.get("value"))
        policy = tenant.find_policy(m["pid"])
        modified = ([(body["setting_id"], old, body.get("value"))] if policy is not None
                    and policy.collection not in PROPERTY_NAMELESS else [])
        event = (tenant.record_audit(policy, "Patch", body.get("actor"), modified)
                 if policy is not None and _audited(body) else None)
        return 200, {"old": old, "new": body.get("value"), "audit_event": event["id"] if event else None}

    def _ctl_assign(self, m: re.Match[str], body: Any) -> tuple[int, Any]:
        """Assign the policy to one more group (`group_id`, default: one it is not assigned to), as
        Intune's assign action would; the event Intune writes names the policy."""
        tenant = self.tenant(m["tid"])
        body = body or {}
        if m["coll"] not in COLLECTIONS or tenant.get_policy(m["coll"], m["pid"]) is None:
            raise KeyError(m["pid"])
        assignment = tenant.assign_group(m["pid"], body.get("group_id"))
        policy = tenant.get_policy(m["coll"], m["pid"])
        event = (tenant.record_audit(policy, "Post", body.get("actor"), activity="Assign")
                 if policy is not None and _audited(body) else None)
        return 200, {"assignment": assignment, "audit_event": event["id"] if event else None}

    def _ctl_week(self, m: re.Match[str], body: Any) -> tuple[int, Any]:
        """The demo's week of changes (graphsim/week.py), its events dated after `since` (ISO time)."""
        from graphsim.week import simulate_week

        since = (body or {}).get("since")
        moment = dt.datetime.fromisoformat(since) if since else None
        if moment is not None and moment.tzinfo is None:
            raise ValueError("since needs a time zone (e.g. 2026-12-01T08:00:00+00:00)")
        return 200, {"steps": simulate_week(self.tenant(m["tid"]), moment)}

    def _serve_control(self, h: _Handler, method: str, path: str, raw_body: bytes) -> None:
        try:
            body = json.loads(raw_body) if raw_body else None
        except ValueError:
            self._send_json(h, 400, {"error": "body is not JSON"})
            return
        for route_method, pattern, handler in self._control:
            m = pattern.fullmatch(path)
            if m is not None and route_method == method:
                try:
                    status, result = handler(m, body)
                except KeyError as exc:
                    status, result = 404, {"error": f"not found: {exc.args[0] if exc.args else exc}"}
                except (TypeError, ValueError) as exc:
                    status, result = 400, {"error": str(exc)}
                self._send_json(h, status, result)
                return
        self._send_json(h, 404, {"error": f"no control endpoint {method} {path}"})
