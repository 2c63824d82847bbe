"""The schema TenantPilot wrote up to version 5 (full snapshot rows per run), frozen: tests build
old database files with it to check the migrations that convert them."""

V5_DDL = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE SEQUENCE IF NOT EXISTS run_seq START 1;
CREATE TABLE IF NOT EXISTS tenants (
  tenant_id VARCHAR PRIMARY KEY,
  display_name VARCHAR NOT NULL,
  kind VARCHAR NOT NULL DEFAULT 'tenant',   -- tenant | demo | baseline
  added_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS sync_runs (
  run_id BIGINT PRIMARY KEY,
  tenant_id VARCHAR NOT NULL,
  status VARCHAR NOT NULL,                  -- queued | running | succeeded | partial | failed
  queued_at TIMESTAMPTZ NOT NULL,
  started_at TIMESTAMPTZ,
  finished_at TIMESTAMPTZ,
  policy_count INTEGER,
  setting_count INTEGER,
  request_count INTEGER,
  warnings VARCHAR,                          -- JSON list of strings
  error VARCHAR,
  source VARCHAR                             -- graph | import:<path>
);
CREATE TABLE IF NOT EXISTS policies (
  run_id BIGINT NOT NULL,
  tenant_id VARCHAR NOT NULL,
  policy_id VARCHAR,
  policy_name VARCHAR,
  policy_type VARCHAR,
  odata_type VARCHAR,
  platform VARCHAR,
  raw_json VARCHAR
);
CREATE TABLE IF NOT EXISTS settings (
  run_id BIGINT NOT NULL,
  tenant_id VARCHAR NOT NULL,
  policy_id VARCHAR,
  policy_name VARCHAR,
  policy_type VARCHAR,
  odata_type VARCHAR,
  platform VARCHAR,
  setting_key VARCHAR,
  setting_id VARCHAR,
  setting_name VARCHAR,
  category VARCHAR,
  value VARCHAR,
  raw_value VARCHAR,
  value_type VARCHAR,
  is_secret BOOLEAN,
  description VARCHAR,
  compare_value VARCHAR,
  configured BOOLEAN,
  synced_at TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS assignments (
  run_id BIGINT NOT NULL,
  tenant_id VARCHAR NOT NULL,
  policy_id VARCHAR,
  policy_name VARCHAR,
  policy_type VARCHAR,
  intent VARCHAR,
  target_type VARCHAR,
  group_id VARCHAR,
  group_name VARCHAR,
  filter_id VARCHAR,
  filter_type VARCHAR,
  filter_name VARCHAR
);
CREATE TABLE IF NOT EXISTS setting_definitions (
  definition_id VARCHAR PRIMARY KEY,
  definition_json VARCHAR NOT NULL,
  fetched_at TIMESTAMPTZ NOT NULL
);
-- v2: per run and policy type, read or not; rows of a type not read are carried from a good run
CREATE TABLE IF NOT EXISTS run_types (
  run_id BIGINT NOT NULL,
  tenant_id VARCHAR NOT NULL,
  type_key VARCHAR NOT NULL,
  family VARCHAR NOT NULL,
  label VARCHAR NOT NULL,
  status VARCHAR NOT NULL,                  -- read | carried | skipped (not read, nothing to carry)
  reason VARCHAR,                           -- forbidden | unavailable | failed
  message VARCHAR,
  carried_from_run BIGINT,
  carried_policies INTEGER,
  carried_settings INTEGER
);
CREATE TABLE IF NOT EXISTS tenant_aliases (
  alias VARCHAR PRIMARY KEY,                -- another key of the tenant (a domain it was added by)
  tenant_id VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS unknown_definitions (
  definition_id VARCHAR PRIMARY KEY,        -- ids Graph did not know when asked: not asked again
  checked_at TIMESTAMPTZ NOT NULL
);
-- per (tenant run, baseline run): the alignment the all-tenants overview reads (compare's rules)
CREATE TABLE IF NOT EXISTS alignments (
  run_id BIGINT NOT NULL,
  baseline_run_id BIGINT NOT NULL,
  baseline_settings BIGINT, matched BIGINT, differing BIGINT, missing BIGINT, extra BIGINT,
  PRIMARY KEY (run_id, baseline_run_id)
);
ALTER TABLE policies ADD COLUMN IF NOT EXISTS type_key VARCHAR;
ALTER TABLE policies ADD COLUMN IF NOT EXISTS carried_from_run BIGINT;
ALTER TABLE settings ADD COLUMN IF NOT EXISTS carried_from_run BIGINT;
ALTER TABLE assignments ADD COLUMN IF NOT EXISTS carried_from_run BIGINT;
-- flatten/configured.py: False = the portal's "Not configured"; rows stored before: NULL = configured
ALTER TABLE settings ADD COLUMN IF NOT EXISTS configured BOOLEAN;
ALTER TABLE assignments ADD COLUMN IF NOT EXISTS filter_name VARCHAR;
-- who asked for the run: manual (a person: app or CLI) | schedule (the periodic task); alerts follow schedule
ALTER TABLE sync_runs ADD COLUMN IF NOT EXISTS trigger VARCHAR DEFAULT 'manual';
-- names of the groups and assignment filters a tenant's assignments point to (graph/directory.py)
CREATE TABLE IF NOT EXISTS directory_names (
  tenant_id VARCHAR NOT NULL,
  kind VARCHAR NOT NULL,                    -- group | filter
  object_id VARCHAR NOT NULL,
  display_name VARCHAR NOT NULL,
  fetched_at TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (tenant_id, kind, object_id)
);
CREATE OR REPLACE VIEW current_runs AS
  SELECT tenant_id, max(run_id) AS run_id FROM sync_runs
  WHERE status IN ('succeeded', 'partial') GROUP BY tenant_id;
"""
