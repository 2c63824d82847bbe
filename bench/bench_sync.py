"""Sync benchmark: a 1,000-policy tenant against the Graph simulator with 50 ms latency and
Intune's throttle (1000 requests per 20 s per tenant), fast plan vs the seed's sequential plan,
then flatten + store of 1,000,000 setting rows. Prints figures; asserts nothing about time.

    .venv/bin/python bench/bench_sync.py [--policies 1000] [--latency 0.05] [--rows 1000000]

Floor (the best any client could do against this server):
  latency floor  = latency x (pages of the longest list + 1 follow-up round + 1 nested round)
                   -- the chain of requests that depend on each other, with unlimited parallelism;
  throttle floor = window x floor((Graph calls - 1) / limit) + latency
                   -- the last call cannot be admitted before enough windows have passed;
  floor          = max(latency floor, throttle floor).
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tenantpilot.graph.auth import TokenProvider  # noqa: E402
from tenantpilot.graph.client import GraphClient  # noqa: E402
from tenantpilot.graph.fetch import fetch_tenant  # noqa: E402
from tenantpilot.graph.policy_types import POLICY_TYPES  # noqa: E402
from tenantpilot.simulator.server import GraphSimulator  # noqa: E402
from tenantpilot.simulator.tenants import build_tenant  # noqa: E402

TENANT = "44444444-4444-4444-8444-444444444444"
LIMIT, WINDOW = 1000, 20.0


def client_for(sim: GraphSimulator, concurrency: int) -> GraphClient:
    tokens = TokenProvider(TENANT, sim.client_id, client_secret=sim.client_secret, authority_host=sim.url,
                           graph_url=sim.url, verify=str(sim.ca_path))
    return GraphClient(tokens, base_url=sim.url, verify=str(sim.ca_path), max_concurrency=concurrency)


def run(sim: GraphSimulator, mode: str, concurrency: int):
    sim.reset_counters()
    sim.reset_throttle()
    client = client_for(sim, concurrency)
    t0 = time.perf_counter()
    result = fetch_tenant(client, mode=mode)
    wall = time.perf_counter() - t0
    return result, wall, client.stats, sim.counters


def floor_seconds(tenant, latency: float, calls: int) -> tuple[float, float, float]:
    counts = tenant.counts()
    longest = max(math.ceil(n / 25) for n in counts.values() if n)
    latency_floor = latency * (longest + 2)
    throttle_floor = WINDOW * ((calls - 1) // LIMIT) + latency
    return latency_floor, throttle_floor, max(latency_floor, throttle_floor)


def bench_fetch(policies: int, latency: float, concurrency: int) -> None:
    tenant = build_tenant(TENANT, "Bench", n_policies=policies, seed=3)
    print(f"tenant: {sum(tenant.counts().values())} policies {tenant.counts()}")
    with GraphSimulator({TENANT: tenant}, latency=latency, throttle=(LIMIT, WINDOW)) as sim:
        rows = []
        for mode in ("fast", "sequential"):
            result, wall, stats, counters = run(sim, mode, concurrency)
            rows.append((mode, wall, result, stats, counters))
            print(f"\n[{mode}] {len(result.policies)} policies in {wall:.2f} s; HTTP requests {result.requests} "
                  f"(retries {stats.retries}, throttled {stats.throttled}, failed {stats.failed}); Graph calls "
                  f"{counters['graph_request_count']} by status {counters['graph_requests_by_status']}; "
                  f"warnings {len(result.warnings)}")
        fast, seq = rows[0], rows[1]
        calls = fast[4]["graph_request_count"]
        lat_floor, thr_floor, floor = floor_seconds(tenant, latency, calls)
        print(f"\nGraph calls counted against the throttle (fast): {calls}")
        print(f"floor: latency {lat_floor:.2f} s, throttle {thr_floor:.2f} s -> {floor:.2f} s")
        print(f"fast {fast[1]:.2f} s = {fast[1] / floor:.2f}x floor; sequential {seq[1]:.2f} s = "
              f"{seq[1] / fast[1]:.1f}x slower than fast")


def bench_store(rows_wanted: int) -> None:
    """Child process, so peak RSS is this part's own."""
    code = f"""
import resource, sys, tempfile, time
from pathlib import Path
sys.path.insert(0, {str(ROOT)!r})
from tenantpilot.flatten.files import load_export
from tenantpilot.snapshot import build_frames, write_parts
from tenantpilot.store import Store
corpus = load_export(Path({str(ROOT / 'tests/fixtures/corpus')!r}))
base = list(corpus.policies)
per_copy = build_frames(base).settings.height
copies = -(-{rows_wanted} // per_copy)
policies = []
for i in range(copies):
    for f, p in base:
        q = dict(p); q["id"] = f"copy{{i}}-" + str(p.get("id") or p.get("displayName") or p.get("name"))
        policies.append((f, q))
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tmp = Path(tempfile.mkdtemp())
store = Store(tmp / "bench.duckdb")
store.add_tenant("bench", "Bench")
run_id, _ = store.create_run_unless_active("bench")
store.start_run(run_id)
t0 = time.perf_counter()
parts = write_parts(policies, tmp / "parts")
t1 = time.perf_counter()
store.write_snapshot(run_id, "bench", parts=parts, status="succeeded", request_count=0)
t2 = time.perf_counter()
n = parts.counts["settings"]
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"flatten {{n:,}} rows from {{len(policies):,}} policies to Parquet parts: {{t1 - t0:.2f}} s "
      f"({{n / (t1 - t0):,.0f}} rows/s)")
print(f"store (one transaction, bulk insert from Parquet): {{t2 - t1:.2f}} s ({{n / (t2 - t1):,.0f}} rows/s)")
print(f"flatten + store: {{t2 - t0:.2f}} s ({{n / (t2 - t0):,.0f}} rows/s); peak RSS {{rss / 1024:,.0f}} MB "
      f"(of which the input policies in memory: {{rss0 / 1024:,.0f}} MB)")
assert store.current_settings(["bench"]).height == n
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--policies", type=int, default=1000)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--skip-fetch", action="store_true")
    args = ap.parse_args()
    if not args.skip_fetch:
        bench_fetch(args.policies, args.latency, args.concurrency)
    print()
    bench_store(args.rows)


if __name__ == "__main__":
    main()
