"""The simulated Entra ID user sign-in (OpenID Connect authorization-code flow), part of the token authority.

Pure logic, no sockets: :mod:`graphsim.server` maps ``GET /{tenant}/oauth2/v2.0/authorize`` (a consent page
listing the test users; ``POST`` picks one), the token endpoint's ``grant_type=authorization_code``,
``GET /{tenant}/discovery/v2.0/keys`` (JWKS) and ``GET /{tenant}/oauth2/v2.0/logout`` onto :class:`SignIn`.

What Entra does, and so this does (sources in graphsim/README.md, "Sign-in"): the authorize request names a
registered client and one of its registered redirect URIs exactly (else an error page, never a redirect); a
code is single-use, bound to client, redirect URI and nonce, and short-lived; the token endpoint checks the
client secret (``client_secret_post`` or ``client_secret_basic``) and returns an RS256 ID token whose ``kid``
names a key of the tenant's JWKS, with the v2.0 claims iss, aud, sub, oid, tid, preferred_username, name,
roles, groups, nonce, iat, nbf, exp, ver. ``tamper`` makes the next ID tokens wrong on purpose (``forged``:
signed with a key not in the JWKS; ``expired``; ``unsigned``: ``alg: none``; ``audience``: issued to another
application; ``issuer``: rightly signed but issued by another directory, as Entra's keys are shared by every
tenant) so that a test shows the relying party refuses them.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

JSON = dict[str, Any]
CODE_LIFETIME_S = 600  # Entra: "Authorization codes are short lived, typically expiring after about 10 minutes"


@dataclass(frozen=True)
class SimUser:
    """A test user of a simulated tenant, with the app roles and group object ids Entra would put in the token."""

    username: str  # preferred_username (the UPN)
    name: str
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    oid: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass(frozen=True)
class SignInApp:
    """The app registration users sign in to (not the Graph app): its client id, secret and redirect URIs."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]


@dataclass
class _Code:
    tenant_id: str
    user: SimUser
    client_id: str
    redirect_uri: str
    nonce: str | None
    expires_at: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_b64(number: int) -> str:
    return _b64(number.to_bytes((number.bit_length() + 7) // 8, "big"))


class SignIn:
    """Users, sign-in apps, codes and the tenant's signing key."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.apps: dict[str, SignInApp] = {}
        self.users: dict[str, list[SimUser]] = {}  # tenant id -> users
        self.id_token_lifetime = 3600  # Entra's ID tokens: one hour
        self.tamper: str | None = None  # None, "forged", "expired", "unsigned", "audience", "issuer"
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._other = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # for "forged"
        self.kid = _b64(hashlib.sha256(self._public_der()).digest()[:15])
        self._codes: dict[str, _Code] = {}
        self._lock = threading.Lock()

    def _public_der(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self._key.public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)

    # --- configuration
    def register_app(self, client_id: str, client_secret: str, redirect_uris: list[str] | tuple[str, ...]) -> None:
        self.apps[client_id] = SignInApp(client_id, client_secret, tuple(redirect_uris))

    def add_user(self, tenant_id: str, user: SimUser) -> SimUser:
        self.users.setdefault(tenant_id, []).append(user)
        return user

    # --- keys
    def jwks(self) -> JSON:
        numbers = self._key.public_key().public_numbers()
        return {"keys": [{"kty": "RSA", "use": "sig", "kid": self.kid, "x5t": self.kid,
                          "n": _int_b64(numbers.n), "e": _int_b64(numbers.e)}]}

    # --- authorize
    def authorize(self, tenant_id: str, params: dict[str, str], picked: str | None) -> tuple[int, dict[str, str], str]:
        """(status, headers, HTML body): the consent page (picked None), or a 302 to the redirect URI with the code."""
        client_id, redirect_uri = params.get("client_id", ""), params.get("redirect_uri", "")
        app = self.apps.get(client_id)
        if app is None:
            return self._page(400, f"AADSTS700016: Application with identifier '{client_id}' was not found in the "
                                   "directory.")
        if redirect_uri not in app.redirect_uris:
            return self._page(400, "AADSTS50011: The redirect URI specified in the request does not match the "
                                   f"redirect URIs configured for the application '{client_id}'.")
        state = params.get("state")
        if params.get("response_type") != "code" or "openid" not in params.get("scope", "").split():
            return self._redirect(redirect_uri, {"error": "unsupported_response_type",
                                                 "error_description": "AADSTS70005: response_type 'code' with "
                                                                      "scope 'openid' is expected.", "state": state})
        users = self.users.get(tenant_id, [])
        if picked is None:
            return self._consent(tenant_id, params, users)
        user = next((u for u in users if u.username == picked), None)
        if user is None:
            return self._page(400, "AADSTS50034: The user account does not exist in this directory.")
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = _Code(tenant_id, user, client_id, redirect_uri, params.get("nonce"),
                                      time.time() + CODE_LIFETIME_S)
        return self._redirect(redirect_uri, {"code": code, "state": state})

    def _consent(self, tenant_id: str, params: dict[str, str], users: list[SimUser]) -> tuple[int, dict[str, str], str]:
        hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in params.items())
        buttons = "".join(f'<button type="submit" name="login_hint" value="{html.escape(u.username)}">'
                          f"{html.escape(u.name)} ({html.escape(u.username)})</button><br>" for u in users)
        body = (f"<!doctype html><html><head><title>Sign in to your account</title></head><body>"
                f"<h1>Pick an account</h1><p>Simulated tenant {html.escape(tenant_id)}: choosing an account consents "
                f"and signs in.</p><form method=\"post\">{hidden}{buttons or 'No test users.'}</form></body></html>")
        return 200, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}, body

    @staticmethod
    def _page(status: int, text: str) -> tuple[int, dict[str, str], str]:
        return status, {"Content-Type": "text/html; charset=utf-8"}, (
            f"<!doctype html><html><body><h1>Sign in</h1><p>{html.escape(text)}</p></body></html>")

    @staticmethod
    def _redirect(uri: str, query: dict[str, str | None]) -> tuple[int, dict[str, str], str]:
        kept = {k: v for k, v in query.items() if v is not None}
        return 302, {"Location": f"{uri}{'&' if '?' in uri else '?'}{urlencode(kept)}", "Cache-Control": "no-store"}, ""

    # --- token (grant_type=authorization_code)
    def redeem(self, issuer: str, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[int, JSON]:
        """The token response for an authorization code, or an Entra-shaped error (status, body)."""
        from graphsim.authority import _aad_error

        client_id, secret = basic if basic else (form.get("client_id", ""), form.get("client_secret", ""))
        app = self.apps.get(client_id)
        if app is None:
            return _aad_error(400, "unauthorized_client", 700016,
                              f"Application with identifier '{client_id}' was not found in the directory.")
        if not secrets.compare_digest(secret.encode(), app.client_secret.encode()):
            return _aad_error(401, "invalid_client", 7000215, "Invalid client secret provided.")
        with self._lock:
            code = self._codes.pop(form.get("code", ""), None)  # single use, whatever happens next
        if code is None or code.client_id != client_id or time.time() > code.expires_at:
            return _aad_error(400, "invalid_grant", 70008, "The provided authorization code or refresh token has "
                              "expired due to inactivity or was already redeemed.")
        if form.get("redirect_uri") != code.redirect_uri:
            return _aad_error(400, "invalid_grant", 50011, "The reply URL specified in the request does not match "
                              "the reply URL that the authorization code was issued for.")
        return 200, {"token_type": "Bearer", "scope": "openid profile email", "expires_in": self.id_token_lifetime,
                     "ext_expires_in": self.id_token_lifetime, "access_token": secrets.token_urlsafe(32),
                     "id_token": self.id_token(issuer, code.tenant_id, code.user, client_id, code.nonce)}

    def id_token(self, issuer: str, tenant_id: str, user: SimUser, client_id: str, nonce: str | None) -> str:
        """An RS256 ID token with Entra's v2.0 claims (or a wrong one when `tamper` says so)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        now = int(time.time())
        lifetime = -300 if self.tamper == "expired" else self.id_token_lifetime
        # `sub` is pairwise: unique per user and application (Entra: "a pairwise identifier")
        sub = _b64(hashlib.sha256(f"{user.oid}:{client_id}".encode()).digest()[:32])
        claims: JSON = {"aud": client_id, "iss": issuer, "iat": now - (600 if lifetime < 0 else 0),
                        "nbf": now - (600 if lifetime < 0 else 0), "exp": now + lifetime, "name": user.name,
                        "oid": user.oid, "preferred_username": user.username, "sub": sub, "tid": tenant_id,
                        "ver": "2.0", "uti": secrets.token_urlsafe(16)}
        if nonce is not None:
            claims["nonce"] = nonce
        if self.tamper == "audience":  # a token another application of the directory received
            claims["aud"] = "00000000-0000-4000-8000-0000000000aa"
        if self.tamper == "issuer":  # another directory's token: same keys, its own issuer and tid
            other = "99999999-9999-4999-8999-999999999999"
            claims["iss"], claims["tid"] = issuer.replace(tenant_id, other), other
        if user.roles:
            claims["roles"] = list(user.roles)
        if user.groups:
            claims["groups"] = list(user.groups)
        if self.tamper == "unsigned":
            header = {"typ": "JWT", "alg": "none"}
            return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."
        header = {"typ": "JWT", "alg": "RS256", "kid": self.kid}
        signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}".encode()
        key = self._other if self.tamper == "forged" else self._key
        return f"{signing.decode()}.{_b64(key.sign(signing, padding.PKCS1v15(), hashes.SHA256()))}"
