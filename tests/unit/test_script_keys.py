"""PowerShell and shell scripts are matched by name like remediations (families.py scope "name"): two
scripts of a tenant never meet in one Compare cell, and schema version 10 moves the keys a file already
holds (open and closed versions) under the script's name, so the next sync changes nothing."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import duckdb
import polars as pl

from tenantpilot.flatten import flatten_policy
from tenantpilot.flatten.schema import NO_SETTINGS
from tenantpilot.store import Store
from tenantpilot.sync.snapshot import build_frames

TID = "5c5c5c5c-1111-4222-8333-444444444444"


def _script(name: str, body: str, odata: str = "deviceManagementScript") -> dict:
    return {"@odata.type": f"#microsoft.graph.{odata}", "id": f"id-{name}", "displayName": name,
            "fileName": f"{name}.ps1", "runAsAccount": "system",
            "scriptContent": base64.b64encode(body.encode()).decode()}


SCRIPTS = [("script", _script("Rename device", "Rename-Computer x\n")),
           ("script", _script("Set time zone", "Set-TimeZone UTC\n")),
           ("script", {"@odata.type": "#microsoft.graph.deviceShellScript", "id": "id-empty", "displayName": "Empty"})]


def test_two_scripts_of_a_tenant_are_two_settings_not_one_conflict():
    rows = [r for _, raw in SCRIPTS[:2] for r in flatten_policy(raw, "script")]
    keys = {r["setting_key"] for r in rows}
    assert {"[Rename device]/scriptContent", "[Set time zone]/scriptContent"} <= keys
    assert len(keys) == len(rows)  # Compare matches by key: each script's body is its own row


def _write(store: Store, frames, tenant: str = TID) -> int:
    run_id, created = store.create_run_unless_active(tenant)
    assert created
    store.start_run(run_id)
    store.write_snapshot(run_id, tenant, policies=frames.policies, settings=frames.settings,
                         assignments=frames.assignments, status="succeeded", request_count=1)
    return run_id


def _bare(frames):
    """The rows as version 9 wrote them: script keys without the name prefix."""
    settings = frames.settings.with_columns(pl.col("setting_key").str.replace(r"^\[[^\]]*\]/", ""))
    return type(frames)(policies=frames.policies, settings=settings, assignments=frames.assignments)


def test_version_10_moves_stored_script_keys_under_the_name_and_the_next_sync_changes_nothing(tmp_path: Path):
    path = tmp_path / "old.duckdb"
    store = Store(path)
    store.add_tenant(TID, "Scripts")
    first = build_frames(SCRIPTS)
    changed = [(f, {**raw, "scriptContent": base64.b64encode(b"Set-TimeZone CET\n").decode()})
               if raw.get("displayName") == "Set time zone" else (f, raw) for f, raw in SCRIPTS]
    _write(store, _bare(first))
    _write(store, _bare(build_frames(changed)))  # one closed version: the old time-zone script
    with duckdb.connect(str(path)) as con:
        con.execute("UPDATE meta SET value = '9' WHERE key = 'schema_version'")
        con.execute("CHECKPOINT")
    path = Path(shutil.copy(path, tmp_path / "v9.duckdb"))  # a file this process has not opened yet

    store = Store(path)  # opening the older file runs step 10
    current = store.current_settings([TID])
    keys = set(current["setting_key"])
    assert "[Rename device]/scriptContent" in keys and "[Set time zone]/runAsAccount" in keys
    # a script without settings keeps its one bare row, as the flattener writes it
    assert NO_SETTINGS in keys and all(k.startswith("[") for k in keys - {NO_SETTINGS})
    with duckdb.connect(str(path), read_only=True) as con:
        closed = {k for (k,) in con.execute("SELECT setting_key FROM setting_keys WHERE policy_type = 'script'")
                  .fetchall()}
    assert closed == {"[Set time zone]/scriptContent"}, closed
    # the next sync with the same scripts (flattened by today's code) writes no change
    again = _write(store, build_frames(changed))
    runs = store.runs(TID, statuses=["succeeded"])
    assert runs["run_id"][0] == again
    bases = store.history_bases(since_run=again - 1, tenant_ids=[TID])
    old, new = store.changed_rows(bases)
    assert old.height == 0 and new.height == 0, (old, new)
