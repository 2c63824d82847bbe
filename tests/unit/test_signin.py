"""Sign-in gate (tenantpilot/app/signin.py) and the exposure rule: with [auth] configured no page shows tenant
data before sign-in (deep links and query strings included); without it the app serves 127.0.0.1 only unless
a proxy is declared to authenticate. AppTest runs the real router (streamlit_app.py) on a real DuckDB file."""

from __future__ import annotations

from pathlib import Path

import pytest
from apptest import APP, BASELINE, CONTOSO, NAMES, NORTHWIND
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from tenantpilot.app import signin
from tenantpilot.config import ConfigError, load_settings

AUTH = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "c00kie-" * 6,
        "client_id": "0f4f6f1e-3c39-4a0b-8e43-3d9ad2b1f001", "client_secret": "TOP~secret.value",
        "server_metadata_url": "https://login.example/t/v2.0/.well-known/openid-configuration"}
PAGES = ["tenants", "sync", "explore", "compare", "changes", "health"]


@pytest.mark.parametrize(("address", "signed", "proxy", "refused"), [
    ("127.0.0.1", False, False, False), ("localhost", False, False, False), ("::1", False, False, False),
    ("[::1]", False, False, False), ("0.0.0.0", False, False, True), ("", False, False, True),
    (None, False, False, True), ("10.1.2.3", False, False, True), ("0.0.0.0", True, False, False),
    ("0.0.0.0", False, True, False), ("127.0.0.1.evil.example", False, False, True),
])
def test_exposure_rule(address, signed, proxy, refused):
    problem = signin.exposure_problem(address, signed, proxy)
    assert (problem is not None) == refused
    if refused:
        assert "TENANTPILOT_PROXY_AUTHENTICATES" in problem and "[auth]" in problem


@pytest.mark.parametrize("drop", ["redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url"])
def test_a_partial_auth_section_names_what_is_missing_never_a_secret(drop):
    partial = {k: v for k, v in AUTH.items() if k != drop}
    with pytest.raises(ConfigError) as err:
        signin.signin_configured(partial)
    assert drop in str(err.value)
    assert AUTH["client_secret"] not in str(err.value) and AUTH["cookie_secret"] not in str(err.value)


def test_sign_in_is_configured_by_all_five_keys_and_a_callback_uri():
    assert signin.signin_configured(AUTH) and not signin.signin_configured({}) and not signin.signin_configured(None)
    with pytest.raises(ConfigError, match="oauth2callback"):
        signin.signin_configured({**AUTH, "redirect_uri": "http://127.0.0.1:8501/"})


@pytest.mark.parametrize(("config_toml", "secrets_toml", "env", "refused"), [
    ('[server]\naddress = "127.0.0.1"\n', None, {}, False),
    ('[server]\naddress = "0.0.0.0"\n', None, {}, True),
    ('[server]\nheadless = true\n', None, {}, True),  # no address: Streamlit listens on every interface
    ('[server]\naddress = "127.0.0.1"\n', None, {"STREAMLIT_SERVER_ADDRESS": "0.0.0.0"}, True),
    ('[server]\naddress = "0.0.0.0"\n', "[auth]\n" + "".join(f'{k} = "{v}"\n' for k, v in AUTH.items()), {}, False),
    ('[server]\naddress = "0.0.0.0"\n', None, {"TENANTPILOT_PROXY_AUTHENTICATES": "1"}, False),
])
def test_run_sh_check_reads_the_address_and_secrets_streamlit_will(tmp_path, monkeypatch, config_toml, secrets_toml,
                                                                   env, refused):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.streamlit/secrets.toml of the developer
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "config.toml").write_text(config_toml)
    if secrets_toml:
        (tmp_path / ".streamlit" / "secrets.toml").write_text(secrets_toml)
    cfg = load_settings({**env, "TENANTPILOT_DATA_DIR": str(tmp_path)}, dotenv=False)
    assert (signin.launch_problem(tmp_path, cfg, env) is not None) == refused


def test_run_sh_runs_the_check_before_starting_anything():
    run = (Path(APP).parent / "scripts" / "run.sh").read_text()
    assert run.index("tenantpilot.app.signin") < run.index("simulate") < run.index("streamlit run")


def _everything(at: AppTest) -> str:
    parts = []
    for kind in ("markdown", "caption", "title", "header", "subheader", "info", "warning", "error", "success", "text"):
        parts += [str(getattr(e, "value", "")) for e in getattr(at, kind)]
    parts += [str(e.value) for e in at.dataframe] + [str(e.options) for e in [*at.multiselect, *at.selectbox]]
    return "\n".join(parts)


@pytest.mark.parametrize("page", PAGES)
def test_no_page_shows_tenant_data_before_sign_in(filled, page):
    """Every page, opened directly with a shared link's query string, shows only the sign-in button."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": False}
    at.query_params["cmp_tenants"] = [CONTOSO, NORTHWIND]
    at.query_params["ex_tenants"] = [CONTOSO]
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Sign in with Microsoft"]
    shown = _everything(at)
    assert all(name not in shown for name in NAMES.values()), shown
    assert CONTOSO not in shown and BASELINE not in shown and not at.dataframe


def test_signed_in_without_a_role_sees_nothing_but_why(filled):
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": True, "preferred_username": "eve@contoso.example", "name": "Eve", "roles": ["Other"]}
    at.switch_page("app_pages/explore.py").run()
    assert any("no TenantPilot role" in e.value for e in at.error)
    assert all(name not in _everything(at) for name in NAMES.values())
    assert "Sign out" in [b.label for b in at.button]


def test_signed_in_viewer_sees_who_and_a_sign_out(filled):
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": True, "preferred_username": "ann@contoso.example", "name": "Ann [x](https://evil.example)",
               "roles": ["TenantPilot.Viewer"]}
    at.run()
    assert not at.exception
    line = next(c.value for c in at.sidebar.caption if "Signed in as" in c.value)
    assert "viewer" in line and "](https" not in line  # the name is the token's text, never live Markdown
    assert "Sign out" in [b.label for b in at.sidebar.button]


@pytest.mark.parametrize(("address", "proxy", "refused"), [("0.0.0.0", False, True), ("127.0.0.1", False, False),
                                                          ("0.0.0.0", True, False)])
def test_without_sign_in_the_app_refuses_other_addresses(filled, monkeypatch, address, proxy, refused):
    before = st_config.get_option("server.address")
    st_config.set_option("server.address", address)
    try:
        if proxy:
            monkeypatch.setenv("TENANTPILOT_PROXY_AUTHENTICATES", "1")
            from tenantpilot.config import settings
            settings.cache_clear()
        at = AppTest.from_file(APP, default_timeout=60).run()
    finally:
        st_config.set_option("server.address", before)
    assert not at.exception
    refusal = [e.value for e in at.error if "no sign-in configured" in e.value]
    assert bool(refusal) == refused
    assert (NAMES[CONTOSO] in _everything(at)) == (not refused)
    caption = " ".join(c.value for c in at.sidebar.caption)
    if not refused:
        assert ("proxy" in caption) if proxy else ("this machine only" in caption)
