"""Frames of one synthetic snapshot for store tests: the one builder the store contract and the
DuckDB history tests share."""

from __future__ import annotations

import polars as pl

from tenantpilot.flatten.schema import ASSIGNMENT_SCHEMA, POLICY_SCHEMA, SETTING_SCHEMA


def snapshot(policies: dict[str, dict[str, str]], *,
             names: dict[str, str] | None = None) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Policies, settings and assignments of {policy id: {setting key: value}}; a policy id starting
    with c is compliance, the rest settings catalog; a policy's name from `names`, else its id upper-cased."""
    pol, rows, asg = [], [], []
    for pid, settings in policies.items():
        name = (names or {}).get(pid, pid.upper())
        ptype = "compliance" if pid.startswith("c") else "settingsCatalog"
        pol.append({"policy_id": pid, "policy_name": name, "policy_type": ptype, "odata_type": "",
                    "platform": "windows", "raw_json": f'{{"id":"{pid}","n":{len(settings)}}}'})
        asg.append({"policy_id": pid, "policy_name": name, "policy_type": ptype, "intent": "include",
                    "target_type": "group", "group_id": "g1", "group_name": "All staff", "filter_id": "",
                    "filter_type": "none", "filter_name": ""})
        for key, value in settings.items():
            row = {c: "" for c in SETTING_SCHEMA}
            row.update(policy_id=pid, policy_name=name, policy_type=ptype, setting_key=key, setting_id=key,
                       setting_name=f"Name of {key}", description=f"What {key} does", value=value,
                       compare_value=value, is_secret=False, configured=True)
            rows.append(row)
    return (pl.DataFrame(pol, schema=POLICY_SCHEMA), pl.DataFrame(rows, schema=SETTING_SCHEMA),
            pl.DataFrame(asg, schema=ASSIGNMENT_SCHEMA))
