"""Hostile inputs (issue 9): what others wrote never acts, and no secret is kept in clear.

Each table is a list of rows, one input each, with its expected outcome: *masked*, *escaped*,
*refused* with a message, or *skipped* with a reason. Real files in tmp folders, real zip
archives, a real DuckDB file; nothing of the code under test is patched. The real-process rows
(run.sh, file modes of the consumer, Streamlit's Host check, a real sync after an import) are in
tests/e2e/test_hostile_e2e.py; the real browser in tests/e2e/test_browser.py.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import resource
import signal
import stat
import struct
import tomllib
import zipfile
import zlib
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from apptest import APP, app, explore_table, healthy, shown, write_snapshot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphsim.authority import JWT_BEARER, TokenAuthority
from tenantpilot import logs
from tenantpilot.analysis import compare, explore, export
from tenantpilot.app import escaping, messages
from tenantpilot.config import ConfigError, launch_values, load_settings, private_files
from tenantpilot.flatten import secrets
from tenantpilot.flatten.constants import MAX_DEPTH
from tenantpilot.flatten.files import ExportReader
from tenantpilot.flatten.schema import SECRET_MASK
from tenantpilot.store import SCHEMA_VERSION, Store
from tenantpilot.sync import uploads
from tenantpilot.sync.baseline import ImportFailed, import_baseline
from tenantpilot.sync.snapshot import build_frames
from tests.legacy_schema import V5_DDL as DDL

ROOT = Path(APP).parent
SECRET = "hunter2-Secr3t-do-not-keep"
PIN = 73915284
CATALOG = "#microsoft.graph.deviceManagementConfigurationPolicy"
SECRET_TYPE = "#microsoft.graph.deviceManagementConfigurationSecretSettingValue"
TENANT = "11111111-1111-4111-8111-111111111111"


def simple(def_id: str, value: dict) -> dict:
    return {"settingInstance": {"@odata.type": "#microsoft.graph.deviceManagementConfigurationSimpleSettingInstance",
                                "settingDefinitionId": def_id, "simpleSettingValue": value}}


# --- 1. one secret rule: masked in rows, stored raw JSON, database, CSV, Parquet, logs -------------
# (case, family, policy without id/name, the secret as it would appear in clear)
SECRETS: list[tuple[str, str, dict, str]] = [
    ("Wi-Fi key named wiFiPreSharedKey", "deviceConfiguration",
     {"@odata.type": "#microsoft.graph.iosWiFiConfiguration", "ssid": "corp", "wiFiPreSharedKey": SECRET}, SECRET),
    ("proxyServerPassword inside an object", "deviceConfiguration",
     {"@odata.type": "#microsoft.graph.windows10VpnConfiguration",
      "proxyServer": {"address": "proxy.contoso.com", "proxyServerPassword": SECRET}}, SECRET),
    ("pre-shared keys in a list of networks", "deviceConfiguration",
     {"@odata.type": "#microsoft.graph.windowsWifiConfiguration",
      "networks": [{"ssid": "a", "preSharedKey": SECRET}, {"ssid": "b", "preSharedKey": SECRET + "-2"}]}, SECRET),
    ("OMA setting isEncrypted", "deviceConfiguration",
     {"@odata.type": "#microsoft.graph.windows10CustomConfiguration", "omaSettings": [
         {"@odata.type": "#microsoft.graph.omaSettingString", "omaUri": "./Vendor/MSFT/x", "isEncrypted": True,
          "value": SECRET}]}, SECRET),
    ("OMA setting with a secretReferenceValueId", "deviceConfiguration",
     {"@odata.type": "#microsoft.graph.windows10CustomConfiguration", "omaSettings": [
         {"omaUri": "./Vendor/MSFT/y", "secretReferenceValueId": "ref-1", "value": SECRET}]}, SECRET),
    ("OMA setting whose URI names a password", "deviceConfiguration",
     {"@odata.type": "#microsoft.graph.windows10CustomConfiguration", "omaSettings": [
         {"omaUri": "./Device/Vendor/MSFT/Accounts/Users/admin/Password", "value": SECRET}]}, SECRET),
    ("catalog secret setting value (encryptedValueToken)", "settingsCatalog",
     {"@odata.type": CATALOG, "settings": [simple("vendor_msft_wifi_key", {
         "@odata.type": SECRET_TYPE, "value": SECRET, "valueState": "encryptedValueToken"})]}, SECRET),
    ("catalog notEncrypted value without @odata.type (IntuneCD)", "settingsCatalog",
     {"settings": [simple("vendor_msft_vpn_secret", {"value": SECRET, "valueState": "notEncrypted"})],
      "technologies": "mdm"}, SECRET),
    ("catalog secret inside a simple collection", "settingsCatalog",
     {"@odata.type": CATALOG, "settings": [{"settingInstance": {
         "settingDefinitionId": "vendor_msft_keys",
         "simpleSettingCollectionValue": [{"@odata.type": SECRET_TYPE, "value": SECRET}]}}]}, SECRET),
    ("a PIN as a number", "deviceConfiguration",
     {"@odata.type": "#microsoft.graph.androidDeviceOwnerGeneralDeviceConfiguration", "pin": PIN}, str(PIN)),
    ("kiosk exit code", "deviceConfiguration",
     {"@odata.type": "#microsoft.graph.androidDeviceOwnerGeneralDeviceConfiguration", "kioskModeExitCode": SECRET},
     SECRET),
    ("edition upgrade product key", "deviceConfiguration",
     {"@odata.type": "#microsoft.graph.editionUpgradeConfiguration", "productKey": SECRET}, SECRET),
    ("certificatePassword nested two levels", "deviceConfiguration",
     {"@odata.type": "#microsoft.graph.windows10VpnConfiguration",
      "eap": {"certificate": {"certificatePassword": SECRET}}}, SECRET),
    ("object Graph marks isEncrypted inside a property", "deviceConfiguration",
     {"@odata.type": "#microsoft.graph.windows10GeneralConfiguration",
      "customSetting": {"isEncrypted": True, "value": SECRET}}, SECRET),
    ("app configuration pair {name: password, value}", "appProtection",
     {"@odata.type": "#microsoft.graph.targetedManagedAppConfiguration",
      "customSettings": [{"name": "password", "value": SECRET}, {"name": "server", "value": "mail.contoso.com"}]},
     SECRET),
    ("intent setting whose definition names a password", "endpointSecurityIntent",
     {"@odata.type": "#microsoft.graph.deviceManagementIntent", "templateId": "t-1", "settings": [
         {"definitionId": "deviceConfiguration--windows10VpnConfiguration_wifiPassword",
          "valueJson": json.dumps(SECRET)}]}, SECRET),
    ("name in upper case", "deviceConfiguration",
     {"@odata.type": "#microsoft.graph.windows10VpnConfiguration", "PROXYSERVERPASSWORD": SECRET}, SECRET),
]


def policy_of(family: str, body: dict, n: int = 1) -> dict:
    return {"id": f"p-{n}", "displayName": f"Policy {n}", **body}


def snapshot_into(store: Store, tenant: str, policies: list[tuple[str, dict]], definitions=None) -> int:
    frames = build_frames(policies, definitions)
    run_id, _ = store.create_run_unless_active(tenant)
    store.start_run(run_id)
    store.write_snapshot(run_id, tenant, policies=frames.policies, settings=frames.settings,
                         assignments=frames.assignments, status="succeeded", request_count=0)
    return run_id


def log_line(**fields: Any) -> str:
    """What the worker writes to its log files for one event with these fields."""
    record = logging.LogRecord("tenantpilot.test", logging.INFO, __file__, 1, "event", None, None)
    record.fields = fields
    return logs.JsonFormatter().format(record)


@pytest.mark.parametrize("case, family, body, secret", SECRETS, ids=[row[0] for row in SECRETS])
def test_a_secret_is_masked_in_rows_raw_json_database_exports_and_logs(case, family, body, secret, tmp_path):
    raw = policy_of(family, body)
    frames = build_frames([(family, raw)])
    rows = frames.settings
    shown_text = json.dumps(rows.select("value", "raw_value", "compare_value").to_dicts())
    assert secret not in shown_text and rows["is_secret"].any(), rows.to_dicts()
    assert set(rows.filter(pl.col("is_secret"))["value"]) == {SECRET_MASK}
    stored = frames.policies["raw_json"][0]
    assert secret not in stored and SECRET_MASK in stored, stored
    # the database, and everything read back out of it: CSV, Parquet
    store = Store(tmp_path / "s.duckdb")
    store.add_tenant(TENANT, "Contoso")
    run_id = snapshot_into(store, TENANT, [(family, raw)])
    assert secret not in (store.policy_raw(run_id, "p-1") or "")
    current = explore.export_columns(store.current_settings([TENANT]))
    assert secret.encode() not in export.to_csv_bytes(current)
    assert secret not in json.dumps(pl.read_parquet(io.BytesIO(export.to_parquet_bytes(current))).to_dicts(), default=str)
    # the log line of an event that carries the policy
    assert secret not in log_line(policy=raw)


# the same names and markers where they hold nothing secret: nothing is masked
NOT_SECRETS: list[tuple[str, dict]] = [
    ("booleans and numbers named after passwords", {"passwordRequired": True, "passwordMinimumLength": 8,
                                                    "workProfileRequirePassword": False}),
    ("an empty credential (shown empty)", {"preSharedKey": ""}),
    ("a key that is a map key, not a credential", {"registryKey": "HKLM\\Software\\Contoso", "keySize": 2048}),
    ("a name that only contains 'pin'", {"spin": "fast", "pinLength": 6}),
]


@pytest.mark.parametrize("case, body", NOT_SECRETS, ids=[row[0] for row in NOT_SECRETS])
def test_what_only_looks_like_a_secret_is_kept(case, body):
    raw = policy_of("deviceConfiguration", {"@odata.type": "#microsoft.graph.windows10GeneralConfiguration", **body})
    frames = build_frames([("deviceConfiguration", raw)])
    assert not frames.settings["is_secret"].any()
    assert json.loads(frames.policies["raw_json"][0]) == raw


_names = st.sampled_from(["name", "key", "definitionId", "omaUri", "value", "valueJson", "isEncrypted", "valueState",
                          "secretReferenceValueId", "@odata.type", "password", "wiFiPreSharedKey", "PIN", "spin",
                          "passwordRequired", "éPassword", 'pass"word', "productKey", "keySize"])
_texts = st.one_of(st.sampled_from(["password", "x_wifiPassword", "./a/Password/", "pin ", "a\"password", SECRET_TYPE,
                                    "notEncrypted", ""]), st.text(max_size=6))
_json = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), _texts),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.one_of(_names, st.text(max_size=5)),
                                                                                 inner, max_size=4),
                     max_leaves=25)


@settings(max_examples=1500, suppress_health_check=list(HealthCheck), deadline=None)
@given(_json)
def test_the_text_scan_finds_every_document_mask_changes_in_python_and_in_duckdb(doc):
    """might_hold_secrets may say "maybe" too often, never too rarely (the fast path and the
    migration's SQL filter rely on it)."""
    if secrets.mask(doc) == doc:
        return
    for text in (json.dumps(doc), json.dumps(doc, separators=(",", ":")), json.dumps(doc, ensure_ascii=False)):
        assert secrets.might_hold_secrets(text), text
        hit = _DUCKDB.execute("SELECT regexp_matches(?, ?)", [text, secrets.SECRET_TEXT_PATTERN]).fetchall()
        assert hit == [(True,)], text


_DUCKDB = duckdb.connect()  # RE2, as the migration's filter uses it


# --- 2. a migration masks what existing databases hold ----------------------------------------------
def test_migration_masks_raw_json_of_an_existing_database(tmp_path):
    """A database written before the one secret rule: raw JSON with a Wi-Fi key and a proxy password
    in clear, and an imported (poisoned) definition in the shared cache. The new Store masks the one
    and drops the other, leaves clean raw JSON byte for byte, and records schema version 3."""
    path = tmp_path / "old.duckdb"
    leaky = {"id": "p-1", "displayName": "Wi-Fi", "@odata.type": "#microsoft.graph.iosWiFiConfiguration",
             "ssid": "corp", "wiFiPreSharedKey": SECRET, "proxy": {"proxyServerPassword": SECRET + "-proxy"}}
    clean = '{"id":"p-2","displayName":"Clean","passwordRequired":true}'
    con = duckdb.connect(str(path))  # the schema as version 1 wrote it
    con.execute(DDL)
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.execute("INSERT INTO tenants VALUES (?, 'Contoso', 'tenant', now())", [TENANT])
    con.execute("INSERT INTO sync_runs (run_id, tenant_id, status, queued_at, finished_at, source) "
                "VALUES (1, ?, 'succeeded', now(), now(), 'graph')", [TENANT])
    con.execute("INSERT INTO policies (run_id, tenant_id, policy_id, policy_name, policy_type, odata_type, platform, raw_json) VALUES (1, ?, 'p-1', 'Wi-Fi', 'deviceConfiguration', '', 'iOS', ?), "
                "(1, ?, 'p-2', 'Clean', 'deviceConfiguration', '', 'windows', ?)",
                [TENANT, json.dumps(leaky), TENANT, clean])
    con.execute("INSERT INTO setting_definitions VALUES ('d1', ?, now())",
                [json.dumps({"id": "d1", "displayName": "[Sign in again](https://evil.example/phish)"})])
    con.close()

    store = Store(path)
    masked = store.policy_raw(1, "p-1")
    assert SECRET not in masked and json.loads(masked)["wiFiPreSharedKey"] == SECRET_MASK
    assert json.loads(masked)["proxy"]["proxyServerPassword"] == SECRET_MASK and json.loads(masked)["ssid"] == "corp"
    assert store.policy_raw(1, "p-2") == clean
    assert store.definition_ids() == set()
    with store.connect() as con:
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    # 8: alignments dropped; 9: groups, activity; 10: scripts keyed by name; 11: alert channels; 12: accepted_by;
    # 13: the alignment memo Fleet reads; 14: sync_runs.sent_at (a run queued before it had its message sent
    # when it was queued); 15: sync_runs.reused_policies (a run before it read its tenant in full: NULL)
    assert SCHEMA_VERSION == 15
    assert store.get_run(1)["sent_at"] is not None
    assert store.get_run(1)["reused_policies"] is None


# --- 3. imports never write what syncs trust ------------------------------------------------------
DEF_GRAPH = "device_vendor_msft_policy_config_defender_allowrealtimemonitoring"
DEF_NEW = "device_vendor_msft_policy_config_defender_puaprotection"
PHISH = "[Sign in again](https://evil.example/phish)"


def catalog_policy(pid: str, inline: bool) -> dict:
    settings_ = []
    for def_id in (DEF_GRAPH, DEF_NEW):
        item = {"id": def_id, "settingInstance": {"settingDefinitionId": def_id,
                                                  "choiceSettingValue": {"value": f"{def_id}_1", "children": []}}}
        if inline:
            item["settingDefinitions"] = [{"id": def_id, "displayName": f"{PHISH} {def_id[-6:]}",
                                           "description": "Your session expired. " + PHISH,
                                           "options": [{"itemId": f"{def_id}_1", "displayName": PHISH}]}]
        settings_.append(item)
    return {"id": pid, "name": f"Defender {pid}", "@odata.type": CATALOG, "platforms": "windows10",
            "technologies": "mdm", "settings": settings_}


def test_an_import_cannot_change_a_synced_tenants_setting_names(tmp_path):
    store = Store(tmp_path / "d.duckdb")
    graph = {DEF_GRAPH: {"id": DEF_GRAPH, "displayName": "Turn on real-time protection",
                         "options": [{"itemId": f"{DEF_GRAPH}_1", "displayName": "Allowed"}]}}
    store.save_definitions(graph)  # what a sync of a real tenant cached from Graph
    store.add_tenant(TENANT, "Contoso")
    snapshot_into(store, TENANT, [("settingsCatalog", catalog_policy("t-1", inline=False))], store.definitions())
    before = store.current_settings([TENANT]).select("setting_key", "setting_name", "value", "description")

    export_dir = tmp_path / "export"
    export_dir.mkdir()
    (export_dir / "defender.json").write_text(json.dumps(catalog_policy("b-1", inline=True)))
    result = import_baseline(store, export_dir, "Poisoned")

    assert store.definitions() == graph  # the shared cache is untouched
    assert store.current_settings([TENANT]).select(before.columns).equals(before)
    # the next sync of the tenant names its settings from the cache: Graph's names, never the file's
    snapshot_into(store, TENANT, [("settingsCatalog", catalog_policy("t-1", inline=False))],
                  store.definitions([DEF_GRAPH, DEF_NEW]))
    synced = store.current_settings([TENANT])
    assert PHISH not in json.dumps(synced.select("setting_name", "value", "description").to_dicts())
    assert set(synced["setting_name"]) == {"Turn on real-time protection", "puaprotection"}
    # the file's definitions stay with the baseline, behind Graph's
    base = {r["setting_id"]: r for r in store.current_settings([result.tenant_id]).iter_rows(named=True)}
    assert base[DEF_GRAPH]["setting_name"] == "Turn on real-time protection" and base[DEF_GRAPH]["value"] == "Allowed"
    assert base[DEF_NEW]["setting_name"].startswith(PHISH)


# --- 4. text from tenants and files is inert ---------------------------------------------------------
MARKDOWN_NAME = "[Sign in again](https://evil.example/phish) ![p](http://127.0.0.1:9/t.png)"
# (case, text, what the screen must show: the text itself, with control characters revealed)
HOSTILE_TEXT: list[tuple[str, str, str]] = [
    ("Markdown link and remote image", MARKDOWN_NAME, MARKDOWN_NAME),
    ("raw HTML", '<img src=x onerror="alert(1)"><a href="https://evil.example">x</a>',
     '<img src=x onerror="alert(1)"><a href="https://evil.example">x</a>'),
    ("Streamlit colour directive", ":red[URGENT: re-enter your password]", ":red[URGENT: re-enter your password]"),
    ("LaTeX", "$\\href{https://evil.example}{click}$", "$\\href{https://evil.example}{click}$"),
    ("bare URL and www (autolinks)", "see https://evil.example or www.evil.example", "see https://evil.example or www.evil.example"),
    ("e-mail address (autolink)", "write to phish@evil.example", "write to phish@evil.example"),
    ("emoji and icon shortcodes", ":warning: :material/lock: act now", ":warning: :material/lock: act now"),
    ("heading and rule on new lines", "ok\n# BIG\n---\n> quote", "ok\n# BIG\n---\n> quote"),
    ("code span and emphasis", "`code` **bold** _it_ ~~gone~~", "`code` **bold** _it_ ~~gone~~"),
    ("bidi override (reads payment.exe)", "exe.\u202etnemyap", "exe.[U+202E]tnemyap"),
    ("zero-width space and BOM", "pay\u200bpal\ufeff", "pay[U+200B]pal[U+FEFF]"),
    ("isolates and a line separator", "a\u2066b\u2069c\u2028d", "a[U+2066]b[U+2069]c[U+2028]d"),
    ("control characters", "bell\x07 escape\x1b[31m", "bell[U+0007] escape[U+001B][31m"),
    ("Hangul filler (looks empty)", "\u3164", "[U+3164]"),
]


@pytest.mark.parametrize("case, text, screen", HOSTILE_TEXT, ids=[row[0] for row in HOSTILE_TEXT])
def test_hostile_text_is_escaped_for_markdown_and_revealed_for_tables(case, text, screen):
    escaped = escaping.inert(text)
    assert shown(escaped) == screen  # CommonMark resolves each escape to the character itself
    assert not re.search(r"(?<!\\)[!-/:-@\[-`{-~]", re.sub(r"\\.", "", escaped))  # no punctuation unescaped
    # what Streamlit's Markdown then rewrites in text (GFM autolinks, emoji): nothing left to rewrite
    text_node = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", escaped)
    assert not re.search(r"https?://|www(?=\.)|[-.\w+]@[-\w]+\.|:[\w+-]+:|:material/", text_node, re.I), text_node
    assert escaping.reveal(text) == screen
    frame = escaping.inert_frame(pl.DataFrame({text: [text], "n": [1]}))
    assert frame.columns == [screen, "n"] and frame[screen].to_list() == [screen]
    assert escaping.inert_json({text: [text]}) == {screen: [screen]}


@pytest.mark.parametrize("case, text, screen", HOSTILE_TEXT, ids=[row[0] for row in HOSTILE_TEXT])
@pytest.mark.parametrize("status", ["carried", "missing"])
def test_a_hostile_tenant_name_is_inert_in_the_carried_forward_banner(case, text, screen, status):
    """The banner of Explore and Compare (st.warning: Markdown) names the tenant whose data is not
    current: the name shows as itself, never as a link, image, colour or heading. The row has the
    columns of Store.current_carried, which the banner is given."""
    carried = pl.DataFrame(
        {"tenant_id": ["t1"], "tenant": [text], "label": ["Settings catalog"], "status": [status],
         "reason": ["forbidden"], "carried_from_run": [3], "carried_from_at": [None]},
        schema_overrides={"carried_from_at": pl.Datetime("us", "UTC")})
    (line,) = messages.carried_lines(carried)
    assert shown(line).startswith(f"{screen} · Settings catalog: ")
    name = line.split(" · Settings catalog")[0]
    assert not re.search(r"(?<!\\)[!-/:-@\[-`{-~]", re.sub(r"\\.", "", name))  # no punctuation unescaped


def markdown_values(at) -> list[str]:
    """Every element value Streamlit renders as Markdown (labels included)."""
    values = [e.value for kind in ("markdown", "caption", "subheader", "title", "header", "error", "warning", "info",
                                   "success") for e in getattr(at, kind)]
    values += [e.label for e in at.expander] + [e.label for e in at.metric]
    return [str(v) for v in values]


def test_a_markdown_name_never_renders_as_markdown_on_sync_explore_and_compare(db):
    """A tenant, a baseline, a policy, a setting and its description named with Markdown: in every
    Markdown element of Sync, Explore (with the setting opened) and Compare (with the baseline) the
    name appears only escaped. (How it renders: the browser test in tests/e2e/test_browser.py.)"""
    evil, other = "22222222-2222-4222-8222-222222222222", "baseline:evil"
    db.add_tenant(evil, MARKDOWN_NAME)
    db.add_tenant(other, MARKDOWN_NAME + " base", "baseline")
    for tenant in (evil, other):
        write_snapshot(db, tenant, {MARKDOWN_NAME: {"fw_enable": "true", "bl_method": MARKDOWN_NAME}})
    with db.connect(write=True) as con:  # a setting name, description and failed run from the tenant
        con.execute("UPDATE setting_texts SET setting_name = ?, description = ? WHERE text_id IN "
                    "(SELECT text_id FROM setting_versions WHERE setting_key = 'bl_method')",
                    [MARKDOWN_NAME, MARKDOWN_NAME])
    run_id, _ = db.create_run_unless_active(evil)
    db.fail_run(run_id, f"Graph said: {MARKDOWN_NAME}")
    raw_link = re.compile(r"(?<!\\)\]\(|(?<!\\)!\[|<img|<a ")

    at = app("sync")
    values = markdown_values(at)
    # finished runs are rows of the history table (plain cells, never Markdown)
    history = next(d.value for d in at.dataframe if "run_id" in d.value.columns)
    assert history["tenant"].astype(str).str.contains("Sign in again", regex=False).any()
    assert not [v for v in values if raw_link.search(v)], values

    at.switch_page("app_pages/explore.py").run()
    at.text_input(key="ex_search").input("Sign in").run()
    grid = explore_table(at)
    at.session_state[grid.key] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    healthy(at.run())
    values = markdown_values(at)
    assert shown(at.subheader[0].value) == MARKDOWN_NAME
    assert any(MARKDOWN_NAME in shown(v) for v in values if v.startswith("Raw JSON"))
    assert not [v for v in values if raw_link.search(v)], values

    at.switch_page("app_pages/compare.py").run()
    at.multiselect(key="cmp_tenants").set_value([evil]).run()
    at.selectbox(key="cmp_baseline").set_value(other).run()
    healthy(at)
    values = markdown_values(at)
    assert any(v.startswith("Alignment with") and "Sign in again" in v for v in values), values
    assert not [v for v in values if raw_link.search(v)], values


# --- 5. bounded archives -----------------------------------------------------------------------------
def bomb_zip(name: str, size: int, *, declared: int | None = None, fill: bytes = b" ") -> bytes:
    """A real zip whose one entry inflates to `size` bytes of `fill` (`declared`: the size its headers
    claim). Built fast: one deflate block of 1 MiB after a full flush stands on its own, so the
    entry's data is that block repeated."""
    chunk = fill * (1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.flush(zlib.Z_FINISH)
    count = size >> 20
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(chunk, crc)
    packed, length, raw = len(block) * count + len(tail), declared if declared is not None else count << 20, name.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, packed, length, len(raw), 0) + raw
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, packed, length, len(raw),
                          0, 0, 0, 0, 0, 0) + raw
    data = local + block * count + tail
    return data + central + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(data), 0)


def zip_of(entries: dict[str, bytes], *, link: str | None = None, encrypted: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            if name == link:
                info.external_attr = 0o120777 << 16
            archive.writestr(info, data)
    data = bytearray(buf.getvalue())
    if encrypted:  # zipfile cannot write an encrypted entry: set the "encrypted" flag bit as a tool would
        raw = encrypted.encode()
        for signature, flags_at, name_at in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
            start = 0
            while (start := data.find(signature, start)) >= 0:
                if data[start + name_at:start + name_at + len(raw)] == raw:
                    data[start + flags_at] |= 0x1
                start += 4
    return bytes(data)


POLICY = json.dumps(policy_of("deviceConfiguration", {"@odata.type": "#microsoft.graph.windows10GeneralConfiguration",
                                                      "passwordRequired": True})).encode()

# (case, uploads, keyword arguments of write_uploads, ("refused", text the message names) or
#  ("skipped", file, text of the reason))
ARCHIVES: list[tuple[str, Any, dict, tuple[str, ...]]] = [
    ("0.9 MB zip unpacking to one 900 MB file", lambda: [("bomb.zip", bomb_zip("export/big.json", 900 << 20))], {},
     ("refused", "bomb.zip/export/big.json unpacks to 900.0 MB from 912 KB", "more than the 256.0 MB")),
    ("50 MB from 50 KB: under the per-file cap, over the ratio", lambda: [("ratio.zip", bomb_zip("r.json", 50 << 20))],
     {}, ("refused", "ratio.zip/r.json unpacks to 50.0 MB from 51 KB (1,010:1), more than the 200:1")),
    ("headers declaring 1 KB for 10 MB", lambda: [("liar.zip", bomb_zip("liar.json", 10 << 20, declared=1024))], {},
     ("skipped", "liar.zip/liar.json", "corrupt or unsupported archive entry")),
    ("entry escaping with ..", lambda: [("dots.zip", zip_of({"ok.json": POLICY, "../evil.json": POLICY}))], {},
     ("refused", "dots.zip was rejected", "'../evil.json'")),
    ("absolute entry path", lambda: [("abs.zip", zip_of({"/etc/cron.d/evil": b"* * * * * root id"}))], {},
     ("refused", "abs.zip was rejected", "'/etc/cron.d/evil'")),
    ("Windows drive path", lambda: [("drive.zip", zip_of({"C:\\Windows\\evil.json": POLICY}))], {},
     ("refused", "drive.zip was rejected")),
    ("symbolic link entry to /etc/shadow", lambda: [("link.zip", zip_of({"e/p.json": POLICY, "e/l.json": b"/etc/shadow"},
                                                                        link="e/l.json"))], {},
     ("skipped", "link.zip/e/l.json", "symbolic link in the archive: not followed")),
    ("password-protected entry", lambda: [("enc.zip", zip_of({"e/p.json": POLICY, "e/x.json": b"??"},
                                                             encrypted="e/x.json"))], {},
     ("skipped", "enc.zip/e/x.json", "encrypted")),
    ("more files than the cap", lambda: [("many.zip", zip_of({f"e/{i}.json": b"{}" for i in range(20)}))],
     {"max_files": 10}, ("refused", "more than", "10 files")),
    ("a plain upload over the per-file cap", lambda: [("huge.json", b" " * 4096)], {"max_file_bytes": 1024},
     ("refused", "huge.json unpacks to 4 KB, more than the 1 KB one file of an import may be")),
    ("not a zip at all", lambda: [("fake.zip", b"PK\x03\x04 not really")], {},
     ("skipped", "fake.zip", "not a readable zip archive")),
]


@pytest.mark.parametrize("case, make, options, outcome", ARCHIVES, ids=[row[0] for row in ARCHIVES])
def test_archives_are_refused_or_left_out_before_they_are_unpacked(case, make, options, outcome, tmp_path):
    target = tmp_path / "up"
    if outcome[0] == "refused":
        with pytest.raises(uploads.UploadError) as caught:
            uploads.write_uploads(make(), target, **options)
        for text in outcome[1:]:
            assert text in str(caught.value), str(caught.value)
        written = [p for p in target.rglob("*") if p.is_file()] if target.exists() else []
        assert sum(p.stat().st_size for p in written) < 1 << 20, written  # refused before unpacking
    else:
        left_out = dict(uploads.write_uploads(make(), target, **options))
        assert outcome[2] in left_out[outcome[1]], left_out
        assert not (target / outcome[1]).is_file()


def test_a_refused_upload_leaves_the_previous_import_and_no_run(tmp_path):
    store = Store(tmp_path / "u.duckdb")
    first = uploads.import_uploads(store, [("p.json", POLICY)], "Mine")
    with pytest.raises(uploads.TooLarge, match="bomb.zip/big.json"):
        uploads.import_uploads(store, [("bomb.zip", bomb_zip("big.json", 900 << 20))], "Mine")
    assert store.runs(first.tenant_id)["status"].to_list() == ["succeeded"]


# --- 6. bounded files in a folder import ----------------------------------------------------------------
def nested(depth: int) -> str:
    return '{"displayName": "deep", "x": ' + "[" * depth + "1" + "]" * depth + "}"


OUTSIDE = "outside-secret.json"


def make_folder(tmp_path: Path, extra) -> Path:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "good.json").write_bytes(POLICY)
    (tmp_path / OUTSIDE).write_text(json.dumps(policy_of("deviceConfiguration", {"note": "from outside " + SECRET}, 9)))
    (tmp_path / "outside-dir").mkdir()
    (tmp_path / "outside-dir" / "x.json").write_text(json.dumps(policy_of("deviceConfiguration", {"a": SECRET}, 8)))
    extra(folder, tmp_path)
    return folder


# (case, what to put in the folder, file, reason)
FOLDERS: list[tuple[str, Any, str, str]] = [
    ("JSON nested 900 deep", lambda f, t: (f / "deep.json").write_text(nested(900)),
     "deep.json", f"deeper than the {MAX_DEPTH} levels the flattener reads"),
    ("JSON nested 200,000 deep (the parser's own limit)", lambda f, t: (f / "deeper.json").write_text(nested(200_000)),
     "deeper.json", f"deeper than the {MAX_DEPTH} levels the flattener reads"),
    ("a link to a file outside the folder", lambda f, t: (f / "shadow.json").symlink_to(t / OUTSIDE),
     "shadow.json", "symbolic link: not followed"),
    ("a link to /etc/shadow", lambda f, t: (f / "etc-shadow.json").symlink_to("/etc/shadow"),
     "etc-shadow.json", "symbolic link: not followed"),
    ("a link to a folder outside", lambda f, t: (f / "more").symlink_to(t / "outside-dir", target_is_directory=True),
     "more", "symbolic link to a folder: not followed"),
    ("a FIFO (reading it would block)", lambda f, t: os.mkfifo(f / "pipe.json"), "pipe.json", "not a regular file"),
    ("a lone UTF-16 surrogate", lambda f, t: (f / "surrogate.json").write_text('{"displayName": "x\\ud800"}'),
     "surrogate.json", "lone UTF-16 surrogate"),
    ("UTF-16 text that is not UTF-16", lambda f, t: (f / "utf16.json").write_bytes(b"\xff\xfe\x00\xd8\x00\x00"),
     "utf16.json", "not valid utf-16"),
]


@pytest.mark.parametrize("case, extra, file, reason", FOLDERS, ids=[row[0] for row in FOLDERS])
def test_a_folder_import_skips_what_it_must_not_read_with_a_reason(case, extra, file, reason, tmp_path):
    folder = make_folder(tmp_path, extra)
    store = Store(tmp_path / "f.duckdb")
    result = import_baseline(store, folder, "Folder")
    skipped = dict(result.skipped)
    assert reason in skipped.get(file, ""), result.skipped
    assert result.policies == 1  # the good file still imports
    run = store.runs(result.tenant_id).row(0, named=True)
    assert run["status"] == "succeeded" and file in run["warnings"]
    assert SECRET not in json.dumps(store.current_settings([result.tenant_id]).to_dicts(), default=str)


def test_a_file_over_the_cap_is_skipped_unread(tmp_path):
    (tmp_path / "big.json").write_bytes(POLICY + b" " * 4096)
    (tmp_path / "small.json").write_bytes(POLICY.replace(b"p-1", b"p-2"))
    reader = ExportReader(tmp_path, max_file_bytes=2048)
    assert dict(reader.skipped)["big.json"].endswith("larger than the 0 MB one export file may be: not read")
    assert reader.count == 1


def test_inline_definitions_of_any_shape_never_crash_an_import(tmp_path):
    policy = catalog_policy("x-1", inline=False)
    policy["settings"][0]["settingDefinitions"] = [{"id": ["a list"]}, {"id": DEF_GRAPH, "displayName": {"x": 1},
                                                                         "options": [{"itemId": ["x"]}, "nope"]}]
    policy["settings"][1]["settingDefinitions"] = "not a list"
    (tmp_path / "odd.json").write_text(json.dumps(policy))
    result = import_baseline(Store(tmp_path / "o.duckdb"), tmp_path, "Odd")
    assert result.policies == 1 and result.settings == 2 and result.skipped == []


def test_an_import_that_breaks_off_ends_its_run_failed_naming_the_file(tmp_path):
    """The disk fills up while the rows are written (a real EFBIG: the file-size limit of this
    process is lowered for the import). Today's crash left the run `running`; now it ends
    `failed`, naming the file, and the previous snapshot stays current."""
    export_dir = tmp_path / "export"
    export_dir.mkdir()
    (export_dir / "a-small.json").write_bytes(POLICY)
    big = policy_of("deviceConfiguration", {"@odata.type": "#microsoft.graph.windows10GeneralConfiguration",
                                            "notes": os.urandom(12 << 20).hex()}, 2)
    (export_dir / "b-big.json").write_text(json.dumps(big))
    store = Store(tmp_path / "e.duckdb")
    first = import_baseline(store, export_dir / "a-small.json", "Disk")
    limit = 8 << 20  # the database stays below it; the Parquet part of a 24 MB policy does not
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        with pytest.raises(ImportFailed) as caught:
            import_baseline(store, export_dir, "Disk", work_dir=tmp_path)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert "b-big.json" in str(caught.value) and "File too large" in str(caught.value)
    runs = store.runs(first.tenant_id)
    assert runs["status"].to_list() == ["failed", "succeeded"]
    assert "b-big.json" in runs["error"][0]
    assert store.snapshot_token() == ((first.tenant_id, first.run_id),)


# --- 7. CSV: formulas neutralised in cells and headers --------------------------------------------------
FORMULAS: list[tuple[str, str, str]] = [
    ("equals", '=HYPERLINK("https://evil.example","x")', '\'=HYPERLINK("https://evil.example","x")'),
    ("plus", "+1+1", "'+1+1"), ("minus", "-1+1", "'-1+1"), ("at", "@SUM(A1)", "'@SUM(A1)"),
    ("tab", "\tx", "'\tx"), ("carriage return", "\rx", "'\rx"),
    ("leading space before =", " =1+1", "' =1+1"), ("leading spaces and tab", "  \t+1", "'  \t+1"),
    ("full-width equals", "＝1+1", "'＝1+1"), ("full-width plus", "＋1", "'＋1"),
    ("full-width minus", "－1", "'－1"), ("full-width at", "＠SUM(A1)", "'＠SUM(A1)"),
    ("small-form equals", "﹦1+1", "'﹦1+1"), ("zero-width space before @", "\u200b@SUM(1)", "'\u200b@SUM(1)"),
    ("no-break space before =", "\u00a0=1", "'\u00a0=1"),
    ("harmless", "a=b", "a=b"), ("harmless number text", "42", "42"),
]


@pytest.mark.parametrize("case, text, cell", FORMULAS, ids=[row[0] for row in FORMULAS])
def test_csv_neutralises_formulas_in_cells_and_header_cells(case, text, cell):
    data = export.to_csv_bytes(pl.DataFrame({text: [text], "n": [1]}))
    assert data.startswith(export.BOM)
    import csv

    header, row = list(csv.reader(io.StringIO(data[len(export.BOM):].decode(), newline="")))
    assert header == [cell, "n"] and row == [cell, "1"]


def test_the_compare_matrix_csv_neutralises_tenant_names_in_its_header(db):
    evil, good = '=HYPERLINK("https://evil.example","Contoso")', "Fabrikam"
    db.add_tenant(TENANT, evil)
    db.add_tenant("fabrikam.onmicrosoft.com", good)
    for tenant in (TENANT, "fabrikam.onmicrosoft.com"):
        write_snapshot(db, tenant, {"P": {"fw_enable": "true"}})
    frame = db.current_settings()
    matrix = compare.compare_matrix(frame, [TENANT, "fabrikam.onmicrosoft.com"], None,
                                    labels={TENANT: evil, "fabrikam.onmicrosoft.com": good})
    header = export.to_csv_bytes(matrix)[len(export.BOM):].decode().splitlines()[0]
    assert '"\'=HYPERLINK(""https://evil.example"",""Contoso"")"' in header and ",=HYPERLINK" not in header


# --- 8. configuration: no shell, no credential in an error, private files --------------------------------
REDIS_URLS: list[tuple[str, str, str]] = [  # (case, REDIS_URL, the password that must not be shown)
    ("wrong scheme with a password", "http://:s3cr3t-pw@redis.internal:6379/0", "s3cr3t-pw"),
    ("a port that is not a number", "redis://:s3cr3t-pw@redis.internal:notaport/0", "s3cr3t-pw"),
    ("an @ in the password, not encoded", "redis://:s3cr@t-pw@redis.internal:x/0", "s3cr@t-pw"),
    ("a / in the password, not encoded", "redis://:s3cr/t-pw@redis.internal/0", "s3cr/t-pw"),
    ("user and password without a host", "rediss://admin:s3cr3t-pw@/0", "s3cr3t-pw"),
    ("no scheme", ":s3cr3t-pw@redis.internal:6379", "s3cr3t-pw"),
]


@pytest.mark.parametrize("case, url, password", REDIS_URLS, ids=[row[0] for row in REDIS_URLS])
def test_a_malformed_redis_url_is_refused_without_showing_its_password(case, url, password):
    with pytest.raises(ConfigError) as caught:
        load_settings({"REDIS_URL": url}, dotenv=False)
    message = str(caught.value)
    assert "REDIS_URL" in message and password not in message and "\n" not in message


def test_a_secret_pasted_into_the_client_id_is_not_echoed():
    with pytest.raises(ConfigError) as caught:
        load_settings({"AZURE_AD_CLIENT_ID": "Zx8Q~secret-value-pasted", "AZURE_AD_CLIENT_SECRET": "x"}, dotenv=False)
    assert "AZURE_AD_CLIENT_ID" in str(caught.value) and "secret-value" not in str(caught.value)


def test_logs_never_show_url_credentials_or_credential_fields():
    line = log_line(error="Redis at redis://:p&ss-w0rd@redis.internal:6379/0 refused", password="hunter2",
                    url="https://graph.example/x?client_secret=abc123&x=1")
    assert "p&ss-w0rd" not in line and "hunter2" not in line and "abc123" not in line
    assert "redis.internal:6379" in line


DOTENV = ("AZURE_AD_CLIENT_ID=5f0c3a3e-7d1b-4b9a-9a57-3c3f2a1e9b10\n"
          "AZURE_AD_CLIENT_SECRET=a`touch {marker}`b$HOME${{HOME}}$(id)\n"
          "REDIS_URL=redis://:p&ss@127.0.0.1:6379/0\n"
          "TENANTPILOT_WORKERS=3\nPORT=8600\n")


def test_dotenv_values_are_data_never_shell(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    (tmp_path / ".env").write_text(DOTENV.format(marker=marker))
    monkeypatch.chdir(tmp_path)
    for var in ("AZURE_AD_CLIENT_ID", "AZURE_AD_CLIENT_SECRET", "REDIS_URL", "TENANTPILOT_WORKERS", "PORT"):
        monkeypatch.delenv(var, raising=False)
    try:
        cfg = load_settings()
        assert cfg.client_secret == f"a`touch {marker}`b$HOME${{HOME}}$(id)"
        assert cfg.redis_url == "redis://:p&ss@127.0.0.1:6379/0"  # the & no longer empties it
        assert launch_values() == "0 3 8600"  # what scripts/run.sh reads instead of sourcing .env
        assert not marker.exists()
    finally:  # load_dotenv set them in os.environ; monkeypatch.delenv here would record and restore them
        for var in ("AZURE_AD_CLIENT_ID", "AZURE_AD_CLIENT_SECRET", "REDIS_URL", "TENANTPILOT_WORKERS", "PORT"):
            os.environ.pop(var, None)


def test_run_sh_never_sources_dotenv():
    script = (ROOT / "scripts" / "run.sh").read_text()
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("#"))
    assert not re.search(r"(^|[;&|\s])(\.|source)\s+\S*\.env\b", code), code
    assert "set -a" not in code and "-m tenantpilot.config" in code


def test_files_the_processes_create_are_private(tmp_path):
    private_files()  # what the app, the consumer and the CLI do first
    store = Store(tmp_path / "data" / "t.duckdb")
    store.add_tenant(TENANT, "Contoso")
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "data" / "t.duckdb").stat().st_mode) == 0o600
    for unit in (ROOT / "deploy").glob("*.service"):
        assert "\nUMask=0077\n" in unit.read_text(), unit


# --- 9. exposure ----------------------------------------------------------------------------------------
def test_streamlit_config_keeps_the_app_local_with_xsrf_cors_and_a_host_allow_list():
    server = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]
    assert server["address"] == "127.0.0.1"
    assert server["enableXsrfProtection"] is True and server["enableCORS"] is True
    assert set(server["allowedHosts"]) == {"127.0.0.1", "localhost", "::1"}
    readme = (ROOT / "README.md").read_text()
    assert "no login" in readme and "STREAMLIT_SERVER_ALLOWED_HOSTS" in readme and "auth_basic" in readme
    assert "no login" in messages.NO_LOGIN


def _jwt(header: dict, claims: dict, signature: bytes = b"") -> str:
    import base64

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return ".".join((part(json.dumps(header).encode()), part(json.dumps(claims).encode()), part(signature)))


ASSERTIONS: list[tuple[str, dict, bytes]] = [
    ("alg none, no signature", {"alg": "none", "typ": "JWT"}, b""),
    ("alg None spelled otherwise", {"alg": "None"}, b""),
    ("RS256 claimed, signature stripped", {"alg": "RS256"}, b""),
    ("HS256 (a shared-key algorithm)", {"alg": "HS256"}, b"x" * 32),
    ("RS256 with a made-up signature and no certificate registered", {"alg": "RS256"}, b"y" * 256),
]


@pytest.mark.parametrize("case, header, signature", ASSERTIONS, ids=[row[0] for row in ASSERTIONS])
def test_the_simulator_refuses_unsigned_or_unverifiable_client_assertions(case, header, signature):
    class Tenant:
        tenant_id, display_name = TENANT, "Contoso"

    authority = TokenAuthority(lambda segment: Tenant, client_id="app-1", client_secret="s")
    base = "https://127.0.0.1:1"
    claims = {"iss": "app-1", "sub": "app-1", "aud": f"{base}/{TENANT}/oauth2/v2.0/token", "exp": 9_999_999_999}
    status, body = authority.token(base, TENANT, {
        "grant_type": "client_credentials", "client_id": "app-1", "scope": "https://graph.microsoft.com/.default",
        "client_assertion_type": JWT_BEARER, "client_assertion": _jwt(header, claims, signature)})
    assert status == 401 and body["error"] == "invalid_client" and "access_token" not in body, body
    assert authority.tokens_issued == 0
