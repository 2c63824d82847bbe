"""Session fixtures for the real parts: a private redis-server, the Graph simulator over HTTPS,
and real `huey_consumer` subprocesses pointed at a tmp DuckDB file.

The test process itself is configured (os.environ, before tenantpilot.tasks is first imported)
to use the same private Redis, so in-process enqueues and the consumer subprocess share a queue.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="tenantpilot-tests-"))

# Variables a developer's shell might set that would leak into tests.
for _var in ("AZURE_AD_CLIENT_ID", "AZURE_AD_CLIENT_SECRET", "AZURE_AD_CLIENT_CERTIFICATE_PATH", "REDIS_URL",
             "TENANTPILOT_GRAPH_URL", "TENANTPILOT_AUTHORITY_HOST", "TENANTPILOT_DB", "TENANTPILOT_DATA_DIR"):
    os.environ.pop(_var, None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A private redis-server on a free port (independent of the machine's own Redis)."""
    binary = shutil.which("redis-server")
    if not binary:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(_SESSION_DIR)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="session", autouse=True)
def _session_env(redis_url: str) -> Iterator[None]:
    """Point this process's queue at the private Redis before tenantpilot.tasks is imported."""
    os.environ["REDIS_URL"] = redis_url
    os.environ["TENANTPILOT_DATA_DIR"] = str(_SESSION_DIR / "data")
    os.environ["TENANTPILOT_LOG_DIR"] = str(_SESSION_DIR / "logs")
    from tenantpilot.config import settings

    settings.cache_clear()
    yield
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


@pytest.fixture
def flush_redis(redis_url: str) -> None:
    import redis

    redis.Redis.from_url(redis_url).flushall()


@pytest.fixture(scope="session")
def sim():
    """The Graph simulator + token authority over HTTPS, with three demo-like tenants."""
    from tenantpilot.simulator.server import GraphSimulator
    from tenantpilot.simulator.tenants import build_tenant

    tenants = {
        tid: build_tenant(tid, name, n_policies=30, seed=7, variant=i)
        for i, (tid, name) in enumerate([
            ("11111111-1111-4111-8111-111111111111", "Contoso"),
            ("22222222-2222-4222-8222-222222222222", "Fabrikam"),
            ("33333333-3333-4333-8333-333333333333", "Northwind"),
        ])
    }
    server = GraphSimulator(tenants, cert_dir=_SESSION_DIR / "sim")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def env(tmp_path: Path, sim, redis_url: str, flush_redis) -> Iterator[dict[str, str]]:
    """Environment for a TenantPilot process: real credentials path against the simulator,
    a private Redis queue, a tmp DuckDB file. Also applied to this process for the test."""
    values = {
        "AZURE_AD_CLIENT_ID": sim.client_id,
        "AZURE_AD_CLIENT_SECRET": sim.client_secret,
        "TENANTPILOT_GRAPH_URL": sim.url,
        "TENANTPILOT_AUTHORITY_HOST": sim.url,
        "REQUESTS_CA_BUNDLE": str(sim.ca_path),
        "REDIS_URL": redis_url,
        "TENANTPILOT_DATA_DIR": str(tmp_path / "data"),
        "TENANTPILOT_DB": str(tmp_path / "data" / "tenantpilot.duckdb"),
        "TENANTPILOT_LOG_DIR": str(tmp_path / "logs"),
        "TENANTPILOT_STALE_SECONDS": "4",
    }
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    from tenantpilot.config import settings

    settings.cache_clear()
    full = {**os.environ, **values, "PYTHONPATH": str(ROOT)}
    yield full
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    settings.cache_clear()


class Consumer:
    """A real `huey_consumer huey_worker.huey` subprocess."""

    def __init__(self, env: dict[str, str], log_path: Path, workers: int = 1) -> None:
        self.env, self.log_path, self.workers = env, log_path, workers
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Consumer":
        consumer = Path(sys.executable).parent / "huey_consumer"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(consumer), "huey_worker.huey", "-w", str(self.workers), "-m", "0.2", "-d", "0.05"],
            cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, as when the machine or the OOM killer stops it."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def consumer(env: dict[str, str], tmp_path: Path) -> Iterator[Consumer]:
    c = Consumer(env, tmp_path / "consumer.log").start()
    yield c
    c.stop()


def run_cli(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tenantpilot", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
