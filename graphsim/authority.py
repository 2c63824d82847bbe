"""The simulated Microsoft identity platform: OIDC discovery, client-credentials tokens, and user sign-in
(authorization code -> RS256 ID token, JWKS: :mod:`graphsim.oidc`, reached as ``TokenAuthority.signin``).

Pure logic, no sockets: the server maps ``GET /{tenant}/v2.0/.well-known/openid-configuration``
and ``POST /{tenant}/oauth2/v2.0/token`` onto :meth:`TokenAuthority.discovery` and
:meth:`TokenAuthority.token`. Error bodies are shaped like Entra ID's (``error``,
``error_description`` starting with the AADSTS code, ``error_codes``, trace and correlation ids).

Tokens are opaque random strings bound to a tenant, checked by :meth:`TokenAuthority.validate`.
A client-assertion JWT (certificate credential) is accepted when it is signed (RS256 or PS256;
``alg: none`` and an empty signature are refused, as Entra refuses them), the signature verifies
against the registered certificate (``client_certificate``; none registered: refused),
``iss`` == ``sub`` == client id and ``aud`` is this token endpoint.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_RESERVED_SCOPES = {"openid", "profile", "offline_access"}
_SIGNING_ALGS = ("RS256", "PS256")


@dataclass
class TokenInfo:
    tenant_id: str
    client_id: str
    issued_at: float
    expires_at: float


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _basic(header: str | None) -> tuple[str, str] | None:
    """client_secret_basic: (client id, secret) from an Authorization: Basic header (RFC 6749 2.3.1: form-encoded)."""
    from urllib.parse import unquote_plus

    if not header or not header.lower().startswith("basic "):
        return None
    try:
        user, _, secret = base64.b64decode(header[6:].strip()).decode().partition(":")
    except (ValueError, binascii.Error):
        return None
    return unquote_plus(user), unquote_plus(secret)


def _aad_error(status: int, error: str, code: int, text: str) -> tuple[int, JSON]:
    trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
    return status, {
        "error": error,
        "error_description": f"AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {corr} "
                             f"Timestamp: {stamp}",
        "error_codes": [code],
        "timestamp": stamp,
        "trace_id": trace,
        "correlation_id": corr,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }


class TokenAuthority:
    """Issues and validates app-only tokens for the simulated tenants."""

    def __init__(self, resolve_tenant: Callable[[str], Any], *, client_id: str, client_secret: str,
                 token_lifetime: int = 3600, client_certificate: bytes | str | None = None) -> None:
        self._resolve = resolve_tenant  # tenant segment (GUID or domain) -> SimTenant | None
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_lifetime = token_lifetime
        self.client_certificate = client_certificate
        self._tokens: dict[str, TokenInfo] = {}
        self._lock = threading.Lock()
        self.tokens_issued = 0
        #: when set, every token is rejected this many seconds after it was issued, whatever
        #: ``expires_in`` said (a token "expiring" mid-sync, for clients that cache tokens)
        self.token_max_age: float | None = None
        from graphsim.oidc import SignIn

        self.signin = SignIn()  # users signing in to an app (OpenID Connect), apart from the app-only Graph client

    # --- OIDC discovery

    def discovery(self, base_url: str, tenant_segment: str) -> tuple[int, JSON]:
        tenant = self._resolve(tenant_segment)
        if tenant is None:
            status, body = _aad_error(400, "invalid_tenant", 90002, f"Tenant '{tenant_segment}' not found. "
                                      "Check to make sure you have the correct tenant ID and are signing into "
                                      "the correct cloud. Check with your subscription administrator, this may "
                                      "happen if there are no active subscriptions for the tenant.")
            return status, body
        tid = tenant.tenant_id
        root = f"{base_url}/{tid}"
        return 200, {
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                      "client_secret_basic"],
            "jwks_uri": f"{base_url}/{tid}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{root}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{base_url}/oidc/userinfo",
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
                                 "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr",
                                 "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
            "kerberos_endpoint": f"{root}/kerberos",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }

    # --- token endpoint

    def token(self, base_url: str, tenant_segment: str, form: dict[str, str],
              authorization: str | None = None) -> tuple[int, JSON]:
        tenant = self._resolve(tenant_segment)
        if tenant is None:
            return _aad_error(400, "invalid_request", 90002, f"Tenant '{tenant_segment}' not found. Check to "
                              "make sure you have the correct tenant ID and are signing into the correct "
                              "cloud.")
        grant = form.get("grant_type", "")
        if grant == "authorization_code":  # a user signing in to an app (graphsim.oidc)
            return self.signin.redeem(f"{base_url}/{tenant.tenant_id}/v2.0", form, _basic(authorization))
        if grant != "client_credentials":
            return _aad_error(400, "unsupported_grant_type", 70003,
                              f"The app requested an unsupported grant type '{grant}'.")
        client_id = form.get("client_id", "")
        if not client_id:
            return _aad_error(400, "invalid_request", 900144,
                              "The request body must contain the following parameter: 'client_id'.")
        if client_id != self.client_id:
            return _aad_error(400, "unauthorized_client", 700016,
                              f"Application with identifier '{client_id}' was not found in the directory "
                              f"'{tenant.display_name}'. This can happen if the application has not been "
                              "installed by the administrator of the tenant or consented to by any user in "
                              "the tenant. You may have sent your authentication request to the wrong tenant.")
        scope = form.get("scope", "")
        if not scope:
            return _aad_error(400, "invalid_request", 900144,
                              "The request body must contain the following parameter: 'scope'.")
        scopes = [s for s in scope.split() if s not in _RESERVED_SCOPES]
        if not scopes or not all(s.endswith("/.default") for s in scopes):
            return _aad_error(400, "invalid_scope", 1002012,
                              f"The provided value for scope {scope} is not valid. Client credential flows "
                              "must have a scope value with /.default suffixed to the resource identifier "
                              "(application ID URI).")
        token_endpoint = f"{base_url}/{tenant_segment}/oauth2/v2.0/token"
        if "client_assertion" in form:
            failure = self._check_assertion(form, client_id, token_endpoint, tenant.tenant_id, base_url)
            if failure is not None:
                return failure
        elif "client_secret" in form:
            if not secrets.compare_digest(form["client_secret"], self.client_secret):
                return _aad_error(401, "invalid_client", 7000215,
                                  "Invalid client secret provided. Ensure the secret being sent in the request "
                                  "is the client secret value, not the client secret ID, for a secret added to "
                                  f"app '{client_id}'.")
        else:
            return _aad_error(401, "invalid_client", 7000218,
                              "The request body must contain the following parameter: 'client_assertion' "
                              "or 'client_secret'.")
        lifetime = int(self.token_lifetime)
        now = time.time()
        token = self._access_token(tenant.tenant_id, now, lifetime)
        with self._lock:
            self._tokens[token] = TokenInfo(tenant.tenant_id, client_id, now, now + lifetime)
            self.tokens_issued += 1
        return 200, {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                     "access_token": token}

    def _check_assertion(self, form: dict[str, str], client_id: str, token_endpoint: str, tenant_id: str,
                         base_url: str) -> tuple[int, JSON] | None:
        if form.get("client_assertion_type") != JWT_BEARER:
            return _aad_error(400, "invalid_request", 50027,
                              "JWT token is invalid or malformed: client_assertion_type must be "
                              f"'{JWT_BEARER}'.")
        parts = form["client_assertion"].split(".")
        try:
            header = json.loads(_b64url_decode(parts[0]))
            claims = json.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
        except (IndexError, ValueError, binascii.Error):
            return _aad_error(401, "invalid_client", 50027, "JWT token is invalid or malformed.")
        if not isinstance(header, dict) or not isinstance(claims, dict):
            return _aad_error(401, "invalid_client", 50027, "JWT token is invalid or malformed.")
        alg = header.get("alg")
        if alg not in _SIGNING_ALGS or not signature:
            return _aad_error(401, "invalid_client", 5002738,
                              f"Invalid JWT token. '{alg}' is not a supported signature algorithm. Supported "
                              f"signing algorithms are: '{', '.join(_SIGNING_ALGS)}'.")
        if claims.get("iss") != client_id or claims.get("sub", client_id) != client_id:
            return _aad_error(401, "invalid_client", 700021,
                              "Client assertion application identifier doesn't match 'client_id' parameter.")
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        accepted = {token_endpoint, f"{base_url}/{tenant_id}/oauth2/v2.0/token"}
        if not any(a in accepted for a in auds):
            return _aad_error(401, "invalid_client", 700212,
                              f"No matching federated identity record found for presented assertion audience "
                              f"'{aud}'.")
        if isinstance(claims.get("exp"), (int, float)) and claims["exp"] < time.time() - 300:
            return _aad_error(401, "invalid_client", 700024, "Client assertion is not within its valid time range.")
        if not self.client_certificate:
            return _aad_error(401, "invalid_client", 700027, "Client assertion failed signature validation: "
                              f"no certificate is registered for app '{client_id}'.")
        if not self._signature_ok(header, parts, signature):
            return _aad_error(401, "invalid_client", 700027, "Client assertion failed signature validation.")
        return None

    def _signature_ok(self, header: JSON, parts: list[str], signature: bytes) -> bool:
        from cryptography import x509
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding

        pem = self.client_certificate
        cert = x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)
        signed = f"{parts[0]}.{parts[1]}".encode()
        alg = header.get("alg")
        der = cert.public_bytes(serialization.Encoding.DER)
        x5t = header.get("x5t")
        if x5t and _b64url_decode(x5t) != hashlib.sha1(der).digest():  # noqa: S324 (thumbprint)
            return False
        x5t256 = header.get("x5t#S256")
        if x5t256 and _b64url_decode(x5t256) != hashlib.sha256(der).digest():
            return False
        key = cert.public_key()
        try:
            if alg == "PS256":
                key.verify(signature, signed, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                          salt_length=hashes.SHA256.digest_size),
                           hashes.SHA256())
            elif alg == "RS256":
                key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
            else:
                return False
        except InvalidSignature:
            return False
        return True

    # --- validation and knobs

    def validate(self, token: str) -> tuple[TokenInfo | None, str]:
        """(info, "") for a valid token, else (None, reason) with reason 'unknown' or 'expired'."""
        info = self._tokens.get(token)
        if info is None:
            return None, "unknown"
        now = time.time()
        max_age = self.token_max_age
        if now >= info.expires_at or (max_age is not None and now >= info.issued_at + max_age):
            return None, "expired"
        return info, ""

    def issued_tokens(self) -> list[str]:
        """Every access token handed out so far (valid or not)."""
        with self._lock:
            return list(self._tokens)

    def issue(self, tenant_id: str, lifetime: float | None = None) -> str:
        """A token without the HTTP dance (for tests and tools)."""
        now = time.time()
        token = self._access_token(tenant_id, now, lifetime)
        with self._lock:
            self._tokens[token] = TokenInfo(tenant_id, self.client_id, now,
                                            now + (self.token_lifetime if lifetime is None else lifetime))
            self.tokens_issued += 1
        return token

    def _access_token(self, tenant_id: str, now: float, lifetime: float | None) -> str:
        """A JWT-shaped access token carrying the claims a client may read, as Entra's Graph tokens do
        (Microsoft identity platform, "Access token claims reference": `tid` is the tenant's GUID,
        `appid` the client). The signature is random: the simulator checks tokens by lookup."""
        def part(obj: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=").decode()

        exp = now + (self.token_lifetime if lifetime is None else lifetime)
        claims = {"aud": "https://graph.microsoft.com", "iss": f"https://sts.windows.net/{tenant_id}/",
                  "iat": int(now), "nbf": int(now), "exp": int(exp), "appid": self.client_id,
                  "tid": tenant_id, "idtyp": "app", "jti": secrets.token_urlsafe(12)}
        return f"{part({'typ': 'JWT', 'alg': 'RS256'})}.{part(claims)}.{secrets.token_urlsafe(32)}"

    def expire_tokens_after(self, seconds: float) -> None:
        """Every token issued so far stops working ``seconds`` from now (0 = now)."""
        cutoff = time.time() + seconds
        with self._lock:
            for info in self._tokens.values():
                info.expires_at = min(info.expires_at, cutoff)

    def revoke_all_tokens(self) -> None:
        self.expire_tokens_after(0)
