"""`.env.example` documents exactly the variables tenantpilot/config.py reads: no removed one, none missing."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def read_by_config() -> set[str]:
    source = (ROOT / "tenantpilot" / "config.py").read_text(encoding="utf-8")
    return set(re.findall(r"""\bget\(\s*"([A-Z][A-Z0-9_]+)"\s*\)""", source))


def documented() -> set[str]:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    return set(re.findall(r"^#\s*([A-Z][A-Z0-9_]+)=", text, flags=re.M))


def test_config_reads_what_the_scanner_finds() -> None:
    # the scanner itself: known names are found (a regex that finds nothing would pass the comparison)
    assert {"TENANTPILOT_DB", "REDIS_URL", "TENANTPILOT_HISTORY_DAYS", "TENANTPILOT_WORKERS"} <= read_by_config()


def test_env_example_lists_exactly_what_config_reads() -> None:
    read, listed = read_by_config(), documented()
    assert not listed - read, f".env.example documents variables config.py never reads: {sorted(listed - read)}"
    assert not read - listed, f"config.py reads variables .env.example does not document: {sorted(read - listed)}"
