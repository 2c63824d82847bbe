"""Named alert channels (tenantpilot/ops/channels.py): read from the environment (URLs never shown), routed per
tenant (its own, else its groups', else `default`), stored as names only (a real DuckDB file), delivered to a
real local HTTP receiver, and chosen on the Tenants page by an admin (AppTest through the real router)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from apptest import APP, CONTOSO, FABRIKAM, NORTHWIND
from streamlit.testing.v1 import AppTest
from test_groups_activity import AUTH

from tenantpilot.config import ConfigError, load_settings
from tenantpilot.ops import alerts, channels
from tenantpilot.store import Store

HOOK = "https://hooks.example.com/s3cr3t-default"
TEAMS = "https://contoso.webhook.office.com/webhookb2/s3cr3t-health"
ENV = {"TENANTPILOT_ALERT_WEBHOOK": HOOK,
       "TENANTPILOT_ALERT_CHANNEL_HEALTHCARE_TEAMS": TEAMS,
       "TENANTPILOT_ALERT_CHANNEL_HEALTHCARE_SMTP": "smtps://alerts:pw-s3cr3t@mail.example.com",
       "TENANTPILOT_ALERT_CHANNEL_HEALTHCARE_TO": "care@example.com, lead@example.com",
       "TENANTPILOT_ALERT_CHANNEL_HEALTHCARE_FROM": "tp@example.com",
       "TENANTPILOT_ALERT_CHANNEL_RETAIL_EAST_SLACK": "https://hooks.slack.com/services/T/B/s3cr3t-retail"}


def test_named_channels_are_read_from_the_environment_and_never_shown() -> None:
    cfg = load_settings(ENV, dotenv=False)
    assert channels.names(cfg) == ["default", "healthcare", "retail_east", "off"]
    assert channels.targets(cfg, ["default"]) == alerts.configured_channels(cfg) == ["webhook"]
    assert channels.targets(cfg, ["healthcare", "retail_east", "healthcare"]) == [
        "healthcare.teams", "healthcare.email", "retail_east.slack"]
    health = channels.endpoints(cfg, "healthcare")
    assert (health.alert_teams, health.alert_webhook, health.alert_to, health.alert_from) == (
        TEAMS, None, ("care@example.com", "lead@example.com"), "tp@example.com")
    assert "s3cr3t" not in repr(cfg) and "s3cr3t" not in repr(cfg.alert_channels)
    assert channels.any_configured(load_settings({"TENANTPILOT_ALERT_CHANNEL_X_SLACK": HOOK}, dotenv=False))
    assert not channels.any_configured(load_settings({}, dotenv=False))


@pytest.mark.parametrize(("env", "message"), [
    ({"TENANTPILOT_ALERT_CHANNEL_CARE_TEAMS": "not a url s3cr3t"}, "TENANTPILOT_ALERT_CHANNEL_CARE_TEAMS is not"),
    ({"TENANTPILOT_ALERT_CHANNEL_CARE_SMTP": "smtp://u:s3cr3t@mail.example.com"},
     "TENANTPILOT_ALERT_CHANNEL_CARE_TO is missing"),
    ({"TENANTPILOT_ALERT_CHANNEL_CARE_TO": "a@b.c"}, "_TO is set without TENANTPILOT_ALERT_CHANNEL_CARE_SMTP"),
    ({"TENANTPILOT_ALERT_CHANNEL_CARE_FROM": "a@b.c"}, "'care' has no endpoint"),
    ({"TENANTPILOT_ALERT_CHANNEL_DEFAULT_TEAMS": TEAMS}, "'default' is reserved"),
    ({"TENANTPILOT_ALERT_CHANNEL_OFF_TEAMS": TEAMS}, "'off' is reserved"),
    ({"TENANTPILOT_ALERT_CHANNEL_" + "X" * 41 + "_TEAMS": TEAMS}, "is not a channel name"),
])
def test_a_malformed_channel_is_refused_naming_the_variable_not_the_secret(env: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(env, dotenv=False)
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize(("own", "groups", "routed"), [
    ([], [], ["default"]),
    ([], ["healthcare", "retail_east"], ["healthcare", "retail_east"]),  # every group's: all who watch hear of it
    (["retail_east"], ["healthcare"], ["retail_east"]),  # its own win
    (["default", "healthcare"], ["retail_east"], ["default", "healthcare"]),
    (["off"], ["healthcare"], []),  # a tenant that wants no alert, whatever its groups say
    ([], ["healthcare", "off"], []),  # a group that names off silences its tenants without their own
    (["healthcare"], ["off"], ["healthcare"]),
])
def test_routing(own: list[str], groups: list[str], routed: list[str]) -> None:
    assert channels.route(own, groups) == routed


@pytest.mark.parametrize(("target", "split"), [("teams", ("default", "teams")),
                                                ("retail_east.slack", ("retail_east", "slack"))])
def test_a_target_names_its_channel_and_endpoint(target: str, split: tuple[str, str]) -> None:
    assert channels.split(target) == split


def test_a_removed_channel_is_unknown_and_has_no_target() -> None:
    cfg = load_settings(ENV, dotenv=False)
    assert channels.unknown(cfg, ["healthcare", "gone"]) == ["gone"]
    assert channels.targets(cfg, ["gone", "healthcare"]) == ["healthcare.teams", "healthcare.email"]
    assert channels.targets(cfg, ["off"]) == [] and channels.unknown(cfg, ["off", "default"]) == []
    with pytest.raises(alerts.DeliveryError, match="'gone' is not configured"):
        alerts.send("gone.teams", object(), cfg)  # type: ignore[arg-type]


def test_the_database_holds_channel_names_per_group_and_tenant(db: Store) -> None:
    for tid, name in ((CONTOSO, "Contoso"), (FABRIKAM, "Fabrikam"), (NORTHWIND, "Northwind")):
        db.add_tenant(tid, name, "tenant")
    db.set_group("B-Health", [CONTOSO, FABRIKAM])
    db.set_group("A-Retail", [FABRIKAM])
    db.set_alert_channels(group_name="B-Health", channels=["healthcare"])
    db.set_alert_channels(group_name="A-Retail", channels=["retail_east", "default"])
    db.set_alert_channels(tenant_id=CONTOSO, channels=["default"])
    assert db.alert_channels_of(CONTOSO) == (["default"], ["healthcare"])
    assert db.alert_channels_of(FABRIKAM) == ([], ["default", "retail_east", "healthcare"])
    assert db.alert_channels_of(NORTHWIND) == ([], [])
    assert db.alert_channel_settings().rows() == [("group", "A-Retail", ["default", "retail_east"]),
                                                  ("group", "B-Health", ["healthcare"]),
                                                  ("tenant", CONTOSO, ["default"])]
    db.set_group("B-Health", [])  # a group that is gone carries no channel
    db.remove_tenant(CONTOSO)  # nor does a removed tenant
    db.set_alert_channels(group_name="A-Retail", channels=[])
    assert db.alert_channel_settings().height == 0
    with db.connect() as con:  # names only: no URL ever reaches the file
        assert con.execute("SELECT count(*) FROM group_alert_channels").fetchone() == (0,)


class _Receiver:
    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.posts.append((self.path, json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    r = _Receiver()
    yield r
    r.server.shutdown()


def test_each_target_is_delivered_to_its_own_channels_endpoint(receiver: _Receiver) -> None:
    from test_alerts import hostile_alert

    cfg = load_settings({"TENANTPILOT_ALERT_WEBHOOK": f"{receiver.url}/default-path",
                         "TENANTPILOT_ALERT_CHANNEL_HEALTHCARE_WEBHOOK": f"{receiver.url}/health-path",
                         "TENANTPILOT_ALERT_CHANNEL_HEALTHCARE_SLACK": f"{receiver.url}/health-slack"}, dotenv=False)
    result = alerts.deliver(hostile_alert(), channels.targets(cfg, ["healthcare"]), cfg)
    assert not result.retry and not result.given_up
    assert sorted(p for p, _ in receiver.posts) == ["/health-path", "/health-slack"]  # not the default's


def admin_on_tenants(monkeypatch: pytest.MonkeyPatch) -> AppTest:
    from tenantpilot.config import settings

    monkeypatch.setenv("TENANTPILOT_ALERT_CHANNEL_HEALTHCARE_TEAMS", TEAMS)
    settings.cache_clear()
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": True, "preferred_username": "boss@msp.example", "name": "Boss",
               "roles": ["TenantPilot.Admin"]}
    at.switch_page("app_pages/tenants.py").run()
    assert not at.exception, at.exception
    return at


def test_an_admin_gives_a_group_a_channel_on_the_tenants_page(filled: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    filled.set_group("Health", [CONTOSO, FABRIKAM])
    at = admin_on_tenants(monkeypatch)
    assert at.multiselect(key="alert_route_channels").options == ["default", "healthcare", "off"]
    at.selectbox(key="alert_route_for").set_value("group:Health")
    at.multiselect(key="alert_route_channels").set_value(["healthcare"])
    next(b for b in at.button if b.label == "Save alert channels").click().run()
    assert not at.exception, at.exception
    assert filled.alert_channels_of(CONTOSO) == ([], ["healthcare"])
    log = filled.activity()
    assert log["action"].to_list() == ["alert channels"] * 2 and set(log["tenant_id"]) == {CONTOSO, FABRIKAM}
    assert set(log["actor"]) == {"boss@msp.example"} and TEAMS not in " ".join(log["detail"])
    shown = [str(d.value) for d in at.dataframe]
    assert any("healthcare" in s and "Health" in s for s in shown) and not any(TEAMS in s for s in shown)


def test_an_analyst_cannot_change_channels(filled: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from tenantpilot.config import settings

    settings.cache_clear()
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["auth"] = AUTH
    at.user = {"is_logged_in": True, "preferred_username": "ann@msp.example", "name": "Ann",
               "roles": ["TenantPilot.Analyst"]}
    at.switch_page("app_pages/tenants.py").run()
    assert not at.exception
    assert "alert_route_for" not in [s.key for s in at.selectbox]


def test_health_asks_for_attention_when_a_named_channel_is_not_configured(db: Store) -> None:
    from tenantpilot.ops import health

    cfg = load_settings(ENV, dotenv=False)
    db.add_tenant(CONTOSO, "Contoso", "tenant")
    db.set_group("Health", [CONTOSO])
    db.set_alert_channels(group_name="Health", channels=["healthcare", "oncall"])
    db.set_alert_channels(tenant_id=CONTOSO, channels=["pager", "default"])
    found = health.unconfigured_channels(db, cfg, {CONTOSO: "Contoso"})
    assert [(c["kind"], c["owner"], c["channel"]) for c in found] == [("group", "Health", "oncall"),
                                                                       ("tenant", "Contoso", "pager")]
    lines = health.attention({"alerts": {"given_up": []}, "unconfigured_channels": found})
    assert lines == ["group Health: alert channel oncall is not configured: set TENANTPILOT_ALERT_CHANNEL_ONCALL_TEAMS "
                     "(or _SLACK, _WEBHOOK, _SMTP), or choose other channels for the group",
                     "tenant Contoso: alert channel pager is not configured: set TENANTPILOT_ALERT_CHANNEL_PAGER_TEAMS "
                     "(or _SLACK, _WEBHOOK, _SMTP), or choose other channels for the tenant"]


def test_a_tenant_rekeyed_to_its_guid_keeps_its_groups_channels_and_activity(db: Store) -> None:
    domain, guid = "woodgrove.onmicrosoft.com", "44444444-4444-4444-8444-444444444444"
    db.add_tenant(domain, "Woodgrove", "tenant")
    db.set_group("Health", [domain])
    db.set_alert_channels(group_name="Health", channels=["healthcare"])
    db.set_alert_channels(tenant_id=domain, channels=["default"])
    db.record_activity("boss@msp.example", "tenant added", [domain], "Woodgrove")
    assert db.resolve_tenant_guid(domain, guid) == guid
    assert db.group_members().rows() == [("Health", guid)]
    assert db.alert_channels_of(guid) == (["default"], ["healthcare"]) and db.alert_channels_of(domain) == ([], [])
    assert db.activity([guid])["tenant_id"].to_list() == [guid]


@pytest.mark.parametrize(("args", "code", "says"), [
    (["--group", "Health", "healthcare", "default"], 0, "group Health: healthcare, default"),
    (["--tenant", "Contoso", "off"], 0, f"Contoso ({CONTOSO}): off"),
    (["--tenant", "Contoso"], 0, f"Contoso ({CONTOSO}): follows its groups (or default)"),
    (["--group", "Health", "pager"], 2, "alert channel(s) pager not configured; configured: default, healthcare, off"),
    (["--group", "Nowhere", "healthcare"], 2, "no tenant group 'Nowhere'"),
    (["--tenant", "Contoso", "Bad Name!"], 2, "'Bad Name!' is not a channel name"),
])
def test_the_cli_sets_channel_names(tmp_path, args: list[str], code: int, says: str) -> None:
    import subprocess
    import sys

    store = Store(tmp_path / "cli.duckdb")
    store.add_tenant(CONTOSO, "Contoso", "tenant")
    store.set_group("Health", [CONTOSO])
    env = {"TENANTPILOT_DB": str(store.path), "TENANTPILOT_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin",
           "HOME": str(tmp_path), "TENANTPILOT_ALERT_CHANNEL_HEALTHCARE_TEAMS": TEAMS}
    done = subprocess.run([sys.executable, "-m", "tenantpilot", "alerts", "channels", *args], cwd=tmp_path, env=env,
                          text=True, capture_output=True, timeout=120)
    assert done.returncode == code, done.stderr
    assert says in (done.stdout if code == 0 else done.stderr)
    assert TEAMS not in done.stdout + done.stderr
    listed = subprocess.run([sys.executable, "-m", "tenantpilot", "alerts", "channels"], cwd=tmp_path, env=env,
                            text=True, capture_output=True, timeout=120).stdout
    assert "channel healthcare: teams" in listed and "channel default: no endpoint configured" in listed
    assert TEAMS not in listed
