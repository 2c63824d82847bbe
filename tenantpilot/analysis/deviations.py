"""The rules of accepted deviations: validation, validity on a date, expiry, and naming a setting.

An accepted deviation says: tenant T may differ from baseline B on one setting (compare.MATCH_KEY:
policy_type, scope, setting_key) for a reason, owned by someone, until a date. It is *valid* from
the day it is added through its `expires_on` day (local dates), unless it was removed; from the
day after, it has *expired* and the difference counts again (Compare shows it as differs/missing,
the alignment score counts it, alerts and Changes list it as open again). An expiry date is
required: accepted deviations without one are what users of other tools complain get ignored.

Pure: frames in, frames out (the register's rows come from Store.deviations()).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import polars as pl

from tenantpilot.analysis.compare import ACCEPTED, MATCH_KEY

MAX_TEXT = 500  # reason / owner length
REGISTER_COLUMNS: tuple[str, ...] = (
    "deviation_id", "tenant_id", "tenant", "baseline_id", "baseline", "policy_type", "scope", "setting_key",
    "setting_name", "reason", "owner", "accepted_by", "expires_on", "created_at", "removed_at",
)
REGISTER_SCHEMA: dict[str, pl.DataType] = {
    "deviation_id": pl.Int64(), "tenant_id": pl.String(), "tenant": pl.String(), "baseline_id": pl.String(),
    "baseline": pl.String(), "policy_type": pl.String(), "scope": pl.String(), "setting_key": pl.String(),
    "setting_name": pl.String(), "reason": pl.String(), "owner": pl.String(), "accepted_by": pl.String(), "expires_on": pl.Date(),
    "created_at": pl.Datetime(time_zone="UTC"), "removed_at": pl.Datetime(time_zone="UTC"),
}


class DeviationError(ValueError):
    """A deviation cannot be accepted as given; the message says what to change."""


@dataclass(frozen=True)
class NewDeviation:
    """A checked deviation, ready for Store.add_deviation."""

    tenant_id: str
    baseline_id: str
    policy_type: str
    scope: str
    setting_key: str
    setting_name: str
    reason: str
    owner: str
    expires_on: date


def validate(*, tenant_id: str, baseline_id: str, key: tuple[str, str, str], setting_name: str | None,
             reason: str, owner: str, expires_on: date | str, today: date,
             tenants: Iterable[str], baselines: Iterable[str]) -> NewDeviation:
    """The deviation, checked: a known tenant, a known baseline that is not the tenant itself, a
    reason and an owner, and an expiry date from today on. Raises DeviationError naming the fix."""
    if tenant_id not in set(tenants):
        raise DeviationError(f"Unknown tenant {tenant_id!r}: add and sync it first")
    if baseline_id not in set(baselines):
        raise DeviationError(f"Unknown baseline {baseline_id!r}: import it, or name a synced tenant")
    if baseline_id == tenant_id:
        raise DeviationError("A tenant cannot deviate from itself: choose another baseline")
    reason, owner = (reason or "").strip(), (owner or "").strip()
    if not reason:
        raise DeviationError("The reason is empty: say why the difference is accepted (--reason)")
    if not owner:
        raise DeviationError("The owner is empty: name who answers for it (--owner)")
    for label, text in (("reason", reason), ("owner", owner)):
        if len(text) > MAX_TEXT:
            raise DeviationError(f"The {label} is {len(text)} characters long; keep it under {MAX_TEXT}")
    expiry = parse_date(expires_on)
    if expiry < today:
        raise DeviationError(f"The expiry {expiry.isoformat()} has passed (today is {today.isoformat()}): "
                             "an accepted deviation needs an expiry date from today on")
    policy_type, scope, setting_key = key
    if not setting_key:
        raise DeviationError("The setting is empty: name its setting key (see `compare --format csv`)")
    return NewDeviation(tenant_id, baseline_id, policy_type, scope or "", setting_key,
                        (setting_name or setting_key).strip(), reason, owner, expiry)


def parse_date(value: date | str) -> date:
    """An ISO date (2027-03-31); DeviationError otherwise."""
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise DeviationError(f"{value!r} is not a date: write it as YYYY-MM-DD (e.g. 2027-03-31)") from None


def empty_register() -> pl.DataFrame:
    return pl.DataFrame(schema=REGISTER_SCHEMA)


def is_valid_expr(today: date) -> pl.Expr:
    """True for deviations in force on `today`: not removed, and expiring today or later."""
    return pl.col("removed_at").is_null() & (pl.col("expires_on") >= pl.lit(today))


def valid_on(register: pl.DataFrame, today: date, baseline_id: str | None = None) -> pl.DataFrame:
    """The deviations in force on `today` (of one baseline when given)."""
    out = register.filter(is_valid_expr(today))
    return out.filter(pl.col("baseline_id") == baseline_id) if baseline_id is not None else out


def expired(register: pl.DataFrame, today: date) -> pl.DataFrame:
    """Deviations whose expiry has passed (not removed): their differences are open again."""
    return register.filter(pl.col("removed_at").is_null() & (pl.col("expires_on") < pl.lit(today)))


def expired_since(register: pl.DataFrame, since: date, today: date) -> pl.DataFrame:
    """Deviations that expired between `since` and `today`: last valid day in [since, today)."""
    return expired(register, today).filter(pl.col("expires_on") >= pl.lit(since)).sort("expires_on", "deviation_id")


def with_state(register: pl.DataFrame, today: date) -> pl.DataFrame:
    """The register with `state`: valid | expired | removed (for lists and exports)."""
    state = (pl.when(pl.col("removed_at").is_not_null()).then(pl.lit("removed"))
             .when(pl.col("expires_on") < pl.lit(today)).then(pl.lit("expired")).otherwise(pl.lit("valid")))
    return register.with_columns(state.alias("state"))


def status_text(reason: str, expires_on: date) -> str:
    """What Compare shows instead of differs/missing: "accepted (reason, until 2027-03-31)"."""
    return f"{ACCEPTED} ({reason}, until {expires_on.isoformat()})"


def accepted_keys(register: pl.DataFrame, today: date, baseline_id: str) -> pl.DataFrame:
    """The keys compare leaves out for each tenant against `baseline_id`: tenant_id, MATCH_KEY, label
    (status_text; when several deviations name one key, the latest expiry wins)."""
    valid = valid_on(register, today, baseline_id)
    if valid.height == 0:
        return pl.DataFrame(schema={"tenant_id": pl.String, **{k: pl.String for k in MATCH_KEY}, "label": pl.String})
    valid = valid.sort("expires_on", "deviation_id", descending=True).unique(["tenant_id", *MATCH_KEY], keep="first")
    return valid.select(
        "tenant_id", *MATCH_KEY,
        pl.format("{} ({}, until {})", pl.lit(ACCEPTED), pl.col("reason"),
                  pl.col("expires_on").dt.strftime("%Y-%m-%d")).alias("label"),
    )


def resolve_setting(cells: pl.DataFrame, wanted: str, *, policy_type: str | None = None,
                    scope: str | None = None) -> tuple[tuple[str, str, str], str]:
    """The compare key and setting name that `wanted` names among `cells` (compare.cells rows of the
    tenant and the baseline): its setting_key exactly, else its setting name (case-insensitive).
    `policy_type` (family id or label) and `scope` narrow it down; DeviationError when nothing or
    several keys match, listing them with the options that tell them apart."""
    text = wanted.strip()
    frame = cells.select(*MATCH_KEY, pl.col("setting_name").fill_null(pl.col("setting_key"))).unique()
    if policy_type:
        from tenantpilot.families import LABELS

        ids = {k for k, v in LABELS.items() if v.casefold() == policy_type.casefold()} | {policy_type}
        frame = frame.filter(pl.col("policy_type").is_in(list(ids)))
    if scope is not None:
        frame = frame.filter(pl.col("scope") == scope)
    hits = frame.filter(pl.col("setting_key") == text)
    if hits.height == 0:
        hits = frame.filter(pl.col("setting_name").str.to_lowercase() == text.lower())
    hits = hits.sort(*MATCH_KEY)
    if hits.height == 1:
        row = hits.row(0, named=True)
        return (row["policy_type"], row["scope"], row["setting_key"]), str(row["setting_name"])
    if hits.height == 0:
        raise DeviationError(f"No setting {wanted!r} in the tenant or the baseline: name its setting_key or "
                             "setting_name as `compare --format csv` shows them")
    shown = "; ".join(f"--policy-type {r['policy_type']} --scope {r['scope']!r} ({r['setting_key']})"
                      for r in hits.head(10).iter_rows(named=True))
    raise DeviationError(f"{wanted!r} names {hits.height} settings; add the options of one: {shown}")
