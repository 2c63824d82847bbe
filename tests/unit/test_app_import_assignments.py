"""Import a baseline from uploaded files (Tenants page) and assignments next to the settings (Explore).

AppTest 1.67 drives st.file_uploader (`FileUploader.set_value((name, bytes, mime))`), so the upload
tests go through the real widget and form; tenantpilot.sync.uploads (zip extraction and its safety
checks) is also tested on its own. Everything runs against a real DuckDB file (fixtures of
test_app.py).
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import polars as pl
import pytest
from apptest import (
    APP,
    CONTOSO,
    DATA,
    NORTHWIND,
    app,
    explore_table,
    find_table,
    healthy,
    shown,
    snapshot_frames,
    texts,
)

from graphsim import CORPUS_DIR as CORPUS
from tenantpilot.flatten.schema import ASSIGNMENT_SCHEMA
from tenantpilot.store import Store
from tenantpilot.sync import uploads

INTUNECD = CORPUS / "CES2026-IntuneCD"
ZIP_MIME = "application/zip"


def zip_folder(folder: Path, prefix: str | None = None) -> bytes:
    """A .zip of `folder` as a user would make it (entries under the folder's name)."""
    prefix = folder.name if prefix is None else prefix
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{prefix}/{path.relative_to(folder).as_posix()}" if prefix else
                              path.relative_to(folder).as_posix())
    return buf.getvalue()


def zip_entries(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buf.getvalue()


def a_policy() -> bytes:
    return next((CORPUS / "Intune-Config-Frameworks" / "iOS" / "Compliance").glob("*.json")).read_bytes()


def submit_import(at, name: str, files: list[tuple[str, bytes, str]]):
    at.text_input(key="baseline_name").input(name)
    uploader = next(u for u in at.file_uploader if (u.key or "").startswith("baseline_files_"))
    uploader.set_value(files)
    next(b for b in at.button if b.label == "Import baseline").click().run()
    return healthy(at)


# --- tenantpilot.sync.uploads on its own ------------------------------------------------------------
@pytest.mark.parametrize("name", ["../evil.json", "a/../../evil.json", "/etc/evil.json", "C:/evil.json",
                                  "..\\evil.json", "x\\..\\..\\evil.json"])
def test_member_parts_rejects_escapes(name):
    assert uploads.member_parts(name) is None


def test_member_parts_keeps_normal_paths():
    assert uploads.member_parts("Export/./Device Configurations/a.json") == ("Export", "Device Configurations",
                                                                             "a.json")
    assert uploads.member_parts("Export\\Compliance\\b.json") == ("Export", "Compliance", "b.json")
    assert uploads.member_parts("Export/") == ("Export",)
    assert uploads.upload_name("../../x.json") == "x.json"
    assert uploads.upload_name("C:\\Users\\me\\x.zip") == "x.zip"
    assert not uploads.upload_name(".hidden.json").startswith(".")


def test_write_uploads_extracts_zips_and_writes_json(tmp_path):
    good = a_policy()
    archive = zip_entries({"Export/Compliance/p.json": good, "Export/": b"", "__MACOSX/Export/._p.json": b"\0\0",
                           "Export/readme.md": b"# hi"})
    skipped = uploads.write_uploads([("export.zip", archive), ("one.json", good), ("one.json", good)],
                                    tmp_path / "up")
    assert skipped == []
    files = sorted(p.relative_to(tmp_path / "up").as_posix() for p in (tmp_path / "up").rglob("*") if p.is_file())
    assert files == ["export.zip/Export/Compliance/p.json", "export.zip/Export/readme.md", "one (2).json",
                     "one.json"]


def test_write_uploads_rejects_an_escaping_archive_before_writing(tmp_path):
    archive = zip_entries({"ok/a.json": a_policy(), "../evil.json": b"{}"})
    with pytest.raises(uploads.UnsafeArchive, match=r"evil\.json.*outside the archive"):
        uploads.write_uploads([("bad.zip", archive)], tmp_path / "up")
    assert not (tmp_path / "evil.json").exists()
    assert not [p for p in (tmp_path / "up").rglob("*") if p.is_file()]  # nothing of it was written


def test_write_uploads_caps_size_and_count(tmp_path):
    big = io.BytesIO()
    with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.json", os.urandom(1024 * 1024).hex())  # 2 MB that hardly compress
    with pytest.raises(uploads.TooLarge, match="python -m tenantpilot import"):
        uploads.write_uploads([("big.zip", big.getvalue())], tmp_path / "a", max_bytes=1024 * 1024)
    # (archives that unpack to far more than they weigh are refused by ratio: tests/unit/test_hostile.py)
    many = zip_entries({f"e/{i}.json": b"{}" for i in range(20)})
    with pytest.raises(uploads.TooLarge):
        uploads.write_uploads([("many.zip", many)], tmp_path / "b", max_files=10)


def test_write_uploads_lists_unreadable_archives_and_links(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        link = zipfile.ZipInfo("e/link.json")
        link.external_attr = (0o120777 << 16)
        archive.writestr(link, "/etc/passwd")
        archive.writestr("e/p.json", a_policy())
    skipped = uploads.write_uploads([("links.zip", buf.getvalue()), ("broken.zip", b"not a zip")], tmp_path / "up")
    reasons = dict(skipped)
    assert "symbolic link" in reasons["links.zip/e/link.json"]
    assert "not a readable zip archive" in reasons["broken.zip"]
    assert (tmp_path / "up" / "links.zip" / "e" / "p.json").exists()
    assert not (tmp_path / "up" / "links.zip" / "e" / "link.json").exists()


def test_import_uploads_zipped_intunecd_export(tmp_path):
    store = Store(tmp_path / "u.duckdb")
    result = uploads.import_uploads(store, [("CES2026-IntuneCD.zip", zip_folder(INTUNECD))], "CES zipped")
    assert result.tenant_id == "baseline:ces-zipped"
    # 112: IntuneCD's role definition (typed) is imported since roles are read (issue 19)
    assert result.policies == 112 and result.settings == store.current_settings([result.tenant_id]).height
    assert all(f.startswith("CES2026-IntuneCD.zip/CES2026-IntuneCD/") for f, _ in result.skipped)
    assert store.runs(result.tenant_id)["source"].to_list() == ["import:CES2026-IntuneCD.zip"]
    assert store.current_assignments([result.tenant_id]).height > 0


def test_import_uploads_nothing_readable_keeps_the_previous_import(tmp_path):
    store = Store(tmp_path / "u.duckdb")
    first = uploads.import_uploads(store, [("p.json", a_policy())], "Mine")
    with pytest.raises(uploads.NothingImported, match="No policy could be read from 2 uploaded files") as caught:
        uploads.import_uploads(store, [("x.json", b"{nope"), ("notes.zip", zip_entries({"a.txt": b"hi"}))], "Mine")
    assert {f for f, _ in caught.value.skipped} == {"x.json", "notes.zip/a.txt"}
    assert "/tmp" not in str(caught.value)
    assert store.snapshot_token() == ((first.tenant_id, first.run_id),)
    with pytest.raises(uploads.UploadError, match="Enter a name"):
        uploads.import_uploads(store, [("p.json", a_policy())], "  ")
    with pytest.raises(uploads.UploadError, match="Choose the export"):
        uploads.import_uploads(store, [], "Mine")


# --- Tenants page: Import a baseline ---------------------------------------------------------
def test_upload_limit_is_raised_for_exports():
    import tomllib

    config = tomllib.loads((Path(APP).parent / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] >= 200


def test_import_zipped_intunecd_export_in_the_app(filled):
    at = app()
    uploader = next(u for u in at.file_uploader if (u.key or "").startswith("baseline_files_"))
    assert uploader.accept_multiple_files and set(uploader.allowed_type) == {".json", ".zip"}
    submit_import(at, "CES IntuneCD", [("CES2026-IntuneCD.zip", zip_folder(INTUNECD), ZIP_MIME)])
    assert not at.error, [e.value for e in at.error]
    success = [shown(s.value) for s in at.success]
    assert any(s.startswith("Imported baseline CES IntuneCD: 112 policies, ") for s in success), success
    settings = filled.current_settings(["baseline:ces-intunecd"]).height
    assert any(f"{settings:,} settings" in s for s in success)
    # the files that were left out, with the reason
    left_out = find_table(at, "file", "reason").set_index("file")
    assert "not a JSON file (.mobileconfig)" in set(left_out["reason"])
    assert left_out.loc["CES2026-IntuneCD.zip/CES2026-IntuneCD/LICENSE", "reason"] == "not a JSON file (no extension)"
    # listed as a baseline, and the uploader is empty again
    table = find_table(at, "display_name", "tenant_id", "kind")
    assert dict(zip(table["display_name"], table["kind"]))["CES IntuneCD"] == "baseline"
    assert all(not u.value for u in at.file_uploader)
    # selectable in Compare
    at.switch_page("app_pages/compare.py").run()
    assert "◆ CES IntuneCD (baseline)" in at.selectbox(key="cmp_baseline").options


def test_import_several_json_files_and_reimport_replaces(db):
    at = app()
    good = a_policy()
    submit_import(at, "Mine", [("good.json", good, "application/json"), ("broken.json", b'{"displayName": "x", ',
                                                                       "application/json")])
    assert any(shown(s.value).startswith("Imported baseline Mine: 1 policies") for s in at.success), texts(at)
    assert list(find_table(at, "file", "reason")["file"]) == ["broken.json"]
    first = db.snapshot_token()
    submit_import(at, "Mine", [("good.json", good, "application/json")])
    assert any("replaces the previous import" in shown(s.value) for s in at.success), texts(at)
    assert db.tenants().filter(pl.col("kind") == "baseline").height == 1
    assert db.snapshot_token() != first


def test_archive_escaping_its_folder_is_rejected(db):
    at = app()
    evil = zip_entries({"Export/p.json": a_policy(), "../evil.json": b"{}"})
    submit_import(at, "Evil", [("export.zip", evil, ZIP_MIME)])
    errors = [shown(e.value) for e in at.error]
    assert any("export.zip was rejected" in e and "'../evil.json'" in e and "nothing was imported" in e
               for e in errors), errors
    assert not at.success
    assert db.tenants().height == 0


def test_nothing_readable_is_an_error_and_the_previous_import_stays(db):
    at = app()
    submit_import(at, "Mine", [("good.json", a_policy(), "application/json")])
    token = db.snapshot_token()
    submit_import(at, "Mine", [("x.json", b"{nope", "application/json")])
    errors = [shown(e.value) for e in at.error]
    assert any("No policy could be read from x.json" in e and "previous import of Mine is unchanged" in e
               for e in errors), errors
    assert "malformed JSON" in find_table(at, "file", "reason")["reason"].iloc[0]
    assert db.snapshot_token() == token


def test_import_needs_a_name_and_files(db):
    at = app()
    at.text_input(key="baseline_name").input("")
    next(b for b in at.button if b.label == "Import baseline").click().run()
    assert any("Enter a name for the baseline" in shown(e.value) for e in at.error)
    at.text_input(key="baseline_name").input("Empty")
    next(b for b in at.button if b.label == "Import baseline").click().run()
    assert any("Choose the export's .json files" in shown(e.value) for e in at.error)
    assert db.tenants().height == 0


# --- Explore: assignments -----------------------------------------------------------------------
GROUPS = {"g-1": "SG Windows devices", "g-2": ""}  # g-2: the export has no group name, the id is shown


def assignment_rows(store: Store) -> None:
    """Assignments for the policies of `filled`: Contoso's firewall (group include + filter, group
    exclude, all devices), Northwind's (all users); the others are not assigned."""
    def rows(tenant: str, policy: str, items: list[dict[str, str]]) -> list[dict[str, str]]:
        policies = list(DATA[tenant])
        pid = f"{tenant[:8]}-p{policies.index(policy)}"
        return [{"policy_id": pid, "policy_name": policy, "policy_type": "settingsCatalog", "group_id": "",
                 "group_name": "", "filter_id": "", "filter_type": "none", **item} for item in items]

    wanted = {
        CONTOSO: rows(CONTOSO, "Contoso - Firewall", [
            {"intent": "include", "target_type": "group", "group_id": "g-1", "group_name": GROUPS["g-1"],
             "filter_id": "f-corp", "filter_type": "include"},
            {"intent": "exclude", "target_type": "group", "group_id": "g-2"},
            {"intent": "include", "target_type": "allDevices"},
        ]),
        NORTHWIND: rows(NORTHWIND, "Windows security", [{"intent": "include", "target_type": "allLicensedUsers"}]),
    }
    for tenant, items in wanted.items():
        run_id, _ = store.create_run_unless_active(tenant)
        store.start_run(run_id)
        p, s, _ = snapshot_frames(DATA[tenant], tenant)
        store.write_snapshot(run_id, tenant, policies=p, settings=s,
                             assignments=pl.DataFrame(items, schema=ASSIGNMENT_SCHEMA), status="succeeded",
                             request_count=1)


def assignments_table(at):
    """The Assignments tab's table (a dataframe without selection has no key in AppTest)."""
    return find_table(at, "intent", "target", "group", "platform")


@pytest.fixture
def assigned(filled: Store) -> Store:
    assignment_rows(filled)
    return filled


def test_selected_setting_shows_its_policies_assignments(assigned):
    at = app("explore")
    at.text_input(key="ex_search").input("inbound").run()
    grid = explore_table(at)
    contoso = list(grid.value["tenant"]).index("Contoso")
    at.session_state[grid.key] = {"selection": {"rows": [contoso], "columns": [], "cells": []}}
    healthy(at.run())
    assert at.subheader[0].value == "Default inbound action"
    shown = find_table(at, "intent", "target", "group", "filter_type")  # a table without selection has no key
    got = {(r.tenant, r.policy_name, r.intent, r.target, r.group, r.filter, r.filter_type)
           for r in shown.itertuples()}
    assert got == {
        ("Contoso", "Contoso - Firewall", "include", "Group", "SG Windows devices", "f-corp", "include"),
        ("Contoso", "Contoso - Firewall", "exclude", "Group", "g-2", "", "none"),
        ("Contoso", "Contoso - Firewall", "include", "All devices", "", "", "none"),
        ("Northwind", "Windows security", "include", "All users", "", "", "none"),
    }
    assert "**Assignments of these policies** (4)" in texts(at)
    # the baseline and Fabrikam set it too, in policies without assignments
    assert "Not assigned (or the export has no assignments): CIS L1 (CIS Level 1), FW baseline (Fabrikam)." in texts(at)


def test_assignments_tab_filters_searches_and_downloads_csv(assigned, downloads):
    at = app("explore")
    assert not [d for d in at.dataframe if "intent" in d.value.columns]  # lazy tab: not run until opened
    at.session_state["ex_view"] = "Assignments"
    healthy(at.run())
    table = assignments_table(at)
    assert len(table) == 4
    assert "of **4** matching assignments of **2** policies" in texts(at)
    csv = next(b for b in at.download_button if b.key == "ex_asg_csv")
    assert csv.label == "CSV (4 assignments)" and not csv.disabled
    assert not [b for b in at.download_button if b.key == "ex_csv"]  # the settings tab did not run

    # the page's filters apply: tenant
    at.multiselect(key="ex_tenants").set_value([NORTHWIND]).run()
    table = assignments_table(at)
    assert list(table["target"]) == ["All users"]
    at.multiselect(key="ex_tenants").set_value([]).run()

    # the search finds group names and ids
    at.text_input(key="ex_search").input("windows devices").run()
    table = assignments_table(at)
    assert list(table["group"]) == ["SG Windows devices"]
    at.text_input(key="ex_search").input("").run()

    # exclusions only
    at.button_group(key="ex_asg_intents").set_value(["exclude"]).run()
    table = assignments_table(at)
    assert list(table["group"]) == ["g-2"] and list(table["intent"]) == ["exclude"]
    at.button_group(key="ex_asg_intents").set_value([]).run()

    # target: all devices / all users
    at.multiselect(key="ex_asg_targets").set_value(["All devices", "All users"]).run()
    healthy(at)
    assert "of **2** matching assignments" in texts(at)
    data = downloads["tenantpilot-assignments-all-tenants.csv"]()
    assert data.startswith(b"\xef\xbb\xbf")
    lines = data[3:].decode("utf-8").splitlines()
    header = lines[0].split(",")
    assert header[:9] == ["tenant", "policy_name", "policy_type", "platform", "intent", "target", "group",
                          "filter", "filter_type"]
    assert sorted(line.split(",")[5] for line in lines[1:]) == ["All devices", "All users"]
    assert all(line.split(",")[3] == "windows" for line in lines[1:])  # platform joined from the policy

    # a policy without assignments: nothing to list or download
    at.multiselect(key="ex_asg_targets").set_value([]).run()
    at.multiselect(key="ex_policies").set_value(["FW baseline"]).run()
    healthy(at)
    assert "No assignments match (4 in the snapshot)" in texts(at)
    assert next(b for b in at.download_button if b.key == "ex_asg_csv").disabled


def test_assignments_tab_without_assignments(filled):
    at = app("explore")
    at.session_state["ex_view"] = "Assignments"
    healthy(at.run())
    assert "No assignments in the snapshot" in texts(at)
    assert next(b for b in at.download_button if b.key == "ex_asg_csv").disabled


def test_imported_baseline_assignments_are_listed(db):
    uploads.import_uploads(db, [("CES.zip", zip_folder(INTUNECD))], "CES")
    at = app("explore")
    at.session_state["ex_view"] = "Assignments"
    healthy(at.run())
    table = assignments_table(at)
    assert len(table) == db.current_assignments().height > 0
    assert {"All devices", "All users", "Group"} <= set(table["target"])
    assert set(table["tenant"]) == {"CES"}
    groups = set(table.loc[table["target"] == "Group", "group"])
    assert groups and all(groups)  # a name (or the id) for every group assignment


def test_with_many_tenants_the_assignments_tab_reads_only_the_chosen_ones(db, monkeypatch):
    """Above explore_view.ASSIGNMENTS_ALL_TENANTS tenants the tab asks which tenants to list instead of loading
    every tenant's assignments; once one is chosen, only its assignments are read."""
    from tenantpilot.app import explore_view

    uploads.import_uploads(db, [("CES.zip", zip_folder(INTUNECD))], "CES")
    uploads.import_uploads(db, [("CES.zip", zip_folder(INTUNECD))], "CES copy")
    monkeypatch.setattr(explore_view, "ASSIGNMENTS_ALL_TENANTS", 1)
    at = app("explore")
    at.session_state["ex_view"] = "Assignments"
    healthy(at.run())
    assert "Choose up to 1 tenants above to list their assignments (2 tenants have synced data)" in texts(at)
    one = next(t for t in db.tenants()["tenant_id"] if t.endswith("copy"))
    at.multiselect(key="ex_tenants").set_value([one]).run()
    healthy(at)
    table = assignments_table(at)
    assert set(table["tenant"]) == {"CES copy"} and len(table) == db.current_assignments([one]).height
