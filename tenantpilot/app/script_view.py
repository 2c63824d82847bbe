"""Script bodies in the detail view: the text of a policy's scripts on demand, and a line diff against the
same script in another tenant or an earlier run of this one.

Rows hold only a script's sha256 (compared by content); the text comes from the policy's stored raw JSON
(analysis/scripts.py). Script text is hostile input: it is shown only in code blocks (`st.code`, never
Markdown or HTML) with invisible and bidi control characters revealed (escaping.reveal); choice labels
go through `reveal` as every widget option. Pages call :func:`show_scripts` once; the pure helpers
(:func:`language`, :func:`diff_choices`, :func:`script_diffs`) are tested without Streamlit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl
import streamlit as st

from tenantpilot.analysis.scripts import line_diff, script_bodies
from tenantpilot.app.escaping import inert, reveal
from tenantpilot.app.messages import guard

#: what each script property is called on screen (the portal's words)
SCRIPT_LABELS: dict[str, str] = {
    "scriptContent": "Script",
    "detectionScriptContent": "Detection script",
    "remediationScriptContent": "Remediation script",
}


@dataclass(frozen=True)
class DiffTarget:
    """Something to diff the shown policy's scripts against: another tenant's policy, or an earlier version."""

    label: str
    run_id: int | None  # another tenant's policy: read as of this run
    tenant_id: str
    policy_id: str
    raw_json: str | None = None  # an earlier version: its stored raw JSON


def language(odata_type: str | None, raw: Mapping[str, Any] | None = None) -> str:
    """The code block's language: shell for macOS shell scripts and custom attributes, else PowerShell."""
    name = str(odata_type or "").lower()
    file_name = str((raw or {}).get("fileName") or "").lower()
    return "bash" if "shell" in name or file_name.endswith((".sh", ".zsh")) else "powershell"


def diff_choices(row: Mapping[str, Any], setters: pl.DataFrame, versions: pl.DataFrame) -> list[DiffTarget]:
    """What the policy in `row` (tenant_id, policy_id, run_id) can be diffed against: the other policies in
    `setters` (tenant, tenant_id, policy_name, policy_id, run_id: those setting the same setting) and the
    earlier versions of this policy (`versions`: Store.policy_versions, newest first; the first is the current)."""
    out: list[DiffTarget] = []
    for other in setters.unique(["tenant_id", "policy_id"], maintain_order=True).iter_rows(named=True):
        if (other["tenant_id"], other["policy_id"]) == (row["tenant_id"], row["policy_id"]):
            continue
        out.append(DiffTarget(f"{reveal(other['tenant'])}: {reveal(other['policy_name'])}", int(other["run_id"]),
                         other["tenant_id"], other["policy_id"]))
    for version in versions.iter_rows(named=True):
        if int(version["valid_from_run"]) >= int(row["run_id"]):
            continue  # the version shown (or a newer one)
        when = version["finished_at"]
        stamp = f" ({when:%Y-%m-%d %H:%M})" if when is not None else ""
        out.append(DiffTarget(f"this policy as of run {version['valid_from_run']}{stamp}", None, row["tenant_id"],
                         row["policy_id"], version["raw_json"]))
    return out


def script_diffs(mine: Mapping[str, str], theirs: Mapping[str, str], *, mine_label: str,
                 theirs_label: str) -> dict[str, list[str]]:
    """{property: unified diff lines from `theirs` to `mine`} for every script either side has ([] = same)."""
    return {key: line_diff(theirs.get(key, ""), mine.get(key, ""), old_label=theirs_label, new_label=mine_label)
            for key in sorted(mine.keys() | theirs.keys())}


def show_scripts(store: Any, row: Mapping[str, Any], setters: pl.DataFrame, raw: str | None) -> None:
    """The detail view's script section for the policy in `row` (run_id, tenant_id, tenant, policy_id,
    policy_name, odata_type), whose stored raw JSON is `raw`; nothing when the policy holds no script."""
    bodies = script_bodies(raw)
    if not bodies:
        return
    lang = language(row.get("odata_type"))
    with st.expander(f"Script text of “{inert(row['policy_name'])}” ({inert(row['tenant'])})"):
        for key, text in bodies.items():
            st.caption(SCRIPT_LABELS.get(key, key))
            st.code(reveal(text), language=lang, line_numbers=True)
    with guard("read the earlier versions of the policy"):
        versions = store.policy_versions(row["tenant_id"], row["policy_id"])
    choices = diff_choices(row, setters, versions)
    if not choices:
        st.caption("No other tenant or earlier run holds this script to compare with.")
        return
    picked = st.selectbox("Line diff of the script against", range(len(choices)), index=None,
                          format_func=lambda i: choices[i].label, placeholder="another tenant or an earlier run",
                          key=f"script_diff_{row['tenant_id']}_{row['policy_id']}")
    if picked is None:
        return
    other = choices[picked]
    other_raw = other.raw_json
    if other.run_id is not None:
        with guard("read the other policy's raw JSON"):
            other_raw = store.policy_raw(other.run_id, other.policy_id)
    diffs = script_diffs(bodies, script_bodies(other_raw), mine_label=f"{reveal(row['tenant'])} (shown)",
                         theirs_label=other.label)
    for key, lines in diffs.items():
        label = SCRIPT_LABELS.get(key, key)
        if not lines:
            st.caption(f"{label}: the same text.")
        else:
            st.caption(f"{label}: lines starting with - are only in {inert(other.label)}, + only in the one shown.")
            st.code(reveal("\n".join(lines)), language="diff")


__all__ = ["DiffTarget", "SCRIPT_LABELS", "diff_choices", "language", "script_diffs", "show_scripts"]
