"""Alert messages and channel payloads (pure, table-driven), delivery's retry decisions, and the
alert settings of config.py."""

from __future__ import annotations

from datetime import date, datetime, timezone

import polars as pl
import pytest

from tenantpilot.analysis import deviations, drift
from tenantpilot.config import ConfigError, load_settings
from tenantpilot.flatten.schema import SETTING_SCHEMA
from tenantpilot.ops import alerts

SC = "settingsCatalog"
APP = "https://tp.example.com"


def rows(*cells: tuple[str, str, str]) -> pl.DataFrame:
    """(policy id, setting key, value) -> setting rows of one run."""
    out = []
    for pid, key, value in cells:
        r = {c: None for c in SETTING_SCHEMA}
        r.update(policy_id=pid, policy_name=f"Policy {pid}", policy_type=SC, odata_type="", platform="windows",
                 setting_key=key, setting_id=key, setting_name=f"Name {key}", category="Cat", value=value,
                 compare_value=value, configured=True)
        out.append(r)
    return pl.DataFrame(out, schema=SETTING_SCHEMA).with_columns(pl.lit("t").alias("tenant_id"))


def run(status: str = "succeeded", error: str | None = None) -> dict:
    return {"run_id": 7, "tenant_id": "t", "status": status, "error": error, "trigger": "schedule"}


def facts(old: pl.DataFrame | None, new: pl.DataFrame, *, status: str = "succeeded", error: str | None = None,
          base: pl.DataFrame | None = None, accepted: pl.DataFrame | None = None, not_read: list | None = None,
          expired: pl.DataFrame | None = None) -> alerts.Facts:
    f = alerts.Facts(run(status, error), "Contoso", "tenant")
    if status != "failed" and old is not None:
        found = drift.changes(old, new)
        f.previous_run, f.events, f.settings = 6, found.events, found.settings
    if base is not None:
        keys = accepted if accepted is not None else deviations.accepted_keys(deviations.empty_register(),
                                                                               date(2026, 1, 1), "b")
        f.baselines = [("b", "CIS", alerts.new_deviations(old, new, base, keys))]
    f.not_read = not_read or []
    f.expired = expired
    return f


OLD = rows(("p1", "fw", "On"), ("p1", "pin", "6"), ("p2", "usb", "block"))
BASE = rows(("b1", "fw", "On"), ("b1", "pin", "6"))

CASES = [
    # (id, facts, always, expected counts subset (None: no message), text fragments)
    ("nothing changed: no message", facts(OLD, OLD), False, None, []),
    ("nothing changed, ALERT_ALWAYS: a message", facts(OLD, OLD), True, {"setting_changes": 0}, ["0 change(s)"]),
    ("a setting changed", facts(OLD, rows(("p1", "fw", "Off"), ("p1", "pin", "6"), ("p2", "usb", "block"))),
     False, {"settings_changed": 1, "policy_events": 0}, ["setting changed: Policy p1 / Name fw", "On → Off"]),
    ("a policy deleted", facts(OLD, rows(("p1", "fw", "On"), ("p1", "pin", "6"))), False,
     {"policy_deleted": 1, "policy_events": 1}, ["policy deleted: Policy p2"]),
    ("a new deviation from the baseline",
     facts(OLD, rows(("p1", "fw", "Off"), ("p1", "pin", "6"), ("p2", "usb", "block")), base=BASE), False,
     {"new_deviations": 1}, ["Name fw [Settings catalog]: different value: Off (baseline CIS: On)"]),
    ("a baseline setting gone from the tenant: named as the baseline vocabulary says",
     facts(OLD, rows(("p1", "fw", "On"), ("p1", "pin", "6")), base=rows(("b1", "fw", "On"), ("b1", "usb", "block"))),
     False, {"new_deviations": 1}, ["Name usb [Settings catalog]: missing in the tenant (baseline CIS: block)"]),
    ("an accepted deviation is left out",
     facts(OLD, rows(("p1", "fw", "Off"), ("p1", "pin", "6"), ("p2", "usb", "block")), base=BASE,
           accepted=pl.DataFrame({"tenant_id": ["t"], "policy_type": [SC], "scope": ["windows"],
                                  "setting_key": ["fw"], "label": ["accepted (x, until 2027-01-01)"]})),
     False, {"new_deviations": 0, "settings_changed": 1}, []),
    ("a deviation that existed before is not new", facts(rows(("p1", "fw", "Off")), rows(("p1", "fw", "Off")),
                                                         base=BASE), False, None, []),
    ("a failed sync", facts(None, OLD, status="failed", error="Graph said 401 for eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2ln"),
     False, {"setting_changes": 0}, ["Sync failed", "the scheduled sync failed"]),
    ("a partial sync", facts(OLD, OLD, status="partial",
                             not_read=[{"label": "Compliance policies", "reason": "forbidden"}]),
     False, {"not_read_types": 1}, ["Compliance policies (forbidden)", "sync partial"]),
    ("an accepted deviation expired", facts(OLD, OLD, expired=pl.DataFrame(
        [{"setting_name": "Name fw", "baseline": "CIS", "reason": "pilot", "owner": "Ops",
          "expires_on": date(2026, 11, 30)}])), False, {"expired_deviations": 1},
     ["expired on 2026-11-30, open again: Name fw against CIS (pilot; owner Ops)"]),
    ("first snapshot, no baseline: nothing to say", facts(None, OLD), False, None, []),
]


@pytest.mark.parametrize("name, given, always, counts, fragments", CASES, ids=[c[0] for c in CASES])
def test_message(name: str, given: alerts.Facts, always: bool, counts: dict | None, fragments: list[str]) -> None:
    alert = alerts.build(given, app_url=APP, always=always)
    if counts is None:
        assert alert is None
        return
    assert alert is not None
    assert {k: alert.counts[k] for k in counts} == counts
    text = alerts.render_text(alert)
    for fragment in fragments:
        assert fragment in text
    assert "eyJ" not in text and text.splitlines()[-1].startswith(f"Open in TenantPilot: {APP}/compare?cmp_tenants=Contoso")
    assert alerts.Alert.from_dict(alert.to_dict()) == alert  # what the retry task carries


def test_first_lines_by_name_then_a_count_and_who_changed_it() -> None:
    old = rows(*((f"p{i}", f"k{i}", "1") for i in range(15)))
    new = rows(*((f"p{i}", f"k{i}", "2") for i in range(15)))
    f = facts(old, new)
    assert f.settings is not None
    f.settings = f.settings.with_columns(pl.lit("admin@contoso.com").alias("changed_by"))
    alert = alerts.build(f, app_url=APP)
    assert alert is not None and len(alert.changes) == alerts.MAX_LINES
    text = alerts.render_text(alert)
    assert "… and 5 more change(s)" in text and "(by admin@contoso.com)" in text


@pytest.mark.parametrize("attribution, shown", [
    ("setting", "(by admin@contoso.com)"),  # Intune's event named the setting
    ("policy", "(by admin@contoso.com (per policy))"),  # it named the policy only: said so
])
def test_an_alert_says_when_who_changed_it_is_per_policy(attribution: str, shown: str) -> None:
    f = facts(rows(("p1", "k1", "1")), rows(("p1", "k1", "2")))
    assert f.settings is not None
    f.settings = f.settings.with_columns(pl.lit("admin@contoso.com").alias("changed_by"),
                                         pl.lit(attribution).alias("attribution"))
    alert = alerts.build(f, app_url=APP)
    assert alert is not None and shown in alerts.render_text(alert)


@pytest.mark.parametrize("key, value, shown", [
    ("wifi.preSharedKey", "hunter2", "********"),
    ("device_vendor_msft_password", "abc", "********"),
    ("proxy", "http://user:pw@proxy:8080", "http://***@proxy:8080"),
    ("fw", "On", "On"),
    ("fw", None, None),
])
def test_values_pass_the_secret_rule(key: str, value: str | None, shown: str | None) -> None:
    assert alerts.safe_value(value, key) == shown


HOSTILE = "[click](https://evil.example) <!channel> & *bold*"


def hostile_alert() -> alerts.Alert:
    old = rows(("p1", "fw", "On"))
    new = rows(("p1", "fw", HOSTILE))
    alert = alerts.build(facts(old, new), app_url=APP)
    assert alert is not None
    return alert


@pytest.mark.parametrize("payload, absent, present", [
    (alerts.slack_payload, ["<!channel>", "<https://evil"], ["&lt;!channel&gt;", "&amp;", f"<{APP}/compare"]),
    (alerts.teams_payload, ["[click](https", "*bold*"], ["\\[click\\]", "\\*bold\\*", f"]({APP}/compare"]),
    (alerts.webhook_payload, [], [HOSTILE]),  # JSON: data, not markup
])
def test_channel_payloads_keep_tenant_text_inert(payload, absent: list[str], present: list[str]) -> None:
    body = payload(hostile_alert())
    text = body["text"]
    for fragment in absent:
        assert fragment not in text
    for fragment in present:
        assert fragment in text


def test_email_message() -> None:
    mail = alerts.email_message(hostile_alert(), "tp@example.com", ["a@example.com", "b@example.com"])
    assert mail["To"] == "a@example.com, b@example.com" and mail["Subject"].startswith("TenantPilot: Contoso")


@pytest.mark.parametrize("outcome, attempt, retried", [
    (500, 0, True), (503, 3, True), ("connection", 0, True), (429, 0, True),
    (404, 0, False), (400, 0, False), (500, alerts.RETRY.max_retries, False),
])
def test_delivery_retries_by_the_shared_rule(outcome, attempt: int, retried: bool) -> None:
    cfg = load_settings({"TENANTPILOT_ALERT_WEBHOOK": "https://hooks.example.com/x"}, dotenv=False)
    seen: list[str] = []

    def failing(channel: str, alert: alerts.Alert, _cfg) -> None:
        seen.append(channel)
        raise alerts.DeliveryError(f"{channel}: HTTP {outcome}", outcome)

    again = alerts.deliver(hostile_alert(), ["webhook"], cfg, attempt, sender=failing)
    assert seen == ["webhook"]
    assert again.retry == retried
    if retried:
        assert again.channels == ["webhook"] and 0 < again.delay <= alerts.RETRY.max_backoff and not again.given_up
    else:
        assert again.channels == [] and list(again.given_up) == ["webhook"]


@pytest.mark.parametrize("env, message", [
    ({"TENANTPILOT_ALERT_WEBHOOK": "ftp://x/secret-token"}, "TENANTPILOT_ALERT_WEBHOOK is not an http"),
    ({"TENANTPILOT_ALERT_SMTP": "smtp://u:pw@mail.example.com"}, "TENANTPILOT_ALERT_TO is missing"),
    ({"TENANTPILOT_ALERT_SMTP": "mail.example.com", "TENANTPILOT_ALERT_TO": "a@b.c"}, "is not a mail URL"),
    ({"TENANTPILOT_ALERT_ALWAYS": "maybe"}, "is not a flag"),
])
def test_alert_settings_refused_without_showing_secrets(env: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings(env, dotenv=False)
    assert "secret-token" not in str(caught.value) and "pw" not in str(caught.value)


def test_alert_settings_read() -> None:
    cfg = load_settings({"TENANTPILOT_ALERT_SLACK": "https://hooks.slack.com/services/T/B/X",
                         "TENANTPILOT_ALERT_SMTP": "smtps://u:pw@mail.example.com",
                         "TENANTPILOT_ALERT_TO": "a@b.c, d@e.f", "TENANTPILOT_ALERT_ALWAYS": "1",
                         "TENANTPILOT_APP_URL": "https://tp.example.com/"}, dotenv=False)
    assert alerts.configured_channels(cfg) == ["slack", "email"]
    assert cfg.alert_to == ("a@b.c", "d@e.f") and cfg.alert_always and cfg.app_url == "https://tp.example.com"
    assert "hooks.slack.com" not in repr(cfg) and "pw" not in repr(cfg).replace("password", "")


def test_expired_deviations_since_the_previous_run() -> None:
    register = pl.DataFrame([
        {"deviation_id": 1, "expires_on": date(2026, 11, 30), "removed_at": None},
        {"deviation_id": 2, "expires_on": date(2026, 11, 20), "removed_at": None},
        {"deviation_id": 3, "expires_on": date(2026, 12, 2), "removed_at": None},
        {"deviation_id": 4, "expires_on": date(2026, 11, 30), "removed_at": datetime(2026, 11, 1, tzinfo=timezone.utc)},
    ])
    found = deviations.expired_since(register, date(2026, 11, 29), date(2026, 12, 2))
    assert found["deviation_id"].to_list() == [1]
