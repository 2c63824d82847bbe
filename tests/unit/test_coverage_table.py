"""The README's coverage table says exactly what the policy-type table reads: every policy type is
named in it, every name in it is a policy type, and its summary line counts its own rows."""

from __future__ import annotations

import re
from pathlib import Path

from tenantpilot.graph.policy_types import POLICY_TYPES

README = Path(__file__).resolve().parents[2] / "README.md"


def _rows() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Coverage\n", 1)[1].split("\n## ", 1)[0]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in section.splitlines() if line.startswith("| ")]
    assert rows[0][:3] == ["IntuneCD module", "Graph (beta unless said)", "policy types"]
    return rows[1:]


def test_the_coverage_table_names_exactly_the_policy_types() -> None:
    named = {k for row in _rows() for k in re.findall(r"`([A-Za-z]+)`", row[2])}
    assert named == {t.key for t in POLICY_TYPES}


def test_each_row_is_read_or_says_why_not() -> None:
    for module, _graph, types, why in _rows():
        assert module, "a row without a module: use — for types IntuneCD has no module for"
        assert (types != "—") != bool(why), (module, types, why)


def test_the_summary_counts_the_rows() -> None:
    rows = _rows()
    modules = [r for r in rows if r[0] != "—"]
    read = [r for r in modules if r[2] != "—"]
    extra = [r for r in rows if r[0] == "—"]
    text = README.read_text(encoding="utf-8")
    assert f"**Read: {len(read)} of {len(modules)} IntuneCD modules**, plus {len(extra)} types" in text
    assert f"{len(modules)} modules;" in text
    assert len({r[0] for r in modules}) == len(modules)  # one row per module
