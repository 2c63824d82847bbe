"""Triage where you look: what the rows selected in Compare's matrix are, and acting on them at once: accept
their differences from the baseline (reason, owner, expiry) or un-accept them, and the settings behind a
policy shown as one line (compare.policy_lines).

Which tenants an acceptance covers is the compare rule's (compare.deviating_cells: the tenants whose
configured cell differs from the baseline's); every action checks the role on the server (signin.permitted,
tenantpilot/access.py) at the moment it acts, whatever the buttons showed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta

import polars as pl
import streamlit as st

from tenantpilot.access import User, can
from tenantpilot.analysis import compare, deviations
from tenantpilot.app.escaping import inert, inert_frame
from tenantpilot.app.labels import with_family_labels
from tenantpilot.app.messages import guard
from tenantpilot.app.reads import store
from tenantpilot.app.signin import permitted, why_not

KEYS = list(compare.MATCH_KEY)


def selected_rows(shown: pl.DataFrame, state: object) -> pl.DataFrame:
    """The rows of `shown` (the matrix page on screen) that the st.dataframe selection `state` names."""
    rows: list[int] = []
    selection = getattr(state, "selection", None)
    if selection is not None:
        rows = list(getattr(selection, "rows", None) or (selection.get("rows", []) if isinstance(selection, dict)
                                                          else []))
    rows = [r for r in rows if 0 <= r < shown.height]
    return shown[rows] if rows else shown.clear()


def settings_of(selected: pl.DataFrame, matrix: pl.DataFrame) -> pl.DataFrame:
    """The matrix rows behind the selected lines: a folded policy line (compare.policy_lines) stands for
    every setting of its policy with that status; any other line for itself."""
    folded = selected.filter(pl.col("settings") > 1) if "settings" in selected.columns else selected.clear()
    single = selected.filter(pl.col("settings") <= 1) if "settings" in selected.columns else selected
    parts = [matrix.join(single.select(KEYS), on=KEYS, how="semi")]
    if folded.height:
        members = folded.select("policy_type", "policy", "status", "members").explode("members").rename(
            {"members": "setting_key"})
        parts.append(matrix.join(members, on=["policy_type", "policy", "status", "setting_key"], how="semi"))
    return pl.concat(parts).unique(KEYS, keep="first", maintain_order=True)


def accepted_in(register: pl.DataFrame, settings: pl.DataFrame, baseline: str, tenants: Sequence[str]) -> pl.DataFrame:
    """The register's deviations in force today from `baseline` that cover these settings for these tenants."""
    valid = deviations.valid_on(register, date.today(), baseline)
    return valid.filter(pl.col("tenant_id").is_in(list(tenants))).join(settings.select(KEYS), on=KEYS, how="semi")


def triage(selected: pl.DataFrame, matrix: pl.DataFrame, rows: Callable[[], pl.DataFrame], *,
           tenants: Mapping[str, str], baseline: str | None, register: pl.DataFrame, user: User) -> None:
    """Below the matrix, for the selected lines: what they hold, the settings behind a policy line, and (with a
    baseline) accept or un-accept them. `rows`: the compared tenants' settings (read when an action needs them);
    `tenants`: the compared tenants besides the baseline, id -> column label."""
    if not selected.height:
        st.caption("Select rows in the matrix (the boxes at their left) to accept or un-accept several differences "
                   "at once, or to open the settings behind a policy line.")
        return
    settings = settings_of(selected, matrix)
    st.markdown(f"**{selected.height:,} selected line{'s' if selected.height != 1 else ''}** "
                f"({settings.height:,} setting{'s' if settings.height != 1 else ''})")
    folded = bool((selected["settings"] > 1).any()) if "settings" in selected.columns else False
    # what an action below acts on, by name: open by itself when a policy line stands for several settings
    with st.expander(f"The {settings.height:,} selected setting{'s' if settings.height != 1 else ''}",
                     icon=":material/list:", expanded=folded):
        st.dataframe(inert_frame(with_family_labels(settings.drop("setting_key", "tenants_set"))),
                     hide_index=True, placeholder="—", key="cmp_members")
    if baseline is None:
        st.caption("Choose a baseline to accept differences from it.")
        return
    accept, unaccept = st.columns(2, gap="large")
    with accept:
        _accept_form(settings, rows, tenants, baseline, user)
    with unaccept:
        _unaccept(settings, register, tenants, baseline, user)


def _accept_form(settings: pl.DataFrame, rows: Callable[[], pl.DataFrame], tenants: Mapping[str, str],
                 baseline: str, user: User) -> None:
    open_settings = settings.filter(pl.col("status").is_in(list(compare.OPEN)))
    if not open_settings.height:
        st.caption("No open difference among the selected lines.")
        return
    with st.form("cmp_triage_accept", clear_on_submit=True, border=True):
        st.markdown(f"Accept **{open_settings.height:,}** difference{'s' if open_settings.height != 1 else ''} "
                    "from the baseline")
        chosen = st.multiselect("For tenants", list(tenants), default=list(tenants), format_func=lambda t: tenants[t],
                                key="cmp_triage_tenants")
        reason = st.text_input("Reason", max_chars=deviations.MAX_TEXT, key="cmp_triage_reason")
        c1, c2 = st.columns(2)
        owner = c1.text_input("Owner", max_chars=deviations.MAX_TEXT, key="cmp_triage_owner")
        until = c2.date_input("Accepted until (last day)", value=date.today() + timedelta(days=90),
                              min_value=date.today(), key="cmp_triage_until")
        go = st.form_submit_button("Accept selected", icon=":material/check:", disabled=not can(user, "accept_deviation"),
                                   help=why_not(user, "accept_deviation"))
    if not go or not permitted(user, "accept_deviation"):
        return
    with guard("record the deviations"):
        found = compare.deviating_cells(rows(), baseline, [str(t) for t in chosen], open_settings)
        known = store().tenants()["tenant_id"].to_list()
        try:
            new = [deviations.validate(tenant_id=r["tenant_id"], baseline_id=baseline,
                                       key=(r["policy_type"], r["scope"], r["setting_key"]),
                                       setting_name=r["setting_name"], reason=reason, owner=owner,
                                       expires_on=until, today=date.today(), tenants=known, baselines=known)
                   for r in found.iter_rows(named=True)]
        except deviations.DeviationError as exc:
            st.error(inert(exc), icon=":material/error:")
            return
        if not new:
            st.info("The chosen tenants set these settings as the baseline does: nothing to accept.",
                    icon=":material/info:")
            return
        ids = [store().add_deviation(d, accepted_by=user.actor) for d in new]
    from tenantpilot.app.access_view import record

    for d, deviation_id in zip(new, ids):
        record(user, "deviation accepted", [d.tenant_id], f"deviation {deviation_id}: {d.setting_name} until {until}")
    st.rerun()


def _unaccept(settings: pl.DataFrame, register: pl.DataFrame, tenants: Mapping[str, str], baseline: str,
              user: User) -> None:
    found = accepted_in(register, settings, baseline, list(tenants))
    if not found.height:
        st.caption("No accepted deviation among the selected lines.")
        return
    st.markdown(f"**{found.height:,}** accepted deviation{'s' if found.height != 1 else ''} in the selection")
    if not st.button("Un-accept selected", key="cmp_triage_unaccept", icon=":material/undo:",
                     disabled=not can(user, "remove_deviation"), help=why_not(user, "remove_deviation")):
        return
    if not permitted(user, "remove_deviation"):
        return
    with guard("remove the deviations"):
        removed = [(r["deviation_id"], r["tenant_id"]) for r in found.iter_rows(named=True)
                   if store().remove_deviation(int(r["deviation_id"]))]
    from tenantpilot.app.access_view import record

    for deviation_id, tenant_id in removed:
        record(user, "deviation removed", [tenant_id], f"deviation {deviation_id}")
    st.rerun()
