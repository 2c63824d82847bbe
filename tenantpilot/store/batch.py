"""Group writes: the writes of several runs finishing at once in one process (a consumer's K workers)
go through one open of the database file instead of one each.

Opening the file read-write and closing it (DuckDB checkpoints at the close) costs about as much as
writing a second night's snapshot of a tenant, and every open waits for the file while another
worker or process holds it. So a worker that has its snapshot ready hands the writes to
:func:`write_together`: if no write is under way it writes at once (a batch of one); if one is, its
writes wait, and the next leader takes every unit waiting then through one `Store.writing()` session.
Each unit keeps its own transaction (a failed snapshot fails its run only) and gets its own result
or error back. Measured by bench/bench_fleet.py (see the README's Scaling section).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from tenantpilot.store.connection import Connection, _add_wait

T = TypeVar("T")


@dataclass
class _Unit(Generic[T]):
    work: Callable[[], T]
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class _Group:
    def __init__(self) -> None:
        self.lock = threading.Lock()  # guards `waiting`
        self.leading = threading.Lock()  # held by the thread writing a batch
        self.waiting: list[_Unit[Any]] = []
        self.sizes: list[int] = []  # batch sizes written (for the worker log and tests)


_groups: dict[str, _Group] = {}
_groups_lock = threading.Lock()


def _group(store: Connection) -> _Group:
    with _groups_lock:
        return _groups.setdefault(str(store.path), _Group())


def write_together(store: Connection, work: Callable[[], T]) -> T:
    """Run `work` (Store writes) through a write session shared with the other units waiting at the same
    moment in this process; returns its result or raises its error. Never waits for a batch to fill: a
    unit alone is written at once."""
    group = _group(store)
    unit: _Unit[T] = _Unit(work)
    with group.lock:
        group.waiting.append(unit)
    while not unit.done.is_set():
        if group.leading.acquire(blocking=False):
            try:
                with group.lock:
                    batch, group.waiting = group.waiting, []
                if batch:
                    _write(store, batch)
                    group.sizes.append(len(batch))
            finally:
                group.leading.release()
        else:  # another thread writes: waiting for it is waiting for the file (the run's lock_wait phase)
            asked = time.monotonic()
            unit.done.wait(0.01)
            _add_wait(time.monotonic() - asked)
    if unit.error is not None:
        raise unit.error
    return unit.result


def _write(store: Connection, batch: list[_Unit[Any]]) -> None:
    try:
        with store.writing():
            for unit in batch:
                try:
                    unit.result = unit.work()
                except BaseException as exc:  # noqa: BLE001 - handed back to the unit's own thread, raised there
                    unit.error = exc
                unit.done.set()
    except BaseException as exc:  # noqa: BLE001 - the file could not be opened (or closed): the units not run get it
        for unit in batch:
            if not unit.done.is_set():
                unit.error = exc
                unit.done.set()


def batch_sizes(store: Connection) -> list[int]:
    """The sizes of the batches written for this file in this process so far."""
    return list(_group(store).sizes)
