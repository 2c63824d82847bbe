"""History benchmark: a year of daily syncs in a real DuckDB file, against one snapshot.

    python bench/bench_history.py [--tenants 50] [--settings 20000] [--days 365] [--change 0.01] [--out bench/out]

Issue 11's target: 365 daily syncs of 50 tenants x 20,000 settings, 1 % of the settings changing a
day, in at most 3x the file of one snapshot; the current view as fast as with one snapshot;
`changes --since` across all tenants under 1 s. Builds two files with the same tenants:
* `one.duckdb`: one snapshot (each tenant's first sync);
* `year.duckdb`: the same first sync, then `--days` daily runs. Every setting changes on about
  `--change` x days days of the year (hash-chosen days; values differ per version): its versions are
  the ranges write_snapshot would have written. Bulk SQL builds them (a year of write_snapshot calls
  would take hours); then `--real-syncs` real write_snapshot calls (one tenant's next days, 1 % changed)
  time the write path on top of the year.
Prints file sizes, the current-view reads on both files, changes --since and the day counts.
Figures, not assertions.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import polars as pl
from bench_app import base_settings, batch_frames, peak_rss_mb, rss_mb, timed

from tenantpilot.analysis import history
from tenantpilot.store import VERSION_COLUMNS, Filters, Store, load_closed_settings

START = datetime(2025, 12, 1, 2, 0, tzinfo=timezone.utc)


def build(db: Path, n_tenants: int, n_settings: int, days: int, change: float) -> Store:
    for suffix in ("", ".wal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    store = Store(db)
    base = base_settings(n_settings)
    tenants = [f"tenant{t:03d}.onmicrosoft.com" for t in range(n_tenants)]
    with store.connect(write=True) as con:
        con.execute("SET preserve_insertion_order = false")
        con.execute("BEGIN")
        # runs: day d of tenant t is run d * n_tenants + t + 1 (per tenant in order, as the sequence gives)
        con.register("_t", pl.DataFrame({"t": range(n_tenants), "tenant_id": tenants}).to_arrow())
        con.execute("INSERT INTO tenants SELECT tenant_id, 'Tenant ' || lpad(t::VARCHAR, 3, '0'), 'tenant', ? FROM _t",
                    [START])
        con.execute(f"""INSERT INTO sync_runs (run_id, tenant_id, status, queued_at, started_at, finished_at,
                        policy_count, setting_count, request_count, source, trigger)
                        SELECT d * {n_tenants} + t + 1, tenant_id, 'succeeded', ? + to_days(d::INT),
                               ? + to_days(d::INT), ? + to_days(d::INT) + to_seconds(60 + t), {n_settings // 100},
                               {n_settings}, 40, 'graph', 'schedule'
                        FROM _t, range(0, {days + 1}) r(d)""", [START, START, START])
        con.execute(f"SELECT setval('run_seq', {(days + 1) * n_tenants + 1})").fetchall()
        first = [t + 1 for t in range(n_tenants)]
        policies, settings = batch_frames(base, 0, n_tenants, first, tenants)
        for kind, frame in (("policies", policies), ("settings", settings)):
            con.register("_bulk", frame.to_arrow())
            store.load_first_snapshots(con, kind, "_bulk")
            con.unregister("_bulk")
        if days:
            # each setting changes on k of the year's days (k drawn by hash, mean change x days)
            per_year = change * days
            con.execute(f"""CREATE TEMP TABLE _chg AS
                SELECT DISTINCT v.tenant_id, v.policy_id, v.setting_key,
                       1 + hash(v.tenant_id, v.setting_key, k) % {days} AS day
                FROM setting_current v, range(0, {max(1, int(per_year * 3))}) r(k)
                WHERE hash(v.setting_key, v.tenant_id, k, 'p') % 1000000 < {int(1_000_000 * per_year
                                                                                / max(1, int(per_year * 3)))}""")
            con.execute("""CREATE TEMP TABLE _seq AS
                SELECT c.*, lead(day) OVER (PARTITION BY tenant_id, policy_id, setting_key ORDER BY day) AS next_day,
                       row_number() OVER (PARTITION BY tenant_id, policy_id, setting_key ORDER BY day) AS n
                FROM _chg c""")
            con.execute("CREATE TEMP TABLE _tn AS SELECT tenant_id, t FROM _t")
            # every version in the version shape: the first one ends on the first change day; each change
            # is a version until the next. Open ones stay current, closed ones go to the history as a
            # year of syncs would have closed them (store.load_closed_settings)
            cols = ", ".join(VERSION_COLUMNS)
            con.execute(f"""CREATE TEMP TABLE _all AS
                SELECT v.* REPLACE (s.day * {n_tenants} + tn.t + 1 AS valid_to_run)
                FROM setting_current v JOIN _seq s ON s.n = 1 AND v.tenant_id = s.tenant_id
                  AND v.policy_id = s.policy_id AND v.setting_key = s.setting_key JOIN _tn tn ON tn.tenant_id = v.tenant_id
                UNION ALL
                SELECT n.tenant_id, {cols}, n.text_id, n.type_key, n.f, n.t
                FROM (SELECT v.tenant_id, v.policy_id, v.policy_name, v.policy_type, v.odata_type, v.platform,
                             v.setting_key, 'value_d' || s.day AS value, '"value_d' || s.day || '"' AS raw_value,
                             'value_d' || s.day AS compare_value, v.configured, v.text_id, v.type_key,
                             s.day * {n_tenants} + tn.t + 1 AS f,
                             CASE WHEN s.next_day IS NOT NULL THEN s.next_day * {n_tenants} + tn.t + 1 END AS t
                      FROM _seq s JOIN _tn tn USING (tenant_id)
                      JOIN setting_current v ON v.tenant_id = s.tenant_id AND v.policy_id = s.policy_id
                       AND v.setting_key = s.setting_key) n""")
            # a setting's last version takes its first one's place (as write_snapshot does)
            con.execute("""UPDATE setting_current v SET value = a.value, raw_value = a.raw_value,
                                  compare_value = a.compare_value, valid_from_run = a.valid_from_run
                           FROM _all a WHERE a.valid_to_run IS NULL AND a.tenant_id = v.tenant_id
                             AND a.policy_id = v.policy_id AND a.setting_key = v.setting_key""")
            load_closed_settings(con, "(SELECT * FROM _all WHERE valid_to_run IS NOT NULL)")
        con.execute("COMMIT")
        con.execute("CHECKPOINT")
    return store


def clock(label: str, fn: Callable[[], Any], out: dict[str, float]) -> Any:
    start = time.perf_counter()
    result = fn()
    out[label] = time.perf_counter() - start
    return result


def reads(store: Store) -> dict[str, float]:
    out: dict[str, float] = {}
    tenants = [t for t, _ in store.snapshot_token()]
    everything = Filters()
    search = Filters(search="Setting 1234 of")
    counts = clock("current: counts per tenant (no filter)", lambda: store.settings_tenant_counts(everything), out)
    clock("current: first page (100 rows)", lambda: store.settings_page(everything, offset=0, limit=100,
                                                                       counts=counts), out)
    clock("current: search 'Setting 1234 of' counts", lambda: store.settings_tenant_counts(search), out)
    clock("current: rows of 10 tenants (Compare's input)", lambda: store.current_settings(tenants[:10]), out)
    clock("current: every row (1 M at 50 x 20 k)", lambda: store.current_settings().height, out)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tenants", type=int, default=50)
    p.add_argument("--settings", type=int, default=20_000)
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--change", type=float, default=0.01, help="share of the settings changing a day")
    p.add_argument("--real-syncs", type=int, default=5, help="write_snapshot calls timed on top of the year")
    p.add_argument("--out", type=Path, default=Path("bench/out"))
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    n_rows = args.tenants * args.settings
    with timed(f"build one snapshot ({args.tenants} x {args.settings:,})", lambda: n_rows):
        one = build(args.out / "history-one.duckdb", args.tenants, args.settings, 0, args.change)
    with timed(f"build {args.days} days of history (bulk ranges)"):
        year = build(args.out / "history-year.duckdb", args.tenants, args.settings, args.days, args.change)
    with year.connect() as con:
        versions = con.execute("SELECT count(*) FROM setting_versions").fetchone()[0]
        texts = con.execute("SELECT count(*) FROM setting_texts").fetchone()[0]
    size_one, size_year = one.path.stat().st_size, year.path.stat().st_size
    print(f"\nsetting versions {versions:,} ({versions / n_rows:.2f} per setting), texts {texts:,}")
    print(f"{'file: one snapshot':<52} {size_one / 2**20:>8.0f} MB")
    print(f"{'file: a year of daily syncs':<52} {size_year / 2**20:>8.0f} MB   = {size_year / size_one:.2f}x (target <= 3x)")

    print(f"\n{'read':<52} {'one snapshot':>14} {'a year':>10}")
    a, b = reads(one), reads(year)
    for label in a:
        print(f"{label:<52} {a[label]:>12.3f} s {b[label]:>8.3f} s")

    print()
    now = START + timedelta(days=args.days, hours=12)
    for since in ("7d", "30d", "365d"):
        point = history.parse_since(since, now=now)
        with timed(f"changes --since {since}, all {args.tenants} tenants") as o:
            found = history.changes_since(year, point)
            o["rows"] = sum(t.count for t in found)
    with timed("per-day change counts, 30 days, all tenants") as o:
        o["rows"] = int(year.change_counts(now - timedelta(days=30))["changes"].sum())

    # the write path on top of the year: the next days of one tenant, 1 % of its settings changed
    base = base_settings(args.settings)
    tenant = "tenant000.onmicrosoft.com"
    for day in range(args.real_syncs):
        run_id, _ = year.create_run_unless_active(tenant)
        year.start_run(run_id)
        policies, settings = batch_frames(base, 0, 1, [run_id], [tenant])
        current = year.current_settings([tenant]).select("policy_id", "setting_key", "value")
        settings = settings.drop("run_id", "tenant_id").join(current, on=["policy_id", "setting_key"], how="left",
                                                            suffix="_now")
        bump = (pl.int_range(0, pl.len()) * 7 + day) % 100 == 0
        value = pl.when(bump).then(pl.lit(f"value_new{day}")).otherwise(pl.col("value_now"))
        settings = settings.with_columns(value.alias("value"), value.alias("compare_value"),
                                         (pl.lit('"') + value + pl.lit('"')).alias("raw_value")).drop("value_now")
        with timed(f"write_snapshot of one tenant, day +{day + 1} (1 % changed)") as o:
            written = year.write_snapshot(run_id, tenant, policies=policies.drop("run_id", "tenant_id"),
                                          settings=settings, status="succeeded", request_count=40)
            o["rows"] = written["changed_settings"]
    print(f"\npeak RSS {peak_rss_mb():,.0f} MB (rss now {rss_mb():,.0f} MB)")


if __name__ == "__main__":
    main()
