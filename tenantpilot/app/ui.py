"""Shared helpers of the Streamlit pages: configuration, the store, the cached snapshot, errors, and
making text from tenants and files inert on screen (`inert`, `inert_frame`, `reveal`).

Pages stay thin: they read widgets, call one or two package functions and render. Every
DuckDB open goes through `Store` and is closed before the function returns, so no page holds a
connection between reruns. Errors become `st.error` with what to do next, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, NoReturn

import polars as pl
import streamlit as st

from tenantpilot import families
from tenantpilot.config import ConfigError, Settings, settings
from tenantpilot.ops import progress, queue
from tenantpilot.ops.health import age
from tenantpilot.ops.queue import QueueUnavailable
from tenantpilot.store import Store, StoreBusy, StoreError, open_store

CONSUMER_COMMAND = ".venv/bin/huey_consumer huey_worker.huey -w 1 -m 0.5"  # as in the README
NO_LOGIN = ("TenantPilot has no login: anyone who can open this address can read every tenant's settings and "
            "start syncs. Keep it on this machine (127.0.0.1), or serve it only behind a reverse proxy that "
            "authenticates users (README, *Exposure*).")
QUEUED_TOO_LONG_S = 5.0
DEMO_TENANT_COUNT = 3  # `python -m tenantpilot simulate --tenants` default
# filters that survive page switches and live in the URL (shareable links: /compare?cmp_tenants=...)
SHARED: dict[str, str] = {"bind": "query-params", "persist_state": "session"}
KIND_MARK = {"baseline": "◆ ", "demo": ""}
KIND_SUFFIX = {"baseline": " (baseline)", "demo": " (demo)"}


# --- text from tenants and files is inert -----------------------------------------------------
# Names, descriptions and values come from tenants' admins and from export files other people wrote.
# Streamlit renders Markdown (links, images, colours, LaTeX) in st.markdown, st.caption, titles,
# subheaders, alerts and widget labels, so such text goes through `inert` there; tables go through
# `inert_frame`, widget options and code blocks through `reveal`. Invisible and bidi control characters
# (U+202E makes "exe.tnemyap" read "payment.exe") are shown as [U+202E] everywhere.

_KEEP = frozenset("\n\t")
_FILLERS = (0x034F, 0x115F, 0x1160, 0x3164, 0xFFA0)  # invisible letters and the grapheme joiner


@lru_cache(maxsize=1)
def _invisibles() -> dict[int, str]:
    """code point -> "[U+XXXX]" for every control, format (bidi, zero-width, tags), line/paragraph
    separator and invisible filler character."""
    found = {}
    # planes 0-1 and the tag block of plane 14 hold every such character (planes 2-13: none)
    for code in (*range(0x20000), *range(0xE0000, 0xE1000)):
        if unicodedata.category(chr(code)) in ("Cc", "Cf", "Zl", "Zp") and chr(code) not in _KEEP:
            found[code] = f"[U+{code:04X}]"
    found.update({code: f"[U+{code:04X}]" for code in _FILLERS})
    return found


@lru_cache(maxsize=1)
def _invisible_class() -> str:
    """The characters of _invisibles() as a regex class for polars (Rust regex syntax)."""
    codes = sorted(_invisibles())
    ranges: list[tuple[int, int]] = []
    for code in codes:
        if ranges and code == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return "[" + "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges) + "]"


_MARKDOWN_SPECIAL = {ord(c): "\\" + c for c in "\\`*_{}[]()#+-.!|<>~$:\"'&%=?@^,;/"}


def reveal(text: Any) -> str:
    """Text with invisible and bidi control characters shown as [U+XXXX] (for tables, options, code)."""
    return "" if text is None else str(text).translate(_invisibles())


# Streamlit's Markdown also rewrites *text* (after escapes are resolved): bare URLs, www. names and
# e-mail addresses become links (GFM autolink literals), :shortcodes: become emoji and icons. An
# invisible WORD JOINER after every ":", before every "@" and after a "www" breaks those patterns
# without changing what is read (a pasted URL is defanged as well).
_JOINER = "\u2060"
_AUTOLINKS = re.compile(r"(?<=\\:)|(?=\\@)|(?<=[wW]{3})(?=\\\.)")  # on the escaped text: \: \@ www\.


def inert(text: Any) -> str:
    """Text that renders as itself in any Streamlit Markdown: controls revealed, every ASCII
    punctuation character backslash-escaped (no link, image, HTML, colour, heading or formula), and
    URLs, e-mail addresses and :shortcodes: kept from turning into links or emoji."""
    return _AUTOLINKS.sub(_JOINER, reveal(text).translate(_MARKDOWN_SPECIAL))


def inert_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """A frame for st.dataframe: control characters revealed in its text cells and column names
    (tables do not render Markdown; they do render bidi controls)."""
    pattern = _invisible_class()
    fixes = [pl.col(c).map_elements(reveal, return_dtype=pl.String) for c, t in frame.schema.items()
             if t == pl.String and frame.height and frame[c].str.contains(pattern).any()]
    if fixes:
        frame = frame.with_columns(fixes)
    names = {c: reveal(c) for c in frame.columns if reveal(c) != c}
    return frame.rename(names) if names else frame


def inert_json(value: Any) -> Any:
    """A JSON document for st.json with control characters revealed in keys and strings."""
    if isinstance(value, dict):
        return {reveal(k): inert_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [inert_json(v) for v in value]
    return reveal(value) if isinstance(value, str) else value


PAGE_SIZE = 1_000  # rows sent to the browser at most, per table page


@dataclass(frozen=True)
class Page:
    rows: pl.DataFrame  # the slice to show
    number: int  # 1-based page number
    first: int  # 1-based index of the first row shown (0 when there is none)
    info: Any  # the column left of the pager, for the "Showing …" line

    def showing(self, total: int, noun: str) -> str:
        return f"Showing **{self.first:,}–{self.first + self.rows.height - 1:,}** of **{total:,}** {noun}"


def paginate(frame: pl.DataFrame, key: str, page_size: int = PAGE_SIZE) -> Page:
    """An info line with a pager beside it (shown only when there is more than one page)."""
    from tenantpilot.analysis import explore

    info, pager = st.columns([3, 2], vertical_alignment="center")
    number = 1
    pages = explore.page_count(frame.height, page_size)
    if pages > 1:
        with pager:
            number = st.pagination(pages, key=key, max_visible_pages=5)
    first = (number - 1) * page_size + 1 if frame.height else 0
    return Page(explore.page_slice(frame, number, page_size), number, first, info)


def pager(total: int, key: str, page_size: int = PAGE_SIZE) -> tuple[int, int, Any]:
    """(page number, first row index 1-based, info column) for `total` rows, with the pager beside the
    info column (shown only when there is more than one page). The rows are fetched by the caller."""
    from tenantpilot.analysis import explore

    info, box = st.columns([3, 2], vertical_alignment="center")
    number = 1
    pages = explore.page_count(total, page_size)
    if pages > 1:
        with box:
            number = st.pagination(pages, key=key, max_visible_pages=5)
    return number, ((number - 1) * page_size + 1 if total else 0), info


# --- current settings, read in the database: only what a page shows comes back --------------------
@st.cache_data(max_entries=64, show_spinner=False)
def _settings_counts(db_path: str, token: tuple[tuple[str, int], ...], filters: Any) -> list[tuple[str, int]]:
    """Matching rows per tenant: the total, and where each page starts, without reading the rows."""
    return open_store().settings_tenant_counts(filters)


def _settings_count(db_path: str, token: tuple[tuple[str, int], ...], filters: Any) -> int:
    return sum(n for _, n in _settings_counts(db_path, token, filters))


@st.cache_data(max_entries=32, show_spinner=False)
def _settings_facets(db_path: str, token: tuple[tuple[str, int], ...], filters: Any,
                     columns: tuple[str, ...]) -> dict[str, list[str]]:
    return open_store().settings_facets(filters, columns, limit=MAX_POLICY_OPTIONS)


@st.cache_data(max_entries=32, show_spinner=False)
def _settings_page(db_path: str, token: tuple[tuple[str, int], ...], filters: Any, number: int,
                   page_size: int) -> pl.DataFrame:
    return open_store().settings_page(filters, offset=(number - 1) * page_size, limit=page_size,
                                      counts=_settings_counts(db_path, token, filters))


def settings_count(key: SnapshotKey, filters: Any) -> int:
    with guard("count the matching settings"):
        return _settings_count(*key, filters)


def settings_facets(key: SnapshotKey, filters: Any, *columns: str) -> dict[str, list[str]]:
    with guard("list the filter choices"):
        return _settings_facets(*key, filters, tuple(columns))


def settings_page(key: SnapshotKey, filters: Any, number: int, page_size: int = PAGE_SIZE) -> pl.DataFrame:
    with guard("read the matching settings"):
        return _settings_page(*key, filters, number, page_size)


def settings_matching(key: SnapshotKey, filters: Any) -> pl.DataFrame:
    """Every current row matching the filters: exports, detail views."""
    with guard("read the matching settings"):
        return open_store().settings_matching(filters)


def chosen_key(key: SnapshotKey, tenant_ids: Sequence[str]) -> SnapshotKey:
    """The snapshot key narrowed to these tenants' current runs: a cache key that changes only when one of
    them syncs, and small (hashing 1,000 (tenant, run) pairs costs a cached call about 12 ms)."""
    wanted = set(tenant_ids)
    return key[0], tuple(pair for pair in key[1] if pair[0] in wanted)


def current_settings_of(key: SnapshotKey, tenant_ids: Sequence[str], filters: Any = None) -> pl.DataFrame:
    """The current rows of the chosen tenants only (Compare), in no particular order, with the columns
    Compare reads: cost grows with what is compared. `filters` (explore.Filters) are applied by the store."""
    with guard("read the chosen tenants' settings"):
        if filters is None or filters == type(filters)():
            return _tenant_settings(*chosen_key(key, tenant_ids))
        return open_store().current_columns_of(sorted(tenant_ids), compare_columns(), filters)


def facets_of(key: SnapshotKey, tenant_ids: Sequence[str]) -> dict[str, list[str]]:
    """explore.facet_values of current_settings_of(key, tenant_ids): the filter choices, once per chosen set."""
    with guard("read the chosen tenants' settings"):
        return _tenant_facets(*chosen_key(key, tenant_ids))


@st.cache_data(max_entries=4, show_spinner=False)
def _tenant_facets(db_path: str, runs: tuple[tuple[str, int], ...]) -> dict[str, list[str]]:
    from tenantpilot.analysis import explore

    return explore.facet_values(_tenant_settings(db_path, runs))


@st.cache_resource(max_entries=4, show_spinner="Loading the chosen tenants…")
def _tenant_settings(db_path: str, runs: tuple[tuple[str, int], ...]) -> pl.DataFrame:
    """Keyed by the tenants' current runs (chosen_key). Compare needs no order (its results never depend
    on it) and no long texts (descriptions, raw values), which stay in the database."""
    return open_store().current_columns_of(sorted(t for t, _run in runs), compare_columns())


def compare_columns() -> list[str]:
    """The setting columns Compare reads: what compare uses, what its search and filters look at."""
    from tenantpilot.analysis import compare, explore

    return [*dict.fromkeys((*compare.READS, *explore.SEARCH_COLUMNS,
                            *(c for c in explore.FACET_COLUMNS.values() if c != "tenant_id")))]


def family_label(policy_type: str) -> str:
    return families.label(policy_type)


def with_family_labels(frame: pl.DataFrame, column: str = "policy_type") -> pl.DataFrame:
    """For display only: the policy_type column as the families' labels (filters keep the raw ids)."""
    from tenantpilot.analysis.explore import with_family_labels as labelled

    return labelled(frame, column)


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


# --- configuration, store, queue -----------------------------------------------------------
def config() -> Settings:
    try:
        return settings()
    except ConfigError as exc:
        fail(explain(exc, "read the configuration"))


def store() -> Store:
    return open_store(config())


# --- data --------------------------------------------------------------------------------------
SnapshotKey = tuple[str, tuple[tuple[str, int], ...]]


def snapshot_key() -> SnapshotKey:
    """(database path, snapshot token): identifies the current snapshot for caches."""
    cfg = config()
    with guard("read the current snapshot"):
        return str(cfg.db_path), open_store(cfg).snapshot_token()


@st.cache_data(max_entries=8, show_spinner=False)
def _carried(db_path: str, token: str) -> pl.DataFrame:
    """Keyed by token_digest: hashing the token's pairs themselves costs every call ~12 ms at 1,000 tenants."""
    return open_store().current_carried()


def token_digest(token: tuple[tuple[str, int], ...]) -> str:
    """A short cache key that changes with the snapshot token (when any tenant's current run does)."""
    return hashlib.blake2b(repr(token).encode(), digest_size=16).hexdigest()


def carried_lines(key: SnapshotKey, tenant_ids: Sequence[str] | None = None, *, verb: str = "carried forward") -> list[str]:
    """One line per policy type whose rows on screen are not current: which tenant, from which
    run and when, and why the last sync could not read it."""
    with guard("read which data is current"):
        carried = _carried(key[0], token_digest(key[1]))
    if tenant_ids is not None:
        carried = carried.filter(pl.col("tenant_id").is_in(list(tenant_ids)))
    lines = []
    for r in carried.iter_rows(named=True):
        why = {"forbidden": "the app may not read it (403)", "unavailable": "Graph does not serve it here",
               "failed": "Graph kept failing"}.get(r["reason"] or "", r["reason"] or "it was not read")
        if r["status"] == "carried":
            when = f"{r['carried_from_at']:%Y-%m-%d %H:%M}" if r["carried_from_at"] else "an earlier run"
            lines.append(f"{r['tenant']} · {r['label']}: {verb} from run {r['carried_from_run']} ({when}); "
                         f"the last sync could not read it: {why}.")
        else:
            lines.append(f"{r['tenant']} · {r['label']}: not synced ({why}); nothing earlier to show.")
    return lines


def show_carried(key: SnapshotKey, tenant_ids: Sequence[str] | None = None) -> None:
    """The banner that says which data on screen is not current (nothing when all of it is)."""
    lines = carried_lines(key, tenant_ids)
    if lines:
        st.warning("Not all of this data is current.\n\n" + "\n\n".join(f"- {line}" for line in lines),
                   icon=":material/history:")


# --- assignments (who a policy applies to), next to the settings --------------------------------
TARGET_LABELS: dict[str, str] = {
    "allDevices": "All devices",
    "allLicensedUsers": "All users",
    "group": "Group",
    "configurationManagerCollection": "Configuration Manager collection",
}
# what the Assignments table and its CSV show, in this order
ASSIGNMENT_COLUMNS: tuple[str, ...] = (
    "tenant", "policy_name", "policy_type", "platform", "intent", "target", "group", "filter", "filter_type",
    "target_type", "group_name", "group_id", "filter_name", "filter_id", "tenant_id", "policy_id", "run_id",
)
ASSIGNMENT_TABLE_COLUMNS: tuple[str, ...] = ASSIGNMENT_COLUMNS[:9]
ASSIGNMENT_SEARCH_COLUMNS: tuple[str, ...] = ("tenant", "policy_name", "target", "group_name", "group_id", "filter")
ASSIGNMENT_COLUMN_CONFIG: dict[str, Any] = {
    "tenant": "Tenant", "policy_name": "Policy", "policy_type": "Policy type", "platform": "Platform",
    "intent": "Include / exclude", "target": "Target", "group": "Group (name or id)", "filter": "Filter (name or id)",
    "filter_type": "Filter type",
}


def assignment_view(frame: pl.DataFrame) -> pl.DataFrame:
    """Assignment rows (Store.current_assignments + platform) with readable `target` ("All devices",
    "All users", "Group") and `group` (the group's name where the export has it, else its id),
    in ASSIGNMENT_COLUMNS order, sorted by tenant, policy, intent, target, group."""
    platform = pl.col("platform") if "platform" in frame.columns else pl.lit("")
    out = frame.with_columns(
        platform.fill_null("").alias("platform"),
        pl.col("target_type").replace_strict(TARGET_LABELS, default=pl.col("target_type"), return_dtype=pl.String)
        .alias("target"),
        pl.when(pl.col("group_name").fill_null("") != "").then(pl.col("group_name"))
        .otherwise(pl.col("group_id").fill_null("")).alias("group"),
        (pl.when(pl.col("filter_name").fill_null("") != "").then(pl.col("filter_name"))
         .otherwise(pl.col("filter_id").fill_null("")) if "filter_name" in frame.columns
         else pl.col("filter_id").fill_null("")).alias("filter"),
    )
    out = out.select([c for c in ASSIGNMENT_COLUMNS if c in out.columns])
    return out.sort(pl.col("tenant"), pl.col("policy_name"), pl.col("intent") == "exclude", pl.col("target"),
                    pl.col("group"), nulls_last=True)


ASSIGNMENTS_ALL_TENANTS = 50  # above this many tenants, the Assignments tab asks which tenants to list


@st.cache_resource(max_entries=4, show_spinner="Loading the assignments…")
def _assignments(db_path: str, token: tuple[tuple[str, int], ...], tenant_ids: tuple[str, ...] | None) -> pl.DataFrame:
    """The current assignments of these tenants (all: None) with the policy's platform (keyed by the snapshot token)."""
    store = open_store()
    ids = list(tenant_ids) if tenant_ids is not None else None
    assignments = store.current_assignments(ids)
    platforms = store.current_policies(ids).select("run_id", "policy_id", "platform").unique(["run_id", "policy_id"])
    return assignment_view(assignments.join(platforms, on=["run_id", "policy_id"], how="left"))


def load_assignments(key: SnapshotKey, tenant_ids: Sequence[str] | None = None) -> pl.DataFrame:
    """Current assignments of the given tenants (all when None): cost grows with what is shown."""
    with guard("read the assignments"):
        return _assignments(*key, tuple(sorted(set(tenant_ids))) if tenant_ids is not None else None)


MAX_POLICY_OPTIONS = 2_000


def policy_filter(where: Any, options: list[str], key: str) -> list[str]:
    """The Policy multiselect, or a disabled hint when there are too many names to list usefully."""
    if len(options) > MAX_POLICY_OPTIONS:
        st.session_state.pop(key, None)
        where.multiselect("Policy", [], placeholder=f"{len(options):,} policies: pick tenants or a type first",
                          disabled=True, key=key)
        return []
    kept = [p for p in st.session_state.get(key, []) if p in set(options)]
    if kept != st.session_state.get(key, []):
        st.session_state[key] = kept  # drop choices the other filters no longer offer
    return where.multiselect("Policy", options, placeholder="All policies", key=key, format_func=reveal)


def tenants() -> pl.DataFrame:
    with guard("list the tenants"):
        return store().tenants()


def tenant_status_table(tenants: pl.DataFrame) -> pl.DataFrame:
    """The Tenants table: the last sync (which may have failed) apart from the data shown and its age."""
    now = datetime.now(timezone.utc)
    shown = [("—" if r["current_run_id"] is None else
              f"run {r['current_run_id']}, {age(r['data_as_of'], now)}"
              + (" (part carried forward)" if r["current_status"] == "partial" else ""))
             for r in tenants.iter_rows(named=True)]
    return tenants.with_columns(pl.Series("shown", shown, dtype=pl.String)).select(
        "display_name", pl.col("last_status").fill_null("never synced"), "last_run_at", "shown", "setting_count",
        "last_error", "tenant_id", "kind")


def schedule_table(plans: Sequence[dict[str, Any]]) -> pl.DataFrame:
    """The Tenants page's schedule rows (schedule.overview): tenant, schedule, next run, last scheduled run."""
    return pl.DataFrame(
        {"tenant": [p["display_name"] for p in plans], "schedule": [p["described"] for p in plans],
         "next_run": [p["next_run"] for p in plans],
         "last_scheduled": [f"run {p['last_scheduled_run_id']}: {p['last_scheduled_status']}"
                            if p["last_scheduled_run_id"] is not None else None for p in plans],
         "last_scheduled_at": [p["last_scheduled_at"] for p in plans]},
        schema={"tenant": pl.String, "schedule": pl.String, "next_run": pl.Datetime("us", "UTC"),
                "last_scheduled": pl.String, "last_scheduled_at": pl.Datetime("us", "UTC")})


def tenant_label(row: dict[str, Any]) -> str:
    kind = row.get("kind") or "tenant"
    return f"{KIND_MARK.get(kind, '')}{reveal(row['display_name'])}{KIND_SUFFIX.get(kind, '')}"


def tenant_labels(frame: pl.DataFrame) -> dict[str, str]:
    """tenant_id -> label with a kind marker ("◆ Name (baseline)"), unique."""
    from tenantpilot.analysis.explore import unique_labels

    return unique_labels({r["tenant_id"]: tenant_label(r) for r in frame.iter_rows(named=True)})


def format_with(labels: dict[str, str]) -> Callable[[str], str]:
    return lambda key: labels.get(key, key)


def demo_tenants() -> list[tuple[str, str]] | None:
    """The demo tenants the local simulator serves: those listed in its simulator.json while it runs,
    else the first DEMO_TENANT_COUNT of DEMO_TENANTS (what `python -m tenantpilot simulate` serves by
    default); None when the simulator package is not there. Adding all of DEMO_TENANTS would add
    tenants the simulator does not serve, whose syncs fail at sign-in."""
    try:
        served = json.loads(config().simulator_info_path.read_text(encoding="utf-8"))["tenants"]
        if served:
            return [(str(t["tenant_id"]), str(t["display_name"])) for t in served]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        from graphsim.demo import DEMO_TENANTS
    except ImportError:  # a deployment without the simulator: no demo button
        return None
    return [(str(t), str(n)) for t, n in DEMO_TENANTS][:DEMO_TENANT_COUNT]


# --- queue state (the banner on Sync and Health) ---------------------------------------------
def queue_problems(queued_at: Sequence[Any] = ()) -> list[tuple[str, str]]:
    """(level, message) pairs: queue unreachable, consumer missing/stale, runs waiting too long."""
    cfg = config()
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


# --- small formatting helpers ----------------------------------------------------------------
def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds:.1f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


# --- the deviation register (tenantpilot/analysis/deviations.py) -------------------------------------------
def deviations_register() -> pl.DataFrame:
    """The whole register, removed deviations too: Compare reads it once per rerun for accepted_rows and
    deviation_register (each open of the database costs ~15 ms)."""
    with guard("read the deviation register"):
        return store().deviations(include_removed=True)


def accepted_rows(baseline: str | None, register: pl.DataFrame) -> tuple[tuple[str, ...], ...]:
    """The valid accepted deviations against `baseline` among `register` (deviations_register()) as a
    hashable cache key (tenant_id, MATCH_KEY, label), for Compare."""
    from datetime import date

    from tenantpilot.analysis import deviations

    if not baseline:
        return ()
    return tuple(deviations.accepted_keys(register, date.today(), baseline).rows())


def accepted_frame(rows: tuple[tuple[str, ...], ...]) -> pl.DataFrame:
    from tenantpilot.analysis.compare import MATCH_KEY

    return pl.DataFrame(list(rows), schema={"tenant_id": pl.String, **{k: pl.String for k in MATCH_KEY},
                                            "label": pl.String}, orient="row")


def accept_deviation_form(matrix: pl.DataFrame, tenants: dict[str, str], baseline: str, baseline_label: str) -> None:
    """Compare's form: accept one difference (tenant, setting, reason, owner, expiry) from the baseline."""
    from datetime import date, timedelta

    from tenantpilot.analysis import deviations
    from tenantpilot.analysis.compare import DIFFERS, MATCH_KEY, MISSING

    box = st.expander(f"Accept a difference from {inert(baseline_label)}", icon=":material/verified:",
                      key="cmp_accept_open", on_change="rerun")
    if not box.open:  # the form lists every open difference: built only when someone opens it
        return
    open_rows = matrix.filter(pl.col("status").is_in([DIFFERS, MISSING]))
    with box:
        if not open_rows.height or not tenants:
            st.caption("No open difference to accept.")
            return
        keys = [tuple(r) for r in open_rows.select(MATCH_KEY).rows()]
        names = dict(zip(keys, open_rows["setting_name"].fill_null(open_rows["setting_key"]).to_list()))
        with st.form("dev_accept", clear_on_submit=True):
            c1, c2 = st.columns(2)
            tenant = c1.selectbox("Tenant", list(tenants), format_func=format_with(tenants))
            key = c2.selectbox("Setting", keys, format_func=lambda k: reveal(
                f"{names[k]} · {families.label(k[0])}{' · ' + k[1] if k[1] else ''}"))
            reason = st.text_input("Reason", max_chars=deviations.MAX_TEXT)
            c3, c4 = st.columns(2)
            owner = c3.text_input("Owner", max_chars=deviations.MAX_TEXT)
            expires = c4.date_input("Accepted until (last day)", value=date.today() + timedelta(days=90),
                                    min_value=date.today())
            if not st.form_submit_button("Accept", icon=":material/check:"):
                return
        with guard("record the deviation"):
            known = store().tenants()["tenant_id"].to_list()
            try:
                new = deviations.validate(tenant_id=str(tenant), baseline_id=baseline, key=key,
                                          setting_name=names[key], reason=reason, owner=owner,
                                          expires_on=expires, today=date.today(), tenants=known,
                                          baselines=known)
            except deviations.DeviationError as exc:
                st.error(inert(exc), icon=":material/error:")
                return
            store().add_deviation(new)
        st.rerun()


def deviation_register(tenant_ids: Sequence[str], register: pl.DataFrame) -> None:
    """The register (valid, expired and removed; deviations_register()) of these tenants, its CSV export
    and removing one."""
    from datetime import date

    from tenantpilot.analysis import deviations, export

    register = deviations.with_state(register.filter(pl.col("tenant_id").is_in(list(tenant_ids))), date.today())
    with st.expander(f"Deviation register ({register.height:,})", icon=":material/fact_check:"):
        if not register.height:
            st.caption("No accepted deviation yet.")
            return
        shown = with_family_labels(register.drop("tenant_id", "baseline_id"))
        st.dataframe(inert_frame(shown), hide_index=True, placeholder="—", key="dev_register",
                     column_config={"deviation_id": st.column_config.NumberColumn("Id", format="%d"),
                                    "setting_key": None, "expires_on": "Until (last day)"})
        c1, c2 = st.columns([1, 2])
        c1.download_button("Register CSV", data=export.to_csv_bytes(with_family_labels(register)),
                           file_name="tenantpilot-deviations.csv", mime="text/csv", icon=":material/download:",
                           key="dev_csv", on_click="ignore")
        open_ids = register.filter(pl.col("state") != "removed")["deviation_id"].to_list()
        if open_ids:
            chosen = c2.selectbox("Remove a deviation", open_ids, index=None, placeholder="Choose its id",
                                  key="dev_remove_id")
            if chosen is not None and c2.button("Remove", key="dev_remove", icon=":material/delete:"):
                with guard("remove the deviation"):
                    store().remove_deviation(int(chosen))
                st.rerun()


def show_expired_deviations(tenant_id: str | None = None, days: int = 30) -> None:
    """Changes: accepted deviations that expired in the last `days` days: their differences are open again."""
    from datetime import date, timedelta

    from tenantpilot.analysis import deviations

    with guard("read the deviation register"):
        register = store().deviations([tenant_id] if tenant_id else None)
    today = date.today()
    found = deviations.expired_since(register, today - timedelta(days=days), today)
    if not found.height:
        return
    st.subheader("Accepted deviations that expired")
    st.caption(f"In the last {days} days: these differences from the baseline count again (Compare, alignment).")
    st.dataframe(inert_frame(with_family_labels(found.select(
        "tenant", "baseline", "policy_type", "setting_name", "reason", "owner", "expires_on"))),
        hide_index=True, placeholder="—", key="chg_expired_devs",
        column_config={"expires_on": "Last valid day"})
