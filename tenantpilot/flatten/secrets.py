"""The one secret rule: which JSON names and Graph markers hold a credential, and how it is masked.

Everything that decides "is this a secret?" imports this module: the flattener's rows
(`is_secret` rows), the stored raw JSON of a policy (`snapshot.raw_json`, the store's migration),
logs (`logs.redact`), configuration errors (`scrub_urls`) and what the app shows.

A value is a secret when
- its property name is a credential: an exact name (`pin`, `clientSecret`, `wiFiPreSharedKey`, …)
  or a credential suffix (`…password`, `…secret`, `…passphrase`, `…preSharedKey`, `…privateKey`,
  `…productKey`, …). Names compare in ASCII lower case. Only non-empty strings, numbers and
  lists of them are masked (`passwordRequired: true` is a setting, not a credential; an empty
  credential is shown as empty);
- or it is the `value` of an object Graph marks as secret: `isEncrypted: true` (OMA settings),
  a `secretReferenceValueId`, a `valueState` (`encryptedValueToken`, `notEncrypted`, `invalid`)
  or an `@odata.type` ending in `SecretSettingValue` (settings catalog);
- or it is the `value` (or `valueJson`) of an object that names itself like a credential: a
  `name` or `key` such as "password" (app configuration pairs), an intent setting whose
  `definitionId` ends in `_<credential name>`, an OMA setting whose `omaUri` ends in one.

`might_hold_secrets(text)` is a cheap scan of JSON text that is True whenever `mask` would change
the parsed document, so callers may skip the masking walk for the (large) rest.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

SECRET_MASK = "********"

# exact property names (ASCII lower case) whose value is a credential
SECRET_NAMES: frozenset[str] = frozenset({
    "pin", "password", "passphrase", "passcode", "secret", "clientsecret", "sharedsecret", "presharedkey",
    "wifipresharedkey", "networkkey", "wepkey", "certificatepassword", "wifipassword", "proxyserverpassword",
    "kioskmodeexitcode", "tokenvalue", "accesstoken", "refreshtoken", "clientassertion", "apikey",
    # an Apple VPP token's own text (deviceAppManagement/vppTokens: vppToken.token, Graph beta
    # intune-onboarding-vpptoken): the state, expiry and account are shown, the token never
    "token",
    # APNs material (applePushNotificationCertificate.certificate) and managed Google Play's enrollment tokens
    # (androidEnrollmentCompanyCode.enrollmentToken)
    "certificate", "enrollmenttoken",
})
# name endings (ASCII lower case) that make a property a credential: "…password", and the
# "…key" names that are keys to something rather than a key of a map
SECRET_SUFFIXES: tuple[str, ...] = (
    "password", "secret", "passphrase", "passcode", "presharedkey", "sharedkey", "networkkey", "privatekey",
    "secretkey", "apikey", "accesskey", "productkey", "licensekey", "recoverykey", "wepkey",
)
# Graph's markers: an object with one of these holds its credential in "value"
_MARKER_TYPE = "secretsettingvalue"  # in @odata.type, any case

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@lru_cache(maxsize=65536)
def is_secret_name(name: str) -> bool:
    """A property name that holds a credential (exact list or credential suffix)."""
    low = name.translate(_ASCII_LOWER)
    return low in SECRET_NAMES or low.endswith(SECRET_SUFFIXES)


def _credential(value: Any) -> bool:
    """A value that would leak something if shown: non-empty text, a number, or a list holding one."""
    if value is None or value is True or value is False:
        return False
    if isinstance(value, str):
        return bool(value)
    if isinstance(value, (int, float)):
        return True
    if isinstance(value, list):
        return any(_credential(item) for item in value if not isinstance(item, (dict, list)))
    return False


def is_secret(name: str, value: Any) -> bool:
    """The name rule applied to a value: a credential-named property holding a credential."""
    return is_secret_name(name) and _credential(value)


def is_marked_secret(node: Mapping[str, Any]) -> bool:
    """Graph marks this object as holding a secret in its "value" (encrypted OMA, secret setting value)."""
    return (
        node.get("isEncrypted") is True
        or bool(node.get("secretReferenceValueId"))
        or "valueState" in node
        or _MARKER_TYPE in str(node.get("@odata.type") or "").lower()
    )


_NAMING_KEYS = ("name", "key")


def is_named_secret(node: Mapping[str, Any]) -> bool:
    """The object names itself like a credential (a {name, value} pair, an intent setting, an OMA
    setting), so its "value" / "valueJson" is one."""
    for key in _NAMING_KEYS:
        name = node.get(key)
        if isinstance(name, str) and is_secret_name(name.strip(" ")):
            return True
    definition = node.get("definitionId")
    if isinstance(definition, str) and is_secret_name(definition.rpartition("_")[2]):
        return True
    uri = node.get("omaUri")
    return isinstance(uri, str) and is_secret_name(uri.rstrip("/").rpartition("/")[2])


def holds_secret_value(node: Mapping[str, Any]) -> bool:
    """Its "value" (and "valueJson") is a secret: Graph's markers or a credential name."""
    return is_marked_secret(node) or is_named_secret(node)


_VALUE_KEYS = ("value", "valueJson")


def _mask_leaf(value: Any) -> Any:
    """A credential value masked in place of its shape (lists keep their length)."""
    if isinstance(value, list):
        return [SECRET_MASK if _credential(item) and not isinstance(item, (dict, list)) else mask(item)
                for item in value]
    return SECRET_MASK


def mask(node: Any) -> Any:
    """A copy of a JSON document with every secret value replaced by SECRET_MASK."""
    if isinstance(node, list):
        return [mask(item) for item in node]
    if not isinstance(node, dict):
        return node
    marked = holds_secret_value(node)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if marked and key in _VALUE_KEYS and value is not None:
            out[key] = SECRET_MASK
        elif isinstance(value, dict):
            out[key] = mask(value)
        elif isinstance(key, str) and is_secret(key, value):
            out[key] = _mask_leaf(value)
        elif isinstance(value, list):
            out[key] = mask(value)
        else:
            out[key] = value
    return out


def _alternatives(words) -> str:
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


# JSON text that might hold a secret: a key ending in a credential suffix or equal to a credential
# name, a naming field whose text ends in one, or one of Graph's markers. json.dumps escapes only
# quotes, backslashes, control characters and (with ensure_ascii) non-ASCII, never ASCII letters,
# so a secret name always shows its ending. Both forms below are supersets: a match only means
# "run mask()"; tests/unit/test_hostile.py checks both against mask() on generated documents.
_WORDS = sorted(set((*SECRET_SUFFIXES, *SECRET_NAMES)), key=len, reverse=True)
_ENDINGS = _alternatives(_WORDS)
# for SQL (DuckDB's RE2, linear time), on the text as stored: the migration's filter
SECRET_TEXT_PATTERN = (
    r'(?i)(?:' + _ENDINGS + r')"\s*:'
    r'|"(?:name|key|definitionId|omaUri)"\s*:\s*"(?:[^"\\]|\\.)*?(?:' + _ENDINGS + r')[ /]*"'
    r'|"isEncrypted"\s*:\s*true|"valueState"\s*:|"secretReferenceValueId"\s*:|' + _MARKER_TYPE
)
# for Python (a backtracking engine: every pattern starts with a literal so the scan skips ahead),
# on the lower-cased text of json.dumps (no space between a key and its colon)
_SECRET_KEY = re.compile(
    r'":(?<=(?:' + "|".join(sorted({re.escape(w[-2:]) for w in _WORDS})) + r')":)'  # cheap filter first
    r'(?:' + "|".join(f'(?<={re.escape(w)}":)' for w in _WORDS) + ")"
    r'(?=\s*(?:"[^"]|-?[0-9]|-?infinity|nan|\[))',  # holding text, a number or a list: never false/null/""
    re.ASCII)
_NAMED_SECRET = re.compile(r'"(?:name|key|definitionid|omauri)":\s*"(?:[^"\\]|\\.)*?(?:' + _ENDINGS + r')[ /]*"',
                           re.ASCII)
_ENCRYPTED = re.compile(r'"isencrypted":\s*true', re.ASCII)


def might_hold_secrets(text: str) -> bool:
    """False only when `text` (JSON as json.dumps writes it) certainly holds no secret: then `mask`
    would change nothing. About 7 ms per MB, so the masking walk can be skipped for the rest."""
    low = text.lower()
    return bool('"valuestate":' in low or '"secretreferencevalueid":' in low or _MARKER_TYPE in low
                or ('"isencrypted":' in low and _ENCRYPTED.search(low))
                or _SECRET_KEY.search(low) or _NAMED_SECRET.search(low))


def mask_json_text(text: str) -> str:
    """JSON text with its secrets masked (compact separators); text that is not JSON but might
    hold a secret is withheld whole."""
    if not might_hold_secrets(text):
        return text
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return json.dumps(SECRET_MASK)
    return json.dumps(mask(doc), separators=(",", ":"))


# --- credentials inside URLs and free text (configuration errors, logs) -----------------------
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@?#]*@")
_QUERY_PARAM = re.compile(r"([?&;])([A-Za-z0-9_.\-]+)=([^&;#\s'\"]*)")


def scrub_urls(text: str) -> str:
    """Text with every URL's user:password and credential-named query values replaced by ***."""
    text = _URL_USERINFO.sub(r"\1***@", text)
    return _QUERY_PARAM.sub(lambda m: f"{m.group(1)}{m.group(2)}=***" if is_secret_name(m.group(2))
                            else m.group(0), text)


def redacted_url(value: str) -> str:
    """A URL as an error message may show it, even when malformed: no user info, no password,
    no credential query value (`redis://:p&ss@host` -> `redis://***@host`)."""
    shown = scrub_urls(value)
    if "@" in shown:  # user info that scrub_urls could not see as such (no "scheme://", a "/" in it)
        scheme, sep, _rest = shown.partition("://")
        shown = (scheme + sep if sep else "") + "***@" + shown.rsplit("@", 1)[1]
    return shown
