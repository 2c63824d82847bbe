"""Named alert channels: what a channel name stands for (its endpoints, from the environment) and which channels
one tenant's alert goes to (routing).

A named channel is configured only in the environment, so its secrets (webhook URLs, the mail URL with its
password) never reach DuckDB: ``TENANTPILOT_ALERT_CHANNEL_<NAME>_<KIND>`` with KIND one of WEBHOOK, TEAMS, SLACK,
SMTP (then TO, optionally FROM), e.g. ``TENANTPILOT_ALERT_CHANNEL_HEALTHCARE_TEAMS=https://…``. The channel is
then called ``healthcare`` (lower case). The unnamed ``TENANTPILOT_ALERT_*`` endpoints are the channel
``default``. The database holds only channel names, per tenant group and per tenant (store/access.py).

Routing (`route`): a tenant's own channels when it has any; else the channels of its groups (all of them:
everyone who watches one of its groups hears of it); else ``default``. A tenant (or group) that names ``off``
sends no alert at all (a customer in a migration, say), whatever else it names.

A *target* is one endpoint of one channel, what delivery retries and gives up on one by one: the endpoint's
kind for ``default`` (``teams``, as before channels were named, so outbox entries written then still deliver),
``<name>.<kind>`` for a named channel (``healthcare.teams``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tenantpilot.config import Settings

DEFAULT = "default"
OFF = "off"  # a tenant or group naming it sends no alert
RESERVED = (DEFAULT, OFF)
PREFIX = "TENANTPILOT_ALERT_CHANNEL_"
# KIND of the variable -> the Settings field of the default channel it stands in for
FIELDS: dict[str, str] = {"WEBHOOK": "alert_webhook", "TEAMS": "alert_teams", "SLACK": "alert_slack",
                          "SMTP": "alert_smtp", "TO": "alert_to", "FROM": "alert_from"}
# an endpoint's kind (alerts.TABLE's names) -> the Settings field holding its URL
ENDPOINTS: dict[str, str] = {"webhook": "alert_webhook", "teams": "alert_teams", "slack": "alert_slack",
                             "email": "alert_smtp"}
NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,39}$")
_VARIABLE = re.compile(rf"^{PREFIX}(?P<name>[A-Za-z0-9_]+?)_(?P<kind>{'|'.join(FIELDS)})$")


class ChannelError(ValueError):
    """A channel name is malformed or names no configured channel; the message says which and what to do."""


@dataclass(frozen=True)
class NamedChannel:
    """One named channel's endpoints (secrets: never shown) and mail addressing."""

    name: str
    webhook: str | None = field(default=None, repr=False)
    teams: str | None = field(default=None, repr=False)
    slack: str | None = field(default=None, repr=False)
    smtp: str | None = field(default=None, repr=False)
    to: tuple[str, ...] = ()
    sender: str | None = None


def variables(env: dict[str, str]) -> dict[str, dict[str, str]]:
    """The named channels' variables in `env`: lower-case name -> KIND -> value (empty values left out).
    The name is what stands between the prefix and the last `_KIND`."""
    found: dict[str, dict[str, str]] = {}
    for key, value in env.items():
        match = _VARIABLE.match(key)
        if match and (value or "").strip():
            found.setdefault(match["name"].lower(), {})[match["kind"]] = value.strip()
    return found


def check_name(name: str) -> str:
    """A channel name as stored: lower case letters, digits and `_`, at most 40; ChannelError otherwise."""
    value = (name or "").strip().lower()
    if not NAME.match(value):
        raise ChannelError(f"{name!r} is not a channel name: letters, digits and _ (the <NAME> of "
                           f"{PREFIX}<NAME>_TEAMS and its siblings), at most 40")
    return value


def names(cfg: Settings) -> list[str]:
    """Every channel a tenant or group may name: `default` first, then the named ones by name, then `off`."""
    return [DEFAULT, *sorted(c.name for c in cfg.alert_channels), OFF]


def endpoints(cfg: Settings, name: str) -> Settings:
    """The settings with `name`'s endpoints in the default channel's fields (what every transport reads);
    ChannelError for a name the environment does not configure."""
    if name == DEFAULT:
        return cfg
    for channel in cfg.alert_channels:
        if channel.name == name:
            return replace(cfg, alert_webhook=channel.webhook, alert_teams=channel.teams, alert_slack=channel.slack,
                           alert_smtp=channel.smtp, alert_to=channel.to,
                           alert_from=channel.sender or cfg.alert_from)
    raise ChannelError(f"alert channel {name!r} is not configured: set {PREFIX}{name.upper()}_TEAMS (or _WEBHOOK, "
                       "_SLACK, _SMTP) in the environment, or choose another channel")


def targets(cfg: Settings, channel_names: Sequence[str]) -> list[str]:
    """The endpoints of these channels that are configured, as targets (see the module docstring); a name the
    environment no longer configures has none (`unknown` names it)."""
    out: list[str] = []
    for name in channel_names:
        if name == OFF or name in unknown(cfg, [name]):
            continue
        own = endpoints(cfg, name)
        out += [kind if name == DEFAULT else f"{name}.{kind}" for kind, setting in ENDPOINTS.items()
                if getattr(own, setting)]
    return list(dict.fromkeys(out))


def unknown(cfg: Settings, channel_names: Sequence[str]) -> list[str]:
    """The names among these that no channel of the environment has (removed since a group named it)."""
    known = set(names(cfg))
    return [n for n in channel_names if n not in known]


def any_configured(cfg: Settings) -> bool:
    """True when some channel (default or named) has an endpoint: only then is a run's alert worth queuing."""
    return bool(targets(cfg, names(cfg)))


def split(target: str) -> tuple[str, str]:
    """A target's (channel name, endpoint kind): `teams` -> (default, teams), `healthcare.teams` -> (healthcare,
    teams)."""
    name, dot, kind = target.rpartition(".")
    return (name, kind) if dot else (DEFAULT, kind)


def route(own: Sequence[str], groups: Sequence[str]) -> list[str]:
    """The channels of a tenant's alert: its own, else its groups', else `default`; none when they name `off`
    (pure)."""
    chosen = list(dict.fromkeys(own or groups or [DEFAULT]))
    return [] if OFF in chosen else chosen
