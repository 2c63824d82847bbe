"""Screenshots of every page at 1440x900, in demo mode, with the states a consultant meets.

    .venv/bin/python scripts/screenshots.py [--out screenshots] [--keep]

Starts the simulator, a huey_consumer and `streamlit run` on a tmp data folder (embedded
defaults, SQLite queue), adds the demo tenants and syncs them through the CLI, then syncs one
tenant again while Graph denies the settings catalog (a partial run: its rows are carried
forward), and saves each page three times: the first 900 px (what one sees), the whole page, and the
next 900 px (scrolled).
Drives Debian's chromium with Playwright (no browser download).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PAGES = ("tenants", "sync", "explore", "compare", "changes", "health")
LEAKY = ("AZURE_AD_", "REDIS_URL", "TENANTPILOT_", "STREAMLIT_", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(what: str, ready, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise SystemExit(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.2)


def up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "tenantpilot", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    if done.returncode not in (0, 1):
        raise SystemExit(f"tenantpilot {' '.join(args)}: {done.stderr}")
    return done.stdout


def knobs(sim: dict, values: dict) -> None:
    import requests

    requests.post(f"{sim['url']}/_sim/knobs", json=values, verify=sim["ca_path"], timeout=10).raise_for_status()


def settle(page, timeout_s: float = 60) -> None:
    """Until the script run is over and the page has stopped changing for 1.5 s (a cold app's first
    paint can be half rendered: a title and nothing else)."""
    page.wait_for_load_state("networkidle")
    deadline = time.monotonic() + timeout_s
    last, stable_since = None, time.monotonic()
    while time.monotonic() < deadline:
        running = page.locator("[data-testid='stStatusWidget']").count() > 0
        html = page.locator("[data-testid='stMain']").inner_html() if page.locator("[data-testid='stMain']").count() else ""
        if html != last or running:
            last, stable_since = html, time.monotonic()
        elif time.monotonic() - stable_since > 1.5:
            return
        page.wait_for_timeout(250)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots")
    parser.add_argument("--keep", action="store_true", help="keep the tmp data folder")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    data = Path(tempfile.mkdtemp(prefix="tenantpilot-shots-"))
    sim_port, app_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(LEAKY)}
    env.update(TENANTPILOT_DATA_DIR=str(data), TENANTPILOT_DB=str(data / "tenantpilot.duckdb"),
               TENANTPILOT_SIM_PORT=str(sim_port))
    procs = []
    url = f"http://127.0.0.1:{app_port}"
    try:
        for name, cmd in (("simulator", [sys.executable, "-m", "tenantpilot", "simulate", "--port", str(sim_port)]),
                          ("consumer", [str(BIN / "huey_consumer"), "huey_worker.huey", "-w", "1", "-m", "0.5"]),
                          ("streamlit", [str(BIN / "streamlit"), "run", "streamlit_app.py", "--server.port",
                                         str(app_port), "--server.headless", "true", "--browser.gatherUsageStats",
                                         "false", "--server.fileWatcherType", "none"])):
            log = open(data / f"{name}.log", "wb")
            procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True))
        wait("the simulator", (data / "simulator.json").exists)
        wait("streamlit", lambda: up(url))
        sim = json.loads((data / "simulator.json").read_text())
        tenants = sim["tenants"]
        for t in tenants:
            cli(env, "tenants", "add", t["tenant_id"], "--name", t["display_name"])
        for t in tenants:
            print(cli(env, "sync", t["tenant_id"], "--wait").splitlines()[-1])
        # something for Changes to show: an admin changes a number and deletes a profile in the first tenant
        import requests

        from tenantpilot.store import Store

        first = tenants[0]["tenant_id"]
        rows = Store(data / "tenantpilot.duckdb").current_settings([first])
        number = rows.filter((rows["policy_type"] == "deviceConfiguration") & (rows["value_type"] == "integer")
                             & rows["configured"].fill_null(True)).row(0, named=True)
        gone = rows.filter((rows["policy_type"] == "compliance")
                           & (rows["policy_id"] != number["policy_id"]))["policy_id"][0]
        for path, body in ((f"deviceConfigurations/{number['policy_id']}/change",
                            {"setting_id": number["setting_id"], "value": int(number["raw_value"]) + 1,
                             "actor": "alex.admin@contoso.example"}),
                           (f"deviceCompliancePolicies/{gone}/delete", {"actor": "sam.ops@contoso.example"})):
            requests.post(f"{sim['url']}/_sim/tenants/{first}/policies/{path}", json=body, verify=sim["ca_path"],
                          timeout=10).raise_for_status()
        print(cli(env, "sync", first, "--wait").splitlines()[-1])
        knobs(sim, {"forbidden_paths": ["/deviceManagement/configurationPolicies"]})
        print(cli(env, "sync", tenants[1]["tenant_id"], "--wait").splitlines()[-1])
        knobs(sim, {"forbidden_paths": []})
        args.out.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            for name in PAGES:
                # Compare with every tenant chosen: the URL names them by their labels, as a shared link does
                query = "?" + urlencode([("cmp_tenants", t["display_name"]) for t in tenants]) if name == "compare" else ""
                page.goto(f"{url}/{name if name != 'tenants' else ''}{query}")
                settle(page)
                page.screenshot(path=str(args.out / f"{name}.png"))
                page.screenshot(path=str(args.out / f"{name}-full.png"), full_page=True)
                # Streamlit scrolls inside its main block, which a full-page shot does not see: the next screen
                page.mouse.move(900, 500)
                page.mouse.wheel(0, 820)
                page.wait_for_timeout(800)
                page.screenshot(path=str(args.out / f"{name}-2.png"))
                print(f"{args.out / name}.png")
            browser.close()
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in procs:
            proc.wait(15)
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)
        else:
            print(f"data kept in {data}")


if __name__ == "__main__":
    main()
