"""Fixtures of the real parts: a private redis-server, the Graph simulator over HTTPS, real
`huey_consumer` subprocesses, a tmp DuckDB file.

`env` is the environment of a TenantPilot process pointed at all of them, and is also applied to
this process for the test, so in-process enqueues and the consumer subprocess share one queue.
`queue_env` is the same, once per queue backend (redis, sqlite): the queue contract runs on both,
as huey runs one storage contract against every storage.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from realparts import Consumer, free_port, wait_port

BACKENDS = ("redis", "sqlite")


@pytest.fixture(scope="session")
def redis_url(_session_dir: Path) -> Iterator[str]:
    """A private redis-server on a free port (independent of the machine's own Redis)."""
    binary = shutil.which("redis-server")
    if not binary:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(_session_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def flush_redis(redis_url: str) -> None:
    import redis

    redis.Redis.from_url(redis_url).flushall()


@pytest.fixture(scope="session")
def sim(_session_dir: Path):
    """The Graph simulator + token authority over HTTPS, with three demo-like tenants."""
    from graphsim.server import GraphSimulator
    from graphsim.tenants import build_tenant

    tenants = {
        tid: build_tenant(tid, name, n_policies=30, seed=7, variant=i)
        for i, (tid, name) in enumerate([
            ("11111111-1111-4111-8111-111111111111", "Contoso"),
            ("22222222-2222-4222-8222-222222222222", "Fabrikam"),
            ("33333333-3333-4333-8333-333333333333", "Northwind"),
        ])
    }
    server = GraphSimulator(tenants, cert_dir=_session_dir / "sim")
    server.start()
    yield server
    server.stop()


def _apply(values: dict[str, str | None]) -> Iterator[dict[str, str]]:
    """Apply `values` to this process (None removes a variable) for one test; yield the child env."""
    from tenantpilot.config import settings

    saved = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    settings.cache_clear()
    yield dict(os.environ)
    for k, old in saved.items():
        if old is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = old
    settings.cache_clear()


def _values(tmp_path: Path, sim, redis: str | None) -> dict[str, str | None]:
    return {
        "AZURE_AD_CLIENT_ID": sim.client_id,
        "AZURE_AD_CLIENT_SECRET": sim.client_secret,
        "TENANTPILOT_GRAPH_URL": sim.url,
        "TENANTPILOT_AUTHORITY_HOST": sim.url,
        "REQUESTS_CA_BUNDLE": str(sim.ca_path),
        "REDIS_URL": redis,
        "TENANTPILOT_DATA_DIR": str(tmp_path / "data"),
        "TENANTPILOT_DB": str(tmp_path / "data" / "tenantpilot.duckdb"),
        "TENANTPILOT_LOG_DIR": str(tmp_path / "logs"),
        "TENANTPILOT_STALE_SECONDS": "4",
        # no scheduled sync may start in the middle of a test (a suite running across 02:00); the
        # schedule tests set their own
        "TENANTPILOT_SYNC_SCHEDULE": "off",
    }


@pytest.fixture
def env(tmp_path: Path, sim, redis_url: str, flush_redis) -> Iterator[dict[str, str]]:
    """Real credentials against the simulator, the private Redis queue, a tmp DuckDB file."""
    yield from _apply(_values(tmp_path, sim, redis_url))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def queue_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    """REDIS_URL for the backend under test: the private Redis (flushed), or None for SQLite."""
    if backend == "sqlite":
        return None
    request.getfixturevalue("flush_redis")
    return request.getfixturevalue("redis_url")


@pytest.fixture
def queue_env(tmp_path: Path, sim, queue_url: str | None) -> Iterator[dict[str, str]]:
    """`env` on each queue backend: Redis, then SQLite (a queue file in the tmp data folder)."""
    yield from _apply(_values(tmp_path, sim, queue_url))


@pytest.fixture
def consumer(env: dict[str, str], tmp_path: Path) -> Iterator[Consumer]:
    c = Consumer(env, tmp_path / "consumer.log").start()
    yield c
    c.stop()


@pytest.fixture
def queue_consumer(queue_env: dict[str, str], tmp_path: Path) -> Iterator[Consumer]:
    c = Consumer(queue_env, tmp_path / "consumer.log").start()
    yield c
    c.stop()
