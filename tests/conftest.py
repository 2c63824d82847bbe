"""Fixtures every test may use; none starts a server or a subprocess (those are in e2e/conftest.py).

The test process runs with a clean configuration: no credentials, no REDIS_URL (so any queue use
is the SQLite backend in a private folder), data and logs in a session tmp folder.

Downloads: in Streamlit 1.67 AppTest exposes `at.download_button` (label, disabled, proto) but not
the file: the bytes live in the per-run MemoryMediaFileStorage of a mock runtime that is thrown
away after each run, and callables (`data=lambda: ...`, built on click) are only registered with
`MediaFileManager.add_deferred`. The `downloads` fixture records both, so a test can read exactly
the bytes the browser would receive.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from apptest import fill
from streamlit.runtime.media_file_manager import MediaFileManager

from tenantpilot.store import Store

SESSION_DIR = Path(tempfile.mkdtemp(prefix="tenantpilot-tests-"))

# Variables a developer's shell might set that would leak into tests.
CLEARED = ("AZURE_AD_CLIENT_ID", "AZURE_AD_CLIENT_SECRET", "AZURE_AD_CLIENT_CERTIFICATE_PATH", "REDIS_URL",
           "TENANTPILOT_GRAPH_URL", "TENANTPILOT_AUTHORITY_HOST", "TENANTPILOT_DB", "TENANTPILOT_DATA_DIR")
for _var in CLEARED:
    os.environ.pop(_var, None)
os.environ["TENANTPILOT_DATA_DIR"] = str(SESSION_DIR / "data")
os.environ["TENANTPILOT_LOG_DIR"] = str(SESSION_DIR / "logs")


@pytest.fixture(scope="session", autouse=True)
def _session_dir() -> Iterator[Path]:
    from tenantpilot.config import settings

    settings.cache_clear()
    yield SESSION_DIR
    shutil.rmtree(SESSION_DIR, ignore_errors=True)


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A tmp DuckDB file the app is configured to use (TENANTPILOT_DB / TENANTPILOT_DATA_DIR)."""
    from tenantpilot.config import settings

    monkeypatch.setenv("TENANTPILOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TENANTPILOT_DB", str(tmp_path / "data" / "app.duckdb"))
    for var in ("AZURE_AD_CLIENT_ID", "AZURE_AD_CLIENT_SECRET"):
        monkeypatch.delenv(var, raising=False)
    settings.cache_clear()
    yield Store(tmp_path / "data" / "app.duckdb")
    settings.cache_clear()


@pytest.fixture
def filled(db: Store) -> Store:
    fill(db)
    return db


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, Callable[[], bytes]]:
    """file name -> function returning the bytes a download button serves (see module docstring)."""
    found: dict[str, Callable[[], bytes]] = {}
    real_add, real_deferred = MediaFileManager.add, MediaFileManager.add_deferred

    def add(self, data, mimetype, coordinates, file_name=None, is_for_static_download=False):
        if file_name:
            found[file_name] = lambda d=data: d if isinstance(d, bytes) else str(d).encode()
        return real_add(self, data, mimetype, coordinates, file_name=file_name,
                        is_for_static_download=is_for_static_download)

    def add_deferred(self, data_callable, mimetype, coordinates, file_name=None, *, element_id=""):
        if file_name:
            found[file_name] = data_callable
        return real_deferred(self, data_callable, mimetype, coordinates, file_name=file_name, element_id=element_id)

    monkeypatch.setattr(MediaFileManager, "add", add)
    monkeypatch.setattr(MediaFileManager, "add_deferred", add_deferred)
    return found
