"""App-only (client credentials) tokens for Microsoft Graph through MSAL.

One :class:`TokenProvider` per tenant. It owns one ``msal.ConfidentialClientApplication``
for the authority ``{authority_host}/{tenant_id}`` and that app's in-memory token cache, so
repeated ``get_token()`` calls are served from MSAL's cache until the token nears expiry.

Decisions (checked against msal 1.39.0):

* ``instance_discovery=False`` always. The authority host is configured explicitly by the
  operator; for the well-known Microsoft hosts MSAL skips discovery anyway, and for any
  other host (sovereign clouds are well-known too; the local simulator is not) discovery
  would call ``login.microsoftonline.com/common/discovery/instance``: a useless round trip
  that fails offline. MSAL also calls discovery after a token *error* unless disabled.
* ``acquire_token_for_client`` refuses ``force_refresh=True`` (ValueError). A forced refresh
  removes this app's access tokens from ``app.token_cache`` (``search`` + ``remove_at``) and
  asks again, which makes MSAL go to the token endpoint. ``claims_challenge`` would also
  bypass the cache but sends a ``claims`` parameter Entra would interpret.
* MSAL creates its own ``requests.Session`` unless given ``http_client``. We always give it one
  (:class:`_MsalHttpClient`) that passes ``verify=`` and ``timeout=`` on every request: a
  session-wide ``verify`` is silently overridden by ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``.
  When no CA path is configured (``verify=True``) requests' default applies, which honours
  ``REQUESTS_CA_BUNDLE`` as users expect.
* MSAL returns errors as dicts; they become :class:`AuthError` naming the tenant and the
  AADSTS code. The client secret never appears in messages or logs.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import Any

import msal
import requests

from tenantpilot import logs

from .client import connection_reason
from .errors import AuthError, ConnectionFailed

__all__ = ["TokenProvider", "certificate_thumbprint", "DEFAULT_AUTHORITY_HOST", "DEFAULT_GRAPH_URL"]

log = logging.getLogger(__name__)

DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_GRAPH_URL = "https://graph.microsoft.com"

# Short explanations for the AADSTS codes an operator most often meets with app-only sign-in.
_AADSTS_HINTS: dict[int, str] = {
    7000215: "invalid client secret",
    7000222: "the client secret has expired",
    700016: "application not found in the tenant (wrong client id, or the app is not consented there)",
    700027: "the client assertion (certificate) is invalid or not registered on the app",
    90002: "tenant not found",
    900023: "the tenant id or domain is not valid",
    90014: "a required field is missing from the request",
    7000112: "the application is disabled",
    500011: "the resource (Graph) is not known in this tenant",
    1002012: "the scope is not valid for client credentials (it must end with /.default)",
}
_AADSTS_RE = re.compile(r"AADSTS(\d+)")


def certificate_thumbprint(pem: bytes) -> str:
    """SHA-1 thumbprint (upper-case hex) of the first certificate in a PEM blob."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    cert = x509.load_pem_x509_certificate(pem)
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - Entra's x5t is SHA-1


class _MsalHttpClient:
    """The ``http_client`` handed to MSAL: a requests session that always sends ``verify``
    and ``timeout`` per request and counts what it sends."""

    def __init__(self, verify: str | bool, timeout: float | tuple[float, float]) -> None:
        self._session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(max_retries=1)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._verify = verify
        self._timeout = timeout
        self.requests = 0
        self._lock = threading.Lock()

    def _kw(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        # Explicit per-request verify: a CA path (or False) wins over REQUESTS_CA_BUNDLE;
        # True lets requests apply the environment's bundle, as users expect.
        kwargs.setdefault("verify", self._verify)
        kwargs.setdefault("timeout", self._timeout)
        with self._lock:
            self.requests += 1
        return kwargs

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self._session.get(url, **self._kw(kwargs))

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self._session.post(url, **self._kw(kwargs))

    def close(self) -> None:
        self._session.close()


class TokenProvider:
    """Client-credentials tokens for one tenant.

    Exactly one of ``client_secret`` or ``certificate_path`` is required. A certificate is a
    PEM file holding the private key (and normally the certificate, from which the SHA-1
    thumbprint is computed when ``certificate_thumbprint`` is not given) or a ``.pfx``/``.p12``
    file (``certificate_password`` if it has one).
    """

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        *,
        client_secret: str | None = None,
        certificate_path: str | Path | None = None,
        certificate_thumbprint: str | None = None,
        certificate_password: str | None = None,
        authority_host: str = DEFAULT_AUTHORITY_HOST,
        graph_url: str = DEFAULT_GRAPH_URL,
        scope: str | None = None,
        verify: str | bool = True,
        timeout: float | tuple[float, float] = (5, 30),
    ) -> None:
        if not tenant_id:
            raise ValueError("tenant_id is required")
        if not client_id:
            raise ValueError("client_id is required")
        if bool(client_secret) == bool(certificate_path):
            raise ValueError("give exactly one of client_secret or certificate_path")
        self.tenant_id = tenant_id
        self.client_id = client_id
        host = authority_host.strip().rstrip("/")
        if "://" not in host:
            host = "https://" + host
        self.authority = f"{host}/{tenant_id}"
        self.scope = scope or f"{graph_url.rstrip('/')}/.default"
        self._secret = client_secret
        self._cert_path = Path(certificate_path) if certificate_path else None
        self._cert_thumbprint = certificate_thumbprint
        self._cert_password = certificate_password
        self._http = _MsalHttpClient(verify, timeout)
        self._cache = msal.TokenCache()
        self._app: msal.ConfidentialClientApplication | None = None
        self._lock = threading.RLock()
        self.token_requests = 0  # tokens actually fetched from the authority (not cache hits)

    def __repr__(self) -> str:  # never show the secret
        cred = "certificate" if self._cert_path else "secret"
        return f"TokenProvider(tenant_id={self.tenant_id!r}, client_id={self.client_id!r}, credential={cred})"

    # -- credential ------------------------------------------------------------------------

    def _credential(self) -> str | dict[str, Any]:
        if self._secret:
            return self._secret
        assert self._cert_path is not None
        path = self._cert_path
        try:
            if path.suffix.lower() in (".pfx", ".p12"):
                cred: dict[str, Any] = {"private_key_pfx_path": str(path)}
                if self._cert_password:
                    cred["passphrase"] = self._cert_password
                return cred
            pem = path.read_bytes()
        except OSError as e:
            raise AuthError(
                f"Tenant {self.tenant_id}: cannot read the certificate file {path}: {e.strerror or e}",
                tenant=self.tenant_id,
            ) from None
        thumb = self._cert_thumbprint
        public_cert = None
        if b"-----BEGIN CERTIFICATE-----" in pem:
            start = pem.index(b"-----BEGIN CERTIFICATE-----")
            end = pem.index(b"-----END CERTIFICATE-----", start) + len(b"-----END CERTIFICATE-----")
            public_cert = pem[start:end].decode("ascii")
            if not thumb:
                thumb = certificate_thumbprint(pem)
        if not thumb:
            raise AuthError(
                f"Tenant {self.tenant_id}: {path} holds no certificate; give certificate_thumbprint",
                tenant=self.tenant_id,
            )
        _check_rsa_key(pem, path, self.tenant_id, self._cert_password)
        cred = {"private_key": pem.decode("ascii"), "thumbprint": thumb.replace(":", "").upper()}
        if public_cert:
            cred["public_certificate"] = public_cert  # lets Entra do subject-name/issuer auth
        return cred

    def _get_app(self) -> msal.ConfidentialClientApplication:
        if self._app is None:
            try:
                # The constructor GETs {authority}/v2.0/.well-known/openid-configuration.
                self._app = msal.ConfidentialClientApplication(
                    self.client_id,
                    client_credential=self._credential(),
                    authority=self.authority,
                    http_client=self._http,
                    instance_discovery=False,
                    token_cache=self._cache,
                )
            except AuthError:
                raise
            except OSError as e:  # requests' errors are OSErrors too
                raise self._unreachable(e) from None
            except ValueError as e:
                # bad authority (http://, unknown tenant → discovery 400/404, malformed doc)
                text = str(e)
                if "Unable to get authority configuration" in text:
                    text = "the sign-in authority does not know this tenant; check the tenant id or domain"
                raise AuthError(
                    f"Tenant {self.tenant_id}: sign-in failed ({self._scrub(text)})",
                    tenant=self.tenant_id,
                    url=self.authority,
                ) from None
        return self._app

    # -- tokens ----------------------------------------------------------------------------

    def get_token(self, force_refresh: bool = False, *, rejected: str | None = None) -> str:
        """An access token for ``scope``.

        ``force_refresh=True`` drops the cached token and asks the authority for a new one.
        Pass ``rejected=<the token Graph refused>`` so that when several threads hit a 401 at
        once only the first fetches a new token; the others get the already-refreshed one.
        """
        with self._lock:
            app = self._get_app()
            if force_refresh:
                if rejected is not None:
                    current = self._acquire(app)
                    if current != rejected:
                        return current
                self._evict(app)
            return self._acquire(app)

    def _unreachable(self, e: OSError) -> ConnectionFailed:
        """The authority could not be reached: TLS, network, or e.g. a CA bundle path that does not exist."""
        if isinstance(e, requests.exceptions.SSLError):
            reason = (f"TLS verification of the sign-in authority failed (check the CA bundle / "
                      f"REQUESTS_CA_BUNDLE): {_first_line(e)}")
        elif isinstance(e, requests.exceptions.RequestException):
            reason = f"cannot reach the sign-in authority: {connection_reason(e)}"
        else:
            reason = f"cannot contact the sign-in authority: {_first_line(e)}"
        return ConnectionFailed(f"Tenant {self.tenant_id}: {reason}", url=self.authority)

    def _evict(self, app: msal.ConfidentialClientApplication) -> None:
        cache = app.token_cache
        at = cache.CredentialType.ACCESS_TOKEN
        for entry in list(cache.search(at, query={"client_id": self.client_id})):
            cache.remove_at(entry)

    def _acquire(self, app: msal.ConfidentialClientApplication) -> str:
        try:
            result = app.acquire_token_for_client(scopes=[self.scope])
        except OSError as e:  # requests' errors are OSErrors too
            raise self._unreachable(e) from None
        if not isinstance(result, dict):
            raise AuthError(f"Tenant {self.tenant_id}: sign-in failed (no answer from MSAL)", tenant=self.tenant_id)
        if "access_token" in result:
            if result.get("token_source") != "cache":
                self.token_requests += 1
                logs.log(log, logging.DEBUG, "new access token", tenant=self.tenant_id, expires_in=result.get("expires_in"))
            return result["access_token"]
        raise self._auth_error(result)

    def _auth_error(self, result: dict[str, Any]) -> AuthError:
        error = str(result.get("error") or "unknown_error")
        desc = str(result.get("error_description") or "")
        codes = result.get("error_codes") or []
        num: int | None = None
        if codes and str(codes[0]).isdigit():
            num = int(codes[0])
        else:
            m = _AADSTS_RE.search(desc)
            if m:
                num = int(m.group(1))
        detail = _AADSTS_HINTS.get(num) if num is not None else None
        if not detail:
            detail = _first_sentence(_AADSTS_RE.sub("", desc, count=1).lstrip(": ")) or error
        aadsts = f"AADSTS{num}" if num is not None else None
        label = f"{aadsts}: {detail}" if aadsts else f"{error}: {detail}" if detail != error else error
        msg = self._scrub(f"Tenant {self.tenant_id}: sign-in failed ({label})")
        return AuthError(msg, tenant=self.tenant_id, aadsts=aadsts, code=error, url=self.authority)

    def _scrub(self, text: str) -> str:
        if self._secret and self._secret in text:
            text = text.replace(self._secret, "***")
        return text

    def close(self) -> None:
        self._http.close()


def _check_rsa_key(pem: bytes, path: Path, tenant: str, password: str | None) -> None:
    """Entra signs client assertions with RS256 only: fail early and clearly on other keys."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem, password.encode() if password else None)
    except (ValueError, TypeError) as e:
        raise AuthError(
            f"Tenant {tenant}: {path} holds no usable PEM private key ({_first_line(e)})", tenant=tenant
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise AuthError(
            f"Tenant {tenant}: the key in {path} is {type(key).__name__.lstrip('_')}, but Entra ID client "
            "certificates need an RSA key",
            tenant=tenant,
        )


def _first_line(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return s[0][:300] if s else type(e).__name__


def _first_sentence(text: str) -> str:
    text = " ".join(text.split())
    for stop in (". Trace ID", " Trace ID:", ". "):
        i = text.find(stop)
        if i > 0:
            text = text[:i]
            break
    text = text.rstrip(".")
    if text[:1].isupper() and not text[1:2].isupper():
        text = text[0].lower() + text[1:]
    return text[:200]
