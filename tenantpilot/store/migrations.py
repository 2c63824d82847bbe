"""Schema versions: versioned steps that bring an existing file up to SCHEMA_VERSION, the check that
refuses a file newer than the code, and the building of a new file (DDL, steps, views).

Each step runs once per file, in its own transaction together with the new schema_version, when
the file's meta.schema_version is lower than the step's version (a new file runs them on empty
tables). A step never needs the app: it works on what the file holds.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import polars as pl

from tenantpilot.families import SCRIPT
from tenantpilot.flatten import secrets
from tenantpilot.flatten.schema import ASSIGNMENT_SCHEMA, NO_SETTINGS, POLICY_SCHEMA
from tenantpilot.store.access import ACCESS_DDL
from tenantpilot.store.alignments import ALIGNMENT_DDL
from tenantpilot.store.connection import Connection, StoreTooNew, _one
from tenantpilot.store.schema import (
    _AFTER_MIGRATIONS,
    _IDENTITY,
    _SCHEMAS,
    _VERSIONS,
    DDL,
    TEXT_COLUMNS,
    VERSION_COLUMNS,
    _add_texts,
    _close_settings,
    _hash,
)

SCHEMA_VERSION = 15  # the last step of MIGRATIONS (below)

def _mask_stored_raw_json(con: duckdb.DuckDBPyConnection) -> None:
    """v2: raw JSON written before the one secret rule (flatten/secrets.py) kept what rows masked
    (wiFiPreSharedKey, proxyServerPassword, ...): mask it now. DuckDB picks the candidate rows with
    the rule's own text pattern; Python masks them."""
    if not _has_table(con, "policies"):
        return  # a file created with temporal rows (v6) never held unmasked raw JSON
    rows = con.execute("SELECT rowid, raw_json FROM policies WHERE regexp_matches(raw_json, ?)",
                       [secrets.SECRET_TEXT_PATTERN]).fetchall()
    changed = [(rowid, masked) for rowid, text in rows if (masked := secrets.mask_json_text(text)) != text]
    if changed:
        con.register("_masked", pl.DataFrame(changed, schema={"rid": pl.Int64, "raw_json": pl.String},
                                             orient="row").to_arrow())
        con.execute("UPDATE policies SET raw_json = _masked.raw_json FROM _masked WHERE policies.rowid = _masked.rid")
        con.unregister("_masked")


def _drop_imported_definitions(con: duckdb.DuckDBPyConnection) -> None:
    """v3: imports used to write their files' inline settingDefinitions into the shared definition
    cache that syncs read, so a file's text could name a synced tenant's settings. Which entries came
    from an import is not recorded: empty the cache; the next sync fetches Graph's definitions."""
    con.execute("DELETE FROM setting_definitions")


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return _one(con.execute("SELECT 1 FROM information_schema.tables WHERE table_name = ? "
                            "AND table_schema = 'main' AND table_type = 'BASE TABLE'", [name])) is not None


def _snapshots_to_ranges(con: duckdb.DuckDBPyConnection) -> None:
    """v6: files up to v5 kept a full copy of every row per run (`settings`, `policies`, `assignments`
    with run_id). Each row becomes one version per unbroken stretch of the tenant's kept runs that held
    it (gaps and islands over the runs in order); the copies are dropped. Rows a run carried forward
    were copies of an older run's: they become part of that row's range, and `run_types` still says
    the run carried them."""
    if not _has_table(con, "settings"):
        return
    # v6 kept every setting version in one table; step 7 splits it
    con.execute("CREATE TABLE setting_versions AS SELECT * FROM setting_current WHERE FALSE")
    # columns later versions added to the old tables, so files from any version convert the same way
    for table, column, kind in (("policies", "type_key", "VARCHAR"), ("settings", "configured", "BOOLEAN"),
                                ("assignments", "filter_name", "VARCHAR")):
        con.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")
    con.execute("""CREATE OR REPLACE TEMP TABLE _runs AS
        SELECT run_id, tenant_id, row_number() OVER (PARTITION BY tenant_id ORDER BY run_id) AS rn,
               count(*) OVER (PARTITION BY tenant_id) AS last_rn
        FROM sync_runs WHERE status IN ('succeeded', 'partial')""")
    con.execute("""CREATE OR REPLACE TEMP TABLE _ptype AS
        SELECT run_id, policy_id, any_value(type_key) AS type_key FROM policies GROUP BY run_id, policy_id""")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _old_texts AS SELECT DISTINCT {_hash(TEXT_COLUMNS, 's')} AS text_hash, "
                f"{', '.join(TEXT_COLUMNS)} FROM settings s")
    _add_texts(con, "_old_texts")
    sources = {
        "settings": f"""SELECT s.run_id, s.tenant_id, {', '.join(f's.{c}' for c in VERSION_COLUMNS)},
                               x.text_id, pt.type_key
                        FROM settings s JOIN setting_texts x ON x.text_hash = {_hash(TEXT_COLUMNS, 's')}
                        LEFT JOIN _ptype pt ON pt.run_id = s.run_id AND pt.policy_id = s.policy_id""",
        "policies": f"SELECT run_id, tenant_id, {', '.join(POLICY_SCHEMA)}, type_key FROM policies",
        "assignments": f"""SELECT a.run_id, a.tenant_id, {', '.join(f'a.{c}' for c in ASSIGNMENT_SCHEMA)}, pt.type_key
                           FROM assignments a LEFT JOIN _ptype pt ON pt.run_id = a.run_id
                           AND pt.policy_id = a.policy_id""",
    }
    for kind, source in sources.items():
        content = [*(VERSION_COLUMNS if kind == "settings" else _SCHEMAS[kind]), *(("text_id",) if kind == "settings"
                                                                                  else ())]
        key = "o.row_hash, o.policy_id" + (", o.setting_key" if kind == "settings" else "")
        con.execute(f"""INSERT INTO {'setting_versions' if kind == 'settings' else _VERSIONS[kind]}
            WITH o AS (SELECT DISTINCT q.*, {_hash(_IDENTITY[kind], 'q')} AS row_hash, r.rn
                       FROM ({source}) q JOIN _runs r USING (run_id)),
            islands AS (SELECT o.*, o.rn - row_number() OVER (PARTITION BY o.tenant_id, {key} ORDER BY o.rn) AS grp
                        FROM (SELECT DISTINCT ON (tenant_id, row_hash, policy_id{', setting_key' if kind == 'settings'
                              else ''}, rn) * FROM o) o),
            ranges AS (SELECT i.tenant_id, {', '.join(f'any_value(i.{c}) AS {c}' for c in content)},
                              any_value(i.type_key) AS type_key, i.row_hash, min(i.rn) AS first_rn, max(i.rn) AS last_rn
                       FROM islands i GROUP BY i.tenant_id, {key.replace('o.', 'i.')}, i.grp)
            SELECT g.tenant_id, {', '.join(f'g.{c}' for c in content)}, g.type_key, f.run_id, t.run_id
            FROM ranges g JOIN _runs f ON f.tenant_id = g.tenant_id AND f.rn = g.first_rn
            LEFT JOIN _runs t ON t.tenant_id = g.tenant_id AND t.rn = g.last_rn + 1""")
    for table in ("settings", "policies", "assignments", "_ptype", "_runs", "_old_texts"):
        con.execute(f"DROP TABLE {table}")


def _split_setting_versions(con: duckdb.DuckDBPyConnection) -> None:
    """v7: v6 kept open and closed setting versions in one table (`setting_versions`), so every current
    read scanned the history too, and every closed version repeated its row's names. The open rows move
    to setting_current; the closed ones become key, value and range (setting_history)."""
    if not _has_table(con, "setting_versions"):
        return
    load_closed_settings(con, "(SELECT * FROM setting_versions WHERE valid_to_run IS NOT NULL)")
    # the open rows stay where they are (setting_current has the v6 table's columns): copying 20 M rows
    # took 10 s and doubled the file, whose freed blocks DuckDB never gives back
    con.execute("DELETE FROM setting_versions WHERE valid_to_run IS NOT NULL")
    con.execute("DROP TABLE setting_current")
    con.execute("ALTER TABLE setting_versions RENAME TO setting_current")


def load_closed_settings(con: duckdb.DuckDBPyConnection, relation: str) -> None:
    """Closed setting versions in bulk (migrations, benchmarks): `relation` in the version shape
    (setting_current's columns, valid_to_run set), ordered as syncs would have closed them."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE _closed AS SELECT * FROM {relation} ORDER BY valid_to_run")
    _close_settings(con, "_closed")
    con.execute("DROP TABLE _closed")


def _drop_alignments(con: duckdb.DuckDBPyConnection) -> None:
    """v8: the all-tenants alignment aggregates (`alignments`) had no reader; the Compare page's rule
    (analysis/compare.py) is the one rule, so the table and its refresh after each sync are gone."""
    con.execute("DROP TABLE IF EXISTS alignments")


def _access_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Version 9: tenant groups, access limits and the activity log (store/access.py); a new file gets
    them from the same DDL."""
    con.execute(ACCESS_DDL)


def _name_keyed_scripts(con: duckdb.DuckDBPyConnection) -> None:
    """Version 10: PowerShell and shell scripts (family `script`) are matched by name like remediations
    (families.py, scope "name"): their stored setting keys, open and closed, get the `[<policy name>]/`
    prefix the flattener now writes, so the next sync changes nothing and the history stays one line.
    (A deviation registered on a bare script key names no script and is left as it was.)"""
    for table in ("setting_current", "setting_keys"):
        con.execute(f"""UPDATE {table} SET setting_key = '[' || policy_name || ']/' || setting_key
                        WHERE policy_type = ? AND NOT starts_with(setting_key, '[') AND setting_key <> ?""",
                    [SCRIPT, NO_SETTINGS])


def _alert_channel_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Version 11: the alert channel names of tenant groups and tenants (store/access.py; their endpoints stay in
    the environment, ops/channels.py); a new file gets them from the same DDL."""
    con.execute(ACCESS_DDL)


def _deviations_accepted_by(con: duckdb.DuckDBPyConnection) -> None:
    """Version 12: who accepted a deviation (the signed-in user, or cli:<os user>) is a column of the register;
    it was only the activity log's text ("deviation <id>: ..."), where it is read back from for the deviations
    accepted since version 9. Older ones stay NULL: nobody was recorded then."""
    con.execute("ALTER TABLE deviations ADD COLUMN IF NOT EXISTS accepted_by VARCHAR")
    con.execute(r"""UPDATE deviations d SET accepted_by = a.actor
                    FROM (SELECT CAST(regexp_extract(detail, '^deviation (\d+):', 1) AS BIGINT) AS deviation_id,
                                 arg_min(actor, activity_id) AS actor
                          FROM activity WHERE action = 'deviation accepted'
                            AND regexp_matches(detail, '^deviation \d+:')
                          GROUP BY 1) a
                    WHERE d.deviation_id = a.deviation_id AND d.accepted_by IS NULL""")


def _alignment_memo(con: duckdb.DuckDBPyConnection) -> None:
    """Version 13: the alignment memo Fleet reads (store/alignments.py: compare.alignment_scores' counts per
    tenant and baseline with the runs they came from); a new file gets it from the same DDL."""
    con.execute(ALIGNMENT_DDL)


def _runs_sent_at(con: duckdb.DuckDBPyConnection) -> None:
    """Version 14: sync_runs.sent_at (the DDL adds the column): runs queued before it existed had their
    message sent when they were queued."""
    con.execute("ALTER TABLE sync_runs ADD COLUMN IF NOT EXISTS sent_at TIMESTAMPTZ")
    con.execute("UPDATE sync_runs SET sent_at = queued_at WHERE sent_at IS NULL")


def _runs_reused(con: duckdb.DuckDBPyConnection) -> None:
    """Version 15: sync_runs.reused_policies, reused_since and full_read_at (the reuse rule, sync/reuse.py; the
    DDL adds them): every run before it read its tenant in full, so NULL says so."""
    for column, kind in (("reused_policies", "INTEGER"), ("reused_since", "TIMESTAMPTZ"),
                         ("full_read_at", "TIMESTAMPTZ")):
        con.execute(f"ALTER TABLE sync_runs ADD COLUMN IF NOT EXISTS {column} {kind}")


MIGRATIONS: tuple[tuple[int, Callable[[duckdb.DuckDBPyConnection], None]], ...] = (
    # 2 was the schema of carried-forward rows (DDL above); these steps are numbered after it so a
    # database that already says 2 still gets them
    (4, _mask_stored_raw_json),
    (5, _drop_imported_definitions),
    (6, _snapshots_to_ranges),
    (7, _split_setting_versions),
    (8, _drop_alignments),
    (9, _access_tables),
    (10, _name_keyed_scripts),
    (11, _alert_channel_tables),
    (12, _deviations_accepted_by),
    (13, _alignment_memo),
    (14, _runs_sent_at),
    (15, _runs_reused),
)


def run_migrations(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Run the steps the file has not had yet; returns their versions."""
    row = _one(con.execute("SELECT value FROM meta WHERE key = 'schema_version'"))
    current = int(row[0]) if row else 0
    done = []
    for version, step in MIGRATIONS:
        if current >= version:
            continue
        con.execute("BEGIN")
        try:
            step(con)
            con.execute("INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE "
                        "SET value = excluded.value", [str(version)])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        done.append(version)
    return done


def stored_version(con: duckdb.DuckDBPyConnection) -> int | None:
    """The file's schema version (None: a file without the meta table, i.e. not ours yet)."""
    if _one(con.execute("SELECT 1 FROM information_schema.tables WHERE table_name = 'meta' "
                        "AND table_schema = 'main'")) is None:
        return None
    row = _one(con.execute("SELECT value FROM meta WHERE key = 'schema_version'"))
    return int(row[0]) if row else 0


class Migrations(Connection):
    """The schema steps of Connection: check the version on the first open, migrate an older file."""

    def _schema_check(self, con: duckdb.DuckDBPyConnection) -> bool:
        version = stored_version(con)
        if version is not None and version > SCHEMA_VERSION:
            raise StoreTooNew(
                f"Database {self.path} has schema version {version}, newer than this TenantPilot's "
                f"{SCHEMA_VERSION}: run the newer TenantPilot that wrote it (the file was not changed)")
        return version is None or version < SCHEMA_VERSION

    def _migrate(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute(DDL)
        con.execute(ACCESS_DDL)
        con.execute(ALIGNMENT_DDL)
        run_migrations(con)
        con.execute(_AFTER_MIGRATIONS)
        con.execute(
            "INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [str(SCHEMA_VERSION)],
        )
