"""App-side benchmark: 50 tenants x 20,000 settings (1,000,000 rows) in a real DuckDB file.

    python bench/bench_app.py [--tenants 1000] [--settings 20000] [--out bench/out] [--reuse]

Builds a 50-tenant database and a --tenants one (default 1,000 x 20,000 = 20 M rows) with bulk
writes, then measures on each, in a process of its own: the store reads the pages make, Compare
of 10 tenants with a baseline, full AppTest reruns of Explore, Compare and Fleet (every tenant's alignment:
the first open of this bulk-written file computes them all, a rerun or a new session reads the alignment memo
the worker keeps after each sync), and peak RSS; and prints both sizes side by side. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import polars as pl

ROOT = Path(__file__).resolve().parent.parent

from tenantpilot.analysis import compare, explore  # noqa: E402
from tenantpilot.flatten.schema import ASSIGNMENT_SCHEMA, SETTING_SCHEMA  # noqa: E402
from tenantpilot.store import Store  # noqa: E402
from tenantpilot.sync.snapshot import POLICY_SCHEMA  # noqa: E402

FAMILIES = ("settingsCatalog", "settingsCatalog", "settingsCatalog", "deviceConfiguration", "compliance",
            "endpointSecurityIntent", "adminTemplate", "appProtection")
PLATFORMS = ("windows10", "macOS", "iOS", "android")
SETTINGS_PER_POLICY = 100


def peak_rss_mb() -> float:
    """This process's peak RSS. /proc's VmHWM belongs to the process image, so a measuring child does
    not report its parent's peak (getrusage's ru_maxrss is kept across fork and exec on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
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
        pl.lit(True).alias("configured"),
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
        pl.lit(True).alias("configured"),
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
                con.register("_bulk", frame.to_arrow())
                store.load_first_snapshots(con, table, "_bulk")
                con.unregister("_bulk")


def build(db: Path, n_tenants: int, n_settings: int, reuse: bool) -> Store:
    store = Store(db)
    expected = n_tenants * n_settings
    have = None
    if reuse and db.exists():
        with store.connect() as con:
            have = con.execute("SELECT count(*) FROM current_setting_rows").fetchone()
    if not (have and have[0] == expected):
        for suffix in ("", ".wal"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        store = Store(db)
        with timed(f"build {n_tenants} x {n_settings:,} (bulk writes)", lambda: expected):
            fill(store, n_tenants, n_settings)
    tenants = [t for t, _ in store.snapshot_token()]
    with store.connect(write=True) as con:  # the first tenant is the baseline Compare reads
        con.execute("UPDATE tenants SET kind = 'baseline' WHERE tenant_id = ?", [tenants[0]])
    print(f"{'file size':<52} {db.stat().st_size / 2**20:>8.0f} MB")
    return store


def measure(db: Path, store: Store) -> dict[str, float]:
    """The page reruns and reads, timed on one database; returns label -> seconds."""
    out: dict[str, float] = {}

    def clock(label: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        result = fn()
        out[label] = time.perf_counter() - start
        print(f"  {label:<50} {out[label]:>8.3f} s   rss {rss_mb():>7,.0f} MB", flush=True)
        return result

    tenants = [t for t, _ in store.snapshot_token()]
    baseline, others = tenants[0], tenants[1:]
    clock("store: count of every current row", lambda: store.settings_count(explore.Filters()))
    clock("store: search 'setting 1234', first page", lambda: store.settings_page(
        explore.Filters(search="setting 1234"), offset=0, limit=1000))
    from tenantpilot.app import compare_view  # Compare's columns (not at the top: bench_history imports this)

    compared = [baseline, *others[:10]]
    frame = clock("store: the rows Compare reads, 10 tenants + baseline",
                  lambda: store.current_columns_of(compared, compare_view.compare_columns()))
    clock("compare.comparison of 10 tenants + baseline",
          lambda f=frame: compare.comparison(f, compared, baseline))
    del frame
    bench_apptest(db, baseline, others, clock)
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=1000, help="the large database (the 50-tenant one is always built)")
    parser.add_argument("--settings", type=int, default=20_000, help="settings per tenant")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--reuse", action="store_true", help="keep existing databases of the right size")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[int, dict[str, float]] = {}
    for n in dict.fromkeys((50, args.tenants)):
        db = args.out / f"app-{n}.duckdb"
        print(f"\n== {n} tenants x {args.settings:,} settings = {n * args.settings:,} rows ({db})")
        build(db, n, args.settings, args.reuse)
        # each size in a process of its own, so peak RSS is that size's own
        results[n] = measure_in_child(db)
    sizes = list(results)
    print("\n" + f"{'':<52}" + "".join(f"{f'{n} tenants':>16}" for n in sizes))
    for label in results[sizes[0]]:
        unit = " MB" if label == "peak_rss_mb" else " s"
        cells = "".join(f"{results[n].get(label, float('nan')):>14.{0 if unit == ' MB' else 3}f}{unit}" for n in sizes)
        print(f"{label:<52}{cells}")
    return 0


def measure_in_child(db: Path) -> dict[str, float]:
    import json
    import subprocess
    import sys

    code = ("import json, sys; sys.argv = ['bench_app']; import importlib.util as u; "
            f"s = u.spec_from_file_location('bench_app', {str(Path(__file__))!r}); m = u.module_from_spec(s); "
            "s.loader.exec_module(m); from tenantpilot.store import Store; from pathlib import Path; "
            f"r = m.measure(Path({str(db)!r}), Store(Path({str(db)!r}))); print('RESULT ' + json.dumps(r))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    print(done.stdout.split("RESULT ")[0], end="")
    if done.returncode != 0:
        print(done.stderr[-3000:])
        raise SystemExit(1)
    return json.loads(done.stdout.split("RESULT ", 1)[1])


def bench_apptest(db: Path, baseline: str, others: list[str], clock: Callable[[str, Callable[[], Any]], Any]) -> None:
    """Full reruns of the real pages (AppTest runs the script in this process)."""
    os.environ["TENANTPILOT_DB"] = str(db)
    os.environ["TENANTPILOT_DATA_DIR"] = str(db.parent)
    for var in ("AZURE_AD_CLIENT_ID", "AZURE_AD_CLIENT_SECRET", "REDIS_URL"):
        os.environ.pop(var, None)
    from streamlit.testing.v1 import AppTest

    from tenantpilot.config import settings

    settings.cache_clear()
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=600)
    at.run()
    clock("AppTest: open Explore (cold)", lambda: at.switch_page("app_pages/explore.py").run())
    clock("AppTest: Explore rerun, unchanged", lambda: at.run())
    clock("AppTest: Explore after a search change", lambda: at.text_input(key="ex_search").input("setting 1234").run())
    clock("AppTest: Explore after a tenant filter change",
          lambda: at.multiselect(key="ex_tenants").set_value(others[:3]).run())
    at.text_input(key="ex_search").input("").run()
    clock("AppTest: Explore, next page", lambda: at.get("pagination")[0].set_value(2).run())
    assert not at.exception, at.exception
    clock("AppTest: open Compare (nothing chosen)", lambda: at.switch_page("app_pages/compare.py").run())

    def compare_ten() -> None:
        at.multiselect(key="cmp_tenants").set_value(others[:10])
        at.selectbox(key="cmp_baseline").set_value(baseline).run()

    clock("AppTest: Compare 10 tenants + baseline", compare_ten)
    clock("AppTest: Compare, 'only differences' off", lambda: at.toggle(key="cmp_only_diff").set_value(False).run())
    clock("AppTest: Compare, search change", lambda: at.text_input(key="cmp_search").input("area 7").run())
    assert not at.exception, at.exception
    # Fleet: every tenant against the baseline by the compare rule. The worker keeps each tenant's alignment after
    # its sync (ops/alignments); this database was written in bulk, so the first open computes them all
    from tenantpilot.store import Store

    with Store(db).connect(write=True) as con:
        con.execute("DELETE FROM alignment_memo")  # cold, also with --reuse
    clock("AppTest: open Fleet (first: every alignment computed)",
          lambda: at.switch_page("app_pages/fleet.py").run())
    assert not at.exception, at.exception
    clock("AppTest: Fleet rerun", lambda: at.run())
    fresh = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=600)
    fresh.run()
    clock("AppTest: Fleet in a new session (alignments kept)", lambda: fresh.switch_page("app_pages/fleet.py").run())
    assert not fresh.exception, fresh.exception


if __name__ == "__main__":
    raise SystemExit(main())
