"""Script text and line diffs in Explore's detail view (tenantpilot/app/script_view.py): the pure helpers
table-driven, and the page through AppTest on a database holding real flattened remediations of two tenants
(the simulator's shapes), one of them synced twice with a changed remediation script. Hostile script text
shows as code, never as Markdown."""

from __future__ import annotations

import base64
from datetime import datetime

import polars as pl
import pytest
from apptest import app

from graphsim import coverage
from graphsim.tenants import build_tenant
from tenantpilot.app.script_view import diff_choices, language, script_diffs
from tenantpilot.families import COLLECTION_FAMILIES
from tenantpilot.store import Store
from tenantpilot.sync.snapshot import build_frames

A, B = "5c000000-1111-4222-8333-444444444444", "5c111111-1111-4222-8333-444444444444"
NEW_FIX = "Remove-Item -Path $env:TEMP\\* -Recurse\n"
HOSTILE = "# [click](http://evil.example) <b>bold</b> :smile: \u202eexe.ps1\n"


@pytest.mark.parametrize(("odata_type", "raw", "expected"), [
    ("#microsoft.graph.deviceHealthScript", None, "powershell"),
    ("#microsoft.graph.deviceShellScript", None, "bash"),
    ("#microsoft.graph.deviceCustomAttributeShellScript", None, "bash"),
    ("", {"fileName": "battery.zsh"}, "bash"),
    ("#microsoft.graph.deviceManagementScript", {"fileName": "x.ps1"}, "powershell"),
])
def test_language(odata_type, raw, expected):
    assert language(odata_type, raw) == expected


@pytest.mark.parametrize(("mine", "theirs", "changed"), [
    ({"scriptContent": "a\nb\n"}, {"scriptContent": "a\nb\n"}, {"scriptContent": False}),
    ({"scriptContent": "a\nb\n"}, {"scriptContent": "a\nc\n"}, {"scriptContent": True}),
    ({"detectionScriptContent": "x"}, {}, {"detectionScriptContent": True}),
    ({}, {"remediationScriptContent": "y"}, {"remediationScriptContent": True}),
])
def test_script_diffs(mine, theirs, changed):
    diffs = script_diffs(mine, theirs, mine_label="shown", theirs_label="other")
    assert {k: bool(v) for k, v in diffs.items()} == changed


def test_diff_choices_lists_other_tenants_and_only_earlier_versions():
    row = {"tenant_id": A, "policy_id": "p", "run_id": 5}
    setters = pl.DataFrame({"tenant": ["Alpha", "Beta", "Beta"], "tenant_id": [A, B, B],
                            "policy_name": ["Fix", "Fix \u202e", "Fix \u202e"], "policy_id": ["p", "q", "q"],
                            "run_id": [5, 7, 7]})
    versions = pl.DataFrame({"valid_from_run": [5, 3, 1], "finished_at": [datetime(2026, 12, 7)] * 3,
                             "raw_json": ["{}", '{"a": 1}', '{"a": 0}']})
    choices = diff_choices(row, setters, versions)
    assert [c.label for c in choices] == ["Beta: Fix [U+202E]", "this policy as of run 3 (2026-12-07 00:00)",
                                          "this policy as of run 1 (2026-12-07 00:00)"]
    assert (choices[0].run_id, choices[0].policy_id) == (7, "q") and choices[1].raw_json == '{"a": 1}'


def _write(store: Store, tenant_id: str, policies: list[tuple[str, dict]]) -> int:
    run_id, created = store.create_run_unless_active(tenant_id)
    assert created
    store.start_run(run_id)
    frames = build_frames(policies)
    store.write_snapshot(run_id, tenant_id, policies=frames.policies, settings=frames.settings,
                         assignments=frames.assignments, status="succeeded", request_count=1)
    return run_id


def _remediations(tid: str, name: str) -> list[tuple[str, dict]]:
    tenant = build_tenant(tid, name, n_policies=2, coverage=True)
    return [(COLLECTION_FAMILIES["deviceHealthScripts"], dict(p.resource))
            for p in tenant.list_policies("deviceHealthScripts")]


def test_explore_shows_script_text_and_diffs_it_against_an_earlier_run_and_another_tenant(db):
    db.add_tenant(A, "Alpha", "tenant")
    db.add_tenant(B, "Beta", "tenant")
    first = _remediations(A, "Alpha")
    _write(db, A, first)
    changed = [(f, {**raw, "remediationScriptContent": base64.b64encode((NEW_FIX + HOSTILE).encode()).decode()})
               if raw["displayName"] == "Clean up low disk space" else (f, raw) for f, raw in first]
    _write(db, A, changed)
    _write(db, B, _remediations(B, "Beta"))

    at = app("explore")
    at.multiselect(key="ex_tenants").set_value([A]).run()
    at.text_input(key="ex_search").input("Remediation script content").run()
    grid = next(d for d in at.dataframe if d.key and d.key.startswith("ex_table_"))
    names = list(grid.value["policy_name"])
    at.session_state[grid.key] = {"selection": {"rows": [names.index("Clean up low disk space")], "columns": [],
                                                "cells": []}}
    at.run()
    assert not at.exception, at.exception
    codes = [c.value for c in at.code]
    # the text on demand: both bodies, the hostile line as code with the bidi control revealed
    assert any(NEW_FIX.strip() in c and "[U+202E]exe.ps1" in c for c in codes), codes
    assert any(coverage.DISK_DETECT.strip().splitlines()[0] in c for c in codes)
    assert not [m for m in at.markdown if "evil.example" in m.value and "\\" not in m.value]
    picker = next(s for s in at.selectbox if s.key and s.key.startswith("script_diff_"))
    labels = list(picker.options)  # AppTest holds the formatted labels
    assert labels[0] == "Beta: Clean up low disk space" and labels[1].startswith("this policy as of run 1")
    picker.set_value(1).run()  # the earlier run of this tenant: only the remediation script changed
    diff = "\n".join(c.value for c in at.code if c.language == "diff")
    assert f"+{NEW_FIX.strip()}" in diff and f"-{coverage.DISK_FIX.strip()}" in diff
    assert "--- this policy as of run 1" in diff and "+++ Alpha (shown)" in diff
    assert any("Detection script: the same text." in c.value for c in at.caption)
    picker = next(s for s in at.selectbox if s.key and s.key.startswith("script_diff_"))
    picker.set_value(0).run()  # the other tenant's same remediation: the same change shows
    diff = "\n".join(c.value for c in at.code if c.language == "diff")
    assert f"+{NEW_FIX.strip()}" in diff and "--- Beta: Clean up low disk space" in diff
