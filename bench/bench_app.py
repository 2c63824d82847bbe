"""App-side benchmark: 50 tenants x 20,000 settings (1,000,000 rows) in a real DuckDB file.

    python bench/bench_app.py [--tenants 50] [--settings 20000] [--db bench/out/app.duckdb] [--reuse]

Prints seconds, rows and peak RSS for: writing the snapshots, loading the current snapshot,
st.cache_data's per-hit copy of it (why the app caches with st.cache_resource), a filter change
(filter_settings with a search), compare_matrix of 3 and of all tenants, alignment scores, and
full AppTest reruns of the Explore and Compare pages. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import os
import pickle
import resource
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import polars as pl

ROOT = Path(__file__).resolve().parent.parent

from tenantpilot import compare, explore  # noqa: E402
from tenantpilot.flatten.schema import ASSIGNMENT_SCHEMA, SETTING_SCHEMA  # noqa: E402
from tenantpilot.snapshot import POLICY_SCHEMA  # noqa: E402
from tenantpilot.store import Store  # noqa: E402

FAMILIES = ("settingsCatalog", "settingsCatalog", "settingsCatalog", "deviceConfiguration", "compliance",
            "endpointSecurityIntent", "adminTemplate", "appProtection")
PLATFORMS = ("windows10", "macOS", "iOS", "android")
SETTINGS_PER_POLICY = 100


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        return float("nan")


@contextmanager
def timed(label: str, rows: Callable[[], Any] | None = None) -> Iterator[dict[str, Any]]:
    out: dict[str, Any] = {}
    start = time.perf_counter()
    yield out
    elapsed = time.perf_counter() - start
    n = rows() if rows else out.get("rows")
    rows_text = f"{n:>12,} rows" if isinstance(n, int) else " " * 17
    print(f"{label:<52} {elapsed:>8.3f} s {rows_text}   rss {rss_mb():>7,.0f} MB   peak {peak_rss_mb():>7,.0f} MB",
          flush=True)


def base_settings(n_settings: int) -> pl.DataFrame:
    """The settings every tenant has (definition ids, names, descriptions), built once."""
    i = pl.int_range(0, n_settings, eager=True).alias("i")
    family = pl.Series(FAMILIES).gather(i % len(FAMILIES))
    return pl.DataFrame({"i": i}).with_columns(
        family.alias("policy_type"),
        pl.Series(PLATFORMS).gather(i // 1000 % len(PLATFORMS)).alias("platform"),
        (pl.lit("device_vendor_msft_policy_config_area") + (pl.col("i") // 250).cast(pl.String)
         + pl.lit("_setting") + pl.col("i").cast(pl.String)).alias("setting_key"),
        (pl.lit("Setting ") + pl.col("i").cast(pl.String) + pl.lit(" of area ") + (pl.col("i") // 250).cast(pl.String))
        .alias("setting_name"),
        (pl.lit("Area ") + (pl.col("i") // 250).cast(pl.String)).alias("category"),
        (pl.lit("Controls behaviour number ") + pl.col("i").cast(pl.String)
         + pl.lit(". When enabled, the device applies the setting; when disabled or not configured, the OS default "
                  "applies.")).alias("description"),
        (pl.col("i") // SETTINGS_PER_POLICY).alias("policy_no"),
    )


def tenant_frames(base: pl.DataFrame, t: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """One tenant's snapshot: same settings, ~10 % different values, its own policy names."""
    drift = ((pl.col("i") * 7919 + t * 104729) % 100) < 10
    value = pl.when(drift).then(pl.lit("value_t") + pl.lit(str(t % 5))).otherwise(
        pl.lit("value_") + (pl.col("i") % 3).cast(pl.String))
    rows = base.with_columns(
        (pl.lit(f"t{t}-p") + pl.col("policy_no").cast(pl.String)).alias("policy_id"),
        (pl.lit(f"Tenant {t} - baseline ") + pl.col("policy_no").cast(pl.String)).alias("policy_name"),
        pl.lit("#microsoft.graph.deviceManagementConfigurationPolicy").alias("odata_type"),
        (pl.lit("vendor_msft_") + pl.col("setting_key")).alias("setting_id"),
        value.alias("value"),
    ).with_columns(
        (pl.lit('"') + pl.col("value") + pl.lit('"')).alias("raw_value"),
        pl.lit("choice").alias("value_type"),
        pl.lit(False).alias("is_secret"),
        pl.col("value").alias("compare_value"),
    )
    settings = rows.select(*(pl.col(c).cast(t_) for c, t_ in SETTING_SCHEMA.items()))
    policies = rows.group_by("policy_id", maintain_order=True).agg(
        pl.col("policy_name").first(), pl.col("policy_type").first(), pl.col("odata_type").first(),
        pl.col("platform").first(),
    ).with_columns(pl.lit("{}").alias("raw_json")).select(list(POLICY_SCHEMA))
    return policies, settings, pl.DataFrame([], schema=ASSIGNMENT_SCHEMA)


def batch_frames(base: pl.DataFrame, first: int, count: int, run_ids: list[int], tenant_ids: list[str]
                 ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows of `count` tenants at once (what tenant_frames builds for one), in one vectorised pass."""
    ts = pl.DataFrame({"t": list(range(first, first + count)), "run_id": run_ids, "tenant_id": tenant_ids},
                      schema={"t": pl.Int64, "run_id": pl.Int64, "tenant_id": pl.String})
    rows = ts.join(base, how="cross")
    drift = ((pl.col("i") * 7919 + pl.col("t") * 104729) % 100) < 10
    value = pl.when(drift).then(pl.lit("value_t") + (pl.col("t") % 5).cast(pl.String)).otherwise(
        pl.lit("value_") + (pl.col("i") % 3).cast(pl.String))
    rows = rows.with_columns(
        (pl.lit("t") + pl.col("t").cast(pl.String) + pl.lit("-p") + pl.col("policy_no").cast(pl.String))
        .alias("policy_id"),
        (pl.lit("Tenant ") + pl.col("t").cast(pl.String) + pl.lit(" - baseline ") + pl.col("policy_no").cast(pl.String))
        .alias("policy_name"),
        pl.lit("#microsoft.graph.deviceManagementConfigurationPolicy").alias("odata_type"),
        (pl.lit("vendor_msft_") + pl.col("setting_key")).alias("setting_id"),
        value.alias("value"),
    ).with_columns(
        (pl.lit('"') + pl.col("value") + pl.lit('"')).alias("raw_value"),
        pl.lit("choice").alias("value_type"),
        pl.lit(False).alias("is_secret"),
        pl.col("value").alias("compare_value"),
    )
    settings = rows.select("run_id", "tenant_id", *(pl.col(c).cast(t_) for c, t_ in SETTING_SCHEMA.items()))
    policies = rows.group_by("run_id", "policy_id", maintain_order=True).agg(
        pl.col("tenant_id").first(), pl.col("policy_name").first(), pl.col("policy_type").first(),
        pl.col("odata_type").first(), pl.col("platform").first(),
    ).with_columns(pl.lit("{}").alias("raw_json")).select("run_id", "tenant_id", *POLICY_SCHEMA)
    return policies, settings


def fill(store: Store, n_tenants: int, n_settings: int, batch: int = 50) -> None:
    """Bulk writes: the runs are created through the store, then the rows of `batch` tenants at a
    time go in as one Arrow frame per table (INSERT … SELECT), as DESIGN.md's constraints ask."""
    base = base_settings(n_settings)
    width = len(str(n_tenants - 1))
    tenants = [f"tenant{t:0{width}d}.onmicrosoft.com" for t in range(n_tenants)]
    with store.connect(write=True) as con:
        con.execute("BEGIN")
        for t, tenant in enumerate(tenants):
            con.execute("INSERT INTO tenants VALUES (?, ?, 'tenant', now())", [tenant, f"Tenant {t:0{width}d}"])
            con.execute("INSERT INTO sync_runs (run_id, tenant_id, status, queued_at, started_at, finished_at, "
                        "policy_count, setting_count, request_count, source) SELECT nextval('run_seq'), ?, "
                        "'succeeded', now(), now(), now(), ?, ?, 0, 'graph'",
                        [tenant, n_settings // SETTINGS_PER_POLICY, n_settings])
        con.execute("COMMIT")
        run_of = dict(con.execute("SELECT tenant_id, run_id FROM sync_runs").fetchall())
        for start in range(0, n_tenants, batch):
            count = min(batch, n_tenants - start)
            names = tenants[start:start + count]
            frames = dict(zip(("policies", "settings"),
                              batch_frames(base, start, count, [run_of[n] for n in names], names)))
            for table, frame in frames.items():
                cols = [c for c in frame.columns if c not in ("run_id", "tenant_id")]
                extra = ", now()" if table == "settings" else ""
                target = f"{table} (run_id, tenant_id, {', '.join(cols)}{', synced_at' if extra else ''})"
                con.register("_bulk", frame.to_arrow())
                con.execute(f"INSERT INTO {target} SELECT run_id, tenant_id, {', '.join(cols)}{extra} FROM _bulk")
                con.unregister("_bulk")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--settings", type=int, default=20_000, help="settings per tenant")
    parser.add_argument("--db", type=Path, default=ROOT / "bench" / "out" / "app.duckdb")
    parser.add_argument("--reuse", action="store_true", help="keep an existing database of the right size")
    args = parser.parse_args()

    expected = args.tenants * args.settings
    print(f"TenantPilot app benchmark: {args.tenants} tenants x {args.settings:,} settings = {expected:,} rows")
    print(f"database {args.db}\n")
    store = Store(args.db)
    if not (args.reuse and args.db.exists() and store.current_settings().height == expected):
        for suffix in ("", ".wal"):
            Path(f"{args.db}{suffix}").unlink(missing_ok=True)
        store = Store(args.db)
        with timed("write snapshots (Store.write_snapshot per tenant)", lambda: expected):
            fill(store, args.tenants, args.settings)
    print(f"{'file size':<52} {args.db.stat().st_size / 2**20:>8.0f} MB\n")

    with timed("load current snapshot (Store.current_settings)") as t:
        frame = store.current_settings()
        t["rows"] = frame.height
    print(f"{'  in memory (estimated_size)':<52} {frame.estimated_size() / 2**20:>8.0f} MB")
    with timed("snapshot_token (every rerun: cache key)"):
        store.snapshot_token()

    tenants = sorted(frame["tenant_id"].unique().to_list())
    print()
    with timed("facet_values (every Explore rerun)"):
        explore.facet_values(frame)
    with timed("filter: search 'setting 1234' over 1M rows") as t:
        t["rows"] = explore.filter_settings(frame, search="setting 1234").height
    with timed("filter: 3 tenants + search 'value_t'") as t:
        t["rows"] = explore.filter_settings(frame, tenants=tenants[:3], search="value_t").height
    with timed("filter: policy type + platform, no search") as t:
        t["rows"] = explore.filter_settings(frame, policy_types=["compliance"], platforms=["iOS"]).height
    with timed("filter: search with no match") as t:
        t["rows"] = explore.filter_settings(frame, search="no such text anywhere").height
    with timed("export_columns + CSV bytes of 100,000 rows") as t:
        from tenantpilot import export

        part = frame.head(100_000)
        t["rows"] = part.height
        export.to_csv_bytes(explore.export_columns(part))

    print()
    for n in (3, len(tenants)):
        with timed(f"compare_matrix of {n} tenants") as t:
            t["rows"] = compare.compare_matrix(frame, tenants[:n]).height
    with timed(f"compare_matrix of {len(tenants)} with baseline") as t:
        t["rows"] = compare.compare_matrix(frame, tenants[1:], baseline=tenants[0]).height
    with timed(f"alignment_scores of {len(tenants) - 1} tenants vs baseline") as t:
        t["rows"] = compare.alignment_scores(frame, tenants[1:], tenants[0]).height
    with timed("conflicts (all tenants)") as t:
        t["rows"] = compare.conflicts(frame).height
    del frame  # from here on the only copy is the app's cached one

    print()
    bench_apptest(args.db, tenants)
    print(f"\npeak RSS so far {peak_rss_mb():,.0f} MB (everything above; the next step copies the frame)\n")
    # last, because it doubles memory: what st.cache_data would cost on every cache hit
    frame = store.current_settings()
    with timed("st.cache_data-style copy: pickle + unpickle (not used)") as t:
        blob = pickle.dumps(frame)
        start = time.perf_counter()
        pickle.loads(blob)
        t["rows"] = frame.height
    print(f"{'  of which unpickle alone (= every cache_data hit)':<52} {time.perf_counter() - start:>8.3f} s   "
          f"({len(blob) / 2**20:,.0f} MB)")
    return 0


def bench_apptest(db: Path, tenants: list[str]) -> None:
    """Full reruns of the real pages (AppTest runs the script in this process)."""
    os.environ["TENANTPILOT_DB"] = str(db)
    os.environ["TENANTPILOT_DATA_DIR"] = str(db.parent)
    for var in ("AZURE_AD_CLIENT_ID", "AZURE_AD_CLIENT_SECRET"):
        os.environ.pop(var, None)
    from streamlit.testing.v1 import AppTest

    from tenantpilot.config import settings

    settings.cache_clear()
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=600)
    at.run()
    with timed("AppTest: open Explore (cold: loads the snapshot)"):
        at.switch_page("app_pages/explore.py").run()
    with timed("AppTest: Explore rerun, unchanged (cache hit)"):
        at.run()
    with timed("AppTest: Explore after a search change"):
        at.text_input(key="ex_search").input("setting 1234").run()
    with timed("AppTest: Explore after a tenant filter change"):
        at.multiselect(key="ex_tenants").set_value(tenants[:3]).run()
    with timed("AppTest: Explore, next page"):
        at.text_input(key="ex_search").input("").run()
        at.get("pagination")[0].set_value(2).run()
    assert not at.exception, at.exception
    with timed("AppTest: open Compare (nothing chosen)"):
        at.switch_page("app_pages/compare.py").run()
    with timed("AppTest: Compare 3 tenants + baseline"):
        at.multiselect(key="cmp_tenants").set_value(tenants[1:4])
        at.selectbox(key="cmp_baseline").set_value(tenants[0]).run()
    with timed(f"AppTest: Compare all {len(tenants)} tenants + baseline"):
        at.multiselect(key="cmp_tenants").set_value(tenants[1:]).run()
    with timed("AppTest: Compare, 'only differences' off (cached)"):
        at.toggle(key="cmp_only_diff").set_value(False).run()
    with timed("AppTest: Compare, search change"):
        at.text_input(key="cmp_search").input("area 7").run()
    assert not at.exception, at.exception


if __name__ == "__main__":
    raise SystemExit(main())
