"""Helpers of the Streamlit AppTests: a small three-tenant-and-baseline dataset written through
Store.write_snapshot, and readers for what a page shows.

The `db`, `filled` and `downloads` fixtures live in tests/conftest.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
from streamlit.testing.v1 import AppTest

from tenantpilot.flatten.schema import ASSIGNMENT_SCHEMA, POLICY_SCHEMA, SETTING_SCHEMA
from tenantpilot.store import Store

ROOT = Path(__file__).resolve().parent.parent  # the repository
APP = str(ROOT / "streamlit_app.py")
TIMEOUT = 60

CONTOSO = "11111111-1111-4111-8111-111111111111"
FABRIKAM = "fabrikam.onmicrosoft.com"
NORTHWIND = "33333333-3333-4333-8333-333333333333"
BASELINE = "baseline:cis-l1"
EVIL = '=HYPERLINK("http://evil.example","click")'

# tenant -> {policy name: {setting key: value}}; setting keys are definition ids shared by tenants
DATA: dict[str, dict[str, dict[str, str]]] = {
    CONTOSO: {
        "Contoso - Firewall": {"fw_enable": "true", "fw_inbound": "block", "fw_log_size": "16384"},
        "Contoso - BitLocker": {"bl_method": "XTS-AES 256", "bl_startup_pin": "required"},
        "Contoso - Extra": {"fw_enable": "false", "browser_homepage": EVIL},  # conflicts with the firewall policy
    },
    FABRIKAM: {
        "FW baseline": {"fw_enable": "true", "fw_inbound": "allow", "fw_log_size": "16384"},
        "Disk encryption": {"bl_method": "XTS-AES 128"},
    },
    NORTHWIND: {
        "Windows security": {"fw_enable": "true", "fw_inbound": "block", "bl_method": "XTS-AES 256",
                             "bl_startup_pin": "required"},
    },
    BASELINE: {
        "CIS L1": {"fw_enable": "true", "fw_inbound": "block", "fw_log_size": "16384", "bl_method": "XTS-AES 256"},
    },
}
NAMES = {CONTOSO: "Contoso", FABRIKAM: "Fabrikam", NORTHWIND: "Northwind", BASELINE: "CIS Level 1"}
KINDS = {BASELINE: "baseline"}
SETTING_NAMES = {"fw_enable": "Enable firewall", "fw_inbound": "Default inbound action", "fw_log_size": "Log size",
                 "bl_method": "Encryption method", "bl_startup_pin": "Startup PIN",
                 "browser_homepage": "Browser home page"}


def snapshot_frames(policies: dict[str, dict[str, str]], tenant: str) -> tuple[pl.DataFrame, ...]:
    pol, rows = [], []
    for i, (name, settings) in enumerate(policies.items()):
        pid = f"{tenant[:8]}-p{i}"
        pol.append({"policy_id": pid, "policy_name": name, "policy_type": "settingsCatalog",
                    "odata_type": "#microsoft.graph.deviceManagementConfigurationPolicy", "platform": "windows",
                    "raw_json": f'{{"id": "{pid}", "name": "{name}", "settingCount": {len(settings)}}}'})
        for key, value in settings.items():
            row = {c: "" for c in SETTING_SCHEMA}
            row.update(policy_id=pid, policy_name=name, policy_type="settingsCatalog",
                       odata_type="#microsoft.graph.deviceManagementConfigurationPolicy", platform="windows",
                       setting_key=key, setting_id=f"device_vendor_msft_{key}", setting_name=SETTING_NAMES[key],
                       category={"fw": "Firewall", "bl": "Encryption"}.get(key[:2], "Browser"), value=value,
                       raw_value=f'"{value}"', value_type="string", is_secret=False,
                       description=f"What {SETTING_NAMES[key]} does.", compare_value=value.lower(),
                       configured=True)
            rows.append(row)
    return (pl.DataFrame(pol, schema=POLICY_SCHEMA), pl.DataFrame(rows, schema=SETTING_SCHEMA),
            pl.DataFrame([], schema=ASSIGNMENT_SCHEMA))


def write_snapshot(store: Store, tenant: str, policies: dict[str, dict[str, str]]) -> int:
    run_id, created = store.create_run_unless_active(tenant)
    assert created
    store.start_run(run_id)
    p, s, a = snapshot_frames(policies, tenant)
    store.write_snapshot(run_id, tenant, policies=p, settings=s, assignments=a, status="succeeded", request_count=7)
    return run_id


def fill(store: Store, data: dict[str, dict[str, dict[str, str]]] = DATA) -> None:
    for tenant, policies in data.items():
        store.add_tenant(tenant, NAMES[tenant], KINDS.get(tenant, "tenant"))
        write_snapshot(store, tenant, policies)


def healthy(at: AppTest) -> AppTest:
    """No uncaught exception and no use of the router's last-resort error message."""
    assert not at.exception, at.exception
    assert not [e.value for e in at.error if "unexpected error" in e.value]
    return at


def app(page: str | None = None) -> AppTest:
    at = healthy(AppTest.from_file(APP, default_timeout=TIMEOUT).run())
    if page:
        healthy(at.switch_page(f"app_pages/{page}.py").run())
    return at


_MARKDOWN_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def shown(markdown: str) -> str:
    """Markdown source as the reader sees it: backslash escapes and the invisible word joiners of
    escaping.inert resolved."""
    return _MARKDOWN_ESCAPE.sub(r"\1", markdown).replace("\u2060", "")


def texts(at: AppTest) -> str:
    """Every text element of a run as the reader sees it (Markdown escapes resolved)."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [s.value for s in at.subheader]
    parts += [e.value for e in at.error] + [w.value for w in at.warning] + [i.value for i in at.info]
    parts += [s.value for s in at.success]
    return "\n".join(shown(str(p)) for p in parts)


def by_key(at: AppTest, kind: str, key: str):
    found = [w for w in getattr(at, kind) if w.key == key]
    assert found, f"no {kind} with key {key!r}"
    return found[0]


def find_table(at: AppTest, *columns: str):
    """The first st.dataframe whose columns include `columns` (a dataframe without selection has no key)."""
    for element in at.dataframe:
        value = element.value
        if set(columns) <= set(value.columns):
            return value
    raise AssertionError(f"no dataframe with columns {columns}: {[list(d.value.columns) for d in at.dataframe]}")


def explore_table(at: AppTest):
    return next(d for d in at.dataframe if (d.key or "").startswith("ex_table_"))


