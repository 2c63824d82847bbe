"""Real browser (Debian's chromium driven by Playwright) at 1440 px on Compare and Fleet (issue 20, items 1, 4, 5).

A baseline and four tenants in a DuckDB file filled through the Store, `streamlit run` on it. What a consultant
decides by must be on screen without scrolling sideways: Compare's setting, status and every compared column,
every count of the alignment table; an accepted row says until when; a tenant's extra policy is one line. Then
two matrix rows are ticked in the grid itself and accepted at once, and Fleet lists every tenant worst first.

The grid is a canvas: which columns are in view is checked twice, from its accessibility table (which holds
only the columns that intersect the visible region: assert_columns_rendered) and from the header's pixels
(tests/e2e/columns.py, assert_columns_visible).
Screenshots: screenshots/compare-1440.png, compare-triage.png, fleet.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlencode

import apptest
import pytest
import test_browser
from apptest import BASELINE, CONTOSO, DATA, FABRIKAM, NORTHWIND, fill, write_snapshot
from columns import assert_columns_visible
from test_browser import (
    CHROMIUM,
    Processes,
    assert_clean,
    clean_env,
    free_port,
    healthy,
    settle,
    shoot,
    streamlit_args,
    wait_until,
)

from tenantpilot.analysis import compare, deviations
from tenantpilot.analysis.deviations import NewDeviation
from tenantpilot.store import Store

browser, page = test_browser.browser, test_browser.page  # the fixtures: Debian's chromium, a 1440 px page
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed at /usr/bin/chromium")
WOODGROVE = "woodgrove.onmicrosoft.com"
TENANTS = ("Contoso", "Fabrikam", "Northwind", "Woodgrove Bank")
BASE_LABEL = "◆ CIS Level 1 (baseline)"
UNTIL = (date.today() + timedelta(days=30)).isoformat()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data = tmp_path_factory.mktemp("compare1440")
    db = data / "app.duckdb"
    store = Store(db)
    fill(store)
    store.add_tenant(WOODGROVE, "Woodgrove Bank")
    write_snapshot(store, WOODGROVE, {"WG security": {"fw_enable": "true", "fw_inbound": "block",
                                                      "bl_method": "XTS-AES 128"}})
    # the log size is accepted where it is missing; Fabrikam has a policy nobody else has (one line)
    for tenant in (NORTHWIND, WOODGROVE):
        store.add_deviation(NewDeviation(tenant, BASELINE, "settingsCatalog", "windows", "fw_log_size", "Log size",
                                         "SIEM collects the logs", "Ops", date.today() + timedelta(days=30)))
    kiosk = {"kiosk_mode": "Kiosk mode", "kiosk_app": "Kiosk app"}
    apptest.SETTING_NAMES.update(kiosk)
    try:
        write_snapshot(store, FABRIKAM, {**DATA[FABRIKAM], "Kiosk": {"kiosk_mode": "single app",
                                                                     "kiosk_app": "Edge"}})
    finally:
        for k in kiosk:
            apptest.SETTING_NAMES.pop(k)
    port = free_port()
    procs = Processes(data)
    url = f"http://127.0.0.1:{port}"
    try:
        procs.start("streamlit", streamlit_args(port), clean_env(TENANTPILOT_DB=str(db), TENANTPILOT_DATA_DIR=str(data)))
        wait_until("streamlit health", lambda: healthy(url), procs)
        yield url, db
    finally:
        procs.stop()


def grid_with(page, header: str):
    """The st.dataframe whose (visible) header row holds `header`."""
    grids = page.locator("[data-testid='stDataFrame']")
    for i in range(grids.count()):
        if header in rendered_columns(grids.nth(i)):
            return grids.nth(i)
    raise AssertionError(f"no table shows a column {header!r}")


def rendered_columns(grid) -> dict[str, int]:
    """Header -> column index (1-based) of the columns the grid draws in its visible region."""
    pairs = grid.evaluate("g => Array.from(g.querySelectorAll('th')).map(t => [t.innerText.trim(), "
                          "+t.getAttribute('aria-colindex')])")
    return {name: index for name, index in pairs}


def cells(grid) -> list[tuple[str, int]]:
    """(text, column index) of the cells the grid draws, row by row."""
    return [(t, i) for t, i in grid.evaluate(
        "g => Array.from(g.querySelectorAll('td')).map(t => [t.innerText.trim(), +t.getAttribute('aria-colindex')])")]


def assert_columns_rendered(grid, names: list[str]) -> None:
    """Every named column whole inside the grid's box, the grid not scrolled sideways.

    Glide (Streamlit's grid) puts in its accessibility table exactly the columns that intersect the visible
    region. So a named column is in view when it is there; and the last named one ends inside the box when
    a column after it is there too (its left edge, the named one's right edge, lies inside), or when it is
    the table's last column."""
    assert grid.evaluate("g => g.querySelector('.dvn-scroller').scrollLeft") == 0
    shown = rendered_columns(grid)
    missing = [n for n in names if n not in shown]
    assert not missing, f"off screen: {missing}; in view: {list(shown)}"
    last = max(shown[n] for n in names)
    total = int(grid.evaluate("g => +g.querySelector('[role=grid]').getAttribute('aria-colcount')"))
    assert last == total or any(i > last for i in shown.values()), f"{names[-1]!r} is cut at the right: {shown}"


def open_compare(page, url: str) -> None:
    query = urlencode([("cmp_tenants", n) for n in TENANTS] + [("cmp_baseline", BASE_LABEL)])
    page.goto(f"{url}/compare?{query}", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Matrix", exact=True).first.wait_for(timeout=60_000)
    page.locator("[data-testid='stDataFrame']").nth(1).wait_for()
    settle(page)


def test_compare_shows_what_decides_at_1440(stack, page) -> None:
    url, _db = stack
    open_compare(page, url)
    matrix = grid_with(page, "Setting")
    deciding = ["Setting", "Status", BASE_LABEL, *TENANTS]
    assert_columns_rendered(matrix, deciding)
    assert_columns_visible(page, deciding, grid=matrix, row_markers=True)  # measured in pixels (columns.py)
    assert "Setting key" not in rendered_columns(matrix)  # technical: a toggle away
    scores = grid_with(page, "Aligned")
    counts = ["Tenant", "Aligned", *(w.capitalize() for w in compare.SCORE_WORDS.values())]
    assert_columns_rendered(scores, counts)
    assert_columns_visible(page, counts, grid=scores)
    drawn = cells(matrix)
    assert (f"accepted until {UNTIL}", 2) in drawn  # the status says until when, in the Status column
    assert ("Kiosk (2 settings)", 1) in drawn and ("Kiosk mode", 1) not in drawn  # one line per extra policy
    assert_clean(page)
    shoot(page, "compare-1440.png")


def test_two_rows_ticked_in_the_grid_are_accepted_at_once(stack, page) -> None:
    url, db = stack
    open_compare(page, url)
    matrix = grid_with(page, "Setting")
    names = [t for t, i in cells(matrix) if i == 1]
    for name in ("Encryption method", "Default inbound action"):  # their boxes, drawn left of each row
        matrix.scroll_into_view_if_needed()
        box = matrix.bounding_box()
        row_h = (box["height"] - 2) / (len(names) + 1)  # header and rows share one height
        page.mouse.click(box["x"] + 16, box["y"] + row_h * (names.index(name) + 1.5))
        settle(page)
        matrix = grid_with(page, "Setting")
    page.get_by_text("2 selected lines").first.wait_for()
    page.get_by_role("textbox", name="Reason").fill("hardware without TPM 2.0")
    page.get_by_role("textbox", name="Owner").fill("Ops")
    page.get_by_role("button", name="Accept selected").click()
    page.wait_for_function("() => Array.from(document.querySelectorAll('[data-testid=stDataFrame] td'))"
                           ".filter(t => t.innerText.startsWith('accepted until')).length >= 3", timeout=30_000)
    settle(page)
    accepted = Store(db).deviations()
    keys = {(r["tenant_id"], r["setting_key"]) for r in accepted.iter_rows(named=True)}
    # each selected setting, for the tenants that differ there (Woodgrove's block is the baseline's)
    assert keys - {(NORTHWIND, "fw_log_size"), (WOODGROVE, "fw_log_size")} == {
        (FABRIKAM, "bl_method"), (WOODGROVE, "bl_method"), (FABRIKAM, "fw_inbound")}
    assert_clean(page)
    shoot(page, "compare-triage.png")


def test_fleet_lists_every_tenant_worst_first(stack, page) -> None:
    url, db = stack
    page.goto(f"{url}/fleet", wait_until="domcontentloaded")
    page.get_by_role("heading", name="Fleet", exact=True).first.wait_for(timeout=60_000)
    page.locator("[data-testid='stDataFrame']").first.wait_for()
    settle(page)
    table = grid_with(page, "Tenant")
    deciding = ["Tenant", "Aligned", "Compare", *(w.capitalize() for w in compare.SCORE_WORDS.values()), "Expired"]
    assert_columns_rendered(table, deciding)
    assert_columns_visible(page, deciding, grid=table)
    store = Store(db)  # the compare rule on the same data, the accepted deviations left out, says who is worst
    accepted = deviations.accepted_keys(store.deviations(), date.today(), BASELINE)
    scores = compare.alignment_scores(store.current_settings(), [CONTOSO, FABRIKAM, NORTHWIND, WOODGROVE], BASELINE,
                                      accepted=accepted)
    worst = min(r["score"] for r in scores.iter_rows(named=True))
    shown = [t for t, i in cells(table) if i == 1]
    assert sorted(shown) == sorted(TENANTS)
    assert scores.filter(scores["tenant"] == shown[0])["score"].item() == worst
    assert_clean(page)
    shoot(page, "fleet.png")
