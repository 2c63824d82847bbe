"""`python -m tenantpilot compare` in-process against a DuckDB file: the Compare page's rows and scores."""

from __future__ import annotations

import json

import polars as pl
from apptest import BASELINE, CONTOSO, FABRIKAM, NAMES

from tenantpilot import cli
from tenantpilot.analysis import compare


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["compare", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_compare_json_matches_the_page_functions(filled, capsys):
    code, out, err = run(capsys, "Contoso", FABRIKAM, "--baseline", NAMES[BASELINE], "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    frame = filled.current_settings([BASELINE, CONTOSO, FABRIKAM])
    matrix = compare.compare_matrix(frame, [CONTOSO, FABRIKAM], BASELINE)
    assert report["baseline"] == BASELINE and report["tenants"] == [BASELINE, CONTOSO, FABRIKAM]
    got = {(r["setting_key"], r["status"]) for r in report["settings"]}
    assert got == set(matrix.select("setting_key", "status").iter_rows())
    assert {r["policy_type"] for r in report["settings"]} == {"Settings catalog"}
    scores = compare.alignment_scores(frame, [CONTOSO, FABRIKAM], BASELINE)
    assert [(a["tenant_id"], a["score"]) for a in report["alignment"]] == list(
        scores.select("tenant_id", "score").iter_rows())


def test_compare_csv_only_differences_to_a_file(filled, capsys, tmp_path):
    path = tmp_path / "cmp.csv"
    code, out, err = run(capsys, CONTOSO, "Fabrikam", "--only-differences", "--output", str(path))
    assert code == 0, err
    table = pl.read_csv(path.read_bytes()[3:])  # UTF-8 BOM
    assert table.height and "same" not in set(table["status"]) and f"wrote {table.height} settings" in out
    full = compare.compare_matrix(filled.current_settings([CONTOSO, FABRIKAM]), [CONTOSO, FABRIKAM])
    assert table.height == compare.only_differences(full).height


def test_compare_names_errors_in_one_line(filled, capsys):
    code, _, err = run(capsys, "Contoso")
    assert code == 2 and "two tenants" in err
    code, _, err = run(capsys, "Contoso", "Nobody Ltd")
    assert code == 2 and "Nobody Ltd" in err and "Traceback" not in err
