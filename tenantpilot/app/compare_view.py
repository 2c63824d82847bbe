"""Compare's reads, charts and widgets: the chosen tenants' settings (read once per chosen set), the
cached comparison, the counts, the matrix as a selectable table that fits 1440 px, the alignment and differences
charts, and the deviation register (listing and removing accepted ones; accepting from selected rows is
triage_view's)."""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import polars as pl
import streamlit as st

from tenantpilot.access import User, can
from tenantpilot.analysis import compare, explore
from tenantpilot.app.escaping import inert_frame
from tenantpilot.app.labels import with_family_labels
from tenantpilot.app.messages import guard
from tenantpilot.app.reads import SnapshotKey, cached, chosen_key, store
from tenantpilot.app.signin import permitted, why_not
from tenantpilot.store import open_store

STATUS_COLORS = {compare.DIFFERS: "#D13438", compare.MISSING: "#F7A600", compare.CONFLICT: "#8764B8",
                 compare.DIFFERENT: "#D13438", compare.MISSING_IN_TENANT: "#F7A600", compare.NOT_IN_BASELINE: "#0F6CBD"}
MAIN_WIDTH = 1030  # px of the main column at a 1440 px window with the sidebar open: what the matrix must fit
PEEK = 50  # px of the column after the compared ones left in view: a sign that more columns follow


# --- the chosen tenants' settings: cost grows with what is compared -------------------------------
def compare_columns() -> list[str]:
    """The setting columns Compare reads: what compare uses, what its search and filters look at."""
    return [*dict.fromkeys((*compare.READS, *explore.SEARCH_COLUMNS,
                            *(c for c in explore.FACET_COLUMNS.values() if c != "tenant_id")))]


@cached("read the chosen tenants' settings", max_entries=4, frames=True, spinner="Loading the chosen tenants…")
def _tenant_settings(key: SnapshotKey) -> pl.DataFrame:
    """Keyed by the tenants' current runs (chosen_key). Compare needs no order (its results never depend
    on it) and no long texts (descriptions, raw values), which stay in the database."""
    return open_store().current_columns_of(sorted(t for t, _run in key[1]), compare_columns())


@cached("read the chosen tenants' settings", max_entries=4)
def _tenant_facets(key: SnapshotKey) -> dict[str, list[str]]:
    return explore.facet_values(_tenant_settings(key))


def current_settings_of(key: SnapshotKey, tenant_ids: Sequence[str],
                        filters: explore.Filters | None = None) -> pl.DataFrame:
    """The current rows of the chosen tenants only, in no particular order, with the columns Compare
    reads. Unfiltered: the cached read; `filters` (the page's facets and search) are applied by the store."""
    if filters is None or filters == explore.Filters():
        return _tenant_settings(chosen_key(key, tenant_ids))
    with guard("read the chosen tenants' settings"):
        return open_store().current_columns_of(sorted(tenant_ids), compare_columns(), filters)


def facets_of(key: SnapshotKey, tenant_ids: Sequence[str]) -> dict[str, list[str]]:
    """explore.facet_values of current_settings_of(key, tenant_ids): the filter choices, once per chosen set."""
    return _tenant_facets(chosen_key(key, tenant_ids))


@cached("compare the tenants", max_entries=8, frames=True, spinner="Comparing…")
def comparison(key: SnapshotKey, compared: tuple[str, ...], baseline: str | None, filters: explore.Filters,
               names: tuple[tuple[str, str], ...], unconfigured: bool = False,
               accepted_rows: tuple[tuple[str, ...], ...] = ()) -> compare.Comparison:
    """Matrix, alignment scores and conflicts; cached so paging and "only differences" are instant.
    `key`: chosen_key of the compared tenants. `filters`: the page's facets and search (no tenants: the
    compared ones are). `accepted_rows`: the valid accepted deviations against the baseline
    (accepted_rows()). A resource, not data: the frames are never changed, and cache_data would pickle
    the matrix into the cache and out of it on every rerun."""
    filtered = current_settings_of(key, compared, filters.without("tenants"))
    return compare.comparison(filtered, list(compared), baseline, labels=dict(names), unconfigured=unconfigured,
                              accepted=accepted_frame(accepted_rows))


# --- charts ------------------------------------------------------------------------------------
def alignment_chart(scores: pl.DataFrame) -> alt.Chart:
    """Horizontal bars, 0-100 % scale (a bar_chart would stretch the axis to the best tenant)."""
    data = scores.select("tenant", (pl.col("score").fill_null(0) * 100).round(1).alias("aligned"))
    return (
        alt.Chart(data.to_pandas())
        .mark_bar(color="#0F6CBD")
        .encode(
            x=alt.X("aligned:Q", title="settings aligned with the baseline (%)", scale=alt.Scale(domain=[0, 100])),
            y=alt.Y("tenant:N", title=None, sort="-x", axis=alt.Axis(labelOverlap=False, labelLimit=220)),
            tooltip=["tenant", alt.Tooltip("aligned:Q", title="aligned %")],
        )
        .properties(height=alt.Step(34))
    )


def chart_statuses(baseline: str | None) -> tuple[str, ...]:
    """The statuses the differences chart stacks (the matrix's vocabulary, without "same")."""
    return tuple(s for s in (compare.BASELINE_STATUSES if baseline else compare.STATUSES) if s != compare.SAME)


def differences_chart(by_type: pl.DataFrame, statuses: Sequence[str]) -> alt.Chart:
    """Stacked horizontal bars: settings of each status (chart_statuses) per policy type."""
    colors = {s: STATUS_COLORS[s] for s in statuses}
    long = by_type.unpivot(index="policy_type", on=list(colors), variable_name="status", value_name="settings")
    return (
        alt.Chart(long.to_pandas())
        .mark_bar()
        .encode(
            x=alt.X("sum(settings):Q", title="settings"),
            y=alt.Y("policy_type:N", title=None, sort="-x", axis=alt.Axis(labelLimit=260, labelOverlap=False)),
            color=alt.Color("status:N", title=None, legend=alt.Legend(orient="bottom", labelLimit=0, columns=2),
                            scale=alt.Scale(domain=list(colors), range=list(colors.values()))),
            order=alt.Order("status:N"),
            tooltip=["policy_type", "status", "settings"],
        )
        .properties(height=alt.Step(30))
    )


# --- counts and the matrix -------------------------------------------------------------------------------
def metrics(matrix: pl.DataFrame, baseline: str | None) -> None:
    """The counts above the matrix, in its words; each counts settings (rows of the matrix), which the
    alignment table counts per tenant (tenant x setting)."""
    counts = dict(matrix.group_by("status").len().iter_rows()) if matrix.height else {}
    words = ((compare.DIFFERENT, compare.MISSING_IN_TENANT, compare.NOT_IN_BASELINE, compare.CONFLICT) if baseline
             else (compare.SAME, compare.DIFFERS, compare.MISSING, compare.CONFLICT))
    m = st.columns(6)
    m[0].metric("Settings", f"{matrix.height:,}", help="Settings compared: rows of the matrix, each one setting "
                                                       "matched across the tenants.")
    for col, status in zip(m[1:], words):
        col.metric(compare.ROW_WORDS[status].capitalize(), f"{counts.get(status, 0):,}",
                   help=f"Settings whose row says “{compare.ROW_WORDS[status]}”"
                        + (" (per tenant: the alignment table)." if baseline and status != compare.CONFLICT else "."))
    m[5].metric("Accepted", f"{matrix.filter(compare.is_accepted()).height:,}",
                help="Settings whose every difference from the baseline is in the deviation register, valid until "
                     "its date: left out of the alignment score.")


def scores_table(scores: pl.DataFrame) -> None:
    """Alignment per tenant (compare.alignment_scores with `aligned` in %), its counts in the baseline
    vocabulary (SCORE_WORDS), each column wide enough to read at 1440 px."""
    st.dataframe(
        inert_frame(scores.drop("tenant_id")), hide_index=True, placeholder="—", key="cmp_scores",
        column_order=("tenant", "aligned", *compare.SCORE_WORDS),
        column_config={
            "tenant": st.column_config.TextColumn("Tenant", width=220),
            "aligned": st.column_config.ProgressColumn("Aligned", format="%.1f %%", min_value=0, max_value=100,
                                                       width=150),
            **{c: st.column_config.NumberColumn(w.capitalize(), width=125,
                                                help=f"Settings of this tenant that are “{w}”"
                                                     + (" (left out of the score)" if c == "accepted" else ""))
               for c, w in compare.SCORE_WORDS.items()},
        },
    )


def distinct_names(rows: pl.DataFrame) -> pl.Series:
    """Each row's setting name, followed by what tells it apart where another row of its policy type shows the
    same name: its category, then its profile / platform (scope), then its policy, then its key."""
    name = pl.col("setting_name").fill_null(pl.col("setting_key"))
    frame = rows.with_columns(name.alias("_name"))
    for part in ("category", "scope", "policy", "setting_key"):
        if part not in frame.columns:
            continue
        dup = pl.len().over("policy_type", "_name") > 1
        frame = frame.with_columns(
            pl.when(dup & pl.col(part).fill_null("").ne(""))
            .then(pl.format("{} · {}", pl.col("_name"), pl.col(part))).otherwise(pl.col("_name")).alias("_name"))
    return frame["_name"].alias("setting")


def matrix_table(rows: pl.DataFrame, tenant_cols: Sequence[str], *, technical: bool, key: str) -> object:
    """The matrix page as a selectable table that fits MAIN_WIDTH: setting, status, then every compared
    column (a baseline and four tenants without scrolling sideways), then the policy, category and type;
    the key and the profile / platform (Graph type) only with `technical`. An accepted row reads "accepted
    until <date>", its reason in the column after the tenants. Returns the selection state."""
    shown = rows.with_columns(distinct_names(rows), *accepted_columns()).drop(
        "tenants_set", *(c for c in ("members",) if c in rows.columns))
    shown = inert_frame(with_family_labels(shown))
    reasons = shown["accepted_because"].is_not_null().any()
    tail = [*(["accepted_because"] if reasons else []), "policy", "category", "policy_type",
            *(["scope", "setting_key"] if technical else [])]
    setting_w, status_w = 240, 165
    # the rest for the compared columns, less the selection boxes (~35 px) and a peek at the next column
    tenant_w = max(100, min(260, (MAIN_WIDTH - setting_w - status_w - 35 - PEEK) // max(1, len(tenant_cols))))
    order = ["setting", "status", *tenant_cols, *tail]
    shown = shown.select(*order, *(c for c in shown.columns if c not in order))  # as shown, for readers of the frame
    return st.dataframe(
        shown, column_order=order, hide_index=True, placeholder="—",
        column_config={
            "setting": st.column_config.TextColumn("Setting", width=setting_w),
            "status": st.column_config.TextColumn("Status", width=status_w),
            **{c: st.column_config.TextColumn(c, width=tenant_w) for c in tenant_cols},
            "accepted_because": st.column_config.TextColumn("Accepted because", width="medium"),
            "policy": st.column_config.TextColumn("Policy", width="medium"),
            "category": "Category", "policy_type": "Policy type", "setting_key": "Setting key",
            "scope": st.column_config.TextColumn("Profile / platform", help="Graph type of property-keyed "
                                                 "profiles; platform of the settings catalog"),
        },
        key=key, height="auto" if rows.height <= 10 else 640, on_select="rerun", selection_mode="multi-row",
    )


def accepted_columns() -> tuple[pl.Expr, pl.Expr]:
    """An accepted row's status as the matrix shows it: "accepted until <date>" (`status`), and its reason
    apart (`accepted_because`; null on other rows), read from deviations.status_text's label."""
    from tenantpilot.analysis.deviations import LABEL_PATTERN

    accepted = compare.is_accepted()
    one = pl.col("status").str.extract_groups(LABEL_PATTERN)
    until = pl.col("status").str.extract_all(r"until (\d{4}-\d{2}-\d{2})\)").list.eval(
        pl.element().str.slice(6, 10)).list.max()
    return (pl.when(accepted).then(pl.format("{} until {}", pl.lit(compare.ACCEPTED), until))
            .otherwise(pl.col("status")).alias("status"),
            pl.when(accepted & ~pl.col("status").str.contains(f"; {compare.ACCEPTED} (", literal=True))
            .then(one.struct.field("reason")).when(accepted).then(pl.col("status"))
            .otherwise(pl.lit(None, pl.String)).alias("accepted_because"))


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


def deviation_register(tenant_ids: Sequence[str], register: pl.DataFrame, user: User) -> None:
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
                                    "setting_key": None, "tenant": "Tenant", "baseline": "Baseline",
                                    "policy_type": "Policy type", "scope": "Applies to", "setting_name": "Setting",
                                    "reason": "Reason", "owner": "Owner", "accepted_by": "Accepted by",
                                    "expires_on": st.column_config.DateColumn("Until (last day)", format="YYYY-MM-DD"),
                                    "created_at": st.column_config.DatetimeColumn("Accepted at",
                                                                                  format="YYYY-MM-DD HH:mm"),
                                    "removed_at": st.column_config.DatetimeColumn("Removed at",
                                                                                  format="YYYY-MM-DD HH:mm"),
                                    "state": "State"})
        c1, c2 = st.columns([1, 2])
        c1.download_button("Register CSV", data=export.to_csv_bytes(with_family_labels(register)),
                           file_name="tenantpilot-deviations.csv", mime="text/csv", icon=":material/download:",
                           key="dev_csv", on_click="ignore")
        open_ids = register.filter(pl.col("state") != "removed")["deviation_id"].to_list()
        if open_ids:
            chosen = c2.selectbox("Remove a deviation", open_ids, index=None, placeholder="Choose its id",
                                  key="dev_remove_id")
            if chosen is not None and c2.button("Remove", key="dev_remove", icon=":material/delete:",
                                                disabled=not can(user, "remove_deviation"),
                                                help=why_not(user, "remove_deviation")) \
                    and permitted(user, "remove_deviation"):
                with guard("remove the deviation"):
                    store().remove_deviation(int(chosen))
                from tenantpilot.app.access_view import record

                gone = register.filter(pl.col("deviation_id") == chosen)
                record(user, "deviation removed", gone["tenant_id"].to_list()[:1], f"deviation {chosen}")
                st.rerun()



REPORT_SINCE = "30d"  # the report's "Changes since" from the Compare page (the CLI takes --since)


def report_bytes(tenant_ids: tuple[str, ...], baseline: str, fmt: str) -> bytes:
    """The customer report of these tenants against the baseline (built when its button is clicked)."""
    from tenantpilot import report
    from tenantpilot.analysis import history

    with guard(f"build the {fmt.upper()} report"):
        return report.render(report.gather(store(), list(tenant_ids), baseline, history.parse_since(REPORT_SINCE)),
                             fmt)


def report_buttons(tenant_ids: Sequence[str], baseline: str, user: User) -> None:
    """Excel and PDF downloads of the customer report (the compared tenants against the baseline; the
    report reads the whole snapshot, not the page's filters); each download is recorded as an export."""
    from functools import partial

    from tenantpilot.app.access_view import recorded_export

    ids = tuple(t for t in tenant_ids if t != baseline)
    xlsx, pdf = st.columns(2)
    help_text = (f"Alignment, differences, accepted deviations, changes in the last {REPORT_SINCE[:-1]} days and "
                 "types not read, for the compared tenants against the baseline (all settings, not only the "
                 "filtered ones).")
    xlsx.download_button("Report (Excel)", data=recorded_export(user, "Report (Excel)", [*ids, baseline],
                                                              partial(report_bytes, ids, baseline, "xlsx")),
                         file_name="tenantpilot-report.xlsx", icon=":material/table_view:", key="cmp_report_xlsx",
                         mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                         on_click="ignore", help=help_text, width="stretch")
    pdf.download_button("Report (PDF)", data=recorded_export(user, "Report (PDF)", [*ids, baseline],
                                                            partial(report_bytes, ids, baseline, "pdf")),
                        file_name="tenantpilot-report.pdf", icon=":material/picture_as_pdf:", key="cmp_report_pdf",
                        mime="application/pdf", on_click="ignore", help=help_text, width="stretch")
