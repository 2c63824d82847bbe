"""Every tenant's alignment with its baseline, kept current: the memo Fleet reads (store/alignments.py), filled by
compare.alignment_scores, the one compare rule, never a copy of it.

A memo row is current while the tenant's run, the baseline's run and the accepted deviations its score leaves
out (a digest) are those it was computed from. `current` returns the current rows of the pairs asked for and
computes the others (BATCH tenants per read and pass), keeping them; the worker calls `refresh` after each sync
so that the morning's Fleet finds last night's tenants computed; after a baseline's own sync it computes every
tenant measured against it. A deviation accepted or expired makes its tenant's row stale: the next Fleet open
computes that one.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from datetime import date

import polars as pl

from tenantpilot import logs
from tenantpilot.analysis import compare, deviations, fleet
from tenantpilot.store import Store, StoreError
from tenantpilot.store.alignments import MEMO_SCHEMA

log = logging.getLogger("tenantpilot.alignments")

BATCH = 10  # tenants per read and pass: 10 x 20,000 rows peak at ~0.5 GB (25: ~0.9 GB), ~15 % slower in all
# the columns alignment_scores reads (scope comes from type and platform; values from compare_value, then value)
READ_COLUMNS: tuple[str, ...] = ("policy_type", "odata_type", "platform", "setting_key", "value", "compare_value",
                                 "configured")
KEY = ["tenant_id", "baseline_id", "run_id", "baseline_run_id", "accepted_digest"]
ACCEPTED_SCHEMA = {"tenant_id": pl.String, **{k: pl.String for k in compare.MATCH_KEY}, "label": pl.String,
                   "baseline_id": pl.String}


def accepted_of(register: pl.DataFrame, baselines: Sequence[str], today: date) -> pl.DataFrame:
    """deviations.accepted_keys of each baseline, with `baseline_id`: what the scores leave out."""
    frames = [deviations.accepted_keys(register, today, b).with_columns(pl.lit(b).alias("baseline_id"))
              for b in sorted(set(baselines))]
    return pl.concat(frames) if frames else pl.DataFrame(schema=ACCEPTED_SCHEMA)


def wanted(runs: dict[str, int], assigned: dict[str, str], accepted: pl.DataFrame) -> pl.DataFrame:
    """The memo key (KEY) each assigned tenant's row must have to be current."""
    digests: dict[tuple[str, str], str] = {}
    if accepted.height:
        for (tenant, baseline), part in accepted.sort(["tenant_id", "baseline_id", *compare.MATCH_KEY]).group_by(
                ["tenant_id", "baseline_id"], maintain_order=True):
            text = "\n".join("\x1f".join(str(v) for v in r) for r in part.select(*compare.MATCH_KEY, "label").rows())
            digests[(str(tenant), str(baseline))] = hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
    rows = [(t, b, runs[t], runs[b], digests.get((t, b), "")) for t, b in assigned.items() if t in runs and b in runs]
    return pl.DataFrame(rows, schema={"tenant_id": pl.String, "baseline_id": pl.String, "run_id": pl.Int64,
                                      "baseline_run_id": pl.Int64, "accepted_digest": pl.String}, orient="row")


def current(store: Store, want: pl.DataFrame, accepted: pl.DataFrame,
            progress: Callable[[int, int], None] | None = None) -> pl.DataFrame:
    """The memo rows (MEMO_SCHEMA) of `want` (wanted()): those kept, the others computed now and kept."""
    if not want.height:
        return pl.DataFrame(schema=MEMO_SCHEMA)
    kept = store.alignment_memo(want["tenant_id"].unique().to_list()).join(want, on=KEY, how="semi")
    todo = want.join(kept, on=KEY, how="anti")
    new: list[pl.DataFrame] = []
    done = 0
    for (baseline,), part in todo.group_by(["baseline_id"], maintain_order=True):
        base_rows = store.current_columns_of([str(baseline)], list(READ_COLUMNS))
        mine = accepted.filter(pl.col("baseline_id") == baseline)
        tenants = part["tenant_id"].to_list()
        for start in range(0, len(tenants), BATCH):
            batch = tenants[start:start + BATCH]
            rows = pl.concat([base_rows, store.current_columns_of(batch, list(READ_COLUMNS))], how="vertical_relaxed")
            scores = compare.alignment_scores(rows, [str(baseline), *batch], str(baseline),
                                              accepted=mine.filter(pl.col("tenant_id").is_in(batch)))
            computed = part.filter(pl.col("tenant_id").is_in(batch)).join(scores.drop("tenant"), on="tenant_id")
            store.save_alignments(computed)  # kept batch by batch: an interrupted first open is not lost
            new.append(computed)
            done += len(batch)
            if progress is not None:
                progress(done, todo.height)
    found = pl.concat([kept, *new], how="diagonal_relaxed") if new else kept
    return found.select(*(pl.col(c).cast(t) for c, t in MEMO_SCHEMA.items()))


def refresh(store: Store, tenant_ids: Sequence[str], today: date | None = None) -> int:
    """Make these tenants' memo rows current against their baselines (their groups', else the imported one),
    and, for a tenant that is a baseline, the rows of every tenant measured against it: the worker's step after
    a sync, so a golden tenant's nightly sync is paid for by the worker, not by the next Fleet open. Returns how
    many rows it computed."""
    today = today or date.today()
    ids = set(tenant_ids)
    with store.reading():
        tenants = store.tenants()
        members, groups = store.group_members(), store.group_settings()
        assigned = {t: b for t, b in fleet.assign_baselines(tenants, members, groups).items() if t in ids or b in ids}
        if not assigned:
            return 0
        register = store.deviations(list(assigned))
    runs = {t: int(r) for t, r in tenants.select("tenant_id", "current_run_id").drop_nulls().iter_rows()}
    accepted = accepted_of(register, list(assigned.values()), today)
    want = wanted(runs, assigned, accepted)
    before = store.alignment_memo(list(assigned)).join(want, on=KEY, how="semi").height
    current(store, want, accepted)
    return want.height - before


def refresh_after(store: Store, run_id: int) -> int:
    """The worker's step after a run (ops/tasks.py, ops/handback.py): when it brought data, `refresh` its tenant.
    A database that stays locked past its budget (StoreError) leaves the memo as it was, logged: the run is
    written, and Fleet computes what the memo lacks."""
    try:
        run = store.get_run(run_id)
        if run is None or run["status"] not in ("succeeded", "partial"):
            return 0
        return refresh(store, [str(run["tenant_id"])])
    except StoreError as exc:
        logs.log(log, logging.WARNING, "alignment not kept", run_id=run_id, error=logs.redact(str(exc)))
        return 0
