"""Compare's reads, charts and widgets: the chosen tenants' settings (read once per chosen set), the
cached comparison, the alignment and differences charts, and the deviation register (accepting a
difference from the baseline, listing and removing accepted ones)."""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import polars as pl
import streamlit as st

from tenantpilot import families
from tenantpilot.access import User, can
from tenantpilot.analysis import compare, explore
from tenantpilot.app.escaping import inert, inert_frame, reveal
from tenantpilot.app.labels import format_with, with_family_labels
from tenantpilot.app.messages import guard
from tenantpilot.app.reads import SnapshotKey, cached, chosen_key, store
from tenantpilot.app.signin import permitted, why_not
from tenantpilot.store import open_store

STATUS_COLORS = {"differs": "#D13438", "missing": "#F7A600", "conflict": "#8764B8"}
STATUS_LABEL = {"same": "same", "differs": "differs", "missing": "missing in some", "conflict": "conflict"}


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


def differences_chart(by_type: pl.DataFrame) -> alt.Chart:
    """Stacked horizontal bars: settings that differ / are missing / conflict, per policy type."""
    long = by_type.unpivot(index="policy_type", on=list(STATUS_COLORS), variable_name="status", value_name="settings")
    return (
        alt.Chart(long.to_pandas())
        .mark_bar()
        .encode(
            x=alt.X("sum(settings):Q", title="settings"),
            y=alt.Y("policy_type:N", title=None, sort="-x", axis=alt.Axis(labelLimit=260, labelOverlap=False)),
            color=alt.Color("status:N", title=None, legend=alt.Legend(orient="bottom"),
                            scale=alt.Scale(domain=list(STATUS_COLORS), range=list(STATUS_COLORS.values()))),
            order=alt.Order("status:N"),
            tooltip=["policy_type", "status", "settings"],
        )
        .properties(height=alt.Step(30))
    )


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


def accept_deviation_form(matrix: pl.DataFrame, tenants: dict[str, str], baseline: str, baseline_label: str,
                          user: User) -> None:
    """Compare's form: accept one difference (tenant, setting, reason, owner, expiry) from the baseline
    (analysts and admins: checked when submitted)."""
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
            if not st.form_submit_button("Accept", icon=":material/check:", disabled=not can(user, "accept_deviation"),
                                         help=why_not(user, "accept_deviation")):
                return
        if not permitted(user, "accept_deviation"):
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
            deviation_id = store().add_deviation(new, accepted_by=user.actor)
        from tenantpilot.app.access_view import record

        record(user, "deviation accepted", [str(tenant)], f"deviation {deviation_id}: {names[key]} until {expires}")
        st.rerun()


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
