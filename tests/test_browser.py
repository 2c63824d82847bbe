"""Real browser: `streamlit run streamlit_app.py` as a subprocess, Debian's chromium via Playwright.

Opens Explore and Compare against a DuckDB file holding three tenants and a baseline, waits for
specific text (a cold app's first paint can be half rendered), and saves screenshots to
screenshots/explore.png and screenshots/compare.png.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from urllib.parse import urlencode
from collections.abc import Iterator
from pathlib import Path

import pytest

from test_app import fill
from tenantpilot.store import Store

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed at /usr/bin/chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("browser")
    db = data / "app.duckdb"
    fill(Store(db))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_AD_", "STREAMLIT_"))}
    env.update(TENANTPILOT_DB=str(db), TENANTPILOT_DATA_DIR=str(data), PYTHONPATH=str(ROOT))
    log = open(data / "streamlit.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
         "--server.headless", "true", "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("streamlit did not start:\n" + (data / "streamlit.log").read_text(errors="replace"))
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 1400}, device_scale_factor=1,
                                  accept_downloads=True)
    pg = context.new_page()
    yield pg
    context.close()


def settle(page) -> None:
    """Wait until Streamlit has finished the script run (no running indicator) and fonts are in."""
    page.wait_for_load_state("networkidle")
    page.wait_for_function("document.fonts.status === 'loaded'")
    page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden", timeout=30_000)
    page.wait_for_timeout(500)


def test_explore_in_a_real_browser(server, page):
    SHOTS.mkdir(exist_ok=True)
    page.goto(f"{server}/explore", wait_until="domcontentloaded")
    page.get_by_text("matching rows").wait_for(timeout=60_000)
    page.get_by_role("heading", name="Explore").wait_for()
    page.locator("[data-testid='stDataFrame']").first.wait_for()
    settle(page)
    assert "of 19 matching rows" in page.inner_text("body")
    # search through the real widget
    box = page.get_by_role("textbox", name="Search")
    box.fill("xts-aes")
    box.press("Enter")
    page.get_by_text("of 4 matching rows").wait_for(timeout=30_000)
    settle(page)
    # open the first row's detail: the grid is a canvas, so click where its first checkbox is drawn
    grid = page.locator("[data-testid='stDataFrame']").first.bounding_box()
    page.mouse.click(grid["x"] + 14, grid["y"] + 35 + 17)
    page.get_by_text("What Encryption method does.").wait_for(timeout=30_000)
    page.get_by_text("Set by 4 policies in 4 tenant(s)").wait_for()
    settle(page)
    page.screenshot(path=str(SHOTS / "explore.png"), full_page=True)
    assert "Traceback" not in page.inner_text("body")
    # the CSV is built on click (deferred) and holds exactly the matched rows
    with page.expect_download(timeout=30_000) as download:
        page.get_by_role("button", name="CSV (4 rows)").click()
    data = Path(download.value.path()).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and len(data.decode("utf-8-sig").splitlines()) == 1 + 4


def test_compare_in_a_real_browser(server, page):
    SHOTS.mkdir(exist_ok=True)
    # filters are bound to the URL (by their labels): a shared link opens the same comparison
    query = urlencode([("cmp_tenants", name) for name in ("Contoso", "Fabrikam", "Northwind")]
                      + [("cmp_baseline", "◆ CIS Level 1 (baseline)")])
    page.goto(f"{server}/compare?{query}", wait_until="domcontentloaded")
    page.get_by_text("Alignment with").wait_for(timeout=60_000)
    page.get_by_text("Differences per policy type").wait_for()
    page.locator("[data-testid='stVegaLiteChart']").nth(1).wait_for()
    page.locator("[data-testid='stDataFrame']").first.wait_for()
    settle(page)
    body = page.inner_text("body")
    assert "Traceback" not in body
    assert "CIS Level 1" in body
    page.screenshot(path=str(SHOTS / "compare.png"), full_page=True)
    with page.expect_download(timeout=30_000) as download:
        page.get_by_role("button", name="Matrix CSV (6 rows)").click()
    assert download.value.suggested_filename == "tenantpilot-compare.csv"
    text = Path(download.value.path()).read_bytes().decode("utf-8-sig")
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text  # formula injection neutralised
