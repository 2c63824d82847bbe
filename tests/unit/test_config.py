"""The configuration contract: defaults, demo mode, and one-line errors naming the variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tenantpilot.config import ConfigError, load_settings

GUID = "5f0c3a3e-7d1b-4b9a-9a57-3c3f2a1e9b10"


def test_defaults_are_demo_mode_with_embedded_queue_and_db(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = load_settings({}, dotenv=False)
    assert cfg.demo and cfg.queue_backend == "sqlite"
    assert cfg.db_path == tmp_path / "data" / "tenantpilot.duckdb"
    assert cfg.graph_url.startswith("https://127.0.0.1:")


def test_real_credentials_use_public_cloud_and_redis():
    cfg = load_settings({"AZURE_AD_CLIENT_ID": GUID, "AZURE_AD_CLIENT_SECRET": "s3cr3t-value",
                         "REDIS_URL": "redis://127.0.0.1:6379/0"}, dotenv=False)
    assert not cfg.demo and cfg.queue_backend == "redis"
    assert cfg.graph_url == "https://graph.microsoft.com"
    assert cfg.authority_host == "https://login.microsoftonline.com"
    assert "s3cr3t-value" not in repr(cfg)


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"AZURE_AD_CLIENT_ID": "not-a-guid", "AZURE_AD_CLIENT_SECRET": "x"}, "AZURE_AD_CLIENT_ID"),
        ({"AZURE_AD_CLIENT_ID": GUID}, "AZURE_AD_CLIENT_SECRET"),
        ({"AZURE_AD_CLIENT_SECRET": "x"}, "AZURE_AD_CLIENT_ID"),
        ({"AZURE_AD_CLIENT_ID": GUID, "AZURE_AD_CLIENT_CERTIFICATE_PATH": "/nope.pem"},
         "AZURE_AD_CLIENT_CERTIFICATE_PATH"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL"),
        ({"TENANTPILOT_GRAPH_URL": "graph.microsoft.com"}, "TENANTPILOT_GRAPH_URL"),
        ({"TENANTPILOT_STALE_SECONDS": "soon"}, "TENANTPILOT_STALE_SECONDS"),
        ({"TENANTPILOT_CONCURRENCY": "0"}, "TENANTPILOT_CONCURRENCY"),
        ({"TENANTPILOT_SYNC_SCHEDULE": "0 25 * * *"}, "TENANTPILOT_SYNC_SCHEDULE"),
        ({"TENANTPILOT_SYNC_SCHEDULE": "daily"}, "TENANTPILOT_SYNC_SCHEDULE"),
        ({"TENANTPILOT_SCHEDULE_JITTER_SECONDS": "-1"}, "TENANTPILOT_SCHEDULE_JITTER_SECONDS"),
    ],
)
def test_bad_values_name_the_variable(env, variable):
    with pytest.raises(ConfigError) as exc:
        load_settings(env, dotenv=False)
    assert variable in str(exc.value) and "\n" not in str(exc.value)


def test_dotenv_file_is_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for var in ("AZURE_AD_CLIENT_ID", "AZURE_AD_CLIENT_SECRET", "TENANTPILOT_HISTORY_DAYS"):
        monkeypatch.delenv(var, raising=False)
    Path(".env").write_text(f"AZURE_AD_CLIENT_ID={GUID}\nAZURE_AD_CLIENT_SECRET=from-dotenv\nTENANTPILOT_HISTORY_DAYS=3\n")
    try:
        cfg = load_settings()
        assert cfg.client_id == GUID and cfg.history_days == 3 and not cfg.demo
    finally:  # load_dotenv set them in os.environ; monkeypatch.delenv here would record and restore them
        for var in ("AZURE_AD_CLIENT_ID", "AZURE_AD_CLIENT_SECRET", "TENANTPILOT_HISTORY_DAYS"):
            os.environ.pop(var, None)


def test_tenant_ids_are_case_insensitive_keys():
    from tenantpilot.tenants import tenant_key, valid_tenant_id

    assert tenant_key(" Contoso.OnMicrosoft.com ") == "contoso.onmicrosoft.com"
    assert valid_tenant_id("72F988BF-86F1-41AF-91AB-2D7CD011DB47") and valid_tenant_id("contoso.com")
    assert not valid_tenant_id("contoso") and not valid_tenant_id("not a tenant")
