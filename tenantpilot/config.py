"""One frozen settings object, read from the environment (and `.env`) once.

A missing or malformed value raises `ConfigError` whose message is one line naming the
variable and what is expected; entry points print that line and exit 2 instead of a traceback.
Secrets live here only in memory; `Settings.__repr__` never shows them, and no error message
echoes one (URLs are shown without user info or password, a malformed client id not at all).
`.env` is read with python-dotenv as data: no shell, no `$VAR` or backtick expansion.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

from tenantpilot.access import DEFAULT_ROLE_CLAIMS, Role
from tenantpilot.flatten.secrets import redacted_url
from tenantpilot.ops import channels as alert_channels
from tenantpilot.ops.schedule import DEFAULT_SCHEDULE, ScheduleError, validate

DEFAULT_GRAPH_URL = "https://graph.microsoft.com"
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_SIM_PORT = 8765
QUEUE_NAME = "intune-sync-queue"


class ConfigError(ValueError):
    """A configuration variable is missing or malformed (message names it)."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    db_path: Path
    log_dir: Path
    redis_url: str | None
    graph_url: str
    authority_host: str
    client_id: str | None
    client_secret: str | None = field(default=None, repr=False)
    certificate_path: Path | None = None
    certificate_thumbprint: str | None = None
    ca_bundle: str | None = None  # explicit CA for Graph/authority (REQUESTS_CA_BUNDLE or simulator CA)
    demo: bool = False  # no credentials: demo tenants sync against the local simulator
    sim_port: int = DEFAULT_SIM_PORT
    stale_after_s: float = 30.0  # a running sync without heartbeat for this long is interrupted
    max_concurrency: int = 8
    history_days: int = 400  # row history kept (the current snapshot always stays)
    db_lock_timeout_s: float = 60.0  # how long a DuckDB open waits for another process's lock
    sync_deadline_s: float = 1800.0  # a sync may wait out Graph's throttle this long before it gives up
    # the reuse rule (tenantpilot/sync/reuse.py): a policy the audit log shows unchanged keeps its rows unread,
    # but every tenant is read in full at least this often (0: every sync reads in full)
    full_read_days: int = 7
    audit_overlap_hours: float = 24.0  # the audit window reaches back this far before the previous run's start
    # alerts after scheduled syncs (tenantpilot/ops/alerts.py); webhook and mail URLs are secrets: never shown
    alert_webhook: str | None = field(default=None, repr=False)
    alert_teams: str | None = field(default=None, repr=False)
    alert_slack: str | None = field(default=None, repr=False)
    alert_smtp: str | None = field(default=None, repr=False)
    alert_to: tuple[str, ...] = ()
    alert_from: str = "tenantpilot@localhost"
    alert_always: bool = False
    # named alert channels (TENANTPILOT_ALERT_CHANNEL_<NAME>_<KIND>, tenantpilot/ops/channels.py): secrets, never shown
    alert_channels: tuple[alert_channels.NamedChannel, ...] = field(default=(), repr=False)
    not_read_days: float = 3.0  # Health asks for attention when a type has not been read for longer
    alert_deadline_s: float = 20.0  # one webhook call, whole (connect, send, the complete answer)
    app_url: str = "http://127.0.0.1:8501"
    sync_schedule: str = "0 2 * * *"  # cron (consumer's local time) for every tenant without its own; "off"
    schedule_jitter_s: int = 300  # tenants due in the same minute start spread over this many seconds
    # sign-in (tenantpilot/app/signin.py): ID-token claim value (app role or group object id) -> role
    # (pairs, not a dict: Settings stays hashable)
    role_claims: tuple[tuple[str, Role], ...] = tuple(DEFAULT_ROLE_CLAIMS.items())
    # without sign-in the app serves 127.0.0.1 only, unless a reverse proxy in front authenticates users
    proxy_authenticates: bool = False
    csv_separator: str = ","  # every CSV the product writes (analysis/export.py); ";" for Excel in German & co.
    # "all": the consumer beside the database (syncs, writes, schedules); "fetch": a consumer on another
    # machine that only fetches and flattens and hands the parts to it through Redis (ops/fetching.py)
    role: str = "all"
    handoff_max_mb: int = 512  # a handed-over run's parts may hold at most this much (the writer refuses more)

    @property
    def queue_backend(self) -> str:
        return "redis" if self.redis_url else "sqlite"

    @property
    def queue_db(self) -> Path:
        return self.data_dir / "huey-queue.db"

    @property
    def simulator_info_path(self) -> Path:
        return self.data_dir / "simulator.json"


def _url(name: str, value: str) -> str:
    try:
        parsed = urlparse(value)
        ok = parsed.scheme in ("https", "http") and bool(parsed.hostname) and (parsed.port or 1) > 0
    except ValueError:  # a bad port or IPv6 literal
        ok = False
    if not ok:
        raise ConfigError(f"{name}={redacted_url(value)!r} is not a URL; expected e.g. https://host[:port]")
    return value.rstrip("/")


def _redis_url(value: str) -> str:
    """REDIS_URL checked as redis-py will read it; the error shows it without the password."""
    try:
        parsed = urlparse(value)
        if parsed.scheme == "unix":
            ok = bool(parsed.path)
        else:
            ok = parsed.scheme in ("redis", "rediss") and bool(parsed.hostname) and (parsed.port or 1) > 0
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(f"REDIS_URL={redacted_url(value)!r} is not a Redis URL: expected "
                          "redis://[:password@]host[:port][/db], rediss://… or unix:///path (a password with "
                          "characters such as / # @ & must be percent-encoded)")
    return value


def _webhook(name: str, value: str | None) -> str | None:
    """An incoming-webhook URL: its path is the credential, so an error never shows it."""
    if not value:
        return None
    try:
        parsed = urlparse(value)
        ok = parsed.scheme in ("https", "http") and bool(parsed.hostname) and (parsed.port or 1) > 0
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(f"{name} is not an http(s) URL ({len(value)} characters; not shown: it is a secret)")
    return value


def _smtp_url(value: str | None, to: tuple[str, ...], name: str = "TENANTPILOT_ALERT_SMTP",
              to_name: str = "TENANTPILOT_ALERT_TO") -> str | None:
    if not value:
        return None
    try:
        parsed = urlparse(value)
        ok = parsed.scheme in ("smtp", "smtps") and bool(parsed.hostname) and (parsed.port or 1) > 0
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(f"{name}={redacted_url(value)!r} is not a mail URL: expected "
                          "smtp://[user:password@]host[:port] (STARTTLS when offered) or smtps://… (TLS); "
                          "percent-encode / # @ in the password")
    if not to:
        raise ConfigError(f"{to_name} is missing: name the recipients (comma-separated) of {name}'s mail")
    return value


def _named_channels(env: dict[str, str]) -> tuple[alert_channels.NamedChannel, ...]:
    """The named alert channels of the environment, each checked like the default one (URLs never shown)."""
    out = []
    for raw, fields in sorted(alert_channels.variables(env).items()):
        var = f"{alert_channels.PREFIX}{raw.upper()}"
        try:
            name = alert_channels.check_name(raw)
        except alert_channels.ChannelError as exc:
            raise ConfigError(f"{var}_…: {exc}") from None
        if name in alert_channels.RESERVED:
            raise ConfigError(f"{var}_…: '{name}' is reserved ('default' is the TENANTPILOT_ALERT_* channel, 'off' "
                              "sends nothing); name this channel otherwise")
        field_of = fields.get  # KIND -> value (not config's get(): these names are built, not listed)
        to = tuple(a.strip() for a in (field_of("TO") or "").split(",") if a.strip())
        if "SMTP" not in fields and to:
            raise ConfigError(f"{var}_TO is set without {var}_SMTP: name the mail server the alerts leave through")
        channel = alert_channels.NamedChannel(
            name, webhook=_webhook(f"{var}_WEBHOOK", field_of("WEBHOOK")),
            teams=_webhook(f"{var}_TEAMS", field_of("TEAMS")), slack=_webhook(f"{var}_SLACK", field_of("SLACK")),
            smtp=_smtp_url(field_of("SMTP"), to, f"{var}_SMTP", f"{var}_TO"), to=to, sender=field_of("FROM"))
        if not (channel.webhook or channel.teams or channel.slack or channel.smtp):
            raise ConfigError(f"alert channel {name!r} has no endpoint: set {var}_TEAMS, _SLACK, _WEBHOOK or _SMTP")
        out.append(channel)
    return tuple(out)


def _flag(name: str, value: str | None) -> bool:
    if value is None:
        return False
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={value!r} is not a flag: expected 1 or 0")


def _role_claims(get: Callable[[str], str | None]) -> tuple[tuple[str, Role], ...]:
    """DEFAULT_ROLE_CLAIMS plus TENANTPILOT_ROLES_{VIEWER,ANALYST,ADMIN}: comma-separated app-role values or
    group object ids that grant the role; a value named for two roles grants the higher."""
    mapping = dict(DEFAULT_ROLE_CLAIMS)
    given = {Role.VIEWER: ("TENANTPILOT_ROLES_VIEWER", get("TENANTPILOT_ROLES_VIEWER")),
             Role.ANALYST: ("TENANTPILOT_ROLES_ANALYST", get("TENANTPILOT_ROLES_ANALYST")),
             Role.ADMIN: ("TENANTPILOT_ROLES_ADMIN", get("TENANTPILOT_ROLES_ADMIN"))}
    for role, (name, text) in given.items():
        for value in (v.strip() for v in (text or "").split(",")):
            if not value:
                continue
            if any(c in value for c in " \t\r\n\"'"):
                raise ConfigError(f"{name}: {value!r} is not an app-role value or a group object id (no spaces or "
                                  "quotes); separate several with commas")
            mapping[value] = max(role, mapping.get(value, role))
    return tuple(mapping.items())


def private_files() -> None:
    """Files and folders this process creates are its user's alone (folders 0700, files 0600): the
    database, the queue and the logs hold tenant data. Called first by every entry point (the
    app, the consumer, the CLI); the systemd units set UMask=0077 as well."""
    os.umask(0o077)


def _positive(name: str, value: str, cast=float):
    try:
        number = cast(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a number") from None
    if number <= 0:
        raise ConfigError(f"{name}={value!r} must be greater than 0")
    return number


def _non_negative_int(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a whole number") from None
    if number < 0:
        raise ConfigError(f"{name}={value!r} must be 0 or more")
    return number


CSV_SEPARATORS: dict[str, str] = {",": ",", ";": ";", "comma": ",", "semicolon": ";"}


def _csv_separator(value: str | None) -> str:
    if value is None:
        return ","
    try:
        return CSV_SEPARATORS[value.lower()]
    except KeyError:
        raise ConfigError(f"TENANTPILOT_CSV_SEPARATOR={value!r} is not a CSV separator: expected , or ; "
                          "(';' is what Excel expects where the decimal mark is a comma, e.g. German)") from None


ROLES = ("all", "fetch")


def _role(value: str | None, redis_url: str | None) -> str:
    role = (value or "all").lower()
    if role not in ROLES:
        raise ConfigError(f"TENANTPILOT_ROLE={value!r} is not a role: expected all (the consumer beside the "
                          "database) or fetch (a consumer that only fetches and hands its parts over Redis)")
    if role == "fetch" and not redis_url:
        raise ConfigError("TENANTPILOT_ROLE=fetch needs REDIS_URL: a fetching consumer reaches the writer only "
                          "through Redis (a SQLite queue is a file on the writer's machine)")
    return role


def _schedule(value: str) -> str:
    try:
        return validate(value)
    except ScheduleError as exc:
        raise ConfigError(f"TENANTPILOT_SYNC_SCHEDULE: {exc}") from None


_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def load_settings(env: dict[str, str] | None = None, *, dotenv: bool = True) -> Settings:
    """Read and validate the configuration contract of DESIGN.md."""
    if env is None:
        if dotenv:
            from dotenv import load_dotenv

            load_dotenv(Path.cwd() / ".env", override=False, interpolate=False)
        env = dict(os.environ)
    get = lambda k: (env.get(k) or "").strip() or None  # noqa: E731

    data_dir = Path(get("TENANTPILOT_DATA_DIR") or "data").absolute()
    db_path = Path(get("TENANTPILOT_DB") or data_dir / "tenantpilot.duckdb").absolute()
    log_dir = Path(get("TENANTPILOT_LOG_DIR") or data_dir / "logs").absolute()

    redis_url = get("REDIS_URL")
    if redis_url:
        _redis_url(redis_url)

    client_id = get("AZURE_AD_CLIENT_ID")
    secret = get("AZURE_AD_CLIENT_SECRET")
    cert = get("AZURE_AD_CLIENT_CERTIFICATE_PATH")
    thumb = get("AZURE_AD_CLIENT_CERTIFICATE_THUMBPRINT")
    if client_id and not _GUID.match(client_id):
        # not echoed: a secret pasted into the wrong variable must not end up in a log
        raise ConfigError(f"AZURE_AD_CLIENT_ID is not a GUID ({len(client_id)} characters; expected the app "
                          "registration's client id, e.g. 00000000-0000-0000-0000-000000000000)")
    if client_id and not (secret or cert):
        raise ConfigError(
            "AZURE_AD_CLIENT_SECRET is missing: set it (or AZURE_AD_CLIENT_CERTIFICATE_PATH) with AZURE_AD_CLIENT_ID"
        )
    if (secret or cert) and not client_id:
        raise ConfigError("AZURE_AD_CLIENT_ID is missing: a secret or certificate is set without a client id")
    if cert and not Path(cert).is_file():
        raise ConfigError(f"AZURE_AD_CLIENT_CERTIFICATE_PATH={cert!r} does not exist (expected a PEM file)")

    sim_port = int(_positive("TENANTPILOT_SIM_PORT", get("TENANTPILOT_SIM_PORT") or str(DEFAULT_SIM_PORT), int))
    demo = client_id is None
    ca_bundle = get("REQUESTS_CA_BUNDLE") or get("CURL_CA_BUNDLE")
    if demo:
        sim_url = f"https://127.0.0.1:{sim_port}"
        graph_url = _url("TENANTPILOT_GRAPH_URL", get("TENANTPILOT_GRAPH_URL") or sim_url)
        authority = _url("TENANTPILOT_AUTHORITY_HOST", get("TENANTPILOT_AUTHORITY_HOST") or sim_url)
        ca_bundle = ca_bundle or str(data_dir / "simulator-ca.pem")
    else:
        graph_url = _url("TENANTPILOT_GRAPH_URL", get("TENANTPILOT_GRAPH_URL") or DEFAULT_GRAPH_URL)
        authority = _url("TENANTPILOT_AUTHORITY_HOST", get("TENANTPILOT_AUTHORITY_HOST") or DEFAULT_AUTHORITY_HOST)
    if ca_bundle and not demo and not Path(ca_bundle).is_file():
        raise ConfigError(f"REQUESTS_CA_BUNDLE={ca_bundle!r} does not exist (expected a PEM bundle)")

    alert_to = tuple(a.strip() for a in (get("TENANTPILOT_ALERT_TO") or "").split(",") if a.strip())
    return Settings(
        data_dir=data_dir,
        db_path=db_path,
        log_dir=log_dir,
        redis_url=redis_url,
        graph_url=graph_url,
        authority_host=authority,
        client_id=client_id,
        client_secret=secret,
        certificate_path=Path(cert) if cert else None,
        certificate_thumbprint=thumb,
        ca_bundle=ca_bundle,
        demo=demo,
        sim_port=sim_port,
        stale_after_s=_positive("TENANTPILOT_STALE_SECONDS", get("TENANTPILOT_STALE_SECONDS") or "30"),
        max_concurrency=int(_positive("TENANTPILOT_CONCURRENCY", get("TENANTPILOT_CONCURRENCY") or "8", int)),
        history_days=int(_positive("TENANTPILOT_HISTORY_DAYS", get("TENANTPILOT_HISTORY_DAYS") or "400", int)),
        db_lock_timeout_s=_positive("TENANTPILOT_DB_LOCK_SECONDS", get("TENANTPILOT_DB_LOCK_SECONDS") or "60"),
        sync_deadline_s=_positive("TENANTPILOT_SYNC_DEADLINE", get("TENANTPILOT_SYNC_DEADLINE") or "1800"),
        full_read_days=_non_negative_int("TENANTPILOT_FULL_READ_DAYS", get("TENANTPILOT_FULL_READ_DAYS") or "7"),
        audit_overlap_hours=float(_non_negative_int("TENANTPILOT_AUDIT_OVERLAP_HOURS",
                                                    get("TENANTPILOT_AUDIT_OVERLAP_HOURS") or "24")),
        alert_webhook=_webhook("TENANTPILOT_ALERT_WEBHOOK", get("TENANTPILOT_ALERT_WEBHOOK")),
        alert_teams=_webhook("TENANTPILOT_ALERT_TEAMS", get("TENANTPILOT_ALERT_TEAMS")),
        alert_slack=_webhook("TENANTPILOT_ALERT_SLACK", get("TENANTPILOT_ALERT_SLACK")),
        alert_smtp=_smtp_url(get("TENANTPILOT_ALERT_SMTP"), alert_to),
        alert_to=alert_to,
        alert_from=get("TENANTPILOT_ALERT_FROM") or "tenantpilot@localhost",
        alert_channels=_named_channels(env),
        alert_always=_flag("TENANTPILOT_ALERT_ALWAYS", get("TENANTPILOT_ALERT_ALWAYS")),
        not_read_days=_positive("TENANTPILOT_NOT_READ_DAYS", get("TENANTPILOT_NOT_READ_DAYS") or "3"),
        alert_deadline_s=_positive("TENANTPILOT_ALERT_DEADLINE_SECONDS",
                                   get("TENANTPILOT_ALERT_DEADLINE_SECONDS") or "20"),
        app_url=_url("TENANTPILOT_APP_URL", get("TENANTPILOT_APP_URL") or "http://127.0.0.1:8501"),
        sync_schedule=_schedule(get("TENANTPILOT_SYNC_SCHEDULE") or DEFAULT_SCHEDULE),
        schedule_jitter_s=_non_negative_int("TENANTPILOT_SCHEDULE_JITTER_SECONDS",
                                            get("TENANTPILOT_SCHEDULE_JITTER_SECONDS") or "300"),
        role_claims=_role_claims(get),
        proxy_authenticates=_flag("TENANTPILOT_PROXY_AUTHENTICATES", get("TENANTPILOT_PROXY_AUTHENTICATES")),
        csv_separator=_csv_separator(get("TENANTPILOT_CSV_SEPARATOR")),
        role=_role(get("TENANTPILOT_ROLE"), redis_url),
        handoff_max_mb=int(_positive("TENANTPILOT_HANDOFF_MAX_MB", get("TENANTPILOT_HANDOFF_MAX_MB") or "512", int)),
    )


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()


def launch_values() -> str:
    """What scripts/run.sh needs, read the way the app reads it (environment, then .env as data):
    "<demo 0|1> <consumer workers> <app port>". Raises ConfigError like load_settings."""
    cfg = load_settings()  # loads .env into this process's environment (python-dotenv, no expansion)
    get = os.environ.get
    workers = int(_positive("TENANTPILOT_WORKERS", (get("TENANTPILOT_WORKERS") or "1").strip(), int))
    port = int(_positive("PORT", (get("PORT") or "8501").strip(), int))
    if port > 65535:
        raise ConfigError(f"PORT={port} is not a TCP port (1-65535)")
    return f"{int(cfg.demo)} {workers} {port}"


if __name__ == "__main__":  # `python -m tenantpilot.config`: scripts/run.sh's reader of .env
    import sys

    try:
        print(launch_values())
    except ConfigError as exc:
        sys.exit(f"tenantpilot: configuration error: {exc}")
