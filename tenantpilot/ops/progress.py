"""Live progress and heartbeats, kept in the queue's own storage (Redis or SQLite), never DuckDB.

A running sync publishes {phase, done, total, ts, pid, host} under `progress:<run_id>` every
few seconds (a heartbeat thread) and on every phase change; the consumer publishes
`consumer:heartbeat`. Readers peek without consuming. A run whose heartbeat is older than
`stale_after_s` (or whose process on this host is gone) is treated as interrupted, unless it carries a
`lease_until` (a run handed between consumers, tenantpilot/ops/fetching.py): then only once that has passed.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

HOST = socket.gethostname()


def run_key(run_id: int) -> str:
    return f"progress:{run_id}"


CONSUMER_KEY = "consumer:heartbeat"


def read(huey, key: str) -> dict[str, Any] | None:
    try:
        return huey.get(key, peek=True)
    except Exception:  # noqa: BLE001 - unreachable queue: no progress to show
        return None


def run_progress(huey, run_id: int) -> dict[str, Any] | None:
    return read(huey, run_key(run_id))


def consumer_heartbeat(huey) -> dict[str, Any] | None:
    return read(huey, CONSUMER_KEY)


def waiting_text(beat: dict[str, Any] | None, now: float | None = None) -> str | None:
    """"waiting for Graph's throttle (N s)" while a published wait is still running, else None."""
    if not beat or not beat.get("waiting_s"):
        return None
    now = time.time() if now is None else now
    left = float(beat["waiting_s"]) - (now - float(beat.get("waiting_since", now)))
    if left <= 0:
        return None
    what = "Graph's throttle" if beat.get("waiting_for", "throttle") == "throttle" else str(beat["waiting_for"])
    return f"waiting for {what} ({left:.0f} s)"


def is_stale(beat: dict[str, Any] | None, stale_after_s: float, now: float | None = None) -> bool:
    """True when a heartbeat shows its process is gone (or it never beat)."""
    if not beat:
        return True
    now = time.time() if now is None else now
    if beat.get("lease_until") is not None:  # a run handed between consumers: alive until its lease ends
        return now > float(beat["lease_until"])
    if beat.get("host") == HOST and beat.get("pid") and not _pid_alive(int(beat["pid"])):
        return True
    return now - float(beat.get("ts", 0)) > stale_after_s


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Reporter:
    """Publishes one run's progress; `start()` begins a heartbeat thread, `stop()` ends it."""

    huey: Any
    run_id: int
    interval_s: float = 2.0
    state: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._keep = False  # True after fail(): the failure cause outlives the run's heartbeat
        self.state = {"phase": "starting", "done": 0, "total": None, "pid": os.getpid(), "host": HOST}
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{self.run_id}", daemon=True)

    def start(self) -> "Reporter":
        self._publish()
        self._thread.start()
        return self

    def update(self, phase: str, done: int = 0, total: int | None = None) -> None:
        with self._lock:
            changed = phase != self.state["phase"]
            self.state.update(phase=phase, done=done, total=total)
        if changed or done == total or done % 25 == 0:
            self._publish()

    def wait(self, seconds: float, reason: str = "throttle") -> None:
        """The sync is waiting (Graph's throttle): shown as "waiting for Graph's throttle (N s)"."""
        with self._lock:
            self.state.update(waiting_s=round(seconds, 1), waiting_for=reason, waiting_since=time.time())
        self._publish()

    def fail(self, error: str) -> None:
        """Publish the run's failure cause before the run row is written, so that a repair that
        finds the run still `running` fails it with this cause (the row write may be what failed)."""
        with self._lock:
            self.state.update(phase="failed", error=error)
        self._publish()
        self._keep = True

    def failed_recorded(self) -> None:
        self._keep = False

    def hand_over(self, phase: str, lease_s: float) -> None:
        """The run leaves this process alive (handed to another consumer): the heartbeat stops and the
        last word is `phase` with a lease; the run counts as stale only once the lease has ended."""
        self._stop.set()
        with self._lock:
            self.state.update(phase=phase, lease_until=time.time() + lease_s, pid=None)
        self._publish()
        self._keep = True

    def _publish(self) -> None:
        with self._lock:
            self.state["ts"] = time.time()
            snapshot = dict(self.state)
        try:
            self.huey.put(run_key(self.run_id), snapshot)
        except Exception:  # noqa: BLE001 - progress is best effort; the sync goes on
            pass

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._publish()

    def stop(self) -> None:
        self._stop.set()
        if self._keep:
            self._publish()  # last word: the failure cause, for the stale-run repair
            return
        try:
            self.huey.get(run_key(self.run_id))  # pop: finished runs keep no progress entry
        except Exception:  # noqa: BLE001
            pass
