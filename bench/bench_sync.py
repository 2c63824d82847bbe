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
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import requests  # noqa: E402

from tenantpilot.graph.auth import TokenProvider  # noqa: E402
from tenantpilot.graph.client import GraphClient  # noqa: E402
from tenantpilot.graph.fetch import fetch_tenant  # noqa: E402

LIMIT, WINDOW = 1000, 20.0


@contextmanager
def simulator(policies: int, latency: float) -> Iterator[dict]:
    """The Graph simulator in its own process, as Graph is (in-process it would share our GIL)."""
    data = Path(tempfile.mkdtemp(prefix="bench-sim-"))
    proc = subprocess.Popen([sys.executable, "-m", "graphsim", "--port", "0", "--data-dir", str(data),
                             "--tenants", "1", "--policies", str(policies), "--latency", str(latency),
                             "--seed", "3", "--throttle", f"{LIMIT}/{WINDOW:g}"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        info_path = data / "simulator.json"
        deadline = time.monotonic() + 60
        while not info_path.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the simulator did not start")
            time.sleep(0.1)
        time.sleep(0.2)
        yield json.loads(info_path.read_text())
    finally:
        proc.terminate()
        proc.wait(10)


def control(info: dict, method: str, path: str) -> dict:
    return requests.request(method, info["url"] + path, verify=info["ca_path"], timeout=30).json()


def client_for(info: dict, tenant: str, concurrency: int) -> GraphClient:
    tokens = TokenProvider(tenant, info["client_id"], client_secret=info["client_secret"],
                           authority_host=info["url"], graph_url=info["url"], verify=info["ca_path"])
    return GraphClient(tokens, base_url=info["url"], verify=info["ca_path"], max_concurrency=concurrency)


def run(info: dict, tenant: str, mode: str, concurrency: int):
    control(info, "POST", "/_sim/reset")  # counters and throttle windows start empty
    client = client_for(info, tenant, concurrency)
    t0 = time.perf_counter()
    result = fetch_tenant(client, mode=mode)
    wall = time.perf_counter() - t0
    return result, wall, client.stats, control(info, "GET", "/_sim/state")["counters"]


def floor_seconds(counts: dict[str, int], latency: float, calls: int) -> tuple[float, float, float]:
    longest = max(math.ceil(n / 25) for n in counts.values() if n)
    latency_floor = latency * (longest + 2)
    throttle_floor = WINDOW * ((calls - 1) // LIMIT) + latency
    return latency_floor, throttle_floor, max(latency_floor, throttle_floor)


def bench_fetch(policies: int, latency: float, concurrency: int) -> None:
    with simulator(policies, latency) as info:
        state = control(info, "GET", "/_sim/state")["tenants"][0]
        tenant, counts = state["tenant_id"], state["policy_counts"]
        print(f"tenant: {sum(counts.values())} policies {counts}")
        rows = []
        for mode in ("fast", "sequential"):
            result, wall, stats, counters = run(info, tenant, mode, concurrency)
            rows.append((mode, wall, result, stats, counters))
            print(f"\n[{mode}] {len(result.policies)} policies in {wall:.2f} s; HTTP requests {result.requests} "
                  f"(retries {stats.retries}, throttled {stats.throttled}, failed {stats.failed}); Graph calls "
                  f"{counters['graph_request_count']} by status {counters['graph_requests_by_status']}; "
                  f"warnings {len(result.warnings)}")
        fast, seq = rows[0], rows[1]
        calls = fast[4]["graph_request_count"]
        lat_floor, thr_floor, floor = floor_seconds(counts, latency, calls)
        print(f"\nGraph calls counted against the throttle (fast): {calls}")
        print(f"floor: latency {lat_floor:.2f} s, throttle {thr_floor:.2f} s -> {floor:.2f} s")
        print(f"fast {fast[1]:.2f} s = {fast[1] / floor:.2f}x floor; sequential {seq[1]:.2f} s = "
              f"{seq[1] / fast[1]:.1f}x slower than fast")


def bench_store(rows_wanted: int) -> None:
    """Child process, so peak RSS is this part's own."""
    code = f"""
import resource, sys, tempfile, time
from pathlib import Path
from tenantpilot.flatten.files import load_export
from tenantpilot.snapshot import build_frames, write_parts
from tenantpilot.store import Store
from graphsim import CORPUS_DIR
corpus = load_export(CORPUS_DIR)
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
