"""Imports bounded in total (issue 18, rows 10-11), with real files, real archives and a real DuckDB file:
a file Python's JSON reader refuses is skipped with its name and reason while the rest imports; an
archive whose entries are each small but together large is refused before anything is unpacked,
naming the cap, and leaves no baseline; a failed import's status is one readable sentence."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import duckdb
import pytest

from tenantpilot.flatten.files import MAX_FILE_BYTES, MAX_IMPORT_BYTES
from tenantpilot.store import Store
from tenantpilot.sync import uploads
from tenantpilot.sync.baseline import _failure, import_baseline


def policy(name: str, **settings: object) -> dict:
    return {"@odata.type": "#microsoft.graph.windows10GeneralConfiguration", "id": f"id-{name}",
            "displayName": name, **settings}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "b.duckdb")


@pytest.mark.parametrize("bad_name, bad_text, reason", [
    ("huge-int.json", '{"displayName": "X", "n": ' + "9" * 5000 + "}", "Exceeds the limit (4300 digits)"),
    ("huge-int-in-list.json", "[" + "1" * 4301 + "]", "Exceeds the limit (4300 digits)"),
    ("broken.json", '{"displayName": "X", ', "malformed JSON"),
])
def test_a_file_the_json_reader_refuses_is_skipped_by_name(store: Store, tmp_path: Path, bad_name: str,
                                                           bad_text: str, reason: str) -> None:
    export = tmp_path / "export"
    export.mkdir()
    for name in ("Firewall", "Passwords"):
        (export / f"{name}.json").write_text(json.dumps(policy(name, passwordRequired=True, firewallOn=True)))
    (export / bad_name).write_text(bad_text)
    result = import_baseline(store, export, "CIS")
    assert result.policies == 2
    (skipped,) = [r for f, r in result.skipped if f == bad_name]
    assert reason in skipped


def test_many_small_entries_together_too_large_are_refused_before_unpacking(store: Store) -> None:
    """Each entry is about 1.04 MB (under the per-file cap) and compresses about 100:1 (under the ratio
    cap); together they are more than one import may hold."""
    entry_bytes = 1_090_000
    count = MAX_IMPORT_BYTES // entry_bytes + 4
    block = 32 * 1024  # deflate's window: some random text in each keeps the ratio near 100:1
    body = io.BytesIO()
    with zipfile.ZipFile(body, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(count):
            filler = b"".join(os.urandom(160).hex().encode() + b"a" * (block - 320)
                              for _ in range(entry_bytes // block))
            archive.writestr(f"export/p{i}.json", b'{"displayName": "P%d", "x": "' % i + filler + b'"}')
    data = body.getvalue()
    infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    assert all(i.file_size < MAX_FILE_BYTES and i.file_size < uploads.MAX_RATIO * i.compress_size for i in infos)
    assert sum(i.file_size for i in infos) > MAX_IMPORT_BYTES
    with pytest.raises(uploads.TooLarge) as caught:
        uploads.import_uploads(store, [("export.zip", data)], "Big")
    assert f"{MAX_IMPORT_BYTES // (1024 * 1024)} MB" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert store.tenants().filter(store.tenants()["kind"] == "baseline").height == 0  # no empty baseline


def test_a_failed_imports_status_is_one_sentence(tmp_path: Path) -> None:
    con = duckdb.connect()
    with pytest.raises(duckdb.Error) as caught:  # a real multi-line DuckDB error text
        con.execute("SELECT * FROM no_such_table WHERE x = 1")
    assert "\n" in str(caught.value)
    status = _failure(tmp_path / "export.zip", "", caught.value)
    assert "\n" not in status and status.startswith("Import of export.zip failed while saving it: CatalogException")
