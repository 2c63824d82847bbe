"""Fetching consumers, the pure parts: the role setting, leases in progress beats, and the writer's checks of
what a fetcher hands over (meta.json, file names, ready-list entries). The end-to-end path with real consumers,
Redis and DuckDB is tests/e2e/test_fetching_consumer.py."""

from __future__ import annotations

import json
from typing import Any

import polars as pl
import pytest

from tenantpilot.config import ConfigError, load_settings
from tenantpilot.graph.policy_types import POLICY_TYPES
from tenantpilot.ops import progress, relay
from tenantpilot.store import TypeOutcome
from tenantpilot.sync import handoff

TENANT = "11111111-1111-4111-8111-111111111111"
OTHER = "22222222-2222-4222-8222-222222222222"


@pytest.mark.parametrize(("values", "role", "error"), [
    ({}, "all", None),
    ({"TENANTPILOT_ROLE": "FETCH", "REDIS_URL": "redis://127.0.0.1:6379/0"}, "fetch", None),
    ({"TENANTPILOT_ROLE": "fetch"}, None, "TENANTPILOT_ROLE=fetch needs REDIS_URL"),
    ({"TENANTPILOT_ROLE": "writer"}, None, "TENANTPILOT_ROLE='writer' is not a role"),
    ({"TENANTPILOT_HANDOFF_MAX_MB": "0"}, None, "TENANTPILOT_HANDOFF_MAX_MB='0' must be greater than 0"),
])
def test_the_role_setting(values: dict[str, str], role: str | None, error: str | None) -> None:
    if error:
        with pytest.raises(ConfigError, match=error):
            load_settings(values, dotenv=False)
    else:
        assert load_settings(values, dotenv=False).role == role


@pytest.mark.parametrize(("beat", "stale"), [
    ({"ts": 0, "lease_until": 1_100}, False),  # handed between consumers: alive while the lease runs
    ({"ts": 0, "lease_until": 999}, True),
    ({"ts": 995, "pid": None, "host": progress.HOST}, False),  # an ordinary beat: its age counts
    ({"ts": 900}, True),
    (None, True),
])
def test_a_lease_keeps_a_handed_run_alive_until_it_ends(beat: dict | None, stale: bool) -> None:
    assert progress.is_stale(beat, 30, now=1_000) is stale


def outcome(key: str = POLICY_TYPES[0].key, read: bool = True) -> dict[str, Any]:
    return {"key": key, "family": "f", "label": "l", "read": read, "reason": "", "message": ""}


def meta(**change: Any) -> bytes:
    good = {"run_id": 7, "tenant_id": TENANT, "definitions": {"d1": {"id": "d1"}}, "not_in_graph": ["x"],
            "names": {"group": {"g": "Group"}}, "outcomes": [outcome()], "requests": 12, "warnings": [],
            "type_of": {"p1": POLICY_TYPES[0].key}}
    return json.dumps({**good, **change}).encode()


def test_a_good_meta_is_read_as_the_writer_stores_it() -> None:
    parsed = handoff.parse_meta(meta(), run_id=7, tenant_id=TENANT)
    assert parsed.outcomes == [TypeOutcome(POLICY_TYPES[0].key, "f", "l", True)]
    assert parsed.names == {"group": {"g": "Group"}} and parsed.requests == 12
    assert handoff.parse_meta(parsed.to_json(), run_id=7, tenant_id=TENANT) == parsed  # the fetcher's writing


@pytest.mark.parametrize(("data", "error"), [
    (b"{", "is not JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "is not JSON"),
    (json.dumps({"run_id": 7}).encode(), "exactly the fields"),
    (meta(run_id=8), "another run or tenant"),
    (meta(tenant_id=OTHER), "another run or tenant"),
    (meta(definitions=["d1"]), "definitions that are not a map"),
    (meta(names={"printer": {"u": "x"}}), "names of another kind"),
    (meta(names={"group": {"g": 1}}), "group names that is not a map of text to text"),
    (meta(outcomes=[]), "no policy-type outcomes"),
    (meta(outcomes=[outcome("notAType")]), "names a policy type this version does not read"),
    (meta(outcomes=[{**outcome(), "read": "yes"}]), "names a policy type"),
    (meta(outcomes=[{**outcome(), "extra": 1}]), "of another shape"),
    (meta(outcomes=[outcome(read=False)]), "says no policy type was read"),
    (meta(type_of={"p1": "notAType"}), "maps policies to a policy type"),
    (meta(requests=-1), "request count"),
    (meta(requests=True), "request count"),
    (meta(warnings="text"), "warnings that is not a list"),
    (b" " * (handoff.MAX_META_BYTES + 1), "more than the"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_a_meta_of_another_shape_is_refused_saying_what(data: bytes, error: str) -> None:
    with pytest.raises(handoff.HandoffError, match=error):
        handoff.parse_meta(data, run_id=7, tenant_id=TENANT)


@pytest.mark.parametrize(("name", "allowed"), [
    ("meta.json", True), ("audit-00000.parquet", True), ("settings-00003.parquet", True),
    ("policies-00000.parquet", True), ("assignments-12345.parquet", True),
    ("settings-3.parquet", False), ("../settings-00000.parquet", False), ("settings-00000.parquet/x", False),
    ("users-00000.parquet", False), ("audit-00001.parquet", False), (".meta.json", False), ("", False),
])
def test_only_the_files_a_fetcher_writes_are_allowed(name: str, allowed: bool) -> None:
    assert handoff.allowed_name(name) is allowed


def test_check_files_refuses_a_part_of_another_table_shape(tmp_path) -> None:
    (tmp_path / handoff.META).write_bytes(meta())
    pl.DataFrame({"policy_id": ["p"]}).write_parquet(tmp_path / "settings-00000.parquet")
    with pytest.raises(handoff.HandoffError, match="settings-00000.parquet is not a Parquet file with the columns"):
        handoff.check_files(tmp_path, [handoff.META, "settings-00000.parquet"])
    with pytest.raises(handoff.HandoffError, match="meta.json is missing"):
        handoff.check_files(tmp_path, ["settings-00000.parquet"])


@pytest.mark.parametrize(("raw", "error"), [
    (b"x" * (relay.MAX_ITEM_BYTES + 1), "larger than"),
    (b"{", "not JSON"),
    (b'{"run_id": "7", "token": "t", "outcome": "parts", "blobs": []}', "not a handed-over run"),
    (b'{"run_id": 7, "token": "t", "outcome": "done"}', "not a handed-over run"),
    (b'{"run_id": 7, "token": "t", "outcome": "parts", "blobs": [{"name": "a", "size": -1, "chunks": 0}]}',
     "another shape"),
    (b'{"run_id": 7, "token": "t", "outcome": "parts", "blobs": [{"name": "a", "size": 1, "chunks": 1},'
     b' {"name": "a", "size": 1, "chunks": 1}]}', "a file twice"),
])
def test_a_ready_entry_of_another_shape_is_refused(raw: bytes, error: str) -> None:
    with pytest.raises(relay.RelayError, match=error):
        relay.parse_item(raw)


def test_a_ready_entry_lists_its_files() -> None:
    item = relay.parse_item(b'{"run_id": 7, "token": "t", "outcome": "parts", '
                            b'"blobs": [{"name": "meta.json", "size": 10, "chunks": 1}]}')
    assert item["blobs"] == [relay.Blob("meta.json", 10, 1)]


def test_a_long_failure_cause_is_clipped() -> None:
    assert len(handoff.clip_error("x" * 10_000)) == handoff.MAX_ERROR_CHARS + 1
    assert handoff.clip_error(None) == "the fetching consumer gave no cause"
