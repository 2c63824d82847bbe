"""Sync benchmark: fetch a tenant from the Graph simulator (in its own process, 50 ms latency,
Intune's per-family throttle) the way a sync does, in the cases real Graph puts us in, then the
setting-definitions step before/after, then flatten + store of 1,000,000 setting rows. Prints
figures; asserts nothing about time.

    .venv/bin/python bench/bench_sync.py [--policies 1000] [--big 6000] [--latency 0.05] [--runs 1]
                                         [--sequential] [--skip-store] [--rows 1000000]

Cases (the client paces itself to the published limits and runs with a 30 min deadline):
  (a) the published limits: 1,000 requests per 20 s per family per app (2,000 for scripts);
  (b) another app already uses 80 % of the tenant's budget: 200 per 20 s (10 requests/s) left;
  (c) as (b), and the 429s carry no Retry-After (the client backs off min(2**n * 10, 60) s);
  (d) a --big tenant (default 6,000 policies) at the published limits.
Coverage (issue 19): the same simulated tenant (it holds remediations, compliance scripts, apps, scope
tags and conditional access, as the demo tenants do) read with every type of the table, then with the
table as it was before those types (families scope "name" left out), one after the other in the same
run: what reading them costs in requests and time. --coverage-only runs just that.

Floors (the best any client could do against this server):
  latency floor  = latency x (pages of the longest list + 1 follow-up round + 1 nested round);
  throttle floor = max over families of window x floor((calls - 1) / allowed per window)
                   -- the last call of a family cannot be admitted before that many windows passed;
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tenantpilot.families import NAME_KEYED, SCRIPT
from tenantpilot.flatten import referenced_definition_ids
from tenantpilot.graph.auth import TokenProvider
from tenantpilot.graph.client import GraphClient
from tenantpilot.graph.directory import fetch_names
from tenantpilot.graph.errors import GraphError
from tenantpilot.graph.fetch import (
    FetchResult,
    covering_policies,
    fetch_definitions,
    fetch_expanded_settings,
    fetch_tenant,
)
from tenantpilot.graph.policy_types import POLICY_TYPES, without_expanded_definitions
from tenantpilot.graph.throttle import PUBLISHED_LIMITS
from tenantpilot.sync.run import ca_ids_to_read

ROOT = Path(__file__).resolve().parent.parent
DEADLINE_S = 1800.0


@contextmanager
def simulator(policies: int, latency: float) -> Iterator[dict]:
    """The Graph simulator in its own process, as Graph is (in-process it would share our GIL)."""
    data = Path(tempfile.mkdtemp(prefix="bench-sim-"))
    proc = subprocess.Popen([sys.executable, "-m", "graphsim", "--port", "0", "--data-dir", str(data),
                             "--tenants", "1", "--policies", str(policies), "--latency", str(latency),
                             "--seed", "3"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        info_path = data / "simulator.json"
        deadline = time.monotonic() + 120
        while not info_path.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the simulator did not start")
            time.sleep(0.1)
        time.sleep(0.2)
        yield json.loads(info_path.read_text())
    finally:
        proc.terminate()
        proc.wait(10)


def control(info: dict, method: str, path: str, body: Any = None) -> dict:
    return requests.request(method, info["url"] + path, json=body, verify=info["ca_path"], timeout=30).json()


def client_for(info: dict, tenant: str, concurrency: int, waits: list[tuple[float, str]]) -> GraphClient:
    tokens = TokenProvider(tenant, info["client_id"], client_secret=info["client_secret"],
                           authority_host=info["url"], graph_url=info["url"], verify=info["ca_path"])
    return GraphClient(tokens, base_url=info["url"], verify=info["ca_path"], max_concurrency=concurrency,
                       deadline=time.monotonic() + DEADLINE_S, on_wait=lambda s, why: waits.append((s, why)))


@dataclass
class Run:
    result: FetchResult | None
    error: str
    wall: float
    stats: dict[str, float]
    counters: dict[str, Any]
    waits: list[tuple[float, str]]
    client: GraphClient


def fetch(info: dict, tenant: str, concurrency: int, mode: str = "fast", types=POLICY_TYPES) -> Run:
    """One fetch on a fresh client, with the simulator's counters and throttle windows emptied
    first. The client stays open (a sync goes on to fetch definitions with it): close it."""
    control(info, "POST", "/_sim/reset")
    waits: list[tuple[float, str]] = []
    client = client_for(info, tenant, concurrency, waits)
    t0 = time.perf_counter()
    try:
        result, error = fetch_tenant(client, mode=mode, types=types), ""  # type: ignore[arg-type]
    except GraphError as exc:
        result, error = None, str(exc)
    wall = time.perf_counter() - t0
    return Run(result, error, wall, client.stats.snapshot(), control(info, "GET", "/_sim/state")["counters"],
               waits, client)


def floors(counts: dict[str, int], latency: float, by_family: dict[str, int],
           allowed: dict[str, tuple[int, float]]) -> tuple[float, float]:
    longest = max(math.ceil(n / 25) for n in counts.values() if n)
    latency_floor = latency * (longest + 2)
    throttle_floor = 0.0
    for family, calls in by_family.items():
        limit, window = allowed.get(family, (0, 0.0))
        if calls and limit:
            throttle_floor = max(throttle_floor, window * ((calls - 1) // limit) + latency)
    return latency_floor, throttle_floor


def report(name: str, runs: list[Run], counts: dict[str, int], latency: float,
           allowed: dict[str, tuple[int, float]]) -> None:
    failed = [r for r in runs if r.result is None or r.result.skipped or r.stats["failed"]]
    last = runs[-1]
    by_family = {k: v for k, v in last.counters.get("graph_admitted_by_family", {}).items()}
    lat_floor, thr_floor = floors(counts, latency, by_family, allowed)
    floor = max(lat_floor, thr_floor)
    walls = ", ".join(f"{r.wall:.1f}" for r in runs)
    print(f"\n({name}) {len(runs)} run(s), {len(failed)} failed"
          + (f": {failed[0].error or failed[0].result.warnings if failed[0].result else failed[0].error}"
             if failed else ""))
    if last.result is not None:
        print(f"    {len(last.result.policies)} policies; wall {walls} s; floor {floor:.1f} s (throttle "
              f"{thr_floor:.1f} s, latency {lat_floor:.2f} s) -> {last.wall / floor:.2f}x floor")
    s = last.stats
    print(f"    HTTP requests {s['requests']:.0f} carrying {last.counters['graph_request_count']} Graph calls "
          f"(by status {last.counters['graph_requests_by_status']}); retries {s['retries']:.0f}, throttled "
          f"{s['throttled']:.0f}, failed {s['failed']:.0f}; waited {s['waited_s']:.0f} s summed over threads "
          f"(pacing {s['paced_s']:.0f} s); on_wait calls {len(last.waits)}")
    print(f"    Graph calls admitted per family: {by_family}")


def bench_fetch(args: argparse.Namespace) -> None:
    published = dict(PUBLISHED_LIMITS)
    share = {k: (max(1, int(v[0] * 0.2)), v[1]) for k, v in published.items()}
    cases = [
        ("a", "published limits", {"family_throttle": True}, published),
        ("b", "sharing the budget: 10 requests/s left", {"family_throttle": True, "budget_share": 0.2}, share),
        ("c", "as (b), 429s without Retry-After",
         {"family_throttle": True, "budget_share": 0.2, "drop_retry_after": True}, share),
    ]
    with simulator(args.policies, args.latency) as info:
        state = control(info, "GET", "/_sim/state")["tenants"][0]
        tenant, counts = state["tenant_id"], state["policy_counts"]
        print(f"tenant: {sum(counts.values())} policies {({k: v for k, v in counts.items() if v})}")
        for key, title, knobs, allowed in cases:
            control(info, "POST", "/_sim/knobs/reset")
            control(info, "POST", "/_sim/knobs", {"latency": args.latency, **knobs})
            runs = [fetch(info, tenant, args.concurrency) for _ in range(args.runs)]
            report(f"{key}: {title}", runs, counts, args.latency, allowed)
            for r in runs:
                r.client.close()
        control(info, "POST", "/_sim/knobs/reset")
        control(info, "POST", "/_sim/knobs", {"latency": args.latency, "family_throttle": True})
        if args.sequential:
            seq = fetch(info, tenant, args.concurrency, mode="sequential")
            report("sequential plan, published limits", [seq], counts, args.latency, published)
            seq.client.close()
        bench_definitions(info, tenant, args)
    bench_coverage(args)
    with simulator(args.big, args.latency) as info:
        state = control(info, "GET", "/_sim/state")["tenants"][0]
        control(info, "POST", "/_sim/knobs", {"latency": args.latency, "family_throttle": True})
        runs = [fetch(info, state["tenant_id"], args.concurrency)]
        report(f"d: {sum(state['policy_counts'].values()):,}-policy tenant, published limits", runs,
               state["policy_counts"], args.latency, published)
        runs[0].client.close()


def bench_coverage(args: argparse.Namespace) -> None:
    """The same tenant with and without the coverage types read (published limits, same simulator)."""
    # the issue-19 types: every name-matched family but the PowerShell and shell scripts, which were read before
    coverage = {t.key for t in POLICY_TYPES if t.family in NAME_KEYED and t.family != SCRIPT}
    without = tuple(t for t in POLICY_TYPES if t.key not in coverage)
    added = [t.key for t in POLICY_TYPES if t.key in coverage]
    with simulator(args.policies, args.latency) as info:
        state = control(info, "GET", "/_sim/state")["tenants"][0]
        tenant, counts = state["tenant_id"], state["policy_counts"]
        print(f"\ncoverage: tenant of {sum(counts.values())} objects, of them in the added types: "
              f"{ {k: counts[k] for k in added if k in counts} } (+ the assignment filters)")
        control(info, "POST", "/_sim/knobs", {"latency": args.latency, "family_throttle": True})
        cases = (("every type (with the coverage types)", POLICY_TYPES),
                 (f"without the {len(added)} coverage types", without))
        policies: list[tuple[str, dict]] = []
        for title, types in cases * 2:  # alternating, twice: the first fetch also warms the server
            run = fetch(info, tenant, args.concurrency, types=types)
            objects = len(run.result.policies) if run.result else 0
            print(f"    {title}: {len(types)} types, {objects} objects; {run.stats['requests']:.0f} HTTP "
                  f"requests carrying {run.counters['graph_request_count']} Graph calls; {run.wall:.2f} s"
                  + (f"; FAILED: {run.error}" if run.error else ""))
            if run.result and types is POLICY_TYPES:
                policies = [(p.family, p.raw) for p in run.result.policies]
            run.client.close()
        # the names conditional access points to (users, groups, roles, apps): one $batch per 20 ids, first sync
        # only (cached per tenant after it)
        ids = ca_ids_to_read(policies, {})
        control(info, "POST", "/_sim/reset")
        client = client_for(info, tenant, args.concurrency, [])
        t0 = time.perf_counter()
        names = fetch_names(client, (), filters=False, ids=ids)
        print(f"    conditional-access names: {sum(map(len, ids.values()))} ids "
              f"({', '.join(f'{k} {len(v)}' for k, v in sorted(ids.items()))}) -> "
              f"{sum(map(len, names.names.values()))} names; {client.stats.snapshot()['requests']:.0f} HTTP requests; "
              f"{time.perf_counter() - t0:.2f} s")
        client.close()


def bench_definitions(info: dict, tenant: str, args: argparse.Namespace) -> None:
    """Setting definitions: a cold cache (settings fetched with $expand=settingDefinitions) vs a
    cache holding one definition, filled (with the sync's own client, so its pacer knows what the
    fetch already spent) the old way, one request per missing definition; the new way, the
    settings of every policy that references a missing definition again, expanded; and the
    expanded settings of only a covering set of those policies (covering_policies)."""
    print("\nsetting definitions (published limits, latency as above):")
    cold = fetch(info, tenant, args.concurrency)
    assert cold.result is not None
    cold.client.close()
    print(f"    cold cache: settings with $expand=settingDefinitions: {cold.stats['requests']:.0f} requests, "
          f"{cold.wall:.1f} s; nothing more to fetch")
    all_ids: set[str] = set()
    for p in cold.result.policies:
        if p.family in ("settingsCatalog", "complianceV2"):
            all_ids |= referenced_definition_ids(p.raw)
    known = {sorted(all_ids)[0]}  # a cache holding one definition
    for how in ("by id (before)", "expanded settings of every policy needing one (after)",
                "expanded settings of a covering set (after, covering_policies)"):
        warm = fetch(info, tenant, args.concurrency, types=without_expanded_definitions())
        assert warm.result is not None
        client = warm.client
        policies = [p for p in warm.result.policies if p.family in ("settingsCatalog", "complianceV2")]
        needs = {(p.type_key, p.id): referenced_definition_ids(p.raw) - known for p in policies}
        missing = set().union(*needs.values())
        before = client.stats.snapshot()
        t0 = time.perf_counter()
        if how.startswith("by id"):
            found = fetch_definitions(client, sorted(missing))
        elif "every" in how:
            found = fetch_expanded_settings(client, [k for k, ids in needs.items() if ids])
        else:
            found = fetch_expanded_settings(client, covering_policies(needs))
        took = time.perf_counter() - t0
        after = client.stats.snapshot()
        client.close()
        calls, posts = after["batched"] - before["batched"], after["requests"] - before["requests"]
        print(f"    one cached, definitions {how}: {calls:.0f} Graph calls in {posts:.0f} requests, {took:.1f} s "
              f"({len(missing & found.keys())} of {len(missing)} missing found; throttled "
              f"{after['throttled'] - before['throttled']:.0f}, paced {after['paced_s'] - before['paced_s']:.0f} s); "
              f"with the settings fetch: {warm.stats['requests'] + posts:.0f} requests, {warm.wall + took:.1f} s")


def bench_store(rows_wanted: int) -> None:
    """Child process, so peak RSS is this part's own."""
    code = f"""
import resource, sys, tempfile, time
from pathlib import Path
from tenantpilot.flatten.files import load_export
from tenantpilot.sync.snapshot import build_frames, write_parts
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
    ap.add_argument("--big", type=int, default=6000)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--runs", type=int, default=1, help="runs per case (a)-(c)")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--sequential", action="store_true", help="also time the naive one-request-at-a-time plan")
    ap.add_argument("--skip-fetch", action="store_true")
    ap.add_argument("--skip-store", action="store_true")
    ap.add_argument("--coverage-only", action="store_true", help="only the with/without coverage types figures")
    args = ap.parse_args()
    if args.coverage_only:
        bench_coverage(args)
        return
    if not args.skip_fetch:
        bench_fetch(args)
    if not args.skip_store:
        print()
        bench_store(args.rows)


if __name__ == "__main__":
    main()
