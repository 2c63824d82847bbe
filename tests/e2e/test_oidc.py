"""The simulator's authority signs users in as Entra ID does (authorization code -> RS256 ID token), over real
HTTPS, and the relying party's check is Authlib's own: the same `parse_id_token` Streamlit's st.login runs in
its callback (issuer from the discovery document, keys from its jwks_uri, audience, expiry, nonce). A forged,
an expired and an unsigned ID token are refused, and so are a token issued to another application and one issued
by another directory (rightly signed: Entra's signing keys are shared by every tenant)."""

from __future__ import annotations

import asyncio
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from graphsim.oidc import SimUser

CONTOSO = "11111111-1111-4111-8111-111111111111"
CLIENT_ID = "8c9e4f5a-1d2b-4c3d-9e8f-0a1b2c3d4e5f"
SECRET = "sign-in~app.secret"
REDIRECT = "http://127.0.0.1:8599/oauth2callback"


@pytest.fixture(scope="module")
def user(sim) -> SimUser:
    sim.authority.signin.register_app(CLIENT_ID, SECRET, [REDIRECT])
    return sim.authority.signin.add_user(CONTOSO, SimUser("ann@contoso.example", "Ann Analyst",
                                                          roles=("TenantPilot.Analyst",), groups=("g-1", "g-2")))


def sign_in(sim, username: str, nonce: str, *, redirect: str = REDIRECT, auth: str = "basic") -> requests.Response:
    """The browser's part: open the authorize URL, pick the user, follow to the code; then the app's token call."""
    meta = requests.get(f"{sim.url}/{CONTOSO}/v2.0/.well-known/openid-configuration", verify=sim.ca_path).json()
    query = {"client_id": CLIENT_ID, "response_type": "code", "redirect_uri": redirect, "scope": "openid profile email",
             "state": "st-1", "nonce": nonce, "prompt": "select_account"}
    page = requests.get(meta["authorization_endpoint"], params=query, verify=sim.ca_path)
    assert page.status_code == 200 and username in page.text
    picked = requests.post(meta["authorization_endpoint"], data={**query, "login_hint": username}, verify=sim.ca_path,
                           allow_redirects=False)
    assert picked.status_code == 302, picked.text
    back = parse_qs(urlsplit(picked.headers["Location"]).query)
    assert picked.headers["Location"].startswith(redirect + "?") and back["state"] == ["st-1"]
    form = {"grant_type": "authorization_code", "code": back["code"][0], "redirect_uri": redirect}
    if auth == "basic":
        return requests.post(meta["token_endpoint"], data=form, auth=(CLIENT_ID, SECRET), verify=sim.ca_path)
    return requests.post(meta["token_endpoint"], data={**form, "client_id": CLIENT_ID, "client_secret": SECRET},
                         verify=sim.ca_path)


def verify(sim, token: dict[str, Any], nonce: str, monkeypatch) -> dict[str, Any]:
    """Authlib's ID-token check, configured as Streamlit configures it from [auth]."""
    from authlib.integrations.starlette_client import OAuth

    monkeypatch.setenv("SSL_CERT_FILE", str(sim.ca_path))  # httpx (Authlib's client) trusts the simulator's CA
    oauth = OAuth()
    oauth.register("tp", client_id=CLIENT_ID, client_secret=SECRET,
                   server_metadata_url=f"{sim.url}/{CONTOSO}/v2.0/.well-known/openid-configuration")
    return dict(asyncio.run(oauth.create_client("tp").parse_id_token(token, nonce)))


@pytest.mark.parametrize("auth", ["basic", "post"])
def test_a_user_signs_in_and_the_id_token_carries_entras_claims(sim, user, monkeypatch, auth):
    nonce = secrets.token_urlsafe(12)
    answer = sign_in(sim, user.username, nonce, auth=auth)
    assert answer.status_code == 200, answer.text
    claims = verify(sim, answer.json(), nonce, monkeypatch)
    assert claims["iss"] == f"{sim.url}/{CONTOSO}/v2.0" and claims["aud"] == CLIENT_ID and claims["tid"] == CONTOSO
    assert claims["preferred_username"] == user.username and claims["name"] == user.name and claims["oid"] == user.oid
    assert claims["roles"] == ["TenantPilot.Analyst"] and claims["groups"] == ["g-1", "g-2"]
    assert claims["nonce"] == nonce and claims["ver"] == "2.0" and claims["exp"] > claims["iat"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", claims["sub"])  # pairwise, not the oid


@pytest.mark.parametrize(("tamper", "refusal", "says"), [
    ("forged", "BadSignatureError", None), ("expired", "ExpiredTokenError", None),
    ("unsigned", "UnsupportedAlgorithmError", None), ("audience", "MissingClaimError", "azp"),
    ("issuer", "InvalidClaimError", "iss")])  # another app's token: Authlib wants an azp naming this one first
def test_a_forged_expired_unsigned_or_misaddressed_id_token_is_refused(sim, user, monkeypatch, tamper, refusal, says):
    from joserfc import errors

    nonce = secrets.token_urlsafe(12)
    sim.authority.signin.tamper = tamper
    try:
        answer = sign_in(sim, user.username, nonce)
    finally:
        sim.authority.signin.tamper = None
    assert answer.status_code == 200
    with pytest.raises(getattr(errors, refusal), match=says):  # the reason, not any error
        verify(sim, answer.json(), nonce, monkeypatch)


def test_an_id_token_for_another_sign_in_attempt_is_refused(sim, user, monkeypatch):
    from joserfc.errors import InvalidClaimError

    answer = sign_in(sim, user.username, "nonce-a")
    with pytest.raises(InvalidClaimError, match="nonce"):
        verify(sim, answer.json(), "nonce-b", monkeypatch)


def test_codes_are_single_use_and_bound_to_the_redirect_uri(sim, user):
    meta = requests.get(f"{sim.url}/{CONTOSO}/v2.0/.well-known/openid-configuration", verify=sim.ca_path).json()
    query = {"client_id": CLIENT_ID, "response_type": "code", "redirect_uri": REDIRECT, "scope": "openid",
             "state": "s", "nonce": "n"}
    picked = requests.post(meta["authorization_endpoint"], data={**query, "login_hint": user.username},
                           verify=sim.ca_path, allow_redirects=False)
    code = parse_qs(urlsplit(picked.headers["Location"]).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": "http://127.0.0.1:1/oauth2callback"}
    wrong = requests.post(meta["token_endpoint"], data=form, auth=(CLIENT_ID, SECRET), verify=sim.ca_path)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    again = requests.post(meta["token_endpoint"], data={**form, "redirect_uri": REDIRECT}, auth=(CLIENT_ID, SECRET),
                          verify=sim.ca_path)
    assert again.status_code == 400  # the first redemption used it up
    bad = requests.post(meta["token_endpoint"], data={**form, "redirect_uri": REDIRECT}, auth=(CLIENT_ID, "wrong"),
                        verify=sim.ca_path)
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"


def test_an_unregistered_redirect_uri_gets_an_error_page_never_a_redirect(sim, user):
    meta = requests.get(f"{sim.url}/{CONTOSO}/v2.0/.well-known/openid-configuration", verify=sim.ca_path).json()
    query = {"client_id": CLIENT_ID, "response_type": "code", "redirect_uri": "https://evil.example/oauth2callback",
             "scope": "openid", "state": "s", "nonce": "n", "login_hint": user.username}
    page = requests.post(meta["authorization_endpoint"], data=query, verify=sim.ca_path, allow_redirects=False)
    assert page.status_code == 400 and "AADSTS50011" in page.text and "Location" not in page.headers
