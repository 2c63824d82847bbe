"""Opening the database file: the storage errors, the cross-process lock retry, the atomic creation of a
new file, the shared connection of `Store.reading()`, and the translation of every DuckDB error into a
StoreError that says what to do.

The errors (every one a StoreError; nothing DuckDB raises leaves the package as itself):

    StoreError            base: something about the database failed; the message says what to do
    ├── StoreBusy         another process held the file longer than TENANTPILOT_DB_LOCK_SECONDS
    ├── StoreCorrupt      the file is not a DuckDB database, or is damaged (truncated, overwritten)
    ├── StoreTooNew       the file was written by a newer TenantPilot (its schema version is higher)
    ├── StoreFull         the disk holding the file (or its write-ahead log) is full
    └── NotFound          a tenant or run that the call names does not exist

Concurrency: DuckDB lets one process hold the file read-write and then no other process may open
it at all. So every open is short-lived and retries the lock error with jittered backoff; inside
one process opens are serialised (DuckDB refuses a read-only and a read-write handle on the
same file in one process at the same time).

Reads never write: the first open in a process reads the file's schema version read-only; only a file
older than the code is migrated (a write), so a reader on a full disk, or on a file it may only
read, still reads. A file newer than the code is refused, untouched.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb


class StoreError(RuntimeError):
    """Base class of storage errors; the message says what to do."""


class StoreBusy(StoreError):
    """The database stayed locked by another process longer than the retry budget."""


class StoreCorrupt(StoreError):
    """The file is not a DuckDB database or is damaged: restore it or move it aside."""


class StoreTooNew(StoreError):
    """The file's schema version is newer than this code's: upgrade TenantPilot (the file is untouched)."""


class StoreFull(StoreError):
    """The disk holding the database is full: free space, then retry."""


class NotFound(StoreError):
    """A tenant or run the call names does not exist."""


MEMORY_LIMIT = "1GB"  # per connection; DuckDB spills to disk beyond it

_CORRUPT_SIGNS = ("not a valid duckdb database", "corrupt", "checksum", "failed to read database header",
                  "could not read enough bytes", "failed to read", "unexpected end of file")
_FULL_SIGNS = ("no space left on device", "disk quota exceeded", "not enough space")


def _first_line(exc: BaseException) -> str:
    """The error's text on one line (DuckDB's messages may span several)."""
    return " ".join(str(exc).split())


def translate(exc: BaseException, path: Path, *, opening: bool = False) -> StoreError:
    """The StoreError that says what to do about a DuckDB (or file system) error on `path`.
    `opening`: raised while opening the file, where any serialization error means a damaged file (a
    truncated file may also open and fail at its first read of a missing block)."""
    text = _first_line(exc)
    low = text.lower()
    if isinstance(exc, StoreError):
        return exc
    if any(s in low for s in _FULL_SIGNS):
        return StoreFull(f"The disk holding {path} is full ({text}): free space there, then try again")
    if any(s in low for s in _CORRUPT_SIGNS) or (opening and isinstance(exc, duckdb.SerializationException)):
        return StoreCorrupt(f"Database {path} is damaged or not a DuckDB database ({text}): restore it from a "
                            "backup, or move it aside and sync again to start a new one")
    if isinstance(exc, OSError):
        return StoreError(f"Cannot use database {path}: {text}; check that the folder exists and is writable")
    return StoreError(f"Database {path} failed: {text}; if it repeats, run `python -m tenantpilot health` "
                      "and check the file")


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "lock" in text.lower() and ("Could not set lock" in text or "Conflicting lock" in text)


_process_lock = threading.RLock()
_waited = threading.local()  # seconds this thread spent waiting for the file (other processes, other threads)


def lock_wait_s() -> float:
    """Seconds this thread has waited so far to open the file: for another process's lock (retries) and
    for another thread of this process (opens are serialised). A sync's "waiting for the database" phase
    is the difference across its writes."""
    return float(getattr(_waited, "total", 0.0))


def _add_wait(seconds: float) -> None:
    _waited.total = lock_wait_s() + seconds
_initialised: set[str] = set()  # files whose schema this process has checked (and migrated if older)
_sessions = threading.local()  # path -> the connection a reading()/writing() block shares (this thread)


def _one(cursor: duckdb.DuckDBPyConnection) -> tuple | None:
    """First row, consuming the result (duckdb 2 refuses register() while a result is unfinished)."""
    rows = cursor.fetchall()
    return rows[0] if rows else None


def _scalar(cursor: duckdb.DuckDBPyConnection) -> Any:
    """The one value of a query that always returns one row (count(*), nextval)."""
    row = _one(cursor)
    if row is None:
        raise StoreError("the database returned no row where one was certain")
    return row[0]


def _rollback(con: duckdb.DuckDBPyConnection, cause: BaseException) -> None:
    """Roll back, keeping the original error: a failed rollback (a full disk: "cannot rollback - no
    transaction is active") must never replace the cause the user needs to see."""
    try:
        con.execute("ROLLBACK")
    except duckdb.Error as exc:
        cause.add_note(f"(the rollback failed too: {exc})")


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Connection:
    """Handle on one DuckDB file. Cheap to create; holds no open connection. The schema steps
    (`_schema_check`, `_migrate`) come from migrations.Migrations."""

    path: Path
    lock_timeout_s: float = 60.0
    history_days: int = 400  # history older than this is dropped at each snapshot write

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    def _schema_check(self, con: duckdb.DuckDBPyConnection) -> bool:
        """True when the file must be migrated; raises StoreTooNew for a file newer than the code."""
        raise NotImplementedError

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        raise NotImplementedError

    @contextmanager
    def reading(self) -> Iterator[None]:
        """The reads inside share one connection (opening the file costs ~20 ms: a report or a page
        that makes a dozen reads opens it once). Nothing inside may write."""
        key = str(self.path)
        shared = getattr(_sessions, "open", {})
        if key in shared:
            yield
            return
        with self.connect() as con:
            _sessions.open = {**shared, key: con}
            try:
                yield
            finally:
                _sessions.open = shared

    @contextmanager
    def writing(self) -> Iterator[None]:
        """The units of work inside share one read-write connection: one open of the file and one
        checkpoint at its close for several of them (store/batch.py: several runs' snapshots). Each unit
        keeps its own transaction. Other processes wait for the file meanwhile, as for any write."""
        key = str(self.path)
        shared = getattr(_sessions, "open", {})
        if key in shared:
            if key not in getattr(_sessions, "writable", set()):
                raise StoreError("Store.writing() inside Store.reading(): the shared connection is for reads")
            yield
            return
        with self.connect(write=True) as con:
            _sessions.open, _sessions.writable = {**shared, key: con}, {*getattr(_sessions, "writable", set()), key}
            try:
                yield
            finally:
                _sessions.open = shared
                _sessions.writable = getattr(_sessions, "writable", set()) - {key}

    @contextmanager
    def connect(self, *, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the file for one short unit of work, retrying the cross-process lock (inside
        Store.reading(): its connection). DuckDB errors inside leave as StoreError."""
        key = str(self.path)
        shared = getattr(_sessions, "open", {}).get(key)
        if shared is not None:
            if write and key not in getattr(_sessions, "writable", set()):
                raise StoreError("a write inside Store.reading(): the shared connection is for reads")
            try:
                yield shared
            except duckdb.Error as exc:
                raise translate(exc, self.path) from exc
            return
        asked = time.monotonic()
        with _process_lock:
            _add_wait(time.monotonic() - asked)
            if not self.path.exists():
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise translate(exc, self.path) from exc
                self._create()
            if key not in _initialised:
                self._initialise(key)
            con = self._open(read_only=not write)
            try:
                # DuckDB's default is 80 % of RAM per process; the app and the worker share a machine
                con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
                yield con
            except duckdb.Error as exc:
                raise translate(exc, self.path) from exc
            finally:
                con.close()

    def _initialise(self, key: str) -> None:
        """Once per process and file: check the schema version read-only; migrate (read-write) only a
        file older than the code."""
        con = self._open(read_only=True)
        try:
            stale = self._schema_check(con)
        except duckdb.Error as exc:
            raise translate(exc, self.path, opening=True) from exc
        finally:
            con.close()
        if stale:
            con = self._open(read_only=False)
            try:
                if self._schema_check(con):  # another process may have migrated it meanwhile
                    self._migrate(con)
            except duckdb.Error as exc:
                raise translate(exc, self.path, opening=True) from exc
            finally:
                con.close()
        _initialised.add(key)

    def _open(self, *, read_only: bool) -> duckdb.DuckDBPyConnection:
        """duckdb.connect, retrying the cross-process lock until the budget is spent."""
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.005
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.Error as exc:
                if not _is_lock_error(exc):
                    raise translate(exc, self.path, opening=True) from exc
                if time.monotonic() > deadline:
                    raise StoreBusy(
                        f"Database {self.path} stayed locked by another process for "
                        f"{self.lock_timeout_s:.0f}s; try again, or check for a stuck process"
                    ) from exc
                pause = delay * (0.5 + random.random())
                time.sleep(pause)
                _add_wait(pause)
                delay = min(delay * 1.6, 0.25)

    def _create(self) -> None:
        """Create the database whole, or leave it to the process that won: the schema is built in a
        file of this process's own, then linked into place (atomic; fails if the name exists). DuckDB
        creating the file in place left a moment in which another process (a consumer starting beside
        a CLI) found the file but no database in it and failed with "not a valid DuckDB database"."""
        draft = self.path.with_name(f".{self.path.name}.{os.getpid()}-{threading.get_ident()}.creating")
        draft.unlink(missing_ok=True)
        try:
            with closing(duckdb.connect(str(draft))) as con:
                self._migrate(con)
            try:
                os.link(draft, self.path)
            except FileExistsError:
                pass  # another process created it first: its database is the one
        except (duckdb.Error, OSError) as exc:
            raise translate(exc, self.path) from exc
        finally:
            draft.unlink(missing_ok=True)
            draft.with_name(draft.name + ".wal").unlink(missing_ok=True)
