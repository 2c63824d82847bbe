"""The customer report (tenantpilot/report) from a real DuckDB file with synced-like runs on past days, an
imported-like baseline, an accepted deviation, an audit event and a type the last sync could not read:
the workbook opened with openpyxl (sheets, scores, a known difference), the PDF rendered to PNG pages by
poppler's pdftoppm and its text read by pdftotext; hostile names stay inert in both; secrets stay masked."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import zipfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from tenantpilot import cli, report
from tenantpilot.analysis import deviations, history
from tenantpilot.flatten.schema import ASSIGNMENT_SCHEMA, POLICY_SCHEMA, SETTING_SCHEMA
from tenantpilot.graph.audit import EVENT_SCHEMA, event_row
from tenantpilot.report.xlsx import SHEETS
from tenantpilot.store import Store, TypeOutcome

T1, T2 = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
BASE = "baseline:cis-l1"
NOW = datetime.now(timezone.utc)
TODAY = date.today()
LEAK = "hunter2-must-never-show"
CATALOG = TypeOutcome("settingsCatalog", "settingsCatalog", "Settings catalog", True)
COMPLIANCE = TypeOutcome("compliance", "compliance", "Compliance policies", True)
UNREAD = TypeOutcome("compliance", "compliance", "Compliance policies", False, "forbidden", "403")

# {policy id: {setting key: value}}; a policy id starting with c is a compliance policy
BASELINE = {"p1": {"fw": "On", "pin": "6", "usb": "block", "tls": "1.2"}, "c1": {"kc": "on"}}
CONTOSO_OLD = {"p1": {"fw": "On", "usb": "block", "tls": "1.2"}, "c1": {"kc": "on"}}
CONTOSO_NOW = {"p1": {"fw": "Off", "usb": "block", "tls": "1.2", "extra": "x"}, "c1": {"kc": "on"},
               "p3": {"wifi": LEAK}}  # p3.wifi: a secret the flattener marked (is_secret) but did not mask
FABRIKAM = {"p1": {"fw": "On", "pin": "4", "usb": "block", "tls": "1.2"}, "c1": {"kc": "on"}}


def snapshot(data: dict[str, dict[str, str]], names: dict[str, str] | None = None, setting_names=None):
    pol, rows, asg = [], [], []
    for pid, settings in data.items():
        name = (names or {}).get(pid, pid.upper())
        ptype = "compliance" if pid.startswith("c") else "settingsCatalog"
        pol.append({"policy_id": pid, "policy_name": name, "policy_type": ptype, "odata_type": "",
                    "platform": "windows", "raw_json": "{}"})
        asg.append({"policy_id": pid, "policy_name": name, "policy_type": ptype, "intent": "include",
                    "target_type": "group", "group_id": "g1", "group_name": "All staff", "filter_id": "",
                    "filter_type": "none", "filter_name": ""})
        for key, value in settings.items():
            row = {c: "" for c in SETTING_SCHEMA}
            row.update(policy_id=pid, policy_name=name, policy_type=ptype, setting_key=key, setting_id=key,
                       setting_name=(setting_names or {}).get(key, f"Name of {key}"), category="Security",
                       value=value, compare_value=value, is_secret=value == LEAK, configured=True, platform="windows")
            rows.append(row)
    return (pl.DataFrame(pol, schema=POLICY_SCHEMA), pl.DataFrame(rows, schema=SETTING_SCHEMA),
            pl.DataFrame(asg, schema=ASSIGNMENT_SCHEMA))


def sync_on(store: Store, tenant: str, days_ago: float, data, *, readable: bool = True, types=True, **names) -> int:
    run_id, _ = store.create_run_unless_active(tenant)
    store.start_run(run_id)
    p, s, a = snapshot(data, **names)
    type_of = {pid: ("compliance" if pid.startswith("c") else "settingsCatalog") for pid in data}
    store.write_snapshot(run_id, tenant, policies=p, settings=s, assignments=a,
                         status="succeeded" if readable else "partial", request_count=1,
                         types=(CATALOG, COMPLIANCE if readable else UNREAD) if types else (),
                         type_of=type_of if types else None)
    with store.connect(write=True) as con:
        con.execute("UPDATE sync_runs SET finished_at = ? WHERE run_id = ?", [NOW - timedelta(days=days_ago), run_id])
    return run_id


def audit_event(policy_id: str, days_ago: float, upn: str) -> dict:
    """An auditEvent in Graph's documented shape (intune-auditing-auditevent)."""
    when = (NOW - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"id": f"e-{policy_id}-{days_ago}", "displayName": "Patch DeviceManagementConfigurationPolicy",
            "componentName": "DeviceConfiguration", "activity": "Patch DeviceManagementConfigurationPolicy",
            "activityDateTime": when, "activityType": "Patch DeviceManagementConfigurationPolicy",
            "activityOperationType": "Patch", "activityResult": "Success",
            "actor": {"auditActorType": "ItPro", "userPrincipalName": upn},
            "resources": [{"displayName": "P1", "type": "DeviceManagementConfigurationPolicy",
                           "resourceId": policy_id}]}


def build(store: Store, *, contoso: str = "Contoso", policy_names=None, setting_names=None, reason="legacy VPN client"):
    store.add_tenant(T1, contoso)
    store.add_tenant(T2, "Fabrikam")
    store.add_tenant(BASE, "CIS L1", "baseline")
    sync_on(store, BASE, 20, BASELINE, types=False, setting_names=setting_names)
    sync_on(store, T1, 10, CONTOSO_OLD, names=policy_names, setting_names=setting_names)
    changed = sync_on(store, T1, 2, CONTOSO_NOW, names=policy_names, setting_names=setting_names)
    sync_on(store, T1, 1, {k: v for k, v in CONTOSO_NOW.items() if k != "c1"}, readable=False, names=policy_names,
            setting_names=setting_names)
    sync_on(store, T2, 3, FABRIKAM, setting_names=setting_names)
    events = pl.DataFrame([event_row(audit_event("p1", 2.5, "alice@contoso.com"))], schema=EVENT_SCHEMA)
    store.save_audit_events(T1, changed, events)
    new = deviations.validate(tenant_id=T1, baseline_id=BASE, key=("settingsCatalog", "windows", "fw"),
                              setting_name="Name of fw", reason=reason, owner="Ops",
                              expires_on=TODAY + timedelta(days=30), today=TODAY, tenants=[T1, T2, BASE],
                              baselines=[BASE])
    store.add_deviation(new, accepted_by="ann@msp.example")


@pytest.fixture
def data(db: Store) -> report.ReportData:
    build(db)
    return report.gather(db, [T1, T2], BASE, history.parse_since("7d"))


def sheet_rows(book, name: str) -> list[dict]:
    """A sheet's table (header on row 3, below the note) as dicts."""
    rows = list(book[name].iter_rows(min_row=3, values_only=True))
    return [dict(zip(rows[0], r)) for r in rows[1:]]


def test_the_data_follows_compare_deviations_and_history(data: report.ReportData):
    scores = {r["Tenant"]: r for r in data.summary.iter_rows(named=True)}
    # Contoso: fw accepted (out of the score), pin missing, usb/tls/kc matched (kc carried forward) -> 3 of 4
    assert scores["Contoso"]["Alignment"] == pytest.approx(0.75)
    assert (scores["Contoso"]["Matched"], scores["Contoso"]["Missing in the tenant"], scores["Contoso"]["Accepted"],
            scores["Contoso"]["Not in the baseline"]) == (3, 1, 1, 2)
    assert scores["Fabrikam"]["Alignment"] == pytest.approx(0.8)  # pin differs: 4 of 5
    found = {(r["Tenant"], r["Setting"]): r for r in data.differences.iter_rows(named=True)}
    assert found[("Fabrikam", "Name of pin")]["Status"] == "different value"
    assert (found[("Fabrikam", "Name of pin")]["Baseline value"], found[("Fabrikam", "Name of pin")]["Tenant value"]) \
        == ("6", "4")
    assert found[("Contoso", "Name of pin")]["Status"] == "missing in the tenant"
    assert found[("Contoso", "Name of fw")]["Status"] == "accepted"
    assert found[("Contoso", "Name of fw")]["Accepted until"] == (TODAY + timedelta(days=30)).isoformat()
    assert found[("Contoso", "Name of extra")]["Status"] == "not in the baseline"
    assert found[("Contoso", "Name of wifi")]["Tenant value"] == "********"
    assert ("Fabrikam", "Name of usb") not in found  # the same value is no difference
    assert data.accepted.select("Tenant", "Reason", "Accepted by", "State").rows() == [
        ("Contoso", "legacy VPN client", "ann@msp.example", "valid")]
    changes = {(r["Change"], r["Setting"] or r["Policy"]): r for r in data.changes.iter_rows(named=True)}
    assert changes[("setting changed", "Name of fw")]["Changed by"] == "alice@contoso.com (per policy)"  # the event names the policy only
    assert (changes[("setting changed", "Name of fw")]["Before"], changes[("setting changed", "Name of fw")]["After"]) \
        == ("On", "Off")
    assert ("policy added", "P3") in changes
    assert data.not_read.select("Tenant", "Policy type", "Status").rows() == [
        ("Contoso", "Compliance policies", "carried")]


def test_the_workbook_opens_with_its_sheets_scores_and_differences(data: report.ReportData):
    raw = report.render(data, "xlsx")
    book = openpyxl.load_workbook(io.BytesIO(raw))
    assert book.sheetnames == list(SHEETS) == ["Summary", "Differences", "Accepted deviations", "Changes",
                                               "Types not read"]
    summary = book["Summary"]
    header = next(i for i, r in enumerate(summary.iter_rows(values_only=True), start=1) if r[0] == "Tenant")
    table = [dict(zip(next(summary.iter_rows(min_row=header, max_row=header, values_only=True)), r))
             for r in summary.iter_rows(min_row=header + 1, max_row=header + 2, values_only=True)]
    assert {r["Tenant"]: r["Alignment"] for r in table} == {"Contoso": pytest.approx(0.75),
                                                            "Fabrikam": pytest.approx(0.8)}
    assert summary._charts, "the Summary sheet has its chart"
    diffs = sheet_rows(book, "Differences")
    pin = next(r for r in diffs if r["Tenant"] == "Fabrikam" and r["Setting"] == "Name of pin")
    assert (pin["Status"], pin["Baseline value"], pin["Tenant value"]) == ("different value", "6", "4")
    assert [r["Reason"] for r in sheet_rows(book, "Accepted deviations")] == ["legacy VPN client"]
    assert any(r["Changed by"] == "alice@contoso.com (per policy)" and r["Setting"] == "Name of fw"
               for r in sheet_rows(book, "Changes"))
    assert sheet_rows(book, "Types not read")[0]["Policy type"] == "Compliance policies"
    assert LEAK.encode() not in _unzipped(raw)


def _unzipped(raw: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        return b"".join(z.read(n) for n in z.namelist())


POPPLER = shutil.which("pdftoppm") and shutil.which("pdftotext")
needs_poppler = pytest.mark.skipif(not POPPLER, reason="poppler-utils (pdftoppm, pdftotext) not installed: "
                                                       "apt-get install -y poppler-utils")


def pdf_text(raw: bytes, tmp_path: Path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(raw)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True,
                          text=True).stdout


@needs_poppler
def test_the_pdf_renders_to_pages_holding_the_score_and_the_tables(data: report.ReportData, tmp_path: Path):
    raw = report.render(data, "pdf")
    assert raw.startswith(b"%PDF")
    path = tmp_path / "report.pdf"
    path.write_bytes(raw)
    subprocess.run(["pdftoppm", "-png", "-r", "40", str(path), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 2  # the summary and its chart, then the tables from a new page
    assert all(p.read_bytes().startswith(b"\x89PNG") and p.stat().st_size > 1000 for p in pages)
    text = pdf_text(raw, tmp_path)
    for expected in ("Baseline alignment report", "CIS L1", "75.0%", "80.0%", "Differences from CIS L1",
                     "Accepted deviations", "Changes since", "Types not read (carried forward)",
                     "Name of pin", "different value",
                     "missing in the tenant", "legacy VPN client", "alice@contoso.com", "Compliance policies",
                     f"Page 1 of {len(pages)}"):
        assert expected in text, expected
    assert LEAK not in text


HOSTILE_TENANT = '=HYPERLINK("https://evil.example/x","click") 東京'
HOSTILE_POLICY = "\u202egnp.exe"
HOSTILE_SETTING = "@SUM(1+1)\u200b" + "very long name " * 400


@pytest.mark.parametrize("fmt", ["xlsx", "pdf"])
def test_hostile_names_stay_inert(db: Store, tmp_path: Path, fmt: str):
    if fmt == "pdf" and not POPPLER:
        pytest.skip("poppler-utils (pdftotext) not installed: apt-get install -y poppler-utils")
    build(db, contoso=HOSTILE_TENANT, policy_names={"p1": HOSTILE_POLICY}, setting_names={"fw": HOSTILE_SETTING},
          reason="+cmd|' /C calc'!A0")
    raw = report.render(report.gather(db, [T1, T2], BASE, history.parse_since("7d")), fmt)
    if fmt == "xlsx":
        xml = _unzipped(raw)
        assert b"<f>" not in xml and b"<f " not in xml  # no formula anywhere
        assert b"<hyperlink" not in xml and b"relationships/hyperlink" not in xml  # no live link, only the text
        book = openpyxl.load_workbook(io.BytesIO(raw))
        cells = [c for ws in book.worksheets for row in ws.iter_rows() for c in row if c.value is not None]
        tenant = [c for c in cells if c.value == HOSTILE_TENANT]
        assert tenant and all(c.data_type == "s" and c.hyperlink is None for c in tenant)
        assert all(c.quotePrefix for c in tenant if c.row > 3)  # table cells keep Excel's text mark
        assert any(c.value == "+cmd|' /C calc'!A0" and c.data_type == "s" for c in cells)
        assert any(c.value == "[U+202E]gnp.exe" for c in cells)  # the bidi override shown, not obeyed
        assert not any("\u202e" in str(c.value) for c in cells)
        longest = max(len(str(c.value)) for c in cells)
        assert longest <= report.data.MAX_CELL and any(str(c.value).endswith("…[cut]") for c in cells)
    else:
        text = pdf_text(raw, tmp_path)
        # CJK is not in the shipped font: shown as code points, never dropped
        assert '=HYPERLINK("https://evil.example/x","click") [U+6771][U+4EAC]' in text
        assert "[U+202E]gnp.exe" in text and "\u202e" not in text
        assert "@SUM(1+1)[U+200B]very long name" in text
        assert not re.search(rb"/URI|/S\s*/JavaScript|/Launch", raw)  # no link or action in the PDF
    assert LEAK.encode() not in raw


def test_the_cli_writes_both_formats_and_says_what_is_wrong(db: Store, tmp_path: Path, capsys):
    build(db)
    out = tmp_path / "r.xlsx"
    assert cli.main(["report", "Contoso", "Fabrikam", "--baseline", "CIS L1", "--since", "7d", "--format", "xlsx",
                     "--output", str(out)]) == 0
    assert "wrote the xlsx report of 2 tenant(s)" in capsys.readouterr().out
    assert openpyxl.load_workbook(out).sheetnames[0] == "Summary"
    pdf = tmp_path / "r.pdf"
    assert cli.main(["report", T1, "--baseline", BASE, "--format", "pdf", "--output", str(pdf)]) == 0
    assert pdf.read_bytes().startswith(b"%PDF")
    assert cli.main(["report", "Contoso", "--baseline", "CIS L1", "--since", "2.5d", "--output", str(out)]) == 2
    assert "not a point in time" in capsys.readouterr().err
    assert cli.main(["report", "CIS L1", "--baseline", "CIS L1", "--output", str(out)]) == 2
    assert "besides the baseline" in capsys.readouterr().err
    assert cli.main(["report", "Nobody", "--baseline", "CIS L1", "--output", str(out)]) == 2
