"""Sign-in: whether the app asks its users to sign in, the gate every page passes (`gate`, called by the
router before any page runs), who is signed in (`current_user`) and the sidebar line with the sign-out.

Sign-in is Streamlit's own (`st.login`, OpenID Connect; Microsoft Entra ID in production, the simulator's
authority in tests), configured by the `[auth]` section of `.streamlit/secrets.toml` with the five keys of
`REQUIRED_KEYS`. Streamlit (Authlib) verifies the ID token: signature against the provider's keys, issuer,
audience, expiry and nonce; `st.user` holds its claims, and `tenantpilot.access` turns them into a role.

A link opened before sign-in (`/compare?cmp_tenants=...`) shows nothing but the sign-in; Streamlit's callback then
always lands on the app's root, so the gate keeps the link the browser asked for in the tab's own sessionStorage
(`deep_link_script`: the browser's own location, never a value from the server) and, on the first run after sign-in,
sends the tab back to it (`restore_script`: only a path of this app, never another site or an auth route).

Without `[auth]` the app serves only this machine (127.0.0.1) and says so; started on another address it
refuses to show anything unless TENANTPILOT_PROXY_AUTHENTICATES=1 says a reverse proxy in front of it
authenticates users (`exposure_problem`; `python -m tenantpilot.app.signin` is scripts/run.sh's check).
"""

from __future__ import annotations

import json
import os
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tenantpilot import access
from tenantpilot.config import ConfigError, Settings

REQUIRED_KEYS = ("redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
PROXY_HEADERS = ("X-Forwarded-Email", "X-Forwarded-User", "X-Auth-Request-Email", "X-Auth-Request-User")


def signin_configured(section: Mapping[str, Any] | None) -> bool:
    """True when `[auth]` holds every REQUIRED_KEYS value, False when there is no `[auth]`; a partial section
    raises ConfigError naming what is missing (never the values: two of them are secrets)."""
    if not section:
        return False
    missing = [k for k in REQUIRED_KEYS if not str(section.get(k) or "").strip()]
    if missing:
        raise ConfigError(f"the [auth] section of .streamlit/secrets.toml lacks {', '.join(missing)}: sign-in needs "
                          f"all of {', '.join(REQUIRED_KEYS)} (README, *Sign-in*), or remove [auth] to run on "
                          "127.0.0.1 without sign-in")
    if not str(section["redirect_uri"]).rstrip("/").endswith("/oauth2callback"):
        raise ConfigError("[auth] redirect_uri must be the app's address followed by /oauth2callback, e.g. "
                          "https://tenantpilot.example.com/oauth2callback (and registered as such in Entra ID)")
    return True


def exposure_problem(address: str | None, signin: bool, proxy_authenticates: bool) -> str | None:
    """Why the app must not serve on this address (None: it may). Without sign-in only a loopback address is
    allowed, unless the operator says a proxy authenticates; an empty address means every interface."""
    if signin or proxy_authenticates:
        return None
    if (address or "").strip().strip("[]") in LOOPBACK:
        return None
    shown = address or "every interface (server.address is empty)"
    return (f"TenantPilot has no sign-in configured and is set to listen on {shown}: anyone who reaches that "
            "address could read every tenant's settings. Configure sign-in (the [auth] section of "
            ".streamlit/secrets.toml, README *Sign-in*), or listen on 127.0.0.1, or, only when a reverse proxy in "
            "front of the app authenticates every user, set TENANTPILOT_PROXY_AUTHENTICATES=1.")


# --- the deep link kept across sign-in ---------------------------------------------------------------
NEXT_KEY = "tenantpilot.next"  # the tab's sessionStorage key (a per-tab store: another tab or user never sees it)
# paths the link may never be: Streamlit's auth routes (a link to /auth/logout would sign the user out again) and
# its internal endpoints; and nothing that is not a path of this origin ("//evil.example", "https:", "\\")
_SKIP = ("/auth/", "/oauth2callback", "/_stcore/", "/media/", "/component/", "/app/static/")

KEEP_SCRIPT = """<script>
(() => {
  try {
    const next = window.location.pathname + window.location.search;
    if (next === "/" || next === "") { sessionStorage.removeItem("NEXT_KEY"); return; }
    sessionStorage.setItem("NEXT_KEY", next);
  } catch (e) { /* storage refused (private mode): the user lands on the start page */ }
})();
</script>""".replace("NEXT_KEY", NEXT_KEY)

RESTORE_SCRIPT = r"""<script>
(() => {
  let next = null;
  try { next = sessionStorage.getItem("NEXT_KEY"); sessionStorage.removeItem("NEXT_KEY"); } catch (e) { return; }
  if (!next || next[0] !== "/" || next[1] === "/" || /[\\\s]/.test(next)) return;
  for (const skip of SKIP) { if (next.includes(skip)) return; }
  if (next !== window.location.pathname + window.location.search) window.location.replace(next);
})();
</script>""".replace("NEXT_KEY", NEXT_KEY).replace("SKIP", json.dumps(_SKIP))


def keep_deep_link() -> None:
    """On the sign-in screen: remember in this tab the page and query the browser asked for."""
    import streamlit as st

    st.html(KEEP_SCRIPT, unsafe_allow_javascript=True, width="content")


def restore_deep_link() -> None:
    """After sign-in, once per session: send the tab to the link it asked for before signing in, if any."""
    import streamlit as st

    if st.session_state.get("_signin_link_restored"):
        return
    st.session_state["_signin_link_restored"] = True
    with st.sidebar:
        st.html(RESTORE_SCRIPT, unsafe_allow_javascript=True, width="content")


# --- in the app ------------------------------------------------------------------------------------
def _auth_section() -> dict[str, Any]:
    import streamlit as st

    if not st.secrets.load_if_toml_exists():
        return {}
    section: Any = st.secrets.get("auth")
    if section is None:
        return {}
    return dict(section.to_dict()) if hasattr(section, "to_dict") else dict(section)


def current_user(cfg: Settings) -> access.User:
    """The user of this session: from the verified ID token when sign-in is configured (no role when not signed
    in), else the operator of this machine (or whoever the authenticating proxy names)."""
    import streamlit as st

    if signin_configured(_auth_section()):
        if not st.user.is_logged_in:
            return access.User(actor="", name="not signed in", role=None)
        return access.user_from_claims(st.user.to_dict(), dict(cfg.role_claims))
    if cfg.proxy_authenticates:
        named = next((st.context.headers.get(h) for h in PROXY_HEADERS if st.context.headers.get(h)), None)
        who = str(named or "unknown")
        return access.User(actor=f"proxy:{who}", name=f"{who} (signed in at the proxy)", role=access.Role.ADMIN)
    return access.local_operator()


def gate(cfg: Settings) -> access.User:
    """Run before any page: returns the user who may use the app, or shows the sign-in (or why the app refuses
    to serve) and stops the run, so no page, deep link included, renders before this passes."""
    import streamlit as st

    from tenantpilot.app.escaping import inert
    from tenantpilot.app.messages import explain, fail

    try:
        signin = signin_configured(_auth_section())
    except ConfigError as exc:
        fail(explain(exc, "read the sign-in settings"))
    if not signin:
        problem = exposure_problem(st.get_option("server.address"), False, cfg.proxy_authenticates)
        if problem:
            fail(problem)
        return current_user(cfg)
    if not st.user.is_logged_in:
        st.title("TenantPilot")
        st.write("Sign in with your work account to see your tenants.")
        st.button("Sign in with Microsoft", type="primary", icon=":material/login:", on_click=st.login,
                  key="signin")
        keep_deep_link()
        st.stop()
    user = current_user(cfg)
    restore_deep_link()
    if user.role is None:
        with st.sidebar:
            sidebar(user)
        fail(f"You are signed in as {inert(user.actor)}, but your account has no TenantPilot role. Ask an admin to "
             "assign you an app role of the TenantPilot sign-in app in Entra ID (TenantPilot.Viewer, "
             "TenantPilot.Analyst or TenantPilot.Admin), then sign out and in again.")
    return user


def permitted(user: access.User, action: str) -> bool:
    """The server-side check at the moment of acting (a hidden or disabled control is only a courtesy: a session
    can send any widget value): True when the user may, else st.error saying which role it needs."""
    import streamlit as st

    from tenantpilot.app.escaping import inert

    try:
        access.require(user, action)
    except access.Forbidden as exc:
        st.error(inert(exc), icon=":material/block:")
        return False
    return True


def why_not(user: access.User, action: str) -> str | None:
    """A control's help text when the user may not use it (None when they may)."""
    return None if access.can(user, action) else f"Needs the {access.ACTIONS[action].label} role."


def sidebar(user: access.User) -> None:
    """Who is signed in, with their role, and the sign-out; or that nobody signs in, and why that is safe."""
    import streamlit as st

    from tenantpilot.app.escaping import inert

    if user.signed_in:
        role = user.role.label if user.role is not None else "no role"
        st.caption(f"Signed in as **{inert(user.name)}** ({inert(user.actor)}) · {role}")
        st.button("Sign out", icon=":material/logout:", on_click=st.logout, key="signout")
    elif user.actor.startswith("proxy:"):
        st.caption(f"No sign-in here: the reverse proxy in front authenticates ({inert(user.name)}).")
    else:
        st.caption("No sign-in: this app serves this machine only (127.0.0.1). Configure sign-in to share it "
                   "(README, *Sign-in*).")


# --- scripts/run.sh's check, before the app starts ------------------------------------------------
def _toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text()) if path.is_file() else {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path} is not readable TOML: {exc}") from None


def launch_problem(root: Path, cfg: Settings, env: Mapping[str, str]) -> str | None:
    """What `streamlit run` from `root` would be refused for: the address it would listen on (STREAMLIT_SERVER_ADDRESS,
    else .streamlit/config.toml) against the sign-in configured in .streamlit/secrets.toml (or ~/.streamlit/)."""
    secrets = _toml(root / ".streamlit" / "secrets.toml") or _toml(Path.home() / ".streamlit" / "secrets.toml")
    signin = signin_configured(secrets.get("auth"))
    address = env.get("STREAMLIT_SERVER_ADDRESS")
    if address is None:
        address = _toml(root / ".streamlit" / "config.toml").get("server", {}).get("address", "")
    return exposure_problem(address, signin, cfg.proxy_authenticates)


if __name__ == "__main__":  # python -m tenantpilot.app.signin: exit 2 with the reason when the app would refuse
    from tenantpilot.config import load_settings

    try:
        problem = launch_problem(Path.cwd(), load_settings(), os.environ)
    except ConfigError as exc:
        sys.exit(f"tenantpilot: configuration error: {exc}")
    if problem:
        sys.exit(f"tenantpilot: {problem}")
