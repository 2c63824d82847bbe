"""Fleet benchmark: the nightly sync of N tenants, as an MSP runs it (issue 23). Prints figures; asserts
nothing about time.

    .venv/bin/python bench/bench_fleet.py [--tenants 1000] [--workers 1,4,16] [--nights 2] [--latency 0.05]
                                          [--jitter 0] [--probe-every 15] [--manual-at 0.3] [--seed 23]

Per K in --workers, from an empty database: the Graph simulator in its own process serves N tenants
of a realistic spread of sizes (log-normal, median 150 policies, from 30 to 3,000: most in the low
hundreds), with --latency on every request and Intune's published per-family throttle per tenant. Every
tenant follows one daily slot (the next minute; --jitter spreads the starts as
TENANTPILOT_SCHEDULE_JITTER_SECONDS does), and a real `huey_consumer -w K` (Redis, a private
redis-server) fires it from its own periodic task and syncs the night. Meanwhile this process plays
the app: every --probe-every seconds an Explore search and a Compare (10 tenants, the store reads and
the compare rule the pages run), and at --manual-at of the night a person's manual sync (how long it
waited in the queue). Night 2 onwards: 1 % of each tenant's settings changed in between (integer
settings-catalog values, with Intune's audit event), as every night after the first.

Printed per night: time from the slot until every tenant is synced, runs per minute, where the runs'
time went (start: marking the run running, the token, reading what is stored; Graph, flatten, waiting for
the database, writing: the worker log's `phases`), time queued, Graph requests (HTTP and Graph calls,
$batch items counted) and 429s, per tenant too, peak RSS of the consumer and the simulator, database size,
Explore and Compare latency while the night ran, and the manual sync's wait. `--simulator-only` (internal)
is the simulator process.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from _realparts import realparts

ROOT = Path(__file__).resolve().parent.parent


# --- the simulator process ----------------------------------------------------------------------------
def sizes(n: int, seed: int) -> list[int]:
    """Policies per tenant: log-normal around 150 (most in the low hundreds), 30..3,000."""
    rng = random.Random(seed)
    return [max(30, min(3000, round(rng.lognormvariate(math.log(150), 0.8)))) for _ in range(n)]


def tenant_ids(n: int) -> list[str]:
    return [f"{i:08x}-f1ee-4000-8000-{i:012x}" for i in range(1, n + 1)]


def serve_simulator(data_dir: Path, n: int, seed: int, latency: float) -> None:
    """Build the tenants, serve them, and on SIGUSR1 apply the changes listed in change.json
    ({tenant: how many settings}), then write changed.json."""
    from graphsim.catalog import load_catalog, walk_instances
    from graphsim.demo import write_discovery
    from graphsim.server import GraphSimulator
    from graphsim.tenants import build_tenant

    tenants = [build_tenant(tid, f"Fleet {i:04d}", size, seed=seed, variant=i % 5)
               for i, (tid, size) in enumerate(zip(tenant_ids(n), sizes(n, seed)))]
    sim = GraphSimulator(tenants, latency=latency, cert_dir=data_dir, seed=seed)
    sim.apply_knobs({"family_throttle": True})
    stop = threading.Event()
    pending = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGUSR1, lambda *_: pending.set())
    sim.start()
    write_discovery(sim, data_dir)
    cat = load_catalog()
    rng = random.Random(seed + 1)
    while not stop.wait(0.2):
        if not pending.is_set():
            continue
        pending.clear()
        wanted = json.loads((data_dir / "change.json").read_text())
        changed = 0
        for tid, count in wanted.items():
            tenant = sim.tenant(tid)
            candidates = []
            for policy in tenant.list_policies("configurationPolicies"):
                for setting in policy.settings:
                    for inst, _ in walk_instances(setting["settingInstance"]):
                        value = inst.get("simpleSettingValue") or {}
                        if str(value.get("@odata.type", "")).endswith("IntegerSettingValue"):
                            candidates.append((policy, inst["settingDefinitionId"], value.get("value")))
            for policy, def_id, old in rng.sample(candidates, min(count, len(candidates))):
                bounds = (cat.setting_definitions.get(def_id) or {}).get("valueDefinition") or {}
                lo, hi = bounds.get("minimumValue", 0), bounds.get("maximumValue", 2**31 - 1)
                base = old if isinstance(old, int) else 0
                new = next((c for c in (base + 37, base - 37, base + 3, base - 3, lo, hi) if lo <= c <= hi
                            and c != old), None)
                if new is None:
                    continue
                try:
                    previous = tenant.change_setting(policy.id, def_id, new)
                except KeyError:
                    continue
                tenant.record_audit(policy, "Patch", "admin@fleet.example", [(def_id, previous, new)])
                changed += 1
        (data_dir / "changed.json").write_text(json.dumps({"changed": changed}))
    sim.stop()


# --- measuring ----------------------------------------------------------------------------------------
def rss_mb(pid: int, field: str = "VmHWM") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def tree_pids(pid: int) -> list[int]:
    """The process and its descendants (huey_consumer -k thread is one process; -k process has children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            children = []
        todo.extend(int(c) for c in children)
    return out


def control(info: dict, method: str, path: str) -> dict:
    import requests

    return requests.request(method, info["url"] + path, verify=info["ca_path"], timeout=60).json()


class Probe(threading.Thread):
    """The app while the night runs: an Explore search and a Compare of 10 tenants every `every` s."""

    def __init__(self, every: float) -> None:
        super().__init__(daemon=True)
        self.every, self.stop = every, threading.Event()
        self.explore: list[float] = []
        self.compare: list[float] = []
        self.errors: list[str] = []

    def run(self) -> None:
        from tenantpilot.analysis import compare
        from tenantpilot.app import compare_view
        from tenantpilot.store import Filters, StoreError, open_store

        store = open_store()
        while not self.stop.wait(self.every):
            try:
                t0 = time.perf_counter()
                store.settings_page(Filters(search="password"), offset=0, limit=1000)
                self.explore.append(time.perf_counter() - t0)
                tenants = [t for t, _ in store.snapshot_token()][:11]
                if len(tenants) >= 2:
                    t0 = time.perf_counter()
                    frame = store.current_columns_of(tenants, compare_view.compare_columns())
                    compare.comparison(frame, tenants, tenants[0])
                    self.compare.append(time.perf_counter() - t0)
            except StoreError as exc:
                self.errors.append(str(exc)[:200])


def quantiles(values: list[float]) -> str:
    if not values:
        return "none"
    values = sorted(values)
    p90 = values[min(len(values) - 1, int(len(values) * 0.9))]
    return f"median {statistics.median(values):.2f} s, p90 {p90:.2f} s, max {values[-1]:.2f} s (n={len(values)})"


def job_events(log_dir: Path, run_ids: set[int]) -> dict[int, dict]:
    path = log_dir / "worker-combined.log"
    out: dict[int, dict] = {}
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            if '"job completed"' in line:
                event = json.loads(line)
                if event.get("run_id") in run_ids:
                    out[int(event["run_id"])] = event
    return out


# --- one night ----------------------------------------------------------------------------------------
def night(env: dict[str, str], info: dict, sim_pid: int, workers: int, number: int, args: argparse.Namespace,
          work: Path) -> dict[str, Any]:
    Consumer = realparts().Consumer

    from tenantpilot.config import settings
    from tenantpilot.ops import queue
    from tenantpilot.store import open_store

    now = datetime.now().astimezone()
    slot = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
    if (slot - now).total_seconds() < 10:
        slot += timedelta(minutes=1)
    env = {**env, "TENANTPILOT_SYNC_SCHEDULE": f"{slot.minute} {slot.hour} * * *",
           "TENANTPILOT_SCHEDULE_JITTER_SECONDS": str(args.jitter)}
    os.environ.update(env)
    settings.cache_clear()
    store = open_store()
    before = store.runs(limit=1)
    first_run = int(before["run_id"][0]) + 1 if before.height else 0  # this night's runs: from here on
    control(info, "POST", "/_sim/reset")
    log_dir = Path(env["TENANTPILOT_LOG_DIR"])
    consumer = Consumer(env, work / f"consumer-k{workers}-n{number}.log", workers=workers).start()
    probe = Probe(args.probe_every)
    print(f"  night {number}: slot {slot:%H:%M:%S}, consumer -w {workers} (pid {consumer.proc.pid})", flush=True)
    manual: int | None = None
    peak_live = 0.0
    try:
        while datetime.now().astimezone() < slot:
            time.sleep(0.5)
        probe.start()
        last_print = time.monotonic()
        deadline = time.monotonic() + args.max_night_s
        while True:
            runs = store.runs(limit=args.tenants * 3)
            runs = runs.filter(runs["run_id"] >= first_run)
            sched = runs.filter(runs["trigger"] == "schedule")
            finished = sched.filter(~sched["status"].is_in(["queued", "running"]))
            peak_live = max(peak_live, sum(rss_mb(p, "VmRSS") for p in tree_pids(consumer.proc.pid)))
            if manual is None and finished.height >= args.manual_at * args.tenants:
                done_tenant = finished["tenant_id"][0]
                manual = queue.enqueue_sync(done_tenant, store, trigger="manual").run_id
            if time.monotonic() - last_print > 30:
                print(f"    {finished.height}/{args.tenants} synced, "
                      f"{sched.filter(sched['status'] == 'running').height} running", flush=True)
                last_print = time.monotonic()
            manual_done = manual is None or store.get_run(manual)["status"] not in ("queued", "running")
            if sched.height >= args.tenants and finished.height == sched.height and manual_done:
                break
            if time.monotonic() > deadline:
                print(f"    stopped after {args.max_night_s:.0f} s (--max-night-s)", flush=True)
                break
            time.sleep(1.0)
        consumer_peak = max(rss_mb(p) for p in tree_pids(consumer.proc.pid))
        sim_peak = rss_mb(sim_pid)
    finally:
        probe.stop.set()
        consumer.stop()
    counters = control(info, "GET", "/_sim/state")["counters"]
    rows = list(sched.iter_rows(named=True))
    events = job_events(log_dir, {int(r["run_id"]) for r in rows})
    end = max(r["finished_at"] for r in rows if r["finished_at"] is not None)
    manual_row = store.get_run(manual) if manual is not None else None
    db = Path(env["TENANTPILOT_DB"])
    return {"night": number, "workers": workers, "slot": slot, "rows": rows, "events": events,
            "synced_s": (end - slot).total_seconds(), "counters": counters, "probe": probe,
            "consumer_peak_mb": consumer_peak, "consumer_live_peak_mb": peak_live, "sim_peak_mb": sim_peak,
            "db_mb": sum(f.stat().st_size for f in db.parent.glob(db.name + "*")) / 2**20,
            "manual": manual_row}


def report(r: dict[str, Any]) -> dict[str, Any]:
    rows, events, slot = r["rows"], r["events"], r["slot"]
    n = len(rows)
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    per_min: dict[int, int] = {}
    for row in rows:
        if row["finished_at"] is not None:
            minute = int((row["finished_at"] - slot).total_seconds() // 60)
            per_min[minute] = per_min.get(minute, 0) + 1
    phases: dict[str, float] = {}
    for e in events.values():
        for k, v in (e.get("phases") or {}).items():
            phases[k] = phases.get(k, 0.0) + float(v)
    # from when the run was due (the slot, or its queueing when later), not from a tick that queued it early
    queued = [(row["started_at"] - max(row["queued_at"], slot)).total_seconds() for row in rows if row["started_at"]]
    duration = [float(row["duration_s"]) for row in rows if row["duration_s"] is not None]
    http = sum(int(row["request_count"] or 0) for row in rows)
    c = r["counters"]
    graph_429 = int(c["graph_requests_by_status"].get("429", 0))
    print(f"  == night {r['night']}, K = {r['workers']}: {n} tenants, {statuses}")
    print(f"  all synced {r['synced_s']:.0f} s after the slot ({r['synced_s'] / 60:.1f} min); "
          f"{n / max(r['synced_s'], 1) * 60:.0f} runs/min overall")
    print("  runs finished per minute: " + ", ".join(f"{m}:{per_min[m]}" for m in sorted(per_min)))
    total = sum(phases.values()) or 1.0
    print("  where the runs' time went (sum over runs): " + ", ".join(
        f"{k} {v:.0f} s ({v / total:.0%})" for k, v in sorted(phases.items(), key=lambda kv: -kv[1])))
    print(f"  per run: {quantiles(duration)}; queued: {quantiles(queued)}")
    print(f"  Graph: {c['request_count']} HTTP requests ({http / max(n, 1):.0f} per tenant by the runs' count), "
          f"{c['graph_request_count']} Graph calls ({c['graph_request_count'] / max(n, 1):.0f} per tenant), "
          f"{graph_429} answered 429, {c['token_request_count']} token requests")
    print(f"  peak RSS: consumer {r['consumer_peak_mb']:.0f} MB, simulator {r['sim_peak_mb']:.0f} MB; "
          f"database {r['db_mb']:.0f} MB")
    probe = r["probe"]
    print(f"  while the night ran: Explore search {quantiles(probe.explore)}; Compare of 10 {quantiles(probe.compare)}"
          + (f"; {len(probe.errors)} reads failed: {probe.errors[0]}" if probe.errors else ""))
    m = r["manual"]
    waited = (m["started_at"] - m["queued_at"]).total_seconds() if m and m["started_at"] else None
    if m:
        print(f"  manual sync mid-night (run {m['run_id']}): waited {waited:.1f} s in the queue, took "
              f"{m['duration_s'] or float('nan'):.1f} s, {m['status']}")
    return {"night": r["night"], "K": r["workers"], "tenants": n, "synced_min": r["synced_s"] / 60,
            "graph_calls_per_tenant": c["graph_request_count"] / max(n, 1), "http_per_tenant": http / max(n, 1),
            "429": graph_429, "phases": phases, "consumer_mb": r["consumer_peak_mb"], "db_mb": r["db_mb"],
            "explore_max": max(probe.explore, default=float("nan")),
            "compare_max": max(probe.compare, default=float("nan")), "manual_wait_s": waited}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--workers", default="1,4,16", help="comma-separated K (huey_consumer -w K), one fleet each")
    parser.add_argument("--nights", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--jitter", type=int, default=0, help="TENANTPILOT_SCHEDULE_JITTER_SECONDS")
    parser.add_argument("--probe-every", type=float, default=15.0)
    parser.add_argument("--manual-at", type=float, default=0.3, help="fraction of the night synced when a person asks")
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--max-night-s", type=float, default=4 * 3600)
    parser.add_argument("--keep", type=Path, default=None, help="keep the working folders here")
    parser.add_argument("--simulator-only", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.simulator_only:
        serve_simulator(args.simulator_only, args.tenants, args.seed, args.latency)
        return 0
    spread = sizes(args.tenants, args.seed)
    print(f"{args.tenants} tenants: policies median {statistics.median(spread):.0f}, mean {statistics.mean(spread):.0f}, "
          f"min {min(spread)}, max {max(spread)}, {sum(spread):,} in all; latency {args.latency * 1000:.0f} ms; "
          f"jitter {args.jitter} s; {os.cpu_count()} cores", flush=True)
    summary = []
    for k in [int(x) for x in args.workers.split(",")]:
        summary.extend(fleet(k, args))
    print("\n== summary")
    print(f"{'K':>3} {'night':>5} {'min':>7} {'calls/tenant':>13} {'HTTP/tenant':>12} {'429':>6} {'start':>6} {'graph':>7} "
          f"{'flatten':>8} {'lockwait':>9} {'write':>7} {'RSS MB':>7} {'DB MB':>6} {'explore':>8} {'compare':>8} "
          f"{'manual':>7}")
    for s in summary:
        p = s["phases"]
        print(f"{s['K']:>3} {s['night']:>5} {s['synced_min']:>7.1f} {s['graph_calls_per_tenant']:>13.0f} "
              f"{s['http_per_tenant']:>12.0f} {s['429']:>6} {p.get('start', 0):>6.0f} {p.get('graph', 0):>7.0f} {p.get('flatten', 0):>8.0f} "
              f"{p.get('lock_wait', 0):>9.0f} {p.get('write', 0):>7.0f} {s['consumer_mb']:>7.0f} {s['db_mb']:>6.0f} "
              f"{s['explore_max']:>7.2f}s {s['compare_max']:>7.2f}s "
              f"{(s['manual_wait_s'] if s['manual_wait_s'] is not None else float('nan')):>6.1f}s")
    print("(phases: seconds summed over the night's runs; explore/compare: the slowest probe; manual: queue wait)")
    return 0


def fleet(workers: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    free_port, wait_port = realparts().free_port, realparts().wait_port

    from tenantpilot.store import Store

    work = Path(tempfile.mkdtemp(prefix=f"bench-fleet-k{workers}-", dir=args.keep))
    print(f"\n== K = {workers} ({work})", flush=True)
    sim_dir = work / "sim"
    sim_dir.mkdir()
    t0 = time.perf_counter()
    sim = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--simulator-only", str(sim_dir),
                            "--tenants", str(args.tenants), "--seed", str(args.seed), "--latency", str(args.latency)],
                           cwd=ROOT, stdout=subprocess.DEVNULL)
    port = free_port()
    redis = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", str(work)], stdout=subprocess.DEVNULL)
    out: list[dict[str, Any]] = []
    try:
        wait_port(port)
        while not (sim_dir / "simulator.json").exists():
            if sim.poll() is not None:
                raise RuntimeError("the simulator stopped")
            time.sleep(0.2)
        info = json.loads((sim_dir / "simulator.json").read_text())
        print(f"  simulator up in {time.perf_counter() - t0:.0f} s", flush=True)
        data = work / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TENANTPILOT_", "AZURE_AD_", "REDIS_"))}
        env.update({"AZURE_AD_CLIENT_ID": info["client_id"], "AZURE_AD_CLIENT_SECRET": info["client_secret"],
                    "TENANTPILOT_GRAPH_URL": info["url"], "TENANTPILOT_AUTHORITY_HOST": info["url"],
                    "REQUESTS_CA_BUNDLE": info["ca_path"], "REDIS_URL": f"redis://127.0.0.1:{port}/0",
                    "TENANTPILOT_DATA_DIR": str(data), "TENANTPILOT_DB": str(data / "tenantpilot.duckdb"),
                    "TENANTPILOT_LOG_DIR": str(work / "logs"), "PYTHONPATH": str(ROOT)})
        store = Store(data / "tenantpilot.duckdb")
        with store.connect(write=True) as con:  # setup: every tenant, in one transaction (added now: no slot missed)
            con.execute("BEGIN")
            for i, tid in enumerate(tenant_ids(args.tenants)):
                con.execute("INSERT INTO tenants VALUES (?, ?, 'tenant', now())", [tid, f"Fleet {i:04d}"])
            con.execute("COMMIT")
        for number in range(1, args.nights + 1):
            if number > 1:
                change(store, sim, sim_dir)
            out.append(report(night(env, info, sim.pid, workers, number, args, work)))
    finally:
        sim.terminate()
        sim.wait(30)
        redis.terminate()
        redis.wait(10)
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return out


def change(store: Any, sim: subprocess.Popen, sim_dir: Path) -> None:
    """1 % of each tenant's settings (its last run's setting count) changed in the simulator."""
    tenants = store.tenants()
    wanted = {t: max(1, round((c or 0) * 0.01)) for t, c in zip(tenants["tenant_id"], tenants["setting_count"])}
    (sim_dir / "changed.json").unlink(missing_ok=True)
    (sim_dir / "change.json").write_text(json.dumps(wanted))
    sim.send_signal(signal.SIGUSR1)
    while not (sim_dir / "changed.json").exists():
        time.sleep(0.2)
    print(f"  changed {json.loads((sim_dir / 'changed.json').read_text())['changed']} settings "
          f"(1 % of {int(sum(c or 0 for c in tenants['setting_count'])):,})", flush=True)


if __name__ == "__main__":
    sys.exit(main())
