"""TENANTPILOT_CSV_SEPARATOR: every CSV the CLI writes (export, compare, changes, deviations list) uses
it, with the BOM and the formula guard as before; a malformed value stops with one line naming it."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tenantpilot import cli
from tenantpilot.analysis import export
from tenantpilot.config import ConfigError, load_settings, settings
from tenantpilot.store import Store
from tests.unit.test_report import build

HOSTILE = "=1;2,3"  # a formula holding both separators


def _rows(data: bytes, separator: str) -> list[list[str]]:
    assert data.startswith(export.BOM)
    return list(csv.reader(io.StringIO(data[len(export.BOM):].decode(), newline=""), delimiter=separator))


@pytest.mark.parametrize(("value", "separator"), [(None, ","), (",", ","), (";", ";"), ("semicolon", ";")])
def test_every_cli_csv_uses_the_separator(db: Store, tmp_path: Path, capsys, monkeypatch, value, separator):
    if value is None:
        monkeypatch.delenv("TENANTPILOT_CSV_SEPARATOR", raising=False)
    else:
        monkeypatch.setenv("TENANTPILOT_CSV_SEPARATOR", value)
    settings.cache_clear()
    build(db, contoso=HOSTILE)
    outputs = {}
    for name, args in {"export": ["export", "--tenant", "Fabrikam", "--format", "csv"],
                       "compare": ["compare", "Fabrikam", "--baseline", "CIS L1", "--format", "csv"],
                       "changes": ["changes", "--since", "7d", "--format", "csv"]}.items():
        path = tmp_path / f"{name}.csv"
        assert cli.main([*args, "--output", str(path)]) == 0, capsys.readouterr().err
        outputs[name] = path.read_bytes()
    capsys.readouterr()
    assert cli.main(["deviations", "list", "--format", "csv"]) == 0
    outputs["deviations"] = capsys.readouterr().out.encode()
    other = ";" if separator == "," else ","
    for name, data in outputs.items():
        rows = _rows(data, separator)
        assert len(rows) > 1 and len({len(r) for r in rows}) == 1, name  # one table: every row as wide
        header = data[len(export.BOM):].split(b"\n")[0].decode()
        assert separator in header and other not in header, name
    compare_rows = _rows(outputs["compare"], separator)
    assert "status" in compare_rows[0] and any("Name of pin" in r for r in compare_rows)
    changes = _rows(outputs["changes"], separator)
    tenant = changes[0].index("tenant")
    assert "'" + HOSTILE in {r[tenant] for r in changes[1:]}  # guarded, and one cell although it holds both


@pytest.mark.parametrize("value", ["|", "tab", ";;", "."])
def test_a_malformed_separator_is_refused_naming_the_variable(value):
    with pytest.raises(ConfigError, match="TENANTPILOT_CSV_SEPARATOR=.* expected , or ;"):
        load_settings({"TENANTPILOT_CSV_SEPARATOR": value}, dotenv=False)
