"""The deployment the README describes (issue 18, rows 12-13), on both queue backends: a real consumer and the
CLI started from a working directory that has no `data/` folder, the database and logs elsewhere (a
service's /var/lib/… and /var/log/…). Syncs work (a run's temporary parts go beside the database), and a
consumer at start removes the part folders a killed run left behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from realparts import CONTOSO, ROOT, Consumer


def cli(env: dict[str, str], cwd: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "tenantpilot", *args], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, f"`tenantpilot {' '.join(args)}`: {result.stdout}\n{result.stderr}"
    return result


def test_a_service_deployment_syncs_and_cleans_up(queue_env: dict[str, str], tmp_path: Path) -> None:
    workdir, var_lib, var_log = tmp_path / "service-cwd", tmp_path / "var" / "lib" / "tp", tmp_path / "var" / "log"
    workdir.mkdir()
    env = {k: v for k, v in queue_env.items() if k != "TENANTPILOT_DATA_DIR"}  # the default: ./data of the cwd
    env |= {"TENANTPILOT_DB": str(var_lib / "tp.duckdb"), "TENANTPILOT_LOG_DIR": str(var_log),
            "PYTHONPATH": str(ROOT)}
    # what a consumer killed mid-sync left: part folders of a run that is no longer running, beside the
    # database, and (SQLite queue, whose file lives in ./data) where earlier versions put them
    left = [var_lib / "tp.duckdb.parts" / "run-7-k1ll3d"]
    if not queue_env.get("REDIS_URL"):
        left.append(workdir / "data" / "run-8-k1ll3d")
    for folder in left:
        folder.mkdir(parents=True)
        (folder / "settings-0.parquet").write_bytes(b"PAR1" + b"\0" * 4096)
    consumer = Consumer(env, tmp_path / "consumer.log", cwd=workdir).start()
    try:
        cli(env, workdir, "tenants", "add", CONTOSO, "--name", "Contoso")
        synced = cli(env, workdir, "sync", CONTOSO, "--wait", "--timeout", "180")
        assert "succeeded" in synced.stdout, synced.stdout + synced.stderr
        for folder in left:
            assert not folder.exists(), f"{folder} is still there"
        assert not list((var_lib / "tp.duckdb.parts").iterdir())  # the run's own parts went with it
        assert (var_log / "worker-combined.log").exists()
        if queue_env.get("REDIS_URL"):
            assert not (workdir / "data").exists()  # with Redis nothing needs ./data
    finally:
        consumer.stop()
