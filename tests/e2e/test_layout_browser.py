"""What a consultant sees at 1440x900 (issue 20, items 1 and 8), in Debian's chromium via Playwright.

The demo stack of test_browser (simulator, huey_consumer, `streamlit run`, SQLite queue, tmp data
folder): the three demo tenants synced once, plus a tenant the simulator does not serve (its sync
fails at sign-in). In the browser, the Sync page's "Simulate a week of changes" makes the simulator
play two admins, and the syncs it queues run. Then, per page, the columns that decide are drawn whole
inside the 1440x900 viewport (tests/e2e/columns.py measures the canvas grid's headers), technical columns
are a toggle away, the failed tenant's cause is not hidden behind its id, and Changes names the admin who
changed each setting. Screenshots: screenshots/layout-*.png.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from columns import assert_columns_visible, find_grid, grid_headers, grid_rows, visible_columns
from realparts import run_cli
from test_browser import (
    CHROMIUM,
    SYNC_TIMEOUT_S,
    DemoStack,
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

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed at /usr/bin/chromium")

HEIGHT = 900
LITWARE = "0f0e0d0c-0b0a-4909-8807-060504030201"  # a tenant the simulator does not serve
BIN = Path(sys.executable).parent
__all__ = ["browser"]  # the module-scoped browser fixture of test_browser, used here


@pytest.fixture(scope="module")
def week_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    import json

    from tenantpilot.store import Store

    data = tmp_path_factory.mktemp("layout")
    sim_port, app_port = free_port(), free_port()
    env = clean_env(TENANTPILOT_DATA_DIR=str(data), TENANTPILOT_DB=str(data / "tenantpilot.duckdb"),
                    TENANTPILOT_SIM_PORT=str(sim_port))
    procs = Processes(data)
    url = f"http://127.0.0.1:{app_port}"
    try:
        procs.start("simulator", [sys.executable, "-m", "tenantpilot", "simulate", "--port", str(sim_port)], env)
        procs.start("consumer", [str(BIN / "huey_consumer"), "huey_worker.huey", "-w", "1", "-m", "0.5"], env)
        info_path = data / "simulator.json"
        wait_until("simulator.json", info_path.exists, procs)
        wait_until("consumer start", lambda: b"consumer started" in (data / "consumer.log").read_bytes(), procs)
        info = json.loads(info_path.read_text())
        store = Store(data / "tenantpilot.duckdb")
        for t in info["tenants"]:
            store.add_tenant(t["tenant_id"], t["display_name"], "demo")
        store.add_tenant(LITWARE, "Litware")
        for t in info["tenants"]:
            run_cli(env, "sync", t["tenant_id"], "--wait", "--timeout", "120", timeout=150)
        run_cli(env, "sync", LITWARE, "--wait", "--timeout", "120", timeout=150, expect=1)
        procs.start("streamlit", streamlit_args(app_port), env)
        wait_until("streamlit health", lambda: healthy(url), procs)
        yield DemoStack(url, data, info, procs)
    finally:
        procs.stop()


@pytest.fixture
def screen(browser):
    """A 1440x900 page (what a consultant's laptop shows)."""
    context = browser.new_context(viewport={"width": 1440, "height": HEIGHT}, device_scale_factor=1)
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


def snap(page, name: str) -> None:
    """test_browser.shoot (the whole page), then back to the 1440x900 viewport the checks measure in."""
    shoot(page, name)
    page.set_viewport_size({"width": 1440, "height": HEIGHT})
    settle(page)


def open_page(page, url: str, ready: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_text(ready).first.wait_for(timeout=60_000)
    page.locator("[data-testid='stDataFrame']").first.wait_for()
    settle(page)


def test_week_of_changes_and_deciding_columns_at_1440(week_stack, screen):
    stack, page = week_stack, screen
    names = [t["display_name"] for t in stack.simulator["tenants"]]
    domain = stack.simulator["tenants"][0]["domain"]

    # Sync: the demo button makes the simulator change the tenants, then their syncs run as cards
    open_page(page, f"{stack.url}/sync", "History")
    page.get_by_role("button", name="Simulate a week of changes").click()
    page.get_by_text("their syncs are queued").first.wait_for(timeout=60_000)
    card = re.compile(r"(\S[^\n·]*) · run (\d+) · (\w+)")
    started = time.monotonic()
    while True:
        found = {m.group(1).strip(): m.group(3) for m in card.finditer(page.locator("[data-testid='stMain']").inner_text())}
        if all(found.get(n) in ("succeeded", "partial", "failed") for n in names):
            break
        if time.monotonic() - started > SYNC_TIMEOUT_S:
            pytest.fail(f"the week's syncs did not finish: {found}\n{stack.procs.logs()}")
        stack.procs.check()
        time.sleep(0.5)
    assert {found[n] for n in names} == {"succeeded"}, found
    open_page(page, f"{stack.url}/sync", "History")  # the page as it stays, nothing running
    assert_clean(page)
    history = find_grid(page, "Error or first warning")
    assert_columns_visible(page, ["Run", "Tenant", "Status", "Error or first warning"], history)
    litware = [r for r in grid_rows(history) if "Litware" in r]
    assert litware and not any(c.startswith(f"Tenant {LITWARE}") for c in litware[0]), litware
    snap(page, "layout-sync.png")

    # Changes: Contoso (the busiest) — who changed which setting, from what to what, in view
    open_page(page, f"{stack.url}/changes", "One tenant")
    page.get_by_text("of 3 changes").first.wait_for()  # two restriction settings + one settings-catalog setting
    settle(page)
    assert_clean(page)
    settings = find_grid(page, "Before")
    assert_columns_visible(page, ["Setting", "Before", "After", "Changed by", "Changed at (UTC)"], settings)
    rows = {r[0]: r for r in grid_rows(settings)}
    length = next(r for name, r in rows.items() if name.startswith("Password minimum length"))
    expiry = next(r for name, r in rows.items() if name.startswith("Password expiration days"))
    assert f"adele.vance@{domain}" in length and f"megan.bowen@{domain}" not in " ".join(length), length
    assert f"megan.bowen@{domain}" in expiry and f"adele.vance@{domain}" not in " ".join(expiry), expiry
    assert "Setting key" not in visible_columns(page, settings)  # technical: behind the toggle
    events = find_grid(page, "Policy")
    assert_columns_visible(page, ["Policy", "Change", "Changed by"], events)
    assert {r[1] for r in grid_rows(events)} >= {"policy added", "policy deleted"}, grid_rows(events)
    page.evaluate("document.querySelector('[data-testid=stMain]').scrollTo(0, 0)")
    snap(page, "layout-changes.png")

    # Explore: tenant, setting, value, policy; the technical columns a click away (and then the grid scrolls)
    open_page(page, f"{stack.url}/explore", "matching rows")
    assert_clean(page)
    grid = find_grid(page, "Setting")
    shown = assert_columns_visible(page, ["Tenant", "Setting", "Value", "Policy"], grid, row_markers=True)
    assert not {"Raw value", "Setting key", "Setting id", "Type"} & set(shown), shown
    snap(page, "layout-explore.png")
    page.get_by_text("Show technical columns").first.click()
    page.wait_for_function("() => { const s = document.querySelector('[data-testid=stDataFrame] .dvn-scroller');"
                           " return s && s.scrollWidth > s.clientWidth + 200; }")  # the technical columns, wide
    settle(page)
    page.evaluate("() => { const s = document.querySelector('[data-testid=stDataFrame] .dvn-scroller');"
                  " s.scrollLeft = s.scrollWidth; }")  # scrolled sideways to the end: the measure follows
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=stDataFrame] [role=columnheader]')]"
                           ".some(h => h.textContent.trim() === 'Setting key')")
    wide = visible_columns(page, find_grid(page, "Setting key"), row_markers=True)  # the markers stay (frozen)
    assert {"Raw value", "Setting key", "Type"} <= set(wide) and not {"Tenant", "Policy"} & set(wide), (
        wide, page.evaluate("() => { const s = document.querySelector('[data-testid=stDataFrame] .dvn-scroller');"
                            " return [s.scrollLeft, s.scrollWidth, s.clientWidth]; }"),
        grid_headers(page, find_grid(page, "Setting key"), row_markers=True))

    # Tenants: status and cause first; the failed tenant's cause is not pushed out by its id
    open_page(page, f"{stack.url}/", "Schedules")
    assert_clean(page)
    tenants = find_grid(page, "Last error or cause")
    assert_columns_visible(page, ["Name", "Last sync", "Last error or cause"], tenants)
    row = next(r for r in grid_rows(tenants) if r and r[0] == "Litware")
    assert row[1] == "failed" and row[2] and not row[2].startswith("Tenant ") and LITWARE not in row[2], row
    assert "Tenant id" not in visible_columns(page, tenants)
    snap(page, "layout-tenants.png")
