"""Schedule-tick benchmark: how long the consumer's periodic task takes to queue a night of N tenants
all due at one slot, on a real DuckDB file and a real queue (SQLite, or a private redis-server with
--redis), and whether a repair meanwhile takes runs being queued for lost ones. Prints figures; asserts
nothing about time.

    .venv/bin/python bench/bench_tick.py [--tenants 1000] [--redis] [--history 0]

--history N gives every tenant N earlier done runs (a database that has lived a while: the tick reads
the runs table). The code under test is whatever `tenantpilot` imports: run it with PYTHONPATH=<another
checkout> to measure that checkout's tick (the setup writes through SQL both versions share).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

from _realparts import realparts

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--redis", action="store_true", help="a private redis-server instead of the SQLite queue")
    parser.add_argument("--history", type=int, default=0, help="earlier done runs per tenant")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-tick-"))
    redis_proc = None
    try:
        if args.redis:
            free_port, wait_port = realparts().free_port, realparts().wait_port

            port = free_port()
            redis_proc = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(port),
                                           "--save", "", "--appendonly", "no", "--dir", str(work)],
                                          stdout=subprocess.DEVNULL)
            wait_port(port)
            os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        return run(work, args.tenants, args.history)
    finally:
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, n: int, history: int) -> int:
    import tenantpilot
    from tenantpilot.config import load_settings
    from tenantpilot.ops import queue
    from tenantpilot.store import Store

    db = work / "data" / "tenantpilot.duckdb"
    store = Store(db)
    tenants = [f"{i:08x}-0000-4000-8000-{i:012x}" for i in range(1, n + 1)]
    t0 = time.perf_counter()
    with store.connect(write=True) as con:  # setup: every tenant in one transaction (not measured)
        con.execute("BEGIN")
        for tid in tenants:
            con.execute("INSERT INTO tenants VALUES (?, ?, 'tenant', now() - INTERVAL 1 DAY)", [tid, f"T {tid[:8]}"])
            for _ in range(history):
                con.execute("INSERT INTO sync_runs (run_id, tenant_id, status, queued_at, started_at, finished_at, "
                            "source) SELECT nextval('run_seq'), ?, 'succeeded', now(), now(), now(), 'graph'", [tid])
        con.execute("COMMIT")
    setup_s = time.perf_counter() - t0
    slot = (datetime.now().astimezone() - timedelta(minutes=10)).replace(second=0, microsecond=0)  # missed: all due
    cfg = load_settings({"TENANTPILOT_DATA_DIR": str(work / "data"), "REDIS_URL": os.environ.get("REDIS_URL"),
                         "TENANTPILOT_SYNC_SCHEDULE": f"{slot.minute} {slot.hour} * * *",
                         "TENANTPILOT_SCHEDULE_JITTER_SECONDS": "300"}, dotenv=False)
    print(f"code: {Path(tenantpilot.__file__).parent.parent}  queue: {cfg.queue_backend}  tenants: {n}  "
          f"history: {history} runs each  (setup {setup_s:.1f} s)")

    # a repair running beside the tick, as the consumer's heartbeat thread does every 10 s (here: back to back)
    requeued: list[int] = []
    repairs = 0
    stop = threading.Event()

    def repairing() -> None:
        nonlocal repairs
        while not stop.is_set():
            requeued.extend(queue.requeue_orphans(store, cfg))
            repairs += 1

    repairer = threading.Thread(target=repairing, daemon=True)
    repairer.start()
    t0 = time.perf_counter()
    fired = queue.schedule_tick(cfg, store, datetime.now().astimezone())
    tick_s = time.perf_counter() - t0
    stop.set()
    repairer.join()
    counts = queue.counts(cfg)
    runs = store.runs(statuses=["queued"], limit=n + 10)
    print(f"tick: {tick_s:.2f} s for {len(fired)} tenants fired ({sum(f['created'] for f in fired)} runs created, "
          f"{runs.height} queued; queue: {counts['pending']} pending + {counts['scheduled']} scheduled)")
    print(f"repairs beside the tick: {repairs}; runs taken for lost and queued again: {len(set(requeued))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
