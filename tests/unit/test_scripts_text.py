"""Script bodies on demand (analysis/scripts.py) on the simulator's remediation: the text comes back from
the stored raw JSON (and from base64 kept by an older database), and two bodies diff line by line."""

from __future__ import annotations

import base64

import pytest

from graphsim import coverage
from graphsim.tenants import build_tenant
from tenantpilot.analysis.scripts import line_diff, script_bodies
from tenantpilot.sync.snapshot import raw_json

TENANT = build_tenant("dddddddd-1111-4222-8333-444444444444", "Contoso", 20, seed=3, coverage=True)


def _stored(name: str) -> str:
    policy = TENANT.policy_by_name(name)
    assert policy is not None
    return raw_json({**policy.resource, "assignments": policy.assignments})


@pytest.mark.parametrize("name, bodies", [
    ("Restart Print Spooler", {"detectionScriptContent": coverage.SPOOLER_DETECT,
                               "remediationScriptContent": coverage.SPOOLER_FIX}),
    ("BitLocker protection status", {"detectionScriptContent": coverage.BITLOCKER_COMPLIANCE}),
    ("Battery cycle count", {"scriptContent": coverage.BATTERY_SCRIPT}),
    ("7-Zip", {}),
])
def test_script_bodies_from_the_stored_raw_json(name: str, bodies: dict[str, str]) -> None:
    assert script_bodies(_stored(name)) == bodies


def test_a_body_an_older_database_kept_in_base64_is_decoded() -> None:
    old = {"scriptContent": base64.b64encode(coverage.BATTERY_SCRIPT.encode()).decode()}
    assert script_bodies(old) == {"scriptContent": coverage.BATTERY_SCRIPT}
    assert script_bodies(None) == {} and script_bodies("[]") == {}


def test_two_bodies_diff_line_by_line() -> None:
    new = coverage.SPOOLER_DETECT.replace("exit 1", "exit 2")
    diff = line_diff(coverage.SPOOLER_DETECT, new, old_label="Contoso", new_label="Fabrikam")
    assert diff[:2] == ["--- Contoso", "+++ Fabrikam"]
    changed = [d for d in diff[2:] if d[:1] in "+-" and not d.startswith(("+++", "---"))]
    assert changed == [
        "-if ($svc.Status -ne 'Running') { Write-Output 'Spooler stopped'; exit 1 }",
        "+if ($svc.Status -ne 'Running') { Write-Output 'Spooler stopped'; exit 2 }",
    ]
    assert line_diff(new, new) == []
