"""TenantPilot's Streamlit front: `streamlit run streamlit_app.py`.

A router (st.navigation) over the thin pages in app_pages/. Pages never call Graph (syncs run in
the `huey_consumer` worker) and never keep a DuckDB connection open between reruns.

Why app_pages/ and not pages/: Streamlit 1.67 still treats a folder named `pages/` next to the
entrypoint as a v1 multipage app until some session has run st.navigation, so a deep link
(/compare?...) opened first on a fresh server ran the page file directly, bypassing this router
(no page config, no navigation sections, pages/ file names in the sidebar).

Sign-in (tenantpilot/app/signin.py) is checked here, before st.navigation and before any page runs: a
session that has not signed in (when sign-in is configured) gets the sign-in button and nothing else,
whatever page or query string its URL names.
"""

from __future__ import annotations

import logging

import streamlit as st

from tenantpilot.app import reads, signin
from tenantpilot.app.escaping import inert
from tenantpilot.config import private_files

private_files()  # the app's database and data folder: 0600 / 0700
st.set_page_config(page_title="TenantPilot", page_icon=":material/travel_explore:", layout="wide")

PAGES = {
    "Tenants": [
        st.Page("app_pages/tenants.py", title="Tenants", icon=":material/domain:", default=True),
        st.Page("app_pages/sync.py", title="Sync", icon=":material/sync:"),
    ],
    "Analyse": [
        st.Page("app_pages/explore.py", title="Explore", icon=":material/search:"),
        st.Page("app_pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("app_pages/fleet.py", title="Fleet", icon=":material/leaderboard:"),
        st.Page("app_pages/changes.py", title="Changes", icon=":material/difference:"),
    ],
    "System": [
        st.Page("app_pages/health.py", title="Health", icon=":material/monitor_heart:"),
        st.Page("app_pages/activity.py", title="Activity", icon=":material/history:"),
    ],
}

cfg = reads.config()
user = signin.gate(cfg)  # stops this run unless the user may use the app
page = st.navigation(PAGES)
with st.sidebar:
    signin.sidebar(user)
    st.caption(
        ("Demo mode: syncs use the local Graph simulator. " if cfg.demo else "")
        + f"Database {inert(cfg.db_path.name)} · queue {cfg.queue_backend}"
    )
try:
    page.run()
except Exception as exc:  # noqa: BLE001 - last safety net: pages explain their own errors with st.error
    logging.getLogger("tenantpilot.app").exception("page %s failed", page.title)
    st.error(f"This page hit an unexpected error: {type(exc).__name__}: {inert(exc)}. Reload the page; if it happens "
             "again, run `python -m tenantpilot health` and check the app's console log.", icon=":material/error:")
