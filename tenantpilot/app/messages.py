"""Messages: what a page tells the user when something is wrong or not current: errors with what to do
next (`fail`, `explain`, `guard`), the worker banner (`queue_problems`, `show_problems`) and the banner for
data carried forward (`carried_lines`, `show_carried`). Never a traceback.

Banners take what they show as arguments (the configuration, the carried rows): reading them is
`tenantpilot.app.reads`' job, which uses `guard` from here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

import polars as pl
import streamlit as st

from tenantpilot.app.escaping import inert
from tenantpilot.config import ConfigError, Settings
from tenantpilot.ops import progress, queue
from tenantpilot.ops.queue import QueueUnavailable
from tenantpilot.store import StoreBusy, StoreError

CONSUMER_COMMAND = ".venv/bin/huey_consumer huey_worker.huey -w 1 -m 0.5"  # as in the README
NO_LOGIN = ("Without sign-in TenantPilot has no login: anyone who can open this address can read every tenant's "
            "settings and start syncs. Keep it on this machine (127.0.0.1), configure sign-in (README, *Sign-in and "
            "roles*), or serve it only behind a reverse proxy that authenticates users (README, *Exposure*).")
QUEUED_TOO_LONG_S = 5.0


# --- errors ------------------------------------------------------------------------------------
def fail(message: str) -> NoReturn:
    st.error(message, icon=":material/error:")
    st.stop()
    raise AssertionError("unreachable")  # st.stop raises; keeps type checkers honest


def explain(exc: BaseException, doing: str) -> str:
    """One user-facing line for an error: what failed and what to do next."""
    text = inert(exc)  # errors quote file names, tenant names and values
    if isinstance(exc, ConfigError):
        return f"Configuration error: {text}. Fix the environment (or .env) and restart the app."
    if isinstance(exc, StoreBusy):
        return f"Could not {doing}: {text}"
    if isinstance(exc, StoreError):
        return f"Could not {doing}: {text}. Check that TENANTPILOT_DB points at a readable DuckDB file."
    if isinstance(exc, QueueUnavailable):
        return f"Could not {doing}: {text}"
    return (f"Could not {doing}: {type(exc).__name__}: {text}. Reload the page; if it persists, check "
            "`python -m tenantpilot health` and the worker logs.")


@contextmanager
def guard(doing: str) -> Iterator[None]:
    """Turn any error into st.error + st.stop (script-control exceptions pass through)."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - a page shows errors, never tracebacks
        fail(explain(exc, doing))


# --- queue state (the banner on Sync and Health) ---------------------------------------------
def queue_problems(cfg: Settings, queued_at: Sequence[Any] = ()) -> list[tuple[str, str]]:
    """(level, message) pairs: queue unreachable, consumer missing/stale, runs waiting too long."""
    start = f"Start the worker in a terminal in the project folder: `{CONSUMER_COMMAND}`"
    try:
        queue.counts(cfg)
    except queue.QueueUnavailable as exc:
        return [("error", f"{inert(exc)}. Check it, then start the worker: `{CONSUMER_COMMAND}`")]
    problems: list[tuple[str, str]] = []
    beat = queue.consumer_heartbeat(cfg)
    if beat is None:
        problems.append(("warning", f"No sync worker is running, so syncs stay queued. {start}"))
    elif progress.is_stale(beat, max(cfg.stale_after_s, 10)):
        ago = time.time() - float(beat.get("ts", 0))
        problems.append(("warning", f"The sync worker's last heartbeat was {ago:.0f} s ago; it may have stopped. "
                                    f"{start}"))
    now = time.time()
    waiting = [t for t in queued_at if t is not None and now - t.timestamp() > QUEUED_TOO_LONG_S]
    if waiting and not problems:
        problems.append(("warning", f"{len(waiting)} sync(s) have waited more than {QUEUED_TOO_LONG_S:.0f} s in "
                                    f"the queue. Is the worker busy or stuck? {start}"))
    return problems


def show_problems(problems: list[tuple[str, str]]) -> None:
    for level, message in problems:
        (st.error if level == "error" else st.warning)(message, icon=":material/warning:")


# --- data that is not current (reads.carried) --------------------------------------------------
def carried_lines(carried: pl.DataFrame, *, verb: str = "carried forward") -> list[str]:
    """One Markdown line per policy type whose rows on screen are not current (reads.carried): which
    tenant, from which run and when, and why the last sync could not read it."""
    lines = []
    for r in carried.iter_rows(named=True):
        why = {"forbidden": "the app may not read it (403)", "unavailable": "Graph does not serve it here",
               "failed": "Graph kept failing"}.get(r["reason"] or "", inert(r["reason"] or "it was not read"))
        tenant = inert(r["tenant"])  # a tenant's name is its admins' text: never live Markdown in the banner
        if r["status"] == "carried":
            when = f"{r['carried_from_at']:%Y-%m-%d %H:%M}" if r["carried_from_at"] else "an earlier run"
            lines.append(f"{tenant} · {r['label']}: {verb} from run {r['carried_from_run']} ({when}); "
                         f"the last sync could not read it: {why}.")
        else:
            lines.append(f"{tenant} · {r['label']}: not synced ({why}); nothing earlier to show.")
    return lines


def show_carried(carried: pl.DataFrame) -> None:
    """The banner that says which data on screen is not current (nothing when all of it is)."""
    lines = carried_lines(carried)
    if len(lines) == 1:
        st.warning(f"Not all of this data is current: {lines[0]}", icon=":material/history:")
    elif lines:  # one line that opens: a partial run's notice must not bury the table under it
        tenants = carried["tenant"].n_unique() if "tenant" in carried.columns else 1
        with st.expander(f"Not all of this data is current: {len(lines):,} type(s) of {tenants:,} tenant(s) carried "
                         "forward or not synced", icon=":material/history:"):
            st.markdown("\n".join(f"- {line}" for line in lines))
