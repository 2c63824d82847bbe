"""History reads: what changed between runs, read from the row ranges (the base and current run of each
tenant, the setting rows a diff needs, the policies as of runs, change counts per day). The rules of
what a change is live in analysis/history.py; this module only reads the rows it needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import polars as pl

from tenantpilot.flatten.schema import NO_SETTINGS, SETTING_SCHEMA
from tenantpilot.store.connection import Connection, _now
from tenantpilot.store.schema import TEXT_COLUMNS, _all_versions, _rows_sql


class History(Connection):
    """Reads over the row ranges of past runs."""

    # -- history: what changed since a point in time, read from the row ranges ----------------------
    def history_bases(self, *, since: datetime | None = None, since_run: int | None = None,
                      tenant_ids: Sequence[str] | None = None) -> pl.DataFrame:
        """Per tenant with data: the run its changes are counted from (`base_run`: its last done run at or
        before `since`, or `since_run`; a tenant first synced later starts from its first run, and
        `first_sync` says so) and its current run (`cur_run`), with when each finished."""
        args: list[Any] = []
        where = "TRUE"
        if tenant_ids is not None:
            where = f"c.tenant_id IN ({','.join('?' * len(tenant_ids)) or 'NULL'})"
            args.extend(tenant_ids)
        if since_run is not None:
            base = "(SELECT run_id FROM sync_runs WHERE run_id = ? AND tenant_id = c.tenant_id)"
            args = [since_run, *args]
        else:
            base = ("(SELECT max(run_id) FROM sync_runs d WHERE d.tenant_id = c.tenant_id "
                    "AND d.status IN ('succeeded', 'partial') AND d.finished_at <= ?)")
            args = [since or _now(), *args]
        sql = f"""WITH b AS (
                    SELECT c.tenant_id, c.run_id AS cur_run, {base} AS at_since,
                           (SELECT min(run_id) FROM sync_runs d WHERE d.tenant_id = c.tenant_id
                            AND d.status IN ('succeeded', 'partial')) AS first_run
                    FROM current_runs c WHERE {where})
                  SELECT b.tenant_id, t.display_name AS tenant, coalesce(b.at_since, b.first_run) AS base_run,
                         b.at_since IS NULL AS first_sync, rb.finished_at AS base_at, b.cur_run, rc.finished_at AS cur_at
                  FROM b JOIN tenants t USING (tenant_id)
                  JOIN sync_runs rb ON rb.run_id = coalesce(b.at_since, b.first_run)
                  JOIN sync_runs rc ON rc.run_id = b.cur_run
                  WHERE t.kind <> 'baseline' ORDER BY t.display_name, b.tenant_id"""
        with self.connect() as con:
            return con.sql(sql, params=args).pl()

    def changed_rows(self, bases: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The setting rows a diff between each tenant's base run and current run needs, and no more: for
        every setting key a version opened or closed after the base run, that key's rows as of the base
        run and as of the current run (each with `seen_run`: the run where its version began or ended)."""
        frame = bases.select("tenant_id", "base_run", "cur_run")
        # (the constant bounds first let the scans skip old row groups by their min/max)
        lowest = str(frame["base_run"].cast(pl.Int64).fill_null(0).min() or 0) if frame.height else "0"
        touched = f"""SELECT DISTINCT v.tenant_id, v.setting_key FROM {_all_versions("settings", lowest)} v
                     JOIN _bases b USING (tenant_id)
                     WHERE (v.valid_from_run > {lowest} OR v.valid_to_run > {lowest})
                       AND ((v.valid_from_run > b.base_run AND v.valid_from_run <= b.cur_run)
                            OR (v.valid_to_run > b.base_run AND v.valid_to_run <= b.cur_run))"""
        texts = {c: f"x.{c}" for c in TEXT_COLUMNS}
        cols = ", ".join(texts.get(c, f"v.{c}") for c in SETTING_SCHEMA)
        # one query (a temp table per step cost more in writes than the steps themselves):
        # tv: every version of the touched keys, the few rows a diff needs, read once;
        # first: when a sync first saw the change: for the base run's row, the run it ended in; for the
        # current row, the first run after the base that had its value (a rename re-versions a row, not
        # its value)
        sql = f"""WITH touched AS ({touched}),
            tv AS MATERIALIZED (SELECT v.* FROM {_all_versions("settings", lowest)} v
                                SEMI JOIN touched k ON k.tenant_id = v.tenant_id AND k.setting_key = v.setting_key
                                WHERE v.valid_to_run IS NULL OR v.valid_to_run > {lowest}),
            first AS (SELECT v.tenant_id, v.policy_id, v.setting_key, v.compare_value, v.configured,
                             min(v.valid_from_run) AS first_run
                      FROM tv v JOIN _bases b USING (tenant_id) WHERE v.valid_from_run > b.base_run GROUP BY ALL)
            SELECT b.base_run AS run_id, v.tenant_id, {cols}, v.valid_to_run AS seen_run, TRUE AS is_base
            FROM tv v JOIN _bases b ON b.tenant_id = v.tenant_id JOIN setting_texts x ON x.text_id = v.text_id
            WHERE v.valid_from_run <= b.base_run AND (v.valid_to_run IS NULL OR v.valid_to_run > b.base_run)
            UNION ALL
            SELECT b.cur_run AS run_id, v.tenant_id, {cols}, f.first_run AS seen_run, FALSE AS is_base
            FROM tv v JOIN _bases b ON b.tenant_id = v.tenant_id JOIN setting_texts x ON x.text_id = v.text_id
            LEFT JOIN first f ON f.tenant_id = v.tenant_id AND f.policy_id = v.policy_id
              AND f.setting_key = v.setting_key AND f.compare_value IS NOT DISTINCT FROM v.compare_value
              AND f.configured IS NOT DISTINCT FROM v.configured
            WHERE v.valid_from_run <= b.cur_run AND (v.valid_to_run IS NULL OR v.valid_to_run > b.cur_run)"""
        with self.connect() as con:
            con.register("_bases", frame.to_arrow())
            rows = con.sql(sql).pl()
            con.unregister("_bases")
        out = [rows.filter(pl.col("is_base") == side).drop("is_base") for side in (True, False)]
        return out[0], out[1]

    def policies_at(self, bases: pl.DataFrame) -> pl.DataFrame:
        """Each tenant's policies as of its base run and its current run (`side`: base | cur; `run_id`)."""
        frame = bases.select("tenant_id", "base_run", "cur_run")
        with self.connect() as con:
            con.register("_bases", frame.to_arrow())
            result = con.sql(
                f"""SELECT CASE WHEN p.run_id = b.base_run THEN 'base' ELSE 'cur' END AS side, p.run_id, p.tenant_id,
                           p.policy_id, p.policy_type, p.policy_name
                    FROM ({_rows_sql('policies', 'SELECT base_run AS run_id FROM _bases UNION '
                                                 'SELECT cur_run FROM _bases')}) p
                    JOIN _bases b ON b.tenant_id = p.tenant_id""").pl()
            con.unregister("_bases")
        return result

    def policy_versions(self, tenant_id: str, policy_id: str, *, limit: int = 20) -> pl.DataFrame:
        """The stored versions of one policy, newest first: `valid_from_run` (the run it was first seen as
        this), `finished_at` of that run, and its `raw_json` (secrets masked). A version is a change of
        the policy's raw JSON, so two versions always differ."""
        with self.connect() as con:
            return con.sql(
                f"""SELECT v.valid_from_run, r.finished_at, v.raw_json
                    FROM policy_versions v JOIN sync_runs r ON r.run_id = v.valid_from_run
                    WHERE v.tenant_id = ? AND v.policy_id = ?
                    ORDER BY v.valid_from_run DESC LIMIT {int(limit)}""", params=[tenant_id, policy_id]).pl()

    def policy_setting_counts(self, pairs: pl.DataFrame) -> pl.DataFrame:
        """Configured settings of each (run_id, policy_id) in `pairs` as of that run (`settings`)."""
        if not pairs.height:
            return pairs.with_columns(pl.lit(0, pl.UInt32).alias("settings"))
        with self.connect() as con:
            con.register("_pp", pairs.select("run_id", "policy_id").unique().to_arrow())
            result = con.sql(
                f"""SELECT p.run_id, p.policy_id, count(s.setting_key) FILTER (WHERE coalesce(s.configured, true)
                           AND s.setting_key <> ?)::UINTEGER AS settings
                    FROM _pp p LEFT JOIN ({_rows_sql('settings', 'SELECT DISTINCT run_id FROM _pp')}) s
                      ON s.run_id = p.run_id AND s.policy_id = p.policy_id
                    GROUP BY p.run_id, p.policy_id""", params=[NO_SETTINGS]).pl()
            con.unregister("_pp")
        return result

    def change_counts(self, since: datetime) -> pl.DataFrame:
        """Per tenant and day (of the run's finish, UTC) since `since`: the changes its runs found, as the
        Changes page counts them: policies added, deleted or renamed (`policy_events`), and settings whose
        configured value changed, appeared or went inside policies that stayed (`setting_changes`). A rename
        or a new raw JSON re-versions rows without changing a value: not counted. A tenant's first run is
        its first load, not a change."""
        value = "CASE WHEN coalesce({a}.configured, true) THEN coalesce({a}.compare_value, {a}.value, '') END"
        sql = f"""WITH runs AS (
                   SELECT r.run_id, r.tenant_id, CAST(r.finished_at AS DATE) AS day FROM sync_runs r
                   WHERE r.status IN ('succeeded', 'partial') AND r.finished_at >= ?
                     AND r.run_id > (SELECT min(run_id) FROM sync_runs f WHERE f.tenant_id = r.tenant_id
                                     AND f.status IN ('succeeded', 'partial', 'pruned'))),
                 pol AS (
                   SELECT coalesce(o.tenant_id, n.tenant_id) AS tenant_id, coalesce(o.run_id, n.run_id) AS run_id,
                          coalesce(o.policy_id, n.policy_id) AS policy_id,
                          CASE WHEN o.policy_id IS NULL THEN 'added' WHEN n.policy_id IS NULL THEN 'deleted'
                               WHEN o.policy_name IS DISTINCT FROM n.policy_name THEN 'renamed' END AS event
                   FROM (SELECT v.tenant_id, v.valid_to_run AS run_id, v.policy_id, v.policy_name
                         FROM policy_versions v SEMI JOIN runs r ON r.run_id = v.valid_to_run) o
                   FULL JOIN (SELECT v.tenant_id, v.valid_from_run AS run_id, v.policy_id, v.policy_name
                              FROM policy_versions v SEMI JOIN runs r ON r.run_id = v.valid_from_run) n
                     ON n.tenant_id = o.tenant_id AND n.run_id = o.run_id AND n.policy_id = o.policy_id),
                 sets AS (
                   SELECT coalesce(o.tenant_id, n.tenant_id) AS tenant_id, coalesce(o.run_id, n.run_id) AS run_id,
                          coalesce(o.policy_id, n.policy_id) AS policy_id, o.v AS old_v, n.v AS new_v
                   FROM (SELECT v.tenant_id, v.valid_to_run AS run_id, v.policy_id, v.setting_key,
                                {value.format(a='v')} AS v
                         FROM {_all_versions("settings", "(SELECT min(run_id) - 1 FROM runs)")} v
                         SEMI JOIN runs r ON r.run_id = v.valid_to_run) o
                   FULL JOIN (SELECT v.tenant_id, v.valid_from_run AS run_id, v.policy_id, v.setting_key,
                                     {value.format(a='v')} AS v
                              FROM {_all_versions("settings", "(SELECT min(run_id) FROM runs)")} v
                              SEMI JOIN runs r ON r.run_id = v.valid_from_run) n
                     ON n.tenant_id = o.tenant_id AND n.run_id = o.run_id AND n.policy_id = o.policy_id
                        AND n.setting_key = o.setting_key),
                 per_run AS (
                   SELECT r.run_id, r.tenant_id, r.day,
                          (SELECT count(*) FROM pol p WHERE p.run_id = r.run_id AND p.event IS NOT NULL) AS policy_events,
                          (SELECT count(*) FROM sets x WHERE x.run_id = r.run_id AND x.old_v IS DISTINCT FROM x.new_v
                             AND NOT EXISTS (SELECT 1 FROM pol p WHERE p.run_id = x.run_id AND p.policy_id = x.policy_id
                                             AND p.event IN ('added', 'deleted'))) AS setting_changes
                   FROM runs r)
                 SELECT p.tenant_id, t.display_name AS tenant, p.day, sum(p.policy_events)::BIGINT AS policy_events,
                        sum(p.setting_changes)::BIGINT AS setting_changes,
                        (sum(p.policy_events) + sum(p.setting_changes))::BIGINT AS changes, count(*) AS runs
                 FROM per_run p JOIN tenants t USING (tenant_id)
                 GROUP BY ALL ORDER BY t.display_name, p.day"""
        with self.connect() as con:
            return con.sql(sql, params=[since]).pl()
