"""Sign-in in a real browser (Debian's chromium, Playwright): Streamlit's st.login against the simulator's
OpenID Connect authority, over HTTPS, as three users of one Entra tenant with the app roles viewer, analyst and
admin, the viewer limited to one tenant group. Before sign-in a shared deep link (/compare?...) shows the sign-in
button and no tenant data; after sign-in the user lands on that page and query, and a remembered link that is not
a page of this app (another site, an auth route) is never followed. Each signed-in user sees only their tenants
and can use exactly their role's controls (an analyst queues a real sync; a viewer cannot); a forged, expired,
unsigned or another directory's ID token leaves the browser signed out. The app's server checks the ID token with
Authlib (SSL_CERT_FILE trusts the simulator's CA); the browser is told to accept the simulator's certificate,
nothing else. Screenshots: screenshots/signin-{before,viewer,analyst,admin,deep-link}.png."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from apptest import CONTOSO as APP_CONTOSO
from apptest import FABRIKAM as APP_FABRIKAM
from apptest import fill
from test_browser import (  # noqa: F401 - browser is a fixture
    CHROMIUM,
    WIDTH,
    Processes,
    assert_clean,
    browser,
    clean_env,
    free_port,
    healthy,
    settle,
    shoot,
    streamlit_args,
    wait_until,
)

from graphsim.oidc import SimUser
from tenantpilot.store import Store

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed at /usr/bin/chromium")

ENTRA_TENANT = "11111111-1111-4111-8111-111111111111"  # the simulator's Contoso: the MSP's own directory
CLIENT_ID = "3b8f2c1d-6a4e-4f5b-9c7d-8e9f0a1b2c3d"
USERS = {role: SimUser(f"{role.lower()}@msp.example", f"{role} Person", roles=(f"TenantPilot.{role}",))
         for role in ("Viewer", "Analyst", "Admin")}


@pytest.fixture(scope="module")
def signin_app(sim, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Store]]:
    data = tmp_path_factory.mktemp("signin")
    db = data / "app.duckdb"
    store = Store(db)
    fill(store)
    store.set_group("Healthcare", [APP_CONTOSO])  # the viewer sees Contoso only
    store.set_group("Retail", [APP_FABRIKAM])
    store.set_limits(USERS["Viewer"].username, ["Healthcare"])
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    secret = secrets.token_urlsafe(24)
    sim.authority.signin.register_app(CLIENT_ID, secret, [f"{url}/oauth2callback"])
    for user in USERS.values():
        sim.authority.signin.add_user(ENTRA_TENANT, user)
    (data / "secrets.toml").write_text(
        "[auth]\n"
        f'redirect_uri = "{url}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_urlsafe(32)}"\n'
        f'client_id = "{CLIENT_ID}"\n'
        f'client_secret = "{secret}"\n'
        f'server_metadata_url = "{sim.url}/{ENTRA_TENANT}/v2.0/.well-known/openid-configuration"\n')
    procs = Processes(data)
    try:
        procs.start("streamlit", [*streamlit_args(port), "--secrets.files", str(data / "secrets.toml")],
                    clean_env(TENANTPILOT_DB=str(db), TENANTPILOT_DATA_DIR=str(data), SSL_CERT_FILE=str(sim.ca_path)))
        wait_until("streamlit health", lambda: healthy(url), procs)
        yield url, store
    finally:
        procs.stop()


@pytest.fixture
def page(browser):  # noqa: F811 - this module's page accepts the simulator's certificate
    context = browser.new_context(viewport={"width": WIDTH, "height": 1000}, ignore_https_errors=True)
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    context.close()


def sign_in(page, url: str, user: SimUser) -> None:
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_role("button", name="Sign in with Microsoft").click()
    page.get_by_role("heading", name="Pick an account").wait_for()  # the authority's page
    page.get_by_role("button", name=f"{user.name} ({user.username})").click()


def enabled(page, name: str) -> bool:
    return page.get_by_role("button", name=name).first.is_enabled()


def test_a_deep_link_before_sign_in_shows_no_data(signin_app, page):
    url, _ = signin_app
    query = urlencode([("cmp_tenants", n) for n in ("Contoso", "Fabrikam", "Northwind")])
    page.goto(f"{url}/compare?{query}", wait_until="domcontentloaded")
    page.get_by_role("button", name="Sign in with Microsoft").wait_for(timeout=60_000)
    settle(page)
    body = page.inner_text("body")
    for name in ("Contoso", "Fabrikam", "Northwind", "CIS Level 1", APP_CONTOSO, "Alignment"):
        assert name not in body
    assert page.locator("[data-testid='stDataFrame']").count() == 0
    assert page.locator("[data-testid='stSidebarNav']").count() == 0  # not even the page list
    shoot(page, "signin-before.png")


@pytest.mark.parametrize(("role", "may_sync", "may_add"), [("Viewer", False, False), ("Analyst", True, False),
                                                           ("Admin", True, True)])
def test_each_role_can_use_only_its_controls(signin_app, page, role, may_sync, may_add):
    url, store = signin_app
    user = USERS[role]
    sign_in(page, url, user)
    page.get_by_text(f"Signed in as {user.name}").first.wait_for(timeout=60_000)
    page.get_by_role("heading", name="Tenants", exact=True).first.wait_for()
    page.get_by_text("Import a baseline").first.wait_for()
    page.locator("[data-testid='stDataFrame']").first.wait_for()  # the tenant table (a canvas)
    settle(page)
    assert f"{role.lower()}" in page.locator("[data-testid='stSidebar']").inner_text()
    assert enabled(page, "Add tenant") == may_add
    assert enabled(page, "Remove tenant") is False  # nothing chosen yet, for anyone
    assert enabled(page, "Import baseline") == may_sync  # analysts and admins import
    shoot(page, f"signin-{role.lower()}.png")
    page.goto(f"{url}/sync", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Sync", exact=True).first.wait_for(timeout=60_000)
    settle(page)
    assert enabled(page, "Sync now") == may_sync
    page.get_by_role("combobox").first.click()  # every role reads its tenants: the limited viewer Contoso only
    page.get_by_role("option", name="Contoso").first.wait_for()
    offered = page.get_by_role("option").all_inner_texts()
    assert any("Fabrikam" in o for o in offered) == (role != "Viewer"), offered
    assert any("Northwind" in o for o in offered) == (role != "Viewer"), offered
    page.get_by_role("option", name="Contoso").first.click()
    page.keyboard.press("Escape")
    if may_sync:  # a real enqueue: the run is in the database as queued
        page.get_by_role("button", name="Sync now").click()
        page.get_by_text(re.compile(r"Contoso: (run \d+ queued|already queued)")).first.wait_for(timeout=30_000)
        assert store.runs(APP_CONTOSO, limit=5).height >= 1
    assert_clean(page)
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="Sign in with Microsoft").wait_for(timeout=60_000)
    assert "Contoso" not in page.inner_text("body")


@pytest.mark.parametrize("tamper", ["forged", "expired", "unsigned", "issuer"])
def test_a_forged_expired_unsigned_or_foreign_id_token_leaves_the_browser_signed_out(signin_app, sim, page, tamper):
    url, _ = signin_app
    sim.authority.signin.tamper = tamper
    try:
        sign_in(page, url, USERS["Admin"])
        page.wait_for_url(f"{url}/**", timeout=60_000)
        page.get_by_role("button", name="Sign in with Microsoft").wait_for(timeout=60_000)
    finally:
        sim.authority.signin.tamper = None
    settle(page)
    body = page.inner_text("body")
    assert "Signed in as" not in body and "Contoso" not in body


def test_after_sign_in_the_user_lands_on_the_deep_link_they_opened(signin_app, page):
    url, _ = signin_app
    query = urlencode([("cmp_tenants", "Contoso"), ("cmp_tenants", "Fabrikam")])
    page.goto(f"{url}/compare?{query}", wait_until="domcontentloaded")
    page.get_by_role("button", name="Sign in with Microsoft").click()
    page.get_by_role("heading", name="Pick an account").wait_for()
    page.get_by_role("button", name=f"{USERS['Analyst'].name} ({USERS['Analyst'].username})").click()
    page.wait_for_url(re.compile(r"/compare\?cmp_tenants=Contoso&cmp_tenants=Fabrikam"), timeout=60_000)
    page.get_by_role("heading", name="Compare", exact=True).first.wait_for(timeout=60_000)
    page.get_by_text("Signed in as Analyst Person").first.wait_for()
    page.locator("[data-testid='stMultiSelect']").first.wait_for()
    page.locator("[data-testid='stDataFrame']").first.wait_for(timeout=60_000)  # the matrix of the two tenants
    settle(page)
    picked = page.locator("[data-testid='stMultiSelect']").first.inner_text()
    assert "Contoso" in picked and "Fabrikam" in picked and "Northwind" not in picked, picked
    assert_clean(page)
    shoot(page, "signin-deep-link.png")
    page.reload(wait_until="domcontentloaded")  # the link was used once: a new session stays where it is
    page.get_by_text("Signed in as Analyst Person").first.wait_for(timeout=60_000)
    assert "/compare?" in page.url


@pytest.mark.parametrize("remembered", ["//example.invalid/phish", "/auth/logout", "/\\example.invalid",
                                        "https://example.invalid/"])
def test_a_remembered_link_outside_the_app_is_never_followed(signin_app, page, remembered):
    url, _ = signin_app
    sign_in(page, url, USERS["Viewer"])
    page.get_by_text(f"Signed in as {USERS['Viewer'].name}").first.wait_for(timeout=60_000)
    page.evaluate("([k, v]) => sessionStorage.setItem(k, v)", ["tenantpilot.next", remembered])
    page.reload(wait_until="domcontentloaded")  # a new session: the restore runs once
    page.get_by_text(f"Signed in as {USERS['Viewer'].name}").first.wait_for(timeout=60_000)
    settle(page)
    assert page.url.startswith(url) and "example.invalid" not in page.url and "/auth/" not in page.url
    assert page.evaluate("() => sessionStorage.getItem('tenantpilot.next')") is None  # used up, not kept
    page.get_by_role("heading", name="Tenants", exact=True).first.wait_for()  # still signed in, on the app
