"""Which values mean "Not configured": the rules, per family, each with its source. Pure.

The Intune portal shows "Not configured" for a setting the admin left alone, but Graph still returns
a value for it in the property-shaped families: `false` for a compliance "Require" or a restriction
"Block" boolean, an enum's default member (`notConfigured`, `deviceDefault`, `unavailable`), an
empty collection. Such a row gets `configured = False`: compare treats it like a setting that is
not there, it never makes a conflict, and it is shown as NOT_CONFIGURED (raw_value keeps Graph's value).
`null` never becomes a row at all (flatten/README.md).

Settings catalog and compliance v2 rows are configured by definition: `/configurationPolicies/{id}/
settings` returns only the settings the admin configured (docs/graph-intune.md §1: instances of the
configured settings; IntuneManagement `Extensions/Documentation.psm1` documents them one by one).
Admin-template rows exist only for definitionValues the admin set (Enabled and Disabled are both
choices), OMA-URI rows only for the OMA settings the admin added.

Sources (the `source` of each rule):
  IM-BOOL  IntuneManagement `Extensions/Documentation.psm1` Invoke-TranslateBoolean: a boolean whose
           `booleanActions` is 0..9 (allow, require, enable, block, configured, disable, limit, show,
           hide, yes) shows that action when true and "Not configured" otherwise; the value
           "notConfigured" is "Not configured" for every property.
  IM-INFO  IntuneManagement `Documentation/ObjectInfo/*.json` (the portal's own setting metadata):
           compliance booleans are booleanActions 1 (require) or 3 (block) with defaultValue false
           (`devicehealth_compliancewindows10.json`: bitLockerEnabled, secureBootEnabled, …;
           `systemsecurity_compliancewindows10.json`: passwordBlockSimple), device-restriction
           booleans likewise (`cloudandstorage_iosgeneral.json`: iCloudBlockBackup, … booleanActions 9,
           defaultValue false); `passwordRequiredType` has `unconfiguredValue: deviceDefault`.
  IM-LIST  IntuneManagement `Extensions/Documentation.psm1` Invoke-TranslateMultiOption /
           Invoke-TranslateTable: a list with no item is "Not configured".
  GRAPH-THREAT  Graph docs `intune-deviceconfig-devicethreatprotectionlevel.md`: `unavailable` is
           "Default Value. Do not use."; `notSet` is "no requirement for the device to meet a Threat
           Protection level".
  GRAPH-APPLIST Graph docs `intune-deviceconfig-applisttype.md`: `none` is "Default value, no intent."
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tenantpilot.families import COMPLIANCE, DEVICE_CONFIGURATION

ANY = "*"


@dataclass(frozen=True)
class Rule:
    """Values that mean "Not configured" for `props` (ANY: every property) of `family`, on Graph types
    ending with one of `types` (empty: every type of the family)."""

    family: str
    props: tuple[str, ...] | str
    values: tuple[Any, ...]
    source: str
    types: tuple[str, ...] = ()

    def matches(self, family: str, odata_type: str, prop: str, value: Any) -> bool:
        if self.family not in (ANY, family):
            return False
        if self.types and not odata_type.endswith(self.types):
            return False
        if self.props != ANY and prop not in self.props:
            return False
        # bool is an int in Python: False must not match 0, nor True 1
        return any(value is v if isinstance(v, bool) else (value == v and not isinstance(value, bool))
                   for v in self.values)


# device-restriction profiles: the Graph types the portal calls "Device restrictions"
RESTRICTION_TYPES: tuple[str, ...] = ("GeneralDeviceConfiguration", "GeneralConfiguration",
                                      "DeviceOwnerDeviceConfiguration")
_THREAT_LEVELS = ("deviceThreatProtectionRequiredSecurityLevel", "advancedThreatProtectionRequiredSecurityLevel")

RULES: tuple[Rule, ...] = (
    Rule(ANY, ANY, ("notConfigured",), "IM-BOOL"),
    Rule(COMPLIANCE, ANY, (False,), "IM-INFO"),
    Rule(COMPLIANCE, ("passwordRequiredType", "requiredPasswordType"), ("deviceDefault",), "IM-INFO"),
    Rule(COMPLIANCE, _THREAT_LEVELS, ("unavailable", "notSet"), "GRAPH-THREAT"),
    Rule(DEVICE_CONFIGURATION, ANY, (False,), "IM-INFO", RESTRICTION_TYPES),
    Rule(DEVICE_CONFIGURATION, ("passwordRequiredType",), ("deviceDefault",), "IM-INFO", RESTRICTION_TYPES),
    Rule(DEVICE_CONFIGURATION, ("appsVisibilityListType", "compliantAppListType"), ("none",), "GRAPH-APPLIST",
         RESTRICTION_TYPES),
)


def unconfigured_rule(family: str, odata_type: str, prop: str, value: Any) -> Rule | None:
    """The rule that makes `value` of property `prop` "Not configured", or None (configured).

    `odata_type` is the short Graph type (`windows10CompliancePolicy`), `prop` the leaf property name.
    """
    for rule in RULES:
        if rule.matches(family, odata_type, prop, value):
            return rule
    return None


def is_configured(family: str, odata_type: str, prop: str, value: Any) -> bool:
    """False when Graph's `value` means the portal's "Not configured" (see RULES); empty lists too (IM-LIST)."""
    if isinstance(value, list) and not value:
        return False
    return unconfigured_rule(family, odata_type, prop, value) is None
