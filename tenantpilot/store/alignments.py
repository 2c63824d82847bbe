"""The alignment memo in DuckDB: a tenant's alignment with a baseline (compare.alignment_scores' counts) for each
pair of runs it was computed for (the tenant's, the baseline's) and the accepted deviations it left out (a
digest), so a reader knows which row is current, and what the alignment was a week ago (`alignment_as_of`). A mixin of `Store`; `ALIGNMENT_DDL`
runs from `Store._migrate` (version 10). What goes in is computed by tenantpilot/ops/alignments.py: the
table is a memo of the one compare rule, never a second copy of it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from contextlib import AbstractContextManager

import duckdb
import polars as pl

ALIGNMENT_DDL = """
CREATE TABLE IF NOT EXISTS alignment_memo (
    tenant_id TEXT NOT NULL, baseline_id TEXT NOT NULL, run_id BIGINT NOT NULL, baseline_run_id BIGINT NOT NULL,
    accepted_digest TEXT NOT NULL, baseline_settings BIGINT, matched BIGINT, differing BIGINT, missing BIGINT,
    extra BIGINT, accepted BIGINT, score DOUBLE, computed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, baseline_id, run_id, baseline_run_id, accepted_digest));
"""
MEMO_SCHEMA: dict[str, pl.DataType] = {
    "tenant_id": pl.String(), "baseline_id": pl.String(), "run_id": pl.Int64(), "baseline_run_id": pl.Int64(),
    "accepted_digest": pl.String(), "baseline_settings": pl.Int64(), "matched": pl.Int64(), "differing": pl.Int64(),
    "missing": pl.Int64(), "extra": pl.Int64(), "accepted": pl.Int64(), "score": pl.Float64(),
}


class AlignmentStore:
    """The alignment memo (Store inherits these methods)."""

    def connect(self, *, write: bool = False) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        raise NotImplementedError  # Store's

    def alignment_memo(self, tenant_ids: Sequence[str] | None = None) -> pl.DataFrame:
        """The memo's rows (MEMO_SCHEMA) of these tenants (all: None)."""
        where, args = ("", []) if tenant_ids is None else (
            f"WHERE tenant_id IN ({','.join('?' * len(tenant_ids)) or 'NULL'})", list(tenant_ids))
        with self.connect() as con:
            frame = con.sql(f"SELECT {', '.join(MEMO_SCHEMA)} FROM alignment_memo {where}", params=args or None).pl()
        return frame.select(*(pl.col(c).cast(t) for c, t in MEMO_SCHEMA.items()))

    def alignment_as_of(self, at: dt.datetime) -> pl.DataFrame:
        """(tenant_id, baseline_id, score) of the rows computed for the runs that were current at `at` (each
        tenant's and baseline's latest run done by then); of several digests, the latest computed."""
        with self.connect() as con:
            return con.sql("""
                WITH cur AS (SELECT tenant_id, max(run_id) AS run_id FROM sync_runs
                             WHERE status IN ('succeeded', 'partial') AND finished_at <= ? GROUP BY tenant_id)
                SELECT m.tenant_id, m.baseline_id, arg_max(m.score, m.computed_at) AS score
                FROM alignment_memo m JOIN cur t ON t.tenant_id = m.tenant_id AND t.run_id = m.run_id
                JOIN cur b ON b.tenant_id = m.baseline_id AND b.run_id = m.baseline_run_id
                GROUP BY m.tenant_id, m.baseline_id""", params=[at]).pl()

    def save_alignments(self, rows: pl.DataFrame) -> None:
        """Keep these rows (MEMO_SCHEMA), each the alignment of a tenant with a baseline for its key's runs."""
        if not rows.height:
            return
        with self.connect(write=True) as con:
            con.register("_memo", rows.select(*(pl.col(c).cast(t) for c, t in MEMO_SCHEMA.items())).to_arrow())
            con.execute(f"INSERT OR REPLACE INTO alignment_memo ({', '.join(MEMO_SCHEMA)}) "
                        f"SELECT {', '.join(MEMO_SCHEMA)} FROM _memo")
            con.unregister("_memo")
