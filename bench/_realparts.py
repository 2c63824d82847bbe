"""Loads the tests' real-process helpers (tests/e2e/realparts.py: consumers, free ports) for the benchmarks, by file, so no code edits the import path."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_PATH = Path(__file__).resolve().parent.parent / "tests" / "e2e" / "realparts.py"


def realparts() -> ModuleType:
    """The tests' realparts module, loaded once."""
    if "realparts" in sys.modules:
        return sys.modules["realparts"]
    spec = importlib.util.spec_from_file_location("realparts", _PATH)
    assert spec is not None and spec.loader is not None, f"cannot load {_PATH}"
    module = importlib.util.module_from_spec(spec)
    sys.modules["realparts"] = module
    spec.loader.exec_module(module)
    return module
