"""Portal words for enum values (tenantpilot/flatten/words.py): shown as the portal writes them, raw kept."""

from __future__ import annotations

import pytest

from graphsim import CORPUS_DIR
from tenantpilot.flatten import flatten_policy, read_json_bytes
from tenantpilot.flatten.words import ENUMS, portal_words

WP = "Intune-Config-Frameworks/AndroidEnterprise/WorkProfile/level-2-wp-enhanced-security-configuration.json"
ENDPOINT = {"@odata.type": "#microsoft.graph.windows10EndpointProtectionConfiguration", "id": "e", "displayName": "EP",
            "bitLockerSystemDrivePolicy": {"encryptionMethod": "xtsAes256", "startupAuthenticationRequired": True}}
AUTOPILOT = {"@odata.type": "#microsoft.graph.azureADWindowsAutopilotDeploymentProfile", "id": "a",
             "displayName": "AP", "deviceType": "windowsPc"}


def rows_of(policy: dict) -> dict[str, dict]:
    return {r["setting_key"]: r for r in flatten_policy(policy)}


CASES = [
    (read_json_bytes((CORPUS_DIR / WP).read_bytes()), "workProfilePasswordRequiredType", "Numeric complex",
     '"numericComplex"'),
    (ENDPOINT, "bitLockerSystemDrivePolicy/encryptionMethod", "XTS-AES 256-bit", '"xtsAes256"'),
    (AUTOPILOT, "deviceType", "Windows PC", '"windowsPc"'),
]


@pytest.mark.parametrize(("policy", "key", "shown", "raw"), CASES, ids=[c[1] for c in CASES])
def test_enum_values_read_as_in_the_portal(policy, key, shown, raw):
    row = rows_of(policy)[key]
    assert (row["value"], row["raw_value"]) == (shown, raw)
    assert row["compare_value"] == raw.strip('"')  # compared on Graph's value: wording is no difference


def test_words_are_looked_up_by_property_and_every_enum_cites_a_source():
    assert portal_words("deviceThreatProtectionRequiredSecurityLevel", "medium") == "Medium"
    assert portal_words("requiredPasswordComplexity", "medium") is None  # another enum: no guess
    assert portal_words("deviceType", "toaster") is None
    assert all(e.source and e.props and e.words for e in ENUMS)
