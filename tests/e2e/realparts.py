"""Real-part helpers of the end-to-end tests: free ports, a `huey_consumer` subprocess, the CLI."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository


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


class Consumer:
    """A real `huey_consumer huey_worker.huey` subprocess."""

    def __init__(self, env: dict[str, str], log_path: Path, workers: int = 1, cwd: Path = ROOT) -> None:
        self.env, self.log_path, self.workers, self.cwd = env, log_path, workers, cwd
        self.proc: subprocess.Popen | None = None

    def start(self) -> Consumer:
        consumer = Path(sys.executable).parent / "huey_consumer"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(consumer), "huey_worker.huey", "-w", str(self.workers), "-m", "0.2", "-d", "0.05"],
            cwd=self.cwd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
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


def run_cli(env: dict[str, str], *args: str, timeout: float = 180,
            expect: int | None = 0) -> subprocess.CompletedProcess:
    """`python -m tenantpilot *args`; asserts its exit code is `expect` (None: any), showing the command's
    output when it is not: a call that failed quietly hides the real cause of what fails after it."""
    result = subprocess.run([sys.executable, "-m", "tenantpilot", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=timeout)
    if expect is not None:
        assert result.returncode == expect, (
            f"`tenantpilot {' '.join(args)}` exited {result.returncode}, not {expect}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}")
    return result


CONTOSO = "11111111-1111-4111-8111-111111111111"
FABRIKAM = "22222222-2222-4222-8222-222222222222"


def add_and_sync(env: dict[str, str], tenant: str = CONTOSO, expect: int = 0, timeout: float = 180,
                 name: str = "Contoso") -> subprocess.CompletedProcess:
    """`tenants add` then `sync --wait` through the CLI; asserts the exit code."""
    run_cli(env, "tenants", "add", tenant, "--name", name)
    return run_cli(env, "sync", tenant, "--wait", "--timeout", str(timeout), timeout=timeout + 30, expect=expect)


def store_of(env: dict[str, str]):
    from tenantpilot.store import Store

    return Store(Path(env["TENANTPILOT_DB"]))


def latest_run(env: dict[str, str], tenant: str = CONTOSO) -> dict:
    return store_of(env).runs(tenant).row(0, named=True)


def bool_property(sim, synced, tenant: str = CONTOSO) -> tuple[str, str, bool]:
    """A deviceConfiguration of the tenant and one of its boolean properties that the sync shows as a
    setting row (`synced`: that run's setting rows): (policy id, property, value)."""
    shown = set(zip(synced["policy_id"], synced["setting_id"]))
    for policy in sim.tenant(tenant).list_policies("deviceConfigurations"):
        for key, value in policy.resource.items():
            if isinstance(value, bool) and (policy.id, key) in shown:
                return policy.id, key, value
    raise AssertionError(f"no deviceConfiguration with a boolean property in the simulator's {tenant}")
