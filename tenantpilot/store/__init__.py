"""Storage: the only code that opens the database (DuckDB) or writes SQL. One front, `Store`, built by
`open_store(settings)`; every error leaves as a StoreError subclass that says what to do.

The package, by concept (each module's first lines say what it owns):
  connection  the errors, opening the file (lock retry, atomic creation, shared reads), error translation
  schema      the tables, row shapes and views; the SQL pieces reads and writes build on
  migrations  schema versions: steps for older files, refusal of newer ones
  writes      one sync's snapshot, written as what changed, in one transaction
  current     current rows and the Explore reads (the one place Explore's filters run)
  history     what changed between runs, read from the row ranges
  registry    tenants, runs, schedules, deviations, audit events, definition and name caches

A second backend implements the same public methods and passes tests/contract/test_store_contract.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tenantpilot.store.access import AccessStore
from tenantpilot.store.alignments import AlignmentStore
from tenantpilot.store.connection import (
    MEMORY_LIMIT,
    NotFound,
    StoreBusy,
    StoreCorrupt,
    StoreError,
    StoreFull,
    StoreTooNew,
)
from tenantpilot.store.current import FACET_COLUMNS, SEARCH_COLUMNS, Filters, Reads
from tenantpilot.store.history import History
from tenantpilot.store.migrations import MIGRATIONS, SCHEMA_VERSION, Migrations, load_closed_settings, run_migrations
from tenantpilot.store.registry import AddResult, Registry
from tenantpilot.store.schema import DDL, SEARCH_TEXTS, TEXT_COLUMNS, VERSION_COLUMNS
from tenantpilot.store.writes import ACTIVE, DONE_OK, TypeOutcome, Writes

if TYPE_CHECKING:
    from tenantpilot.config import Settings

__all__ = [
    "ACTIVE", "DDL", "DONE_OK", "FACET_COLUMNS", "MEMORY_LIMIT", "MIGRATIONS", "SCHEMA_VERSION", "SEARCH_COLUMNS",
    "SEARCH_TEXTS", "TEXT_COLUMNS", "VERSION_COLUMNS", "AddResult", "Filters", "NotFound", "Store", "StoreBusy",
    "StoreCorrupt", "StoreError", "StoreFull", "StoreTooNew", "TypeOutcome", "load_closed_settings", "open_store",
    "run_migrations",
]


@dataclass
class Store(Registry, Writes, Reads, History, Migrations, AccessStore, AlignmentStore):
    """Handle on one database file (path, lock budget, days of history kept). Cheap to create; holds no
    open connection. Get one with open_store(settings)."""


def open_store(cfg: Settings | None = None) -> Store:
    """The store of these settings (default: the process's), honouring every storage setting: the one
    way product code gets a Store. Cheap: a Store holds no open connection."""
    from tenantpilot.config import settings

    cfg = cfg or settings()
    return Store(cfg.db_path, cfg.db_lock_timeout_s, cfg.history_days)
