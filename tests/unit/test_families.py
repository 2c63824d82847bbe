"""The families table (tenantpilot/families.py) is the one place that spells a family or its label."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tenantpilot import families
from tenantpilot.flatten import detect_family

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [p for d in ("tenantpilot", "app_pages") for p in (ROOT / d).rglob("*.py")] + [ROOT / "streamlit_app.py"]


def test_labels_are_spelled_in_families_py_only():
    """No module but families.py writes a family label or a family id as a string literal."""
    words = {f.label for f in families.TABLE} | {f.id for f in families.TABLE if f.id != families.UNKNOWN}
    literal = re.compile("|".join(rf"""["']{re.escape(w)}["']""" for w in sorted(words, key=len, reverse=True)))
    found = []
    for path in SOURCES:
        if path.name == "families.py":
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if literal.search(line) and not line.lstrip().startswith("#"):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert found == []


def test_table_is_consistent():
    assert len(families.FAMILIES) == len(set(families.FAMILIES))
    assert len(set(families.LABELS.values())) == len(families.LABELS)
    # a collection belongs to one family only
    seen: dict[str, str] = {}
    for f in families.TABLE:
        for c in f.collections:
            assert seen.setdefault(c, f.id) == f.id, c
    assert families.label("nonsense") == "nonsense" and families.label("") == "Other"


@pytest.mark.parametrize("family", [f for f in families.TABLE if f.collections], ids=lambda f: f.id)
def test_every_collection_context_detects_its_family(family):
    for collection in family.collections:
        context = f"https://graph.microsoft.com/beta/$metadata#deviceManagement/{collection}/$entity"
        assert detect_family({"@odata.context": context, "displayName": "x"}) == family.id
