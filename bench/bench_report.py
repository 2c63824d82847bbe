"""Customer report benchmark: a baseline and N tenants of S settings each in a real DuckDB file, every
tenant differing from the baseline on a share of them; times `gather` (the store's reads and the tables),
the workbook and the PDF, their sizes, and peak RSS. Figures, not assertions.

    python bench/bench_report.py [--tenants 5] [--settings 20000] [--differ 0.1]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import polars as pl

from tenantpilot import report
from tenantpilot.analysis import history
from tenantpilot.flatten.schema import ASSIGNMENT_SCHEMA, POLICY_SCHEMA, SETTING_SCHEMA
from tenantpilot.report.pdf import MAX_ROWS
from tenantpilot.store import Store

PER_POLICY = 100


def frames(tenant: int, settings: int, differ: float) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Settings-catalog policies of PER_POLICY settings; tenant 0 is the baseline; tenant t>0 sets a
    different value on every k-th setting (k = 1/differ) and leaves out every (k+1)-th."""
    step = max(1, round(1 / differ)) if differ else 0
    keys = [i for i in range(settings) if not (tenant and step and i % (step + 1) == 1)]
    rows = pl.DataFrame({"i": keys}).with_columns(
        (pl.lit("p") + (pl.col("i") // PER_POLICY).cast(pl.String)).alias("policy_id"),
        (pl.lit("key_") + pl.col("i").cast(pl.String)).alias("setting_key"),
        pl.when(pl.lit(tenant > 0 and step > 0) & (pl.col("i") % max(step, 1) == 0))
        .then(pl.lit("changed")).otherwise(pl.lit("value")).alias("value"))
    out = pl.DataFrame({c: [None] * rows.height for c in SETTING_SCHEMA}, schema=SETTING_SCHEMA).with_columns(
        rows["policy_id"], (pl.lit("Policy ") + rows["policy_id"]).alias("policy_name"),
        pl.lit("settingsCatalog").alias("policy_type"),
        pl.lit("#microsoft.graph.deviceManagementConfigurationPolicy").alias("odata_type"),
        pl.lit("windows").alias("platform"), rows["setting_key"], rows["setting_key"].alias("setting_id"),
        (pl.lit("Setting ") + rows["setting_key"]).alias("setting_name"), pl.lit("Category").alias("category"),
        rows["value"], rows["value"].alias("compare_value"), rows["value"].alias("raw_value"),
        pl.lit(False).alias("is_secret"), pl.lit(True).alias("configured"))
    ids = out["policy_id"].unique().sort()
    policies = pl.DataFrame({"policy_id": ids, "policy_name": "Policy " + ids, "policy_type": "settingsCatalog",
                             "odata_type": "#microsoft.graph.deviceManagementConfigurationPolicy",
                             "platform": "windows", "raw_json": "{}"}).select(
        [pl.col(c) if c in ("policy_id", "policy_name", "policy_type", "odata_type", "platform", "raw_json")
         else pl.lit(None).alias(c) for c in POLICY_SCHEMA]).cast(POLICY_SCHEMA)  # type: ignore[arg-type]
    return policies, out, pl.DataFrame(schema=ASSIGNMENT_SCHEMA)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tenants", type=int, default=5)
    ap.add_argument("--settings", type=int, default=20_000)
    ap.add_argument("--differ", type=float, default=0.1)
    args = ap.parse_args()
    store = Store(Path(tempfile.mkdtemp()) / "bench.duckdb")
    ids = ["baseline:bench"] + [f"{t:08d}-0000-4000-8000-000000000000" for t in range(1, args.tenants + 1)]
    for n, tenant in enumerate(ids):
        store.add_tenant(tenant, "Bench baseline" if n == 0 else f"Tenant {n}", "baseline" if n == 0 else "tenant")
        run_id, _ = store.create_run_unless_active(tenant)
        store.start_run(run_id)
        policies, settings, assignments = frames(n, args.settings, args.differ)
        store.write_snapshot(run_id, tenant, policies=policies, settings=settings, assignments=assignments,
                             status="succeeded", request_count=0)
    t0 = time.perf_counter()
    data = report.gather(store, ids[1:], ids[0], history.parse_since("7d"))
    t1 = time.perf_counter()
    xlsx = report.render(data, "xlsx")
    t2 = time.perf_counter()
    pdf = report.render(data, "pdf")
    t3 = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.tenants} tenants x {args.settings:,} settings, {data.differences.height:,} difference rows")
    print(f"gather {t1 - t0:6.2f} s | xlsx {t2 - t1:6.2f} s ({len(xlsx) / 1e6:.1f} MB) | "
          f"pdf {t3 - t2:6.2f} s ({len(pdf) / 1e6:.1f} MB, at most {MAX_ROWS} rows per table) | "
          f"peak RSS {rss:,.0f} MB")


if __name__ == "__main__":
    main()
