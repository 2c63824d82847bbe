"""The reuse rule (tenantpilot/sync/reuse.py), table-driven: a policy keeps its rows unread only when every
condition holds; each row below breaks one."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import polars as pl
import pytest

from tenantpilot.app.labels import reuse_cell, reuse_line
from tenantpilot.graph.audit import EVENT_SCHEMA
from tenantpilot.graph.policy_types import POLICY_TYPES
from tenantpilot.sync.reuse import READ_IN_FULL, Basis, RunFacts, full_read_reason, may_reuse, named_ids, rule

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=timezone.utc)
ITEM = {"id": "p1", "displayName": "Baseline", "lastModifiedDateTime": "2026-12-01T08:00:00Z",
        "assignments": [{"id": "a1", "target": {"groupId": "g1"}}]}
STORED = json.dumps({**ITEM, "settings": [{"id": "0"}], "@odata.type": "#x"})  # follow-ups merged in
GOOD = {"previous_status": "succeeded", "audit_complete": True, "last_full_read": NOW - timedelta(days=2),
        "full_read_days": 7, "now": NOW}


def _run(**change: Any) -> RunFacts:
    return RunFacts(**{**GOOD, **change})


CASES = [
    # (why, run changes, has follow-ups, named in audit, list entry, stored JSON, reused)
    ("every condition holds", {}, True, False, ITEM, STORED, True),
    ("the previous run was partial", {"previous_status": "partial"}, True, False, ITEM, STORED, False),
    ("the first sync", {"previous_status": None}, True, False, ITEM, STORED, False),
    ("the audit read was not complete", {"audit_complete": False}, True, False, ITEM, STORED, False),
    ("the last full read is too old", {"last_full_read": NOW - timedelta(days=7)}, True, False, ITEM, STORED, False),
    ("never read in full", {"last_full_read": None}, True, False, ITEM, STORED, False),
    ("full reads always (0 days)", {"full_read_days": 0}, True, False, ITEM, STORED, False),
    ("an audit event names it", {}, True, True, ITEM, STORED, False),
    ("its type has no follow-ups", {}, False, False, ITEM, STORED, False),
    ("new since the last run (nothing stored)", {}, True, False, ITEM, None, False),
    ("its list entry changed", {}, True, False, {**ITEM, "lastModifiedDateTime": "2026-12-06T08:00:00Z"},
     STORED, False),
    ("its list entry has a key the stored one lacks", {}, True, False, {**ITEM, "version": 2}, STORED, False),
    ("a secret in the list entry (stored masked)", {}, True, False, {**ITEM, "wiFiPreSharedKey": "hunter2"},
     json.dumps({**ITEM, "wiFiPreSharedKey": "********"}), False),
    ("stored JSON unreadable", {}, True, False, ITEM, "{not json", False),
]


@pytest.mark.parametrize("why, run, follow_ups, named, item, stored, expected", CASES, ids=[c[0] for c in CASES])
def test_a_policy_is_reused_only_when_every_condition_holds(why: str, run: dict[str, Any], follow_ups: bool,
                                                             named: bool, item: dict[str, Any], stored: str | None,
                                                             expected: bool) -> None:
    assert may_reuse(_run(**run), has_follow_ups=follow_ups, named_in_audit=named, item=item,
                     stored_raw_json=stored) is expected


def test_the_run_level_reason_is_said() -> None:
    assert full_read_reason(_run()) is None
    assert "audit events" in (full_read_reason(_run(audit_complete=False)) or "")
    assert "7 days" in (full_read_reason(_run(last_full_read=NOW - timedelta(days=8))) or "")


def _events(rows: list[tuple[datetime, list[str]]]) -> pl.DataFrame:
    base = {k: None for k in EVENT_SCHEMA}
    return pl.DataFrame([{**base, "event_id": str(i), "activity_time": t, "resource_ids": ids}
                         for i, (t, ids) in enumerate(rows)], schema=EVENT_SCHEMA)


def test_events_name_policies_from_the_window_start_on() -> None:
    start = NOW - timedelta(days=1)
    events = _events([(start - timedelta(seconds=1), ["old"]), (start, ["p1", "p2"]), (NOW, ["p3"])])
    assert named_ids(events, start) == {"p1", "p2", "p3"}
    assert named_ids(events, None) == {"old", "p1", "p2", "p3"}
    from zoneinfo import ZoneInfo  # a start read from the store says Etc/UTC

    assert named_ids(events, start.astimezone(ZoneInfo("Etc/UTC"))) == {"p1", "p2", "p3"}


def test_the_predicate_uses_the_overlap_and_the_stored_entries() -> None:
    catalog = next(t for t in POLICY_TYPES if t.key == "configurationPolicies")
    basis = Basis("succeeded", NOW - timedelta(days=1), NOW - timedelta(days=1), 7, 24.0, {"p1": STORED, "p2": STORED})
    assert basis.audit_since == NOW - timedelta(days=2)
    late = _events([(NOW - timedelta(days=1, hours=12), ["p2"])])  # before the previous start, inside the overlap
    predicate, why = rule(basis, late, True, NOW)
    assert why is None and predicate is not None
    assert predicate(catalog, ITEM) is True
    assert predicate(catalog, {**ITEM, "id": "p2"}) is False  # named by a late event
    assert predicate(catalog, {**ITEM, "id": "p3"}) is False  # new: nothing stored
    for key in READ_IN_FULL:  # follow-ups that are objects of their own: their events name the child
        parent = next(t for t in POLICY_TYPES if t.key == key)
        assert parent.follow_ups and predicate(parent, ITEM) is False
    none, why = rule(basis, late, False, NOW)
    assert none is None and why
    assert rule(None, late, True, NOW) == (None, None)  # a fetching consumer: always a full read


def test_the_one_sentence() -> None:
    run = {"reused_policies": 31, "policy_count": 40, "reused_since": datetime(2026, 12, 5, 2, 0, tzinfo=timezone.utc),
           "full_read_at": datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)}
    assert reuse_line(run, 7) == ("31 of 40 policies unchanged in the audit log since 2026-12-05 02:00 UTC, not "
                                  "re-read; read in full every 7 days (last 2026-12-01 02:00 UTC)")
    assert reuse_line({**run, "reused_policies": 0}, 7) is None
    assert reuse_line({**run, "reused_policies": None}, 7) is None
    assert reuse_cell(run) == "31 of 40 unchanged" and reuse_cell({**run, "reused_policies": 0}) is None


def test_the_sync_page_says_it_on_the_card_and_in_the_history(db) -> None:
    """A run that reused policies, written as a sync writes it: the Sync page's history row carries the figure
    (reuse_cell; the column's help says the rest) and its card the one sentence (the CLI prints the same function's line: tests/e2e/test_reuse_e2e.py)."""
    from apptest import CONTOSO, app, find_table, snapshot_frames, texts, write_snapshot

    from tenantpilot.sync.reuse import Reused

    db.add_tenant(CONTOSO, "Contoso")
    policies = {"Firewall": {"fw_enable": "true"}, "BitLocker": {"bl_method": "XTS-AES 256"}}
    write_snapshot(db, CONTOSO, policies)
    run_id, _ = db.create_run_unless_active(CONTOSO)
    db.start_run(run_id)
    p, s, a = snapshot_frames({"Firewall": policies["Firewall"]}, CONTOSO)
    since, full = datetime(2026, 12, 6, 2, 0, tzinfo=timezone.utc), datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)
    db.write_snapshot(run_id, CONTOSO, policies=p, settings=s, assignments=a, status="succeeded", request_count=4,
                      reused=Reused((("configurationPolicies", f"{CONTOSO[:8]}-p1"),), since, full))
    sentence = ("1 of 2 policies unchanged in the audit log since 2026-12-06 02:00 UTC, not re-read; read in full "
                "every 7 days (last 2026-12-01 02:00 UTC)")
    at = app("sync")
    table = find_table(at, "reuse")
    assert table["reuse"].tolist()[0] == "1 of 2 unchanged" and table["reuse"].isna().tolist() == [False, True]
    at.session_state["sync_watch"] = [run_id]
    assert sentence in texts(at.run())
