"""Truthful status (issue 18, row 15), with a real consumer and the simulator: a partial run shows its cause
(the types not read and why) where a failed run shows its error, in `health`, `tenants list` and the
Tenants page's frame (health.with_causes); Health is not all clear while a tenant's last run failed or a
type has not been read for longer than TENANTPILOT_NOT_READ_DAYS."""

from __future__ import annotations

import json

from realparts import CONTOSO, add_and_sync, run_cli, store_of

from tenantpilot.ops.health import with_causes


def test_a_partial_run_shows_its_cause_and_a_failed_one_is_not_all_clear(consumer, env: dict[str, str],
                                                                         sim) -> None:
    try:
        add_and_sync(env)
        sim.forbidden_paths = {"/deviceManagement/deviceCompliancePolicies"}
        run_cli(env, "sync", CONTOSO, "--wait", "--timeout", "180", timeout=210)
        report = json.loads(run_cli(env, "health").stdout)
        (tenant,) = report["tenants"]
        assert tenant["status"] == "partial"
        assert tenant["error"].startswith("partial: ") and "Compliance" in tenant["error"], tenant
        assert "forbidden" in tenant["error"].lower(), tenant
        assert report["attention"] == []  # partial: the data is there, the cause is shown
        # a type not read for longer than TENANTPILOT_NOT_READ_DAYS (here 9 ms: the second sync alone took
        # longer since the first read it) asks for attention
        stale = json.loads(run_cli({**env, "TENANTPILOT_NOT_READ_DAYS": "0.0000001"}, "health").stdout)
        assert any(line.startswith("Contoso: Compliance") and "not read since" in line and "forbidden" in line
                   for line in stale["attention"]), stale["attention"]
        listed = run_cli(env, "tenants", "list").stdout
        assert "Compliance" in listed and "forbidden" in listed.lower(), listed
        frame = with_causes(store_of(env), store_of(env).tenants())
        assert frame.filter(frame["tenant_id"] == CONTOSO)["last_error"][0] == tenant["error"]

        sim.forbidden_paths = {"/deviceManagement", "/deviceAppManagement", "/identity"}  # every type refused
        run_cli(env, "sync", CONTOSO, "--wait", "--timeout", "180", timeout=210, expect=1)
        report = json.loads(run_cli(env, "health").stdout)
        assert report["tenants"][0]["status"] == "failed"
        (line,) = report["attention"]
        assert line.startswith("Contoso: last sync failed: ")
    finally:
        sim.reset_knobs()
