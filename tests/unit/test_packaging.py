"""The install lists of the two README commands name exactly the dependencies of pyproject.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def requirement_lines(path: Path) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-r "):
            out.append(line.replace(" ", ""))
    return out


def test_requirements_match_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert sorted(requirement_lines(ROOT / "requirements.txt")) == sorted(project["dependencies"])
    assert sorted(requirement_lines(ROOT / "requirements-dev.txt")) == sorted(project["optional-dependencies"]["dev"])


def test_no_code_edits_sys_path() -> None:
    offenders = [str(p.relative_to(ROOT)) for folder in ("tenantpilot", "graphsim", "app_pages", "bench", "tests")
                 for p in (ROOT / folder).rglob("*.py") if "sys.path" in p.read_text() and p.name != Path(__file__).name]
    offenders += [name for name in ("streamlit_app.py", "huey_worker.py") if "sys.path" in (ROOT / name).read_text()]
    assert offenders == []
