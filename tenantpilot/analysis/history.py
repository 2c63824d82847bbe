"""What changed since a point in time, per tenant: policy events, setting changes and carried types.

`changes_since` reads, from the row ranges the store keeps, only the rows a diff between each tenant's
run at that point (its *base run*) and its current run needs, then applies drift's rules (the same as
the Changes page between two runs): a policy added, deleted or renamed is one line; setting changes are
compared on configured values inside the policies both runs have; "Not configured" is no value.
`seen_at` is when a sync first saw the change (the run where the new value began, or the old ended);
`changed_by`, `activity`, `changed_at`, `attribution` say who changed it, where Intune's audit log recorded it
(tenantpilot/sync/audit.py: per setting where an event names it, else every admin of the policy, in the
window after the base run and up to the sync that saw it).
`parse_since` turns what a user types (7d, 2026-11-01, run:N) into a point; `report_rows` flattens the
result for CSV/JSON, `report_text` for a terminal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import polars as pl

from tenantpilot.analysis import drift
from tenantpilot.families import label as family_label
from tenantpilot.store import Store
from tenantpilot.sync import audit

SINCE_HELP = "7d (days), 12h (hours), 2026-11-01 (local midnight), 2026-11-01T08:00, or run:N (since run N)"


class SinceError(ValueError):
    """What the user typed is no point in time; the message says what is accepted."""


@dataclass(frozen=True)
class Since:
    at: datetime | None = None  # a point in time (aware), or
    run: int | None = None  # a run: changes after it
    text: str = ""


def parse_since(text: str, now: datetime | None = None) -> Since:
    value = (text or "").strip()
    now = now or datetime.now(timezone.utc)
    if m := re.fullmatch(r"(\d{1,5})\s*([dhw])", value, re.IGNORECASE):
        n, unit = int(m.group(1)), m.group(2).lower()
        delta = {"d": timedelta(days=n), "h": timedelta(hours=n), "w": timedelta(weeks=n)}[unit]
        return Since(at=now - delta, text=value)
    if m := re.fullmatch(r"run:(\d{1,18})", value, re.IGNORECASE):
        return Since(run=int(m.group(1)), text=value)
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise SinceError(f"--since {value!r} is not a point in time; use {SINCE_HELP}") from None
    if at.tzinfo is None:
        at = at.astimezone()  # local time of this machine
    return Since(at=at, text=value)


@dataclass(frozen=True)
class TenantChanges:
    tenant_id: str
    tenant: str
    base_run: int
    base_at: datetime
    cur_run: int
    cur_at: datetime
    first_sync: bool  # the tenant was first synced after the point asked for: counted from its first run
    events: pl.DataFrame  # drift.EVENT_COLUMNS + audit.ADDED
    settings: pl.DataFrame  # drift.DIFF_COLUMNS + seen_at + policy_id + audit.ADDED
    carried: pl.DataFrame  # Store.current_carried rows of this tenant

    @property
    def count(self) -> int:
        return self.events.height + self.settings.height


def changes_since(store: Store, since: Since, tenant_ids: list[str] | None = None) -> list[TenantChanges]:
    """Per tenant (display order), what changed between its base run and its current run."""
    with store.reading():
        return _changes_since(store, since, tenant_ids)


def _changes_since(store: Store, since: Since, tenant_ids: list[str] | None) -> list[TenantChanges]:
    bases = store.history_bases(since=since.at, since_run=since.run, tenant_ids=tenant_ids)
    if since.run is not None and not bases.height:
        raise SinceError(f"run {since.run} is not a finished run of {'these tenants' if tenant_ids else 'any tenant'}"
                         " (see `python -m tenantpilot runs`)")
    if not bases.height:
        return []
    moved = bases.filter(pl.col("base_run") != pl.col("cur_run"))
    old_rows, new_rows = store.changed_rows(moved) if moved.height else (None, None)
    policies = store.policies_at(moved) if moved.height else None
    counts = store.policy_setting_counts(_changed_policies(policies)) if policies is not None else None
    run_times = dict(zip(*store.runs(run_ids=sorted(_seen_runs(old_rows, new_rows))).select("run_id", "finished_at")
                         .get_columns())) if moved.height else {}
    carried = store.current_carried(bases["tenant_id"].to_list())
    first_base = moved["base_at"].min() if moved.height else None
    events_log = store.audit_events(since=first_base) if isinstance(first_base, datetime) else None
    per_events: dict[str, pl.DataFrame] = {}
    per_settings: dict[str, pl.DataFrame] = {}
    if policies is not None and counts is not None and old_rows is not None and new_rows is not None:
        events, settings = _diff_all(old_rows, new_rows, policies, counts, run_times)
        if events_log is not None:
            events, settings = _who(events, settings, events_log, moved)
        per_events = {str(k[0]): f.drop("tenant_id") for k, f in events.partition_by(
            "tenant_id", as_dict=True, maintain_order=True).items()} if events.height else {}
        per_settings = {str(k[0]): f.drop("tenant_id") for k, f in settings.partition_by(
            "tenant_id", as_dict=True, maintain_order=True).items()} if settings.height else {}
        empty_events, empty_settings = events.drop("tenant_id").clear(), settings.drop("tenant_id").clear()
    else:
        empty_events = pl.DataFrame(schema={**{c: pl.String for c in drift.EVENT_COLUMNS}, "settings": pl.UInt32})
        empty_settings = pl.DataFrame(schema={c: pl.String for c in drift.DIFF_COLUMNS})
    return [TenantChanges(b["tenant_id"], b["tenant"], b["base_run"], b["base_at"], b["cur_run"], b["cur_at"],
                          bool(b["first_sync"]), per_events.get(b["tenant_id"], empty_events),
                          per_settings.get(b["tenant_id"], empty_settings),
                          carried.filter(pl.col("tenant_id") == b["tenant_id"]))
            for b in bases.iter_rows(named=True)]


def _seen_runs(*frames: pl.DataFrame | None) -> set[int]:
    return {int(r) for f in frames if f is not None for r in f["seen_run"].drop_nulls().unique().to_list()}


_SEP = "\x1f"  # joins a tenant id to a setting key so one diff serves every tenant (ids hold no \x1f)


def _diff_all(old_rows: pl.DataFrame, new_rows: pl.DataFrame, policies: pl.DataFrame, counts: pl.DataFrame,
              run_times: dict[int, datetime]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Policy events and setting changes of every tenant at once (column tenant_id added): drift's
    diff runs once, over setting keys made unique per tenant, so its rules stay the one place."""
    before, after = policies.filter(pl.col("side") == "base"), policies.filter(pl.col("side") == "cur")
    events = _events(before, after, counts)
    keys = ["tenant_id", "policy_id"]
    both = before.select(keys).join(after.select(keys), on=keys)
    tagged = [f.join(both, on=keys, how="semi").with_columns(
        (pl.col("tenant_id") + _SEP + pl.col("setting_key")).alias("setting_key")) for f in (old_rows, new_rows)]
    diff = drift.diff_runs(tagged[0].drop("seen_run"), tagged[1].drop("seen_run"))
    seen = pl.concat([f.select("policy_type", "setting_key", "policy_id", "seen_run") for f in tagged]).sort(
        "seen_run", nulls_last=False).group_by("policy_type", "setting_key").agg(
        pl.col("seen_run").max(), pl.col("policy_id").last())
    times = pl.DataFrame({"seen_run": list(run_times), "seen_at": list(run_times.values())},
                         schema={"seen_run": pl.Int64, "seen_at": pl.Datetime("us", "UTC")})
    diff = diff.join(seen, on=["policy_type", "setting_key"], how="left").join(times, on="seen_run", how="left")
    parts = pl.col("setting_key").str.split_exact(_SEP, 1)
    diff = diff.with_columns(parts.struct.field("field_0").alias("tenant_id"),
                             parts.struct.field("field_1").alias("setting_key"))
    return events, diff.drop("seen_run").select("tenant_id", *[c for c in diff.columns if c not in
                                                                ("tenant_id", "seen_run")])


def _who(events: pl.DataFrame, settings: pl.DataFrame, log: pl.DataFrame,
         bases: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Attach Intune's audit events: a policy event in (base, current]; a setting change in (base, seen]."""
    spans = bases.select("tenant_id", pl.col("base_at").dt.convert_time_zone("UTC").alias("window_start"),
                         pl.col("cur_at").dt.convert_time_zone("UTC").alias("cur_end"))
    events = audit.attach_actors(events.join(spans, on="tenant_id", how="left").with_columns(
        pl.col("cur_end").alias("window_end")), log).drop("window_start", "window_end", "cur_end")
    settings = audit.attach_actors(settings.join(spans, on="tenant_id", how="left").with_columns(
        pl.coalesce(pl.col("seen_at").dt.convert_time_zone("UTC"), pl.col("cur_end")).alias("window_end")),
        log).drop("window_start", "window_end", "cur_end")
    return events, settings


def _changed_policies(policies: pl.DataFrame) -> pl.DataFrame:
    """(run_id, policy_id) of the policies that a policy event will name: in one side only, or renamed."""
    base, cur = policies.filter(pl.col("side") == "base"), policies.filter(pl.col("side") == "cur")
    keys = ["tenant_id", "policy_id"]
    gone = base.join(cur, on=keys, how="anti")
    new = cur.join(base, on=keys, how="anti")
    renamed = cur.join(base.select(*keys, pl.col("policy_name").alias("was")), on=keys).filter(
        pl.col("policy_name") != pl.col("was"))
    return pl.concat([f.select("run_id", "policy_id") for f in (gone, new, renamed)])


def _events(before: pl.DataFrame, after: pl.DataFrame, counts: pl.DataFrame) -> pl.DataFrame:
    """drift's policy events of every tenant from the two runs' policy lists (tenant_id + EVENT_COLUMNS)."""
    with_counts = [f.join(counts, on=["run_id", "policy_id"], how="left").with_columns(pl.col("settings").fill_null(0))
                   for f in (before, after)]
    return drift.events_between(with_counts[0], with_counts[1], by=("tenant_id",))


REPORT_COLUMNS: tuple[str, ...] = ("tenant", "tenant_id", "kind", "change", "policy_type", "policy", "setting",
                                   "category", "old_value", "new_value", "settings", "seen_at", "changed_by",
                                   "activity", "changed_at", "attribution", "base_run", "cur_run")


def report_rows(found: list[TenantChanges]) -> list[dict[str, object]]:
    """One row per policy event, setting change and carried type, in order (REPORT_COLUMNS)."""
    rows: list[dict[str, object]] = []
    for t in found:
        common = {"tenant": t.tenant, "tenant_id": t.tenant_id, "base_run": t.base_run, "cur_run": t.cur_run}
        for e in t.events.iter_rows(named=True):
            policy = (f"{e['old_name']} → {e['new_name']}" if e["event"] == drift.POLICY_RENAMED
                      else e["new_name"] or e["old_name"])
            rows.append({**common, "kind": "policy", "change": e["event"], "policy_type": family_label(e["policy_type"]),
                         "policy": policy, "settings": e["settings"], **_actor(e)})
        for s in t.settings.iter_rows(named=True):
            rows.append({**common, "kind": "setting", "change": s["change"],
                         "policy_type": family_label(s["policy_type"]), "policy": s["new_policies"] or s["old_policies"],
                         "setting": s["setting_name"], "category": s["category"], "old_value": s["old_value"],
                         "new_value": s["new_value"], "seen_at": s.get("seen_at"), **_actor(s)})
        for c in t.carried.iter_rows(named=True):
            rows.append({**common, "kind": "not synced", "change": c["status"], "policy_type": c["label"],
                         "settings": c["carried_settings"],
                         "policy": f"{c['reason'] or 'not read'}; carried from run {c['carried_from_run']}"
                         if c["status"] == "carried" else f"{c['reason'] or 'not read'}; nothing to carry"})
    return [{k: r.get(k) for k in REPORT_COLUMNS} for r in rows]


def _actor(row: dict[str, object]) -> dict[str, object]:
    return {k: row.get(k) for k in audit.ADDED}


def _by(row: dict[str, object], *, setting: bool = False) -> str:
    """' by alice@contoso.com (Patch DeviceConfiguration, 2026-11-30 14:02)' where Intune recorded it; for a
    setting that Intune's events name only by its policy, every admin of the policy, said to be per policy."""
    if not row.get("changed_by"):
        return ""
    at = row.get("changed_at")
    when = _when(at) if isinstance(at, datetime) else "?"
    per = "; per policy: Intune's audit log names the policy, not this setting" \
        if setting and row.get("attribution") == audit.POLICY else ""
    return f"  by {row['changed_by']} ({row.get('activity') or 'change'}, {when}{per})"


def _when(at: datetime | None) -> str:
    return at.astimezone().strftime("%Y-%m-%d %H:%M") if at else "?"


def report_text(found: list[TenantChanges], since: Since, limit: int = 200) -> str:
    lines: list[str] = []
    for t in found:
        start = "first sync" if t.first_sync else "run"
        lines.append(f"{t.tenant} ({t.tenant_id}): {t.count} change(s) from {start} {t.base_run} "
                     f"({_when(t.base_at)}) to run {t.cur_run} ({_when(t.cur_at)})")
        for e in t.events.iter_rows(named=True):
            name = (f"{e['old_name']} → {e['new_name']}" if e["event"] == drift.POLICY_RENAMED
                    else e["new_name"] or e["old_name"])
            lines.append(f"  {e['event']:<15} {family_label(e['policy_type'])}: {name} ({e['settings']} settings)"
                         f"{_by(e)}")
        for s in t.settings.head(limit).iter_rows(named=True):
            policy = s["new_policies"] or s["old_policies"]
            lines.append(f"  {s['change']:<15} {family_label(s['policy_type'])} > {policy} > {s['setting_name']}: "
                         f"{s['old_value'] if s['old_value'] is not None else 'Not configured'} → "
                         f"{s['new_value'] if s['new_value'] is not None else 'Not configured'}"
                         f"  (seen {_when(s.get('seen_at'))}){_by(s, setting=True)}")
        if t.settings.height > limit:
            lines.append(f"  … {t.settings.height - limit} more setting changes (use --format csv)")
        for c in t.carried.iter_rows(named=True):
            lines.append(f"  not synced      {c['label']}: {c['reason'] or 'not read'}"
                         + (f"; its {c['carried_settings']} settings are carried forward from run "
                            f"{c['carried_from_run']}" if c["status"] == "carried" else ""))
    if not found:
        lines.append(f"no tenant has synced data (since {since.text})")
    return "\n".join(lines) + "\n"


def overview(counts: pl.DataFrame, first: date, last: date, *, max_days: int = 31) -> pl.DataFrame:
    """Tenants (rows, most changes first) x days (columns, oldest first) of Store.change_counts; weeks
    (by their Monday) when the span is longer than `max_days`. Tenants without changes are left out."""
    frame = counts.filter(pl.col("changes") > 0)
    if not frame.height:
        return pl.DataFrame(schema={"tenant_id": pl.String, "tenant": pl.String, "total": pl.Int64})
    weekly = (last - first).days > max_days
    bucket = (pl.col("day") - pl.duration(days=pl.col("day").dt.weekday() - 1)) if weekly else pl.col("day")
    frame = frame.with_columns(bucket.dt.strftime("week of %Y-%m-%d" if weekly else "%a %Y-%m-%d").alias("when"),
                               bucket.alias("_order"))
    columns = frame.sort("_order")["when"].unique(maintain_order=True).to_list()
    grid = frame.pivot("when", index=["tenant_id", "tenant"], values="changes", aggregate_function="sum")
    totals = frame.group_by("tenant_id").agg(pl.col("changes").sum().alias("total"))
    return grid.join(totals, on="tenant_id").select("tenant_id", "tenant", "total", *columns).sort(
        ["total", "tenant"], descending=[True, False])
