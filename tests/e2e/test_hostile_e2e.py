"""Hostile inputs against the real parts (issue 9; the pure rows are in tests/unit/test_hostile.py):
a real sync after a poisoned import, Streamlit's own Host and Origin checks on a running app,
scripts/run.sh reading a hostile .env, and the modes of the files the real processes create."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import polars as pl
import pytest
from realparts import CONTOSO, ROOT, add_and_sync, free_port, run_cli, store_of

PHISH = "[Sign in again](https://evil.example/phish) ![p](http://127.0.0.1:9/t.png)"


def poisoned_export(folder: Path, definition_ids: list[str]) -> Path:
    """A settings-catalog export whose inline settingDefinitions rename the given definitions."""
    folder.mkdir(parents=True, exist_ok=True)
    settings = [{"id": str(i), "settingInstance": {"settingDefinitionId": def_id, "simpleSettingValue": {"value": "x"}},
                 "settingDefinitions": [{"id": def_id, "displayName": f"{PHISH} #{i}",
                                         "description": "Your session expired. " + PHISH}]}
                for i, def_id in enumerate(definition_ids)]
    (folder / "poisoned.json").write_text(json.dumps({
        "id": "poison-1", "name": "Security baseline", "platforms": "windows10", "technologies": "mdm",
        "@odata.type": "#microsoft.graph.deviceManagementConfigurationPolicy", "settings": settings}))
    return folder


def catalog_names(env) -> pl.DataFrame:
    rows = store_of(env).current_settings([CONTOSO])
    return (rows.filter(pl.col("policy_type").is_in(["settingsCatalog", "complianceV2"]))
            .select("policy_id", "setting_key", "setting_name", "value", "description").sort("policy_id", "setting_key"))


def test_an_import_cannot_change_a_synced_tenants_setting_names(env, consumer, sim, tmp_path):
    add_and_sync(env)  # cold cache: Graph's definitions ride along with the settings
    store = store_of(env)
    before = catalog_names(env)
    ids = sorted(set(store.current_settings([CONTOSO]).filter(pl.col("policy_type") == "settingsCatalog")["setting_id"]))
    cached = store.definitions(ids)
    assert before.height and cached

    imported = run_cli(env, "import", str(poisoned_export(tmp_path / "export", ids)), "--name", "Poisoned")
    assert imported.returncode == 0, imported.stderr
    assert store.definitions(ids) == cached  # the shared cache is untouched
    baseline = store.current_settings(["baseline:poisoned"])
    assert set(baseline["setting_name"]) <= {d["displayName"] for d in cached.values()}  # Graph's names win

    add_and_sync(env)  # the next sync reads the cache: Graph's names, never the file's
    after = catalog_names(env)
    assert after.equals(before)
    assert PHISH not in json.dumps(store.current_settings([CONTOSO]).select("setting_name", "description").to_dicts())


def test_an_import_before_the_first_sync_does_not_name_the_tenants_settings(env, consumer, sim, tmp_path):
    """Cold cache: the import's definitions are the only ones known when the tenant first syncs."""
    ids = sorted({inst["settingInstance"]["settingDefinitionId"]
                  for policy in sim.tenant(CONTOSO).list_policies("configurationPolicies")
                  for inst in (policy.settings or [])})[:40]
    assert ids
    imported = run_cli(env, "import", str(poisoned_export(tmp_path / "export", ids)), "--name", "Poisoned")
    assert imported.returncode == 0, imported.stderr
    store = store_of(env)
    assert store.definition_ids() == set()
    add_and_sync(env)
    rows = store.current_settings([CONTOSO])
    assert PHISH not in json.dumps(rows.select("setting_name", "description").to_dicts())
    graph = store.definitions(ids)  # fetched from Graph, because the import wrote nothing
    named = rows.filter(pl.col("setting_id").is_in(list(graph)) & (pl.col("setting_key") == pl.col("setting_id")))
    assert named.height and all(r["setting_name"] == graph[r["setting_id"]]["displayName"]
                                for r in named.iter_rows(named=True))


def test_files_the_real_processes_create_are_private(env, consumer, sim):
    data, logs = Path(env["TENANTPILOT_DATA_DIR"]), Path(env["TENANTPILOT_LOG_DIR"])
    add_and_sync(env)  # the CLI creates the data folder and the database, the consumer its logs
    modes = {path: stat.S_IMODE(path.stat().st_mode) for path in (data, Path(env["TENANTPILOT_DB"]), logs,
                                                                   *logs.glob("*.log"))}
    assert len(modes) >= 5
    for path, mode in modes.items():
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))


# --- Streamlit's own checks on a running app ----------------------------------------------------------
@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("exposure")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_AD_", "REDIS_URL", "STREAMLIT_"))}
    env.update(TENANTPILOT_DATA_DIR=str(data), TENANTPILOT_DB=str(data / "app.duckdb"))
    with open(data / "streamlit.log", "wb") as log:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "streamlit"), "run", "streamlit_app.py",
                                 "--server.port", str(port), "--server.headless", "true",
                                 "--server.fileWatcherType", "none"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((data / "streamlit.log").read_text()) from None
                time.sleep(0.2)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)


def handshake(port: int, host: str, origin: str | None) -> str:
    """The status line Streamlit answers a WebSocket handshake on /_stcore/stream with."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = ["GET /_stcore/stream HTTP/1.1", f"Host: {host}", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Protocol: streamlit"]
    if origin:
        lines.append(f"Origin: {origin}")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return sock.recv(4096).split(b"\r\n", 1)[0].decode()


# (case, Host header, Origin header, expected status)
HANDSHAKES = [
    ("DNS rebinding: a foreign name resolving to 127.0.0.1", "evil.example:{port}", "http://evil.example:{port}", 403),
    ("foreign Host without an Origin (not a browser)", "evil.example", None, 403),
    ("a subdomain of an allowed name", "localhost.evil.example:{port}", None, 403),
    ("allowed Host, page of another origin (CSRF over WebSocket)", "127.0.0.1:{port}", "https://evil.example", 403),
    ("the app itself on 127.0.0.1", "127.0.0.1:{port}", "http://127.0.0.1:{port}", 101),
    ("the app itself on localhost", "localhost:{port}", "http://localhost:{port}", 101),
]


@pytest.mark.parametrize("case, host, origin, status", HANDSHAKES, ids=[row[0] for row in HANDSHAKES])
def test_streamlit_refuses_a_websocket_from_a_foreign_host_or_origin(app_url, case, host, origin, status):
    line = handshake(app_url, host.format(port=app_url), origin and origin.format(port=app_url))
    assert line.split(" ", 2)[1] == str(status), line


def test_an_upload_without_the_xsrf_token_is_refused(app_url):
    request = urllib.request.Request(f"http://127.0.0.1:{app_url}/_stcore/upload_file/s/f", method="PUT",
                                     data=b"--x\r\n", headers={"Content-Type": "multipart/form-data; boundary=x"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 403


# --- scripts/run.sh and a hostile .env -----------------------------------------------------------------
def run_sh_in(tmp_path: Path, dotenv: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess, Path]:
    """scripts/run.sh as it is, in a copy of the project's layout whose setup.sh does nothing and whose
    consumer and app record how they were started (argv, REDIS_URL in their environment)."""
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    (project / "scripts" / "run.sh").write_bytes((ROOT / "scripts" / "run.sh").read_bytes())
    (project / "scripts" / "setup.sh").write_text("#!/bin/sh\nexit 0\n")
    (project / ".streamlit").mkdir()  # the app's settings (127.0.0.1 only: run.sh refuses more without sign-in)
    (project / ".streamlit" / "config.toml").write_bytes((ROOT / ".streamlit" / "config.toml").read_bytes())
    bin_dir = project / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    record = '#!/bin/sh\necho "$(basename "$0") $* REDIS_URL=${REDIS_URL-unset}" >> "$(dirname "$0")/../../started"\n'
    (bin_dir / "huey_consumer").write_text(record + "exec sleep 30\n")
    (bin_dir / "streamlit").write_text(record + "sleep 1\n")  # then exits: run.sh stops what it started
    for script in (*(project / "scripts").iterdir(), *bin_dir.iterdir()):
        script.chmod(0o755)
    (project / ".env").write_text(dotenv)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_AD_", "REDIS_URL", "TENANTPILOT_", "PORT"))}
    result = subprocess.run(["bash", str(project / "scripts" / "run.sh")], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=timeout)
    return result, project


def test_run_sh_does_not_run_or_expand_what_dotenv_holds(tmp_path):
    marker = tmp_path / "ran"
    dotenv = ("AZURE_AD_CLIENT_ID=5f0c3a3e-7d1b-4b9a-9a57-3c3f2a1e9b10\n"
              f"AZURE_AD_CLIENT_SECRET=a`touch {marker}`$(touch {marker})$HOME\n"
              "REDIS_URL=redis://:p&ss@127.0.0.1:6379/0\nTENANTPILOT_WORKERS=3\nPORT=8612\n")
    result, project = run_sh_in(tmp_path, dotenv)
    started = (project / "started").read_text().splitlines()
    assert not marker.exists(), result.stdout + result.stderr
    assert "huey_consumer huey_worker.huey -w 3 -m 0.5 REDIS_URL=unset" in started, started
    assert "streamlit run streamlit_app.py --server.port 8612 REDIS_URL=unset" in started, started
    assert stat.S_IMODE((project / "data").stat().st_mode) == 0o700


def test_run_sh_stops_on_a_bad_value_without_starting_anything(tmp_path):
    result, project = run_sh_in(tmp_path, "REDIS_URL=http://:s3cr3t-pw@redis.internal:6379\n")
    assert result.returncode != 0 and not (project / "started").exists()
    assert "REDIS_URL" in result.stderr and "s3cr3t-pw" not in result.stderr + result.stdout
