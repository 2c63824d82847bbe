"""The command line records what it does as cli:<os user> (a real `python -m tenantpilot` subprocess on a real
DuckDB file): adding a tenant, setting its schedule, removing it; the Activity page lists these rows."""

from __future__ import annotations

import getpass
import os

import pytest
from realparts import run_cli

from tenantpilot.store import Store


@pytest.mark.parametrize("steps", [[
    (("tenants", "add", "contoso.onmicrosoft.com", "--name", "Contoso"), "tenant added"),
    (("schedule", "set", "Contoso", "30 1 * * 1-5"), "schedule"),
    (("schedule", "set", "Contoso", "default"), "schedule"),
    (("tenants", "remove", "Contoso"), "tenant removed"),
]])
def test_the_cli_records_its_actions_as_cli_user(tmp_path, steps):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_AD_", "TENANTPILOT_", "REDIS_URL"))}
    env.update(TENANTPILOT_DATA_DIR=str(tmp_path), TENANTPILOT_DB=str(tmp_path / "app.duckdb"))
    for args, _action in steps:
        run_cli(env, *args)
    log = Store(tmp_path / "app.duckdb").activity()
    assert log["action"].to_list() == [action for _args, action in reversed(steps)]
    assert set(log["actor"]) == {f"cli:{getpass.getuser()}"}
    assert log["detail"].to_list()[1:3] == ["default", "30 1 * * 1-5"]
