"""Alerts after scheduled syncs: what one message says, each channel's payload, and its delivery.

One message per scheduled sync run (`sync_runs.trigger = 'schedule'`), built in three steps:
* `collect` (reads the Store): the run, drift since the tenant's previous done run (drift.changes:
  policy events and setting changes), the types the run could not read, new deviations from the
  tenant's baselines and the accepted deviations that expired since the previous run.
  Which baselines: those the deviation register names for the tenant; else those its tenant groups carry;
  else every imported baseline (kind 'baseline').
  A *new deviation* is a baseline setting the tenant now misses or sets to another value, that it
  did not miss or differ on in the previous run, and that no valid accepted deviation covers.
* `build` (pure): an `Alert` with counts, the first MAX_LINES changes by name, the app's URL for
  the tenant; None when nothing changed and the run succeeded (unless `always`).
* `deliver` (I/O): every target of the tenant's channels (ops/channels.py routes them); a target that
  fails is retried by the caller after the delay of the one retry rule (graph/retry.py's RetryPolicy),
  up to its bound.
Values pass through the one secret rule (flatten/secrets.py); webhook URLs and the mail URL are
secrets themselves: they are never logged, and errors name the channel only.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from email.message import EmailMessage
from email.policy import SMTP
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlencode, urlparse

import polars as pl

from tenantpilot import logs, outbound
from tenantpilot.analysis import deviations, drift
from tenantpilot.analysis.compare import MATCH_KEY, cells
from tenantpilot.families import label as family_label
from tenantpilot.flatten.secrets import SECRET_MASK, is_secret_name, scrub_urls
from tenantpilot.graph.retry import CONNECTION, Attempts, Decision, RetryPolicy
from tenantpilot.ops import channels, transport

if TYPE_CHECKING:
    from tenantpilot.config import Settings
    from tenantpilot.store import Store

log = logging.getLogger("tenantpilot.alerts")
MAX_LINES = 10  # changes and deviations named in a message; the rest are counted
RETRY = RetryPolicy(max_retries=8, backoff_base=1.0, max_backoff=300.0)  # ~4 min of tries in all
TIMEOUT_S = 15.0  # each SMTP socket operation
WEBHOOK, TEAMS, SLACK, EMAIL = "webhook", "teams", "slack", "email"


# --- the facts of one run (read from the Store) -------------------------------------------------
@dataclass
class Facts:
    run: dict[str, Any]
    tenant: str  # display name
    kind: str  # tenant | demo | baseline
    previous_run: int | None = None
    events: pl.DataFrame | None = None  # drift.EVENT_COLUMNS (+ changed_by when known)
    settings: pl.DataFrame | None = None  # drift.DIFF_COLUMNS (+ changed_by when known)
    not_read: list[dict[str, Any]] = field(default_factory=list)  # run_types rows with status != read
    baselines: list[tuple[str, str, pl.DataFrame]] = field(default_factory=list)  # (id, name, new deviations)
    expired: pl.DataFrame | None = None  # register rows expired since the previous run


def deviating(tenant_rows: pl.DataFrame, base_rows: pl.DataFrame) -> pl.DataFrame:
    """Baseline settings (configured) the tenant misses or sets to another value: MATCH_KEY,
    setting_name, value (the tenant's, null when missing), baseline_value."""
    base = cells(base_rows.with_columns(pl.lit("b").alias("tenant_id")))
    own = cells(tenant_rows.with_columns(pl.lit("t").alias("tenant_id"))) if tenant_rows.height else base.clear()
    joined = base.join(own.select(*MATCH_KEY, "cmp", "value"), on=list(MATCH_KEY), how="left", suffix="_t")
    return joined.filter(~pl.col("cmp").eq_missing(pl.col("cmp_t"))).select(
        *MATCH_KEY, "setting_name", pl.col("value_t").alias("value"), pl.col("value").alias("baseline_value"))


def new_deviations(old_rows: pl.DataFrame | None, new_rows: pl.DataFrame, base_rows: pl.DataFrame,
                   accepted: pl.DataFrame) -> pl.DataFrame:
    """Deviations now that the previous snapshot did not have and no accepted deviation covers
    (accepted: deviations.accepted_keys of this tenant). Without a previous snapshot, every one."""
    now = deviating(new_rows, base_rows)
    if accepted.height:
        now = now.join(accepted.select(MATCH_KEY), on=list(MATCH_KEY), how="anti")
    if old_rows is not None:
        now = now.join(deviating(old_rows, base_rows).select(MATCH_KEY), on=list(MATCH_KEY), how="anti")
    return now.sort("policy_type", "setting_name", "setting_key", nulls_last=True)


def collect(store: Store, run_id: int, today: date) -> Facts | None:
    """What the message of `run_id` covers; None for a run that has not finished."""
    run = store.get_run(run_id)
    if run is None or run["status"] not in ("succeeded", "partial", "failed"):
        return None
    tenant_id = run["tenant_id"]
    tenants = store.tenants()
    me = tenants.filter(pl.col("tenant_id") == tenant_id)
    facts = Facts(run, str(me["display_name"][0]) if me.height else tenant_id,
                  str(me["kind"][0]) if me.height else "tenant")
    if run["status"] == "failed":
        return facts
    done = store.runs(tenant_id, statuses=["succeeded", "partial"], limit=50)
    earlier = done.filter(pl.col("run_id") < run_id)
    new_rows = store.run_settings([run_id])
    old_rows = None
    if earlier.height:
        facts.previous_run = int(earlier["run_id"].max())  # type: ignore[arg-type]
        old_rows = store.run_settings([facts.previous_run])
        now_runs = tenants.filter(pl.col("tenant_id") == tenant_id)["current_run_id"].to_list()
        if now_runs == [run_id]:  # the usual case: what changed since the previous run, with who did it
            from tenantpilot.analysis import history

            found_now = history.changes_since(store, history.Since(run=facts.previous_run), [tenant_id])
            facts.events, facts.settings = found_now[0].events, found_now[0].settings
        else:  # a newer run finished first: this run against the one before it
            found = drift.changes(old_rows, new_rows)
            facts.events, facts.settings = found.events, found.settings
    facts.not_read = store.run_types([run_id]).filter(pl.col("status") != "read").to_dicts()
    register = store.deviations([tenant_id])
    named = list(dict.fromkeys(register["baseline_id"].to_list()))
    current = tenants.filter(pl.col("current_run_id").is_not_null())
    # the register's baselines, else its tenant groups' baselines, else every imported one
    ids = named or store.group_baselines(tenant_id) or current.filter(pl.col("kind") == "baseline")["tenant_id"].to_list()
    names = dict(zip(current["tenant_id"], current["display_name"]))
    for baseline in ids:
        if baseline not in names or baseline == tenant_id:
            continue
        base_rows = store.current_settings([baseline])
        accepted = deviations.accepted_keys(register, today, baseline)
        facts.baselines.append((baseline, names[baseline], new_deviations(old_rows, new_rows, base_rows, accepted)))
    previous = earlier.filter(pl.col("run_id") == facts.previous_run) if facts.previous_run else earlier
    since = previous["finished_at"][0].date() if previous.height and previous["finished_at"][0] else today
    facts.expired = deviations.expired_since(register, since, today)
    return facts


# --- the message (pure) ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Alert:
    """One message: counts, the first lines by name, the app URL. JSON-safe (asdict / from_dict)."""

    tenant_id: str
    tenant: str
    run_id: int
    status: str  # succeeded | partial | failed
    error: str | None
    previous_run: int | None
    counts: dict[str, int]
    changes: list[dict[str, Any]]  # the first MAX_LINES: kind, policy_type, policy, setting, old, new, changed_by
    not_read: list[str]  # "Compliance policies (forbidden)"
    deviations: list[dict[str, Any]]  # the first MAX_LINES: baseline, policy_type, setting, value, baseline_value
    expired: list[dict[str, Any]]  # accepted deviations open again: setting, baseline, reason, expired_on
    url: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def subject(self) -> str:
        return f"TenantPilot: {self.tenant}: {summary_line(self)}"


def safe_value(value: Any, setting_key: str | None = None) -> str | None:
    """A value as a message may show it: the one secret rule on its property name, URL credentials
    scrubbed, long text cut."""
    if value is None:
        return None
    leaf = (setting_key or "").replace("[", ".").split(".")[-1].split("/")[-1].split("_")[-1]
    if setting_key and (is_secret_name(leaf) or is_secret_name(setting_key.split(".")[-1])):
        return SECRET_MASK
    text = scrub_urls(str(value))
    return text if len(text) <= 200 else text[:199] + "…"


def _changed_by(row: dict[str, Any], *, setting: bool = False) -> str | None:
    """Who Intune's audit log names; for a setting it names only by its policy, every admin of the
    policy, said to be per policy (sync/audit.py)."""
    who = row.get("changed_by")
    if not who:
        return None
    return f"{who} (per policy)" if setting and row.get("attribution") == "policy" else str(who)


def change_lines(events: pl.DataFrame | None, settings: pl.DataFrame | None) -> list[dict[str, Any]]:
    """Policy events first, then setting changes: one dict per change, in drift's order."""
    out: list[dict[str, Any]] = []
    for r in (events.to_dicts() if events is not None else []):
        policy = (f"{r['old_name']} → {r['new_name']}" if r["event"] == drift.POLICY_RENAMED
                  else r["new_name"] or r["old_name"])
        out.append({"kind": r["event"], "policy_type": family_label(r["policy_type"]), "policy": policy,
                    "setting": None, "old": None, "new": None, "changed_by": _changed_by(r)})
    for r in (settings.to_dicts() if settings is not None else []):
        out.append({"kind": f"setting {r['change']}", "policy_type": family_label(r["policy_type"]),
                    "policy": r["new_policies"] or r["old_policies"], "setting": r["setting_name"] or r["setting_key"],
                    "old": safe_value(r["old_value"], r["setting_key"]),
                    "new": safe_value(r["new_value"], r["setting_key"]), "changed_by": _changed_by(r, setting=True)})
    return out


def tenant_url(app_url: str, tenant: str, baseline: str | None = None) -> str:
    """The Compare page with the tenant (and its baseline) chosen: the deep link the Sync page builds."""
    query = {"cmp_tenants": tenant, **({"cmp_baseline": baseline} if baseline else {})}
    return f"{app_url.rstrip('/')}/compare?{urlencode(query)}"


def build(facts: Facts, *, app_url: str, always: bool = False, limit: int = MAX_LINES) -> Alert | None:
    """The message of one run, or None when nothing changed and the run succeeded (unless `always`)."""
    run = facts.run
    lines = change_lines(facts.events, facts.settings)
    devs = [{"baseline": name, "policy_type": family_label(r["policy_type"]),
             "setting": r["setting_name"] or r["setting_key"], "value": safe_value(r["value"], r["setting_key"]),
             "baseline_value": safe_value(r["baseline_value"], r["setting_key"])}
            for _bid, name, frame in facts.baselines for r in frame.to_dicts()]
    expired = [{"setting": r["setting_name"], "baseline": r["baseline"], "reason": r["reason"], "owner": r["owner"],
                "expired_on": (r["expires_on"]).isoformat()}
               for r in (facts.expired.to_dicts() if facts.expired is not None else [])]
    not_read = [f"{t['label']} ({t.get('reason') or 'not read'})" for t in facts.not_read]
    events = drift.event_summary(facts.events) if facts.events is not None else dict.fromkeys(drift.EVENTS, 0)
    changed = drift.summary(facts.settings) if facts.settings is not None else dict.fromkeys(drift.CHANGES, 0)
    counts = {"policy_events": sum(events.values()), "setting_changes": sum(changed.values()),
              **{k.replace(" ", "_"): v for k, v in events.items()}, **{f"settings_{k}": v for k, v in changed.items()},
              "new_deviations": len(devs), "expired_deviations": len(expired), "not_read_types": len(not_read)}
    quiet = (run["status"] == "succeeded" and not lines and not devs and not expired)
    if quiet and not always:
        return None
    baseline = facts.baselines[0][1] if len(facts.baselines) == 1 else None
    return Alert(
        tenant_id=run["tenant_id"], tenant=facts.tenant, run_id=int(run["run_id"]), status=run["status"],
        error=logs.redact(run["error"]) if run.get("error") else None, previous_run=facts.previous_run,
        counts=counts, changes=lines[:limit], not_read=not_read, deviations=devs[:limit], expired=expired[:limit],
        url=tenant_url(app_url, facts.tenant, baseline),
    )


def summary_line(alert: Alert) -> str:
    c = alert.counts
    if alert.status == "failed":
        return "the scheduled sync failed"
    parts = [f"{c['policy_events'] + c['setting_changes']} change(s)", f"{c['new_deviations']} new deviation(s)"]
    if c["expired_deviations"]:
        parts.append(f"{c['expired_deviations']} accepted deviation(s) expired")
    if alert.status == "partial":
        parts.append(f"sync partial ({c['not_read_types']} type(s) not read)")
    return ", ".join(parts)


def render_text(alert: Alert, esc: Callable[[str], str] = outbound.line, link: Callable[[str], str] = str) -> str:
    """The message as lines of text; `esc` makes text from tenants inert for the channel (at least
    outbound.line: one line, controls shown), `link` renders the app URL."""
    c = alert.counts
    out = [f"{esc(alert.tenant)}: {summary_line(alert)} (scheduled sync, run {alert.run_id}: {alert.status})"]
    if alert.status == "failed":
        out.append(f"Sync failed: {esc(alert.error or 'no error recorded')}. The data shown is from the last good run.")
    if alert.not_read:
        out.append("Not synced in this run (carried forward from an earlier run): "
                   + ", ".join(esc(t) for t in alert.not_read))
    if alert.status != "failed":
        if alert.previous_run is None:
            out.append("First snapshot of this tenant: no drift to report yet.")
        else:
            out.append(f"Drift since run {alert.previous_run}: {c['policy_added']} policies added, "
                       f"{c['policy_deleted']} deleted, {c['policy_renamed']} renamed; {c['settings_changed']} "
                       f"settings changed, {c['settings_added']} added, {c['settings_removed']} removed.")
        for ch in alert.changes:
            what = f"{esc(ch['policy'] or '')}" + (f" / {esc(ch['setting'])}" if ch["setting"] else "")
            values = (f": {esc(ch['old'] or 'not set')} → {esc(ch['new'] or 'not set')}"
                      if ch["setting"] else "")
            who = f" (by {esc(ch['changed_by'])})" if ch.get("changed_by") else ""
            out.append(f"- {ch['kind']}: {what} [{esc(ch['policy_type'])}]{values}{who}")
        more = c["policy_events"] + c["setting_changes"] - len(alert.changes)
        if more > 0:
            out.append(f"- … and {more} more change(s)")
        if c["new_deviations"]:
            out.append(f"New deviations from the baseline (accepted ones left out): {c['new_deviations']}")
            for d in alert.deviations:
                out.append(f"- {esc(d['setting'])} [{esc(d['policy_type'])}]: {esc(d['value'] or 'not set')} "
                           f"(baseline {esc(d['baseline'])}: {esc(d['baseline_value'] or 'not set')})")
            if c["new_deviations"] > len(alert.deviations):
                out.append(f"- … and {c['new_deviations'] - len(alert.deviations)} more")
    for e in alert.expired:
        out.append(f"Accepted deviation expired on {e['expired_on']}, open again: {esc(e['setting'])} against "
                   f"{esc(e['baseline'])} ({esc(e['reason'])}; owner {esc(e['owner'])})")
    out.append(f"Open in TenantPilot: {link(alert.url)}")
    return "\n".join(out)


_TEAMS_SPECIAL = {ord(ch): "\\" + ch for ch in "\\`*_{}[]()#+-.!|<>~"}


def teams_escape(text: str) -> str:
    """Teams renders a webhook's text as Markdown: controls shown (outbound.chat), every Markdown
    character escaped."""
    return outbound.chat(text).translate(_TEAMS_SPECIAL)


def slack_escape(text: str) -> str:
    """Slack's mrkdwn: controls shown (outbound.chat); &, < and > are the control characters to escape
    (https://api.slack.com/reference/surfaces/formatting#escaping)."""
    return outbound.chat(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- the channels: one entry each (its setting, its payload, its transport) ----------------------
def webhook_payload(alert: Alert, cfg: Settings | None = None) -> dict[str, Any]:
    """The generic JSON POST: every field of the alert (each string one inert line), its subject and text."""
    return {"event": "tenantpilot.sync", **outbound.webhook(alert.to_dict()),
            "subject": outbound.line(alert.subject), "text": render_text(alert)}


def teams_payload(alert: Alert, cfg: Settings | None = None) -> dict[str, Any]:
    # Teams incoming webhook: POST {"text": "..."} (Microsoft Learn, "Create and send messages":
    # https://learn.microsoft.com/en-us/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using,
    # "Post a message to the webhook using cURL"); Markdown text, so a blank line between lines.
    text = render_text(alert, teams_escape, lambda url: f"[{url}]({url})")
    return {"text": text.replace("\n", "\n\n")}


def slack_payload(alert: Alert, cfg: Settings | None = None) -> dict[str, Any]:
    # Slack incoming webhook: POST {"text": "..."} as JSON (https://api.slack.com/messaging/webhooks);
    # links as <url|label>.
    return {"text": render_text(alert, slack_escape, lambda url: f"<{url}|{slack_escape(alert.tenant)}>")}


def email_message(alert: Alert, sender: str, to: Sequence[str]) -> EmailMessage:
    """The mail: headers are one inert line each (outbound.mail_header) and the SMTP policy refuses any
    header that would still fold in a line break, so a name can never add a header (`Bcc:`)."""
    message = EmailMessage(policy=SMTP)
    message["Subject"] = outbound.mail_header(alert.subject)
    message["From"] = outbound.mail_header(sender)
    message["To"] = ", ".join(outbound.mail_header(t) for t in to)
    message.set_content(outbound.mail_body(render_text(alert)))
    return message


def email_payload(alert: Alert, cfg: Settings | None = None) -> EmailMessage:
    if cfg is None:
        raise ValueError("the mail channel needs the settings (sender, recipients)")
    return email_message(alert, cfg.alert_from, cfg.alert_to)


class DeliveryError(RuntimeError):
    """A channel did not take the message; `outcome` is what the retry rule decides on."""

    def __init__(self, message: str, outcome: int | str) -> None:
        super().__init__(message)
        self.outcome = outcome


def _post(channel: Channel, body: Any, cfg: Settings) -> None:
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    try:
        transport.post_json(getattr(cfg, channel.setting) or "", data, what=channel.name, deadline_s=cfg.alert_deadline_s,
                            ca_bundle=None if cfg.demo else cfg.ca_bundle)  # demo: the simulator's CA
    except transport.CallFailed as exc:
        raise DeliveryError(str(exc), exc.outcome) from None


def _send_mail(channel: Channel, message: Any, cfg: Settings) -> None:
    url = urlparse(cfg.alert_smtp or "")
    host, user, password = url.hostname or "", unquote(url.username or ""), unquote(url.password or "")
    try:  # every socket operation is bounded by TIMEOUT_S; the server is the operator's own
        if url.scheme == "smtps":
            server: smtplib.SMTP = smtplib.SMTP_SSL(host, url.port or 465, timeout=TIMEOUT_S,
                                                    context=ssl.create_default_context())
        else:
            server = smtplib.SMTP(host, url.port or 25, timeout=TIMEOUT_S)
        with server:
            server.ehlo()
            if url.scheme == "smtp" and server.has_extn("starttls"):
                server.starttls(context=ssl.create_default_context())
                server.ehlo()
            if user:
                server.login(user, password)
            server.send_message(message)
    except smtplib.SMTPResponseException as exc:  # 4xx: try again later; 5xx: refused for good
        raise DeliveryError(f"email: the server answered {exc.smtp_code}", 503 if exc.smtp_code < 500 else 400) \
            from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"email: no answer ({type(exc).__name__})", CONNECTION) from None


@dataclass(frozen=True)
class Channel:
    """One way an alert leaves: the Settings field that configures it (its URL), the function that makes
    its payload from the alert, and the transport that hands the payload over."""

    name: str
    setting: str
    payload: Callable[[Alert, Settings | None], Any]
    transport: Callable[[Channel, Any, Settings], None]


TABLE: tuple[Channel, ...] = (
    Channel(WEBHOOK, "alert_webhook", webhook_payload, _post),
    Channel(TEAMS, "alert_teams", teams_payload, _post),
    Channel(SLACK, "alert_slack", slack_payload, _post),
    Channel(EMAIL, "alert_smtp", email_payload, _send_mail),
)
BY_NAME = {c.name: c for c in TABLE}
CHANNELS: tuple[str, ...] = tuple(BY_NAME)


def configured_channels(cfg: Settings) -> list[str]:
    """The endpoints of the default channel (the TENANTPILOT_ALERT_* variables)."""
    return channels.targets(cfg, [channels.DEFAULT])


def send(target: str, alert: Alert, cfg: Settings) -> None:
    """Hand the alert to one target (an endpoint of a channel, ops/channels.py); DeliveryError when it does not
    take it."""
    name, kind = channels.split(target)
    entry = BY_NAME[kind]
    try:
        own = channels.endpoints(cfg, name)
    except channels.ChannelError as exc:  # removed from the environment since the alert was queued
        raise DeliveryError(str(exc), 400) from None
    entry.transport(entry, entry.payload(alert, own), own)


@dataclass(frozen=True)
class Delivery:
    """What one attempt left: channels to try again (after `delay` s, with the same `message`) and
    channels given up on (channel -> why)."""

    channels: list[str]
    delay: float
    message: dict[str, Any]
    given_up: dict[str, str]

    @property
    def retry(self) -> bool:
        return bool(self.channels)


def deliver(alert: Alert, channels: Sequence[str], cfg: Settings, attempt: int = 0,
            sender: Callable[[str, Alert, Settings], None] = send) -> Delivery:
    """Send to each channel; what to try again (and after how long) and what was given up on.
    Failures are logged by channel, never with a URL."""
    again: list[str] = []
    delays: list[float] = []
    given_up: dict[str, str] = {}
    for channel in channels:
        try:
            sender(channel, alert, cfg)
        except DeliveryError as exc:
            decision: Decision = RETRY.decide(exc.outcome, Attempts(retries=attempt, throttled=attempt))
            retry = decision.action == "retry"
            logs.log(log, logging.WARNING if retry else logging.ERROR, "alert not delivered", channel=channel,
                     run_id=alert.run_id, error=str(exc), attempt=attempt + 1,
                     next=f"retry in {decision.delay:.1f} s" if retry else (decision.note or "given up"))
            if retry:
                again.append(channel)
                delays.append(decision.delay)
            else:
                given_up[channel] = str(exc)
            continue
        logs.log(log, logging.INFO, "alert delivered", channel=channel, run_id=alert.run_id, attempt=attempt + 1)
    return Delivery(again, max(delays, default=0.0), alert.to_dict(), given_up)
