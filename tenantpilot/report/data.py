"""What a customer report holds: the reads (`gather`) and the pure assembly of its five tables (`assemble`).

The numbers come from the product's own rules, never recomputed here: alignment scores and the cells
behind the differences from `analysis.compare` (the Compare page's rule: configured settings only, matched
by compare.MATCH_KEY, accepted deviations left out of the score), the register's state from
`analysis.deviations`, changes from `analysis.history.changes_since`, types not read from
`Store.current_carried`. Secrets: the flattener stored them as `********`; `explore.mask_secrets` runs
again on the rows read (belt and braces), so no value the screen masks reaches a report.

Every table's text is *display text*: invisible and bidi control characters are shown as `[U+XXXX]`
(`reveal`, the rule the app's screens follow) and a cell is cut at MAX_CELL characters, so a hostile
name reads as itself in Excel and in the PDF. Formula safety is the writers' business (xlsx.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone

import polars as pl

from tenantpilot import outbound
from tenantpilot.analysis import compare, deviations, history
from tenantpilot.analysis.explore import mask_secrets, tenant_labels
from tenantpilot.families import LABELS
from tenantpilot.store import Store
from tenantpilot.sync import audit

# one vocabulary for a tenant's difference from a baseline (issue 20, item 3)
DIFFERENT = "different value"
MISSING = "missing in the tenant"
NOT_IN_BASELINE = "not in the baseline"
ACCEPTED = "accepted"
STATUS_ORDER: tuple[str, ...] = (DIFFERENT, MISSING, ACCEPTED, NOT_IN_BASELINE)
NOT_CONFIGURED = "Not configured"
# how "Changed by" is attributed (sync/audit.py): say it where the column is shown
CHANGED_BY_RULE = ("Changed by: the admin whose Intune audit event names the setting; where Intune names only the "
                   "policy, every admin who changed the policy in that time, marked \"(per policy)\".")
PER_POLICY = " (per policy)"

MAX_CELL = 2000  # characters of one cell (Excel allows 32,767; a report line longer than this is noise)
_CUT = " …[cut]"

SUMMARY_COLUMNS = ("Tenant", "Alignment", "Matched", "Different value", "Missing in the tenant",
                   "Not in the baseline", "Accepted", "Baseline settings", "Changes", "Types not read")
DIFFERENCE_COLUMNS = ("Tenant", "Status", "Policy type", "Applies to", "Category", "Setting", "Baseline value",
                      "Tenant value", "Tenant policies", "Accepted until", "Setting key")
DEVIATION_COLUMNS = ("Tenant", "Policy type", "Applies to", "Setting", "Reason", "Owner", "Accepted by", "Expires on",
                     "State", "Setting key")
CHANGE_COLUMNS = ("Tenant", "When", "Changed by", "Change", "Policy type", "Policy", "Setting", "Before", "After",
                  "Activity")
NOT_READ_COLUMNS = ("Tenant", "Policy type", "Status", "Reason", "Carried from run", "Carried from",
                    "Carried settings")


@dataclass(frozen=True)
class ReportData:
    """Everything a report shows, as display frames (column names as printed) plus the header facts."""

    baseline: str  # the baseline's display name
    tenants: tuple[str, ...]  # display names, in the order asked for
    since: str  # for people: "2026-11-30 03:15 UTC (7d)", "run 12"
    generated_at: datetime
    today: date
    summary: pl.DataFrame  # SUMMARY_COLUMNS; Alignment is a fraction (0..1) or null
    differences: pl.DataFrame  # DIFFERENCE_COLUMNS
    accepted: pl.DataFrame  # DEVIATION_COLUMNS
    changes: pl.DataFrame  # CHANGE_COLUMNS
    not_read: pl.DataFrame  # NOT_READ_COLUMNS


class ReportError(ValueError):
    """A report cannot be made as asked; the message says what to do."""


def gather(store: Store, tenant_ids: Sequence[str], baseline_id: str, since: history.Since, *,
           today: date | None = None, now: datetime | None = None) -> ReportData:
    """The reads a report needs (one store read session), then `assemble`. Raises ReportError when a
    tenant or the baseline has no synced data, history.SinceError for an unknown run."""
    tenants = [t for t in dict.fromkeys(tenant_ids) if t != baseline_id]
    if not tenants:
        raise ReportError("name at least one tenant besides the baseline")
    today = today or date.today()
    with store.reading():
        rows = store.current_settings([baseline_id, *tenants], leave_out=("description",))
        present = set(rows["tenant_id"].unique().to_list())
        empty = [t for t in [baseline_id, *tenants] if t not in present]
        if empty:
            names = dict(store.tenants().select("tenant_id", "display_name").iter_rows())
            raise ReportError(f"no synced data for {', '.join(str(names.get(t) or t) for t in empty)}: "
                              "sync it (or import the baseline) first")
        register = store.deviations(tenants)
        found = history.changes_since(store, since, tenants)
        carried = store.current_carried(tenants)
    return assemble(rows, tenants, baseline_id, register=register, changes=found, carried=carried,
                    since=since_text(since), today=today, now=now or datetime.now(timezone.utc))


def since_text(since: history.Since) -> str:
    """The point a report's changes start from, for people: "2026-11-30 03:15 UTC (7d)" or "run 12"."""
    if since.run is not None:
        return f"run {since.run}"
    when = _utc(since.at) or since.text
    return f"{when} ({since.text})" if since.text and since.text not in when else when


def assemble(rows: pl.DataFrame, tenants: Sequence[str], baseline_id: str, *, register: pl.DataFrame,
             changes: Sequence[history.TenantChanges], carried: pl.DataFrame, since: str, today: date,
             now: datetime) -> ReportData:
    """The report's tables from the rows of the tenants and the baseline (Store.current_settings), the
    deviation register, changes_since's result and the carried types. Pure."""
    rows = mask_secrets(rows)
    order = [baseline_id, *tenants]
    names = tenant_labels(rows, order)
    accepted = deviations.accepted_keys(register, today, baseline_id)
    scores = compare.alignment_scores(rows, order, baseline_id, accepted=accepted)
    diffs = _differences(compare.cells(rows, order), tenants, baseline_id, accepted, names)
    changed = _changes(changes)
    not_read = _not_read(carried)
    summary = _summary(scores, changed, not_read, tenants, names)
    return ReportData(
        baseline=reveal(names[baseline_id]), tenants=tuple(reveal(names[t]) for t in tenants), since=reveal(since),
        generated_at=now, today=today, summary=summary, differences=_display(diffs),
        accepted=_display(_deviations(register, baseline_id, today)), changes=_display(changed),
        not_read=_display(not_read))


def _summary(scores: pl.DataFrame, changed: pl.DataFrame, not_read: pl.DataFrame, tenants: Sequence[str],
             names: dict[str, str]) -> pl.DataFrame:
    by_tenant = {r["tenant_id"]: r for r in scores.iter_rows(named=True)}
    counted = dict(changed.group_by("Tenant").len().iter_rows()) if changed.height else {}
    unread = dict(not_read.group_by("Tenant").len().iter_rows()) if not_read.height else {}
    out = []
    for t in tenants:
        s = by_tenant[t]
        out.append({"Tenant": reveal(names[t]), "Alignment": s["score"], "Matched": s["matched"],
                    "Different value": s["differing"], "Missing in the tenant": s["missing"],
                    "Not in the baseline": s["extra"], "Accepted": s["accepted"],
                    "Baseline settings": s["baseline_settings"], "Changes": counted.get(names[t], 0),
                    "Types not read": unread.get(names[t], 0)})
    schema = {c: pl.Int64 for c in SUMMARY_COLUMNS} | {"Tenant": pl.String, "Alignment": pl.Float64}
    return pl.DataFrame(out, schema=schema)


def _differences(cells: pl.DataFrame, tenants: Sequence[str], baseline_id: str, accepted: pl.DataFrame,
                 names: dict[str, str]) -> pl.DataFrame:
    """One row per tenant and setting where the tenant differs from the baseline (compare's cells and
    alignment rule: the same counts as the score), accepted ones with their reason and expiry."""
    keys = list(compare.MATCH_KEY)
    base = cells.filter(pl.col("tenant_id") == baseline_id).select(
        *keys, pl.col("setting_name").alias("_bname"), pl.col("category").alias("_bcat"),
        pl.col("value").alias("Baseline value"), pl.col("cmp").alias("_bcmp"))
    own = cells.filter(pl.col("tenant_id").is_in(list(tenants)))
    grid = pl.DataFrame({"tenant_id": list(tenants)}).join(base, how="cross")
    joined = grid.join(own, on=["tenant_id", *keys], how="full", coalesce=True)
    status = (pl.when(pl.col("_bcmp").is_null()).then(pl.lit(NOT_IN_BASELINE))
              .when(pl.col("cmp").is_null()).then(pl.lit(MISSING))
              .when(pl.col("cmp") != pl.col("_bcmp")).then(pl.lit(DIFFERENT)))
    found = joined.with_columns(status.alias("Status")).filter(pl.col("Status").is_not_null())
    labelled = found.join(accepted.select("tenant_id", *keys, "label"), on=["tenant_id", *keys], how="left")
    # an accepted key left the score: it is listed as accepted (a key the baseline lacks never scored)
    labelled = labelled.with_columns(
        pl.when(pl.col("label").is_not_null() & (pl.col("Status") != NOT_IN_BASELINE))
        .then(pl.lit(ACCEPTED)).otherwise(pl.col("Status")).alias("Status"),
        pl.col("label").str.extract(r"until (\d{4}-\d{2}-\d{2})\)$").alias("Accepted until"))
    rank = {s: i for i, s in enumerate(STATUS_ORDER)}
    position = {t: i for i, t in enumerate(tenants)}
    return labelled.with_columns(
        pl.col("tenant_id").replace_strict(names, return_dtype=pl.String).alias("Tenant"),
        pl.col("policy_type").replace_strict(LABELS, default=pl.col("policy_type"), return_dtype=pl.String)
        .alias("Policy type"),
        pl.col("scope").alias("Applies to"),
        pl.coalesce("category", "_bcat").alias("Category"),
        pl.coalesce("setting_name", "_bname", "setting_key").alias("Setting"),
        pl.col("value").alias("Tenant value"),
        pl.col("policies").alias("Tenant policies"),
        pl.col("setting_key").alias("Setting key"),
        pl.col("Status").replace_strict(rank, return_dtype=pl.UInt8).alias("_rank"),
        pl.col("tenant_id").replace_strict(position, return_dtype=pl.UInt32).alias("_t"),
    ).sort(["_t", "_rank", "Policy type", "Category", "Setting", "Applies to", "Setting key"],
           nulls_last=True).select(DIFFERENCE_COLUMNS)


def _deviations(register: pl.DataFrame, baseline_id: str, today: date) -> pl.DataFrame:
    """The register's deviations from this baseline (valid and expired; removed ones are gone)."""
    frame = deviations.with_state(register.filter(pl.col("baseline_id") == baseline_id), today)
    return frame.sort("tenant", "expires_on", "setting_name").select(
        pl.col("tenant").alias("Tenant"),
        pl.col("policy_type").replace_strict(LABELS, default=pl.col("policy_type"), return_dtype=pl.String)
        .alias("Policy type"),
        pl.col("scope").alias("Applies to"), pl.col("setting_name").alias("Setting"), pl.col("reason").alias("Reason"),
        pl.col("owner").alias("Owner"), pl.col("accepted_by").alias("Accepted by"), pl.col("expires_on").dt.strftime("%Y-%m-%d").alias("Expires on"),
        pl.col("state").alias("State"), pl.col("setting_key").alias("Setting key"))


def _changes(found: Sequence[history.TenantChanges]) -> pl.DataFrame:
    """Policy events and setting changes (history.report_rows), newest first per tenant."""
    out = []
    synced: dict[object, datetime] = {t.cur_run: t.cur_at for t in found}
    for r in history.report_rows(list(found)):
        if r["kind"] == "not synced":
            continue  # listed under types not read
        at = r["changed_at"] or r["seen_at"]
        # a policy event without an audit record: the sync that saw it is the latest it can have happened
        seen = synced.get(r["cur_run"])
        when = _utc(at) if at is not None else (f"by {_utc(seen)}" if seen else None)
        setting = r["kind"] == "setting"
        change = f"setting {r['change']}" if setting else r["change"]
        # a setting without a value on one side is at "Not configured" there (history.report_text says the same)
        before, after = ((NOT_CONFIGURED if v is None else v) if setting else v for v in (r["old_value"], r["new_value"]))
        by = r["changed_by"]
        if by and setting and r["attribution"] == audit.POLICY:
            by = f"{by}{PER_POLICY}"
        out.append({"Tenant": r["tenant"], "When": when, "Changed by": by, "Change": change,
                    "Policy type": r["policy_type"], "Policy": r["policy"], "Setting": r["setting"],
                    "Before": before, "After": after, "Activity": r["activity"],
                    "_at": at.astimezone(timezone.utc) if isinstance(at, datetime) else None})
    frame = pl.DataFrame(out, schema={**{c: pl.String for c in CHANGE_COLUMNS},
                                      "_at": pl.Datetime("us", "UTC")})
    return frame.sort(["Tenant", "_at"], descending=[False, True], nulls_last=True).select(CHANGE_COLUMNS)


def _not_read(carried: pl.DataFrame) -> pl.DataFrame:
    return carried.sort("tenant", "label").select(
        pl.col("tenant").alias("Tenant"), pl.col("label").alias("Policy type"), pl.col("status").alias("Status"),
        pl.concat_str([pl.col("reason").fill_null("not read"), pl.col("message")], separator=": ",
                      ignore_nulls=True).alias("Reason"),
        pl.col("carried_from_run").cast(pl.String).alias("Carried from run"),
        pl.col("carried_from_at").map_elements(_utc, return_dtype=pl.String).alias("Carried from"),
        pl.col("carried_settings").cast(pl.Int64).alias("Carried settings"))


def _utc(at: object) -> str | None:
    """'2026-12-01 14:02 UTC' (reports go to people in other time zones)."""
    if not isinstance(at, datetime):
        return None
    aware = at if at.tzinfo else at.replace(tzinfo=timezone.utc)
    return aware.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _display(frame: pl.DataFrame) -> pl.DataFrame:
    """Every text column revealed and cut (see the module docstring)."""
    return frame.with_columns(pl.col(c).map_elements(display_text, return_dtype=pl.String)
                              for c, t in frame.schema.items() if t == pl.String)


def display_text(text: str | None) -> str | None:
    """A cell as a report prints it: controls revealed, at most MAX_CELL characters."""
    if text is None:
        return None
    shown = reveal(text)
    return shown if len(shown) <= MAX_CELL else shown[:MAX_CELL - len(_CUT)] + _CUT


def reveal(text: object) -> str:
    """Text with every invisible character shown as [U+XXXX], newline and tab kept: the outbound rule."""
    return outbound.block(text)
