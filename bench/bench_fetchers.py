"""What fetching consumers add: N tenants synced through real consumers on Redis, with 0, 1, 2… fetchers.

Each case starts a private redis-server, a fresh DuckDB file, the writer (`huey_consumer huey_worker.huey`
beside the database, -w W) and F fetching consumers (TENANTPILOT_ROLE=fetch, each in its own working
directory with no database, -w K), queues every tenant's sync at once and waits until all are done. One
Graph simulator (its own process, latency on) serves every case. Prints per case: wall time until every
run ended, runs per minute, runs handed to fetchers, failures, peak RSS of each process. Asserts nothing.

    .venv/bin/python bench/bench_fetchers.py [--tenants 30] [--policies 190] [--latency 0.05]
                                             [--writer-workers 1] [--fetcher-workers 2] [--fetchers 0,1,2]

For bench_fleet.py (issue 23 item 1): a fetching consumer is the same `huey_consumer huey_worker.huey -w K`
with the writer's environment minus TENANTPILOT_DB, plus TENANTPILOT_ROLE=fetch, its own TENANTPILOT_DATA_DIR
and TENANTPILOT_LOG_DIR, PYTHONPATH=<repo> and another working directory (see run_case); `health` lists it.

On one machine the fetchers share its cores with the writer and the simulator, so this shows the mechanism's
cost and the writer's headroom; on separate machines the Graph waits and the flattening move off the writer's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def start_simulator(work: Path, tenants: int, policies: int, latency: float) -> tuple[subprocess.Popen, dict]:
    data = work / "sim"
    proc = subprocess.Popen([sys.executable, "-m", "graphsim", "--port", "0", "--data-dir", str(data),
                             "--tenants", str(tenants), "--policies", str(policies), "--latency", str(latency),
                             "--seed", "3"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: (data / "simulator.json").exists() or proc.poll() is not None, "the simulator", 300)
    time.sleep(0.2)
    return proc, json.loads((data / "simulator.json").read_text())


def consumer(env: dict[str, str], cwd: Path, workers: int, log: Path) -> subprocess.Popen:
    return subprocess.Popen([str(Path(sys.executable).parent / "huey_consumer"), "huey_worker.huey", "-w", str(workers),
                             "-m", "0.2", "-d", "0.05"], cwd=cwd, env=env, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def run_case(info: dict, fetchers: int, args: argparse.Namespace, work: Path) -> dict:
    case = work / f"fetchers-{fetchers}"
    case.mkdir()
    port = free_port()
    redis = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(port), "--save", "",
                              "--appendonly", "no", "--dir", str(case)], stdout=subprocess.DEVNULL)
    env = {**os.environ, "AZURE_AD_CLIENT_ID": info["client_id"], "AZURE_AD_CLIENT_SECRET": info["client_secret"],
           "TENANTPILOT_GRAPH_URL": info["url"], "TENANTPILOT_AUTHORITY_HOST": info["url"],
           "REQUESTS_CA_BUNDLE": info["ca_path"], "REDIS_URL": f"redis://127.0.0.1:{port}/0",
           "TENANTPILOT_DATA_DIR": str(case / "data"), "TENANTPILOT_DB": str(case / "data" / "tenantpilot.duckdb"),
           "TENANTPILOT_LOG_DIR": str(case / "logs"), "TENANTPILOT_SYNC_SCHEDULE": "off", "PYTHONPATH": str(ROOT)}
    procs: dict[str, subprocess.Popen] = {}
    try:
        time.sleep(0.3)
        os.environ.update(env)
        from tenantpilot.config import settings
        from tenantpilot.ops import relay
        from tenantpilot.ops.queue import enqueue_sync
        from tenantpilot.store import open_store

        settings.cache_clear()
        cfg = settings()
        store = open_store(cfg)
        for t in info["tenants"][: args.tenants]:
            store.add_tenant(t["tenant_id"], t["display_name"])
        procs["writer"] = consumer(env, ROOT, args.writer_workers, case / "writer.log")
        for i in range(fetchers):
            own = case / f"fetcher-{i}"
            own.mkdir()
            fenv = {k: v for k, v in env.items() if k != "TENANTPILOT_DB"}
            fenv.update(TENANTPILOT_ROLE="fetch", TENANTPILOT_DATA_DIR=str(own / "data"),
                        TENANTPILOT_LOG_DIR=str(own / "logs"))
            procs[f"fetcher-{i}"] = consumer(fenv, own, args.fetcher_workers, own / "fetcher.log")
        r = relay.client(cfg)
        wait_for(lambda: relay.free_fetch_workers(r, 30) >= fetchers * args.fetcher_workers, "the fetchers")
        wait_for(lambda: b"consumer started" in (case / "writer.log").read_bytes(), "the writer")
        started = time.monotonic()
        run_ids = [enqueue_sync(t["tenant_id"], store, cfg).run_id for t in info["tenants"][: args.tenants]]
        timeline: list[tuple[float, int]] = []

        def finished() -> bool:
            runs = store.runs(run_ids=run_ids, limit=len(run_ids))
            done = runs.filter(~runs["status"].is_in(["queued", "running"])).height
            timeline.append((time.monotonic() - started, done))
            return done == len(run_ids)

        wait_for(finished, "every run", timeout=3600)
        wall = time.monotonic() - started
        runs = store.runs(run_ids=run_ids, limit=len(run_ids))
        handed = (case / "writer.log").read_text(errors="replace").count("handed to a fetching consumer")
        rss = {name: round(peak_rss_mb(p.pid)) for name, p in procs.items()}
        return {"fetchers": fetchers, "wall_s": round(wall, 1), "runs_per_min": round(len(run_ids) / wall * 60, 1),
                "handed_over": handed, "failed": runs.filter(runs["status"] == "failed").height,
                "peak_rss_mb": rss}
    finally:
        for proc in procs.values():
            stop(proc)
        redis.terminate()
        redis.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tenants", type=int, default=30)
    ap.add_argument("--policies", type=int, default=190)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--writer-workers", type=int, default=1)
    ap.add_argument("--fetcher-workers", type=int, default=2)
    ap.add_argument("--fetchers", default="0,1,2", help="fetching consumers per case, comma-separated")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-fetchers-"))
    sim, info = start_simulator(work, args.tenants, args.policies, args.latency)
    try:
        print(f"{args.tenants} tenants x {args.policies} policies, latency {args.latency} s, writer -w "
              f"{args.writer_workers}, fetchers -w {args.fetcher_workers}", flush=True)
        for n in (int(x) for x in args.fetchers.split(",")):
            print(json.dumps(run_case(info, n, args, work)), flush=True)
    finally:
        sim.terminate()
        sim.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
