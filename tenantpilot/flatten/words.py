"""Portal words for Graph's enum values ("aesCbc256" -> "AES-CBC 256-bit"): the table, with its sources. Pure.

Rows show these words in `value`; `raw_value` keeps Graph's value and `compare_value` compares on it,
so a change of wording never makes a difference. An enum is looked up by the property that holds it
(the same word, `medium`, means different things in different enums). Values without an entry are
shown as Graph writes them.

Sources: the member descriptions of Graph's metadata, as the Graph SDKs generate them —
  SDK-BITLOCKER  msgraph-cli `src/generated/Models/BitLockerEncryptionMethod.cs` ("AES-CBC 128-bit.", …)
  SDK-ANDROIDPW  msgraph-cli `src/generated/Models/AndroidWorkProfileRequiredPasswordType.cs`
                 ("Numeric complex password required.", "At least alphanumeric password required.", …)
  SDK-AUTOPILOT  msgraph-beta-sdk-dotnet `src/Microsoft.Graph/Generated/Models/WindowsAutopilotDeviceType.cs`
                 ("Windows PC", "Surface Hub 2", "HoloLens")
  GRAPH-THREAT   Graph docs `intune-deviceconfig-devicethreatprotectionlevel.md` (Secured, Low, Medium, High)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Enum:
    name: str  # Graph's enum type
    props: tuple[str, ...]  # properties that hold it
    words: dict[str, str]
    source: str


_ANDROID_PASSWORD = {
    "deviceDefault": "Device default", "lowSecurityBiometric": "Low security biometric", "required": "Required",
    "atLeastNumeric": "At least numeric", "numericComplex": "Numeric complex",
    "atLeastAlphabetic": "At least alphabetic", "atLeastAlphanumeric": "At least alphanumeric",
    "alphanumericWithSymbols": "Alphanumeric with symbols",
}

ENUMS: tuple[Enum, ...] = (
    Enum("bitLockerEncryptionMethod", ("encryptionMethod", "startupAuthenticationEncryptionMethod",
                                       "bitLockerEncryptionMethod"),
         {"aesCbc128": "AES-CBC 128-bit", "aesCbc256": "AES-CBC 256-bit", "xtsAes128": "XTS-AES 128-bit",
          "xtsAes256": "XTS-AES 256-bit"}, "SDK-BITLOCKER"),
    Enum("androidWorkProfileRequiredPasswordType", ("workProfilePasswordRequiredType", "passwordRequiredType"),
         _ANDROID_PASSWORD, "SDK-ANDROIDPW"),
    Enum("windowsAutopilotDeviceType", ("deviceType",),
         {"windowsPc": "Windows PC", "surfaceHub2": "Surface Hub 2", "holoLens": "HoloLens"}, "SDK-AUTOPILOT"),
    Enum("deviceThreatProtectionLevel", ("deviceThreatProtectionRequiredSecurityLevel",
                                         "advancedThreatProtectionRequiredSecurityLevel",
                                         "maximumAllowedDeviceThreatLevel"),
         {"secured": "Secured", "low": "Low", "medium": "Medium", "high": "High"}, "GRAPH-THREAT"),
)

_BY_PROP: dict[str, list[Enum]] = {}
for _enum in ENUMS:
    for _prop in _enum.props:
        _BY_PROP.setdefault(_prop, []).append(_enum)


def portal_words(prop: str, value: str) -> str | None:
    """The portal's words for Graph's `value` of property `prop`, or None when the table has none."""
    for enum in _BY_PROP.get(prop, ()):
        words = enum.words.get(value)
        if words is not None:
            return words
    return None
