"""Benchmark: working out 1,000 tenants' schedules (issue 18, row 6): the consumer's tick (schedule.plan)
and the schedule view (`schedule show`, the Tenants page: schedule.overview), for the default cron, one
tenant on `0 0 29 2 1` (29 February on a Monday) among them, and every tenant on it. Prints seconds.

    .venv/bin/python scripts/bench_schedule.py
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from tenantpilot.ops import schedule

TENANTS = 1000
RARE = "0 0 29 2 1"


def rows(own: dict[int, str]) -> list[dict]:
    added = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return [{"tenant_id": f"{i:08d}-0000-4000-8000-000000000000", "display_name": f"Tenant {i}", "kind": "tenant",
             "added_at": added, "schedule": own.get(i), "schedule_set_at": added if i in own else None,
             "last_slot": added + timedelta(days=i % 30)} for i in range(TENANTS)]


def timed(fn) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    now = datetime(2026, 12, 7, 3, 0, tzinfo=timezone.utc)
    cases = {"default cron for all": rows({}), f"one tenant on {RARE!r}": rows({500: RARE}),
             f"every tenant on {RARE!r}": rows({i: RARE for i in range(TENANTS)})}
    print(f"{TENANTS:,} tenants; best of 3 runs, seconds")
    print(f"{'case':34} {'tick (plan)':>12} {'view (overview)':>16}")
    for name, data in cases.items():
        tick = timed(lambda data=data: schedule.plan(data, schedule.DEFAULT_SCHEDULE, 300, now, tz=timezone.utc))
        view = timed(lambda data=data: schedule.overview(data, schedule.DEFAULT_SCHEDULE, 300, now, tz=timezone.utc))
        print(f"{name:34} {tick:12.3f} {view:16.3f}")


if __name__ == "__main__":
    main()
