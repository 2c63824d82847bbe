"""The shape of one flattened setting row: the contract between flatten, store and the app.

The flattener emits dicts with exactly SETTING_COLUMNS; the store adds tenant_id, run_id and
synced_at. Assignment rows use ASSIGNMENT_COLUMNS.
`is_secret` and `configured` are booleans, every other setting column is text.
"""

from __future__ import annotations

import polars as pl

from tenantpilot.flatten.secrets import SECRET_MASK as SECRET_MASK  # re-exported: part of the secret rule

# column -> polars dtype, in display order
SETTING_SCHEMA: dict[str, type[pl.DataType]] = {
    "policy_id": pl.String,
    "policy_name": pl.String,
    "policy_type": pl.String,  # family: settingsCatalog, deviceConfiguration, compliance, ...
    "odata_type": pl.String,  # e.g. #microsoft.graph.windows10CompliancePolicy ('' when unknown)
    "platform": pl.String,  # windows, macOS, iOS, android, ... ('' when unknown)
    "setting_key": pl.String,  # stable, deterministic, unique within a policy
    "setting_id": pl.String,  # definition id / OMA-URI / property path
    "setting_name": pl.String,  # human readable
    "category": pl.String,
    "value": pl.String,  # display text (masked when secret)
    "raw_value": pl.String,  # JSON text of the raw value (masked when secret)
    "value_type": pl.String,  # choice, string, integer, boolean, collection, secret, ...
    "is_secret": pl.Boolean,
    "description": pl.String,
    # value normalised for comparison: collections sorted (sets), tenant-specific parts
    # (tenant ids, domains, onboarding blobs) replaced by placeholders. Shown: value; compared: this.
    "compare_value": pl.String,
    # False: Graph's value means the portal's "Not configured" (flatten/configured.py); value then reads
    # NOT_CONFIGURED and raw_value keeps what Graph returned. Null (rows stored before): configured.
    "configured": pl.Boolean,
}
SETTING_COLUMNS: tuple[str, ...] = tuple(SETTING_SCHEMA)

ASSIGNMENT_SCHEMA: dict[str, type[pl.DataType]] = {
    "policy_id": pl.String,
    "policy_name": pl.String,
    "policy_type": pl.String,
    "intent": pl.String,  # include | exclude
    "target_type": pl.String,  # group, allDevices, allLicensedUsers, ...
    "group_id": pl.String,
    "group_name": pl.String,
    "filter_id": pl.String,
    "filter_type": pl.String,  # include | exclude | none
    "filter_name": pl.String,  # from the tenant's assignment filters (graph/directory.py); '' when unknown
}
ASSIGNMENT_COLUMNS: tuple[str, ...] = tuple(ASSIGNMENT_SCHEMA)

NO_SETTINGS = "(No settings configured)"
NOT_CONFIGURED = "Not configured"  # the value shown for a row whose `configured` is False
NOT_CONFIGURED_CMP = "<not-configured>"  # its compare_value: equal across tenants, never a real value

POLICY_SCHEMA: dict[str, type[pl.DataType]] = {
    "policy_id": pl.String,
    "policy_name": pl.String,
    "policy_type": pl.String,
    "odata_type": pl.String,
    "platform": pl.String,
    "raw_json": pl.String,  # the policy as Graph returned it, secrets masked
}
