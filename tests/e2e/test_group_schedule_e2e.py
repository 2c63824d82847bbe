"""A tenant group's schedule and baseline, end to end through a real huey_consumer's periodic task against the
simulator: Contoso (in the group, no schedule of its own) follows the group's one-minute cron and syncs; Fabrikam
(in the group, its own schedule `off`) does not; Northwind (in no group) follows the global schedule, `off` here.
`schedule show` names where each schedule comes from. The alert after Contoso's scheduled sync goes to the group's
alert channel (`healthcare`, a named channel whose webhook is a real local receiver), not to the default channel's
receiver, and holds it to the group's baseline only, though another baseline is imported too."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from apptest import write_snapshot
from realparts import CONTOSO, FABRIKAM, Consumer, run_cli, store_of
from test_alerts_e2e import Receiver

from tenantpilot.config import settings

NORTHWIND = "33333333-3333-4333-8333-333333333333"


def _ticks(log_dir: Path) -> list[dict]:
    path = log_dir / "worker-combined.log"
    if not path.exists():
        return []
    events = [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
    return [e for e in events if e.get("event") == "schedule tick"]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_group_schedule_is_followed_unless_a_tenant_has_its_own(queue_env, backend, tmp_path, monkeypatch):
    hook, default_hook = Receiver(fail_first=0), Receiver(fail_first=0)
    extra = {"TENANTPILOT_SYNC_SCHEDULE": "off", "TENANTPILOT_SCHEDULE_JITTER_SECONDS": "0",
             "TENANTPILOT_ALERT_CHANNEL_HEALTHCARE_WEBHOOK": hook.url, "TENANTPILOT_ALERT_WEBHOOK": default_hook.url,
             "TENANTPILOT_ALERT_ALWAYS": "1"}
    for k, v in extra.items():
        monkeypatch.setenv(k, v)
    settings.cache_clear()
    env = {**queue_env, **extra}
    for tid, name in ((CONTOSO, "Contoso"), (FABRIKAM, "Fabrikam"), (NORTHWIND, "Northwind")):
        run_cli(env, "tenants", "add", tid, "--name", name)
    run_cli(env, "schedule", "set", "Fabrikam", "off")
    store = store_of(env)
    store.set_group("Healthcare", [CONTOSO, FABRIKAM])
    store.set_group_schedule("Healthcare", "* * * * *")
    for baseline, name in (("baseline:groupcis", "GroupCIS"), ("baseline:othercis", "OtherCIS")):
        store.add_tenant(baseline, name, "baseline")
        write_snapshot(store, baseline, {name: {"fw_enable": "true"}})
    store.set_group_baseline("Healthcare", "baseline:groupcis")
    run_cli(env, "alerts", "channels", "--group", "Healthcare", "healthcare")
    assert "group Healthcare: healthcare" in run_cli(env, "alerts", "channels").stdout
    shown = {r["tenant_id"]: r for r in json.loads(run_cli(env, "schedule", "show", "--json").stdout)}
    assert (shown[CONTOSO]["source"], shown[CONTOSO]["schedule"]) == ("group Healthcare", "* * * * *")
    assert (shown[FABRIKAM]["source"], shown[FABRIKAM]["schedule"]) == ("tenant", "off")
    assert (shown[NORTHWIND]["source"], shown[NORTHWIND]["schedule"]) == ("global", "off")

    log_dir = Path(env["TENANTPILOT_LOG_DIR"])
    consumer = Consumer(env, tmp_path / "consumer.log").start()
    try:
        deadline = time.monotonic() + 200
        while time.monotonic() < deadline:
            done = [r for r in store_of(env).runs(CONTOSO).iter_rows(named=True)
                    if r["status"] in ("succeeded", "partial", "failed")]
            if done and hook.bodies:
                break
            time.sleep(1)
        else:
            pytest.fail(f"no group-scheduled run in time: ticks={_ticks(log_dir)}\n{consumer.output()[-3000:]}")
    finally:
        consumer.stop()
        hook.server.shutdown()
        default_hook.server.shutdown()
    contoso = list(store_of(env).runs(CONTOSO).iter_rows(named=True))
    assert contoso and all(r["trigger"] == "schedule" for r in contoso)
    assert any(r["status"] == "succeeded" for r in contoso), contoso
    assert store_of(env).runs(FABRIKAM).height == 0 and store_of(env).runs(NORTHWIND).height == 0
    fired = [f["tenant"] for t in _ticks(log_dir) for f in t["fired"]]
    assert CONTOSO in fired and FABRIKAM not in fired and NORTHWIND not in fired
    alert = hook.bodies[0]
    assert alert["tenant_id"] == CONTOSO and "cmp_baseline=GroupCIS" in alert["url"], alert["url"]
    assert "OtherCIS" not in json.dumps(alert)
    assert default_hook.answers == []  # the group's channel replaces the default one for its tenants
